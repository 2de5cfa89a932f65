//! The worker's row in `<app>-WorkerMetricStats`: `wid`, `lut` (epoch seconds, from the wall
//! clock) and no metrics (Java's "default metric" row, balanced on the leases'
//! `throughputKBps`), written every `workerMetricsReporterFreqInMillis`. A Java leader assigns
//! leases only to workers whose row is at most two periods old; stopping the row drains nothing
//! by itself (a leader leaves live leases of an inactive worker alone).
//!
//! A graceful shutdown deletes the row ([`withdraw`]): the worker is about to evict its leases,
//! and a row left behind would count it active for two more periods, so the leader (native, or
//! Java) would give it back the leases it released — or any other unassigned lease — until
//! they expired (each round a failover time), and leave some owned by a stopped worker.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use kcl_lease::coordinator::{WORKER_ID, report};
use kcl_lease::{Condition, Delete, LeaseStore, Table, UpdateError, WorkerMetricStats};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::Shared;
use super::config::Clock;

/// Writes the row every period until aborted, or until `stop` says so: then deletes it
/// ([`withdraw`]) and ends.
pub(crate) async fn run<S: LeaseStore + Send + Sync + 'static>(
    shared: Arc<Shared>,
    store: Arc<S>,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(shared.config.metrics_frequency);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            changed = stop.changed() => {
                if changed.is_err() {
                    return; // the coordinator is gone without a shutdown: as a worker that dies
                }
                if *stop.borrow() {
                    if let Err(error) = withdraw(&shared.config.worker_id, store.as_ref()).await {
                        tracing::warn!(%error, "deleting the worker-metrics row failed: it ages out in two periods");
                    }
                    return;
                }
                continue;
            }
        }
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

/// Deletes the row of `worker_id` (if it exists): the worker leaves the active ones at once.
pub(crate) async fn withdraw<S: LeaseStore>(worker_id: &str, store: &S) -> Result<(), UpdateError> {
    let delete = Delete {
        key: worker_id.to_owned(),
        condition: Condition::default().exists(WORKER_ID),
    };
    match store.delete(Table::WorkerMetrics, &delete).await {
        Ok(_) | Err(UpdateError::ConditionFailed(_)) => Ok(()),
        Err(error) => Err(error),
    }
}
