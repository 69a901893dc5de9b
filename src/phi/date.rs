//! Calendar dates in free text: the parser the recognizer uses at a position, and the
//! formatter the surrogate operation uses to write a shifted date in the same format.
//!
//! Formats: `2016-03-09`; `03/09/2016`, `3/9/16`, `3-9-2016`, `3.9.2016` (US month first);
//! `March 9, 2016`, `Mar 9 2016`, `March 9th, 2016`; `9 March 2016`, `9 Mar 2016`,
//! `9-Mar-2016`; `March 2016`. A numeric date without a year (`3/9`) is not taken: in
//! clinical text it is far more often a ratio (blood pressure, pain score).

use super::words::month;

/// How a date was written, so a shifted date can be written the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fmt {
    Iso,
    /// Month first; separator, zero padding, two-digit year.
    Numeric {
        sep: u8,
        pad: bool,
        short_year: bool,
    },
    /// "March 9, 2016": abbreviated month, comma, ordinal suffix.
    MonthDayYear {
        abbr: bool,
        comma: bool,
    },
    /// "9 Mar 2016": abbreviated month, separator (' ' or '-').
    DayMonthYear {
        abbr: bool,
        sep: u8,
    },
    /// "March 2016".
    MonthYear {
        abbr: bool,
    },
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn valid(y: i64, m: u32, d: u32) -> bool {
    (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m) && (1800..=2200).contains(&y)
}

/// Digits at `i`: (value, count).
fn digits(b: &[u8], i: usize) -> (u32, usize) {
    let mut v: u32 = 0;
    let mut n = 0;
    while let Some(c) = b.get(i + n).filter(|c| c.is_ascii_digit()) {
        if n < 9 {
            v = v * 10 + u32::from(c - b'0');
        }
        n += 1;
    }
    (v, n)
}

fn word(b: &[u8], i: usize) -> usize {
    let mut n = 0;
    while b.get(i + n).is_some_and(|c| c.is_ascii_alphabetic()) {
        n += 1;
    }
    n
}

fn alnum(b: &[u8], i: usize) -> bool {
    b.get(i).is_some_and(|c| c.is_ascii_alphanumeric())
}

fn full_year(y: u32, n: usize) -> i64 {
    if n == 2 {
        // Two-digit years: 00–29 → 2000s, else 1900s (a birth year is far more often 19xx).
        if y < 30 {
            2000 + i64::from(y)
        } else {
            1900 + i64::from(y)
        }
    } else {
        i64::from(y)
    }
}

/// A date starting exactly at `i` (which must not follow a letter or digit): its end, day
/// count and format.
pub(crate) fn parse_at(b: &[u8], i: usize) -> Option<(usize, i64, Fmt)> {
    let c = *b.get(i)?;
    if c.is_ascii_digit() {
        numeric_or_day_first(b, i)
    } else if c.is_ascii_alphabetic() {
        month_first(b, i)
    } else {
        None
    }
}

fn numeric_or_day_first(b: &[u8], i: usize) -> Option<(usize, i64, Fmt)> {
    let (a, na) = digits(b, i);
    let sep = *b.get(i + na)?;
    if na == 4 && sep == b'-' {
        let (m, nm) = digits(b, i + 5);
        if nm == 2 && b.get(i + 7) == Some(&b'-') {
            let (d, nd) = digits(b, i + 8);
            let end = i + 10;
            if nd == 2 && !alnum(b, end) && valid(i64::from(a), m, d) {
                return Some((end, days_from_civil(i64::from(a), m, d), Fmt::Iso));
            }
        }
        return None;
    }
    if na <= 2
        && matches!(sep, b'/' | b'-' | b'.')
        && b.get(i + na + 1).is_some_and(u8::is_ascii_digit)
    {
        let (d, nd) = digits(b, i + na + 1);
        if (1..=2).contains(&nd) && b.get(i + na + 1 + nd) == Some(&sep) {
            let ys = i + na + 1 + nd + 1;
            let (y, ny) = digits(b, ys);
            let end = ys + ny;
            // A '.' or '-' right after the year followed by a digit is a longer number.
            let longer = matches!(b.get(end), Some(b'.' | b'-' | b'/'))
                && b.get(end + 1).is_some_and(u8::is_ascii_digit);
            if (ny == 4 || (ny == 2 && sep == b'/')) && !alnum(b, end) && !longer {
                let year = full_year(y, ny);
                if valid(year, a, d) {
                    let fmt = Fmt::Numeric {
                        sep,
                        pad: na == 2 && nd == 2,
                        short_year: ny == 2,
                    };
                    return Some((end, days_from_civil(year, a, d), fmt));
                }
            }
        }
        return None;
    }
    // "9 March 2016", "9-Mar-2016"
    if na <= 2 && (sep == b' ' || sep == b'-') {
        let ms = i + na + 1;
        let nw = word(b, ms);
        let m = month(std::str::from_utf8(&b[ms..ms + nw]).ok()?)?;
        let mut j = ms + nw;
        if b.get(j) == Some(&b'.') {
            j += 1;
        }
        if b.get(j) != Some(&sep) {
            return None;
        }
        let (y, ny) = digits(b, j + 1);
        let end = j + 1 + ny;
        if ny == 4 && !alnum(b, end) && valid(i64::from(y), m, a) {
            let fmt = Fmt::DayMonthYear { abbr: nw <= 4, sep };
            return Some((end, days_from_civil(i64::from(y), m, a), fmt));
        }
    }
    None
}

fn month_first(b: &[u8], i: usize) -> Option<(usize, i64, Fmt)> {
    let nw = word(b, i);
    if nw < 3 {
        return None;
    }
    let w = std::str::from_utf8(&b[i..i + nw]).ok()?;
    // Month names must be capitalised ("may" is a verb).
    if !w.as_bytes()[0].is_ascii_uppercase() {
        return None;
    }
    let m = month(w)?;
    let abbr = nw <= 4;
    let mut j = i + nw;
    if b.get(j) == Some(&b'.') {
        j += 1;
    }
    if b.get(j) != Some(&b' ') {
        return None;
    }
    j += 1;
    let (v, n) = digits(b, j);
    if n == 4 {
        let end = j + 4;
        if !alnum(b, end) && (1800..=2200).contains(&v) {
            let day = days_from_civil(i64::from(v), m, 1);
            return Some((end, day, Fmt::MonthYear { abbr }));
        }
        return None;
    }
    if !(1..=2).contains(&n) {
        return None;
    }
    let d = v;
    j += n;
    // ordinal suffix
    let suf = word(b, j);
    if suf == 2 {
        let s = &b[j..j + 2];
        if matches!(s, b"st" | b"nd" | b"rd" | b"th") {
            j += 2;
        } else {
            return None;
        }
    } else if suf != 0 {
        return None;
    }
    let comma = b.get(j) == Some(&b',');
    if comma {
        j += 1;
    }
    if b.get(j) != Some(&b' ') {
        return None;
    }
    j += 1;
    let (y, ny) = digits(b, j);
    let end = j + ny;
    if ny == 4 && !alnum(b, end) && valid(i64::from(y), m, d) {
        let fmt = Fmt::MonthDayYear { abbr, comma };
        return Some((end, days_from_civil(i64::from(y), m, d), fmt));
    }
    None
}

/// Month names for writing dates (kept apart from the sample generator's list on purpose:
/// the recognizer reads nothing of the generator).
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Writes day count `day` in format `fmt`.
pub(crate) fn format(out: &mut String, day: i64, fmt: Fmt) {
    use std::fmt::Write;
    let (y, m, d) = civil_from_days(day);
    let name = |abbr: bool| {
        let full = MONTHS[(m - 1) as usize];
        if abbr {
            &full[..3]
        } else {
            full
        }
    };
    // Writing to a String cannot fail.
    let _ = match fmt {
        Fmt::Iso => write!(out, "{y:04}-{m:02}-{d:02}"),
        Fmt::Numeric {
            sep,
            pad,
            short_year,
        } => {
            let sep = char::from(sep);
            let yy = if short_year { y.rem_euclid(100) } else { y };
            let yw = if short_year { 2 } else { 4 };
            if pad {
                write!(out, "{m:02}{sep}{d:02}{sep}{yy:0yw$}")
            } else {
                write!(out, "{m}{sep}{d}{sep}{yy:0yw$}")
            }
        }
        Fmt::MonthDayYear { abbr, comma } => {
            write!(
                out,
                "{} {d}{} {y}",
                name(abbr),
                if comma { "," } else { "" }
            )
        }
        Fmt::DayMonthYear { abbr, sep } => {
            let sep = char::from(sep);
            write!(out, "{d}{sep}{}{sep}{y}", name(abbr))
        }
        Fmt::MonthYear { abbr } => write!(out, "{} {y}", name(abbr)),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(s: &str) -> String {
        let (end, day, fmt) =
            parse_at(s.as_bytes(), 0).unwrap_or_else(|| panic!("not a date: {s}"));
        assert_eq!(end, s.len(), "{s}");
        let mut out = String::new();
        format(&mut out, day, fmt);
        out
    }

    #[test]
    fn parses_and_writes_back_every_format() {
        for s in [
            "2016-03-09",
            "03/09/2016",
            "3/9/16",
            "3-9-2016",
            "March 9, 2016",
            "Mar 9 2016",
            "9 Mar 2016",
            "9-Mar-2016",
            "March 2016",
        ] {
            assert_eq!(roundtrip(s), s);
        }
        assert_eq!(roundtrip("March 9th, 2016"), "March 9, 2016");
    }

    #[test]
    fn refuses_ratios_invalid_days_and_longer_numbers() {
        for s in [
            "118/74",
            "3/10",
            "2016-02-30",
            "13/01/2016",
            "1.2.2016.5",
            "may 3, 2016",
        ] {
            let r = parse_at(s.as_bytes(), 0);
            assert!(r.is_none_or(|(end, _, _)| end != s.len()), "{s}: {r:?}");
        }
    }

    #[test]
    fn civil_days_round_trip() {
        for day in [-800_000, -1, 0, 59, 16_839, 20_000, 100_000] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        assert_eq!(days_from_civil(2016, 3, 9), 16_869);
    }
}
