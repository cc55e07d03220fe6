//! End to end: hawkbit-sim (in process) + real RAUC 1.8 (private bus) + real mosquitto + the
//! `eyas` binary in run-once mode, across a simulated reboot.

mod common;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::broker::Broker;
use common::rauc_sandbox::RaucSandbox;
use hil_tests::sim::{Sim, SimConfig};

fn config(
    dir: &Path,
    port: u16,
    target: &str,
    token: &str,
    mqtt_port: u16,
    extra: &str,
) -> std::path::PathBuf {
    common::e2e::write_config(dir, port, target, token, mqtt_port, "", extra)
}

async fn eyas_run_once_owned(conf: std::path::PathBuf, bus: String) -> Output {
    eyas_run_once(&conf, &bus).await
}

async fn eyas_run_once(conf: &Path, bus: &str) -> Output {
    common::e2e::run_once(conf, bus).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_is_reported_only_after_the_new_slot_booted() {
    let mut sb = RaucSandbox::start();
    let broker = Broker::start();
    let observer = broker.observer();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let port = sim.addr().port();
    let token = sim.create_target("dev-e2e", None).expect("target");
    let bundle = sb.bundle("v110", "1.1.0", "ota-agent-test");
    let action = common::e2e::assign_os(
        &sim,
        "dev-e2e",
        "1.1.0",
        "rootfs-1.1.0.raucb",
        &bundle,
        Default::default(),
    );
    let work = tempfile::tempdir().expect("tmp");
    let conf = config(work.path(), port, "dev-e2e", &token, broker.port, "");

    // Run 1: download, verify, install into slot B, persist the record, ask for a reboot.
    let out = eyas_run_once(&conf, &sb.bus_address).await;
    assert_eq!(out.status.code(), Some(0), "first run");
    assert_eq!(sb.slot_version(&sb.slot_b), "1.1.0", "RAUC wrote slot B");
    assert!(
        work.path().join("record.bin").exists(),
        "the record survives the reboot"
    );
    assert_ne!(
        sim.action_status(action).as_deref(),
        Some("finished"),
        "no success before the reboot"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(&token), "the token must never be logged");

    // "Reboot" into slot B. While RAUC is not up yet, eyas must not judge the update.
    sb.stop_rauc();
    let waiting = tokio::spawn(eyas_run_once_owned(conf.clone(), sb.bus_address.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Order: eyas is still waiting and has reported nothing when RAUC comes back.
    assert!(!waiting.is_finished(), "eyas gave up before RAUC came back");
    assert_ne!(
        sim.action_status(action).as_deref(),
        Some("finished"),
        "no verdict without RAUC"
    );
    sb.reboot_into("B");
    let out = waiting.await.expect("join");
    assert_eq!(
        out.status.code(),
        Some(0),
        "eyas waited for RAUC, then judged the update"
    );
    common::wait_for("the action to finish", Duration::from_secs(10), || {
        sim.action_status(action).as_deref() == Some("finished")
    });

    // Run 2 (a later start): nothing pending any more.
    let out = eyas_run_once(&conf, &sb.bus_address).await;
    assert_eq!(out.status.code(), Some(0), "second run");
    common::wait_for("the action to finish", Duration::from_secs(10), || {
        sim.action_status(action).as_deref() == Some("finished")
    });
    assert!(
        sb.bootloader_calls().contains("set-state B good"),
        "{}",
        sb.bootloader_calls()
    );
    assert!(
        common::e2e::read_record(work.path()).is_none(),
        "nothing pending after the final report (the record only remembers the closed action)"
    );
    let messages = sim.action_messages(action).join("\n");
    assert!(messages.contains("booted"), "{messages}");
    // the download time measured before the reboot reaches hawkBit with the final feedback
    // (eyasctl report reads it from the action history)
    assert!(
        messages.lines().any(|m| m
            .strip_prefix("download_duration_ms=")
            .is_some_and(|n| n.parse::<u64>().is_ok())),
        "{messages}"
    );
    let attrs = sim
        .with_state(|s| s.targets.get("dev-e2e").map(|t| t.attributes.clone()))
        .expect("target");
    assert_eq!(
        attrs.get("product").map(String::as_str),
        Some("eyas-e2e"),
        "[device] sent as configData"
    );

    let lines = observer.wait_lines(3, Duration::from_secs(10)).join("\n");
    assert!(lines.contains("\"DOWNLOADING\""), "{lines}");
    assert!(lines.contains("\"sw_state\":\"UPDATED\""), "{lines}");
    assert_eq!(
        lines.matches("\"ota_status\":\"rebooting\"").count(),
        1,
        "rebooting is published once: {lines}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_artifact_fails_without_touching_rauc() {
    let sb = RaucSandbox::start();
    let broker = Broker::start();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let token = sim.create_target("dev-bad", None).expect("target");
    let bundle = sb.bundle("v110", "1.1.0", "ota-agent-test");
    let sm = sim
        .create_software_module("rootfs", "1.1.0", "os")
        .expect("module");
    let artifact = sim
        .add_artifact_file(sm, "rootfs.raucb", &bundle)
        .expect("artifact");
    let ds = sim
        .create_distribution_set("image", "1.1.0", "os", &[sm])
        .expect("ds");
    let action = sim
        .assign("dev-bad", ds, Default::default())
        .expect("assign");
    // Corrupt the stored artifact behind the server's back: hashes no longer match.
    let mut bytes = std::fs::read(&artifact.path).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&artifact.path, bytes).expect("write");
    let work = tempfile::tempdir().expect("tmp");
    let conf = config(
        work.path(),
        sim.addr().port(),
        "dev-bad",
        &token,
        broker.port,
        "",
    );
    let out = eyas_run_once(&conf, &sb.bus_address).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("sha256-mismatch"),
        "the core's verdict is reported: {stderr}"
    );
    common::wait_for("the action to fail", Duration::from_secs(10), || {
        sim.action_status(action).as_deref() == Some("error")
    });
    assert!(
        !sb.bootloader_calls().contains("set-primary"),
        "RAUC must not have activated anything"
    );
    let left: Vec<_> = std::fs::read_dir(work.path().join("dl"))
        .expect("download dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "the failed download is removed: {left:?}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_manifest_refuses_unsigned_and_installs_signed_bundles() {
    let sb = RaucSandbox::start();
    let broker = Broker::start();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let keys = tempfile::tempdir().expect("tmp");
    let signer = common::signing::Signer::new(keys.path(), "release");
    let extra = format!(
        "manifest_signature=required\nmanifest_public_keys={}\n",
        signer.public_hex()
    );
    let bundle = sb.bundle("v110", "1.1.0", "ota-agent-test");

    // Unsigned: refused before RAUC activates anything.
    let token = sim.create_target("dev-unsigned", None).expect("target");
    let action = common::e2e::assign_os(
        &sim,
        "dev-unsigned",
        "1.1.0",
        "update.raucb",
        &bundle,
        Default::default(),
    );
    let work = tempfile::tempdir().expect("tmp");
    let conf = config(
        work.path(),
        sim.addr().port(),
        "dev-unsigned",
        &token,
        broker.port,
        &extra,
    );
    let out = eyas_run_once(&conf, &sb.bus_address).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("manifest-missing"));
    common::wait_for("the action to fail", Duration::from_secs(10), || {
        sim.action_status(action).as_deref() == Some("error")
    });
    assert!(
        !sb.bootloader_calls().contains("set-primary"),
        "{}",
        sb.bootloader_calls()
    );

    // Signed: installs.
    let manifest = signer.sign(&bundle, "ota-agent-test", "1.1.0");
    let token = sim.create_target("dev-signed", None).expect("target");
    let sm = sim
        .create_software_module("rootfs", "1.1.1", "os")
        .expect("module");
    sim.add_artifact_file(sm, "update.raucb", &bundle)
        .expect("artifact");
    sim.add_artifact_file(sm, "update.raucb.manifest", &manifest)
        .expect("manifest artifact");
    let ds = sim
        .create_distribution_set("image", "1.1.1", "os", &[sm])
        .expect("ds");
    sim.assign("dev-signed", ds, Default::default())
        .expect("assign");
    let work = tempfile::tempdir().expect("tmp");
    let conf = config(
        work.path(),
        sim.addr().port(),
        "dev-signed",
        &token,
        broker.port,
        &extra,
    );
    let out = eyas_run_once(&conf, &sb.bus_address).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("signed manifest OK"));
    assert_eq!(sb.slot_version(&sb.slot_b), "1.1.0");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_download_is_resumed_by_range_when_resume_downloads_is_set() {
    let sb = RaucSandbox::start();
    let broker = Broker::start();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let token = sim.create_target("dev-cut", None).expect("target");
    let bundle = sb.bundle_with_filler("big", "1.2.0", "ota-agent-test", 2_500_000);
    let size = std::fs::metadata(&bundle).expect("bundle").len();
    assert!(size > 2_000_000, "bundle is only {size} bytes");
    common::e2e::assign_os(
        &sim,
        "dev-cut",
        "1.2.0",
        "big.raucb",
        &bundle,
        Default::default(),
    );
    sim.set_target_faults(
        Some("dev-cut"),
        hil_tests::sim::Faults {
            cut_after_bytes: Some(1_000_000),
            cut_count: Some(1),
            ..Default::default()
        },
    );
    let work = tempfile::tempdir().expect("tmp");
    let conf = config(
        work.path(),
        sim.addr().port(),
        "dev-cut",
        &token,
        broker.port,
        "",
    );
    let text = std::fs::read_to_string(&conf)
        .expect("read")
        .replace("retry_wait=5\n", "retry_wait=5\nresume_downloads=true\n");
    std::fs::write(&conf, text).expect("write");
    let out = eyas_run_once(&conf, &sb.bus_address).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("download failed") || stderr.contains("interrupted"),
        "{stderr}"
    );
    assert_eq!(sb.slot_version(&sb.slot_b), "1.2.0");
    // The artifact GETs: the first whole, the resume by Range *and* If-Range (the validator of
    // the first response), from where the cut left the file.
    let gets: Vec<_> = sim
        .request_log()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/big.raucb"))
        .collect();
    assert_eq!(gets.len(), 2, "{gets:#?}");
    assert_eq!(
        (gets[0].range.as_deref(), gets[0].if_range.as_deref()),
        (None, None)
    );
    let range = gets[1].range.as_deref().unwrap_or_default();
    let from: u64 = range
        .strip_prefix("bytes=")
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("resume Range {range:?}"));
    assert!(from > 0 && from <= 1_000_000, "{range}");
    assert!(
        gets[1]
            .if_range
            .as_deref()
            .is_some_and(|v| v.starts_with('"')),
        "If-Range with the ETag: {gets:#?}"
    );
    assert_eq!(gets[1].status, 206);
    sim.shutdown().await;
}

/// Installs 1.1.0 for `target` (run 1) and returns (sim, action, config path, work dir).
async fn installed_awaiting_reboot(
    sb: &RaucSandbox,
    broker: &Broker,
    target: &str,
    extra: &str,
) -> (
    hil_tests::sim::SimHandle,
    u64,
    std::path::PathBuf,
    tempfile::TempDir,
) {
    installed_awaiting_reboot_with(sb, broker, target, "", extra).await
}

/// Like `installed_awaiting_reboot`, with `client_extra` added to `[client]`.
async fn installed_awaiting_reboot_with(
    sb: &RaucSandbox,
    broker: &Broker,
    target: &str,
    client_extra: &str,
    extra: &str,
) -> (
    hil_tests::sim::SimHandle,
    u64,
    std::path::PathBuf,
    tempfile::TempDir,
) {
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let token = sim.create_target(target, None).expect("target");
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
    let conf = config(
        work.path(),
        sim.addr().port(),
        target,
        &token,
        broker.port,
        extra,
    );
    let text = std::fs::read_to_string(&conf)
        .expect("read")
        .replace("retry_wait=5\n", &format!("retry_wait=5\n{client_extra}"));
    std::fs::write(&conf, text).expect("write");
    let out = eyas_run_once(&conf, &sb.bus_address).await;
    assert_eq!(out.status.code(), Some(0), "install run");
    assert_eq!(sb.slot_version(&sb.slot_b), "1.1.0");
    (sim, action, conf, work)
}

/// `[eyas]` lines: a health check that fails (exit 7) until `<work>/healthy` exists, and a
/// `reboot_command` that appends a line to `reboots`.
fn failing_health_check(work: &Path, reboots: &Path) -> String {
    format!(
        "health_check_command=test -e {ok} || exit 7\nhealth_check_timeout=5\nreboot_command=echo reboot >> {r}\n",
        ok = work.join("healthy").display(),
        r = reboots.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_health_check_reports_failure_and_does_not_mark_good() {
    let mut sb = RaucSandbox::start();
    let broker = Broker::start();
    let observer = broker.observer();
    let work = tempfile::tempdir().expect("tmp");
    let reboots = work.path().join("reboots");
    let (sim, action, conf, _work) = installed_awaiting_reboot_with(
        &sb,
        &broker,
        "dev-sick",
        "post_update_reboot=true\n",
        &failing_health_check(work.path(), &reboots),
    )
    .await;
    let reboot_count = || {
        std::fs::read_to_string(&reboots)
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert_eq!(reboot_count(), 1, "the install rebooted into B");
    assert_eq!(sb.bootloader_primary(), "B");
    sb.reboot_into("B");
    let out = eyas_run_once(&conf, &sb.bus_address).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("health check failed"));
    common::wait_for("the action to fail", Duration::from_secs(10), || {
        sim.action_status(action).as_deref() == Some("error")
    });
    let calls = sb.bootloader_calls();
    assert!(!calls.contains("set-state B good"), "{calls}");
    // The failed slot is never booted again; the previous slot is primary and bootable.
    assert_eq!(sb.bootloader_state("B"), "bad", "{calls}");
    assert_eq!(sb.bootloader_primary(), "A", "{calls}");
    assert_eq!(sb.bootloader_state("A"), "good", "{calls}");
    assert_eq!(
        reboot_count(),
        2,
        "eyas rebooted into the previous slot after the failed health check"
    );
    let lines = observer.wait_lines(1, Duration::from_secs(10)).join("\n");
    common::wait_for("FAILED telemetry", Duration::from_secs(10), || {
        observer.lines().join("\n").contains("\"FAILED\"")
    });
    common::wait_for("the error code", Duration::from_secs(10), || {
        observer.lines().iter().any(|l| {
            l.contains("\"sw_state\":\"FAILED\"")
                && l.contains("\"error_code\":300")
                && l.contains("\"ota_error\":\"New slot booted but failed the health check\"")
                && l.contains("\"sw_error\"")
        })
    });
    assert!(!lines.contains("\"UPDATED\""), "{lines}");

    // Back on A (healthy now): A is marked good, B stays bad, nothing is reported as success.
    std::fs::write(work.path().join("healthy"), "").expect("write");
    sb.reboot_into("A");
    let out = eyas_run_once(&conf, &sb.bus_address).await;
    assert_eq!(out.status.code(), Some(0));
    let calls = sb.bootloader_calls();
    assert!(calls.contains("set-state A good"), "{calls}");
    assert_eq!(sb.bootloader_state("B"), "bad", "{calls}");
    assert_eq!(sb.bootloader_primary(), "A", "{calls}");
    assert_eq!(sim.action_status(action).as_deref(), Some("error"));
    assert!(
        !observer.lines().join("\n").contains("\"UPDATED\""),
        "no success is ever reported"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_health_check_without_post_update_reboot_says_so_and_never_marks_the_slot_good() {
    let mut sb = RaucSandbox::start();
    let broker = Broker::start();
    let work = tempfile::tempdir().expect("tmp");
    let reboots = work.path().join("reboots");
    let (sim, action, conf, _work) = installed_awaiting_reboot(
        &sb,
        &broker,
        "dev-sick-manual",
        &failing_health_check(work.path(), &reboots),
    )
    .await;
    sb.reboot_into("B");
    let out = eyas_run_once(&conf, &sb.bus_address).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("reboot now to return to the previous slot"),
        "{stderr}"
    );
    assert!(
        !reboots.exists(),
        "post_update_reboot=false: eyas does not reboot"
    );
    common::wait_for("the action to fail", Duration::from_secs(10), || {
        sim.action_status(action).as_deref() == Some("error")
    });
    assert_eq!(sb.bootloader_state("B"), "bad");
    assert_eq!(sb.bootloader_primary(), "A");
    // eyas restarts while the device still runs the rejected slot (the failure is reported, the
    // record is gone, and the health check would pass now): the slot stays bad.
    std::fs::write(work.path().join("healthy"), "").expect("write");
    let out = eyas_run_once(&conf, &sb.bus_address).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("failed its update and is marked bad"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = sb.bootloader_calls();
    assert!(!calls.contains("set-state B good"), "{calls}");
    assert_eq!(sb.bootloader_state("B"), "bad", "{calls}");
    assert_eq!(sb.bootloader_primary(), "A", "{calls}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootloader_fallback_to_the_old_slot_is_reported_as_failure() {
    let mut sb = RaucSandbox::start();
    let broker = Broker::start();
    let observer = broker.observer();
    let (sim, action, conf, _work) =
        installed_awaiting_reboot(&sb, &broker, "dev-fallback", "").await;
    assert_eq!(sb.bootloader_primary(), "B");
    // The new slot did not come up: the bootloader booted A again.
    sb.reboot_into("A");
    let out = eyas_run_once(&conf, &sb.bus_address).await;
    assert_eq!(out.status.code(), Some(1));
    common::wait_for("the action to fail", Duration::from_secs(10), || {
        sim.action_status(action).as_deref() == Some("error")
    });
    let messages = sim.action_messages(action).join("\n");
    assert!(messages.contains("fell back"), "{messages}");
    // hawkBit's status code is the error_code (400: fell back), next to the download time
    let codes: Vec<Option<i64>> = sim.with_state(|s| {
        s.actions
            .get(&action)
            .map(|a| a.history.iter().map(|h| h.code).collect())
            .unwrap_or_default()
    });
    assert_eq!(codes.last(), Some(&Some(400)), "{codes:?}");
    assert!(messages.contains("download_duration_ms="), "{messages}");
    // The failed slot is marked bad (never chosen again), the running slot good and primary.
    let calls = sb.bootloader_calls();
    assert!(calls.contains("set-state B bad"), "{calls}");
    assert!(calls.contains("set-state A good"), "{calls}");
    assert_eq!(sb.bootloader_state("B"), "bad", "{calls}");
    assert_eq!(sb.bootloader_state("A"), "good", "{calls}");
    assert_eq!(sb.bootloader_primary(), "A", "{calls}");
    common::wait_for("the error code", Duration::from_secs(10), || {
        observer.lines().iter().any(|l| {
            l.contains("\"sw_state\":\"FAILED\"")
                && l.contains("\"error_code\":400")
                && l.contains("running slot A, target was slot B")
        })
    });
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_start_marks_the_booted_slot_good_after_the_health_check() {
    let sb = RaucSandbox::start();
    let broker = Broker::start();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let token = sim.create_target("dev-idle", None).expect("target");
    let work = tempfile::tempdir().expect("tmp");
    let ok = work.path().join("healthy");
    let conf = config(
        work.path(),
        sim.addr().port(),
        "dev-idle",
        &token,
        broker.port,
        &format!(
            "health_check_command=test -e {}\nhealth_check_timeout=5\n",
            ok.display()
        ),
    );
    // Unhealthy: not marked good.
    let out = eyas_run_once(&conf, &sb.bus_address).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(!sb.bootloader_calls().contains("set-state A good"));
    // Healthy: marked good on a start without any update.
    std::fs::write(&ok, "").expect("write");
    let out = eyas_run_once(&conf, &sb.bus_address).await;
    assert_eq!(out.status.code(), Some(0));
    let calls = sb.bootloader_calls();
    assert!(calls.contains("set-state A good"), "{calls}");
    assert_eq!(calls.matches("set-state A good").count(), 1, "{calls}");

    // mark_good_on_boot=false: left to something else (e.g. a custom mark-good service).
    let text = std::fs::read_to_string(&conf).expect("read") + "mark_good_on_boot=false\n";
    std::fs::write(&conf, text).expect("write");
    let out = eyas_run_once(&conf, &sb.bus_address).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        sb.bootloader_calls().matches("set-state A good").count(),
        1,
        "{}",
        sb.bootloader_calls()
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_cancel_during_download_stops_it_and_is_acknowledged() {
    let sb = RaucSandbox::start();
    let broker = Broker::start();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let token = sim.create_target("dev-cancel", None).expect("target");
    let bundle = sb.bundle_with_filler("big", "1.2.0", "ota-agent-test", 2_500_000);
    let action = common::e2e::assign_os(
        &sim,
        "dev-cancel",
        "1.2.0",
        "big.raucb",
        &bundle,
        Default::default(),
    );
    // ~100 kB/s: the download takes ~25 s unless it is canceled (eyas polls every 5 s meanwhile).
    sim.set_target_faults(
        Some("dev-cancel"),
        hil_tests::sim::Faults {
            bandwidth_bytes_per_sec: Some(100_000),
            ..Default::default()
        },
    );
    let work = tempfile::tempdir().expect("tmp");
    let conf = config(
        work.path(),
        sim.addr().port(),
        "dev-cancel",
        &token,
        broker.port,
        "",
    );
    let run = tokio::spawn(eyas_run_once_owned(conf.clone(), sb.bus_address.clone()));
    let partial = work.path().join("dl/bundle.raucb.0.big.raucb");
    common::wait_for("the download to start", Duration::from_secs(10), || {
        std::fs::metadata(&partial).is_ok_and(|m| m.len() > 0)
    });
    sim.cancel("dev-cancel", action).expect("cancel");
    let out = run.await.expect("join");
    assert_eq!(
        out.status.code(),
        Some(0),
        "a canceled action is not a failure of eyas"
    );
    // The cancel was noticed while downloading: the download started and never completed.
    let log = std::fs::read_to_string(conf.with_extension("stderr")).unwrap_or_default();
    assert!(log.contains("downloading big.raucb"), "{log}");
    assert!(
        !log.contains("downloaded "),
        "the cancel was noticed while downloading:\n{log}"
    );
    common::wait_for(
        "the cancel to be acknowledged",
        Duration::from_secs(10),
        || sim.action_status(action).as_deref() == Some("canceled"),
    );
    assert!(!partial.exists(), "the partial download is deleted");
    assert!(!sb.bootloader_calls().contains("set-primary"));
    sim.shutdown().await;
}
