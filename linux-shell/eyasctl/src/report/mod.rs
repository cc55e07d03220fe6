//! `eyasctl report` (owned by the report work; this is the placeholder it replaces).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::api::Api;
use crate::error::Failure;

/// `eyasctl report` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    /// The rollout to report on.
    #[arg(long, value_name = "ID")]
    pub rollout: u64,
    /// ThingsBoard-style telemetry (JSON lines) that the devices published.
    #[arg(long, value_name = "FILE")]
    pub telemetry: Option<PathBuf>,
    /// Write a self-contained HTML report here.
    #[arg(long, value_name = "OUT")]
    pub html: Option<PathBuf>,
}

/// Runs `eyasctl report`.
pub fn run(api: &Api, args: &ReportArgs, json: bool) -> Result<ExitCode, Failure> {
    let _ = (api, args, json);
    Err(Failure::Other("eyasctl report: not yet implemented".into()))
}
