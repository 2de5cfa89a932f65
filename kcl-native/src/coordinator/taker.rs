//! The 2.x lease taker of a [`Role::Taker2x`](super::Role::Taker2x) worker (Java's
//! `DynamoDBLeaseTaker`, which every Java 3.x worker runs on a table in `CLIENT_VERSION_2X` or
//! `CLIENT_VERSION_UPGRADE_FROM_2X`): every `2 × (failover + 25 ms)` (fixed delay, the first
//! round at once) scan the lease table, feed the observed counters to an [`ExpiryTracker`], plan
//! with [`kcl_lease::plan::taker`] and write each `takeLease` (conditioned on the counter as
//! scanned). A lease taken becomes held exactly as a discovered one: the renewer renews it (with
//! the `checkpointOwner`-absent condition, as Java 3.1.3's renewer does in every mode) and it is
//! announced as [`LeaseEvent::Acquired`](super::LeaseEvent::Acquired). A lease this worker still
//! holds is never taken again.
//!
//! A taker writes no WorkerMetricStats row: an upgrading fleet flips to 3.x only once every
//! lease owner has one, so a native taker keeps it on the 2.x protocol it speaks.
//!
//! On an empty lease table (a new application) with a [`ShardSync`] configured, the round
//! creates the initial leases instead (Java's workers do so at start in every mode).

use std::sync::Arc;

use kcl_lease::plan::{Observed, TakerSettings, taker};
use kcl_lease::{
    Decoded, ExpiryTracker, LeaseStore, StoreError, Table, UpdateError, decode, decode_leases,
};
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use super::held::HeldLease;
use super::leader_sync::ShardSync;
use super::{LeaseEvent, LeaseHandle, Shared};

/// Takes leases until aborted (or until nobody listens to the events).
pub(crate) async fn run<S: LeaseStore + Send + Sync + 'static>(
    shared: Arc<Shared>,
    store: Arc<S>,
    events: UnboundedSender<LeaseEvent>,
    shard_sync: Option<ShardSync>,
) {
    let mut expiry = ExpiryTracker::new(shared.config.failover_time);
    loop {
        if events.is_closed() {
            tracing::info!("nobody takes acquired leases any more: the taker stops");
            return;
        }
        if let Err(error) = round(
            &shared,
            store.as_ref(),
            &mut expiry,
            &events,
            shard_sync.as_ref(),
        )
        .await
        {
            tracing::warn!(%error, "the lease taker's round failed: trying next period");
        }
        tokio::time::sleep(shared.config.taker_period()).await;
    }
}

/// One round; the number of leases taken.
pub(crate) async fn round<S: LeaseStore>(
    shared: &Arc<Shared>,
    store: &S,
    expiry: &mut ExpiryTracker<std::time::Instant>,
    events: &UnboundedSender<LeaseEvent>,
    shard_sync: Option<&ShardSync>,
) -> Result<usize, StoreError> {
    let me = shared.config.worker_id.as_str();
    let items = store.scan(Table::Lease).await?;
    let scanned_at = Instant::now();
    let (leases, errors) = decode_leases(&items);
    for error in errors {
        tracing::warn!(%error, "a lease row cannot be read: not taken");
    }
    if leases.is_empty() {
        if let Some(sync) = shard_sync {
            match sync.create_initial(store).await {
                Ok(created) => tracing::info!(?created, "initial leases created"),
                Err(error) => tracing::warn!(%error, "creating the initial leases failed"),
            }
        }
        return Ok(0);
    }
    let now = scanned_at.into_std();
    expiry.observe_scan(
        leases.iter().map(|lease| {
            (
                lease.lease_key.as_str(),
                lease.lease_counter,
                lease.lease_owner.is_some(),
            )
        }),
        now,
    );
    let view = Observed::new(&*expiry, now);
    let plan = taker::plan(
        &leases,
        me,
        &view,
        &TakerSettings::default(),
        fastrand::u64(..),
    );
    let mut taken = 0;
    for take in plan.takes {
        if shared.holds(&take.lease_key) {
            continue;
        }
        let sent = Instant::now();
        let item = match store.update(Table::Lease, &take.write).await {
            Ok(item) => item,
            Err(UpdateError::ConditionFailed(_)) => {
                tracing::debug!(lease = %take.lease_key, "the lease changed since the scan: not taken");
                continue;
            }
            Err(UpdateError::Store(error)) => {
                tracing::warn!(lease = %take.lease_key, %error, "taking the lease failed");
                continue;
            }
        };
        let lease = match decode(&item) {
            Ok(Decoded::Lease(lease)) => lease,
            Ok(Decoded::NotALease { .. }) => continue,
            Err(error) => {
                tracing::warn!(lease = %take.lease_key, %error, "a taken lease cannot be read");
                continue;
            }
        };
        expiry.record_own_write(&lease.lease_key, lease.lease_counter, sent.into_std());
        let held = Arc::new(HeldLease::new(lease, shared.config.failover_time, sent));
        let handle = LeaseHandle::new(held, shared.writer.clone());
        shared.insert(handle.clone());
        tracing::info!(lease = %take.lease_key, from = ?take.from, reason = ?take.reason, "lease taken");
        if events.send(LeaseEvent::Acquired(handle.clone())).is_err() {
            handle.held().mark_lost();
            shared.forget_lost();
            break;
        }
        taken += 1;
    }
    Ok(taken)
}
