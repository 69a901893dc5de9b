//! The free-text settings (`[deidentify.text]` of a pipeline): which operation, the redaction
//! format, the categories, the age threshold and whether known PHI is taken from the input.

use serde::Deserialize;

use super::ops::{Policy, RedactFormat};
use super::{PhiError, PhiType};

/// What happens to PHI found in free text.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PhiOperation {
    /// Report the spans only; the text is unchanged.
    Tag,
    /// Replace each span with `format`.
    #[default]
    Redact,
    /// Replace each span with a realistic surrogate, consistent within the run.
    Surrogate,
}

impl PhiOperation {
    /// Every operation with its name (`tag`, `redact`, `surrogate`).
    pub const ALL: [(PhiOperation, &'static str); 3] = [
        (PhiOperation::Tag, "tag"),
        (PhiOperation::Redact, "redact"),
        (PhiOperation::Surrogate, "surrogate"),
    ];

    /// Its name, as written in a pipeline definition.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(o, _)| *o == self)
            .map_or("redact", |(_, n)| n)
    }

    /// The operation of `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(o, _)| *o)
    }
}

/// Free-text PHI settings.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PhiConfig {
    /// `tag`, `redact` (default) or `surrogate`.
    #[serde(default)]
    pub operation: PhiOperation,
    /// Replacement for `redact`; `{TYPE}` is the category (NAME, DATE, ...). Default
    /// `[{TYPE}]`.
    #[serde(default = "default_format")]
    pub format: String,
    /// Categories acted on (labels such as "NAME", "DATE"); default all fifteen.
    #[serde(default)]
    pub types: Option<Vec<String>>,
    /// Ages above this are PHI (Safe Harbor: 89); younger ages are left as written.
    #[serde(default = "default_age_over")]
    pub age_over: u32,
    /// Largest surrogate date shift in days, either direction (default 365).
    #[serde(default = "default_shift")]
    pub max_date_shift_days: u32,
    /// Take the names, addresses, telecom and identifiers of the input's Patient,
    /// RelatedPerson, Practitioner and Organization resources (a first pass over their
    /// files) and look for them in the text of the resources that reference them
    /// (default true).
    #[serde(default = "default_known")]
    pub known: bool,
}

fn default_known() -> bool {
    true
}

fn default_format() -> String {
    "[{TYPE}]".to_string()
}

fn default_age_over() -> u32 {
    89
}

fn default_shift() -> u32 {
    365
}

impl Default for PhiConfig {
    fn default() -> Self {
        PhiConfig {
            operation: PhiOperation::default(),
            format: default_format(),
            types: None,
            age_over: default_age_over(),
            max_date_shift_days: default_shift(),
            known: default_known(),
        }
    }
}

impl PhiConfig {
    /// The checked policy: every label must be a known category.
    pub fn policy(&self) -> Result<Policy, PhiError> {
        match &self.types {
            None => Ok(Policy::new(&PhiType::ALL, self.age_over)),
            Some(labels) => {
                let mut types = Vec::with_capacity(labels.len());
                for l in labels {
                    types.push(
                        PhiType::from_label(l).ok_or_else(|| PhiError::UnknownType(l.clone()))?,
                    );
                }
                Ok(Policy::new(&types, self.age_over))
            }
        }
    }

    /// The checked redaction format.
    pub fn redact_format(&self) -> Result<RedactFormat, PhiError> {
        RedactFormat::parse(&self.format)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_unknown_fields_and_types() {
        let c: PhiConfig = toml::from_str("").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c, PhiConfig::default());
        let e = toml::from_str::<PhiConfig>("operation = \"tag\"\nfromat = \"x\"")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `fromat`"), "{e}");
        let c: PhiConfig =
            toml::from_str("operation = \"surrogate\"\ntypes = [\"name\", \"ZIPCODE\"]")
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.operation, PhiOperation::Surrogate);
        assert_eq!(
            c.policy().map(|_| ()).unwrap_err().to_string(),
            "unknown PHI category \"ZIPCODE\"; one of NAME, DATE, PHONE, FAX, EMAIL, SSN, MRN, ID, ADDRESS, CITY, STATE, ZIP, URL, IP, AGE"
        );
    }
}
