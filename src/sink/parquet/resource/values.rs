//! Typed values of the `resource` layout read from a primitive's original JSON text: int32,
//! float64 from a decimal literal, and the normalized start of a (possibly partial) FHIR
//! `date` / `dateTime` / `instant`. The text itself is always kept beside them.

use crate::fhir::instant::parse_instant_micros;
use crate::util::calendar::{days_from_civil, days_in_month};

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// An `integer`/`positiveInt`/`unsignedInt` literal that int32 holds exactly as written
/// (`1e2`, `1.0` or `-0` are not: they go to `_extra` so their text survives).
pub fn int32(lit: &[u8]) -> Option<i32> {
    let digits = lit.strip_prefix(b"-").unwrap_or(lit);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if (digits.len() > 1 && digits[0] == b'0') || lit == b"-0" {
        return None;
    }
    std::str::from_utf8(lit).ok()?.parse().ok()
}

/// A JSON number literal as float64 (`None` for anything else: strings, `true`, `null`).
pub fn decimal(lit: &[u8]) -> Option<f64> {
    match lit.first() {
        Some(b'-' | b'0'..=b'9') => std::str::from_utf8(lit).ok()?.parse().ok(),
        _ => None,
    }
}

fn num(s: &[u8]) -> Option<i64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0i64, |v, &c| v * 10 + i64::from(c - b'0')))
}

/// Days since 1970-01-01 of the first day of a `YYYY`, `YYYY-MM` or `YYYY-MM-DD` date.
pub fn date_days(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    let (y, m, d) = match b.len() {
        4 => (num(b)?, 1, 1),
        7 if b[4] == b'-' => (num(&b[..4])?, num(&b[5..7])?, 1),
        10 if b[4] == b'-' && b[7] == b'-' => (num(&b[..4])?, num(&b[5..7])?, num(&b[8..10])?),
        _ => return None,
    };
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    i32::try_from(days_from_civil(y, m, d)).ok()
}

/// µs since the epoch (UTC) of the start of a `dateTime`: a partial date is its first day at
/// 00:00 UTC; a full date-time is converted with its offset.
pub fn date_time_micros(s: &str) -> Option<i64> {
    if s.len() <= 10 {
        return date_days(s).map(|d| i64::from(d) * MICROS_PER_DAY);
    }
    parse_instant_micros(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int32_takes_only_plain_integers() {
        assert_eq!(int32(b"42"), Some(42));
        assert_eq!(int32(b"-7"), Some(-7));
        assert_eq!(int32(b"0"), Some(0));
        assert_eq!(int32(b"2147483647"), Some(i32::MAX));
        for bad in [
            &b"2147483648"[..],
            b"1e2",
            b"1.0",
            b"-0",
            b"01",
            b"",
            b"\"1\"",
        ] {
            assert_eq!(int32(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn decimal_reads_number_literals() {
        assert_eq!(decimal(b"1.50"), Some(1.5));
        assert_eq!(decimal(b"1e2"), Some(100.0));
        assert_eq!(decimal(b"-0.0"), Some(-0.0));
        assert_eq!(decimal(b"\"1.5\""), None);
        assert_eq!(decimal(b"true"), None);
    }

    #[test]
    fn partial_dates_start_at_their_first_day() {
        assert_eq!(date_days("1970"), Some(0));
        assert_eq!(date_days("2020"), Some(18262));
        assert_eq!(date_days("2020-03"), Some(18322));
        assert_eq!(date_days("2020-03-05"), Some(18326));
        assert_eq!(date_days("2020-02-30"), None);
        assert_eq!(date_days("2020-13"), None);
        assert_eq!(date_days("20200"), None);
    }

    #[test]
    fn date_times_are_normalized_to_utc_micros() {
        assert_eq!(date_time_micros("2020"), Some(18262 * MICROS_PER_DAY));
        assert_eq!(date_time_micros("2020-03"), Some(18322 * MICROS_PER_DAY));
        let utc = date_time_micros("2015-02-07T13:28:17.239Z").unwrap();
        assert_eq!(utc, 1_423_315_697_239_000);
        assert_eq!(
            date_time_micros("2015-02-07T15:28:17.239+02:00"),
            Some(utc),
            "an offset is applied"
        );
        assert_eq!(date_time_micros("2015-02-07T13:28"), None);
    }
}
