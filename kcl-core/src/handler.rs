//! Building blocks of handler functions: handler return values and the per-record loop (the
//! batch extractors live in `extract/`, and are re-exported here). `#[kcl::processor]` and `#[kcl::on_records]` generate calls to exactly these;
//! they can be used by hand in a [`RecordProcessor`](crate::RecordProcessor) too.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::checkpoint::Checkpointer;
use crate::error::{Error, Result};
use crate::extract::FromRecord;
use crate::record::Batch;

pub use crate::extract::{FromBatch, MillisBehindLatest, ShardId};

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
                    tracing::warn!(
                        sequence_number = %position.sequence_number(),
                        sub_sequence_number = position.sub_sequence_number(),
                        "checkpoint at {position} asked by the handler failed: {error}"
                    );
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
