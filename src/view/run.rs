//! Runs one view over NDJSON input (`fhirpipe view run`): the source module lists and reads
//! the files (folders searched recursively, gzip by magic bytes) as chunks of whole lines;
//! each line is parsed with simd-json into a reused tape, resources of the view's type become
//! rows written chunk by chunk (memory is set by the chunk size, not the input), other types
//! are skipped and counted, and lines that are not a JSON resource are counted and reported
//! with file and line. Every non-blank line is one of: read (the view's type), skipped,
//! invalid; [`ViewRunStats`] holds the counts.

use super::output::{OutputError, RowWriter};
use super::{Cell, View, ViewError};
use crate::batch::{BufPool, Chunk};
use crate::source::{Input, SourceError};
use serde::Serialize;
use simd_json::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

/// A line that is not a JSON resource.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InvalidLine {
    /// The file.
    pub file: String,
    /// 1-based line number.
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// What a view run read and wrote.
#[derive(Debug, Default, Serialize)]
pub struct ViewRunStats {
    /// Non-blank lines read.
    pub lines: u64,
    /// Resources of the view's type.
    pub resources: u64,
    /// Rows written.
    pub rows: u64,
    /// Resources of other types, per type.
    pub skipped: BTreeMap<String, u64>,
    /// Lines that are not a JSON object with a `resourceType` (counted).
    pub invalid: u64,
    /// The first 100 of them.
    pub invalid_lines: Vec<InvalidLine>,
}

/// Why a view run stopped.
#[derive(Debug, thiserror::Error)]
pub enum ViewRunError {
    /// Listing or reading the input.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The view failed on a resource.
    #[error("{file}:{line}: {source}")]
    View {
        /// The file.
        file: String,
        /// The line.
        line: u64,
        /// The cause.
        #[source]
        source: ViewError,
    },
    /// Writing the output.
    #[error(transparent)]
    Output(#[from] OutputError),
}

const CHUNK_SIZE: usize = 4 << 20;
const MAX_LINE: usize = 512 << 20;

impl ViewRunStats {
    fn invalid(&mut self, file: &str, line: u64, reason: String) {
        self.invalid += 1;
        if self.invalid_lines.len() < 100 {
            self.invalid_lines.push(InvalidLine {
                file: file.to_string(),
                line,
                reason,
            });
        }
    }
}

/// Runs `view` over `input`, writing rows to `out`; does not finish `out`.
pub fn run_view(
    view: &View,
    input: &Input,
    out: &mut RowWriter,
) -> Result<ViewRunStats, ViewRunError> {
    let pool = BufPool::new(2, CHUNK_SIZE);
    let bytes = AtomicU64::new(0);
    let mut stats = ViewRunStats::default();
    let mut failed: Option<ViewRunError> = None;
    let mut line_buf: Vec<u8> = Vec::new();
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    input.stream(CHUNK_SIZE, MAX_LINE, &bytes, &pool, &mut |chunk: Chunk| {
        rows.clear();
        match chunk_rows(view, &chunk, &mut stats, &mut line_buf, &mut rows) {
            Ok(()) => {}
            Err(e) => {
                failed = Some(e);
                return false;
            }
        }
        if let Err(e) = out.write(&rows) {
            failed = Some(e.into());
            return false;
        }
        stats.rows += rows.len() as u64;
        if let Some(p) = &chunk.pool {
            p.give(chunk.data);
        }
        true
    })?;
    match failed {
        Some(e) => Err(e),
        None => Ok(stats),
    }
}

fn chunk_rows(
    view: &View,
    chunk: &Chunk,
    stats: &mut ViewRunStats,
    line_buf: &mut Vec<u8>,
    rows: &mut Vec<Vec<Cell>>,
) -> Result<(), ViewRunError> {
    let file = chunk.file.name.as_str();
    for r in &chunk.rejects {
        stats.lines += 1;
        stats.invalid(file, r.line, r.reason.clone());
    }
    let data = &chunk.data;
    let mut line_no = chunk.first_line;
    let mut start = 0;
    while start < data.len() {
        let end = memchr::memchr(b'\n', &data[start..])
            .map(|p| start + p)
            .unwrap_or(data.len());
        let line = &data[start..end];
        let this_line = line_no;
        line_no += 1;
        start = end + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        stats.lines += 1;
        line_buf.clear();
        line_buf.extend_from_slice(line);
        let tape = match simd_json::to_tape(line_buf) {
            Ok(t) => t,
            Err(e) => {
                stats.invalid(file, this_line, format!("not valid JSON: {e}"));
                continue;
            }
        };
        let value = tape.as_value();
        let Some(ty) = value.get("resourceType").and_then(|t| t.into_string()) else {
            stats.invalid(
                file,
                this_line,
                "not a FHIR resource: no resourceType".into(),
            );
            continue;
        };
        if ty != view.resource() {
            match stats.skipped.get_mut(ty) {
                Some(n) => *n += 1,
                None => {
                    stats.skipped.insert(ty.to_string(), 1);
                }
            }
            continue;
        }
        stats.resources += 1;
        view.rows_with_text(value, line, rows)
            .map_err(|source| ViewRunError::View {
                file: file.to_string(),
                line: this_line,
                source,
            })?;
    }
    Ok(())
}
