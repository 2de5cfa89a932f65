//! One `processRecords` batch through the handler: attempts with backoff, partial success, what
//! a failure means, and the failure policy.
//!
//! A failed handler call is one of three things, and only the first is a failure of records:
//!
//! | kind | cause | outcome |
//! |---|---|---|
//! | records | an error or a panic of user code, a payload a strict extractor could not decode | retries, then the policy: stop, skip (`on_failure`) or exit |
//! | checkpoint | a checkpoint the handler asked for failed (throttling past the retry budget, `InvalidState`, `IllegalArgument`, …) | retries, then stop; never dead-lettered, never an exit |
//! | gone | `ShutdownException` (the lease moved), or the daemon closed stdin or the pipe broke | the status, nothing else: no retry, no `on_failure`, no exit |
//!
//! Which records count as handled after a failure: those before a record named with
//! [`Error::at_record`] (partial success), and those up to the furthest position the handler
//! asked to checkpoint (asking says "handled up to here", even when the daemon could not store
//! it). A payload error from a batch extractor names its record but the handler never ran, so
//! the records before it are not handled: under `skip`, the bad record goes to `on_failure` and
//! the handler gets the others.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::Engine;
use crate::checkpoint::{CheckpointError, Checkpointer, Phase, Progress};
use crate::error::Error;
use crate::failure::{Failure, FailureAction};
use crate::guard;
use crate::processor::RecordProcessor;
use crate::record::PayloadError;
use crate::record::{Batch, Record};
use crate::transport::Transport;
use kcl_protocol::Position;

/// What a failed handler call means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// User code failed on records: the failure policy applies.
    Records,
    /// A checkpoint the handler asked for failed: retried, then the shard stops.
    Checkpoint,
    /// The lease moved or the daemon is gone: nothing more can be checkpointed here.
    Gone,
}

/// A failed handler call, as plain data made under `catch_unwind`.
struct Failed {
    kind: Kind,
    /// How it failed, for the log.
    cause: String,
    /// Records at the start of the batch that count as handled.
    handled: usize,
    /// The record that failed, when known: its index in the batch, at or after `handled`.
    failed: Option<usize>,
    /// The error, for `on_failure` (a panic becomes a message).
    error: Error,
}

/// Classifies a handler's error. Runs the error's `Display`: call it under `catch_unwind`.
fn classify(error: Error, batch: &Batch, progress: &Progress) -> Failed {
    let checkpoint = error.downcast_ref::<CheckpointError>();
    let kind = if progress.lease_lost
        || progress.channel_closed
        || checkpoint.is_some_and(CheckpointError::is_final)
    {
        Kind::Gone
    } else if checkpoint.is_some() {
        Kind::Checkpoint
    } else {
        Kind::Records
    };
    let index_of = |position: &Position| batch.iter().position(|r| r.position() == position);
    // `Error::at_record`: the records before it were handled.
    let named = error.record().and_then(index_of);
    // A batch extractor's payload error: the handler never ran, nothing before it was handled.
    let undecodable = error
        .downcast_ref::<PayloadError>()
        .and_then(|e| index_of(e.position()));
    let handled = named.unwrap_or(0).max(claimed(batch, progress));
    Failed {
        kind,
        cause: guard::describe(&error),
        handled,
        failed: named.or(undecodable).filter(|&index| index >= handled),
        error,
    }
}

/// How many records at the start of the batch the handler asked to checkpoint.
fn claimed(batch: &Batch, progress: &Progress) -> usize {
    progress.claimed.as_ref().map_or(0, |claimed| {
        batch
            .iter()
            .take_while(|record| record.position() <= claimed)
            .count()
    })
}

/// `first ..= last` of some records, for the log.
fn span(records: &[Record]) -> String {
    match (records.first(), records.last()) {
        (Some(first), Some(last)) => format!(
            "{} records, {} ..= {}",
            records.len(),
            first.position(),
            last.position()
        ),
        _ => "0 records".to_owned(),
    }
}

impl<P: RecordProcessor> Engine<P> {
    /// Runs the handler over a decoded batch until every record is handled, skipped, or the
    /// failure policy ends it; then checkpoints if the strategy says so.
    pub(crate) fn handle_records(
        &mut self,
        records: Vec<Record>,
        lag: Option<u64>,
        range: &str,
        transport: &mut dyn Transport,
    ) {
        let mut batch = Batch::new(self.shard_id.clone(), records, lag);
        let mut attempt = 1;
        // The last record given to `on_failure` while records before it still wait for the
        // handler: handled once they are.
        let mut skipped: Option<Position> = None;
        loop {
            let Some(failed) = self.call_handler(&batch, transport) else {
                self.mark_handled(batch.records());
                if let Some(skipped) = skipped {
                    self.mark_handled_through(skipped);
                }
                break;
            };
            let records = batch.records();
            let handled = failed.handled.min(records.len());
            self.mark_handled(&records[..handled]);
            let rest = &records[handled..];
            if records.is_empty() {
                tracing::error!(
                    "empty batch: handler {}; no record is affected",
                    failed.cause
                );
                guard::drop_quietly(failed.error);
                break;
            }
            if failed.kind == Kind::Gone {
                tracing::warn!(
                    "batch ({range}): handler {}. {}: answering the daemon; no retry, no on_failure, no exit. The next owner of the lease resumes from the last checkpoint",
                    failed.cause,
                    if self.progress.lease_lost {
                        "The lease moved to another worker"
                    } else {
                        "The daemon is gone"
                    },
                );
                guard::drop_quietly(failed.error);
                break;
            }
            if rest.is_empty() {
                // Every record was handled (the handler asked to checkpoint them all); only the
                // checkpoint failed. The next checkpoint covers them.
                tracing::warn!(
                    "batch ({range}): handler {} after asking to checkpoint every record; the records count as handled and the next checkpoint covers them",
                    failed.cause
                );
                guard::drop_quietly(failed.error);
                if let Some(skipped) = skipped {
                    self.mark_handled_through(skipped);
                }
                break;
            }
            let first_unhandled = rest[0].position().clone();
            if handled > 0 {
                // Progress: the attempts count afresh for the record that failed now.
                attempt = 1;
            }
            let retries = &self.failure.retry;
            if attempt < retries.max_attempts {
                let wait = retries.backoff(attempt);
                tracing::warn!(
                    sequence_number = %first_unhandled.sequence_number(),
                    sub_sequence_number = first_unhandled.sub_sequence_number(),
                    "batch ({range}) attempt {attempt}/{} failed: handler {}; retrying from record {first_unhandled} in {wait:?}",
                    retries.max_attempts,
                    failed.cause,
                );
                std::thread::sleep(wait);
                batch = Batch::new(self.shard_id.clone(), rest.to_vec(), lag);
                attempt += 1;
                guard::drop_quietly(failed.error);
                continue;
            }
            let action = match failed.kind {
                Kind::Records => self.failure.then,
                // The records are not the problem: never dead-letter them, never exit for it.
                Kind::Checkpoint | Kind::Gone => FailureAction::Stop,
            };
            let cause = format!("handler {} (after {attempt} attempts)", failed.cause);
            match action {
                FailureAction::Stop => {
                    if failed.kind == Kind::Checkpoint && self.failure.then != FailureAction::Stop {
                        tracing::error!(
                            "batch ({range}): a checkpoint error is not a failure of records, so the `{:?}` policy does not apply to it",
                            self.failure.then
                        );
                    }
                    self.fail_batch(Some(first_unhandled), range, &cause);
                }
                FailureAction::Exit => {
                    self.fail_batch(Some(first_unhandled), range, &cause);
                    // What was handled before the failure need not come again after the restart.
                    self.checkpoint_if_due(transport);
                    self.exit = Some(format!(
                        "batch ({range}) failed on every attempt and the failure policy is `exit`: {}",
                        failed.cause
                    ));
                    guard::drop_quietly(failed.error);
                    return;
                }
                FailureAction::Skip => {
                    // The failed record, or the rest of the batch when no record was named.
                    let (dead, remaining): (std::ops::Range<usize>, Vec<Record>) =
                        match failed.failed {
                            Some(index) => (
                                index..index + 1,
                                records[handled..index]
                                    .iter()
                                    .chain(&records[index + 1..])
                                    .cloned()
                                    .collect(),
                            ),
                            None => (handled..records.len(), Vec::new()),
                        };
                    let dead_letters = &records[dead];
                    if !self.dead_letter(dead_letters, &failed.error, attempt) {
                        self.fail_batch(
                            Some(first_unhandled),
                            range,
                            &format!("{cause} and the on_failure hook failed too"),
                        );
                        guard::drop_quietly(failed.error);
                        break;
                    }
                    guard::drop_quietly(failed.error);
                    // Skipped records count toward `every(records = N)` like handled ones.
                    self.progress.handled_since_checkpoint += dead_letters.len() as u64;
                    let last_dead = dead_letters.last().map(|r| r.position().clone());
                    skipped = skipped.max(last_dead);
                    if remaining.is_empty() {
                        if let Some(skipped) = skipped {
                            self.mark_handled_through(skipped);
                        }
                        break;
                    }
                    tracing::info!(
                        "batch ({range}): going on with the records not yet handled ({})",
                        span(&remaining)
                    );
                    batch = Batch::new(self.shard_id.clone(), remaining, lag);
                    attempt = 1;
                    continue;
                }
            }
            guard::drop_quietly(failed.error);
            break;
        }
        self.checkpoint_if_due(transport);
    }

    /// Calls the handler once; `None` when it succeeded. The hook deadline times the call
    /// (not the checkpoint replies it waits for).
    fn call_handler(&mut self, batch: &Batch, transport: &mut dyn Transport) -> Option<Failed> {
        self.arm_watchdog(format!(
            "the processRecords hook on shard {} ({})",
            self.shard_id,
            span(batch.records())
        ));
        self.progress.claimed = None;
        let processor = &mut self.processor;
        let progress = &mut self.progress;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let result = {
                let mut checkpointer =
                    Checkpointer::new(transport, progress, &self.retry, Phase::ProcessRecords)
                        .timed_by(self.watchdog.as_ref());
                processor.process_records(batch, &mut checkpointer)
            };
            result.err().map(|error| classify(error, batch, progress))
        }));
        self.disarm_watchdog();
        match outcome {
            Ok(failed) => failed,
            Err(payload) => {
                let cause = guard::describe_panic(payload);
                let progress = &self.progress;
                let kind = if progress.lease_lost || progress.channel_closed {
                    Kind::Gone
                } else {
                    Kind::Records
                };
                Some(Failed {
                    kind,
                    handled: claimed(batch, progress),
                    failed: None,
                    error: Error::msg(&cause),
                    cause,
                })
            }
        }
    }

    /// Gives records to the `on_failure` hook; whether they may be skipped.
    fn dead_letter(&mut self, records: &[Record], error: &Error, attempts: u32) -> bool {
        let failure = Failure {
            shard_id: &self.shard_id,
            records,
            error,
            attempts,
        };
        self.arm_watchdog(format!(
            "the on_failure hook on shard {} ({})",
            self.shard_id,
            span(records)
        ));
        let processor = &mut self.processor;
        let cause = guard::call_hook(|| processor.on_failure(&failure));
        self.disarm_watchdog();
        match cause {
            None => true,
            Some(cause) => {
                tracing::error!("on_failure hook {cause}");
                false
            }
        }
    }
}
