//! The in-process library API as an async caller uses it, and the `hawkbit-sim` binary's CLI.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use hil_tests::client::Conn;
use hil_tests::sim::{AssignOptions, FaultSet, Faults, Sim, SimConfig};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_caller_drives_a_deployment() {
    let sim = Sim::start(SimConfig::default()).await.unwrap();
    let token = sim.create_target("dev-01", None).unwrap();
    assert!(
        sim.set_config("pollingTime", json!("00:00:05")).is_err(),
        "below minPollingTime"
    );
    sim.set_config("pollingTime", json!("00:01:00")).unwrap();
    assert_eq!(token.len(), 32);
    let sm = sim.create_software_module("rootfs", "1.0", "os").unwrap();
    let art = sim.add_artifact_bytes(sm, "b.raucb", b"payload").unwrap();
    assert_eq!(art.size, 7);
    let ds = sim
        .create_distribution_set("fw", "1.0", "os", &[sm])
        .unwrap();
    let action = sim.assign("dev-01", ds, AssignOptions::default()).unwrap();
    assert_eq!(
        sim.assign("dev-01", ds, AssignOptions::default()).unwrap(),
        action,
        "already assigned"
    );
    let mut c = Conn::new(sim.addr());
    let auth = format!("TargetToken {token}");
    let base = format!("/{}/controller/v1/dev-01", sim.tenant());
    let r = c
        .request("GET", &base, &[("Authorization", &auth)], b"")
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["config"]["polling"]["sleep"], "00:01:00");
    assert!(
        v["_links"]["deploymentBase"]["href"]
            .as_str()
            .unwrap()
            .starts_with(&sim.ddi_url("dev-01"))
    );
    let fb = json!({"status": {"execution": "closed", "result": {"finished": "success"}, "details": ["ok"]}}).to_string();
    let r = c
        .request(
            "POST",
            &format!("{base}/deploymentBase/{action}/feedback"),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            fb.as_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(sim.action_status(action).as_deref(), Some("finished"));
    assert!(sim.action_messages(action).contains(&"ok".to_string()));
    // cancel through the API, faults and restart
    let ds2 = sim
        .create_distribution_set("fw", "2.0", "os", &[sm])
        .unwrap();
    let a2 = sim.assign("dev-01", ds2, AssignOptions::default()).unwrap();
    sim.cancel("dev-01", a2).unwrap();
    assert_eq!(sim.action_status(a2).as_deref(), Some("canceling"));
    sim.set_faults(FaultSet {
        global: Faults {
            error_rate: 1.0,
            error_status: Some(502),
            ..Faults::default()
        },
        ..FaultSet::default()
    });
    assert_eq!(
        c.request("GET", &base, &[("Authorization", &auth)], b"")
            .await
            .unwrap()
            .status,
        502
    );
    sim.set_faults(FaultSet::default());
    sim.restart(Duration::from_millis(100)).await;
    assert_eq!(
        c.request("GET", &base, &[("Authorization", &auth)], b"")
            .await
            .unwrap()
            .status,
        200
    );
    let storage = sim.shared().storage.clone();
    assert!(storage.exists());
    sim.shutdown().await;
    assert!(!storage.exists(), "temp storage removed on shutdown");
}

#[test]
fn binary_prints_its_address_serves_and_rejects_bad_flags() {
    let exe = env!("CARGO_BIN_EXE_hawkbit-sim");
    let bad = Command::new(exe)
        .args(["--polling-time", "5min"])
        .output()
        .unwrap();
    assert_eq!(
        bad.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("polling time"));
    let bad = Command::new(exe)
        .args(["--error-rate", "3"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let bad = Command::new(exe).args(["--nonsense"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));

    let mut child = Command::new(exe)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--gateway-token",
            "gw",
            "--faults",
            r#"{"targets":{"slow":{"latencyMs":1}}}"#,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("hawkbit-sim listening on ")
        .unwrap()
        .to_string();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let r = agent
        .get(format!("{url}/DEFAULT/controller/v1/gw-dev"))
        .header("Authorization", "GatewayToken gw")
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut r = agent.get(format!("{url}/sim/faults")).call().unwrap();
    let f: Value = serde_json::from_slice(&r.body_mut().read_to_vec().unwrap()).unwrap();
    assert_eq!(f["targets"]["slow"]["latencyMs"], 1);
    child.kill().unwrap();
    child.wait().unwrap();
}
