//! Token providers with a cache: a token is fetched on first use, checked (audience, expiry,
//! clock skew), kept, and fetched again once it is within [`REFRESH_BEFORE_EXPIRY`] of its
//! `exp` (or after [`TokenProvider::invalidate`], on a 401). Concurrent callers share one
//! fetch (the cache is behind an async mutex).

use super::check::{check_claims, expected_audience};
use super::config::{AuthConfig, Secret, DEFAULT_AUTHORITY_HOST, DEFAULT_IMDS_ENDPOINT};
use super::error::{aadsts_code, aadsts_fix, AuthError};
use super::jwt::{self, Claims};
use crate::http::{excerpt, HttpClient, HttpError, HttpErrorKind, Idempotency};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A cached token is replaced this long before its `exp`, so no request carries a token that
/// expires in flight (Entra tokens live 60–90 minutes).
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// The local clock (tests set it).
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A checked access token. `Debug` hides the token.
#[derive(Debug, Clone)]
pub struct Token {
    secret: Secret,
    /// Its claims.
    pub claims: Claims,
}

impl Token {
    /// The token, for the `Authorization: Bearer` header and nothing else.
    pub fn bearer(&self) -> &str {
        self.secret.expose()
    }
}

/// Gets, checks, caches and refreshes the token of one FHIR endpoint.
pub struct TokenProvider {
    config: AuthConfig,
    audience: String,
    http: HttpClient,
    clock: Arc<dyn Clock>,
    cache: tokio::sync::Mutex<Option<Token>>,
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenProvider")
            .field("method", &self.config.method())
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct OAuthToken {
    access_token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CliToken {
    access_token: String,
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl TokenProvider {
    /// A provider for the service at `service_url`; `audience` overrides the expected `aud`
    /// (default: the service URL without a trailing slash).
    pub fn new(
        config: AuthConfig,
        service_url: &str,
        audience: Option<&str>,
        http: HttpClient,
    ) -> TokenProvider {
        TokenProvider {
            config,
            audience: expected_audience(service_url, audience),
            http,
            clock: Arc::new(SystemClock),
            cache: tokio::sync::Mutex::new(None),
        }
    }

    /// Replaces the clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> TokenProvider {
        self.clock = clock;
        self
    }

    /// The audience tokens must have.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The scope requested from Entra: `<audience>/.default`.
    pub fn scope(&self) -> String {
        format!("{}/.default", self.audience)
    }

    /// The method's name.
    pub fn method(&self) -> &'static str {
        self.config.method()
    }

    /// A valid token: the cached one while it has more than [`REFRESH_BEFORE_EXPIRY`] left,
    /// else a new one, checked before it is returned.
    pub async fn token(&self) -> Result<Token, AuthError> {
        let mut cache = self.cache.lock().await;
        let now = unix(self.clock.now());
        if let Some(t) = cache.as_ref() {
            let refresh_at = t
                .claims
                .exp
                .map(|e| e.saturating_sub(REFRESH_BEFORE_EXPIRY.as_secs() as i64));
            if refresh_at.is_some_and(|r| r > now) {
                return Ok(t.clone());
            }
        }
        let t = self.fetch(now).await?;
        *cache = Some(t.clone());
        Ok(t)
    }

    /// Drops the cached token (after the service answered 401 to it).
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    async fn fetch(&self, now: i64) -> Result<Token, AuthError> {
        let (raw, fresh) = match &self.config {
            AuthConfig::BearerToken { token } => (token.expose().to_string(), false),
            AuthConfig::ClientSecret {
                tenant_id,
                client_id,
                client_secret,
                authority_host,
            } => (
                self.client_secret(
                    tenant_id,
                    client_id,
                    client_secret,
                    authority_host.as_deref(),
                )
                .await?,
                true,
            ),
            AuthConfig::ManagedIdentity {
                client_id,
                imds_endpoint,
            } => (
                self.managed_identity(client_id.as_deref(), imds_endpoint.as_deref())
                    .await?,
                true,
            ),
            AuthConfig::AzureCli { az } => (self.azure_cli(az.as_deref()).await?, true),
        };
        let claims = jwt::decode(&raw).map_err(AuthError::NotAJwt)?;
        check_claims(&claims, &self.audience, now, fresh)?;
        Ok(Token {
            secret: Secret::new(raw),
            claims,
        })
    }

    async fn client_secret(
        &self,
        tenant: &str,
        client_id: &str,
        secret: &Secret,
        authority: Option<&str>,
    ) -> Result<String, AuthError> {
        const M: &str = "client_secret";
        let authority = authority
            .unwrap_or(DEFAULT_AUTHORITY_HOST)
            .trim_end_matches('/');
        let url = format!("{authority}/{tenant}/oauth2/v2.0/token");
        let scope = self.scope();
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret.expose()),
            ("scope", scope.as_str()),
        ];
        let resp = self
            .http
            .send(reqwest::Method::POST, &url, Idempotency::Idempotent, |r| {
                r.form(&form)
            })
            .await
            .map_err(|e| self.endpoint_error(M, &e, &url))?;
        let body: OAuthToken = read_json(resp).await.map_err(|d| unusable(M, d))?;
        Ok(body.access_token)
    }

    async fn managed_identity(
        &self,
        client_id: Option<&str>,
        endpoint: Option<&str>,
    ) -> Result<String, AuthError> {
        const M: &str = "managed_identity";
        let base = endpoint
            .unwrap_or(DEFAULT_IMDS_ENDPOINT)
            .trim_end_matches('/');
        let mut url = reqwest::Url::parse(&format!("{base}/metadata/identity/oauth2/token"))
            .map_err(|e| AuthError::Unavailable {
                method: M,
                detail: format!("bad imds_endpoint {base}: {e}"),
                fix: "set imds_endpoint to an http URL, or leave it out".into(),
            })?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("api-version", "2018-02-01")
                .append_pair("resource", &self.audience);
            if let Some(c) = client_id {
                q.append_pair("client_id", c);
            }
        }
        let resp = self
            .http
            .send(
                reqwest::Method::GET,
                url.as_str(),
                Idempotency::Idempotent,
                |r| r.header("Metadata", "true"),
            )
            .await
            .map_err(|e| self.endpoint_error(M, &e, base))?;
        let body: OAuthToken = read_json(resp).await.map_err(|d| unusable(M, d))?;
        Ok(body.access_token)
    }

    async fn azure_cli(&self, az: Option<&str>) -> Result<String, AuthError> {
        const M: &str = "azure_cli";
        let program = az.unwrap_or("az").to_string();
        let resource = self.audience.clone();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(&program)
                .args(["account", "get-access-token", "--resource"])
                .arg(&resource)
                .args(["--output", "json"])
                .stdin(std::process::Stdio::null())
                .output()
        })
        .await
        .map_err(|e| unusable(M, e.to_string()))?;
        let out = match out {
            Ok(o) => o,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(AuthError::Unavailable {
                    method: M,
                    detail: "the Azure CLI (`az`) is not installed or not on PATH".into(),
                    fix: "install the Azure CLI and run `az login`, set auth.az to its path, \
or use another auth method"
                        .into(),
                })
            }
            Err(e) => return Err(unusable(M, format!("cannot run az: {e}"))),
        };
        if !out.status.success() {
            let err = excerpt(&out.stderr);
            let code = aadsts_code(&err);
            let fix = code
                .and_then(|c| aadsts_fix(c, &self.scope()))
                .unwrap_or_else(|| {
                    if err.contains("az login") {
                        "run `az login` (or `az login --service-principal` / `--identity`) \
as the user fhirpipe runs as"
                            .into()
                    } else {
                        "run the same `az account get-access-token --resource …` by hand \
to see the problem"
                            .into()
                    }
                });
            return Err(AuthError::Refused {
                method: M,
                code: code.map(|c| format!(" (AADSTS{c})")).unwrap_or_default(),
                detail: format!("az account get-access-token failed: {err}"),
                fix,
            });
        }
        let body: CliToken = serde_json::from_slice(&out.stdout)
            .map_err(|e| unusable(M, format!("az printed something that is not a token: {e}")))?;
        Ok(body.access_token)
    }

    fn endpoint_error(&self, method: &'static str, e: &HttpError, endpoint: &str) -> AuthError {
        match (&e.kind, e.status) {
            (HttpErrorKind::Status, Some(400 | 401 | 403 | 404)) => {
                let mut err = AuthError::refused(method, e, &self.scope());
                if method == "managed_identity" {
                    if let AuthError::Refused { fix, code, .. } = &mut err {
                        if code.is_empty() {
                            *fix = "assign a managed identity to the Azure resource fhirpipe \
runs on (system-assigned), or set client_id to the user-assigned identity attached to it"
                                .into();
                        }
                    }
                }
                err
            }
            _ => AuthError::Unavailable {
                method,
                detail: e.to_string(),
                fix: if method == "managed_identity" {
                    format!(
                        "the managed identity endpoint {endpoint} does not answer: run on an \
Azure resource with a managed identity, or use client_secret or azure_cli elsewhere"
                    )
                } else {
                    format!("check network access to {endpoint} (firewall, proxy, DNS)")
                },
            },
        }
    }
}

fn unusable(method: &'static str, detail: String) -> AuthError {
    AuthError::Unavailable {
        method,
        detail,
        fix: "the token endpoint answered something that is not a token response; check the \
authority_host / imds_endpoint"
            .into(),
    }
}

async fn read_json<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, String> {
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes).map_err(|e| format!("not a token response: {e}"))
}
