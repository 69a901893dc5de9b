//! Configuration of the `fhir_import` sink.

use crate::auth::AuthConfig;
use crate::config::raw::ByteSize;
use serde::Deserialize;

/// `[sinks.<name>] kind = "fhir_import"`: bulk import into a FHIR service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FhirImportSinkConfig {
    /// The FHIR service base URL, e.g. `https://myws-myfhir.fhir.azurehealthcareapis.com`.
    pub url: String,
    /// How to get a token (see README "Auth for FHIR endpoints").
    pub auth: AuthConfig,
    /// The token audience when the service's differs from its URL; default: the URL without
    /// a trailing slash.
    pub audience: Option<String>,
    /// `InitialLoad` (empty service, API writes blocked) or `IncrementalLoad` (keeps
    /// `meta.versionId`/`meta.lastUpdated`).
    pub mode: ImportMode,
    /// Where NDJSON chunks are staged: a folder on the service's configured import storage
    /// account, `https://<account>.blob.core.windows.net/<container>/<prefix>` (no query
    /// string: `$import` refuses SAS URLs).
    pub staging: String,
    /// Target size of a staged file, 1 MB–1 GB (default "256MB"; Azure suggests 50–500 MB).
    pub chunk_size: Option<ByteSize>,
    /// Keep the staged chunks after a fully successful import (for audit); default: delete
    /// them. Chunks are always kept when the service rejected resources or counts do not
    /// match, since the error files point into them by line.
    #[serde(default)]
    pub keep_staged: bool,
}

/// `$import` mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ImportMode {
    /// Load into an empty service.
    InitialLoad,
    /// Load into a service in use.
    IncrementalLoad,
}

impl ImportMode {
    /// The name `$import` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportMode::InitialLoad => "InitialLoad",
            ImportMode::IncrementalLoad => "IncrementalLoad",
        }
    }
}
