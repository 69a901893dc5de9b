//! `fhirpipe doctor PIPELINE`: prints the checks of each FHIR endpoint and each blob location
//! of a pipeline, each failure with its fix; exit 0 when all pass, 7 when one fails, 2 for a bad definition.

use crate::config;
use crate::doctor::{self, Outcome};
use crate::exit::ExitCode;
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `fhirpipe doctor`.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The pipeline definition (TOML).
    pipeline: PathBuf,
    /// Override a field: --set source.url=https://… (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    sets: Vec<String>,
}

/// Runs `fhirpipe doctor`.
pub fn run(args: DoctorArgs) -> i32 {
    let plan = match config::load(&args.pipeline, &args.sets, &super::env_lookup) {
        Ok(p) => p,
        Err(e) => {
            super::print_err(&e.to_string());
            return ExitCode::Usage.code();
        }
    };
    let mut out = std::io::stdout().lock();
    let storage_targets = doctor::storage::targets(&plan);
    if doctor::endpoints(&plan).is_empty() && storage_targets.is_empty() {
        let _ = writeln!(
            out,
            "{}: no FHIR endpoints (fhir_export source, fhir_import sinks) or blob locations to check",
            args.pipeline.display()
        );
        return ExitCode::Success.code();
    }
    let mut reports = Vec::new();
    if !doctor::endpoints(&plan).is_empty() {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                super::print_err(&format!("cannot start the async runtime: {e}"));
                return ExitCode::Internal.code();
            }
        };
        match rt.block_on(doctor::run(&plan)) {
            Ok(r) => reports = r,
            Err(e) => {
                super::print_err(&e.to_string());
                return ExitCode::Internal.code();
            }
        }
    }
    // Blob access is synchronous (each store drives its own runtime): outside block_on.
    reports.extend(doctor::storage::run(&plan));
    let mut failed = 0;
    for r in &reports {
        let _ = writeln!(out, "{} {}", r.title, r.url);
        for f in &r.findings {
            let mark = match f.outcome {
                Outcome::Ok => "ok  ",
                Outcome::Fail => "FAIL",
                Outcome::Note => "note",
            };
            let _ = writeln!(out, "  {mark}  {}: {}", f.check, f.detail);
            if let Some(fix) = &f.fix {
                let _ = writeln!(out, "        fix: {fix}");
            }
        }
        if r.failed() {
            failed += 1;
        }
    }
    if failed > 0 {
        let _ = writeln!(
            out,
            "doctor: {failed} of {} endpoint(s) have problems",
            reports.len()
        );
        ExitCode::CheckFailed.code()
    } else {
        let _ = writeln!(out, "doctor: all {} endpoint(s) OK", reports.len());
        ExitCode::Success.code()
    }
}
