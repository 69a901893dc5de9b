//! The checks made on a token before its first use: audience against the service URL, expiry
//! and clock skew against the local clock.

use super::error::{expired, AuthError};
use super::jwt::Claims;

/// Entra and the FHIR service tolerate 5 minutes of clock difference; so does fhirpipe.
pub const CLOCK_SKEW_TOLERANCE: i64 = 300;

/// The audience a service expects: the configured `audience`, else the service URL without
/// a trailing slash (how the FHIR service in Azure Health Data Services is configured).
pub fn expected_audience(service_url: &str, audience: Option<&str>) -> String {
    audience
        .unwrap_or(service_url)
        .trim_end_matches('/')
        .to_string()
}

/// Checks `claims` against the expected audience and the clock (`now`, seconds since the
/// epoch). `fresh` says the token was just issued by Entra: then an `exp` in the past or an
/// `iat` in the future means the local clock is wrong, not the token.
pub fn check_claims(
    claims: &Claims,
    expected: &str,
    now: i64,
    fresh: bool,
) -> Result<(), AuthError> {
    if !claims.aud.iter().any(|a| a == expected) {
        let trailing = claims
            .aud
            .iter()
            .any(|a| a.trim_end_matches('/') == expected.trim_end_matches('/'));
        let actual = if claims.aud.is_empty() {
            "(none)".to_string()
        } else {
            claims
                .aud
                .iter()
                .map(|a| format!("\"{a}\""))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(AuthError::AudienceMismatch {
            actual,
            expected: expected.to_string(),
            hint: if trailing {
                " (they differ only by a trailing slash, which the service treats as another \
audience)"
                    .into()
            } else {
                String::new()
            },
        });
    }
    if fresh {
        let issued = claims.iat.or(claims.nbf);
        if let Some(iat) = issued {
            if iat - now > CLOCK_SKEW_TOLERANCE {
                return Err(AuthError::ClockSkew {
                    direction: "behind",
                    minutes: (iat - now + 30) / 60,
                    detail: "the token was issued in the local clock's future".into(),
                });
            }
        }
        if let Some(exp) = claims.exp {
            if exp <= now {
                return Err(AuthError::ClockSkew {
                    direction: "ahead",
                    minutes: (now - issued.unwrap_or(exp) + 30) / 60,
                    detail: "a token just issued already looks expired".into(),
                });
            }
        }
    } else {
        if let Some(exp) = claims.exp {
            if exp <= now {
                return Err(expired(exp, now));
            }
        }
        if let Some(nbf) = claims.nbf {
            if nbf - now > CLOCK_SKEW_TOLERANCE {
                return Err(AuthError::ClockSkew {
                    direction: "behind",
                    minutes: (nbf - now + 30) / 60,
                    detail: "the token is not valid before a time in the local clock's future"
                        .into(),
                });
            }
        }
    }
    if claims.exp.is_none() {
        return Err(AuthError::NotAJwt("it has no `exp` claim".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FHIR: &str = "https://ws-fhir.fhir.azurehealthcareapis.com";

    fn claims(aud: &str, iat: i64, exp: i64) -> Claims {
        Claims {
            aud: vec![aud.into()],
            iat: Some(iat),
            nbf: Some(iat),
            exp: Some(exp),
            ..Claims::default()
        }
    }

    #[test]
    fn expected_audience_drops_the_trailing_slash() {
        assert_eq!(expected_audience(&format!("{FHIR}/"), None), FHIR);
        assert_eq!(expected_audience(FHIR, Some("https://aud/")), "https://aud");
    }

    #[test]
    fn audience_mismatch_names_the_scope_and_the_trailing_slash() {
        let e = check_claims(&claims(&format!("{FHIR}/"), 0, 3600), FHIR, 10, false)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "the token's audience \"{FHIR}/\" is not the FHIR service {FHIR} (they differ \
only by a trailing slash, which the service treats as another audience); fix: request the \
token for the scope {FHIR}/.default (resource {FHIR}), or set the endpoint's `audience` if the \
service is configured with a different one"
            )
        );
        let e = check_claims(
            &claims("https://management.azure.com", 0, 3600),
            FHIR,
            10,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("the token's audience \"https://management.azure.com\" is not the FHIR service https://ws-fhir.fhir.azurehealthcareapis.com; fix: request the token for the scope https://ws-fhir.fhir.azurehealthcareapis.com/.default"), "{e}");
        assert!(check_claims(&claims(FHIR, 0, 3600), FHIR, 10, false).is_ok());
    }

    #[test]
    fn expired_static_token_and_skewed_clocks() {
        let e = check_claims(&claims(FHIR, 0, 3600), FHIR, 3600 + 720, false)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(
                "the token expired at 1970-01-01T01:00:00Z (12 min ago); fix: get a new token"
            ),
            "{e}"
        );
        // Just issued but already expired by the local clock: the clock is 2 h ahead.
        let now = 1_000_000;
        let e = check_claims(&claims(FHIR, now - 7200, now - 3600), FHIR, now, true)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("the local clock is ahead by about 120 min"),
            "{e}"
        );
        // Issued 10 minutes in our future: the clock is behind.
        let e = check_claims(&claims(FHIR, now + 600, now + 4200), FHIR, now, true)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("the local clock is behind by about 10 min"),
            "{e}"
        );
        // 4 minutes is within tolerance.
        assert!(check_claims(&claims(FHIR, now + 240, now + 3840), FHIR, now, true).is_ok());
    }
}
