//! The command line: `run`, `check`, `doctor`, `sample`, `validate`, `fhirpath`, `view`,
//! `parquet`. Parses flags (clap),
//! turns them into checked settings, runs, prints, and returns the exit code. `main` only
//! calls [`main`].

mod doctor;
mod fhirpath;
mod parquet;
mod sample;
mod validate;
mod view;

use crate::config;
use crate::exit::ExitCode;
use crate::run::{self, RunOptions};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;

/// Streaming FHIR R4 bulk-data pipelines: NDJSON in; validated Parquet, NDJSON and dead letter out.
#[derive(Debug, Parser)]
#[command(name = "fhirpipe", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 success; 1 success with dead-lettered lines; 2 usage or \
pipeline definition error; 3 I/O error; 4 conservation check failed; 5 invalid input with \
on_invalid = \"fail\"; 6 internal error; 7 `doctor` found a problem."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline definition.
    Run {
        /// The pipeline definition (TOML), e.g. pipelines/local-sample.toml.
        pipeline: PathBuf,
        /// Override a field: --set sinks.lake.path=/tmp/out (repeatable).
        #[arg(long = "set", value_name = "PATH=VALUE")]
        sets: Vec<String>,
        /// Write the JSON run report to this file.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// No progress bars and no summary table.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Check a pipeline definition and print the plan.
    Check {
        /// The pipeline definition (TOML).
        pipeline: PathBuf,
        /// Override a field: --set sinks.lake.path=/tmp/out (repeatable).
        #[arg(long = "set", value_name = "PATH=VALUE")]
        sets: Vec<String>,
    },
    /// Check the FHIR endpoints of a pipeline: DNS, connection, TLS, /metadata, clock, token, roles.
    Doctor(doctor::DoctorArgs),
    /// Generate realistic synthetic FHIR R4 NDJSON (patients with linked resources and notes).
    Sample(sample::SampleArgs),
    /// Validate NDJSON files/folders or .json resources against the R4 structure.
    Validate(validate::ValidateArgs),
    /// Evaluate a FHIRPath expression on a JSON resource or NDJSON file (stdin when absent).
    Fhirpath(fhirpath::FhirpathArgs),
    /// Run a SQL on FHIR ViewDefinition over NDJSON: `view run --view FILE --input PATH --output FILE`.
    View(view::ViewArgs),
    /// Work with Parquet datasets: `to-ndjson` rebuilds NDJSON from a `schema = "resource"` dataset.
    Parquet(parquet::ParquetArgs),
}

fn env_lookup(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

fn print_err(msg: &str) {
    let _ = writeln!(std::io::stderr(), "fhirpipe: {msg}");
}

/// Runs the command line; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::Usage.code()
            } else {
                ExitCode::Success.code()
            };
        }
    };
    match cli.command {
        Command::Check { pipeline, sets } => match config::load(&pipeline, &sets, &env_lookup) {
            Ok(plan) => {
                print!("{plan}");
                println!("ok: {} is valid", pipeline.display());
                ExitCode::Success.code()
            }
            Err(e) => {
                print_err(&e.to_string());
                ExitCode::Usage.code()
            }
        },
        Command::Run {
            pipeline,
            sets,
            report,
            quiet,
        } => {
            let plan = match config::load(&pipeline, &sets, &env_lookup) {
                Ok(p) => p,
                Err(e) => {
                    print_err(&e.to_string());
                    return ExitCode::Usage.code();
                }
            };
            let r = run::run(&plan, &RunOptions { progress: !quiet });
            let mut code = r.exit_code;
            if let Some(path) = report {
                let text = serde_json::to_string_pretty(&r).unwrap_or_default();
                if let Err(e) = std::fs::write(&path, text + "\n") {
                    print_err(&format!("cannot write the report {}: {e}", path.display()));
                    if code == 0 || code == 1 {
                        code = ExitCode::Io.code();
                    }
                }
            }
            if !quiet {
                let _ = write!(std::io::stderr(), "{}", r.table());
            } else if let Some(e) = &r.error {
                print_err(e);
            }
            code
        }
        Command::Doctor(args) => doctor::run(args),
        Command::Sample(args) => sample::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Fhirpath(args) => fhirpath::run(args),
        Command::View(args) => view::run(args),
        Command::Parquet(args) => parquet::run(args),
    }
}
