//! Everything that can go wrong getting or checking a token, each with its fix. Entra's
//! `AADSTS` codes are mapped to the change that resolves them.

use crate::http::HttpError;
use crate::util::calendar::rfc3339_utc;

/// A token could not be obtained, or the one obtained cannot work against the service.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The token is for another resource: the service answers 401.
    #[error(
        "the token's audience {actual} is not the FHIR service {expected}{hint}; \
fix: request the token for the scope {expected}/.default (resource {expected}), or set the \
endpoint's `audience` if the service is configured with a different one"
    )]
    AudienceMismatch {
        /// The token's `aud`, quoted and comma-separated (`(none)` when missing).
        actual: String,
        /// The audience the service expects.
        expected: String,
        /// Extra words when only a trailing slash differs.
        hint: String,
    },
    /// The token's `exp` has passed.
    #[error(
        "the token expired at {expired_at} ({ago} ago); fix: get a new token (a bearer_token \
is never refreshed: prefer client_secret, managed_identity or azure_cli, which are)"
    )]
    Expired {
        /// `exp` as RFC 3339.
        expired_at: String,
        /// How long ago, e.g. `12 min`.
        ago: String,
    },
    /// The local clock and Entra's disagree by more than the tolerance.
    #[error(
        "the local clock is {direction} by about {minutes} min compared with the token issuer \
({detail}); tokens will look expired or not yet valid; fix: synchronise the clock (NTP, \
e.g. `timedatectl set-ntp true`)"
    )]
    ClockSkew {
        /// `ahead` or `behind`.
        direction: &'static str,
        /// Rounded minutes.
        minutes: i64,
        /// Which claims showed it.
        detail: String,
    },
    /// The token is not a JWT, so it cannot be checked.
    #[error(
        "the token cannot be checked: {0}; fix: use an Entra access token for the FHIR \
service (a JWT), not an ID token, a refresh token or a SAS"
    )]
    NotAJwt(String),
    /// The token endpoint refused (Entra `AADSTS…` errors).
    #[error("{method}: the token request was refused{code}: {detail}; fix: {fix}")]
    Refused {
        /// `client_secret`, `managed_identity` or `azure_cli`.
        method: &'static str,
        /// ` (AADSTS700016)` or empty.
        code: String,
        /// The server's description, request id included.
        detail: String,
        /// What to change.
        fix: String,
    },
    /// The token endpoint could not be reached or answered something unusable.
    #[error("{method}: cannot get a token: {detail}; fix: {fix}")]
    Unavailable {
        /// `client_secret`, `managed_identity` or `azure_cli`.
        method: &'static str,
        /// What happened.
        detail: String,
        /// What to change.
        fix: String,
    },
}

/// The `AADSTS` number in an Entra error text (`AADSTS700016: Application with …`).
pub fn aadsts_code(text: &str) -> Option<u32> {
    let i = text.find("AADSTS")?;
    let digits: String = text[i + 6..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The fix for an Entra error code, for a token requested for `scope`.
pub fn aadsts_fix(code: u32, scope: &str) -> Option<String> {
    Some(match code {
        700016 => "the application (client_id) is not found in the tenant: check client_id \
and tenant_id (the app must be registered in, or consented to by, that tenant)"
            .into(),
        7000215 => "the client secret is wrong: use the secret's Value (shown once when it is \
created), not its Secret ID; create a new secret under Certificates & secrets if it is lost"
            .into(),
        7000222 => "the client secret has expired: create a new one under the app \
registration's Certificates & secrets and update the pipeline's secret"
            .into(),
        90002 | 900023 => "the tenant is not found: check tenant_id (the Directory ID GUID \
or a verified domain) and the authority host for sovereign clouds"
            .into(),
        500011 => format!(
            "the resource principal is not found in the tenant: the token must be requested \
for the FHIR service URL exactly, scope {scope}; check the URL (workspace and service name, \
no trailing slash) and that the service is in this tenant"
        ),
        50126 | 50034 => "the credentials are wrong: check the user or use a service \
principal"
            .into(),
        53003 => "a conditional access policy blocked the sign-in: ask the tenant \
administrator to exempt this workload identity"
            .into(),
        _ => return None,
    })
}

impl AuthError {
    /// A token endpoint's refusal, with the `AADSTS` code mapped to its fix.
    pub(crate) fn refused(method: &'static str, e: &HttpError, scope: &str) -> AuthError {
        let text = e.body.clone().unwrap_or_default();
        let code = aadsts_code(&text);
        let fix = code.and_then(|c| aadsts_fix(c, scope)).unwrap_or_else(|| {
            "read the message above; check tenant_id, client_id and the secret".into()
        });
        AuthError::Refused {
            method,
            code: code.map(|c| format!(" (AADSTS{c})")).unwrap_or_default(),
            detail: e.to_string(),
            fix,
        }
    }
}

pub(crate) fn ago(secs: i64) -> String {
    if secs < 120 {
        format!("{secs} s")
    } else if secs < 7200 {
        format!("{} min", secs / 60)
    } else {
        format!("{} h", secs / 3600)
    }
}

pub(crate) fn expired(exp: i64, now: i64) -> AuthError {
    AuthError::Expired {
        expired_at: rfc3339_utc(exp),
        ago: ago(now - exp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_aadsts_codes_and_maps_the_common_ones() {
        assert_eq!(
            aadsts_code("AADSTS700016: Application with identifier 'x' was not found"),
            Some(700016)
        );
        assert_eq!(aadsts_code("no code here"), None);
        let scope = "https://ws-fhir.fhir.azurehealthcareapis.com/.default";
        assert!(aadsts_fix(7000215, scope).unwrap().contains("Value"));
        assert!(aadsts_fix(500011, scope).unwrap().contains(scope));
        assert!(aadsts_fix(90002, scope).unwrap().contains("tenant_id"));
        assert!(aadsts_fix(700016, scope).unwrap().contains("client_id"));
        assert_eq!(aadsts_fix(1, scope), None);
    }
}
