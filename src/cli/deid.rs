//! `fhirpipe deid --config FILE INPUT... --output DIR [--report FILE]`: de-identifies NDJSON
//! files (`.ndjson`, gzip detected by its magic bytes) and single-resource `.json` files with a
//! Microsoft anonymizer configuration, without a pipeline definition. Each input is written to
//! `DIR/<its name>` (`.gz` dropped); blank lines are skipped; a line that is not a valid R4
//! resource goes to `DIR/dead-letter.ndjson` as `{file, line, reason, resourceType}` — without
//! its text, which is the PHI being removed. Exit 0 when every resource was de-identified, 1 when
//! some were dead-lettered, 2 usage or configuration, 3 I/O.

use crate::deid::{DateShiftScope, Deidentifier};
use crate::exit::ExitCode;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// Arguments of `fhirpipe deid`.
#[derive(Debug, clap::Args)]
pub struct DeidArgs {
    /// The anonymizer configuration (Microsoft FHIR-Tools-for-Anonymization format), e.g.
    /// pipelines/deid/safe-harbor.json.
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// NDJSON files (one resource per line) or single-resource .json files.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Folder for the de-identified files and dead-letter.ndjson (created if missing).
    #[arg(long, value_name = "DIR")]
    output: PathBuf,
    /// Write a JSON report (counts per type) here.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Free-text PHI in text.div, Annotation.text and text/plain attachments: `tag` (spans in
    /// the report, text unchanged), `redact` or `surrogate` (key: FHIRPIPE_DEID_TEXT_KEY or
    /// the configuration's cryptoHashKey). Without it free text is left to the rules.
    #[arg(long, value_name = "OP", value_parser = ["tag", "redact", "surrogate"])]
    text: Option<String>,
    /// The replacement of `--text redact`; `{TYPE}` is the category.
    #[arg(
        long,
        value_name = "FMT",
        default_value = "[{TYPE}]",
        requires = "text"
    )]
    text_format: String,
    /// Only these categories (comma-separated: NAME,DATE,PHONE,...); default all.
    #[arg(long, value_name = "LIST", value_delimiter = ',', requires = "text")]
    text_types: Option<Vec<String>>,
    /// Do not read names, addresses and identifiers from the inputs' Patient, RelatedPerson,
    /// Practitioner and Organization resources first (they make names in text recognisable).
    #[arg(long, requires = "text")]
    no_known_phi: bool,
}

/// Counts of one resource type.
#[derive(Debug, Default, Serialize, Clone, Copy)]
struct TypeCounts {
    deidentified: u64,
    dead_lettered: u64,
    /// Replaced by the empty REDACTED resource (`processingErrors = "skip"`).
    skipped: u64,
}

/// The `--report` document.
#[derive(Debug, Default, Serialize)]
struct Report {
    inputs: Vec<String>,
    lines: u64,
    blank_lines: u64,
    deidentified: u64,
    dead_lettered: u64,
    types: BTreeMap<String, TypeCounts>,
    /// Free-text counts (with `--text`).
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<crate::deid::text::TextReport>,
    /// With `--text tag`: every carrier with PHI, where it is and the spans.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    text_spans: Vec<SpansEntry>,
}

/// One carrier's spans in the report (`--text tag`).
#[derive(Debug, Serialize)]
struct SpansEntry {
    file: String,
    line: u64,
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    element: String,
    spans: Vec<crate::phi::Span>,
}

#[derive(Serialize)]
struct DeadLetter<'a> {
    file: &'a str,
    line: u64,
    reason: &'a str,
    #[serde(rename = "resourceType", skip_serializing_if = "Option::is_none")]
    resource_type: Option<&'a str>,
}

const BATCH_LINES: usize = 2048;

struct Ctx<'a> {
    d: &'a Deidentifier,
    known: Option<&'a crate::deid::text::KnownIndex>,
    report: Report,
    dead: std::io::BufWriter<std::fs::File>,
}

/// Runs `fhirpipe deid`; returns the exit code.
pub fn run(a: DeidArgs) -> i32 {
    let fail = |msg: String, code: ExitCode| {
        let _ = writeln!(std::io::stderr(), "fhirpipe: {msg}");
        code.code()
    };
    let mut d = match Deidentifier::from_file(&a.config) {
        Ok(d) => d,
        Err(e) => return fail(e.to_string(), ExitCode::Usage),
    };
    let mut text_report = None;
    if let Some(op) = &a.text {
        let Some(operation) = crate::phi::PhiOperation::from_name(op) else {
            return fail(
                format!("--text {op:?}: use tag, redact or surrogate"),
                ExitCode::Usage,
            );
        };
        let cfg = crate::phi::PhiConfig {
            operation,
            format: a.text_format.clone(),
            types: a.text_types.clone(),
            known: !a.no_known_phi,
            ..Default::default()
        };
        let env = |k: &str| std::env::var(k).ok();
        match crate::deid::text::TextDeid::for_run(&cfg, d.parameters(), &env) {
            Ok(t) => {
                text_report = Some(crate::deid::text::TextReport::new(t.operation()));
                d.text = Some(t);
            }
            Err(e) => return fail(format!("--text: {e}"), ExitCode::Usage),
        }
    }
    let mut names = Vec::new();
    for p in &a.inputs {
        if !p.is_file() {
            return fail(
                format!("{} is not a file (give NDJSON or .json files)", p.display()),
                ExitCode::Usage,
            );
        }
        let name = output_name(p);
        if names.contains(&name) || name == "dead-letter.ndjson" {
            return fail(
                format!(
                    "two inputs would both be written to {}/{name}",
                    a.output.display()
                ),
                ExitCode::Usage,
            );
        }
        names.push(name);
    }
    if let Err(e) = std::fs::create_dir_all(&a.output) {
        return fail(
            format!("cannot create {}: {e}", a.output.display()),
            ExitCode::Io,
        );
    }
    let dl_path = a.output.join("dead-letter.ndjson");
    let dead = match std::fs::File::create(&dl_path) {
        Ok(f) => std::io::BufWriter::new(f),
        Err(e) => {
            return fail(
                format!("cannot create {}: {e}", dl_path.display()),
                ExitCode::Io,
            )
        }
    };
    let known = match (&d.text, &mut text_report) {
        (Some(t), Some(r)) if t.known => match known_phi(&a.inputs) {
            Ok(k) => {
                r.known_resources = Some(k.resources());
                Some(k)
            }
            Err(e) => return fail(e, ExitCode::Io),
        },
        _ => None,
    };
    let mut cx = Ctx {
        d: &d,
        known: known.as_ref(),
        report: Report {
            text: text_report,
            ..Report::default()
        },
        dead,
    };
    for (p, name) in a.inputs.iter().zip(&names) {
        cx.report.inputs.push(p.display().to_string());
        let out = a.output.join(name);
        if let Err(e) = deid_file(&mut cx, p, &out) {
            return fail(e, ExitCode::Io);
        }
    }
    if let Err(e) = cx.dead.flush() {
        return fail(
            format!("cannot write {}: {e}", dl_path.display()),
            ExitCode::Io,
        );
    }
    if cx.report.dead_lettered == 0 {
        let _ = std::fs::remove_file(&dl_path);
    }
    print!("{}", summary(&cx.report, &dl_path));
    if let Some(p) = &a.report {
        let text = serde_json::to_string_pretty(&cx.report).unwrap_or_default();
        if let Err(e) = std::fs::write(p, text + "\n") {
            return fail(
                format!("cannot write the report {}: {e}", p.display()),
                ExitCode::Io,
            );
        }
    }
    if cx.report.dead_lettered > 0 {
        ExitCode::DeadLettered.code()
    } else {
        ExitCode::Success.code()
    }
}

/// The known-PHI index from the inputs: NDJSON files named for a Patient, RelatedPerson,
/// Practitioner or Organization, and every single-resource `.json` file (other types are
/// ignored by the index).
fn known_phi(inputs: &[PathBuf]) -> Result<crate::deid::text::KnownIndex, String> {
    use crate::deid::text::{KnownIndex, KNOWN_TYPES};
    use crate::source::type_of_file_name;
    let mut index = KnownIndex::new();
    for p in inputs {
        if p.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
            index.add_json(text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&text));
            continue;
        }
        if !KNOWN_TYPES.contains(&type_of_file_name(&p.display().to_string())) {
            continue;
        }
        let mut reader = open(p)?;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| format!("cannot read {}: {e}", p.display()))?;
            if n == 0 {
                break;
            }
            if buf.iter().any(|b| !b.is_ascii_whitespace()) {
                index.add_json(&buf);
            }
        }
    }
    Ok(index)
}

fn output_name(p: &Path) -> String {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.strip_suffix(".gz").map(str::to_string).unwrap_or(name)
}

/// The date-shift prefix for an input under `dateShiftScope` file/folder.
fn scope_prefix(d: &Deidentifier, p: &Path) -> String {
    match d.parameters().date_shift_scope {
        DateShiftScope::Resource => String::new(),
        DateShiftScope::File => output_name(p),
        DateShiftScope::Folder => p
            .parent()
            .and_then(|f| std::fs::canonicalize(f).ok())
            .and_then(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default(),
    }
}

fn open(p: &Path) -> Result<Box<dyn BufRead>, String> {
    let mut f = std::fs::File::open(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    let mut magic = [0u8; 2];
    let n = f
        .read(&mut magic)
        .map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    let f = std::fs::File::open(p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
    Ok(if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(f)))
    } else {
        Box::new(BufReader::new(f))
    })
}

fn deid_file(cx: &mut Ctx<'_>, p: &Path, out_path: &Path) -> Result<(), String> {
    let file = p.display().to_string();
    let prefix = scope_prefix(cx.d, p);
    let tmp = out_path.with_extension("partial");
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?,
    );
    let write_err = |e: std::io::Error| format!("cannot write {}: {e}", tmp.display());
    if p.extension().is_some_and(|e| e == "json") {
        // One resource per file (pretty-printed is fine): the whole file is line 1.
        let text = std::fs::read(p).map_err(|e| format!("cannot read {file}: {e}"))?;
        let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&text).to_vec();
        let lines = vec![(1, text)];
        process(cx, &file, &prefix, lines, &mut out)?;
    } else {
        let mut reader = open(p)?;
        let mut line_no = 0u64;
        loop {
            let mut lines = Vec::with_capacity(BATCH_LINES);
            let mut buf = Vec::new();
            while lines.len() < BATCH_LINES {
                buf.clear();
                let n = reader
                    .read_until(b'\n', &mut buf)
                    .map_err(|e| format!("cannot read {file}: {e}"))?;
                if n == 0 {
                    break;
                }
                line_no += 1;
                lines.push((line_no, std::mem::take(&mut buf)));
            }
            if lines.is_empty() {
                break;
            }
            process(cx, &file, &prefix, lines, &mut out)?;
        }
    }
    out.flush().map_err(write_err)?;
    drop(out);
    std::fs::rename(&tmp, out_path).map_err(|e| {
        format!(
            "cannot rename {} to {}: {e}",
            tmp.display(),
            out_path.display()
        )
    })
}

fn process(
    cx: &mut Ctx<'_>,
    file: &str,
    prefix: &str,
    lines: Vec<(u64, Vec<u8>)>,
    out: &mut impl Write,
) -> Result<(), String> {
    let d = cx.d;
    let known = cx.known;
    let results: Vec<_> = lines
        .par_iter()
        .map(|(n, text)| {
            let t = text.trim_ascii();
            if t.is_empty() {
                return (*n, None);
            }
            (*n, Some(d.deidentify_with(t, prefix, known)))
        })
        .collect();
    let r = &mut cx.report;
    for (line, result) in results {
        r.lines += 1;
        match result {
            None => r.blank_lines += 1,
            Some(Ok(mut o)) => {
                if let Some(t) = r.text.as_mut() {
                    t.add(&o.text.stats);
                }
                for s in o.text.spans.drain(..) {
                    r.text_spans.push(SpansEntry {
                        file: file.to_string(),
                        line,
                        resource_type: o.resource_type,
                        element: s.element,
                        spans: s.spans,
                    });
                }
                out.write_all(&o.json)
                    .and_then(|_| out.write_all(b"\n"))
                    .map_err(|e| format!("cannot write output of {file}: {e}"))?;
                let c = r.types.entry(o.resource_type.to_string()).or_default();
                if o.skipped.is_some() {
                    c.skipped += 1;
                } else {
                    c.deidentified += 1;
                }
                r.deidentified += 1;
            }
            Some(Err(e)) => {
                let text = &lines[(line - lines[0].0) as usize].1;
                let ty = resource_type_hint(text);
                let reason = e.to_string();
                let entry = DeadLetter {
                    file,
                    line,
                    reason: &reason,
                    resource_type: ty.as_deref(),
                };
                serde_json::to_writer(&mut cx.dead, &entry)
                    .map_err(|e| format!("cannot write the dead letter: {e}"))?;
                cx.dead
                    .write_all(b"\n")
                    .map_err(|e| format!("cannot write the dead letter: {e}"))?;
                let key = ty.unwrap_or_else(|| "_unknown".into());
                r.types.entry(key).or_default().dead_lettered += 1;
                r.dead_lettered += 1;
            }
        }
    }
    Ok(())
}

/// The `resourceType` of a line that failed, when it parses that far and names an R4 type.
fn resource_type_hint(text: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(text).ok()?;
    let t = v.get("resourceType")?.as_str()?;
    crate::fhir::resource_type_index(t).map(|_| t.to_string())
}

fn summary(r: &Report, dead_letter: &Path) -> String {
    let mut s = format!(
        "{} resources de-identified, {} dead-lettered ({} lines, {} blank)\n",
        r.deidentified, r.dead_lettered, r.lines, r.blank_lines
    );
    if !r.types.is_empty() {
        s.push_str(&format!(
            "  {:<36} {:>12} {:>8} {:>13}\n",
            "type", "deidentified", "skipped", "dead-lettered"
        ));
        for (t, c) in &r.types {
            s.push_str(&format!(
                "  {t:<36} {:>12} {:>8} {:>13}\n",
                c.deidentified, c.skipped, c.dead_lettered
            ));
        }
    }
    if let Some(t) = &r.text {
        s.push_str(&t.summary_line());
    }
    if r.dead_lettered > 0 {
        s.push_str(&format!("dead letters: {}\n", dead_letter.display()));
    }
    s
}
