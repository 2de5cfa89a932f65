//! The KPL aggregated-record format: many user records in one Kinesis record, as the Kinesis
//! Producer Library writes them and the KCL reads them.
//!
//! An aggregate is `F3 89 9A C2` ([`MAGIC`]), a protobuf `AggregatedRecord` message (tables of
//! partition keys and explicit hash keys, then the records, each pointing into the tables), and
//! the MD5 digest of that message.
//!
//! - [`AggregateBuilder`]: user records in, an [`Aggregate`] out, the size known exactly before
//!   every push (magic, message and digest, plus the partition key Kinesis counts).
//! - [`decode`]: the [`UserRecord`]s of an aggregate that follows the format to the letter.
//! - [`kcl_view`]: exactly what the Java KCL 3.1.3 delivers for a Kinesis record, including its
//!   surprises: a corrupt aggregate is delivered as one opaque record, an aggregate with one
//!   user record outside the shard's hash key range is dropped whole, and an index past a table
//!   makes the KCL skip the whole batch.
//! - [`hash_key`], [`ExplicitHashKey`], [`HashKeyRange`]: where records land.
//!
//! No I/O, no async: pure functions of their input. The protobuf is read and written by hand
//! so that reading accepts and rejects exactly what the KCL's Java protobuf parser does.
//!
//! ```
//! use kcl_kpl::{AggregateBuilder, HashKeyRange, Outcome, decode, kcl_view};
//! let mut builder = AggregateBuilder::default();
//! for (key, data) in [("user-1", "a"), ("user-1", "b"), ("user-2", "c")] {
//!     builder.push(key, None, data.as_bytes()).unwrap();
//! }
//! let size = builder.kinesis_size();
//! let aggregate = builder.finish().unwrap();
//! assert_eq!(aggregate.data.len() + aggregate.partition_key.len(), size);
//! assert_eq!(decode(&aggregate.data).unwrap()[2].data, b"c");
//!
//! // Read from a shard that holds every key: all three, sub-sequence numbers 0, 1, 2.
//! let view = kcl_view(&aggregate.data, &aggregate.partition_key, HashKeyRange::ALL);
//! assert_eq!(view.outcome, Outcome::Deaggregated);
//! assert_eq!(view.records.len(), 3);
//! ```
#![warn(missing_docs, unreachable_pub)]

mod aggregate;
mod decode;
mod frame;
mod hash;
mod java;
mod kcl;
mod parse;
mod proto;

pub use aggregate::{Aggregate, AggregateBuilder, Full, KINESIS_MAX_RECORD_BYTES};
pub use decode::{DecodeError, Malformed, Tag, UserRecord, decode};
pub use frame::{MAGIC, NotAggregated};
pub use hash::{ExplicitHashKey, HashKeyRange, InvalidExplicitHashKey, hash_key};
pub use java::java_utf8_lossy;
pub use kcl::{BatchSkipped, Delivered, KclView, LoopError, Outcome, kcl_batch_view, kcl_view};
pub use proto::{ProtobufError, RequiredField};
