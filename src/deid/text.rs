//! Free text in de-identification (issue 6 item 4): `[deidentify.text]` of a pipeline, or
//! `fhirpipe deid --text OP`. Owns [`TextDeid`] (the PHI recognizer of `src/phi/` with the
//! operation, redaction format, policy and surrogate key of a run), the [`KnownIndex`] (the
//! names, addresses, telecom and identifiers of the input's Patient, RelatedPerson,
//! Practitioner and Organization resources, by reference, built by a first pass) and
//! [`TextSpans`] (what the `tag` operation reports).
//!
//! The carriers are `Narrative.div`, `Annotation.text` and `Attachment.data` with a
//! `text/plain` content type, as they are after the structured rules (a rule that removed a
//! carrier wins). A resource's known PHI is the union of the index entries of every resource
//! it references (as written in the input, before any rule hashed them) and of itself, so a
//! note finds its patient's, the patient's relatives', its author's and its custodian's
//! names whatever the wording. A carrier that cannot be read (malformed XHTML, base64 that
//! does not decode, text that is not UTF-8) is a processing error: it is never passed
//! through unexamined.

use std::collections::HashMap;

use crate::phi::carriers::{Attachment, CarrierStats, Op, Processor};
use crate::phi::{
    KnownPhi, PhiConfig, PhiError, PhiOperation, Policy, Recognizer, RedactFormat, Span, Surrogates,
};

/// The resource types the known-PHI index is built from.
pub const KNOWN_TYPES: [&str; 4] = ["Patient", "RelatedPerson", "Practitioner", "Organization"];

/// The free-text settings of a run, checked; `Send + Sync`.
pub struct TextDeid {
    recognizer: Recognizer,
    op: PhiOperation,
    format: RedactFormat,
    policy: Policy,
    surrogates: Option<Surrogates>,
    /// Whether a [`KnownIndex`] is built from the input (`known = true`, the default).
    pub known: bool,
}

impl std::fmt::Debug for TextDeid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextDeid")
            .field("op", &self.op)
            .field("known", &self.known)
            .finish()
    }
}

/// Why `[deidentify.text]` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TextConfigError {
    /// A category or the format is wrong.
    #[error(transparent)]
    Phi(#[from] PhiError),
    /// `surrogate` without a key.
    #[error("operation \"surrogate\" needs a key: set FHIRPIPE_DEID_TEXT_KEY, or cryptoHashKey in the anonymizer configuration")]
    NoKey,
}

impl TextDeid {
    /// Checks `cfg`; `secret` keys the surrogates (required for `surrogate`).
    pub fn new(cfg: &PhiConfig, secret: Option<&[u8]>) -> Result<Self, TextConfigError> {
        let surrogates = match (cfg.operation, secret) {
            (PhiOperation::Surrogate, None) => return Err(TextConfigError::NoKey),
            (PhiOperation::Surrogate, Some(b"")) => return Err(TextConfigError::NoKey),
            (PhiOperation::Surrogate, Some(k)) => Some(Surrogates::new(k, cfg.max_date_shift_days)),
            _ => None,
        };
        Ok(TextDeid {
            recognizer: Recognizer::new(),
            op: cfg.operation,
            format: cfg.redact_format()?,
            policy: cfg.policy()?,
            surrogates,
            known: cfg.known,
        })
    }

    /// [`TextDeid::new`] for a run of `d`: the surrogate key is `FHIRPIPE_DEID_TEXT_KEY` (read
    /// with `env`), else the configuration's `cryptoHashKey`.
    pub fn for_run(
        cfg: &PhiConfig,
        params: &crate::deid::Parameters,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, TextConfigError> {
        let key = env("FHIRPIPE_DEID_TEXT_KEY")
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| params.crypto_hash_key.expose().to_string());
        Self::new(cfg, (!key.is_empty()).then_some(key.as_bytes()))
    }

    /// The operation.
    pub fn operation(&self) -> PhiOperation {
        self.op
    }

    /// A processor for one resource; `scope` is the patient id (surrogate date shifts).
    pub(crate) fn processor<'a>(&'a self, scope: &'a str) -> Processor<'a> {
        let op = match (self.op, &self.surrogates) {
            (PhiOperation::Tag, _) => Op::Tag,
            (PhiOperation::Redact, _) => Op::Redact(&self.format),
            (PhiOperation::Surrogate, Some(s)) => Op::Surrogate(s),
            // `new` refuses surrogate without a key.
            (PhiOperation::Surrogate, None) => Op::Redact(&self.format),
        };
        Processor {
            recognizer: &self.recognizer,
            op,
            policy: &self.policy,
            scope,
        }
    }
}

/// One carrier's spans (the `tag` operation's report): the element's FHIRPath-like location
/// (`DocumentReference.content[0].attachment.data`) and the spans in its text (for an
/// attachment, the decoded text).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TextSpans {
    /// Where the text is.
    pub element: String,
    /// What was found.
    pub spans: Vec<Span>,
}

/// What free-text processing did to one resource.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TextOutcome {
    /// Carriers and spans counted.
    pub stats: CarrierStats,
    /// The spans per carrier (kept for `tag` only).
    pub spans: Vec<TextSpans>,
}

/// Known PHI by reference (`Patient/123`): each Patient, RelatedPerson, Practitioner and
/// Organization of the input, a RelatedPerson's also under its patient. Memory grows with
/// the number of those resources (a few hundred bytes each), not with the rest of the input.
#[derive(Debug, Default)]
pub struct KnownIndex {
    map: HashMap<String, KnownPhi>,
    resources: u64,
}

impl KnownIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one resource (other types are ignored; a Bundle's entries are taken).
    pub fn add(&mut self, r: &serde_json::Value) {
        let rtype = r["resourceType"].as_str().unwrap_or("");
        if rtype == "Bundle" {
            for e in r["entry"].as_array().into_iter().flatten() {
                self.add(&e["resource"]);
            }
            return;
        }
        if !KNOWN_TYPES.contains(&rtype) {
            return;
        }
        let Some(id) = r["id"].as_str() else { return };
        let mut k = KnownPhi::new();
        k.add_resource(r);
        self.resources += 1;
        if rtype == "RelatedPerson" {
            if let Some(p) = r["patient"]["reference"].as_str() {
                self.map.entry(p.to_string()).or_default().merge(&k);
            }
        }
        self.map
            .entry(format!("{rtype}/{id}"))
            .or_default()
            .merge(&k);
    }

    /// Takes one NDJSON line (or JSON document); `false` when it is not JSON (it is left to
    /// the main pass to dead-letter).
    pub fn add_json(&mut self, text: &[u8]) -> bool {
        match serde_json::from_slice::<serde_json::Value>(text) {
            Ok(v) => {
                self.add(&v);
                true
            }
            Err(_) => false,
        }
    }

    /// The entry of `reference` (`Patient/1`, or a URL ending in `Patient/1`, or
    /// `Patient/1/_history/2`).
    pub fn get(&self, reference: &str) -> Option<&KnownPhi> {
        if let Some(k) = self.map.get(reference) {
            return Some(k);
        }
        let (ty, id) = crate::fhir::reference_type_id(reference)?;
        self.map.get(&format!("{ty}/{id}"))
    }

    /// Resources taken.
    pub fn resources(&self) -> u64 {
        self.resources
    }

    /// Entries (references with known PHI).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing was taken.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Runs `p` on one carrier: `Ok(Some(new))` when the text changed.
pub(crate) fn process_carrier(
    p: &Processor<'_>,
    kind: Carrier<'_>,
    text: &str,
    known: &KnownPhi,
    out: &mut TextOutcome,
    element: impl FnOnce() -> String,
) -> Result<Option<String>, PhiError> {
    let processed = match kind {
        Carrier::Narrative => {
            out.stats.narratives += 1;
            p.xhtml(text, known)?
        }
        Carrier::Text => {
            out.stats.texts += 1;
            p.text(text, known)
        }
        Carrier::Attachment(ct) => match p.attachment(ct, text, known)? {
            Attachment::Processed(x) => {
                out.stats.attachments += 1;
                x
            }
            Attachment::Skipped { .. } => {
                out.stats.attachments_skipped += 1;
                return Ok(None);
            }
        },
    };
    out.stats.add_spans(&processed.spans);
    if matches!(p.op, Op::Tag) && !processed.spans.is_empty() {
        out.spans.push(TextSpans {
            element: element(),
            spans: processed.spans,
        });
    }
    Ok(processed.value)
}

/// The kinds of free-text carriers.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Carrier<'a> {
    /// `Narrative.div` (XHTML).
    Narrative,
    /// `Annotation.text`.
    Text,
    /// `Attachment.data` with this content type.
    Attachment(Option<&'a str>),
}

/// The report's form of [`CarrierStats`]: carriers by kind, spans by category label.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct TextReport {
    /// `tag`, `redact` or `surrogate`.
    pub operation: String,
    /// `text.div` narratives examined.
    pub narratives: u64,
    /// `Annotation.text` values examined.
    pub texts: u64,
    /// `text/plain` attachments examined.
    pub attachments: u64,
    /// Attachments left as they are (another content type).
    pub attachments_skipped: u64,
    /// Spans found per category (NAME, DATE, ...), only categories seen.
    pub spans: std::collections::BTreeMap<String, u64>,
    /// Resources in the known-PHI index (absent when `known = false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub known_resources: Option<u64>,
}

impl TextReport {
    /// An empty report for `op`.
    pub fn new(op: PhiOperation) -> Self {
        TextReport {
            operation: op.name().into(),
            ..Default::default()
        }
    }

    /// Adds one resource's counts.
    pub fn add(&mut self, s: &CarrierStats) {
        self.narratives += s.narratives;
        self.texts += s.texts;
        self.attachments += s.attachments;
        self.attachments_skipped += s.attachments_skipped;
        for t in crate::phi::PhiType::ALL {
            let n = s.spans_of(t);
            if n > 0 {
                *self.spans.entry(t.label().to_string()).or_default() += n;
            }
        }
    }

    /// Spans found in all.
    pub fn total_spans(&self) -> u64 {
        self.spans.values().sum()
    }

    /// The summary line: `free text (redact): 3 narratives, ... 12 PHI spans: DATE 4, NAME 8`.
    pub fn summary_line(&self) -> String {
        let spans: Vec<String> = self.spans.iter().map(|(k, n)| format!("{k} {n}")).collect();
        format!(
            "free text ({}): {} narratives, {} annotations, {} text/plain attachments ({} others left), {} PHI spans{}{}\n",
            self.operation,
            self.narratives,
            self.texts,
            self.attachments,
            self.attachments_skipped,
            self.total_spans(),
            if spans.is_empty() {
                String::new()
            } else {
                format!(": {}", spans.join(", "))
            },
            self.known_resources
                .map(|n| format!("; known PHI from {n} resources"))
                .unwrap_or_default()
        )
    }
}
