//! The dead-letter output: one NDJSON line per rejected input line, in input order, with the
//! source file, the line number, the reason, the resource type when known, and the original
//! text (`text`, or `text_base64` when the line is not valid UTF-8), and for lines that failed
//! `structure` validation their OperationOutcome (`outcome`). A rejected Bundle entry
//! (`[transform] unbundle`) has the Bundle's file and line and its index as `entry`, and its
//! text is the entry's.
//! Files: `<path>/dead-letter.NNNNN.ndjson`, committed like every other sink.

mod config;

pub use config::DeadLetterConfig;

use super::staging::is_rolled_name;
use super::{RollingWriter, Sink, SinkError, SinkStats, Staging, UNKNOWN_TYPE_SLOT};
use crate::batch::{Batch, Reject};
use crate::config::DeadLetterPlan;
use crate::fhir::resource_type_name;
use crate::fhir::validate::OperationOutcome;
use crate::storage::StorageConfig;
use base64::Engine as _;
use serde::Serialize;
use std::path::Path;

/// One dead-letter line.
#[derive(Serialize)]
struct Entry<'a> {
    file: &'a str,
    line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    entry: Option<u32>,
    reason: &'a str,
    #[serde(rename = "resourceType", skip_serializing_if = "Option::is_none")]
    resource_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'a OperationOutcome>,
}

/// Appends the dead-letter JSON line (without newline) of reject `r` from `file` to `out`.
/// `fhirpipe validate --dead-letter` writes the same lines.
pub fn write_entry(out: &mut Vec<u8>, file: &str, r: &Reject) -> Result<(), serde_json::Error> {
    let (text, text_base64) = match std::str::from_utf8(&r.text) {
        Ok(t) => (Some(t), None),
        Err(_) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(&r.text)),
        ),
    };
    let entry = Entry {
        file,
        line: r.line,
        entry: r.entry,
        reason: &r.reason,
        resource_type: r.type_idx.map(resource_type_name),
        text,
        text_base64,
        outcome: r.outcome.as_deref(),
    };
    serde_json::to_writer(out, &entry)
}

/// Writes rejected lines.
pub struct DeadLetterSink {
    staging: Staging,
    writer: RollingWriter,
    stats: SinkStats,
    line: Vec<u8>,
}

impl DeadLetterSink {
    /// Creates the staging folder.
    pub fn create(
        plan: &DeadLetterPlan,
        run_id: &str,
        storage: &StorageConfig,
    ) -> Result<Self, SinkError> {
        Ok(DeadLetterSink {
            staging: Staging::create(&plan.path, run_id, storage)?,
            writer: RollingWriter::new("dead-letter", plan.target_file_size, false),
            stats: SinkStats::new(),
            line: Vec::new(),
        })
    }
}

fn is_dead_letter_file(rel: &Path) -> bool {
    rel.components().count() == 1
        && is_rolled_name(&rel.to_string_lossy(), "ndjson").is_some_and(|p| p == "dead-letter")
}

impl Sink for DeadLetterSink {
    fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
        for r in &batch.rejects {
            self.line.clear();
            write_entry(&mut self.line, &batch.file.name, r).map_err(|e| SinkError::Io {
                path: self.staging.root().to_path_buf(),
                source: e.into(),
            })?;
            self.writer.write_line(&self.staging, &self.line)?;
            let slot = r.type_idx.map(usize::from).unwrap_or(UNKNOWN_TYPE_SLOT);
            self.stats.records[slot] += 1;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<SinkStats, SinkError> {
        self.writer.close()?;
        self.stats.files = self.writer.files.clone();
        self.stats.bytes = self.writer.bytes_on_disk;
        Ok(self.stats.clone())
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        self.staging.commit(&self.stats.files, &is_dead_letter_file)
    }

    fn abort(&mut self) {
        self.staging.abort();
    }
}
