//! A Kinesis producer that accounts for every record.
//!
//! [`Producer`] takes records (`send` waits for room, `try_send` hands a record back when the
//! buffer is full), checks each against the stream's limits, packs them into `PutRecords` calls
//! within those limits (500 entries, 5 MiB, a linger of 100 ms), sends failed entries again with
//! jittered exponential backoff, and answers every record it took exactly once, through its
//! [`Ticket`]: delivered (shard, sequence number, attempts, whether it may be stored twice), or
//! failed with the record handed back. `flush` waits for what was taken before it;
//! `shutdown(deadline)` reports what was delivered, what failed, what was never sent and what
//! was in a call left unanswered.
//!
//! - [`api`]: the calls a producer makes to Kinesis, as the trait [`KinesisApi`] with typed
//!   outcomes, so that the AWS SDK client and the fake are interchangeable, and so that every
//!   failure is classified once: refused (nothing written), throttled (nothing written, retry
//!   later), ambiguous (the records may or may not be in the stream), or never sent.
//! - [`limits`]: the stream's write limits and the validation of a record against them, before
//!   anything is sent (one invalid entry fails a whole PutRecords call).
//! - [`testing`]: [`FakeKinesis`](testing::FakeKinesis), an in-process Kinesis with shards,
//!   per-shard write limits and injectable faults, deterministic under a seed.
//!
//! - [`aws`] (feature `aws`, on by default): the AWS SDK's client as a [`KinesisApi`].
//! - [`blocking`]: the same producer for code that does not run async, on a thread of its own.
//!
//! Options: [`Aggregation::SameKey`] packs records that share their keys into KPL aggregates,
//! [`Aggregation::ShardMap`] records bound for the same shard (each stored aggregate verified
//! against the shard Kinesis put it on); [`Builder::ordered`] stores the records of each
//! partition key in the order they were taken; [`Builder::rate_limit`] paces each shard to its
//! write limit, slower when it throttles anyway; [`Builder::metrics`] sends KPL-named metrics
//! to a [`metrics::MetricsSink`].
//!
//! [`Builder::spool`] appends every record taken to a disk spool before its ticket is returned,
//! so that a producer built on the same directory after a `kill -9` sends what the killed one
//! had not delivered ([`Producer::recovered`]).
//!
//! ```
//! use kcl_producer::api::{Record, EntryOutcome, KinesisApi, StreamRef};
//! use kcl_producer::testing::FakeKinesis;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let kinesis = FakeKinesis::new("orders", 2);
//! let stream = StreamRef::name("orders");
//! let outcomes = kinesis.put_records(&stream, &[Record::new("user-1", "hello")]).await.unwrap();
//! let EntryOutcome::Stored { shard_id, .. } = &outcomes[0] else { panic!("{outcomes:?}") };
//! assert_eq!(kinesis.records(shard_id).len(), 1);
//! # });
//! ```
#![warn(missing_docs, unreachable_pub)]

pub mod api;
#[cfg(feature = "aws")]
pub mod aws;
pub mod blocking;
mod config;
mod dispatch;
mod lanes;
pub mod limits;
pub mod metrics;
mod outcome;
mod pack;
mod producer;
mod rates;
mod shard_map;
mod spool;
pub mod testing;

pub use api::{KinesisApi, Record};
pub use config::Config;
pub use dispatch::StatsSnapshot;
pub use outcome::{Delivery, FailReason, Failed, SendError, ShutdownReport, Ticket, TrySendError};
pub use pack::Aggregation;
pub use producer::{BuildError, Builder, Producer};
pub use rates::ShardRate;
pub use spool::{Fsync, SpoolConfig};
