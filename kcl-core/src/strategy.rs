//! When the runtime checkpoints by itself: after every batch (the default), every N records
//! and/or T seconds, or never (manual).

use std::time::Duration;

/// When the runtime checkpoints the records your handler finished, by itself.
///
/// Whatever the strategy, the runtime only ever checkpoints up to the last record whose handler
/// finished successfully (with its sub-sequence number), a handler may ask for a checkpoint now
/// (returning [`Checkpoint::Now`](crate::Checkpoint::Now) or calling
/// [`Checkpointer::request_checkpoint`](crate::Checkpointer::request_checkpoint)), and user code
/// may checkpoint itself through the [`Checkpointer`](crate::Checkpointer). On
/// `shutdownRequested` and `shardEnded` the default hooks checkpoint what was handled.
///
/// ```
/// use std::time::Duration;
/// use kcl_core::CheckpointStrategy;
/// assert_eq!(CheckpointStrategy::default(), CheckpointStrategy::EveryBatch);
/// let either = CheckpointStrategy::every(1000, Duration::from_secs(30));
/// assert_eq!(either, CheckpointStrategy::Every { records: Some(1000), interval: Some(Duration::from_secs(30)) });
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CheckpointStrategy {
    /// After every batch whose handler succeeded (one checkpoint per `processRecords`).
    #[default]
    EveryBatch,
    /// When `records` records were handled since the last checkpoint, or `interval` passed since
    /// it, whichever comes first (either may be `None`). The interval is checked at every
    /// `processRecords`: set `callProcessRecordsEvenForEmptyRecordList = true` in the daemon's
    /// properties so that an idle shard still gets its last records checkpointed on time.
    Every {
        /// Handled records that make a checkpoint due.
        records: Option<u64>,
        /// Time since the last checkpoint that makes one due.
        interval: Option<Duration>,
    },
    /// Never by itself: only when user code checkpoints or the handler asks for it.
    Manual,
}

impl CheckpointStrategy {
    /// Every `records` handled records.
    ///
    /// ```
    /// let s = kcl_core::CheckpointStrategy::every_records(500);
    /// assert_eq!(s, kcl_core::CheckpointStrategy::Every { records: Some(500), interval: None });
    /// ```
    pub fn every_records(records: u64) -> Self {
        CheckpointStrategy::Every {
            records: Some(records.max(1)),
            interval: None,
        }
    }

    /// Every `interval` (checked when a batch arrives).
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = kcl_core::CheckpointStrategy::every_interval(Duration::from_secs(60));
    /// assert_eq!(s, kcl_core::CheckpointStrategy::Every { records: None, interval: Some(Duration::from_secs(60)) });
    /// ```
    pub fn every_interval(interval: Duration) -> Self {
        CheckpointStrategy::Every {
            records: None,
            interval: Some(interval),
        }
    }

    /// Every `records` handled records or every `interval`, whichever comes first.
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = kcl_core::CheckpointStrategy::every(100, Duration::from_secs(5));
    /// assert!(matches!(s, kcl_core::CheckpointStrategy::Every { records: Some(100), .. }));
    /// ```
    pub fn every(records: u64, interval: Duration) -> Self {
        CheckpointStrategy::Every {
            records: Some(records.max(1)),
            interval: Some(interval),
        }
    }

    /// Whether a checkpoint is due after `records` handled records and `elapsed` time since
    /// the last one.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kcl_core::CheckpointStrategy;
    /// let s = CheckpointStrategy::every(10, Duration::from_secs(5));
    /// assert!(!s.is_due(9, Duration::from_secs(4)));
    /// assert!(s.is_due(10, Duration::ZERO));
    /// assert!(s.is_due(0, Duration::from_secs(5)));
    /// assert!(CheckpointStrategy::EveryBatch.is_due(1, Duration::ZERO));
    /// assert!(!CheckpointStrategy::Manual.is_due(1_000_000, Duration::MAX));
    /// ```
    pub fn is_due(&self, records: u64, elapsed: Duration) -> bool {
        match self {
            CheckpointStrategy::EveryBatch => true,
            CheckpointStrategy::Every {
                records: every_records,
                interval,
            } => {
                every_records.is_some_and(|n| records >= n)
                    || interval.is_some_and(|t| elapsed >= t)
            }
            CheckpointStrategy::Manual => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sets_both_limits() {
        let interval = Duration::from_secs(30);
        assert_eq!(
            CheckpointStrategy::every(100, interval),
            CheckpointStrategy::Every {
                records: Some(100),
                interval: Some(interval)
            }
        );
        let strategy = CheckpointStrategy::every(3, Duration::from_secs(3600));
        assert!(!strategy.is_due(2, Duration::ZERO));
        assert!(strategy.is_due(3, Duration::ZERO));
        assert!(strategy.is_due(0, Duration::from_secs(3600)));
    }
}
