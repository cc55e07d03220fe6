//! `eyasctl report`: the "OTA Rollout" figures of a rollout from hawkBit's action status history
//! and, when given, from the telemetry the devices published (ThingsBoard keys, JSON lines):
//! success rate over time, P50/P95 download duration, errors by code, the bytes an update
//! fetched over the air (P50/P95/total, and P50 as a share of the full bundle with
//! `--full-bytes`), and a per-group table.
//!
//! The figures are computed as the Grafana dashboard's SQL computes them over ThingsBoard's
//! `ts_kv` (see [`stats`]), and `hil-tests/grafana/test/check-panels.py` checks that they are
//! equal on the same telemetry. `--html` writes a self-contained page ([`html`]); `--json`
//! prints the same numbers as one document.

mod hawkbit;
pub mod html;
pub mod stats;
pub mod telemetry;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::api::Api;
use crate::error::Failure;
use crate::output;

/// `eyasctl report` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    /// The rollout to report on (its groups, targets and action status history in hawkBit).
    #[arg(long, value_name = "ID", required_unless_present = "telemetry")]
    pub rollout: Option<u64>,
    /// Telemetry the devices published, as JSON lines {"device", "ts", "values"} (eyas's
    /// ThingsBoard messages with the device's name); without --rollout, a telemetry-only report.
    #[arg(long, value_name = "FILE.jsonl")]
    pub telemetry: Option<PathBuf>,
    /// Write a self-contained HTML report (inline SVG charts) here.
    #[arg(long, value_name = "OUT.html")]
    pub html: Option<PathBuf>,
    /// Width of the time buckets in seconds (Grafana's $__interval); default: a round value
    /// giving at most about 24 buckets over the data.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub interval: Option<u64>,
    /// Size in bytes of the full (non-casync) bundle of the release, as `eyasctl publish
    /// --casync` prints it ("for the N-byte bundle"): the bytes over the air per update are then
    /// also shown as P50 / N in percent. (For a casync release hawkBit's artifact is the small
    /// index bundle, so its size is not what the update is compared with.)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub full_bytes: Option<u64>,
}

/// Builds the report document (what `--json` prints and the HTML page shows).
pub fn document(api: Option<&Api>, args: &ReportArgs, now_secs: i64) -> Result<Value, Failure> {
    let tele = match &args.telemetry {
        Some(path) => Some(telemetry::Telemetry::read(path).map_err(Failure::Usage)?),
        None => None,
    };
    let tele_facts = tele.as_ref().map(telemetry::Telemetry::facts);
    let rollout = match (args.rollout, api) {
        (Some(id), Some(api)) => Some(hawkbit::fetch(api, id)?),
        _ => None,
    };
    let interval = match args.interval {
        Some(i) => i64::try_from(i).unwrap_or(3600),
        None => {
            let spans = [
                rollout.as_ref().and_then(|r| r.facts.span_ms()),
                tele_facts.as_ref().and_then(stats::Facts::span_ms),
            ];
            let (lo, hi) = spans
                .iter()
                .flatten()
                .fold((i64::MAX, i64::MIN), |(lo, hi), s| {
                    (lo.min(s.0), hi.max(s.1))
                });
            stats::auto_interval(if lo <= hi { hi - lo } else { 0 })
        }
    };
    let rollout_json = rollout.as_ref().map(|r| {
        json!({
            "id": r.id,
            "name": r.name,
            "status": r.status,
            "targets": r.total_targets,
            "groups": r.groups.iter().map(|g| json!({
                "id": g.id, "name": g.name, "status": g.status, "targets": g.targets,
                "success": g.success, "error": g.error, "running": g.running, "other": g.other,
                "success_rate": stats::rate(g.success, g.error),
                "update_bytes": stats::bytes_summary(&g.update_bytes, args.full_bytes),
            })).collect::<Vec<_>>(),
        })
    });
    let tele_json = tele.as_ref().zip(tele_facts.as_ref()).map(|(t, f)| {
        let mut s = f.summary(interval, args.full_bytes);
        let mut chunks = stats::bytes_summary(&f.chunk_bytes, None);
        if let Some(c) = chunks.as_object_mut() {
            c.remove("p50_of_full_percent");
        }
        if let Some(o) = s.as_object_mut() {
            o.insert("messages".into(), t.messages.into());
            o.insert("publishing_devices".into(), t.devices().into());
            o.insert("chunk_bytes".into(), chunks);
        }
        s
    });
    Ok(json!({
        "generated_at": html::utc(now_secs),
        "interval_secs": interval,
        "full_bytes": args.full_bytes,
        "rollout": rollout_json,
        "hawkbit": rollout.as_ref().map(|r| r.facts.summary(interval, args.full_bytes)),
        "telemetry": tele_json,
    }))
}

/// The bytes-over-the-air line of one source (or one group): P50, P95, total, how many
/// reported, and P50 as a share of the full bundle when `--full-bytes` was given.
/// `with_outcome` is the number of devices with an outcome, for comparison.
fn bytes_line(b: &Value, with_outcome: Option<&Value>) -> String {
    let of = with_outcome.map_or_else(String::new, |d| format!(" ({d} with an outcome)"));
    let (Some(p50), Some(p95)) = (b["p50"].as_f64(), b["p95"].as_f64()) else {
        return format!("not reported by any device{of}");
    };
    let mut line = format!(
        "P50 {}, P95 {}, total {} over {} updates, reported by {} devices{of}",
        html::bytes_text(p50),
        html::bytes_text(p95),
        html::bytes_text(b["total"].as_f64().unwrap_or(0.0)),
        b["count"],
        b["devices"],
    );
    if let Some(pct) = b["p50_of_full_percent"].as_f64() {
        line.push_str(&format!("; P50 is {pct:.2} % of the full bundle"));
    }
    line
}

fn human(doc: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(r) = doc.get("rollout").filter(|r| !r.is_null()) {
        lines.push(format!(
            "rollout {} {}: {}, {} targets",
            r["id"], r["name"], r["status"], r["targets"]
        ));
        for g in r["groups"].as_array().into_iter().flatten() {
            let mut line = format!(
                "  {:<16} {:<10} {:>5} targets {:>5} ok {:>5} failed {:>5} running {:>5} other",
                g["name"].as_str().unwrap_or(""),
                g["status"].as_str().unwrap_or(""),
                g["targets"],
                g["success"],
                g["error"],
                g["running"],
                g["other"]
            );
            let b = &g["update_bytes"];
            if let Some(p50) = b["p50"].as_f64() {
                line.push_str(&format!(
                    "; over the air P50 {}, total {} (n={})",
                    html::bytes_text(p50),
                    html::bytes_text(b["total"].as_f64().unwrap_or(0.0)),
                    b["count"]
                ));
            }
            lines.push(line);
        }
    }
    for (key, name) in [("hawkbit", "hawkBit"), ("telemetry", "telemetry")] {
        let Some(s) = doc.get(key).filter(|s| !s.is_null()) else {
            continue;
        };
        let num = |v: &Value, d: usize| v.as_f64().map_or("-".into(), |x| format!("{x:.d$}"));
        lines.push(format!(
            "{name}: success rate {} % ({} ok, {} failed); download P50 {} ms, P95 {} ms (n={}); errors: {}",
            num(&s["rate"], 1),
            s["success"],
            s["failure"],
            num(&s["download_ms"]["p50"], 0),
            num(&s["download_ms"]["p95"], 0),
            s["download_ms"]["count"],
            s["errors"]
                .as_array()
                .filter(|e| !e.is_empty())
                .map_or("none".into(), |e| e
                    .iter()
                    .map(|e| format!(
                        "{}={}",
                        e["error_code"].as_str().unwrap_or(""),
                        e["failures"]
                    ))
                    .collect::<Vec<_>>()
                    .join(", "))
        ));
        lines.push(format!(
            "{name}: bytes over the air per update: {}",
            bytes_line(&s["update_bytes"], Some(&s["devices"]))
        ));
        if let Some(c) = s
            .get("chunk_bytes")
            .filter(|c| c["count"].as_u64() > Some(0))
        {
            lines.push(format!(
                "{name}: of them casync chunks: {}",
                bytes_line(c, None)
            ));
        }
    }
    if let Some(full) = doc["full_bytes"].as_u64() {
        lines.push(format!(
            "full bundle (--full-bytes): {} ({full} bytes)",
            html::bytes_text(full as f64)
        ));
    }
    lines
}

/// Runs `eyasctl report`.
pub fn run(api: &Api, args: &ReportArgs, json: bool) -> Result<ExitCode, Failure> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let doc = document(Some(api), args, now)?;
    if let Some(path) = &args.html {
        let page =
            html::page(&doc).map_err(|e| Failure::Other(format!("drawing the charts: {e}")))?;
        std::fs::write(path, page)
            .map_err(|e| Failure::Usage(format!("--html {}: {e}", path.display())))?;
    }
    if json {
        output::print_json(&doc);
    }
    for line in human(&doc) {
        output::say(json, &line);
    }
    if let Some(path) = &args.html {
        output::say(json, &format!("report written to {}", path.display()));
    }
    Ok(ExitCode::SUCCESS)
}
