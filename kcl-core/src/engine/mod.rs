//! The engine without the pipe: a shard's events in, checkpoint requests out, as typed values.
//!
//! [`Runtime::run`](crate::Runtime::run) drives the engine from the MultiLangDaemon's JSON
//! lines on stdin and stdout. Anything else that holds a shard lease can drive the *same*
//! engine, with the same hooks, checkpoint strategies, failure policies, stalls and deadlines,
//! and no JSON in between: it hands each [`Event`] to [`ShardEngine::handle`] and answers the
//! engine's checkpoint requests through a [`Driver`]. [`crate::testing::TestDaemon`] plays the
//! daemon's lines; a native worker (one `ShardEngine` per lease it holds) is another driver.
//!
//! Inside: `dispatch.rs` is the state machine (one action to one hook, the strategy after it),
//! `batch.rs` the handling of a batch's records (attempts, partial success, failure policies).
//!
//! A minimal in-memory driver, which stores every checkpoint it is asked for:
//!
//! ```
//! use kcl_core::engine::{Driver, Event, Handled};
//! use kcl_core::{from_fn, DaemonError, Initialize, Position, Record, Runtime, StartingPosition};
//!
//! #[derive(Default)]
//! struct InMemory {
//!     stored: Vec<Option<Position>>,
//! }
//!
//! impl Driver for InMemory {
//!     fn checkpoint(&mut self, position: Option<Position>) -> Result<(), DaemonError> {
//!         self.stored.push(position); // `None`: everything delivered so far
//!         Ok(())
//!     }
//! }
//!
//! let processor = from_fn(|batch, checkpointer| {
//!     for record in batch {
//!         assert!(!record.data().is_empty());
//!     }
//!     Ok(checkpointer.checkpoint()?)
//! });
//! let mut engine = Runtime::new(processor).shard_engine();
//! let mut driver = InMemory::default();
//! let init = Initialize {
//!     shard_id: "shardId-000000000000".into(),
//!     starting_position: StartingPosition::TrimHorizon,
//! };
//! assert_eq!(engine.handle(Event::Initialize(init), &mut driver), Handled::Done);
//! let records = vec![
//!     Record::new("a", "k", Position::new("1", 0)),
//!     Record::new("b", "k", Position::new("2", 0)),
//! ];
//! let batch = Event::Records { records, millis_behind_latest: Some(0) };
//! assert_eq!(engine.handle(batch, &mut driver), Handled::Done);
//! assert_eq!(driver.stored, vec![None]);
//! assert_eq!(engine.handle(Event::LeaseLost, &mut driver), Handled::Done);
//! ```

use std::io;

use kcl_protocol::message::{CheckpointReply, ChildMessage, DaemonMessage, ParsedLine};
use kcl_protocol::{DaemonError, Position};

use crate::RecordProcessor;
use crate::message::Initialize;
use crate::record::Record;
use crate::transport::{Reply, Transport};

mod batch;
mod dispatch;

pub(crate) use dispatch::Engine;

/// One event of a shard lease, as whoever holds the lease delivers it.
#[derive(Debug)]
pub enum Event {
    /// The lease was taken: where processing resumes.
    Initialize(Initialize),
    /// A batch of records, already decoded, in shard order.
    Records {
        /// The records (payloads as bytes, partition keys, positions, arrival times).
        records: Vec<Record>,
        /// How far behind the tip of the stream the batch was read, if known.
        millis_behind_latest: Option<u64>,
    },
    /// Another worker holds the lease now; nothing can be checkpointed.
    LeaseLost,
    /// Every record of the shard was delivered; the end of the shard must be checkpointed.
    ShardEnded,
    /// The worker shuts down or hands the lease over; a last checkpoint is welcome.
    ShutdownRequested,
}

/// What the engine needs from whoever holds the lease: its checkpoints stored.
pub trait Driver {
    /// Stores a checkpoint for the lease (`None`: everything delivered so far; at the end of a
    /// shard, the end of the shard). `Err` is the KCL's answer: retryable for
    /// [`DaemonError::Throttling`] and [`DaemonError::Dependency`] (the engine retries per its
    /// retry policy), final for [`DaemonError::Shutdown`] (the lease is gone).
    fn checkpoint(&mut self, position: Option<Position>) -> Result<(), DaemonError>;
}

/// How the handling of one event ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handled {
    /// The event was handled (the daemon would now get its status).
    Done,
    /// The failure policy `exit` fired: stop this shard's processing and end the worker, as the
    /// runtime ends the process. The reason names the shard, the records and the cause.
    Exit(String),
}

/// The engine of one shard lease: the user's processor with its runtime settings, driven by
/// typed events. Made by [`Runtime::shard_engine`](crate::Runtime::shard_engine).
pub struct ShardEngine<P: RecordProcessor> {
    engine: Engine<P>,
}

impl<P: RecordProcessor> ShardEngine<P> {
    pub(crate) fn new(engine: Engine<P>) -> Self {
        ShardEngine { engine }
    }

    /// Handles one event: calls the processor's hooks, applies the checkpoint strategy and the
    /// failure policy, and asks `driver` to store each checkpoint on the way.
    pub fn handle(&mut self, event: Event, driver: &mut dyn Driver) -> Handled {
        let mut transport = DriverTransport {
            driver,
            reply: None,
        };
        let message = match event {
            Event::Records {
                records,
                millis_behind_latest,
            } => {
                self.engine
                    .handle_decoded(records, millis_behind_latest, &mut transport);
                return self.handled();
            }
            Event::Initialize(init) => DaemonMessage::Initialize(init),
            Event::LeaseLost => DaemonMessage::LeaseLost,
            Event::ShardEnded => DaemonMessage::ShardEnded,
            Event::ShutdownRequested => DaemonMessage::ShutdownRequested,
        };
        // The in-memory transport cannot fail: a write is a call.
        let _ = self
            .engine
            .handle(ParsedLine::Message(message), &mut transport);
        self.handled()
    }

    /// The processor (to read what it gathered).
    pub fn processor(&self) -> &P {
        self.engine.processor()
    }

    fn handled(&self) -> Handled {
        match self.engine.exit_reason() {
            Some(reason) => Handled::Exit(reason.to_owned()),
            None => Handled::Done,
        }
    }
}

/// The engine's channel, answered by a [`Driver`]: a checkpoint request is a call, its reply
/// the call's result; statuses need no answer.
struct DriverTransport<'a> {
    driver: &'a mut dyn Driver,
    reply: Option<Reply>,
}

impl Transport for DriverTransport<'_> {
    fn send(&mut self, message: &ChildMessage) -> io::Result<()> {
        if let ChildMessage::Checkpoint {
            sequence_number,
            sub_sequence_number,
        } = message
        {
            let position = sequence_number
                .as_deref()
                .map(|sequence| Position::new(sequence, sub_sequence_number.unwrap_or(0)));
            let error = self.driver.checkpoint(position).err();
            self.reply = Some(Reply::Checkpoint(CheckpointReply {
                sequence_number: sequence_number.clone(),
                sub_sequence_number: *sub_sequence_number,
                error: error.map(|e| e.java_name().to_owned()),
            }));
        }
        Ok(())
    }

    fn recv_reply(&mut self) -> io::Result<Reply> {
        Ok(self.reply.take().unwrap_or(Reply::Eof))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        CheckpointError, CheckpointStrategy, FailurePolicy, Runtime, StartingPosition, from_fn,
    };

    /// Answers checkpoints from a script, then stores them; records what it was asked.
    #[derive(Default)]
    struct Scripted {
        replies: Vec<Result<(), DaemonError>>,
        asked: Vec<Option<Position>>,
    }

    impl Driver for Scripted {
        fn checkpoint(&mut self, position: Option<Position>) -> Result<(), DaemonError> {
            self.asked.push(position);
            if self.replies.is_empty() {
                Ok(())
            } else {
                self.replies.remove(0)
            }
        }
    }

    fn init() -> Event {
        Event::Initialize(Initialize {
            shard_id: "shardId-000000000007".into(),
            starting_position: StartingPosition::TrimHorizon,
        })
    }

    fn records(range: std::ops::RangeInclusive<u64>) -> Event {
        Event::Records {
            records: range
                .map(|n| Record::new(n.to_string(), "k", Position::new(n.to_string(), 0)))
                .collect(),
            millis_behind_latest: None,
        }
    }

    #[test]
    fn checkpoints_by_strategy_retries_throttling_and_ends_the_shard() {
        let processor = from_fn(|_, _| Ok(()));
        let mut engine = Runtime::new(processor)
            .checkpoint_strategy(CheckpointStrategy::EveryBatch)
            .shard_engine();
        let mut driver = Scripted {
            replies: vec![Err(DaemonError::Throttling)],
            ..Scripted::default()
        };
        assert_eq!(engine.handle(init(), &mut driver), Handled::Done);
        assert_eq!(engine.handle(records(1..=3), &mut driver), Handled::Done);
        // The strategy checkpoints the batch's last record; the throttled request is retried.
        let three = Some(Position::new("3", 0));
        assert_eq!(driver.asked, vec![three.clone(), three]);
        assert_eq!(engine.handle(Event::ShardEnded, &mut driver), Handled::Done);
        assert_eq!(driver.asked.last(), Some(&None), "the end of the shard");
    }

    #[test]
    fn a_lost_lease_is_final() {
        let processor = from_fn(|_, checkpointer| match checkpointer.checkpoint() {
            Err(CheckpointError::Shutdown) => Ok(()),
            other => Ok(other?),
        });
        let mut engine = Runtime::new(processor).shard_engine();
        let mut driver = Scripted {
            replies: vec![Err(DaemonError::Shutdown)],
            ..Scripted::default()
        };
        engine.handle(init(), &mut driver);
        assert_eq!(engine.handle(records(1..=1), &mut driver), Handled::Done);
        assert_eq!(driver.asked, vec![None], "ShutdownException is not retried");
    }

    #[test]
    fn the_exit_policy_is_reported() {
        let processor = from_fn(|batch, _| {
            if batch.iter().next().is_some_and(|r| r.data() == b"bad") {
                return Err(crate::Error::msg("poison"));
            }
            Ok(())
        });
        let mut engine = Runtime::new(processor)
            .failure_policy(FailurePolicy::exit())
            .shard_engine();
        let mut driver = Scripted::default();
        engine.handle(init(), &mut driver);
        assert_eq!(engine.handle(records(1..=2), &mut driver), Handled::Done);
        let poison = Event::Records {
            records: vec![Record::new("bad", "k", Position::new("3", 0))],
            millis_behind_latest: None,
        };
        match engine.handle(poison, &mut driver) {
            Handled::Exit(reason) => assert!(reason.contains("poison"), "{reason}"),
            Handled::Done => panic!("the exit policy must be reported"),
        }
    }
}
