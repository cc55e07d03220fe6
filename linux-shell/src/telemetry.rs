//! OTA telemetry to ThingsBoard's device MQTT API (rumqttc on Tokio).
//!
//! * username = device access token, no password; topic `v1/devices/me/telemetry`;
//! * each message is a timestamped object `{"ts":<unix ms>,"values":{…}}`, so messages queued
//!   while the broker was away land at the right place in the history;
//! * keys: `sw_version`, `rauc_slot`, `ota_status`, `ota_error`, ThingsBoard's OTA keys
//!   (`current_sw_title`, `current_sw_version`, `sw_state`, `sw_error`, `target_sw_*`) and
//!   `download_duration_ms`, `download_bytes`, `error_code` (shared/reference/thingsboard.md §1);
//! * **a broker outage never blocks an update**: [`Telemetry::send`] only appends to a bounded
//!   queue (the oldest message is dropped and counted when it is full); a background task
//!   delivers the queue with QoS 1, one message in flight, and removes a message only after its
//!   PUBACK; after a connection error it reconnects with exponential backoff (1 s … 60 s).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport,
};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use crate::config::MqttConfig;

/// ThingsBoard's telemetry topic for the connected device.
pub const TOPIC: &str = "v1/devices/me/telemetry";

/// `ota_status` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtaStatus {
    /// Nothing to do.
    Idle,
    /// Fetching the bundle.
    Downloading,
    /// RAUC is writing the slot.
    Installing,
    /// About to reboot into the new slot.
    Rebooting,
    /// The new slot booted and was marked good.
    Success,
    /// The update failed.
    Failure,
}

impl OtaStatus {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Downloading => "downloading",
            Self::Installing => "installing",
            Self::Rebooting => "rebooting",
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }

    /// ThingsBoard's `sw_state` for this status (`None` for idle).
    pub fn sw_state(self) -> Option<&'static str> {
        match self {
            Self::Idle => None,
            Self::Downloading => Some("DOWNLOADING"),
            Self::Installing => Some("UPDATING"),
            Self::Rebooting => Some("UPDATING"),
            Self::Success => Some("UPDATED"),
            Self::Failure => Some("FAILED"),
        }
    }
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `{ts, values}` for the installed software (sent at start and after every update).
pub fn current_software(title: &str, version: &str, rauc_slot: &str) -> Value {
    stamped(json!({
        "sw_version": version,
        "rauc_slot": rauc_slot,
        "current_sw_title": title,
        "current_sw_version": version,
    }))
}

/// `{ts, values}` for a status change; `error` = (`error_code`, reason) fills
/// `error_code`, `ota_error` and `sw_error`.
pub fn status(status: OtaStatus, error: Option<(u16, &str)>) -> Value {
    let mut values = Map::new();
    values.insert("ota_status".into(), status.as_str().into());
    if let Some(state) = status.sw_state() {
        values.insert("sw_state".into(), state.into());
    }
    if let Some((code, text)) = error {
        values.insert("ota_error".into(), text.into());
        values.insert("sw_error".into(), text.into());
        values.insert("error_code".into(), code.into());
    }
    stamped(Value::Object(values))
}

/// `{ts, values}` for a finished download.
pub fn downloaded(bytes: u64, duration: Duration, verified: bool) -> Value {
    stamped(json!({
        "sw_state": if verified { "VERIFIED" } else { "DOWNLOADED" },
        "download_bytes": bytes,
        "download_duration_ms": u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
    }))
}

/// `{ts, values}` naming the update being applied (ThingsBoard's dashboard reads these).
pub fn target_software(title: &str, version: &str) -> Value {
    stamped(json!({
        "target_sw_title": title,
        "target_sw_version": version,
        "target_sw_ts": now_ms(),
    }))
}

fn stamped(values: Value) -> Value {
    json!({ "ts": now_ms(), "values": values })
}

struct Queue {
    items: VecDeque<Vec<u8>>,
    capacity: usize,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Notify,
    stopping: Notify,
    dropped: AtomicU64,
    delivered: AtomicU64,
    connected: AtomicBool,
    stop: AtomicBool,
}

/// Handle to the telemetry queue; cheap to clone; never blocks on the network.
#[derive(Clone)]
pub struct Telemetry {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("queued", &self.queued())
            .field("dropped", &self.dropped())
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Telemetry {
    /// A queue of `capacity` messages without a sender (see [`Telemetry::spawn`]).
    pub fn new(capacity: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue {
                    items: VecDeque::new(),
                    capacity: capacity.max(1),
                }),
                wake: Notify::new(),
                stopping: Notify::new(),
                dropped: AtomicU64::new(0),
                delivered: AtomicU64::new(0),
                connected: AtomicBool::new(false),
                stop: AtomicBool::new(false),
            }),
        }
    }

    /// Starts the sender task for `config` on the current Tokio runtime.
    pub fn spawn(config: &MqttConfig, client_id: &str) -> Result<Self, String> {
        let me = Self::new(config.queue_size);
        let options = mqtt_options(config, client_id)?;
        let shared = me.shared.clone();
        tokio::spawn(sender(shared, options));
        Ok(me)
    }

    /// Queues one message (a JSON value); drops the oldest one when full.
    pub fn send(&self, message: &Value) {
        let payload = message.to_string().into_bytes();
        {
            let mut q = self
                .shared
                .queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if q.items.len() >= q.capacity {
                q.items.pop_front();
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
            q.items.push_back(payload);
        }
        self.shared.wake.notify_one();
    }

    /// Messages waiting for the broker.
    pub fn queued(&self) -> usize {
        self.shared.queue.lock().map_or(0, |q| q.items.len())
    }

    /// Messages dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Messages acknowledged by the broker.
    pub fn delivered(&self) -> u64 {
        self.shared.delivered.load(Ordering::Relaxed)
    }

    /// Whether the broker connection is up right now.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// Asks the sender task to stop (after the message in flight).
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake.notify_one();
        self.shared.stopping.notify_one();
    }

    /// Waits until the queue is empty or `limit` passes; true when everything was delivered.
    pub async fn flush(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while self.queued() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

fn mqtt_options(config: &MqttConfig, client_id: &str) -> Result<MqttOptions, String> {
    let mut options = MqttOptions::new(client_id, config.host.clone(), config.port);
    options.set_credentials(config.access_token.clone(), "");
    options.set_keep_alive(Duration::from_secs(30));
    options.set_clean_session(true);
    if config.tls {
        let roots =
            crate::http::load_roots(config.ca_file.as_deref()).map_err(|e| e.to_string())?;
        let mut store = rustls::RootCertStore::empty();
        match roots {
            ureq::tls::RootCerts::Specific(certs) => {
                for c in certs.iter() {
                    store
                        .add(rustls::pki_types::CertificateDer::from(c.der().to_vec()))
                        .map_err(|e| format!("mqtt_ca_file: {e}"))?;
                }
            }
            _ => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("MQTT TLS setup: {e}"))?
        .with_root_certificates(store)
        .with_no_client_auth();
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls),
        )));
    }
    Ok(options)
}

/// Backoff after the n-th failed connection in a row: 1, 2, 4 … 60 s.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(6)).min(Duration::from_secs(60))
}

async fn sender(shared: Arc<Shared>, options: MqttOptions) {
    let mut failures = 0u32;
    while !shared.stop.load(Ordering::Relaxed) {
        let result = session(&shared, options.clone()).await;
        let was_connected = shared.connected.swap(false, Ordering::Relaxed);
        let Err(e) = result else { return };
        if was_connected {
            failures = 0;
        }
        let wait = backoff(failures);
        failures = failures.saturating_add(1);
        let queued = shared.queue.lock().map_or(0, |q| q.items.len());
        tracing::warn!(
            "telemetry: {e}; retrying in {} s ({queued} queued)",
            wait.as_secs()
        );
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.stopping.notified() => {}
        }
    }
}

/// One broker connection: connect, then deliver the queue until an error or stop.
async fn session(shared: &Shared, options: MqttOptions) -> Result<(), String> {
    const STEP: Duration = Duration::from_secs(10);
    let (client, mut events) = AsyncClient::new(options, 10);
    // Wait for the CONNACK.
    loop {
        match tokio::time::timeout(STEP, events.poll()).await {
            Err(_) => return Err("no CONNACK from the broker".into()),
            Ok(Err(rumqttc::ConnectionError::ConnectionRefused(code))) => {
                let hint = if matches!(
                    code,
                    ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized
                ) {
                    " (check mqtt_access_token)"
                } else {
                    ""
                };
                return Err(format!("broker refused the connection: {code:?}{hint}"));
            }
            Ok(Err(e)) => return Err(format!("cannot connect to the broker: {e}")),
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => break,
            Ok(Ok(_)) => {}
        }
    }
    shared.connected.store(true, Ordering::Relaxed);
    tracing::info!("telemetry: connected to the broker");
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            let _ = client.disconnect().await;
            return Ok(());
        }
        let next = shared
            .queue
            .lock()
            .ok()
            .and_then(|q| q.items.front().cloned());
        let Some(payload) = next else {
            // Idle: keep the connection alive (pings) until woken.
            tokio::select! {
                () = shared.wake.notified() => {}
                event = events.poll() => { event.map_err(|e| format!("broker connection lost: {e}"))?; }
            }
            continue;
        };
        client
            .publish(TOPIC, QoS::AtLeastOnce, false, payload.clone())
            .await
            .map_err(|e| format!("cannot queue a publish: {e}"))?;
        loop {
            match tokio::time::timeout(STEP, events.poll()).await {
                Err(_) => return Err("no PUBACK from the broker".into()),
                Ok(Err(e)) => return Err(format!("broker connection lost: {e}")),
                Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => break,
                Ok(Ok(_)) => {}
            }
        }
        if let Ok(mut q) = shared.queue.lock()
            && q.items.front() == Some(&payload)
        {
            q.items.pop_front();
        }
        shared.delivered.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_messages_carry_thingsboard_keys() {
        let v = status(OtaStatus::Failure, Some((4, "bad sha256")));
        let values = &v["values"];
        assert_eq!(values["ota_status"], "failure");
        assert_eq!(values["sw_state"], "FAILED");
        assert_eq!(values["ota_error"], "bad sha256");
        assert_eq!(values["sw_error"], "bad sha256");
        assert_eq!(values["error_code"], 4);
        assert!(v["ts"].as_u64().is_some_and(|t| t > 1_600_000_000_000));
        let v = status(OtaStatus::Idle, None);
        assert!(v["values"].get("sw_state").is_none());
        let v = current_software("rootfs", "1.1.0", "B");
        assert_eq!(v["values"]["current_sw_version"], "1.1.0");
        assert_eq!(v["values"]["rauc_slot"], "B");
        let v = downloaded(1234, Duration::from_millis(56), true);
        assert_eq!(v["values"]["download_bytes"], 1234);
        assert_eq!(v["values"]["download_duration_ms"], 56);
        assert_eq!(v["values"]["sw_state"], "VERIFIED");
        assert_eq!(
            target_software("os", "2")
                .get("values")
                .and_then(|x| x.get("target_sw_version")),
            Some(&json!("2"))
        );
    }

    #[test]
    fn every_status_maps() {
        let all = [
            OtaStatus::Idle,
            OtaStatus::Downloading,
            OtaStatus::Installing,
            OtaStatus::Rebooting,
            OtaStatus::Success,
            OtaStatus::Failure,
        ];
        let names: Vec<_> = all.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "idle",
                "downloading",
                "installing",
                "rebooting",
                "success",
                "failure"
            ]
        );
        assert_eq!(OtaStatus::Success.sw_state(), Some("UPDATED"));
    }

    #[test]
    fn queue_drops_oldest_and_counts() {
        let t = Telemetry::new(3);
        for i in 0..5 {
            t.send(&json!({ "n": i }));
        }
        assert_eq!(t.queued(), 3);
        assert_eq!(t.dropped(), 2);
        let q = t.shared.queue.lock().expect("lock");
        assert_eq!(
            q.items
                .front()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            Some("{\"n\":2}".into())
        );
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(50), Duration::from_secs(60));
    }
}
