//! A rollout's history from hawkBit's Management API: the rollout, its deployment groups, each
//! group's targets, each target's action of this rollout and that action's status history.
//!
//! * outcome: an action whose `detailStatus` (or `status`) is `finished` succeeded, `error` failed;
//!   its time is when the closing status entry was reported (`reportedAt`, else `timestamp`, else
//!   the action's `lastModifiedAt`);
//! * error code: the closing entry's `code` (hawkBit 0.4+ keeps the device's status code), else an
//!   `error_code=N` detail, else hawkBit's `Device reported status code: N` message;
//! * download duration: a `download_duration_ms=N` detail in any status entry of the action (eyas
//!   sends one with its final feedback);
//! * bytes over the air: an `update_bytes=N` detail (N a decimal u64; eyas sends one with its
//!   final feedback: the downloaded artifact plus the casync chunks RAUC fetched), the last one
//!   in the history; an action without one (an older agent) has no figure.

use serde_json::Value;

use super::stats::{Bytes, Download, Facts, Outcome};
use crate::api::{Api, ApiError, encode_query};
use crate::lookup::pages;

/// At most this many actions of a target are looked through for the rollout's action.
const MAX_ACTIONS_PER_TARGET: usize = 1000;

/// One deployment group's counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub targets: u64,
    pub success: u64,
    pub error: u64,
    /// Actions that exist and are open (running, downloading, waiting for confirmation, …).
    pub running: u64,
    /// Targets without an action of this rollout yet, with a scheduled one (their group has not
    /// started) or a canceled one.
    pub other: u64,
    /// Bytes over the air of the group's devices that reported them.
    pub update_bytes: Vec<Bytes>,
}

/// The rollout as the report shows it.
#[derive(Debug, Clone, Default)]
pub struct Rollout {
    pub id: u64,
    pub name: String,
    pub status: String,
    pub total_targets: u64,
    pub groups: Vec<Group>,
    pub facts: Facts,
}

fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn i(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

/// The number after `prefix` in `text` (digits, optionally with a decimal part).
fn number_after(text: &str, prefix: &str) -> Option<String> {
    let at = text.find(prefix)? + prefix.len();
    let rest = text.get(at..)?.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(rest.len());
    let n = rest.get(..end)?;
    (!n.is_empty() && n.parse::<f64>().is_ok()).then(|| n.to_owned())
}

fn messages(entry: &Value) -> impl Iterator<Item = &str> {
    entry
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// The error code of a closing status entry (see the module docs).
pub fn error_code(entry: &Value) -> Option<String> {
    if let Some(c) = entry.get("code").and_then(Value::as_i64) {
        return Some(c.to_string());
    }
    messages(entry)
        .find_map(|m| number_after(m, "error_code="))
        .or_else(|| messages(entry).find_map(|m| number_after(m, "status code:")))
}

/// A `download_duration_ms=N` detail in any of the entries.
pub fn download_ms(entries: &[Value]) -> Option<f64> {
    entries
        .iter()
        .flat_map(messages)
        .find_map(|m| number_after(m, "download_duration_ms="))
        .and_then(|n| n.parse().ok())
}

/// The bytes of an `update_bytes=N` detail: the whole message (surrounding blanks aside) is
/// `update_bytes=` and a decimal u64; anything else (a sign, a fraction, an overflow) is no
/// figure.
fn update_bytes_of(message: &str) -> Option<u64> {
    let n = message.trim().strip_prefix("update_bytes=")?.trim();
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// The last `update_bytes=N` detail in the entries.
pub fn update_bytes(entries: &[Value]) -> Option<u64> {
    entries
        .iter()
        .rev()
        .find_map(|e| messages(e).filter_map(update_bytes_of).last())
}

fn entry_time(e: &Value) -> Option<i64> {
    i(e, "reportedAt").or_else(|| i(e, "timestamp"))
}

/// Concurrent requests while reading the targets' actions (each target costs two or more calls).
const WORKERS: usize = 8;

/// Where a target stands in the rollout.
enum State {
    Success,
    Error,
    Running,
    Other,
}

/// What one target's action of the rollout says.
struct TargetFacts {
    state: State,
    download: Option<Download>,
    outcome: Option<Outcome>,
    update_bytes: Option<u64>,
}

/// Reads `cid`'s action of rollout `id` and its status history.
fn target_facts(api: &Api, id: u64, cid: &str) -> Result<TargetFacts, ApiError> {
    let enc = encode_query(cid);
    let actions = pages(
        api,
        &format!("/targets/{enc}/actions?sort=id%3ADESC"),
        MAX_ACTIONS_PER_TARGET,
    )?;
    let Some(action) = actions
        .iter()
        .find(|a| a.get("rollout").and_then(Value::as_u64) == Some(id))
    else {
        return Ok(TargetFacts {
            state: State::Other,
            download: None,
            outcome: None,
            update_bytes: None,
        });
    };
    let aid = i(action, "id").unwrap_or_default();
    let state = action
        .get("detailStatus")
        .and_then(Value::as_str)
        .or_else(|| action.get("status").and_then(Value::as_str))
        .unwrap_or("");
    let history = pages(
        api,
        &format!("/targets/{enc}/actions/{aid}/status?sort=id%3AASC"),
        usize::MAX,
    )?;
    let download = download_ms(&history).map(|ms| Download {
        device: cid.to_owned(),
        time_ms: history
            .iter()
            .filter(|e| messages(e).any(|m| m.contains("download_duration_ms=")))
            .find_map(entry_time)
            .or_else(|| i(action, "lastModifiedAt"))
            .unwrap_or_default(),
        duration_ms: ms,
    });
    let bytes = update_bytes(&history);
    let (state, success) = match state {
        "finished" => (State::Success, true),
        "error" => (State::Error, false),
        "canceled" | "cancelled" | "scheduled" => (State::Other, false),
        _ => (State::Running, false),
    };
    if !matches!(state, State::Success | State::Error) {
        return Ok(TargetFacts {
            state,
            download,
            outcome: None,
            update_bytes: bytes,
        });
    }
    let wanted = if success { "finished" } else { "error" };
    let closing = history
        .iter()
        .rev()
        .find(|e| e.get("type").and_then(Value::as_str) == Some(wanted));
    let outcome = Outcome {
        device: cid.to_owned(),
        time_ms: closing
            .and_then(entry_time)
            .or_else(|| i(action, "lastModifiedAt"))
            .unwrap_or_default(),
        success,
        error_code: if success {
            None
        } else {
            closing.and_then(error_code)
        },
    };
    Ok(TargetFacts {
        state,
        download,
        outcome: Some(outcome),
        update_bytes: bytes,
    })
}

/// `f` over `items` on up to `workers` threads; results in the items' order. A worker stops
/// taking items once any result is an error.
fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> Result<R, ApiError> + Sync,
) -> Result<Vec<R>, ApiError> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let mut slots: Vec<Option<Result<R, ApiError>>> = (0..items.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.clamp(1, items.len().max(1)))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    while !failed.load(Ordering::Relaxed) {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(k) else { break };
                        let r = f(item);
                        if r.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        mine.push((k, r));
                    }
                    mine
                })
            })
            .collect();
        for h in handles {
            for (k, r) in h.join().unwrap_or_default() {
                if let Some(slot) = slots.get_mut(k) {
                    *slot = Some(r);
                }
            }
        }
    });
    let mut out = Vec::with_capacity(items.len());
    for slot in slots {
        match slot {
            Some(r) => out.push(r?),
            None => {
                return Err(ApiError::Setup(
                    "reading the targets' actions stopped early".into(),
                ));
            }
        }
    }
    Ok(out)
}

/// Reads the rollout `id` and the history of every action it made.
pub fn fetch(api: &Api, id: u64) -> Result<Rollout, ApiError> {
    let ro = api.get(&format!("/rollouts/{id}"))?;
    let mut rollout = Rollout {
        id,
        name: s(&ro, "name"),
        status: s(&ro, "status"),
        total_targets: ro.get("totalTargets").and_then(Value::as_u64).unwrap_or(0),
        ..Rollout::default()
    };
    let mut targets: Vec<(usize, String)> = Vec::new();
    for (n, g) in pages(api, &format!("/rollouts/{id}/deploygroups"), usize::MAX)?
        .iter()
        .enumerate()
    {
        let gid = i(g, "id").unwrap_or_default();
        rollout.groups.push(Group {
            id: gid,
            name: s(g, "name"),
            status: s(g, "status"),
            ..Group::default()
        });
        for t in pages(
            api,
            &format!("/rollouts/{id}/deploygroups/{gid}/targets"),
            usize::MAX,
        )? {
            let cid = s(&t, "controllerId");
            if !cid.is_empty() {
                targets.push((n, cid));
            }
        }
    }
    let facts = parallel_map(&targets, WORKERS, |(_, cid)| target_facts(api, id, cid))?;
    for ((n, cid), f) in targets.iter().zip(facts) {
        let Some(group) = rollout.groups.get_mut(*n) else {
            continue;
        };
        group.targets += 1;
        match f.state {
            State::Success => group.success += 1,
            State::Error => group.error += 1,
            State::Running => group.running += 1,
            State::Other => group.other += 1,
        }
        if let Some(bytes) = f.update_bytes {
            let b = Bytes {
                device: cid.clone(),
                bytes,
            };
            group.update_bytes.push(b.clone());
            rollout.facts.update_bytes.push(b);
        }
        rollout.facts.downloads.extend(f.download);
        rollout.facts.outcomes.extend(f.outcome);
    }
    Ok(rollout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_code_from_code_then_details() {
        assert_eq!(
            error_code(&json!({"code": 400, "messages": []})),
            Some("400".into())
        );
        assert_eq!(
            error_code(&json!({"messages": ["fell back", "error_code=300"]})),
            Some("300".into())
        );
        assert_eq!(
            error_code(&json!({"messages": ["Device reported status code: 110"]})),
            Some("110".into())
        );
        assert_eq!(error_code(&json!({"messages": ["no code here"]})), None);
    }

    #[test]
    fn download_duration_from_details() {
        let h = [
            json!({"messages": ["Downloading: 50%"]}),
            json!({"messages": ["Update installed", "download_duration_ms=1234"]}),
        ];
        assert_eq!(download_ms(&h), Some(1234.0));
        assert_eq!(download_ms(&h[..1]), None);
    }

    #[test]
    fn update_bytes_from_details() {
        let h = [
            json!({"messages": ["Downloading: 50%"]}),
            json!({"messages": ["Update installed", "download_duration_ms=1234", "update_bytes=4096"]}),
        ];
        assert_eq!(update_bytes(&h), Some(4096));
        assert_eq!(update_bytes(&h[..1]), None, "an older agent: no figure");
        // the largest u64; the last detail of the history wins
        let h = [
            json!({"messages": ["update_bytes=1"]}),
            json!({"messages": [" update_bytes=18446744073709551615 "]}),
        ];
        assert_eq!(update_bytes(&h), Some(u64::MAX));
        // not a decimal u64: no figure (and never download_bytes or another key)
        for bad in [
            "update_bytes=",
            "update_bytes=-5",
            "update_bytes=+5",
            "update_bytes=1.5",
            "update_bytes=12 bytes",
            "update_bytes=18446744073709551616",
            "chunk_update_bytes=7",
            "download_bytes=7",
            "update_bytes = 7",
        ] {
            assert_eq!(update_bytes(&[json!({"messages": [bad]})]), None, "{bad}");
        }
    }
}
