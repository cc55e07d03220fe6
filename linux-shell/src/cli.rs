//! Command line: the flags of rauc-hawkbit-updater plus eyas subcommands.

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand};

/// Default configuration path, the one rauc-hawkbit-updater's unit file uses.
pub const DEFAULT_CONFIG: &str = "/etc/rauc-hawkbit-updater/config.conf";

/// `eyas` — OTA update agent for hawkBit + RAUC, a drop-in for rauc-hawkbit-updater.
#[derive(Debug, Parser)]
#[command(
    name = "eyas",
    version,
    disable_version_flag = true,
    about = "OTA update agent: polls Eclipse hawkBit (DDI), installs with RAUC into the inactive A/B slot,\n\
             reports success only after the new slot booted and was marked good, publishes status to ThingsBoard.",
    after_help = crate::config::HELP
)]
pub struct Cli {
    /// Configuration file (rauc-hawkbit-updater format, optional [eyas] section)
    #[arg(short = 'c', long = "config-file", value_name = "FILE", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Check and install once, then exit (0 = nothing to do or success, 1 = failure)
    #[arg(short = 'r', long = "run-once")]
    pub run_once: bool,
    /// Debug logging (overrides log_level)
    #[arg(short = 'd', long = "debug")]
    pub debug: bool,
    /// Log for systemd: plain lines without timestamps (journald adds them)
    #[arg(short = 's', long = "output-systemd")]
    pub output_systemd: bool,
    /// Print the version and exit
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,
    /// What to do; without a subcommand eyas runs the agent
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration file and print the effective settings (tokens redacted)
    CheckConfig,
    /// Print the pending action, booted/primary slot and versions from the record and RAUC
    Status,
    /// Boot-state tool (delegates to eyas-bootloader-glue): eyas bootloader --help
    Bootloader {
        /// Arguments for the bootloader tool
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Diagnostic: download and verify one artifact through the production download path
    /// (benchmarks; no hawkBit, no RAUC, no configuration file)
    #[command(hide = true)]
    DownloadVerify(crate::diag::DownloadVerifyArgs),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn rauc_hawkbit_updater_flags() {
        let cli = Cli::try_parse_from(["eyas", "-c", "/x.conf", "-r", "-d", "-s"]).expect("valid");
        assert_eq!(cli.config, PathBuf::from("/x.conf"));
        assert!(cli.run_once && cli.debug && cli.output_systemd);
        assert!(cli.command.is_none());
        let cli =
            Cli::try_parse_from(["eyas", "--config-file", "/y", "--run-once"]).expect("valid");
        assert_eq!(cli.config, PathBuf::from("/y"));
        assert!(cli.run_once);
    }

    #[test]
    fn version_and_bad_flags() {
        let err = Cli::try_parse_from(["eyas", "-v"]).expect_err("version exits");
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
        let err = Cli::try_parse_from(["eyas", "--bogus"]).expect_err("bad flag");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn subcommands() {
        let cli = Cli::try_parse_from([
            "eyas",
            "-c",
            "/c",
            "bootloader",
            "set-state",
            "--slot",
            "B",
            "good",
        ])
        .expect("valid");
        match cli.command {
            Some(Command::Bootloader { args }) => {
                assert_eq!(args, ["set-state", "--slot", "B", "good"])
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            Cli::try_parse_from(["eyas", "status"])
                .expect("valid")
                .command,
            Some(Command::Status)
        ));
    }

    #[test]
    fn help_documents_every_key() {
        let help = Cli::command().render_long_help().to_string();
        for key in [
            "hawkbit_server",
            "send_download_authentication",
            "mqtt_access_token",
            "manifest_signature",
            "part.<NAME>.command",
            "record_path",
            "--run-once",
            "--output-systemd",
        ] {
            assert!(help.contains(key), "--help lacks {key}");
        }
    }
}
