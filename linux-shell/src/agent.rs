//! The main loop: `eyas_core::client::Client` ↔ HTTP ↔ RAUC ↔ record ↔ telemetry.
//!
//! The core decides everything; this loop follows its drain order after every input
//! (`poll_action` until `None`, then `poll_request`, then `poll_timeout`). Long work (downloads,
//! RAUC installs, hooks) runs in background tasks whose results come back over a channel and are
//! fed in with `handle_event`, so the core keeps polling (and notices cancels) meanwhile.
//!
//! Files: every artifact is stored as `<dir of bundle_download_location>/<artifact file name>`
//! (names that could leave the directory are refused). Success is reported by the core only
//! after the next boot: on start-up eyas reads the record, asks RAUC which slot booted, runs the
//! health check, marks the slot good, and hands that verdict to `Client::handle_boot`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eyas_core::client::{
    Action, ArtifactRef, BootReport, Client, ClientConfig, ConfirmationPolicy, Event, InstallKind,
    InstallRef, REQUEST_BUF_LEN, StopReason, Telemetry as CoreTelemetry, TelemetryPhase, Warning,
};
use eyas_core::ddi::ActionId;
use eyas_core::record::{Phase, Record, Slot};
use eyas_core::time::{Duration as CoreDuration, Instant as CoreInstant};
use eyas_core::verify::{ArtifactSpec, Policy, Verifier, is_manifest_for};
use tokio::sync::mpsc;

use crate::config::{Config, Confirmation};
use crate::download::{self, DownloadRequest, Downloaded, artifact_path, send_credentials};
use crate::http::{ApiRequest, Http, HttpError, HttpErrorKind, HttpSettings, Method};
use crate::rauc::{MarkState, Rauc};
use crate::record_store::RecordStore;
use crate::telemetry::{self, OtaStatus, Telemetry};
use crate::{hooks, service};

/// How long to wait for RAUC at start-up when an update awaits its post-reboot verdict.
const RAUC_BOOT_PATIENCE: Duration = Duration::from_secs(60);

/// Connects to RAUC, retrying every second for up to `patience`.
async fn connect_rauc(bus_address: Option<&str>, patience: Duration) -> Option<Rauc> {
    let start = std::time::Instant::now();
    loop {
        match Rauc::connect_to(bus_address).await {
            Ok(r) => return Some(r),
            Err(e) if start.elapsed() >= patience => {
                tracing::warn!("{e}");
                return None;
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
        }
    }
}

/// How long to try to report a failed health check before rebooting into the previous slot
/// (the record keeps the report for the next start).
const REBOOT_REPORT_PATIENCE: Duration = Duration::from_secs(60);

/// How long a RAUC install may take.
const INSTALL_LIMIT: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
struct OwnedArtifact {
    action: ActionId,
    artifact: u8,
    url: String,
    authorization: Option<String>,
    filename: String,
    size: u64,
    sha256: Option<[u8; 32]>,
    sha1: Option<[u8; 20]>,
    range_start: Option<u64>,
}

impl From<&ArtifactRef<'_>> for OwnedArtifact {
    fn from(a: &ArtifactRef<'_>) -> Self {
        Self {
            action: a.action,
            artifact: a.artifact,
            url: a.url.to_owned(),
            authorization: a.authorization.map(str::to_owned),
            filename: a.filename.to_owned(),
            size: a.size,
            sha256: a.sha256,
            sha1: a.sha1,
            range_start: a.range_start,
        }
    }
}

#[derive(Debug, Clone)]
struct OwnedInstall {
    action: ActionId,
    part: String,
    kind: InstallKind,
    name: String,
    version: String,
    first_artifact: u8,
    artifact_count: u8,
}

impl From<&InstallRef<'_>> for OwnedInstall {
    fn from(i: &InstallRef<'_>) -> Self {
        Self {
            action: i.action,
            part: i.part.to_owned(),
            kind: i.kind,
            name: i.name.to_owned(),
            version: i.version.to_owned(),
            first_artifact: i.first_artifact,
            artifact_count: i.artifact_count,
        }
    }
}

#[derive(Debug)]
enum Work {
    Persist(Vec<u8>),
    Clear,
    Download(OwnedArtifact),
    Abort(ActionId),
    Verify(OwnedArtifact),
    Install(OwnedInstall),
    Hook(OwnedInstall),
    Reboot(Option<Slot>),
    Ask(ActionId),
    Attributes,
    Telemetry(CoreTelemetry),
    Warning(Warning),
    Stopped(StopReason),
}

fn own(action: &Action<'_>) -> Work {
    match action {
        Action::PersistRecord(bytes) => Work::Persist(bytes.to_vec()),
        Action::ClearRecord => Work::Clear,
        Action::Download(a) => Work::Download(a.into()),
        Action::AbortDownload { action } => Work::Abort(*action),
        Action::Verify(a) => Work::Verify(a.into()),
        Action::Install(i) => Work::Install(i.into()),
        Action::RunConfigHook(i) => Work::Hook(i.into()),
        Action::Reboot { target_slot, .. } => Work::Reboot(*target_slot),
        Action::AskConfirmation { action } => Work::Ask(*action),
        Action::AttributesRequested => Work::Attributes,
        Action::Telemetry(t) => Work::Telemetry(*t),
        Action::Warning(w) => Work::Warning(*w),
        Action::Stopped(s) => Work::Stopped(*s),
    }
}

/// Results of background work.
#[derive(Debug)]
enum Done {
    DownloadProgress(u64),
    Download {
        key: (ActionId, u8),
        received: u64,
        result: Result<Box<Downloaded>, HttpError>,
    },
    InstallProgress(u8),
    Install(Result<Option<Slot>, String>),
    Confirmation(ActionId, bool),
}

/// Slot letter from a RAUC bootname.
pub fn slot_from_bootname(name: &str) -> Option<Slot> {
    match name {
        "A" | "a" => Some(Slot::A),
        "B" | "b" => Some(Slot::B),
        _ => None,
    }
}

/// The core's configuration, derived from the file.
fn client_config<'a>(
    config: &'a Config,
    server_url: &'a str,
    auth: Option<&'a str>,
) -> ClientConfig<'a> {
    let c = &config.client;
    let mut cc = ClientConfig::new(server_url, &c.tenant_id, &c.target_name);
    cc.authorization = auth;
    // The shell applies the per-host policy itself (`download::send_credentials`).
    cc.send_auth_on_download = true;
    if let Some(min) = config.eyas.poll_min {
        cc.poll_min = core_duration(min);
    }
    if let Some(max) = config.eyas.poll_max {
        cc.poll_max = core_duration(max);
    }
    // rauc-hawkbit-updater polls every 5 s while an action runs, to notice cancels.
    cc.active_poll_interval = CoreDuration::from_secs(5);
    cc.backoff_initial = core_duration(c.retry_wait.min(Duration::from_secs(5)));
    cc.backoff_max = core_duration(c.retry_wait);
    cc.download_retries = if c.resume_downloads { 10 } else { 0 };
    cc.confirmation = match config.eyas.confirmation {
        Confirmation::Auto => ConfirmationPolicy::Auto,
        Confirmation::Deny | Confirmation::Command(_) => ConfirmationPolicy::AskShell,
    };
    cc.seed = c
        .target_name
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    cc
}

fn core_duration(d: Duration) -> CoreDuration {
    CoreDuration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Options that do not come from the configuration file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `-r`: one poll, finish what it brings, exit.
    pub run_once: bool,
    /// D-Bus address instead of the system bus (tests).
    pub bus_address: Option<String>,
}

struct Agent<'c> {
    config: &'c Config,
    options: RunOptions,
    server_origin: String,
    http: Arc<Http>,
    rauc: Option<Rauc>,
    store: RecordStore,
    telemetry: Option<Telemetry>,
    download_dir: PathBuf,
    epoch: std::time::Instant,
    done_tx: mpsc::UnboundedSender<Done>,
    busy: bool,
    cancel: Arc<AtomicBool>,
    files: HashMap<(ActionId, u8), PathBuf>,
    digests: HashMap<(ActionId, u8), Downloaded>,
    specs: HashMap<(ActionId, u8), ArtifactSpec>,
    failed: bool,
    /// A base poll was answered since start (or since the last confirmation).
    polled: bool,
    /// An OS install asked for a reboot (run-once then ends).
    awaiting_reboot: bool,
    /// Why the loop must end (401, record not writable).
    halt: Option<String>,
    /// The new slot failed its health check: reboot into the previous one once the failure
    /// is reported (or at this deadline).
    reboot_after_report: Option<std::time::Instant>,
    /// Code and short reason of the last failure, for telemetry.
    last_error: Option<(u16, String)>,
    /// The current failure was already published (by `publish_failure`).
    failure_published: bool,
}

/// Runs the agent until SIGTERM (or, with `run_once`, until the first poll's work is done).
/// Returns the process exit code.
pub async fn run(config: &Config, options: RunOptions) -> u8 {
    let http = match Http::new(&HttpSettings::from_config(config)) {
        Ok(h) => Arc::new(h),
        Err(e) => {
            tracing::error!("{e}");
            return 2;
        }
    };
    let Some(location) = config.client.bundle_download_location.as_deref() else {
        tracing::error!("bundle_download_location is not set");
        return 2;
    };
    let download_dir = location
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let scheme = if config.client.ssl { "https" } else { "http" };
    let server_url = format!("{scheme}://{}", config.client.hawkbit_server);
    let auth = config.client.auth.header();
    let mut client = match Client::new(&client_config(config, &server_url, auth.as_deref())) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(
                "{}: cannot set up the DDI client: {e:?}",
                config.path.display()
            );
            return 2;
        }
    };
    let attrs: Vec<(&str, &str)> = config
        .device
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if let Err(e) = client.set_attributes(&attrs) {
        tracing::error!(
            "{}: [device] attributes are not acceptable to hawkBit: {e:?}",
            config.path.display()
        );
        return 2;
    }
    let telemetry = match &config.eyas.mqtt {
        Some(m) => match Telemetry::spawn(m, &config.client.target_name) {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!("telemetry: {e}");
                return 2;
            }
        },
        None => None,
    };
    // After an OS update the verdict needs RAUC (which slot booted, mark good): wait for it a
    // while rather than report a false fallback; otherwise RAUC is only needed for installs.
    let store = RecordStore::new(&config.eyas.record_path);
    let pending_reboot = store
        .load()
        .ok()
        .flatten()
        .and_then(|b| Record::decode(&b).ok())
        .is_some_and(|r| r.phase == Phase::Rebooting);
    let patience = if pending_reboot {
        RAUC_BOOT_PATIENCE
    } else {
        Duration::ZERO
    };
    let rauc = connect_rauc(options.bus_address.as_deref(), patience).await;
    if pending_reboot && rauc.is_none() {
        tracing::error!(
            "an update waits for its post-reboot verdict but RAUC is not reachable; exiting so that the service manager retries"
        );
        return 1;
    }
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut agent = Agent {
        config,
        options,
        server_origin: server_url,
        http,
        rauc,
        store,
        telemetry,
        download_dir,
        epoch: std::time::Instant::now(),
        done_tx,
        busy: false,
        cancel: Arc::new(AtomicBool::new(false)),
        files: HashMap::new(),
        digests: HashMap::new(),
        specs: HashMap::new(),
        failed: false,
        awaiting_reboot: false,
        polled: false,
        halt: None,
        reboot_after_report: None,
        last_error: None,
        failure_published: false,
    };
    agent.boot(&mut client).await;
    service::ready("polling hawkBit");
    if let Some(interval) = service::watchdog_interval() {
        tokio::spawn(service::watchdog(interval));
    }
    let shutdown = service::shutdown_signal();
    tokio::pin!(shutdown);
    let mut buf = vec![0u8; REQUEST_BUF_LEN];
    loop {
        agent.drain_actions(&mut client).await;
        if let Some(reason) = &agent.halt {
            tracing::error!("stopping: {reason}");
            break;
        }
        if let Some(deadline) = agent.reboot_after_report
            && (client.current_action().is_none() || std::time::Instant::now() >= deadline)
        {
            agent.reboot_after_report = None;
            agent.reboot_to_previous_slot().await;
            if agent.options.run_once {
                break;
            }
        }
        let now = agent.now();
        let request = match client.poll_request(now, &mut buf) {
            Ok(r) => r.map(|r| {
                (
                    r.kind,
                    match r.method {
                        eyas_core::client::Method::Get => Method::Get,
                        eyas_core::client::Method::Post => Method::Post,
                        eyas_core::client::Method::Put => Method::Put,
                    },
                    r.url.to_owned(),
                    r.authorization.map(str::to_owned),
                    r.if_none_match.map(str::to_owned),
                    r.body.to_vec(),
                )
            }),
            Err(e) => {
                tracing::error!("internal: the core cannot build a request: {e:?}");
                None
            }
        };
        if let Some((kind, method, url, authorization, if_none_match, body)) = request {
            tracing::debug!("{kind:?}: {method:?} {}", crate::http::redact_url(&url));
            let http = agent.http.clone();
            let task = tokio::task::spawn_blocking(move || {
                http.request(&ApiRequest {
                    method,
                    url: &url,
                    authorization: authorization.as_deref(),
                    if_none_match: if_none_match.as_deref(),
                    body: if method == Method::Get {
                        None
                    } else {
                        Some(&body)
                    },
                })
            });
            // SIGTERM is honoured even while a request is in flight.
            let result = tokio::select! {
                r = task => r,
                signal = &mut shutdown => {
                    tracing::info!("{signal}: stopping");
                    agent.reboot_after_report = None;
                    break;
                }
            };
            let now = agent.now();
            match result {
                Ok(Ok(resp)) => {
                    if resp.status == 401 {
                        tracing::error!(
                            "hawkBit answered 401 to {kind:?}: check auth_token / gateway_token"
                        );
                    } else if resp.status >= 400 {
                        tracing::warn!("hawkBit answered {} to {kind:?}", resp.status);
                    }
                    // Run-once: a server error before the poll was answered is a failed run, as
                    // an unreachable server is (not "nothing to do", and no endless retry).
                    if agent.options.run_once
                        && !agent.polled
                        && (resp.status >= 500 || resp.status == 429)
                    {
                        agent.failed = true;
                        break;
                    }
                    if matches!(kind, eyas_core::client::RequestKind::Poll) {
                        agent.polled = true;
                    }
                    let _ = client.handle_response(
                        now,
                        eyas_core::client::Response {
                            status: resp.status,
                            etag: resp.etag.as_deref(),
                            body: &resp.body,
                        },
                    );
                }
                Ok(Err(e)) => {
                    tracing::warn!("{kind:?} failed: {e}");
                    let _ = client.handle_transport_error(now);
                    if agent.options.run_once
                        && (matches!(kind, eyas_core::client::RequestKind::Poll) || !agent.polled)
                    {
                        agent.failed = true;
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!("internal: request task failed: {e}");
                    let _ = client.handle_transport_error(now);
                }
            }
            continue;
        }
        if agent.options.run_once
            && ((agent.polled && !agent.busy && client.current_action().is_none())
                || agent.awaiting_reboot)
        {
            break;
        }
        let next = client.poll_timeout();
        let mut sleep_for = next.map_or(Duration::from_secs(3600), |t| {
            Duration::from_millis(t.as_millis().saturating_sub(now.as_millis()))
        });
        if let Some(deadline) = agent.reboot_after_report {
            sleep_for =
                sleep_for.min(deadline.saturating_duration_since(std::time::Instant::now()));
        }
        tracing::debug!("next core timeout in {} ms", sleep_for.as_millis());
        tokio::select! {
            () = tokio::time::sleep(sleep_for) => {
                let now = agent.now();
                client.handle_timeout(now);
            }
            Some(done) = done_rx.recv() => agent.handle_done(&mut client, done),
            signal = &mut shutdown => {
                tracing::info!("{signal}: stopping");
                agent.reboot_after_report = None;
                break;
            }
        }
    }
    if agent.reboot_after_report.take().is_some() {
        // The failure is not reported yet (the record keeps it for the next start).
        agent.reboot_to_previous_slot().await;
    }
    service::stopping();
    agent.cancel.store(true, Ordering::Relaxed);
    if let Some(t) = &agent.telemetry {
        if !t.flush(Duration::from_secs(3)).await {
            tracing::warn!("telemetry: {} messages not delivered at exit", t.queued());
        }
        t.stop();
    }
    if agent.halt.is_some() || agent.failed {
        1
    } else {
        0
    }
}

impl Agent<'_> {
    fn now(&self) -> CoreInstant {
        CoreInstant::from_millis(
            u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX),
        )
    }

    fn publish(&self, message: &serde_json::Value) {
        if let Some(t) = &self.telemetry {
            t.send(message);
        }
    }

    /// `ota_status=failure` with its `error_code` and reason, once per failure (the core's
    /// `Failed` sample that follows is not published again).
    fn publish_failure(&mut self, code: u16, reason: &str) {
        self.publish(&telemetry::status(OtaStatus::Failure, Some((code, reason))));
        self.failure_published = true;
        self.last_error = None;
    }

    /// Record + RAUC + health check → `handle_boot`.
    async fn boot(&mut self, client: &mut Client) {
        let record = match self.store.load() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("{e}; starting without a record");
                None
            }
        };
        let pending = record.as_deref().and_then(|b| Record::decode(b).ok());
        let (booted, running) = match &self.rauc {
            Some(r) => {
                let booted = r.boot_slot().await.ok();
                let version = match r.slot_status().await {
                    Ok(slots) => slots
                        .iter()
                        .find(|s| s.get("state") == Some("booted"))
                        .and_then(|s| s.get("bundle.version").map(str::to_owned)),
                    Err(_) => None,
                };
                (booted, version)
            }
            None => (None, None),
        };
        let booted_slot = booted.as_deref().and_then(slot_from_bootname);
        let mut healthy = false;
        match &pending {
            Some(rec) if rec.phase == Phase::Rebooting => {
                if rec.target_slot.is_some() && rec.target_slot == booted_slot {
                    if self.run_health_command().await {
                        healthy = self.mark_good_booted().await;
                        if healthy {
                            self.clear_bad_slot_marker();
                        } else {
                            self.last_error = Some((
                                telemetry::error_code::MARK_GOOD,
                                "the new slot could not be marked good".to_owned(),
                            ));
                        }
                    } else {
                        self.last_error = Some((
                            telemetry::error_code::HEALTH,
                            "the new slot failed the health check".to_owned(),
                        ));
                        self.reject_booted(booted.as_deref().unwrap_or("?")).await;
                    }
                } else {
                    tracing::warn!(
                        "booted slot {} is not the update's target {}: the bootloader fell back",
                        booted.as_deref().unwrap_or("?"),
                        rec.target_slot.map_or("?", Slot::as_str)
                    );
                    self.last_error = Some((
                        telemetry::error_code::FELL_BACK,
                        format!(
                            "the bootloader fell back to slot {} (target was slot {})",
                            booted.as_deref().unwrap_or("?"),
                            rec.target_slot.map_or("?", Slot::as_str)
                        ),
                    ));
                    if let (Some(target), Some(b)) = (rec.target_slot, booted.as_deref()) {
                        self.after_fallback(target, b).await;
                    }
                }
            }
            _ => {
                // The target of an update that failed on this very slot stays bad.
                let failed_here = pending.as_ref().is_some_and(|r| {
                    matches!(r.phase, Phase::Reporting { success: false, .. })
                        && r.target_slot.is_some()
                        && r.target_slot == booted_slot
                });
                self.mark_good_on_start(booted.as_deref(), failed_here)
                    .await;
            }
        }
        let version = running.clone().unwrap_or_default();
        tracing::info!(
            "booted slot {} running {}; pending action: {}",
            booted.as_deref().unwrap_or("?"),
            if version.is_empty() { "?" } else { &version },
            pending
                .as_ref()
                .map_or_else(|| "none".to_owned(), |r| r.action_id.to_string())
        );
        self.publish(&telemetry::current_software(
            "rootfs",
            &version,
            booted.as_deref().unwrap_or(""),
        ));
        let now = self.now();
        client.handle_boot(
            now,
            BootReport {
                record: record.as_deref(),
                booted_slot,
                healthy,
                running: running.as_deref().map(|v| ("rootfs", v)),
            },
        );
        // An install interrupted too often (power cuts) is given up by the core right here.
        if pending
            .as_ref()
            .is_some_and(|r| r.phase == Phase::Installing)
            && client
                .record()
                .is_some_and(|r| matches!(r.phase, Phase::Reporting { success: false, .. }))
        {
            self.last_error = Some((
                telemetry::error_code::INTERRUPTED,
                "the install was interrupted too often".to_owned(),
            ));
        }
    }

    /// The health check command (if any); true when it passed or none is configured.
    async fn run_health_command(&self) -> bool {
        if let Some(cmd) = &self.config.eyas.health_check_command {
            match hooks::run(cmd, &[], self.config.eyas.health_check_timeout).await {
                Ok(()) => tracing::info!("health check passed"),
                Err(e) => {
                    tracing::error!("health check failed: {e}");
                    return false;
                }
            }
        }
        true
    }

    /// `Mark good booted`; true when RAUC accepted it.
    async fn mark_good_booted(&self) -> bool {
        let Some(rauc) = &self.rauc else {
            tracing::error!("cannot mark the booted slot good: RAUC is not reachable");
            return false;
        };
        match rauc.mark(MarkState::Good, "booted").await {
            Ok((slot, msg)) => {
                tracing::info!("{slot}: {msg}");
                true
            }
            Err(e) => {
                tracing::error!("cannot mark the booted slot good: {e}");
                false
            }
        }
    }

    /// `Mark <state> <slot>`, logged; true when RAUC accepted it.
    async fn mark(&self, state: MarkState, slot: &str) -> bool {
        let Some(rauc) = &self.rauc else {
            tracing::error!("cannot mark slot {slot} {state:?}: RAUC is not reachable");
            return false;
        };
        match rauc.mark(state, slot).await {
            Ok((name, msg)) => {
                tracing::info!("{name}: {msg}");
                true
            }
            Err(e) => {
                tracing::error!("cannot mark slot {slot} {state:?}: {e}");
                false
            }
        }
    }

    /// RAUC's slot name for a bootname (`rootfs.1` for `B`).
    async fn slot_name(&self, bootname: &str) -> Option<String> {
        let slots = self.rauc.as_ref()?.slot_status().await.ok()?;
        slots
            .into_iter()
            .find(|s| s.get("bootname") == Some(bootname))
            .map(|s| s.name)
    }

    /// Makes the slot with `bootname` primary unless RAUC already says it is (backends where
    /// `Mark bad` of the other slot does not change the boot order, e.g. custom ones).
    async fn ensure_primary(&self, bootname: &str, identifier: &str) {
        let Some(rauc) = &self.rauc else { return };
        let Some(name) = self.slot_name(bootname).await else {
            tracing::warn!("RAUC does not know a slot with bootname {bootname}");
            return;
        };
        if rauc.primary().await.ok().as_deref() == Some(name.as_str()) {
            return;
        }
        self.mark(MarkState::Active, identifier).await;
    }

    /// A failed health check on the update's target: never boot it again, make the previous
    /// slot primary, and reboot into it once the failure is reported.
    async fn reject_booted(&mut self, booted: &str) {
        tracing::error!(
            "slot {booted} failed its health check: marking it bad so that the previous slot boots again"
        );
        if self.mark(MarkState::Bad, "booted").await {
            self.write_bad_slot_marker(booted);
        }
        let other = match booted {
            "A" | "a" => Some("B"),
            "B" | "b" => Some("A"),
            _ => None,
        };
        if let Some(other) = other {
            self.ensure_primary(other, "other").await;
        }
        self.reboot_after_report = Some(std::time::Instant::now() + REBOOT_REPORT_PATIENCE);
    }

    /// The bootloader fell back from `target` to `booted`: mark the target bad (so that the
    /// boot script never picks it again once the booted slot's attempts run out) and the
    /// booted slot good after its health check.
    async fn after_fallback(&mut self, target: Slot, booted: &str) {
        let target_id = self
            .slot_name(target.as_str())
            .await
            .unwrap_or_else(|| "other".to_owned());
        self.mark(MarkState::Bad, &target_id).await;
        if self.run_health_command().await {
            if self.mark_good_booted().await {
                self.ensure_primary(booted, "booted").await;
            }
        } else {
            tracing::error!(
                "the previous slot {booted} failed its health check too: not marking it good"
            );
        }
    }

    /// A start without an update to judge: health check, then `Mark good booted` (as
    /// rauc-mark-good.service does) so that the running slot's boot attempts never run out.
    async fn mark_good_on_start(&mut self, booted: Option<&str>, failed_here: bool) {
        if !self.config.eyas.mark_good_on_boot {
            return;
        }
        let marker = self.read_bad_slot_marker();
        if let (Some(m), Some(b)) = (marker.as_deref(), booted)
            && m != b
        {
            // Rebooted away from the rejected slot.
            self.clear_bad_slot_marker();
        }
        if failed_here || (marker.is_some() && marker.as_deref() == booted) {
            tracing::warn!(
                "slot {} failed its update and was marked bad: not marking it good; reboot to return to the previous slot",
                booted.unwrap_or("?")
            );
            return;
        }
        if self.rauc.is_none() {
            tracing::warn!("RAUC is not reachable: the booted slot is not marked good");
            return;
        }
        if self.run_health_command().await {
            self.mark_good_booted().await;
        } else {
            tracing::error!("not marking the booted slot good");
        }
    }

    fn bad_slot_marker(&self) -> PathBuf {
        self.config.eyas.record_path.with_extension("bad-slot")
    }

    fn read_bad_slot_marker(&self) -> Option<String> {
        std::fs::read_to_string(self.bad_slot_marker())
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    fn write_bad_slot_marker(&self, bootname: &str) {
        if let Err(e) = std::fs::write(self.bad_slot_marker(), format!("{bootname}\n")) {
            tracing::warn!("{}: {e}", self.bad_slot_marker().display());
        }
    }

    fn clear_bad_slot_marker(&self) {
        let _ = std::fs::remove_file(self.bad_slot_marker());
    }

    /// After a failed health check: reboot into the previous slot (`post_update_reboot=true`),
    /// or say clearly that someone must.
    async fn reboot_to_previous_slot(&mut self) {
        self.awaiting_reboot = true;
        if let Some(t) = &self.telemetry {
            let _ = t.flush(Duration::from_secs(3)).await;
        }
        if !self.config.client.post_update_reboot {
            tracing::error!(
                "the new slot failed its health check and is marked bad: reboot now to return to the previous slot (post_update_reboot=false, so eyas does not reboot)"
            );
            service::status("update failed; reboot to return to the previous slot");
            return;
        }
        tracing::info!("rebooting into the previous slot");
        self.run_reboot_command().await;
    }

    /// Tells systemd eyas is stopping and runs `reboot_command` (60 s bound); a failure is logged.
    async fn run_reboot_command(&self) {
        service::stopping();
        if let Err(e) = hooks::run(
            &self.config.eyas.reboot_command,
            &[],
            Duration::from_secs(60),
        )
        .await
        {
            tracing::error!("reboot command failed: {e}");
        }
    }

    async fn drain_actions(&mut self, client: &mut Client) {
        loop {
            let Some(work) = client.poll_action().map(|a| own(&a)) else {
                return;
            };
            self.handle(client, work).await;
        }
    }

    async fn handle(&mut self, client: &mut Client, work: Work) {
        match work {
            Work::Persist(bytes) => {
                if let Err(e) = self.store.store(&bytes) {
                    // Without a durable record a reboot would lose the action: stop here.
                    self.halt = Some(format!(
                        "{e}; without a durable record a reboot would lose the action"
                    ));
                }
            }
            Work::Clear => {
                if let Err(e) = self.store.clear() {
                    tracing::warn!("{e}");
                }
            }
            Work::Download(a) => self.start_download(client, a),
            Work::Abort(action) => {
                self.cancel.store(true, Ordering::Relaxed);
                let keys: Vec<_> = self
                    .files
                    .keys()
                    .filter(|k| k.0 == action)
                    .copied()
                    .collect();
                for k in keys {
                    if let Some(p) = self.files.remove(&k) {
                        let _ = std::fs::remove_file(&p);
                    }
                    self.digests.remove(&k);
                }
            }
            Work::Verify(a) => {
                let now = self.now();
                match self.verify(&a) {
                    Ok(()) => {
                        let _ = client.handle_event(now, Event::Verified);
                    }
                    Err((code, reason)) => {
                        tracing::error!("{reason}");
                        self.publish_failure(code, &reason);
                        let _ = client.handle_event(now, Event::VerifyFailed { reason: &reason });
                    }
                }
            }
            Work::Install(i) => {
                if self.rauc.is_none() {
                    self.rauc =
                        connect_rauc(self.options.bus_address.as_deref(), Duration::ZERO).await;
                }
                self.start_install(client, i);
            }
            Work::Hook(i) => self.start_hook(client, i),
            Work::Reboot(target) => self.reboot(target).await,
            Work::Ask(action) => self.ask(action),
            Work::Attributes => {
                let attrs: Vec<(&str, &str)> = self
                    .config
                    .device
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                if let Err(e) = client.set_attributes(&attrs) {
                    tracing::warn!("[device] attributes refused by the core: {e:?}");
                }
            }
            Work::Telemetry(t) => self.telemetry_sample(t),
            Work::Warning(w) => tracing::warn!("{w:?}"),
            Work::Stopped(StopReason::Unauthorized) => {
                self.halt = Some(
                    "hawkBit refused the credentials (401); check auth_token / gateway_token"
                        .to_owned(),
                );
            }
            Work::Stopped(other) => self.halt = Some(format!("the DDI client stopped: {other:?}")),
        }
    }

    fn telemetry_sample(&mut self, t: CoreTelemetry) {
        let status = match t.phase {
            TelemetryPhase::Idle
            | TelemetryPhase::WaitingConfirmation
            | TelemetryPhase::AwaitingWindow
            // download-only: the DOWNLOADED sample was sent; nothing was updated
            | TelemetryPhase::Downloaded => OtaStatus::Idle,
            TelemetryPhase::Downloading => OtaStatus::Downloading,
            TelemetryPhase::Installing => OtaStatus::Installing,
            TelemetryPhase::Rebooting => OtaStatus::Rebooting,
            TelemetryPhase::Succeeded => OtaStatus::Success,
            TelemetryPhase::Failed | TelemetryPhase::Canceled => OtaStatus::Failure,
        };
        if t.phase == TelemetryPhase::Failed {
            self.failed = true;
        }
        let text = format!(
            "{:?}{}",
            t.phase,
            t.percent.map(|p| format!(" {p}%")).unwrap_or_default()
        );
        service::status(&text);
        let error =
            match t.phase {
                TelemetryPhase::Canceled => Some((
                    telemetry::error_code::CANCELED,
                    "action canceled".to_owned(),
                )),
                TelemetryPhase::Failed => {
                    if std::mem::take(&mut self.failure_published) {
                        // Already published with its code where it happened (once per failure).
                        self.last_error = None;
                        return;
                    }
                    Some(self.last_error.take().unwrap_or_else(|| {
                        (telemetry::error_code::OTHER, "update failed".to_owned())
                    }))
                }
                _ => None,
            };
        let mut msg = telemetry::status(status, error.as_ref().map(|(c, r)| (*c, r.as_str())));
        if let (Some(p), Some(values)) = (
            t.percent,
            msg.get_mut("values").and_then(|v| v.as_object_mut()),
        ) {
            values.insert("ota_progress".into(), p.into());
        }
        self.publish(&msg);
    }

    fn start_download(&mut self, client: &mut Client, a: OwnedArtifact) {
        let key = (a.action, a.artifact);
        let dest = match artifact_path(&self.download_dir, &a.filename) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("{e}");
                self.last_error = Some((telemetry::error_code::DOWNLOAD, e.to_string()));
                let now = self.now();
                let _ = client.handle_event(now, Event::DownloadFailed { http_status: None });
                return;
            }
        };
        // Cut the file back to the checkpoint, never extend it: after a power cut the file can
        // be shorter than the checkpoint (data not yet on disk), and zeros would fail the hash.
        // The download then resumes from the bytes that are really there.
        if let Some(n) = a.range_start
            && let Ok(f) = std::fs::OpenOptions::new().write(true).open(&dest)
            && f.metadata().is_ok_and(|m| m.len() > n)
        {
            let _ = f.set_len(n);
        }
        self.files.insert(key, dest.clone());
        self.specs.insert(
            key,
            ArtifactSpec {
                size: a.size,
                sha256: a.sha256,
                sha1: a.sha1,
            },
        );
        self.cancel = Arc::new(AtomicBool::new(false));
        self.busy = true;
        let send = send_credentials(
            &a.url,
            &self.server_origin,
            self.config.client.send_download_authentication,
        );
        let http = self.http.clone();
        let tx = self.done_tx.clone();
        let cancel = self.cancel.clone();
        let c = &self.config.client;
        let (low_time, low_rate, limit) =
            (c.low_speed_time, c.low_speed_rate, c.download_speed_limit);
        tracing::info!(
            "downloading {} ({} bytes) to {}",
            a.filename,
            a.size,
            dest.display()
        );
        tokio::task::spawn_blocking(move || {
            let auth = if send {
                a.authorization.as_deref()
            } else {
                None
            };
            let req = DownloadRequest {
                url: &a.url,
                dest: &dest,
                expected_size: Some(a.size),
                auth,
                client_cert: send,
                resume: false,
                keep_partial: a.range_start.is_some(),
                low_speed_time: low_time,
                low_speed_rate: low_rate,
                rate_limit: limit,
                sha1: false,
                spec: Some(ArtifactSpec {
                    size: a.size,
                    sha256: a.sha256,
                    sha1: a.sha1,
                }),
                cancel: &cancel,
            };
            let mut last = 0u64;
            let step = (a.size / 100).max(1 << 20);
            let progress_tx = tx.clone();
            let result = download::download(&http, &req, &mut |done, _| {
                if done >= last + step {
                    last = done;
                    let _ = progress_tx.send(Done::DownloadProgress(done));
                }
            });
            let received = std::fs::metadata(&dest).map_or(0, |m| m.len());
            let _ = tx.send(Done::Download {
                key,
                received,
                result: result.map(Box::new),
            });
        });
    }

    /// The core decides: size and hawkBit digest, from the verifier fed during the download
    /// (or, for a file from an earlier run, from one more pass over the file).
    fn verify(&mut self, a: &OwnedArtifact) -> Result<(), (u16, String)> {
        let other = |e: String| (telemetry::error_code::VERIFY, e);
        let key = (a.action, a.artifact);
        let path =
            artifact_path(&self.download_dir, &a.filename).map_err(|e| other(e.to_string()))?;
        let spec = ArtifactSpec {
            size: a.size,
            sha256: a.sha256,
            sha1: a.sha1,
        };
        let verifier = match self.digests.remove(&key).and_then(|d| d.verifier) {
            Some(v) => v,
            None => verify_file(&path, &spec).map_err(other)?,
        };
        // Policy::Off here: the signed manifest is checked before install (`crate::manifest`).
        verifier
            .finish("", None)
            .map_err(|e| (e.code(), format!("{}: {e} ({})", a.filename, e.as_str())))?;
        tracing::info!("{}: size and checksum OK", a.filename);
        self.files.insert(key, path);
        // A file verified after a restart was not downloaded by this run: the install needs
        // its spec too (power cut during the install).
        self.specs.insert(key, spec);
        Ok(())
    }

    fn chunk_files(&self, i: &OwnedInstall) -> Vec<PathBuf> {
        self.chunk_entries(i).into_iter().map(|(_, p)| p).collect()
    }

    fn chunk_entries(&self, i: &OwnedInstall) -> Vec<((ActionId, u8), PathBuf)> {
        (i.first_artifact..i.first_artifact.saturating_add(i.artifact_count))
            .filter_map(|n| {
                self.files
                    .get(&(i.action, n))
                    .map(|p| ((i.action, n), p.clone()))
            })
            .collect()
    }

    fn start_install(&mut self, client: &mut Client, i: OwnedInstall) {
        let entries = self.chunk_entries(&i);
        let name_of = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let bundle = entries
            .iter()
            .find(|(_, p)| !name_of(p).ends_with(eyas_core::verify::MANIFEST_SUFFIX))
            .cloned();
        let manifest = bundle.as_ref().and_then(|(_, b)| {
            let b = name_of(b);
            entries
                .iter()
                .find(|(_, p)| is_manifest_for(&b, &name_of(p)))
                .map(|(_, p)| p.clone())
        });
        let spec = bundle
            .as_ref()
            .and_then(|(k, _)| self.specs.get(k).copied());
        let (Some((_, bundle)), Some(rauc), Some(spec)) = (bundle, self.rauc.clone(), spec) else {
            let reason = if self.rauc.is_none() {
                "RAUC is not reachable on D-Bus".to_owned()
            } else {
                format!("no downloaded bundle for {} {}", i.name, i.version)
            };
            tracing::error!("{reason}");
            self.last_error = Some((telemetry::error_code::INSTALL, reason.clone()));
            let now = self.now();
            let _ = client.handle_event(now, Event::InstallFailed { reason: &reason });
            return;
        };
        let signature_policy = self.config.eyas.manifest_signature;
        let keys = self.config.eyas.manifest_public_keys.clone();
        self.busy = true;
        let tx = self.done_tx.clone();
        let reboot = i.kind == InstallKind::RaucReboot;
        tracing::info!(
            "installing {} {} from {} with RAUC",
            i.name,
            i.version,
            bundle.display()
        );
        self.publish(&telemetry::target_software(&i.name, &i.version));
        tokio::spawn(async move {
            if signature_policy != crate::config::SignaturePolicy::Off {
                let compatible = match rauc.compatible().await {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Done::Install(Err(e.to_string())));
                        return;
                    }
                };
                let b = bundle.clone();
                let checked = tokio::task::spawn_blocking(move || {
                    crate::manifest::check_bundle(
                        &b,
                        &spec,
                        manifest.as_deref(),
                        signature_policy,
                        &keys,
                        &compatible,
                    )
                })
                .await
                .unwrap_or_else(|e| Err(format!("manifest check task failed: {e}")));
                if let Err(reason) = checked {
                    let _ = tx.send(Done::Install(Err(reason)));
                    return;
                }
                tracing::info!("signed manifest OK");
            }
            let progress_tx = tx.clone();
            let mut on_progress = move |p: &crate::rauc::Progress| {
                tracing::info!("RAUC: {:3}% {}", p.percent, p.message);
                let _ = progress_tx.send(Done::InstallProgress(
                    u8::try_from(p.percent.clamp(0, 100)).unwrap_or(0),
                ));
            };
            let result = match rauc.install(&bundle, INSTALL_LIMIT, &mut on_progress).await {
                Ok(()) if reboot => match rauc.primary().await {
                    Ok(primary) => {
                        let slots = rauc.slot_status().await.unwrap_or_default();
                        let bootname = slots
                            .iter()
                            .find(|s| s.name == primary)
                            .and_then(|s| s.get("bootname"));
                        Ok(bootname.and_then(slot_from_bootname))
                    }
                    Err(e) => Err(format!("installed, but cannot read the primary slot: {e}")),
                },
                Ok(()) => Ok(None),
                Err(e) => Err(e.to_string()),
            };
            if result.is_ok() {
                let _ = std::fs::remove_file(&bundle);
            }
            let _ = tx.send(Done::Install(result));
        });
    }

    fn start_hook(&mut self, client: &mut Client, i: OwnedInstall) {
        let Some(handler) = self
            .config
            .eyas
            .part_handlers
            .iter()
            .find(|h| h.part == i.part)
            .cloned()
        else {
            let reason = format!(
                "no handler configured for part {:?} (set part.{}.command in [eyas])",
                i.part, i.part
            );
            tracing::error!("{reason}");
            self.last_error = Some((telemetry::error_code::PART_HANDLER, reason.clone()));
            let now = self.now();
            let _ = client.handle_event(now, Event::InstallFailed { reason: &reason });
            return;
        };
        let files: Vec<String> = self
            .chunk_files(&i)
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        self.busy = true;
        let tx = self.done_tx.clone();
        tokio::spawn(async move {
            let result = hooks::run(&handler.command, &files, handler.timeout)
                .await
                .map(|()| None);
            let _ = tx.send(Done::Install(result));
        });
    }

    async fn reboot(&mut self, target: Option<Slot>) {
        self.awaiting_reboot = true;
        // `ota_status=rebooting` was published from the core's Rebooting sample just before.
        if let Some(t) = &self.telemetry {
            let _ = t.flush(Duration::from_secs(3)).await;
        }
        if !self.config.client.post_update_reboot {
            tracing::info!(
                "slot {} is installed; reboot to finish the update (post_update_reboot=false, so eyas does not reboot)",
                target.map_or("?", Slot::as_str)
            );
            service::status("installed; waiting for a reboot");
            return;
        }
        tracing::info!("rebooting into slot {}", target.map_or("?", Slot::as_str));
        self.run_reboot_command().await;
    }

    fn ask(&mut self, action: ActionId) {
        self.busy = true;
        let tx = self.done_tx.clone();
        match &self.config.eyas.confirmation {
            Confirmation::Auto => {
                let _ = tx.send(Done::Confirmation(action, true));
            }
            Confirmation::Deny => {
                let _ = tx.send(Done::Confirmation(action, false));
            }
            Confirmation::Command(cmd) => {
                let cmd = cmd.clone();
                tokio::spawn(async move {
                    let ok = hooks::run(&cmd, &[action.to_string()], Duration::from_secs(3600))
                        .await
                        .is_ok();
                    let _ = tx.send(Done::Confirmation(action, ok));
                });
            }
        }
    }

    fn handle_done(&mut self, client: &mut Client, done: Done) {
        let now = self.now();
        let result = match done {
            Done::DownloadProgress(received) => {
                client.handle_event(now, Event::DownloadProgress { received })
            }
            Done::Download {
                key,
                received,
                result,
            } => {
                self.busy = false;
                match result {
                    Ok(d) => {
                        tracing::info!(
                            "downloaded {} bytes in {} ms ({} bytes kept from an interrupted attempt)",
                            d.bytes,
                            d.elapsed.as_millis(),
                            d.reused
                        );
                        self.publish(&telemetry::downloaded(d.bytes, d.elapsed, false));
                        self.digests.insert(key, *d);
                        client.handle_event(now, Event::DownloadComplete)
                    }
                    Err(e) if e.kind == HttpErrorKind::Cancelled => Ok(()),
                    Err(e) => {
                        tracing::warn!("download failed: {e}");
                        let ev = match e.kind {
                            HttpErrorKind::Status(code) => Event::DownloadFailed {
                                http_status: Some(code),
                            },
                            _ if e.is_transient() && received > 0 => {
                                Event::DownloadInterrupted { received }
                            }
                            _ => Event::DownloadFailed { http_status: None },
                        };
                        let r = client.handle_event(now, ev);
                        // Only a download the core gave up on is a failure for ThingsBoard; one
                        // it retries (cut, 5xx with resume_downloads) is not.
                        if client.record().is_some_and(|r| {
                            matches!(r.phase, Phase::Reporting { success: false, .. })
                        }) {
                            self.publish_failure(telemetry::error_code::DOWNLOAD, &e.detail);
                        }
                        r
                    }
                }
            }
            Done::InstallProgress(percent) => {
                client.handle_event(now, Event::InstallProgress { percent })
            }
            Done::Install(result) => {
                self.busy = false;
                match result {
                    Ok(slot) => client.handle_event(now, Event::Installed { slot }),
                    Err(reason) => {
                        tracing::error!("{reason}");
                        let r = client.handle_event(now, Event::InstallFailed { reason: &reason });
                        if client.record().is_some_and(|r| {
                            matches!(r.phase, Phase::Reporting { success: false, .. })
                        }) {
                            self.publish_failure(telemetry::error_code::INSTALL, &reason);
                        }
                        r
                    }
                }
            }
            Done::Confirmation(action, accepted) => {
                self.busy = false;
                tracing::info!(
                    "action {action}: {}",
                    if accepted { "confirmed" } else { "denied" }
                );
                if accepted {
                    // The deployment comes with a later poll; run-once waits for it.
                    self.polled = false;
                }
                client.handle_event(now, Event::ConfirmationAnswer { action, accepted })
            }
        };
        if let Err(e) = result {
            tracing::debug!("event not expected by the core: {e:?}");
        }
    }
}

/// Feeds a file to a fresh core verifier (policy off).
fn verify_file(path: &Path, spec: &ArtifactSpec) -> Result<Verifier, String> {
    use std::io::Read;
    let mut v = Verifier::new(spec, Policy::Off).map_err(|_| {
        format!(
            "{}: hawkBit sent neither SHA-256 nor SHA-1; refusing to install",
            path.display()
        )
    })?;
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            return Ok(v);
        }
        // Too many bytes are reported by `finish`.
        let _ = v.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootnames_map_to_slots() {
        assert_eq!(slot_from_bootname("A"), Some(Slot::A));
        assert_eq!(slot_from_bootname("B"), Some(Slot::B));
        assert_eq!(slot_from_bootname("system0"), None);
    }

    #[test]
    fn client_config_follows_the_file() {
        let text = "[client]\nhawkbit_server=h:8080\ntarget_name=dev\nauth_token=t\nbundle_download_location=/tmp/b\nresume_downloads=true\nretry_wait=60\n\
                    [device]\na=b\n[eyas]\npoll_min=20\npoll_max=600\nconfirmation=deny\n";
        let cfg = crate::config::parse(Path::new("/x.conf"), text)
            .expect("valid")
            .config;
        let cc = client_config(&cfg, "http://h:8080", Some("TargetToken t"));
        assert_eq!(cc.poll_min, CoreDuration::from_secs(20));
        assert_eq!(cc.poll_max, CoreDuration::from_secs(600));
        assert_eq!(cc.download_retries, 10);
        assert_eq!(cc.backoff_max, CoreDuration::from_secs(60));
        assert_eq!(cc.confirmation, ConfirmationPolicy::AskShell);
        assert!(Client::new(&cc).is_ok());
    }

    #[test]
    fn verifying_a_file_uses_the_core_verdict() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").expect("write");
        let sha256 = [
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae,
            0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61,
            0xf2, 0x00, 0x15, 0xad,
        ];
        let ok = ArtifactSpec {
            size: 3,
            sha256: Some(sha256),
            sha1: None,
        };
        assert!(verify_file(&p, &ok).expect("read").finish("", None).is_ok());
        let mut bad = ok;
        bad.sha256 = Some([0; 32]);
        let e = verify_file(&p, &bad)
            .expect("read")
            .finish("", None)
            .expect_err("mismatch");
        assert_eq!(e.as_str(), "sha256-mismatch");
        let short = ArtifactSpec { size: 4, ..ok };
        assert_eq!(
            verify_file(&p, &short)
                .expect("read")
                .finish("", None)
                .expect_err("short")
                .as_str(),
            "too-short"
        );
        let none = ArtifactSpec {
            size: 3,
            sha256: None,
            sha1: None,
        };
        assert!(
            verify_file(&p, &none)
                .expect_err("no digest")
                .contains("neither")
        );
    }
}
