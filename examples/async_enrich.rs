//! An async handler (feature `tokio`): each batch awaits a (simulated) lookup before it counts
//! as handled. The runtime drives `async fn` hooks on a current-thread tokio runtime; the
//! protocol stays sequential, so the checkpoint after the batch covers only awaited work.
//!
//! Build: `cargo run --features tokio --example async_enrich < examples/data/word_count.session`

use std::time::Duration;

use kcl::{Checkpointer, Record};

/// Enriches records with a lookup that has to be awaited.
#[derive(Debug, Default)]
pub struct Enricher {
    /// Records enriched so far.
    pub enriched: u64,
}

impl Enricher {
    /// Stands in for an async call to another service (HTTP, a database, ...).
    async fn lookup(&self, key: &str) -> usize {
        tokio::time::sleep(Duration::from_millis(1)).await;
        key.len()
    }
}

#[kcl::processor]
impl Enricher {
    #[kcl::on_records]
    async fn enrich(&mut self, records: Vec<Record>) -> kcl::Result<()> {
        for record in &records {
            let weight = self.lookup(record.partition_key()).await;
            tracing::debug!(key = record.partition_key(), weight, "enriched");
            self.enriched += 1;
        }
        tracing::info!(enriched = self.enriched, "batch enriched");
        Ok(())
    }

    #[kcl::on_shutdown_requested]
    async fn flush(&mut self, checkpointer: &mut Checkpointer<'_>) -> kcl::Result<()> {
        tokio::time::sleep(Duration::from_millis(1)).await; // e.g. flush a buffered sink
        checkpointer.checkpoint_handled()?;
        Ok(())
    }
}

#[kcl::main]
fn main() -> Enricher {
    Enricher::default()
}
