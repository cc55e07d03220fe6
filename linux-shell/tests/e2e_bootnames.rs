//! End to end on a RAUC setup whose bootnames are `system0`/`system1` (Barebox style): real RAUC
//! 1.8 on a private bus with its custom bootloader backend, hawkbit-sim in process, mosquitto and
//! the `eyas` binary in run-once mode. A good update, a bootloader fallback and a failed health
//! check must each be reported as what happened, and the slots marked as RAUC expects: nothing
//! may depend on the slots being called A and B.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::broker::{Broker, Observer};
use common::rauc_sandbox::RaucSandbox;
use hil_tests::sim::{Sim, SimConfig, SimHandle};

const NAMES: [&str; 2] = ["system0", "system1"];

struct Rig {
    sb: RaucSandbox,
    _broker: Broker,
    observer: Observer,
    sim: SimHandle,
    action: u64,
    conf: PathBuf,
    work: tempfile::TempDir,
    /// The factory distribution set (`factory` 1.0.0), known to hawkBit.
    factory_ds: u64,
}

/// Installs 1.1.0 into `system1` (run 1) with `[eyas]` lines `extra` plus the factory identity.
async fn installed(target: &str, extra: &str) -> Rig {
    let sb = RaucSandbox::start_with_bootnames(NAMES);
    let broker = Broker::start();
    let observer = broker.observer();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let token = sim.create_target(target, None).expect("target");
    let fsm = sim
        .create_software_module("rootfs", "1.0.0", "os")
        .expect("factory module");
    let factory_ds = sim
        .create_distribution_set("factory", "1.0.0", "os", &[fsm])
        .expect("factory ds");
    let bundle = sb.bundle("v110", "1.1.0", "ota-agent-test");
    let action = common::e2e::assign_os(
        &sim,
        target,
        "1.1.0",
        "rootfs.raucb",
        &bundle,
        Default::default(),
    );
    let work = tempfile::tempdir().expect("tmp");
    let eyas_extra = format!("installed_name=factory\ninstalled_version=1.0.0\n{extra}");
    let conf = common::e2e::write_config(
        work.path(),
        sim.addr().port(),
        target,
        &token,
        broker.port,
        "",
        &eyas_extra,
    );
    let out = common::e2e::run_once(&conf, &sb.bus_address).await;
    assert_eq!(out.status.code(), Some(0), "install run");
    assert_eq!(sb.slot_version(&sb.slot_b), "1.1.0", "RAUC wrote system1");
    assert_eq!(sb.bootloader_primary(), "system1");
    let rec = common::e2e::read_record(work.path()).expect("record");
    assert_eq!(rec.target_slot.as_deref(), Some("system1"));
    assert_eq!(rec.from_slot.as_deref(), Some("system0"));
    Rig {
        sb,
        _broker: broker,
        observer,
        sim,
        action,
        conf,
        work,
        factory_ds,
    }
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The telemetry line of the failure with `code`, once it arrived.
fn wait_failure(observer: &Observer, code: u16) -> String {
    let want = format!("\"error_code\":{code}");
    common::wait_for("the failure telemetry", Duration::from_secs(10), || {
        observer
            .lines()
            .iter()
            .any(|l| l.contains("\"ota_status\":\"failure\"") && l.contains(&want))
    });
    observer
        .lines()
        .into_iter()
        .find(|l| l.contains(&want))
        .unwrap_or_default()
}

fn installed_base_puts(sim: &SimHandle) -> usize {
    sim.request_log()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with("/installedBase"))
        .count()
}

fn health_check_lines(work: &Path) -> String {
    format!(
        "health_check_command=test -e {ok} || exit 7\nhealth_check_timeout=5\n",
        ok = work.join("healthy").display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn good_update_on_system1_is_marked_good_and_reported_success() {
    let mut r = installed("dev-sys-ok", "").await;
    r.sb.reboot_into("system1");
    let out = common::e2e::run_once(&r.conf, &r.sb.bus_address).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    common::wait_for("the action to finish", Duration::from_secs(10), || {
        r.sim.action_status(r.action).as_deref() == Some("finished")
    });
    let messages = r.sim.action_messages(r.action).join("\n");
    assert!(messages.contains("(slot system1)"), "{messages}");
    let calls = r.sb.bootloader_calls();
    assert!(calls.contains("set-state system1 good"), "{calls}");
    assert_eq!(r.sb.bootloader_state("system1"), "good");
    assert_eq!(r.sb.bootloader_primary(), "system1");
    common::wait_for("success telemetry", Duration::from_secs(10), || {
        r.observer
            .lines()
            .iter()
            .any(|l| l.contains("\"ota_status\":\"success\""))
    });
    assert!(
        r.observer
            .lines()
            .iter()
            .any(|l| l.contains("\"rauc_slot\":\"system1\"")),
        "{:?}",
        r.observer.lines()
    );
    assert_eq!(installed_base_puts(&r.sim), 0, "nothing to correct");
    assert!(common::e2e::read_record(r.work.path()).is_none());
    r.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_to_system0_is_reported_with_the_factory_set_as_installed() {
    let mut r = installed("dev-sys-fallback", "").await;
    // system1 never came up: the bootloader used its attempts and booted system0 again.
    r.sb.reboot_into("system0");
    let out = common::e2e::run_once(&r.conf, &r.sb.bus_address).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    common::wait_for("the action to fail", Duration::from_secs(10), || {
        r.sim.action_status(r.action).as_deref() == Some("error")
    });
    let messages = r.sim.action_messages(r.action).join("\n");
    assert!(
        messages.contains("running slot system0, target was slot system1"),
        "{messages}"
    );
    let calls = r.sb.bootloader_calls();
    assert_eq!(r.sb.bootloader_state("system1"), "bad", "{calls}");
    assert_eq!(r.sb.bootloader_state("system0"), "good", "{calls}");
    assert_eq!(r.sb.bootloader_primary(), "system0", "{calls}");
    let line = wait_failure(&r.observer, 400);
    assert!(line.contains("running slot system0"), "{line}");
    // hawkBit is told what runs again: the factory set, from [eyas] installed_name/_version.
    common::wait_for("PUT installedBase", Duration::from_secs(10), || {
        installed_base_puts(&r.sim) == 1
    });
    let installed = r.sim.with_state(|st| {
        st.targets
            .get("dev-sys-fallback")
            .and_then(|t| t.installed_ds)
    });
    assert_eq!(installed, Some(r.factory_ds));
    r.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_health_check_on_system1_marks_it_bad_and_returns_to_system0() {
    let work = tempfile::tempdir().expect("tmp");
    let reboots = work.path().join("reboots");
    let extra = format!(
        "{}reboot_command=echo reboot >> {}\n",
        health_check_lines(work.path()),
        reboots.display()
    );
    let mut r = installed("dev-sys-sick", &extra).await;
    // run 1 left the health check failing (no <work>/healthy) and did not reboot itself
    // (post_update_reboot is off by default)
    r.sb.reboot_into("system1");
    let out = common::e2e::run_once(&r.conf, &r.sb.bus_address).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    common::wait_for("the action to fail", Duration::from_secs(10), || {
        r.sim.action_status(r.action).as_deref() == Some("error")
    });
    let messages = r.sim.action_messages(r.action).join("\n");
    assert!(messages.contains("failed the health check"), "{messages}");
    let calls = r.sb.bootloader_calls();
    assert!(!calls.contains("set-state system1 good"), "{calls}");
    assert_eq!(r.sb.bootloader_state("system1"), "bad", "{calls}");
    assert_eq!(r.sb.bootloader_primary(), "system0", "{calls}");
    wait_failure(&r.observer, 300);
    assert!(
        stderr(&out).contains("reboot now to return to the previous slot"),
        "{}",
        stderr(&out)
    );
    assert_eq!(installed_base_puts(&r.sim), 0, "not a fallback");
    // A restart still on system1 with a passing check: it stays bad, never marked good.
    std::fs::write(work.path().join("healthy"), "").expect("write");
    let out = common::e2e::run_once(&r.conf, &r.sb.bus_address).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("failed its update and is marked bad"),
        "{}",
        stderr(&out)
    );
    assert!(!r.sb.bootloader_calls().contains("set-state system1 good"));
    // Back on system0: marked good, the rejected slot is forgotten, nothing reported again.
    r.sb.reboot_into("system0");
    let out = common::e2e::run_once(&r.conf, &r.sb.bus_address).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(r.sb.bootloader_calls().contains("set-state system0 good"));
    assert_eq!(r.sb.bootloader_state("system1"), "bad");
    assert!(!r.work.path().join("record.bad-slot").exists());
    assert_eq!(r.sim.action_status(r.action).as_deref(), Some("error"));
    r.sim.shutdown().await;
}
