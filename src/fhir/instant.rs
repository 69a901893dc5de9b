//! Parsing of FHIR `instant` values (`YYYY-MM-DDThh:mm:ss(.s+)?(Z|±hh:mm)`) into microseconds
//! since the Unix epoch, UTC. Digits beyond microseconds are truncated (Parquet keeps µs; the
//! original text stays in the lossless resource column).

use crate::util::calendar::{days_from_civil, days_in_month};
use std::fmt;

/// Why a string is not a FHIR instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstantError(&'static str);

impl fmt::Display for InstantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for InstantError {}

fn digits(b: &[u8], at: usize, n: usize) -> Result<i64, InstantError> {
    let s = b
        .get(at..at + n)
        .ok_or(InstantError("value is too short"))?;
    let mut v = 0i64;
    for &c in s {
        if !c.is_ascii_digit() {
            return Err(InstantError("expected a digit"));
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Ok(v)
}

fn expect(b: &[u8], at: usize, c: u8, what: &'static str) -> Result<(), InstantError> {
    if b.get(at) == Some(&c) {
        Ok(())
    } else {
        Err(InstantError(what))
    }
}

/// Parses a FHIR `instant` into UTC microseconds since the epoch.
pub fn parse_instant_micros(s: &str) -> Result<i64, InstantError> {
    let b = s.as_bytes();
    let year = digits(b, 0, 4)?;
    expect(b, 4, b'-', "expected '-' after the year")?;
    let month = digits(b, 5, 2)?;
    expect(b, 7, b'-', "expected '-' after the month")?;
    let day = digits(b, 8, 2)?;
    expect(b, 10, b'T', "expected 'T' between date and time")?;
    let hour = digits(b, 11, 2)?;
    expect(b, 13, b':', "expected ':' after the hour")?;
    let minute = digits(b, 14, 2)?;
    expect(b, 16, b':', "expected ':' after the minutes")?;
    let second = digits(b, 17, 2)?;
    if !(1..=12).contains(&month) {
        return Err(InstantError("month out of range"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(InstantError("day out of range"));
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(InstantError("time out of range"));
    }
    let mut at = 19;
    let mut micros = 0i64;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while at < b.len() && b[at].is_ascii_digit() {
            if at - start < 6 {
                micros = micros * 10 + i64::from(b[at] - b'0');
            }
            at += 1;
        }
        let n = at - start;
        if n == 0 {
            return Err(InstantError("expected digits after '.'"));
        }
        for _ in n..6 {
            micros *= 10;
        }
    }
    let offset_secs = match b.get(at) {
        Some(b'Z') => {
            at += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(b, at + 1, 2)?;
            expect(b, at + 3, b':', "expected ':' in the time-zone offset")?;
            let om = digits(b, at + 4, 2)?;
            if oh > 14 || om > 59 {
                return Err(InstantError("time-zone offset out of range"));
            }
            at += 6;
            let v = oh * 3600 + om * 60;
            if sign == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return Err(InstantError("an instant needs a time zone (Z or ±hh:mm)")),
    };
    if at != b.len() {
        return Err(InstantError("unexpected characters after the time zone"));
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset_secs;
    Ok(secs * 1_000_000 + micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utc_and_offsets() {
        assert_eq!(parse_instant_micros("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_instant_micros("2019-06-14T17:33:02.123Z"),
            Ok(1_560_533_582_123_000)
        );
        assert_eq!(
            parse_instant_micros("2019-06-14T19:33:02.123+02:00"),
            Ok(1_560_533_582_123_000)
        );
        assert_eq!(
            parse_instant_micros("2019-06-14T12:33:02.1234567-05:00"),
            Ok(1_560_533_582_123_456)
        );
        assert_eq!(parse_instant_micros("1969-12-31T23:59:59Z"), Ok(-1_000_000));
        assert_eq!(
            parse_instant_micros("2000-02-29T00:00:00Z"),
            Ok(951_782_400_000_000)
        );
    }

    #[test]
    fn rejects_partial_or_malformed() {
        for bad in [
            "2019-06-14",
            "2019-06-14T17:33:02",
            "2019-06-14T17:33Z",
            "2019-13-01T00:00:00Z",
            "2019-02-29T00:00:00Z",
            "2019-06-14T24:00:00Z",
            "2019-06-14T17:33:02.Z",
            "2019-06-14T17:33:02Zjunk",
            "2019-06-14 17:33:02Z",
            "",
        ] {
            assert!(
                parse_instant_micros(bad).is_err(),
                "{bad} should be rejected"
            );
        }
        assert_eq!(
            parse_instant_micros("2019-06-14T17:33:02")
                .unwrap_err()
                .to_string(),
            "an instant needs a time zone (Z or ±hh:mm)"
        );
    }
}
