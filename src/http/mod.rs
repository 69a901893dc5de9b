//! HTTP for the FHIR endpoints: one reqwest client (rustls) with connect and request timeouts,
//! a retry policy (exponential backoff with jitter on 429, 500, 502, 503 and 504, honouring
//! `Retry-After`), and typed errors that carry the status, the `x-ms-request-id`, a short
//! excerpt of the body and never a header value (so never a token).
//!
//! The policy is a plain value ([`RetryPolicy`]) and the waiting goes through a [`Sleeper`],
//! so tests record the delays instead of sleeping them.

mod client;
mod error;
mod retry;

pub use client::{HttpClient, HttpConfig, Idempotency};
pub use error::{excerpt, request_id, HttpError, HttpErrorKind};
pub use retry::{
    parse_http_date, parse_retry_after, retryable_status, RetryPolicy, Sleeper, TokioSleeper,
};
