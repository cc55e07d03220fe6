#!/usr/bin/env bash
# Fleet rehearsal benchmark (issue 11): hawkbit-sim + FLEET_DEVICES (10,000) simulated eyas devices
# (sim-devices: one eyas-core Client each, one tokio runtime) + the release workflow with eyasctl:
# publish, rollout create --groups 1,10,50,100 --success 95 --error 5 --start, rollout watch, report.
# Prints wall time from `rollout create` to finished/paused, the peak RSS (VmHWM) of hawkbit-sim and
# sim-devices, requests/s and the time `eyasctl report` takes. It asserts nothing about the figures
# (goal: <= 5 min, <= 1 GiB together on 2 cores); it fails only when a step fails or, with
# FLEET_EXPECT=finished|paused, when the rollout ends otherwise.
# Env: FLEET_DEVICES (10000), FLEET_FAIL_RATES (per group, cumulative fleet %:failure %; default
# 1:0,10:1,50:2,100:3, under the 5 % threshold: finished; e.g. 1:0,10:1,50:8,100:3 pauses in the
# third group), FLEET_POLL (hawkBit pollingTime, 00:00:10), FLEET_ARTIFACT_KB (64), FLEET_CONNECTIONS (64),
# FLEET_OUT (report directory, default $CARGO_TARGET_DIR/fleet-bench).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
N=${FLEET_DEVICES:-10000}
RATES=${FLEET_FAIL_RATES:-1:0,10:1,50:2,100:3}
POLL=${FLEET_POLL:-00:00:10}
OUT=${FLEET_OUT:-$TARGET_DIR/fleet-bench}
export HAWKBIT_AUTH=admin:admin
# shellcheck source=lib.sh
. "$HERE/lib.sh"

echo "fleet-bench: building hawkbit-sim and sim-devices (optimised) and eyasctl"
(cd "$ROOT" && CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_OPT_LEVEL=3 \
  CARGO_PROFILE_RELEASE_PANIC=unwind cargo build -q -p eyas-hil-tests --release --bin hawkbit-sim --bin sim-devices &&
  cargo build -q -p eyasctl)
SIM_BIN=$TARGET_DIR/release/hawkbit-sim DEV_BIN=$TARGET_DIR/release/sim-devices CTL_BIN=$TARGET_DIR/debug/eyasctl
W=$(mktemp -d /tmp/eyas-fleet-bench.XXXXXX)
mkdir -p "$OUT"
SIM_PID="" DEV_PID=""
cleanup() {
  [ -n "$DEV_PID" ] && kill "$DEV_PID" 2>/dev/null && wait "$DEV_PID" 2>/dev/null || true
  [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
# peak resident set of a running process, in MiB (the kernel's high-water mark)
hwm() { awk '/^VmHWM:/ {printf "%.0f", $2 / 1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }
cpu_s() { awk '{printf "%.1f", ($14 + $15) / '"$(getconf CLK_TCK)"'}' "/proc/$1/stat" 2>/dev/null || echo "?"; }

start_sim "$W" --polling-time "$POLL" --min-polling-time 00:00:01 --rollout-interval-ms 1000
echo "fleet-bench: hawkbit-sim on $HAWKBIT_URL; registering $N targets"
python3 - "$N" "$W/targets" <<'PY'
import json, sys
n, d = int(sys.argv[1]), sys.argv[2]
import os
os.makedirs(d, exist_ok=True)
for b in range(0, n, 1000):
    with open(f"{d}/{b:06d}.json", "w") as f:
        json.dump([{"controllerId": "fleet-%03d" % i, "name": "fleet-%03d" % i,
                    "securityToken": "tok-fleet-%03d" % i} for i in range(b, min(n, b + 1000))], f)
PY
for f in "$W"/targets/*.json; do mgmt POST /targets "$(cat "$f")" >/dev/null; done

"$DEV_BIN" --url "$HAWKBIT_URL" --prefix fleet- --count "$N" --fail-rates "$RATES" \
  --max-poll-ms 10000 --work-ms 2000 --reboot-ms 1000 --connections "${FLEET_CONNECTIONS:-64}" \
  --telemetry "$OUT/telemetry.jsonl" --duration-secs 1800 >"$W/devices.log" 2>&1 &
DEV_PID=$!
head -c $((${FLEET_ARTIFACT_KB:-64} * 1024)) /dev/urandom >"$W/rootfs-fleet.raucb"
version=1.0.$(date +%s)
"$CTL_BIN" publish "$W/rootfs-fleet.raucb" --name rootfs --version "$version" --ds-name eyas-fw >/dev/null
sleep 3 # the devices' first polls
t0=$(date +%s.%N)
out=$("$CTL_BIN" rollout create --ds "eyas-fw:$version" --filter 'controllerid==fleet-*' \
  --groups 1,10,50,100 --success 95 --error 5 --start)
id=${out##*rollout=}
rc=0
"$CTL_BIN" rollout watch "$id" --timeout 900 >"$W/watch.log" 2>&1 || rc=$?
t1=$(date +%s.%N)
tail -2 "$W/watch.log"
case $rc in 0) outcome=finished ;; 3) outcome=paused ;; *) cat "$W/watch.log" >&2; echo "fleet-bench: watch failed ($rc)" >&2; exit 1 ;; esac
sim_mib=$(hwm "$SIM_PID") dev_mib=$(hwm "$DEV_PID") sim_cpu=$(cpu_s "$SIM_PID") dev_cpu=$(cpu_s "$DEV_PID")
kill -INT "$DEV_PID" 2>/dev/null || true
wait "$DEV_PID" 2>/dev/null || true
DEV_PID=""
summary=$(grep '^sim-devices: .* requests' "$W/devices.log" | tail -1 || true)
t2=$(date +%s.%N)
"$CTL_BIN" report --rollout "$id" --telemetry "$OUT/telemetry.jsonl" --html "$OUT/report.html" >"$OUT/report.txt"
t3=$(date +%s.%N)
"$CTL_BIN" --json report --rollout "$id" --telemetry "$OUT/telemetry.jsonl" --html "$OUT/report.html" >"$OUT/report.json"
python3 - "$t0" "$t1" "$t2" "$t3" "$N" "$outcome" "$sim_mib" "$dev_mib" "$sim_cpu" "$dev_cpu" "$summary" "$(nproc)" <<'PY'
import sys
t0, t1, t2, t3 = map(float, sys.argv[1:5])
n, outcome, sim_mib, dev_mib, sim_cpu, dev_cpu, summary, cores = sys.argv[5:13]
tot = (int(sim_mib) + int(dev_mib)) if sim_mib.isdigit() and dev_mib.isdigit() else "?"
print(f"fleet-bench: {n} devices, rollout 1/10/50/100 % {outcome} in {t1 - t0:.1f} s (rollout create -> {outcome}; goal <= 300 s)")
print(f"fleet-bench: peak RSS hawkbit-sim {sim_mib} MiB + sim-devices {dev_mib} MiB = {tot} MiB (goal <= 1024 MiB)")
print(f"fleet-bench: CPU time hawkbit-sim {sim_cpu} s, sim-devices {dev_cpu} s on {cores} cores")
print(f"fleet-bench: {summary.removeprefix('sim-devices: ')}")
print(f"fleet-bench: eyasctl report rendered in {t3 - t2:.1f} s")
PY
sed 's/^/  report: /' "$OUT/report.txt" | head -20
echo "fleet-bench: report in $OUT/report.html (telemetry $OUT/telemetry.jsonl)"
if [ -n "${FLEET_EXPECT:-}" ] && [ "$outcome" != "$FLEET_EXPECT" ]; then
  echo "fleet-bench: expected the rollout to end '$FLEET_EXPECT', got '$outcome'" >&2
  exit 1
fi
