//! Sources: where input lines come from. Each source lists its input files, then streams
//! them as [`Chunk`](crate::batch::Chunk)s of complete lines through the shared
//! [`LineSplitter`] ([`ChunkOut`] turns any `Read` of a file into chunks, gzip recognised by
//! its magic bytes). One folder per source kind; [`Input`] is the listed input of any kind.

pub mod azure_blob;
pub mod export_manifest;
pub mod fhir_export;
pub mod lines;
pub mod local;

pub use lines::LineSplitter;

use crate::batch::{BufPool, Chunk, SourceFile};
use crate::storage::StorageError;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Why a source could not list or read its input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// A configured path does not exist.
    #[error("input path {path} does not exist: check source.path (relative paths are taken from the current directory)")]
    NotFound {
        /// The path as configured.
        path: PathBuf,
    },
    /// The listing found nothing to read.
    #[error("no *.ndjson or *.ndjson.gz files found under {paths}: point source.path at a folder of NDJSON files")]
    Empty {
        /// The configured paths, joined.
        paths: String,
    },
    /// Reading failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Listing or reading blob storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A FHIR call (`$export` kick-off, status, a file download) failed.
    #[error(transparent)]
    Fhir(#[from] crate::fhirclient::FhirError),
    /// The completion manifest is unusable.
    #[error("export manifest {location}: {message}")]
    Manifest {
        /// Where it came from.
        location: String,
        /// What is wrong.
        message: String,
    },
    /// The `fhir_export` state file could not be read or written.
    #[error("state file {path}: {message}")]
    State {
        /// Its location.
        path: String,
        /// What is wrong, with the fix.
        message: String,
    },
    /// The export did not complete in time.
    #[error("{0}")]
    Export(String),
}

/// The resource type a file name stands for in bulk-export naming (`Patient.ndjson`,
/// `Patient-1.ndjson`, `Patient.000.ndjson.gz`, `…/Patient_2.ndjson`): its base name's
/// leading letters.
pub fn type_of_file_name(name: &str) -> &str {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let end = base
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(base.len());
    &base[..end]
}

/// The listed input of a run's source.
#[derive(Debug)]
pub enum Input {
    /// Local files.
    Local(local::LocalSource),
    /// Blobs.
    Blob(azure_blob::BlobSource),
    /// The files of a Bulk Data completion manifest (`export_manifest`, `fhir_export`).
    Manifest(Box<export_manifest::ManifestSource>),
}

impl Input {
    /// Number of listed files.
    pub fn file_count(&self) -> usize {
        match self {
            Input::Local(s) => s.files().len(),
            Input::Blob(s) => s.files().len(),
            Input::Manifest(s) => s.file_count(),
        }
    }

    /// The resource type each listed file is expected to hold, by listing index: the
    /// manifest's `type`, else the type its name stands for in bulk-export naming
    /// (`Observation-1.ndjson.gz`); `None` when the name names no resource type. A hint, not
    /// a promise: the lines decide each record's type.
    pub fn file_types(&self) -> Vec<Option<crate::fhir::TypeIdx>> {
        let by_name = |f: &SourceFile| crate::fhir::resource_type_index(type_of_file_name(&f.name));
        let listed: Vec<(usize, Option<crate::fhir::TypeIdx>)> = match self {
            Input::Local(s) => s
                .files()
                .iter()
                .map(|f| (f.file.index, by_name(&f.file)))
                .collect(),
            Input::Blob(s) => s
                .files()
                .iter()
                .map(|f| (f.file.index, by_name(&f.file)))
                .collect(),
            Input::Manifest(s) => s.file_types(),
        };
        let mut out = vec![None; listed.iter().map(|(i, _)| i + 1).max().unwrap_or(0)];
        for (i, t) in listed {
            out[i] = t;
        }
        out
    }

    /// Total bytes stored (compressed size for gzip).
    pub fn total_bytes(&self) -> u64 {
        match self {
            Input::Local(s) => s.total_bytes(),
            Input::Blob(s) => s.total_bytes(),
            Input::Manifest(s) => s.total_bytes(),
        }
    }

    /// Streams every file as chunks, in listing order. `send` returns `false` to stop early
    /// (the run failed elsewhere). `bytes_read` counts bytes taken from the input; chunk
    /// buffers come from `pool`.
    pub fn stream(
        &self,
        chunk_size: usize,
        max_line_size: usize,
        bytes_read: &AtomicU64,
        pool: &BufPool,
        send: &mut dyn FnMut(Chunk) -> bool,
    ) -> Result<(), SourceError> {
        self.stream_selected(
            &|_, _| true,
            chunk_size,
            max_line_size,
            bytes_read,
            pool,
            send,
        )
    }

    /// Like [`Input::stream`], for only the files `select` accepts (given the file and, when
    /// the source knows it, the resource type of its lines: a manifest's `type`). Used by
    /// first passes that need a few resource types only (the free-text known-PHI index).
    pub fn stream_selected(
        &self,
        select: FileSelect<'_>,
        chunk_size: usize,
        max_line_size: usize,
        bytes_read: &AtomicU64,
        pool: &BufPool,
        send: &mut dyn FnMut(Chunk) -> bool,
    ) -> Result<(), SourceError> {
        let mut out = ChunkOut::new(chunk_size, max_line_size, pool, send);
        out.select = Some(select);
        let out = &mut out;
        match self {
            Input::Local(s) => s.stream_into(out, bytes_read),
            Input::Blob(s) => s.stream_into(out, bytes_read),
            Input::Manifest(s) => s.stream_into(out, bytes_read),
        }
    }
}

/// Which files a pass reads: given the file and, when the source knows it, its resource type.
pub type FileSelect<'a> = &'a dyn Fn(&SourceFile, Option<&str>) -> bool;

/// Turns files, one after the other, into numbered chunks of whole lines.
pub(crate) struct ChunkOut<'a> {
    chunk_size: usize,
    max_line_size: usize,
    pool: &'a BufPool,
    send: &'a mut dyn FnMut(Chunk) -> bool,
    seq: u64,
    block: Vec<u8>,
    /// Which files are read (all when `None`).
    select: Option<FileSelect<'a>>,
}

impl<'a> ChunkOut<'a> {
    pub(crate) fn new(
        chunk_size: usize,
        max_line_size: usize,
        pool: &'a BufPool,
        send: &'a mut dyn FnMut(Chunk) -> bool,
    ) -> Self {
        ChunkOut {
            chunk_size,
            max_line_size,
            pool,
            send,
            seq: 0,
            block: vec![0u8; 1 << 20],
            select: None,
        }
    }

    /// Whether `file` (of resource type `type_name` when known) is to be read.
    pub(crate) fn wants(&self, file: &SourceFile, type_name: Option<&str>) -> bool {
        self.select.is_none_or(|s| s(file, type_name))
    }

    /// Reads `raw` (plain or gzip) to its end as chunks of `file`. Returns `Ok(false)` when
    /// `send` asked to stop.
    pub(crate) fn file(
        &mut self,
        file: &Arc<SourceFile>,
        mut raw: impl Read,
        bytes_read: &AtomicU64,
    ) -> std::io::Result<bool> {
        let mut magic = [0u8; 2];
        let n = read_full(&mut raw, &mut magic)?;
        // The magic bytes are counted when they are read again from the cursor.
        let counted = Counting {
            inner: std::io::Cursor::new(magic[..n].to_vec()).chain(raw),
            count: bytes_read,
        };
        let mut reader: Box<dyn Read> = if n == 2 && magic == [0x1f, 0x8b] {
            Box::new(flate2::read::MultiGzDecoder::new(counted))
        } else {
            Box::new(counted)
        };
        let pool = self.pool;
        let mut splitter = LineSplitter::new(self.chunk_size, self.max_line_size, pool.clone());
        let stopped = std::cell::Cell::new(false);
        let seq = &mut self.seq;
        let send = &mut *self.send;
        let mut emit = |l: lines::Lines| {
            if stopped.get() {
                return;
            }
            let chunk = Chunk {
                seq: *seq,
                file: file.clone(),
                first_line: l.first_line,
                data: l.data,
                rejects: l.rejects,
                pool: Some(pool.clone()),
            };
            *seq += 1;
            stopped.set(!send(chunk));
        };
        loop {
            let n = match reader.read(&mut self.block) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            splitter.push(&self.block[..n], &mut emit);
            if stopped.get() {
                return Ok(false);
            }
        }
        splitter.finish(&mut emit);
        Ok(!stopped.get())
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Counts bytes taken from the raw file.
struct Counting<'a, R> {
    inner: R,
    count: &'a AtomicU64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
