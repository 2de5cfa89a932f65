//! Counts the words in UTF-8 text records, per batch and in total, and logs them to stderr.
//!
//! The reference behaviour for the protocol tests:
//! - after every batch, checkpoints at the last record of the batch (sequence + sub-sequence):
//!   the handler returns `kcl::Checkpoint::Now`, so this holds whatever the runtime's strategy;
//! - records that are not valid UTF-8 are logged and counted as skipped, never a crash;
//! - on `shutdownRequested`, checkpoints the last handled record;
//! - on `shardEnded`, checkpoints the end of the shard so its child shards can start.
//!
//! Run it on the bundled sample session (no AWS, no Java):
//! `cargo run --example word_count < examples/data/word_count.session`

use kcl::{Checkpoint, Initialize, MillisBehindLatest, PayloadError};

/// Word counts of one shard.
#[derive(Debug, Default)]
pub struct WordCount {
    /// Words seen in all batches.
    pub total_words: u64,
    /// Records whose text was counted.
    pub records: u64,
    /// Records skipped because they were not UTF-8.
    pub skipped: u64,
    /// Batches handled.
    pub batches: u64,
}

#[kcl::processor]
impl WordCount {
    #[kcl::on_initialize]
    fn ready(&mut self, shard: &Initialize) {
        tracing::info!(starting_position = ?shard.starting_position, "word_count ready");
    }

    /// One result per record: a record that is not UTF-8 is an `Err` to count, not a failure.
    #[kcl::on_records]
    fn count(
        &mut self,
        texts: Vec<Result<String, PayloadError>>,
        lag: MillisBehindLatest,
    ) -> Checkpoint {
        let mut words = 0u64;
        for text in &texts {
            match text {
                Ok(text) => {
                    words += text.split_whitespace().count() as u64;
                    self.records += 1;
                }
                Err(error) => {
                    tracing::warn!("skipping record: {error}");
                    self.skipped += 1;
                }
            }
        }
        self.total_words += words;
        self.batches += 1;
        tracing::info!(
            records = texts.len(),
            words,
            total_words = self.total_words,
            skipped = self.skipped,
            lag_ms = ?lag.0,
            "batch counted"
        );
        Checkpoint::Now
    }

    #[kcl::on_lease_lost]
    fn lost(&mut self) {
        tracing::info!(total_words = self.total_words, "lease lost");
    }

    /// Without a checkpointer argument, the end of the shard is checkpointed after it returns.
    #[kcl::on_shard_ended]
    fn ended(&mut self) {
        tracing::info!(
            total_words = self.total_words,
            "shard ended; checkpointing its end"
        );
    }

    /// Without a checkpointer argument, the last handled record is checkpointed after it returns.
    #[kcl::on_shutdown_requested]
    fn stopping(&mut self) {
        tracing::info!(
            total_words = self.total_words,
            "shutdown requested; checkpointing the last handled record"
        );
    }
}

#[kcl::main]
fn main() -> WordCount {
    WordCount::default()
}
