//! `[transform]` as written in a pipeline definition. Every field's doc comment is its user
//! documentation (pipelines/README.md repeats it with examples).

use serde::Deserialize;
use std::collections::BTreeMap;

/// `[transform]`: what is done to each valid resource, in this order: unbundle → types →
/// where → dedupe → remove → meta → references.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    /// Bundles found in the input are replaced by their entries' resources; `urn:uuid:`
    /// references to other entries become `Type/id`.
    #[serde(default)]
    pub unbundle: bool,
    /// Keep only these resource types (after unbundling); others are counted as filtered.
    pub types: Option<Vec<String>>,
    /// `[transform.where]`: `Type = "FHIRPath"`; a resource of that type is kept only when
    /// the expression is true for it (false or empty: filtered; an error: dead-lettered).
    #[serde(default, rename = "where")]
    pub where_: BTreeMap<String, String>,
    /// Keep one resource per type and id: the newest `meta.lastUpdated` (a first pass over the
    /// input finds the winners).
    #[serde(default)]
    pub dedupe: bool,
    /// Element paths to remove: `text`, `meta.security`, `name.period`, or `Patient.photo` for
    /// one type only.
    #[serde(default)]
    pub remove: Vec<String>,
    /// `[transform.meta]`: set `meta.source`, add `meta.tag` codings.
    pub meta: Option<MetaConfig>,
    /// Absolute references `<base>/Type/id` become relative `Type/id`.
    pub strip_base_url: Option<String>,
}

/// `[transform.meta]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaConfig {
    /// Sets `meta.source` (replacing any value).
    pub source: Option<String>,
    /// Codings added to `meta.tag` unless one with the same system and code is there.
    #[serde(default)]
    pub tag: Vec<TagConfig>,
}

/// One `meta.tag` coding.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagConfig {
    /// Coding system URI.
    pub system: Option<String>,
    /// The code.
    pub code: String,
    /// Text for people.
    pub display: Option<String>,
}
