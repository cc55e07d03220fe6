# Unit, property, simulation and integration tests of every workspace crate.
set -euo pipefail
cargo test --workspace --locked
# eyas-core once more on its own: the workspace build has the `large-capacities` feature
# (linux-shell enables it); this run has the MCU capacities the firmware uses.
cargo test -p eyas-core --locked
