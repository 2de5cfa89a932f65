//! A shard's progress in the log: one INFO line every period (and at the shard's end) with the
//! records handled, the lag (`millisBehindLatest`) and the checkpoint.

use std::time::Duration;

use kcl_protocol::ExtendedSequenceNumber;
use tokio::time::Instant;

/// What one shard worker handled so far.
#[derive(Debug)]
pub(super) struct Progress {
    shard: String,
    every: Duration,
    next: Instant,
    records: u64,
    batches: u64,
    since_last_line: u64,
    millis_behind_latest: Option<u64>,
    checkpoint: ExtendedSequenceNumber,
}

impl Progress {
    pub(super) fn new(shard: &str, checkpoint: ExtendedSequenceNumber, every: Duration) -> Self {
        Progress {
            shard: shard.to_owned(),
            every,
            next: Instant::now() + every,
            records: 0,
            batches: 0,
            since_last_line: 0,
            millis_behind_latest: None,
            checkpoint,
        }
    }

    /// A batch of `records` was handled; the lease's checkpoint is now `checkpoint`.
    pub(super) fn handled(
        &mut self,
        records: usize,
        lag: Option<u64>,
        checkpoint: ExtendedSequenceNumber,
    ) {
        let records = u64::try_from(records).unwrap_or(u64::MAX);
        self.records = self.records.saturating_add(records);
        self.since_last_line = self.since_last_line.saturating_add(records);
        self.batches += 1;
        self.millis_behind_latest = lag.or(self.millis_behind_latest);
        self.checkpoint = checkpoint;
    }

    /// An empty batch was read and not delivered: only its lag counts.
    pub(super) fn empty(&mut self, lag: Option<u64>) {
        self.millis_behind_latest = lag.or(self.millis_behind_latest);
    }

    /// Waits until the next line is due.
    pub(super) async fn due(&self) {
        tokio::time::sleep_until(self.next).await;
    }

    /// Logs a line (`what` says why) and starts the next period.
    pub(super) fn log(&mut self, what: &str) {
        tracing::info!(
            shard = %self.shard,
            records = self.records,
            new_records = self.since_last_line,
            batches = self.batches,
            millis_behind_latest = ?self.millis_behind_latest,
            checkpoint = %self.checkpoint,
            "{what}"
        );
        self.since_last_line = 0;
        self.next = Instant::now() + self.every;
    }
}
