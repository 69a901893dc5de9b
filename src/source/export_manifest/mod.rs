//! The `export_manifest` source: the files of an HL7 Bulk Data completion manifest
//! (`transactionTime`, `requiresAccessToken`, `output[]` and `error[]` with `type`, `url`,
//! `count`). The manifest is read from a local file, a blob, or an http(s) URL (the export's
//! status URL works: it is polled until it answers 200). The `fhir_export` source ends in the
//! same [`ManifestSource`] once its export has completed.
//!
//! Output files are streamed in manifest order through the same line splitter as every other
//! source, so dead-letter line numbers are exact: blob URLs (`<account>.blob.core.windows.net`,
//! the `[storage]` endpoint, Azurite's path-style loopback URLs) through [`RangeReader`] with the
//! pipeline's `[storage]` credentials; other URLs, and every file when the manifest says
//! `requiresAccessToken: true`, over HTTP (with the bearer token in the latter case).
//!
//! After the run has counted its lines, [`ManifestSource::check`] compares each file's
//! `count` with the non-blank lines read from it and summarises the `error[]` files
//! (OperationOutcome NDJSON: issues per code, the first diagnostics); they are never read as
//! resources.

mod config;

pub use config::ExportManifestSourceConfig;

use super::{ChunkOut, SourceError};
use crate::auth::TokenProvider;
use crate::batch::SourceFile;
use crate::config::ExportManifestPlan;
use crate::fhirclient::{FhirClient, Operation};
use crate::http::{HttpClient, HttpConfig};
use crate::storage::{BlobStore, BlobUrl, Location, ObjectUrl, RangeReader, StorageConfig};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Read};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Range requests in flight per output blob, and bytes per range (as `azure_blob`'s defaults).
const CONCURRENCY: usize = 4;
const RANGE_SIZE: u64 = 8 << 20;
/// Diagnostics kept from the `error[]` files for the report.
const FIRST_DIAGNOSTICS: usize = 5;

/// A Bulk Data completion manifest (extensions and unknown fields are ignored, as the spec
/// allows servers to add them).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The server's time of the export; the next incremental export's `_since`.
    pub transaction_time: String,
    /// The kick-off request.
    #[serde(default)]
    pub request: String,
    /// Whether the files need the bearer token.
    #[serde(default)]
    pub requires_access_token: bool,
    /// Resource files.
    #[serde(default)]
    pub output: Vec<ManifestFile>,
    /// OperationOutcome files.
    #[serde(default)]
    pub error: Vec<ManifestFile>,
}

/// One `output[]` or `error[]` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct ManifestFile {
    /// Resource type of the file (`OperationOutcome` for errors).
    #[serde(rename = "type", default)]
    pub type_name: String,
    /// Where the file is.
    pub url: String,
    /// Resources in the file, when the server says.
    pub count: Option<u64>,
}

impl Manifest {
    /// Parses a manifest; `location` names it in errors.
    pub fn parse(text: &[u8], location: &str) -> Result<Manifest, SourceError> {
        let m: Manifest = serde_json::from_slice(text).map_err(|e| SourceError::Manifest {
            location: location.to_string(),
            message: format!("not a Bulk Data completion manifest ({e})"),
        })?;
        if crate::fhir::parse_instant_micros(&m.transaction_time).is_err() {
            return Err(SourceError::Manifest {
                location: location.to_string(),
                message: format!(
                    "transactionTime `{}` is not a FHIR instant",
                    m.transaction_time
                ),
            });
        }
        Ok(m)
    }
}

/// Where one file is read from.
#[derive(Debug)]
enum At {
    Blob {
        store: Arc<BlobStore>,
        name: String,
        size: u64,
    },
    Http {
        url: String,
    },
}

/// One file of the manifest.
#[derive(Debug)]
struct OutFile {
    file: Arc<SourceFile>,
    type_name: String,
    count: Option<u64>,
    at: At,
}

/// Async plumbing for HTTP downloads: a small runtime and the client.
struct Fetch {
    rt: Arc<tokio::runtime::Runtime>,
    client: FhirClient,
}

impl std::fmt::Debug for Fetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetch").finish_non_exhaustive()
    }
}

/// The listed files of a manifest, ready to stream.
#[derive(Debug)]
pub struct ManifestSource {
    location: String,
    manifest: Manifest,
    files: Vec<OutFile>,
    errors: Vec<OutFile>,
    fetch: Fetch,
    /// Set by `fhir_export`: where the watermark goes and which `_since` was used.
    pub(crate) export: Option<super::fhir_export::ExportRun>,
}

/// Per-file line counts against the manifest, and the `error[]` summary, for the report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExportReport {
    /// Where the manifest came from (file, blob, or status URL).
    pub manifest: String,
    /// The manifest's `transactionTime`.
    pub transaction_time: String,
    /// The kick-off request, as the manifest states it.
    pub request: String,
    /// The `_since` sent (`fhir_export` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Where `_since` came from: `definition` or `state`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_from: Option<&'static str>,
    /// The state file, and whether this run wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<StateReport>,
    /// Every `output[]` file with its count and what was read.
    pub files: Vec<FileCount>,
    /// Files whose `count` differs from the lines read.
    pub count_mismatches: Vec<FileCount>,
    /// The `error[]` files, summarised.
    pub errors: ErrorSummary,
}

/// One output file's count check.
#[derive(Debug, Clone, Serialize)]
pub struct FileCount {
    /// Resource type the manifest gives.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The file's URL (without any query string).
    pub url: String,
    /// The manifest's `count`, when given.
    pub count: Option<u64>,
    /// Non-blank lines read.
    pub read: u64,
}

/// The state file of a `fhir_export` source.
#[derive(Debug, Clone, Serialize)]
pub struct StateReport {
    /// Its location.
    pub path: String,
    /// True once this run wrote the new watermark (only after every sink committed).
    pub written: bool,
}

/// What the `error[]` files say.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ErrorSummary {
    /// `error[]` files read.
    pub files: u64,
    /// OperationOutcome lines in them.
    pub outcomes: u64,
    /// Issues per `<type>/<issue code>` (`type` from the manifest entry).
    pub by_code: BTreeMap<String, u64>,
    /// The first diagnostics, in file order.
    pub first: Vec<String>,
}

impl ExportReport {
    /// Lines for the summary table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "export: transactionTime {}, {} files{}\n",
            self.transaction_time,
            self.files.len(),
            self.since
                .as_ref()
                .map(|t| format!(", _since {t} (from {})", self.since_from.unwrap_or("?")))
                .unwrap_or_default()
        );
        for m in &self.count_mismatches {
            s.push_str(&format!(
                "  COUNT MISMATCH {} {}: manifest count {}, read {}\n",
                m.type_name,
                m.url,
                m.count.unwrap_or(0),
                m.read
            ));
        }
        if self.errors.outcomes > 0 {
            let codes: Vec<String> = self
                .errors
                .by_code
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            s.push_str(&format!(
                "export errors: {} OperationOutcomes in {} files ({})\n",
                self.errors.outcomes,
                self.errors.files,
                codes.join(", ")
            ));
            for d in &self.errors.first {
                s.push_str(&format!("  {d}\n"));
            }
        }
        if let Some(st) = &self.state {
            s.push_str(&format!(
                "state: {} {}\n",
                st.path,
                if st.written {
                    format!("now holds {}", self.transaction_time)
                } else {
                    "not written (the run did not commit)".to_string()
                }
            ));
        }
        s
    }
}

fn strip_query(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

fn runtime() -> Result<Arc<tokio::runtime::Runtime>, SourceError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("fhirpipe-http")
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| SourceError::Io {
            path: PathBuf::from("(HTTP runtime)"),
            source: e,
        })
}

fn http_client() -> Result<HttpClient, SourceError> {
    HttpClient::new(&HttpConfig::default()).map_err(|e| SourceError::Fhir(e.into()))
}

/// `scheme://host[:port]` of a URL: the default token audience of a manifest URL.
fn origin(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => url.to_string(),
    }
}

impl ManifestSource {
    /// Reads the manifest of an `export_manifest` source and lists its files.
    pub fn load(
        plan: &ExportManifestPlan,
        storage: &StorageConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, SourceError> {
        let rt = runtime()?;
        let http = http_client()?;
        // The token is for the FHIR service: the manifest URL's origin when it is fetched
        // from the service, else the origin of the manifest's kick-off `request`.
        let client_for = |base: &str| {
            let tokens = plan.auth.clone().map(|a| {
                Arc::new(TokenProvider::new(
                    a,
                    base,
                    plan.audience.as_deref(),
                    http.clone(),
                ))
            });
            FhirClient::new(base, http.clone(), tokens)
        };
        let is_http = plan.manifest.starts_with("http://") || plan.manifest.starts_with("https://");
        let client = client_for(&origin(&plan.manifest));
        let location = strip_query(&plan.manifest).to_string();
        // A blob: the three blob URL forms, or a URL below the `[storage]` endpoint. (Not
        // loopback path-style URLs here: a test FHIR server's status URL is one too.)
        let object = match Location::parse(&plan.manifest) {
            Ok(Location::Blob(blob)) => Some(ObjectUrl {
                blob,
                endpoint: None,
            }),
            _ => storage
                .endpoint
                .as_deref()
                .filter(|e| plan.manifest.starts_with(e.trim_end_matches('/')))
                .and_then(|e| ObjectUrl::parse(&plan.manifest, Some(e))),
        };
        let text: Vec<u8> = if let Some(o) = object {
            let store = open_store(&o, storage, env)?;
            store.get(&o.blob.prefix)?
        } else if is_http {
            let v = rt.block_on(client.poll(Operation::Export, &plan.manifest, &mut |_| {}))?;
            v.to_string().into_bytes()
        } else {
            std::fs::read(&plan.manifest).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => SourceError::NotFound {
                    path: PathBuf::from(&plan.manifest),
                },
                _ => SourceError::Io {
                    path: PathBuf::from(&plan.manifest),
                    source: e,
                },
            })?
        };
        let manifest = Manifest::parse(&text, &location)?;
        let client = if is_http {
            client
        } else {
            client_for(&origin(&manifest.request))
        };
        if manifest.requires_access_token && plan.auth.is_none() {
            return Err(SourceError::Manifest {
                location,
                message: "it says requiresAccessToken: true but the source has no auth; fix: add source.auth (the FHIR service's token, e.g. { method = \"managed_identity\" })".into(),
            });
        }
        ManifestSource::new(location, manifest, storage, env, Fetch { rt, client })
    }

    /// Lists the files of a manifest obtained elsewhere (`fhir_export`).
    pub(crate) fn from_export(
        location: String,
        manifest: Manifest,
        storage: &StorageConfig,
        env: &dyn Fn(&str) -> Option<String>,
        rt: Arc<tokio::runtime::Runtime>,
        client: FhirClient,
    ) -> Result<Self, SourceError> {
        ManifestSource::new(location, manifest, storage, env, Fetch { rt, client })
    }

    fn new(
        location: String,
        manifest: Manifest,
        storage: &StorageConfig,
        env: &dyn Fn(&str) -> Option<String>,
        fetch: Fetch,
    ) -> Result<Self, SourceError> {
        let mut stores: HashMap<(Option<String>, Option<String>, String), Arc<BlobStore>> =
            HashMap::new();
        let mut list = |entries: &[ManifestFile],
                        first: usize|
         -> Result<Vec<OutFile>, SourceError> {
            let mut out = Vec::new();
            for (i, e) in entries.iter().enumerate() {
                let blob = (!manifest.requires_access_token)
                    .then(|| ObjectUrl::parse(&e.url, storage.endpoint.as_deref()))
                    .flatten();
                let at = match blob {
                    Some(o) => {
                        let key = (
                            o.endpoint.clone(),
                            o.blob.account.clone(),
                            o.blob.container.clone(),
                        );
                        let store = match stores.get(&key) {
                            Some(s) => s.clone(),
                            None => {
                                let s = open_store(&o, storage, env)?;
                                stores.insert(key, s.clone());
                                s
                            }
                        };
                        let size = store.size(&o.blob.prefix)?.ok_or_else(|| {
                            SourceError::Manifest {
                                location: location.clone(),
                                message: format!(
                                    "the file {} it lists does not exist (exports expire; run the export again)",
                                    strip_query(&e.url)
                                ),
                            }
                        })?;
                        At::Blob {
                            store,
                            name: o.blob.prefix,
                            size,
                        }
                    }
                    None => At::Http { url: e.url.clone() },
                };
                out.push(OutFile {
                    file: Arc::new(SourceFile {
                        index: first + i,
                        name: strip_query(&e.url).to_string(),
                    }),
                    type_name: e.type_name.clone(),
                    count: e.count,
                    at,
                });
            }
            Ok(out)
        };
        let files = list(&manifest.output, 0)?;
        let errors = list(&manifest.error, manifest.output.len())?;
        Ok(ManifestSource {
            location,
            manifest,
            files,
            errors,
            fetch,
            export: None,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// (listing index, resource type) of each `output[]` file (see [`super::Input::file_types`]).
    pub fn file_types(&self) -> Vec<(usize, Option<crate::fhir::TypeIdx>)> {
        self.files
            .iter()
            .map(|f| (f.file.index, crate::fhir::resource_type_index(&f.type_name)))
            .collect()
    }

    /// Number of `output[]` files.
    pub fn file_count(&self) -> usize {
        self.files.len()
    }

    /// Bytes of the blob files (HTTP files are not sized in advance).
    pub fn total_bytes(&self) -> u64 {
        self.files
            .iter()
            .map(|f| match f.at {
                At::Blob { size, .. } => size,
                At::Http { .. } => 0,
            })
            .sum()
    }

    fn open(&self, f: &OutFile) -> Result<Box<dyn Read + Send>, SourceError> {
        Ok(match &f.at {
            At::Blob { store, name, size } => Box::new(RangeReader::new(
                store,
                name,
                *size,
                RANGE_SIZE,
                CONCURRENCY,
            )),
            At::Http { url } => {
                let resp = self.fetch.rt.block_on(
                    self.fetch
                        .client
                        .get_file(url, self.manifest.requires_access_token),
                )?;
                Box::new(HttpBody {
                    rt: self.fetch.rt.clone(),
                    resp,
                    current: Bytes::new(),
                })
            }
        })
    }

    /// Streams every `output[]` file into `out`, in manifest order.
    pub(crate) fn stream_into(
        &self,
        out: &mut ChunkOut,
        bytes_read: &AtomicU64,
    ) -> Result<(), SourceError> {
        for f in &self.files {
            if !out.wants(&f.file, Some(&f.type_name)) {
                continue;
            }
            let reader = self.open(f)?;
            let go_on = out
                .file(&f.file, reader, bytes_read)
                .map_err(|e| io_error(&f.file.name, e))?;
            if !go_on {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Compares each file's `count` with `lines[file index]` (non-blank lines read) and reads
    /// the `error[]` files.
    pub fn check(&self, lines: &[u64]) -> Result<ExportReport, SourceError> {
        let mut r = ExportReport {
            manifest: self.location.clone(),
            transaction_time: self.manifest.transaction_time.clone(),
            request: strip_query(&self.manifest.request).to_string(),
            ..ExportReport::default()
        };
        if let Some(x) = &self.export {
            r.since = x.since.clone();
            r.since_from = x.since_from;
            r.state = x.state.as_ref().map(|s| StateReport {
                path: s.to_string(),
                written: false,
            });
        }
        for f in &self.files {
            let c = FileCount {
                type_name: f.type_name.clone(),
                url: f.file.name.clone(),
                count: f.count,
                read: lines.get(f.file.index).copied().unwrap_or(0),
            };
            if c.count.is_some_and(|n| n != c.read) {
                r.count_mismatches.push(c.clone());
            }
            r.files.push(c);
        }
        for f in &self.errors {
            r.errors.files += 1;
            let reader = std::io::BufReader::new(self.open(f)?);
            for line in reader.lines() {
                let line = line.map_err(|e| io_error(&f.file.name, e))?;
                if line.trim().is_empty() {
                    continue;
                }
                r.errors.outcomes += 1;
                let v: serde_json::Value =
                    serde_json::from_str(&line).unwrap_or(serde_json::Value::Null);
                let issues = v["issue"].as_array().cloned().unwrap_or_default();
                if issues.is_empty() {
                    *r.errors
                        .by_code
                        .entry(format!("{}/(no issue)", f.type_name))
                        .or_default() += 1;
                }
                for i in issues {
                    let code = i["code"].as_str().unwrap_or("(no code)");
                    *r.errors
                        .by_code
                        .entry(format!("{}/{code}", f.type_name))
                        .or_default() += 1;
                    if r.errors.first.len() < FIRST_DIAGNOSTICS {
                        let text = i["diagnostics"]
                            .as_str()
                            .or_else(|| i["details"]["text"].as_str())
                            .unwrap_or("(no diagnostics)");
                        r.errors.first.push(format!("{code}: {text}"));
                    }
                }
            }
        }
        Ok(r)
    }
}

fn io_error(name: &str, e: std::io::Error) -> SourceError {
    match e.downcast::<crate::storage::StorageError>() {
        Ok(s) => SourceError::Storage(s),
        Err(e) => SourceError::Io {
            path: PathBuf::from(name),
            source: e,
        },
    }
}

/// A blob store for a manifest URL: path-style URLs bring their own endpoint.
fn open_store(
    o: &ObjectUrl,
    storage: &StorageConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Arc<BlobStore>, SourceError> {
    let mut cfg = storage.clone();
    if let Some(e) = &o.endpoint {
        cfg.endpoint = Some(e.clone());
    }
    let url = BlobUrl {
        prefix: String::new(),
        ..o.blob.clone()
    };
    Ok(Arc::new(BlobStore::open(&url, &cfg, env)?))
}

/// A response body as a blocking `Read`, chunk by chunk as it arrives.
struct HttpBody {
    rt: Arc<tokio::runtime::Runtime>,
    resp: reqwest::Response,
    current: Bytes,
}

impl Read for HttpBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rt.block_on(self.resp.chunk()) {
                Ok(Some(b)) => self.current = b,
                Ok(None) => return Ok(0),
                Err(e) => return Err(std::io::Error::other(e.without_url())),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}
