//! The daemon's judgement of a lease's checkpoints (the KCL's `ShardRecordProcessorCheckpointer`):
//! what range a checkpoint may take, the `SHARD_END` substitution at the end of a shard, and no
//! write for an unchanged value. Every daemon stand-in (`TestDaemon`, `kcl run`, the benchmark
//! driver) judges through it.

use std::cmp::Ordering;

use crate::extended::ExtendedSequenceNumber;
use crate::message::{DaemonMessage, Grant};
use crate::position::Position;
use crate::vocab::DaemonError;

/// One lease as the daemon runs it: what it has delivered, which action is in progress and so
/// whether the child holds a checkpointer, and the lease's [`LeaseCheckpointer`]. Every daemon
/// stand-in tells it each message it sends ([`Lease::sending`]) and asks it about each
/// checkpoint request ([`Lease::checkpoint`]).
///
/// ```
/// use kcl_protocol::message::{DaemonMessage, Initialize, ProcessRecordsMessage, WireRecord};
/// use kcl_protocol::{CheckpointOutcome, DaemonError, ExtendedSequenceNumber as E, Lease, StartingPosition};
/// let mut lease = Lease::new(E::trim_horizon());
/// lease.sending(&DaemonMessage::Initialize(Initialize {
///     shard_id: "shardId-000000000000".into(),
///     starting_position: StartingPosition::TrimHorizon,
/// }));
/// assert_eq!(lease.checkpoint(None, None), Err(DaemonError::InvalidState)); // not during initialize
/// let record = WireRecord::new(b"payload", "k", &kcl_protocol::Position::new("7", 0), None);
/// lease.sending(&DaemonMessage::ProcessRecords(ProcessRecordsMessage { records: vec![record], millis_behind_latest: None }));
/// assert_eq!(lease.checkpoint(None, None), Ok(CheckpointOutcome::Stored(E::new("7", 0))));
/// lease.sending(&DaemonMessage::ShardEnded);
/// assert_eq!(lease.checkpoint(None, None), Ok(CheckpointOutcome::Stored(E::shard_end())));
/// ```
#[derive(Clone, Debug)]
pub struct Lease {
    checkpointer: LeaseCheckpointer,
    delivered: Option<Position>,
    grant: Grant,
}

impl Lease {
    /// A lease whose stored checkpoint is `initial` (a sentinel for a fresh lease); no action in
    /// progress. Records up to a resumed checkpoint count as delivered: a batch below it does not
    /// lower the bound.
    pub fn new(initial: ExtendedSequenceNumber) -> Self {
        Lease {
            delivered: initial.position(),
            checkpointer: LeaseCheckpointer::new(initial),
            grant: Grant::None,
        }
    }

    /// Call before sending `message` to the child: the action it starts grants or withdraws the
    /// checkpointer ([`DaemonMessage::grant`]); a batch raises the bound to its largest record
    /// (never lowers it); the shard's end moves the bound to `SHARD_END`.
    pub fn sending(&mut self, message: &DaemonMessage) {
        if let DaemonMessage::ProcessRecords(batch) = message {
            if let Some(last) = batch.records.iter().map(|r| r.position()).max() {
                if self.delivered.as_ref() < Some(&last) {
                    self.checkpointer
                        .records_delivered(ExtendedSequenceNumber::from(&last));
                    self.delivered = Some(last);
                }
            }
        }
        self.grant = message.grant();
        if self.grant == Grant::AtShardEnd && !self.checkpointer.largest_permitted().is_shard_end()
        {
            self.checkpointer.shard_ended();
        }
    }

    /// Call before sending a line that is no message this model knows (an unknown action, or a
    /// line the child cannot parse): no checkpointer while it is in progress.
    pub fn sending_unknown(&mut self) {
        self.grant = Grant::None;
    }

    /// Judges a checkpoint request made while the last message sent is in progress: refused
    /// with [`DaemonError::InvalidState`] when that action gives no checkpointer, else as
    /// [`LeaseCheckpointer::checkpoint`] judges it.
    pub fn checkpoint(
        &mut self,
        sequence_number: Option<&str>,
        sub_sequence_number: Option<i64>,
    ) -> Result<CheckpointOutcome, DaemonError> {
        if self.grant == Grant::None {
            return Err(DaemonError::InvalidState);
        }
        self.checkpointer
            .checkpoint(sequence_number, sub_sequence_number)
    }

    /// Whether the action in progress gives the child a checkpointer.
    pub fn grants_checkpointer(&self) -> bool {
        self.grant != Grant::None
    }

    /// The lease's checkpointer: the last stored checkpoint and the current bound.
    pub fn checkpointer(&self) -> &LeaseCheckpointer {
        &self.checkpointer
    }

    /// The largest position delivered so far, if any.
    pub fn delivered(&self) -> Option<&Position> {
        self.delivered.as_ref()
    }
}

/// What an accepted checkpoint did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointOutcome {
    /// The value was written to the lease table (this one; `SHARD_END` at the end of a shard).
    Stored(ExtendedSequenceNumber),
    /// Accepted without a write: the value equals the last checkpoint.
    Unchanged,
}

/// The daemon's per-lease checkpointer (the KCL's `ShardRecordProcessorCheckpointer`), for
/// drivers that answer checkpoint requests themselves.
///
/// ```
/// use kcl_protocol::{CheckpointOutcome, DaemonError, ExtendedSequenceNumber as E, LeaseCheckpointer};
/// let mut cp = LeaseCheckpointer::new(E::trim_horizon());
/// cp.records_delivered(E::new("100", 0)); // before `processRecords` is sent
/// assert_eq!(cp.checkpoint(Some("50"), None), Ok(CheckpointOutcome::Stored(E::new("50", 0))));
/// assert_eq!(cp.checkpoint(Some("40"), None), Err(DaemonError::IllegalArgument)); // below the last
/// assert_eq!(cp.checkpoint(Some("101"), None), Err(DaemonError::IllegalArgument)); // beyond delivered
/// assert_eq!(cp.checkpoint(Some("50"), Some(0)), Ok(CheckpointOutcome::Unchanged));
/// cp.shard_ended(); // before `shardEnded` is sent
/// assert_eq!(cp.checkpoint(None, None), Ok(CheckpointOutcome::Stored(E::shard_end())));
/// ```
#[derive(Clone, Debug)]
pub struct LeaseCheckpointer {
    last: ExtendedSequenceNumber,
    largest_permitted: ExtendedSequenceNumber,
    at_shard_end: Option<ExtendedSequenceNumber>,
}

impl LeaseCheckpointer {
    /// A checkpointer for a lease whose stored checkpoint is `initial` (what `initialize`
    /// carries); nothing delivered yet.
    pub fn new(initial: ExtendedSequenceNumber) -> Self {
        LeaseCheckpointer {
            largest_permitted: initial.clone(),
            last: initial,
            at_shard_end: None,
        }
    }

    /// Raises the upper bound to the largest record of the batch about to be sent.
    pub fn records_delivered(&mut self, largest: ExtendedSequenceNumber) {
        self.largest_permitted = largest;
    }

    /// Enters the end of the shard: the bound becomes `SHARD_END`, and a checkpoint at the last
    /// delivered record (or a null one) stores `SHARD_END`.
    pub fn shard_ended(&mut self) {
        let last_delivered = std::mem::replace(
            &mut self.largest_permitted,
            ExtendedSequenceNumber::shard_end(),
        );
        self.at_shard_end = Some(last_delivered);
    }

    /// The last stored checkpoint.
    pub fn last(&self) -> &ExtendedSequenceNumber {
        &self.last
    }

    /// The largest value a checkpoint may take now.
    pub fn largest_permitted(&self) -> &ExtendedSequenceNumber {
        &self.largest_permitted
    }

    /// Judges a checkpoint request: `Err` is the exception whose simple name goes in the reply's
    /// `error`.
    ///
    /// * `None` checkpoints the largest permitted value (everything delivered; `SHARD_END`
    ///   during `shardEnded`); a sub-sequence number given with it is ignored.
    /// * A negative sub-sequence number, text that is neither digits nor a sentinel, or a value
    ///   outside [last checkpoint, largest permitted] → `IllegalArgumentException`.
    /// * A value textually equal to the last checkpoint is accepted without a write, even at
    ///   the end of a shard (so a child that already checkpointed its last record and repeats
    ///   that checkpoint at `shardEnded` does **not** store `SHARD_END`: only a null checkpoint
    ///   does then).
    ///
    /// ```
    /// use kcl_protocol::{CheckpointOutcome, ExtendedSequenceNumber as E, LeaseCheckpointer};
    /// let mut cp = LeaseCheckpointer::new(E::trim_horizon());
    /// cp.records_delivered(E::new("100", 0));
    /// cp.checkpoint(Some("100"), None).unwrap();
    /// cp.shard_ended();
    /// assert_eq!(cp.checkpoint(Some("100"), Some(0)), Ok(CheckpointOutcome::Unchanged));
    /// assert_eq!(cp.last(), &E::new("100", 0)); // not SHARD_END
    /// assert_eq!(cp.checkpoint(None, None), Ok(CheckpointOutcome::Stored(E::shard_end())));
    /// ```
    pub fn checkpoint(
        &mut self,
        sequence_number: Option<&str>,
        sub_sequence_number: Option<i64>,
    ) -> Result<CheckpointOutcome, DaemonError> {
        let Some(sequence_number) = sequence_number else {
            let target = self.largest_permitted.clone();
            return Ok(self.advance(target));
        };
        let sub = sub_sequence_number.unwrap_or(0);
        if sub < 0 {
            return Err(DaemonError::IllegalArgument);
        }
        let target = ExtendedSequenceNumber::new(sequence_number, sub);
        let above_last = target
            .compare(&self.last)
            .map_err(|_| DaemonError::IllegalArgument)?;
        let below_largest = target
            .compare(&self.largest_permitted)
            .map_err(|_| DaemonError::IllegalArgument)?;
        if above_last == Ordering::Less || below_largest == Ordering::Greater {
            return Err(DaemonError::IllegalArgument);
        }
        Ok(self.advance(target))
    }

    /// Java's `advancePosition`: nothing is written when the requested value equals the last
    /// checkpoint; the last delivered record at the end of the shard is written as `SHARD_END`.
    fn advance(&mut self, requested: ExtendedSequenceNumber) -> CheckpointOutcome {
        if requested == self.last {
            return CheckpointOutcome::Unchanged;
        }
        let stored = if self.at_shard_end.as_ref() == Some(&requested) {
            ExtendedSequenceNumber::shard_end()
        } else {
            requested
        };
        self.last = stored.clone();
        CheckpointOutcome::Stored(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Initialize, ProcessRecordsMessage, ShutdownReason, WireRecord};
    use crate::position::StartingPosition;

    fn batch(sequence_numbers: &[&str]) -> DaemonMessage {
        DaemonMessage::ProcessRecords(ProcessRecordsMessage {
            records: sequence_numbers
                .iter()
                .map(|n| WireRecord::new(b"", "k", &crate::Position::new(*n, 0), None))
                .collect(),
            millis_behind_latest: None,
        })
    }

    #[test]
    fn each_action_grants_or_withdraws_the_checkpointer() {
        let e = ExtendedSequenceNumber::new;
        let mut lease = Lease::new(ExtendedSequenceNumber::trim_horizon());
        lease.sending(&DaemonMessage::Initialize(Initialize {
            shard_id: "s".into(),
            starting_position: StartingPosition::TrimHorizon,
        }));
        assert!(!lease.grants_checkpointer());
        assert_eq!(lease.checkpoint(None, None), Err(DaemonError::InvalidState));
        lease.sending(&batch(&["5", "9", "7"]));
        assert!(lease.grants_checkpointer());
        assert_eq!(lease.delivered(), Some(&Position::new("9", 0)));
        assert_eq!(
            lease.checkpoint(Some("7"), None),
            Ok(CheckpointOutcome::Stored(e("7", 0)))
        );
        // An empty batch keeps the bound; a lower one does not lower it.
        lease.sending(&batch(&[]));
        lease.sending(&batch(&["3"]));
        assert_eq!(lease.checkpointer().largest_permitted(), &e("9", 0));
        for silent in [
            DaemonMessage::LeaseLost,
            DaemonMessage::Shutdown(ShutdownReason::Zombie),
            DaemonMessage::Shutdown(ShutdownReason::Other("X".into())),
        ] {
            lease.sending(&silent);
            assert_eq!(
                lease.checkpoint(Some("9"), None),
                Err(DaemonError::InvalidState)
            );
        }
        lease.sending(&DaemonMessage::ShutdownRequested);
        assert_eq!(
            lease.checkpoint(Some("9"), None),
            Ok(CheckpointOutcome::Stored(e("9", 0)))
        );
        lease.sending_unknown();
        assert_eq!(lease.checkpoint(None, None), Err(DaemonError::InvalidState));
        lease.sending(&DaemonMessage::Shutdown(ShutdownReason::Terminate));
        assert!(lease.checkpointer().largest_permitted().is_shard_end());
        assert_eq!(
            lease.checkpoint(None, None),
            Ok(CheckpointOutcome::Stored(
                ExtendedSequenceNumber::shard_end()
            ))
        );
    }

    #[test]
    fn a_resumed_lease_counts_its_checkpoint_as_delivered() {
        let mut lease = Lease::new(ExtendedSequenceNumber::new("50", 2));
        assert_eq!(lease.delivered(), Some(&Position::new("50", 2)));
        lease.sending(&batch(&["40"]));
        assert_eq!(
            lease.checkpointer().largest_permitted(),
            &ExtendedSequenceNumber::new("50", 2)
        );
        assert_eq!(
            lease.checkpoint(Some("40"), None),
            Err(DaemonError::IllegalArgument)
        );
    }

    /// Each case was run against the KCL 3.1.3 `ShardRecordProcessorCheckpointer`;
    /// `kcl-cli/tests/judge.rs` compares thousands of generated ones with the jar.
    #[test]
    fn checkpointer_matches_the_kcl() {
        let e = ExtendedSequenceNumber::new;
        let illegal = Err(DaemonError::IllegalArgument);
        let mut cp = LeaseCheckpointer::new(ExtendedSequenceNumber::trim_horizon());
        cp.records_delivered(e("100", 0));
        assert_eq!(
            cp.checkpoint(Some("50"), Some(0)),
            Ok(CheckpointOutcome::Stored(e("50", 0)))
        );
        assert_eq!(cp.checkpoint(Some("40"), Some(0)), illegal);
        assert_eq!(
            cp.checkpoint(Some("50"), Some(0)),
            Ok(CheckpointOutcome::Unchanged)
        );
        assert_eq!(cp.checkpoint(Some("101"), Some(0)), illegal);
        for text in [
            "abc",
            "",
            "-12",
            "1.50",
            "TRIM_HORIZON",
            "SHARD_END",
            "LATEST",
            "trim_horizon",
        ] {
            assert_eq!(cp.checkpoint(Some(text), Some(0)), illegal, "{text}");
        }
        assert_eq!(cp.checkpoint(Some("100"), Some(-1)), illegal);
        assert_eq!(cp.checkpoint(Some("100"), Some(1)), illegal);
        assert_eq!(
            cp.checkpoint(Some("0100"), Some(0)),
            Ok(CheckpointOutcome::Stored(e("0100", 0)))
        );
        assert_eq!(
            cp.checkpoint(Some("100"), None),
            Ok(CheckpointOutcome::Stored(e("100", 0)))
        );
        assert_eq!(
            cp.checkpoint(None, Some(-5)),
            Ok(CheckpointOutcome::Unchanged)
        );

        // Fresh lease, nothing delivered: only the starting sentinel (or later ones) is in range.
        let mut fresh = LeaseCheckpointer::new(ExtendedSequenceNumber::trim_horizon());
        assert_eq!(fresh.checkpoint(Some("5"), None), illegal);
        assert_eq!(
            fresh.checkpoint(None, None),
            Ok(CheckpointOutcome::Unchanged)
        );
        fresh.records_delivered(e("100", 0));
        assert_eq!(
            fresh.checkpoint(Some("TRIM_HORIZON"), None),
            Ok(CheckpointOutcome::Unchanged)
        );
        assert_eq!(fresh.checkpoint(Some("AT_TIMESTAMP"), None), illegal);
        assert_eq!(
            fresh.checkpoint(Some("LATEST"), None),
            Ok(CheckpointOutcome::Stored(e("LATEST", 0)))
        );
        assert_eq!(fresh.checkpoint(Some("TRIM_HORIZON"), None), illegal);

        // End of shard: anything from the last checkpoint up is accepted; the last delivered
        // record (or null) stores SHARD_END.
        fn at_end(last: &str) -> LeaseCheckpointer {
            let mut cp = LeaseCheckpointer::new(ExtendedSequenceNumber::new(last, 0));
            cp.records_delivered(ExtendedSequenceNumber::new("100", 0));
            cp.shard_ended();
            cp
        }
        let mut cp = at_end("50");
        assert_eq!(
            cp.checkpoint(Some("70"), None),
            Ok(CheckpointOutcome::Stored(e("70", 0)))
        );
        assert_eq!(
            cp.checkpoint(Some("200"), None),
            Ok(CheckpointOutcome::Stored(e("200", 0)))
        );
        assert_eq!(cp.checkpoint(Some("100"), None), illegal);
        assert_eq!(
            cp.checkpoint(None, None),
            Ok(CheckpointOutcome::Stored(
                ExtendedSequenceNumber::shard_end()
            ))
        );
        assert_eq!(cp.checkpoint(Some("100"), None), illegal);
        let mut cp = at_end("50");
        assert_eq!(
            cp.checkpoint(Some("100"), Some(0)),
            Ok(CheckpointOutcome::Stored(
                ExtendedSequenceNumber::shard_end()
            ))
        );
        let mut cp = at_end("50");
        assert_eq!(
            cp.checkpoint(Some("SHARD_END"), None),
            Ok(CheckpointOutcome::Stored(
                ExtendedSequenceNumber::shard_end()
            ))
        );
        assert_eq!(cp.checkpoint(None, None), Ok(CheckpointOutcome::Unchanged));
        let mut cp = at_end("50");
        assert_eq!(
            cp.checkpoint(Some("0100"), None),
            Ok(CheckpointOutcome::Stored(e("0100", 0)))
        );
        assert_eq!(
            cp.checkpoint(Some("100"), None),
            Ok(CheckpointOutcome::Stored(
                ExtendedSequenceNumber::shard_end()
            ))
        );
        let mut cp = at_end("100");
        assert_eq!(
            cp.checkpoint(Some("100"), None),
            Ok(CheckpointOutcome::Unchanged)
        );
        // SHARD_END equals SHARD_END whatever the sub-sequence numbers, so any is in range.
        let mut cp = at_end("50");
        assert_eq!(
            cp.checkpoint(Some("SHARD_END"), Some(3)),
            Ok(CheckpointOutcome::Stored(e("SHARD_END", 3)))
        );
        assert_eq!(
            cp.checkpoint(Some("SHARD_END"), Some(0)),
            Ok(CheckpointOutcome::Stored(
                ExtendedSequenceNumber::shard_end()
            ))
        );
        // Java's Character.isDigit: decimal digits of any script of the BMP, stored as written.
        let mut cp = LeaseCheckpointer::new(ExtendedSequenceNumber::trim_horizon());
        cp.records_delivered(e("100", 0));
        assert_eq!(
            cp.checkpoint(Some("١٠"), None),
            Ok(CheckpointOutcome::Stored(e("١٠", 0)))
        );
        assert_eq!(cp.checkpoint(Some("9"), None), illegal);
        assert_eq!(
            cp.checkpoint(Some("０１００"), None),
            Ok(CheckpointOutcome::Stored(e("０１００", 0)))
        );
        assert_eq!(cp.checkpoint(Some("1\u{1D7CE}"), None), illegal);
        let mut empty = LeaseCheckpointer::new(ExtendedSequenceNumber::trim_horizon());
        empty.shard_ended();
        assert_eq!(
            empty.checkpoint(None, None),
            Ok(CheckpointOutcome::Stored(
                ExtendedSequenceNumber::shard_end()
            ))
        );
    }
}
