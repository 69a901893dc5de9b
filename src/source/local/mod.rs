//! The `local` source: files and folders on local disk. Folders are walked recursively (sorted,
//! hidden entries skipped) for `*.ndjson` and `*.ndjson.gz`; a file named explicitly is read
//! whatever its name. gzip is recognised by its magic bytes, not by the name.

mod config;

pub use config::LocalSourceConfig;

use super::SourceError;
use crate::batch::SourceFile;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// One listed input file.
#[derive(Debug, Clone)]
pub struct LocalFile {
    /// Identity used in batches, dead letters and the report.
    pub file: Arc<SourceFile>,
    /// Where it is.
    pub path: PathBuf,
    /// Size on disk (compressed size for gzip).
    pub size: u64,
}

/// The listed input of a local source.
#[derive(Debug)]
pub struct LocalSource {
    files: Vec<LocalFile>,
}

fn is_ndjson_name(name: &str) -> bool {
    name.ends_with(".ndjson") || name.ends_with(".ndjson.gz")
}

/// Appends the files under `dir` whose name `accept`s, recursively and sorted by name, so
/// listings are deterministic. Hidden entries (a leading `.`, such as the sinks'
/// `.fhirpipe-staging-*` folders) are skipped; symlinked folders are followed.
pub fn list_files(
    dir: &Path,
    accept: &dyn Fn(&str) -> bool,
    out: &mut Vec<PathBuf>,
) -> Result<(), SourceError> {
    let io = |e| SourceError::Io {
        path: dir.to_path_buf(),
        source: e,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = e.path();
        let ft = e.file_type().map_err(io)?;
        if ft.is_dir() || (ft.is_symlink() && path.is_dir()) {
            list_files(&path, accept, out)?;
        } else if accept(&name) {
            out.push(path);
        }
    }
    Ok(())
}

impl LocalSource {
    /// Lists the input files of `paths` in a stable order.
    pub fn open(paths: &[PathBuf]) -> Result<Self, SourceError> {
        let mut listed = Vec::new();
        for p in paths {
            let meta = std::fs::metadata(p).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => SourceError::NotFound { path: p.clone() },
                _ => SourceError::Io {
                    path: p.clone(),
                    source: e,
                },
            })?;
            if meta.is_dir() {
                list_files(p, &is_ndjson_name, &mut listed)?;
            } else {
                listed.push(p.clone());
            }
        }
        if listed.is_empty() {
            return Err(SourceError::Empty {
                paths: paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let files = listed
            .into_iter()
            .enumerate()
            .map(|(index, path)| {
                let size =
                    std::fs::metadata(&path)
                        .map(|m| m.len())
                        .map_err(|e| SourceError::Io {
                            path: path.clone(),
                            source: e,
                        })?;
                Ok(LocalFile {
                    file: Arc::new(SourceFile {
                        index,
                        name: path.display().to_string(),
                    }),
                    path,
                    size,
                })
            })
            .collect::<Result<Vec<_>, SourceError>>()?;
        Ok(LocalSource { files })
    }

    /// The listed files.
    pub fn files(&self) -> &[LocalFile] {
        &self.files
    }

    /// Total bytes on disk.
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Streams every file into `out`, in listing order.
    pub(crate) fn stream_into(
        &self,
        out: &mut super::ChunkOut,
        bytes_read: &AtomicU64,
    ) -> Result<(), SourceError> {
        for f in &self.files {
            if !out.wants(&f.file, None) {
                continue;
            }
            let io = |e| SourceError::Io {
                path: f.path.clone(),
                source: e,
            };
            let raw = File::open(&f.path).map_err(io)?;
            if !out.file(&f.file, raw, bytes_read).map_err(io)? {
                return Ok(());
            }
        }
        Ok(())
    }
}
