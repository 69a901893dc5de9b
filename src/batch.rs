//! The units of data that flow through a run: a [`Chunk`] of raw lines from a source, and the
//! [`Batch`] a worker makes of it (records routed by type, rejects with reasons, counts).
//! Sinks receive batches behind an `Arc` and read record bytes as slices of `Batch::data`,
//! so a resource is never copied between parsing and encoding.

use crate::fhir::TypeIdx;
use std::ops::Range;
use std::sync::Arc;

/// An input file (or, later, blob or byte range) as reports and dead letters name it.
#[derive(Debug)]
pub struct SourceFile {
    /// Position in the run's input listing.
    pub index: usize,
    /// Display name: the path as given, or the URL.
    pub name: String,
}

/// A run of complete lines from one source file.
#[derive(Debug)]
pub struct Chunk {
    /// Position in the run's chunk sequence; outputs are written in this order.
    pub seq: u64,
    /// Where the lines come from.
    pub file: Arc<SourceFile>,
    /// 1-based line number of the first line in `data`.
    pub first_line: u64,
    /// Complete lines, `\n`-separated (the last may lack its `\n` at end of file).
    pub data: Vec<u8>,
    /// Lines the splitter refused before they reached `data` (longer than `max_line_size`).
    pub rejects: Vec<Reject>,
}

/// A resource that passed the checks; its JSON is `Batch::data[json]`.
#[derive(Debug, Clone)]
pub struct Record {
    /// Resource type.
    pub type_idx: TypeIdx,
    /// 1-based line in the source file.
    pub line: u64,
    /// The resource's JSON text in `Batch::data`.
    pub json: Range<usize>,
    /// `id`, in `Batch::strings`.
    pub id: Range<usize>,
    /// `meta.versionId`, in `Batch::strings`.
    pub version_id: Option<Range<usize>>,
    /// `meta.lastUpdated` in microseconds since the epoch, UTC.
    pub last_updated: Option<i64>,
}

/// A line that failed a check.
#[derive(Debug, Clone)]
pub struct Reject {
    /// 1-based line in the source file.
    pub line: u64,
    /// The original bytes of the line (possibly cut, see `reason`).
    pub text: Vec<u8>,
    /// Why it was rejected, for people.
    pub reason: String,
    /// The R4 type when the line got far enough to name one.
    pub type_idx: Option<TypeIdx>,
}

/// What a worker made of one chunk.
#[derive(Debug)]
pub struct Batch {
    /// The chunk's sequence number.
    pub seq: u64,
    /// The chunk's file.
    pub file: Arc<SourceFile>,
    /// JSON text of the records (the chunk's bytes, or rewritten text after transforms).
    pub data: Vec<u8>,
    /// Small strings extracted from records (ids, version ids).
    pub strings: String,
    /// Records that go to the sinks, in input order.
    pub records: Vec<Record>,
    /// Rejected lines, in input order.
    pub rejects: Vec<Reject>,
    /// Types of the records deliberately dropped (filters), one entry per record.
    pub filtered: Vec<TypeIdx>,
    /// Lines that were empty or whitespace only.
    pub blank_lines: u64,
    /// Bytes of input text this batch covers.
    pub input_bytes: u64,
}

impl Batch {
    /// The JSON text of a record.
    pub fn json(&self, r: &Record) -> &[u8] {
        &self.data[r.json.clone()]
    }

    /// The id of a record.
    pub fn id(&self, r: &Record) -> &str {
        &self.strings[r.id.clone()]
    }

    /// The `meta.versionId` of a record.
    pub fn version_id(&self, r: &Record) -> Option<&str> {
        r.version_id.clone().map(|v| &self.strings[v])
    }
}
