# Unit, property, simulation and integration tests of every workspace crate.
set -euo pipefail
cargo test --workspace --locked
