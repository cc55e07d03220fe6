//! The systemd watchdog is fed by the main loop only: when a D-Bus call to RAUC never returns,
//! the pings stop, so systemd restarts eyas (`WatchdogSec=`). Here `NOTIFY_SOCKET` is a datagram
//! socket of the test and `WATCHDOG_USEC=1 s` asks for a ping every 0.5 s.
//!
//! RAUC is a stand-in here, not the real service: real RAUC cannot be made to never answer one
//! call. It answers what eyas asks at start (`BootSlot`, `GetSlotStatus`, …) and never answers
//! `Mark`, which eyas sends on every start (`mark_good_on_boot`).

mod common;

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::rauc_sandbox::RaucSandbox;
use hil_tests::sim::{Sim, SimConfig};
use zbus::OwnedVariant as OwnedValue;

struct StandIn {
    mark_called: Arc<AtomicBool>,
}

#[zbus::interface(name = "de.pengutronix.rauc.Installer")]
impl StandIn {
    async fn mark(&self, _state: &str, _slot: &str) -> (String, String) {
        self.mark_called.store(true, Ordering::SeqCst);
        std::future::pending::<()>().await;
        (String::new(), String::new())
    }

    fn get_slot_status(&self) -> Vec<(String, HashMap<String, OwnedValue>)> {
        let slot = |bootname: &str, state: &str| {
            let mut m = HashMap::new();
            m.insert(
                "bootname".to_owned(),
                OwnedValue::from(zbus::Str::from(bootname.to_owned())),
            );
            m.insert(
                "state".to_owned(),
                OwnedValue::from(zbus::Str::from(state.to_owned())),
            );
            m
        };
        vec![
            ("rootfs.0".to_owned(), slot("A", "booted")),
            ("rootfs.1".to_owned(), slot("B", "inactive")),
        ]
    }

    fn get_primary(&self) -> String {
        "rootfs.0".to_owned()
    }

    #[zbus(property)]
    fn operation(&self) -> String {
        "idle".to_owned()
    }

    #[zbus(property)]
    fn boot_slot(&self) -> String {
        "A".to_owned()
    }

    #[zbus(property)]
    fn compatible(&self) -> String {
        "ota-agent-test".to_owned()
    }

    #[zbus(property)]
    fn last_error(&self) -> String {
        String::new()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rauc_call_that_never_returns_stops_the_watchdog_pings() {
    // The sandbox's private bus, without its RAUC: the stand-in takes RAUC's name.
    let mut sb = RaucSandbox::start();
    sb.stop_rauc();
    let mark_called = Arc::new(AtomicBool::new(false));
    let _standin = zbus::connection::Builder::address(sb.bus_address.as_str())
        .name("de.pengutronix.rauc")
        .serve_at(
            "/",
            StandIn {
                mark_called: mark_called.clone(),
            },
        )
        .build()
        .await
        .expect("stand-in on the bus");

    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let token = sim.create_target("dev-wd", None).expect("target");
    let work = tempfile::tempdir().expect("tmp");
    let conf = common::e2e::write_config(
        work.path(),
        sim.addr().port(),
        "dev-wd",
        &token,
        common::free_port(),
        "",
        "",
    );
    let sock_path = work.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let log = work.path().join("eyas.log");
    let mut eyas = std::process::Command::new(env!("CARGO_BIN_EXE_eyas"))
        .arg("-d")
        .arg("-c")
        .arg(&conf)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &sb.bus_address)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("WATCHDOG_PID")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("run eyas");

    // Collect notifications: (arrival, text).
    let mut seen: Vec<(Instant, String)> = Vec::new();
    let mut buf = [0u8; 4096];
    let mut recv = |seen: &mut Vec<(Instant, String)>| {
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push((
                Instant::now(),
                String::from_utf8_lossy(&buf[..n]).into_owned(),
            ));
        }
    };
    // Until the stand-in got the Mark call that will never return …
    let start = Instant::now();
    while !mark_called.load(Ordering::SeqCst) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "eyas never called Mark: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        recv(&mut seen);
    }
    let hung_at = Instant::now();
    // … and then for 4 s (four watchdog intervals of 1 s).
    while hung_at.elapsed() < Duration::from_secs(4) {
        recv(&mut seen);
    }
    let _ = eyas.kill();
    let _ = eyas.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        seen.iter().any(|(_, m)| m.contains("READY=1")),
        "eyas never said READY: {seen:?}\n{text}"
    );
    let pings_while_hung = seen
        .iter()
        .filter(|(t, m)| *t > hung_at && m.contains("WATCHDOG=1"))
        .count();
    assert_eq!(
        pings_while_hung, 0,
        "the watchdog was fed while the main loop waited for RAUC: {seen:?}\n{text}"
    );
    sim.shutdown().await;
}
