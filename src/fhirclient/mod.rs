//! The FHIR REST calls of bulk data, on top of [`crate::http`] and [`crate::auth`]:
//! `/metadata` (anonymous), `$export` and `$import` kick-off (`Prefer: respond-async`,
//! 202 + `Content-Location`), and status polling until the completion body (honouring
//! `Retry-After`, reporting `X-Progress`). A 401 drops the cached token and tries once more
//! with a new one; what remains of a 401 or 403 becomes an error that says which data-plane
//! role the operation needs.

mod error;

pub use error::{FhirError, Operation};

use crate::auth::TokenProvider;
use crate::http::{parse_retry_after, HttpClient, HttpError, Idempotency};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Waiting between status polls when the server sends no `Retry-After`.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10);

/// What `/metadata` says, as far as bulk data cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    /// `fhirVersion`.
    pub fhir_version: Option<String>,
    /// Names of `rest[].operation[]` (e.g. `export`, `import`).
    pub operations: Vec<String>,
    /// The server's `Date` header (for a clock-skew check).
    pub server_date: Option<SystemTime>,
}

/// One status poll that was not the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The `X-Progress` header, when sent.
    pub x_progress: Option<String>,
    /// How long the client waits before the next poll.
    pub wait: Duration,
    /// Polls so far (1-based).
    pub polls: u32,
}

/// A client of one FHIR service.
#[derive(Debug, Clone)]
pub struct FhirClient {
    base: String,
    http: HttpClient,
    tokens: Option<Arc<TokenProvider>>,
    poll_interval: Duration,
    max_poll_wait: Option<Duration>,
}

impl FhirClient {
    /// A client of the service at `base` (a trailing slash is ignored); `tokens` is `None`
    /// for an unauthenticated server.
    pub fn new(base: &str, http: HttpClient, tokens: Option<Arc<TokenProvider>>) -> FhirClient {
        FhirClient {
            base: base.trim_end_matches('/').to_string(),
            http,
            tokens,
            poll_interval: DEFAULT_POLL_INTERVAL,
            max_poll_wait: None,
        }
    }

    /// The service base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Changes the wait between polls when the server sends no `Retry-After`.
    pub fn with_poll_interval(mut self, d: Duration) -> FhirClient {
        self.poll_interval = d;
        self
    }

    /// Caps the wait between polls (a longer `Retry-After` is cut to this); default: the
    /// retry policy's `max_retry_after`.
    pub fn with_max_poll_wait(mut self, d: Duration) -> FhirClient {
        self.max_poll_wait = Some(d);
        self
    }

    /// `GET url` for a bulk data file (`Accept: application/fhir+ndjson`), with the bearer
    /// token when `with_token` (a manifest with `requiresAccessToken: true`), else anonymous.
    /// The body is left to the caller to stream.
    pub async fn get_file(
        &self,
        url: &str,
        with_token: bool,
    ) -> Result<reqwest::Response, FhirError> {
        let accept = |r: reqwest::RequestBuilder| r.header("Accept", "application/fhir+ndjson");
        if with_token {
            return self
                .send(
                    Operation::Export,
                    reqwest::Method::GET,
                    url,
                    Idempotency::Idempotent,
                    accept,
                )
                .await;
        }
        self.http
            .send(reqwest::Method::GET, url, Idempotency::Idempotent, accept)
            .await
            .map_err(|e| FhirError::from_http(Operation::Export, e, None))
    }

    async fn send<F>(
        &self,
        op: Operation,
        method: reqwest::Method,
        url: &str,
        idem: Idempotency,
        build: F,
    ) -> Result<reqwest::Response, FhirError>
    where
        F: Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    {
        let Some(tokens) = &self.tokens else {
            return self
                .http
                .send(method, url, idem, build)
                .await
                .map_err(|e| FhirError::from_http(op, e, None));
        };
        let mut retried_401 = false;
        loop {
            let token = tokens.token().await.map_err(FhirError::Auth)?;
            let r = self
                .http
                .send(method.clone(), url, idem, |r| {
                    build(r).bearer_auth(token.bearer())
                })
                .await;
            match r {
                Err(e)
                    if e.is_unauthorized() && !retried_401 && tokens.method() != "bearer_token" =>
                {
                    tokens.invalidate().await;
                    retried_401 = true;
                }
                Err(e) => return Err(FhirError::from_http(op, e, Some(&token.claims))),
                Ok(resp) => return Ok(resp),
            }
        }
    }

    /// `GET /metadata` (anonymous, as on Azure).
    pub async fn capability(&self) -> Result<Capability, FhirError> {
        let url = format!("{}/metadata", self.base);
        let resp = self
            .http
            .send(reqwest::Method::GET, &url, Idempotency::Idempotent, |r| {
                r.header("Accept", "application/fhir+json")
            })
            .await
            .map_err(|e| FhirError::from_http(Operation::Metadata, e, None))?;
        let server_date = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::http::parse_http_date);
        let v = json_body(resp, &url).await?;
        if v["resourceType"] != "CapabilityStatement" {
            return Err(FhirError::Protocol(format!(
                "GET {url} did not return a CapabilityStatement; fix: the URL must be the FHIR \
service base (https://<workspace>-<service>.fhir.azurehealthcareapis.com)"
            )));
        }
        let mut operations: Vec<String> = v["rest"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["operation"].as_array().into_iter().flatten())
            .filter_map(|o| o["name"].as_str().map(str::to_string))
            .collect();
        operations.sort();
        operations.dedup();
        Ok(Capability {
            fhir_version: v["fhirVersion"].as_str().map(str::to_string),
            operations,
            server_date,
        })
    }

    /// Kicks off `$export` at `level` (`$export`, `Patient/$export`, `Group/{id}/$export`)
    /// with query parameters (`_type`, `_since`, …); returns the status URL.
    pub async fn kick_off_export(
        &self,
        level: &str,
        query: &[(&str, &str)],
    ) -> Result<String, FhirError> {
        let mut url = reqwest::Url::parse(&format!("{}/{level}", self.base))
            .map_err(|e| FhirError::Protocol(format!("bad export URL: {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let resp = self
            .send(
                Operation::Export,
                reqwest::Method::GET,
                url.as_str(),
                Idempotency::NotIdempotent,
                |r| {
                    r.header("Accept", "application/fhir+json")
                        .header("Prefer", "respond-async")
                },
            )
            .await?;
        content_location(&resp, url.as_str())
    }

    /// Kicks off `$import` with a `Parameters` body; returns the status URL.
    pub async fn kick_off_import(&self, parameters: &Value) -> Result<String, FhirError> {
        let url = format!("{}/$import", self.base);
        let body = parameters.to_string();
        let resp = self
            .send(
                Operation::Import,
                reqwest::Method::POST,
                &url,
                Idempotency::NotIdempotent,
                |r| {
                    r.header("Content-Type", "application/fhir+json")
                        .header("Prefer", "respond-async")
                        .body(body.clone())
                },
            )
            .await?;
        content_location(&resp, &url)
    }

    /// Polls a status URL until it answers 200; returns the completion body. Each 202 is
    /// reported to `progress` before the wait (`Retry-After`, else the poll interval).
    pub async fn poll(
        &self,
        op: Operation,
        status_url: &str,
        progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<Value, FhirError> {
        let mut polls = 0u32;
        loop {
            polls += 1;
            let resp = self
                .send(
                    op,
                    reqwest::Method::GET,
                    status_url,
                    Idempotency::Idempotent,
                    |r| r.header("Accept", "application/json"),
                )
                .await?;
            if resp.status().as_u16() == 202 {
                let h = resp.headers();
                let x_progress = h
                    .get("x-progress")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let wait = h
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()))
                    .map(|d| {
                        d.min(
                            self.max_poll_wait
                                .unwrap_or(self.http.policy().max_retry_after),
                        )
                    })
                    .unwrap_or(self.poll_interval);
                progress(&Progress {
                    x_progress,
                    wait,
                    polls,
                });
                self.http.sleep(wait).await;
                continue;
            }
            return json_body(resp, status_url).await;
        }
    }
}

impl FhirClient {
    /// An authenticated, side-effect-free call that needs the operation's data-plane role:
    /// the status of a job id that does not exist (`_operations/{export|import}/0`). A 404
    /// (or any answer but 401/403) means the token is accepted and the role is there; returns
    /// that status.
    pub async fn probe(&self, op: Operation) -> Result<u16, FhirError> {
        let kind = match op {
            Operation::Import => "import",
            _ => "export",
        };
        let url = format!("{}/_operations/{kind}/0", self.base);
        match self
            .send(
                op,
                reqwest::Method::GET,
                &url,
                Idempotency::Idempotent,
                |r| r,
            )
            .await
        {
            Ok(resp) => Ok(resp.status().as_u16()),
            Err(FhirError::Http(e)) if e.status.is_some() => Ok(e.status.unwrap_or(0)),
            Err(e) => Err(e),
        }
    }
}

fn content_location(resp: &reqwest::Response, url: &str) -> Result<String, FhirError> {
    if resp.status().as_u16() != 202 {
        return Err(FhirError::Protocol(format!(
            "{url} answered {} instead of 202 Accepted; fix: send `Prefer: respond-async` \
(fhirpipe does) and check the URL is the FHIR service base",
            resp.status().as_u16()
        )));
    }
    resp.headers()
        .get(reqwest::header::CONTENT_LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| {
            FhirError::Protocol(format!(
                "{url} answered 202 without a Content-Location header"
            ))
        })
}

async fn json_body(resp: reqwest::Response, url: &str) -> Result<Value, FhirError> {
    let rid = crate::http::request_id(resp.headers());
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| FhirError::Protocol(format!("reading the answer of {url}: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        FhirError::Protocol(format!(
            "{url} answered something that is not JSON ({e}) [x-ms-request-id: {}]",
            rid.as_deref().unwrap_or("none")
        ))
    })
}

impl From<HttpError> for FhirError {
    fn from(e: HttpError) -> Self {
        FhirError::from_http(Operation::Read, e, None)
    }
}

/// The `$import` body: a `Parameters` with `inputFormat = application/fhir+ndjson`, `mode`
/// (`InitialLoad` or `IncrementalLoad`) and one `input` (`type`, `url`) per file.
pub fn import_parameters(mode: &str, inputs: &[(&str, &str)]) -> Value {
    let mut parameter = vec![
        serde_json::json!({"name": "inputFormat", "valueString": "application/fhir+ndjson"}),
        serde_json::json!({"name": "mode", "valueString": mode}),
    ];
    parameter.extend(inputs.iter().map(|(ty, url)| {
        serde_json::json!({"name": "input", "part": [
            {"name": "type", "valueString": ty},
            {"name": "url", "valueUri": url},
        ]})
    }));
    serde_json::json!({"resourceType": "Parameters", "parameter": parameter})
}
