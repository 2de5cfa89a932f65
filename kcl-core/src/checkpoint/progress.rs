//! What the engine knows about a shard's progress: what was delivered, handled, claimed and
//! stored, and where the shard stalled.

use kcl_protocol::Position;

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
    pub(super) fn claim(&mut self, position: Position) {
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
