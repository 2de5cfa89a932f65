//! # kcl: Amazon Kinesis record processors in Rust, for the KCL MultiLangDaemon
//!
//! The Java KCL's MultiLangDaemon owns the leases (DynamoDB), reads the shards and balances a
//! fleet; for every shard lease it starts your binary as a child process and talks JSON lines with
//! it over stdin/stdout. This crate makes that binary: mark a handler (or an impl block) with the
//! attribute macros, or implement [`RecordProcessor`] by hand, and run it.
//!
//! ```no_run
//! #[derive(serde::Deserialize)]
//! struct Click { user: String }
//!
//! /// Called once per record; `Handle` (generated) is the processor that calls it.
//! #[kcl::on_records]
//! fn handle(click: kcl::Json<Click>, shard: kcl::ShardId) -> kcl::Result<()> {
//!     tracing::info!(%shard, user = %click.user, "click");
//!     Ok(())
//! }
//!
//! #[kcl::main(checkpoint = every(records = 1000, seconds = 30))]
//! fn main() -> impl kcl::RecordProcessor {
//!     Handle
//! }
//! ```
//!
//! The same without macros:
//!
//! ```no_run
//! use kcl::{Batch, Checkpointer, Json, RecordProcessor, Result};
//!
//! #[derive(serde::Deserialize)]
//! struct Click { user: String }
//!
//! struct Clicks;
//!
//! impl RecordProcessor for Clicks {
//!     fn process_records(&mut self, batch: &Batch, checkpointer: &mut Checkpointer<'_>) -> Result<()> {
//!         kcl::handler::for_each_record(batch, checkpointer, |click: Json<Click>, _| {
//!             tracing::info!(user = %click.user, "click");
//!         })
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let strategy = kcl::CheckpointStrategy::every(1000, std::time::Duration::from_secs(30));
//!     kcl::Runtime::new(Clicks).checkpoint_strategy(strategy).run_main()
//! }
//! ```
//!
//! Without Java: [`app::run`] (what `#[kcl::main]` expands to) also runs the same processor on
//! the native engine when the binary is started as `my-app native app.properties` (feature
//! `native`); without arguments it is the daemon's child.
//!
//! Stdout belongs to the daemon: [`run`] moves the real stdout to a private handle, so `println!`
//! anywhere in the process lands on stderr. Logs go to stderr through `tracing`, tagged with the
//! shard id. Test processors in-process with [`testing::TestDaemon`].
#![warn(missing_docs, unreachable_pub)]

pub use kcl_macros::{
    main, on_failure, on_initialize, on_lease_lost, on_records, on_shard_ended,
    on_shutdown_requested, processor,
};

pub use kcl_core::{
    Batch, Checkpoint, CheckpointError, CheckpointStrategy, Checkpointer, DEADLINE_EXIT_CODE,
    DEFAULT_SIGNAL_GRACE, DaemonError, DeadlineAction, Error, Failure, FailureAction,
    FailurePolicy, FnProcessor, FromBatch, FromRecord, HandlerOutput, HookDeadline, Initialize,
    Json, MillisBehindLatest, PayloadError, PayloadErrorKind, PolicyExit, Position, Record,
    RecordProcessor, Result, RetryPolicy, Runtime, SECOND_INTERRUPT_EXIT_CODE, SIGNAL_GRACE_ENV,
    SequenceNumber, ShardId, Stall, StartingPosition, engine, from_fn, handler, init_logging,
    message, prepare, run, run_main, run_main_with, testing,
};

pub mod app;

/// The batching producer (feature `producer`): the crate `kcl-producer`, re-exported.
///
/// ```
/// # #[cfg(feature = "producer")] {
/// use kcl::producer::{Producer, Record, api::StreamRef, testing::FakeKinesis};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let kinesis = FakeKinesis::new("orders", 2);
/// let producer = Producer::builder(kinesis.clone(), StreamRef::name("orders")).build().await.unwrap();
/// let ticket = producer.send(Record::new("user-1", "hello")).await.unwrap();
/// let delivery = ticket.await.unwrap();
/// assert_eq!(kinesis.records(&delivery.shard_id).len(), 1);
/// # });
/// # }
/// ```
#[cfg(feature = "producer")]
pub use kcl_producer as producer;

/// The KPL aggregation codec (feature `producer`): the crate `kcl-kpl`, re-exported.
#[cfg(feature = "producer")]
pub use kcl_kpl as kpl;

/// The Java-free engine (feature `native`, under way): the crate `kcl-native`, re-exported.
/// It runs the same [`RecordProcessor`]s, with the same [`Runtime`] settings, without the
/// MultiLangDaemon: leases in the Java KCL 3.x lease table, Kinesis read by polling, one OS
/// thread per shard. [`app::run`] runs a `#[kcl::main]` binary on it (`my-app native FILE`).
///
/// ```no_run
/// use kcl::native::{ShardInfo, load_config, run_blocking};
///
/// fn main() -> Result<(), kcl::native::RunError> {
///     let config = load_config("app.properties")?; // the daemon's own file
///     run_blocking(config, |_: &ShardInfo| {
///         kcl::Runtime::new(kcl::from_fn(|batch, _| {
///             tracing::info!(records = batch.len(), "batch");
///             Ok(())
///         }))
///     })
/// }
/// ```
#[cfg(feature = "native")]
pub use kcl_native as native;

/// What the attribute macros' expansions call, and nothing else: not public API, no stability
/// promise. Hand-written code uses the documented items (`kcl::handler::finish_batch`, ...),
/// which these are.
#[doc(hidden)]
pub mod __private {
    pub use crate::app::run as app_run;
    #[cfg(feature = "tokio")]
    pub use kcl_core::handler::block_on;
    pub use kcl_core::handler::{finish_batch, for_each_record};
    pub use kcl_core::run_main_with;
}

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
