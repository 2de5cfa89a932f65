//! What happens when a handler fails: retries with backoff, then stop, skip, or exit — modelled
//! on AWS Lambda's Kinesis event source.

use std::time::Duration;

use crate::checkpoint::RetryPolicy;
use crate::error::Error;
use crate::record::Record;

/// What the runtime does once a batch failed on every attempt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailureAction {
    /// Stop checkpointing this shard: nothing at or after the failed record is ever
    /// checkpointed, later batches are answered (so the daemon and the other shards go on) but
    /// refused, each with an error in the log. After a restart the records come again. The default.
    #[default]
    Stop,
    /// Hand the failed record (or, when the failure names no record, the rest of the batch) to the
    /// processor's `on_failure` hook — a dead-letter sink — then go on with the next record. If
    /// that hook fails too, the shard stops as with [`Stop`](Self::Stop).
    Skip,
    /// End the process with a non-zero exit code and a clear message, without answering the
    /// action. The daemon then exits too (it exits when a child dies), so a supervisor restarts
    /// the worker, which resumes from the last checkpoint.
    Exit,
}

/// Retries of a failed batch, and what happens after the last one.
///
/// A failed attempt (an `Err`, a panic, a payload that a strict extractor could not decode) is
/// retried after a backoff, from the record that failed: the records before it (partial success,
/// see [`Error::at_record`]) are not given to the handler again. Attempts count per failing
/// record: a retry that gets past it starts the count afresh for the next failure. After
/// `retry.max_attempts` attempts on one record, [`then`](Self::then) decides.
///
/// ```
/// use kcl_core::{FailureAction, FailurePolicy};
/// let policy = FailurePolicy::default();
/// assert_eq!(policy.then, FailureAction::Stop);
/// assert_eq!(policy.retry.max_attempts, 3);
/// let skip = FailurePolicy::skip().attempts(5);
/// assert_eq!((skip.then, skip.retry.max_attempts), (FailureAction::Skip, 5));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailurePolicy {
    /// Attempts and backoff between them.
    pub retry: RetryPolicy,
    /// What follows the last failed attempt.
    pub then: FailureAction,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        FailurePolicy::with_action(FailureAction::Stop)
    }
}

impl FailurePolicy {
    fn with_action(then: FailureAction) -> Self {
        FailurePolicy {
            retry: RetryPolicy {
                max_attempts: 3,
                initial_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
            },
            then,
        }
    }

    /// Retry, then stop checkpointing the shard (the default).
    ///
    /// ```
    /// assert_eq!(kcl_core::FailurePolicy::stop(), kcl_core::FailurePolicy::default());
    /// ```
    pub fn stop() -> Self {
        FailurePolicy::with_action(FailureAction::Stop)
    }

    /// Retry, then hand the failed records to the `on_failure` hook and go on.
    ///
    /// ```
    /// assert_eq!(kcl_core::FailurePolicy::skip().then, kcl_core::FailureAction::Skip);
    /// ```
    pub fn skip() -> Self {
        FailurePolicy::with_action(FailureAction::Skip)
    }

    /// Retry, then exit the process with a non-zero code.
    ///
    /// ```
    /// assert_eq!(kcl_core::FailurePolicy::exit().then, kcl_core::FailureAction::Exit);
    /// ```
    pub fn exit() -> Self {
        FailurePolicy::with_action(FailureAction::Exit)
    }

    /// The same policy with `attempts` attempts in all (at least 1: no retry).
    ///
    /// ```
    /// assert_eq!(kcl_core::FailurePolicy::stop().attempts(1).retry.max_attempts, 1);
    /// ```
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.retry.max_attempts = attempts.max(1);
        self
    }

    /// The same policy with this backoff between attempts (see [`RetryPolicy::backoff`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = kcl_core::FailurePolicy::stop().backoff(Duration::ZERO, Duration::ZERO);
    /// assert_eq!(p.retry.backoff(1), Duration::ZERO);
    /// ```
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.retry.initial_backoff = initial;
        self.retry.max_backoff = max;
        self
    }
}

/// Records that could not be handled, as given to the `on_failure` hook under
/// [`FailureAction::Skip`].
///
/// ```
/// use kcl_core::{Error, Failure, Position, Record};
/// let records = [Record::new("x", "k", Position::new("1", 0))];
/// let error = Error::msg("sink down");
/// let failure = Failure { shard_id: "shardId-0", records: &records, error: &error, attempts: 3 };
/// assert_eq!(failure.records[0].data(), b"x");
/// ```
#[derive(Debug)]
pub struct Failure<'a> {
    /// The shard the records came from.
    pub shard_id: &'a str,
    /// The records skipped: the one that failed, or the rest of the batch when the failure named
    /// no record.
    pub records: &'a [Record],
    /// The last attempt's error.
    pub error: &'a Error,
    /// How many attempts were made.
    pub attempts: u32,
}

/// The error [`Runtime::run`](crate::Runtime::run) and
/// [`Runtime::run_on`](crate::Runtime::run_on) end with when the failure policy `exit` fired:
/// carried inside the `io::Error` they return, so a caller can tell it from a broken channel.
///
/// ```
/// use kcl_core::{from_fn, FailurePolicy, PolicyExit, Runtime};
/// let input = concat!(
///     r#"{"action":"initialize","shardId":"s","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#, "\n",
///     r#"{"action":"processRecords","records":[{"data":"eA==","partitionKey":"k","sequenceNumber":"1","approximateArrivalTimestamp":1,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#, "\n",
/// );
/// let failing = from_fn(|_, _| Err(kcl_core::Error::msg("poison")));
/// let error = Runtime::new(failing)
///     .failure_policy(FailurePolicy::exit().attempts(1))
///     .run_on(input.as_bytes(), Vec::new())
///     .unwrap_err();
/// let exit = PolicyExit::of(&error).expect("the failure policy ended the run");
/// assert!(exit.reason().contains("poison"), "{exit}");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct PolicyExit {
    reason: String,
}

impl PolicyExit {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        PolicyExit {
            reason: reason.into(),
        }
    }

    /// Why the run ended: the shard, the records and the cause.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The `PolicyExit` inside an error returned by a run, if that is why it ended.
    pub fn of(error: &std::io::Error) -> Option<&PolicyExit> {
        error.get_ref()?.downcast_ref::<PolicyExit>()
    }
}
