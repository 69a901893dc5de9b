//! A FHIR bulk-data test server (axum, in-process on 127.0.0.1:0) that behaves like the FHIR
//! service of Azure Health Data Services where fhirpipe depends on it, plus a fake Entra
//! token endpoint and a fake IMDS endpoint on the same port.
//!
//! Sources of truth: the Azure docs ("Import FHIR data", "Export your FHIR data", "Configure
//! import settings") for shapes, headers and limits; microsoft/fhir-server's
//! `ImportController.ValidateImportRequestConfiguration` for the order of the `$import` checks
//! and the message texts it formats (`Value of the following parameter {0} is invalid.`,
//! `Import request must be specified as a Paramters. …`, with its typo). Texts we could not
//! read in the sources are marked `PARAPHRASE` below. Where it simplifies (role assignments
//! read from the token's `roles` claim instead of Azure RBAC; `Patient/` and `Group/` exports
//! return every type), ARCHITECTURE.md says so.
//!
//! - `GET /metadata`: anonymous CapabilityStatement listing the `export` and `import`
//!   operations.
//! - `GET /$export`, `/Patient/$export`, `/Group/{id}/$export`: `Accept: application/fhir+json`
//!   and `Prefer: respond-async` required; `_type`, `_since`, `_container`; NDJSON written to
//!   Azurite as `<container>/<yyyyMMddTHHmmss>-<id>/<Type>-1.ndjson`; 202 + `Content-Location`.
//! - `POST /$import`: the service's 400 rules; each input read from Azurite, good lines stored,
//!   bad lines (not JSON, another type, no id, an invalid `birthDate` standing for the
//!   service's parsing of primitives) written as OperationOutcome NDJSON error files; 202 +
//!   `Content-Location`.
//! - `GET /_files/{container}/{name}`: an export file served with the Exporter role, when
//!   [`ServerOptions::requires_access_token`] makes manifests point here.
//! - `GET /_operations/{export|import}/{id}`: 202 with `X-Progress` and `Retry-After` for
//!   `polls_before_done` polls, then 200 with the completion body.
//! - Bearer tokens: `aud` must be the server URL and `exp` in the future (else 401
//!   `Authentication failed.`); the operation's role must be in `roles` (else 403
//!   `Authorization failed.`).
//! - Faults: [`FhirTestServer::inject`] answers the next N requests under a path with a status
//!   (429 with `Retry-After`, 503, …). Every response carries a fresh `x-ms-request-id`.
//! - `POST /{tenant}/oauth2/v2.0/token`: client credentials, with Entra's AADSTS errors.
//! - `GET /metadata/identity/oauth2/token`: IMDS (`Metadata: true` required).
//!
//! Tokens are unsigned but well-formed JWTs with the chosen aud/exp/roles.

use super::azurite::Azurite;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// Data-plane roles of the FHIR service.
pub const READER: &str = "FHIR Data Reader";
pub const WRITER: &str = "FHIR Data Writer";
pub const CONTRIBUTOR: &str = "FHIR Data Contributor";
pub const EXPORTER: &str = "FHIR Data Exporter";
pub const IMPORTER: &str = "FHIR Data Importer";

/// At most this many inputs per `$import` call (Azure docs).
pub const MAX_IMPORT_INPUTS: usize = 10_000;

/// How the server behaves.
#[derive(Clone)]
pub struct ServerOptions {
    /// Azurite, for `$export` output and `$import` input (export/import need it).
    pub storage: Option<Arc<Azurite>>,
    /// Default container of `$export` output.
    pub export_container: Option<String>,
    /// Container for `$import` error files.
    pub error_container: Option<String>,
    /// The import storage account configured on the service; default: Azurite's endpoint,
    /// else `https://importacct.blob.core.windows.net`.
    pub import_storage: Option<String>,
    /// Status polls answered 202 before the 200.
    pub polls_before_done: u32,
    /// `Retry-After` on 202 poll answers.
    pub retry_after_secs: u64,
    /// Seconds added to the issuer's clock (fake Entra and IMDS), to simulate clock skew.
    pub issuer_clock_offset: i64,
    /// Lifetime of issued tokens, seconds.
    pub token_lifetime: i64,
    /// Advertise `$export`/`$import` in the CapabilityStatement.
    pub advertise_bulk: bool,
    /// The audience the service accepts; default: its base URL.
    pub audience: Option<String>,
    /// Seconds added to the `Date` header (a server whose clock differs from ours).
    pub date_offset_secs: i64,
    /// Export manifests say `requiresAccessToken: true` and point at `/_files/…` on this
    /// server (which needs the Exporter role), as servers without Azure storage do.
    pub requires_access_token: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            storage: None,
            export_container: None,
            error_container: None,
            import_storage: None,
            polls_before_done: 1,
            retry_after_secs: 1,
            issuer_clock_offset: 0,
            token_lifetime: 3600,
            advertise_bulk: true,
            audience: None,
            date_offset_secs: 0,
            requires_access_token: false,
        }
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    /// The query string, percent-decoded (`_type=Patient&_since=…`), empty when none.
    pub query: String,
    pub status: u16,
    pub request_id: String,
}

struct Fault {
    path_prefix: String,
    status: u16,
    retry_after: Option<String>,
    remaining: u32,
}

struct Job {
    polls_left: u32,
    body: Value,
}

struct Client {
    tenant: String,
    secret: String,
    roles: Vec<String>,
}

struct Identity {
    client_id: Option<String>,
    roles: Vec<String>,
}

struct St {
    base: String,
    opts: ServerOptions,
    resources: Mutex<BTreeMap<String, Vec<String>>>,
    faults: Mutex<Vec<Fault>>,
    jobs: Mutex<HashMap<String, Job>>,
    next: AtomicU64,
    log: Mutex<Vec<Logged>>,
    clients: Mutex<HashMap<String, Client>>,
    identity: Mutex<Option<Identity>>,
    token_requests: AtomicU64,
}

/// A running test server; stops when dropped.
pub struct FhirTestServer {
    base: String,
    st: Arc<St>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for FhirTestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A two-thread tokio runtime for a test: the server runs on it, also while the test thread
/// blocks on a child process.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An unsigned-but-well-formed JWT with these claims.
pub fn jwt(claims: &Value) -> String {
    let enc = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    format!(
        "{}.{}.{}",
        enc(br#"{"typ":"JWT","alg":"RS256","kid":"fhirpipe-test"}"#),
        enc(claims.to_string().as_bytes()),
        enc(b"test-signature-not-verified")
    )
}

fn claims_of(token: &str) -> Option<Value> {
    let p = token.split('.').nth(1)?;
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(p.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&b).ok()
}

impl FhirTestServer {
    /// Binds 127.0.0.1:0 and serves on the current tokio runtime.
    pub async fn start(opts: ServerOptions) -> FhirTestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let st = Arc::new(St {
            base: base.clone(),
            opts,
            resources: Mutex::new(BTreeMap::new()),
            faults: Mutex::new(Vec::new()),
            jobs: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            log: Mutex::new(Vec::new()),
            clients: Mutex::new(HashMap::new()),
            identity: Mutex::new(None),
            token_requests: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/metadata", get(metadata))
            .route("/$export", get(export_system))
            .route("/Patient/$export", get(export_patient))
            .route("/Group/{id}/$export", get(export_group))
            .route("/$import", post(import))
            .route("/_operations/{kind}/{id}", get(poll))
            .route("/_files/{container}/{*name}", get(file))
            .route("/{tenant}/oauth2/v2.0/token", post(entra_token))
            .route("/metadata/identity/oauth2/token", get(imds_token))
            .layer(middleware::from_fn_with_state(st.clone(), faults_and_ids))
            // 10,001 import inputs are ~1.5 MB of JSON; axum's default limit is 2 MB.
            .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
            .with_state(st.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        FhirTestServer {
            base,
            st,
            shutdown: Some(tx),
        }
    }

    /// `http://127.0.0.1:PORT`: the FHIR base URL, the token audience, the Entra authority
    /// host and the IMDS endpoint.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Adds resources (NDJSON lines) of one type to the server's store.
    pub fn seed(&self, ty: &str, lines: &[String]) {
        let mut r = self.st.resources.lock().unwrap();
        r.entry(ty.to_string())
            .or_default()
            .extend(lines.iter().cloned());
    }

    /// The stored resources of one type.
    pub fn resources(&self, ty: &str) -> Vec<String> {
        self.st
            .resources
            .lock()
            .unwrap()
            .get(ty)
            .cloned()
            .unwrap_or_default()
    }

    /// Answers the next `times` requests whose path starts with `path_prefix` with `status`
    /// (and `Retry-After: retry_after` when given), before any other handling.
    pub fn inject(&self, path_prefix: &str, status: u16, retry_after: Option<&str>, times: u32) {
        self.st.faults.lock().unwrap().push(Fault {
            path_prefix: path_prefix.to_string(),
            status,
            retry_after: retry_after.map(str::to_string),
            remaining: times,
        });
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Logged> {
        self.st.log.lock().unwrap().clone()
    }

    /// Token requests answered by the fake Entra and IMDS endpoints.
    pub fn token_requests(&self) -> u64 {
        self.st.token_requests.load(Ordering::Relaxed)
    }

    /// A token for this server with these roles, valid for an hour.
    pub fn token(&self, roles: &[&str]) -> String {
        let t = now();
        jwt(&json!({
            "aud": self.base, "iat": t, "nbf": t, "exp": t + 3600,
            "oid": "00000000-0000-0000-0000-0000000000aa", "tid": "test-tenant", "roles": roles,
        }))
    }

    /// Registers an app (client credentials) in a tenant with these data-plane roles.
    pub fn register_client(&self, tenant: &str, client_id: &str, secret: &str, roles: &[&str]) {
        self.st.clients.lock().unwrap().insert(
            client_id.to_string(),
            Client {
                tenant: tenant.to_string(),
                secret: secret.to_string(),
                roles: roles.iter().map(|r| r.to_string()).collect(),
            },
        );
    }

    /// Gives the "machine" a managed identity (user-assigned when `client_id` is given).
    pub fn set_managed_identity(&self, client_id: Option<&str>, roles: &[&str]) {
        *self.st.identity.lock().unwrap() = Some(Identity {
            client_id: client_id.map(str::to_string),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Plumbing: request ids, faults, OperationOutcomes, auth.

async fn faults_and_ids(State(st): State<Arc<St>>, req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req
        .uri()
        .query()
        .map(|q| {
            reqwest::Url::parse(&format!("http://q/?{q}"))
                .map(|u| {
                    u.query_pairs()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
                .into_iter()
                .collect::<Vec<_>>()
                .join("&")
        })
        .unwrap_or_default();
    let n = st.next.fetch_add(1, Ordering::Relaxed);
    let rid = format!("req-{n:04}");
    let fault = {
        let mut faults = st.faults.lock().unwrap();
        let hit = faults
            .iter_mut()
            .find(|f| f.remaining > 0 && path.starts_with(&f.path_prefix));
        hit.map(|f| {
            f.remaining -= 1;
            (f.status, f.retry_after.clone())
        })
    };
    let mut resp = match fault {
        Some((status, retry_after)) => {
            let mut r = outcome(
                StatusCode::from_u16(status).unwrap(),
                "throttled",
                &format!("Injected fault {status}."),
            );
            if let Some(ra) = retry_after {
                r.headers_mut()
                    .insert("retry-after", HeaderValue::from_str(&ra).unwrap());
            }
            r
        }
        None => next.run(req).await,
    };
    resp.headers_mut()
        .insert("x-ms-request-id", HeaderValue::from_str(&rid).unwrap());
    if st.opts.date_offset_secs != 0 {
        let off = st.opts.date_offset_secs;
        let t = if off > 0 {
            SystemTime::now() + std::time::Duration::from_secs(off as u64)
        } else {
            SystemTime::now() - std::time::Duration::from_secs((-off) as u64)
        };
        let date = super::azurite::http_date(t);
        resp.headers_mut()
            .insert("date", HeaderValue::from_str(&date).unwrap());
    }
    st.log.lock().unwrap().push(Logged {
        method,
        path,
        query,
        status: resp.status().as_u16(),
        request_id: rid,
    });
    resp
}

fn outcome(status: StatusCode, code: &str, diagnostics: &str) -> Response {
    let body = json!({
        "resourceType": "OperationOutcome",
        "id": format!("{:x}", now()),
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    });
    (
        status,
        [("content-type", "application/fhir+json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn bad_request(diagnostics: &str) -> Response {
    outcome(StatusCode::BAD_REQUEST, "invalid", diagnostics)
}

// Handlers answer with axum Responses; boxing the error side buys nothing in a test server.
#[allow(clippy::result_large_err)]
/// 401 unless the bearer token is for this server and unexpired; 403 unless it has one of
/// `roles`.
fn authorize(st: &St, headers: &HeaderMap, roles: &[&str]) -> Result<(), Response> {
    let unauthorized = || {
        let mut r = outcome(StatusCode::UNAUTHORIZED, "login", "Authentication failed.");
        let www = format!(
            "Bearer authorization_uri=\"{}/test-tenant\", resource_id=\"{}\", realm=\"{}\"",
            st.base, st.base, st.base
        );
        r.headers_mut()
            .insert("www-authenticate", HeaderValue::from_str(&www).unwrap());
        r
    };
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(unauthorized)?;
    let claims = claims_of(token).ok_or_else(unauthorized)?;
    let want = st.opts.audience.as_deref().unwrap_or(&st.base);
    let aud_ok = match &claims["aud"] {
        Value::String(a) => a == want,
        Value::Array(a) => a.iter().any(|x| x.as_str() == Some(want)),
        _ => false,
    };
    let exp_ok = claims["exp"].as_i64().is_some_and(|e| e > now());
    if !aud_ok || !exp_ok {
        return Err(unauthorized());
    }
    let has = claims["roles"].as_array().is_some_and(|rs| {
        rs.iter()
            .any(|r| roles.iter().any(|w| r.as_str() == Some(*w)))
    });
    if !has {
        return Err(outcome(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Authorization failed.",
        ));
    }
    Ok(())
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn accepted(st: &St, kind: &str, body: Value) -> Response {
    let id = format!("{:x}", st.next.fetch_add(1, Ordering::Relaxed) + 1000);
    st.jobs.lock().unwrap().insert(
        format!("{kind}/{id}"),
        Job {
            polls_left: st.opts.polls_before_done,
            body,
        },
    );
    let loc = format!("{}/_operations/{kind}/{id}", st.base);
    (
        StatusCode::ACCEPTED,
        [("content-location", loc)],
        String::new(),
    )
        .into_response()
}

fn compact_utc(t: i64) -> String {
    // yyyyMMddTHHmmss, the export folder prefix.
    fhirpipe::util::calendar::rfc3339_utc(t)
        .replace(['-', ':'], "")
        .trim_end_matches('Z')
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// FHIR endpoints.

async fn metadata(State(st): State<Arc<St>>) -> Response {
    let mut ops = vec![];
    if st.opts.advertise_bulk {
        ops.push(json!({"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"}));
        ops.push(json!({"name": "import", "definition": format!("{}/OperationDefinition/import", st.base)}));
    }
    let body = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "software": {"name": "fhirpipe test server"},
        "implementation": {"url": st.base},
        "rest": [{"mode": "server", "operation": ops}],
    });
    (
        [("content-type", "application/fhir+json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

async fn export_system(
    State(st): State<Arc<St>>,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    export(st, h, q, "$export".into(), None).await
}

async fn export_patient(
    State(st): State<Arc<St>>,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    export(st, h, q, "Patient/$export".into(), None).await
}

async fn export_group(
    State(st): State<Arc<St>>,
    Path(id): Path<String>,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    export(st, h, q, format!("Group/{id}/$export"), Some(id)).await
}

async fn export(
    st: Arc<St>,
    h: HeaderMap,
    q: HashMap<String, String>,
    path: String,
    group: Option<String>,
) -> Response {
    if let Err(r) = authorize(&st, &h, &[EXPORTER]) {
        return r;
    }
    // PARAPHRASE: the service's texts for these two header checks.
    if header(&h, "accept") != Some("application/fhir+json") {
        return bad_request("The Accept header must be application/fhir+json.");
    }
    if header(&h, "prefer") != Some("respond-async") {
        return bad_request("The Prefer header must be respond-async.");
    }
    let Some(az) = st.opts.storage.clone() else {
        return bad_request("The export storage account is not configured.");
    };
    let store = st.resources.lock().unwrap().clone();
    if let Some(g) = &group {
        let found = store.get("Group").is_some_and(|gs| {
            gs.iter().any(|l| {
                serde_json::from_str::<Value>(l).is_ok_and(|v| v["id"].as_str() == Some(g.as_str()))
            })
        });
        if !found {
            return outcome(
                StatusCode::NOT_FOUND,
                "not-found",
                &format!("Resource type 'Group' with id '{g}' couldn't be found."),
            );
        }
    }
    let types: Option<Vec<String>> = q
        .get("_type")
        .map(|t| t.split(',').map(|s| s.trim().to_string()).collect());
    if let Some(ts) = &types {
        if let Some(bad) = ts
            .iter()
            .find(|t| !fhirpipe::fhir::RESOURCE_TYPES.contains(&t.as_str()))
        {
            return bad_request(&format!("The resource type '{bad}' is not supported."));
        }
    }
    let since = q.get("_since").cloned();
    let container = q
        .get("_container")
        .cloned()
        .or_else(|| st.opts.export_container.clone())
        .unwrap_or_else(|| "fhirexport".into());
    let job_no = st.next.fetch_add(1, Ordering::Relaxed);
    let t = now();
    let folder = format!("{}-{job_no:08x}", compact_utc(t));
    let mut files: Vec<(String, String, Vec<String>)> = Vec::new();
    for (ty, lines) in &store {
        if types.as_ref().is_some_and(|ts| !ts.contains(ty)) {
            continue;
        }
        let picked: Vec<String> = lines
            .iter()
            .filter(|l| match &since {
                None => true,
                Some(s) => serde_json::from_str::<Value>(l).is_ok_and(|v| {
                    v["meta"]["lastUpdated"]
                        .as_str()
                        .is_some_and(|u| u >= s.as_str())
                }),
            })
            .cloned()
            .collect();
        if !picked.is_empty() {
            files.push((ty.clone(), format!("{folder}/{ty}-1.ndjson"), picked));
        }
    }
    let endpoint = az.endpoint();
    let c2 = container.clone();
    let to_write = files.clone();
    let written = tokio::task::spawn_blocking(move || {
        for (_, name, lines) in &to_write {
            let mut body = lines.join("\n");
            body.push('\n');
            let r = az.put_blob(&c2, name, body.as_bytes())?;
            if r.status != 201 {
                return Err(std::io::Error::other(format!(
                    "put {name}: {} {}",
                    r.status, r.body
                )));
            }
        }
        Ok::<(), std::io::Error>(())
    })
    .await
    .unwrap();
    if let Err(e) = written {
        return outcome(
            StatusCode::INTERNAL_SERVER_ERROR,
            "exception",
            &e.to_string(),
        );
    }
    let output: Vec<Value> = files
        .iter()
        .map(|(ty, name, lines)| {
            let url = if st.opts.requires_access_token {
                format!("{}/_files/{container}/{name}", st.base)
            } else {
                format!("{endpoint}/{container}/{name}")
            };
            json!({"type": ty, "url": url, "count": lines.len()})
        })
        .collect();
    let mut request = format!("{}/{path}", st.base);
    let mut qs: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
    qs.sort();
    if !qs.is_empty() {
        request = format!("{request}?{}", qs.join("&"));
    }
    let manifest = json!({
        "transactionTime": fhirpipe::util::calendar::rfc3339_utc(t),
        "request": request,
        "requiresAccessToken": st.opts.requires_access_token,
        "output": output,
        "error": [],
    });
    accepted(&st, "export", manifest)
}

async fn poll(
    State(st): State<Arc<St>>,
    Path((kind, id)): Path<(String, String)>,
    h: HeaderMap,
) -> Response {
    let key = format!("{kind}/{id}");
    // The role is checked before the job is looked up, as a request pipeline does.
    let role = if kind == "import" { IMPORTER } else { EXPORTER };
    if let Err(r) = authorize(&st, &h, &[role]) {
        return r;
    }
    if !st.jobs.lock().unwrap().contains_key(&key) {
        return outcome(
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("The requested job \"{id}\" was not found."),
        );
    }
    let mut jobs = st.jobs.lock().unwrap();
    let job = jobs.get_mut(&key).unwrap();
    if job.polls_left > 0 {
        job.polls_left -= 1;
        return (
            StatusCode::ACCEPTED,
            [
                ("x-progress", "In progress".to_string()),
                ("retry-after", st.opts.retry_after_secs.to_string()),
            ],
            String::new(),
        )
            .into_response();
    }
    (
        StatusCode::OK,
        [("content-type", "application/json; charset=utf-8")],
        job.body.to_string(),
    )
        .into_response()
}

/// `GET /_files/{container}/{name}`: an export file, for the Exporter role only.
async fn file(
    State(st): State<Arc<St>>,
    Path((container, name)): Path<(String, String)>,
    h: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&st, &h, &[EXPORTER]) {
        return r;
    }
    let Some(az) = st.opts.storage.clone() else {
        return bad_request("The export storage account is not configured.");
    };
    let got = tokio::task::spawn_blocking(move || az.get_blob(&container, &name))
        .await
        .unwrap();
    match got {
        Ok(r) if r.status == 200 => {
            ([("content-type", "application/fhir+ndjson")], r.body).into_response()
        }
        _ => outcome(
            StatusCode::NOT_FOUND,
            "not-found",
            "The file was not found.",
        ),
    }
}

struct ImportInput {
    ty: String,
    url: String,
}

#[allow(clippy::result_large_err)]
/// The `$import` checks, in the order of microsoft/fhir-server's ImportController.
fn check_import(st: &St, body: &[u8]) -> Result<(String, Vec<ImportInput>), Response> {
    const NOT_PARAMETERS: &str =
        "Import request must be specified as a Paramters.  The body provided in this request is not valid. ";
    let invalid =
        |p: &str| bad_request(&format!("Value of the following parameter {p} is invalid."));
    let v: Value = serde_json::from_slice(body).map_err(|_| bad_request(NOT_PARAMETERS))?;
    if v["resourceType"] != "Parameters" {
        return Err(bad_request(NOT_PARAMETERS));
    }
    let params = v["parameter"].as_array().cloned().unwrap_or_default();
    let value = |p: &Value| {
        p["valueString"]
            .as_str()
            .or(p["valueUri"].as_str())
            .or(p["valueUrl"].as_str())
            .map(str::to_string)
    };
    let find = |name: &str| params.iter().find(|p| p["name"] == name).and_then(value);
    if find("inputFormat").as_deref() != Some("application/fhir+ndjson") {
        return Err(invalid("inputFormat"));
    }
    let mode = find("mode").unwrap_or_else(|| "IncrementalLoad".into());
    if mode != "InitialLoad" && mode != "IncrementalLoad" {
        return Err(invalid("mode"));
    }
    let inputs: Vec<ImportInput> = params
        .iter()
        .filter(|p| p["name"] == "input")
        .map(|p| {
            let parts = p["part"].as_array().cloned().unwrap_or_default();
            let get = |n: &str| {
                parts
                    .iter()
                    .find(|x| x["name"] == n)
                    .and_then(value)
                    .unwrap_or_default()
            };
            ImportInput {
                ty: get("type"),
                url: get("url"),
            }
        })
        .collect();
    if inputs.is_empty() {
        return Err(invalid("input"));
    }
    if inputs.len() > MAX_IMPORT_INPUTS {
        // PARAPHRASE: the documented limit; the service's text was not in the sources read.
        return Err(bad_request(&format!(
            "The number of input files {} exceeds the maximum of {MAX_IMPORT_INPUTS}.",
            inputs.len()
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut dups: Vec<&str> = Vec::new();
    for i in &inputs {
        if !seen.insert(i.url.as_str()) && !dups.contains(&i.url.as_str()) {
            dups.push(&i.url);
        }
    }
    if !dups.is_empty() {
        // PARAPHRASE of ImportRequestDuplicateInputFiles ({0} = the URLs joined by ", ").
        return Err(bad_request(&format!(
            "Duplicate input files: {}.",
            dups.join(", ")
        )));
    }
    let storage = import_storage(st);
    let storage = reqwest::Url::parse(&storage).unwrap();
    for i in &inputs {
        if !i.ty.is_empty() && !fhirpipe::fhir::RESOURCE_TYPES.contains(&i.ty.as_str()) {
            return Err(bad_request(&format!(
                "The resource type '{}' is not supported.",
                i.ty
            )));
        }
        let url = match reqwest::Url::parse(&i.url) {
            Ok(u) if u.query().is_none() => u,
            _ => return Err(invalid("input.url")),
        };
        if url.scheme() != storage.scheme() || url.host_str() != storage.host_str() {
            // PARAPHRASE of ImportRequestInputUrlStorageEndpointMismatch.
            return Err(bad_request(
                "The input URL is not on the storage account configured for import.",
            ));
        }
    }
    if inputs.iter().any(|i| i.ty == "SearchParameter") {
        return Err(bad_request(
            "The resource type 'SearchParameter' is not supported.",
        ));
    }
    Ok((mode, inputs))
}

/// A FHIR `date`: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
fn is_fhir_date(d: &str) -> bool {
    let b = d.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    match b.len() {
        4 => digits(0..4),
        7 => digits(0..4) && b[4] == b'-' && digits(5..7),
        10 => digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10),
        _ => false,
    }
}

fn import_storage(st: &St) -> String {
    st.opts.import_storage.clone().unwrap_or_else(|| {
        st.opts
            .storage
            .as_ref()
            .map(|a| a.endpoint())
            .unwrap_or_else(|| "https://importacct.blob.core.windows.net".into())
    })
}

async fn import(State(st): State<Arc<St>>, h: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authorize(&st, &h, &[IMPORTER]) {
        return r;
    }
    if header(&h, "prefer") != Some("respond-async") {
        // PARAPHRASE: the service refuses a synchronous $import.
        return bad_request("The Prefer header must be respond-async.");
    }
    let (_mode, inputs) = match check_import(&st, &body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Some(az) = st.opts.storage.clone() else {
        return bad_request("The import storage account is not configured.");
    };
    let account_prefix = format!("{}/", az.endpoint());
    let err_container = st
        .opts
        .error_container
        .clone()
        .unwrap_or_else(|| "fhirlogs".into());
    let job_no = st.next.fetch_add(1, Ordering::Relaxed);
    let endpoint = az.endpoint();
    let inputs2: Vec<(String, String)> = inputs
        .iter()
        .map(|i| (i.ty.clone(), i.url.clone()))
        .collect();
    let ec = err_container.clone();
    // Read each input, keep the good lines, write the bad ones as OperationOutcomes.
    let done = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for (n, (ty, url)) in inputs2.iter().enumerate() {
            let path = url.strip_prefix(&account_prefix).unwrap_or(url);
            let (container, name) = path.split_once('/').unwrap_or((path, ""));
            let r = az.get_blob(container, name)?;
            let mut good = Vec::new();
            let mut errors = Vec::new();
            if r.status != 200 {
                errors.push(json!({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing","diagnostics": format!("Failed to read {url}: HTTP {}", r.status)}]}).to_string());
            } else {
                for (i, line) in r.body.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let v: Option<Value> = serde_json::from_str(line).ok();
                    let why = match &v {
                        None => Some("Failed to parse the resource.".to_string()),
                        Some(v) if v["resourceType"].as_str() != Some(ty.as_str()) => Some(format!(
                            "The resource type is not {ty}."
                        )),
                        Some(v) if v["id"].as_str().is_none() => {
                            Some("The resource has no id.".to_string())
                        }
                        // The service parses resources with the FHIR model and refuses
                        // invalid primitives; birthDate stands for that check here.
                        Some(v) if v["birthDate"].as_str().is_some_and(|d| !is_fhir_date(d)) => {
                            Some(format!(
                                "Invalid value '{}' for birthDate.",
                                v["birthDate"].as_str().unwrap_or_default()
                            ))
                        }
                        _ => None,
                    };
                    match why {
                        None => good.push(line.to_string()),
                        Some(w) => errors.push(
                            json!({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing","details":{"text": w},"diagnostics": format!("Failed to process line #{}: {w}", i + 1)}]})
                                .to_string(),
                        ),
                    }
                }
            }
            let err_url = if errors.is_empty() {
                None
            } else {
                let name = format!("{job_no:08x}/{ty}-{n}.ndjson");
                let mut b = errors.join("\n");
                b.push('\n');
                az.put_blob(&ec, &name, b.as_bytes())?;
                Some(format!("{endpoint}/{ec}/{name}"))
            };
            out.push((ty.clone(), url.clone(), good, errors.len(), err_url));
        }
        Ok::<_, std::io::Error>(out)
    })
    .await
    .unwrap();
    let results = match done {
        Ok(r) => r,
        Err(e) => {
            return outcome(
                StatusCode::INTERNAL_SERVER_ERROR,
                "exception",
                &e.to_string(),
            )
        }
    };
    let mut output = Vec::new();
    let mut error = Vec::new();
    {
        let mut store = st.resources.lock().unwrap();
        for (ty, url, good, nerr, err_url) in results {
            output.push(json!({"type": ty, "count": good.len(), "inputUrl": url}));
            if let Some(u) = err_url {
                error.push(json!({"type": ty, "count": nerr, "inputUrl": url, "url": u}));
            }
            store.entry(ty).or_default().extend(good);
        }
    }
    let completion = json!({
        "transactionTime": fhirpipe::util::calendar::rfc3339_utc(now()),
        "request": format!("{}/$import", st.base),
        "output": output,
        "error": error,
    });
    accepted(&st, "import", completion)
}

// ---------------------------------------------------------------------------------------------
// Fake Entra and IMDS.

fn issue(st: &St, aud: &str, tenant: &str, oid: &str, roles: &[String]) -> String {
    let t = now() + st.opts.issuer_clock_offset;
    jwt(&json!({
        "aud": aud, "iss": format!("https://sts.windows.net/{tenant}/"),
        "iat": t, "nbf": t, "exp": t + st.opts.token_lifetime,
        "oid": oid, "tid": tenant, "roles": roles,
    }))
}

fn entra_error(status: StatusCode, error: &str, code: u32, text: &str) -> Response {
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {text}\r\nTrace ID: 0000\r\nCorrelation ID: 0000\r\nTimestamp: 2026-11-23 12:00:00Z"),
        "error_codes": [code],
        "trace_id": "0000",
        "correlation_id": "0000",
    });
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn entra_token(
    State(st): State<Arc<St>>,
    Path(tenant): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    st.token_requests.fetch_add(1, Ordering::Relaxed);
    let clients = st.clients.lock().unwrap();
    if !clients.values().any(|c| c.tenant == tenant) {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
        );
    }
    let id = f.get("client_id").cloned().unwrap_or_default();
    let Some(c) = clients.get(&id).filter(|c| c.tenant == tenant) else {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{id}' was not found in the directory '{tenant}'."
            ),
        );
    };
    if f.get("client_secret") != Some(&c.secret) {
        return entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app.",
        );
    }
    let scope = f.get("scope").cloned().unwrap_or_default();
    let resource = scope.strip_suffix("/.default").unwrap_or(&scope);
    if resource != st.base {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            &format!("The resource principal named {resource} was not found in the tenant named {tenant}."),
        );
    }
    let token = issue(&st, resource, &tenant, &format!("oid-{id}"), &c.roles);
    let body = json!({"token_type": "Bearer", "expires_in": st.opts.token_lifetime, "ext_expires_in": st.opts.token_lifetime, "access_token": token});
    ([("content-type", "application/json")], body.to_string()).into_response()
}

async fn imds_token(
    State(st): State<Arc<St>>,
    h: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    st.token_requests.fetch_add(1, Ordering::Relaxed);
    let err = |d: &str| {
        (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/json")],
            json!({"error": "invalid_request", "error_description": d}).to_string(),
        )
            .into_response()
    };
    if header(&h, "metadata") != Some("true") {
        return err("Required metadata header not specified");
    }
    let identity = st.identity.lock().unwrap();
    let Some(idn) = identity
        .as_ref()
        .filter(|i| !q.contains_key("client_id") || q.get("client_id") == i.client_id.as_ref())
    else {
        return err("Identity not found");
    };
    let resource = q.get("resource").cloned().unwrap_or_default();
    let token = issue(
        &st,
        &resource,
        "test-tenant",
        "oid-managed-identity",
        &idn.roles,
    );
    let t = now() + st.opts.issuer_clock_offset;
    let body = json!({
        "access_token": token, "client_id": idn.client_id.clone().unwrap_or_else(|| "system".into()),
        "expires_in": st.opts.token_lifetime.to_string(), "expires_on": (t + st.opts.token_lifetime).to_string(),
        "ext_expires_in": st.opts.token_lifetime.to_string(), "not_before": t.to_string(),
        "resource": resource, "token_type": "Bearer",
    });
    ([("content-type", "application/json")], body.to_string()).into_response()
}
