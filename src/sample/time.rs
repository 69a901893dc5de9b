//! Calendar arithmetic and FHIR date/time formatting for the sample generator.
//!
//! Owns: the fixed simulation clock, ages, the byte-level writers for FHIR `date`,
//! `dateTime` (with a fixed offset) and `instant` (UTC, `Z`), and the human date formats used
//! in clinical notes. Civil-date conversions come from `util::calendar`.

use crate::util::calendar;

/// Seconds since the Unix epoch, UTC.
pub(crate) type Secs = i64;

pub(crate) const MINUTE: Secs = 60;
pub(crate) const HOUR: Secs = 3_600;
pub(crate) const DAY: Secs = 86_400;
pub(crate) const YEAR: Secs = 365 * DAY + DAY / 4;

/// The simulated "now": every generated time is at or before it (2025-06-30T18:00:00Z).
pub(crate) const SIM_END: Secs = 20_269 * DAY + 18 * HOUR;

/// Start of COVID-19 (first US cases; the disease code is not used before).
pub(crate) const COVID_START: Secs = 18_322 * DAY; // 2020-03-01
/// First COVID-19 vaccines (2020-12-15).
pub(crate) const COVID_VACCINE_START: Secs = 18_611 * DAY;

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
const MONTHS_SHORT: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Civil date `(year, month 1-12, day 1-31)` of a day count since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let (y, m, d) = calendar::civil_from_days(z);
    (y, m as u32, d as u32)
}

/// Local civil date of an instant at a fixed UTC offset (minutes).
pub(crate) fn local_date(t: Secs, offset_min: i32) -> (i64, u32, u32) {
    civil_from_days((t + i64::from(offset_min) * MINUTE).div_euclid(DAY))
}

/// Whole years from the birth date (days) to the local date of `t`.
pub(crate) fn age_years(birth_day: i64, t: Secs, offset_min: i32) -> i64 {
    let (by, bm, bd) = civil_from_days(birth_day);
    let (y, m, d) = local_date(t, offset_min);
    let mut age = y - by;
    if (m, d) < (bm, bd) {
        age -= 1;
    }
    age.max(0)
}

/// Whole months from the birth date (days) to the local date of `t`.
pub(crate) fn age_months(birth_day: i64, t: Secs, offset_min: i32) -> i64 {
    let (by, bm, bd) = civil_from_days(birth_day);
    let (y, m, d) = local_date(t, offset_min);
    let mut months = (y - by) * 12 + i64::from(m) - i64::from(bm);
    if d < bd {
        months -= 1;
    }
    months.max(0)
}

#[inline]
fn push2(buf: &mut Vec<u8>, v: u32) {
    buf.push(b'0' + (v / 10 % 10) as u8);
    buf.push(b'0' + (v % 10) as u8);
}

#[inline]
fn push_year(buf: &mut Vec<u8>, y: i64) {
    let y = y.clamp(0, 9_999) as u32;
    push2(buf, y / 100);
    push2(buf, y % 100);
}

/// `YYYY-MM-DD` of a day count.
pub(crate) fn write_date(buf: &mut Vec<u8>, day: i64) {
    let (y, m, d) = civil_from_days(day);
    push_year(buf, y);
    buf.push(b'-');
    push2(buf, m);
    buf.push(b'-');
    push2(buf, d);
}

fn write_hms(buf: &mut Vec<u8>, secs_of_day: i64) {
    let s = secs_of_day as u32;
    push2(buf, s / 3_600);
    buf.push(b':');
    push2(buf, s / 60 % 60);
    buf.push(b':');
    push2(buf, s % 60);
}

/// FHIR `dateTime` in local time with its offset, e.g. `2024-03-14T10:42:00-05:00`.
pub(crate) fn write_datetime(buf: &mut Vec<u8>, t: Secs, offset_min: i32) {
    let local = t + i64::from(offset_min) * MINUTE;
    write_date(buf, local.div_euclid(DAY));
    buf.push(b'T');
    write_hms(buf, local.rem_euclid(DAY));
    if offset_min == 0 {
        buf.extend_from_slice(b"+00:00");
    } else {
        buf.push(if offset_min < 0 { b'-' } else { b'+' });
        let a = offset_min.unsigned_abs();
        push2(buf, a / 60);
        buf.push(b':');
        push2(buf, a % 60);
    }
}

/// FHIR `instant` in UTC with milliseconds, e.g. `2024-03-14T15:42:00.318Z`.
pub(crate) fn write_instant_z(buf: &mut Vec<u8>, t: Secs, millis: u32) {
    write_date(buf, t.div_euclid(DAY));
    buf.push(b'T');
    write_hms(buf, t.rem_euclid(DAY));
    buf.push(b'.');
    let ms = millis % 1_000;
    buf.push(b'0' + (ms / 100) as u8);
    push2(buf, ms % 100);
    buf.push(b'Z');
}

/// Human date formats used in clinical notes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum NoteDate {
    /// `2024-03-14`
    Iso,
    /// `03/14/2024`
    Us,
    /// `March 14, 2024`
    Long,
    /// `14 Mar 2024`
    DayMonYear,
    /// `3/14/24`
    UsShort,
}

/// Appends a civil date in one of the note formats.
pub(crate) fn push_note_date(s: &mut String, day: i64, fmt: NoteDate) {
    let (y, m, d) = civil_from_days(day);
    let mut b = itoa::Buffer::new();
    let two = |s: &mut String, v: u32| {
        s.push(char::from(b'0' + (v / 10 % 10) as u8));
        s.push(char::from(b'0' + (v % 10) as u8));
    };
    match fmt {
        NoteDate::Iso => {
            s.push_str(b.format(y));
            s.push('-');
            two(s, m);
            s.push('-');
            two(s, d);
        }
        NoteDate::Us => {
            two(s, m);
            s.push('/');
            two(s, d);
            s.push('/');
            s.push_str(b.format(y));
        }
        NoteDate::Long => {
            s.push_str(MONTHS[(m - 1) as usize]);
            s.push(' ');
            s.push_str(b.format(d));
            s.push_str(", ");
            s.push_str(b.format(y));
        }
        NoteDate::DayMonYear => {
            s.push_str(b.format(d));
            s.push(' ');
            s.push_str(MONTHS_SHORT[(m - 1) as usize]);
            s.push(' ');
            s.push_str(b.format(y));
        }
        NoteDate::UsShort => {
            s.push_str(b.format(m));
            s.push('/');
            s.push_str(b.format(d));
            s.push('/');
            two(s, (y.rem_euclid(100)) as u32);
        }
    }
}

/// Appends local `HH:MM` of an instant.
pub(crate) fn push_note_time(s: &mut String, t: Secs, offset_min: i32) {
    let local = (t + i64::from(offset_min) * MINUTE).rem_euclid(DAY) as u32;
    let h = local / 3_600;
    let m = local / 60 % 60;
    s.push(char::from(b'0' + (h / 10) as u8));
    s.push(char::from(b'0' + (h % 10) as u8));
    s.push(':');
    s.push(char::from(b'0' + (m / 10) as u8));
    s.push(char::from(b'0' + (m % 10) as u8));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::calendar::days_from_civil;

    fn s(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut b = Vec::new();
        f(&mut b);
        String::from_utf8(b).unwrap_or_default()
    }

    #[test]
    fn simulation_clock_dates() {
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(SIM_END, days_from_civil(2025, 6, 30) * DAY + 18 * HOUR);
        assert_eq!(COVID_START, days_from_civil(2020, 3, 1) * DAY);
        assert_eq!(COVID_VACCINE_START, days_from_civil(2020, 12, 15) * DAY);
    }

    #[test]
    fn fhir_formats() {
        let t = days_from_civil(2024, 3, 14) * DAY + 15 * HOUR + 42 * MINUTE + 7;
        assert_eq!(
            s(|b| write_datetime(b, t, -300)),
            "2024-03-14T10:42:07-05:00"
        );
        assert_eq!(s(|b| write_datetime(b, t, 0)), "2024-03-14T15:42:07+00:00");
        assert_eq!(
            s(|b| write_datetime(b, t, 330)),
            "2024-03-14T21:12:07+05:30"
        );
        assert_eq!(
            s(|b| write_datetime(b, days_from_civil(1950, 1, 1) * DAY + HOUR, -420)),
            "1949-12-31T18:00:00-07:00"
        );
        assert_eq!(s(|b| write_instant_z(b, t, 5)), "2024-03-14T15:42:07.005Z");
        assert_eq!(
            s(|b| write_date(b, days_from_civil(1931, 11, 2))),
            "1931-11-02"
        );
    }

    #[test]
    fn note_formats_and_ages() {
        let day = days_from_civil(2024, 3, 4);
        let mut out = String::new();
        for f in [
            NoteDate::Iso,
            NoteDate::Us,
            NoteDate::Long,
            NoteDate::DayMonYear,
            NoteDate::UsShort,
        ] {
            push_note_date(&mut out, day, f);
            out.push('|');
        }
        assert_eq!(
            out,
            "2024-03-04|03/04/2024|March 4, 2024|4 Mar 2024|3/4/24|"
        );
        let birth = days_from_civil(1930, 6, 15);
        assert_eq!(age_years(birth, days_from_civil(2024, 6, 14) * DAY, 0), 93);
        assert_eq!(age_years(birth, days_from_civil(2024, 6, 15) * DAY, 0), 94);
        assert_eq!(
            age_months(
                days_from_civil(2024, 1, 20),
                days_from_civil(2024, 9, 19) * DAY,
                0
            ),
            7
        );
        let mut t = String::new();
        push_note_time(
            &mut t,
            days_from_civil(2024, 1, 1) * DAY + 14 * HOUR + 5 * MINUTE,
            -300,
        );
        assert_eq!(t, "09:05");
    }
}
