//! `hawkbit-sim`: a hawkBit DDI + Management API test server (see hil-tests/README.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use hil_tests::sim::{FaultSet, Faults, Sim, SimConfig, time};

/// hawkBit test server: DDI (device) API, Management API subset, rollouts, fault injection.
#[derive(Parser, Debug)]
#[command(name = "hawkbit-sim", version)]
struct Args {
    /// Address to listen on (port 0 = pick a free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Tenant name used in DDI URLs (matched case-insensitively).
    #[arg(long, default_value = "DEFAULT")]
    tenant: String,
    /// Directory for uploaded artifacts (default: a temp dir removed on exit).
    #[arg(long)]
    storage: Option<PathBuf>,
    /// Management API user (HTTP Basic).
    #[arg(long, default_value = "admin")]
    mgmt_user: String,
    /// Management API password.
    #[arg(long, default_value = "admin")]
    mgmt_password: String,
    /// Disable target-token auth at start (stock hawkBit default; enable later via system configs).
    #[arg(long)]
    no_target_token: bool,
    /// Enable gateway-token auth with this key.
    #[arg(long)]
    gateway_token: Option<String>,
    /// pollingTime (HH:MM:SS, optional ~N% jitter).
    #[arg(long, default_value = "00:05:00")]
    polling_time: String,
    /// minPollingTime (HH:MM:SS). hawkBit default 00:00:30.
    #[arg(long, default_value = "00:00:30")]
    min_polling_time: String,
    /// maxPollingTime (HH:MM:SS, hours may exceed 23). hawkBit default 23:59:59.
    #[arg(long, default_value = "23:59:59")]
    max_polling_time: String,
    /// Enable the user-confirmation flow (user.confirmation.flow.enabled).
    #[arg(long)]
    confirmation_flow: bool,
    /// Rollout scheduler period in milliseconds (hawkBit: 2000).
    #[arg(long, default_value_t = 2000)]
    rollout_interval_ms: u64,
    /// Initial faults as JSON (FaultSet: {"global":{…},"targets":{"id":{…}}}).
    #[arg(long)]
    faults: Option<String>,
    /// Shortcut: global added latency in ms.
    #[arg(long)]
    latency_ms: Option<u64>,
    /// Shortcut: global error rate 0.0..1.0 (status --error-status).
    #[arg(long)]
    error_rate: Option<f64>,
    /// Status code for injected errors.
    #[arg(long)]
    error_status: Option<u16>,
    /// Shortcut: global artifact bandwidth cap in bytes/s.
    #[arg(long)]
    bandwidth: Option<u64>,
    /// RNG seed (tokens, jitter, injected errors).
    #[arg(long)]
    seed: Option<u64>,
    /// Log one line per request to stderr.
    #[arg(short, long)]
    verbose: bool,
}

fn hms(s: &str, flag: &str) -> Result<u64, String> {
    time::parse_hms(s).ok_or_else(|| format!("--{flag} '{s}' must be HH:MM:SS"))
}

fn config(a: Args) -> Result<SimConfig, String> {
    let mut faults: FaultSet = match &a.faults {
        Some(j) => serde_json::from_str(j).map_err(|e| format!("--faults: {e}"))?,
        None => FaultSet::default(),
    };
    let g: &mut Faults = &mut faults.global;
    if let Some(v) = a.latency_ms {
        g.latency_ms = v;
    }
    if let Some(v) = a.error_rate {
        if !(0.0..=1.0).contains(&v) {
            return Err("--error-rate must be within 0.0..=1.0".into());
        }
        g.error_rate = v;
    }
    if a.error_status.is_some() {
        g.error_status = a.error_status;
    }
    if a.bandwidth.is_some() {
        g.bandwidth_bytes_per_sec = a.bandwidth;
    }
    Ok(SimConfig {
        addr: a.listen,
        tenant: a.tenant,
        storage_dir: a.storage,
        mgmt_user: a.mgmt_user,
        mgmt_password: a.mgmt_password,
        target_token_auth: !a.no_target_token,
        gateway_token: a.gateway_token,
        polling_time: a.polling_time,
        min_polling_secs: hms(&a.min_polling_time, "min-polling-time")?,
        max_polling_secs: hms(&a.max_polling_time, "max-polling-time")?,
        confirmation_flow: a.confirmation_flow,
        rollout_interval: Duration::from_millis(a.rollout_interval_ms),
        faults,
        log_requests: a.verbose,
        seed: a.seed,
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    let cfg = match config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hawkbit-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hawkbit-sim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let sim = match Sim::start(cfg).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        // The first stdout line is machine-readable: scripts wait for it.
        println!("hawkbit-sim listening on {}", sim.url());
        eprintln!(
            "hawkbit-sim: DDI {}/{}/controller/v1/<controllerId>, Mgmt {}/rest/v1 (Basic auth), control {}/sim",
            sim.url(),
            sim.tenant(),
            sim.url(),
            sim.url()
        );
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("hawkbit-sim: cannot install SIGTERM handler: {e}");
                return ExitCode::FAILURE;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        eprintln!("hawkbit-sim: shutting down");
        sim.shutdown().await;
        ExitCode::SUCCESS
    })
}
