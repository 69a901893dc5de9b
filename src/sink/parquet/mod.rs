//! The `parquet` sink: one dataset per resource type, `<path>/<Type>/part-NNNNN.parquet`.
//! Per type, an encoder ([`encoder::BatchEncoder`]) fills Arrow builders; batches of a few MB go
//! to a lazily opened `ArrowWriter` that closes row groups at `row_group_size` encoded bytes;
//! files roll when `bytes_written + in_progress_size` reaches `target_file_size` (delta-rs's
//! writer). A memory budget across all types flushes the largest row group first, so memory is
//! set by the budget, not by the number of types or the input size.

mod config;
pub mod encoder;
pub mod resource;

pub use config::ParquetSinkConfig;

use super::staging::OutFile;
use super::{Sink, SinkError, SinkStats, Staging};
use crate::batch::Batch;
use crate::config::{Compression, ParquetLayout, ParquetPlan};
use crate::fhir::{resource_type_index, resource_type_name, TypeIdx, RESOURCE_TYPES};
use crate::storage::StorageConfig;
use encoder::{BatchEncoder, RawEncoder};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as PqCompression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use std::path::{Path, PathBuf};

/// Rows are handed from the builders to the writer at this size.
const ENCODE_BATCH_BYTES: usize = 1 << 20;
/// Builders plus open row groups of all types stay under this.
const MEMORY_BUDGET: usize = 64 << 20;

struct Open {
    writer: ArrowWriter<OutFile>,
    path: PathBuf,
    rel: String,
}

struct TypeWriter {
    type_idx: TypeIdx,
    encoder: Box<dyn BatchEncoder>,
    open: Option<Open>,
    seq: u32,
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
    types: Vec<Option<TypeWriter>>,
    stats: SinkStats,
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
        let compression = match plan.compression {
            Compression::Zstd(l) => PqCompression::ZSTD(ZstdLevel::try_new(l).unwrap_or_default()),
            Compression::Snappy => PqCompression::SNAPPY,
            Compression::None => PqCompression::UNCOMPRESSED,
        };
        let props = WriterProperties::builder()
            .set_compression(compression)
            .set_created_by(format!("fhirpipe {}", env!("CARGO_PKG_VERSION")))
            .set_max_row_group_row_count(None)
            .set_max_row_group_bytes(Some(plan.row_group_bytes as usize))
            .set_dictionary_enabled(false)
            .set_column_dictionary_enabled(ColumnPath::from("meta_version_id"), true)
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_column_statistics_enabled(ColumnPath::from("resource"), EnabledStatistics::None)
            .set_statistics_truncate_length(Some(64))
            .build();
        Ok(ParquetSink {
            staging: Staging::create(&plan.path, run_id, storage)?,
            plan: plan.clone(),
            props,
            types: (0..RESOURCE_TYPES.len()).map(|_| None).collect(),
            stats: SinkStats::new(),
        })
    }

    fn buffered(&self) -> usize {
        self.types.iter().flatten().map(TypeWriter::memory).sum()
    }

    /// Hands buffered rows of one type to its writer; closes the row group when asked, and the
    /// file when it reached its target size.
    fn push_rows(&mut self, idx: usize, close_row_group: bool) -> Result<(), SinkError> {
        let props = self.props.clone();
        let target = self.plan.target_file_size as usize;
        let Some(tw) = self.types[idx].as_mut() else {
            return Ok(());
        };
        if tw.encoder.rows() > 0 {
            if tw.open.is_none() {
                let name = resource_type_name(tw.type_idx);
                let rel = format!("{name}/part-{:05}.parquet", tw.seq);
                let f = self.staging.create_file(&rel, 1 << 20)?;
                let path = f.path();
                let props = props
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
                let writer = ArrowWriter::try_new(f, tw.encoder.schema(), Some(props))
                    .map_err(encode_err(&path))?;
                tw.open = Some(Open { writer, path, rel });
            }
            let open = tw.open.as_mut().expect("opened above");
            let rb = tw.encoder.flush().map_err(|e| SinkError::Encode {
                path: open.path.clone(),
                message: e.to_string(),
            })?;
            open.writer.write(&rb).map_err(encode_err(&open.path))?;
            drop(rb);
            tw.encoder.reclaim();
        }
        if let Some(open) = tw.open.as_mut() {
            if close_row_group {
                open.writer.flush().map_err(encode_err(&open.path))?;
            }
            if open.writer.bytes_written() + open.writer.in_progress_size() >= target {
                Self::close_file(tw, &mut self.stats)?;
            }
        }
        Ok(())
    }

    fn close_file(tw: &mut TypeWriter, stats: &mut SinkStats) -> Result<(), SinkError> {
        if let Some(open) = tw.open.take() {
            let Open { writer, path, rel } = open;
            let w = writer.into_inner().map_err(encode_err(&path))?;
            stats.bytes += w.close()?;
            stats.files.push(rel);
            tw.seq += 1;
        }
        Ok(())
    }
}

/// The encoder of `layout` for one resource type.
fn new_encoder(layout: ParquetLayout, t: TypeIdx) -> Result<Box<dyn BatchEncoder>, SinkError> {
    Ok(match layout {
        ParquetLayout::Raw => Box::new(RawEncoder::new()),
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

/// Is `rel` a file this sink writes (`<R4 type>/part-NNNNN.parquet`)?
fn is_dataset_file(rel: &Path) -> bool {
    let parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    parts.len() == 2
        && resource_type_index(&parts[0]).is_some()
        && parts[1]
            .strip_prefix("part-")
            .and_then(|s| s.strip_suffix(".parquet"))
            .is_some_and(|n| n.len() >= 5 && n.bytes().all(|b| b.is_ascii_digit()))
}

impl Sink for ParquetSink {
    fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
        for r in &batch.records {
            let idx = r.type_idx as usize;
            if self.types[idx].is_none() {
                self.types[idx] = Some(TypeWriter {
                    type_idx: r.type_idx,
                    encoder: new_encoder(self.plan.layout, r.type_idx)?,
                    open: None,
                    seq: 0,
                });
            }
            let tw = self.types[idx].as_mut().expect("set above");
            tw.encoder.append(batch, r);
            self.stats.records[idx] += 1;
            if tw.encoder.buffered_bytes() >= ENCODE_BATCH_BYTES {
                self.push_rows(idx, false)?;
            }
        }
        let mut rounds = 0;
        while self.buffered() > MEMORY_BUDGET && rounds < RESOURCE_TYPES.len() {
            rounds += 1;
            let largest = self
                .types
                .iter()
                .enumerate()
                .filter_map(|(i, t)| t.as_ref().map(|t| (i, t.memory())))
                .max_by_key(|&(_, b)| b)
                .map(|(i, _)| i);
            match largest {
                Some(i) => self.push_rows(i, true)?,
                None => break,
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<SinkStats, SinkError> {
        for idx in 0..self.types.len() {
            self.push_rows(idx, false)?;
            if let Some(tw) = self.types[idx].as_mut() {
                Self::close_file(tw, &mut self.stats)?;
            }
        }
        self.stats.files.sort();
        Ok(self.stats.clone())
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        self.staging.commit(&self.stats.files, &is_dataset_file)
    }

    fn abort(&mut self) {
        self.staging.abort();
    }
}
