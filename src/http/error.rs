//! The error of an HTTP call: what was called (method and URL without its query string, which
//! may hold a SAS), the status, the `x-ms-request-id` to quote to Azure support, how many
//! attempts were made, and a short excerpt of the body (an OperationOutcome's diagnostics or
//! an OAuth `error_description` when the body is one). Header values are never kept, and
//! anything in the body that looks like a JWT is replaced, so a token cannot leak through it.

use std::fmt;

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpErrorKind {
    /// The server answered with a status that is not retried (or retries ran out).
    Status,
    /// No answer: DNS, connection, TLS or timeout. The text is reqwest's description.
    Transport(String),
    /// The server asked (`Retry-After`) for a longer wait than the policy allows.
    RetryAfterTooLong(u64),
    /// The URL could not be used (bad syntax, or not http/https).
    BadUrl(String),
    /// The client could not be built (TLS backend).
    Client(String),
}

/// A failed HTTP call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// What went wrong.
    pub kind: HttpErrorKind,
    /// `GET`, `POST`, ….
    pub method: Box<str>,
    /// The URL without its query string.
    pub url: Box<str>,
    /// The last status, when the server answered.
    pub status: Option<u16>,
    /// The last `x-ms-request-id` (or `x-request-id`) the server sent.
    pub request_id: Option<String>,
    /// At most [`EXCERPT_CHARS`] characters of the last body.
    pub body: Option<String>,
    /// Attempts made (1 when not retried).
    pub attempts: u32,
}

/// Longest body excerpt kept in an error.
pub const EXCERPT_CHARS: usize = 300;

impl HttpError {
    pub(crate) fn new(kind: HttpErrorKind, method: &str, url: &str) -> Self {
        HttpError {
            kind,
            method: method.into(),
            url: strip_query(url).into(),
            status: None,
            request_id: None,
            body: None,
            attempts: 1,
        }
    }

    /// True for a 401 (token: audience, expiry, clock skew).
    pub fn is_unauthorized(&self) -> bool {
        self.status == Some(401)
    }

    /// True for a 403 (the data-plane role is missing).
    pub fn is_forbidden(&self) -> bool {
        self.status == Some(403)
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: ", self.method, self.url)?;
        match &self.kind {
            HttpErrorKind::Status => match self.status {
                Some(s) => write!(f, "HTTP {s} {}", reason(s))?,
                None => write!(f, "no status")?,
            },
            HttpErrorKind::Transport(e) => write!(f, "{e}")?,
            HttpErrorKind::RetryAfterTooLong(secs) => write!(
                f,
                "HTTP {} and the server asks to retry after {secs} s, longer than fhirpipe waits",
                self.status.unwrap_or(0)
            )?,
            HttpErrorKind::BadUrl(e) => write!(f, "bad URL: {e}")?,
            HttpErrorKind::Client(e) => write!(f, "cannot build the HTTP client: {e}")?,
        }
        if self.attempts > 1 {
            // "gave up" only when the last answer was itself worth retrying.
            let gave_up = match (&self.kind, self.status) {
                (HttpErrorKind::Status, Some(s)) => super::retry::retryable_status(s),
                _ => true,
            };
            let words = if gave_up { "gave up after" } else { "after" };
            write!(f, " ({words} {} attempts)", self.attempts)?;
        }
        match &self.request_id {
            Some(id) => write!(f, " [x-ms-request-id: {id}]")?,
            None if self.status.is_some() => write!(f, " [no x-ms-request-id]")?,
            None => {}
        }
        if let Some(b) = &self.body {
            if !b.is_empty() {
                write!(f, ": {b}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for HttpError {}

fn reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// The URL without `?query` and `#fragment` (SAS tokens live in the query).
pub(crate) fn strip_query(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    url[..end].to_string()
}

/// The request id of a response: `x-ms-request-id`, else `x-request-id`.
pub fn request_id(headers: &reqwest::header::HeaderMap) -> Option<String> {
    ["x-ms-request-id", "x-request-id"]
        .iter()
        .find_map(|h| headers.get(*h))
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(100).collect())
}

/// A short, single-line, token-free excerpt of a response body: the diagnostics of an
/// OperationOutcome, the `error_description` of an OAuth error, else the text itself.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let picked = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| summarize_json(&v))
        .unwrap_or_else(|| text.into_owned());
    let one_line = picked.split_whitespace().collect::<Vec<_>>().join(" ");
    let clean = redact_jwts(&one_line);
    if clean.chars().count() > EXCERPT_CHARS {
        let mut s: String = clean.chars().take(EXCERPT_CHARS).collect();
        s.push('…');
        s
    } else {
        clean
    }
}

fn summarize_json(v: &serde_json::Value) -> Option<String> {
    if v.get("resourceType").and_then(|t| t.as_str()) == Some("OperationOutcome") {
        let parts: Vec<String> = v
            .get("issue")?
            .as_array()?
            .iter()
            .filter_map(|i| {
                i.get("diagnostics")
                    .and_then(|d| d.as_str())
                    .or_else(|| i.pointer("/details/text").and_then(|d| d.as_str()))
                    .map(str::to_string)
            })
            .collect();
        return (!parts.is_empty()).then(|| parts.join("; "));
    }
    if let Some(d) = v.get("error_description").and_then(|d| d.as_str()) {
        return Some(d.to_string());
    }
    v.get("error").and_then(|e| match e {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_string),
        _ => None,
    })
}

/// Replaces every `eyJ….….…` (a JWT) with `<token>`.
fn redact_jwts(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("eyJ") {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=')))
            .unwrap_or(tail.len());
        let candidate = &tail[..end];
        if candidate.matches('.').count() >= 2 {
            out.push_str("<token>");
        } else {
            out.push_str(candidate);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_prefers_operation_outcome_diagnostics() {
        let body = br#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"Value of the following parameter input.url is invalid."}]}"#;
        assert_eq!(
            excerpt(body),
            "Value of the following parameter input.url is invalid."
        );
        let oauth = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x"}"#;
        assert_eq!(
            excerpt(oauth),
            "AADSTS7000215: Invalid client secret provided. Trace ID: x"
        );
    }

    #[test]
    fn excerpt_is_short_single_line_and_token_free() {
        let long = "x\n".repeat(400);
        let e = excerpt(long.as_bytes());
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
        assert!(!e.contains('\n'));
        let leaked = b"echo: Bearer eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJ4In0.c2ln, eyJnot-a-token";
        assert_eq!(excerpt(leaked), "echo: Bearer <token>, eyJnot-a-token");
    }

    #[test]
    fn display_names_status_request_id_attempts_and_drops_the_query() {
        let mut e = HttpError::new(
            HttpErrorKind::Status,
            "GET",
            "https://acct.blob.core.windows.net/c/f.ndjson?sv=2020&sig=SECRET",
        );
        e.status = Some(503);
        e.request_id = Some("req-42".into());
        e.attempts = 6;
        e.body = Some("busy".into());
        let s = e.to_string();
        assert_eq!(
            s,
            "GET https://acct.blob.core.windows.net/c/f.ndjson: HTTP 503 Service Unavailable \
(gave up after 6 attempts) [x-ms-request-id: req-42]: busy"
        );
        assert!(!s.contains("SECRET"));
    }
}
