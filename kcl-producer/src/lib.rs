//! A Kinesis producer that accounts for every record (in progress: see the README's producer
//! section for what has landed).
//!
//! - [`api`]: the calls a producer makes to Kinesis, as the trait [`KinesisApi`] with typed
//!   outcomes, so that the AWS SDK client and the fake are interchangeable, and so that every
//!   failure is classified once: refused (nothing written), throttled (nothing written, retry
//!   later), or ambiguous (the records may or may not be in the stream).
//! - [`limits`]: the stream's write limits and the validation of a record against them, before
//!   anything is sent (one invalid entry fails a whole PutRecords call).
//! - [`testing`]: [`FakeKinesis`](testing::FakeKinesis), an in-process Kinesis with shards,
//!   per-shard write limits and injectable faults, deterministic under a seed.
//!
//! ```
//! use kcl_producer::api::{Entry, EntryOutcome, KinesisApi, StreamRef};
//! use kcl_producer::testing::FakeKinesis;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let kinesis = FakeKinesis::new("orders", 2);
//! let stream = StreamRef::name("orders");
//! let outcomes = kinesis.put_records(&stream, &[Entry::new("user-1", "hello")]).await.unwrap();
//! let EntryOutcome::Stored { shard_id, .. } = &outcomes[0] else { panic!("{outcomes:?}") };
//! assert_eq!(kinesis.records(shard_id).len(), 1);
//! # });
//! ```
#![warn(missing_docs, unreachable_pub)]

pub mod api;
pub mod limits;
pub mod testing;

pub use api::KinesisApi;
