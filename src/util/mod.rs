//! Small shared helpers: byte sizes written by people (`"128MB"`), human formatting, the
//! civil calendar, durations (`"10s"`), the process's allocator settings, a fast hasher
//! for maps keyed by model names, and JSON string escaping.

mod alloc;
pub mod calendar;
mod duration;
pub mod hash;
pub mod json;
mod size;

pub use alloc::tune_allocator;
pub use duration::parse_duration;
pub use size::{format_bytes, parse_byte_size, ByteSizeError};
