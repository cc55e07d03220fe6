//! Fault injection (latency, error rate, connection cut, corruption, bandwidth, restart) and /sim controls.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::Fx;
use hil_tests::sim::{Faults, SimConfig};
use serde_json::json;

fn artifact_url(fx: &Fx, cid: &str, sm: u64) -> String {
    format!(
        "{}/softwaremodules/{sm}/artifacts/rootfs.raucb",
        fx.ddi(cid)
    )
}

fn big_deployment(fx: &Fx, cid: &str, size: usize) -> (String, u64, Vec<u8>) {
    let tok = fx.target(cid);
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let sm = fx
        .sim()
        .create_software_module("rootfs", cid, "os")
        .unwrap();
    fx.sim()
        .add_artifact_bytes(sm, "rootfs.raucb", &data)
        .unwrap();
    let ds = fx
        .sim()
        .create_distribution_set("fw", cid, "os", &[sm])
        .unwrap();
    fx.sim().assign(cid, ds, Default::default()).unwrap();
    (tok, sm, data)
}

/// Waits until `done()` holds, polling every 10 ms; fails with `what` after 60 s.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// GET `url` with `auth` on a thread of its own (never joined: the fixture's shutdown ends it);
/// returns the count of body bytes read so far.
fn background_get(fx: &Fx, url: String, auth: String) -> Arc<AtomicUsize> {
    let got = Arc::new(AtomicUsize::new(0));
    let (agent, seen) = (fx.agent.clone(), got.clone());
    std::thread::spawn(move || {
        use std::io::Read;
        let Ok(mut r) = agent.get(&url).header("Authorization", &auth).call() else {
            return;
        };
        let mut body = r.body_mut().as_reader();
        let mut buf = [0u8; 4096];
        while let Ok(n) = body.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.fetch_add(n, Ordering::SeqCst);
        }
    });
    got
}

fn ddi_paths(fx: &Fx) -> Vec<String> {
    fx.sim()
        .request_log()
        .into_iter()
        .map(|r| r.path)
        .filter(|p| p.contains("/controller/"))
        .collect()
}

#[test]
fn latency_and_error_rate_per_target_and_global() {
    let fx = Fx::new();
    fx.target("slow");
    fx.target("fine");
    // a latency keeps the answer: a delayed poll is still a 200
    fx.sim().set_target_faults(
        Some("slow"),
        Faults {
            latency_ms: 20,
            ..Faults::default()
        },
    );
    assert_eq!(fx.ddi_get("slow", "tok-slow", "").status, 200);
    fx.sim().clear_request_log();
    // order, not time: with a minute of latency, a poll of "slow" that arrived first is still held
    // when a poll of "fine" that arrived after it has been answered
    fx.sim().set_target_faults(
        Some("slow"),
        Faults {
            latency_ms: 60_000,
            ..Faults::default()
        },
    );
    let arrived = || fx.sim().shared().requests.load(Ordering::SeqCst);
    let before = arrived();
    background_get(&fx, fx.ddi("slow"), "TargetToken tok-slow".into());
    wait_until("the slow poll never arrived", || arrived() > before);
    assert_eq!(fx.ddi_get("fine", "tok-fine", "").status, 200);
    assert_eq!(
        ddi_paths(&fx),
        vec!["/DEFAULT/controller/v1/fine"],
        "only the later poll of the unaffected target is answered"
    );
    // error rate 1.0 with 429 for one target, via the HTTP control API
    let r = fx.call(
        "PUT",
        "/sim/faults/targets/fine",
        &[("Content-Type", "application/json")],
        Some(br#"{"errorRate":1.0,"errorStatus":429}"#),
    );
    assert_eq!(r.status, 204);
    assert_eq!(fx.ddi_get("fine", "tok-fine", "").status, 429);
    assert_eq!(
        fx.mgmt("GET", "/targets", None).status,
        200,
        "Mgmt API is never faulted"
    );
    // global 50 % 503: both outcomes appear
    let r = fx.call(
        "PUT",
        "/sim/faults",
        &[("Content-Type", "application/json")],
        Some(br#"{"global":{"errorRate":0.5}}"#),
    );
    assert_eq!(r.status, 204);
    let codes: Vec<u16> = (0..60)
        .map(|_| fx.ddi_get("fine", "tok-fine", "").status)
        .collect();
    assert!(codes.contains(&503) && codes.contains(&200), "{codes:?}");
    let got = fx.call("GET", "/sim/faults", &[], None).json();
    assert_eq!(got["global"]["errorRate"], 0.5);
    // validation
    for bad in [
        &br#"{"global":{"errorRate":2}}"#[..],
        br#"{"global":{"latencyMs":-1}}"#,
        br#"{"global":{"bogus":1}}"#,
        b"nope",
    ] {
        assert_eq!(
            fx.call(
                "PUT",
                "/sim/faults",
                &[("Content-Type", "application/json")],
                Some(bad)
            )
            .status,
            400
        );
    }
    assert_eq!(fx.call("DELETE", "/sim/faults", &[], None).status, 204);
    assert_eq!(fx.ddi_get("fine", "tok-fine", "").status, 200);
}

#[test]
fn faults_api_global_target_override_and_delete() {
    let fx = Fx::new();
    fx.target("g1");
    fx.target("g2");
    let put = |path: &str, body: &[u8]| {
        fx.call(
            "PUT",
            path,
            &[("Content-Type", "application/json")],
            Some(body),
        )
        .status
    };
    assert_eq!(
        put(
            "/sim/faults/global",
            br#"{"errorRate":1.0,"errorStatus":500}"#
        ),
        204
    );
    assert_eq!(fx.ddi_get("g1", "tok-g1", "").status, 500);
    assert_eq!(fx.ddi_get("g2", "tok-g2", "").status, 500);
    assert_eq!(fx.mgmt("GET", "/targets/g1", None).status, 200);
    assert_eq!(fx.call("GET", "/sim/health", &[], None).status, 200);
    // a target entry replaces the global one (an empty entry = no faults for that target)
    assert_eq!(put("/sim/faults/targets/g2", b"{}"), 204);
    assert_eq!(fx.ddi_get("g2", "tok-g2", "").status, 200);
    assert_eq!(fx.ddi_get("g1", "tok-g1", "").status, 500);
    let got = fx.call("GET", "/sim/faults", &[], None).json();
    assert_eq!(got["global"]["errorStatus"], 500);
    assert!(got["targets"]["g2"].is_object(), "{got}");
    // deleting the target entry brings the global one back
    assert_eq!(
        fx.call("DELETE", "/sim/faults/targets/g2", &[], None)
            .status,
        204
    );
    assert_eq!(fx.ddi_get("g2", "tok-g2", "").status, 500);
    assert_eq!(put("/sim/faults/global", br#"{"errorStatus":200}"#), 400);
    // injected answers are marked in the request log
    let log = fx.call("GET", "/sim/requests", &[], None).json();
    let last = log.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["status"], 500, "{last}");
    assert_eq!(last["injected"], true, "{last}");
    assert_eq!(fx.call("DELETE", "/sim/faults", &[], None).status, 204);
    assert_eq!(fx.ddi_get("g1", "tok-g1", "").status, 200);
}

#[test]
fn connection_cut_then_resume_with_range() {
    let fx = Fx::new();
    let (tok, sm, data) = big_deployment(&fx, "cut", 200_000);
    fx.sim().set_target_faults(
        Some("cut"),
        Faults {
            cut_after_bytes: Some(70_000),
            cut_count: Some(1),
            ..Faults::default()
        },
    );
    let auth = format!("TargetToken {tok}");
    let url = artifact_url(&fx, "cut", sm);
    let err = fx.req("GET", &url, &[("Authorization", &auth)], None);
    assert!(err.is_err(), "body must be truncated");
    // the cut happened exactly once: a resume with Range gets the rest
    let r = fx.call(
        "GET",
        &url,
        &[("Authorization", &auth), ("Range", "bytes=70000-")],
        None,
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data[70_000..]);
    // raw socket check of the exact byte count
    fx.sim().set_target_faults(
        Some("cut"),
        Faults {
            cut_after_bytes: Some(12_345),
            ..Faults::default()
        },
    );
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(fx.sim().addr()).unwrap();
    let path = url.trim_start_matches(&fx.url);
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(buf.len() - split, 12_345);
    assert!(String::from_utf8_lossy(&buf[..split]).contains("content-length: 200000"));
}

#[test]
fn cut_count_is_spent_only_on_downloads_that_send_a_body() {
    let fx = Fx::new();
    let (tok, sm, data) = big_deployment(&fx, "cc", 100_000);
    fx.sim().set_target_faults(
        Some("cc"),
        Faults {
            cut_after_bytes: Some(10_000),
            cut_count: Some(1),
            ..Faults::default()
        },
    );
    let auth = format!("TargetToken {tok}");
    let url = artifact_url(&fx, "cc", sm);
    // responses without a body (416, 412, 304, HEAD) are not downloads: the cut is still pending
    let r = fx.call(
        "GET",
        &url,
        &[("Authorization", &auth), ("Range", "bytes=100000-")],
        None,
    );
    assert_eq!(r.status, 416);
    let r = fx.call(
        "GET",
        &url,
        &[("Authorization", &auth), ("If-Match", "\"other\"")],
        None,
    );
    assert_eq!(r.status, 412);
    assert_eq!(
        fx.call("HEAD", &url, &[("Authorization", &auth)], None)
            .status,
        200
    );
    assert!(
        fx.req("GET", &url, &[("Authorization", &auth)], None)
            .is_err(),
        "the first real download is cut"
    );
    let r = fx.call("GET", &url, &[("Authorization", &auth)], None);
    assert_eq!(r.body, data, "cutCount 1: only one download is cut");
}

#[test]
fn corrupted_byte_at_offset() {
    let fx = Fx::new();
    let (tok, sm, data) = big_deployment(&fx, "bit", 150_000);
    fx.sim().set_target_faults(
        Some("bit"),
        Faults {
            corrupt_offset: Some(100_001),
            ..Faults::default()
        },
    );
    let auth = format!("TargetToken {tok}");
    let r = fx.call(
        "GET",
        &artifact_url(&fx, "bit", sm),
        &[("Authorization", &auth)],
        None,
    );
    assert_eq!(r.body.len(), data.len());
    let diff: Vec<usize> = (0..data.len()).filter(|i| r.body[*i] != data[*i]).collect();
    assert_eq!(diff, vec![100_001]);
    assert_eq!(r.body[100_001], data[100_001] ^ 0xFF);
    // ranges covering the offset are corrupted too, others are clean
    let r = fx.call(
        "GET",
        &artifact_url(&fx, "bit", sm),
        &[("Authorization", &auth), ("Range", "bytes=100000-100002")],
        None,
    );
    assert_eq!(r.body[1], data[100_001] ^ 0xFF);
    let r = fx.call(
        "GET",
        &artifact_url(&fx, "bit", sm),
        &[("Authorization", &auth), ("Range", "bytes=0-99")],
        None,
    );
    assert_eq!(r.body, &data[..100]);
}

#[test]
fn bandwidth_cap() {
    let fx = Fx::with(SimConfig {
        rollout_interval: Duration::from_secs(3600),
        ..SimConfig::default()
    });
    let (tok, sm, data) = big_deployment(&fx, "bw", 300_000);
    let (free_tok, free_sm, free_data) = big_deployment(&fx, "free", 300_000);
    // a capped download delivers the whole artifact, unchanged
    fx.sim().set_target_faults(
        Some("bw"),
        Faults {
            bandwidth_bytes_per_sec: Some(2_000_000),
            ..Faults::default()
        },
    );
    let auth = format!("TargetToken {tok}");
    let r = fx.call(
        "GET",
        &artifact_url(&fx, "bw", sm),
        &[("Authorization", &auth)],
        None,
    );
    assert_eq!(r.body, data);
    // order, not time: at 4 kB/s (75 s for 300 kB) a capped download started first has not
    // delivered the artifact when the same download for an uncapped target, started after it,
    // is complete
    fx.sim().set_target_faults(
        Some("bw"),
        Faults {
            bandwidth_bytes_per_sec: Some(4_000),
            ..Faults::default()
        },
    );
    let arrived = || fx.sim().shared().requests.load(Ordering::SeqCst);
    let before = arrived();
    let capped = background_get(&fx, artifact_url(&fx, "bw", sm), auth);
    wait_until("the capped download never arrived", || arrived() > before);
    let r = fx.call(
        "GET",
        &artifact_url(&fx, "free", free_sm),
        &[("Authorization", &format!("TargetToken {free_tok}"))],
        None,
    );
    assert_eq!(r.body, free_data);
    let got = capped.load(Ordering::SeqCst);
    assert!(
        got < data.len(),
        "the capped download already delivered {got} bytes"
    );
}

#[test]
fn simulated_restart_keeps_state() {
    let fx = Fx::new();
    fx.target("rs");
    let r = fx.call(
        "POST",
        "/sim/restart",
        &[("Content-Type", "application/json")],
        Some(br#"{"downMs":1500}"#),
    );
    assert_eq!(r.status, 202);
    // the port closes, then opens again: observed in that order (bounded waits, no timing)
    let open = || std::net::TcpStream::connect(fx.sim().addr()).is_ok();
    wait_until("the port never closed", || !open());
    wait_until("the port never opened again", open);
    assert_eq!(
        fx.ddi_get("rs", "tok-rs", "").status,
        200,
        "back up, state kept"
    );
    // programmatic restart: returns once the port is open again
    fx.rt.block_on(fx.sim().restart(Duration::from_millis(100)));
    assert_eq!(fx.ddi_get("rs", "tok-rs", "").status, 200);
    assert_eq!(
        fx.call("POST", "/sim/restart", &[], Some(b"{\"downMs\":\"x\"}"))
            .status,
        400
    );
}

#[test]
fn control_endpoints() {
    let fx = Fx::new();
    assert_eq!(
        fx.call("GET", "/sim/health", &[], None).json(),
        json!({"status": "ok"})
    );
    fx.target("x");
    let s = fx.call("GET", "/sim/stats", &[], None).json();
    assert_eq!(s["targets"], 1);
    assert!(s["requests"].as_u64().unwrap() >= 1);
    assert_eq!(
        fx.call(
            "POST",
            "/sim/maintenance",
            &[],
            Some(br#"{"window":"sometimes"}"#)
        )
        .status,
        400
    );
    assert_eq!(
        fx.call(
            "POST",
            "/sim/maintenance",
            &[],
            Some(br#"{"window":"open"}"#)
        )
        .status,
        204
    );
    assert_eq!(
        fx.call("DELETE", "/sim/faults/targets/x", &[], None).status,
        204
    );
    // unknown paths: 404, never a panic
    assert_eq!(fx.call("GET", "/nothing/here", &[], None).status, 404);
    assert_eq!(
        fx.call(
            "GET",
            "/DEFAULT/controller/v1/x/softwaremodules/abc/artifacts",
            &[("Authorization", "TargetToken tok-x")],
            None
        )
        .status,
        400
    );
}
