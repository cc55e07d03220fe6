//! eyas-core: the `no_std`, allocation-free, sans-IO heart of the eyas OTA agent.
//!
//! Nothing in this crate touches a socket, a file, a clock or a process: time and bytes are
//! passed in, requests and actions come out (see `ARCHITECTURE.md`).
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(
    missing_docs,
    clippy::std_instead_of_core,
    clippy::alloc_instead_of_core
)]

pub mod client;
pub mod ddi;
mod hash;
pub mod record;
mod sha1_small;
pub mod slots;
mod text;
pub mod time;
mod varint;
pub mod verify;

pub use hash::fnv1a64;
