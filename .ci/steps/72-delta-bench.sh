# Delta updates (issue 12): hil-tests/scripts/delta-bench.sh once — real RAUC 1.8 + casync + nginx, three
# reproducible 64 MiB rootfs images; prints the bytes a device fetches for a one-file patch, a ~10 % change
# and with no seed, against the full bundle. It fails only on a broken run (an install that fails, a slot
# that differs from its image), never on the figures. About 25 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
hil-tests/scripts/delta-bench.sh
