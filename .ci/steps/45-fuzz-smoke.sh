# Fuzz smoke: build every cargo-fuzz target of core/fuzz and bootloader-glue/fuzz and run each briefly;
# a crash fails the step. Long runs (>= 10M execs per parser target, recorded in each fuzz/README.md):
#   cd <crate>/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O <target> -- -runs=10000000 -max_len=4096
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
export RUSTC_BOOTSTRAP=1
RUNS="${EYAS_FUZZ_SMOKE_RUNS:-20000}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for dir in core/fuzz bootloader-glue/fuzz; do
  cd "$root/$dir"
  cargo fuzz build -O
  for t in $(cargo fuzz list); do
    if cargo fuzz run -O "$t" -- -runs="$RUNS" -max_len=4096 >"$log" 2>&1; then
      echo "fuzz-smoke: $dir: $t: $(grep -E '^Done' "$log")"
    else
      echo "fuzz-smoke: $dir: $t FAILED" >&2
      tail -40 "$log" >&2
      exit 1
    fi
  done
done
# The fuzz builds (~0.9 GB) serve this step only; CI disks are small. EYAS_KEEP_FUZZ_BUILD=1 keeps them.
[ "${EYAS_KEEP_FUZZ_BUILD:-0}" = 1 ] || rm -rf "$root/core/fuzz/target" "$root/bootloader-glue/fuzz/target"
