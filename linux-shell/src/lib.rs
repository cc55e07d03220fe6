//! eyas-linux: the I/O shell of the eyas OTA agent.
//!
//! `eyas-core` makes every protocol decision; the modules here perform the work it asks for —
//! HTTP(S) requests and downloads, RAUC calls over D-Bus, MQTT telemetry, the persistent record
//! file, systemd notification — and hand the results back. Only this crate knows about sockets,
//! D-Bus, MQTT, files and processes.

pub mod agent;
pub mod chunk_relay;
pub mod cli;
pub mod config;
pub mod diag;
pub mod download;
pub mod hooks;
pub mod http;
pub mod keyfile;
pub mod logging;
pub mod manifest;
pub mod rauc;
pub mod record_store;
pub mod service;
pub mod status;
pub mod telemetry;
