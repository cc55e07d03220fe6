//! Simulation harness: the `Client` against a scripted hawkBit model and a device model on a
//! virtual clock (quinn `Pair` style). Everything is deterministic for a given seed.
#![allow(dead_code)]

use eyas_core::client::*;
use eyas_core::ddi::ActionId;
use eyas_core::record::{Phase, Record};
use eyas_core::time::{Duration, Instant};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

pub const BASE: &str = "http://hb.test/DEFAULT/controller/v1/dev-01";

// ------------------------------------------------------------------------------------------------
// deterministic RNG

#[derive(Clone)]
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

// ------------------------------------------------------------------------------------------------
// hawkBit model

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum St {
    WaitConfirm,
    Running,
    Canceling,
    Finished,
    Error,
    Canceled,
    Downloaded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Forced,
    Soft,
    DownloadOnly,
}

#[derive(Debug, Clone)]
pub struct ArtifactModel {
    pub filename: String,
    pub data: Vec<u8>,
    pub sha256: bool,
    pub link_rel: &'static str,
}

#[derive(Debug, Clone)]
pub struct ChunkModel {
    pub part: String,
    pub name: String,
    pub version: String,
    pub artifacts: Vec<ArtifactModel>,
}

#[derive(Debug, Clone)]
pub struct ActionModel {
    pub id: u64,
    pub st: St,
    pub kind: Kind,
    /// `None`: no schedule; `Some(open)`.
    pub window: Option<bool>,
    pub chunks: Vec<ChunkModel>,
    pub intermediate: u32,
    pub last_status: &'static str,
    pub denials: u32,
    pub messages: Vec<String>,
    pub ds: (String, String),
}

#[derive(Debug, Clone)]
pub struct Logged {
    pub t: Instant,
    pub method: Method,
    pub url: String,
    pub status: u16,
    pub body: String,
    pub if_none_match: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Status(u16),
    Network,
}

pub struct Server {
    pub sleep: String,
    pub actions: Vec<ActionModel>,
    pub attrs_requested: bool,
    pub config_puts: Vec<String>,
    pub installed_base_puts: Vec<String>,
    pub log: Vec<Logged>,
    pub max_intermediate: u32,
    /// Faults for the next requests whose URL contains the key ("" = any).
    pub faults: VecDeque<(&'static str, Fault)>,
    /// Faults for every request whose URL contains the first key and body the second, until
    /// removed (a hostile or broken server).
    pub sticky: Vec<(&'static str, &'static str, Fault)>,
    /// deploymentBase bodies served as given (e.g. not JSON).
    pub raw_deployments: BTreeMap<u64, String>,
    pub violations: Vec<String>,
    pub auth_ok: bool,
    pub full_downloads: BTreeMap<u64, u32>,
    /// Checks run when a closed/success arrives for an action with an os chunk.
    /// (booted bootname, marked good) as RAUC would say.
    pub device_view: Option<(String, bool)>,
    pub os_target_version: BTreeMap<u64, String>,
    /// Serve artifacts of closed actions too (e.g. from a CDN).
    pub serve_any: bool,
    /// Where artifacts are served (their URLs are `{artifact_base}/{action}/{chunk}/{artifact}`).
    pub artifact_base: String,
    /// `artifact_base` is the server's own origin (`http://hb.test`, however spelled), so
    /// downloads carry the credentials whatever `send_auth_on_download` says.
    pub artifact_base_is_server: bool,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn sha256(b: &[u8]) -> [u8; 32] {
    let d = Sha256::digest(b);
    let mut a = [0u8; 32];
    a.copy_from_slice(&d);
    a
}

impl Server {
    pub fn new() -> Self {
        Self {
            sleep: "00:05:00".into(),
            actions: Vec::new(),
            attrs_requested: true,
            config_puts: Vec::new(),
            installed_base_puts: Vec::new(),
            log: Vec::new(),
            max_intermediate: 1000,
            faults: VecDeque::new(),
            sticky: Vec::new(),
            raw_deployments: BTreeMap::new(),
            violations: Vec::new(),
            auth_ok: true,
            full_downloads: BTreeMap::new(),
            device_view: None,
            os_target_version: BTreeMap::new(),
            serve_any: false,
            artifact_base: "http://hb.test/art".into(),
            artifact_base_is_server: true,
        }
    }

    pub fn action(&self, id: u64) -> &ActionModel {
        self.actions.iter().find(|a| a.id == id).expect("action")
    }
    pub fn action_mut(&mut self, id: u64) -> &mut ActionModel {
        self.actions
            .iter_mut()
            .find(|a| a.id == id)
            .expect("action")
    }

    pub fn assign(&mut self, id: u64, kind: Kind, window: Option<bool>, chunks: Vec<ChunkModel>) {
        self.actions.push(ActionModel {
            id,
            st: St::Running,
            kind,
            window,
            chunks,
            intermediate: 0,
            last_status: "",
            denials: 0,
            messages: Vec::new(),
            ds: ("fw".into(), format!("v{id}")),
        });
    }

    fn active(&self) -> Option<&ActionModel> {
        self.actions
            .iter()
            .find(|a| matches!(a.st, St::Canceling))
            .or_else(|| {
                self.actions
                    .iter()
                    .find(|a| matches!(a.st, St::Running | St::WaitConfirm))
            })
    }

    fn c_hash(a: &ActionModel) -> u32 {
        let forced = matches!(a.kind, Kind::Forced | Kind::DownloadOnly);
        (a.id as u32) * 7 + u32::from(forced) * 3 + u32::from(a.window == Some(true)) * 11
    }

    fn base_body(&self) -> String {
        let mut links = Vec::new();
        if let Some(a) = self.active() {
            match a.st {
                St::Canceling => links.push(format!(
                    r#""cancelAction":{{"href":"{BASE}/cancelAction/{}"}}"#,
                    a.id
                )),
                St::WaitConfirm => links.push(format!(
                    r#""confirmationBase":{{"href":"{BASE}/confirmationBase/{}?c={}"}}"#,
                    a.id,
                    Self::c_hash(a)
                )),
                _ => links.push(format!(
                    r#""deploymentBase":{{"href":"{}/deploymentBase/{}?c={}"}}"#,
                    BASE.replace('/', "\\/"),
                    a.id,
                    Self::c_hash(a)
                )),
            }
        }
        if let Some(f) = self.actions.iter().rev().find(|a| a.st == St::Finished) {
            links.push(format!(
                r#""installedBase":{{"href":"{BASE}/installedBase/{}"}}"#,
                f.id
            ));
        }
        if self.attrs_requested {
            links.push(format!(r#""configData":{{"href":"{BASE}/configData"}}"#));
        }
        format!(
            r#"{{"config":{{"polling":{{"sleep":"{}"}}}},"_links":{{{}}},"unknown":[1,2.5,null]}}"#,
            self.sleep,
            links.join(",")
        )
    }

    fn deployment_body(a: &ActionModel, key: &str, artifact_base: &str) -> String {
        let (dl, up) = match a.kind {
            Kind::Forced => ("forced", "forced"),
            Kind::Soft => ("attempt", "attempt"),
            Kind::DownloadOnly => ("forced", "skip"),
        };
        let (up, mw) = match a.window {
            None => (up, String::new()),
            Some(true) => (up, r#","maintenanceWindow":"available""#.to_string()),
            Some(false) => ("skip", r#","maintenanceWindow":"unavailable""#.to_string()),
        };
        let mut chunks = Vec::new();
        for (ci, c) in a.chunks.iter().enumerate() {
            let mut arts = Vec::new();
            for (ai, art) in c.artifacts.iter().enumerate() {
                let sha = if art.sha256 {
                    format!(r#","sha256":"{}""#, hex(&sha256(&art.data)))
                } else {
                    String::new()
                };
                arts.push(format!(
                    r#"{{"filename":"{}","hashes":{{"sha1":"{}"{sha}}},"size":{},"_links":{{"{}":{{"href":"{}/{}/{ci}/{ai}"}},"md5sum-http":{{"href":"x"}}}}}}"#,
                    art.filename,
                    "0".repeat(40),
                    art.data.len(),
                    art.link_rel,
                    artifact_base,
                    a.id
                ));
            }
            chunks.push(format!(
                r#"{{"part":"{}","version":"{}","name":"{}","artifacts":[{}],"metadata":[{{"key":"k","value":"v"}}]}}"#,
                c.part,
                c.version,
                c.name,
                arts.join(",")
            ));
        }
        format!(
            r#"{{"id":"{}","{key}":{{"download":"{dl}","update":"{up}"{mw},"chunks":[{}]}},"actionHistory":{{"status":"RUNNING","messages":[]}}}}"#,
            a.id,
            chunks.join(",")
        )
    }

    fn add_intermediate(&mut self, id: u64, what: &'static str) -> bool {
        let max = self.max_intermediate;
        let a = self.action_mut(id);
        if a.intermediate >= max {
            return false;
        }
        a.intermediate += 1;
        a.last_status = what;
        true
    }

    fn parse_id(rest: &str) -> Option<u64> {
        rest.split(['/', '?']).next()?.parse().ok()
    }

    /// Handle one request; `Err(())` = network error.
    pub fn handle(
        &mut self,
        now: Instant,
        method: Method,
        url: &str,
        if_none_match: Option<&str>,
        auth: Option<&str>,
        body: &str,
    ) -> Result<(u16, Option<String>, String), ()> {
        let r = self.route(method, url, if_none_match, auth, body);
        let status = match &r {
            Ok((s, _, _)) => *s,
            Err(()) => 0,
        };
        self.log.push(Logged {
            t: now,
            method,
            url: url.into(),
            status,
            body: body.into(),
            if_none_match: if_none_match.map(Into::into),
        });
        r
    }

    fn route(
        &mut self,
        method: Method,
        url: &str,
        if_none_match: Option<&str>,
        auth: Option<&str>,
        body: &str,
    ) -> Result<(u16, Option<String>, String), ()> {
        if let Some(pos) = self
            .faults
            .iter()
            .position(|(k, _)| k.is_empty() || url.contains(k))
        {
            let (_, f) = self.faults.remove(pos).unwrap();
            return match f {
                Fault::Status(s) => Ok((s, None, String::new())),
                Fault::Network => Err(()),
            };
        }
        if let Some((_, _, f)) = self
            .sticky
            .iter()
            .find(|(u, b, _)| url.contains(u) && body.contains(b))
        {
            return match f {
                Fault::Status(s) => Ok((*s, None, String::new())),
                Fault::Network => Err(()),
            };
        }
        if !self.auth_ok || auth != Some("TargetToken secret") {
            return Ok((401, None, String::new()));
        }
        let Some(rest) = url.strip_prefix(BASE) else {
            return Ok((404, None, String::new()));
        };
        let empty = |s: u16| Ok((s, None, String::new()));
        if rest.is_empty() {
            assert_eq!(method, Method::Get);
            let b = self.base_body();
            let etag = format!("\"{}\"", hex(&sha256(b.as_bytes())[..8]));
            if if_none_match == Some(etag.as_str()) {
                return Ok((304, Some(etag), String::new()));
            }
            return Ok((200, Some(etag), b));
        }
        if let Some(r) = rest.strip_prefix("/deploymentBase/") {
            let id = Self::parse_id(r).ok_or(())?;
            let Some(a) = self.actions.iter().find(|a| a.id == id).cloned() else {
                return empty(404);
            };
            if method == Method::Get {
                if a.st != St::Running {
                    return empty(404);
                }
                if a.last_status != "RETRIEVED" && !self.add_intermediate(id, "RETRIEVED") {
                    // RETRIEVED is not logged when over quota; still served
                }
                if let Some(raw) = self.raw_deployments.get(&id) {
                    return Ok((200, None, raw.clone()));
                }
                return Ok((
                    200,
                    None,
                    Self::deployment_body(&a, "deployment", &self.artifact_base),
                ));
            }
            // feedback
            if matches!(
                a.st,
                St::Finished | St::Error | St::Canceled | St::Downloaded
            ) {
                return empty(410);
            }
            if a.st == St::WaitConfirm {
                return empty(404);
            }
            self.check_feedback(body);
            let closed = body.contains(r#""execution":"closed""#);
            let downloaded = body.contains(r#""execution":"downloaded""#);
            let success = body.contains(r#""finished":"success""#);
            self.action_mut(id).messages.push(body.into());
            if closed {
                if success {
                    if let Some(v) = self.os_target_version.get(&id).cloned() {
                        match self.device_view.clone() {
                            Some((_, true)) => {}
                            other => self
                                .violations
                                .push(format!("success for {id} ({v}) while device {other:?}")),
                        }
                    }
                    self.action_mut(id).st = St::Finished;
                    self.attrs_requested = true;
                } else {
                    self.action_mut(id).st = St::Error;
                }
                return empty(200);
            }
            if downloaded && a.kind == Kind::DownloadOnly {
                self.action_mut(id).st = St::Downloaded;
                self.attrs_requested = true;
                return empty(200);
            }
            if !self.add_intermediate(id, "RUNNING") {
                return Ok((
                    429,
                    None,
                    r#"{"errorCode":"hawkbit.server.error.quota.tooManyEntries"}"#.into(),
                ));
            }
            return empty(200);
        }
        if let Some(r) = rest.strip_prefix("/cancelAction/") {
            let id = Self::parse_id(r).ok_or(())?;
            let Some(a) = self.actions.iter().find(|a| a.id == id).cloned() else {
                return empty(404);
            };
            if method == Method::Get {
                if a.st != St::Canceling {
                    return empty(404);
                }
                return Ok((
                    200,
                    None,
                    format!(r#"{{"id":"{id}","cancelAction":{{"stopId":"{id}"}}}}"#),
                ));
            }
            self.check_feedback(body);
            if body.contains(r#""execution":"canceled""#) {
                self.violations
                    .push("sent `canceled` on the cancel channel".into());
            }
            if a.st != St::Canceling {
                return empty(405);
            }
            let closed = body.contains(r#""execution":"closed""#);
            let success = body.contains(r#""finished":"success""#);
            self.action_mut(id).messages.push(body.into());
            if closed && success {
                self.action_mut(id).st = St::Canceled;
            } else if closed || body.contains(r#""execution":"rejected""#) {
                self.action_mut(id).st = St::Running;
            }
            return empty(200);
        }
        if let Some(r) = rest.strip_prefix("/confirmationBase/") {
            let id = Self::parse_id(r).ok_or(())?;
            let Some(a) = self.actions.iter().find(|a| a.id == id).cloned() else {
                return empty(404);
            };
            if a.st != St::WaitConfirm {
                return empty(404);
            }
            if method == Method::Get {
                return Ok((
                    200,
                    None,
                    Self::deployment_body(&a, "confirmation", &self.artifact_base),
                ));
            }
            if body.contains(r#""confirmation":"confirmed""#) {
                self.action_mut(id).st = St::Running;
            } else if body.contains(r#""confirmation":"denied""#) {
                self.action_mut(id).denials += 1;
            } else {
                return empty(400);
            }
            return empty(200);
        }
        if rest == "/configData" && method == Method::Put {
            if !body.contains(r#""data":{"#) {
                return empty(400);
            }
            self.config_puts.push(body.into());
            self.attrs_requested = false;
            return empty(200);
        }
        if rest == "/installedBase" && method == Method::Put {
            self.installed_base_puts.push(body.into());
            return empty(201);
        }
        empty(404)
    }

    fn check_feedback(&mut self, body: &str) {
        if !body.contains(r#""finished":""#) {
            self.violations
                .push(format!("feedback without result.finished: {body}"));
        }
        if body.contains('<') && body.contains('>') {
            self.violations.push(format!("markup in details: {body}"));
        }
        if body.matches("\",\"").count() > 60 {
            self.violations.push("too many detail lines".into());
        }
    }

    /// Serve an artifact download (the shell does this over HTTP in real life).
    pub fn artifact(&mut self, url: &str, range: Option<u64>) -> Option<Vec<u8>> {
        let rest = url
            .strip_prefix(self.artifact_base.as_str())?
            .strip_prefix('/')?;
        let mut it = rest.split('/');
        let id: u64 = it.next()?.parse().ok()?;
        let ci: usize = it.next()?.parse().ok()?;
        let ai: usize = it.next()?.parse().ok()?;
        let a = self.actions.iter().find(|a| a.id == id)?;
        if !self.serve_any && !matches!(a.st, St::Running | St::Canceling) {
            return None;
        }
        let data = a.chunks.get(ci)?.artifacts.get(ai)?.data.clone();
        if range.is_none() {
            *self.full_downloads.entry(id).or_default() += 1;
            self.add_intermediate(id, "DOWNLOAD");
        }
        Some(data)
    }

    pub fn requests_to(&self, needle: &str) -> usize {
        self.log.iter().filter(|l| l.url.contains(needle)).count()
    }
}

pub fn chunk(part: &str, version: &str, sizes: &[usize]) -> ChunkModel {
    ChunkModel {
        part: part.into(),
        name: format!("{part}-module"),
        version: version.into(),
        artifacts: sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| ArtifactModel {
                // one bundle per chunk; the others stand for manifests and the like
                filename: if i == 0 {
                    format!("{part}-{version}-0.raucb")
                } else {
                    format!("{part}-{version}-{i}.raucb.manifest")
                },
                data: (0..n).map(|x| (x * 31 + i * 7) as u8).collect(),
                sha256: true,
                link_rel: if i % 2 == 0 {
                    "download-http"
                } else {
                    "download"
                },
            })
            .collect(),
    }
}

// ------------------------------------------------------------------------------------------------
// device model (what the linux shell does)

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Did {
    Persist(Record),
    Clear,
    Download {
        artifact: u8,
        range: Option<u64>,
    },
    Abort(ActionId),
    Verify(u8),
    Install {
        chunk: u8,
        part: String,
        kind: InstallKind,
        attempt: u8,
    },
    ConfigHook {
        chunk: u8,
    },
    /// Reboot into the slot just installed.
    Reboot(Option<String>),
    /// Reboot back to the slot that ran before (failed health check).
    RebootBack(Option<String>),
    CheckHealth,
    Mark(String, SlotMark),
    Remember(Option<String>),
    Ask(ActionId),
    AttributesRequested,
    Telemetry(Telemetry),
    Warning(Warning),
    Stopped(StopReason),
}

#[derive(Debug, Clone)]
struct Transfer {
    artifact: u8,
    url: String,
    sha256: Option<[u8; 32]>,
    size: u64,
    next: Instant,
}

/// The device: RAUC's slots by bootname plus a bootloader with RAUC's rules (boot the primary;
/// a scripted fallback keeps the old slot).
pub struct Device {
    pub record: Option<Vec<u8>>,
    /// Bootnames, in RAUC's system.conf order (slot 0 runs the factory image).
    pub slots: Vec<String>,
    pub booted: usize,
    pub primary: usize,
    /// Marked good since it last booted (or since it was installed).
    pub good: Vec<bool>,
    pub bad: Vec<bool>,
    pub slot_version: Vec<String>,
    /// What `RememberRejected` stored (kept across boots, like the shell's file).
    pub rejected: Option<String>,
    pub files: BTreeMap<u8, Vec<u8>>,
    transfer: Option<Transfer>,
    install: Option<(Instant, InstallKind, Option<usize>, String)>,
    pub rate: u64,
    pub install_time: Duration,
    pub cut_at: Vec<u64>,
    pub download_http_error: Option<u16>,
    /// The shell refuses the next download (a file name it cannot store, no space, …).
    pub download_refusal: Option<(DownloadRefusal, String)>,
    pub install_fails: bool,
    pub fallback_on_boot: bool,
    /// Health of updated slots (the factory slot 0 is always healthy).
    pub health_ok: bool,
    /// RAUC refuses every mark.
    pub marks_fail: bool,
    /// The shell cannot tell the booted slot (RAUC does not answer).
    pub booted_unknown: bool,
    pub corrupt_record_on_boot: bool,
    pub did: Vec<(Instant, Did)>,
    pub boots: u32,
    pub answer: Option<bool>,
    pub attrs: Vec<(String, String)>,
    pub pending_verify: Vec<(Instant, bool, String)>,
    /// What each `Download` carried: URL, `authorization`, `credentials`.
    pub download_credentials: Vec<(String, Option<String>, bool)>,
}

impl Device {
    pub fn new(bootnames: &[&str]) -> Self {
        let n = bootnames.len();
        let mut slot_version = vec![String::new(); n];
        slot_version[0] = "1.0.0".to_string();
        Self {
            record: None,
            slots: bootnames.iter().map(|b| b.to_string()).collect(),
            booted: 0,
            primary: 0,
            good: vec![true; n],
            bad: vec![false; n],
            slot_version,
            rejected: None,
            files: BTreeMap::new(),
            transfer: None,
            install: None,
            rate: 4096,
            install_time: Duration::from_secs(20),
            cut_at: Vec::new(),
            download_http_error: None,
            download_refusal: None,
            install_fails: false,
            fallback_on_boot: false,
            health_ok: true,
            marks_fail: false,
            booted_unknown: false,
            corrupt_record_on_boot: false,
            did: Vec::new(),
            boots: 0,
            answer: Some(true),
            attrs: vec![("hw_revision".into(), "2".into())],
            pending_verify: Vec::new(),
            download_credentials: Vec::new(),
        }
    }

    pub fn running_version(&self) -> String {
        self.slot_version[self.booted].clone()
    }

    pub fn booted_name(&self) -> &str {
        &self.slots[self.booted]
    }

    pub fn primary_name(&self) -> &str {
        &self.slots[self.primary]
    }

    pub fn index(&self, bootname: &str) -> Option<usize> {
        self.slots.iter().position(|s| s == bootname)
    }

    /// RAUC installs into the next slot after the booted one (any slot count).
    fn install_target(&self) -> usize {
        (self.booted + 1) % self.slots.len()
    }

    fn healthy(&self) -> bool {
        self.booted == 0 || self.health_ok
    }

    /// RAUC's `Mark`, with its effect on the bootloader's choice.
    fn mark(&mut self, bootname: &str, mark: SlotMark) -> bool {
        let Some(i) = self.index(bootname) else {
            return false;
        };
        if self.marks_fail {
            return false;
        }
        match mark {
            SlotMark::Good => {
                self.good[i] = true;
                self.bad[i] = false;
            }
            SlotMark::Bad => {
                self.bad[i] = true;
                self.good[i] = false;
                if self.primary == i {
                    // the bootloader takes the next bootable slot
                    if let Some(j) = (0..self.slots.len()).find(|&j| !self.bad[j]) {
                        self.primary = j;
                    }
                }
            }
            SlotMark::Active => {
                self.bad[i] = false;
                self.primary = i;
            }
            _ => return false,
        }
        true
    }

    pub fn count(&self, f: impl Fn(&Did) -> bool) -> usize {
        self.did.iter().filter(|(_, d)| f(d)).count()
    }
}

// ------------------------------------------------------------------------------------------------
// the pair

pub struct Knobs {
    pub confirmation: ConfirmationPolicy,
    pub progress_budget: u16,
    pub seed: u64,
    pub poll_override: Option<Duration>,
    pub poll_min: Duration,
    pub poll_max: Duration,
    pub jitter: u8,
    pub boot_attempts: u8,
    pub step: u8,
    /// RAUC's bootnames (slot 0 runs first).
    pub bootnames: Vec<&'static str>,
    /// `ClientConfig::send_auth_on_download`.
    pub send_auth_on_download: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            confirmation: ConfirmationPolicy::Auto,
            progress_budget: 200,
            seed: 7,
            poll_override: None,
            poll_min: Duration::from_secs(10),
            poll_max: Duration::from_secs(24 * 3600),
            jitter: 10,
            boot_attempts: 3,
            step: 25,
            bootnames: vec!["A", "B"],
            send_auth_on_download: true,
        }
    }
}

pub struct Sim {
    pub now: Instant,
    pub server: Server,
    pub dev: Device,
    pub client: Client,
    pub knobs: Knobs,
    pub steps: usize,
    /// Power cut when this returns true (checked after each action is handled).
    pub power_cut: Option<Box<dyn FnMut(&Device, &Client) -> bool>>,
    pub power_cuts: u32,
    buf: Vec<u8>,
    pub request_times: Vec<(Instant, RequestKind)>,
}

pub fn make_client(k: &Knobs) -> Client {
    let mut cfg = ClientConfig::new("http://hb.test/", "DEFAULT", "dev-01");
    cfg.authorization = Some("TargetToken secret");
    cfg.confirmation = k.confirmation;
    cfg.progress_budget = k.progress_budget;
    cfg.seed = k.seed;
    cfg.poll_override = k.poll_override;
    cfg.poll_min = k.poll_min;
    cfg.poll_max = k.poll_max;
    cfg.jitter_percent = k.jitter;
    cfg.boot_attempts = k.boot_attempts;
    cfg.progress_step_percent = k.step;
    cfg.active_poll_interval = Duration::from_secs(30);
    cfg.send_auth_on_download = k.send_auth_on_download;
    Client::new(&cfg).expect("config")
}

impl Sim {
    pub fn new(knobs: Knobs) -> Self {
        let client = make_client(&knobs);
        let mut s = Self {
            now: Instant::from_secs(1000),
            server: Server::new(),
            dev: Device::new(&knobs.bootnames),
            client,
            knobs,
            steps: 0,
            power_cut: None,
            power_cuts: 0,
            buf: vec![0; REQUEST_BUF_LEN],
            request_times: Vec::new(),
        };
        s.boot();
        s
    }

    /// Power on: new client, hand it the stored record.
    pub fn boot(&mut self) {
        self.dev.boots += 1;
        self.dev.transfer = None;
        self.dev.install = None;
        self.dev.pending_verify.clear();
        // the bootloader: boot the primary slot unless the fallback is scripted
        if self.dev.primary != self.dev.booted {
            if self.dev.fallback_on_boot {
                // attempts used up on the new slot: back to the one that ran
                self.dev.primary = self.dev.booted;
            } else {
                self.dev.booted = self.dev.primary;
                let b = self.dev.booted;
                self.dev.good[b] = false;
            }
        }
        let b = self.dev.booted;
        self.server.device_view = Some((self.dev.slots[b].clone(), self.dev.good[b]));
        self.client = make_client(&self.knobs);
        let attrs: Vec<(String, String)> = self.dev.attrs.clone();
        let pairs: Vec<(&str, &str)> = attrs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if !pairs.is_empty() {
            self.client.set_attributes(&pairs).expect("attributes");
        }
        let mut rec = self.dev.record.clone();
        if self.dev.corrupt_record_on_boot {
            if let Some(r) = rec.as_mut() {
                r[2] ^= 0x40;
            }
            self.dev.corrupt_record_on_boot = false;
        }
        let running = self.dev.running_version();
        let booted = self.dev.booted_name().to_string();
        let rejected = self.dev.rejected.clone();
        self.client.handle_boot(
            self.now,
            BootReport {
                record: rec.as_deref(),
                booted: (!self.dev.booted_unknown).then_some(booted.as_str()),
                rejected: rejected.as_deref(),
                running: Some(("fw", &running)),
            },
        );
    }

    fn handle_actions(&mut self) -> bool {
        let mut any = false;
        loop {
            let Some(a) = self.client.poll_action() else {
                break;
            };
            any = true;
            let now = self.now;
            let did = match a {
                Action::PersistRecord(b) => {
                    let rec = Record::decode(b).expect("own record decodes");
                    self.dev.record = Some(b.to_vec());
                    Did::Persist(rec)
                }
                Action::ClearRecord => {
                    self.dev.record = None;
                    Did::Clear
                }
                Action::Download(r) => {
                    assert!(self.dev.transfer.is_none(), "two downloads at once");
                    // the credential rule: the server's own origin always, others when configured
                    let expect =
                        self.server.artifact_base_is_server || self.knobs.send_auth_on_download;
                    assert_eq!(r.credentials, expect, "credentials for {}", r.url);
                    assert_eq!(
                        r.authorization,
                        expect.then_some("TargetToken secret"),
                        "authorization for {}",
                        r.url
                    );
                    self.dev.download_credentials.push((
                        r.url.to_string(),
                        r.authorization.map(str::to_string),
                        r.credentials,
                    ));
                    let have = self.dev.files.entry(r.artifact).or_default();
                    match r.range_start {
                        Some(n) => {
                            assert!(n as usize <= have.len(), "range start beyond stored bytes");
                            have.truncate(n as usize);
                        }
                        None => have.clear(),
                    }
                    self.dev.transfer = Some(Transfer {
                        artifact: r.artifact,
                        url: r.url.to_string(),
                        sha256: r.sha256,
                        size: r.size,
                        next: now + Duration::from_secs(1),
                    });
                    Did::Download {
                        artifact: r.artifact,
                        range: r.range_start,
                    }
                }
                Action::AbortDownload { action } => {
                    self.dev.transfer = None;
                    self.dev.files.clear();
                    Did::Abort(action)
                }
                Action::Verify(r) => {
                    let data = self.dev.files.get(&r.artifact).cloned().unwrap_or_default();
                    let ok =
                        data.len() as u64 == r.size && r.sha256.is_none_or(|h| h == sha256(&data));
                    let why = format!("sha256 mismatch for <{}>", r.filename);
                    self.dev
                        .pending_verify
                        .push((now + Duration::from_secs(1), ok, why));
                    Did::Verify(r.artifact)
                }
                Action::Install(r) => {
                    let target = self.dev.install_target();
                    let slot = (r.kind == InstallKind::RaucReboot).then_some(target);
                    self.dev.install = Some((
                        now + self.dev.install_time,
                        r.kind,
                        slot,
                        r.version.to_string(),
                    ));
                    Did::Install {
                        chunk: r.chunk,
                        part: r.part.to_string(),
                        kind: r.kind,
                        attempt: r.attempt,
                    }
                }
                Action::RunConfigHook(r) => {
                    self.dev.install = Some((
                        now + Duration::from_secs(2),
                        r.kind,
                        None,
                        r.version.to_string(),
                    ));
                    Did::ConfigHook { chunk: r.chunk }
                }
                Action::Reboot {
                    target_slot,
                    reason,
                    ..
                } => match reason {
                    RebootReason::Update => Did::Reboot(target_slot.map(str::to_string)),
                    _ => Did::RebootBack(target_slot.map(str::to_string)),
                },
                Action::CheckHealth => Did::CheckHealth,
                Action::MarkSlot { bootname, mark } => Did::Mark(bootname.to_string(), mark),
                Action::RememberRejected(b) => {
                    self.dev.rejected = b.map(str::to_string);
                    Did::Remember(b.map(str::to_string))
                }
                Action::AskConfirmation { action } => Did::Ask(action),
                Action::AttributesRequested => Did::AttributesRequested,
                Action::Telemetry(t) => Did::Telemetry(t),
                Action::Warning(w) => Did::Warning(w),
                Action::Stopped(s) => Did::Stopped(s),
            };
            self.dev.did.push((now, did.clone()));
            match did {
                Did::Reboot(_) | Did::RebootBack(_) => {
                    self.boot();
                }
                Did::CheckHealth => {
                    let passed = self.dev.healthy();
                    self.client
                        .handle_event(now, Event::HealthChecked { passed })
                        .expect("health event");
                }
                Did::Mark(ref name, mark) => {
                    let ok = self.dev.mark(name, mark);
                    let b = self.dev.booted;
                    self.server.device_view = Some((self.dev.slots[b].clone(), self.dev.good[b]));
                    self.client
                        .handle_event(now, Event::SlotMarked { ok })
                        .expect("mark event");
                }
                Did::Ask(id) => {
                    if let Some(ans) = self.dev.answer {
                        self.client
                            .handle_event(
                                now,
                                Event::ConfirmationAnswer {
                                    action: id,
                                    accepted: ans,
                                },
                            )
                            .expect("answer");
                    }
                }
                _ => {}
            }
            if let Some(mut f) = self.power_cut.take() {
                if f(&self.dev, &self.client) {
                    self.power_cuts += 1;
                    self.boot();
                    // keep the predicate: it decides itself whether to fire again
                }
                self.power_cut = Some(f);
            }
        }
        any
    }

    fn handle_requests(&mut self) -> bool {
        let now = self.now;
        let req = match self.client.poll_request(now, &mut self.buf) {
            Ok(Some(r)) => (
                r.kind,
                r.method,
                r.url.to_string(),
                r.if_none_match.map(str::to_string),
                r.authorization.map(str::to_string),
                String::from_utf8(r.body.to_vec()).expect("utf8 body"),
            ),
            Ok(None) => return false,
            Err(e) => panic!("poll_request: {e:?}"),
        };
        let (kind, method, url, inm, auth, body) = req;
        self.request_times.push((now, kind));
        match self
            .server
            .handle(now, method, &url, inm.as_deref(), auth.as_deref(), &body)
        {
            Ok((status, etag, body)) => self
                .client
                .handle_response(
                    now,
                    Response {
                        status,
                        etag: etag.as_deref(),
                        body: body.as_bytes(),
                    },
                )
                .expect("in flight"),
            Err(()) => self.client.handle_transport_error(now).expect("in flight"),
        }
        true
    }

    /// Device-side timers: transfer ticks, verify results, install completion.
    fn device_timers(&mut self) -> bool {
        let now = self.now;
        let mut any = false;
        if let Some(pos) = self
            .dev
            .pending_verify
            .iter()
            .position(|(t, _, _)| *t <= now)
        {
            let (_, ok, why) = self.dev.pending_verify.remove(pos);
            let ev = if ok {
                Event::Verified
            } else {
                Event::VerifyFailed { reason: &why }
            };
            self.client.handle_event(now, ev).expect("verify event");
            return true;
        }
        if let Some(t) = self.dev.transfer.clone() {
            if t.next <= now {
                any = true;
                if let Some(s) = self.dev.download_http_error.take() {
                    self.dev.transfer = None;
                    self.client
                        .handle_event(
                            now,
                            Event::DownloadFailed {
                                http_status: Some(s),
                                reason: "scripted HTTP error",
                            },
                        )
                        .expect("dl event");
                    return true;
                }
                if let Some((refusal, why)) = self.dev.download_refusal.take() {
                    self.dev.transfer = None;
                    self.client
                        .handle_event(
                            now,
                            Event::DownloadRefused {
                                refusal,
                                reason: &why,
                            },
                        )
                        .expect("dl event");
                    return true;
                }
                let stored = self.dev.files.get(&t.artifact).map_or(0, Vec::len);
                let range = (stored > 0).then_some(stored as u64);
                let Some(data) = self.server.artifact(&t.url, range) else {
                    self.dev.transfer = None;
                    self.client
                        .handle_event(
                            now,
                            Event::DownloadFailed {
                                http_status: Some(404),
                                reason: "HTTP 404 for the artifact",
                            },
                        )
                        .expect("dl event");
                    return true;
                };
                // one tick transfers `rate` bytes
                let mut end = (stored + self.dev.rate as usize).min(data.len());
                let mut cut = false;
                if let Some(pos) = self
                    .dev
                    .cut_at
                    .iter()
                    .position(|&c| c as usize > stored && (c as usize) <= end)
                {
                    end = self.dev.cut_at.remove(pos) as usize;
                    cut = true;
                }
                let f = self.dev.files.entry(t.artifact).or_default();
                f.extend_from_slice(&data[stored..end]);
                let received = f.len() as u64;
                if cut {
                    self.dev.transfer = None;
                    self.client
                        .handle_event(
                            now,
                            Event::DownloadInterrupted {
                                received,
                                reason: "connection cut",
                            },
                        )
                        .expect("dl event");
                } else if received >= t.size {
                    self.dev.transfer = None;
                    let _ = t.sha256;
                    self.client
                        .handle_event(now, Event::DownloadComplete)
                        .expect("dl event");
                } else {
                    self.dev.transfer.as_mut().unwrap().next = now + Duration::from_secs(1);
                    self.client
                        .handle_event(now, Event::DownloadProgress { received })
                        .expect("dl event");
                }
            }
        }
        if let Some((t, kind, slot, version)) = self.dev.install.clone() {
            if t <= now {
                any = true;
                self.dev.install = None;
                if self.dev.install_fails {
                    self.client
                        .handle_event(
                            now,
                            Event::InstallFailed {
                                reason: "Compatible <mismatch>",
                            },
                        )
                        .expect("install event");
                } else {
                    if let Some(s) = slot {
                        self.dev.slot_version[s] = version;
                        // RAUC: the installed slot becomes primary, not yet good
                        self.dev.primary = s;
                        self.dev.good[s] = false;
                        self.dev.bad[s] = false;
                    }
                    let _ = kind;
                    let name = slot.map(|s| self.dev.slots[s].clone());
                    self.client
                        .handle_event(
                            now,
                            Event::Installed {
                                slot: name.as_deref(),
                            },
                        )
                        .expect("install event");
                }
            } else if self.dev.install.is_some() {
                let _ = self
                    .client
                    .handle_event(now, Event::InstallProgress { percent: 50 });
            }
        }
        any
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let mut t = self.client.poll_timeout();
        let mut add = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        if let Some(tr) = &self.dev.transfer {
            add(tr.next);
        }
        if let Some((i, ..)) = &self.dev.install {
            add(*i);
        }
        for (v, ..) in &self.dev.pending_verify {
            add(*v);
        }
        t
    }

    /// One step: drain actions and requests, then jump to the next wake-up.
    pub fn step(&mut self) {
        self.steps += 1;
        loop {
            let a = self.handle_actions();
            let r = self.handle_requests();
            let d = self.device_timers();
            if !a && !r && !d {
                break;
            }
        }
        let Some(t) = self.next_wakeup() else { return };
        if t > self.now {
            self.now = t;
        }
        self.client.handle_timeout(self.now);
    }

    /// Step until `done` holds; panic after `max` steps (livelock guard).
    pub fn drive_bounded(&mut self, max: usize, mut done: impl FnMut(&Self) -> bool) {
        for _ in 0..max {
            if done(self) {
                return;
            }
            self.step();
        }
        if !done(self) {
            let tail: Vec<String> = self
                .server
                .log
                .iter()
                .rev()
                .take(12)
                .map(|l| format!("{:?} {} -> {} {}", l.method, l.url, l.status, l.body))
                .collect();
            let did: Vec<String> = self
                .dev
                .did
                .iter()
                .rev()
                .take(12)
                .map(|d| format!("{d:?}"))
                .collect();
            panic!("not done after {max} steps; last requests: {tail:#?}\nlast actions: {did:#?}");
        }
    }

    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        let mut guard = 0;
        while self.now < end {
            guard += 1;
            assert!(guard < 100_000, "livelock");
            let before = (self.now, self.server.log.len(), self.dev.did.len());
            self.step();
            if (self.now, self.server.log.len(), self.dev.did.len()) == before {
                // nothing scheduled at all: idle until the end
                self.now = end;
            }
        }
    }

    pub fn assert_clean(&self) {
        assert!(
            self.server.violations.is_empty(),
            "{:?}",
            self.server.violations
        );
        for a in &self.server.actions {
            assert!(
                a.intermediate < 1000,
                "action {} hit {} statuses",
                a.id,
                a.intermediate
            );
        }
    }

    pub fn feedback_bodies(&self, id: u64) -> Vec<String> {
        self.server.action(id).messages.clone()
    }

    /// No action is pending: no record, or the record of a closed action.
    pub fn nothing_pending(&self) -> bool {
        matches!(self.record_phase(), None | Some(Phase::Closed))
    }

    pub fn record_phase(&self) -> Option<Phase> {
        self.dev
            .record
            .as_ref()
            .map(|b| Record::decode(b).unwrap().phase)
    }
}

pub fn summary(s: &Sim) -> String {
    let mut out = String::new();
    for l in &s.server.log {
        let _ = writeln!(
            out,
            "{:>8} {:?} {} {}",
            l.t.as_millis(),
            l.method,
            l.url,
            l.status
        );
    }
    out
}
