//! Sums JSON orders with a serde struct and `kcl::Json<T>`; records that are not valid orders are
//! logged with their sequence number and counted, and the batch still completes.

use kcl::{Batch, Checkpointer, Json, PayloadError, RecordProcessor, Result};
use serde::Deserialize;

/// One order, as producers put it on the stream.
#[derive(Debug, Deserialize)]
pub struct Order {
    /// Order id.
    pub id: String,
    /// Who ordered.
    pub customer: String,
    /// Total in cents.
    pub amount_cents: u64,
}

/// Revenue of one shard.
#[derive(Debug, Default)]
pub struct Revenue {
    /// Valid orders seen.
    pub orders: u64,
    /// Sum of their amounts.
    pub cents: u64,
    /// Records that were not valid orders.
    pub invalid: u64,
}

impl RecordProcessor for Revenue {
    fn process_records(
        &mut self,
        batch: &Batch,
        checkpointer: &mut Checkpointer<'_>,
    ) -> Result<()> {
        // `Result<Json<Order>, PayloadError>` yields one result per record; plain `Json<Order>`
        // would fail the whole batch on the first bad record (and stall the shard, losing nothing).
        for order in batch.extract::<std::result::Result<Json<Order>, PayloadError>>()? {
            match order {
                Ok(Json(order)) => {
                    self.orders += 1;
                    self.cents += order.amount_cents;
                    tracing::debug!(id = %order.id, customer = %order.customer, "order");
                }
                Err(error) => {
                    self.invalid += 1;
                    tracing::warn!("not an order: {error}");
                }
            }
        }
        tracing::info!(
            orders = self.orders,
            cents = self.cents,
            invalid = self.invalid,
            "batch summed"
        );
        if let Some(last) = batch.last() {
            if let Err(error) = checkpointer.checkpoint_at(last) {
                tracing::warn!("checkpoint at {} failed: {error}", last.position());
            }
        }
        Ok(())
    }
}

#[allow(dead_code)]
fn main() -> std::io::Result<()> {
    kcl::run(Revenue::default())
}
