#!/usr/bin/env bash
# Release workflow in real hawkBit Management API syntax (works against hawkBit or hawkbit-sim):
#   software module (type os) → upload bundle (sha256 verified) → distribution set (type os)
#   → rollout (4 groups, success 95 %, error 5 %) → start when ready → follow the groups.
#
# usage: release.sh BUNDLE [VERSION]
# env:   HAWKBIT_URL   (default http://127.0.0.1:8080)   HAWKBIT_AUTH (default admin:admin)
#        TARGET_FILTER (default controllerid==sim-*)   ROLLOUT_GROUPS 4   SUCCESS 95   ERROR 5
#        ROLLOUT_TYPE  (default forced)   WAIT_SECS 300   DS_NAME (default eyas-fw)   SM_NAME (default rootfs)
#        ROLLOUT_GROUPS_JSON  explicit hawkBit 'groups' array (name, targetFilterQuery, targetPercentage, …)
#                             instead of amountGroups=ROLLOUT_GROUPS
#        ROLLOUT_TABLE=1      print the full group table (deploygroups?representation=full) on every change
# exit:  0 rollout finished · 3 rollout paused (error threshold) · 1 error / timeout
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export HAWKBIT_URL=${HAWKBIT_URL:-http://127.0.0.1:8080}
export HAWKBIT_AUTH=${HAWKBIT_AUTH:-admin:admin}
# shellcheck source=lib.sh
. "$HERE/lib.sh"

BUNDLE=${1:?usage: release.sh BUNDLE [VERSION]}
VERSION=${2:-$(date +%Y.%m.%d-%H%M%S)}
FILTER=${TARGET_FILTER:-controllerid==sim-*}
N_GROUPS=${ROLLOUT_GROUPS:-4} SUCCESS=${SUCCESS:-95} ERROR=${ERROR:-5}
TYPE=${ROLLOUT_TYPE:-forced} WAIT_SECS=${WAIT_SECS:-300}
[ -f "$BUNDLE" ] || { echo "release: no such bundle: $BUNDLE" >&2; exit 1; }
say() { echo "release: $*"; }

# 1. software module (bulk create: the body is an array)
SM=$(mgmt POST /softwaremodules "[{\"name\":\"${SM_NAME:-rootfs}\",\"version\":\"$VERSION\",\"type\":\"os\",\"vendor\":\"eyas\"}]" | json_get .0.id)
say "software module $SM (${SM_NAME:-rootfs} $VERSION, type os)"

# 2. upload the bundle as multipart part 'file'; the server verifies the SHA-256
SHA256=$(sha256sum "$BUNDLE" | cut -d' ' -f1)
ART=$(curl -sSf -u "$HAWKBIT_AUTH" -F "file=@$BUNDLE" "$HAWKBIT_URL/rest/v1/softwaremodules/$SM/artifacts?sha256sum=$SHA256")
say "uploaded $(echo "$ART" | json_get .providedFilename) ($(echo "$ART" | json_get .size) bytes, sha256 $SHA256)"

# 3. distribution set of type os with that module
DS=$(mgmt POST /distributionsets "[{\"name\":\"${DS_NAME:-eyas-fw}\",\"version\":\"$VERSION\",\"type\":\"os\",\"modules\":[{\"id\":$SM}]}]" | json_get .0.id)
say "distribution set $DS (${DS_NAME:-eyas-fw} $VERSION)"

# 4. rollout: a single object; groups either by count (amountGroups) or explicit (groups)
if [ -n "${ROLLOUT_GROUPS_JSON:-}" ]; then
  GROUPS_FIELD="\"groups\": $ROLLOUT_GROUPS_JSON"
  N_GROUPS=$(echo "$ROLLOUT_GROUPS_JSON" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))')
else
  GROUPS_FIELD="\"amountGroups\": $N_GROUPS"
fi
#    (thresholds are conditions, not fields like 'successThreshold'); thresholds are conditions, not fields like 'successThreshold'
RO=$(mgmt POST /rollouts "{
  \"name\": \"${DS_NAME:-eyas-fw}-$VERSION\", \"distributionSetId\": $DS, \"targetFilterQuery\": \"$FILTER\",
  $GROUPS_FIELD, \"type\": \"$TYPE\",
  \"successCondition\": {\"condition\": \"THRESHOLD\", \"expression\": \"$SUCCESS\"},
  \"successAction\":    {\"action\": \"NEXTGROUP\", \"expression\": \"\"},
  \"errorCondition\":   {\"condition\": \"THRESHOLD\", \"expression\": \"$ERROR\"},
  \"errorAction\":      {\"action\": \"PAUSE\", \"expression\": \"\"} }" | json_get .id)
say "rollout $RO created ($N_GROUPS groups, success $SUCCESS %, error $ERROR %, filter $FILTER)"

# 5. wait for 'ready' (group assignment is asynchronous), then start
deadline=$(( $(date +%s) + WAIT_SECS ))
until [ "$(mgmt GET "/rollouts/$RO" | json_get .status)" = ready ]; do
  [ "$(date +%s)" -lt "$deadline" ] || { say "rollout never became ready"; exit 1; }
  sleep 0.5
done
say "rollout ready with $(mgmt GET "/rollouts/$RO" | json_get .totalTargets) targets; starting"
mgmt POST "/rollouts/$RO/start" >/dev/null

# 6. follow the groups until finished (or paused by the error threshold)
last=""
while :; do
  status=$(mgmt GET "/rollouts/$RO" | json_get .status)
  line=$(mgmt GET "/rollouts/$RO/deploygroups?representation=full" | python3 -c '
import json, sys
gs = json.load(sys.stdin)["content"]
if sys.argv[1] == "1":
    print("  %-12s %-10s %6s %9s %8s %6s %8s" % ("group", "status", "total", "finished", "running", "error", "pending"))
    for g in gs:
        t = g["totalTargetsPerStatus"]
        print("  %-12s %-10s %6d %9d %8d %6d %8d" % (g["name"], g["status"], g["totalTargets"], t.get("finished", 0),
              t.get("running", 0), t.get("error", 0), t.get("notstarted", 0) + t.get("scheduled", 0)))
else:
    print("  ".join("%s:%s(%d/%d ok, %d err)" % (g["name"], g["status"], g["totalTargetsPerStatus"]["finished"],
          g["totalTargets"], g["totalTargetsPerStatus"]["error"]) for g in gs))' "${ROLLOUT_TABLE:-0}")
  if [ "$line" != "$last" ]; then
    if [ "${ROLLOUT_TABLE:-0}" = 1 ]; then say "rollout $RO [$status]"; echo "$line"; else say "[$status] $line"; fi
    last=$line
  fi
  case "$status" in
    finished) say "rollout $RO finished"; exit 0 ;;
    paused) say "rollout $RO paused (error threshold reached); resume with POST /rest/v1/rollouts/$RO/resume"; exit 3 ;;
  esac
  [ "$(date +%s)" -lt "$deadline" ] || { say "timeout after $WAIT_SECS s"; exit 1; }
  sleep 0.5
done
