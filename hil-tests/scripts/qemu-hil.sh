#!/usr/bin/env bash
# QEMU hardware-in-the-loop scenarios: the cross-built eyas on an emulated aarch64 board (qemu/:
# QEMU virt, cortex-a57, -smp 1, U-Boot from u-boot-qemu with RAUC's boot.scr, real RAUC 1.8 with
# bootloader=uboot and fw_setenv on the raw env) against hawkbit-sim and mosquitto on the host.
# The guest reaches them only through user-mode networking with restrict=on and
# guestfwd=tcp:10.0.2.100:{8080,1883}-cmd:socat to 127.0.0.1 (nothing else is reachable).
#
# usage: hil-tests/scripts/qemu-hil.sh [SCENARIO...]        (default: good fallback)
#        QEMU_HIL_JOBS=2 hil-tests/scripts/qemu-hil.sh good fallback unhealthy powercut parts delta staged
#        (all seven, two VMs at a time; staged has two VMs of its own and runs alone)
#   good      a rollout of rootfs 2.0.0: eyas downloads, RAUC installs into B, eyas reboots the VM,
#             U-Boot boots B, the health check passes, RAUC marks B good; hawkBit finished,
#             mosquitto gets ota_status=success with rauc_slot=B, the env has B first with 3 attempts
#   fallback  a rollout of a 2.0.0 whose userspace dies at every boot: U-Boot counts B's attempts
#             down (2, 1, 0) and boots A; eyas on A reports closed/failure (fell back) and installedBase
#             1.0.0, the canary group's error threshold pauses the rollout, B is marked bad
#   unhealthy a 2.0.0 that boots but fails the health check: B marked bad, closed/failure (300),
#             eyas reboots back to A, the rollout pauses
#   powercut  one update with five power cuts (mid-download, mid-copy, right after RAUC's env write,
#             right after U-Boot's, mid-boot of B): ends finished with the truth, a good slot primary
#   parts     an application (appfs slot, no reboot) + a configuration file (part.config.command) in
#             one deployment: finished, no reboot, both on the disk
#   staged    two boards, one rollout with two groups: the second starts after the first finished
#   delta     the 2.0.0 update as a casync bundle: RAUC + casync in the guest seed from A and fetch
#             only the missing chunks from nginx on the host; prints the bytes over the air
# Each scenario prints its duration; the console of every VM run goes to a log in the run directory.
# Env: QEMU_HIL_DIR (run directory, default .work/qemu-hil/<time>)   QEMU_HIL_SKIP_BUILD=1
#      QEMU_HIL_KEEP_DISKS=1 (keep the disk images of passing scenarios too; failing ones are always kept)
#      EYAS_BIN (aarch64 eyas to put into the image instead of ./run cross; see qemu/README.md)
#      HAWKBIT_SIM_BIN (a built hawkbit-sim instead of cargo build)   QEMU_HIL_JOBS (scenarios at a time)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../../qemu/lib.sh
. "$ROOT/qemu/lib.sh"
LOG_NAME=qemu-hil
export HAWKBIT_AUTH=admin:admin
# shellcheck source=lib.sh
. "$HERE/lib.sh"
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(good fallback)
RUN_DIR=${QEMU_HIL_DIR:-$ROOT/.work/qemu-hil/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$RUN_DIR"
T_ALL=$(date +%s)
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
for t in qemu-system-aarch64 socat mosquitto mosquitto_sub fw_printenv python3 curl cargo "$NGINX"; do
  command -v "$t" >/dev/null || die "$t missing (run .ci/install-deps)"
done
UBOOT=/usr/lib/u-boot/qemu_arm64/u-boot.bin
[ -f "$UBOOT" ] || die "$UBOOT missing (u-boot-qemu)"

if [ "${QEMU_HIL_SKIP_BUILD:-0}" != 1 ]; then
  t=$(date +%s)
  bash "$ROOT/qemu/build-image.sh" 2>&1 | sed 's/^/  /'
  log "image ready ($(( $(date +%s) - t )) s)"
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target-qemu}
if [ -n "${HAWKBIT_SIM_BIN:-}" ]; then
  SIM_BIN=$HAWKBIT_SIM_BIN
else
  (cd "$ROOT" && cargo build -q --locked -p eyas-hil-tests --bin hawkbit-sim) || die "building hawkbit-sim"
  SIM_BIN=$CARGO_TARGET_DIR/debug/hawkbit-sim
fi
(cd "$ROOT" && cargo build -q --locked -p eyasctl --bin eyasctl) || die "building eyasctl"
CTL_BIN=$CARGO_TARGET_DIR/debug/eyasctl

PIDS=()
cleanup() {
  local rc=$? i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
  for i in "${PIDS[@]}"; do wait "$i" 2>/dev/null || true; done
  return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- per-scenario services
# services W DEV...: mosquitto (one listener per device, ThingsBoard-style token auth) + observer,
# hawkbit-sim with the devices registered and the factory set rootfs 1.0.0 installed
services() {
  local w=$1 dev port; shift
  mkdir -p "$w/mqtt"
  MQTT_PORT=$(free_port)
  {
    echo "user $(id -un)"; echo "per_listener_settings false"; echo "allow_anonymous true"
    echo "acl_file $w/mqtt/acl"; echo "log_dest file $w/mqtt/broker.log"; echo "listener $MQTT_PORT 127.0.0.1"
  } >"$w/mqtt/mosquitto.conf"
  printf 'user observer\ntopic read #\n' >"$w/mqtt/acl"
  for dev in "$@"; do
    port=$(free_port); echo "$port" >"$w/mqtt/$dev.port"
    printf 'listener %s 127.0.0.1\nmount_point %s/\n' "$port" "$dev" >>"$w/mqtt/mosquitto.conf"
    printf 'user tok-mqtt-%s\ntopic readwrite %s/v1/devices/me/#\n' "$dev" "$dev" >>"$w/mqtt/acl"
  done
  mosquitto -c "$w/mqtt/mosquitto.conf" >"$w/mqtt/mosquitto.out" 2>&1 & PIDS+=("$!")
  local n=0
  until bash -c "exec 3<>/dev/tcp/127.0.0.1/$MQTT_PORT" 2>/dev/null; do
    n=$((n + 1)); [ $n -lt 50 ] || die "mosquitto did not start"; sleep 0.2
  done
  mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -u observer -i qemu-hil-observer -q 1 -v -t '+/v1/devices/me/telemetry' \
    >"$w/telemetry.txt" 2>"$w/mqtt/sub.err" & PIDS+=("$!")
  start_sim "$w" --polling-time 00:00:02 --min-polling-time 00:00:01 --rollout-interval-ms 500 ${SIM_EXTRA:-}
  PIDS+=("$SIM_PID")
  local body fsm fds
  body=$(printf '{"controllerId":"%s","name":"%s","securityToken":"tok-%s"},' $(for dev in "$@"; do echo "$dev $dev $dev"; done))
  mgmt POST /targets "[${body%,}]" >/dev/null
  fsm=$(mgmt POST /softwaremodules '[{"name":"rootfs","version":"1.0.0","type":"os","vendor":"eyas"}]' | json_get .0.id)
  fds=$(mgmt POST /distributionsets "[{\"name\":\"rootfs\",\"version\":\"1.0.0\",\"type\":\"os\",\"modules\":[{\"id\":$fsm}]}]" | json_get .0.id)
  for dev in "$@"; do mgmt POST "/targets/$dev/assignedDS?offline=true" "{\"id\":$fds}" >/dev/null; done
}

# device W DEV: the device's own copy of the factory disk, provisioned with its identity on /data
device() {
  local w=$1 dev=$2 d=$1/$2
  mkdir -p "$d/data/eyas"
  cp --sparse=always "$OUT/disk.img" "$d/disk.img"
  cat >"$d/data/eyas.conf" <<CONF
[client]
hawkbit_server=10.0.2.100:8080
ssl=false
target_name=$dev
auth_token=tok-$dev
bundle_download_location=/data/eyas/bundle.raucb
retry_wait=5
post_update_reboot=true
[device]
product=eyas-qemu
hw_revision=1
[eyas]
record_path=/data/eyas/record.bin
mqtt_host=10.0.2.100
mqtt_port=1883
mqtt_access_token=tok-mqtt-$dev
health_check_command=/usr/lib/eyas-hil/health-check
health_check_timeout=60
reboot_command=/usr/lib/eyas-hil/reboot
poll_min=1
poll_max=3
installed_name=rootfs
installed_version=1.0.0
casync_store=http://10.0.2.100:8081/store.castr/
part.config.command=/usr/lib/eyas-hil/config-hook
part.config.timeout=30
CONF
  # the application slot of the guest's system.conf (slot.appfs.0, no bootname): a file on /data
  truncate -s 4M "$d/data/appfs.img"
  mke2fs -q -F -t ext4 -O ^metadata_csum,^64bit -E root_owner=0:0 -L data -d "$d/data" "$d/data.ext4" "${DATA_MB}M" >/dev/null
  dd if="$d/data.ext4" of="$d/disk.img" bs=1M seek="$DATA_START" conv=notrunc,sparse status=none
  rm -f "$d/data.ext4"
  echo "$d/disk.img $ENV_OFFSET $ENV_SIZE" >"$d/fw_env.config"
}

# vm W DEV RUN [console.py options...]: one QEMU process (power on .. power cut) of DEV's board,
# console scraped with ordered expectations; console log $W/DEV/console-RUN.log
vm() {
  local w=$1 dev=$2 run=$3; shift 3
  local d=$w/$dev sim_port=${HAWKBIT_URL##*:} mqtt_port store_fwd=""
  mqtt_port=$(cat "$w/mqtt/$dev.port")
  # the casync chunk store, when the scenario serves one (delta)
  [ -f "$w/nginx/port" ] && store_fwd=",guestfwd=tcp:10.0.2.100:8081-cmd:socat - TCP:127.0.0.1:$(cat "$w/nginx/port")"
  exec python3 "$ROOT/qemu/console.py" --name "$dev/$run" --log "$d/console-$run.log" --forbid 'HIL-FAIL' "$@" -- \
    qemu-system-aarch64 -M virt -cpu cortex-a57 -m 512 -smp 1 -nographic -monitor none \
    -bios "$UBOOT" \
    -drive "if=pflash,unit=1,format=raw,readonly=on,file=$OUT/envflash.img" \
    -drive "if=none,id=hd0,file=$d/disk.img,format=raw,cache=unsafe" -device virtio-blk-pci,drive=hd0 \
    -device virtio-rng-pci \
    -netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:8080-cmd:socat - TCP:127.0.0.1:$sim_port,guestfwd=tcp:10.0.2.100:1883-cmd:socat - TCP:127.0.0.1:$mqtt_port$store_fwd" \
    -device virtio-net-pci,netdev=n0,romfile=
}

env_of() { fw_printenv -c "$1/$2/fw_env.config" BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT | tr '\n' ' ' | sed 's/ $//'; }

# release W DEV-FILTER BUNDLE VERSION GROUPS-JSON: in the background, `eyasctl publish` (rootfs VERSION) and
# `eyasctl rollout create` with one `--group NAME=FILTER` per group of GROUPS-JSON (success 100 %, error 0 %),
# started, then `eyasctl rollout watch`; output in $W/release.log, exit code (0 finished, 3 paused) in $W/release.rc
release() {
  local w=$1 filter=$2 bundle=$3 version=$4 groups=$5
  (
    set +e
    (
      set -e
      args=()
      while IFS= read -r g; do args+=(--group "$g"); done < <(python3 -c '
import json, sys
for g in json.loads(sys.argv[1]):
    print("%s=%s" % (g["name"], g["targetFilterQuery"]))' "$groups")
      "$CTL_BIN" publish "$bundle" --name rootfs --version "$version"
      out=$("$CTL_BIN" rollout create --ds "rootfs:$version" --filter "$filter" "${args[@]}" \
        --success 100 --error 0 --start --wait 600)
      echo "$out"
      exec "$CTL_BIN" rollout watch "${out##*rollout=}" --timeout 600
    ) >"$w/release.log" 2>&1
    echo $? >"$w/release.rc"
  ) & PIDS+=("$!")
}
group() { # group NAME FILTER -> one rollout group, 100 % of FILTER, success 100 %, error 0 %
  printf '{"name":"%s","targetPercentage":100,"targetFilterQuery":"%s","successCondition":{"condition":"THRESHOLD","expression":"100"},"errorCondition":{"condition":"THRESHOLD","expression":"0"}}' "$1" "$2"
}
wait_file() { # wait_file SECS FILE WHAT
  local end=$(( $(date +%s) + $1 ))
  until [ -e "$2" ]; do [ "$(date +%s)" -lt "$end" ] || die "timeout after $1 s waiting for $3"; sleep 0.5; done
}
# action_of DEV: the device's rollout action as JSON (status, detailStatus, id); without a rollout,
# its newest action
action_of() {
  mgmt GET "/targets/$1/actions?limit=50" | python3 -c '
import json, sys
all_acts = json.load(sys.stdin)["content"]
acts = [a for a in all_acts if a.get("rollout")] or sorted(all_acts, key=lambda a: -a["id"])
print(json.dumps(acts[0] if acts else {}))'
}
action_messages() { # action_messages DEV: every message of the device's rollout action, one per line
  local id
  id=$(action_of "$1" | json_get .id)
  mgmt GET "/targets/$1/actions/$id/status?offset=0&limit=100" | python3 -c '
import json, sys
for s in json.load(sys.stdin).get("content", []):
    for m in s.get("messages") or []:
        print(m)'
}
telemetry_last() { # telemetry_last W DEV: the device's merged telemetry values
  python3 - "$1/telemetry.txt" "$2" <<'PY'
import json, sys
v = {}
for line in open(sys.argv[1]):
    topic, _, payload = line.strip().partition(" ")
    if topic.split("/")[0] == sys.argv[2]:
        try:
            v.update(json.loads(payload)["values"])
        except Exception:
            pass
print(json.dumps(v, sort_keys=True))
PY
}
CHECKS_FAILED=0
check() { # check WHAT GOT WANT
  if [ "$2" = "$3" ]; then echo "  check ok: $1 = $2"; else echo "  check FAILED: $1 = '$2', expected '$3'"; CHECKS_FAILED=1; fi
}

# common expectations of a factory boot that takes an update: U-Boot picks A, eyas marks A good
BOOT_A=(--expect 30 "U-Boot: slot A chosen, attempt counted" 'RAUC: found valid slot A, 2 attempts remaining'
        --expect 90 "kernel + init on slot A (1.0.0)" 'HIL-MARKER: booted slot=A version=1\.0\.0'
        --expect 60 "RAUC service up (booted A)" "HIL-MARKER: rauc up: .*BOOTED_BOOTNAME='?A"
        --expect 90 "health check on A passed (mark good on boot)" 'HIL-MARKER: health check ok on slot A'
        --expect 120 "eyas downloads the bundle" 'INFO downloading rootfs-2\.0\.0.*\.raucb'
        --expect 120 "eyas verified size and SHA-256" 'INFO rootfs-2\.0\.0.*\.raucb: size and checksum OK'
        --expect 120 "RAUC (in the guest) installed into B" 'RAUC: 100% Installing done'
        --expect 60 "eyas reboots the board" 'HIL-MARKER: reboot requested by eyas')

scenario_good() {
  local w=$RUN_DIR/good dev=qemu-01 rc=0
  mkdir -p "$w"
  services "$w" "$dev"; device "$w" "$dev"
  release "$w" "controllerid==$dev" "$OUT/bundles/rootfs-2.0.0.raucb" 2.0.0 "[$(group canary "controllerid==$dev")]"
  vm "$w" "$dev" 1 --then hold --done-file "$w/vm1.done" "${BOOT_A[@]}" \
    --expect 30 "U-Boot: slot B chosen, attempt counted" 'RAUC: found valid slot B, 2 attempts remaining' \
    --expect 90 "kernel + init on slot B (2.0.0)" 'HIL-MARKER: booted slot=B version=2\.0\.0' \
    --expect 60 "RAUC service up (booted B)" "HIL-MARKER: rauc up: .*BOOTED_BOOTNAME='?B" \
    --expect 90 "health check on B passed" 'HIL-MARKER: health check ok on slot B' \
    --expect 60 "RAUC marked B good" 'marked slot rootfs\.1 as good' \
    --forbid 'Kernel panic' >"$w/vm1.out" 2>&1 & local vmpid=$!
  PIDS+=("$vmpid")
  tail -f "$w/vm1.out" --pid "$vmpid" 2>/dev/null & PIDS+=("$!")
  while [ ! -e "$w/vm1.done" ] && kill -0 "$vmpid" 2>/dev/null; do sleep 0.5; done
  [ -e "$w/vm1.done" ] || { wait "$vmpid" || true; die "good: the VM's console expectations failed (see $w/$dev/console-1.log)"; }
  wait_file 120 "$w/release.rc" "the rollout to finish"
  local t=""
  for _ in $(seq 1 60); do
    t=$(telemetry_last "$w" "$dev")
    [ "$(echo "$t" | json_get .ota_status)" = success ] && break
    sleep 0.5
  done
  kill "$vmpid"; wait "$vmpid" || rc=$?
  check "VM console expectations (exit)" "$rc" 0
  check "eyasctl rollout watch exit (0 = rollout finished)" "$(cat "$w/release.rc")" 0
  local a; a=$(action_of "$dev")
  check "hawkBit action" "$(echo "$a" | json_get .status)/$(echo "$a" | json_get .detailStatus)" "finished/finished"
  check "telemetry ota_status" "$(echo "$t" | json_get .ota_status)" success
  check "telemetry rauc_slot" "$(echo "$t" | json_get .rauc_slot)" B
  check "telemetry sw_version" "$(echo "$t" | json_get .sw_version)" 2.0.0
  check "U-Boot env after the power cut" "$(env_of "$w" "$dev")" "BOOT_ORDER=B A BOOT_A_LEFT=3 BOOT_B_LEFT=3"
}

scenario_fallback() {
  local w=$RUN_DIR/fallback dev=qemu-01 rc=0
  mkdir -p "$w"
  services "$w" "$dev"; device "$w" "$dev"
  release "$w" "controllerid==$dev" "$OUT/bundles/rootfs-2.0.0-crash.raucb" 2.0.0-crash "[$(group canary "controllerid==$dev")]"
  local crash=(--expect 90 "B's userspace dies, the kernel panics and resets" 'HIL-MARKER: slot B crashes before userspace')
  vm "$w" "$dev" 1 --then hold --done-file "$w/vm1.done" "${BOOT_A[@]}" \
    --expect 30 "U-Boot: slot B chosen, 2 attempts left" 'RAUC: found valid slot B, 2 attempts remaining' "${crash[@]}" \
    --expect 30 "U-Boot: slot B chosen, 1 attempt left" 'RAUC: found valid slot B, 1 attempts remaining' "${crash[@]}" \
    --expect 30 "U-Boot: slot B chosen, 0 attempts left" 'RAUC: found valid slot B, 0 attempts remaining' "${crash[@]}" \
    --expect 30 "U-Boot: B used up, falls back to A" 'RAUC: found valid slot A, [0-9] attempts remaining' \
    --expect 90 "kernel + init on slot A (1.0.0)" 'HIL-MARKER: booted slot=A version=1\.0\.0' \
    --expect 90 "health check on A passed" 'HIL-MARKER: health check ok on slot A' \
    >"$w/vm1.out" 2>&1 & local vmpid=$!
  PIDS+=("$vmpid")
  tail -f "$w/vm1.out" --pid "$vmpid" 2>/dev/null & PIDS+=("$!")
  while [ ! -e "$w/vm1.done" ] && kill -0 "$vmpid" 2>/dev/null; do sleep 0.5; done
  [ -e "$w/vm1.done" ] || { wait "$vmpid" || true; die "fallback: the VM's console expectations failed (see $w/$dev/console-1.log)"; }
  wait_file 120 "$w/release.rc" "the rollout to pause"
  local t=""
  for _ in $(seq 1 60); do
    t=$(telemetry_last "$w" "$dev")
    [ "$(echo "$t" | json_get .ota_status)" = failure ] && [ "$(echo "$t" | json_get .rauc_slot)" = A ] && break
    sleep 0.5
  done
  kill "$vmpid"; wait "$vmpid" || rc=$?
  check "VM console expectations (exit)" "$rc" 0
  check "eyasctl rollout watch exit (3 = rollout paused by the error threshold)" "$(cat "$w/release.rc")" 3
  local a aid msgs; a=$(action_of "$dev"); aid=$(echo "$a" | json_get .id)
  check "hawkBit action" "$(echo "$a" | json_get .status)/$(echo "$a" | json_get .detailStatus)" "finished/error"
  msgs=$(mgmt GET "/targets/$dev/actions/$aid/status?limit=1" | json_get .content.0.messages)
  echo "  hawkBit: last feedback messages: $msgs"
  case $msgs in *A*B*|*B*A*) echo "  check ok: the feedback names both slots";;
    *) echo "  check FAILED: the feedback does not name the slots"; CHECKS_FAILED=1;; esac
  local ib; ib=$(curl -sS -H "Authorization: TargetToken tok-$dev" "$HAWKBIT_URL/DEFAULT/controller/v1/$dev" | json_get ._links.installedBase.href)
  check "DDI installedBase version (what runs again)" \
    "$( [ -n "$ib" ] && curl -sS -H "Authorization: TargetToken tok-$dev" "$ib" | json_get .deployment.chunks.0.version)" 1.0.0
  check "telemetry ota_status" "$(echo "$t" | json_get .ota_status)" failure
  check "telemetry error_code" "$(echo "$t" | json_get .error_code)" 400
  check "telemetry rauc_slot" "$(echo "$t" | json_get .rauc_slot)" A
  check "U-Boot env after the power cut (B marked bad, A good)" "$(env_of "$w" "$dev")" "BOOT_ORDER=A BOOT_A_LEFT=3 BOOT_B_LEFT=0"
}

# A 2.0.0 that boots but fails the health check: eyas on B marks B bad, reports closed/failure
# (300) and reboots; U-Boot boots A again (B has no attempts left), eyas there marks A good.
scenario_unhealthy() {
  local w=$RUN_DIR/unhealthy dev=qemu-01
  mkdir -p "$w"
  services "$w" "$dev"; device "$w" "$dev"
  release "$w" "controllerid==$dev" "$OUT/bundles/rootfs-2.0.0-unhealthy.raucb" 2.0.0-unhealthy "[$(group canary "controllerid==$dev")]"
  local bad=("${BOOT_A[@]}")
  bad[19]='INFO downloading rootfs-2\.0\.0-unhealthy.*\.raucb'; bad[23]='INFO rootfs-2\.0\.0-unhealthy.*\.raucb: size and checksum OK'
  hold_vm "$w" "$dev" 1 240 "${bad[@]}" \
    --expect 30 "U-Boot: slot B chosen" 'RAUC: found valid slot B, 2 attempts remaining' \
    --expect 90 "kernel + init on slot B (2.0.0-unhealthy)" 'HIL-MARKER: booted slot=B version=2\.0\.0-unhealthy' \
    --expect 90 "the health check fails on B" 'HIL-MARKER: health check FAILED on slot B' \
    --expect 60 "RAUC marks B bad" 'marked slot rootfs\.1 as bad' \
    --expect 60 "eyas reboots back" 'HIL-MARKER: reboot requested by eyas' \
    --expect 30 "U-Boot: B has no attempts, A chosen" 'RAUC: found valid slot A, [0-9] attempts remaining' \
    --expect 90 "kernel + init on slot A (1.0.0)" 'HIL-MARKER: booted slot=A version=1\.0\.0' \
    --expect 90 "health check on A passed" 'HIL-MARKER: health check ok on slot A' \
    --forbid 'Kernel panic'
  check "hawkBit action" "$HELD_STATUS" "finished/error"
  wait_file 60 "$w/release.rc" "the rollout to pause"
  check "eyasctl rollout watch exit (3 = rollout paused by the error threshold)" "$(cat "$w/release.rc")" 3
  local t=""
  for _ in $(seq 1 40); do
    t=$(telemetry_last "$w" "$dev")
    [ "$(echo "$t" | json_get .ota_status)" = failure ] && [ "$(echo "$t" | json_get .rauc_slot)" = A ] && break
    sleep 0.5
  done
  check "telemetry ota_status" "$(echo "$t" | json_get .ota_status)" failure
  check "telemetry error_code" "$(echo "$t" | json_get .error_code)" 300
  check "telemetry rauc_slot" "$(echo "$t" | json_get .rauc_slot)" A
  check "U-Boot env (B bad, A good)" "$(env_of "$w" "$dev")" "BOOT_ORDER=A BOOT_A_LEFT=3 BOOT_B_LEFT=0"
}

# chunk_store W: nginx serving out/castore (the casync chunk store) with an access log of the bytes
# sent per request; its port in W/nginx/port
chunk_store() {
  start_nginx "$1/nginx" "$OUT/castore" || die "nginx for the chunk store"
}

# The 2.0.0 update as a casync bundle (delta update): eyas downloads the small index bundle from
# hawkBit, RAUC in the guest runs casync, which seeds from the booted slot A and fetches only the
# missing chunks from nginx on the host. Same end state as `good`; prints the bytes fetched.
scenario_delta() {
  local w=$RUN_DIR/delta dev=qemu-01
  mkdir -p "$w"
  services "$w" "$dev"; device "$w" "$dev"; chunk_store "$w"
  release "$w" "controllerid==$dev" "$OUT/bundles/rootfs-2.0.0-casync.raucb" 2.0.0 "[$(group canary "controllerid==$dev")]"
  local idx=("${BOOT_A[@]}")
  idx[19]='INFO downloading rootfs-2\.0\.0-casync\.raucb'; idx[23]='INFO rootfs-2\.0\.0-casync\.raucb: size and checksum OK'
  idx[26]="RAUC (casync in the guest, seeded from A) installed into B"
  hold_vm "$w" "$dev" 1 240 "${idx[@]}" \
    --expect 30 "U-Boot: slot B chosen" 'RAUC: found valid slot B, 2 attempts remaining' \
    --expect 90 "kernel + init on slot B (2.0.0)" 'HIL-MARKER: booted slot=B version=2\.0\.0' \
    --expect 90 "health check on B passed" 'HIL-MARKER: health check ok on slot B' \
    --expect 60 "RAUC marked B good" 'marked slot rootfs\.1 as good' \
    --forbid 'Kernel panic'
  check "hawkBit action" "$HELD_STATUS" "finished/finished"
  wait_file 60 "$w/release.rc" "the rollout to finish"
  check "eyasctl rollout watch exit (0 = rollout finished)" "$(cat "$w/release.rc")" 0
  check "U-Boot env after the power cut" "$(env_of "$w" "$dev")" "BOOT_ORDER=B A BOOT_A_LEFT=3 BOOT_B_LEFT=3"
  local full index chunks nchunks
  full=$(stat -c %s "$OUT/bundles/rootfs-2.0.0.raucb")
  index=$(stat -c %s "$OUT/bundles/rootfs-2.0.0-casync.raucb")
  chunks=$(awk '$1 ~ /\.cacnk$/ && $2 == 200 {s += $3} END {print s + 0}' "$w/nginx/access.log")
  nchunks=$(awk '$1 ~ /\.cacnk$/ && $2 == 200 {n++} END {print n + 0}' "$w/nginx/access.log")
  echo "  bytes over the air: index bundle $index B (from hawkBit) + $nchunks chunks $chunks B (from the store)" \
    "= $((index + chunks)) B, $(python3 -c "print('%.2f' % (100 * ($index + $chunks) / $full))") % of the full bundle ($full B)"
  # eyas' chunk relay counted the same bytes: telemetry and the closed feedback in hawkBit
  check "telemetry update_bytes (index + chunks through eyas' relay)" \
    "$(telemetry_last "$w" "$dev" | json_get .update_bytes)" "$((index + chunks))"
  check "closed feedback detail in hawkBit" \
    "$(action_messages "$dev" | grep -o "update_bytes=[0-9]*" | tail -1)" "update_bytes=$((index + chunks))"
  # the seed did its work: far less than the full bundle came over the air
  if [ "$nchunks" -gt 0 ] && [ $(( (index + chunks) * 4 )) -lt "$full" ]; then
    echo "  check ok: a casync update fetched chunks and less than a quarter of the full bundle"
  else
    echo "  check FAILED: $nchunks chunks, $((index + chunks)) B fetched for a $full B bundle"; CHECKS_FAILED=1
  fi
}

# wait_action DEV SECS: until the device's rollout action is closed in hawkBit (status finished or
# error); prints status/detailStatus
wait_action() {
  local end=$(( $(date +%s) + $2 )) a st
  while :; do
    a=$(action_of "$1"); st=$(echo "$a" | json_get .status)
    case $st in finished|error|canceled) echo "$st/$(echo "$a" | json_get .detailStatus)"; return 0;; esac
    [ "$(date +%s)" -lt "$end" ] || { echo "timeout/${st:-none}"; return 1; }
    sleep 1
  done
}
# hold_vm W DEV RUN SECS EXPECT...: a VM run that keeps going after its expectations until the
# device's action is closed in hawkBit (at most SECS), then the power is cut; sets HELD_STATUS
hold_vm() {
  local w=$1 dev=$2 run=$3 secs=$4 vmpid; shift 4
  local out=$w/$dev/vm$run.out done=$w/$dev/vm$run.done
  vm "$w" "$dev" "$run" --then hold --done-file "$done" "$@" >"$out" 2>&1 & vmpid=$!
  PIDS+=("$vmpid")
  tail -f "$out" --pid "$vmpid" 2>/dev/null & PIDS+=("$!")
  while [ ! -e "$done" ] && kill -0 "$vmpid" 2>/dev/null; do sleep 0.5; done
  [ -e "$done" ] || { wait "$vmpid" || true; die "$dev run $run: the console expectations failed (see $w/$dev/console-$run.log)"; }
  HELD_STATUS=$(wait_action "$dev" "$secs") || true
  kill "$vmpid"; local rc=0; wait "$vmpid" || rc=$?
  check "VM run $run console expectations (exit)" "$rc" 0
}
# cut_vm W DEV RUN EXPECT...: a VM run cut off (QEMU killed) right after its last expectation
cut_vm() {
  local w=$1 dev=$2 run=$3; shift 3
  ( vm "$w" "$dev" "$run" --then kill "$@" ) || die "$dev run $run: the console expectations failed (see $w/$dev/console-$run.log)"
}
# first_slot_state W DEV: "<first slot of BOOT_ORDER> <its attempts left>"
first_slot_state() {
  fw_printenv -c "$1/$2/fw_env.config" BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT | python3 -c '
import sys
env = dict(l.strip().split("=", 1) for l in sys.stdin if "=" in l)
first = env.get("BOOT_ORDER", "").split()[0] if env.get("BOOT_ORDER", "").split() else ""
print(first, env.get("BOOT_%s_LEFT" % first, "?"))'
}

# Power cuts at the four dangerous moments of one update, each followed by a power-on: in the
# middle of the download (on a 4 MB/s line), in the middle of RAUC's copy into B, right after
# RAUC's env write (B made primary), right after U-Boot's own env write (attempt counted) and in
# the middle of B's boot. The board must always come up on a good slot and the action must end
# finished with the truth (2.0.0 running, marked good), whatever eyas had stored when the power went.
scenario_powercut() {
  local w=$RUN_DIR/powercut dev=qemu-01
  mkdir -p "$w"
  SIM_EXTRA="--bandwidth 4000000" services "$w" "$dev"; device "$w" "$dev"
  release "$w" "controllerid==$dev" "$OUT/bundles/rootfs-2.0.0.raucb" 2.0.0 "[$(group canary "controllerid==$dev")]"
  local A_UP=(--expect 30 "U-Boot: slot A chosen" 'RAUC: found valid slot A, [0-9] attempts remaining'
              --expect 90 "kernel + init on slot A (1.0.0)" 'HIL-MARKER: booted slot=A version=1\.0\.0')
  echo "  --- cut 1: in the middle of the download"
  cut_vm "$w" "$dev" 1 --kill-delay 3 "${A_UP[@]}" \
    --expect 90 "health check on A passed" 'HIL-MARKER: health check ok on slot A' \
    --expect 120 "eyas downloads the bundle (4 MB/s: ~7 s)" 'INFO downloading rootfs-2\.0\.0.*\.raucb'
  check "action after cut 1 (open)" "$(action_of "$dev" | json_get .status)" pending
  echo "  --- cut 2: in the middle of RAUC's copy into B"
  cut_vm "$w" "$dev" 2 --kill-delay 2 "${A_UP[@]}" \
    --expect 120 "eyas completes the download" 'INFO downloaded [0-9]+ bytes' \
    --expect 60 "size and SHA-256 checked" 'size and checksum OK' \
    --expect 120 "RAUC copies into B" 'RAUC: .*Copying image to rootfs\.1'
  echo "  env after cut 2: $(env_of "$w" "$dev")"
  echo "  --- cut 3: right after RAUC's env write (B primary)"
  cut_vm "$w" "$dev" 3 "${A_UP[@]}" \
    --expect 180 "RAUC (in the guest) installs into B again" 'RAUC: 100% Installing done'
  check "env after cut 3 (B primary, 3 attempts)" "$(env_of "$w" "$dev")" "BOOT_ORDER=B A BOOT_A_LEFT=3 BOOT_B_LEFT=3"
  echo "  --- cut 4: right after U-Boot's env write (an attempt of B counted)"
  cut_vm "$w" "$dev" 4 \
    --expect 30 "U-Boot: slot B chosen" 'RAUC: found valid slot B, 2 attempts remaining' \
    --expect 10 "U-Boot saved the env" 'RAUC: saved BOOT_ORDER=B A BOOT_A_LEFT=3 BOOT_B_LEFT=2'
  echo "  --- cut 5: in the middle of B's boot (kernel up, not yet checked)"
  cut_vm "$w" "$dev" 5 \
    --expect 30 "U-Boot: slot B chosen, 1 attempt left" 'RAUC: found valid slot B, 1 attempts remaining' \
    --expect 90 "kernel + init on slot B (2.0.0)" 'HIL-MARKER: booted slot=B version=2\.0\.0'
  echo "  --- power on: the last attempt of B"
  hold_vm "$w" "$dev" 6 300 \
    --expect 30 "U-Boot: slot B chosen, last attempt" 'RAUC: found valid slot B, 0 attempts remaining' \
    --expect 90 "kernel + init on slot B (2.0.0)" 'HIL-MARKER: booted slot=B version=2\.0\.0' \
    --expect 90 "health check on B passed" 'HIL-MARKER: health check ok on slot B' \
    --forbid 'Kernel panic'
  check "hawkBit action" "$HELD_STATUS" "finished/finished"
  wait_file 60 "$w/release.rc" "the rollout to finish"
  check "eyasctl rollout watch exit (0 = rollout finished)" "$(cat "$w/release.rc")" 0
  local t="" first
  for _ in $(seq 1 20); do
    t=$(telemetry_last "$w" "$dev"); [ "$(echo "$t" | json_get .ota_status)" = success ] && break; sleep 0.5
  done
  first=$(first_slot_state "$w" "$dev")
  check "telemetry ota_status" "$(echo "$t" | json_get .ota_status)" success
  check "telemetry sw_version" "$(echo "$t" | json_get .sw_version)" 2.0.0
  check "the primary slot is the one reported, with full attempts" "$first" "$(echo "$t" | json_get .rauc_slot) 3"
  echo "  env at the end: $(env_of "$w" "$dev")"
  grep -ah 'bytes kept from an interrupted attempt' "$w/$dev"/console-*.log | sed 's/^/  eyas: /' || true
}

# One deployment with an application (RAUC bundle for the appfs slot, no bootname: no reboot) and a
# configuration file (part.config.command): both applied on the running A, reported right away.
scenario_parts() {
  local w=$RUN_DIR/parts dev=qemu-01 sm_app sm_cfg t_app t_cfg dst ds
  mkdir -p "$w"
  services "$w" "$dev"; device "$w" "$dev"
  t_cfg=$(mgmt POST /softwaremoduletypes '[{"key":"config","name":"Configuration","maxAssignments":1}]' | json_get .0.id)
  t_app=$(mgmt GET "/softwaremoduletypes?limit=100" | python3 -c 'import json,sys; print([t["id"] for t in json.load(sys.stdin)["content"] if t["key"]=="application"][0])')
  dst=$(mgmt POST /distributionsettypes "[{\"key\":\"app_config\",\"name\":\"App + configuration\",\"mandatorymodules\":[{\"id\":$t_app}],\"optionalmodules\":[{\"id\":$t_cfg}]}]" | json_get .0.key)
  sm_app=$(mgmt POST /softwaremodules '[{"name":"webapp","version":"2.0.0","type":"application","vendor":"eyas"}]' | json_get .0.id)
  sm_cfg=$(mgmt POST /softwaremodules '[{"name":"device-config","version":"2.0.0","type":"config","vendor":"eyas"}]' | json_get .0.id)
  curl -sSf -u "$HAWKBIT_AUTH" -F "file=@$OUT/bundles/app-2.0.0.raucb" "$HAWKBIT_URL/rest/v1/softwaremodules/$sm_app/artifacts" >/dev/null
  curl -sSf -u "$HAWKBIT_AUTH" -F "file=@$OUT/bundles/device-2.0.0.conf" "$HAWKBIT_URL/rest/v1/softwaremodules/$sm_cfg/artifacts" >/dev/null
  ds=$(mgmt POST /distributionsets "[{\"name\":\"webapp+config\",\"version\":\"2.0.0\",\"type\":\"$dst\",\"modules\":[{\"id\":$sm_app},{\"id\":$sm_cfg}]}]" | json_get .0.id)
  mgmt POST "/targets/$dev/assignedDS" "{\"id\":$ds}" >/dev/null   # a direct assignment, no rollout
  hold_vm "$w" "$dev" 1 120 \
    --expect 30 "U-Boot: slot A chosen" 'RAUC: found valid slot A, 2 attempts remaining' \
    --expect 90 "kernel + init on slot A (1.0.0)" 'HIL-MARKER: booted slot=A version=1\.0\.0' \
    --expect 90 "health check on A passed" 'HIL-MARKER: health check ok on slot A' \
    --expect 120 "the configuration hook applied the file" "HIL-MARKER: config applied: device-2\.0\.0\.conf $(sha256sum "$OUT/bundles/device-2.0.0.conf" | cut -d' ' -f1)" \
    --expect 120 "RAUC (in the guest) installed the application" 'RAUC: 100% Installing done' \
    --forbid 'HIL-MARKER: reboot requested' --forbid 'Kernel panic'
  check "hawkBit action" "$HELD_STATUS" "finished/finished"
  # what the board has on its data partition (the appfs slot is a file there), read from the disk
  local data=$w/$dev/data.part app=$w/$dev/appfs.part
  dd if="$w/$dev/disk.img" of="$data" bs=1M skip="$DATA_START" count="$DATA_MB" status=none
  debugfs -R "dump /appfs.img $app" "$data" 2>/dev/null
  check "appfs slot content (/etc/app-version)" "$(debugfs -R 'cat /etc/app-version' "$app" 2>/dev/null)" "webapp 2.0.0"
  check "applied configuration" "$(debugfs -R 'cat /config/device-2.0.0.conf' "$data" 2>/dev/null | sha256sum | cut -d' ' -f1)" \
    "$(sha256sum <"$OUT/bundles/device-2.0.0.conf" | cut -d' ' -f1)"
  check "U-Boot env (no reboot, A still primary)" "$(env_of "$w" "$dev")" "BOOT_ORDER=A B BOOT_A_LEFT=3 BOOT_B_LEFT=3"
  rm -f "$data" "$app"
}

# Two boards in one staged rollout of two groups: the second group starts only after the first
# succeeded. Both VMs run at once (one per core).
scenario_staged() {
  local w=$RUN_DIR/staged d1=qemu-01 d2=qemu-02
  mkdir -p "$w"
  services "$w" "$d1" "$d2"; device "$w" "$d1"; device "$w" "$d2"
  release "$w" "controllerid==qemu-0*" "$OUT/bundles/rootfs-2.0.0.raucb" 2.0.0 \
    "[$(group first "controllerid==$d1"),$(group second "controllerid==$d2")]"
  local GOOD_B=(--expect 30 "U-Boot: slot B chosen" 'RAUC: found valid slot B, 2 attempts remaining'
                --expect 90 "kernel + init on slot B (2.0.0)" 'HIL-MARKER: booted slot=B version=2\.0\.0'
                --expect 90 "health check on B passed" 'HIL-MARKER: health check ok on slot B'
                --expect 60 "RAUC marked B good" 'marked slot rootfs\.1 as good')
  # the second board waits for its group: it gets the deployment only after the first one's update
  local LATE_A=("${BOOT_A[@]}")
  LATE_A[17]=400
  hold_vm "$w" "$d1" 1 300 "${BOOT_A[@]}" "${GOOD_B[@]}" --forbid 'Kernel panic' >"$w/$d1.hold.out" 2>&1 &
  local p1=$!
  hold_vm "$w" "$d2" 1 500 "${LATE_A[@]}" "${GOOD_B[@]}" --forbid 'Kernel panic' >"$w/$d2.hold.out" 2>&1 &
  local p2=$!
  local rc1=0 rc2=0
  wait "$p1" || rc1=$?; wait "$p2" || rc2=$?
  cat "$w/$d1.hold.out" "$w/$d2.hold.out"
  check "board $d1 run" "$rc1" 0
  check "board $d2 run" "$rc2" 0
  ! grep -q 'check FAILED' "$w/$d1.hold.out" "$w/$d2.hold.out" || CHECKS_FAILED=1
  wait_file 120 "$w/release.rc" "the rollout to finish"
  check "eyasctl rollout watch exit (0 = rollout finished)" "$(cat "$w/release.rc")" 0
  local a1 a2 fin1 start2
  a1=$(action_of "$d1"); a2=$(action_of "$d2")
  check "hawkBit action of $d1" "$(echo "$a1" | json_get .status)/$(echo "$a1" | json_get .detailStatus)" "finished/finished"
  check "hawkBit action of $d2" "$(echo "$a2" | json_get .status)/$(echo "$a2" | json_get .detailStatus)" "finished/finished"
  # the order: d1's closing feedback came before d2's first one
  fin1=$(mgmt GET "/targets/$d1/actions/$(echo "$a1" | json_get .id)/status?limit=100" | python3 -c '
import json, sys
print(max(s["reportedAt"] for s in json.load(sys.stdin)["content"] if s["type"] == "finished"))')
  start2=$(mgmt GET "/targets/$d2/actions/$(echo "$a2" | json_get .id)/status?limit=100" | python3 -c '
import json, sys
print(min(s["reportedAt"] for s in json.load(sys.stdin)["content"] if s["type"] not in ("running", "scheduled")))')
  if [ "$fin1" -le "$start2" ]; then echo "  check ok: $d1 finished ($fin1) before $d2 reported anything ($start2)"
  else echo "  check FAILED: $d2 reported at $start2, before $d1 finished at $fin1"; CHECKS_FAILED=1; fi
}

# Scenarios run QEMU_HIL_JOBS at a time (default 1; CI uses 2, one VM per core). `staged` has two
# VMs of its own and always runs alone. Each scenario's output is prefixed with its name.
JOBS=${QEMU_HIL_JOBS:-1}
run_scenario() { # run_scenario NAME: in a subshell with its own services; result in $RUN_DIR/NAME.rc
  local s=$1 t rc=0
  t=$(date +%s)
  ( PIDS=(); trap cleanup EXIT; "scenario_$s" && [ "$CHECKS_FAILED" = 0 ] ) || rc=1
  if [ "$rc" = 0 ]; then echo "=== qemu-hil scenario $s: ok ($(( $(date +%s) - t )) s)"
    # A passing run's disks (300 MiB each) are of no further use; its logs stay.
    [ "${QEMU_HIL_KEEP_DISKS:-0}" = 1 ] || find "$RUN_DIR/$s" -name '*.img' -type f -delete
  else echo "=== qemu-hil scenario $s: FAILED ($(( $(date +%s) - t )) s; logs in $RUN_DIR/$s)"; fi
  echo "$rc" >"$RUN_DIR/$s.rc"
}
for s in "${SCENARIOS[@]}"; do
  declare -F "scenario_$s" >/dev/null || die "unknown scenario '$s' (good, fallback, unhealthy, powercut, parts, staged, delta)"
  rm -f "$RUN_DIR/$s.rc"
done
RUNNING=()
for s in "${SCENARIOS[@]}"; do
  if [ "$s" = staged ] || [ "$JOBS" -le 1 ]; then
    for p in "${RUNNING[@]}"; do wait "$p" || true; done; RUNNING=()
    echo "=== qemu-hil scenario $s"
    run_scenario "$s"
    continue
  fi
  while [ ${#RUNNING[@]} -ge "$JOBS" ]; do
    wait -n "${RUNNING[@]}" || true
    alive=(); for p in "${RUNNING[@]}"; do kill -0 "$p" 2>/dev/null && alive+=("$p"); done; RUNNING=("${alive[@]}")
  done
  echo "=== qemu-hil scenario $s (in parallel)"
  run_scenario "$s" > >(sed -u "s/^/[$s] /") 2>&1 & RUNNING+=("$!")
done
for p in "${RUNNING[@]}"; do wait "$p" || true; done
sleep 0.2
failed=0
for s in "${SCENARIOS[@]}"; do
  [ "$(cat "$RUN_DIR/$s.rc" 2>/dev/null)" = 0 ] || failed=$((failed + 1))
done
echo "qemu-hil: ${#SCENARIOS[@]} scenarios, $failed failed, $(( $(date +%s) - T_ALL )) s in all; logs in $RUN_DIR"
[ "$failed" -eq 0 ]
