//! De-identification with Microsoft FHIR anonymizer rules (issue 6): the configuration format
//! read unchanged (`config`), the editable element tree (`tree`), the methods' value
//! transformations (`methods`) and here the engine that applies the rules to one resource with
//! the reference's semantics: rules in order per resource (contained and bundled resources are
//! processed as resources of their own), the first rule that touches a node wins, `keep`
//! shields a subtree, emptied nodes are pruned, and `meta.security` labels record what was done.
//!
//! Free text (`text.div`, `Annotation.text`, `text/plain` attachments) goes, after the rules,
//! through the PHI text recognizer of `src/phi/` when the run has [`text::TextDeid`] settings.

pub mod config;
mod error;
pub mod methods;
mod stage;
mod stream;
pub mod text;
pub mod tree;

pub(crate) use stage::deidentify_one;
pub use stage::{deidentify_batch, scope_prefix, Scratch as StageScratch};

pub use config::{DateShiftScope, Parameters, Secret};
pub use error::{ConfigError, DeidError};

use crate::fhirpath::{Env, Expression, Item, R4TypeInfo, TypeInfo};
use methods::Ymd;
use simd_json::prelude::*;
use tree::{is_primitive, El, Id, Prim, Tree};

/// What was done to a resource, as the anonymizer's process records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ops(u8);

impl Ops {
    /// redact removed a value.
    pub const REDACT: Ops = Ops(1);
    /// partial redact (ZIP code) kept part of a value.
    pub const ABSTRACT: Ops = Ops(2);
    /// cryptoHash.
    pub const CRYPTO_HASH: Ops = Ops(4);
    /// encrypt.
    pub const ENCRYPT: Ops = Ops(8);
    /// dateShift, perturb.
    pub const PERTURB: Ops = Ops(16);
    /// substitute.
    pub const SUBSTITUTE: Ops = Ops(32);
    /// generalize.
    pub const GENERALIZE: Ops = Ops(64);

    /// Whether every flag of `o` is set.
    pub fn has(self, o: Ops) -> bool {
        self.0 & o.0 == o.0 && o.0 != 0
    }
    /// Whether nothing was done.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOrAssign for Ops {
    fn bitor_assign(&mut self, o: Ops) {
        self.0 |= o.0;
    }
}

const OBS: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

/// The labels, in the order the reference adds them: (flag, system, code, display).
const LABELS: [(Ops, Option<&str>, &str, &str); 7] = [
    (Ops::REDACT, Some(OBS), "REDACTED", "redacted"),
    (Ops::ABSTRACT, Some(OBS), "ABSTRED", "abstracted"),
    (
        Ops::CRYPTO_HASH,
        Some(OBS),
        "CRYTOHASH",
        "cryptographic hash function",
    ),
    (
        Ops::ENCRYPT,
        None,
        "ENCRYPT",
        "exact value is transformed into ciphertext",
    ),
    (
        Ops::PERTURB,
        None,
        "PERTURBED",
        "exact value is replaced with another exact value",
    ),
    (
        Ops::SUBSTITUTE,
        None,
        "SUBSTITUTED",
        "exact value is replaced with a predefined value",
    ),
    (
        Ops::GENERALIZE,
        None,
        "GENERALIZED",
        "exact value is replaced with a general value",
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Keep,
    Redact,
    DateShift,
    CryptoHash,
    Encrypt,
    Substitute,
    Perturb,
    Generalize,
}

#[derive(Debug, Clone)]
enum Select {
    /// `nodesByType('T')` / `nodesByType('T').name` (the reference's fast path).
    ByType(String, Option<String>),
    /// `nodesByName('n')` / `nodesByName('n').name`.
    ByName(String, Option<String>),
    /// The path is just the resource type (`Resource`, `Patient`): the resource itself.
    Resource,
    /// Any other FHIRPath, evaluated on the resource.
    Path(Expression),
}

#[derive(Debug, Clone)]
struct Rule {
    path: String,
    resource_type: String,
    select: Select,
    method: Method,
    replace_with: Option<serde_json::Value>,
    cases: Vec<(Expression, Expression)>,
    other_values_keep: bool,
    span: f64,
    proportional: bool,
    round_to: u32,
}

/// A loaded configuration, ready to de-identify resources (`Send + Sync`).
pub struct Deidentifier {
    rules: Vec<Rule>,
    params: Parameters,
    skip_errors: bool,
    types: R4TypeInfo,
    today: Ymd,
    /// The HMAC state keyed once with `cryptoHashKey` (cloned per value).
    hash_key: methods::HashKey,
    /// Free-text settings (`[deidentify.text]`); `None`: free text is left to the rules.
    pub text: Option<text::TextDeid>,
    /// The rules compiled for the streaming engine, when they allow it (`stream`).
    plan: Option<stream::Plan>,
}

impl std::fmt::Debug for Deidentifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deidentifier")
            .field("rules", &self.rules.len())
            .field("params", &self.params)
            .finish()
    }
}

/// One de-identified resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The resource as compact JSON.
    pub json: Vec<u8>,
    /// The resource type.
    pub resource_type: &'static str,
    /// What was done (across contained and bundled resources).
    pub ops: Ops,
    /// A processing error was skipped (`processingErrors = "skip"`): `json` is the empty
    /// resource with the REDACTED label.
    pub skipped: Option<String>,
    /// What free-text processing found (empty without [`Deidentifier::text`]).
    pub text: text::TextOutcome,
    /// From the streaming engine: the output's `resourceType`, `id`, `meta.versionId` and
    /// `meta.lastUpdated` as a small JSON object, so the pipeline stage reads them without
    /// parsing the whole output again; `None` from the tree engine.
    pub head: Option<Vec<u8>>,
}

/// `Patient.x` → resource type `Patient`, expression `x` (the reference's split); a path that
/// starts in lower case has no resource type.
fn split_path(path: &str) -> (String, String) {
    match path.chars().next() {
        Some(c) if c.is_ascii_uppercase() => {
            let end = path
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(path.len());
            let rest = path[end..].strip_prefix('.').unwrap_or(&path[end..]);
            (path[..end].to_string(), rest.to_string())
        }
        _ => (String::new(), path.to_string()),
    }
}

fn split_selector(path: &str, func: &str) -> Option<(String, Option<String>)> {
    let rest = path.strip_prefix(func)?.strip_prefix('(')?;
    let q = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let rest = &rest[1..];
    let end = rest.find(q)?;
    let key = &rest[..end];
    let tail = rest[end + 1..].strip_prefix(')')?;
    let alnum = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric());
    if !alnum(key) {
        return None;
    }
    match tail {
        "" => Some((key.to_string(), None)),
        t => {
            let name = t.strip_prefix('.')?;
            alnum(name).then(|| (key.to_string(), Some(name.to_string())))
        }
    }
}

impl Deidentifier {
    /// Loads a configuration file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_str(&path.display().to_string(), &text, &|v| {
            std::env::var(v).ok()
        })
    }

    /// Loads a configuration from its text; `name` is used in errors, `env` resolves variables.
    pub fn from_str(
        name: &str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let raw = config::parse_raw(name, text)?;
        let invalid = |message: String| ConfigError::Invalid {
            path: name.to_string(),
            message,
        };
        match raw.fhir_version.as_deref() {
            None | Some("") | Some("R4") | Some("r4") => {}
            Some(v) => {
                return Err(invalid(format!(
                    "fhirVersion is '{v}'; fhirpipe reads R4 (use \"R4\" or \"\")"
                )))
            }
        }
        let skip_errors = match raw
            .processing_errors
            .as_deref()
            .map(str::to_ascii_lowercase)
        {
            None => false,
            Some(s) if s == "raise" => false,
            Some(s) if s == "skip" => true,
            Some(s) => {
                return Err(invalid(format!(
                    "processingErrors is '{s}'; use raise or skip"
                )))
            }
        };
        let params = Parameters::from_raw(name, raw.parameters.unwrap_or_default(), env)?;
        let mut rules = Vec::new();
        for (i, r) in raw.fhir_path_rules.into_iter().enumerate() {
            let at = format!("fhirPathRules[{i}] (path {:?})", r.path);
            let method = match r.method.to_ascii_lowercase().as_str() {
                "keep" => Method::Keep,
                "redact" => Method::Redact,
                "dateshift" => Method::DateShift,
                "cryptohash" => Method::CryptoHash,
                "encrypt" => Method::Encrypt,
                "substitute" => Method::Substitute,
                "perturb" => Method::Perturb,
                "generalize" => Method::Generalize,
                m => {
                    return Err(invalid(format!(
                        "{at}: unknown method '{m}'; use keep, redact, dateShift, cryptoHash, encrypt, substitute, perturb or generalize"
                    )))
                }
            };
            let path = r.path.trim().to_string();
            let (resource_type, expr) = split_path(&path);
            let select =
                if let Some((t, n)) = split_selector(&path, "nodesByType") {
                    Select::ByType(t, n)
                } else if let Some((t, n)) = split_selector(&path, "nodesByName") {
                    Select::ByName(t, n)
                } else if expr.is_empty() {
                    Select::Resource
                } else {
                    Select::Path(Expression::parse(&expr).map_err(|e| {
                        invalid(format!("{at}: the path is not valid FHIRPath: {e}"))
                    })?)
                };
            let mut cases = Vec::new();
            if method == Method::Generalize {
                let Some(c) = &r.cases else {
                    return Err(invalid(format!("{at}: generalize needs \"cases\"")));
                };
                for (k, v) in &c.0 {
                    let ck = Expression::parse(k)
                        .map_err(|e| invalid(format!("{at}: case condition {k:?}: {e}")))?;
                    let cv = Expression::parse(v)
                        .map_err(|e| invalid(format!("{at}: case value {v:?}: {e}")))?;
                    cases.push((ck, cv));
                }
            }
            let other_values_keep = match r.other_values.as_deref().map(str::to_ascii_lowercase) {
                None => false,
                Some(s) if s == "redact" => false,
                Some(s) if s == "keep" => true,
                Some(s) => {
                    return Err(invalid(format!(
                        "{at}: otherValues is '{s}'; use redact or keep"
                    )))
                }
            };
            let num = |v: &Option<serde_json::Value>| -> Option<f64> {
                match v {
                    Some(serde_json::Value::Number(n)) => n.as_f64(),
                    Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
                    _ => None,
                }
            };
            let (mut span, mut round_to) = (0.0, 2);
            if method == Method::Perturb {
                span = match num(&r.span) {
                    Some(s) if s >= 0.0 => s,
                    _ => {
                        return Err(invalid(format!(
                            "{at}: perturb needs \"span\", a number ≥ 0"
                        )))
                    }
                };
                if r.round_to.is_some() {
                    round_to = match num(&r.round_to) {
                        Some(n) if (0.0..=28.0).contains(&n) && n.fract() == 0.0 => n as u32,
                        _ => {
                            return Err(invalid(format!(
                                "{at}: roundTo must be an integer from 0 to 28"
                            )))
                        }
                    };
                }
            }
            let proportional = match r.range_type.as_deref().map(str::to_ascii_lowercase) {
                None => false,
                Some(s) if s == "fixed" => false,
                Some(s) if s == "proportional" => true,
                Some(s) => {
                    return Err(invalid(format!(
                        "{at}: rangeType is '{s}'; use fixed or proportional"
                    )))
                }
            };
            if method == Method::Encrypt
                && ![16, 24, 32].contains(&params.encrypt_key.expose().len())
            {
                return Err(invalid(format!(
                    "{at}: encrypt needs parameters.encryptKey of 16, 24 or 32 bytes (AES-128/192/256); it has {} bytes",
                    params.encrypt_key.expose().len()
                )));
            }
            if method == Method::Substitute && r.replace_with.is_none() {
                // The reference substitutes with an empty value; keep that.
            }
            rules.push(Rule {
                path,
                resource_type,
                select,
                method,
                replace_with: r.replace_with,
                cases,
                other_values_keep,
                span,
                proportional,
                round_to,
            });
        }
        Ok(Deidentifier {
            plan: stream::Plan::compile(&rules),
            rules,
            hash_key: methods::HashKey::new(params.crypto_hash_key.expose()),
            params,
            skip_errors,
            types: R4TypeInfo::new(),
            today: methods::today_utc(),
            text: None,
        })
    }

    /// Sets the date "today" for the age-over-89 rule (tests).
    pub fn with_today(mut self, today: Ymd) -> Self {
        self.today = today;
        self
    }

    /// Turns the streaming engine off: every resource goes through the element tree (for
    /// comparing the engines; the output is the same).
    pub fn with_tree_engine(mut self) -> Self {
        self.plan = None;
        self
    }

    /// Whether the rules compiled for the streaming engine.
    pub fn streams(&self) -> bool {
        self.plan.is_some()
    }

    /// The streaming engine alone: `None` when the rules or this resource need the tree
    /// engine (which [`Deidentifier::deidentify_with`] then uses).
    #[doc(hidden)]
    pub fn deidentify_streamed(
        &self,
        text: &[u8],
        scope_prefix: &str,
        known: Option<&text::KnownIndex>,
    ) -> Option<Output> {
        stream::run(self, self.plan.as_ref()?, text, scope_prefix, known)
    }

    /// How many rules the configuration has.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// The checked parameters (keys print as `***`).
    pub fn parameters(&self) -> &Parameters {
        &self.params
    }

    /// De-identifies one resource given as JSON text. `scope_prefix` is the file or folder
    /// name when `dateShiftScope` is `file` or `folder` (ignored for `resource`).
    pub fn deidentify(&self, text: &[u8], scope_prefix: &str) -> Result<Output, DeidError> {
        self.deidentify_with(text, scope_prefix, None)
    }

    /// [`Deidentifier::deidentify`] with the known PHI of the input for free text (`known`:
    /// the index of the run's first pass; `None`, or settings with `known = false`, finds
    /// PHI from the text and the resource itself only).
    pub fn deidentify_with(
        &self,
        text: &[u8],
        scope_prefix: &str,
        known: Option<&text::KnownIndex>,
    ) -> Result<Output, DeidError> {
        if let Some(out) = self.deidentify_streamed(text, scope_prefix, known) {
            return Ok(out);
        }
        let mut buf = text.to_vec();
        let tape = simd_json::to_tape(&mut buf)
            .map_err(|e| DeidError::Invalid(format!("invalid JSON: {e}")))?;
        let root = tape.as_value();
        if !root.is_object() {
            return Err(DeidError::Invalid("not a JSON object".into()));
        }
        let (mut tree, resources) = Tree::build(root, text, &self.types)?;
        let resource_type = tree.els[0].ty;
        // With scope `resource` the prefix is the root resource's id as it is when the date
        // is shifted (after an earlier cryptoHash rule, the hashed id), as in the reference.
        let prefix = match self.params.date_shift_scope {
            DateShiftScope::Resource => None,
            _ => Some(scope_prefix.to_string()),
        };
        // Free text: the references as written in the input (rules may hash them).
        let pre = self
            .text
            .as_ref()
            .filter(|_| has_carriers(&tree))
            .map(|t| (t, original_refs(&tree)));
        let mut run = Run {
            d: self,
            visited: Vec::new(),
            prefix,
        };
        let mut text_out = text::TextOutcome::default();
        let result = run.visit(&mut tree, &resources, 0).and_then(|mut ops| {
            if let Some((t, refs)) = &pre {
                let known = merged_known(known.filter(|_| t.known), refs);
                let scope = patient_scope(refs);
                let changed = free_text(&mut tree, &t.processor(scope), &known, &mut text_out)?;
                // Text rewritten is labelled like a rule's change: REDACTED for redact,
                // SUBSTITUTED for surrogate (on the root resource; existing labels are kept).
                let label = match t.operation() {
                    crate::phi::PhiOperation::Redact => Ops::REDACT,
                    crate::phi::PhiOperation::Surrogate => Ops::SUBSTITUTE,
                    crate::phi::PhiOperation::Tag => Ops::default(),
                };
                if changed && !label.is_empty() {
                    add_labels(&mut tree, 0, label);
                    ops |= label;
                }
            }
            Ok(ops)
        });
        match result {
            Ok(ops) => {
                tree.prune(0);
                let mut json = Vec::with_capacity(text.len());
                tree.write(0, &mut json);
                Ok(Output {
                    json,
                    resource_type,
                    ops,
                    skipped: None,
                    text: text_out,
                    head: None,
                })
            }
            Err(DeidError::Processing(m)) if self.skip_errors => {
                let mut json = Vec::new();
                json.extend_from_slice(b"{\"resourceType\":");
                crate::util::json::write_str(resource_type, &mut json);
                json.extend_from_slice(
                    format!(
                        ",\"meta\":{{\"security\":[{{\"system\":\"{OBS}\",\"code\":\"REDACTED\",\"display\":\"redacted\"}}]}}}}"
                    )
                    .as_bytes(),
                );
                Ok(Output {
                    json,
                    resource_type,
                    ops: Ops::REDACT,
                    skipped: Some(m),
                    text: text::TextOutcome::default(),
                    head: None,
                })
            }
            Err(e) => Err(e),
        }
    }
}

/// Where a primitive value is: its FHIR type, element name and the parent's FHIR type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ValueAt<'a> {
    ty: &'a str,
    name: &'a str,
    parent_ty: Option<&'a str>,
}

/// What a value-level method does to a primitive.
#[derive(Debug, PartialEq)]
pub(crate) enum Change {
    /// The value stays as it is.
    Keep,
    /// A new (string) value.
    Set(String),
    /// The value is removed (the element is pruned unless it has an id or extensions).
    Remove,
}

impl Deidentifier {
    /// The value-level methods (keep, redact, dateShift, cryptoHash, encrypt) on one non-empty
    /// primitive value `v`, with the reference's semantics; `offset` gives the date-shift
    /// offset in days (asked only for a date to shift). Shared by the tree engine and the
    /// streaming one (`stream`), so both change values alike.
    pub(crate) fn value_method(
        &self,
        method: Method,
        at: ValueAt<'_>,
        v: &str,
        offset: impl FnOnce() -> i64,
    ) -> Result<(Change, Ops), DeidError> {
        let p = &self.params;
        let today = self.today;
        Ok(match method {
            Method::Redact => self.redact_value(at, v),
            Method::DateShift => {
                if !matches!(at.ty, "date" | "dateTime" | "instant") {
                    return Ok((Change::Keep, Ops::default()));
                }
                match methods::shift_date(v, offset(), today) {
                    Some(s) => (Change::Set(s), Ops::PERTURB),
                    None => self.redact_value(at, v),
                }
            }
            Method::CryptoHash => {
                let hashed = match at.name == "reference" && at.parent_ty == Some("Reference") {
                    true => self.hash_key.reference(v),
                    false => self.hash_key.hex(v),
                };
                (Change::Set(hashed), Ops::CRYPTO_HASH)
            }
            Method::Encrypt => {
                let c = methods::encrypt(v, p.encrypt_key.expose(), methods::random_iv())
                    .ok_or_else(|| DeidError::Processing("encryption failed".into()))?;
                (Change::Set(c), Ops::ENCRYPT)
            }
            Method::Keep | Method::Substitute | Method::Perturb | Method::Generalize => {
                (Change::Keep, Ops::default())
            }
        })
    }

    fn redact_value(&self, at: ValueAt<'_>, v: &str) -> (Change, Ops) {
        let p = &self.params;
        match at.ty {
            "date" | "dateTime" | "instant" => {
                let change = match methods::redact_date(v, p.partial_dates, self.today) {
                    None => Change::Keep,
                    Some(None) => Change::Remove,
                    Some(Some(y)) => Change::Set(y),
                };
                (change, Ops::REDACT)
            }
            "decimal" if at.parent_ty == Some("Age") => {
                let over = v.parse::<f64>().is_ok_and(|a| a > 89.0);
                let change = if !p.partial_ages || over {
                    Change::Remove
                } else {
                    Change::Keep
                };
                (change, Ops::REDACT)
            }
            _ if at.name == "postalCode" && p.partial_zip => (
                Change::Set(methods::partial_zip(v, &p.restricted_zip)),
                Ops::ABSTRACT,
            ),
            _ => (Change::Remove, Ops::REDACT),
        }
    }
}

struct Run<'d> {
    d: &'d Deidentifier,
    visited: Vec<bool>,
    prefix: Option<String>,
}

impl Run<'_> {
    fn is_visited(&self, id: Id) -> bool {
        self.visited.get(id).copied().unwrap_or(false)
    }

    fn mark(&mut self, id: Id) {
        if self.visited.len() <= id {
            self.visited.resize(id + 1, false);
        }
        self.visited[id] = true;
    }

    /// Pre-order over resources: a resource's rules, then its contained/bundled resources;
    /// their results count for the enclosing resource too; labels on non-contained ones.
    fn visit<'a>(
        &mut self,
        tree: &mut Tree,
        resources: &[(Id, crate::fhirpath::Json<'a>)],
        id: Id,
    ) -> Result<Ops, DeidError> {
        let mut ops = Ops::default();
        if tree.els[id].resource {
            ops = self.process_resource(tree, resources, id)?;
        }
        // By index, not a clone of the list: visiting a child changes only its own subtree.
        let mut i = 0;
        while let Some(&k) = tree.els[id].kids.get(i) {
            i += 1;
            if tree.els[k].removed {
                continue;
            }
            ops |= self.visit(tree, resources, k)?;
        }
        if tree.els[id].resource && tree.els[id].name != "contained" && !ops.is_empty() {
            add_labels(tree, id, ops);
        }
        Ok(ops)
    }

    fn process_resource<'a>(
        &mut self,
        tree: &mut Tree,
        resources: &[(Id, crate::fhirpath::Json<'a>)],
        res: Id,
    ) -> Result<Ops, DeidError> {
        let ty = tree.els[res].ty;
        // The reference's per-resource lookups: descendants (not entering nested resources).
        let mut descendants = Vec::new();
        let mut stack: Vec<Id> = tree.els[res]
            .kids
            .as_slice()
            .iter()
            .rev()
            .copied()
            .collect();
        while let Some(n) = stack.pop() {
            if tree.els[n].resource || tree.els[n].removed {
                continue;
            }
            descendants.push(n);
            stack.extend(tree.els[n].kids.as_slice().iter().rev().copied());
        }
        // Descendants by FHIR type, once per resource (the reference's type cache).
        let mut by_type: crate::util::hash::FastMap<&'static str, Vec<Id>> =
            crate::util::hash::FastMap::default();
        for &d in &descendants {
            by_type.entry(tree.els[d].ty).or_default().push(d);
        }
        let json = resources.iter().find(|(i, _)| *i == res).map(|(_, j)| *j);
        let mut ops = Ops::default();
        for rule in &self.d.rules {
            let applies = rule.resource_type.is_empty()
                || rule.resource_type == ty
                || rule.resource_type == "Resource"
                || rule.resource_type == "DomainResource";
            if !applies {
                continue;
            }
            let matches: Vec<Id> = match &rule.select {
                Select::ByType(t, n) | Select::ByName(t, n) => {
                    let found: Vec<Id> = if matches!(rule.select, Select::ByType(..)) {
                        by_type.get(t.as_str()).cloned().unwrap_or_default()
                    } else {
                        descendants
                            .iter()
                            .copied()
                            .filter(|&d| tree.els[d].name == *t)
                            .collect()
                    };
                    let found = found.into_iter().filter(|&d| !tree.els[d].removed);
                    match n {
                        None => found.collect(),
                        Some(n) => found.flat_map(|d| children_named(tree, d, n)).collect(),
                    }
                }
                Select::Resource => vec![res],
                Select::Path(expr) => {
                    let Some(json) = json else { continue };
                    let env = Env::new().with_anonymizer_functions();
                    let items = expr
                        .evaluate_with_env(json, &self.d.types, &env)
                        .map_err(|e| DeidError::Processing(format!("rule {:?}: {e}", rule.path)))?;
                    items
                        .iter()
                        .filter_map(|it| match it {
                            Item::Node(n) => tree.lookup(n.value, n.ext),
                            _ => None,
                        })
                        .filter(|&i| !tree.els[i].removed)
                        .collect()
                }
            };
            for m in matches {
                ops |= self.process_recursive(tree, m, rule)?;
            }
        }
        Ok(ops)
    }

    fn process_recursive(
        &mut self,
        tree: &mut Tree,
        id: Id,
        rule: &Rule,
    ) -> Result<Ops, DeidError> {
        if self.is_visited(id) {
            return Ok(Ops::default());
        }
        let mut ops = self.apply(tree, id, rule)?;
        self.mark(id);
        // By index (see `visit`): `apply` above may have replaced `id`'s children; a child's
        // processing changes only that child's subtree.
        let mut i = 0;
        while let Some(&k) = tree.els[id].kids.get(i) {
            i += 1;
            if tree.els[k].resource || tree.els[k].removed {
                continue;
            }
            ops |= self.process_recursive(tree, k, rule)?;
        }
        Ok(ops)
    }

    fn apply(&mut self, tree: &mut Tree, id: Id, rule: &Rule) -> Result<Ops, DeidError> {
        match rule.method {
            Method::Substitute => return self.substitute(tree, id, rule),
            Method::Perturb => return Ok(self.perturb(tree, id, rule)),
            Method::Generalize => return self.generalize(tree, id, rule),
            _ => {}
        }
        let e = &tree.els[id];
        let Some(v) = e.value.as_ref().map(Prim::text).filter(|v| !v.is_empty()) else {
            return Ok(Ops::default());
        };
        let parent_ty = e.parent.map(|q| tree.els[q].ty);
        let at = ValueAt {
            ty: e.ty,
            name: e.name,
            parent_ty,
        };
        let p = &self.d.params;
        let offset = || {
            p.date_shift_fixed_offset.unwrap_or_else(|| {
                let prefix = match &self.prefix {
                    Some(s) if !s.is_empty() => s.as_str(),
                    _ => tree.resource_id(0),
                };
                methods::date_shift_offset(prefix, p.date_shift_key.expose())
            })
        };
        let (change, ops) = self.d.value_method(rule.method, at, v, offset)?;
        match change {
            Change::Keep => {}
            Change::Set(s) => tree.els[id].value = Some(Prim::Str(s)),
            Change::Remove => tree.els[id].value = None,
        }
        Ok(ops)
    }

    fn perturb(&mut self, tree: &mut Tree, id: Id, rule: &Rule) -> Ops {
        const NUMBERS: [&str; 4] = ["decimal", "integer", "positiveInt", "unsignedInt"];
        const QUANTITIES: [&str; 8] = [
            "Quantity",
            "Age",
            "Count",
            "Duration",
            "Distance",
            "Money",
            "SimpleQuantity",
            "MoneyQuantity",
        ];
        let ty = tree.els[id].ty;
        let target = if NUMBERS.contains(&ty) {
            Some(id)
        } else if QUANTITIES.contains(&ty) {
            tree.kids_named(id, "value").first().copied()
        } else {
            None
        };
        let Some(t) = target else {
            return Ops::default();
        };
        if self.is_visited(t) {
            return Ops::default();
        }
        let Some(v) = tree.els[t]
            .value
            .as_ref()
            .and_then(|v| v.text().parse::<f64>().ok())
        else {
            return Ops::default();
        };
        let tty = tree.els[t].ty;
        let round_to = if tty == "decimal" { rule.round_to } else { 0 };
        let span = if rule.proportional {
            v * rule.span
        } else {
            rule.span
        };
        let noise = (fastrand::f64() - 0.5) * span;
        let mut out = v + noise;
        let scale = 10f64.powi(round_to as i32);
        out = (out * scale).round() / scale;
        if tty == "positiveInt" && out <= 0.0 {
            out = 1.0;
        }
        if tty == "unsignedInt" && out < 0.0 {
            out = 0.0;
        }
        tree.els[t].value = Some(Prim::Raw(format!("{out:.prec$}", prec = round_to as usize)));
        // The reference marks the whole node's descendants as done.
        let mut stack = tree.els[id].kids.clone();
        while let Some(n) = stack.pop() {
            self.mark(n);
            stack.extend(tree.els[n].kids.iter().copied());
        }
        Ops::PERTURB
    }

    fn generalize(&mut self, tree: &mut Tree, id: Id, rule: &Rule) -> Result<Ops, DeidError> {
        let ty = tree.els[id].ty;
        if !is_primitive(ty) {
            return Err(DeidError::Processing(format!(
                "generalization is not applicable on the node with type {ty} (rule {:?}); only FHIR primitive nodes are",
                rule.path
            )));
        }
        let Some(value) = tree.els[id].value.clone() else {
            return Ok(Ops::default());
        };
        let mut text = Vec::new();
        match &value {
            Prim::Str(s) => crate::util::json::write_str(s, &mut text),
            Prim::Raw(s) => text.extend_from_slice(s.as_bytes()),
        }
        let raw = text.clone();
        let tape = simd_json::to_tape(&mut text)
            .map_err(|e| DeidError::Processing(format!("generalize: {e}")))?;
        let json = tape.as_value();
        let _ = raw;
        let item = Item::node(json, ty);
        let env = Env::new().with_anonymizer_functions();
        for (cond, val) in &rule.cases {
            let fail = |e: crate::fhirpath::EvalError| {
                DeidError::Processing(format!(
                    "generalize failed when processing case {:?} of rule {:?}: {e}",
                    cond.source(),
                    rule.path
                ))
            };
            let r = cond
                .evaluate_on_item(item.clone(), &self.d.types, &env)
                .map_err(fail)?;
            let hit = match r.as_slice() {
                [] => false,
                [one] => !matches!(&*one.prim(), Item::Bool(false)),
                _ => true,
            };
            if hit {
                let out = val
                    .evaluate_on_item(item.clone(), &self.d.types, &env)
                    .map_err(fail)?;
                let new = out.first().and_then(scalar_text);
                tree.els[id].value = new.map(|s| typed_prim(ty, s));
                return Ok(Ops::GENERALIZE);
            }
        }
        if !rule.other_values_keep {
            tree.els[id].value = None;
        }
        Ok(Ops::GENERALIZE)
    }

    fn substitute(&mut self, tree: &mut Tree, id: Id, rule: &Rule) -> Result<Ops, DeidError> {
        let ty = tree.els[id].ty;
        let replacement = if is_primitive(ty) {
            let v = match &rule.replace_with {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(other) => Some(other.to_string()),
            };
            let r = tree.push(detached("", ty));
            tree.els[r].value = v.map(|s| typed_prim(ty, s));
            r
        } else {
            let empty = serde_json::Value::Object(Default::default());
            let v = rule.replace_with.as_ref().unwrap_or(&empty);
            let r = tree.push(detached("", ty));
            self.materialize(tree, r, ty, v, &rule.path)?;
            r
        };
        let mut keep = std::collections::HashSet::new();
        self.keep_set(tree, id, &mut keep);
        let ops = self.substitute_node(tree, id, replacement, &keep);
        // Mark the substituted fragment as done.
        let mut stack = vec![id];
        while let Some(n) = stack.pop() {
            self.mark(n);
            stack.extend(tree.els[n].kids.iter().copied());
        }
        Ok(ops)
    }

    fn keep_set(&self, tree: &Tree, id: Id, keep: &mut std::collections::HashSet<Id>) -> bool {
        let mut k = false;
        for c in tree.live_kids(id) {
            k |= self.keep_set(tree, c, keep);
        }
        if k || self.is_visited(id) {
            keep.insert(id);
            return true;
        }
        false
    }

    fn substitute_node(
        &mut self,
        tree: &mut Tree,
        node: Id,
        repl: Id,
        keep: &std::collections::HashSet<Id>,
    ) -> Ops {
        if self.is_visited(node) {
            return Ops::default();
        }
        let mut names: Vec<&'static str> = Vec::new();
        for c in tree.live_kids(repl) {
            if !names.contains(&tree.els[c].name) {
                names.push(tree.els[c].name);
            }
        }
        for name in &names {
            let children = tree.kids_named(node, name);
            let targets = tree.kids_named(repl, name);
            let mut i = 0;
            for child in children {
                if self.is_visited(child) {
                    i += 1;
                } else if i < targets.len() {
                    self.substitute_node(tree, child, targets[i], keep);
                    i += 1;
                } else if keep.contains(&child) {
                    let dummy = tree.push(detached("", "string"));
                    self.substitute_node(tree, child, dummy, keep);
                } else {
                    tree.els[child].removed = true;
                }
            }
            while i < targets.len() {
                let copy = copy_subtree(tree, targets[i]);
                tree.attach(node, copy);
                i += 1;
            }
        }
        for child in tree.live_kids(node) {
            if names.contains(&tree.els[child].name) || self.is_visited(child) {
                continue;
            }
            if keep.contains(&child) {
                let dummy = tree.push(detached("", "string"));
                self.substitute_node(tree, child, dummy, keep);
            } else {
                tree.els[child].removed = true;
            }
        }
        tree.els[node].value = tree.els[repl].value.clone();
        Ops::SUBSTITUTE
    }

    /// Builds the element tree of a `replaceWith` JSON value under `parent` (of type `ty`).
    fn materialize(
        &self,
        tree: &mut Tree,
        parent: Id,
        ty: &'static str,
        v: &serde_json::Value,
        path: &str,
    ) -> Result<(), DeidError> {
        let Some(obj) = v.as_object() else {
            return Err(DeidError::Processing(format!(
                "substitute (rule {path:?}): replaceWith for a {ty} must be a JSON object"
            )));
        };
        for (k, val) in obj {
            let (ext, base) = match k.strip_prefix('_') {
                Some(b) => (true, b),
                None => (false, k.as_str()),
            };
            let child_ty: &'static str = if is_primitive(ty) {
                if base == "extension" {
                    "Extension"
                } else {
                    "string"
                }
            } else {
                self.d.types.child_type(ty, base).ok_or_else(|| {
                    DeidError::Processing(format!(
                        "substitute (rule {path:?}): '{k}' is not an element of {ty}"
                    ))
                })?
            };
            let items: Vec<&serde_json::Value> = match val.as_array() {
                Some(a) => a.iter().collect(),
                None => vec![val],
            };
            let existing = tree.kids_named(parent, base);
            for (i, item) in items.into_iter().enumerate() {
                let el = match existing.get(i) {
                    Some(&e) if ext => e,
                    _ => {
                        let e = tree.push(El {
                            in_array: val.is_array(),
                            ..detached(tree::intern(base), child_ty)
                        });
                        tree.attach(parent, e);
                        e
                    }
                };
                match item {
                    serde_json::Value::Null => {}
                    serde_json::Value::Object(_) => {
                        self.materialize(tree, el, child_ty, item, path)?;
                    }
                    serde_json::Value::String(s) => {
                        tree.els[el].value = Some(typed_prim(child_ty, s.clone()));
                    }
                    other => tree.els[el].value = Some(Prim::Raw(other.to_string())),
                }
            }
        }
        Ok(())
    }
}

/// Which free-text carrier element `id` is: a narrative (`xhtml`), an `Annotation.text`, or an
/// `Attachment.data` with its attachment's content type.
fn carrier_of(tree: &Tree, id: Id) -> Option<text::Carrier<'_>> {
    use text::Carrier;
    let e = &tree.els[id];
    let parent = e.parent;
    let parent_ty = parent.map(|p| tree.els[p].ty);
    if e.ty == "xhtml" {
        Some(Carrier::Narrative)
    } else if e.name == "text" && parent_ty == Some("Annotation") {
        Some(Carrier::Text)
    } else if e.name == "data" && parent_ty == Some("Attachment") {
        let ct = parent.and_then(|p| {
            tree.kids_named(p, "contentType")
                .first()
                .and_then(|&c| tree.els[c].value.as_ref())
                .map(Prim::text)
        });
        Some(Carrier::Attachment(ct))
    } else {
        None
    }
}

/// Whether the tree holds a free-text carrier.
fn has_carriers(tree: &Tree) -> bool {
    (0..tree.els.len()).any(|id| carrier_of(tree, id).is_some())
}

/// The references of the tree as they are now (before the rules), and the root's own
/// `Type/id`, first.
fn original_refs(tree: &Tree) -> Vec<String> {
    let mut refs = vec![format!("{}/{}", tree.els[0].ty, tree.resource_id(0))];
    for e in &tree.els {
        let in_reference = e.parent.is_some_and(|p| tree.els[p].ty == "Reference");
        if e.name == "reference" && in_reference {
            if let Some(v) = &e.value {
                refs.push(v.text().to_string());
            }
        }
    }
    refs
}

/// The known PHI of the referenced resources together.
fn merged_known<'k>(
    index: Option<&'k text::KnownIndex>,
    refs: &[String],
) -> std::borrow::Cow<'k, crate::phi::KnownPhi> {
    use std::borrow::Cow;
    let Some(index) = index else {
        return Cow::Owned(crate::phi::KnownPhi::new());
    };
    let mut found = refs.iter().filter_map(|r| index.get(r));
    let Some(first) = found.next() else {
        return Cow::Owned(crate::phi::KnownPhi::new());
    };
    let mut out = Cow::Borrowed(first);
    for k in found {
        if !std::ptr::eq(k, first) {
            out.to_mut().merge(k);
        }
    }
    out
}

/// The patient id of a resource for surrogate date shifts: its own when it is a Patient, else
/// the first `Patient/...` reference, else "" (one shift for the run).
fn patient_scope(refs: &[String]) -> &str {
    refs.iter()
        .find_map(|r| match crate::fhir::reference_type_id(r)? {
            ("Patient", id) => Some(id),
            _ => None,
        })
        .unwrap_or("")
}

/// Where element `id` is, as `Type.name[i].name` (array items indexed).
fn element_path(tree: &Tree, id: Id) -> String {
    let mut parts = Vec::new();
    let mut at = id;
    while let Some(p) = tree.els[at].parent {
        let e = &tree.els[at];
        if e.in_array {
            let i = tree.els[p]
                .kids
                .iter()
                .filter(|&&k| tree.els[k].name == e.name)
                .position(|&k| k == at)
                .unwrap_or(0);
            parts.push(format!("{}[{i}]", e.name));
        } else {
            parts.push(e.name.to_string());
        }
        at = p;
    }
    parts.push(tree.els[at].ty.to_string());
    parts.reverse();
    parts.join(".")
}

/// Runs the free-text processor on every carrier still there (after the rules); `true` when
/// some text was rewritten.
fn free_text(
    tree: &mut Tree,
    p: &crate::phi::carriers::Processor<'_>,
    known: &crate::phi::KnownPhi,
    out: &mut text::TextOutcome,
) -> Result<bool, DeidError> {
    let mut changed = false;
    for id in 0..tree.els.len() {
        let e = &tree.els[id];
        let Some(Prim::Str(value)) = e.value.as_ref().filter(|_| !e.removed) else {
            continue;
        };
        let Some(kind) = carrier_of(tree, id) else {
            continue;
        };
        let new = text::process_carrier(p, kind, value, known, out, || element_path(tree, id))
            .map_err(|e| DeidError::Processing(format!("{}: {e}", element_path(tree, id))))?;
        if let Some(n) = new {
            tree.els[id].value = Some(Prim::Str(n));
            changed = true;
        }
    }
    Ok(changed)
}

fn detached(name: &'static str, ty: &'static str) -> El {
    El {
        name,
        ty,
        value: None,
        kids: Vec::new(),
        parent: None,
        in_array: false,
        resource: false,
        removed: false,
    }
}

fn copy_subtree(tree: &mut Tree, id: Id) -> Id {
    let mut el = tree.els[id].clone();
    el.kids = Vec::new();
    el.parent = None;
    let new = tree.push(el);
    for k in tree.live_kids(id) {
        let c = copy_subtree(tree, k);
        tree.attach(new, c);
    }
    new
}

/// The live children of `id` whose element name is `name` (a choice by its base name).
fn children_named(tree: &Tree, id: Id, name: &str) -> Vec<Id> {
    tree.live_kids(id)
        .into_iter()
        .filter(|&k| {
            let n = tree.els[k].name;
            n == name
                || n.strip_prefix(name)
                    .is_some_and(|s| s.starts_with(|c: char| c.is_ascii_uppercase()))
        })
        .collect()
}

/// A new value for a primitive of type `ty`: numbers and booleans unquoted when they parse.
fn typed_prim(ty: &str, s: String) -> Prim {
    let numeric = matches!(ty, "integer" | "decimal" | "positiveInt" | "unsignedInt");
    if (numeric && s.parse::<f64>().is_ok()) || (ty == "boolean" && (s == "true" || s == "false")) {
        Prim::Raw(s)
    } else {
        Prim::Str(s)
    }
}

fn scalar_text(it: &Item<'_>) -> Option<String> {
    match &*it.prim() {
        Item::Str(s) => Some(s.to_string()),
        Item::Int(i) => Some(i.to_string()),
        Item::Dec(d) => Some(d.to_string()),
        Item::Bool(b) => Some(b.to_string()),
        Item::Temporal(t) => Some(t.to_string()),
        _ => None,
    }
}

/// Adds the labels of `ops` to the resource's `meta.security` (codes already there are not
/// repeated); creates `meta` after `id` when missing.
fn add_labels(tree: &mut Tree, res: Id, ops: Ops) {
    let meta = match tree.kids_named(res, "meta").first() {
        Some(&m) => m,
        None => {
            let m = tree.push(detached("meta", "Meta"));
            tree.els[m].parent = Some(res);
            let pos = tree.els[res]
                .kids
                .iter()
                .position(|&k| tree.els[k].name == "id" && !tree.els[k].removed)
                .map_or(0, |p| p + 1);
            tree.els[res].kids.insert(pos, m);
            m
        }
    };
    let existing: Vec<String> = tree
        .kids_named(meta, "security")
        .into_iter()
        .filter_map(|s| {
            tree.kids_named(s, "code")
                .first()
                .and_then(|&c| tree.els[c].value.as_ref())
                .map(|v| v.text().to_ascii_lowercase())
        })
        .collect();
    for (flag, system, code, display) in LABELS {
        if !ops.has(flag) || existing.contains(&code.to_ascii_lowercase()) {
            continue;
        }
        let coding = tree.push(El {
            in_array: true,
            ..detached("security", "Coding")
        });
        tree.attach(meta, coding);
        let fields = [
            ("system", system),
            ("code", Some(code)),
            ("display", Some(display)),
        ];
        for (name, v) in fields {
            let Some(v) = v else { continue };
            let ty = if name == "display" {
                "string"
            } else if name == "code" {
                "code"
            } else {
                "uri"
            };
            let f = tree.push(detached(name, ty));
            tree.els[f].value = Some(Prim::Str(v.to_string()));
            tree.attach(coding, f);
        }
    }
}

#[cfg(test)]
mod tests;
