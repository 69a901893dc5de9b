//! Strict mode: static checks of an expression against the type information, before any
//! resource is seen (the official suite's "semantic" errors). It follows the types of paths
//! from a context type and reports:
//!
//! * a name that is no element of any type it can be applied to (`name.given1` on Patient);
//! * a choice variant navigated by its JSON name (`Observation.valueQuantity`; FHIRPath says
//!   `Observation.value.ofType(Quantity)`);
//! * a path that starts with a type other than the context's (`Encounter.name` on Patient);
//! * an order-dependent function or indexer on the unordered result of `children()` or
//!   `descendants()`.
//!
//! Where the type is not known statically (after most functions, inside most arguments, with
//! [`super::Fallback`]) nothing is checked, so the check has no false alarms by construction;
//! the official suite runs it on every test as well as on the strict ones.

use super::error::EvalError;
use super::parser::{Expr, ExprKind, TypeSpec};
use super::types::{is_subtype, TypeInfo};

/// What is known about a collection statically.
#[derive(Debug, Clone, Default)]
struct Tys {
    /// The possible FHIR types, `None` when unknown.
    types: Option<Vec<String>>,
    /// Made by `children()` / `descendants()`: no defined order.
    unordered: bool,
}

impl Tys {
    fn unknown() -> Self {
        Tys::default()
    }
    fn of(t: impl Into<String>) -> Self {
        Tys {
            types: Some(vec![t.into()]),
            unordered: false,
        }
    }
}

const ORDERED: [&str; 6] = ["first", "last", "tail", "skip", "take", "single"];

/// Functions whose result has the type of their input.
const SAME_TYPE: [&str; 10] = [
    "where", "first", "last", "tail", "skip", "take", "single", "distinct", "trace", "repeat",
];

fn err<T>(pos: usize, m: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError::new(pos, m))
}

/// Checks `tree` evaluated on a resource of type `context`.
pub fn check(tree: &Expr, context: &str, types: &dyn TypeInfo) -> Result<(), EvalError> {
    let root = if context.is_empty() {
        Tys::unknown()
    } else {
        Tys::of(context)
    };
    Checker { types }.expr(tree, &root).map(|_| ())
}

struct Checker<'c> {
    types: &'c dyn TypeInfo,
}

impl Checker<'_> {
    fn expr(&self, e: &Expr, focus: &Tys) -> Result<Tys, EvalError> {
        let pos = e.pos;
        Ok(match &e.kind {
            ExprKind::Ident(name) => {
                if let (Some(ts), true) = (
                    &focus.types,
                    name.starts_with(|c: char| c.is_ascii_uppercase()),
                ) {
                    if ts.iter().any(|t| is_subtype(self.types, t, name)) {
                        return Ok(focus.clone());
                    }
                    if self.types.is_known(name) {
                        return err(
                            pos,
                            format!(
                                "the path starts with {name} but the context is {}",
                                ts.join(" | ")
                            ),
                        );
                    }
                }
                self.member(focus, name, pos)?
            }
            ExprKind::Member(a, name) => {
                let base = self.expr(a, focus)?;
                self.member(&base, name, pos)?
            }
            ExprKind::This => focus.clone(),
            ExprKind::Indexer(a, i) => {
                let base = self.expr(a, focus)?;
                if base.unordered {
                    return err(
                        pos,
                        "an indexer on the unordered result of children()/descendants()",
                    );
                }
                self.expr(i, focus)?;
                Tys {
                    types: base.types,
                    unordered: false,
                }
            }
            ExprKind::As(a, t) => {
                self.expr(a, focus)?;
                self.named(t)
            }
            ExprKind::Is(a, _) | ExprKind::Neg(a) => {
                self.expr(a, focus)?;
                Tys::unknown()
            }
            ExprKind::Binary(_, a, b) => {
                self.expr(a, focus)?;
                self.expr(b, focus)?;
                Tys::unknown()
            }
            ExprKind::Call(a, name, args) => {
                let input = match a {
                    Some(a) => self.expr(a, focus)?,
                    None => focus.clone(),
                };
                self.call(&input, name, args, pos)?
            }
            _ => Tys::unknown(),
        })
    }

    fn named(&self, t: &TypeSpec) -> Tys {
        if t.namespace.as_deref() != Some("System") && self.types.is_known(&t.name) {
            Tys::of(t.name.clone())
        } else {
            Tys::unknown()
        }
    }

    fn call(&self, input: &Tys, name: &str, args: &[Expr], pos: usize) -> Result<Tys, EvalError> {
        if input.unordered && ORDERED.contains(&name) {
            return err(
                pos,
                format!("{name}() on the unordered result of children()/descendants()"),
            );
        }
        // Arguments evaluated per item of the input see its types.
        if matches!(name, "where" | "select" | "exists" | "all") {
            let item = Tys {
                types: input.types.clone(),
                unordered: false,
            };
            let mut last = Tys::unknown();
            for a in args {
                last = self.expr(a, &item)?;
            }
            if name == "select" {
                return Ok(last);
            }
        }
        Ok(match name {
            "children" | "descendants" => Tys {
                types: None,
                unordered: true,
            },
            "ofType" | "as" => match args.first().map(|a| &a.kind) {
                Some(ExprKind::Ident(t)) => self.named(&TypeSpec {
                    namespace: None,
                    name: t.clone(),
                }),
                _ => Tys::unknown(),
            },
            "extension" => Tys::of("Extension"),
            n if SAME_TYPE.contains(&n) => Tys {
                types: input.types.clone(),
                unordered: input.unordered && !ORDERED.contains(&n),
            },
            _ => Tys::unknown(),
        })
    }

    /// The types of `name` on items of `base`; an error when no type of `base` has it.
    fn member(&self, base: &Tys, name: &str, pos: usize) -> Result<Tys, EvalError> {
        let Some(ts) = &base.types else {
            return Ok(Tys::unknown());
        };
        let mut out = Vec::new();
        let mut unknown = false;
        for t in ts {
            if let Some(variant_of) = self.variant_base(t, name) {
                return err(
                    pos,
                    format!(
                        "{name} is a choice variant: navigate {t}.{variant_of} (with ofType() to pick a type)"
                    ),
                );
            }
            match self.types.child_type(t, name) {
                Some("Resource") => unknown = true,
                Some(c) => out.push(c.to_string()),
                None => match self.types.has_element(t, name) {
                    Some(false) => {}
                    // A choice element (`value`) or a type the information does not describe.
                    _ => unknown = true,
                },
            }
        }
        if unknown {
            return Ok(Tys::unknown());
        }
        if out.is_empty() {
            return err(pos, format!("{} has no element {name}", ts.join(" | ")));
        }
        out.dedup();
        Ok(Tys {
            types: Some(out),
            unordered: base.unordered,
        })
    }

    /// When `name` is the JSON name of a variant of a choice element of `t`, that element.
    fn variant_base<'n>(&self, t: &str, name: &'n str) -> Option<&'n str> {
        name.char_indices()
            .filter(|(i, c)| *i > 0 && c.is_ascii_uppercase())
            .map(|(i, _)| &name[..i])
            .find(|base| self.types.choice_type(t, base, name).is_some())
            .filter(|_| self.types.has_element(t, name).is_some())
    }
}
