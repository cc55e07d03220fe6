//! End to end for deployments that need no reboot, with real RAUC 1.8 (its sandbox has a
//! non-bootable application slot `appfs.0` beside the A/B rootfs), hawkbit-sim and the `eyas`
//! binary: an application update is installed by RAUC and reported `closed/success` right after
//! the install; a configuration-only deployment is applied by the `part.config.command` hook
//! and reported right away. Neither touches the boot order or reboots.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::broker::Broker;
use common::rauc_sandbox::RaucSandbox;
use hil_tests::sim::{Sim, SimConfig};

const COMPATIBLE: &str = "ota-agent-test";

/// `[eyas]` lines: a reboot command that only counts, so any reboot would show.
fn counting_reboot(work: &Path) -> String {
    format!(
        "reboot_command=echo reboot >> {}\n",
        work.join("reboots").display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_update_installs_without_a_reboot_and_reports_success_at_once() {
    let sb = RaucSandbox::start();
    let broker = Broker::start();
    let observer = broker.observer();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let token = sim.create_target("dev-app", None).expect("target");
    let bundle = sb.app_bundle("app2", "2.0.0", COMPATIBLE);
    let sm = sim
        .create_software_module("webapp", "2.0.0", "application")
        .expect("module");
    sim.add_artifact_file(sm, "webapp-2.0.0.raucb", &bundle)
        .expect("artifact");
    let ds = sim
        .create_distribution_set("webapp", "2.0.0", "app", &[sm])
        .expect("ds");
    let action = sim
        .assign("dev-app", ds, Default::default())
        .expect("assign");
    let work = tempfile::tempdir().expect("tmp");
    let conf = common::e2e::write_config(
        work.path(),
        sim.addr().port(),
        "dev-app",
        &token,
        broker.port,
        "post_update_reboot=true\n",
        &counting_reboot(work.path()),
    );
    let out = common::e2e::run_once(&conf, &sb.bus_address).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        sb.slot_version(&sb.slot_app),
        "2.0.0",
        "RAUC wrote the application slot"
    );
    common::wait_for("the action to finish", Duration::from_secs(10), || {
        sim.action_status(action).as_deref() == Some("finished")
    });
    assert!(
        !work.path().join("reboots").exists(),
        "an application update never reboots"
    );
    let calls = sb.bootloader_calls();
    assert!(
        !calls.contains("set-primary"),
        "boot order untouched: {calls}"
    );
    assert_eq!(sb.bootloader_primary(), "A");
    assert!(
        common::e2e::read_record(work.path()).is_none(),
        "nothing waits for a reboot"
    );
    common::wait_for("success telemetry", Duration::from_secs(10), || {
        observer
            .lines()
            .iter()
            .any(|l| l.contains("\"ota_status\":\"success\""))
    });
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_only_deployment_runs_the_hook_and_reports_at_once() {
    let sb = RaucSandbox::start();
    let broker = Broker::start();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    sim.create_software_module_type("config", "Configuration", 1)
        .expect("module type");
    sim.create_distribution_set_type("config_only", "Configuration", &["config"], &[])
        .expect("DS type");
    let token = sim.create_target("dev-cfg", None).expect("target");
    let settings = common::test_bytes(20_000, 21);
    let sm = sim
        .create_software_module("settings", "8", "config")
        .expect("module");
    sim.add_artifact_bytes(sm, "settings-8.tar", &settings)
        .expect("artifact");
    let ds = sim
        .create_distribution_set("settings", "8", "config_only", &[sm])
        .expect("ds");
    let action = sim
        .assign("dev-cfg", ds, Default::default())
        .expect("assign");
    let work = tempfile::tempdir().expect("tmp");
    let w = work.path().display();
    let hook = work.path().join("apply-config.sh");
    std::fs::write(&hook, format!("#!/bin/sh\ncp \"$1\" {w}/applied\n")).expect("hook");
    common::run(Command::new("chmod").arg("+x").arg(&hook));
    let conf = common::e2e::write_config(
        work.path(),
        sim.addr().port(),
        "dev-cfg",
        &token,
        broker.port,
        "post_update_reboot=true\n",
        &format!(
            "part.config.command={}\n{}",
            hook.display(),
            counting_reboot(work.path())
        ),
    );
    let out = common::e2e::run_once(&conf, &sb.bus_address).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        std::fs::read(work.path().join("applied")).expect("the hook ran"),
        settings,
        "the hook got the verified artifact"
    );
    common::wait_for("the action to finish", Duration::from_secs(10), || {
        sim.action_status(action).as_deref() == Some("finished")
    });
    assert!(!work.path().join("reboots").exists(), "no reboot");
    assert!(!sb.bootloader_calls().contains("set-primary"));
    assert!(common::e2e::read_record(work.path()).is_none());
    sim.shutdown().await;
}
