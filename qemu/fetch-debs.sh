#!/usr/bin/env bash
# Fetches the guest's Debian arm64 packages with `apt-get download` (no install, no root needed for
# the download itself) into $CACHE/debs: the newest linux-image-<abi>-cloud-arm64 and packages.txt.
# Cached by package name; EYAS_QEMU_REFRESH=1 fetches everything again (e.g. after a point release).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
LOG_NAME=fetch-debs
[[ " $(dpkg --print-foreign-architectures | tr "\n" " ") " == *" arm64 "* ]] || die "arm64 is not a dpkg architecture (run .ci/install-deps)"
mkdir -p "$CACHE/debs"
cd "$CACHE/debs"
[ "${EYAS_QEMU_REFRESH:-0}" = 1 ] && rm -f ./*.deb kernel.name

# Kernel ABIs rotate in the archive (qemu-hil.md §3.2): pick the newest at the first fetch, then keep it.
if [ ! -s kernel.name ]; then
  apt-cache search --names-only '^linux-image-[0-9.]+-[0-9]+-cloud-arm64$' | awk '{print $1}' | sort -V | tail -1 >kernel.name
  [ -s kernel.name ] || die "no linux-image-*-cloud-arm64 in the apt lists (apt-get update?)"
fi
want=("$(cat kernel.name)")
while read -r p; do want+=("$p"); done < <(sed 's/#.*//; /^[[:space:]]*$/d' "$QEMU_DIR/packages.txt")

missing=()
for p in "${want[@]}"; do [ -f "$p.deb" ] || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get download ${#missing[@]} arm64 packages"
  tmp=$(mktemp -d "$CACHE/debs/.dl.XXXXXX")
  (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "${missing[@]/%/:arm64}" >download.log 2>&1) || {
    tail -20 "$tmp/download.log" >&2; rm -rf "$tmp"; die "apt-get download failed"; }
  for p in "${missing[@]}"; do
    f=("$tmp/${p}"_*_arm64.deb "$tmp/${p}"_*_all.deb)
    f=("${f[@]}")
    for g in "${f[@]}"; do [ -f "$g" ] && { mv "$g" "$p.deb"; break; }; done
    [ -f "$p.deb" ] || { rm -rf "$tmp"; die "apt-get download gave no file for $p"; }
  done
  rm -rf "$tmp"
fi
log "${#want[@]} packages in $CACHE/debs (kernel $(cat kernel.name))"
