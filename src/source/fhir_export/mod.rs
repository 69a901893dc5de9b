//! The `fhir_export` source: a FHIR service's bulk `$export`. [`start`] reads the state file
//! (its `transactionTime` becomes `_since` unless the definition sets `since`), kicks off the
//! export (system, `Patient/`, `Group/{id}/`), polls the status URL honouring `Retry-After`
//! (capped by `max_poll_wait`) and showing `X-Progress` on stderr, within `timeout`; the
//! completion manifest then becomes an
//! [`export_manifest::ManifestSource`](super::export_manifest::ManifestSource), so the files
//! stream, are counted and their errors summarised exactly as with `export_manifest`.
//! [`save_state`] writes the new watermark once the run's sinks have committed (the run calls
//! it), atomically: a temp file renamed into place, or one blob put.

mod config;
mod state;

pub use config::{ExportLevel, FhirExportSourceConfig};
pub use state::ExportState;

use super::export_manifest::{Manifest, ManifestSource};
use super::SourceError;
use crate::auth::TokenProvider;
use crate::config::FhirExportPlan;
use crate::fhirclient::{FhirClient, Operation, Progress};
use crate::http::{HttpClient, HttpConfig};
use crate::storage::{Location, StorageConfig};
use std::io::IsTerminal;
use std::sync::Arc;

/// What a `fhir_export` run carries to its end: the `_since` used and the state file.
#[derive(Debug, Clone)]
pub struct ExportRun {
    /// The `_since` sent.
    pub since: Option<String>,
    /// `definition` or `state`.
    pub since_from: Option<&'static str>,
    /// The state file.
    pub state: Option<Location>,
}

/// The query of the kick-off: the plan's, plus `_since` from the state file when the
/// definition sets none. Returns the query and the `_since` with its origin.
pub fn query_with_state(
    plan: &FhirExportPlan,
    state: Option<&ExportState>,
) -> (Vec<(String, String)>, Option<String>, Option<&'static str>) {
    let mut query = plan.query.clone();
    if let Some((_, s)) = query.iter().find(|(k, _)| k == "_since") {
        return (query.clone(), Some(s.clone()), Some("definition"));
    }
    match state {
        Some(st) => {
            let at = query
                .iter()
                .position(|(k, _)| k != "_type")
                .unwrap_or(query.len());
            query.insert(at, ("_since".into(), st.transaction_time.clone()));
            (query, Some(st.transaction_time.clone()), Some("state"))
        }
        None => (query, None, None),
    }
}

/// Kicks off `$export` with `query` and polls until the completion manifest. Every wait goes
/// through the client's sleeper; `progress` sees each 202. Fails after `plan.timeout`.
pub async fn export(
    client: &FhirClient,
    plan: &FhirExportPlan,
    query: &[(String, String)],
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<(String, Manifest), SourceError> {
    let run = async {
        let q: Vec<(&str, &str)> = query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let status = client.kick_off_export(&plan.operation_path, &q).await?;
        let body = client.poll(Operation::Export, &status, progress).await?;
        Ok::<_, SourceError>((status, body))
    };
    let (status, body) = tokio::time::timeout(plan.timeout, run)
        .await
        .map_err(|_| {
            SourceError::Export(format!(
                "the $export at {}/{} did not complete within source.timeout ({} s); fix: raise source.timeout, or narrow the export with types, since or type_filter",
                plan.endpoint.url,
                plan.operation_path,
                plan.timeout.as_secs_f64()
            ))
        })??;
    let manifest = Manifest::parse(body.to_string().as_bytes(), &status)?;
    Ok((status, manifest))
}

/// Runs the export of a `fhir_export` source and lists the manifest's files. `show` draws
/// an `X-Progress` spinner on stderr (hidden when stderr is not a terminal).
pub fn start(
    plan: &FhirExportPlan,
    storage: &StorageConfig,
    env: &dyn Fn(&str) -> Option<String>,
    show: bool,
) -> Result<ManifestSource, SourceError> {
    let state = match &plan.state {
        Some(loc) => state::load(loc, storage, env)?,
        None => None,
    };
    let (query, since, since_from) = query_with_state(plan, state.as_ref());
    if let (Some("definition"), Some(st)) = (since_from, &state) {
        eprintln!(
            "fhirpipe: note: source.since is set, so the state file's watermark {} is not used",
            st.transaction_time
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("fhirpipe-http")
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| SourceError::Export(format!("cannot start the HTTP runtime: {e}")))?;
    let http = HttpClient::new(&HttpConfig::default()).map_err(|e| SourceError::Fhir(e.into()))?;
    let tokens = Arc::new(TokenProvider::new(
        plan.endpoint.auth.clone(),
        &plan.endpoint.url,
        plan.endpoint.audience.as_deref(),
        http.clone(),
    ));
    let client = FhirClient::new(&plan.endpoint.url, http, Some(tokens))
        .with_poll_interval(plan.poll_interval)
        .with_max_poll_wait(plan.max_poll_wait);
    let bar = spinner(show);
    bar.set_message(format!("$export kick-off at {}", plan.endpoint.url));
    let result = rt.block_on(export(&client, plan, &query, &mut |p: &Progress| {
        bar.set_message(format!(
            "$export: {} (poll {}, next in {:.0} s)",
            p.x_progress.as_deref().unwrap_or("in progress"),
            p.polls,
            p.wait.as_secs_f64()
        ));
        bar.tick();
    }));
    bar.finish_and_clear();
    let (status, manifest) = result?;
    let mut source = ManifestSource::from_export(status, manifest, storage, env, rt, client)?;
    source.export = Some(ExportRun {
        since,
        since_from,
        state: plan.state.clone(),
    });
    Ok(source)
}

fn spinner(show: bool) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner();
    if !(show && std::io::stderr().is_terminal()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar
}

/// Writes the manifest's `transactionTime` to the source's state file, if it has one. Call
/// only after every sink has committed. Returns whether a state file was written.
pub fn save_state(
    source: &ManifestSource,
    pipeline: &str,
    storage: &StorageConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<bool, SourceError> {
    let Some(loc) = source.export.as_ref().and_then(|x| x.state.as_ref()) else {
        return Ok(false);
    };
    let m = source.manifest();
    let st = ExportState {
        transaction_time: m.transaction_time.clone(),
        request: m.request.split('?').next().unwrap_or_default().to_string(),
        pipeline: pipeline.to_string(),
    };
    state::save(loc, storage, env, &st)?;
    Ok(true)
}
