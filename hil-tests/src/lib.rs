//! eyas-hil-tests: `hawkbit-sim`, a hawkBit test server faithful on the DDI and Management API paths eyas
//! and other hawkBit clients use, plus helpers for end-to-end scenarios (a small load-generating HTTP
//! client and simulated devices, and a real nginx for the casync chunk store tests).
//!
//! Start it in-process with [`sim::Sim::start`]; see `hil-tests/README.md` for the binary, its flags and
//! how it differs from real hawkBit.

pub mod client;
pub mod fleet;
pub mod nginx;
pub mod sim;
