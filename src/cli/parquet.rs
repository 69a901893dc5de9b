//! `fhirpipe parquet to-ndjson DIR`: rebuilds NDJSON from a dataset written with
//! `schema = "resource"` (the way back that proves the layout lossless).

use crate::exit::ExitCode;
use crate::sink::parquet::resource::{dataset_to_ndjson, ToNdjsonError};
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `fhirpipe parquet`.
#[derive(Debug, clap::Args)]
pub struct ParquetArgs {
    #[command(subcommand)]
    command: ParquetCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ParquetCommand {
    /// Rebuild NDJSON from a `schema = "resource"` dataset (<DIR>/<Type>/part-*.parquet).
    ToNdjson {
        /// The dataset folder (the Parquet sink's `path`).
        dir: PathBuf,
        /// Write <OUTPUT>/<Type>.ndjson instead of all resources to stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// Runs `fhirpipe parquet …`; returns the exit code.
pub fn run(a: ParquetArgs) -> i32 {
    match a.command {
        ParquetCommand::ToNdjson { dir, output } => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            match dataset_to_ndjson(&dir, output.as_deref(), &mut lock) {
                Ok(counts) => {
                    let _ = lock.flush();
                    if output.is_some() {
                        let total: u64 = counts.iter().map(|(_, n)| n).sum();
                        for (t, n) in &counts {
                            println!("{t:<24} {n:>10}");
                        }
                        println!("{:<24} {total:>10}", "total");
                    }
                    ExitCode::Success.code()
                }
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "fhirpipe: {e}");
                    match e {
                        ToNdjsonError::Io { .. } => ExitCode::Io.code(),
                        _ => ExitCode::Usage.code(),
                    }
                }
            }
        }
    }
}
