//! Small shared helpers: byte sizes written by people (`"128MB"`), human formatting, and the
//! deterministic file naming used by every sink.

mod size;

pub use size::{format_bytes, parse_byte_size, ByteSizeError};
