//! `fhirpipe sample`: the synthetic data generator's command line.

use crate::exit::ExitCode;
use crate::sample::{generate, SampleError, SampleOptions};
use crate::util::format_bytes;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Arguments of `fhirpipe sample`.
#[derive(Debug, clap::Args)]
pub struct SampleArgs {
    /// Number of patients.
    #[arg(long)]
    patients: u64,
    /// Seed: the same seed and patient count give byte-identical output.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output folder (one <Type>.ndjson per resource type).
    #[arg(long)]
    out: PathBuf,
    /// Write .ndjson.gz files.
    #[arg(long)]
    gzip: bool,
    /// Also write the PHI spans of every clinical note to this NDJSON file (outside --out).
    #[arg(long, value_name = "FILE")]
    annotations: Option<PathBuf>,
}

/// Runs the generator with a progress bar; prints what it wrote.
pub fn run(a: SampleArgs) -> i32 {
    let bar = ProgressBar::new(a.patients);
    if std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(8));
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) =
        ProgressStyle::with_template("   patients [{bar:32}] {pos}/{len} {msg} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let opts = SampleOptions {
        patients: a.patients,
        seed: a.seed,
        out: a.out.clone(),
        gzip: a.gzip,
        annotations: a.annotations.clone(),
    };
    let progress = |done: u64, bytes: u64| {
        bar.set_position(done);
        bar.set_message(format_bytes(bytes));
    };
    match generate(&opts, &progress) {
        Ok(summary) => {
            bar.finish_and_clear();
            let total: u64 = summary.resources.values().sum();
            for (t, n) in &summary.resources {
                println!("{t:<24} {n:>10}");
            }
            println!(
                "wrote {total} resources ({}) for {} patients to {}",
                format_bytes(summary.bytes),
                a.patients,
                a.out.display()
            );
            ExitCode::Success.code()
        }
        Err(e) => {
            bar.finish_and_clear();
            eprintln!("fhirpipe: {e}");
            match e {
                SampleError::InvalidOptions(_) => ExitCode::Usage.code(),
                SampleError::Io { .. } | SampleError::Compress { .. } => ExitCode::Io.code(),
            }
        }
    }
}
