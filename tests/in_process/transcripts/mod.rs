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
