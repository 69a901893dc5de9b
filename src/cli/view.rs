//! `fhirpipe view run --view FILE --input PATH... --output FILE`: runs one SQL on FHIR
//! ViewDefinition over NDJSON files or folders and writes its rows as Parquet, CSV, NDJSON or
//! a JSON array (by the output's extension). Prints what was read, skipped and written; exit
//! 0 when every line was a resource, 1 when some lines were not (listed), 2 for a bad view,
//! an unknown output extension, a missing input or a view failing on a resource, 3 for I/O.

use crate::exit::ExitCode;
use crate::source::local::LocalSource;
use crate::source::{Input, SourceError};
use crate::view::output::{Format, RowWriter};
use crate::view::run::{run_view, ViewRunError};
use crate::view::View;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `fhirpipe view`.
#[derive(Debug, clap::Args)]
pub struct ViewArgs {
    #[command(subcommand)]
    command: ViewCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ViewCommand {
    /// Run a ViewDefinition over NDJSON input.
    Run {
        /// The ViewDefinition (JSON), e.g. pipelines/views/patient.json.
        #[arg(long, value_name = "FILE")]
        view: PathBuf,
        /// NDJSON files or folders (searched recursively for *.ndjson, *.ndjson.gz).
        #[arg(long, value_name = "PATH", required = true, num_args = 1..)]
        input: Vec<PathBuf>,
        /// The output file: .parquet, .csv, .ndjson or .json.
        #[arg(long, value_name = "FILE")]
        output: PathBuf,
        /// Write the counts as JSON to this file.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
}

fn fail(msg: &str, code: ExitCode) -> i32 {
    let _ = writeln!(std::io::stderr(), "fhirpipe: {msg}");
    code.code()
}

/// Runs `fhirpipe view`; returns the exit code.
pub fn run(a: ViewArgs) -> i32 {
    let ViewCommand::Run {
        view,
        input,
        output,
        report,
    } = a.command;
    let v = match View::from_file(&view) {
        Ok(v) => v,
        Err(e) => return fail(&e.to_string(), ExitCode::Usage),
    };
    let Some(format) = Format::from_path(&output) else {
        return fail(
            &format!(
                "cannot tell the format of {}: use .parquet, .csv, .ndjson or .json",
                output.display()
            ),
            ExitCode::Usage,
        );
    };
    let source = match LocalSource::open(&input) {
        Ok(s) => Input::Local(s),
        Err(e @ (SourceError::NotFound { .. } | SourceError::Empty { .. })) => {
            return fail(&e.to_string(), ExitCode::Usage)
        }
        Err(e) => return fail(&e.to_string(), ExitCode::Io),
    };
    let mut out = match RowWriter::create(&output, format, v.columns()) {
        Ok(w) => w,
        Err(e) => return fail(&e.to_string(), ExitCode::Io),
    };
    let stats = match run_view(&v, &source, &mut out) {
        Ok(s) => s,
        Err(e) => {
            out.abort();
            let code = match e {
                ViewRunError::View { .. } => ExitCode::Usage,
                _ => ExitCode::Io,
            };
            return fail(&e.to_string(), code);
        }
    };
    if let Err(e) = out.finish() {
        return fail(&e.to_string(), ExitCode::Io);
    }
    let mut msg = format!(
        "{}: {} rows from {} {} resources to {}\n",
        v.name().unwrap_or("view"),
        stats.rows,
        stats.resources,
        v.resource(),
        output.display()
    );
    if !stats.skipped.is_empty() {
        let skipped: Vec<String> = stats
            .skipped
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect();
        msg.push_str(&format!(
            "skipped {} resources of other types: {}\n",
            stats.skipped.values().sum::<u64>(),
            skipped.join(", ")
        ));
    }
    if stats.invalid > 0 {
        msg.push_str(&format!(
            "{} lines are not FHIR resources:\n",
            stats.invalid
        ));
        for l in &stats.invalid_lines {
            msg.push_str(&format!("  {}:{}: {}\n", l.file, l.line, l.reason));
        }
    }
    let _ = write!(std::io::stderr(), "{msg}");
    if let Some(p) = report {
        let text = serde_json::to_string_pretty(&stats).unwrap_or_default();
        if let Err(e) = std::fs::write(&p, text + "\n") {
            return fail(
                &format!("cannot write the report {}: {e}", p.display()),
                ExitCode::Io,
            );
        }
    }
    if stats.invalid > 0 {
        ExitCode::DeadLettered.code()
    } else {
        ExitCode::Success.code()
    }
}
