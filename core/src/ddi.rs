//! `ddi` module (being built).
