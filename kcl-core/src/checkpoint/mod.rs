//! Checkpointing: the [`Checkpointer`] handed to hooks that may checkpoint (here), its typed
//! errors (`error.rs`), the retry policy for the daemon's transient failures (`retry.rs`), and
//! what the engine knows of a shard's progress (`progress.rs`).

use crate::deadline::Watchdog;
use crate::message::ChildMessage;
use crate::record::Record;
use crate::transport::{Reply, Transport};
use kcl_protocol::Position;

mod error;
mod progress;
mod retry;

pub use error::CheckpointError;
pub use progress::Stall;
pub(crate) use progress::{Phase, Progress};
pub use retry::RetryPolicy;

/// Sends checkpoint requests to the daemon; handed to the hooks in which the daemon accepts them
/// (`processRecords`, `shutdownRequested`, `shardEnded`).
///
/// Every call blocks until the daemon answers. Throttling and dependency errors are retried per the
/// runtime's [`RetryPolicy`]; `ShutdownException` is never retried. A checkpoint that would pass a
/// record whose batch failed is refused locally ([`CheckpointError::PastFailure`]), so user code
/// cannot lose records by accident.
///
/// ```
/// use kcl_core::{from_fn, testing::TestDaemon};
/// let processor = from_fn(|batch, checkpointer| {
///     if let Some(last) = batch.last() {
///         checkpointer.checkpoint_at(last)?;
///     }
///     Ok(())
/// });
/// let mut daemon = TestDaemon::new(processor);
/// daemon.initialize("shardId-000000000000");
/// let step = daemon.process_payloads(["a", "b"]);
/// assert_eq!(step.checkpoints.len(), 1);
/// let last = daemon.delivered().unwrap().clone();
/// assert_eq!(daemon.stored_checkpoint(), Some(kcl_core::testing::StoredCheckpoint::At(last)));
/// ```
pub struct Checkpointer<'a> {
    transport: &'a mut dyn Transport,
    progress: &'a mut Progress,
    retry: &'a RetryPolicy,
    phase: Phase,
    /// The hook deadline's clock, paused while the daemon is asked (its answer and the retries'
    /// backoff are not the hook's time).
    watchdog: Option<&'a Watchdog>,
}

impl<'a> Checkpointer<'a> {
    pub(crate) fn new(
        transport: &'a mut dyn Transport,
        progress: &'a mut Progress,
        retry: &'a RetryPolicy,
        phase: Phase,
    ) -> Self {
        Checkpointer {
            transport,
            progress,
            retry,
            phase,
            watchdog: None,
        }
    }

    /// The same checkpointer, pausing the hook deadline's clock while it waits for the daemon.
    pub(crate) fn timed_by(mut self, watchdog: Option<&'a Watchdog>) -> Self {
        self.watchdog = watchdog;
        self
    }

    /// Checkpoints everything delivered so far, including the batch being handled (during
    /// `shardEnded`: the end of the shard, which lets child shards start).
    ///
    /// Sends `{"sequenceNumber":null,"subSequenceNumber":null}`.
    ///
    /// ```
    /// use kcl_core::{from_fn, testing::{StoredCheckpoint, TestDaemon}};
    /// let mut daemon = TestDaemon::new(from_fn(|_, checkpointer| Ok(checkpointer.checkpoint()?)));
    /// daemon.initialize("shardId-000000000000");
    /// let step = daemon.process_payloads(["a", "b"]);
    /// assert_eq!(step.checkpoints[0].sequence_number, None);
    /// let last = daemon.delivered().unwrap().clone();
    /// assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::At(last)));
    /// ```
    pub fn checkpoint(&mut self) -> Result<(), CheckpointError> {
        if let Some(stall) = &self.progress.stall {
            return Err(CheckpointError::PastFailure {
                requested: "everything delivered".into(),
                stall: Box::new(stall.clone()),
            });
        }
        self.request(None, None)?;
        // Before any record the daemon re-stores the lease's starting checkpoint.
        if let Some(delivered) = self.progress.delivered.clone() {
            self.progress.record_checkpoint(delivered);
        }
        if self.phase == Phase::ShardEnded {
            self.progress.shard_end_checkpointed = true;
        }
        Ok(())
    }

    /// Checkpoints at `record`, sending its sequence and sub-sequence numbers: on restart, the
    /// records after it are delivered again.
    ///
    /// ```
    /// use kcl_core::{from_fn, testing::TestDaemon};
    /// let mut daemon = TestDaemon::new(from_fn(|batch, checkpointer| {
    ///     Ok(checkpointer.checkpoint_at(&batch.records()[0])?) // only the first record
    /// }));
    /// daemon.initialize("shardId-000000000000");
    /// let records = vec![daemon.next_record("a"), daemon.next_record("b")];
    /// let first = records[0].sequence_number().to_string();
    /// let step = daemon.process_records(records, None);
    /// assert_eq!(step.checkpoints[0].sequence_number, Some(first));
    /// assert_eq!(step.checkpoints[0].sub_sequence_number, Some(0));
    /// ```
    pub fn checkpoint_at(&mut self, record: &Record) -> Result<(), CheckpointError> {
        self.checkpoint_position(record.position())
    }

    /// Checkpoints at a position.
    ///
    /// ```
    /// use kcl_core::{from_fn, testing::{StoredCheckpoint, TestDaemon}, CheckpointStrategy};
    /// let processor = from_fn(|batch, checkpointer| {
    ///     Ok(checkpointer.checkpoint_position(batch.records()[0].position())?)
    /// });
    /// let mut daemon = TestDaemon::with_strategy(processor, CheckpointStrategy::Manual);
    /// daemon.initialize("shardId-000000000000");
    /// let records = vec![daemon.next_record("a"), daemon.next_record("b")];
    /// let first = records[0].position().clone();
    /// daemon.process_records(records, None);
    /// assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::At(first)));
    /// ```
    pub fn checkpoint_position(&mut self, position: &Position) -> Result<(), CheckpointError> {
        self.checkpoint_raw(
            position.sequence_number().as_str(),
            Some(position.sub_sequence_number()),
        )
    }

    /// Checkpoints at a raw sequence number and optional sub-sequence number, as given (the daemon
    /// reads a missing sub-sequence number as 0).
    ///
    /// The daemon reads the sub-sequence number as a Java `long`: a value above `i64::MAX` is
    /// refused here with [`CheckpointError::IllegalArgument`], without sending a line the daemon
    /// could not read (it would skip it and never answer).
    ///
    /// ```
    /// # use std::{cell::RefCell, rc::Rc};
    /// # use kcl_core::{from_fn, testing::TestDaemon, CheckpointError};
    /// let refused = Rc::new(RefCell::new(None));
    /// let seen = refused.clone();
    /// let mut daemon = TestDaemon::new(from_fn(move |batch, checkpointer| {
    ///     *seen.borrow_mut() = checkpointer.checkpoint_raw("not-a-number", None).err();
    ///     Ok(checkpointer.checkpoint_raw(batch.last().unwrap().sequence_number().as_str(), None)?)
    /// }));
    /// daemon.initialize("shardId-000000000000");
    /// let step = daemon.process_payloads(["a"]);
    /// assert_eq!(*refused.borrow(), Some(CheckpointError::IllegalArgument));
    /// assert_eq!((step.checkpoints[1].error.as_deref(), step.checkpoints[1].sub_sequence_number), (None, None));
    /// ```
    pub fn checkpoint_raw(
        &mut self,
        sequence_number: &str,
        sub_sequence_number: Option<u64>,
    ) -> Result<(), CheckpointError> {
        if sub_sequence_number.is_some_and(|n| i64::try_from(n).is_err()) {
            tracing::warn!(
                sequence_number = %sequence_number,
                sub_sequence_number,
                "refusing to checkpoint at {sequence_number}/{}: the daemon reads sub-sequence numbers as a Java long (at most {})",
                sub_sequence_number.unwrap_or(0),
                i64::MAX
            );
            return Err(CheckpointError::IllegalArgument);
        }
        let target = Position::new(sequence_number, sub_sequence_number.unwrap_or(0));
        if let Some(stall) = &self.progress.stall {
            if !stall.allows(&target) {
                return Err(CheckpointError::PastFailure {
                    requested: target.to_string(),
                    stall: Box::new(stall.clone()),
                });
            }
        }
        // The KCL stores SHARD_END for the last delivered record, but not when that value is
        // already the checkpoint (it answers success without a write): then only a null
        // checkpoint completes the shard, and the runtime sends one after `shard_ended`.
        let unchanged = self.progress.checkpointed.as_ref() == Some(&target);
        self.request(Some(sequence_number), sub_sequence_number)?;
        if self.phase == Phase::ShardEnded
            && self.progress.delivered.as_ref() == Some(&target)
            && !unchanged
        {
            self.progress.shard_end_checkpointed = true;
        }
        self.progress.record_checkpoint(target);
        Ok(())
    }

    /// Checkpoints the last record whose batch the handler finished, and nothing beyond it.
    ///
    /// When every delivered record was handled this is the null checkpoint (during `shardEnded`,
    /// the end of the shard; before any record, it re-stores the lease's starting checkpoint);
    /// when a batch failed it is the last record before it, unless that was checkpointed
    /// already; when records were delivered but none was handled it sends nothing. The default
    /// `shutdown_requested` and `shard_ended` hooks call it.
    ///
    /// ```
    /// # use kcl_core::{from_fn, testing::{StoredCheckpoint, TestDaemon}, Error};
    /// let mut daemon = TestDaemon::new(from_fn(|batch, _| match batch.records()[0].data() {
    ///     b"bad" => Err(Error::msg("cannot handle this one")),
    ///     _ => Ok(()),
    /// }));
    /// daemon.initialize("shardId-000000000000");
    /// daemon.process_payloads(["good"]);
    /// let handled = daemon.delivered().unwrap().clone();
    /// daemon.process_payloads(["bad"]);
    /// daemon.shutdown_requested(); // the default hook calls checkpoint_handled
    /// assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::At(handled)));
    /// ```
    pub fn checkpoint_handled(&mut self) -> Result<(), CheckpointError> {
        if self.progress.all_handled() {
            return self.checkpoint();
        }
        match self.progress.handled.clone() {
            Some(handled) if self.progress.checkpointed.as_ref() < Some(&handled) => {
                self.checkpoint_position(&handled)
            }
            _ => Ok(()),
        }
    }

    /// Asks the runtime to checkpoint what the handler finished as soon as the hook returns,
    /// whatever the [`CheckpointStrategy`](crate::CheckpointStrategy): the handler-directed form.
    ///
    /// ```
    /// use kcl_core::{testing::{StoredCheckpoint, TestDaemon}, CheckpointStrategy, Runtime};
    /// let processor = kcl_core::from_fn(|batch, cp| {
    ///     if batch.iter().any(|r| r.data() == b"commit") {
    ///         cp.request_checkpoint();
    ///     }
    ///     Ok(())
    /// });
    /// let mut daemon = TestDaemon::with_strategy(processor, CheckpointStrategy::Manual);
    /// daemon.initialize("shardId-000000000000");
    /// daemon.process_payloads(["a"]);
    /// assert_eq!(daemon.stored_checkpoint(), None);
    /// daemon.process_payloads(["b", "commit"]);
    /// assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::At(daemon.delivered().unwrap().clone())));
    /// ```
    pub fn request_checkpoint(&mut self) {
        self.progress.requested = true;
    }

    /// The last record of the last batch whose handler succeeded.
    ///
    /// Inside a handler that is the previous batch: the current one is not handled yet.
    ///
    /// ```
    /// # use std::{cell::RefCell, rc::Rc};
    /// # use kcl_core::{from_fn, testing::TestDaemon};
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// let log = seen.clone();
    /// let mut daemon = TestDaemon::new(from_fn(move |_, checkpointer| {
    ///     log.borrow_mut().push(checkpointer.last_handled().cloned());
    ///     Ok(())
    /// }));
    /// daemon.initialize("shardId-000000000000");
    /// daemon.process_payloads(["a", "b"]);
    /// let end_of_first = daemon.delivered().cloned();
    /// daemon.process_payloads(["c"]);
    /// assert_eq!(*seen.borrow(), [None, end_of_first]);
    /// ```
    pub fn last_handled(&self) -> Option<&Position> {
        self.progress.handled.as_ref()
    }

    /// The largest position delivered so far.
    ///
    /// Inside a handler it already covers the batch being handled.
    ///
    /// ```
    /// # use std::{cell::RefCell, rc::Rc};
    /// # use kcl_core::{from_fn, testing::TestDaemon};
    /// let seen = Rc::new(RefCell::new(None));
    /// let log = seen.clone();
    /// let mut daemon = TestDaemon::new(from_fn(move |batch, checkpointer| {
    ///     *log.borrow_mut() = Some(checkpointer.last_delivered() == Some(batch.last().unwrap().position()));
    ///     Ok(())
    /// }));
    /// daemon.initialize("shardId-000000000000");
    /// daemon.process_payloads(["a", "b"]);
    /// assert_eq!(*seen.borrow(), Some(true));
    /// ```
    pub fn last_delivered(&self) -> Option<&Position> {
        self.progress.delivered.as_ref()
    }

    /// The last position the daemon confirmed (including the one `initialize` resumed from).
    ///
    /// ```
    /// # use std::{cell::RefCell, rc::Rc};
    /// # use kcl_core::{from_fn, testing::{sequence_number, TestDaemon}, Position, StartingPosition};
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// let log = seen.clone();
    /// let mut daemon = TestDaemon::new(from_fn(move |_, checkpointer| {
    ///     log.borrow_mut().push(checkpointer.last_checkpoint().cloned());
    ///     Ok(checkpointer.checkpoint()?)
    /// }));
    /// let resumed = Position::new(sequence_number(0), 0);
    /// daemon.initialize_at("shardId-000000000000", StartingPosition::Checkpoint(resumed.clone()));
    /// daemon.process_payloads(["a"]);
    /// daemon.process_payloads(["b"]);
    /// let first_batch = Position::new(sequence_number(1), 0);
    /// assert_eq!(*seen.borrow(), [Some(resumed), Some(first_batch)]);
    /// ```
    pub fn last_checkpoint(&self) -> Option<&Position> {
        self.progress.checkpointed.as_ref()
    }

    /// Whether a `ShutdownException` said that this worker lost the lease.
    ///
    /// Once it did, later checkpoints fail at once without asking the daemon.
    ///
    /// ```
    /// # use std::{cell::Cell, rc::Rc};
    /// # use kcl_core::{from_fn, testing::TestDaemon};
    /// let lost = Rc::new(Cell::new(false));
    /// let flag = lost.clone();
    /// let mut daemon = TestDaemon::new(from_fn(move |_, checkpointer| {
    ///     let first = checkpointer.checkpoint();
    ///     let second = checkpointer.checkpoint();
    ///     flag.set(first.is_err() && second.is_err() && checkpointer.is_lease_lost());
    ///     Ok(())
    /// }));
    /// daemon.initialize("shardId-000000000000");
    /// daemon.fail_next_checkpoints(["ShutdownException"]);
    /// let step = daemon.process_payloads(["a"]);
    /// assert!(lost.get());
    /// assert_eq!(step.checkpoints.len(), 1); // neither retried nor sent again
    /// ```
    pub fn is_lease_lost(&self) -> bool {
        self.progress.lease_lost
    }

    fn request(
        &mut self,
        sequence_number: Option<&str>,
        sub_sequence_number: Option<u64>,
    ) -> Result<(), CheckpointError> {
        if self.progress.lease_lost {
            return Err(CheckpointError::Shutdown);
        }
        if self.progress.channel_closed {
            return Err(CheckpointError::ChannelClosed);
        }
        let target = match sequence_number {
            None => self.progress.delivered.clone(),
            Some(sequence_number) => Some(Position::new(
                sequence_number,
                sub_sequence_number.unwrap_or(0),
            )),
        };
        if let Some(watchdog) = self.watchdog {
            watchdog.pause();
        }
        let outcome = self.ask(sequence_number, sub_sequence_number);
        if let Some(watchdog) = self.watchdog {
            watchdog.resume();
        }
        // Asking for a checkpoint says the records up to there are handled, unless the position
        // itself was refused.
        if self.phase == Phase::ProcessRecords
            && !matches!(outcome, Err(CheckpointError::IllegalArgument))
        {
            if let Some(target) = target {
                self.progress.claim(target);
            }
        }
        outcome
    }

    /// Sends the request and waits for the reply, retrying throttling and dependency errors.
    fn ask(
        &mut self,
        sequence_number: Option<&str>,
        sub_sequence_number: Option<u64>,
    ) -> Result<(), CheckpointError> {
        let message = ChildMessage::Checkpoint {
            sequence_number: sequence_number.map(str::to_owned),
            sub_sequence_number,
        };
        let attempts = self.retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let reply = self
                .transport
                .send(&message)
                .and_then(|()| self.transport.recv_reply());
            let error = match reply {
                Ok(Reply::Checkpoint(reply)) => match reply.error {
                    None => return Ok(()),
                    Some(error) => CheckpointError::from_daemon(&error),
                },
                Ok(Reply::Eof) => {
                    self.progress.channel_closed = true;
                    return Err(CheckpointError::ChannelClosed);
                }
                Ok(Reply::Unexpected(action)) => {
                    return Err(CheckpointError::UnexpectedReply(action));
                }
                Ok(Reply::Malformed(cause)) => {
                    return Err(CheckpointError::UnexpectedReply(format!(
                        "a checkpoint reply that cannot be read ({cause})"
                    )));
                }
                Err(error) => {
                    // The pipe to the daemon broke (EPIPE: it is gone): nothing more can be sent.
                    self.progress.channel_closed = true;
                    return Err(error.into());
                }
            };
            if error.is_lease_lost() {
                self.progress.lease_lost = true;
            }
            if !error.is_retryable() || attempt >= attempts {
                return Err(error);
            }
            let wait = self.retry.backoff(attempt);
            tracing::warn!(
                sequence_number = sequence_number.map(tracing::field::display),
                sub_sequence_number,
                "checkpoint attempt {attempt}/{attempts} failed ({error}); retrying in {wait:?}"
            );
            std::thread::sleep(wait);
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn backoff_waits_between_half_and_all_of_the_doubling_ceiling() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        for (attempt, ceiling) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (30, 1000),
        ] {
            let ceiling = Duration::from_millis(ceiling);
            for _ in 0..20 {
                let wait = policy.backoff(attempt);
                assert!(
                    wait >= ceiling / 2 && wait <= ceiling,
                    "attempt {attempt}: {wait:?} outside [{:?}, {ceiling:?}]",
                    ceiling / 2
                );
            }
        }
        assert_eq!(RetryPolicy::immediate(3).backoff(2), Duration::ZERO);
    }

    #[test]
    fn a_claim_keeps_the_furthest_sequence_number_asked_for() {
        let mut progress = Progress::default();
        progress.claim(Position::new("5", 1));
        progress.claim(Position::new("3", 0));
        progress.claim(Position::new("not-a-number", 0));
        assert_eq!(progress.claimed, Some(Position::new("5", 1)));
        progress.claim(Position::new("5", 2));
        assert_eq!(progress.claimed, Some(Position::new("5", 2)));
    }

    #[test]
    fn backoff_is_jittered_so_that_shards_do_not_retry_in_step() {
        let policy = RetryPolicy::default();
        let waits: std::collections::BTreeSet<Duration> =
            (0..64).map(|_| policy.backoff(3)).collect();
        assert!(waits.len() > 8, "{waits:?}");
    }

    #[test]
    fn a_stall_says_which_record_failed_and_how_far_checkpoints_may_go() {
        let stall = Stall {
            failed_at: Some(Position::new("12", 0)),
            limit: Some(Position::new("11", 3)),
        };
        assert_eq!(
            stall.to_string(),
            "record 12/0 was not handled (its batch failed), so nothing past 11/3 may be checkpointed"
        );
        let unknown = Stall {
            failed_at: None,
            limit: None,
        };
        assert_eq!(
            unknown.to_string(),
            "a batch could not be handled, so nothing past the lease's starting point may be checkpointed"
        );
    }
}
