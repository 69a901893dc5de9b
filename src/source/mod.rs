//! Sources: where input lines come from. Each source lists its input files, then streams
//! them as [`Chunk`](crate::batch::Chunk)s of complete lines through the shared
//! [`LineSplitter`]. One folder per source kind.

pub mod fhir_export;
pub mod lines;
pub mod local;

pub use lines::LineSplitter;

use std::path::PathBuf;

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
}
