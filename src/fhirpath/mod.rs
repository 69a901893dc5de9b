//! The FHIRPath engine (FHIRPath N1 as used by FHIR R4): an expression is compiled once into an
//! [`Expression`] (`Send + Sync`, reusable across resources and threads) and evaluated on a
//! resource parsed by simd-json, without converting it: results borrow the resource's JSON.
//!
//! `lexer` → `parser` (syntax tree, function arity) → `eval` (navigation, operators) with
//! `functions` (the function library), `value` (items and JSON output), `decimal` (exact
//! decimals), `temporal` (dates and times), `quantity` (UCUM units), `types` (the [`TypeInfo`]
//! seam and the model-less [`Fallback`]), `r4` (the R4 model as [`TypeInfo`]). See ARCHITECTURE.md, section "FHIRPath engine".

mod check;
mod decimal;
mod error;
mod eval;
mod functions;
mod lexer;
mod parser;
mod quantity;
mod r4;
mod temporal;
mod types;
mod value;

pub use decimal::Decimal;
pub use error::{EvalError, ParseError, VarError};
pub use r4::R4TypeInfo;
pub use temporal::{Kind as TemporalKind, Temporal};
pub use types::{Fallback, TypeInfo, PRIMITIVES as PRIMITIVE_TYPES};
pub use value::{
    number_texts, tape_key, to_json, with_number_literals, Item, Items, Json, Node, NumberScan,
};

/// A compiled expression.
#[derive(Debug, Clone)]
pub struct Expression {
    source: String,
    tree: parser::Expr,
}

impl Expression {
    /// Compiles an expression; the error names the byte position.
    pub fn parse(source: &str) -> Result<Self, ParseError> {
        Ok(Expression {
            source: source.to_string(),
            tree: parser::parse(source)?,
        })
    }

    /// Compiles an expression of a SQL on FHIR ViewDefinition: FHIRPath plus the functions
    /// `getResourceKey()` and `getReferenceKey([Type])`, which [`Expression::parse`] does not
    /// know (they are not FHIRPath).
    pub fn parse_view(source: &str) -> Result<Self, ParseError> {
        Ok(Expression {
            source: source.to_string(),
            tree: parser::parse_with(source, true)?,
        })
    }

    /// The names of the `%variables` the expression uses (without `%`), in order of first use.
    pub fn variables(&self) -> Vec<(&str, usize)> {
        fn walk<'e>(e: &'e parser::Expr, out: &mut Vec<(&'e str, usize)>) {
            use parser::ExprKind as K;
            match &e.kind {
                K::Env(n) => {
                    if !out.iter().any(|(m, _)| m == n) {
                        out.push((n, e.pos));
                    }
                }
                K::Member(a, _) | K::Neg(a) | K::Is(a, _) | K::As(a, _) => walk(a, out),
                K::Call(a, _, args) => {
                    if let Some(a) = a {
                        walk(a, out);
                    }
                    args.iter().for_each(|x| walk(x, out));
                }
                K::Indexer(a, b) | K::Binary(_, a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                K::Empty | K::Lit(_) | K::Ident(_) | K::This | K::Index | K::Total => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.tree, &mut out);
        out
    }

    /// Strict mode: checks the expression against the type information for a resource of type
    /// `context` without evaluating it; the error names the position of a name that is no
    /// element of its type, a choice variant navigated by its JSON name (`valueQuantity`), a
    /// path starting with another type than `context`, or an order-dependent function on
    /// `children()`/`descendants()`. Where types are not known statically nothing is checked.
    pub fn check(&self, context: &str, types: &dyn TypeInfo) -> Result<(), EvalError> {
        check::check(&self.tree, context, types)
    }

    /// The text it was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates on a resource (or any JSON value): with the R4 model when it is a FHIR
    /// resource (its `resourceType` is one of R4's), with [`Fallback`] otherwise.
    pub fn evaluate<'a>(&self, resource: Json<'a>) -> Result<Items<'a>, EvalError> {
        self.evaluate_with(resource, default_types(resource))
    }

    /// Evaluates with the given type information.
    pub fn evaluate_with<'a>(
        &self,
        resource: Json<'a>,
        types: &dyn TypeInfo,
    ) -> Result<Items<'a>, EvalError> {
        self.evaluate_with_env(resource, types, &Env::default())
    }

    /// Evaluates with the given type information and user variables (`%name`); a variable the
    /// expression uses but `env` does not define is an error naming it.
    pub fn evaluate_with_env<'a>(
        &self,
        resource: Json<'a>,
        types: &dyn TypeInfo,
        env: &Env<'a>,
    ) -> Result<Items<'a>, EvalError> {
        let ty = resource
            .get("resourceType")
            .and_then(simd_json::prelude::ValueIntoString::into_string)
            .unwrap_or("");
        let root = Item::node(resource, ty);
        self.evaluate_on(&root, Some(&root), types, env)
    }

    /// Evaluates with `focus` as the input and `$this` (a node inside `root`, as a
    /// ViewDefinition's `forEach` gives its columns; `None`: the empty collection) and `root`
    /// as `%resource`.
    pub fn evaluate_on<'a>(
        &self,
        root: &Item<'a>,
        focus: Option<&Item<'a>>,
        types: &dyn TypeInfo,
        env: &Env<'a>,
    ) -> Result<Items<'a>, EvalError> {
        let ctx = eval::Ctx {
            root: root.clone(),
            types,
            env,
        };
        let frame = eval::Frame {
            this: focus,
            index: 0,
            total: None,
        };
        ctx.eval(
            &self.tree,
            focus.map(std::slice::from_ref).unwrap_or(&[]),
            frame,
        )
    }
}

impl Expression {
    /// Evaluates with `item` as `$this` and `%context` (an element rather than a resource,
    /// e.g. a primitive with its FHIR type, as the anonymizer's `generalize` cases need).
    pub fn evaluate_on_item<'a>(
        &self,
        item: Item<'a>,
        types: &dyn TypeInfo,
        env: &Env<'a>,
    ) -> Result<Items<'a>, EvalError> {
        let ctx = eval::Ctx {
            root: item.clone(),
            types,
            env,
        };
        let frame = eval::Frame {
            this: Some(&item),
            index: 0,
            total: None,
        };
        ctx.eval(&self.tree, std::slice::from_ref(&item), frame)
    }
}

/// User variables for [`Expression::evaluate_with_env`]: `%name` → a collection (strings,
/// numbers, nodes of a resource, ...), besides the built-in `%resource`, `%context`,
/// `%rootResource`, `%ucum`, `%sct`, `%loinc`, `%vs-*` and `%ext-*`, which cannot be redefined.
#[derive(Debug, Clone, Default)]
pub struct Env<'a> {
    vars: Vec<(String, Items<'a>)>,
    anonymizer: bool,
}

impl<'a> Env<'a> {
    /// No user variables.
    pub fn new() -> Self {
        Env::default()
    }

    /// Defines (or redefines) `%name` as `value`.
    pub fn set(&mut self, name: &str, value: Items<'a>) -> Result<&mut Self, VarError> {
        if name.is_empty() || name.contains('`') {
            return Err(VarError::BadName(name.to_string()));
        }
        if eval::builtin_variable(name) {
            return Err(VarError::Reserved(name.to_string()));
        }
        match self.vars.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.vars.push((name.to_string(), value)),
        }
        Ok(self)
    }

    /// Defines `%name` as one integer, reusing the variable's storage when it exists (no
    /// allocation per call: `%rowIndex` of ViewDefinitions is set for every row).
    pub fn set_int(&mut self, name: &str, value: i64) -> Result<&mut Self, VarError> {
        if let Some((_, v)) = self.vars.iter_mut().find(|(n, _)| n == name) {
            v.clear();
            v.push(Item::Int(value));
            return Ok(self);
        }
        self.set(name, vec![Item::Int(value)])
    }

    /// Defines `%name` as one string.
    pub fn set_str(&mut self, name: &str, value: &str) -> Result<&mut Self, VarError> {
        self.set(name, vec![Item::Str(value.to_string().into())])
    }

    /// Enables the Microsoft FHIR anonymizer's extension functions `nodesByType('T')` and
    /// `nodesByName('n')` (used by de-identification rules); without it they are errors.
    pub fn with_anonymizer_functions(mut self) -> Self {
        self.anonymizer = true;
        self
    }

    /// Whether the anonymizer's extension functions are enabled.
    pub fn anonymizer_functions(&self) -> bool {
        self.anonymizer
    }

    /// The value of `%name`, if defined.
    pub fn get(&self, name: &str) -> Option<&Items<'a>> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

/// The type information [`Expression::evaluate`] uses for `resource`.
pub fn default_types(resource: Json<'_>) -> &'static dyn TypeInfo {
    static R4: std::sync::OnceLock<R4TypeInfo> = std::sync::OnceLock::new();
    let is_fhir = resource
        .get("resourceType")
        .and_then(simd_json::prelude::ValueIntoString::into_string)
        .is_some_and(|t| crate::fhir::resource_type_index(t).is_some());
    if is_fhir {
        R4.get_or_init(R4TypeInfo::new)
    } else {
        &Fallback
    }
}

#[cfg(test)]
mod tests;
