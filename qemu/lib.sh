# Shared settings of the qemu/ scripts (sourced). Everything large lives in the cache directory
# (outside git): downloaded .debs, unpacked packages, kernel, initramfs, slot images, bundles, disk.
QEMU_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$QEMU_DIR/.." && pwd)
CACHE=${EYAS_QEMU_CACHE:-$ROOT/.work/qemu-cache}
BUILD=$CACHE/build
OUT=$CACHE/out          # what the scenarios use: disk.img, envflash.img, bundles, PKI
CROSS_DIR=${EYAS_CROSS_TARGET_DIR:-$ROOT/target-cross}
EYAS_AARCH64=$CROSS_DIR/aarch64-unknown-linux-gnu/release/eyas

# Disk layout (qemu-hil.md §4, plus a data partition): MiB offsets and sizes.
ENV_OFFSET=0x100000 ENV_SIZE=0x4000       # raw U-Boot env, in the gap before p1 (block 0x800, 0x20 blocks)
BOOT_START=4 BOOT_MB=8                   # p1 ext4: /boot.scr
SLOT_A_START=12 SLOT_MB=112              # p2 rootfs A (/dev/vda2), p3 rootfs B (/dev/vda3)
SLOT_B_START=$((SLOT_A_START + SLOT_MB))
DATA_START=$((SLOT_B_START + SLOT_MB)) DATA_MB=64   # p4 ext4 /data: eyas record, downloads, RAUC status, device config
DISK_MB=$((DATA_START + DATA_MB))

log() { printf '%s: %s\n' "${LOG_NAME:-qemu}" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# stamp_ok NAME INPUT...: true when NAME's recorded input hash matches the inputs (files or strings).
# stamp_set NAME INPUT...: record it after a successful build step. Incremental builds use these.
stamp_hash() {
  local a
  for a in "$@"; do
    if [ -f "$a" ]; then printf 'f %s %s\n' "$a" "$(stat -c '%s %Y' "$a")"
    elif [ -d "$a" ]; then printf 'd %s %s\n' "$a" "$(find "$a" -printf '%p %s %T@\n' | sort | sha256sum | cut -c1-16)"
    else printf 's %s\n' "$a"; fi
  done | sha256sum | cut -c1-32
}
stamp_ok() { local n=$1; shift; [ -f "$BUILD/stamps/$n" ] && [ "$(cat "$BUILD/stamps/$n")" = "$(stamp_hash "$@")" ]; }
stamp_set() { local n=$1; shift; mkdir -p "$BUILD/stamps"; stamp_hash "$@" >"$BUILD/stamps/$n"; }
