//! Malformed input never panics: every endpoint answers < 500 (400 with a message for bad bodies).

mod common;

use common::Fx;
use hil_tests::sim::http::base64_encode;
use serde_json::json;

#[test]
fn garbage_bodies_get_4xx_with_a_message() {
    let fx = Fx::new();
    let (tok, sm, ds, a) = fx.deployment("m", json!({}));
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"[null]".to_vec(),
        b"[1,2,3]".to_vec(),
        b"\"str\"".to_vec(),
        b"{\"status\":[]}".to_vec(),
        b"{\"data\":{\"k\":{\"nested\":1}}}".to_vec(),
        b"{\"name\":1,\"version\":[],\"type\":{}}".to_vec(),
        b"[{\"name\":\"x\",\"version\":\"1\",\"type\":\"os\",\"modules\":\"all\"}]".to_vec(),
        b"{\"id\":-1,\"maintenanceWindow\":[]}".to_vec(),
        b"{\"amountGroups\":1e99,\"name\":\"r\",\"distributionSetId\":1,\"targetFilterQuery\":\"((((\"}".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x01],
        format!("{{\"status\":{{\"execution\":\"proceeding\",\"result\":{{\"finished\":\"none\"}},\"details\":[\"{}\"]}}}}", "\\u0000".repeat(10)).into_bytes(),
    ];
    let ddi = |p: &str| format!("{}{p}", fx.ddi("m"));
    let targets: Vec<(&str, String, bool)> = vec![
        ("POST", ddi(&format!("/deploymentBase/{a}/feedback")), false),
        ("POST", ddi(&format!("/cancelAction/{a}/feedback")), false),
        ("PUT", ddi("/configData"), false),
        ("PUT", ddi("/installedBase"), false),
        (
            "POST",
            ddi(&format!("/confirmationBase/{a}/feedback")),
            false,
        ),
        ("POST", ddi("/confirmationBase/activateAutoConfirm"), false),
        ("POST", "/rest/v1/softwaremodules".into(), true),
        (
            "POST",
            format!("/rest/v1/softwaremodules/{sm}/metadata"),
            true,
        ),
        ("POST", "/rest/v1/distributionsets".into(), true),
        (
            "POST",
            format!("/rest/v1/distributionsets/{ds}/assignedTargets"),
            true,
        ),
        ("POST", "/rest/v1/targets".into(), true),
        ("POST", "/rest/v1/targets/m/assignedDS".into(), true),
        ("PUT", "/rest/v1/system/configs/pollingTime".into(), true),
        ("POST", "/rest/v1/rollouts".into(), true),
        ("PUT", "/sim/faults".into(), false),
        ("PUT", "/sim/faults/global".into(), false),
        ("POST", "/sim/maintenance".into(), false),
        ("POST", "/sim/restart".into(), false),
    ];
    let basic = format!("Basic {}", base64_encode(b"admin:admin"));
    let ddi_auth = format!("TargetToken {tok}");
    for (method, url, mgmt) in &targets {
        for body in &bodies {
            if url.ends_with("/sim/restart") && body.is_empty() {
                continue; // an empty body is a valid restart request
            }
            let auth = if *mgmt {
                basic.as_str()
            } else {
                ddi_auth.as_str()
            };
            let r = fx.call(
                method,
                url,
                &[
                    ("Authorization", auth),
                    ("Content-Type", "application/json"),
                ],
                Some(body),
            );
            assert!(
                (400..500).contains(&r.status) || [200, 201, 202, 204].contains(&r.status),
                "{method} {url} {:?} -> {} {}",
                String::from_utf8_lossy(body),
                r.status,
                r.text()
            );
            if r.status == 400 && !url.contains("/controller/") {
                assert!(
                    !r.json()["message"].as_str().unwrap_or("").is_empty(),
                    "{url}: 400 without message"
                );
            }
        }
    }
    // odd paths and ids
    for p in [
        format!("{}/deploymentBase/18446744073709551616", fx.ddi("m")),
        format!("{}/deploymentBase/-1", fx.ddi("m")),
        format!(
            "{}/softwaremodules/{sm}/artifacts/%2e%2e%2fetc%2fpasswd",
            fx.ddi("m")
        ),
        format!("{}/softwaremodules/{sm}/artifacts/..", fx.ddi("m")),
        "/rest/v1/rollouts/abc/deploygroups".into(),
        "/rest/v1/targets?q=%28%28%28".into(),
        "/rest/v1/targets?offset=-1".into(),
    ] {
        let auth = if p.starts_with("/rest") {
            basic.clone()
        } else {
            ddi_auth.clone()
        };
        let r = fx.call("GET", &p, &[("Authorization", &auth)], None);
        assert!((400..500).contains(&r.status), "{p} -> {}", r.status);
    }
    // the server is still healthy
    assert_eq!(fx.ddi_get("m", &tok, "").status, 200);
}

#[test]
fn hostile_numbers_and_nesting_never_crash_the_server() {
    let fx = Fx::new();
    let (tok, _, ds, _) = fx.deployment("h", json!({}));
    let basic = format!("Basic {}", base64_encode(b"admin:admin"));
    let huge = "9999999999999999999:00:00";
    let deep = format!(
        "{}controllerid==h{}",
        "(".repeat(200_000),
        ")".repeat(200_000)
    );
    let cases: Vec<(&str, String, serde_json::Value)> = vec![
        (
            "PUT",
            "/rest/v1/system/configs/pollingTime".into(),
            json!({"value": huge}),
        ),
        (
            "PUT",
            "/rest/v1/system/configs/pollingOverdueTime".into(),
            json!({"value": huge}),
        ),
        (
            "POST",
            "/rest/v1/targets/h/assignedDS".into(),
            json!({"id": ds, "maintenanceWindow": {"schedule": "0 0 2 ? * *", "duration": huge, "timezone": "+00:00"}}),
        ),
        (
            "POST",
            "/rest/v1/targets/h/assignedDS".into(),
            json!({"id": ds, "maintenanceWindow": {"schedule": "1/4294967295 0 2 ? * *", "duration": "01:00:00", "timezone": "+00:00"}}),
        ),
        (
            "POST",
            "/rest/v1/rollouts".into(),
            json!({"name": "deep", "distributionSetId": ds, "targetFilterQuery": deep}),
        ),
    ];
    for (method, path, body) in &cases {
        let r = fx.req(
            method,
            path,
            &[
                ("Authorization", &basic),
                ("Content-Type", "application/json"),
            ],
            Some(body.to_string().as_bytes()),
        );
        let r = r.unwrap_or_else(|e| {
            panic!("{method} {path}: connection failed ({e}): the handler panicked")
        });
        assert!(
            r.status < 500,
            "{method} {path} -> {} {}",
            r.status,
            r.text()
        );
        // the target (polled) renders its poll status with whatever overdue time is configured
        let t = fx.req(
            "GET",
            "/rest/v1/targets/h",
            &[("Authorization", &basic)],
            None,
        );
        assert!(t.is_ok_and(|t| t.status == 200), "GET target after {path}");
        assert_eq!(fx.ddi_get("h", &tok, "").status, 200, "poll after {path}");
    }
    let q = format!("/rest/v1/targets?q={}", "%28".repeat(15_000));
    let r = fx
        .req("GET", &q, &[("Authorization", &basic)], None)
        .expect("deeply nested q= must not crash the server");
    assert_eq!(r.status, 400);
    assert_eq!(fx.ddi_get("h", &tok, "").status, 200);
}
