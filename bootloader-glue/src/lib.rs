//! eyas-bootloader-glue: stores the A/B boot state that `eyas_core::slots` computes.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
