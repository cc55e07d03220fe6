//! The tool's failures and exit codes.

use std::fmt;
use std::process::ExitCode;

use crate::api::ApiError;
use crate::store::StoreError;

/// Exit code: the command did what was asked (a watched rollout finished).
#[allow(dead_code)] // documented; ExitCode::SUCCESS is used
pub const EXIT_OK: u8 = 0;
/// Exit code: hawkBit refused a request, did not answer, a wait reached its deadline, or the
/// rollout ended badly (stopped, deleted, approval denied).
pub const EXIT_ERROR: u8 = 1;
/// Exit code: the command line or a local file is wrong (clap's own usage errors use 2 as well).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the rollout is paused (its error threshold was exceeded, or an operator paused it).
pub const EXIT_PAUSED: u8 = 3;

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// A Management API call failed (exit 1).
    Api(ApiError),
    /// A `publish --casync` chunk store refused a request or did not answer (exit 1).
    Store(StoreError),
    /// A local problem: bad argument, unreadable bundle, `rauc info` failed (exit 2).
    Usage(String),
    /// Something else that ends the command with exit 1 (a conflict, a deadline).
    Other(String),
}

impl Failure {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Api(ApiError::Setup(_)) | Self::Usage(_) => EXIT_USAGE,
            Self::Api(_) | Self::Store(_) | Self::Other(_) => EXIT_ERROR,
        }
    }

    /// A JSON rendering for `--json` output (on stdout, so scripts read one document).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Api(e) => e.to_json(),
            Self::Store(e) => e.to_json(),
            Self::Usage(m) => serde_json::json!({ "error": "usage", "message": m }),
            Self::Other(m) => serde_json::json!({ "error": "failed", "message": m }),
        }
    }

    /// Ends the process's command with this failure's code.
    pub fn to_exit(&self) -> ExitCode {
        ExitCode::from(self.exit_code())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Api(e) => write!(f, "{e}"),
            Self::Store(e) => write!(f, "{e}"),
            Self::Usage(m) | Self::Other(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Failure {}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}
