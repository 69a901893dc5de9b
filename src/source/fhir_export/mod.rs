//! The `fhir_export` source: a FHIR service's `$export`. Built so far: its configuration, its
//! checked plan and the endpoint checks of `fhirpipe doctor`; the data movement (kick-off,
//! poll, streaming the manifest's files, the `transactionTime` watermark) comes with the rest
//! of issue 5 and uses [`crate::fhirclient`].

mod config;

pub use config::{ExportLevel, FhirExportSourceConfig};
