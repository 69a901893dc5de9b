//! Configuration of the dead-letter output.

use crate::config::raw::ByteSize;
use serde::Deserialize;

/// `[dead_letter]`: one NDJSON line per rejected input line, in `<path>/dead-letter.NNNNN.ndjson`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// Output folder.
    pub path: String,
    /// Roll to a new file at this size (default "256MB").
    pub target_file_size: Option<ByteSize>,
}
