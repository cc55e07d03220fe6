//! The fleet rehearsal in small: simulated devices built on eyas-core's `Client`
//! (`hil_tests::fleet`) against hawkbit-sim, a staged rollout (1/10/50/100 %), and hawkBit's
//! action states and histories afterwards.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::Fx;
use hil_tests::fleet::{FailKind, FleetConfig, parse_fail_rates};
use hil_tests::sim::SimConfig;
use serde_json::{Value, json};

fn fx() -> Fx {
    Fx::with(SimConfig {
        polling_time: "00:00:01".into(),
        min_polling_secs: 1,
        rollout_interval: Duration::from_millis(200),
        ..SimConfig::default()
    })
}

fn fleet_config(fx: &Fx, prefix: &str, count: usize) -> FleetConfig {
    let addr: SocketAddr = fx.sim().addr();
    FleetConfig {
        url: fx.url.clone(),
        addr,
        tenant: "DEFAULT".into(),
        prefix: prefix.into(),
        count,
        gateway_token: None,
        token_prefix: "tok-".into(),
        fail: vec![],
        fail_rates: vec![],
        fail_kinds: vec![],
        max_poll: Duration::from_millis(500),
        work: Duration::from_millis(50),
        reboot: Duration::from_millis(50),
        duration: Duration::from_secs(90),
        connections: 8,
        telemetry: None,
        verbose: false,
    }
}

/// Registers PREFIX000… with tokens tok-PREFIX000… and a distribution set with one artifact.
fn setup(fx: &Fx, prefix: &str, n: usize) -> u64 {
    for i in 0..n {
        let cid = format!("{prefix}{i:03}");
        fx.sim()
            .create_target(&cid, Some(&format!("tok-{cid}")))
            .unwrap();
    }
    fx.make_ds("2.0", &vec![7u8; 100_000]).1
}

/// A rollout as `eyasctl rollout create --groups 1,10,50,100 --success 95 --error 5 --start`
/// posts it (shares of the cumulative percentages), started.
fn start_rollout(fx: &Fx, ds: u64, prefix: &str) -> u64 {
    let cond = json!({
        "successCondition": {"condition": "THRESHOLD", "expression": "95"},
        "successAction": {"action": "NEXTGROUP", "expression": ""},
        "errorCondition": {"condition": "THRESHOLD", "expression": "5"},
        "errorAction": {"action": "PAUSE", "expression": ""},
    });
    let groups: Vec<Value> = [1, 9, 40, 50]
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut g = cond.clone();
            g["name"] = json!(format!("g{i}"));
            g["targetPercentage"] = json!(p);
            g
        })
        .collect();
    let mut body = cond.clone();
    body["name"] = json!("rehearsal");
    body["distributionSetId"] = json!(ds);
    body["targetFilterQuery"] = json!(format!("controllerid=={prefix}*"));
    body["groups"] = json!(groups);
    let r = fx.mgmt("POST", "/rollouts", Some(body));
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while rollout_status(fx, id) != "ready" {
        assert!(Instant::now() < deadline, "rollout {id} never became ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        fx.mgmt("POST", &format!("/rollouts/{id}/start"), None)
            .status,
        204
    );
    id
}

fn rollout_status(fx: &Fx, id: u64) -> String {
    fx.mgmt("GET", &format!("/rollouts/{id}"), None).json()["status"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Waits until the rollout is in one of `ends`; returns that state.
fn wait_for(fx: &Fx, id: u64, ends: &[&str], limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let s = rollout_status(fx, id);
        if ends.contains(&s.as_str()) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "rollout {id} still '{s}' after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An action as hawkBit keeps it: status, last status code, messages of its history.
type ActionState = (String, Option<i64>, Vec<String>);

/// The rollout's action on each device, by device number.
fn actions(fx: &Fx, prefix: &str, n: usize, rollout: u64) -> Vec<Option<ActionState>> {
    fx.sim().with_state(|s| {
        (0..n)
            .map(|i| {
                let cid = format!("{prefix}{i:03}");
                s.actions_of(&cid)
                    .find(|a| a.rollout == Some(rollout))
                    .map(|a| {
                        (
                            a.status.name().to_string(),
                            a.last_status_code,
                            a.history.iter().flat_map(|h| h.messages.clone()).collect(),
                        )
                    })
            })
            .collect()
    })
}

fn has_download_time(messages: &[String]) -> bool {
    messages.iter().any(|m| {
        m.strip_prefix("download_duration_ms=")
            .is_some_and(|v| v.parse::<u64>().is_ok())
    })
}

/// The `update_bytes=N` detail of a closed feedback (the sim devices fetch the artifact only).
fn update_bytes(messages: &[String]) -> Option<u64> {
    messages
        .iter()
        .find_map(|m| m.strip_prefix("update_bytes=")?.parse().ok())
}

#[test]
fn rollout_of_50_devices_finishes() {
    let fx = fx();
    let ds = setup(&fx, "ok-", 50);
    let cfg = fleet_config(&fx, "ok-", 50);
    let run = fx.rt.spawn(hil_tests::fleet::run(cfg));
    let id = start_rollout(&fx, ds, "ok-");
    assert_eq!(
        wait_for(&fx, id, &["finished", "paused"], Duration::from_secs(80)),
        "finished"
    );
    for (i, a) in actions(&fx, "ok-", 50, id).into_iter().enumerate() {
        let Some((status, code, messages)) = a else {
            panic!("ok-{i:03} has no action of rollout {id}");
        };
        assert_eq!(status, "finished", "ok-{i:03}: {messages:?}");
        assert_eq!(code, None, "ok-{i:03}: a success carries no code");
        assert!(has_download_time(&messages), "ok-{i:03}: {messages:?}");
        assert_eq!(
            update_bytes(&messages),
            Some(100_000),
            "ok-{i:03}: the artifact's bytes over the air: {messages:?}"
        );
    }
    run.abort();
}

#[test]
fn injected_failures_pause_the_rollout_with_their_codes() {
    let fx = fx();
    let ds = setup(&fx, "bad-", 50);
    let mut cfg = fleet_config(&fx, "bad-", 50);
    // groups: 1 device, 4, 20, 25 (hawkBit's rounding); the third has 20 % failures
    cfg.fail_rates = parse_fail_rates("1:0,10:0,50:20,100:0").unwrap();
    cfg.fail_kinds = vec![
        FailKind::Install,
        FailKind::Health,
        FailKind::FallBack,
        FailKind::Verify,
    ];
    let failing: Vec<usize> = (0..50).filter(|&n| cfg.failure_of(n).is_some()).collect();
    assert_eq!(failing.len(), 4, "{failing:?}");
    assert!(failing.iter().all(|&n| (5..25).contains(&n)), "{failing:?}");
    let kinds: Vec<FailKind> = failing.iter().filter_map(|&n| cfg.failure_of(n)).collect();
    let run = fx.rt.spawn(hil_tests::fleet::run(cfg));
    let id = start_rollout(&fx, ds, "bad-");
    assert_eq!(
        wait_for(&fx, id, &["finished", "paused"], Duration::from_secs(80)),
        "paused"
    );
    // let the third group's last devices report (the pause stops no running action)
    let deadline = Instant::now() + Duration::from_secs(30);
    while actions(&fx, "bad-", 25, id).iter().any(|a| {
        a.as_ref()
            .is_some_and(|(s, _, _)| s != "finished" && s != "error")
    }) {
        assert!(Instant::now() < deadline, "actions still running");
        std::thread::sleep(Duration::from_millis(200));
    }
    let acts = actions(&fx, "bad-", 50, id);
    for (i, a) in acts.iter().enumerate() {
        let Some((status, code, messages)) = a else {
            panic!("bad-{i:03} has no action of rollout {id}");
        };
        if let Some(k) = failing.iter().position(|&n| n == i) {
            let want = match kinds[k] {
                FailKind::Verify => 110,
                FailKind::Install => 200,
                FailKind::Health => 300,
                FailKind::FallBack => 400,
            };
            assert_eq!(status, "error", "bad-{i:03}: {messages:?}");
            assert_eq!(
                *code,
                Some(want),
                "bad-{i:03} ({:?}): {messages:?}",
                kinds[k]
            );
        } else if i < 25 {
            assert_eq!(status, "finished", "bad-{i:03}: {messages:?}");
            assert!(has_download_time(messages), "bad-{i:03}: {messages:?}");
        } else {
            // the last group never started
            assert_eq!(status, "scheduled", "bad-{i:03}: {messages:?}");
        }
    }
    let groups = fx
        .mgmt("GET", &format!("/rollouts/{id}/deploygroups"), None)
        .json();
    let states: Vec<&str> = groups["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["status"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(states, ["finished", "finished", "error", "scheduled"]);
    run.abort();
}
