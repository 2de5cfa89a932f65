//! The [`RecordProcessor`] trait: one method per daemon action, with defaults that keep a shard
//! safe, and [`from_fn`] for processors that are just a batch handler.

use crate::checkpoint::Checkpointer;
use crate::error::Result;
use crate::failure::Failure;
use crate::message::Initialize;
use crate::record::Batch;

/// The user's code for one shard lease. The daemon starts one process per lease, so one value of
/// this type sees one shard from `initialize` to the end of the lease.
///
/// Only `process_records` is required. Hooks in which the daemon accepts checkpoints receive a
/// [`Checkpointer`]; the others cannot checkpoint (the daemon would refuse).
///
/// | hook | daemon action | may checkpoint | default |
/// |---|---|---|---|
/// | [`initialize`](Self::initialize) | `initialize` | no | nothing |
/// | [`process_records`](Self::process_records) | `processRecords` | yes | (required) |
/// | [`lease_lost`](Self::lease_lost) | `leaseLost`, legacy `shutdown` ZOMBIE | no | nothing |
/// | [`shard_ended`](Self::shard_ended) | `shardEnded`, legacy `shutdown` TERMINATE | yes, must | checkpoint the end of the shard |
/// | [`shutdown_requested`](Self::shutdown_requested) | `shutdownRequested` | yes | checkpoint the last handled record |
///
/// ```
/// use kcl_core::{Batch, Checkpointer, RecordProcessor, Result};
///
/// #[derive(Default)]
/// struct Counter { records: u64 }
///
/// impl RecordProcessor for Counter {
///     fn process_records(&mut self, batch: &Batch, checkpointer: &mut Checkpointer<'_>) -> Result<()> {
///         self.records += batch.len() as u64;
///         if let Some(last) = batch.last() {
///             checkpointer.checkpoint_at(last)?;
///         }
///         Ok(())
///     }
/// }
///
/// let mut daemon = kcl_core::testing::TestDaemon::new(Counter::default());
/// daemon.initialize("shardId-000000000000");
/// daemon.process_payloads(["x", "y", "z"]);
/// assert_eq!(daemon.processor().records, 3);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a record processor",
    label = "does not implement `kcl::RecordProcessor`",
    note = "put #[kcl::processor] on its impl block (with an #[kcl::on_records] method), mark a handler function with #[kcl::on_records], or implement `kcl::RecordProcessor`"
)]
pub trait RecordProcessor {
    /// Called once, before any record, with the shard id and where the lease resumes.
    fn initialize(&mut self, shard: &Initialize) -> Result<()> {
        let _ = shard;
        Ok(())
    }

    /// Called for each batch. Returning `Ok` marks every record of the batch handled; returning an
    /// error (or panicking) marks the batch failed: the runtime logs it, answers the daemon, and
    /// from then on refuses to checkpoint at or past the batch's first record.
    fn process_records(&mut self, batch: &Batch, checkpointer: &mut Checkpointer<'_>)
    -> Result<()>;

    /// The lease moved to another worker: release resources; checkpointing is impossible.
    fn lease_lost(&mut self) -> Result<()> {
        Ok(())
    }

    /// The shard has ended (split or merge) and every record was delivered. The shard's children
    /// start only after the end of the shard is checkpointed, so the default does that (or, if a
    /// batch failed, checkpoints only what was handled and the shard waits for a retry).
    ///
    /// If an override returns `Ok` without checkpointing, the runtime checkpoints the end of the
    /// shard itself (with a warning) when every record was handled.
    fn shard_ended(&mut self, checkpointer: &mut Checkpointer<'_>) -> Result<()> {
        checkpointer.checkpoint_handled()?;
        Ok(())
    }

    /// The worker is shutting down or handing the lease over; a `leaseLost` follows. The default
    /// checkpoints the last handled record.
    fn shutdown_requested(&mut self, checkpointer: &mut Checkpointer<'_>) -> Result<()> {
        checkpointer.checkpoint_handled()?;
        Ok(())
    }

    /// Under [`FailureAction::Skip`](crate::FailureAction::Skip), receives the records that
    /// failed on every attempt — send them to a dead-letter queue. Returning `Ok` skips them
    /// (they count as handled and may be checkpointed); returning an error stops the shard. The
    /// default logs each record (sequence number, partition key) at ERROR level and skips it.
    fn on_failure(&mut self, failure: &Failure<'_>) -> Result<()> {
        for record in failure.records {
            tracing::error!(
                sequence_number = %record.sequence_number(),
                sub_sequence_number = record.sub_sequence_number(),
                "skipping record {} (partition key {:?}) after {} attempts: {}",
                record.position(),
                record.partition_key(),
                failure.attempts,
                failure.error
            );
        }
        Ok(())
    }
}

impl<P: RecordProcessor + ?Sized> RecordProcessor for Box<P> {
    fn initialize(&mut self, shard: &Initialize) -> Result<()> {
        (**self).initialize(shard)
    }
    fn process_records(
        &mut self,
        batch: &Batch,
        checkpointer: &mut Checkpointer<'_>,
    ) -> Result<()> {
        (**self).process_records(batch, checkpointer)
    }
    fn lease_lost(&mut self) -> Result<()> {
        (**self).lease_lost()
    }
    fn shard_ended(&mut self, checkpointer: &mut Checkpointer<'_>) -> Result<()> {
        (**self).shard_ended(checkpointer)
    }
    fn shutdown_requested(&mut self, checkpointer: &mut Checkpointer<'_>) -> Result<()> {
        (**self).shutdown_requested(checkpointer)
    }
    fn on_failure(&mut self, failure: &Failure<'_>) -> Result<()> {
        (**self).on_failure(failure)
    }
}

/// A processor made of a batch handler; every other hook keeps its default.
///
/// ```
/// use kcl_core::{from_fn, Batch, Checkpointer, Result};
/// let processor = from_fn(|batch: &Batch, checkpointer: &mut Checkpointer<'_>| -> Result<()> {
///     for text in batch.extract::<String>()? {
///         eprintln!("{text}");
///     }
///     checkpointer.checkpoint()?;
///     Ok(())
/// });
/// let mut daemon = kcl_core::testing::TestDaemon::new(processor);
/// daemon.initialize("shardId-000000000000");
/// assert_eq!(daemon.process_payloads(["hi"]).status.as_deref(), Some("processRecords"));
/// ```
pub fn from_fn<F>(handler: F) -> FnProcessor<F>
where
    F: FnMut(&Batch, &mut Checkpointer<'_>) -> Result<()>,
{
    FnProcessor { handler }
}

/// The processor returned by [`from_fn`].
///
/// Only `process_records` calls the function; the other hooks keep the [`RecordProcessor`]
/// defaults, so a shard end is checkpointed even though the handler never checkpoints (and
/// here, with the manual strategy, nothing else checkpoints either):
///
/// ```
/// use kcl_core::{from_fn, testing::{StoredCheckpoint, TestDaemon}, CheckpointStrategy};
/// let mut daemon = TestDaemon::with_strategy(from_fn(|_, _| Ok(())), CheckpointStrategy::Manual);
/// daemon.initialize("shardId-000000000000");
/// daemon.process_payloads(["a"]);
/// assert_eq!(daemon.stored_checkpoint(), None);
/// daemon.shard_ended();
/// assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::ShardEnd));
/// ```
pub struct FnProcessor<F> {
    handler: F,
}

impl<F> RecordProcessor for FnProcessor<F>
where
    F: FnMut(&Batch, &mut Checkpointer<'_>) -> Result<()>,
{
    fn process_records(
        &mut self,
        batch: &Batch,
        checkpointer: &mut Checkpointer<'_>,
    ) -> Result<()> {
        (self.handler)(batch, checkpointer)
    }
}
