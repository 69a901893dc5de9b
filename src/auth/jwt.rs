//! Reading a JWT's payload without verifying it: the claims fhirpipe checks before the first
//! call (`aud`, `exp`, `nbf`, `iat`) and those it reports (`oid`, `tid`, `appid`, `roles`).

use base64::Engine as _;
use serde::Deserialize;

/// The claims of an access token that fhirpipe looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Claims {
    /// Audience: one string or a list.
    #[serde(default, deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    /// Expiry, seconds since the epoch.
    #[serde(default)]
    pub exp: Option<i64>,
    /// Not before, seconds since the epoch.
    #[serde(default)]
    pub nbf: Option<i64>,
    /// Issued at, seconds since the epoch.
    #[serde(default)]
    pub iat: Option<i64>,
    /// Object ID of the principal (what role assignments are made to).
    #[serde(default)]
    pub oid: Option<String>,
    /// Tenant ID.
    #[serde(default)]
    pub tid: Option<String>,
    /// Application ID of the client.
    #[serde(default)]
    pub appid: Option<String>,
    /// App roles in the token.
    #[serde(default)]
    pub roles: Vec<String>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
}

/// Decodes the payload of `header.payload.signature`; `Err` says what is wrong (never the
/// token itself).
pub fn decode(token: &str) -> Result<Claims, String> {
    let mut parts = token.trim().split('.');
    let (Some(_h), Some(p), Some(_s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("it is not a JWT (three dot-separated parts)".into());
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(p.trim_end_matches('='))
        .map_err(|_| "its payload is not base64url".to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| format!("its payload is not a JSON claims set: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsigned(claims: &serde_json::Value) -> String {
        let enc = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        format!(
            "{}.{}.{}",
            enc(br#"{"alg":"RS256"}"#),
            enc(claims.to_string().as_bytes()),
            enc(b"sig")
        )
    }

    #[test]
    fn decodes_string_and_list_audiences_and_rejects_non_jwts() {
        let t = unsigned(
            &serde_json::json!({"aud":"https://x.fhir.azurehealthcareapis.com","exp":100,"oid":"o","roles":["r"]}),
        );
        let c = decode(&t).unwrap();
        assert_eq!(c.aud, vec!["https://x.fhir.azurehealthcareapis.com"]);
        assert_eq!((c.exp, c.oid.as_deref()), (Some(100), Some("o")));
        assert_eq!(c.roles, vec!["r"]);
        let t = unsigned(&serde_json::json!({"aud":["a","b"]}));
        assert_eq!(decode(&t).unwrap().aud, vec!["a", "b"]);
        assert_eq!(
            decode("opaque-token").unwrap_err(),
            "it is not a JWT (three dot-separated parts)"
        );
        assert_eq!(
            decode("a.b!.c").unwrap_err(),
            "its payload is not base64url"
        );
    }
}
