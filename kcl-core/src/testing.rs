//! Drive a processor in-process, as the daemon would, and look at what it did.
//!
//! [`TestDaemon`] sends the daemon's actions through the same parser and engine as a real run,
//! answers checkpoint requests the way the Java daemon does (it stores them, and refuses positions
//! outside [last checkpoint, largest delivered] with `IllegalArgumentException`), or with the
//! errors you script, and records every line the processor wrote.
//!
//! ```
//! use kcl_core::testing::{StoredCheckpoint, TestDaemon};
//! use kcl_core::{from_fn, CheckpointError};
//!
//! let processor = from_fn(|batch, checkpointer| {
//!     match checkpointer.checkpoint_at(batch.last().unwrap()) {
//!         Err(CheckpointError::Shutdown) => Ok(()), // the lease is gone: nothing to do
//!         other => Ok(other?),
//!     }
//! });
//! let mut daemon = TestDaemon::new(processor);
//! daemon.initialize("shardId-000000000007");
//! daemon.fail_next_checkpoints(["ThrottlingException"]);
//! let step = daemon.process_payloads(["one", "two"]);
//! assert_eq!(step.checkpoints.len(), 2); // throttled once, then stored
//! assert_eq!(step.checkpoints[0].error.as_deref(), Some("ThrottlingException"));
//! assert_eq!(step.status.as_deref(), Some("processRecords"));
//! assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::At(daemon.delivered().unwrap().clone())));
//!
//! let step = daemon.shard_ended();
//! assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::ShardEnd));
//! assert_eq!(step.status.as_deref(), Some("shardEnded"));
//! ```

use std::collections::VecDeque;
use std::io;

use crate::checkpoint::RetryPolicy;
use crate::engine::Engine;
use crate::failure::FailurePolicy;
use crate::message::{
    CheckpointReply, ChildMessage, DaemonMessage, Initialize, ParsedLine, ProcessRecordsMessage,
    ShutdownReason, WireRecord, parse_line,
};
use crate::processor::RecordProcessor;
use crate::record::Record;
use crate::runtime::{Runtime, Settings};
use crate::strategy::CheckpointStrategy;
use crate::transport::{Reply, Transport};
use kcl_protocol::{ExtendedSequenceNumber, Lease};
use kcl_protocol::{Position, SequenceNumber, StartingPosition};
use std::time::Duration;

/// The `n`-th test sequence number: 56 digits, increasing with `n`
/// ([`SequenceNumber::synthetic`], the series `kcl run` uses too).
///
/// ```
/// let s = kcl_core::testing::sequence_number(1);
/// assert_eq!(s.as_str().len(), 56);
/// assert!(kcl_core::testing::sequence_number(2) > s);
/// ```
pub fn sequence_number(n: u64) -> SequenceNumber {
    SequenceNumber::synthetic(n)
}

/// The next decimal number after `sequence` (non-numeric text gets a `0` appended).
fn successor(sequence: &SequenceNumber) -> SequenceNumber {
    let mut digits = sequence.as_str().as_bytes().to_vec();
    if !sequence.is_numeric() {
        digits.push(b'0');
    } else {
        let mut index = digits.len();
        loop {
            if index == 0 {
                digits.insert(0, b'1');
                break;
            }
            index -= 1;
            if digits[index] == b'9' {
                digits[index] = b'0';
            } else {
                digits[index] += 1;
                break;
            }
        }
    }
    SequenceNumber::new(String::from_utf8(digits).expect("ASCII digits"))
}

/// What the daemon has stored as the lease's checkpoint.
///
/// During `shardEnded`, a checkpoint at the last delivered record stores the end of the shard:
///
/// ```
/// use kcl_core::{from_fn, testing::{StoredCheckpoint, TestDaemon}};
/// let mut daemon = TestDaemon::new(from_fn(|batch, cp| Ok(cp.checkpoint_at(batch.last().unwrap())?)));
/// daemon.initialize("shardId-000000000000");
/// daemon.process_payloads(["a"]);
/// assert!(matches!(daemon.stored_checkpoint(), Some(StoredCheckpoint::At(_))));
/// daemon.shard_ended();
/// assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::ShardEnd));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredCheckpoint {
    /// A record position.
    At(Position),
    /// The end of the shard: its children may start.
    ShardEnd,
}

/// One checkpoint request the processor made and the reply it got.
///
/// ```
/// use kcl_core::{from_fn, testing::{CheckpointCall, TestDaemon}};
/// let mut daemon = TestDaemon::new(from_fn(|_, cp| {
///     let _ = cp.checkpoint_raw("abc", Some(0)); // refused; the default strategy then checkpoints
///     Ok(())
/// }));
/// daemon.initialize("shardId-000000000000");
/// let step = daemon.process_payloads(["a"]);
/// assert_eq!(step.checkpoints[0], CheckpointCall {
///     sequence_number: Some("abc".into()),
///     sub_sequence_number: Some(0),
///     error: Some("IllegalArgumentException".into()), // not a sequence number
/// });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointCall {
    /// Requested sequence number (`None`: everything delivered).
    pub sequence_number: Option<String>,
    /// Requested sub-sequence number.
    pub sub_sequence_number: Option<u64>,
    /// The reply's error, `None` on success.
    pub error: Option<String>,
}

/// What the processor wrote while handling one action.
///
/// ```
/// use kcl_core::{from_fn, testing::{Step, TestDaemon}, CheckpointStrategy};
/// let mut daemon = TestDaemon::with_strategy(from_fn(|_, _| Ok(())), CheckpointStrategy::Manual);
/// daemon.initialize("shardId-000000000000");
/// let step = daemon.process_payloads(["a"]);
/// assert_eq!(step, Step { checkpoints: vec![], status: Some("processRecords".into()) });
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Checkpoint requests, in order, with their replies.
    pub checkpoints: Vec<CheckpointCall>,
    /// The `responseFor` of the status that ended the action (`None` if none was sent).
    pub status: Option<String>,
}

/// The daemon's side: the lease's checkpoint judged by [`LeaseCheckpointer`] (the same rules as
/// `kcl run`), scripted replies, and what the processor wrote.
struct FakeDaemon {
    scripted: VecDeque<Option<String>>,
    reply: Option<CheckpointReply>,
    lease: Lease,
    step: Step,
    child_lines: Vec<String>,
}

impl Default for FakeDaemon {
    fn default() -> Self {
        FakeDaemon {
            scripted: VecDeque::new(),
            reply: None,
            lease: Lease::new(ExtendedSequenceNumber::trim_horizon()),
            step: Step::default(),
            child_lines: Vec::new(),
        }
    }
}

impl FakeDaemon {
    /// The reply to a checkpoint request: a scripted one, or the KCL's judgement.
    fn decide(&mut self, sequence: Option<&str>, sub: Option<u64>) -> Option<String> {
        let sub = sub.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        match self.scripted.pop_front() {
            Some(Some(error)) => Some(error),
            // A scripted success: stored if the daemon would store it, answered as a success anyway.
            Some(None) => {
                let _ = self.lease.checkpoint(sequence, sub);
                None
            }
            None => self
                .lease
                .checkpoint(sequence, sub)
                .err()
                .map(|error| error.java_name().to_owned()),
        }
    }

    fn stored(&self) -> Option<StoredCheckpoint> {
        let last = self.lease.checkpointer().last();
        if last.is_shard_end() {
            Some(StoredCheckpoint::ShardEnd)
        } else if last.is_sentinel() {
            None
        } else {
            let sub = u64::try_from(last.sub_sequence_number()).unwrap_or(0);
            Some(StoredCheckpoint::At(Position::new(
                last.sequence_number(),
                sub,
            )))
        }
    }
}

impl Transport for FakeDaemon {
    fn send(&mut self, message: &ChildMessage) -> io::Result<()> {
        self.child_lines.push(message.to_json());
        match message {
            ChildMessage::Status { response_for } => {
                self.step.status = Some(response_for.clone());
            }
            ChildMessage::Checkpoint {
                sequence_number,
                sub_sequence_number,
            } => {
                let error = self.decide(sequence_number.as_deref(), *sub_sequence_number);
                self.step.checkpoints.push(CheckpointCall {
                    sequence_number: sequence_number.clone(),
                    sub_sequence_number: *sub_sequence_number,
                    error: error.clone(),
                });
                self.reply = Some(CheckpointReply {
                    sequence_number: sequence_number.clone(),
                    sub_sequence_number: *sub_sequence_number,
                    error,
                });
            }
        }
        Ok(())
    }

    fn recv_reply(&mut self) -> io::Result<Reply> {
        Ok(self.reply.take().map_or(Reply::Eof, Reply::Checkpoint))
    }
}

/// An in-process stand-in for the MultiLangDaemon, driving one processor.
///
/// It runs the real engine, so the SDK's safety rules apply: a failed batch is retried (3
/// attempts by default), then the shard stalls, and later batches are answered without calling
/// the handler.
///
/// ```
/// # use std::{cell::Cell, rc::Rc};
/// # use kcl_core::{from_fn, testing::TestDaemon, Error};
/// let calls = Rc::new(Cell::new(0));
/// let counter = calls.clone();
/// let mut daemon = TestDaemon::new(from_fn(move |batch, _| {
///     counter.set(counter.get() + 1);
///     match batch.records()[0].data() {
///         b"poison" => Err(Error::msg("cannot parse")),
///         _ => Ok(()),
///     }
/// }));
/// daemon.initialize("shardId-000000000000");
/// daemon.process_payloads(["poison"]);
/// let step = daemon.process_payloads(["fine"]);
/// assert_eq!(step.status.as_deref(), Some("processRecords")); // still answered,
/// assert_eq!(calls.get(), 3); // 3 attempts of "poison"; "fine" was not handled
/// ```
pub struct TestDaemon<P> {
    engine: Engine<P>,
    daemon: FakeDaemon,
    daemon_lines: Vec<String>,
    next_sequence: u64,
    last_issued: Option<SequenceNumber>,
}

impl<P: RecordProcessor> TestDaemon<P> {
    /// A daemon for `processor`; checkpoint retries happen without waiting (6 attempts).
    ///
    /// ```
    /// use kcl_core::{from_fn, testing::TestDaemon};
    /// let mut daemon = TestDaemon::new(from_fn(|_, cp| {
    ///     let result = cp.checkpoint(); // throttled 6 times: then the error reaches the handler
    ///     assert!(result.is_err());
    ///     Ok(())
    /// }));
    /// daemon.initialize("shardId-000000000000");
    /// daemon.fail_next_checkpoints(["ThrottlingException"; 6]);
    /// let step = daemon.process_payloads(["a"]);
    /// // 6 throttled attempts, then the default strategy's checkpoint of the handled batch.
    /// assert_eq!(step.checkpoints.len(), 7);
    /// assert!(daemon.stored_checkpoint().is_some());
    /// ```
    pub fn new(processor: P) -> Self {
        Self::with_retry(processor, RetryPolicy::immediate(6))
    }

    /// A daemon whose runtime retries checkpoints with `retry`.
    ///
    /// ```
    /// use kcl_core::{from_fn, testing::TestDaemon, RetryPolicy};
    /// let processor = from_fn(|_, cp| {
    ///     let _ = cp.checkpoint(); // two throttled attempts, then the error (ignored here)
    ///     Ok(())
    /// });
    /// let mut daemon = TestDaemon::with_retry(processor, RetryPolicy::immediate(2));
    /// daemon.initialize("shardId-000000000000");
    /// daemon.fail_next_checkpoints(["ThrottlingException"; 3]);
    /// // 2 attempts by the handler; the runtime's checkpoint after the batch: throttled, then stored.
    /// assert_eq!(daemon.process_payloads(["a"]).checkpoints.len(), 4);
    /// ```
    pub fn with_retry(processor: P, retry: RetryPolicy) -> Self {
        Self::with_settings(processor, retry, CheckpointStrategy::default())
    }

    /// A daemon whose runtime checkpoints by itself with `strategy` (retries without waiting).
    ///
    /// ```
    /// use kcl_core::{from_fn, testing::TestDaemon, CheckpointStrategy};
    /// let mut daemon = TestDaemon::with_strategy(from_fn(|_, _| Ok(())), CheckpointStrategy::every_records(3));
    /// daemon.initialize("shardId-000000000000");
    /// assert!(daemon.process_payloads(["a", "b"]).checkpoints.is_empty());
    /// assert_eq!(daemon.process_payloads(["c"]).checkpoints.len(), 1);
    /// ```
    pub fn with_strategy(processor: P, strategy: CheckpointStrategy) -> Self {
        Self::with_settings(processor, RetryPolicy::immediate(6), strategy)
    }

    /// A daemon whose runtime handles failed batches with `policy` (checkpoint retries without
    /// waiting, the default strategy).
    ///
    /// ```
    /// use std::time::Duration;
    /// use kcl_core::{from_fn, testing::TestDaemon, Error, FailurePolicy};
    /// let processor = from_fn(|_, _| Err(Error::msg("always failing")));
    /// let policy = FailurePolicy::exit().attempts(2).backoff(Duration::ZERO, Duration::ZERO);
    /// let mut daemon = TestDaemon::with_failure_policy(processor, policy);
    /// daemon.initialize("shardId-000000000000");
    /// let step = daemon.process_payloads(["x"]);
    /// assert_eq!(step.status, None, "exit: no status, the process ends");
    /// assert!(daemon.exit_reason().unwrap().contains("always failing"));
    /// ```
    pub fn with_failure_policy(processor: P, policy: FailurePolicy) -> Self {
        TestDaemon::from_settings(
            processor,
            Settings {
                retry: RetryPolicy::immediate(6),
                strategy: CheckpointStrategy::default(),
                failure: policy,
                deadline: None,
                signal_grace: None,
            },
        )
    }

    /// A daemon for a configured runtime: its strategy, failure policy and checkpoint retries
    /// (with their real waits).
    ///
    /// ```
    /// use std::time::Duration;
    /// use kcl_core::{from_fn, testing::TestDaemon, CheckpointStrategy, FailurePolicy, RetryPolicy, Runtime};
    /// let runtime = Runtime::new(from_fn(|_, _| Ok(())))
    ///     .checkpoint_strategy(CheckpointStrategy::every_records(2))
    ///     .failure_policy(FailurePolicy::skip().backoff(Duration::ZERO, Duration::ZERO))
    ///     .checkpoint_retry(RetryPolicy::immediate(2));
    /// let mut daemon = TestDaemon::from_runtime(runtime);
    /// daemon.initialize("shardId-000000000000");
    /// assert!(daemon.process_payloads(["a"]).checkpoints.is_empty());
    /// assert_eq!(daemon.process_payloads(["b"]).checkpoints.len(), 1);
    /// ```
    pub fn from_runtime(runtime: Runtime<P>) -> Self {
        let (processor, settings) = runtime.into_parts();
        TestDaemon::from_settings(processor, settings)
    }

    fn with_settings(processor: P, retry: RetryPolicy, strategy: CheckpointStrategy) -> Self {
        let failure = FailurePolicy::default().backoff(Duration::ZERO, Duration::ZERO);
        TestDaemon::from_settings(
            processor,
            Settings {
                retry,
                strategy,
                failure,
                deadline: None,
                signal_grace: None,
            },
        )
    }

    fn from_settings(processor: P, settings: Settings) -> Self {
        TestDaemon {
            engine: Engine::new(processor, settings),
            daemon: FakeDaemon::default(),
            daemon_lines: Vec::new(),
            next_sequence: 1,
            last_issued: None,
        }
    }

    /// Sends `initialize` for a fresh lease (`TRIM_HORIZON`).
    ///
    /// ```
    /// use kcl_core::{from_fn, testing::TestDaemon};
    /// let mut daemon = TestDaemon::new(from_fn(|_, _| Ok(())));
    /// let step = daemon.initialize("shardId-000000000000");
    /// assert_eq!(step.status.as_deref(), Some("initialize"));
    /// assert!(daemon.daemon_lines()[0].contains(r#""sequenceNumber":"TRIM_HORIZON""#));
    /// assert_eq!(daemon.stored_checkpoint(), None);
    /// ```
    pub fn initialize(&mut self, shard_id: &str) -> Step {
        self.initialize_at(shard_id, StartingPosition::TrimHorizon)
    }

    /// Sends `initialize` resuming from `starting_position`.
    ///
    /// A checkpoint position is stored as the lease's checkpoint; the daemon then refuses
    /// checkpoints below it.
    ///
    /// ```
    /// use kcl_core::{from_fn, Position, StartingPosition};
    /// use kcl_core::testing::{sequence_number, StoredCheckpoint, TestDaemon};
    /// let mut daemon = TestDaemon::new(from_fn(|_, cp| Ok(cp.checkpoint_raw("1", None)?)));
    /// let resumed = Position::new(sequence_number(0), 0);
    /// daemon.initialize_at("shardId-000000000000", StartingPosition::Checkpoint(resumed.clone()));
    /// assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::At(resumed)));
    /// let step = daemon.process_payloads(["a"]);
    /// assert_eq!(step.checkpoints[0].error.as_deref(), Some("IllegalArgumentException"));
    /// ```
    pub fn initialize_at(&mut self, shard_id: &str, starting_position: StartingPosition) -> Step {
        if let Some(position) = starting_position.checkpoint() {
            self.daemon.lease = Lease::new(ExtendedSequenceNumber::from(position));
        }
        self.send(DaemonMessage::Initialize(Initialize {
            shard_id: shard_id.to_owned(),
            starting_position,
        }))
    }

    /// A record with the next test sequence number (56 digits), partition key `pk-N` and an
    /// arrival time; it is not sent.
    ///
    /// ```
    /// use kcl_core::{from_fn, testing::{sequence_number, TestDaemon}};
    /// let mut daemon = TestDaemon::new(from_fn(|_, _| Ok(())));
    /// let first = daemon.next_record("a");
    /// let second = daemon.next_record("b");
    /// assert_eq!(first.sequence_number(), &sequence_number(1));
    /// assert!(second.position() > first.position());
    /// assert_eq!(second.partition_key(), "pk-2");
    /// assert_eq!(daemon.delivered(), None);
    /// ```
    pub fn next_record(&mut self, payload: impl AsRef<[u8]>) -> Record {
        let n = self.next_sequence;
        self.next_sequence += 1;
        // Always after the records made before and after the lease's resumed checkpoint.
        let floor = self.last_issued.clone().max(
            self.daemon
                .lease
                .delivered()
                .map(|d| d.sequence_number().clone()),
        );
        let mut sequence = sequence_number(n);
        if let Some(floor) = floor {
            if sequence <= floor {
                sequence = successor(&floor);
            }
        }
        self.last_issued = Some(sequence.clone());
        Record::new(
            payload.as_ref(),
            format!("pk-{n}"),
            Position::new(sequence, 0),
        )
        .with_arrival_millis(1_700_000_000_000 + n as i64)
    }

    /// Sends one `processRecords` with a record per payload (see [`next_record`](Self::next_record)).
    ///
    /// ```
    /// use kcl_core::{from_fn, Position, testing::{sequence_number, TestDaemon}};
    /// let mut daemon = TestDaemon::new(from_fn(|_, _| Ok(())));
    /// daemon.initialize("shardId-000000000000");
    /// let step = daemon.process_payloads(["a", "b", "c"]);
    /// assert_eq!(step.status.as_deref(), Some("processRecords"));
    /// assert_eq!(daemon.delivered(), Some(&Position::new(sequence_number(3), 0)));
    /// ```
    pub fn process_payloads<I>(&mut self, payloads: I) -> Step
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let records: Vec<Record> = payloads.into_iter().map(|p| self.next_record(p)).collect();
        self.process_records(records, Some(0))
    }

    /// Sends one `processRecords` with these records and lag.
    ///
    /// For example, two user records of one KPL aggregate:
    ///
    /// ```
    /// use kcl_core::{from_fn, Position, Record, testing::{StoredCheckpoint, TestDaemon}};
    /// let mut daemon = TestDaemon::new(from_fn(|batch, cp| Ok(cp.checkpoint_at(batch.last().unwrap())?)));
    /// daemon.initialize("shardId-000000000000");
    /// let records = vec![
    ///     Record::new("a", "k", Position::new("100", 0)),
    ///     Record::new("b", "k", Position::new("100", 1)),
    /// ];
    /// daemon.process_records(records, Some(5_000));
    /// assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::At(Position::new("100", 1))));
    /// ```
    pub fn process_records(
        &mut self,
        records: Vec<Record>,
        millis_behind_latest: Option<u64>,
    ) -> Step {
        let records: Vec<WireRecord> = records
            .iter()
            .map(|record| {
                WireRecord::new(
                    record.data(),
                    record.partition_key(),
                    record.position(),
                    record.approximate_arrival_millis(),
                )
            })
            .collect();
        self.send(DaemonMessage::ProcessRecords(ProcessRecordsMessage {
            records,
            millis_behind_latest,
        }))
    }

    /// Sends `leaseLost`.
    ///
    /// ```
    /// use kcl_core::{from_fn, testing::TestDaemon};
    /// let mut daemon = TestDaemon::new(from_fn(|_, _| Ok(())));
    /// daemon.initialize("shardId-000000000000");
    /// daemon.process_payloads(["a"]);
    /// let step = daemon.lease_lost();
    /// assert_eq!(step.status.as_deref(), Some("leaseLost"));
    /// assert!(step.checkpoints.is_empty()); // nothing can be checkpointed any more
    /// ```
    pub fn lease_lost(&mut self) -> Step {
        self.send(DaemonMessage::LeaseLost)
    }

    /// Sends `shardEnded`.
    ///
    /// ```
    /// use kcl_core::{from_fn, testing::{StoredCheckpoint, TestDaemon}};
    /// let mut daemon = TestDaemon::new(from_fn(|_, _| Ok(())));
    /// daemon.initialize("shardId-000000000000");
    /// daemon.process_payloads(["a"]);
    /// let step = daemon.shard_ended();
    /// assert_eq!(step.checkpoints[0].sequence_number, None); // the default hook's null checkpoint
    /// assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::ShardEnd));
    /// ```
    pub fn shard_ended(&mut self) -> Step {
        self.send(DaemonMessage::ShardEnded)
    }

    /// Sends `shutdownRequested`.
    ///
    /// ```
    /// use kcl_core::{from_fn, testing::{StoredCheckpoint, TestDaemon}};
    /// let mut daemon = TestDaemon::new(from_fn(|_, _| Ok(())));
    /// daemon.initialize("shardId-000000000000");
    /// daemon.process_payloads(["a", "b"]);
    /// let step = daemon.shutdown_requested();
    /// assert_eq!(step.status.as_deref(), Some("shutdownRequested"));
    /// let last = daemon.delivered().unwrap().clone();
    /// assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::At(last)));
    /// ```
    pub fn shutdown_requested(&mut self) -> Step {
        self.send(DaemonMessage::ShutdownRequested)
    }

    /// Sends a KCL-Java 1.x `shutdown` with this reason: `TERMINATE` (handled as shard ended),
    /// `ZOMBIE` (lease lost), or the 2.x names `SHARD_END`, `LEASE_LOST`, `REQUESTED`; any other
    /// text is handled as a lost lease.
    ///
    /// ```
    /// use kcl_core::{from_fn, testing::{StoredCheckpoint, TestDaemon}};
    /// let mut daemon = TestDaemon::new(from_fn(|_, _| Ok(())));
    /// daemon.initialize("shardId-000000000000");
    /// daemon.process_payloads(["a"]);
    /// let step = daemon.legacy_shutdown("TERMINATE"); // handled like shardEnded
    /// assert_eq!(step.status.as_deref(), Some("shutdown"));
    /// assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::ShardEnd));
    /// ```
    pub fn legacy_shutdown(&mut self, reason: &str) -> Step {
        let reason = match reason {
            "TERMINATE" | "SHARD_END" => ShutdownReason::Terminate,
            "ZOMBIE" | "LEASE_LOST" => ShutdownReason::Zombie,
            "REQUESTED" => ShutdownReason::Requested,
            other => ShutdownReason::Other(other.to_owned()),
        };
        self.send(DaemonMessage::Shutdown(reason))
    }

    /// Sends any daemon message.
    ///
    /// ```
    /// use kcl_core::message::{DaemonMessage, ShutdownReason};
    /// use kcl_core::{from_fn, testing::TestDaemon};
    /// let mut daemon = TestDaemon::new(from_fn(|_, _| Ok(())));
    /// daemon.initialize("shardId-000000000000");
    /// let step = daemon.send(DaemonMessage::Shutdown(ShutdownReason::Zombie));
    /// assert_eq!(step.status.as_deref(), Some("shutdown"));
    /// assert_eq!(daemon.daemon_lines()[1], r#"{"action":"shutdown","reason":"ZOMBIE"}"#);
    /// ```
    pub fn send(&mut self, message: DaemonMessage) -> Step {
        self.send_line(&message.to_json())
    }

    /// Sends a raw line (it goes through the same parser as stdin input).
    ///
    /// ```
    /// use kcl_core::{from_fn, testing::{Step, TestDaemon}};
    /// let mut daemon = TestDaemon::new(from_fn(|_, _| Ok(())));
    /// assert_eq!(daemon.send_line("not json"), Step::default()); // skipped: no status
    /// let step = daemon.send_line(r#"{"action":"wave","extra":true}"#);
    /// assert_eq!(step.status.as_deref(), Some("wave")); // unknown, but acknowledged
    /// ```
    pub fn send_line(&mut self, line: &str) -> Step {
        self.daemon_lines.push(line.to_owned());
        let parsed = parse_line(line.as_bytes());
        match &parsed {
            ParsedLine::Message(message) => self.daemon.lease.sending(message),
            _ => self.daemon.lease.sending_unknown(),
        }
        self.daemon.step = Step::default();
        // The same two paths as a real run: the fast scanner for the daemon's own form of
        // `processRecords`, the general parser for everything else.
        let handled = match crate::scan::scan_process_records(line.as_bytes()) {
            Some(batch) if line.as_bytes().starts_with(crate::scan::PREFIX) => {
                self.engine.handle_batch(batch, &mut self.daemon)
            }
            _ => self.engine.handle(parsed, &mut self.daemon),
        };
        if let Err(error) = handled {
            panic!("the in-memory channel cannot fail: {error}");
        }
        std::mem::take(&mut self.daemon.step)
    }

    /// Makes the next checkpoint requests fail with these error names, in order (after them,
    /// requests are judged like the real daemon would).
    ///
    /// ```
    /// # use kcl_core::{from_fn, testing::TestDaemon};
    /// let mut daemon = TestDaemon::new(from_fn(|_, cp| Ok(cp.checkpoint()?)));
    /// daemon.initialize("shardId-000000000000");
    /// daemon.fail_next_checkpoints(["KinesisClientLibDependencyException"]);
    /// let step = daemon.process_payloads(["x"]);
    /// assert_eq!(step.checkpoints.len(), 2); // retried once
    /// ```
    pub fn fail_next_checkpoints<I>(&mut self, errors: I)
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.reply_next_checkpoints(errors.into_iter().map(|e| Err(e.into())));
    }

    /// Chooses the replies to the next checkpoint requests, in order: `Ok(())` is a success (the
    /// position is stored if the daemon would store it), `Err(name)` an error with that exception
    /// name. After them, requests are judged like the real daemon would.
    ///
    /// ```
    /// # use kcl_core::{from_fn, testing::TestDaemon};
    /// let mut daemon = TestDaemon::new(from_fn(|_, cp| Ok(cp.checkpoint()?)));
    /// daemon.initialize("shardId-000000000000");
    /// daemon.reply_next_checkpoints([Err("ThrottlingException"), Ok(())]);
    /// let step = daemon.process_payloads(["x"]);
    /// let errors: Vec<_> = step.checkpoints.iter().map(|c| c.error.as_deref()).collect();
    /// assert_eq!(errors, [Some("ThrottlingException"), None]);
    /// ```
    pub fn reply_next_checkpoints<I, E>(&mut self, replies: I)
    where
        I: IntoIterator<Item = Result<(), E>>,
        E: Into<String>,
    {
        self.daemon
            .scripted
            .extend(replies.into_iter().map(|reply| reply.err().map(Into::into)));
    }

    /// Why the processor's process would have ended (failure policy `exit`), if it would.
    pub fn exit_reason(&self) -> Option<&str> {
        self.engine.exit_reason()
    }

    /// The checkpoint the daemon has stored for the lease.
    ///
    /// ```
    /// use kcl_core::{from_fn, Position, testing::{sequence_number, StoredCheckpoint, TestDaemon}};
    /// let processor = from_fn(|batch, cp| Ok(cp.checkpoint_at(&batch.records()[0])?));
    /// let mut daemon = TestDaemon::with_strategy(processor, kcl_core::CheckpointStrategy::Manual);
    /// daemon.initialize("shardId-000000000000");
    /// assert_eq!(daemon.stored_checkpoint(), None);
    /// daemon.process_payloads(["a", "b"]);
    /// let first = Position::new(sequence_number(1), 0);
    /// assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::At(first)));
    /// ```
    pub fn stored_checkpoint(&self) -> Option<StoredCheckpoint> {
        self.daemon.stored()
    }

    /// The largest position delivered so far.
    ///
    /// ```
    /// use kcl_core::{from_fn, Position, testing::{sequence_number, TestDaemon}};
    /// let mut daemon = TestDaemon::new(from_fn(|_, _| Ok(())));
    /// daemon.initialize("shardId-000000000000");
    /// assert_eq!(daemon.delivered(), None);
    /// daemon.process_payloads(["a", "b"]);
    /// assert_eq!(daemon.delivered(), Some(&Position::new(sequence_number(2), 0)));
    /// ```
    pub fn delivered(&self) -> Option<&Position> {
        self.daemon.lease.delivered()
    }

    /// Every line the processor wrote, as compact JSON.
    ///
    /// ```
    /// use kcl_core::{from_fn, testing::TestDaemon};
    /// let mut daemon = TestDaemon::new(from_fn(|_, cp| Ok(cp.checkpoint()?)));
    /// daemon.initialize("shardId-000000000000");
    /// daemon.process_payloads(["a"]);
    /// assert_eq!(daemon.child_lines(), [
    ///     r#"{"action":"status","responseFor":"initialize"}"#,
    ///     r#"{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
    ///     r#"{"action":"status","responseFor":"processRecords"}"#,
    /// ]);
    /// ```
    pub fn child_lines(&self) -> &[String] {
        &self.daemon.child_lines
    }

    /// Every line sent to the processor.
    ///
    /// Checkpoint replies are not among them: the test daemon answers those directly.
    ///
    /// ```
    /// use kcl_core::{from_fn, testing::TestDaemon};
    /// let mut daemon = TestDaemon::new(from_fn(|_, cp| Ok(cp.checkpoint()?)));
    /// daemon.initialize("shardId-000000000000");
    /// daemon.process_payloads(["a"]);
    /// daemon.lease_lost();
    /// assert_eq!(daemon.daemon_lines().len(), 3);
    /// assert_eq!(daemon.daemon_lines()[2], r#"{"action":"leaseLost"}"#);
    /// ```
    pub fn daemon_lines(&self) -> &[String] {
        &self.daemon_lines
    }

    /// The processor, to inspect its state.
    ///
    /// ```
    /// # use kcl_core::{testing::TestDaemon, Batch, Checkpointer, RecordProcessor, Result};
    /// struct Sizes(Vec<usize>);
    /// impl RecordProcessor for Sizes {
    ///     fn process_records(&mut self, batch: &Batch, _: &mut Checkpointer<'_>) -> Result {
    ///         self.0.push(batch.len());
    ///         Ok(())
    ///     }
    /// }
    /// let mut daemon = TestDaemon::new(Sizes(Vec::new()));
    /// daemon.initialize("shardId-000000000000");
    /// daemon.process_payloads(["a", "b"]);
    /// daemon.process_payloads(["c"]);
    /// assert_eq!(daemon.processor().0, [2, 1]);
    /// ```
    pub fn processor(&self) -> &P {
        self.engine.processor()
    }

    /// The processor, mutably: to change its settings between actions.
    ///
    /// ```
    /// # use kcl_core::{testing::TestDaemon, Batch, Checkpointer, RecordProcessor, Result};
    /// struct Gate { open: bool }
    /// impl RecordProcessor for Gate {
    ///     fn process_records(&mut self, _: &Batch, cp: &mut Checkpointer<'_>) -> Result {
    ///         if self.open { cp.checkpoint()?; }
    ///         Ok(())
    ///     }
    /// }
    /// let mut daemon = TestDaemon::with_strategy(Gate { open: false }, kcl_core::CheckpointStrategy::Manual);
    /// daemon.initialize("shardId-000000000000");
    /// assert!(daemon.process_payloads(["a"]).checkpoints.is_empty());
    /// daemon.processor_mut().open = true;
    /// assert_eq!(daemon.process_payloads(["b"]).checkpoints.len(), 1);
    /// ```
    pub fn processor_mut(&mut self) -> &mut P {
        self.engine.processor_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::from_fn;

    #[test]
    fn successor_carries_digits() {
        assert_eq!(successor(&SequenceNumber::new("129")).as_str(), "130");
        assert_eq!(successor(&SequenceNumber::new("999")).as_str(), "1000");
    }

    #[test]
    fn records_after_a_resumed_checkpoint_come_after_it() {
        let resumed = Position::new(sequence_number(500), 2);
        let mut daemon = TestDaemon::new(from_fn(|_, cp| Ok(cp.checkpoint()?)));
        daemon.initialize_at("shardId-0", StartingPosition::Checkpoint(resumed.clone()));
        let first = daemon.next_record("a");
        let second = daemon.next_record("b");
        assert!(first.position() > &resumed);
        assert!(second.position() > first.position());
        let step = daemon.process_records(vec![first, second], None);
        assert_eq!(step.checkpoints[0].error, None);
    }

    #[test]
    fn legacy_shard_end_reason_may_checkpoint() {
        let mut daemon = TestDaemon::new(from_fn(|_, _| Ok(())));
        daemon.initialize("shardId-0");
        daemon.process_payloads(["TERMINATE"]);
        assert_eq!(
            daemon.legacy_shutdown("SHARD_END").checkpoints[0].error,
            None
        );
        assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::ShardEnd));
    }
}
