//! Counts records and payload bytes, treating payloads as raw bytes; checkpoints at the last
//! record of every batch.

use kcl::{Batch, Checkpointer, RecordProcessor, Result};

/// Record and byte counts of one shard.
#[derive(Debug, Default)]
pub struct ByteCount {
    /// Records seen.
    pub records: u64,
    /// Payload bytes seen.
    pub bytes: u64,
}

impl RecordProcessor for ByteCount {
    fn process_records(
        &mut self,
        batch: &Batch,
        checkpointer: &mut Checkpointer<'_>,
    ) -> Result<()> {
        for record in batch {
            self.records += 1;
            self.bytes += record.data().len() as u64;
        }
        tracing::info!(records = self.records, bytes = self.bytes, "batch counted");
        if let Some(last) = batch.last() {
            if let Err(error) = checkpointer.checkpoint_at(last) {
                tracing::warn!("checkpoint at {} failed: {error}", last.position());
            }
        }
        Ok(())
    }

    fn lease_lost(&mut self) -> Result<()> {
        tracing::info!(records = self.records, bytes = self.bytes, "lease lost");
        Ok(())
    }
}

#[allow(dead_code)]
fn main() -> std::io::Result<()> {
    kcl::run(ByteCount::default())
}
