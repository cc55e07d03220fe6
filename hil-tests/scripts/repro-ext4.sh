#!/usr/bin/env bash
# repro-ext4.sh TREE IMAGE SIZE — a reproducible ext4 image of TREE: the same tree gives the same bytes,
# and a one-file change gives a few changed blocks (delta updates, shared/reference/delta.md §2).
#
# What would otherwise differ between two builds of the same tree:
#   - the filesystem UUID and the directory hash seed (random; with metadata_csum they change the checksum
#     of every directory, inode and extent block)            -> fixed -U and -E hash_seed
#   - superblock times and inode crtime                       -> E2FSPROGS_FAKE_TIME
#   - inode atime/ctime, which mkfs copies from the source tree (reading the tree for one build changes
#     the atime for the next)                                  -> pinned afterwards with debugfs `sif`
#   - file mtimes in the tree                                  -> touch -h -d @EPOCH on every path first
# Env: REPRO_EPOCH (1700000000), REPRO_UUID, REPRO_HASH_SEED.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 TREE IMAGE SIZE" >&2; exit 2; }
TREE=$1 IMAGE=$2 SIZE=$3
EPOCH=${REPRO_EPOCH:-1700000000}
UUID=${REPRO_UUID:-6b1c3a52-6f0e-4a43-9a8b-1d2e3f405162}
SEED=${REPRO_HASH_SEED:-0d7a1f64-2b3c-4d5e-8f90-a1b2c3d4e5f6}

find "$TREE" -exec touch -h -d "@$EPOCH" {} +
E2FSPROGS_FAKE_TIME=$EPOCH mkfs.ext4 -q -F -b 4096 -L rootfs -U "$UUID" -E "hash_seed=$SEED" \
  -d "$TREE" "$IMAGE" "$SIZE"
cmds=$(mktemp)
trap 'rm -f "$cmds"' EXIT
{
  printf '/\n/lost+found\n'
  (cd "$TREE" && find . -mindepth 1 | LC_ALL=C sort | sed 's|^\.||')
} | while IFS= read -r p; do
  for f in atime ctime mtime crtime; do printf 'sif "%s" %s @%s\n' "$p" "$f" "$EPOCH"; done
  for f in atime_extra ctime_extra mtime_extra crtime_extra; do printf 'sif "%s" %s 0\n' "$p" "$f"; done
done >"$cmds"
E2FSPROGS_FAKE_TIME=$EPOCH debugfs -w -f "$cmds" "$IMAGE" >/dev/null 2>&1
