//! The operations on recognised spans: `tag` (the spans themselves, nothing rewritten),
//! [`redact`] (each span replaced by a format such as `[{TYPE}]`) and [`surrogate`] (each
//! span replaced by a realistic value of the same kind, the same for the same input within a
//! run). Which categories are acted on, and from which age an AGE counts as PHI, is the
//! [`Policy`].
//!
//! Surrogates are derived with HMAC-SHA256 keyed by the run secret, so they are consistent
//! across threads and documents without shared state, and the originals cannot be recovered
//! without the secret. Dates are shifted by a whole number of days derived from the secret and
//! a scope (for example the patient id), and written back in their original format.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::date;
use super::words;
use super::{PhiError, PhiType, Span};

/// Which spans the operations act on.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The categories acted on (index by `PhiType as usize`); others are left as written.
    acted: [bool; 15],
    /// An AGE span is acted on only when its number is above this (Safe Harbor: 89).
    pub age_over: u32,
}

impl Default for Policy {
    /// Every category; ages over 89.
    fn default() -> Self {
        Policy {
            acted: [true; 15],
            age_over: 89,
        }
    }
}

impl Policy {
    /// Only `types`, ages over `age_over`.
    pub fn new(types: &[PhiType], age_over: u32) -> Self {
        let mut acted = [false; 15];
        for t in types {
            acted[*t as usize] = true;
        }
        Policy { acted, age_over }
    }

    /// Whether the span at `text[s.start..s.end]` is acted on.
    pub fn applies(&self, text: &str, s: &Span) -> bool {
        if !self.acted[s.kind as usize] {
            return false;
        }
        if s.kind == PhiType::Age {
            return text
                .get(s.start..s.end)
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n > self.age_over);
        }
        true
    }
}

/// A checked redaction format: literal text with `{TYPE}` (the category label) placeholders.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedactFormat {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(String),
    Type,
}

impl Default for RedactFormat {
    /// `[{TYPE}]`.
    fn default() -> Self {
        RedactFormat {
            parts: vec![Part::Lit("[".into()), Part::Type, Part::Lit("]".into())],
        }
    }
}

impl RedactFormat {
    /// Parses a format; `{TYPE}` is the only placeholder, and `{{` / `}}` write braces.
    pub fn parse(format: &str) -> Result<Self, PhiError> {
        let err = |reason| PhiError::Format {
            format: format.to_string(),
            reason,
        };
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = format;
        while let Some(c) = rest.chars().next() {
            if rest.starts_with("{{") || rest.starts_with("}}") {
                lit.push(c);
                rest = &rest[2..];
            } else if let Some(r) = rest.strip_prefix("{TYPE}") {
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(Part::Type);
                rest = r;
            } else if c == '{' || c == '}' {
                return Err(err(
                    "the only placeholder is {TYPE}; write {{ or }} for a brace",
                ));
            } else {
                lit.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(RedactFormat { parts })
    }

    fn write(&self, out: &mut String, kind: PhiType) {
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Type => out.push_str(kind.label()),
            }
        }
    }
}

/// `text` with every span the policy applies to replaced by `format`.
pub fn redact(text: &str, spans: &[Span], format: &RedactFormat, policy: &Policy) -> String {
    rewrite(text, spans, policy, |out, s, _| format.write(out, s.kind))
}

/// `text` with every span the policy applies to replaced by its surrogate.
pub fn surrogate(
    text: &str,
    spans: &[Span],
    surrogates: &Surrogates,
    policy: &Policy,
    scope: &str,
) -> String {
    rewrite(text, spans, policy, |out, s, orig| {
        surrogates.write(out, s.kind, orig, scope)
    })
}

fn rewrite(
    text: &str,
    spans: &[Span],
    policy: &Policy,
    mut put: impl FnMut(&mut String, &Span, &str),
) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut at = 0;
    for s in spans {
        let Some(orig) = text.get(s.start..s.end) else {
            continue;
        };
        if s.start < at || !policy.applies(text, s) {
            continue;
        }
        out.push_str(&text[at..s.start]);
        put(&mut out, s, orig);
        at = s.end;
    }
    out.push_str(&text[at..]);
    out
}

/// Consistent surrogate values keyed by a run secret (never printed: `Debug` shows `***`).
#[derive(Clone)]
pub struct Surrogates {
    key: Hmac<Sha256>,
    /// Largest date shift in days (either direction).
    max_shift_days: i64,
}

impl std::fmt::Debug for Surrogates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Surrogates(***)")
    }
}

const FIRST: [&str; 32] = [
    "Avery", "Blake", "Casey", "Dana", "Elliot", "Finley", "Gray", "Harper", "Indigo", "Jules",
    "Kendall", "Logan", "Marlow", "Noel", "Oakley", "Parker", "Quinn", "Reese", "Sage", "Tatum",
    "Umber", "Vale", "Wren", "Xen", "Yael", "Zion", "Arden", "Briar", "Corin", "Dallas", "Emery",
    "Florian",
];
const STREETS: [&str; 16] = [
    "Alder", "Birch", "Cobalt", "Dove", "Elm", "Fern", "Garnet", "Heron", "Iris", "Juniper",
    "Kestrel", "Linden", "Maple", "Nettle", "Orchard", "Pine",
];
const CITIES: [&str; 16] = [
    "Fairview",
    "Riverton",
    "Lakeside",
    "Oak Hill",
    "Greenfield",
    "Milton",
    "Ashford",
    "Brookdale",
    "Cedarville",
    "Westbury",
    "Northgate",
    "Elmwood",
    "Harborview",
    "Kingsley",
    "Maplewood",
    "Stonebridge",
];

impl Surrogates {
    /// Surrogates for a run keyed by `secret`; dates move by at most `max_shift_days`
    /// (at least 1) days, never by zero.
    pub fn new(secret: &[u8], max_shift_days: u32) -> Self {
        // HMAC accepts keys of any length.
        let key = Hmac::<Sha256>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        Surrogates {
            key,
            max_shift_days: i64::from(max_shift_days.max(1)),
        }
    }

    fn mac(&self, domain: &str, value: &str) -> [u8; 32] {
        let mut m = self.key.clone();
        m.update(domain.as_bytes());
        m.update(&[0]);
        m.update(value.as_bytes());
        m.finalize().into_bytes().into()
    }

    fn pick<'a>(&self, list: &[&'a str], domain: &str, value: &str) -> &'a str {
        let h = self.mac(domain, value);
        list[(u64::from_le_bytes(h[..8].try_into().unwrap_or([0; 8])) % list.len() as u64) as usize]
    }

    /// The date shift in days for `scope` (e.g. a patient id; "" for the whole run).
    pub fn date_shift(&self, scope: &str) -> i64 {
        let h = self.mac("date-shift", scope);
        let r = u64::from_le_bytes(h[..8].try_into().unwrap_or([0; 8]));
        let span = 2 * self.max_shift_days;
        let v = (r % span as u64) as i64 - self.max_shift_days;
        if v >= 0 {
            v + 1
        } else {
            v
        }
    }

    /// Keeps the shape of `orig`: digits stay digits, letters stay letters of the same case,
    /// everything else is copied. `first_nonzero` digit positions (0-based among digits)
    /// get 2–9 so phone area codes and exchanges stay plausible.
    fn shape(&self, out: &mut String, domain: &str, orig: &str, nonzero: &[usize]) {
        let h = self.mac(domain, orig);
        let mut di = 0;
        for (i, c) in orig.chars().enumerate() {
            let x = h[i % 32] ^ h[(i * 7 + 3) % 32].rotate_left((i / 32) as u32);
            if c.is_ascii_digit() {
                let d = if nonzero.contains(&di) {
                    2 + x % 8
                } else {
                    x % 10
                };
                out.push(char::from(b'0' + d));
                di += 1;
            } else if c.is_ascii_uppercase() {
                out.push(char::from(b'A' + x % 26));
            } else if c.is_ascii_lowercase() {
                out.push(char::from(b'a' + x % 26));
            } else {
                out.push(c);
            }
        }
    }

    fn write(&self, out: &mut String, kind: PhiType, orig: &str, scope: &str) {
        match kind {
            PhiType::Name => {
                let mut word = String::new();
                let flush = |out: &mut String, word: &mut String| {
                    if !word.is_empty() {
                        let base = word.strip_suffix("'s").unwrap_or(word);
                        let s = self.pick(&FIRST, "name", &base.to_lowercase());
                        if base.len() > 1 && base.chars().all(|c| c.is_uppercase()) {
                            out.push_str(&s.to_uppercase());
                        } else {
                            out.push_str(s);
                        }
                        if base.len() < word.len() {
                            out.push_str("'s");
                        }
                        word.clear();
                    }
                };
                for c in orig.chars() {
                    if c.is_alphabetic() || c == '\'' || c == '-' {
                        word.push(c);
                    } else {
                        flush(out, &mut word);
                        out.push(c);
                    }
                }
                flush(out, &mut word);
            }
            PhiType::Date => match date::parse_at(orig.as_bytes(), 0) {
                Some((end, day, fmt)) if end == orig.len() => {
                    date::format(out, day + self.date_shift(scope), fmt)
                }
                _ => out.push_str("[DATE]"),
            },
            PhiType::Phone | PhiType::Fax => {
                let digits = orig.bytes().filter(u8::is_ascii_digit).count();
                // With a "1" country code the area code starts at digit 1.
                let (a, e) = if digits == 11 { (1, 4) } else { (0, 3) };
                let mut s = String::with_capacity(orig.len());
                self.shape(&mut s, "phone", orig, &[a, e]);
                if digits == 11 {
                    // keep the country code
                    let i = s.find(|c: char| c.is_ascii_digit()).unwrap_or(0);
                    s.replace_range(i..i + 1, "1");
                }
                out.push_str(&s);
            }
            PhiType::Ssn => {
                // Area numbers 900–999 are never issued.
                let mut s = String::with_capacity(orig.len());
                self.shape(&mut s, "ssn", orig, &[]);
                if let Some(i) = s.find(|c: char| c.is_ascii_digit()) {
                    s.replace_range(i..i + 1, "9");
                }
                out.push_str(&s);
            }
            PhiType::Mrn | PhiType::Id | PhiType::Zip => self.shape(out, kind.label(), orig, &[]),
            PhiType::Email => {
                let local = orig.split('@').next().unwrap_or(orig);
                let name = self.pick(&FIRST, "email", &local.to_lowercase());
                let h = self.mac("email-n", orig);
                out.push_str(&name.to_lowercase());
                out.push_str(itoa::Buffer::new().format(h[0] % 100));
                out.push_str("@example.com");
            }
            PhiType::Url => {
                let h = self.mac("url", orig);
                out.push_str("https://example.org/r/");
                for b in &h[..6] {
                    out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
                    out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
                }
            }
            PhiType::Ip => {
                // TEST-NET-1 (RFC 5737)
                let h = self.mac("ip", orig);
                out.push_str("192.0.2.");
                out.push_str(itoa::Buffer::new().format(1 + h[0] % 254));
            }
            PhiType::Address => {
                let h = self.mac("address", orig);
                let number = 100 + u32::from(u16::from_le_bytes([h[0], h[1]])) % 9_900;
                out.push_str(itoa::Buffer::new().format(number));
                out.push(' ');
                out.push_str(self.pick(&STREETS, "street", orig));
                out.push(' ');
                let suffix = orig
                    .split(|c: char| c.is_whitespace() || c == ',')
                    .rev()
                    .find(|w| words::is_street_suffix(w))
                    .unwrap_or("St");
                out.push_str(suffix);
            }
            PhiType::City => out.push_str(self.pick(&CITIES, "city", &orig.to_lowercase())),
            // A state is not a Safe Harbor identifier; a surrogate keeps it.
            PhiType::State => out.push_str(orig),
            // Only ages the policy applies to get here: Safe Harbor aggregates them as 90.
            PhiType::Age => out.push_str("90"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phi::{KnownPhi, Recognizer};

    const NOTE: &str = "Janet Bailey, a 93-year-old woman, age 45 sister. Seen 3/9/16 \
                        and March 9, 2016. Call 555-705-9146, SSN 442-96-5745, MRN: 52860516. \
                        Lives at 3723 Bridge Ct, Savannah, GA 31401. Ms. Bailey agrees.";

    fn spans() -> Vec<Span> {
        let mut k = KnownPhi::new();
        k.add_name("Janet Bailey");
        Recognizer::new().find(NOTE, &k)
    }

    #[test]
    fn redact_replaces_spans_and_keeps_young_ages() {
        let f = RedactFormat::parse("<{TYPE}>").unwrap_or_default();
        assert_eq!(
            redact(NOTE, &spans(), &f, &Policy::default()),
            "<NAME>, a <AGE>-year-old woman, age 45 sister. Seen <DATE> \
             and <DATE>. Call <PHONE>, SSN <SSN>, MRN: <MRN>. \
             Lives at <ADDRESS>, <CITY>, <STATE> <ZIP>. Ms. <NAME> agrees."
        );
        let only = Policy::new(&[PhiType::Date], 89);
        assert_eq!(
            redact(
                "Seen 3/9/16 by Dr. Lee.",
                &spans_of("Seen 3/9/16 by Dr. Lee."),
                &RedactFormat::default(),
                &only
            ),
            "Seen [DATE] by Dr. Lee."
        );
    }

    fn spans_of(t: &str) -> Vec<Span> {
        Recognizer::new().find(t, &KnownPhi::new())
    }

    #[test]
    fn format_errors_are_explained() {
        assert_eq!(
            RedactFormat::parse("{{x}} {TYPE}").map(|f| f.parts.len()),
            Ok(2)
        );
        let e = RedactFormat::parse("[{type}]").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid redaction format \"[{type}]\": the only placeholder is {TYPE}; write {{ or }} for a brace"
        );
    }

    #[test]
    fn surrogates_are_consistent_realistic_and_keyed() {
        let s = Surrogates::new(b"run secret", 365);
        let out = surrogate(NOTE, &spans(), &s, &Policy::default(), "patient-1");
        assert_eq!(
            out,
            surrogate(NOTE, &spans(), &s, &Policy::default(), "patient-1")
        );
        // Names map word by word: "Bailey" is the same surrogate in both mentions.
        let re = Recognizer::new();
        let mut k = KnownPhi::new();
        let first = out.split(',').next().unwrap_or("");
        k.add_name(first);
        let found = re.find(&out, &k);
        let kinds: Vec<_> = found.iter().map(|s| s.kind.label()).collect();
        assert_eq!(
            kinds,
            [
                "NAME", "AGE", "AGE", "DATE", "DATE", "PHONE", "SSN", "MRN", "ADDRESS", "CITY",
                "STATE", "ZIP", "NAME"
            ]
        );
        let surname = first.split(' ').nth(1).unwrap_or("?");
        assert!(out.contains(&format!("Ms. {surname} agrees")), "{out}");
        assert!(
            out.contains(", a 90-year-old woman, age 45 sister"),
            "{out}"
        );
        assert!(!out.contains("Bailey") && !out.contains("52860516") && !out.contains("Savannah"));
        assert!(out.contains(", GA "), "{out}");
        // The two dates are the same day and stay the same day, each in its format.
        let shift = s.date_shift("patient-1");
        assert!(shift != 0 && shift.abs() <= 365);
        let day = date::days_from_civil(2016, 3, 9) + shift;
        let (mut a, mut b) = (String::new(), String::new());
        date::format(
            &mut a,
            day,
            date::Fmt::Numeric {
                sep: b'/',
                pad: false,
                short_year: true,
            },
        );
        date::format(
            &mut b,
            day,
            date::Fmt::MonthDayYear {
                abbr: false,
                comma: true,
            },
        );
        assert!(out.contains(&format!("Seen {a} and {b}.")), "{out}");
        // Another secret gives other surrogates.
        let other = surrogate(
            NOTE,
            &spans(),
            &Surrogates::new(b"other", 365),
            &Policy::default(),
            "patient-1",
        );
        assert_ne!(out, other);
        assert_eq!(format!("{s:?}"), "Surrogates(***)");
    }
}
