//! `fhirpipe sample`: a fast, deterministic generator of synthetic FHIR R4 bulk data.
//!
//! Owns: the public entry point [`generate`] and its options, summary and error types, and
//! the run loop — the shared Organization/Practitioner pool first, then patients in fixed
//! blocks of [`PATIENTS_PER_BLOCK`] rendered (and, with `gzip`, compressed) in parallel on
//! rayon workers, and written strictly in block order while the next batch renders.
//! Output therefore depends only on `(seed, patients)`, never on the thread count, and
//! memory is bounded by two batches of blocks, never by the output size.
//!
//! # Output
//!
//! `<out>/<Type>.ndjson` (or `.ndjson.gz`, one gzip member per file) for Claim, Condition,
//! DiagnosticReport, DocumentReference, Encounter, ExplanationOfBenefit, Immunization,
//! MedicationRequest, Observation, Organization, Patient, Practitioner and Procedure; one
//! resource per line. Every resource has `meta.versionId` and `meta.lastUpdated`
//! (a UTC instant), every id is a UUID-shaped FHIR id, and every `reference` (`Type/id`)
//! resolves to a resource of the same run. Patient `i` is drawn from its own random stream,
//! so the first `n` patients are the same whatever the total. Events lie between birth and
//! death (or the simulation end, 2025-06-30).
//!
//! # Annotations
//!
//! With [`SampleOptions::annotations`] set, one NDJSON line per clinical note
//! (DocumentReference, whose `content[0].attachment.data` is the base64 of UTF-8 text):
//!
//! ```json
//! {"resourceType":"DocumentReference","id":"<id>","patient":"Patient/<id>",
//!  "spans":[{"start":12,"end":25,"type":"NAME","text":"Maria Lopez"}]}
//! ```
//!
//! `start`/`end` are byte offsets into the decoded note text (end exclusive); spans are
//! sorted, never overlap, and `text == note[start..end]`. `type` is one of NAME, DATE,
//! PHONE, FAX, EMAIL, SSN, MRN, ID, ADDRESS, CITY, STATE, ZIP, URL, IP, AGE; what each
//! covers is listed in the `notes` module documentation (for example, a title like
//! "Mr." is outside the NAME span, and AGE covers the number of every stated age). Lines
//! are in the same order as the DocumentReference file.

mod billing;
mod codes;
mod json;
mod names;
mod notes;
mod output;
mod patient;
mod pool;
mod rng;
mod time;

use std::collections::BTreeMap;
use std::path::PathBuf;

use rayon::prelude::*;

use output::{encode, file_path, Block, Encoded, Output, KINDS};

/// Patients per rendered block (the unit of parallel work and of gzip segments).
pub const PATIENTS_PER_BLOCK: u64 = 16;

/// Upper bound on blocks rendered per batch, whatever the thread count.
const MAX_BATCH: usize = 32;

/// What to generate and where.
#[derive(Clone, Debug)]
pub struct SampleOptions {
    /// Number of patients (at least 1).
    pub patients: u64,
    /// Random seed: the same seed and patient count give byte-identical output.
    pub seed: u64,
    /// Output folder, created if missing; existing files of the same names are replaced.
    pub out: PathBuf,
    /// Write `.ndjson.gz` instead of `.ndjson`.
    pub gzip: bool,
    /// Also write the PHI spans of every clinical note to this NDJSON file.
    pub annotations: Option<PathBuf>,
}

/// What a run wrote.
#[derive(Clone, Debug)]
pub struct SampleSummary {
    /// Resources written per resource type.
    pub resources: BTreeMap<String, u64>,
    /// Bytes written to the resource files (compressed size with `gzip`).
    pub bytes: u64,
    /// The resource files in type order, then the annotation file if any.
    pub files: Vec<PathBuf>,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// The options cannot be used.
    #[error("invalid sample options: {0}")]
    InvalidOptions(String),
    /// Creating or writing a file or folder failed.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// gzip compression of a file's data failed.
    #[error("cannot compress {}: {message}", path.display())]
    Compress { path: PathBuf, message: String },
}

/// Generates `opts.patients` patients into `opts.out`. `progress(patients_done,
/// bytes_written)` is called after every written block, in order and never concurrently
/// (from the calling thread or one rayon worker, hence `Sync`).
pub fn generate(
    opts: &SampleOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<SampleSummary, SampleError> {
    if opts.patients == 0 {
        return Err(SampleError::InvalidOptions(
            "--patients must be at least 1".to_string(),
        ));
    }
    if let Some(a) = &opts.annotations {
        let clash = KINDS
            .iter()
            .any(|k| file_path(&opts.out, *k, opts.gzip) == *a);
        if clash || a.as_os_str().is_empty() {
            return Err(SampleError::InvalidOptions(format!(
                "the annotations file {} must not be empty or one of the resource files",
                a.display()
            )));
        }
    }
    std::fs::create_dir_all(&opts.out).map_err(|source| SampleError::Io {
        path: opts.out.clone(),
        source,
    })?;
    if let Some(parent) = opts
        .annotations
        .as_deref()
        .and_then(std::path::Path::parent)
    {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(|source| SampleError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
    }

    let pool = pool::Pool::new(opts.seed);
    let mut out = Output::create(&opts.out, opts.gzip, opts.annotations.as_deref())?;
    let mut first = Block::new(false, 0);
    pool.write(&mut first);
    out.write(&encode(first, opts.gzip, &opts.out)?)?;

    let n_blocks = opts.patients.div_ceil(PATIENTS_PER_BLOCK);
    let batch = (rayon::current_num_threads() * 2).clamp(2, MAX_BATCH) as u64;
    let render = |range: std::ops::Range<u64>| -> Result<Vec<Encoded>, SampleError> {
        range
            .into_par_iter()
            .map(|b| render_block(&pool, opts, b))
            .collect()
    };
    let mut pending = render(0..batch.min(n_blocks))?;
    let mut next = batch.min(n_blocks);
    while !pending.is_empty() {
        let range = next..next.saturating_add(batch).min(n_blocks);
        next = range.end;
        let (written, rendered) = rayon::join(
            || -> Result<(), SampleError> {
                for block in &pending {
                    out.write(block)?;
                    progress(block.patients_end, out.bytes);
                }
                Ok(())
            },
            || render(range),
        );
        written?;
        pending = rendered?;
    }

    let (mut files, bytes, counts) = out.finish()?;
    if let Some(a) = &opts.annotations {
        files.push(a.clone());
    }
    let resources = KINDS
        .iter()
        .zip(counts)
        .map(|(k, n)| (k.name().to_string(), n))
        .collect();
    Ok(SampleSummary {
        resources,
        bytes,
        files,
    })
}

/// Renders (and encodes) block `b`: patients `b * PATIENTS_PER_BLOCK ..`.
fn render_block(pool: &pool::Pool, opts: &SampleOptions, b: u64) -> Result<Encoded, SampleError> {
    let start = b * PATIENTS_PER_BLOCK;
    let end = start.saturating_add(PATIENTS_PER_BLOCK).min(opts.patients);
    let mut block = Block::new(opts.annotations.is_some(), end);
    let mut scratch = patient::Scratch::default();
    for i in start..end {
        patient::generate(pool, opts.seed, i, &mut block, &mut scratch);
    }
    encode(block, opts.gzip, &opts.out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use serde_json::Value;
    use std::collections::{HashMap, HashSet};
    use std::io::Read;
    use std::path::Path;

    fn opts(dir: &Path, patients: u64, seed: u64, gzip: bool, ann: bool) -> SampleOptions {
        SampleOptions {
            patients,
            seed,
            out: dir.join("out"),
            gzip,
            annotations: ann.then(|| dir.join("notes.ndjson")),
        }
    }

    fn run(o: &SampleOptions, threads: usize) -> SampleSummary {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build();
        let pool = pool.unwrap_or_else(|e| panic!("thread pool: {e}"));
        pool.install(|| generate(o, &|_, _| {}))
            .unwrap_or_else(|e| panic!("generate: {e}"))
    }

    fn read_all(files: &[PathBuf]) -> Vec<(String, Vec<u8>)> {
        files
            .iter()
            .map(|f| {
                let name = f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (
                    name,
                    std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())),
                )
            })
            .collect()
    }

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
    }

    fn valid_id(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    }

    fn collect_refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("reference", Value::String(s)) => out.push(s.clone()),
                        _ => collect_refs(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn same_seed_same_bytes_whatever_the_thread_count() {
        let (a, b) = (tmp(), tmp());
        // 40 patients = 3 blocks, so block ordering is exercised.
        let sa = run(&opts(a.path(), 40, 7, false, true), 1);
        let sb = run(&opts(b.path(), 40, 7, false, true), 2);
        assert_eq!(sa.resources, sb.resources);
        assert_eq!(sa.bytes, sb.bytes);
        assert_eq!(read_all(&sa.files), read_all(&sb.files));

        let c = tmp();
        let sc = run(&opts(c.path(), 40, 8, false, true), 2);
        let pa = std::fs::read(&sa.files[10]).unwrap_or_default();
        let pc = std::fs::read(&sc.files[10]).unwrap_or_default();
        assert!(sa.files[10].ends_with("Patient.ndjson"));
        assert_ne!(pa, pc, "a different seed must give different patients");

        // The first patients do not depend on the total.
        let d = tmp();
        let sd = run(&opts(d.path(), 5, 7, false, false), 2);
        let pd = std::fs::read(&sd.files[10]).unwrap_or_default();
        assert!(pa.starts_with(&pd));
    }

    #[test]
    fn resources_are_valid_complete_and_resolvable() {
        let dir = tmp();
        let o = opts(dir.path(), 20, 42, false, true);
        let progress_calls = std::sync::Mutex::new(Vec::new());
        let s = generate(&o, &|p, b| {
            progress_calls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((p, b))
        })
        .unwrap_or_else(|e| panic!("generate: {e}"));
        let calls = progress_calls.into_inner().unwrap_or_default();
        assert_eq!(calls.last().map(|c| c.0), Some(20));
        assert!(calls
            .windows(2)
            .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));

        let mut ids: HashSet<String> = HashSet::new();
        let mut refs: Vec<String> = Vec::new();
        let mut patients: HashMap<String, Value> = HashMap::new();
        let mut notes: HashMap<String, (String, String)> = HashMap::new();
        let mut total_bytes = 0;
        for kind in KINDS {
            let path = o.out.join(format!("{}.ndjson", kind.name()));
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            total_bytes += text.len() as u64;
            let n = s.resources.get(kind.name()).copied().unwrap_or(0);
            assert!(n > 0, "no {} generated", kind.name());
            assert_eq!(text.lines().count() as u64, n);
            for line in text.lines() {
                let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
                assert_eq!(v["resourceType"], kind.name());
                let id = v["id"].as_str().unwrap_or_default().to_string();
                assert!(valid_id(&id), "bad id {id}");
                assert_eq!(v["meta"]["versionId"], "1");
                let lu = v["meta"]["lastUpdated"].as_str().unwrap_or_default();
                assert!(
                    lu.ends_with('Z') && lu.len() == 24 && lu <= "2025-06-30T18:00:00.999Z",
                    "{lu}"
                );
                assert!(
                    ids.insert(format!("{}/{id}", kind.name())),
                    "duplicate id {id}"
                );
                collect_refs(&v, &mut refs);
                match kind.name() {
                    "Patient" => {
                        let ident = &v["identifier"][0];
                        assert_eq!(ident["type"]["coding"][0]["code"], "MR");
                        assert!(ident["system"].is_string() && ident["value"].is_string());
                        patients.insert(format!("Patient/{id}"), v);
                    }
                    "DocumentReference" => {
                        let att = &v["content"][0]["attachment"];
                        assert_eq!(att["contentType"], "text/plain");
                        let data = base64::engine::general_purpose::STANDARD
                            .decode(att["data"].as_str().unwrap_or_default())
                            .unwrap_or_else(|e| panic!("base64: {e}"));
                        let note = String::from_utf8(data).unwrap_or_else(|e| panic!("utf8: {e}"));
                        let subject = v["subject"]["reference"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                        assert!(v["context"]["encounter"][0]["reference"].is_string());
                        notes.insert(id, (subject, note));
                    }
                    "Observation" => {
                        let q = &v["valueQuantity"];
                        assert!(q.is_object() || v["component"].is_array());
                        if q.is_object() {
                            assert_eq!(q["system"], "http://unitsofmeasure.org");
                        }
                    }
                    "DiagnosticReport" => {
                        assert!(v["result"].as_array().is_some_and(|r| !r.is_empty()))
                    }
                    "ExplanationOfBenefit" => assert!(v["claim"]["reference"]
                        .as_str()
                        .is_some_and(|r| r.starts_with("Claim/"))),
                    _ => {}
                }
            }
        }
        assert_eq!(s.bytes, total_bytes);
        assert_eq!(patients.len(), 20);
        assert!(!refs.is_empty());
        for r in &refs {
            assert!(ids.contains(r), "dangling reference {r}");
        }

        // Notes mention their patient; annotations match the decoded text.
        for (subject, note) in notes.values() {
            let p = &patients[subject];
            let family = p["name"][0]["family"].as_str().unwrap_or_default();
            let given = p["name"][0]["given"][0].as_str().unwrap_or_default();
            assert!(
                note.contains(family) || note.contains(given),
                "note without the patient's name: {note}"
            );
        }
        let ann = std::fs::read_to_string(dir.path().join("notes.ndjson")).unwrap_or_default();
        assert_eq!(ann.lines().count(), notes.len());
        let mut kinds_seen = HashSet::new();
        for line in ann.lines() {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let (subject, note) = &notes[v["id"].as_str().unwrap_or_default()];
            assert_eq!(v["patient"].as_str(), Some(subject.as_str()));
            let mut last_end = 0;
            for sp in v["spans"].as_array().into_iter().flatten() {
                let (start, end) = (
                    sp["start"].as_u64().unwrap_or(0) as usize,
                    sp["end"].as_u64().unwrap_or(0) as usize,
                );
                assert!(start >= last_end && end > start, "{sp}");
                assert_eq!(note.get(start..end), sp["text"].as_str(), "{sp}");
                kinds_seen.insert(sp["type"].as_str().unwrap_or_default().to_string());
                last_end = end;
            }
            let p = &patients[subject];
            let family = p["name"][0]["family"].as_str().unwrap_or_default();
            let given = p["name"][0]["given"][0].as_str().unwrap_or_default();
            assert!(
                v["spans"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|sp| sp["type"] == "NAME"
                        && sp["text"]
                            .as_str()
                            .is_some_and(|t| t.contains(family) || t.contains(given))),
                "no NAME span for the patient: {line}"
            );
        }
        for k in [
            "NAME", "DATE", "PHONE", "MRN", "ADDRESS", "CITY", "STATE", "ZIP", "AGE", "EMAIL",
        ] {
            assert!(kinds_seen.contains(k), "no {k} span in 20 patients");
        }
    }

    #[test]
    fn gzip_output_decodes_to_the_plain_output() {
        let (a, b) = (tmp(), tmp());
        let plain = run(&opts(a.path(), 35, 3, false, false), 2);
        let gz = run(&opts(b.path(), 35, 3, true, false), 2);
        assert_eq!(plain.resources, gz.resources);
        assert!(gz.bytes < plain.bytes);
        for (p, g) in plain.files.iter().zip(&gz.files) {
            assert!(g.to_string_lossy().ends_with(".ndjson.gz"));
            let mut d = flate2::read::GzDecoder::new(
                std::fs::File::open(g).unwrap_or_else(|e| panic!("{e}")),
            );
            let mut out = Vec::new();
            d.read_to_end(&mut out)
                .unwrap_or_else(|e| panic!("{}: {e}", g.display()));
            assert_eq!(out, std::fs::read(p).unwrap_or_default(), "{}", g.display());
        }
    }

    #[test]
    fn bad_options_are_errors() {
        let dir = tmp();
        let e = generate(&opts(dir.path(), 0, 1, false, false), &|_, _| {});
        assert!(matches!(e, Err(SampleError::InvalidOptions(_))));
        let mut o = opts(dir.path(), 1, 1, false, false);
        o.annotations = Some(o.out.join("Patient.ndjson"));
        assert!(matches!(
            generate(&o, &|_, _| {}),
            Err(SampleError::InvalidOptions(_))
        ));
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap_or_else(|e| panic!("{e}"));
        let o = SampleOptions {
            patients: 1,
            seed: 1,
            out: blocker.join("sub"),
            gzip: false,
            annotations: None,
        };
        match generate(&o, &|_, _| {}) {
            Err(e @ SampleError::Io { .. }) => assert!(e.to_string().contains("sub"), "{e}"),
            other => panic!("expected an I/O error, got {:?}", other.map(|s| s.bytes)),
        }
    }
}
