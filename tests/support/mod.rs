//! Shared test support: running the binary, writing pipeline definitions into temp folders,
//! reading reports and Parquet back, and finding `../shared` (fails under CI=true when missing).
#![allow(dead_code)]

pub mod azurite;
pub mod fhir_server;

use std::path::{Path, PathBuf};
use std::process::Output;

/// A [`fhirpipe::http::Sleeper`] that records the waits instead of sleeping them.
#[derive(Default)]
pub struct Recorder(std::sync::Mutex<Vec<std::time::Duration>>);

impl fhirpipe::http::Sleeper for Recorder {
    fn sleep(
        &self,
        d: std::time::Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        self.0.lock().unwrap().push(d);
        Box::pin(async {})
    }
}

impl Recorder {
    /// The waits so far.
    pub fn waits(&self) -> Vec<std::time::Duration> {
        self.0.lock().unwrap().clone()
    }
}

/// The fhirpipe binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fhirpipe"))
}

/// `../shared`, or `None` with a printed reason; panics under CI=true when missing.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("FHIRPIPE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    if dir.join("data").is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!(
            "CI=true but the shared data folder {} is missing",
            dir.display()
        );
    }
    eprintln!(
        "SKIP: shared data folder {} not found; test skipped",
        dir.display()
    );
    None
}

/// A pipeline reading `input` and writing parquet, ndjson and dead letter under `out`.
pub fn pipeline(dir: &Path, input: &Path, out: &Path, extra: &str) -> PathBuf {
    let text = format!(
        r#"[pipeline]
name = "test"
chunk_size = "64KiB"

[source]
kind = "local"
path = "{input}"

[sinks.lake]
kind = "parquet"
path = "{out}/parquet"

[sinks.clean]
kind = "ndjson"
path = "{out}/ndjson"

[dead_letter]
path = "{out}/dead-letter"
{extra}
"#,
        input = input.display(),
        out = out.display()
    );
    let p = dir.join("pipeline.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs the binary with `args`.
pub fn run(args: &[&str]) -> Output {
    std::process::Command::new(bin())
        .args(args)
        .output()
        .expect("run fhirpipe")
}

/// Runs a pipeline with a report; returns (exit code, report JSON, stderr).
pub fn run_pipeline(pipeline: &Path, extra_args: &[&str]) -> (i32, serde_json::Value, String) {
    run_pipeline_env(pipeline, &[], extra_args)
}

/// Runs a pipeline with a report and `env` added to the environment; every other `AZURE_*`
/// variable is removed, so the machine's Azure settings never leak into a test. Returns
/// (exit code, report JSON, stderr).
pub fn run_pipeline_env(
    pipeline: &Path,
    env: &[(&str, &str)],
    extra_args: &[&str],
) -> (i32, serde_json::Value, String) {
    let report = pipeline.with_extension("report.json");
    let _ = std::fs::remove_file(&report);
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("run")
        .arg(pipeline)
        .arg("--report")
        .arg(&report)
        .args(extra_args);
    for (k, _) in std::env::vars() {
        if k.starts_with("AZURE_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .envs(env.iter().copied())
        .output()
        .expect("run fhirpipe");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), json, stderr)
}

/// Rows in every Parquet file under `dir/<Type>/`, per type.
pub fn parquet_rows(dir: &Path) -> std::collections::BTreeMap<String, u64> {
    let mut m = std::collections::BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return m;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !e.path().is_dir() {
            continue;
        }
        let mut n = 0u64;
        for f in std::fs::read_dir(e.path()).unwrap().flatten() {
            let file = std::fs::File::open(f.path()).unwrap();
            let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
            use parquet::file::reader::FileReader;
            n += reader.metadata().file_metadata().num_rows() as u64;
        }
        m.insert(name, n);
    }
    m
}

/// Reads all record batches of the Parquet files of one type.
pub fn parquet_batches(dir: &Path) -> Vec<arrow::array::RecordBatch> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let file = std::fs::File::open(&f).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            out.push(b.unwrap());
        }
    }
    out
}

/// Lines of every file in a folder whose name ends in `ext`, in name order.
pub fn lines_of(dir: &Path, ext: &str) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    let mut lines = Vec::new();
    for f in files {
        if f.to_string_lossy().ends_with(ext) {
            let t = std::fs::read_to_string(&f).unwrap();
            lines.extend(t.lines().map(str::to_string));
        }
    }
    lines
}
