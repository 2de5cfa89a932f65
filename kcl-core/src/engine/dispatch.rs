//! One shard's state machine: each daemon action to the processor's hook, the checkpoint
//! strategy after it, and the lifecycle hooks (`initialize`, `leaseLost`, `shutdownRequested`,
//! `shardEnded`). The handling of a batch's records is in `batch.rs`.

use std::io;
use std::sync::Arc;

use crate::checkpoint::{Checkpointer, Phase, Progress, RetryPolicy};
use crate::deadline::Watchdog;
use crate::error::Result;
use crate::failure::FailurePolicy;
use crate::guard;
use crate::message::{
    ChildMessage, DaemonMessage, ParsedLine, ProcessRecordsMessage, ShutdownReason,
};
use crate::processor::RecordProcessor;
use crate::record::Record;
use crate::runtime::Settings;
use crate::scan::ScannedBatch;
use crate::strategy::CheckpointStrategy;
use crate::transport::Transport;
use kcl_protocol::{Action, Position};

/// One shard's state machine: dispatches each daemon message to the processor.
pub(crate) struct Engine<P> {
    pub(crate) processor: P,
    pub(crate) progress: Progress,
    pub(crate) shard_id: Arc<str>,
    pub(crate) retry: RetryPolicy,
    strategy: CheckpointStrategy,
    pub(crate) failure: FailurePolicy,
    /// Set when the failure policy says to end the process.
    pub(crate) exit: Option<String>,
    pub(crate) watchdog: Option<Watchdog>,
}

impl<P: RecordProcessor> Engine<P> {
    pub(crate) fn new(processor: P, settings: Settings) -> Self {
        Engine {
            processor,
            progress: Progress::default(),
            shard_id: Arc::from("<uninitialized>"),
            retry: settings.retry,
            strategy: settings.strategy,
            failure: settings.failure,
            exit: None,
            watchdog: settings.deadline.map(Watchdog::start),
        }
    }

    /// Why the process must end (failure policy `exit`), once it must.
    pub(crate) fn exit_reason(&self) -> Option<&str> {
        self.exit.as_deref()
    }

    pub(crate) fn processor(&self) -> &P {
        &self.processor
    }

    pub(crate) fn processor_mut(&mut self) -> &mut P {
        &mut self.processor
    }

    /// Handles one parsed line; writes the status it calls for.
    pub(crate) fn handle(
        &mut self,
        parsed: ParsedLine,
        transport: &mut dyn Transport,
    ) -> io::Result<()> {
        if let ParsedLine::Message(DaemonMessage::Initialize(init)) = &parsed {
            self.shard_id = Arc::from(init.shard_id.as_str());
            crate::signals::set_shard(&init.shard_id);
        }
        let span = tracing::error_span!("shard", id = %self.shard_id);
        let _entered = span.enter();
        let response_for = match parsed {
            ParsedLine::Blank | ParsedLine::Junk { .. } => return Ok(()),
            ParsedLine::Message(DaemonMessage::CheckpointReply(reply)) => {
                tracing::warn!(
                    sequence_number = reply
                        .sequence_number
                        .as_deref()
                        .map(tracing::field::display),
                    sub_sequence_number = reply.sub_sequence_number,
                    "ignoring a checkpoint reply that answers no request (sequenceNumber {:?}, error {:?})",
                    reply.sequence_number,
                    reply.error
                );
                return Ok(());
            }
            ParsedLine::Message(message) => {
                let action = message.action();
                self.dispatch(message, transport);
                if self.exit.is_some() {
                    return Ok(()); // the failure policy ends the process: no status
                }
                action.to_owned()
            }
            ParsedLine::UnknownAction(action) => {
                tracing::warn!(
                    "unknown action {action:?}: no hook called; acknowledging it with a status so the daemon goes on"
                );
                action
            }
            ParsedLine::Malformed { action, cause } => {
                let known = Action::from_wire(&action);
                if known == Some(Action::Checkpoint) {
                    tracing::warn!(
                        "ignoring a malformed checkpoint reply that answers no request: {cause}"
                    );
                    return Ok(());
                }
                tracing::error!("malformed {action:?} message ({cause}); no hook called");
                let consequence = match known {
                    Some(Action::ProcessRecords) => {
                        "the batch's records are unknown, so they count as not handled"
                    }
                    Some(Action::Initialize) => {
                        "the processor is not initialized, so no batch will be handled"
                    }
                    _ => "",
                };
                if !consequence.is_empty() {
                    let stall = self.progress.stall(None);
                    tracing::error!("{consequence}: {stall}");
                }
                action
            }
        };
        transport.send(&ChildMessage::Status { response_for })
    }

    /// Handles a `processRecords` decoded by the fast path; writes its status.
    pub(crate) fn handle_batch(
        &mut self,
        batch: ScannedBatch,
        transport: &mut dyn Transport,
    ) -> io::Result<()> {
        let span = tracing::error_span!("shard", id = %self.shard_id);
        let _entered = span.enter();
        let ScannedBatch {
            records,
            first,
            last,
            count,
            millis_behind_latest,
            buffer,
        } = batch;
        self.process_batch(first, last, count, records, millis_behind_latest, transport);
        // Unless user code kept records, the line's buffer can be read into again.
        if let Ok(buffer) = Arc::try_unwrap(buffer) {
            transport.recycle(buffer);
        }
        if self.exit.is_some() {
            return Ok(());
        }
        transport.send(&ChildMessage::Status {
            response_for: Action::ProcessRecords.as_str().to_owned(),
        })
    }

    /// Handles a batch of records decoded by whoever drives the engine ([`crate::engine`]).
    pub(crate) fn handle_decoded(
        &mut self,
        records: Vec<Record>,
        millis_behind_latest: Option<u64>,
        transport: &mut dyn Transport,
    ) {
        let span = tracing::error_span!("shard", id = %self.shard_id);
        let _entered = span.enter();
        let count = records.len();
        let first = records.first().map(|r| r.position().clone());
        let last = records.last().map(|r| r.position().clone());
        self.process_batch(
            first,
            last,
            count,
            Ok(records),
            millis_behind_latest,
            transport,
        );
    }

    fn dispatch(&mut self, message: DaemonMessage, transport: &mut dyn Transport) {
        match message {
            DaemonMessage::Initialize(init) => {
                self.progress.checkpointed = init.starting_position.checkpoint().cloned();
                self.progress.last_checkpoint_at = Some(std::time::Instant::now());
                tracing::debug!(starting_position = ?init.starting_position, "initialize");
                let processor = &mut self.processor;
                let cause = Self::timed(&self.watchdog, "initialize", &self.shard_id, || {
                    guard::call_hook(|| processor.initialize(&init))
                });
                if let Some(cause) = cause {
                    tracing::error!("initialize hook {cause}");
                    let stall = self.progress.stall(None);
                    tracing::error!(
                        "the processor is not initialized, so no batch will be handled: {stall}"
                    );
                }
            }
            DaemonMessage::ProcessRecords(batch) => self.process_records(batch, transport),
            DaemonMessage::LeaseLost => self.lease_lost(),
            DaemonMessage::ShardEnded => self.shard_ended(transport),
            DaemonMessage::ShutdownRequested => self.shutdown_requested(transport),
            DaemonMessage::Shutdown(reason) => match reason {
                ShutdownReason::Terminate => self.shard_ended(transport),
                ShutdownReason::Requested => self.shutdown_requested(transport),
                ShutdownReason::Zombie => self.lease_lost(),
                ShutdownReason::Other(reason) => {
                    tracing::warn!(
                        "legacy shutdown with unknown reason {reason:?}: handled as a lost lease"
                    );
                    self.lease_lost()
                }
            },
            DaemonMessage::CheckpointReply(_) => unreachable!("handled by the caller"),
        }
    }

    fn process_records(&mut self, message: ProcessRecordsMessage, transport: &mut dyn Transport) {
        let count = message.records.len();
        let first = message.records.first().map(|r| r.position());
        let last = message.records.last().map(|r| r.position());
        let lag = message.millis_behind_latest;
        let records = Record::batch_from_wire(message.records);
        self.process_batch(first, last, count, records, lag, transport);
    }

    /// The body of `processRecords`, whichever parser decoded the batch.
    fn process_batch(
        &mut self,
        first: Option<Position>,
        last: Option<Position>,
        count: usize,
        records: std::result::Result<Vec<Record>, crate::record::PayloadError>,
        lag: Option<u64>,
        transport: &mut dyn Transport,
    ) {
        if last.is_some() && self.progress.delivered < last {
            self.progress.delivered = last.clone();
        }
        let range = match (&first, &last) {
            (Some(first), Some(last)) => format!("{count} records, {first} ..= {last}"),
            _ => "0 records".to_owned(),
        };
        if let Some(stall) = &self.progress.stall {
            tracing::error!(
                "refusing batch ({range}) without calling the handler: {stall}; restart the worker to retry from the last checkpoint"
            );
            return;
        }
        let records = match records {
            Ok(records) => records,
            Err(error) => {
                self.fail_batch(first, &range, &format!("could not be decoded: {error}"));
                return;
            }
        };
        self.handle_records(records, lag, &range, transport);
    }

    pub(crate) fn arm_watchdog(&self, what: String) {
        if let Some(watchdog) = &self.watchdog {
            watchdog.arm(what);
        }
    }

    pub(crate) fn disarm_watchdog(&self) {
        if let Some(watchdog) = &self.watchdog {
            watchdog.disarm();
        }
    }

    /// Runs `call` (a hook) with the hook deadline armed.
    fn timed<T>(
        watchdog: &Option<Watchdog>,
        hook: &str,
        shard_id: &str,
        call: impl FnOnce() -> T,
    ) -> T {
        if let Some(watchdog) = watchdog {
            watchdog.arm(format!("the {hook} hook on shard {shard_id}"));
        }
        let outcome = call();
        if let Some(watchdog) = watchdog {
            watchdog.disarm();
        }
        outcome
    }

    /// Calls a hook that may checkpoint (`shutdownRequested`, `shardEnded`), timed by the
    /// deadline (not while it waits for checkpoint replies); how it failed, if it did.
    fn call_checkpointing_hook(
        &mut self,
        hook: &str,
        phase: Phase,
        transport: &mut dyn Transport,
        call: impl FnOnce(&mut P, &mut Checkpointer<'_>) -> Result<()>,
    ) -> Option<String> {
        let processor = &mut self.processor;
        let progress = &mut self.progress;
        let (retry, watchdog) = (&self.retry, &self.watchdog);
        Self::timed(watchdog, hook, &self.shard_id, || {
            guard::call_hook(|| {
                let mut checkpointer = Checkpointer::new(transport, progress, retry, phase)
                    .timed_by(watchdog.as_ref());
                call(processor, &mut checkpointer)
            })
        })
    }

    pub(crate) fn mark_handled(&mut self, records: &[Record]) {
        if let Some(last) = records.last() {
            self.progress.handled_since_checkpoint += records.len() as u64;
            self.advance_handled(last.position());
        }
    }

    /// A record skipped after the others (counted when it was skipped): every delivered record
    /// up to it is now handled.
    pub(crate) fn mark_handled_through(&mut self, position: Position) {
        self.advance_handled(&position);
    }

    fn advance_handled(&mut self, position: &Position) {
        if self.progress.handled.as_ref() < Some(position) {
            self.progress.handled = Some(position.clone());
        }
    }

    /// Checkpoints what was handled if the strategy (or the handler) says it is time.
    pub(crate) fn checkpoint_if_due(&mut self, transport: &mut dyn Transport) {
        let progress = &mut self.progress;
        let since = progress
            .last_checkpoint_at
            .get_or_insert_with(std::time::Instant::now)
            .elapsed();
        let requested = std::mem::take(&mut progress.requested);
        let due = requested
            || self
                .strategy
                .is_due(progress.handled_since_checkpoint, since);
        let Some(handled) = progress.handled.clone() else {
            return;
        };
        if !due
            || progress.lease_lost
            || progress.channel_closed
            || progress.checkpointed.as_ref() >= Some(&handled)
        {
            return;
        }
        let mut checkpointer =
            Checkpointer::new(transport, progress, &self.retry, Phase::ProcessRecords);
        if let Err(error) = checkpointer.checkpoint_position(&handled) {
            tracing::warn!(
                sequence_number = %handled.sequence_number(),
                sub_sequence_number = handled.sub_sequence_number(),
                "checkpoint at {handled} failed: {error}; the next one covers these records"
            );
        }
    }

    pub(crate) fn fail_batch(&mut self, first: Option<Position>, range: &str, cause: &str) {
        let Some(first) = first else {
            tracing::error!("empty batch: {cause}; no record is affected");
            return;
        };
        let (sequence_number, sub_sequence_number) =
            (first.sequence_number().clone(), first.sub_sequence_number());
        let stall = self.progress.stall(Some(first));
        tracing::error!(
            sequence_number = %sequence_number,
            sub_sequence_number,
            "batch ({range}) failed: {cause}. The shard stalls: {stall}; later batches are refused until the worker restarts from the last checkpoint"
        );
    }

    fn lease_lost(&mut self) {
        let processor = &mut self.processor;
        let cause = Self::timed(&self.watchdog, "leaseLost", &self.shard_id, || {
            guard::call_hook(|| processor.lease_lost())
        });
        if let Some(cause) = cause {
            tracing::error!("lease_lost hook {cause}");
        }
    }

    /// After a hook that may checkpoint: what it asked for with `request_checkpoint` or
    /// `Checkpoint::Now` (what was handled, now).
    fn checkpoint_requested(&mut self, phase: Phase, transport: &mut dyn Transport) {
        if !std::mem::take(&mut self.progress.requested) || self.progress.lease_lost {
            return;
        }
        // What `checkpoint_handled` asks for (the last delivered record when all are handled).
        let target = self.progress.handled.clone();
        let mut checkpointer = Checkpointer::new(transport, &mut self.progress, &self.retry, phase);
        if let Err(error) = checkpointer.checkpoint_handled() {
            tracing::warn!(
                sequence_number = target
                    .as_ref()
                    .map(|p| tracing::field::display(p.sequence_number())),
                sub_sequence_number = target.as_ref().map(Position::sub_sequence_number),
                "the checkpoint the hook asked for failed: {error}"
            );
        }
    }

    fn shutdown_requested(&mut self, transport: &mut dyn Transport) {
        self.progress.requested = false;
        let cause = self.call_checkpointing_hook(
            "shutdownRequested",
            Phase::ShutdownRequested,
            transport,
            |processor, checkpointer| processor.shutdown_requested(checkpointer),
        );
        if let Some(cause) = cause {
            tracing::error!("shutdown_requested hook {cause}");
            return;
        }
        self.checkpoint_requested(Phase::ShutdownRequested, transport);
    }

    fn shard_ended(&mut self, transport: &mut dyn Transport) {
        self.progress.requested = false;
        let cause = self.call_checkpointing_hook(
            "shardEnded",
            Phase::ShardEnded,
            transport,
            |processor, checkpointer| processor.shard_ended(checkpointer),
        );
        if let Some(cause) = cause {
            tracing::error!(
                "shard_ended hook {cause}; the end of the shard is not checkpointed: the daemon keeps the lease and the shard's children cannot start until the worker restarts and the shard is processed again"
            );
            return;
        }
        self.checkpoint_requested(Phase::ShardEnded, transport);
        if self.progress.shard_end_checkpointed || self.progress.lease_lost {
            return;
        }
        if let Some(stall) = &self.progress.stall {
            tracing::error!(
                "the shard ended but cannot be completed: {stall}; its child shards wait until the worker restarts and the shard is processed again"
            );
            return;
        }
        if !self.progress.all_handled() {
            return;
        }
        tracing::warn!(
            "shard_ended returned without checkpointing the end of the shard; checkpointing it now so the child shards can start"
        );
        let mut checkpointer = Checkpointer::new(
            transport,
            &mut self.progress,
            &self.retry,
            Phase::ShardEnded,
        );
        if let Err(error) = checkpointer.checkpoint() {
            tracing::error!("checkpointing the end of the shard failed: {error}");
        }
    }
}
