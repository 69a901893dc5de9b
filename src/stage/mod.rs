//! Stages between source and sinks. Each works on one [`Chunk`](crate::batch::Chunk) or
//! [`Batch`](crate::batch::Batch) at a time on a rayon worker and keeps its scratch buffers
//! between calls, so the hot path does not allocate per resource. `check`: parsing and the
//! basic checks; `transform`: the `[transform]` stage, called by the checker per resource.

pub mod check;
pub mod transform;

pub use check::Checker;
