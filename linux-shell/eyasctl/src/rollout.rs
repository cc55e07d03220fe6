//! `eyasctl rollout create|watch|start|pause|resume`.

use std::process::ExitCode;

use crate::ActionType;
use crate::api::Api;
use crate::error::Failure;

/// `eyasctl rollout create` arguments.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Distribution set: its id, or NAME:VERSION.
    #[arg(long, value_name = "ID|NAME:VERSION")]
    pub ds: String,
    /// FIQL filter selecting the targets (e.g. `controllerid==dev-*`).
    #[arg(long, value_name = "FIQL")]
    pub filter: String,
    /// Group sizes as cumulative percentages of the matching targets, first group the canary.
    #[arg(long, value_name = "P1,P2,…", value_delimiter = ',', default_value = "1,10,50,100")]
    pub groups: Vec<f64>,
    /// Success threshold in percent: the next group starts when this share of a group finished.
    #[arg(long, value_name = "PERCENT", default_value_t = 95)]
    pub success: u8,
    /// Error threshold in percent: more errors than this in a group pause the rollout.
    #[arg(long, value_name = "PERCENT", default_value_t = 5)]
    pub error: u8,
    /// Action type of the deployments.
    #[arg(long = "type", value_enum, default_value = "forced")]
    pub action_type: ActionType,
    /// Devices must confirm the update before it runs.
    #[arg(long)]
    pub confirmation_required: bool,
    /// Start the rollout once it is ready.
    #[arg(long)]
    pub start: bool,
    /// Rollout name (default: DSNAME-DSVERSION-<time>).
    #[arg(long)]
    pub name: Option<String>,
    /// Deadline for `ready`, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub wait: u64,
}

/// `eyasctl rollout watch` arguments.
#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    /// Rollout id.
    pub id: u64,
    /// Give up after this many seconds (exit 1).
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub timeout: u64,
    /// Also print the per-group table on every change (plain output).
    #[arg(long)]
    pub table: bool,
}

/// A rollout id.
#[derive(clap::Args, Debug)]
pub struct IdArgs {
    /// Rollout id.
    pub id: u64,
}

pub fn create(api: &Api, args: &CreateArgs, json: bool) -> Result<ExitCode, Failure> {
    let _ = (api, args, json);
    Err(Failure::Other("not yet implemented".into()))
}

pub fn watch(api: &Api, args: &WatchArgs, json: bool) -> Result<ExitCode, Failure> {
    let _ = (api, args, json);
    Err(Failure::Other("not yet implemented".into()))
}

pub fn lifecycle(api: &Api, args: &IdArgs, op: &str, json: bool) -> Result<ExitCode, Failure> {
    let _ = (api, args, op, json);
    Err(Failure::Other("not yet implemented".into()))
}
