//! The sans-IO hawkBit DDI client state machine.
//!
//! # Contract (quinn-proto style)
//!
//! The [`Client`] never does I/O and never reads a clock. Methods come in three kinds:
//!
//! * **inputs** — [`Client::handle_boot`] (once, right after [`Client::new`]),
//!   [`Client::handle_response`] / [`Client::handle_transport_error`] (for the one request in
//!   flight), [`Client::handle_event`] (results of actions), [`Client::handle_timeout`] (when the
//!   instant from `poll_timeout` is reached), [`Client::set_attributes`];
//! * **outputs** — [`Client::poll_action`], [`Client::poll_request`], [`Client::poll_timeout`];
//! * **getters** — [`Client::stopped`], [`Client::current_action`], [`Client::record`].
//!
//! After **every** input the shell drains the outputs in this order:
//!
//! 1. `poll_action()` until `None` — handle each action in order; [`Action::PersistRecord`]
//!    must be durable before the next action is handled (an [`Action::Reboot`] always comes
//!    after the record it relies on);
//! 2. `poll_request(now, buf)` — at most one request is in flight: perform it and feed the result
//!    to `handle_response` / `handle_transport_error` (then drain again);
//! 3. `poll_timeout()` — sleep until then (or until an action completes) and call
//!    `handle_timeout(now)`.
//!
//! `now` must be monotonic. Long-running actions (downloads, installs) run in the shell while
//! the client keeps polling (at most every `active_poll_interval`) so a cancel is noticed.
//!
//! ```no_run
//! use eyas_core::client::*;
//! use eyas_core::time::Instant;
//! # fn clock() -> Instant { Instant::ZERO }
//! # fn http(_: &Request<'_>) -> Result<(u16, Option<String>, Vec<u8>), ()> { Err(()) }
//! # fn load_record() -> Option<Vec<u8>> { None }
//! let mut cfg = ClientConfig::new("https://hb.example", "DEFAULT", "dev-01");
//! cfg.authorization = Some("TargetToken 4f2c…");
//! let mut client = Client::new(&cfg).expect("valid config");
//! client.set_attributes(&[("hw_revision", "2")]).expect("valid attributes");
//! let record = load_record();
//! client.handle_boot(clock(), BootReport {
//!     record: record.as_deref(),
//!     booted: Some("system0"), // RAUC's bootname of the booted slot
//!     rejected: None,          // what Action::RememberRejected stored, if anything
//!     running: Some(("fw", "1.1.0")),
//! });
//! let mut buf = vec![0u8; REQUEST_BUF_LEN];
//! loop {
//!     while let Some(action) = client.poll_action() {
//!         match action {
//!             Action::PersistRecord(bytes) => { /* write + fsync before going on */ }
//!             Action::Download(a) => { /* start a ranged download of a.url */ }
//!             Action::Reboot { .. } => { /* reboot now */ }
//!             Action::CheckHealth => { /* run it, then handle_event(HealthChecked) */ }
//!             Action::MarkSlot { .. } => { /* RAUC Mark, then handle_event(SlotMarked) */ }
//!             _ => { /* … see the Action docs */ }
//!         }
//!     }
//!     let now = clock();
//!     if let Some(req) = client.poll_request(now, &mut buf).expect("buffer is big enough") {
//!         match http(&req) {
//!             Ok((status, etag, body)) => {
//!                 let _ = client.handle_response(now, Response { status, etag: etag.as_deref(), body: &body });
//!             }
//!             Err(()) => { let _ = client.handle_transport_error(now); }
//!         }
//!         continue;
//!     }
//!     // sleep until client.poll_timeout() or until a download/install event arrives,
//!     // then feed it with client.handle_event(now, …) / client.handle_timeout(now)
//!     client.handle_timeout(clock());
//! }
//! ```
//!
//! # Behaviour
//!
//! Polling follows the server's `sleep` clamped to `[poll_min, poll_max]` (or
//! `poll_override`), with seeded ± jitter; the ETag of the base poll is sent as
//! `If-None-Match`. Deployments are downloaded artifact by artifact (verified each), then
//! installed chunk by chunk (`config`, then applications, `os` last); an `os` install ends in a
//! reboot and the result is reported only after [`Client::handle_boot`] confirms the target slot
//! booted healthy. `update: skip` with a maintenance window downloads early and installs when the
//! server re-offers the action with the window open; without a window it closes with
//! `downloaded`. Cancels are accepted (`closed/success`) before installing and `rejected`
//! afterwards; `canceled` is never sent. 410 drops the action, quota 429s stop intermediate
//! feedback, 401 stops the client, 5xx/429/network errors back off exponentially with jitter.

mod boot;
mod types;

pub use types::*;

use crate::ddi::{
    self, ActionFeedback, ActionId, CancelFeedback, CancelReply, ConfigData, ConfigDataError,
    Confirmation, ConfirmationFeedback, DeploymentBase, Execution, Finished, HandlingType,
    InstalledBase, MaintenanceWindow, Progress,
};
use crate::record::{Bootname, Phase, RECORD_MAX_LEN, Record, record_version};
use crate::text::{Num, cat};
use crate::time::{Duration, Instant};
use heapless::{Deque, String, Vec};

/// Longest `{server}/{tenant}/controller/v1/{id}`.
pub const MAX_CONTROLLER_URL_LEN: usize = 256;
/// Longest URL the client builds itself (feedback, configData, installedBase); links from the
/// server are ≤ [`ddi::MAX_URL_LEN`].
pub const MAX_REQUEST_URL_LEN: usize = MAX_CONTROLLER_URL_LEN + 48;
/// Longest `Authorization` value.
pub const MAX_AUTH_LEN: usize = 192;
/// Longest ETag kept for `If-None-Match` (longer ones are not used).
pub const MAX_ETAG_LEN: usize = 96;
/// Most chunks per deployment this client can run (more ⇒ the action fails with a reason).
pub const MAX_PLAN_CHUNKS: usize = 4;
/// Most artifacts per deployment this client can run (more ⇒ the action fails with a reason).
pub const MAX_PLAN_ARTIFACTS: usize = 6;
/// Longest `part`, `name`, `version` kept per chunk.
pub const MAX_PLAN_NAME_LEN: usize = 64;
/// Longest artifact file name kept.
pub const MAX_FILENAME_LEN: usize = 96;
/// Longest serialized configData body kept by [`Client::set_attributes`].
pub const MAX_CONFIG_BODY_LEN: usize = 1024;
/// Bytes for all artifact file names and download URLs of one deployment together (more ⇒
/// the action fails with a reason).
pub const MAX_PLAN_TEXT_LEN: usize = 1536;
/// Longest failure text sent in a final feedback (longer shell reasons are cut and marked).
pub const MAX_REASON_LEN: usize = 200;
/// Capacity of the action queue.
pub const ACTION_QUEUE_LEN: usize = 16;
/// A request body buffer of this size always suffices for [`Client::poll_request`].
pub const REQUEST_BUF_LEN: usize = MAX_CONFIG_BODY_LEN + 64;

/// Reason codes kept in [`Phase::Reporting`].
mod reason {
    pub const BOOTED: u8 = 0;
    pub const INSTALLED: u8 = 1;
    pub const DOWNLOADED: u8 = 2;
    pub const HEALTH: u8 = 3;
    pub const FELL_BACK: u8 = 4;
    pub const INSTALL_FAILED: u8 = 5;
    pub const DOWNLOAD_FAILED: u8 = 6;
    pub const VERIFY_FAILED: u8 = 7;
    pub const UNSUPPORTED: u8 = 8;
    pub const INTERRUPTED: u8 = 9;
    pub const MARK_GOOD: u8 = 10;
    pub const BOOTED_UNKNOWN: u8 = 11;
    pub const CONFIG_HOOK: u8 = 12;

    pub fn text(code: u8) -> &'static str {
        match code {
            BOOTED => "New slot booted and passed the health check",
            INSTALLED => "Installed",
            DOWNLOADED => "Downloaded and verified",
            HEALTH => "New slot booted but failed the health check",
            FELL_BACK => "Bootloader fell back to the previous slot",
            INSTALL_FAILED => "Installation failed",
            DOWNLOAD_FAILED => "Download failed",
            VERIFY_FAILED => "Verification failed",
            UNSUPPORTED => "Deployment not supported by this device",
            INTERRUPTED => "Installation interrupted too often",
            MARK_GOOD => "New slot booted and passed the health check but could not be marked good",
            BOOTED_UNKNOWN => "The booted slot could not be told after the reboot",
            CONFIG_HOOK => "Configuration hook failed",
            _ => "Finished",
        }
    }

    /// The failure a reason code stands for (`None`: not a failure).
    pub fn failure(code: u8) -> Option<super::Failure> {
        use super::Failure;
        Some(match code {
            HEALTH => Failure::HealthCheck,
            FELL_BACK => Failure::FellBack,
            INSTALL_FAILED => Failure::Install,
            DOWNLOAD_FAILED => Failure::Download,
            VERIFY_FAILED => Failure::Verify,
            UNSUPPORTED => Failure::Unsupported,
            INTERRUPTED => Failure::Interrupted,
            MARK_GOOD => Failure::MarkGood,
            BOOTED_UNKNOWN => Failure::BootedSlotUnknown,
            CONFIG_HOOK => Failure::ConfigHook,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
struct ChunkPlan {
    part: String<MAX_PLAN_NAME_LEN>,
    name: String<MAX_PLAN_NAME_LEN>,
    version: String<MAX_PLAN_NAME_LEN>,
    kind: InstallKind,
    encrypted: bool,
    first_artifact: u8,
    artifact_count: u8,
}

#[derive(Debug, Clone, Copy)]
struct TextRef {
    off: u16,
    len: u16,
}

#[derive(Debug, Clone)]
struct ArtifactPlan {
    chunk: u8,
    filename: TextRef,
    url: TextRef,
    size: u64,
    sha256: Option<[u8; 32]>,
    sha1: Option<[u8; 20]>,
    md5: Option<[u8; 16]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Nothing,
    Download,
    Verify,
    Install,
}

#[derive(Debug)]
struct Job {
    /// `false`: no action (the rest is stale).
    active: bool,
    /// Hash of the deploymentBase href (a changed `c=` means "re-read me").
    href: u64,
    plan_valid: bool,
    download: HandlingType,
    update: HandlingType,
    window: Option<MaintenanceWindow>,
    chunks: Vec<ChunkPlan, MAX_PLAN_CHUNKS>,
    artifacts: Vec<ArtifactPlan, MAX_PLAN_ARTIFACTS>,
    text: Vec<u8, MAX_PLAN_TEXT_LEN>,
    order: Vec<u8, MAX_PLAN_CHUNKS>,
    rec: Record,
    awaiting: Awaiting,
    dl_retries: u8,
    resume_at: Option<Instant>,
    resume_from: Option<u64>,
    quota_exhausted: bool,
    last_step: u8,
    /// After a restore: re-verify stored artifacts `cursor..verify_end` before going on.
    verify_cursor: Option<u8>,
    verify_end: u8,
}

impl Job {
    /// No action. Only `active: false` matters ([`Job::reset`] sets every other field before
    /// use); the rest are the values whose bytes are all zero, so that
    /// [`Client::unconfigured`] is all-zero (see [`Live`]).
    const fn empty() -> Self {
        Self {
            active: false,
            href: 0,
            plan_valid: false,
            download: HandlingType::Skip,
            update: HandlingType::Skip,
            window: Some(MaintenanceWindow::Available),
            chunks: Vec::new(),
            artifacts: Vec::new(),
            text: Vec::new(),
            order: Vec::new(),
            rec: Record {
                action_id: ActionId(0),
                phase: Phase::Reporting {
                    success: false,
                    reason: 0,
                },
                target_slot: None,
                from_slot: None,
                from_version: String::new(),
                to_version: String::new(),
                attempt: 0,
                next_artifact: 0,
                next_chunk: 0,
                status_entries: 0,
                resume_offset: 0,
            },
            awaiting: Awaiting::Nothing,
            dl_retries: 0,
            resume_at: None,
            resume_from: None,
            quota_exhausted: false,
            last_step: 0,
            verify_cursor: None,
            verify_end: 0,
        }
    }

    /// Start a new action in place (no multi-KiB temporary on the stack).
    fn reset(&mut self, id: ActionId, phase: Phase) {
        self.active = true;
        self.href = 0;
        self.plan_valid = false;
        self.download = HandlingType::Forced;
        self.update = HandlingType::Forced;
        self.window = None;
        self.chunks.clear();
        self.artifacts.clear();
        self.text.clear();
        self.order.clear();
        self.rec = Record::new(id, phase);
        self.awaiting = Awaiting::Nothing;
        self.dl_retries = 0;
        self.resume_at = None;
        self.resume_from = None;
        self.quota_exhausted = false;
        self.last_step = 0;
        self.verify_cursor = None;
        self.verify_end = 0;
    }

    fn id(&self) -> ActionId {
        self.rec.action_id
    }
    /// Index of the artifact being downloaded or verified.
    fn artifact_index(&self) -> u8 {
        self.verify_cursor.unwrap_or(self.rec.next_artifact)
    }
    fn text(&self, r: TextRef) -> &str {
        let start = usize::from(r.off);
        self.text
            .get(start..start + usize::from(r.len))
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    /// Append decoded `s` to the text arena.
    fn push_text(&mut self, s: ddi::JsonStr<'_>) -> Option<TextRef> {
        let off = self.text.len();
        let mut tmp = [0u8; 4];
        for c in s.chars() {
            if self
                .text
                .extend_from_slice(c.encode_utf8(&mut tmp).as_bytes())
                .is_err()
            {
                self.text.truncate(off);
                return None;
            }
        }
        Some(TextRef {
            off: u16::try_from(off).ok()?,
            len: u16::try_from(self.text.len() - off).ok()?,
        })
    }

    fn before_install(&self) -> bool {
        matches!(self.rec.phase, Phase::Downloading | Phase::AwaitingWindow)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Persist,
    ClearRecord,
    Download,
    Verify,
    Install,
    Reboot,
    /// Reboot back to `Client::return_slot` (after a failed health check).
    ReturnReboot(ActionId),
    CheckHealth,
    Mark(SlotMark, boot::Which),
    /// Remember the record's target as rejected (`true`) or forget the rejected slot.
    Remember(bool),
    Abort(ActionId),
    Ask(ActionId),
    AttributesRequested,
    Telemetry(Telemetry),
    Warning(Warning),
    Stopped(StopReason),
}

/// Tags a value kept in an `Option` so that `None` is all-zero bytes. The only valid byte of
/// `Live` is 1, so it is the largest niche of the value and rustc puts `None` at 0 (it steers
/// niches towards zero). This, the `= 1` discriminants of `Fetch`/`InFlight` and [`Stop`] keep
/// [`Client::unconfigured`] all-zero: a `static` client is then `.bss`, not a 7 KB `.data`
/// initializer in an MCU's flash (checked by the Cortex-M4 firmware's budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Live {
    Yes = 1,
}

/// Whether the client runs; [`Client::stopped`] as a zero-first enum (see [`Live`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    NotConfigured,
    Running,
    Unauthorized,
    BootedSlotUnknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Fetch {
    Deployment = 1,
    Cancel,
    Confirmation,
}

#[derive(Debug)]
struct FinalFb {
    _live: Live,
    action: ActionId,
    execution: Execution,
    success: bool,
    text: String<MAX_REASON_LEN>,
}

#[derive(Debug)]
struct ProgressFb {
    action: ActionId,
    cnt: u32,
    of: u32,
    text: String<96>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum InFlight {
    Poll = 1,
    Fetch(Fetch),
    Final,
    Progress,
    CancelReply,
    ConfirmReply,
    ConfigData,
    InstalledBase,
}

/// The hawkBit DDI client. See the [module documentation](self) for the drain order.
#[derive(Debug)]
pub struct Client {
    controller_url: String<MAX_CONTROLLER_URL_LEN>,
    auth: Option<String<MAX_AUTH_LEN>>,
    send_auth_on_download: bool,
    poll_override: Option<Duration>,
    poll_min: Duration,
    poll_max: Duration,
    active_poll: Duration,
    jitter_percent: u8,
    rng: u64,
    confirmation: ConfirmationPolicy,
    budget: u16,
    step_percent: u8,
    backoff_initial: Duration,
    backoff_max: Duration,
    download_retries: u8,
    boot_attempts: u8,
    config_mode: ddi::ConfigMode,
    mark_good_on_boot: bool,

    /// Where the boot path stands (requests wait until it is `Idle`).
    boot_stage: boot::Stage,
    /// Bootname of the slot that booted (from [`BootReport::booted`]).
    booted: Option<Bootname>,
    /// Reboot back to `return_slot` once the failure is reported, or at this instant.
    return_reboot: Option<Instant>,
    /// `installed_base` waits for the boot verdict (sent only after a fallback).
    installed_base_held: bool,
    /// The failure reported last (kind of the final feedback); `Live` keeps `None` all-zero.
    last_failure: Option<(Live, Failure)>,

    server_sleep: Duration,
    next_poll: Option<Instant>,
    poll_due: bool,
    etag: String<MAX_ETAG_LEN>,
    failures: u32,
    not_before: Instant,
    in_flight: Option<InFlight>,
    stop: Stop,

    fetch: Option<Fetch>,
    link: String<{ ddi::MAX_URL_LEN }>,
    final_fb: Option<FinalFb>,
    progress_fb: Option<ProgressFb>,
    cancel_reply: Option<(Live, ActionId, CancelReply)>,
    confirm_reply: Option<(Live, ActionId, Confirmation)>,
    asked: Option<ActionId>,
    /// Hash of the confirmationBase href last acted on.
    confirm_href: u64,
    installed_base: Option<(String<MAX_PLAN_NAME_LEN>, String<MAX_PLAN_NAME_LEN>)>,
    attrs: Vec<u8, MAX_CONFIG_BODY_LEN>,
    config_due: bool,
    attrs_requested: bool,
    running_version: String<MAX_PLAN_NAME_LEN>,

    job: Job,
    actions: Deque<Act, ACTION_QUEUE_LEN>,
    url: String<MAX_REQUEST_URL_LEN>,
    record_buf: [u8; RECORD_MAX_LEN],
    /// The latest `now` passed to any input.
    last_now: Instant,
}

/// `s.trim_end_matches('/')` by bytes (no `str` pattern searcher in an MCU image).
fn trim_slashes(s: &str) -> &str {
    let n = s.len() - s.bytes().rev().take_while(|&b| b == b'/').count();
    s.get(..n).unwrap_or(s)
}

fn ident_ok(s: &str) -> bool {
    !s.is_empty()
        && !s
            .bytes()
            .any(|b| b == b'/' || b == b'?' || b == b'#' || b.is_ascii_whitespace())
}

/// Append `s` to `out` for a feedback detail: `<`/`>` become `(`/`)`, control characters
/// become spaces, and a cut is marked with `...`.
#[inline(always)]
fn push_clean<const N: usize>(out: &mut String<N>, s: &str) {
    push_clean_view(out.as_mut_view(), s);
}

/// [`push_clean`] for any capacity (one copy in flash).
#[inline(never)]
fn push_clean_view(out: &mut heapless::string::StringView, s: &str) {
    let cap = out.capacity();
    for c in s.chars() {
        let c = match c {
            '<' => '(',
            '>' => ')',
            c if c.is_control() => ' ',
            c => c,
        };
        if out.len() + c.len_utf8() > cap.saturating_sub(3) {
            let _ = out.push_str("...");
            return;
        }
        let _ = out.push(c);
    }
}

/// FNV-1a, to remember hrefs without storing them.
fn fnv1a(bytes: impl Iterator<Item = u8>) -> u64 {
    bytes.fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn href_hash(h: ddi::JsonStr<'_>) -> u64 {
    let mut tmp = [0u8; 4];
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for c in h.chars() {
        for &b in c.encode_utf8(&mut tmp).as_bytes() {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// Appends the decoded `s`; `false` (with a part appended) if it does not fit.
fn copy_into(out: &mut heapless::string::StringView, s: ddi::JsonStr<'_>) -> bool {
    for c in s.chars() {
        if out.push(c).is_err() {
            return false;
        }
    }
    true
}

impl Client {
    /// A client for one device. Call [`Client::handle_boot`] next (even without a record).
    ///
    /// The client is about 7 KiB; on a small stack prefer a `static` built with
    /// [`Client::unconfigured`] and then [`Client::configure`] in place.
    pub fn new(cfg: &ClientConfig<'_>) -> Result<Self, ClientConfigError> {
        let mut c = Self::unconfigured();
        c.configure(cfg)?;
        Ok(c)
    }

    /// A client that does nothing until [`Client::configure`] is called; `const`, so it can
    /// initialise a `static` without any stack.
    ///
    /// Every byte of it is zero, so such a `static` goes to `.bss` and costs no flash: the
    /// settings are all zero/off here and [`Client::configure`] sets every one of them.
    pub const fn unconfigured() -> Self {
        Self {
            controller_url: String::new(),
            auth: None,
            send_auth_on_download: false,
            poll_override: None,
            poll_min: Duration::ZERO,
            poll_max: Duration::ZERO,
            active_poll: Duration::ZERO,
            jitter_percent: 0,
            rng: 0,
            confirmation: ConfirmationPolicy::Auto,
            budget: 0,
            step_percent: 0,
            backoff_initial: Duration::ZERO,
            backoff_max: Duration::ZERO,
            download_retries: 0,
            boot_attempts: 0,
            config_mode: ddi::ConfigMode::Merge,
            mark_good_on_boot: false,
            boot_stage: boot::Stage::Idle,
            booted: None,
            return_reboot: None,
            installed_base_held: false,
            last_failure: None,
            server_sleep: Duration::ZERO,
            next_poll: None,
            poll_due: false,
            etag: String::new(),
            failures: 0,
            not_before: Instant::ZERO,
            in_flight: None,
            stop: Stop::NotConfigured,
            fetch: None,
            link: String::new(),
            final_fb: None,
            progress_fb: None,
            cancel_reply: None,
            confirm_reply: None,
            asked: None,
            confirm_href: 0,
            installed_base: None,
            attrs: Vec::new(),
            config_due: false,
            attrs_requested: false,
            running_version: String::new(),
            job: Job::empty(),
            actions: Deque::new(),
            url: String::new(),
            record_buf: [0; RECORD_MAX_LEN],
            last_now: Instant::ZERO,
        }
    }

    /// (Re)configure in place and reset all state, as if freshly created. On error the client
    /// is left unconfigured (it produces nothing).
    pub fn configure(&mut self, cfg: &ClientConfig<'_>) -> Result<(), ClientConfigError> {
        self.stop = Stop::NotConfigured;
        if !ident_ok(cfg.tenant) || !ident_ok(cfg.controller_id) {
            return Err(ClientConfigError::BadIdentity);
        }
        self.controller_url.clear();
        cat(
            &mut self.controller_url,
            &[
                trim_slashes(cfg.server_url),
                "/",
                cfg.tenant,
                "/controller/v1/",
                cfg.controller_id,
            ],
        )
        .map_err(|()| ClientConfigError::UrlTooLong)?;
        self.auth = match cfg.authorization {
            Some(a) => Some(String::try_from(a).map_err(|_| ClientConfigError::AuthTooLong)?),
            None => None,
        };
        self.send_auth_on_download = cfg.send_auth_on_download;
        self.poll_override = cfg.poll_override;
        self.poll_min = cfg.poll_min;
        self.poll_max = cfg.poll_max;
        self.active_poll = cfg.active_poll_interval;
        self.jitter_percent = cfg.jitter_percent.min(50);
        self.rng = if cfg.seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            cfg.seed
        };
        self.confirmation = cfg.confirmation;
        self.budget = cfg.progress_budget.min(MAX_PROGRESS_BUDGET);
        self.step_percent = cfg.progress_step_percent.clamp(1, 100);
        self.backoff_initial = cfg.backoff_initial;
        self.backoff_max = cfg.backoff_max;
        self.download_retries = cfg.download_retries;
        self.boot_attempts = cfg.boot_attempts.max(1);
        self.config_mode = cfg.config_mode;
        self.mark_good_on_boot = cfg.mark_good_on_boot;
        // runtime state
        self.boot_stage = boot::Stage::Idle;
        self.booted = None;
        self.return_reboot = None;
        self.installed_base_held = false;
        self.last_failure = None;
        self.server_sleep = Duration::from_secs(300);
        self.next_poll = None;
        self.poll_due = true;
        self.etag.clear();
        self.failures = 0;
        self.not_before = Instant::ZERO;
        self.in_flight = None;
        self.fetch = None;
        self.link.clear();
        self.final_fb = None;
        self.progress_fb = None;
        self.cancel_reply = None;
        self.confirm_reply = None;
        self.asked = None;
        self.confirm_href = 0;
        self.installed_base = None;
        self.attrs.clear();
        self.config_due = false;
        self.attrs_requested = false;
        self.running_version.clear();
        self.job.active = false;
        self.actions.clear();
        self.url.clear();
        self.last_now = Instant::ZERO;
        self.stop = Stop::Running;
        Ok(())
    }

    fn job(&self) -> Option<&Job> {
        self.job.active.then_some(&self.job)
    }

    fn job_mut(&mut self) -> Option<&mut Job> {
        if self.job.active {
            Some(&mut self.job)
        } else {
            None
        }
    }

    // -----------------------------------------------------------------------------------------
    // getters

    /// `Some` once the client stopped for good (e.g. 401).
    pub fn stopped(&self) -> Option<StopReason> {
        match self.stop {
            Stop::NotConfigured => Some(StopReason::NotConfigured),
            Stop::Running => None,
            Stop::Unauthorized => Some(StopReason::Unauthorized),
            Stop::BootedSlotUnknown => Some(StopReason::BootedSlotUnknown),
        }
    }

    /// The action being worked on, if any.
    pub fn current_action(&self) -> Option<ActionId> {
        self.job().map(Job::id)
    }

    /// The current persistent record (what the last `PersistRecord` carried).
    pub fn record(&self) -> Option<&Record> {
        self.job().map(|j| &j.rec)
    }

    /// The text of the final feedback being sent (or last sent), e.g. for telemetry next to a
    /// [`TelemetryPhase::Failed`] sample.
    pub fn final_text(&self) -> Option<&str> {
        self.final_fb.as_ref().map(|f| f.text.as_str())
    }

    /// Why the last action failed, if it did (the [`Telemetry::failure`] of its sample).
    pub fn last_failure(&self) -> Option<Failure> {
        self.last_failure.map(|(_, f)| f)
    }

    // -----------------------------------------------------------------------------------------
    // inputs

    /// Set the attributes sent with `PUT configData` (checked now against hawkBit's rules).
    /// They are sent once after boot and whenever the server asks for them.
    pub fn set_attributes(&mut self, attrs: &[(&str, &str)]) -> Result<(), ConfigDataError> {
        let cd = ConfigData {
            mode: self.config_mode,
            data: attrs,
        };
        cd.validate()?; // keep the old attributes if the new ones are invalid
        // written straight into the client's buffer (no 1 KiB stack temporary)
        self.attrs.clear();
        let _ = self.attrs.resize(MAX_CONFIG_BODY_LEN, 0);
        let r = cd.write(&mut self.attrs);
        match r {
            Ok(n) => self.attrs.truncate(n),
            Err(e) => {
                self.attrs.clear();
                return Err(e);
            }
        }
        self.config_due = true;
        self.attrs_requested = false;
        Ok(())
    }

    /// Time passed: call when `poll_timeout()` is reached (calling early is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        if self.stop != Stop::Running {
            return;
        }
        if self.next_poll.is_some_and(|t| now >= t) {
            self.poll_due = true;
            self.next_poll = None;
        }
        if self.return_reboot.is_some_and(|t| now >= t) {
            // the failure is still unreported: the record keeps it for the next start
            self.return_reboot = None;
            self.push_return_reboot();
        }
        let resume = self
            .job()
            .and_then(|j| j.resume_at)
            .is_some_and(|t| now >= t);
        if resume {
            if let Some(j) = self.job_mut() {
                j.resume_at = None;
            }
            self.start_download();
        }
    }

    /// The next instant `handle_timeout` should be called (`None`: nothing scheduled).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stop != Stop::Running {
            return None;
        }
        let mut t = self.next_poll;
        let mut add = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        add(self.job().and_then(|j| j.resume_at));
        add(self.return_reboot);
        if self.in_flight.is_none() && self.has_pending_request() {
            add(Some(self.not_before));
        }
        t
    }

    /// Feed the response to the request in flight.
    pub fn handle_response(&mut self, now: Instant, r: Response<'_>) -> Result<(), ResponseError> {
        let kind = self
            .in_flight
            .take()
            .ok_or(ResponseError::NoRequestInFlight)?;
        if self.stop != Stop::Running {
            return Ok(());
        }
        let status = r.status;
        if status == 401 {
            self.stop = Stop::Unauthorized;
            self.push(Act::Stopped(StopReason::Unauthorized));
            return Ok(());
        }
        let transient =
            status >= 500 || status == 409 || (status == 429 && !self.is_feedback(kind));
        if transient {
            // the same request is retried once the backoff delay has passed
            self.back_off(now);
            return Ok(());
        }
        match kind {
            InFlight::Poll => self.on_poll(now, r),
            InFlight::Fetch(f) => self.on_fetch(now, f, r),
            InFlight::Final => self.on_final(now, status),
            InFlight::Progress => self.on_progress(now, status),
            InFlight::CancelReply => {
                if status == 429 {
                    self.back_off(now);
                } else {
                    self.ok(now);
                    self.cancel_reply = None;
                    self.etag.clear();
                    if !(200..300).contains(&status) && status != 405 && status != 410 {
                        self.refused(RequestKind::CancelFeedback, status);
                    }
                }
            }
            InFlight::ConfirmReply => {
                if status == 429 {
                    self.back_off(now);
                } else {
                    self.ok(now);
                    let confirmed =
                        matches!(self.confirm_reply, Some((_, _, Confirmation::Confirmed)));
                    self.confirm_reply = None;
                    self.etag.clear();
                    if !(200..300).contains(&status) && status != 410 && status != 404 {
                        self.refused(RequestKind::ConfirmationFeedback, status);
                    } else if confirmed && (200..300).contains(&status) {
                        // the deployment comes with the next poll: now, not after `sleep`
                        self.poll_due = true;
                    }
                }
            }
            InFlight::ConfigData => {
                self.ok(now);
                self.config_due = false;
                if !(200..300).contains(&status) {
                    self.refused(RequestKind::ConfigData, status);
                }
            }
            InFlight::InstalledBase => {
                self.ok(now);
                self.installed_base = None;
                if !(200..300).contains(&status) {
                    self.refused(RequestKind::InstalledBase, status);
                }
            }
        }
        Ok(())
    }

    /// The request in flight failed without a response (DNS, connect, TLS, timeout, cut).
    pub fn handle_transport_error(&mut self, now: Instant) -> Result<(), ResponseError> {
        let kind = self
            .in_flight
            .take()
            .ok_or(ResponseError::NoRequestInFlight)?;
        self.back_off(now);
        if kind == InFlight::Poll {
            self.schedule_poll(now);
        }
        Ok(())
    }

    /// Feed the result of an action.
    pub fn handle_event(&mut self, now: Instant, ev: Event<'_>) -> Result<(), EventError> {
        self.last_now = now;
        if let Event::ConfirmationAnswer { action, accepted } = ev {
            if self.asked != Some(action) {
                return Err(EventError::NoConfirmation);
            }
            self.confirm_reply = Some((
                Live::Yes,
                action,
                if accepted {
                    Confirmation::Confirmed
                } else {
                    Confirmation::Denied
                },
            ));
            return Ok(());
        }
        let awaiting = self.job().map_or(Awaiting::Nothing, |j| j.awaiting);
        match ev {
            Event::DownloadProgress { received } => {
                if awaiting != Awaiting::Download {
                    return Err(EventError::NoDownload);
                }
                let size = self.current_artifact().map_or(0, |a| a.size);
                if self.step_progress(percent(received, size), "Downloading")
                    && let Some(j) = self.job_mut()
                    && j.verify_cursor.is_none()
                {
                    // checkpoint for a resume by range after a reboot
                    j.rec.resume_offset = received;
                    self.push(Act::Persist);
                }
            }
            Event::DownloadComplete => {
                if awaiting != Awaiting::Download {
                    return Err(EventError::NoDownload);
                }
                if let Some(j) = self.job_mut() {
                    j.awaiting = Awaiting::Verify;
                }
                self.push(Act::Verify);
            }
            Event::DownloadInterrupted { received } => {
                if awaiting != Awaiting::Download {
                    return Err(EventError::NoDownload);
                }
                self.download_retry(now, Some(received), None);
            }
            Event::DownloadFailed { http_status } => {
                if awaiting != Awaiting::Download {
                    return Err(EventError::NoDownload);
                }
                match http_status {
                    Some(s) if (400..500).contains(&s) && s != 408 && s != 429 => {
                        self.fail_artifact(reason::DOWNLOAD_FAILED, "HTTP", Some(s), "");
                    }
                    s => self.download_retry(now, None, s),
                }
            }
            Event::Verified => {
                if awaiting != Awaiting::Verify {
                    return Err(EventError::NoVerify);
                }
                if let Some(c) = self.job().and_then(|j| j.verify_cursor) {
                    if let Some(j) = self.job_mut() {
                        j.awaiting = Awaiting::Nothing;
                        j.verify_cursor = Some(c.saturating_add(1));
                    }
                    self.reverify_next();
                    return Ok(());
                }
                if let Some(j) = self.job_mut() {
                    j.awaiting = Awaiting::Nothing;
                    j.rec.next_artifact = j.rec.next_artifact.saturating_add(1);
                    j.rec.resume_offset = 0;
                    j.dl_retries = 0;
                    j.resume_from = None;
                    j.last_step = 0;
                }
                self.push(Act::Persist);
                self.advance();
            }
            Event::VerifyFailed { reason } => {
                if awaiting != Awaiting::Verify {
                    return Err(EventError::NoVerify);
                }
                if let Some(j) = self.job_mut()
                    && let Some(c) = j.verify_cursor.take()
                {
                    // a stored artifact did not survive the reboot: download again from there
                    j.awaiting = Awaiting::Nothing;
                    j.rec.phase = Phase::Downloading;
                    j.rec.next_artifact = c;
                    j.rec.resume_offset = 0;
                    j.resume_from = None;
                    self.push(Act::Persist);
                    self.advance();
                    return Ok(());
                }
                self.fail_artifact(reason::VERIFY_FAILED, "", None, reason);
            }
            Event::InstallProgress { percent } => {
                if awaiting != Awaiting::Install {
                    return Err(EventError::NoInstall);
                }
                self.step_progress(percent.min(100), "Installing");
            }
            Event::Installed { slot } => {
                if awaiting != Awaiting::Install {
                    return Err(EventError::NoInstall);
                }
                let slot = match slot.map(crate::record::bootname).transpose() {
                    Ok(s) => s,
                    Err(e) => {
                        // the slot is written but cannot be judged after the reboot: say so now
                        let mut text: String<MAX_REASON_LEN> = String::new();
                        let _ = cat(
                            &mut text,
                            &[
                                reason::text(reason::INSTALL_FAILED),
                                ": RAUC's bootname of the installed slot is unusable (",
                            ],
                        );
                        let _ = cat(&mut text, &[Num::dec(e.len as u64).as_str(), " bytes)"]);
                        self.finish(false, reason::INSTALL_FAILED, Some(&text));
                        return Err(EventError::BadBootname(e));
                    }
                };
                self.installed(slot);
            }
            Event::HealthChecked { passed } => self.on_health(passed)?,
            Event::SlotMarked { ok } => self.on_marked(ok)?,
            Event::InstallFailed { reason } => {
                if awaiting != Awaiting::Install {
                    return Err(EventError::NoInstall);
                }
                let mut text: String<MAX_REASON_LEN> = String::new();
                let _ = cat(&mut text, &[reason::text(reason::INSTALL_FAILED)]);
                if let Some(c) = self.current_chunk() {
                    let _ = cat(
                        &mut text,
                        &[" (", &c.part, " ", &c.name, " ", &c.version, "): "],
                    );
                } else {
                    let _ = text.push_str(": ");
                }
                push_clean(&mut text, reason);
                let code = if self.current_chunk().map(|c| c.kind) == Some(InstallKind::ConfigHook)
                {
                    reason::CONFIG_HOOK
                } else {
                    reason::INSTALL_FAILED
                };
                self.finish(false, code, Some(&text));
            }
            Event::ConfirmationAnswer { .. } => {}
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // outputs

    /// The next action for the shell, `None` when there is none.
    pub fn poll_action(&mut self) -> Option<Action<'_>> {
        loop {
            let act = self.actions.pop_front()?;
            // materialize; skip items that no longer apply
            let ok = match act {
                Act::Persist => self.job().is_some(),
                Act::Download | Act::Verify => self.current_artifact().is_some(),
                Act::Install => self.current_chunk().is_some(),
                Act::Reboot => self.job().is_some(),
                _ => true,
            };
            if !ok {
                continue;
            }
            return self.materialize(act);
        }
    }

    fn materialize(&mut self, act: Act) -> Option<Action<'_>> {
        Some(match act {
            Act::Persist => {
                if !self.job.active {
                    return None;
                }
                let bytes = self.job.rec.encode(&mut self.record_buf).ok()?;
                Action::PersistRecord(bytes)
            }
            Act::ClearRecord => Action::ClearRecord,
            Act::Download | Act::Verify => {
                let j = self.job()?;
                let idx = j.artifact_index();
                let a = j.artifacts.get(usize::from(idx))?;
                let r = ArtifactRef {
                    action: j.id(),
                    chunk: a.chunk,
                    artifact: idx,
                    url: j.text(a.url),
                    authorization: if self.send_auth_on_download {
                        self.auth.as_deref()
                    } else {
                        None
                    },
                    filename: j.text(a.filename),
                    size: a.size,
                    sha256: a.sha256,
                    sha1: a.sha1,
                    md5: a.md5,
                    range_start: if matches!(act, Act::Download) {
                        j.resume_from
                    } else {
                        None
                    },
                };
                if matches!(act, Act::Download) {
                    Action::Download(r)
                } else {
                    Action::Verify(r)
                }
            }
            Act::Install => {
                let j = self.job()?;
                let ci = *j.order.get(usize::from(j.rec.next_chunk))?;
                let c = j.chunks.get(usize::from(ci))?;
                let r = InstallRef {
                    action: j.id(),
                    chunk: ci,
                    part: &c.part,
                    kind: c.kind,
                    name: &c.name,
                    version: &c.version,
                    encrypted: c.encrypted,
                    first_artifact: c.first_artifact,
                    artifact_count: c.artifact_count,
                    attempt: j.rec.attempt,
                };
                if c.kind == InstallKind::ConfigHook {
                    Action::RunConfigHook(r)
                } else {
                    Action::Install(r)
                }
            }
            Act::Reboot => {
                let j = self.job()?;
                Action::Reboot {
                    action: j.id(),
                    target_slot: j.rec.target_slot.as_deref(),
                    reason: RebootReason::Update,
                }
            }
            // (the job may be closed by now; its record still names the slot)
            Act::ReturnReboot(action) => Action::Reboot {
                action,
                target_slot: self.job.rec.from_slot.as_deref(),
                reason: RebootReason::ReturnToPrevious,
            },
            Act::CheckHealth => Action::CheckHealth,
            Act::Mark(mark, which) => Action::MarkSlot {
                bootname: self.slot_name(which)?,
                mark,
            },
            Act::Remember(reject) => Action::RememberRejected(if reject {
                self.job.rec.target_slot.as_deref()
            } else {
                None
            }),
            Act::Abort(action) => Action::AbortDownload { action },
            Act::Ask(action) => Action::AskConfirmation { action },
            Act::AttributesRequested => Action::AttributesRequested,
            Act::Telemetry(t) => Action::Telemetry(t),
            Act::Warning(w) => Action::Warning(w),
            Act::Stopped(s) => Action::Stopped(s),
        })
    }

    /// The next HTTP request, with its body written into `buf` (give it
    /// [`REQUEST_BUF_LEN`] bytes). `None` while a request is in flight, while backing off,
    /// or when there is nothing to send.
    pub fn poll_request<'a>(
        &'a mut self,
        now: Instant,
        buf: &'a mut [u8],
    ) -> Result<Option<Request<'a>>, RequestError> {
        if self.stop != Stop::Running
            || self.in_flight.is_some()
            || now < self.not_before
            || self.boot_stage != boot::Stage::Idle
        {
            return Ok(None);
        }
        let Some(what) = self.next_request() else {
            return Ok(None);
        };
        self.url.clear();
        let (kind, method, len) = self.build(what, buf)?;
        self.in_flight = Some(what);
        if let (InFlight::Progress | InFlight::Fetch(Fetch::Deployment), Some(j)) =
            (what, self.job_mut())
        {
            j.rec.status_entries = j.rec.status_entries.saturating_add(1);
        }
        let this: &'a Self = self;
        let body: &'a [u8] = buf.get(..len).unwrap_or(&[]);
        Ok(Some(Request {
            kind,
            method,
            url: if matches!(what, InFlight::Fetch(_)) {
                &this.link
            } else {
                &this.url
            },
            authorization: this.auth.as_deref(),
            if_none_match: if what == InFlight::Poll && !this.etag.is_empty() {
                Some(&this.etag)
            } else {
                None
            },
            content_type: if len > 0 || method != Method::Get {
                Some("application/json")
            } else {
                None
            },
            body,
        }))
    }

    // -----------------------------------------------------------------------------------------
    // internals: requests

    fn has_pending_request(&self) -> bool {
        self.next_request().is_some()
    }

    fn next_request(&self) -> Option<InFlight> {
        if self.final_fb.is_some() {
            Some(InFlight::Final)
        } else if self.cancel_reply.is_some() {
            Some(InFlight::CancelReply)
        } else if self.confirm_reply.is_some() {
            Some(InFlight::ConfirmReply)
        } else if self.installed_base.is_some() && !self.installed_base_held {
            Some(InFlight::InstalledBase)
        } else if let Some(f) = self.fetch {
            Some(InFlight::Fetch(f))
        } else if self.progress_fb.is_some() && self.progress_allowed() {
            Some(InFlight::Progress)
        } else if self.config_due && !self.attrs.is_empty() {
            Some(InFlight::ConfigData)
        } else if self.poll_due {
            Some(InFlight::Poll)
        } else {
            None
        }
    }

    fn is_feedback(&self, k: InFlight) -> bool {
        matches!(
            k,
            InFlight::Final
                | InFlight::Progress
                | InFlight::CancelReply
                | InFlight::ConfirmReply
                | InFlight::ConfigData
                | InFlight::InstalledBase
        )
    }

    fn build(
        &mut self,
        what: InFlight,
        buf: &mut [u8],
    ) -> Result<(RequestKind, Method, usize), RequestError> {
        let cap = buf.len();
        let too_small = |_| RequestError::BufferTooSmall { capacity: cap };
        let fb_err = |e: ddi::FeedbackError| match e {
            ddi::FeedbackError::Write(_) => RequestError::BufferTooSmall { capacity: cap },
            // our own feedback texts always pass the checks
            _ => RequestError::BufferTooSmall { capacity: cap },
        };
        let base = self.controller_url.as_str();
        let url = &mut self.url;
        let u = |r: Result<(), ()>| r.map_err(|()| RequestError::UrlTooLong);
        Ok(match what {
            InFlight::Poll => {
                u(cat(url, &[base]))?;
                (RequestKind::Poll, Method::Get, 0)
            }
            InFlight::Fetch(f) => {
                let kind = match f {
                    Fetch::Deployment => RequestKind::DeploymentBase,
                    Fetch::Cancel => RequestKind::CancelAction,
                    Fetch::Confirmation => RequestKind::ConfirmationBase,
                };
                (kind, Method::Get, 0)
            }
            InFlight::Final => {
                let f = self.final_fb.as_ref().ok_or(RequestError::UrlTooLong)?;
                let id = Num::dec(f.action.0);
                u(cat(
                    url,
                    &[base, "/deploymentBase/", id.as_str(), "/feedback"],
                ))?;
                let details: [&str; 1] = [&f.text];
                let n = ActionFeedback {
                    timestamp: None,
                    execution: f.execution,
                    finished: if f.success {
                        Finished::Success
                    } else {
                        Finished::Failure
                    },
                    progress: None,
                    code: None,
                    details: if f.text.is_empty() { &[] } else { &details },
                }
                .write(buf)
                .map_err(fb_err)?;
                (RequestKind::Feedback, Method::Post, n)
            }
            InFlight::Progress => {
                let p = self.progress_fb.as_ref().ok_or(RequestError::UrlTooLong)?;
                let id = Num::dec(p.action.0);
                u(cat(
                    url,
                    &[base, "/deploymentBase/", id.as_str(), "/feedback"],
                ))?;
                let details: [&str; 1] = [&p.text];
                let n = ActionFeedback {
                    timestamp: None,
                    execution: Execution::Proceeding,
                    finished: Finished::None,
                    progress: Some(Progress {
                        cnt: p.cnt,
                        of: Some(p.of),
                    }),
                    code: None,
                    details: &details,
                }
                .write(buf)
                .map_err(fb_err)?;
                (RequestKind::Feedback, Method::Post, n)
            }
            InFlight::CancelReply => {
                let (_, id, reply) = self.cancel_reply.ok_or(RequestError::UrlTooLong)?;
                let id = Num::dec(id.0);
                u(cat(
                    url,
                    &[base, "/cancelAction/", id.as_str(), "/feedback"],
                ))?;
                let text = match reply {
                    CancelReply::Accepted => "Cancel accepted, download aborted",
                    CancelReply::Rejected => "Cancel rejected: installation already started",
                    CancelReply::Failed => "Cancel failed",
                };
                let n = CancelFeedback {
                    timestamp: None,
                    reply,
                    code: None,
                    details: &[text],
                }
                .write(buf)
                .map_err(fb_err)?;
                (RequestKind::CancelFeedback, Method::Post, n)
            }
            InFlight::ConfirmReply => {
                let (_, id, c) = self.confirm_reply.ok_or(RequestError::UrlTooLong)?;
                let id = Num::dec(id.0);
                u(cat(
                    url,
                    &[base, "/confirmationBase/", id.as_str(), "/feedback"],
                ))?;
                let text = match (c, self.confirmation) {
                    (Confirmation::Confirmed, ConfirmationPolicy::Auto) => "Confirmed by policy",
                    (Confirmation::Confirmed, _) => "Confirmed by user",
                    (Confirmation::Denied, _) => "Denied by user",
                };
                let n = ConfirmationFeedback {
                    confirmation: c,
                    code: None,
                    details: &[text],
                }
                .write(buf)
                .map_err(fb_err)?;
                (RequestKind::ConfirmationFeedback, Method::Post, n)
            }
            InFlight::ConfigData => {
                u(cat(url, &[base, "/configData"]))?;
                let n = self.attrs.len();
                buf.get_mut(..n)
                    .ok_or(RequestError::BufferTooSmall { capacity: cap })?
                    .copy_from_slice(&self.attrs);
                (RequestKind::ConfigData, Method::Put, n)
            }
            InFlight::InstalledBase => {
                let (name, version) = self
                    .installed_base
                    .as_ref()
                    .ok_or(RequestError::UrlTooLong)?;
                u(cat(url, &[base, "/installedBase"]))?;
                let n = InstalledBase { name, version }
                    .write(buf)
                    .map_err(too_small)?;
                (RequestKind::InstalledBase, Method::Put, n)
            }
        })
    }

    fn next_rand(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn jitter(&mut self, d: Duration, pct: u64) -> Duration {
        let span = d.as_millis() / 100 * pct + (d.as_millis() % 100) * pct / 100;
        if span == 0 {
            return d;
        }
        // pct ≤ 100, so span ≤ d: no underflow; saturate at the far end of time
        let off = self.next_rand() % span.saturating_mul(2).saturating_add(1);
        Duration::from_millis((d.as_millis() - span).saturating_add(off))
    }

    fn schedule_poll(&mut self, now: Instant) {
        let mut d = self
            .poll_override
            .unwrap_or_else(|| self.server_sleep.clamp_to(self.poll_min, self.poll_max));
        let active = self.job().is_some_and(|j| {
            j.awaiting != Awaiting::Nothing || matches!(j.rec.phase, Phase::Installing)
        });
        if active && self.poll_override.is_none() {
            d = d.min(self.active_poll);
        }
        let d = self.jitter(d, u64::from(self.jitter_percent));
        self.poll_due = false;
        self.next_poll = Some(now + d);
    }

    /// An action became active: poll at most `active_poll_interval` from now (to see cancels).
    fn tighten_poll(&mut self) {
        if self.poll_override.is_some() || self.poll_due {
            return;
        }
        let d = self.jitter(self.active_poll, u64::from(self.jitter_percent));
        let t = self.last_now + d;
        if self.next_poll.is_none_or(|n| n > t) {
            self.next_poll = Some(t);
        }
    }

    fn back_off(&mut self, now: Instant) {
        let exp = self.failures.min(20);
        let d = self
            .backoff_initial
            .saturating_mul(1u64 << exp)
            .clamp_to(self.backoff_initial, self.backoff_max);
        // jitter: 50–100 % of the capped delay
        let half = Duration::from_millis(d.as_millis() / 2);
        let extra = if half.as_millis() == 0 {
            0
        } else {
            self.next_rand() % (half.as_millis() + 1)
        };
        self.failures = self.failures.saturating_add(1);
        self.not_before = now + half + Duration::from_millis(extra);
    }

    fn ok(&mut self, _now: Instant) {
        self.failures = 0;
    }

    fn refused(&mut self, request: RequestKind, status: u16) {
        self.push(Act::Warning(Warning::Refused { request, status }));
    }

    fn push(&mut self, a: Act) {
        if matches!(a, Act::Persist) && matches!(self.actions.back(), Some(Act::Persist)) {
            return;
        }
        if self.actions.push_back(a).is_err() {
            // Drop the oldest informational item to make room; never drop work items.
            let len = self.actions.len();
            let mut dropped = false;
            for _ in 0..len {
                if let Some(x) = self.actions.pop_front() {
                    if !dropped && matches!(x, Act::Telemetry(_) | Act::Warning(_)) {
                        dropped = true;
                        continue;
                    }
                    let _ = self.actions.push_back(x);
                }
            }
            if self.actions.push_back(a).is_err() {
                // queue full of work items: cannot happen with ACTION_QUEUE_LEN ≥ 8
            }
        }
    }

    fn telemetry(&mut self, phase: TelemetryPhase, percent: Option<u8>) {
        let action = self.current_action();
        self.push(Act::Telemetry(Telemetry {
            action,
            phase,
            percent,
            failure: None,
        }));
    }

    // -----------------------------------------------------------------------------------------
    // internals: responses

    fn on_poll(&mut self, now: Instant, r: Response<'_>) {
        match r.status {
            304 => {
                self.ok(now);
            }
            200..=299 => match ddi::parse_controller_base(r.body) {
                Ok(b) => {
                    self.ok(now);
                    self.server_sleep = b.sleep;
                    self.etag.clear();
                    if let Some(e) = r.etag {
                        let _ = self.etag.push_str(e);
                        if self.etag.len() != e.len() {
                            self.etag.clear();
                        }
                    }
                    self.apply_links(&b);
                }
                Err(error) => {
                    self.push(Act::Warning(Warning::MalformedResponse {
                        request: RequestKind::Poll,
                        error,
                    }));
                    self.etag.clear();
                    self.back_off(now);
                }
            },
            s => {
                self.refused(RequestKind::Poll, s);
                self.etag.clear();
                self.back_off(now);
            }
        }
        self.schedule_poll(now);
    }

    fn set_link(&mut self, f: Fetch, href: ddi::JsonStr<'_>) {
        self.link.clear();
        if !copy_into(self.link.as_mut_view(), href) {
            self.link.clear();
            return;
        }
        self.fetch = Some(f);
    }

    fn apply_links(&mut self, b: &ddi::ControllerBase<'_>) {
        if b.config_data.is_some() {
            if self.attrs.is_empty() {
                if !self.attrs_requested {
                    self.attrs_requested = true;
                    self.push(Act::AttributesRequested);
                }
            } else {
                self.config_due = true;
            }
        }
        if self.final_fb.is_some() {
            return; // the job is finished locally; its result goes out first
        }
        if let Some(h) = b.cancel_action {
            self.set_link(Fetch::Cancel, h);
        } else if let Some(h) = b.confirmation_base {
            let hash = href_hash(h);
            if hash != self.confirm_href || self.asked.is_none() {
                self.confirm_href = hash;
                self.set_link(Fetch::Confirmation, h);
            }
        } else if let Some(h) = b.deployment_base {
            let refetch = match self.job() {
                None => true,
                Some(j) => !j.plan_valid || href_hash(h) != j.href,
            };
            if refetch {
                self.set_link(Fetch::Deployment, h);
            }
        } else if let Some(j) = self.job() {
            // no action link: the server no longer offers the action
            let gone =
                j.before_install() || (matches!(j.rec.phase, Phase::Installing) && !j.plan_valid);
            if gone {
                let id = j.id();
                self.drop_job(id, true);
            }
        }
    }

    fn drop_job(&mut self, id: ActionId, warn: bool) {
        if self.job().is_some_and(|j| j.id() == id) {
            self.job.active = false;
            self.progress_fb = None;
            self.push(Act::Abort(id));
            self.push(Act::ClearRecord);
            if warn {
                self.push(Act::Warning(Warning::ActionGone { action: id }));
            }
            self.push(Act::Telemetry(Telemetry {
                action: Some(id),
                phase: TelemetryPhase::Idle,
                percent: None,
                failure: None,
            }));
        }
    }

    fn on_fetch(&mut self, now: Instant, f: Fetch, r: Response<'_>) {
        self.fetch = None;
        self.ok(now);
        if !(200..300).contains(&r.status) {
            // 404: action no longer in that state; re-read the base poll next time
            self.etag.clear();
            let request = match f {
                Fetch::Deployment => RequestKind::DeploymentBase,
                Fetch::Cancel => RequestKind::CancelAction,
                Fetch::Confirmation => RequestKind::ConfirmationBase,
            };
            if r.status != 404 && r.status != 410 {
                self.refused(request, r.status);
            }
            return;
        }
        match f {
            Fetch::Deployment => match ddi::parse_deployment_base(r.body) {
                Ok(d) => self.on_deployment(&d),
                Err(error) => {
                    self.malformed(now, RequestKind::DeploymentBase, error);
                    self.reject_deployment(r.body, error);
                }
            },
            Fetch::Cancel => match ddi::parse_cancel_action(r.body) {
                Ok(c) => self.on_cancel(c),
                Err(error) => self.malformed(now, RequestKind::CancelAction, error),
            },
            Fetch::Confirmation => match ddi::parse_confirmation_action(r.body) {
                Ok(c) => self.on_confirmation(c.id),
                Err(error) => self.malformed(now, RequestKind::ConfirmationBase, error),
            },
        }
    }

    fn malformed(&mut self, now: Instant, request: RequestKind, error: ddi::ParseError) {
        self.push(Act::Warning(Warning::MalformedResponse { request, error }));
        self.etag.clear();
        self.back_off(now);
    }

    /// A well-formed deployment this device cannot represent (capacity, type or value error):
    /// close it as failed, naming the field, instead of re-reading it forever.
    fn reject_deployment(&mut self, body: &[u8], error: ddi::ParseError) {
        if matches!(
            error,
            ddi::ParseError::Syntax { .. } | ddi::ParseError::TooDeep { .. }
        ) {
            return; // maybe a cut transfer: retried with backoff
        }
        let Some(id) = ddi::peek_action_id(body) else {
            return;
        };
        match self.job() {
            Some(j) if j.id() != id => return,
            Some(j) if !j.before_install() => return,
            _ => {}
        }
        if !self.job.active {
            self.job.reset(id, Phase::Downloading);
        }
        self.job.plan_valid = true;
        let mut text: String<MAX_REASON_LEN> = String::new();
        let mut num = Num::dec(0);
        let [a, b, c, d] = error.describe(&mut num);
        let _ = cat(
            &mut text,
            &[
                reason::text(reason::UNSUPPORTED),
                ": deployment rejected: ",
                a,
                b,
                c,
                d,
            ],
        );
        self.finish(false, reason::UNSUPPORTED, Some(&text));
    }

    fn on_cancel(&mut self, c: ddi::CancelAction) {
        let reply = match self.job() {
            Some(j) if j.id() == c.stop_id => {
                if j.before_install() && self.final_fb.is_none() {
                    self.drop_job(c.stop_id, false);
                    self.last_failure = Some((Live::Yes, Failure::Canceled));
                    self.push(Act::Telemetry(Telemetry {
                        action: Some(c.stop_id),
                        phase: TelemetryPhase::Canceled,
                        percent: None,
                        failure: Some(Failure::Canceled),
                    }));
                    CancelReply::Accepted
                } else {
                    CancelReply::Rejected
                }
            }
            _ => CancelReply::Accepted,
        };
        self.cancel_reply = Some((Live::Yes, c.id, reply));
    }

    fn on_confirmation(&mut self, id: ActionId) {
        match self.confirmation {
            ConfirmationPolicy::Auto => {
                self.confirm_reply = Some((Live::Yes, id, Confirmation::Confirmed));
            }
            ConfirmationPolicy::AskShell => {
                if self.asked != Some(id) {
                    self.asked = Some(id);
                    self.push(Act::Ask(id));
                    self.push(Act::Telemetry(Telemetry {
                        action: Some(id),
                        phase: TelemetryPhase::WaitingConfirmation,
                        percent: None,
                        failure: None,
                    }));
                }
            }
        }
    }

    #[inline(never)]
    fn on_deployment(&mut self, d: &DeploymentBase<'_>) {
        let href = fnv1a(self.link.bytes());
        // another action while one is being installed: finish ours first
        if let Some(j) = self.job()
            && j.id() != d.id
        {
            if j.before_install() {
                let old = j.id();
                self.drop_job(old, true);
            } else {
                return;
            }
        }
        let existing_valid = self.job().is_some_and(|j| j.plan_valid);
        if existing_valid {
            // re-read (c= changed): update handling and maybe open the window
            if let Some(j) = self.job_mut() {
                j.href = href;
                j.download = d.download.unwrap_or(HandlingType::Forced);
                j.update = d.update.unwrap_or(HandlingType::Forced);
                j.window = d.maintenance_window;
            }
            if self
                .job()
                .is_some_and(|j| j.rec.phase == Phase::AwaitingWindow)
            {
                self.after_downloads();
            } else if self.job().is_some_and(|j| {
                j.rec.phase == Phase::Downloading
                    && j.awaiting == Awaiting::Nothing
                    && j.resume_at.is_none()
            }) {
                self.advance();
            }
            return;
        }
        let fresh = self.job().is_none();
        if !self.job.active {
            self.job.reset(d.id, Phase::Downloading);
        }
        let job = &mut self.job;
        job.href = href;
        job.download = d.download.unwrap_or(HandlingType::Forced);
        job.update = d.update.unwrap_or(HandlingType::Forced);
        job.window = d.maintenance_window;
        if let Err(e) = fill_plan(job, d) {
            job.plan_valid = true;
            let text = plan_error_text(e, d);
            self.finish(false, reason::UNSUPPORTED, Some(&text));
            return;
        }
        job.plan_valid = true;
        if fresh {
            // the GET that brought this document logged RETRIEVED
            job.rec.status_entries = job.rec.status_entries.saturating_add(1);
            job.rec.from_version = record_version(&self.running_version);
            let to = job
                .chunks
                .iter()
                .find(|c| c.kind == InstallKind::RaucReboot)
                .or(job.chunks.first())
                .map(|c| record_version(&c.version))
                .unwrap_or_default();
            job.rec.to_version = to;
            self.push(Act::Persist);
            let n = self.job().map_or(0, |j| j.artifacts.len());
            let mut text: String<96> = String::new();
            let _ = cat(
                &mut text,
                &["Downloading ", Num::dec(n as u64).as_str(), " artifact(s)"],
            );
            self.queue_progress(0, 100, text);
        }
        if !fresh && let Some(j) = self.job_mut() {
            if j.rec.phase == Phase::Downloading && j.rec.resume_offset > 0 {
                j.resume_from = Some(j.rec.resume_offset);
            }
            // restored from the record: first re-verify what the shell stored before the reboot
            let end = match j.rec.phase {
                Phase::Downloading => j.rec.next_artifact,
                _ => u8::try_from(j.artifacts.len()).unwrap_or(u8::MAX),
            };
            if end > 0 {
                j.verify_cursor = Some(0);
                j.verify_end = end;
                self.reverify_next();
                return;
            }
        }
        self.continue_phase();
    }

    /// Go on in the recorded phase (after a restore, once the stored artifacts re-verified).
    fn continue_phase(&mut self) {
        if self
            .job()
            .is_some_and(|j| j.rec.phase == Phase::AwaitingWindow)
        {
            self.after_downloads();
        } else {
            // Downloading, or Installing after a power cut during the install
            self.advance();
        }
    }

    fn reverify_next(&mut self) {
        let Some(j) = self.job_mut() else { return };
        match j.verify_cursor {
            Some(c) if c < j.verify_end => {
                j.awaiting = Awaiting::Verify;
                self.push(Act::Verify);
            }
            Some(_) => {
                j.verify_cursor = None;
                self.continue_phase();
            }
            None => {}
        }
    }

    fn on_final(&mut self, now: Instant, status: u16) {
        let Some(id) = self.final_fb.as_ref().map(|f| f.action) else {
            return;
        };
        if status == 429 {
            // a final `closed` is exempt from the status quota: this is the DoS filter
            self.back_off(now);
            return;
        }
        self.ok(now);
        if status == 410 {
            self.push(Act::Warning(Warning::ActionGone { action: id }));
        } else if !(200..300).contains(&status) && status != 404 {
            self.refused(RequestKind::Feedback, status);
        }
        self.final_fb = None;
        if self.job().is_some_and(|j| j.id() == id) {
            self.job.active = false;
            self.push(Act::ClearRecord);
        }
        if self.return_reboot.take().is_some() {
            self.push_return_reboot();
        }
        self.etag.clear();
        self.poll_due = true;
    }

    fn on_progress(&mut self, now: Instant, status: u16) {
        let id = self.progress_fb.as_ref().map(|p| p.action);
        self.progress_fb = None;
        match status {
            200..=299 => self.ok(now),
            429 | 403 => {
                // quota: stop intermediate feedback for this action, no retry
                if let (Some(j), Some(id)) = (self.job_mut(), id)
                    && j.id() == id
                {
                    j.quota_exhausted = true;
                }
                if let Some(id) = id {
                    self.push(Act::Warning(Warning::QuotaExceeded { action: id }));
                }
            }
            410 => {
                if let Some(id) = id {
                    self.drop_job(id, true);
                }
            }
            s => self.refused(RequestKind::Feedback, s),
        }
    }

    // -----------------------------------------------------------------------------------------
    // internals: job progress

    fn current_artifact(&self) -> Option<&ArtifactPlan> {
        let j = self.job()?;
        if !j.plan_valid {
            return None;
        }
        j.artifacts.get(usize::from(j.artifact_index()))
    }

    fn current_chunk(&self) -> Option<&ChunkPlan> {
        let j = self.job()?;
        if !j.plan_valid {
            return None;
        }
        let ci = *j.order.get(usize::from(j.rec.next_chunk))?;
        j.chunks.get(usize::from(ci))
    }

    /// Whether one more intermediate feedback fits the budget (keeping one entry spare for a
    /// re-read of the deployment).
    fn progress_allowed(&self) -> bool {
        self.job().is_some_and(|j| {
            !j.quota_exhausted && j.rec.status_entries.saturating_add(2) <= self.budget
        })
    }

    fn queue_progress(&mut self, cnt: u32, of: u32, text: String<96>) {
        if !self.progress_allowed() {
            return;
        }
        let Some(j) = self.job() else { return };
        self.progress_fb = Some(ProgressFb {
            action: j.id(),
            cnt,
            of,
            text,
        });
    }

    /// Report progress when `pct` crossed into a new `progress_step_percent` bucket; returns
    /// whether it did.
    fn step_progress(&mut self, pct: u8, what: &str) -> bool {
        let step = self.step_percent.max(1); // ≥ 1 once configured
        let Some(j) = self.job_mut() else {
            return false;
        };
        let bucket = pct / step;
        if bucket <= j.last_step {
            return false;
        }
        j.last_step = bucket;
        let mut text: String<96> = String::new();
        let _ = cat(&mut text, &[what, ": ", Num::dec(pct.into()).as_str(), "%"]);
        self.queue_progress(u32::from(pct), 100, text);
        let phase = if what == "Installing" {
            TelemetryPhase::Installing
        } else {
            TelemetryPhase::Downloading
        };
        self.telemetry(phase, Some(pct));
        true
    }

    fn start_download(&mut self) {
        let Some(j) = self.job_mut() else { return };
        if !j.plan_valid || j.rec.phase != Phase::Downloading {
            return;
        }
        if j.resume_from.is_none() {
            // a full GET logs a DOWNLOAD status entry server-side
            j.rec.status_entries = j.rec.status_entries.saturating_add(1);
        }
        j.awaiting = Awaiting::Download;
        self.push(Act::Download);
        self.tighten_poll();
    }

    fn download_retry(&mut self, now: Instant, received: Option<u64>, status: Option<u16>) {
        let retries = self.download_retries;
        let (initial, max) = (self.backoff_initial, self.backoff_max);
        let Some(j) = self.job_mut() else { return };
        if j.dl_retries >= retries {
            let (what, code) = match status {
                Some(s) => ("HTTP", Some(s)),
                None => ("interrupted", None),
            };
            self.fail_artifact(reason::DOWNLOAD_FAILED, what, code, "too many retries");
            return;
        }
        if let Some(r) = received.filter(|&r| r > 0) {
            j.resume_from = Some(r);
            j.rec.resume_offset = r;
        }
        if status == Some(416) {
            // range not satisfiable: our offset is wrong, start the artifact over
            j.resume_from = None;
            j.rec.resume_offset = 0;
        }
        let d = initial
            .saturating_mul(1u64 << j.dl_retries.min(20))
            .clamp_to(initial, max);
        j.dl_retries += 1;
        j.awaiting = Awaiting::Nothing;
        let d = self.jitter(d, 20);
        if let Some(j) = self.job_mut() {
            j.resume_at = Some(now + d);
        }
    }

    fn fail_artifact(&mut self, code: u8, what: &str, status: Option<u16>, detail: &str) {
        let mut text: String<MAX_REASON_LEN> = String::new();
        let _ = cat(&mut text, &[reason::text(code)]);
        if let (Some(a), Some(j)) = (self.current_artifact(), self.job()) {
            let _ = cat(&mut text, &[" for ", j.text(a.filename)]);
        }
        if !what.is_empty() {
            let _ = cat(&mut text, &[": ", what]);
        }
        if let Some(s) = status {
            let _ = cat(&mut text, &[" ", Num::dec(s.into()).as_str()]);
        }
        if !detail.is_empty() {
            let _ = text.push_str(": ");
            push_clean(&mut text, detail);
        }
        self.finish(false, code, Some(&text));
    }

    /// Decide the next step of the job.
    fn advance(&mut self) {
        let Some(j) = self.job() else { return };
        if !j.plan_valid || self.final_fb.is_some() || j.verify_cursor.is_some() {
            return;
        }
        match j.rec.phase {
            Phase::Downloading => {
                if j.download == HandlingType::Skip {
                    return; // wait until the server changes its mind
                }
                if usize::from(j.rec.next_artifact) < j.artifacts.len() {
                    if j.awaiting == Awaiting::Nothing && j.resume_at.is_none() {
                        self.telemetry(TelemetryPhase::Downloading, Some(0));
                        self.start_download();
                    }
                } else {
                    self.after_downloads();
                }
            }
            Phase::Installing => {
                if usize::from(j.rec.next_chunk) < j.order.len() {
                    if j.awaiting == Awaiting::Nothing {
                        if let Some(j) = self.job_mut() {
                            j.rec.attempt = j.rec.attempt.saturating_add(1);
                            j.awaiting = Awaiting::Install;
                            j.last_step = 0;
                        }
                        self.push(Act::Persist);
                        self.telemetry(TelemetryPhase::Installing, Some(0));
                        self.push(Act::Install);
                        self.tighten_poll();
                    }
                } else {
                    self.finish(true, reason::INSTALLED, None);
                }
            }
            Phase::AwaitingWindow | Phase::Rebooting | Phase::Reporting { .. } => {}
        }
    }

    fn after_downloads(&mut self) {
        let Some(j) = self.job_mut() else { return };
        let window_closed =
            j.update == HandlingType::Skip || j.window == Some(MaintenanceWindow::Unavailable);
        if window_closed {
            if j.window.is_some() {
                if j.rec.phase != Phase::AwaitingWindow {
                    j.rec.phase = Phase::AwaitingWindow;
                    self.push(Act::Persist);
                    self.telemetry(TelemetryPhase::AwaitingWindow, None);
                    let mut text: String<96> = String::new();
                    let _ = text.push_str("Downloaded, waiting for the maintenance window");
                    self.queue_progress(100, 100, text);
                }
            } else {
                // download-only
                self.finish(true, reason::DOWNLOADED, None);
            }
            return;
        }
        j.rec.phase = Phase::Installing;
        j.rec.next_chunk = 0;
        j.rec.attempt = 0;
        j.awaiting = Awaiting::Nothing;
        self.advance();
    }

    fn installed(&mut self, slot: Option<Bootname>) {
        let kind = self.current_chunk().map(|c| c.kind);
        let from = self.booted.clone();
        let Some(j) = self.job_mut() else { return };
        j.awaiting = Awaiting::Nothing;
        if kind == Some(InstallKind::RaucReboot) {
            j.rec.target_slot = slot;
            j.rec.from_slot = from;
            // from here `attempt` counts starts that could not tell the booted slot
            j.rec.attempt = 0;
            j.rec.phase = Phase::Rebooting;
            self.push(Act::Persist);
            self.telemetry(TelemetryPhase::Rebooting, None);
            self.push(Act::Reboot);
            return;
        }
        j.rec.next_chunk = j.rec.next_chunk.saturating_add(1);
        j.rec.attempt = 0;
        self.push(Act::Persist);
        self.advance();
    }

    fn finish(&mut self, success: bool, code: u8, text: Option<&str>) {
        let exec = if code == reason::DOWNLOADED {
            Execution::Downloaded
        } else {
            Execution::Closed
        };
        if let Some(j) = self.job_mut() {
            j.rec.phase = Phase::Reporting {
                success,
                reason: code,
            };
            j.awaiting = Awaiting::Nothing;
            j.resume_at = None;
        }
        self.progress_fb = None;
        self.push(Act::Persist);
        let failure = if success { None } else { reason::failure(code) };
        self.last_failure = failure.map(|f| (Live::Yes, f));
        let action = self.current_action();
        self.push(Act::Telemetry(Telemetry {
            action,
            phase: if exec == Execution::Downloaded {
                TelemetryPhase::Downloaded
            } else if success {
                TelemetryPhase::Succeeded
            } else {
                TelemetryPhase::Failed
            },
            percent: None,
            failure,
        }));
        self.set_final(exec, success, code, text);
    }

    fn set_final(&mut self, execution: Execution, success: bool, code: u8, text: Option<&str>) {
        let Some(id) = self.current_action() else {
            return;
        };
        let mut t: String<MAX_REASON_LEN> = String::new();
        push_clean(&mut t, text.unwrap_or(reason::text(code)));
        self.final_fb = Some(FinalFb {
            _live: Live::Yes,
            action: id,
            execution,
            success,
            text: t,
        });
    }
}

fn percent(received: u64, size: u64) -> u8 {
    if size == 0 {
        return 100;
    }
    let p = (u128::from(received.min(size)) * 100 / u128::from(size)) as u8;
    p.min(100)
}

#[derive(Debug, Clone, Copy)]
enum PlanError {
    NoChunks,
    TooManyChunks(usize),
    TooLong(&'static str),
    UnknownPart(usize),
    MultipleOs,
    NoDownloadLink(usize, usize),
    TooManyArtifacts,
}

fn plan_error_text(e: PlanError, d: &DeploymentBase<'_>) -> String<MAX_REASON_LEN> {
    let mut t: String<MAX_REASON_LEN> = String::new();
    let _ = cat(&mut t, &[reason::text(reason::UNSUPPORTED), ": "]);
    let mut name: String<MAX_PLAN_NAME_LEN> = String::new();
    let _ = match e {
        PlanError::NoChunks => cat(&mut t, &["no chunks"]),
        PlanError::TooManyChunks(n) => cat(
            &mut t,
            &[
                Num::dec(n as u64).as_str(),
                " chunks, at most ",
                Num::dec(MAX_PLAN_CHUNKS as u64).as_str(),
                " supported",
            ],
        ),
        PlanError::TooLong(what) => cat(&mut t, &[what, " too long"]),
        PlanError::UnknownPart(ci) => {
            if let Some(c) = d.chunk(ci) {
                for ch in c.part.chars().take(MAX_PLAN_NAME_LEN / 4) {
                    let _ = name.push(ch);
                }
            }
            let mut clean: String<MAX_PLAN_NAME_LEN> = String::new();
            push_clean(&mut clean, &name);
            cat(&mut t, &["unknown chunk part `", &clean, "`"])
        }
        PlanError::MultipleOs => cat(&mut t, &["more than one `os` chunk"]),
        PlanError::NoDownloadLink(ci, ai) => {
            if let Some(a) = d.chunk(ci).and_then(|c| c.artifacts().nth(ai)) {
                for ch in a.filename.chars().take(MAX_PLAN_NAME_LEN / 4) {
                    let _ = name.push(ch);
                }
            }
            let mut clean: String<MAX_PLAN_NAME_LEN> = String::new();
            push_clean(&mut clean, &name);
            cat(&mut t, &["artifact ", &clean, " has no download link"])
        }
        PlanError::TooManyArtifacts => cat(
            &mut t,
            &[
                "more than ",
                Num::dec(MAX_PLAN_ARTIFACTS as u64).as_str(),
                " artifacts",
            ],
        ),
    };
    t
}

/// Copy the deployment into the job's plan.
#[inline(never)]
fn fill_plan(job: &mut Job, d: &DeploymentBase<'_>) -> Result<(), PlanError> {
    job.chunks.clear();
    job.artifacts.clear();
    job.text.clear();
    job.order.clear();
    if d.chunk_count() == 0 {
        return Err(PlanError::NoChunks);
    }
    if d.chunk_count() > MAX_PLAN_CHUNKS {
        return Err(PlanError::TooManyChunks(d.chunk_count()));
    }
    let mut os = 0;
    for (ci, c) in d.chunks().enumerate() {
        let kind = [
            ("os", InstallKind::RaucReboot),
            ("application", InstallKind::RaucNoReboot),
            ("bApp", InstallKind::RaucNoReboot),
            ("config", InstallKind::ConfigHook),
        ]
        .iter()
        .find(|(k, _)| c.part.eq_str(k))
        .map(|(_, kind)| *kind)
        .ok_or(PlanError::UnknownPart(ci))?;
        // lengths checked here (a `String<MAX_PLAN_NAME_LEN>` takes exactly these), the texts are
        // copied into the pushed plan in place: no chunk-sized temporaries
        let fits = |s: ddi::JsonStr<'_>| s.decoded_len() <= MAX_PLAN_NAME_LEN;
        if !fits(c.part) {
            return Err(PlanError::TooLong("chunk part"));
        }
        if kind == InstallKind::RaucReboot {
            os += 1;
            if os > 1 {
                return Err(PlanError::MultipleOs);
            }
        }
        if !fits(c.name) {
            return Err(PlanError::TooLong("chunk name"));
        }
        if !fits(c.version) {
            return Err(PlanError::TooLong("chunk version"));
        }
        let first = job.artifacts.len() as u8;
        for (ai, a) in c.artifacts().enumerate() {
            if a.filename.decoded_len() > MAX_FILENAME_LEN {
                return Err(PlanError::TooLong("artifact file name"));
            }
            let link = a.download_url.ok_or(PlanError::NoDownloadLink(ci, ai))?;
            let filename = job
                .push_text(a.filename)
                .ok_or(PlanError::TooLong("file names and URLs together"))?;
            let url = job
                .push_text(link)
                .ok_or(PlanError::TooLong("file names and URLs together"))?;
            let plan = ArtifactPlan {
                chunk: ci as u8,
                filename,
                url,
                size: a.size,
                sha256: a.sha256,
                sha1: a.sha1,
                md5: a.md5,
            };
            job.artifacts
                .push(plan)
                .map_err(|_| PlanError::TooManyArtifacts)?;
        }
        let chunk = ChunkPlan {
            part: String::new(),
            name: String::new(),
            version: String::new(),
            kind,
            encrypted: c.encrypted,
            first_artifact: first,
            artifact_count: job.artifacts.len() as u8 - first,
        };
        job.chunks
            .push(chunk)
            .map_err(|_| PlanError::TooManyChunks(d.chunk_count()))?;
        if let Some(p) = job.chunks.last_mut() {
            // lengths checked above: these fit
            let _ = copy_into(p.part.as_mut_view(), c.part);
            let _ = copy_into(p.name.as_mut_view(), c.name);
            let _ = copy_into(p.version.as_mut_view(), c.version);
        }
    }
    // install order: config hooks, then applications, then the OS (which reboots)
    for want in [
        InstallKind::ConfigHook,
        InstallKind::RaucNoReboot,
        InstallKind::RaucReboot,
    ] {
        for (i, c) in job.chunks.iter().enumerate() {
            if c.kind == want {
                let _ = job.order.push(i as u8);
            }
        }
    }
    if usize::from(job.rec.next_artifact) > job.artifacts.len()
        || usize::from(job.rec.next_chunk) > job.order.len()
    {
        // a record from a different plan: start over
        job.rec.next_artifact = 0;
        job.rec.next_chunk = 0;
        job.rec.phase = Phase::Downloading;
    }
    Ok(())
}
#[cfg(test)]
mod size_probe {
    #[test]
    fn probe() {
        use core::mem::size_of;
        extern crate std;
        std::println!(
            "Act {} Telemetry {} Record {} Job {} Warning {} Client {} Action {}",
            size_of::<super::Act>(),
            size_of::<super::Telemetry>(),
            size_of::<crate::record::Record>(),
            size_of::<super::Job>(),
            size_of::<super::Warning>(),
            size_of::<super::Client>(),
            size_of::<super::Action>()
        );
    }
}
