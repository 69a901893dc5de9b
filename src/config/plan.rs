//! The checked plan: every value resolved, validated and typed. Runs and `fhirpipe check` work
//! from this, never from the raw structs.

use super::error::closest;
use super::locate::Locator;
use super::raw::{ByteSize, RawLevel, RawOnInvalid, RawPipeline, RawSink, RawSource};
use super::transform::TransformPlan;
use super::ConfigError;
use crate::fhir::{resource_type_index, TypeIdx, RESOURCE_TYPES};
use crate::sink::fhir_import::FhirImportSinkConfig;
use crate::sink::partition::{valid_run_value, PartitionBy};
use crate::source::fhir_export::{ExportLevel, FhirExportSourceConfig};
use crate::storage::{BlobUrl, Location, StorageConfig};
use crate::util::{format_bytes, parse_byte_size};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A checked pipeline.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `[pipeline] name`.
    pub name: String,
    /// The definition file this plan came from.
    pub file: PathBuf,
    /// Worker threads (resolved: never 0).
    pub threads: usize,
    /// Input bytes per work unit.
    pub chunk_size: usize,
    /// Longest accepted line.
    pub max_line_size: usize,
    /// Where resources come from.
    pub source: SourcePlan,
    /// What is checked.
    pub validate_level: ValidateLevel,
    /// What happens to invalid lines.
    pub on_invalid: OnInvalid,
    /// Outputs, in name order.
    pub sinks: Vec<SinkPlan>,
    /// Rejected lines' output.
    pub dead_letter: Option<DeadLetterPlan>,
    /// Account and credentials for blob locations (resolved when a store is opened).
    pub storage: StorageConfig,
    /// `[transform]`, shared by every worker.
    pub transform: Option<Arc<TransformPlan>>,
    /// `[deidentify]`: the loaded configuration (and its file), shared by every worker.
    pub deidentify: Option<(PathBuf, Arc<crate::deid::Deidentifier>)>,
}

/// Checked source.
#[derive(Debug, Clone)]
pub enum SourcePlan {
    /// Local files and folders.
    Local {
        /// Files or folders, as given.
        paths: Vec<PathBuf>,
        /// Types kept (others filtered), `None` = all.
        types: Option<Vec<TypeIdx>>,
    },
    /// Blobs (`kind = "azure_blob"`, or a local source given URLs).
    AzureBlob {
        /// Blobs or prefixes.
        urls: Vec<BlobUrl>,
        /// Types kept (others filtered), `None` = all.
        types: Option<Vec<TypeIdx>>,
        /// Range requests in flight per blob.
        concurrency: usize,
        /// Bytes per range request.
        range_size: u64,
    },
    /// A FHIR service's `$export`.
    FhirExport(FhirExportPlan),
    /// The files of a Bulk Data completion manifest.
    ExportManifest(ExportManifestPlan),
}

/// Checked `export_manifest` source.
#[derive(Debug, Clone)]
pub struct ExportManifestPlan {
    /// Local path, blob URL or http(s) URL, as given.
    pub manifest: String,
    /// Token source for an http(s) manifest and for `requiresAccessToken` files.
    pub auth: Option<crate::auth::AuthConfig>,
    /// Audience override.
    pub audience: Option<String>,
}

impl SourcePlan {
    /// The types kept, `None` = all.
    pub fn types(&self) -> Option<&[TypeIdx]> {
        match self {
            SourcePlan::Local { types, .. } | SourcePlan::AzureBlob { types, .. } => {
                types.as_deref()
            }
            SourcePlan::FhirExport(_) | SourcePlan::ExportManifest(_) => None,
        }
    }
}

/// A checked FHIR endpoint: base URL (no trailing slash), auth, expected audience.
#[derive(Debug, Clone)]
pub struct FhirEndpointPlan {
    /// The dotted path of its config (`source`, `sinks.target`), for messages.
    pub field: String,
    /// Base URL without a trailing slash.
    pub url: String,
    /// How the token is obtained.
    pub auth: crate::auth::AuthConfig,
    /// Audience override.
    pub audience: Option<String>,
}

/// Checked `fhir_export` source.
#[derive(Debug, Clone)]
pub struct FhirExportPlan {
    /// The service.
    pub endpoint: FhirEndpointPlan,
    /// Path below the base: `$export`, `Patient/$export` or `Group/{id}/$export`.
    pub operation_path: String,
    /// Query parameters (`_type`, `_since`, …), in order.
    pub query: Vec<(String, String)>,
    /// The state file with the last run's `transactionTime`.
    pub state: Option<Location>,
    /// Wait between polls without `Retry-After`.
    pub poll_interval: std::time::Duration,
    /// Cap on `Retry-After` between polls.
    pub max_poll_wait: std::time::Duration,
    /// Overall limit for kick-off and polling.
    pub timeout: std::time::Duration,
}

/// Checked `fhir_import` sink.
#[derive(Debug, Clone)]
pub struct FhirImportPlan {
    /// The service.
    pub endpoint: FhirEndpointPlan,
    /// `InitialLoad` or `IncrementalLoad`.
    pub mode: crate::sink::fhir_import::ImportMode,
    /// Staging folder URL (no query string).
    pub staging: String,
    /// Target staged file size.
    pub chunk_size: u64,
    /// Keep staged chunks after a successful import.
    pub keep_staged: bool,
}

/// Validation level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidateLevel {
    /// JSON object, R4 resourceType, id rule, meta types.
    Basic,
    /// Basic, then the R4 structure of the whole resource.
    Structure,
}

/// Invalid-line policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnInvalid {
    /// Dead-letter and continue.
    DeadLetter,
    /// Stop the run.
    Fail,
}

/// A named sink.
#[derive(Debug, Clone)]
pub struct SinkPlan {
    /// The `<name>` of `[sinks.<name>]`.
    pub name: String,
    /// What it writes.
    pub kind: SinkKindPlan,
}

/// Checked sink settings.
#[derive(Debug, Clone)]
pub enum SinkKindPlan {
    /// Parquet datasets.
    Parquet(ParquetPlan),
    /// NDJSON files.
    Ndjson(NdjsonPlan),
    /// A FHIR service's `$import`.
    FhirImport(FhirImportPlan),
}

/// Parquet compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// zstd at a level.
    Zstd(i32),
    /// snappy.
    Snappy,
    /// none.
    None,
}

/// Checked Parquet sink.
#[derive(Debug, Clone)]
pub struct ParquetPlan {
    /// Output folder or blob prefix.
    pub path: Location,
    /// Codec.
    pub compression: Compression,
    /// Roll size.
    pub target_file_size: u64,
    /// Row group size in encoded bytes.
    pub row_group_bytes: u64,
    /// Partition folders; `Run("")` means the run id.
    pub partition_by: PartitionBy,
    /// Bound on open files.
    pub max_open_files: usize,
    /// Column layout.
    pub layout: ParquetLayout,
    /// With `ParquetLayout::Views`: the dataset name and compiled ViewDefinition of each view.
    pub views: Vec<(String, std::sync::Arc<crate::view::View>)>,
}

/// The column layout of a Parquet sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParquetLayout {
    /// id/meta columns plus the resource JSON.
    Raw,
    /// The lossless typed schema of each resource type.
    Resource {
        /// Occurrences of a type on a path before JSON text.
        max_depth: u32,
    },
    /// SQL on FHIR v2 views: one flat dataset per view ([`ParquetPlan::views`]).
    Views,
}

/// Checked NDJSON sink.
#[derive(Debug, Clone)]
pub struct NdjsonPlan {
    /// Output folder or blob prefix.
    pub path: Location,
    /// Roll size.
    pub target_file_size: u64,
    /// gzip output.
    pub gzip: bool,
}

/// Checked dead-letter output.
#[derive(Debug, Clone)]
pub struct DeadLetterPlan {
    /// Output folder or blob prefix.
    pub path: Location,
    /// Roll size.
    pub target_file_size: u64,
}

/// The views of a `schema = "views"` sink: `views` lists ViewDefinition files or folders of
/// `*.json` files (relative to the definition); each dataset is named by the view's `name`,
/// else its file name.
fn parquet_views(
    ctx: &Ctx,
    file: &Path,
    name: &str,
    c: &crate::sink::parquet::ParquetSinkConfig,
    layout: ParquetLayout,
) -> Result<Vec<(String, std::sync::Arc<crate::view::View>)>, ConfigError> {
    let key = ["sinks", name, "views"];
    let Some(list) = &c.views else {
        if layout == ParquetLayout::Views {
            return Err(ctx.err(
                &key,
                "schema = \"views\" needs `views`".to_string(),
                "list ViewDefinition files or folders, e.g. views = [\"views\"] (relative to this file)",
            ));
        }
        return Ok(Vec::new());
    };
    if layout != ParquetLayout::Views {
        return Err(ctx.err(
            &key,
            "views apply to schema = \"views\" only".to_string(),
            "set schema = \"views\" or remove views",
        ));
    }
    if c.partition_by.as_deref().is_some_and(|p| p != "none") {
        return Err(ctx.err(
            &["sinks", name, "partition_by"],
            "partition_by is not available with schema = \"views\"".to_string(),
            "remove partition_by (view datasets are written as <path>/<view>/part-NNNNN.parquet)",
        ));
    }
    let base = file.parent().unwrap_or(Path::new("."));
    let mut files = Vec::new();
    for entry in list {
        let p = base.join(entry);
        if p.is_dir() {
            let mut in_dir: Vec<PathBuf> = std::fs::read_dir(&p)
                .map_err(|e| {
                    ctx.err(
                        &key,
                        format!("cannot list {}: {e}", p.display()),
                        "give ViewDefinition files or folders",
                    )
                })?
                .flatten()
                .map(|e| e.path())
                .filter(|f| f.extension().is_some_and(|x| x == "json"))
                .collect();
            in_dir.sort();
            files.extend(in_dir);
        } else {
            files.push(p);
        }
    }
    if files.is_empty() {
        return Err(ctx.err(
            &key,
            "no ViewDefinition files found".to_string(),
            "give ViewDefinition files (.json) or folders holding them",
        ));
    }
    let mut out: Vec<(String, std::sync::Arc<crate::view::View>)> = Vec::new();
    for f in files {
        let view = crate::view::View::from_file(&f).map_err(|e| {
            ctx.err(
                &key,
                format!("{}: {e}", f.display()),
                "fix the ViewDefinition (fhirpipe view run checks one on its own)",
            )
        })?;
        let ds = view
            .name()
            .map(str::to_string)
            .or_else(|| f.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_default();
        if ds.is_empty()
            || !ds
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(ctx.err(
                &key,
                format!(
                    "{}: view name {ds:?} cannot name a dataset folder",
                    f.display()
                ),
                "give the view a name of letters, digits, '_' or '-'",
            ));
        }
        if crate::fhir::resource_type_index(&ds).is_some() || out.iter().any(|(n, _)| *n == ds) {
            return Err(ctx.err(
                &key,
                format!("{}: two datasets would be named {ds:?}", f.display()),
                "give each view a unique name that is not a resource type",
            ));
        }
        if crate::fhir::resource_type_index(view.resource()).is_none() {
            return Err(ctx.err(
                &key,
                format!(
                    "{}: resource {:?} is not an R4 resource type",
                    f.display(),
                    view.resource()
                ),
                "set the view's resource to an R4 type",
            ));
        }
        out.push((ds, std::sync::Arc::new(view)));
    }
    Ok(out)
}

/// `partition_by` and `run_value` of a Parquet sink.
fn partition_by(
    ctx: &Ctx,
    name: &str,
    c: &crate::sink::parquet::ParquetSinkConfig,
) -> Result<PartitionBy, ConfigError> {
    let f = |k: &'static str| ["sinks", name, k];
    let by = match c.partition_by.as_deref() {
        None | Some("none") => PartitionBy::None,
        Some("date") => PartitionBy::Date,
        Some("run") => PartitionBy::Run(c.run_value.clone().unwrap_or_default()),
        Some(other) => {
            return Err(ctx.err(
                &f("partition_by"),
                format!("unknown partitioning `{other}`"),
                "use partition_by = \"date\" (date=YYYY-MM-DD of meta.lastUpdated), \"run\" (run=<run_value>) or \"none\"",
            ))
        }
    };
    if let Some(v) = &c.run_value {
        if !matches!(by, PartitionBy::Run(_)) {
            return Err(ctx.err(
                &f("run_value"),
                "run_value is only used with partition_by = \"run\"".into(),
                "add partition_by = \"run\" or remove run_value",
            ));
        }
        if !valid_run_value(v) {
            return Err(ctx.err(
                &f("run_value"),
                format!("run_value `{v}` cannot be a partition folder name"),
                "use 1-100 letters, digits, `-`, `_` or `.`, not starting with `.`",
            ));
        }
    }
    Ok(by)
}

pub(super) struct Ctx<'a> {
    file: &'a Path,
    loc: &'a Locator,
    overridden: &'a [String],
}

impl Ctx<'_> {
    pub(super) fn err(
        &self,
        field: &[&str],
        message: String,
        fix: impl Into<String>,
    ) -> ConfigError {
        let dotted = field.join(".");
        let mut fix = fix.into();
        if self
            .overridden
            .iter()
            .any(|o| dotted.starts_with(o.as_str()))
        {
            fix.push_str(" (this value came from --set)");
        }
        ConfigError::new(self.file, message, fix).at(self.loc.line(field), Some(dotted))
    }

    fn size(
        &self,
        field: &[&str],
        v: &Option<ByteSize>,
        default: u64,
        (min, max): (u64, u64),
    ) -> Result<u64, ConfigError> {
        let n = match v {
            None => default,
            Some(ByteSize::Bytes(n)) => *n,
            Some(ByteSize::Text(t)) => parse_byte_size(t).map_err(|e| {
                self.err(
                    field,
                    e.0,
                    "write a size such as \"128MB\", \"64MiB\" or a number of bytes",
                )
            })?,
        };
        if n < min {
            return Err(self.err(
                field,
                format!("{} is too small", format_bytes(n)),
                format!("use at least \"{}\"", exact_size(min)),
            ));
        }
        if n > max {
            return Err(self.err(
                field,
                format!("{} is too large", format_bytes(n)),
                format!("use at most \"{}\"", exact_size(max)),
            ));
        }
        Ok(n)
    }

    fn path(&self, field: &[&str], p: &str) -> Result<PathBuf, ConfigError> {
        if p.trim().is_empty() {
            return Err(self.err(field, "the path is empty".into(), "give a folder path"));
        }
        Ok(PathBuf::from(p))
    }

    /// A local folder or a blob URL.
    fn location(&self, field: &[&str], p: &str) -> Result<Location, ConfigError> {
        self.path(field, p)?;
        Location::parse(p).map_err(|e| self.err(field, e.message, e.fix))
    }
}

/// An http(s) URL without query or fragment; plain http only for loopback (tests, tunnels).
fn endpoint_url(ctx: &Ctx, field: &[&str], text: &str, what: &str) -> Result<String, ConfigError> {
    let url = reqwest::Url::parse(text.trim()).map_err(|e| {
        ctx.err(
            field,
            format!("`{text}` is not a URL ({e})"),
            format!("write the {what} as https://host/path"),
        )
    })?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(ctx.err(
            field,
            format!("`{text}` is not an https URL"),
            format!("write the {what} as https://…; plain http is only accepted for 127.0.0.1/localhost"),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ctx.err(
            field,
            format!("the {what} has a query string or fragment"),
            "remove everything from `?` on (credentials go in the auth table, never in URLs)",
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

fn instant(ctx: &Ctx, field: &[&str], v: &Option<String>) -> Result<(), ConfigError> {
    if let Some(t) = v {
        if crate::fhir::parse_instant_micros(t).is_err() {
            return Err(ctx.err(
                field,
                format!("`{t}` is not a FHIR instant"),
                "write a full instant with time zone, e.g. 2026-11-01T00:00:00Z",
            ));
        }
    }
    Ok(())
}

fn fhir_export(ctx: &Ctx, c: &FhirExportSourceConfig) -> Result<FhirExportPlan, ConfigError> {
    let url = endpoint_url(ctx, &["source", "url"], &c.url, "FHIR service URL")?;
    let operation_path = match (c.level, &c.group) {
        (ExportLevel::System, None) => "$export".to_string(),
        (ExportLevel::Patient, None) => "Patient/$export".to_string(),
        (ExportLevel::Group, Some(g)) if !g.trim().is_empty() => {
            format!("Group/{}/$export", g.trim())
        }
        (ExportLevel::Group, _) => {
            return Err(ctx.err(
                &["source", "group"],
                "level = \"group\" needs the Group id".into(),
                "add group = \"<Group id>\"",
            ))
        }
        (_, Some(_)) => {
            return Err(ctx.err(
                &["source", "group"],
                "`group` is set but the level is not \"group\"".into(),
                "set level = \"group\", or remove `group`",
            ))
        }
    };
    let mut query = Vec::new();
    if let Some(t) = &c.types {
        type_list(ctx, &["source", "types"], t)?;
        query.push(("_type".to_string(), t.join(",")));
    }
    instant(ctx, &["source", "since"], &c.since)?;
    instant(ctx, &["source", "till"], &c.till)?;
    if let Some(s) = &c.since {
        query.push(("_since".to_string(), s.clone()));
    }
    if let Some(s) = &c.till {
        query.push(("_till".to_string(), s.clone()));
    }
    if let Some(f) = &c.type_filter {
        if c.types.is_none() {
            return Err(ctx.err(
                &["source", "type_filter"],
                "`type_filter` without `types`".into(),
                "list the types too: the service refuses _typeFilter without _type",
            ));
        }
        for q in f {
            query.push(("_typeFilter".to_string(), q.clone()));
        }
    }
    if let Some(cn) = &c.container {
        query.push(("_container".to_string(), cn.clone()));
    }
    let state = match &c.state {
        Some(p) => Some(ctx.location(&["source", "state"], p)?),
        None => None,
    };
    let dur = |field: &'static str, v: &Option<String>, default: u64| match v {
        None => Ok(std::time::Duration::from_secs(default)),
        Some(t) => crate::util::parse_duration(t).map_err(|e| {
            ctx.err(
                &["source", field],
                e,
                "write a duration such as \"500ms\", \"10s\", \"5m\" or \"12h\"",
            )
        }),
    };
    Ok(FhirExportPlan {
        state,
        poll_interval: dur("poll_interval", &c.poll_interval, 10)?,
        max_poll_wait: dur("max_poll_wait", &c.max_poll_wait, 60)?,
        timeout: dur("timeout", &c.timeout, 12 * 3600)?,
        endpoint: FhirEndpointPlan {
            field: "source".into(),
            url,
            auth: c.auth.clone(),
            audience: c.audience.clone(),
        },
        operation_path,
        query,
    })
}

fn fhir_import(
    ctx: &Ctx,
    name: &str,
    c: &FhirImportSinkConfig,
) -> Result<FhirImportPlan, ConfigError> {
    let f = |k: &'static str| ["sinks", name, k];
    let url = endpoint_url(ctx, &f("url"), &c.url, "FHIR service URL")?;
    let staging = endpoint_url(ctx, &f("staging"), &c.staging, "staging folder URL")?;
    // A Blob Storage host (or an emulator's path-style URL on loopback) and a container.
    if crate::sink::fhir_import::split_blob_url(&staging).is_none() {
        return Err(ctx.err(
            &f("staging"),
            "the staging URL is not a container on a Blob Storage account".into(),
            "write https://<account>.blob.core.windows.net/<container>/<prefix>, on the FHIR service's import storage account",
        ));
    }
    Ok(FhirImportPlan {
        endpoint: FhirEndpointPlan {
            field: format!("sinks.{name}"),
            url,
            auth: c.auth.clone(),
            audience: c.audience.clone(),
        },
        mode: c.mode,
        staging,
        chunk_size: ctx.size(
            &f("chunk_size"),
            &c.chunk_size,
            256_000_000,
            (1_000_000, 1_000_000_000),
        )?,
        keep_staged: c.keep_staged,
    })
}

/// A size as people write it in a definition: `1GiB`, `64KiB`, `1MB`, else bytes.
fn exact_size(n: u64) -> String {
    for (unit, name) in [
        (1u64 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
        (1_000_000, "MB"),
    ] {
        if n >= unit && n % unit == 0 {
            return format!("{}{name}", n / unit);
        }
    }
    format!("{n}")
}

/// Upper bound of `chunk_size` and `max_line_size`: Arrow string columns address 2 GiB, and
/// a record batch must hold at least one line.
const MAX_LINE: u64 = 1 << 30;

pub(super) fn type_list(
    ctx: &Ctx,
    field: &[&str],
    names: &[String],
) -> Result<Vec<TypeIdx>, ConfigError> {
    let all: Vec<String> = RESOURCE_TYPES.iter().map(|s| s.to_string()).collect();
    names
        .iter()
        .map(|n| {
            resource_type_index(n).ok_or_else(|| {
                let fix = match closest(n, &all) {
                    Some(best) => format!(
                        "did you mean `{best}`? Type names are case-sensitive R4 resource types"
                    ),
                    None => "use R4 resource type names such as Patient or Observation".to_string(),
                };
                ctx.err(field, format!("`{n}` is not an R4 resource type"), fix)
            })
        })
        .collect()
}

fn compression(ctx: &Ctx, field: &[&str], v: &Option<String>) -> Result<Compression, ConfigError> {
    let Some(text) = v else {
        return Ok(Compression::Zstd(1));
    };
    let t = text.trim().to_ascii_lowercase();
    let bad = || {
        ctx.err(
            field,
            format!("unknown compression `{text}`"),
            "use \"zstd\", \"zstd(N)\" with N from 1 to 22, \"snappy\" or \"none\"",
        )
    };
    match t.as_str() {
        "zstd" => Ok(Compression::Zstd(1)),
        "snappy" => Ok(Compression::Snappy),
        "none" | "uncompressed" => Ok(Compression::None),
        _ => {
            let level = t
                .strip_prefix("zstd(")
                .and_then(|r| r.strip_suffix(')'))
                .and_then(|n| n.trim().parse::<i32>().ok())
                .ok_or_else(bad)?;
            if (1..=22).contains(&level) {
                Ok(Compression::Zstd(level))
            } else {
                Err(bad())
            }
        }
    }
}

pub(crate) fn check(
    file: &Path,
    raw: RawPipeline,
    loc: &Locator,
    overridden: &[String],
) -> Result<Plan, ConfigError> {
    let ctx = Ctx {
        file,
        loc,
        overridden,
    };
    let p = &raw.pipeline;
    if p.name.trim().is_empty() {
        return Err(ctx.err(
            &["pipeline", "name"],
            "the name is empty".into(),
            "give the pipeline a name",
        ));
    }
    let threads = if p.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    } else {
        p.threads
    };
    let chunk_size = ctx.size(
        &["pipeline", "chunk_size"],
        &p.chunk_size,
        4 << 20,
        (64 << 10, MAX_LINE),
    )? as usize;
    let max_line_size = ctx.size(
        &["pipeline", "max_line_size"],
        &p.max_line_size,
        512 << 20,
        (1 << 20, MAX_LINE),
    )? as usize;

    let source = match &raw.source {
        RawSource::Local(c) => {
            let paths: Vec<PathBuf> =
                match (&c.path, &c.paths) {
                    (Some(p), None) => vec![ctx.path(&["source", "path"], p)?],
                    (None, Some(ps)) if !ps.is_empty() => ps
                        .iter()
                        .map(|p| ctx.path(&["source", "paths"], p))
                        .collect::<Result<_, _>>()?,
                    (Some(_), Some(_)) => {
                        return Err(ctx.err(
                            &["source", "paths"],
                            "both `path` and `paths` are set".into(),
                            "keep one of them",
                        ))
                    }
                    _ => return Err(ctx.err(
                        &["source"],
                        "the local source has no input".into(),
                        "add `path = \"folder/or/file.ndjson\"` (or `paths = [...]`) to [source]",
                    )),
                };
            let types = match &c.types {
                Some(t) => Some(type_list(&ctx, &["source", "types"], t)?),
                None => None,
            };
            let mut urls = Vec::new();
            for p in &paths {
                if let Location::Blob(u) = Location::parse(&p.to_string_lossy())
                    .map_err(|e| ctx.err(&["source", "path"], e.message, e.fix))?
                {
                    urls.push(u);
                }
            }
            if !urls.is_empty() {
                if urls.len() != paths.len() {
                    return Err(ctx.err(
                        &["source", "paths"],
                        "local paths and blob URLs are mixed".into(),
                        "read either local files or blobs in one pipeline",
                    ));
                }
                SourcePlan::AzureBlob {
                    urls,
                    types,
                    concurrency: 4,
                    range_size: 8 << 20,
                }
            } else {
                SourcePlan::Local { paths, types }
            }
        }
        RawSource::AzureBlob(c) => {
            let texts: Vec<(&str, &String)> = match (&c.url, &c.urls) {
                (Some(u), None) => vec![("url", u)],
                (None, Some(us)) if !us.is_empty() => us.iter().map(|u| ("urls", u)).collect(),
                (Some(_), Some(_)) => {
                    return Err(ctx.err(
                        &["source", "urls"],
                        "both `url` and `urls` are set".into(),
                        "keep one of them",
                    ))
                }
                _ => {
                    return Err(ctx.err(
                        &["source"],
                        "the azure_blob source has no input".into(),
                        "add `url = \"az://container/prefix\"` (or `urls = [...]`) to [source]",
                    ))
                }
            };
            let mut urls = Vec::new();
            for (field, t) in texts {
                match Location::parse(t).map_err(|e| ctx.err(&["source", field], e.message, e.fix))? {
                    Location::Blob(u) => urls.push(u),
                    Location::Local(_) => {
                        return Err(ctx.err(
                            &["source", field],
                            format!("`{t}` is not a blob URL"),
                            "write az://container/prefix, abfss://container@account.dfs.core.windows.net/prefix or https://account.blob.core.windows.net/container/prefix; for local files use kind = \"local\"",
                        ))
                    }
                }
            }
            let types = match &c.types {
                Some(t) => Some(type_list(&ctx, &["source", "types"], t)?),
                None => None,
            };
            let concurrency = c.concurrency.unwrap_or(4);
            if !(1..=64).contains(&concurrency) {
                return Err(ctx.err(
                    &["source", "concurrency"],
                    format!("{concurrency} range requests at once is out of range"),
                    "use 1 to 64 (default 4)",
                ));
            }
            SourcePlan::AzureBlob {
                urls,
                types,
                concurrency,
                range_size: ctx.size(
                    &["source", "range_size"],
                    &c.range_size,
                    8 << 20,
                    (4 << 10, 1 << 30),
                )?,
            }
        }
        RawSource::FhirExport(c) => SourcePlan::FhirExport(fhir_export(&ctx, c)?),
        RawSource::ExportManifest(c) => {
            if c.manifest.trim().is_empty() {
                return Err(ctx.err(
                    &["source", "manifest"],
                    "the manifest location is empty".into(),
                    "give a file path, a blob URL or the export's status URL",
                ));
            }
            if c.manifest.contains("://") && !c.manifest.starts_with("http") {
                ctx.location(&["source", "manifest"], &c.manifest)?;
            } else if c.manifest.starts_with("http") && Location::parse(&c.manifest).is_err() {
                endpoint_url(&ctx, &["source", "manifest"], &c.manifest, "manifest URL")?;
            }
            SourcePlan::ExportManifest(ExportManifestPlan {
                manifest: c.manifest.trim().to_string(),
                auth: c.auth.clone(),
                audience: c.audience.clone(),
            })
        }
    };

    let mut sinks = Vec::new();
    for (name, sink) in &raw.sinks {
        let kind = match sink {
            RawSink::Parquet(c) => {
                let f = |k: &'static str| ["sinks", name.as_str(), k];
                let layout = match c.schema.as_deref() {
                    None | Some("raw") => ParquetLayout::Raw,
                    Some("resource") => ParquetLayout::Resource {
                        max_depth: c
                            .max_depth
                            .unwrap_or(crate::sink::parquet::resource::DEFAULT_MAX_DEPTH),
                    },
                    Some("views") => ParquetLayout::Views,
                    Some(schema) => {
                        return Err(ctx.err(
                            &f("schema"),
                            format!("unknown Parquet schema `{schema}`"),
                            "use schema = \"raw\" (typed id and meta columns plus the lossless resource JSON), \"resource\" (lossless typed columns per resource type) or \"views\" (one flat dataset per SQL on FHIR view)",
                        ));
                    }
                };
                let views = parquet_views(&ctx, file, name, c, layout)?;
                if let Some(d) = c.max_depth {
                    if !matches!(layout, ParquetLayout::Resource { .. }) {
                        return Err(ctx.err(
                            &f("max_depth"),
                            "max_depth applies to schema = \"resource\" only".to_string(),
                            "remove max_depth or set schema = \"resource\"",
                        ));
                    }
                    if !(1..=10).contains(&d) {
                        return Err(ctx.err(
                            &f("max_depth"),
                            format!("max_depth must be between 1 and 10, got {d}"),
                            "use the default (3) unless deeper recursion must stay typed",
                        ));
                    }
                }
                SinkKindPlan::Parquet(ParquetPlan {
                    path: ctx.location(&f("path"), &c.path)?,
                    compression: compression(&ctx, &f("compression"), &c.compression)?,
                    target_file_size: ctx.size(
                        &f("target_file_size"),
                        &c.target_file_size,
                        128_000_000,
                        (1 << 20, u64::MAX),
                    )?,
                    row_group_bytes: ctx.size(
                        &f("row_group_size"),
                        &c.row_group_size,
                        32 << 20,
                        (64 << 10, u64::MAX),
                    )?,
                    partition_by: partition_by(&ctx, name, c)?,
                    max_open_files: match c.max_open_files {
                        Some(n) if !(1..=10_000).contains(&n) => {
                            return Err(ctx.err(
                                &f("max_open_files"),
                                format!("max_open_files = {n} is out of range"),
                                "use a number from 1 to 10000 (default 32)",
                            ))
                        }
                        Some(n) => n,
                        None => 32,
                    },
                    layout,
                    views,
                })
            }
            RawSink::Ndjson(c) => {
                let f = |k: &'static str| ["sinks", name.as_str(), k];
                SinkKindPlan::Ndjson(NdjsonPlan {
                    path: ctx.location(&f("path"), &c.path)?,
                    target_file_size: ctx.size(
                        &f("target_file_size"),
                        &c.target_file_size,
                        256_000_000,
                        (1 << 20, u64::MAX),
                    )?,
                    gzip: c.gzip,
                })
            }
            RawSink::FhirImport(c) => SinkKindPlan::FhirImport(fhir_import(&ctx, name, c)?),
        };
        sinks.push(SinkPlan {
            name: name.clone(),
            kind,
        });
    }
    if sinks.is_empty() {
        return Err(ctx.err(
            &["sinks"],
            "the pipeline has no sinks, so nothing would be written".into(),
            "add a sink, e.g. [sinks.lake] kind = \"parquet\" path = \"out/parquet\"",
        ));
    }

    let on_invalid = match raw.validate.on_invalid {
        RawOnInvalid::DeadLetter => OnInvalid::DeadLetter,
        RawOnInvalid::Fail => OnInvalid::Fail,
    };
    let dead_letter = match &raw.dead_letter {
        Some(d) => Some(DeadLetterPlan {
            path: ctx.location(&["dead_letter", "path"], &d.path)?,
            target_file_size: ctx.size(
                &["dead_letter", "target_file_size"],
                &d.target_file_size,
                256_000_000,
                (1 << 20, u64::MAX),
            )?,
        }),
        None if on_invalid == OnInvalid::Fail => None,
        None => return Err(ctx.err(
            &["dead_letter"],
            "invalid lines are dead-lettered but no [dead_letter] output is defined".into(),
            "add [dead_letter] path = \"out/dead-letter\", or set validate.on_invalid = \"fail\"",
        )),
    };

    // Two outputs in one folder would delete each other's files at commit.
    let mut outs: Vec<(String, Location)> = sinks
        .iter()
        .filter_map(|s| {
            let p = match &s.kind {
                SinkKindPlan::Parquet(p) => p.path.clone(),
                SinkKindPlan::Ndjson(n) => n.path.clone(),
                SinkKindPlan::FhirImport(_) => return None,
            };
            Some((format!("sinks.{}.path", s.name), p))
        })
        .collect();
    if let Some(d) = &dead_letter {
        outs.push(("dead_letter.path".into(), d.path.clone()));
    }
    for i in 0..outs.len() {
        for j in i + 1..outs.len() {
            if outs[i].1 == outs[j].1 {
                let segs: Vec<&str> = outs[j].0.split('.').collect();
                return Err(ctx.err(
                    &segs,
                    format!(
                        "`{}` and `{}` both write to {}",
                        outs[i].0, outs[j].0, outs[i].1
                    ),
                    "give every output its own folder",
                ));
            }
        }
    }

    let transform = match &raw.transform {
        Some(t) => Some(Arc::new(super::transform::check(&ctx, t)?)),
        None => None,
    };

    let deidentify = match &raw.deidentify {
        Some(d) => {
            let path = {
                let p = Path::new(&d.config);
                match (p.is_relative(), file.parent()) {
                    (true, Some(dir)) => dir.join(p),
                    _ => p.to_path_buf(),
                }
            };
            match crate::deid::Deidentifier::from_file(&path) {
                Ok(mut x) => {
                    if let Some(t) = &d.text {
                        let env = |k: &str| std::env::var(k).ok();
                        match crate::deid::text::TextDeid::for_run(t, x.parameters(), &env) {
                            Ok(t) => x.text = Some(t),
                            Err(e) => {
                                return Err(ctx.err(
                                    &["deidentify", "text"],
                                    e.to_string(),
                                    "operation is tag, redact or surrogate; format uses {TYPE}; types are NAME, DATE, ...",
                                ))
                            }
                        }
                    }
                    Some((path, Arc::new(x)))
                }
                Err(e) => {
                    return Err(ctx.err(
                        &["deidentify", "config"],
                        e.to_string(),
                        "give a Microsoft anonymizer configuration, e.g. deid/safe-harbor.json (relative to this file)",
                    ))
                }
            }
        }
        None => None,
    };

    Ok(Plan {
        transform,
        deidentify,
        name: p.name.clone(),
        file: file.to_path_buf(),
        threads,
        chunk_size,
        max_line_size,
        source,
        validate_level: match raw.validate.level {
            RawLevel::Basic => ValidateLevel::Basic,
            RawLevel::Structure => ValidateLevel::Structure,
        },
        on_invalid,
        sinks,
        dead_letter,
        storage: raw.storage.clone(),
    })
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "pipeline {:?} ({})", self.name, self.file.display())?;
        writeln!(
            f,
            "  workers: {} threads, {} per work unit, lines up to {}",
            self.threads,
            format_bytes(self.chunk_size as u64),
            format_bytes(self.max_line_size as u64)
        )?;
        match &self.source {
            SourcePlan::Local { paths, .. } => {
                writeln!(f, "  source: local")?;
                for p in paths {
                    writeln!(f, "    - {}", p.display())?;
                }
            }
            SourcePlan::AzureBlob {
                urls,
                concurrency,
                range_size,
                ..
            } => {
                writeln!(
                    f,
                    "  source: azure_blob ({concurrency} ranges of {} at once per blob)",
                    format_bytes(*range_size)
                )?;
                for u in urls {
                    writeln!(f, "    - {u}")?;
                }
            }
            SourcePlan::FhirExport(e) => {
                let q: Vec<String> = e.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                writeln!(
                    f,
                    "  source: fhir_export {}/{}{}{} (auth: {})",
                    e.endpoint.url,
                    e.operation_path,
                    if q.is_empty() { "" } else { "?" },
                    q.join("&"),
                    e.endpoint.auth.method()
                )?;
                if let Some(st) = &e.state {
                    writeln!(
                        f,
                        "    state: {st} (its transactionTime is the next _since)"
                    )?;
                }
            }
            SourcePlan::ExportManifest(m) => {
                writeln!(
                    f,
                    "  source: export_manifest {}{}",
                    m.manifest,
                    m.auth
                        .as_ref()
                        .map(|a| format!(" (auth: {})", a.method()))
                        .unwrap_or_default()
                )?;
            }
        }
        if let Some(t) = self.source.types() {
            let names: Vec<&str> = t.iter().map(|&i| RESOURCE_TYPES[i as usize]).collect();
            writeln!(
                f,
                "    types: {} (others counted as filtered)",
                names.join(", ")
            )?;
        }
        writeln!(
            f,
            "  validate: {}; invalid lines: {}",
            match self.validate_level {
                ValidateLevel::Basic => "basic (JSON object, R4 resourceType, id, meta)",
                ValidateLevel::Structure =>
                    "structure (basic, then the whole resource against the R4 model)",
            },
            match self.on_invalid {
                OnInvalid::DeadLetter => "dead-letter",
                OnInvalid::Fail => "fail the run",
            }
        )?;
        if let Some(t) = &self.transform {
            write!(f, "{t}")?;
        }
        if let Some((p, d)) = &self.deidentify {
            writeln!(
                f,
                "  deidentify: {} rules from {}",
                d.rule_count(),
                p.display()
            )?;
            if let Some(t) = &d.text {
                writeln!(
                    f,
                    "    free text: {} in text.div, Annotation.text and text/plain attachments{}",
                    t.operation().name(),
                    if t.known {
                        "; known PHI from the input's Patient, RelatedPerson, Practitioner and Organization files (first pass)"
                    } else {
                        ""
                    }
                )?;
            }
        }
        for s in &self.sinks {
            match &s.kind {
                SinkKindPlan::Parquet(p) if p.layout == ParquetLayout::Views => writeln!(
                    f,
                    "  sink {}: parquet, SQL on FHIR views → {}/<view>/part-NNNNN.parquet: {}",
                    s.name,
                    p.path,
                    p.views
                        .iter()
                        .map(|(n, v)| format!("{n} ({}, {} columns)", v.resource(), v.columns().len()))
                        .collect::<Vec<_>>()
                        .join(", ")
                )?,
                SinkKindPlan::Parquet(p) => writeln!(
                    f,
                    "  sink {}: parquet → {}/<Type>/{}part-NNNNN.parquet ({}, files up to {}, row groups up to {})",
                    s.name,
                    p.path,
                    match &p.partition_by {
                        PartitionBy::None => String::new(),
                        PartitionBy::Date => "date=YYYY-MM-DD/".into(),
                        PartitionBy::Run(v) if v.is_empty() => "run=<run id>/".into(),
                        PartitionBy::Run(v) => format!("run={v}/"),
                    },
                    match p.compression {
                        Compression::Zstd(l) => format!("zstd({l})"),
                        Compression::Snappy => "snappy".into(),
                        Compression::None => "uncompressed".into(),
                    },
                    format_bytes(p.target_file_size),
                    format_bytes(p.row_group_bytes)
                )?,
                SinkKindPlan::Ndjson(n) => writeln!(
                    f,
                    "  sink {}: ndjson → {}/<Type>.NNNNN.ndjson{} (files up to {})",
                    s.name,
                    n.path,
                    if n.gzip { ".gz" } else { "" },
                    format_bytes(n.target_file_size)
                )?,
                SinkKindPlan::FhirImport(i) => writeln!(
                    f,
                    "  sink {}: fhir_import → {}/$import ({}, staged in {} as files up to {}, auth: {})",
                    s.name,
                    i.endpoint.url,
                    i.mode.as_str(),
                    i.staging,
                    format_bytes(i.chunk_size),
                    i.endpoint.auth.method()
                )?,
            }
        }
        match &self.dead_letter {
            Some(d) => writeln!(f, "  dead letter → {}/dead-letter.NNNNN.ndjson", d.path),
            None => writeln!(
                f,
                "  dead letter: none (the run fails on the first invalid line)"
            ),
        }
    }
}
