//! Bounds on oversized or hostile input: hawkBit's status quotas and the simulator's own limits
//! (request bodies, multipart fields, names, ranges, `/sim` credentials). Each test names the figure
//! it bounds.

mod common;

use common::{Fx, Resp};
use hil_tests::sim::SimConfig;
use serde_json::{Value, json};

/// Bytes of all stored status messages of all actions (what the feedback routes let a device grow).
fn stored_message_bytes(fx: &Fx) -> usize {
    fx.sim().with_state(|s| {
        s.actions
            .values()
            .flat_map(|a| &a.history)
            .flat_map(|h| &h.messages)
            .map(String::len)
            .sum()
    })
}

fn history_len(fx: &Fx, action: u64) -> usize {
    fx.sim().with_state(|s| s.actions[&action].history.len())
}

fn proceeding(details: Value, code: Option<i64>) -> Value {
    let mut v = json!({"status": {"execution": "proceeding", "result": {"finished": "none"}, "details": details}});
    if let Some(c) = code {
        v["status"]["code"] = json!(c);
    }
    v
}

fn assert_quota(r: &Resp, requested: usize, kind: &str, parent: &str, max: usize) {
    assert_eq!(r.status, 429, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["errorCode"], "hawkbit.server.error.quota.tooManyEntries",
        "{v}"
    );
    assert_eq!(
        v["exceptionClass"],
        "org.eclipse.hawkbit.repository.exception.AssignmentQuotaExceededException",
        "{v}"
    );
    assert_eq!(
        v["message"],
        format!(
            "Quota exceeded: Cannot assign {requested} more {kind} entities to {parent}. The maximum is {max}."
        ),
        "{v}"
    );
}

#[test]
fn feedback_messages_are_split_into_512_unit_entries_and_counted_against_the_quota() {
    let fx = Fx::new();
    let (tok, _, _, a) = fx.deployment("q", json!({}));
    let path = format!("/deploymentBase/{a}/feedback");
    let send = |v: Value| fx.ddi_send("POST", "q", &tok, &path, &v);
    // 50 entries of 512 characters: accepted and stored as 50 messages
    assert_eq!(
        send(proceeding(json!(["x".repeat(50 * 512)]), None)).status,
        200
    );
    let last = fx
        .sim()
        .with_state(|s| s.actions[&a].history.last().unwrap().messages.clone());
    assert_eq!(last.len(), 50);
    assert!(last.iter().all(|m| m.len() == 512));
    let before = (history_len(&fx, a), stored_message_bytes(&fx));
    // one character more is a 51st entry: hawkBit's quota answer, nothing stored
    let r = send(proceeding(json!(["x".repeat(50 * 512 + 1)]), None));
    assert_quota(&r, 51, "Message", "ActionStatus '<new>'", 50);
    // the status code is stored as one more message ("Device reported status code: N")
    let lines = |n: usize| json!((0..n).map(|i| format!("line {i}")).collect::<Vec<_>>());
    let r = send(proceeding(lines(50), Some(3)));
    assert_quota(&r, 51, "Message", "ActionStatus '<new>'", 50);
    // a final status is checked too (hawkBit checks the messages of every deployment feedback)
    let mut closed = proceeding(json!(["y".repeat(60 * 512)]), None);
    closed["status"]["execution"] = json!("closed");
    closed["status"]["result"]["finished"] = json!("success");
    assert_quota(&send(closed), 60, "Message", "ActionStatus '<new>'", 50);
    assert_eq!(fx.action_status("q", a), "running");
    assert_eq!(
        before,
        (history_len(&fx, a), stored_message_bytes(&fx)),
        "a refused feedback stores nothing"
    );
    assert_eq!(send(proceeding(lines(49), Some(3))).status, 200);
    // the 512 are Java chars (UTF-16 units): 256 emoji are one entry, 257 are two
    assert_eq!(
        send(proceeding(json!(["😀".repeat(256)]), None)).status,
        200
    );
    let last = fx
        .sim()
        .with_state(|s| s.actions[&a].history.last().unwrap().messages.clone());
    assert_eq!(last, vec!["😀".repeat(256)]);
    assert_eq!(
        send(proceeding(json!(["😀".repeat(257)]), None)).status,
        200
    );
    let last = fx
        .sim()
        .with_state(|s| s.actions[&a].history.last().unwrap().messages.clone());
    assert_eq!(last, vec!["😀".repeat(256), "😀".to_string()]);
}

#[test]
fn oversized_ddi_bodies_get_413_and_store_nothing() {
    let fx = Fx::with(SimConfig {
        confirmation_flow: true,
        rollout_interval: std::time::Duration::from_secs(3600),
        ..SimConfig::default()
    });
    let (tok, _, _, a) = fx.deployment("big", json!({"confirmationRequired": false}));
    let before = (history_len(&fx, a), stored_message_bytes(&fx));
    // issue 13 §10: one 1.9 MB detail per feedback (300 of them took the server to 605 MB)
    let body = proceeding(json!(["x".repeat(1_900_000)]), None).to_string();
    let auth = format!("TargetToken {tok}");
    let post = |sub: &str, body: &[u8]| {
        fx.call(
            "POST",
            &format!("{}{sub}", fx.ddi("big")),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            Some(body),
        )
    };
    for _ in 0..5 {
        let r = post(&format!("/deploymentBase/{a}/feedback"), body.as_bytes());
        assert_eq!(r.status, 413, "{}", r.text());
        let msg = r.json()["message"].as_str().unwrap().to_string();
        assert!(msg.contains("262144"), "{msg}");
        assert!(
            r.body.len() < 1024,
            "the answer does not echo the body: {} bytes",
            r.body.len()
        );
    }
    for sub in [
        format!("/cancelAction/{a}/feedback"),
        format!("/confirmationBase/{a}/feedback"),
        "/confirmationBase/activateAutoConfirm".to_string(),
    ] {
        assert_eq!(post(&sub, body.as_bytes()).status, 413, "{sub}");
    }
    let r = fx.call(
        "PUT",
        &format!("{}/configData", fx.ddi("big")),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some(
            json!({"data": {"k": "v".repeat(300_000)}})
                .to_string()
                .as_bytes(),
        ),
    );
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(
        before,
        (history_len(&fx, a), stored_message_bytes(&fx)),
        "nothing stored"
    );
    // without credentials the answer stays 401 (auth is checked first)
    let r = fx.call(
        "POST",
        &format!("{}/deploymentBase/{a}/feedback", fx.ddi("big")),
        &[("Content-Type", "application/json")],
        Some(body.as_bytes()),
    );
    assert_eq!(r.status, 401);
    // the largest body hawkBit's quota admits (50 entries of 512 \u-escaped units) still fits
    let escaped = format!("\"{}\"", "\\u00e9".repeat(512));
    let big_ok = format!(
        "{{\"status\":{{\"execution\":\"proceeding\",\"result\":{{\"finished\":\"none\"}},\"details\":[{}]}}}}",
        vec![escaped; 50].join(",")
    );
    assert!(big_ok.len() > 150_000);
    assert_eq!(
        post(&format!("/deploymentBase/{a}/feedback"), big_ok.as_bytes()).status,
        200
    );
    assert_eq!(fx.ddi_get("big", &tok, "").status, 200, "still healthy");
}

#[test]
fn confirmation_feedback_is_quota_checked() {
    let fx = Fx::with(SimConfig {
        confirmation_flow: true,
        rollout_interval: std::time::Duration::from_secs(3600),
        ..SimConfig::default()
    });
    let (tok, _, _, a) = fx.deployment("u", json!({"confirmationRequired": true}));
    let path = format!("/confirmationBase/{a}/feedback");
    let deny = |details: Value| {
        fx.ddi_send(
            "POST",
            "u",
            &tok,
            &path,
            &json!({"confirmation": "denied", "details": details}),
        )
    };
    // the server's own note ("Target rejected action") is the 50th message
    let lines = |n: usize| json!((0..n).map(|i| format!("line {i}")).collect::<Vec<_>>());
    assert_quota(&deny(lines(50)), 51, "Message", "ActionStatus '<new>'", 50);
    assert_eq!(deny(lines(49)).status, 200);
    // a denied action stays waiting: each denial is a status entry, up to maxStatusEntriesPerAction
    for _ in history_len(&fx, a)..1000 {
        assert_eq!(deny(json!([])).status, 200);
    }
    assert_quota(
        &deny(json!([])),
        1,
        "ActionStatus",
        &format!("Action '{a}'"),
        1000,
    );
    assert_eq!(history_len(&fx, a), 1000);
}

#[test]
fn cancel_feedback_quotas_follow_hawkbit() {
    let fx = Fx::new();
    let (tok, _, _, a) = fx.deployment("c", json!({}));
    assert_eq!(
        fx.mgmt("DELETE", &format!("/targets/c/actions/{a}"), None)
            .status,
        204
    );
    let path = format!("/cancelAction/{a}/feedback");
    let lines = json!((0..60).map(|i| format!("line {i}")).collect::<Vec<_>>());
    let fb = |ex: &str, fin: &str| {
        fx.ddi_send(
            "POST",
            "c",
            &tok,
            &path,
            &json!({"status": {"execution": ex, "result": {"finished": fin}, "details": lines}}),
        )
    };
    // an informational entry is quota-checked
    assert_quota(
        &fb("proceeding", "none"),
        60,
        "Message",
        "ActionStatus '<new>'",
        50,
    );
    // the closing one is not (hawkBit's addCancelActionStatus checks only the default branch)
    assert_eq!(fb("closed", "success").status, 200);
    assert_eq!(fx.action_status("c", a), "canceled");
}

/// `multipart/form-data` with the given `(name, filename, bytes)` parts.
fn form(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let b = "----hawkbitsimlimitsboundary";
    let mut body = Vec::new();
    for (name, filename, bytes) in parts {
        let file = filename.map_or(String::new(), |f| format!("; filename=\"{f}\""));
        body.extend_from_slice(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"{name}\"{file}\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

fn upload(fx: &Fx, sm: u64, query: &str, (ct, body): &(String, Vec<u8>)) -> Resp {
    let auth = format!(
        "Basic {}",
        hil_tests::sim::http::base64_encode(b"admin:admin")
    );
    fx.call(
        "POST",
        &format!("/rest/v1/softwaremodules/{sm}/artifacts{query}"),
        &[("Authorization", &auth), ("Content-Type", ct)],
        Some(body),
    )
}

fn artifact_count(fx: &Fx, sm: u64) -> usize {
    fx.sim().with_state(|s| s.modules[&sm].artifacts.len())
}

#[test]
fn multipart_text_fields_are_bounded_and_never_echoed() {
    let fx = Fx::new();
    let sm = fx.sim().create_software_module("m", "1", "os").unwrap();
    // issue 13 §11: a 200 MB sha256sum field was buffered whole (592 MB RSS) and echoed in the 400
    let huge = vec![b'a'; 8 << 20];
    let r = upload(
        &fx,
        sm,
        "",
        &form(&[("sha256sum", None, &huge), ("file", Some("a.bin"), b"abc")]),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.body.len() < 1024, "answer of {} bytes", r.body.len());
    let msg = r.json()["message"].as_str().unwrap().to_string();
    assert!(msg.contains("'sha256sum'") && msg.contains("4096"), "{msg}");
    // the same field after the file part
    let r = upload(
        &fx,
        sm,
        "",
        &form(&[("file", Some("a.bin"), b"abc"), ("sha1sum", None, &huge)]),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.body.len() < 1024, "answer of {} bytes", r.body.len());
    assert_eq!(artifact_count(&fx, sm), 0);
    // a wrong digest of 4 KiB is named, not echoed whole
    let long = "f".repeat(4000);
    let r = upload(
        &fx,
        sm,
        "",
        &form(&[
            ("md5sum", None, long.as_bytes()),
            ("file", Some("a.bin"), b"abc"),
        ]),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let msg = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("md5sum mismatch") && !msg.contains(&long) && msg.len() < 400,
        "{msg}"
    );
    // the same through the query string
    let r = upload(
        &fx,
        sm,
        &format!("?sha1sum={}", "e".repeat(20_000)),
        &form(&[("file", Some("a.bin"), b"abc")]),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.body.len() < 1024, "answer of {} bytes", r.body.len());
    // a field hawkBit does not know is ignored (read, not kept), as Spring ignores unknown parts
    let r = upload(
        &fx,
        sm,
        "",
        &form(&[("comment", None, &huge), ("file", Some("a.bin"), b"abc")]),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(artifact_count(&fx, sm), 1);
}

#[test]
fn error_messages_cut_echoed_input() {
    let fx = Fx::new();
    let (tok, _, _, a) = fx.deployment("e", json!({}));
    // an HTML-like detail of 200 KB is refused without being sent back
    let detail = format!("<b>{}", "x".repeat(200_000));
    let r = fx.ddi_send(
        "POST",
        "e",
        &tok,
        &format!("/deploymentBase/{a}/feedback"),
        &proceeding(json!([detail]), None),
    );
    assert_eq!(r.status, 400);
    assert!(r.body.len() < 1024, "answer of {} bytes", r.body.len());
    // configData keys and values
    let r = fx.ddi_send(
        "PUT",
        "e",
        &tok,
        "/configData",
        &json!({"data": {"k": "é".repeat(100_000)}}),
    );
    assert_eq!(r.status, 400);
    assert!(r.body.len() < 1024, "answer of {} bytes", r.body.len());
    // a Mgmt field name hawkBit ignores is named in a Warning header, cut
    let r = fx.mgmt(
        "POST",
        "/targets",
        Some(json!([{"controllerId": "w1", "x".repeat(100_000): 1}])),
    );
    assert_eq!(r.status, 201);
    let w = r.headers_all("warning");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].len() < 512, "Warning header of {} bytes", w[0].len());
    // a controllerId that is too long
    let r = fx.mgmt(
        "POST",
        "/targets",
        Some(json!([{"controllerId": "i".repeat(100_000)}])),
    );
    assert_eq!(r.status, 400);
    assert!(r.body.len() < 1024, "answer of {} bytes", r.body.len());
}

#[test]
fn artifact_names_with_control_characters_are_refused() {
    let fx = Fx::new();
    let sm = fx.sim().create_software_module("n", "1", "os").unwrap();
    // issue 13 §12: "a\u{1}b.bin" was stored and its download answered 200 with an empty body
    for name in [
        "a\u{1}b.bin",
        "a\tb.bin",
        "line\nbreak.bin",
        "del\u{7f}.bin",
        "c1\u{85}.bin",
        "<b>.bin",
    ] {
        let r = upload(
            &fx,
            sm,
            "",
            &form(&[
                ("filename", None, name.as_bytes()),
                ("file", Some("x.bin"), b"abc"),
            ]),
        );
        assert_eq!(r.status, 400, "{name:?}: {}", r.text());
        assert!(
            r.json()["message"]
                .as_str()
                .unwrap()
                .contains("artifact filename"),
            "{}",
            r.text()
        );
        let e = fx.sim().add_artifact_bytes(sm, name, b"abc").unwrap_err();
        assert_eq!(e.status, 400, "{name:?}");
    }
    let r = upload(&fx, sm, "", &form(&[("file", Some("a\u{1}b.bin"), b"abc")]));
    assert_eq!(r.status, 400, "{}", r.text());
    // 256 characters (not bytes) is hawkBit's limit
    let r = upload(
        &fx,
        sm,
        "",
        &form(&[
            ("filename", None, "é".repeat(256).as_bytes()),
            ("file", Some("x.bin"), b"abc"),
        ]),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = upload(
        &fx,
        sm,
        "",
        &form(&[
            ("filename", None, "é".repeat(257).as_bytes()),
            ("file", Some("x.bin"), b"abc"),
        ]),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(artifact_count(&fx, sm), 1);
}

#[test]
fn a_response_that_cannot_be_built_is_a_500_never_an_empty_200() {
    let fx = Fx::new();
    let (tok, sm, _, _) = fx.deployment("r", json!({}));
    // an artifact whose name cannot go into Content-Disposition (stored behind the model's back,
    // as a name accepted by an older simulator could be)
    let aid = fx.sim().with_state(|s| {
        let m = s.modules.get_mut(&sm).unwrap();
        m.artifacts[0].filename = "bad\u{1}name.raucb".into();
        m.artifacts[0].id
    });
    let auth = format!("TargetToken {tok}");
    let url = format!(
        "{}/softwaremodules/{sm}/artifacts/bad%01name.raucb",
        fx.ddi("r")
    );
    for range in [
        None,
        Some("bytes=0-3"),
        Some("bytes=0-1,4-5"),
        Some("bytes=999-"),
    ] {
        let mut h = vec![("Authorization", auth.as_str())];
        if let Some(r) = range {
            h.push(("Range", r));
        }
        let r = fx.call("GET", &url, &h, None);
        assert_eq!(r.status, 500, "{range:?}: {}", r.text());
        assert!(
            r.json()["message"].as_str().unwrap().contains("response"),
            "{}",
            r.text()
        );
    }
    let r = fx.call("HEAD", &url, &[("Authorization", &auth)], None);
    assert_eq!(r.status, 500);
    let r = fx.mgmt(
        "GET",
        &format!("/softwaremodules/{sm}/artifacts/{aid}/download"),
        None,
    );
    assert_eq!(r.status, 500, "{}", r.text());
}

#[test]
fn overlapping_or_too_many_ranges_are_refused_with_416() {
    let fx = Fx::new();
    let tok = fx.target("rg");
    let data: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    let sm = fx.sim().create_software_module("rg", "1", "os").unwrap();
    fx.sim().add_artifact_bytes(sm, "big.bin", &data).unwrap();
    let ds = fx
        .sim()
        .create_distribution_set("rg", "1", "os", &[sm])
        .unwrap();
    fx.sim().assign("rg", ds, Default::default()).unwrap();
    let auth = format!("TargetToken {tok}");
    let url = format!("{}/softwaremodules/{sm}/artifacts/big.bin", fx.ddi("rg"));
    let get = |range: &str| -> Resp {
        fx.req(
            "GET",
            &url,
            &[("Authorization", &auth), ("Range", range)],
            None,
        )
        .unwrap_or_else(|e| panic!("{} bytes of Range: {e}", range.len()))
    };
    let refused = |range: &str| {
        let r = get(range);
        assert_eq!(r.status, 416, "{} ranges", range.matches(',').count() + 1);
        assert_eq!(r.header("content-range"), Some("bytes */1048576"));
        assert!(r.body.is_empty());
    };
    // issue 13 §13: 2,000 copies of the whole file were a 2 GB 206 for a 1 MiB artifact
    refused(&format!("bytes={}", vec!["0-1048575"; 2000].join(",")));
    refused("bytes=0-9,5-14");
    refused("bytes=100-199,0-100");
    refused("bytes=0-,-10");
    // at most 200 ranges (Apache's MaxRanges default); adjacent ones do not overlap
    let ranges = |n: usize| {
        (0..n)
            .map(|i| format!("{i}-{i}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    refused(&format!("bytes={}", ranges(201)));
    let r = get(&format!("bytes={}", ranges(200)));
    assert_eq!(r.status, 206);
    assert_eq!(r.text().matches("Content-Range: bytes ").count(), 200);
    assert!(
        r.body.len() < 200 * 120,
        "{} bytes for 200 one-byte ranges",
        r.body.len()
    );
    // hawkBit serves the parts in ascending order
    let r = get("bytes=20-29,0-9");
    assert_eq!(r.status, 206);
    let t = r.text();
    let (a, b) = (
        t.find("bytes 0-9/").unwrap(),
        t.find("bytes 20-29/").unwrap(),
    );
    assert!(a < b, "{t}");
    // the full file, and a single range, are unaffected
    assert_eq!(get("bytes=0-").body, data);
    assert_eq!(get("bytes=-10").body, &data[data.len() - 10..]);
}

#[test]
fn sim_control_api_needs_credentials_unless_bound_to_loopback() {
    // bound to every interface: the check is on the bound address, the test connects over loopback
    let fx = Fx::with(SimConfig {
        addr: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
        rollout_interval: std::time::Duration::from_secs(3600),
        ..SimConfig::default()
    });
    let base = format!("http://127.0.0.1:{}", fx.sim().addr().port());
    let basic = format!(
        "Basic {}",
        hil_tests::sim::http::base64_encode(b"admin:admin")
    );
    let wrong = format!(
        "Basic {}",
        hil_tests::sim::http::base64_encode(b"admin:nope")
    );
    let ct = ("Content-Type", "application/json");
    let calls: &[(&str, &str, &[u8])] = &[
        ("GET", "/sim/faults", b""),
        ("PUT", "/sim/faults/global", br#"{"errorRate":1.0}"#),
        ("PUT", "/sim/faults", br#"{"global":{"errorRate":1.0}}"#),
        ("DELETE", "/sim/faults", b""),
        ("PUT", "/sim/faults/targets/x", b"{}"),
        ("DELETE", "/sim/faults/targets/x", b""),
        ("POST", "/sim/maintenance", br#"{"window":"open"}"#),
        ("POST", "/sim/restart", br#"{"downMs":100}"#),
        ("POST", "/sim/tick", b""),
        ("GET", "/sim/stats", b""),
        ("GET", "/sim/requests", b""),
        ("DELETE", "/sim/requests", b""),
    ];
    for (m, p, body) in calls {
        for auth in [None, Some(wrong.as_str())] {
            let mut h = vec![ct];
            if let Some(a) = auth {
                h.push(("Authorization", a));
            }
            let r = fx.call(m, &format!("{base}{p}"), &h, Some(body));
            assert_eq!(r.status, 401, "{m} {p} with {auth:?}: {}", r.text());
            assert!(r.header("www-authenticate").is_some(), "{m} {p}");
        }
    }
    // nothing was changed by the refused calls
    assert_eq!(fx.sim().shared().faults().global.error_rate, 0.0);
    assert_eq!(fx.sim().with_state(|s| s.window_override), None);
    // with the Mgmt credentials they work
    let r = fx.call(
        "PUT",
        &format!("{base}/sim/faults/global"),
        &[ct, ("Authorization", &basic)],
        Some(br#"{"latencyMs":1}"#),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(fx.sim().shared().faults().global.latency_ms, 1);
    let r = fx.call(
        "GET",
        &format!("{base}/sim/stats"),
        &[("Authorization", &basic)],
        None,
    );
    assert_eq!(r.status, 200);
    // the liveness check stays open (it tells nothing)
    assert_eq!(
        fx.call("GET", &format!("{base}/sim/health"), &[], None)
            .status,
        200
    );
}

#[test]
fn sim_control_api_is_open_on_loopback() {
    let fx = Fx::new();
    assert!(fx.sim().addr().ip().is_loopback());
    let r = fx.call(
        "PUT",
        "/sim/faults/global",
        &[("Content-Type", "application/json")],
        Some(br#"{"latencyMs":1}"#),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(fx.call("GET", "/sim/stats", &[], None).status, 200);
}

#[test]
fn multipart_part_headers_are_bounded() {
    let fx = Fx::new();
    let sm = fx.sim().create_software_module("h", "1", "os").unwrap();
    // a part header (here the file name) of 8 MiB was buffered whole by the multipart parser
    let name = "n".repeat(8 << 20);
    let r = upload(&fx, sm, "", &form(&[("file", Some(&name), b"abc")]));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.body.len() < 1024, "answer of {} bytes", r.body.len());
    let msg = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("part headers") && msg.contains("10240"),
        "{msg}"
    );
    // a field name too, and a preamble before the first boundary
    let (ct, mut body) = form(&[("file", Some("a.bin"), b"abc")]);
    let r = upload(
        &fx,
        sm,
        "",
        &form(&[
            (&"f".repeat(20_000), None, b"v"),
            ("file", Some("a.bin"), b"abc"),
        ]),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    body.splice(0..0, vec![b'p'; 20_000]);
    let r = upload(&fx, sm, "", &(ct.clone(), body));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(artifact_count(&fx, sm), 0);
    // ordinary uploads are unaffected: a boundary-like text and CRLFs in the data
    let data = b"\r\n--not-the-boundary\r\n\r\n\r\n--xx".repeat(1000);
    let r = upload(
        &fx,
        sm,
        "",
        &form(&[
            ("filename", None, b"ok.bin"),
            ("file", Some("a.bin"), &data),
        ]),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["size"], data.len());
}
