//! Placeholder until the generator lands (replaced by the real module).
use std::collections::BTreeMap;
use std::path::PathBuf;
pub struct SampleOptions {
    pub patients: u64,
    pub seed: u64,
    pub out: PathBuf,
    pub gzip: bool,
    pub annotations: Option<PathBuf>,
}
pub struct SampleSummary {
    pub resources: BTreeMap<String, u64>,
    pub bytes: u64,
    pub files: Vec<PathBuf>,
}
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error("not yet")]
    NotYet,
}
pub fn generate(
    _o: &SampleOptions,
    _p: &(dyn Fn(u64, u64) + Sync),
) -> Result<SampleSummary, SampleError> {
    Err(SampleError::NotYet)
}
