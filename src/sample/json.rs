//! A minimal streaming JSON writer that renders FHIR resources straight into byte buffers.
//!
//! Owns: comma placement, strings (escaped by `util::json`), integers (`itoa`), fixed-precision
//! decimals, FHIR date/time values, and the FHIR shapes used everywhere (Coding,
//! CodeableConcept, Reference, Quantity, Money, Period, Meta). No value trees are built:
//! the generator's hot path is `Vec<u8>` appends only.

use super::rng::SplitMix64;
use super::time::{self, Secs};
use crate::util::json::escape_into;

/// `http://unitsofmeasure.org`, the UCUM system for every Quantity.
pub(crate) const UCUM: &str = "http://unitsofmeasure.org";

/// A deterministic UUID-shaped (version 4 layout) resource id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Id([u8; 36]);

impl Id {
    /// Draws the next id of an id stream.
    pub(crate) fn next(ids: &mut SplitMix64) -> Id {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let hi = ids.next_u64();
        let lo = ids.next_u64();
        // Version nibble 4, RFC 4122 variant bits 10.
        let hi = (hi & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
        let lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
        let v = (u128::from(hi) << 64) | u128::from(lo);
        let mut out = [b'-'; 36];
        let mut nibble = 0;
        for (i, slot) in out.iter_mut().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                continue;
            }
            *slot = HEX[((v >> (124 - 4 * nibble)) & 0xF) as usize];
            nibble += 1;
        }
        Id(out)
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    #[cfg(test)]
    pub(crate) fn as_str(&self) -> &str {
        // Always ASCII hex and dashes by construction.
        std::str::from_utf8(&self.0).unwrap_or("00000000-0000-4000-8000-000000000000")
    }
}

/// Appends a fixed-point decimal `v` with `decimals` (0–4) fraction digits, rounding half
/// away from zero. Values are small clinical/money amounts, far inside `i64`.
pub(crate) fn push_fixed(buf: &mut Vec<u8>, v: f64, decimals: u32) {
    let scale = 10i64.pow(decimals.min(4));
    let scaled = (v * scale as f64).round() as i64;
    push_scaled(buf, scaled, decimals.min(4));
}

/// Appends an integer `scaled` divided by `10^decimals` as a decimal literal.
pub(crate) fn push_scaled(buf: &mut Vec<u8>, scaled: i64, decimals: u32) {
    let mut it = itoa::Buffer::new();
    if decimals == 0 {
        buf.extend_from_slice(it.format(scaled).as_bytes());
        return;
    }
    let scale = 10i64.pow(decimals);
    if scaled < 0 {
        buf.push(b'-');
    }
    let a = scaled.unsigned_abs();
    buf.extend_from_slice(it.format(a / scale as u64).as_bytes());
    buf.push(b'.');
    let frac = it.format(a % scale as u64).as_bytes();
    for _ in frac.len()..decimals as usize {
        buf.push(b'0');
    }
    buf.extend_from_slice(frac);
}

/// A JSON writer over one output buffer. Tracks only whether the next value needs a comma.
pub(crate) struct J<'a> {
    pub(crate) buf: &'a mut Vec<u8>,
    comma: bool,
}

impl<'a> J<'a> {
    pub(crate) fn new(buf: &'a mut Vec<u8>) -> Self {
        J { buf, comma: false }
    }

    #[inline]
    fn sep(&mut self) {
        if self.comma {
            self.buf.push(b',');
        }
    }

    #[inline]
    pub(crate) fn obj(&mut self) {
        self.sep();
        self.buf.push(b'{');
        self.comma = false;
    }

    #[inline]
    pub(crate) fn end(&mut self) {
        self.buf.push(b'}');
        self.comma = true;
    }

    #[inline]
    pub(crate) fn arr(&mut self) {
        self.sep();
        self.buf.push(b'[');
        self.comma = false;
    }

    #[inline]
    pub(crate) fn end_arr(&mut self) {
        self.buf.push(b']');
        self.comma = true;
    }

    /// Writes `"key":` (keys are ASCII identifiers, never escaped).
    #[inline]
    pub(crate) fn key(&mut self, k: &str) {
        self.sep();
        self.buf.push(b'"');
        self.buf.extend_from_slice(k.as_bytes());
        self.buf.extend_from_slice(b"\":");
        self.comma = false;
    }

    #[inline]
    pub(crate) fn str(&mut self, s: &str) {
        self.sep();
        self.buf.push(b'"');
        escape_into(self.buf, s);
        self.buf.push(b'"');
        self.comma = true;
    }

    /// A string value given as raw bytes that need no escaping (ids, generated ASCII).
    #[inline]
    pub(crate) fn raw_str(&mut self, s: &[u8]) {
        self.sep();
        self.buf.push(b'"');
        self.buf.extend_from_slice(s);
        self.buf.push(b'"');
        self.comma = true;
    }

    #[inline]
    pub(crate) fn int(&mut self, v: i64) {
        self.sep();
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        self.comma = true;
    }

    #[inline]
    pub(crate) fn fixed(&mut self, v: f64, decimals: u32) {
        self.sep();
        push_fixed(self.buf, v, decimals);
        self.comma = true;
    }

    #[inline]
    pub(crate) fn bool(&mut self, v: bool) {
        self.sep();
        self.buf
            .extend_from_slice(if v { b"true" } else { b"false" });
        self.comma = true;
    }

    // ---- key/value shorthands ----

    #[inline]
    pub(crate) fn k_str(&mut self, k: &str, v: &str) {
        self.key(k);
        self.str(v);
    }

    #[inline]
    pub(crate) fn k_int(&mut self, k: &str, v: i64) {
        self.key(k);
        self.int(v);
    }

    #[inline]
    pub(crate) fn k_bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.bool(v);
    }

    #[inline]
    pub(crate) fn k_obj(&mut self, k: &str) {
        self.key(k);
        self.obj();
    }

    #[inline]
    pub(crate) fn k_arr(&mut self, k: &str) {
        self.key(k);
        self.arr();
    }

    /// `"k":"<id>"`
    #[inline]
    pub(crate) fn k_id(&mut self, k: &str, id: &Id) {
        self.key(k);
        self.raw_str(id.as_bytes());
    }

    /// `"k":"YYYY-MM-DD"`
    pub(crate) fn k_date(&mut self, k: &str, day: i64) {
        self.key(k);
        self.sep();
        self.buf.push(b'"');
        time::write_date(self.buf, day);
        self.buf.push(b'"');
        self.comma = true;
    }

    /// `"k":"<dateTime with offset>"`
    pub(crate) fn k_datetime(&mut self, k: &str, t: Secs, offset_min: i32) {
        self.key(k);
        self.sep();
        self.buf.push(b'"');
        time::write_datetime(self.buf, t, offset_min);
        self.buf.push(b'"');
        self.comma = true;
    }

    /// `"k":"<instant>Z"` with milliseconds.
    pub(crate) fn k_instant(&mut self, k: &str, t: Secs, millis: u32) {
        self.key(k);
        self.sep();
        self.buf.push(b'"');
        time::write_instant_z(self.buf, t, millis);
        self.buf.push(b'"');
        self.comma = true;
    }

    // ---- FHIR shapes ----

    /// A Coding object: `{"system":..,"code":..,"display":..}`.
    pub(crate) fn coding(&mut self, system: &str, code: &str, display: &str) {
        self.obj();
        self.k_str("system", system);
        self.k_str("code", code);
        if !display.is_empty() {
            self.k_str("display", display);
        }
        self.end();
    }

    /// A ContactPoint object: `{"system":..,"value":..,"use":..}` (`use` omitted when empty).
    pub(crate) fn contact_point(&mut self, system: &str, value: &str, use_: &str) {
        self.obj();
        self.k_str("system", system);
        self.k_str("value", value);
        if !use_.is_empty() {
            self.k_str("use", use_);
        }
        self.end();
    }

    /// `"name":[{"use":"official","family":..,"given":[..],"prefix":[prefix]}]`
    /// (`prefix` omitted when empty).
    pub(crate) fn k_official_name(&mut self, family: &str, given: &[&str], prefix: &str) {
        self.k_arr("name");
        self.obj();
        self.k_str("use", "official");
        self.k_str("family", family);
        self.k_arr("given");
        for g in given {
            self.str(g);
        }
        self.end_arr();
        if !prefix.is_empty() {
            self.k_arr("prefix");
            self.str(prefix);
            self.end_arr();
        }
        self.end();
        self.end_arr();
    }

    /// An Identifier with a `type` from `type_system`:
    /// `{"type":{"coding":[..],"text":display},"system":..,"value":..}`.
    pub(crate) fn typed_identifier(
        &mut self,
        type_system: &str,
        code: &str,
        display: &str,
        system: &str,
        value: &str,
    ) {
        self.obj();
        self.k_obj("type");
        self.k_arr("coding");
        self.coding(type_system, code, display);
        self.end_arr();
        self.k_str("text", display);
        self.end();
        self.k_str("system", system);
        self.k_str("value", value);
        self.end();
    }

    /// `"k":{"coding":[coding],"text":text}` (text omitted when empty).
    pub(crate) fn k_cc(&mut self, k: &str, system: &str, code: &str, display: &str, text: &str) {
        self.k_obj(k);
        self.cc_body(system, code, display, text);
        self.end();
    }

    /// A CodeableConcept as an array element.
    pub(crate) fn cc(&mut self, system: &str, code: &str, display: &str, text: &str) {
        self.obj();
        self.cc_body(system, code, display, text);
        self.end();
    }

    fn cc_body(&mut self, system: &str, code: &str, display: &str, text: &str) {
        self.k_arr("coding");
        self.coding(system, code, display);
        self.end_arr();
        if !text.is_empty() {
            self.k_str("text", text);
        }
    }

    /// `"k":[{"coding":[..],"text":..}]` — a one-element CodeableConcept list.
    pub(crate) fn k_cc_list(
        &mut self,
        k: &str,
        system: &str,
        code: &str,
        display: &str,
        text: &str,
    ) {
        self.k_arr(k);
        self.cc(system, code, display, text);
        self.end_arr();
    }

    /// A Reference object `{"reference":"Type/id","display":..}` (display omitted when empty).
    pub(crate) fn reference(&mut self, rtype: &str, id: &Id, display: &str) {
        self.obj();
        self.key("reference");
        self.sep();
        self.buf.push(b'"');
        self.buf.extend_from_slice(rtype.as_bytes());
        self.buf.push(b'/');
        self.buf.extend_from_slice(id.as_bytes());
        self.buf.push(b'"');
        self.comma = true;
        if !display.is_empty() {
            self.k_str("display", display);
        }
        self.end();
    }

    /// `"k":{"reference":"Type/id"}`
    pub(crate) fn k_ref(&mut self, k: &str, rtype: &str, id: &Id, display: &str) {
        self.key(k);
        self.reference(rtype, id, display);
    }

    /// `"k":[{"reference":"Type/id"}]`
    pub(crate) fn k_ref_list(&mut self, k: &str, rtype: &str, id: &Id, display: &str) {
        self.k_arr(k);
        self.reference(rtype, id, display);
        self.end_arr();
    }

    /// `"k":{"value":v,"unit":..,"system":UCUM,"code":..}`
    pub(crate) fn k_quantity(
        &mut self,
        k: &str,
        value: f64,
        decimals: u32,
        unit: &str,
        code: &str,
    ) {
        self.k_obj(k);
        self.key("value");
        self.fixed(value, decimals);
        self.k_str("unit", unit);
        self.k_str("system", UCUM);
        self.k_str("code", code);
        self.end();
    }

    /// `"k":{"value":12.34,"currency":"USD"}` from cents.
    pub(crate) fn k_money(&mut self, k: &str, cents: i64) {
        self.k_obj(k);
        self.key("value");
        self.sep();
        push_scaled(self.buf, cents, 2);
        self.comma = true;
        self.k_str("currency", "USD");
        self.end();
    }

    /// `"k":{"start":..,"end":..}`
    pub(crate) fn k_period(&mut self, k: &str, start: Secs, end: Secs, offset_min: i32) {
        self.k_obj(k);
        self.k_datetime("start", start, offset_min);
        self.k_datetime("end", end, offset_min);
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(f: impl FnOnce(&mut J)) -> String {
        let mut b = Vec::new();
        let mut j = J::new(&mut b);
        f(&mut j);
        String::from_utf8(b).unwrap_or_default()
    }

    #[test]
    fn escapes_like_serde_json() {
        for s in [
            "plain",
            "quote \" back \\ slash",
            "tab\tnl\ncr\r",
            "\u{1}\u{1f}\u{8}\u{c}",
            "José Muñoz – 😀",
            "",
        ] {
            let mut b = Vec::new();
            b.push(b'"');
            escape_into(&mut b, s);
            b.push(b'"');
            let back: String = serde_json::from_slice(&b).unwrap_or_else(|e| panic!("{e}: {s:?}"));
            assert_eq!(back, s);
            assert_eq!(
                String::from_utf8(b).unwrap_or_default(),
                serde_json::to_string(s).unwrap_or_default()
            );
        }
    }

    #[test]
    fn numbers() {
        let cases = [
            (1.0, 0, "1"),
            (176.349, 1, "176.3"),
            (0.05, 2, "0.05"),
            (-3.25, 1, "-3.3"),
            (12.0, 2, "12.00"),
            (0.004, 2, "0.00"),
            (7.5, 0, "8"),
        ];
        for (v, d, want) in cases {
            let mut b = Vec::new();
            push_fixed(&mut b, v, d);
            assert_eq!(String::from_utf8(b).unwrap_or_default(), want, "{v} {d}");
        }
        let mut b = Vec::new();
        push_scaled(&mut b, 12_345, 2);
        b.push(b' ');
        push_scaled(&mut b, 5, 2);
        b.push(b' ');
        push_scaled(&mut b, -105, 2);
        assert_eq!(
            String::from_utf8(b).unwrap_or_default(),
            "123.45 0.05 -1.05"
        );
    }

    #[test]
    fn writer_structure() {
        let mut ids = SplitMix64::new(9);
        let id = Id::next(&mut ids);
        let out = render(|j| {
            j.obj();
            j.k_str("resourceType", "Observation");
            j.k_id("id", &id);
            j.k_cc(
                "code",
                "http://loinc.org",
                "8302-2",
                "Body height",
                "Body height",
            );
            j.k_quantity("valueQuantity", 176.35, 1, "cm", "cm");
            j.k_ref("subject", "Patient", &id, "");
            j.k_arr("empty");
            j.end_arr();
            j.k_money("total", 12_050);
            j.k_bool("b", false);
            j.end();
        });
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        assert_eq!(v["code"]["coding"][0]["code"], "8302-2");
        assert_eq!(v["valueQuantity"]["value"].as_f64(), Some(176.4));
        assert_eq!(v["valueQuantity"]["system"], UCUM);
        assert_eq!(
            v["subject"]["reference"],
            format!("Patient/{}", id.as_str())
        );
        assert_eq!(v["total"]["value"].as_f64(), Some(120.5));
        assert_eq!(v["empty"].as_array().map(Vec::len), Some(0));
        let s = id.as_str();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"));
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'));
    }
}
