//! Where a source reads or a sink writes: a local path or an Azure Blob / ADLS Gen2 location,
//! parsed from the three URL forms people paste (`az://`, `abfss://`, `https://…blob…`).

use std::fmt;
use std::path::PathBuf;

/// A local path or a blob location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A file or folder on local disk.
    Local(PathBuf),
    /// A prefix in an Azure storage container.
    Blob(BlobUrl),
}

/// A container and a prefix in an Azure storage account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobUrl {
    /// The storage account, when the URL names it (`abfss://`, `https://`); `az://` URLs take
    /// it from `[storage]` or the environment.
    pub account: Option<String>,
    /// The container (ADLS: file system).
    pub container: String,
    /// The path below the container, without leading or trailing `/` (may be empty).
    pub prefix: String,
}

/// Why a location could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LocationError {
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub fix: String,
}

fn bad(message: impl Into<String>, fix: impl Into<String>) -> LocationError {
    LocationError {
        message: message.into(),
        fix: fix.into(),
    }
}

const FORMS: &str = "write az://container/prefix, abfss://container@account.dfs.core.windows.net/prefix or https://account.blob.core.windows.net/container/prefix";

impl Location {
    /// Parses a path or URL. Anything with `://` must be one of the supported URL forms;
    /// everything else is a local path.
    pub fn parse(text: &str) -> Result<Location, LocationError> {
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(Location::Local(PathBuf::from(text)));
        };
        if rest.contains('?') || rest.contains('#') {
            return Err(bad(
                "storage URLs must not carry a query string (a SAS token in a URL would end up in reports and logs)",
                "remove the `?…` part and give the SAS as [storage] sas_token = \"${AZURE_STORAGE_SAS_TOKEN}\" or in AZURE_STORAGE_SAS_TOKEN",
            ));
        }
        let url = match scheme.to_ascii_lowercase().as_str() {
            "az" => {
                let (container, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                BlobUrl {
                    account: None,
                    container: container.to_string(),
                    prefix: prefix.to_string(),
                }
            }
            "abfss" | "abfs" => {
                let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
                let Some((container, host)) = authority.split_once('@') else {
                    return Err(bad(
                        format!("`{text}` has no container: abfss URLs name it before the @"),
                        FORMS,
                    ));
                };
                let account = account_of(host, ".dfs.core.windows.net")
                    .or_else(|| account_of(host, ".blob.core.windows.net"))
                    .ok_or_else(|| {
                        bad(
                            format!("`{host}` is not an ADLS Gen2 host"),
                            "use <account>.dfs.core.windows.net as the host",
                        )
                    })?;
                BlobUrl {
                    account: Some(account),
                    container: container.to_string(),
                    prefix: path.to_string(),
                }
            }
            "https" => {
                let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
                let account = account_of(host, ".blob.core.windows.net")
                    .or_else(|| account_of(host, ".dfs.core.windows.net"))
                    .ok_or_else(|| {
                        bad(
                            format!("`{host}` is not an Azure Blob Storage host"),
                            "use https://<account>.blob.core.windows.net/<container>/<prefix>; for other endpoints (Azurite, private DNS) use az://container/prefix with [storage] endpoint",
                        )
                    })?;
                let (container, prefix) = path.split_once('/').unwrap_or((path, ""));
                BlobUrl {
                    account: Some(account),
                    container: container.to_string(),
                    prefix: prefix.to_string(),
                }
            }
            other => {
                return Err(bad(
                    format!("unsupported URL scheme `{other}://`"),
                    format!("{FORMS}, or a local path"),
                ))
            }
        };
        url.checked(text).map(Location::Blob)
    }
}

/// A blob named by a full URL, as in an export manifest's `output[].url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectUrl {
    /// Account, container and blob name (in `prefix`).
    pub blob: BlobUrl,
    /// The blob endpoint for a path-style URL (`http://127.0.0.1:10000/devstoreaccount1`);
    /// `None` when the host names the account (`<account>.blob.core.windows.net`).
    pub endpoint: Option<String>,
}

impl ObjectUrl {
    /// Reads a blob URL: `https://<account>.blob.core.windows.net/<container>/<name>` (or
    /// `.dfs.`), a URL below `endpoint` (the `[storage]` endpoint: private endpoints,
    /// sovereign clouds), or a path-style URL on a loopback host as Azurite writes them
    /// (`http://127.0.0.1:PORT/<account>/<container>/<name>`). `None` for anything else
    /// (another web server, a URL with a query string): such URLs are fetched over HTTP.
    pub fn parse(url: &str, endpoint: Option<&str>) -> Option<ObjectUrl> {
        if url.contains('?') || url.contains('#') {
            return None;
        }
        if let Ok(Location::Blob(blob)) = Location::parse(url) {
            return (!blob.prefix.is_empty()).then_some(ObjectUrl {
                blob,
                endpoint: None,
            });
        }
        let path_style = |endpoint: &str, rest: &str, account: &str| {
            let (container, name) = rest.split_once('/')?;
            let blob = BlobUrl {
                account: Some(account.to_string()),
                container: container.to_string(),
                prefix: name.to_string(),
            }
            .checked(url)
            .ok()?;
            (!blob.prefix.is_empty()).then(|| ObjectUrl {
                blob,
                endpoint: Some(endpoint.to_string()),
            })
        };
        if let Some(e) = endpoint.map(|e| e.trim_end_matches('/')) {
            if let Some(rest) = url.strip_prefix(e).and_then(|r| r.strip_prefix('/')) {
                let account = e.rsplit('/').next().unwrap_or_default();
                return path_style(e, rest, account);
            }
        }
        let (scheme, rest) = url.split_once("://")?;
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let (host, path) = rest.split_once('/')?;
        let name = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
        if !matches!(name, "127.0.0.1" | "localhost" | "[::1]") {
            return None;
        }
        let (account, rest) = path.split_once('/')?;
        path_style(&format!("{scheme}://{host}/{account}"), rest, account)
    }
}

fn account_of(host: &str, suffix: &str) -> Option<String> {
    let host = host.to_ascii_lowercase();
    let account = host.strip_suffix(suffix)?;
    (!account.is_empty() && !account.contains('.')).then(|| account.to_string())
}

impl BlobUrl {
    fn checked(mut self, text: &str) -> Result<BlobUrl, LocationError> {
        let c = &self.container;
        let ok = (3..=63).contains(&c.len())
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !c.starts_with('-')
            && !c.ends_with('-')
            && !c.contains("--");
        if c.is_empty() {
            return Err(bad(format!("`{text}` names no container"), FORMS));
        }
        if !ok {
            return Err(bad(
                format!("`{c}` is not a valid container name"),
                "container names are 3–63 characters: lowercase letters, digits and single hyphens, starting and ending with a letter or digit",
            ));
        }
        if let Some(a) = &self.account {
            if !(3..=24).contains(&a.len()) || !a.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(bad(
                    format!("`{a}` is not a valid storage account name"),
                    "account names are 3–24 lowercase letters and digits",
                ));
            }
        }
        self.prefix = self.prefix.trim_matches('/').to_string();
        if self.prefix.split('/').any(|s| s == "." || s == "..") {
            return Err(bad(
                format!("`{text}` has `.` or `..` in its path"),
                "write the blob prefix without relative segments",
            ));
        }
        Ok(self)
    }

    /// The blob name of `rel` below the prefix.
    pub fn child(&self, rel: &str) -> String {
        if self.prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.prefix)
        }
    }
}

impl fmt::Display for BlobUrl {
    /// `az://container/prefix` plus the account when known — never a credential.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.account {
            Some(a) => write!(
                f,
                "https://{a}.blob.core.windows.net/{}/{}",
                self.container, self.prefix
            ),
            None => write!(f, "az://{}/{}", self.container, self.prefix),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::Blob(b) => write!(f, "{b}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(text: &str) -> BlobUrl {
        match Location::parse(text).unwrap() {
            Location::Blob(b) => b,
            other => panic!("{text} parsed as {other:?}"),
        }
    }

    #[test]
    fn parses_the_three_url_forms() {
        assert_eq!(
            blob("az://export/20261122T020000-4f1c/"),
            BlobUrl {
                account: None,
                container: "export".into(),
                prefix: "20261122T020000-4f1c".into()
            }
        );
        assert_eq!(
            blob("abfss://lake@acct01.dfs.core.windows.net/fhir/raw/"),
            BlobUrl {
                account: Some("acct01".into()),
                container: "lake".into(),
                prefix: "fhir/raw".into()
            }
        );
        assert_eq!(
            blob("https://acct01.blob.core.windows.net/lake/fhir"),
            BlobUrl {
                account: Some("acct01".into()),
                container: "lake".into(),
                prefix: "fhir".into()
            }
        );
        assert_eq!(blob("az://lake").prefix, "");
        assert_eq!(blob("https://acct01.blob.core.windows.net/lake").prefix, "");
        assert_eq!(blob("az://lake/a").child("x.ndjson"), "a/x.ndjson");
        assert_eq!(blob("az://lake").child("x.ndjson"), "x.ndjson");
    }

    #[test]
    fn issue5_manifest_output_urls_name_blobs() {
        let o = ObjectUrl::parse(
            "http://127.0.0.1:41234/devstoreaccount1/fhirexport/20261123T120000-1/Patient-1.ndjson",
            None,
        )
        .unwrap();
        assert_eq!(
            o.endpoint.as_deref(),
            Some("http://127.0.0.1:41234/devstoreaccount1")
        );
        assert_eq!(o.blob.account.as_deref(), Some("devstoreaccount1"));
        assert_eq!(o.blob.container, "fhirexport");
        assert_eq!(o.blob.prefix, "20261123T120000-1/Patient-1.ndjson");
        let o = ObjectUrl::parse(
            "https://acct01.blob.core.windows.net/export/x/Observation-2.ndjson",
            None,
        )
        .unwrap();
        assert_eq!((o.blob.container.as_str(), o.endpoint), ("export", None));
        let o = ObjectUrl::parse(
            "https://blobs.internal.example/acct01/export/Patient-1.ndjson",
            Some("https://blobs.internal.example/acct01/"),
        )
        .unwrap();
        assert_eq!(o.blob.prefix, "Patient-1.ndjson");
        assert_eq!(o.blob.account.as_deref(), Some("acct01"));
        // Not blobs: another web server, a signed URL, a container without a blob.
        assert_eq!(
            ObjectUrl::parse("https://files.example.org/export/Patient-1.ndjson", None),
            None
        );
        assert_eq!(
            ObjectUrl::parse(
                "https://acct01.blob.core.windows.net/export/P.ndjson?sv=1&sig=x",
                None
            ),
            None
        );
        assert_eq!(
            ObjectUrl::parse("https://acct01.blob.core.windows.net/export", None),
            None
        );
    }

    #[test]
    fn local_paths_stay_local() {
        assert_eq!(
            Location::parse("out/parquet").unwrap(),
            Location::Local(PathBuf::from("out/parquet"))
        );
        assert_eq!(
            Location::parse("/data/x.ndjson").unwrap(),
            Location::Local(PathBuf::from("/data/x.ndjson"))
        );
    }

    #[test]
    fn rejects_bad_urls_with_a_fix() {
        let e = Location::parse("https://acct01.blob.core.windows.net/lake/x?sv=1&sig=SECRET")
            .unwrap_err();
        assert!(e.message.contains("query string"), "{e:?}");
        assert!(!e.message.contains("SECRET") && !e.fix.contains("SECRET"));
        let e = Location::parse("s3://bucket/x").unwrap_err();
        assert_eq!(e.message, "unsupported URL scheme `s3://`");
        let e = Location::parse("az://Lake_1/x").unwrap_err();
        assert_eq!(e.message, "`Lake_1` is not a valid container name");
        let e = Location::parse("abfss://acct01.dfs.core.windows.net/x").unwrap_err();
        assert!(e.message.contains("no container"), "{e:?}");
        let e = Location::parse("https://example.com/lake/x").unwrap_err();
        assert_eq!(e.message, "`example.com` is not an Azure Blob Storage host");
        let e = Location::parse("az:///x").unwrap_err();
        assert!(e.message.contains("names no container"), "{e:?}");
        let e = Location::parse("az://lake/a/../b").unwrap_err();
        assert!(e.message.contains("`..`"), "{e:?}");
    }
}
