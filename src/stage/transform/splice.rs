//! Lossless editing of one JSON line that simd-json has already validated: a small scanner
//! that finds the byte spans of members and array elements, and a rewriting copy that builds
//! the edited text once into a reused buffer.
//!
//! Everything the edits do not touch is copied as the original bytes, so numbers keep their
//! text (`1.50`, `1e2`, `-0.0` stay as written; simd-json's tape holds them as f64 and must not
//! be re-serialized) and strings keep their escapes. Only objects on the way to an edit are
//! re-emitted (with `,` and `:` as separators, no other whitespace); members and elements
//! beside them are copied verbatim.

use std::borrow::Cow;
use std::ops::Range;

/// Index of the first non-whitespace byte at or after `i`.
pub fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    i
}

/// `s[i]` is the opening `"`; returns the index just past the closing one.
fn string_end(s: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < s.len() {
        match memchr::memchr2(b'"', b'\\', &s[i..]) {
            None => return s.len(),
            Some(p) => {
                i += p;
                if s[i] == b'\\' {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
        }
    }
    s.len()
}

/// `s[i]` starts a value; returns the index just past it.
pub fn value_end(s: &[u8], i: usize) -> usize {
    match s.get(i) {
        Some(b'"') => string_end(s, i),
        Some(b'{') | Some(b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while j < s.len() {
                match s[j] {
                    b'"' => {
                        j = string_end(s, j);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            s.len()
        }
        _ => {
            let mut j = i;
            while j < s.len() && !matches!(s[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n')
            {
                j += 1;
            }
            j
        }
    }
}

/// Where the next member or element starts: after whitespace and one `,`.
fn next_item(s: &[u8], i: usize) -> usize {
    let i = skip_ws(s, i);
    if i < s.len() && s[i] == b',' {
        skip_ws(s, i + 1)
    } else {
        i
    }
}

/// A member of an object: the key including its quotes, and the value.
#[derive(Debug, Clone)]
pub struct Member {
    /// `"key"` with quotes.
    pub key: Range<usize>,
    /// The value's bytes.
    pub value: Range<usize>,
}

/// The members of the object starting at `s[start] == '{'`, in order.
pub struct Members<'s> {
    s: &'s [u8],
    i: usize,
}

impl<'s> Members<'s> {
    /// Members of the object at `start`.
    pub fn new(s: &'s [u8], start: usize) -> Self {
        Members { s, i: start + 1 }
    }
}

impl Iterator for Members<'_> {
    type Item = Member;
    fn next(&mut self) -> Option<Member> {
        let s = self.s;
        let i = next_item(s, self.i);
        if i >= s.len() || s[i] != b'"' {
            self.i = s.len();
            return None;
        }
        let key_end = string_end(s, i);
        let colon = skip_ws(s, key_end);
        let v = skip_ws(s, colon + 1);
        let v_end = value_end(s, v);
        self.i = v_end;
        Some(Member {
            key: i..key_end,
            value: v..v_end,
        })
    }
}

/// The elements of the array starting at `s[start] == '['`, in order.
pub struct Elements<'s> {
    s: &'s [u8],
    i: usize,
}

impl<'s> Elements<'s> {
    /// Elements of the array at `start`.
    pub fn new(s: &'s [u8], start: usize) -> Self {
        Elements { s, i: start + 1 }
    }
}

impl Iterator for Elements<'_> {
    type Item = Range<usize>;
    fn next(&mut self) -> Option<Range<usize>> {
        let s = self.s;
        let i = next_item(s, self.i);
        if i >= s.len() || s[i] == b']' {
            self.i = s.len();
            return None;
        }
        let end = value_end(s, i);
        self.i = end;
        Some(i..end)
    }
}

/// The text of a JSON string given with its quotes, unescaped only when it has escapes.
pub fn decode(quoted: &[u8]) -> Cow<'_, str> {
    let inner = &quoted[1..quoted.len().saturating_sub(1).max(1)];
    if !inner.contains(&b'\\') {
        return String::from_utf8_lossy(inner);
    }
    // Rare: let serde_json do the unescaping (surrogate pairs included).
    match serde_json::from_slice::<String>(quoted) {
        Ok(s) => Cow::Owned(s),
        Err(_) => String::from_utf8_lossy(inner),
    }
}

/// Writes `s` as a JSON string.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Element paths to remove, as a tree of names. A leaf removes the element (and the `_name`
/// sibling holding a primitive's id and extensions); inner nodes are walked through objects
/// and every element of arrays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trie {
    children: Vec<(String, Trie)>,
    leaf: bool,
}

impl Trie {
    /// Adds a path of element names.
    pub fn insert(&mut self, path: &[&str]) {
        let Some((first, rest)) = path.split_first() else {
            self.leaf = true;
            return;
        };
        let pos = match self.children.iter().position(|(n, _)| n == first) {
            Some(p) => p,
            None => {
                self.children.push((first.to_string(), Trie::default()));
                self.children.len() - 1
            }
        };
        self.children[pos].1.insert(rest);
    }

    /// Nothing to remove.
    pub fn is_empty(&self) -> bool {
        self.children.is_empty() && !self.leaf
    }

    fn child(&self, name: &str) -> Option<&Trie> {
        self.children
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
    }
}

/// A tag to add to `meta.tag`, already rendered as JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// `system`, when given.
    pub system: Option<String>,
    /// `code`.
    pub code: String,
    /// The whole Coding as JSON text.
    pub json: Vec<u8>,
}

/// Gives the new text of a `reference` string, or `None` to keep it.
pub type ReferenceMap<'a> = &'a dyn Fn(&str) -> Option<String>;

/// What to change in one resource.
pub struct Edits<'a> {
    /// Element paths to remove (for this resource's type).
    pub remove: Option<&'a Trie>,
    /// New `meta.source`.
    pub meta_source: Option<&'a str>,
    /// Tags to add to `meta.tag` unless one with the same system and code is there.
    pub meta_tags: &'a [Tag],
    /// A new text for a `reference` string, or `None` to keep it. `None` here skips the walk.
    pub reference: Option<ReferenceMap<'a>>,
}

impl Edits<'_> {
    fn meta(&self) -> bool {
        self.meta_source.is_some() || !self.meta_tags.is_empty()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Root,
    Meta,
    Other,
}

struct Writer<'e, 'o> {
    e: &'e Edits<'e>,
    out: &'o mut Vec<u8>,
    changed: bool,
}

/// Rewrites the resource `s` (one JSON object) with `edits` into `out` (appended). Returns
/// whether anything changed; when not, `out` holds a copy that callers may discard.
pub fn rewrite(s: &[u8], edits: &Edits<'_>, out: &mut Vec<u8>) -> bool {
    let start = skip_ws(s, 0);
    let mut w = Writer {
        e: edits,
        out,
        changed: false,
    };
    w.object(s, start, edits.remove, Kind::Root);
    w.changed
}

impl Writer<'_, '_> {
    /// Copies the object at `s[start]`; returns true when removals left it empty.
    fn object(&mut self, s: &[u8], start: usize, trie: Option<&Trie>, kind: Kind) -> bool {
        self.out.push(b'{');
        let (mut kept, mut had) = (0usize, 0usize);
        let (mut saw_meta, mut saw_source, mut saw_tag) = (false, false, false);
        for m in Members::new(s, start) {
            had += 1;
            let key = decode(&s[m.key.clone()]);
            let name = key.strip_prefix('_').unwrap_or(&key);
            let child = trie.and_then(|t| t.child(name));
            if child.is_some_and(|c| c.leaf) {
                self.changed = true;
                continue;
            }
            let mark = self.out.len();
            if kept > 0 {
                self.out.push(b',');
            }
            self.out.extend_from_slice(&s[m.key.clone()]);
            self.out.push(b':');
            let v = m.value.clone();
            let first = s[v.start];
            let emptied = if kind == Kind::Meta && key == "source" && self.e.meta_source.is_some() {
                saw_source = true;
                self.replace_str(s, v, self.e.meta_source.unwrap_or_default());
                false
            } else if kind == Kind::Meta && key == "tag" && first == b'[' {
                saw_tag = true;
                self.tags(s, v);
                false
            } else if kind == Kind::Root && key == "meta" && first == b'{' && self.e.meta() {
                saw_meta = true;
                self.object(s, v.start, child, Kind::Meta)
            } else if key == "reference" && first == b'"' && self.e.reference.is_some() {
                let old = decode(&s[v.clone()]);
                match self.e.reference.and_then(|f| f(&old)) {
                    Some(new) => {
                        self.changed = true;
                        write_str(self.out, &new);
                    }
                    None => self.out.extend_from_slice(&s[v]),
                }
                false
            } else if child.is_some() || self.e.reference.is_some() {
                self.value(s, v, child)
            } else {
                self.out.extend_from_slice(&s[v]);
                false
            };
            if emptied {
                self.out.truncate(mark);
                self.changed = true;
            } else {
                kept += 1;
            }
        }
        if kind == Kind::Meta {
            if let (false, Some(src)) = (saw_source, self.e.meta_source) {
                self.sep(&mut kept);
                self.out.extend_from_slice(b"\"source\":");
                write_str(self.out, src);
                self.changed = true;
            }
            if !saw_tag && !self.e.meta_tags.is_empty() {
                self.sep(&mut kept);
                self.out.extend_from_slice(b"\"tag\":[");
                for (i, t) in self.e.meta_tags.iter().enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.out.extend_from_slice(&t.json);
                }
                self.out.push(b']');
                self.changed = true;
            }
        }
        if kind == Kind::Root && !saw_meta && self.e.meta() {
            self.sep(&mut kept);
            self.out.extend_from_slice(b"\"meta\":");
            self.object(b"{}", 0, None, Kind::Meta);
        }
        self.out.push(b'}');
        kept == 0 && had > 0
    }

    fn sep(&mut self, kept: &mut usize) {
        if *kept > 0 {
            self.out.push(b',');
        }
        *kept += 1;
    }

    /// Copies a value we may have to edit inside; returns true when removals emptied it.
    fn value(&mut self, s: &[u8], v: Range<usize>, trie: Option<&Trie>) -> bool {
        match s[v.start] {
            b'{' => self.object(s, v.start, trie, Kind::Other),
            b'[' => {
                self.out.push(b'[');
                let (mut kept, mut had) = (0usize, 0usize);
                for el in Elements::new(s, v.start) {
                    had += 1;
                    let mark = self.out.len();
                    if kept > 0 {
                        self.out.push(b',');
                    }
                    if self.value(s, el, trie) {
                        self.out.truncate(mark);
                    } else {
                        kept += 1;
                    }
                }
                self.out.push(b']');
                kept == 0 && had > 0
            }
            _ => {
                self.out.extend_from_slice(&s[v]);
                false
            }
        }
    }

    fn replace_str(&mut self, s: &[u8], v: Range<usize>, new: &str) {
        let at = self.out.len();
        write_str(self.out, new);
        if self.out[at..] != s[v] {
            self.changed = true;
        }
    }

    /// Copies the `meta.tag` array and appends the configured tags it lacks.
    fn tags(&mut self, s: &[u8], v: Range<usize>) {
        let mut present: Vec<(Option<String>, String)> = Vec::new();
        self.out.push(b'[');
        let mut n = 0;
        for el in Elements::new(s, v.start) {
            if n > 0 {
                self.out.push(b',');
            }
            n += 1;
            self.out.extend_from_slice(&s[el.clone()]);
            if s[el.start] == b'{' {
                let (mut sys, mut code) = (None, None);
                for m in Members::new(s, el.start) {
                    let k = decode(&s[m.key.clone()]);
                    if s[m.value.start] == b'"' {
                        let val = decode(&s[m.value.clone()]).into_owned();
                        match &*k {
                            "system" => sys = Some(val),
                            "code" => code = Some(val),
                            _ => {}
                        }
                    }
                }
                if let Some(code) = code {
                    present.push((sys, code));
                }
            }
        }
        for t in self.e.meta_tags {
            if !present
                .iter()
                .any(|(sys, c)| *c == t.code && *sys == t.system)
            {
                if n > 0 {
                    self.out.push(b',');
                }
                n += 1;
                self.out.extend_from_slice(&t.json);
                self.changed = true;
            }
        }
        self.out.push(b']');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trie(paths: &[&str]) -> Trie {
        let mut t = Trie::default();
        for p in paths {
            t.insert(&p.split('.').collect::<Vec<_>>());
        }
        t
    }

    fn run(s: &str, e: &Edits<'_>) -> (bool, String) {
        let mut out = Vec::new();
        let changed = rewrite(s.as_bytes(), e, &mut out);
        (changed, String::from_utf8(out).unwrap())
    }

    fn none() -> Edits<'static> {
        Edits {
            remove: None,
            meta_source: None,
            meta_tags: &[],
            reference: None,
        }
    }

    #[test]
    fn scanner_finds_members_and_elements_across_strings_and_whitespace() {
        let s = br#"{ "a" : "x\"}]," , "b":[1, {"c":"]"} ,-0.0], "d":1e2 }"#;
        let m: Vec<(String, String)> = Members::new(s, 0)
            .map(|m| {
                (
                    decode(&s[m.key]).into_owned(),
                    String::from_utf8(s[m.value].to_vec()).unwrap(),
                )
            })
            .collect();
        assert_eq!(
            m,
            vec![
                ("a".into(), r#""x\"}],""#.into()),
                ("b".into(), r#"[1, {"c":"]"} ,-0.0]"#.into()),
                ("d".into(), "1e2".into()),
            ]
        );
        let arr = br#"[1, {"c":"]"} ,-0.0]"#;
        let e: Vec<&[u8]> = Elements::new(arr, 0).map(|r| &arr[r]).collect();
        assert_eq!(e, vec![&b"1"[..], br#"{"c":"]"}"#, b"-0.0"]);
        assert_eq!(decode(br#""a\u0062\/c""#), "ab/c");
    }

    #[test]
    fn nothing_to_do_copies_and_reports_unchanged() {
        let s = r#"{"resourceType":"Observation","id":"o","valueQuantity":{"value":1.50}}"#;
        let t = trie(&["text"]);
        let e = Edits {
            remove: Some(&t),
            ..none()
        };
        assert_eq!(run(s, &e), (false, s.to_string()));
    }

    #[test]
    fn remove_keeps_number_and_string_text_and_drops_underscore_siblings() {
        let s = r#"{"resourceType":"Patient","id":"p","text":{"status":"generated","div":"<div/>"},"birthDate":"2000-01-01","_birthDate":{"extension":[{"url":"u","valueDecimal":1.50}]},"x":[1e2,-0.0,1.50],"name":[{"family":"Gr\u00fcn","period":{"start":"2000"}},{"period":{"end":"2001"}}]}"#;
        let t = trie(&["text", "birthDate", "name.period"]);
        let e = Edits {
            remove: Some(&t),
            ..none()
        };
        assert_eq!(
            run(s, &e),
            (
                true,
                r#"{"resourceType":"Patient","id":"p","x":[1e2,-0.0,1.50],"name":[{"family":"Gr\u00fcn"}]}"#
                    .to_string()
            )
        );
    }

    #[test]
    fn removal_that_empties_an_object_or_array_removes_it_too() {
        let s = r#"{"resourceType":"Patient","id":"p","name":[{"period":{"start":"2000"}}],"meta":{"security":[{"code":"x"}]}}"#;
        let t = trie(&["name.period", "meta.security"]);
        let e = Edits {
            remove: Some(&t),
            ..none()
        };
        assert_eq!(
            run(s, &e),
            (true, r#"{"resourceType":"Patient","id":"p"}"#.to_string())
        );
    }

    #[test]
    fn meta_source_and_tags_are_set_added_or_created() {
        let tag = Tag {
            system: Some("http://t".into()),
            code: "imported".into(),
            json: br#"{"system":"http://t","code":"imported"}"#.to_vec(),
        };
        let tags = [tag];
        let e = Edits {
            meta_source: Some("urn:src"),
            meta_tags: &tags,
            ..none()
        };
        // No meta yet: created at the end.
        assert_eq!(
            run(r#"{"resourceType":"Patient","id":"p","n":1.50}"#, &e).1,
            r#"{"resourceType":"Patient","id":"p","n":1.50,"meta":{"source":"urn:src","tag":[{"system":"http://t","code":"imported"}]}}"#
        );
        // Existing source replaced, existing tags kept, lastUpdated text untouched.
        assert_eq!(
            run(
                r#"{"resourceType":"Patient","id":"p","meta":{"lastUpdated":"2020-01-01T00:00:00.000+01:00","source":"old","tag":[{"code":"a"}]}}"#,
                &e
            )
            .1,
            r#"{"resourceType":"Patient","id":"p","meta":{"lastUpdated":"2020-01-01T00:00:00.000+01:00","source":"urn:src","tag":[{"code":"a"},{"system":"http://t","code":"imported"}]}}"#
        );
        // Already as wanted: unchanged.
        let same = r#"{"resourceType":"Patient","id":"p","meta":{"source":"urn:src","tag":[{"system":"http://t","code":"imported","display":"d"}]}}"#;
        assert_eq!(run(same, &e), (false, same.to_string()));
    }

    #[test]
    fn references_are_rewritten_everywhere_and_escapes_elsewhere_kept() {
        let f = |r: &str| r.strip_prefix("http://h/fhir/").map(str::to_string);
        let e = Edits {
            reference: Some(&f),
            ..none()
        };
        let s = r#"{"resourceType":"Observation","id":"o","subject":{"reference":"http:\/\/h\/fhir\/Patient\/1"},"note":[{"text":"caf\u00e9 \ud83d\ude00"}],"hasMember":[{"reference":"http://h/fhir/Observation/2","display":"x"},{"reference":"Observation/3"}],"valueQuantity":{"value":-0.0}}"#;
        assert_eq!(
            run(s, &e),
            (
                true,
                r#"{"resourceType":"Observation","id":"o","subject":{"reference":"Patient/1"},"note":[{"text":"caf\u00e9 \ud83d\ude00"}],"hasMember":[{"reference":"Observation/2","display":"x"},{"reference":"Observation/3"}],"valueQuantity":{"value":-0.0}}"#
                    .to_string()
            )
        );
    }
}
