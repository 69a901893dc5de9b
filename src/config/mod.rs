//! Pipeline definitions: TOML text → interpolated, overridden document → raw serde structs
//! (every section rejects unknown fields) → a checked [`Plan`].
//!
//! Steps, in order, each with errors that name the file, the line, the field and the fix:
//! 1. parse the TOML (syntax errors with line and column);
//! 2. apply `--set dotted.path=value` overrides (values parsed as TOML, else taken as strings);
//! 3. expand `${VAR}` and `${VAR:-default}` in every string value (`$${` is a literal `${`);
//! 4. deserialize into the raw structs of [`raw`] and the component configs they embed;
//! 5. check the whole into a [`Plan`] (paths, sizes, names, output collisions).

mod error;
mod interpolate;
mod locate;
mod overrides;
mod plan;
pub mod raw;
mod transform;

pub use error::ConfigError;
pub use plan::{
    Compression, DeadLetterPlan, ExportManifestPlan, FhirEndpointPlan, FhirExportPlan,
    FhirImportPlan, NdjsonPlan, OnInvalid, ParquetLayout, ParquetPlan, Plan, SinkKindPlan,
    SinkPlan, SourcePlan, ValidateLevel,
};
pub use transform::TransformPlan;

use std::path::Path;

/// Loads, interpolates, overrides and checks a pipeline definition file.
///
/// `env` looks up variables for `${VAR}`; pass `|k| std::env::var(k).ok()` in the binary.
pub fn load(
    path: &Path,
    sets: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            path,
            format!("cannot read the pipeline definition: {e}"),
            "check the path; pipeline definitions live under pipelines/",
        )
    })?;
    load_str(path, &text, sets, env)
}

/// Like [`load`], for a definition already in memory (`path` is used in messages).
pub fn load_str(
    path: &Path,
    text: &str,
    sets: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, ConfigError> {
    let original = toml_edit::Document::parse(text.to_string())
        .map_err(|e| error::from_syntax(path, text, &e))?;
    let mut doc = original.clone().into_mut();
    let overridden = overrides::apply(path, &mut doc, sets)?;
    interpolate::expand_document(path, &original, &mut doc, env)?;
    let final_text = doc.to_string();
    let raw: raw::RawPipeline = toml::from_str(&final_text)
        .map_err(|e| error::from_deserialize(path, &final_text, &e, &overridden))?;
    let locator = locate::Locator::new(&final_text);
    plan::check(path, raw, &locator, &overridden)
}

#[cfg(test)]
mod tests;
