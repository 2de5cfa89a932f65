//! Counts the words in UTF-8 text records, per batch and in total, and logs them to stderr.
//!
//! The reference behaviour for the protocol tests:
//! - after every batch, checkpoints at the last record of the batch (sequence + sub-sequence);
//! - records that are not valid UTF-8 are logged and counted as skipped, never a crash;
//! - on `shutdownRequested`, checkpoints the last handled record;
//! - on `shardEnded`, checkpoints the end of the shard so its child shards can start.
//!
//! Run it on the bundled sample session (no AWS, no Java):
//! `cargo run --example word_count < examples/data/word_count.session`

use kcl::{Batch, Checkpointer, Initialize, PayloadError, RecordProcessor, Result};

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

impl RecordProcessor for WordCount {
    fn initialize(&mut self, shard: &Initialize) -> Result<()> {
        tracing::info!(starting_position = ?shard.starting_position, "word_count ready");
        Ok(())
    }

    fn process_records(
        &mut self,
        batch: &Batch,
        checkpointer: &mut Checkpointer<'_>,
    ) -> Result<()> {
        let mut words = 0u64;
        for text in batch.extract::<std::result::Result<String, PayloadError>>()? {
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
            records = batch.len(),
            words,
            total_words = self.total_words,
            skipped = self.skipped,
            lag_ms = ?batch.millis_behind_latest(),
            "batch counted"
        );
        if let Some(last) = batch.last() {
            // A failed checkpoint does not undo the counting: the next batch's checkpoint covers
            // these records too, and a restart redelivers them at worst.
            if let Err(error) = checkpointer.checkpoint_at(last) {
                tracing::warn!("checkpoint at {} failed: {error}", last.position());
            }
        }
        Ok(())
    }

    fn lease_lost(&mut self) -> Result<()> {
        tracing::info!(total_words = self.total_words, "lease lost");
        Ok(())
    }

    fn shard_ended(&mut self, checkpointer: &mut Checkpointer<'_>) -> Result<()> {
        tracing::info!(
            total_words = self.total_words,
            "shard ended; checkpointing its end"
        );
        checkpointer.checkpoint()?;
        Ok(())
    }

    fn shutdown_requested(&mut self, checkpointer: &mut Checkpointer<'_>) -> Result<()> {
        tracing::info!(
            total_words = self.total_words,
            "shutdown requested; checkpointing the last handled record"
        );
        checkpointer.checkpoint_handled()?;
        Ok(())
    }
}

#[allow(dead_code)]
fn main() -> std::io::Result<()> {
    kcl::run(WordCount::default())
}
