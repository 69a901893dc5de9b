//! `schema = "views"` (issue 4 item 3): the Parquet sink's flat layout, one dataset per SQL on
//! FHIR v2 ViewDefinition, `<path>/<view name>/part-NNNNN.parquet`, plus the run's
//! `_manifest.json`. Each record of a view's resource type is parsed once into a simd-json
//! tape, every view of that type appends its rows ([`crate::view::View::rows`]), and rows go
//! to the view's `ArrowWriter` in record batches of [`ROWS_PER_BATCH`]; files roll at
//! `target_file_size` and row groups close at `row_group_size`, as in the other layouts.
//! Staging, commit and the manifest are the sink's ([`super::super::Staging`]).
//!
//! Conservation: the sink counts every record it was handed as written (it examined it);
//! a resource may give no row (another type, or a `where` that filters it) or several
//! (`forEach`). The rows per view are in the manifest. A view that fails on a resource
//! (a column whose path gives several values without `collection: true`, say) fails the
//! run with the view, file, line and reason; nothing is committed.

use super::super::manifest::{schema_fingerprint, FileEntry, RunInfo};
use super::super::{Sink, SinkError, SinkStats, Staging};
use super::Open;
use crate::batch::Batch;
use crate::config::ParquetPlan;
use crate::fhir::resource_type_index;
use crate::storage::StorageConfig;
use crate::view::{Cell, View};
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Rows handed from a view to its writer at a time.
pub const ROWS_PER_BATCH: usize = 8192;

struct ViewWriter {
    name: String,
    view: Arc<View>,
    schema: SchemaRef,
    rows: Vec<Vec<Cell>>,
    open: Option<Open>,
    seq: u32,
}

/// Writes one dataset per view.
pub struct ViewsSink {
    target_file_size: u64,
    staging: Staging,
    props: WriterProperties,
    views: Vec<ViewWriter>,
    /// Per resource type slot, the views that read it.
    by_type: Vec<Vec<usize>>,
    stats: SinkStats,
    entries: Vec<FileEntry>,
    fingerprints: BTreeMap<String, String>,
    run: RunInfo,
    scratch: Vec<u8>,
}

fn encode_err(path: &Path, message: String) -> SinkError {
    SinkError::Encode {
        path: path.to_path_buf(),
        message,
    }
}

impl ViewsSink {
    /// Creates the staging folder and the writer properties (the Parquet sink's).
    pub fn create(
        plan: &ParquetPlan,
        run_id: &str,
        storage: &StorageConfig,
    ) -> Result<Self, SinkError> {
        let mut by_type = vec![Vec::new(); super::super::TYPE_SLOTS];
        let mut views = Vec::new();
        for (i, (name, view)) in plan.views.iter().enumerate() {
            if let Some(t) = resource_type_index(view.resource()) {
                by_type[usize::from(t)].push(i);
            }
            views.push(ViewWriter {
                name: name.clone(),
                schema: crate::view::output::arrow_schema(view.columns()),
                view: view.clone(),
                rows: Vec::new(),
                open: None,
                seq: 0,
            });
        }
        Ok(ViewsSink {
            target_file_size: plan.target_file_size,
            staging: Staging::create(&plan.path, run_id, storage)?,
            props: super::writer_props(plan),
            views,
            by_type,
            stats: SinkStats::new(),
            entries: Vec::new(),
            fingerprints: BTreeMap::new(),
            run: RunInfo {
                run_id: run_id.to_string(),
                ..RunInfo::default()
            },
            scratch: Vec::new(),
        })
    }

    /// Names the run in the manifest.
    pub fn with_run(mut self, run: RunInfo) -> Self {
        self.run = run;
        self
    }

    /// Writes the buffered rows of view `i`; closes its file at the target size.
    fn push_rows(&mut self, i: usize) -> Result<(), SinkError> {
        let vw = &mut self.views[i];
        if vw.rows.is_empty() {
            return Ok(());
        }
        if vw.open.is_none() {
            let rel = format!("{}/part-{:05}.parquet", vw.name, vw.seq);
            vw.seq += 1;
            let f = self.staging.create_file(&rel, 1 << 20)?;
            let path = f.path();
            let props = self
                .props
                .clone()
                .into_builder()
                .set_key_value_metadata(Some(vec![
                    KeyValue::new("fhir.resourceType".into(), vw.view.resource().to_string()),
                    KeyValue::new("fhirpipe.layout".into(), "views".to_string()),
                    KeyValue::new("fhirpipe.view".into(), vw.name.clone()),
                ]))
                .build();
            self.fingerprints
                .entry(vw.name.clone())
                .or_insert_with(|| schema_fingerprint(&vw.schema));
            let writer = ArrowWriter::try_new(f, vw.schema.clone(), Some(props))
                .map_err(|e| encode_err(&path, e.to_string()))?;
            vw.open = Some(Open {
                writer,
                path,
                rel,
                rows: 0,
            });
        }
        let open = vw.open.as_mut().expect("opened above");
        let rb = crate::view::output::record_batch(vw.view.columns(), &vw.rows)
            .map_err(|e| encode_err(&open.path, e.to_string()))?;
        vw.rows.clear();
        open.writer
            .write(&rb)
            .map_err(|e| encode_err(&open.path, e.to_string()))?;
        open.rows += rb.num_rows() as u64;
        if open.writer.bytes_written() + open.writer.in_progress_size()
            >= self.target_file_size as usize
        {
            if let Some(o) = vw.open.take() {
                o.close(&mut self.stats, &mut self.entries)?;
            }
        }
        Ok(())
    }

    /// Appends the rows of every record of `batch` to its type's views.
    fn write_with(&mut self, batch: &Batch, scratch: &mut Vec<u8>) -> Result<(), SinkError> {
        for r in &batch.records {
            let slot = r.type_idx as usize;
            self.stats.records[slot] += 1;
            if self.by_type[slot].is_empty() {
                continue;
            }
            scratch.clear();
            scratch.extend_from_slice(&batch.data[r.json.clone()]);
            let tape = simd_json::to_tape(scratch).map_err(|e| {
                encode_err(Path::new(&batch.file.name), format!("line {}: {e}", r.line))
            })?;
            let root = tape.as_value();
            // Decimals keep their written precision (the record's text is the original).
            let text = &batch.data[r.json.clone()];
            crate::fhirpath::with_number_literals(root, text, || {
                for k in 0..self.by_type[slot].len() {
                    let i = self.by_type[slot][k];
                    let vw = &mut self.views[i];
                    vw.view.rows(root, &mut vw.rows).map_err(|e| {
                        encode_err(
                            Path::new(&vw.name),
                            format!("{} line {}: {e}", batch.file.name, r.line),
                        )
                    })?;
                    if vw.rows.len() >= ROWS_PER_BATCH {
                        self.push_rows(i)?;
                    }
                }
                Ok::<(), SinkError>(())
            })?;
        }
        Ok(())
    }

    /// Is `rel` an earlier run's file of one of these views (`<view>/part-NNNNN.parquet`)?
    fn replaces(&self, rel: &Path) -> bool {
        let mut parts = rel.iter().map(|c| c.to_string_lossy());
        let (Some(dir), Some(file), None) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        self.views.iter().any(|v| v.name == dir) && super::is_part_file(&file)
    }
}

impl Sink for ViewsSink {
    fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
        // The parse buffer is taken out of `self` while the tape borrows it.
        let mut scratch = std::mem::take(&mut self.scratch);
        let result = self.write_with(batch, &mut scratch);
        self.scratch = scratch;
        result
    }

    fn finish(&mut self) -> Result<SinkStats, SinkError> {
        for i in 0..self.views.len() {
            self.push_rows(i)?;
            if let Some(o) = self.views[i].open.take() {
                o.close(&mut self.stats, &mut self.entries)?;
            }
        }
        self.stats.files.sort();
        Ok(self.stats.clone())
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        super::commit_datasets(
            &self.staging,
            &self.run,
            None,
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
