//! Extractors: how records become the values a handler asks for. [`FromRecord`] turns one
//! record's payload into a type (`payload.rs`); [`FromBatch`] takes a value from a whole batch
//! (`batch.rs`). The macros pick them by the handler's argument types; hand-written processors
//! call them directly.

mod batch;
mod payload;

pub use batch::{FromBatch, MillisBehindLatest, ShardId};
pub use payload::{FromRecord, Json};
