//! FHIRPath `Date`, `DateTime` and `Time` with their precision and time zone: parsing (literals
//! and FHIR JSON strings), comparison under the spec's precision rules (unequal precision with
//! equal common parts gives an empty result), calendar arithmetic with durations, and printing.

use crate::util::calendar::{civil_from_days, days_from_civil, days_in_month};
use std::cmp::Ordering;
use std::fmt;

/// Which of the three temporal types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `@2015-02-04`.
    Date,
    /// `@2015-02-04T14:34:28+10:00`.
    DateTime,
    /// `@T14:34:28`.
    Time,
}

/// Precision levels, as indexes into [`Temporal::parts`].
pub const YEAR: usize = 0;
/// Month level.
pub const MONTH: usize = 1;
/// Day level.
pub const DAY: usize = 2;
/// Hour level.
pub const HOUR: usize = 3;
/// Minute level.
pub const MINUTE: usize = 4;
/// Second level.
pub const SECOND: usize = 5;
/// Millisecond level.
pub const MILLI: usize = 6;

/// A date, date-time or time of some precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Temporal {
    /// Date, DateTime or Time.
    pub kind: Kind,
    /// year, month, day, hour, minute, second, millisecond (unused levels are 0 or 1).
    pub parts: [i64; 7],
    /// The finest level present (`YEAR`..=`MILLI`).
    pub precision: usize,
    /// Offset from UTC in minutes, when given.
    pub tz: Option<i64>,
}

fn num(s: &str, len: usize) -> Option<i64> {
    if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

const MS_PER_DAY: i64 = 86_400_000;

impl Temporal {
    fn empty(kind: Kind) -> Self {
        Temporal {
            kind,
            parts: [0, 1, 1, 0, 0, 0, 0],
            precision: YEAR,
            tz: None,
        }
    }

    /// Parses a date `YYYY[-MM[-DD]]`.
    pub fn parse_date(s: &str) -> Option<Self> {
        let mut t = Temporal::empty(Kind::Date);
        t.precision = t.fill_date(s)?;
        Some(t)
    }

    fn fill_date(&mut self, s: &str) -> Option<usize> {
        let mut it = s.split('-');
        self.parts[YEAR] = num(it.next()?, 4)?;
        let mut p = YEAR;
        for (level, max) in [(MONTH, 12), (DAY, 31)] {
            match it.next() {
                None => break,
                Some(x) => {
                    let v = num(x, 2)?;
                    if v < 1
                        || v > max
                        || (level == DAY && v > days_in_month(self.parts[YEAR], self.parts[MONTH]))
                    {
                        return None;
                    }
                    self.parts[level] = v;
                    p = level;
                }
            }
        }
        if it.next().is_some() {
            return None;
        }
        Some(p)
    }

    /// Parses `hh[:mm[:ss[.fff]]]` into the time levels; returns the finest level.
    fn fill_time(&mut self, s: &str) -> Option<usize> {
        let mut it = s.split(':');
        let h = num(it.next()?, 2)?;
        if h > 23 {
            return None;
        }
        self.parts[HOUR] = h;
        let mut p = HOUR;
        if let Some(m) = it.next() {
            let m = num(m, 2)?;
            if m > 59 {
                return None;
            }
            self.parts[MINUTE] = m;
            p = MINUTE;
            if let Some(sec) = it.next() {
                let (whole, frac) = match sec.split_once('.') {
                    Some((w, f)) => (w, Some(f)),
                    None => (sec, None),
                };
                let s = num(whole, 2)?;
                if s > 59 {
                    return None;
                }
                self.parts[SECOND] = s;
                p = SECOND;
                if let Some(f) = frac {
                    if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    let ms: String = f.chars().chain("00".chars()).take(3).collect();
                    self.parts[MILLI] = ms.parse().ok()?;
                    p = MILLI;
                }
            }
        }
        if it.next().is_some() {
            return None;
        }
        Some(p)
    }

    /// Parses a time `hh[:mm[:ss[.fff]]]` (no zone).
    pub fn parse_time(s: &str) -> Option<Self> {
        let mut t = Temporal::empty(Kind::Time);
        t.precision = t.fill_time(s)?;
        Some(t)
    }

    /// Parses a date-time `YYYY[-MM[-DD]]T[hh[:mm[:ss[.fff]]]][Z|(+|-)hh:mm]`; with
    /// `need_t = false` a plain date is accepted too (FHIR `dateTime` values).
    pub fn parse_datetime(s: &str, need_t: bool) -> Option<Self> {
        let mut t = Temporal::empty(Kind::DateTime);
        let (date, time) = match s.split_once('T') {
            Some((d, rest)) => (d, Some(rest)),
            None if need_t => return None,
            None => (s, None),
        };
        t.precision = t.fill_date(date)?;
        if let Some(rest) = time {
            if rest.is_empty() {
                return Some(t);
            }
            if t.precision != DAY {
                return None;
            }
            let (clock, tz) = if let Some(c) = rest.strip_suffix('Z') {
                (c, Some(0))
            } else if let Some(p) = rest.rfind(['+', '-']) {
                let z = &rest[p + 1..];
                let (h, m) = z.split_once(':')?;
                let off = num(h, 2)? * 60 + num(m, 2)?;
                (
                    &rest[..p],
                    Some(if rest.as_bytes()[p] == b'-' {
                        -off
                    } else {
                        off
                    }),
                )
            } else {
                (rest, None)
            };
            t.precision = t.fill_time(clock)?;
            t.tz = tz;
        }
        Some(t)
    }

    /// Milliseconds since the epoch of the levels present (time zone applied), for ordering.
    fn epoch_ms(&self) -> i64 {
        let p = &self.parts;
        let days = if self.kind == Kind::Time {
            0
        } else {
            days_from_civil(p[YEAR], p[MONTH], p[DAY])
        };
        let ms =
            days * MS_PER_DAY + ((p[HOUR] * 60 + p[MINUTE]) * 60 + p[SECOND]) * 1000 + p[MILLI];
        ms - self.tz.unwrap_or(0) * 60_000
    }

    fn with_epoch_ms(&self, ms: i64) -> Self {
        let mut t = *self;
        let local = ms + self.tz.unwrap_or(0) * 60_000;
        let (days, rest) = (local.div_euclid(MS_PER_DAY), local.rem_euclid(MS_PER_DAY));
        if self.kind != Kind::Time {
            let (y, m, d) = civil_from_days(days);
            t.parts[YEAR] = y;
            t.parts[MONTH] = m;
            t.parts[DAY] = d;
        }
        t.parts[HOUR] = rest / 3_600_000;
        t.parts[MINUTE] = rest / 60_000 % 60;
        t.parts[SECOND] = rest / 1000 % 60;
        t.parts[MILLI] = rest % 1000;
        t
    }

    /// The parts in UTC (when a zone is present and the value has a time).
    fn utc(&self) -> Self {
        if self.tz.is_some() && self.precision >= HOUR {
            Temporal {
                tz: Some(0),
                ..*self
            }
            .with_epoch_ms(self.epoch_ms())
        } else {
            *self
        }
    }

    /// Compares under the precision rules: `None` when the values agree on their common levels
    /// but have different precision (seconds and milliseconds count as one level).
    pub fn compare(&self, o: &Self) -> Option<Ordering> {
        if (self.kind == Kind::Time) != (o.kind == Kind::Time) {
            return None;
        }
        if self.precision >= HOUR && o.precision >= HOUR && self.tz.is_some() != o.tz.is_some() {
            return None;
        }
        let (a, b) = (self.utc(), o.utc());
        let level = |p: usize| p.min(SECOND);
        let start = if self.kind == Kind::Time { HOUR } else { YEAR };
        let common = level(a.precision).min(level(b.precision));
        for i in start..=common {
            let (x, y) = if i == SECOND {
                (
                    a.parts[SECOND] * 1000 + a.parts[MILLI],
                    b.parts[SECOND] * 1000 + b.parts[MILLI],
                )
            } else {
                (a.parts[i], b.parts[i])
            };
            if x != y {
                return Some(x.cmp(&y));
            }
        }
        if level(a.precision) != level(b.precision) {
            return None;
        }
        Some(Ordering::Equal)
    }

    /// Adds `amount` of a calendar or UCUM time unit; `Err` names a unit that cannot be used.
    pub fn add(&self, amount: i64, unit: &str) -> Result<Self, String> {
        let level = match unit {
            "year" | "years" => YEAR,
            "month" | "months" => MONTH,
            "week" | "weeks" | "wk" => return self.add(amount * 7, "day"),
            "day" | "days" | "d" => DAY,
            "hour" | "hours" | "h" => HOUR,
            "minute" | "minutes" | "min" => MINUTE,
            "second" | "seconds" | "s" => SECOND,
            "millisecond" | "milliseconds" | "ms" => MILLI,
            _ => {
                return Err(format!(
                    "'{unit}' is not a unit of time that can be added to a date"
                ))
            }
        };
        if self.kind == Kind::Time && level < HOUR {
            return Err(format!("cannot add '{unit}' to a time"));
        }
        let mut t = *self;
        if level <= MONTH || (level == DAY && self.precision < DAY) {
            let months = match level {
                YEAR => amount * 12,
                MONTH => amount,
                _ => (amount / 365) * 12,
            };
            let months = if t.precision == YEAR {
                months / 12 * 12
            } else {
                months
            };
            let total = t.parts[YEAR] * 12 + (t.parts[MONTH] - 1) + months;
            t.parts[YEAR] = total.div_euclid(12);
            t.parts[MONTH] = total.rem_euclid(12) + 1;
            t.parts[DAY] = t.parts[DAY].min(days_in_month(t.parts[YEAR], t.parts[MONTH]));
            return Ok(t);
        }
        let unit_ms = [0, 0, MS_PER_DAY, 3_600_000, 60_000, 1000, 1][level];
        let floor = if self.kind == Kind::Time { HOUR } else { YEAR };
        let step =
            [0, 0, MS_PER_DAY, 3_600_000, 60_000, 1000, 1][self.precision.max(floor).max(DAY)];
        let delta = amount * unit_ms / step * step;
        let mut r = t.with_epoch_ms(t.epoch_ms() + delta);
        if self.kind == Kind::Time {
            r.parts[YEAR..HOUR].copy_from_slice(&self.parts[YEAR..HOUR]);
        }
        Ok(r)
    }
}

impl Temporal {
    /// FHIRPath `lowBoundary(precision)` / `highBoundary(precision)`: the earliest or latest
    /// instant the value can stand for, at `precision` digits (Date/DateTime: 4 year, 6 month,
    /// 8 day, 10 hour, 12 minute, 14 second, 17 millisecond; Time: 2, 4, 6, 9); `None` gives
    /// the finest. Missing parts are filled with their first or last value (the last day of
    /// the month included); a date-time without a zone takes the extreme zones, +14:00 for
    /// the low boundary and -12:00 for the high one. An hour alone (`T08`, not a FHIR value)
    /// counts as `08:00`, as the official suite expects. `None` for other precisions.
    pub fn boundary(&self, high: bool, precision: Option<i64>) -> Option<Temporal> {
        let level = match (self.kind, precision) {
            (Kind::Date, None) => DAY,
            (Kind::DateTime, None) | (Kind::Time, None) => MILLI,
            (Kind::Time, Some(p)) => match p {
                2 => HOUR,
                4 => MINUTE,
                6 => SECOND,
                9 => MILLI,
                _ => return None,
            },
            (_, Some(p)) => match p {
                4 => YEAR,
                6 => MONTH,
                8 => DAY,
                10 => HOUR,
                12 => MINUTE,
                14 => SECOND,
                17 => MILLI,
                _ => return None,
            },
        };
        if self.kind == Kind::Date && level > DAY {
            return None;
        }
        let mut t = *self;
        if t.kind != Kind::Date && t.precision == HOUR {
            t.parts[MINUTE] = 0;
            t.precision = MINUTE;
        }
        for l in t.precision + 1..=level {
            t.parts[l] = match (l, high) {
                (MONTH, false) | (DAY, false) => 1,
                (MONTH, true) => 12,
                (DAY, true) => days_in_month(t.parts[YEAR], t.parts[MONTH]),
                (HOUR, true) => 23,
                (MINUTE, true) | (SECOND, true) => 59,
                (MILLI, true) => 999,
                _ => 0,
            };
        }
        t.precision = level;
        if t.kind == Kind::DateTime && level >= HOUR && t.tz.is_none() {
            t.tz = Some(if high { -12 * 60 } else { 14 * 60 });
        }
        Some(t)
    }
}

impl fmt::Display for Temporal {
    /// The FHIRPath form without `@` (`2015-02-04T14:34:28.123+10:00`, `14:34`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.parts;
        if self.kind != Kind::Time {
            write!(f, "{:04}", p[YEAR])?;
            if self.precision >= MONTH {
                write!(f, "-{:02}", p[MONTH])?;
            }
            if self.precision >= DAY {
                write!(f, "-{:02}", p[DAY])?;
            }
            if self.kind == Kind::Date {
                return Ok(());
            }
            if self.precision < HOUR {
                return Ok(());
            }
            f.write_str("T")?;
        }
        write!(f, "{:02}", p[HOUR])?;
        if self.precision >= MINUTE {
            write!(f, ":{:02}", p[MINUTE])?;
        }
        if self.precision >= SECOND {
            write!(f, ":{:02}", p[SECOND])?;
        }
        if self.precision >= MILLI {
            write!(f, ".{:03}", p[MILLI])?;
        }
        match self.tz {
            Some(0) => f.write_str("Z"),
            Some(m) => write!(
                f,
                "{}{:02}:{:02}",
                if m < 0 { '-' } else { '+' },
                m.abs() / 60,
                m.abs() % 60
            ),
            None => Ok(()),
        }
    }
}

/// The current UTC time as a date-time with millisecond precision.
pub fn now() -> Temporal {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let t = Temporal {
        kind: Kind::DateTime,
        parts: [1970, 1, 1, 0, 0, 0, 0],
        precision: MILLI,
        tz: Some(0),
    };
    t.with_epoch_ms(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> Temporal {
        Temporal::parse_datetime(s, false).unwrap()
    }

    #[test]
    fn boundaries_fill_missing_parts_and_zones() {
        let b = |s: &str, high, p| dt(s).boundary(high, p).map(|t| t.to_string());
        assert_eq!(b("2016-02", true, Some(8)).as_deref(), Some("2016-02-29"));
        assert_eq!(b("2014", false, Some(6)).as_deref(), Some("2014-01"));
        assert_eq!(
            b("2014-01-01T08:05", false, None).as_deref(),
            Some("2014-01-01T08:05:00.000+14:00")
        );
        assert_eq!(
            b("2014-01-01T08:05+08:00", true, Some(17)).as_deref(),
            Some("2014-01-01T08:05:59.999+08:00")
        );
        assert_eq!(
            b("2014-01-01T08:05", true, Some(8)).as_deref(),
            Some("2014-01-01")
        );
        assert_eq!(b("2014-01-01T08:05", true, Some(7)), None);
        let time = Temporal::parse_time("10:30").unwrap();
        assert_eq!(
            time.boundary(true, Some(9))
                .map(|t| t.to_string())
                .as_deref(),
            Some("10:30:59.999")
        );
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(
            dt("2015-02-04T14:34:28.123+10:00").to_string(),
            "2015-02-04T14:34:28.123+10:00"
        );
        assert_eq!(dt("2015-02").to_string(), "2015-02");
        assert_eq!(Temporal::parse_time("14:34").unwrap().to_string(), "14:34");
        assert!(Temporal::parse_date("2015-02-30").is_none());
        assert!(Temporal::parse_datetime("2015-02-04", true).is_none());
    }

    #[test]
    fn compares_with_precision_and_zones() {
        assert_eq!(
            dt("2012-04-15T15:00:00Z").compare(&dt("2012-04-15T10:00:00-05:00")),
            Some(Ordering::Equal)
        );
        assert_eq!(dt("2012-04").compare(&dt("2012-04-15")), None);
        assert_eq!(
            dt("2012-03").compare(&dt("2012-04-15")),
            Some(Ordering::Less)
        );
        assert_eq!(
            dt("2012-04-15T10:00:00").compare(&dt("2012-04-15T10:00:00.000")),
            Some(Ordering::Equal)
        );
    }

    #[test]
    fn adds_calendar_durations() {
        let d = Temporal::parse_date("1973-12-25").unwrap();
        assert_eq!(d.add(7, "days").unwrap().to_string(), "1974-01-01");
        assert_eq!(d.add(1, "month").unwrap().to_string(), "1974-01-25");
        assert_eq!(
            Temporal::parse_date("2012-01-31")
                .unwrap()
                .add(1, "month")
                .unwrap()
                .to_string(),
            "2012-02-29"
        );
        assert_eq!(
            dt("1973-12-25T00:00:00.000+10:00")
                .add(10, "ms")
                .unwrap()
                .to_string(),
            "1973-12-25T00:00:00.010+10:00"
        );
        assert!(d.add(1, "a").is_err());
    }
}
