//! A fleet of simulated devices, each one an `eyas_core::client::Client` driven as the Linux
//! shell drives it: the core makes every protocol decision (polling, ETags, feedback, retries and
//! backoff, the boot path), the simulated device performs what it asks — downloads over HTTP
//! (SHA-256 checked), an install that takes `work` time, a reboot into the written slot, the
//! health check and `Mark` — and feeds the results back. Failures are injected per device: by
//! number (`fail`) or by a rate per range of devices (`fail_rates`, in the rollout's cumulative
//! group percentages, since hawkBit fills a rollout's groups in target order).
//!
//! All devices run on one tokio runtime and share a small pool of keep-alive connections.
//! A closed feedback carries what `eyasctl report` reads, as eyas's shell adds it: the failure's
//! `error_code` as hawkBit's status `code`, a `download_duration_ms=N` and an `update_bytes=N`
//! detail (the bytes the update fetched over the air: here the artifacts' bytes, a simulated
//! device fetches no casync chunks). With a telemetry file each device writes the JSON lines
//! `eyasctl report --telemetry` reads (eyas's ThingsBoard messages with the device name),
//! `update_bytes`/`chunk_bytes` (0) in the sample that ends an action.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant as StdInstant, SystemTime, UNIX_EPOCH};

use eyas_core::client::{
    Action, BootReport, Client, ClientConfig, Event, Method, REQUEST_BUF_LEN, RebootReason,
    Response, SlotMark, StopReason, TelemetryPhase,
};
use eyas_core::time::{Duration, Instant};
use serde_json::{Value, json};
use sha2::Digest;
use tokio::sync::Semaphore;

use crate::client::{Conn, split_url};

/// How an injected failure shows (each is a different `error_code` in the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// The downloaded artifact does not verify (`verify`, 110).
    Verify,
    /// The install fails (`install`, 200).
    Install,
    /// The new slot boots but fails its health check (`health-check`, 300).
    Health,
    /// The bootloader falls back to the old slot (`fell-back`, 400).
    FallBack,
}

impl FailKind {
    /// Parses `verify`, `install`, `health`, `fallback`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "verify" => Some(Self::Verify),
            "install" => Some(Self::Install),
            "health" => Some(Self::Health),
            "fallback" => Some(Self::FallBack),
            _ => None,
        }
    }
}

/// One range of devices with its failure rate: devices below `upto_percent` % of the fleet (and
/// above the range before) fail at `rate_percent` %.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailRate {
    /// Cumulative upper bound of the range, in percent of the fleet.
    pub upto_percent: f64,
    /// Share of the range that fails, in percent.
    pub rate_percent: f64,
}

/// Parses `1:0,10:5,50:2,100:1` (cumulative percent of the fleet : failure rate in percent).
pub fn parse_fail_rates(s: &str) -> Result<Vec<FailRate>, String> {
    let mut out: Vec<FailRate> = Vec::new();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (a, b) = part
            .split_once(':')
            .ok_or_else(|| format!("'{part}': expected UPTO%:RATE%"))?;
        let upto: f64 = a
            .trim()
            .parse()
            .map_err(|_| format!("'{a}': not a number"))?;
        let rate: f64 = b
            .trim()
            .parse()
            .map_err(|_| format!("'{b}': not a number"))?;
        if !(0.0..=100.0).contains(&upto) || !(0.0..=100.0).contains(&rate) {
            return Err(format!("'{part}': percentages are 0..100"));
        }
        if out.last().is_some_and(|l| l.upto_percent >= upto) {
            return Err(format!("'{part}': ranges must grow"));
        }
        out.push(FailRate {
            upto_percent: upto,
            rate_percent: rate,
        });
    }
    Ok(out)
}

/// The fleet's settings.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// The server (`http://host:port`); every request goes to `addr`.
    pub url: String,
    /// Where the server listens.
    pub addr: SocketAddr,
    /// Tenant.
    pub tenant: String,
    /// controllerId prefix: devices are PREFIX000, PREFIX001, …
    pub prefix: String,
    /// Number of devices.
    pub count: usize,
    /// `GatewayToken` for all devices (else `TargetToken TOKEN_PREFIX+ID`).
    pub gateway_token: Option<String>,
    /// Target token prefix.
    pub token_prefix: String,
    /// Device numbers that fail.
    pub fail: Vec<usize>,
    /// Failure rates per range of devices.
    pub fail_rates: Vec<FailRate>,
    /// How the failing devices fail, in turn (empty: install).
    pub fail_kinds: Vec<FailKind>,
    /// Upper bound of the poll interval (the core's `poll_max` and active interval).
    pub max_poll: StdDuration,
    /// Install time.
    pub work: StdDuration,
    /// Reboot time.
    pub reboot: StdDuration,
    /// Stop after this long.
    pub duration: StdDuration,
    /// Most connections to the server at once.
    pub connections: usize,
    /// Write eyas's telemetry as JSON lines here.
    pub telemetry: Option<PathBuf>,
    /// One line per device event on stdout.
    pub verbose: bool,
}

impl FleetConfig {
    /// The device's controllerId.
    pub fn device_id(&self, n: usize) -> String {
        format!("{}{n:03}", self.prefix)
    }

    /// Whether and how device `n` fails.
    pub fn failure_of(&self, n: usize) -> Option<FailKind> {
        let kinds: &[FailKind] = if self.fail_kinds.is_empty() {
            &[FailKind::Install]
        } else {
            &self.fail_kinds
        };
        let kind = |ordinal: usize| kinds.get(ordinal % kinds.len()).copied();
        if let Some(i) = self.fail.iter().position(|&f| f == n) {
            return kind(i);
        }
        // the range n falls in, its bounds as hawkBit rounds a group's size
        let bound = |pct: f64| ((pct * self.count as f64 / 100.0) + 0.5).floor() as usize;
        let mut lo = 0;
        for (i, r) in self.fail_rates.iter().enumerate() {
            let hi = bound(r.upto_percent).min(self.count);
            if n < hi {
                // exactly floor(size × rate) failures, spread evenly over the range; the kinds
                // take turns by the failure's ordinal in its range
                let k = (n - lo) as f64;
                let rate = r.rate_percent / 100.0;
                let (before, upto) = ((k * rate).floor(), ((k + 1.0) * rate).floor());
                return if upto > before {
                    kind(before as usize + i)
                } else {
                    None
                };
            }
            lo = hi;
        }
        None
    }
}

/// Counts the fleet keeps while it runs.
#[derive(Debug, Default)]
pub struct FleetStats {
    /// HTTP requests sent (downloads included).
    pub requests: AtomicU64,
    /// Requests that got no response.
    pub transport_errors: AtomicU64,
    /// Actions that ended in success.
    pub succeeded: AtomicU64,
    /// Actions that ended in failure.
    pub failed: AtomicU64,
    /// Artifact bytes downloaded.
    pub download_bytes: AtomicU64,
    /// Simulated reboots.
    pub reboots: AtomicU64,
}

/// A pool of keep-alive connections shared by the devices.
#[derive(Debug)]
struct Pool {
    addr: SocketAddr,
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
}

impl Pool {
    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<crate::client::Response> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| std::io::Error::other("pool closed"))?;
        let taken = self.idle.lock().ok().and_then(|mut v| v.pop());
        let mut conn = taken.unwrap_or_else(|| Conn::new(self.addr));
        let r = tokio::time::timeout(
            StdDuration::from_secs(30),
            conn.request(method, path, headers, body),
        )
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("timed out")));
        if r.is_ok()
            && let Ok(mut v) = self.idle.lock()
        {
            v.push(conn);
        }
        r
    }
}

struct Shared {
    cfg: FleetConfig,
    pool: Pool,
    stats: Arc<FleetStats>,
    telemetry: Option<Mutex<BufWriter<File>>>,
    start: StdInstant,
}

impl Shared {
    fn now(&self) -> Instant {
        Instant::from_millis(u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn publish(&self, device: &str, values: Value) {
        if let Some(t) = &self.telemetry {
            let ts = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            let line = json!({"device": device, "ts": ts, "values": values}).to_string();
            if let Ok(mut w) = t.lock() {
                let _ = writeln!(w, "{line}");
            }
        }
    }
}

/// What a core action asks, owned (the action borrows the client).
enum Work {
    Persist(Vec<u8>),
    Clear,
    Download {
        action: u64,
        url: String,
        auth: Option<String>,
        artifact: u8,
    },
    Verify {
        artifact: u8,
        sha256: Option<[u8; 32]>,
    },
    Install,
    Reboot(Option<String>, RebootReason),
    CheckHealth,
    Mark(String, SlotMark),
    Remember(Option<String>),
    Ask(eyas_core::ddi::ActionId),
    Attributes,
    Telemetry(eyas_core::client::Telemetry),
    Stopped(StopReason),
    Nothing,
}

fn own(a: &Action<'_>) -> Work {
    match a {
        Action::PersistRecord(b) => Work::Persist(b.to_vec()),
        Action::ClearRecord => Work::Clear,
        Action::Download(r) => Work::Download {
            action: r.action.0,
            url: r.url.to_owned(),
            auth: r.authorization.map(str::to_owned),
            artifact: r.artifact,
        },
        Action::Verify(r) => Work::Verify {
            artifact: r.artifact,
            sha256: r.sha256,
        },
        Action::Install(_) | Action::RunConfigHook(_) => Work::Install,
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
        Action::Stopped(s) => Work::Stopped(*s),
        _ => Work::Nothing,
    }
}

/// One simulated device: what survives its reboots (record, slots, the download time) and the
/// client that is restarted on each.
struct Device {
    n: usize,
    id: String,
    auth: String,
    failure: Option<FailKind>,
    booted: String,
    record: Option<Vec<u8>>,
    rejected: Option<String>,
    /// The slot the last install wrote.
    installed: Option<String>,
    /// SHA-256 of each downloaded artifact of the current action.
    downloaded: HashMap<u8, [u8; 32]>,
    /// (action, download time in ms) — kept across the reboot, as eyas keeps it beside the record.
    download_ms: Option<(u64, u64)>,
    /// (action, artifact bytes downloaded) — the update's bytes over the air, kept likewise.
    update_bytes: Option<(u64, u64)>,
    /// (action, error_code) of the last failure.
    failure_code: Option<(u64, u16)>,
    download_started: Option<StdInstant>,
    stopped: bool,
}

fn other_slot(s: &str) -> &'static str {
    if s == "A" { "B" } else { "A" }
}

impl Device {
    fn config<'a>(&'a self, sh: &'a Shared) -> ClientConfig<'a> {
        let mut c = ClientConfig::new(&sh.cfg.url, &sh.cfg.tenant, &self.id);
        c.authorization = Some(&self.auth);
        let max = Duration::from_millis(
            u64::try_from(sh.cfg.max_poll.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
        );
        c.poll_min = Duration::from_millis(100).min(max);
        c.poll_max = max;
        c.active_poll_interval = max;
        c.seed = eyas_core::fnv1a64(self.id.as_bytes());
        c.backoff_initial = Duration::from_millis(500);
        c.backoff_max = Duration::from_secs(10);
        c
    }

    fn boot(&self, sh: &Shared, client: &mut Client) -> bool {
        let cfg = self.config(sh);
        if let Err(e) = client.configure(&cfg) {
            eprintln!("{}: bad client configuration: {e:?}", self.id);
            return false;
        }
        client.handle_boot(
            sh.now(),
            BootReport {
                record: self.record.as_deref(),
                booted: Some(&self.booted),
                rejected: self.rejected.as_deref(),
                running: None,
            },
        );
        true
    }

    async fn run(mut self, sh: Arc<Shared>) {
        let mut client = Box::new(Client::unconfigured());
        if !self.boot(&sh, &mut client) {
            return;
        }
        let deadline = sh.start + sh.cfg.duration;
        let mut buf = vec![0u8; REQUEST_BUF_LEN];
        while !self.stopped && StdInstant::now() < deadline {
            // 1. actions, in order
            while let Some(w) = client.poll_action().map(|a| own(&a)) {
                self.handle(&sh, &mut client, w).await;
            }
            if self.stopped {
                break;
            }
            // 2. the one request
            let now = sh.now();
            let req = match client.poll_request(now, &mut buf) {
                Ok(r) => r.map(|r| {
                    (
                        match r.method {
                            Method::Get => "GET",
                            Method::Post => "POST",
                            Method::Put => "PUT",
                        },
                        r.url.to_owned(),
                        r.authorization.map(str::to_owned),
                        r.if_none_match.map(str::to_owned),
                        r.content_type,
                        r.body.to_vec(),
                    )
                }),
                Err(e) => {
                    eprintln!("{}: request not written: {e}", self.id);
                    break;
                }
            };
            if let Some((method, url, auth, inm, ctype, body)) = req {
                let body = self.feedback_extras(&url, &body).unwrap_or(body);
                let mut h: Vec<(&str, &str)> = vec![("Accept", "application/json")];
                if let Some(a) = &auth {
                    h.push(("Authorization", a));
                }
                if let Some(e) = &inm {
                    h.push(("If-None-Match", e));
                }
                if let Some(c) = ctype {
                    h.push(("Content-Type", c));
                }
                let path = split_url(&url).map_or("/", |(_, p)| p);
                sh.stats.requests.fetch_add(1, Ordering::Relaxed);
                let r = sh.pool.request(method, path, &h, &body).await;
                let now = sh.now();
                match r {
                    Ok(r) => {
                        let etag = r.header("etag").map(str::to_owned);
                        let _ = client.handle_response(
                            now,
                            Response {
                                status: r.status,
                                etag: etag.as_deref(),
                                body: &r.body,
                            },
                        );
                    }
                    Err(e) => {
                        sh.stats.transport_errors.fetch_add(1, Ordering::Relaxed);
                        if sh.cfg.verbose {
                            println!("{}: {method} failed: {e}", self.id);
                        }
                        let _ = client.handle_transport_error(now);
                    }
                }
                continue;
            }
            // 3. sleep until the next deadline
            let Some(at) = client.poll_timeout() else {
                break;
            };
            let wait = at.as_millis().saturating_sub(sh.now().as_millis());
            let until = (StdInstant::now() + StdDuration::from_millis(wait)).min(deadline);
            tokio::time::sleep_until(until.into()).await;
            client.handle_timeout(sh.now());
        }
    }

    async fn handle(&mut self, sh: &Shared, client: &mut Client, w: Work) {
        let fail = self.failure;
        match w {
            Work::Persist(b) => self.record = Some(b),
            Work::Clear => self.record = None,
            Work::Download {
                action,
                url,
                auth,
                artifact,
            } => {
                if self.download_started.is_none() || artifact == 0 {
                    self.download_started = Some(StdInstant::now());
                    self.downloaded.clear();
                }
                let path = split_url(&url).map_or("/", |(_, p)| p).to_owned();
                let mut h = vec![("Accept", "application/octet-stream")];
                if let Some(a) = &auth {
                    h.push(("Authorization", a.as_str()));
                }
                sh.stats.requests.fetch_add(1, Ordering::Relaxed);
                let r = sh.pool.request("GET", &path, &h, b"").await;
                let now = sh.now();
                let ev = match &r {
                    Ok(r) if r.status == 200 => {
                        sh.stats
                            .download_bytes
                            .fetch_add(r.body.len() as u64, Ordering::Relaxed);
                        let mut d: [u8; 32] = sha2::Sha256::digest(&r.body).into();
                        if fail == Some(FailKind::Verify) {
                            d[0] ^= 1; // the bytes that landed are not the ones published
                        }
                        self.downloaded.insert(artifact, d);
                        let len = r.body.len() as u64;
                        self.update_bytes = Some(match self.update_bytes {
                            Some((a, b)) if a == action && artifact != 0 => {
                                (a, b.saturating_add(len))
                            }
                            _ => (action, len),
                        });
                        let ms = self
                            .download_started
                            .map_or(0, |s| u64::try_from(s.elapsed().as_millis()).unwrap_or(0));
                        self.download_ms = Some((action, ms));
                        sh.publish(
                            &self.id,
                            json!({"sw_state": "DOWNLOADED", "download_bytes": r.body.len(),
                                   "download_duration_ms": ms}),
                        );
                        Event::DownloadComplete
                    }
                    Ok(r) => Event::DownloadFailed {
                        http_status: Some(r.status),
                        reason: "download refused by the server",
                    },
                    Err(_) => Event::DownloadFailed {
                        http_status: None,
                        reason: "download failed (network)",
                    },
                };
                let _ = client.handle_event(now, ev);
            }
            Work::Verify { artifact, sha256 } => {
                let got = self.downloaded.get(&artifact);
                let ev = match (got, sha256) {
                    (Some(g), Some(want)) if *g == want => Event::Verified,
                    (Some(_), None) => Event::Verified, // no SHA-256 published: size was checked by the server
                    _ => Event::VerifyFailed {
                        reason: "SHA-256 mismatch (simulated)",
                    },
                };
                let _ = client.handle_event(sh.now(), ev);
            }
            Work::Install => {
                tokio::time::sleep(sh.cfg.work).await;
                let ev = if fail == Some(FailKind::Install) {
                    Event::InstallFailed {
                        reason: "simulated install failure",
                    }
                } else {
                    self.installed = Some(other_slot(&self.booted).to_owned());
                    Event::Installed {
                        slot: Some(other_slot(&self.booted)),
                    }
                };
                let _ = client.handle_event(sh.now(), ev);
            }
            Work::Reboot(target, reason) => {
                sh.stats.reboots.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(sh.cfg.reboot).await;
                let target = target.unwrap_or_else(|| other_slot(&self.booted).to_owned());
                // a fallback: the bootloader ran out of attempts on the new slot
                if !(reason == RebootReason::Update && fail == Some(FailKind::FallBack)) {
                    self.booted = target;
                }
                if sh.cfg.verbose {
                    println!("{}: rebooted into {}", self.id, self.booted);
                }
                if !self.boot(sh, client) {
                    self.stopped = true;
                }
            }
            Work::CheckHealth => {
                // the old slot is healthy; the one written by the update fails when told so
                let passed = fail != Some(FailKind::Health)
                    || self.installed.as_deref() != Some(self.booted.as_str());
                let _ = client.handle_event(sh.now(), Event::HealthChecked { passed });
            }
            Work::Mark(slot, mark) => {
                if sh.cfg.verbose {
                    println!("{}: mark {slot} {mark:?}", self.id);
                }
                let _ = client.handle_event(sh.now(), Event::SlotMarked { ok: true });
            }
            Work::Remember(b) => self.rejected = b,
            Work::Ask(action) => {
                let _ = client.handle_event(
                    sh.now(),
                    Event::ConfirmationAnswer {
                        action,
                        accepted: true,
                    },
                );
            }
            Work::Attributes => {
                let n = self.n.to_string();
                let _ = client.set_attributes(&[("simulated", "true"), ("device", &n)]);
            }
            Work::Telemetry(t) => self.telemetry(sh, client, t),
            Work::Stopped(s) => {
                eprintln!("{}: the client stopped: {s:?}", self.id);
                self.stopped = true;
            }
            Work::Nothing => {}
        }
    }

    fn telemetry(&mut self, sh: &Shared, client: &Client, t: eyas_core::client::Telemetry) {
        let (status, state) = match t.phase {
            TelemetryPhase::Downloading => ("downloading", Some("DOWNLOADING")),
            TelemetryPhase::Installing => ("installing", Some("UPDATING")),
            TelemetryPhase::Rebooting => ("rebooting", Some("UPDATING")),
            TelemetryPhase::Succeeded => ("success", Some("UPDATED")),
            TelemetryPhase::Failed | TelemetryPhase::Canceled => ("failure", Some("FAILED")),
            _ => ("idle", None),
        };
        let mut values = json!({"ota_status": status});
        if let Some(s) = state {
            values["sw_state"] = s.into();
        }
        // as eyas with its chunk relay: the action's end carries its bytes over the air, once
        // (here the artifacts; a simulated device fetches no casync chunks)
        if matches!(
            t.phase,
            TelemetryPhase::Succeeded | TelemetryPhase::Failed | TelemetryPhase::Canceled
        ) && let Some((_, bytes)) = self
            .update_bytes
            .filter(|(a, _)| Some(*a) == t.action.map(|x| x.0))
        {
            values["update_bytes"] = bytes.into();
            values["chunk_bytes"] = 0.into();
        }
        if let Some(f) = t.failure {
            if let Some(a) = t.action {
                self.failure_code = Some((a.0, f.error_code()));
            }
            let text = client.final_text().unwrap_or(f.as_str()).to_owned();
            values["error_code"] = f.error_code().into();
            values["ota_error"] = text.clone().into();
            values["sw_error"] = text.into();
        }
        match t.phase {
            TelemetryPhase::Succeeded => {
                sh.stats.succeeded.fetch_add(1, Ordering::Relaxed);
                if sh.cfg.verbose {
                    println!("{}: deployment -> success", self.id);
                }
            }
            TelemetryPhase::Failed => {
                sh.stats.failed.fetch_add(1, Ordering::Relaxed);
                if sh.cfg.verbose {
                    println!(
                        "{}: deployment -> failure ({})",
                        self.id,
                        t.failure.map_or("?", |f| f.as_str())
                    );
                }
            }
            _ => {}
        }
        // progress samples are not what the report reads: keep the file to the outcomes
        if matches!(
            t.phase,
            TelemetryPhase::Succeeded | TelemetryPhase::Failed | TelemetryPhase::Canceled
        ) {
            sh.publish(&self.id, values);
        }
    }

    /// What eyas's shell adds to a closed deployment feedback (see `linux-shell/src/agent`).
    fn feedback_extras(&self, url: &str, body: &[u8]) -> Option<Vec<u8>> {
        let action: u64 = url
            .split("/deploymentBase/")
            .nth(1)?
            .split('/')
            .next()?
            .parse()
            .ok()?;
        let code = self
            .failure_code
            .filter(|(a, _)| *a == action)
            .map(|(_, c)| c);
        let ms = self
            .download_ms
            .filter(|(a, _)| *a == action)
            .map(|(_, m)| m);
        let bytes = self
            .update_bytes
            .filter(|(a, _)| *a == action)
            .map(|(_, b)| b);
        closed_feedback_extras(body, code, ms, bytes)
    }
}

/// A closed feedback body with hawkBit's status `code` (on failure), a `download_duration_ms=N`
/// and an `update_bytes=N` detail, within hawkBit's 50 messages; `None` when it is not a closed
/// feedback or nothing is added.
pub fn closed_feedback_extras(
    body: &[u8],
    code: Option<u16>,
    ms: Option<u64>,
    update_bytes: Option<u64>,
) -> Option<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let status = v.get_mut("status")?.as_object_mut()?;
    if status.get("execution").and_then(Value::as_str) != Some("closed") {
        return None;
    }
    let failed = status.get("result").and_then(|r| r.get("finished")) == Some(&json!("failure"));
    let mut changed = false;
    if let Some(c) = code.filter(|_| failed && !status.contains_key("code")) {
        status.insert("code".into(), c.into());
        changed = true;
    }
    let room = 50 - usize::from(status.contains_key("code"));
    let extras = [
        ms.map(|ms| format!("download_duration_ms={ms}")),
        update_bytes.map(|b| format!("update_bytes={b}")),
    ];
    for detail in extras.into_iter().flatten() {
        let d = status
            .entry("details")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(d) = d.as_array_mut().filter(|d| d.len() < room) {
            d.push(detail.into());
            changed = true;
        }
    }
    if changed {
        serde_json::to_vec(&v).ok()
    } else {
        None
    }
}

/// Runs the fleet until `duration` has passed (or every client stopped); returns the counts.
pub async fn run(cfg: FleetConfig) -> std::io::Result<Arc<FleetStats>> {
    run_until(cfg, std::future::pending()).await
}

/// [`run`], ended early when `stop` completes.
pub async fn run_until(
    cfg: FleetConfig,
    stop: impl std::future::Future<Output = ()>,
) -> std::io::Result<Arc<FleetStats>> {
    let telemetry = match &cfg.telemetry {
        Some(p) => Some(Mutex::new(BufWriter::new(File::create(p)?))),
        None => None,
    };
    let stats = Arc::new(FleetStats::default());
    let sh = Arc::new(Shared {
        pool: Pool {
            addr: cfg.addr,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(cfg.connections.max(1)),
        },
        stats: stats.clone(),
        telemetry,
        start: StdInstant::now(),
        cfg,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..sh.cfg.count {
        let id = sh.cfg.device_id(n);
        let auth = match &sh.cfg.gateway_token {
            Some(g) => format!("GatewayToken {g}"),
            None => format!("TargetToken {}{id}", sh.cfg.token_prefix),
        };
        let dev = Device {
            n,
            failure: sh.cfg.failure_of(n),
            id,
            auth,
            booted: "A".into(),
            record: None,
            rejected: None,
            installed: None,
            downloaded: HashMap::new(),
            download_ms: None,
            update_bytes: None,
            failure_code: None,
            download_started: None,
            stopped: false,
        };
        tasks.spawn(dev.run(sh.clone()));
    }
    tokio::select! {
        () = async { while tasks.join_next().await.is_some() {} } => {}
        () = stop => tasks.abort_all(),
    }
    if let Some(t) = &sh.telemetry
        && let Ok(mut w) = t.lock()
    {
        w.flush()?;
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(count: usize) -> FleetConfig {
        FleetConfig {
            url: "http://127.0.0.1:1".into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            tenant: "DEFAULT".into(),
            prefix: "d".into(),
            count,
            gateway_token: None,
            token_prefix: "tok-".into(),
            fail: vec![],
            fail_rates: vec![],
            fail_kinds: vec![],
            max_poll: StdDuration::from_secs(1),
            work: StdDuration::ZERO,
            reboot: StdDuration::ZERO,
            duration: StdDuration::from_secs(1),
            connections: 1,
            telemetry: None,
            verbose: false,
        }
    }

    #[test]
    fn failure_rates_per_range_are_exact() {
        let mut c = cfg(10_000);
        c.fail_rates = parse_fail_rates("1:0,10:2,50:5,100:10").unwrap_or_default();
        c.fail_kinds = vec![FailKind::Install, FailKind::Health];
        let count = |a: usize, b: usize| (a..b).filter(|&n| c.failure_of(n).is_some()).count();
        assert_eq!(count(0, 100), 0);
        assert_eq!(count(100, 1000), 18);
        assert_eq!(count(1000, 5000), 200);
        assert_eq!(count(5000, 10_000), 500);
        // the kinds take turns within a range
        let kinds: Vec<FailKind> = (1000..5000).filter_map(|n| c.failure_of(n)).collect();
        let installs = kinds.iter().filter(|&&k| k == FailKind::Install).count();
        assert_eq!((installs, kinds.len() - installs), (100, 100));
        c.fail = vec![7, 3];
        assert_eq!(c.failure_of(3), Some(FailKind::Health));
        assert_eq!(c.failure_of(7), Some(FailKind::Install));
    }

    #[test]
    fn fail_rates_syntax() {
        assert!(parse_fail_rates("10:1,5:1").is_err());
        assert!(parse_fail_rates("10").is_err());
        assert!(parse_fail_rates("10:101").is_err());
        assert_eq!(parse_fail_rates("").map(|v| v.len()), Ok(0));
    }

    #[test]
    fn extras_only_on_closed_feedback() {
        let closed =
            br#"{"status":{"execution":"closed","result":{"finished":"failure"},"details":["x"]}}"#;
        let out =
            closed_feedback_extras(closed, Some(300), Some(12), Some(4096)).unwrap_or_default();
        let v: Value = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(v["status"]["code"], 300);
        assert_eq!(
            v["status"]["details"],
            json!(["x", "download_duration_ms=12", "update_bytes=4096"])
        );
        let ok =
            br#"{"status":{"execution":"closed","result":{"finished":"success"},"details":["x"]}}"#;
        let out = closed_feedback_extras(ok, Some(300), None, None);
        assert!(out.is_none(), "a success gets no code");
        let out = closed_feedback_extras(ok, None, None, Some(7)).unwrap_or_default();
        let v: Value = serde_json::from_slice(&out).unwrap_or_default();
        assert_eq!(v["status"]["details"], json!(["x", "update_bytes=7"]));
        let prog = br#"{"status":{"execution":"proceeding","result":{"finished":"none"}}}"#;
        assert!(closed_feedback_extras(prog, Some(1), Some(1), Some(1)).is_none());
        // hawkBit's 50 messages: the code counts as one, the extras fill what is left
        let full = json!({"status": {"execution": "closed", "result": {"finished": "failure"},
            "details": vec!["d"; 47]}})
        .to_string();
        let out = closed_feedback_extras(full.as_bytes(), Some(400), Some(1), Some(2))
            .unwrap_or_default();
        let v: Value = serde_json::from_slice(&out).unwrap_or_default();
        let d = v["status"]["details"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(d.len(), 49);
        assert_eq!(d.last(), Some(&json!("update_bytes=2")));
        let full = json!({"status": {"execution": "closed", "result": {"finished": "success"},
            "details": vec!["d"; 49]}})
        .to_string();
        let out =
            closed_feedback_extras(full.as_bytes(), None, Some(1), Some(2)).unwrap_or_default();
        let v: Value = serde_json::from_slice(&out).unwrap_or_default();
        let d = v["status"]["details"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(d.len(), 50);
        assert_eq!(d.last(), Some(&json!("download_duration_ms=1")));
    }
}
