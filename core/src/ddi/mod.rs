//! hawkBit DDI wire format: zero-copy parsers for the documents a device receives and writers for
//! the bodies it sends.
//!
//! Parsing follows smoltcp's *repr* idea: `parse_*` validates the **whole** document (syntax,
//! required fields, types, enum values, capacities) and returns a small representation that
//! borrows strings from the input ([`JsonStr`], decoded on demand, so `\/` reads as `/`).
//! Repeated elements (chunks, artifacts, metadata) are not copied into big arrays: they are kept
//! as validated raw slices and read through iterators, so a parse needs a few hundred bytes of
//! stack whatever the document size. Unknown fields are ignored at every level; wrong types,
//! missing required fields and exceeded capacities are [`ParseError`]s naming the field.
//!
//! Writers ([`ActionFeedback`], [`CancelFeedback`], [`ConfirmationFeedback`], [`ConfigData`],
//! [`InstalledBase`], [`AutoConfirmActivation`]) validate hawkBit's server-side limits *before*
//! sending (detail count and length, no HTML-like `<…>`, attribute charset and lengths) and
//! write into a caller buffer, returning the number of bytes written.

pub mod json;
mod parse;
mod write;

use crate::text::Num;

pub use json::{JsonNum, JsonStr, StrTooLong};
pub use parse::{
    Artifact, ArtifactIter, ArtifactList, AutoConfirmState, CancelAction, Chunk, ChunkIter,
    ConfirmationBase, ControllerBase, DeploymentBase, MetadataEntry, MetadataIter, parse_artifacts,
    parse_cancel_action, parse_confirmation_action, parse_confirmation_base, parse_controller_base,
    parse_deployment_base, parse_installed_base, parse_md5sum, parse_sleep, peek_action_id,
};
pub use write::{
    ActionFeedback, AttributeField, AutoConfirmActivation, CancelFeedback, CancelReply, ConfigData,
    ConfigDataError, ConfigMode, Confirmation, ConfirmationFeedback, DetailError, Execution,
    FeedbackError, Finished, InstalledBase, Progress, WriteError, check_detail,
};

/// Most chunks (software modules) accepted in one deployment.
pub const MAX_CHUNKS: usize = 16;
/// Most artifacts accepted in one chunk.
pub const MAX_ARTIFACTS_PER_CHUNK: usize = 16;
/// Most target-visible metadata entries accepted in one chunk.
pub const MAX_METADATA_PER_CHUNK: usize = 32;
/// Longest URL (decoded `href`) accepted, in bytes (signed S3/CDN links are often 500–1,500
/// bytes: 2 KiB with the `large-capacities` feature).
#[cfg(not(feature = "large-capacities"))]
pub const MAX_URL_LEN: usize = 384;
/// Longest URL (decoded `href`) accepted, in bytes.
#[cfg(feature = "large-capacities")]
pub const MAX_URL_LEN: usize = 2048;
/// Longest `part`, `name`, `version`, `filename`, metadata key accepted (decoded bytes; hawkBit
/// allows 256 for a file name: that many with the `large-capacities` feature).
#[cfg(not(feature = "large-capacities"))]
pub const MAX_NAME_LEN: usize = 128;
/// Longest `part`, `name`, `version`, `filename`, metadata key accepted (decoded bytes).
#[cfg(feature = "large-capacities")]
pub const MAX_NAME_LEN: usize = 256;
/// Longest metadata value accepted (decoded bytes).
pub const MAX_METADATA_VALUE_LEN: usize = 512;
/// Most `details` lines in one feedback (hawkBit `maxMessagesPerActionStatus`).
pub const MAX_DETAILS: usize = 50;
/// Longest detail line in bytes (hawkBit splits longer ones into several stored messages).
pub const MAX_DETAIL_LEN: usize = 512;
/// Most attributes in one configData PUT (hawkBit `maxAttributeEntriesPerTarget`).
pub const MAX_ATTRIBUTES: usize = 100;
/// Longest attribute key or value in characters (hawkBit limit).
pub const MAX_ATTRIBUTE_LEN: usize = 128;

/// A hawkBit action id (a string of digits in JSON, a number in URLs).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ActionId(pub u64);

impl core::fmt::Display for ActionId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// `deployment.download` / `deployment.update`: how the server wants a step handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum HandlingType {
    /// Do not perform this step (for `update`: download only, or window closed).
    Skip,
    /// Soft: the device may postpone.
    Attempt,
    /// Do it now.
    Forced,
}

/// `deployment.maintenanceWindow` (present only if the action has a schedule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MaintenanceWindow {
    /// The window is open now.
    Available,
    /// The window is closed now.
    Unavailable,
}

/// Errors from every DDI parser. `&'static str` fields name the offending field as a path,
/// e.g. `"deployment.chunks[].artifacts[].size"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ParseError {
    /// The bytes are not well-formed JSON (or not UTF-8) at `offset`.
    Syntax {
        /// Byte offset of the problem.
        offset: usize,
    },
    /// Nesting deeper than [`json::MAX_DEPTH`].
    TooDeep {
        /// Byte offset of the container that was too deep.
        offset: usize,
    },
    /// A required field is absent.
    MissingField(&'static str),
    /// A field has the wrong JSON type.
    WrongType(&'static str),
    /// A field has the right type but a value outside what the protocol allows
    /// (unknown enum string, non-numeric action id, malformed duration or hash…).
    InvalidValue(&'static str),
    /// A capacity constant was exceeded.
    Capacity {
        /// Which field overflowed.
        field: &'static str,
        /// The limit (the named constant's value).
        max: usize,
    },
}

impl ParseError {
    /// The `Display` text as four pieces (some empty), without `core::fmt`; `num` holds the
    /// digits of a number in it.
    pub(crate) fn describe<'n>(&self, num: &'n mut Num) -> [&'n str; 4] {
        match *self {
            Self::Syntax { offset } => {
                *num = Num::dec(offset as u64);
                ["malformed JSON at byte ", num.as_str(), "", ""]
            }
            Self::TooDeep { offset } => {
                *num = Num::dec(offset as u64);
                ["JSON nested too deep at byte ", num.as_str(), "", ""]
            }
            Self::MissingField(n) => ["missing required field `", n, "`", ""],
            Self::WrongType(n) => ["field `", n, "` has the wrong type", ""],
            Self::InvalidValue(n) => ["field `", n, "` has an invalid value", ""],
            Self::Capacity { field, max } => {
                *num = Num::dec(max as u64);
                ["field `", field, "` exceeds capacity ", num.as_str()]
            }
        }
    }
}

impl core::fmt::Display for ParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut num = Num::dec(0);
        for piece in self.describe(&mut num) {
            f.write_str(piece)?;
        }
        Ok(())
    }
}

impl core::error::Error for ParseError {}
