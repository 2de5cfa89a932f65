//! The protocol engine of the `kcl` SDK: a child process of the Amazon KCL MultiLangDaemon.
//!
//! The daemon owns leases, reads shards and balances a fleet; for each shard lease it starts one
//! child process and talks JSON lines with it over stdin/stdout. This crate is that child's
//! engine: [wire types](message), [records](Record) and [payload extractors](FromRecord), the
//! [`Checkpointer`], the [`RecordProcessor`] trait and the [runtime loop](run), plus an
//! in-process [test daemon](testing). Users normally depend on the `kcl` facade crate.
//!
//! ```no_run
//! use kcl_core::{Batch, Checkpointer, RecordProcessor, Result};
//!
//! struct Echo;
//!
//! impl RecordProcessor for Echo {
//!     fn process_records(&mut self, batch: &Batch, checkpointer: &mut Checkpointer<'_>) -> Result<()> {
//!         for text in batch.extract::<String>()? {
//!             tracing::info!(%text, "record");
//!         }
//!         if let Some(last) = batch.last() {
//!             checkpointer.checkpoint_at(last)?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     kcl_core::run(Echo)
//! }
//! ```
#![warn(missing_docs, unreachable_pub)]

mod checkpoint;
mod child;
mod deadline;
pub mod engine;
mod error;
mod extract;
mod failure;
mod guard;
pub mod handler;
mod logging;
// `fcntl(F_SETPIPE_SZ)` on the daemon's pipe.
#[cfg(unix)]
#[allow(unsafe_code)]
mod pipe_size;
mod processor;
// Partition keys read from the batch buffer, validated as UTF-8 when the batch is built.
#[allow(unsafe_code)]
mod record;
mod runtime;
// Builds records over the line it checked (`Record::in_buffer`, an `unsafe fn`).
#[allow(unsafe_code)]
mod scan;
// Signal handlers, `poll(2)` and `_exit(2)` through libc.
#[allow(unsafe_code)]
mod signals;
// Moving descriptors 0 and 1 (`fcntl(2)`, `dup2(2)`).
#[allow(unsafe_code)]
mod stdio;
mod strategy;
pub mod testing;
mod transport;

/// Internals for the fuzz targets and tests (the `scan_vs_serde` differential check). Not API:
/// no stability promise, may change in any release.
#[doc(hidden)]
pub mod __not_api {
    pub use crate::scan::differential::{Outcome, check, fast_path, serde_path};
}

pub use checkpoint::{CheckpointError, Checkpointer, RetryPolicy, Stall};
pub use child::prepare;
pub use deadline::{DEADLINE_EXIT_CODE, DeadlineAction, HookDeadline};
pub use error::{Error, Result};
pub use extract::{FromBatch, FromRecord, Json, MillisBehindLatest, ShardId};
pub use failure::{Failure, FailureAction, FailurePolicy, PolicyExit};
pub use handler::{Checkpoint, HandlerOutput};
pub use kcl_protocol::message;
pub use kcl_protocol::message::Initialize;
pub use kcl_protocol::{DaemonError, Position, SequenceNumber, StartingPosition};
pub use logging::init as init_logging;
pub use processor::{FnProcessor, RecordProcessor, from_fn};
pub use record::{Batch, PayloadError, PayloadErrorKind, Record};
pub use runtime::{Runtime, run, run_main, run_main_with};
pub use signals::{DEFAULT_SIGNAL_GRACE, SECOND_INTERRUPT_EXIT_CODE, SIGNAL_GRACE_ENV};
pub use strategy::CheckpointStrategy;
