//! [`BlobWriter`]: a synchronous `std::io::Write` over an Azure block-blob upload
//! (`object_store`'s `WriteMultipart`): bytes are cut into blocks of [`BLOCK_SIZE`], at most
//! [`IN_FLIGHT`] blocks upload at once (the writer waits before starting another), and
//! [`BlobWriter::finish`] commits the block list. Dropped unfinished, the upload is aborted
//! (its uncommitted blocks are never visible and the service discards them).

use super::{BlobStore, StorageError};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, WriteMultipart};
use std::io::Write;
use std::sync::Arc;

/// Bytes per block.
pub const BLOCK_SIZE: usize = 5 << 20;
/// Blocks uploading at once per writer; with the block being filled, a writer holds at most
/// `(IN_FLIGHT + 1) × BLOCK_SIZE` bytes.
pub const IN_FLIGHT: usize = 2;

/// A blob being uploaded.
pub struct BlobWriter {
    store: Arc<BlobStore>,
    name: String,
    upload: Option<WriteMultipart>,
    /// Bytes in the block being filled.
    filling: usize,
    /// Bytes written in all.
    written: u64,
}

impl BlobWriter {
    /// Starts an upload to blob `name`.
    pub fn create(store: &Arc<BlobStore>, name: &str) -> Result<Self, StorageError> {
        let s = store.store.clone();
        let path = ObjPath::from(name);
        let upload = store
            .block_on(async move { s.put_multipart(&path).await })
            .map_err(|e| store.err(&format!("start uploading `{name}`"), e))?;
        Ok(BlobWriter {
            store: store.clone(),
            name: name.to_string(),
            upload: Some(WriteMultipart::new_with_chunk_size(upload, BLOCK_SIZE)),
            filling: 0,
            written: 0,
        })
    }

    /// The blob's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Uploads the last block and commits the block list; returns the blob's size.
    pub fn finish(mut self) -> Result<u64, StorageError> {
        let up = self.upload.take().expect("finish is called once");
        let store = &self.store;
        let _guard = store.rt.enter();
        store
            .block_on(up.finish())
            .map_err(|e| store.err(&format!("finish uploading `{}`", self.name), e))?;
        Ok(self.written)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let store = &self.store;
        let Some(up) = self.upload.as_mut() else {
            return Err(std::io::Error::other("write after finish"));
        };
        let _guard = store.rt.enter();
        if self.filling + buf.len() >= BLOCK_SIZE {
            // This write starts at least one upload: wait for a free slot first.
            store
                .block_on(up.wait_for_capacity(IN_FLIGHT))
                .map_err(|e| store.err(&format!("upload `{}`", self.name), e))?;
        }
        up.write(buf);
        self.filling = (self.filling + buf.len()) % BLOCK_SIZE;
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if let Some(up) = self.upload.take() {
            let _guard = self.store.rt.enter();
            let _ = self.store.block_on(up.abort());
        }
    }
}
