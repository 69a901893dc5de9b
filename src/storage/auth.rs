//! Credentials for Azure storage: the `[storage]` section of a pipeline, the usual Azure
//! environment variables and connection strings, resolved into an `object_store` builder.
//! Secrets are held in [`Secret`], whose `Debug` and `Display` never show the value.
//!
//! Precedence: fields in `[storage]` (after `${VAR}` interpolation), then a connection string
//! (`[storage] connection_string` or `AZURE_STORAGE_CONNECTION_STRING`), then the separate
//! variables (`AZURE_STORAGE_ACCOUNT[_NAME]`, `AZURE_STORAGE_KEY` / `AZURE_STORAGE_ACCOUNT_KEY`,
//! `AZURE_STORAGE_SAS_TOKEN`, `AZURE_CLIENT_ID` + `AZURE_CLIENT_SECRET` + `AZURE_TENANT_ID`,
//! `AZURE_FEDERATED_TOKEN_FILE`, `AZURE_MSI_ENDPOINT`). With none of these, object_store falls
//! back to the managed identity (IMDS); `credential = "azure_cli"` uses `az account get-access-token`.

use super::location::BlobUrl;
use super::StorageError;
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use serde::Deserialize;
use std::fmt;

/// A secret value: shown as `***` by `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(v: impl Into<String>) -> Self {
        Secret(v.into())
    }
    /// The value, for handing to the client only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// `[storage]`: how to reach Azure storage for every blob source and sink of the pipeline.
/// Every field is optional; secrets should come from `${ENV_VAR}`s, never be written inline.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Storage account for `az://` URLs (abfss/https URLs name their own).
    pub account: Option<String>,
    /// Blob endpoint instead of `https://<account>.blob.core.windows.net` (Azurite, private
    /// endpoints, sovereign clouds), e.g. `http://127.0.0.1:10000/devstoreaccount1`.
    pub endpoint: Option<String>,
    /// Which credential to use: `auto` (default: the first one configured, else managed
    /// identity), `connection_string`, `account_key`, `sas`, `client_secret`,
    /// `managed_identity`, `workload_identity` or `azure_cli`.
    pub credential: Option<String>,
    /// A storage connection string (`AccountName=…;AccountKey=…` or `…;SharedAccessSignature=…`).
    pub connection_string: Option<Secret>,
    /// The account's access key.
    pub account_key: Option<Secret>,
    /// A SAS token (`sv=…&sig=…`, with or without the leading `?`).
    pub sas_token: Option<Secret>,
    /// Entra application (client) id for `client_secret`, `workload_identity`, or a
    /// user-assigned managed identity.
    pub client_id: Option<String>,
    /// Entra client secret.
    pub client_secret: Option<Secret>,
    /// Entra tenant id.
    pub tenant_id: Option<String>,
}

/// The credential chosen for a run, without secrets in its `Debug`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// Shared key.
    AccountKey(Secret),
    /// Shared access signature (query pairs).
    Sas(Secret),
    /// Entra service principal with a secret.
    ClientSecret {
        /// Application id.
        client_id: String,
        /// Secret.
        secret: Secret,
        /// Tenant.
        tenant_id: String,
    },
    /// Entra workload identity federation (AKS): a token file.
    WorkloadIdentity {
        /// Application id.
        client_id: String,
        /// Tenant.
        tenant_id: String,
        /// The federated token file.
        token_file: String,
    },
    /// Managed identity from IMDS; `client_id` selects a user-assigned identity.
    ManagedIdentity {
        /// User-assigned identity's client id.
        client_id: Option<String>,
    },
    /// `az account get-access-token`.
    AzureCli,
}

impl Credential {
    /// A name for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Credential::AccountKey(_) => "account key",
            Credential::Sas(_) => "SAS token",
            Credential::ClientSecret { .. } => "Entra client secret",
            Credential::WorkloadIdentity { .. } => "workload identity",
            Credential::ManagedIdentity { .. } => "managed identity",
            Credential::AzureCli => "Azure CLI",
        }
    }

    fn secret(&self) -> Option<&Secret> {
        match self {
            Credential::AccountKey(s) | Credential::Sas(s) => Some(s),
            Credential::ClientSecret { secret, .. } => Some(secret),
            _ => None,
        }
    }
}

/// Resolved access to one storage account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The account.
    pub account: String,
    /// The blob endpoint (`https://<account>.blob.core.windows.net` unless overridden).
    pub endpoint: String,
    /// How requests are authorised.
    pub credential: Credential,
}

/// A parsed storage connection string.
#[derive(Debug, Default, PartialEq, Eq)]
struct ConnectionString {
    account: Option<String>,
    key: Option<Secret>,
    sas: Option<Secret>,
    endpoint: Option<String>,
}

const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn parse_connection_string(text: &str) -> Result<ConnectionString, StorageError> {
    let mut cs = ConnectionString::default();
    let mut protocol = "https".to_string();
    let mut suffix = "core.windows.net".to_string();
    let mut dev = false;
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(StorageError::config(
                "the storage connection string has a part without `=`",
                "copy the connection string from the portal (Access keys or Shared access signature)",
            ));
        };
        match k.to_ascii_lowercase().as_str() {
            "accountname" => cs.account = Some(v.to_string()),
            "accountkey" => cs.key = Some(Secret::new(v)),
            "sharedaccesssignature" => cs.sas = Some(Secret::new(v)),
            "blobendpoint" => cs.endpoint = Some(v.trim_end_matches('/').to_string()),
            "defaultendpointsprotocol" => protocol = v.to_string(),
            "endpointsuffix" => suffix = v.to_string(),
            "usedevelopmentstorage" => dev = v.eq_ignore_ascii_case("true"),
            // Other services' endpoints and unknown keys do not concern blob access.
            _ => {}
        }
    }
    if dev {
        cs.account.get_or_insert_with(|| DEV_ACCOUNT.into());
        cs.key.get_or_insert_with(|| Secret::new(DEV_KEY));
        cs.endpoint
            .get_or_insert_with(|| format!("http://127.0.0.1:10000/{DEV_ACCOUNT}"));
    }
    if cs.endpoint.is_none() {
        if let Some(a) = &cs.account {
            cs.endpoint = Some(format!("{protocol}://{a}.blob.{suffix}"));
        }
    }
    Ok(cs)
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

impl StorageConfig {
    /// Resolves the account, endpoint and credential for `url`. `env` looks up environment
    /// variables (the binary passes the process environment).
    pub fn resolve(
        &self,
        url: &BlobUrl,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Access, StorageError> {
        let env = |k: &str| nonempty(env(k));
        let cs_text = self
            .connection_string
            .as_ref()
            .map(|s| s.expose().to_string())
            .or_else(|| env("AZURE_STORAGE_CONNECTION_STRING"));
        let cs = match &cs_text {
            Some(t) => parse_connection_string(t)?,
            None => ConnectionString::default(),
        };
        let account = url
            .account
            .clone()
            .or_else(|| self.account.clone())
            .or_else(|| cs.account.clone())
            .or_else(|| env("AZURE_STORAGE_ACCOUNT"))
            .or_else(|| env("AZURE_STORAGE_ACCOUNT_NAME"))
            .ok_or_else(|| {
                StorageError::config(
                    format!("no storage account is known for {url}"),
                    "use an abfss:// or https:// URL that names the account, or set [storage] account or AZURE_STORAGE_ACCOUNT",
                )
            })?;
        // A connection string for another account must not be used for this one.
        let cs_applies = cs.account.as_deref().is_none_or(|a| a == account);
        let endpoint = self
            .endpoint
            .clone()
            .or_else(|| cs.endpoint.clone().filter(|_| cs_applies))
            .or_else(|| env("AZURE_STORAGE_BLOB_ENDPOINT"))
            .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"))
            .trim_end_matches('/')
            .to_string();
        let client_id = self.client_id.clone().or_else(|| env("AZURE_CLIENT_ID"));
        let tenant_id = self.tenant_id.clone().or_else(|| env("AZURE_TENANT_ID"));
        let key = || {
            self.account_key
                .clone()
                .or_else(|| cs.key.clone().filter(|_| cs_applies))
                .or_else(|| env("AZURE_STORAGE_KEY").map(Secret::new))
                .or_else(|| env("AZURE_STORAGE_ACCOUNT_KEY").map(Secret::new))
        };
        let sas = || {
            self.sas_token
                .clone()
                .or_else(|| cs.sas.clone().filter(|_| cs_applies))
                .or_else(|| env("AZURE_STORAGE_SAS_TOKEN").map(Secret::new))
        };
        let secret = || {
            self.client_secret
                .clone()
                .or_else(|| env("AZURE_CLIENT_SECRET").map(Secret::new))
        };
        let token_file = || env("AZURE_FEDERATED_TOKEN_FILE");
        let need = |what: &str, fix: &str| StorageError::config(what.to_string(), fix.to_string());
        let client_secret = || -> Result<Credential, StorageError> {
            match (client_id.clone(), secret(), tenant_id.clone()) {
                (Some(client_id), Some(secret), Some(tenant_id)) => Ok(Credential::ClientSecret {
                    client_id,
                    secret,
                    tenant_id,
                }),
                _ => Err(need(
                    "credential = \"client_secret\" needs a client id, a client secret and a tenant id",
                    "set [storage] client_id, client_secret, tenant_id or AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_TENANT_ID",
                )),
            }
        };
        let workload = || -> Result<Credential, StorageError> {
            match (client_id.clone(), tenant_id.clone(), token_file()) {
                (Some(client_id), Some(tenant_id), Some(token_file)) => {
                    Ok(Credential::WorkloadIdentity {
                        client_id,
                        tenant_id,
                        token_file,
                    })
                }
                _ => Err(need(
                    "credential = \"workload_identity\" needs AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE",
                    "enable workload identity on the pod's service account, or pick another credential",
                )),
            }
        };
        let kind = self.credential.as_deref().unwrap_or("auto");
        let credential = match kind {
            "auto" => {
                if let Some(k) = key() {
                    Credential::AccountKey(k)
                } else if let Some(s) = sas() {
                    Credential::Sas(s)
                } else if secret().is_some() {
                    client_secret()?
                } else if token_file().is_some() {
                    workload()?
                } else {
                    Credential::ManagedIdentity { client_id }
                }
            }
            "account_key" | "connection_string" => Credential::AccountKey(key().ok_or_else(|| {
                need(
                    &format!("credential = \"{kind}\" but no account key is configured"),
                    "set [storage] account_key or connection_string, AZURE_STORAGE_KEY or AZURE_STORAGE_CONNECTION_STRING",
                )
            })?),
            "sas" => Credential::Sas(sas().ok_or_else(|| {
                need(
                    "credential = \"sas\" but no SAS token is configured",
                    "set [storage] sas_token or AZURE_STORAGE_SAS_TOKEN",
                )
            })?),
            "client_secret" => client_secret()?,
            "workload_identity" => workload()?,
            "managed_identity" => Credential::ManagedIdentity { client_id },
            "azure_cli" => Credential::AzureCli,
            other => {
                return Err(need(
                    &format!("unknown storage credential `{other}`"),
                    "use auto, connection_string, account_key, sas, client_secret, managed_identity, workload_identity or azure_cli",
                ))
            }
        };
        Ok(Access {
            account,
            endpoint,
            credential,
        })
    }
}

impl Access {
    /// The secret values of this access, to scrub from error texts.
    pub(crate) fn secrets(&self) -> Vec<String> {
        self.credential
            .secret()
            .map(|s| s.expose().to_string())
            .into_iter()
            .collect()
    }

    /// An `object_store` builder for `container`, with this access applied.
    pub(crate) fn builder(&self, container: &str) -> Result<MicrosoftAzureBuilder, StorageError> {
        let mut b = MicrosoftAzureBuilder::new()
            .with_account(&self.account)
            .with_container_name(container)
            .with_endpoint(self.endpoint.clone())
            .with_allow_http(self.endpoint.starts_with("http://"));
        b = match &self.credential {
            Credential::AccountKey(k) => b.with_access_key(k.expose()),
            Credential::Sas(s) => {
                let pairs = split_sas(s.expose())?;
                b.with_sas_authorization(pairs)
            }
            Credential::ClientSecret {
                client_id,
                secret,
                tenant_id,
            } => b.with_client_secret_authorization(client_id, secret.expose(), tenant_id),
            Credential::WorkloadIdentity {
                client_id,
                tenant_id,
                token_file,
            } => b
                .with_client_id(client_id)
                .with_tenant_id(tenant_id)
                .with_federated_token_file(token_file)
                .with_credential_type("workload_identity"),
            Credential::ManagedIdentity { client_id } => {
                if let Some(id) = client_id {
                    b = b.with_client_id(id);
                }
                if let Ok(e) = std::env::var("AZURE_MSI_ENDPOINT") {
                    b = b.with_msi_endpoint(e);
                }
                b.with_credential_type("managed_identity")
            }
            Credential::AzureCli => b.with_use_azure_cli(true),
        };
        Ok(b.with_config(AzureConfigKey::DisableTagging, "true"))
    }
}

/// Splits a SAS token into decoded query pairs.
fn split_sas(sas: &str) -> Result<Vec<(String, String)>, StorageError> {
    let sas = sas.trim().trim_start_matches('?');
    let mut pairs = Vec::new();
    for kv in sas.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            StorageError::config(
                "the SAS token is not a query string of key=value pairs",
                "copy the SAS token (sv=…&…&sig=…) as the portal shows it",
            )
        })?;
        pairs.push((percent_decode(k), percent_decode(v)));
    }
    if !pairs.iter().any(|(k, _)| k == "sig") {
        return Err(StorageError::config(
            "the SAS token has no `sig` part",
            "copy the whole SAS token, including &sig=…",
        ));
    }
    Ok(pairs)
}

fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Location;
    use std::collections::HashMap;

    fn url(t: &str) -> BlobUrl {
        match Location::parse(t).unwrap() {
            Location::Blob(b) => b,
            _ => unreachable!(),
        }
    }

    fn resolve(
        cfg: &StorageConfig,
        u: &str,
        vars: &[(&str, &str)],
    ) -> Result<Access, StorageError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        cfg.resolve(&url(u), &|k| vars.get(k).cloned())
    }

    #[test]
    fn connection_string_with_blob_endpoint_and_key() {
        let a = resolve(
            &StorageConfig::default(),
            "az://lake/x",
            &[(
                "AZURE_STORAGE_CONNECTION_STRING",
                "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=S3CRET==;BlobEndpoint=http://127.0.0.1:4000/devstoreaccount1/;",
            )],
        )
        .unwrap();
        assert_eq!(a.account, "devstoreaccount1");
        assert_eq!(a.endpoint, "http://127.0.0.1:4000/devstoreaccount1");
        assert_eq!(
            a.credential,
            Credential::AccountKey(Secret::new("S3CRET=="))
        );
        assert!(!format!("{a:?}").contains("S3CRET"), "{a:?}");
    }

    #[test]
    fn connection_string_with_sas_and_suffix() {
        let a = resolve(
            &StorageConfig::default(),
            "az://lake/x",
            &[(
                "AZURE_STORAGE_CONNECTION_STRING",
                "AccountName=acct01;SharedAccessSignature=sv=2024&sig=abc%2Bd;EndpointSuffix=core.chinacloudapi.cn",
            )],
        )
        .unwrap();
        assert_eq!(a.endpoint, "https://acct01.blob.core.chinacloudapi.cn");
        assert_eq!(a.credential.kind(), "SAS token");
        assert_eq!(
            split_sas("?sv=2024&sig=abc%2Bd").unwrap(),
            vec![("sv".into(), "2024".into()), ("sig".into(), "abc+d".into())]
        );
        assert!(split_sas("sv=2024").is_err());
    }

    #[test]
    fn development_storage_shortcut() {
        let a = resolve(
            &StorageConfig::default(),
            "az://lake",
            &[(
                "AZURE_STORAGE_CONNECTION_STRING",
                "UseDevelopmentStorage=true",
            )],
        )
        .unwrap();
        assert_eq!(a.account, "devstoreaccount1");
        assert_eq!(a.endpoint, "http://127.0.0.1:10000/devstoreaccount1");
        assert_eq!(a.credential.kind(), "account key");
    }

    #[test]
    fn url_account_wins_and_foreign_connection_string_is_ignored() {
        let a = resolve(
            &StorageConfig::default(),
            "abfss://lake@acct02.dfs.core.windows.net/x",
            &[
                (
                    "AZURE_STORAGE_CONNECTION_STRING",
                    "AccountName=acct01;AccountKey=K1",
                ),
                ("AZURE_CLIENT_ID", "app"),
                ("AZURE_CLIENT_SECRET", "CS"),
                ("AZURE_TENANT_ID", "tenant"),
            ],
        )
        .unwrap();
        assert_eq!(a.account, "acct02");
        assert_eq!(a.endpoint, "https://acct02.blob.core.windows.net");
        assert_eq!(a.credential.kind(), "Entra client secret");
    }

    #[test]
    fn env_names_of_the_azure_cli_and_fallback_to_managed_identity() {
        let a = resolve(
            &StorageConfig::default(),
            "az://lake",
            &[
                ("AZURE_STORAGE_ACCOUNT", "acct03"),
                ("AZURE_STORAGE_KEY", "K3"),
            ],
        )
        .unwrap();
        assert_eq!(a.credential, Credential::AccountKey(Secret::new("K3")));
        let a = resolve(
            &StorageConfig::default(),
            "az://lake",
            &[
                ("AZURE_STORAGE_ACCOUNT", "acct03"),
                ("AZURE_CLIENT_ID", "uami"),
            ],
        )
        .unwrap();
        assert_eq!(
            a.credential,
            Credential::ManagedIdentity {
                client_id: Some("uami".into())
            }
        );
        let a = resolve(
            &StorageConfig::default(),
            "az://lake",
            &[
                ("AZURE_STORAGE_ACCOUNT", "acct03"),
                ("AZURE_CLIENT_ID", "app"),
                ("AZURE_TENANT_ID", "t"),
                ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/token"),
            ],
        )
        .unwrap();
        assert_eq!(a.credential.kind(), "workload identity");
    }

    #[test]
    fn fields_choose_the_credential() {
        let cfg = StorageConfig {
            account: Some("acct04".into()),
            credential: Some("azure_cli".into()),
            ..Default::default()
        };
        let a = resolve(&cfg, "az://lake", &[("AZURE_STORAGE_KEY", "K")]).unwrap();
        assert_eq!(a.credential, Credential::AzureCli);
        let cfg = StorageConfig {
            account: Some("acct04".into()),
            credential: Some("sas".into()),
            ..Default::default()
        };
        let e = resolve(&cfg, "az://lake", &[]).unwrap_err();
        assert!(e.to_string().contains("no SAS token"), "{e}");
        let cfg = StorageConfig {
            credential: Some("kerberos".into()),
            account: Some("acct04".into()),
            ..Default::default()
        };
        let e = resolve(&cfg, "az://lake", &[]).unwrap_err();
        assert!(e
            .to_string()
            .contains("unknown storage credential `kerberos`"));
        let e = resolve(&StorageConfig::default(), "az://lake", &[]).unwrap_err();
        assert!(e.to_string().contains("no storage account"), "{e}");
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let cfg = StorageConfig {
            account_key: Some(Secret::new("TOPSECRETKEY")),
            client_secret: Some(Secret::new("TOPSECRETCS")),
            ..Default::default()
        };
        let d = format!("{cfg:?}");
        assert!(!d.contains("TOPSECRET"), "{d}");
    }
}
