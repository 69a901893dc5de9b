//! The FHIR carriers of free text: plain strings (`Annotation.text`, markdown), XHTML
//! narrative (`text.div`: recognition in text nodes only, markup kept as written,
//! replacements escaped) and base64 attachment data (`text/plain` decoded, processed and
//! re-encoded; other content types left untouched and reported as skipped).

use base64::Engine as _;

use super::ops::{self, Policy, RedactFormat, Surrogates};
use super::{KnownPhi, PhiError, PhiType, Recognizer, Span};

/// What to do with recognised spans.
#[derive(Clone, Copy, Debug)]
pub enum Op<'a> {
    /// Report spans; leave the text as it is.
    Tag,
    /// Replace spans with a format.
    Redact(&'a RedactFormat),
    /// Replace spans with consistent surrogates.
    Surrogate(&'a Surrogates),
}

/// A recognizer with an operation and a policy: processes one carrier at a time.
#[derive(Clone, Copy, Debug)]
pub struct Processor<'a> {
    pub recognizer: &'a Recognizer,
    pub op: Op<'a>,
    pub policy: &'a Policy,
    /// Scope of date shifts (e.g. the patient id).
    pub scope: &'a str,
}

/// The result of processing one carrier.
#[derive(Clone, Debug, PartialEq)]
pub struct Processed {
    /// The new value; `None` when nothing changed (always with `Tag`).
    pub value: Option<String>,
    /// The spans found, in the carrier's own coordinates (bytes of the string as stored:
    /// the escaped XHTML, the decoded attachment text).
    pub spans: Vec<Span>,
}

/// An attachment's outcome.
#[derive(Clone, Debug, PartialEq)]
pub enum Attachment {
    /// `text/plain` data, processed; `value` holds the new base64 when it changed.
    Processed(Processed),
    /// Another content type (or none): data untouched.
    Skipped { content_type: Option<String> },
}

/// Counts of carriers processed, by kind, and spans by category.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CarrierStats {
    pub texts: u64,
    pub narratives: u64,
    pub attachments: u64,
    /// Attachments left untouched because their content type is not `text/plain`.
    pub attachments_skipped: u64,
    /// Spans found per category (index `PhiType as usize`).
    pub spans: [u64; 15],
}

impl CarrierStats {
    /// Counts the spans of one carrier.
    pub fn add_spans(&mut self, spans: &[Span]) {
        for s in spans {
            self.spans[s.kind as usize] += 1;
        }
    }

    /// Spans found of `kind`.
    pub fn spans_of(&self, kind: PhiType) -> u64 {
        self.spans[kind as usize]
    }

    /// Adds another set of counts.
    pub fn merge(&mut self, o: &CarrierStats) {
        self.texts += o.texts;
        self.narratives += o.narratives;
        self.attachments += o.attachments;
        self.attachments_skipped += o.attachments_skipped;
        for (a, b) in self.spans.iter_mut().zip(o.spans) {
            *a += b;
        }
    }
}

impl Processor<'_> {
    fn apply(&self, text: &str, spans: &[Span]) -> Option<String> {
        let out = match self.op {
            Op::Tag => return None,
            Op::Redact(f) => ops::redact(text, spans, f, self.policy),
            Op::Surrogate(s) => ops::surrogate(text, spans, s, self.policy, self.scope),
        };
        (out != text).then_some(out)
    }

    /// A plain string: `Annotation.text`, a markdown or string element.
    pub fn text(&self, text: &str, known: &KnownPhi) -> Processed {
        let spans = self.recognizer.find(text, known);
        Processed {
            value: self.apply(text, &spans),
            spans,
        }
    }

    /// Attachment `data` (base64) of `content_type`: only `text/plain` (any parameters, such
    /// as `; charset=utf-8`) is decoded, processed and re-encoded.
    pub fn attachment(
        &self,
        content_type: Option<&str>,
        data: &str,
        known: &KnownPhi,
    ) -> Result<Attachment, PhiError> {
        let plain = content_type.is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/plain"))
        });
        if !plain {
            return Ok(Attachment::Skipped {
                content_type: content_type.map(str::to_string),
            });
        }
        let engine = base64::engine::general_purpose::STANDARD;
        let bytes = engine
            .decode(data.trim())
            .map_err(|e| PhiError::Base64(e.to_string()))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| PhiError::NotUtf8(e.utf8_error().valid_up_to()))?;
        let p = self.text(&text, known);
        Ok(Attachment::Processed(Processed {
            value: p.value.map(|v| engine.encode(v)),
            spans: p.spans,
        }))
    }

    /// An XHTML narrative (`text.div`). Text nodes are unescaped, recognised and processed
    /// one by one; tags, attributes, comments and CDATA sections are copied as written, and
    /// replacements are escaped, so well-formed input stays well-formed. A name split across
    /// elements (`<b>Ann</b> Lee`) is seen as two text nodes.
    pub fn xhtml(&self, div: &str, known: &KnownPhi) -> Result<Processed, PhiError> {
        let b = div.as_bytes();
        let mut out = String::with_capacity(div.len());
        let mut spans = Vec::new();
        let mut changed = false;
        let mut i = 0;
        let mut node = String::new();
        let mut map: Vec<usize> = Vec::new();
        while i < b.len() {
            if b[i] == b'<' {
                let end = markup_end(div, i)?;
                out.push_str(&div[i..end]);
                i = end;
                continue;
            }
            let end = memchr::memchr(b'<', &b[i..]).map_or(b.len(), |p| i + p);
            let raw = &div[i..end];
            unescape(raw, i, &mut node, &mut map)?;
            let found = self.recognizer.find(&node, known);
            // Span offsets back to the escaped source.
            spans.extend(found.iter().map(|s| Span {
                start: map[s.start],
                end: map[s.end],
                ..*s
            }));
            match self.apply(&node, &found) {
                Some(v) => {
                    changed = true;
                    escape(&v, &mut out);
                }
                None => out.push_str(raw),
            }
            i = end;
        }
        Ok(Processed {
            value: changed.then_some(out),
            spans,
        })
    }
}

/// The end of the markup starting at `i` (`<`): a tag (quoted attribute values may hold
/// `>`), a comment, a CDATA section or a processing instruction.
fn markup_end(s: &str, i: usize) -> Result<usize, PhiError> {
    let rest = &s[i..];
    let find = |pat: &str, reason| {
        rest.find(pat)
            .map(|p| i + p + pat.len())
            .ok_or(PhiError::Xhtml { offset: i, reason })
    };
    if rest.starts_with("<!--") {
        return find("-->", "comment without -->");
    }
    if rest.starts_with("<![CDATA[") {
        return find("]]>", "CDATA section without ]]>");
    }
    if rest.starts_with("<?") {
        return find("?>", "processing instruction without ?>");
    }
    let mut quote = None;
    for (k, c) in rest.bytes().enumerate().skip(1) {
        match (quote, c) {
            (None, b'"' | b'\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, b'>') => return Ok(i + k + 1),
            (None, b'<') => {
                return Err(PhiError::Xhtml {
                    offset: i + k,
                    reason: "'<' inside a tag",
                })
            }
            _ => {}
        }
    }
    Err(PhiError::Xhtml {
        offset: i,
        reason: "tag without '>'",
    })
}

/// Unescapes the text node `raw` (at `base` in the source) into `out`; `map[k]` is the
/// source offset of `out`'s byte k (plus one entry for the end).
fn unescape(
    raw: &str,
    base: usize,
    out: &mut String,
    map: &mut Vec<usize>,
) -> Result<(), PhiError> {
    out.clear();
    map.clear();
    let mut i = 0;
    let b = raw.as_bytes();
    while i < b.len() {
        if b[i] == b'&' {
            let semi = raw[i..].find(';').ok_or(PhiError::Xhtml {
                offset: base + i,
                reason: "'&' without ';'",
            })?;
            let ent = &raw[i + 1..i + semi];
            let c = match ent {
                "amp" => '&',
                "lt" => '<',
                "gt" => '>',
                "quot" => '"',
                "apos" => '\'',
                "nbsp" => '\u{a0}',
                _ => {
                    let n = if let Some(h) = ent.strip_prefix("#x").or(ent.strip_prefix("#X")) {
                        u32::from_str_radix(h, 16).ok()
                    } else if let Some(d) = ent.strip_prefix('#') {
                        d.parse().ok()
                    } else {
                        None
                    };
                    n.and_then(char::from_u32).ok_or(PhiError::Xhtml {
                        offset: base + i,
                        reason: "unknown character reference",
                    })?
                }
            };
            let before = out.len();
            out.push(c);
            map.extend(std::iter::repeat_n(base + i, out.len() - before));
            i += semi + 1;
        } else {
            let c = raw[i..].chars().next().unwrap_or('\u{fffd}');
            let n = c.len_utf8();
            out.push(c);
            map.extend((0..n).map(|k| base + i + k));
            i += n;
        }
    }
    map.push(base + raw.len());
    Ok(())
}

fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> KnownPhi {
        let mut k = KnownPhi::new();
        k.add_name("Janet Bailey");
        k
    }

    #[test]
    fn xhtml_text_nodes_only_markup_kept_and_escaped() {
        let rec = Recognizer::new();
        let f = RedactFormat::parse("<{TYPE}>").unwrap_or_default();
        let pol = Policy::default();
        let p = Processor {
            recognizer: &rec,
            op: Op::Redact(&f),
            policy: &pol,
            scope: "",
        };
        let div =
            "<div xmlns=\"http://www.w3.org/1999/xhtml\" title=\"a>b\"><p>Janet Bailey &amp; \
                   <b>Bailey</b>, seen 2016-03-09</p><!-- Janet --></div>";
        let r = p.xhtml(div, &known()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            r.value.as_deref(),
            Some(
                "<div xmlns=\"http://www.w3.org/1999/xhtml\" title=\"a>b\"><p>&lt;NAME&gt; &amp; \
                 <b>&lt;NAME&gt;</b>, seen &lt;DATE&gt;</p><!-- Janet --></div>"
            )
        );
        let texts: Vec<_> = r.spans.iter().map(|s| &div[s.start..s.end]).collect();
        assert_eq!(texts, ["Janet Bailey", "Bailey", "2016-03-09"]);
        let bad = p.xhtml("<div><p>x</div", &known()).unwrap_err();
        assert_eq!(
            bad.to_string(),
            "narrative XHTML is malformed at byte 9: tag without '>'"
        );
    }

    #[test]
    fn entities_map_spans_to_source_offsets() {
        let rec = Recognizer::new();
        let pol = Policy::default();
        let p = Processor {
            recognizer: &rec,
            op: Op::Tag,
            policy: &pol,
            scope: "",
        };
        let div = "<div>O&#39;Brien &amp; Janet&#x20;Bailey</div>";
        let r = p.xhtml(div, &known()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.value, None);
        let texts: Vec<_> = r.spans.iter().map(|s| &div[s.start..s.end]).collect();
        assert_eq!(texts, ["Janet&#x20;Bailey"]);
    }

    #[test]
    fn attachments_plain_text_processed_others_skipped() {
        let rec = Recognizer::new();
        let pol = Policy::default();
        let f = RedactFormat::default();
        let p = Processor {
            recognizer: &rec,
            op: Op::Redact(&f),
            policy: &pol,
            scope: "",
        };
        let e = base64::engine::general_purpose::STANDARD;
        let data = e.encode("Janet Bailey, DOB 05/02/1964.");
        match p.attachment(Some("text/plain; charset=utf-8"), &data, &known()) {
            Ok(Attachment::Processed(r)) => {
                let v = r.value.unwrap_or_default();
                assert_eq!(e.decode(v).unwrap_or_default(), b"[NAME], DOB [DATE].");
                assert_eq!(r.spans.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            p.attachment(Some("application/pdf"), "JVBERi0=", &known()),
            Ok(Attachment::Skipped {
                content_type: Some("application/pdf".into())
            })
        );
        assert_eq!(
            p.attachment(Some("text/plain"), "***", &known()),
            Err(PhiError::Base64("Invalid symbol 42, offset 0.".into()))
        );
        assert_eq!(
            p.attachment(Some("text/plain"), &e.encode([0x41, 0xff]), &known()),
            Err(PhiError::NotUtf8(1))
        );
    }
}
