//! `eyasctl rollout create|watch|start|pause|resume`.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use crate::ActionType;
use crate::api::Api;
use crate::error::{EXIT_ERROR, EXIT_PAUSED, Failure};
use crate::lookup::{self, str_of};
use crate::output;

/// `eyasctl rollout create` arguments.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Distribution set: its id, or NAME:VERSION.
    #[arg(long, value_name = "ID|NAME:VERSION")]
    pub ds: String,
    /// FIQL filter selecting the targets (e.g. `controllerid==dev-*`).
    #[arg(long, value_name = "FIQL")]
    pub filter: String,
    /// Staged groups as cumulative percentages of the matching targets, the first one the canary
    /// (default 1,10,50,100; none when only --group is given).
    #[arg(long, value_name = "P1,P2,…", value_delimiter = ',')]
    pub groups: Option<Vec<f64>>,
    /// A group of all matching targets that also match FIQL, before the percentage groups
    /// (e.g. `--group canary=controllerid==lab-*`); repeatable.
    #[arg(long = "group", value_name = "NAME=FIQL")]
    pub filter_groups: Vec<String>,
    /// Success threshold in percent: the next group starts when this share of a group finished.
    #[arg(long, value_name = "PERCENT", default_value_t = 95.0)]
    pub success: f64,
    /// Error threshold in percent: more errors than this in a group pause the rollout.
    #[arg(long, value_name = "PERCENT", default_value_t = 5.0)]
    pub error: f64,
    /// Action type of the deployments.
    #[arg(long = "type", value_enum, default_value = "forced")]
    pub action_type: ActionType,
    /// Devices must confirm the update before it runs.
    #[arg(long)]
    pub confirmation_required: bool,
    /// Start the rollout once it is ready.
    #[arg(long)]
    pub start: bool,
    /// Rollout name (default: DSNAME-DSVERSION-<unix time>).
    #[arg(long)]
    pub name: Option<String>,
    /// Deadline for `ready`, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub wait: u64,
}

/// `eyasctl rollout watch` arguments.
#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    /// Rollout id.
    pub id: u64,
    /// Give up after this many seconds (exit 1).
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub timeout: u64,
    /// Plain output: one line per change, also on a terminal.
    #[arg(long)]
    pub plain: bool,
}

/// A rollout id.
#[derive(clap::Args, Debug)]
pub struct IdArgs {
    /// Rollout id.
    pub id: u64,
}

/// Poll interval that grows while nothing changes (×1.5 from `min` up to `max`) and drops back
/// to `min` on a change.
pub struct Backoff {
    min: Duration,
    max: Duration,
    cur: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self { min, max, cur: min }
    }

    /// Sleeps the current interval (never past `deadline`) and lengthens it.
    pub fn sleep(&mut self, deadline: Instant) {
        let left = deadline.saturating_duration_since(Instant::now());
        std::thread::sleep(self.cur.min(left));
        self.cur = (self.cur * 3 / 2).min(self.max);
    }

    pub fn reset(&mut self) {
        self.cur = self.min;
    }
}

/// Cumulative percentages → the share of each group (`1,10,50,100` → `1,9,40,50`).
pub fn group_shares(cumulative: &[f64]) -> Result<Vec<f64>, Failure> {
    let mut prev = 0.0;
    let mut out = Vec::with_capacity(cumulative.len());
    for &p in cumulative {
        if !(p > prev && p <= 100.0) {
            return Err(Failure::Usage(format!(
                "--groups {cumulative:?}: cumulative percentages must rise, each in (0, 100]"
            )));
        }
        out.push(p - prev);
        prev = p;
    }
    if !out.is_empty() && (prev - 100.0).abs() > 1e-9 {
        return Err(Failure::Usage(format!(
            "--groups: the last group must reach 100 (got {prev}); hawkBit refuses a rollout that leaves matching targets out"
        )));
    }
    Ok(out)
}

fn fmt_pct(p: f64) -> String {
    let r = (p * 1000.0).round() / 1000.0;
    if r.fract() == 0.0 {
        format!("{}", r as i64)
    } else {
        format!("{r}")
    }
}

fn check_pct(p: f64, what: &str) -> Result<(), Failure> {
    if (0.0..=100.0).contains(&p) {
        Ok(())
    } else {
        Err(Failure::Usage(format!("{what} {p}: must be 0..100")))
    }
}

/// The `groups` array of a rollout body.
pub fn groups_body(args: &CreateArgs) -> Result<Vec<Value>, Failure> {
    let cond = || {
        json!({
            "successCondition": { "condition": "THRESHOLD", "expression": fmt_pct(args.success) },
            "successAction": { "action": "NEXTGROUP", "expression": "" },
            "errorCondition": { "condition": "THRESHOLD", "expression": fmt_pct(args.error) },
            "errorAction": { "action": "PAUSE", "expression": "" },
        })
    };
    let with = |mut g: Value| {
        if let (Some(o), Value::Object(c)) = (g.as_object_mut(), cond()) {
            o.extend(c);
        }
        g
    };
    let mut out = Vec::new();
    for spec in &args.filter_groups {
        let Some((name, fiql)) = spec
            .split_once('=')
            .filter(|(n, f)| !n.is_empty() && !f.is_empty())
        else {
            return Err(Failure::Usage(format!(
                "--group {spec:?}: give NAME=FIQL, e.g. canary=controllerid==lab-*"
            )));
        };
        out.push(with(json!({
            "name": name, "targetPercentage": 100, "targetFilterQuery": fiql,
        })));
    }
    let cumulative = match &args.groups {
        Some(g) => g.clone(),
        None if args.filter_groups.is_empty() => vec![1.0, 10.0, 50.0, 100.0],
        None => Vec::new(),
    };
    let shares = group_shares(&cumulative)?;
    for (i, (share, upto)) in shares.iter().zip(&cumulative).enumerate() {
        let name = if i == 0 && args.filter_groups.is_empty() {
            format!("canary-{}pct", fmt_pct(*upto))
        } else {
            format!("wave-{}pct", fmt_pct(*upto))
        };
        out.push(with(json!({ "name": name, "targetPercentage": share })));
    }
    if out.is_empty() {
        return Err(Failure::Usage("no groups: give --groups or --group".into()));
    }
    Ok(out)
}

fn get_rollout(api: &Api, id: u64) -> Result<Value, Failure> {
    Ok(api.get(&format!("/rollouts/{id}"))?)
}

fn get_groups(api: &Api, id: u64) -> Result<Vec<Value>, Failure> {
    lookup::all(
        api,
        &format!("/rollouts/{id}/deploygroups?representation=full"),
    )
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs `eyasctl rollout create`.
pub fn create(api: &Api, args: &CreateArgs, json: bool) -> Result<ExitCode, Failure> {
    check_pct(args.success, "--success")?;
    check_pct(args.error, "--error")?;
    let groups = groups_body(args)?;
    let ds = lookup::distribution_set(api, &args.ds)?;
    let ds_id = lookup::id_of(&ds, "distribution set")?;
    let name = args.name.clone().unwrap_or_else(|| {
        format!(
            "{}-{}-{}",
            str_of(&ds, "name"),
            str_of(&ds, "version"),
            unix_secs()
        )
    });
    let mut body = json!({
        "name": name,
        "description": "created by eyasctl",
        "distributionSetId": ds_id,
        "targetFilterQuery": args.filter,
        "type": args.action_type.as_str(),
        "groups": groups,
        "successCondition": { "condition": "THRESHOLD", "expression": fmt_pct(args.success) },
        "successAction": { "action": "NEXTGROUP", "expression": "" },
        "errorCondition": { "condition": "THRESHOLD", "expression": fmt_pct(args.error) },
        "errorAction": { "action": "PAUSE", "expression": "" },
    });
    if args.confirmation_required {
        body["confirmationRequired"] = json!(true);
    }
    let created = api.post("/rollouts", &body)?;
    let id = lookup::id_of(&created, "rollout")?;
    output::say(
        json,
        &format!(
            "rollout {id} created ({name}: distribution set {ds_id} {} {}, {} groups, success {} %, error {} %, filter {})",
            str_of(&ds, "name"),
            str_of(&ds, "version"),
            groups.len(),
            fmt_pct(args.success),
            fmt_pct(args.error),
            args.filter
        ),
    );

    // group assignment is asynchronous: wait for `ready`
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(2));
    let rollout = loop {
        let r = get_rollout(api, id)?;
        match str_of(&r, "status") {
            "ready" => break r,
            "creating" => {}
            "waiting_for_approval" if !args.start => break r,
            other => {
                return Err(Failure::Other(format!(
                    "rollout {id} is '{other}', not 'ready'{}",
                    if other == "waiting_for_approval" {
                        ": approve it first (POST /rest/v1/rollouts/{id}/approve), then `eyasctl rollout start`"
                    } else {
                        ""
                    }
                )));
            }
        }
        if Instant::now() >= deadline {
            return Err(Failure::Other(format!(
                "rollout {id} did not become ready within {} s (still '{}'); check it with `eyasctl rollout watch {id}`",
                args.wait,
                str_of(&r, "status")
            )));
        }
        backoff.sleep(deadline);
    };
    let total = rollout
        .get("totalTargets")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    output::say(
        json,
        &format!(
            "rollout {id} {} with {total} targets",
            str_of(&rollout, "status")
        ),
    );
    let groups = get_groups(api, id)?;
    for g in &groups {
        output::say(
            json,
            &format!(
                "  group {:<14} {:>6} targets  ({})",
                str_of(g, "name"),
                g.get("totalTargets").and_then(Value::as_u64).unwrap_or(0),
                match g.get("targetFilterQuery").and_then(Value::as_str) {
                    Some(f) if !f.is_empty() => format!("matching {f}"),
                    _ => format!(
                        "{} % of all",
                        g.get("targetPercentage")
                            .and_then(Value::as_f64)
                            .map_or_else(|| "?".into(), fmt_pct)
                    ),
                }
            ),
        );
    }
    let empty: Vec<&str> = groups
        .iter()
        .filter(|g| g.get("totalTargets").and_then(Value::as_u64) == Some(0))
        .map(|g| str_of(g, "name"))
        .collect();
    if !empty.is_empty() {
        eprintln!(
            "eyasctl: warning: rollout {id}: group(s) {} hold no device (too few matching devices for the percentage, or a filter that matches none)",
            empty.join(", ")
        );
    }
    let mut status = str_of(&rollout, "status").to_owned();
    if args.start {
        api.post_empty(&format!("/rollouts/{id}/start"))?;
        status = str_of(&get_rollout(api, id)?, "status").to_owned();
        output::say(json, &format!("rollout {id} started ({status})"));
    }
    if json {
        output::print_json(&json!({
            "id": id, "name": name, "status": status, "distributionSetId": ds_id,
            "totalTargets": total, "started": args.start,
            "groups": groups.iter().map(|g| json!({
                "id": g.get("id"), "name": g.get("name"), "totalTargets": g.get("totalTargets"),
                "targetPercentage": g.get("targetPercentage"),
            })).collect::<Vec<_>>(),
        }));
    } else {
        println!("rollout={id}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `eyasctl rollout start|pause|resume`.
pub fn lifecycle(api: &Api, args: &IdArgs, op: &str, json: bool) -> Result<ExitCode, Failure> {
    let id = args.id;
    api.post_empty(&format!("/rollouts/{id}/{op}"))?;
    let r = get_rollout(api, id)?;
    let status = str_of(&r, "status");
    if json {
        output::print_json(&json!({ "id": id, "operation": op, "status": status }));
    } else {
        println!("rollout {id}: {op} accepted; status {status}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Counts of one group or rollout (`totalTargetsPerStatus`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    total: u64,
    scheduled: u64,
    running: u64,
    finished: u64,
    error: u64,
    other: u64,
}

impl Counts {
    fn of(v: &Value) -> Self {
        let n = |k: &str| {
            v.pointer(&format!("/totalTargetsPerStatus/{k}"))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        Self {
            total: v.get("totalTargets").and_then(Value::as_u64).unwrap_or(0),
            scheduled: n("scheduled") + n("notstarted"),
            running: n("running"),
            finished: n("finished"),
            error: n("error"),
            other: n("cancelled"),
        }
    }

    fn text(&self) -> String {
        format!(
            "{} scheduled · {} running · {} finished · {} error{}",
            self.scheduled,
            self.running,
            self.finished,
            self.error,
            if self.other > 0 {
                format!(" · {} cancelled", self.other)
            } else {
                String::new()
            }
        )
    }
}

/// What a watched rollout's status means for the exit code (None: keep watching).
fn outcome(status: &str) -> Option<u8> {
    match status {
        "finished" => Some(0),
        "paused" => Some(EXIT_PAUSED),
        "stopped" | "deleted" | "deleting" | "approval_denied" => Some(EXIT_ERROR),
        _ => None,
    }
}

struct View {
    bars: Option<(MultiProgress, ProgressBar, Vec<ProgressBar>)>,
    last_line: String,
}

impl View {
    fn new(tty: bool, groups: &[Value]) -> Self {
        if !tty {
            return Self {
                bars: None,
                last_line: String::new(),
            };
        }
        let mp = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let head = mp.add(ProgressBar::new_spinner());
        // the elapsed time keeps moving between polls
        head.enable_steady_tick(Duration::from_millis(250));
        head.set_style(
            ProgressStyle::with_template("{spinner} rollout {prefix} [{elapsed_precise}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let style = ProgressStyle::with_template(
            "  {prefix:<16} [{bar:30.green/red}] {pos:>6}/{len:<6} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bars = groups
            .iter()
            .map(|g| {
                let b = mp.add(ProgressBar::new(Counts::of(g).total));
                b.set_style(style.clone());
                b.set_prefix(str_of(g, "name").to_owned());
                b
            })
            .collect();
        Self {
            bars: Some((mp, head, bars)),
            last_line: String::new(),
        }
    }

    /// Shows the state; true if something changed since the last call.
    fn update(&mut self, id: u64, rollout: &Value, groups: &[Value], json: bool) -> bool {
        let status = str_of(rollout, "status");
        let line = format!(
            "[{status}] {}",
            groups
                .iter()
                .map(|g| {
                    let c = Counts::of(g);
                    format!(
                        "{}:{}({}/{} ok, {} err)",
                        str_of(g, "name"),
                        str_of(g, "status"),
                        c.finished,
                        c.total,
                        c.error
                    )
                })
                .collect::<Vec<_>>()
                .join("  ")
        );
        let changed = line != self.last_line;
        if let Some((_, head, bars)) = &self.bars {
            head.set_prefix(id.to_string());
            head.set_message(format!("{status} · {}", Counts::of(rollout).text()));
            head.tick();
            for (b, g) in bars.iter().zip(groups) {
                let c = Counts::of(g);
                b.set_length(c.total);
                b.set_position(c.finished + c.error);
                b.set_message(format!("{:<9} {}", str_of(g, "status"), c.text()));
            }
        } else if changed {
            output::say(json, &format!("rollout {id} {line}"));
        }
        self.last_line = line;
        changed
    }

    fn finish(&self) {
        if let Some((_, head, bars)) = &self.bars {
            for b in bars {
                b.abandon();
            }
            head.abandon();
        }
    }
}

/// Runs `eyasctl rollout watch`.
pub fn watch(api: &Api, args: &WatchArgs, json: bool) -> Result<ExitCode, Failure> {
    let id = args.id;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout);
    let tty = !json && !args.plain && std::io::stderr().is_terminal();
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(5));
    let mut failures = 0u32;
    let mut view: Option<View> = None;
    loop {
        let polled = get_rollout(api, id).and_then(|r| Ok((r, get_groups(api, id)?)));
        let (rollout, groups) = match polled {
            Ok(x) => {
                failures = 0;
                x
            }
            // a rollout that does not exist, or refused credentials, will not get better
            Err(Failure::Api(e)) if e.status().is_some_and(|s| (400..500).contains(&s)) => {
                return Err(Failure::Api(e));
            }
            Err(e) => {
                failures += 1;
                if failures >= 5 || Instant::now() >= deadline {
                    return Err(e);
                }
                output::say(json, &format!("rollout {id}: {e}; retrying"));
                backoff.sleep(deadline);
                continue;
            }
        };
        let v = view.get_or_insert_with(|| View::new(tty, &groups));
        if v.update(id, &rollout, &groups, json) {
            backoff.reset();
        }
        let status = str_of(&rollout, "status").to_owned();
        if let Some(code) = outcome(&status) {
            v.finish();
            let c = Counts::of(&rollout);
            let summary = match code {
                0 => format!("rollout {id} finished: {}", c.text()),
                EXIT_PAUSED => format!(
                    "rollout {id} paused (error threshold reached, or paused by an operator): {}; \
                     after a look at the failed devices: `eyasctl rollout resume {id}` or `eyasctl rollback --rollout {id} --failed --to …`",
                    c.text()
                ),
                _ => format!("rollout {id} ended '{status}': {}", c.text()),
            };
            output::say(json, &summary);
            if json {
                output::print_json(&json!({
                    "id": id, "status": status, "exitCode": code,
                    "elapsedSecs": started.elapsed().as_secs_f64(),
                    "totalTargets": c.total, "totalTargetsPerStatus": rollout.get("totalTargetsPerStatus"),
                    "groups": groups.iter().map(|g| json!({
                        "id": g.get("id"), "name": g.get("name"), "status": g.get("status"),
                        "totalTargets": g.get("totalTargets"),
                        "totalTargetsPerStatus": g.get("totalTargetsPerStatus"),
                    })).collect::<Vec<_>>(),
                }));
            }
            return Ok(ExitCode::from(code));
        }
        if Instant::now() >= deadline {
            v.finish();
            return Err(Failure::Other(format!(
                "rollout {id} still '{status}' after {} s (--timeout)",
                args.timeout
            )));
        }
        backoff.sleep(deadline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_percentages_become_shares() {
        let s = group_shares(&[1.0, 10.0, 50.0, 100.0]).expect("valid");
        assert_eq!(s, vec![1.0, 9.0, 40.0, 50.0]);
        assert!(group_shares(&[10.0, 5.0, 100.0]).is_err());
        assert!(group_shares(&[10.0, 50.0]).is_err());
        assert!(group_shares(&[0.0, 100.0]).is_err());
        assert!(group_shares(&[]).expect("empty").is_empty());
    }

    #[test]
    fn outcomes() {
        assert_eq!(outcome("finished"), Some(0));
        assert_eq!(outcome("paused"), Some(3));
        assert_eq!(outcome("stopped"), Some(1));
        assert_eq!(outcome("running"), None);
    }
}
