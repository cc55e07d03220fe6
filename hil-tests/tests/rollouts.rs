//! Rollouts: creation rules, state machine and the group scheduler (ddi-api.md §2.6).

mod common;

use std::time::{Duration, Instant};

use common::Fx;
use hil_tests::sim::SimConfig;
use serde_json::{Value, json};

fn fleet(fx: &Fx, prefix: &str, n: usize) -> u64 {
    let body: Vec<Value> = (0..n)
        .map(|i| json!({"controllerId": format!("{prefix}{i:03}"), "securityToken": format!("tok-{prefix}{i:03}")}))
        .collect();
    assert_eq!(fx.mgmt("POST", "/targets", Some(json!(body))).status, 201);
    fx.make_ds("2.0", b"bundle").1
}

fn create(fx: &Fx, body: Value) -> u64 {
    let r = fx.mgmt("POST", "/rollouts", Some(body));
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["status"], "creating");
    r.json()["id"].as_u64().unwrap()
}

fn rollout(fx: &Fx, id: u64) -> Value {
    fx.mgmt("GET", &format!("/rollouts/{id}"), None).json()
}

fn groups(fx: &Fx, id: u64) -> Vec<Value> {
    fx.mgmt(
        "GET",
        &format!("/rollouts/{id}/deploygroups?representation=full"),
        None,
    )
    .json()["content"]
        .as_array()
        .unwrap()
        .clone()
}

fn group_status(fx: &Fx, id: u64) -> Vec<String> {
    groups(fx, id)
        .iter()
        .map(|g| g["status"].as_str().unwrap().to_string())
        .collect()
}

/// `POST /rollouts/{id}/<op>` (start, pause, resume, triggerNextGroup, …): the status code.
fn op(fx: &Fx, id: u64, name: &str) -> u16 {
    fx.mgmt("POST", &format!("/rollouts/{id}/{name}"), None)
        .status
}

fn tick(fx: &Fx) {
    assert_eq!(fx.call("POST", "/sim/tick", &[], None).status, 204);
}

/// Reports closed/<result> for the first `n` members of a group (through DDI, like a device).
fn report(fx: &Fx, rollout: u64, group: usize, n: usize, finished: &str) {
    let g = &groups(fx, rollout)[group];
    let gid = g["id"].as_u64().unwrap();
    let targets = fx
        .mgmt(
            "GET",
            &format!("/rollouts/{rollout}/deploygroups/{gid}/targets?limit=500"),
            None,
        )
        .json();
    let mut done = 0;
    for t in targets["content"].as_array().unwrap() {
        if done == n {
            break;
        }
        let cid = t["controllerId"].as_str().unwrap();
        let tok = t["securityToken"].as_str().unwrap();
        let links = fx.links(cid, tok);
        let Some(href) = links.get("deploymentBase").and_then(|d| d["href"].as_str()) else {
            continue;
        };
        let action: u64 = href
            .rsplit('/')
            .next()
            .unwrap()
            .split('?')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            fx.feedback(cid, tok, action, "closed", finished).status,
            200
        );
        done += 1;
    }
    assert_eq!(done, n, "not enough running targets in group {group}");
}

#[test]
fn creation_rules() {
    let fx = Fx::new();
    let ds = fleet(&fx, "c", 4);
    let base =
        json!({"name": "r", "distributionSetId": ds, "targetFilterQuery": "controllerid==c*"});
    let mut both = base.clone();
    both["amountGroups"] = json!(2);
    both["groups"] = json!([{"name": "g"}]);
    let r = fx.mgmt("POST", "/rollouts", Some(both));
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("mutually exclusive")
    );
    for (k, v) in [
        ("amountGroups", json!(0)),
        ("amountGroups", json!(501)),
        (
            "successCondition",
            json!({"condition": "THRESHOLD", "expression": "150"}),
        ),
        (
            "successCondition",
            json!({"condition": "SOMETHING", "expression": "50"}),
        ),
        ("successAction", json!({"action": "JUMP"})),
        ("errorAction", json!({"action": "NEXTGROUP"})),
        ("type", json!("sometimes")),
        ("targetFilterQuery", json!("nonsense")),
        ("distributionSetId", json!(4242)),
    ] {
        let mut b = base.clone();
        b[k] = v.clone();
        let r = fx.mgmt("POST", "/rollouts", Some(b));
        assert!(r.status == 400 || r.status == 404, "{k}={v}: {}", r.status);
    }
    let mut no_name = base.clone();
    no_name.as_object_mut().unwrap().remove("name");
    assert_eq!(fx.mgmt("POST", "/rollouts", Some(no_name)).status, 400);
    // ignored fields are ignored (as hawkBit does) but flagged with a Warning header
    let mut ignored = base.clone();
    ignored["successThreshold"] = json!("95");
    let r = fx.mgmt("POST", "/rollouts", Some(ignored));
    assert_eq!(r.status, 201);
    let w = r.headers_all("warning").join(" | ");
    assert!(
        w.contains("successThreshold") && w.contains("successCondition.expression"),
        "{w}"
    );
    let id = r.json()["id"].as_u64().unwrap();
    let mut dup = base.clone();
    dup["successThreshold"] = json!("95");
    assert_eq!(
        fx.mgmt("POST", "/rollouts", Some(dup)).status,
        409,
        "rollout names are unique"
    );
    tick(&fx);
    let g = &groups(&fx, id)[0];
    assert_eq!(g["successCondition"]["expression"], "50", "defaults 50/50");
    assert_eq!(g["errorCondition"]["expression"], "50");
    assert_eq!(g["successAction"]["action"], "NEXTGROUP");
    assert_eq!(rollout(&fx, id)["type"], "forced", "default type");
}

#[test]
fn lifecycle_states_and_frozen_targets() {
    let fx = Fx::new();
    let ds = fleet(&fx, "f", 8);
    let id = create(
        &fx,
        json!({"name": "r", "distributionSetId": ds, "targetFilterQuery": "controllerid==f*", "amountGroups": 3}),
    );
    // start only in READY
    let r = fx.mgmt("POST", &format!("/rollouts/{id}/start"), None);
    assert_eq!(r.status, 400);
    assert!(r.json()["message"].as_str().unwrap().contains("creating"));
    // a target created after the rollout is not part of it
    fx.target("f999");
    tick(&fx);
    let r = rollout(&fx, id);
    assert_eq!(r["status"], "ready");
    assert_eq!(r["totalTargets"], 8);
    assert_eq!(r["totalGroups"], 3);
    let sizes: Vec<u64> = groups(&fx, id)
        .iter()
        .map(|g| g["totalTargets"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, vec![3, 3, 2], "round(pct_of_rest × remaining)");
    assert_eq!(r["totalTargetsPerStatus"]["notstarted"], 8);
    assert_eq!(op(&fx, id, "pause"), 400);
    assert_eq!(op(&fx, id, "resume"), 400);
    assert_eq!(op(&fx, id, "start"), 204);
    assert_eq!(rollout(&fx, id)["status"], "running");
    assert_eq!(op(&fx, id, "start"), 400);
    assert_eq!(
        group_status(&fx, id),
        vec!["running", "scheduled", "scheduled"]
    );
    let per = &rollout(&fx, id)["totalTargetsPerStatus"];
    assert_eq!(per["running"], 3);
    assert_eq!(per["scheduled"], 5);
    // scheduled actions are invisible to devices
    let g3 = groups(&fx, id)[2]["id"].as_u64().unwrap();
    let t = fx
        .mgmt(
            "GET",
            &format!("/rollouts/{id}/deploygroups/{g3}/targets"),
            None,
        )
        .json();
    let cid = t["content"][0]["controllerId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        fx.links(&cid, &format!("tok-{cid}"))
            .get("deploymentBase")
            .is_none()
    );
    assert!(fx.links("f999", "tok-f999").get("deploymentBase").is_none());
    // pause / resume / triggerNextGroup
    assert_eq!(op(&fx, id, "pause"), 204);
    assert_eq!(op(&fx, id, "triggerNextGroup"), 400, "only while running");
    assert_eq!(op(&fx, id, "resume"), 204);
    assert_eq!(
        group_status(&fx, id),
        vec!["running", "scheduled", "scheduled"],
        "manual pause: resume just continues"
    );
    assert_eq!(op(&fx, id, "triggerNextGroup"), 204);
    assert_eq!(
        group_status(&fx, id),
        vec!["running", "running", "scheduled"]
    );
    assert_eq!(op(&fx, id, "nonsense"), 404);
    // finish everything → rollout finished
    report(&fx, id, 0, 3, "success");
    report(&fx, id, 1, 3, "success");
    tick(&fx);
    assert_eq!(
        group_status(&fx, id),
        vec!["finished", "finished", "running"]
    );
    report(&fx, id, 2, 2, "success");
    tick(&fx);
    assert_eq!(rollout(&fx, id)["status"], "finished");
    assert_eq!(rollout(&fx, id)["totalTargetsPerStatus"]["finished"], 8);
    assert_eq!(op(&fx, id, "triggerNextGroup"), 400);
}

#[test]
fn thresholds_overlap_error_pause_and_completion() {
    let fx = Fx::new();
    let ds = fleet(&fx, "d", 80);
    let id = create(
        &fx,
        json!({"name": "canary", "distributionSetId": ds, "targetFilterQuery": "controllerid==d*", "amountGroups": 4,
               "successCondition": {"condition": "THRESHOLD", "expression": "95"}, "successAction": {"action": "NEXTGROUP", "expression": ""},
               "errorCondition": {"condition": "THRESHOLD", "expression": "5"}, "errorAction": {"action": "PAUSE", "expression": ""}}),
    );
    tick(&fx);
    assert_eq!(op(&fx, id, "start"), 204);
    // 18/20 = 90 % < 95 %: nothing happens
    report(&fx, id, 0, 18, "success");
    tick(&fx);
    assert_eq!(
        group_status(&fx, id),
        vec!["running", "scheduled", "scheduled", "scheduled"]
    );
    // 19/20 = 95 % ≥ 95 %: group 2 starts while group 1 is still running (groups overlap)
    report(&fx, id, 0, 1, "success");
    tick(&fx);
    assert_eq!(
        group_status(&fx, id),
        vec!["running", "running", "scheduled", "scheduled"]
    );
    let per = &groups(&fx, id)[0]["totalTargetsPerStatus"];
    assert_eq!(per["finished"], 19);
    assert_eq!(per["running"], 1);
    // the last one of group 1 fails: 1/20 = 5 % is not > 5 %, and the group is complete → finished
    report(&fx, id, 0, 1, "failure");
    tick(&fx);
    assert_eq!(group_status(&fx, id)[0], "finished");
    // group 2: 2 errors = 10 % > 5 % → group error, rollout paused
    report(&fx, id, 1, 2, "failure");
    tick(&fx);
    assert_eq!(
        group_status(&fx, id),
        vec!["finished", "error", "scheduled", "scheduled"]
    );
    assert_eq!(rollout(&fx, id)["status"], "paused");
    // paused: devices of running groups continue, but no new group starts
    report(&fx, id, 1, 18, "success");
    tick(&fx);
    assert_eq!(group_status(&fx, id)[2], "scheduled");
    // resume after an error pause starts the next group
    assert_eq!(op(&fx, id, "resume"), 204);
    assert_eq!(
        group_status(&fx, id),
        vec!["finished", "error", "running", "scheduled"]
    );
    // completion starts the next group even below the success threshold (1 error = 5 %, 95 % not reached)
    report(&fx, id, 2, 1, "failure");
    report(&fx, id, 2, 18, "success");
    tick(&fx);
    assert_eq!(
        group_status(&fx, id)[3],
        "scheduled",
        "94.7 % < 95 % and not complete yet"
    );
    let gid = groups(&fx, id)[2]["id"].as_u64().unwrap();
    let member = fx
        .mgmt(
            "GET",
            &format!("/rollouts/{id}/deploygroups/{gid}/targets?limit=500"),
            None,
        )
        .json()["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["controllerId"].as_str().unwrap().to_string())
        .find(|c| {
            fx.links(c, &format!("tok-{c}"))
                .get("deploymentBase")
                .is_some()
        })
        .unwrap();
    let action = fx
        .sim()
        .with_state(|s| s.current_action(&member).unwrap().id);
    fx.mgmt(
        "DELETE",
        &format!("/targets/{member}/actions/{action}"),
        None,
    );
    fx.mgmt(
        "DELETE",
        &format!("/targets/{member}/actions/{action}?force=true"),
        None,
    );
    tick(&fx);
    assert_eq!(
        group_status(&fx, id),
        vec!["finished", "error", "finished", "running"]
    );
    assert_eq!(groups(&fx, id)[2]["totalTargetsPerStatus"]["cancelled"], 1);
    report(&fx, id, 3, 20, "success");
    tick(&fx);
    assert_eq!(rollout(&fx, id)["status"], "finished");
    let per = &rollout(&fx, id)["totalTargetsPerStatus"];
    assert_eq!(per["finished"], 19 + 18 + 18 + 20);
    assert_eq!(per["error"], 1 + 2 + 1);
    assert_eq!(per["cancelled"], 1);
}

#[test]
fn success_action_pause_and_explicit_groups() {
    let fx = Fx::new();
    let ds = fleet(&fx, "e", 10);
    fx.sim().with_state(|s| {
        for i in 0..3 {
            s.targets
                .get_mut(&format!("e{i:03}"))
                .unwrap()
                .attributes
                .insert("ring".into(), "canary".into());
        }
    });
    let id = create(
        &fx,
        json!({"name": "explicit", "distributionSetId": ds, "targetFilterQuery": "controllerid==e*", "type": "soft",
        "successAction": {"action": "PAUSE"},
        "groups": [
            {"name": "canary", "targetFilterQuery": "attribute.ring==canary", "targetPercentage": 100},
            {"name": "rest", "targetPercentage": 100, "successCondition": {"condition": "THRESHOLD", "expression": "100"}}
        ]}),
    );
    tick(&fx);
    let g = groups(&fx, id);
    assert_eq!(g[0]["name"], "canary");
    assert_eq!(g[0]["totalTargets"], 3);
    assert_eq!(g[1]["totalTargets"], 7);
    assert_eq!(g[1]["successCondition"]["expression"], "100");
    op(&fx, id, "start");
    let d = fx.ddi_get("e000", "tok-e000", "").json();
    let href = d["_links"]["deploymentBase"]["href"]
        .as_str()
        .unwrap()
        .to_string();
    let dep = fx
        .call(
            "GET",
            &href,
            &[("Authorization", "TargetToken tok-e000")],
            None,
        )
        .json();
    assert_eq!(
        dep["deployment"]["download"], "attempt",
        "rollout type soft"
    );
    report(&fx, id, 0, 2, "success");
    tick(&fx);
    assert_eq!(rollout(&fx, id)["status"], "paused", "successAction PAUSE");
    assert_eq!(group_status(&fx, id), vec!["running", "scheduled"]);
    op(&fx, id, "resume");
    assert_eq!(group_status(&fx, id), vec!["running", "running"]);
}

#[test]
fn scheduler_runs_by_itself() {
    let fx = Fx::with(SimConfig {
        rollout_interval: Duration::from_millis(50),
        ..SimConfig::default()
    });
    let ds = fleet(&fx, "s", 4);
    let id = create(
        &fx,
        json!({"name": "auto", "distributionSetId": ds, "targetFilterQuery": "controllerid==s*", "amountGroups": 2,
                                "startAt": hil_tests::sim::time::now_ms()}),
    );
    // bounded waits for the scheduler (50 ms period), generous for a loaded machine
    let deadline = Instant::now() + Duration::from_secs(60);
    while rollout(&fx, id)["status"] != "running" {
        assert!(
            Instant::now() < deadline,
            "startAt did not start the rollout"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    report(&fx, id, 0, 2, "success");
    while group_status(&fx, id)[1] != "running" {
        assert!(Instant::now() < deadline, "scheduler did not advance");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn more_groups_than_targets() {
    let fx = Fx::new();
    let ds = fleet(&fx, "x", 3);
    let id = create(
        &fx,
        json!({"name": "tiny", "distributionSetId": ds, "targetFilterQuery": "controllerid==x*", "amountGroups": 4,
                                "errorCondition": {"condition": "THRESHOLD", "expression": "0"}}),
    );
    tick(&fx);
    let sizes: Vec<u64> = groups(&fx, id)
        .iter()
        .map(|g| g["totalTargets"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, vec![1, 1, 1, 0]);
    op(&fx, id, "start");
    for g in 0..3 {
        report(&fx, id, g, 1, "success");
        tick(&fx);
    }
    tick(&fx);
    assert_eq!(
        group_status(&fx, id),
        vec!["finished", "finished", "finished", "finished"]
    );
    assert_eq!(rollout(&fx, id)["status"], "finished");
}

#[test]
fn downloadonly_rollout_counts_downloaded_as_finished() {
    // ddi-api.md §2.6: DOWNLOADED counts as finished (per-status and success threshold) for downloadonly
    // rollouts; a target closing with downloaded completes its group
    let fx = Fx::new();
    let ds = fleet(&fx, "o", 4);
    let id = create(
        &fx,
        json!({"name": "dl", "distributionSetId": ds, "targetFilterQuery": "controllerid==o*", "amountGroups": 2,
               "type": "downloadonly", "successCondition": {"condition": "THRESHOLD", "expression": "100"}}),
    );
    tick(&fx);
    op(&fx, id, "start");
    let members: Vec<String> = {
        let gid = groups(&fx, id)[0]["id"].as_u64().unwrap();
        fx.mgmt(
            "GET",
            &format!("/rollouts/{id}/deploygroups/{gid}/targets"),
            None,
        )
        .json()["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["controllerId"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(members.len(), 2);
    for (i, cid) in members.iter().enumerate() {
        let tok = format!("tok-{cid}");
        let a = fx.sim().with_state(|s| s.current_action(cid).unwrap().id);
        let d = fx
            .ddi_get(cid, &tok, &format!("/deploymentBase/{a}"))
            .json();
        assert_eq!(d["deployment"]["update"], "skip");
        assert_eq!(
            fx.feedback(cid, &tok, a, "downloaded", "success").status,
            200
        );
        tick(&fx);
        let per = &groups(&fx, id)[0]["totalTargetsPerStatus"];
        assert_eq!(per["finished"], i + 1, "{per}");
        assert_eq!(per["running"], 1 - i, "{per}");
    }
    assert_eq!(group_status(&fx, id), vec!["finished", "running"]);
    assert_eq!(rollout(&fx, id)["totalTargetsPerStatus"]["finished"], 2);
    report_downloaded(&fx, id, 1);
    tick(&fx);
    assert_eq!(rollout(&fx, id)["status"], "finished");
    assert_eq!(rollout(&fx, id)["totalTargetsPerStatus"]["finished"], 4);
}

fn report_downloaded(fx: &Fx, rollout: u64, group: usize) {
    let gid = groups(fx, rollout)[group]["id"].as_u64().unwrap();
    let targets = fx
        .mgmt(
            "GET",
            &format!("/rollouts/{rollout}/deploygroups/{gid}/targets"),
            None,
        )
        .json();
    for t in targets["content"].as_array().unwrap() {
        let cid = t["controllerId"].as_str().unwrap();
        let a = fx.sim().with_state(|s| s.current_action(cid).unwrap().id);
        assert_eq!(
            fx.feedback(cid, &format!("tok-{cid}"), a, "downloaded", "none")
                .status,
            200
        );
    }
}

#[test]
fn per_status_maps_every_active_state_to_running() {
    // ddi-api.md §2.6: RETRIEVED, RUNNING, WARNING, DOWNLOAD, WAIT_FOR_CONFIRMATION, CANCELING and
    // DOWNLOADED (not downloadonly) all count as running; none of them completes the group
    let fx = Fx::with(SimConfig {
        rollout_interval: Duration::from_secs(3600),
        confirmation_flow: true,
        ..SimConfig::default()
    });
    let ds = fleet(&fx, "p", 7);
    let id = create(
        &fx,
        json!({"name": "states", "distributionSetId": ds, "targetFilterQuery": "controllerid==p*",
               "confirmationRequired": true}),
    );
    tick(&fx);
    op(&fx, id, "start");
    let action = |cid: &str| fx.sim().with_state(|s| s.current_action(cid).unwrap().id);
    // every device must consent; p006 never does and stays WAIT_FOR_CONFIRMATION
    for i in 0..6 {
        let cid = format!("p{i:03}");
        let a = action(&cid);
        assert_eq!(fx.action_status(&cid, a), "wait_for_confirmation");
        let r = fx.ddi_send(
            "POST",
            &cid,
            &format!("tok-{cid}"),
            &format!("/confirmationBase/{a}/feedback"),
            &json!({"confirmation": "confirmed"}),
        );
        assert_eq!(r.status, 200);
    }
    // p000 stays RUNNING; p001 RETRIEVED; p002 WARNING; p003 DOWNLOAD; p004 DOWNLOADED (forced rollout)
    let a = action("p001");
    assert_eq!(
        fx.ddi_get("p001", "tok-p001", &format!("/deploymentBase/{a}"))
            .status,
        200
    );
    assert_eq!(fx.action_status("p001", a), "retrieved");
    for (cid, exec, want) in [
        ("p002", "rejected", "warning"),
        ("p003", "download", "download"),
        ("p004", "downloaded", "downloaded"),
    ] {
        let a = action(cid);
        assert_eq!(
            fx.feedback(cid, &format!("tok-{cid}"), a, exec, "none")
                .status,
            200
        );
        assert_eq!(fx.action_status(cid, a), want);
    }
    // p005 CANCELING (operator cancel)
    let a = action("p005");
    assert_eq!(
        fx.mgmt("DELETE", &format!("/targets/p005/actions/{a}"), None)
            .status,
        204
    );
    assert_eq!(fx.action_status("p005", a), "canceling");
    assert_eq!(
        fx.action_status("p006", action("p006")),
        "wait_for_confirmation"
    );
    tick(&fx);
    let per = &rollout(&fx, id)["totalTargetsPerStatus"];
    assert_eq!(per["running"], 7, "{per}");
    assert_eq!(per["finished"], 0, "{per}");
    assert_eq!(group_status(&fx, id), vec!["running"]);
    assert_eq!(rollout(&fx, id)["status"], "running");
}
