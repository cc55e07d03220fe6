//! Writers for the DDI bodies a device sends. Every writer validates hawkBit's server-side
//! limits first and writes nothing useful on error.

use super::{MAX_ATTRIBUTE_LEN, MAX_ATTRIBUTES, MAX_DETAIL_LEN, MAX_DETAILS};

/// The caller's buffer is too small for the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum WriteError {
    /// The body did not fit into the buffer of this many bytes.
    BufferTooSmall {
        /// Capacity of the buffer that was given.
        capacity: usize,
    },
}

impl core::fmt::Display for WriteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BufferTooSmall { capacity } => {
                write!(f, "body does not fit into a {capacity}-byte buffer")
            }
        }
    }
}

pub(crate) struct W<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> W<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    fn err(&self) -> WriteError {
        WriteError::BufferTooSmall {
            capacity: self.buf.len(),
        }
    }

    pub(crate) fn raw(&mut self, s: &str) -> Result<(), WriteError> {
        let end = self.len + s.len();
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(WriteError::BufferTooSmall { capacity: 0 })?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }

    pub(crate) fn string(&mut self, s: &str) -> Result<(), WriteError> {
        self.raw("\"")?;
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let esc: Option<&str> = match b {
                b'"' => Some("\\\""),
                b'\\' => Some("\\\\"),
                b'\n' => Some("\\n"),
                b'\r' => Some("\\r"),
                b'\t' => Some("\\t"),
                0..=0x1f => None,
                _ => continue,
            };
            self.raw(s.get(start..i).unwrap_or(""))?;
            match esc {
                Some(e) => self.raw(e)?,
                None => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    let mut u = *b"\\u0000";
                    u[4] = HEX[(b >> 4) as usize];
                    u[5] = HEX[(b & 0xf) as usize];
                    self.raw(core::str::from_utf8(&u).unwrap_or("?"))?;
                }
            }
            start = i + 1;
        }
        self.raw(s.get(start..).unwrap_or(""))?;
        self.raw("\"")
    }

    pub(crate) fn u64(&mut self, n: u64) -> Result<(), WriteError> {
        self.raw(crate::text::Num::dec(n).as_str())
    }

    pub(crate) fn i64(&mut self, n: i64) -> Result<(), WriteError> {
        if n < 0 {
            self.raw("-")?;
        }
        self.u64(n.unsigned_abs())
    }

    pub(crate) fn done(self) -> usize {
        self.len
    }

    fn fix(&self, e: WriteError) -> WriteError {
        match e {
            WriteError::BufferTooSmall { .. } => self.err(),
        }
    }
}

/// `status.execution` of a feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Execution {
    /// `closed`: final.
    Closed,
    /// `proceeding`: intermediate.
    Proceeding,
    /// `canceled`: informational only on deploymentBase (never sent on the cancel channel).
    Canceled,
    /// `scheduled`.
    Scheduled,
    /// `rejected`.
    Rejected,
    /// `resumed`.
    Resumed,
    /// `downloaded`: closes a download-only action.
    Downloaded,
    /// `download`: informational.
    Download,
}

impl Execution {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Proceeding => "proceeding",
            Self::Canceled => "canceled",
            Self::Scheduled => "scheduled",
            Self::Rejected => "rejected",
            Self::Resumed => "resumed",
            Self::Downloaded => "downloaded",
            Self::Download => "download",
        }
    }
}

/// `status.result.finished`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Finished {
    /// `success`.
    Success,
    /// `failure`.
    Failure,
    /// `none` (intermediate).
    None,
}

impl Finished {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::None => "none",
        }
    }
}

/// `status.result.progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Progress {
    /// `cnt`.
    pub cnt: u32,
    /// `of`.
    pub of: Option<u32>,
}

/// Why a detail line is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DetailError {
    /// Longer than [`MAX_DETAIL_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// Contains an HTML-like `<…>` (hawkBit rejects those with 400).
    Markup,
}

/// Check one detail line against hawkBit's rules (≤ [`MAX_DETAIL_LEN`] bytes, no `<…>`).
#[allow(clippy::manual_contains)] // on purpose: a plain loop is smaller than memchr
pub fn check_detail(s: &str) -> Result<(), DetailError> {
    if s.len() > MAX_DETAIL_LEN {
        return Err(DetailError::TooLong { len: s.len() });
    }
    // byte searches (`<`/`>` are ASCII): no `str` pattern searcher in an MCU image
    let b = s.as_bytes();
    if let Some(lt) = b.iter().position(|&c| c == b'<')
        && b.get(lt..)
            .is_some_and(|rest| rest.iter().any(|&c| c == b'>'))
    {
        return Err(DetailError::Markup);
    }
    Ok(())
}

/// Errors writing a feedback body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum FeedbackError {
    /// More than [`MAX_DETAILS`] detail lines (one fewer with a `code`, which hawkBit stores as
    /// a message too).
    TooManyDetails {
        /// How many were given.
        count: usize,
    },
    /// Detail line `index` was refused.
    Detail {
        /// Index into `details`.
        index: usize,
        /// Why.
        reason: DetailError,
    },
    /// The buffer was too small.
    Write(WriteError),
}

impl From<WriteError> for FeedbackError {
    fn from(e: WriteError) -> Self {
        Self::Write(e)
    }
}

impl core::fmt::Display for FeedbackError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooManyDetails { count } => {
                write!(f, "{count} detail lines, at most {MAX_DETAILS} allowed")
            }
            Self::Detail { index, reason } => write!(f, "detail line {index} refused: {reason:?}"),
            Self::Write(e) => write!(f, "{e}"),
        }
    }
}

/// hawkBit stores a status `code` as one more message (`Device reported status code: N`) and
/// counts it against `maxMessagesPerActionStatus`: with a code one detail line fewer fits.
fn check_details(details: &[&str], code: Option<i32>) -> Result<(), FeedbackError> {
    let room = MAX_DETAILS - usize::from(code.is_some());
    if details.len() > room {
        return Err(FeedbackError::TooManyDetails {
            count: details.len(),
        });
    }
    for (index, d) in details.iter().enumerate() {
        check_detail(d).map_err(|reason| FeedbackError::Detail { index, reason })?;
    }
    Ok(())
}

fn write_details(w: &mut W<'_>, details: &[&str]) -> Result<(), WriteError> {
    if details.is_empty() {
        return Ok(());
    }
    w.raw(",\"details\":[")?;
    for (i, d) in details.iter().enumerate() {
        if i > 0 {
            w.raw(",")?;
        }
        w.string(d)?;
    }
    w.raw("]")
}

/// Body of `POST deploymentBase/{id}/feedback` (`DdiActionFeedback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionFeedback<'x> {
    /// `timestamp` (ms since the Unix epoch). Leave `None` unless the clock is known good.
    pub timestamp: Option<u64>,
    /// `status.execution`.
    pub execution: Execution,
    /// `status.result.finished` (always written).
    pub finished: Finished,
    /// `status.result.progress`.
    pub progress: Option<Progress>,
    /// `status.code`.
    pub code: Option<i32>,
    /// `status.details` (≤ [`MAX_DETAILS`] lines of ≤ [`MAX_DETAIL_LEN`] bytes, no `<…>`).
    pub details: &'x [&'x str],
}

impl ActionFeedback<'_> {
    /// Write the JSON body into `buf`, returning its length.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, FeedbackError> {
        check_details(self.details, self.code)?;
        let mut w = W::new(buf);
        let r = self.write_inner(&mut w);
        r.map_err(|e| FeedbackError::Write(w.fix(e)))?;
        Ok(w.done())
    }

    fn write_inner(&self, w: &mut W<'_>) -> Result<(), WriteError> {
        w.raw("{")?;
        if let Some(ts) = self.timestamp {
            w.raw("\"timestamp\":")?;
            w.u64(ts)?;
            w.raw(",")?;
        }
        w.raw("\"status\":{\"execution\":\"")?;
        w.raw(self.execution.as_str())?;
        w.raw("\",\"result\":{\"finished\":\"")?;
        w.raw(self.finished.as_str())?;
        w.raw("\"")?;
        if let Some(p) = self.progress {
            w.raw(",\"progress\":{\"cnt\":")?;
            w.u64(p.cnt.into())?;
            if let Some(of) = p.of {
                w.raw(",\"of\":")?;
                w.u64(of.into())?;
            }
            w.raw("}")?;
        }
        w.raw("}")?;
        if let Some(c) = self.code {
            w.raw(",\"code\":")?;
            w.i64(c.into())?;
        }
        write_details(w, self.details)?;
        w.raw("}}")
    }
}

/// The answer to a cancel request. There is deliberately no way to send `canceled` here:
/// hawkBit treats it as "not supported" and does not accept the cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CancelReply {
    /// `closed` + `success`: cancellation accepted, the action is closed as CANCELED.
    Accepted,
    /// `rejected` + `none`: refused (e.g. already installing); the action resumes RUNNING.
    Rejected,
    /// `closed` + `failure`: the cancellation failed; the action resumes RUNNING.
    Failed,
}

/// Body of `POST cancelAction/{id}/feedback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelFeedback<'x> {
    /// `timestamp` (ms), optional.
    pub timestamp: Option<u64>,
    /// The answer.
    pub reply: CancelReply,
    /// `status.code`.
    pub code: Option<i32>,
    /// `status.details`.
    pub details: &'x [&'x str],
}

impl CancelFeedback<'_> {
    /// Write the JSON body into `buf`, returning its length.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, FeedbackError> {
        let (execution, finished) = match self.reply {
            CancelReply::Accepted => (Execution::Closed, Finished::Success),
            CancelReply::Rejected => (Execution::Rejected, Finished::None),
            CancelReply::Failed => (Execution::Closed, Finished::Failure),
        };
        ActionFeedback {
            timestamp: self.timestamp,
            execution,
            finished,
            progress: None,
            code: self.code,
            details: self.details,
        }
        .write(buf)
    }
}

/// `confirmation` of a confirmation feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Confirmation {
    /// `confirmed`: the action proceeds (RUNNING).
    Confirmed,
    /// `denied`: the action stays waiting and is offered again.
    Denied,
}

/// Body of `POST confirmationBase/{id}/feedback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmationFeedback<'x> {
    /// `confirmation`.
    pub confirmation: Confirmation,
    /// `code`.
    pub code: Option<i32>,
    /// `details`.
    pub details: &'x [&'x str],
}

impl ConfirmationFeedback<'_> {
    /// Write the JSON body into `buf`, returning its length.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, FeedbackError> {
        check_details(self.details, self.code)?;
        let mut w = W::new(buf);
        let r = (|| {
            w.raw("{\"confirmation\":\"")?;
            w.raw(match self.confirmation {
                Confirmation::Confirmed => "confirmed",
                Confirmation::Denied => "denied",
            })?;
            w.raw("\"")?;
            if let Some(c) = self.code {
                w.raw(",\"code\":")?;
                w.i64(c.into())?;
            }
            write_details(&mut w, self.details)?;
            w.raw("}")
        })();
        if let Err(e) = r {
            return Err(FeedbackError::Write(w.fix(e)));
        }
        Ok(w.done())
    }
}

/// Body of `POST confirmationBase/activateAutoConfirm` (both fields optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AutoConfirmActivation<'x> {
    /// `initiator`.
    pub initiator: Option<&'x str>,
    /// `remark`.
    pub remark: Option<&'x str>,
}

impl AutoConfirmActivation<'_> {
    /// Write the JSON body into `buf`, returning its length.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, WriteError> {
        let mut w = W::new(buf);
        let r = (|| {
            w.raw("{")?;
            let mut first = true;
            for (k, v) in [("initiator", self.initiator), ("remark", self.remark)] {
                if let Some(v) = v {
                    if !first {
                        w.raw(",")?;
                    }
                    first = false;
                    w.string(k)?;
                    w.raw(":")?;
                    w.string(v)?;
                }
            }
            w.raw("}")
        })();
        if let Err(e) = r {
            return Err(w.fix(e));
        }
        Ok(w.done())
    }
}

/// `mode` of a configData PUT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigMode {
    /// `merge` (server default): add/overwrite the given keys.
    Merge,
    /// `replace`: the attribute map becomes exactly `data`.
    Replace,
    /// `remove`: delete the given keys (values ignored by the server).
    Remove,
}

/// Which half of an attribute was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AttributeField {
    /// The key.
    Key,
    /// The value.
    Value,
}

/// Errors validating or writing a configData body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConfigDataError {
    /// `data` must not be empty.
    Empty,
    /// More than [`MAX_ATTRIBUTES`] attributes.
    TooMany {
        /// How many were given.
        count: usize,
    },
    /// Attribute `index` has a key or value longer than [`MAX_ATTRIBUTE_LEN`] characters.
    TooLong {
        /// Index into `data`.
        index: usize,
        /// Key or value.
        field: AttributeField,
    },
    /// Attribute `index` has a key (or value) with a character outside hawkBit's charset.
    Charset {
        /// Index into `data`.
        index: usize,
        /// Key or value.
        field: AttributeField,
    },
    /// Attribute `index` has an empty key.
    EmptyKey {
        /// Index into `data`.
        index: usize,
    },
    /// The buffer was too small.
    Write(WriteError),
}

impl core::fmt::Display for ConfigDataError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Empty => f.write_str("configData needs at least one attribute"),
            Self::TooMany { count } => {
                write!(f, "{count} attributes, at most {MAX_ATTRIBUTES} allowed")
            }
            Self::TooLong { index, field } => write!(
                f,
                "attribute {index}: {field:?} longer than {MAX_ATTRIBUTE_LEN} characters"
            ),
            Self::Charset { index, field } => {
                write!(
                    f,
                    "attribute {index}: {field:?} has a character hawkBit refuses"
                )
            }
            Self::EmptyKey { index } => write!(f, "attribute {index}: empty key"),
            Self::Write(e) => write!(f, "{e}"),
        }
    }
}

fn attr_char_ok(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b" _-!@#$%^&*()+=[]{}|;:'\",.<>/\\?".contains(&c)
}

/// Body of `PUT configData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigData<'x> {
    /// `mode`.
    pub mode: ConfigMode,
    /// `data`: key/value pairs, written in this order.
    pub data: &'x [(&'x str, &'x str)],
}

impl ConfigData<'_> {
    /// Check hawkBit's attribute rules without writing anything.
    pub fn validate(&self) -> Result<(), ConfigDataError> {
        if self.data.is_empty() {
            return Err(ConfigDataError::Empty);
        }
        if self.data.len() > MAX_ATTRIBUTES {
            return Err(ConfigDataError::TooMany {
                count: self.data.len(),
            });
        }
        for (index, (k, v)) in self.data.iter().enumerate() {
            if k.is_empty() {
                return Err(ConfigDataError::EmptyKey { index });
            }
            for (s, field) in [(k, AttributeField::Key), (v, AttributeField::Value)] {
                if !s.bytes().all(attr_char_ok) {
                    return Err(ConfigDataError::Charset { index, field });
                }
                if s.len() > MAX_ATTRIBUTE_LEN {
                    return Err(ConfigDataError::TooLong { index, field });
                }
            }
        }
        Ok(())
    }

    /// Validate and write the JSON body into `buf`, returning its length.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, ConfigDataError> {
        self.validate()?;
        let mut w = W::new(buf);
        let r = (|| {
            w.raw("{\"mode\":\"")?;
            w.raw(match self.mode {
                ConfigMode::Merge => "merge",
                ConfigMode::Replace => "replace",
                ConfigMode::Remove => "remove",
            })?;
            w.raw("\",\"data\":{")?;
            for (i, (k, v)) in self.data.iter().enumerate() {
                if i > 0 {
                    w.raw(",")?;
                }
                w.string(k)?;
                w.raw(":")?;
                w.string(v)?;
            }
            w.raw("}}")
        })();
        if let Err(e) = r {
            return Err(ConfigDataError::Write(w.fix(e)));
        }
        Ok(w.done())
    }
}

/// Body of `PUT installedBase` (experimental, hawkBit ≥ 0.7.0): the distribution set the
/// device actually runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstalledBase<'x> {
    /// Distribution set name.
    pub name: &'x str,
    /// Distribution set version.
    pub version: &'x str,
}

impl InstalledBase<'_> {
    /// Write the JSON body into `buf`, returning its length.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, WriteError> {
        let mut w = W::new(buf);
        let r = (|| {
            w.raw("{\"name\":")?;
            w.string(self.name)?;
            w.raw(",\"version\":")?;
            w.string(self.version)?;
            w.raw("}")
        })();
        if let Err(e) = r {
            return Err(w.fix(e));
        }
        Ok(w.done())
    }
}
