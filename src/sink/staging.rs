//! Staging and commit of a sink's files: files are written to `<root>/.fhirpipe-staging-<id>/`
//! and moved into place on commit; files of earlier runs that follow the sink's naming pattern
//! and were not produced again are then removed, so the folder holds exactly this run's output.

use super::SinkError;
use std::path::{Path, PathBuf};

/// A sink's staging folder.
#[derive(Debug)]
pub struct Staging {
    root: PathBuf,
    tmp: PathBuf,
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
    /// Creates `<root>/.fhirpipe-staging-<run_id>/`.
    pub fn create(root: &Path, run_id: &str) -> Result<Self, SinkError> {
        let tmp = root.join(format!(".fhirpipe-staging-{run_id}"));
        std::fs::create_dir_all(&tmp).map_err(SinkError::io(&tmp))?;
        Ok(Staging {
            root: root.to_path_buf(),
            tmp,
        })
    }

    /// The output folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where to write the file that will be `<root>/<rel>`; creates its folder.
    pub fn path(&self, rel: &str) -> Result<PathBuf, SinkError> {
        let p = self.tmp.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(SinkError::io(parent))?;
        }
        Ok(p)
    }

    /// Moves `files` (relative names) into place, then deletes other files under the root for
    /// which `ours` is true (earlier runs' output), then removes the staging folder.
    pub fn commit(&self, files: &[String], ours: &dyn Fn(&Path) -> bool) -> Result<(), SinkError> {
        for rel in files {
            let from = self.tmp.join(rel);
            let to = self.root.join(rel);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(SinkError::io(parent))?;
            }
            std::fs::rename(&from, &to).map_err(SinkError::io(&to))?;
        }
        let mut existing = Vec::new();
        list_files(&self.root, Path::new(""), &mut existing).map_err(SinkError::io(&self.root))?;
        let fresh: std::collections::HashSet<&Path> = files.iter().map(Path::new).collect();
        for rel in existing {
            if ours(&rel) && !fresh.contains(rel.as_path()) {
                let p = self.root.join(&rel);
                std::fs::remove_file(&p).map_err(SinkError::io(&p))?;
                if let Some(parent) = p.parent() {
                    if parent != self.root {
                        // Leaves non-empty folders alone.
                        let _ = std::fs::remove_dir(parent);
                    }
                }
            }
        }
        std::fs::remove_dir_all(&self.tmp).map_err(SinkError::io(&self.tmp))?;
        Ok(())
    }

    /// Removes the staging folder and everything in it.
    pub fn abort(&self) {
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

/// Is `name` `<prefix>.<5+ digits>.<ext>` (the rolling writers' naming)?
pub(crate) fn is_rolled_name(name: &str, ext: &str) -> Option<String> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    let (prefix, seq) = stem.rsplit_once('.')?;
    (seq.len() >= 5 && seq.bytes().all(|b| b.is_ascii_digit())).then(|| prefix.to_string())
}
