//! Public input/output types of the [`Client`](super::Client).

use crate::ddi::{ActionId, ConfigMode, ParseError};
use crate::record::{RecordError, Slot};
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
    /// Also send `authorization` with artifact downloads (turn off for external CDNs).
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
}

/// Errors from `handle_response` / `handle_transport_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ResponseError {
    /// No request was in flight (the input was ignored).
    NoRequestInFlight,
}

/// Errors from [`Client::handle_event`](super::Client::handle_event): the event does not fit the
/// current state and was ignored.
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
    /// `Authorization` header value for the download (`None` if disabled).
    pub authorization: Option<&'a str>,
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
        /// Slot that should boot.
        target_slot: Option<Slot>,
    },
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
    },
    /// The download failed with an HTTP status (`None`: network error before any byte).
    DownloadFailed {
        /// HTTP status.
        http_status: Option<u16>,
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
    /// The install (or config hook) succeeded; for an OS chunk `slot` is the slot written.
    Installed {
        /// Slot written.
        slot: Option<Slot>,
    },
    /// The install (or config hook) failed.
    InstallFailed {
        /// Why (goes into the failure feedback, sanitized).
        reason: &'a str,
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
    /// The slot that booted.
    pub booted_slot: Option<Slot>,
    /// The health check passed **and** the booted slot was marked good.
    pub healthy: bool,
    /// The distribution set running now (`name`, `version`), for `PUT installedBase` after a fallback.
    pub running: Option<(&'a str, &'a str)>,
}
