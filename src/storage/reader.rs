//! [`RangeReader`]: a synchronous `std::io::Read` over one blob that downloads it as
//! consecutive byte ranges of `range_size`, up to `concurrency` ranges at once on the store's
//! runtime, and hands them out strictly in order. Memory is `range_size × concurrency`
//! whatever the blob's size; line boundaries are not the reader's concern (the line splitter
//! downstream is a push decoder that takes any cut), so line numbers stay exact.

use super::{BlobStore, StorageError};
use bytes::Bytes;
use object_store::path::Path as ObjPath;
use object_store::ObjectStoreExt;
use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;
use tokio::task::JoinHandle;

type Pending = JoinHandle<Result<Bytes, object_store::Error>>;

/// Reads one blob through parallel range requests.
pub struct RangeReader {
    store: Arc<BlobStore>,
    name: String,
    size: u64,
    range_size: u64,
    concurrency: usize,
    /// Start of the next range to request.
    next: u64,
    pending: VecDeque<Pending>,
    current: Bytes,
    /// Range requests made.
    pub requests: u64,
}

impl RangeReader {
    /// A reader of blob `name` of `size` bytes.
    pub fn new(
        store: &Arc<BlobStore>,
        name: &str,
        size: u64,
        range_size: u64,
        concurrency: usize,
    ) -> Self {
        let mut r = RangeReader {
            store: store.clone(),
            name: name.to_string(),
            size,
            range_size: range_size.max(1),
            concurrency: concurrency.max(1),
            next: 0,
            pending: VecDeque::new(),
            current: Bytes::new(),
            requests: 0,
        };
        r.fill();
        r
    }

    /// Starts range requests until `concurrency` are pending or the blob is covered.
    fn fill(&mut self) {
        while self.pending.len() < self.concurrency && self.next < self.size {
            let end = (self.next + self.range_size).min(self.size);
            let store = self.store.store.clone();
            let path = ObjPath::from(self.name.as_str());
            let range = self.next..end;
            self.pending.push_back(
                self.store
                    .rt
                    .spawn(async move { store.get_range(&path, range).await }),
            );
            self.requests += 1;
            self.next = end;
        }
    }

    fn next_range(&mut self) -> Result<Option<Bytes>, StorageError> {
        let Some(h) = self.pending.pop_front() else {
            return Ok(None);
        };
        self.fill();
        let op = format!("read `{}`", self.name);
        match self.store.block_on(h) {
            Ok(Ok(b)) => Ok(Some(b)),
            Ok(Err(e)) => Err(self.store.err(&op, e)),
            Err(e) => Err(StorageError::Io {
                account: self.store.account.clone(),
                container: self.store.url.container.clone(),
                op,
                detail: e.to_string(),
            }),
        }
    }
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.next_range()? {
                Some(b) => self.current = b,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

impl Drop for RangeReader {
    fn drop(&mut self) {
        for h in &self.pending {
            h.abort();
        }
    }
}
