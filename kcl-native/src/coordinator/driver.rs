//! [`LeaseDriver`]: the blocking [`Driver`] of a shard worker thread. It judges each checkpoint
//! request with the project's one rule book of the daemon's judgement
//! ([`kcl_protocol::Lease`]: range checks, `SHARD_END` substitution, no write for an unchanged
//! value), then writes what that accepts through the lease's [`LeaseHandle`].

use kcl_core::RecordProcessor;
use kcl_core::engine::{Driver, Event, Handled, ShardEngine};
use kcl_protocol::message::{DaemonMessage, ProcessRecordsMessage, WireRecord};
use kcl_protocol::{CheckpointOutcome, DaemonError, ExtendedSequenceNumber, Lease, Position};
use tokio::runtime::Handle;

use super::LeaseHandle;

/// The [`Driver`] of one lease's [`ShardEngine`], for the shard worker's own OS thread (the
/// user's processor runs there, never on a runtime thread).
///
/// Tell it every event before the engine handles it ([`sending`](LeaseDriver::sending), or
/// hand the event through [`deliver`](LeaseDriver::deliver)): the judgement depends on what
/// was delivered and which action is in progress, exactly as the daemon's. A checkpoint the
/// judge accepts is written with [`LeaseHandle::checkpoint`] on the coordinator's runtime
/// (through [`Handle::block_on`], which must not be called from a runtime thread); a failed
/// write leaves the judge as it was, so the engine's retry is judged (and written) again.
///
/// ```
/// use kcl_core::engine::{Driver, Event};
/// use kcl_core::{Initialize, Position, Record, StartingPosition};
/// use kcl_lease::{Lease, LeaseStore, MemoryStore, Table, ops};
/// use kcl_native::coordinator::{Coordinator, CoordinatorConfig, LeaseDriver, LeaseEvent, Role};
/// use kcl_protocol::{DaemonError, ExtendedSequenceNumber as E};
/// use std::sync::Arc;
///
/// let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_time().build().unwrap();
/// let store = Arc::new(MemoryStore::new());
/// let (coordinator, handle) = runtime.block_on(async {
///     let lease = Lease::new("shardId-0", E::trim_horizon());
///     store.create_if_not_exists(&lease).await.unwrap();
///     store.update(Table::Lease, &ops::assign(&lease, "me")).await.unwrap();
///     let (coordinator, mut events) = Coordinator::start(store.clone(), CoordinatorConfig { role: Role::Follower, ..CoordinatorConfig::new("me") }).unwrap();
///     let Some(LeaseEvent::Acquired(handle)) = events.recv().await else { panic!() };
///     (coordinator, handle)
/// });
///
/// // The shard worker's thread (here: the main thread, outside the runtime).
/// let mut driver = LeaseDriver::new(handle, runtime.handle().clone());
/// driver.sending(&Event::Initialize(Initialize {
///     shard_id: "shardId-0".into(),
///     starting_position: StartingPosition::TrimHorizon,
/// }));
/// driver.sending(&Event::Records {
///     records: vec![Record::new("a", "k", Position::new("7", 0))],
///     millis_behind_latest: None,
/// });
/// assert_eq!(driver.checkpoint(Some(Position::new("8", 0))), Err(DaemonError::IllegalArgument));
/// assert_eq!(driver.checkpoint(None), Ok(())); // everything delivered: 7
/// assert_eq!(store.item(Table::Lease, "shardId-0").unwrap()["checkpoint"].as_s(), Some("7"));
/// runtime.block_on(coordinator.close());
/// ```
pub struct LeaseDriver {
    handle: LeaseHandle,
    runtime: Handle,
    judge: Lease,
}

impl std::fmt::Debug for LeaseDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseDriver")
            .field("handle", &self.handle)
            .field("last_checkpoint", self.last_checkpoint())
            .finish_non_exhaustive()
    }
}

impl LeaseDriver {
    /// A driver for the lease of `handle`, whose writes run on `runtime` (the coordinator's).
    /// The judge starts at the lease's checkpoint as acquired.
    pub fn new(handle: LeaseHandle, runtime: Handle) -> Self {
        let judge = Lease::new(handle.initial_checkpoint().clone());
        LeaseDriver {
            handle,
            runtime,
            judge,
        }
    }

    /// The lease's handle.
    pub fn handle(&self) -> &LeaseHandle {
        &self.handle
    }

    /// The checkpoint last stored (as judged and written).
    pub fn last_checkpoint(&self) -> &ExtendedSequenceNumber {
        self.judge.checkpointer().last()
    }

    /// Call before the engine handles `event`: the judge learns what is delivered and which
    /// action is in progress; a batch's payload bytes feed the lease's `throughputKBps`.
    pub fn sending(&mut self, event: &Event) {
        let message = match event {
            Event::Initialize(init) => DaemonMessage::Initialize(init.clone()),
            Event::Records { records, .. } => {
                let bytes: usize = records.iter().map(|record| record.data().len()).sum();
                self.handle.record_bytes(bytes as u64);
                // The judge needs only the largest position of the batch.
                let largest = records.iter().map(|record| record.position()).max();
                DaemonMessage::ProcessRecords(ProcessRecordsMessage {
                    records: largest
                        .map(|position| WireRecord::new(b"", "", position, None))
                        .into_iter()
                        .collect(),
                    millis_behind_latest: None,
                })
            }
            Event::LeaseLost => DaemonMessage::LeaseLost,
            Event::ShardEnded => DaemonMessage::ShardEnded,
            Event::ShutdownRequested => DaemonMessage::ShutdownRequested,
        };
        self.judge.sending(&message);
    }

    /// Hands `event` to `engine`, telling the judge first.
    pub fn deliver<P: RecordProcessor>(
        &mut self,
        engine: &mut ShardEngine<P>,
        event: Event,
    ) -> Handled {
        self.sending(&event);
        engine.handle(event, self)
    }
}

impl Driver for LeaseDriver {
    fn checkpoint(&mut self, position: Option<Position>) -> Result<(), DaemonError> {
        match &position {
            Some(position) => self.checkpoint_request(
                Some(position.sequence_number().as_str()),
                Some(i64::try_from(position.sub_sequence_number()).unwrap_or(i64::MAX)),
            ),
            None => self.checkpoint_request(None, None),
        }
    }
}

impl LeaseDriver {
    /// A checkpoint request as a MultiLangDaemon child sends it (`sequenceNumber`,
    /// `subSequenceNumber`, either may be null): judged like the daemon (a negative
    /// sub-sequence number, a value out of range or no checkpointer in this action are
    /// refused), and what is accepted written to the lease. `Ok` is the daemon's reply without
    /// an error.
    ///
    /// ```no_run
    /// # fn doc(driver: &mut kcl_native::LeaseDriver) {
    /// use kcl_protocol::DaemonError;
    /// assert_eq!(driver.checkpoint_request(Some("7"), Some(-1)), Err(DaemonError::IllegalArgument));
    /// # }
    /// ```
    pub fn checkpoint_request(
        &mut self,
        sequence: Option<&str>,
        sub_sequence: Option<i64>,
    ) -> Result<(), DaemonError> {
        let before = self.judge.clone();
        match self.judge.checkpoint(sequence, sub_sequence)? {
            CheckpointOutcome::Unchanged => Ok(()),
            CheckpointOutcome::Stored(value) => {
                let written = self.runtime.block_on(self.handle.checkpoint(value));
                if written.is_err() {
                    // Not stored: a retry must be judged as new.
                    self.judge = before;
                }
                written
            }
        }
    }
}
