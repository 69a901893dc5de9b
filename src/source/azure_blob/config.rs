//! Configuration of the `azure_blob` source.

use crate::config::raw::ByteSize;
use serde::Deserialize;

/// `[source] kind = "azure_blob"`: NDJSON blobs under a prefix (credentials in `[storage]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureBlobSourceConfig {
    /// A blob or a prefix: `az://container/prefix`,
    /// `abfss://container@account.dfs.core.windows.net/prefix` or
    /// `https://account.blob.core.windows.net/container/prefix`. Prefixes are listed for
    /// `*.ndjson` and `*.ndjson.gz` (sorted; names with a segment starting with `.` skipped).
    pub url: Option<String>,
    /// Several blobs or prefixes (instead of `url`).
    pub urls: Option<Vec<String>>,
    /// Keep only these resource types; the others are counted as filtered.
    pub types: Option<Vec<String>>,
    /// Range requests in flight per blob (default 4).
    pub concurrency: Option<usize>,
    /// Bytes per range request (default "8MiB"); memory for downloads is at most
    /// `2 × range_size × concurrency` (the next blob starts while one is read).
    pub range_size: Option<ByteSize>,
}
