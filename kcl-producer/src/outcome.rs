//! What becomes of a record: delivered, or failed with the record handed back. Every record the
//! producer accepts gets exactly one of the two, through its [`Ticket`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use crate::api::{CallError, Record};
use crate::limits::Invalid;

/// Where a record was stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The shard that holds it.
    pub shard_id: String,
    /// Its sequence number (with aggregation, the aggregate's, shared by its records).
    pub sequence_number: String,
    /// Its index inside the KPL aggregate that carried it (`None`: it was sent alone). A KCL
    /// consumer sees it with this sub-sequence number.
    pub sub_sequence_number: Option<u32>,
    /// Attempts it took (1 when the first call stored it).
    pub attempts: u32,
    /// Whether an earlier attempt had an unknown outcome, so the stream may hold the record
    /// twice (with two sequence numbers; consumers see both).
    pub maybe_duplicated: bool,
}

/// A record the producer gave up on, handed back with the reason.
#[derive(Debug)]
pub struct Failed {
    /// The record, unchanged.
    pub record: Record,
    /// Why it was not delivered.
    pub reason: FailReason,
    /// Calls that carried it.
    pub attempts: u32,
    /// Whether one of those calls had an unknown outcome, so the record may be in the stream
    /// after all.
    pub maybe_stored: bool,
}

/// Why a record was not delivered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FailReason {
    /// Kinesis refused the call that carried it, for a reason retrying cannot fix.
    #[error("refused by Kinesis: {0}")]
    Refused(CallError),
    /// It was still failing when its time to live ran out.
    #[error("its time to live ran out; last error: {last_error}")]
    Expired {
        /// The last error it got.
        last_error: String,
    },
    /// It was still failing after the most attempts allowed.
    #[error("still failing after {attempts} attempt(s); last error: {last_error}")]
    Attempts {
        /// The attempts made.
        attempts: u32,
        /// The last error it got.
        last_error: String,
    },
    /// The producer shut down before it was sent (or before it was sent again).
    #[error("not sent before the producer's shutdown deadline")]
    Unsent,
    /// The producer shut down while a call carrying it was unanswered: it may be in the stream.
    #[error("a call carrying it was unanswered at the producer's shutdown deadline")]
    InDoubt,
    /// The producer shut down before it was delivered, and it stays in the disk spool: the next
    /// producer built on the same spool directory sends it (its ticket is this one).
    #[error(
        "not delivered before the producer's shutdown deadline; kept in the spool for the next producer"
    )]
    Spooled,
    /// The producer's task ended without handling it (a bug or a dropped runtime).
    #[error("the producer's task ended without handling it")]
    Abandoned,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "record with partition key {:?} ({} bytes) failed after {} attempt(s): {}",
            self.record.partition_key,
            self.record.data.len(),
            self.attempts,
            self.reason
        )
    }
}

impl std::error::Error for Failed {}

/// The outcome of one record, to await.
///
/// ```
/// use kcl_producer::{Producer, Record};
/// use kcl_producer::api::StreamRef;
/// use kcl_producer::testing::FakeKinesis;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let producer = Producer::builder(FakeKinesis::new("s", 1), StreamRef::name("s")).build().await.unwrap();
/// let ticket = producer.send(Record::new("k", "hello")).await.unwrap();
/// let delivery = ticket.await.unwrap();
/// assert_eq!(delivery.shard_id, "shardId-000000000000");
/// # });
/// ```
#[must_use = "a ticket is the only way to learn whether the record was delivered"]
#[derive(Debug)]
pub struct Ticket {
    pub(crate) receiver: oneshot::Receiver<Result<Delivery, Failed>>,
}

impl Future for Ticket {
    type Output = Result<Delivery, Failed>;

    // The error hands the record back whole, by design; it is built once per failed record.
    #[allow(clippy::result_large_err)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.receiver).poll(cx).map(|answer| {
            // The sender is a `Pending` record, which answers in its `Drop` if nothing else did.
            answer.expect("every pending record answers its ticket before it is dropped")
        })
    }
}

/// Why [`Producer::send`](crate::Producer::send) did not take a record (it is handed back).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The record breaks the stream's limits; sent, it would fail a whole call.
    #[error("invalid record: {1}")]
    Invalid(Record, Invalid),
    /// The producer is shutting down.
    #[error("the producer is shut down")]
    Closed(Record),
    /// The record could not be written to the disk spool (the spool takes no more records).
    #[error("cannot write the record to the spool: {1}")]
    Spool(Record, std::io::Error),
}

/// Why [`Producer::try_send`](crate::Producer::try_send) did not take a record (it is handed
/// back).
#[derive(Debug, thiserror::Error)]
pub enum TrySendError {
    /// The record breaks the stream's limits.
    #[error("invalid record: {1}")]
    Invalid(Record, Invalid),
    /// The producer is shutting down.
    #[error("the producer is shut down")]
    Closed(Record),
    /// The record could not be written to the disk spool (the spool takes no more records).
    #[error("cannot write the record to the spool: {1}")]
    Spool(Record, std::io::Error),
    /// The buffer (or the spool's disk budget) is full: try later, or use `send`, which waits.
    #[error("the producer's buffer is full")]
    Full(Record),
}

/// What a shutdown left behind: nothing is dropped without being counted here.
#[derive(Debug, Default)]
pub struct ShutdownReport {
    /// Records delivered over the producer's life.
    pub delivered: u64,
    /// Records that failed during the shutdown (earlier failures went to their tickets).
    pub failed: Vec<Failed>,
    /// Records never sent, or waiting to be sent again, at the deadline.
    pub unsent: Vec<Record>,
    /// Records in a call unanswered at the deadline: they may be in the stream.
    pub in_doubt: Vec<Record>,
    /// With a disk spool: records not delivered at the deadline (never sent, waiting to be sent
    /// again, or in an unanswered call), kept in the spool for the next producer on the same
    /// directory instead of being listed in `unsent` and `in_doubt`.
    pub spooled: u64,
}

impl ShutdownReport {
    /// Whether every record was delivered.
    ///
    /// ```
    /// assert!(kcl_producer::ShutdownReport::default().is_complete());
    /// ```
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
            && self.unsent.is_empty()
            && self.in_doubt.is_empty()
            && self.spooled == 0
    }
}
