//! Configuration of the `parquet` sink.

use crate::config::raw::ByteSize;
use serde::Deserialize;

/// `[sinks.<name>] kind = "parquet"`: one dataset per resource type under `<path>/<Type>/`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetSinkConfig {
    /// Output folder; datasets are written to `<path>/<Type>/part-NNNNN.parquet`.
    pub path: String,
    /// Column layout: `raw` (typed id/meta columns plus the lossless resource JSON; default),
    /// `resource` (the lossless typed nested schema of each resource type, from the R4 model)
    /// or `views` (one flat dataset per SQL on FHIR v2 ViewDefinition of `views`).
    pub schema: Option<String>,
    /// With `schema = "views"`: ViewDefinition files, or folders of `*.json` ones, relative to
    /// the pipeline definition (e.g. `["views"]`).
    pub views: Option<Vec<String>>,
    /// With `schema = "resource"`: how many times a type may appear on one path before the
    /// element is kept as JSON text (Questionnaire.item.item…; default 3, 1..=10).
    pub max_depth: Option<u32>,
    /// `zstd` (default, level 1), `zstd(N)` with N in 1..=22, `snappy`, or `none`.
    pub compression: Option<String>,
    /// Roll to a new file when one reaches this size (default "128MB").
    pub target_file_size: Option<ByteSize>,
    /// Close a row group when its encoded size reaches this (default "32MiB").
    pub row_group_size: Option<ByteSize>,
    /// Hive-style partition folders below each type folder: `"none"` (default), `"date"`
    /// (`date=YYYY-MM-DD` of `meta.lastUpdated` in UTC; resources without it go to
    /// `date=__HIVE_DEFAULT_PARTITION__`) or `"run"` (`run=<run_value>`). A re-run replaces
    /// the partitions it writes and keeps the others.
    pub partition_by: Option<String>,
    /// The value of `run=` with `partition_by = "run"` (letters, digits, `-`, `_`, `.`);
    /// default the run id. Set it per run, e.g. `run_value = "${EXPORT_BATCH}"`.
    pub run_value: Option<String>,
    /// Files open at once across types and partitions (default 32); when a new partition needs
    /// a file beyond this, the least recently used file is closed (the partition may then get
    /// several files). Bounds memory: each open file holds up to 1 MiB of encoded rows plus its
    /// write buffer (1 MiB locally, up to 10 MiB of blocks in flight on blob storage).
    pub max_open_files: Option<usize>,
}
