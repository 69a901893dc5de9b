//! The Microsoft FHIR anonymizer configuration format, read unchanged: `fhirVersion`,
//! `processingErrors`, `fhirPathRules` (in order, with each method's settings) and `parameters`.
//! Keys may be given as `${VAR}` (read from the environment) or left out and supplied by
//! `FHIRPIPE_DEID_DATE_SHIFT_KEY`, `FHIRPIPE_DEID_CRYPTO_HASH_KEY`, `FHIRPIPE_DEID_ENCRYPT_KEY`;
//! they are held as [`Secret`]s, which print as `***`.

use super::error::ConfigError;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;

/// Keys are the storage module's [`Secret`] (`Debug`/`Display` print `***`).
pub use crate::storage::Secret;

/// The file as written (the anonymizer's JSON; a UTF-8 BOM is accepted).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawConfig {
    /// `""`, `"R4"` (STU3 configurations are refused).
    #[serde(default)]
    pub fhir_version: Option<String>,
    /// `raise` (default) or `skip`: what a rule that fails on a resource does.
    #[serde(default)]
    pub processing_errors: Option<String>,
    /// The rules, applied in order; the first rule that touches a node wins.
    #[serde(default)]
    pub fhir_path_rules: Vec<RawRule>,
    /// Keys and switches of the methods.
    #[serde(default)]
    pub parameters: Option<RawParameters>,
}

/// One rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRule {
    /// FHIRPath, optionally starting with a resource type; `nodesByType('T')` and
    /// `nodesByName('n')` are available.
    pub path: String,
    /// keep, redact, dateShift, cryptoHash, encrypt, substitute, perturb, generalize
    /// (case-insensitive).
    pub method: String,
    /// substitute: the replacement (a string for primitives, an object for complex types).
    #[serde(default)]
    pub replace_with: Option<serde_json::Value>,
    /// generalize: FHIRPath condition → FHIRPath value, tried in order.
    #[serde(default)]
    pub cases: Option<Cases>,
    /// generalize: `redact` (default) or `keep` for values no case matches.
    #[serde(default)]
    pub other_values: Option<String>,
    /// perturb: the width of the noise range (required).
    #[serde(default)]
    pub span: Option<serde_json::Value>,
    /// perturb: `fixed` (default) or `proportional` (span × value).
    #[serde(default)]
    pub range_type: Option<String>,
    /// perturb: decimal places of the result (default 2; integers 0).
    #[serde(default)]
    pub round_to: Option<serde_json::Value>,
}

/// `parameters`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawParameters {
    /// dateShift key (with the scope's id, derives each resource's offset).
    #[serde(default)]
    pub date_shift_key: Option<String>,
    /// `resource` (default), `file` or `folder`.
    #[serde(default)]
    pub date_shift_scope: Option<String>,
    /// A fixed offset in days instead of the derived one.
    #[serde(default)]
    pub date_shift_fixed_offset_in_days: Option<i64>,
    /// cryptoHash key (HMAC-SHA256).
    #[serde(default)]
    pub crypto_hash_key: Option<String>,
    /// encrypt key: 16, 24 or 32 bytes of UTF-8 (AES-128/192/256).
    #[serde(default)]
    pub encrypt_key: Option<String>,
    /// redact keeps the year of dates (unless the age is over 89).
    #[serde(default)]
    pub enable_partial_dates_for_redact: Option<bool>,
    /// redact keeps ages up to 89.
    #[serde(default)]
    pub enable_partial_ages_for_redact: Option<bool>,
    /// redact keeps the first 3 digits of ZIP codes (zeroing the rest).
    #[serde(default)]
    pub enable_partial_zip_codes_for_redact: Option<bool>,
    /// ZIP3 areas with under 20,000 people: all digits zeroed.
    #[serde(default)]
    pub restricted_zip_code_tabulation_areas: Option<Vec<String>>,
    /// Settings of custom processors (accepted and ignored: fhirpipe has none).
    #[serde(default)]
    pub custom_settings: Option<serde_json::Value>,
}

/// generalize `cases`, in the order written.
#[derive(Debug, Clone, Default)]
pub struct Cases(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for Cases {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cases;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of FHIRPath condition → FHIRPath value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Cases, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, serde_json::Value>()? {
                    let v = match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    out.push((k, v));
                }
                Ok(Cases(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// Where the date-shift offset's id comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateShiftScope {
    /// The id of the (outermost) resource.
    Resource,
    /// The input file's name.
    File,
    /// The input folder's name.
    Folder,
}

/// The checked parameters.
#[derive(Debug, Clone)]
pub struct Parameters {
    /// dateShift key.
    pub date_shift_key: Secret,
    /// Scope of the offset.
    pub date_shift_scope: DateShiftScope,
    /// Fixed offset, if configured.
    pub date_shift_fixed_offset: Option<i64>,
    /// cryptoHash key.
    pub crypto_hash_key: Secret,
    /// encrypt key.
    pub encrypt_key: Secret,
    /// Partial dates.
    pub partial_dates: bool,
    /// Partial ages.
    pub partial_ages: bool,
    /// Partial ZIP codes.
    pub partial_zip: bool,
    /// Restricted ZIP3 areas.
    pub restricted_zip: Vec<String>,
}

/// Reads `${VAR}` values from the environment, or the default variable when the value is absent.
fn resolve_key(
    path: &str,
    field: &str,
    value: Option<String>,
    default_var: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Secret, ConfigError> {
    match value {
        Some(v) => {
            if let Some(var) = v.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
                match env(var) {
                    Some(k) => Ok(Secret::new(k)),
                    None => Err(ConfigError::Invalid {
                        path: path.to_string(),
                        message: format!(
                            "parameters.{field} names the environment variable {var}, which is not set; export it or write the key in the file"
                        ),
                    }),
                }
            } else {
                Ok(Secret::new(v))
            }
        }
        None => Ok(Secret::new(env(default_var).unwrap_or_default())),
    }
}

impl Parameters {
    /// Checks `raw`; `env` looks up environment variables.
    pub fn from_raw(
        path: &str,
        raw: RawParameters,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let scope = match raw.date_shift_scope.as_deref().map(str::to_ascii_lowercase) {
            None => DateShiftScope::Resource,
            Some(s) if s == "resource" => DateShiftScope::Resource,
            Some(s) if s == "file" => DateShiftScope::File,
            Some(s) if s == "folder" => DateShiftScope::Folder,
            Some(s) => {
                return Err(ConfigError::Invalid {
                    path: path.to_string(),
                    message: format!(
                        "parameters.dateShiftScope is '{s}'; use resource, file or folder"
                    ),
                })
            }
        };
        Ok(Parameters {
            date_shift_key: resolve_key(
                path,
                "dateShiftKey",
                raw.date_shift_key,
                "FHIRPIPE_DEID_DATE_SHIFT_KEY",
                env,
            )?,
            date_shift_scope: scope,
            date_shift_fixed_offset: raw.date_shift_fixed_offset_in_days,
            crypto_hash_key: resolve_key(
                path,
                "cryptoHashKey",
                raw.crypto_hash_key,
                "FHIRPIPE_DEID_CRYPTO_HASH_KEY",
                env,
            )?,
            encrypt_key: resolve_key(
                path,
                "encryptKey",
                raw.encrypt_key,
                "FHIRPIPE_DEID_ENCRYPT_KEY",
                env,
            )?,
            partial_dates: raw.enable_partial_dates_for_redact.unwrap_or(false),
            partial_ages: raw.enable_partial_ages_for_redact.unwrap_or(false),
            partial_zip: raw.enable_partial_zip_codes_for_redact.unwrap_or(false),
            restricted_zip: raw.restricted_zip_code_tabulation_areas.unwrap_or_default(),
        })
    }
}

/// Parses the file's text (a leading UTF-8 BOM is skipped, as .NET does).
pub fn parse_raw(path: &str, text: &str) -> Result<RawConfig, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    serde_json::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_string(),
        message: e.to_string(),
    })
}

/// `[deidentify]` of a pipeline definition: de-identify every resource between the checks /
/// transform and the sinks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeidentifyConfig {
    /// The Microsoft anonymizer configuration file (JSON), relative to the pipeline definition,
    /// e.g. `"deid/safe-harbor.json"`.
    pub config: String,
    /// `[deidentify.text]`: free-text PHI in `text.div`, `Annotation.text` and `text/plain`
    /// attachments (absent: free text is left to the rules).
    #[serde(default)]
    pub text: Option<crate::phi::PhiConfig>,
}
