//! `eyasctl publish`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;

use crate::api::Api;
use crate::error::Failure;

/// Software module type (hawkBit's default tenant types; `config` is created on demand).
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleType {
    Os,
    Application,
    Config,
}

/// `eyasctl publish` arguments.
#[derive(clap::Args, Debug)]
pub struct PublishArgs {
    /// The bundle (a RAUC .raucb or any artifact file).
    pub bundle: PathBuf,
    /// Software module name (default: the bundle's `Compatible` from `rauc info`).
    #[arg(long)]
    pub name: Option<String>,
    /// Software module version (default: the bundle's `Version` from `rauc info`).
    #[arg(long)]
    pub version: Option<String>,
    /// Software module type.
    #[arg(long = "type", value_enum, default_value = "os")]
    pub module_type: ModuleType,
    /// Distribution set name (default: the module name).
    #[arg(long)]
    pub ds_name: Option<String>,
    /// Distribution set version (default: the module version).
    #[arg(long)]
    pub ds_version: Option<String>,
}

pub fn run(api: &Api, args: &PublishArgs, json: bool) -> Result<ExitCode, Failure> {
    let _ = (api, args, json);
    Err(Failure::Other("eyasctl publish: not yet implemented".into()))
}
