//! `client` module (being built).
