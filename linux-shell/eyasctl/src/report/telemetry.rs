//! The telemetry eyas publishes to ThingsBoard, read from JSON lines and kept as ThingsBoard keeps
//! it in PostgreSQL, so the report's figures equal the Grafana panels' over `ts_kv`.
//!
//! One line per MQTT message: `{"device": "<name>", "ts": <unix ms>, "values": {…}}` (eyas's
//! timestamped telemetry object plus the device it came from; `./run demo` writes this file from
//! what its MQTT observer received).
//!
//! ThingsBoard's rules (shared/reference/grafana-thingsboard-sql.md §2) applied here:
//! * a `null` value is dropped (no row);
//! * with type casting on (the default) a string that parses as a number is stored as that number
//!   (`"0042"` becomes 42, `"1.50"` becomes 1.5); an integer goes to `long_v`, a decimal to `dbl_v`;
//! * a key written again for the same device and `ts` overwrites the earlier value (the upsert on
//!   `(entity_id, key, ts)`), so a QoS 1 redelivery counts once;
//! * all keys of one message share its `ts`: a failure's `error_code` is the one of the same
//!   message (device, ts).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::stats::{Bytes, Download, Facts, Outcome};

/// A value as ThingsBoard stores it (which `ts_kv` column).
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    Bool(bool),
    Long(i64),
    Dbl(f64),
    Str(String),
    Json(String),
}

impl Stored {
    /// ThingsBoard's typing of a JSON value; `None` for `null` (dropped).
    pub fn of(v: &Value) -> Option<Self> {
        match v {
            Value::Null => None,
            Value::Bool(b) => Some(Self::Bool(*b)),
            Value::Number(n) => Some(if let Some(i) = n.as_i64() {
                Self::Long(i)
            } else if n.is_u64() {
                // beyond 64 bits signed: kept as text
                Self::Str(n.to_string())
            } else {
                Self::Dbl(n.as_f64().unwrap_or(f64::NAN))
            }),
            Value::String(s) => Some(cast_string(s)),
            Value::Array(_) | Value::Object(_) => Some(Self::Json(v.to_string())),
        }
    }

    /// A byte count: a whole number from 0 up to 2^53 (exact in `dbl_v` too); `None` for
    /// anything else (text, a fraction, a negative number).
    pub fn byte_count(&self) -> Option<u64> {
        const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
        match self {
            Self::Long(i) => u64::try_from(*i).ok(),
            Self::Dbl(d) if *d >= 0.0 && d.fract() == 0.0 && *d <= EXACT => Some(*d as u64),
            _ => None,
        }
    }

    /// The number, for `COALESCE(long_v::float8, dbl_v)`.
    pub fn number(&self) -> Option<f64> {
        match self {
            Self::Long(i) => Some(*i as f64),
            Self::Dbl(d) => Some(*d),
            _ => None,
        }
    }

    /// The text PostgreSQL prints for the stored column (`str_v`, `long_v::text`, `dbl_v::text`,
    /// `bool_v::text`, `json_v::text`).
    pub fn text(&self) -> String {
        match self {
            Self::Bool(b) => b.to_string(),
            Self::Long(i) => i.to_string(),
            Self::Dbl(d) => float8_text(*d),
            Self::Str(s) | Self::Json(s) => s.clone(),
        }
    }
}

/// `NumberUtils.isParsable` (what ThingsBoard's type cast accepts): an optional `-`, digits, at
/// most one `.` with digits after it.
fn parsable(s: &str) -> bool {
    let body = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |x: &str| x.bytes().all(|b| b.is_ascii_digit());
    match frac {
        None => !int.is_empty() && digits(int),
        Some(f) => !f.is_empty() && digits(f) && digits(int),
    }
}

fn cast_string(s: &str) -> Stored {
    if parsable(s) {
        if s.contains('.') {
            if let Ok(d) = s.parse::<f64>() {
                return Stored::Dbl(d);
            }
        } else if let Ok(i) = s.parse::<i64>() {
            return Stored::Long(i);
        }
    }
    Stored::Str(s.to_owned())
}

/// PostgreSQL's `float8` output (shortest exact form; whole numbers without `.0`).
fn float8_text(d: f64) -> String {
    if d.is_nan() {
        "NaN".into()
    } else if d.is_infinite() {
        if d > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if d.fract() == 0.0 && d.abs() < 1e15 {
        format!("{}", d as i64)
    } else {
        format!("{d}")
    }
}

/// The telemetry of a fleet: (device, ts) → key → stored value.
#[derive(Debug, Default)]
pub struct Telemetry {
    pub rows: BTreeMap<(String, i64), BTreeMap<String, Stored>>,
    /// Lines read.
    pub messages: usize,
}

impl Telemetry {
    /// Reads a JSON-lines file; an unreadable file or a line that is not a telemetry message is
    /// an error naming `file:line`.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|(line, e)| format!("{}:{line}: {e}", path.display()))
    }

    /// Parses JSON lines (blank lines are skipped); the error carries the 1-based line number.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut t = Self::default();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let err = |e: String| (i + 1, e);
            let v: Value = serde_json::from_str(line).map_err(|e| err(format!("not JSON: {e}")))?;
            let device = v
                .get("device")
                .and_then(Value::as_str)
                .filter(|d| !d.is_empty())
                .ok_or_else(|| err("no \"device\" (a non-empty string)".into()))?;
            let ts = v
                .get("ts")
                .and_then(Value::as_i64)
                .ok_or_else(|| err("no \"ts\" (Unix milliseconds)".into()))?;
            let values = v
                .get("values")
                .and_then(Value::as_object)
                .ok_or_else(|| err("no \"values\" object".into()))?;
            let row = t.rows.entry((device.to_owned(), ts)).or_default();
            for (k, val) in values {
                if let Some(s) = Stored::of(val) {
                    row.insert(k.clone(), s);
                }
            }
            t.messages += 1;
        }
        Ok(t)
    }

    /// Devices that published anything.
    pub fn devices(&self) -> usize {
        let mut d: Vec<&str> = self.rows.keys().map(|(d, _)| d.as_str()).collect();
        d.dedup();
        d.len()
    }

    /// Outcomes (`ota_status` success/failure, with the same message's `error_code`), downloads
    /// (`download_duration_ms`) and the bytes over the air per action (`update_bytes`, with the
    /// casync share `chunk_bytes`; `download_bytes` is never taken for them).
    pub fn facts(&self) -> Facts {
        let mut f = Facts::default();
        for ((device, ts), row) in &self.rows {
            if let Some(Stored::Str(status)) = row.get("ota_status")
                && (status == "success" || status == "failure")
            {
                f.outcomes.push(Outcome {
                    device: device.clone(),
                    time_ms: *ts,
                    success: status == "success",
                    error_code: row.get("error_code").map(Stored::text),
                });
            }
            if let Some(ms) = row.get("download_duration_ms").and_then(Stored::number) {
                f.downloads.push(Download {
                    device: device.clone(),
                    time_ms: *ts,
                    duration_ms: ms,
                });
            }
            for (key, list) in [
                ("update_bytes", &mut f.update_bytes),
                ("chunk_bytes", &mut f.chunk_bytes),
            ] {
                if let Some(bytes) = row.get(key).and_then(Stored::byte_count) {
                    list.push(Bytes {
                        device: device.clone(),
                        bytes,
                    });
                }
            }
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_follows_thingsboard() {
        let of = |s: &str| Stored::of(&serde_json::from_str(s).unwrap_or(Value::Null));
        assert_eq!(of("24"), Some(Stored::Long(24)));
        assert_eq!(of("24.0"), Some(Stored::Dbl(24.0)));
        assert_eq!(of("\"0042\""), Some(Stored::Long(42)));
        assert_eq!(of("\"1.50\""), Some(Stored::Dbl(1.5)));
        assert_eq!(of("\"1.3.0\""), Some(Stored::Str("1.3.0".into())));
        assert_eq!(of("\"1.\""), Some(Stored::Str("1.".into())));
        assert_eq!(of("\"E_VERIFY\""), Some(Stored::Str("E_VERIFY".into())));
        assert_eq!(of("null"), None);
        assert_eq!(of("true"), Some(Stored::Bool(true)));
        assert_eq!(
            of("18446744073709551615"),
            Some(Stored::Str("18446744073709551615".into()))
        );
        assert_eq!(Stored::Dbl(2.0).text(), "2");
        assert_eq!(Stored::Dbl(1.5).text(), "1.5");
    }

    #[test]
    fn rows_merge_per_device_and_ts_and_nulls_drop() {
        let t = Telemetry::parse(concat!(
            "{\"device\":\"d\",\"ts\":5,\"values\":{\"ota_status\":\"failure\",\"error_code\":400}}\n",
            "\n",
            "{\"device\":\"d\",\"ts\":5,\"values\":{\"ota_status\":\"failure\",\"error_code\":null}}\n",
            "{\"device\":\"d\",\"ts\":6,\"values\":{\"download_duration_ms\":\"120\"}}\n",
            "{\"device\":\"e\",\"ts\":7,\"values\":{\"ota_status\":\"failure\"}}\n",
        ))
        .unwrap_or_default();
        let f = t.facts();
        assert_eq!(t.messages, 4);
        assert_eq!(f.outcomes.len(), 2, "the redelivery counts once");
        assert_eq!(f.outcomes[0].error_code.as_deref(), Some("400"));
        assert_eq!(f.outcomes[1].error_code, None);
        assert_eq!(f.downloads.len(), 1);
        assert_eq!(f.downloads[0].duration_ms, 120.0);
    }

    #[test]
    fn update_and_chunk_bytes_per_install() {
        let t = Telemetry::parse(concat!(
            "{\"device\":\"a\",\"ts\":1,\"values\":{\"download_bytes\":50,\"download_duration_ms\":3}}\n",
            "{\"device\":\"a\",\"ts\":2,\"values\":{\"update_bytes\":100,\"chunk_bytes\":0}}\n",
            "{\"device\":\"b\",\"ts\":2,\"values\":{\"update_bytes\":\"200\",\"chunk_bytes\":150}}\n",
            "{\"device\":\"b\",\"ts\":2,\"values\":{\"update_bytes\":\"200\",\"chunk_bytes\":150}}\n",
            "{\"device\":\"c\",\"ts\":3,\"values\":{\"update_bytes\":1000.0,\"chunk_bytes\":null}}\n",
            "{\"device\":\"d\",\"ts\":4,\"values\":{\"download_bytes\":7000}}\n",
            "{\"device\":\"e\",\"ts\":5,\"values\":{\"update_bytes\":-1}}\n",
            "{\"device\":\"e\",\"ts\":6,\"values\":{\"update_bytes\":1.5}}\n",
            "{\"device\":\"e\",\"ts\":7,\"values\":{\"update_bytes\":\"lots\"}}\n",
        ))
        .unwrap_or_default();
        let f = t.facts();
        let got: Vec<(&str, u64)> = f
            .update_bytes
            .iter()
            .map(|b| (b.device.as_str(), b.bytes))
            .collect();
        assert_eq!(
            got,
            vec![("a", 100), ("b", 200), ("c", 1000)],
            "the redelivery counts once; download_bytes is no fallback; no negative, fraction or text"
        );
        let chunks: Vec<u64> = f.chunk_bytes.iter().map(|b| b.bytes).collect();
        assert_eq!(chunks, vec![0, 150]);
        let s = super::super::stats::bytes_summary(&f.update_bytes, None);
        assert_eq!(s["p50"].as_f64(), Some(200.0));
        assert_eq!(s["total"].as_u64(), Some(1300));
    }

    #[test]
    fn bad_lines_name_their_number() {
        let e = Telemetry::parse("{\"device\":\"d\",\"ts\":1,\"values\":{}}\n{\"ts\":1}\n");
        assert_eq!(e.map(|_| ()).err().map(|(l, _)| l), Some(2));
        assert!(Telemetry::parse("nope").is_err());
    }
}
