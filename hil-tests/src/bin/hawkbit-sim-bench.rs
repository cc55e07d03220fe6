//! `hawkbit-sim-bench`: N targets polling the in-process simulator over loopback; reports p50/p99
//! latency and requests/s. Bounded in time (`--duration-secs`) and count (`--max-requests`).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use hil_tests::client::Conn;
use hil_tests::sim::{AssignOptions, Sim, SimConfig};

/// Poll-load benchmark for hawkbit-sim (loopback only).
#[derive(Parser, Debug)]
#[command(name = "hawkbit-sim-bench")]
struct Args {
    /// Number of targets.
    #[arg(long, default_value_t = 10_000)]
    targets: usize,
    /// Concurrent keep-alive connections of the load generator.
    #[arg(long, default_value_t = 200)]
    connections: usize,
    /// Measurement time limit in seconds.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Request count limit.
    #[arg(long, default_value_t = 500_000)]
    max_requests: u64,
    /// Server worker threads.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
    /// Every Nth target gets an assigned action (its poll carries a deploymentBase link); 0 = none.
    #[arg(long, default_value_t = 2)]
    assign_every: usize,
    /// Fail (exit 1) when p99 exceeds this many milliseconds.
    #[arg(long)]
    max_p99_ms: Option<f64>,
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)]) / 1000.0
}

fn main() -> ExitCode {
    let a = Args::parse();
    if a.targets == 0 || a.connections == 0 {
        eprintln!("hawkbit-sim-bench: --targets and --connections must be > 0");
        return ExitCode::from(2);
    }
    let server_rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.server_threads.max(1))
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hawkbit-sim-bench: runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sim = match server_rt.block_on(Sim::start(SimConfig {
        seed: Some(1),
        ..SimConfig::default()
    })) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // fleet set-up through the library API
    let setup = Instant::now();
    let ds = (|| {
        let sm = sim.create_software_module("rootfs", "1.0", "os")?;
        sim.add_artifact_bytes(sm, "rootfs.raucb", &[0u8; 4096])?;
        sim.create_distribution_set("fw", "1.0", "os", &[sm])
    })();
    let Ok(ds) = ds else {
        eprintln!("hawkbit-sim-bench: set-up failed: {ds:?}");
        return ExitCode::FAILURE;
    };
    for i in 0..a.targets {
        let id = format!("bench-{i:05}");
        if let Err(e) = sim.create_target(&id, Some(&format!("tok-{i:05}"))) {
            eprintln!("hawkbit-sim-bench: {e:?}");
            return ExitCode::FAILURE;
        }
        if a.assign_every > 0 && i % a.assign_every == 0 {
            let _ = sim.assign(&id, ds, AssignOptions::default());
        }
    }
    eprintln!(
        "set-up: {} targets in {:.2} s",
        a.targets,
        setup.elapsed().as_secs_f64()
    );
    let addr = sim.addr();
    let tenant = sim.tenant().to_string();
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let (targets, conns, max, dur) = (
        a.targets,
        a.connections,
        a.max_requests,
        Duration::from_secs(a.duration_secs),
    );
    // the load generator runs on its own single-threaded runtime in another OS thread
    let (done2, errors2) = (done.clone(), errors.clone());
    let lg = std::thread::spawn(move || -> (Vec<u32>, f64, usize) {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return (Vec::new(), 0.0, 0);
        };
        rt.block_on(async move {
            let start = Instant::now();
            let deadline = start + dur;
            let mut tasks = Vec::new();
            for c in 0..conns {
                let (done, errors, tenant) = (done2.clone(), errors2.clone(), tenant.clone());
                tasks.push(tokio::spawn(async move {
                    let mut conn = Conn::new(addr);
                    let mut lat = Vec::new();
                    let mut polled = 0usize;
                    let mut i = c;
                    loop {
                        if Instant::now() >= deadline || done.load(Ordering::Relaxed) >= max {
                            break;
                        }
                        let path = format!("/{tenant}/controller/v1/bench-{i:05}");
                        let auth = format!("TargetToken tok-{i:05}");
                        let t = Instant::now();
                        match conn
                            .request(
                                "GET",
                                &path,
                                &[("Authorization", &auth), ("Accept", "application/hal+json")],
                                b"",
                            )
                            .await
                        {
                            Ok(r) if r.status == 200 => {}
                            _ => {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        lat.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
                        done.fetch_add(1, Ordering::Relaxed);
                        polled += 1;
                        i += conns;
                        if i >= targets {
                            i = c;
                        }
                    }
                    // connection c polls targets c, c+conns, …: distinct = min(requests, slice size)
                    let slice = targets.saturating_sub(c).div_ceil(conns);
                    (lat, polled.min(slice))
                }));
            }
            let mut all = Vec::new();
            let mut polled = 0;
            for t in tasks {
                if let Ok((l, p)) = t.await {
                    all.extend(l);
                    polled += p;
                }
            }
            (all, start.elapsed().as_secs_f64(), polled.min(targets))
        })
    });
    let (mut lat, secs, polled) = lg.join().unwrap_or_default();
    server_rt.block_on(sim.shutdown());
    lat.sort_unstable();
    let n = lat.len();
    let errs = errors.load(Ordering::Relaxed);
    let (p50, p90, p99, pmax) = (
        pct(&lat, 0.5),
        pct(&lat, 0.9),
        pct(&lat, 0.99),
        pct(&lat, 1.0),
    );
    let rps = if secs > 0.0 { n as f64 / secs } else { 0.0 };
    println!(
        "hawkbit-sim-bench: targets={} connections={} requests={} errors={} duration={:.2}s rps={:.0} p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms distinct_targets_polled>={}",
        a.targets, a.connections, n, errs, secs, rps, p50, p90, p99, pmax, polled
    );
    if errs > 0 || n == 0 {
        eprintln!("hawkbit-sim-bench: FAILED ({errs} errors, {n} requests)");
        return ExitCode::FAILURE;
    }
    if let Some(limit) = a.max_p99_ms
        && p99 > limit
    {
        eprintln!("hawkbit-sim-bench: FAILED p99 {p99:.2} ms > {limit} ms");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
