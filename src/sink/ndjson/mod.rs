//! The `ndjson` sink: cleaned resources, one file set per resource type,
//! `<path>/<Type>.NNNNN.ndjson[.gz]`, rolled by size, in input order.

mod config;

pub use config::NdjsonSinkConfig;

use super::staging::is_rolled_name;
use super::{RollingWriter, Sink, SinkError, SinkStats, Staging};
use crate::batch::Batch;
use crate::config::NdjsonPlan;
use crate::fhir::{resource_type_index, resource_type_name, RESOURCE_TYPES};
use crate::storage::StorageConfig;
use std::path::Path;

/// Writes records as NDJSON.
pub struct NdjsonSink {
    plan: NdjsonPlan,
    staging: Staging,
    writers: Vec<Option<RollingWriter>>,
    stats: SinkStats,
}

impl NdjsonSink {
    /// Creates the sink's staging folder.
    pub fn create(
        plan: &NdjsonPlan,
        run_id: &str,
        storage: &StorageConfig,
    ) -> Result<Self, SinkError> {
        Ok(NdjsonSink {
            staging: Staging::create(&plan.path, run_id, storage)?,
            plan: plan.clone(),
            writers: (0..RESOURCE_TYPES.len()).map(|_| None).collect(),
            stats: SinkStats::new(),
        })
    }
}

/// Is `rel` a file this sink writes (`<R4 type>.NNNNN.ndjson[.gz]` at the top level)?
pub(crate) fn is_type_file(rel: &Path) -> bool {
    if rel.components().count() != 1 {
        return false;
    }
    let name = rel.to_string_lossy();
    ["ndjson", "ndjson.gz"]
        .iter()
        .any(|ext| is_rolled_name(&name, ext).is_some_and(|t| resource_type_index(&t).is_some()))
}

impl Sink for NdjsonSink {
    fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
        for r in &batch.records {
            let slot = &mut self.writers[r.type_idx as usize];
            let w = slot.get_or_insert_with(|| {
                RollingWriter::new(
                    resource_type_name(r.type_idx),
                    self.plan.target_file_size,
                    self.plan.gzip,
                )
            });
            w.write_line(&self.staging, batch.json(r))?;
            self.stats.records[r.type_idx as usize] += 1;
        }
        Ok(())
    }

    fn types_done(&mut self, types: &[crate::fhir::TypeIdx]) -> Result<(), SinkError> {
        for &t in types {
            if let Some(w) = self
                .writers
                .get_mut(usize::from(t))
                .and_then(Option::as_mut)
            {
                w.close()?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<SinkStats, SinkError> {
        super::rolling::finish_all(&mut self.writers, &mut self.stats)
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        self.staging.commit(&self.stats.files, &is_type_file)
    }

    fn abort(&mut self) {
        self.staging.abort();
    }
}
