//! `time` module (being built).
