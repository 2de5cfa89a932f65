//! # kcl: Amazon Kinesis record processors in Rust, for the KCL MultiLangDaemon
//!
//! The Java KCL's MultiLangDaemon owns the leases (DynamoDB), reads the shards and balances a
//! fleet; for every shard lease it starts your binary as a child process and talks JSON lines with
//! it over stdin/stdout. This crate makes that binary: implement [`RecordProcessor`] (or hand a
//! closure to [`from_fn`]) and call [`run`].
//!
//! ```no_run
//! use kcl::{Batch, Checkpointer, Json, RecordProcessor, Result};
//!
//! #[derive(serde::Deserialize)]
//! struct Click { user: String }
//!
//! #[derive(Default)]
//! struct Clicks { seen: u64 }
//!
//! impl RecordProcessor for Clicks {
//!     fn process_records(&mut self, batch: &Batch, checkpointer: &mut Checkpointer<'_>) -> Result<()> {
//!         for Json(click) in batch.extract::<Json<Click>>()? {
//!             self.seen += 1;
//!             tracing::info!(user = %click.user, total = self.seen, "click");
//!         }
//!         if let Some(last) = batch.last() {
//!             checkpointer.checkpoint_at(last)?; // sequence + sub-sequence number
//!         }
//!         Ok(())
//!     }
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     kcl::run(Clicks::default())
//! }
//! ```
//!
//! Stdout belongs to the daemon: [`run`] moves the real stdout to a private handle, so `println!`
//! anywhere in the process lands on stderr. Logs go to stderr through `tracing`, tagged with the
//! shard id. Test processors in-process with [`testing::TestDaemon`].
#![warn(missing_docs)]

pub use kcl_macros::{
    main, on_initialize, on_lease_lost, on_records, on_shard_ended, on_shutdown_requested,
    processor,
};

pub use kcl_core::{
    from_fn, handler, init_logging, message, run, run_main, testing, Batch, Checkpoint,
    CheckpointError, CheckpointStrategy, Checkpointer, Error, FnProcessor, FromBatch, FromRecord,
    HandlerOutput, Initialize, Json, MillisBehindLatest, PayloadError, PayloadErrorKind, Position,
    Record, RecordProcessor, Result, RetryPolicy, Runtime, SequenceNumber, ShardId, Stall,
    StartingPosition,
};

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
