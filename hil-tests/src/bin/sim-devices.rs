//! `sim-devices`: a fleet of simulated eyas devices for demos, the release script and the fleet
//! benchmark. Each device is an `eyas_core::client::Client` (the agent's protocol logic) whose
//! actions are answered as a device would: HTTP downloads checked by SHA-256, a simulated install,
//! a reboot into the written slot, the health check and `Mark good` — or one of the injected
//! failures (`--fail`, `--fail-rates`, `--fail-kinds`). See `hil_tests::fleet`.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Parser;
use hil_tests::client::split_url;
use hil_tests::fleet::{FailKind, FleetConfig, parse_fail_rates};

/// Simulated eyas devices (eyas-core's DDI client over plain HTTP).
#[derive(Parser, Debug, Clone)]
#[command(name = "sim-devices")]
struct Args {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Tenant.
    #[arg(long, default_value = "DEFAULT")]
    tenant: String,
    /// controllerId prefix; devices are PREFIX000, PREFIX001, …
    #[arg(long, default_value = "sim-")]
    prefix: String,
    /// Number of devices.
    #[arg(long, default_value_t = 20)]
    count: usize,
    /// Authenticate with this gateway token (else TargetToken TOKEN_PREFIX+ID).
    #[arg(long)]
    gateway_token: Option<String>,
    /// Target token prefix: device ID uses TargetToken TOKEN_PREFIX+ID.
    #[arg(long, default_value = "tok-")]
    token_prefix: String,
    /// Comma-separated device numbers that fail (e.g. 3,17).
    #[arg(long, default_value = "")]
    fail: String,
    /// Failure rates per range of devices, as cumulative fleet percent:rate percent, e.g.
    /// 1:0,10:2,50:5,100:1 (the rollout's groups 1/10/50/100 %, since hawkBit fills groups in
    /// target order); exactly floor(size × rate) devices of each range fail.
    #[arg(long, default_value = "")]
    fail_rates: String,
    /// How failing devices fail, in turn: verify, install, health, fallback.
    #[arg(long, default_value = "install,health,fallback,verify")]
    fail_kinds: String,
    /// Cap on the poll interval, in ms (the core's poll_max and active interval).
    #[arg(long, default_value_t = 1000)]
    max_poll_ms: u64,
    /// Simulated install time per deployment, in ms.
    #[arg(long, default_value_t = 300)]
    work_ms: u64,
    /// Simulated reboot time, in ms.
    #[arg(long, default_value_t = 200)]
    reboot_ms: u64,
    /// Most HTTP connections to the server at once (shared by all devices).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Write eyas's ThingsBoard telemetry here as JSON lines (for `eyasctl report --telemetry`).
    #[arg(long)]
    telemetry: Option<std::path::PathBuf>,
    /// Worker threads of the runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Stop after this many seconds (or at SIGINT/SIGTERM, printing the summary).
    #[arg(long, default_value_t = 300)]
    duration_secs: u64,
    /// Print one line per device event.
    #[arg(short, long)]
    verbose: bool,
}

fn config(a: &Args) -> Result<FleetConfig, String> {
    let Some((host, _)) = split_url(&a.url) else {
        return Err("--url must be http://host:port".into());
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(host)
        .map_err(|e| format!("--url: {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("--url: {host}: no address"))?;
    let mut fail = Vec::new();
    for f in a.fail.split(',').filter(|s| !s.trim().is_empty()) {
        fail.push(
            f.trim()
                .parse::<usize>()
                .map_err(|_| "--fail takes device numbers like 3,17".to_string())?,
        );
    }
    let mut fail_kinds = Vec::new();
    for k in a.fail_kinds.split(',').filter(|s| !s.trim().is_empty()) {
        fail_kinds.push(FailKind::parse(k).ok_or_else(|| {
            format!("--fail-kinds: '{k}' is not one of verify, install, health, fallback")
        })?);
    }
    Ok(FleetConfig {
        url: a.url.trim_end_matches('/').to_owned(),
        addr,
        tenant: a.tenant.clone(),
        prefix: a.prefix.clone(),
        count: a.count,
        gateway_token: a.gateway_token.clone(),
        token_prefix: a.token_prefix.clone(),
        fail,
        fail_rates: parse_fail_rates(&a.fail_rates).map_err(|e| format!("--fail-rates: {e}"))?,
        fail_kinds,
        max_poll: Duration::from_millis(a.max_poll_ms),
        work: Duration::from_millis(a.work_ms),
        reboot: Duration::from_millis(a.reboot_ms),
        duration: Duration::from_secs(a.duration_secs),
        connections: a.connections,
        telemetry: a.telemetry.clone(),
        verbose: a.verbose,
    })
}

fn main() -> ExitCode {
    let a = Args::parse();
    let cfg = match config(&a) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sim-devices: {e}");
            return ExitCode::from(2);
        }
    };
    let failing = (0..cfg.count)
        .filter(|&n| cfg.failure_of(n).is_some())
        .count();
    println!(
        "sim-devices: {} devices ({failing} set to fail) against {}",
        cfg.count, cfg.url
    );
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sim-devices: {e}");
            return ExitCode::FAILURE;
        }
    };
    let t0 = Instant::now();
    // SIGINT or SIGTERM ends the run early (the summary is still printed)
    let stop = async {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
    };
    let stats = match rt.block_on(hil_tests::fleet::run_until(cfg, stop)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sim-devices: {e}");
            return ExitCode::FAILURE;
        }
    };
    let secs = t0.elapsed().as_secs_f64();
    let req = stats.requests.load(Ordering::Relaxed);
    println!(
        "sim-devices: {} succeeded, {} failed, {} reboots, {req} requests ({:.0}/s), {} transport errors, {} MiB downloaded in {secs:.1} s",
        stats.succeeded.load(Ordering::Relaxed),
        stats.failed.load(Ordering::Relaxed),
        stats.reboots.load(Ordering::Relaxed),
        req as f64 / secs.max(0.001),
        stats.transport_errors.load(Ordering::Relaxed),
        stats.download_bytes.load(Ordering::Relaxed) >> 20,
    );
    ExitCode::SUCCESS
}
