//! Orchestration of a run: source → line splitting → parse and check on a rayon pool →
//! reordering → every sink, over bounded channels, then the conservation check, then commit.
//!
//! Memory is bounded by design: the reader takes a token from a fixed pool before it sends a
//! chunk, and the collector returns it once the batch has been handed to the sinks, whose own
//! channels are bounded too. So at most `tokens` chunks are between reader and sinks whatever
//! the input size. Batches are shared by `Arc`; a resource's bytes are never copied between
//! the source buffer and the encoders.
//!
//! Acknowledgements: every sink reports per-type record counts in [`SinkStats`]; the run
//! compares them with what it dispatched and with what was read, and commits (makes files
//! visible) only when `read + unbundled = written + dead_lettered + filtered + bundles_consumed`
//! holds for every type (the last terms are 0 unless `[transform] unbundle` is on) and `read`
//! sums to the non-blank lines the workers saw.
//!
//! With `[transform] dedupe` the input is read twice: a first pass without sinks builds the
//! dedupe index, the second writes (see `stage::transform::dedupe`).

pub mod complete;
pub mod progress;
pub mod report;

use crate::batch::{Batch, BufPool, Chunk, FilterReason};
use crate::config::{OnInvalid, ParquetLayout, Plan, SinkKindPlan, SourcePlan};
use crate::deid::text::{KnownIndex, TextReport, KNOWN_TYPES};
use crate::exit::ExitCode;
use crate::fhir::{resource_type_index, RESOURCE_TYPES};
use crate::sink::dead_letter::DeadLetterSink;
use crate::sink::fhir_import::FhirImportSink;
use crate::sink::manifest::RunInfo;
use crate::sink::ndjson::NdjsonSink;
use crate::sink::parquet::views::ViewsSink;
use crate::sink::parquet::ParquetSink;
use crate::sink::{Sink, SinkError, SinkStats, TYPE_SLOTS, UNKNOWN_TYPE_SLOT};
use crate::source::azure_blob::{BlobSource, Download};
use crate::source::export_manifest::ManifestSource;
use crate::source::local::LocalSource;
use crate::source::{Input, SourceError};
use crate::stage::transform::dedupe::{self, DedupeIndex};
use crate::stage::transform::{Mode, Transformer};
use crate::stage::Checker;
use crossbeam_channel::{bounded, Receiver, Sender};
use progress::Progress;
use report::{
    BytesReport, Counts, DedupeReport, Durations, RunReport, SinkReport, Violation, CONSERVATION,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Options of a run that are not part of the pipeline definition.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Draw progress bars (still hidden when stderr is not a terminal).
    pub progress: bool,
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A sink failed.
    #[error("sink `{sink}`: {source}")]
    Sink {
        /// Sink name.
        sink: String,
        /// The cause.
        #[source]
        source: SinkError,
    },
    /// An invalid line with `on_invalid = "fail"`.
    #[error("{file}:{line}: {reason} (validate.on_invalid = \"fail\" stops the run; use \"dead_letter\" to set such lines aside)")]
    InvalidInput {
        /// Source file.
        file: String,
        /// Line number.
        line: u64,
        /// Why.
        reason: String,
    },
    /// The conservation check failed.
    #[error("conservation check failed: {0}")]
    Conservation(String),
    /// The source announced other counts than were read (export manifest `count`).
    #[error("{0}")]
    SourceIncomplete(String),
    /// The output was committed but the export watermark could not be written.
    #[error("the output was committed, but {0}; the next run exports the same window again")]
    State(SourceError),
    /// A worker thread panicked.
    #[error("internal error: {0}")]
    Internal(String),
    /// The plan uses a component whose data movement is not built yet.
    #[error("{0} can be checked (`fhirpipe check`, `fhirpipe doctor`) but not run yet: its data movement is planned in issue 5")]
    NotRunnable(String),
}

impl RunError {
    /// The exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            RunError::Source(_) | RunError::Sink { .. } | RunError::State(_) => ExitCode::Io,
            RunError::SourceIncomplete(_) => ExitCode::SourceIncomplete,
            RunError::InvalidInput { .. } => ExitCode::InvalidInput,
            RunError::Conservation(_) => ExitCode::Conservation,
            RunError::Internal(_) => ExitCode::Internal,
            RunError::NotRunnable(_) => ExitCode::Usage,
        }
    }
}

struct NamedSink {
    name: String,
    kind: &'static str,
    path: String,
    sink: Box<dyn Sink>,
}

fn type_key(slot: usize) -> String {
    if slot == UNKNOWN_TYPE_SLOT {
        "_unknown".to_string()
    } else {
        RESOURCE_TYPES[slot].to_string()
    }
}

fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    crate::util::calendar::rfc3339_utc(secs)
}

fn open_sinks(
    plan: &Plan,
    run_id: &str,
    started: &str,
    opts: &RunOptions,
) -> Result<Vec<NamedSink>, RunError> {
    let run = RunInfo {
        run_id: run_id.to_string(),
        pipeline: plan.name.clone(),
        started: started.to_string(),
    };
    let mut sinks = Vec::new();
    for s in &plan.sinks {
        let wrap = |e| RunError::Sink {
            sink: s.name.clone(),
            source: e,
        };
        let (kind, path, sink): (&'static str, String, Box<dyn Sink>) = match &s.kind {
            SinkKindPlan::Parquet(p) if p.layout == ParquetLayout::Views => (
                "parquet",
                p.path.to_string(),
                Box::new(
                    ViewsSink::create(p, run_id, &plan.storage)
                        .map_err(wrap)?
                        .with_run(run.clone()),
                ),
            ),
            SinkKindPlan::Parquet(p) => (
                "parquet",
                p.path.to_string(),
                Box::new(
                    ParquetSink::create(p, run_id, &plan.storage)
                        .map_err(wrap)?
                        .with_run(run.clone()),
                ),
            ),
            SinkKindPlan::Ndjson(n) => (
                "ndjson",
                n.path.to_string(),
                Box::new(NdjsonSink::create(n, run_id, &plan.storage).map_err(wrap)?),
            ),
            SinkKindPlan::FhirImport(p) => (
                "fhir_import",
                format!("{}/$import", p.endpoint.url),
                Box::new(
                    FhirImportSink::create(&s.name, p, run_id, &plan.storage)
                        .map_err(wrap)?
                        .with_progress(opts.progress),
                ),
            ),
        };
        sinks.push(NamedSink {
            name: s.name.clone(),
            kind,
            path,
            sink,
        });
    }
    if let Some(d) = &plan.dead_letter {
        sinks.push(NamedSink {
            name: "dead_letter".into(),
            kind: "dead_letter",
            path: d.path.to_string(),
            sink: Box::new(
                DeadLetterSink::create(d, run_id, &plan.storage).map_err(|e| RunError::Sink {
                    sink: "dead_letter".into(),
                    source: e,
                })?,
            ),
        });
    }
    Ok(sinks)
}

/// What the collector counted while dispatching.
struct Tally {
    read: Vec<u64>,
    unbundled: Vec<u64>,
    consumed: Vec<u64>,
    dispatched: Vec<u64>,
    rejected: Vec<u64>,
    filtered: Vec<u64>,
    filtered_by: Vec<[u64; 3]>,
    /// Records that went through `[deidentify]`.
    deidentified: Vec<u64>,
    /// Free-text PHI counts of `[deidentify.text]`.
    text: crate::phi::carriers::CarrierStats,
    /// Non-blank lines, as the workers counted them.
    lines: u64,
    /// Non-blank lines per source file index (export manifests check their counts).
    file_lines: Vec<u64>,
    blank_lines: u64,
    input_text: u64,
}

/// Runs a checked plan. Always returns a report; `report.exit_code` says how it ended.
pub fn run(plan: &Plan, opts: &RunOptions) -> RunReport {
    let started = Instant::now();
    let started_at = now_rfc3339();
    let mut report = RunReport {
        pipeline: plan.name.clone(),
        definition: plan.file.display().to_string(),
        status: "failed".into(),
        exit_code: ExitCode::Internal.code(),
        error: None,
        started_at,
        conservation: CONSERVATION,
        totals: Counts::default(),
        blank_lines: 0,
        types: BTreeMap::new(),
        deidentified: BTreeMap::new(),
        deidentify_text: None,
        sinks: BTreeMap::new(),
        bytes: BytesReport::default(),
        dedupe: None,
        durations: Durations::default(),
        imports: BTreeMap::new(),
        conservation_ok: false,
        violations: Vec::new(),
        export: None,
    };
    let result = execute(plan, opts, &mut report);
    report.durations.total_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(()) => {
            let export_errors = report
                .export
                .as_ref()
                .is_some_and(|e| e.errors.outcomes > 0);
            let code = if report.imports.values().any(|i| !i.ok) {
                report.status = "import_incomplete".into();
                ExitCode::ImportIncomplete
            } else if report.totals.dead_lettered > 0 || export_errors {
                report.status = if report.totals.dead_lettered > 0 {
                    "success_with_dead_letters".into()
                } else {
                    "success_with_export_errors".into()
                };
                ExitCode::DeadLettered
            } else {
                report.status = "success".into();
                ExitCode::Success
            };
            report.exit_code = code.code();
        }
        Err(e) => {
            report.status = "failed".into();
            report.exit_code = e.exit_code().code();
            report.error = Some(e.to_string());
        }
    }
    report
}

fn execute(plan: &Plan, opts: &RunOptions, report: &mut RunReport) -> Result<(), RunError> {
    let source = match &plan.source {
        SourcePlan::Local { paths, .. } => Input::Local(LocalSource::open(paths)?),
        SourcePlan::AzureBlob {
            urls,
            concurrency,
            range_size,
            ..
        } => Input::Blob(BlobSource::open(
            urls,
            &plan.storage,
            &|k| std::env::var(k).ok(),
            Download {
                concurrency: *concurrency,
                range_size: *range_size,
            },
        )?),
        SourcePlan::FhirExport(p) => {
            let env = |k: &str| std::env::var(k).ok();
            let m = crate::source::fhir_export::start(p, &plan.storage, &env, opts.progress)?;
            Input::Manifest(Box::new(m))
        }
        SourcePlan::ExportManifest(p) => {
            let env = |k: &str| std::env::var(k).ok();
            Input::Manifest(Box::new(ManifestSource::load(p, &plan.storage, &env)?))
        }
    };
    let types = plan.source.types();
    report.bytes.input_files = source.file_count() as u64;
    let run_id = format!(
        "{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let mut sinks = open_sinks(plan, &run_id, &report.started_at, opts)?;

    // Free text: a first pass over the person files builds the known-PHI index.
    let text = plan.deidentify.as_ref().and_then(|(_, d)| d.text.as_ref());
    let mut known = None;
    if let Some(t) = text {
        let mut r = TextReport::new(t.operation());
        if t.known {
            let started = Instant::now();
            let ix = match known_phi_pass(plan, &source) {
                Ok(ix) => ix,
                Err(e) => {
                    for s in &mut sinks {
                        s.sink.abort();
                    }
                    return Err(e);
                }
            };
            r.known_resources = Some(ix.resources());
            report.durations.known_phi_ms = Some(started.elapsed().as_millis() as u64);
            known = Some(Arc::new(ix));
        }
        report.deidentify_text = Some(r);
    }

    // Dedupe: a first pass without sinks finds the winners.
    let mut index = None;
    if plan.transform.as_ref().is_some_and(|t| t.dedupe) {
        let t = Instant::now();
        let mut builder = DedupeIndex::new();
        let bars = Progress::new(opts.progress, source.total_bytes(), &[]);
        let first = pump(
            plan,
            &source,
            types,
            known.as_ref(),
            &mut [],
            &bars,
            Pass::Collect(&mut builder),
        );
        bars.finish();
        if let Err(e) = first.result {
            for s in &mut sinks {
                s.sink.abort();
            }
            return Err(e);
        }
        report.dedupe = Some(DedupeReport {
            candidates: builder.offered(),
            distinct: builder.len() as u64,
            first_pass_ms: t.elapsed().as_millis() as u64,
        });
        index = Some(Arc::new(builder));
    }

    let names: Vec<String> = sinks.iter().map(|s| s.name.clone()).collect();
    let progress = Progress::new(opts.progress, source.total_bytes(), &names);
    let outcome = pump(
        plan,
        &source,
        types,
        known.as_ref(),
        &mut sinks,
        &progress,
        Pass::Emit(index),
    );
    progress.finish();
    report.bytes.read = outcome.bytes_read;
    report.durations.read_ms = outcome.read_ms;
    report.durations.parse_ms = outcome.parse_ms;

    let (tally, stats) = match outcome.result {
        Ok(v) => v,
        Err(e) => {
            for s in &mut sinks {
                s.sink.abort();
            }
            return Err(e);
        }
    };
    report.bytes.input_text = tally.input_text;
    report.blank_lines = tally.blank_lines;
    if let Some(r) = report.deidentify_text.as_mut() {
        r.add(&tally.text);
    }

    // Conservation, per type and per sink.
    let dl_index = plan.dead_letter.as_ref().map(|_| sinks.len() - 1);
    let mut violations = Vec::new();
    for slot in 0..TYPE_SLOTS {
        let dead = match dl_index {
            Some(i) => stats[i].0.records[slot],
            None => 0,
        };
        if dead != tally.rejected[slot] {
            violations.push(Violation {
                type_name: type_key(slot),
                detail: format!(
                    "{} lines rejected but {} written to the dead letter",
                    tally.rejected[slot], dead
                ),
            });
        }
        for (i, s) in sinks.iter().enumerate() {
            if Some(i) == dl_index {
                continue;
            }
            let w = stats[i].0.records[slot];
            if w != tally.dispatched[slot] {
                violations.push(Violation {
                    type_name: type_key(slot),
                    detail: format!(
                        "sink `{}` wrote {w} of {} records",
                        s.name, tally.dispatched[slot]
                    ),
                });
            }
        }
        let [by_type, by_where, by_duplicate] = tally.filtered_by[slot];
        let c = Counts {
            read: tally.read[slot],
            unbundled: tally.unbundled[slot],
            written: tally.dispatched[slot],
            dead_lettered: dead,
            filtered: tally.filtered[slot],
            bundles_consumed: tally.consumed[slot],
            filtered_by: report::FilteredBy {
                types: by_type,
                where_: by_where,
                duplicate: by_duplicate,
            },
        };
        if c != Counts::default() {
            if !c.balanced() {
                violations.push(Violation {
                    type_name: type_key(slot),
                    detail: format!(
                        "read {} + unbundled {} ≠ written {} + dead-lettered {} + filtered {} + bundles consumed {}",
                        c.read, c.unbundled, c.written, c.dead_lettered, c.filtered, c.bundles_consumed
                    ),
                });
            }
            report.totals.add(&c);
            report.types.insert(type_key(slot), c);
            if tally.deidentified[slot] > 0 {
                report
                    .deidentified
                    .insert(type_key(slot), tally.deidentified[slot]);
            }
        }
    }
    // Every resource written passed dedupe as its key's winner; fewer or more means the
    // two passes did not see the same input.
    if let Some(d) = &report.dedupe {
        if report.totals.written != d.distinct {
            violations.push(Violation {
                type_name: "_dedupe".into(),
                detail: format!(
                    "the first pass found {} distinct type/id but {} were written (did the input change during the run?)",
                    d.distinct, report.totals.written
                ),
            });
        }
    }
    if report.totals.read != tally.lines {
        violations.push(Violation {
            type_name: "_total".into(),
            detail: format!(
                "{} non-blank lines but {} counted as read",
                tally.lines, report.totals.read
            ),
        });
    }
    for (i, s) in sinks.iter().enumerate() {
        report.sinks.insert(
            s.name.clone(),
            SinkReport {
                kind: s.kind,
                path: s.path.clone(),
                records: stats[i].0.records.iter().sum(),
                bytes: stats[i].0.bytes,
                files: stats[i].0.files.clone(),
                busy_ms: stats[i].1,
            },
        );
    }
    // An export manifest's counts against the lines read from each file.
    let mut incomplete = None;
    if let Input::Manifest(m) = &source {
        let check = match m.check(&tally.file_lines) {
            Ok(c) => c,
            Err(e) => {
                for s in &mut sinks {
                    s.sink.abort();
                }
                return Err(e.into());
            }
        };
        if let Some(first) = check.count_mismatches.first() {
            incomplete = Some(format!(
                "the export manifest announces {} {} resources in {} but {} lines were read ({} files differ; nothing was committed, the state file was not advanced)",
                first.count.unwrap_or(0),
                first.type_name,
                first.url,
                first.read,
                check.count_mismatches.len()
            ));
        }
        report.export = Some(check);
    }
    report.conservation_ok = violations.is_empty();
    report.violations = violations;
    if !report.conservation_ok {
        for s in &mut sinks {
            s.sink.abort();
        }
        let first = &report.violations[0];
        return Err(RunError::Conservation(format!(
            "{}: {} ({} problems; nothing was committed)",
            first.type_name,
            first.detail,
            report.violations.len()
        )));
    }

    if let Some(msg) = incomplete {
        for s in &mut sinks {
            s.sink.abort();
        }
        return Err(RunError::SourceIncomplete(msg));
    }

    // `$import` sinks first: their commit is the import, which can still fail (a refused
    // kick-off); the other outputs are committed only after it went through.
    let commit_start = Instant::now();
    let mut order: Vec<usize> = (0..sinks.len())
        .filter(|&i| sinks[i].kind == "fhir_import")
        .collect();
    order.extend((0..sinks.len()).filter(|&i| sinks[i].kind != "fhir_import"));
    let mut failed = None;
    for (k, &i) in order.iter().enumerate() {
        if let Err(e) = sinks[i].sink.commit() {
            for &j in &order[k + 1..] {
                sinks[j].sink.abort();
            }
            failed = Some(RunError::Sink {
                sink: sinks[i].name.clone(),
                source: e,
            });
            break;
        }
    }
    for s in &mut sinks {
        if let Some(r) = s.sink.import_report() {
            report.imports.insert(s.name.clone(), r);
        }
    }
    report.durations.commit_ms = commit_start.elapsed().as_millis() as u64;
    if let Some(e) = failed {
        return Err(e);
    }
    if let Input::Manifest(m) = &source {
        let env = |k: &str| std::env::var(k).ok();
        let written = crate::source::fhir_export::save_state(m, &plan.name, &plan.storage, &env)
            .map_err(RunError::State)?;
        if let Some(st) = report.export.as_mut().and_then(|e| e.state.as_mut()) {
            st.written = written;
        }
    }
    Ok(())
}

struct PumpOutcome {
    result: Result<(Tally, Vec<(SinkStats, u64)>), RunError>,
    bytes_read: u64,
    read_ms: u64,
    parse_ms: u64,
}

/// The first pass of `[deidentify.text]` with `known = true`: reads the Patient,
/// RelatedPerson, Practitioner and Organization files of the input (by the manifest's type,
/// else by file name) and indexes their PHI by reference. Lines that are not JSON are left to
/// the main pass, which dead-letters them.
fn known_phi_pass(plan: &Plan, source: &Input) -> Result<KnownIndex, RunError> {
    let select_named = |f: &crate::batch::SourceFile, ty: Option<&str>| -> bool {
        KNOWN_TYPES.contains(&ty.unwrap_or_else(|| crate::source::type_of_file_name(&f.name)))
    };
    let pool = BufPool::new(4, plan.chunk_size);
    let bytes = AtomicU64::new(0);
    let mut index = KnownIndex::new();
    source.stream_selected(
        &select_named,
        plan.chunk_size,
        plan.max_line_size,
        &bytes,
        &pool,
        &mut |chunk| {
            for line in chunk.data.split(|&b| b == b'\n') {
                if line.iter().any(|b| !b.is_ascii_whitespace()) {
                    index.add_json(line);
                }
            }
            true
        },
    )?;
    Ok(index)
}

/// What the collector sends each sink, in dispatch order.
#[derive(Clone)]
enum SinkMsg {
    /// Records to write (and, for the dead letter, rejects).
    Batch(Arc<Batch>),
    /// No more records of these types are expected ([`complete::Completion`]).
    TypesDone(Arc<[crate::fhir::TypeIdx]>),
}

/// Which pass a [`pump`] is.
enum Pass<'a> {
    /// Dedupe's first pass: no sinks; candidates go into the index.
    Collect(&'a mut DedupeIndex),
    /// The writing pass, with dedupe's index when there is one.
    Emit(Option<Arc<DedupeIndex>>),
}

/// Moves all data from the source through the workers to the sinks.
fn pump(
    plan: &Plan,
    source: &Input,
    types: Option<&[crate::fhir::TypeIdx]>,
    known: Option<&Arc<KnownIndex>>,
    sinks: &mut [NamedSink],
    progress: &Progress,
    pass: Pass<'_>,
) -> PumpOutcome {
    let (mode, mut collect) = match pass {
        Pass::Collect(ix) => (Mode::Collect, Some(ix)),
        Pass::Emit(ix) => (Mode::Emit(ix), None),
    };
    let bundle_slot = resource_type_index("Bundle").map(usize::from);
    let threads = plan.threads.max(1);
    let level = plan.validate_level;
    let tokens = threads * 2 + 2;
    let (token_tx, token_rx) = bounded::<()>(tokens);
    for _ in 0..tokens {
        let _ = token_tx.send(());
    }
    let (chunk_tx, chunk_rx) = bounded::<Chunk>(tokens);
    // Chunks in flight plus those the sinks still hold (a bounded(2) inbox and one in hand).
    let buffers = BufPool::new(tokens + 4, plan.chunk_size);
    let (batch_tx, batch_rx) = bounded::<Batch>(tokens);
    let bytes_read = AtomicU64::new(0);
    let parse_ns = AtomicU64::new(0);
    let mut read_ms = 0;

    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("fhirpipe-check-{i}"))
        .build()
    {
        Ok(p) => p,
        Err(e) => {
            return PumpOutcome {
                result: Err(RunError::Internal(format!(
                    "cannot start worker threads: {e}"
                ))),
                bytes_read: 0,
                read_ms: 0,
                parse_ms: 0,
            }
        }
    };

    let result = std::thread::scope(|scope| {
        // Sinks: one thread each, bounded inbox.
        let mut sink_txs: Vec<Sender<SinkMsg>> = Vec::new();
        let mut sink_handles = Vec::new();
        for (i, ns) in sinks.iter_mut().enumerate() {
            let (tx, rx): (Sender<SinkMsg>, Receiver<SinkMsg>) = bounded(2);
            sink_txs.push(tx);
            let bar = progress.sinks[i].clone();
            let is_dead_letter = ns.kind == "dead_letter";
            // Named for `top -H`, perf and debuggers (Linux keeps 15 bytes of it).
            let thread = std::thread::Builder::new().name(format!("sink-{}", ns.name));
            let spawned =
                thread.spawn_scoped(scope, move || -> Result<(SinkStats, u64), SinkError> {
                    let mut busy = std::time::Duration::ZERO;
                    for msg in rx.iter() {
                        let batch = match msg {
                            SinkMsg::Batch(b) => b,
                            SinkMsg::TypesDone(types) => {
                                let t = Instant::now();
                                ns.sink.types_done(&types)?;
                                busy += t.elapsed();
                                continue;
                            }
                        };
                        let t = Instant::now();
                        ns.sink.write(&batch)?;
                        busy += t.elapsed();
                        bar.inc(if is_dead_letter {
                            batch.rejects.len()
                        } else {
                            batch.records.len()
                        } as u64);
                    }
                    let t = Instant::now();
                    let stats = ns.sink.finish()?;
                    busy += t.elapsed();
                    Ok((stats, busy.as_millis() as u64))
                });
            match spawned {
                Ok(h) => sink_handles.push(h),
                Err(e) => {
                    return Err(RunError::Internal(format!(
                        "cannot start a sink thread: {e}"
                    )))
                }
            }
        }

        // Workers on the rayon pool; the scope ends when the chunk channel closes.
        let workers = {
            let pool = &pool;
            let chunk_rx = chunk_rx.clone();
            let batch_tx = batch_tx.clone();
            let parse_ns = &parse_ns;
            scope.spawn(move || {
                pool.scope(|ps| {
                    for _ in 0..threads {
                        let rx = chunk_rx.clone();
                        let tx = batch_tx.clone();
                        let transform = plan
                            .transform
                            .clone()
                            .map(|t| Transformer::new(t, mode.clone()));
                        ps.spawn(move |_| {
                            let mut checker = Checker::new(types)
                                .with_level(level)
                                .with_transform(transform)
                                .with_deidentify(plan.deidentify.as_ref().map(|(_, d)| d.clone()))
                                .with_known_phi(known.cloned());
                            for chunk in rx.iter() {
                                let t = Instant::now();
                                let batch = checker.check(chunk);
                                parse_ns
                                    .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                                if tx.send(batch).is_err() {
                                    break;
                                }
                            }
                        });
                    }
                    drop(chunk_rx);
                    drop(batch_tx);
                });
            })
        };
        drop(chunk_rx);
        drop(batch_tx);

        // Reader.
        let reader = {
            let bytes_read = &bytes_read;
            let read_bar = progress.read.clone();
            let token_rx = token_rx.clone();
            let thread = std::thread::Builder::new().name("reader".into());
            thread.spawn_scoped(scope, move || -> (Result<(), SourceError>, u64) {
                let t = Instant::now();
                let r = source.stream(
                    plan.chunk_size,
                    plan.max_line_size,
                    bytes_read,
                    &buffers,
                    &mut |chunk| {
                        read_bar.set_position(bytes_read.load(Ordering::Relaxed));
                        token_rx.recv().is_ok() && chunk_tx.send(chunk).is_ok()
                    },
                );
                read_bar.set_position(bytes_read.load(Ordering::Relaxed));
                drop(chunk_tx);
                (r, t.elapsed().as_millis() as u64)
            })
        };
        drop(token_rx);
        let reader = match reader {
            Ok(h) => h,
            Err(e) => {
                return Err(RunError::Internal(format!(
                    "cannot start the reader thread: {e}"
                )))
            }
        };

        // Collector: reorder, count, dispatch.
        let mut tally = Tally {
            read: vec![0; TYPE_SLOTS],
            unbundled: vec![0; TYPE_SLOTS],
            consumed: vec![0; TYPE_SLOTS],
            dispatched: vec![0; TYPE_SLOTS],
            rejected: vec![0; TYPE_SLOTS],
            filtered: vec![0; TYPE_SLOTS],
            filtered_by: vec![[0; 3]; TYPE_SLOTS],
            deidentified: vec![0; TYPE_SLOTS],
            text: Default::default(),
            lines: 0,
            file_lines: Vec::new(),
            blank_lines: 0,
            input_text: 0,
        };
        let unbundle = plan.transform.as_ref().is_some_and(|t| t.unbundle);
        let mut completion = complete::Completion::new(&source.file_types(), unbundle);
        let mut pending: BTreeMap<u64, Batch> = BTreeMap::new();
        let mut next = 0u64;
        let mut failure: Option<RunError> = None;
        'collect: for batch in batch_rx.iter() {
            pending.insert(batch.seq, batch);
            while let Some(batch) = pending.remove(&next) {
                next += 1;
                for r in &batch.records {
                    let slot = r.type_idx as usize;
                    match r.entry {
                        Some(_) => tally.unbundled[slot] += 1,
                        None => tally.read[slot] += 1,
                    }
                    tally.dispatched[slot] += 1;
                    if plan.deidentify.is_some() {
                        tally.deidentified[slot] += 1;
                    }
                }
                for r in &batch.rejects {
                    let slot = r.type_idx.map(usize::from).unwrap_or(UNKNOWN_TYPE_SLOT);
                    match r.entry {
                        Some(_) => tally.unbundled[slot] += 1,
                        None => tally.read[slot] += 1,
                    }
                    tally.rejected[slot] += 1;
                }
                for f in &batch.filtered {
                    let slot = f.type_idx as usize;
                    match f.from_entry {
                        true => tally.unbundled[slot] += 1,
                        false => tally.read[slot] += 1,
                    }
                    tally.filtered[slot] += 1;
                    tally.filtered_by[slot][match f.reason {
                        FilterReason::Type => 0,
                        FilterReason::Where => 1,
                        FilterReason::Duplicate => 2,
                    }] += 1;
                }
                if let (Some(b), n @ 1..) = (bundle_slot, batch.bundles_consumed) {
                    tally.read[b] += n;
                    tally.consumed[b] += n;
                }
                tally.lines += batch.lines;
                tally.text.merge(&batch.text);
                let fi = batch.file.index;
                if tally.file_lines.len() <= fi {
                    tally.file_lines.resize(fi + 1, 0);
                }
                tally.file_lines[fi] += batch.lines;
                if let Some(ix) = collect.as_deref_mut() {
                    for (i, r) in batch.records.iter().enumerate() {
                        ix.offer(
                            dedupe::key(r.type_idx, batch.id(r)),
                            r.last_updated,
                            dedupe::position(batch.seq, i as u32),
                        );
                    }
                }
                tally.blank_lines += batch.blank_lines;
                tally.input_text += batch.input_bytes;
                progress
                    .records
                    .inc((batch.records.len() + batch.rejects.len() + batch.filtered.len()) as u64);
                if plan.on_invalid == OnInvalid::Fail {
                    if let Some(r) = batch.rejects.first() {
                        failure = Some(RunError::InvalidInput {
                            file: batch.file.name.clone(),
                            line: r.line,
                            reason: r.reason.clone(),
                        });
                        break 'collect;
                    }
                }
                // The files before this batch's are passed: the types they completed are
                // announced first, so sinks close those files while later ones are worked on.
                let done = completion.passed(batch.file.index);
                let shared = Arc::new(batch);
                let msgs = (!done.is_empty())
                    .then(|| SinkMsg::TypesDone(done.into()))
                    .into_iter()
                    .chain(std::iter::once(SinkMsg::Batch(shared)));
                for msg in msgs {
                    for tx in &sink_txs {
                        if tx.send(msg.clone()).is_err() {
                            // The sink stopped on an error; its thread reports it below.
                            break 'collect;
                        }
                    }
                }
                let _ = token_tx.send(());
            }
        }
        // Unblock and stop everything upstream if we left early.
        drop(token_tx);
        drop(batch_rx);
        drop(sink_txs);

        let workers_ok = workers.join().is_ok();
        let (read_result, ms) = reader.join().unwrap_or((Ok(()), 0));
        read_ms = ms;
        let mut stats = Vec::new();
        for (i, h) in sink_handles.into_iter().enumerate() {
            match h.join() {
                Ok(Ok(s)) => stats.push(s),
                Ok(Err(e)) => {
                    if failure.is_none() {
                        failure = Some(RunError::Sink {
                            sink: sinks_name(i, &names_of(plan)),
                            source: e,
                        });
                    }
                }
                Err(_) => {
                    failure.get_or_insert(RunError::Internal(format!(
                        "the thread of sink {} panicked",
                        sinks_name(i, &names_of(plan))
                    )));
                }
            }
        }
        if let Err(e) = read_result {
            failure = Some(RunError::Source(e));
        }
        if !workers_ok {
            failure.get_or_insert(RunError::Internal("a parse worker panicked".into()));
        }
        match failure {
            Some(e) => Err(e),
            None if !pending.is_empty() => Err(RunError::Internal(format!(
                "{} batches were left unordered (a worker stopped early)",
                pending.len()
            ))),
            None => Ok((tally, stats)),
        }
    });
    PumpOutcome {
        result,
        bytes_read: bytes_read.load(Ordering::Relaxed),
        read_ms,
        parse_ms: parse_ns.load(Ordering::Relaxed) / 1_000_000,
    }
}

fn names_of(plan: &Plan) -> Vec<String> {
    let mut v: Vec<String> = plan.sinks.iter().map(|s| s.name.clone()).collect();
    if plan.dead_letter.is_some() {
        v.push("dead_letter".into());
    }
    v
}

fn sinks_name(i: usize, names: &[String]) -> String {
    names.get(i).cloned().unwrap_or_else(|| format!("#{i}"))
}
