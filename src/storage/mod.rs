//! Storage locations and Azure Blob / ADLS access, in one place: [`Location`] parses local
//! paths and the three Azure URL forms; [`StorageConfig`] resolves credentials from the
//! `[storage]` section and the usual environment variables; [`BlobStore`] wraps an
//! `object_store` Azure client with a small tokio runtime it owns, so the threaded pipeline
//! can call it synchronously: listing, ranged reads ([`RangeReader`]), multipart uploads
//! ([`BlobWriter`]), copy and delete.
//!
//! Errors name the account, the container and what to check, and never contain a secret:
//! every message from the client is scrubbed of the configured key/SAS/secret and of any
//! `sig=` value before it is shown.

mod auth;
mod location;
mod reader;
mod writer;

pub use auth::{Access, Credential, Secret, StorageConfig};
pub use location::{BlobUrl, Location, LocationError, ObjectUrl};
pub use reader::RangeReader;
pub use writer::BlobWriter;

use futures::TryStreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, RetryConfig};
use std::sync::Arc;
use std::time::Duration;

/// Why a storage operation failed. Messages never include credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The storage settings are incomplete or inconsistent.
    #[error("{message}; fix: {fix}")]
    Config {
        /// What is wrong.
        message: String,
        /// What to do.
        fix: String,
    },
    /// The service refused the credential (401/403).
    #[error("access to container `{container}` in storage account `{account}` was refused while trying to {op} ({credential}): {detail}. Check that the {credential} belongs to account `{account}` and has not expired, and that the identity holds Storage Blob Data Reader (to read) or Storage Blob Data Contributor (to write) on the container")]
    Denied {
        /// Account.
        account: String,
        /// Container.
        container: String,
        /// What was attempted.
        op: String,
        /// Which kind of credential was used.
        credential: &'static str,
        /// The service's message, scrubbed.
        detail: String,
    },
    /// The container or blob does not exist.
    #[error("not found while trying to {op} in container `{container}` of storage account `{account}` ({path}). Check that the container exists (fhirpipe does not create containers) and the prefix")]
    NotFound {
        /// Account.
        account: String,
        /// Container.
        container: String,
        /// The blob, or the service's error code (`ContainerNotFound`).
        path: String,
        /// What was attempted.
        op: String,
    },
    /// Any other failure (network, service error), scrubbed.
    #[error("storage account `{account}`, container `{container}`: cannot {op}: {detail}")]
    Io {
        /// Account.
        account: String,
        /// Container.
        container: String,
        /// What was attempted.
        op: String,
        /// The cause, scrubbed.
        detail: String,
    },
}

impl StorageError {
    pub(crate) fn config(message: impl Into<String>, fix: impl Into<String>) -> Self {
        StorageError::Config {
            message: message.into(),
            fix: fix.into(),
        }
    }
}

impl From<StorageError> for std::io::Error {
    fn from(e: StorageError) -> Self {
        std::io::Error::other(e)
    }
}

/// Removes secrets from a client message: the configured ones, and any `sig=` value.
fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s.as_str(), "***");
    }
    let mut result = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(p) = rest.find("sig=") {
        result.push_str(&rest[..p + 4]);
        result.push_str("***");
        let tail = &rest[p + 4..];
        let end = tail.find(['&', ' ', '"', '\'', ')']).unwrap_or(tail.len());
        rest = &tail[end..];
    }
    result.push_str(rest);
    result
}

/// An Azure container (and prefix) with a runtime to drive its async client.
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    rt: Arc<tokio::runtime::Runtime>,
    url: BlobUrl,
    account: String,
    credential: &'static str,
    secrets: Vec<String>,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("url", &self.url.to_string())
            .field("account", &self.account)
            .field("credential", &self.credential)
            .finish()
    }
}

impl BlobStore {
    /// Connects to `url`'s container with `cfg`'s credentials (no request is made yet).
    pub fn open(
        url: &BlobUrl,
        cfg: &StorageConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<BlobStore, StorageError> {
        let access = cfg.resolve(url, env)?;
        let secrets = access.secrets();
        let retry = RetryConfig {
            max_retries: 5,
            retry_timeout: Duration::from_secs(60),
            ..Default::default()
        };
        let store = access
            .builder(&url.container)?
            .with_retry(retry)
            .build()
            .map_err(|e| {
                StorageError::config(
                    format!(
                        "cannot set up access to storage account `{}`: {}",
                        access.account,
                        scrub(&e.to_string(), &secrets)
                    ),
                    "check [storage] and the AZURE_* environment variables",
                )
            })?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fhirpipe-blob")
            .enable_all()
            .build()
            .map_err(|e| StorageError::Io {
                account: access.account.clone(),
                container: url.container.clone(),
                op: "start the I/O runtime".into(),
                detail: e.to_string(),
            })?;
        Ok(BlobStore {
            store: Arc::new(store),
            rt: Arc::new(rt),
            url: url.clone(),
            account: access.account,
            credential: access.credential.kind(),
            secrets,
        })
    }

    /// The location this store was opened for.
    pub fn url(&self) -> &BlobUrl {
        &self.url
    }

    /// `az://container/prefix` of account, for messages.
    pub fn describe(&self, name: &str) -> String {
        format!(
            "https://{}.blob.core.windows.net/{}/{name}",
            self.account, self.url.container
        )
    }

    /// Maps a client error to a [`StorageError`] naming account and container.
    pub(crate) fn err(&self, op: &str, e: object_store::Error) -> StorageError {
        let account = self.account.clone();
        let container = self.url.container.clone();
        match e {
            object_store::Error::NotFound { path, .. } => StorageError::NotFound {
                account,
                container,
                path,
                op: op.to_string(),
            },
            object_store::Error::PermissionDenied { source, .. }
            | object_store::Error::Unauthenticated { source, .. } => StorageError::Denied {
                account,
                container,
                op: op.to_string(),
                credential: self.credential,
                detail: scrub(
                    service_message(&source.to_string()).trim_end_matches('.'),
                    &self.secrets,
                ),
            },
            other => {
                // Listing errors arrive as `Generic` with the HTTP status in the text.
                let text = other.to_string();
                let code = xml_tag(&text, "Code");
                let status = |s: &str| text.contains(s);
                if status("403 Forbidden") || status("401 Unauthorized") {
                    let detail = xml_tag(&text, "Code")
                        .map(|_| service_message(&text))
                        .unwrap_or_else(|| "the service refused the request".into());
                    StorageError::Denied {
                        account,
                        container,
                        op: op.to_string(),
                        credential: self.credential,
                        detail: scrub(detail.trim_end_matches('.'), &self.secrets),
                    }
                } else if status("404 Not Found") {
                    StorageError::NotFound {
                        path: code.unwrap_or_default(),
                        account,
                        container,
                        op: op.to_string(),
                    }
                } else {
                    StorageError::Io {
                        account,
                        container,
                        op: op.to_string(),
                        detail: scrub(&text, &self.secrets),
                    }
                }
            }
        }
    }

    /// Runs a future on the store's runtime (from a plain thread).
    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Lists the blobs under `prefix` (a folder: `prefix/…`), sorted by name, with sizes.
    pub fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, StorageError> {
        let p = (!prefix.is_empty()).then(|| ObjPath::from(prefix));
        let store = self.store.clone();
        let metas: Vec<object_store::ObjectMeta> = self
            .block_on(async move { store.list(p.as_ref()).try_collect().await })
            .map_err(|e| self.err(&format!("list `{prefix}`"), e))?;
        let mut out: Vec<(String, u64)> = metas
            .into_iter()
            .map(|m| (m.location.to_string(), m.size))
            .collect();
        out.sort();
        Ok(out)
    }

    /// The size of one blob, or `None` when it does not exist.
    pub fn size(&self, name: &str) -> Result<Option<u64>, StorageError> {
        let store = self.store.clone();
        let path = ObjPath::from(name);
        match self.block_on(async move { store.head(&path).await }) {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(&format!("read `{name}`"), e)),
        }
    }

    /// Server-side copy of `from` to `to` (overwriting).
    pub fn copy(&self, from: &str, to: &str) -> Result<(), StorageError> {
        let store = self.store.clone();
        let (f, t) = (ObjPath::from(from), ObjPath::from(to));
        self.block_on(async move { store.copy(&f, &t).await })
            .map_err(|e| self.err(&format!("copy `{from}` to `{to}`"), e))
    }

    /// Deletes blobs; ones already gone are fine.
    pub fn delete(&self, names: &[String]) -> Result<(), StorageError> {
        for name in names {
            let store = self.store.clone();
            let path = ObjPath::from(name.as_str());
            match self.block_on(async move { store.delete(&path).await }) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err(&format!("delete `{name}`"), e)),
            }
        }
        Ok(())
    }

    /// Uploads a small blob in one request.
    pub fn put(&self, name: &str, data: Vec<u8>) -> Result<(), StorageError> {
        let store = self.store.clone();
        let path = ObjPath::from(name);
        self.block_on(async move { store.put(&path, data.into()).await })
            .map(|_| ())
            .map_err(|e| self.err(&format!("write `{name}`"), e))
    }

    /// Reads the first `n` bytes of a blob (doctor's read check).
    pub fn get_head(&self, name: &str, n: u64) -> Result<Vec<u8>, StorageError> {
        let store = self.store.clone();
        let path = ObjPath::from(name);
        self.block_on(async move { store.get_range(&path, 0..n).await })
            .map(|b| b.to_vec())
            .map_err(|e| self.err(&format!("read `{name}`"), e))
    }

    /// Reads a whole (small) blob.
    pub fn get(&self, name: &str) -> Result<Vec<u8>, StorageError> {
        let store = self.store.clone();
        let path = ObjPath::from(name);
        self.block_on(async move {
            let r = store.get(&path).await?;
            r.bytes().await
        })
        .map(|b| b.to_vec())
        .map_err(|e| self.err(&format!("read `{name}`"), e))
    }
}

/// `<Code>: <first line of Message>` from an error body, else the text's first line (the
/// client's own wording carries timings and a redacted URL, the service's says why).
fn service_message(text: &str) -> String {
    let message = xml_tag(text, "Message").map(|m| first_line(&m));
    match (xml_tag(text, "Code"), message) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c,
        _ => first_line(text),
    }
}

/// The text of the first `<tag>…</tag>` in an error body.
fn xml_tag(text: &str, tag: &str) -> Option<String> {
    let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
    let len = text[start..].find(&format!("</{tag}>"))?;
    Some(text[start..start + len].trim().to_string())
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn scrub_removes_secrets_and_signatures() {
        let s = scrub(
            "Error performing GET https://a.blob.core.windows.net/c?sv=1&sig=abc%2Fdef&se=2 - key K3yK3y rejected",
            &["K3yK3y".into()],
        );
        assert_eq!(
            s,
            "Error performing GET https://a.blob.core.windows.net/c?sv=1&sig=***&se=2 - key *** rejected"
        );
    }
}
