//! A small Quartz-cron evaluator for maintenance windows.
//!
//! Supported subset: 6 or 7 fields `sec min hour day-of-month month day-of-week [year]`; in each field
//! `*`, `?` (day fields only), numbers, lists `a,b`, ranges `a-b`, steps `*/n`, `a/n`, `a-b/n`; month names
//! `JAN`–`DEC` and day names `SUN`–`SAT` (Quartz numbering 1 = SUN … 7 = SAT). Exactly one of
//! day-of-month / day-of-week must be `?` (as in Quartz). Not supported: `L`, `W`, `#` (rejected with an
//! error naming the token). Years 1970–2099.

use super::time::{civil_from_days, days_from_civil, parse_hms, parse_offset, quartz_weekday};

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

#[derive(Debug, Clone)]
struct Field {
    min: u32,
    allowed: Vec<bool>,
}

impl Field {
    fn has(&self, v: u32) -> bool {
        v >= self.min
            && self
                .allowed
                .get((v - self.min) as usize)
                .copied()
                .unwrap_or(false)
    }

    fn parse(
        text: &str,
        min: u32,
        max: u32,
        names: &[&str],
        name_base: u32,
    ) -> Result<Self, String> {
        let mut allowed = vec![false; (max - min + 1) as usize];
        let value = |s: &str| -> Result<u32, String> {
            if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
                return Ok(name_base + i as u32);
            }
            let v: u32 = s.parse().map_err(|_| {
                if s.contains(['L', 'W', '#']) {
                    format!("'{s}': L, W and # are not supported by hawkbit-sim")
                } else {
                    format!("'{s}' is not a number")
                }
            })?;
            if v < min || v > max {
                return Err(format!("{v} is outside {min}-{max}"));
            }
            Ok(v)
        };
        for part in text.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => {
                    let s: u32 = s.parse().map_err(|_| format!("bad step in '{part}'"))?;
                    if s == 0 {
                        return Err(format!("zero step in '{part}'"));
                    }
                    (r, s)
                }
                None => (part, 1),
            };
            let (lo, hi) = if range == "*" || range == "?" {
                (min, max)
            } else if let Some((a, b)) = range.split_once('-') {
                (value(a)?, value(b)?)
            } else {
                let v = value(range)?;
                (v, if part.contains('/') { max } else { v })
            };
            if lo > hi {
                return Err(format!("range '{range}' is reversed"));
            }
            let mut v = Some(lo);
            while let Some(x) = v.filter(|x| *x <= hi) {
                allowed[(x - min) as usize] = true;
                v = x.checked_add(step);
            }
        }
        Ok(Self { min, allowed })
    }
}

/// A parsed Quartz cron expression.
#[derive(Debug, Clone)]
pub struct Cron {
    sec: Field,
    min: Field,
    hour: Field,
    dom: Option<Field>,
    month: Field,
    dow: Option<Field>,
    year: Option<Field>,
}

impl Cron {
    /// Parses a Quartz cron expression (see module docs for the subset).
    pub fn parse(expr: &str) -> Result<Self, String> {
        let f: Vec<&str> = expr.split_whitespace().collect();
        if f.len() != 6 && f.len() != 7 {
            return Err(format!(
                "cron '{expr}' has {} fields; Quartz needs 6 or 7 (sec min hour day-of-month month day-of-week [year])",
                f.len()
            ));
        }
        let (dom_q, dow_q) = (f[3] == "?", f[5] == "?");
        if dom_q == dow_q {
            return Err(format!(
                "cron '{expr}': exactly one of day-of-month and day-of-week must be '?' (Quartz rule), e.g. '0 0 2 ? * *'"
            ));
        }
        Ok(Self {
            sec: Field::parse(f[0], 0, 59, &[], 0)?,
            min: Field::parse(f[1], 0, 59, &[], 0)?,
            hour: Field::parse(f[2], 0, 23, &[], 0)?,
            dom: if dom_q {
                None
            } else {
                Some(Field::parse(f[3], 1, 31, &[], 0)?)
            },
            month: Field::parse(f[4], 1, 12, &MONTHS, 1)?,
            dow: if dow_q {
                None
            } else {
                Some(Field::parse(f[5], 1, 7, &DAYS, 1)?)
            },
            year: match f.get(6) {
                Some(y) => Some(Field::parse(y, 1970, 2099, &[], 0)?),
                None => None,
            },
        })
    }

    fn day_matches(&self, days: i64) -> bool {
        let (y, m, d) = civil_from_days(days);
        if let Some(yf) = &self.year
            && (!(1970..=2099).contains(&y) || !yf.has(y as u32))
        {
            return false;
        }
        if !self.month.has(m) {
            return false;
        }
        match (&self.dom, &self.dow) {
            (Some(dom), _) => dom.has(d),
            (None, Some(dow)) => dow.has(quartz_weekday(days)),
            (None, None) => true,
        }
    }

    /// Latest fire time `<= t` (local seconds since epoch) not earlier than `t - back`.
    pub fn last_at_or_before(&self, t: i64, back: i64) -> Option<i64> {
        let first_day = (t - back).div_euclid(86_400);
        let mut day = t.div_euclid(86_400);
        while day >= first_day {
            if self.day_matches(day) {
                let base = day * 86_400;
                for h in (0..24u32).rev().filter(|h| self.hour.has(*h)) {
                    if base + i64::from(h) * 3600 > t {
                        continue;
                    }
                    for m in (0..60u32).rev().filter(|m| self.min.has(*m)) {
                        for s in (0..60u32).rev().filter(|s| self.sec.has(*s)) {
                            let ts = base + i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s);
                            if ts <= t {
                                return (ts >= t - back).then_some(ts);
                            }
                        }
                    }
                }
            }
            day -= 1;
        }
        None
    }

    /// Earliest fire time `> t` (local seconds), searching about four years ahead.
    pub fn next_after(&self, t: i64) -> Option<i64> {
        let start = t.div_euclid(86_400);
        for day in start..start + 4 * 366 + 2 {
            if !self.day_matches(day) {
                continue;
            }
            let base = day * 86_400;
            for h in (0..24u32).filter(|h| self.hour.has(*h)) {
                if base + i64::from(h) * 3600 + 3599 <= t {
                    continue;
                }
                for m in (0..60u32).filter(|m| self.min.has(*m)) {
                    for s in (0..60u32).filter(|s| self.sec.has(*s)) {
                        let ts = base + i64::from(h) * 3600 + i64::from(m) * 60 + i64::from(s);
                        if ts > t {
                            return Some(ts);
                        }
                    }
                }
            }
        }
        None
    }
}

/// A maintenance window as given in a Mgmt assignment: Quartz schedule, duration, timezone.
#[derive(Debug, Clone)]
pub struct MaintenanceWindow {
    /// The schedule as given.
    pub schedule: String,
    /// The duration as given (`HH:MM:SS`).
    pub duration: String,
    /// The timezone as given (`+01:00`).
    pub timezone: String,
    cron: Cron,
    duration_secs: i64,
    offset_secs: i64,
}

impl MaintenanceWindow {
    /// Validates and parses the three Mgmt fields.
    pub fn new(schedule: &str, duration: &str, timezone: &str) -> Result<Self, String> {
        let cron = Cron::parse(schedule)?;
        let duration_secs = parse_hms(duration)
            .ok_or_else(|| format!("maintenanceWindow.duration '{duration}' must be HH:MM:SS"))?;
        if duration_secs == 0 {
            return Err("maintenanceWindow.duration must be > 0".into());
        }
        let offset_secs = parse_offset(timezone).ok_or_else(|| {
            format!("maintenanceWindow.timezone '{timezone}' must be an offset like +01:00")
        })?;
        Ok(Self {
            schedule: schedule.into(),
            duration: duration.into(),
            timezone: timezone.into(),
            cron,
            duration_secs: duration_secs as i64,
            offset_secs,
        })
    }

    /// Is the window open at `now_ms` (UTC)?
    pub fn is_open(&self, now_ms: i64) -> bool {
        let local = now_ms.div_euclid(1000) + self.offset_secs;
        self.cron
            .last_at_or_before(local, self.duration_secs)
            .is_some_and(|start| local < start + self.duration_secs)
    }

    /// Next window start after `now_ms`, in UTC ms.
    pub fn next_start_ms(&self, now_ms: i64) -> Option<i64> {
        let local = now_ms.div_euclid(1000) + self.offset_secs;
        self.cron
            .next_after(local)
            .map(|l| (l - self.offset_secs) * 1000)
    }

    /// True when no window is open now and none will ever open again (schedule lapsed).
    pub fn lapsed(&self, now_ms: i64) -> bool {
        !self.is_open(now_ms) && self.next_start_ms(now_ms).is_none()
    }
}

/// Seconds since epoch for a UTC civil time (test helper, also used by docs).
pub fn utc_secs(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    days_from_civil(y, mo, d) * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_window() {
        let w = MaintenanceWindow::new("0 0 2 ? * *", "01:00:00", "+00:00").unwrap();
        let at = |h, m| utc_secs(2026, 11, 27, h, m, 0) * 1000;
        assert!(!w.is_open(at(1, 59)));
        assert!(w.is_open(at(2, 0)));
        assert!(w.is_open(at(2, 59)));
        assert!(!w.is_open(at(3, 0)));
        assert_eq!(
            w.next_start_ms(at(3, 0)),
            Some(utc_secs(2026, 11, 28, 2, 0, 0) * 1000)
        );
        // +01:00: 02:00 local is 01:00 UTC
        let w = MaintenanceWindow::new("0 0 2 ? * *", "00:30:00", "+01:00").unwrap();
        assert!(w.is_open(at(1, 10)));
        assert!(!w.is_open(at(2, 10)));
    }

    #[test]
    fn weekdays_steps_years() {
        // 2026-11-27 is a Friday (Quartz 6)
        let w = MaintenanceWindow::new("0 */15 * ? * FRI", "00:05:00", "Z").unwrap();
        assert!(w.is_open(utc_secs(2026, 11, 27, 10, 31, 0) * 1000));
        assert!(!w.is_open(utc_secs(2026, 11, 27, 10, 36, 0) * 1000));
        assert!(!w.is_open(utc_secs(2026, 11, 28, 10, 31, 0) * 1000));
        let past = MaintenanceWindow::new("0 0 0 1 1 ? 2020", "01:00:00", "Z").unwrap();
        assert!(past.lapsed(utc_secs(2026, 1, 1, 0, 0, 0) * 1000));
        assert!(
            Cron::parse("0 0 0 L * ?")
                .unwrap_err()
                .contains("not supported")
        );
        assert!(Cron::parse("0 0 0 ? JUL-AUG MON#2").is_err());
        assert!(Cron::parse("0 0 0 ? JUL-AUG MON-FRI").is_ok());
        assert!(Cron::parse("0 0 0 * * *").is_err());
        assert!(Cron::parse("0 0 0 ? *").is_err());
        // a step larger than the field never overflows: only the start value is set
        let c = Cron::parse("1/4294967295 0 2 ? * *").unwrap();
        assert!(c.sec.has(1) && !c.sec.has(2));
    }
}
