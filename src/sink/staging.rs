//! Staging and commit of a sink's files, on local disk or in blob storage.
//!
//! Local: files are written to `<root>/.fhirpipe-staging-<id>/` and renamed into place on
//! commit. Blob: files are uploaded (block uploads, [`BlobWriter`]) to
//! `<prefix>/.fhirpipe-staging-<id>/…`, which no reader lists (sources skip `.` segments);
//! commit copies each to its final name server-side and then deletes the staged blobs, because
//! Blob Storage has no atomic rename. Either way, files of earlier runs that follow the sink's
//! naming pattern and were not produced again are then removed, so the output holds exactly
//! this run's files; abort removes everything staged, so a failed run leaves nothing visible.

use super::SinkError;
use crate::storage::{BlobStore, BlobWriter, Location, StorageConfig};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

/// A sink's staging area.
#[derive(Debug)]
pub struct Staging {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Local {
        root: PathBuf,
        tmp: PathBuf,
        sync: Syncer,
    },
    Blob {
        store: Arc<BlobStore>,
        /// `<prefix>/.fhirpipe-staging-<id>`.
        tmp: String,
    },
}

/// Syncs a local staging area's closed files to disk on a thread of its own, so a sink
/// does not wait for the disk at each file it closes (it used to: 13 files synced one after
/// the other were most of a run's last 100 ms, issue 6 item 7). Commit waits for every sync
/// before it renames anything, so what becomes visible is on disk.
#[derive(Debug, Clone)]
pub struct Syncer {
    /// To the sync thread; `None` when it could not be started (files are synced inline).
    tx: Option<crossbeam_channel::Sender<(File, PathBuf)>>,
    state: Arc<(Mutex<SyncState>, Condvar)>,
}

#[derive(Debug, Default)]
struct SyncState {
    /// Files handed over and not yet synced.
    pending: usize,
    /// The first failure.
    failed: Option<(PathBuf, std::io::Error)>,
}

impl Syncer {
    fn start() -> Self {
        let state: Arc<(Mutex<SyncState>, Condvar)> = Arc::default();
        let (tx, rx) = crossbeam_channel::unbounded::<(File, PathBuf)>();
        let st = state.clone();
        // The thread ends when the staging area and all its files are dropped.
        let spawned = std::thread::Builder::new()
            .name("sync".into())
            .spawn(move || {
                for (f, path) in rx {
                    let r = f.sync_all();
                    drop(f);
                    let (lock, cv) = &*st;
                    let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
                    s.pending -= 1;
                    if let (Err(e), None) = (r, &s.failed) {
                        s.failed = Some((path, e));
                    }
                    cv.notify_all();
                }
            });
        Syncer {
            tx: spawned.ok().map(|_| tx),
            state,
        }
    }

    /// Syncs `f` in the background (inline without a thread).
    fn submit(&self, f: File, path: PathBuf) -> Result<(), SinkError> {
        let Some(tx) = &self.tx else {
            return f.sync_all().map_err(SinkError::io(&path));
        };
        let (lock, _) = &*self.state;
        lock.lock().unwrap_or_else(|e| e.into_inner()).pending += 1;
        if let Err(crossbeam_channel::SendError((f, path))) = tx.send((f, path)) {
            lock.lock().unwrap_or_else(|e| e.into_inner()).pending -= 1;
            return f.sync_all().map_err(SinkError::io(&path));
        }
        Ok(())
    }

    /// Waits until every file handed over is synced; the first failure, if any.
    fn wait(&self) -> Result<(), SinkError> {
        let (lock, cv) = &*self.state;
        let mut s = lock.lock().unwrap_or_else(|e| e.into_inner());
        while s.pending > 0 {
            s = cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        match s.failed.take() {
            Some((path, e)) => Err(SinkError::io(&path)(e)),
            None => Ok(()),
        }
    }
}

/// A file being written in the staging area.
pub enum OutFile {
    /// A local file.
    Local {
        /// Buffered file.
        w: BufWriter<File>,
        /// Where.
        path: PathBuf,
        /// Syncs it once closed.
        sync: Syncer,
    },
    /// A blob upload.
    Blob(Box<BlobWriter>),
}

impl OutFile {
    /// Where it is, for messages.
    pub fn path(&self) -> PathBuf {
        match self {
            OutFile::Local { path, .. } => path.clone(),
            OutFile::Blob(b) => PathBuf::from(b.name()),
        }
    }

    /// Flushes and closes (local: hands the file to the staging area's syncer, which commit
    /// waits for; blob: commits the block list); returns the bytes stored.
    pub fn close(self) -> Result<u64, SinkError> {
        match self {
            OutFile::Local { w, path, sync } => {
                let f = w.into_inner().map_err(|e| SinkError::Io {
                    path: path.clone(),
                    source: e.into_error(),
                })?;
                let len = f.metadata().map_err(SinkError::io(&path))?.len();
                sync.submit(f, path)?;
                Ok(len)
            }
            OutFile::Blob(b) => Ok(b.finish()?),
        }
    }
}

impl Write for OutFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            OutFile::Local { w, .. } => w.write(buf),
            OutFile::Blob(b) => b.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            OutFile::Local { w, .. } => w.write_all(buf),
            OutFile::Blob(b) => b.write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            OutFile::Local { w, .. } => w.flush(),
            OutFile::Blob(b) => b.flush(),
        }
    }
}

fn list_files(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let ft = e.file_type()?;
        if ft.is_dir() {
            list_files(&e.path(), &rel.join(&name), out)?;
        } else {
            out.push(rel.join(&name));
        }
    }
    Ok(())
}

impl Staging {
    /// Creates the staging area of output `loc` for run `run_id`; blob locations connect with
    /// `storage` and the process environment.
    pub fn create(
        loc: &Location,
        run_id: &str,
        storage: &StorageConfig,
    ) -> Result<Self, SinkError> {
        Self::create_in(loc, &format!(".fhirpipe-staging-{run_id}"), storage)
    }

    /// Creates a staging area in the folder `name` below `loc` (the `fhir_import` sink stages
    /// its chunks in `<staging>/<run id>/`, where the FHIR service reads them).
    pub fn create_in(
        loc: &Location,
        name: &str,
        storage: &StorageConfig,
    ) -> Result<Self, SinkError> {
        let inner = match loc {
            Location::Local(root) => {
                let tmp = root.join(name);
                std::fs::create_dir_all(&tmp).map_err(SinkError::io(&tmp))?;
                Inner::Local {
                    root: root.clone(),
                    tmp,
                    sync: Syncer::start(),
                }
            }
            Location::Blob(url) => {
                let store = BlobStore::open(url, storage, &|k| std::env::var(k).ok())?;
                // Fail before any input is read when the container is missing or the
                // credential is refused (commit needs list permission anyway).
                store.list(&url.child(name))?;
                Inner::Blob {
                    tmp: url.child(name),
                    store: Arc::new(store),
                }
            }
        };
        Ok(Staging { inner })
    }

    /// The output location, for messages.
    pub fn root(&self) -> PathBuf {
        match &self.inner {
            Inner::Local { root, .. } => root.clone(),
            Inner::Blob { store, .. } => PathBuf::from(store.url().to_string()),
        }
    }

    /// The blob name (below the container) of the staged file `rel`; `None` for local staging.
    pub fn staged_blob(&self, rel: &str) -> Option<String> {
        match &self.inner {
            Inner::Local { .. } => None,
            Inner::Blob { tmp, .. } => Some(format!("{tmp}/{rel}")),
        }
    }

    /// Opens the file that will be `<root>/<rel>` (local: creates its folder and buffers
    /// `buffer` bytes; blob: uploads in blocks).
    pub fn create_file(&self, rel: &str, buffer: usize) -> Result<OutFile, SinkError> {
        match &self.inner {
            Inner::Local { tmp, sync, .. } => {
                let path = tmp.join(rel);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(SinkError::io(parent))?;
                }
                let f = File::create(&path).map_err(SinkError::io(&path))?;
                Ok(OutFile::Local {
                    w: BufWriter::with_capacity(buffer, f),
                    path,
                    sync: sync.clone(),
                })
            }
            Inner::Blob { store, tmp } => Ok(OutFile::Blob(Box::new(BlobWriter::create(
                store,
                &format!("{tmp}/{rel}"),
            )?))),
        }
    }

    /// Makes `files` (relative names) visible, then deletes other files under the root for
    /// which `ours` is true (earlier runs' output), then removes the staging area.
    pub fn commit(&self, files: &[String], ours: &dyn Fn(&Path) -> bool) -> Result<(), SinkError> {
        self.commit_with_manifest(files, ours, None)
    }

    /// [`Staging::commit`] bracketed by the run's manifest: the previous
    /// `<root>/_manifest.json` is deleted first and `manifest` (its new text) written last,
    /// after the stale files are gone, so an existing manifest marks a complete commit.
    pub fn commit_with_manifest(
        &self,
        files: &[String],
        ours: &dyn Fn(&Path) -> bool,
        manifest: Option<&[u8]>,
    ) -> Result<(), SinkError> {
        use super::manifest::MANIFEST_NAME;
        let fresh: std::collections::HashSet<&Path> = files.iter().map(Path::new).collect();
        match &self.inner {
            Inner::Local { root, tmp, sync } => {
                // Nothing becomes visible before every staged file is on disk.
                sync.wait()?;
                if manifest.is_some() {
                    let old = root.join(MANIFEST_NAME);
                    match std::fs::remove_file(&old) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                            return Err(SinkError::io(old)(e))
                        }
                        _ => {}
                    }
                }
                for rel in files {
                    let from = tmp.join(rel);
                    let to = root.join(rel);
                    if let Some(parent) = to.parent() {
                        std::fs::create_dir_all(parent).map_err(SinkError::io(parent))?;
                    }
                    std::fs::rename(&from, &to).map_err(SinkError::io(&to))?;
                }
                let mut existing = Vec::new();
                list_files(root, Path::new(""), &mut existing).map_err(SinkError::io(root))?;
                for rel in existing {
                    if ours(&rel) && !fresh.contains(rel.as_path()) {
                        let p = root.join(&rel);
                        std::fs::remove_file(&p).map_err(SinkError::io(&p))?;
                        // Empty folders up to the root go too (a partition, then its type);
                        // remove_dir leaves non-empty folders alone.
                        let mut dir = p.parent();
                        while let Some(d) = dir.filter(|d| *d != root.as_path()) {
                            if std::fs::remove_dir(d).is_err() {
                                break;
                            }
                            dir = d.parent();
                        }
                    }
                }
                if let Some(text) = manifest {
                    // Written in staging, synced, then renamed: never seen half-written.
                    let staged = tmp.join(MANIFEST_NAME);
                    let mut f = File::create(&staged).map_err(SinkError::io(&staged))?;
                    f.write_all(text).map_err(SinkError::io(&staged))?;
                    f.sync_all().map_err(SinkError::io(&staged))?;
                    let to = root.join(MANIFEST_NAME);
                    std::fs::rename(&staged, &to).map_err(SinkError::io(&to))?;
                }
                std::fs::remove_dir_all(tmp).map_err(SinkError::io(tmp))?;
            }
            Inner::Blob { store, tmp } => {
                let url = store.url();
                if manifest.is_some() {
                    store.delete(&[url.child(MANIFEST_NAME)])?;
                }
                for rel in files {
                    store.copy(&format!("{tmp}/{rel}"), &url.child(rel))?;
                }
                let base = if url.prefix.is_empty() {
                    String::new()
                } else {
                    format!("{}/", url.prefix)
                };
                let mut stale = Vec::new();
                for (name, _) in store.list(&url.prefix)? {
                    let Some(rel) = name.strip_prefix(&base) else {
                        continue;
                    };
                    if rel.split('/').any(|s| s.starts_with('.')) {
                        continue;
                    }
                    if ours(Path::new(rel)) && !fresh.contains(Path::new(rel)) {
                        stale.push(name);
                    }
                }
                store.delete(&stale)?;
                if let Some(text) = manifest {
                    // One Put Blob: atomic, visible only when complete.
                    store.put(&url.child(MANIFEST_NAME), text.to_vec())?;
                }
                let staged: Vec<String> = store.list(tmp)?.into_iter().map(|(n, _)| n).collect();
                store.delete(&staged)?;
            }
        }
        Ok(())
    }

    /// Removes the staging area and everything in it.
    pub fn abort(&self) {
        match &self.inner {
            Inner::Local { tmp, .. } => {
                let _ = std::fs::remove_dir_all(tmp);
            }
            Inner::Blob { store, tmp } => {
                if let Ok(staged) = store.list(tmp) {
                    let names: Vec<String> = staged.into_iter().map(|(n, _)| n).collect();
                    let _ = store.delete(&names);
                }
            }
        }
    }
}

/// Is `name` `<prefix>.<5+ digits>.<ext>` (the rolling writers' naming)?
pub(crate) fn is_rolled_name(name: &str, ext: &str) -> Option<String> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    let (prefix, seq) = stem.rsplit_once('.')?;
    (seq.len() >= 5 && seq.bytes().all(|b| b.is_ascii_digit())).then(|| prefix.to_string())
}
