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
use crate::message::{
    parse_line, CheckpointReply, ChildMessage, DaemonMessage, Initialize, ProcessRecordsMessage,
    ShutdownReason, WireRecord,
};
use crate::position::{Position, SequenceNumber, StartingPosition};
use crate::processor::RecordProcessor;
use crate::record::Record;
use crate::runtime::Engine;
use crate::transport::{Reply, Transport};

/// 36 fixed digits; a 20-digit counter follows, giving real-length (56-digit) sequence numbers.
const SEQUENCE_PREFIX: &str = "495903382714902566085596925383615710";

/// The `n`-th test sequence number: 56 digits, increasing with `n`.
///
/// ```
/// let s = kcl_core::testing::sequence_number(1);
/// assert_eq!(s.as_str().len(), 56);
/// assert!(kcl_core::testing::sequence_number(2) > s);
/// ```
pub fn sequence_number(n: u64) -> SequenceNumber {
    SequenceNumber::new(format!("{SEQUENCE_PREFIX}{n:020}"))
}

/// What the daemon has stored as the lease's checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredCheckpoint {
    /// A record position.
    At(Position),
    /// The end of the shard: its children may start.
    ShardEnd,
}

/// One checkpoint request the processor made and the reply it got.
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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Checkpoint requests, in order, with their replies.
    pub checkpoints: Vec<CheckpointCall>,
    /// The `responseFor` of the status that ended the action (`None` if none was sent).
    pub status: Option<String>,
}

#[derive(Default)]
struct FakeDaemon {
    scripted: VecDeque<Option<String>>,
    reply: Option<CheckpointReply>,
    stored: Option<StoredCheckpoint>,
    delivered: Option<Position>,
    can_checkpoint: bool,
    at_shard_end: bool,
    step: Step,
    child_lines: Vec<String>,
}

impl FakeDaemon {
    /// The reply to a checkpoint request: a scripted one, or the Java daemon's judgement.
    fn decide(&mut self, sequence: Option<&str>, sub: Option<u64>) -> Option<String> {
        let target = sequence.map(|s| Position::new(s, sub.unwrap_or(0)));
        match self.scripted.pop_front() {
            Some(Some(error)) => return Some(error),
            Some(None) => {
                self.store(target);
                return None;
            }
            None => {}
        }
        if !self.can_checkpoint {
            return Some("InvalidStateException".into());
        }
        if let Some(target) = &target {
            let below_stored = match &self.stored {
                Some(StoredCheckpoint::At(stored)) => target < stored,
                Some(StoredCheckpoint::ShardEnd) => true,
                None => false,
            };
            let beyond_delivered = self.delivered.as_ref().is_none_or(|d| target > d);
            if !target.sequence_number().is_numeric() || below_stored || beyond_delivered {
                return Some("IllegalArgumentException".into());
            }
        }
        self.store(target);
        None
    }

    /// Stores a checkpoint as the daemon does: `None` means everything delivered, and during
    /// `shardEnded` the last delivered position means the end of the shard.
    fn store(&mut self, target: Option<Position>) {
        let reaches_end = target.is_none() || target.as_ref() == self.delivered.as_ref();
        if self.at_shard_end && reaches_end {
            self.stored = Some(StoredCheckpoint::ShardEnd);
        } else if let Some(position) = target.or_else(|| self.delivered.clone()) {
            self.stored = Some(StoredCheckpoint::At(position));
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
pub struct TestDaemon<P> {
    engine: Engine<P>,
    daemon: FakeDaemon,
    daemon_lines: Vec<String>,
    next_sequence: u64,
}

impl<P: RecordProcessor> TestDaemon<P> {
    /// A daemon for `processor`; checkpoint retries happen without waiting (6 attempts).
    pub fn new(processor: P) -> Self {
        Self::with_retry(processor, RetryPolicy::immediate(6))
    }

    /// A daemon whose runtime retries checkpoints with `retry`.
    pub fn with_retry(processor: P, retry: RetryPolicy) -> Self {
        TestDaemon {
            engine: Engine::new(processor, retry),
            daemon: FakeDaemon::default(),
            daemon_lines: Vec::new(),
            next_sequence: 1,
        }
    }

    /// Sends `initialize` for a fresh lease (`TRIM_HORIZON`).
    pub fn initialize(&mut self, shard_id: &str) -> Step {
        self.initialize_at(shard_id, StartingPosition::TrimHorizon)
    }

    /// Sends `initialize` resuming from `starting_position`.
    pub fn initialize_at(&mut self, shard_id: &str, starting_position: StartingPosition) -> Step {
        if let Some(position) = starting_position.checkpoint() {
            self.daemon.stored = Some(StoredCheckpoint::At(position.clone()));
            self.daemon.delivered = Some(position.clone());
        }
        self.send(DaemonMessage::Initialize(Initialize {
            shard_id: shard_id.to_owned(),
            starting_position,
        }))
    }

    /// A record with the next test sequence number (56 digits), partition key `pk-N` and an
    /// arrival time; it is not sent.
    pub fn next_record(&mut self, payload: impl AsRef<[u8]>) -> Record {
        let n = self.next_sequence;
        self.next_sequence += 1;
        Record::new(
            payload.as_ref().to_vec(),
            format!("pk-{n}"),
            Position::new(sequence_number(n), 0),
        )
        .with_arrival_millis(1_700_000_000_000 + n as i64)
    }

    /// Sends one `processRecords` with a record per payload (see [`next_record`](Self::next_record)).
    pub fn process_payloads<I>(&mut self, payloads: I) -> Step
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let records: Vec<Record> = payloads.into_iter().map(|p| self.next_record(p)).collect();
        self.process_records(records, Some(0))
    }

    /// Sends one `processRecords` with these records and lag.
    pub fn process_records(
        &mut self,
        records: Vec<Record>,
        millis_behind_latest: Option<u64>,
    ) -> Step {
        use base64::Engine as _;
        let records: Vec<WireRecord> = records
            .iter()
            .map(|record| WireRecord {
                data: Some(base64::engine::general_purpose::STANDARD.encode(record.data())),
                partition_key: record.partition_key().to_owned(),
                sequence_number: record.sequence_number().as_str().to_owned(),
                approximate_arrival_timestamp: record.approximate_arrival_millis(),
                sub_sequence_number: Some(record.sub_sequence_number()),
            })
            .collect();
        self.send(DaemonMessage::ProcessRecords(ProcessRecordsMessage {
            records,
            millis_behind_latest,
        }))
    }

    /// Sends `leaseLost`.
    pub fn lease_lost(&mut self) -> Step {
        self.send(DaemonMessage::LeaseLost)
    }

    /// Sends `shardEnded`.
    pub fn shard_ended(&mut self) -> Step {
        self.send(DaemonMessage::ShardEnded)
    }

    /// Sends `shutdownRequested`.
    pub fn shutdown_requested(&mut self) -> Step {
        self.send(DaemonMessage::ShutdownRequested)
    }

    /// Sends a KCL-Java 1.x `shutdown` with this reason (`TERMINATE` or `ZOMBIE`).
    pub fn legacy_shutdown(&mut self, reason: &str) -> Step {
        let reason = match reason {
            "TERMINATE" => ShutdownReason::Terminate,
            "ZOMBIE" => ShutdownReason::Zombie,
            "REQUESTED" => ShutdownReason::Requested,
            other => ShutdownReason::Other(other.to_owned()),
        };
        self.send(DaemonMessage::Shutdown(reason))
    }

    /// Sends any daemon message.
    pub fn send(&mut self, message: DaemonMessage) -> Step {
        self.send_line(&message.to_json())
    }

    /// Sends a raw line (it goes through the same parser as stdin input).
    pub fn send_line(&mut self, line: &str) -> Step {
        self.daemon_lines.push(line.to_owned());
        let parsed = parse_line(line.as_bytes());
        let action = match &parsed {
            crate::message::ParsedLine::Message(message) => message.action().to_owned(),
            crate::message::ParsedLine::UnknownAction(action)
            | crate::message::ParsedLine::Malformed { action, .. } => action.clone(),
            _ => String::new(),
        };
        if let crate::message::ParsedLine::Message(DaemonMessage::ProcessRecords(batch)) = &parsed {
            if let Some(last) = batch.records.last().map(WireRecord::position) {
                if self.daemon.delivered.as_ref() < Some(&last) {
                    self.daemon.delivered = Some(last);
                }
            }
        }
        self.daemon.can_checkpoint = matches!(
            action.as_str(),
            "processRecords" | "shutdownRequested" | "shardEnded"
        ) || line.contains("\"TERMINATE\"");
        self.daemon.at_shard_end = action == "shardEnded" || line.contains("\"TERMINATE\"");
        self.daemon.step = Step::default();
        if let Err(error) = self.engine.handle(parsed, &mut self.daemon) {
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
    /// position is stored whatever it is), `Err(name)` an error with that exception name. After
    /// them, requests are judged like the real daemon would.
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

    /// The checkpoint the daemon has stored for the lease.
    pub fn stored_checkpoint(&self) -> Option<StoredCheckpoint> {
        self.daemon.stored.clone()
    }

    /// The largest position delivered so far.
    pub fn delivered(&self) -> Option<&Position> {
        self.daemon.delivered.as_ref()
    }

    /// Every line the processor wrote, as compact JSON.
    pub fn child_lines(&self) -> &[String] {
        &self.daemon.child_lines
    }

    /// Every line sent to the processor.
    pub fn daemon_lines(&self) -> &[String] {
        &self.daemon_lines
    }

    /// The processor, to inspect its state.
    pub fn processor(&self) -> &P {
        self.engine.processor()
    }

    /// The processor, mutably.
    pub fn processor_mut(&mut self) -> &mut P {
        self.engine.processor_mut()
    }
}
