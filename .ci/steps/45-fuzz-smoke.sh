# Fuzz smoke: build every cargo-fuzz target of core/fuzz and run each briefly; a crash fails the step.
# Long runs (>= 1M execs per target) are done by hand:
#   cd core/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O <target> -- -runs=1000000
set -euo pipefail
cd "$(dirname "$0")/../../core/fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
export RUSTC_BOOTSTRAP=1
RUNS="${EYAS_FUZZ_SMOKE_RUNS:-20000}"
cargo fuzz build -O
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in $(cargo fuzz list); do
  if cargo fuzz run -O "$t" -- -runs="$RUNS" -max_len=4096 >"$log" 2>&1; then
    echo "fuzz-smoke: $t: $(grep -E '^Done' "$log")"
  else
    echo "fuzz-smoke: $t FAILED" >&2
    tail -40 "$log" >&2
    exit 1
  fi
done
