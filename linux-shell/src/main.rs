//! `eyas`: the OTA update agent for embedded Linux (hawkBit DDI + RAUC + ThingsBoard).
//!
//! This binary is the I/O shell around `eyas-core`: every protocol decision is made there; the
//! modules of `eyas_linux` perform HTTP, D-Bus, MQTT, file and systemd work and feed results back.

use std::process::ExitCode;

use clap::Parser;
use eyas_linux::{cli, config, logging, record_store::RecordStore, status};

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("eyas: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let loaded = match config::load(&cli.config) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("eyas: {e}");
            return ExitCode::from(2);
        }
    };
    let level = if cli.debug {
        tracing::Level::DEBUG
    } else {
        loaded.config.client.log_level.tracing_level()
    };
    logging::init(level, cli.output_systemd);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let config = loaded.config;
    match cli.command {
        Some(cli::Command::CheckConfig) => {
            println!("{config:#?}");
            ExitCode::SUCCESS
        }
        Some(cli::Command::Status) => {
            let rt = match runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            let store = RecordStore::new(&config.eyas.record_path);
            ExitCode::from(rt.block_on(status::run(&store, None)))
        }
        Some(cli::Command::Bootloader { .. }) => {
            eprintln!(
                "eyas: `eyas bootloader` is not available yet (eyas-bootloader-glue has no entry point)"
            );
            ExitCode::from(2)
        }
        None => {
            eprintln!("eyas: the agent loop is not wired yet");
            ExitCode::from(2)
        }
    }
}
