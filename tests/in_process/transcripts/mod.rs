//! In-process transcript tests: exact daemon lines in, exact child lines out.
//!
//! Each test writes the daemon's lines (`D>`) exactly as the Java MultiLangDaemon's Jackson
//! serializer would (compact, nulls written, record keys in the order `data`, `partitionKey`,
//! `sequenceNumber`, `approximateArrivalTimestamp`, `subSequenceNumber`, `action` last), feeds them
//! all at once to [`kcl::Runtime::run_on`], and compares the child's lines (`C<`) one by one as JSON
//! values (no extra key, no missing key, same order of lines). Because the child reads checkpoint
//! replies synchronously from the same input, a whole conversation, the daemon's checkpoint
//! replies included, can be written up front; the interleaving of `D>` and `C<` lines in the
//! scripts below is for the reader and mirrors `docs/protocol.md` §7.
//!
//! The processors under test checkpoint by themselves, so the runtime runs them with
//! `CheckpointStrategy::Manual` (the strategies have their own transcripts at the end).
//!
//! Sequence numbers have real length (56 digits). The ones written out in the scripts are
//! `seq(0)`, `seq(1)`, ... (see [`seq`]):
//!
//! ```text
//! seq(0) = 49590338271490256608559692538361571095921575989136588898
//! seq(1) = 49590338271490256608559692538361571095921575989136588899
//! seq(2) = 49590338271490256608559692538361571095921575989136588900
//! seq(3) = 49590338271490256608559692538361571095921575989136588901
//! seq(4) = 49590338271490256608559692538361571095921575989136588902
//! ```

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use kcl::message::WireRecord;
use kcl::{
    Batch, CheckpointError, CheckpointStrategy, Checkpointer, Initialize, Position,
    RecordProcessor, RetryPolicy, Runtime, StartingPosition,
};

use crate::byte_count::ByteCount;
use crate::support::transcript::*;
use crate::support::wire::*;
use crate::word_count::WordCount;

mod checkpoint;
mod failures;
mod harness;
mod lifecycle;
mod payloads;
mod shard_end;
mod strategies;

// The script lines that most transcripts share (`D>` the daemon's, `C<` the child's), written
// out once.

/// The daemon's `initialize` of shard 1 at `TRIM_HORIZON`.
const D_INITIALIZE: &str = r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#;

/// The child's status for `initialize`.
const C_INITIALIZED: &str = r#"C< {"action":"status","responseFor":"initialize"}"#;

/// A `processRecords` of one record `hello` (key `pk-1`) at `seq(0)`.
const D_HELLO: &str = r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#;

/// A `processRecords` of one record `a` (key `pk-1`) at `seq(0)`.
const D_A: &str = r#"D> {"action":"processRecords","records":[{"data":"YQ==","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#;

/// A `processRecords` with no record.
const D_EMPTY_BATCH: &str = r#"D> {"action":"processRecords","records":[],"millisBehindLatest":0}"#;

/// The child's status for `processRecords`.
const C_PROCESSED: &str = r#"C< {"action":"status","responseFor":"processRecords"}"#;

/// The child's checkpoint at `seq(0)`, sub-sequence 0.
const C_CHECKPOINT_SEQ0: &str = r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#;

/// The daemon's successful reply to a checkpoint at `seq(0)`.
const D_SEQ0_OK: &str = r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":null}"#;

/// The daemon's `ThrottlingException` reply to a checkpoint at `seq(0)`.
const D_SEQ0_THROTTLED: &str = r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":"ThrottlingException"}"#;

/// The child's checkpoint with no position (`null`).
const C_CHECKPOINT_NULL: &str =
    r#"C< {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#;

/// The daemon's successful reply to a `null` checkpoint.
const D_NULL_OK: &str =
    r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#;

/// The daemon's `leaseLost`.
const D_LEASE_LOST: &str = r#"D> {"action":"leaseLost"}"#;

/// The child's status for `leaseLost`.
const C_LEASE_LOST: &str = r#"C< {"action":"status","responseFor":"leaseLost"}"#;

/// The daemon's `shutdownRequested`.
const D_SHUTDOWN_REQUESTED: &str = r#"D> {"action":"shutdownRequested"}"#;

/// The child's status for `shutdownRequested`.
const C_SHUTDOWN_REQUESTED: &str = r#"C< {"action":"status","responseFor":"shutdownRequested"}"#;

/// The daemon's `shardEnded`.
const D_SHARD_ENDED: &str = r#"D> {"action":"shardEnded"}"#;

/// The child's status for `shardEnded`.
const C_SHARD_ENDED: &str = r#"C< {"action":"status","responseFor":"shardEnded"}"#;

/// A processor whose `shard_ended` forgets to checkpoint.
struct ForgetfulShardEnd;

impl RecordProcessor for ForgetfulShardEnd {
    fn process_records(&mut self, _: &Batch, _: &mut Checkpointer<'_>) -> kcl::Result<()> {
        Ok(())
    }
    fn shard_ended(&mut self, _: &mut Checkpointer<'_>) -> kcl::Result<()> {
        Ok(())
    }
}

/// What a handler saw of one record.
#[derive(Clone, Debug, PartialEq)]
struct SeenRecord {
    data: Vec<u8>,
    key: String,
    position: Position,
    arrival: Option<i64>,
}

/// A processor that records every record it is given and never checkpoints.
fn record_keeper() -> (impl RecordProcessor, Log<SeenRecord>) {
    let seen = log::<SeenRecord>();
    let handler_seen = seen.clone();
    let processor = kcl::from_fn(move |batch, _cp| {
        handler_seen
            .borrow_mut()
            .extend(batch.iter().map(|record| SeenRecord {
                data: record.data().to_vec(),
                key: record.partition_key().to_owned(),
                position: record.position().clone(),
                arrival: record.approximate_arrival_millis(),
            }));
        Ok(())
    });
    (processor, seen)
}
