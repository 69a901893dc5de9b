//! Test-only helpers shared by unit tests: locating `../shared` with the CI rule (missing
//! shared data fails under `CI=true`, skips with a printed reason elsewhere).

use std::path::PathBuf;

/// Returns `../shared` next to the checkout, or `None` (with a printed reason) when it is
/// missing outside CI. Panics under `CI=true` so a missing data set never passes silently.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("FHIRPIPE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    if dir.join("fhir-r4").is_dir() {
        return Some(dir);
    }
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!(
            "CI=true but the shared data folder {} is missing: CI must have ../shared beside the checkout",
            dir.display()
        );
    }
    eprintln!(
        "SKIP: shared data folder {} not found (set FHIRPIPE_SHARED); test skipped",
        dir.display()
    );
    None
}
