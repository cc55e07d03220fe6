//! The whole client fed arbitrary response bodies/statuses and shell events: never panics,
//! never has two requests in flight, and its records always decode.
#![no_main]

use eyas_core::client::{
    Action, BootReport, Client, ClientConfig, Event, REQUEST_BUF_LEN, Response,
};
use eyas_core::record::Record;
use eyas_core::time::Instant;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut cfg = ClientConfig::new("http://hb", "DEFAULT", "dev");
    cfg.authorization = Some("TargetToken t");
    let Ok(mut c) = Client::new(&cfg) else { return };
    let mut now = Instant::from_secs(1);
    let (record, rest) = match data.split_first() {
        Some((&n, rest)) if usize::from(n) <= rest.len() && n < 200 => {
            let (r, rest) = rest.split_at(usize::from(n));
            (Some(r), rest)
        }
        _ => (None, data),
    };
    // the booted slot and the remembered rejected one come from the input's length
    let names = [None, Some("A"), Some("B"), Some("system1"), Some("x.y-z")];
    let booted = names[rest.len() % names.len()];
    let rejected = names[rest.len() / 5 % names.len()];
    c.handle_boot(
        now,
        BootReport {
            record,
            booted,
            rejected,
            running: Some(("fw", "1")),
        },
    );
    let mut buf = vec![0u8; REQUEST_BUF_LEN];
    // the input is split at 0xff bytes into response bodies; the byte after each split picks
    // the status / event
    for piece in rest.split(|&b| b == 0xff) {
        while let Some(a) = c.poll_action() {
            if let Action::PersistRecord(b) = a {
                Record::decode(b).expect("own record decodes");
            }
        }
        let (sel, body) = piece.split_first().map_or((0, &[][..]), |(s, b)| (*s, b));
        let sent = matches!(c.poll_request(now, &mut buf), Ok(Some(_)));
        if sent {
            let status =
                [200u16, 200, 200, 304, 404, 410, 429, 500, 401, 405][usize::from(sel % 10)];
            let _ = c.handle_response(
                now,
                Response {
                    status,
                    etag: Some("\"e\""),
                    body,
                },
            );
            assert!(
                c.handle_response(
                    now,
                    Response {
                        status: 200,
                        etag: None,
                        body: &[]
                    }
                )
                .is_err()
            );
        }
        let ev = match sel / 10 % 11 {
            0 => Event::DownloadComplete,
            1 => Event::Verified,
            2 => Event::Installed {
                slot: names[usize::from(sel) % names.len()],
            },
            8 => Event::HealthChecked {
                passed: sel % 2 == 0,
            },
            9 => Event::SlotMarked { ok: sel % 3 != 0 },
            10 => Event::Installed {
                slot: Some("a-bootname-longer-than-16"),
            },
            3 => Event::DownloadInterrupted {
                received: u64::from(sel) * 100,
                reason: "cut <x>",
            },
            4 => Event::InstallProgress { percent: sel },
            5 => Event::DownloadProgress {
                received: u64::from(sel) << 20,
            },
            6 => Event::VerifyFailed { reason: "bad <x>" },
            7 if sel % 2 == 0 => Event::DownloadRefused {
                refusal: eyas_core::client::DownloadRefusal::NoSpace,
                reason: "no space",
            },
            _ => Event::DownloadFailed {
                http_status: Some(503),
                reason: "unavailable",
            },
        };
        let _ = c.handle_event(now, ev);
        now = now + eyas_core::time::Duration::from_millis(u64::from(sel) * 997);
        c.handle_timeout(now);
        let _ = c.poll_timeout();
    }
});
