//! A count-based lease assignment for a native 3.x leader: the `LeaseAssignmentManager` run of
//! the Java KCL 3.1.3 (`coordinator/assignment/LeaseAssignmentManager.java`) with lease counts
//! in place of its throughput balancer (`VarianceBasedLeaseAssignmentDecider.java`), close to
//! the count-based decider Java added later (`LeaseCountBasedLeaseAssignmentDecider.java`,
//! v3.4.3+). Java followers only see `assignLease` and `initiateGracefulLeaseHandoff` writes, so
//! they are served exactly as by a Java leader.
//!
//! The rules, in order ([`plan`]):
//!
//! 1. **Active workers** (`InMemoryStorageView.loadInMemoryStorageView`): the WorkerMetricStats
//!    rows that are valid (`WorkerMetricStats.isValidWorkerMetric`) and active
//!    ([`WorkerMetricStats::is_active`]: `lut` within two reports of the leader's clock, no
//!    failing metric). Nothing is ever assigned to another worker.
//! 2. **Expired or unassigned** (`performAssignment`): a lease with no actual owner
//!    (`actualOwner()`: `checkpointOwner`, else `leaseOwner`), or expired as observed, is
//!    assigned with `assignLease` ([`ops::assign`]) — whoever owns it, active or not, and also
//!    when a handoff is pending: an expired lease is never blocked on a pending checkpoint
//!    (`Lease.blockedOnPendingCheckpoint`, `isExpiredOrUnassigned`). Unassigned leases go
//!    first, as in Java (their `lastCounterIncrementNanos` is 0); then by key (Java orders the
//!    expired ones by when their counter last changed, which the view does not give; the order
//!    only decides who gets which lease). Each goes to the active worker with the fewest leases
//!    at that point (ties: fewest leases counting finished ones, then the smallest worker id),
//!    as `LeaseCountBasedLeaseAssignmentDecider.assignExpiredOrUnassignedLeases` fills the
//!    least loaded workers first.
//! 3. **Finished leases** (`SHARD_END`) that are unassigned or expired are assigned too, as
//!    Java does (neither the scan nor the expired filter looks at the checkpoint): a Java
//!    worker given one runs its `ShutdownTask` at once (`ShardConsumer`'s constructor marks a
//!    completed shard for `SHARD_END`) and enqueues it for `LeaseCleanupManager`, which deletes
//!    it; left unassigned it would stay in the table for good. They never count as load and are
//!    never moved by the rebalance.
//! 4. **Live leases of owners that are not active are left alone** (the comment in
//!    `performAssignment`: "This does not include the leases from the worker that has expired
//!    … but the lease is not expired"); only their expiry frees them. Such leases are not in
//!    anyone's count.
//! 5. **A live lease with a handoff pending** (`checkpointOwner` set) is left alone: Java's
//!    `parallelyAssignLeases` skips every lease `blockedOnPendingCheckpoint`. It counts for its
//!    new owner (`leaseOwner`), where it is going, so a slow handoff does not make the next run
//!    move a second lease for the same imbalance. (Java also force-assigns a lease whose
//!    handoff outlived `gracefulLeaseHandoffTimeoutMillis` + the failover time when its
//!    balancer happens to pick it; here the old owner's own 30 s forced transfer, or expiry,
//!    settles it — a simplification.)
//! 6. **Rebalance by count** (in place of `balanceWorkerVariance`): while the most loaded
//!    active worker that has a movable lease holds at least two more live leases than the
//!    least loaded one, move one of its leases (the smallest key) to that worker (ties: the
//!    smallest worker id), at most [`AssignSettings::max_moves`] per run. A move only ever goes
//!    from above the mean to below it, so the counts end within one of each other and then
//!    nothing moves. Movable: live (not `SHARD_END`), not expired, no handoff pending, owned by
//!    an active worker, not assigned earlier in this run. Java balances every third run
//!    (`varianceBalancingFrequency`); pass `max_moves: 0` on the runs that should not.
//! 7. **The write of a move** (`parallelyAssignLeases`): `initiateGracefulLeaseHandoff`
//!    ([`ops::initiate_graceful_handoff`]) when graceful handoff is enabled
//!    (`Lease.isEligibleForGracefulShutdown`: not expired, not `SHARD_END`, no handoff
//!    pending — every movable lease is), else `assignLease`.
//!
//! ```
//! use kcl_lease::plan::{AssignSettings, Reason, assign};
//! use kcl_lease::{Lease, WorkerMetricStats};
//! use kcl_protocol::ExtendedSequenceNumber as E;
//!
//! let now_ms = 1_700_000_000_000;
//! let workers = [
//!     WorkerMetricStats::default_metric("a", now_ms / 1000),
//!     WorkerMetricStats::default_metric("b", now_ms / 1000),
//! ];
//! let mut leases = Vec::new();
//! for n in 0..4 {
//!     let mut lease = Lease::new(format!("shardId-{n}"), E::new("100", 0));
//!     lease.lease_owner = Some("a".into());
//!     lease.lease_counter = 5;
//!     leases.push(lease);
//! }
//! let nothing_expired = |_: &str, _: u32| false;
//! let plan = assign::plan(&leases, &workers, &nothing_expired, now_ms, &AssignSettings::default());
//! // a holds 4, b none: two handoffs bring them to 2 and 2.
//! assert_eq!(plan.assignments.len(), 2);
//! assert!(plan.assignments.iter().all(|m| m.reason == Reason::Rebalance && m.to == "b"));
//! assert_eq!(plan.load_after["a"], 2);
//! ```

use std::collections::{BTreeMap, BTreeSet};

use super::ExpiryView;
use crate::coordinator::WorkerMetricStats;
use crate::item::Lease;
use crate::ops::{self, Write};

/// What a run may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AssignSettings {
    /// At most this many rebalancing moves per run (expired and unassigned leases are always
    /// all assigned). 2 by default, a native choice (Java's count-based decider has no cap).
    pub max_moves: usize,
    /// Move live leases by graceful handoff (`gracefulLeaseHandoffConfig.isGracefulLeaseHandoffEnabled`,
    /// on by default) rather than by `assignLease`.
    pub graceful_handoff: bool,
    /// `workerMetricsReporterFreqInMillis` (30 000 by default): a worker is active while its
    /// `lut` is within two of these of the leader's clock.
    pub reporter_freq_ms: u64,
}

impl Default for AssignSettings {
    fn default() -> Self {
        AssignSettings {
            max_moves: 2,
            graceful_handoff: true,
            reporter_freq_ms: 30_000,
        }
    }
}

/// Why a lease is (re)assigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// It had no owner.
    Unassigned,
    /// Its counter stopped changing (its owner is not renewing it).
    Expired,
    /// Its owner holds too many.
    Rebalance,
}

/// One lease to (re)assign, with the write that does it.
#[derive(Clone, Debug, PartialEq)]
pub struct Assignment {
    /// The lease.
    pub lease_key: String,
    /// Its actual owner as read (`None`: unassigned).
    pub from: Option<String>,
    /// The active worker it goes to.
    pub to: String,
    /// Why.
    pub reason: Reason,
    /// `assignLease`, or `initiateGracefulLeaseHandoff` for a rebalance with handoff enabled.
    pub write: Write,
}

/// What one run of the leader decided.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct AssignmentPlan {
    /// The active workers, sorted.
    pub active_workers: Vec<String>,
    /// The writes to issue, in order: expired and unassigned leases first, then the moves.
    pub assignments: Vec<Assignment>,
    /// Live leases per active worker once the plan has landed (pending handoffs counted at
    /// their new owner).
    pub load_after: BTreeMap<String, usize>,
}

impl AssignmentPlan {
    /// The writes alone.
    pub fn writes(&self) -> impl Iterator<Item = &Write> {
        self.assignments.iter().map(|assignment| &assignment.write)
    }
}

/// Java's `WorkerMetricStats.isValidWorkerMetric`: a default-metric row is valid; otherwise
/// every metric needs an operating range, and every range a non-zero maximum. (`lut` is always
/// present on a decoded row.)
fn is_valid(row: &WorkerMetricStats) -> bool {
    if row.is_using_default_metric() {
        return true;
    }
    let (Some(stats), Some(ranges)) = (&row.metric_stats, &row.operating_range) else {
        return false;
    };
    stats.keys().all(|name| ranges.contains_key(name))
        && ranges
            .values()
            .all(|range| range.first().is_some_and(|max| *max != 0))
}

/// The active workers, sorted (rule 1).
pub fn active_workers(
    workers: &[WorkerMetricStats],
    now_ms: u64,
    reporter_freq_ms: u64,
) -> Vec<String> {
    let active: BTreeSet<&str> = workers
        .iter()
        .filter(|row| is_valid(row) && row.is_active(now_ms, reporter_freq_ms))
        .map(|row| row.worker_id.as_str())
        .collect();
    active.into_iter().map(str::to_owned).collect()
}

/// Per active worker: live leases, all leases (live + finished) as a tie-breaker.
#[derive(Default)]
struct Loads {
    live: BTreeMap<String, usize>,
    all: BTreeMap<String, usize>,
}

impl Loads {
    fn new(active: &[String]) -> Self {
        let zero = || active.iter().map(|w| (w.clone(), 0)).collect();
        Loads {
            live: zero(),
            all: zero(),
        }
    }

    fn add(&mut self, worker: &str, live: bool) {
        if let Some(count) = self.all.get_mut(worker) {
            *count += 1;
            if live {
                *self.live.get_mut(worker).expect("same keys") += 1;
            }
        }
    }

    fn remove_live(&mut self, worker: &str) {
        for map in [&mut self.live, &mut self.all] {
            if let Some(count) = map.get_mut(worker) {
                *count = count.saturating_sub(1);
            }
        }
    }

    /// The least loaded worker (fewest live, then fewest in all, then smallest id).
    fn least_loaded(&self) -> Option<&str> {
        self.live
            .iter()
            .min_by_key(|(worker, live)| (**live, self.all[*worker], worker.as_str()))
            .map(|(worker, _)| worker.as_str())
    }
}

/// One run of the leader: the assignments to write (rules in the [module](self) doc).
///
/// `leases` is the lease table as scanned; `workers` the WorkerMetricStats rows; `expiry` the
/// leader's observation of the same scan (an [`Observed`](super::Observed) tracker fed by
/// every LAM scan); `now_ms` the leader's wall clock in epoch milliseconds (compared with
/// `lut`).
pub fn plan(
    leases: &[Lease],
    workers: &[WorkerMetricStats],
    expiry: &impl ExpiryView,
    now_ms: u64,
    settings: &AssignSettings,
) -> AssignmentPlan {
    let active = active_workers(workers, now_ms, settings.reporter_freq_ms);
    let mut loads = Loads::new(&active);
    let mut to_assign: Vec<(&Lease, Reason)> = Vec::new();
    let mut movable: BTreeMap<&str, Vec<&Lease>> = BTreeMap::new();
    for lease in leases {
        let live = !lease.checkpoint.is_shard_end();
        if lease.actual_owner().is_none() {
            to_assign.push((lease, Reason::Unassigned));
        } else if expiry.is_expired(&lease.lease_key) {
            to_assign.push((lease, Reason::Expired));
        } else if let Some(owner) = lease.lease_owner.as_deref() {
            // Rules 4 and 5: counted at its (new) owner when that one is active; movable only
            // when live, with no handoff pending.
            loads.add(owner, live);
            if live && lease.checkpoint_owner.is_none() && loads.all.contains_key(owner) {
                movable.entry(owner).or_default().push(lease);
            }
        }
    }
    let mut plan = AssignmentPlan {
        active_workers: active.clone(),
        ..AssignmentPlan::default()
    };
    if active.is_empty() {
        return plan;
    }
    // Rules 2 and 3.
    to_assign.sort_by(|(a, ra), (b, rb)| {
        let first = |reason: &Reason| *reason != Reason::Unassigned;
        (first(ra), &a.lease_key).cmp(&(first(rb), &b.lease_key))
    });
    for (lease, reason) in to_assign {
        let to = loads.least_loaded().expect("active workers").to_owned();
        loads.add(&to, !lease.checkpoint.is_shard_end());
        plan.assignments.push(Assignment {
            lease_key: lease.lease_key.clone(),
            from: lease.actual_owner().map(str::to_owned),
            write: ops::assign(lease, &to),
            to,
            reason,
        });
    }
    // Rule 6.
    for list in movable.values_mut() {
        list.sort_by(|a, b| b.lease_key.cmp(&a.lease_key)); // pop() yields the smallest key
    }
    for _ in 0..settings.max_moves {
        let Some(to) = loads.least_loaded().map(str::to_owned) else {
            break;
        };
        let floor = loads.live[&to];
        let donor = movable
            .iter()
            .filter(|(worker, list)| !list.is_empty() && loads.live[**worker] >= floor + 2)
            .max_by_key(|(worker, _)| (loads.live[**worker], std::cmp::Reverse(**worker)))
            .map(|(worker, _)| *worker);
        let Some(donor) = donor else {
            break;
        };
        let lease = movable
            .get_mut(donor)
            .and_then(Vec::pop)
            .expect("a donor has a movable lease");
        loads.remove_live(donor);
        loads.add(&to, true);
        // Rule 7.
        let write = match settings.graceful_handoff {
            true => ops::initiate_graceful_handoff(lease, &to).expect("a live lease has an owner"),
            false => ops::assign(lease, &to),
        };
        plan.assignments.push(Assignment {
            lease_key: lease.lease_key.clone(),
            from: Some(donor.to_owned()),
            to,
            reason: Reason::Rebalance,
            write,
        });
    }
    plan.load_after = loads.live;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr;
    use crate::ops::Expect;
    use crate::value::AttributeValue;
    use kcl_protocol::ExtendedSequenceNumber as E;

    const NOW_MS: u64 = 1_700_000_000_000;
    const NOW_S: u64 = NOW_MS / 1000;

    fn row(id: &str) -> WorkerMetricStats {
        WorkerMetricStats::default_metric(id, NOW_S)
    }

    fn lease(key: &str, owner: Option<&str>) -> Lease {
        let mut lease = Lease::new(key, E::new("100", 0));
        lease.lease_owner = owner.map(str::to_owned);
        lease.lease_counter = 3;
        lease
    }

    fn never(_: &str, _: u32) -> bool {
        false
    }

    fn run(leases: &[Lease], workers: &[WorkerMetricStats]) -> AssignmentPlan {
        plan(leases, workers, &never, NOW_MS, &AssignSettings::default())
    }

    fn targets(plan: &AssignmentPlan) -> Vec<(&str, &str, Reason)> {
        plan.assignments
            .iter()
            .map(|a| (a.lease_key.as_str(), a.to.as_str(), a.reason))
            .collect()
    }

    #[test]
    fn unassigned_leases_fill_the_least_loaded_workers() {
        let leases = [
            lease("k1", None),
            lease("k2", None),
            lease("k3", None),
            lease("held", Some("a")),
        ];
        let plan = run(&leases, &[row("a"), row("b"), row("c")]);
        // b and c start at 0 (b first by id), then a, b, c all at 1: a.
        assert_eq!(
            targets(&plan),
            [
                ("k1", "b", Reason::Unassigned),
                ("k2", "c", Reason::Unassigned),
                ("k3", "a", Reason::Unassigned),
            ]
        );
        assert_eq!(
            plan.load_after.values().copied().collect::<Vec<_>>(),
            [2, 1, 1]
        );
        // The writes are assignLease: owner absent, counter + 1.
        let write = &plan.assignments[0].write;
        assert_eq!(write.condition, ops::assign(&leases[0], "b").condition);
    }

    #[test]
    fn inactive_and_invalid_workers_get_nothing() {
        let stale = WorkerMetricStats::default_metric("stale", NOW_S - 61);
        let mut failing = row("failing");
        failing.metric_stats = Some([("CPU".to_string(), vec![10.0, -1.0])].into());
        failing.operating_range = Some([("CPU".to_string(), vec![100])].into());
        let mut invalid = row("invalid");
        invalid.metric_stats = Some([("CPU".to_string(), vec![10.0])].into());
        invalid.operating_range = Some([("CPU".to_string(), vec![0])].into());
        let mut unranged = row("unranged");
        unranged.metric_stats = Some([("CPU".to_string(), vec![10.0])].into());
        unranged.operating_range = None;
        let workers = [stale, failing, invalid, unranged, row("ok")];
        assert_eq!(active_workers(&workers, NOW_MS, 30_000), ["ok"]);
        let plan = run(&[lease("k", None), lease("j", None)], &workers);
        assert!(plan.assignments.iter().all(|a| a.to == "ok"));
        // No active worker at all: nothing.
        let plan = run(
            &[lease("k", None)],
            &[WorkerMetricStats::default_metric("x", 0)],
        );
        assert!(plan.assignments.is_empty() && plan.active_workers.is_empty());
    }

    #[test]
    fn live_leases_of_inactive_owners_are_left_alone_expired_ones_are_not() {
        let leases = [
            lease("ghost-1", Some("ghost")),
            lease("ghost-2", Some("ghost")),
            lease("ghost-3", Some("ghost")),
            lease("dead-1", Some("dead")),
        ];
        let expired = |key: &str, _: u32| key.starts_with("dead");
        let plan = plan(
            &leases,
            &[row("a")],
            &expired,
            NOW_MS,
            &AssignSettings::default(),
        );
        assert_eq!(targets(&plan), [("dead-1", "a", Reason::Expired)]);
        assert_eq!(plan.assignments[0].from.as_deref(), Some("dead"));
        // The write is fenced on the dead owner.
        assert!(
            plan.assignments[0]
                .write
                .condition
                .expectations
                .iter()
                .any(|e| {
                    e.attribute == attr::LEASE_OWNER
                        && e.expect == Expect::Equals(AttributeValue::s("dead"))
                })
        );
    }

    #[test]
    fn pending_handoffs_wait_unless_expired() {
        let mut pending = lease("pending", Some("b"));
        pending.checkpoint_owner = Some("a".into());
        let mut stuck = lease("stuck", Some("b"));
        stuck.checkpoint_owner = Some("a".into());
        let expired = |key: &str, _: u32| key == "stuck";
        let settings = AssignSettings::default();
        let plan = plan(
            &[pending, stuck.clone()],
            &[row("a"), row("b")],
            &expired,
            NOW_MS,
            &settings,
        );
        // "pending" counts for b (its new owner); "stuck" is assigned directly to a, the least loaded.
        assert_eq!(targets(&plan), [("stuck", "a", Reason::Expired)]);
        assert_eq!(plan.assignments[0].from.as_deref(), Some("a"));
        assert_eq!(plan.assignments[0].write, ops::assign(&stuck, "a"));
        assert_eq!(plan.load_after["b"], 1);
    }

    #[test]
    fn finished_leases_are_assigned_but_neither_counted_nor_moved() {
        let mut done = lease("done", None);
        done.checkpoint = E::shard_end();
        let mut done_held = vec![];
        for n in 0..3 {
            let mut l = lease(&format!("end-{n}"), Some("a"));
            l.checkpoint = E::shard_end();
            done_held.push(l);
        }
        let mut leases = done_held.clone();
        leases.push(done);
        leases.push(lease("live", Some("b")));
        let plan = run(&leases, &[row("a"), row("b")]);
        // a has 0 live leases and b 1: "done" goes to a; a's three finished ones stay.
        assert_eq!(targets(&plan), [("done", "a", Reason::Unassigned)]);
        assert_eq!(plan.load_after["a"], 0);
        assert_eq!(plan.load_after["b"], 1);
    }

    #[test]
    fn rebalance_moves_from_above_the_mean_to_below_it_at_most_n_per_run() {
        let mut leases: Vec<Lease> = (0..7)
            .map(|n| lease(&format!("a-{n}"), Some("a")))
            .collect();
        leases.push(lease("b-0", Some("b")));
        let workers = [row("a"), row("b"), row("c")];
        let settings = AssignSettings {
            max_moves: 10,
            ..AssignSettings::default()
        };
        let plan = plan(&leases, &workers, &never, NOW_MS, &settings);
        // 8 leases over 3 workers: 3, 3, 2 — c gets 2 (to 2 ... 3), b gets 1 to 2, etc.
        let after: Vec<usize> = plan.load_after.values().copied().collect();
        assert_eq!(after.iter().sum::<usize>(), 8);
        assert!(after.iter().max().unwrap() - after.iter().min().unwrap() <= 1);
        assert!(
            plan.assignments
                .iter()
                .all(|a| a.from.as_deref() == Some("a"))
        );
        assert_eq!(plan.assignments.len(), 4);
        // Handoffs: leaseOwner = new, checkpointOwner = old, no counter change.
        let first = &plan.assignments[0];
        assert_eq!(first.lease_key, "a-0");
        let handoff = ops::initiate_graceful_handoff(&leases[0], &first.to).unwrap();
        assert_eq!(first.write, handoff);
        // Capped.
        let capped = AssignSettings {
            max_moves: 1,
            ..AssignSettings::default()
        };
        assert_eq!(
            super::plan(&leases, &workers, &never, NOW_MS, &capped)
                .assignments
                .len(),
            1
        );
        let none = AssignSettings {
            max_moves: 0,
            ..AssignSettings::default()
        };
        assert!(
            super::plan(&leases, &workers, &never, NOW_MS, &none)
                .assignments
                .is_empty()
        );
        // Without handoff: assignLease.
        let direct = AssignSettings {
            graceful_handoff: false,
            ..capped
        };
        let plan = super::plan(&leases, &workers, &never, NOW_MS, &direct);
        assert_eq!(plan.assignments[0].write, ops::assign(&leases[0], "c"));
    }

    #[test]
    fn balanced_tables_do_not_move() {
        let leases: Vec<Lease> = ["a", "a", "b", "b", "c"]
            .iter()
            .enumerate()
            .map(|(n, owner)| lease(&format!("k{n}"), Some(owner)))
            .collect();
        assert!(
            run(&leases, &[row("a"), row("b"), row("c")])
                .assignments
                .is_empty()
        );
    }

    #[test]
    fn a_donor_needs_a_movable_lease() {
        // a holds 3 leases, all with a handoff pending towards a (counted at a), b none: nothing
        // can move from a. c holds 2 movable: one moves to b.
        let mut leases = Vec::new();
        for n in 0..3 {
            let mut l = lease(&format!("a-{n}"), Some("a"));
            l.checkpoint_owner = Some("x".into());
            leases.push(l);
        }
        leases.push(lease("c-0", Some("c")));
        leases.push(lease("c-1", Some("c")));
        let plan = run(&leases, &[row("a"), row("b"), row("c")]);
        assert_eq!(targets(&plan), [("c-0", "b", Reason::Rebalance)]);
    }
}
