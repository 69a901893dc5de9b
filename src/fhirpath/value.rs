//! What expressions evaluate to: collections of [`Item`]s, each either a borrowed JSON node of the
//! resource (with its FHIR type name when known, and the `_element` sibling holding a
//! primitive's id and extensions) or a computed value. Also the JSON printing of results.

use super::decimal::Decimal;
use super::quantity::calendar_to_ucum;
use super::temporal::{Kind, Temporal};
use simd_json::prelude::*;
use std::borrow::Cow;
use std::fmt::Write as _;

/// A JSON value inside a parsed resource (a view into the simd-json tape).
pub type Json<'a> = simd_json::tape::Value<'a, 'a>;

/// A node of the resource.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    /// The JSON value; `None` for a primitive that only has an `_element` (id, extensions).
    pub value: Option<Json<'a>>,
    /// The `_element` object of a primitive.
    pub ext: Option<Json<'a>>,
    /// The FHIR type name, `""` when unknown.
    pub ty: &'a str,
}

/// One item of a collection.
#[derive(Debug, Clone)]
pub enum Item<'a> {
    /// A node of the resource.
    Node(Node<'a>),
    /// `System.Boolean`.
    Bool(bool),
    /// `System.Integer`.
    Int(i64),
    /// `System.Decimal`.
    Dec(Decimal),
    /// `System.String`.
    Str(Cow<'a, str>),
    /// `System.Date`, `System.DateTime`, `System.Time`.
    Temporal(Temporal),
    /// `System.Quantity`: value and unit (UCUM code or calendar word).
    Quantity(Decimal, Cow<'a, str>),
    /// The result of `type()`: namespace and name.
    Type(&'static str, Cow<'a, str>),
}

/// A collection.
pub type Items<'a> = Vec<Item<'a>>;

/// The identity of a tape value: `simd_json::tape::Value` is a view of a slice of the tape, and
/// its two words (pointer, length) name that position uniquely. The engine's FHIRPath results
/// carry such views, so a result is matched to its element by this key. The size check below
/// keeps the assumption honest if simd-json ever adds a field.
pub fn tape_key(v: &Json<'_>) -> [usize; 2] {
    const _: () = assert!(std::mem::size_of::<Json<'static>>() == 2 * std::mem::size_of::<usize>());
    // SAFETY: `Json` is `Copy`, has exactly the size of two words (checked at compile time) and
    // is a fat reference with no padding, so every byte is initialised.
    unsafe { std::mem::transmute_copy::<Json<'_>, [usize; 2]>(v) }
}

/// The texts of the numbers of a JSON document, in document order.
pub fn number_texts(bytes: &[u8]) -> Vec<&str> {
    NumberScan::new(bytes).collect()
}

/// The texts of the numbers of a JSON document, in document order, found as they are asked
/// for: a walk that needs the text of its first few numbers (or none) scans only up to them.
pub struct NumberScan<'a> {
    bytes: &'a [u8],
    at: usize,
    /// The parser's structural indexes of `bytes`, when the caller has them: every scalar
    /// starts at one, so numbers are found without reading the strings in between.
    structurals: Option<&'a [u32]>,
}

impl<'a> NumberScan<'a> {
    /// Starts at the document's first byte.
    pub fn new(bytes: &'a [u8]) -> Self {
        NumberScan {
            bytes,
            at: 0,
            structurals: None,
        }
    }

    /// Starts at the document's first byte, using simd-json's structural indexes of it
    /// (`Buffers::structural_indexes` after the parse of `bytes`).
    pub fn with_structurals(bytes: &'a [u8], structurals: &'a [u32]) -> Self {
        NumberScan {
            bytes,
            at: 0,
            structurals: Some(structurals),
        }
    }

    fn number_at(&mut self, s: usize) -> &'a str {
        let bytes = self.bytes;
        let mut i = s;
        while i < bytes.len() && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
        {
            i += 1;
        }
        std::str::from_utf8(&bytes[s..i]).unwrap_or("0")
    }
}

impl<'a> Iterator for NumberScan<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if let Some(ix) = self.structurals {
            // `at` counts structural indexes here.
            while let Some(&p) = ix.get(self.at) {
                self.at += 1;
                let p = p as usize;
                if matches!(self.bytes.get(p), Some(b'-' | b'0'..=b'9')) {
                    return Some(self.number_at(p));
                }
            }
            return None;
        }
        let bytes = self.bytes;
        let mut i = self.at;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => {
                    // Skip the string (long ones are notes and base64: memchr, not byte by byte).
                    i += 1;
                    loop {
                        match memchr::memchr2(b'"', b'\\', bytes.get(i..).unwrap_or(&[])) {
                            None => {
                                i = bytes.len();
                                break;
                            }
                            Some(p) if bytes[i + p] == b'"' => {
                                i += p;
                                break;
                            }
                            Some(p) => i += p + 2,
                        }
                    }
                    i += 1;
                }
                b'-' | b'0'..=b'9' => {
                    let n = self.number_at(i);
                    self.at = i + n.len().max(1);
                    return Some(n);
                }
                _ => i += 1,
            }
        }
        self.at = i;
        None
    }
}

thread_local! {
    /// The decimal literals of the resource being evaluated, by tape value (see
    /// [`with_number_literals`]); `None` outside it.
    static LITERALS: std::cell::RefCell<Option<crate::util::hash::FastMap<[usize; 2], Decimal>>> =
        const { std::cell::RefCell::new(None) };
}

fn collect_numbers(
    v: Json<'_>,
    texts: &mut std::slice::Iter<'_, &str>,
    map: &mut crate::util::hash::FastMap<[usize; 2], Decimal>,
    seen: &mut usize,
) {
    if let Some(o) = v.as_object() {
        for (_, x) in o.iter() {
            collect_numbers(x, texts, map, seen);
        }
    } else if let Some(a) = v.as_array() {
        for x in a.iter() {
            collect_numbers(x, texts, map, seen);
        }
    } else if v.is_i64() || v.is_u64() || v.is_f64() {
        *seen += 1;
        let text = texts.next();
        if v.is_f64() {
            if let Some(d) = text.and_then(|t| Decimal::parse(t)) {
                map.insert(tape_key(&v), d);
            }
        }
    }
}

/// Runs `f` with the decimal literals of `raw` — the JSON text whose tape `root` is — known
/// to the evaluation, so a decimal keeps the precision it is written with (`1.0` has one
/// decimal place; the tape holds the f64 1). Used where the text is at hand (views); without
/// it a decimal's precision is the shortest form of its f64. When the numbers of the text and
/// the tape do not pair up one to one, nothing is used.
pub fn with_number_literals<R>(root: Json<'_>, raw: &[u8], f: impl FnOnce() -> R) -> R {
    let texts = number_texts(raw);
    let mut it = texts.as_slice().iter();
    let mut map = crate::util::hash::FastMap::default();
    let mut seen = 0;
    collect_numbers(root, &mut it, &mut map, &mut seen);
    let ok = seen == texts.len() && !map.is_empty();
    LITERALS.with(|l| *l.borrow_mut() = ok.then_some(map));
    let r = f();
    LITERALS.with(|l| *l.borrow_mut() = None);
    r
}

fn json_number(v: Json<'_>) -> Option<Item<'static>> {
    if let Some(i) = v.as_i64() {
        return Some(Item::Int(i));
    }
    if let Some(u) = v.as_u64() {
        return Some(Item::Dec(Decimal::new(u as i128, 0)));
    }
    let literal = LITERALS.with(|l| {
        l.borrow()
            .as_ref()
            .and_then(|m| m.get(&tape_key(&v)).cloned())
    });
    if let Some(d) = literal {
        return Some(Item::Dec(d));
    }
    v.as_f64().and_then(Decimal::from_f64).map(Item::Dec)
}

impl<'a> Node<'a> {
    /// The primitive value as a computed item (by FHIR type where known), or the Quantity of a
    /// Quantity-shaped object; `None` for other objects and arrays.
    pub fn primitive(&self) -> Option<Item<'a>> {
        let v = self.value?;
        if let Some(s) = v.into_string() {
            let t = match self.ty {
                "date" => Temporal::parse_date(s).or_else(|| Temporal::parse_datetime(s, false)),
                "dateTime" | "instant" => Temporal::parse_datetime(s, false),
                "time" => Temporal::parse_time(s),
                _ => None,
            };
            return Some(t.map_or(Item::Str(Cow::Borrowed(s)), Item::Temporal));
        }
        if let Some(b) = v.as_bool() {
            return Some(Item::Bool(b));
        }
        if v.is_object() {
            if self.ty == "Quantity"
                || crate::fhirpath::types::is_subtype(
                    &crate::fhirpath::types::Fallback,
                    self.ty,
                    "Quantity",
                )
            {
                let value = v.get("value").and_then(json_number)?;
                let value = match value {
                    Item::Int(i) => Decimal::from_int(i),
                    Item::Dec(d) => d,
                    _ => return None,
                };
                let unit = v
                    .get("code")
                    .or_else(|| v.get("unit"))
                    .and_then(|u| u.into_string())
                    .unwrap_or("1");
                return Some(Item::Quantity(value, Cow::Borrowed(unit)));
            }
            return None;
        }
        if v.is_array() || v.is_null() {
            return None;
        }
        match json_number(v)? {
            Item::Int(i) if self.ty == "decimal" => Some(Item::Dec(Decimal::from_int(i))),
            other => Some(other),
        }
    }
}

impl<'a> Item<'a> {
    /// A node of the resource with a known or unknown type.
    pub fn node(value: Json<'a>, ty: &'a str) -> Self {
        Item::Node(Node {
            value: Some(value),
            ext: None,
            ty,
        })
    }

    /// The value seen as a System type: primitives of nodes are converted, complex nodes stay.
    pub fn prim(&self) -> Cow<'_, Item<'a>> {
        match self {
            Item::Node(n) => match n.primitive() {
                Some(p) => Cow::Owned(p),
                None => Cow::Borrowed(self),
            },
            _ => Cow::Borrowed(self),
        }
    }

    /// The text of a string item (or a string node).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Item::Str(s) => Some(s),
            Item::Node(n) => n.value.and_then(|v| v.into_string()),
            _ => None,
        }
    }

    /// The JSON object of a node.
    pub fn object(&self) -> Option<Json<'a>> {
        match self {
            Item::Node(Node { value: Some(v), .. }) if v.is_object() => Some(*v),
            _ => None,
        }
    }

    /// `(namespace, name)` of the item's type.
    pub fn type_name(&self) -> (&'static str, &str) {
        match self {
            Item::Node(n) => {
                // A backbone element's type is named by its path in the model
                // (`Patient.contact`); FHIRPath sees its base type.
                if let Some((root, _)) = n.ty.split_once('.') {
                    return if crate::fhir::resource_type_index(root).is_some() {
                        ("FHIR", "BackboneElement")
                    } else {
                        ("FHIR", "Element")
                    };
                }
                if !n.ty.is_empty() {
                    return ("FHIR", n.ty);
                }
                match n.value {
                    Some(v) if v.is_str() => ("FHIR", "string"),
                    Some(v) if v.is_bool() => ("FHIR", "boolean"),
                    Some(v) if v.as_i64().is_some() => ("FHIR", "integer"),
                    Some(v) if v.as_f64().is_some() => ("FHIR", "decimal"),
                    _ => ("FHIR", "Element"),
                }
            }
            Item::Bool(_) => ("System", "Boolean"),
            Item::Int(_) => ("System", "Integer"),
            Item::Dec(_) => ("System", "Decimal"),
            Item::Str(_) => ("System", "String"),
            Item::Temporal(t) => (
                "System",
                match t.kind {
                    Kind::Date => "Date",
                    Kind::DateTime => "DateTime",
                    Kind::Time => "Time",
                },
            ),
            Item::Quantity(..) => ("System", "Quantity"),
            Item::Type(..) => ("System", "Object"),
        }
    }

    /// Appends the item as JSON.
    pub fn write_json(&self, out: &mut String) {
        match self {
            Item::Node(n) => match n.value {
                Some(v) => write_value(v, out),
                None => match n.ext {
                    Some(e) => write_value(e, out),
                    None => out.push_str("null"),
                },
            },
            Item::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Item::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Item::Dec(d) => {
                let _ = write!(out, "{d}");
            }
            Item::Str(s) => write_str(s, out),
            Item::Temporal(t) => write_str(&t.to_string(), out),
            Item::Quantity(v, u) => {
                let code = calendar_to_ucum(u);
                if code == "year" || code == "month" {
                    let _ = write!(out, "{{\"value\":{v},\"unit\":");
                    write_str(u, out);
                } else {
                    let _ = write!(out, "{{\"value\":{v},\"unit\":");
                    write_str(u, out);
                    out.push_str(",\"system\":\"http://unitsofmeasure.org\",\"code\":");
                    write_str(code, out);
                }
                out.push('}');
            }
            Item::Type(ns, name) => {
                let _ = write!(out, "{{\"namespace\":\"{ns}\",\"name\":");
                write_str(name, out);
                out.push('}');
            }
        }
    }
}

/// Appends a JSON string literal.
pub fn write_str(s: &str, out: &mut String) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

/// Appends a JSON value of the tape.
pub fn write_value(v: Json<'_>, out: &mut String) {
    if let Some(o) = v.as_object() {
        out.push('{');
        for (i, (k, x)) in o.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_str(k, out);
            out.push(':');
            write_value(x, out);
        }
        out.push('}');
    } else if let Some(a) = v.as_array() {
        out.push('[');
        for (i, x) in a.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_value(x, out);
        }
        out.push(']');
    } else if let Some(s) = v.into_string() {
        write_str(s, out);
    } else if let Some(b) = v.as_bool() {
        out.push_str(if b { "true" } else { "false" });
    } else if let Some(i) = v.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = v.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(d) = v.as_f64().and_then(Decimal::from_f64) {
        let _ = write!(out, "{d}");
    } else {
        out.push_str("null");
    }
}

/// A collection as a JSON array.
pub fn to_json(items: &[Item<'_>]) -> String {
    let mut out = String::from("[");
    for (i, it) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        it.write_json(&mut out);
    }
    out.push(']');
    out
}

/// Deep equality of two JSON values (numbers by value).
pub fn json_equal(a: Json<'_>, b: Json<'_>) -> bool {
    if let (Some(x), Some(y)) = (a.as_object(), b.as_object()) {
        return x.len() == y.len()
            && x.iter()
                .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)));
    }
    if let (Some(x), Some(y)) = (a.as_array(), b.as_array()) {
        return x.len() == y.len() && x.iter().zip(y.iter()).all(|(v, w)| json_equal(v, w));
    }
    if let (Some(x), Some(y)) = (a.as_str(), b.as_str()) {
        return x == y;
    }
    match (json_number(a), json_number(b)) {
        (Some(x), Some(y)) => numeric(&x) == numeric(&y),
        _ => a.as_bool().is_some() && a.as_bool() == b.as_bool() || (a.is_null() && b.is_null()),
    }
}

/// An Int or Dec as a decimal.
pub fn numeric(i: &Item<'_>) -> Option<Decimal> {
    match i {
        Item::Int(v) => Some(Decimal::from_int(*v)),
        Item::Dec(d) => Some(*d),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::number_texts;

    #[test]
    fn number_texts_skip_strings_with_escapes_and_keep_written_digits() {
        let json = br#"{"a":"x\"1\\","b":[1.50,-2e3],"c":"\\","d":0,"e":"7"}"#;
        assert_eq!(number_texts(json), ["1.50", "-2e3", "0"]);
        // An unterminated string holds no numbers.
        assert_eq!(number_texts(br#"{"a":1,"b":"2 3"#), ["1"]);
        assert_eq!(number_texts(br#"{"a":"\"#), Vec::<&str>::new());
    }

    /// Issue 6 item 7: the number texts read off simd-json's structural indexes are those of
    /// the byte scan (strings holding digits, escapes, exponents, negative zero, nesting).
    #[test]
    fn number_texts_from_structural_indexes_match_the_scan() {
        let docs: [&[u8]; 4] = [
            br#"{"a":1.50,"b":"x 2 \" 3","c":[-0,1e5,2E-3,{"d":-12.0}],"e":true,"f":null}"#,
            br#"{"resourceType":"Observation","valueQuantity":{"value":98.60},"note":"12"}"#,
            b"{ \"a\" : [ 1 , 2 ] , \"b\" : 0.000 }",
            br#"{"s":"no numbers \u0031"}"#,
        ];
        for doc in docs {
            let mut buf = doc.to_vec();
            buf.resize(doc.len() + simd_json::INPUT_PADDING, 0);
            let mut buffers = simd_json::Buffers::new(64);
            let mut tape = simd_json::Tape::null().reset();
            simd_json::fill_tape_padded(&mut buf, doc.len(), &mut buffers, &mut tape)
                .expect("valid JSON");
            let from_ix: Vec<&str> =
                super::NumberScan::with_structurals(doc, buffers.structural_indexes()).collect();
            assert_eq!(
                from_ix,
                number_texts(doc),
                "{}",
                String::from_utf8_lossy(doc)
            );
        }
        let mut buf = docs[0].to_vec();
        buf.resize(docs[0].len() + simd_json::INPUT_PADDING, 0);
        let mut buffers = simd_json::Buffers::new(64);
        let mut tape = simd_json::Tape::null().reset();
        simd_json::fill_tape_padded(&mut buf, docs[0].len(), &mut buffers, &mut tape).unwrap();
        let got: Vec<&str> =
            super::NumberScan::with_structurals(docs[0], buffers.structural_indexes()).collect();
        assert_eq!(got, ["1.50", "-0", "1e5", "2E-3", "-12.0"]);
    }
}
