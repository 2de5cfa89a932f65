//! The worker's row in `<app>-WorkerMetricStats`: `wid`, `lut` (epoch seconds, from the wall
//! clock) and no metrics (Java's "default metric" row, balanced on the leases'
//! `throughputKBps`), written every `workerMetricsReporterFreqInMillis`. A Java leader assigns
//! leases only to workers whose row is at most two periods old; stopping the row drains nothing
//! by itself (a leader leaves live leases of an inactive worker alone).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use kcl_lease::coordinator::report;
use kcl_lease::{LeaseStore, Table, UpdateError, WorkerMetricStats};
use tokio::time::MissedTickBehavior;

use super::Shared;
use super::config::Clock;

/// Writes the row every period until aborted.
pub(crate) async fn run<S: LeaseStore + Send + Sync + 'static>(
    shared: Arc<Shared>,
    store: Arc<S>,
    clock: Clock,
) {
    let mut ticks = tokio::time::interval(shared.config.metrics_frequency);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        if let Err(error) = publish(&shared.config.worker_id, store.as_ref(), clock.now()).await {
            tracing::warn!(%error, "writing the worker-metrics row failed: trying next period");
        }
    }
}

/// Writes the row of `worker_id` with `lut` = `now` in epoch seconds.
pub(crate) async fn publish<S: LeaseStore>(
    worker_id: &str,
    store: &S,
    now: SystemTime,
) -> Result<(), UpdateError> {
    let now_s = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let row = WorkerMetricStats::default_metric(worker_id, now_s);
    store.update(Table::WorkerMetrics, &report(&row)).await?;
    Ok(())
}
