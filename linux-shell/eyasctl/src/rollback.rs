//! `eyasctl rollback`.

use std::process::ExitCode;

use crate::api::Api;
use crate::error::Failure;

/// `eyasctl rollback` arguments: which devices, and the distribution set to go back to.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["rollout", "filter", "target"])))]
pub struct RollbackArgs {
    /// The devices of this rollout (with --failed: only those whose action ended in error).
    #[arg(long, value_name = "ID", requires = "failed")]
    pub rollout: Option<u64>,
    /// With --rollout: only the devices whose deployment failed.
    #[arg(long, requires = "rollout")]
    pub failed: bool,
    /// The devices matching this FIQL filter.
    #[arg(long, value_name = "FIQL")]
    pub filter: Option<String>,
    /// These devices (controller ids; repeat or separate with commas).
    #[arg(long, value_name = "ID", value_delimiter = ',', num_args = 1..)]
    pub target: Vec<String>,
    /// The distribution set to assign: its id, or NAME:VERSION.
    #[arg(long, value_name = "ID|NAME:VERSION")]
    pub to: String,
    /// Action type of the rollback deployments.
    #[arg(long = "type", value_enum, default_value = "forced")]
    pub action_type: crate::ActionType,
    /// List the devices and what they run; assign nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(api: &Api, args: &RollbackArgs, json: bool) -> Result<ExitCode, Failure> {
    let _ = (api, args, json);
    Err(Failure::Other("not yet implemented".into()))
}
