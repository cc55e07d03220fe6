//! End to end, the operator-driven flows: hawkbit-sim (in process) + real RAUC 1.8 (private
//! bus) + real mosquitto + the `eyas` binary. Each scenario checks the final hawkBit action
//! (status and history through the Sim API), the slot contents and the telemetry sequence.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::broker::{Broker, Observer};
use common::e2e::wait_until;
use common::rauc_sandbox::RaucSandbox;
use eyas_core::record::{Phase, Record};
use hil_tests::sim::{
    ActionType, AssignOptions, MaintenanceWindow, Sim, SimConfig, SimHandle, WindowOverride,
};

const COMPATIBLE: &str = "ota-agent-test";

/// Everything one scenario needs: RAUC sandbox, broker + observer, simulator, a target.
struct Rig {
    sb: RaucSandbox,
    observer: Observer,
    broker: Broker,
    sim: SimHandle,
    work: tempfile::TempDir,
    target: String,
    token: String,
}

/// hawkBit telling the device to poll every second (for scenarios that wait for a poll).
fn fast_polling() -> SimConfig {
    SimConfig {
        polling_time: "00:00:01".into(),
        min_polling_secs: 1,
        ..SimConfig::default()
    }
}

impl Rig {
    async fn start(target: &str, sim_config: SimConfig) -> Self {
        let sb = RaucSandbox::start();
        let broker = Broker::start();
        let observer = broker.observer();
        let sim = Sim::start(sim_config).await.expect("hawkbit-sim");
        let token = sim.create_target(target, None).expect("target");
        Self {
            sb,
            observer,
            broker,
            sim,
            work: tempfile::tempdir().expect("tmp"),
            target: target.to_owned(),
            token,
        }
    }

    /// A signed bundle (version `version`, `filler` extra bytes) as an OS module, assigned.
    fn deploy(&self, version: &str, filler: usize, opts: AssignOptions) -> u64 {
        let bundle =
            self.sb
                .bundle_with_filler(&format!("b{version}"), version, COMPATIBLE, filler);
        common::e2e::assign_os(
            &self.sim,
            &self.target,
            version,
            "rootfs.raucb",
            &bundle,
            opts,
        )
    }

    /// Writes the eyas configuration (token = the target's unless `token` is given).
    fn config(&self, token: Option<&str>, eyas_extra: &str) -> PathBuf {
        common::e2e::write_config(
            self.work.path(),
            self.sim.addr().port(),
            &self.target,
            token.unwrap_or(&self.token),
            self.broker.port,
            "",
            eyas_extra,
        )
    }

    fn eyas(&self, conf: &Path, run_once: bool, tag: &str) -> Eyas {
        Eyas::start(conf, &self.sb.bus_address, run_once, tag)
    }

    fn history(&self, action: u64) -> Vec<(String, String)> {
        history(&self.sim, action)
    }

    fn record(&self) -> Option<Record> {
        common::e2e::read_record(self.work.path())
    }

    /// Slot B was never written (still the zero-filled file the sandbox made).
    fn slot_b_untouched(&self) -> bool {
        std::fs::read(&self.sb.slot_b).is_ok_and(|b| b.iter().all(|&x| x == 0))
    }

    /// Artifact downloads served for this target (full or ranged GETs).
    fn artifact_gets(&self) -> usize {
        self.sim
            .request_log()
            .iter()
            .filter(|r| r.method == "GET" && r.path.contains("/artifacts/"))
            .count()
    }

    /// Waits (bounded) until the telemetry ends with the last label of `want`, then checks the
    /// whole sequence is `want` (see `telemetry`).
    async fn expect_telemetry(&self, want: &[&str]) {
        let last = want.last().expect("an expected sequence");
        let seen = telemetry_until(&self.observer, last).await;
        assert_eq!(seen, want, "{}", self.observer.lines().join("\n"));
    }

    /// "Reboots" into slot B and runs eyas once more: the update is judged and reported.
    async fn reboot_and_confirm(&mut self, conf: &Path, action: u64) {
        self.sb.reboot_into("B");
        let (code, log) = self.eyas(conf, true, "after-reboot").wait(LIMIT).await;
        assert_eq!(code, Some(0), "post-reboot run:\n{log}");
        let sim = &self.sim;
        wait_until("the action to finish", Duration::from_secs(10), || {
            sim.action_status(action).as_deref() == Some("finished")
        })
        .await;
        assert!(
            self.sb.bootloader_calls().contains("set-state B good"),
            "{}",
            self.sb.bootloader_calls()
        );
        assert!(self.record().is_none(), "record cleared after the report");
    }
}

/// The telemetry of an update that installs and is confirmed after the reboot.
const FULL_UPDATE: [&str; 9] = [
    "current",
    "downloading",
    "DOWNLOADED",
    "installing",
    "target",
    "installing",
    "rebooting",
    "current",
    "success",
];

/// Upper bound for one eyas run.
const LIMIT: Duration = Duration::from_secs(90);

/// The action's history: (status, messages joined), oldest first.
fn history(sim: &SimHandle, action: u64) -> Vec<(String, String)> {
    sim.with_state(|s| {
        s.actions
            .get(&action)
            .map(|a| {
                a.history
                    .iter()
                    .map(|h| (h.status.name().to_owned(), h.messages.join(" | ")))
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// The `eyas` binary, killed by its pid if a test leaves it running.
struct Eyas {
    child: Child,
    log: PathBuf,
}

impl Eyas {
    fn start(conf: &Path, bus: &str, run_once: bool, tag: &str) -> Self {
        let log = conf.with_extension(format!("{tag}.stderr"));
        let child = common::e2e::spawn_eyas(conf, bus, run_once, &log);
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM (eyas stops cleanly).
    fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Waits (bounded, without blocking the runtime) for the exit; (exit code, stderr).
    async fn wait(mut self, limit: Duration) -> (Option<i32>, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let log = self.log();
                eprintln!("--- eyas stderr ({}) ---\n{log}", self.log.display());
                return (status.code(), log);
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("eyas did not exit within {limit:?}:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Eyas {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The telemetry as a sequence of short labels, consecutive repeats folded:
/// `current` (installed software), `target` (the update being applied), `DOWNLOADED`, and the
/// `ota_status` values (in order: see [`Observer::values`]).
fn telemetry(observer: &Observer) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for values in observer.values() {
        let label = if let Some(s) = values["ota_status"].as_str() {
            s.to_owned()
        } else if values.get("current_sw_version").is_some() {
            "current".to_owned()
        } else if values.get("target_sw_version").is_some() {
            "target".to_owned()
        } else if let Some(s) = values["sw_state"].as_str() {
            s.to_owned()
        } else {
            panic!("unexpected telemetry {values}");
        };
        if out.last() != Some(&label) {
            out.push(label);
        }
    }
    out
}

/// Waits until the telemetry ends with `last` (bounded), then returns the whole sequence.
async fn telemetry_until(observer: &Observer, last: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) {
        seen = telemetry(observer);
        if seen.last().map(String::as_str) == Some(last) {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("telemetry {seen:?} never ended with {last:?}");
}

/// Makes the sandbox's bootloader backend block in `verb` until the returned file exists
/// (bounded to 120 s): holds RAUC in the middle of an install.
fn hold_bootloader(sb: &RaucSandbox, verb: &str) -> PathBuf {
    let script = sb.path().join("bootloader.sh");
    let release = sb.path().join(format!("release-{verb}"));
    let text = std::fs::read_to_string(&script).expect("bootloader script");
    let marker = "echo \"$*\" >> $d/calls.log\n";
    assert!(text.contains(marker), "{text}");
    let hold = format!(
        "{marker}if [ \"$1\" = {verb} ]; then i=0; while [ ! -e {r} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done; fi\n",
        r = release.display()
    );
    std::fs::write(&script, text.replacen(marker, &hold, 1)).expect("write script");
    release
}

// ------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_before_download_is_acknowledged_and_nothing_is_installed() {
    let rig = Rig::start("dev-cancel-early", SimConfig::default()).await;
    let action = rig.deploy("1.1.0", 0, AssignOptions::default());
    // The operator cancels before the device ever saw the action.
    rig.sim.cancel(&rig.target, action).expect("cancel");
    let conf = rig.config(None, "");
    let (code, log) = rig.eyas(&conf, true, "run").wait(LIMIT).await;
    assert_eq!(code, Some(0), "a canceled action is not a failure:\n{log}");

    assert_eq!(rig.sim.action_status(action).as_deref(), Some("canceled"));
    let history = rig.history(action);
    let last = history.last().expect("history");
    assert_eq!(last.0, "canceled", "{history:#?}");
    assert!(last.1.contains("Cancel accepted"), "{history:#?}");
    let log_ = rig.sim.request_log();
    let feedback: Vec<_> = log_
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains(&format!("/{action}/feedback")))
        .map(|r| (r.path.clone(), r.status))
        .collect();
    assert_eq!(
        feedback.len(),
        1,
        "exactly one cancel acknowledgement: {feedback:?}"
    );
    assert!(feedback[0].0.contains("/cancelAction/"), "{feedback:?}");
    assert_eq!(feedback[0].1, 200, "{feedback:?}");
    assert!(
        !log_.iter().any(|r| r.path.contains("/deploymentBase/")),
        "the canceled deployment was never fetched"
    );
    assert_eq!(rig.artifact_gets(), 0, "nothing downloaded");

    assert!(rig.slot_b_untouched(), "slot B was not written");
    assert!(!rig.sb.bootloader_calls().contains("set-primary"));
    assert!(rig.record().is_none());
    // Telemetry: the installed software at start, no update phases.
    rig.observer.wait_lines(1, Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(telemetry(&rig.observer), ["current"]);
    rig.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_during_install_is_rejected_and_the_update_completes() {
    let mut rig = Rig::start("dev-cancel-late", SimConfig::default()).await;
    let action = rig.deploy("1.1.0", 0, AssignOptions::default());
    let release = hold_bootloader(&rig.sb, "set-primary");
    let conf = rig.config(None, "");
    let mut eyas = rig.eyas(&conf, true, "install");
    let sb = &rig.sb;
    wait_until("RAUC to be in the install", LIMIT, || {
        sb.bootloader_calls().contains("set-primary B")
    })
    .await;
    rig.sim.cancel(&rig.target, action).expect("cancel");
    // eyas polls every 5 s while installing: it sees the cancel and refuses it.
    let sim = &rig.sim;
    wait_until("the cancel to be rejected", Duration::from_secs(20), || {
        history(sim, action)
            .iter()
            .any(|(s, _)| s == "cancel_rejected")
    })
    .await;
    assert!(eyas.running(), "eyas still works on the install");
    assert_eq!(rig.sim.action_status(action).as_deref(), Some("running"));
    std::fs::write(&release, "").expect("release RAUC");
    let (code, log) = eyas.wait(LIMIT).await;
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(
        rig.sb.slot_version(&rig.sb.slot_b),
        "1.1.0",
        "install completed"
    );
    assert_eq!(rig.sim.action_status(action).as_deref(), Some("running"));

    rig.reboot_and_confirm(&conf, action).await;
    let history = rig.history(action);
    let rejected = history
        .iter()
        .position(|(s, _)| s == "cancel_rejected")
        .expect("rejected");
    assert!(
        history[rejected].1.contains("Cancel rejected"),
        "{history:#?}"
    );
    let (last, text) = history.last().expect("history");
    assert_eq!(last, "finished", "{history:#?}");
    assert!(text.contains("booted"), "{history:#?}");
    assert!(
        !history.iter().any(|(s, _)| s == "canceled"),
        "{history:#?}"
    );

    rig.expect_telemetry(&FULL_UPDATE).await;
    rig.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_only_downloads_verifies_and_closes_without_installing() {
    let rig = Rig::start("dev-dl-only", SimConfig::default()).await;
    let action = rig.deploy(
        "1.1.0",
        0,
        AssignOptions {
            kind: ActionType::DownloadOnly,
            ..AssignOptions::default()
        },
    );
    let conf = rig.config(None, "");
    let (code, log) = rig.eyas(&conf, true, "run").wait(LIMIT).await;
    assert_eq!(code, Some(0), "{log}");

    assert_eq!(rig.sim.action_status(action).as_deref(), Some("downloaded"));
    assert!(
        rig.sim
            .with_state(|s| s.actions.get(&action).is_some_and(|a| !a.active)),
        "download-only is closed by `downloaded`"
    );
    let history = rig.history(action);
    assert_eq!(
        history.last().map(|h| h.0.as_str()),
        Some("downloaded"),
        "{history:#?}"
    );
    assert_eq!(rig.artifact_gets(), 1, "downloaded once");
    assert!(rig.slot_b_untouched(), "nothing installed");
    assert!(!rig.sb.bootloader_calls().contains("set-primary"));
    assert!(rig.record().is_none(), "nothing pending");

    // Downloaded, then idle: never `success`/UPDATED, nothing was installed.
    rig.expect_telemetry(&["current", "downloading", "DOWNLOADED", "idle"])
        .await;
    rig.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_window_downloads_early_and_installs_once_it_opens() {
    let mut rig = Rig::start("dev-window", fast_polling()).await;
    rig.sim
        .force_maintenance_window(Some(&rig.target), Some(WindowOverride::Closed));
    let action = rig.deploy(
        "1.1.0",
        0,
        AssignOptions {
            kind: ActionType::Forced,
            window: Some(MaintenanceWindow::new("0 0 3 * * ?", "01:00:00", "+00:00").expect("mw")),
            ..AssignOptions::default()
        },
    );
    let conf = rig.config(None, "poll_min=1\n");
    let mut eyas = rig.eyas(&conf, true, "window");
    let work = rig.work.path().to_owned();
    wait_until("the download, then the wait for the window", LIMIT, || {
        common::e2e::read_record(&work).is_some_and(|r| r.phase == Phase::AwaitingWindow)
    })
    .await;
    assert_eq!(rig.artifact_gets(), 1, "downloaded before the window");
    // A few polls with the window closed: nothing is installed, eyas keeps waiting.
    let polls = |sim: &SimHandle| {
        sim.request_log()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/dev-window"))
            .count()
    };
    let before = polls(&rig.sim);
    let sim = &rig.sim;
    wait_until("three more polls", Duration::from_secs(15), || {
        polls(sim) >= before + 3
    })
    .await;
    assert!(eyas.running(), "eyas waits for the window");
    assert!(
        rig.slot_b_untouched(),
        "no install while the window is closed"
    );
    assert!(!rig.sb.bootloader_calls().contains("set-primary"));
    assert_eq!(rig.sim.action_status(action).as_deref(), Some("running"));

    rig.sim
        .force_maintenance_window(Some(&rig.target), Some(WindowOverride::Open));
    let (code, log) = eyas.wait(Duration::from_secs(30)).await;
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(rig.sb.slot_version(&rig.sb.slot_b), "1.1.0");
    assert_eq!(rig.artifact_gets(), 1, "the early download was installed");
    rig.reboot_and_confirm(&conf, action).await;
    let history = rig.history(action);
    assert!(
        history
            .iter()
            .any(|(_, m)| m.contains("waiting for the maintenance window")),
        "{history:#?}"
    );
    assert_eq!(history.last().map(|h| h.0.as_str()), Some("finished"));

    rig.expect_telemetry(&[
        "current",
        "downloading",
        "DOWNLOADED",
        "idle",
        "installing",
        "target",
        "installing",
        "rebooting",
        "current",
        "success",
    ])
    .await;
    rig.sim.shutdown().await;
}

/// A deployment that needs the device's confirmation (tenant flow enabled). hawkBit's sleep is
/// 5 minutes and not clamped: a confirmed deployment must be fetched right away, not a poll later.
async fn confirmation_rig(target: &str) -> (Rig, u64) {
    let rig = Rig::start(
        target,
        SimConfig {
            confirmation_flow: true,
            ..SimConfig::default()
        },
    )
    .await;
    let action = rig.deploy("1.1.0", 0, AssignOptions::default());
    assert_eq!(
        rig.sim.action_status(action).as_deref(),
        Some("wait_for_confirmation")
    );
    (rig, action)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_auto_confirms_and_installs_without_waiting_a_poll() {
    let (mut rig, action) = confirmation_rig("dev-confirm-auto").await;
    let conf = rig.config(None, "confirmation=auto\n");
    let (code, log) = rig
        .eyas(&conf, true, "run")
        .wait(Duration::from_secs(60))
        .await;
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(rig.sb.slot_version(&rig.sb.slot_b), "1.1.0");
    // Order, not a stopwatch: from the confirmation straight to the deployment. eyas did not sleep
    // on a core timeout in between, and hawkBit saw at most the one base poll that finds the link.
    let between = log
        .split_once("ConfirmationFeedback: Post")
        .and_then(|(_, rest)| rest.split_once("DeploymentBase: Get"))
        .map_or_else(
            || panic!("no confirmation, then deployment:\n{log}"),
            |(b, _)| b,
        );
    assert!(
        !between.contains("next core timeout"),
        "eyas waited between the confirmation and the deployment:\n{log}"
    );
    let log_ = rig.sim.request_log();
    let at = |needle: &str| {
        log_.iter()
            .position(|r| r.path.contains(needle))
            .unwrap_or_else(|| panic!("no request to {needle}: {log_:#?}"))
    };
    let (confirmed, deployment) = (at("/confirmationBase/"), at("/deploymentBase/"));
    let polls = log_
        .get(confirmed..deployment)
        .unwrap_or_else(|| panic!("deployment before confirmation: {log_:#?}"))
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/dev-confirm-auto"))
        .count();
    assert!(
        polls <= 1,
        "{polls} base polls between the confirmation and the deployment"
    );
    rig.reboot_and_confirm(&conf, action).await;
    let history = rig.history(action);
    assert!(
        history
            .iter()
            .any(|(s, m)| s == "running" && m.contains("Confirmed by policy")),
        "{history:#?}"
    );
    rig.expect_telemetry(&FULL_UPDATE).await;
    rig.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_denied_stays_waiting_then_a_command_accepts_it() {
    let (mut rig, action) = confirmation_rig("dev-confirm-deny").await;
    let conf = rig.config(None, "confirmation=deny\n");
    let (code, log) = rig.eyas(&conf, true, "deny").wait(LIMIT).await;
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(
        rig.sim.action_status(action).as_deref(),
        Some("wait_for_confirmation"),
        "denied stays waiting"
    );
    let history = rig.history(action);
    assert!(
        history
            .last()
            .is_some_and(|(s, m)| s == "wait_for_confirmation" && m.contains("Denied by user")),
        "{history:#?}"
    );
    assert_eq!(rig.artifact_gets(), 0, "nothing downloaded");
    assert!(rig.slot_b_untouched());
    assert!(rig.record().is_none());

    // The user accepts: the confirmation command exits 0 (and gets the action id).
    let asked = rig.work.path().join("asked");
    let conf = rig.config(
        None,
        &format!(
            "confirmation=command\nconfirmation_command=echo >{}\n",
            asked.display()
        ),
    );
    let (code, log) = rig
        .eyas(&conf, true, "accept")
        .wait(Duration::from_secs(60))
        .await;
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(
        std::fs::read_to_string(&asked).expect("command ran").trim(),
        action.to_string()
    );
    assert_eq!(rig.sb.slot_version(&rig.sb.slot_b), "1.1.0");
    rig.reboot_and_confirm(&conf, action).await;
    let history = rig.history(action);
    assert!(
        history
            .iter()
            .any(|(s, m)| s == "running" && m.contains("Confirmed by user")),
        "{history:#?}"
    );
    rig.expect_telemetry(&[
        "current",
        "idle",
        "current",
        "idle",
        "downloading",
        "DOWNLOADED",
        "installing",
        "target",
        "installing",
        "rebooting",
        "current",
        "success",
    ])
    .await;
    rig.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_closed_by_the_server_is_dropped_on_410_and_polling_goes_on() {
    // hawkBit's sleep is 10 s: while downloading eyas polls every 5 s (to see cancels), so the
    // progress feedback at 1 MB (~2 s at 500 kB/s) is what learns that the action is gone.
    let rig = Rig::start(
        "dev-gone",
        SimConfig {
            polling_time: "00:00:10".into(),
            min_polling_secs: 1,
            ..SimConfig::default()
        },
    )
    .await;
    let action = rig.deploy("1.2.0", 2_500_000, AssignOptions::default());
    rig.sim.set_target_faults(
        Some(&rig.target),
        hil_tests::sim::Faults {
            bandwidth_bytes_per_sec: Some(500_000),
            ..Default::default()
        },
    );
    let conf = rig.config(None, "poll_min=1\n");
    let mut eyas = rig.eyas(&conf, false, "daemon");
    let partial = rig.work.path().join("dl/bundle.raucb.0.rootfs.raucb");
    wait_until("the download to start", LIMIT, || {
        std::fs::metadata(&partial).is_ok_and(|m| m.len() > 0)
    })
    .await;
    // The operator cancels and force-quits at once: the device never sees `canceling`, the
    // action is simply closed (410 for its feedback, no link in the base poll).
    let closed_at = hil_tests::sim::time::now_ms();
    rig.sim
        .with_state(|s| {
            s.cancel_action(&rig.target, action, false, closed_at)?;
            s.cancel_action(&rig.target, action, true, closed_at)
        })
        .expect("force quit");
    assert_eq!(rig.sim.action_status(action).as_deref(), Some("canceled"));
    let entries = rig.history(action).len();

    wait_until("eyas to drop the action", Duration::from_secs(20), || {
        !partial.exists() && eyas.log().contains("no longer offered by hawkBit")
    })
    .await;
    // Idle polling from now on every second: eyas goes on polling.
    rig.sim
        .set_config("pollingTime", serde_json::json!("00:00:01"))
        .expect("pollingTime");
    let sim = &rig.sim;
    let polls_after = |sim: &SimHandle| {
        sim.request_log()
            .iter()
            .filter(|r| r.at_ms > closed_at && r.method == "GET" && r.path.ends_with("/dev-gone"))
            .count()
    };
    wait_until("eyas to keep polling", Duration::from_secs(20), || {
        polls_after(sim) >= 3
    })
    .await;
    assert!(eyas.running(), "eyas keeps running");
    eyas.terminate();
    let (code, log) = eyas.wait(Duration::from_secs(20)).await;
    assert_eq!(code, Some(0), "{log}");

    // Nothing more was reported for the closed action: only the progress feedback that got the
    // 410, no cancel feedback, no history entries from the device.
    let log_ = rig.sim.request_log();
    let late: Vec<_> = log_
        .iter()
        .filter(|r| {
            r.at_ms >= closed_at && r.method == "POST" && r.path.contains(&format!("/{action}/"))
        })
        .map(|r| (r.path.clone(), r.status))
        .collect();
    assert!(
        late.len() == 1 && late[0].1 == 410 && late[0].0.contains("/deploymentBase/"),
        "{late:?}"
    );
    assert_eq!(
        rig.history(action).len(),
        entries,
        "{:#?}",
        rig.history(action)
    );
    assert_eq!(rig.sim.action_status(action).as_deref(), Some("canceled"));
    assert!(rig.slot_b_untouched(), "nothing installed");
    assert!(!rig.sb.bootloader_calls().contains("set-primary"));
    assert!(rig.record().is_none(), "record cleared");

    rig.expect_telemetry(&["current", "downloading", "idle"])
        .await;
    rig.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_stops_eyas_with_an_auth_error() {
    let rig = Rig::start("dev-401", fast_polling()).await;
    let action = rig.deploy("1.1.0", 0, AssignOptions::default());
    let conf = rig.config(Some("not-the-token"), "poll_min=1\n");
    // Not run-once: even the daemon stops instead of hammering hawkBit with a bad token.
    let (code, log) = rig
        .eyas(&conf, false, "daemon")
        .wait(Duration::from_secs(30))
        .await;
    assert_eq!(code, Some(1), "{log}");
    assert!(
        log.contains("stopping: hawkBit refused the credentials (401); check auth_token"),
        "{log}"
    );
    assert!(!log.contains("not-the-token"), "the token is never logged");
    let log_ = rig.sim.request_log();
    assert_eq!(log_.len(), 1, "one request, then stop: {log_:#?}");
    assert_eq!(log_[0].status, 401);
    assert_eq!(log_[0].auth_scheme.as_deref(), Some("TargetToken"));
    assert_eq!(rig.sim.action_status(action).as_deref(), Some("running"));
    assert!(rig.history(action).iter().all(|(s, _)| s == "running"));
    assert!(rig.slot_b_untouched());
    rig.observer.wait_lines(1, Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(telemetry(&rig.observer), ["current"]);
    rig.sim.shutdown().await;
}
