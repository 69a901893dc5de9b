//! Checks `[transform]` into a [`TransformPlan`]: type names resolved (with did-you-mean),
//! FHIRPath `where` expressions compiled once, removal paths checked against the R4 model and
//! parsed into a tree per type, tags rendered as JSON. Every error names the file, line and field (exit code 2).

use super::error::closest;
use super::plan::{type_list, Ctx};
use super::ConfigError;
use crate::fhir::model::{ElemType, Kind, Model, TypeId};
use crate::fhir::{resource_type_name, TypeIdx, RESOURCE_TYPES};
use crate::fhirpath::Expression;
use crate::stage::transform::config::TransformConfig;
use crate::stage::transform::splice::{write_str, Tag, Trie};
use std::fmt;

/// The checked `[transform]` section.
#[derive(Debug, Clone, Default)]
pub struct TransformPlan {
    /// Replace Bundles by their entries.
    pub unbundle: bool,
    /// Types kept after unbundling (`None` = all).
    pub types: Option<Vec<TypeIdx>>,
    /// Compiled `where` filters by type.
    pub filters: Vec<(TypeIdx, Expression)>,
    /// Keep only the newest resource per type and id.
    pub dedupe: bool,
    /// Removal paths as written.
    pub remove: Vec<String>,
    /// Paths removed from every type.
    remove_all: Trie,
    /// Paths for one type, merged with `remove_all`.
    remove_by_type: Vec<(TypeIdx, Trie)>,
    /// New `meta.source`.
    pub meta_source: Option<String>,
    /// Tags added to `meta.tag`.
    pub meta_tags: Vec<Tag>,
    /// Base URL stripped from absolute references (no trailing `/`).
    pub strip_base_url: Option<String>,
}

impl TransformPlan {
    /// The removal tree for a type, `None` when nothing is removed from it.
    pub fn remove_for(&self, t: TypeIdx) -> Option<&Trie> {
        let tree = self
            .remove_by_type
            .iter()
            .find(|(x, _)| *x == t)
            .map(|(_, tr)| tr)
            .unwrap_or(&self.remove_all);
        (!tree.is_empty()).then_some(tree)
    }

    /// The `where` filter of a type.
    pub fn filter_for(&self, t: TypeIdx) -> Option<&Expression> {
        self.filters.iter().find(|(x, _)| *x == t).map(|(_, e)| e)
    }
}

/// Elements the pipeline itself relies on (type, id, typed columns, dedupe).
const PROTECTED: [&str; 5] = [
    "id",
    "resourceType",
    "meta",
    "meta.lastUpdated",
    "meta.versionId",
];

/// Walks `segs` from type `t` in the R4 model; on a miss, the index of the segment and the
/// element names that were possible there.
fn walk(model: &Model, mut t: TypeId, segs: &[&str]) -> Result<(), (usize, Vec<String>)> {
    for (i, seg) in segs.iter().enumerate() {
        let td = model.get(t);
        if matches!(td.kind, Kind::Primitive(_)) {
            // A primitive's id and extensions live in its `_name` sibling.
            return match *seg {
                "id" | "extension" => Ok(()),
                _ => Err((i, vec!["id".into(), "extension".into()])),
            };
        }
        match td.element(seg) {
            None => return Err((i, td.elements.iter().map(|e| e.name.clone()).collect())),
            Some(e) => match e.ty {
                ElemType::Resource => return Ok(()),
                ElemType::Type(x) => t = x,
            },
        }
    }
    Ok(())
}

/// Checks a removal path against the R4 model: for one type, or for at least one type.
fn check_path(ctx: &Ctx, p: &str, ty: Option<TypeIdx>, segs: &[&str]) -> Result<(), ConfigError> {
    let model = Model::r4();
    let types: Vec<TypeIdx> = match ty {
        Some(t) => vec![t],
        None => (0..RESOURCE_TYPES.len() as TypeIdx).collect(),
    };
    let mut best: Option<(usize, Vec<String>, TypeIdx)> = None;
    for t in types {
        let Some(id) = model.type_id(resource_type_name(t)) else {
            continue;
        };
        match walk(model, id, segs) {
            Ok(()) => return Ok(()),
            Err((i, names)) => {
                if best.as_ref().is_none_or(|b| i > b.0) {
                    best = Some((i, names, t));
                }
            }
        }
    }
    let (i, names, t) = best.unwrap_or_default();
    let fix = match closest(segs.get(i).copied().unwrap_or(""), &names) {
        Some(n) => format!("did you mean `{n}`?"),
        None => "write JSON element names of the resource, e.g. \"text\", \"name.period\" or \"Patient.photo\"".into(),
    };
    let within = if i == 0 {
        resource_type_name(t).to_string()
    } else {
        format!("{}.{}", resource_type_name(t), segs[..i].join("."))
    };
    let message = match ty {
        Some(_) => format!("`{p}`: {within} has no element `{}`", segs[i]),
        None => format!(
            "`{p}` is not an element path of any R4 resource (closest: {within} has no element `{}`)",
            segs[i]
        ),
    };
    Err(ctx.err(&["transform", "remove"], message, fix))
}

fn is_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic())
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

pub(super) fn check(ctx: &Ctx, raw: &TransformConfig) -> Result<TransformPlan, ConfigError> {
    let types = match &raw.types {
        Some(t) => Some(type_list(ctx, &["transform", "types"], t)?),
        None => None,
    };
    let mut filters = Vec::new();
    for (name, expr) in &raw.where_ {
        let field = ["transform", "where", name.as_str()];
        let t = type_list(ctx, &field, std::slice::from_ref(name))?[0];
        let e = Expression::parse(expr).map_err(|e| {
            ctx.err(
                &field,
                format!("the FHIRPath expression `{expr}` does not compile: {e}"),
                "write a FHIRPath expression evaluated on each resource of this type, e.g. status = 'final'",
            )
        })?;
        filters.push((t, e));
    }

    let mut remove_all = Trie::default();
    let mut typed: Vec<(TypeIdx, Vec<String>)> = Vec::new();
    for p in &raw.remove {
        let bad = |m: String, fix: &str| ctx.err(&["transform", "remove"], m, fix.to_string());
        let segs: Vec<&str> = p.split('.').collect();
        if segs.iter().any(|s| !is_name(s)) {
            return Err(bad(
                format!("`{p}` is not an element path"),
                "write element names separated by dots, e.g. \"text\", \"name.period\" or \"Patient.photo\"",
            ));
        }
        let (ty, rest) = if segs[0].starts_with(|c: char| c.is_ascii_uppercase()) {
            let t = type_list(ctx, &["transform", "remove"], &[segs[0].to_string()])?[0];
            if segs.len() < 2 {
                return Err(bad(
                    format!("`{p}` names a type but no element"),
                    "to drop a whole type use transform.types; to remove an element write Type.element",
                ));
            }
            (Some(t), &segs[1..])
        } else {
            (None, &segs[..])
        };
        check_path(ctx, p, ty, rest)?;
        let joined = rest.join(".");
        if PROTECTED.contains(&joined.as_str()) {
            return Err(bad(
                format!("`{p}` cannot be removed"),
                "id, resourceType, meta, meta.lastUpdated and meta.versionId are used by the typed columns and dedupe",
            ));
        }
        match ty {
            None => remove_all.insert(rest),
            Some(t) => match typed.iter_mut().find(|(x, _)| *x == t) {
                Some((_, v)) => v.push(joined),
                None => typed.push((t, vec![joined])),
            },
        }
    }
    let remove_by_type = typed
        .into_iter()
        .map(|(t, paths)| {
            let mut tree = remove_all.clone();
            for p in &paths {
                tree.insert(&p.split('.').collect::<Vec<_>>());
            }
            (t, tree)
        })
        .collect();

    let (mut meta_source, mut meta_tags) = (None, Vec::new());
    if let Some(m) = &raw.meta {
        if let Some(s) = &m.source {
            if s.trim().is_empty() {
                return Err(ctx.err(
                    &["transform", "meta", "source"],
                    "meta.source is empty".into(),
                    "give a URI naming where the data came from, or remove the field",
                ));
            }
            meta_source = Some(s.clone());
        }
        for t in &m.tag {
            if t.code.trim().is_empty() {
                return Err(ctx.err(
                    &["transform", "meta", "tag"],
                    "a tag has an empty code".into(),
                    "give every tag a code, e.g. { system = \"http://example.org/tags\", code = \"imported\" }",
                ));
            }
            let mut json = Vec::new();
            json.push(b'{');
            if let Some(s) = &t.system {
                json.extend_from_slice(b"\"system\":");
                write_str(&mut json, s);
                json.push(b',');
            }
            json.extend_from_slice(b"\"code\":");
            write_str(&mut json, &t.code);
            if let Some(d) = &t.display {
                json.extend_from_slice(b",\"display\":");
                write_str(&mut json, d);
            }
            json.push(b'}');
            meta_tags.push(Tag {
                system: t.system.clone(),
                code: t.code.clone(),
                json,
            });
        }
    }

    let strip_base_url = match &raw.strip_base_url {
        None => None,
        Some(u) => {
            let base = u.trim_end_matches('/');
            if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() < 9 {
                return Err(ctx.err(
                    &["transform", "strip_base_url"],
                    format!("`{u}` is not an http(s) base URL"),
                    "give the server's base, e.g. \"https://fhir.example.org/r4\"",
                ));
            }
            Some(base.to_string())
        }
    };

    Ok(TransformPlan {
        unbundle: raw.unbundle,
        types,
        filters,
        dedupe: raw.dedupe,
        remove: raw.remove.clone(),
        remove_all,
        remove_by_type,
        meta_source,
        meta_tags,
        strip_base_url,
    })
}

impl fmt::Display for TransformPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  transform (in order: unbundle, types, where, dedupe, remove, meta, references):"
        )?;
        if self.unbundle {
            writeln!(
                f,
                "    unbundle: Bundle entries become resources (urn:uuid references → Type/id)"
            )?;
        }
        if let Some(t) = &self.types {
            let names: Vec<&str> = t.iter().map(|&i| RESOURCE_TYPES[i as usize]).collect();
            writeln!(f, "    types: {} (others filtered)", names.join(", "))?;
        }
        for (t, e) in &self.filters {
            writeln!(f, "    where {}: {}", resource_type_name(*t), e.source())?;
        }
        if self.dedupe {
            writeln!(
                f,
                "    dedupe: newest meta.lastUpdated per type and id (two passes over the input)"
            )?;
        }
        if !self.remove.is_empty() {
            writeln!(f, "    remove: {}", self.remove.join(", "))?;
        }
        if let Some(s) = &self.meta_source {
            writeln!(f, "    meta.source = {s}")?;
        }
        for t in &self.meta_tags {
            writeln!(f, "    meta.tag += {}", String::from_utf8_lossy(&t.json))?;
        }
        if let Some(b) = &self.strip_base_url {
            writeln!(f, "    references: {b}/Type/id → Type/id")?;
        }
        Ok(())
    }
}
