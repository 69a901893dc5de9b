//! Rendering buffers and output files of the sample generator.
//!
//! Owns: the list of generated resource types ([`Kind`]), the per-block in-memory buffers
//! resources are rendered into ([`Block`]), the optional parallel gzip encoding of a block
//! ([`encode`]: every block's per-type buffer becomes an independent, byte-aligned raw
//! DEFLATE segment, pigz-style, so compression runs on the rayon workers and the bytes do not
//! depend on the thread count), and the sequential writer that appends blocks to one file per
//! type and closes each gzip file as a single-member stream ([`Output`]).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

use super::json::{Id, J};
use super::time::Secs;
use super::SampleError;

/// Resource types in file-name order (the order of [`super::SampleSummary::resources`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Claim = 0,
    Condition,
    DiagnosticReport,
    DocumentReference,
    Encounter,
    ExplanationOfBenefit,
    Immunization,
    MedicationRequest,
    Observation,
    Organization,
    Patient,
    Practitioner,
    Procedure,
}

pub(crate) const N_KINDS: usize = 13;

pub(crate) const KINDS: [Kind; N_KINDS] = [
    Kind::Claim,
    Kind::Condition,
    Kind::DiagnosticReport,
    Kind::DocumentReference,
    Kind::Encounter,
    Kind::ExplanationOfBenefit,
    Kind::Immunization,
    Kind::MedicationRequest,
    Kind::Observation,
    Kind::Organization,
    Kind::Patient,
    Kind::Practitioner,
    Kind::Procedure,
];

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Claim => "Claim",
            Kind::Condition => "Condition",
            Kind::DiagnosticReport => "DiagnosticReport",
            Kind::DocumentReference => "DocumentReference",
            Kind::Encounter => "Encounter",
            Kind::ExplanationOfBenefit => "ExplanationOfBenefit",
            Kind::Immunization => "Immunization",
            Kind::MedicationRequest => "MedicationRequest",
            Kind::Observation => "Observation",
            Kind::Organization => "Organization",
            Kind::Patient => "Patient",
            Kind::Practitioner => "Practitioner",
            Kind::Procedure => "Procedure",
        }
    }
}

/// Compression level of `.ndjson.gz` output (zlib level 1..9).
const GZIP_LEVEL: u32 = 4;

/// The resources of a run of consecutive patients, rendered in memory.
pub(crate) struct Block {
    pub(crate) bufs: [Vec<u8>; N_KINDS],
    pub(crate) counts: [u64; N_KINDS],
    /// Annotation lines, when requested.
    pub(crate) ann: Option<Vec<u8>>,
    /// Number of patients done once this block is written.
    pub(crate) patients_end: u64,
}

impl Block {
    pub(crate) fn new(annotations: bool, patients_end: u64) -> Self {
        Block {
            bufs: std::array::from_fn(|_| Vec::new()),
            counts: [0; N_KINDS],
            ann: annotations.then(Vec::new),
            patients_end,
        }
    }

    /// Starts a resource line: `{"resourceType":..,"id":..,"meta":{..}` and returns the
    /// writer positioned for the next element. Finish with [`Res::done`].
    pub(crate) fn begin(
        &mut self,
        kind: Kind,
        id: &Id,
        version: u32,
        last_updated: Secs,
        millis: u32,
    ) -> Res<'_> {
        let k = kind as usize;
        self.counts[k] += 1;
        let mut j = J::new(&mut self.bufs[k]);
        j.obj();
        j.k_str("resourceType", kind.name());
        j.k_id("id", id);
        j.k_obj("meta");
        j.key("versionId");
        j.str(itoa::Buffer::new().format(version));
        j.k_instant("lastUpdated", last_updated, millis);
        j.end();
        Res(j)
    }
}

/// A resource being written; dereferences to the JSON writer.
pub(crate) struct Res<'a>(J<'a>);

impl<'a> Res<'a> {
    /// Closes the resource object and ends the NDJSON line.
    pub(crate) fn done(mut self) {
        self.0.end();
        self.0.buf.push(b'\n');
    }
}

impl<'a> std::ops::Deref for Res<'a> {
    type Target = J<'a>;
    fn deref(&self) -> &J<'a> {
        &self.0
    }
}

impl<'a> std::ops::DerefMut for Res<'a> {
    fn deref_mut(&mut self) -> &mut J<'a> {
        &mut self.0
    }
}

/// One type's bytes of a block, ready to append to its file.
pub(crate) struct Chunk {
    pub(crate) data: Vec<u8>,
    /// CRC-32 and length of the uncompressed bytes (gzip output only).
    pub(crate) crc: Option<Crc>,
}

/// A block ready to write: per-type chunks, counts, annotations.
pub(crate) struct Encoded {
    pub(crate) chunks: [Chunk; N_KINDS],
    pub(crate) counts: [u64; N_KINDS],
    pub(crate) ann: Option<Vec<u8>>,
    pub(crate) patients_end: u64,
}

/// Turns a rendered block into file chunks, compressing each type when `gzip` is set.
pub(crate) fn encode(block: Block, gzip: bool, out_dir: &Path) -> Result<Encoded, SampleError> {
    let Block {
        bufs,
        counts,
        ann,
        patients_end,
    } = block;
    let mut chunks: [Chunk; N_KINDS] = std::array::from_fn(|_| Chunk {
        data: Vec::new(),
        crc: None,
    });
    for (i, buf) in bufs.into_iter().enumerate() {
        chunks[i] = if gzip && !buf.is_empty() {
            let mut crc = Crc::new();
            crc.update(&buf);
            let data = deflate_segment(&buf).map_err(|message| SampleError::Compress {
                path: file_path(out_dir, KINDS[i], true),
                message,
            })?;
            Chunk {
                data,
                crc: Some(crc),
            }
        } else {
            Chunk {
                data: buf,
                crc: None,
            }
        };
    }
    Ok(Encoded {
        chunks,
        counts,
        ann,
        patients_end,
    })
}

/// Compresses `input` as raw DEFLATE blocks ending with a sync flush (non-final, byte
/// aligned), so independently compressed segments can be concatenated into one stream.
fn deflate_segment(input: &[u8]) -> Result<Vec<u8>, String> {
    let mut c = Compress::new(Compression::new(GZIP_LEVEL), false);
    let mut out = Vec::with_capacity(input.len() / 5 + 1024);
    loop {
        if out.capacity() - out.len() < 1024 {
            out.reserve(out.capacity().max(64 * 1024));
        }
        let consumed = usize::try_from(c.total_in()).map_err(|e| e.to_string())?;
        let status = c
            .compress_vec(&input[consumed..], &mut out, FlushCompress::Sync)
            .map_err(|e| e.to_string())?;
        let consumed = usize::try_from(c.total_in()).map_err(|e| e.to_string())?;
        // The flush is complete once all input is consumed and the output was not filled.
        if consumed == input.len() && out.len() < out.capacity() {
            return Ok(out);
        }
        if status == Status::StreamEnd {
            return Err("deflate stream ended early".to_string());
        }
    }
}

/// Path of the output file of `kind`.
pub(crate) fn file_path(out_dir: &Path, kind: Kind, gzip: bool) -> PathBuf {
    out_dir.join(format!(
        "{}.ndjson{}",
        kind.name(),
        if gzip { ".gz" } else { "" }
    ))
}

/// gzip member header: no name, mtime 0 (reproducible), OS unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// A final, empty fixed-Huffman DEFLATE block (BFINAL=1, BTYPE=01, end-of-block).
const DEFLATE_FINAL_EMPTY: [u8; 2] = [0x03, 0x00];

struct TypeFile {
    path: PathBuf,
    w: BufWriter<File>,
    crc: Crc,
}

/// The open output files of a run.
pub(crate) struct Output {
    files: Vec<TypeFile>,
    gzip: bool,
    ann: Option<(PathBuf, BufWriter<File>)>,
    pub(crate) bytes: u64,
    pub(crate) counts: [u64; N_KINDS],
}

fn create(path: &Path) -> Result<BufWriter<File>, SampleError> {
    File::create(path)
        .map(|f| BufWriter::with_capacity(1 << 20, f))
        .map_err(|source| SampleError::Io {
            path: path.to_path_buf(),
            source,
        })
}

impl Output {
    /// Creates (truncates) every output file; gzip files get their header.
    pub(crate) fn create(
        out_dir: &Path,
        gzip: bool,
        annotations: Option<&Path>,
    ) -> Result<Self, SampleError> {
        let mut files = Vec::with_capacity(N_KINDS);
        let mut bytes = 0;
        for kind in KINDS {
            let path = file_path(out_dir, kind, gzip);
            let mut w = create(&path)?;
            if gzip {
                w.write_all(&GZIP_HEADER)
                    .map_err(|source| SampleError::Io {
                        path: path.clone(),
                        source,
                    })?;
                bytes += GZIP_HEADER.len() as u64;
            }
            files.push(TypeFile {
                path,
                w,
                crc: Crc::new(),
            });
        }
        let ann = match annotations {
            Some(p) => Some((p.to_path_buf(), create(p)?)),
            None => None,
        };
        Ok(Output {
            files,
            gzip,
            ann,
            bytes,
            counts: [0; N_KINDS],
        })
    }

    /// Appends one encoded block to every file.
    pub(crate) fn write(&mut self, block: &Encoded) -> Result<(), SampleError> {
        for (f, chunk) in self.files.iter_mut().zip(block.chunks.iter()) {
            if chunk.data.is_empty() {
                continue;
            }
            f.w.write_all(&chunk.data)
                .map_err(|source| SampleError::Io {
                    path: f.path.clone(),
                    source,
                })?;
            self.bytes += chunk.data.len() as u64;
            if let Some(crc) = &chunk.crc {
                f.crc.combine(crc);
            }
        }
        for (c, n) in self.counts.iter_mut().zip(block.counts.iter()) {
            *c += n;
        }
        if let (Some((path, w)), Some(ann)) = (self.ann.as_mut(), block.ann.as_ref()) {
            w.write_all(ann).map_err(|source| SampleError::Io {
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Writes gzip trailers, flushes everything and returns the file paths (type order).
    pub(crate) fn finish(mut self) -> Result<(Vec<PathBuf>, u64, [u64; N_KINDS]), SampleError> {
        let mut paths = Vec::with_capacity(self.files.len());
        for mut f in self.files.drain(..) {
            let io = |source| SampleError::Io {
                path: f.path.clone(),
                source,
            };
            if self.gzip {
                let mut trailer = Vec::with_capacity(10);
                trailer.extend_from_slice(&DEFLATE_FINAL_EMPTY);
                trailer.extend_from_slice(&f.crc.sum().to_le_bytes());
                trailer.extend_from_slice(&f.crc.amount().to_le_bytes());
                f.w.write_all(&trailer).map_err(io)?;
                self.bytes += trailer.len() as u64;
            }
            f.w.flush().map_err(|source| SampleError::Io {
                path: f.path.clone(),
                source,
            })?;
            paths.push(f.path);
        }
        if let Some((path, mut w)) = self.ann.take() {
            w.flush()
                .map_err(|source| SampleError::Io { path, source })?;
        }
        Ok((paths, self.bytes, self.counts))
    }
}
