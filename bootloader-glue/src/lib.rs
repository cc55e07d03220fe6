#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(clippy::std_instead_of_core)]

pub mod barebox;
pub mod crc;
pub mod grub;
pub mod storage;
pub mod uboot;

#[cfg(feature = "std")]
pub mod file;
#[cfg(feature = "std")]
pub mod rauc_backend;

/// One variable change: `(name, Some(value))` sets, `(name, None)` deletes.
///
/// This is the shape of the change sets that `eyas_core::slots` computes; every store in this
/// crate applies a whole list of them in one write.
pub type Change<'a> = (&'a str, Option<&'a str>);
