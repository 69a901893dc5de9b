//! The lossless typed layout (`schema = "resource"`): a fixed Arrow schema per resource type
//! derived from the R4 model ([`schema`]), the encoder that fills it from each resource's
//! original JSON bytes ([`encode`]), and the way back to NDJSON ([`decode`],
//! `fhirpipe parquet to-ndjson`), whose fidelity [`compare::json_diff`] measures.

pub mod compare;
pub mod decode;
pub mod encode;
pub mod schema;
mod values;

#[cfg(test)]
mod tests;

use super::encoder::BatchEncoder;
use crate::batch::{Batch, Record};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
pub use decode::{write_ndjson, DecodeError};
pub use encode::ResourceEncoder;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
pub use schema::{ResourceSchema, SchemaError, DEFAULT_MAX_DEPTH, LAYOUT};
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Key-value metadata keys written by this layout.
pub const META_FINGERPRINT: &str = "fhirpipe.schema_fingerprint";
/// `max_depth` the schema was built with.
pub const META_MAX_DEPTH: &str = "fhirpipe.max_depth";
/// The model the schema was derived from.
pub const META_MODEL: &str = "fhirpipe.model";

impl BatchEncoder for ResourceEncoder {
    fn schema(&self) -> SchemaRef {
        self.resource_schema().arrow.clone()
    }

    fn append(&mut self, batch: &Batch, record: &Record) {
        self.append_json(batch.json(record));
    }

    fn rows(&self) -> usize {
        ResourceEncoder::rows(self)
    }

    fn buffered_bytes(&self) -> usize {
        ResourceEncoder::buffered_bytes(self)
    }

    fn flush(&mut self) -> Result<RecordBatch, ArrowError> {
        self.finish()
    }

    fn layout(&self) -> &'static str {
        LAYOUT
    }

    fn metadata(&self) -> Vec<(String, String)> {
        let s = self.resource_schema();
        vec![
            (META_FINGERPRINT.into(), s.fingerprint.clone()),
            (META_MAX_DEPTH.into(), s.max_depth.to_string()),
            (META_MODEL.into(), model_version()),
        ]
    }
}

/// The model's identity: its header line and the FNV hash of its text.
pub fn model_version() -> String {
    let text = crate::fhir::model::R4_MODEL;
    let header = text.lines().next().unwrap_or_default();
    let h = schema::fnv1a(text.as_bytes());
    format!("FHIR R4 4.0.1 ({header}, {h:016x})")
}

/// Why a dataset cannot be turned back into NDJSON.
#[derive(Debug, thiserror::Error)]
pub enum ToNdjsonError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A Parquet file could not be read.
    #[error("{path}: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The reader's message.
        message: String,
    },
    /// A file of another layout, or of a schema this build does not have.
    #[error("{path}: {message}")]
    Layout {
        /// The file.
        path: PathBuf,
        /// What does not match.
        message: String,
    },
    /// The folder holds no `<Type>/*.parquet`.
    #[error("{0}: no <Type>/part-*.parquet files found")]
    Empty(PathBuf),
    /// A row could not be rebuilt.
    #[error("{path}: {source}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The error.
        source: DecodeError,
    },
}

/// The Parquet files of a dataset folder, by resource type (both sorted).
fn dataset_files(dir: &Path) -> Result<Vec<(String, Vec<PathBuf>)>, ToNdjsonError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ToNdjsonError::Io { path, source }
    };
    let mut out = Vec::new();
    let mut types: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io(dir))?;
    types.sort_by_key(|e| e.file_name());
    for t in types {
        let name = t.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !t.path().is_dir() {
            continue;
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(t.path())
            .map_err(io(&t.path()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
            .collect();
        files.sort();
        if !files.is_empty() {
            out.push((name, files));
        }
    }
    if out.is_empty() {
        return Err(ToNdjsonError::Empty(dir.to_path_buf()));
    }
    Ok(out)
}

/// Rebuilds NDJSON from a `resource`-layout dataset folder (`<dir>/<Type>/part-*.parquet`):
/// into `<out>/<Type>.ndjson` when `out_dir` is given, else to `stdout`. Returns the resources
/// written per type.
pub fn dataset_to_ndjson(
    dir: &Path,
    out_dir: Option<&Path>,
    stdout: &mut dyn Write,
) -> Result<Vec<(String, u64)>, ToNdjsonError> {
    let mut counts = Vec::new();
    let mut schemas: HashMap<(String, u32), Arc<ResourceSchema>> = HashMap::new();
    if let Some(o) = out_dir {
        std::fs::create_dir_all(o).map_err(|source| ToNdjsonError::Io {
            path: o.to_path_buf(),
            source,
        })?;
    }
    for (type_name, files) in dataset_files(dir)? {
        let mut file_out: Option<(PathBuf, std::io::BufWriter<File>)> = match out_dir {
            Some(o) => {
                let p = o.join(format!("{type_name}.ndjson"));
                let f = File::create(&p).map_err(|source| ToNdjsonError::Io {
                    path: p.clone(),
                    source,
                })?;
                Some((p, std::io::BufWriter::with_capacity(1 << 20, f)))
            }
            None => None,
        };
        let mut n = 0u64;
        let mut buf = Vec::new();
        for path in files {
            let layout = |message: String| ToNdjsonError::Layout {
                path: path.clone(),
                message,
            };
            let pq = |e: parquet::errors::ParquetError| ToNdjsonError::Parquet {
                path: path.clone(),
                message: e.to_string(),
            };
            let f = File::open(&path).map_err(|source| ToNdjsonError::Io {
                path: path.clone(),
                source,
            })?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(f).map_err(pq)?;
            let kv: HashMap<String, String> = builder
                .metadata()
                .file_metadata()
                .key_value_metadata()
                .map(|kv| {
                    kv.iter()
                        .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
                        .collect()
                })
                .unwrap_or_default();
            match kv.get("fhirpipe.layout").map(String::as_str) {
                Some(LAYOUT) => {}
                Some(other) => {
                    return Err(layout(format!(
                        "written with layout `{other}`; to-ndjson reads `{LAYOUT}` (schema = \"resource\")"
                    )))
                }
                None => return Err(layout("not written by fhirpipe (no fhirpipe.layout)".into())),
            }
            let depth: u32 = kv
                .get(META_MAX_DEPTH)
                .and_then(|d| d.parse().ok())
                .ok_or_else(|| layout(format!("no {META_MAX_DEPTH} in the metadata")))?;
            let file_type = kv.get("fhir.resourceType").cloned().unwrap_or_default();
            if file_type != type_name {
                return Err(layout(format!(
                    "holds {file_type} resources but is in the folder {type_name}"
                )));
            }
            let schema = match schemas.get(&(type_name.clone(), depth)) {
                Some(s) => s.clone(),
                None => {
                    let s = Arc::new(
                        ResourceSchema::new(&type_name, depth)
                            .map_err(|e| layout(e.to_string()))?,
                    );
                    schemas.insert((type_name.clone(), depth), s.clone());
                    s
                }
            };
            if kv.get(META_FINGERPRINT) != Some(&schema.fingerprint) {
                return Err(layout(format!(
                    "schema fingerprint {} differs from this build's {} (written by another fhirpipe version)",
                    kv.get(META_FINGERPRINT).map_or("(none)", String::as_str),
                    schema.fingerprint
                )));
            }
            for batch in builder.with_batch_size(1024).build().map_err(pq)? {
                let batch = batch.map_err(|e| ToNdjsonError::Parquet {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                buf.clear();
                write_ndjson(&schema, &batch, &mut buf).map_err(|source| {
                    ToNdjsonError::Decode {
                        path: path.clone(),
                        source,
                    }
                })?;
                n += batch.num_rows() as u64;
                let (p, w): (&Path, &mut dyn Write) = match file_out.as_mut() {
                    Some((p, w)) => (p, w),
                    None => (Path::new("<stdout>"), stdout),
                };
                w.write_all(&buf).map_err(|source| ToNdjsonError::Io {
                    path: p.to_path_buf(),
                    source,
                })?;
            }
        }
        if let Some((p, mut w)) = file_out {
            w.flush()
                .map_err(|source| ToNdjsonError::Io { path: p, source })?;
        }
        counts.push((type_name, n));
    }
    Ok(counts)
}
