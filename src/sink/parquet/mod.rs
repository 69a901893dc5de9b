//! The `parquet` sink: one dataset per resource type, `<path>/<Type>/part-NNNNN.parquet`, or
//! per Hive partition `<path>/<Type>/<date|run>=<value>/part-NNNNN.parquet` (routing and the
//! open-file bound in [`super::partition`]), with the run's `_manifest.json`
//! ([`super::manifest`]) written last on commit.
//! Per type, an encoder ([`encoder::BatchEncoder`]) fills Arrow builders; batches of a few MB go
//! to a lazily opened `ArrowWriter` that closes row groups at `row_group_size` encoded bytes;
//! files roll when `bytes_written + in_progress_size` reaches `target_file_size` (delta-rs's
//! writer). A memory budget across all types flushes the largest row group first, so memory is
//! set by the budget, not by the number of types or the input size.

mod config;
pub mod encoder;
pub mod resource;
pub mod views;

pub use config::ParquetSinkConfig;

use super::manifest::{schema_fingerprint, FileEntry, Manifest, RunInfo};
use super::partition::{is_partition_dir, Key, PartitionBy, Router};
use super::staging::OutFile;
use super::{Sink, SinkError, SinkStats, Staging};
use crate::batch::Batch;
use crate::config::{Compression, ParquetLayout, ParquetPlan};
use crate::fhir::{resource_type_index, resource_type_name, TypeIdx};
use crate::storage::StorageConfig;
use encoder::{BatchEncoder, RawEncoder};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as PqCompression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Rows are handed from the builders to the writer at this size.
const ENCODE_BATCH_BYTES: usize = 1 << 20;
/// Builders plus open row groups of all types stay under this.
const MEMORY_BUDGET: usize = 64 << 20;

/// An open data file of a dataset (shared by the layouts' writers).
struct Open {
    writer: ArrowWriter<OutFile>,
    path: PathBuf,
    rel: String,
    rows: u64,
}

impl Open {
    /// Closes the file and records it (rows, bytes) for the stats and the manifest.
    fn close(self, stats: &mut SinkStats, entries: &mut Vec<FileEntry>) -> Result<(), SinkError> {
        let Open {
            writer,
            path,
            rel,
            rows,
        } = self;
        let w = writer.into_inner().map_err(encode_err(&path))?;
        let bytes = w.close()?;
        stats.bytes += bytes;
        entries.push(FileEntry::new(rel.clone(), rows, bytes));
        stats.files.push(rel);
        Ok(())
    }
}

/// Commits a Parquet sink's files with its `_manifest.json` written last.
fn commit_datasets(
    staging: &Staging,
    run: &RunInfo,
    partition_by: Option<&'static str>,
    entries: &[FileEntry],
    fingerprints: &BTreeMap<String, String>,
    files: &[String],
    replaces: &dyn Fn(&Path) -> bool,
) -> Result<(), SinkError> {
    let manifest = Manifest::new(run, "parquet", partition_by, entries.to_vec(), fingerprints);
    staging.commit_with_manifest(files, replaces, Some(&manifest.to_bytes()))
}

struct TypeWriter {
    type_idx: TypeIdx,
    encoder: Box<dyn BatchEncoder>,
    open: Option<Open>,
}

impl TypeWriter {
    /// Bytes held for this type: rows in the encoder plus the writer's open row group.
    fn memory(&self) -> usize {
        self.encoder.buffered_bytes() + self.open.as_ref().map_or(0, |o| o.writer.memory_size())
    }
}

/// Writes Parquet datasets.
pub struct ParquetSink {
    plan: ParquetPlan,
    staging: Staging,
    props: WriterProperties,
    /// One writer per (type, partition), at most `max_open_files` open.
    writers: Router<TypeWriter>,
    stats: SinkStats,
    /// Rows per committed file, for the manifest.
    entries: Vec<FileEntry>,
    /// Schema fingerprint per dataset written.
    fingerprints: BTreeMap<String, String>,
    run: RunInfo,
}

fn encode_err(path: &Path) -> impl FnOnce(parquet::errors::ParquetError) -> SinkError + '_ {
    move |e| SinkError::Encode {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

impl ParquetSink {
    /// Creates the staging folder and the writer properties.
    pub fn create(
        plan: &ParquetPlan,
        run_id: &str,
        storage: &StorageConfig,
    ) -> Result<Self, SinkError> {
        let props = writer_props(plan);
        let mut by = plan.partition_by.clone();
        if let PartitionBy::Run(v) = &mut by {
            if v.is_empty() {
                *v = run_id.to_string();
            }
        }
        Ok(ParquetSink {
            staging: Staging::create(&plan.path, run_id, storage)?,
            plan: plan.clone(),
            props,
            writers: Router::new(by, plan.max_open_files),
            stats: SinkStats::new(),
            entries: Vec::new(),
            fingerprints: BTreeMap::new(),
            run: RunInfo {
                run_id: run_id.to_string(),
                ..RunInfo::default()
            },
        })
    }

    /// Names the run (pipeline, start time) in the manifest.
    pub fn with_run(mut self, run: RunInfo) -> Self {
        self.run = run;
        self
    }

    fn buffered(&self) -> usize {
        self.writers.writers().map(TypeWriter::memory).sum()
    }

    /// Hands buffered rows of one writer to its file; closes the row group when asked, and the
    /// file when it reached its target size.
    fn push_rows(&mut self, key: Key, close_row_group: bool) -> Result<(), SinkError> {
        let needs_file = self
            .writers
            .peek(key)
            .is_some_and(|tw| tw.open.is_none() && tw.encoder.rows() > 0);
        if needs_file {
            let rel = format!(
                "{}/part-{:05}.parquet",
                self.writers.dir(key),
                self.writers.next_seq(key)
            );
            let tw = self.writers.peek(key).expect("checked above");
            let f = self.staging.create_file(&rel, 1 << 20)?;
            let path = f.path();
            let name = resource_type_name(tw.type_idx);
            let props = self
                .props
                .clone()
                .into_builder()
                .set_key_value_metadata(Some(
                    [
                        ("fhir.resourceType".to_string(), name.to_string()),
                        (
                            "fhirpipe.layout".to_string(),
                            tw.encoder.layout().to_string(),
                        ),
                    ]
                    .into_iter()
                    .chain(tw.encoder.metadata())
                    .map(|(k, v)| KeyValue::new(k, v))
                    .collect(),
                ))
                .build();
            let schema = tw.encoder.schema();
            self.fingerprints
                .entry(name.to_string())
                .or_insert_with(|| schema_fingerprint(&schema));
            let writer = ArrowWriter::try_new(f, schema, Some(props)).map_err(encode_err(&path))?;
            tw.open = Some(Open {
                writer,
                path,
                rel,
                rows: 0,
            });
        }
        let target = self.plan.target_file_size as usize;
        let Some(tw) = self.writers.peek(key) else {
            return Ok(());
        };
        if tw.encoder.rows() > 0 {
            let open = tw.open.as_mut().expect("opened above");
            let rb = tw.encoder.flush().map_err(|e| SinkError::Encode {
                path: open.path.clone(),
                message: e.to_string(),
            })?;
            open.writer.write(&rb).map_err(encode_err(&open.path))?;
            open.rows += rb.num_rows() as u64;
            drop(rb);
            tw.encoder.reclaim();
        }
        if let Some(open) = tw.open.as_mut() {
            if close_row_group {
                open.writer.flush().map_err(encode_err(&open.path))?;
            }
            if open.writer.bytes_written() + open.writer.in_progress_size() >= target {
                Self::close_file(tw, &mut self.stats, &mut self.entries)?;
            }
        }
        Ok(())
    }

    fn close_file(
        tw: &mut TypeWriter,
        stats: &mut SinkStats,
        entries: &mut Vec<FileEntry>,
    ) -> Result<(), SinkError> {
        match tw.open.take() {
            Some(open) => open.close(stats, entries),
            None => Ok(()),
        }
    }

    /// Writes out and closes the writer of `key` and forgets it (its rows are all in files).
    fn retire(&mut self, key: Key) -> Result<(), SinkError> {
        self.push_rows(key, false)?;
        if let Some(mut tw) = self.writers.remove(key) {
            Self::close_file(&mut tw, &mut self.stats, &mut self.entries)?;
        }
        Ok(())
    }

    /// Is `rel` an earlier run's file that this run's commit replaces? Unpartitioned: every
    /// file of the layout (`<Type>/part-N.parquet`, `<Type>/<k>=<v>/part-N.parquet`).
    /// Partitioned: files in the partition folders this run wrote, and unpartitioned files of
    /// the types it wrote; other partitions are kept (dynamic partition overwrite).
    fn replaces(&self, rel: &Path) -> bool {
        if !is_dataset_file(rel) {
            return false;
        }
        if self.writers.by() == &PartitionBy::None {
            return true;
        }
        let dir = rel.parent().unwrap_or(Path::new(""));
        let written = |d: &Path| {
            self.entries
                .iter()
                .any(|e| Path::new(&e.path).parent() == Some(d))
        };
        if dir.components().count() == 1 {
            written(dir)
                || self
                    .entries
                    .iter()
                    .any(|e| Path::new(&e.path).starts_with(dir))
        } else {
            written(dir)
        }
    }
}

/// The writer properties of a sink's files: codec, row groups bounded in bytes, page
/// statistics (none for the big `resource` JSON column), no dictionaries except for
/// `meta_version_id`.
fn writer_props(plan: &ParquetPlan) -> WriterProperties {
    let compression = match plan.compression {
        Compression::Zstd(l) => PqCompression::ZSTD(ZstdLevel::try_new(l).unwrap_or_default()),
        Compression::Snappy => PqCompression::SNAPPY,
        Compression::None => PqCompression::UNCOMPRESSED,
    };
    WriterProperties::builder()
        .set_compression(compression)
        .set_created_by(format!("fhirpipe {}", env!("CARGO_PKG_VERSION")))
        .set_max_row_group_row_count(None)
        .set_max_row_group_bytes(Some(plan.row_group_bytes as usize))
        .set_dictionary_enabled(false)
        .set_column_dictionary_enabled(ColumnPath::from("meta_version_id"), true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_column_statistics_enabled(ColumnPath::from("resource"), EnabledStatistics::None)
        .set_statistics_truncate_length(Some(64))
        .build()
}

/// The encoder of `layout` for one resource type.
fn new_encoder(layout: ParquetLayout, t: TypeIdx) -> Result<Box<dyn BatchEncoder>, SinkError> {
    Ok(match layout {
        ParquetLayout::Raw => Box::new(RawEncoder::new()),
        // `schema = "views"` is written by `views::ViewsSink`, never through an encoder.
        ParquetLayout::Views => {
            return Err(SinkError::Encode {
                path: PathBuf::from(resource_type_name(t)),
                message: "schema = \"views\" is written by the views sink".into(),
            })
        }
        ParquetLayout::Resource { max_depth } => {
            let schema =
                resource::ResourceSchema::new(resource_type_name(t), max_depth).map_err(|e| {
                    SinkError::Encode {
                        path: PathBuf::from(resource_type_name(t)),
                        message: e.to_string(),
                    }
                })?;
            Box::new(resource::ResourceEncoder::new(std::sync::Arc::new(schema)))
        }
    })
}

/// Is `rel` a file of this sink's layout: `<R4 type>/part-NNNNN.parquet` or
/// `<R4 type>/<date|run>=<value>/part-NNNNN.parquet`?
fn is_dataset_file(rel: &Path) -> bool {
    let parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let dir_ok = match parts.len() {
        2 => resource_type_index(&parts[0]).is_some(),
        3 => is_partition_dir(&Path::new(&parts[0]).join(&parts[1])),
        _ => false,
    };
    dir_ok && is_part_file(&parts[parts.len() - 1])
}

/// Is `name` a data file name of the sink, `part-NNNNN.parquet` (five digits or more)?
fn is_part_file(name: &str) -> bool {
    name.strip_prefix("part-")
        .and_then(|s| s.strip_suffix(".parquet"))
        .is_some_and(|n| n.len() >= 5 && n.bytes().all(|b| b.is_ascii_digit()))
}

impl Sink for ParquetSink {
    fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
        for r in &batch.records {
            let key = self.writers.key(r);
            if self.writers.get(key).is_none() {
                if let Some(old) = self.writers.to_evict_for(key) {
                    self.retire(old)?;
                }
                self.writers.insert(
                    key,
                    TypeWriter {
                        type_idx: r.type_idx,
                        encoder: new_encoder(self.plan.layout, r.type_idx)?,
                        open: None,
                    },
                );
            }
            let tw = self.writers.peek(key).expect("inserted above");
            tw.encoder.append(batch, r);
            self.stats.records[r.type_idx as usize] += 1;
            if tw.encoder.buffered_bytes() >= ENCODE_BATCH_BYTES {
                self.push_rows(key, false)?;
            }
        }
        let mut rounds = 0;
        while self.buffered() > MEMORY_BUDGET && rounds < self.writers.open_count() {
            rounds += 1;
            let largest = self
                .writers
                .keys()
                .into_iter()
                .filter_map(|k| self.writers.peek(k).map(|t| (k, t.memory())))
                .max_by_key(|&(_, b)| b)
                .map(|(k, _)| k);
            match largest {
                Some(k) => self.push_rows(k, true)?,
                None => break,
            }
        }
        Ok(())
    }

    fn types_done(&mut self, types: &[TypeIdx]) -> Result<(), SinkError> {
        for key in self.writers.keys() {
            if types.contains(&key.0) {
                self.retire(key)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<SinkStats, SinkError> {
        for key in self.writers.keys() {
            self.retire(key)?;
        }
        self.stats.files.sort();
        Ok(self.stats.clone())
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        commit_datasets(
            &self.staging,
            &self.run,
            self.writers.by().column(),
            &self.entries,
            &self.fingerprints,
            &self.stats.files,
            &|rel| self.replaces(rel),
        )
    }

    fn abort(&mut self) {
        self.staging.abort();
    }
}
