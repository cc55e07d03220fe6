//! Wall-clock helpers: civil dates without a date crate, `HH:MM:SS` and Java-style ISO-8601 durations,
//! HTTP dates.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `(year, month 1..=12, day 1..=31)` for days since the epoch.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Day of week for days since the epoch, Quartz numbering: 1 = Sunday … 7 = Saturday.
pub fn quartz_weekday(days: i64) -> u32 {
    // 1970-01-01 was a Thursday (Quartz 5).
    ((days + 4).rem_euclid(7) + 1) as u32
}

/// Largest hour count [`parse_hms`] accepts (≈ 11 years): keeps every derived millisecond value and
/// maintenance-window search far from overflow.
pub const MAX_HMS_HOURS: u64 = 99_999;

/// Parses `HH:MM:SS` (hours may exceed 23, up to [`MAX_HMS_HOURS`]) into seconds.
pub fn parse_hms(s: &str) -> Option<u64> {
    let mut it = s.split(':');
    let h: u64 = it.next()?.trim().parse().ok()?;
    let m: u64 = it.next()?.trim().parse().ok()?;
    let sec: u64 = it.next()?.trim().parse().ok()?;
    if it.next().is_some() || h > MAX_HMS_HOURS || m > 59 || sec > 59 {
        return None;
    }
    Some(h * 3600 + m * 60 + sec)
}

/// Formats seconds as `HH:MM:SS`.
pub fn format_hms(secs: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Formats a poll interval the way hawkBit ≥ 0.10 does: `HH:MM:SS` below 24 h, Java
/// `Duration.toString()` (`PT24H`, `PT26H30M`, `PT24H0M5S` is never produced: zero parts are omitted) from 24 h on.
pub fn format_sleep(secs: u64) -> String {
    if secs < 24 * 3600 {
        return format_hms(secs);
    }
    let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let mut out = format!("PT{h}H");
    if m > 0 {
        out.push_str(&format!("{m}M"));
    }
    if s > 0 {
        out.push_str(&format!("{s}S"));
    }
    out
}

/// RFC 7231 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(quartz_weekday(days) - 1) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Parses a timezone offset `+01:00`, `-05:30`, `+0100`, `Z` or `UTC` into seconds east of UTC.
pub fn parse_offset(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("z") || s.eq_ignore_ascii_case("utc") || s.eq_ignore_ascii_case("gmt")
    {
        return Some(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i64 = digits[..2].parse().ok()?;
    let m: i64 = digits[2..].parse().ok()?;
    if h > 18 || m > 59 {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for z in [-1000, 0, 1, 59, 365, 11_016, 20_000, 30_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        assert_eq!(quartz_weekday(0), 5); // Thursday
    }

    #[test]
    fn sleep_format() {
        assert_eq!(format_sleep(300), "00:05:00");
        assert_eq!(format_sleep(86_399), "23:59:59");
        assert_eq!(format_sleep(86_400), "PT24H");
        assert_eq!(format_sleep(26 * 3600 + 1800), "PT26H30M");
        assert_eq!(format_sleep(24 * 3600 + 5), "PT24H5S");
        assert_eq!(parse_hms("00:05:00"), Some(300));
        assert_eq!(parse_hms("00:60:00"), None);
        assert_eq!(parse_hms("99999:59:59"), Some(99_999 * 3600 + 59 * 60 + 59));
        assert_eq!(parse_hms("100000:00:00"), None);
        assert_eq!(parse_hms("9999999999999999999:00:00"), None);
    }

    #[test]
    fn dates_and_offsets() {
        assert_eq!(http_date(784_111_777_000), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_offset("+01:00"), Some(3600));
        assert_eq!(parse_offset("-05:30"), Some(-19_800));
        assert_eq!(parse_offset("Z"), Some(0));
        assert_eq!(parse_offset("01:00"), None);
    }
}
