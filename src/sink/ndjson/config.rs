//! Configuration of the `ndjson` sink.

use crate::config::raw::ByteSize;
use serde::Deserialize;

/// `[sinks.<name>] kind = "ndjson"`: cleaned resources, `<path>/<Type>.NNNNN.ndjson[.gz]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NdjsonSinkConfig {
    /// Output folder.
    pub path: String,
    /// Roll to a new file when one reaches this many (uncompressed) bytes (default "256MB").
    pub target_file_size: Option<ByteSize>,
    /// Write gzip-compressed files (`.ndjson.gz`).
    #[serde(default)]
    pub gzip: bool,
}
