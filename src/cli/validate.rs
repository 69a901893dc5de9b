//! `fhirpipe validate PATH... [--report FILE] [--dead-letter FILE]`: structure validation of
//! NDJSON files and folders (`*.ndjson`, `*.ndjson.gz`) and single-resource `*.json` files,
//! without a pipeline definition. Prints counts per type and the most frequent issues; exit
//! code 0 when every resource is valid, 1 when some are not, 2 usage, 3 I/O.

use crate::batch::{Batch, BufPool, Chunk, SourceFile};
use crate::config::ValidateLevel;
use crate::exit::ExitCode;
use crate::fhir::resource_type_name;
use crate::sink::dead_letter::write_entry;
use crate::source::local::{list_files, LocalSource};
use crate::source::{Input, SourceError};
use crate::stage::Checker;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Arguments of `fhirpipe validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// NDJSON files or folders (searched recursively), or single-resource .json files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Write a JSON report (counts and every invalid resource's OperationOutcome) here.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Write every invalid line here, in the pipeline's dead-letter format.
    #[arg(long, value_name = "FILE")]
    dead_letter: Option<PathBuf>,
}

/// Counts of one resource type.
#[derive(Debug, Default, Serialize)]
struct TypeCounts {
    valid: u64,
    invalid: u64,
}

/// The `--report` document.
#[derive(Debug, Default, Serialize)]
struct Report {
    resources: u64,
    valid: u64,
    invalid: u64,
    types: BTreeMap<String, TypeCounts>,
    /// One entry per invalid line: its dead-letter record (file, line, reason, outcome).
    invalid_lines: Vec<serde_json::Value>,
}

fn is_json_name(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "json")
}

struct State {
    checker: Checker,
    report: Report,
    issue_counts: BTreeMap<String, u64>,
    dead_letter: Option<(PathBuf, std::io::BufWriter<std::fs::File>)>,
    line: Vec<u8>,
}

impl State {
    fn take(&mut self, batch: &Batch) -> std::io::Result<()> {
        for r in &batch.records {
            self.report.valid += 1;
            let t = resource_type_name(r.type_idx);
            self.report.types.entry(t.into()).or_default().valid += 1;
        }
        for r in &batch.rejects {
            self.report.invalid += 1;
            let t = r.type_idx.map(resource_type_name).unwrap_or("_unknown");
            self.report.types.entry(t.into()).or_default().invalid += 1;
            match &r.outcome {
                Some(o) => {
                    for i in &o.issue {
                        let key = format!("{}: {}", strip_indexes(&i.expression[0]), i.diagnostics);
                        *self.issue_counts.entry(key).or_default() += 1;
                    }
                }
                None => *self.issue_counts.entry(r.reason.clone()).or_default() += 1,
            }
            self.line.clear();
            write_entry(&mut self.line, &batch.file.name, r).map_err(std::io::Error::other)?;
            if let Some((_, w)) = &mut self.dead_letter {
                w.write_all(&self.line)?;
                w.write_all(b"\n")?;
            }
            if self.report.invalid_lines.len() < 10_000 {
                if let Ok(v) = serde_json::from_slice(&self.line) {
                    self.report.invalid_lines.push(v);
                }
            }
        }
        self.report.resources += (batch.records.len() + batch.rejects.len()) as u64;
        Ok(())
    }
}

/// `Patient.name[0].given[1]` → `Patient.name.given`, to count issues across resources.
fn strip_indexes(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut depth = 0;
    for c in expr.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Runs `fhirpipe validate`; returns the exit code.
pub fn run(a: ValidateArgs) -> i32 {
    let fail = |msg: String, code: ExitCode| {
        let _ = writeln!(std::io::stderr(), "fhirpipe: {msg}");
        code.code()
    };
    let mut json = Vec::new();
    let mut ndjson = Vec::new();
    for p in &a.paths {
        if p.is_dir() {
            if let Err(e) = list_files(p, &|name| name.ends_with(".json"), &mut json) {
                return fail(e.to_string(), ExitCode::Io);
            }
            ndjson.push(p.clone());
        } else if !p.exists() {
            return fail(format!("{} does not exist", p.display()), ExitCode::Usage);
        } else if is_json_name(p) {
            json.push(p.clone());
        } else {
            ndjson.push(p.clone());
        }
    }
    let dead_letter = match &a.dead_letter {
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => Some((p.clone(), std::io::BufWriter::new(f))),
            Err(e) => return fail(format!("cannot create {}: {e}", p.display()), ExitCode::Io),
        },
        None => None,
    };
    let mut st = State {
        checker: Checker::new(None).with_level(ValidateLevel::Structure),
        report: Report::default(),
        issue_counts: BTreeMap::new(),
        dead_letter,
        line: Vec::new(),
    };
    let result = validate_all(&mut st, &json, &ndjson);
    if let Err(msg) = result {
        return fail(msg, ExitCode::Io);
    }
    if let Some((p, w)) = &mut st.dead_letter {
        if let Err(e) = w.flush() {
            return fail(format!("cannot write {}: {e}", p.display()), ExitCode::Io);
        }
    }
    print!("{}", summary(&st));
    if let Some(p) = &a.report {
        let text = serde_json::to_string_pretty(&st.report).unwrap_or_default();
        if let Err(e) = std::fs::write(p, text + "\n") {
            return fail(
                format!("cannot write the report {}: {e}", p.display()),
                ExitCode::Io,
            );
        }
    }
    if st.report.invalid > 0 {
        ExitCode::DeadLettered.code()
    } else {
        ExitCode::Success.code()
    }
}

fn validate_all(st: &mut State, json: &[PathBuf], ndjson: &[PathBuf]) -> Result<(), String> {
    for (i, p) in json.iter().enumerate() {
        let text = std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        // One resource per file, pretty-printed: re-serialize it as one line when it is JSON,
        // otherwise hand the text over as is (the checker reports why it is not).
        let data = match serde_json::from_slice::<serde_json::Value>(&text) {
            Ok(v) => serde_json::to_vec(&v).unwrap_or(text),
            Err(_) => text
                .iter()
                .map(|&b| if b == b'\n' { b' ' } else { b })
                .collect(),
        };
        let batch = st.checker.check(Chunk {
            seq: i as u64,
            file: Arc::new(SourceFile {
                index: i,
                name: p.display().to_string(),
            }),
            first_line: 1,
            data,
            rejects: Vec::new(),
            pool: None,
        });
        st.take(&batch).map_err(|e| e.to_string())?;
    }
    for p in ndjson {
        let source = match LocalSource::open(std::slice::from_ref(p)) {
            Ok(s) => Input::Local(s),
            // A folder with only .json files.
            Err(SourceError::Empty { .. }) if p.is_dir() => continue,
            Err(e) => return Err(e.to_string()),
        };
        let pool = BufPool::new(2, 4 << 20);
        let bytes = AtomicU64::new(0);
        let mut failed = None;
        source
            .stream(4 << 20, 512 << 20, &bytes, &pool, &mut |chunk| {
                let batch = st.checker.check(chunk);
                match st.take(&batch) {
                    Ok(()) => true,
                    Err(e) => {
                        failed = Some(e.to_string());
                        false
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        if let Some(e) = failed {
            return Err(e);
        }
    }
    Ok(())
}

fn summary(st: &State) -> String {
    let r = &st.report;
    let mut s = format!(
        "{} resources: {} valid, {} invalid\n",
        r.resources, r.valid, r.invalid
    );
    if !r.types.is_empty() {
        s.push_str(&format!(
            "  {:<36} {:>10} {:>10}\n",
            "type", "valid", "invalid"
        ));
        for (t, c) in &r.types {
            s.push_str(&format!("  {t:<36} {:>10} {:>10}\n", c.valid, c.invalid));
        }
    }
    if !st.issue_counts.is_empty() {
        let mut top: Vec<(&String, &u64)> = st.issue_counts.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        s.push_str("most frequent issues:\n");
        for (msg, n) in top.into_iter().take(10) {
            s.push_str(&format!("  {n:>8}  {msg}\n"));
        }
    }
    s
}
