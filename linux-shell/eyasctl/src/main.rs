//! `eyasctl`: the operator's side of an eyas fleet, over hawkBit's Management API.

mod api;
mod casync;
mod error;
mod lookup;
mod output;
mod publish;
mod report;
mod rollback;
mod rollout;
mod store;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::api::{Api, ApiConfig, Auth};
use crate::error::Failure;

const EXIT_CODES: &str = "\
Exit codes:
  0  done (a watched rollout finished)
  1  hawkBit refused a request or did not answer (or a publish --casync chunk store did), a
     wait reached its deadline, a publish conflicts with what hawkBit holds, or a rollout ended
     stopped/deleted/denied
  2  usage: bad arguments, unreadable bundle or --ca-file, `rauc info` failed
  3  the rollout is paused (error threshold exceeded, or paused by an operator)

With --json, stdout carries one JSON document (also for errors: {\"error\": …, \"errorCode\": …,
\"message\": …}); human-readable text goes to stderr.";

/// Operator tool for eyas fleets on Eclipse hawkBit (Management API `/rest/v1`).
#[derive(Parser, Debug)]
#[command(name = "eyasctl", version, after_long_help = EXIT_CODES, after_help = EXIT_CODES)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Server, credentials and output format (every subcommand).
#[derive(Args, Debug)]
struct Global {
    /// hawkBit base URL (without /rest/v1).
    #[arg(
        long,
        env = "HAWKBIT_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// User for HTTP Basic authentication.
    #[arg(long, env = "HAWKBIT_USER", default_value = "admin", global = true)]
    user: String,
    /// Password for HTTP Basic authentication.
    #[arg(
        long,
        env = "HAWKBIT_PASSWORD",
        default_value = "admin",
        hide_default_value = true,
        hide_env_values = true,
        global = true
    )]
    password: String,
    /// Bearer token (used instead of --user/--password).
    #[arg(long, env = "HAWKBIT_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// PEM file with the CA certificate(s) that sign hawkBit's TLS certificate (default: the
    /// built-in Mozilla roots).
    #[arg(long, value_name = "PEM", global = true)]
    ca_file: Option<PathBuf>,
    /// Limit for one API call, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30, global = true)]
    timeout: u64,
    /// Print one JSON document on stdout (human-readable text goes to stderr).
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Upload a bundle: software module (created or reused), artifact (SHA-256 checked),
    /// distribution set.
    Publish(Box<publish::PublishArgs>),
    /// Create, start, watch, pause and resume rollouts.
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// Assign an earlier distribution set to devices (manual rollback).
    Rollback(rollback::RollbackArgs),
    /// Fleet report of a rollout (success rate, download durations, errors by code).
    Report(report::ReportArgs),
}

#[derive(Subcommand, Debug)]
enum RolloutCommand {
    /// Create a staged rollout (groups as percentages, the first a canary) and wait until it is
    /// ready; --start starts it.
    Create(rollout::CreateArgs),
    /// Follow a rollout until it finishes (exit 0) or pauses (exit 3).
    Watch(rollout::WatchArgs),
    /// Start a ready rollout.
    Start(rollout::IdArgs),
    /// Pause a running rollout.
    Pause(rollout::IdArgs),
    /// Resume a paused rollout.
    Resume(rollout::IdArgs),
}

/// Rollout types (hawkBit's `type`).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionType {
    Soft,
    Forced,
    Downloadonly,
}

impl ActionType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Soft => "soft",
            Self::Forced => "forced",
            Self::Downloadonly => "downloadonly",
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.global.json;
    let g = &cli.global;
    let auth = match &g.token {
        Some(t) if !t.is_empty() => Auth::Bearer(t.clone()),
        _ => Auth::Basic {
            user: g.user.clone(),
            password: g.password.clone(),
        },
    };
    let config = ApiConfig {
        url: g.url.clone(),
        auth,
        ca_file: g.ca_file.clone(),
        timeout: Duration::from_secs(g.timeout.max(1)),
    };
    let result = Api::new(&config)
        .map_err(Failure::from)
        .and_then(|api| run(&api, &cli.command, json));
    match result {
        Ok(code) => code,
        Err(failure) => {
            if json {
                output::print_json(&failure.to_json());
            }
            eprintln!("eyasctl: {failure}");
            failure.to_exit()
        }
    }
}

fn run(api: &Api, command: &Command, json: bool) -> Result<ExitCode, Failure> {
    match command {
        Command::Publish(a) => publish::run(api, a, json),
        Command::Rollout(RolloutCommand::Create(a)) => rollout::create(api, a, json),
        Command::Rollout(RolloutCommand::Watch(a)) => rollout::watch(api, a, json),
        Command::Rollout(RolloutCommand::Start(a)) => rollout::lifecycle(api, a, "start", json),
        Command::Rollout(RolloutCommand::Pause(a)) => rollout::lifecycle(api, a, "pause", json),
        Command::Rollout(RolloutCommand::Resume(a)) => rollout::lifecycle(api, a, "resume", json),
        Command::Rollback(a) => rollback::run(api, a, json),
        Command::Report(a) => report::run(api, a, json),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_tree_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
