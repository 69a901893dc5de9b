//! How a pipeline says where the token of a FHIR endpoint comes from: the `auth` table of a
//! `fhir_export` source or `fhir_import` sink, one `method` and its fields.

use serde::Deserialize;
use std::fmt;

/// Microsoft Entra's public-cloud authority.
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
/// The Azure Instance Metadata Service, which hands managed-identity tokens to Azure VMs,
/// container instances and AKS pods.
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254";

/// A secret string (client secret, bearer token): shown as `<redacted>` by `Debug`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Where the token for a FHIR endpoint comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// A token obtained elsewhere, e.g. `token = "${FHIR_TOKEN}"`. Never refreshed: a run
    /// longer than its lifetime (60–90 minutes for Entra tokens) fails when it expires.
    BearerToken {
        /// The access token (use `${ENV_VAR}`; never write it into the file).
        token: Secret,
    },
    /// Entra client credentials (an app registration with a client secret).
    ClientSecret {
        /// Directory (tenant) ID, a GUID or a domain such as `contoso.onmicrosoft.com`.
        tenant_id: String,
        /// Application (client) ID of the app registration.
        client_id: String,
        /// The client secret's *value* (not its ID), e.g. `${AZURE_CLIENT_SECRET}`.
        client_secret: Secret,
        /// The authority, for sovereign clouds (`https://login.microsoftonline.us`).
        #[serde(default)]
        authority_host: Option<String>,
    },
    /// The managed identity of the Azure resource fhirpipe runs on, through IMDS.
    ManagedIdentity {
        /// Client ID of a user-assigned identity; absent for the system-assigned one.
        #[serde(default)]
        client_id: Option<String>,
        /// The IMDS endpoint (tests point it at 127.0.0.1).
        #[serde(default)]
        imds_endpoint: Option<String>,
    },
    /// `az account get-access-token` of the signed-in Azure CLI user (`az login` first).
    AzureCli {
        /// The `az` program, when not on PATH.
        #[serde(default)]
        az: Option<String>,
    },
}

impl AuthConfig {
    /// The method's name as written in pipelines.
    pub fn method(&self) -> &'static str {
        match self {
            AuthConfig::BearerToken { .. } => "bearer_token",
            AuthConfig::ClientSecret { .. } => "client_secret",
            AuthConfig::ManagedIdentity { .. } => "managed_identity",
            AuthConfig::AzureCli { .. } => "azure_cli",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_method_and_rejects_unknown_fields() {
        let c: AuthConfig = toml::from_str(
            "method = \"client_secret\"\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"s3cret\"",
        )
        .unwrap();
        assert_eq!(c.method(), "client_secret");
        assert!(!format!("{c:?}").contains("s3cret"));
        let m: AuthConfig = toml::from_str("method = \"managed_identity\"").unwrap();
        assert_eq!(
            m,
            AuthConfig::ManagedIdentity {
                client_id: None,
                imds_endpoint: None
            }
        );
        let e = toml::from_str::<AuthConfig>("method = \"azure_cli\"\nclient_secret = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `client_secret`"), "{e}");
        let e = toml::from_str::<AuthConfig>("method = \"password\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `password`"), "{e}");
    }
}
