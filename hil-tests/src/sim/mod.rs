//! The hawkBit simulator: start it in-process with [`Sim::start`], or run the `hawkbit-sim` binary.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use hil_tests::sim::{AssignOptions, Sim, SimConfig};
//! let sim = Sim::start(SimConfig::default()).await?; // binds 127.0.0.1:0
//! let token = sim.create_target("dev-01", None)?;
//! let sm = sim.create_software_module("rootfs", "1.2.0", "os")?;
//! sim.add_artifact_bytes(sm, "rootfs.raucb", b"bundle bytes")?;
//! let ds = sim.create_distribution_set("fw", "1.2.0", "os", &[sm])?;
//! let action = sim.assign("dev-01", ds, AssignOptions::default())?;
//! // the device under test now polls sim.ddi_url("dev-01") with "TargetToken {token}"
//! assert_eq!(sim.action_status(action).as_deref(), Some("running"));
//! sim.shutdown().await;
//! # let _ = token; Ok(()) }
//! ```
//!
//! Everything the HTTP APIs can do is also reachable through [`SimHandle::with_state`].
//!
//! Runtime: the server and the rollout scheduler are spawned on the caller's Tokio runtime. With a
//! blocking HTTP client (e.g. `ureq`) in the same test, use a multi-thread runtime
//! (`#[tokio::test(flavor = "multi_thread")]`) or keep the simulator on its own runtime as the
//! integration tests in `hil-tests/tests/common` do; a current-thread runtime blocked by a synchronous
//! request cannot serve it.

pub mod artifacts;
pub mod control;
pub mod cron;
pub mod ddi;
pub mod fiql;
pub mod http;
pub mod mgmt;
pub mod model;
pub mod time;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use cron::MaintenanceWindow;
pub use model::{ActionType, AssignOptions, Failure, State, Status, WindowOverride};

/// Fault settings, globally or for one target. All fields default to "off".
///
/// JSON form (`/sim/faults`): `{"latencyMs":200,"errorRate":0.1,"errorStatus":503,"cutAfterBytes":1000000,
/// "cutCount":1,"corruptOffset":4096,"bandwidthBytesPerSec":1000000}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Faults {
    /// Added latency before every DDI request is handled.
    pub latency_ms: u64,
    /// Probability 0.0–1.0 that a DDI request is answered with `error_status` instead.
    pub error_rate: f64,
    /// Status for injected errors (default 503; 429 and 5xx are typical).
    pub error_status: Option<u16>,
    /// Abort the connection after this many body bytes of an artifact download.
    pub cut_after_bytes: Option<u64>,
    /// How many downloads to cut (None = every one).
    pub cut_count: Option<u32>,
    /// Flip the byte at this artifact offset (XOR 0xFF) in every download covering it.
    pub corrupt_offset: Option<u64>,
    /// Cap artifact download speed (bytes per second).
    pub bandwidth_bytes_per_sec: Option<u64>,
}

/// Global faults plus per-target overrides (a target entry replaces the global one for that target).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct FaultSet {
    /// Applies to every target without its own entry.
    pub global: Faults,
    /// Per controllerId.
    pub targets: BTreeMap<String, Faults>,
}

impl FaultSet {
    /// Effective faults for a target.
    pub fn for_target(&self, cid: Option<&str>) -> &Faults {
        cid.and_then(|c| self.targets.get(c))
            .unwrap_or(&self.global)
    }
}

/// Start-up configuration. `Default` = hawkBit defaults on `127.0.0.1:0`, tenant `DEFAULT`, admin:admin,
/// target-token auth enabled.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Address to bind (`127.0.0.1:0` = free port).
    pub addr: SocketAddr,
    /// Tenant (matched case-insensitively in DDI URLs).
    pub tenant: String,
    /// Artifact directory; `None` = a fresh temp dir, removed on shutdown.
    pub storage_dir: Option<PathBuf>,
    /// Mgmt API Basic-auth user.
    pub mgmt_user: String,
    /// Mgmt API Basic-auth password.
    pub mgmt_password: String,
    /// `authentication.targettoken.enabled` at start (stock hawkBit: false; simulator default: true).
    pub target_token_auth: bool,
    /// Enables gateway-token auth with this key.
    pub gateway_token: Option<String>,
    /// `pollingTime` (`HH:MM:SS`, optional `~N%` jitter).
    pub polling_time: String,
    /// `minPollingTime` in seconds (hawkBit default 30).
    pub min_polling_secs: u64,
    /// `maxPollingTime` in seconds (hawkBit default 23:59:59; raise it to see ISO-8601 `sleep`).
    pub max_polling_secs: u64,
    /// `user.confirmation.flow.enabled` at start.
    pub confirmation_flow: bool,
    /// Rollout scheduler period (hawkBit default 2 s).
    pub rollout_interval: Duration,
    /// Faults at start.
    pub faults: FaultSet,
    /// Log one line per request to stderr.
    pub log_requests: bool,
    /// RNG seed (tokens, jitter, error injection); None = from the clock.
    pub seed: Option<u64>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            tenant: "DEFAULT".into(),
            storage_dir: None,
            mgmt_user: "admin".into(),
            mgmt_password: "admin".into(),
            target_token_auth: true,
            gateway_token: None,
            polling_time: "00:05:00".into(),
            min_polling_secs: 30,
            max_polling_secs: 23 * 3600 + 59 * 60 + 59,
            confirmation_flow: false,
            rollout_interval: Duration::from_secs(2),
            faults: FaultSet::default(),
            log_requests: false,
            seed: None,
        }
    }
}

/// Errors from starting the simulator.
#[derive(Debug)]
pub enum SimError {
    /// Binding or storage I/O failed.
    Io(std::io::Error),
    /// Invalid configuration.
    Config(String),
}

impl std::fmt::Display for SimError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "hawkbit-sim: I/O error: {e}"),
            Self::Config(e) => write!(f, "hawkbit-sim: bad configuration: {e}"),
        }
    }
}

impl std::error::Error for SimError {}

impl From<std::io::Error> for SimError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Ctl {
    generation: u64,
    down_ms: u64,
    shutdown: bool,
}

/// State shared by all request handlers.
#[derive(Debug)]
pub struct Shared {
    state: Mutex<State>,
    faults: Mutex<FaultSet>,
    /// Artifact directory.
    pub storage: PathBuf,
    remove_storage: bool,
    mgmt_user: String,
    mgmt_password: String,
    ctl: watch::Sender<Ctl>,
    /// Generation whose listener is bound (a restart is over once it reaches the restart's).
    up: watch::Sender<u64>,
    /// Requests served.
    pub requests: AtomicU64,
    log_requests: bool,
    request_log: Mutex<std::collections::VecDeque<RequestRecord>>,
    addr: Mutex<SocketAddr>,
}

impl Shared {
    /// Locks the model (poisoning is recovered: a panicked handler must not take the server down).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    /// Locks the faults.
    pub fn faults(&self) -> MutexGuard<'_, FaultSet> {
        self.faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    /// Do these request headers carry the Mgmt API's HTTP Basic credentials?
    pub fn mgmt_credentials_ok(&self, headers: &axum::http::HeaderMap) -> bool {
        headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Basic "))
            .and_then(http::base64_decode)
            .and_then(|b| String::from_utf8(b).ok())
            .is_some_and(|s| {
                s.split_once(':')
                    .is_some_and(|(u, p)| u == self.mgmt_user && p == self.mgmt_password)
            })
    }
    /// Is the server bound to a loopback address only? Otherwise `/sim` needs the Mgmt credentials.
    pub fn loopback_only(&self) -> bool {
        self.addr.lock().is_ok_and(|a| a.ip().is_loopback())
    }
    /// `host:port` to use in links when the request has no Host header.
    pub fn host(&self) -> String {
        self.addr.lock().map(|a| a.to_string()).unwrap_or_default()
    }
    /// Triggers a simulated restart: all connections dropped, listener closed for `down`. Returns
    /// the restart's generation (see [`SimHandle::restart`]).
    pub fn restart(&self, down: Duration) -> u64 {
        let mut generation = 0;
        self.ctl.send_modify(|c| {
            c.generation += 1;
            c.down_ms = u64::try_from(down.as_millis()).unwrap_or(u64::MAX);
            generation = c.generation;
        });
        generation
    }
}

/// One served request, as recorded in the request log (the last [`REQUEST_LOG_LEN`] are kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRecord {
    /// Server time (ms since epoch) when the request arrived.
    pub at_ms: i64,
    /// HTTP method.
    pub method: String,
    /// Path (without query).
    pub path: String,
    /// Query string, if any.
    pub query: Option<String>,
    /// Response status.
    pub status: u16,
    /// `Range` header, if any.
    pub range: Option<String>,
    /// `If-Range` header, if any.
    pub if_range: Option<String>,
    /// Authorization scheme (`TargetToken`, `GatewayToken`, `Basic`), never the secret.
    pub auth_scheme: Option<String>,
    /// The response was an injected fault.
    pub injected: bool,
}

/// How many requests the log keeps.
pub const REQUEST_LOG_LEN: usize = 10_000;

impl Shared {
    /// Appends to the bounded request log.
    pub fn record(&self, r: RequestRecord) {
        let mut log = self
            .request_log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if log.len() >= REQUEST_LOG_LEN {
            log.pop_front();
        }
        log.push_back(r);
    }
    /// Snapshot of the request log, oldest first.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.request_log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }
    /// Empties the request log.
    pub fn clear_request_log(&self) {
        self.request_log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// Entry point: see the module docs.
#[derive(Debug)]
pub struct Sim;

/// A running simulator. Dropping it does not stop the server; call [`SimHandle::shutdown`].
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    tenant: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
    scheduler: JoinHandle<()>,
}

/// Peer address of the connection, inserted into each request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl Sim {
    /// Binds, spawns the server and the rollout scheduler on the current Tokio runtime, returns a handle.
    pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
        let (storage, remove_storage) = match &config.storage_dir {
            Some(d) => (d.clone(), false),
            None => {
                static N: AtomicU64 = AtomicU64::new(0);
                let d = std::env::temp_dir().join(format!(
                    "hawkbit-sim-{}-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed),
                    time::now_ms()
                ));
                (d, true)
            }
        };
        std::fs::create_dir_all(&storage)?;
        let polling = model::parse_polling(&config.polling_time).ok_or_else(|| {
            SimError::Config(format!(
                "polling time '{}' is not HH:MM:SS[~N%]",
                config.polling_time
            ))
        })?;
        if polling.0 < config.min_polling_secs || polling.0 > config.max_polling_secs {
            return Err(SimError::Config(format!(
                "polling time '{}' is outside min/max polling time",
                config.polling_time
            )));
        }
        let tenant_cfg = model::TenantConfig {
            polling_time: config.polling_time.clone(),
            polling_overdue_time: "00:05:00".into(),
            target_token_enabled: config.target_token_auth,
            gateway_token_enabled: config.gateway_token.is_some(),
            gateway_token_key: config.gateway_token.clone().unwrap_or_default(),
            confirmation_flow: config.confirmation_flow,
            autoclose: false,
        };
        let limits = model::Limits {
            min_polling_secs: config.min_polling_secs,
            max_polling_secs: config.max_polling_secs,
            ..model::Limits::default()
        };
        let seed = config
            .seed
            .unwrap_or_else(|| time::now_ms() as u64 ^ u64::from(std::process::id()) << 32);
        let listener = TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        let (ctl, _) = watch::channel(Ctl::default());
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(&config.tenant, tenant_cfg, limits, seed)),
            faults: Mutex::new(config.faults.clone()),
            storage,
            remove_storage,
            mgmt_user: config.mgmt_user.clone(),
            mgmt_password: config.mgmt_password.clone(),
            ctl,
            up: watch::channel(0).0,
            requests: AtomicU64::new(0),
            request_log: Mutex::new(std::collections::VecDeque::new()),
            log_requests: config.log_requests,
            addr: Mutex::new(addr),
        });
        let app = router(shared.clone());
        let server = tokio::spawn(serve(shared.clone(), listener, addr, app));
        let sched_shared = shared.clone();
        let period = config.rollout_interval.max(Duration::from_millis(10));
        let scheduler = tokio::spawn(async move {
            let mut iv = tokio::time::interval(period);
            iv.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                iv.tick().await;
                sched_shared.state().rollout_tick(time::now_ms());
            }
        });
        Ok(SimHandle {
            addr,
            tenant: config.tenant.clone(),
            shared,
            server,
            scheduler,
        })
    }
}

/// Builds the complete axum router (DDI + Mgmt + `/sim`).
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .merge(ddi::routes())
        .merge(mgmt::routes(shared.clone()))
        .merge(control::routes(shared.clone()))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            control::fault_layer,
        ))
        .with_state(shared)
}

async fn serve(shared: Arc<Shared>, first: TcpListener, addr: SocketAddr, app: Router) {
    let mut rx = shared.ctl.subscribe();
    let mut listener = Some(first);
    let mut generation = 0;
    loop {
        let l = match listener.take() {
            Some(l) => l,
            None => {
                let mut tries = 0;
                loop {
                    match TcpListener::bind(addr).await {
                        Ok(l) => {
                            shared.up.send_replace(generation);
                            break l;
                        }
                        Err(e) if tries < 100 => {
                            tries += 1;
                            if tries == 1 {
                                eprintln!("hawkbit-sim: rebind {addr}: {e}; retrying");
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        Err(e) => {
                            eprintln!("hawkbit-sim: cannot rebind {addr}: {e}; giving up");
                            return;
                        }
                    }
                }
            }
        };
        loop {
            tokio::select! {
                acc = l.accept() => {
                    let Ok((stream, peer)) = acc else { continue };
                    let _ = stream.set_nodelay(true);
                    let app = app.clone();
                    let mut conn_rx = rx.clone();
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                            req.extensions_mut().insert(Peer(peer));
                            tower::ServiceExt::oneshot(app.clone(), req)
                        });
                        let conn = hyper::server::conn::http1::Builder::new()
                            .keep_alive(true)
                            .serve_connection(TokioIo::new(stream), svc);
                        tokio::select! {
                            _ = conn => {}
                            _ = conn_rx.changed() => {}
                        }
                    });
                }
                changed = rx.changed() => {
                    if changed.is_err() { return; }
                    break;
                }
            }
        }
        drop(l);
        let c = *rx.borrow_and_update();
        generation = c.generation;
        if c.shutdown {
            return;
        }
        eprintln!("hawkbit-sim: simulated restart, down for {} ms", c.down_ms);
        tokio::time::sleep(Duration::from_millis(c.down_ms)).await;
    }
}

impl SimHandle {
    /// Bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// Tenant name.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }
    /// DDI base URL of a controller: `http://…/DEFAULT/controller/v1/{id}`.
    pub fn ddi_url(&self, controller_id: &str) -> String {
        format!(
            "{}/{}/controller/v1/{}",
            self.url(),
            self.tenant,
            controller_id
        )
    }
    /// Shared state (for the HTTP layers and advanced tests).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
    /// Runs `f` with the model locked: full programmatic access (targets, actions, rollouts, configs).
    pub fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.shared.state())
    }
    /// Creates a target; returns its security token (generated when `token` is None).
    pub fn create_target(
        &self,
        controller_id: &str,
        token: Option<&str>,
    ) -> Result<String, Failure> {
        let now = time::now_ms();
        self.with_state(|s| {
            s.create_target(controller_id, None, "", token, None, now)
                .map(|t| t.security_token.clone())
        })
    }
    /// Creates a software module (`kind` = type key, e.g. `os`).
    pub fn create_software_module(
        &self,
        name: &str,
        version: &str,
        kind: &str,
    ) -> Result<u64, Failure> {
        let now = time::now_ms();
        self.with_state(|s| s.create_module(name, version, kind, "", "", false, now))
    }
    /// Stores an artifact from memory (blocking file write).
    pub fn add_artifact_bytes(
        &self,
        module: u64,
        filename: &str,
        bytes: &[u8],
    ) -> Result<model::Artifact, Failure> {
        let tmp = artifacts::temp_path(&self.shared.storage);
        std::fs::write(&tmp, bytes).map_err(|e| Failure::new(500, "io", e.to_string()))?;
        self.add_artifact_file_owned(module, filename, &tmp)
    }
    /// Stores an artifact by copying a file (blocking; streams, never loads it whole).
    pub fn add_artifact_file(
        &self,
        module: u64,
        filename: &str,
        path: &Path,
    ) -> Result<model::Artifact, Failure> {
        let tmp = artifacts::temp_path(&self.shared.storage);
        std::fs::copy(path, &tmp)
            .map_err(|e| Failure::new(500, "io", format!("{}: {e}", path.display())))?;
        self.add_artifact_file_owned(module, filename, &tmp)
    }
    fn add_artifact_file_owned(
        &self,
        module: u64,
        filename: &str,
        tmp: &Path,
    ) -> Result<model::Artifact, Failure> {
        let hashes = artifacts::hash_file(tmp).map_err(|e| Failure::new(500, "io", e.to_string()));
        let res = hashes.and_then(|h| {
            let now = time::now_ms();
            self.with_state(|s| {
                artifacts::register(s, &self.shared.storage, module, filename, tmp, h, now)
            })
        });
        if res.is_err() {
            let _ = std::fs::remove_file(tmp);
        }
        res
    }
    /// Creates a software-module type like `POST /rest/v1/softwaremoduletypes`; its key is the
    /// DDI chunk `part` of its modules (e.g. `config`). Returns the type id.
    pub fn create_software_module_type(
        &self,
        key: &str,
        name: &str,
        max_assignments: u32,
    ) -> Result<u64, Failure> {
        let now = time::now_ms();
        self.with_state(|s| s.add_sm_type(key, name, "", max_assignments, now))
    }
    /// Creates a distribution-set type like `POST /rest/v1/distributionsettypes`, naming the
    /// module type keys a set must (`mandatory`) and may (`optional`) hold. Returns the type id.
    pub fn create_distribution_set_type(
        &self,
        key: &str,
        name: &str,
        mandatory: &[&str],
        optional: &[&str],
    ) -> Result<u64, Failure> {
        let now = time::now_ms();
        self.with_state(|s| s.add_ds_type(key, name, "", mandatory, optional, now))
    }
    /// Creates a distribution set (`kind` `os`, `app`, `os_app` or a created type's key).
    pub fn create_distribution_set(
        &self,
        name: &str,
        version: &str,
        kind: &str,
        modules: &[u64],
    ) -> Result<u64, Failure> {
        let now = time::now_ms();
        self.with_state(|s| s.create_ds(name, version, kind, "", modules, false, now))
    }
    /// Assigns a DS to a target; returns the action id (the existing one if already assigned).
    pub fn assign(&self, target: &str, ds: u64, opts: AssignOptions) -> Result<u64, Failure> {
        let now = time::now_ms();
        self.with_state(|s| {
            s.assign(target, ds, &opts, now).map(|a| match a {
                model::Assigned::New(id) | model::Assigned::Already(id) => id,
            })
        })
    }
    /// Sets a tenant configuration value exactly like `PUT /rest/v1/system/configs/{key}`, e.g.
    /// `sim.set_config("pollingTime", serde_json::json!("00:00:05"))` (validated against min/max).
    pub fn set_config(&self, key: &str, value: serde_json::Value) -> Result<(), Failure> {
        self.with_state(|s| s.set_config(key, &value))
    }
    /// Operator cancel of an action.
    pub fn cancel(&self, target: &str, action: u64) -> Result<(), Failure> {
        let now = time::now_ms();
        self.with_state(|s| s.cancel_action(target, action, false, now))
    }
    /// Current status of an action (`running`, `finished`, `error`, `canceling`, …).
    pub fn action_status(&self, action: u64) -> Option<String> {
        self.with_state(|s| s.actions.get(&action).map(|a| a.status.name().to_string()))
    }
    /// All messages of an action's history, oldest first.
    pub fn action_messages(&self, action: u64) -> Vec<String> {
        self.with_state(|s| {
            s.actions
                .get(&action)
                .map(|a| a.history.iter().flat_map(|h| h.messages.clone()).collect())
                .unwrap_or_default()
        })
    }
    /// Replaces all faults.
    pub fn set_faults(&self, faults: FaultSet) {
        *self.shared.faults() = faults;
    }
    /// Sets the faults of one target (`None` = the global entry).
    pub fn set_target_faults(&self, target: Option<&str>, faults: Faults) {
        let mut f = self.shared.faults();
        match target {
            Some(t) => {
                f.targets.insert(t.to_string(), faults);
            }
            None => f.global = faults,
        }
    }
    /// Forces maintenance windows open/closed (`None` = follow the schedule), for one target or all.
    pub fn force_maintenance_window(&self, target: Option<&str>, state: Option<WindowOverride>) {
        self.with_state(|s| s.set_window_override(target, state));
    }
    /// Requests served so far (last [`REQUEST_LOG_LEN`]), oldest first — for asserting a client's
    /// request sequence (e.g. that a resumed download sent `Range`).
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared.request_log()
    }
    /// Empties the request log.
    pub fn clear_request_log(&self) {
        self.shared.clear_request_log();
    }
    /// Runs one rollout-scheduler pass now.
    pub fn tick(&self) {
        self.with_state(|s| s.rollout_tick(time::now_ms()));
    }
    /// Simulated server restart: drops every connection, refuses connections for `down`, keeps state.
    /// Returns once the port accepts connections again (or after `down` + 30 s if it cannot rebind).
    pub async fn restart(&self, down: Duration) {
        let generation = self.shared.restart(down);
        let mut up = self.shared.up.subscribe();
        let _ = tokio::time::timeout(
            down + Duration::from_secs(30),
            up.wait_for(|bound| *bound >= generation),
        )
        .await;
    }
    /// Stops the server and the scheduler and removes the temp storage dir.
    pub async fn shutdown(self) {
        self.shared.ctl.send_modify(|c| {
            c.generation += 1;
            c.shutdown = true;
        });
        self.scheduler.abort();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.server).await;
        if self.shared.remove_storage {
            let _ = std::fs::remove_dir_all(&self.shared.storage);
        }
    }
}
