//! Doctor's storage checks: for every blob location a pipeline uses (the source, each sink's
//! output, the dead letter, a `fhir_import` sink's staging folder), list the prefix, read the
//! first bytes of one blob when there is one, and for outputs write and delete a probe blob
//! `<prefix>/.fhirpipe-doctor-<random>` (sources skip `.` names, so no reader ever sees it).
//! Each failure names the role and the scope to assign it at. For an import staging folder it
//! also says that the service's import account cannot be checked through the FHIR API and
//! how to check it.
//!
//! The checks are synchronous ([`BlobStore`] drives its own runtime), so callers run them
//! outside any async runtime; each location gets [`LOCATION_TIMEOUT`] in a thread of its own.

use super::{fail, ok, EndpointReport, Finding, Outcome};
use crate::config::{Plan, SinkKindPlan, SourcePlan};
use crate::sink::fhir_import::split_blob_url;
use crate::storage::{BlobStore, BlobUrl, Location, StorageConfig, StorageError};
use std::time::Duration;

/// Time allowed for one location's checks (a credential flow that hangs, an unreachable
/// endpoint that object_store retries).
pub const LOCATION_TIMEOUT: Duration = Duration::from_secs(60);

/// One blob location of a plan.
#[derive(Debug, Clone)]
pub struct StorageTarget {
    /// `source`, `sinks.lake`, `dead_letter`, `sinks.target staging`.
    pub title: String,
    /// The container and prefix.
    pub url: BlobUrl,
    /// Outputs are written: check write and delete too.
    pub write: bool,
    /// An import staging folder: add the import-account note.
    pub import_staging: bool,
}

/// The blob locations of `plan`, in pipeline order.
pub fn targets(plan: &Plan) -> Vec<StorageTarget> {
    let mut out = Vec::new();
    let mut add = |title: String, url: BlobUrl, write: bool, import_staging: bool| {
        out.push(StorageTarget {
            title,
            url,
            write,
            import_staging,
        })
    };
    if let SourcePlan::AzureBlob { urls, .. } = &plan.source {
        for u in urls {
            add("source".into(), u.clone(), false, false);
        }
    }
    for s in &plan.sinks {
        let loc = match &s.kind {
            SinkKindPlan::Parquet(p) => p.path.clone(),
            SinkKindPlan::Ndjson(n) => n.path.clone(),
            SinkKindPlan::FhirImport(i) => {
                if let Some((mut u, prefix)) = split_blob_url(&i.staging) {
                    u.prefix = prefix;
                    add(format!("sinks.{} staging", s.name), u, true, true);
                }
                continue;
            }
        };
        if let Location::Blob(u) = loc {
            add(format!("sinks.{}", s.name), u, true, false);
        }
    }
    if let Some(Location::Blob(u)) = plan.dead_letter.as_ref().map(|d| d.path.clone()) {
        add("dead_letter".into(), u, true, false);
    }
    out
}

fn where_(url: &BlobUrl, account: &str) -> String {
    format!(
        "container `{}` of storage account `{account}`",
        url.container
    )
}

/// The role a location needs, and where to assign it.
fn role_fix(t: &StorageTarget, account: &str, what: &str) -> String {
    let (role, sas) = if t.write {
        (
            "Storage Blob Data Contributor",
            "read, write, delete and list (sp=rwdl)",
        )
    } else {
        ("Storage Blob Data Reader", "read and list (sp=rl)")
    };
    format!(
        "to {what}, the identity needs {role} on {} (assign it at the container scope, or the \
storage account's: Storage account → Access control (IAM) → Add role assignment; it can take a \
few minutes to apply); with a SAS, it needs the permissions {sas} and must not have expired",
        where_(&t.url, account)
    )
}

fn storage_failure(
    t: &StorageTarget,
    account: &str,
    check: &str,
    what: &str,
    e: &StorageError,
) -> Finding {
    let fix = match e {
        StorageError::NotFound { .. } => format!(
            "create {} (fhirpipe never creates containers), or correct the URL",
            where_(&t.url, account)
        ),
        StorageError::Denied { .. } => role_fix(t, account, what),
        StorageError::Config { fix, .. } => fix.clone(),
        _ => "check the storage endpoint ([storage] endpoint, private endpoints and firewall \
rules of the storage account) and the message"
            .into(),
    };
    fail(check, e.to_string(), fix)
}

/// Runs the checks of one location (blocking).
pub fn check(
    t: &StorageTarget,
    storage: &StorageConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> EndpointReport {
    // `az://` URLs take the account from the settings: name it in messages.
    let mut t = t.clone();
    if let Ok(a) = storage.resolve(&t.url, env) {
        t.url.account = Some(a.account);
    }
    let t = &t;
    let mut report = EndpointReport {
        title: format!("{} (storage)", t.title),
        url: t.url.to_string(),
        findings: Vec::new(),
    };
    let f = &mut report.findings;
    let account = t.url.account.clone().unwrap_or_else(|| "?".into());
    let store = match BlobStore::open(&t.url, storage, env) {
        Ok(s) => s,
        Err(e) => {
            f.push(storage_failure(t, &account, "credentials", "connect", &e));
            return report;
        }
    };
    let listed = match store.list(&t.url.prefix) {
        Ok(l) => l,
        Err(e) => {
            f.push(storage_failure(t, &account, "list", "list blobs", &e));
            return report;
        }
    };
    f.push(ok(
        "list",
        format!(
            "{} blob(s) under `{}/{}`",
            listed.len(),
            t.url.container,
            t.url.prefix
        ),
    ));
    match listed.iter().find(|(_, size)| *size > 0) {
        Some((name, _)) => match store.get_head(name, 1) {
            Ok(_) => f.push(ok("read", format!("read `{name}`"))),
            Err(e) => f.push(storage_failure(t, &account, "read", "read blobs", &e)),
        },
        None => f.push(ok(
            "read",
            "nothing to read yet (no blob with content)".into(),
        )),
    }
    if t.write {
        let probe = t
            .url
            .child(&format!(".fhirpipe-doctor-{:016x}", fastrand::u64(..)));
        match store.put(&probe, b"fhirpipe doctor probe\n".to_vec()) {
            Err(e) => f.push(storage_failure(t, &account, "write", "write blobs", &e)),
            Ok(()) => match store.delete(std::slice::from_ref(&probe)) {
                Ok(()) => f.push(ok("write", format!("wrote and deleted `{probe}`"))),
                Err(e) => {
                    let mut x = storage_failure(t, &account, "delete", "delete blobs", &e);
                    x.detail =
                        format!("{} (the probe blob `{probe}` is left; delete it)", x.detail);
                    f.push(x);
                }
            },
        }
    }
    if t.import_staging {
        f.push(Finding {
            check: "import account".into(),
            outcome: Outcome::Note,
            detail: format!(
                "not verified: the FHIR API does not say which storage account the service \
imports from, so fhirpipe cannot check that `{account}` is it ($import refuses input URLs on \
any other account with 400)"
            ),
            fix: Some(format!(
                "check that the FHIR service's import storage account is `{account}`: Azure portal, \
FHIR service → Import; or `az resource show --ids <FHIR service resource id> --query \
properties.importConfiguration.integrationDataStore`"
            )),
        });
    }
    report
}

/// Checks every blob location of `plan`, each in its own thread with [`LOCATION_TIMEOUT`].
pub fn run(plan: &Plan) -> Vec<EndpointReport> {
    targets(plan)
        .into_iter()
        .map(|t| {
            let (tx, rx) = std::sync::mpsc::channel();
            let storage = plan.storage.clone();
            let target = t.clone();
            std::thread::spawn(move || {
                let _ = tx.send(check(&target, &storage, &|k| std::env::var(k).ok()));
            });
            rx.recv_timeout(LOCATION_TIMEOUT)
                .unwrap_or_else(|_| EndpointReport {
                    title: format!("{} (storage)", t.title),
                    url: t.url.to_string(),
                    findings: vec![fail(
                    "list",
                    format!(
                        "no answer within {} s",
                        LOCATION_TIMEOUT.as_secs()
                    ),
                    "check the storage endpoint is reachable from here (DNS, private endpoint, \
firewall) and that the credential can be obtained (managed identity only works on Azure)"
                        .into(),
                )],
                })
        })
        .collect()
}
