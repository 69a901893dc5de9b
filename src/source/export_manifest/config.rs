//! Configuration of the `export_manifest` source.

use crate::auth::AuthConfig;
use serde::Deserialize;

/// `[source] kind = "export_manifest"`: the files of an HL7 Bulk Data completion manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportManifestSourceConfig {
    /// The manifest: a local file, a blob (`az://`, `abfss://`, `https://…blob…`), or an
    /// http(s) URL such as the export's status URL (fetched with the bearer token of `auth`
    /// when given).
    pub manifest: String,
    /// How to get a token for an http(s) manifest URL and for output files when the manifest
    /// says `requiresAccessToken: true`.
    pub auth: Option<AuthConfig>,
    /// The token audience (default: `scheme://host[:port]` of the manifest URL, or of the
    /// manifest's `request` when the manifest is a file or blob).
    pub audience: Option<String>,
}
