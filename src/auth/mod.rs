//! Tokens for FHIR endpoints: where they come from (a static bearer token, Entra client
//! credentials, a managed identity through IMDS, the Azure CLI), caching and refreshing them
//! before they expire, and checking each new token before it is used: its `aud` must be the
//! FHIR service URL exactly (a trailing slash is a different audience) and its `exp`, `nbf`
//! and `iat` must make sense against the local clock.
//!
//! Tokens are decoded (not verified: the FHIR service verifies them) only to read
//! `aud`/`exp`/`oid`/`roles`. They are never printed: [`Secret`] hides them from `Debug`, and
//! errors carry the claims, never the token.

mod check;
mod config;
mod error;
pub mod jwt;
mod provider;

pub use check::{check_claims, expected_audience, CLOCK_SKEW_TOLERANCE};
pub use config::{AuthConfig, Secret, DEFAULT_AUTHORITY_HOST, DEFAULT_IMDS_ENDPOINT};
pub use error::{aadsts_code, aadsts_fix, AuthError};
pub use jwt::Claims;
pub use provider::{Clock, SystemClock, Token, TokenProvider, REFRESH_BEFORE_EXPIRY};
