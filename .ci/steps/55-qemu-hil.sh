# QEMU hardware-in-the-loop (issue 10): the emulated aarch64 board (qemu/build-image.sh: U-Boot with
# RAUC's boot.scr, real RAUC 1.8 with bootloader=uboot, the cross-built eyas) against hawkbit-sim and
# mosquitto over restrict=on user networking. All seven scenarios, two VMs at a time (one per core):
# good (update to B, marked good), fallback (B never comes up, U-Boot falls back), unhealthy (B fails
# its health check), powercut (five power cuts during one update), parts (application + config, no
# reboot), staged (two boards, two rollout groups), delta (the update as a casync bundle, chunks from
# nginx on the host, seeded from the booted slot). Console logs stay in .work/qemu-hil/ci.
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .work/qemu-hil/ci
# hawkbit-sim and eyasctl from the workspace target dir that the earlier steps filled
CARGO_TARGET_DIR=$PWD/target QEMU_HIL_DIR=$PWD/.work/qemu-hil/ci QEMU_HIL_JOBS=2 \
  bash hil-tests/scripts/qemu-hil.sh good fallback unhealthy powercut parts delta staged
