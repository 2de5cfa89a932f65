//! One run of the leader's lease assignment manager (Java's `LeaseAssignmentManager`), with the
//! count-based planner of [`kcl_lease::plan::assign`]:
//!
//! 1. scan the lease table and the WorkerMetricStats table (a failure fails the run);
//! 2. feed every lease's counter to the leader's [`ExpiryTracker`], at the time of the scan
//!    (Java's `updateLeasesLastCounterIncrementNanos...`: a lease first seen with an owner is
//!    fresh, without one expired; the tracker is emptied when the lock is taken);
//! 3. leave out of the plan every worker taken for dead: one that owns (`actualOwner`) a lease
//!    observed expired is not renewing, and stays out until its WorkerMetricStats row reports
//!    again (its `lut` advances, e.g. when it restarts). Its row stays "active" for two
//!    reports after it died (60 s by default), and without this rule the planner — for which
//!    an expired lease counts for nobody — finds the dead worker the least loaded and gives its
//!    leases back to it, and after a SIGTERM (leases evicted) gives the freed leases to the
//!    stopped worker: each round costs a failover time, until the row goes stale;
//! 4. plan: expired and unassigned leases to the least loaded active worker, and on every
//!    `balance_every`-th run (the first after taking the lock included) up to `max_moves`
//!    moves by graceful handoff (`varianceBalancingFrequency`);
//! 5. write each assignment (`assignLease` or `initiateGracefulLeaseHandoff`, each
//!    conditional): a refused condition only means the lease changed since the scan and is
//!    skipped; a store failure fails the run (after the other writes were tried);
//! 6. delete the WorkerMetricStats rows not updated for `stale_metrics_after` (1 day),
//!    conditioned on their `lut`.
//!
//! Three failed runs in a row release the leadership (the caller counts).

use std::collections::BTreeMap;
use std::time::Duration;

use kcl_lease::coordinator::delete_stale;
use kcl_lease::plan::{AssignSettings, ExpiryView, Observed, Reason, assign};
use kcl_lease::{
    ExpiryTracker, LeaseStore, StoreError, Table, UpdateError, WorkerMetricStats, decode_leases,
};
use tokio::time::Instant;

use super::CoordinatorConfig;

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LamReport {
    /// Leases given to a worker with `assignLease` (unassigned or expired, or a move without
    /// handoff).
    pub(crate) assigned: usize,
    /// Graceful handoffs started.
    pub(crate) handoffs: usize,
    /// Writes refused by their condition (the lease changed since the scan).
    pub(crate) skipped: usize,
    /// Stale metrics rows deleted.
    pub(crate) deleted_rows: usize,
}

/// The assignment manager's memory across runs.
#[derive(Debug)]
pub(crate) struct Lam {
    expiry: ExpiryTracker<std::time::Instant>,
    runs: u32,
    /// Workers taken for dead (step 3), with their row's `lut` when they were.
    suspects: BTreeMap<String, u64>,
}

impl Lam {
    pub(crate) fn new(failover: Duration) -> Self {
        Lam {
            expiry: ExpiryTracker::new(failover),
            runs: 0,
            suspects: BTreeMap::new(),
        }
    }

    /// Forgets what earlier runs saw (Java's `prepareAfterLeaderSwitch`): a new leader counts
    /// every owned lease fresh at its first scan, and balances in its first run.
    pub(crate) fn reset(&mut self) {
        self.expiry = ExpiryTracker::new(self.expiry.failover());
        self.runs = 0;
        self.suspects.clear();
    }

    /// One run (see the module's documentation); `now_ms` is the wall clock, compared with the
    /// rows' `lut`.
    pub(crate) async fn run<S: LeaseStore>(
        &mut self,
        store: &S,
        config: &CoordinatorConfig,
        now_ms: u64,
    ) -> Result<LamReport, StoreError> {
        let balance = self.runs.is_multiple_of(config.balance_every.max(1));
        self.runs = self.runs.wrapping_add(1);
        let items = store.scan(Table::Lease).await?;
        let scanned_at = Instant::now().into_std();
        let rows = store.scan(Table::WorkerMetrics).await?;
        let (leases, errors) = decode_leases(&items);
        for error in errors {
            tracing::warn!(%error, "a lease row cannot be read: left out of the assignment");
        }
        let workers: Vec<WorkerMetricStats> = rows
            .iter()
            .filter_map(|row| match WorkerMetricStats::decode(row) {
                Ok(row) => Some(row),
                Err(error) => {
                    tracing::warn!(%error, "a worker-metrics row cannot be read: left out");
                    None
                }
            })
            .collect();
        self.expiry.observe_scan(
            leases.iter().map(|lease| {
                (
                    lease.lease_key.as_str(),
                    lease.lease_counter,
                    lease.actual_owner().is_some(),
                )
            }),
            scanned_at,
        );
        let settings = AssignSettings {
            max_moves: if balance { config.max_moves } else { 0 },
            graceful_handoff: config.graceful_handoff,
            reporter_freq_ms: millis(config.metrics_frequency),
        };
        let view = Observed::new(&self.expiry, scanned_at);
        let lut_of = |id: &str| {
            workers
                .iter()
                .find(|row| row.worker_id == id)
                .map(|row| row.last_update_time_s)
        };
        for lease in &leases {
            if let Some(owner) = lease.actual_owner()
                && view.is_expired(&lease.lease_key)
                && !self.suspects.contains_key(owner)
            {
                tracing::info!(worker = owner, lease = %lease.lease_key,
                    "the worker lets its lease expire: no lease goes to it until it reports again");
                self.suspects
                    .insert(owner.to_owned(), lut_of(owner).unwrap_or(0));
            }
        }
        self.suspects
            .retain(|id, lut| lut_of(id).is_some_and(|now| now <= *lut));
        let alive: Vec<WorkerMetricStats> = workers
            .iter()
            .filter(|row| !self.suspects.contains_key(&row.worker_id))
            .cloned()
            .collect();
        let plan = assign::plan(&leases, &alive, &view, now_ms, &settings);
        let mut report = LamReport::default();
        let mut failure = None;
        for assignment in &plan.assignments {
            match store.update(Table::Lease, &assignment.write).await {
                Ok(_) => {
                    let handoff = assignment.reason == Reason::Rebalance && config.graceful_handoff;
                    tracing::info!(lease = %assignment.lease_key, from = ?assignment.from,
                        to = %assignment.to, reason = ?assignment.reason, handoff, "lease assigned");
                    if handoff {
                        report.handoffs += 1;
                    } else {
                        report.assigned += 1;
                    }
                }
                Err(UpdateError::ConditionFailed(_)) => {
                    tracing::info!(lease = %assignment.lease_key, "the lease changed since the scan: not assigned");
                    report.skipped += 1;
                }
                Err(UpdateError::Store(error)) => {
                    tracing::warn!(lease = %assignment.lease_key, %error, "assigning the lease failed");
                    failure.get_or_insert(error);
                }
            }
        }
        let stale_ms = millis(config.stale_metrics_after);
        let is_stale = |row: &&WorkerMetricStats| {
            now_ms.saturating_sub(row.last_update_time_s.saturating_mul(1000)) > stale_ms
        };
        for row in workers.iter().filter(is_stale) {
            match store.delete(Table::WorkerMetrics, &delete_stale(row)).await {
                Ok(_) => {
                    tracing::info!(worker = %row.worker_id, "stale worker-metrics row deleted");
                    report.deleted_rows += 1;
                }
                Err(UpdateError::ConditionFailed(_)) => {}
                Err(UpdateError::Store(error)) => {
                    failure.get_or_insert(error);
                }
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(report),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
