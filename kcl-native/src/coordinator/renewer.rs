//! The renewer: one task that renews every held lease every `failover / 3 − 25 ms` (fixed rate),
//! the leases concurrently, on the coordinator's runtime — nothing a shard worker does (fetching,
//! the user's code) can hold it up.
//!
//! A renewal is `ops::renew` (counter + 1, `throughputKBps`; conditioned on the counter and on
//! `checkpointOwner` absent, or on the counter only once a handoff is adopted). A refused one
//! is judged by [`interpret_renew_failure`]:
//!
//! - `AdoptHandoff`: a leader handed the lease to another worker; the shard gets
//!   `shutdownRequested`, the forced-transfer watchdog starts, and the renewal is tried again
//!   at once with the counter condition only (how Java's old owner keeps the lease alive until
//!   it transfers);
//! - `Spurious`: our previous write had landed after all: adopt the counter;
//! - `Lost`: someone else holds it.
//!
//! Throttled: one more try in the same period (Java's two tries). Unavailable: the next period
//! tries again. Local self-expiry fences a lease that could not be renewed for the failover
//! time.

use crate::metrics::{Metric, RENEW_ALL_LEASES};
use std::sync::Arc;
use std::time::Duration;

use kcl_lease::{RenewVerdict, StoreError, UpdateError, interpret_renew_failure, ops};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use super::handoff;
use super::{LeaseHandle, Shared};

/// Tries of one renewal on throttling (Java's `RENEWAL_RETRIES`).
const THROTTLED_TRIES: usize = 2;

/// Renews the held leases until aborted.
pub(crate) async fn run(shared: Arc<Shared>) {
    let period = shared.config.renew_period();
    let mut ticks = tokio::time::interval(period);
    // Fixed rate; after a stall (a stopped process) no burst of catch-up renewals: the first
    // one finds the leases expired anyway.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        ticks.tick().await;
        renew_all(&shared, period).await;
    }
}

/// One period: every held lease renewed concurrently, each given at most the period; lost
/// leases dropped from the held set.
pub(crate) async fn renew_all(shared: &Arc<Shared>, period: Duration) {
    let mut renewals = JoinSet::new();
    for handle in shared.held_handles() {
        let handoff_timeout = shared.config.handoff_timeout;
        renewals.spawn(async move {
            // A renewal that has not answered within the period is abandoned: its write may
            // land, which the next write's condition tells (a spurious failure) — the next
            // renewal's, or a checkpoint's, which looks only while the lease is unsettled.
            if tokio::time::timeout(period, renew(&handle, period, handoff_timeout))
                .await
                .is_err()
            {
                tracing::warn!(lease = %handle.lease_key(), "renewal did not answer within the renewal period");
                handle.held().writes().await.unsettled = true;
            }
        });
    }
    while renewals.join_next().await.is_some() {}
    let lost = shared
        .held_handles()
        .iter()
        .filter(|handle| handle.is_lost())
        .count();
    shared.forget_lost();
    let current = shared.held_handles().len();
    let metrics = &shared.metrics;
    metrics.record(Metric::LostLeases, lost as f64, RENEW_ALL_LEASES, None);
    metrics.record(
        Metric::CurrentLeases,
        current as f64,
        RENEW_ALL_LEASES,
        None,
    );
}

/// Renews one lease (see the module's documentation).
pub(crate) async fn renew(handle: &LeaseHandle, period: Duration, handoff_timeout: Duration) {
    let held = handle.held();
    let mut state = held.writes().await;
    let mut throttled = 0;
    let mut sampled = false;
    loop {
        let sent = Instant::now();
        if !held.usable(sent) {
            return;
        }
        if !sampled {
            if let Some(kbps) = held.sample_throughput(&mut state, period) {
                state.lease.throughput_kbps = Some(kbps);
            }
            sampled = true;
        }
        let write = ops::renew(&state.lease);
        match handle.writer().update(&write).await {
            Ok(_) => {
                state.lease.lease_counter = state.lease.lease_counter.saturating_add(1);
                state.unsettled = false;
                held.renewed(sent);
                return;
            }
            Err(UpdateError::ConditionFailed(failed)) => {
                match interpret_renew_failure(&state.lease, failed.current.as_ref()) {
                    RenewVerdict::AdoptHandoff {
                        lease_owner,
                        checkpoint_owner,
                    } => {
                        tracing::info!(lease = %handle.lease_key(), new_owner = ?lease_owner, "graceful handoff requested: shutting the shard down");
                        state.lease.lease_owner = lease_owner;
                        state.lease.checkpoint_owner = Some(checkpoint_owner);
                        if held.request_shutdown() {
                            handoff::watch(handle.clone(), handoff_timeout);
                        }
                        // Again at once, now with the counter condition only.
                    }
                    RenewVerdict::Spurious { counter } => {
                        tracing::info!(lease = %handle.lease_key(), "spurious renewal failure: the write had landed");
                        state.lease.lease_counter = counter;
                        state.unsettled = false;
                        held.renewed(sent);
                        return;
                    }
                    RenewVerdict::Lost => {
                        tracing::info!(lease = %handle.lease_key(), "renewal refused: lease lost");
                        held.mark_lost();
                        return;
                    }
                }
            }
            Err(UpdateError::Store(StoreError::Throttled(message))) => {
                throttled += 1;
                tracing::info!(lease = %handle.lease_key(), %message, try_ = throttled, "renewal throttled");
                if throttled >= THROTTLED_TRIES {
                    return;
                }
            }
            Err(UpdateError::Store(error)) => {
                tracing::warn!(lease = %handle.lease_key(), %error, "renewal failed: trying next period");
                if matches!(error, StoreError::Unavailable(_)) {
                    state.unsettled = true;
                }
                return;
            }
        }
    }
}
