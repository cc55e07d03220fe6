//! Telemetry against a real mosquitto with ThingsBoard-style token auth.

mod common;

use std::time::{Duration, Instant};

use common::broker::{Broker, TOKEN};
use eyas_linux::config::MqttConfig;
use eyas_linux::telemetry::{OtaStatus, Telemetry, current_software, status};
use serde_json::{Value, json};

fn config(port: u16, token: &str, queue: usize) -> MqttConfig {
    MqttConfig {
        host: "127.0.0.1".into(),
        port,
        access_token: token.into(),
        tls: false,
        ca_file: None,
        queue_size: queue,
    }
}

fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"))
}

async fn wait_async(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn publishes_timestamped_telemetry_with_the_token_as_username() {
    let broker = Broker::start();
    let observer = broker.observer();
    let t = Telemetry::spawn(&config(broker.port, TOKEN, 16), "dev-1").expect("spawn");
    t.send(&current_software("rootfs", "1.1.0", "A"));
    t.send(&status(OtaStatus::Success, None));
    wait_async("delivery", Duration::from_secs(10), || t.delivered() == 2).await;
    let lines = observer.wait_lines(2, Duration::from_secs(10));
    let first = parse(&lines[0]);
    assert_eq!(first["values"]["sw_version"], "1.1.0");
    assert_eq!(first["values"]["current_sw_version"], "1.1.0");
    assert!(first["ts"].as_u64().is_some());
    assert_eq!(parse(&lines[1])["values"]["sw_state"], "UPDATED");
    assert!(
        broker.log().contains(&format!("u'{TOKEN}'")),
        "the token is the MQTT username"
    );
    t.stop();
}

#[tokio::test(flavor = "current_thread")]
async fn wrong_token_is_not_delivered() {
    // Variant A: an unknown username may connect but has no ACL, so nothing arrives.
    let broker = Broker::start();
    let observer = broker.observer();
    let t = Telemetry::spawn(&config(broker.port, "WRONG", 16), "dev-2").expect("spawn");
    t.send(&json!({"values": {"x": 1}}));
    wait_async("a PUBACK", Duration::from_secs(10), || t.delivered() == 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(observer.lines().is_empty(), "{:?}", observer.lines());
    assert!(
        broker.log().contains("Denied PUBLISH from dev-2"),
        "{}",
        broker.log()
    );
    t.stop();
}

#[tokio::test(flavor = "current_thread")]
async fn broker_outage_queues_without_blocking_and_delivers_after_reconnect() {
    let mut broker = Broker::start();
    let observer = broker.observer();
    let t = Telemetry::spawn(&config(broker.port, TOKEN, 16), "dev-3").expect("spawn");
    t.send(&json!({"values": {"seq": 0}}));
    wait_async("first delivery", Duration::from_secs(10), || {
        t.delivered() == 1
    })
    .await;

    broker.down();
    wait_async(
        "the disconnect to be noticed",
        Duration::from_secs(60),
        || !t.is_connected(),
    )
    .await;
    for seq in 1..=3 {
        t.send(&json!({"values": {"seq": seq}}));
    }
    // send returned with the broker away: each message was queued at once (this runtime has one
    // thread, so the sender task has not run since), nothing was delivered or dropped.
    assert_eq!(
        (t.queued(), t.delivered(), t.dropped()),
        (3, 1, 0),
        "send must only queue, never wait for the network"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(t.queued(), 3, "messages wait while the broker is away");

    broker.up();
    wait_async(
        "redelivery after reconnect",
        Duration::from_secs(30),
        || t.queued() == 0,
    )
    .await;
    let lines = observer.wait_lines(4, Duration::from_secs(10));
    let seqs: Vec<i64> = lines
        .iter()
        .map(|l| parse(l)["values"]["seq"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(seqs, [0, 1, 2, 3]);
    assert_eq!(t.dropped(), 0);
    t.stop();
}

#[tokio::test(flavor = "current_thread")]
async fn queue_overflow_drops_the_oldest_and_counts() {
    let mut broker = Broker::start();
    let observer = broker.observer();
    broker.down();
    let t = Telemetry::spawn(&config(broker.port, TOKEN, 3), "dev-4").expect("spawn");
    for seq in 0..5 {
        t.send(&json!({"values": {"seq": seq}}));
    }
    assert_eq!(t.queued(), 3);
    assert_eq!(t.dropped(), 2);
    broker.up();
    wait_async("delivery", Duration::from_secs(30), || t.queued() == 0).await;
    let lines = observer.wait_lines(3, Duration::from_secs(10));
    let seqs: Vec<i64> = lines
        .iter()
        .map(|l| parse(l)["values"]["seq"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(seqs, [2, 3, 4]);
    t.stop();
}

#[tokio::test(flavor = "current_thread")]
async fn tls_to_the_broker_with_a_private_ca() {
    let pki_dir = tempfile::tempdir().expect("tmp");
    let pki = common::make_pki(pki_dir.path());
    let (broker, tls_port) = Broker::start_tls(&pki);
    let observer = broker.observer();
    let mut cfg = config(tls_port, TOKEN, 16);
    cfg.tls = true;
    cfg.ca_file = Some(pki.ca.clone());
    let t = Telemetry::spawn(&cfg, "dev-tls").expect("spawn");
    t.send(&json!({"values": {"over": "tls"}}));
    wait_async("delivery over TLS", Duration::from_secs(10), || {
        t.delivered() == 1
    })
    .await;
    let lines = observer.wait_lines(1, Duration::from_secs(10));
    assert_eq!(parse(&lines[0])["values"]["over"], "tls");
    t.stop();

    // Without the private CA the broker's certificate is refused: nothing is delivered.
    let mut cfg = config(tls_port, TOKEN, 16);
    cfg.tls = true;
    let t = Telemetry::spawn(&cfg, "dev-tls-bad").expect("spawn");
    t.send(&json!({"values": {"over": "untrusted"}}));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(t.delivered(), 0);
    assert!(!t.is_connected());
    assert_eq!(observer.lines().len(), 1);
    t.stop();
}
