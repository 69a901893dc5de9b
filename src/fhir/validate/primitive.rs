//! Value rules of the FHIR primitive types, written out by hand from the regular expressions in
//! the definitions (the model keeps those patterns; these functions are their fast equivalent).
//! Each returns `Err(reason)` for an invalid lexical value.

use crate::fhir::model::Primitive;

fn digits(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_digit)
}

fn num(b: &[u8]) -> u32 {
    b.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'))
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD` with month and day in range.
fn date_part(b: &[u8]) -> Result<(), &'static str> {
    let bad = "expected YYYY, YYYY-MM or YYYY-MM-DD";
    if b.len() < 4 || !digits(&b[..4]) || num(&b[..4]) == 0 {
        return Err(bad);
    }
    match b.len() {
        4 => Ok(()),
        7 | 10 if b[4] == b'-' && digits(&b[5..7]) => {
            if !(1..=12).contains(&num(&b[5..7])) {
                return Err("month out of range");
            }
            if b.len() == 10 {
                if b[7] != b'-' || !digits(&b[8..10]) {
                    return Err(bad);
                }
                let (y, m, d) = (num(&b[..4]), num(&b[5..7]), num(&b[8..10]));
                let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
                let days = [
                    31,
                    if leap { 29 } else { 28 },
                    31,
                    30,
                    31,
                    30,
                    31,
                    31,
                    30,
                    31,
                    30,
                    31,
                ];
                if d == 0 || d > days[m as usize - 1] {
                    return Err("day out of range");
                }
            }
            Ok(())
        }
        _ => Err(bad),
    }
}

/// `hh:mm:ss(.f+)?`
fn time_part(b: &[u8]) -> Result<(), &'static str> {
    let bad = "expected hh:mm:ss with optional fraction";
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return Err(bad);
    }
    let (h, m, s) = (&b[0..2], &b[3..5], &b[6..8]);
    if !digits(h) || !digits(m) || !digits(s) {
        return Err(bad);
    }
    if num(h) > 23 || num(m) > 59 || num(s) > 60 {
        return Err("time out of range");
    }
    match &b[8..] {
        [] => Ok(()),
        [b'.', frac @ ..] if digits(frac) => Ok(()),
        _ => Err(bad),
    }
}

/// `Z` or `+hh:mm` / `-hh:mm`.
fn zone(b: &[u8]) -> Result<(), &'static str> {
    match b {
        b"Z" => Ok(()),
        [b'+' | b'-', h1, h2, b':', m1, m2]
            if digits(&[*h1, *h2, *m1, *m2])
                && (num(&[*h1, *h2]) < 14 || &[*h1, *h2, *m1, *m2] == b"1400")
                && num(&[*m1, *m2]) < 60 =>
        {
            Ok(())
        }
        _ => Err("expected a time zone Z or +hh:mm / -hh:mm"),
    }
}

/// A date with a time: `YYYY-MM-DDThh:mm:ss(.f+)?zone`; `zone_required` is always true in R4.
fn date_time(s: &[u8], time_required: bool) -> Result<(), &'static str> {
    let Some(t) = s.iter().position(|&c| c == b'T') else {
        if time_required {
            return Err("expected a date, 'T', a time and a time zone");
        }
        return date_part(s);
    };
    if t != 10 {
        return Err("a time needs a full date YYYY-MM-DD before 'T'");
    }
    date_part(&s[..10])?;
    let rest = &s[11..];
    let z = rest
        .iter()
        .position(|&c| c == b'Z' || c == b'+' || c == b'-')
        .ok_or("a time needs a time zone (Z or +hh:mm)")?;
    time_part(&rest[..z])?;
    zone(&rest[z..])
}

fn base64(s: &[u8]) -> Result<(), &'static str> {
    let mut n = 0usize;
    let mut pad = 0usize;
    for &c in s {
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            b'=' => pad += 1,
            c if pad == 0 && (c.is_ascii_alphanumeric() || c == b'+' || c == b'/') => {}
            _ => return Err("not valid base64"),
        }
        n += 1;
    }
    if n % 4 != 0 || pad > 2 {
        return Err("not valid base64 (length not a multiple of 4)");
    }
    Ok(())
}

/// Whether `b` may contain ASCII whitespace: any byte ≤ b' ' (no early exit, so it vectorizes;
/// the exact test runs only when this says yes).
fn maybe_whitespace(b: &[u8]) -> bool {
    b.iter().fold(false, |any, &c| any | (c <= b' '))
}

fn code(s: &str) -> Result<(), &'static str> {
    let b = s.as_bytes();
    if !maybe_whitespace(b) {
        return Ok(());
    }
    let ws = |c: &u8| c.is_ascii_whitespace();
    if b.first().is_some_and(ws) || b.last().is_some_and(ws) {
        return Err("a code has no leading or trailing whitespace");
    }
    if b.windows(2).any(|w| ws(&w[0]) && ws(&w[1])) || b.iter().any(|c| ws(c) && *c != b' ') {
        return Err("a code has only single spaces inside");
    }
    Ok(())
}

fn oid(s: &str) -> Result<(), &'static str> {
    let bad = Err("expected urn:oid: followed by a dotted number starting 0, 1 or 2");
    let Some(rest) = s.strip_prefix("urn:oid:") else {
        return bad;
    };
    let mut parts = rest.split('.');
    if !matches!(parts.next(), Some("0" | "1" | "2")) {
        return bad;
    }
    let mut any = false;
    for p in parts {
        any = true;
        if !digits(p.as_bytes()) || (p.len() > 1 && p.starts_with('0')) {
            return bad;
        }
    }
    if any {
        Ok(())
    } else {
        bad
    }
}

fn uuid(s: &str) -> Result<(), &'static str> {
    let b = s.as_bytes();
    let ok = s.starts_with("urn:uuid:")
        && b.len() == 45
        && b[9..].iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        });
    if ok {
        Ok(())
    } else {
        Err("expected urn:uuid: and a lower-case UUID")
    }
}

/// R4 `string`: "strings SHALL NOT exceed 1MB"; counted in bytes of UTF-8, as the HL7 validator
/// does.
pub const MAX_STRING_BYTES: usize = 1 << 20;

/// Checks a string value of a string-typed primitive. Empty strings are reported by the
/// caller; this checks the lexical form.
pub fn check_string(p: Primitive, s: &str) -> Result<(), &'static str> {
    use Primitive::*;
    let b = s.as_bytes();
    match p {
        Base64Binary => base64(b),
        Code => code(s),
        Date => date_part(b),
        DateTime => date_time(b, false),
        Instant => date_time(b, true),
        Time => time_part(b),
        Id => {
            if crate::fhir::is_valid_id(s) {
                Ok(())
            } else {
                Err("an id is 1 to 64 characters from A-Z a-z 0-9 - .")
            }
        }
        Oid => oid(s),
        Uuid => uuid(s),
        Uri | Url | Canonical => {
            if maybe_whitespace(b) && b.iter().any(u8::is_ascii_whitespace) {
                Err("a URI has no whitespace")
            } else {
                Ok(())
            }
        }
        Xhtml => {
            if s.trim_start().starts_with("<div") {
                Ok(())
            } else {
                Err("narrative XHTML must be a <div> element")
            }
        }
        String | Markdown => {
            if b.len() > MAX_STRING_BYTES {
                Err("longer than 1 MiB, the limit for a string")
            } else {
                Ok(())
            }
        }
        // JSON numbers and booleans are checked by the caller.
        Boolean | Decimal | Integer | PositiveInt | UnsignedInt => Ok(()),
    }
}

/// Checks an integer-typed value: `integer` is 32-bit, `positiveInt` ≥ 1, `unsignedInt` ≥ 0.
pub fn check_integer(p: Primitive, n: i64) -> Result<(), &'static str> {
    let (lo, hi) = match p {
        Primitive::PositiveInt => (1, i64::from(i32::MAX)),
        Primitive::UnsignedInt => (0, i64::from(i32::MAX)),
        _ => (i64::from(i32::MIN), i64::from(i32::MAX)),
    };
    if n < lo {
        Err(if lo == 1 {
            "a positiveInt must be at least 1"
        } else if lo == 0 {
            "an unsignedInt must not be negative"
        } else {
            "integer out of 32-bit range"
        })
    } else if n > hi {
        Err("integer out of 32-bit range")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Primitive::*;

    #[test]
    fn dates_and_times() {
        for ok in ["2020", "2020-02", "2020-02-29", "0001-01-01"] {
            assert_eq!(check_string(Date, ok), Ok(()), "{ok}");
        }
        assert_eq!(check_string(Date, "2019-02-29"), Err("day out of range"));
        assert_eq!(check_string(Date, "2020-13"), Err("month out of range"));
        assert_eq!(
            check_string(Date, "20"),
            Err("expected YYYY, YYYY-MM or YYYY-MM-DD")
        );
        assert_eq!(
            check_string(Date, "0000"),
            Err("expected YYYY, YYYY-MM or YYYY-MM-DD")
        );
        for ok in [
            "2020",
            "2020-01-02T03:04:05Z",
            "2020-01-02T03:04:05.123+05:30",
        ] {
            assert_eq!(check_string(DateTime, ok), Ok(()), "{ok}");
        }
        assert_eq!(
            check_string(DateTime, "2020-01-02T03:04:05"),
            Err("a time needs a time zone (Z or +hh:mm)")
        );
        assert_eq!(
            check_string(DateTime, "2020-01T03:04:05Z"),
            Err("a time needs a full date YYYY-MM-DD before 'T'")
        );
        assert_eq!(
            check_string(Instant, "2020-01-02"),
            Err("expected a date, 'T', a time and a time zone")
        );
        assert_eq!(
            check_string(Instant, "2020-01-02T24:00:00Z"),
            Err("time out of range")
        );
        assert_eq!(check_string(Time, "10:30:00.5"), Ok(()));
        assert_eq!(
            check_string(Time, "10:30"),
            Err("expected hh:mm:ss with optional fraction")
        );
    }

    #[test]
    fn other_string_types() {
        assert_eq!(check_string(Base64Binary, "aGk=\n"), Ok(()));
        assert_eq!(
            check_string(Base64Binary, "%%%2@()()"),
            Err("not valid base64")
        );
        assert_eq!(
            check_string(Base64Binary, "aGk"),
            Err("not valid base64 (length not a multiple of 4)")
        );
        assert_eq!(check_string(Code, "a b"), Ok(()));
        assert_eq!(
            check_string(Code, " a"),
            Err("a code has no leading or trailing whitespace")
        );
        assert_eq!(
            check_string(Code, "a  b"),
            Err("a code has only single spaces inside")
        );
        assert_eq!(
            check_string(Uri, "http://x y"),
            Err("a URI has no whitespace")
        );
        assert_eq!(check_string(Oid, "urn:oid:2.16.840.1"), Ok(()));
        assert!(check_string(Oid, "urn:oid:3.1").is_err());
        assert_eq!(
            check_string(Uuid, "urn:uuid:c757873d-ec9a-4326-a141-556f43239520"),
            Ok(())
        );
        assert!(check_string(Uuid, "urn:uuid:C757873D-ec9a-4326-a141-556f43239520").is_err());
        assert!(check_string(Id, "a_b").is_err());
        assert_eq!(check_string(Xhtml, "<div xmlns=\"x\">hi</div>"), Ok(()));
        // Issue 3 (HL7 validator suite, resource-invalid-eid-2): strings are at most 1 MiB.
        let long = "x".repeat(MAX_STRING_BYTES);
        assert_eq!(check_string(String, &long), Ok(()));
        assert_eq!(
            check_string(Markdown, &format!("{long}y")),
            Err("longer than 1 MiB, the limit for a string")
        );
    }

    #[test]
    fn integer_ranges() {
        assert_eq!(check_integer(Integer, -2_147_483_648), Ok(()));
        assert_eq!(
            check_integer(Integer, 2_147_483_648),
            Err("integer out of 32-bit range")
        );
        assert_eq!(
            check_integer(PositiveInt, 0),
            Err("a positiveInt must be at least 1")
        );
        assert_eq!(
            check_integer(UnsignedInt, -1),
            Err("an unsignedInt must not be negative")
        );
        assert_eq!(check_integer(UnsignedInt, 0), Ok(()));
    }
}
