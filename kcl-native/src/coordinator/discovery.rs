//! Lease discovery of a KCL 3.x worker (Java's `DynamoDBLeaseDiscoverer`): every
//! `leaseAssignmentIntervalMillis / 2 − 25 ms`, the keys the owner index lists for this worker,
//! then a consistent read of each one not held yet (the index is eventually consistent). A
//! lease whose owner is this worker and whose `checkpointOwner` is absent (a handoff to us is
//! complete) becomes held, counted as renewed when the round began, and is announced as
//! [`LeaseEvent::Acquired`]. Leases the index stops listing are left to the renewer, whose
//! next renewal finds them lost.
//!
//! At the end of a graceful shutdown, [`release_unheld`] evicts the leases the index still
//! lists for this worker that it never acquired: a leader may assign one between the last
//! round and the shutdown, and it would stay owned by a stopped worker until it expired.

use std::sync::Arc;

use kcl_lease::{Decoded, LeaseStore, StoreError, Table, UpdateError, decode, ops};
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::{Instant, MissedTickBehavior};

use super::held::HeldLease;
use super::{LeaseEvent, LeaseHandle, Shared};

/// Discovers leases until aborted (or until nobody listens to the events).
pub(crate) async fn run<S: LeaseStore + Send + Sync + 'static>(
    shared: Arc<Shared>,
    store: Arc<S>,
    events: UnboundedSender<LeaseEvent>,
) {
    let mut ticks = tokio::time::interval(shared.config.discovery_period());
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        if events.is_closed() {
            tracing::info!("nobody takes acquired leases any more: discovery stops");
            return;
        }
        if let Err(error) = discover(&shared, store.as_ref(), &events).await {
            tracing::warn!(%error, "lease discovery failed: trying next period");
        }
    }
}

/// One round; the number of leases acquired.
pub(crate) async fn discover<S: LeaseStore>(
    shared: &Arc<Shared>,
    store: &S,
    events: &UnboundedSender<LeaseEvent>,
) -> Result<usize, StoreError> {
    let me = shared.config.worker_id.as_str();
    let began = Instant::now();
    let keys = store.query_owner(me).await?;
    let mut acquired = 0;
    for key in keys {
        if shared.holds(&key) {
            continue;
        }
        let item = match store.get(Table::Lease, &key, true).await {
            Ok(Some(item)) => item,
            Ok(None) => continue, // deleted since the index listed it
            Err(error) => {
                // The others are still read; this one comes back next round.
                tracing::warn!(lease = %key, %error, "reading a discovered lease failed");
                continue;
            }
        };
        let lease = match decode(&item) {
            Ok(Decoded::Lease(lease)) => lease,
            Ok(Decoded::NotALease { .. }) => continue,
            Err(error) => {
                tracing::warn!(lease = %key, %error, "a discovered lease cannot be read");
                continue;
            }
        };
        if lease.lease_owner.as_deref() != Some(me) {
            continue; // the index was behind
        }
        if lease.checkpoint_owner.is_some() {
            continue; // the previous owner has not transferred it yet
        }
        let held = Arc::new(HeldLease::new(lease, shared.config.failover_time, began));
        let handle = LeaseHandle::new(held, shared.writer.clone());
        shared.insert(handle.clone());
        tracing::info!(lease = %key, "lease acquired");
        if events.send(LeaseEvent::Acquired(handle.clone())).is_err() {
            // Nobody would process it: stop holding it (it expires, and a leader reassigns).
            handle.held().mark_lost();
            shared.forget_lost();
            break;
        }
        acquired += 1;
    }
    Ok(acquired)
}

/// Evicts (`ops::evict`, conditioned on this worker still owning it, no handoff pending) every
/// lease the owner index lists for this worker that it does not hold; failures are logged (the
/// lease then expires).
pub(crate) async fn release_unheld<S: LeaseStore>(shared: &Arc<Shared>, store: &S) {
    let me = shared.config.worker_id.as_str();
    let keys = match store.query_owner(me).await {
        Ok(keys) => keys,
        Err(error) => {
            tracing::warn!(%error, "listing the leases left to this worker failed: they will expire");
            return;
        }
    };
    for key in keys {
        if shared.holds(&key) {
            continue;
        }
        let lease = match store.get(Table::Lease, &key, true).await {
            Ok(Some(item)) => match decode(&item) {
                Ok(Decoded::Lease(lease)) => lease,
                _ => continue,
            },
            Ok(None) => continue,
            Err(error) => {
                tracing::warn!(lease = %key, %error, "reading a lease left to this worker failed: it will expire");
                continue;
            }
        };
        if lease.lease_owner.as_deref() != Some(me) || lease.checkpoint_owner.is_some() {
            continue;
        }
        match store.update(Table::Lease, &ops::evict(&lease)).await {
            Ok(_) => tracing::info!(lease = %key, "a lease assigned during the shutdown evicted"),
            Err(UpdateError::ConditionFailed(_)) => {}
            Err(error) => {
                tracing::warn!(lease = %key, %error, "evicting a lease assigned during the shutdown failed: it will expire");
            }
        }
    }
}
