//! The raw shape of a pipeline definition, exactly as written in TOML. Every struct rejects
//! unknown fields; the doc comment of each field is its user documentation. Component configs
//! (sources, sinks) live in their component folders and are embedded here by `kind`.

use crate::sink::dead_letter::DeadLetterConfig;
use crate::sink::fhir_import::FhirImportSinkConfig;
use crate::sink::ndjson::NdjsonSinkConfig;
use crate::sink::parquet::ParquetSinkConfig;
use crate::source::azure_blob::AzureBlobSourceConfig;
use crate::source::export_manifest::ExportManifestSourceConfig;
use crate::source::fhir_export::FhirExportSourceConfig;
use crate::source::local::LocalSourceConfig;
use crate::stage::transform::config::TransformConfig;
use crate::storage::StorageConfig;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A whole pipeline definition file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPipeline {
    /// `[pipeline]`: name and run-wide settings.
    pub pipeline: PipelineSection,
    /// `[source]`: where resources come from.
    pub source: RawSource,
    /// `[validate]`: what is checked and what happens to invalid lines.
    #[serde(default)]
    pub validate: ValidateSection,
    /// `[transform]`: unbundle, filter, de-duplicate and edit resources (after the checks).
    pub transform: Option<TransformConfig>,
    /// `[deidentify]`: de-identify every resource with a Microsoft anonymizer configuration
    /// (after the checks and the transform, before the sinks).
    pub deidentify: Option<crate::deid::config::DeidentifyConfig>,
    /// `[sinks.<name>]`: where resources go; one or more.
    #[serde(default)]
    pub sinks: BTreeMap<String, RawSink>,
    /// `[dead_letter]`: where rejected lines go (required unless `validate.on_invalid = "fail"`).
    pub dead_letter: Option<DeadLetterConfig>,
    /// `[storage]`: account and credentials for `az://`, `abfss://` and `https://` locations.
    #[serde(default)]
    pub storage: StorageConfig,
}

/// `[pipeline]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    /// Name shown in progress, summary and report.
    pub name: String,
    /// Free text for people reading the definition.
    pub description: Option<String>,
    /// Worker threads for parsing and checks; 0 or absent = one per core.
    #[serde(default)]
    pub threads: usize,
    /// Input bytes per work unit handed to a worker, e.g. "4MiB" (default).
    pub chunk_size: Option<ByteSize>,
    /// Longest line accepted, e.g. "512MiB" (default); longer lines are dead-lettered.
    pub max_line_size: Option<ByteSize>,
}

/// A byte size: a bare number of bytes or a string such as "128MB" / "64MiB".
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ByteSize {
    /// Bytes.
    Bytes(u64),
    /// Text with a unit.
    Text(String),
}

/// `[source]`, chosen by `kind`.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind")]
pub enum RawSource {
    /// Local files and folders of `*.ndjson` / `*.ndjson.gz`.
    #[serde(rename = "local")]
    Local(LocalSourceConfig),
    /// A FHIR service's `$export`.
    #[serde(rename = "fhir_export")]
    FhirExport(Box<FhirExportSourceConfig>),
    /// NDJSON blobs in Azure Blob Storage / ADLS Gen2.
    #[serde(rename = "azure_blob")]
    AzureBlob(AzureBlobSourceConfig),
    /// The files of an HL7 Bulk Data completion manifest (local, blob or URL).
    #[serde(rename = "export_manifest")]
    ExportManifest(ExportManifestSourceConfig),
}

/// `[validate]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateSection {
    /// `basic` (default): JSON object, known R4 resourceType, valid id, meta.lastUpdated an instant;
    /// `structure`: also the whole resource against the R4 model (an OperationOutcome per invalid line).
    #[serde(default)]
    pub level: RawLevel,
    /// `dead_letter` (default): reject the line and go on; `fail`: stop the run at the first.
    #[serde(default)]
    pub on_invalid: RawOnInvalid,
}

/// Validation levels.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawLevel {
    /// The checks every line passes: JSON object, R4 resourceType, id rule, meta types.
    #[default]
    Basic,
    /// Basic, then the R4 structure of the whole resource: known elements, JSON types,
    /// primitive formats, cardinality, choice types, required-binding codes, references.
    Structure,
}

/// What to do with an invalid line.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawOnInvalid {
    /// Write it to the dead-letter output with file, line and reason; go on.
    #[default]
    DeadLetter,
    /// Stop the run, commit nothing.
    Fail,
}

/// `[sinks.<name>]`, chosen by `kind`.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind")]
pub enum RawSink {
    /// Parquet datasets, one per resource type.
    #[serde(rename = "parquet")]
    Parquet(ParquetSinkConfig),
    /// Cleaned NDJSON, one file set per resource type, rolled by size.
    #[serde(rename = "ndjson")]
    Ndjson(NdjsonSinkConfig),
    /// A FHIR service's `$import`.
    #[serde(rename = "fhir_import")]
    FhirImport(FhirImportSinkConfig),
}
