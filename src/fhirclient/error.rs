//! Errors of FHIR calls, with the fix: a 401 explained by the token's claims, a 403 by the
//! data-plane role the operation needs.

use crate::auth::{AuthError, Claims};
use crate::http::HttpError;

/// What a call was for; decides the role a 403 asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `GET /metadata`.
    Metadata,
    /// Reading resources.
    Read,
    /// `$export` and its status.
    Export,
    /// `$import` and its status.
    Import,
}

impl Operation {
    /// The data-plane role(s) that allow the operation, as Azure names them.
    pub fn roles(self) -> &'static str {
        match self {
            Operation::Metadata => "none (anonymous)",
            Operation::Read => "FHIR Data Reader (or Writer, or Contributor)",
            Operation::Export => "FHIR Data Exporter",
            Operation::Import => "FHIR Data Importer",
        }
    }
}

/// A failed FHIR call.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum FhirError {
    /// No usable token.
    #[error("{0}")]
    Auth(AuthError),
    /// The service refused the token (401).
    #[error(
        "{http}; the FHIR service refused the token (401: wrong audience, expired, or clock \
skew){claims}; fix: request the token for the scope <FHIR service URL>/.default exactly (no \
trailing slash) and check the local clock"
    )]
    Unauthorized {
        /// The HTTP error (request id included).
        http: Box<HttpError>,
        /// `, token aud … exp …` when the token was decoded.
        claims: String,
    },
    /// The principal lacks the data-plane role (403).
    #[error(
        "{http}; the principal{oid} is authenticated but lacks the data-plane role for \
{what}; fix: assign {roles} to it at the FHIR service scope (FHIR service → Access control \
(IAM) → Add role assignment); role assignments can take a few minutes to apply"
    )]
    Forbidden {
        /// The HTTP error.
        http: Box<HttpError>,
        /// ` (oid …)` when known.
        oid: String,
        /// `$export`, `$import`, …
        what: &'static str,
        /// The role(s) to assign.
        roles: &'static str,
    },
    /// Any other HTTP failure.
    #[error("{0}")]
    Http(Box<HttpError>),
    /// The service answered something the protocol does not allow.
    #[error("{0}")]
    Protocol(String),
}

impl FhirError {
    pub(crate) fn from_http(op: Operation, e: HttpError, claims: Option<&Claims>) -> FhirError {
        if e.is_unauthorized() {
            let claims = claims
                .map(|c| {
                    format!(
                        ", token aud {:?}, exp {}",
                        c.aud,
                        c.exp
                            .map(crate::util::calendar::rfc3339_utc)
                            .unwrap_or_else(|| "(none)".into())
                    )
                })
                .unwrap_or_default();
            return FhirError::Unauthorized {
                http: Box::new(e),
                claims,
            };
        }
        if e.is_forbidden() {
            let oid = claims
                .and_then(|c| c.oid.as_ref())
                .map(|o| format!(" (oid {o})"))
                .unwrap_or_default();
            let what = match op {
                Operation::Export => "$export",
                Operation::Import => "$import",
                Operation::Read => "reading resources",
                Operation::Metadata => "/metadata",
            };
            return FhirError::Forbidden {
                http: Box::new(e),
                oid,
                what,
                roles: op.roles(),
            };
        }
        FhirError::Http(Box::new(e))
    }
}
