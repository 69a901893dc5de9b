//! SQL on FHIR v2 ViewDefinitions: a view turns each resource of one type into flat rows.
//! This module owns reading and checking a definition (`definition`: clear errors with the
//! JSON path of the field), evaluating it on a resource parsed by simd-json (`eval`: `select`,
//! `column`, `forEach`, `forEachOrNull`, `repeat`, `unionAll`, `where`, `constant`,
//! `%rowIndex`, on the FHIRPath engine with its SQL on FHIR functions `getResourceKey` and
//! `getReferenceKey`), the typed cells of a row ([`Cell`], [`ColumnKind`]) and the output
//! formats (`output`: Parquet, CSV, NDJSON, JSON). See ARCHITECTURE.md, section "Views".

mod definition;
mod eval;
pub mod output;
pub mod run;

pub use definition::Column;

use crate::fhirpath::{Decimal, Json};
use std::path::Path;

/// Why a view cannot be read or evaluated.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The definition is not a valid ViewDefinition.
    #[error("invalid ViewDefinition at {at}: {message}")]
    Definition {
        /// JSON path of the field (`select[0].column[1].path`).
        at: String,
        /// What is wrong.
        message: String,
    },
    /// The definition file is not JSON or cannot be read.
    #[error("cannot read ViewDefinition {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// Evaluating the view on a resource failed.
    #[error("{at} on {resource}: {message}")]
    Eval {
        /// Which part of the view (`select[0].column[1] (family)`, `where[0].path`).
        at: String,
        /// `Type/id` of the resource.
        resource: String,
        /// What went wrong.
        message: String,
    },
}

/// What a column holds, from its `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// `boolean`.
    Boolean,
    /// `integer`, `positiveInt`, `unsignedInt`, `integer64`.
    Integer,
    /// `decimal`.
    Decimal,
    /// `string`, `code`, `id`, `uri`, dates and times (as their FHIR text), ...
    String,
    /// No `type` given: each value as the FHIRPath engine returns it (text in typed outputs).
    Any,
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// No value.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// An exact decimal.
    Dec(Decimal),
    /// Text (also dates and times in their FHIR form, and complex values as JSON).
    Str(String),
    /// The values of a `collection: true` column.
    List(Vec<Cell>),
}

/// A compiled ViewDefinition, ready to run on any number of resources (`Send + Sync`).
#[derive(Debug)]
pub struct View {
    compiled: definition::Compiled,
}

impl View {
    /// Checks and compiles a ViewDefinition given as JSON.
    pub fn from_json(v: &serde_json::Value) -> Result<View, ViewError> {
        Ok(View {
            compiled: definition::compile(v)?,
        })
    }

    /// Reads a ViewDefinition file.
    pub fn from_file(path: &Path) -> Result<View, ViewError> {
        let read = |message: String| ViewError::Read {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| read(e.to_string()))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| read(format!("not JSON: {e}")))?;
        Self::from_json(&v)
    }

    /// The resource type it reads.
    pub fn resource(&self) -> &str {
        &self.compiled.resource
    }

    /// Its `name`, if given.
    pub fn name(&self) -> Option<&str> {
        self.compiled.name.as_deref()
    }

    /// The output columns, in order.
    pub fn columns(&self) -> &[Column] {
        &self.compiled.columns
    }

    /// Appends the rows of one resource (of any type: another type than [`View::resource`]
    /// gives no rows) to `out`; each row has one cell per column.
    pub fn rows(&self, resource: Json<'_>, out: &mut Vec<Vec<Cell>>) -> Result<(), ViewError> {
        eval::rows(&self.compiled, resource, out)
    }

    /// [`View::rows`] given also the resource's JSON `text` (the bytes its tape was parsed
    /// from, before parsing), so decimals keep the precision they are written with: `1.0`
    /// has one decimal place, which `lowBoundary()` and `highBoundary()` depend on; the tape
    /// alone holds the f64 1.
    pub fn rows_with_text(
        &self,
        resource: Json<'_>,
        text: &[u8],
        out: &mut Vec<Vec<Cell>>,
    ) -> Result<(), ViewError> {
        crate::fhirpath::with_number_literals(resource, text, || self.rows(resource, out))
    }
}

#[cfg(test)]
mod tests;
