# eyas-bootloader-glue: what only this step checks. Clippy and the full test suite already run for
# the whole workspace in 10-lint.sh and 20-workspace-tests.sh; here: the no_std builds (host and
# Cortex-M4) and the power-cut suite with the number of cut points printed.
set -euo pipefail
echo "--- no_std build (codecs without std/alloc)"
cargo build -p eyas-bootloader-glue --no-default-features --locked
echo "--- no_std build for Cortex-M4 (thumbv7em-none-eabihf, Debian rustc-web + build-std=core)"
command -v /usr/bin/rustc >/dev/null || { echo "bootloader-glue: /usr/bin/rustc (rustc-web) missing: run .ci/install-deps" >&2; exit 1; }
RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc CARGO_TARGET_DIR="$PWD/target-glue-thumb" /usr/bin/cargo build \
  -p eyas-bootloader-glue --no-default-features --target thumbv7em-none-eabihf -Zbuild-std=core --locked
echo "--- power cuts (cut points exercised)"
cargo test -p eyas-bootloader-glue --locked --test power_cut -- --nocapture --test-threads=1 2>&1 | tee /tmp/eyas-glue-power-cut.log | grep -E 'cut points|cuts landed|test result'
grep -q 'test result: ok' /tmp/eyas-glue-power-cut.log
