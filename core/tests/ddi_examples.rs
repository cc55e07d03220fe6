//! Every JSON example of the DDI reference (§1.2–§1.9), plus the error paths of each parser
//! and writer.

use eyas_core::ddi::*;
use eyas_core::time::Duration;

const BASE: &str = r#"{
  "config": { "polling": { "sleep": "00:05:00" } },
  "_links": {
    "deploymentBase": { "href": "https://hb.example/DEFAULT/controller/v1/dev-01/deploymentBase/42?c=-914302211" },
    "installedBase":  { "href": "https://hb.example/DEFAULT/controller/v1/dev-01/installedBase/17" },
    "configData":     { "href": "https://hb.example/DEFAULT/controller/v1/dev-01/configData" }
  }
}"#;

const DEPLOYMENT: &str = r#"{
  "id": "42",
  "deployment": {
    "download": "forced",
    "update": "forced",
    "maintenanceWindow": "available",
    "chunks": [ {
      "part": "os",
      "version": "1.2.0",
      "name": "rootfs",
      "artifacts": [ {
        "filename": "rootfs-1.2.0.raucb",
        "hashes": {
          "sha1": "68db2d92eaa9d13d99261a344106f3bc510346ac",
          "md5": "7e290c056b0e4dd0a61b7dc7f4616bdc",
          "sha256": "538ddde648237888d9483ee3eddd3b1e7c49e595c0e39ef754348741abe5c214"
        },
        "size": 123456789,
        "_links": {
          "download-http": { "href": "https://hb.example/DEFAULT/controller/v1/dev-01/softwaremodules/7/artifacts/rootfs-1.2.0.raucb" },
          "md5sum-http":   { "href": "https://hb.example/DEFAULT/controller/v1/dev-01/softwaremodules/7/artifacts/rootfs-1.2.0.raucb.MD5SUM" }
        }
      } ],
      "metadata": [ { "key": "min-bootloader", "value": "2024.01" } ]
    } ]
  },
  "actionHistory": { "status": "RUNNING", "messages": [ "Download complete", "Downloading" ] }
}"#;

fn s(j: Option<JsonStr<'_>>) -> String {
    j.map(|j| j.to_string()).unwrap_or_default()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn base_poll_example() {
    let b = parse_controller_base(BASE.as_bytes()).unwrap();
    assert_eq!(b.sleep, Duration::from_secs(300));
    assert_eq!(
        s(b.deployment_base),
        "https://hb.example/DEFAULT/controller/v1/dev-01/deploymentBase/42?c=-914302211"
    );
    assert!(s(b.installed_base).ends_with("/installedBase/17"));
    assert!(s(b.config_data).ends_with("/configData"));
    assert!(b.cancel_action.is_none() && b.confirmation_base.is_none());
}

#[test]
fn base_poll_idle_and_cancel_and_confirmation_links() {
    let b = parse_controller_base(br#"{"config":{"polling":{"sleep":"00:05:00"}}}"#).unwrap();
    assert_eq!(b.sleep, Duration::from_secs(300));
    assert!(b.deployment_base.is_none() && b.config_data.is_none());
    let b = parse_controller_base(
        br#"{"config":{"polling":{"sleep":"PT26H30M","x":1}},"_links":{
            "cancelAction":{"href":"https:\/\/hb\/c\/42"},
            "confirmationBase":{"href":"h://c/42?c=1"},"unknownRel":{"href":"x","y":[1,2]}},"extra":[{}]}"#,
    )
    .unwrap();
    assert_eq!(b.sleep, Duration::from_secs(26 * 3600 + 30 * 60));
    assert_eq!(
        s(b.cancel_action),
        "https://hb/c/42",
        "\\/ must be unescaped"
    );
    assert_eq!(s(b.confirmation_base), "h://c/42?c=1");
}

#[test]
fn base_poll_errors_name_the_field() {
    use ParseError::*;
    let cases: &[(&str, ParseError)] = &[
        (r#"{}"#, MissingField("config")),
        (r#"{"config":{}}"#, MissingField("config.polling")),
        (
            r#"{"config":{"polling":{}}}"#,
            MissingField("config.polling.sleep"),
        ),
        (
            r#"{"config":{"polling":{"sleep":300}}}"#,
            WrongType("config.polling.sleep"),
        ),
        (
            r#"{"config":{"polling":{"sleep":"5 min"}}}"#,
            InvalidValue("config.polling.sleep"),
        ),
        (r#"{"config":[]}"#, WrongType("config")),
        (
            r#"{"config":{"polling":{"sleep":"00:00:10"}},"_links":{"deploymentBase":{}}}"#,
            MissingField("_links.deploymentBase.href"),
        ),
        (
            r#"{"config":{"polling":{"sleep":"00:00:10"}},"_links":{"configData":{"href":7}}}"#,
            WrongType("_links.configData.href"),
        ),
        (r#"[]"#, WrongType("(document)")),
    ];
    for (doc, want) in cases {
        assert_eq!(
            parse_controller_base(doc.as_bytes()).unwrap_err(),
            *want,
            "{doc}"
        );
    }
    let long = format!(
        r#"{{"config":{{"polling":{{"sleep":"00:00:10"}}}},"_links":{{"deploymentBase":{{"href":"{}"}}}}}}"#,
        "h".repeat(MAX_URL_LEN + 1)
    );
    assert_eq!(
        parse_controller_base(long.as_bytes()).unwrap_err(),
        ParseError::Capacity {
            field: "_links.deploymentBase.href",
            max: MAX_URL_LEN
        }
    );
    assert!(matches!(
        parse_controller_base(b"{\"config\":").unwrap_err(),
        ParseError::Syntax { .. }
    ));
    assert!(matches!(
        parse_controller_base(br#"{"config":{"polling":{"sleep":"00:00:10"}}} x"#).unwrap_err(),
        ParseError::Syntax { .. }
    ));
}

#[test]
fn sleep_formats() {
    let ok: &[(&str, u64)] = &[
        ("00:05:00", 300_000),
        ("23:59:59", 86_399_000),
        ("100:00:00", 360_000_000),
        ("PT24H", 86_400_000),
        ("PT26H30M", 95_400_000),
        ("PT0.5S", 500),
        ("PT1.2345S", 1_234),
        ("PT30S", 30_000),
        ("PT5M", 300_000),
        ("P1D", 86_400_000),
        ("P1DT2H", 93_600_000),
        ("P2W", 1_209_600_000),
        ("PT1H0.5S", 3_600_500),
    ];
    for (txt, ms) in ok {
        assert_eq!(parse_sleep(txt), Some(Duration::from_millis(*ms)), "{txt}");
    }
    for bad in [
        "",
        "P",
        "PT",
        "PT-5S",
        "5:00",
        "00:60:00",
        "00:00:60",
        "00:5:00",
        "PT5",
        "PTS",
        "PT1.S",
        "PT.5S",
        "P1H",
        "PT1S2M",
        "x00:05:00",
        "00:05:00:00",
        "PT99999999999999H",
        "P1DT",
    ] {
        assert_eq!(parse_sleep(bad), None, "{bad:?}");
    }
}

#[test]
fn deployment_example() {
    let d = parse_deployment_base(DEPLOYMENT.as_bytes()).unwrap();
    assert_eq!(d.id, ActionId(42));
    assert_eq!(d.download, Some(HandlingType::Forced));
    assert_eq!(d.update, Some(HandlingType::Forced));
    assert_eq!(d.maintenance_window, Some(MaintenanceWindow::Available));
    assert_eq!(s(d.action_history_status), "RUNNING");
    assert_eq!(d.chunk_count(), 1);
    let c = d.chunks().next().unwrap();
    assert_eq!(
        (s(Some(c.part)), s(Some(c.version)), s(Some(c.name))),
        ("os".into(), "1.2.0".into(), "rootfs".into())
    );
    assert!(!c.encrypted);
    assert_eq!(c.artifact_count(), 1);
    let a = c.artifacts().next().unwrap();
    assert_eq!(a.filename.to_string(), "rootfs-1.2.0.raucb");
    assert_eq!(a.size, 123_456_789);
    assert_eq!(
        hex(&a.sha1.unwrap()),
        "68db2d92eaa9d13d99261a344106f3bc510346ac"
    );
    assert_eq!(hex(&a.md5.unwrap()), "7e290c056b0e4dd0a61b7dc7f4616bdc");
    assert_eq!(
        hex(&a.sha256.unwrap()),
        "538ddde648237888d9483ee3eddd3b1e7c49e595c0e39ef754348741abe5c214"
    );
    assert!(s(a.download_url).ends_with("/softwaremodules/7/artifacts/rootfs-1.2.0.raucb"));
    let m: Vec<_> = c.metadata().collect();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].key.to_string(), "min-bootloader");
    assert_eq!(s(m[0].value), "2024.01");
    // the same document as installedBase
    assert_eq!(parse_installed_base(DEPLOYMENT.as_bytes()).unwrap(), d);
}

#[test]
fn deployment_multi_chunk_links_and_big_sizes() {
    let doc = r#"{"id":"7","deployment":{"download":"attempt","update":"skip","maintenanceWindow":"unavailable",
      "chunks":[
        {"part":"bApp","version":"2","name":"app","encrypted":true,"artifacts":[
           {"filename":"a.raucb","size":5000000000,"hashes":{"sha1":"68db2d92eaa9d13d99261a344106f3bc510346ac"},
            "_links":{"some-download-x":{"href":"u3"},"download-http":{"href":"u2"},"download":{"href":"u1"}}},
           {"filename":"b.raucb","size":1,"hashes":{},"_links":{"weird-download":{"href":"u4"},"md5sum":{"href":"m"}}},
           {"filename":"c.raucb","size":0,"hashes":{},"_links":{"md5sum-http":{"href":"m"}}}
        ]},
        {"part":"os","version":"1.3","name":"rootfs","artifacts":[]},
        {"part":"config","version":"1","name":"cfg"}
      ]}}"#;
    let d = parse_deployment_base(doc.as_bytes()).unwrap();
    assert_eq!(d.id, ActionId(7));
    assert_eq!(d.download, Some(HandlingType::Attempt));
    assert_eq!(d.update, Some(HandlingType::Skip));
    assert_eq!(d.maintenance_window, Some(MaintenanceWindow::Unavailable));
    assert_eq!(d.chunk_count(), 3);
    let chunks: Vec<_> = d.chunks().collect();
    assert_eq!(chunks.len(), 3);
    assert!(chunks[0].encrypted);
    let arts: Vec<_> = chunks[0].artifacts().collect();
    assert_eq!(arts.len(), 3);
    assert_eq!(arts[0].size, 5_000_000_000, "size is u64");
    assert_eq!(
        s(arts[0].download_url),
        "u1",
        "download beats download-http"
    );
    assert!(
        arts[0].sha256.is_none() && arts[0].md5.is_none(),
        "sha256 may be missing"
    );
    assert_eq!(s(arts[1].download_url), "u4", "any rel containing download");
    assert_eq!(arts[2].download_url, None);
    assert_eq!(chunks[1].artifact_count(), 0);
    assert_eq!(chunks[2].artifacts().count(), 0);
    assert_eq!(d.chunk(1).unwrap().part.to_string(), "os");
}

#[test]
fn deployment_errors_name_the_field() {
    use ParseError::*;
    let wrap = |chunks: &str| format!(r#"{{"id":"1","deployment":{{"chunks":[{chunks}]}}}}"#);
    let art = |body: &str| {
        wrap(&format!(
            r#"{{"part":"os","version":"1","name":"n","artifacts":[{body}]}}"#
        ))
    };
    let cases: Vec<(String, ParseError)> = vec![
        (r#"{"deployment":{"chunks":[]}}"#.into(), MissingField("id")),
        (r#"{"id":"1"}"#.into(), MissingField("deployment")),
        (
            r#"{"id":"1","deployment":{}}"#.into(),
            MissingField("deployment.chunks"),
        ),
        (
            r#"{"id":"x1","deployment":{"chunks":[]}}"#.into(),
            InvalidValue("id"),
        ),
        (
            r#"{"id":true,"deployment":{"chunks":[]}}"#.into(),
            WrongType("id"),
        ),
        (
            r#"{"id":"1","deployment":{"download":"later","chunks":[]}}"#.into(),
            InvalidValue("deployment.download"),
        ),
        (
            r#"{"id":"1","deployment":{"update":1,"chunks":[]}}"#.into(),
            WrongType("deployment.update"),
        ),
        (
            r#"{"id":"1","deployment":{"maintenanceWindow":"open","chunks":[]}}"#.into(),
            InvalidValue("deployment.maintenanceWindow"),
        ),
        (
            r#"{"id":"1","deployment":{"chunks":{}}}"#.into(),
            WrongType("deployment.chunks"),
        ),
        (
            wrap(r#"{"version":"1","name":"n"}"#),
            MissingField("deployment.chunks[].part"),
        ),
        (
            wrap(r#"{"part":"os","name":"n"}"#),
            MissingField("deployment.chunks[].version"),
        ),
        (
            wrap(r#"{"part":"os","version":"1"}"#),
            MissingField("deployment.chunks[].name"),
        ),
        (
            wrap(r#"{"part":1,"version":"1","name":"n"}"#),
            WrongType("deployment.chunks[].part"),
        ),
        (
            wrap(r#"{"part":"os","version":"1","name":"n","encrypted":"yes"}"#),
            WrongType("deployment.chunks[].encrypted"),
        ),
        (
            art(r#"{"size":1}"#),
            MissingField("deployment.chunks[].artifacts[].filename"),
        ),
        (
            art(r#"{"filename":"f"}"#),
            MissingField("deployment.chunks[].artifacts[].size"),
        ),
        (
            art(r#"{"filename":"f","size":"1"}"#),
            WrongType("deployment.chunks[].artifacts[].size"),
        ),
        (
            art(r#"{"filename":"f","size":-1}"#),
            InvalidValue("deployment.chunks[].artifacts[].size"),
        ),
        (
            art(r#"{"filename":"f","size":1.5}"#),
            InvalidValue("deployment.chunks[].artifacts[].size"),
        ),
        (
            art(r#"{"filename":"f","size":1,"hashes":{"sha256":"abc"}}"#),
            InvalidValue("deployment.chunks[].artifacts[].hashes.sha256"),
        ),
        (
            art(
                r#"{"filename":"f","size":1,"hashes":{"sha1":"zz db2d92eaa9d13d99261a344106f3bc510346a"}}"#,
            ),
            InvalidValue("deployment.chunks[].artifacts[].hashes.sha1"),
        ),
        (
            art(r#"{"filename":"f","size":1,"hashes":{"md5":5}}"#),
            WrongType("deployment.chunks[].artifacts[].hashes.md5"),
        ),
        (
            art(r#"{"filename":"f","size":1,"hashes":[]}"#),
            WrongType("deployment.chunks[].artifacts[].hashes"),
        ),
        (
            art(r#"{"filename":"f","size":1,"_links":{"download":{}}}"#),
            MissingField("deployment.chunks[].artifacts[]._links.href"),
        ),
        (
            wrap(r#"{"part":"os","version":"1","name":"n","metadata":[{"value":"v"}]}"#),
            MissingField("deployment.chunks[].metadata[].key"),
        ),
    ];
    for (doc, want) in cases {
        assert_eq!(
            parse_deployment_base(doc.as_bytes()).unwrap_err(),
            want,
            "{doc}"
        );
    }
}

#[test]
fn deployment_capacities_are_typed_errors() {
    let chunk = r#"{"part":"os","version":"1","name":"n"}"#;
    let many = vec![chunk; MAX_CHUNKS + 1].join(",");
    let doc = format!(r#"{{"id":"1","deployment":{{"chunks":[{many}]}}}}"#);
    assert_eq!(
        parse_deployment_base(doc.as_bytes()).unwrap_err(),
        ParseError::Capacity {
            field: "deployment.chunks",
            max: MAX_CHUNKS
        }
    );
    let exactly = vec![chunk; MAX_CHUNKS].join(",");
    let doc = format!(r#"{{"id":"1","deployment":{{"chunks":[{exactly}]}}}}"#);
    assert_eq!(
        parse_deployment_base(doc.as_bytes())
            .unwrap()
            .chunks()
            .count(),
        MAX_CHUNKS
    );

    let a = r#"{"filename":"f","size":1}"#;
    let arts = vec![a; MAX_ARTIFACTS_PER_CHUNK + 1].join(",");
    let doc = format!(
        r#"{{"id":"1","deployment":{{"chunks":[{{"part":"os","version":"1","name":"n","artifacts":[{arts}]}}]}}}}"#
    );
    assert_eq!(
        parse_deployment_base(doc.as_bytes()).unwrap_err(),
        ParseError::Capacity {
            field: "deployment.chunks[].artifacts",
            max: MAX_ARTIFACTS_PER_CHUNK
        }
    );
    let m = r#"{"key":"k","value":"v"}"#;
    let md = vec![m; MAX_METADATA_PER_CHUNK + 1].join(",");
    let doc = format!(
        r#"{{"id":"1","deployment":{{"chunks":[{{"part":"os","version":"1","name":"n","metadata":[{md}]}}]}}}}"#
    );
    assert_eq!(
        parse_deployment_base(doc.as_bytes()).unwrap_err(),
        ParseError::Capacity {
            field: "deployment.chunks[].metadata",
            max: MAX_METADATA_PER_CHUNK
        }
    );
    let doc = format!(
        r#"{{"id":"1","deployment":{{"chunks":[{{"part":"os","version":"1","name":"{}"}}]}}}}"#,
        "n".repeat(MAX_NAME_LEN + 1)
    );
    assert_eq!(
        parse_deployment_base(doc.as_bytes()).unwrap_err(),
        ParseError::Capacity {
            field: "deployment.chunks[].name",
            max: MAX_NAME_LEN
        }
    );
    let doc = format!(
        r#"{{"id":"1","deployment":{{"chunks":[{{"part":"os","version":"1","name":"n","artifacts":[{{"filename":"f","size":1,"_links":{{"download":{{"href":"{}"}}}}}}]}}]}}}}"#,
        "u".repeat(MAX_URL_LEN + 1)
    );
    assert_eq!(
        parse_deployment_base(doc.as_bytes()).unwrap_err(),
        ParseError::Capacity {
            field: "deployment.chunks[].artifacts[]._links.download.href",
            max: MAX_URL_LEN
        }
    );
}

#[test]
fn peek_action_id_survives_deeper_errors() {
    let chunk = r#"{"part":"os","version":"1","name":"n"}"#;
    let many = vec![chunk; MAX_CHUNKS + 1].join(",");
    let doc = format!(r#"{{"deployment":{{"chunks":[{many}]}},"id":"77"}}"#);
    assert!(parse_deployment_base(doc.as_bytes()).is_err());
    assert_eq!(peek_action_id(doc.as_bytes()), Some(ActionId(77)));
    assert_eq!(peek_action_id(br#"{"deployment":{"#), None);
    assert_eq!(peek_action_id(br#"{"id":"x"}"#), None);
    assert_eq!(peek_action_id(br#"[1]"#), None);
}

#[test]
fn cancel_action_example_and_errors() {
    let c = parse_cancel_action(br#"{ "id": "42", "cancelAction": { "stopId": "42" } }"#).unwrap();
    assert_eq!(
        c,
        CancelAction {
            id: ActionId(42),
            stop_id: ActionId(42)
        }
    );
    assert_eq!(
        parse_cancel_action(br#"{"id":"42"}"#).unwrap_err(),
        ParseError::MissingField("cancelAction")
    );
    assert_eq!(
        parse_cancel_action(br#"{"id":"42","cancelAction":{}}"#).unwrap_err(),
        ParseError::MissingField("cancelAction.stopId")
    );
    assert_eq!(
        parse_cancel_action(br#"{"cancelAction":{"stopId":"1"}}"#).unwrap_err(),
        ParseError::MissingField("id")
    );
    assert_eq!(
        parse_cancel_action(br#"{"id":"1","cancelAction":{"stopId":"-1"}}"#).unwrap_err(),
        ParseError::InvalidValue("cancelAction.stopId")
    );
}

#[test]
fn confirmation_examples() {
    let doc = br#"{ "autoConfirm": { "active": false, "activatedAt": 0 },
  "_links": { "activateAutoConfirm": { "href": "https://hb.example/DEFAULT/controller/v1/dev-01/confirmationBase/activateAutoConfirm" },
              "confirmationBase":    { "href": "https://hb.example/DEFAULT/controller/v1/dev-01/confirmationBase/42?c=771230044" } } }"#;
    let c = parse_confirmation_base(doc).unwrap();
    assert!(!c.auto_confirm.active);
    assert_eq!(c.auto_confirm.activated_at, Some(0));
    assert!(s(c.activate_auto_confirm).ends_with("/activateAutoConfirm"));
    assert!(s(c.confirmation_base).ends_with("/confirmationBase/42?c=771230044"));
    assert!(c.deactivate_auto_confirm.is_none());
    let c = parse_confirmation_base(
        br#"{"autoConfirm":{"active":true,"initiator":"hmi-user-7","remark":"r"},"_links":{"deactivateAutoConfirm":{"href":"d"}}}"#,
    )
    .unwrap();
    assert!(c.auto_confirm.active);
    assert_eq!(s(c.auto_confirm.initiator), "hmi-user-7");
    assert_eq!(s(c.deactivate_auto_confirm), "d");
    assert_eq!(
        parse_confirmation_base(br#"{}"#).unwrap_err(),
        ParseError::MissingField("autoConfirm")
    );
    assert_eq!(
        parse_confirmation_base(br#"{"autoConfirm":{}}"#).unwrap_err(),
        ParseError::MissingField("autoConfirm.active")
    );
    assert_eq!(
        parse_confirmation_base(br#"{"autoConfirm":{"active":"no"}}"#).unwrap_err(),
        ParseError::WrongType("autoConfirm.active")
    );
    // the per-action document: deployment object named "confirmation"
    let action = DEPLOYMENT.replace("\"deployment\"", "\"confirmation\"");
    let a = parse_confirmation_action(action.as_bytes()).unwrap();
    assert_eq!(a.id, ActionId(42));
    assert_eq!(a.chunk_count(), 1);
    assert_eq!(
        parse_confirmation_action(DEPLOYMENT.as_bytes()).unwrap_err(),
        ParseError::MissingField("deployment")
    );
}

fn body(n: usize, buf: &[u8]) -> &str {
    std::str::from_utf8(&buf[..n]).unwrap()
}

#[test]
fn feedback_examples() {
    let mut buf = [0u8; 1024];
    let n = ActionFeedback {
        timestamp: None,
        execution: Execution::Proceeding,
        finished: Finished::None,
        progress: Some(Progress {
            cnt: 2,
            of: Some(5),
        }),
        code: None,
        details: &["Downloading rootfs-1.2.0.raucb"],
    }
    .write(&mut buf)
    .unwrap();
    assert_eq!(
        body(n, &buf),
        r#"{"status":{"execution":"proceeding","result":{"finished":"none","progress":{"cnt":2,"of":5}},"details":["Downloading rootfs-1.2.0.raucb"]}}"#
    );
    let n = ActionFeedback {
        timestamp: Some(1_767_225_600_000),
        execution: Execution::Closed,
        finished: Finished::Success,
        progress: None,
        code: Some(0),
        details: &[],
    }
    .write(&mut buf)
    .unwrap();
    assert_eq!(
        body(n, &buf),
        r#"{"timestamp":1767225600000,"status":{"execution":"closed","result":{"finished":"success"},"code":0}}"#
    );
    let n = CancelFeedback {
        timestamp: None,
        reply: CancelReply::Accepted,
        code: None,
        details: &["Download aborted, cancel accepted"],
    }
    .write(&mut buf)
    .unwrap();
    assert_eq!(
        body(n, &buf),
        r#"{"status":{"execution":"closed","result":{"finished":"success"},"details":["Download aborted, cancel accepted"]}}"#
    );
    let n = CancelFeedback {
        timestamp: None,
        reply: CancelReply::Rejected,
        code: None,
        details: &["Already writing slot B"],
    }
    .write(&mut buf)
    .unwrap();
    assert_eq!(
        body(n, &buf),
        r#"{"status":{"execution":"rejected","result":{"finished":"none"},"details":["Already writing slot B"]}}"#
    );
    let n = CancelFeedback {
        timestamp: None,
        reply: CancelReply::Failed,
        code: Some(-3),
        details: &[],
    }
    .write(&mut buf)
    .unwrap();
    assert_eq!(
        body(n, &buf),
        r#"{"status":{"execution":"closed","result":{"finished":"failure"},"code":-3}}"#
    );
    let n = ConfirmationFeedback {
        confirmation: Confirmation::Confirmed,
        code: Some(0),
        details: &["Accepted by user on HMI"],
    }
    .write(&mut buf)
    .unwrap();
    assert_eq!(
        body(n, &buf),
        r#"{"confirmation":"confirmed","code":0,"details":["Accepted by user on HMI"]}"#
    );
    let n = ConfirmationFeedback {
        confirmation: Confirmation::Denied,
        code: None,
        details: &[],
    }
    .write(&mut buf)
    .unwrap();
    assert_eq!(body(n, &buf), r#"{"confirmation":"denied"}"#);
    let n = AutoConfirmActivation {
        initiator: Some("hmi-user-7"),
        remark: Some("Fleet policy: auto-accept security updates"),
    }
    .write(&mut buf)
    .unwrap();
    assert_eq!(
        body(n, &buf),
        r#"{"initiator":"hmi-user-7","remark":"Fleet policy: auto-accept security updates"}"#
    );
    let n = InstalledBase {
        name: "fw-a-b",
        version: "1.1.0",
    }
    .write(&mut buf)
    .unwrap();
    assert_eq!(body(n, &buf), r#"{"name":"fw-a-b","version":"1.1.0"}"#);
    let n = ConfigData {
        mode: ConfigMode::Merge,
        data: &[
            ("hw_revision", "2"),
            ("rauc.booted", "B"),
            ("sw.version", "1.2.0"),
            ("mac", "02:00:00:00:00:01"),
        ],
    }
    .write(&mut buf)
    .unwrap();
    assert_eq!(
        body(n, &buf),
        r#"{"mode":"merge","data":{"hw_revision":"2","rauc.booted":"B","sw.version":"1.2.0","mac":"02:00:00:00:00:01"}}"#
    );
}

#[test]
fn feedback_escapes_and_limits() {
    let mut buf = [0u8; 256];
    let fb = |details: &'static [&'static str]| ActionFeedback {
        timestamp: None,
        execution: Execution::Closed,
        finished: Finished::Failure,
        progress: None,
        code: None,
        details,
    };
    let n = fb(&["a \"q\" \\ \n\t\u{1}"]).write(&mut buf).unwrap();
    assert!(body(n, &buf).contains(r#""a \"q\" \\ \n\t\u0001""#));
    assert_eq!(
        fb(&["see <b>x</b>"]).write(&mut buf),
        Err(FeedbackError::Detail {
            index: 0,
            reason: DetailError::Markup
        })
    );
    assert!(
        fb(&["a < b"]).write(&mut buf).is_ok(),
        "a lone < is not markup"
    );
    let long: &'static str = Box::leak("x".repeat(MAX_DETAIL_LEN + 1).into_boxed_str());
    assert_eq!(
        fb(Box::leak(vec!["ok", long].into_boxed_slice())).write(&mut buf),
        Err(FeedbackError::Detail {
            index: 1,
            reason: DetailError::TooLong {
                len: MAX_DETAIL_LEN + 1
            }
        })
    );
    let many: &'static [&'static str] = Box::leak(vec!["l"; MAX_DETAILS + 1].into_boxed_slice());
    assert_eq!(
        fb(many).write(&mut buf),
        Err(FeedbackError::TooManyDetails {
            count: MAX_DETAILS + 1
        })
    );
    let exactly: &'static [&'static str] = Box::leak(vec!["l"; MAX_DETAILS].into_boxed_slice());
    let mut big = [0u8; 1024];
    assert!(fb(exactly).write(&mut big).is_ok());
    // hawkBit stores a code as one more message: with a code, 50 lines would be 51 (429)
    let with_code = |details| ActionFeedback {
        code: Some(7),
        ..fb(details)
    };
    assert_eq!(
        with_code(exactly).write(&mut big),
        Err(FeedbackError::TooManyDetails { count: MAX_DETAILS })
    );
    let fewer: &'static [&'static str] = Box::leak(vec!["l"; MAX_DETAILS - 1].into_boxed_slice());
    assert!(with_code(fewer).write(&mut big).is_ok());
    let mut tiny = [0u8; 10];
    assert_eq!(
        fb(&[]).write(&mut tiny),
        Err(FeedbackError::Write(WriteError::BufferTooSmall {
            capacity: 10
        }))
    );
    assert_eq!(
        InstalledBase {
            name: "n",
            version: "v"
        }
        .write(&mut tiny),
        Err(WriteError::BufferTooSmall { capacity: 10 })
    );
}

#[test]
fn config_data_validation() {
    let mut buf = [0u8; 4096];
    let k128 = "k".repeat(MAX_ATTRIBUTE_LEN);
    let k129 = "k".repeat(MAX_ATTRIBUTE_LEN + 1);
    assert!(
        ConfigData {
            mode: ConfigMode::Replace,
            data: &[(&k128, &k128)]
        }
        .write(&mut buf)
        .is_ok()
    );
    assert_eq!(
        ConfigData {
            mode: ConfigMode::Merge,
            data: &[("a", "b"), (&k129, "v")]
        }
        .write(&mut buf),
        Err(ConfigDataError::TooLong {
            index: 1,
            field: AttributeField::Key
        })
    );
    assert_eq!(
        ConfigData {
            mode: ConfigMode::Merge,
            data: &[("a", &k129)]
        }
        .write(&mut buf),
        Err(ConfigDataError::TooLong {
            index: 0,
            field: AttributeField::Value
        })
    );
    assert_eq!(
        ConfigData {
            mode: ConfigMode::Merge,
            data: &[("caf\u{e9}", "v")]
        }
        .validate(),
        Err(ConfigDataError::Charset {
            index: 0,
            field: AttributeField::Key
        })
    );
    assert_eq!(
        ConfigData {
            mode: ConfigMode::Merge,
            data: &[("k", "tab\there")]
        }
        .validate(),
        Err(ConfigDataError::Charset {
            index: 0,
            field: AttributeField::Value
        })
    );
    assert_eq!(
        ConfigData {
            mode: ConfigMode::Merge,
            data: &[]
        }
        .validate(),
        Err(ConfigDataError::Empty)
    );
    assert_eq!(
        ConfigData {
            mode: ConfigMode::Merge,
            data: &[("", "v")]
        }
        .validate(),
        Err(ConfigDataError::EmptyKey { index: 0 })
    );
    let many = vec![("k", "v"); MAX_ATTRIBUTES + 1];
    assert_eq!(
        ConfigData {
            mode: ConfigMode::Merge,
            data: &many
        }
        .validate(),
        Err(ConfigDataError::TooMany {
            count: MAX_ATTRIBUTES + 1
        })
    );
    let ok = ConfigData {
        mode: ConfigMode::Remove,
        data: &[("a-b_c!@#$%^&*()+=[]{}|;:'\",.<>/\\? 1", "")],
    };
    let n = ok.write(&mut buf).unwrap();
    assert!(body(n, &buf).starts_with(r#"{"mode":"remove","data":{"a-b_c"#));
    let mut tiny = [0u8; 8];
    assert!(matches!(
        ok.write(&mut tiny),
        Err(ConfigDataError::Write(_))
    ));
}

#[test]
fn artifact_list_and_md5sum_examples() {
    let doc = br#"[ { "filename": "rootfs-1.2.0.raucb",
    "hashes": { "sha1": "68db2d92eaa9d13d99261a344106f3bc510346ac", "md5": "7e290c056b0e4dd0a61b7dc7f4616bdc",
                "sha256": "538ddde648237888d9483ee3eddd3b1e7c49e595c0e39ef754348741abe5c214" },
    "size": 123456789,
    "_links": { "download-http": { "href": "https://hb.example/DEFAULT/controller/v1/dev-01/softwaremodules/7/artifacts/rootfs-1.2.0.raucb" } } } ]"#;
    let l = parse_artifacts(doc).unwrap();
    assert_eq!(l.len(), 1);
    assert!(!l.is_empty());
    let a = l.iter().next().unwrap();
    assert_eq!(a.size, 123_456_789);
    assert_eq!(hex(&a.md5.unwrap()), "7e290c056b0e4dd0a61b7dc7f4616bdc");
    assert!(s(a.download_url).ends_with("/artifacts/rootfs-1.2.0.raucb"));
    assert!(parse_artifacts(b"[]").unwrap().is_empty());
    assert_eq!(
        parse_artifacts(b"{}").unwrap_err(),
        ParseError::WrongType("deployment.chunks[].artifacts")
    );
    assert_eq!(
        parse_artifacts(b"null").unwrap_err(),
        ParseError::WrongType("(document)")
    );
    assert_eq!(
        parse_artifacts(br#"[{"size":1}]"#).unwrap_err(),
        ParseError::MissingField("deployment.chunks[].artifacts[].filename")
    );

    let (md5, name) = parse_md5sum("7e290c056b0e4dd0a61b7dc7f4616bdc  rootfs-1.2.0.raucb").unwrap();
    assert_eq!(hex(&md5), "7e290c056b0e4dd0a61b7dc7f4616bdc");
    assert_eq!(name, "rootfs-1.2.0.raucb");
    assert_eq!(
        parse_md5sum("7e290c056b0e4dd0a61b7dc7f4616bdc *f\n")
            .unwrap()
            .1,
        "f"
    );
    for bad in [
        "",
        "7e290c056b0e4dd0a61b7dc7f4616bd  f",
        "7e290c056b0e4dd0a61b7dc7f4616bdz  f",
        "7e290c056b0e4dd0a61b7dc7f4616bdc  ",
        "nospace",
    ] {
        assert_eq!(parse_md5sum(bad), None, "{bad:?}");
    }
}
