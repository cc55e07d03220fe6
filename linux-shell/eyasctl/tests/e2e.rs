//! End-to-end: every `eyasctl` subcommand against hawkbit-sim, including hawkBit's error
//! answers (duplicate module, unknown distribution set, rollout not ready, error-threshold pause).

mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::{Fx, path};

const FAST: Duration = Duration::from_millis(100);

#[test]
fn help_documents_the_exit_codes() {
    let fx = Fx::new(FAST);
    let r = fx.ctl(&["--help"]);
    assert_eq!(r.code, 0);
    for needle in [
        "Exit codes",
        "0  done",
        "1  hawkBit refused",
        "2  usage",
        "3  the rollout is paused",
    ] {
        assert!(
            r.stdout.contains(needle),
            "{needle:?} missing in {}",
            r.stdout
        );
    }
    // a bad command line is a usage error (2)
    assert_eq!(fx.ctl(&["rollout", "create"]).code, 2);
    assert_eq!(fx.ctl(&["rollback", "--to", "1"]).code, 2);
}

#[test]
fn publish_creates_module_artifact_and_set_and_again_is_a_noop() {
    let fx = Fx::new(FAST);
    let bundle = fx.file("rootfs-1.0.raucb", 1, 300_000);
    let r = fx.ctl(&[
        "--json",
        "publish",
        path(&bundle),
        "--name",
        "rootfs",
        "--version",
        "1.0",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let first = r.json();
    assert_eq!(first["softwareModule"]["reused"], false);
    assert_eq!(first["artifact"]["reused"], false);
    assert_eq!(first["distributionSet"]["reused"], false);
    assert_eq!(first["distributionSet"]["name"], "rootfs");
    let sm = first["softwareModule"]["id"].as_u64().expect("sm id");
    let ds = first["distributionSet"]["id"].as_u64().expect("ds id");

    // what hawkBit holds: the artifact with the bundle's SHA-256, a complete os set with the module
    let (s, arts) = fx.mgmt("GET", &format!("/softwaremodules/{sm}/artifacts"), None);
    assert_eq!(s, 200);
    let out = Command::new("sha256sum")
        .arg(&bundle)
        .output()
        .expect("sha256sum runs");
    let want = String::from_utf8_lossy(&out.stdout)
        .split(' ')
        .next()
        .unwrap_or("")
        .to_owned();
    assert_eq!(arts[0]["hashes"]["sha256"], Value::String(want.clone()));
    assert_eq!(first["artifact"]["sha256"], Value::String(want));
    assert_eq!(arts[0]["size"], 300_000);
    assert_eq!(arts[0]["providedFilename"], "rootfs-1.0.raucb");
    let (_, d) = fx.mgmt("GET", &format!("/distributionsets/{ds}"), None);
    assert_eq!(d["type"], "os");
    assert_eq!(d["complete"], true);
    assert_eq!(d["modules"][0]["id"], sm);

    // the same bundle again: nothing new
    let again = fx.ctl(&[
        "--json",
        "publish",
        path(&bundle),
        "--name",
        "rootfs",
        "--version",
        "1.0",
    ]);
    assert_eq!(again.code, 0, "{again:?}");
    let again = again.json();
    assert_eq!(again["softwareModule"]["id"], sm);
    assert_eq!(again["softwareModule"]["reused"], true);
    assert_eq!(again["artifact"]["reused"], true);
    assert_eq!(again["distributionSet"]["id"], ds);
    assert_eq!(again["distributionSet"]["reused"], true);
    let (_, all) = fx.mgmt("GET", "/softwaremodules", None);
    assert_eq!(all["total"], 1);
    let (_, arts) = fx.mgmt("GET", &format!("/softwaremodules/{sm}/artifacts"), None);
    assert_eq!(arts.as_array().map(Vec::len), Some(1));

    // plain output: the ids on the last line
    let plain = fx.ctl(&[
        "publish",
        path(&bundle),
        "--name",
        "rootfs",
        "--version",
        "1.0",
    ]);
    assert_eq!(plain.code, 0);
    assert!(
        plain.stdout.contains(&format!("software_module={sm} "))
            && plain.stdout.contains(&format!("distribution_set={ds}")),
        "{plain:?}"
    );
}

#[test]
fn publish_refuses_another_bundle_under_a_published_version() {
    let fx = Fx::new(FAST);
    let a = fx.file("a.raucb", 1, 10_000);
    let b = fx.file("b.raucb", 2, 10_000);
    fx.publish(&a, "2.0");
    let r = fx.ctl(&[
        "--json",
        "publish",
        path(&b),
        "--name",
        "rootfs",
        "--version",
        "2.0",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("already holds a.raucb"), "{}", r.stderr);
    assert_eq!(r.json()["error"], "failed");
    // nothing was added
    let (_, sms) = fx.mgmt("GET", "/softwaremodules", None);
    assert_eq!(sms["total"], 1);

    // a distribution set of that name and version holding other modules: refused too
    let c = fx.file("c.raucb", 3, 10_000);
    let r = fx.ctl(&[
        "publish",
        path(&c),
        "--name",
        "other",
        "--version",
        "9",
        "--ds-name",
        "rootfs",
        "--ds-version",
        "2.0",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("choose another --ds-version"),
        "{}",
        r.stderr
    );
}

#[test]
fn existing_module_is_reused_and_hawkbits_409_is_quoted() {
    // hawkBit's own 409 for a module that exists (here: created by hand while eyasctl reuses by
    // name/version/type, a bulk create of the same key is what hawkBit refuses)
    let fx = Fx::new(FAST);
    let body = serde_json::json!([{"name": "rootfs", "version": "1.0", "type": "os"}]);
    assert_eq!(
        fx.mgmt("POST", "/softwaremodules", Some(body.clone())).0,
        201
    );
    assert_eq!(fx.mgmt("POST", "/softwaremodules", Some(body)).0, 409);
    // eyasctl reuses the existing (empty) module and uploads into it
    let f = fx.file("x.raucb", 5, 5_000);
    let r = fx.ctl(&[
        "--json",
        "publish",
        path(&f),
        "--name",
        "rootfs",
        "--version",
        "1.0",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["softwareModule"]["reused"], true);
    assert_eq!(r.json()["artifact"]["reused"], false);
    // a second rollout with a taken name: hawkBit's 409 errorCode is in the message and the JSON
    fx.targets("dev-", 2);
    let ds = r.json()["distributionSet"]["id"]
        .as_u64()
        .expect("ds")
        .to_string();
    let args = [
        "--json",
        "rollout",
        "create",
        "--ds",
        &ds,
        "--filter",
        "controllerid==dev-*",
        "--groups",
        "100",
        "--name",
        "same",
    ];
    assert_eq!(fx.ctl(&args).code, 0);
    let dup = fx.ctl(&args);
    assert_eq!(dup.code, 1, "{dup:?}");
    assert!(
        dup.stderr
            .contains("HTTP 409: hawkbit.server.error.repo.entitiyAlreadyExists"),
        "{}",
        dup.stderr
    );
    assert_eq!(
        dup.json()["errorCode"],
        "hawkbit.server.error.repo.entitiyAlreadyExists"
    );
    assert_eq!(dup.json()["status"], 409);
}

#[test]
fn publish_reads_name_and_version_with_rauc_info() {
    let fx = Fx::new(FAST);
    let d = fx.dir.path();
    let lib = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../hil-tests/scripts/lib.sh"
    );
    let ok = Command::new("bash")
        .arg("-c")
        .arg(format!(
            ". {lib} && test_pki pki Test && mkdir -p content && head -c 65536 /dev/urandom > content/rootfs.ext4 && \
             printf '[update]\\ncompatible=acme-board\\nversion=3.1.4\\n\\n[bundle]\\nformat=plain\\n\\n[image.rootfs]\\nfilename=rootfs.ext4\\n' > content/manifest.raucm && \
             rauc bundle --cert=pki/signer.cert.pem --key=pki/signer.key.pem --keyring=pki/ca.cert.pem content update.bin"
        ))
        .current_dir(d)
        .output()
        .expect("bash runs");
    assert!(
        ok.status.success(),
        "making a RAUC bundle (needs openssl and rauc): {}{}",
        String::from_utf8_lossy(&ok.stdout),
        String::from_utf8_lossy(&ok.stderr)
    );
    let r = fx.ctl(&[
        "--json",
        "publish",
        path(&d.join("update.bin")),
        "--ds-name",
        "acme-fw",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = r.json();
    assert_eq!(v["softwareModule"]["name"], "acme-board");
    assert_eq!(v["softwareModule"]["version"], "3.1.4");
    assert_eq!(v["distributionSet"]["name"], "acme-fw");
    assert_eq!(v["distributionSet"]["version"], "3.1.4");
    // not a bundle and no --name/--version: a usage error naming rauc info
    let junk = fx.file("junk.raucb", 9, 100);
    let r = fx.ctl(&["publish", path(&junk)]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("rauc info"), "{}", r.stderr);
}

#[test]
fn local_problems_are_usage_errors() {
    let fx = Fx::new(FAST);
    let r = fx.ctl(&[
        "publish",
        "/nonexistent/x.raucb",
        "--name",
        "a",
        "--version",
        "1",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = fx.ctl(&["--ca-file", "/nonexistent/ca.pem", "rollout", "watch", "1"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--ca-file"), "{}", r.stderr);
    // wrong credentials: hawkBit's 401, exit 1
    let r = fx.ctl(&["--password", "wrong", "rollout", "watch", "1"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("HTTP 401"), "{}", r.stderr);
    // a bearer token (--token or HAWKBIT_TOKEN) replaces Basic; the simulator takes only Basic: 401
    let r = fx.ctl(&["--token", "s3cret", "rollout", "watch", "7"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("HTTP 401"), "{}", r.stderr);
    let r = fx
        .command(&["rollout", "pause", "8"])
        .env("HAWKBIT_TOKEN", "s3cret")
        .output()
        .expect("runs");
    assert_eq!(r.status.code(), Some(1));
    let schemes: Vec<(String, Option<String>)> = fx
        .requests()
        .into_iter()
        .filter(|q| q.path == "/rest/v1/rollouts/7" || q.path == "/rest/v1/rollouts/8/pause")
        .map(|q| (q.path, q.auth_scheme))
        .collect();
    assert_eq!(
        schemes,
        [
            ("/rest/v1/rollouts/7".to_owned(), Some("Bearer".to_owned())),
            (
                "/rest/v1/rollouts/8/pause".to_owned(),
                Some("Bearer".to_owned())
            )
        ]
    );
    // nobody listening: exit 1 with the cause
    let r = Command::new(env!("CARGO_BIN_EXE_eyasctl"))
        .args(["--url", "http://127.0.0.1:9", "rollout", "pause", "1"])
        .output()
        .expect("runs");
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("no answer from hawkBit"));
}

#[test]
fn unknown_distribution_set_is_hawkbits_404() {
    let fx = Fx::new(FAST);
    fx.targets("dev-", 3);
    let r = fx.ctl(&[
        "--json",
        "rollout",
        "create",
        "--ds",
        "4711",
        "--filter",
        "controllerid==dev-*",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("HTTP 404: hawkbit.server.error.repo.entitiyNotFound"),
        "{}",
        r.stderr
    );
    assert_eq!(
        r.json()["errorCode"],
        "hawkbit.server.error.repo.entitiyNotFound"
    );
    let r = fx.ctl(&[
        "rollout",
        "create",
        "--ds",
        "nothing:1.0",
        "--filter",
        "controllerid==dev-*",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("no distribution set nothing:1.0"),
        "{}",
        r.stderr
    );
    let r = fx.ctl(&["rollback", "--target", "dev-000", "--to", "4711"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("entitiyNotFound"), "{}", r.stderr);
    // groups that do not reach 100 %: refused before anything is sent
    let r = fx.ctl(&[
        "rollout", "create", "--ds", "4711", "--filter", "x==y", "--groups", "10,50",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    let (_, ros) = fx.mgmt("GET", "/rollouts", None);
    assert_eq!(ros["total"], 0);
}

#[test]
fn rollout_that_is_not_ready() {
    // the scheduler never runs: the rollout stays `creating`
    let fx = Fx::new(Duration::from_secs(3600));
    fx.targets("dev-", 4);
    let ds = fx.publish(&fx.file("a.raucb", 1, 1000), "1.0").to_string();
    let r = fx.ctl(&[
        "--json",
        "rollout",
        "create",
        "--ds",
        &ds,
        "--filter",
        "controllerid==dev-*",
        "--wait",
        "1",
        "--start",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("did not become ready within 1 s (still 'creating')"),
        "{}",
        r.stderr
    );
    let (_, ros) = fx.mgmt("GET", "/rollouts", None);
    let id = ros["content"][0]["id"].as_u64().expect("rollout id");
    let r = fx.ctl(&["rollout", "start", &id.to_string()]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("HTTP 400: hawkbit.server.error.rollout.illegalstate")
            && r.stderr.contains("'creating'"),
        "{}",
        r.stderr
    );
    let r = fx.ctl(&["--json", "rollout", "resume", &id.to_string()]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.json()["errorCode"],
        "hawkbit.server.error.rollout.illegalstate"
    );
    // watch gives up at its deadline
    let r = fx.ctl(&["rollout", "watch", &id.to_string(), "--timeout", "1"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("still 'creating'"), "{}", r.stderr);
}

#[test]
fn staged_rollout_finishes_and_watch_exits_0() {
    let fx = Fx::new(FAST);
    let devices = fx.targets("dev-", 20);
    fx.targets("other-", 3);
    fx.publish(&fx.file("a.raucb", 1, 2000), "2.0");
    let r = fx.ctl(&[
        "--json",
        "rollout",
        "create",
        "--ds",
        "rootfs:2.0",
        "--filter",
        "controllerid==dev-*",
        "--groups",
        "10,50,100",
        "--success",
        "100",
        "--error",
        "0",
        "--type",
        "soft",
        "--start",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = r.json();
    let id = v["id"].as_u64().expect("id");
    assert_eq!(v["totalTargets"], 20);
    assert_eq!(v["started"], true);
    assert_eq!(v["status"], "running");
    let sizes: Vec<u64> = v["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["totalTargets"].as_u64())
        .collect();
    assert_eq!(sizes, [2, 8, 10]);
    let (_, ro) = fx.mgmt("GET", &format!("/rollouts/{id}"), None);
    assert_eq!(ro["type"], "soft");
    let (_, gs) = fx.mgmt("GET", &format!("/rollouts/{id}/deploygroups"), None);
    assert_eq!(gs["content"][0]["successCondition"]["expression"], "100");
    assert_eq!(gs["content"][0]["errorCondition"]["expression"], "0");
    assert_eq!(gs["content"][0]["name"], "canary-10pct");

    let child = fx.spawn(&[
        "--json",
        "rollout",
        "watch",
        &id.to_string(),
        "--timeout",
        "60",
    ]);
    let run = fx.drive(child, &devices, &[], 90);
    assert_eq!(run.code, 0, "{run:?}");
    let out = run.json();
    assert_eq!(out["status"], "finished");
    assert_eq!(out["totalTargetsPerStatus"]["finished"], 20);
    assert_eq!(out["groups"].as_array().map(Vec::len), Some(3));
    // plain lines (not a TTY) on stderr with --json: the group states as they changed
    assert!(run.stderr.contains("canary-10pct:"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("rollout {id} finished")),
        "{}",
        run.stderr
    );
    // a finished rollout watched again: exit 0 at once, plain text on stdout
    let again = fx.ctl(&["rollout", "watch", &id.to_string()]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("[finished]"), "{}", again.stdout);
}

#[test]
fn error_threshold_pauses_then_rollback_of_the_failed_devices() {
    let fx = Fx::new(FAST);
    let devices = fx.targets("dev-", 10);
    let old = fx.publish(&fx.file("old.raucb", 1, 1000), "1.0");
    fx.publish(&fx.file("new.raucb", 2, 1000), "2.0");
    let r = fx.ctl(&[
        "rollout",
        "create",
        "--ds",
        "rootfs:2.0",
        "--filter",
        "controllerid==dev-*",
        "--group",
        "canary=controllerid==dev-00*",
        "--groups",
        "50,100",
        "--success",
        "100",
        "--error",
        "0",
        "--start",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let id: u64 = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("rollout="))
        .and_then(|s| s.parse().ok())
        .expect("rollout=ID line");
    let (_, gs) = fx.mgmt(
        "GET",
        &format!("/rollouts/{id}/deploygroups?representation=full"),
        None,
    );
    let sizes: Vec<u64> = gs["content"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["totalTargets"].as_u64())
        .collect();
    assert_eq!(
        sizes,
        [10, 0, 0],
        "the canary filter dev-00* matches dev-000…dev-009"
    );
    assert!(
        r.stderr
            .contains("group(s) wave-50pct, wave-100pct hold no device"),
        "{}",
        r.stderr
    );

    let child = fx.spawn(&["rollout", "watch", &id.to_string(), "--timeout", "60"]);
    let run = fx.drive(child, &devices, &["dev-003", "dev-007"], 90);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stdout.contains("paused"), "{}", run.stdout);
    assert_eq!(fx.rollout_status(id), "paused");

    // dry run: lists exactly the failed devices, assigns nothing
    let r = fx.ctl(&[
        "--json",
        "rollback",
        "--rollout",
        &id.to_string(),
        "--failed",
        "--to",
        "rootfs:1.0",
        "--dry-run",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = r.json();
    let listed: Vec<&str> = v["targets"]
        .as_array()
        .expect("targets")
        .iter()
        .filter_map(|t| t["controllerId"].as_str())
        .collect();
    assert_eq!(listed, ["dev-003", "dev-007"]);
    assert_eq!(v["dryRun"], true);
    assert!(v.get("assigned").is_none());
    let (_, acts) = fx.mgmt("GET", "/targets/dev-003/actions", None);
    assert_eq!(acts["total"], 1);

    let r = fx.ctl(&[
        "--json",
        "rollback",
        "--rollout",
        &id.to_string(),
        "--failed",
        "--to",
        &old.to_string(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["assigned"], 2);
    for dev in ["dev-003", "dev-007"] {
        let (_, a) = fx.mgmt("GET", &format!("/targets/{dev}/assignedDS"), None);
        assert_eq!(a["id"], old, "{dev}");
    }
    let (_, a) = fx.mgmt("GET", "/targets/dev-001/installedDS", None);
    assert_eq!(
        a["version"], "2.0",
        "a device that succeeded keeps the new version"
    );
}

#[test]
fn pause_resume_and_watch_exit_3() {
    let fx = Fx::new(FAST);
    let devices = fx.targets("dev-", 6);
    fx.publish(&fx.file("a.raucb", 1, 1000), "2.0");
    let r = fx.ctl(&[
        "--json",
        "rollout",
        "create",
        "--ds",
        "rootfs:2.0",
        "--filter",
        "controllerid==dev-*",
        "--groups",
        "50,100",
        "--success",
        "100",
        "--error",
        "0",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.json()["id"].as_u64().expect("id").to_string();
    assert_eq!(r.json()["status"], "ready");
    let r = fx.ctl(&["--json", "rollout", "start", &id]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["status"], "running");
    let r = fx.ctl(&["rollout", "pause", &id]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("status paused"), "{}", r.stdout);
    let w = fx.ctl(&["rollout", "watch", &id]);
    assert_eq!(w.code, 3, "{w:?}");
    let r = fx.ctl(&["--json", "rollout", "resume", &id]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["status"], "running");
    let child = fx.spawn(&["rollout", "watch", &id, "--timeout", "60", "--plain"]);
    let run = fx.drive(child, &devices, &[], 90);
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn rollback_by_filter_and_by_target() {
    let fx = Fx::new(FAST);
    fx.targets("dev-", 3);
    fx.targets("lab-", 2);
    let old = fx.publish(&fx.file("old.raucb", 1, 1000), "1.0");
    let r = fx.ctl(&[
        "--json",
        "rollback",
        "--filter",
        "controllerid==lab-*",
        "--to",
        "rootfs:1.0",
        "--type",
        "soft",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let v = r.json();
    assert_eq!(v["assigned"], 2);
    assert_eq!(v["actions"].as_array().map(Vec::len), Some(2));
    let (_, acts) = fx.mgmt("GET", "/targets/lab-001/actions", None);
    assert_eq!(acts["content"][0]["forceType"], "soft");
    let (_, acts) = fx.mgmt("GET", "/targets/dev-001/actions", None);
    assert_eq!(acts["total"], 0);
    // again: already assigned
    let r = fx.ctl(&[
        "--json",
        "rollback",
        "--target",
        "lab-000,dev-002",
        "--to",
        &old.to_string(),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.json()["assigned"], 1);
    assert_eq!(r.json()["alreadyAssigned"], 1);
    // an unknown device: hawkBit's 404, nothing assigned
    let r = fx.ctl(&[
        "rollback",
        "--target",
        "dev-000",
        "--target",
        "ghost",
        "--to",
        "rootfs:1.0",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("HTTP 404") && r.stderr.contains("ghost"),
        "{}",
        r.stderr
    );
    let (_, acts) = fx.mgmt("GET", "/targets/dev-000/actions", None);
    assert_eq!(acts["total"], 0);
    // no device matches: nothing to do, exit 0
    let r = fx.ctl(&[
        "rollback",
        "--filter",
        "controllerid==none*",
        "--to",
        "rootfs:1.0",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
}

#[test]
fn publish_application_and_config_modules() {
    let fx = Fx::new(FAST);
    let app = fx.file("app.raucb", 1, 1000);
    let r = fx.ctl(&[
        "--json",
        "publish",
        path(&app),
        "--name",
        "webapp",
        "--version",
        "1.0",
        "--type",
        "application",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let ds = r.json()["distributionSet"]["id"].as_u64().expect("ds");
    let (_, d) = fx.mgmt("GET", &format!("/distributionsets/{ds}"), None);
    assert_eq!(d["type"], "app");
    assert_eq!(d["complete"], true);
    assert_eq!(d["modules"][0]["type"], "application");

    // config: the module type and a distribution set type are created on first use, reused after
    let conf = fx.file("device.conf", 2, 100);
    for round in 0..2 {
        let r = fx.ctl(&[
            "--json",
            "publish",
            path(&conf),
            "--name",
            "device-config",
            "--version",
            "7",
            "--type",
            "config",
        ]);
        assert_eq!(r.code, 0, "round {round}: {r:?}");
        let v = r.json();
        assert_eq!(v["softwareModule"]["reused"], round == 1);
        let (_, d) = fx.mgmt(
            "GET",
            &format!("/distributionsets/{}", v["distributionSet"]["id"]),
            None,
        );
        assert_eq!(d["type"], "config");
        assert_eq!(d["complete"], true);
        assert_eq!(d["modules"][0]["type"], "config");
    }
    let (_, types) = fx.mgmt("GET", "/softwaremoduletypes", None);
    let keys: Vec<&str> = types["content"]
        .as_array()
        .expect("types")
        .iter()
        .filter_map(|t| t["key"].as_str())
        .collect();
    assert_eq!(
        keys.iter().filter(|k| **k == "config").count(),
        1,
        "{keys:?}"
    );
    let (_, types) = fx.mgmt("GET", "/distributionsettypes", None);
    let keys: Vec<&str> = types["content"]
        .as_array()
        .expect("types")
        .iter()
        .filter_map(|t| t["key"].as_str())
        .collect();
    assert_eq!(
        keys.iter().filter(|k| **k == "config").count(),
        1,
        "{keys:?}"
    );
}

/// `openssl s_server` with a leaf for 127.0.0.1 signed by a throw-away CA; killed on drop.
struct TlsServer(std::process::Child);

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn tls_needs_the_ca_file_for_a_private_ca() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = Command::new("bash")
        .arg("-c")
        .arg(
            "set -e; \
             openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=eyasctl-test-ca \
               -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign; \
             openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr -subj /CN=127.0.0.1; \
             printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:false\\nextendedKeyUsage=serverAuth\\n' > leaf.ext; \
             openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 2 -extfile leaf.ext",
        )
        .current_dir(dir.path())
        .output()
        .expect("bash runs");
    assert!(
        pki.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&pki.stderr)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let server = TlsServer(
        Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept", &port.to_string()])
            .args(["-cert", "leaf.pem", "-key", "leaf.key"])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("openssl s_server starts"),
    );
    let end = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < end, "s_server never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = format!("https://127.0.0.1:{port}");
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_eyasctl"))
            .args(["--url", &url])
            .args(extra)
            .args(["rollout", "watch", "1", "--timeout", "5"])
            .output()
            .expect("eyasctl runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // the built-in web roots do not know the private CA: the handshake fails, named as such
    let (code, err) = run(&[]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("no answer from hawkBit") && err.contains("UnknownIssuer"),
        "{err}"
    );
    // with --ca-file the handshake succeeds; s_server's status page is not hawkBit's JSON
    let ca = dir.path().join("ca.pem");
    let (code, err) = run(&["--ca-file", path(&ca)]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("unexpected answer: not JSON"), "{err}");
    drop(server);
}
