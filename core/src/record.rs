//! `record` module (being built).
