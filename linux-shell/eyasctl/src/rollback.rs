//! `eyasctl rollback`.

use std::process::ExitCode;

use serde_json::{Value, json};

use crate::api::{Api, encode_query};
use crate::error::Failure;
use crate::lookup::{self, str_of};
use crate::output;

/// `eyasctl rollback` arguments: which devices, and the distribution set to go back to.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["rollout", "filter", "target"])))]
pub struct RollbackArgs {
    /// The devices of this rollout (with --failed: only those whose action ended in error).
    #[arg(long, value_name = "ID", requires = "failed")]
    pub rollout: Option<u64>,
    /// With --rollout: only the devices whose deployment failed.
    #[arg(long, requires = "rollout")]
    pub failed: bool,
    /// The devices matching this FIQL filter.
    #[arg(long, value_name = "FIQL")]
    pub filter: Option<String>,
    /// These devices (controller ids; repeat or separate with commas).
    #[arg(long, value_name = "ID", value_delimiter = ',', num_args = 1..)]
    pub target: Vec<String>,
    /// The distribution set to assign: its id, or NAME:VERSION.
    #[arg(long, value_name = "ID|NAME:VERSION")]
    pub to: String,
    /// Action type of the rollback deployments.
    #[arg(long = "type", value_enum, default_value = "forced")]
    pub action_type: crate::ActionType,
    /// List the devices and what they run; assign nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Devices of a rollout whose action of that rollout ended in error.
fn failed_of_rollout(api: &Api, rollout: u64) -> Result<Vec<String>, Failure> {
    // checks the rollout exists (hawkBit's 404 otherwise)
    api.get(&format!("/rollouts/{rollout}"))?;
    let mut out = Vec::new();
    for g in lookup::all(api, &format!("/rollouts/{rollout}/deploygroups"))? {
        let gid = lookup::id_of(&g, "rollout group")?;
        for t in lookup::all(
            api,
            &format!("/rollouts/{rollout}/deploygroups/{gid}/targets"),
        )? {
            let cid = str_of(&t, "controllerId").to_owned();
            let actions = lookup::all(
                api,
                &format!("/targets/{}/actions?sort=id:DESC", encode_query(&cid)),
            )?;
            let mut failed = false;
            for a in actions
                .iter()
                .filter(|a| a.get("rollout").and_then(Value::as_u64) == Some(rollout))
            {
                failed |= match a.get("detailStatus").and_then(Value::as_str) {
                    Some(detail) => detail == "error",
                    // older hawkBit without detailStatus: the newest status entry of the action
                    None => {
                        let aid = lookup::id_of(a, "action")?;
                        let newest = api.get(&format!(
                            "/targets/{}/actions/{aid}/status?offset=0&limit=1&sort=id:DESC",
                            encode_query(&cid)
                        ))?;
                        newest.pointer("/content/0/type").and_then(Value::as_str) == Some("error")
                    }
                };
            }
            if failed && !out.contains(&cid) {
                out.push(cid);
            }
        }
    }
    Ok(out)
}

/// Runs `eyasctl rollback`.
pub fn run(api: &Api, args: &RollbackArgs, json: bool) -> Result<ExitCode, Failure> {
    let ds = lookup::distribution_set(api, &args.to)?;
    let ds_id = lookup::id_of(&ds, "distribution set")?;
    let ds_label = format!("{} {}", str_of(&ds, "name"), str_of(&ds, "version"));
    let (targets, source) = if let Some(r) = args.rollout {
        (
            failed_of_rollout(api, r)?,
            format!("failed devices of rollout {r}"),
        )
    } else if let Some(f) = &args.filter {
        let ts = lookup::all(api, &format!("/targets?q={}", encode_query(f)))?;
        (
            ts.iter()
                .map(|t| str_of(t, "controllerId").to_owned())
                .collect(),
            format!("devices matching {f}"),
        )
    } else {
        let mut v: Vec<String> = Vec::new();
        for t in &args.target {
            if !v.contains(t) {
                v.push(t.clone());
            }
        }
        (v, "the devices given".to_owned())
    };
    // what each device runs now (also checks every --target exists: hawkBit's 404)
    let mut rows = Vec::new();
    for cid in &targets {
        let t = api.get(&format!("/targets/{}", encode_query(cid)))?;
        let installed = api.get(&format!("/targets/{}/installedDS", encode_query(cid)))?;
        let installed = if installed.is_null() {
            Value::Null
        } else {
            json!({ "id": installed.get("id"), "name": installed.get("name"), "version": installed.get("version") })
        };
        rows.push(json!({
            "controllerId": cid, "updateStatus": str_of(&t, "updateStatus"), "installedDS": installed,
        }));
    }
    output::say(
        json,
        &format!(
            "rollback{}: {} of {source} to distribution set {ds_id} ({ds_label})",
            if args.dry_run { " (dry run)" } else { "" },
            targets.len()
        ),
    );
    for r in &rows {
        let inst = &r["installedDS"];
        output::say(
            json,
            &format!(
                "  {:<24} {:<10} installed: {}",
                str_of(r, "controllerId"),
                str_of(r, "updateStatus"),
                if inst.is_null() {
                    "-".to_owned()
                } else {
                    format!(
                        "{} {} (id {})",
                        str_of(inst, "name"),
                        str_of(inst, "version"),
                        inst["id"]
                    )
                }
            ),
        );
    }
    let mut result = json!({
        "distributionSet": { "id": ds_id, "name": ds.get("name"), "version": ds.get("version") },
        "dryRun": args.dry_run, "targets": rows,
    });
    if !args.dry_run && !targets.is_empty() {
        let mut assigned = 0u64;
        let mut already = 0u64;
        let mut actions = Vec::new();
        for chunk in targets.chunks(100) {
            let body: Vec<Value> = chunk
                .iter()
                .map(|cid| json!({ "id": cid, "type": args.action_type.as_str() }))
                .collect();
            let r = api.post(
                &format!("/distributionsets/{ds_id}/assignedTargets"),
                &Value::Array(body),
            )?;
            assigned += r.get("assigned").and_then(Value::as_u64).unwrap_or(0);
            already += r
                .get("alreadyAssigned")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            if let Some(a) = r.get("assignedActions").and_then(Value::as_array) {
                actions.extend(a.iter().filter_map(|x| x.get("id").cloned()));
            }
        }
        output::say(
            json,
            &format!("rollback: {assigned} assigned, {already} already had it"),
        );
        result["assigned"] = json!(assigned);
        result["alreadyAssigned"] = json!(already);
        result["actions"] = json!(actions);
    }
    if json {
        output::print_json(&result);
    } else if args.dry_run {
        println!("dry run: nothing assigned");
    }
    Ok(ExitCode::SUCCESS)
}
