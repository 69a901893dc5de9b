//! The `azure_blob` source: NDJSON blobs in Azure Blob Storage / ADLS Gen2. A URL naming a
//! blob is read whatever its name; a prefix is listed (sorted by name, so runs are
//! deterministic) for `*.ndjson` and `*.ndjson.gz`, skipping names with a segment that starts
//! with `.` (the sinks' staging). Each blob is downloaded as consecutive ranges, up to
//! `concurrency` at once ([`RangeReader`]; the next blob's first ranges start while one is
//! read, so download memory is at most `2 × concurrency × range_size`), and fed in order to
//! the same line splitter as local files, so lines that cross range cuts stay whole and line numbers in dead letters
//! are exact. gzip (by magic bytes) is decompressed as the ranges arrive.

mod config;

pub use config::AzureBlobSourceConfig;

use super::{ChunkOut, SourceError};
use crate::batch::SourceFile;
use crate::storage::{BlobStore, BlobUrl, RangeReader, StorageConfig};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// One listed blob.
#[derive(Debug, Clone)]
pub struct BlobFile {
    /// Identity used in batches, dead letters and the report (`az://container/name`).
    pub file: Arc<SourceFile>,
    store: Arc<BlobStore>,
    /// Blob name in its container.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
}

/// How blobs are downloaded.
#[derive(Debug, Clone, Copy)]
pub struct Download {
    /// Range requests in flight per blob.
    pub concurrency: usize,
    /// Bytes per range request.
    pub range_size: u64,
}

/// The listed input of an `azure_blob` source.
#[derive(Debug)]
pub struct BlobSource {
    files: Vec<BlobFile>,
    download: Download,
}

fn is_input_name(name: &str) -> bool {
    !name.split('/').any(|s| s.starts_with('.'))
        && (name.ends_with(".ndjson") || name.ends_with(".ndjson.gz"))
}

impl BlobSource {
    /// Lists the blobs of `urls` in a stable order.
    pub fn open(
        urls: &[BlobUrl],
        storage: &StorageConfig,
        env: &dyn Fn(&str) -> Option<String>,
        download: Download,
    ) -> Result<Self, SourceError> {
        let mut files = Vec::new();
        for url in urls {
            let store = Arc::new(BlobStore::open(url, storage, env)?);
            let mut listed: Vec<(String, u64)> = Vec::new();
            let single = if url.prefix.is_empty() {
                None
            } else {
                store.size(&url.prefix)?
            };
            match single {
                Some(size) => listed.push((url.prefix.clone(), size)),
                None => {
                    for (name, size) in store.list(&url.prefix)? {
                        if is_input_name(&name) {
                            listed.push((name, size));
                        }
                    }
                }
            }
            for (name, size) in listed {
                files.push(BlobFile {
                    file: Arc::new(SourceFile {
                        index: files.len(),
                        name: format!("az://{}/{name}", url.container),
                    }),
                    store: store.clone(),
                    name,
                    size,
                });
            }
        }
        if files.is_empty() {
            return Err(SourceError::Empty {
                paths: urls
                    .iter()
                    .map(|u| u.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(BlobSource { files, download })
    }

    /// The listed blobs.
    pub fn files(&self) -> &[BlobFile] {
        &self.files
    }

    /// Total bytes stored.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Streams every blob into `out`, in listing order; `bytes_read` counts bytes downloaded.
    pub(crate) fn stream_into(
        &self,
        out: &mut ChunkOut,
        bytes_read: &AtomicU64,
    ) -> Result<(), SourceError> {
        let open = |f: &BlobFile| {
            RangeReader::new(
                &f.store,
                &f.name,
                f.size,
                self.download.range_size,
                self.download.concurrency,
            )
        };
        // The next blob's first ranges download while this one is read, so a prefix of many
        // small blobs does not wait one round trip per blob.
        let files: Vec<&BlobFile> = self
            .files
            .iter()
            .filter(|f| out.wants(&f.file, None))
            .collect();
        let mut next = files.first().map(|f| open(f));
        for (i, f) in files.iter().enumerate() {
            let reader = next.take().expect("opened ahead");
            next = files.get(i + 1).map(|f| open(f));
            let go_on = out.file(&f.file, reader, bytes_read).map_err(|e| {
                match e.downcast::<crate::storage::StorageError>() {
                    Ok(s) => SourceError::Storage(s),
                    Err(e) => SourceError::Io {
                        path: PathBuf::from(&f.file.name),
                        source: e,
                    },
                }
            })?;
            if !go_on {
                return Ok(());
            }
        }
        Ok(())
    }
}
