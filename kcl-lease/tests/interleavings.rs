//! Interleavings of the lease protocol on one `MemoryStore` with a virtual clock (C3).
//!
//! Three workers and a leader act in a random order on three leases: workers renew (and adopt a
//! handoff or detect a spurious failure as Java does), scan and take expired or unowned leases
//! (the 2.x taker), discover leases assigned to them (3.x), checkpoint (now and then rewinding
//! on purpose), evict, and complete handoffs; the leader scans, assigns expired or unowned
//! leases and starts graceful handoffs of live ones; faults make the next call fail, or make
//! the next write land while reporting failure. Both protocols run side by side on purpose: the
//! safety rules must hold whoever writes.
//!
//! Asserted after every step, on every write the store logged:
//! 1. `leaseCounter` never decreases on any key (and never goes below a value once stored).
//! 2. A checkpoint lands only if its writer was the lease's actual owner (`checkpointOwner`
//!    during a handoff, else `leaseOwner`) at the very counter the writer knew: a worker that
//!    no longer holds the lease at the counter it knows never checkpoints.
//! 3. A checkpoint never moves the stored checkpoint backwards, except a deliberate rewind,
//!    and that one is written by the actual owner (2).
//! 4. Renewals and checkpoints never change `leaseOwner` or `checkpointOwner`; a landed write
//!    that takes a lease from another actual owner is a take of a lease the taker observed
//!    expired, an assignment of a lease the leader observed expired (or unowned), a handoff
//!    start or transfer, or an eviction by the actual owner.
//! 5. Fencing: at most one worker believes it holds a lease at the counter stored on it.
//! 6. Every landed write met Java's fence: the counter its writer knew (renew, take,
//!    checkpoint) or the owners its writer knew (assign, handoff, transfer, evict).
//!
//! The test prints what the generated cases exercised (`--nocapture`) and fails if the
//! generator stops reaching the interesting cases.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::Duration;

use kcl_lease::{
    Decoded, ExpiryTracker, Item, Lease, LeaseStore, LoggedWrite, MemoryStore, RenewVerdict,
    StoreError, Table, UpdateError, Write, block_on, decode, interpret_renew_failure, ops,
};
use kcl_protocol::ExtendedSequenceNumber as E;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const WORKERS: usize = 3;
const LEASES: usize = 3;
const FAILOVER: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
enum Step {
    Tick(u64),
    Renew(usize),
    Scan(usize),
    Take(usize, usize),
    Discover(usize),
    Checkpoint {
        worker: usize,
        lease: usize,
        advance: u64,
        rewind: bool,
    },
    Evict(usize, usize),
    Transfer(usize),
    LeaderScan,
    Assign(usize, usize),
    Handoff(usize, usize),
    FailNext,
    LandButFailNext,
}

fn step() -> impl Strategy<Value = Step> {
    let w = 0..WORKERS;
    let l = 0..LEASES;
    prop_oneof![
        6 => (1u64..=4).prop_map(Step::Tick),
        6 => w.clone().prop_map(Step::Renew),
        3 => w.clone().prop_map(Step::Scan),
        3 => (w.clone(), l.clone()).prop_map(|(w, l)| Step::Take(w, l)),
        3 => w.clone().prop_map(Step::Discover),
        5 => (w.clone(), l.clone(), 1u64..=5, proptest::bool::weighted(0.25))
            .prop_map(|(worker, lease, advance, rewind)| Step::Checkpoint { worker, lease, advance, rewind }),
        1 => (w.clone(), l.clone()).prop_map(|(w, l)| Step::Evict(w, l)),
        4 => w.clone().prop_map(Step::Transfer),
        2 => Just(Step::LeaderScan),
        2 => (l.clone(), w.clone()).prop_map(|(l, w)| Step::Assign(l, w)),
        2 => (l, w).prop_map(|(l, w)| Step::Handoff(l, w)),
        1 => Just(Step::FailNext),
        1 => Just(Step::LandButFailNext),
    ]
}

/// What a write was meant to be, by whom.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Create,
    Renew,
    Take { observed_expired: bool },
    Checkpoint { rewind: bool },
    Evict,
    Transfer,
    Assign { observed_expired_or_unowned: bool },
    Handoff,
}

#[derive(Clone, Debug)]
struct Tag {
    actor: String,
    kind: Kind,
    known_counter: u64,
    /// `leaseOwner` and `checkpointOwner` as the writer knew them.
    known_owners: (Option<String>, Option<String>),
}

fn known(lease: &Lease) -> (Option<String>, Option<String>) {
    (lease.lease_owner.clone(), lease.checkpoint_owner.clone())
}

/// A lease a worker believes it holds: its in-memory view and how far it has processed.
#[derive(Clone, Debug)]
struct Held {
    view: Lease,
    progress: u64,
}

struct Worker {
    id: String,
    held: BTreeMap<String, Held>,
    seen: BTreeMap<String, Lease>,
    tracker: ExpiryTracker<Duration>,
}

/// Counts of what happened, over all cases.
#[derive(Default, Debug)]
struct Stats {
    cases: u64,
    steps: u64,
    writes: BTreeMap<&'static str, [u64; 4]>, // landed, condition failed, store failed, landed but reported failed
    adopted_handoffs: u64,
    spurious_renewals: u64,
    lost_on_renew: u64,
    fenced_checkpoints: u64,
    takes_from_another_owner: u64,
    assigns_of_expired_owned: u64,
    transfers_landed: u64,
    rewinds_landed: u64,
}

impl Stats {
    fn merge(&mut self, other: &Stats) {
        self.cases += other.cases;
        self.steps += other.steps;
        for (kind, counts) in &other.writes {
            let mine = self.writes.entry(kind).or_default();
            for (a, b) in mine.iter_mut().zip(counts) {
                *a += b;
            }
        }
        self.adopted_handoffs += other.adopted_handoffs;
        self.spurious_renewals += other.spurious_renewals;
        self.lost_on_renew += other.lost_on_renew;
        self.fenced_checkpoints += other.fenced_checkpoints;
        self.takes_from_another_owner += other.takes_from_another_owner;
        self.assigns_of_expired_owned += other.assigns_of_expired_owned;
        self.transfers_landed += other.transfers_landed;
        self.rewinds_landed += other.rewinds_landed;
    }
}

struct Sim {
    store: MemoryStore,
    now: Duration,
    workers: Vec<Worker>,
    leader_seen: BTreeMap<String, Lease>,
    leader_tracker: ExpiryTracker<Duration>,
    tags: Vec<Option<Tag>>,
    checked: usize,
    max_counter: BTreeMap<String, u64>,
    stats: Stats,
}

fn key(index: usize) -> String {
    format!("shardId-{index:012}")
}

fn as_lease(item: &Item) -> Lease {
    match decode(item).expect("the simulation writes only valid leases") {
        Decoded::Lease(lease) => lease,
        Decoded::NotALease { .. } => unreachable!(),
    }
}

fn progress_of(checkpoint: &E) -> u64 {
    checkpoint.sequence_number().parse().unwrap_or(0)
}

fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Create => "create",
        Kind::Renew => "renew",
        Kind::Take { .. } => "take",
        Kind::Checkpoint { .. } => "checkpoint",
        Kind::Evict => "evict",
        Kind::Transfer => "transfer",
        Kind::Assign { .. } => "assign",
        Kind::Handoff => "handoff",
    }
}

impl Sim {
    fn new() -> Self {
        let mut sim = Sim {
            store: MemoryStore::new(),
            now: Duration::ZERO,
            workers: (0..WORKERS)
                .map(|i| Worker {
                    id: format!("worker-{i}"),
                    held: BTreeMap::new(),
                    seen: BTreeMap::new(),
                    tracker: ExpiryTracker::new(FAILOVER),
                })
                .collect(),
            leader_seen: BTreeMap::new(),
            leader_tracker: ExpiryTracker::new(FAILOVER),
            tags: Vec::new(),
            checked: 0,
            max_counter: BTreeMap::new(),
            stats: Stats::default(),
        };
        for index in 0..LEASES {
            let lease = Lease::new(key(index), E::trim_horizon());
            let tag = Tag {
                actor: "shard-sync".into(),
                kind: Kind::Create,
                known_counter: 0,
                known_owners: (None, None),
            };
            sim.write(tag, &ops::create_if_not_exists(&lease))
                .expect("created");
        }
        sim
    }

    /// Runs one write, tagging the log entry it makes.
    fn write(&mut self, tag: Tag, write: &Write) -> Result<Item, UpdateError> {
        let before = self.store.write_count();
        let result = block_on(self.store.update(Table::Lease, write));
        self.tag_new(before, tag);
        result
    }

    fn tag_new(&mut self, before: usize, tag: Tag) {
        let after = self.store.write_count();
        assert_eq!(after, before + 1, "one write, one log entry");
        self.tags.resize(after, None);
        self.tags[before] = Some(tag);
    }

    fn scan(&mut self) -> Option<Vec<Lease>> {
        let items = block_on(self.store.scan(Table::Lease)).ok()?;
        Some(items.iter().map(as_lease).collect())
    }

    fn run(&mut self, step: &Step) {
        self.stats.steps += 1;
        match *step {
            Step::Tick(seconds) => self.now += Duration::from_secs(seconds),
            Step::Renew(w) => self.renew_all(w),
            Step::Scan(w) => {
                if let Some(leases) = self.scan() {
                    let worker = &mut self.workers[w];
                    worker.tracker.observe_scan(
                        leases.iter().map(|l| {
                            (
                                l.lease_key.as_str(),
                                l.lease_counter,
                                l.lease_owner.is_some(),
                            )
                        }),
                        self.now,
                    );
                    worker.seen = leases
                        .into_iter()
                        .map(|l| (l.lease_key.clone(), l))
                        .collect();
                }
            }
            Step::Take(w, l) => self.take(w, &key(l)),
            Step::Discover(w) => self.discover(w),
            Step::Checkpoint {
                worker,
                lease,
                advance,
                rewind,
            } => self.checkpoint(worker, &key(lease), advance, rewind),
            Step::Evict(w, l) => {
                let Some(held) = self.workers[w].held.remove(&key(l)) else {
                    return;
                };
                let tag = Tag {
                    actor: self.workers[w].id.clone(),
                    kind: Kind::Evict,
                    known_counter: held.view.lease_counter,
                    known_owners: known(&held.view),
                };
                let _ = self.write(tag, &ops::evict(&held.view));
            }
            Step::Transfer(w) => self.transfer(w),
            Step::LeaderScan => {
                if let Some(leases) = self.scan() {
                    self.leader_tracker.observe_scan(
                        leases.iter().map(|l| {
                            (
                                l.lease_key.as_str(),
                                l.lease_counter,
                                l.actual_owner().is_some(),
                            )
                        }),
                        self.now,
                    );
                    self.leader_seen = leases
                        .into_iter()
                        .map(|l| (l.lease_key.clone(), l))
                        .collect();
                }
            }
            Step::Assign(l, w) => self.assign(&key(l), w),
            Step::Handoff(l, w) => self.handoff(&key(l), w),
            Step::FailNext => self
                .store
                .fail_next(1, StoreError::Unavailable("injected".into())),
            Step::LandButFailNext => self.store.land_but_fail_next(1),
        }
        self.check();
    }

    /// The renewer: every held lease, Java's failure handling included.
    fn renew_all(&mut self, w: usize) {
        let keys: Vec<String> = self.workers[w].held.keys().cloned().collect();
        for lease_key in keys {
            // Java retries once after adopting a handoff.
            for _attempt in 0..2 {
                let view = self.workers[w].held[&lease_key].view.clone();
                let tag = Tag {
                    actor: self.workers[w].id.clone(),
                    kind: Kind::Renew,
                    known_counter: view.lease_counter,
                    known_owners: known(&view),
                };
                match self.write(tag, &ops::renew(&view)) {
                    Ok(_) => {
                        let worker = &mut self.workers[w];
                        worker.held.get_mut(&lease_key).unwrap().view.lease_counter += 1;
                        worker.tracker.record_own_write(
                            &lease_key,
                            view.lease_counter + 1,
                            self.now,
                        );
                        break;
                    }
                    Err(UpdateError::Store(_)) => break,
                    Err(UpdateError::ConditionFailed(failed)) => {
                        match interpret_renew_failure(&view, failed.current.as_ref()) {
                            RenewVerdict::AdoptHandoff {
                                lease_owner,
                                checkpoint_owner,
                            } => {
                                self.stats.adopted_handoffs += 1;
                                let held = self.workers[w].held.get_mut(&lease_key).unwrap();
                                held.view.lease_owner = lease_owner;
                                held.view.checkpoint_owner = Some(checkpoint_owner);
                                continue;
                            }
                            RenewVerdict::Spurious { counter } => {
                                self.stats.spurious_renewals += 1;
                                self.workers[w]
                                    .held
                                    .get_mut(&lease_key)
                                    .unwrap()
                                    .view
                                    .lease_counter = counter;
                            }
                            RenewVerdict::Lost => {
                                self.stats.lost_on_renew += 1;
                                self.workers[w].held.remove(&lease_key);
                            }
                        }
                        break;
                    }
                }
            }
        }
    }

    /// The 2.x taker: a lease from the last scan, if unowned or observed expired.
    fn take(&mut self, w: usize, lease_key: &str) {
        let worker = &self.workers[w];
        let Some(view) = worker.seen.get(lease_key).cloned() else {
            return;
        };
        if worker.held.contains_key(lease_key) {
            return;
        }
        let expired = worker.tracker.is_expired(lease_key, self.now);
        if view.lease_owner.is_some() && !expired {
            return;
        }
        let tag = Tag {
            actor: worker.id.clone(),
            kind: Kind::Take {
                observed_expired: expired,
            },
            known_counter: view.lease_counter,
            known_owners: known(&view),
        };
        let me = worker.id.clone();
        if let Ok(after) = self.write(tag, &ops::take(&view, &me)) {
            let lease = as_lease(&after);
            let worker = &mut self.workers[w];
            worker
                .tracker
                .record_own_write(lease_key, lease.lease_counter, self.now);
            let progress = progress_of(&lease.checkpoint);
            worker.held.insert(
                lease_key.to_owned(),
                Held {
                    view: lease,
                    progress,
                },
            );
        }
    }

    /// 3.x discovery: the owner index, then a consistent read of each new lease.
    fn discover(&mut self, w: usize) {
        let me = self.workers[w].id.clone();
        let Ok(keys) = block_on(self.store.query_owner(&me)) else {
            return;
        };
        for lease_key in keys {
            if self.workers[w].held.contains_key(&lease_key) {
                continue;
            }
            let Ok(Some(item)) = block_on(self.store.get(Table::Lease, &lease_key, true)) else {
                continue;
            };
            let lease = as_lease(&item);
            if lease.lease_owner.as_deref() == Some(me.as_str()) && lease.checkpoint_owner.is_none()
            {
                let progress = progress_of(&lease.checkpoint);
                self.workers[w].held.insert(
                    lease_key,
                    Held {
                        view: lease,
                        progress,
                    },
                );
            }
        }
    }

    fn checkpoint(&mut self, w: usize, lease_key: &str, advance: u64, rewind: bool) {
        let Some(held) = self.workers[w].held.get(lease_key).cloned() else {
            return;
        };
        let rewind = rewind && held.progress >= 2;
        let position = if rewind {
            held.progress - 1
        } else {
            held.progress + advance
        };
        let value = E::new(position.to_string(), 0);
        let tag = Tag {
            actor: self.workers[w].id.clone(),
            kind: Kind::Checkpoint { rewind },
            known_counter: held.view.lease_counter,
            known_owners: known(&held.view),
        };
        let result = self.write(tag, &ops::checkpoint(&held.view, &value));
        let worker = &mut self.workers[w];
        // Processing moved on whatever the write's fate (a retry sends at least this far).
        if let Some(held) = worker.held.get_mut(lease_key) {
            held.progress = position;
        }
        match result {
            Ok(_) => {
                let held = worker.held.get_mut(lease_key).unwrap();
                held.view.lease_counter += 1;
                held.view.checkpoint = value;
                held.view.owner_switches_since_checkpoint = 0;
                worker
                    .tracker
                    .record_own_write(lease_key, held.view.lease_counter, self.now);
            }
            Err(UpdateError::ConditionFailed(_)) => {
                // The checkpointer's write was fenced off: the lease is gone (ShutdownException).
                self.stats.fenced_checkpoints += 1;
                worker.held.remove(lease_key);
            }
            Err(UpdateError::Store(_)) => {}
        }
    }

    /// The old owner completes a handoff it adopted.
    fn transfer(&mut self, w: usize) {
        let me = self.workers[w].id.clone();
        let adopted: Vec<String> = self.workers[w]
            .held
            .iter()
            .filter(|(_, held)| held.view.checkpoint_owner.as_deref() == Some(me.as_str()))
            .map(|(key, _)| key.clone())
            .collect();
        for lease_key in adopted {
            let held = self.workers[w].held.remove(&lease_key).unwrap();
            let new_owner = held
                .view
                .lease_owner
                .clone()
                .expect("a handoff names the new owner");
            let tag = Tag {
                actor: me.clone(),
                kind: Kind::Transfer,
                known_counter: held.view.lease_counter,
                known_owners: known(&held.view),
            };
            if self
                .write(tag, &ops::assign(&held.view, &new_owner))
                .is_ok()
            {
                self.stats.transfers_landed += 1;
            }
        }
    }

    fn assign(&mut self, lease_key: &str, w: usize) {
        let Some(view) = self.leader_seen.get(lease_key).cloned() else {
            return;
        };
        let eligible =
            view.actual_owner().is_none() || self.leader_tracker.is_expired(lease_key, self.now);
        if !eligible {
            return;
        }
        let to = self.workers[w].id.clone();
        let tag = Tag {
            actor: "leader".into(),
            kind: Kind::Assign {
                observed_expired_or_unowned: eligible,
            },
            known_counter: view.lease_counter,
            known_owners: known(&view),
        };
        if let Ok(after) = self.write(tag, &ops::assign(&view, &to)) {
            self.leader_seen
                .insert(lease_key.to_owned(), as_lease(&after));
        }
    }

    fn handoff(&mut self, lease_key: &str, w: usize) {
        let Some(view) = self.leader_seen.get(lease_key).cloned() else {
            return;
        };
        let to = self.workers[w].id.clone();
        let live = view.checkpoint_owner.is_none()
            && view.lease_owner.as_deref().is_some_and(|owner| owner != to)
            && !self.leader_tracker.is_expired(lease_key, self.now);
        if !live {
            return;
        }
        let tag = Tag {
            actor: "leader".into(),
            kind: Kind::Handoff,
            known_counter: view.lease_counter,
            known_owners: known(&view),
        };
        let write = ops::initiate_graceful_handoff(&view, &to).expect("owned");
        if let Ok(after) = self.write(tag, &write) {
            self.leader_seen
                .insert(lease_key.to_owned(), as_lease(&after));
        }
    }

    /// The invariants, on every write logged since the last check, then on the workers' views.
    fn check(&mut self) {
        let log: Vec<LoggedWrite> = self.store.writes();
        for (index, entry) in log.iter().enumerate().skip(self.checked) {
            let tag = self.tags[index].clone().expect("every write is tagged");
            self.check_write(&tag, entry);
        }
        self.checked = log.len();
        for (lease_key, item) in self.store.items(Table::Lease) {
            let stored = as_lease(&item).lease_counter;
            let holders: Vec<&str> = self
                .workers
                .iter()
                .filter(|w| {
                    w.held
                        .get(&lease_key)
                        .is_some_and(|h| h.view.lease_counter == stored)
                })
                .map(|w| w.id.as_str())
                .collect();
            assert!(
                holders.len() <= 1,
                "5: {lease_key} held at counter {stored} by {holders:?}"
            );
        }
    }

    fn check_write(&mut self, tag: &Tag, entry: &LoggedWrite) {
        let counts = self.stats.writes.entry(kind_name(&tag.kind)).or_default();
        match &entry.outcome {
            kcl_lease::Outcome::Landed => counts[0] += 1,
            kcl_lease::Outcome::ConditionFailed => counts[1] += 1,
            kcl_lease::Outcome::Failed(_) => counts[2] += 1,
            kcl_lease::Outcome::LandedButReportedFailure => counts[3] += 1,
            kcl_lease::Outcome::Invalid => panic!("an invalid write: {entry:?}"),
        }
        if !entry.landed() {
            assert_eq!(
                entry.before, entry.after,
                "a write that did not land changed the item"
            );
            return;
        }
        let after = as_lease(entry.after.as_ref().expect("no deletes in this simulation"));
        // 1. Counters never decrease.
        let floor = self.max_counter.entry(entry.key.clone()).or_insert(0);
        assert!(
            after.lease_counter >= *floor,
            "1: {} counter {} below {}",
            entry.key,
            after.lease_counter,
            floor
        );
        *floor = after.lease_counter;
        let Some(before) = entry.before.as_ref().map(as_lease) else {
            assert_eq!(tag.kind, Kind::Create);
            return;
        };
        assert!(
            after.lease_counter >= before.lease_counter,
            "1: {:?} lowered the counter",
            tag
        );
        let owners = |l: &Lease| (l.lease_owner.clone(), l.checkpoint_owner.clone());
        // Every landed write met Java's fence: the counter its writer knew (renew, take,
        // checkpoint) or the owners its writer knew (assign, handoff, transfer, evict).
        match &tag.kind {
            Kind::Renew | Kind::Take { .. } | Kind::Checkpoint { .. } => {
                assert_eq!(
                    before.lease_counter, tag.known_counter,
                    "{tag:?} landed on counter {}",
                    before.lease_counter
                )
            }
            Kind::Assign { .. } | Kind::Handoff | Kind::Transfer | Kind::Evict => {
                assert_eq!(
                    owners(&before),
                    tag.known_owners,
                    "{tag:?} landed on owners {:?}",
                    owners(&before)
                )
            }
            Kind::Create => {}
        }
        match &tag.kind {
            Kind::Checkpoint { rewind } => {
                // 2. Only the actual owner at the counter it knew.
                assert_eq!(
                    before.actual_owner(),
                    Some(tag.actor.as_str()),
                    "2: {tag:?} by a non-owner: {before:?}"
                );
                assert_eq!(
                    before.lease_counter, tag.known_counter,
                    "2: {tag:?} at a stale counter"
                );
                // 3. Never backwards, except a rewind (by the owner, as 2 shows).
                let order = after.checkpoint.compare(&before.checkpoint).unwrap();
                if *rewind {
                    self.stats.rewinds_landed += 1;
                } else {
                    assert_ne!(
                        order,
                        Ordering::Less,
                        "3: {tag:?} moved the checkpoint back: {:?} -> {:?}",
                        before.checkpoint,
                        after.checkpoint
                    );
                }
                assert_eq!(
                    owners(&after),
                    owners(&before),
                    "4: a checkpoint changed the owners"
                );
            }
            Kind::Renew => {
                assert_eq!(
                    owners(&after),
                    owners(&before),
                    "4: a renewal changed the owners"
                );
                assert_eq!(after.checkpoint, before.checkpoint);
            }
            _ => {}
        }
        // 4. Taking a lease from another actual owner.
        let from = before.actual_owner();
        let lost_it = from.is_some()
            && (after.actual_owner() != from || after.lease_owner != before.lease_owner);
        if lost_it {
            let from = from.unwrap();
            match &tag.kind {
                Kind::Take { observed_expired } => {
                    if from != tag.actor {
                        assert!(observed_expired, "4: {tag:?} took a live lease from {from}");
                        self.stats.takes_from_another_owner += 1;
                    }
                }
                Kind::Assign {
                    observed_expired_or_unowned,
                } => {
                    assert!(
                        observed_expired_or_unowned,
                        "4: {tag:?} assigned a live lease"
                    );
                    self.stats.assigns_of_expired_owned += 1;
                }
                Kind::Handoff => {
                    assert_eq!(
                        after.checkpoint_owner.as_deref(),
                        Some(from),
                        "4: a handoff must leave the old owner as checkpoint owner"
                    );
                }
                Kind::Transfer | Kind::Evict => {
                    assert_eq!(from, tag.actor, "4: {tag:?} removed what {from} holds");
                }
                other => panic!(
                    "4: {other:?} changed the owner of {} from {from}",
                    entry.key
                ),
            }
        }
    }
}

fn run_case(steps: &[Step]) -> Stats {
    let mut sim = Sim::new();
    for step in steps {
        sim.run(step);
    }
    sim.stats.cases = 1;
    sim.stats
}

fn cases() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(step(), 20..160)
}

/// Runs the generated cases (each asserting the invariants after every step), then prints
/// what they exercised.
#[test]
fn interleavings_keep_the_invariants() {
    // Fewer cases for quick runs: KCL_PROPTEST_CASES=64.
    let count = std::env::var("KCL_PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(512);
    let total = RefCell::new(Stats::default());
    let mut runner = TestRunner::new(Config {
        cases: count,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&cases(), |steps| {
        total.borrow_mut().merge(&run_case(&steps));
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
    let total = total.into_inner();
    eprintln!(
        "interleavings: {} cases, {} steps",
        total.cases, total.steps
    );
    eprintln!(
        "  {:<11} {:>7} {:>9} {:>8} {:>9}",
        "write", "landed", "cond.fail", "failed", "spurious"
    );
    for (kind, [landed, refused, failed, spurious]) in &total.writes {
        eprintln!("  {kind:<11} {landed:>7} {refused:>9} {failed:>8} {spurious:>9}");
    }
    eprintln!(
        "  renew verdicts: {} handoffs adopted, {} spurious, {} lost; {} checkpoints fenced off; \
         {} takes from another owner (expired); {} assignments of expired owned leases; {} transfers; {} rewinds",
        total.adopted_handoffs,
        total.spurious_renewals,
        total.lost_on_renew,
        total.fenced_checkpoints,
        total.takes_from_another_owner,
        total.assigns_of_expired_owned,
        total.transfers_landed,
        total.rewinds_landed,
    );
    // The generator must keep reaching the cases the invariants are about (floors scale with
    // the number of cases).
    let cases = u64::from(count);
    let landed = |kind: &str| total.writes.get(kind).map_or(0, |counts| counts[0]);
    for kind in [
        "renew",
        "take",
        "checkpoint",
        "evict",
        "transfer",
        "assign",
        "handoff",
    ] {
        // A transfer needs a handoff, its adoption by a renewal, then the transfer step.
        let floor = if kind == "transfer" {
            cases / 32
        } else {
            cases / 16
        };
        assert!(
            landed(kind) >= floor,
            "too few landed {kind} writes: {} < {floor}",
            landed(kind)
        );
    }
    for (what, count) in [
        ("adopted handoffs", total.adopted_handoffs),
        ("spurious renewals", total.spurious_renewals),
        ("renewals that found the lease lost", total.lost_on_renew),
        ("fenced checkpoints", total.fenced_checkpoints),
        ("takes from another owner", total.takes_from_another_owner),
        (
            "assignments of expired owned leases",
            total.assigns_of_expired_owned,
        ),
        ("rewinds", total.rewinds_landed),
    ] {
        let floor = cases / 32;
        assert!(count >= floor, "too few {what}: {count} < {floor}");
    }
}
