//! Property tests of the planners: single plans against their rules, and plans applied round
//! after round to a [`MemoryStore`] with a virtual clock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kcl_protocol::ExtendedSequenceNumber as E;
use proptest::prelude::*;

use super::assign::{self, AssignSettings, Reason};
use super::shards::{self, ChildShard, InitialPosition, Shard};
use super::taker::{self, TakerSettings};
use super::{ExpiryView, Observed};
use crate::block_on;
use crate::coordinator::WorkerMetricStats;
use crate::expiry::ExpiryTracker;
use crate::item::Lease;
use crate::memory::{MemoryStore, Outcome};
use crate::ops::{self, Delete, Update, Write};
use crate::store::{LeaseStore, Table, UpdateError, decode_leases};

const FAILOVER: Duration = Duration::from_secs(10);
const NOW_MS: u64 = 1_700_000_000_000;

fn leases_in(store: &MemoryStore) -> Vec<Lease> {
    let (leases, errors) = decode_leases(&block_on(store.scan(Table::Lease)).unwrap());
    assert!(errors.is_empty(), "{errors:?}");
    leases
}

/// Issues a write; a failed condition is fine (someone moved first), an invalid write is not.
fn issue(store: &MemoryStore, write: &Write) -> bool {
    match block_on(store.update(Table::Lease, write)) {
        Ok(_) => true,
        Err(UpdateError::ConditionFailed(_)) => false,
        Err(UpdateError::Store(error)) => panic!("{write:?}: {error}"),
    }
}

fn issue_delete(store: &MemoryStore, delete: &Delete) {
    block_on(store.delete(Table::Lease, delete)).unwrap();
}

fn observe(tracker: &mut ExpiryTracker<Duration>, leases: &[Lease], now: Duration) {
    tracker.observe_scan(
        leases.iter().map(|l| {
            (
                l.lease_key.as_str(),
                l.lease_counter,
                l.lease_owner.is_some(),
            )
        }),
        now,
    );
}

// ---------------------------------------------------------------------------------------------
// Assignment

/// Who a generated lease belongs to at the start.
#[derive(Clone, Copy, Debug)]
enum Holder {
    Nobody,
    /// An active worker (index).
    Active(usize),
    /// A worker that renews but has no metrics row.
    Ghost,
    /// A worker that stopped (its row is stale, it renews nothing).
    Dead,
    /// A handoff pending from one active worker to another.
    Handoff(usize, usize),
    /// A handoff pending from the dead worker to an active one.
    HandoffFromDead(usize),
}

fn holder(workers: usize) -> impl Strategy<Value = Holder> {
    prop_oneof![
        3 => Just(Holder::Nobody),
        6 => (0..workers).prop_map(Holder::Active),
        2 => Just(Holder::Ghost),
        2 => Just(Holder::Dead),
        1 => (0..workers, 0..workers).prop_map(|(a, b)| Holder::Handoff(a, b)),
        1 => (0..workers).prop_map(Holder::HandoffFromDead),
    ]
}

fn worker(n: usize) -> String {
    format!("w{n}")
}

#[derive(Clone, Debug)]
struct Table0 {
    workers: usize,
    leases: Vec<(Holder, bool)>,
}

fn table0() -> impl Strategy<Value = Table0> {
    (1usize..=4).prop_flat_map(|workers| {
        let lease = (holder(workers), proptest::bool::weighted(0.15));
        (Just(workers), proptest::collection::vec(lease, 0..=16))
            .prop_map(|(workers, leases)| Table0 { workers, leases })
    })
}

fn build_leases(table: &Table0) -> Vec<Lease> {
    table
        .leases
        .iter()
        .enumerate()
        .map(|(n, (holder, finished))| {
            let checkpoint = if *finished {
                E::shard_end()
            } else {
                E::new("100", 0)
            };
            let mut lease = Lease::new(format!("shardId-{n:03}"), checkpoint);
            lease.lease_counter = 5 + n as u64;
            let (owner, previous) = match holder {
                Holder::Nobody => (None, None),
                Holder::Active(w) => (Some(worker(*w)), None),
                Holder::Ghost => (Some("ghost".to_string()), None),
                Holder::Dead => (Some("dead".to_string()), None),
                Holder::Handoff(a, b) => (Some(worker(*b)), Some(worker(*a))),
                Holder::HandoffFromDead(b) => (Some(worker(*b)), Some("dead".to_string())),
            };
            lease.lease_owner = owner;
            lease.checkpoint_owner = previous;
            lease
        })
        .collect()
}

fn rows(workers: usize) -> Vec<WorkerMetricStats> {
    let mut rows: Vec<_> = (0..workers)
        .map(|n| WorkerMetricStats::default_metric(worker(n), NOW_MS / 1000))
        .collect();
    // The dead worker's row is stale; the ghost has none.
    rows.push(WorkerMetricStats::default_metric(
        "dead",
        NOW_MS / 1000 - 600,
    ));
    rows
}

/// Live leases per active worker, by `leaseOwner`.
fn live_counts(leases: &[Lease], workers: usize) -> Vec<usize> {
    (0..workers)
        .map(|n| {
            leases
                .iter()
                .filter(|l| {
                    !l.checkpoint.is_shard_end() && l.lease_owner.as_deref() == Some(&worker(n))
                })
                .count()
        })
        .collect()
}

/// One round of the followers: every live worker completes its handoffs (unless `slow`) and
/// renews what it actually owns; the dead worker does nothing.
fn followers(store: &MemoryStore, workers: usize, slow: bool) {
    let mut alive: Vec<String> = (0..workers).map(worker).collect();
    alive.push("ghost".into());
    for lease in leases_in(store) {
        let Some(actual) = lease.actual_owner() else {
            continue;
        };
        if !alive.iter().any(|w| w == actual) {
            continue;
        }
        if lease.checkpoint_owner.is_some() && !slow {
            let new_owner = lease
                .lease_owner
                .clone()
                .expect("a handoff has a new owner");
            assert!(issue(store, &ops::assign(&lease, &new_owner)));
        } else {
            assert!(issue(store, &ops::renew(&lease)));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// One plan, checked against its rules.
    #[test]
    fn an_assignment_plan_follows_the_rules(
        table in table0(),
        expired in proptest::collection::vec(any::<bool>(), 16),
        max_moves in 0usize..4,
        graceful_handoff in any::<bool>(),
    ) {
        let leases = build_leases(&table);
        // The dead worker's leases may or may not be seen expired yet; others' live ones are
        // not, except now and then one (its owner lost track of it).
        let is_expired = |key: &str, _: u32| {
            let n: usize = key["shardId-".len()..].parse().unwrap();
            expired[n] && matches!(table.leases[n].0, Holder::Dead | Holder::HandoffFromDead(_) | Holder::Active(_))
        };
        let settings = AssignSettings { max_moves, graceful_handoff, ..AssignSettings::default() };
        let plan = assign::plan(&leases, &rows(table.workers), &is_expired, NOW_MS, &settings);
        let active: BTreeSet<String> = (0..table.workers).map(worker).collect();
        prop_assert_eq!(plan.active_workers.iter().cloned().collect::<BTreeSet<_>>(), active.clone());
        let mut seen = BTreeSet::new();
        let mut moves = 0;
        for a in &plan.assignments {
            prop_assert!(active.contains(&a.to), "assigned to inactive {}", a.to);
            prop_assert!(seen.insert(a.lease_key.clone()), "{} assigned twice", a.lease_key);
            let lease = leases.iter().find(|l| l.lease_key == a.lease_key).unwrap();
            let free = lease.actual_owner().is_none() || ExpiryView::is_expired(&is_expired, &lease.lease_key);
            match a.reason {
                Reason::Unassigned | Reason::Expired => {
                    prop_assert!(free);
                    prop_assert_eq!(&a.write, &ops::assign(lease, &a.to));
                }
                Reason::Rebalance => {
                    moves += 1;
                    prop_assert!(!free && !lease.checkpoint.is_shard_end());
                    prop_assert!(lease.checkpoint_owner.is_none());
                    prop_assert!(active.contains(lease.lease_owner.as_deref().unwrap()));
                    prop_assert_ne!(a.from.as_deref(), Some(a.to.as_str()));
                    let expected = if graceful_handoff {
                        ops::initiate_graceful_handoff(lease, &a.to).unwrap()
                    } else {
                        ops::assign(lease, &a.to)
                    };
                    prop_assert_eq!(&a.write, &expected);
                }
            }
        }
        prop_assert!(moves <= max_moves);
        for lease in &leases {
            let free = lease.actual_owner().is_none() || ExpiryView::is_expired(&is_expired, &lease.lease_key);
            // Every unassigned or expired lease, finished or not, gets exactly one assignment.
            prop_assert_eq!(free, plan.assignments.iter().any(|a| a.lease_key == lease.lease_key && a.reason != Reason::Rebalance));
            // A live lease of an owner that is not active, or with a handoff pending, is never touched.
            let untouchable = lease.checkpoint_owner.is_some()
                || lease.lease_owner.as_ref().is_some_and(|o| !active.contains(o));
            if !free && untouchable {
                prop_assert!(!seen.contains(&lease.lease_key), "touched {:?}", lease);
            }
        }
        // Moves go from above the mean to below it; when moves were to spare, no worker that
        // still has a movable lease is two above the least loaded.
        let after = &plan.load_after;
        prop_assert_eq!(after.len(), table.workers);
        if moves < max_moves {
            let floor = *after.values().min().unwrap();
            for lease in &leases {
                let movable = !lease.checkpoint.is_shard_end()
                    && lease.actual_owner().is_some()
                    && !ExpiryView::is_expired(&is_expired, &lease.lease_key)
                    && lease.checkpoint_owner.is_none()
                    && !seen.contains(&lease.lease_key);
                if let (true, Some(owner)) = (movable, lease.lease_owner.as_ref()) {
                    if let Some(load) = after.get(owner) {
                        prop_assert!(*load <= floor + 1, "{} could still give {}: {:?}", owner, lease.lease_key, after);
                    }
                }
            }
        }
    }

    /// Plans applied run after run with static workers: balanced within a bounded number of
    /// runs, then nothing moves.
    #[test]
    fn repeated_assignment_converges_without_churn(
        table in table0(),
        max_moves in 1usize..4,
        graceful_handoff in any::<bool>(),
        slow in proptest::collection::vec(proptest::bool::weighted(0.3), 4),
    ) {
        let store = MemoryStore::new();
        for lease in build_leases(&table) {
            prop_assert!(block_on(store.create_if_not_exists(&lease)).unwrap());
        }
        let rows = rows(table.workers);
        let settings = AssignSettings { max_moves, graceful_handoff, ..AssignSettings::default() };
        let mut tracker = ExpiryTracker::new(FAILOVER);
        let ghost_leases: BTreeSet<String> = leases_in(&store)
            .into_iter()
            .filter(|l| l.lease_owner.as_deref() == Some("ghost"))
            .map(|l| l.lease_key)
            .collect();
        let live = table.leases.iter().filter(|(_, finished)| !finished).count();
        let bound = 4 + live.div_ceil(max_moves) + 2;
        let mut now = Duration::ZERO;
        let mut quiet = 0;
        for run in 0..bound + 3 {
            followers(&store, table.workers, slow.get(run).copied().unwrap_or(false));
            now += 2 * FAILOVER; // leaseAssignmentIntervalMillis
            let leases = leases_in(&store);
            observe(&mut tracker, &leases, now);
            let plan = assign::plan(&leases, &rows, &Observed::new(&tracker, now), NOW_MS, &settings);
            for a in &plan.assignments {
                prop_assert!(!ghost_leases.contains(&a.lease_key), "moved a ghost's live lease");
                issue(&store, &a.write);
            }
            quiet = if plan.assignments.is_empty() { quiet + 1 } else { 0 };
            if run >= bound {
                prop_assert!(plan.assignments.is_empty(), "run {}: {:?}", run, plan.assignments);
            }
        }
        prop_assert!(quiet >= 3);
        let leases = leases_in(&store);
        prop_assert!(leases.iter().all(|l| l.checkpoint_owner.is_none()));
        let counts = live_counts(&leases, table.workers);
        prop_assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1, "{:?}", counts);
        // Nothing is left to the dead worker or unassigned; the ghost kept its leases.
        for lease in &leases {
            let owner = lease.lease_owner.as_deref().unwrap();
            prop_assert!(owner != "dead");
            prop_assert_eq!(owner == "ghost", ghost_leases.contains(&lease.lease_key));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The 2.x taker

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Three takers on one table converge to counts within one of each other, then stop.
    #[test]
    fn three_takers_converge_then_stop_stealing(
        owners in proptest::collection::vec(prop_oneof![3 => Just(None), 1 => Just(Some("dead")), 2 => (0usize..3).prop_map(|n| Some(["w0", "w1", "w2"][n]))], 1..=20),
        seeds in proptest::collection::vec(any::<u64>(), 3),
        rotate in any::<bool>(),
    ) {
        let store = MemoryStore::new();
        for (n, owner) in owners.iter().enumerate() {
            let mut lease = Lease::new(format!("shardId-{n:03}"), E::new("1", 0));
            lease.lease_owner = owner.map(str::to_owned);
            lease.lease_counter = 3;
            prop_assert!(block_on(store.create_if_not_exists(&lease)).unwrap());
        }
        let takers = ["w0", "w1", "w2"];
        let mut trackers: Vec<ExpiryTracker<Duration>> = takers.iter().map(|_| ExpiryTracker::new(FAILOVER)).collect();
        let bound = 6 + 2 * owners.len();
        let mut now = Duration::ZERO;
        let mut quiet = 0;
        for round in 0..bound + 3 {
            // Every taker renews what it holds (three renewals per taker period).
            for lease in leases_in(&store) {
                if lease.lease_owner.as_deref().is_some_and(|o| takers.contains(&o)) {
                    assert!(issue(&store, &ops::renew(&lease)));
                }
            }
            now += 2 * (FAILOVER + Duration::from_millis(25));
            let mut takes = 0;
            for k in 0..3 {
                let t = if rotate { (k + round) % 3 } else { k };
                let leases = leases_in(&store);
                observe(&mut trackers[t], &leases, now);
                let seed = seeds[t].wrapping_add(round as u64);
                let plan = taker::plan(&leases, takers[t], &Observed::new(&trackers[t], now), &TakerSettings::default(), seed);
                for take in &plan.takes {
                    if issue(&store, &take.write) {
                        takes += 1;
                        let after = leases_in(&store);
                        let mine = after.iter().find(|l| l.lease_key == take.lease_key).unwrap();
                        trackers[t].record_own_write(&mine.lease_key, mine.lease_counter, now);
                    }
                }
            }
            quiet = if takes == 0 { quiet + 1 } else { 0 };
            if round >= bound {
                prop_assert_eq!(takes, 0, "round {}", round);
            }
        }
        prop_assert!(quiet >= 3);
        let leases = leases_in(&store);
        let counts: Vec<usize> = takers
            .iter()
            .map(|t| leases.iter().filter(|l| l.lease_owner.as_deref() == Some(*t)).count())
            .collect();
        prop_assert_eq!(counts.iter().sum::<usize>(), owners.len(), "every lease held by a taker");
        prop_assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1, "{:?}", counts);
    }
}

// ---------------------------------------------------------------------------------------------
// Shard sync

/// A resharding step: split or merge the n-th open shard (mod their number).
#[derive(Clone, Copy, Debug)]
enum Reshard {
    Split(usize),
    Merge(usize),
}

/// A stream's history: every shard ever, closed ones with their children.
fn history(initial: usize, steps: &[Reshard]) -> Vec<Shard> {
    let mut shards: Vec<Shard> = Vec::new();
    let id = |n: usize| format!("shardId-{n:012}");
    let width = u128::MAX / initial as u128;
    for n in 0..initial {
        let start = width * n as u128;
        let end = if n + 1 == initial {
            u128::MAX
        } else {
            start + width - 1
        };
        shards.push(Shard::open(id(n), None, None, (start, end)));
    }
    for step in steps {
        let mut open: Vec<usize> = (0..shards.len()).filter(|&i| shards[i].open).collect();
        open.sort_by_key(|&i| shards[i].hash_key_range.0);
        match *step {
            Reshard::Split(k) => {
                let i = open[k % open.len()];
                let (start, end) = shards[i].hash_key_range;
                if start == end {
                    continue;
                }
                let middle = start + (end - start) / 2;
                shards[i].open = false;
                let parent = shards[i].shard_id.clone();
                let next = shards.len();
                shards.push(Shard::open(id(next), Some(&parent), None, (start, middle)));
                shards.push(Shard::open(
                    id(next + 1),
                    Some(&parent),
                    None,
                    (middle + 1, end),
                ));
            }
            Reshard::Merge(k) => {
                if open.len() < 2 {
                    continue;
                }
                let at = k % (open.len() - 1);
                let (i, j) = (open[at], open[at + 1]);
                shards[i].open = false;
                shards[j].open = false;
                let range = (shards[i].hash_key_range.0, shards[j].hash_key_range.1);
                let (a, b) = (shards[i].shard_id.clone(), shards[j].shard_id.clone());
                let next = shards.len();
                shards.push(Shard::open(id(next), Some(&a), Some(&b), range));
            }
        }
    }
    shards
}

fn children_of(shards: &[Shard], parent: &str) -> Vec<ChildShard> {
    shards
        .iter()
        .filter(|s| s.parents().any(|p| p == parent))
        .map(|s| {
            ChildShard::new(
                &s.shard_id,
                s.parents().map(str::to_owned),
                s.hash_key_range,
            )
        })
        .collect()
}

fn has_started(lease: &Lease) -> bool {
    !matches!(
        lease.checkpoint.sequence_number(),
        "TRIM_HORIZON" | "AT_TIMESTAMP" | "LATEST"
    )
}

/// Everything the consumer may do to one lease: read on (an open shard), or end the shard.
struct Consumer<'a> {
    store: MemoryStore,
    shards: &'a [Shard],
    deferred_merges: usize,
}

impl Consumer<'_> {
    /// Works on the `pick`-th lease that is neither finished nor blocked; `false` if there is
    /// none or nothing changed.
    fn step(&mut self, pick: usize) -> bool {
        let leases = leases_in(&self.store);
        let ready: Vec<&Lease> = leases
            .iter()
            .filter(|l| !l.checkpoint.is_shard_end() && !shards::is_blocked_on_parents(l, &leases))
            .collect();
        if ready.is_empty() {
            return false;
        }
        let lease = ready[pick % ready.len()];
        // Blocked-ness is consistent: a lease that is free to run has no unfinished parent.
        for parent in &lease.parent_shard_ids {
            assert!(
                leases
                    .iter()
                    .all(|l| &l.lease_key != parent || l.checkpoint.is_shard_end())
            );
        }
        let shard = self
            .shards
            .iter()
            .find(|s| s.shard_id == lease.lease_key)
            .unwrap();
        if shard.open {
            if has_started(lease) {
                return false;
            }
            assert!(issue(
                &self.store,
                &ops::checkpoint(lease, &E::new("100", 0))
            ));
            return true;
        }
        let children = children_of(self.shards, &shard.shard_id);
        match shards::shard_end(lease, &children, &leases) {
            Err(shards::ShardEndError::MergeParentLeaseMissing { .. }) => {
                self.deferred_merges += 1;
                false
            }
            Err(other) => panic!("{other}"),
            Ok(plan) => {
                for (child, create) in plan.children.iter().zip(&plan.creates) {
                    // A child is created only beside its parents' leases: this one, and for a
                    // merge the other one too (or neither).
                    assert!(child.parent_shard_ids.contains(&lease.lease_key));
                    issue(&self.store, create);
                }
                assert!(issue(&self.store, plan.update_parent.as_ref().unwrap()));
                let mut ended = lease.clone();
                ended.child_shard_ids = children.iter().map(|c| c.shard_id.clone()).collect();
                assert!(issue(
                    &self.store,
                    &ops::checkpoint(&ended, &E::shard_end())
                ));
                true
            }
        }
    }

    fn cleanup(&self) -> bool {
        let leases = leases_in(&self.store);
        let deletes = shards::cleanup(&leases, None);
        for delete in &deletes {
            let lease = leases.iter().find(|l| l.lease_key == delete.key).unwrap();
            assert!(lease.checkpoint.is_shard_end());
            // Its children all started, its parents are gone.
            for child in &lease.child_shard_ids {
                assert!(
                    leases
                        .iter()
                        .any(|l| &l.lease_key == child && has_started(l))
                );
            }
            issue_delete(&self.store, delete);
        }
        !deletes.is_empty()
    }

    /// The keys of every lease ever created (landed `PutItem`s), with repeats.
    fn created(&self) -> Vec<String> {
        self.store
            .writes()
            .into_iter()
            .filter(|w| {
                w.outcome == Outcome::Landed
                    && matches!(
                        &w.request,
                        crate::memory::Request::Update {
                            update: Update::PutItem(_),
                            ..
                        }
                    )
            })
            .map(|w| w.key)
            .collect()
    }
}

fn reshard() -> impl Strategy<Value = Reshard> {
    prop_oneof![
        (0usize..8).prop_map(Reshard::Split),
        (0usize..8).prop_map(Reshard::Merge)
    ]
}

fn position() -> impl Strategy<Value = InitialPosition> {
    prop_oneof![
        Just(InitialPosition::TrimHorizon),
        Just(InitialPosition::Latest),
        Just(InitialPosition::AtTimestamp)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Split/merge histories consumed from an empty table in a random order, with cleanups:
    /// every shard gets exactly one lease, children only after (and beside) their parents,
    /// nothing runs while a parent is unfinished, and at the end only the open shards remain.
    #[test]
    fn shard_histories_get_one_lease_per_shard(
        initial in 1usize..=3,
        steps in proptest::collection::vec(reshard(), 0..8),
        position in position(),
        picks in proptest::collection::vec((any::<usize>(), proptest::bool::weighted(0.2)), 0..40),
    ) {
        let all = history(initial, &steps);
        let listed = shards::shards_at_position(&all, position);
        prop_assert!(shards::is_hash_range_complete(&listed));
        let mut consumer = Consumer { store: MemoryStore::new(), shards: &all, deferred_merges: 0 };
        for write in shards::initial_writes(&listed, position) {
            prop_assert!(issue(&consumer.store, &write));
        }
        for (pick, clean) in picks {
            consumer.step(pick);
            if clean {
                consumer.cleanup();
            }
        }
        // Drain: run everything that can run, then clean up, until nothing changes.
        let mut changed = true;
        let mut rounds = 0;
        while changed {
            rounds += 1;
            prop_assert!(rounds < 200);
            changed = false;
            for pick in 0..all.len() {
                changed |= consumer.step(pick);
            }
            changed |= consumer.cleanup();
        }
        let created = consumer.created();
        let unique: BTreeSet<&String> = created.iter().collect();
        prop_assert_eq!(unique.len(), created.len(), "a lease created twice: {:?}", created);
        let expected: BTreeSet<&String> = match position {
            InitialPosition::Latest => all.iter().filter(|s| s.open).map(|s| &s.shard_id).collect(),
            _ => all.iter().map(|s| &s.shard_id).collect(),
        };
        prop_assert_eq!(unique, expected);
        let left: BTreeMap<String, Lease> = leases_in(&consumer.store).into_iter().map(|l| (l.lease_key.clone(), l)).collect();
        let open: BTreeSet<&String> = all.iter().filter(|s| s.open).map(|s| &s.shard_id).collect();
        prop_assert_eq!(left.keys().collect::<BTreeSet<_>>(), open);
        prop_assert!(left.values().all(has_started));
        // Parents with a child are named on their lease before they finish (checked by
        // cleanup); the hash ranges carried over.
        for lease in left.values() {
            let shard = all.iter().find(|s| s.shard_id == lease.lease_key).unwrap();
            prop_assert_eq!(lease.hash_key_range, Some(shard.hash_key_range));
            prop_assert_eq!(&lease.parent_shard_ids, &shard.parents().map(str::to_owned).collect());
        }
    }
}

#[test]
fn a_deferred_merge_waits_for_the_other_parent_lease() {
    // Shards 0 and 1; 0 splits into 2 and 3; 3 and 1 (adjacent by hash key) merge into 4.
    let all = history(2, &[Reshard::Split(0), Reshard::Merge(1)]);
    let id = |n: usize| format!("shardId-{n:012}");
    let merged = all.last().unwrap();
    assert_eq!(merged.shard_id, id(4));
    assert_eq!(merged.parents().collect::<Vec<_>>(), [id(3), id(1)]);
    // From TRIM_HORIZON: 0 and 1 have leases. 1 ends first: 3 has no lease yet, so 4 waits.
    let listed = shards::shards_at_position(&all, InitialPosition::TrimHorizon);
    let leases = shards::initial_leases(&listed, InitialPosition::TrimHorizon);
    assert_eq!(leases.len(), 2);
    let children = children_of(&all, &id(1));
    assert_eq!(
        shards::shard_end(&leases[1], &children, &leases),
        Err(shards::ShardEndError::MergeParentLeaseMissing {
            child: id(4),
            missing: id(3)
        })
    );
    // Once 0 has ended (3 has its lease), 4 is created.
    let mut more = leases.clone();
    let split = shards::shard_end(&leases[0], &children_of(&all, &id(0)), &leases).unwrap();
    more.extend(split.children);
    let merge = shards::shard_end(&leases[1], &children, &more).unwrap();
    assert_eq!(merge.children.len(), 1);
}
