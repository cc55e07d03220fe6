#!/usr/bin/env bash
# Real second DDI client: Debian's SWUpdate 2022.12 (suricatta hawkBit backend) against hawkbit-sim.
# Builds a CMS-signed .swu (real-peers.md §4), deploys it, and checks the outcome through the Mgmt API:
#   1st run: SWUpdate installs (raw handler writes a file) but never closes the action (ddi-api.md §3.2);
#   2nd run with -c 2: it reports closed/success → action finished, target in_sync, installed DS set.
# Needs: swupdate, openssl, cpio, curl, python3. SWUpdate uses global IPC sockets in /tmp: one at a time.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SIM_BIN=${SIM_BIN:-$ROOT/target/debug/hawkbit-sim}
export HAWKBIT_AUTH=${HAWKBIT_AUTH:-admin:admin}
# shellcheck source=lib.sh
. "$HERE/lib.sh"

for tool in swupdate openssl cpio curl python3; do
  command -v "$tool" >/dev/null || { echo "swupdate-e2e: '$tool' missing (run .ci/install-deps)" >&2; exit 1; }
done
[ -x "$SIM_BIN" ] || { echo "swupdate-e2e: $SIM_BIN not built (cargo build -p eyas-hil-tests --bins)" >&2; exit 1; }

W=$(mktemp -d /tmp/swupdate-e2e.XXXXXX)
SIM_PID="" SWU_PID=""
cleanup() {
  [ -n "$SWU_PID" ] && kill "$SWU_PID" 2>/dev/null && wait "$SWU_PID" 2>/dev/null || true
  [ -n "$SIM_PID" ] && kill "$SIM_PID" 2>/dev/null && wait "$SIM_PID" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
fail() { echo "swupdate-e2e: FAIL: $*" >&2; for f in "$W"/*.log "$W/sim.err"; do [ -f "$f" ] && { echo "--- $f" >&2; tail -40 "$f" >&2; }; done; exit 1; }

# --- test PKI (real-peers.md §2.1): CA + signer without EKU
P=$W/pki
test_pki "$P" "Test" || fail "test PKI"

# --- signed .swu whose raw handler writes a regular file
TARGET=$W/target.img
head -c 1048576 /dev/urandom >"$W/rootfs.img"
: >"$TARGET"
S=$W/swu; mkdir -p "$S"; cp "$W/rootfs.img" "$S/rootfs.img"
SHA=$(sha256sum "$S/rootfs.img" | cut -d' ' -f1)
cat >"$S/sw-description" <<DESC
software = {
  version = "1.1.0";
  description = "eyas hawkbit-sim e2e";
  hardware-compatibility: [ "1.0" ];
  images: ( {
    filename = "rootfs.img";
    device = "$TARGET";
    type = "raw";
    sha256 = "$SHA";
  } );
}
DESC
openssl cms -sign -in "$S/sw-description" -out "$S/sw-description.sig" -signer "$P/signer.cert.pem" \
  -inkey "$P/signer.key.pem" -outform DER -nosmimecap -binary
(cd "$S" && printf 'sw-description\nsw-description.sig\nrootfs.img\n' | cpio -o -H crc --quiet) >"$W/update.swu"

# --- simulator + release objects (real hawkBit Mgmt syntax)
start_sim "$W" --polling-time 00:00:01 --min-polling-time 00:00:01 -v
echo "swupdate-e2e: hawkbit-sim at $HAWKBIT_URL"
TOKEN=cb115a721af28f781b493fa467819ef5
mgmt POST /targets "[{\"controllerId\":\"test-target\",\"name\":\"test-target\",\"securityToken\":\"$TOKEN\"}]" >/dev/null
SM=$(mgmt POST /softwaremodules '[{"name":"swu-image","version":"1.1.0","type":"os"}]' | json_get .0.id)
curl -sSf -u "$HAWKBIT_AUTH" -F "file=@$W/update.swu" \
  "$HAWKBIT_URL/rest/v1/softwaremodules/$SM/artifacts?sha256sum=$(sha256sum "$W/update.swu" | cut -d' ' -f1)" >/dev/null
DS=$(mgmt POST /distributionsets "[{\"name\":\"swu-fw\",\"version\":\"1.1.0\",\"type\":\"os\",\"modules\":[{\"id\":$SM}]}]" | json_get .0.id)
ACTION=$(mgmt POST /targets/test-target/assignedDS "{\"id\":$DS,\"type\":\"forced\"}" | json_get .assignedActions.0.id)
echo "swupdate-e2e: assigned DS $DS to test-target, action $ACTION"

action_field() { mgmt GET "/targets/test-target/actions/$ACTION" | json_get "$1"; }
messages() { mgmt GET "/targets/test-target/actions/$ACTION/status?limit=500" | json_get .content; }

rm -f /tmp/swupdateprog /tmp/sockinstctrl
SUR="-t DEFAULT -u $HAWKBIT_URL -i test-target -k $TOKEN -p 1"
# --- run 1: installs, never closes
swupdate -v -H testboard:1.0 -k "$P/ca.cert.pem" -u "$SUR" >"$W/swupdate-1.log" 2>&1 &
SWU_PID=$!
for _ in $(seq 1 120); do
  messages | grep -q 'All Chunks Installed' && break
  kill -0 "$SWU_PID" 2>/dev/null || fail "swupdate exited early"
  sleep 0.5
done
messages | grep -q 'All Chunks Installed' || fail "no 'All Chunks Installed' feedback within 60 s"
cmp -s "$W/rootfs.img" "$TARGET" || fail "the raw handler did not write the image"
sleep 3   # it keeps polling; the action must stay open
[ "$(action_field .status)" = pending ] || fail "SWUpdate closed the action without -c 2 (status $(action_field .detailStatus))"
kill "$SWU_PID"; wait "$SWU_PID" 2>/dev/null || true; SWU_PID=""
echo "swupdate-e2e: run 1 installed the image; action still $(action_field .detailStatus) (as real hawkBit shows it)"

# --- run 2: -c 2 reports the pending update as successful
rm -f /tmp/swupdateprog /tmp/sockinstctrl
swupdate -v -H testboard:1.0 -k "$P/ca.cert.pem" -u "$SUR -c 2" >"$W/swupdate-2.log" 2>&1 &
SWU_PID=$!
for _ in $(seq 1 120); do
  [ "$(action_field .detailStatus)" = finished ] && break
  sleep 0.5
done
[ "$(action_field .detailStatus)" = finished ] || fail "action not finished after restart with -c 2 ($(action_field .detailStatus))"
kill "$SWU_PID"; wait "$SWU_PID" 2>/dev/null || true; SWU_PID=""
[ "$(mgmt GET /targets/test-target | json_get .updateStatus)" = in_sync ] || fail "target not in_sync"
[ "$(mgmt GET /targets/test-target/installedDS | json_get .id)" = "$DS" ] || fail "installed DS not set"
grep -q "HEAD /DEFAULT/controller/v1/test-target/softwaremodules/$SM/artifacts/update.swu -> 200" "$W/sim.err" \
  || fail "expected SWUpdate's HEAD before the download"
echo "swupdate-e2e: OK — SWUpdate 2022.12 completed a signed .swu deployment; action $ACTION finished"
