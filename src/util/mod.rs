//! Small shared helpers: byte sizes written by people (`"128MB"`), human formatting, the
//! civil calendar, and the process's allocator settings.

mod alloc;
pub mod calendar;
mod size;

pub use alloc::tune_allocator;
pub use size::{format_bytes, parse_byte_size, ByteSizeError};
