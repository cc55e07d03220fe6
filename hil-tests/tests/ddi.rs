//! DDI API rules (ddi-api.md §1) over real HTTP.

mod common;

use common::Fx;
use hil_tests::sim::{SimConfig, WindowOverride};
use serde_json::{Value, json};

#[test]
fn auth_rules_and_401_with_empty_body() {
    let fx = Fx::new();
    fx.target("dev-01");
    for auth in [
        None,
        Some("TargetToken wrong"),
        Some("TargetToken  tok-dev-01"),
        Some("Bearer tok-dev-01"),
        Some("GatewayToken x"),
    ] {
        let h: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", *a)).collect();
        let r = fx.call("GET", &fx.ddi("dev-01"), &h, None);
        assert_eq!(r.status, 401, "{auth:?}");
        assert!(r.body.is_empty(), "401 must have an empty body");
    }
    assert_eq!(fx.ddi_get("dev-01", "tok-dev-01", "").status, 200);
    // tenant is case-insensitive, an unknown tenant is refused
    let lower = fx.ddi("dev-01").replace("/DEFAULT/", "/default/");
    assert_eq!(
        fx.call(
            "GET",
            &lower,
            &[("Authorization", "TargetToken tok-dev-01")],
            None
        )
        .status,
        200
    );
    let other = fx.ddi("dev-01").replace("/DEFAULT/", "/OTHER/");
    assert_eq!(
        fx.call(
            "GET",
            &other,
            &[("Authorization", "TargetToken tok-dev-01")],
            None
        )
        .status,
        401
    );
    // unknown target with a target token: 401 (targets are not auto-registered)
    assert_eq!(fx.ddi_get("nobody", "tok-dev-01", "").status, 401);
    // target tokens can be disabled through the system config
    let r = fx.mgmt(
        "PUT",
        "/system/configs/authentication.targettoken.enabled",
        Some(json!({"value": false})),
    );
    assert_eq!(r.status, 200);
    assert_eq!(fx.ddi_get("dev-01", "tok-dev-01", "").status, 401);
}

#[test]
fn gateway_token_auto_registers() {
    let fx = Fx::with(SimConfig {
        gateway_token: Some("gw-key".into()),
        ..SimConfig::default()
    });
    let r = fx.call(
        "GET",
        &fx.ddi("new-dev"),
        &[("Authorization", "GatewayToken gw-key")],
        None,
    );
    assert_eq!(r.status, 200);
    let t = fx.mgmt("GET", "/targets/new-dev", None);
    assert_eq!(t.status, 200);
    assert_eq!(t.json()["updateStatus"], "registered");
    assert_eq!(t.json()["ipAddress"], "127.0.0.1");
    // gateway token does not register on non-poll resources
    let r = fx.call(
        "GET",
        &format!("{}/deploymentBase/1", fx.ddi("other")),
        &[("Authorization", "GatewayToken gw-key")],
        None,
    );
    assert_eq!(r.status, 404);
    assert_eq!(
        fx.call(
            "GET",
            &fx.ddi("x"),
            &[("Authorization", "GatewayToken nope")],
            None
        )
        .status,
        401
    );
}

#[test]
fn etag_and_304_on_json_gets() {
    let fx = Fx::new();
    fx.target("dev-01");
    let r = fx.ddi_get("dev-01", "tok-dev-01", "");
    let etag = r.header("etag").expect("ETag").to_string();
    assert!(etag.starts_with('"'));
    let polled = || {
        fx.mgmt("GET", "/targets/dev-01", None).json()["lastControllerRequestAt"]
            .as_i64()
            .unwrap()
    };
    let before = polled();
    // a poll conditional on the first ETag (If-None-Match)
    let conditional_poll = || {
        fx.call(
            "GET",
            &fx.ddi("dev-01"),
            &[
                ("Authorization", "TargetToken tok-dev-01"),
                ("If-None-Match", &etag),
            ],
            None,
        )
    };
    std::thread::sleep(std::time::Duration::from_millis(5));
    let r2 = conditional_poll();
    assert_eq!(r2.status, 304);
    assert!(r2.body.is_empty());
    // the poll is still registered on a 304
    assert!(
        polled() > before,
        "a 304 poll must update lastControllerRequestAt"
    );
    // a change (new assignment) changes the body and therefore the ETag
    let (_, ds) = fx.make_ds("2.0", b"x");
    fx.sim().assign("dev-01", ds, Default::default()).unwrap();
    let r3 = conditional_poll();
    assert_eq!(r3.status, 200);
    assert_ne!(r3.header("etag"), Some(etag.as_str()));
}

#[test]
fn sleep_format_hh_mm_ss_and_iso8601() {
    let fx = Fx::with(SimConfig {
        max_polling_secs: 48 * 3600,
        ..SimConfig::default()
    });
    fx.target("d");
    assert_eq!(
        fx.ddi_get("d", "tok-d", "").json()["config"]["polling"]["sleep"],
        "00:05:00"
    );
    let r = fx.mgmt(
        "PUT",
        "/system/configs/pollingTime",
        Some(json!({"value": "26:30:00"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        fx.ddi_get("d", "tok-d", "").json()["config"]["polling"]["sleep"],
        "PT26H30M"
    );
    fx.mgmt(
        "PUT",
        "/system/configs/pollingTime",
        Some(json!({"value": "24:00:00"})),
    );
    assert_eq!(
        fx.ddi_get("d", "tok-d", "").json()["config"]["polling"]["sleep"],
        "PT24H"
    );
    // below minPollingTime is rejected like hawkBit does
    assert_eq!(
        fx.mgmt(
            "PUT",
            "/system/configs/pollingTime",
            Some(json!({"value": "00:00:05"}))
        )
        .status,
        400
    );
    // jitter: value stays within ±10 %
    fx.mgmt(
        "PUT",
        "/system/configs/pollingTime",
        Some(json!({"value": "00:10:00~10%"})),
    );
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let s = fx.ddi_get("d", "tok-d", "").json()["config"]["polling"]["sleep"]
            .as_str()
            .unwrap()
            .to_string();
        let secs = hil_tests::sim::time::parse_hms(&s).unwrap();
        assert!((540..=660).contains(&secs), "{s}");
        seen.insert(secs);
    }
    assert!(seen.len() > 1, "jitter must vary the value: {seen:?}");
}

#[test]
fn config_data_link_lifecycle_and_modes() {
    let fx = Fx::new();
    let (tok, _, _, action) = fx.deployment("dev-01", json!({"type": "forced"}));
    assert!(
        fx.links("dev-01", &tok).get("configData").is_some(),
        "requested on first contact"
    );
    let put = |body: Value| fx.ddi_send("PUT", "dev-01", &tok, "/configData", &body);
    assert_eq!(
        put(json!({"mode": "merge", "data": {"hw": "2", "mac": "02:00:00:00:00:01"}})).status,
        200
    );
    assert!(
        fx.links("dev-01", &tok).get("configData").is_none(),
        "gone after a PUT"
    );
    assert_eq!(
        put(json!({"mode": "merge", "data": {"sw": "1"}})).status,
        200
    );
    let attrs = fx.mgmt("GET", "/targets/dev-01/attributes", None).json();
    assert_eq!(
        attrs,
        json!({"hw": "2", "mac": "02:00:00:00:00:01", "sw": "1"})
    );
    assert_eq!(
        put(json!({"mode": "remove", "data": {"sw": ""}})).status,
        200
    );
    assert_eq!(
        fx.mgmt("GET", "/targets/dev-01/attributes", None).json(),
        json!({"hw": "2", "mac": "02:00:00:00:00:01"})
    );
    assert_eq!(
        put(json!({"mode": "replace", "data": {"only": "x"}})).status,
        200
    );
    assert_eq!(
        fx.mgmt("GET", "/targets/dev-01/attributes", None).json(),
        json!({"only": "x"})
    );
    // validation
    assert_eq!(put(json!({"data": {}})).status, 400);
    assert_eq!(put(json!({"mode": "merge"})).status, 400);
    assert_eq!(
        put(json!({"mode": "upsert", "data": {"a": "b"}})).status,
        400
    );
    assert_eq!(put(json!({"data": {"ké": "b"}})).status, 400);
    assert_eq!(put(json!({"data": {"a": "x".repeat(129)}})).status, 400);
    assert_eq!(
        put(json!({"data": {"a": "x".repeat(128), "b": "<ok>[]{}|;:'\",./\\?!@#$%^&*()+="}}))
            .status,
        200
    );
    assert_eq!(put(json!({"data": {"k".repeat(129): "v"}})).status, 400);
    // mode defaults to merge; a null value is allowed
    assert_eq!(put(json!({"data": {"n": null}})).status, 200);
    let attrs = fx.mgmt("GET", "/targets/dev-01/attributes", None).json();
    assert_eq!(attrs.as_object().unwrap().len(), 4, "{attrs}");
    assert!(
        attrs.get("only").is_some() && attrs.get("n").is_some(),
        "{attrs}"
    );
    let many: serde_json::Map<String, Value> =
        (0..101).map(|i| (format!("k{i}"), json!("v"))).collect();
    let r = put(json!({"mode": "replace", "data": many}));
    assert_eq!(r.status, 429, "{}", r.text());
    // after a finished action the server asks again
    assert_eq!(
        fx.feedback("dev-01", &tok, action, "closed", "success")
            .status,
        200
    );
    assert!(fx.links("dev-01", &tok).get("configData").is_some());
}

fn deployment(fx: &Fx, cid: &str, tok: &str, action: u64) -> Value {
    let r = fx.ddi_get(cid, tok, &format!("/deploymentBase/{action}"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[test]
fn action_types_map_to_download_and_update() {
    let fx = Fx::new();
    for (i, (kind, dl, up)) in [
        ("forced", "forced", "forced"),
        ("soft", "attempt", "attempt"),
        ("downloadonly", "forced", "skip"),
    ]
    .iter()
    .enumerate()
    {
        let cid = format!("t{i}");
        let (tok, _, _, a) = fx.deployment(&cid, json!({"type": kind}));
        let d = deployment(&fx, &cid, &tok, a);
        assert_eq!(d["id"], json!(a.to_string()), "action ids are strings");
        assert_eq!(d["deployment"]["download"], *dl, "{kind}");
        assert_eq!(d["deployment"]["update"], *up, "{kind}");
        assert!(d["deployment"].get("maintenanceWindow").is_none());
        let chunk = &d["deployment"]["chunks"][0];
        assert_eq!(chunk["part"], "os");
        let art = &chunk["artifacts"][0];
        assert_eq!(art["size"], 36);
        assert!(
            art["_links"]["download-http"]["href"]
                .as_str()
                .unwrap()
                .starts_with(&fx.url)
        );
        assert!(
            art["_links"]["md5sum-http"]["href"]
                .as_str()
                .unwrap()
                .ends_with(".MD5SUM")
        );
        assert_eq!(art["hashes"]["sha1"].as_str().unwrap().len(), 40);
    }
    // timeforced: attempt until forcetime, then forced, and the ?c= hash changes (the deadline is
    // an hour away, then moved into the past: no waiting on the clock)
    let force_at = hil_tests::sim::time::now_ms() + 3_600_000;
    let (tok, _, _, a) = fx.deployment("tf", json!({"type": "timeforced", "forcetime": force_at}));
    let href1 = fx.links("tf", &tok)["deploymentBase"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        deployment(&fx, "tf", &tok, a)["deployment"]["download"],
        "attempt"
    );
    fx.sim().with_state(|s| {
        s.actions.get_mut(&a).unwrap().forcetime = hil_tests::sim::time::now_ms() - 1;
    });
    let href2 = fx.links("tf", &tok)["deploymentBase"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(href1, href2, "c changes when the action turns forced");
    let d = fx
        .call(
            "GET",
            &href2,
            &[("Authorization", &format!("TargetToken {tok}"))],
            None,
        )
        .json();
    assert_eq!(d["deployment"]["download"], "forced");
    assert_eq!(d["deployment"]["update"], "forced");
    // timeforced without forcetime is rejected
    let (_, ds) = fx.make_ds("9", b"z");
    assert_eq!(
        fx.mgmt(
            "POST",
            "/targets/tf/assignedDS",
            Some(json!({"id": ds, "type": "timeforced"}))
        )
        .status,
        400
    );
}

#[test]
fn maintenance_window_skip_until_available() {
    let fx = Fx::new();
    // a window that never opens in the test's lifetime: Jan 1st 03:00 only
    let (tok, _, _, a) = fx.deployment(
        "mw",
        json!({"type": "forced", "maintenanceWindow": {"schedule": "0 0 3 1 1 ?", "duration": "00:10:00", "timezone": "+00:00"}}),
    );
    let closed_href = fx.links("mw", &tok)["deploymentBase"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    let d = deployment(&fx, "mw", &tok, a);
    assert_eq!(d["deployment"]["download"], "forced");
    assert_eq!(d["deployment"]["update"], "skip");
    assert_eq!(d["deployment"]["maintenanceWindow"], "unavailable");
    fx.sim()
        .force_maintenance_window(Some("mw"), Some(WindowOverride::Open));
    let open_href = fx.links("mw", &tok)["deploymentBase"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(closed_href, open_href, "c changes when the window opens");
    let d = deployment(&fx, "mw", &tok, a);
    assert_eq!(d["deployment"]["update"], "forced");
    assert_eq!(d["deployment"]["maintenanceWindow"], "available");
    // via the HTTP control endpoint
    let r = fx.call(
        "POST",
        "/sim/maintenance",
        &[("Content-Type", "application/json")],
        Some(br#"{"target":"mw","window":"closed"}"#),
    );
    assert_eq!(r.status, 204);
    assert_eq!(
        deployment(&fx, "mw", &tok, a)["deployment"]["maintenanceWindow"],
        "unavailable"
    );
    // invalid schedules are rejected at assignment
    let (_, ds) = fx.make_ds("9", b"z");
    for bad in ["0 0 3 * * *", "0 0 3 L * ?", "nonsense"] {
        let r = fx.mgmt("POST", "/targets/mw/assignedDS", Some(json!({"id": ds, "maintenanceWindow": {"schedule": bad, "duration": "01:00:00", "timezone": "+00:00"}})));
        assert_eq!(r.status, 400, "{bad}");
    }
    let r = fx.mgmt("POST", "/targets/mw/assignedDS", Some(json!({"id": ds, "maintenanceWindow": {"schedule": "0 0 3 ? * *", "duration": "1h", "timezone": "+00:00"}})));
    assert_eq!(r.status, 400);
}

#[test]
fn lapsed_maintenance_schedule_cancels_the_action() {
    let fx = Fx::new();
    let (tok, _, _, a) = fx.deployment(
        "lap",
        json!({"maintenanceWindow": {"schedule": "0 0 3 1 1 ? 2020", "duration": "00:10:00", "timezone": "+00:00"}}),
    );
    let l = fx.links("lap", &tok);
    assert!(l.get("cancelAction").is_some(), "{l}");
    assert_eq!(fx.action_status("lap", a), "canceling");
}

#[test]
fn deployment_base_404s_history_and_retrieved() {
    let fx = Fx::new();
    let (tok, _, _, a) = fx.deployment("d1", json!({}));
    let (tok2, _, _, a2) = fx.deployment("d2", json!({}));
    assert_eq!(
        fx.ddi_get("d1", &tok, &format!("/deploymentBase/{a2}"))
            .status,
        404,
        "other target's action"
    );
    assert_eq!(fx.ddi_get("d1", &tok, "/deploymentBase/999999").status, 404);
    assert_eq!(fx.ddi_get("d1", &tok, "/deploymentBase/abc").status, 400);
    let _ = tok2;
    // the c parameter is ignored
    assert_eq!(
        fx.ddi_get("d1", &tok, &format!("/deploymentBase/{a}?c=123"))
            .status,
        200
    );
    fx.ddi_get("d1", &tok, &format!("/deploymentBase/{a}"));
    let status = fx
        .mgmt("GET", &format!("/targets/d1/actions/{a}/status"), None)
        .json();
    let retrieved = status["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "retrieved")
        .count();
    assert_eq!(
        retrieved, 1,
        "RETRIEVED is not repeated while it is the latest entry"
    );
    assert_eq!(fx.action_status("d1", a), "retrieved");
    let post_feedback = |fb: &Value| {
        fx.ddi_send(
            "POST",
            "d1",
            &tok,
            &format!("/deploymentBase/{a}/feedback"),
            fb,
        )
        .status
    };
    let fb = json!({"status": {"execution": "proceeding", "result": {"finished": "none", "progress": {"cnt": 1, "of": 3}}, "details": ["one", "two"]}});
    assert_eq!(post_feedback(&fb), 200);
    let fb = json!({"status": {"execution": "proceeding", "result": {"finished": "none"}, "code": 7, "details": ["three"]}});
    assert_eq!(post_feedback(&fb), 200);
    let d = fx
        .ddi_get("d1", &tok, &format!("/deploymentBase/{a}?actionHistory=3"))
        .json();
    assert_eq!(d["actionHistory"]["status"], "RUNNING");
    assert_eq!(
        d["actionHistory"]["messages"],
        json!(["Device reported status code: 7", "three", "two"])
    );
    let d = fx
        .ddi_get("d1", &tok, &format!("/deploymentBase/{a}?actionHistory=-1"))
        .json();
    assert_eq!(
        d["actionHistory"]["messages"].as_array().unwrap().len(),
        4,
        "negative = all (capped at 100), server messages excluded"
    );
    let d = fx
        .ddi_get("d1", &tok, &format!("/deploymentBase/{a}"))
        .json();
    assert!(d.get("actionHistory").is_none());
    let act = fx
        .mgmt("GET", &format!("/targets/d1/actions/{a}"), None)
        .json();
    assert_eq!(act["lastStatusCode"], 7);
}

#[test]
fn action_history_is_capped_at_100() {
    // ddi-api.md §1.3: actionHistory=N > 0 gives the last N device messages; ≥ 100 (or negative) ⇒ 100
    let fx = Fx::new();
    let (tok, _, _, a) = fx.deployment("ah", json!({}));
    for batch in 0..3 {
        let lines: Vec<String> = (0..50).map(|i| format!("b{batch} l{i}")).collect();
        let fb = json!({"status": {"execution": "proceeding", "result": {"finished": "none"}, "details": lines}});
        let r = fx.ddi_send(
            "POST",
            "ah",
            &tok,
            &format!("/deploymentBase/{a}/feedback"),
            &fb,
        );
        assert_eq!(r.status, 200);
    }
    let count = |n: &str| {
        let d = fx
            .ddi_get(
                "ah",
                &tok,
                &format!("/deploymentBase/{a}?actionHistory={n}"),
            )
            .json();
        d["actionHistory"]["messages"].as_array().unwrap().len()
    };
    assert_eq!(count("99"), 99);
    assert_eq!(count("100"), 100);
    assert_eq!(count("500"), 100);
    assert_eq!(count("-5"), 100);
}

#[test]
fn feedback_validation() {
    let fx = Fx::new();
    let (tok, _, _, a) = fx.deployment("v", json!({}));
    let path = format!("/deploymentBase/{a}/feedback");
    let post = |b: Value| fx.ddi_send("POST", "v", &tok, &path, &b);
    for bad in [
        json!({}),
        json!({"status": {"result": {"finished": "none"}}}),
        json!({"status": {"execution": "proceeding"}}),
        json!({"status": {"execution": "proceeding", "result": {}}}),
        json!({"status": {"execution": "walking", "result": {"finished": "none"}}}),
        json!({"status": {"execution": "closed", "result": {"finished": "maybe"}}}),
        json!({"status": {"execution": "proceeding", "result": {"finished": "none", "progress": {"of": 2}}}}),
        json!({"status": {"execution": "proceeding", "result": {"finished": "none"}, "details": ["<b>bold</b>"]}}),
        json!({"status": {"execution": "proceeding", "result": {"finished": "none"}, "details": "not an array"}}),
        json!({"timestamp": "20240511T121314", "status": {"execution": "proceeding", "result": {"finished": "none"}}}),
    ] {
        let r = post(bad.clone());
        assert_eq!(r.status, 400, "{bad}");
        assert!(!r.json()["message"].as_str().unwrap().is_empty());
    }
    let auth = format!("TargetToken {tok}");
    let url = format!("{}{path}", fx.ddi("v"));
    let r = fx.call(
        "POST",
        &url,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some(b"{not json"),
    );
    assert_eq!(r.status, 400);
    let r = fx.call(
        "POST",
        &url,
        &[("Authorization", &auth), ("Content-Type", "text/plain")],
        Some(b"{}"),
    );
    assert_eq!(r.status, 415);
    // legacy fields are accepted and ignored; 200 with an empty body
    let r = post(
        json!({"id": "1", "time": "20240511T121314", "status": {"execution": "proceeding", "result": {"finished": "none"}, "details": ["a & b > c"]}}),
    );
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    // 406 for a non-JSON Accept
    let r = fx.call(
        "GET",
        &fx.ddi("v"),
        &[("Authorization", &auth), ("Accept", "application/xml")],
        None,
    );
    assert_eq!(r.status, 406);
}

#[test]
fn closed_success_failure_and_410() {
    let fx = Fx::new();
    let (tok, _, ds, a) = fx.deployment("ok", json!({}));
    let r = fx.ddi_send("POST", "ok", &tok, &format!("/deploymentBase/{a}/feedback"), &json!({"status": {"execution": "closed", "result": {"finished": "success"}, "details": ["booted B"]}}));
    assert_eq!(r.status, 200);
    let t = fx.mgmt("GET", "/targets/ok", None).json();
    assert_eq!(t["updateStatus"], "in_sync");
    assert_eq!(
        fx.mgmt("GET", "/targets/ok/installedDS", None).json()["id"],
        ds
    );
    let l = fx.links("ok", &tok);
    assert!(l.get("deploymentBase").is_none());
    assert!(
        l["installedBase"]["href"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/installedBase/{a}"))
    );
    assert_eq!(
        fx.feedback("ok", &tok, a, "proceeding", "none").status,
        410,
        "closed action"
    );
    assert_eq!(fx.feedback("ok", &tok, a, "closed", "success").status, 410);
    let ib = fx.ddi_get("ok", &tok, &format!("/installedBase/{a}"));
    assert_eq!(ib.status, 200);
    assert_eq!(ib.json()["deployment"]["chunks"][0]["part"], "os");
    // failure: target error, assigned DS cleared
    let (tok2, _, _, a2) = fx.deployment("bad", json!({}));
    assert_eq!(
        fx.ddi_get("bad", &tok2, &format!("/installedBase/{a2}"))
            .status,
        404,
        "still active"
    );
    assert_eq!(
        fx.feedback("bad", &tok2, a2, "closed", "failure").status,
        200
    );
    let t = fx.mgmt("GET", "/targets/bad", None).json();
    assert_eq!(t["updateStatus"], "error");
    assert_eq!(fx.mgmt("GET", "/targets/bad/assignedDS", None).status, 204);
    assert_eq!(fx.action_status("bad", a2), "error");
    assert_eq!(
        fx.ddi_get("bad", &tok2, &format!("/installedBase/{a2}"))
            .status,
        404
    );
    // an old timestamp does not change the installed DS
    let (tok3, _, _, a3) = fx.deployment("old", json!({}));
    fx.sim().with_state(|s| {
        s.targets.get_mut("old").unwrap().installation_date = Some(2_000_000_000_000)
    });
    let r = fx.ddi_send("POST", "old", &tok3, &format!("/deploymentBase/{a3}/feedback"), &json!({"timestamp": 1_000, "status": {"execution": "closed", "result": {"finished": "success"}}}));
    assert_eq!(r.status, 200);
    assert_eq!(fx.mgmt("GET", "/targets/old/installedDS", None).status, 204);
    assert_eq!(
        fx.mgmt("GET", "/targets/old", None).json()["updateStatus"],
        "pending",
        "assigned != installed"
    );
}

#[test]
fn failure_clears_the_assigned_ds_even_with_an_installed_one() {
    // ddi-api.md §1.4: closed+failure ⇒ target ERROR, assigned DS cleared (not reset to the installed one)
    let fx = Fx::new();
    let (tok, _, ds1, a1) = fx.deployment("fx", json!({}));
    assert_eq!(fx.feedback("fx", &tok, a1, "closed", "success").status, 200);
    let (_, ds2) = fx.make_ds("2.0-fx", b"second");
    let r = fx.mgmt("POST", "/targets/fx/assignedDS", Some(json!({"id": ds2})));
    let a2 = r.json()["assignedActions"][0]["id"].as_u64().unwrap();
    assert_eq!(
        fx.mgmt("GET", "/targets/fx/assignedDS", None).json()["id"],
        ds2
    );
    assert_eq!(fx.feedback("fx", &tok, a2, "closed", "failure").status, 200);
    assert_eq!(
        fx.mgmt("GET", "/targets/fx", None).json()["updateStatus"],
        "error"
    );
    assert_eq!(
        fx.mgmt("GET", "/targets/fx/assignedDS", None).status,
        204,
        "assigned DS cleared"
    );
    assert_eq!(
        fx.mgmt("GET", "/targets/fx/installedDS", None).json()["id"],
        ds1,
        "installed DS unchanged"
    );
}

#[test]
fn installed_base_link_only_for_finished_actions() {
    // ddi-api.md §1.2: installedBase = last successfully *finished* action; a download-only action that
    // ended DOWNLOADED installed nothing
    let fx = Fx::new();
    let (tok, _, _, a) = fx.deployment("ibl", json!({"type": "downloadonly"}));
    assert_eq!(
        fx.feedback("ibl", &tok, a, "downloaded", "success").status,
        200
    );
    assert!(
        fx.links("ibl", &tok).get("installedBase").is_none(),
        "{}",
        fx.links("ibl", &tok)
    );
    // after a real install the link points at that action, and a later download-only does not move it
    let (_, ds2) = fx.make_ds("2.0-ibl", b"second");
    let r = fx.mgmt("POST", "/targets/ibl/assignedDS", Some(json!({"id": ds2})));
    let a2 = r.json()["assignedActions"][0]["id"].as_u64().unwrap();
    assert_eq!(
        fx.feedback("ibl", &tok, a2, "closed", "success").status,
        200
    );
    let (_, ds3) = fx.make_ds("3.0-ibl", b"third");
    let r = fx.mgmt(
        "POST",
        "/targets/ibl/assignedDS",
        Some(json!({"id": ds3, "type": "downloadonly"})),
    );
    let a3 = r.json()["assignedActions"][0]["id"].as_u64().unwrap();
    assert_eq!(
        fx.feedback("ibl", &tok, a3, "downloaded", "success").status,
        200
    );
    let href = fx.links("ibl", &tok)["installedBase"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(href.ends_with(&format!("/installedBase/{a2}")), "{href}");
}

#[test]
fn downloadonly_closes_on_downloaded_and_informational_statuses() {
    let fx = Fx::new();
    let (tok, _, _, a) = fx.deployment("do", json!({"type": "downloadonly"}));
    fx.ddi_send(
        "PUT",
        "do",
        &tok,
        "/configData",
        &json!({"data": {"a": "b"}}),
    );
    for ex in ["download", "proceeding", "scheduled", "resumed"] {
        assert_eq!(fx.feedback("do", &tok, a, ex, "none").status, 200, "{ex}");
    }
    assert_eq!(fx.feedback("do", &tok, a, "rejected", "none").status, 200);
    assert_eq!(
        fx.action_status("do", a),
        "warning",
        "rejected stores WARNING, action stays open"
    );
    assert_eq!(
        fx.feedback("do", &tok, a, "downloaded", "success").status,
        200
    );
    assert_eq!(fx.action_status("do", a), "downloaded");
    assert_eq!(fx.feedback("do", &tok, a, "proceeding", "none").status, 410);
    assert!(
        fx.links("do", &tok).get("configData").is_some(),
        "attributes requested after DOWNLOADED"
    );
    // for other types downloaded is informational
    let (tok2, _, _, a2) = fx.deployment("f", json!({"type": "forced"}));
    assert_eq!(
        fx.feedback("f", &tok2, a2, "downloaded", "success").status,
        200
    );
    assert_eq!(
        fx.feedback("f", &tok2, a2, "proceeding", "none").status,
        200
    );
    // device-side canceled is informational on deploymentBase
    assert_eq!(fx.feedback("f", &tok2, a2, "canceled", "none").status, 200);
    assert!(fx.links("f", &tok2).get("deploymentBase").is_some());
}

#[test]
fn feedback_mapping_stores_the_reference_status_types() {
    // ddi-api.md §1.4 mapping table: execution → stored ActionStatus; `closed` with `none` is FINISHED
    let fx = Fx::new();
    let (tok, _, ds, a) = fx.deployment("map", json!({}));
    let newest = || {
        let st = fx
            .mgmt("GET", &format!("/targets/map/actions/{a}/status"), None)
            .json();
        st["content"][0]["type"].as_str().unwrap().to_string()
    };
    for (exec, fin, stored, action) in [
        ("proceeding", "none", "running", "running"),
        ("scheduled", "none", "running", "running"),
        ("resumed", "success", "running", "running"),
        ("download", "none", "download", "download"),
        ("downloaded", "success", "downloaded", "downloaded"),
        ("rejected", "failure", "warning", "warning"),
        // device-side canceled: a CANCELED entry, the action itself is not canceled
        ("canceled", "none", "canceled", "warning"),
    ] {
        assert_eq!(fx.feedback("map", &tok, a, exec, fin).status, 200, "{exec}");
        assert_eq!(newest(), stored, "{exec}/{fin}");
        assert_eq!(fx.action_status("map", a), action, "{exec}/{fin}");
    }
    assert!(fx.links("map", &tok).get("deploymentBase").is_some());
    assert_eq!(fx.feedback("map", &tok, a, "closed", "none").status, 200);
    assert_eq!(newest(), "finished");
    assert_eq!(fx.action_status("map", a), "finished");
    assert_eq!(
        fx.mgmt("GET", "/targets/map/installedDS", None).json()["id"],
        ds
    );
}

#[test]
fn quotas_give_429() {
    let fx = Fx::new();
    let (tok, _, _, a) = fx.deployment("q", json!({}));
    let path = format!("/deploymentBase/{a}/feedback");
    let many: Vec<String> = (0..51).map(|i| format!("line {i}")).collect();
    let r = fx.ddi_send("POST", "q", &tok, &path, &json!({"status": {"execution": "proceeding", "result": {"finished": "none"}, "details": many}}));
    assert_eq!(r.status, 429);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("Quota exceeded")
    );
    let fifty: Vec<String> = (0..50).map(|i| format!("line {i}")).collect();
    let r = fx.ddi_send("POST", "q", &tok, &path, &json!({"status": {"execution": "proceeding", "result": {"finished": "none"}, "details": fifty}}));
    assert_eq!(r.status, 200);
    let existing = fx.sim().with_state(|s| s.actions[&a].history.len());
    for _ in existing..1000 {
        assert_eq!(fx.feedback("q", &tok, a, "proceeding", "none").status, 200);
    }
    assert_eq!(
        fx.feedback("q", &tok, a, "proceeding", "none").status,
        429,
        "1001st status"
    );
    assert_eq!(
        fx.feedback("q", &tok, a, "closed", "success").status,
        200,
        "final closed is always accepted"
    );
    // long details are split into 512-char messages
    let (tok2, _, _, a2) = fx.deployment("q2", json!({}));
    let r = fx.ddi_send("POST", "q2", &tok2, &format!("/deploymentBase/{a2}/feedback"), &json!({"status": {"execution": "proceeding", "result": {"finished": "none"}, "details": ["x".repeat(1100)]}}));
    assert_eq!(r.status, 200);
    let st = fx
        .mgmt("GET", &format!("/targets/q2/actions/{a2}/status"), None)
        .json();
    assert_eq!(st["content"][0]["messages"].as_array().unwrap().len(), 3);
}

#[test]
fn cancel_handshake() {
    let fx = Fx::new();
    let (tok, _, _, a) = fx.deployment("c", json!({}));
    let cancel_fb = |ex: &str, fin: &str| {
        fx.ddi_send(
            "POST",
            "c",
            &tok,
            &format!("/cancelAction/{a}/feedback"),
            &json!({"status": {"execution": ex, "result": {"finished": fin}}}),
        )
    };
    assert_eq!(
        fx.ddi_get("c", &tok, &format!("/cancelAction/{a}")).status,
        404,
        "not canceling"
    );
    assert_eq!(cancel_fb("closed", "success").status, 405);
    assert_eq!(
        fx.mgmt("DELETE", &format!("/targets/c/actions/{a}"), None)
            .status,
        204
    );
    let l = fx.links("c", &tok);
    assert!(l.get("deploymentBase").is_none());
    assert!(
        l["cancelAction"]["href"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/cancelAction/{a}"))
    );
    let r = fx.ddi_get("c", &tok, &format!("/cancelAction/{a}"));
    assert_eq!(
        r.json(),
        json!({"id": a.to_string(), "cancelAction": {"stopId": a.to_string()}})
    );
    // the first GET logs RETRIEVED (once) and the action stays canceling
    fx.ddi_get("c", &tok, &format!("/cancelAction/{a}"));
    let st = fx
        .mgmt("GET", &format!("/targets/c/actions/{a}/status"), None)
        .json();
    let types: Vec<&str> = st["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types[0], "retrieved", "{types:?}");
    assert_eq!(
        types.iter().filter(|t| **t == "retrieved").count(),
        1,
        "{types:?}"
    );
    assert_eq!(fx.action_status("c", a), "canceling");
    assert_eq!(
        fx.ddi_get("c", &tok, &format!("/deploymentBase/{a}"))
            .status,
        404,
        "canceling"
    );
    // 'canceled' is stored as a warning and does not accept the cancel
    assert_eq!(cancel_fb("canceled", "success").status, 200);
    assert_eq!(fx.action_status("c", a), "canceling");
    let st = fx
        .mgmt("GET", &format!("/targets/c/actions/{a}/status"), None)
        .json();
    assert_eq!(st["content"][0]["type"], "warning");
    // rejected: back to running, deploymentBase returns
    assert_eq!(cancel_fb("rejected", "none").status, 200);
    assert_eq!(fx.action_status("c", a), "running");
    assert!(fx.links("c", &tok).get("deploymentBase").is_some());
    assert_eq!(cancel_fb("closed", "success").status, 405);
    // closed/failure also returns to running
    fx.mgmt("DELETE", &format!("/targets/c/actions/{a}"), None);
    assert_eq!(cancel_fb("closed", "failure").status, 200);
    assert_eq!(fx.action_status("c", a), "running");
    // accept
    fx.mgmt("DELETE", &format!("/targets/c/actions/{a}"), None);
    assert_eq!(cancel_fb("proceeding", "none").status, 200);
    assert_eq!(cancel_fb("closed", "success").status, 200);
    assert_eq!(fx.action_status("c", a), "canceled");
    let l = fx.links("c", &tok);
    assert!(l.get("cancelAction").is_none() && l.get("deploymentBase").is_none());
    assert_eq!(fx.feedback("c", &tok, a, "closed", "success").status, 410);
    // a repeated cancel acceptance (lost response): 405, "not in canceling state" (§1.5, §1.10, §5)
    assert_eq!(cancel_fb("closed", "success").status, 405);
    assert_eq!(
        fx.ddi_get("c", &tok, &format!("/installedBase/{a}")).status,
        404,
        "canceled"
    );
}

#[test]
fn reassignment_cancels_the_old_action_first_and_force_quit() {
    let fx = Fx::new();
    let (tok, _, _, a1) = fx.deployment("r", json!({}));
    let (_, ds2) = fx.make_ds("2.0", b"second");
    let r = fx.mgmt("POST", "/targets/r/assignedDS", Some(json!({"id": ds2})));
    let a2 = r.json()["assignedActions"][0]["id"].as_u64().unwrap();
    // same DS again: alreadyAssigned
    let r = fx.mgmt("POST", "/targets/r/assignedDS", Some(json!({"id": ds2})));
    assert_eq!(r.json()["alreadyAssigned"], 1);
    assert_eq!(fx.action_status("r", a1), "canceling");
    let l = fx.links("r", &tok);
    assert!(
        l["cancelAction"]["href"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/cancelAction/{a1}")),
        "{l}"
    );
    let r = fx.ddi_send(
        "POST",
        "r",
        &tok,
        &format!("/cancelAction/{a1}/feedback"),
        &json!({"status": {"execution": "closed", "result": {"finished": "success"}}}),
    );
    assert_eq!(r.status, 200);
    let l = fx.links("r", &tok);
    assert!(
        l["deploymentBase"]["href"]
            .as_str()
            .unwrap()
            .contains(&format!("/deploymentBase/{a2}?c=")),
        "{l}"
    );
    // force quit needs canceling first
    assert_eq!(
        fx.mgmt(
            "DELETE",
            &format!("/targets/r/actions/{a2}?force=true"),
            None
        )
        .status,
        400
    );
    fx.mgmt("DELETE", &format!("/targets/r/actions/{a2}"), None);
    assert_eq!(
        fx.mgmt(
            "DELETE",
            &format!("/targets/r/actions/{a2}?force=true"),
            None
        )
        .status,
        204
    );
    assert_eq!(fx.action_status("r", a2), "canceled");
    // autoclose: old action closed silently
    fx.mgmt(
        "PUT",
        "/system/configs/repository.actions.autoclose.enabled",
        Some(json!({"value": true})),
    );
    let (_, ds3) = fx.make_ds("3.0", b"third");
    let a3 = fx
        .mgmt("POST", "/targets/r/assignedDS", Some(json!({"id": ds3})))
        .json()["assignedActions"][0]["id"]
        .as_u64()
        .unwrap();
    let (_, ds4) = fx.make_ds("4.0", b"fourth");
    let a4 = fx
        .mgmt("POST", "/targets/r/assignedDS", Some(json!({"id": ds4})))
        .json()["assignedActions"][0]["id"]
        .as_u64()
        .unwrap();
    assert_eq!(fx.action_status("r", a3), "canceled");
    assert!(
        fx.links("r", &tok)["deploymentBase"]["href"]
            .as_str()
            .unwrap()
            .contains(&format!("/{a4}?"))
    );
}

#[test]
fn installed_base_put() {
    let fx = Fx::new();
    fx.target("ib");
    let (_, ds) = fx.make_ds("7.0", b"x");
    let put = |b: Value| fx.ddi_send("PUT", "ib", "tok-ib", "/installedBase", &b);
    assert_eq!(put(json!({"name": "fw", "version": "7.0"})).status, 201);
    assert_eq!(put(json!({"name": "fw", "version": "7.0"})).status, 200);
    assert_eq!(put(json!({"name": "fw", "version": "nope"})).status, 404);
    assert_eq!(put(json!({"name": "fw"})).status, 400);
    assert_eq!(
        fx.mgmt("GET", "/targets/ib/installedDS", None).json()["id"],
        ds
    );
    assert_eq!(
        fx.mgmt("GET", "/targets/ib", None).json()["updateStatus"],
        "in_sync"
    );
}

#[test]
fn confirmation_flow() {
    let fx = Fx::with(SimConfig {
        confirmation_flow: true,
        ..SimConfig::default()
    });
    let (tok, _, _, a) = fx.deployment("u", json!({"confirmationRequired": true}));
    let l = fx.links("u", &tok);
    assert!(l.get("deploymentBase").is_none());
    assert!(
        l["confirmationBase"]["href"]
            .as_str()
            .unwrap()
            .contains(&format!("/confirmationBase/{a}?c="))
    );
    assert_eq!(
        fx.ddi_get("u", &tok, &format!("/deploymentBase/{a}"))
            .status,
        404
    );
    assert_eq!(fx.feedback("u", &tok, a, "proceeding", "none").status, 404);
    let root = fx.ddi_get("u", &tok, "/confirmationBase").json();
    assert_eq!(
        root["autoConfirm"],
        json!({"active": false, "activatedAt": 0})
    );
    assert!(root["_links"]["activateAutoConfirm"].is_object());
    assert!(root["_links"]["confirmationBase"].is_object());
    let c = fx
        .ddi_get("u", &tok, &format!("/confirmationBase/{a}"))
        .json();
    assert_eq!(c["id"], a.to_string());
    assert_eq!(c["confirmation"]["chunks"][0]["part"], "os");
    let conf = |v: Value| {
        fx.ddi_send(
            "POST",
            "u",
            &tok,
            &format!("/confirmationBase/{a}/feedback"),
            &v,
        )
    };
    assert_eq!(conf(json!({"confirmation": "maybe"})).status, 400);
    assert_eq!(conf(json!({"code": 1})).status, 400);
    assert_eq!(
        conf(json!({"confirmation": "denied", "details": ["user said no"]})).status,
        200
    );
    assert_eq!(
        fx.action_status("u", a),
        "wait_for_confirmation",
        "denied stays waiting"
    );
    assert!(fx.links("u", &tok).get("confirmationBase").is_some());
    assert_eq!(
        conf(json!({"confirmation": "confirmed", "code": 0})).status,
        200
    );
    assert!(fx.links("u", &tok).get("deploymentBase").is_some());
    assert_eq!(
        fx.ddi_get("u", &tok, &format!("/confirmationBase/{a}"))
            .status,
        404
    );
    assert_eq!(
        conf(json!({"confirmation": "confirmed"})).status,
        404,
        "not waiting any more"
    );
    fx.feedback("u", &tok, a, "closed", "success");
    assert_eq!(
        conf(json!({"confirmation": "confirmed"})).status,
        410,
        "closed"
    );
    // auto-confirm: 409 when already active; new actions skip the wait
    let act = |b: Option<Value>| {
        let auth = format!("TargetToken {tok}");
        let body = b.map(|v| v.to_string());
        fx.call(
            "POST",
            &format!("{}/confirmationBase/activateAutoConfirm", fx.ddi("u")),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_deref().map(str::as_bytes),
        )
    };
    assert_eq!(
        act(Some(json!({"initiator": "hmi", "remark": "ok"}))).status,
        200
    );
    assert_eq!(act(None).status, 409);
    let root = fx.ddi_get("u", &tok, "/confirmationBase").json();
    assert_eq!(root["autoConfirm"]["active"], true);
    assert_eq!(root["autoConfirm"]["initiator"], "hmi");
    assert!(root["_links"]["deactivateAutoConfirm"].is_object());
    let (_, ds2) = fx.make_ds("2", b"y");
    let a2 = fx
        .sim()
        .assign(
            "u",
            ds2,
            hil_tests::sim::AssignOptions {
                confirmation_required: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(fx.action_status("u", a2), "running");
    let auth = format!("TargetToken {tok}");
    let r = fx.call(
        "POST",
        &format!("{}/confirmationBase/deactivateAutoConfirm", fx.ddi("u")),
        &[("Authorization", &auth)],
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        fx.ddi_get("u", &tok, "/confirmationBase").json()["autoConfirm"]["active"],
        false
    );
    // activating auto-confirm confirms a waiting action
    let (tok3, _, _, a3) = fx.deployment("w", json!({"confirmationRequired": true}));
    assert_eq!(fx.action_status("w", a3), "wait_for_confirmation");
    let r = fx.call(
        "POST",
        &format!("{}/confirmationBase/activateAutoConfirm", fx.ddi("w")),
        &[("Authorization", &format!("TargetToken {tok3}"))],
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(fx.action_status("w", a3), "running");
}

fn artifact_url(fx: &Fx, cid: &str, sm: u64, name: &str) -> String {
    format!("{}/softwaremodules/{sm}/artifacts/{name}", fx.ddi(cid))
}

#[test]
fn artifact_download_ranges_and_md5sum() {
    let fx = Fx::new();
    let (tok, sm, _, a) = fx.deployment("art", json!({}));
    let data = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let auth = format!("TargetToken {tok}");
    let url = artifact_url(&fx, "art", sm, "rootfs.raucb");
    let get = |h: &[(&str, &str)]| {
        let mut all = vec![("Authorization", auth.as_str())];
        all.extend_from_slice(h);
        fx.call("GET", &url, &all, None)
    };
    let full = get(&[]);
    assert_eq!(full.status, 200);
    assert_eq!(full.body, data);
    let etag = full.header("etag").unwrap().to_string();
    let sha1 = fx
        .sim()
        .with_state(|s| s.modules[&sm].artifacts[0].sha1.clone());
    assert_eq!(etag, format!("\"{sha1}\""));
    assert_eq!(full.header("accept-ranges"), Some("bytes"));
    assert!(full.header("last-modified").unwrap().ends_with("GMT"));
    assert_eq!(
        full.header("content-disposition"),
        Some("attachment;filename=rootfs.raucb")
    );
    let r = get(&[("Range", "bytes=10-19")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data[10..20]);
    assert_eq!(r.header("content-range"), Some("bytes 10-19/36"));
    let r = get(&[("Range", "bytes=30-")]);
    assert_eq!(r.body, &data[30..]);
    let r = get(&[("Range", "bytes=-4")]);
    assert_eq!(r.body, &data[32..]);
    // multi-range
    let r = get(&[("Range", "bytes=0-1,5-6")]);
    assert_eq!(r.status, 206);
    let ct = r.header("content-type").unwrap();
    assert!(ct.starts_with("multipart/byteranges; boundary="));
    let text = r.text();
    assert!(text.contains("Content-Range: bytes 0-1/36\r\n\r\n01\r\n"));
    assert!(text.contains("Content-Range: bytes 5-6/36\r\n\r\n56\r\n"));
    assert!(text.ends_with("--THIS_STRING_SEPARATES_MULTIPART--"));
    assert_eq!(
        r.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        r.body.len()
    );
    // 416
    for bad in ["bytes=36-", "bytes=9-3", "bytes=x-1", "pages=1-2"] {
        let r = get(&[("Range", bad)]);
        assert_eq!(r.status, 416, "{bad}");
        assert_eq!(r.header("content-range"), Some("bytes */36"));
    }
    // If-Range
    assert_eq!(
        get(&[("Range", "bytes=0-1"), ("If-Range", &etag)]).status,
        206
    );
    let r = get(&[("Range", "bytes=0-1"), ("If-Range", "\"other\"")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, data);
    // If-Range with the Last-Modified date is honoured too
    let lm = full.header("last-modified").unwrap().to_string();
    let r = get(&[("Range", "bytes=0-1"), ("If-Range", &lm)]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data[..2]);
    assert_eq!(full.header("x-content-type-options"), Some("nosniff"));
    // If-Match / If-None-Match
    assert_eq!(get(&[("If-Match", "\"nope\"")]).status, 412);
    assert_eq!(get(&[("If-Match", &etag)]).status, 200);
    assert_eq!(get(&[("If-None-Match", &etag)]).status, 304);
    // HEAD
    let h = fx.call("HEAD", &url, &[("Authorization", &auth)], None);
    assert_eq!(h.status, 200);
    assert_eq!(h.header("content-length"), Some("36"));
    // .MD5SUM
    let md5 = fx
        .sim()
        .with_state(|s| s.modules[&sm].artifacts[0].md5.clone());
    let m = fx.call(
        "GET",
        &format!("{url}.MD5SUM"),
        &[("Authorization", &auth)],
        None,
    );
    assert_eq!(m.status, 200);
    assert_eq!(m.text(), format!("{md5}  rootfs.raucb"));
    // DOWNLOAD status logged for full GETs and MD5SUM, not for ranges or HEAD
    let st = fx
        .mgmt(
            "GET",
            &format!("/targets/art/actions/{a}/status?limit=500"),
            None,
        )
        .json();
    let downloads = st["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "download")
        .count();
    // full GET, If-Range mismatch (full body), If-Match ok, MD5SUM; not ranges, 304, 412 or HEAD
    assert_eq!(downloads, 4, "{st}");
    // artifact list and access rules
    let list = fx
        .ddi_get("art", &tok, &format!("/softwaremodules/{sm}/artifacts"))
        .json();
    assert_eq!(list[0]["filename"], "rootfs.raucb");
    assert_eq!(list[0]["size"], 36);
    assert_eq!(
        fx.call(
            "GET",
            &artifact_url(&fx, "art", sm, "missing.bin"),
            &[("Authorization", &auth)],
            None
        )
        .status,
        404
    );
    let other = fx.target("other");
    assert_eq!(
        fx.call(
            "GET",
            &artifact_url(&fx, "other", sm, "rootfs.raucb"),
            &[("Authorization", &format!("TargetToken {other}"))],
            None
        )
        .status,
        404
    );
    assert_eq!(fx.call("GET", &url, &[], None).status, 401);
}

#[test]
fn poll_interval_shortened_before_a_window_opens() {
    let fx = Fx::new();
    // a daily window starting ~290 s from now (UTC); default pollingTime 5 min
    let start = hil_tests::sim::time::now_ms() / 1000 + 290;
    let (h, m, s) = ((start / 3600) % 24, (start / 60) % 60, start % 60);
    let (tok, _, _, _) = fx.deployment(
        "soon",
        json!({"maintenanceWindow": {"schedule": format!("{s} {m} {h} ? * *"), "duration": "00:10:00", "timezone": "+00:00"}}),
    );
    let before = hil_tests::sim::time::now_ms();
    let sleep = fx.ddi_get("soon", &tok, "").json()["config"]["polling"]["sleep"]
        .as_str()
        .unwrap()
        .to_string();
    let after = hil_tests::sim::time::now_ms();
    let secs = hil_tests::sim::time::parse_hms(&sleep).unwrap();
    // (windowStart − now) / 3 in whole seconds, never below minPollingTime (30 s), for the
    // server's `now` between the client's clock before and after the poll (≈ 96 s)
    let expect = |now: i64| (((start as i64 * 1000 - now).max(0) / 1000) as u64 / 3).max(30);
    assert!(
        (expect(after)..=expect(before)).contains(&secs),
        "{sleep}: not within {}..={} s",
        expect(after),
        expect(before)
    );
    // a target without a window keeps the tenant value
    fx.target("plain");
    assert_eq!(
        fx.ddi_get("plain", "tok-plain", "").json()["config"]["polling"]["sleep"],
        "00:05:00"
    );
}
