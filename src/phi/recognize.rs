//! The [`Recognizer`]: finds PHI spans in one text in a single pass over its tokens.
//!
//! Candidates come from three sources — byte patterns (URL, e-mail), token patterns and
//! context cues (dates, phone/fax, SSN, IP, ages, street lines, "City, ST ZIP", labelled
//! MRNs and identifiers, names after titles, labels, kinship words and before credentials)
//! and the record's [`KnownPhi`] (name words and literals) — and are then resolved to
//! non-overlapping spans: higher category priority first, then the longer span.
//! No regular expressions: each detector is a few byte comparisons at a token, so the cost
//! is linear in the text and independent of vocabulary size.

use memchr::memmem;

use super::date;
use super::words;
use super::{KnownPhi, PhiType, Span};

/// The PHI recognizer. Stateless after construction, so one instance serves every thread.
#[derive(Clone, Debug, Default)]
pub struct Recognizer {
    _private: (),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum C {
    Word,
    Num,
    Punct,
}

#[derive(Clone, Copy, Debug)]
struct Tok {
    s: usize,
    e: usize,
    c: C,
}

fn is_letter(b: u8) -> bool {
    b.is_ascii_alphabetic() || b >= 0x80
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

fn tokenize(b: &[u8], out: &mut Vec<Tok>) {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let s = i;
        if is_letter(c) {
            i += 1;
            while i < b.len() {
                if is_letter(b[i]) {
                    i += 1;
                } else if matches!(b[i], b'\'' | b'-')
                    && i + 1 < b.len()
                    && is_letter(b[i + 1])
                    && is_letter(b[i - 1])
                {
                    i += 2;
                } else {
                    break;
                }
            }
            out.push(Tok {
                s,
                e: i,
                c: C::Word,
            });
        } else if c.is_ascii_digit() {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            out.push(Tok { s, e: i, c: C::Num });
        } else {
            out.push(Tok {
                s,
                e: i + 1,
                c: C::Punct,
            });
            i += 1;
        }
    }
}

fn priority(k: PhiType) -> u8 {
    match k {
        PhiType::Url | PhiType::Email => 10,
        PhiType::Ip => 9,
        PhiType::Ssn | PhiType::Date | PhiType::Phone | PhiType::Fax => 8,
        PhiType::Mrn | PhiType::Id => 7,
        PhiType::Address => 6,
        PhiType::Zip | PhiType::State | PhiType::City => 5,
        PhiType::Name => 4,
        PhiType::Age => 3,
    }
}

/// Digits at `i`: count.
fn ndigits(b: &[u8], i: usize) -> usize {
    b.get(i..)
        .map_or(0, |r| r.iter().take_while(|c| c.is_ascii_digit()).count())
}

/// True when the byte at `i` continues a number or word (so a match ending there is part of
/// something longer).
fn continues(b: &[u8], i: usize) -> bool {
    match b.get(i) {
        Some(c) if is_alnum(*c) => true,
        Some(b'-' | b'.' | b'/') => b.get(i + 1).is_some_and(u8::is_ascii_digit),
        _ => false,
    }
}

fn starts_clean(b: &[u8], i: usize) -> bool {
    i == 0 || {
        let p = b[i - 1];
        !(is_alnum(p) || matches!(p, b'-' | b'.' | b'/') && i >= 2 && b[i - 2].is_ascii_digit())
    }
}

/// `DDD-DDD-DDDD`, `DDD.DDD.DDDD`, `DDD DDD-DDDD` at `i`: the end.
fn phone_body(b: &[u8], i: usize) -> Option<usize> {
    if ndigits(b, i) != 3 {
        return None;
    }
    let s1 = *b.get(i + 3)?;
    if !matches!(s1, b'-' | b'.' | b' ') || ndigits(b, i + 4) != 3 {
        return None;
    }
    let s2 = *b.get(i + 7)?;
    if !(s2 == b'-' || (s2 == b'.' && s1 == b'.')) || ndigits(b, i + 8) != 4 {
        return None;
    }
    Some(i + 12)
}

/// `(DDD) DDD-DDDD` at the '(' at `i`.
fn phone_paren(b: &[u8], i: usize) -> Option<usize> {
    if ndigits(b, i + 1) != 3 || b.get(i + 4) != Some(&b')') {
        return None;
    }
    let j = if b.get(i + 5) == Some(&b' ') {
        i + 6
    } else {
        i + 5
    };
    if ndigits(b, j) != 3 || b.get(j + 3) != Some(&b'-') || ndigits(b, j + 4) != 4 {
        return None;
    }
    Some(j + 8)
}

fn ip_at(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    for part in 0..4 {
        let n = ndigits(b, j);
        if !(1..=3).contains(&n) {
            return None;
        }
        let v: u32 = std::str::from_utf8(&b[j..j + n]).ok()?.parse().ok()?;
        if v > 255 {
            return None;
        }
        j += n;
        if part < 3 {
            if b.get(j) != Some(&b'.') {
                return None;
            }
            j += 1;
        }
    }
    (!continues(b, j)).then_some(j)
}

fn lower_starts(b: &[u8], i: usize, pat: &str) -> bool {
    b.get(i..i + pat.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(pat.as_bytes()))
}

/// Age unit phrases that may follow a number, compared ignoring case.
const AGE_PHRASES: [&str; 14] = [
    "-year-old",
    "-year old",
    " year old",
    " years old",
    " year-old",
    " yr old",
    "-month-old",
    " month old",
    " months old",
    "-week-old",
    "-day-old",
    " y/o",
    " y.o.",
    "-yo",
];

/// Age unit phrases after a number ("-year-old", " y/o", " mo").
fn age_after(b: &[u8], e: usize) -> bool {
    // Every phrase starts with '-' or ' ' and then y, m, w or d, or with "yo": most numbers
    // are followed by neither.
    let plausible = match b.get(e) {
        Some(b'-' | b' ') => b
            .get(e + 1)
            .is_some_and(|c| matches!(c.to_ascii_lowercase(), b'y' | b'm' | b'w' | b'd')),
        Some(b'y' | b'Y') => true,
        _ => false,
    };
    if !plausible {
        return false;
    }
    if AGE_PHRASES.iter().any(|p| lower_starts(b, e, p)) {
        return true;
    }
    // " yo" / "yo" / " mo" followed by a non-letter.
    for p in [" yo", "yo", " mo", " yrs old", " yr", " yrs"] {
        if lower_starts(b, e, p) && !b.get(e + p.len()).is_some_and(|c| is_letter(*c)) {
            return p != " yr" && p != " yrs" || lower_starts(b, e + p.len(), " old");
        }
    }
    false
}

struct Scan<'a> {
    text: &'a str,
    b: &'a [u8],
    t: Vec<Tok>,
    cands: Vec<(Span, u8)>,
}

impl<'a> Scan<'a> {
    fn w(&self, k: usize) -> &'a str {
        self.t
            .get(k)
            .map_or("", |t| self.text.get(t.s..t.e).unwrap_or(""))
    }

    fn is(&self, k: usize, c: C) -> bool {
        self.t.get(k).is_some_and(|t| t.c == c)
    }

    fn punct(&self, k: usize, p: u8) -> bool {
        self.t
            .get(k)
            .is_some_and(|t| t.c == C::Punct && self.b[t.s] == p)
    }

    /// Only spaces or tabs between tokens `k` and `k+1`.
    fn same_line(&self, k: usize) -> bool {
        match (self.t.get(k), self.t.get(k + 1)) {
            (Some(a), Some(n)) => !self.b[a.e..n.s].contains(&b'\n'),
            _ => false,
        }
    }

    fn cap(&self, k: usize) -> bool {
        self.is(k, C::Word) && self.w(k).as_bytes()[0].is_ascii_uppercase() && {
            let w = self.w(k);
            // An all-capitals word longer than three letters is a heading, not a name.
            !(w.len() > 3 && w.bytes().all(|c| c.is_ascii_uppercase()))
        }
    }

    fn add(&mut self, start: usize, end: usize, kind: PhiType, confidence: f32) {
        if end > start {
            self.cands.push((
                Span {
                    start,
                    end,
                    kind,
                    confidence,
                },
                priority(kind),
            ));
        }
    }

    /// Up to `max` capitalised name-like words from token `k` on the same line: the index
    /// after the last one (k when none).
    fn name_words(&self, mut k: usize, max: usize) -> usize {
        let start = k;
        while k - start < max
            && self.cap(k)
            && !words::is_not_name(self.w(k))
            && words::month(self.w(k)).is_none()
            && !words::is_credential(self.w(k))
            && (k == start || self.same_line(k - 1) && self.t[k].s == self.t[k - 1].e + 1)
        {
            k += 1;
            // An initial: "J." between words.
            if self.punct(k, b'.') && self.w(k - 1).len() == 1 && self.cap(k + 1) {
                k += 1;
            }
        }
        k
    }

    fn name_run(&mut self, from: usize, to: usize, confidence: f32) {
        if to > from {
            let (s, mut e) = (self.t[from].s, self.t[to - 1].e);
            if self.punct(to - 1, b'.') {
                e = self.t[to - 2].e;
            }
            self.add(s, e, PhiType::Name, confidence);
        }
    }

    /// An identifier value at token `k` (skipping label filler): [A-Za-z0-9-] run with at
    /// least `min_digits` digits.
    fn id_value(&self, mut k: usize, min_digits: usize) -> Option<(usize, usize)> {
        for _ in 0..4 {
            let w = self.w(k);
            let filler = matches!(w, "#" | ":" | "." | "-")
                || matches!(
                    words::Lower::new(w).as_str(),
                    "id" | "number" | "no" | "num" | "is" | "record"
                );
            if !filler {
                break;
            }
            k += 1;
        }
        let t = self.t.get(k)?;
        if t.c == C::Punct {
            return None;
        }
        let mut e = t.s;
        let mut digits = 0;
        while e < self.b.len() && (self.b[e].is_ascii_alphanumeric() || self.b[e] == b'-') {
            digits += usize::from(self.b[e].is_ascii_digit());
            e += 1;
        }
        while e > t.s && self.b[e - 1] == b'-' {
            e -= 1;
        }
        (digits >= min_digits && e - t.s >= 4).then_some((t.s, e))
    }
}

impl Recognizer {
    /// A recognizer with the built-in rules.
    pub fn new() -> Self {
        Self::default()
    }

    /// The PHI spans of `text`, sorted and non-overlapping, using `known` (the record's
    /// own names, addresses and identifiers) besides the built-in patterns and cues.
    ///
    /// Names found through a cue (a title, label, kinship word or credential) are then
    /// looked for in the rest of the text too, as if they were known: a note that names
    /// "Dr. Priya Natarajan" once and "Natarajan" later gets both (a second pass over the
    /// words, run only when a cue found a word the record did not know; it runs the name
    /// rules alone, the only ones that read the known names, on the first pass's tokens).
    pub fn find(&self, text: &str, known: &KnownPhi) -> Vec<Span> {
        let b = text.as_bytes();
        let mut scratch = SCRATCH.take();
        let Scratch {
            toks,
            cands,
            marks,
            sorted,
        } = &mut scratch;
        toks.clear();
        cands.clear();
        marks.clear();
        let mut s = Scan {
            text,
            b,
            t: std::mem::take(toks),
            cands: std::mem::take(cands),
        };
        let mut names = Names {
            known,
            extra: Vec::new(),
        };
        candidates(&mut s, &names, marks);
        sorted.clear();
        sorted.extend_from_slice(&s.cands);
        let spans = resolve(sorted, b);
        // The name words that only a cue found are known for the whole text.
        for sp in spans.iter().filter(|sp| sp.kind == PhiType::Name) {
            for w in text[sp.start..sp.end].split([' ', ',']) {
                if w.len() >= 2 && !names.contains(w) {
                    names.extra.push(w);
                }
            }
        }
        let out = if names.extra.is_empty() {
            spans
        } else {
            // The second pass. Only `names_at` reads the known name words, so every other
            // candidate of the first pass stands: each word's names are found again with
            // the new words, and all candidates keep the order a whole new scan would give
            // them (resolution breaks ties by that order).
            sorted.clear();
            let mut prev = 0;
            for &(k, from, to) in marks.iter() {
                sorted.extend_from_slice(&s.cands[prev..from as usize]);
                std::mem::swap(&mut s.cands, sorted);
                names_at(&mut s, k as usize, &names);
                std::mem::swap(&mut s.cands, sorted);
                prev = to as usize;
            }
            sorted.extend_from_slice(&s.cands[prev..]);
            resolve(sorted, b)
        };
        *toks = s.t;
        *cands = s.cands;
        SCRATCH.set(scratch);
        out
    }
}

/// The known name words of a scan: the record's, and those a cue found in the first pass
/// ([`Recognizer::find`]).
struct Names<'k, 't> {
    known: &'k KnownPhi,
    extra: Vec<&'t str>,
}

impl Names<'_, '_> {
    #[inline]
    fn contains(&self, w: &str) -> bool {
        self.known.name_words.contains(w) || self.extra.contains(&w)
    }
}

/// The buffers of a scan, reused across calls on a thread: the tokens; the candidates in the
/// order they were found; where each word's `names_at` candidates are among them (token,
/// from, to); the candidates being resolved.
struct Scratch {
    toks: Vec<Tok>,
    cands: Vec<(Span, u8)>,
    marks: Vec<(u32, u32, u32)>,
    sorted: Vec<(Span, u8)>,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::EMPTY
    }
}

impl Scratch {
    const EMPTY: Scratch = Scratch {
        toks: Vec::new(),
        cands: Vec::new(),
        marks: Vec::new(),
        sorted: Vec::new(),
    };
}

thread_local! {
    static SCRATCH: std::cell::Cell<Scratch> = const { std::cell::Cell::new(Scratch::EMPTY) };
}

/// The first pass of a scan: tokenizes `s`'s text and finds every candidate (byte
/// patterns, the record's literals, the token rules with `names`); `marks` gets where each
/// word's `names_at` candidates are.
fn candidates(s: &mut Scan<'_>, names: &Names<'_, '_>, marks: &mut Vec<(u32, u32, u32)>) {
    tokenize(s.b, &mut s.t);
    byte_patterns(s);
    known_literals(s, names.known);
    for k in 0..s.t.len() {
        token_rules(s, k, names, marks);
    }
}

fn byte_patterns(s: &mut Scan<'_>) {
    let b = s.b;
    // URLs
    static URL_STARTS: std::sync::LazyLock<[memmem::Finder<'static>; 3]> =
        std::sync::LazyLock::new(|| {
            ["http://", "https://", "www."].map(|p| memmem::Finder::new(p.as_bytes()))
        });
    for finder in URL_STARTS.iter() {
        let pat = finder.needle();
        for i in finder.find_iter(b) {
            if pat == b"www." && i > 0 && (is_alnum(b[i - 1]) || b[i - 1] == b'/') {
                continue;
            }
            let mut e = i + pat.len();
            while e < b.len() && !b[e].is_ascii_whitespace() && !matches!(b[e], b'<' | b'>' | b'"')
            {
                e += 1;
            }
            while e > i && matches!(b[e - 1], b'.' | b',' | b';' | b':' | b')' | b'\'' | b']') {
                e -= 1;
            }
            if e > i + pat.len() {
                s.add(i, e, PhiType::Url, 0.97);
            }
        }
    }
    // E-mail
    for at in memchr::memchr_iter(b'@', b) {
        let local =
            |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-');
        let mut st = at;
        while st > 0 && local(b[st - 1]) {
            st -= 1;
        }
        while st < at && b[st] == b'.' {
            st += 1;
        }
        let mut e = at + 1;
        while e < b.len() && (b[e].is_ascii_alphanumeric() || matches!(b[e], b'.' | b'-')) {
            e += 1;
        }
        while e > at + 1 && matches!(b[e - 1], b'.' | b'-') {
            e -= 1;
        }
        let domain = &b[at + 1..e];
        let tld_ok = domain.iter().rposition(|c| *c == b'.').is_some_and(|d| {
            domain.len() - d > 2 && domain[d + 1..].iter().all(u8::is_ascii_alphabetic)
        });
        if st < at && tld_ok {
            s.add(st, e, PhiType::Email, 0.97);
        }
    }
}

fn known_literals(s: &mut Scan<'_>, known: &KnownPhi) {
    let b = s.b;
    for (lit, kind) in &known.literals {
        for i in memmem::find_iter(b, lit.as_bytes()) {
            let e = i + lit.len();
            // A number stated as a fax is left to the phone pattern, which knows the context.
            if *kind == PhiType::Phone && fax_context(b, i) {
                continue;
            }
            if (i == 0 || !is_alnum(b[i - 1])) && !b.get(e).is_some_and(|c| is_alnum(*c)) {
                s.add(i, e, *kind, 0.99);
            }
        }
    }
}

fn fax_context(b: &[u8], start: usize) -> bool {
    let from = start.saturating_sub(40);
    let before = &b[from..start];
    let line = before
        .iter()
        .rposition(|c| *c == b'\n')
        .map_or(before, |p| &before[p + 1..]);
    line.windows(3).any(|w| w.eq_ignore_ascii_case(b"fax"))
}

fn token_rules(
    s: &mut Scan<'_>,
    k: usize,
    names: &Names<'_, '_>,
    marks: &mut Vec<(u32, u32, u32)>,
) {
    let tok = s.t[k];
    let b = s.b;
    match tok.c {
        C::Num => {
            if !starts_clean(b, tok.s) {
                return;
            }
            if let Some((e, _, fmt)) = date::parse_at(b, tok.s) {
                let conf = if matches!(
                    fmt,
                    date::Fmt::Numeric {
                        short_year: true,
                        ..
                    }
                ) {
                    0.85
                } else {
                    0.95
                };
                s.add(tok.s, e, PhiType::Date, conf);
            }
            if let Some(e) = ip_at(b, tok.s) {
                s.add(tok.s, e, PhiType::Ip, 0.95);
            }
            let n = tok.e - tok.s;
            if n == 3
                && b.get(tok.e) == Some(&b'-')
                && ndigits(b, tok.e + 1) == 2
                && b.get(tok.e + 3) == Some(&b'-')
                && ndigits(b, tok.e + 4) == 4
                && !continues(b, tok.e + 8)
            {
                s.add(tok.s, tok.e + 8, PhiType::Ssn, 0.95);
            }
            if let Some(e) = phone_body(b, tok.s).filter(|e| !continues(b, *e)) {
                let mut st = tok.s;
                // "+1 " or "1-" country prefix
                if st >= 2 && b[st - 2] == b'1' && matches!(b[st - 1], b'-' | b' ') {
                    st -= 2;
                    if st >= 1 && b[st - 1] == b'+' {
                        st -= 1;
                    }
                }
                let kind = if fax_context(b, st) {
                    PhiType::Fax
                } else {
                    PhiType::Phone
                };
                s.add(st, e, kind, 0.95);
            }
            if n <= 3 && age_after(b, tok.e) {
                s.add(tok.s, tok.e, PhiType::Age, 0.9);
            } else if n <= 3 && k >= 1 {
                let prev = if s.punct(k - 1, b':') && k >= 2 {
                    s.w(k - 2)
                } else {
                    s.w(k - 1)
                };
                if prev.eq_ignore_ascii_case("age") || prev.eq_ignore_ascii_case("aged") {
                    s.add(tok.s, tok.e, PhiType::Age, 0.85);
                }
            }
            street_line(s, k);
        }
        C::Word => {
            let w = s.w(k);
            if w.as_bytes()[0].is_ascii_uppercase() && (k == 0 || starts_clean(b, tok.s)) {
                if let Some((e, _, _)) = date::parse_at(b, tok.s) {
                    s.add(tok.s, e, PhiType::Date, 0.9);
                }
            }
            // "City, ST 12345"
            if words::is_state(w) && s.is(k + 1, C::Num) {
                let z = s.t[k + 1];
                if z.e - z.s == 5 && z.s == tok.e + 1 {
                    let mut ze = z.e;
                    if b.get(ze) == Some(&b'-') && ndigits(b, ze + 1) == 4 {
                        ze += 5;
                    }
                    if !continues(b, ze) {
                        s.add(tok.s, tok.e, PhiType::State, 0.9);
                        s.add(z.s, ze, PhiType::Zip, 0.9);
                        if k >= 2 && s.punct(k - 1, b',') {
                            let mut f = k - 1;
                            while f > 0 && k - 1 - f < 3 && s.cap(f - 1) && s.same_line(f - 1) {
                                f -= 1;
                            }
                            if f < k - 1 {
                                let (cs, ce) = (s.t[f].s, s.t[k - 2].e);
                                s.add(cs, ce, PhiType::City, 0.85);
                            }
                        }
                    }
                }
            }
            let lower = words::Lower::new(w);
            let lw = lower.as_str();
            // Labelled MRN: "MRN", "MR #", "Medical record #", "medical record number".
            let mrn_label = lw == "mrn"
                || (lw == "mr" && s.punct(k + 1, b'#'))
                || (lw == "medical" && s.w(k + 1).eq_ignore_ascii_case("record"));
            if mrn_label {
                if let Some((vs, ve)) = s.id_value(k + 1, 3) {
                    s.add(vs, ve, PhiType::Mrn, 0.95);
                }
            } else if words::is_id_label(lw) {
                let colon_or_id = s.punct(k + 1, b':')
                    || s.punct(k + 1, b'#')
                    || matches!(
                        words::Lower::new(s.w(k + 1)).as_str(),
                        "id" | "number" | "no" | "num"
                    )
                    || lw == "id";
                if colon_or_id {
                    if let Some((vs, ve)) = s.id_value(k + 1, 4) {
                        s.add(vs, ve, PhiType::Id, 0.9);
                    }
                }
            } else if lw == "ssn" || (lw == "social" && s.w(k + 1).eq_ignore_ascii_case("security"))
            {
                if let Some((vs, ve)) = s.id_value(k + 1, 9).filter(|(a, e)| e - a <= 11) {
                    s.add(vs, ve, PhiType::Ssn, 0.9);
                }
            }
            let from = s.cands.len() as u32;
            names_at(s, k, names);
            marks.push((k as u32, from, s.cands.len() as u32));
            // "Macon Regional Medical Center", "Springfield General Hospital": US hospitals are
            // commonly named after their city.
            if matches!(
                w,
                "Medical" | "General" | "Memorial" | "Regional" | "Community"
            ) && k >= 1
                && matches!(s.w(k + 1), "Center" | "Hospital" | "Medical")
            {
                let f = names_before(s, k);
                // Only the first descriptor word of "Regional Medical Center" starts one.
                let first = !matches!(
                    s.w(k - 1),
                    "Medical" | "General" | "Memorial" | "Regional" | "Community"
                );
                if f < k && first && !matches!(s.w(f), "St" | "Saint" | "Mount" | "Mt") {
                    s.add(s.t[f].s, s.t[k - 1].e, PhiType::City, 0.6);
                }
            }
            // "lives in Springfield"
            if matches!(lw, "lives" | "resides" | "living" | "residing" | "moved")
                && matches!(s.w(k + 1), "in" | "to" | "near")
            {
                let e = s.name_words(k + 2, 3);
                if e > k + 2 {
                    let (cs, ce) = (s.t[k + 2].s, s.t[e - 1].e);
                    s.add(cs, ce, PhiType::City, 0.8);
                }
            }
        }
        C::Punct => {
            if b[tok.s] == b'(' {
                if let Some(e) = phone_paren(b, tok.s).filter(|e| !continues(b, *e)) {
                    let kind = if fax_context(b, tok.s) {
                        PhiType::Fax
                    } else {
                        PhiType::Phone
                    };
                    s.add(tok.s, e, kind, 0.95);
                }
            } else if b[tok.s] == b','
                && matches!(s.w(k + 1), "a" | "an")
                && s.is(k + 2, C::Num)
                && age_after(b, s.t[k + 2].e)
            {
                // "Janet Bailey, a 54-year-old woman"
                let f = names_before(s, k);
                if f < k {
                    s.name_run(f, k, 0.75);
                }
            } else if b[tok.s] == b','
                && k >= 1
                && s.cap(k - 1)
                && !words::is_not_name(s.w(k - 1))
                && s.cap(k + 1)
                && !words::is_not_name(s.w(k + 1))
                && (s.punct(k + 2, b'|')
                    || matches!(s.w(k + 2), "MRN" | "DOB" | "Age" | "Sex")
                    || s.w(k + 2).is_empty())
                && (k < 2 || !s.same_line(k - 2) || s.punct(k - 2, b'|'))
            {
                // "Bailey, Janet | MRN ...": a "Last, First" header line.
                s.name_run(k - 1, k + 2, 0.75);
            } else if b[tok.s] == b',' && s.is(k + 1, C::Word) && words::is_credential(s.w(k + 1)) {
                // "Ann Lee, MD": up to three capitalised words before the comma.
                let f = names_before(s, k);
                if k - f >= 2 {
                    s.name_run(f, k, 0.85);
                }
            }
        }
    }
}

/// The first of up to three capitalised name-like words right before token `k`, on its
/// line (`k` when there are none).
fn names_before(s: &Scan<'_>, k: usize) -> usize {
    let mut f = k;
    while f > 0
        && k - f < 3
        && s.cap(f - 1)
        && !words::is_not_name(s.w(f - 1))
        && !words::is_kinship(s.w(f - 1))
        && words::month(s.w(f - 1)).is_none()
        && s.same_line(f - 1)
    {
        f -= 1;
    }
    f
}

/// Verbs that follow a patient's name at the start of a clinical sentence.
fn is_report_verb(w: &str) -> bool {
    matches!(
        w,
        "reports"
            | "returns"
            | "presents"
            | "denies"
            | "states"
            | "complains"
            | "endorses"
            | "admits"
            | "agrees"
            | "verbalized"
            | "verbalizes"
            | "arrived"
            | "arrives"
    )
}

/// Names: the record's own name words (runs of them), and names cued by a title, a label
/// or a kinship word.
fn names_at(s: &mut Scan<'_>, k: usize, names: &Names<'_, '_>) {
    let w = s.w(k);
    // Runs of known name words; only the first word of a run starts one.
    let known_word = |s: &Scan<'_>, j: usize| {
        s.is(j, C::Word) && !s.b[s.t[j].s].is_ascii_lowercase() && {
            let w = s.w(j);
            names.contains(w) || w.strip_suffix("'s").is_some_and(|b| names.contains(b))
        }
    };
    if known_word(s, k) {
        let prev_joined = k >= 1
            && (known_word(s, k - 1) && s.t[k].s == s.t[k - 1].e + 1
                || k >= 2 && s.punct(k - 1, b',') && known_word(s, k - 2));
        if !prev_joined {
            let mut e = k + 1;
            loop {
                if known_word(s, e) && s.t[e].s == s.t[e - 1].e + 1 {
                    e += 1;
                } else if s.punct(e, b',')
                    && e == k + 1
                    && known_word(s, e + 1)
                    && s.t[e + 1].s == s.t[e].e + 1
                {
                    // "Bailey, Janet" (only right after the first word)
                    e += 2;
                } else if s.is(e, C::Word)
                    && s.w(e).len() == 1
                    && s.cap(e)
                    && s.punct(e + 1, b'.')
                    && known_word(s, e + 2)
                {
                    // a middle initial
                    e += 3;
                } else {
                    break;
                }
            }
            let (start, mut end) = (s.t[k].s, s.t[e - 1].e);
            if !names.contains(s.w(e - 1)) {
                end -= 2; // possessive "'s"
            }
            s.add(start, end, PhiType::Name, 0.97);
        }
        return;
    }
    // "Margaret reports ...": a capitalised word opening a sentence before a report verb.
    if is_report_verb(s.w(k + 1))
        && s.cap(k)
        && !words::is_not_name(w)
        && !words::is_kinship(w)
        && !words::is_title(w)
        && (k == 0 || s.punct(k - 1, b'.') || s.punct(k - 1, b':') || !s.same_line(k - 1))
    {
        s.name_run(k, k + 1, 0.6);
        return;
    }
    let title = words::is_title(w);
    let after = if s.punct(k + 1, b'.') { k + 2 } else { k + 1 };
    if title {
        let e = s.name_words(after, 3);
        s.name_run(after, e, 0.85);
        return;
    }
    let lower = words::Lower::new(w);
    let lw = lower.as_str();
    if words::is_name_label(lw) && (s.punct(k + 1, b':') || lw == "by") {
        let f = if s.punct(k + 1, b':') { k + 2 } else { k + 1 };
        if words::is_title(s.w(f)) {
            return; // the title rule takes it
        }
        if lw == "by" && !s.cap(f) {
            return;
        }
        let e = s.name_words(f, 3);
        if e >= f + 2 {
            s.name_run(f, e, 0.8);
        }
        return;
    }
    if words::is_kinship(lw) && k >= 1 {
        let pre = s.w(k - 1).to_ascii_lowercase();
        if matches!(
            pre.as_str(),
            "his" | "her" | "their" | "my" | "and" | "by" | "("
        ) {
            let f = if s.punct(k + 1, b',') { k + 2 } else { k + 1 };
            let e = s.name_words(f, 2);
            s.name_run(f, e, 0.8);
        }
    }
}

/// "3723 Bridge Ct", "12 N Main Street Apt 4": a house number, up to four capitalised
/// words, a street suffix, and an optional unit.
fn street_line(s: &mut Scan<'_>, k: usize) {
    let tok = s.t[k];
    if tok.e - tok.s > 6 || (k >= 1 && s.is(k - 1, C::Num) && s.same_line(k - 1)) {
        return;
    }
    let mut j = k + 1;
    if s.is(j, C::Word) && words::is_directional(s.w(j)) {
        j += 1;
        if s.punct(j, b'.') {
            j += 1;
        }
    }
    let first = j;
    let mut suffix_end = None;
    while j < s.t.len() && j - first < 5 && s.cap(j) && s.same_line(j - 1) {
        if j > first && words::is_street_suffix(s.w(j)) {
            suffix_end = Some(j);
        }
        j += 1;
        if suffix_end.is_some() {
            break;
        }
    }
    let Some(sx) = suffix_end else { return };
    let mut end = s.t[sx].e;
    let mut j = sx + 1;
    if s.punct(j, b'.') && s.t[j].s == end {
        end = s.t[j].e;
        j += 1;
    }
    // unit: ", Apt 4", " Apt. 4B", " #12"
    let mut u = j;
    if s.punct(u, b',') {
        u += 1;
    }
    let unit_start = u;
    if s.is(u, C::Word) && words::is_unit(s.w(u)) {
        u += 1;
        if s.punct(u, b'.') {
            u += 1;
        }
        if s.punct(u, b'#') {
            u += 1;
        }
    } else if s.punct(u, b'#') {
        u += 1;
    }
    if u > unit_start && u < s.t.len() && s.t[u].c != C::Punct && s.same_line(u - 1) {
        let mut e = s.t[u].e;
        // "4B"
        if s.is(u + 1, C::Word) && s.t[u + 1].s == e && s.w(u + 1).len() <= 2 {
            e = s.t[u + 1].e;
        }
        end = e;
    }
    s.add(tok.s, end, PhiType::Address, 0.9);
}

/// Non-overlapping spans: candidates by priority, then length, then position; each taken
/// when it overlaps none taken before. Output sorted by start.
fn resolve(cands: &mut [(Span, u8)], b: &[u8]) -> Vec<Span> {
    cands.sort_by(|(a, pa), (c, pc)| {
        pc.cmp(pa)
            .then((c.end - c.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&c.start))
    });
    let mut out: Vec<Span> = Vec::with_capacity(cands.len());
    for &(c, _) in cands.iter() {
        // Trim to whole characters (defensive; detectors work on ASCII boundaries).
        if c.end > b.len() || out.iter().any(|o| o.start < c.end && c.start < o.end) {
            continue;
        }
        out.push(c);
    }
    out.sort_by_key(|s| s.start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_6_item_7_age_phrases_survive_the_first_byte_filter() {
        let others = [" yo", "yo", " mo", " yrs old", "-Year-Old", " YO"];
        for p in AGE_PHRASES.iter().chain(&others) {
            let t = format!("54{p} patient");
            assert!(age_after(t.as_bytes(), 2), "{t:?}");
        }
        for t in [
            "54 mg",
            "54-A",
            "54 kg",
            "54",
            "54 yr",
            "54 yrs later",
            "54 young",
            "54 months",
            "54,",
            "54 ",
            "54yrs",
        ] {
            assert!(!age_after(t.as_bytes(), 2), "{t:?}");
        }
    }

    fn found(text: &str, known: &KnownPhi) -> Vec<(String, &'static str)> {
        Recognizer::new()
            .find(text, known)
            .into_iter()
            .map(|s| (text[s.start..s.end].to_string(), s.kind.label()))
            .collect()
    }

    fn pairs(v: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
        v.iter().map(|(a, b)| (a.to_string(), *b)).collect()
    }

    #[test]
    fn patterns_without_known_data() {
        let text = "Seen 03/09/2016 and on March 9th, 2016 (BP 118/74, pain 3/10). \
                    Call (617) 555-0101 or fax to 617-555-0102; SSN 123-45-6789. \
                    Mail jo.doe+x@mail.example.com, see https://portal.example.org/c/1. \
                    From 198.51.100.7. A 92-year-old man, age 45. \
                    Lives at 12 N Main Street Apt 4B, Springfield, IL 62704-1234. \
                    MRN: A1234567. Member ID AET123456789.";
        assert_eq!(
            found(text, &KnownPhi::new()),
            pairs(&[
                ("03/09/2016", "DATE"),
                ("March 9th, 2016", "DATE"),
                ("(617) 555-0101", "PHONE"),
                ("617-555-0102", "FAX"),
                ("123-45-6789", "SSN"),
                ("jo.doe+x@mail.example.com", "EMAIL"),
                ("https://portal.example.org/c/1", "URL"),
                ("198.51.100.7", "IP"),
                ("92", "AGE"),
                ("45", "AGE"),
                ("12 N Main Street Apt 4B", "ADDRESS"),
                ("Springfield", "CITY"),
                ("IL", "STATE"),
                ("62704-1234", "ZIP"),
                ("A1234567", "MRN"),
                ("AET123456789", "ID"),
            ])
        );
    }

    #[test]
    fn names_from_cues() {
        let text = "Re: Mrs. Okafor\nSeen by Dr. Priya Natarajan with her husband, Tomas.\n\
                    Signed: Lee Ann Park, NP\nPatient: Wen Zhou";
        assert_eq!(
            found(text, &KnownPhi::new()),
            pairs(&[
                ("Okafor", "NAME"),
                ("Priya Natarajan", "NAME"),
                ("Tomas", "NAME"),
                ("Lee Ann Park", "NAME"),
                ("Wen Zhou", "NAME"),
            ])
        );
    }

    #[test]
    fn sentence_header_and_hospital_cues_and_second_pass() {
        let text = "Okafor, Adaeze | MRN 88 | DOB 1/2/1950\n\
                    Location: Macon Regional Medical Center\n\
                    Adaeze Okafor, a 74-year-old woman, presents with cough. \
                    Adaeze reports fever. Follow up at Springfield General Hospital.";
        assert_eq!(
            found(text, &KnownPhi::new()),
            pairs(&[
                ("Okafor, Adaeze", "NAME"),
                ("1/2/1950", "DATE"),
                ("Macon", "CITY"),
                ("Adaeze Okafor", "NAME"),
                ("74", "AGE"),
                ("Adaeze", "NAME"),
                ("Springfield", "CITY"),
            ])
        );
        // A name seen once with a cue is found again without one.
        assert_eq!(
            found(
                "Seen by Dr. Ines Ferreira. Ferreira to call back.",
                &KnownPhi::new()
            ),
            pairs(&[("Ines Ferreira", "NAME"), ("Ferreira", "NAME")])
        );
    }

    /// One pass of the recognizer, as `find` makes it before it looks for cued names.
    fn one_scan(text: &str, known: &KnownPhi) -> Vec<Span> {
        let b = text.as_bytes();
        let mut s = Scan {
            text,
            b,
            t: Vec::new(),
            cands: Vec::new(),
        };
        let names = Names {
            known,
            extra: Vec::new(),
        };
        candidates(&mut s, &names, &mut Vec::new());
        resolve(&mut s.cands, b)
    }

    /// What `find` did before issue 6 item 7's incremental second pass: a whole new scan
    /// with the cued name words added to a copy of `known`. `true` when that scan ran.
    fn find_by_rescan(text: &str, known: &KnownPhi) -> (Vec<Span>, bool) {
        let spans = one_scan(text, known);
        let mut extra: Option<KnownPhi> = None;
        for s in spans.iter().filter(|s| s.kind == PhiType::Name) {
            for w in text[s.start..s.end].split([' ', ',']) {
                if w.len() >= 2 && !known.name_words.contains(w) {
                    extra
                        .get_or_insert_with(|| known.clone())
                        .name_words
                        .insert(w.to_string());
                }
            }
        }
        match extra {
            Some(k) => (one_scan(text, &k), true),
            None => (spans, false),
        }
    }

    #[test]
    fn issue_6_item_7_second_pass_gives_what_a_whole_rescan_gives() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let opts = crate::sample::SampleOptions {
            patients: 12,
            seed: 3,
            out: tmp.path().join("s"),
            gzip: false,
            annotations: Some(tmp.path().join("notes.ndjson")),
        };
        crate::sample::generate(&opts, &|_, _| {}).expect("sample");
        let docs = crate::phi::eval::load_corpus(&opts.out, &tmp.path().join("notes.ndjson"))
            .expect("corpus");
        assert!(docs.len() > 100, "{} notes", docs.len());
        let rec = Recognizer::new();
        let (mut texts, mut rescans) = (0, 0);
        for d in &docs {
            // With the record's PHI, with its literals only, and with nothing known: the
            // fewer names are known, the more the cues find and the second pass runs.
            let mut literals_only = d.known.clone();
            literals_only.name_words.clear();
            for known in [&d.known, &literals_only, &KnownPhi::new()] {
                let (want, rescanned) = find_by_rescan(&d.text, known);
                assert_eq!(rec.find(&d.text, known), want, "note {}", d.id);
                texts += 1;
                rescans += usize::from(rescanned);
            }
        }
        // The comparison covers both paths, and the second pass often.
        assert!(
            rescans * 3 > texts,
            "{rescans} second passes in {texts} texts"
        );
        assert!(rescans < texts, "{rescans} second passes in {texts} texts");
    }

    #[test]
    fn known_names_and_literals() {
        let mut k = KnownPhi::new();
        k.add_name("Janet Q Bailey");
        k.add_literal(PhiType::City, "Savannah");
        k.add_literal(PhiType::Mrn, "52860516");
        let text = "Bailey, Janet came with Janet Bailey's note; Janet lives near Savannah. \
                    Chart 52860516; not 152860516.";
        assert_eq!(
            found(text, &k),
            pairs(&[
                ("Bailey, Janet", "NAME"),
                ("Janet Bailey", "NAME"),
                ("Janet", "NAME"),
                ("Savannah", "CITY"),
                ("52860516", "MRN"),
            ])
        );
    }

    #[test]
    fn any_text_gives_sorted_disjoint_spans_on_char_boundaries() {
        // Pieces that start or end detectors, glued in pseudo-random order.
        const PIECES: [&str; 24] = [
            "Dr.", " ", "José", "O'Brien", ",", "1", "12", "/", "-", ".", "2016", "@", "x.org",
            "http://", "Mar", "\n", "(617)", "555", "MRN", ":", "é", "'s", "Ct", "GA 30301",
        ];
        let mut k = KnownPhi::new();
        k.add_name("José O'Brien");
        k.add_literal(PhiType::City, "é");
        let rec = Recognizer::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..2_000 {
            let mut text = String::new();
            for _ in 0..(x % 40) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                text.push_str(PIECES[(x % PIECES.len() as u64) as usize]);
            }
            let spans = rec.find(&text, &k);
            let mut end = 0;
            for sp in &spans {
                assert!(sp.start >= end && sp.end > sp.start, "{text:?} {spans:?}");
                assert!(text.get(sp.start..sp.end).is_some(), "{text:?} {sp:?}");
                end = sp.end;
            }
        }
    }

    #[test]
    fn clinical_numbers_are_not_phi() {
        let text = "BP 128/82 mmHg, HR 72, Temp 36.8 C, BMI 27.7. HbA1c 7.2 %. ICD-10 E11.9. \
                    Lisinopril 10 mg daily. Pain 3/10. Seen at 10:11. Room 12.";
        assert_eq!(found(text, &KnownPhi::new()), pairs(&[]));
    }
}
