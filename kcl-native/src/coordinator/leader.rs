//! The leader's task of a [`Role::Leader`](super::Role::Leader) worker: it contends for the
//! `Leader` lock ([`leader_lock`](super::leader_lock)) every heartbeat period and, while it holds
//! it, runs the lease assignment manager ([`leader_lam`](super::leader_lam)) every
//! `leaseAssignmentIntervalMillis` and the shard sync audit ([`leader_sync`](super::leader_sync))
//! every shard sync interval — both at once when the lock is taken.
//!
//! Three failed assignment runs in a row release the lock (Java's
//! `DEFAULT_FAILURE_COUNT_TO_SWITCH_LEADER`); this worker then stays out of the contest for two
//! heartbeat periods, so that another worker — which looks every heartbeat period — can take
//! it (Java's decider may take it back at its next check). At shutdown the lock is released
//! (`DeleteItem`); a worker that dies leaves it to expire.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use kcl_lease::LeaseStore;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use super::Shared;
use super::config::{Clock, epoch_millis};
use super::leader_lam::Lam;
use super::leader_lock::LeaderLock;
use super::leader_sync::{HoleTracker, ShardSync, audit};

/// Failed assignment runs in a row that release the leadership.
const FAILURES_TO_RELEASE: u32 = 3;

/// Runs until `stop` says so (then releases the lock) or until aborted (then the lock expires).
pub(crate) async fn run<S: LeaseStore + Send + Sync + 'static>(
    shared: Arc<Shared>,
    store: Arc<S>,
    clock: Clock,
    shard_sync: Option<ShardSync>,
    mut stop: watch::Receiver<bool>,
) {
    let config = &shared.config;
    let store = store.as_ref();
    let mut lock = LeaderLock::new(&config.worker_id, config.leader_lease_duration);
    let mut lam = Lam::new(config.failover_time);
    let mut holes = HoleTracker::default();
    let mut failures = 0;
    let mut leading = false;
    let start = Instant::now();
    let (mut next_lock, mut next_lam, mut next_sync) = (start, start, start);
    let mut sit_out_until = start;
    loop {
        let deadline = if leading {
            next_lock.min(next_lam).min(next_sync)
        } else {
            next_lock
        };
        tokio::select! {
            () = sleep_until(deadline) => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    shared.leader.store(false, Ordering::SeqCst);
                    if let Err(error) = lock.release(store).await {
                        tracing::warn!(%error, "releasing the Leader lock failed: it will expire");
                    }
                    return;
                }
                continue;
            }
        }
        let now = Instant::now();
        if now >= next_lock {
            next_lock = now + config.leader_heartbeat_period;
            if now >= sit_out_until
                && let Err(error) = lock.step(store).await
            {
                tracing::warn!(%error, "the Leader lock could not be read or written");
            }
        }
        let held = lock.is_held(Instant::now());
        if held != leading {
            leading = held;
            shared.leader.store(held, Ordering::SeqCst);
            if held {
                lam.reset();
                holes.reset();
                failures = 0;
                next_lam = now;
                next_sync = now;
            }
        }
        if !leading {
            continue;
        }
        if now >= next_lam {
            next_lam = now + config.assignment_interval();
            match lam.run(store, config, epoch_millis(clock.now())).await {
                Ok(report) => {
                    failures = 0;
                    tracing::debug!(?report, "lease assignment run");
                }
                Err(error) => {
                    failures += 1;
                    tracing::error!(%error, failures, "the lease assignment run failed");
                    if failures >= FAILURES_TO_RELEASE {
                        tracing::error!(
                            failures,
                            "lease assignment failed {FAILURES_TO_RELEASE} times in a row: releasing the leadership"
                        );
                        leading = false;
                        shared.leader.store(false, Ordering::SeqCst);
                        if let Err(error) = lock.release(store).await {
                            tracing::warn!(%error, "releasing the Leader lock failed: it will expire");
                        }
                        sit_out_until = now + config.leader_heartbeat_period * 2;
                        next_lock = sit_out_until;
                        continue;
                    }
                }
            }
        }
        if now >= next_sync {
            next_sync = now + config.shard_sync_interval;
            if let Some(sync) = &shard_sync {
                match audit(sync, store, &mut holes, config.hole_confidence).await {
                    Ok(report) if !report.created.is_empty() => {
                        tracing::info!(created = ?report.created, "shard sync created leases");
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "shard sync failed: trying next period"),
                }
            }
        }
    }
}
