//! fhirpipe: streaming FHIR R4 bulk-data pipelines.
//!
//! A run reads NDJSON from a source, splits it into chunks of whole lines, parses and checks
//! every line on a rayon pool (simd-json), and hands ordered batches to sinks (Parquet, NDJSON,
//! dead letter) over bounded channels. Every input line ends written, dead-lettered or
//! filtered, and the run report proves it. See ARCHITECTURE.md for the design.

pub mod auth;
pub mod batch;
pub mod cli;
pub mod config;
pub mod deid;
pub mod doctor;
pub mod exit;
pub mod fhir;
pub mod fhirclient;
pub mod fhirpath;
pub mod http;
pub mod phi;
pub mod run;
pub mod sample;
pub mod sink;
pub mod source;
pub mod stage;
pub mod storage;
pub mod util;
pub mod view;

#[cfg(test)]
pub(crate) mod testutil;
