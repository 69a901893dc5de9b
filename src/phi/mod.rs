//! Free-text PHI: recognition of protected health information in clinical text and the
//! operations on it (issue 6 item 4).
//!
//! Owns: the PHI categories ([`PhiType`]) and spans ([`Span`]); [`KnownPhi`], the names,
//! addresses, cities and identifiers taken from a patient's structured data (Patient,
//! RelatedPerson, Practitioner, Organization) that the recognizer looks for in that
//! patient's text; the [`Recognizer`] (built once, `Send + Sync`); the operations `tag`,
//! `redact` and `surrogate` ([`ops`]); and the helpers for the FHIR carriers of free text —
//! XHTML `text.div`, `Annotation.text` and base64 `text/plain` attachments ([`carriers`]).
//!
//! The recognizer is rules, not a model: one pass over the text's tokens with pattern
//! detectors (dates, phone/fax, SSN, e-mail, URL, IP, street lines, "City, ST ZIP"), context
//! cues (titles such as "Dr.", credentials such as ", MD", field labels such as "MRN:" or
//! "DOB", kinship words, "lives in"), and the [`KnownPhi`] of the record. It does not use
//! any word list of the sample generator; see ARCHITECTURE.md for the measured precision
//! and recall.

pub mod carriers;
pub mod config;
mod date;
pub mod eval;
mod known;
pub mod ops;
mod recognize;
mod words;

pub use config::{PhiConfig, PhiOperation};
pub use known::KnownPhi;
pub use ops::{redact, surrogate, Policy, RedactFormat, Surrogates};
pub use recognize::Recognizer;

/// A category of PHI.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum PhiType {
    /// A person's name (patient, relative, clinician).
    Name,
    /// A calendar date more precise than a year.
    Date,
    /// A telephone number.
    Phone,
    /// A fax number (a phone number introduced as a fax).
    Fax,
    /// An e-mail address.
    Email,
    /// A US Social Security number.
    Ssn,
    /// A medical record number.
    Mrn,
    /// Another identifier: insurance member, account, licence numbers.
    Id,
    /// A street line.
    Address,
    /// A city or town.
    City,
    /// A US state (its two-letter code next to a ZIP code).
    State,
    /// A ZIP code.
    Zip,
    /// A web address.
    Url,
    /// An IPv4 address.
    Ip,
    /// A stated age (the number). Safe Harbor requires only ages over 89 to be removed; the
    /// operations leave younger ages alone (see [`ops::Policy::age_over`]).
    Age,
}

impl PhiType {
    /// Every category, in label order of the issue.
    pub const ALL: [PhiType; 15] = [
        PhiType::Name,
        PhiType::Date,
        PhiType::Phone,
        PhiType::Fax,
        PhiType::Email,
        PhiType::Ssn,
        PhiType::Mrn,
        PhiType::Id,
        PhiType::Address,
        PhiType::City,
        PhiType::State,
        PhiType::Zip,
        PhiType::Url,
        PhiType::Ip,
        PhiType::Age,
    ];

    /// The upper-case label (`NAME`, `DATE`, ...), as in the sample annotations.
    pub fn label(self) -> &'static str {
        match self {
            PhiType::Name => "NAME",
            PhiType::Date => "DATE",
            PhiType::Phone => "PHONE",
            PhiType::Fax => "FAX",
            PhiType::Email => "EMAIL",
            PhiType::Ssn => "SSN",
            PhiType::Mrn => "MRN",
            PhiType::Id => "ID",
            PhiType::Address => "ADDRESS",
            PhiType::City => "CITY",
            PhiType::State => "STATE",
            PhiType::Zip => "ZIP",
            PhiType::Url => "URL",
            PhiType::Ip => "IP",
            PhiType::Age => "AGE",
        }
    }

    /// Parses a label, case-insensitively.
    pub fn from_label(s: &str) -> Option<PhiType> {
        PhiType::ALL
            .into_iter()
            .find(|t| t.label().eq_ignore_ascii_case(s))
    }
}

impl serde::Serialize for PhiType {
    /// As its label, for run reports.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

impl std::fmt::Display for PhiType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// One recognised PHI mention: byte offsets into the text (end exclusive), its category and
/// the recognizer's confidence (0–1; data-backed matches highest, context guesses lowest).
/// Serializes as `{"start":..,"end":..,"type":"NAME","confidence":..}` for the `tag`
/// operation's report.
#[derive(Clone, Copy, PartialEq, Debug, serde::Serialize)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// The category.
    #[serde(rename = "type")]
    pub kind: PhiType,
    /// Confidence in 0–1.
    pub confidence: f32,
}

/// Why free text could not be processed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PhiError {
    /// Attachment data is not valid base64.
    #[error("attachment data is not valid base64: {0}")]
    Base64(String),
    /// `text/plain` attachment data is not UTF-8.
    #[error("text/plain attachment data is not UTF-8 (invalid byte at offset {0})")]
    NotUtf8(usize),
    /// The narrative is not well-formed XHTML.
    #[error("narrative XHTML is malformed at byte {offset}: {reason}")]
    Xhtml { offset: usize, reason: &'static str },
    /// A category label is not one of the fifteen.
    #[error("unknown PHI category {0:?}; one of NAME, DATE, PHONE, FAX, EMAIL, SSN, MRN, ID, ADDRESS, CITY, STATE, ZIP, URL, IP, AGE")]
    UnknownType(String),
    /// A redaction format is not usable.
    #[error("invalid redaction format {format:?}: {reason}")]
    Format {
        format: String,
        reason: &'static str,
    },
}
