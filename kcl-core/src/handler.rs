//! Building blocks of handler functions: batch-level extractors, handler return values, and the
//! per-record loop. `#[kcl::processor]` and `#[kcl::on_records]` generate calls to exactly these;
//! they can be used by hand in a [`RecordProcessor`](crate::RecordProcessor) too.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::checkpoint::Checkpointer;
use crate::error::{Error, Result};
use crate::payload::{FromRecord, PayloadError};
use crate::record::{Batch, Record};

/// A value taken from a whole batch, once per `processRecords`.
///
/// Implemented for `Vec<T>` where `T: FromRecord` (every record decoded as `T`; the first
/// failure fails the batch unless `T` is `Result<_, PayloadError>`), `&Batch`, `&[Record]`,
/// [`ShardId`] and [`MillisBehindLatest`].
///
/// ```
/// use kcl_core::{Batch, FromBatch, Json, MillisBehindLatest, Position, Record, ShardId};
/// let batch = Batch::new("shardId-7", vec![Record::new("[1,2]", "k", Position::new("1", 0))], Some(40));
/// let values: Vec<Json<Vec<u8>>> = FromBatch::from_batch(&batch).unwrap();
/// assert_eq!(values[0].0, [1, 2]);
/// assert_eq!(ShardId::from_batch(&batch).unwrap().as_str(), "shardId-7");
/// assert_eq!(MillisBehindLatest::from_batch(&batch).unwrap(), MillisBehindLatest(Some(40)));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be taken from a batch of Kinesis records",
    label = "not a batch extractor",
    note = "batch arguments are `Vec<T>` with T one of `kcl::Json<U>`, `String`, `Vec<u8>`, `kcl::Record`, `Result<T, kcl::PayloadError>`, a pair `(kcl::Record, T)`; or `&kcl::Batch`, `&[kcl::Record]`, `kcl::ShardId`, `kcl::MillisBehindLatest`"
)]
pub trait FromBatch<'a>: Sized {
    /// Extracts the value from `batch`.
    fn from_batch(batch: &'a Batch) -> Result<Self, PayloadError>;
}

impl<'a, T: FromRecord> FromBatch<'a> for Vec<T> {
    fn from_batch(batch: &'a Batch) -> Result<Self, PayloadError> {
        batch.extract()
    }
}

impl<'a> FromBatch<'a> for &'a Batch {
    fn from_batch(batch: &'a Batch) -> Result<Self, PayloadError> {
        Ok(batch)
    }
}

impl<'a> FromBatch<'a> for &'a [Record] {
    fn from_batch(batch: &'a Batch) -> Result<Self, PayloadError> {
        Ok(batch.records())
    }
}

/// The id of the shard a batch came from, as a handler argument.
///
/// ```
/// let id = kcl_core::ShardId::from("shardId-000000000003");
/// assert_eq!(id.as_str(), "shardId-000000000003");
/// assert_eq!(id.to_string(), "shardId-000000000003");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ShardId(Arc<str>);

impl ShardId {
    /// The shard id.
    ///
    /// ```
    /// assert_eq!(kcl_core::ShardId::from("s").as_str(), "s");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ShardId {
    fn from(id: &str) -> Self {
        ShardId(Arc::from(id))
    }
}

impl std::fmt::Display for ShardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'a> FromBatch<'a> for ShardId {
    fn from_batch(batch: &'a Batch) -> Result<Self, PayloadError> {
        Ok(ShardId(batch.shard_id_arc()))
    }
}

/// How far behind the tip of the stream a batch is (milliseconds), if the daemon knows.
///
/// ```
/// use kcl_core::{Batch, FromBatch, MillisBehindLatest};
/// let lag = MillisBehindLatest::from_batch(&Batch::new("s", vec![], None)).unwrap();
/// assert_eq!(lag, MillisBehindLatest(None));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MillisBehindLatest(pub Option<u64>);

impl<'a> FromBatch<'a> for MillisBehindLatest {
    fn from_batch(batch: &'a Batch) -> Result<Self, PayloadError> {
        Ok(MillisBehindLatest(batch.millis_behind_latest()))
    }
}

/// A handler's answer about checkpointing.
///
/// ```
/// use kcl_core::{Checkpoint, HandlerOutput};
/// assert!(matches!(Checkpoint::Now.into_result(), Ok(Checkpoint::Now)));
/// assert!(matches!(().into_result(), Ok(Checkpoint::Later)));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Checkpoint {
    /// Checkpoint what was handled now, whatever the strategy.
    Now,
    /// Leave it to the configured [`CheckpointStrategy`](crate::CheckpointStrategy).
    #[default]
    Later,
}

/// What a handler may return: `()`, [`Checkpoint`], or `Result<T, E>` of those with an error
/// that converts into [`kcl::Error`](crate::Error).
///
/// ```
/// use kcl_core::{Checkpoint, HandlerOutput};
/// let failed: Result<(), std::io::Error> = Err(std::io::Error::other("disk full"));
/// assert_eq!(failed.into_result().unwrap_err().to_string(), "disk full");
/// let ok: Result<Checkpoint, std::io::Error> = Ok(Checkpoint::Now);
/// assert!(matches!(ok.into_result(), Ok(Checkpoint::Now)));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a valid return type for a kcl handler",
    label = "handlers return `()`, `kcl::Checkpoint`, or `Result<_, E>` of those",
    note = "return `kcl::Result<()>` (or any `Result<(), E>` where `E: std::error::Error + Send + Sync + 'static`), `()`, or `kcl::Checkpoint::Now` to ask for a checkpoint"
)]
pub trait HandlerOutput {
    /// The handler's verdict.
    fn into_result(self) -> Result<Checkpoint>;
}

impl HandlerOutput for () {
    fn into_result(self) -> Result<Checkpoint> {
        Ok(Checkpoint::Later)
    }
}

impl HandlerOutput for Checkpoint {
    fn into_result(self) -> Result<Checkpoint> {
        Ok(self)
    }
}

impl<T: HandlerOutput, E: Into<Error>> HandlerOutput for Result<T, E> {
    fn into_result(self) -> Result<Checkpoint> {
        self.map_err(Into::into)
            .and_then(HandlerOutput::into_result)
    }
}

/// Applies a batch handler's output: an error fails the batch, [`Checkpoint::Now`] asks the
/// runtime for a checkpoint of the batch.
///
/// ```
/// use kcl_core::{handler::finish_batch, testing::TestDaemon, Checkpoint, CheckpointStrategy};
/// let processor = kcl_core::from_fn(|_, cp| finish_batch(cp, Checkpoint::Now));
/// let mut daemon = TestDaemon::with_strategy(processor, CheckpointStrategy::Manual);
/// daemon.initialize("shardId-000000000000");
/// assert_eq!(daemon.process_payloads(["a"]).checkpoints.len(), 1);
/// ```
pub fn finish_batch(checkpointer: &mut Checkpointer<'_>, output: impl HandlerOutput) -> Result<()> {
    if output.into_result()? == Checkpoint::Now {
        checkpointer.request_checkpoint();
    }
    Ok(())
}

/// Calls `handler` once per record, in order, with the record's payload extracted as `T`.
///
/// A payload that does not decode, an error or a panic at record *k* stops the loop: the error
/// names record *k* ([`Error::at_record`]), so records before it count as handled. A handler
/// returning [`Checkpoint::Now`] checkpoints at its record at once (a failure of that checkpoint
/// is logged and the loop goes on).
///
/// ```
/// use kcl_core::{handler::for_each_record, testing::{StoredCheckpoint, TestDaemon}, Checkpoint};
/// let processor = kcl_core::from_fn(|batch, cp| {
///     for_each_record(batch, cp, |text: String, _cp| {
///         if text == "poison" { Err(kcl_core::Error::msg("cannot handle poison")) } else { Ok(()) }
///     })
/// });
/// let mut daemon = TestDaemon::new(processor);
/// daemon.initialize("shardId-000000000000");
/// let (a, poison, c) = (daemon.next_record("a"), daemon.next_record("poison"), daemon.next_record("c"));
/// daemon.process_records(vec![a.clone(), poison, c], None);
/// assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::At(a.position().clone())));
/// ```
pub fn for_each_record<T, O, F>(
    batch: &Batch,
    checkpointer: &mut Checkpointer<'_>,
    mut handler: F,
) -> Result<()>
where
    T: FromRecord,
    O: HandlerOutput,
    F: FnMut(T, &mut Checkpointer<'_>) -> O,
{
    for record in batch {
        let position = record.position();
        let payload =
            T::from_record(record).map_err(|e| Error::new(e).at_record(position.clone()))?;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            handler(payload, &mut *checkpointer).into_result()
        }));
        match outcome {
            Ok(Ok(Checkpoint::Later)) => {}
            Ok(Ok(Checkpoint::Now)) => {
                if let Err(error) = checkpointer.checkpoint_at(record) {
                    tracing::warn!("checkpoint at {position} asked by the handler failed: {error}");
                }
            }
            Ok(Err(error)) => return Err(error.at_record(position.clone())),
            Err(panic) => {
                let message = crate::guard::panic_message(&*panic);
                return Err(Error::msg(format!("panicked: {message}")).at_record(position.clone()));
            }
        }
    }
    Ok(())
}

/// Runs an `async` hook to completion on this thread's current-thread tokio runtime (created on
/// first use, with time and I/O enabled). Tasks the hook spawns run while hooks are running.
///
/// ```
/// let answer = kcl_core::handler::block_on(async { 6 * 7 });
/// assert_eq!(answer, 42);
/// ```
#[cfg(feature = "tokio")]
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread tokio runtime can be built");
    }
    RUNTIME.with(|runtime| runtime.block_on(future))
}

/// Makes `Record` pairs extractable: `(Record, T)` gives the record next to its decoded payload.
impl<T: FromRecord> FromRecord for (Record, T) {
    fn from_record(record: &Record) -> Result<Self, PayloadError> {
        Ok((record.clone(), T::from_record(record)?))
    }
}
