//! `eyasctl report` against hawkbit-sim: a two-group rollout whose devices answer as eyas does
//! (final feedback with the failure's `code` and a `download_duration_ms=N` detail), plus the
//! telemetry they "published"; the report's groups, success rates, percentiles and error codes
//! are checked against figures computed here from what the devices sent.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Fx, path};

const FAST: Duration = Duration::from_millis(100);

/// What a device reports: (error code for a failure or None for success, download ms).
fn plan(i: usize) -> (Option<i64>, u64) {
    let code = match i {
        2 | 7 => Some(400),
        5 => Some(300),
        _ => None,
    };
    (code, 1000 + 250 * i as u64)
}

/// The device answers its open deployment, if any, as eyas does; true if it had one.
fn answer(fx: &Fx, cid: &str, code: Option<i64>, download_ms: u64) -> bool {
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
    let detail = format!("download_duration_ms={download_ms}");
    let body = match code {
        None => json!({"status": {"execution": "closed", "result": {"finished": "success"},
                 "details": ["Update installed and booted", detail]}}),
        Some(c) => json!({"status": {"execution": "closed", "result": {"finished": "failure"},
                 "code": c, "details": ["The bootloader fell back to the previous slot", detail]}}),
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
    let cond = |s: &str| json!({"condition": "THRESHOLD", "expression": s});
    let (s, ro) = fx.mgmt(
        "POST",
        "/rollouts",
        Some(json!({
            "name": "report-test", "distributionSetId": ds, "targetFilterQuery": "controllerid==dev-*",
            "type": "forced", "successCondition": cond("50"), "errorCondition": cond("80"),
            "groups": [
                {"name": "canary", "targetPercentage": 30, "successCondition": cond("50"), "errorCondition": cond("80")},
                {"name": "rest", "targetPercentage": 100, "successCondition": cond("50"), "errorCondition": cond("80")}
            ]
        })),
    );
    assert_eq!(s, 201, "{ro}");
    let id = ro["id"].as_u64().expect("rollout id");
    fx.wait_rollout(id, "ready");
    let (s, _) = fx.mgmt("POST", &format!("/rollouts/{id}/start"), None);
    assert!(s == 200 || s == 204, "start: {s}");

    // the devices answer as their group starts, until every one has answered
    let mut answered: BTreeMap<String, u64> = BTreeMap::new();
    let end = Instant::now() + Duration::from_secs(60);
    while answered.len() < devices.len() {
        assert!(Instant::now() < end, "devices answered: {answered:?}");
        for (i, d) in devices.iter().enumerate() {
            let (code, ms) = plan(i);
            if !answered.contains_key(d) && answer(&fx, d, code, ms) {
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
        let (code, ms) = plan(i);
        let ts = t0 + i as i64 * 600_000;
        lines.push_str(&format!("{}\n", json!({"device": d, "ts": ts, "values": {"download_duration_ms": ms, "sw_state": "DOWNLOADED"}})));
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
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let doc = r.json();
    assert_eq!(doc["interval_secs"], 3600);

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
    let labels = svg_texts(&page);
    for label in ["66.7", "75.0", "400", "300", "2", "1"] {
        assert!(
            labels.iter().any(|l| l == label),
            "no chart label {label}: {labels:?}"
        );
    }
    assert!(labels.iter().any(|l| *l == format!("{want_p95:.0}")));
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
