//! `eyas`: the OTA update agent for embedded Linux (hawkBit DDI + RAUC + ThingsBoard).
//!
//! This binary is the I/O shell around `eyas-core`: every protocol decision is made there; the
//! modules of `eyas_linux` perform HTTP, D-Bus, MQTT, file and systemd work and feed results back.

use std::process::ExitCode;

use clap::Parser;
use eyas_linux::{agent, cli, config, logging, record_store::RecordStore, status};

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("eyas: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
}

/// `eyas bootloader …`: RAUC's custom-backend protocol, delegated to eyas-bootloader-glue.
/// The backend settings come from `[eyas] bootloader_config` when the main configuration loads,
/// else from `$EYAS_BOOTLOADER_CONF` / `/etc/eyas/bootloader.conf` (RAUC passes no `-c`).
fn bootloader(cli: &cli::Cli, args: &[String]) -> ExitCode {
    use eyas_bootloader_glue::rauc_backend::{BackendConfig, CONF_ENV};
    let from_main = config::load(&cli.config)
        .ok()
        .map(|l| l.config.eyas.bootloader_config);
    let loaded = match from_main {
        Some(path) if std::env::var_os(CONF_ENV).is_none() => BackendConfig::load(&path),
        _ => BackendConfig::load_default(),
    };
    let cfg = match loaded {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("eyas bootloader: {e}");
            return ExitCode::from(2);
        }
    };
    let code = eyas_bootloader_glue::rauc_backend::run(
        args,
        &cfg,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    );
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if let Some(cli::Command::Bootloader { args }) = &cli.command {
        return bootloader(&cli, args);
    }
    if let Some(cli::Command::DownloadVerify(args)) = &cli.command {
        return eyas_linux::diag::download_verify(args);
    }
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
        // Handled before the configuration is loaded.
        Some(cli::Command::Bootloader { .. } | cli::Command::DownloadVerify(_)) => {
            ExitCode::from(2)
        }
        None => {
            let rt = match runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            let options = agent::RunOptions {
                run_once: cli.run_once,
                bus_address: None,
            };
            let code = rt.block_on(agent::run(&config, options));
            // A request or download blocked in the I/O pool must not delay the exit (SIGTERM).
            rt.shutdown_timeout(std::time::Duration::from_millis(500));
            ExitCode::from(code)
        }
    }
}
