#!/usr/bin/env bash
# Fleet simulation: hawkbit-sim + a fleet of simulated devices (sim-devices: eyas-core's Client per device) + the
# release workflow with eyasctl (publish, rollout in groups 5/25/50/100 % with success 95 % / error 5 %, watch: exit 0
# finished, 3 paused), then `eyasctl report` over hawkBit's history and the devices' telemetry.
# (The main demo with real eyas devices is demo.sh.) Env: DEMO_DEVICES (40), DEMO_FAIL (device numbers that fail, e.g. 7),
# DEMO_KEEP=1 keeps the simulator running at the end, DEMO_EXPECT=finished|paused makes the outcome a check (CI).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SIM_BIN=${SIM_BIN:-$TARGET_DIR/debug/hawkbit-sim}
DEV_BIN=${DEV_BIN:-$TARGET_DIR/debug/sim-devices}
CTL_BIN=${CTL_BIN:-$TARGET_DIR/debug/eyasctl}
N=${DEMO_DEVICES:-40}
export HAWKBIT_AUTH=admin:admin
# shellcheck source=lib.sh
. "$HERE/lib.sh"

echo "fleet-sim: building hawkbit-sim, sim-devices and eyasctl"
(cd "$ROOT" && cargo build -q -p eyas-hil-tests -p eyasctl --bins)
W=$(mktemp -d /tmp/eyas-fleet-sim.XXXXXX)
SIM_PID="" DEV_PID=""
cleanup() {
  [ -n "$DEV_PID" ] && kill "$DEV_PID" 2>/dev/null && wait "$DEV_PID" 2>/dev/null || true
  if [ "${DEMO_KEEP:-0}" != 1 ] && [ -n "$SIM_PID" ]; then kill "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null || true; fi
  rm -rf "$W"
}
trap cleanup EXIT

start_sim "$W" --polling-time 00:00:01 --min-polling-time 00:00:01 --rollout-interval-ms 500
echo "fleet-sim: hawkbit-sim on $HAWKBIT_URL (Mgmt API admin:admin)"

# fleet provisioning: targets with known tokens (hawkBit syntax)
body=$(python3 -c "import json; print(json.dumps([{'controllerId': 'sim-%03d' % i, 'name': 'sim-%03d' % i, 'securityToken': 'tok-sim-%03d' % i} for i in range($N)]))")
mgmt POST /targets "$body" >/dev/null
echo "fleet-sim: $N targets registered; starting simulated devices"
"$DEV_BIN" --url "$HAWKBIT_URL" --prefix sim- --count "$N" --fail "${DEMO_FAIL:-}" --max-poll-ms 500 --work-ms 300 \
  --telemetry "$W/telemetry.jsonl" --duration-secs 600 >"$W/devices.log" 2>&1 &
DEV_PID=$!

head -c 2097152 /dev/urandom >"$W/rootfs-demo.raucb"
release() {
  local version out
  version=1.0.$(date +%s)
  "$CTL_BIN" publish "$W/rootfs-demo.raucb" --name rootfs --version "$version" --ds-name eyas-fw || return 1
  out=$("$CTL_BIN" rollout create --ds "eyas-fw:$version" --filter 'controllerid==sim-*' \
    --groups 5,25,50,100 --success 95 --error 5 --start) || return 1
  echo "$out"
  ROLLOUT=${out##*rollout=}
  "$CTL_BIN" rollout watch "$ROLLOUT" --timeout 300
}
rc=0 ROLLOUT=""
release || rc=$?
# SIGTERM: the devices stop and write out their telemetry
kill "$DEV_PID" 2>/dev/null && wait "$DEV_PID" 2>/dev/null || true
DEV_PID=""
echo "fleet-sim: device log (last lines):"; tail -5 "$W/devices.log" | sed 's/^/  /'
if [ -n "$ROLLOUT" ] && { [ "$rc" -eq 0 ] || [ "$rc" -eq 3 ]; }; then
  "$CTL_BIN" report --rollout "$ROLLOUT" --telemetry "$W/telemetry.jsonl" --html "$W/report.html" ||
    { echo "fleet-sim: eyasctl report failed" >&2; exit 1; }
fi
case $rc in
  0) outcome=finished; echo "fleet-sim: OK — all groups rolled out" ;;
  3) outcome=paused; echo "fleet-sim: rollout paused by the error threshold (as configured)" ;;
  *) echo "fleet-sim: FAILED (eyasctl exit $rc)"; exit "$rc" ;;
esac
if [ -n "${DEMO_EXPECT:-}" ] && [ "$outcome" != "$DEMO_EXPECT" ]; then
  echo "fleet-sim: expected the rollout to end '$DEMO_EXPECT', got '$outcome'" >&2
  exit 1
fi
