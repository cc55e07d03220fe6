//! Public input/output types of the [`Client`](super::Client).

use crate::ddi::{ActionId, ConfigMode, FeedbackError, ParseError};
use crate::record::{BadBootname, RecordError};
use crate::time::Duration;

/// How to answer `confirmationBase` (user consent) requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfirmationPolicy {
    /// Confirm every action automatically.
    Auto,
    /// Emit [`Action::AskConfirmation`] and wait for [`Event::ConfirmationAnswer`].
    AskShell,
}

/// Everything the client needs to know; copied into the client by [`Client::new`](super::Client::new).
#[derive(Debug, Clone, Copy)]
pub struct ClientConfig<'a> {
    /// Server base URL without trailing slash, e.g. `https://hb.example`.
    pub server_url: &'a str,
    /// Tenant, e.g. `DEFAULT`.
    pub tenant: &'a str,
    /// Controller id (the device identity).
    pub controller_id: &'a str,
    /// Value of the `Authorization` header, e.g. `TargetToken abc…` (`None` for mTLS via proxy).
    pub authorization: Option<&'a str>,
    /// Send the credentials (`authorization` and the client certificate) with artifact
    /// downloads from other origins than the server's too (a CDN, S3): rauc-hawkbit-updater's
    /// `send_download_authentication`. Downloads from the server's own origin
    /// (`scheme://host:port` of `server_url`) always get them. See [`ArtifactRef::credentials`].
    pub send_auth_on_download: bool,
    /// Poll at this fixed interval instead of the server's `sleep`.
    pub poll_override: Option<Duration>,
    /// Lower bound applied to the server's `sleep`.
    pub poll_min: Duration,
    /// Upper bound applied to the server's `sleep`.
    pub poll_max: Duration,
    /// Poll at most this far apart while downloading or installing (to notice cancels).
    pub active_poll_interval: Duration,
    /// ± jitter applied to every poll interval, in percent (capped at 50).
    pub jitter_percent: u8,
    /// Seed of the jitter RNG (use something device-unique).
    pub seed: u64,
    /// Confirmation policy.
    pub confirmation: ConfirmationPolicy,
    /// Most intermediate status entries this client lets one action create server-side
    /// (RETRIEVED, DOWNLOAD and intermediate feedback). Capped at [`MAX_PROGRESS_BUDGET`]
    /// so one action never reaches hawkBit's 1000-entry quota.
    pub progress_budget: u16,
    /// Send a progress feedback every this many percent of a download or install (≥ 1).
    pub progress_step_percent: u8,
    /// First retry delay after a 5xx, 429 (DoS filter) or network error.
    pub backoff_initial: Duration,
    /// Retry delays double up to this cap.
    pub backoff_max: Duration,
    /// Times one artifact download may be resumed after a cut before the action fails.
    pub download_retries: u8,
    /// Install attempts (power cuts during an install count) before the action fails.
    pub boot_attempts: u8,
    /// `mode` of configData PUTs.
    pub config_mode: ConfigMode,
    /// On a start with no update to judge, health-check the booted slot and mark it good (as
    /// `rauc-mark-good.service` does), so that its boot attempts never run out. A slot that
    /// failed its update is never marked good again.
    pub mark_good_on_boot: bool,
}

/// Hard cap for [`ClientConfig::progress_budget`] (hawkBit allows 1000 intermediate entries).
pub const MAX_PROGRESS_BUDGET: u16 = 900;

impl<'a> ClientConfig<'a> {
    /// Defaults: poll bounds 30 s–24 h, 60 s while active, 10 % jitter, auto-confirm,
    /// budget 200 entries, progress every 25 %, backoff 5 s → 10 min, 5 resumes, 3 installs.
    pub fn new(server_url: &'a str, tenant: &'a str, controller_id: &'a str) -> Self {
        Self {
            server_url,
            tenant,
            controller_id,
            authorization: None,
            send_auth_on_download: true,
            poll_override: None,
            poll_min: Duration::from_secs(30),
            poll_max: Duration::from_secs(24 * 3600),
            active_poll_interval: Duration::from_secs(60),
            jitter_percent: 10,
            seed: 0x5eed_e7a5,
            confirmation: ConfirmationPolicy::Auto,
            progress_budget: 200,
            progress_step_percent: 25,
            backoff_initial: Duration::from_secs(5),
            backoff_max: Duration::from_secs(600),
            download_retries: 5,
            boot_attempts: 3,
            config_mode: ConfigMode::Merge,
            mark_good_on_boot: true,
        }
    }
}

/// Errors from [`Client::new`](super::Client::new).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ClientConfigError {
    /// `{server_url}/{tenant}/controller/v1/{controller_id}` exceeds [`MAX_CONTROLLER_URL_LEN`](super::MAX_CONTROLLER_URL_LEN).
    UrlTooLong,
    /// The authorization value exceeds [`MAX_AUTH_LEN`](super::MAX_AUTH_LEN).
    AuthTooLong,
    /// Tenant or controller id empty or containing `/`, `?`, `#` or whitespace.
    BadIdentity,
}

impl core::fmt::Display for ClientConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::UrlTooLong => write!(
                f,
                "server URL, tenant and controller id make a controller URL longer than {} bytes",
                super::MAX_CONTROLLER_URL_LEN
            ),
            Self::AuthTooLong => write!(
                f,
                "the authorization value is longer than {} bytes",
                super::MAX_AUTH_LEN
            ),
            Self::BadIdentity => f.write_str(
                "tenant and controller id must not be empty nor contain `/`, `?`, `#` or white space",
            ),
        }
    }
}

/// HTTP method of a [`Request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
}

/// What a [`Request`] is for (for logging; responses need no tag, one request is in flight at most).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RequestKind {
    /// `GET {controller}` (base poll).
    Poll,
    /// `GET deploymentBase/{id}`.
    DeploymentBase,
    /// `GET cancelAction/{id}`.
    CancelAction,
    /// `GET confirmationBase/{id}`.
    ConfirmationBase,
    /// `POST deploymentBase/{id}/feedback`.
    Feedback,
    /// `POST cancelAction/{id}/feedback`.
    CancelFeedback,
    /// `POST confirmationBase/{id}/feedback`.
    ConfirmationFeedback,
    /// `PUT configData`.
    ConfigData,
    /// `PUT installedBase`.
    InstalledBase,
}

/// An HTTP request to perform. Send `Accept: application/json`; `body` (possibly empty) lives in
/// the buffer given to [`Client::poll_request`](super::Client::poll_request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// What it is for.
    pub kind: RequestKind,
    /// Method.
    pub method: Method,
    /// Absolute URL.
    pub url: &'a str,
    /// `Authorization` header value.
    pub authorization: Option<&'a str>,
    /// `If-None-Match` header value (an ETag from an earlier response).
    pub if_none_match: Option<&'a str>,
    /// `Content-Type` of `body` (`None` when there is no body).
    pub content_type: Option<&'static str>,
    /// Body bytes.
    pub body: &'a [u8],
}

/// An HTTP response (or its absence) for the request in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// Status code.
    pub status: u16,
    /// `ETag` header, if any.
    pub etag: Option<&'a str>,
    /// The complete body.
    pub body: &'a [u8],
}

/// Errors from [`Client::poll_request`](super::Client::poll_request). The request stays queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RequestError {
    /// The body does not fit; give at least [`REQUEST_BUF_LEN`](super::REQUEST_BUF_LEN) bytes.
    BufferTooSmall {
        /// Capacity that was given.
        capacity: usize,
    },
    /// A URL did not fit [`MAX_REQUEST_URL_LEN`](super::MAX_REQUEST_URL_LEN) (cannot happen with
    /// a config accepted by `new`).
    UrlTooLong,
    /// A feedback body would break hawkBit's limits (a detail line too long or with `<…>`). Not
    /// expected: the client cleans and bounds its own texts.
    InvalidFeedback(FeedbackError),
}

impl core::fmt::Display for RequestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BufferTooSmall { capacity } => write!(
                f,
                "the request body does not fit into a {capacity}-byte buffer (give {} bytes)",
                super::REQUEST_BUF_LEN
            ),
            Self::UrlTooLong => write!(
                f,
                "a request URL is longer than {} bytes",
                super::MAX_REQUEST_URL_LEN
            ),
            Self::InvalidFeedback(e) => write!(f, "feedback body refused: {e}"),
        }
    }
}

/// Errors from `handle_response` / `handle_transport_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ResponseError {
    /// No request was in flight (the input was ignored).
    NoRequestInFlight,
}

impl core::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoRequestInFlight => f.write_str("no request is in flight (input ignored)"),
        }
    }
}

/// Errors from [`Client::handle_event`](super::Client::handle_event): the event does not fit the
/// current state and was ignored (except [`EventError::BadBootname`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum EventError {
    /// No download is outstanding.
    NoDownload,
    /// No verification is outstanding.
    NoVerify,
    /// No install or config hook is outstanding.
    NoInstall,
    /// No confirmation question is outstanding for that action.
    NoConfirmation,
    /// No health check was asked for ([`Action::CheckHealth`]).
    NoHealthCheck,
    /// No slot mark was asked for ([`Action::MarkSlot`]).
    NoMark,
    /// The bootname in [`Event::Installed`] is not one the client can keep: the install is
    /// reported as failed (the slot could not be judged after the reboot).
    BadBootname(BadBootname),
}

impl core::fmt::Display for EventError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::NoDownload => f.write_str("no download is outstanding"),
            Self::NoVerify => f.write_str("no verification is outstanding"),
            Self::NoInstall => f.write_str("no install or configuration hook is outstanding"),
            Self::NoConfirmation => {
                f.write_str("no confirmation question is outstanding for that action")
            }
            Self::NoHealthCheck => f.write_str("no health check was asked for"),
            Self::NoMark => f.write_str("no slot mark was asked for"),
            Self::BadBootname(e) => write!(f, "installed slot: {e}"),
        }
    }
}

/// What the shell must do with a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum InstallKind {
    /// `part: "os"`: RAUC install into the inactive slot; a reboot follows.
    RaucReboot,
    /// `part: "application"` / `"bApp"`: RAUC install, no reboot.
    RaucNoReboot,
    /// `part: "config"`: run the configuration hook with the artifacts.
    ConfigHook,
}

/// An artifact to download (and later verify).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArtifactRef<'a> {
    /// Action it belongs to.
    pub action: ActionId,
    /// Index of the chunk in the deployment.
    pub chunk: u8,
    /// Index of the artifact in the deployment (across chunks, document order).
    pub artifact: u8,
    /// Download URL (opaque, from the server).
    pub url: &'a str,
    /// `Authorization` header value for the download: the configured one when
    /// [`ArtifactRef::credentials`] is `true`, else `None`.
    pub authorization: Option<&'a str>,
    /// Whether the DDI credentials go to `url`'s host: send `authorization` and present the
    /// client certificate (if the shell has one). `true` for the hawkBit server's own origin
    /// (scheme, host and port of [`ClientConfig::server_url`], case-insensitive, default ports
    /// filled in; the host after any userinfo), for any other origin only with
    /// [`ClientConfig::send_auth_on_download`]. A URL whose origin is not certain (backslash,
    /// `%` or white space in the host part, several `@`, a bad port) counts as another origin.
    pub credentials: bool,
    /// File name.
    pub filename: &'a str,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 (if the server has one).
    pub sha256: Option<[u8; 32]>,
    /// SHA-1.
    pub sha1: Option<[u8; 20]>,
    /// MD5.
    pub md5: Option<[u8; 16]>,
    /// `Some(n)`: resume: keep the first `n` bytes already stored and request
    /// `Range: bytes=n-`. After a reboot `n` is a checkpoint: if fewer bytes survived, resume
    /// from what is there (verification catches anything else). `None`: start from byte 0.
    pub range_start: Option<u64>,
}

/// A chunk to install (or to hand to the config hook).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstallRef<'a> {
    /// Action it belongs to.
    pub action: ActionId,
    /// Index of the chunk in the deployment.
    pub chunk: u8,
    /// `part` as sent by the server.
    pub part: &'a str,
    /// What to do.
    pub kind: InstallKind,
    /// Module name.
    pub name: &'a str,
    /// Module version.
    pub version: &'a str,
    /// Whether the module is encrypted.
    pub encrypted: bool,
    /// Index of the chunk's first artifact (as in [`ArtifactRef::artifact`]).
    pub first_artifact: u8,
    /// Number of artifacts of the chunk (indices `first_artifact..first_artifact + artifact_count`).
    pub artifact_count: u8,
    /// Install attempt (1 for the first).
    pub attempt: u8,
}

/// Coarse state for dashboards/telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TelemetryPhase {
    /// Nothing to do.
    Idle,
    /// Waiting for the user to confirm.
    WaitingConfirmation,
    /// Downloading.
    Downloading,
    /// Downloaded, waiting for the maintenance window.
    AwaitingWindow,
    /// Installing.
    Installing,
    /// Rebooting into the new slot.
    Rebooting,
    /// The action succeeded.
    Succeeded,
    /// A download-only action closed: downloaded and verified, nothing installed.
    Downloaded,
    /// The action failed.
    Failed,
    /// The action was canceled.
    Canceled,
}

/// Why an action failed: the one failure vocabulary behind the hawkBit details, the ThingsBoard
/// `error_code`/`ota_error` and the shell's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Failure {
    /// An artifact could not be downloaded.
    Download,
    /// An artifact did not match its size, hashes or signed manifest.
    Verify,
    /// RAUC refused or failed the install.
    Install,
    /// The configuration hook (or part handler) failed.
    ConfigHook,
    /// The deployment asks for something this device cannot do.
    Unsupported,
    /// The new slot booted but failed its health check (it is marked bad).
    HealthCheck,
    /// The new slot booted and passed its health check but could not be marked good.
    MarkGood,
    /// The bootloader fell back to the previous slot.
    FellBack,
    /// The install was interrupted (power cuts) too often.
    Interrupted,
    /// After the reboot the booted slot could not be told, on every try.
    BootedSlotUnknown,
    /// The server canceled the action.
    Canceled,
    /// The artifact's file name cannot be stored on this device.
    ArtifactName,
    /// The artifact does not fit in the free space.
    NoSpace,
    /// The artifact's size was not the one hawkBit announced.
    ArtifactSize,
}

impl Failure {
    /// The stable numeric `error_code` (telemetry, fleet reports).
    pub const fn error_code(self) -> u16 {
        match self {
            Self::Download => 100,
            Self::ArtifactName => 101,
            Self::NoSpace => 102,
            Self::ArtifactSize => 103,
            Self::Verify => 110,
            Self::Install => 200,
            Self::ConfigHook => 210,
            Self::Unsupported => 220,
            Self::HealthCheck => 300,
            Self::MarkGood => 310,
            Self::BootedSlotUnknown => 320,
            Self::FellBack => 400,
            Self::Interrupted => 500,
            Self::Canceled => 600,
        }
    }

    /// A short stable name (`download`, `fell-back`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Download => "download",
            Self::ArtifactName => "artifact-name",
            Self::NoSpace => "no-space",
            Self::ArtifactSize => "artifact-size",
            Self::Verify => "verify",
            Self::Install => "install",
            Self::ConfigHook => "config-hook",
            Self::Unsupported => "unsupported",
            Self::HealthCheck => "health-check",
            Self::MarkGood => "mark-good",
            Self::BootedSlotUnknown => "booted-slot-unknown",
            Self::FellBack => "fell-back",
            Self::Interrupted => "interrupted",
            Self::Canceled => "canceled",
        }
    }

    /// The process exit code of a run-once that ended in this failure: 1 for a failed update,
    /// 0 for a cancel (the server's decision, carried out as asked).
    pub const fn exit_code(self) -> u8 {
        match self {
            Self::Canceled => 0,
            _ => 1,
        }
    }
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run-once (`eyas -r`: one poll, finish what it brings, exit) stands; see
/// [`Client::run_once`](super::Client::run_once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RunOnce {
    /// Not finished: keep driving the client.
    Working,
    /// Finished: the poll was answered and its work is done (or waits for a reboot). The exit
    /// code is that of [`Client::last_failure`](super::Client::last_failure), if any.
    Done,
    /// The run failed before it could finish; exit non-zero.
    Failed(RunOnceFailure),
}

/// Why a run-once failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RunOnceFailure {
    /// A base poll (or any request before the first answered poll) failed on the network.
    Unreachable,
    /// The server answered the first poll with this error status (5xx, 429).
    ServerError(u16),
    /// The server's answer to the first poll is not a valid base poll.
    Unparsable,
}

impl core::fmt::Display for RunOnceFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Unreachable => f.write_str("hawkBit is not reachable"),
            Self::ServerError(s) => write!(f, "hawkBit answered the poll with HTTP {s}"),
            Self::Unparsable => f.write_str("hawkBit's answer to the poll does not parse"),
        }
    }
}

/// Why a download cannot succeed on this device ([`Event::DownloadRefused`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DownloadRefusal {
    /// The artifact's file name cannot be stored (path separators, `..`, control characters).
    FileName,
    /// The artifact does not fit in the free space.
    NoSpace,
    /// The server sent another size than hawkBit announced (or announced 0 bytes).
    Size,
}

/// What [`Action::MarkSlot`] asks RAUC to do (`Mark good|bad|active`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SlotMark {
    /// `good`: the slot booted healthy; its attempts are reset.
    Good,
    /// `bad`: never boot this slot again.
    Bad,
    /// `active`: boot this slot next (primary).
    Active,
}

/// Why [`Action::Reboot`] asks for a reboot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RebootReason {
    /// Into the slot just installed.
    Update,
    /// Back to the slot that ran before: the new one failed its health check and is marked bad.
    ReturnToPrevious,
}

/// A telemetry sample to publish (e.g. to ThingsBoard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Telemetry {
    /// The action, if any.
    pub action: Option<ActionId>,
    /// Phase.
    pub phase: TelemetryPhase,
    /// Progress of the current phase in percent, if known.
    pub percent: Option<u8>,
    /// Why, for [`TelemetryPhase::Failed`] and [`TelemetryPhase::Canceled`]; the text sent to
    /// hawkBit is [`Client::final_text`](super::Client::final_text).
    pub failure: Option<Failure>,
}

/// Something the shell should log; the client already handled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Warning {
    /// The stored record failed its check and was discarded.
    RecordCorrupt(RecordError),
    /// A response body could not be parsed.
    MalformedResponse {
        /// Which request.
        request: RequestKind,
        /// Why.
        error: ParseError,
    },
    /// The server refused a request with this status (not retried).
    Refused {
        /// Which request.
        request: RequestKind,
        /// HTTP status.
        status: u16,
    },
    /// The action's status quota is exhausted: no more intermediate feedback.
    QuotaExceeded {
        /// The action.
        action: ActionId,
    },
    /// The server no longer offers the action (410 or link gone); local state dropped.
    ActionGone {
        /// The action.
        action: ActionId,
    },
    /// The action queue was full; an informational action was dropped.
    ActionQueueFull,
    /// The shell gave a bootname the client cannot keep (see [`crate::record::bootname`]).
    BadBootname(BadBootname),
    /// An update waits for its verdict but the booted slot is not known: the client stops so
    /// that the shell exits and is started again (after `boot_attempts` such starts the update
    /// is reported as failed).
    BootedSlotUnknown,
    /// The booted slot failed its update and is marked bad: it is not marked good; reboot to
    /// return to the previous slot.
    RejectedSlotRunning,
    /// The running slot failed its health check (not after an update of it): not marked good.
    RunningSlotUnhealthy,
    /// RAUC refused a mark the client asked for.
    MarkRefused(SlotMark),
    /// The server offers an action that was closed here already (a stale cache or proxy); it
    /// is not run again. Logged once per closed action.
    ClosedActionOffered {
        /// The action.
        action: ActionId,
    },
}

impl core::fmt::Display for RequestKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Poll => "base poll",
            Self::DeploymentBase => "deploymentBase",
            Self::CancelAction => "cancelAction",
            Self::ConfirmationBase => "confirmationBase",
            Self::Feedback => "deploymentBase feedback",
            Self::CancelFeedback => "cancelAction feedback",
            Self::ConfirmationFeedback => "confirmationBase feedback",
            Self::ConfigData => "configData",
            Self::InstalledBase => "installedBase",
        })
    }
}

impl core::fmt::Display for Warning {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::RecordCorrupt(e) => write!(f, "stored record discarded: {e}"),
            Self::MalformedResponse { request, error } => {
                write!(f, "{request} answer does not parse: {error}")
            }
            Self::Refused { request, status } => {
                write!(f, "hawkBit refused the {request} with HTTP {status}")
            }
            Self::QuotaExceeded { action } => write!(
                f,
                "action {action}: hawkBit's status quota is used up; no more progress feedback"
            ),
            Self::ActionGone { action } => {
                write!(f, "action {action} is no longer offered by hawkBit; dropped")
            }
            Self::ActionQueueFull => f.write_str("action queue full; an informational action was dropped"),
            Self::BadBootname(e) => write!(f, "booted slot: {e}"),
            Self::BootedSlotUnknown => f.write_str(
                "an update waits for its verdict but the booted slot is not known; stopping so that the service manager starts eyas again",
            ),
            Self::RejectedSlotRunning => f.write_str(
                "the booted slot failed its update and is marked bad: not marking it good; reboot to return to the previous slot",
            ),
            Self::RunningSlotUnhealthy => {
                f.write_str("the running slot failed its health check: not marking it good")
            }
            Self::MarkRefused(m) => write!(f, "RAUC refused to mark a slot {m:?}"),
            Self::ClosedActionOffered { action } => write!(
                f,
                "hawkBit offers action {action} again, which is closed here: not running it again (a stale cache or proxy?)"
            ),
        }
    }
}

/// Why the client stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum StopReason {
    /// `401`: authentication missing or invalid. Fix the configuration and create a new client.
    Unauthorized,
    /// Built with [`Client::unconfigured`](super::Client::unconfigured) and not configured yet.
    NotConfigured,
    /// An update waits for its verdict but the booted slot is not known (RAUC not answering):
    /// exit non-zero and let the service manager start the shell again.
    BootedSlotUnknown,
}

/// Work for the shell, from [`Client::poll_action`](super::Client::poll_action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<'a> {
    /// Store these bytes durably (replacing the previous record) **before** handling any later
    /// action; hand them back in [`BootReport::record`] after the next boot.
    PersistRecord(&'a [u8]),
    /// Delete the stored record.
    ClearRecord,
    /// Download (append from `range_start` if set), then report `DownloadComplete` /
    /// `DownloadInterrupted` / `DownloadFailed`.
    Download(ArtifactRef<'a>),
    /// Stop any download for this action and delete its partial files.
    AbortDownload {
        /// The action.
        action: ActionId,
    },
    /// Verify the stored artifact (size and hashes), then report `Verified` / `VerifyFailed`.
    Verify(ArtifactRef<'a>),
    /// Install the chunk with RAUC, then report `Installed` / `InstallFailed`.
    Install(InstallRef<'a>),
    /// Run the configuration hook on the chunk, then report `Installed` / `InstallFailed`.
    RunConfigHook(InstallRef<'a>),
    /// Reboot now (the record was persisted just before).
    Reboot {
        /// The action.
        action: ActionId,
        /// Bootname of the slot that should boot.
        target_slot: Option<&'a str>,
        /// Why.
        reason: RebootReason,
    },
    /// Run the health check (none configured counts as passed), then report
    /// [`Event::HealthChecked`].
    CheckHealth,
    /// Mark the slot with this bootname (RAUC `Mark`), then report [`Event::SlotMarked`].
    MarkSlot {
        /// The slot's bootname.
        bootname: &'a str,
        /// How.
        mark: SlotMark,
    },
    /// Store this bootname durably as the rejected slot (`None`: delete it), beside the record;
    /// hand it back in [`BootReport::rejected`]. It outlives the record so that a rejected slot
    /// is never marked good again while it runs.
    RememberRejected(Option<&'a str>),
    /// Ask the user whether `action` may run; answer with [`Event::ConfirmationAnswer`].
    AskConfirmation {
        /// The action.
        action: ActionId,
    },
    /// The server wants attributes: call [`Client::set_attributes`](super::Client::set_attributes).
    AttributesRequested,
    /// Publish this telemetry sample.
    Telemetry(Telemetry),
    /// Log this.
    Warning(Warning),
    /// The client stopped; it will produce nothing more.
    Stopped(StopReason),
}

/// Results of the shell's work, for [`Client::handle_event`](super::Client::handle_event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// `received` bytes of the current artifact are stored (for progress feedback).
    DownloadProgress {
        /// Bytes stored so far (including a resumed prefix).
        received: u64,
    },
    /// The artifact is fully downloaded.
    DownloadComplete,
    /// The connection was cut after `received` bytes were stored; the client resumes by range.
    DownloadInterrupted {
        /// Bytes stored so far.
        received: u64,
        /// What happened (in the failure feedback if the client gives up).
        reason: &'a str,
    },
    /// The download failed with an HTTP status (`None`: network error before any byte).
    DownloadFailed {
        /// HTTP status.
        http_status: Option<u16>,
        /// What happened (in the failure feedback if the client gives up).
        reason: &'a str,
    },
    /// The download cannot succeed here, whatever a retry would do: the action fails at once.
    DownloadRefused {
        /// Which problem.
        refusal: DownloadRefusal,
        /// The details (goes into the failure feedback, sanitized).
        reason: &'a str,
    },
    /// The artifact matched its size and hashes.
    Verified,
    /// The artifact did not verify.
    VerifyFailed {
        /// Why (goes into the failure feedback, sanitized).
        reason: &'a str,
    },
    /// Install progress in percent.
    InstallProgress {
        /// 0–100.
        percent: u8,
    },
    /// The install (or config hook) succeeded; for an OS chunk `slot` is the bootname of the
    /// slot written (RAUC's primary after the install).
    Installed {
        /// Bootname of the slot written.
        slot: Option<&'a str>,
    },
    /// The install (or config hook) failed.
    InstallFailed {
        /// Why (goes into the failure feedback, sanitized).
        reason: &'a str,
    },
    /// The result of [`Action::CheckHealth`].
    HealthChecked {
        /// The health check passed.
        passed: bool,
    },
    /// The result of [`Action::MarkSlot`].
    SlotMarked {
        /// RAUC accepted the mark.
        ok: bool,
    },
    /// The user's answer to [`Action::AskConfirmation`] (may also come later, e.g. after a denial).
    ConfirmationAnswer {
        /// The action.
        action: ActionId,
        /// `true` = confirmed.
        accepted: bool,
    },
}

/// What the shell knows after boot, for [`Client::handle_boot`](super::Client::handle_boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootReport<'a> {
    /// The stored record, if any.
    pub record: Option<&'a [u8]>,
    /// RAUC's bootname of the slot that booted (`None`: unknown).
    pub booted: Option<&'a str>,
    /// The bootname stored by [`Action::RememberRejected`], if any.
    pub rejected: Option<&'a str>,
    /// The distribution set running now (`name`, `version`), for `PUT installedBase` after a fallback.
    pub running: Option<(&'a str, &'a str)>,
}
