//! Structure validation of one resource against the R4 [`Model`]: unknown elements, JSON types,
//! primitive formats, cardinality (and arrays vs single values), one variant per choice,
//! `_name` primitive extensions aligned with their values, empty strings/objects/arrays,
//! contained and nested resources (recursively), reference format and required-binding codes.
//!
//! It walks a borrowed simd-json tape value; the only state is a reusable stack of path steps
//! (names from the model and array indexes, not text) and the issue list, so a valid resource
//! costs no allocation and no string building. Each problem is an [`Issue`] shaped like an
//! OperationOutcome issue, with a FHIRPath-style expression such as `Patient.name[0].given[1]`,
//! written out from the steps only when the issue is reported.

mod primitive;

pub use primitive::{check_integer, check_string};

use crate::fhir::model::{ElemType, Element, Kind, Model, Primitive, TypeDef, TypeId, MANY};
use crate::fhir::{TypeIdx, RESOURCE_TYPES};
use serde::Serialize;
use simd_json::prelude::*;
use simd_json::tape::{Object, Value};
use simd_json::ValueType;

/// OperationOutcome `issue.severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The resource is invalid.
    Error,
    /// Worth knowing; the resource is kept.
    Warning,
}

/// OperationOutcome `issue.code` (the IssueType value set) used by the validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IssueCode {
    /// Unknown element, wrong JSON type, array vs single value, too many, choice conflicts.
    Structure,
    /// A required element is missing.
    Required,
    /// A primitive value has the wrong format or is empty.
    Value,
    /// A code is not in the required value set.
    CodeInvalid,
    /// Something else is invalid (reference format, resourceType).
    Invalid,
}

/// One problem found in a resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    /// How bad.
    pub severity: Severity,
    /// What kind of problem.
    pub code: IssueCode,
    /// Where: `Patient.name[0].given[1]`.
    pub expression: String,
    /// What is wrong, for people.
    pub diagnostics: String,
}

impl Issue {
    /// `expression: diagnostics`, the one-line form used as a dead-letter reason.
    pub fn message(&self) -> String {
        format!("{}: {}", self.expression, self.diagnostics)
    }
}

/// The issues of one resource as a FHIR OperationOutcome (`resourceType`, `issue[]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperationOutcome {
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    /// The issues.
    pub issue: Vec<OutcomeIssue>,
}

/// An OperationOutcome issue as FHIR JSON writes it (`expression` is a list).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutcomeIssue {
    /// `error` or `warning`.
    pub severity: Severity,
    /// IssueType code.
    pub code: IssueCode,
    /// What is wrong.
    pub diagnostics: String,
    /// Where.
    pub expression: [String; 1],
}

impl OperationOutcome {
    /// An OperationOutcome listing `issues`.
    pub fn new(issues: &[Issue]) -> Self {
        OperationOutcome {
            resource_type: "OperationOutcome",
            issue: issues
                .iter()
                .map(|i| OutcomeIssue {
                    severity: i.severity,
                    code: i.code,
                    diagnostics: i.diagnostics.clone(),
                    expression: [i.expression.clone()],
                })
                .collect(),
        }
    }
}

/// Stop collecting after this many issues in one resource (a wrong file type can yield
/// thousands); the last issue says so.
const MAX_ISSUES: usize = 100;

/// One step of the expression of the value being validated.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// `Patient` (the root) or `.name`.
    Name(&'static str),
    /// `._name`: the id and extensions of a primitive.
    Ext(&'static str),
    /// `[i]`
    Index(usize),
}

/// Validates resources; keep one per worker thread and reuse it.
pub struct Validator {
    model: &'static Model,
    reference: Option<TypeId>,
    extension: Option<TypeId>,
    /// The model type of each R4 resource type, by [`TypeIdx`].
    resource_types: Vec<Option<TypeId>>,
    path: Vec<Step>,
    issues: Vec<Issue>,
}

impl Default for Validator {
    fn default() -> Self {
        Self::new()
    }
}

fn kind(v: Value<'_, '_>) -> &'static str {
    match v.value_type() {
        ValueType::Object => "an object",
        ValueType::Array => "an array",
        ValueType::String => "a string",
        ValueType::Null => "null",
        ValueType::Bool => "a boolean",
        _ => "a number",
    }
}

impl Validator {
    /// A validator over the committed R4 model.
    pub fn new() -> Self {
        let model = Model::r4();
        Validator {
            model,
            reference: model.type_id("Reference"),
            extension: model.type_id("Extension"),
            resource_types: RESOURCE_TYPES.iter().map(|n| model.type_id(n)).collect(),
            path: Vec::with_capacity(32),
            issues: Vec::new(),
        }
    }

    /// Validates one resource (a JSON object with `resourceType`); returns its issues, empty
    /// when it is valid.
    pub fn validate<'a>(&'a mut self, resource: Value<'_, '_>) -> &'a [Issue] {
        self.issues.clear();
        self.path.clear();
        self.resource(resource, true);
        &self.issues
    }

    /// Validates a resource that passed the basic checks of `stage::check`: an object whose
    /// `resourceType` is the R4 type `type_idx` and whose `id`, when present, is a valid id.
    /// Neither is looked up or checked again; the issues are those of
    /// [`validate`](Self::validate).
    pub fn validate_checked<'a>(
        &'a mut self,
        resource: Value<'_, '_>,
        type_idx: TypeIdx,
    ) -> &'a [Issue] {
        self.issues.clear();
        self.path.clear();
        let t = self
            .resource_types
            .get(type_idx as usize)
            .copied()
            .flatten();
        match (resource.as_object(), t) {
            (Some(obj), Some(t)) => {
                self.path.push(Step::Name(&self.model.get(t).name));
                self.object(obj, t, Within::CheckedRoot);
            }
            _ => self.resource(resource, true),
        }
        &self.issues
    }

    /// The issues of the last [`validate`](Self::validate).
    pub fn issues(&self) -> &[Issue] {
        &self.issues
    }

    /// Whether the issues of the last [`validate`](Self::validate) include an error.
    pub fn has_errors(&self) -> bool {
        self.issues.iter().any(|i| i.severity == Severity::Error)
    }

    fn issue(&mut self, code: IssueCode, diagnostics: String) {
        self.issue_at(code, diagnostics, "");
    }

    fn issue_at(&mut self, code: IssueCode, diagnostics: String, suffix: &str) {
        if self.issues.len() > MAX_ISSUES {
            return;
        }
        let (code, diagnostics) = if self.issues.len() == MAX_ISSUES {
            (
                IssueCode::Structure,
                "too many issues; the rest are not listed".into(),
            )
        } else {
            (code, diagnostics)
        };
        let mut expression = self.expression();
        expression.push_str(suffix);
        self.issues.push(Issue {
            severity: Severity::Error,
            code,
            expression,
            diagnostics,
        });
    }

    /// The current path as text: `Patient.name[0]._given[1]`.
    fn expression(&self) -> String {
        let mut s = String::with_capacity(64);
        for (i, step) in self.path.as_slice().iter().enumerate() {
            match step {
                Step::Name(n) => {
                    if i > 0 {
                        s.push('.');
                    }
                    s.push_str(n);
                }
                Step::Ext(n) => {
                    s.push_str("._");
                    s.push_str(n);
                }
                Step::Index(n) => {
                    s.push('[');
                    s.push_str(itoa::Buffer::new().format(*n));
                    s.push(']');
                }
            }
        }
        s
    }

    /// The name of the innermost element on the path.
    fn last_name(&self) -> &'static str {
        self.path
            .as_slice()
            .iter()
            .rev()
            .find_map(|s| match s {
                Step::Name(n) | Step::Ext(n) => Some(*n),
                Step::Index(_) => None,
            })
            .unwrap_or("")
    }

    /// A resource at the current path (the root when `root`).
    fn resource(&mut self, v: Value<'_, '_>, root: bool) {
        let Some(obj) = v.as_object() else {
            self.issue(
                IssueCode::Structure,
                format!("expected a resource (a JSON object), found {}", kind(v)),
            );
            return;
        };
        let Some(rt) = obj.get("resourceType") else {
            self.issue(IssueCode::Required, "missing resourceType".into());
            return;
        };
        let model = self.model;
        let Some(t) = rt
            .as_str()
            .and_then(|s| model.type_id(s))
            .filter(|&t| model.get(t).kind == Kind::Resource)
        else {
            let shown = rt
                .as_str()
                .map(|s| format!("{s:?}"))
                .unwrap_or_else(|| kind(rt).into());
            self.issue(IssueCode::Invalid, format!("unknown resourceType {shown}"));
            return;
        };
        if root {
            self.path.push(Step::Name(&model.get(t).name));
        }
        self.object(obj, t, Within::Resource);
    }

    /// The properties of an object of complex, backbone or resource type `t`.
    fn object(&mut self, obj: Object<'_, '_>, t: TypeId, within: Within) {
        let def: &'static TypeDef = self.model.get(t);
        if obj.is_empty() {
            self.issue(
                IssueCode::Value,
                "empty object: an element must have a value or children".into(),
            );
            return;
        }
        let is_resource = within != Within::Value;
        let mut seen_groups: u64 = 0;
        let mut seen_required: u64 = 0;
        for (key, val) in obj.iter() {
            if is_resource && key == "resourceType" {
                continue;
            }
            let (ext, name) = match key.strip_prefix('_') {
                Some(n) => (true, n),
                None => (false, key),
            };
            let Some(el) = def.element(name) else {
                self.unknown(key);
                continue;
            };
            if ext && el.primitive.is_none() {
                self.unknown(key);
                continue;
            }
            if let Some(g) = el.choice {
                if !ext || obj.get(name).is_none() {
                    if seen_groups & (1 << g) != 0 {
                        let group = &def.choices[g as usize].name;
                        self.issue_at(
                            IssueCode::Structure,
                            format!("more than one variant of {group}: only one is allowed"),
                            &format!(".{key}"),
                        );
                    }
                    seen_groups |= 1 << g;
                }
            }
            if let Some(bit) = el.required_bit {
                seen_required |= 1 << bit;
            }
            if ext {
                self.path.push(Step::Ext(&el.name));
                self.primitive_extension(val, el, obj.get(name));
            } else if within == Within::CheckedRoot && el.name == "id" {
                // Checked by the basic checks already.
                continue;
            } else {
                self.path.push(Step::Name(&el.name));
                let exts = if el.primitive.is_some() && el.max > 1 {
                    extension_array_len(&obj, name)
                } else {
                    None
                };
                self.element(val, el, exts, t);
            }
            self.path.pop();
        }
        if seen_required != def.required_mask
            || seen_groups & def.required_choices != def.required_choices
        {
            self.missing(def, seen_groups, seen_required);
        }
    }

    fn unknown(&mut self, key: &str) {
        self.issue_at(
            IssueCode::Structure,
            format!("unknown element {key:?}"),
            &format!(".{key}"),
        );
    }

    fn missing(&mut self, def: &TypeDef, seen_groups: u64, seen_required: u64) {
        for (bit, &i) in def.required.iter().enumerate() {
            if seen_required & (1 << bit) == 0 {
                let name = &def.elements[i as usize].name;
                self.issue_at(
                    IssueCode::Required,
                    format!("missing required element {name:?} (minimum 1)"),
                    &format!(".{name}"),
                );
            }
        }
        for (g, c) in def.choices.iter().enumerate() {
            if c.min > 0 && seen_groups & (1 << g) == 0 {
                let base = c.name.trim_end_matches("[x]");
                self.issue_at(
                    IssueCode::Required,
                    format!(
                        "missing required element {:?} (one variant of {})",
                        base, c.name
                    ),
                    &format!(".{base}"),
                );
            }
        }
    }

    /// The value of element `el` at the current path; `exts` is the length of a `_name` array.
    fn element(
        &mut self,
        val: Value<'_, '_>,
        el: &'static Element,
        exts: Option<usize>,
        owner: TypeId,
    ) {
        let primitive = el.primitive;
        if el.max > 1 {
            let Some(arr) = val.as_array() else {
                self.issue(
                    IssueCode::Structure,
                    format!(
                        "expected an array (the element repeats), found {}",
                        kind(val)
                    ),
                );
                return;
            };
            if arr.is_empty() {
                self.issue(
                    IssueCode::Value,
                    "empty array: omit the element instead".into(),
                );
                return;
            }
            if el.max != MANY && arr.len() > el.max as usize {
                self.issue(
                    IssueCode::Structure,
                    format!("{} values, but at most {} allowed", arr.len(), el.max),
                );
            }
            if el.min > 1 && arr.len() < el.min as usize {
                self.issue(
                    IssueCode::Required,
                    format!("{} values, but at least {} required", arr.len(), el.min),
                );
            }
            if let Some(n) = exts {
                if n != arr.len() {
                    self.issue(
                        IssueCode::Structure,
                        format!(
                            "_{} has {n} entries but the array has {}",
                            self.last_name(),
                            arr.len()
                        ),
                    );
                }
            }
            for (i, item) in arr.iter().enumerate() {
                if item.is_null() && primitive.is_some() && exts.is_some() {
                    // A null aligned with an extension in `_name`; checked from that side.
                    continue;
                }
                self.path.push(Step::Index(i));
                self.item(item, el, owner);
                self.path.pop();
            }
        } else if val.is_array() {
            self.issue(
                IssueCode::Structure,
                "expected a single value, found an array (the element does not repeat)".into(),
            );
        } else {
            self.item(val, el, owner);
        }
    }

    /// One value (not an array) of element `el`.
    fn item(&mut self, val: Value<'_, '_>, el: &'static Element, owner: TypeId) {
        match el.ty {
            ElemType::Resource => self.resource(val, false),
            ElemType::Type(t) => match el.primitive {
                Some(p) => {
                    self.primitive(val, p, el);
                    if Some(owner) == self.reference && el.name == "reference" {
                        if let Some(s) = val.as_str() {
                            self.reference_format(s);
                        }
                    }
                }
                None => match val.as_object() {
                    Some(o) => self.object(o, t, Within::Value),
                    None => self.issue(
                        IssueCode::Structure,
                        format!("expected an object, found {}", kind(val)),
                    ),
                },
            },
        }
    }

    fn primitive(&mut self, val: Value<'_, '_>, p: Primitive, el: &Element) {
        use Primitive::*;
        match p {
            Boolean => {
                if !val.is_bool() {
                    self.issue(
                        IssueCode::Structure,
                        format!("expected a boolean, found {}", kind(val)),
                    );
                }
            }
            Decimal => {
                if !val.is_number() {
                    self.issue(
                        IssueCode::Structure,
                        format!("expected a number, found {}", kind(val)),
                    );
                }
            }
            Integer | PositiveInt | UnsignedInt => match val.as_i64() {
                Some(n) => {
                    if let Err(e) = check_integer(p, n) {
                        self.issue(IssueCode::Value, format!("{n}: {e}"));
                    }
                }
                None if val.is_number() => match val.as_u64() {
                    Some(n) => self.issue(
                        IssueCode::Value,
                        format!("{n}: integer out of 32-bit range"),
                    ),
                    None => self.issue(
                        IssueCode::Value,
                        "expected a whole number, found a decimal".into(),
                    ),
                },
                None => self.issue(
                    IssueCode::Structure,
                    format!("expected a number, found {}", kind(val)),
                ),
            },
            _ => match val.as_str() {
                Some("") => self.issue(
                    IssueCode::Value,
                    "empty string: omit the element instead".into(),
                ),
                Some(s) => {
                    if let Err(e) = check_string(p, s) {
                        self.issue(IssueCode::Value, format!("{}: {e}", shown(s)));
                    } else if let Some(vs) = el.value_set {
                        let vs = &self.model.value_sets[vs as usize];
                        if !vs.contains(s) {
                            self.issue(
                                IssueCode::CodeInvalid,
                                format!(
                                    "code {} is not in the required value set {}",
                                    shown(s),
                                    vs.name
                                ),
                            );
                        }
                    }
                }
                None => self.issue(
                    IssueCode::Structure,
                    format!("expected a string, found {}", kind(val)),
                ),
            },
        }
    }

    /// `_name`: an Element (id, extension) or, for a repeating element, an array of them (or
    /// null) aligned with the values.
    fn primitive_extension(
        &mut self,
        val: Value<'_, '_>,
        el: &Element,
        values: Option<Value<'_, '_>>,
    ) {
        let check_one = |this: &mut Self, v: Value<'_, '_>| match v.as_object() {
            Some(o) if !o.is_empty() => {
                for (k, x) in o.iter() {
                    match k {
                        "id" => {
                            if x.as_str().is_none_or(|s| s.is_empty()) {
                                this.issue_at(
                                    IssueCode::Structure,
                                    "id must be a non-empty string".into(),
                                    ".id",
                                );
                            }
                        }
                        "extension" => {
                            if let (Some(a), Some(ext_t)) = (x.as_array(), this.extension) {
                                if a.is_empty() {
                                    this.issue_at(
                                        IssueCode::Value,
                                        "empty array: omit the element instead".into(),
                                        ".extension",
                                    );
                                }
                                this.path.push(Step::Name("extension"));
                                for (i, e) in a.iter().enumerate() {
                                    this.path.push(Step::Index(i));
                                    match e.as_object() {
                                        Some(eo) => this.object(eo, ext_t, Within::Value),
                                        None => this.issue(
                                            IssueCode::Structure,
                                            format!("expected an object, found {}", kind(e)),
                                        ),
                                    }
                                    this.path.pop();
                                }
                                this.path.pop();
                            } else {
                                this.issue_at(
                                    IssueCode::Structure,
                                    "extension must be an array".into(),
                                    ".extension",
                                );
                            }
                        }
                        _ => this.unknown(k),
                    }
                }
            }
            Some(_) => this.issue(
                IssueCode::Value,
                "empty object: an element must have a value or children".into(),
            ),
            None => this.issue(
                IssueCode::Structure,
                format!("expected an object, found {}", kind(v)),
            ),
        };
        if el.max > 1 {
            let Some(arr) = val.as_array() else {
                self.issue(
                    IssueCode::Structure,
                    format!(
                        "expected an array aligned with the values, found {}",
                        kind(val)
                    ),
                );
                return;
            };
            let vals = values.and_then(|v| v.as_array());
            for (i, item) in arr.iter().enumerate() {
                self.path.push(Step::Index(i));
                let value_null = vals.and_then(|a| a.get(i)).is_none_or(|v| v.is_null());
                if item.is_null() {
                    if value_null {
                        self.issue(IssueCode::Structure, "null value without an extension: an entry needs a value or an extension".into());
                    }
                } else {
                    check_one(self, item);
                }
                self.path.pop();
            }
        } else {
            check_one(self, val);
        }
    }

    /// `Reference.reference`: `#local`, an absolute URL/URN, or `Type/id[/_history/vid]`
    /// (or a conditional `Type?query`).
    fn reference_format(&mut self, s: &str) {
        // The common case first, in one scan: `Type/id`.
        if let Some(slash) = memchr::memchr(b'/', s.as_bytes()) {
            let (t, id) = (&s[..slash], &s[slash + 1..]);
            if crate::fhir::is_valid_id(id) && crate::fhir::resource_type_index(t).is_some() {
                return;
            }
        }
        if s.starts_with('#') || s.starts_with("urn:") || s.contains("://") {
            return;
        }
        let (head, _) = s.split_once('?').unwrap_or((s, ""));
        if head != s && crate::fhir::resource_type_index(head).is_some() {
            return;
        }
        let mut parts = s.split('/');
        let (t, id) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let history = match (parts.next(), parts.next(), parts.next()) {
            (None, _, _) => true,
            (Some("_history"), Some(v), None) => crate::fhir::is_valid_id(v),
            _ => false,
        };
        let ok = history
            && crate::fhir::resource_type_index(t).is_some()
            && crate::fhir::is_valid_id(id);
        if !ok {
            self.issue(
                IssueCode::Invalid,
                format!(
                    "reference {} is not Type/id, #local, or an absolute URL",
                    shown(s)
                ),
            );
        }
    }
}

/// Where an object is: what `object` must treat specially.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Within {
    /// A value of a complex or backbone element.
    Value,
    /// A resource (`resourceType` is its type, not an element).
    Resource,
    /// A root resource that passed the basic checks: its `id` is valid already.
    CheckedRoot,
}

/// The length of the `_name` array beside `name`, without building the key.
fn extension_array_len(obj: &Object<'_, '_>, name: &str) -> Option<usize> {
    obj.iter()
        .find(|(k, _)| k.strip_prefix('_') == Some(name))
        .and_then(|(_, v)| v.as_array())
        .map(|a| a.len())
}

fn shown(s: &str) -> String {
    if s.chars().count() <= 60 {
        format!("{s:?}")
    } else {
        let cut: String = s.chars().take(57).collect();
        format!("{cut:?}...")
    }
}

#[cfg(test)]
mod tests;
