# QEMU hardware-in-the-loop (issue 10): the emulated aarch64 board (qemu/build-image.sh: U-Boot with
# RAUC's boot.scr, real RAUC 1.8 with bootloader=uboot, the cross-built eyas) against hawkbit-sim and
# mosquitto over restrict=on user networking; scenarios `good` (update to B, marked good, finished)
# and `fallback` (B never comes up, U-Boot counts its attempts down and boots A, closed/failure,
# rollout paused). Console logs of every VM run stay in .work/qemu-hil/ci.
set -euo pipefail
cd "$(dirname "$0")/../.."
rm -rf .work/qemu-hil/ci
# hawkbit-sim from the workspace target dir that the earlier steps filled (no second build)
CARGO_TARGET_DIR=$PWD/target QEMU_HIL_DIR=$PWD/.work/qemu-hil/ci bash hil-tests/scripts/qemu-hil.sh good fallback
