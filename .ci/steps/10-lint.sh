# Formatting and clippy (-D warnings) over the whole workspace, every target.
set -euo pipefail
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
