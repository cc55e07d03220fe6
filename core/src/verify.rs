//! `verify` module (being built).
