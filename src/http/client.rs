//! The client wrapper: builds one reqwest client (rustls, timeouts, no proxy surprises) and
//! sends requests through the retry loop.
//!
//! Retries: any request is retried on 429 and 503 (the server did not act on it) and on
//! connection failures (it was never sent). Idempotent requests (GET, polling, token
//! requests) are also retried on 500, 502, 504 and timeouts; a kick-off `POST` is not, since
//! the server may have started the operation.

use super::error::{excerpt, request_id, HttpError, HttpErrorKind};
use super::retry::{parse_retry_after, retryable_status, RetryPolicy, Sleeper, TokioSleeper};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Settings of the HTTP client.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Time to establish a connection (DNS + TCP + TLS).
    pub connect_timeout: Duration,
    /// Time for one attempt, from sending to the end of the response headers and body read
    /// by [`HttpClient::send`]'s caller.
    pub timeout: Duration,
    /// Retry policy.
    pub retry: RetryPolicy,
}

impl Default for HttpConfig {
    /// 10 s to connect, 120 s per attempt, [`RetryPolicy::default`].
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
        }
    }
}

/// Whether a request may be repeated after an answer that leaves its effect unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Repeating has no further effect (GET, status polls, token requests).
    Idempotent,
    /// Repeating may start a second operation (`POST $export`, `POST $import`).
    NotIdempotent,
}

/// The HTTP client of the FHIR endpoints (cheap to clone).
#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    policy: RetryPolicy,
    sleeper: Arc<dyn Sleeper>,
    jitter: Arc<dyn Fn() -> f64 + Send + Sync>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client with tokio sleeps and random jitter.
    pub fn new(cfg: &HttpConfig) -> Result<HttpClient, HttpError> {
        let inner = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .timeout(cfg.timeout)
            .user_agent(concat!("fhirpipe/", env!("CARGO_PKG_VERSION")))
            // Polls answer 202 with Content-Location; nothing here should follow redirects
            // silently to another host with our token.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| HttpError::new(HttpErrorKind::Client(e.to_string()), "-", "-"))?;
        Ok(HttpClient {
            inner,
            policy: cfg.retry.clone(),
            sleeper: Arc::new(TokioSleeper),
            jitter: Arc::new(fastrand::f64),
        })
    }

    /// Replaces how the client waits between attempts (tests record instead of sleeping).
    pub fn with_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// Replaces the jitter source (a number in [0, 1)).
    pub fn with_jitter(mut self, jitter: Arc<dyn Fn() -> f64 + Send + Sync>) -> Self {
        self.jitter = jitter;
        self
    }

    /// Waits through the client's sleeper (so tests that record delays see poll waits too).
    pub async fn sleep(&self, d: Duration) {
        self.sleeper.sleep(d).await
    }

    /// The retry policy in force.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The underlying reqwest client.
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner
    }

    /// Sends `method url`, with `build` adding headers and body on each attempt (so a token
    /// refreshed between attempts is used), retrying per the policy. Returns the response of
    /// the first attempt with a status below 400; any other outcome is an [`HttpError`] with
    /// the body excerpt and request id of the last answer.
    pub async fn send<F>(
        &self,
        method: reqwest::Method,
        url: &str,
        idempotency: Idempotency,
        build: F,
    ) -> Result<reqwest::Response, HttpError>
    where
        F: Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    {
        let m = method.as_str().to_string();
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| HttpError::new(HttpErrorKind::BadUrl(e.to_string()), &m, url))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            let why = format!("scheme {} is not http or https", parsed.scheme());
            return Err(HttpError::new(HttpErrorKind::BadUrl(why), &m, url));
        }
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let req = build(self.inner.request(method.clone(), parsed.clone()));
            let (err, retry_after, may_retry) = match req.send().await {
                Ok(resp) if resp.status().as_u16() < 400 => return Ok(resp),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let rid = request_id(resp.headers());
                    let ra = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    let body = resp.bytes().await.map(|b| excerpt(&b)).ok();
                    let mut e = HttpError::new(HttpErrorKind::Status, &m, url);
                    e.status = Some(status);
                    e.request_id = rid;
                    e.body = body;
                    let may = match idempotency {
                        Idempotency::Idempotent => retryable_status(status),
                        Idempotency::NotIdempotent => matches!(status, 429 | 503),
                    };
                    (e, ra, may)
                }
                Err(re) => {
                    let may = re.is_connect()
                        || (idempotency == Idempotency::Idempotent && re.is_timeout());
                    let e = HttpError::new(HttpErrorKind::Transport(describe(&re)), &m, url);
                    (e, None, may)
                }
            };
            let mut err = err;
            err.attempts = attempt;
            if !may_retry || attempt > self.policy.max_retries {
                return Err(err);
            }
            match self.policy.delay(attempt - 1, retry_after, (self.jitter)()) {
                Some(d) => self.sleeper.sleep(d).await,
                None => {
                    let secs = retry_after.map(|d| d.as_secs()).unwrap_or(0);
                    err.kind = HttpErrorKind::RetryAfterTooLong(secs);
                    return Err(err);
                }
            }
        }
    }
}

/// reqwest's error with its causes (the useful part, "connection refused", is in a source),
/// without the URL (the caller prints it without its query).
fn describe(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    parts.push(kind.to_string());
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    parts.join(": ")
}
