//! Configuration of the `parquet` sink.

use crate::config::raw::ByteSize;
use serde::Deserialize;

/// `[sinks.<name>] kind = "parquet"`: one dataset per resource type under `<path>/<Type>/`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetSinkConfig {
    /// Output folder; datasets are written to `<path>/<Type>/part-NNNNN.parquet`.
    pub path: String,
    /// Column layout: `raw` (typed id/meta columns plus the lossless resource JSON; default) or
    /// `resource` (the lossless typed nested schema of each resource type, from the R4 model).
    pub schema: Option<String>,
    /// With `schema = "resource"`: how many times a type may appear on one path before the
    /// element is kept as JSON text (Questionnaire.item.item…; default 3, 1..=10).
    pub max_depth: Option<u32>,
    /// `zstd` (default, level 1), `zstd(N)` with N in 1..=22, `snappy`, or `none`.
    pub compression: Option<String>,
    /// Roll to a new file when one reaches this size (default "128MB").
    pub target_file_size: Option<ByteSize>,
    /// Close a row group when its encoded size reaches this (default "32MiB").
    pub row_group_size: Option<ByteSize>,
}
