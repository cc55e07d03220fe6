//! `eyasctl report` against hawkbit-sim: a two-group rollout whose devices answer as eyas does
//! (final feedback with the failure's `code`, a `download_duration_ms=N` and an `update_bytes=N`
//! detail), plus the telemetry they "published"; the report's groups, success rates,
//! percentiles, error codes and bytes over the air are checked against figures computed here
//! from what the devices sent. One test runs the simulated devices (`hil_tests::fleet`) instead.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Fx, path};

const FAST: Duration = Duration::from_millis(100);

/// What a device reports: (error code for a failure or None for success, download ms, bytes
/// over the air — none from dev-009, an agent from before `update_bytes`).
fn plan(i: usize) -> (Option<i64>, u64, Option<u64>) {
    let code = match i {
        2 | 7 => Some(400),
        5 => Some(300),
        _ => None,
    };
    let bytes = (i != 9).then(|| 40_000 + 7_919 * (i as u64 * i as u64 % 11));
    (code, 1000 + 250 * i as u64, bytes)
}

/// The device answers its open deployment, if any, as eyas does; true if it had one.
fn answer(
    fx: &Fx,
    cid: &str,
    code: Option<i64>,
    download_ms: u64,
    update_bytes: Option<u64>,
) -> bool {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let base = format!("{}/DEFAULT/controller/v1/{cid}", fx.url);
    let auth = format!("TargetToken tok-{cid}");
    let Ok(mut r) = agent.get(&base).header("Authorization", &auth).call() else {
        return false;
    };
    let v: Value = r
        .body_mut()
        .read_to_string()
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let Some(action) = v
        .pointer("/_links/deploymentBase/href")
        .and_then(Value::as_str)
        .and_then(|h| h.rsplit('/').next())
        .and_then(|s| s.split('?').next())
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return false;
    };
    let first = match code {
        None => "Update installed and booted",
        Some(_) => "The bootloader fell back to the previous slot",
    };
    let mut details = vec![
        first.to_owned(),
        format!("download_duration_ms={download_ms}"),
    ];
    details.extend(update_bytes.map(|b| format!("update_bytes={b}")));
    let body = match code {
        None => json!({"status": {"execution": "closed", "result": {"finished": "success"},
                 "details": details}}),
        Some(c) => json!({"status": {"execution": "closed", "result": {"finished": "failure"},
                 "code": c, "details": details}}),
    };
    agent
        .post(format!("{base}/deploymentBase/{action}/feedback"))
        .header("Authorization", &auth)
        .content_type("application/json")
        .send(body.to_string())
        .is_ok_and(|r| r.status().as_u16() == 200)
}

/// The text of every SVG `<text>` element.
fn svg_texts(page: &str) -> Vec<String> {
    page.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = t.split_once('>')?.1;
            Some(body.split_once("</text>")?.0.trim().to_owned())
        })
        .collect()
}

/// A JSON number as f64 (0 when it is not one).
fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

fn percentile_cont(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let pos = p * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (pos - lo as f64) * (v[hi] - v[lo])
}

#[test]
fn report_of_a_rollout_from_hawkbit_and_telemetry() {
    let fx = Fx::new(FAST);
    let devices = fx.targets("dev-", 10);
    fx.targets("other-", 2);
    let ds = fx.publish(&fx.file("r.raucb", 3, 1500), "3.0");
    let id = start_rollout(&fx, ds, "dev-", "report-test", 30);

    // the devices answer as their group starts, until every one has answered
    let mut answered: BTreeMap<String, u64> = BTreeMap::new();
    let end = Instant::now() + Duration::from_secs(60);
    while answered.len() < devices.len() {
        assert!(Instant::now() < end, "devices answered: {answered:?}");
        for (i, d) in devices.iter().enumerate() {
            let (code, ms, bytes) = plan(i);
            if !answered.contains_key(d) && answer(&fx, d, code, ms, bytes) {
                answered.insert(d.clone(), ms);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    fx.wait_rollout(id, "finished");

    // the telemetry the same devices published (a failure's error_code in the same message)
    let t0: i64 = 1_785_531_600_000;
    let mut lines = String::new();
    for (i, d) in devices.iter().enumerate() {
        let (code, ms, bytes) = plan(i);
        let ts = t0 + i as i64 * 600_000;
        lines.push_str(&format!("{}\n", json!({"device": d, "ts": ts, "values": {"download_duration_ms": ms, "download_bytes": 1500, "sw_state": "DOWNLOADED"}})));
        if let Some(b) = bytes {
            // once per install: the bytes over the air, of them 1500 the artifact, the rest chunks
            lines.push_str(&format!("{}\n", json!({"device": d, "ts": ts + 30_000, "values": {"update_bytes": b, "chunk_bytes": b - 1500}})));
        }
        let mut v = json!({"ota_status": if code.is_some() { "failure" } else { "success" }});
        if let Some(c) = code {
            v["error_code"] = json!(c);
            v["ota_error"] = json!("fell back");
        }
        lines.push_str(&format!(
            "{}\n",
            json!({"device": d, "ts": ts + 60_000, "values": v})
        ));
    }
    let tele = fx.dir.path().join("telemetry.jsonl");
    std::fs::write(&tele, lines).expect("write telemetry");
    let html = fx.dir.path().join("report.html");

    let r = fx.ctl(&[
        "--json",
        "report",
        "--rollout",
        &id.to_string(),
        "--telemetry",
        path(&tele),
        "--html",
        path(&html),
        "--interval",
        "3600",
        "--full-bytes",
        "1000000",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let doc = r.json();
    assert_eq!(doc["interval_secs"], 3600);
    assert_eq!(doc["full_bytes"], 1_000_000);

    // per-group table: 3 + 7 targets, failures at dev-002 (canary), dev-005, dev-007
    let groups: Vec<(String, u64, u64, u64)> = doc["rollout"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap_or("").to_owned(),
                g["targets"].as_u64().unwrap_or(0),
                g["success"].as_u64().unwrap_or(0),
                g["error"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        groups,
        vec![("canary".into(), 3, 2, 1), ("rest".into(), 7, 5, 2)]
    );
    assert_eq!(doc["rollout"]["status"], "finished");

    // bytes over the air: 9 devices reported (dev-009 did not: no figure, no guess), the whole
    // rollout and per group (canary dev-000..002, rest dev-003..008)
    let bytes: Vec<f64> = (0..10)
        .filter_map(|i| plan(i).2)
        .map(|b| b as f64)
        .collect();
    let figures = |b: &[f64]| {
        (
            percentile_cont(b.to_vec(), 0.5),
            percentile_cont(b.to_vec(), 0.95),
            b.iter().sum::<f64>(),
        )
    };
    let (p50, p95, total) = figures(&bytes);
    for source in ["hawkbit", "telemetry"] {
        let b = &doc[source]["update_bytes"];
        assert_eq!(b["count"], 9, "{source}: {b}");
        assert_eq!(b["devices"], 9, "{source}: {b}");
        assert!(close(num(&b["p50"]), p50), "{source}: {b}, want P50 {p50}");
        assert!(close(num(&b["p95"]), p95), "{source}: {b}, want P95 {p95}");
        assert_eq!(b["total"].as_u64(), Some(total as u64), "{source}: {b}");
        assert!(
            close(num(&b["p50_of_full_percent"]), p50 / 10_000.0),
            "{source}: {b}"
        );
    }
    let chunks = &doc["telemetry"]["chunk_bytes"];
    assert_eq!(chunks["count"], 9, "{chunks}");
    assert_eq!(
        chunks["total"].as_u64(),
        Some(total as u64 - 9 * 1500),
        "{chunks}"
    );
    assert!(doc["hawkbit"].get("chunk_bytes").is_none());
    for (g, range) in [(0, 0..3), (1, 3..9)] {
        let (p50, p95, total) = figures(
            &range
                .filter_map(|i| plan(i).2)
                .map(|b| b as f64)
                .collect::<Vec<_>>(),
        );
        let b = &doc["rollout"]["groups"][g]["update_bytes"];
        assert!(close(num(&b["p50"]), p50), "group {g}: {b}");
        assert!(close(num(&b["p95"]), p95), "group {g}: {b}");
        assert_eq!(b["total"].as_u64(), Some(total as u64), "group {g}: {b}");
    }
    let rest = &doc["rollout"]["groups"][1]["update_bytes"];
    assert_eq!(
        (rest["count"].as_u64(), rest["devices"].as_u64()),
        (Some(6), Some(6))
    );

    let want_p50 = percentile_cont(answered.values().map(|&m| m as f64).collect(), 0.5);
    let want_p95 = percentile_cont(answered.values().map(|&m| m as f64).collect(), 0.95);
    for source in ["hawkbit", "telemetry"] {
        let s = &doc[source];
        assert_eq!(s["success"], 7, "{source}: {s}");
        assert_eq!(s["failure"], 3, "{source}");
        assert!(
            (s["rate"].as_f64().unwrap_or(0.0) - 70.0).abs() < 1e-9,
            "{source}"
        );
        assert_eq!(s["download_ms"]["count"], 10, "{source}");
        assert!(
            (s["download_ms"]["p50"].as_f64().unwrap_or(0.0) - want_p50).abs() < 1e-9,
            "{source}"
        );
        assert!(
            (s["download_ms"]["p95"].as_f64().unwrap_or(0.0) - want_p95).abs() < 1e-9,
            "{source}"
        );
        assert_eq!(
            s["errors"],
            json!([{"error_code": "400", "failures": 2, "devices": 2},
                   {"error_code": "300", "failures": 1, "devices": 1}]),
            "{source}"
        );
    }
    // the telemetry's buckets: one per hour, 6 and 4 messages
    let buckets: Vec<(i64, u64, u64)> = doc["telemetry"]["success_rate"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| {
            (
                b["time"].as_i64().unwrap_or(0),
                b["success"].as_u64().unwrap_or(0),
                b["failure"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        buckets,
        vec![(1_785_531_600, 4, 2), (1_785_535_200, 3, 1)],
        "dev-000..005 in the first hour (002, 005 failed), 006..009 in the second (007 failed)"
    );

    // the page: self-contained, charts drawn as SVG, the numbers in attributes and text
    let page = std::fs::read_to_string(&html).expect("html written");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(!page.contains("<script") && !page.contains("src=\"http"));
    assert_eq!(page.matches("<svg").count(), 6, "3 charts per source");
    assert!(page.contains("data-success-rate=\"70\""), "{page}");
    assert!(page.contains(&format!("data-p50-ms=\"{want_p50}\"")));
    assert!(page.contains(
        "<tr data-group=\"canary\" data-targets=\"3\" data-success=\"2\" data-error=\"1\">"
    ));
    assert!(page.contains("data-error-code=\"400\""));
    assert_eq!(
        page.matches("<table class=\"update-bytes\" data-updates=\"9\" data-devices=\"9\"")
            .count(),
        2,
        "one bytes table per source"
    );
    assert!(page.contains(&format!("data-p50-bytes=\"{p50}\"")));
    assert!(page.contains(&format!("data-total-bytes=\"{}\"", total as u64)));
    assert!(page.contains("data-full-bytes=\"1000000\""));
    assert!(page.contains("Reported by 9 of the 10 devices with an outcome"));
    let labels = svg_texts(&page);
    for label in ["66.7", "75.0", "400", "300", "2", "1"] {
        assert!(
            labels.iter().any(|l| l == label),
            "no chart label {label}: {labels:?}"
        );
    }
    assert!(labels.iter().any(|l| *l == format!("{want_p95:.0}")));
}

/// Creates and starts a rollout of `ds` to `PREFIX*` in two groups (`canary` the first
/// `canary_pct` %, then `rest`); returns its id.
fn start_rollout(fx: &Fx, ds: u64, prefix: &str, name: &str, canary_pct: u64) -> u64 {
    let cond = |s: &str| json!({"condition": "THRESHOLD", "expression": s});
    let (s, ro) = fx.mgmt(
        "POST",
        "/rollouts",
        Some(json!({
            "name": name, "distributionSetId": ds, "targetFilterQuery": format!("controllerid=={prefix}*"),
            "type": "forced", "successCondition": cond("50"), "errorCondition": cond("80"),
            "groups": [
                {"name": "canary", "targetPercentage": canary_pct, "successCondition": cond("50"), "errorCondition": cond("80")},
                {"name": "rest", "targetPercentage": 100, "successCondition": cond("50"), "errorCondition": cond("80")}
            ]
        })),
    );
    assert_eq!(s, 201, "{ro}");
    let id = ro["id"].as_u64().expect("rollout id");
    fx.wait_rollout(id, "ready");
    let (s, _) = fx.mgmt("POST", &format!("/rollouts/{id}/start"), None);
    assert!(s == 200 || s == 204, "start: {s}");
    id
}

#[test]
fn report_update_bytes_known_values() {
    // 3 devices report 100, 200 and 1000 bytes over the air, a 4th (an older agent) none:
    // P50 200, P95 920 (percentile_cont), total 1300, 3 of 4 reported; 10 % of a 2000-byte bundle
    let fx = Fx::new(FAST);
    let devices = fx.targets("kb-", 4);
    let ds = fx.publish(&fx.file("k.raucb", 5, 1200), "5.0");
    let id = start_rollout(&fx, ds, "kb-", "bytes-test", 25);
    let bytes = [Some(100), Some(200), Some(1000), None];
    let mut answered = vec![false; devices.len()];
    let end = Instant::now() + Duration::from_secs(60);
    while answered.iter().any(|a| !a) {
        assert!(Instant::now() < end, "devices answered: {answered:?}");
        for (i, d) in devices.iter().enumerate() {
            if !answered[i] && answer(&fx, d, None, 10, bytes[i]) {
                answered[i] = true;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    fx.wait_rollout(id, "finished");
    // the same in telemetry: a number, a numeric string (ThingsBoard casts it), a whole decimal;
    // the 4th device published download_bytes only (not taken for update_bytes)
    let tele = fx.dir.path().join("t.jsonl");
    let mut lines = vec![
        json!({"device": "kb-000", "ts": 1000, "values": {"update_bytes": 100, "chunk_bytes": 0}}),
        json!({"device": "kb-001", "ts": 1000, "values": {"update_bytes": "200", "chunk_bytes": 150}}),
        json!({"device": "kb-002", "ts": 1000, "values": {"update_bytes": 1000.0, "chunk_bytes": 950}}),
        json!({"device": "kb-003", "ts": 1000, "values": {"download_bytes": 5000}}),
    ];
    for d in &devices {
        lines.push(json!({"device": d, "ts": 2000, "values": {"ota_status": "success"}}));
    }
    let text: String = lines.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(&tele, text).expect("write telemetry");
    let rid = id.to_string();
    let args = ["report", "--rollout", &rid, "--telemetry", path(&tele)];
    let r = fx.ctl(&[&["--json"], &args[..], &["--full-bytes", "2000"]].concat());
    assert_eq!(r.code, 0, "{r:?}");
    let doc = r.json();
    assert_eq!(doc["full_bytes"], 2000);
    for source in ["hawkbit", "telemetry"] {
        let b = &doc[source]["update_bytes"];
        assert_eq!(b["count"], 3, "{source}: {b}");
        assert_eq!(b["devices"], 3, "{source}: {b}");
        assert_eq!(
            doc[source]["devices"], 4,
            "{source}: devices with an outcome"
        );
        assert!(close(num(&b["p50"]), 200.0), "{source}: {b}");
        assert!(close(num(&b["p95"]), 920.0), "{source}: {b}");
        assert_eq!(b["total"].as_u64(), Some(1300), "{source}: {b}");
        assert!(close(num(&b["p50_of_full_percent"]), 10.0), "{source}: {b}");
    }
    let c = &doc["telemetry"]["chunk_bytes"];
    assert_eq!(
        (c["count"].as_u64(), c["total"].as_u64()),
        (Some(3), Some(1100)),
        "{c}"
    );
    assert!(close(num(&c["p50"]), 150.0), "{c}");
    // per group: the canary is kb-000 (100), the rest kb-001..003 (200, 1000, none)
    let g = &doc["rollout"]["groups"];
    assert_eq!(g[0]["update_bytes"]["count"], 1, "{g}");
    assert!(close(num(&g[0]["update_bytes"]["p50"]), 100.0), "{g}");
    assert!(
        close(num(&g[0]["update_bytes"]["p50_of_full_percent"]), 5.0),
        "{g}"
    );
    assert_eq!(g[1]["update_bytes"]["count"], 2, "{g}");
    assert!(close(num(&g[1]["update_bytes"]["p50"]), 600.0), "{g}");
    assert_eq!(g[1]["update_bytes"]["total"].as_u64(), Some(1200), "{g}");

    // the text: the figures, how many reported, the share of the full bundle
    let r = fx.ctl(&[&args[..], &["--full-bytes", "2000"]].concat());
    assert_eq!(r.code, 0, "{r:?}");
    for want in [
        "hawkBit: bytes over the air per update: P50 200 B, P95 920 B, total 1.27 KiB over 3 updates, reported by 3 devices (4 with an outcome); P50 is 10.00 % of the full bundle",
        "telemetry: bytes over the air per update: P50 200 B, P95 920 B, total 1.27 KiB over 3 updates, reported by 3 devices (4 with an outcome); P50 is 10.00 % of the full bundle",
        "telemetry: of them casync chunks: P50 150 B",
        "full bundle (--full-bytes): 1.95 KiB (2000 bytes)",
        "; over the air P50 600 B, total 1.17 KiB (n=2)",
    ] {
        assert!(
            r.stderr.contains(want) || r.stdout.contains(want),
            "no '{want}' in {r:?}"
        );
    }
    // without --full-bytes: the absolute numbers only (hawkBit's artifact is not the reference)
    let r = fx.ctl(&[&["--json"], &args[..]].concat());
    assert_eq!(r.code, 0, "{r:?}");
    let doc = r.json();
    assert!(doc["full_bytes"].is_null());
    assert!(doc["hawkbit"]["update_bytes"]["p50_of_full_percent"].is_null());
    assert!(close(num(&doc["hawkbit"]["update_bytes"]["p50"]), 200.0));
    let r = fx.ctl(&args);
    assert!(
        !r.stderr.contains("of the full bundle") && !r.stdout.contains("of the full bundle"),
        "{r:?}"
    );
    // --full-bytes must be a positive number
    assert_eq!(
        fx.ctl(&[&args[..], &["--full-bytes", "0"]].concat()).code,
        2
    );
    assert_eq!(
        fx.ctl(&[&args[..], &["--full-bytes", "-5"]].concat()).code,
        2
    );
}

#[test]
fn report_of_simulated_devices_counts_their_artifact_bytes() {
    // hil_tests::fleet devices (eyas-core's Client each) fetch the artifact, say so in the closed
    // feedback (update_bytes=N) and in their telemetry (update_bytes, chunk_bytes 0)
    let fx = Fx::new(FAST);
    let n = 4;
    fx.targets("fl-", n);
    let size = 20_000u64;
    let ds = fx.publish(&fx.file("f.raucb", 9, size as usize), "9.0");
    let tele = fx.dir.path().join("fleet.jsonl");
    let cfg = hil_tests::fleet::FleetConfig {
        url: fx.url.clone(),
        addr: fx.addr(),
        tenant: "DEFAULT".into(),
        prefix: "fl-".into(),
        count: n,
        gateway_token: None,
        token_prefix: "tok-".into(),
        fail: vec![],
        fail_rates: vec![],
        fail_kinds: vec![],
        max_poll: Duration::from_millis(300),
        work: Duration::from_millis(20),
        reboot: Duration::from_millis(20),
        duration: Duration::from_secs(120),
        connections: 4,
        telemetry: Some(tele.clone()),
        verbose: false,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let fleet = fx.runtime().spawn(hil_tests::fleet::run_until(cfg, async {
        let _ = stopped.await;
    }));
    let id = start_rollout(&fx, ds, "fl-", "fleet-bytes", 25);
    let end = Instant::now() + Duration::from_secs(90);
    while fx.rollout_status(id) != "finished" {
        assert!(Instant::now() < end, "the fleet's rollout did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = stop.send(());
    let stats = fx
        .runtime()
        .block_on(fleet)
        .expect("the fleet task")
        .expect("the fleet ran");
    assert_eq!(
        stats.succeeded.load(std::sync::atomic::Ordering::Relaxed),
        n as u64
    );
    let r = fx.ctl(&[
        "--json",
        "report",
        "--rollout",
        &id.to_string(),
        "--telemetry",
        path(&tele),
        "--full-bytes",
        &(size * 10).to_string(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let doc = r.json();
    for source in ["hawkbit", "telemetry"] {
        let b = &doc[source]["update_bytes"];
        assert_eq!(b["count"].as_u64(), Some(n as u64), "{source}: {b}");
        assert_eq!(b["devices"].as_u64(), Some(n as u64), "{source}: {b}");
        assert!(close(num(&b["p50"]), size as f64), "{source}: {b}");
        assert!(close(num(&b["p95"]), size as f64), "{source}: {b}");
        assert_eq!(b["total"].as_u64(), Some(n as u64 * size), "{source}: {b}");
        assert!(close(num(&b["p50_of_full_percent"]), 10.0), "{source}: {b}");
    }
    let c = &doc["telemetry"]["chunk_bytes"];
    assert_eq!(
        (c["count"].as_u64(), c["total"].as_u64()),
        (Some(n as u64), Some(0)),
        "{c}"
    );
}

#[test]
fn report_errors_are_usage_or_hawkbit_errors() {
    let fx = Fx::new(FAST);
    // neither --rollout nor --telemetry
    assert_eq!(fx.ctl(&["report"]).code, 2);
    // a telemetry line that is not a message: the file and line are named
    let bad = fx.dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"device\":\"d\",\"ts\":1,\"values\":{}}\n{\"ts\":2}\n",
    )
    .expect("write");
    let r = fx.ctl(&["report", "--telemetry", path(&bad)]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("bad.jsonl:2:"), "{}", r.stderr);
    // an unknown rollout: hawkBit's 404 with its errorCode
    let r = fx.ctl(&["--json", "report", "--rollout", "4242"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.json()["status"], 404);
}
