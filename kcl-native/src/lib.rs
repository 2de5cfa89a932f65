//! A Java-free engine for `kcl` record processors, on the Java KCL 3.x lease table.
//!
//! The engine runs the same [`kcl_core::RecordProcessor`] code as the MultiLangDaemon child
//! runtime, reading Kinesis itself and keeping leases compatible with Java workers. This crate
//! holds, so far, the reading side, the lease coordinator of a KCL 3.x follower, and the worker
//! that runs a processor per lease:
//!
//! - [`run()`] / [`run_blocking`] (feature `aws`): a worker on DynamoDB and Kinesis from a
//!   [`NativeConfig`](config::NativeConfig) ([`load_config`] reads the daemon's properties
//!   file), until SIGINT or SIGTERM; [`run_with`] on any lease store and Kinesis reader.
//! - [`supervisor`]: the [`Supervisor`] — the coordinator plus one shard worker per held lease
//!   (the processor on its own OS thread; parent blocking, shard end with the child leases,
//!   lease lost, graceful handoff), the graceful stop ([`Stopper`]) and [`RunError`].
//! - [`factory`]: [`ShardFactory`], how each shard's processor and its `Runtime` settings are
//!   built ([`ShardInfo`], [`processors`]); [`ShardHandlers`], what every shard worker runs
//!   (a factory's processors, or [`multilang`]'s child processes).
//! - [`config`]: [`NativeConfig`](config::NativeConfig), from the MultiLangDaemon's own
//!   properties file (read as the daemon reads it, through `kcl-properties`) or a builder, with
//!   the Java KCL 3.1.3 defaults.
//! - [`kinesis`]: the calls a consumer makes to Kinesis (`ListShards` with a shard filter and
//!   paging, `GetShardIterator`, `GetRecords`) as the trait [`KinesisReader`], every failure
//!   classified once into a [`ReadError`].
//! - [`start`]: where reading a shard starts from its lease's checkpoint, and which records the
//!   checkpoint already covers (resuming inside a KPL aggregate).
//! - [`fetcher`]: [`ShardFetcher`], which polls one shard and hands out what the Java KCL
//!   3.1.3 delivers: de-aggregated within the shard's hash range, filtered past the checkpoint,
//!   paced, with backoff on throttling, new iterators on expiry, and the child shards at the
//!   shard's end. Each batch becomes the engine's `Event::Records`.
//! - [`coordinator`]: the [`Coordinator`] of a worker over a [`kcl_lease::LeaseStore`] — a KCL
//!   3.x follower (renewals, lease discovery, the worker-metrics row, graceful handoff, eviction
//!   at shutdown), a leader (also the `Leader` lock, lease assignment and shard sync) or a 2.x
//!   lease taker, picked from the table's client version — handing each held lease to its shard
//!   worker as a [`LeaseHandle`], with a blocking [`LeaseDriver`] that judges and writes
//!   checkpoints.
//! - [`multilang`]: a Java-free MultiLangDaemon: [`ChildProcesses`](multilang::ChildProcesses)
//!   runs the daemon's `executableName` per lease and speaks its protocol, so children in any
//!   language run on this engine unchanged.
//! - [`testing`]: [`MemoryKinesis`](testing::MemoryKinesis), the read side of the project's
//!   fake Kinesis, with expiring iterators and injectable faults.
//! - [`sdk`] (feature `aws`, on by default): the AWS SDK's client as a [`KinesisReader`].
//!
//! ```
//! use kcl_native::{FetcherConfig, Fetched, ShardFetcher};
//! use kcl_native::testing::MemoryKinesis;
//! use kcl_producer::api::{KinesisApi, Record, StreamRef};
//! use kcl_protocol::ExtendedSequenceNumber;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let kinesis = MemoryKinesis::new("orders", 1);
//! let stream = StreamRef::name("orders");
//! kinesis.fake().put_records(&stream, &[Record::new("k", "a"), Record::new("k", "b")]).await.unwrap();
//! let first = kinesis.fake().records("shardId-000000000000")[0].sequence_number.clone();
//! kinesis.fake().split("shardId-000000000000");
//!
//! // Resume after a checkpoint at the first record: only the second is delivered.
//! let mut fetcher = ShardFetcher::new(
//!     kinesis.clone(), stream, "shardId-000000000000", kcl_kpl::HashKeyRange::ALL,
//!     &ExtendedSequenceNumber::new(first, 0), FetcherConfig::default(),
//! ).unwrap();
//! let Fetched::Records(batch) = fetcher.next().await.unwrap() else { panic!() };
//! assert_eq!(batch.records.len(), 1);
//! assert_eq!(batch.records[0].data(), b"b");
//! let Fetched::ShardEnd { children } = fetcher.next().await.unwrap() else { panic!() };
//! assert_eq!(children.len(), 2);
//! # });
//! ```
#![warn(missing_docs, unreachable_pub)]

mod backoff;
mod cleanup;
pub mod config;
pub mod coordinator;
pub mod factory;
pub mod fetcher;
pub mod kinesis;
pub mod metrics;
pub mod multilang;
pub mod run;
#[cfg(feature = "aws")]
pub mod sdk;
mod shard_worker;
pub mod start;
pub mod supervisor;
pub mod testing;

pub use backoff::Backoff;
pub use coordinator::{Coordinator, CoordinatorConfig, LeaseDriver, LeaseEvent, LeaseHandle};
pub use factory::{ShardFactory, ShardHandler, ShardHandlers, ShardInfo, processors};
pub use fetcher::{
    ConfigError, FetchError, Fetched, FetchedBatch, FetcherConfig, FetcherStats, ShardFetcher,
};
pub use kinesis::{KinesisReader, ReadError};
pub use run::{load_config, run_with};
#[cfg(feature = "aws")]
pub use run::{run, run_blocking, run_with_metrics};
pub use supervisor::{RunError, Stopper, Supervisor, coordinator_config};
