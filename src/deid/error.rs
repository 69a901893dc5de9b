//! Errors of de-identification: a configuration that cannot be used (refused before any data is
//! read), an input resource that is not valid R4 JSON, and a processing error of a rule (which
//! `processingErrors = "skip"` turns into an empty, REDACTED-labelled resource).

use thiserror::Error;

/// A de-identification configuration that cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read de-identification config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The JSON does not have the anonymizer configuration's shape.
    #[error("de-identification config {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong (serde's message with line and column).
        message: String,
    },
    /// A value is not acceptable; the message names the field and the fix.
    #[error("de-identification config {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// Why one resource could not be de-identified.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum DeidError {
    /// Not valid JSON, not a resource, an unknown R4 type or element (the anonymizer's
    /// `InvalidInputException`).
    #[error("invalid input resource: {0}")]
    Invalid(String),
    /// A rule failed on this resource (the anonymizer's `AnonymizerProcessingException`), with
    /// `processingErrors = "raise"`.
    #[error("de-identification failed: {0}")]
    Processing(String),
}
