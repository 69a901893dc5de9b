//! Configuration of the `local` source.

use serde::Deserialize;

/// `[source] kind = "local"`: files and folders on local disk.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalSourceConfig {
    /// One file or folder. Folders are searched recursively for `*.ndjson` and `*.ndjson.gz`.
    pub path: Option<String>,
    /// Several files or folders (instead of `path`).
    pub paths: Option<Vec<String>>,
    /// Keep only these resource types; the others are counted as filtered.
    pub types: Option<Vec<String>>,
}
