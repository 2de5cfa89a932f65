//! Where reading a shard starts, from its lease's checkpoint, and which records are already
//! behind that checkpoint.
//!
//! The Java KCL (`retrieval/IteratorBuilder.java`, `lifecycle/ProcessTask.java`) starts a sentinel
//! checkpoint at the matching iterator (`AT_TIMESTAMP` with the timestamp from the
//! configuration, which the lease does not store), and a real checkpoint at
//! `AT_SEQUENCE_NUMBER` of its sequence number; it then drops every delivered record whose
//! (sequence number, sub-sequence number) is at or before the checkpoint. That is how a worker
//! resumes inside a KPL aggregate: checkpoint `(s, 2)` reads the Kinesis record `s` again and
//! delivers its user records 3, 4, … only.
//!
//! ```
//! use kcl_native::start::{Start, start_of};
//! use kcl_native::kinesis::IteratorStart;
//! use kcl_protocol::{ExtendedSequenceNumber, Position};
//!
//! let checkpoint = ExtendedSequenceNumber::new("100", 2);
//! let start = start_of(&checkpoint, None).unwrap();
//! let Start::Read { iterator, after } = start else { panic!() };
//! assert_eq!(iterator, IteratorStart::AtSequenceNumber("100".into()));
//! let after = after.unwrap();
//! assert!(!after.keeps(&Position::new("100", 2)));
//! assert!(after.keeps(&Position::new("100", 3)));
//! ```

use kcl_protocol::{ExtendedSequenceNumber, NotASequenceNumber, Position, SequenceNumber};

use crate::kinesis::IteratorStart;

/// How reading a shard starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    /// Read from this iterator, dropping what `after` says was checkpointed already.
    Read {
        /// The first iterator.
        iterator: IteratorStart,
        /// The checkpoint the first records are compared with (`None` for a sentinel: every
        /// record comes after it).
        after: Option<Checkpointed>,
    },
    /// The checkpoint is `SHARD_END`: the shard was read to its end before, nothing to read.
    ShardEnded,
}

/// Why a checkpoint gives no place to start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StartError {
    /// The checkpoint is `AT_TIMESTAMP` and no initial timestamp was configured (the lease does
    /// not store it: the KCL takes it from `initialPositionInStreamExtended`).
    #[error("the checkpoint is AT_TIMESTAMP and no initial timestamp is configured")]
    NoTimestamp,
    /// The checkpoint is neither a sentinel nor a sequence number.
    #[error(transparent)]
    NotASequenceNumber(#[from] NotASequenceNumber),
}

/// The first iterator for a lease whose checkpoint is `checkpoint`; `timestamp` (epoch
/// milliseconds) is the configured initial timestamp, used for an `AT_TIMESTAMP` checkpoint.
///
/// ```
/// use kcl_native::start::{Start, StartError, start_of};
/// use kcl_native::kinesis::IteratorStart;
/// use kcl_protocol::ExtendedSequenceNumber as E;
/// let at = |checkpoint: &str| start_of(&E::new(checkpoint, 0), Some(1_700_000_000_000));
/// assert_eq!(at("TRIM_HORIZON"), Ok(Start::Read { iterator: IteratorStart::TrimHorizon, after: None }));
/// assert_eq!(at("LATEST"), Ok(Start::Read { iterator: IteratorStart::Latest, after: None }));
/// assert_eq!(at("AT_TIMESTAMP"), Ok(Start::Read { iterator: IteratorStart::AtTimestamp(1_700_000_000_000), after: None }));
/// assert_eq!(at("SHARD_END"), Ok(Start::ShardEnded));
/// assert_eq!(start_of(&E::new("AT_TIMESTAMP", 0), None), Err(StartError::NoTimestamp));
/// assert!(at("12x").is_err());
/// ```
pub fn start_of(
    checkpoint: &ExtendedSequenceNumber,
    timestamp: Option<i64>,
) -> Result<Start, StartError> {
    let read = |iterator| {
        Ok(Start::Read {
            iterator,
            after: None,
        })
    };
    match checkpoint.sequence_number() {
        "TRIM_HORIZON" => read(IteratorStart::TrimHorizon),
        "LATEST" => read(IteratorStart::Latest),
        "AT_TIMESTAMP" => read(IteratorStart::AtTimestamp(
            timestamp.ok_or(StartError::NoTimestamp)?,
        )),
        "SHARD_END" => Ok(Start::ShardEnded),
        number => {
            // Compared once here, so that `keeps` never meets text it cannot order.
            checkpoint.compare(&ExtendedSequenceNumber::trim_horizon())?;
            Ok(Start::Read {
                iterator: IteratorStart::AtSequenceNumber(SequenceNumber::new(number)),
                after: Some(Checkpointed(checkpoint.clone())),
            })
        }
    }
}

/// A real checkpoint (a sequence number and sub-sequence number), to drop the records at or
/// before it as `ProcessTask.filterAndGetMaxExtendedSequenceNumber` does.
///
/// ```
/// use kcl_native::start::Checkpointed;
/// use kcl_protocol::{ExtendedSequenceNumber, Position};
/// let plain = Checkpointed::new(ExtendedSequenceNumber::new("7", 0)).unwrap();
/// assert!(!plain.keeps(&Position::new("7", 0)));
/// assert!(plain.keeps(&Position::new("8", 0)));
/// assert!(Checkpointed::new(ExtendedSequenceNumber::trim_horizon()).is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpointed(ExtendedSequenceNumber);

impl Checkpointed {
    /// The checkpoint, if it is a sequence number that can be ordered (`None` for a sentinel
    /// or other text).
    pub fn new(checkpoint: ExtendedSequenceNumber) -> Option<Self> {
        let numeric = !checkpoint.is_sentinel()
            && checkpoint
                .compare(&ExtendedSequenceNumber::trim_horizon())
                .is_ok();
        numeric.then_some(Checkpointed(checkpoint))
    }

    /// The checkpoint.
    pub fn value(&self) -> &ExtendedSequenceNumber {
        &self.0
    }

    /// Whether a record at `position` comes after the checkpoint (Java's order: the sequence
    /// numbers as numbers, then the sub-sequence numbers). A record whose sequence number
    /// cannot be ordered is kept: Kinesis only writes decimal sequence numbers.
    pub fn keeps(&self, position: &Position) -> bool {
        ExtendedSequenceNumber::from(position)
            .compare(&self.0)
            .map_or(true, |order| order.is_gt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(sequence: &str, sub: i64) -> Checkpointed {
        let Start::Read {
            iterator,
            after: Some(after),
        } = start_of(&ExtendedSequenceNumber::new(sequence, sub), None).unwrap()
        else {
            panic!("a sequence number starts a read with a filter")
        };
        assert_eq!(iterator, IteratorStart::AtSequenceNumber(sequence.into()));
        after
    }

    #[test]
    fn sentinels_map_to_their_iterators_without_a_filter() {
        let start = |name: &str, ts| start_of(&ExtendedSequenceNumber::new(name, 0), ts);
        for (name, iterator) in [
            ("TRIM_HORIZON", IteratorStart::TrimHorizon),
            ("LATEST", IteratorStart::Latest),
            ("AT_TIMESTAMP", IteratorStart::AtTimestamp(42)),
        ] {
            assert_eq!(
                start(name, Some(42)),
                Ok(Start::Read {
                    iterator,
                    after: None
                }),
                "{name}"
            );
        }
        assert_eq!(start("SHARD_END", None), Ok(Start::ShardEnded));
        assert_eq!(start("AT_TIMESTAMP", None), Err(StartError::NoTimestamp));
        assert!(matches!(
            start("not a number", None),
            Err(StartError::NotASequenceNumber(_))
        ));
    }

    #[test]
    fn inside_an_aggregate_resumes_at_the_next_sub_sequence() {
        let seq = SequenceNumber::synthetic(5);
        let after = after(seq.as_str(), 2);
        let kept: Vec<u64> = (0..5)
            .filter(|&sub| after.keeps(&Position::new(seq.clone(), sub)))
            .collect();
        assert_eq!(kept, [3, 4]);
        assert!(after.keeps(&Position::new(SequenceNumber::synthetic(6), 0)));
        assert!(!after.keeps(&Position::new(SequenceNumber::synthetic(4), 9)));
    }

    #[test]
    fn at_a_plain_record_resumes_after_it() {
        let seq = SequenceNumber::synthetic(5);
        let after = after(seq.as_str(), 0);
        assert!(!after.keeps(&Position::new(seq.clone(), 0)));
        assert!(after.keeps(&Position::new(SequenceNumber::synthetic(6), 0)));
    }

    #[test]
    fn sequence_numbers_are_ordered_as_numbers() {
        // "99" < "100" as numbers, not as text; leading zeros do not count.
        let after = after("100", 0);
        assert!(!after.keeps(&Position::new("99", 7)));
        assert!(!after.keeps(&Position::new("0100", 0)));
        assert!(after.keeps(&Position::new("101", 0)));
        assert!(after.keeps(&Position::new("100", 1)));
    }
}
