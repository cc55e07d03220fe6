//! The main loop: `eyas_core::client::Client` ↔ HTTP ↔ RAUC ↔ record ↔ telemetry.
//!
//! The core decides everything; this loop follows its drain order after every input
//! (`poll_action` until `None`, then `poll_request`, then `poll_timeout`). Long work (downloads,
//! RAUC installs, hooks) runs in background tasks whose results come back over a channel and are
//! fed in with `handle_event`, so the core keeps polling (and notices cancels) meanwhile.
//!
//! Files: artifact number `n` of a deployment downloads to `<bundle_download_location>.<n>.<name>`
//! (names that could leave the directory are refused); a RAUC bundle is installed from exactly
//! `bundle_download_location` (`download::artifact_path`, `download::install_path`). The boot path is the core's
//! (`eyas_core::client` boot module): on start-up eyas hands it the record, RAUC's bootname of the
//! booted slot and the remembered rejected slot, then performs what it asks (health check, RAUC
//! marks, a reboot back) and reports what happened. Nothing here compares slots.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use eyas_core::client::{
    Action, ArtifactRef, BootReport, Client, ClientConfig, ConfirmationPolicy, DownloadRefusal,
    Event, Failure, InstallKind, InstallRef, REQUEST_BUF_LEN, RebootReason, SlotMark, StopReason,
    Telemetry as CoreTelemetry, TelemetryPhase, Warning,
};
use eyas_core::ddi::ActionId;
use eyas_core::record::{Phase, Record};
use eyas_core::time::{Duration as CoreDuration, Instant as CoreInstant};
use eyas_core::verify::{ArtifactSpec, Policy, Verifier, is_manifest_for};
use tokio::sync::mpsc;

use crate::chunk_relay::ChunkRelay;
use crate::config::{Config, Confirmation};
use crate::download::{self, DownloadRequest, Downloaded, artifact_path, install_path};
use crate::http::{ApiRequest, Http, HttpError, HttpErrorKind, HttpSettings, Method};
use crate::rauc::{MarkState, Rauc};
use crate::record_store::RecordStore;
use crate::telemetry::{self, OtaStatus, Telemetry};
use crate::{hooks, service};

mod boot;
mod work;

use work::{ArtifactFile, Done, OwnedArtifact, OwnedInstall};

/// How long to wait for RAUC at start-up when an update awaits its post-reboot verdict.
const RAUC_BOOT_PATIENCE: Duration = Duration::from_secs(60);

/// Sleeps `d`, or forever for `None`.
async fn sleep_or_forever(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

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

/// How long a RAUC install may take.
const INSTALL_LIMIT: Duration = Duration::from_secs(3600);

#[derive(Debug)]
enum Work {
    Persist(Vec<u8>),
    Clear,
    Download(OwnedArtifact),
    Abort(ActionId),
    Verify(OwnedArtifact),
    Install(OwnedInstall),
    Hook(OwnedInstall),
    Reboot(Option<String>, RebootReason),
    CheckHealth,
    Mark(String, SlotMark),
    Remember(Option<String>),
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
        Action::Reboot {
            target_slot,
            reason,
            ..
        } => Work::Reboot(target_slot.map(str::to_owned), *reason),
        Action::CheckHealth => Work::CheckHealth,
        Action::MarkSlot { bootname, mark } => Work::Mark((*bootname).to_owned(), *mark),
        Action::RememberRejected(b) => Work::Remember(b.map(str::to_owned)),
        Action::AskConfirmation { action } => Work::Ask(*action),
        Action::AttributesRequested => Work::Attributes,
        Action::Telemetry(t) => Work::Telemetry(*t),
        Action::Warning(w) => Work::Warning(*w),
        Action::Stopped(s) => Work::Stopped(*s),
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
    // The core decides per download whether the credentials go to its host.
    cc.send_auth_on_download = c.send_download_authentication;
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
    cc.mark_good_on_boot = config.eyas.mark_good_on_boot;
    cc.confirmation = match config.eyas.confirmation {
        Confirmation::Auto => ConfirmationPolicy::Auto,
        Confirmation::Deny | Confirmation::Command(_) => ConfirmationPolicy::AskShell,
    };
    cc.seed = eyas_core::fnv1a64(c.target_name.as_bytes());
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
    http: Arc<Http>,
    rauc: Option<Rauc>,
    store: RecordStore,
    telemetry: Option<Telemetry>,
    /// `bundle_download_location`.
    location: PathBuf,
    epoch: std::time::Instant,
    done_tx: mpsc::UnboundedSender<Done>,
    cancel: Arc<AtomicBool>,
    /// Per artifact of the current action: its file, hawkBit name and spec, and the download's
    /// result until it is verified.
    artifacts: HashMap<(ActionId, u8), ArtifactFile>,
    failed: bool,
    /// Why the loop must end (401, record not writable).
    halt: Option<String>,
    /// SIGTERM/SIGINT ended the loop.
    interrupted: bool,
    /// The last update failure (its exit code ends a run-once).
    failure: Option<Failure>,
    /// The action of the last failure and why (its `error_code` goes into the final feedback).
    action_failure: Option<(ActionId, Failure)>,
    /// Download time and bytes of the current action (summed over its artifacts, plus the casync
    /// chunks the relay fetched), for its final feedback; also kept beside the record so that it
    /// survives the reboot ([`Agent::note_download`], [`Agent::note_chunks`]).
    update_stats: Option<UpdateStats>,
    /// The casync chunk relay (`[eyas] casync_store`).
    chunk_relay: Option<ChunkRelay>,
}

/// What one action cost: download time, artifact bytes and, through the relay, casync chunk bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UpdateStats {
    action: u64,
    download_ms: u64,
    download_bytes: u64,
    /// `None`: no relay counted them (no `casync_store`, or not installed yet).
    chunk_bytes: Option<u64>,
}

impl UpdateStats {
    /// One line: `action ms bytes chunk_bytes|-`.
    fn encode(&self) -> String {
        let chunks = self
            .chunk_bytes
            .map_or_else(|| "-".to_owned(), |c| c.to_string());
        format!(
            "{} {} {} {chunks}\n",
            self.action, self.download_ms, self.download_bytes
        )
    }

    /// The line [`Self::encode`] wrote, or the `action ms` line of eyas 0.x before the bytes.
    fn decode(text: &str) -> Option<Self> {
        let mut f = text.split_whitespace();
        let action = f.next()?.parse().ok()?;
        let download_ms = f.next()?.parse().ok()?;
        let download_bytes = f.next().map_or(Some(0), |b| b.parse().ok())?;
        let chunk_bytes = match f.next() {
            None | Some("-") => None,
            Some(c) => Some(c.parse().ok()?),
        };
        Some(Self {
            action,
            download_ms,
            download_bytes,
            chunk_bytes,
        })
    }

    /// Bytes the update fetched over the air (artifacts + chunks), when the chunks were counted.
    fn update_bytes(&self) -> Option<u64> {
        self.chunk_bytes
            .map(|c| c.saturating_add(self.download_bytes))
    }
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
    // Without RAUC the core gets no booted slot: it never guesses a verdict, stops (eyas exits 1
    // and the service manager retries) and gives up after `boot_attempts` such starts.
    let rauc = connect_rauc(options.bus_address.as_deref(), patience).await;
    // A relay that cannot listen is logged, not fatal: plain bundles still install (and a casync
    // install then fails with casync's reason, reported to hawkBit).
    let chunk_relay = match &config.eyas.casync_store {
        Some(store) => match ChunkRelay::start(
            config.eyas.casync_relay,
            store,
            Arc::clone(&http),
            config.client.send_download_authentication,
        )
        .await
        {
            Ok(r) => {
                tracing::info!(
                    "casync chunk relay on http://{}/ for {}",
                    r.local_addr(),
                    crate::http::redact_url(store)
                );
                Some(r)
            }
            Err(e) => {
                tracing::error!(
                    "casync chunk relay: cannot listen on {}: {e}; casync installs will fail until it can (check [eyas] casync_relay)",
                    config.eyas.casync_relay
                );
                None
            }
        },
        None => None,
    };
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut agent = Agent {
        config,
        options,
        http,
        rauc,
        store,
        telemetry,
        location: location.to_path_buf(),
        epoch: std::time::Instant::now(),
        done_tx,
        cancel: Arc::new(AtomicBool::new(false)),
        artifacts: HashMap::new(),
        failed: false,
        halt: None,
        interrupted: false,
        failure: None,
        action_failure: None,
        update_stats: None,
        chunk_relay,
    };
    agent.boot(&mut client).await;
    service::ready("polling hawkBit");
    let mut watchdog = service::Watchdog::from_env();
    let shutdown = service::shutdown_signal();
    tokio::pin!(shutdown);
    let mut buf = vec![0u8; REQUEST_BUF_LEN];
    loop {
        watchdog.feed();
        agent.drain_actions(&mut client).await;
        watchdog.feed();
        if let Some(reason) = &agent.halt {
            tracing::error!("stopping: {reason}");
            break;
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
        if let Some((kind, method, url, authorization, if_none_match, mut body)) = request {
            if matches!(kind, eyas_core::client::RequestKind::Feedback)
                && let Some(extended) = agent.feedback_extras(&url, &body)
            {
                body = extended;
            }
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
            // SIGTERM is honoured even while a request is in flight; the request has its own
            // deadlines (timeout, low_speed_time), so waiting for it is progress.
            let mut task = task;
            let result = loop {
                tokio::select! {
                    r = &mut task => break Some(r),
                    signal = &mut shutdown => {
                        tracing::info!("{signal}: stopping");
                        agent.interrupted = true;
                        break None;
                    }
                    () = sleep_or_forever(watchdog.until_due()) => watchdog.feed(),
                }
            };
            let Some(result) = result else { break };
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
                }
                Err(e) => {
                    tracing::error!("internal: request task failed: {e}");
                    let _ = client.handle_transport_error(now);
                }
            }
            continue;
        }
        // (after the drain at the top: what the core asked for last is done, e.g. the record)
        if agent.run_once_over(&client) {
            break;
        }
        let next = client.poll_timeout();
        let mut sleep_for = next.map_or(Duration::from_secs(3600), |t| {
            Duration::from_millis(t.as_millis().saturating_sub(now.as_millis()))
        });
        if let Some(due) = watchdog.until_due() {
            sleep_for = sleep_for.min(due);
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
                agent.interrupted = true;
                break;
            }
        }
    }
    if agent.options.run_once
        && agent.interrupted
        && client.run_once() == eyas_core::client::RunOnce::Working
    {
        // the record keeps what was done; the next start resumes it
        tracing::error!("run-once interrupted before its work was done");
        agent.failed = true;
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
        agent.failure.map_or(0, Failure::exit_code)
    }
}

impl Agent<'_> {
    /// With `-r`: whether the run is over, as the core says (a failed run exits 1).
    fn run_once_over(&mut self, client: &Client) -> bool {
        if !self.options.run_once {
            return false;
        }
        match client.run_once() {
            eyas_core::client::RunOnce::Working => false,
            eyas_core::client::RunOnce::Failed(f) => {
                tracing::error!("run-once failed: {f}");
                self.failed = true;
                true
            }
            _ => true,
        }
    }

    /// Deletes what was downloaded for `action` (partial or whole) and forgets it.
    fn remove_files(&mut self, action: ActionId) {
        self.artifacts.retain(|k, f| {
            if k.0 == action {
                download::remove_partial(&f.path);
            }
            k.0 != action
        });
    }

    fn now(&self) -> CoreInstant {
        CoreInstant::from_millis(
            u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX),
        )
    }

    /// Where the current action's [`UpdateStats`] are kept across the reboot.
    fn stats_path(&self) -> PathBuf {
        let mut p = self.config.eyas.record_path.clone().into_os_string();
        p.push(".download-ms");
        PathBuf::from(p)
    }

    /// The current stats of `action`, fresh ones when they belong to another action.
    fn stats_for(&self, action: ActionId) -> UpdateStats {
        self.update_stats
            .filter(|s| s.action == action.0)
            .unwrap_or(UpdateStats {
                action: action.0,
                download_ms: 0,
                download_bytes: 0,
                chunk_bytes: None,
            })
    }

    fn keep_stats(&mut self, stats: UpdateStats) {
        self.update_stats = Some(stats);
        let path = self.stats_path();
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let written =
            std::fs::write(&tmp, stats.encode()).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            tracing::debug!(
                "{}: {e} (download time and bytes are only reported before a reboot)",
                path.display()
            );
        }
    }

    /// Notes a finished download of `action` (summed over its artifacts) for the final feedback.
    pub(super) fn note_download(
        &mut self,
        action: ActionId,
        elapsed: std::time::Duration,
        bytes: u64,
    ) {
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let mut stats = self.stats_for(action);
        stats.download_ms = stats.download_ms.saturating_add(ms);
        stats.download_bytes = stats.download_bytes.saturating_add(bytes);
        self.keep_stats(stats);
    }

    /// Notes the casync chunk bytes the relay fetched while RAUC installed `action`'s bundle (the
    /// final telemetry sample and feedback carry the update's total).
    pub(super) fn note_chunks(&mut self, action: ActionId, chunk_bytes: u64) {
        let mut stats = self.stats_for(action);
        stats.chunk_bytes = Some(stats.chunk_bytes.unwrap_or(0).saturating_add(chunk_bytes));
        self.keep_stats(stats);
        if let Some(total) = stats.update_bytes() {
            tracing::info!(
                "this update fetched {total} bytes so far: {} of artifacts, {} of casync chunks",
                stats.download_bytes,
                stats.chunk_bytes.unwrap_or(0)
            );
        }
    }

    /// The stats of `action` noted by this run or, after a reboot, by the one before.
    fn stats_of(&self, action: u64) -> Option<UpdateStats> {
        if let Some(s) = self.update_stats.filter(|s| s.action == action) {
            return Some(s);
        }
        let text = std::fs::read_to_string(self.stats_path()).ok()?;
        UpdateStats::decode(&text).filter(|s| s.action == action)
    }

    /// The core's feedback body with what the fleet report needs (see [`feedback_extras`]), or
    /// `None` to send it as it is.
    fn feedback_extras(&self, url: &str, body: &[u8]) -> Option<Vec<u8>> {
        let action: u64 = url
            .split("/deploymentBase/")
            .nth(1)?
            .split('/')
            .next()?
            .parse()
            .ok()?;
        let code = self
            .action_failure
            .filter(|(a, _)| a.0 == action)
            .map(|(_, f)| f.error_code());
        let stats = self.stats_of(action);
        feedback_extras(
            body,
            code,
            stats.map(|s| s.download_ms),
            stats.and_then(|s| s.update_bytes()),
        )
    }

    fn publish(&self, message: &serde_json::Value) {
        if let Some(t) = &self.telemetry {
            t.send(message);
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
                self.remove_files(action);
            }
            Work::Verify(a) => {
                let now = self.now();
                match self.verify(&a) {
                    Ok(()) => {
                        let _ = client.handle_event(now, Event::Verified);
                    }
                    Err(reason) => {
                        tracing::error!("{reason}");
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
            Work::Reboot(target, RebootReason::Update) => self.reboot(target.as_deref()).await,
            Work::Reboot(target, _) => self.reboot_to_previous_slot(target.as_deref()).await,
            Work::CheckHealth => self.start_health_check(),
            Work::Mark(bootname, mark) => {
                // Inline, not a task: a RAUC that never answers stalls the loop (bounded by
                // rauc::CALL_LIMIT) and so stops the watchdog's pings.
                let ok = self.mark_slot(&bootname, mark).await;
                let now = self.now();
                if let Err(e) = client.handle_event(now, Event::SlotMarked { ok }) {
                    tracing::warn!("event not taken by the core: {e}");
                }
            }
            Work::Remember(bootname) => self.remember_rejected(bootname.as_deref()),
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
            Work::Telemetry(t) => self.telemetry_sample(client, t),
            Work::Warning(w) => tracing::warn!("{w}"),
            Work::Stopped(StopReason::Unauthorized) => {
                self.halt = Some(
                    "hawkBit refused the credentials (401); check auth_token / gateway_token"
                        .to_owned(),
                );
            }
            Work::Stopped(StopReason::BootedSlotUnknown) => {
                self.halt = Some(
                    "an update waits for its verdict but RAUC does not say which slot booted; exiting so that the service manager starts eyas again".to_owned(),
                );
            }
            Work::Stopped(other) => self.halt = Some(format!("the DDI client stopped: {other:?}")),
        }
    }

    /// Publishes the core's sample; a failure carries the core's kind (`error_code`) and the
    /// text it sends to hawkBit (`ota_error`).
    fn telemetry_sample(&mut self, client: &Client, t: CoreTelemetry) {
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
        if let Some(f) = t.failure {
            self.failure = Some(f);
            if let Some(action) = t.action {
                self.action_failure = Some((action, f));
            }
            // a failed action's downloads are of no use: leave the directory as it was
            if let Some(action) = t.action {
                self.remove_files(action);
            }
        }
        let text = format!(
            "{:?}{}",
            t.phase,
            t.percent.map(|p| format!(" {p}%")).unwrap_or_default()
        );
        service::status(&text);
        let error = t.failure.map(|f| {
            let reason = match f {
                Failure::Canceled => "action canceled".to_owned(),
                _ => client.final_text().unwrap_or(f.as_str()).to_owned(),
            };
            (f.error_code(), reason)
        });
        let mut msg = telemetry::status(status, error.as_ref().map(|(c, r)| (*c, r.as_str())));
        // the action's end carries its bytes over the air once (several bundles summed), as
        // the closed feedback does
        let bytes = match (t.phase, t.action) {
            (
                TelemetryPhase::Succeeded | TelemetryPhase::Failed | TelemetryPhase::Canceled,
                Some(a),
            ) => self.stats_of(a.0),
            _ => None,
        };
        if let Some(values) = msg.get_mut("values").and_then(|v| v.as_object_mut()) {
            if let Some(p) = t.percent {
                values.insert("ota_progress".into(), p.into());
            }
            if let Some(s) = bytes
                && let Some(total) = s.update_bytes()
            {
                values.insert("update_bytes".into(), total.into());
                values.insert("chunk_bytes".into(), s.chunk_bytes.unwrap_or(0).into());
            }
        }
        self.publish(&msg);
    }
}

/// Adds to a closed feedback what `eyasctl report` reads from hawkBit's action history: the
/// failure's `error_code` as hawkBit's status `code`, a `download_duration_ms=N` and an
/// `update_bytes=N` detail (bytes over the air: artifacts + casync chunks; only when the chunk
/// relay counted them). Within hawkBit's limits: at most 50 messages, the code counting as one
/// (the core's own body has one detail). `None` when nothing was added or the body is not a
/// closed feedback.
fn feedback_extras(
    body: &[u8],
    code: Option<u16>,
    download_ms: Option<u64>,
    update_bytes: Option<u64>,
) -> Option<Vec<u8>> {
    const MAX_MESSAGES: usize = 50;
    let mut v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let status = v.get_mut("status")?.as_object_mut()?;
    if status.get("execution")?.as_str()? != "closed" {
        return None;
    }
    let failed = status
        .get("result")
        .and_then(|r| r.get("finished"))
        .and_then(serde_json::Value::as_str)
        == Some("failure");
    let mut changed = false;
    if let Some(c) = code.filter(|_| failed && !status.contains_key("code")) {
        status.insert("code".into(), c.into());
        changed = true;
    }
    let room = MAX_MESSAGES - usize::from(status.contains_key("code"));
    let extras = [
        download_ms.map(|ms| format!("download_duration_ms={ms}")),
        update_bytes.map(|b| format!("update_bytes={b}")),
    ];
    for extra in extras.into_iter().flatten() {
        let details = status
            .entry("details")
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let Some(d) = details.as_array_mut().filter(|d| d.len() < room) {
            d.push(extra.into());
            changed = true;
        }
    }
    if changed {
        serde_json::to_vec(&v).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::work::verify_file;
    use super::*;

    #[test]
    fn closed_feedback_carries_error_code_and_download_time() {
        let fail = br#"{"status":{"execution":"closed","result":{"finished":"failure"},"details":["fell back"]}}"#;
        let out = feedback_extras(fail, Some(400), Some(1234), Some(38_249)).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(v["status"]["code"], 400);
        assert_eq!(
            v["status"]["details"],
            serde_json::json!([
                "fell back",
                "download_duration_ms=1234",
                "update_bytes=38249"
            ])
        );
        // a success gets the download time, never a code
        let ok = br#"{"status":{"execution":"closed","result":{"finished":"success"}}}"#;
        let v: serde_json::Value = serde_json::from_slice(
            &feedback_extras(ok, Some(400), Some(5), None).unwrap_or_default(),
        )
        .unwrap_or_default();
        assert!(v["status"].get("code").is_none());
        assert_eq!(
            v["status"]["details"],
            serde_json::json!(["download_duration_ms=5"])
        );
        // progress feedback, nothing known, a full details list: unchanged
        let progress = br#"{"status":{"execution":"proceeding","result":{"finished":"none"},"details":["x"]}}"#;
        assert_eq!(feedback_extras(progress, Some(1), Some(1), Some(1)), None);
        assert_eq!(feedback_extras(ok, None, None, None), None);
        let full = serde_json::json!({"status": {"execution": "closed", "result": {"finished": "failure"},
            "code": 7, "details": vec!["d"; 49]}});
        assert_eq!(
            feedback_extras(full.to_string().as_bytes(), Some(400), Some(9), Some(9)),
            None,
            "49 details + a code are hawkBit's 50 messages"
        );
        assert_eq!(
            feedback_extras(b"not json", Some(1), Some(1), Some(1)),
            None
        );
    }

    #[test]
    fn update_stats_survive_as_one_line() {
        let s = UpdateStats {
            action: 7,
            download_ms: 1234,
            download_bytes: 38_249,
            chunk_bytes: Some(37_185),
        };
        assert_eq!(UpdateStats::decode(&s.encode()), Some(s));
        assert_eq!(s.update_bytes(), Some(75_434));
        let unknown = UpdateStats {
            chunk_bytes: None,
            ..s
        };
        assert_eq!(UpdateStats::decode(&unknown.encode()), Some(unknown));
        assert_eq!(
            unknown.update_bytes(),
            None,
            "no relay: the chunks are not known"
        );
        // the `action ms` line of an older eyas, and damaged files
        assert_eq!(
            UpdateStats::decode("7 1234\n"),
            Some(UpdateStats {
                download_bytes: 0,
                chunk_bytes: None,
                ..s
            })
        );
        for bad in ["", "7", "x 1", "7 1 y", "7 1 2 z", "-1 2"] {
            assert_eq!(UpdateStats::decode(bad), None, "{bad:?}");
        }
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
