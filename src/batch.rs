//! The units of data that flow through a run: a [`Chunk`] of raw lines from a source, and the
//! [`Batch`] a worker makes of it (records routed by type, rejects with reasons, counts).
//! Sinks receive batches behind an `Arc` and read record bytes as slices of `Batch::data`,
//! so a resource is never copied between parsing and encoding.

use crate::fhir::validate::OperationOutcome;
use crate::fhir::TypeIdx;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::ops::Range;
use std::sync::Arc;

/// Recycles the multi-megabyte byte buffers that chunks travel in. The splitter takes one
/// per chunk and a [`Batch`] gives its buffer back when the last sink drops it, so a run
/// allocates a fixed set of chunk buffers instead of one (or, with regrowth, several) per
/// chunk. Churning such buffers fragmented glibc's heap enough that peak RSS grew with input
/// size (docs/benchmarks.md).
#[derive(Debug, Clone)]
pub struct BufPool {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
    capacity: usize,
}

impl BufPool {
    /// A pool keeping up to `buffers` buffers of `capacity` bytes.
    pub fn new(buffers: usize, capacity: usize) -> Self {
        let (tx, rx) = bounded(buffers.max(1));
        BufPool { tx, rx, capacity }
    }

    /// An empty buffer with at least the pool's capacity: a recycled one when there is one.
    pub fn take(&self) -> Vec<u8> {
        self.rx
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(self.capacity))
    }

    /// Returns a buffer. Buffers much larger than usual (a single huge line grew them) are
    /// freed instead, so the pool never pins more than `buffers × 2 × capacity` bytes.
    pub fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() >= self.capacity && buf.capacity() <= self.capacity.saturating_mul(2) {
            buf.clear();
            let _ = self.tx.try_send(buf);
        }
    }
}

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
    /// Where `data` goes back when the batch made of this chunk is dropped.
    pub pool: Option<BufPool>,
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
    /// Index of the Bundle entry it came from (`[transform] unbundle`); `None` for a line.
    pub entry: Option<u32>,
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
    /// The structure validation issues (level `structure`), written into the dead letter.
    pub outcome: Option<Box<OperationOutcome>>,
    /// Index of the Bundle entry it came from (`[transform] unbundle`); `None` for a line.
    pub entry: Option<u32>,
}

/// Why a resource was deliberately dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterReason {
    /// Its type is not in `source.types` or `transform.types`.
    Type,
    /// A `[transform.where]` expression was not true for it.
    Where,
    /// `[transform] dedupe`: a newer resource of the same type and id won.
    Duplicate,
}

/// A resource dropped on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filtered {
    /// Its type.
    pub type_idx: TypeIdx,
    /// Why.
    pub reason: FilterReason,
    /// It came from a Bundle entry rather than a line.
    pub from_entry: bool,
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
    /// Resources deliberately dropped (filters), one entry per resource.
    pub filtered: Vec<Filtered>,
    /// Bundle lines whose entries became resources (`[transform] unbundle`); each is counted
    /// as read and as consumed, its entries as unbundled.
    pub bundles_consumed: u64,
    /// Non-blank lines this batch covers (records, rejects and filtered resources from lines,
    /// plus consumed Bundles): the independent count the run checks `read` against.
    pub lines: u64,
    /// Lines that were empty or whitespace only.
    pub blank_lines: u64,
    /// Bytes of input text this batch covers.
    pub input_bytes: u64,
    /// Where `data` goes back when the batch is dropped.
    pub pool: Option<BufPool>,
    /// Free-text PHI counts of `[deidentify.text]` over this batch's records.
    pub text: crate::phi::carriers::CarrierStats,
}

impl Chunk {
    /// A chunk of `data` from a file named `t.ndjson`, first line `first_line` (tests).
    #[cfg(test)]
    pub(crate) fn for_test(data: Vec<u8>, first_line: u64) -> Chunk {
        Chunk {
            pool: None,
            seq: 0,
            file: Arc::new(SourceFile {
                index: 0,
                name: "t.ndjson".into(),
            }),
            first_line,
            data,
            rejects: Vec::new(),
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(pool) = &self.pool {
            pool.give(std::mem::take(&mut self.data));
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_recycles_buffers_of_its_size_and_frees_grown_ones() {
        let pool = BufPool::new(2, 1024);
        let mut a = pool.take();
        assert!(a.capacity() >= 1024);
        a.extend_from_slice(b"data");
        let ptr = a.as_ptr();
        pool.give(a);
        let b = pool.take();
        assert_eq!((b.as_ptr(), b.len()), (ptr, 0));
        // A buffer grown far past the pool's size (a huge line) is not kept.
        pool.give(Vec::with_capacity(1 << 20));
        assert!(pool.take().capacity() < 1 << 20);
    }
}
