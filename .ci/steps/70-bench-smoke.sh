# Bench smoke: eyas download-verify (release binary) vs curl + openssl dgst over loopback, once,
# with a small artifact, so CI proves the benchmark runs. It prints numbers, ratios and
# PASS/MISS against the issue's targets; it never fails on them (only on a broken run or digest).
# The full measurement (256 MiB, 3 runs per side) is by hand:
#   cargo bench -p eyas-linux --bench download_vs_curl
set -euo pipefail
cd "$(dirname "$0")/../.."
EYAS_BENCH_MIB="${EYAS_BENCH_MIB:-16}" EYAS_BENCH_RUNS="${EYAS_BENCH_RUNS:-1}" \
  cargo bench -p eyas-linux --bench download_vs_curl
