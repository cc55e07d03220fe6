#!/usr/bin/env bash
# Builds the emulated aarch64 board, without root privileges for any step and without loop mounts
# (qemu-hil.md §3-§5): Debian arm64 packages (apt-get download + dpkg -x), the cloud kernel with a
# small initramfs, two ext4 rootfs slots holding kernel + initramfs + init + the cross-built eyas +
# real RAUC 1.8 (bootloader=uboot) with dbus-daemon and libubootenv's fw_printenv/fw_setenv, a boot
# partition with boot.scr (RAUC's U-Boot scheme), the raw U-Boot env on the disk, a data partition,
# the read-only pflash env for U-Boot, a test PKI and signed update bundles.
#
# Output ($CACHE/out): disk.img (factory image: 1.0.0 in A and B, env BOOT_ORDER="A B"), envflash.img,
# bundles/rootfs-2.0.0.raucb (good update), bundles/rootfs-2.0.0-crash.raucb (its userspace dies at
# every boot), bundles/rootfs-2.0.0-unhealthy.raucb (boots, fails the health check),
# bundles/app-2.0.0.raucb (the appfs slot) + bundles/device-2.0.0.conf (a configuration file), pki/.
# Every step is cached by a stamp of its inputs; a warm rebuild takes seconds.
#
# Env: EYAS_BIN=<aarch64 eyas>  use this binary instead of building it (./run cross)
#      EYAS_QEMU_CACHE=<dir>    cache directory (default .work/qemu-cache)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
LOG_NAME=build-image
T0=$(date +%s)
for t in apt-get dpkg mke2fs sfdisk mkimage mkenvimage qemu-aarch64-static rauc casync openssl aarch64-linux-gnu-readelf \
  aarch64-linux-gnu-strings cpio gzip fw_printenv file; do
  command -v "$t" >/dev/null || die "$t missing (run .ci/install-deps)"
done
mkdir -p "$BUILD" "$OUT"

bash "$QEMU_DIR/fetch-debs.sh"
KPKG=$(cat "$CACHE/debs/kernel.name")

# ---- eyas for aarch64 (static, Debian rustc-web)
if [ -n "${EYAS_BIN:-}" ]; then
  EYAS=$EYAS_BIN
else
  EYAS_CROSS_TARGETS=aarch64-unknown-linux-gnu bash "$ROOT/run" cross >"$BUILD/cross.log" 2>&1 || {
    tail -30 "$BUILD/cross.log" >&2; die "./run cross failed (log: $BUILD/cross.log)"; }
  EYAS=$EYAS_AARCH64
fi
[ -x "$EYAS" ] || die "no eyas binary at $EYAS"
file -b "$EYAS" | grep -q 'ARM aarch64.*statically linked' || die "$EYAS is not a static aarch64 binary: $(file -b "$EYAS")"

# ---- packages unpacked into one tree (never installed)
PKGROOT=$BUILD/pkgroot
if ! stamp_ok pkgroot "$CACHE/debs" "$QEMU_DIR/packages.txt"; then
  log "unpacking $(ls "$CACHE/debs"/*.deb | wc -l) packages"
  rm -rf "$PKGROOT" "$BUILD/kernel"
  mkdir -p "$PKGROOT" "$BUILD/kernel"
  for deb in "$CACHE/debs"/*.deb; do
    if [ "$(basename "$deb" .deb)" = "$KPKG" ]; then dpkg -x "$deb" "$BUILD/kernel"; else dpkg -x "$deb" "$PKGROOT"; fi
  done
  rm -rf "$PKGROOT"/usr/share/{doc,man,info,locale,lintian,bug,bash-completion} "$PKGROOT"/etc/init.d \
    "$PKGROOT"/lib/systemd "$PKGROOT"/usr/lib/systemd "$PKGROOT"/usr/lib/aarch64-linux-gnu/gconv
  # every DT_NEEDED of every ELF file must be in the tree (packages.txt is a hand-kept closure)
  missing=$(find "$PKGROOT" -type f \( -perm -u+x -o -name '*.so*' \) -print0 |
    { xargs -0 aarch64-linux-gnu-readelf -d 2>/dev/null || true; } | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u |
    while read -r so; do
      [ -e "$PKGROOT/lib/aarch64-linux-gnu/$so" ] || [ -e "$PKGROOT/usr/lib/aarch64-linux-gnu/$so" ] ||
        [ -e "$PKGROOT/lib/$so" ] || echo "$so"
    done)
  [ -z "$missing" ] || die "shared libraries missing from packages.txt: $missing"
  v=$(qemu-aarch64-static -L "$PKGROOT" "$PKGROOT/usr/bin/rauc" --version) || die "rauc:arm64 does not run (qemu-user)"
  log "pkgroot: $v, dbus-daemon, fw_printenv/fw_setenv; $(du -sm "$PKGROOT" | cut -f1) MiB"
  qemu-aarch64-static "$PKGROOT/bin/busybox" --list-full >"$BUILD/busybox.list"
  stamp_set pkgroot "$CACHE/debs" "$QEMU_DIR/packages.txt"
fi
KVER=$(ls "$BUILD/kernel/lib/modules")
KIMAGE=$BUILD/kernel/boot/vmlinuz-$KVER

# ---- initramfs (qemu-hil.md §3.3)
INITRD=$BUILD/initrd.gz
if ! stamp_ok initrd "$BUILD/stamps/pkgroot" "$QEMU_DIR/guest/initramfs-init" "$QEMU_DIR/guest/modules.wanted"; then
  d=$BUILD/initramfs
  rm -rf "$d"; mkdir -p "$d"/{bin,dev,proc,sys,newroot,modules}
  cp "$PKGROOT/bin/busybox" "$d/bin/busybox"
  install -m 755 "$QEMU_DIR/guest/initramfs-init" "$d/init"
  # the package ships no modules.dep: load order from each module's depends= (modinfo), dependencies first
  declare -A mod_path=() mod_done=()
  while read -r f; do m=$(basename "$f" .ko); mod_path[$m]=$f; mod_path[${m//-/_}]=$f; done \
    < <(find "$BUILD/kernel/lib/modules/$KVER/kernel" -name '*.ko')
  add_mod() {
    local m=$1 dep f
    [ -n "${mod_done[$m]:-}" ] && return 0
    f=${mod_path[$m]:-}
    [ -n "$f" ] || die "kernel module $m.ko not in $KPKG"
    for dep in $(aarch64-linux-gnu-strings "$f" | sed -n 's/^depends=//p' | tr ',' ' '); do add_mod "$dep"; done
    mod_done[$m]=1
    cp "$f" "$d/modules/"
    basename "$f" .ko >>"$d/modules.order"
  }
  : >"$d/modules.order"
  while read -r m; do add_mod "$m"; done < <(sed 's/#.*//; /^[[:space:]]*$/d' "$QEMU_DIR/guest/modules.wanted")
  (cd "$d" && find . | cpio -o -H newc --quiet | gzip -1 >"$INITRD")
  stamp_set initrd "$BUILD/stamps/pkgroot" "$QEMU_DIR/guest/initramfs-init" "$QEMU_DIR/guest/modules.wanted"
  log "initramfs: $(stat -c %s "$INITRD") bytes"
fi

# ---- test PKI (the CA goes into every slot's RAUC keyring)
if [ ! -f "$OUT/pki/signer.key.pem" ]; then
  . "$ROOT/hil-tests/scripts/lib.sh"
  test_pki "$OUT/pki" "eyas qemu" || die "test PKI"
fi

# ---- rootfs slot images
# rootfs NAME VERSION [MARKER]: $BUILD/NAME.ext4; MARKER (crash-on-boot | unhealthy) makes a bad image
GUEST_INPUTS=("$BUILD/stamps/pkgroot" "$BUILD/stamps/initrd" "$EYAS" "$OUT/pki/ca.cert.pem" "$QEMU_DIR/guest")
rootfs() {
  local name=$1 version=$2 marker=${3:-} d=$BUILD/rootfs-$1 img=$BUILD/$1.ext4 l
  if stamp_ok "rootfs-$name" "${GUEST_INPUTS[@]}" "$version" "$marker" "$SLOT_MB" && [ -f "$img" ]; then return 0; fi
  rm -rf "$d"; mkdir -p "$d"
  cp -a "$PKGROOT/." "$d/"
  while read -r l; do  # busybox applets where the packages ship no real tool
    [ -e "$d/$l" ] || [ -L "$d/$l" ] || { mkdir -p "$d/$(dirname "$l")"; ln -s /bin/busybox "$d/$l"; }
  done <"$BUILD/busybox.list"
  mkdir -p "$d"/{proc,sys,dev,run,tmp,data,mnt,boot,etc/rauc,etc/hil,usr/lib/eyas-hil,var}
  ln -sfn ../run "$d/var/run"
  rm -f "$d/sbin/init"
  install -m 755 "$QEMU_DIR/guest/init" "$d/sbin/init"
  install -m 755 "$EYAS" "$d/usr/bin/eyas"
  install -m 755 "$QEMU_DIR/guest/health-check" "$QEMU_DIR/guest/reboot" "$QEMU_DIR/guest/config-hook" \
    "$d/usr/lib/eyas-hil/"
  cp "$QEMU_DIR/guest/system.conf" "$d/etc/rauc/system.conf"
  cp "$OUT/pki/ca.cert.pem" "$d/etc/rauc/ca.cert.pem"
  cp "$QEMU_DIR/guest/fw_env.config" "$d/etc/fw_env.config"
  cp "$QEMU_DIR/guest/dbus.conf" "$d/etc/hil/dbus.conf"
  printf 'root:x:0:0:root:/root:/bin/sh\nmessagebus:x:100:101::/run/dbus:/bin/false\n' >"$d/etc/passwd"
  printf 'root:x:0:\nmessagebus:x:101:\n' >"$d/etc/group"
  echo "$version" >"$d/etc/os-version"
  [ -z "$marker" ] || touch "$d/etc/hil/$marker"
  cp "$KIMAGE" "$d/boot/Image"
  cp "$INITRD" "$d/boot/initrd.gz"
  rm -f "$img"
  # reproducible (delta.md §2): fixed UUID, hash seed, times, so that slot images of two releases
  # share their unchanged blocks and a casync update moves only what changed
  find "$d" -exec touch -h -d @1700000000 {} +
  E2FSPROGS_FAKE_TIME=1700000000 mke2fs -q -F -t ext4 -O ^metadata_csum,^64bit -U 6b1c3a52-6f0e-4a43-9a8b-1d2e3f405162 \
    -E root_owner=0:0,hash_seed=0d7a1f64-2b3c-4d5e-8f90-a1b2c3d4e5f6 -L "rootfs" -d "$d" "$img" "${SLOT_MB}M" >/dev/null ||
    die "mke2fs $name (is the slot of ${SLOT_MB} MiB too small? $(du -sm "$d" | cut -f1) MiB of files)"
  rm -rf "$d"
  stamp_set "rootfs-$name" "${GUEST_INPUTS[@]}" "$version" "$marker" "$SLOT_MB"
  log "rootfs $name ($version${marker:+, $marker}): ${SLOT_MB} MiB ext4"
}
rootfs factory-1.0.0 1.0.0
rootfs update-2.0.0 2.0.0
rootfs update-2.0.0-crash 2.0.0-crash crash-on-boot
rootfs update-2.0.0-unhealthy 2.0.0-unhealthy unhealthy

# ---- signed RAUC bundles (plain format, as rauc 1.8 on the host builds them)
bundle() { # bundle NAME VERSION
  local name=$1 version=$2 b=$OUT/bundles/rootfs-$2.raucb d=$BUILD/bundle-$1
  if stamp_ok "bundle-$name" "$BUILD/$name.ext4" "$OUT/pki/signer.cert.pem" "$version" && [ -f "$b" ]; then return 0; fi
  rm -rf "$d"; mkdir -p "$d" "$OUT/bundles"
  ln "$BUILD/$name.ext4" "$d/rootfs.ext4" 2>/dev/null || cp "$BUILD/$name.ext4" "$d/rootfs.ext4"
  printf '[update]\ncompatible=eyas-qemu-aarch64\nversion=%s\n\n[bundle]\nformat=plain\n\n[image.rootfs]\nfilename=rootfs.ext4\n' \
    "$version" >"$d/manifest.raucm"
  rm -f "$b"
  rauc bundle --cert="$OUT/pki/signer.cert.pem" --key="$OUT/pki/signer.key.pem" --keyring="$OUT/pki/ca.cert.pem" \
    "$d" "$b" >"$BUILD/bundle-$name.log" 2>&1 || { cat "$BUILD/bundle-$name.log" >&2; die "rauc bundle $name"; }
  rm -rf "$d"
  stamp_set "bundle-$name" "$BUILD/$name.ext4" "$OUT/pki/signer.cert.pem" "$version"
  log "bundle $(basename "$b"): $(stat -c %s "$b") bytes"
}
bundle update-2.0.0 2.0.0
bundle update-2.0.0-crash 2.0.0-crash
bundle update-2.0.0-unhealthy 2.0.0-unhealthy

# ---- the 2.0.0 update as a casync bundle (delta update): an index bundle + chunks in out/castore,
# which the scenario `delta` serves with nginx; the board seeds from its booted slot
if ! stamp_ok casync-2.0.0 "$BUILD/stamps/bundle-update-2.0.0" || [ ! -f "$OUT/bundles/rootfs-2.0.0-casync.raucb" ]; then
  rm -rf "$OUT/castore" "$OUT/bundles/rootfs-2.0.0-casync.raucb"; mkdir -p "$OUT/castore"
  rauc convert --cert="$OUT/pki/signer.cert.pem" --key="$OUT/pki/signer.key.pem" --keyring="$OUT/pki/ca.cert.pem" \
    --casync-args="--store=$OUT/castore/store.castr --chunk-size=65536" \
    "$OUT/bundles/rootfs-2.0.0.raucb" "$OUT/bundles/rootfs-2.0.0-casync.raucb" >"$BUILD/casync.log" 2>&1 ||
    { cat "$BUILD/casync.log" >&2; die "rauc convert (casync)"; }
  stamp_set casync-2.0.0 "$BUILD/stamps/bundle-update-2.0.0"
  log "casync bundle: index $(stat -c %s "$OUT/bundles/rootfs-2.0.0-casync.raucb") bytes, $(find "$OUT/castore" -name '*.cacnk' | wc -l) chunks"
fi

# ---- an application bundle for the appfs slot (no bootname: installed without a reboot) and a
# configuration file for part.config.command (scenario `parts`)
if ! stamp_ok app-2.0.0 "$OUT/pki/signer.cert.pem" || [ ! -f "$OUT/bundles/app-2.0.0.raucb" ]; then
  d=$BUILD/bundle-app
  rm -rf "$d"; mkdir -p "$d/root/etc" "$d/bundle" "$OUT/bundles"
  echo "webapp 2.0.0" >"$d/root/etc/app-version"
  mke2fs -q -F -t ext4 -O ^metadata_csum,^64bit -E root_owner=0:0 -L appfs -d "$d/root" "$d/bundle/appfs.ext4" 2M >/dev/null
  printf '[update]\ncompatible=eyas-qemu-aarch64\nversion=2.0.0\n\n[bundle]\nformat=plain\n\n[image.appfs]\nfilename=appfs.ext4\n' \
    >"$d/bundle/manifest.raucm"
  rm -f "$OUT/bundles/app-2.0.0.raucb"
  rauc bundle --cert="$OUT/pki/signer.cert.pem" --key="$OUT/pki/signer.key.pem" --keyring="$OUT/pki/ca.cert.pem" \
    "$d/bundle" "$OUT/bundles/app-2.0.0.raucb" >"$BUILD/bundle-app.log" 2>&1 || { cat "$BUILD/bundle-app.log" >&2; die "rauc bundle app"; }
  printf '# eyas-qemu device configuration 2.0.0\nlog_level=debug\n' >"$OUT/bundles/device-2.0.0.conf"
  rm -rf "$d"
  stamp_set app-2.0.0 "$OUT/pki/signer.cert.pem"
  log "bundle app-2.0.0.raucb: $(stat -c %s "$OUT/bundles/app-2.0.0.raucb") bytes; device-2.0.0.conf"
fi

# ---- U-Boot: boot.scr on the boot partition, read-only pflash env (qemu-hil.md §5.4, §5.5)
if ! stamp_ok boot "$QEMU_DIR/boot.cmd" "$QEMU_DIR/envflash.txt"; then
  rm -rf "$BUILD/bootfs"; mkdir -p "$BUILD/bootfs"
  mkimage -A arm64 -O linux -T script -C none -n "eyas A/B" -d "$QEMU_DIR/boot.cmd" "$BUILD/bootfs/boot.scr" >/dev/null
  rm -f "$BUILD/boot.ext4"
  mke2fs -q -F -t ext4 -O ^metadata_csum,^64bit -E root_owner=0:0 -L boot -d "$BUILD/bootfs" "$BUILD/boot.ext4" "${BOOT_MB}M"  >/dev/null
  mkenvimage -s 0x40000 -p 0xff -o "$BUILD/envflash.env" "$QEMU_DIR/envflash.txt"
  # pflash bank 1 is 64 MiB; pad with 0xff like erased NOR
  head -c $((64 << 20)) /dev/zero | tr '\0' '\377' >"$OUT/envflash.img"
  dd if="$BUILD/envflash.env" of="$OUT/envflash.img" conv=notrunc status=none
  stamp_set boot "$QEMU_DIR/boot.cmd" "$QEMU_DIR/envflash.txt"
fi

# ---- the factory disk image
if ! stamp_ok disk "$BUILD/stamps/boot" "$BUILD/stamps/rootfs-factory-1.0.0" "$DISK_MB" || [ ! -f "$OUT/disk.img" ]; then
  img=$OUT/disk.img.tmp
  rm -f "$img"; truncate -s "${DISK_MB}M" "$img"
  printf 'label: dos\nstart=%sMiB, size=%sMiB, type=83, bootable\nstart=%sMiB, size=%sMiB, type=83\nstart=%sMiB, size=%sMiB, type=83\nstart=%sMiB, size=%sMiB, type=83\n' \
    "$BOOT_START" "$BOOT_MB" "$SLOT_A_START" "$SLOT_MB" "$SLOT_B_START" "$SLOT_MB" "$DATA_START" "$DATA_MB" |
    sfdisk -q "$img" >/dev/null
  dd if="$BUILD/boot.ext4" of="$img" bs=1M seek="$BOOT_START" conv=notrunc,sparse status=none
  dd if="$BUILD/factory-1.0.0.ext4" of="$img" bs=1M seek="$SLOT_A_START" conv=notrunc,sparse status=none
  dd if="$BUILD/factory-1.0.0.ext4" of="$img" bs=1M seek="$SLOT_B_START" conv=notrunc,sparse status=none
  # factory env: what RAUC's U-Boot integration expects on a new board
  printf 'BOOT_ORDER=A B\nBOOT_A_LEFT=3\nBOOT_B_LEFT=3\n' >"$BUILD/env0.txt"
  mkenvimage -s "$ENV_SIZE" -o "$BUILD/env0.bin" "$BUILD/env0.txt"
  dd if="$BUILD/env0.bin" of="$img" bs=1 seek=$((ENV_OFFSET)) conv=notrunc status=none
  echo "$img $ENV_OFFSET $ENV_SIZE" >"$BUILD/fw_env.config"
  got=$(fw_printenv -c "$BUILD/fw_env.config" BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT | tr '\n' ' ')
  [ "$got" = "BOOT_ORDER=A B BOOT_A_LEFT=3 BOOT_B_LEFT=3 " ] || die "fw_printenv reads '$got' from the new image"
  mv "$img" "$OUT/disk.img"
  stamp_set disk "$BUILD/stamps/boot" "$BUILD/stamps/rootfs-factory-1.0.0" "$DISK_MB"
  log "disk.img: ${DISK_MB} MiB ($(du -m "$OUT/disk.img" | cut -f1) MiB allocated)"
fi
log "ready in $(( $(date +%s) - T0 )) s: $OUT (kernel $KVER)"
