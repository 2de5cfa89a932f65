//! Checkpointing: the [`Checkpointer`] handed to hooks that may checkpoint, its typed errors, and
//! the retry policy for the daemon's transient failures.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::time::Duration;

use crate::deadline::Watchdog;
use crate::message::ChildMessage;
use crate::record::Record;
use crate::transport::{Reply, Transport};
use kcl_protocol::{DaemonError, Position};

/// Why a checkpoint did not happen.
///
/// The first six variants are the daemon's answers (the Java exception's simple class name); the
/// others are raised locally.
///
/// ```
/// use kcl_core::CheckpointError;
/// let e = CheckpointError::from_daemon("ThrottlingException");
/// assert_eq!(e, CheckpointError::Throttling);
/// assert!(e.is_retryable());
/// assert!(CheckpointError::from_daemon("ShutdownException").is_lease_lost());
/// assert_eq!(CheckpointError::from_daemon("NullPointerException"), CheckpointError::Other("NullPointerException".into()));
/// ```
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CheckpointError {
    /// `ThrottlingException`: DynamoDB throughput exceeded (retried with backoff before surfacing).
    #[error("ThrottlingException: the lease table is throttling checkpoint writes")]
    Throttling,
    /// `ShutdownException`: this worker no longer holds the lease. Never retried; every later
    /// checkpoint of this shard fails the same way without contacting the daemon.
    #[error(
        "ShutdownException: this worker no longer holds the lease; nothing more can be checkpointed on this shard"
    )]
    Shutdown,
    /// `InvalidStateException`: no checkpointer in this phase, or the lease table is missing.
    #[error("InvalidStateException: the daemon cannot checkpoint now")]
    InvalidState,
    /// `KinesisClientLibDependencyException`: a dependency (DynamoDB) failed (retried before surfacing).
    #[error(
        "KinesisClientLibDependencyException: a dependency of the daemon failed while checkpointing"
    )]
    Dependency,
    /// `IllegalArgumentException`: the position is outside [last checkpoint, largest delivered] or not a number.
    #[error(
        "IllegalArgumentException: the daemon refused the position (outside the delivered range or not a sequence number)"
    )]
    IllegalArgument,
    /// Any other exception name the daemon sent.
    #[error("{0}: the daemon failed to checkpoint")]
    Other(String),
    /// Refused locally: the position lies past a record whose batch failed, so checkpointing it
    /// would lose that record.
    #[error("refused to checkpoint {requested}: {stall}")]
    PastFailure {
        /// What was asked for (`everything delivered` for a null checkpoint).
        requested: String,
        /// Where the shard stalled.
        stall: Box<Stall>,
    },
    /// The daemon closed the channel before answering.
    #[error("the daemon closed stdin before answering the checkpoint request")]
    ChannelClosed,
    /// The daemon sent another message where a checkpoint reply was expected.
    #[error("expected a checkpoint reply, the daemon sent `{0}`")]
    UnexpectedReply(String),
    /// Reading or writing the channel failed.
    #[error("checkpoint channel failed: {0}")]
    Io(String),
}

impl CheckpointError {
    /// Maps the daemon's `error` string to a variant.
    ///
    /// ```
    /// use kcl_core::CheckpointError;
    /// assert_eq!(CheckpointError::from_daemon("InvalidStateException"), CheckpointError::InvalidState);
    /// let unknown = CheckpointError::from_daemon("OutOfMemoryError");
    /// assert_eq!(unknown, CheckpointError::Other("OutOfMemoryError".into()));
    /// assert_eq!(unknown.to_string(), "OutOfMemoryError: the daemon failed to checkpoint");
    /// ```
    pub fn from_daemon(error: &str) -> Self {
        match DaemonError::from_java_name(error) {
            Some(DaemonError::Throttling) => CheckpointError::Throttling,
            Some(DaemonError::Shutdown) => CheckpointError::Shutdown,
            Some(DaemonError::InvalidState) => CheckpointError::InvalidState,
            Some(DaemonError::Dependency) => CheckpointError::Dependency,
            Some(DaemonError::IllegalArgument) => CheckpointError::IllegalArgument,
            None => CheckpointError::Other(error.to_owned()),
        }
    }

    /// Whether the daemon may succeed if asked again later (throttling, dependency failure).
    ///
    /// ```
    /// use kcl_core::CheckpointError;
    /// assert!(CheckpointError::Throttling.is_retryable());
    /// assert!(CheckpointError::from_daemon("KinesisClientLibDependencyException").is_retryable());
    /// assert!(!CheckpointError::Shutdown.is_retryable());
    /// assert!(!CheckpointError::IllegalArgument.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CheckpointError::Throttling | CheckpointError::Dependency
        )
    }

    /// Whether the lease is gone (`ShutdownException`).
    ///
    /// ```
    /// use kcl_core::CheckpointError;
    /// assert!(CheckpointError::from_daemon("ShutdownException").is_lease_lost());
    /// assert!(!CheckpointError::InvalidState.is_lease_lost());
    /// assert!(!CheckpointError::ChannelClosed.is_lease_lost());
    /// ```
    pub fn is_lease_lost(&self) -> bool {
        matches!(self, CheckpointError::Shutdown)
    }

    /// Whether nothing more can be checkpointed by this process: the lease moved
    /// (`ShutdownException`) or the daemon is gone (stdin closed, the pipe broke). Returned from
    /// a handler, such an error is answered with a status and nothing else: no retry, no
    /// `on_failure`, no exit; the next owner of the lease resumes from the last checkpoint.
    ///
    /// ```
    /// use kcl_core::CheckpointError;
    /// assert!(CheckpointError::Shutdown.is_final());
    /// assert!(CheckpointError::ChannelClosed.is_final());
    /// assert!(CheckpointError::Io("Broken pipe".into()).is_final());
    /// assert!(!CheckpointError::Throttling.is_final());
    /// assert!(!CheckpointError::IllegalArgument.is_final());
    /// ```
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            CheckpointError::Shutdown | CheckpointError::ChannelClosed | CheckpointError::Io(_)
        )
    }
}

impl From<io::Error> for CheckpointError {
    fn from(error: io::Error) -> Self {
        CheckpointError::Io(error.to_string())
    }
}

/// Bounded exponential backoff with jitter for retryable checkpoint errors.
///
/// Attempt `n` (from 1) that fails with a retryable error waits a random duration between half and
/// all of `min(initial * 2^(n-1), max)` before the next one; after `max_attempts` the error is
/// returned.
///
/// ```
/// use std::time::Duration;
/// let policy = kcl_core::RetryPolicy::default();
/// assert_eq!(policy.max_attempts, 6);
/// let wait = policy.backoff(3);
/// assert!(wait >= Duration::from_millis(400) && wait <= Duration::from_millis(800));
/// assert_eq!(kcl_core::RetryPolicy::immediate(3).backoff(2), Duration::ZERO);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Upper bound of the first wait.
    pub initial_backoff: Duration,
    /// Upper bound of any wait.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// `attempts` tries with no wait between them (for tests).
    ///
    /// At least one attempt is always made:
    ///
    /// ```
    /// use std::time::Duration;
    /// let policy = kcl_core::RetryPolicy::immediate(0);
    /// assert_eq!(policy.max_attempts, 1);
    /// assert_eq!(policy.backoff(1), Duration::ZERO);
    /// ```
    pub fn immediate(attempts: u32) -> Self {
        RetryPolicy {
            max_attempts: attempts.max(1),
            initial_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
        }
    }

    /// How long to wait after failed attempt `attempt` (1-based).
    ///
    /// ```
    /// use std::time::Duration;
    /// let policy = kcl_core::RetryPolicy {
    ///     max_attempts: 10,
    ///     initial_backoff: Duration::from_millis(100),
    ///     max_backoff: Duration::from_secs(1),
    /// };
    /// let first = policy.backoff(1);
    /// assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
    /// let late = policy.backoff(9); // 100ms * 2^8 is capped at 1s
    /// assert!(late >= Duration::from_millis(500) && late <= Duration::from_secs(1));
    /// ```
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let ceiling = self
            .initial_backoff
            .saturating_mul(1u32 << exponent)
            .min(self.max_backoff);
        let half = ceiling / 2;
        let spread = (ceiling - half).as_nanos() as u64;
        if spread == 0 {
            return ceiling;
        }
        half + Duration::from_nanos(random_u64() % (spread + 1))
    }
}

fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    hasher.finish()
}

/// Where a shard stopped being checkpointable: set when a batch fails.
///
/// ```
/// let stall = kcl_core::Stall {
///     failed_at: Some(kcl_core::Position::new("12", 0)),
///     limit: Some(kcl_core::Position::new("11", 0)),
/// };
/// assert!(stall.allows(&kcl_core::Position::new("11", 0)));
/// assert!(!stall.allows(&kcl_core::Position::new("12", 0)));
/// assert_eq!(stall.to_string(), "record 12/0 was not handled (its batch failed), so nothing past 11/0 may be checkpointed");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stall {
    /// The first record that was not handled, when known.
    pub failed_at: Option<Position>,
    /// The highest position that may still be checkpointed (`None`: nothing beyond the lease's
    /// starting checkpoint).
    pub limit: Option<Position>,
}

impl Stall {
    /// Whether a checkpoint at `target` loses no unhandled record.
    ///
    /// Without a `limit` (nothing was handled or checkpointed before the failure), nothing is
    /// allowed:
    ///
    /// ```
    /// use kcl_core::{Position, Stall};
    /// let stall = Stall { failed_at: Some(Position::new("5", 0)), limit: Some(Position::new("4", 2)) };
    /// assert!(stall.allows(&Position::new("4", 2)));
    /// assert!(!stall.allows(&Position::new("4", 3)));
    /// let blocked = Stall { failed_at: None, limit: None };
    /// assert!(!blocked.allows(&Position::new("1", 0)));
    /// ```
    pub fn allows(&self, target: &Position) -> bool {
        self.limit.as_ref().is_some_and(|limit| target <= limit)
    }
}

impl std::fmt::Display for Stall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.failed_at {
            Some(failed_at) => write!(f, "record {failed_at} was not handled (its batch failed)")?,
            None => f.write_str("a batch could not be handled")?,
        }
        match &self.limit {
            Some(limit) => write!(f, ", so nothing past {limit} may be checkpointed"),
            None => f.write_str(", so nothing past the lease's starting point may be checkpointed"),
        }
    }
}

/// Which action a checkpointer was handed out for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    ProcessRecords,
    ShutdownRequested,
    ShardEnded,
}

/// What the engine knows about one shard's progress.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// Largest position the daemon delivered (it accepts checkpoints up to here).
    pub(crate) delivered: Option<Position>,
    /// Last record of the last batch whose handler succeeded.
    pub(crate) handled: Option<Position>,
    /// Last position the daemon confirmed storing.
    pub(crate) checkpointed: Option<Position>,
    /// Set once a batch failed.
    pub(crate) stall: Option<Stall>,
    /// A checkpoint failed with `ShutdownException`.
    pub(crate) lease_lost: bool,
    /// The end of the shard was checkpointed (during `shardEnded`).
    pub(crate) shard_end_checkpointed: bool,
    /// Records handled since the last successful checkpoint.
    pub(crate) handled_since_checkpoint: u64,
    /// When the last checkpoint succeeded (or the shard started).
    pub(crate) last_checkpoint_at: Option<std::time::Instant>,
    /// User code asked for a checkpoint of what it handled, as soon as its hook returns.
    pub(crate) requested: bool,
    /// The daemon closed stdin while a checkpoint reply was awaited, or the pipe to it broke:
    /// nothing more can be sent.
    pub(crate) channel_closed: bool,
    /// The furthest position user code asked to checkpoint during the current handler call. A
    /// checkpoint request says "handled up to here" even when the daemon fails to store it
    /// (throttling past the retry budget): those records count as handled.
    pub(crate) claimed: Option<Position>,
}

impl Progress {
    /// Whether every delivered record was handled.
    pub(crate) fn all_handled(&self) -> bool {
        self.stall.is_none() && self.handled == self.delivered
    }

    /// Notes that user code asked to checkpoint up to `position`.
    fn claim(&mut self, position: Position) {
        if position.sequence_number().is_numeric() && self.claimed.as_ref() < Some(&position) {
            self.claimed = Some(position);
        }
    }

    /// Notes a checkpoint the daemon confirmed.
    pub(crate) fn record_checkpoint(&mut self, position: Position) {
        if self.checkpointed.as_ref() < Some(&position) {
            self.checkpointed = Some(position);
        }
        self.handled_since_checkpoint = 0;
        self.last_checkpoint_at = Some(std::time::Instant::now());
    }

    /// Stops checkpointing past what is known to be handled.
    pub(crate) fn stall(&mut self, failed_at: Option<Position>) -> &Stall {
        if self.stall.is_none() {
            let limit = self.handled.clone().max(self.checkpointed.clone());
            self.stall = Some(Stall { failed_at, limit });
        }
        self.stall.as_ref().expect("just set")
    }
}

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
