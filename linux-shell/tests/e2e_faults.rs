//! End to end under faults: hawkbit-sim (in process) + real RAUC 1.8 (private bus) + real
//! mosquitto + the `eyas` binary. Each scenario checks the final hawkBit action (status and
//! messages through the Sim API), the slot contents and the telemetry sequence.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use common::broker::{Broker, Observer};
use common::e2e::{read_record as record, wait_until, write_config as config};
use common::rauc_sandbox::RaucSandbox;
use eyas_core::record::Phase;
use hil_tests::sim::{Faults, Sim, SimConfig, SimHandle};

const COMPATIBLE: &str = "ota-agent-test";

/// Starts `eyas` (`-r` when `run_once`) with its stderr in `<conf>.stderr.<n>`.
fn spawn_eyas(conf: &Path, bus: &str, run_once: bool, n: u32) -> Child {
    common::e2e::spawn_eyas(conf, bus, run_once, &log_path(conf, n))
}

/// Rewrites the configuration's `retry_wait=5` (what `config` writes) to `retry_wait=2`.
fn retry_wait_2(conf: &Path) {
    let text = std::fs::read_to_string(conf)
        .expect("read")
        .replace("retry_wait=5\n", "retry_wait=2\n");
    std::fs::write(conf, text).expect("write");
}

fn log_path(conf: &Path, n: u32) -> PathBuf {
    conf.with_extension(format!("stderr.{n}"))
}

fn log_of(conf: &Path, n: u32) -> String {
    std::fs::read_to_string(log_path(conf, n)).unwrap_or_default()
}

fn signal(child: &Child, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status();
}

/// Waits (bounded) for `child` to exit; kills it by pid and fails with its log otherwise.
async fn wait_exit(mut child: Child, conf: &Path, n: u32, limit: Duration) -> Output {
    let pid = child.id();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let stderr = std::fs::read(log_path(conf, n)).unwrap_or_default();
            eprintln!(
                "--- eyas run {n} stderr ---\n{}",
                String::from_utf8_lossy(&stderr)
            );
            return Output {
                status,
                stdout: Vec::new(),
                stderr,
            };
        }
        if started.elapsed() > limit {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            let _ = child.wait();
            panic!(
                "eyas run {n} did not finish within {limit:?}:\n{}",
                log_of(conf, n)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn run_once(conf: &Path, bus: &str, n: u32) -> Output {
    wait_exit(
        spawn_eyas(conf, bus, true, n),
        conf,
        n,
        Duration::from_secs(120),
    )
    .await
}

/// The `ota_status` values of the telemetry, consecutive repeats folded (in order: see
/// [`Observer::values`]).
fn statuses(observer: &Observer) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in observer.values() {
        if let Some(s) = v["ota_status"].as_str()
            && out.last().map(String::as_str) != Some(s)
        {
            out.push(s.to_owned());
        }
    }
    out
}

fn wait_statuses(observer: &Observer, want: &[&str], limit: Duration) -> Vec<String> {
    let mut seen = Vec::new();
    let ok = (|| {
        let start = Instant::now();
        while start.elapsed() < limit {
            seen = statuses(observer);
            if seen.len() >= want.len() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    })();
    assert!(ok, "telemetry {seen:?}, want {want:?}");
    assert_eq!(
        seen,
        want,
        "telemetry sequence:\n{}",
        observer.lines().join("\n")
    );
    seen
}

/// One OS module with `bundle` as its artifact, assigned to a new target `target`.
fn deploy(sim: &SimHandle, target: &str, version: &str, bundle: &Path) -> (String, u64) {
    let token = sim.create_target(target, None).expect("target");
    let name = bundle
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let action = common::e2e::assign_os(sim, target, version, &name, bundle, Default::default());
    (token, action)
}

fn file_digest(p: &Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(p).expect("read")).to_vec()
}

/// After run 1 installed into slot B: "reboot" into B and run once more; the action must end
/// `finished` with the boot message.
async fn reboot_and_confirm(
    sb: &mut RaucSandbox,
    sim: &SimHandle,
    action: u64,
    conf: &Path,
    n: u32,
) {
    sb.reboot_into("B");
    let out = run_once(conf, &sb.bus_address, n).await;
    assert_eq!(out.status.code(), Some(0), "post-reboot run");
    wait_until("the action to finish", Duration::from_secs(10), || {
        sim.action_status(action).as_deref() == Some("finished")
    })
    .await;
    let messages = sim.action_messages(action).join("\n");
    assert!(messages.contains("booted"), "{messages}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rauc_refuses_a_corrupt_bundle_with_a_matching_hash() {
    let sb = RaucSandbox::start();
    let broker = Broker::start();
    let observer = broker.observer();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    // Overwrite 4 bytes inside the signed payload (real-peers.md §2.6) *before* uploading: the
    // server's hashes are those of the corrupt file, so only RAUC's signature check can catch it.
    let bundle = sb.bundle_with_filler("v110", "1.1.0", COMPATIBLE, 200_000);
    let mut bytes = std::fs::read(&bundle).expect("read");
    let at = bytes.len() / 3;
    bytes[at..at + 4].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    let corrupt = sb.path().join("corrupt.raucb");
    std::fs::write(&corrupt, &bytes).expect("write");
    let (token, action) = deploy(&sim, "dev-corrupt", "1.1.0", &corrupt);
    let slot_b_before = file_digest(&sb.slot_b);
    let work = tempfile::tempdir().expect("tmp");
    let conf = config(
        work.path(),
        sim.addr().port(),
        "dev-corrupt",
        &token,
        broker.port,
        "",
        "",
    );
    let out = run_once(&conf, &sb.bus_address, 1).await;
    assert_eq!(out.status.code(), Some(1), "a refused bundle fails the run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("size and checksum OK"), "{stderr}");
    wait_until("the action to fail", Duration::from_secs(10), || {
        sim.action_status(action).as_deref() == Some("error")
    })
    .await;
    let messages = sim.action_messages(action).join("\n");
    assert!(
        messages.contains("signature verification failed"),
        "RAUC's LastError reaches hawkBit: {messages}"
    );
    assert_eq!(file_digest(&sb.slot_b), slot_b_before, "slot B untouched");
    assert!(
        !sb.bootloader_calls().contains("set-primary"),
        "{}",
        sb.bootloader_calls()
    );
    assert!(
        record(work.path()).is_none(),
        "record cleared after the final report"
    );
    let seen = wait_statuses(
        &observer,
        &["downloading", "installing", "failure"],
        Duration::from_secs(10),
    );
    let all = observer.lines().join("\n");
    assert!(
        all.contains("signature verification failed"),
        "{seen:?}\n{all}"
    );
    sim.shutdown().await;
}

/// The artifact GETs of the request log: (Range header, status).
fn artifact_gets(sim: &SimHandle) -> Vec<(Option<String>, u16)> {
    sim.request_log()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.contains("/artifacts/"))
        .map(|r| (r.range, r.status))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_burst_is_backed_off_and_the_update_completes() {
    let mut sb = RaucSandbox::start();
    let broker = Broker::start();
    let observer = broker.observer();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let bundle = sb.bundle("v110", "1.1.0", COMPATIBLE);
    let (token, action) = deploy(&sim, "dev-5xx", "1.1.0", &bundle);
    // Every DDI request of this target answers 503 until the burst is over.
    sim.set_target_faults(
        Some("dev-5xx"),
        Faults {
            error_rate: 1.0,
            error_status: Some(503),
            ..Faults::default()
        },
    );
    let work = tempfile::tempdir().expect("tmp");
    let conf = config(
        work.path(),
        sim.addr().port(),
        "dev-5xx",
        &token,
        broker.port,
        "",
        "",
    );
    retry_wait_2(&conf);
    // The service (not run-once): it must ride out the burst on its own.
    let eyas = spawn_eyas(&conf, &sb.bus_address, false, 1);
    let injected = || {
        sim.request_log()
            .into_iter()
            .filter(|r| r.injected && r.path.contains("dev-5xx"))
            .map(|r| r.at_ms)
            .collect::<Vec<_>>()
    };
    wait_until("three injected 503s", Duration::from_secs(30), || {
        injected().len() >= 3
    })
    .await;
    sim.set_target_faults(Some("dev-5xx"), Faults::default());
    let during = injected();
    wait_until("the install into slot B", Duration::from_secs(60), || {
        record(work.path()).is_some_and(|r| r.phase == Phase::Rebooting)
    })
    .await;
    signal(&eyas, "-TERM");
    let out = wait_exit(eyas, &conf, 1, Duration::from_secs(20)).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "SIGTERM ends the service cleanly"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("hawkBit answered 503"), "{stderr}");
    // Backed off, no hammering: after every 503 eyas slept on the core's backoff before its next
    // request. The longest "next core timeout" between a 503 and the next request is that backoff:
    // the core draws 50–100 % of retry_wait=2 s, logged less the few ms since the response.
    let mut backoffs = Vec::new();
    let mut after_503: Option<u64> = None;
    for line in stderr.lines() {
        let sleep = line
            .split_once("next core timeout in ")
            .and_then(|(_, ms)| ms.strip_suffix(" ms")?.parse::<u64>().ok());
        if line.contains("hawkBit answered 503") {
            after_503 = Some(0);
        } else if let (Some(ms), Some(longest)) = (sleep, after_503.as_mut()) {
            *longest = (*longest).max(ms);
        } else if [": Get http", ": Put http", ": Post http"]
            .iter()
            .any(|m| line.contains(m))
            && let Some(longest) = after_503.take()
        {
            backoffs.push(longest);
        }
    }
    assert!(
        backoffs.len() >= during.len()
            && backoffs.len() == stderr.matches("hawkBit answered 503").count()
            && backoffs.iter().all(|ms| (500..=2_000).contains(ms)),
        "backoffs before each retry {backoffs:?} (503s seen by hawkBit: {}):\n{stderr}",
        during.len()
    );
    assert_eq!(sb.slot_version(&sb.slot_b), "1.1.0");
    assert_eq!(
        sim.action_status(action).as_deref(),
        Some("running"),
        "no success before the reboot"
    );
    reboot_and_confirm(&mut sb, &sim, action, &conf, 2).await;
    wait_statuses(
        &observer,
        &["downloading", "installing", "rebooting", "success"],
        Duration::from_secs(10),
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_queued_while_the_broker_is_down_arrives_in_order() {
    let mut sb = RaucSandbox::start();
    let mut broker = Broker::start();
    let observer = broker.observer();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let bundle = sb.bundle_with_filler("big", "1.2.0", COMPATIBLE, 2_500_000);
    let (token, action) = deploy(&sim, "dev-nobroker", "1.2.0", &bundle);
    // ~10 s of download, so the broker can come back while the update runs.
    sim.set_target_faults(
        Some("dev-nobroker"),
        Faults {
            bandwidth_bytes_per_sec: Some(250_000),
            ..Faults::default()
        },
    );
    let work = tempfile::tempdir().expect("tmp");
    let conf = config(
        work.path(),
        sim.addr().port(),
        "dev-nobroker",
        &token,
        broker.port,
        "",
        "",
    );
    broker.down();
    let eyas = spawn_eyas(&conf, &sb.bus_address, true, 1);
    let partial = work.path().join("dl/bundle.raucb.0.big.raucb");
    wait_until(
        "the download to pass 300 kB",
        Duration::from_secs(30),
        || std::fs::metadata(&partial).is_ok_and(|m| m.len() > 300_000),
    )
    .await;
    let back_at = telemetry_now_ms();
    broker.up();
    let out = wait_exit(eyas, &conf, 1, Duration::from_secs(120)).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "a broker outage never blocks an update"
    );
    assert_eq!(sb.slot_version(&sb.slot_b), "1.2.0");
    reboot_and_confirm(&mut sb, &sim, action, &conf, 2).await;
    wait_statuses(
        &observer,
        &["downloading", "installing", "rebooting", "success"],
        Duration::from_secs(20),
    );
    let early = observer
        .lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["ts"].as_u64().is_some_and(|ts| ts < back_at))
        .count();
    assert!(
        early >= 2,
        "messages from the outage were queued and delivered: {:#?}",
        observer.lines()
    );
    sim.shutdown().await;
}

fn telemetry_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cut_during_download_resumes_by_range_after_restart() {
    power_cut_during_download("dev-cut9", false, "-KILL").await;
}

/// SIGTERM (systemd stopping eyas, or a CI job's timeout) in the middle of a run-once download:
/// the run did not finish, so it exits non-zero; the record resumes it on the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_run_once_download_exits_non_zero_and_resumes() {
    power_cut_during_download("dev-term", false, "-TERM").await;
}

/// The cut also loses file data that was not yet on disk: the partial file is shorter than the
/// record's checkpoint. The restart must resume from what is really there, not from zeros.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cut_that_loses_unsynced_download_data_still_completes() {
    power_cut_during_download("dev-cutlost", true, "-KILL").await;
}

async fn power_cut_during_download(target: &str, lose_unsynced: bool, stop: &str) {
    let mut sb = RaucSandbox::start();
    let broker = Broker::start();
    let observer = broker.observer();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let bundle = sb.bundle_with_filler("big", "1.2.0", COMPATIBLE, 2_500_000);
    let size = std::fs::metadata(&bundle).expect("bundle").len();
    let (token, action) = deploy(&sim, target, "1.2.0", &bundle);
    sim.set_target_faults(
        Some(target),
        Faults {
            bandwidth_bytes_per_sec: Some(250_000),
            ..Faults::default()
        },
    );
    let work = tempfile::tempdir().expect("tmp");
    let conf = config(
        work.path(),
        sim.addr().port(),
        target,
        &token,
        broker.port,
        "",
        "",
    );
    let eyas = spawn_eyas(&conf, &sb.bus_address, true, 1);
    wait_until(
        "a download checkpoint in the record",
        Duration::from_secs(30),
        || {
            record(work.path())
                .is_some_and(|r| r.phase == Phase::Downloading && r.resume_offset > 0)
        },
    )
    .await;
    // Power cut: eyas and RAUC die at once (or eyas is told to stop).
    signal(&eyas, stop);
    let out = wait_exit(eyas, &conf, 1, Duration::from_secs(10)).await;
    if stop == "-KILL" {
        assert_eq!(out.status.code(), None, "killed by SIGKILL");
    } else {
        assert_eq!(
            out.status.code(),
            Some(1),
            "an interrupted run-once is not a success"
        );
    }
    sb.reboot_into("A");
    let rec = record(work.path()).expect("record survives");
    let partial = work.path().join("dl/bundle.raucb.0.big.raucb");
    let kept = std::fs::metadata(&partial).expect("partial file").len();
    assert!(
        rec.resume_offset > 0 && rec.resume_offset <= kept && kept < size,
        "checkpoint {} bytes, file {kept} of {size}",
        rec.resume_offset
    );
    assert_eq!(sim.action_status(action).as_deref(), Some("running"));
    let resume_at = if lose_unsynced {
        let short = rec.resume_offset / 2;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&partial)
            .and_then(|f| f.set_len(short))
            .expect("truncate");
        short
    } else {
        rec.resume_offset
    };
    sim.set_target_faults(Some(target), Faults::default());
    sim.clear_request_log();

    let out = run_once(&conf, &sb.bus_address, 2).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "the restarted run completes the install"
    );
    let gets = artifact_gets(&sim);
    assert_eq!(
        gets,
        vec![(Some(format!("bytes={resume_at}-")), 206)],
        "one GET, resumed by range from the checkpoint"
    );
    assert_eq!(sb.slot_version(&sb.slot_b), "1.2.0");
    reboot_and_confirm(&mut sb, &sim, action, &conf, 3).await;
    wait_statuses(
        &observer,
        &["downloading", "installing", "rebooting", "success"],
        Duration::from_secs(10),
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cut_during_install_installs_again_after_restart() {
    let mut sb = RaucSandbox::start();
    let broker = Broker::start();
    let observer = broker.observer();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let bundle = sb.bundle("v110", "1.1.0", COMPATIBLE);
    let (token, action) = deploy(&sim, "dev-cutinstall", "1.1.0", &bundle);
    // Hold RAUC inside the install: the first `set-primary` (after the slot was written, before
    // it is activated) waits for the power cut instead of answering.
    let bl = sb.bootloader_dir.clone();
    let script = sb.path().join("bootloader.sh");
    let text = std::fs::read_to_string(&script).expect("script").replacen(
        "case \"$1\" in",
        "if [ \"$1\" = set-primary ] && [ -e $d/hold ]; then rm -f $d/hold; \
         while [ ! -e $d/cut ]; do sleep 0.1; done; exit 1; fi\ncase \"$1\" in",
        1,
    );
    std::fs::write(&script, text).expect("script");
    std::fs::write(bl.join("hold"), "").expect("hold");
    let work = tempfile::tempdir().expect("tmp");
    let conf = config(
        work.path(),
        sim.addr().port(),
        "dev-cutinstall",
        &token,
        broker.port,
        "",
        "",
    );
    let eyas = spawn_eyas(&conf, &sb.bus_address, true, 1);
    wait_until(
        "RAUC to be inside the install",
        Duration::from_secs(60),
        || sb.bootloader_calls().contains("set-primary"),
    )
    .await;
    assert_eq!(
        record(work.path()).map(|r| r.phase),
        Some(Phase::Installing),
        "the record says an install is under way"
    );
    // Power cut: eyas and RAUC die mid-install, the device comes up in slot A again.
    signal(&eyas, "-KILL");
    let out = wait_exit(eyas, &conf, 1, Duration::from_secs(10)).await;
    assert_eq!(out.status.code(), None, "killed by SIGKILL");
    sb.reboot_into("A");
    std::fs::write(bl.join("cut"), "").expect("cut");
    assert_eq!(sim.action_status(action).as_deref(), Some("running"));
    assert!(!std::fs::read_to_string(bl.join("primary")).is_ok_and(|p| p.contains('B')));

    let out = run_once(&conf, &sb.bus_address, 2).await;
    assert_eq!(out.status.code(), Some(0), "installed again after the cut");
    assert_eq!(sb.slot_version(&sb.slot_b), "1.1.0");
    // (from Rebooting on, the record's `attempt` counts starts that cannot tell the booted slot)
    assert_eq!(
        record(work.path()).map(|r| (r.phase, r.target_slot, r.from_slot)),
        Some((
            Phase::Rebooting,
            Some("B".try_into().expect("bootname")),
            Some("A".try_into().expect("bootname"))
        )),
        "waiting for the reboot into B"
    );
    assert_eq!(
        sb.bootloader_calls().matches("set-primary B").count(),
        2,
        "second install attempt"
    );
    assert_eq!(
        sim.action_status(action).as_deref(),
        Some("running"),
        "no success before the reboot"
    );
    reboot_and_confirm(&mut sb, &sim, action, &conf, 3).await;
    let messages = sim.action_messages(action).join("\n");
    assert!(!messages.contains("interrupted"), "{messages}");
    wait_statuses(
        &observer,
        &["downloading", "installing", "rebooting", "success"],
        Duration::from_secs(10),
    );
    sim.shutdown().await;
}

/// An `os` module (RAUC bundle) plus a `config` module (a custom module type, as real hawkBit
/// allows) in one distribution set; `[eyas] part.config.command` is a script that records its
/// arguments and a copy of the file it got, then exits with `exit_code`.
async fn two_chunks(
    sb: &RaucSandbox,
    sim: &SimHandle,
    broker: &Broker,
    target: &str,
    exit_code: u8,
) -> (u64, PathBuf, tempfile::TempDir, Vec<u8>) {
    sim.create_software_module_type("config", "Configuration", 1)
        .expect("config module type");
    sim.create_distribution_set_type("os_config", "OS with config", &["os"], &["config"])
        .expect("DS type");
    let token = sim.create_target(target, None).expect("target");
    let bundle = sb.bundle("v110", "1.1.0", COMPATIBLE);
    let os = sim
        .create_software_module("rootfs", "1.1.0", "os")
        .expect("os module");
    sim.add_artifact_file(os, "rootfs-1.1.0.raucb", &bundle)
        .expect("bundle");
    let settings = common::test_bytes(70_000, 7);
    let cfg = sim
        .create_software_module("settings", "7", "config")
        .expect("config module");
    sim.add_artifact_bytes(cfg, "settings-7.tar", &settings)
        .expect("config artifact");
    let ds = sim
        .create_distribution_set("image", "1.1.0", "os_config", &[os, cfg])
        .expect("ds");
    let action = sim.assign(target, ds, Default::default()).expect("assign");
    let work = tempfile::tempdir().expect("tmp");
    let w = work.path().display();
    let hook = work.path().join("apply-config.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > {w}/hook-args\ncp \"$1\" {w}/hook-copy\nexit {exit_code}\n"
        ),
    )
    .expect("hook");
    common::run(Command::new("chmod").arg("+x").arg(&hook));
    let conf = config(
        work.path(),
        sim.addr().port(),
        target,
        &token,
        broker.port,
        "",
        &format!(
            "part.config.command={}\npart.config.timeout=30\n",
            hook.display()
        ),
    );
    (action, conf, work, settings)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn os_and_config_chunks_both_install_and_the_config_command_gets_its_file() {
    let mut sb = RaucSandbox::start();
    let broker = Broker::start();
    let observer = broker.observer();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let (action, conf, work, settings) = two_chunks(&sb, &sim, &broker, "dev-2chunks", 0).await;
    let out = run_once(&conf, &sb.bus_address, 1).await;
    assert_eq!(out.status.code(), Some(0), "install run");
    let args = std::fs::read_to_string(work.path().join("hook-args")).expect("the hook ran");
    // one argument: the config artifact, stored as <bundle_download_location>.<n>.<its name>
    let arg = std::path::PathBuf::from(args.trim_end_matches('\n'));
    assert_eq!(args.lines().count(), 1, "{args}");
    assert_eq!(
        arg.parent(),
        Some(work.path().join("dl").as_path()),
        "{args}"
    );
    let name = arg
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with("bundle.raucb.") && name.ends_with(".settings-7.tar"),
        "{name}"
    );
    assert_eq!(
        std::fs::read(work.path().join("hook-copy")).expect("copy"),
        settings,
        "the hook got the verified file"
    );
    assert_eq!(
        sb.slot_version(&sb.slot_b),
        "1.1.0",
        "the os chunk went to RAUC"
    );
    assert_eq!(
        sim.action_status(action).as_deref(),
        Some("running"),
        "no success before the reboot"
    );
    reboot_and_confirm(&mut sb, &sim, action, &conf, 2).await;
    wait_statuses(
        &observer,
        &["downloading", "installing", "rebooting", "success"],
        Duration::from_secs(10),
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_config_command_fails_the_action_before_the_os_is_touched() {
    let sb = RaucSandbox::start();
    let broker = Broker::start();
    let observer = broker.observer();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let (action, conf, work, _) = two_chunks(&sb, &sim, &broker, "dev-2chunks-bad", 3).await;
    let slot_b_before = file_digest(&sb.slot_b);
    let out = run_once(&conf, &sb.bus_address, 1).await;
    assert_eq!(out.status.code(), Some(1), "the exit code decides");
    assert!(work.path().join("hook-args").exists(), "the hook ran");
    wait_until("the action to fail", Duration::from_secs(10), || {
        sim.action_status(action).as_deref() == Some("error")
    })
    .await;
    let messages = sim.action_messages(action).join("\n");
    assert!(messages.contains("exit status: 3"), "{messages}");
    assert_eq!(file_digest(&sb.slot_b), slot_b_before, "slot B untouched");
    assert!(!sb.bootloader_calls().contains("set-primary"));
    wait_statuses(
        &observer,
        &["downloading", "installing", "failure"],
        Duration::from_secs(10),
    );
    sim.shutdown().await;
}

/// Run-once while hawkBit answers 503: like an unreachable server, that is a failed run (exit 1),
/// never "nothing to do" (exit 0) while an update is waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_once_during_a_server_error_burst_reports_failure() {
    let sb = RaucSandbox::start();
    let broker = Broker::start();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let bundle = sb.bundle("v110", "1.1.0", COMPATIBLE);
    let (token, action) = deploy(&sim, "dev-5xx-once", "1.1.0", &bundle);
    sim.set_target_faults(
        Some("dev-5xx-once"),
        Faults {
            error_rate: 1.0,
            error_status: Some(503),
            ..Faults::default()
        },
    );
    let work = tempfile::tempdir().expect("tmp");
    let conf = config(
        work.path(),
        sim.addr().port(),
        "dev-5xx-once",
        &token,
        broker.port,
        "",
        "",
    );
    let out = run_once(&conf, &sb.bus_address, 1).await;
    assert_eq!(out.status.code(), Some(1), "the poll failed");
    assert_eq!(sim.action_status(action).as_deref(), Some("running"));
    assert!(!sb.bootloader_calls().contains("set-primary"));
    sim.shutdown().await;
}

/// A cut download whose resume requests hit a 503 burst: with `resume_downloads=true` eyas backs
/// off, resumes by range once the burst is over and completes; ThingsBoard never sees a failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_burst_during_a_resumed_download_is_ridden_out() {
    let mut sb = RaucSandbox::start();
    let broker = Broker::start();
    let observer = broker.observer();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let bundle = sb.bundle_with_filler("big", "1.2.0", COMPATIBLE, 2_500_000);
    let (token, action) = deploy(&sim, "dev-5xx-dl", "1.2.0", &bundle);
    sim.set_target_faults(
        Some("dev-5xx-dl"),
        Faults {
            cut_after_bytes: Some(600_000),
            cut_count: Some(1),
            ..Faults::default()
        },
    );
    let work = tempfile::tempdir().expect("tmp");
    let conf = config(
        work.path(),
        sim.addr().port(),
        "dev-5xx-dl",
        &token,
        broker.port,
        "resume_downloads=true\n",
        "",
    );
    retry_wait_2(&conf);
    let eyas = spawn_eyas(&conf, &sb.bus_address, true, 1);
    wait_until("the cut", Duration::from_secs(30), || {
        artifact_gets(&sim).first().is_some_and(|g| g.1 == 200)
            && std::fs::metadata(work.path().join("dl/bundle.raucb.0.big.raucb"))
                .is_ok_and(|m| m.len() > 0)
    })
    .await;
    sim.set_target_faults(
        Some("dev-5xx-dl"),
        Faults {
            error_rate: 1.0,
            error_status: Some(503),
            ..Faults::default()
        },
    );
    wait_until("two refused resumes", Duration::from_secs(30), || {
        artifact_gets(&sim).iter().filter(|g| g.1 == 503).count() >= 2
    })
    .await;
    sim.set_target_faults(Some("dev-5xx-dl"), Faults::default());
    let out = wait_exit(eyas, &conf, 1, Duration::from_secs(120)).await;
    assert_eq!(out.status.code(), Some(0), "the update went on");
    let gets = artifact_gets(&sim);
    let (range, status) = gets.last().cloned().expect("a last GET");
    assert_eq!(status, 206, "{gets:?}");
    assert!(
        range.is_some_and(|r| r.starts_with("bytes=") && r != "bytes=0-"),
        "{gets:?}"
    );
    assert!(
        gets.iter().skip(1).all(|g| g.0.is_some()),
        "every retry asked for the rest only: {gets:?}"
    );
    assert_eq!(sb.slot_version(&sb.slot_b), "1.2.0");
    reboot_and_confirm(&mut sb, &sim, action, &conf, 2).await;
    wait_statuses(
        &observer,
        &["downloading", "installing", "rebooting", "success"],
        Duration::from_secs(10),
    );
    sim.shutdown().await;
}

/// Without `resume_downloads` a cut download is final: hawkBit gets the failure, and so does
/// ThingsBoard, with the transfer error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_given_up_is_a_failure_with_its_reason_in_telemetry() {
    let sb = RaucSandbox::start();
    let broker = Broker::start();
    let observer = broker.observer();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let bundle = sb.bundle_with_filler("big", "1.2.0", COMPATIBLE, 1_000_000);
    let (token, action) = deploy(&sim, "dev-cut-final", "1.2.0", &bundle);
    sim.set_target_faults(
        Some("dev-cut-final"),
        Faults {
            cut_after_bytes: Some(300_000),
            ..Faults::default()
        },
    );
    let work = tempfile::tempdir().expect("tmp");
    let conf = config(
        work.path(),
        sim.addr().port(),
        "dev-cut-final",
        &token,
        broker.port,
        "",
        "",
    );
    let out = run_once(&conf, &sb.bus_address, 1).await;
    assert_eq!(out.status.code(), Some(1));
    wait_until("the action to fail", Duration::from_secs(10), || {
        sim.action_status(action).as_deref() == Some("error")
    })
    .await;
    assert!(!sb.bootloader_calls().contains("set-primary"));
    wait_statuses(
        &observer,
        &["downloading", "failure"],
        Duration::from_secs(10),
    );
    wait_until(
        "the transfer error in telemetry",
        Duration::from_secs(10),
        || {
            observer
                .lines()
                .iter()
                .any(|l| l.contains("\"ota_status\":\"failure\"") && l.contains("300000 bytes"))
        },
    )
    .await;
    sim.shutdown().await;
}

/// Power cut after the reboot, while the success report is on its way: the record says
/// "report success", so the next start reports it (without judging the boot again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cut_while_reporting_success_reports_it_after_restart() {
    let mut sb = RaucSandbox::start();
    let broker = Broker::start();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let bundle = sb.bundle("v110", "1.1.0", COMPATIBLE);
    let (token, action) = deploy(&sim, "dev-cutreport", "1.1.0", &bundle);
    let work = tempfile::tempdir().expect("tmp");
    let conf = config(
        work.path(),
        sim.addr().port(),
        "dev-cutreport",
        &token,
        broker.port,
        "",
        "",
    );
    let out = run_once(&conf, &sb.bus_address, 1).await;
    assert_eq!(out.status.code(), Some(0), "install run");
    sb.reboot_into("B");
    // Every DDI answer now takes 3 s: the cut lands while the final feedback is in flight.
    sim.set_target_faults(
        Some("dev-cutreport"),
        Faults {
            latency_ms: 3_000,
            ..Faults::default()
        },
    );
    let eyas = spawn_eyas(&conf, &sb.bus_address, true, 2);
    wait_until("the verdict in the record", Duration::from_secs(30), || {
        record(work.path())
            .is_some_and(|r| matches!(r.phase, Phase::Reporting { success: true, .. }))
    })
    .await;
    signal(&eyas, "-KILL");
    let out = wait_exit(eyas, &conf, 2, Duration::from_secs(10)).await;
    assert_eq!(out.status.code(), None, "killed by SIGKILL");
    assert!(sb.bootloader_calls().contains("set-state B good"));
    sim.set_target_faults(Some("dev-cutreport"), Faults::default());
    sb.reboot_into("B");
    let out = run_once(&conf, &sb.bus_address, 3).await;
    assert_eq!(out.status.code(), Some(0));
    wait_until("the action to finish", Duration::from_secs(10), || {
        sim.action_status(action).as_deref() == Some("finished")
    })
    .await;
    assert!(record(work.path()).is_none(), "record cleared");
    let messages = sim.action_messages(action).join("\n");
    assert!(messages.contains("booted"), "{messages}");
    sim.shutdown().await;
}
