//! The FHIRPath engine (FHIRPath N1 as used by FHIR R4): an expression is compiled once into an
//! [`Expression`] (`Send + Sync`, reusable across resources and threads) and evaluated on a
//! resource parsed by simd-json, without converting it: results borrow the resource's JSON.
//!
//! `lexer` → `parser` (syntax tree, function arity) → `eval` (navigation, operators) with
//! `functions` (the function library), `value` (items and JSON output), `decimal` (exact
//! decimals), `temporal` (dates and times), `quantity` (UCUM units), `types` (the [`TypeInfo`]
//! seam the R4 model will implement). See ARCHITECTURE.md, section "FHIRPath engine".

mod decimal;
mod error;
mod eval;
mod functions;
mod lexer;
mod parser;
mod quantity;
mod temporal;
mod types;
mod value;

pub use decimal::Decimal;
pub use error::{EvalError, ParseError};
pub use temporal::{Kind as TemporalKind, Temporal};
pub use types::{Fallback, TypeInfo};
pub use value::{to_json, Item, Items, Json, Node};

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

    /// The text it was compiled from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates on a resource (or any JSON value) with the built-in type information.
    pub fn evaluate<'a>(&self, resource: Json<'a>) -> Result<Items<'a>, EvalError> {
        self.evaluate_with(resource, &Fallback)
    }

    /// Evaluates with the given type information.
    pub fn evaluate_with<'a>(
        &self,
        resource: Json<'a>,
        types: &dyn TypeInfo,
    ) -> Result<Items<'a>, EvalError> {
        let ty = resource
            .get("resourceType")
            .and_then(simd_json::prelude::ValueIntoString::into_string)
            .unwrap_or("");
        let root = Item::node(resource, ty);
        let ctx = eval::Ctx {
            root: root.clone(),
            types,
        };
        let frame = eval::Frame {
            this: Some(&root),
            index: 0,
            total: None,
        };
        ctx.eval(&self.tree, std::slice::from_ref(&root), frame)
    }
}

#[cfg(test)]
mod tests;
