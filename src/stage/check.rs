//! Parsing and the basic checks every line passes: valid UTF-8 JSON (simd-json, into a reused
//! tape), a JSON object, a known R4 `resourceType`, an `id` matching `[A-Za-z0-9\-\.]{1,64}`,
//! and `meta.versionId` / `meta.lastUpdated` of the right types (`lastUpdated` a FHIR instant).
//! Records are routed by type; failures become rejects with a reason; blank lines are counted.
//! At level `structure` a resource that passed is also validated against the R4 model on the
//! same tape (no second parse); one with errors becomes a reject carrying its OperationOutcome.
//! With a [`Transformer`] attached (`[transform]`), a resource that passed goes to it, still on
//! the same tape, and the transformer decides what the batch gets.

use crate::batch::{Batch, Chunk, FilterReason, Filtered, Record, Reject};
use crate::config::ValidateLevel;
use crate::fhir::validate::{OperationOutcome, Severity, Validator};
use crate::fhir::{is_valid_id, parse_instant_micros, resource_type_index, TypeIdx};
use crate::stage::transform::{Checked, Transformer};
use simd_json::prelude::*;
use simd_json::tape::Value;
use simd_json::{Buffers, Tape};

/// Per-worker parser state: scratch copy of the line, simd-json buffers and tape.
pub struct Checker {
    keep: Option<Vec<bool>>,
    validator: Option<Validator>,
    transform: Option<Transformer>,
    deid: Option<std::sync::Arc<crate::deid::Deidentifier>>,
    known: Option<std::sync::Arc<crate::deid::text::KnownIndex>>,
    scratch: Vec<u8>,
    buffers: Buffers,
    tape: Option<Tape<'static>>,
    /// Without a transform: the de-identified text of the chunk being checked, written as
    /// each line passes (it becomes the batch's text), and the stage's buffers.
    deid_out: Vec<u8>,
    deid_scratch: crate::deid::StageScratch,
    deid_prefix: String,
}

/// How a value looks, for messages.
fn kind(v: Value<'_, '_>) -> &'static str {
    if v.is_object() {
        "an object"
    } else if v.is_array() {
        "an array"
    } else if v.is_str() {
        "a string"
    } else if v.is_null() {
        "null"
    } else if v.is_bool() {
        "a boolean"
    } else {
        "a number"
    }
}

/// Cuts a user value for a message.
fn shown(s: &str) -> String {
    if s.chars().count() <= 80 {
        format!("{s:?}")
    } else {
        let cut: String = s.chars().take(77).collect();
        format!("{:?}...", cut)
    }
}

/// What the checks made of one resource.
pub(crate) enum Outcome {
    Ok {
        type_idx: TypeIdx,
        id: std::ops::Range<usize>,
        version_id: Option<std::ops::Range<usize>>,
        last_updated: Option<i64>,
    },
    Filtered(TypeIdx),
    Reject(String, Option<TypeIdx>, Option<Box<OperationOutcome>>),
}

impl Checker {
    /// A checker keeping only `types` (all when `None`); others are counted as filtered.
    pub fn new(types: Option<&[TypeIdx]>) -> Self {
        let keep = types.map(|t| {
            let mut v = vec![false; crate::fhir::RESOURCE_TYPES.len()];
            for &i in t {
                v[i as usize] = true;
            }
            v
        });
        Checker {
            keep,
            validator: None,
            transform: None,
            deid: None,
            known: None,
            scratch: Vec::new(),
            buffers: Buffers::new(64 * 1024),
            tape: Some(Tape::null().reset()),
            deid_out: Vec::new(),
            deid_scratch: Default::default(),
            deid_prefix: String::new(),
        }
    }

    /// Adds structure validation against the R4 model when `level` is `structure`.
    pub fn with_level(mut self, level: ValidateLevel) -> Self {
        self.validator = match level {
            ValidateLevel::Basic => None,
            ValidateLevel::Structure => Some(Validator::new()),
        };
        self
    }

    /// Runs the `[transform]` stage on every resource that passed the checks.
    pub fn with_transform(mut self, t: Option<Transformer>) -> Self {
        self.transform = t;
        self
    }

    /// Runs the `[deidentify]` stage on every resource that passed (after the transform).
    pub fn with_deidentify(mut self, d: Option<std::sync::Arc<crate::deid::Deidentifier>>) -> Self {
        self.deid = d;
        self
    }

    /// The known-PHI index of the run's first pass, for `[deidentify.text]`.
    pub fn with_known_phi(
        mut self,
        k: Option<std::sync::Arc<crate::deid::text::KnownIndex>>,
    ) -> Self {
        self.known = k;
        self
    }

    /// Parses and checks every line of a chunk.
    pub fn check(&mut self, chunk: Chunk) -> Batch {
        let input_bytes = chunk.data.len() as u64;
        if let Some(t) = self.transform.as_mut() {
            t.begin(chunk.seq);
        }
        let lines = chunk.rejects.len() as u64;
        let mut batch = Batch {
            seq: chunk.seq,
            file: chunk.file,
            data: Vec::new(),
            strings: String::new(),
            records: Vec::new(),
            rejects: chunk.rejects,
            filtered: Vec::new(),
            bundles_consumed: 0,
            lines,
            blank_lines: 0,
            input_bytes,
            pool: chunk.pool,
            text: Default::default(),
        };
        let mut data = chunk.data;
        // Without a transform, each line is de-identified as it passes its checks.
        let direct = self.transform.is_none() && self.deid.is_some();
        if let (Some(d), true) = (&self.deid, direct) {
            self.deid_prefix = crate::deid::scope_prefix(d, &batch.file.name);
            self.deid_out.clear();
            self.deid_out.reserve(data.len() + data.len() / 8);
        }
        let mut line_no = chunk.first_line;
        let mut start = 0usize;
        while start < data.len() {
            let end = memchr::memchr(b'\n', &data[start..])
                .map(|p| start + p)
                .unwrap_or(data.len());
            let mut line_end = end;
            while line_end > start && matches!(data[line_end - 1], b'\r' | b' ' | b'\t') {
                line_end -= 1;
            }
            let line = &data[start..line_end];
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                batch.blank_lines += 1;
            } else {
                batch.lines += 1;
                let mark = self.deid_out.len();
                match self.check_line(&data, start..line_end, line_no, &mut batch) {
                    None => {}
                    Some(Outcome::Ok {
                        type_idx,
                        id,
                        version_id,
                        last_updated,
                    }) => batch.records.push(Record {
                        type_idx,
                        line: line_no,
                        json: match direct {
                            true => mark..self.deid_out.len(),
                            false => start..line_end,
                        },
                        id,
                        version_id,
                        last_updated,
                        entry: None,
                    }),
                    Some(Outcome::Filtered(t)) => batch.filtered.push(Filtered {
                        type_idx: t,
                        reason: FilterReason::Type,
                        from_entry: false,
                    }),
                    Some(Outcome::Reject(reason, type_idx, outcome)) => {
                        batch.rejects.push(Reject {
                            outcome,
                            line: line_no,
                            text: line.to_vec(),
                            reason,
                            type_idx,
                            entry: None,
                        })
                    }
                }
            }
            line_no += 1;
            start = end + 1;
        }
        batch.rejects.sort_by_key(|r| r.line);
        if let Some(t) = self.transform.as_mut() {
            t.finish(&mut batch, &mut data);
        }
        if direct {
            // The outputs become the batch's text; the chunk's buffer is the next chunk's
            // output buffer.
            std::mem::swap(&mut data, &mut self.deid_out);
            self.deid_out.clear();
        } else if let Some(d) = &self.deid {
            crate::deid::deidentify_batch(d, self.known.as_deref(), &mut batch, &mut data);
        }
        batch.data = data;
        batch
    }

    /// Checks the line at `span` of `data`; `None` when the transform stage took the result
    /// into `batch` itself.
    fn check_line(
        &mut self,
        data: &[u8],
        span: std::ops::Range<usize>,
        line_no: u64,
        batch: &mut Batch,
    ) -> Option<Outcome> {
        let line = &data[span.clone()];
        let strings = &mut batch.strings;
        self.scratch.clear();
        self.scratch.extend_from_slice(line);
        self.scratch
            .resize(line.len() + simd_json::INPUT_PADDING, 0);
        let mut tape = match self.tape.take() {
            Some(t) => t.reset(),
            None => Tape::null().reset(),
        };
        let outcome = match simd_json::fill_tape_padded(
            &mut self.scratch,
            line.len(),
            &mut self.buffers,
            &mut tape,
        ) {
            Err(e) => {
                let reason = match std::str::from_utf8(line) {
                    Err(u) => format!("invalid UTF-8 at byte {}", u.valid_up_to()),
                    Ok(_) => format!("invalid JSON: {e}"),
                };
                Some(Outcome::Reject(reason, None, None))
            }
            Ok(()) => {
                let mark = strings.len();
                let mut outcome = examine(tape.as_value(), self.keep.as_deref(), strings);
                if let (Outcome::Ok { type_idx, .. }, Some(v)) = (&outcome, self.validator.as_mut())
                {
                    let type_idx = *type_idx;
                    v.validate_checked(tape.as_value(), type_idx);
                    if v.has_errors() {
                        strings.truncate(mark);
                        outcome = structure_reject(v, type_idx);
                    }
                }
                match (outcome, self.transform.as_mut()) {
                    (
                        Outcome::Ok {
                            type_idx,
                            id,
                            version_id,
                            last_updated,
                        },
                        Some(t),
                    ) => {
                        let checked = Checked {
                            type_idx,
                            id,
                            version_id,
                            last_updated,
                        };
                        t.line(data, span, tape.as_value(), checked, line_no, batch);
                        None
                    }
                    (Outcome::Ok { type_idx, .. }, None) if self.deid.is_some() => {
                        // De-identified on this tape; the original's id is not needed.
                        strings.truncate(mark);
                        let d = self.deid.as_deref()?;
                        let o = crate::deid::deidentify_one(
                            d,
                            self.known.as_deref(),
                            &self.deid_prefix,
                            Some((tape.as_value(), self.buffers.structural_indexes())),
                            line,
                            &mut self.deid_scratch,
                            &mut self.deid_out,
                            strings,
                            &mut batch.text,
                        );
                        Some(match o {
                            Outcome::Reject(m, _, _) => Outcome::Reject(m, Some(type_idx), None),
                            ok => ok,
                        })
                    }
                    (o, _) => Some(o),
                }
            }
        };
        self.tape = Some(tape.reset());
        outcome
    }
}

/// The reject of a resource that failed structure validation: the first error as the reason,
/// all issues as its OperationOutcome.
fn structure_reject(v: &Validator, type_idx: TypeIdx) -> Outcome {
    let issues = v.issues();
    let reason = issues
        .iter()
        .find(|i| i.severity == Severity::Error)
        .map(|i| i.message())
        .unwrap_or_default();
    Outcome::Reject(
        reason,
        Some(type_idx),
        Some(Box::new(OperationOutcome::new(issues))),
    )
}

/// The basic checks of one resource value (a line, or a Bundle entry's resource).
pub(crate) fn examine(v: Value<'_, '_>, keep: Option<&[bool]>, strings: &mut String) -> Outcome {
    if !v.is_object() {
        return Outcome::Reject(
            format!(
                "expected a JSON object (one resource per line), found {}",
                kind(v)
            ),
            None,
            None,
        );
    }
    let rt = match v.get("resourceType") {
        None => return Outcome::Reject("missing \"resourceType\"".into(), None, None),
        Some(rt) => match rt.into_string() {
            Some(s) => s,
            None => {
                return Outcome::Reject(
                    format!("\"resourceType\" must be a string, found {}", kind(rt)),
                    None,
                    None,
                )
            }
        },
    };
    let Some(type_idx) = resource_type_index(rt) else {
        return Outcome::Reject(format!("unknown R4 resourceType {}", shown(rt)), None, None);
    };
    if let Some(keep) = keep {
        if !keep[type_idx as usize] {
            return Outcome::Filtered(type_idx);
        }
    }
    let reject = |m: String| Outcome::Reject(m, Some(type_idx), None);
    let id = match v.get("id") {
        None => return reject(MISSING_ID.into()),
        Some(id) => match id.into_string() {
            Some(s) => match check_id(type_idx, s) {
                Ok(()) => s,
                Err(o) => return o,
            },
            None => return reject(format!("\"id\" must be a string, found {}", kind(id))),
        },
    };
    let mut version_id = None;
    let mut last_updated = None;
    if let Some(meta) = v.get("meta") {
        if !meta.is_object() {
            return reject(format!("\"meta\" must be an object, found {}", kind(meta)));
        }
        if let Some(vid) = meta.get("versionId") {
            match vid.into_string() {
                Some(s) => version_id = Some(s),
                None => {
                    return reject(format!(
                        "\"meta.versionId\" must be a string, found {}",
                        kind(vid)
                    ))
                }
            }
        }
        if let Some(lu) = meta.get("lastUpdated") {
            match lu.into_string() {
                Some(s) => match check_last_updated(type_idx, s) {
                    Ok(us) => last_updated = Some(us),
                    Err(o) => return o,
                },
                None => {
                    return reject(format!(
                        "\"meta.lastUpdated\" must be a string, found {}",
                        kind(lu)
                    ))
                }
            }
        }
    }
    head_ok(type_idx, id, version_id, last_updated, strings)
}

const MISSING_ID: &str = "missing \"id\"";

/// The check of a resource's `id` (a string).
fn check_id(type_idx: TypeIdx, s: &str) -> Result<(), Outcome> {
    match is_valid_id(s) {
        true => Ok(()),
        false => Err(Outcome::Reject(
            format!(
                "invalid id {}: an id is 1 to 64 characters from A-Z a-z 0-9 - .",
                shown(s)
            ),
            Some(type_idx),
            None,
        )),
    }
}

/// `meta.lastUpdated` (a string) in microseconds since the epoch.
fn check_last_updated(type_idx: TypeIdx, s: &str) -> Result<i64, Outcome> {
    parse_instant_micros(s).map_err(|e| {
        Outcome::Reject(
            format!(
                "\"meta.lastUpdated\" {} is not a FHIR instant: {e}",
                shown(s)
            ),
            Some(type_idx),
            None,
        )
    })
}

/// `Outcome::Ok` with the id and versionId copied into the batch's `strings`.
fn head_ok(
    type_idx: TypeIdx,
    id: &str,
    version_id: Option<&str>,
    last_updated: Option<i64>,
    strings: &mut String,
) -> Outcome {
    let push = |strings: &mut String, s: &str| {
        let a = strings.len();
        strings.push_str(s);
        a..strings.len()
    };
    let id = push(strings, id);
    let version_id = version_id.map(|s| push(strings, s));
    Outcome::Ok {
        type_idx,
        id,
        version_id,
        last_updated,
    }
}

/// [`examine`] of a resource's head given as its string values (`meta.versionId` and
/// `meta.lastUpdated` only when it has a `meta`): the same checks in the same order, with
/// the same messages, without a parse. The caller has checked `resourceType` and the JSON
/// types already.
pub(crate) fn examine_head(
    type_idx: TypeIdx,
    id: Option<&str>,
    version_id: Option<&str>,
    last_updated: Option<&str>,
    strings: &mut String,
) -> Outcome {
    let Some(id) = id else {
        return Outcome::Reject(MISSING_ID.into(), Some(type_idx), None);
    };
    if let Err(o) = check_id(type_idx, id) {
        return o;
    }
    let last_updated = match last_updated.map(|s| check_last_updated(type_idx, s)) {
        Some(Err(o)) => return o,
        Some(Ok(us)) => Some(us),
        None => None,
    };
    head_ok(type_idx, id, version_id, last_updated, strings)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an outcome says, for comparing two of them.
    fn said(o: Outcome, strings: &str) -> String {
        match o {
            Outcome::Ok {
                type_idx,
                id,
                version_id,
                last_updated,
            } => format!(
                "ok {type_idx} {} {:?} {last_updated:?}",
                &strings[id],
                version_id.map(|r| &strings[r])
            ),
            Outcome::Filtered(t) => format!("filtered {t}"),
            Outcome::Reject(m, t, _) => format!("reject {t:?} {m}"),
        }
    }

    /// Issue 6 item 7: a de-identified resource's head is checked from its values without a
    /// parse; the outcome must be what `examine` gives for the same head, messages included.
    #[test]
    fn issue_6_item_7_examine_head_agrees_with_examine() {
        let cases: [(Option<&str>, Option<&str>, Option<&str>); 7] = [
            (Some("a1"), Some("3"), Some("2024-01-02T03:04:05.123+01:00")),
            (Some("a1"), None, None),
            (None, Some("3"), None),
            (Some("bad id!"), None, Some("2024-01-02")),
            (Some(&"x".repeat(65)), None, None),
            (Some("a1"), None, Some("2024-01-02")),
            (Some("a1"), Some(""), Some("2024-13-02T00:00:00Z")),
        ];
        let ty = crate::fhir::resource_type_index("Observation").unwrap();
        for (id, vid, lu) in cases {
            let mut json = String::from(r#"{"resourceType":"Observation""#);
            if let Some(id) = id {
                json.push_str(&format!(",\"id\":{id:?}"));
            }
            if vid.is_some() || lu.is_some() {
                let mut meta = Vec::new();
                if let Some(v) = vid {
                    meta.push(format!("\"versionId\":{v:?}"));
                }
                if let Some(l) = lu {
                    meta.push(format!("\"lastUpdated\":{l:?}"));
                }
                json.push_str(&format!(",\"meta\":{{{}}}", meta.join(",")));
            }
            json.push('}');
            let mut buf = json.clone().into_bytes();
            let tape = simd_json::to_tape(&mut buf).unwrap();
            let mut s1 = String::new();
            let a = said(examine(tape.as_value(), None, &mut s1), &s1);
            let mut s2 = String::new();
            let b = said(examine_head(ty, id, vid, lu, &mut s2), &s2);
            assert_eq!(a, b, "{json}");
        }
    }

    fn run(text: &[u8], types: Option<&[TypeIdx]>) -> Batch {
        let mut c = Checker::new(types);
        c.check(Chunk::for_test(text.to_vec(), 10))
    }

    fn reasons(b: &Batch) -> Vec<(u64, String)> {
        b.rejects
            .iter()
            .map(|r| (r.line, r.reason.clone()))
            .collect()
    }

    #[test]
    fn accepts_resources_and_extracts_id_and_meta() {
        let b = run(
            b"{\"resourceType\":\"Patient\",\"id\":\"p1\",\"meta\":{\"versionId\":\"3\",\"lastUpdated\":\"2020-01-02T03:04:05.5Z\"}}\r\n{\"resourceType\":\"Observation\",\"id\":\"o.1-x\"}",
            None,
        );
        assert_eq!(b.records.len(), 2);
        assert!(b.rejects.is_empty());
        let p = &b.records[0];
        assert_eq!(crate::fhir::resource_type_name(p.type_idx), "Patient");
        assert_eq!(p.line, 10);
        assert_eq!(b.id(p), "p1");
        assert_eq!(b.version_id(p), Some("3"));
        assert_eq!(p.last_updated, Some(1_577_934_245_500_000));
        assert!(b.json(p).ends_with(b"}}"), "CR stripped");
        let o = &b.records[1];
        assert_eq!(o.line, 11);
        assert_eq!(b.id(o), "o.1-x");
        assert_eq!(b.version_id(o), None);
        assert_eq!(
            b.json(o),
            b"{\"resourceType\":\"Observation\",\"id\":\"o.1-x\"}"
        );
    }

    #[test]
    fn rejects_each_kind_of_bad_line_with_its_reason() {
        let text = b"{\"resourceType\":\"Patient\",\"id\":\"ok\"}\n\
{\"resourceType\":\"Patient\",\"id\":\"tr\n\
[{\"resourceType\":\"Patient\"}]\n\
{\"id\":\"x\"}\n\
{\"resourceType\":\"Pateint\",\"id\":\"x\"}\n\
{\"resourceType\":\"Patient\",\"id\":\"bad_id\"}\n\
\n\
   \n\
{\"resourceType\":\"Patient\",\"id\":\"\xff\xfe\"}\n\
{\"resourceType\":\"Patient\"}\n\
{\"resourceType\":7,\"id\":\"x\"}\n\
{\"resourceType\":\"Patient\",\"id\":\"m\",\"meta\":{\"lastUpdated\":\"2020-01-01\"}}\n\
{\"resourceType\":\"Patient\",\"id\":\"m\",\"meta\":[]}\n";
        let b = run(text, None);
        assert_eq!(b.records.len(), 1);
        assert_eq!(b.blank_lines, 2);
        let r = reasons(&b);
        assert_eq!(r.len(), 10, "{r:#?}");
        assert_eq!(r[0].0, 11);
        assert!(r[0].1.starts_with("invalid JSON: "), "{}", r[0].1);
        assert_eq!(
            r[1],
            (
                12,
                "expected a JSON object (one resource per line), found an array".into()
            )
        );
        assert_eq!(r[2], (13, "missing \"resourceType\"".into()));
        assert_eq!(r[3], (14, "unknown R4 resourceType \"Pateint\"".into()));
        assert_eq!(
            r[4],
            (
                15,
                "invalid id \"bad_id\": an id is 1 to 64 characters from A-Z a-z 0-9 - .".into()
            )
        );
        assert_eq!(r[5], (18, "invalid UTF-8 at byte 32".into()));
        assert_eq!(r[6], (19, "missing \"id\"".into()));
        assert_eq!(
            r[7],
            (
                20,
                "\"resourceType\" must be a string, found a number".into()
            )
        );
        assert_eq!(r[8], (21, "\"meta.lastUpdated\" \"2020-01-01\" is not a FHIR instant: expected 'T' between date and time".into()));
        assert_eq!(
            r[9],
            (22, "\"meta\" must be an object, found an array".into())
        );
        assert_eq!(
            b.rejects[5].text,
            b"{\"resourceType\":\"Patient\",\"id\":\"\xff\xfe\"}".to_vec()
        );
        assert_eq!(b.rejects[4].type_idx, resource_type_index("Patient"));
        assert_eq!(b.rejects[3].type_idx, None);
    }

    /// Issue 6 item 7: without a transform each line is de-identified on the check stage's
    /// own tape, and the batch holds exactly what the engine gives for the line alone.
    #[test]
    fn issue_6_item_7_lines_are_deidentified_on_the_check_tape() {
        let config = r#"{"fhirPathRules": [
            {"path": "Observation.id", "method": "redact"},
            {"path": "Resource.id", "method": "cryptoHash"},
            {"path": "nodesByType('dateTime')", "method": "dateShift"},
            {"path": "nodesByType('Reference').reference", "method": "cryptoHash"}
        ], "parameters": {"cryptoHashKey": "k", "dateShiftKey": "s"}}"#;
        let d = std::sync::Arc::new(
            crate::deid::Deidentifier::from_str("t.json", config, &|_| None).expect("config"),
        );
        let lines = [
            r#"{"resourceType":"Encounter","id":"e1","meta":{"versionId":"3"},"period":{"start":"2020-01-02T03:04:05Z"},"subject":{"reference":"Patient/p1"}}"#,
            "",
            "{not json",
            r#"{"resourceType":"Observation","id":"o1","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50}}"#,
            r#"{"resourceType":"Patient","id":"p1","name":[{"family":"Qé"}]}"#,
        ];
        let text = lines.join("\n");
        let mut c = Checker::new(None).with_deidentify(Some(d.clone()));
        let b = c.check(Chunk::for_test(text.into_bytes(), 1));
        let got: Vec<(u64, &[u8])> = b
            .records
            .iter()
            .map(|r| (r.line, &b.data[r.json.clone()]))
            .collect();
        let want = |i: usize| {
            d.deidentify_with(lines[i].as_bytes(), "t.ndjson", None)
                .expect("deid")
                .json
        };
        let (e, p) = (want(0), want(4));
        assert_eq!(got, vec![(1, &e[..]), (5, &p[..])]);
        // The batch's text is the outputs alone, one after another.
        assert_eq!(b.data, [&e[..], &p[..]].concat());
        let hashed = crate::deid::methods::hmac_hex("e1", "k");
        assert_eq!(&b.strings[b.records[0].id.clone()], hashed);
        assert_eq!(
            b.records[0].version_id.clone().map(|v| &b.strings[v]),
            Some("3")
        );
        // The Observation lost its id to a rule: rejected with the reason, original text kept.
        assert_eq!(
            reasons(&b),
            vec![
                (3, b.rejects[0].reason.clone()),
                (4, "after de-identification: missing \"id\"".to_string())
            ]
        );
        assert!(
            b.rejects[0].reason.starts_with("invalid JSON"),
            "{:?}",
            b.rejects[0].reason
        );
        assert_eq!(b.rejects[1].text, lines[3].as_bytes());
        assert_eq!(b.blank_lines, 1);
    }

    #[test]
    fn type_filter_counts_instead_of_writing() {
        let obs = resource_type_index("Observation").unwrap();
        let keep = [resource_type_index("Patient").unwrap()];
        let b = run(
            b"{\"resourceType\":\"Patient\",\"id\":\"a\"}\n{\"resourceType\":\"Observation\",\"id\":\"b\"}\n",
            Some(&keep),
        );
        assert_eq!(b.records.len(), 1);
        assert_eq!(
            b.filtered,
            vec![Filtered {
                type_idx: obs,
                reason: FilterReason::Type,
                from_entry: false
            }]
        );
    }

    #[test]
    fn escaped_strings_are_unescaped_in_extracted_values() {
        let b = run(
            b"{\"resourceType\":\"Patient\",\"id\":\"a\\u0062c\"}\n",
            None,
        );
        assert_eq!(b.id(&b.records[0]), "abc");
        assert_eq!(
            b.json(&b.records[0]),
            b"{\"resourceType\":\"Patient\",\"id\":\"a\\u0062c\"}"
        );
    }
}
