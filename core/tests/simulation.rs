//! The `Client` against a scripted hawkBit model on a virtual clock, covering every flow of the
//! issue, including power cuts in the middle of each phase.

// Test-harness style: scenario knobs are set field by field for readability.
#![allow(
    clippy::field_reassign_with_default,
    clippy::type_complexity,
    clippy::while_let_loop,
    clippy::collapsible_if,
    clippy::manual_is_multiple_of
)]

mod sim;

use eyas_core::client::*;
use eyas_core::ddi::ActionId;
use eyas_core::record::Phase;
use eyas_core::time::{Duration, Instant};
use sim::*;

const MAX: usize = 3000;

/// The base-poll requests (`GET …/controller/v1/dev-01`) in the server's log, in order.
fn base_polls(s: &Sim) -> Vec<&Logged> {
    s.server
        .log
        .iter()
        .filter(|l| l.url.ends_with("dev-01"))
        .collect()
}

fn os_only(s: &mut Sim, id: u64, kind: Kind, sizes: &[usize]) {
    s.server
        .assign(id, kind, None, vec![chunk("os", "1.2.0", sizes)]);
    s.server.os_target_version.insert(id, "1.2.0".into());
}

fn finished(id: u64) -> impl FnMut(&Sim) -> bool {
    move |s: &Sim| {
        s.server
            .actions
            .iter()
            .any(|a| a.id == id && !matches!(a.st, St::Running | St::WaitConfirm | St::Canceling))
    }
}

fn last_final(s: &Sim, id: u64) -> String {
    s.feedback_bodies(id)
        .into_iter()
        .rev()
        .find(|b| b.contains("\"closed\"") || b.contains("\"downloaded\""))
        .unwrap_or_default()
}

#[test]
fn happy_path_os_update_reports_success_only_after_reboot() {
    let mut s = Sim::new(Knobs::default());
    os_only(&mut s, 42, Kind::Forced, &[10_000, 3_000]);
    s.drive_bounded(MAX, finished(42));
    assert_eq!(s.server.action(42).st, St::Finished, "{}", summary(&s));
    assert_eq!(s.dev.booted_name(), "B");
    assert_eq!(s.dev.running_version(), "1.2.0");
    assert_eq!(s.dev.boots, 2, "one reboot");
    assert!(
        s.nothing_pending(),
        "the record says closed after the final report"
    );
    assert!(last_final(&s, 42).contains("\"success\""));
    // two downloads, two verifies, one install, one reboot, in this order
    let kinds: Vec<&str> = s
        .dev
        .did
        .iter()
        .filter_map(|(_, d)| match d {
            Did::Download { .. } => Some("dl"),
            Did::Verify(_) => Some("verify"),
            Did::Install { .. } => Some("install"),
            Did::Reboot(_) => Some("reboot"),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["dl", "verify", "dl", "verify", "install", "reboot"]);
    // the record was persisted with Rebooting before the reboot
    let persisted_before_reboot = s
        .dev
        .did
        .iter()
        .rev()
        .skip_while(|(_, d)| !matches!(d, Did::Reboot(_)))
        .find_map(|(_, d)| match d {
            Did::Persist(r) => Some(r.clone()),
            _ => None,
        });
    assert_eq!(
        persisted_before_reboot.map(|r| (r.phase, r.target_slot)),
        Some((Phase::Rebooting, Some("B".try_into().unwrap())))
    );
    s.assert_clean();
    // configData: once after each boot (attributes set) or when asked
    assert!(!s.server.config_puts.is_empty());
    assert!(s.server.config_puts[0].starts_with(r#"{"mode":"merge","data":{"hw_revision":"2"}"#));
}

#[test]
fn etag_304_and_poll_interval_follow_server_sleep() {
    let mut k = Knobs::default();
    k.jitter = 0;
    let mut s = Sim::new(k);
    s.server.sleep = "00:01:40".into();
    s.run_for(Duration::from_secs(1000));
    let polls = base_polls(&s);
    assert!(polls.len() >= 9, "{}", polls.len());
    assert!(
        polls.iter().skip(2).all(|p| p.status == 304),
        "unchanged base ⇒ 304"
    );
    assert!(polls.iter().skip(1).all(|p| p.if_none_match.is_some()));
    for w in polls.windows(2).skip(1) {
        assert_eq!(
            (w[1].t - w[0].t).as_secs(),
            100,
            "server sleep honoured exactly without jitter"
        );
    }
    // ISO-8601 sleep ≥ 1 day, clamped by poll_max
    let mut k = Knobs::default();
    k.jitter = 0;
    k.poll_max = Duration::from_secs(3600);
    let mut s = Sim::new(k);
    s.server.sleep = "PT26H30M".into();
    s.run_for(Duration::from_secs(4 * 3600));
    let polls = base_polls(&s);
    for w in polls.windows(2).skip(1) {
        assert_eq!((w[1].t - w[0].t).as_secs(), 3600);
    }
    // local override wins, min clamps
    let mut k = Knobs::default();
    k.jitter = 0;
    k.poll_override = Some(Duration::from_secs(77));
    let mut s = Sim::new(k);
    s.run_for(Duration::from_secs(1000));
    let polls = base_polls(&s);
    for w in polls.windows(2).skip(1) {
        assert_eq!((w[1].t - w[0].t).as_secs(), 77);
    }
    let mut k = Knobs::default();
    k.jitter = 0;
    let mut s = Sim::new(k);
    s.server.sleep = "PT0.5S".into();
    s.run_for(Duration::from_secs(200));
    let polls = base_polls(&s);
    for w in polls.windows(2).skip(1) {
        assert_eq!((w[1].t - w[0].t).as_secs(), 10, "poll_min clamps PT0.5S");
    }
}

#[test]
fn jitter_is_seeded_and_bounded() {
    let times = |seed: u64| {
        let mut k = Knobs::default();
        k.seed = seed;
        k.jitter = 20;
        let mut s = Sim::new(k);
        s.run_for(Duration::from_secs(5000));
        base_polls(&s)
            .iter()
            .map(|l| l.t.as_millis())
            .collect::<Vec<_>>()
    };
    let a = times(1);
    assert_eq!(a, times(1), "same seed, same schedule");
    assert_ne!(a, times(2), "different seed, different schedule");
    for w in a.windows(2).skip(1) {
        let d = w[1] - w[0];
        assert!((240_000..=360_000).contains(&d), "{d} outside 300 s ± 20 %");
    }
    assert!(a.windows(2).skip(1).any(|w| w[1] - w[0] != 300_000));
}

#[test]
fn multi_chunk_deployment_installs_config_app_then_os() {
    let mut s = Sim::new(Knobs::default());
    s.server.assign(
        5,
        Kind::Forced,
        None,
        vec![
            chunk("os", "2.0", &[5000]),
            chunk("bApp", "3.1", &[2000, 100]),
            chunk("config", "1", &[50]),
        ],
    );
    s.server.os_target_version.insert(5, "2.0".into());
    s.drive_bounded(MAX, finished(5));
    assert_eq!(s.server.action(5).st, St::Finished, "{}", summary(&s));
    let order: Vec<String> = s
        .dev
        .did
        .iter()
        .filter_map(|(_, d)| match d {
            Did::Install { part, .. } => Some(part.clone()),
            Did::ConfigHook { .. } => Some("hook".into()),
            _ => None,
        })
        .collect();
    assert_eq!(order, ["hook", "bApp", "os"]);
    assert_eq!(s.dev.count(|d| matches!(d, Did::Download { .. })), 4);
    s.assert_clean();
}

#[test]
fn application_only_needs_no_reboot() {
    let mut s = Sim::new(Knobs::default());
    s.server.assign(
        6,
        Kind::Soft,
        None,
        vec![chunk("application", "1", &[1000])],
    );
    s.drive_bounded(MAX, finished(6));
    assert_eq!(s.server.action(6).st, St::Finished);
    assert_eq!(s.dev.boots, 1);
    assert_eq!(s.dev.count(|d| matches!(d, Did::Reboot(_))), 0);
    s.assert_clean();
}

#[test]
fn unknown_part_fails_naming_it() {
    let mut s = Sim::new(Knobs::default());
    s.server.assign(
        8,
        Kind::Forced,
        None,
        vec![chunk("firmware-dsp", "1", &[10])],
    );
    s.drive_bounded(MAX, finished(8));
    assert_eq!(s.server.action(8).st, St::Error);
    assert!(
        last_final(&s, 8).contains("unknown chunk part `firmware-dsp`"),
        "{}",
        last_final(&s, 8)
    );
    assert_eq!(s.dev.count(|d| matches!(d, Did::Download { .. })), 0);
    s.assert_clean();
}

#[test]
fn too_many_artifacts_is_a_typed_failure() {
    let mut s = Sim::new(Knobs::default());
    s.server.assign(
        9,
        Kind::Forced,
        None,
        vec![chunk("os", "1", &[1; MAX_PLAN_ARTIFACTS + 1])],
    );
    s.drive_bounded(MAX, finished(9));
    assert_eq!(s.server.action(9).st, St::Error);
    assert!(last_final(&s, 9).contains(&format!("more than {MAX_PLAN_ARTIFACTS} artifacts")));
}

#[test]
fn deployment_over_parser_capacity_is_closed_naming_the_field() {
    let mut s = Sim::new(Knobs::default());
    let chunks = (0..eyas_core::ddi::MAX_CHUNKS + 1)
        .map(|i| chunk("bApp", &i.to_string(), &[]))
        .collect();
    s.server.assign(10, Kind::Forced, None, chunks);
    s.drive_bounded(MAX, finished(10));
    assert_eq!(s.server.action(10).st, St::Error);
    let f = last_final(&s, 10);
    assert!(
        f.contains("field `deployment.chunks` exceeds capacity 16"),
        "{f}"
    );
    assert!(
        s.dev
            .count(|d| matches!(d, Did::Warning(Warning::MalformedResponse { .. })))
            == 1
    );
}

#[test]
fn download_only_closes_with_downloaded() {
    let mut s = Sim::new(Knobs::default());
    s.server.assign(
        11,
        Kind::DownloadOnly,
        None,
        vec![chunk("os", "1.3", &[4000])],
    );
    s.drive_bounded(MAX, finished(11));
    assert_eq!(s.server.action(11).st, St::Downloaded);
    assert!(
        last_final(&s, 11).contains(r#""execution":"downloaded","result":{"finished":"success"}"#)
    );
    assert_eq!(s.dev.count(|d| matches!(d, Did::Install { .. })), 0);
    assert!(s.nothing_pending());
    // telemetry: downloaded, not an update that succeeded
    let phase = |p: TelemetryPhase| move |d: &Did| matches!(d, Did::Telemetry(t) if t.phase == p);
    assert_eq!(s.dev.count(phase(TelemetryPhase::Succeeded)), 0);
    assert_eq!(s.dev.count(phase(TelemetryPhase::Downloaded)), 1);
    s.assert_clean();
}

#[test]
fn maintenance_window_downloads_early_installs_when_open() {
    let mut s = Sim::new(Knobs::default());
    s.server.assign(
        12,
        Kind::Forced,
        Some(false),
        vec![chunk("os", "1.4", &[6000])],
    );
    s.server.os_target_version.insert(12, "1.4".into());
    s.drive_bounded(MAX, |s| s.record_phase() == Some(Phase::AwaitingWindow));
    s.run_for(Duration::from_secs(3600));
    assert_eq!(
        s.dev.count(|d| matches!(d, Did::Install { .. })),
        0,
        "no install while closed"
    );
    assert_eq!(s.dev.count(|d| matches!(d, Did::Verify(_))), 1);
    let opened = s.now;
    s.server.action_mut(12).window = Some(true);
    s.drive_bounded(MAX, finished(12));
    assert_eq!(s.server.action(12).st, St::Finished);
    let installed_at = s
        .dev
        .did
        .iter()
        .find(|(_, d)| matches!(d, Did::Install { .. }))
        .unwrap()
        .0;
    assert!(installed_at >= opened);
    assert_eq!(
        s.dev.count(|d| matches!(d, Did::Download { .. })),
        1,
        "not downloaded twice"
    );
    s.assert_clean();
}

#[test]
fn confirmation_auto_policy() {
    let mut s = Sim::new(Knobs::default());
    os_only(&mut s, 13, Kind::Forced, &[1000]);
    s.server.action_mut(13).st = St::WaitConfirm;
    s.drive_bounded(MAX, finished(13));
    assert_eq!(s.server.action(13).st, St::Finished);
    assert!(s.server.requests_to("/confirmationBase/13/feedback") >= 1);
    assert_eq!(s.dev.count(|d| matches!(d, Did::Ask(_))), 0);
}

#[test]
fn confirmation_ask_denied_then_accepted_later() {
    let mut k = Knobs::default();
    k.confirmation = ConfirmationPolicy::AskShell;
    let mut s = Sim::new(k);
    s.dev.answer = Some(false);
    os_only(&mut s, 14, Kind::Forced, &[1000]);
    s.server.action_mut(14).st = St::WaitConfirm;
    s.run_for(Duration::from_secs(3000));
    assert_eq!(
        s.server.action(14).st,
        St::WaitConfirm,
        "denied stays waiting"
    );
    assert_eq!(s.server.action(14).denials, 1);
    assert_eq!(
        s.dev.count(|d| matches!(d, Did::Ask(_))),
        1,
        "not asked again every poll"
    );
    // the user changes their mind
    s.client
        .handle_event(
            s.now,
            Event::ConfirmationAnswer {
                action: ActionId(14),
                accepted: true,
            },
        )
        .unwrap();
    s.drive_bounded(MAX, finished(14));
    assert_eq!(s.server.action(14).st, St::Finished);
    assert_eq!(
        s.client.handle_event(
            s.now,
            Event::ConfirmationAnswer {
                action: ActionId(99),
                accepted: true
            }
        ),
        Err(EventError::NoConfirmation)
    );
}

/// Time from the confirmation feedback to the first GET of the confirmed deployment.
fn confirm_to_deployment(s: &Sim, id: u64) -> Duration {
    let log = &s.server.log;
    let fb = log
        .iter()
        .find(|l| l.url.contains(&format!("/confirmationBase/{id}/feedback")))
        .expect("confirmation feedback")
        .t;
    let dep = log
        .iter()
        .find(|l| l.method == Method::Get && l.url.contains(&format!("/deploymentBase/{id}")))
        .expect("deployment fetched")
        .t;
    dep - fb
}

#[test]
fn confirmed_deployment_is_polled_for_right_away() {
    // server sleep is 5 min: the deployment must not wait for it once confirmed (nor for the
    // poll floor: once per action the confirmation may poll at once)
    let mut s = Sim::new(Knobs::default());
    os_only(&mut s, 15, Kind::Forced, &[1000]);
    s.server.action_mut(15).st = St::WaitConfirm;
    s.drive_bounded(MAX, finished(15));
    assert_eq!(s.server.action(15).st, St::Finished);
    let waited = confirm_to_deployment(&s, 15);
    assert!(
        waited < Duration::from_secs(1),
        "auto: waited {waited:?}\n{}",
        summary(&s)
    );

    let mut k = Knobs::default();
    k.confirmation = ConfirmationPolicy::AskShell;
    let mut s = Sim::new(k);
    s.dev.answer = Some(true);
    os_only(&mut s, 16, Kind::Forced, &[1000]);
    s.server.action_mut(16).st = St::WaitConfirm;
    s.drive_bounded(MAX, finished(16));
    assert_eq!(s.server.action(16).st, St::Finished);
    let waited = confirm_to_deployment(&s, 16);
    assert!(
        waited < Duration::from_secs(1),
        "ask: waited {waited:?}\n{}",
        summary(&s)
    );
}

#[test]
fn cancel_during_download_is_accepted() {
    let mut s = Sim::new(Knobs::default());
    s.dev.rate = 100; // slow: 20 000 B takes 200 s
    os_only(&mut s, 15, Kind::Forced, &[20_000]);
    s.drive_bounded(MAX, |s| s.dev.files.get(&0).is_some_and(|f| f.len() > 1000));
    s.server.action_mut(15).st = St::Canceling;
    s.drive_bounded(MAX, finished(15));
    assert_eq!(s.server.action(15).st, St::Canceled);
    assert!(s.dev.count(|d| matches!(d, Did::Abort(_))) >= 1);
    assert_eq!(s.dev.count(|d| matches!(d, Did::Install { .. })), 0);
    assert!(s.nothing_pending());
    let fb = s.feedback_bodies(15);
    assert!(
        fb.last()
            .unwrap()
            .contains(r#""execution":"closed","result":{"finished":"success"}"#)
    );
    s.assert_clean();
}

#[test]
fn cancel_during_install_is_rejected_and_update_completes() {
    let mut s = Sim::new(Knobs::default());
    s.dev.install_time = Duration::from_secs(600);
    os_only(&mut s, 16, Kind::Forced, &[1000]);
    s.drive_bounded(MAX, |s| {
        s.dev.count(|d| matches!(d, Did::Install { .. })) == 1
    });
    s.server.action_mut(16).st = St::Canceling;
    s.drive_bounded(MAX, |s| s.server.action(16).st == St::Running);
    assert!(
        s.feedback_bodies(16)
            .iter()
            .any(|b| b.contains(r#""execution":"rejected""#))
    );
    s.drive_bounded(MAX, finished(16));
    assert_eq!(s.server.action(16).st, St::Finished);
    s.assert_clean();
}

#[test]
fn cancel_of_unknown_action_is_accepted_then_new_assignment_runs() {
    let mut s = Sim::new(Knobs::default());
    s.dev.rate = 200;
    os_only(&mut s, 17, Kind::Forced, &[10_000]);
    s.drive_bounded(MAX, |s| s.dev.files.get(&0).is_some_and(|f| !f.is_empty()));
    // a new distribution set is assigned: the old action goes CANCELING first
    s.server.action_mut(17).st = St::Canceling;
    s.server
        .assign(18, Kind::Forced, None, vec![chunk("os", "1.5", &[2000])]);
    s.server.os_target_version.insert(18, "1.5".into());
    s.drive_bounded(MAX, finished(18));
    assert_eq!(s.server.action(17).st, St::Canceled);
    assert_eq!(s.server.action(18).st, St::Finished);
    assert_eq!(s.dev.running_version(), "1.5");
    s.assert_clean();
}

#[test]
fn fallback_reports_failure_and_installed_base() {
    let mut s = Sim::new(Knobs::default());
    s.dev.fallback_on_boot = true;
    os_only(&mut s, 19, Kind::Forced, &[1000]);
    s.drive_bounded(MAX, finished(19));
    assert_eq!(s.server.action(19).st, St::Error);
    let f = last_final(&s, 19);
    assert!(
        f.contains("fell back") && f.contains("running slot A, target was slot B"),
        "{f}"
    );
    assert_eq!(
        s.server.installed_base_puts,
        [r#"{"name":"fw","version":"1.0.0"}"#]
    );
    assert_eq!(s.dev.booted_name(), "A");
    s.assert_clean();
}

#[test]
fn failed_health_check_reports_failure() {
    let mut s = Sim::new(Knobs::default());
    s.dev.health_ok = false;
    os_only(&mut s, 20, Kind::Forced, &[1000]);
    s.server.os_target_version.remove(&20);
    s.drive_bounded(MAX, finished(20));
    assert_eq!(s.server.action(20).st, St::Error);
    assert!(last_final(&s, 20).contains("health check"));
}

#[test]
fn install_and_verify_failures_are_reported_sanitized() {
    let mut s = Sim::new(Knobs::default());
    s.dev.install_fails = true;
    os_only(&mut s, 21, Kind::Forced, &[1000]);
    s.drive_bounded(MAX, finished(21));
    assert_eq!(s.server.action(21).st, St::Error);
    let f = last_final(&s, 21);
    assert!(
        f.contains("Installation failed (os os-module 1.2.0): Compatible (mismatch)"),
        "{f}"
    );
    s.assert_clean();

    let mut s = Sim::new(Knobs::default());
    os_only(&mut s, 22, Kind::Forced, &[1000]);
    s.drive_bounded(MAX, |s| {
        s.dev.count(|d| matches!(d, Did::Download { .. })) == 1
    });
    // the bytes served no longer match the advertised sha256
    s.server.action_mut(22).chunks[0].artifacts[0].data[7] ^= 0xff;
    s.drive_bounded(MAX, finished(22));
    assert_eq!(s.server.action(22).st, St::Error);
    let f = last_final(&s, 22);
    assert!(
        f.contains("Verification failed") && f.contains("(os-1.2.0-0.raucb)"),
        "{f}"
    );
    s.assert_clean();
}

#[test]
fn download_resumes_by_range_after_a_cut() {
    let mut s = Sim::new(Knobs::default());
    s.dev.cut_at = vec![3000, 9000];
    os_only(&mut s, 23, Kind::Forced, &[12_000]);
    s.drive_bounded(MAX, finished(23));
    assert_eq!(s.server.action(23).st, St::Finished);
    let dls: Vec<Option<u64>> = s
        .dev
        .did
        .iter()
        .filter_map(|(_, d)| match d {
            Did::Download { range, .. } => Some(*range),
            _ => None,
        })
        .collect();
    assert_eq!(dls, [None, Some(3000), Some(9000)]);
    assert_eq!(
        s.server.full_downloads[&23], 1,
        "range GETs are not full downloads"
    );
    s.assert_clean();
}

/// One OS update over two artifacts served from `base`; what each download carried.
fn credentials_seen(
    send_auth_on_download: bool,
    base: &str,
    base_is_server: bool,
) -> Vec<(String, Option<String>, bool)> {
    let mut k = Knobs::default();
    k.send_auth_on_download = send_auth_on_download;
    let mut s = Sim::new(k);
    s.server.artifact_base = base.into();
    s.server.artifact_base_is_server = base_is_server;
    os_only(&mut s, 25, Kind::Forced, &[10_000, 3_000]);
    s.drive_bounded(MAX, finished(25));
    assert_eq!(s.server.action(25).st, St::Finished, "{}", summary(&s));
    assert!(last_final(&s, 25).contains("\"success\""));
    s.assert_clean();
    assert_eq!(s.dev.download_credentials.len(), 2);
    assert!(
        s.dev
            .download_credentials
            .iter()
            .all(|(u, ..)| u.starts_with(base))
    );
    s.dev.download_credentials
}

#[test]
fn download_credentials_go_to_the_servers_origin_and_elsewhere_only_when_configured() {
    let token = Some("TargetToken secret".to_string());
    let sent = |seen: &[(String, Option<String>, bool)]| {
        seen.iter().all(|(_, auth, cert)| *auth == token && *cert)
    };
    let withheld = |seen: &[(String, Option<String>, bool)]| {
        seen.iter().all(|(_, auth, cert)| auth.is_none() && !cert)
    };
    // the server's own origin (however spelled) always gets them
    for base in [
        "http://hb.test/art",
        "HTTP://HB.test:80/art",
        "http://user@hb.test/art",
    ] {
        assert!(sent(&credentials_seen(false, base, true)), "{base}");
        assert!(sent(&credentials_seen(true, base, true)), "{base}");
    }
    // a CDN only with send_download_authentication, and the update succeeds either way
    for base in [
        "https://cdn.test/art",
        "https://hb.test/art",
        "http://hb.test:8080/art",
        "http://hb.test@cdn.test/art",
        "http://hb.test.cdn.test/art",
    ] {
        assert!(withheld(&credentials_seen(false, base, false)), "{base}");
        assert!(sent(&credentials_seen(true, base, false)), "{base}");
    }
}

#[test]
fn download_http_404_fails_the_action() {
    let mut s = Sim::new(Knobs::default());
    s.dev.download_http_error = Some(404);
    os_only(&mut s, 24, Kind::Forced, &[1000]);
    s.drive_bounded(MAX, finished(24));
    assert_eq!(s.server.action(24).st, St::Error);
    assert!(last_final(&s, 24).contains("Download failed for os-1.2.0-0.raucb: HTTP 404"));
}

#[test]
fn gone_410_drops_the_action() {
    let mut s = Sim::new(Knobs::default());
    s.dev.rate = 100;
    os_only(&mut s, 25, Kind::Forced, &[20_000]);
    s.drive_bounded(MAX, |s| s.dev.files.get(&0).is_some_and(|f| f.len() > 500));
    // force-quit by the operator: closed server-side without a cancel handshake (the
    // artifact stays reachable, e.g. on a CDN, so the client notices via the base poll)
    s.server.serve_any = true;
    s.server.action_mut(25).st = St::Error;
    s.drive_bounded(MAX, |s| s.client.current_action().is_none());
    assert!(
        s.dev
            .count(|d| matches!(d, Did::Warning(Warning::ActionGone { .. })))
            >= 1
    );
    assert!(s.dev.count(|d| matches!(d, Did::Abort(_))) >= 1);
    assert!(s.nothing_pending());
    assert_eq!(s.dev.count(|d| matches!(d, Did::Install { .. })), 0);
    // download fails because the action is closed: the final feedback gets 410
    let mut s2 = Sim::new(Knobs::default());
    s2.dev.rate = 100;
    os_only(&mut s2, 29, Kind::Forced, &[20_000]);
    s2.drive_bounded(MAX, |s| s.dev.files.get(&0).is_some_and(|f| f.len() > 500));
    s2.server.action_mut(29).st = St::Error;
    s2.drive_bounded(MAX, |s| s.client.current_action().is_none());
    assert!(
        s2.server
            .log
            .iter()
            .any(|l| l.url.ends_with("/deploymentBase/29/feedback") && l.status == 410)
    );
    assert!(
        s2.dev
            .count(|d| matches!(d, Did::Warning(Warning::ActionGone { .. })))
            >= 1
    );
    assert!(s2.nothing_pending());
    // nothing is sent for the dead action afterwards
    let before = s.server.requests_to("/deploymentBase/25/feedback");
    s.run_for(Duration::from_secs(3000));
    assert_eq!(s.server.requests_to("/deploymentBase/25/feedback"), before);
}

#[test]
fn quota_429_stops_intermediate_feedback_without_retry() {
    let mut k = Knobs::default();
    k.step = 1;
    k.progress_budget = 900;
    let mut s = Sim::new(k);
    s.server.max_intermediate = 6;
    s.dev.rate = 200;
    os_only(&mut s, 26, Kind::Forced, &[20_000]);
    s.drive_bounded(MAX, finished(26));
    assert_eq!(
        s.server.action(26).st,
        St::Finished,
        "final closed still accepted"
    );
    let n429 = s
        .server
        .log
        .iter()
        .filter(|l| l.url.contains("/deploymentBase/26/feedback") && l.status == 429)
        .count();
    assert_eq!(n429, 1, "one quota 429, then no more intermediate feedback");
    assert!(
        s.dev
            .count(|d| matches!(d, Did::Warning(Warning::QuotaExceeded { .. })))
            == 1
    );
}

#[test]
fn progress_budget_bounds_status_entries() {
    for budget in [5u16, 20, 60] {
        let mut k = Knobs::default();
        k.step = 1;
        k.progress_budget = budget;
        let mut s = Sim::new(k);
        s.dev.rate = 100;
        s.dev.cut_at = vec![500, 1500];
        os_only(&mut s, 27, Kind::Forced, &[6000, 6000]);
        s.drive_bounded(20_000, finished(27));
        assert_eq!(s.server.action(27).st, St::Finished);
        let n = s.server.action(27).intermediate;
        assert!(n <= u32::from(budget), "budget {budget}: {n} entries");
        assert!(
            n >= 3,
            "budget {budget}: {n} entries (progress must be reported)"
        );
    }
}

#[test]
fn unauthorized_401_stops_the_client() {
    let mut s = Sim::new(Knobs::default());
    s.server.auth_ok = false;
    s.run_for(Duration::from_secs(100));
    assert_eq!(s.client.stopped(), Some(StopReason::Unauthorized));
    assert_eq!(
        s.dev
            .count(|d| matches!(d, Did::Stopped(StopReason::Unauthorized))),
        1
    );
    let n = s.server.log.len();
    assert_eq!(n, 1, "no request after the 401");
    assert_eq!(s.client.poll_timeout(), None);
}

#[test]
fn server_errors_back_off_exponentially_with_cap_and_recover() {
    let mut k = Knobs::default();
    k.poll_min = Duration::from_secs(1);
    let mut s = Sim::new(k);
    s.dev.attrs.clear();
    s.boot();
    s.server.sleep = "00:00:01".into();
    for _ in 0..12 {
        s.server.faults.push_back(("", Fault::Status(503)));
    }
    s.server.faults.push_back(("", Fault::Network));
    s.server.faults.push_back(("", Fault::Status(429)));
    s.run_for(Duration::from_secs(3 * 3600));
    let t: Vec<u64> = s
        .server
        .log
        .iter()
        .take(15)
        .map(|l| l.t.as_millis())
        .collect();
    let gaps: Vec<u64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    // 5 s doubling, jitter 50–100 %, capped at 600 s
    for (i, g) in gaps.iter().enumerate() {
        let cap = (5_000u64 << i.min(20)).min(600_000);
        assert!(
            *g >= cap / 2 && *g <= cap,
            "gap {i} = {g} not in [{}, {cap}]",
            cap / 2
        );
    }
    assert!(gaps[8] > gaps[1] * 8);
    let after = &s.server.log[15..];
    assert!(
        after.iter().all(|l| l.status == 200 || l.status == 304),
        "recovered"
    );
    assert!(after.len() > 100, "polling at the server rate again");
}

#[test]
fn feedback_5xx_is_retried_until_accepted() {
    let mut s = Sim::new(Knobs::default());
    os_only(&mut s, 28, Kind::Forced, &[1000]);
    s.server.faults.push_back(("/feedback", Fault::Status(500)));
    s.server.faults.push_back(("/feedback", Fault::Network));
    s.drive_bounded(MAX, finished(28));
    assert_eq!(s.server.action(28).st, St::Finished);
}

#[test]
fn config_data_sent_after_boot_and_when_requested() {
    let mut s = Sim::new(Knobs::default());
    s.run_for(Duration::from_secs(600));
    assert_eq!(
        s.server.config_puts.len(),
        1,
        "once after boot (and the link is then gone)"
    );
    s.server.attrs_requested = true;
    s.run_for(Duration::from_secs(700));
    assert_eq!(s.server.config_puts.len(), 2, "again when the server asks");
    // without attributes the shell is asked for them
    let mut c = make_client(&Knobs::default());
    c.handle_boot(
        Instant::from_secs(1),
        BootReport {
            record: None,
            booted: None,
            rejected: None,
            running: None,
        },
    );
    let mut buf = vec![0u8; REQUEST_BUF_LEN];
    let r = c
        .poll_request(Instant::from_secs(1), &mut buf)
        .unwrap()
        .unwrap();
    assert_eq!(r.kind, RequestKind::Poll);
    let body =
        r#"{"config":{"polling":{"sleep":"00:05:00"}},"_links":{"configData":{"href":"x"}}}"#;
    c.handle_response(
        Instant::from_secs(1),
        Response {
            status: 200,
            etag: None,
            body: body.as_bytes(),
        },
    )
    .unwrap();
    assert_eq!(c.poll_action(), Some(Action::AttributesRequested));
    assert!(
        c.set_attributes(&[("bad\u{1}key", "v")]).is_err(),
        "charset checked before sending"
    );
    c.set_attributes(&[("k", "v")]).unwrap();
    let r = c
        .poll_request(Instant::from_secs(1), &mut buf)
        .unwrap()
        .unwrap();
    assert_eq!((r.kind, r.method), (RequestKind::ConfigData, Method::Put));
    assert_eq!(r.body, br#"{"mode":"merge","data":{"k":"v"}}"#);
}

// ------------------------------------------------------------------------------------------------
// power cuts in the middle of each phase

fn cut_once(
    pred: impl Fn(&Device, &Client) -> bool + 'static,
) -> Box<dyn FnMut(&Device, &Client) -> bool> {
    let mut fired = false;
    Box::new(move |d, c| {
        if !fired && pred(d, c) {
            fired = true;
            true
        } else {
            false
        }
    })
}

fn phase_of(c: &Client) -> Option<Phase> {
    c.record().map(|r| r.phase)
}

#[test]
fn power_cut_while_downloading_resumes_from_record() {
    let mut s = Sim::new(Knobs::default());
    os_only(&mut s, 30, Kind::Forced, &[5000, 5000, 5000]);
    s.power_cut = Some(cut_once(|_, c| {
        c.record()
            .is_some_and(|r| r.next_artifact == 1 && r.phase == Phase::Downloading)
    }));
    s.drive_bounded(MAX, finished(30));
    assert_eq!(s.power_cuts, 1);
    assert_eq!(s.server.action(30).st, St::Finished);
    let dls: Vec<u8> = s
        .dev
        .did
        .iter()
        .filter_map(|(_, d)| match d {
            Did::Download { artifact, .. } => Some(*artifact),
            _ => None,
        })
        .collect();
    assert_eq!(dls, [0, 1, 2], "artifact 0 is not downloaded again");
    s.assert_clean();
}

#[test]
fn power_cut_while_awaiting_window() {
    let mut s = Sim::new(Knobs::default());
    s.server.assign(
        31,
        Kind::Forced,
        Some(false),
        vec![chunk("os", "1.6", &[3000])],
    );
    s.server.os_target_version.insert(31, "1.6".into());
    s.power_cut = Some(cut_once(|_, c| phase_of(c) == Some(Phase::AwaitingWindow)));
    s.drive_bounded(MAX, |s| s.power_cuts == 1);
    s.run_for(Duration::from_secs(1200));
    assert_eq!(
        s.record_phase(),
        Some(Phase::AwaitingWindow),
        "restored, still waiting"
    );
    assert_eq!(
        s.dev.count(|d| matches!(d, Did::Download { .. })),
        1,
        "no re-download"
    );
    s.server.action_mut(31).window = Some(true);
    s.drive_bounded(MAX, finished(31));
    assert_eq!(s.server.action(31).st, St::Finished);
    s.assert_clean();
}

#[test]
fn power_cut_while_installing_retries_then_gives_up() {
    // one cut: the install is retried (attempt 2) and succeeds
    let mut s = Sim::new(Knobs::default());
    os_only(&mut s, 32, Kind::Forced, &[2000]);
    s.power_cut = Some(cut_once(|d, c| {
        phase_of(c) == Some(Phase::Installing)
            && matches!(d.did.last(), Some((_, Did::Install { .. })))
    }));
    s.drive_bounded(MAX, finished(32));
    assert_eq!(s.server.action(32).st, St::Finished);
    let attempts: Vec<u8> = s
        .dev
        .did
        .iter()
        .filter_map(|(_, d)| match d {
            Did::Install { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, [1, 2]);
    // cut on every install: fails after boot_attempts
    let mut s = Sim::new(Knobs::default());
    os_only(&mut s, 33, Kind::Forced, &[2000]);
    s.power_cut = Some(Box::new(|d: &Device, c: &Client| {
        phase_of(c) == Some(Phase::Installing)
            && matches!(d.did.last(), Some((_, Did::Install { .. })))
    }));
    s.drive_bounded(MAX, finished(33));
    assert_eq!(s.server.action(33).st, St::Error);
    assert!(last_final(&s, 33).contains("interrupted"));
    assert_eq!(s.dev.count(|d| matches!(d, Did::Install { .. })), 3);
}

#[test]
fn power_cut_after_install_before_reboot_still_verifies_the_boot() {
    let mut s = Sim::new(Knobs::default());
    os_only(&mut s, 34, Kind::Forced, &[2000]);
    // the cut hits right after the Rebooting record is stored (before the Reboot action)
    s.power_cut = Some(cut_once(|_, c| phase_of(c) == Some(Phase::Rebooting)));
    s.drive_bounded(MAX, finished(34));
    assert_eq!(s.server.action(34).st, St::Finished);
    assert_eq!(s.dev.booted_name(), "B");
}

#[test]
fn power_cut_while_reporting_resends_the_final_result() {
    let mut s = Sim::new(Knobs::default());
    os_only(&mut s, 35, Kind::Forced, &[2000]);
    s.power_cut = Some(cut_once(|_, c| {
        matches!(phase_of(c), Some(Phase::Reporting { success: true, .. }))
    }));
    s.drive_bounded(MAX, finished(35));
    assert_eq!(s.power_cuts, 1);
    assert_eq!(s.server.action(35).st, St::Finished);
    assert!(s.nothing_pending());
}

#[test]
fn corrupt_record_is_reported_never_trusted() {
    let mut s = Sim::new(Knobs::default());
    os_only(&mut s, 36, Kind::Forced, &[3000, 3000]);
    s.power_cut = Some(cut_once(|d, c| {
        c.record().is_some_and(|r| r.next_artifact == 1) && d.record.is_some()
    }));
    s.dev.corrupt_record_on_boot = true;
    s.drive_bounded(MAX, finished(36));
    assert!(
        s.dev
            .count(|d| matches!(d, Did::Warning(Warning::RecordCorrupt(_))))
            == 1
    );
    // not trusted: artifact 0 is downloaded again (the cut came right after its record)
    let dls: Vec<u8> = s
        .dev
        .did
        .iter()
        .filter_map(|(_, d)| match d {
            Did::Download { artifact, .. } => Some(*artifact),
            _ => None,
        })
        .collect();
    assert_eq!(dls, [0, 0, 1]);
    assert_eq!(s.server.action(36).st, St::Finished);
}

#[test]
fn many_seeds_random_faults_never_break_invariants() {
    for seed in 1..=12u64 {
        let mut rng = Rng::new(seed);
        let mut k = Knobs::default();
        k.seed = seed;
        k.step = 5;
        let mut s = Sim::new(k);
        s.dev.cut_at = vec![rng.next() % 4000 + 1];
        s.server.sleep = ["00:00:30", "PT45S", "00:02:00"][(rng.next() % 3) as usize].into();
        for _ in 0..(rng.next() % 6) {
            let f = if rng.next() % 2 == 0 {
                Fault::Status(503)
            } else {
                Fault::Network
            };
            s.server.faults.push_back(([""; 1][0], f));
        }
        let kind = [Kind::Forced, Kind::Soft][(rng.next() % 2) as usize];
        os_only(
            &mut s,
            40 + seed,
            kind,
            &[4000, (rng.next() % 3000) as usize + 1],
        );
        let cut_phase = rng.next() % 4;
        s.power_cut = Some(cut_once(move |_, c| match cut_phase {
            0 => phase_of(c) == Some(Phase::Downloading),
            1 => phase_of(c) == Some(Phase::Installing),
            2 => phase_of(c) == Some(Phase::Rebooting),
            _ => matches!(phase_of(c), Some(Phase::Reporting { .. })),
        }));
        s.drive_bounded(MAX, finished(40 + seed));
        assert_eq!(
            s.server.action(40 + seed).st,
            St::Finished,
            "seed {seed}\n{}",
            summary(&s)
        );
        s.assert_clean();
    }
}

#[test]
fn happy_path_request_transcript() {
    let mut k = Knobs::default();
    k.step = 50;
    let mut s = Sim::new(k);
    os_only(&mut s, 50, Kind::Forced, &[8192]);
    s.drive_bounded(MAX, finished(50));
    s.run_for(Duration::from_secs(10));
    let lines: Vec<String> = s
        .server
        .log
        .iter()
        .map(|l| {
            let path = l.url.trim_start_matches(BASE);
            let path = path.split('?').next().unwrap_or(path);
            let what = if l.body.contains("\"closed\"") {
                " closed"
            } else if l.body.contains("\"proceeding\"") {
                " proceeding"
            } else {
                ""
            };
            format!(
                "{:?} {}{what} -> {}",
                l.method,
                if path.is_empty() { "/" } else { path },
                l.status
            )
        })
        .collect();
    // configData only when the server asks (its link in the base poll), after the work the
    // same poll brought
    let want = [
        "Get / -> 200", // asks for configData, offers action 50
        "Get /deploymentBase/50 -> 200",
        "Post /deploymentBase/50/feedback proceeding -> 200", // "Downloading 1 artifact(s)"
        "Put /configData -> 200",
        "Post /deploymentBase/50/feedback proceeding -> 200", // "Downloading: 50%"
        "Post /deploymentBase/50/feedback proceeding -> 200", // "Installing: 50%"
        // reboot into slot B, health check passed, marked good
        "Post /deploymentBase/50/feedback closed -> 200",
        "Get / -> 200", // asks again after FINISHED
        "Put /configData -> 200",
        "Get / -> 200",
    ];
    assert_eq!(lines, want, "{lines:#?}");
}

#[test]
fn restored_artifacts_are_verified_again_and_refetched_if_lost() {
    // cut while downloading artifact 1: artifact 0 is re-verified, not re-downloaded
    let mut s = Sim::new(Knobs::default());
    os_only(&mut s, 60, Kind::Forced, &[5000, 5000]);
    s.power_cut = Some(cut_once(|d, c| {
        c.record().is_some_and(|r| r.next_artifact == 1)
            && matches!(d.did.last(), Some((_, Did::Download { artifact: 1, .. })))
    }));
    s.drive_bounded(MAX, finished(60));
    assert_eq!(s.server.action(60).st, St::Finished);
    let seq: Vec<String> = s
        .dev
        .did
        .iter()
        .filter_map(|(_, d)| match d {
            Did::Download { artifact, .. } => Some(format!("dl{artifact}")),
            Did::Verify(a) => Some(format!("v{a}")),
            _ => None,
        })
        .collect();
    assert_eq!(seq, ["dl0", "v0", "dl1", "v0", "dl1", "v1"]);

    // files lost while waiting for the window: verification fails, download again, install
    let mut s = Sim::new(Knobs::default());
    s.server.assign(
        61,
        Kind::Forced,
        Some(false),
        vec![chunk("os", "1.7", &[3000, 2000])],
    );
    s.server.os_target_version.insert(61, "1.7".into());
    s.drive_bounded(MAX, |s| s.record_phase() == Some(Phase::AwaitingWindow));
    s.dev.files.clear();
    s.boot();
    s.server.action_mut(61).window = Some(true);
    s.drive_bounded(MAX, finished(61));
    assert_eq!(s.server.action(61).st, St::Finished, "{}", summary(&s));
    assert_eq!(s.dev.count(|d| matches!(d, Did::Download { .. })), 4);
    assert_eq!(s.dev.count(|d| matches!(d, Did::Install { .. })), 1);
    s.assert_clean();
}

#[test]
fn reboot_mid_download_resumes_by_range_from_the_checkpoint() {
    let mut k = Knobs::default();
    k.step = 10;
    let mut s = Sim::new(k);
    s.dev.rate = 1000;
    os_only(&mut s, 62, Kind::Forced, &[20_000]);
    s.power_cut = Some(cut_once(|d, _| {
        d.files.get(&0).is_some_and(|f| f.len() >= 13_000)
    }));
    s.drive_bounded(MAX, finished(62));
    assert_eq!(s.power_cuts, 1);
    assert_eq!(s.server.action(62).st, St::Finished);
    let dls: Vec<Option<u64>> = s
        .dev
        .did
        .iter()
        .filter_map(|(_, d)| match d {
            Did::Download { range, .. } => Some(*range),
            _ => None,
        })
        .collect();
    assert_eq!(dls.len(), 2);
    assert_eq!(dls[0], None);
    let resumed = dls[1].expect("resumed by range");
    assert!((10_000..=13_000).contains(&resumed), "{resumed}");
    assert_eq!(s.server.full_downloads[&62], 1);
    s.assert_clean();
}

// ------------------------------------------------------------------------------------------------
// the boot path over several RAUC bootname sets: verdicts never depend on the names

/// Bootname sets seen on real boards: A/B (U-Boot), a/b, system0/system1 (Barebox), names with
/// dots and dashes, and three slots.
const BOOTNAME_SETS: &[&[&str]] = &[
    &["A", "B"],
    &["a", "b"],
    &["system0", "system1"],
    &["rootfs.0", "rootfs-1"],
    &["s0", "s1", "s2"],
];

fn sim_with(names: &[&'static str]) -> Sim {
    let mut k = Knobs::default();
    k.bootnames = names.to_vec();
    Sim::new(k)
}

/// The record of a closed action was stored (what replaced clearing it).
fn closed_record(d: &Did) -> bool {
    matches!(d, Did::Persist(r) if r.phase == Phase::Closed)
}

fn position(s: &Sim, f: impl Fn(&Did) -> bool) -> Option<usize> {
    s.dev.did.iter().position(|(_, d)| f(d))
}

#[test]
fn good_update_succeeds_and_is_marked_good_on_every_bootname_set() {
    for names in BOOTNAME_SETS {
        let mut s = sim_with(names);
        os_only(&mut s, 50, Kind::Forced, &[1000]);
        s.drive_bounded(MAX, finished(50));
        assert_eq!(s.server.action(50).st, St::Finished, "{names:?}");
        let f = last_final(&s, 50);
        assert!(
            f.contains(&format!("(slot {})", names[1])),
            "{names:?}: {f}"
        );
        assert_eq!(s.dev.booted_name(), names[1]);
        assert!(s.dev.good[1], "{names:?}: the new slot is marked good");
        assert_eq!(s.dev.primary_name(), names[1]);
        // the mark good came before the success report went out
        let marked = position(&s, |d| {
            *d == Did::Mark(names[1].to_string(), SlotMark::Good)
        });
        let cleared = s.dev.did.iter().rposition(|(_, d)| closed_record(d));
        assert!(marked.is_some() && marked < cleared, "{names:?}");
        s.assert_clean();
        if names.len() == 3 {
            // the next update goes to the third slot, judged the same way
            s.server
                .assign(51, Kind::Forced, None, vec![chunk("os", "1.3.0", &[500])]);
            s.server.os_target_version.insert(51, "1.3.0".into());
            s.drive_bounded(MAX, finished(51));
            assert_eq!(s.server.action(51).st, St::Finished);
            assert_eq!(s.dev.booted_name(), names[2]);
            assert!(last_final(&s, 51).contains(&format!("(slot {})", names[2])));
        }
    }
}

#[test]
fn fallback_is_reported_with_both_bootnames_on_every_set() {
    for names in BOOTNAME_SETS {
        let mut s = sim_with(names);
        s.dev.fallback_on_boot = true;
        os_only(&mut s, 52, Kind::Forced, &[1000]);
        s.drive_bounded(MAX, finished(52));
        assert_eq!(s.server.action(52).st, St::Error, "{names:?}");
        let f = last_final(&s, 52);
        let want = format!("running slot {}, target was slot {}", names[0], names[1]);
        assert!(f.contains(&want), "{names:?}: {f}");
        assert!(s.dev.bad[1], "{names:?}: the failed target is marked bad");
        assert!(s.dev.good[0], "{names:?}: the running slot is marked good");
        assert_eq!(s.dev.primary_name(), names[0]);
        assert_eq!(
            s.server.installed_base_puts,
            [r#"{"name":"fw","version":"1.0.0"}"#]
        );
        s.assert_clean();
    }
}

#[test]
fn failed_health_check_marks_bad_reports_then_reboots_back_on_every_set() {
    for names in BOOTNAME_SETS {
        let mut s = sim_with(names);
        s.dev.health_ok = false;
        os_only(&mut s, 53, Kind::Forced, &[1000]);
        s.server.os_target_version.remove(&53);
        s.drive_bounded(MAX, |s| {
            s.dev.count(|d| matches!(d, Did::RebootBack(_))) == 1 && s.dev.boots == 3
        });
        s.run_for(Duration::from_secs(60));
        assert_eq!(s.server.action(53).st, St::Error, "{names:?}");
        assert!(last_final(&s, 53).contains("health check"));
        assert!(s.dev.bad[1], "{names:?}");
        // remembered as rejected, then forgotten once the device runs the old slot again
        assert!(
            s.dev
                .did
                .iter()
                .any(|(_, d)| *d == Did::Remember(Some(names[1].to_string()))),
            "{names:?}"
        );
        assert_eq!(s.dev.rejected, None);
        assert_eq!(s.dev.booted_name(), names[0]);
        assert_eq!(s.dev.primary_name(), names[0]);
        assert!(s.dev.good[0]);
        // the reboot back waits for the report (the record says closed on its acknowledgement)
        let back = position(&s, |d| matches!(d, Did::RebootBack(_))).unwrap();
        assert_eq!(
            s.dev.did[back].1,
            Did::RebootBack(Some(names[0].to_string())),
            "{names:?}: back to the slot the update was installed from"
        );
        let cleared = s.dev.did[..back]
            .iter()
            .rposition(|(_, d)| closed_record(d));
        let rebooted = position(&s, |d| matches!(d, Did::Reboot(_))).unwrap();
        assert!(cleared.is_some_and(|c| c > rebooted), "{names:?}");
        // the rejected slot was never marked good
        assert!(
            !s.dev
                .did
                .iter()
                .any(|(_, d)| *d == Did::Mark(names[1].to_string(), SlotMark::Good))
        );
        s.assert_clean();
    }
}

#[test]
fn refused_mark_good_is_a_failure_not_a_success() {
    let mut s = sim_with(&["system0", "system1"]);
    os_only(&mut s, 54, Kind::Forced, &[1000]);
    s.server.os_target_version.remove(&54);
    s.drive_bounded(MAX, |s| {
        s.dev.count(|d| matches!(d, Did::Install { .. })) == 1
    });
    s.dev.marks_fail = true;
    s.drive_bounded(MAX, finished(54));
    assert_eq!(s.server.action(54).st, St::Error);
    assert!(last_final(&s, 54).contains("could not be marked good"));
    assert_eq!(s.client.last_failure(), Some(Failure::MarkGood));
}

#[test]
fn unknown_booted_slot_stops_until_boot_attempts_then_reports_failure() {
    let mut s = sim_with(&["system0", "system1"]);
    os_only(&mut s, 55, Kind::Forced, &[1000]);
    s.drive_bounded(MAX, |s| {
        s.dev.count(|d| matches!(d, Did::Install { .. })) == 1
    });
    s.dev.booted_unknown = true;
    s.drive_bounded(MAX, |s| s.client.stopped().is_some());
    assert_eq!(s.client.stopped(), Some(StopReason::BootedSlotUnknown));
    assert_eq!(s.record_phase(), Some(Phase::Rebooting));
    // the service manager starts eyas again (each start stores its count first)
    s.boot();
    s.step();
    assert_eq!(s.client.stopped(), Some(StopReason::BootedSlotUnknown));
    s.boot();
    s.step();
    assert_eq!(s.client.stopped(), None, "third start: give up and report");
    s.drive_bounded(MAX, finished(55));
    assert_eq!(s.server.action(55).st, St::Error);
    assert!(last_final(&s, 55).contains("could not be told"));
    assert_eq!(s.client.last_failure(), Some(Failure::BootedSlotUnknown));
    // nothing was marked after the reboot, on a slot nobody could name
    let rebooted = position(&s, |d| matches!(d, Did::Reboot(_))).unwrap();
    assert!(
        !s.dev.did[rebooted..]
            .iter()
            .any(|(_, d)| matches!(d, Did::Mark(..)))
    );
}

#[test]
fn failure_kinds_reach_telemetry_once() {
    let mut s = sim_with(&["A", "B"]);
    s.dev.fallback_on_boot = true;
    os_only(&mut s, 56, Kind::Forced, &[1000]);
    s.drive_bounded(MAX, finished(56));
    let failures: Vec<_> = s
        .dev
        .did
        .iter()
        .filter_map(|(_, d)| match d {
            Did::Telemetry(t) if t.phase == TelemetryPhase::Failed => Some(t.failure),
            _ => None,
        })
        .collect();
    assert_eq!(failures, [Some(Failure::FellBack)]);
    assert_eq!(Failure::FellBack.error_code(), 400);
}

// ------------------------------------------------------------------------------------------------
// hostile or broken servers: no retry storms, nothing redone, polling never blocked

fn count(s: &Sim, f: impl Fn(&Did) -> bool) -> usize {
    s.dev.count(f)
}

fn closed_feedbacks(s: &Sim, id: u64) -> usize {
    s.server
        .log
        .iter()
        .filter(|l| {
            l.url.ends_with(&format!("/deploymentBase/{id}/feedback"))
                && l.body.contains("\"closed\"")
        })
        .count()
}

/// hawkBit refuses the final feedback (400) while it still offers the action: the result is
/// kept and sent again with a growing backoff; nothing is downloaded or installed again.
#[test]
fn refused_final_feedback_is_retried_with_backoff_and_the_action_never_redone() {
    let mut s = Sim::new(Knobs::default());
    s.server.assign(
        70,
        Kind::Forced,
        None,
        vec![chunk("application", "2.0", &[1000])],
    );
    s.server.sticky.push((
        "/deploymentBase/70/feedback",
        "\"closed\"",
        Fault::Status(400),
    ));
    s.drive_bounded(MAX, |s| closed_feedbacks(s, 70) >= 1);
    s.run_for(Duration::from_secs(3600));
    assert_eq!(
        count(&s, |d| matches!(d, Did::Install { .. })),
        1,
        "installed once"
    );
    assert_eq!(
        count(&s, |d| matches!(d, Did::Download { .. })),
        1,
        "downloaded once"
    );
    let tries = closed_feedbacks(&s, 70);
    // backoff 5 s doubling to the 10 min cap: about 12 tries in an hour, never a storm
    assert!(
        (5..=20).contains(&tries),
        "{tries} tries in an hour\n{}",
        summary(&s)
    );
    let gaps: Vec<Duration> = s
        .server
        .log
        .iter()
        .filter(|l| l.url.ends_with("/deploymentBase/70/feedback") && l.body.contains("\"closed\""))
        .map(|l| l.t)
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| w[1] - w[0])
        .collect();
    assert!(
        gaps.windows(2)
            .all(|w| w[1].as_millis() + 1000 >= w[0].as_millis() / 2),
        "backoff does not shrink: {gaps:?}"
    );
    // once hawkBit takes it, the action closes and is remembered
    s.server.sticky.clear();
    s.drive_bounded(MAX, finished(70));
    assert_eq!(s.server.action(70).st, St::Finished);
    assert_eq!(s.record_phase(), Some(eyas_core::record::Phase::Closed));
}

/// A stale cache keeps offering an action that was closed here: it is not run again, not
/// after a restart either, and the base polls keep the poll minimum.
#[test]
fn closed_action_offered_again_is_never_run_again() {
    let mut s = Sim::new(Knobs::default());
    s.server.assign(
        71,
        Kind::Forced,
        None,
        vec![chunk("application", "2.0", &[1000])],
    );
    s.drive_bounded(MAX, finished(71));
    let polls_before = base_polls(&s).len();
    // the server forgets that it is finished and offers it again, for an hour
    s.server.action_mut(71).st = St::Running;
    let t0 = s.now;
    s.run_for(Duration::from_secs(3600));
    assert_eq!(count(&s, |d| matches!(d, Did::Install { .. })), 1);
    assert_eq!(count(&s, |d| matches!(d, Did::Download { .. })), 1);
    assert_eq!(
        s.server.requests_to("/deploymentBase/71?"),
        1,
        "fetched once, at the start"
    );
    let polls = base_polls(&s).len() - polls_before;
    let poll_min = Knobs::default().poll_min;
    assert!(
        polls as u64 <= (s.now - t0).as_millis() / poll_min.as_millis() + 1,
        "{polls} polls in an hour"
    );
    let warned = count(
        &s,
        |d| matches!(d, Did::Warning(Warning::ClosedActionOffered { action }) if action.0 == 71),
    );
    assert_eq!(warned, 1, "said once");
    // a restart reads the closed action from the record
    s.boot();
    s.run_for(Duration::from_secs(600));
    assert_eq!(
        count(&s, |d| matches!(d, Did::Install { .. })),
        1,
        "not after a restart"
    );
    assert_eq!(s.server.requests_to("/deploymentBase/71?"), 1);
}

/// configData refused with 503 forever: polling goes on at its pace, the PUT is retried only
/// when a poll asks again, and a deployment still runs.
#[test]
fn failing_config_data_never_blocks_polling_or_deployments() {
    let mut s = Sim::new(Knobs::default());
    s.server
        .sticky
        .push(("/configData", "", Fault::Status(503)));
    s.server.attrs_requested = true;
    s.run_for(Duration::from_secs(1800));
    let polls = base_polls(&s).len();
    let puts = s.server.requests_to("/configData");
    assert!(polls >= 5, "{polls} polls\n{}", summary(&s));
    assert!(puts <= polls, "{puts} PUTs for {polls} polls");
    s.server.assign(
        72,
        Kind::Forced,
        None,
        vec![chunk("application", "2.0", &[1000])],
    );
    s.drive_bounded(MAX, finished(72));
    assert_eq!(s.server.action(72).st, St::Finished);
}

/// configData goes out only when the server asks (its link), not on every start.
#[test]
fn config_data_only_when_asked() {
    let mut s = Sim::new(Knobs::default());
    s.server.attrs_requested = false;
    s.run_for(Duration::from_secs(600));
    assert_eq!(s.server.requests_to("/configData"), 0);
    s.server.attrs_requested = true;
    s.run_for(Duration::from_secs(600));
    assert_eq!(s.server.requests_to("/configData"), 1);
}

/// One dropped connection: the poll is retried after the backoff (5 s, doubling), not after
/// the server's `sleep` of a day.
#[test]
fn network_error_retries_after_backoff_not_after_the_server_sleep() {
    let mut k = Knobs::default();
    k.poll_max = Duration::from_secs(24 * 3600);
    let mut s = Sim::new(k);
    s.server.sleep = "24:00:00".into();
    s.run_for(Duration::from_secs(30));
    let first = base_polls(&s).len();
    assert!(first >= 1);
    s.server.faults.push_back(("", Fault::Network));
    // the next poll is a day away: bring it forward by a restart of the poll timer
    s.boot();
    s.run_for(Duration::from_secs(120));
    let after: Vec<Instant> = base_polls(&s).iter().map(|l| l.t).collect();
    assert!(
        after.len() > first + 1,
        "retried within two minutes after the network error\n{}",
        summary(&s)
    );
}

/// A deploymentBase that is not JSON is closed as failed with the byte offset, once; it is not
/// fetched again and again.
#[test]
fn deployment_that_is_not_json_is_reported_with_the_offset() {
    let mut s = Sim::new(Knobs::default());
    s.server.assign(
        73,
        Kind::Forced,
        None,
        vec![chunk("application", "2.0", &[1000])],
    );
    s.server.raw_deployments.insert(
        73,
        r#"{"id":"73","deployment":{"download":"forced",,}"#.into(),
    );
    s.drive_bounded(MAX, finished(73));
    assert_eq!(s.server.action(73).st, St::Error);
    let f = last_final(&s, 73);
    assert!(f.contains("malformed JSON at byte "), "{f}");
    s.run_for(Duration::from_secs(600));
    assert_eq!(s.server.requests_to("/deploymentBase/73?"), 1);
    assert_eq!(count(&s, |d| matches!(d, Did::Download { .. })), 0);
}

/// A download that cannot succeed here fails at once with its own reason and code, not after
/// ten retries as "interrupted".
#[test]
fn refused_downloads_fail_at_once_with_their_own_reason() {
    for (refusal, why, failure, text) in [
        (
            DownloadRefusal::FileName,
            "artifact file name \"../x\" refused: contains '..'",
            Failure::ArtifactName,
            "Artifact file name refused",
        ),
        (
            DownloadRefusal::NoSpace,
            "needs 1000 more bytes but only 10 are free in /data",
            Failure::NoSpace,
            "Not enough space",
        ),
        (
            DownloadRefusal::Size,
            "the server sent 0 bytes, hawkBit announced 1000",
            Failure::ArtifactSize,
            "Artifact size not as announced",
        ),
    ] {
        let mut s = Sim::new(Knobs::default());
        s.dev.download_refusal = Some((refusal, why.to_string()));
        os_only(&mut s, 74, Kind::Forced, &[1000]);
        s.drive_bounded(MAX, finished(74));
        assert_eq!(s.server.action(74).st, St::Error);
        let f = last_final(&s, 74);
        assert!(
            f.contains(text) && f.contains(&why.replace('"', "\\\"")),
            "{f}"
        );
        assert_eq!(
            count(&s, |d| matches!(d, Did::Download { .. })),
            1,
            "not retried"
        );
        assert_eq!(s.client.last_failure(), Some(failure));
    }
}

/// A download given up after its retries says what happened last and how often it was tried.
#[test]
fn given_up_download_names_the_last_error_and_the_attempts() {
    let mut s = Sim::new(Knobs::default());
    os_only(&mut s, 75, Kind::Forced, &[50_000]);
    s.dev.cut_at = (1..=20).map(|i| i * 2000).collect();
    s.drive_bounded(MAX, finished(75));
    assert_eq!(s.server.action(75).st, St::Error);
    let f = last_final(&s, 75);
    assert!(
        f.contains("connection cut") && f.contains("gave up after "),
        "{f}"
    );
}

/// A RAUC chunk with two bundles is refused up front (only one would be installed).
#[test]
fn a_chunk_with_two_rauc_bundles_is_refused_before_any_download() {
    let mut s = Sim::new(Knobs::default());
    s.server.assign(
        76,
        Kind::Forced,
        None,
        vec![{
            let mut c = chunk("os", "2.0", &[1000, 1000]);
            c.artifacts[1].filename = "second.raucb".into();
            c
        }],
    );
    s.drive_bounded(MAX, finished(76));
    assert_eq!(s.server.action(76).st, St::Error);
    let f = last_final(&s, 76);
    assert!(f.contains("2 RAUC bundles in one chunk"), "{f}");
    assert_eq!(count(&s, |d| matches!(d, Did::Download { .. })), 0);
}

/// What hawkBit and CDNs produce fits on a Linux device (`large-capacities`): a signed link of
/// 1,500 bytes and a 250-byte file name are downloaded and installed; the MCU build refuses
/// them up front with the field named.
#[test]
fn signed_cdn_links_and_long_file_names() {
    let mut s = Sim::new(Knobs::default());
    s.server.artifact_base = format!(
        "http://hb.test/art/{}?X-Amz-Signature={}",
        "p".repeat(200),
        "s".repeat(1200)
    );
    s.server.artifact_base_is_server = true;
    let mut c = chunk("application", "2.0", &[1000]);
    c.artifacts[0].filename = format!("{}.raucb", "n".repeat(244));
    s.server.assign(77, Kind::Forced, None, vec![c]);
    s.drive_bounded(MAX, finished(77));
    if cfg!(feature = "large-capacities") {
        assert_eq!(
            s.server.action(77).st,
            St::Finished,
            "{}",
            last_final(&s, 77)
        );
        assert_eq!(count(&s, |d| matches!(d, Did::Install { .. })), 1);
    } else {
        assert_eq!(s.server.action(77).st, St::Error);
        let f = last_final(&s, 77);
        assert!(
            f.contains("exceeds capacity") || f.contains("too long"),
            "{f}"
        );
    }
}
