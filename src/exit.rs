//! The process exit codes, documented in the README. Schedulers (cron, Airflow, Data Factory)
//! branch on these, so they never change meaning.

/// Exit codes of `fhirpipe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum ExitCode {
    /// The run completed; every line was written or filtered.
    Success = 0,
    /// The run completed and committed its output, but some lines were dead-lettered (or an
    /// export manifest listed `error[]` OperationOutcomes).
    DeadLettered = 1,
    /// Bad command line or pipeline definition; nothing was run.
    Usage = 2,
    /// Reading input or writing output failed; nothing was committed.
    Io = 3,
    /// The conservation check failed (read ≠ written + dead-lettered + filtered); nothing was committed.
    Conservation = 4,
    /// An invalid line stopped a run with `validate.on_invalid = "fail"`; nothing was committed.
    InvalidInput = 5,
    /// A bug in fhirpipe (a worker panicked); nothing was committed. Please report it.
    Internal = 6,
    /// `fhirpipe doctor` found a problem with an endpoint (each printed with its fix).
    CheckFailed = 7,
    /// The source delivered fewer or more resources than it announced (an export manifest's
    /// `count` differs from the lines read); nothing was committed and no watermark advanced.
    SourceIncomplete = 8,
    /// A `fhir_import` sink's `$import` completed, but the service rejected resources or its
    /// counts do not match what was staged (the report lists them); the other outputs were
    /// committed.
    ImportIncomplete = 9,
}

impl ExitCode {
    /// The numeric code.
    pub fn code(self) -> i32 {
        self as i32
    }
}
