#!/usr/bin/env bash
# delta-bench.sh — bytes a device moves for a RAUC casync (delta) update, against the full bundle (issue 12).
#
# Real RAUC 1.8 (`rauc service` on a private D-Bus, file-backed slots, custom bootloader backend), real
# `rauc bundle` + `rauc convert` (casync), nginx serving the index bundles and one shared chunk store, and
# `rauc install http://…/vN.raucb`: every byte the device fetches (index bundle + chunks) is counted from
# nginx's access log ($body_bytes_sent). Three reproducible 64 MiB ext4 rootfs images (repro-ext4.sh):
#   v1  base (in slot A, the seed): 25 "binaries" + 60 "libraries" (random bytes), 300 text READMEs, 22 configs
#   v2  patch: usr/bin/patchme (1 MiB) replaced, one line of etc/app.conf edited, etc/sw-version bumped
#   v3  v2 + 40 more files replaced, half of them resized (-10 %..+15 %): about 10 % of the files
# Cases: v2 seeded by v1, v3 seeded by v1, v2 with no seed (slot A's device missing). Slot B is compared
# byte for byte with the image after every install (a mismatch ends the run). Prints, never asserts.
#
# Plain bundles only: this kernel has no device-mapper (no verity), and Debian's RAUC 1.8 has no streaming;
# RAUC downloads the small index bundle itself and casync fetches the chunks (delta.md §1).
#
# Env: DELTA_BENCH_MIB (64) image size; DELTA_BENCH_CHUNK (65536) casync average chunk size;
#      DELTA_BENCH_KEEP=1 keep the work directory.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
MIB=${DELTA_BENCH_MIB:-64}
CHUNK=${DELTA_BENCH_CHUNK:-65536}
for t in rauc casync nginx dbus-daemon dbus-send mkfs.ext4 debugfs openssl mksquashfs python3 curl; do
  command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || { echo "delta-bench: $t missing (run .ci/install-deps)" >&2; exit 1; }
done

W=$(mktemp -d /tmp/eyas-delta-bench.XXXXXX)
chmod 755 "$W" # nginx workers run as an unprivileged user
# casync's temp directory on tmpfs (on disk it is several times slower, delta.md §5)
TMPP=$(mktemp -d /dev/shm/eyas-delta-bench.XXXXXX 2>/dev/null || mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMPP"
  if [ "${DELTA_BENCH_KEEP:-0}" = 1 ]; then echo "delta-bench: kept $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT


# ---- test PKI (real-peers.md §2.1), the one every hil-tests script uses ----
P=$W/pki
test_pki "$P" "delta bench"
SIGN=(--cert="$P/signer.cert.pem" --key="$P/signer.key.pem" --keyring="$P/ca.cert.pem")

# ---- three rootfs trees, deterministic (seeded), then reproducible images ----
python3 - "$W" <<'EOF'
import os, random, sys
w = sys.argv[1]
words = ("update slot bundle chunk seed device rootfs kernel config service network storage "
         "release patch delta index store verify signature boot health report").split()
def text(r, n):
    out = []
    while sum(len(x) + 1 for x in out) < n:
        out.append(" ".join(r.choice(words) for _ in range(r.randint(6, 14))))
    return ("\n".join(out) + "\n").encode()[:n]
def write(root, rel, data):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
r = random.Random(12)
files = {}
for i in range(25):
    files[f"usr/bin/tool{i:02d}"] = r.randbytes(r.randint(256 << 10, 1536 << 10))
files["usr/bin/patchme"] = r.randbytes(1 << 20)
for i in range(60):
    files[f"usr/lib/lib{i:02d}.so"] = r.randbytes(r.randint(16 << 10, 400 << 10))
for i in range(300):
    files[f"usr/share/doc/pkg{i:03d}/README"] = text(r, r.randint(2 << 10, 50 << 10))
for i in range(21):
    files[f"etc/conf{i:02d}.conf"] = text(r, r.randint(100, 3000))
files["etc/app.conf"] = b"".join(b"key%d = value%d\n" % (i, i) for i in range(200))
files["etc/sw-version"] = b"1.0.0\n"
v2 = dict(files)
r2 = random.Random(22)
v2["usr/bin/patchme"] = r2.randbytes(1 << 20)
v2["etc/app.conf"] = files["etc/app.conf"].replace(b"key100 = value100\n", b"key100 = patched\n")
v2["etc/sw-version"] = b"1.0.1\n"
v3 = dict(v2)
r3 = random.Random(33)
names = sorted(k for k in files if k.startswith(("usr/bin/tool", "usr/lib/", "usr/share/doc/")))
for n, k in enumerate(r3.sample(names, 40)):
    size = len(files[k])
    if n % 2:
        size = int(size * r3.uniform(0.90, 1.15))
    v3[k] = text(r3, size) if k.endswith("README") else r3.randbytes(size)
v3["etc/sw-version"] = b"1.1.0\n"
for name, tree in (("v1", files), ("v2", v2), ("v3", v3)):
    for rel, data in tree.items():
        write(os.path.join(w, "tree-" + name), rel, data)
changed = lambda a, b: sum(1 for k in b if a.get(k) != b[k])
print(f"trees: {len(files)} files, {sum(map(len, files.values())):,} B; "
      f"v2 changes {changed(files, v2)} files, v3 changes {changed(files, v3)} files")
EOF
for v in v1 v2 v3; do "$HERE/repro-ext4.sh" "$W/tree-$v" "$W/$v.ext4" "${MIB}M" >/dev/null; done
"$HERE/repro-ext4.sh" "$W/tree-v1" "$W/v1-again.ext4" "${MIB}M" >/dev/null
if cmp -s "$W/v1.ext4" "$W/v1-again.ext4"; then repro="byte-identical"; else repro="DIFFERENT (not reproducible)"; fi
rm -f "$W/v1-again.ext4"
blocks=$( { cmp -l "$W/v1.ext4" "$W/v2.ext4" || true; } | awk '{print int(($1-1)/4096)}' | uniq | wc -l)

# ---- bundles: plain (the full bundle) and casync index bundles over one shared chunk store ----
WWW=$W/www; mkdir -p "$WWW"
for v in v1 v2 v3; do
  b=$W/b-$v; mkdir -p "$b"; cp --sparse=always "$W/$v.ext4" "$b/rootfs.ext4"
  printf '[update]\ncompatible=delta-bench\nversion=%s\n\n[bundle]\nformat=plain\n\n[image.rootfs]\nfilename=rootfs.ext4\n' "$v" \
    >"$b/manifest.raucm"
  rauc bundle "${SIGN[@]}" "$b" "$W/$v-plain.raucb" >/dev/null
  rauc convert "${SIGN[@]}" --casync-args="--store=$WWW/store.castr --chunk-size=$CHUNK" \
    "$W/$v-plain.raucb" "$WWW/$v.raucb" >/dev/null
  echo "$v: full bundle $(stat -c %s "$W/$v-plain.raucb") B, index bundle $(stat -c %s "$WWW/$v.raucb") B," \
    "store now $(find "$WWW/store.castr" -name '*.cacnk' | wc -l) chunks"
done
FULL=$(stat -c %s "$W/v2-plain.raucb")

# ---- nginx: the store and the index bundles, one access-log line per request ----
N=$W/nginx
start_nginx "$N" "$WWW" || exit 1
PORT=$(cat "$N/port")

# ---- RAUC sandbox on a private bus (real-peers.md §2.3-2.4) with a [casync] section ----
S=$W/sandbox; mkdir -p "$S/mnt" "$S/data" "$S/bl"
cat >"$S/bootloader.sh" <<EOF
#!/bin/sh
d=$S/bl
case "\$1" in
  get-primary) cat \$d/primary 2>/dev/null || echo A ;;
  set-primary) echo "\$2" > \$d/primary; echo good > \$d/state.\$2 ;;
  get-state) cat \$d/state.\$2 2>/dev/null || echo good ;;
  set-state) echo "\$3" > \$d/state.\$2 ;;
  get-current) echo A ;;
  *) exit 1 ;;
esac
EOF
chmod +x "$S/bootloader.sh"
cat >"$S/system.conf" <<EOF
[system]
compatible=delta-bench
bootloader=custom
mountprefix=$S/mnt
data-directory=$S/data
bundle-formats=plain

[handlers]
bootloader-custom-backend=$S/bootloader.sh

[keyring]
path=$P/ca.cert.pem

[casync]
storepath=http://127.0.0.1:$PORT/store.castr/
tmppath=$TMPP

[slot.rootfs.0]
device=$S/slotA.img
type=ext4
bootname=A

[slot.rootfs.1]
device=$S/slotB.img
type=ext4
bootname=B
EOF
cp "$W/v1.ext4" "$S/slotA.img"
truncate -s "${MIB}M" "$S/slotB.img"
cat >"$S/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$S/bus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
</busconfig>
EOF
dbus-daemon --config-file="$S/bus.conf" --nofork >/dev/null 2>&1 &
PIDS+=($!)
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$S/bus.sock
unset DBUS_STARTER_BUS_TYPE
for _ in $(seq 100); do [ -S "$S/bus.sock" ] && break; sleep 0.1; done
on_bus() {
  dbus-send --system --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
    org.freedesktop.DBus.NameHasOwner string:de.pengutronix.rauc 2>/dev/null | grep -q 'boolean true'
}
RAUC_PID=""
# A fresh `rauc service` for every install: RAUC 1.8 (Debian 1.8-2) loses the configured [casync] storepath
# after its first casync install (the second one logs "Using casync store path: '<garbage>'" and casync
# fails with "Failed to run synchronizer: No such file or directory"). On a device the reboot after an
# update restarts it; a retry within the same boot needs a restart of the service first.
restart_rauc() {
  if [ -n "$RAUC_PID" ]; then
    kill "$RAUC_PID"; wait "$RAUC_PID" 2>/dev/null || true
    for _ in $(seq 100); do on_bus || break; sleep 0.1; done
  fi
  rauc --debug service --conf="$S/system.conf" --override-boot-slot=A >>"$S/rauc.log" 2>&1 &
  RAUC_PID=$!
  PIDS+=("$RAUC_PID")
  for _ in $(seq 150); do on_bus && break; sleep 0.1; done
  on_bus || { echo "delta-bench: rauc service did not come up" >&2; cat "$S/rauc.log" >&2; exit 1; }
}
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$PORT/v1.raucb" && break; sleep 0.1; done

# install CASE BUNDLE IMAGE: one `rauc install` over HTTP; prints the figures of the requests it made
declare -A R_BYTES R_CHUNKS R_CHUNKB R_INDEX R_WALL
install_case() {
  local name=$1 bundle=$2 image=$3 before after t0 t1
  restart_rauc
  before=$(wc -l <"$N/access.log")
  t0=$(date +%s.%N)
  if ! rauc install "http://127.0.0.1:$PORT/$bundle" >"$W/install-$name.log" 2>&1; then
    echo "delta-bench: install $name failed:" >&2; cat "$W/install-$name.log" >&2; tail -20 "$S/rauc.log" >&2; exit 1
  fi
  t1=$(date +%s.%N)
  cmp -s -n "$(stat -c %s "$W/$image.ext4")" "$S/slotB.img" "$W/$image.ext4" \
    || { echo "delta-bench: slot B differs from $image after $name" >&2; exit 1; }
  sleep 0.2 # nginx writes its log line after the response
  after=$(wc -l <"$N/access.log")
  read -r idx chunks chunkb < <(tail -n "+$((before + 1))" "$N/access.log" | head -n "$((after - before))" |
    awk '$1 ~ /\.raucb$/ {i += $3} $1 ~ /\.cacnk$/ {n++; c += $3} END {print i+0, n+0, c+0}')
  R_INDEX[$name]=$idx R_CHUNKS[$name]=$chunks R_CHUNKB[$name]=$chunkb R_BYTES[$name]=$((idx + chunkb))
  R_WALL[$name]=$(echo "$t1 - $t0" | bc)
}
install_case patch v2.raucb v2
install_case ten v3.raucb v3
mv "$S/slotA.img" "$S/slotA.away" # the seed device is missing: RAUC installs without a seed
install_case noseed v2.raucb v2
mv "$S/slotA.away" "$S/slotA.img"
noseed_msg=$(grep -m1 -o "Cannot use .* as seed device[^\"]*" "$S/rauc.log" || true)

pct() { echo "scale=2; 100 * $1 / $FULL" | bc; }
echo
echo "delta-bench: ${MIB} MiB ext4 rootfs, casync chunk size $CHUNK B (avg), RAUC $(rauc --version | awk '{print $2}'), casync $(casync --version 2>/dev/null | head -1 | awk '{print $2}')"
echo "reproducible build: v1 built twice is $repro; v1 -> v2 differs in $blocks blocks of 4 KiB"
echo "full (plain) bundle v2: $FULL B"
printf '%-28s %12s %8s %14s %14s %9s %7s\n' case index_B chunks chunk_B total_B of_full wall_s
for c in patch:"v2 one-file patch, seed v1" ten:"v3 ~10 % of files, seed v1" noseed:"v2 no seed (slot A missing)"; do
  k=${c%%:*} label=${c#*:}
  printf '%-28s %12s %8s %14s %14s %8s%% %7.2f\n' "$label" "${R_INDEX[$k]}" "${R_CHUNKS[$k]}" "${R_CHUNKB[$k]}" \
    "${R_BYTES[$k]}" "$(pct "${R_BYTES[$k]}")" "${R_WALL[$k]}"
done
echo "store: $(find "$WWW/store.castr" -name '*.cacnk' | wc -l) chunks, $(find "$WWW/store.castr" -name '*.cacnk' -printf '%s\n' | awk '{s+=$1} END {print s}') B for v1+v2+v3"
if [ -n "${noseed_msg:-}" ]; then echo "RAUC on the missing seed: $noseed_msg"; fi
echo "bytes = nginx \$body_bytes_sent of the index bundle and the chunk requests (HTTP headers not counted)"
