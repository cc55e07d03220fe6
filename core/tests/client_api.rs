//! Error paths of the `Client` API itself (misuse by the shell, bad configuration, small buffers).

use eyas_core::client::*;
use eyas_core::ddi::ActionId;
use eyas_core::record::{Phase, RECORD_MAX_LEN, Record, bootname};
use eyas_core::time::Instant;

fn cfg() -> ClientConfig<'static> {
    let mut c = ClientConfig::new("https://hb.example/", "DEFAULT", "dev-01");
    c.authorization = Some("TargetToken abc");
    c
}

fn booted(c: &mut Client) {
    c.handle_boot(
        Instant::from_secs(1),
        BootReport {
            record: None,
            booted: Some("A"),
            rejected: None,
            running: None,
        },
    );
    // the start's health check and mark good (mark_good_on_boot) come before any request
    assert_eq!(c.poll_action(), Some(Action::CheckHealth));
    c.handle_event(Instant::from_secs(1), Event::HealthChecked { passed: true })
        .unwrap();
    assert_eq!(
        c.poll_action(),
        Some(Action::MarkSlot {
            bootname: "A",
            mark: SlotMark::Good
        })
    );
    c.handle_event(Instant::from_secs(1), Event::SlotMarked { ok: true })
        .unwrap();
}

#[test]
fn config_errors() {
    let mut c = cfg();
    c.tenant = "";
    assert_eq!(Client::new(&c).err(), Some(ClientConfigError::BadIdentity));
    let mut c = cfg();
    c.controller_id = "dev/01";
    assert_eq!(Client::new(&c).err(), Some(ClientConfigError::BadIdentity));
    let long = "h".repeat(MAX_CONTROLLER_URL_LEN);
    let mut c = cfg();
    c.server_url = &long;
    assert_eq!(Client::new(&c).err(), Some(ClientConfigError::UrlTooLong));
    let auth = "a".repeat(MAX_AUTH_LEN + 1);
    let mut c = cfg();
    c.authorization = Some(&auth);
    assert_eq!(Client::new(&c).err(), Some(ClientConfigError::AuthTooLong));
}

#[test]
fn errors_say_what_is_wrong() {
    let shown = [
        (
            ClientConfigError::UrlTooLong.to_string(),
            "controller URL longer than 256 bytes",
        ),
        (
            ClientConfigError::AuthTooLong.to_string(),
            "authorization value is longer than 192 bytes",
        ),
        (
            ClientConfigError::BadIdentity.to_string(),
            "tenant and controller id",
        ),
        (
            RequestError::BufferTooSmall { capacity: 8 }.to_string(),
            "does not fit into a 8-byte buffer (give 1088 bytes)",
        ),
        (
            RequestError::UrlTooLong.to_string(),
            "request URL is longer than 304 bytes",
        ),
        (
            RequestError::InvalidFeedback(eyas_core::ddi::FeedbackError::TooManyDetails {
                count: 51,
            })
            .to_string(),
            "feedback body refused: 51 detail lines",
        ),
        (
            ResponseError::NoRequestInFlight.to_string(),
            "no request is in flight",
        ),
        (
            EventError::NoDownload.to_string(),
            "no download is outstanding",
        ),
    ];
    for (text, want) in shown {
        assert!(text.contains(want), "{text:?} does not say {want:?}");
    }
}

#[test]
fn first_request_is_the_base_poll_with_auth() {
    let mut c = Client::new(&cfg()).unwrap();
    booted(&mut c);
    let mut buf = [0u8; REQUEST_BUF_LEN];
    let r = c
        .poll_request(Instant::from_secs(1), &mut buf)
        .unwrap()
        .unwrap();
    assert_eq!(r.kind, RequestKind::Poll);
    assert_eq!(r.method, Method::Get);
    assert_eq!(r.url, "https://hb.example/DEFAULT/controller/v1/dev-01");
    assert_eq!(r.authorization, Some("TargetToken abc"));
    assert_eq!(r.if_none_match, None);
    assert!(r.body.is_empty());
    // one request at a time
    assert_eq!(
        c.poll_request(Instant::from_secs(1), &mut buf).unwrap(),
        None
    );
    c.handle_response(
        Instant::from_secs(2),
        Response {
            status: 200,
            etag: Some("\"abc\""),
            body: br#"{"config":{"polling":{"sleep":"00:00:40"}}}"#,
        },
    )
    .unwrap();
    assert_eq!(
        c.handle_response(
            Instant::from_secs(2),
            Response {
                status: 200,
                etag: None,
                body: b""
            }
        ),
        Err(ResponseError::NoRequestInFlight)
    );
    assert_eq!(
        c.handle_transport_error(Instant::from_secs(2)),
        Err(ResponseError::NoRequestInFlight)
    );
    let t = c.poll_timeout().unwrap();
    let secs = (t - Instant::from_secs(2)).as_secs();
    assert!((36..=44).contains(&secs), "{secs}");
    assert_eq!(
        c.poll_request(Instant::from_secs(3), &mut buf).unwrap(),
        None,
        "not due yet"
    );
    c.handle_timeout(t);
    let r = c.poll_request(t, &mut buf).unwrap().unwrap();
    assert_eq!(r.if_none_match, Some("\"abc\""));
}

#[test]
fn events_out_of_phase_are_typed_errors() {
    let mut c = Client::new(&cfg()).unwrap();
    booted(&mut c);
    let now = Instant::from_secs(1);
    assert_eq!(
        c.handle_event(now, Event::DownloadComplete),
        Err(EventError::NoDownload)
    );
    assert_eq!(
        c.handle_event(now, Event::DownloadProgress { received: 1 }),
        Err(EventError::NoDownload)
    );
    assert_eq!(
        c.handle_event(
            now,
            Event::DownloadInterrupted {
                received: 1,
                reason: "cut"
            }
        ),
        Err(EventError::NoDownload)
    );
    assert_eq!(
        c.handle_event(
            now,
            Event::DownloadFailed {
                http_status: None,
                reason: "refused"
            }
        ),
        Err(EventError::NoDownload)
    );
    assert_eq!(
        c.handle_event(now, Event::Verified),
        Err(EventError::NoVerify)
    );
    assert_eq!(
        c.handle_event(now, Event::VerifyFailed { reason: "x" }),
        Err(EventError::NoVerify)
    );
    assert_eq!(
        c.handle_event(now, Event::Installed { slot: None }),
        Err(EventError::NoInstall)
    );
    assert_eq!(
        c.handle_event(now, Event::InstallProgress { percent: 3 }),
        Err(EventError::NoInstall)
    );
    assert_eq!(
        c.handle_event(now, Event::InstallFailed { reason: "x" }),
        Err(EventError::NoInstall)
    );
    assert_eq!(
        c.handle_event(
            now,
            Event::ConfirmationAnswer {
                action: ActionId(1),
                accepted: true
            }
        ),
        Err(EventError::NoConfirmation)
    );
}

/// Answers the first base poll with a `configData` link: the server asks for the attributes
/// (they are sent only when asked).
fn asked_for_attributes(c: &mut Client) {
    let mut buf = [0u8; REQUEST_BUF_LEN];
    let r = c
        .poll_request(Instant::from_secs(1), &mut buf)
        .unwrap()
        .unwrap();
    assert_eq!(
        r.kind,
        RequestKind::Poll,
        "no configData before the server asks"
    );
    c.handle_response(
        Instant::from_secs(1),
        Response {
            status: 200,
            etag: None,
            body: br#"{"config":{"polling":{"sleep":"00:05:00"}},"_links":{"configData":{"href":"x"}}}"#,
        },
    )
    .unwrap();
}

#[test]
fn small_request_buffer_is_an_error_and_the_request_stays_queued() {
    let mut c = Client::new(&cfg()).unwrap();
    c.set_attributes(&[("k", "v")]).unwrap();
    booted(&mut c);
    asked_for_attributes(&mut c);
    let mut tiny = [0u8; 8];
    assert_eq!(
        c.poll_request(Instant::from_secs(1), &mut tiny),
        Err(RequestError::BufferTooSmall { capacity: 8 })
    );
    let mut buf = [0u8; REQUEST_BUF_LEN];
    let r = c
        .poll_request(Instant::from_secs(1), &mut buf)
        .unwrap()
        .unwrap();
    assert_eq!(r.kind, RequestKind::ConfigData);
    assert_eq!(r.content_type, Some("application/json"));
}

#[test]
fn invalid_attributes_keep_the_previous_ones() {
    let mut c = Client::new(&cfg()).unwrap();
    c.set_attributes(&[("good", "1")]).unwrap();
    assert!(c.set_attributes(&[]).is_err());
    assert!(c.set_attributes(&[("k", "<tab>\t")]).is_err());
    booted(&mut c);
    asked_for_attributes(&mut c);
    let mut buf = [0u8; REQUEST_BUF_LEN];
    let r = c
        .poll_request(Instant::from_secs(1), &mut buf)
        .unwrap()
        .unwrap();
    assert_eq!(r.body, br#"{"mode":"merge","data":{"good":"1"}}"#);
}

#[test]
fn corrupt_record_is_reported_and_cleared() {
    let mut rec = Record::new(ActionId(5), Phase::Rebooting);
    rec.target_slot = Some(bootname("B").unwrap());
    let mut buf = [0u8; RECORD_MAX_LEN];
    let bytes = rec.encode(&mut buf).unwrap().to_vec();
    let mut bad = bytes.clone();
    bad[3] ^= 0xff;
    let mut c = Client::new(&cfg()).unwrap();
    c.handle_boot(
        Instant::from_secs(1),
        BootReport {
            record: Some(&bad),
            booted: None,
            rejected: None,
            running: None,
        },
    );
    assert!(matches!(
        c.poll_action(),
        Some(Action::Warning(Warning::RecordCorrupt(_)))
    ));
    assert_eq!(c.poll_action(), Some(Action::ClearRecord));
    assert_eq!(c.current_action(), None, "not trusted");
    // the intact record yields a success report for action 5 right away
    let mut c = Client::new(&cfg()).unwrap();
    c.handle_boot(
        Instant::from_secs(1),
        BootReport {
            record: Some(&bytes),
            booted: Some("B"),
            rejected: None,
            running: None,
        },
    );
    assert_eq!(c.current_action(), Some(ActionId(5)));
    assert_eq!(c.poll_action(), Some(Action::CheckHealth));
    c.handle_event(Instant::from_secs(1), Event::HealthChecked { passed: true })
        .unwrap();
    assert_eq!(
        c.poll_action(),
        Some(Action::MarkSlot {
            bootname: "B",
            mark: SlotMark::Good
        })
    );
    c.handle_event(Instant::from_secs(1), Event::SlotMarked { ok: true })
        .unwrap();
    while c.poll_action().is_some() {}
    let mut out = [0u8; REQUEST_BUF_LEN];
    let r = c
        .poll_request(Instant::from_secs(1), &mut out)
        .unwrap()
        .unwrap();
    assert_eq!(
        r.url,
        "https://hb.example/DEFAULT/controller/v1/dev-01/deploymentBase/5/feedback"
    );
    let body = std::str::from_utf8(r.body).unwrap();
    assert!(
        body.starts_with(r#"{"status":{"execution":"closed","result":{"finished":"success"}"#),
        "{body}"
    );
    assert!(body.contains("slot B"));
}

/// Without the booted slot the verdict is never guessed: each such start stops the client
/// (the shell exits, the service manager starts it again) and counts; after `boot_attempts`
/// starts the update is reported as failed with that reason.
#[test]
fn unknown_booted_slot_is_never_guessed() {
    let mut rec = Record::new(ActionId(6), Phase::Rebooting);
    rec.target_slot = Some(bootname("B").unwrap());
    let mut buf = [0u8; RECORD_MAX_LEN];
    let mut stored = rec.encode(&mut buf).unwrap().to_vec();
    let mut out = [0u8; REQUEST_BUF_LEN];
    // a start at which RAUC cannot say which slot booted
    let start_unknown = |stored: &[u8]| {
        let mut c = Client::new(&cfg()).unwrap();
        c.handle_boot(
            Instant::from_secs(1),
            BootReport {
                record: Some(stored),
                booted: None,
                rejected: None,
                running: Some(("fw", "1.0")),
            },
        );
        c
    };
    for start in 1..=2u8 {
        let mut c = start_unknown(&stored);
        let mut stopped = false;
        while let Some(a) = c.poll_action() {
            match a {
                Action::PersistRecord(b) => stored = b.to_vec(),
                Action::Stopped(StopReason::BootedSlotUnknown) => stopped = true,
                Action::Telemetry(t) => assert_ne!(t.phase, TelemetryPhase::Failed),
                _ => {}
            }
        }
        assert!(stopped, "start {start}: stops instead of judging");
        assert_eq!(Record::decode(&stored).unwrap().attempt, start);
        assert!(
            c.poll_request(Instant::from_secs(1), &mut out)
                .unwrap()
                .is_none()
        );
    }
    let mut c = start_unknown(&stored);
    let mut failure = None;
    while let Some(a) = c.poll_action() {
        if let Action::Telemetry(t) = a {
            failure = t.failure;
        }
    }
    assert_eq!(failure, Some(Failure::BootedSlotUnknown));
    let r = c
        .poll_request(Instant::from_secs(1), &mut out)
        .unwrap()
        .unwrap();
    let body = std::str::from_utf8(r.body).unwrap();
    assert!(body.contains(r#""finished":"failure""#), "{body}");
    assert!(body.contains("could not be told"), "{body}");
}

/// A `static` can hold a client built at compile time; it produces nothing until configured.
static UNCONFIGURED: Client = Client::unconfigured();

#[test]
fn unconfigured_then_configured_in_place() {
    assert_eq!(UNCONFIGURED.stopped(), Some(StopReason::NotConfigured));
    let mut c = Client::unconfigured();
    c.handle_boot(
        Instant::from_secs(1),
        BootReport {
            record: None,
            booted: Some("A"),
            rejected: None,
            running: None,
        },
    );
    assert_eq!(
        c.poll_action(),
        None,
        "an unconfigured client asks for nothing"
    );
    let mut buf = [0u8; REQUEST_BUF_LEN];
    assert_eq!(
        c.poll_request(Instant::from_secs(1), &mut buf).unwrap(),
        None
    );
    assert_eq!(c.poll_timeout(), None);
    let mut bad = cfg();
    bad.tenant = "a b";
    assert_eq!(c.configure(&bad), Err(ClientConfigError::BadIdentity));
    assert_eq!(c.stopped(), Some(StopReason::NotConfigured));
    c.configure(&cfg()).unwrap();
    assert_eq!(c.stopped(), None);
    booted(&mut c);
    let r = c
        .poll_request(Instant::from_secs(1), &mut buf)
        .unwrap()
        .unwrap();
    assert_eq!(r.url, "https://hb.example/DEFAULT/controller/v1/dev-01");
    // reconfiguring resets the state (the request in flight is forgotten)
    c.configure(&cfg()).unwrap();
    assert_eq!(
        c.handle_response(
            Instant::from_secs(2),
            Response {
                status: 200,
                etag: None,
                body: b""
            }
        ),
        Err(ResponseError::NoRequestInFlight)
    );
}

#[test]
fn extreme_durations_do_not_overflow() {
    let mut c = cfg();
    c.poll_override = Some(eyas_core::time::Duration::MAX);
    c.jitter_percent = 255;
    c.backoff_initial = eyas_core::time::Duration::MAX;
    c.backoff_max = eyas_core::time::Duration::MAX;
    let mut c = Client::new(&c).unwrap();
    booted(&mut c);
    let mut buf = [0u8; REQUEST_BUF_LEN];
    let now = Instant::from_millis(u64::MAX - 10);
    assert!(c.poll_request(now, &mut buf).unwrap().is_some());
    c.handle_transport_error(now).unwrap();
    assert!(c.poll_timeout().is_some());
    c.handle_timeout(Instant::from_millis(u64::MAX));
    let _ = c
        .poll_request(Instant::from_millis(u64::MAX), &mut buf)
        .unwrap()
        .unwrap();
    c.handle_response(
        Instant::from_millis(u64::MAX),
        Response {
            status: 200,
            etag: None,
            body: br#"{"config":{"polling":{"sleep":"99999999:00:00"}}}"#,
        },
    )
    .unwrap();
    assert!(c.poll_timeout().is_some());
}

/// A run-once ends by the core's word: done after an answered poll with nothing to do, failed
/// when the first poll cannot be read, is refused or does not get through.
#[test]
fn run_once_outcome() {
    let now = Instant::from_secs(1);
    let answer = |c: &mut Client, status: u16, body: &[u8]| {
        let mut buf = [0u8; REQUEST_BUF_LEN];
        let r = c.poll_request(now, &mut buf).unwrap().unwrap();
        assert_eq!(r.kind, RequestKind::Poll);
        c.handle_response(
            now,
            Response {
                status,
                etag: None,
                body,
            },
        )
        .unwrap();
    };
    let mut c = Client::new(&cfg()).unwrap();
    booted(&mut c);
    assert_eq!(c.run_once(), RunOnce::Working, "not polled yet");
    answer(
        &mut c,
        200,
        br#"{"config":{"polling":{"sleep":"00:05:00"}}}"#,
    );
    assert_eq!(c.run_once(), RunOnce::Done);

    let mut c = Client::new(&cfg()).unwrap();
    booted(&mut c);
    answer(&mut c, 200, b"{\"config\":");
    assert_eq!(c.run_once(), RunOnce::Failed(RunOnceFailure::Unparsable));

    let mut c = Client::new(&cfg()).unwrap();
    booted(&mut c);
    answer(&mut c, 503, b"");
    assert_eq!(
        c.run_once(),
        RunOnce::Failed(RunOnceFailure::ServerError(503))
    );

    let mut c = Client::new(&cfg()).unwrap();
    booted(&mut c);
    let mut buf = [0u8; REQUEST_BUF_LEN];
    let _ = c.poll_request(now, &mut buf).unwrap().unwrap();
    c.handle_transport_error(now).unwrap();
    assert_eq!(c.run_once(), RunOnce::Failed(RunOnceFailure::Unreachable));

    // an offered action keeps it working
    let mut c = Client::new(&cfg()).unwrap();
    booted(&mut c);
    answer(
        &mut c,
        200,
        br#"{"config":{"polling":{"sleep":"00:05:00"}},"_links":{"deploymentBase":{"href":"https://hb.example/DEFAULT/controller/v1/dev-01/deploymentBase/3?c=1"}}}"#,
    );
    assert_eq!(c.run_once(), RunOnce::Working);
}
