//! Management API subset (ddi-api.md §2) over real HTTP.

mod common;

use common::Fx;
use hil_tests::sim::http::base64_encode;
use serde_json::json;

fn multipart(file: &[u8], filename: &str, extra: &[(&str, &str)]) -> (String, Vec<u8>) {
    let b = "----hawkbitsimtestboundary";
    let mut body = Vec::new();
    for (k, v) in extra {
        body.extend_from_slice(
            format!("--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

fn upload(fx: &Fx, sm: u64, query: &str, ct: &str, body: &[u8]) -> common::Resp {
    let auth = format!("Basic {}", base64_encode(b"admin:admin"));
    fx.call(
        "POST",
        &format!("/rest/v1/softwaremodules/{sm}/artifacts{query}"),
        &[("Authorization", &auth), ("Content-Type", ct)],
        Some(body),
    )
}

#[test]
fn basic_auth_required() {
    let fx = Fx::new();
    assert_eq!(fx.call("GET", "/rest/v1/targets", &[], None).status, 401);
    let wrong = format!("Basic {}", base64_encode(b"admin:nope"));
    assert_eq!(
        fx.call(
            "GET",
            "/rest/v1/targets",
            &[("Authorization", &wrong)],
            None
        )
        .status,
        401
    );
    assert_eq!(
        fx.call(
            "GET",
            "/rest/v1/targets",
            &[("Authorization", "Basic !!!")],
            None
        )
        .status,
        401
    );
    assert_eq!(fx.mgmt("GET", "/targets", None).status, 200);
}

#[test]
fn create_bodies_must_be_arrays() {
    let fx = Fx::new();
    for (path, body) in [
        (
            "/softwaremodules",
            json!({"name": "r", "version": "1", "type": "os"}),
        ),
        ("/distributionsets", json!({"name": "d", "version": "1"})),
        ("/targets", json!({"controllerId": "x"})),
    ] {
        let r = fx.mgmt("POST", path, Some(body));
        assert_eq!(r.status, 400, "{path}");
        let msg = r.json()["message"].as_str().unwrap().to_string();
        assert!(msg.contains("JSON array") && msg.contains("[{"), "{msg}");
    }
    // rollouts are the opposite: a single object
    let r = fx.mgmt("POST", "/rollouts", Some(json!([{"name": "x"}])));
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("single JSON object")
    );
    // malformed JSON and wrong content type
    let auth = format!("Basic {}", base64_encode(b"admin:admin"));
    let r = fx.call(
        "POST",
        "/rest/v1/targets",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        Some(b"[{"),
    );
    assert_eq!(r.status, 400);
    let r = fx.call(
        "POST",
        "/rest/v1/targets",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(b"a=b"),
    );
    assert_eq!(r.status, 415);
}

#[test]
fn software_modules_artifacts_and_hash_verification() {
    let fx = Fx::new();
    let r = fx.mgmt(
        "POST",
        "/softwaremodules",
        Some(json!([{"name": "rootfs", "version": "1.2.0", "type": "os", "vendor": "ACME"}])),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let sm = r.json()[0]["id"].as_u64().unwrap();
    assert_eq!(r.json()[0]["typeName"], "OS");
    assert_eq!(
        fx.mgmt(
            "POST",
            "/softwaremodules",
            Some(json!([{"name": "rootfs", "version": "1.2.0", "type": "os"}]))
        )
        .status,
        409
    );
    assert_eq!(
        fx.mgmt(
            "POST",
            "/softwaremodules",
            Some(json!([{"name": "x", "version": "1", "type": "firmware"}]))
        )
        .status,
        404
    );
    assert_eq!(
        fx.mgmt(
            "POST",
            "/softwaremodules",
            Some(json!([{"name": "x", "type": "os"}]))
        )
        .status,
        400
    );
    let data = vec![7u8; 300_000];
    let sha256 = {
        use sha2::Digest;
        hil_tests::sim::http::hex(&sha2::Sha256::digest(&data))
    };
    let (ct, body) = multipart(&data, "rootfs.raucb", &[]);
    let r = upload(
        &fx,
        sm,
        &format!("?sha256sum={}", "0".repeat(64)),
        &ct,
        &body,
    );
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("sha256sum mismatch")
    );
    let r = upload(&fx, sm, &format!("?sha256sum={sha256}"), &ct, &body);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["providedFilename"], "rootfs.raucb");
    assert_eq!(r.json()["size"], 300_000);
    assert_eq!(r.json()["hashes"]["sha256"], sha256);
    let aid = r.json()["id"].as_u64().unwrap();
    assert_eq!(
        upload(&fx, sm, "", &ct, &body).status,
        409,
        "duplicate filename"
    );
    // form fields work too (filename override, md5sum)
    let (ct2, body2) = multipart(
        b"abc",
        "x.bin",
        &[
            ("filename", "renamed.bin"),
            ("md5sum", "900150983cd24fb0d6963f7d28e17f72"),
        ],
    );
    let r = upload(&fx, sm, "", &ct2, &body2);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["providedFilename"], "renamed.bin");
    let (ct3, body3) = multipart(b"abc", "y.bin", &[("sha1sum", "deadbeef")]);
    assert_eq!(upload(&fx, sm, "", &ct3, &body3).status, 400);
    // no 'file' part / not multipart
    let r = upload(
        &fx,
        sm,
        "",
        "multipart/form-data; boundary=zz",
        b"--zz\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nv\r\n--zz--\r\n",
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["message"].as_str().unwrap().contains("'file'"));
    assert_eq!(upload(&fx, sm, "", "application/json", b"{}").status, 400);
    assert_eq!(upload(&fx, 999_999, "", &ct, &body).status, 404);
    // reads
    let list = fx
        .mgmt("GET", &format!("/softwaremodules/{sm}/artifacts"), None)
        .json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let dl = fx.mgmt(
        "GET",
        &format!("/softwaremodules/{sm}/artifacts/{aid}/download"),
        None,
    );
    assert_eq!(dl.body, data);
    assert_eq!(
        fx.mgmt("GET", &format!("/softwaremodules/{sm}"), None)
            .json()["name"],
        "rootfs"
    );
    assert_eq!(fx.mgmt("GET", "/softwaremodules", None).json()["total"], 1);
    assert_eq!(fx.mgmt("GET", "/softwaremodules/abc", None).status, 400);
    // target-visible metadata ends up in the chunk
    let r = fx.mgmt("POST", &format!("/softwaremodules/{sm}/metadata"), Some(json!([{"key": "min-bootloader", "value": "2024.01", "targetVisible": true}, {"key": "secret", "value": "x"}])));
    assert_eq!(r.status, 201);
    let ds = fx
        .mgmt(
            "POST",
            "/distributionsets",
            Some(json!([{"name": "fw", "version": "1", "type": "os", "modules": [{"id": sm}]}])),
        )
        .json()[0]["id"]
        .as_u64()
        .unwrap();
    fx.target("m");
    let a = fx
        .mgmt("POST", "/targets/m/assignedDS", Some(json!({"id": ds})))
        .json()["assignedActions"][0]["id"]
        .as_u64()
        .unwrap();
    let d = fx
        .ddi_get("m", "tok-m", &format!("/deploymentBase/{a}"))
        .json();
    assert_eq!(
        d["deployment"]["chunks"][0]["metadata"],
        json!([{"key": "min-bootloader", "value": "2024.01"}])
    );
    assert_eq!(
        d["deployment"]["chunks"][0]["artifacts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn distribution_sets_completeness_and_types() {
    let fx = Fx::new();
    let os = fx
        .sim()
        .create_software_module("rootfs", "1", "os")
        .unwrap();
    let app = fx
        .sim()
        .create_software_module("app", "1", "application")
        .unwrap();
    let r = fx.mgmt(
        "POST",
        "/distributionsets",
        Some(json!([{"name": "full", "version": "1", "modules": [{"id": os}, {"id": app}]}])),
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.json()[0]["type"], "os_app", "tenant default type");
    assert_eq!(r.json()[0]["complete"], true);
    assert_eq!(r.json()[0]["modules"].as_array().unwrap().len(), 2);
    let r = fx.mgmt(
        "POST",
        "/distributionsets",
        Some(json!([{"name": "empty", "version": "1", "type": "os"}])),
    );
    let empty = r.json()[0]["id"].as_u64().unwrap();
    assert_eq!(r.json()[0]["complete"], false);
    assert_eq!(
        fx.mgmt(
            "POST",
            "/distributionsets",
            Some(json!([{"name": "bad", "version": "1", "type": "os", "modules": [{"id": app}]}]))
        )
        .status,
        400
    );
    assert_eq!(
        fx.mgmt(
            "POST",
            "/distributionsets",
            Some(
                json!([{"name": "bad", "version": "2", "type": "os", "modules": [{"id": 424242}]}])
            )
        )
        .status,
        404
    );
    assert_eq!(
        fx.mgmt(
            "POST",
            "/distributionsets",
            Some(json!([{"name": "bad", "version": "3", "type": "os", "modules": [7]}]))
        )
        .status,
        400
    );
    fx.target("t");
    let r = fx.mgmt("POST", "/targets/t/assignedDS", Some(json!({"id": empty})));
    assert_eq!(r.status, 400, "incomplete DS cannot be assigned");
    // an os_app DS with an app becomes two chunks, application renamed to bApp
    let full = fx.mgmt("GET", "/distributionsets", None).json()["content"][0]["id"]
        .as_u64()
        .unwrap();
    let a = fx
        .mgmt(
            "POST",
            "/targets/t/assignedDS",
            Some(json!([{"id": full, "type": "soft"}])),
        )
        .json()["assignedActions"][0]["id"]
        .as_u64()
        .unwrap();
    let d = fx
        .ddi_get("t", "tok-t", &format!("/deploymentBase/{a}"))
        .json();
    let parts: Vec<&str> = d["deployment"]["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["part"].as_str().unwrap())
        .collect();
    assert_eq!(parts, vec!["os", "bApp"]);
}

#[test]
fn targets_crud_query_and_paging() {
    let fx = Fx::new();
    let body: Vec<_> = (0..7)
        .map(|i| json!({"controllerId": format!("dev-{i:02}"), "name": format!("Device {i}")}))
        .collect();
    let r = fx.mgmt("POST", "/targets", Some(json!(body)));
    assert_eq!(r.status, 201);
    assert_eq!(r.json().as_array().unwrap().len(), 7);
    assert_eq!(
        r.json()[0]["securityToken"].as_str().unwrap().len(),
        32,
        "generated token"
    );
    assert_eq!(r.json()[0]["updateStatus"], "unknown");
    assert_eq!(
        fx.mgmt(
            "POST",
            "/targets",
            Some(json!([{"controllerId": "dev-00"}]))
        )
        .status,
        409
    );
    assert_eq!(
        fx.mgmt(
            "POST",
            "/targets",
            Some(json!([{"controllerId": "has space"}]))
        )
        .status,
        400
    );
    assert_eq!(
        fx.mgmt("POST", "/targets", Some(json!([{"name": "no id"}])))
            .status,
        400
    );
    let p = fx.mgmt("GET", "/targets?offset=2&limit=3", None).json();
    assert_eq!(p["total"], 7);
    assert_eq!(p["size"], 3);
    assert_eq!(p["content"][0]["controllerId"], "dev-02");
    let q = fx
        .mgmt(
            "GET",
            "/targets?q=controllerId%3D%3Ddev-0*%3Bname%3D%3D%27Device%203%27",
            None,
        )
        .json();
    assert_eq!(q["total"], 1, "{q}");
    assert_eq!(
        fx.mgmt("GET", "/targets?q=tag%3D%3Dx", None).status,
        400,
        "unsupported FIQL field"
    );
    assert_eq!(fx.mgmt("GET", "/targets?limit=x", None).status, 400);
    assert_eq!(fx.mgmt("GET", "/targets/nope", None).status, 404);
    assert_eq!(fx.mgmt("DELETE", "/targets/dev-06", None).status, 200);
    // operator "request attributes" and token change via PUT
    let tok5 = fx.mgmt("GET", "/targets/dev-05", None).json()["securityToken"]
        .as_str()
        .unwrap()
        .to_string();
    let r = fx.ddi_send(
        "PUT",
        "dev-05",
        &tok5,
        "/configData",
        &json!({"data": {"a": "b"}}),
    );
    assert_eq!(r.status, 200);
    fx.mgmt(
        "PUT",
        "/targets/dev-05",
        Some(json!({"securityToken": "new-token"})),
    );
    assert!(fx.links("dev-05", "new-token").get("configData").is_none());
    let r = fx.mgmt(
        "PUT",
        "/targets/dev-05",
        Some(json!({"requestAttributes": true, "name": "renamed"})),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["name"], "renamed");
    assert!(fx.links("dev-05", "new-token").get("configData").is_some());
    assert_eq!(
        fx.mgmt(
            "PUT",
            "/targets/dev-05",
            Some(json!({"requestAttributes": "yes"}))
        )
        .status,
        400
    );
    assert_eq!(fx.mgmt("PUT", "/targets/nope", Some(json!({}))).status, 404);
    assert_eq!(fx.mgmt("GET", "/targets", None).json()["total"], 6);
    // ignored field: Warning header naming the real one
    let r = fx.mgmt(
        "POST",
        "/targets",
        Some(json!([{"controllerId": "w1", "token": "abc"}])),
    );
    assert_eq!(r.status, 201);
    let w = r.header("warning").unwrap();
    assert!(w.contains("'token'") && w.contains("securityToken"), "{w}");
}

#[test]
fn assignments_offline_actions_and_status_history() {
    let fx = Fx::new();
    fx.target("a");
    fx.target("b");
    let (_, ds) = fx.make_ds("1", b"abc");
    // offline assignment: installed without a device action
    let r = fx.mgmt(
        "POST",
        "/targets/a/assignedDS?offline=true",
        Some(json!({"id": ds})),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        fx.mgmt("GET", "/targets/a/installedDS", None).json()["id"],
        ds
    );
    assert!(fx.links("a", "tok-a").get("deploymentBase").is_none());
    // bulk assignment by DS
    let r = fx.mgmt(
        "POST",
        &format!("/distributionsets/{ds}/assignedTargets"),
        Some(json!([{"id": "b", "type": "soft"}, {"id": "a", "type": "soft"}])),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["total"], 2);
    let a = r.json()["assignedActions"][0]["id"].as_u64().unwrap();
    // multi-assignment is not enabled
    let r = fx.mgmt(
        "POST",
        "/targets/b/assignedDS",
        Some(json!([{"id": ds}, {"id": ds}])),
    );
    assert_eq!(r.status, 400);
    assert_eq!(
        fx.mgmt(
            "POST",
            "/targets/b/assignedDS",
            Some(json!({"type": "soft"}))
        )
        .status,
        400
    );
    assert_eq!(
        fx.mgmt(
            "POST",
            "/targets/b/assignedDS",
            Some(json!({"id": ds, "type": "sometimes"}))
        )
        .status,
        400
    );
    assert_eq!(
        fx.mgmt("POST", "/targets/zz/assignedDS", Some(json!({"id": ds})))
            .status,
        404
    );
    let act = fx
        .mgmt("GET", &format!("/targets/b/actions/{a}"), None)
        .json();
    assert_eq!(act["status"], "pending");
    assert_eq!(act["type"], "update");
    assert_eq!(act["forceType"], "soft");
    assert_eq!(
        fx.mgmt("GET", "/targets/b/actions", None).json()["total"],
        1
    );
    fx.feedback("b", "tok-b", a, "closed", "success");
    let act = fx
        .mgmt("GET", &format!("/targets/b/actions/{a}"), None)
        .json();
    assert_eq!(act["status"], "finished");
    assert_eq!(act["detailStatus"], "finished");
    let st = fx
        .mgmt("GET", &format!("/targets/b/actions/{a}/status"), None)
        .json();
    assert_eq!(
        st["content"][0]["type"], "finished",
        "newest first by default"
    );
    let st = fx
        .mgmt(
            "GET",
            &format!("/targets/b/actions/{a}/status?sort=id:ASC"),
            None,
        )
        .json();
    assert_eq!(st["content"][0]["type"], "running");
    assert!(
        fx.mgmt("GET", "/actions", None).json()["total"]
            .as_u64()
            .unwrap()
            >= 2
    );
    assert_eq!(fx.mgmt("GET", "/targets/b/actions/99999", None).status, 404);
    assert_eq!(
        fx.mgmt("DELETE", &format!("/targets/b/actions/{a}"), None)
            .status,
        400,
        "closed action"
    );
}

#[test]
fn system_configs() {
    let fx = Fx::new();
    let all = fx.mgmt("GET", "/system/configs", None).json();
    assert_eq!(all["pollingTime"]["value"], "00:05:00");
    assert_eq!(all["authentication.targettoken.enabled"]["value"], true);
    assert_eq!(
        fx.mgmt(
            "PUT",
            "/system/configs/pollingTime",
            Some(json!({"value": "00:01:00"}))
        )
        .status,
        200
    );
    assert_eq!(
        fx.mgmt("GET", "/system/configs/pollingTime", None).json()["value"],
        "00:01:00"
    );
    assert_eq!(
        fx.mgmt(
            "PUT",
            "/system/configs/pollingTime",
            Some(json!({"value": "5 minutes"}))
        )
        .status,
        400
    );
    assert_eq!(
        fx.mgmt(
            "PUT",
            "/system/configs/authentication.gatewaytoken.enabled",
            Some(json!({"value": "yes"}))
        )
        .status,
        400
    );
    assert_eq!(
        fx.mgmt(
            "PUT",
            "/system/configs/no.such.key",
            Some(json!({"value": 1}))
        )
        .status,
        404
    );
    assert_eq!(
        fx.mgmt("PUT", "/system/configs/pollingTime", Some(json!({"v": 1})))
            .status,
        400
    );
    fx.mgmt(
        "PUT",
        "/system/configs/authentication.gatewaytoken.key",
        Some(json!({"value": "k"})),
    );
    fx.mgmt(
        "PUT",
        "/system/configs/authentication.gatewaytoken.enabled",
        Some(json!({"value": true})),
    );
    let gateway_poll = || {
        fx.call(
            "GET",
            &fx.ddi("gw"),
            &[("Authorization", "GatewayToken k")],
            None,
        )
        .status
    };
    assert_eq!(gateway_poll(), 200);
    assert_eq!(
        fx.mgmt(
            "DELETE",
            "/system/configs/authentication.gatewaytoken.enabled",
            None
        )
        .status,
        204
    );
    assert_eq!(gateway_poll(), 401);
}

#[test]
fn large_upload_is_streamed_to_disk_and_served_back() {
    let fx = Fx::new();
    let sm = fx.sim().create_software_module("big", "1", "os").unwrap();
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 253) as u8).collect();
    let (ct, body) = multipart(&data, "big.bin", &[]);
    let r = upload(&fx, sm, "", &ct, &body);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["size"], 5_000_000);
    let aid = r.json()["id"].as_u64().unwrap();
    let dl = fx.mgmt(
        "GET",
        &format!("/softwaremodules/{sm}/artifacts/{aid}/download"),
        None,
    );
    assert_eq!(dl.body.len(), data.len());
    assert!(dl.body == data);
}

#[test]
fn assignment_locks_the_distribution_set_and_its_modules() {
    // ddi-api.md §2.2: uploading to a locked module ⇒ 423 (hawkBit locks a DS and its modules when it is
    // first assigned or used by a rollout)
    let fx = Fx::new();
    fx.target("lk");
    let (sm, ds) = fx.make_ds("1.0", b"first");
    assert_eq!(
        fx.mgmt("GET", &format!("/softwaremodules/{sm}"), None)
            .json()["locked"],
        false
    );
    let (ct, body) = multipart(b"before", "extra-before.bin", &[]);
    assert_eq!(
        upload(&fx, sm, "", &ct, &body).status,
        201,
        "not locked yet"
    );
    let r = fx.mgmt("POST", "/targets/lk/assignedDS", Some(json!({"id": ds})));
    assert_eq!(r.status, 200);
    assert_eq!(
        fx.mgmt("GET", &format!("/softwaremodules/{sm}"), None)
            .json()["locked"],
        true
    );
    assert_eq!(
        fx.mgmt("GET", &format!("/distributionsets/{ds}"), None)
            .json()["locked"],
        true
    );
    let (ct, body) = multipart(b"after", "extra-after.bin", &[]);
    let r = upload(&fx, sm, "", &ct, &body);
    assert_eq!(r.status, 423, "{}", r.text());
    assert!(!r.json()["message"].as_str().unwrap().is_empty());
    // a rollout locks its DS at creation
    let (sm2, ds2) = fx.make_ds("2.0", b"second");
    let r = fx.mgmt(
        "POST",
        "/rollouts",
        Some(json!({"name": "lock", "distributionSetId": ds2, "targetFilterQuery": "controllerid==lk"})),
    );
    assert_eq!(r.status, 201);
    let (ct, body) = multipart(b"late", "late.bin", &[]);
    assert_eq!(upload(&fx, sm2, "", &ct, &body).status, 423);
}

#[test]
fn chunk_encrypted_flag_and_empty_artifacts() {
    // ddi-api.md §1.3: `encrypted` only when true; `artifacts` may be []; `application` → "bApp"
    let fx = Fx::new();
    fx.target("ch");
    let os = fx.mgmt(
        "POST",
        "/softwaremodules",
        Some(json!([{"name": "rootfs", "version": "1", "type": "os", "encrypted": true}])),
    );
    assert_eq!(os.status, 201, "{}", os.text());
    let os = os.json()[0]["id"].as_u64().unwrap();
    let app = fx.mgmt(
        "POST",
        "/softwaremodules",
        Some(json!([{"name": "tool", "version": "2", "type": "application"}])),
    );
    assert_eq!(app.status, 201, "{}", app.text());
    let app = app.json()[0]["id"].as_u64().unwrap();
    let ds = fx.mgmt(
        "POST",
        "/distributionsets",
        Some(json!([{"name": "fw", "version": "1", "type": "os_app", "modules": [{"id": os}, {"id": app}]}])),
    );
    assert_eq!(ds.status, 201, "{}", ds.text());
    let ds = ds.json()[0]["id"].as_u64().unwrap();
    let a = fx
        .mgmt("POST", "/targets/ch/assignedDS", Some(json!({"id": ds})))
        .json()["assignedActions"][0]["id"]
        .as_u64()
        .unwrap();
    let d = fx
        .ddi_get("ch", "tok-ch", &format!("/deploymentBase/{a}"))
        .json();
    let chunks = d["deployment"]["chunks"].as_array().unwrap();
    let os_chunk = chunks.iter().find(|c| c["name"] == "rootfs").unwrap();
    let app_chunk = chunks.iter().find(|c| c["name"] == "tool").unwrap();
    assert_eq!(os_chunk["part"], "os");
    assert_eq!(os_chunk["encrypted"], true);
    assert_eq!(app_chunk["part"], "bApp");
    assert!(app_chunk.get("encrypted").is_none(), "{app_chunk}");
    assert_eq!(app_chunk["artifacts"], json!([]), "artifacts may be []");
}

#[test]
fn custom_module_and_set_types_become_ddi_parts() {
    let fx = Fx::new();
    // The built-in types are listed like hawkBit's tenant defaults.
    let r = fx.mgmt("GET", "/softwaremoduletypes", None);
    assert_eq!(r.status, 200, "{}", r.text());
    let keys: Vec<String> = r.json()["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys, ["os", "runtime", "application"]);
    let os_type = r.json()["content"][0]["id"].as_u64().unwrap();
    assert_eq!(r.json()["content"][0]["maxAssignments"], 1);
    // A module of an unknown type is refused until the type exists.
    let config_sm = json!([{"name": "settings", "version": "7", "type": "config"}]);
    assert_eq!(
        fx.mgmt("POST", "/softwaremodules", Some(config_sm.clone()))
            .status,
        404
    );
    let r = fx.mgmt(
        "POST",
        "/softwaremoduletypes",
        Some(json!([{"key": "config", "name": "Configuration", "description": "files", "maxAssignments": 1}])),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()[0]["key"], "config");
    let config_type = r.json()[0]["id"].as_u64().unwrap();
    assert_eq!(
        fx.mgmt("GET", &format!("/softwaremoduletypes/{config_type}"), None)
            .json()["name"],
        "Configuration"
    );
    assert_eq!(
        fx.mgmt(
            "POST",
            "/softwaremoduletypes",
            Some(json!([{"key": "config", "name": "Other"}]))
        )
        .status,
        409
    );
    // DS types reference module types by id (hawkBit's body shape).
    assert_eq!(
        fx.mgmt(
            "POST",
            "/distributionsettypes",
            Some(json!([{"key": "x", "name": "X", "mandatorymodules": [{"id": 999}]}]))
        )
        .status,
        404
    );
    let r = fx.mgmt(
        "POST",
        "/distributionsettypes",
        Some(json!([{"key": "os_config", "name": "OS with config",
            "mandatorymodules": [{"id": os_type}], "optionalmodules": [{"id": config_type}]}])),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let ds_type = r.json()[0]["id"].as_u64().unwrap();
    assert_eq!(
        fx.mgmt("GET", &format!("/distributionsettypes/{ds_type}"), None)
            .json()["key"],
        "os_config"
    );
    let r = fx.mgmt("POST", "/softwaremodules", Some(config_sm));
    assert_eq!(r.status, 201, "{}", r.text());
    let cfg = r.json()[0]["id"].as_u64().unwrap();
    let cfg2 = fx
        .mgmt(
            "POST",
            "/softwaremodules",
            Some(json!([{"name": "settings", "version": "8", "type": "config"}])),
        )
        .json()[0]["id"]
        .as_u64()
        .unwrap();
    let os = fx
        .mgmt(
            "POST",
            "/softwaremodules",
            Some(json!([{"name": "rootfs", "version": "2", "type": "os"}])),
        )
        .json()[0]["id"]
        .as_u64()
        .unwrap();
    // The default os_app type does not take config modules; maxAssignments holds.
    let ds = |name: &str, ty: &str, mods: &[u64]| {
        let mods: Vec<_> = mods.iter().map(|m| json!({"id": m})).collect();
        fx.mgmt(
            "POST",
            "/distributionsets",
            Some(json!([{"name": name, "version": "1", "type": ty, "modules": mods}])),
        )
    };
    assert_eq!(ds("a", "os_app", &[os, cfg]).status, 400);
    assert_eq!(ds("b", "os_config", &[os, cfg, cfg2]).status, 400);
    let r = ds("c", "os_config", &[cfg]);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        r.json()[0]["complete"],
        false,
        "the mandatory os module is missing"
    );
    let r = ds("d", "os_config", &[os, cfg]);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()[0]["complete"], true);
    assert_eq!(r.json()[0]["typeName"], "OS with config");
    let set = r.json()[0]["id"].as_u64().unwrap();
    // The device sees one chunk per module, the custom type key as `part`.
    let sim = fx.sim();
    let token = sim.create_target("dev-types", None).unwrap();
    let action = sim.assign("dev-types", set, Default::default()).unwrap();
    let r = fx.ddi_get("dev-types", &token, &format!("/deploymentBase/{action}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let mut parts: Vec<String> = r.json()["deployment"]["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["part"].as_str().unwrap().to_owned())
        .collect();
    parts.sort();
    assert_eq!(parts, ["config", "os"]);
    // The same through the library API.
    sim.create_software_module_type("bootloader", "Bootloader", 1)
        .unwrap();
    sim.create_distribution_set_type("os_bl", "OS with bootloader", &["os", "bootloader"], &[])
        .unwrap();
    let bl = sim
        .create_software_module("uboot", "2024.01", "bootloader")
        .unwrap();
    assert!(
        sim.create_distribution_set_type("bad", "Bad", &["nope"], &[])
            .is_err()
    );
    sim.create_distribution_set("e", "1", "os_bl", &[os, bl])
        .unwrap();
}

#[test]
fn module_and_set_lists_take_a_fiql_query() {
    let fx = Fx::new();
    fx.make_ds("1.0", b"a");
    fx.make_ds("1.1", b"b");
    fx.make_ds("2.0", b"c");
    let q = |path: &str| {
        let r = fx.mgmt("GET", path, None);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.json()["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        q("/softwaremodules?q=name%3D%3Drootfs%3Bversion%3D%3D1.1"),
        ["1.1"]
    );
    assert_eq!(q("/softwaremodules?q=version%3D%3D1.*"), ["1.0", "1.1"]);
    assert_eq!(
        q("/softwaremodules?q=type%3D%3Dapplication"),
        Vec::<String>::new()
    );
    assert_eq!(
        q("/distributionsets?q=name%3D%3D%22fw%22%3Bversion%3D%3D2.0"),
        ["2.0"]
    );
    assert_eq!(
        q("/distributionsets?q=version%3Dout%3D(1.0%2C2.0)"),
        ["1.1"]
    );
    // a field that is not one of the entity's: 400 naming the supported ones
    let r = fx.mgmt("GET", "/distributionsets?q=controllerid%3D%3Dx", None);
    assert_eq!(r.status, 400);
    assert!(
        r.text()
            .contains("supported: id, name, version, type, description"),
        "{}",
        r.text()
    );
}
