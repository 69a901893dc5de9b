//! The `fhir_import` sink: a FHIR service's `$import`. Built so far: its configuration, its
//! checked plan and the endpoint checks of `fhirpipe doctor`; the data movement (chunking,
//! staging uploads, kick-off, polling, error files in the report) comes with the rest of
//! issue 5 and uses [`crate::fhirclient`].

mod config;

pub use config::{FhirImportSinkConfig, ImportMode};
