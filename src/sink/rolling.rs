//! A writer of newline-delimited files rolled by size: `<prefix>.00000.<ext>`, `.00001`, ...
//! Files are opened lazily on the first line (delta-rs style), so a type with no records leaves
//! no empty file. Optional gzip (fast level: throughput first; use Parquet for size).

use super::staging::OutFile;
use super::{SinkError, SinkStats, Staging};
use std::io::Write;
use std::path::PathBuf;

/// The open file; the encoder is boxed so that a plain file's `Out` stays small.
enum Out {
    Plain(OutFile),
    Gzip(Box<flate2::write::GzEncoder<OutFile>>),
}

struct Open {
    out: Out,
    path: PathBuf,
    /// Uncompressed bytes written.
    bytes: u64,
}

/// Size-rolled NDJSON writer for one prefix.
pub struct RollingWriter {
    prefix: String,
    ext: &'static str,
    target: u64,
    gzip: bool,
    seq: u32,
    open: Option<Open>,
    /// Relative names of the closed files.
    pub files: Vec<String>,
    /// Bytes on disk of the closed files.
    pub bytes_on_disk: u64,
}

impl RollingWriter {
    /// A writer of `<prefix>.NNNNN.ndjson[.gz]` files of about `target` bytes.
    pub fn new(prefix: impl Into<String>, target: u64, gzip: bool) -> Self {
        RollingWriter {
            prefix: prefix.into(),
            ext: if gzip { "ndjson.gz" } else { "ndjson" },
            target,
            gzip,
            seq: 0,
            open: None,
            files: Vec::new(),
            bytes_on_disk: 0,
        }
    }

    /// The extension of its files (`ndjson` or `ndjson.gz`).
    pub fn ext(&self) -> &'static str {
        self.ext
    }

    fn rel(&self) -> String {
        format!("{}.{:05}.{}", self.prefix, self.seq, self.ext)
    }

    /// Writes one line (a `\n` is appended).
    pub fn write_line(&mut self, staging: &Staging, line: &[u8]) -> Result<(), SinkError> {
        if self.open.is_none() {
            let w = staging.create_file(&self.rel(), 128 << 10)?;
            let path = w.path();
            let out = if self.gzip {
                Out::Gzip(Box::new(flate2::write::GzEncoder::new(
                    w,
                    flate2::Compression::fast(),
                )))
            } else {
                Out::Plain(w)
            };
            self.open = Some(Open {
                out,
                path,
                bytes: 0,
            });
        }
        let open = self.open.as_mut().expect("opened above");
        let res = match &mut open.out {
            Out::Plain(w) => w.write_all(line).and_then(|_| w.write_all(b"\n")),
            Out::Gzip(w) => w.write_all(line).and_then(|_| w.write_all(b"\n")),
        };
        res.map_err(SinkError::io(&open.path))?;
        open.bytes += line.len() as u64 + 1;
        if open.bytes >= self.target {
            self.close()?;
        }
        Ok(())
    }

    /// Closes the open file, if any.
    pub fn close(&mut self) -> Result<(), SinkError> {
        if let Some(open) = self.open.take() {
            let w = match open.out {
                Out::Plain(w) => w,
                Out::Gzip(g) => g.finish().map_err(SinkError::io(&open.path))?,
            };
            self.bytes_on_disk += w.close()?;
            self.files.push(self.rel());
            self.seq += 1;
        }
        Ok(())
    }
}

/// Closes every writer of a per-type set and adds their files and bytes to `stats` (the
/// `finish` of the sinks that write rolled NDJSON per type); returns the completed stats.
pub(crate) fn finish_all(
    writers: &mut [Option<RollingWriter>],
    stats: &mut SinkStats,
) -> Result<SinkStats, SinkError> {
    for w in writers.iter_mut().flatten() {
        w.close()?;
        stats.files.extend(w.files.iter().cloned());
        stats.bytes += w.bytes_on_disk;
    }
    stats.files.sort();
    Ok(stats.clone())
}
