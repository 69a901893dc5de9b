//! Sinks: where checked records go. Every sink writes under a hidden staging folder inside its
//! output folder (local or blob prefix, see [`staging`]) and makes its files visible only in [`Sink::commit`], which the run calls
//! after all sinks finished and the conservation check passed. A failed run calls
//! [`Sink::abort`] and leaves no visible partial files. Output names are deterministic
//! (`<Type>/part-00000.parquet`, `<Type>.00000.ndjson`), so a re-run replaces its earlier output
//! instead of adding to it. One folder per sink kind.

pub mod dead_letter;
pub mod fhir_import;
pub mod manifest;
pub mod ndjson;
pub mod parquet;
pub mod partition;
mod rolling;
pub mod staging;

pub use rolling::RollingWriter;
pub use staging::Staging;

use crate::batch::Batch;
use crate::fhir::RESOURCE_TYPES;
use std::path::PathBuf;

/// Slots in per-type count arrays: every R4 type, plus one for lines whose type is unknown.
pub const TYPE_SLOTS: usize = RESOURCE_TYPES.len() + 1;
/// The slot for lines whose type is unknown.
pub const UNKNOWN_TYPE_SLOT: usize = RESOURCE_TYPES.len();

/// What a sink reports when it finished.
#[derive(Debug, Clone)]
pub struct SinkStats {
    /// Records written, per type slot.
    pub records: Vec<u64>,
    /// Bytes written (after compression).
    pub bytes: u64,
    /// Files that become visible on commit, relative to the sink's folder.
    pub files: Vec<String>,
}

impl SinkStats {
    pub(crate) fn new() -> Self {
        SinkStats {
            records: vec![0; TYPE_SLOTS],
            bytes: 0,
            files: Vec::new(),
        }
    }
}

/// Why a sink failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// A file operation failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Blob storage refused or failed.
    #[error(transparent)]
    Storage(Box<crate::storage::StorageError>),
    /// `$import` could not be run to completion (kick-off refused, poll failed, bad staging
    /// URL); the message says the fix.
    #[error("{0}")]
    Import(String),
    /// Parquet or Arrow encoding failed.
    #[error("cannot encode Parquet file {path}: {message}")]
    Encode {
        /// The file.
        path: PathBuf,
        /// The encoder's message.
        message: String,
    },
}

impl From<crate::storage::StorageError> for SinkError {
    fn from(e: crate::storage::StorageError) -> Self {
        SinkError::Storage(Box::new(e))
    }
}

impl SinkError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SinkError {
        let path = path.into();
        move |source| SinkError::Io { path, source }
    }
}

/// A destination for batches.
pub trait Sink: Send {
    /// Writes the batch's records (or, for the dead letter, its rejects).
    fn write(&mut self, batch: &Batch) -> Result<(), SinkError>;
    /// No more records of `types` are expected (the run has passed every input file that
    /// may hold them, see `run::complete`): a sink may close their files now, while the
    /// workers are busy with later files, rather than in [`Sink::finish`]. Records of such
    /// a type that still come (a file whose name did not tell its content) go to a new file.
    fn types_done(&mut self, _types: &[crate::fhir::TypeIdx]) -> Result<(), SinkError> {
        Ok(())
    }
    /// Closes every open file; nothing is visible yet.
    fn finish(&mut self) -> Result<SinkStats, SinkError>;
    /// Makes the finished files visible and removes earlier runs' files they replace.
    fn commit(&mut self) -> Result<(), SinkError>;
    /// Removes everything this run staged.
    fn abort(&mut self);
    /// What an import sink's commit did (the `fhir_import` sink; `None` for the others).
    fn import_report(&mut self) -> Option<fhir_import::ImportReport> {
        None
    }
}
