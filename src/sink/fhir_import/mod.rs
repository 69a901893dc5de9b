//! The `fhir_import` sink: a FHIR service's `$import`. Resources are written per type as
//! NDJSON chunks of about `chunk_size` (the same [`RollingWriter`] and block uploads as the
//! `ndjson` sink) to `<staging>/<run id>/<Type>.NNNNN.ndjson` on the service's import storage
//! account. Nothing is sent to the service while data flows: `$import` is kicked off in
//! [`Sink::commit`], which the run calls only after the conservation check passed, so a failed
//! run imports nothing and [`Sink::abort`] deletes its staged chunks. Commit then runs the calls
//! ([`calls`]: ≤ 10,000 inputs each, ≤ 5 at once), polls each to completion, checks
//! `output[].count` and `error[].count` against what was staged per type, downloads the error
//! files through [`crate::storage`] and keeps an [`ImportReport`] for the run report.

mod calls;
mod config;
mod report;

pub use calls::{Input, MAX_INPUTS_PER_CALL, MAX_IN_FLIGHT};
pub use config::{FhirImportSinkConfig, ImportMode};
pub use report::{ImportCounts, ImportReport, MissingMeta};

use super::{RollingWriter, Sink, SinkError, SinkStats, Staging};
use crate::auth::TokenProvider;
use crate::batch::Batch;
use crate::config::FhirImportPlan;
use crate::fhir::{resource_type_name, RESOURCE_TYPES};
use crate::fhirclient::{import_parameters, FhirClient, FhirError, Operation};
use crate::http::{HttpClient, HttpConfig};
use crate::storage::{BlobStore, BlobUrl, Location, StorageConfig};
use report::{OperationReport, RECONCILIATION};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Writes records to staging and imports them on commit.
pub struct FhirImportSink {
    name: String,
    plan: FhirImportPlan,
    storage: StorageConfig,
    /// `<staging URL>/<run id>`: the input URLs start with it.
    url_base: String,
    staging: Staging,
    writers: Vec<Option<RollingWriter>>,
    /// Per type slot: records without `meta.versionId`, without `meta.lastUpdated`.
    missing: Vec<(u64, u64)>,
    stats: SinkStats,
    report: Option<ImportReport>,
    /// Print a line per kick-off and status poll on stderr (imports can take hours).
    progress: bool,
}

/// The container-level location of a blob URL and the blob's name below the container:
/// `https://<account>.blob.core.windows.net/<container>/<name>`, or the path-style form of
/// an emulator or private endpoint on loopback (`http://127.0.0.1:P/<account>/<container>/<name>`).
pub fn split_blob_url(text: &str) -> Option<(BlobUrl, String)> {
    let url = reqwest::Url::parse(text).ok()?;
    if url.query().is_some() {
        return None;
    }
    let host = url.host_str()?.to_ascii_lowercase();
    let mut segs: Vec<String> = url
        .path_segments()?
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let account = if let Some(a) = host
        .strip_suffix(".blob.core.windows.net")
        .or_else(|| host.strip_suffix(".dfs.core.windows.net"))
    {
        a.to_string()
    } else if matches!(host.as_str(), "127.0.0.1" | "localhost" | "[::1]") && !segs.is_empty() {
        segs.remove(0)
    } else {
        return None;
    };
    if segs.is_empty() {
        return None;
    }
    let container = segs.remove(0);
    Some((
        BlobUrl {
            account: Some(account),
            container,
            prefix: String::new(),
        },
        segs.join("/"),
    ))
}

impl FhirImportSink {
    /// Checks that the staging container answers (fails before any input is read) and
    /// prepares `<staging>/<run id>/`.
    pub fn create(
        name: &str,
        plan: &FhirImportPlan,
        run_id: &str,
        storage: &StorageConfig,
    ) -> Result<Self, SinkError> {
        let (mut loc, prefix) = split_blob_url(&plan.staging).ok_or_else(|| {
            SinkError::Import(format!(
                "sinks.{name}.staging `{}` is not a blob folder URL; fix: write \
https://<account>.blob.core.windows.net/<container>/<prefix> on the FHIR service's import storage account",
                plan.staging
            ))
        })?;
        loc.prefix = prefix;
        let staging = Staging::create_in(&Location::Blob(loc), run_id, storage)?;
        Ok(FhirImportSink {
            name: name.to_string(),
            plan: plan.clone(),
            storage: storage.clone(),
            url_base: format!("{}/{run_id}", plan.staging.trim_end_matches('/')),
            staging,
            writers: (0..RESOURCE_TYPES.len()).map(|_| None).collect(),
            missing: vec![(0, 0); RESOURCE_TYPES.len()],
            stats: SinkStats::new(),
            report: None,
            progress: false,
        })
    }

    /// Prints each kick-off and status poll on stderr (`fhirpipe run` without `--quiet`).
    pub fn with_progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    fn new_report(&self) -> ImportReport {
        let mut types = BTreeMap::new();
        let mut missing_meta = BTreeMap::new();
        for (slot, w) in self.writers.iter().enumerate() {
            let Some(w) = w else { continue };
            let ty = resource_type_name(slot as crate::fhir::TypeIdx).to_string();
            types.insert(
                ty.clone(),
                ImportCounts {
                    staged: self.stats.records[slot],
                    files: w.files.len() as u64,
                    ..Default::default()
                },
            );
            let (v, l) = self.missing[slot];
            if self.plan.mode == ImportMode::IncrementalLoad && (v > 0 || l > 0) {
                missing_meta.insert(
                    ty,
                    MissingMeta {
                        version_id: v,
                        last_updated: l,
                    },
                );
            }
        }
        let mut warnings = Vec::new();
        if !missing_meta.is_empty() {
            let (v, l) = missing_meta
                .values()
                .fold((0, 0), |(v, l), m| (v + m.version_id, l + m.last_updated));
            warnings.push(format!(
                "IncrementalLoad: {v} resource(s) without meta.versionId and {l} without \
meta.lastUpdated: the service assigns them (version 1 and the import time), so the source's \
version history and dates are not kept for these, and the service does not guarantee which of \
several versions of such a resource ends up current"
            ));
        }
        ImportReport {
            url: self.plan.endpoint.url.clone(),
            mode: self.plan.mode.as_str(),
            staging: self.url_base.clone(),
            staged_files: "kept".into(),
            reconciliation: RECONCILIATION,
            types,
            operations: Vec::new(),
            errors: BTreeMap::new(),
            error_files: Vec::new(),
            missing_meta,
            warnings,
            ok: false,
        }
    }

    /// The `$import` inputs, by type then sequence.
    fn inputs(&self) -> Vec<Input> {
        let mut v = Vec::new();
        for (slot, w) in self.writers.iter().enumerate() {
            if let Some(w) = w {
                for rel in &w.files {
                    v.push(Input {
                        ty: resource_type_name(slot as crate::fhir::TypeIdx).to_string(),
                        url: format!("{}/{rel}", self.url_base),
                    });
                }
            }
        }
        v
    }

    /// Kicks off and polls every call; fills `report.operations` and the counts.
    fn import(
        &self,
        report: &mut ImportReport,
    ) -> Result<Vec<(String, String, String)>, SinkError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SinkError::Import(format!("cannot start the HTTP runtime: {e}")))?;
        let http = HttpClient::new(&HttpConfig::default())
            .map_err(|e| SinkError::Import(e.to_string()))?;
        let ep = &self.plan.endpoint;
        let tokens = Arc::new(TokenProvider::new(
            ep.auth.clone(),
            &ep.url,
            ep.audience.as_deref(),
            http.clone(),
        ));
        let client = FhirClient::new(&ep.url, http, Some(tokens));
        let mode = self.plan.mode.as_str();
        let batches = calls::split(&self.inputs(), MAX_INPUTS_PER_CALL);
        let total = batches.len();
        let (name, progress) = (self.name.as_str(), self.progress);
        let numbered: Vec<(usize, Vec<Input>)> = (1..=total).zip(batches).collect();
        let results = rt.block_on(calls::run_limited(numbered, MAX_IN_FLIGHT, |(k, batch)| {
            let client = client.clone();
            async move {
                let pairs: Vec<(&str, &str)> = batch
                    .iter()
                    .map(|i| (i.ty.as_str(), i.url.as_str()))
                    .collect();
                let body = import_parameters(mode, &pairs);
                let mut op = OperationReport {
                    inputs: batch.len(),
                    status_url: None,
                    transaction_time: None,
                    error: None,
                };
                let status = match client.kick_off_import(&body).await {
                    Ok(s) => s,
                    Err(e) => return (op, Err(e)),
                };
                op.status_url = Some(status.clone());
                if progress {
                    eprintln!(
                        "import {name}: operation {k}/{total} kicked off ({} inputs): {status}",
                        batch.len()
                    );
                }
                let done = client
                    .poll(Operation::Import, &status, &mut |p| {
                        if progress {
                            eprintln!(
                                "import {name}: operation {k}/{total}: {} (poll {}, next in {} s)",
                                p.x_progress.as_deref().unwrap_or("running"),
                                p.polls,
                                p.wait.as_secs()
                            );
                        }
                    })
                    .await;
                (op, done)
            }
        }));
        let mut files = Vec::new();
        let mut first_err = None;
        for (mut op, res) in results {
            match res {
                Ok(body) => {
                    op.transaction_time = body["transactionTime"].as_str().map(str::to_string);
                    files.extend(report.add_completion(&body));
                }
                Err(e) => {
                    let msg = self.explain(&e, op.status_url.is_none());
                    op.error = Some(msg.clone());
                    first_err.get_or_insert(msg);
                }
            }
            report.operations.push(op);
        }
        match first_err {
            Some(m) => Err(SinkError::Import(m)),
            None => Ok(files),
        }
    }

    /// A failed kick-off or poll, with the fix.
    fn explain(&self, e: &FhirError, at_kick_off: bool) -> String {
        let what = if at_kick_off {
            "$import kick-off"
        } else {
            "$import status poll"
        };
        if let FhirError::Http(h) = e {
            if at_kick_off && h.status == Some(400) {
                let text = h.to_string();
                let fix = if text.to_ascii_lowercase().contains("storage") {
                    format!(
                        "sinks.{}.staging must be a container on the storage account configured \
as the FHIR service's import storage (Azure portal: FHIR service → Import → storage account; \
`importConfiguration.integrationDataStore` in its ARM resource), and the service's managed \
identity needs Storage Blob Data Contributor on it",
                        self.name
                    )
                } else {
                    "check the FHIR service's import settings (enabled, InitialLoad or \
IncrementalLoad as the sink's `mode`) and the message above"
                        .to_string()
                };
                return format!("{what}: {text}; fix: {fix}");
            }
        }
        format!("{what}: {e}")
    }

    /// Downloads error files and adds their first messages.
    fn read_error_files(&self, report: &mut ImportReport, files: &[(String, String, String)]) {
        let mut stores: BTreeMap<(Option<String>, String), Arc<BlobStore>> = BTreeMap::new();
        for (ty, input, url) in files {
            let text = split_blob_url(url)
                .ok_or_else(|| format!("`{url}` is not a blob URL"))
                .and_then(|(loc, name)| {
                    let key = (loc.account.clone(), loc.container.clone());
                    let store = match stores.get(&key) {
                        Some(s) => s.clone(),
                        None => {
                            let s = Arc::new(
                                BlobStore::open(&loc, &self.storage, &|k| std::env::var(k).ok())
                                    .map_err(|e| e.to_string())?,
                            );
                            stores.insert(key, s.clone());
                            s
                        }
                    };
                    store.get(&name).map_err(|e| e.to_string())
                });
            match text {
                Ok(bytes) => report.add_error_file(ty, input, &String::from_utf8_lossy(&bytes)),
                Err(e) => report.warnings.push(format!(
                    "cannot read the error file {url}: {e} (its count is in `rejected`)"
                )),
            }
        }
    }
}

impl Sink for FhirImportSink {
    fn write(&mut self, batch: &Batch) -> Result<(), SinkError> {
        for r in &batch.records {
            let slot = r.type_idx as usize;
            let w = self.writers[slot].get_or_insert_with(|| {
                RollingWriter::new(resource_type_name(r.type_idx), self.plan.chunk_size, false)
            });
            w.write_line(&self.staging, batch.json(r))?;
            self.stats.records[slot] += 1;
            let m = &mut self.missing[slot];
            m.0 += u64::from(r.version_id.is_none());
            m.1 += u64::from(r.last_updated.is_none());
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<SinkStats, SinkError> {
        super::rolling::finish_all(&mut self.writers, &mut self.stats)
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        let mut report = self.new_report();
        let result = if self.stats.files.is_empty() {
            Ok(Vec::new())
        } else {
            self.import(&mut report)
        };
        let files = match &result {
            Ok(f) => f.clone(),
            Err(_) => Vec::new(),
        };
        self.read_error_files(&mut report, &files);
        report.reconcile();
        let started = report.operations.iter().any(|o| o.status_url.is_some());
        // Delete the chunks when the service no longer needs them and nobody will look at
        // them: after a clean import, or when no operation was started at all.
        let delete = if result.is_ok() && report.ok {
            !self.plan.keep_staged
        } else {
            !started
        };
        if delete {
            self.staging.abort();
            report.staged_files = "deleted".into();
        } else if report.ok {
            report.staged_files = "kept (keep_staged)".into();
        } else if result.is_err() {
            report.staged_files = "kept: an operation started and did not complete, the service may still be reading them; delete the folder once it has finished"
                .into();
        } else {
            report.staged_files =
                "kept: the error files point into them; delete the folder when done".into();
        }
        self.report = Some(report);
        result.map(|_| ())
    }

    fn abort(&mut self) {
        self.staging.abort();
    }

    fn import_report(&mut self) -> Option<ImportReport> {
        self.report.take()
    }
}

#[cfg(test)]
mod tests {
    use super::split_blob_url;

    #[test]
    fn staging_and_error_urls_split_into_container_and_name() {
        let (u, n) = split_blob_url(
            "https://importacct.blob.core.windows.net/staging/fhirpipe/run-1/Patient.00000.ndjson",
        )
        .unwrap();
        assert_eq!(
            (u.account.as_deref(), u.container.as_str(), n.as_str()),
            (
                Some("importacct"),
                "staging",
                "fhirpipe/run-1/Patient.00000.ndjson"
            )
        );
        let (u, n) = split_blob_url(
            "http://127.0.0.1:10000/devstoreaccount1/fhirlogs/0001/Patient-0.ndjson",
        )
        .unwrap();
        assert_eq!(
            (u.account.as_deref(), u.container.as_str(), n.as_str()),
            (
                Some("devstoreaccount1"),
                "fhirlogs",
                "0001/Patient-0.ndjson"
            )
        );
        let (u, n) = split_blob_url("https://importacct.blob.core.windows.net/staging").unwrap();
        assert_eq!((u.container.as_str(), n.as_str()), ("staging", ""));
        assert!(split_blob_url("https://example.com/staging/x").is_none());
        assert!(split_blob_url("https://a.blob.core.windows.net/c/x?sig=1").is_none());
        assert!(split_blob_url("https://a.blob.core.windows.net/").is_none());
    }
}
