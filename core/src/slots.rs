//! `slots` module (being built).
