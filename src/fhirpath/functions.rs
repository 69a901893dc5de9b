//! The function library: the FHIRPath N1 functions (existence, filtering, subsetting,
//! combining, conversion, strings, math, tree navigation, utility, aggregate) and the FHIR ones
//! (`extension`, `hasValue`, `getValue`, `resolve`). [`arity`] is what the parser checks calls
//! against; [`call`] evaluates one.

use super::decimal::Decimal;
use super::error::EvalError;
use super::eval::{binary_values, compare, equal, singleton, to_bool, Ctx, Frame};
use super::parser::{BinOp, Expr, ExprKind, TypeSpec};
use super::quantity::{calendar_to_ucum, convert};
use super::temporal::{self, Kind, Temporal};
use super::types::is_subtype;
use super::value::{numeric, Item, Items, Node};
use base64::Engine as _;
use simd_json::prelude::*;
use std::borrow::Cow;
use std::cmp::Ordering;

/// `(name, min args, max args)` of every function.
const FUNCTIONS: &[(&str, usize, usize)] = &[
    ("empty", 0, 0),
    ("exists", 0, 1),
    ("all", 1, 1),
    ("allTrue", 0, 0),
    ("anyTrue", 0, 0),
    ("allFalse", 0, 0),
    ("anyFalse", 0, 0),
    ("subsetOf", 1, 1),
    ("supersetOf", 1, 1),
    ("count", 0, 0),
    ("distinct", 0, 0),
    ("isDistinct", 0, 0),
    ("where", 1, 1),
    ("select", 1, 1),
    ("repeat", 1, 1),
    ("ofType", 1, 1),
    ("single", 0, 0),
    ("first", 0, 0),
    ("last", 0, 0),
    ("tail", 0, 0),
    ("skip", 1, 1),
    ("take", 1, 1),
    ("intersect", 1, 1),
    ("exclude", 1, 1),
    ("union", 1, 1),
    ("combine", 1, 1),
    ("iif", 2, 3),
    ("toBoolean", 0, 0),
    ("convertsToBoolean", 0, 0),
    ("toInteger", 0, 0),
    ("convertsToInteger", 0, 0),
    ("toDecimal", 0, 0),
    ("convertsToDecimal", 0, 0),
    ("toString", 0, 0),
    ("convertsToString", 0, 0),
    ("toDate", 0, 0),
    ("convertsToDate", 0, 0),
    ("toDateTime", 0, 0),
    ("convertsToDateTime", 0, 0),
    ("toTime", 0, 0),
    ("convertsToTime", 0, 0),
    ("toQuantity", 0, 1),
    ("convertsToQuantity", 0, 1),
    ("indexOf", 1, 1),
    ("substring", 1, 2),
    ("startsWith", 1, 1),
    ("endsWith", 1, 1),
    ("contains", 1, 1),
    ("upper", 0, 0),
    ("lower", 0, 0),
    ("replace", 2, 2),
    ("matches", 1, 1),
    ("replaceMatches", 2, 2),
    ("length", 0, 0),
    ("toChars", 0, 0),
    ("split", 1, 1),
    ("join", 0, 1),
    ("trim", 0, 0),
    ("encode", 1, 1),
    ("decode", 1, 1),
    ("escape", 1, 1),
    ("unescape", 1, 1),
    ("abs", 0, 0),
    ("ceiling", 0, 0),
    ("exp", 0, 0),
    ("floor", 0, 0),
    ("ln", 0, 0),
    ("log", 1, 1),
    ("power", 1, 1),
    ("round", 0, 1),
    ("sqrt", 0, 0),
    ("truncate", 0, 0),
    ("children", 0, 0),
    ("descendants", 0, 0),
    ("nodesByType", 1, 1),
    ("nodesByName", 1, 1),
    ("trace", 1, 2),
    ("now", 0, 0),
    ("today", 0, 0),
    ("timeOfDay", 0, 0),
    ("not", 0, 0),
    ("is", 1, 1),
    ("as", 1, 1),
    ("type", 0, 0),
    ("aggregate", 1, 2),
    ("extension", 1, 1),
    ("sort", 0, 8),
    ("matchesFull", 1, 1),
    ("precision", 0, 0),
    ("lowBoundary", 0, 1),
    ("highBoundary", 0, 1),
    ("comparable", 1, 1),
    ("hasValue", 0, 0),
    ("getValue", 0, 0),
    ("resolve", 0, 0),
    ("conformsTo", 1, 1),
];

/// `(min, max)` arguments of a function, `None` when there is no such function.
pub fn arity(name: &str) -> Option<(usize, usize)> {
    FUNCTIONS.iter().find(|f| f.0 == name).map(|f| (f.1, f.2))
}

/// The functions SQL on FHIR v2 adds for ViewDefinitions; known to the parser only when an
/// expression is compiled with [`super::Expression::parse_view`].
const VIEW_FUNCTIONS: &[(&str, usize, usize)] =
    &[("getResourceKey", 0, 0), ("getReferenceKey", 0, 1)];

/// `(min, max)` arguments of a SQL on FHIR function, `None` when there is no such function.
pub fn view_arity(name: &str) -> Option<(usize, usize)> {
    VIEW_FUNCTIONS
        .iter()
        .find(|f| f.0 == name)
        .map(|f| (f.1, f.2))
}

/// `getResourceKey()`: the `id` of each resource in the input (the key rows of one resource
/// share, and that [`reference_key`] gives for references to it).
fn resource_key<'a>(input: &[Item<'a>]) -> Items<'a> {
    input
        .iter()
        .filter_map(|it| {
            let o = it.object()?;
            o.get("resourceType")?;
            o.get("id").and_then(|v| v.into_string())
        })
        .map(|id| Item::Str(Cow::Borrowed(id)))
        .collect()
}

/// `getReferenceKey([Type])`: for each Reference in the input, the id of the resource it
/// names (`Type/id`, also at the end of an absolute URL or with `/_history/n`); empty for a
/// reference to another type than `Type`, a contained (`#id`) or a `urn:` reference.
fn reference_key<'a>(input: &[Item<'a>], ty: Option<&str>) -> Items<'a> {
    input
        .iter()
        .filter_map(|it| {
            let r = it.object()?.get("reference")?.into_string()?;
            let (rtype, id) = crate::fhir::reference_type_id(r)?;
            if ty.is_some_and(|t| t != rtype) {
                return None;
            }
            Some(Item::Str(Cow::Borrowed(id)))
        })
        .collect()
}

fn err<T>(pos: usize, m: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError::new(pos, m))
}

fn one<'a>(b: bool) -> Items<'a> {
    vec![Item::Bool(b)]
}

fn s<'a>(v: String) -> Item<'a> {
    Item::Str(Cow::Owned(v))
}

fn type_arg(e: &Expr, pos: usize) -> Result<TypeSpec, EvalError> {
    match &e.kind {
        ExprKind::Ident(n) => Ok(TypeSpec {
            namespace: None,
            name: n.clone(),
        }),
        ExprKind::Member(a, n) => match &a.kind {
            ExprKind::Ident(ns) => Ok(TypeSpec {
                namespace: Some(ns.clone()),
                name: n.clone(),
            }),
            _ => err(pos, "expected a type name"),
        },
        _ => err(pos, "expected a type name"),
    }
}

fn dedup<'a>(items: Items<'a>) -> Items<'a> {
    let mut out: Items<'a> = Vec::with_capacity(items.len());
    for x in items {
        if !out.iter().any(|y| equal(&x, y) == Some(true)) {
            out.push(x);
        }
    }
    out
}

fn contains_item(c: &[Item<'_>], x: &Item<'_>) -> bool {
    c.iter().any(|y| equal(x, y) == Some(true))
}

/// Evaluates `name(args)` on `input`; `focus` is what the arguments that are not per-item
/// expressions are evaluated against.
pub fn call<'a>(
    ctx: &Ctx<'a, '_>,
    name: &str,
    input: Items<'a>,
    args: &[Expr],
    focus: &[Item<'a>],
    fr: Frame<'_, 'a>,
    pos: usize,
) -> Result<Items<'a>, EvalError> {
    let arg = |i: usize| -> Result<Items<'a>, EvalError> { ctx.eval(&args[i], focus, fr) };
    let per_item = |e: &Expr, it: &Item<'a>, i: usize| -> Result<Items<'a>, EvalError> {
        let f = Frame {
            this: Some(it),
            index: i,
            total: fr.total,
        };
        ctx.eval(e, std::slice::from_ref(it), f)
    };
    let str_arg = |i: usize| -> Result<Option<String>, EvalError> {
        let v = arg(i)?;
        Ok(singleton(&v, pos, name)?.and_then(|x| x.as_str().map(str::to_string)))
    };
    let int_arg = |i: usize| -> Result<Option<i64>, EvalError> {
        let v = arg(i)?;
        match singleton(&v, pos, name)?.map(|x| x.prim().into_owned()) {
            None => Ok(None),
            Some(Item::Int(n)) => Ok(Some(n)),
            Some(_) => err(pos, format!("{name}() expects an integer argument")),
        }
    };
    Ok(match name {
        "empty" => one(input.is_empty()),
        "exists" => match args.first() {
            None => one(!input.is_empty()),
            Some(e) => {
                let mut any = false;
                for (i, it) in input.iter().enumerate() {
                    if to_bool(&per_item(e, it, i)?, pos)? == Some(true) {
                        any = true;
                        break;
                    }
                }
                one(any)
            }
        },
        "all" => {
            for (i, it) in input.iter().enumerate() {
                if to_bool(&per_item(&args[0], it, i)?, pos)? != Some(true) {
                    return Ok(one(false));
                }
            }
            one(true)
        }
        "allTrue" | "anyTrue" | "allFalse" | "anyFalse" => {
            let mut bs = Vec::with_capacity(input.len());
            for it in &input {
                match &*it.prim() {
                    Item::Bool(b) => bs.push(*b),
                    _ => return err(pos, format!("{name}() needs booleans")),
                }
            }
            one(match name {
                "allTrue" => bs.iter().all(|b| *b),
                "anyTrue" => bs.iter().any(|b| *b),
                "allFalse" => bs.iter().all(|b| !*b),
                _ => bs.iter().any(|b| !*b),
            })
        }
        "subsetOf" => {
            let other = arg(0)?;
            one(input.iter().all(|x| contains_item(&other, x)))
        }
        "supersetOf" => {
            let other = arg(0)?;
            let all = other.iter().all(|x| contains_item(&input, x));
            one(all)
        }
        "count" => vec![Item::Int(input.len() as i64)],
        "distinct" => dedup(input),
        "isDistinct" => {
            let n = input.len();
            one(dedup(input).len() == n)
        }
        "where" => {
            let mut out = Vec::new();
            for (i, it) in input.iter().enumerate() {
                if to_bool(&per_item(&args[0], it, i)?, pos)? == Some(true) {
                    out.push(it.clone());
                }
            }
            out
        }
        "select" => {
            let mut out = Vec::new();
            for (i, it) in input.iter().enumerate() {
                out.extend(per_item(&args[0], it, i)?);
            }
            out
        }
        "repeat" => {
            let mut out: Items<'a> = Vec::new();
            let mut frontier = input;
            while !frontier.is_empty() {
                let mut next = Vec::new();
                for (i, it) in frontier.iter().enumerate() {
                    for x in per_item(&args[0], it, i)? {
                        if !contains_item(&out, &x) {
                            out.push(x.clone());
                            next.push(x);
                        }
                    }
                }
                frontier = next;
            }
            out
        }
        "ofType" => {
            let t = type_arg(&args[0], pos)?;
            let mut out = Vec::new();
            for it in input {
                if ctx.is_type(&it, &t, false, pos)? {
                    out.push(it);
                }
            }
            out
        }
        "is" | "as" => {
            let t = type_arg(&args[0], pos)?;
            match singleton(&input, pos, name)? {
                None => Vec::new(),
                Some(x) => {
                    let ok = ctx.is_type(x, &t, name == "is", pos)?;
                    if name == "is" {
                        one(ok)
                    } else if ok {
                        vec![x.clone()]
                    } else {
                        Vec::new()
                    }
                }
            }
        }
        "type" => input
            .iter()
            .map(|x| {
                let (ns, n) = x.type_name();
                Item::Type(ns, Cow::Owned(n.to_string()))
            })
            .collect(),
        "single" => match input.len() {
            0 | 1 => input,
            n => return err(pos, format!("single() found {n} items")),
        },
        "first" => input.into_iter().take(1).collect(),
        "last" => input.into_iter().last().into_iter().collect(),
        "tail" => input.into_iter().skip(1).collect(),
        "skip" => match int_arg(0)? {
            Some(n) => input.into_iter().skip(n.max(0) as usize).collect(),
            None => Vec::new(),
        },
        "take" => match int_arg(0)? {
            Some(n) => input.into_iter().take(n.max(0) as usize).collect(),
            None => Vec::new(),
        },
        "intersect" => {
            let other = arg(0)?;
            dedup(
                input
                    .into_iter()
                    .filter(|x| contains_item(&other, x))
                    .collect(),
            )
        }
        "exclude" => {
            let other = arg(0)?;
            input
                .into_iter()
                .filter(|x| !contains_item(&other, x))
                .collect()
        }
        "union" => binary_values(BinOp::Union, input, arg(0)?, pos)?,
        "combine" => {
            let mut v = input;
            v.extend(arg(0)?);
            v
        }
        "iif" => {
            if input.len() > 1 {
                return err(pos, "iif() on a collection of several items");
            }
            let this = input.first();
            let f = Frame {
                this: this.or(fr.this),
                index: fr.index,
                total: fr.total,
            };
            let base: &[Item<'a>] = if input.is_empty() { focus } else { &input };
            let c = ctx.eval(&args[0], base, f)?;
            let cond = match singleton(&c, pos, "iif criterion")?.map(|x| x.prim().into_owned()) {
                None => false,
                Some(Item::Bool(b)) => b,
                Some(_) => return err(pos, "iif() criterion must be a boolean"),
            };
            if cond {
                ctx.eval(&args[1], base, f)?
            } else if let Some(e) = args.get(2) {
                ctx.eval(e, base, f)?
            } else {
                Vec::new()
            }
        }
        "not" => match to_bool(&input, pos)? {
            Some(b) => one(!b),
            None => Vec::new(),
        },
        "aggregate" => {
            let mut total = match args.get(1) {
                Some(_) => arg(1)?,
                None => Vec::new(),
            };
            for (i, it) in input.iter().enumerate() {
                let f = Frame {
                    this: Some(it),
                    index: i,
                    total: Some(&total),
                };
                total = ctx.eval(&args[0], std::slice::from_ref(it), f)?;
            }
            total
        }
        "nodesByType" | "nodesByName" => {
            if !ctx.env.anonymizer_functions() {
                return err(
                    pos,
                    format!("{name}() is an anonymizer extension, not FHIRPath; it is only available in de-identification rules"),
                );
            }
            let key = str_arg(0)?.unwrap_or_default();
            nodes_by(ctx, input, name == "nodesByType", &key)
        }
        "children" | "descendants" => {
            let mut out = Vec::new();
            let mut frontier = input;
            loop {
                let mut next = Vec::new();
                for it in &frontier {
                    children_of(ctx, it, &mut next);
                }
                if next.is_empty() || name == "children" {
                    out.extend(next);
                    break;
                }
                out.extend(next.iter().cloned());
                frontier = next;
            }
            out
        }
        "trace" => {
            if let Some(label) = str_arg(0)? {
                let shown = match args.get(1) {
                    Some(e) => {
                        let mut v = Vec::new();
                        for (i, it) in input.iter().enumerate() {
                            v.extend(per_item(e, it, i)?);
                        }
                        v
                    }
                    None => input.clone(),
                };
                if std::env::var_os("FHIRPATH_TRACE").is_some() {
                    eprintln!("trace {label}: {}", super::value::to_json(&shown));
                }
            }
            input
        }
        "now" => vec![Item::Temporal(temporal::now())],
        "today" => {
            let mut t = temporal::now();
            t.kind = Kind::Date;
            t.precision = temporal::DAY;
            t.tz = None;
            vec![Item::Temporal(t)]
        }
        "timeOfDay" => {
            let mut t = temporal::now();
            t.kind = Kind::Time;
            t.tz = None;
            vec![Item::Temporal(t)]
        }
        "extension" => {
            let url = str_arg(0)?;
            let mut exts = Vec::new();
            for it in &input {
                ctx.children(it, "extension", &mut exts);
            }
            exts.into_iter()
                .filter(|e| {
                    let mut u = Vec::new();
                    ctx.children(e, "url", &mut u);
                    u.first().and_then(|x| x.as_str()) == url.as_deref()
                })
                .collect()
        }
        "sort" => {
            let mut keyed = Vec::with_capacity(input.len());
            for (i, it) in input.iter().enumerate() {
                let mut keys = Vec::with_capacity(args.len());
                for a in args {
                    let (e, desc) = match &a.kind {
                        ExprKind::Neg(inner) => (&**inner, true),
                        _ => (a, false),
                    };
                    keys.push((per_item(e, it, i)?.into_iter().next(), desc));
                }
                keyed.push((keys, it.clone()));
            }
            let mut failure = None;
            keyed.sort_by(|(ka, a), (kb, b)| {
                let mut ord = |x: &Item<'a>, y: &Item<'a>| match compare(x, y, pos) {
                    Ok(o) => o.unwrap_or(Ordering::Equal),
                    Err(e) => {
                        failure.get_or_insert(e);
                        Ordering::Equal
                    }
                };
                if args.is_empty() {
                    return ord(a, b);
                }
                // An empty key sorts first in either direction (the suite's testSort10).
                for ((x, desc), (y, _)) in ka.iter().zip(kb) {
                    let o = match (x, y) {
                        (None, None) => Ordering::Equal,
                        (None, Some(_)) => Ordering::Less,
                        (Some(_), None) => Ordering::Greater,
                        (Some(x), Some(y)) if *desc => ord(x, y).reverse(),
                        (Some(x), Some(y)) => ord(x, y),
                    };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                Ordering::Equal
            });
            if let Some(e) = failure {
                return Err(e);
            }
            keyed.into_iter().map(|(_, it)| it).collect()
        }
        "precision" => match singleton(&input, pos, name)?.map(|x| x.prim().into_owned()) {
            None => Vec::new(),
            Some(Item::Dec(d)) => vec![Item::Int(d.scale() as i64)],
            Some(Item::Int(_)) => vec![Item::Int(0)],
            Some(Item::Temporal(t)) => {
                let digits = if t.kind == Kind::Time {
                    [0, 0, 0, 2, 4, 6, 9]
                } else {
                    [4, 6, 8, 10, 12, 14, 17]
                };
                vec![Item::Int(digits[t.precision])]
            }
            Some(_) => return err(pos, "precision() needs a number, date or time"),
        },
        "comparable" => {
            let other = arg(0)?;
            match (
                singleton(&input, pos, name)?.map(|x| x.prim().into_owned()),
                singleton(&other, pos, name)?.map(|x| x.prim().into_owned()),
            ) {
                (Some(Item::Quantity(_, u)), Some(Item::Quantity(v, w))) => {
                    one(convert(&v, &w, &u).is_some())
                }
                (None, _) | (_, None) => Vec::new(),
                _ => return err(pos, "comparable() needs quantities"),
            }
        }
        "hasValue" => one(
            matches!(singleton(&input, pos, name)?, Some(Item::Node(Node { value: Some(v), .. })) if !v.is_object() && !v.is_array()),
        ),
        "getValue" => match singleton(&input, pos, name)? {
            Some(Item::Node(n @ Node { value: Some(v), .. })) if !v.is_object() => {
                n.primitive().into_iter().collect()
            }
            _ => Vec::new(),
        },
        "resolve" => {
            let mut out = Vec::new();
            for it in &input {
                let r = match it.object() {
                    Some(o) => o.get("reference").and_then(|r| r.into_string()),
                    None => it.as_str(),
                };
                if let Some(r) = r {
                    out.extend(resolve(ctx, r));
                }
            }
            out
        }
        "getResourceKey" => resource_key(&input),
        "getReferenceKey" => {
            let ty = match args.first() {
                Some(e) => Some(type_arg(e, pos)?.name),
                None => None,
            };
            reference_key(&input, ty.as_deref())
        }
        "conformsTo" => {
            let Some(url) = str_arg(0)? else {
                return Ok(Vec::new());
            };
            // Only the base definitions can be checked without a validator: an item conforms
            // to `.../StructureDefinition/T` when its type is T or derives from it.
            let target = url
                .strip_prefix("http://hl7.org/fhir/StructureDefinition/")
                .filter(|t| ctx.types.is_known(t));
            let Some(target) = target else {
                return err(
                    pos,
                    format!(
                        "conformsTo() can check the base definitions of R4 types only, not {url}"
                    ),
                );
            };
            match singleton(&input, pos, name)? {
                None => Vec::new(),
                Some(x) => one(is_subtype(ctx.types, x.type_name().1, target)),
            }
        }
        _ => return scalar(ctx, name, input, args, focus, fr, pos),
    })
}

/// The anonymizer's `nodesByType(t)` / `nodesByName(n)`: the input and its descendants, not
/// entering contained or bundled resources, whose FHIR type is `t` / that are named `n`.
fn nodes_by<'a>(ctx: &Ctx<'a, '_>, input: Items<'a>, by_type: bool, key: &str) -> Items<'a> {
    let is_resource = |it: &Item<'a>| {
        it.object()
            .and_then(|o| o.get("resourceType"))
            .is_some_and(|t| t.is_str())
    };
    let mut out = Vec::new();
    let mut stack: Vec<Item<'a>> = input.into_iter().rev().collect();
    while let Some(it) = stack.pop() {
        if by_type {
            if let Item::Node(n) = &it {
                if n.ty == key {
                    out.push(it.clone());
                }
            }
        } else {
            ctx.children(&it, key, &mut out);
        }
        let mut kids = Vec::new();
        children_of(ctx, &it, &mut kids);
        stack.extend(kids.into_iter().filter(|k| !is_resource(k)).rev());
    }
    out
}

fn children_of<'a>(ctx: &Ctx<'a, '_>, it: &Item<'a>, out: &mut Items<'a>) {
    // A primitive's children are the `id` and `extension` of its `_element`.
    if let Item::Node(n) = it {
        if let Some(e) = n.ext {
            if e.is_object() && n.value.is_none_or(|v| !v.is_object()) {
                let ext = Item::node(e, n.ty);
                for k in ["id", "extension"] {
                    ctx.children(&ext, k, out);
                }
                return;
            }
        }
    }
    let Some(o) = it.object().and_then(|o| o.as_object()) else {
        return;
    };
    for k in o.keys() {
        if k.starts_with('_') || k == "resourceType" {
            if let Some(base) = k.strip_prefix('_') {
                if o.get(base).is_none() {
                    ctx.children(it, base, out);
                }
            }
            continue;
        }
        ctx.children(it, k, out);
    }
}

fn resolve<'a>(ctx: &Ctx<'a, '_>, r: &str) -> Option<Item<'a>> {
    let root = ctx.root.object()?;
    let matches = |res: simd_json::tape::Value<'a, 'a>, id_only: bool| {
        let id = res.get("id").and_then(|x| x.into_string()).unwrap_or("");
        let rt = res
            .get("resourceType")
            .and_then(|x| x.into_string())
            .unwrap_or("");
        if id_only {
            r.strip_prefix('#') == Some(id)
        } else {
            r.len() == rt.len() + 1 + id.len() && r.starts_with(rt) && r.ends_with(id)
                || r.ends_with(&format!("/{rt}/{id}"))
        }
    };
    if r.starts_with('#') {
        let c = root.get("contained")?.as_array()?;
        return c.iter().find(|x| matches(*x, true)).map(|x| {
            Item::node(
                x,
                x.get("resourceType")
                    .and_then(|t| t.into_string())
                    .unwrap_or(""),
            )
        });
    }
    for e in root.get("entry")?.as_array()?.iter() {
        let full = e.get("fullUrl").and_then(|x| x.into_string());
        if let Some(res) = e.get("resource") {
            if full == Some(r) || matches(res, false) {
                return Some(Item::node(
                    res,
                    res.get("resourceType")
                        .and_then(|t| t.into_string())
                        .unwrap_or(""),
                ));
            }
        }
    }
    None
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" | "1.0" => Some(true),
        "false" | "f" | "no" | "n" | "0" | "0.0" => Some(false),
        _ => None,
    }
}

fn parse_int(s: &str) -> Option<i64> {
    let d = s.strip_prefix(['+', '-']).unwrap_or(s);
    if d.is_empty() || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Reads `4 'mg'`, `4 days`, `4`.
fn parse_quantity(s: &str) -> Option<(Decimal, String)> {
    let s = s.trim();
    let (num, unit) = match s.find(' ') {
        Some(p) => (&s[..p], s[p + 1..].trim()),
        None => (s, ""),
    };
    let v = Decimal::parse(num)?;
    let unit = if unit.is_empty() {
        "1".to_string()
    } else if let Some(u) = unit.strip_prefix('\'').and_then(|u| u.strip_suffix('\'')) {
        u.to_string()
    } else if matches!(
        calendar_to_ucum(unit),
        "year" | "month" | "wk" | "d" | "h" | "min" | "s" | "ms"
    ) && !unit.contains('\'')
        && unit.len() > 2
    {
        unit.to_string()
    } else {
        return None;
    };
    Some((v, unit))
}

fn quantity_string(v: &Decimal, u: &str) -> String {
    if u.len() > 2 && calendar_to_ucum(u) != u || u == "year" || u == "month" {
        format!("{v} {u}")
    } else {
        format!("{v} '{u}'")
    }
}

/// A conversion `to*`: `None` when not convertible.
fn convert_to<'a>(name: &str, x: &Item<'a>, unit: Option<&str>) -> Option<Item<'a>> {
    let p = x.prim().into_owned();
    match name {
        "Boolean" => match &p {
            Item::Bool(b) => Some(Item::Bool(*b)),
            Item::Int(1) => Some(Item::Bool(true)),
            Item::Int(0) => Some(Item::Bool(false)),
            Item::Dec(d) if *d == Decimal::from_int(1) => Some(Item::Bool(true)),
            Item::Dec(d) if d.is_zero() => Some(Item::Bool(false)),
            Item::Str(s) => parse_bool(s).map(Item::Bool),
            _ => None,
        },
        "Integer" => match &p {
            Item::Int(i) => Some(Item::Int(*i)),
            Item::Bool(b) => Some(Item::Int(*b as i64)),
            Item::Str(s) => parse_int(s).map(Item::Int),
            _ => None,
        },
        "Decimal" => match &p {
            Item::Int(i) => Some(Item::Dec(Decimal::from_int(*i))),
            Item::Dec(d) => Some(Item::Dec(*d)),
            Item::Bool(b) => Some(Item::Dec(Decimal::new(*b as i128 * 10, 1))),
            Item::Str(s) if !s.contains(['e', 'E']) => Decimal::parse(s).map(Item::Dec),
            _ => None,
        },
        "String" => Some(s(match &p {
            Item::Str(v) => v.to_string(),
            Item::Bool(b) => b.to_string(),
            Item::Int(i) => i.to_string(),
            Item::Dec(d) => d.to_string(),
            Item::Temporal(t) => t.to_string(),
            Item::Quantity(v, u) => quantity_string(v, u),
            _ => return None,
        })),
        "Date" => match &p {
            Item::Temporal(t) if t.kind != Kind::Time => {
                let mut d = *t;
                d.kind = Kind::Date;
                d.precision = d.precision.min(temporal::DAY);
                d.tz = None;
                Some(Item::Temporal(d))
            }
            Item::Str(v) => Temporal::parse_date(v)
                .or_else(|| {
                    Temporal::parse_datetime(v, true).and_then(|t| {
                        convert_to("Date", &Item::Temporal(t), None).and_then(|i| match i {
                            Item::Temporal(t) => Some(t),
                            _ => None,
                        })
                    })
                })
                .map(Item::Temporal),
            _ => None,
        },
        "DateTime" => match &p {
            Item::Temporal(t) if t.kind != Kind::Time => Some(Item::Temporal(Temporal {
                kind: Kind::DateTime,
                ..*t
            })),
            Item::Str(v) => Temporal::parse_datetime(v, false).map(Item::Temporal),
            _ => None,
        },
        "Time" => match &p {
            Item::Temporal(t) if t.kind == Kind::Time => Some(Item::Temporal(*t)),
            Item::Str(v) => Temporal::parse_time(v).map(Item::Temporal),
            _ => None,
        },
        "Quantity" => {
            let q = match &p {
                Item::Int(i) => Some((Decimal::from_int(*i), "1".to_string())),
                Item::Dec(d) => Some((*d, "1".to_string())),
                Item::Bool(b) => Some((Decimal::new(*b as i128 * 10, 1), "1".to_string())),
                Item::Quantity(v, u) => Some((*v, u.to_string())),
                Item::Str(v) => parse_quantity(v),
                _ => None,
            }?;
            match unit {
                None => Some(Item::Quantity(q.0, Cow::Owned(q.1))),
                Some(u) => {
                    convert(&q.0, &q.1, u).map(|v| Item::Quantity(v, Cow::Owned(u.to_string())))
                }
            }
        }
        _ => None,
    }
}

/// HTML entities, `&` first so escaping does not escape its own output.
const HTML: [(char, &str); 5] = [
    ('&', "&amp;"),
    ('<', "&lt;"),
    ('>', "&gt;"),
    ('"', "&quot;"),
    ('\'', "&#39;"),
];

fn html_escape(t: &str) -> String {
    HTML.iter()
        .fold(t.to_string(), |acc, (c, e)| acc.replace(*c, e))
}

fn html_unescape(t: &str) -> String {
    HTML.iter()
        .rev()
        .fold(t.to_string(), |acc, (c, e)| acc.replace(e, &c.to_string()))
}

fn math<'a>(
    name: &str,
    x: &Item<'a>,
    arg: Option<Decimal>,
    pos: usize,
) -> Result<Option<Item<'a>>, EvalError> {
    let p = x.prim().into_owned();
    if let (Item::Quantity(v, u), "abs") = (&p, name) {
        return Ok(Some(Item::Quantity(v.abs(), u.clone())));
    }
    let Some(d) = numeric(&p) else {
        return err(pos, format!("{name}() needs a number"));
    };
    let int = matches!(p, Item::Int(_));
    let f = |v: f64| Decimal::from_f64_rounded(v).map(Item::Dec);
    let to_int = |r: Option<Decimal>| r.and_then(|d| d.trunc_i64()).map(Item::Int);
    Ok(match name {
        "abs" if int => Some(Item::Int(d.trunc_i64().unwrap_or(0).abs())),
        "abs" => Some(Item::Dec(d.abs())),
        "ceiling" => to_int(d.ceiling()),
        "floor" => to_int(d.floor()),
        "truncate" => d.trunc_i64().map(Item::Int),
        "round" => {
            let n = arg.and_then(|a| a.trunc_i64()).unwrap_or(0);
            if n < 0 {
                return err(pos, "round() precision must not be negative");
            }
            d.round(n as u32).map(Item::Dec)
        }
        "exp" => f(d.to_f64().exp()),
        "ln" => f(d.to_f64().ln()),
        "sqrt" => f(d.to_f64().sqrt()),
        "log" => arg.and_then(|b| f(d.to_f64().ln() / b.to_f64().ln())),
        "power" => {
            let e = arg.unwrap_or(Decimal::from_int(1));
            match (int, e.is_integer(), e.trunc_i64()) {
                (true, true, Some(n)) if n >= 0 => d
                    .trunc_i64()
                    .and_then(|b| b.checked_pow(u32::try_from(n).ok()?))
                    .map(Item::Int),
                _ => f(d.to_f64().powf(e.to_f64())),
            }
        }
        _ => None,
    })
}

/// Functions on a single input item: conversions, strings, math.
fn scalar<'a>(
    ctx: &Ctx<'a, '_>,
    name: &str,
    input: Items<'a>,
    args: &[Expr],
    focus: &[Item<'a>],
    fr: Frame<'_, 'a>,
    pos: usize,
) -> Result<Items<'a>, EvalError> {
    let arg = |i: usize| -> Result<Option<Item<'a>>, EvalError> {
        let v = ctx.eval(&args[i], focus, fr)?;
        Ok(singleton(&v, pos, name)?.map(|x| x.prim().into_owned()))
    };
    let str_arg = |i: usize| -> Result<Option<String>, EvalError> {
        Ok(arg(i)?.and_then(|x| x.as_str().map(str::to_string)))
    };
    if name == "join" {
        let sep = if args.is_empty() {
            Some(String::new())
        } else {
            str_arg(0)?
        };
        let parts: Vec<&str> = input.iter().filter_map(|x| x.as_str()).collect();
        return Ok(sep.map(|sep| s(parts.join(&sep))).into_iter().collect());
    }
    let Some(x) = singleton(&input, pos, name)? else {
        return Ok(Vec::new());
    };
    if let Some(t) = name.strip_prefix("convertsTo") {
        let unit = if args.is_empty() { None } else { str_arg(0)? };
        return Ok(one(convert_to(t, x, unit.as_deref()).is_some()));
    }
    if let Some(t) = name
        .strip_prefix("to")
        .filter(|t| t.starts_with(|c: char| c.is_ascii_uppercase()) && name != "toChars")
    {
        let unit = if args.is_empty() { None } else { str_arg(0)? };
        return Ok(convert_to(t, x, unit.as_deref()).into_iter().collect());
    }
    if let Some(high) = match name {
        "lowBoundary" => Some(false),
        "highBoundary" => Some(true),
        _ => None,
    } {
        let precision = match args.first() {
            Some(_) => match arg(0)? {
                Some(Item::Int(p)) => p,
                Some(_) => return err(pos, format!("{name}() needs an integer precision")),
                None => return Ok(Vec::new()),
            },
            None => 8,
        };
        let p = x.prim().into_owned();
        if let Item::Temporal(t) = &p {
            let digits = if args.is_empty() {
                None
            } else {
                Some(precision)
            };
            return Ok(t
                .boundary(high, digits)
                .map(Item::Temporal)
                .into_iter()
                .collect());
        }
        let Ok(precision) = u32::try_from(precision) else {
            return Ok(Vec::new()); // a negative precision has no boundary
        };
        return Ok(match p {
            Item::Quantity(v, u) => v.boundary(high, precision).map(|b| Item::Quantity(b, u)),
            _ => match numeric(&p) {
                Some(v) => v.boundary(high, precision).map(Item::Dec),
                None => {
                    return err(
                        pos,
                        format!("{name}() needs a number, quantity, date or time"),
                    )
                }
            },
        }
        .into_iter()
        .collect());
    }
    if matches!(
        name,
        "abs"
            | "ceiling"
            | "exp"
            | "floor"
            | "ln"
            | "log"
            | "power"
            | "round"
            | "sqrt"
            | "truncate"
    ) {
        let a = match args.first() {
            Some(_) => match arg(0)? {
                Some(v) => Some(numeric(&v).ok_or_else(|| {
                    EvalError::new(pos, format!("{name}() needs a number argument"))
                })?),
                None => return Ok(Vec::new()),
            },
            None => None,
        };
        return Ok(math(name, x, a, pos)?.into_iter().collect());
    }
    let Some(text) = x.as_str().map(str::to_string) else {
        return err(
            pos,
            format!("{name}() needs a string, found {}", x.type_name().1),
        );
    };
    let regex = |p: &str| {
        regex::Regex::new(&format!("(?s){p}"))
            .map_err(|e| EvalError::new(pos, format!("bad regular expression: {e}")))
    };
    let out = match name {
        "indexOf" => str_arg(0)?.map(|a| {
            Item::Int(
                text.find(&a)
                    .map_or(-1, |b| text[..b].chars().count() as i64),
            )
        }),
        "substring" => {
            let start = arg(0)?
                .and_then(|v| numeric(&v))
                .and_then(|d| d.trunc_i64());
            let len = if args.len() > 1 {
                arg(1)?
                    .and_then(|v| numeric(&v))
                    .and_then(|d| d.trunc_i64())
            } else {
                None
            };
            let chars: Vec<char> = text.chars().collect();
            match start {
                Some(st) if st >= 0 && (st as usize) < chars.len() => {
                    let st = st as usize;
                    let end = match len {
                        Some(l) => (st + l.max(0) as usize).min(chars.len()),
                        None if args.len() > 1 => return Ok(Vec::new()),
                        None => chars.len(),
                    };
                    Some(s(chars[st..end].iter().collect()))
                }
                _ => None,
            }
        }
        "startsWith" => str_arg(0)?.map(|a| Item::Bool(text.starts_with(&a))),
        "endsWith" => str_arg(0)?.map(|a| Item::Bool(text.ends_with(&a))),
        "contains" => str_arg(0)?.map(|a| Item::Bool(text.contains(&a))),
        "upper" => Some(s(text.to_uppercase())),
        "lower" => Some(s(text.to_lowercase())),
        "length" => Some(Item::Int(text.chars().count() as i64)),
        "trim" => Some(s(text.trim().to_string())),
        "toChars" => return Ok(text.chars().map(|c| s(c.to_string())).collect()),
        "split" => match str_arg(0)? {
            Some(sep) => return Ok(text.split(sep.as_str()).map(|p| s(p.to_string())).collect()),
            None => None,
        },
        "replace" => match (str_arg(0)?, str_arg(1)?) {
            (Some(a), Some(b)) if a.is_empty() => {
                let mut r = b.clone();
                for c in text.chars() {
                    r.push(c);
                    r.push_str(&b);
                }
                Some(s(r))
            }
            (Some(a), Some(b)) => Some(s(text.replace(&a, &b))),
            _ => None,
        },
        "matchesFull" => match str_arg(0)? {
            Some(p) => Some(Item::Bool(regex(&format!("^(?:{p})$"))?.is_match(&text))),
            None => None,
        },
        "matches" => match str_arg(0)? {
            Some(p) => Some(Item::Bool(regex(&p)?.is_match(&text))),
            None => None,
        },
        "replaceMatches" => match (str_arg(0)?, str_arg(1)?) {
            (Some(p), _) if p.is_empty() => Some(s(text.clone())),
            (Some(p), Some(b)) => Some(s(regex(&p)?.replace_all(&text, b.as_str()).into_owned())),
            _ => None,
        },
        "encode" | "decode" | "escape" | "unescape" => {
            let Some(how) = str_arg(0)? else {
                return Ok(Vec::new());
            };
            let b64 = base64::engine::general_purpose::STANDARD;
            let url = base64::engine::general_purpose::URL_SAFE;
            let r = match (name, how.as_str()) {
                ("encode", "base64") => Some(b64.encode(text.as_bytes())),
                ("encode", "urlbase64") => Some(url.encode(text.as_bytes())),
                ("encode", "hex") => Some(text.bytes().map(|b| format!("{b:02x}")).collect()),
                ("decode", "base64") => b64
                    .decode(text.as_bytes())
                    .ok()
                    .and_then(|v| String::from_utf8(v).ok()),
                ("decode", "urlbase64") => url
                    .decode(text.as_bytes())
                    .ok()
                    .and_then(|v| String::from_utf8(v).ok()),
                ("decode", "hex") => (0..text.len())
                    .step_by(2)
                    .map(|i| {
                        text.get(i..i + 2)
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                    })
                    .collect::<Option<Vec<u8>>>()
                    .and_then(|v| String::from_utf8(v).ok()),
                ("escape", "html") => Some(html_escape(&text)),
                ("unescape", "html") => Some(html_unescape(&text)),
                ("escape", "json") => serde_json::to_string(&text)
                    .ok()
                    .map(|q| q[1..q.len() - 1].to_string()),
                ("unescape", "json") => {
                    Some(super::lexer::unescape(&text, pos).unwrap_or_else(|_| text.clone()))
                }
                _ => return err(pos, format!("{name}() does not know '{how}'")),
            };
            r.map(s)
        }
        _ => return err(pos, format!("function {name}() is not implemented")),
    };
    Ok(out.into_iter().collect())
}
