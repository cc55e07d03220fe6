//! `eyas`: the OTA update agent for embedded Linux (hawkBit DDI + RAUC + ThingsBoard).
//!
//! This binary is the I/O shell around `eyas-core`: every protocol decision is made there; the
//! modules here perform HTTP, D-Bus, MQTT, file and systemd work and feed results back.

use eyas_linux::{cli, config, logging};

use std::process::ExitCode;

use clap::Parser;

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
    match cli.command {
        Some(cli::Command::CheckConfig) => {
            println!("{:#?}", loaded.config);
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("eyas: the agent loop is not wired yet");
            ExitCode::from(2)
        }
    }
}
