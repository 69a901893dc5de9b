//! Evaluates a syntax tree on a resource: path navigation over the borrowed JSON (choice types,
//! `_element` siblings of primitives, resources named by their type), the operators with the
//! spec's empty-collection, precedence and three-valued-logic rules, equality and equivalence,
//! ordering, arithmetic on numbers, strings, quantities and dates, and type tests.

use super::decimal::Decimal;
use super::error::EvalError;
use super::functions;
use super::parser::{BinOp, Expr, ExprKind, Lit, TypeSpec};
use super::quantity::{calendar_mismatch, calendar_to_ucum, canonical, convert};
use super::temporal::{self, Kind, Temporal};
use super::types::{is_subtype, TypeInfo, PRIMITIVES};
use super::value::{json_equal, numeric, Item, Items, Json, Node};
use simd_json::prelude::*;
use std::borrow::Cow;
use std::cmp::Ordering;

/// What one evaluation sees: the resource and the type information.
pub struct Ctx<'a, 'c> {
    /// `%resource`, `%rootResource` and `%context`.
    pub root: Item<'a>,
    /// Element types.
    pub types: &'c dyn TypeInfo,
    /// User variables.
    pub env: &'c super::Env<'a>,
}

/// Whether `%name` is defined by the engine itself.
pub fn builtin_variable(name: &str) -> bool {
    matches!(
        name,
        "context" | "resource" | "rootResource" | "ucum" | "sct" | "loinc"
    ) || name.starts_with("vs-")
        || name.starts_with("ext-")
}

/// The iteration variables inside a function argument.
#[derive(Clone, Copy, Default)]
pub struct Frame<'f, 'a> {
    /// `$this`.
    pub this: Option<&'f Item<'a>>,
    /// `$index`.
    pub index: usize,
    /// `$total` inside `aggregate`.
    pub total: Option<&'f Items<'a>>,
}

const SYSTEM_TYPES: [&str; 9] = [
    "Boolean", "String", "Integer", "Decimal", "Date", "DateTime", "Time", "Quantity", "Any",
];

fn err<T>(pos: usize, m: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError::new(pos, m))
}

/// The single item of a collection; an error when there are several.
pub fn singleton<'i, 'a>(
    c: &'i [Item<'a>],
    pos: usize,
    what: &str,
) -> Result<Option<&'i Item<'a>>, EvalError> {
    match c {
        [] => Ok(None),
        [x] => Ok(Some(x)),
        _ => err(
            pos,
            format!("{what} expects a single item, found {}", c.len()),
        ),
    }
}

/// The boolean of a singleton collection (`None` when empty); an error for several items.
pub fn to_bool(c: &[Item<'_>], pos: usize) -> Result<Option<bool>, EvalError> {
    match singleton(c, pos, "a boolean expression")? {
        None => Ok(None),
        Some(i) => match &*i.prim() {
            Item::Bool(b) => Ok(Some(*b)),
            _ => Ok(Some(true)),
        },
    }
}

impl<'a> Ctx<'a, '_> {
    /// Evaluates `e` with `focus` as the input collection.
    pub fn eval(
        &self,
        e: &Expr,
        focus: &[Item<'a>],
        fr: Frame<'_, 'a>,
    ) -> Result<Items<'a>, EvalError> {
        let pos = e.pos;
        Ok(match &e.kind {
            ExprKind::Empty => Vec::new(),
            ExprKind::Lit(l) => vec![lit(l)],
            ExprKind::This => fr.this.cloned().into_iter().collect(),
            ExprKind::Index => vec![Item::Int(fr.index as i64)],
            ExprKind::Total => fr.total.cloned().unwrap_or_default(),
            ExprKind::Env(name) => self.env(name, pos)?,
            ExprKind::Ident(name) => {
                let mut out = Vec::new();
                for it in focus {
                    if name.starts_with(|c: char| c.is_ascii_uppercase())
                        && self.names_type(it, name)
                    {
                        out.push(it.clone());
                    } else {
                        self.children(it, name, &mut out);
                    }
                }
                out
            }
            ExprKind::Member(a, name) => {
                let base = self.eval(a, focus, fr)?;
                let mut out = Vec::new();
                for it in &base {
                    self.children(it, name, &mut out);
                }
                out
            }
            ExprKind::Call(a, name, args) => {
                let input = match a {
                    Some(a) => self.eval(a, focus, fr)?,
                    None => focus.to_vec(),
                };
                functions::call(self, name, input, args, focus, fr, pos)?
            }
            ExprKind::Indexer(a, i) => {
                let base = self.eval(a, focus, fr)?;
                let idx = self.eval(i, focus, fr)?;
                match singleton(&idx, pos, "an index")?.map(|x| x.prim().into_owned()) {
                    None => Vec::new(),
                    Some(Item::Int(n)) => usize::try_from(n)
                        .ok()
                        .and_then(|n| base.into_iter().nth(n))
                        .into_iter()
                        .collect(),
                    Some(_) => return err(pos, "an index must be an integer"),
                }
            }
            ExprKind::Neg(a) => {
                let v = self.eval(a, focus, fr)?;
                match singleton(&v, pos, "unary minus")?.map(|x| x.prim().into_owned()) {
                    None => Vec::new(),
                    Some(Item::Int(i)) => vec![Item::Int(-i)],
                    Some(Item::Dec(d)) => vec![Item::Dec(d.neg())],
                    Some(Item::Quantity(d, u)) => vec![Item::Quantity(d.neg(), u)],
                    Some(_) => return err(pos, "unary minus needs a number or a quantity"),
                }
            }
            ExprKind::Is(a, t) => {
                let v = self.eval(a, focus, fr)?;
                match singleton(&v, pos, "is")? {
                    None => Vec::new(),
                    Some(x) => vec![Item::Bool(self.is_type(x, t, true, pos)?)],
                }
            }
            ExprKind::As(a, t) => {
                let v = self.eval(a, focus, fr)?;
                match singleton(&v, pos, "as")? {
                    Some(x) if self.is_type(x, t, false, pos)? => vec![x.clone()],
                    _ => Vec::new(),
                }
            }
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b, focus, fr, pos)?,
        })
    }

    fn env(&self, name: &str, pos: usize) -> Result<Items<'a>, EvalError> {
        let s = |v: &str| Ok(vec![Item::Str(Cow::Owned(v.to_string()))]);
        match name {
            "context" | "resource" | "rootResource" => Ok(vec![self.root.clone()]),
            "ucum" => s("http://unitsofmeasure.org"),
            "sct" => s("http://snomed.info/sct"),
            "loinc" => s("http://loinc.org"),
            _ => {
                if let Some(vs) = name.strip_prefix("vs-") {
                    s(&format!("http://hl7.org/fhir/ValueSet/{vs}"))
                } else if let Some(ext) = name.strip_prefix("ext-") {
                    s(&format!("http://hl7.org/fhir/StructureDefinition/{ext}"))
                } else if let Some(v) = self.env.get(name) {
                    Ok(v.clone())
                } else {
                    err(pos, format!("undefined variable %{name}"))
                }
            }
        }
    }

    /// Whether a path's first name is the type of the focus (`Patient.name` on a Patient).
    fn names_type(&self, it: &Item<'a>, name: &str) -> bool {
        match it {
            Item::Node(n) => !n.ty.is_empty() && is_subtype(self.types, n.ty, name),
            _ => false,
        }
    }

    /// The type of a child node: the declared one, or the `resourceType` of the value where
    /// the declaration is "any resource" or unknown.
    fn child_ty(declared: Option<&'static str>, v: Option<Json<'a>>) -> &'a str {
        match declared {
            Some(t) if t != "Resource" => t,
            declared => v
                .and_then(|v| v.get("resourceType"))
                .and_then(|r| r.into_string())
                .or(declared)
                .unwrap_or(""),
        }
    }

    /// Appends the children called `name` of `it` (arrays flattened, `_name` attached).
    pub fn children(&self, it: &Item<'a>, name: &str, out: &mut Items<'a>) {
        let (obj, parent) = match it {
            Item::Node(n) => match (
                n.value.and_then(|v| v.as_object()),
                n.ext.and_then(|e| e.as_object()),
            ) {
                (Some(o), _) => (o, n.ty),
                (None, Some(e)) => (e, "Element"),
                _ => return,
            },
            Item::Type(ns, n) => {
                match name {
                    "namespace" => out.push(Item::Str(Cow::Borrowed(ns))),
                    "name" => out.push(Item::Str(n.clone())),
                    _ => {}
                }
                return;
            }
            _ => return,
        };
        let (mut val, mut ext) = (None, None);
        let mut choice: Option<(&'a str, &'static str, Option<Json<'a>>, Option<Json<'a>>)> = None;
        for (k, v) in obj.iter() {
            let (is_ext, base) = match k.strip_prefix('_') {
                Some(b) => (true, b),
                None => (false, k),
            };
            if base == name {
                if is_ext {
                    ext = Some(v);
                } else {
                    val = Some(v);
                }
            } else if base.len() > name.len()
                && base.starts_with(name)
                && base.as_bytes()[name.len()].is_ascii_uppercase()
            {
                let Some(ty) = self.types.choice_type(parent, name, base) else {
                    continue;
                };
                let c = choice.get_or_insert((base, ty, None, None));
                if c.0 == base {
                    if is_ext {
                        c.3 = Some(v);
                    } else {
                        c.2 = Some(v);
                    }
                }
            }
        }
        if val.is_some() || ext.is_some() {
            self.push_values(parent, name, val, ext, None, out);
        } else if let Some((key, ty, v, e)) = choice {
            self.push_values(parent, key, v, e, Some(ty), out);
        }
    }

    fn push_values(
        &self,
        parent: &str,
        name: &str,
        val: Option<Json<'a>>,
        ext: Option<Json<'a>>,
        ty: Option<&'static str>,
        out: &mut Items<'a>,
    ) {
        // Asked once for all items of an array.
        let declared = ty.or_else(|| self.types.child_type(parent, name));
        let mk = |v: Option<Json<'a>>, e: Option<Json<'a>>| {
            let v = v.filter(|v| !v.is_null());
            let e = e.filter(|e| !e.is_null());
            if v.is_none() && e.is_none() {
                return None;
            }
            let ty = Self::child_ty(declared, v);
            Some(Item::Node(Node {
                value: v,
                ext: e,
                ty,
            }))
        };
        match (
            val.and_then(|v| v.as_array()),
            ext.and_then(|e| e.as_array()),
        ) {
            (Some(vs), es) => {
                for (i, v) in vs.iter().enumerate() {
                    out.extend(mk(Some(v), es.as_ref().and_then(|e| e.get(i))));
                }
            }
            (None, Some(es)) if val.is_none() => {
                for e in es.iter() {
                    out.extend(mk(None, Some(e)));
                }
            }
            _ => out.extend(mk(val, ext)),
        }
    }

    /// Whether `it` is of type `t`; `subtypes` allows derived types (`is`) — `as` and `ofType`
    /// match primitives exactly. Unknown type names are an error.
    pub fn is_type(
        &self,
        it: &Item<'a>,
        t: &TypeSpec,
        subtypes: bool,
        pos: usize,
    ) -> Result<bool, EvalError> {
        let ns = t.namespace.as_deref();
        let system = SYSTEM_TYPES.contains(&t.name.as_str());
        let fhir = self.types.is_known(&t.name);
        match ns {
            Some("System") if !system => return Ok(false),
            Some("FHIR") if !fhir => return err(pos, format!("unknown type FHIR.{}", t.name)),
            None if !system && !fhir => return err(pos, format!("unknown type {}", t.name)),
            Some(other) if other != "System" && other != "FHIR" => {
                return err(pos, format!("unknown namespace {other}"))
            }
            _ => {}
        }
        let (its_ns, its_name) = it.type_name();
        if its_ns == "System" {
            return Ok(ns != Some("FHIR") && (its_name == t.name || t.name == "Any"));
        }
        if ns == Some("System") {
            return Ok(false);
        }
        if its_name == t.name {
            return Ok(true);
        }
        let exact = !subtypes && PRIMITIVES.contains(&t.name.as_str());
        Ok(!exact && is_subtype(self.types, its_name, &t.name))
    }

    fn binary(
        &self,
        op: BinOp,
        a: &Expr,
        b: &Expr,
        focus: &[Item<'a>],
        fr: Frame<'_, 'a>,
        pos: usize,
    ) -> Result<Items<'a>, EvalError> {
        let l = self.eval(a, focus, fr)?;
        if matches!(op, BinOp::And | BinOp::Or | BinOp::Implies) {
            let x = to_bool(&l, a.pos)?;
            match (op, x) {
                (BinOp::And, Some(false)) => return Ok(vec![Item::Bool(false)]),
                (BinOp::Or, Some(true)) => return Ok(vec![Item::Bool(true)]),
                (BinOp::Implies, Some(false)) => return Ok(vec![Item::Bool(true)]),
                _ => {}
            }
            let y = to_bool(&self.eval(b, focus, fr)?, b.pos)?;
            let r = match op {
                BinOp::And => match (x, y) {
                    (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                },
                BinOp::Or => match (x, y) {
                    (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                },
                _ => match (x, y) {
                    (_, Some(true)) => Some(true),
                    (Some(true), y) => y,
                    _ => None,
                },
            };
            return Ok(r.map(Item::Bool).into_iter().collect());
        }
        let r = self.eval(b, focus, fr)?;
        binary_values(op, l, r, pos)
    }
}

fn lit<'a>(l: &Lit) -> Item<'a> {
    match l {
        Lit::Bool(b) => Item::Bool(*b),
        Lit::Str(s) => Item::Str(Cow::Owned(s.clone())),
        Lit::Int(i) => Item::Int(*i),
        Lit::Dec(d) => Item::Dec(*d),
        Lit::Temporal(t) => Item::Temporal(*t),
        Lit::Quantity(v, u) => Item::Quantity(*v, Cow::Owned(u.clone())),
    }
}

fn bools<'a>(b: Option<bool>) -> Items<'a> {
    b.map(Item::Bool).into_iter().collect()
}

/// Applies a binary operator (other than and/or/implies) to evaluated operands.
pub fn binary_values<'a>(
    op: BinOp,
    l: Items<'a>,
    r: Items<'a>,
    pos: usize,
) -> Result<Items<'a>, EvalError> {
    Ok(match op {
        BinOp::Union => {
            let mut out: Items<'a> = Vec::with_capacity(l.len() + r.len());
            for x in l.into_iter().chain(r) {
                if !out.iter().any(|y| equal(&x, y) == Some(true)) {
                    out.push(x);
                }
            }
            out
        }
        BinOp::Eq | BinOp::Ne => {
            if l.is_empty() || r.is_empty() {
                return Ok(Vec::new());
            }
            let e = if l.len() != r.len() {
                Some(false)
            } else {
                let mut acc = Some(true);
                for (x, y) in l.iter().zip(&r) {
                    match equal(x, y) {
                        Some(false) => {
                            acc = Some(false);
                            break;
                        }
                        None => acc = None,
                        Some(true) => {}
                    }
                }
                acc
            };
            bools(if op == BinOp::Ne { e.map(|b| !b) } else { e })
        }
        BinOp::Equiv | BinOp::NotEquiv => {
            let e = l.len() == r.len() && l.iter().all(|x| r.iter().any(|y| equivalent(x, y)));
            vec![Item::Bool(if op == BinOp::NotEquiv { !e } else { e })]
        }
        BinOp::In | BinOp::Contains => {
            let (needle, hay) = if op == BinOp::In { (l, r) } else { (r, l) };
            match singleton(&needle, pos, "in/contains")? {
                None => Vec::new(),
                Some(x) => vec![Item::Bool(hay.iter().any(|y| equal(x, y) == Some(true)))],
            }
        }
        BinOp::Xor => match (to_bool(&l, pos)?, to_bool(&r, pos)?) {
            (Some(x), Some(y)) => vec![Item::Bool(x != y)],
            _ => Vec::new(),
        },
        BinOp::Concat => {
            let s = |c: &Items<'a>| -> Result<String, EvalError> {
                Ok(singleton(c, pos, "&")?
                    .and_then(|x| x.as_str().map(str::to_string))
                    .unwrap_or_default())
            };
            vec![Item::Str(Cow::Owned(s(&l)? + &s(&r)?))]
        }
        BinOp::Lt | BinOp::Gt | BinOp::Le | BinOp::Ge => {
            let (Some(x), Some(y)) = (
                singleton(&l, pos, "a comparison")?,
                singleton(&r, pos, "a comparison")?,
            ) else {
                return Ok(Vec::new());
            };
            let o = compare(x, y, pos)?;
            bools(o.map(|o| match op {
                BinOp::Lt => o == Ordering::Less,
                BinOp::Gt => o == Ordering::Greater,
                BinOp::Le => o != Ordering::Greater,
                _ => o != Ordering::Less,
            }))
        }
        _ => {
            let (Some(x), Some(y)) = (
                singleton(&l, pos, "arithmetic")?,
                singleton(&r, pos, "arithmetic")?,
            ) else {
                return Ok(Vec::new());
            };
            arithmetic(op, &x.prim(), &y.prim(), pos)?
                .into_iter()
                .collect()
        }
    })
}

/// `=` on two items: `None` when the spec makes the result empty (dates of unequal precision).
pub fn equal(a: &Item<'_>, b: &Item<'_>) -> Option<bool> {
    if let (Item::Node(x), Item::Node(y)) = (a, b) {
        if let (Some(v), Some(w)) = (x.value, y.value) {
            if v.is_object() || w.is_object() {
                return Some(json_equal(v, w));
            }
        }
    }
    let (a, b) = (a.prim(), b.prim());
    match (&*a, &*b) {
        (Item::Str(x), Item::Str(y)) => Some(x == y),
        (Item::Bool(x), Item::Bool(y)) => Some(x == y),
        (Item::Int(x), Item::Int(y)) => Some(x == y),
        (Item::Temporal(x), Item::Temporal(y)) => {
            if x.kind != y.kind && (x.kind == Kind::Time || y.kind == Kind::Time) {
                return Some(false);
            }
            x.compare(y).map(|o| o == Ordering::Equal)
        }
        (Item::Temporal(t), Item::Str(s)) | (Item::Str(s), Item::Temporal(t)) => {
            let u = reparse(s, t.kind)?;
            u.compare(t).map(|o| o == Ordering::Equal)
        }
        (Item::Quantity(x, u), Item::Quantity(y, w)) => {
            if calendar_mismatch(u, w) {
                return None;
            }
            match convert(y, w, u) {
                Some(y2) => Some(x == &y2),
                None => Some(false),
            }
        }
        (Item::Type(n1, a1), Item::Type(n2, a2)) => Some(n1 == n2 && a1 == a2),
        (x, y) => match (numeric(x), numeric(y)) {
            (Some(p), Some(q)) => Some(p == q),
            _ => Some(false),
        },
    }
}

fn reparse(s: &str, kind: Kind) -> Option<Temporal> {
    match kind {
        Kind::Time => Temporal::parse_time(s),
        _ => Temporal::parse_datetime(s, false),
    }
}

fn normalize_ws(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// `~` on two items.
pub fn equivalent(a: &Item<'_>, b: &Item<'_>) -> bool {
    let (x, y) = (a.prim(), b.prim());
    match (&*x, &*y) {
        (Item::Str(p), Item::Str(q)) => normalize_ws(p) == normalize_ws(q),
        (Item::Temporal(p), Item::Temporal(q)) => {
            p.precision.min(temporal::SECOND) == q.precision.min(temporal::SECOND)
                && p.compare(q) == Some(Ordering::Equal)
        }
        (Item::Quantity(p, u), Item::Quantity(q, w)) => {
            let u = calendar_to_ucum(u);
            let w = calendar_to_ucum(w);
            let (u, w) = (
                if u == "year" {
                    "a"
                } else if u == "month" {
                    "mo"
                } else {
                    u
                },
                if w == "year" {
                    "a"
                } else if w == "month" {
                    "mo"
                } else {
                    w
                },
            );
            match convert(q, w, u) {
                Some(q2) => {
                    let s = p.scale().min(q.scale());
                    p.round(s) == q2.round(s)
                }
                None => false,
            }
        }
        (p, q) => match (numeric(p), numeric(q)) {
            (Some(m), Some(n)) => {
                let s = m.scale().min(n.scale());
                m.round(s) == n.round(s)
            }
            _ => equal(a, b).unwrap_or(false),
        },
    }
}

/// Order of two items for `<`, `>`, sorting: `None` when the spec leaves it empty; an error for
/// types that cannot be compared.
pub fn compare(a: &Item<'_>, b: &Item<'_>, pos: usize) -> Result<Option<Ordering>, EvalError> {
    let (x, y) = (a.prim(), b.prim());
    Ok(match (&*x, &*y) {
        (Item::Str(p), Item::Str(q)) => Some(p.cmp(q)),
        (Item::Temporal(p), Item::Temporal(q)) => p.compare(q),
        (Item::Temporal(t), Item::Str(s)) => reparse(s, t.kind).and_then(|u| t.compare(&u)),
        (Item::Str(s), Item::Temporal(t)) => reparse(s, t.kind).and_then(|u| u.compare(t)),
        (Item::Quantity(p, u), Item::Quantity(q, w)) => convert(q, w, u).map(|q2| p.compare(&q2)),
        (p, q) => match (numeric(p), numeric(q)) {
            (Some(m), Some(n)) => Some(m.compare(&n)),
            _ => {
                return err(
                    pos,
                    format!(
                        "cannot compare {} with {}",
                        p.type_name().1,
                        q.type_name().1
                    ),
                );
            }
        },
    })
}

fn overflow<T>(pos: usize) -> Result<T, EvalError> {
    err(pos, "arithmetic overflow")
}

/// `+ - * / div mod` on two items (already seen as System values); `None` for an empty result
/// (division by zero).
fn arithmetic<'a>(
    op: BinOp,
    x: &Item<'a>,
    y: &Item<'a>,
    pos: usize,
) -> Result<Option<Item<'a>>, EvalError> {
    use BinOp::*;
    let dec = |r: Option<Decimal>| r.map(Item::Dec);
    Ok(match (op, x, y) {
        (Add, Item::Str(a), Item::Str(b)) => Some(Item::Str(Cow::Owned(format!("{a}{b}")))),
        (Add | Sub | Mul, Item::Int(a), Item::Int(b)) => {
            let r = match op {
                Add => a.checked_add(*b),
                Sub => a.checked_sub(*b),
                _ => a.checked_mul(*b),
            };
            Some(Item::Int(match r {
                Some(v) => v,
                None => return overflow(pos),
            }))
        }
        (IntDiv, Item::Int(a), Item::Int(b)) => a.checked_div(*b).map(Item::Int),
        (Mod, Item::Int(a), Item::Int(b)) => a.checked_rem(*b).map(Item::Int),
        (Add | Sub, Item::Temporal(t), Item::Quantity(v, u)) => {
            let n = v
                .trunc_i64()
                .ok_or_else(|| EvalError::new(pos, "duration out of range"))?;
            let n = if op == Sub { -n } else { n };
            match t.add(n, u) {
                Ok(r) => Some(Item::Temporal(r)),
                Err(m) => return err(pos, m),
            }
        }
        (Add | Sub, Item::Quantity(a, u), Item::Quantity(b, w)) => {
            let Some(b2) = convert(b, w, u) else {
                return err(pos, format!("cannot add '{u}' and '{w}'"));
            };
            let r = if op == Add { a.add(&b2) } else { a.sub(&b2) };
            Some(Item::Quantity(
                r.ok_or_else(|| EvalError::new(pos, "arithmetic overflow"))?,
                u.clone(),
            ))
        }
        (Mul | Div, Item::Quantity(a, u), Item::Quantity(b, w)) => {
            let (cu, cw) = (canonical(u), canonical(w));
            let (Some(cu), Some(cw)) = (cu, cw) else {
                return err(pos, format!("unknown unit '{u}' or '{w}'"));
            };
            let _ = (cu, cw);
            let unit = if op == Div && u == w {
                "1".to_string()
            } else if op == Div {
                format!("{u}/{w}")
            } else {
                format!("{u}.{w}")
            };
            let r = if op == Mul { a.mul(b) } else { a.div(b) };
            r.map(|v| Item::Quantity(v, Cow::Owned(unit)))
        }
        (Mul | Div, Item::Quantity(a, u), n) if numeric(n).is_some() => {
            let n = numeric(n).unwrap_or(Decimal::from_int(1));
            let r = if op == Mul { a.mul(&n) } else { a.div(&n) };
            r.map(|v| Item::Quantity(v, u.clone()))
        }
        (Mul, n, Item::Quantity(a, u)) if numeric(n).is_some() => a
            .mul(&numeric(n).unwrap_or(Decimal::from_int(1)))
            .map(|v| Item::Quantity(v, u.clone())),
        (_, a, b) => match (numeric(a), numeric(b)) {
            (Some(p), Some(q)) => match op {
                Add => match p.add(&q) {
                    Some(v) => Some(Item::Dec(v)),
                    None => return overflow(pos),
                },
                Sub => match p.sub(&q) {
                    Some(v) => Some(Item::Dec(v)),
                    None => return overflow(pos),
                },
                Mul => match p.mul(&q) {
                    Some(v) => Some(Item::Dec(v)),
                    None => return overflow(pos),
                },
                Div => dec(p.div(&q)),
                IntDiv => p.div_trunc(&q).and_then(|d| d.trunc_i64()).map(Item::Int),
                Mod => dec(p.rem(&q)),
                _ => None,
            },
            _ => {
                return err(
                    pos,
                    format!(
                        "cannot apply {op:?} to {} and {}",
                        a.type_name().1,
                        b.type_name().1
                    ),
                );
            }
        },
    })
}
