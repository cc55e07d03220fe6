#!/usr/bin/env bash
# eyas demo (`./run demo`): the release workflow end to end on one machine, loopback only.
#
#   CI      a RAUC bundle built with `rauc bundle` and signed by a test PKI made on the fly (openssl)
#   server  hawkbit-sim; eyasctl releases over the real hawkBit Management API: `eyasctl publish` (software
#           module, artifact upload, distribution set), `eyasctl rollout create` canary -> 10 % -> 50 % -> 100 %
#           with thresholds, `eyasctl rollout watch` until finished (0) or paused (3)
#   devices DEMO_REAL (3) real eyas devices, each with its own private dbus-daemon, `rauc service` with two
#           file-backed ext4 slots and bootloader=custom = eyas-bootloader over a redundant U-Boot env
#           (fw_env.config); a "reboot" stops eyas and RAUC, runs the U-Boot boot script logic
#           (RAUC contrib/uboot.sh: walk BOOT_ORDER, decrement BOOT_x_LEFT, saveenv) with fw_printenv /
#           fw_setenv, and restarts RAUC with --override-boot-slot=<chosen slot> and eyas;
#           plus DEMO_SIM (20) simulated devices (sim-devices) filling the later rollout groups
#   MQTT    one mosquitto, ThingsBoard-style auth (username = device access token, ACL per token); each
#           device connects to its own listener whose mount_point is its name, so an observer sees
#           `<device>/v1/devices/me/telemetry` (ThingsBoard knows the device from the token the same way)
#
# Progress: one line per device phase change (telemetry and reboots), the rollout group table on change,
# the fleet view at the end (success rate, P50/P95 download time, errors by code).
#
# Env: DEMO_REAL (3)  DEMO_SIM (20)  DEMO_TIMEOUT seconds for the rollout (300)
#      DEMO_FAIL_BOOT=dev-02     that device's new slot never comes up (injected crash before userspace on
#                                every boot of it): the boot script uses up its attempts and falls back to the
#                                old slot; eyas reports closed/failure and the running version (installedBase);
#                                the canary group's error threshold pauses the rollout
#      DEMO_FAIL_HEALTH=dev-02   that device's new slot boots but fails eyas' health check (closed/failure,
#                                slot marked bad, eyas reboots it into the old slot, which is marked good)
#      DEMO_EXPECT=finished|paused   make the outcome a check (CI)      DEMO_KEEP_DIR=1 keep the temp dir
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
BIN=$TARGET_DIR/debug
N_REAL=${DEMO_REAL:-3} N_SIM=${DEMO_SIM:-20} TIMEOUT=${DEMO_TIMEOUT:-300}
VERSION=1.1.$(date +%s)
export HAWKBIT_AUTH=admin:admin
# shellcheck source=lib.sh
. "$HERE/lib.sh"

T0=$(date +%s%N)
say() { printf '[%6.1fs] %s\n' "$(( ($(date +%s%N) - T0) / 1000000 ))e-3" "$*"; }
die() { say "demo: FAILED: $*" >&2; exit 1; }

for tool in cargo rauc dbus-daemon dbus-send mkfs.ext4 openssl mosquitto mosquitto_sub fw_printenv fw_setenv \
  mkenvimage curl python3; do
  command -v "$tool" >/dev/null || die "$tool missing (run .ci/install-deps)"
done

say "demo: building eyas, eyas-bootloader, hawkbit-sim, sim-devices, eyasctl ($BIN)"
(cd "$ROOT" && cargo build -q -p eyas-linux -p eyas-bootloader-glue -p eyas-hil-tests -p eyasctl --bins)
SIM_BIN=$BIN/hawkbit-sim

W=$(mktemp -d /tmp/eyas-demo.XXXXXX)
PIDS=()
cleanup() {
  local rc=$? pid f
  touch "$W/stop"
  if [ -f "$W/release.pid" ] && [ ! -f "$W/release.rc" ]; then
    echo "demo: stopping (exit $rc)" >&2
    kill "$(cat "$W/release.pid")" 2>/dev/null || true
  fi
  # device processes first (eyas, RAUC, bus: their supervisors wrote the pids), then everything else
  for f in "$W"/dev-*/eyas.pid "$W"/dev-*/rauc.pid "$W"/dev-*/dbus.pid; do
    if [ -f "$f" ]; then kill "$(cat "$f")" 2>/dev/null || true; fi
  done
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 130 ] && [ -d "$W" ]; then
    for f in "$W"/dev-*/eyas.log; do if [ -f "$f" ]; then echo "--- $f (last lines)"; tail -15 "$f"; fi; done
  fi
  if [ "${DEMO_KEEP_DIR:-0}" = 1 ]; then echo "demo: files kept in $W"; else rm -rf "$W"; fi
  return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_until() { # wait_until SECONDS WHAT COMMAND...: bounded wait
  local limit=$1 what=$2; shift 2
  local end=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || die "timeout after ${limit}s waiting for $what"
    sleep 0.2
  done
}

# ---------------------------------------------------------------- 1. CI: test PKI + signed RAUC bundle
mkdir -p "$W/ci/root/etc" "$W/ci/bundle" "$W/rootA/etc"
test_pki "$W/pki" "eyas demo" || die "test PKI"
echo "$VERSION" >"$W/ci/root/etc/sw-version"
head -c 262144 /dev/urandom >"$W/ci/root/payload.bin"
mkfs.ext4 -q -F -L rootfs -d "$W/ci/root" "$W/ci/bundle/rootfs.ext4" 4M >/dev/null
printf '[update]\ncompatible=eyas-demo\nversion=%s\n\n[bundle]\nformat=plain\n\n[image.rootfs]\nfilename=rootfs.ext4\n' \
  "$VERSION" >"$W/ci/bundle/manifest.raucm"
BUNDLE=$W/ci/rootfs-$VERSION.raucb
rauc bundle --cert="$W/pki/signer.cert.pem" --key="$W/pki/signer.key.pem" --keyring="$W/pki/ca.cert.pem" \
  "$W/ci/bundle" "$BUNDLE" >"$W/ci/rauc-bundle.log" 2>&1 || { cat "$W/ci/rauc-bundle.log" >&2; die "rauc bundle"; }
say "ci: built and signed $(basename "$BUNDLE") ($(stat -c %s "$BUNDLE") bytes, test PKI made with openssl)"

# ---------------------------------------------------------------- 2. MQTT broker (ThingsBoard-style auth)
MQTT_PORT=$(free_port)
mkdir -p "$W/mqtt"
{
  echo "user $(id -un)"  # mosquitto started as root would switch to user mosquitto and lose the temp dir
  echo "per_listener_settings false"
  echo "allow_anonymous true"
  echo "acl_file $W/mqtt/acl"
  echo "log_dest file $W/mqtt/broker.log"
  echo "listener $MQTT_PORT 127.0.0.1"
} >"$W/mqtt/mosquitto.conf"
printf 'user observer\ntopic read #\n' >"$W/mqtt/acl"
DEVS=()
for i in $(seq 1 "$N_REAL"); do
  dev=$(printf 'dev-%02d' "$i"); DEVS+=("$dev")
  port=$(free_port)
  echo "$port" >"$W/mqtt/$dev.port"
  printf 'listener %s 127.0.0.1\nmount_point %s/\n' "$port" "$dev" >>"$W/mqtt/mosquitto.conf"
  printf 'user tok-mqtt-%s\ntopic readwrite %s/v1/devices/me/#\n' "$dev" "$dev" >>"$W/mqtt/acl"
done
mosquitto -c "$W/mqtt/mosquitto.conf" >"$W/mqtt/mosquitto.out" 2>&1 & PIDS+=("$!")
wait_until 10 "mosquitto" bash -c "exec 3<>/dev/tcp/127.0.0.1/$MQTT_PORT"
mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -u observer -i demo-observer -q 1 -v -t '+/v1/devices/me/telemetry' \
  >"$W/telemetry.txt" 2>"$W/mqtt/sub.err" & PIDS+=("$!")
say "mqtt: mosquitto on 127.0.0.1:$MQTT_PORT (username = access token, one listener per device), observer subscribed"

# progress printer: one line per device phase change seen in the telemetry
python3 -u - "$W/telemetry.txt" "$W/stop" "$T0" <<'EOF' & PIDS+=("$!")
import json, os, sys, time
path, stop, t0 = sys.argv[1], sys.argv[2], int(sys.argv[3])
def say(msg):
    print("[%6.1fs] %s" % ((time.time_ns() - t0) / 1e9, msg), flush=True)
pos, buf, last = 0, "", {}
while not os.path.exists(stop):
    try:
        with open(path) as f:
            f.seek(pos); data = f.read(); pos = f.tell()
    except FileNotFoundError:
        data = ""
    buf += data
    *lines, buf = buf.split("\n")
    for line in lines:
        topic, _, payload = line.partition(" ")
        dev = topic.split("/")[0]
        try:
            v = json.loads(payload)["values"]
        except Exception:
            continue
        if "ota_status" in v and last.get(dev) != v["ota_status"]:
            last[dev] = v["ota_status"]
            msg = "ota_status=%s" % v["ota_status"]
            if "error_code" in v:
                msg += " error_code=%s ota_error=%r" % (v["error_code"], v.get("ota_error", ""))
            say("%s  %s" % (dev, msg))
        if "download_duration_ms" in v:
            say("%s  downloaded %s bytes in %s ms (%s)" % (dev, v.get("download_bytes"), v["download_duration_ms"], v.get("sw_state", "")))
            last[dev] = "downloaded"
        if "rauc_slot" in v:
            say("%s  running sw_version=%s on rauc_slot=%s" % (dev, v.get("sw_version") or "?", v["rauc_slot"] or "?"))
    time.sleep(0.2)
EOF

# ---------------------------------------------------------------- 3. hawkBit (hawkbit-sim) + targets
start_sim "$W" --polling-time 00:00:01 --min-polling-time 00:00:01 --rollout-interval-ms 500
PIDS+=("$SIM_PID")
SIM_PORT=${HAWKBIT_URL##*:}
body=$(python3 -c "
import json, sys
real = sys.argv[1].split()
sims = ['sim-%03d' % i for i in range(int(sys.argv[2]))]
print(json.dumps([{'controllerId': t, 'name': t, 'securityToken': 'tok-' + t} for t in real + sims]))" "${DEVS[*]}" "$N_SIM")
mgmt POST /targets "$body" >/dev/null
# factory image: every device left the factory with rootfs 1.0.0 (an offline assignment records it as installed)
FSM=$(mgmt POST /softwaremodules '[{"name":"rootfs","version":"1.0.0","type":"os","vendor":"eyas"}]' | json_get .0.id)
FDS=$(mgmt POST /distributionsets "[{\"name\":\"rootfs\",\"version\":\"1.0.0\",\"type\":\"os\",\"modules\":[{\"id\":$FSM}]}]" | json_get .0.id)
ALL=("${DEVS[@]}")
for ((i = 0; i < N_SIM; i++)); do ALL+=("$(printf 'sim-%03d' "$i")"); done
for t in "${ALL[@]}"; do
  mgmt POST "/targets/$t/assignedDS?offline=true" "{\"id\":$FDS}" >/dev/null
done
say "hawkbit: hawkbit-sim on $HAWKBIT_URL, $N_REAL real + $N_SIM simulated targets registered, factory rootfs 1.0.0 installed"
"$BIN/sim-devices" --url "$HAWKBIT_URL" --prefix sim- --count "$N_SIM" --max-poll-ms 500 --work-ms 300 \
  --duration-secs $((TIMEOUT + 120)) >"$W/sim-devices.log" 2>&1 & PIDS+=("$!")
SIMDEV_PID=$!

# ---------------------------------------------------------------- 4. real eyas devices
# boot D DEV: the U-Boot boot script (RAUC contrib/uboot.sh) on the device's env with fw_printenv/fw_setenv:
# walk BOOT_ORDER, take the first slot with attempts left, decrement them (hex), saveenv (one write);
# none left: reset both to 3, saveenv and reset the board (here: run the script again). Prints the slot.
boot() {
  local d=$1 dev=$2 order left s slot="" chosen_left=""
  for _ in 1 2; do
    order=$(fw_printenv -c "$d/fw_env.config" -n BOOT_ORDER 2>/dev/null) || order="A B"
    for s in $order; do
      left=$(fw_printenv -c "$d/fw_env.config" -n "BOOT_${s}_LEFT" 2>/dev/null) || left=3
      if [ $((16#${left:-0})) -gt 0 ]; then slot=$s chosen_left=$left; break; fi
    done
    [ -n "$slot" ] && break
    printf 'BOOT_A_LEFT 3\nBOOT_B_LEFT 3\n' >"$d/reset.script"
    fw_setenv -c "$d/fw_env.config" -s "$d/reset.script"
    say "$dev  bootloader: no slot with attempts left in '$order'; counters reset, board reset" >&2
  done
  [ -n "$slot" ] || return 1
  fw_setenv -c "$d/fw_env.config" "BOOT_${slot}_LEFT" "$(printf %x $((16#$chosen_left - 1)))"
  echo "root=/dev/disk/by-partlabel/rootfs-$slot rootwait rauc.slot=$slot" >"$d/cmdline"
  say "$dev  bootloader: BOOT_ORDER='$order', booting $slot (BOOT_${slot}_LEFT $chosen_left -> $(printf %x $((16#$chosen_left - 1))))" >&2
  echo "$slot"
}

rauc_on_bus() {
  DBUS_SYSTEM_BUS_ADDRESS=$1 dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:de.pengutronix.rauc 2>/dev/null | grep -q 'boolean true'
}

stop_pid() { # stop_pid PIDFILE: SIGTERM, wait up to 15 s, then SIGKILL
  local f=$1 pid n
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  kill "$pid" 2>/dev/null || { rm -f "$f"; return 0; }
  for n in $(seq 1 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  rm -f "$f"
}

power_on() { # power_on D DEV: bootloader, then RAUC (as the booted slot), then eyas
  local d=$1 dev=$2 slot bus n
  for n in $(seq 1 10); do
    slot=$(boot "$d" "$dev") || { say "$dev  bootloader: nothing bootable" >&2; return 1; }
    # injected: the new slot (B) crashes before userspace; the watchdog resets the board
    [ "${DEMO_FAIL_BOOT:-}" = "$dev" ] && [ "$slot" = B ] || break
    say "$dev  slot B: kernel panic before userspace (injected), watchdog reset ($n)" >&2
    sleep 0.3
  done
  bus="unix:path=$d/sysbus.sock"
  DBUS_SYSTEM_BUS_ADDRESS=$bus EYAS_BOOTLOADER_CONF=$d/bootloader.conf \
    rauc service --conf="$d/system.conf" --override-boot-slot="$slot" >>"$d/rauc.log" 2>&1 &
  echo $! >"$d/rauc.pid"
  local end=$(( $(date +%s) + 20 ))
  until rauc_on_bus "$bus"; do
    [ "$(date +%s)" -lt "$end" ] || { say "$dev  RAUC did not come up (see $d/rauc.log)" >&2; return 1; }
    sleep 0.2
  done
  DBUS_SYSTEM_BUS_ADDRESS=$bus "$BIN/eyas" -d -c "$d/eyas.conf" >>"$d/eyas.log" 2>&1 &
  echo $! >"$d/eyas.pid"
}

# supervise D DEV: power on, then "reboot" whenever eyas runs its reboot_command
supervise() {
  local d=$1 dev=$2
  power_on "$d" "$dev" || { touch "$d/dead"; return 1; }
  while [ ! -e "$W/stop" ]; do
    if [ -e "$d/reboot-requested" ]; then
      rm -f "$d/reboot-requested"
      say "$dev  reboot: stopping eyas and RAUC"
      stop_pid "$d/eyas.pid"
      stop_pid "$d/rauc.pid"
      local bus="unix:path=$d/sysbus.sock" end=$(( $(date +%s) + 15 ))
      while rauc_on_bus "$bus"; do [ "$(date +%s)" -lt "$end" ] || break; sleep 0.2; done
      power_on "$d" "$dev" || { touch "$d/dead"; return 1; }
    fi
    sleep 0.2
  done
}

echo "1.0.0" >"$W/rootA/etc/sw-version"
for dev in "${DEVS[@]}"; do
  d=$W/$dev
  mkdir -p "$d/mnt" "$d/data" "$d/dl"
  mkfs.ext4 -q -F -L rootfs -d "$W/rootA" "$d/slotA.img" 8M >/dev/null
  truncate -s 8M "$d/slotB.img"
  # RAUC's slot status as the factory left it: slot A holds the rootfs 1.0.0 bundle
  printf '[slot.rootfs.0]\nbundle.compatible=eyas-demo\nbundle.version=1.0.0\nstatus=ok\n' >"$d/data/central.raucs"
  # redundant U-Boot env (two 16 KiB copies), as RAUC's U-Boot integration expects it
  printf 'BOOT_ORDER=A B\nBOOT_A_LEFT=3\nBOOT_B_LEFT=3\n' >"$d/env.txt"
  mkenvimage -r -s 0x4000 -o "$d/copy.env" "$d/env.txt"
  cat "$d/copy.env" "$d/copy.env" >"$d/uboot.env"
  printf '%s\n' "$d/uboot.env 0x0000 0x4000" "$d/uboot.env 0x4000 0x4000" >"$d/fw_env.config"
  printf 'bootloader = uboot\nfw-env-config = %s\nbootnames = A B\nboot-attempts = 3\nboot-attempts-primary = 3\ncmdline = %s\n' \
    "$d/fw_env.config" "$d/cmdline" >"$d/bootloader.conf"
  cat >"$d/system.conf" <<EOF
[system]
compatible=eyas-demo
bootloader=custom
mountprefix=$d/mnt
data-directory=$d/data
bundle-formats=plain

[handlers]
bootloader-custom-backend=$BIN/eyas-bootloader

[keyring]
path=$W/pki/ca.cert.pem

[slot.rootfs.0]
device=$d/slotA.img
type=ext4
bootname=A

[slot.rootfs.1]
device=$d/slotB.img
type=ext4
bootname=B
EOF
  cat >"$d/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$d/sysbus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
  # health check of the new slot: the kernel command line names the slot the bootloader chose
  if [ "${DEMO_FAIL_HEALTH:-}" = "$dev" ]; then
    # only the new slot (B) is sick; the old slot A stays healthy
    printf '#!/bin/sh\nif grep -q "rauc.slot=B" %s; then echo "demo: injected health check failure" >&2; exit 1; fi\n' \
      "$d/cmdline" >"$d/health.sh"
  else
    printf '#!/bin/sh\ngrep -q "rauc.slot=" %s\n' "$d/cmdline" >"$d/health.sh"
  fi
  chmod +x "$d/health.sh"
  cat >"$d/eyas.conf" <<EOF
[client]
hawkbit_server=127.0.0.1:$SIM_PORT
ssl=false
target_name=$dev
auth_token=tok-$dev
bundle_download_location=$d/dl/bundle.raucb
retry_wait=2
post_update_reboot=true
[device]
product=eyas-demo
hw_revision=1
[eyas]
record_path=$d/record.bin
mqtt_host=127.0.0.1
mqtt_port=$(cat "$W/mqtt/$dev.port")
mqtt_access_token=tok-mqtt-$dev
health_check_command=$d/health.sh
health_check_timeout=10
reboot_command=touch $d/reboot-requested
poll_min=1
poll_max=2
bootloader_config=$d/bootloader.conf
installed_name=rootfs
installed_version=1.0.0
EOF
  "$BIN/eyas" -c "$d/eyas.conf" check-config >"$d/check-config.txt" 2>&1 || { cat "$d/check-config.txt" >&2; die "$dev: eyas check-config"; }
  dbus-daemon --config-file="$d/bus.conf" --nofork >/dev/null 2>&1 &
  echo $! >"$d/dbus.pid"
  wait_until 10 "$dev's private bus" test -S "$d/sysbus.sock"
  supervise "$d" "$dev" & PIDS+=("$!")
done
for dev in "${DEVS[@]}"; do
  wait_until 30 "$dev's eyas to start" test -f "$W/$dev/eyas.pid"
  [ -e "$W/$dev/dead" ] && die "$dev did not boot"
done
say "devices: ${DEVS[*]} up (RAUC on private buses, U-Boot env per device); $N_SIM simulated devices polling"

# ---------------------------------------------------------------- 5. release (eyasctl)
# publish: name rootfs, version from the bundle (rauc info); canary = the real devices, then 10/50/100 % of
# the rest; success 100 %, error 0 %; watch until finished (exit 0) or paused (exit 3)
CTL=$BIN/eyasctl
# in the background + wait, so that Ctrl-C / SIGTERM run the cleanup at once
(
  set +e
  (
    set -e
    "$CTL" publish "$BUNDLE" --name rootfs --ds-name rootfs
    out=$("$CTL" rollout create --ds "rootfs:$VERSION" --filter 'controllerid==dev-*,controllerid==sim-*' \
      --group 'canary=controllerid==dev-*' --groups 10,50,100 --success 100 --error 0 --start --wait 60)
    echo "$out"
    echo "${out##*rollout=}" >"$W/rollout.id"
    exec "$CTL" rollout watch "$(cat "$W/rollout.id")" --timeout "$TIMEOUT"
  ) &
  echo $! >"$W/release.pid"
  wait $!
  echo $? >"$W/release.rc"
) 2>&1 | while IFS= read -r line; do say "$line"; done &
wait $! || true
rc=$(cat "$W/release.rc" 2>/dev/null || echo 1)
case $rc in
  0) outcome=finished ;;
  3) outcome=paused ;;
  *) die "eyasctl exit $rc (a timeout means the rollout did not end within DEMO_TIMEOUT=$TIMEOUT s)" ;;
esac

# let the last telemetry arrive (success is published after closed/success)
end=$(( $(date +%s) + 15 ))
while [ "$(date +%s)" -lt "$end" ]; do
  n=$(grep -c '"ota_status":"\(success\|failure\)"' "$W/telemetry.txt" || true)
  # after a failed health check eyas reboots into the old slot: wait for that boot's telemetry too
  if [ -n "${DEMO_FAIL_HEALTH:-}" ] && ! grep -q "^$DEMO_FAIL_HEALTH/.*\"rauc_slot\":\"A\"" "$W/telemetry.txt"; then
    sleep 0.5; continue
  fi
  [ "${n:-0}" -ge "$N_REAL" ] && break
  sleep 0.5
done
sleep 1

# ---------------------------------------------------------------- 6. fleet view (+ checks with DEMO_EXPECT)
RO=$(mgmt GET "/rollouts?limit=1" | json_get .content.0.id)
mgmt GET "/rollouts/$RO" >"$W/rollout.json"
for dev in "${DEVS[@]}"; do
  d=$W/$dev
  fw_printenv -c "$d/fw_env.config" BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT >"$d/bootenv.txt" 2>&1 || true
  # the rollout's action (after a fallback, eyas' installedBase PUT adds a newer offline action)
  mgmt GET "/targets/$dev/actions?limit=50" | python3 -c '
import json, sys
acts = [a for a in json.load(sys.stdin)["content"] if str(a.get("rollout")) == sys.argv[1]]
print(json.dumps(acts[0] if acts else {}))' "$RO" >"$d/action.json"
  aid=$(json_get .id <"$d/action.json")
  mgmt GET "/targets/$dev/actions/$aid/status?limit=1" | json_get .content.0.messages >"$d/last-status.json"
  # what the device sees: the base poll's links (installedBase appears once hawkBit has an installed DS)
  curl -sS -H "Authorization: TargetToken tok-$dev" "$HAWKBIT_URL/DEFAULT/controller/v1/$dev" >"$d/base.json" || true
  mgmt GET "/targets/$dev" >"$d/target.json"
  ib=$(json_get ._links.installedBase.href <"$d/base.json" || true)
  if [ -n "$ib" ]; then curl -sS -H "Authorization: TargetToken tok-$dev" "$ib" >"$d/installedBase.json" || true; fi
  # eyas' own PUT installedBase calls (hawkbit-sim's request log)
  curl -sS "$HAWKBIT_URL/sim/requests" | python3 -c '
import json, sys
print(sum(1 for r in json.load(sys.stdin) if r.get("method") == "PUT" and r.get("path", "").endswith("/" + sys.argv[1] + "/installedBase") and r.get("status") in (200, 201)))' "$dev" >"$d/installedBase-puts.txt" || echo 0 >"$d/installedBase-puts.txt"
done
fleet_rc=0
python3 - "$W" "$outcome" "${DEMO_EXPECT:-}" "${DEMO_FAIL_BOOT:-}" "${DEMO_FAIL_HEALTH:-}" "$VERSION" "${DEVS[@]}" <<'EOF' || fleet_rc=$?
import json, os, sys
w, outcome, expect, fail_boot, fail_health, version, devs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7:]
def load(*p, default=None):
    try:
        return json.load(open(os.path.join(w, *p)))
    except Exception:
        return default
ro = load("rollout.json")
per = ro["totalTargetsPerStatus"]; total = ro["totalTargets"]
print()
print("=== fleet view ===============================================================")
print("rollout %s: %s, %d targets: %d finished, %d error, %d running, %d not started"
      % (ro["name"], ro["status"], total, per.get("finished", 0), per.get("error", 0), per.get("running", 0),
         per.get("notstarted", 0) + per.get("scheduled", 0)))
print("success rate (hawkBit, all targets): %.1f %% (%d/%d)" % (100.0 * per.get("finished", 0) / max(total, 1), per.get("finished", 0), total))
state, dl, errors = {d: {} for d in devs}, [], {}
for line in open(os.path.join(w, "telemetry.txt")):
    topic, _, payload = line.strip().partition(" ")
    dev = topic.split("/")[0]
    try:
        v = json.loads(payload)["values"]
    except Exception:
        continue
    state.setdefault(dev, {}).update(v)
    if "download_duration_ms" in v:
        dl.append(v["download_duration_ms"])
    if v.get("ota_status") == "failure":
        code = v.get("error_code", "(no error_code sent)")
        errors[code] = errors.get(code, 0) + 1
print("real eyas devices (telemetry + hawkBit action + U-Boot env):")
print("  %-7s %-14s %-5s %-8s %-18s %s" % ("device", "sw_version", "slot", "ota", "hawkBit action", "U-Boot env"))
ok, info = 0, {}
for d in devs:
    s = state.get(d, {})
    a = load(d, "action.json", default={}) or {}
    env = dict(l.strip().split("=", 1) for l in open(os.path.join(w, d, "bootenv.txt")) if "=" in l)
    info[d] = (s, a, env)
    ok += s.get("ota_status") == "success"
    print("  %-7s %-14s %-5s %-8s %-18s %s" % (d, s.get("sw_version") or "?", s.get("rauc_slot") or "?", s.get("ota_status", "?"),
          "%s/%s" % (a.get("status", "-"), a.get("detailStatus", "-")), " ".join("%s=%s" % kv for kv in env.items())))
print("success rate (telemetry, real devices): %.1f %% (%d/%d)" % (100.0 * ok / max(len(devs), 1), ok, len(devs)))
def pct(xs, p):  # nearest rank
    xs = sorted(xs)
    return xs[max(0, -(-p * len(xs) // 100) - 1)] if xs else None
print("download_duration_ms (telemetry): n=%d  P50=%s  P95=%s" % (len(dl), pct(dl, 50), pct(dl, 95)))
print("errors by code (telemetry): %s" % (", ".join("%s=%d" % kv for kv in sorted(errors.items())) or "none"))
for d in [x for x in (fail_boot, fail_health) if x in devs]:
    links = sorted((load(d, "base.json", default={}) or {}).get("_links", {}))
    t = load(d, "target.json", default={}) or {}
    print("%s: last feedback %s" % (d, load(d, "last-status.json")))
    ib = load(d, "installedBase.json", default={}) or {}
    ibv = sorted({c.get("version") for c in ib.get("deployment", {}).get("chunks", [])})
    info.setdefault("installedBase", {})[d] = ibv
    print("%s: hawkBit updateStatus=%s; DDI installedBase: action %s, %s" % (d, t.get("updateStatus"), ib.get("id", "-"),
          ", ".join("%s %s" % (c.get("name"), c.get("version")) for c in ib.get("deployment", {}).get("chunks", [])) or "none"))
print("==============================================================================")
if not expect:
    sys.exit(0)
bad = []
if outcome != expect:
    bad.append("the rollout ended '%s', expected '%s'" % (outcome, expect))
for d in devs:
    s, a, env = info[d]
    if d == fail_boot:
        want = dict(ota="failure", slot="A", detail="error")
        if s.get("sw_version") != "1.0.0" or info.get("installedBase", {}).get(d) != ["1.0.0"]:
            bad.append("%s: after the fallback sw_version %s, installedBase %s, expected 1.0.0" % (d, s.get("sw_version"), info.get("installedBase", {}).get(d)))
        if env.get("BOOT_B_LEFT") != "0":
            bad.append("%s: BOOT_B_LEFT=%s, expected 0 (attempts used up)" % (d, env.get("BOOT_B_LEFT")))
        puts = open(os.path.join(w, d, "installedBase-puts.txt")).read().strip()
        if puts != "1":
            bad.append("%s: %s accepted PUT installedBase after the fallback, expected 1 (rootfs 1.0.0 runs again)" % (d, puts))
    elif d == fail_health:
        want = dict(ota="failure", slot="A", detail="error")
    else:
        want = dict(ota="success", slot="B", detail="finished")
        if env.get("BOOT_ORDER", "").split()[:1] != ["B"] or env.get("BOOT_B_LEFT") != "3":
            bad.append("%s: U-Boot env %s, expected B first and marked good (BOOT_B_LEFT=3)" % (d, env))
        if s.get("sw_version") != version:
            bad.append("%s: telemetry sw_version %s, expected %s" % (d, s.get("sw_version"), version))
    if d in (fail_boot, fail_health):
        # the failed slot is marked bad (out of BOOT_ORDER, so the boot script never picks it again once A's
        # attempts run out) and the old slot good
        if "B" in env.get("BOOT_ORDER", "").split() or env.get("BOOT_B_LEFT") != "0" or env.get("BOOT_A_LEFT") != "3":
            bad.append("%s: U-Boot env %s, expected B marked bad (not in BOOT_ORDER, BOOT_B_LEFT=0) and A good (BOOT_A_LEFT=3)" % (d, env))
        code = 400 if d == fail_boot else 300
        if s.get("error_code") != code:
            bad.append("%s: telemetry error_code %s, expected %d" % (d, s.get("error_code"), code))
    if s.get("ota_status") != want["ota"]:
        bad.append("%s: telemetry ota_status %s, expected %s" % (d, s.get("ota_status"), want["ota"]))
    if s.get("rauc_slot") != want["slot"]:
        bad.append("%s: telemetry rauc_slot %s, expected %s" % (d, s.get("rauc_slot"), want["slot"]))
    if a.get("detailStatus") != want["detail"]:
        bad.append("%s: hawkBit action %s, expected %s" % (d, a.get("detailStatus"), want["detail"]))
if len(dl) != len(devs):
    bad.append("%d download_duration_ms values in the telemetry, expected %d" % (len(dl), len(devs)))
for b in bad:
    print("check FAILED: " + b)
print("checks: %s" % ("FAILED" if bad else "ok (outcome %s; devices' telemetry, boot env and hawkBit actions as expected)" % outcome))
sys.exit(1 if bad else 0)
EOF
# The simulated devices (eyas-core's Client each, hil_tests::fleet) send the download time in their closed
# feedback as eyas does: stopped here, so that hawkBit's count is final, and counted in the history (their rollout
# actions with a download_duration_ms detail), for the report check below.
kill "$SIMDEV_PID" 2>/dev/null || true
wait "$SIMDEV_PID" 2>/dev/null || true
N_SIM_DL=0
for ((i = 0; i < N_SIM; i++)); do
  t=$(printf 'sim-%03d' "$i")
  aid=$(mgmt GET "/targets/$t/actions?limit=50" | python3 -c '
import json, sys
acts = [a for a in json.load(sys.stdin)["content"] if str(a.get("rollout")) == sys.argv[1]]
print(acts[0]["id"] if acts else "")' "$RO")
  [ -n "$aid" ] || continue
  if mgmt GET "/targets/$t/actions/$aid/status?limit=100" | grep -q 'download_duration_ms='; then
    N_SIM_DL=$((N_SIM_DL + 1))
  fi
done

# ---------------------------------------------------------------- 7. report (eyasctl report)
# the telemetry the observer received as JSON lines {"device","ts","values"} (the device is the listener's
# mount point, as ThingsBoard knows it from the token); kept with the report in DEMO_OUT
OUT=${DEMO_OUT:-$TARGET_DIR/demo-report}
mkdir -p "$OUT"
python3 -c '
import json, sys
for line in open(sys.argv[1]):
    topic, _, payload = line.strip().partition(" ")
    try:
        m = json.loads(payload)
    except ValueError:
        continue
    if isinstance(m, dict) and "ts" in m and "values" in m:
        print(json.dumps({"device": topic.split("/")[0], "ts": m["ts"], "values": m["values"]}))' \
  "$W/telemetry.txt" >"$OUT/telemetry.jsonl"
"$CTL" --json report --rollout "$RO" --telemetry "$OUT/telemetry.jsonl" --html "$OUT/report.html" \
  >"$OUT/report.json" 2>"$W/report.err" || { cat "$W/report.err" >&2; die "eyasctl report"; }
say "report: $OUT/report.html ($(python3 -c '
import json, sys
d = json.load(open(sys.argv[1])); h = d["hawkbit"]; t = d["telemetry"]
f = lambda x: "-" if x is None else "%.0f" % x
print("hawkBit: %s ok, %s failed, errors %s; telemetry: P50 %s ms, P95 %s ms" % (h["success"], h["failure"],
      ",".join("%s=%d" % (e["error_code"], e["failures"]) for e in h["errors"]) or "none",
      f(t["download_ms"]["p50"]), f(t["download_ms"]["p95"])))' "$OUT/report.json"))"
if [ -n "${DEMO_EXPECT:-}" ]; then
  # eyas's final feedback carries the error code and the download time: hawkBit's history agrees with the telemetry
  python3 - "$OUT/report.json" "$N_REAL" "$N_SIM_DL" <<'EOF' || die "the report's hawkBit figures do not match the telemetry"
import json, sys
d = json.load(open(sys.argv[1])); h, t = d["hawkbit"], d["telemetry"]
bad = []
want = int(sys.argv[2]) + int(sys.argv[3])
if h["download_ms"]["count"] != want:
    bad.append("%s download_duration_ms details in hawkBit, expected %s (%s eyas devices, %s simulated)"
               % (h["download_ms"]["count"], want, sys.argv[2], sys.argv[3]))
if h["errors"] != t["errors"]:
    bad.append("errors by code: hawkBit %s, telemetry %s" % (h["errors"], t["errors"]))
for b in bad:
    print("report check FAILED: " + b)
sys.exit(1 if bad else 0)
EOF
fi
case $outcome in
  finished) say "demo: rollout finished: every group rolled out" ;;
  paused) say "demo: rollout paused by the error threshold (resume: POST /rest/v1/rollouts/$RO/resume)" ;;
esac
[ "$fleet_rc" -eq 0 ] || die "checks failed (DEMO_EXPECT=$DEMO_EXPECT)"
