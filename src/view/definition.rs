//! Reads a SQL on FHIR v2 ViewDefinition (JSON) into the compiled tree the evaluator walks:
//! every field checked (unknown fields, wrong JSON types, missing `resource`/`name`/`path`,
//! column names, duplicate names, `unionAll` branches with different columns, constants
//! without exactly one `value[x]`, `%variables` that are not constants), every FHIRPath
//! compiled once. Errors name the JSON path of the field (`select[0].column[1].path`).

use super::{ColumnKind, ViewError};
use crate::fhirpath::{Decimal, Expression, Item, Temporal};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// One column of the output.
#[derive(Debug, Clone)]
pub struct Column {
    /// Its name (`^[A-Za-z][A-Za-z0-9_]*$`, unique in the view).
    pub name: String,
    /// The FHIR type given by `type`, if any.
    pub fhir_type: Option<String>,
    /// What values it holds.
    pub kind: ColumnKind,
    /// `collection: true`: a list per row.
    pub collection: bool,
    /// Where it is defined (`select[0].column[1]`), for error messages.
    pub(crate) at: String,
    pub(crate) path: Expression,
}

/// How a `select` iterates.
#[derive(Debug)]
pub(crate) enum Iter {
    /// Once, on the parent's focus.
    Once,
    /// `forEach`: once per item; no rows when empty.
    ForEach(Expression),
    /// `forEachOrNull`: once per item; one row of nulls when empty.
    ForEachOrNull(Expression),
    /// `repeat`: once per item reached by applying the paths recursively (depth first).
    Repeat(Vec<Expression>),
}

/// A `select` element.
#[derive(Debug)]
pub(crate) struct Select {
    pub iter: Iter,
    /// This select's own columns.
    pub columns: Vec<Column>,
    pub select: Vec<Select>,
    pub union_all: Vec<Select>,
    /// Number of output columns this select produces (own + nested + unionAll).
    pub width: usize,
    /// Where it is defined, for error messages.
    pub at: String,
}

/// A checked and compiled ViewDefinition.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub name: Option<String>,
    pub resource: String,
    pub constants: Vec<(String, Item<'static>)>,
    pub wheres: Vec<(Expression, String)>,
    pub root: Select,
    /// All columns in output order.
    pub columns: Vec<Column>,
}

/// Fields of the ViewDefinition resource that carry metadata only.
const METADATA: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "implicitRules",
    "language",
    "text",
    "contained",
    "extension",
    "modifierExtension",
    "url",
    "identifier",
    "version",
    "name",
    "title",
    "status",
    "experimental",
    "date",
    "publisher",
    "contact",
    "description",
    "useContext",
    "jurisdiction",
    "purpose",
    "copyright",
    "fhirVersion",
    "profile",
];

fn err(at: &str, message: impl Into<String>) -> ViewError {
    ViewError::Definition {
        at: if at.is_empty() {
            "(root)".into()
        } else {
            at.into()
        },
        message: message.into(),
    }
}

fn join(at: &str, field: &str) -> String {
    if at.is_empty() {
        field.to_string()
    } else {
        format!("{at}.{field}")
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn object<'v>(v: &'v Value, at: &str) -> Result<&'v Map<String, Value>, ViewError> {
    v.as_object()
        .ok_or_else(|| err(at, format!("expected an object, found {}", json_kind(v))))
}

fn string<'v>(v: &'v Value, at: &str) -> Result<&'v str, ViewError> {
    v.as_str()
        .ok_or_else(|| err(at, format!("expected a string, found {}", json_kind(v))))
}

fn array<'v>(v: &'v Value, at: &str) -> Result<&'v [Value], ViewError> {
    v.as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| err(at, format!("expected an array, found {}", json_kind(v))))
}

fn check_fields(
    o: &Map<String, Value>,
    at: &str,
    known: &[&str],
    what: &str,
) -> Result<(), ViewError> {
    for k in o.keys() {
        if !known.contains(&k.as_str()) {
            return Err(err(
                &join(at, k),
                format!("unknown field of {what} (known: {})", known.join(", ")),
            ));
        }
    }
    Ok(())
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic())
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// The column kind for a FHIR (or FHIRPath System) type name; `None` for an unknown name.
pub(crate) fn kind_of(ty: &str) -> Option<ColumnKind> {
    Some(match ty {
        "boolean" | "Boolean" => ColumnKind::Boolean,
        "integer" | "positiveInt" | "unsignedInt" | "integer64" | "Integer" => ColumnKind::Integer,
        "decimal" | "Decimal" => ColumnKind::Decimal,
        "string" | "code" | "id" | "uri" | "url" | "canonical" | "oid" | "uuid" | "markdown"
        | "base64Binary" | "xhtml" | "date" | "dateTime" | "instant" | "time" | "String"
        | "Date" | "DateTime" | "Time" => ColumnKind::String,
        _ => return None,
    })
}

struct Builder {
    /// The output columns so far (for unionAll: the first branch's).
    columns: Vec<Column>,
    constants: Vec<String>,
    /// Columns a later unionAll branch defines again (the first branch's), exempt from the
    /// duplicate-name check while that branch is read.
    repeated: Vec<std::ops::Range<usize>>,
}

impl Builder {
    fn expr(&self, v: &Value, at: &str) -> Result<Expression, ViewError> {
        let src = string(v, at)?;
        let e = Expression::parse_view(src)
            .map_err(|e| err(at, format!("invalid FHIRPath {src:?}: {e}")))?;
        for (name, pos) in e.variables() {
            if name != "rowIndex" && !self.constants.iter().any(|c| c == name) {
                return Err(err(
                    at,
                    format!("%{name} at {pos} in {src:?} is not a constant of the view"),
                ));
            }
        }
        Ok(e)
    }

    fn column(&mut self, v: &Value, at: &str) -> Result<Column, ViewError> {
        let o = object(v, at)?;
        check_fields(
            o,
            at,
            &[
                "name",
                "path",
                "description",
                "collection",
                "type",
                "tag",
                "extension",
            ],
            "a column",
        )?;
        let name = string(
            o.get("name")
                .ok_or_else(|| err(at, "a column needs a name"))?,
            &join(at, "name"),
        )?;
        if !valid_name(name) {
            return Err(err(
                &join(at, "name"),
                format!("column name {name:?} must start with a letter and contain only letters, digits and _"),
            ));
        }
        let repeated = |i: usize| self.repeated.iter().any(|r| r.contains(&i));
        if let Some((_, c)) = self
            .columns
            .iter()
            .enumerate()
            .find(|(i, c)| c.name == name && !repeated(*i))
        {
            return Err(err(
                &join(at, "name"),
                format!("column name {name:?} is already used at {}", c.at),
            ));
        }
        let path = self.expr(
            o.get("path")
                .ok_or_else(|| err(at, "a column needs a path"))?,
            &join(at, "path"),
        )?;
        let collection = match o.get("collection") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(x) => {
                return Err(err(
                    &join(at, "collection"),
                    format!("expected a boolean, found {}", json_kind(x)),
                ))
            }
        };
        let fhir_type = match o.get("type") {
            None => None,
            Some(t) => Some(string(t, &join(at, "type"))?.to_string()),
        };
        let kind = match &fhir_type {
            None => ColumnKind::Any,
            Some(t) => kind_of(t).ok_or_else(|| {
                err(
                    &join(at, "type"),
                    format!("{t:?} is not a primitive FHIR type (boolean, integer, decimal, string, code, id, uri, date, dateTime, instant, time, ...)"),
                )
            })?,
        };
        let c = Column {
            name: name.to_string(),
            fhir_type,
            kind,
            collection,
            at: at.to_string(),
            path,
        };
        self.columns.push(c.clone());
        Ok(c)
    }

    fn select(&mut self, v: &Value, at: &str) -> Result<Select, ViewError> {
        let o = object(v, at)?;
        check_fields(
            o,
            at,
            &[
                "column",
                "select",
                "forEach",
                "forEachOrNull",
                "repeat",
                "unionAll",
                "description",
                "extension",
            ],
            "a select",
        )?;
        let iters = ["forEach", "forEachOrNull", "repeat"]
            .iter()
            .filter(|k| o.contains_key(**k))
            .count();
        if iters > 1 {
            return Err(err(at, "use only one of forEach, forEachOrNull and repeat"));
        }
        let iter = if let Some(e) = o.get("forEach") {
            Iter::ForEach(self.expr(e, &join(at, "forEach"))?)
        } else if let Some(e) = o.get("forEachOrNull") {
            Iter::ForEachOrNull(self.expr(e, &join(at, "forEachOrNull"))?)
        } else if let Some(r) = o.get("repeat") {
            let at = join(at, "repeat");
            let paths = array(r, &at)?;
            if paths.is_empty() {
                return Err(err(&at, "repeat needs at least one path"));
            }
            Iter::Repeat(
                paths
                    .iter()
                    .enumerate()
                    .map(|(i, p)| self.expr(p, &format!("{at}[{i}]")))
                    .collect::<Result<_, _>>()?,
            )
        } else {
            Iter::Once
        };
        let first = self.columns.len();
        let mut columns = Vec::new();
        if let Some(c) = o.get("column") {
            let at = join(at, "column");
            for (i, c) in array(c, &at)?.iter().enumerate() {
                columns.push(self.column(c, &format!("{at}[{i}]"))?);
            }
        }
        let mut select = Vec::new();
        if let Some(s) = o.get("select") {
            let at = join(at, "select");
            for (i, s) in array(s, &at)?.iter().enumerate() {
                select.push(self.select(s, &format!("{at}[{i}]"))?);
            }
        }
        let mut union_all = Vec::new();
        if let Some(u) = o.get("unionAll") {
            let at = join(at, "unionAll");
            let branches = array(u, &at)?;
            let start = self.columns.len();
            let mut first: Option<Vec<(String, ColumnKind, bool)>> = None;
            for (i, b) in branches.iter().enumerate() {
                let bat = format!("{at}[{i}]");
                let before = self.columns.len();
                if i == 1 {
                    self.repeated.push(start..before);
                }
                let branch = self.select(b, &bat);
                let branch = match branch {
                    Ok(b) => b,
                    Err(e) => {
                        if i > 0 {
                            self.repeated.pop();
                        }
                        return Err(e);
                    }
                };
                union_all.push(branch);
                // Every branch defines the same columns; the output keeps the first branch's.
                let these: Vec<(String, ColumnKind, bool)> = self.columns[before..]
                    .iter()
                    .map(|c| (c.name.clone(), c.kind, c.collection))
                    .collect();
                match &first {
                    None => first = Some(these),
                    Some(f) if *f == these => self.columns.truncate(before),
                    Some(f) => {
                        let names = |v: &[(String, ColumnKind, bool)]| {
                            v.iter()
                                .map(|c| c.0.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        };
                        return Err(err(
                            &bat,
                            format!(
                                "every unionAll branch must have the same columns (names, types, collection) in the same order: [{}] here, [{}] in {at}[0]",
                                names(&these),
                                names(f)
                            ),
                        ));
                    }
                }
            }
            if branches.len() > 1 {
                self.repeated.pop();
            }
        }
        if columns.is_empty() && select.is_empty() && union_all.is_empty() {
            return Err(err(at, "a select needs column, select or unionAll"));
        }
        Ok(Select {
            iter,
            columns,
            select,
            union_all,
            width: self.columns.len() - first,
            at: at.to_string(),
        })
    }
}

/// Names for columns of unionAll branches after the first are checked above but not kept, so
/// a later column name may legitimately repeat one of them; the duplicate check only sees
/// kept columns.
fn constant(v: &Value, at: &str) -> Result<(String, Item<'static>), ViewError> {
    let o = object(v, at)?;
    let name = string(
        o.get("name")
            .ok_or_else(|| err(at, "a constant needs a name"))?,
        &join(at, "name"),
    )?;
    if !valid_name(name) {
        return Err(err(&join(at, "name"), format!("constant name {name:?} must start with a letter and contain only letters, digits and _")));
    }
    let mut value = None;
    for (k, x) in o {
        if k == "name" || k == "description" || k == "extension" {
            continue;
        }
        let Some(ty) = k.strip_prefix("value") else {
            return Err(err(
                &join(at, k),
                "unknown field of a constant (known: name, description, value[x])",
            ));
        };
        if value.is_some() {
            return Err(err(at, "a constant has exactly one value[x]"));
        }
        let bad = || err(&join(at, k), format!("not a valid {ty}: {x}"));
        let item = match ty {
            "Boolean" => Item::Bool(x.as_bool().ok_or_else(bad)?),
            "Integer" | "PositiveInt" | "UnsignedInt" | "Integer64" => {
                Item::Int(x.as_i64().ok_or_else(bad)?)
            }
            "Decimal" => Item::Dec(x.as_f64().and_then(Decimal::from_f64).ok_or_else(bad)?),
            "Date" => Item::Temporal(x.as_str().and_then(Temporal::parse_date).ok_or_else(bad)?),
            "DateTime" | "Instant" => Item::Temporal(
                x.as_str()
                    .and_then(|s| Temporal::parse_datetime(s, false))
                    .ok_or_else(bad)?,
            ),
            "Time" => Item::Temporal(x.as_str().and_then(Temporal::parse_time).ok_or_else(bad)?),
            "String" | "Code" | "Id" | "Uri" | "Url" | "Canonical" | "Oid" | "Uuid"
            | "Markdown" | "Base64Binary" => {
                Item::Str(Cow::Owned(x.as_str().ok_or_else(bad)?.to_string()))
            }
            _ => {
                return Err(err(
                    &join(at, k),
                    format!("value{ty} is not a primitive type a constant can have"),
                ))
            }
        };
        value = Some(item);
    }
    let value = value.ok_or_else(|| {
        err(
            at,
            format!("constant {name:?} has no value[x] (valueString, valueInteger, ...)"),
        )
    })?;
    Ok((name.to_string(), value))
}

/// Checks and compiles a ViewDefinition.
pub(crate) fn compile(v: &Value) -> Result<Compiled, ViewError> {
    let o = object(v, "")?;
    let mut known: Vec<&str> = METADATA.to_vec();
    known.extend(["resource", "constant", "select", "where"]);
    check_fields(o, "", &known, "a ViewDefinition")?;
    if let Some(t) = o.get("resourceType") {
        if t.as_str() != Some("ViewDefinition") {
            return Err(err(
                "resourceType",
                format!("expected \"ViewDefinition\", found {t}"),
            ));
        }
    }
    let resource = string(
        o.get("resource").ok_or_else(|| {
            err(
                "",
                "a ViewDefinition needs resource (the FHIR resource type it reads)",
            )
        })?,
        "resource",
    )?;
    if crate::fhir::resource_type_index(resource).is_none() {
        return Err(err(
            "resource",
            format!("{resource:?} is not an R4 resource type"),
        ));
    }
    let name = match o.get("name") {
        Some(n) => Some(string(n, "name")?.to_string()),
        None => None,
    };
    let mut constants = Vec::new();
    if let Some(c) = o.get("constant") {
        for (i, c) in array(c, "constant")?.iter().enumerate() {
            let (n, v) = constant(c, &format!("constant[{i}]"))?;
            if constants.iter().any(|(m, _): &(String, Item)| *m == n) {
                return Err(err(
                    &format!("constant[{i}].name"),
                    format!("constant {n:?} is defined twice"),
                ));
            }
            constants.push((n, v));
        }
    }
    let mut b = Builder {
        columns: Vec::new(),
        constants: constants.iter().map(|(n, _)| n.clone()).collect(),
        repeated: Vec::new(),
    };
    let mut wheres = Vec::new();
    if let Some(w) = o.get("where") {
        for (i, w) in array(w, "where")?.iter().enumerate() {
            let at = format!("where[{i}]");
            let wo = object(w, &at)?;
            check_fields(wo, &at, &["path", "description", "extension"], "a where")?;
            let p = wo
                .get("path")
                .ok_or_else(|| err(&at, "a where needs a path"))?;
            let at = join(&at, "path");
            wheres.push((b.expr(p, &at)?, at));
        }
    }
    let sel = o
        .get("select")
        .ok_or_else(|| err("", "a ViewDefinition needs select (its columns)"))?;
    let sels = array(sel, "select")?;
    if sels.is_empty() {
        return Err(err("select", "a ViewDefinition needs at least one select"));
    }
    let mut select = Vec::new();
    for (i, s) in sels.iter().enumerate() {
        select.push(b.select(s, &format!("select[{i}]"))?);
    }
    let root = Select {
        iter: Iter::Once,
        columns: Vec::new(),
        width: b.columns.len(),
        select,
        union_all: Vec::new(),
        at: String::new(),
    };
    Ok(Compiled {
        name,
        resource: resource.to_string(),
        constants,
        wheres,
        root,
        columns: b.columns,
    })
}
