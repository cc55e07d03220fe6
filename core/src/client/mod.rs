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

// One module per idea; this one keeps the `Client`, its entry points and the drain order.
mod boot; // the boot path: judge an update by the booted slot, mark slots
mod deploy; // a deployment's course: download, verify, install, reboot or finish
mod origin; // the credential rule for downloads: the server's origin or not
mod plan; // what a deployment asks for, in fixed capacity; why it cannot be planned
mod reason; // reason codes, their texts and failures; cleaning of detail texts
mod request; // which request goes out next, its URL and body
mod response; // what the server answered
mod timer; // the timer table; poll scheduling, backoff
mod types; // the public inputs and outputs

use deploy::percent;
use plan::{ArtifactPlan, Awaiting, ChunkPlan, Job};
use reason::push_clean;
use request::{Fetch, FinalFb, InFlight, ProgressFb};
use timer::{Timer, TimerTable};

pub use types::*;

use crate::ddi::{
    self, ActionId, CancelReply, ConfigData, ConfigDataError, Confirmation, Execution,
};
use crate::hash::{FNV1A64_EMPTY, fnv1a64, fnv1a64_extend};
use crate::record::{Bootname, Phase, RECORD_MAX_LEN, Record};
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
/// Longest artifact file name kept (hawkBit's 256 with the `large-capacities` feature).
#[cfg(not(feature = "large-capacities"))]
pub const MAX_FILENAME_LEN: usize = 96;
/// Longest artifact file name kept.
#[cfg(feature = "large-capacities")]
pub const MAX_FILENAME_LEN: usize = 256;
/// Longest serialized configData body kept by [`Client::set_attributes`].
pub const MAX_CONFIG_BODY_LEN: usize = 1024;
/// Bytes for all artifact file names and download URLs of one deployment together (more ⇒
/// the action fails with a reason).
#[cfg(not(feature = "large-capacities"))]
pub const MAX_PLAN_TEXT_LEN: usize = 1536;
/// Bytes for all artifact file names and download URLs of one deployment together.
#[cfg(feature = "large-capacities")]
pub const MAX_PLAN_TEXT_LEN: usize = MAX_PLAN_ARTIFACTS * (ddi::MAX_URL_LEN + MAX_FILENAME_LEN);
/// Longest failure text sent in a final feedback (longer shell reasons are cut and marked).
pub const MAX_REASON_LEN: usize = 200;
/// Capacity of the action queue.
pub const ACTION_QUEUE_LEN: usize = 16;
/// A request body buffer of this size always suffices for [`Client::poll_request`].
pub const REQUEST_BUF_LEN: usize = MAX_CONFIG_BODY_LEN + 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Persist,
    ClearRecord,
    /// Persist the record of a closed action (nothing pending, remember its id).
    PersistClosed(ActionId),
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
/// niches towards zero). This, the `= 1` discriminants of `Fetch`/`InFlight`, [`Stop`] and the
/// timer table's bit mask of armed timers keep [`Client::unconfigured`] all-zero: a `static` client is then `.bss`, not a 7 KB `.data`
/// initializer in an MCU's flash (checked by the Cortex-M4 firmware's budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Live {
    Yes = 1,
}

/// [`RunOnceFailure`] as a zero-first enum (see [`Live`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunFailure {
    None,
    Unreachable,
    Status,
    Unparsable,
}

/// Whether the client runs; [`Client::stopped`] as a zero-first enum (see [`Live`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    NotConfigured,
    Running,
    Unauthorized,
    BootedSlotUnknown,
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
    /// `installed_base` waits for the boot verdict (sent only after a fallback).
    installed_base_held: bool,
    /// The failure reported last (kind of the final feedback); `Live` keeps `None` all-zero.
    last_failure: Option<(Live, Failure)>,
    /// The action closed last (from the record across restarts): never run again.
    closed: Option<ActionId>,
    /// A stale offer of `closed` was logged once.
    closed_offer_warned: bool,
    /// The action whose confirmation already skipped the poll floor once.
    fast_poll_for: Option<ActionId>,
    /// A base poll was answered with a valid document since start.
    polled: bool,
    /// An `AskConfirmation` waits for its answer.
    answer_pending: bool,
    /// Why a run-once cannot finish, as a zero-first code and the HTTP status that goes with
    /// it (an `Option` of the public enum would not be all-zero for `None`, see [`Live`]).
    run_failure: RunFailure,
    run_failure_status: u16,

    server_sleep: Duration,
    poll_due: bool,
    etag: String<MAX_ETAG_LEN>,
    failures: u32,
    /// Every deadline: next poll, download resume, reboot back, backoff.
    timers: TimerTable,
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

/// The hash an href is remembered by: [`fnv1a64`] of its decoded text (as copied into
/// `Client::link`).
fn href_hash(h: ddi::JsonStr<'_>) -> u64 {
    let mut tmp = [0u8; 4];
    h.chars().fold(FNV1A64_EMPTY, |hash, c| {
        fnv1a64_extend(hash, c.encode_utf8(&mut tmp).as_bytes())
    })
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
            installed_base_held: false,
            last_failure: None,
            closed: None,
            closed_offer_warned: false,
            fast_poll_for: None,
            polled: false,
            answer_pending: false,
            run_failure: RunFailure::None,
            run_failure_status: 0,
            server_sleep: Duration::ZERO,
            poll_due: false,
            etag: String::new(),
            failures: 0,
            timers: TimerTable::new(),
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
        self.installed_base_held = false;
        self.last_failure = None;
        self.closed = None;
        self.closed_offer_warned = false;
        self.fast_poll_for = None;
        self.polled = false;
        self.answer_pending = false;
        self.run_failure = RunFailure::None;
        self.run_failure_status = 0;
        self.server_sleep = Duration::from_secs(300);
        self.poll_due = true;
        self.etag.clear();
        self.failures = 0;
        self.timers.clear();
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

    /// Start a new job in place; a resume delay of an earlier job does not carry over.
    fn start_job(&mut self, id: ActionId, phase: Phase) {
        self.job.reset(id, phase);
        self.timers.stop(Timer::Resume);
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

    /// How a run-once stands (one poll, then finish what it brought): the shell keeps driving
    /// the client while `Working` and exits on `Done` (with [`Client::last_failure`]'s exit
    /// code) or `Failed`. Waiting for a reboot counts as done: the next start judges it.
    pub fn run_once(&self) -> RunOnce {
        match self.run_failure {
            RunFailure::None => {}
            RunFailure::Unreachable => return RunOnce::Failed(RunOnceFailure::Unreachable),
            RunFailure::Unparsable => return RunOnce::Failed(RunOnceFailure::Unparsable),
            RunFailure::Status => {
                return RunOnce::Failed(RunOnceFailure::ServerError(self.run_failure_status));
            }
        }
        let working = !self.polled
            || self.boot_stage != boot::Stage::Idle
            || self.answer_pending
            || self.in_flight.is_some()
            || self.next_request().is_some_and(|r| r != InFlight::Poll);
        if working {
            return RunOnce::Working;
        }
        match self.job() {
            Some(j) if j.rec.phase != Phase::Rebooting => RunOnce::Working,
            _ => RunOnce::Done,
        }
    }

    fn fail_run(&mut self, f: RunOnceFailure) {
        if self.run_failure == RunFailure::None {
            (self.run_failure, self.run_failure_status) = match f {
                RunOnceFailure::ServerError(s) => (RunFailure::Status, s),
                RunOnceFailure::Unparsable => (RunFailure::Unparsable, 0),
                _ => (RunFailure::Unreachable, 0),
            };
        }
    }

    /// Why the last action failed, if it did (the [`Telemetry::failure`] of its sample).
    pub fn last_failure(&self) -> Option<Failure> {
        self.last_failure.map(|(_, f)| f)
    }

    // -----------------------------------------------------------------------------------------
    // inputs

    /// Set the attributes sent with `PUT configData` (checked now against hawkBit's rules).
    /// They are sent when the server asks for them (its `configData` link: on first contact,
    /// after every finished action, on request), as rauc-hawkbit-updater does.
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
        // answers an earlier `AttributesRequested`; else they wait until the server asks
        self.config_due = self.attrs_requested;
        self.attrs_requested = false;
        Ok(())
    }

    /// Time passed: call when `poll_timeout()` is reached (calling early is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        if self.stop != Stop::Running {
            return;
        }
        for t in Timer::ALL {
            if !self.timers.expire(t, now) {
                continue;
            }
            match t {
                Timer::Poll => self.poll_due = true,
                // the failure is still unreported: the record keeps it for the next start
                Timer::ReturnReboot => self.push_return_reboot(),
                // (a no-op once the job is gone)
                Timer::Resume => self.start_download(),
                // the held request (or poll) may go out now
                Timer::Backoff | Timer::PollFloor => {}
            }
        }
    }

    /// The next instant `handle_timeout` should be called (`None`: nothing scheduled).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stop != Stop::Running {
            return None;
        }
        let mut next: Option<Instant> = None;
        for t in Timer::ALL {
            let at = match t {
                Timer::Resume if self.job().is_none() => None,
                // only holds a poll that is due with nothing else to send
                Timer::PollFloor
                    if self.in_flight.is_none() && self.next_request() == Some(InFlight::Poll) =>
                {
                    self.timers.get(t)
                }
                Timer::PollFloor => None,
                // a held request: due when the backoff ends (already, if none runs), unless it
                // is a poll held by the poll floor (then the floor says when)
                Timer::Backoff if self.in_flight.is_none() && self.has_pending_request() => {
                    let floored = self.next_request() == Some(InFlight::Poll)
                        && self.timers.get(Timer::PollFloor).is_some();
                    if floored {
                        self.timers.get(t)
                    } else {
                        Some(self.timers.get(t).unwrap_or(Instant::ZERO))
                    }
                }
                Timer::Backoff => None,
                _ => self.timers.get(t),
            };
            if let Some(at) = at {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        next
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
        if transient && !self.polled {
            self.fail_run(RunOnceFailure::ServerError(status));
        }
        if transient {
            // the same request is retried once the backoff delay has passed; a configData PUT
            // is not: the next poll asks for it again, and polling never waits for it
            self.back_off(now);
            if kind == InFlight::ConfigData {
                self.config_due = false;
                self.refused(RequestKind::ConfigData, status);
            }
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
                    let confirmed = match self.confirm_reply {
                        Some((_, id, Confirmation::Confirmed)) => Some(id),
                        _ => None,
                    };
                    self.confirm_reply = None;
                    self.etag.clear();
                    if !(200..300).contains(&status) && status != 410 && status != 404 {
                        self.refused(RequestKind::ConfirmationFeedback, status);
                    } else if let Some(id) = confirmed.filter(|_| (200..300).contains(&status)) {
                        // the deployment comes with the next poll: now, not after `sleep` —
                        // once per action, so that no server can make a loop of it; a run-once
                        // waits for that poll
                        self.poll_due = true;
                        self.polled = false;
                        if self.fast_poll_for != Some(id) {
                            self.fast_poll_for = Some(id);
                            self.timers.stop(Timer::PollFloor);
                        }
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
        // The same request goes out again once the backoff (retry_wait, doubling) has passed;
        // a failed poll is not a reason to wait the server's whole `sleep`.
        self.back_off(now);
        if kind == InFlight::Poll || !self.polled {
            self.fail_run(RunOnceFailure::Unreachable);
        }
        if kind == InFlight::Poll {
            self.poll_due = true;
            self.timers.stop(Timer::Poll);
        }
        Ok(())
    }

    /// Feed the result of an action.
    pub fn handle_event(&mut self, now: Instant, ev: Event<'_>) -> Result<(), EventError> {
        self.last_now = now;
        if let Event::ConfirmationAnswer { action, accepted } = ev {
            self.answer_pending = false;
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
            Event::DownloadInterrupted { received, reason } => {
                if awaiting != Awaiting::Download {
                    return Err(EventError::NoDownload);
                }
                self.download_retry(now, Some(received), None, reason);
            }
            Event::DownloadFailed {
                http_status,
                reason,
            } => {
                if awaiting != Awaiting::Download {
                    return Err(EventError::NoDownload);
                }
                match http_status {
                    Some(s) if (400..500).contains(&s) && s != 408 && s != 429 => {
                        self.fail_artifact(reason::DOWNLOAD_FAILED, "HTTP", Some(s), reason);
                    }
                    s => self.download_retry(now, None, s, reason),
                }
            }
            Event::DownloadRefused { refusal, reason } => {
                if awaiting != Awaiting::Download {
                    return Err(EventError::NoDownload);
                }
                // retrying cannot help: fail at once, with its own reason and code
                let code = match refusal {
                    DownloadRefusal::FileName => reason::ARTIFACT_NAME,
                    DownloadRefusal::NoSpace => reason::NO_SPACE,
                    _ => reason::ARTIFACT_SIZE,
                };
                self.fail_artifact(code, "", None, reason);
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
            Act::PersistClosed(id) => {
                let bytes = Record::new(id, Phase::Closed)
                    .encode(&mut self.record_buf)
                    .ok()?;
                Action::PersistRecord(bytes)
            }
            Act::Download | Act::Verify => {
                let j = self.job()?;
                let idx = j.artifact_index();
                let a = j.artifacts.get(usize::from(idx))?;
                let url = j.text(a.url);
                let credentials = origin::credentials_allowed(
                    url,
                    &self.controller_url,
                    self.send_auth_on_download,
                );
                let r = ArtifactRef {
                    action: j.id(),
                    chunk: a.chunk,
                    artifact: idx,
                    url,
                    authorization: if credentials {
                        self.auth.as_deref()
                    } else {
                        None
                    },
                    credentials,
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
