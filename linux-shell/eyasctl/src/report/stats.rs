//! The report's figures, computed the way the Grafana panels compute them in SQL
//! (`hil-tests/grafana/dashboards/ota-rollout.json`), so both give the same numbers:
//!
//! * time buckets are `floor((ts_ms / 1000) / interval) * interval` in integer seconds, as
//!   `$__unixEpochGroupAlias(t.ts/1000, $__interval)` expands;
//! * the success rate of a bucket is `100 × success / (success + failure)` over the outcomes in it;
//! * P50/P95 are PostgreSQL's `percentile_cont` (linear interpolation between the two nearest
//!   ranks);
//! * errors are counted per failure and per distinct device, ordered by failures (descending),
//!   then by code;
//! * the bytes an update fetched over the air (`update_bytes`: the downloaded artifact plus the
//!   casync chunks RAUC fetched) are summed and their P50/P95 taken with the same
//!   `percentile_cont`, over the samples the devices reported; a device that reported none is
//!   left out (nothing is guessed from `download_bytes`), and the count says how many reported.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

/// A terminal outcome of one device's update.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub device: String,
    /// Unix time in milliseconds.
    pub time_ms: i64,
    pub success: bool,
    /// The error code as text (`unknown` is applied when the report is made).
    pub error_code: Option<String>,
}

/// One finished download.
#[derive(Debug, Clone, PartialEq)]
pub struct Download {
    pub device: String,
    pub time_ms: i64,
    pub duration_ms: f64,
}

/// A byte count one device reported for one update (`update_bytes`, `chunk_bytes`).
#[derive(Debug, Clone, PartialEq)]
pub struct Bytes {
    pub device: String,
    pub bytes: u64,
}

/// The outcomes and downloads of one source (hawkBit or the telemetry).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub outcomes: Vec<Outcome>,
    pub downloads: Vec<Download>,
    /// Bytes over the air per update (`update_bytes`), where the device reported them.
    pub update_bytes: Vec<Bytes>,
    /// casync chunk bytes per update (`chunk_bytes`; only the telemetry carries them).
    pub chunk_bytes: Vec<Bytes>,
}

/// The label of a failure that carried no error code (as the SQL's `COALESCE(…, 'unknown')`).
pub const UNKNOWN: &str = "unknown";

/// The bucket (Unix seconds) of a time in milliseconds for an interval in seconds; integer
/// division truncating toward zero, as PostgreSQL's bigint division does.
pub fn bucket(time_ms: i64, interval_secs: i64) -> i64 {
    let interval = interval_secs.max(1);
    (time_ms / 1000) / interval * interval
}

/// PostgreSQL's `percentile_cont(p) WITHIN GROUP (ORDER BY v)`; `None` for no values.
pub fn percentile_cont(sorted: &[f64], p: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let pos = p.clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = pos.floor();
    let first = *sorted.get(lo as usize)?;
    let second = *sorted.get(pos.ceil() as usize)?;
    Some(first + (pos - lo) * (second - first))
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// A success rate in percent, `None` when nothing ended.
pub fn rate(success: u64, failure: u64) -> Option<f64> {
    let total = success + failure;
    (total > 0).then(|| 100.0 * success as f64 / total as f64)
}

/// Success rate per bucket: (bucket, success, failure).
pub fn success_by_bucket(outcomes: &[Outcome], interval: i64) -> Vec<(i64, u64, u64)> {
    let mut m: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    for o in outcomes {
        let e = m.entry(bucket(o.time_ms, interval)).or_default();
        if o.success {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    m.into_iter().map(|(t, (s, f))| (t, s, f)).collect()
}

/// Each device's last outcome: (success, failure) counts.
pub fn last_outcomes(outcomes: &[Outcome]) -> (u64, u64) {
    let mut last: BTreeMap<&str, &Outcome> = BTreeMap::new();
    for o in outcomes {
        match last.get(o.device.as_str()) {
            Some(prev) if prev.time_ms > o.time_ms => {}
            _ => {
                last.insert(&o.device, o);
            }
        }
    }
    let success = last.values().filter(|o| o.success).count() as u64;
    (success, last.len() as u64 - success)
}

/// Failures by error code: (code, failures, devices), most failures first, then by code.
pub fn errors_by_code(outcomes: &[Outcome]) -> Vec<(String, u64, u64)> {
    let mut m: BTreeMap<&str, (u64, BTreeSet<&str>)> = BTreeMap::new();
    for o in outcomes.iter().filter(|o| !o.success) {
        let e = m
            .entry(o.error_code.as_deref().unwrap_or(UNKNOWN))
            .or_default();
        e.0 += 1;
        e.1.insert(&o.device);
    }
    let mut v: Vec<(String, u64, u64)> = m
        .into_iter()
        .map(|(code, (n, devs))| (code.to_owned(), n, devs.len() as u64))
        .collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// Download percentiles per bucket: (bucket, count, p50, p95).
pub fn downloads_by_bucket(downloads: &[Download], interval: i64) -> Vec<(i64, u64, f64, f64)> {
    let mut m: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for d in downloads {
        m.entry(bucket(d.time_ms, interval))
            .or_default()
            .push(d.duration_ms);
    }
    m.into_iter()
        .filter_map(|(t, v)| {
            let v = sorted(v);
            Some((
                t,
                v.len() as u64,
                percentile_cont(&v, 0.50)?,
                percentile_cont(&v, 0.95)?,
            ))
        })
        .collect()
}

/// The figures of byte counts: samples, distinct devices, P50/P95 (`percentile_cont`) and
/// total; with `full_bytes` (the size of the full bundle) also P50 as a percentage of it.
pub fn bytes_summary(samples: &[Bytes], full_bytes: Option<u64>) -> Value {
    let devices: BTreeSet<&str> = samples.iter().map(|b| b.device.as_str()).collect();
    let all = sorted(samples.iter().map(|b| b.bytes as f64).collect());
    let total = samples
        .iter()
        .fold(0u64, |sum, b| sum.saturating_add(b.bytes));
    let p50 = percentile_cont(&all, 0.50);
    json!({
        "count": samples.len(),
        "devices": devices.len(),
        "p50": p50,
        "p95": percentile_cont(&all, 0.95),
        "total": total,
        "p50_of_full_percent": p50_of_full(p50, full_bytes),
    })
}

/// `100 × p50 / full_bytes`; `None` without either (or for a full size of 0).
pub fn p50_of_full(p50: Option<f64>, full_bytes: Option<u64>) -> Option<f64> {
    let full = full_bytes.filter(|&f| f > 0)? as f64;
    Some(100.0 * p50? / full)
}

impl Facts {
    /// Time span (first, last) in milliseconds of everything in these facts.
    pub fn span_ms(&self) -> Option<(i64, i64)> {
        let times = self
            .outcomes
            .iter()
            .map(|o| o.time_ms)
            .chain(self.downloads.iter().map(|d| d.time_ms));
        times.fold(None, |acc, t| match acc {
            None => Some((t, t)),
            Some((lo, hi)) => Some((lo.min(t), hi.max(t))),
        })
    }

    /// Every figure of the report, as JSON (numbers; `null` where there is nothing to compute).
    /// `full_bytes` is the size of the full bundle the bytes over the air are compared with.
    pub fn summary(&self, interval: i64, full_bytes: Option<u64>) -> Value {
        let success = self.outcomes.iter().filter(|o| o.success).count() as u64;
        let failure = self.outcomes.len() as u64 - success;
        let devices: BTreeSet<&str> = self.outcomes.iter().map(|o| o.device.as_str()).collect();
        let (last_s, last_f) = last_outcomes(&self.outcomes);
        let all = sorted(self.downloads.iter().map(|d| d.duration_ms).collect());
        json!({
            "outcomes": self.outcomes.len(),
            "success": success,
            "failure": failure,
            "devices": devices.len(),
            "rate": rate(success, failure),
            "success_rate": success_by_bucket(&self.outcomes, interval).into_iter().map(|(t, s, f)| json!({
                "time": t, "success": s, "failure": f, "rate": rate(s, f),
            })).collect::<Vec<_>>(),
            "success_rate_last": {
                "rate": rate(last_s, last_f), "devices": last_s + last_f,
                "success": last_s, "failure": last_f,
            },
            "download_ms": {
                "count": all.len(),
                "p50": percentile_cont(&all, 0.50),
                "p95": percentile_cont(&all, 0.95),
                "buckets": downloads_by_bucket(&self.downloads, interval).into_iter().map(|(t, n, p50, p95)| json!({
                    "time": t, "count": n, "p50": p50, "p95": p95,
                })).collect::<Vec<_>>(),
            },
            "errors": errors_by_code(&self.outcomes).into_iter().map(|(code, n, d)| json!({
                "error_code": code, "failures": n, "devices": d,
            })).collect::<Vec<_>>(),
            "update_bytes": bytes_summary(&self.update_bytes, full_bytes),
        })
    }
}

/// An interval (seconds) that splits `span_ms` into at most about 24 buckets, from a list of
/// round values (as Grafana picks `$__interval` from the range and the panel width).
pub fn auto_interval(span_ms: i64) -> i64 {
    const NICE: [i64; 19] = [
        1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
        604_800,
    ];
    let span = (span_ms / 1000).max(1);
    NICE.iter()
        .copied()
        .find(|i| span / i < 24)
        .unwrap_or(604_800)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(device: &str, t: i64, success: bool, code: Option<&str>) -> Outcome {
        Outcome {
            device: device.into(),
            time_ms: t,
            success,
            error_code: code.map(str::to_owned),
        }
    }

    #[test]
    fn percentile_cont_interpolates_like_postgresql() {
        // SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY v) FROM (VALUES (1),(2),(3),(4),(10)) t(v) = 8.8
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(percentile_cont(&v, 0.5), Some(3.0));
        assert!((percentile_cont(&v, 0.95).unwrap_or(0.0) - 8.8).abs() < 1e-9);
        assert_eq!(percentile_cont(&[7.0], 0.95), Some(7.0));
        assert_eq!(percentile_cont(&[], 0.5), None);
        assert_eq!(percentile_cont(&[1.0, 2.0], 0.5), Some(1.5));
    }

    #[test]
    fn buckets_are_epoch_aligned_seconds() {
        assert_eq!(bucket(1_785_531_600_999, 3600), 1_785_531_600);
        assert_eq!(bucket(1_785_535_199_999, 3600), 1_785_531_600);
        assert_eq!(bucket(1_785_535_200_000, 3600), 1_785_535_200);
    }

    #[test]
    fn errors_sort_by_failures_then_code_and_count_devices() {
        let o = [
            out("a", 1, false, Some("400")),
            out("a", 2, false, Some("400")),
            out("b", 3, false, Some("110")),
            out("c", 4, false, None),
            out("d", 5, true, None),
        ];
        assert_eq!(
            errors_by_code(&o),
            vec![
                ("400".into(), 2, 1),
                ("110".into(), 1, 1),
                ("unknown".into(), 1, 1)
            ]
        );
    }

    #[test]
    fn last_outcome_per_device_wins() {
        let o = [
            out("a", 1, false, None),
            out("a", 9, true, None),
            out("b", 5, false, None),
        ];
        assert_eq!(last_outcomes(&o), (1, 1));
    }

    fn bytes(device: &str, bytes: u64) -> Bytes {
        Bytes {
            device: device.into(),
            bytes,
        }
    }

    #[test]
    fn update_bytes_percentiles_total_and_share_of_the_full_bundle() {
        let b = [bytes("a", 1000), bytes("b", 100), bytes("c", 200)];
        let s = bytes_summary(&b, Some(2000));
        assert_eq!(s["count"], 3);
        assert_eq!(s["devices"], 3);
        assert_eq!(s["p50"].as_f64(), Some(200.0));
        // percentile_cont(0.95) of 100, 200, 1000: 200 + 0.9 × 800
        assert!(
            (s["p95"].as_f64().unwrap_or(0.0) - 920.0).abs() < 1e-9,
            "{s}"
        );
        assert_eq!(s["total"].as_u64(), Some(1300));
        assert_eq!(s["p50_of_full_percent"].as_f64(), Some(10.0));
        // without the full size: the absolute numbers only
        let s = bytes_summary(&b, None);
        assert!(s["p50_of_full_percent"].is_null());
        assert_eq!(s["total"].as_u64(), Some(1300));
        // two installs on one device: two samples, one device
        let s = bytes_summary(&[bytes("a", 10), bytes("a", 30)], Some(0));
        assert_eq!(
            (s["count"].as_u64(), s["devices"].as_u64()),
            (Some(2), Some(1))
        );
        assert_eq!(s["p50"].as_f64(), Some(20.0));
        assert!(s["p50_of_full_percent"].is_null(), "a full size of 0");
        // nothing reported: counts 0, no percentiles
        let s = bytes_summary(&[], Some(2000));
        assert_eq!(s["count"], 0);
        assert!(s["p50"].is_null() && s["p95"].is_null() && s["p50_of_full_percent"].is_null());
        assert_eq!(s["total"].as_u64(), Some(0));
        // the total does not wrap
        let s = bytes_summary(&[bytes("a", u64::MAX), bytes("b", 5)], None);
        assert_eq!(s["total"].as_u64(), Some(u64::MAX));
    }

    #[test]
    fn summary_carries_update_bytes() {
        let f = Facts {
            update_bytes: vec![bytes("a", 100), bytes("b", 200), bytes("c", 1000)],
            ..Facts::default()
        };
        let s = f.summary(60, Some(1000));
        assert_eq!(s["update_bytes"]["p50"].as_f64(), Some(200.0));
        assert_eq!(s["update_bytes"]["total"].as_u64(), Some(1300));
        assert_eq!(
            s["update_bytes"]["p50_of_full_percent"].as_f64(),
            Some(20.0)
        );
    }

    #[test]
    fn auto_interval_keeps_buckets_few() {
        assert_eq!(auto_interval(0), 1);
        assert_eq!(auto_interval(60_000), 5);
        assert_eq!(auto_interval(6 * 3_600_000), 1800);
    }
}
