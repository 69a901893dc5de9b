//! Configuration of the `fhir_export` source.

use crate::auth::AuthConfig;
use serde::Deserialize;

/// `[source] kind = "fhir_export"`: bulk export from a FHIR service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FhirExportSourceConfig {
    /// The FHIR service base URL, e.g. `https://myws-myfhir.fhir.azurehealthcareapis.com`.
    pub url: String,
    /// How to get a token (see README "Auth for FHIR endpoints").
    pub auth: AuthConfig,
    /// The token audience when the service's differs from its URL (Azure API for FHIR lets
    /// you configure one); default: the URL without a trailing slash.
    pub audience: Option<String>,
    /// `system` (default: `/$export`), `patient` (`/Patient/$export`) or `group`
    /// (`/Group/{group}/$export`).
    #[serde(default)]
    pub level: ExportLevel,
    /// The Group id, with `level = "group"`.
    pub group: Option<String>,
    /// `_type`: only these resource types.
    pub types: Option<Vec<String>>,
    /// `_since`: only resources changed since this instant (e.g. `2026-11-01T00:00:00Z`).
    pub since: Option<String>,
    /// `_till`: only resources changed before this instant.
    pub till: Option<String>,
    /// `_typeFilter`: FHIR search queries such as `Observation?status=final`.
    pub type_filter: Option<Vec<String>>,
    /// `_container`: the container of the service's export storage account to write to.
    pub container: Option<String>,
    /// State file (local path or blob URL) holding the last successful run's
    /// `transactionTime`, used as the next run's `_since`; written only after the sinks
    /// committed. An explicit `since` wins over it.
    pub state: Option<String>,
    /// Wait between status polls when the service sends no `Retry-After` (default "10s").
    pub poll_interval: Option<String>,
    /// Longest wait between polls: a larger `Retry-After` is cut to this (default "60s").
    pub max_poll_wait: Option<String>,
    /// Give up when the export has not completed after this long (default "12h").
    pub timeout: Option<String>,
}

/// The `$export` level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportLevel {
    /// `/$export`: every resource.
    #[default]
    System,
    /// `/Patient/$export`: the patient compartments.
    Patient,
    /// `/Group/{id}/$export`: the compartments of a group's members.
    Group,
}
