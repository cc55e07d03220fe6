//! `sim-devices`: a small fleet of simulated DDI devices for demos and the release script.
//!
//! Each device polls its base resource, answers `configData`, accepts cancels (`closed/success`),
//! downloads every artifact of a `deploymentBase` (SHA-1 checked), reports `proceeding`, then
//! `closed/success` — or `closed/failure` for the devices picked by `--fail`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use hil_tests::client::{Conn, split_url};
use serde_json::{Value, json};
use sha1::Digest;

/// Simulated hawkBit devices (DDI over plain HTTP).
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
    /// Comma-separated device numbers that report failure (e.g. 3,17).
    #[arg(long, default_value = "")]
    fail: String,
    /// Cap on the server's poll interval, in ms (demo speed).
    #[arg(long, default_value_t = 1000)]
    max_poll_ms: u64,
    /// Simulated install time per deployment, in ms.
    #[arg(long, default_value_t = 300)]
    work_ms: u64,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 300)]
    duration_secs: u64,
    /// Print one line per device event.
    #[arg(short, long)]
    verbose: bool,
}

fn parse_sleep(s: &str) -> Option<u64> {
    hil_tests::sim::time::parse_hms(s).map(|x| x * 1000)
}

async fn device(a: Args, n: usize, fails: bool) -> usize {
    let Some((host, _)) = split_url(&a.url) else {
        return 0;
    };
    let Ok(addr) = tokio::net::lookup_host(host).await.map(|mut i| i.next()) else {
        return 0;
    };
    let Some(addr) = addr else { return 0 };
    let id = format!("{}{n:03}", a.prefix);
    let auth = match &a.gateway_token {
        Some(g) => format!("GatewayToken {g}"),
        None => format!("TargetToken {}{id}", a.token_prefix),
    };
    let base = format!("/{}/controller/v1/{id}", a.tenant);
    let mut conn = Conn::new(addr);
    let deadline = Instant::now() + Duration::from_secs(a.duration_secs);
    let mut handled: Option<String> = None;
    let mut deployments = 0;
    let json_h = |auth: &str| {
        vec![
            ("Authorization".to_string(), auth.to_string()),
            ("Content-Type".into(), "application/json".into()),
        ]
    };
    while Instant::now() < deadline {
        let mut sleep = a.max_poll_ms;
        let r = conn
            .request(
                "GET",
                &base,
                &[("Authorization", &auth), ("Accept", "application/hal+json")],
                b"",
            )
            .await;
        let poll: Option<Value> = match r {
            Ok(r) if r.status == 200 => serde_json::from_slice(&r.body).ok(),
            Ok(r) => {
                if a.verbose {
                    eprintln!("{id}: poll -> {}", r.status);
                }
                None
            }
            Err(e) => {
                if a.verbose {
                    eprintln!("{id}: poll failed: {e}");
                }
                None
            }
        };
        if let Some(p) = poll {
            if let Some(ms) = p["config"]["polling"]["sleep"]
                .as_str()
                .and_then(parse_sleep)
            {
                sleep = sleep.min(ms);
            }
            let links = &p["_links"];
            let hdr = json_h(&auth);
            let h: Vec<(&str, &str)> = hdr.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            if links["configData"].is_object() {
                let body = json!({"mode": "merge", "data": {"simulated": "true", "device": id}})
                    .to_string();
                let _ = conn
                    .request("PUT", &format!("{base}/configData"), &h, body.as_bytes())
                    .await;
            }
            if let Some(href) = links["cancelAction"]["href"].as_str() {
                if let Some((_, path)) = split_url(href) {
                    let _ = conn
                        .request("GET", path, &[("Authorization", &auth)], b"")
                        .await;
                    let body = json!({"status": {"execution": "closed", "result": {"finished": "success"}, "details": ["cancel accepted"]}}).to_string();
                    let _ = conn
                        .request("POST", &format!("{path}/feedback"), &h, body.as_bytes())
                        .await;
                    println!("{id}: cancel accepted");
                }
            } else if let Some(href) = links["deploymentBase"]["href"].as_str() {
                let path = split_url(href)
                    .map(|(_, p)| p.to_string())
                    .unwrap_or_default();
                let action = path.split('?').next().unwrap_or("").to_string();
                if handled.as_deref() != Some(action.as_str())
                    && let Some(ok) =
                        install(&mut conn, &auth, &path, &action, &h, fails, a.work_ms, &id).await
                {
                    handled = Some(action);
                    deployments += 1;
                    println!(
                        "{id}: deployment {} -> {}",
                        handled
                            .as_deref()
                            .unwrap_or("")
                            .rsplit('/')
                            .next()
                            .unwrap_or(""),
                        if ok { "success" } else { "failure" }
                    );
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(sleep.max(50))).await;
    }
    deployments
}

#[allow(clippy::too_many_arguments)]
async fn install(
    conn: &mut Conn,
    auth: &str,
    path: &str,
    action: &str,
    h: &[(&str, &str)],
    fails: bool,
    work_ms: u64,
    id: &str,
) -> Option<bool> {
    let r = conn
        .request("GET", path, &[("Authorization", auth)], b"")
        .await
        .ok()?;
    if r.status != 200 {
        return None;
    }
    let d: Value = serde_json::from_slice(&r.body).ok()?;
    if d["deployment"]["update"] == "skip" {
        return None;
    }
    let fb = |ex: &str, fin: &str, msg: String| {
        json!({"status": {"execution": ex, "result": {"finished": fin}, "details": [msg]}})
            .to_string()
    };
    let feedback = format!("{action}/feedback");
    let mut ok = !fails;
    let mut why = if fails {
        "simulated failure".to_string()
    } else {
        "installed".to_string()
    };
    for chunk in d["deployment"]["chunks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        for art in chunk["artifacts"].as_array().cloned().unwrap_or_default() {
            let href = art["_links"]["download-http"]["href"]
                .as_str()
                .or(art["_links"]["download"]["href"].as_str())
                .unwrap_or("");
            let Some((_, apath)) = split_url(href) else {
                continue;
            };
            let got = conn
                .request(
                    "GET",
                    apath,
                    &[
                        ("Authorization", auth),
                        ("Accept", "application/octet-stream"),
                    ],
                    b"",
                )
                .await;
            let sha = got
                .as_ref()
                .ok()
                .filter(|r| r.status == 200)
                .map(|r| hil_tests::sim::http::hex(&sha1::Sha1::digest(&r.body)));
            if sha.as_deref() != art["hashes"]["sha1"].as_str() {
                ok = false;
                why = format!("download of {} failed or SHA-1 mismatch", art["filename"]);
            }
            let _ = conn
                .request(
                    "POST",
                    &feedback,
                    h,
                    fb(
                        "proceeding",
                        "none",
                        format!("downloaded {}", art["filename"]),
                    )
                    .as_bytes(),
                )
                .await;
        }
    }
    tokio::time::sleep(Duration::from_millis(work_ms)).await;
    let (fin, msg) = if ok {
        ("success", why)
    } else {
        ("failure", why)
    };
    let r = conn
        .request("POST", &feedback, h, fb("closed", fin, msg).as_bytes())
        .await
        .ok()?;
    if r.status != 200 {
        eprintln!("{id}: final feedback -> {}", r.status);
    }
    Some(ok)
}

fn main() -> ExitCode {
    let a = Args::parse();
    if split_url(&a.url).is_none() {
        eprintln!("sim-devices: --url must be http://host:port");
        return ExitCode::from(2);
    }
    let mut fail = Vec::new();
    for f in a.fail.split(',').filter(|s| !s.trim().is_empty()) {
        match f.trim().parse::<usize>() {
            Ok(n) => fail.push(n),
            Err(_) => {
                eprintln!("sim-devices: --fail takes device numbers like 3,17");
                return ExitCode::from(2);
            }
        }
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sim-devices: {e}");
            return ExitCode::FAILURE;
        }
    };
    let total = rt.block_on(async move {
        let tasks: Vec<_> = (0..a.count)
            .map(|n| tokio::spawn(device(a.clone(), n, fail.contains(&n))))
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap_or(0);
        }
        total
    });
    println!("sim-devices: {total} deployments handled");
    ExitCode::SUCCESS
}
