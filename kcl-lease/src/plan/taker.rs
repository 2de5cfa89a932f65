//! The 2.x lease taker (`leases/dynamodb/DynamoDBLeaseTaker.java` at v3.1.3, which every Java
//! worker runs in `CLIENT_VERSION_2X` and `CLIENT_VERSION_UPGRADE_FROM_2X`): which leases one
//! worker takes this round, each with a `takeLease` write ([`ops::take`], fenced by the counter
//! as scanned).
//!
//! The rules of `computeLeasesToTake`, in order ([`plan`]):
//!
//! 1. **Available** (`getAvailableLeases`, `Lease.isAvailable`): a lease with no `leaseOwner`,
//!    or expired as observed.
//! 2. **Counts** (`computeLeaseCounts`): the leases that are not available, per `leaseOwner`,
//!    plus this worker with 0 if it holds none. The workers are these owners.
//! 3. **Target**: no leases, nothing to take. With at least as many workers as leases, 1;
//!    otherwise ⌈leases / workers⌉ (every lease counts, finished ones too), capped at
//!    `maxLeasesForWorker`.
//! 4. **Very old leases first** (`enablePriorityLeaseAssignment`, on by default): if any lease's
//!    counter has been unchanged for more than `veryOldLeaseDurationNanosMultiplier` (3) ×
//!    the failover time — a lease first seen unowned counts, its `lastCounterIncrementNanos`
//!    being 0 — take them all in a shuffled order up to `maxLeasesForWorker` − held,
//!    disregarding the target, and nothing else this round (even when that is none).
//! 5. Else, if the worker holds the target or more, nothing.
//! 6. Else, **available leases** in a shuffled order, as many as it lacks.
//! 7. Else, **steal** (`chooseLeasesToSteal`) from the most loaded worker: when it holds more
//!    than the target, min(lacking, its excess); when it holds exactly the target and this
//!    worker lacks more than one, 1; never more than `maxLeasesToStealAtOneTime` (1). The
//!    leases are drawn at random among all it owns.
//!
//! Simplifications, named: Java's shuffles use `Collections.shuffle`; here a seeded shuffle (the
//! caller passes fresh randomness per round). Java breaks a tie for the most loaded worker in
//! `HashMap` order; here the smallest worker id. Java re-reads the leases it steals when its
//! scan took longer than the renewal interval (`updateStaleLeasesWithLatestState`): that is
//! I/O, left to the caller (a stale counter only makes the take fail its condition).
//!
//! ```
//! use kcl_lease::plan::{TakeReason, TakerSettings, taker};
//! use kcl_lease::Lease;
//! use kcl_protocol::ExtendedSequenceNumber as E;
//!
//! // b holds 4 live leases, a none, nothing is expired: a steals one.
//! let leases: Vec<Lease> = (0..4)
//!     .map(|n| {
//!         let mut lease = Lease::new(format!("shardId-{n}"), E::new("7", 0));
//!         lease.lease_owner = Some("b".into());
//!         lease
//!     })
//!     .collect();
//! let fresh = |_: &str, _: u32| false;
//! let plan = taker::plan(&leases, "a", &fresh, &TakerSettings::default(), 42);
//! assert_eq!(plan.target, 2);
//! assert_eq!(plan.takes.len(), 1);
//! assert_eq!(plan.takes[0].reason, TakeReason::Steal);
//! assert_eq!(plan.takes[0].from.as_deref(), Some("b"));
//! ```

use std::collections::BTreeMap;

use super::{ExpiryView, shuffle};
use crate::item::Lease;
use crate::ops::{self, Write};

/// The taker's knobs (`LeaseManagementConfig`), with Java's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TakerSettings {
    /// `maxLeasesForWorker` (unlimited by default).
    pub max_leases_for_worker: usize,
    /// `maxLeasesToStealAtOneTime` (1).
    pub max_leases_to_steal_at_one_time: usize,
    /// `enablePriorityLeaseAssignment` (true): take very old leases first.
    pub priority_lease_assignment: bool,
    /// `veryOldLeaseDurationNanosMultiplier` (3): very old = unchanged for more than this many
    /// failover times.
    pub very_old_multiplier: u32,
}

impl Default for TakerSettings {
    fn default() -> Self {
        TakerSettings {
            max_leases_for_worker: usize::MAX,
            max_leases_to_steal_at_one_time: 1,
            priority_lease_assignment: true,
            very_old_multiplier: 3,
        }
    }
}

/// Why a lease is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TakeReason {
    /// Unchanged for several failover times, or never renewed (rule 4).
    VeryOld,
    /// Unowned or expired (rule 6).
    Available,
    /// Taken from the most loaded worker (rule 7).
    Steal,
}

/// One lease to take.
#[derive(Clone, Debug, PartialEq)]
pub struct Take {
    /// The lease.
    pub lease_key: String,
    /// Its owner as scanned.
    pub from: Option<String>,
    /// Why.
    pub reason: TakeReason,
    /// The `takeLease` write.
    pub write: Write,
}

/// One round of the taker.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TakePlan {
    /// Leases per worker (rule 2).
    pub counts: BTreeMap<String, usize>,
    /// The target per worker (rule 3; 0 with no leases).
    pub target: usize,
    /// The leases to take.
    pub takes: Vec<Take>,
}

impl TakePlan {
    /// The writes alone.
    pub fn writes(&self) -> impl Iterator<Item = &Write> {
        self.takes.iter().map(|take| &take.write)
    }
}

fn take(lease: &Lease, me: &str, reason: TakeReason) -> Take {
    Take {
        lease_key: lease.lease_key.clone(),
        from: lease.lease_owner.clone(),
        reason,
        write: ops::take(lease, me),
    }
}

/// One round of the 2.x taker for worker `me` (rules in the [module](self) doc).
///
/// `leases` is the lease table as scanned; `expiry` this worker's observation of that scan;
/// `seed` the randomness of this round's shuffles.
pub fn plan(
    leases: &[Lease],
    me: &str,
    expiry: &impl ExpiryView,
    settings: &TakerSettings,
    seed: u64,
) -> TakePlan {
    // Rules 1 and 2.
    let mut available = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for lease in leases {
        match &lease.lease_owner {
            Some(owner) if !expiry.is_expired(&lease.lease_key) => {
                *counts.entry(owner.clone()).or_default() += 1;
            }
            _ => available.push(lease),
        }
    }
    counts.entry(me.to_owned()).or_default();
    let mut plan = TakePlan {
        counts,
        ..TakePlan::default()
    };
    if leases.is_empty() {
        return plan;
    }
    // Rule 3.
    let workers = plan.counts.len();
    let target = if workers >= leases.len() {
        1
    } else {
        leases.len().div_ceil(workers)
    };
    plan.target = target.min(settings.max_leases_for_worker);
    let mine = plan.counts[me];
    // Rule 4.
    if settings.priority_lease_assignment {
        let mut very_old: Vec<&Lease> = leases
            .iter()
            .filter(|lease| expiry.is_expired_for(&lease.lease_key, settings.very_old_multiplier))
            .collect();
        if !very_old.is_empty() {
            shuffle(&mut very_old, seed);
            let room = settings.max_leases_for_worker.saturating_sub(mine);
            plan.takes = very_old
                .into_iter()
                .take(room)
                .map(|lease| take(lease, me, TakeReason::VeryOld))
                .collect();
            return plan;
        }
    }
    // Rule 5.
    let needed = plan.target.saturating_sub(mine);
    if needed == 0 {
        return plan;
    }
    // Rule 6.
    if !available.is_empty() {
        shuffle(&mut available, seed);
        plan.takes = available
            .into_iter()
            .take(needed)
            .map(|lease| take(lease, me, TakeReason::Available))
            .collect();
        return plan;
    }
    // Rule 7.
    let Some((victim, &held)) = plan
        .counts
        .iter()
        .max_by_key(|(worker, count)| (**count, std::cmp::Reverse(worker.as_str())))
    else {
        return plan;
    };
    let mut steal = 0;
    if held >= plan.target {
        steal = needed.min(held - plan.target);
        if needed > 1 && steal == 0 {
            steal = 1;
        }
        steal = steal.min(settings.max_leases_to_steal_at_one_time);
    }
    if steal == 0 {
        return plan;
    }
    let mut candidates: Vec<&Lease> = leases
        .iter()
        .filter(|lease| lease.lease_owner.as_deref() == Some(victim.as_str()))
        .collect();
    shuffle(&mut candidates, seed);
    let victim = victim.clone();
    plan.takes = candidates
        .into_iter()
        .take(steal)
        .map(|lease| take(lease, me, TakeReason::Steal))
        .collect();
    debug_assert!(
        plan.takes
            .iter()
            .all(|t| t.from.as_deref() == Some(&victim))
    );
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcl_protocol::ExtendedSequenceNumber as E;

    fn lease(key: &str, owner: Option<&str>) -> Lease {
        let mut lease = Lease::new(key, E::new("5", 0));
        lease.lease_owner = owner.map(str::to_owned);
        lease.lease_counter = 9;
        lease
    }

    fn owned(spec: &[(&str, usize)]) -> Vec<Lease> {
        let mut leases = Vec::new();
        for (owner, n) in spec {
            for i in 0..*n {
                leases.push(lease(&format!("{owner}-{i}"), Some(owner)));
            }
        }
        leases
    }

    fn fresh(_: &str, _: u32) -> bool {
        false
    }

    fn reasons(plan: &TakePlan) -> Vec<TakeReason> {
        plan.takes.iter().map(|t| t.reason).collect()
    }

    #[test]
    fn no_leases_nothing_to_take() {
        let plan = plan(&[], "me", &fresh, &TakerSettings::default(), 1);
        assert_eq!((plan.target, plan.takes.len()), (0, 0));
        assert_eq!(plan.counts["me"], 0);
    }

    #[test]
    fn never_renewed_leases_are_very_old_and_all_taken() {
        // Unowned leases first seen unowned are very old: a first worker takes every one.
        let leases: Vec<Lease> = (0..5).map(|n| lease(&format!("k{n}"), None)).collect();
        let never_renewed = |_: &str, _: u32| true;
        let plan = plan(&leases, "me", &never_renewed, &TakerSettings::default(), 3);
        assert_eq!(plan.takes.len(), 5);
        assert!(reasons(&plan).iter().all(|r| *r == TakeReason::VeryOld));
        let first = &plan.takes[0];
        let taken = leases
            .iter()
            .find(|l| l.lease_key == first.lease_key)
            .unwrap();
        assert_eq!(first.write, ops::take(taken, "me"));
        // ... up to maxLeasesForWorker − held.
        let capped = TakerSettings {
            max_leases_for_worker: 2,
            ..TakerSettings::default()
        };
        assert_eq!(
            super::plan(&leases, "me", &never_renewed, &capped, 3)
                .takes
                .len(),
            2
        );
        // Without priority: the target (1 worker: all 5) from the available ones.
        let plain = TakerSettings {
            priority_lease_assignment: false,
            ..TakerSettings::default()
        };
        let plan = super::plan(&leases, "me", &never_renewed, &plain, 3);
        assert_eq!(plan.takes.len(), 5);
        assert!(reasons(&plan).iter().all(|r| *r == TakeReason::Available));
    }

    #[test]
    fn very_old_leases_end_the_round_even_when_none_fit() {
        let mut leases = owned(&[("me", 2)]);
        leases.push(lease("old", Some("dead")));
        leases.push(lease("free", None));
        let very_old = |key: &str, _: u32| key == "old";
        let capped = TakerSettings {
            max_leases_for_worker: 2,
            ..TakerSettings::default()
        };
        let plan = plan(&leases, "me", &very_old, &capped, 0);
        assert!(plan.takes.is_empty());
    }

    #[test]
    fn expired_leases_are_taken_up_to_the_target() {
        // 6 leases; a holds 2 live, b held 4 of which 3 expired (not very old): workers a, b,
        // me; target 2.
        let mut leases = owned(&[("a", 2), ("b", 4)]);
        let expired = |key: &str, n: u32| n == 1 && key != "b-0" && key.starts_with("b-");
        let plan = plan(&leases, "me", &expired, &TakerSettings::default(), 11);
        assert_eq!(plan.target, 2);
        assert_eq!(
            plan.counts,
            [("a".into(), 2), ("b".into(), 1), ("me".into(), 0)].into()
        );
        assert_eq!(plan.takes.len(), 2);
        assert!(reasons(&plan).iter().all(|r| *r == TakeReason::Available));
        assert!(
            plan.takes
                .iter()
                .all(|t| t.lease_key != "b-0" && t.from.as_deref() == Some("b"))
        );
        // Different seeds may pick different leases, each a permutation of the same set.
        leases.reverse();
        let again = super::plan(&leases, "me", &expired, &TakerSettings::default(), 11);
        assert_eq!(again.takes.len(), 2);
    }

    #[test]
    fn workers_at_the_target_take_nothing() {
        let leases = owned(&[("a", 3), ("me", 3)]);
        assert!(
            plan(&leases, "me", &fresh, &TakerSettings::default(), 0)
                .takes
                .is_empty()
        );
        // More workers than leases: target 1.
        let leases = owned(&[("a", 1), ("me", 1)]);
        let plan = plan(&leases, "me", &fresh, &TakerSettings::default(), 0);
        assert_eq!(plan.target, 1);
        assert!(plan.takes.is_empty());
    }

    #[test]
    fn stealing_follows_javas_rules() {
        let steal = |spec: &[(&str, usize)], settings: &TakerSettings| {
            let plan = plan(&owned(spec), "me", &fresh, settings, 5);
            (
                plan.target,
                plan.takes.len(),
                plan.takes.first().and_then(|t| t.from.clone()),
            )
        };
        let java = TakerSettings::default();
        // Over target: min(needed, excess), capped at 1.
        assert_eq!(steal(&[("a", 6)], &java), (3, 1, Some("a".into())));
        // At target and I lack more than one: 1.
        assert_eq!(
            steal(&[("a", 4), ("b", 4), ("me", 2)], &java),
            (4, 1, Some("a".into()))
        );
        assert_eq!(
            steal(&[("a", 4), ("b", 4), ("me", 1)], &java),
            (3, 1, Some("a".into()))
        );
        // At target and I lack one: nothing (4, 3, 3 is stable).
        assert_eq!(steal(&[("a", 4), ("b", 3), ("me", 3)], &java), (4, 0, None));
        // maxLeasesToStealAtOneTime raised: min(needed, excess).
        let more = TakerSettings {
            max_leases_to_steal_at_one_time: 5,
            ..java
        };
        assert_eq!(
            steal(&[("a", 8), ("me", 0)], &more),
            (4, 4, Some("a".into()))
        );
        assert_eq!(
            steal(&[("a", 5), ("b", 5), ("me", 0)], &more),
            (4, 1, Some("a".into()))
        );
        // A tie for most loaded: the smallest id.
        assert_eq!(
            steal(&[("b", 4), ("c", 4), ("me", 0)], &java).2,
            Some("b".into())
        );
    }

    #[test]
    fn finished_leases_count_and_may_be_stolen() {
        let mut leases = owned(&[("a", 4)]);
        for lease in &mut leases {
            lease.checkpoint = E::shard_end();
        }
        let plan = plan(&leases, "me", &fresh, &TakerSettings::default(), 0);
        assert_eq!(plan.target, 2);
        assert_eq!(reasons(&plan), [TakeReason::Steal]);
    }
}
