//! The leader role and the launch against the in-memory tables, on tokio's paused clock: the
//! `Leader` lock between two native leaders and after one dies, the assignment manager serving
//! a hand-simulated Java follower (graceful handoff answered by the test), leadership released
//! after three failed runs, the leader's shard sync (initial leases only on an empty table,
//! holes filled, children left to the parent's owner), and `Migration3.0` for a new
//! application written once by two workers starting together.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use kcl_lease::coordinator::{MIGRATION_KEY, report};
use kcl_lease::plan::{ChildShard, shard_end};
use kcl_lease::{ClientVersion, Outcome};
use kcl_lease::{
    Decoded, Delete, Item, Lease, LeaseStore, LockItem, MemoryStore, MigrationState, Request,
    StoreError, Table, Update, UpdateError, WorkerMetricStats, Write, decode, decode_leases, ops,
};
use kcl_native::config::InitialPosition;
use kcl_native::coordinator::{
    ClientVersionConfig, Coordinator, CoordinatorConfig, LeaseEvent, LeaseHandle, Role, ShardSync,
    StartOptions, WallClock,
};
use kcl_native::kinesis::KinesisReader;
use kcl_native::testing::MemoryKinesis;
use kcl_producer::api::StreamRef;
use kcl_protocol::ExtendedSequenceNumber as E;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Instant, sleep, sleep_until};

const S: fn(u64) -> Duration = Duration::from_secs;

/// A wall clock that moves with tokio's (paused) clock.
fn tokio_clock() -> Arc<dyn WallClock> {
    let base = SystemTime::now();
    let start = Instant::now();
    Arc::new(move || base + start.elapsed())
}

fn leader(worker_id: &str) -> CoordinatorConfig {
    CoordinatorConfig::new(worker_id)
}

fn lease_in(store: &MemoryStore, key: &str) -> Lease {
    match decode(&store.item(Table::Lease, key).expect("the lease exists")).unwrap() {
        Decoded::Lease(lease) => lease,
        Decoded::NotALease { .. } => panic!("not a lease"),
    }
}

fn owners(store: &MemoryStore) -> BTreeMap<String, usize> {
    let mut owners = BTreeMap::new();
    for item in store.items(Table::Lease).values() {
        if let Ok(Decoded::Lease(lease)) = decode(item) {
            *owners
                .entry(lease.lease_owner.unwrap_or_default())
                .or_default() += 1;
        }
    }
    owners
}

fn lock_owner(store: &MemoryStore) -> Option<String> {
    store
        .item(Table::CoordinatorState, "Leader")
        .map(|item| LockItem::decode(&item).unwrap().owner_name)
}

async fn seed(store: &MemoryStore, key: &str, owner: Option<&str>) {
    let lease = Lease::new(key, E::new("100", 0));
    assert!(store.create_if_not_exists(&lease).await.unwrap());
    if let Some(owner) = owner {
        store
            .update(Table::Lease, &ops::assign(&lease, owner))
            .await
            .unwrap();
    }
}

/// Landed handoff initiations: `checkpointOwner` set where it was not.
fn handoffs(store: &MemoryStore) -> Vec<(String, String, String)> {
    store
        .writes()
        .iter()
        .filter(|w| w.table == Table::Lease && w.landed())
        .filter_map(|w| {
            let before = w.before.as_ref()?;
            let after = w.after.as_ref()?;
            if before.contains_key("checkpointOwner") || !after.contains_key("checkpointOwner") {
                return None;
            }
            Some((
                w.key.clone(),
                after["checkpointOwner"].as_s()?.to_owned(),
                after["leaseOwner"].as_s()?.to_owned(),
            ))
        })
        .collect()
}

/// Every owner a landed lease write ever set.
fn owners_ever_set(store: &MemoryStore) -> BTreeSet<String> {
    store
        .writes()
        .iter()
        .filter(|w| w.table == Table::Lease && w.landed())
        .filter_map(|w| Some(w.after.as_ref()?.get("leaseOwner")?.as_s()?.to_owned()))
        .collect()
}

/// Answers every graceful handoff of the coordinator's leases as soon as it is requested (a
/// shard worker whose processor returns from `shutdownRequested` at once).
fn answer_handoffs(mut events: UnboundedReceiver<LeaseEvent>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(LeaseEvent::Acquired(handle)) = events.recv().await {
            tokio::spawn(async move {
                if handle.shutdown_requested().await
                    == kcl_native::coordinator::LeaseStatus::ShutdownRequested
                {
                    let _ = handle.handoff_done().await;
                }
            });
        }
    })
}

#[tokio::test(start_paused = true)]
async fn two_native_leaders_one_holds_the_lock() {
    let store = Arc::new(MemoryStore::new());
    let (a, _ea) = Coordinator::start(store.clone(), leader("native-a")).unwrap();
    let (b, _eb) = Coordinator::start(store.clone(), leader("native-b")).unwrap();
    sleep(S(1)).await;
    let first = lock_owner(&store).expect("someone holds the lock");
    let start = Instant::now();
    while start.elapsed() < S(600) {
        assert_ne!(a.is_leader(), b.is_leader(), "exactly one leads");
        assert_eq!(lock_owner(&store).as_ref(), Some(&first));
        let leading = if a.is_leader() {
            "native-a"
        } else {
            "native-b"
        };
        assert_eq!(leading, first);
        sleep(S(1)).await;
    }
    // The holder rewrote the record version number every heartbeat: the other never stole.
    let lock_writes: Vec<_> = store
        .writes()
        .into_iter()
        .filter(|w| w.table == Table::CoordinatorState && w.landed())
        .collect();
    assert_eq!(
        lock_writes.len(),
        1 + 600 / 30,
        "one acquisition, then heartbeats"
    );
    a.close().await;
    b.close().await;
}

#[tokio::test(start_paused = true)]
async fn a_dead_leader_is_replaced_after_the_lock_lease_and_its_leases_reassigned() {
    let store = Arc::new(MemoryStore::new());
    for n in 0..4 {
        let owner = if n % 2 == 0 { "native-a" } else { "native-b" };
        seed(&store, &format!("shardId-{n}"), Some(owner)).await;
    }
    let clock = tokio_clock();
    let options = StartOptions::default().clock(clock);
    let (a, ea) =
        Coordinator::start_with(store.clone(), leader("native-a"), options.clone()).unwrap();
    let (b, eb) = Coordinator::start_with(store.clone(), leader("native-b"), options).unwrap();
    let _b_shards = answer_handoffs(eb);
    sleep(S(30)).await;
    assert!(a.is_leader() && !b.is_leader());
    assert_eq!(owners(&store)["native-a"], 2);
    // native-a dies: no release, no renewal, no eviction.
    drop(a);
    drop(ea);
    let died = Instant::now();
    while !b.is_leader() {
        sleep(S(1)).await;
        assert!(died.elapsed() < S(300), "never took over");
    }
    let took_over = died.elapsed();
    assert!(
        took_over > S(120),
        "stole after {took_over:?}: before one lease duration"
    );
    assert!(took_over <= S(120 + 60 + 1), "stole after {took_over:?}");
    assert_eq!(lock_owner(&store).as_deref(), Some("native-b"));
    // Until then nobody assigned native-a's leases: no leader.
    assert_eq!(owners(&store)["native-a"], 2);
    // The new leader sees them unchanged for the failover time, then assigns them.
    sleep(S(9)).await;
    assert_eq!(
        owners(&store)["native-a"],
        2,
        "assigned before they expired"
    );
    sleep(S(25)).await;
    assert_eq!(owners(&store).get("native-b"), Some(&4));
    sleep(S(15)).await;
    assert_eq!(b.held().len(), 4);
    b.close().await;
}

/// A worker that died (kill -9) leaves its WorkerMetricStats row fresh for two reports (60 s):
/// its leases expire after the failover time and must go to a live worker, not back to the
/// dead one (for which, its leases expired, the planner counts no load) nor to it by a
/// rebalance; once its row reports again (it restarted) it gets leases again.
#[tokio::test(start_paused = true)]
async fn a_dead_worker_gets_no_lease_while_its_row_still_looks_active() {
    let store = Arc::new(MemoryStore::new());
    let clock = tokio_clock();
    for n in 0..4 {
        let owner = if n < 2 { "dead-b" } else { "native-a" };
        seed(&store, &format!("shardId-{n}"), Some(owner)).await;
    }
    let now_s = || {
        clock
            .now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let row = |s| report(&WorkerMetricStats::default_metric("dead-b", s));
    store
        .update(Table::WorkerMetrics, &row(now_s()))
        .await
        .unwrap();
    let seeded = store.writes().len();
    let given_to_b = |store: &MemoryStore| {
        store.writes()[seeded..]
            .iter()
            .filter(|w| w.table == Table::Lease && w.landed())
            .filter(|w| {
                w.after.as_ref().and_then(|a| a.get("leaseOwner")?.as_s()) == Some("dead-b")
            })
            .count()
    };
    let options = StartOptions::default().clock(clock.clone());
    let (a, events) = Coordinator::start_with(store.clone(), leader("native-a"), options).unwrap();
    let _shards = answer_handoffs(events);
    // Runs at 0, 20 and 40 s: the second sees dead-b's leases expired, its row still active.
    sleep(S(55)).await;
    assert!(a.is_leader());
    assert_eq!(
        owners(&store).get("native-a"),
        Some(&4),
        "{:?}",
        owners(&store)
    );
    assert_eq!(given_to_b(&store), 0, "a lease went to the dead worker");
    // dead-b comes back: its row reports again, and a rebalance gives it leases.
    store
        .update(Table::WorkerMetrics, &row(now_s()))
        .await
        .unwrap();
    sleep(S(30)).await;
    assert!(given_to_b(&store) > 0, "{:?}", owners(&store));
    a.close().await;
}

/// A worker that stops gracefully deletes its WorkerMetricStats row before it evicts its
/// leases: the leader gives the released leases to the workers that remain at once, never back
/// to the stopped one (whose row would otherwise count it active for two more reports).
#[tokio::test(start_paused = true)]
async fn a_stopped_worker_gets_none_of_the_leases_it_released() {
    let store = Arc::new(MemoryStore::new());
    for n in 0..4 {
        seed(&store, &format!("shardId-{n}"), None).await;
    }
    let options = StartOptions::default().clock(tokio_clock());
    let (a, ea) =
        Coordinator::start_with(store.clone(), leader("native-a"), options.clone()).unwrap();
    let _a_shards = answer_handoffs(ea);
    sleep(S(1)).await;
    let (b, eb) = Coordinator::start_with(store.clone(), leader("native-b"), options).unwrap();
    let _b_shards = answer_handoffs(eb);
    sleep(S(90)).await;
    assert!(a.is_leader());
    assert_eq!(
        owners(&store).get("native-b"),
        Some(&2),
        "{:?}",
        owners(&store)
    );
    assert!(store.item(Table::WorkerMetrics, "native-b").is_some());
    b.close().await;
    assert!(
        store.item(Table::WorkerMetrics, "native-b").is_none(),
        "the row is left"
    );
    let closed = store.writes().len();
    sleep(S(45)).await;
    assert_eq!(
        owners(&store).get("native-a"),
        Some(&4),
        "{:?}",
        owners(&store)
    );
    let given_to_b = store.writes()[closed..]
        .iter()
        .filter(|w| w.table == Table::Lease && w.landed())
        .filter(|w| w.after.as_ref().and_then(|a| a.get("leaseOwner")?.as_s()) == Some("native-b"))
        .count();
    assert_eq!(
        given_to_b, 0,
        "released leases went back to the stopped worker"
    );
    a.close().await;
    assert!(store.item(Table::WorkerMetrics, "native-a").is_none());
}

/// A Java follower, simulated: its metrics row and renewals every second, discovery through
/// the owner index, and the transfer at the end of each graceful handoff it is asked for.
fn java_follower(
    store: Arc<MemoryStore>,
    id: &'static str,
    clock: Arc<dyn WallClock>,
    transfers: Arc<std::sync::Mutex<Vec<String>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut held: BTreeSet<String> = BTreeSet::new();
        loop {
            let now_s = clock
                .now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let row = WorkerMetricStats::default_metric(id, now_s);
            store
                .update(Table::WorkerMetrics, &report(&row))
                .await
                .unwrap();
            held.extend(store.query_owner(id).await.unwrap());
            for key in held.clone() {
                let Some(item) = store.get(Table::Lease, &key, true).await.unwrap() else {
                    held.remove(&key);
                    continue;
                };
                let Ok(Decoded::Lease(lease)) = decode(&item) else {
                    panic!()
                };
                let owner = lease.lease_owner.as_deref();
                let handing = lease.checkpoint_owner.as_deref();
                if owner == Some(id) && handing.is_none() {
                    let _ = store.update(Table::Lease, &ops::renew(&lease)).await;
                } else if handing == Some(id) {
                    let to = owner.expect("a new owner").to_owned();
                    store
                        .update(Table::Lease, &ops::assign(&lease, &to))
                        .await
                        .unwrap();
                    transfers.lock().unwrap().push(key.clone());
                    held.remove(&key);
                } else {
                    held.remove(&key);
                }
            }
            sleep(S(1)).await;
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_native_leader_serves_a_java_follower() {
    let store = Arc::new(MemoryStore::new());
    let clock = tokio_clock();
    for n in 0..6 {
        seed(&store, &format!("shardId-{n}"), Some("java-1")).await;
    }
    // A worker whose row is ten minutes old: not active.
    let stale_s = clock
        .now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 600;
    store
        .update(
            Table::WorkerMetrics,
            &report(&WorkerMetricStats::default_metric("gone-1", stale_s)),
        )
        .await
        .unwrap();
    let transfers = Arc::new(std::sync::Mutex::new(Vec::new()));
    let java = java_follower(store.clone(), "java-1", clock.clone(), transfers.clone());
    sleep(S(1)).await;
    let options = StartOptions::default().clock(clock);
    let (native, events) =
        Coordinator::start_with(store.clone(), leader("native-1"), options).unwrap();
    let _shards = answer_handoffs(events);
    // The first run balances: two handoffs java-1 → native-1; the fourth run one more.
    sleep(S(70)).await;
    assert!(native.is_leader());
    assert_eq!(owners(&store)["java-1"], 3);
    assert_eq!(owners(&store)["native-1"], 3);
    let moves = handoffs(&store);
    assert_eq!(moves.len(), 3);
    assert!(
        moves
            .iter()
            .all(|(_, from, to)| from == "java-1" && to == "native-1"),
        "{moves:?}"
    );
    assert_eq!(transfers.lock().unwrap().len(), 3);
    // Balanced: nothing moves any more.
    sleep(S(600)).await;
    assert_eq!(handoffs(&store).len(), 3);
    assert_eq!(owners(&store)["java-1"], 3);
    assert_eq!(native.held().len(), 3);
    assert!(!owners_ever_set(&store).contains("gone-1"));
    // An unassigned lease goes to an active worker, never to the inactive one.
    seed(&store, "shardId-6", None).await;
    sleep(S(25)).await;
    let owner = lease_in(&store, "shardId-6").lease_owner.unwrap();
    assert!(owner == "native-1" || owner == "java-1");
    assert!(!owners_ever_set(&store).contains("gone-1"));
    // The stale row is kept: it is not a day old.
    assert!(store.item(Table::WorkerMetrics, "gone-1").is_some());
    java.abort();
    native.close().await;
}

#[tokio::test(start_paused = true)]
async fn rows_older_than_a_day_are_deleted_by_the_leader() {
    let store = Arc::new(MemoryStore::new());
    let clock = tokio_clock();
    let now_s = clock
        .now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for (id, age) in [("old-1", 86_402), ("young-1", 86_000)] {
        let row = WorkerMetricStats::default_metric(id, now_s - age);
        store
            .update(Table::WorkerMetrics, &report(&row))
            .await
            .unwrap();
    }
    let options = StartOptions::default().clock(clock);
    let (native, _events) =
        Coordinator::start_with(store.clone(), leader("native-1"), options).unwrap();
    sleep(S(1)).await;
    assert!(store.item(Table::WorkerMetrics, "old-1").is_none());
    assert!(store.item(Table::WorkerMetrics, "young-1").is_some());
    let delete = store
        .writes()
        .into_iter()
        .find(|w| w.key == "old-1" && matches!(w.request, Request::Delete { .. }))
        .unwrap();
    let Request::Delete { condition } = delete.request else {
        panic!()
    };
    assert!(condition.expectations.iter().any(|e| e.attribute == "lut"));
    native.close().await;
}

/// The memory store with lease-table scans that fail while `failing` is set.
struct FlakyScans {
    table: MemoryStore,
    failing: AtomicBool,
}

impl LeaseStore for FlakyScans {
    async fn get(
        &self,
        table: Table,
        key: &str,
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
        self.table.get(table, key, consistent).await
    }
    async fn scan(&self, table: Table) -> Result<Vec<Item>, StoreError> {
        if table == Table::Lease && self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("injected".into()));
        }
        self.table.scan(table).await
    }
    async fn query_owner(&self, owner: &str) -> Result<Vec<String>, StoreError> {
        self.table.query_owner(owner).await
    }
    async fn update(&self, table: Table, write: &Write) -> Result<Item, UpdateError> {
        self.table.update(table, write).await
    }
    async fn delete(&self, table: Table, delete: &Delete) -> Result<Option<Item>, UpdateError> {
        self.table.delete(table, delete).await
    }
}

#[tokio::test(start_paused = true)]
async fn three_failed_assignment_runs_release_the_leadership() {
    let store = Arc::new(FlakyScans {
        table: MemoryStore::new(),
        failing: AtomicBool::new(false),
    });
    let (native, _events) = Coordinator::start(store.clone(), leader("native-1")).unwrap();
    let start = Instant::now();
    sleep(S(1)).await;
    assert!(native.is_leader());
    store.failing.store(true, Ordering::SeqCst);
    // Runs at 20 s and 40 s fail: still leader.
    sleep_until(start + S(59)).await;
    assert!(native.is_leader());
    assert!(
        store
            .table
            .item(Table::CoordinatorState, "Leader")
            .is_some()
    );
    // The third, at 60 s: released (the item deleted, conditioned on the holder's version).
    sleep_until(start + S(61)).await;
    assert!(!native.is_leader());
    assert!(
        store
            .table
            .item(Table::CoordinatorState, "Leader")
            .is_none()
    );
    let release = store
        .table
        .writes()
        .into_iter()
        .rfind(|w| w.table == Table::CoordinatorState)
        .unwrap();
    let Request::Delete { condition } = &release.request else {
        panic!("a release deletes the lock")
    };
    assert!(
        condition
            .expectations
            .iter()
            .any(|e| e.attribute == "recordVersionNumber")
    );
    // It sits out two heartbeat periods, then contends again.
    store.failing.store(false, Ordering::SeqCst);
    sleep_until(start + S(119)).await;
    assert!(!native.is_leader());
    sleep_until(start + S(122)).await;
    assert!(native.is_leader());
    native.close().await;
    assert!(
        store
            .table
            .item(Table::CoordinatorState, "Leader")
            .is_none()
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_releases_the_lock_and_the_next_leader_takes_it_at_once() {
    let store = Arc::new(MemoryStore::new());
    let (a, _ea) = Coordinator::start(store.clone(), leader("native-a")).unwrap();
    sleep(S(1)).await;
    let (b, _eb) = Coordinator::start(store.clone(), leader("native-b")).unwrap();
    sleep(S(1)).await;
    assert!(a.is_leader());
    a.close().await;
    assert!(lock_owner(&store).is_none());
    sleep(S(31)).await;
    assert!(b.is_leader());
    b.close().await;
}

fn sync_options(kinesis: &MemoryKinesis, position: InitialPosition) -> StartOptions {
    StartOptions::default().shard_sync(ShardSync::new(
        kinesis.clone(),
        StreamRef::name("orders"),
        position,
    ))
}

/// `createLeaseIfNotExists` writes that landed, by key.
fn creations(store: &MemoryStore) -> Vec<(usize, String)> {
    store
        .writes()
        .iter()
        .enumerate()
        .filter(|(_, w)| {
            w.table == Table::Lease
                && w.landed()
                && w.before.is_none()
                && matches!(
                    w.request,
                    Request::Update {
                        update: Update::PutItem(_),
                        ..
                    }
                )
        })
        .map(|(n, w)| (n, w.key.clone()))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_leader_creates_the_initial_leases_and_leaves_children_to_the_owner() {
    let store = Arc::new(MemoryStore::new());
    let kinesis = MemoryKinesis::new("orders", 4);
    let options = sync_options(&kinesis, InitialPosition::TrimHorizon);
    let (native, mut events) =
        Coordinator::start_with(store.clone(), leader("native-1"), options).unwrap();
    sleep(S(1)).await;
    let (leases, _) = decode_leases(&store.scan(Table::Lease).await.unwrap());
    assert_eq!(leases.len(), 4);
    assert!(leases.iter().all(|l| l.checkpoint == E::trim_horizon()
        && l.lease_owner.is_none()
        && l.hash_key_range.is_some()));
    // The next run assigns them to the only active worker.
    let mut handles: BTreeMap<String, LeaseHandle> = BTreeMap::new();
    while handles.len() < 4 {
        let Some(LeaseEvent::Acquired(handle)) = events.recv().await else {
            panic!()
        };
        handles.insert(handle.lease_key().to_owned(), handle);
    }
    // Shard 0 is split: the leader's audits create nothing (the parent's lease covers it).
    let parent = "shardId-000000000000";
    let children_ids = kinesis.fake().split(parent);
    sleep(S(600)).await;
    assert_eq!(
        creations(&store).len(),
        4,
        "the leader created child leases"
    );
    // The owner at the shard's end: the child leases, childShardIds, then SHARD_END.
    let stream = StreamRef::name("orders");
    let children: Vec<ChildShard> = kinesis
        .list_shards(&stream, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| children_ids.contains(&s.shard_id))
        .map(|s| ChildShard::new(s.shard_id, [parent], (s.hash_range.start, s.hash_range.end)))
        .collect();
    let (leases, _) = decode_leases(&store.scan(Table::Lease).await.unwrap());
    let plan = shard_end(&lease_in(&store, parent), &children, &leases).unwrap();
    let mark = store.write_count();
    for create in &plan.creates {
        store.update(Table::Lease, create).await.unwrap();
    }
    handles[parent].checkpoint(E::shard_end()).await.unwrap();
    sleep(S(600)).await;
    let made = creations(&store);
    assert_eq!(made.len(), 6);
    for child in &children_ids {
        let of_child: Vec<_> = made.iter().filter(|(_, key)| key == child).collect();
        assert_eq!(of_child.len(), 1);
        assert!(of_child[0].0 >= mark, "the leader created {child}");
    }
    // The leader did assign the children.
    for child in &children_ids {
        assert_eq!(
            lease_in(&store, child).lease_owner.as_deref(),
            Some("native-1")
        );
    }
    native.close().await;
}

#[tokio::test(start_paused = true)]
async fn a_hole_is_filled_after_three_audits_in_a_row() {
    let store = Arc::new(MemoryStore::new());
    let kinesis = MemoryKinesis::new("orders", 4);
    let options = sync_options(&kinesis, InitialPosition::Latest);
    let (native, _events) =
        Coordinator::start_with(store.clone(), leader("native-1"), options).unwrap();
    let start = Instant::now();
    sleep(S(1)).await;
    assert_eq!(creations(&store).len(), 4);
    // A lease disappears (say, deleted by hand) just before the audit at 120 s.
    sleep_until(start + S(100)).await;
    store
        .delete(
            Table::Lease,
            &Delete {
                key: "shardId-000000000002".into(),
                condition: Default::default(),
            },
        )
        .await
        .unwrap();
    // Audits at 120 and 240 s see the hole; the third, at 360 s, fills it.
    sleep_until(start + S(359)).await;
    assert!(store.item(Table::Lease, "shardId-000000000002").is_none());
    sleep_until(start + S(361)).await;
    let lease = lease_in(&store, "shardId-000000000002");
    assert_eq!(lease.checkpoint, E::new("LATEST", 0));
    assert_eq!(creations(&store).len(), 5);
    native.close().await;
}

/// The memory store, yielding to the runtime before every call (so that two workers starting
/// together interleave their reads and writes).
struct Yielding(MemoryStore);

impl LeaseStore for Yielding {
    async fn get(
        &self,
        table: Table,
        key: &str,
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
        tokio::task::yield_now().await;
        self.0.get(table, key, consistent).await
    }
    async fn scan(&self, table: Table) -> Result<Vec<Item>, StoreError> {
        tokio::task::yield_now().await;
        self.0.scan(table).await
    }
    async fn query_owner(&self, owner: &str) -> Result<Vec<String>, StoreError> {
        tokio::task::yield_now().await;
        self.0.query_owner(owner).await
    }
    async fn update(&self, table: Table, write: &Write) -> Result<Item, UpdateError> {
        tokio::task::yield_now().await;
        self.0.update(table, write).await
    }
    async fn delete(&self, table: Table, delete: &Delete) -> Result<Option<Item>, UpdateError> {
        tokio::task::yield_now().await;
        self.0.delete(table, delete).await
    }
}

fn migration_writes(store: &MemoryStore) -> Vec<Outcome> {
    store
        .writes()
        .into_iter()
        .filter(|w| w.table == Table::CoordinatorState && w.key == MIGRATION_KEY)
        .map(|w| w.outcome)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_new_application_writes_migration_state_once() {
    let store = Arc::new(Yielding(MemoryStore::new()));
    let (a, b) = tokio::join!(
        Coordinator::launch(store.clone(), leader("native-a"), StartOptions::default()),
        Coordinator::launch(store.clone(), leader("native-b"), StartOptions::default()),
    );
    let ((a, _ea), (b, _eb)) = (a.unwrap(), b.unwrap());
    // Both tried (neither had seen the item), exactly one landed.
    assert_eq!(
        migration_writes(&store.0),
        [Outcome::Landed, Outcome::ConditionFailed]
    );
    let state = MigrationState::decode(
        &store
            .0
            .item(Table::CoordinatorState, MIGRATION_KEY)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(state.client_version, ClientVersion::V3x);
    assert!(["native-a", "native-b"].contains(&state.modified_by.as_str()));
    // As the 3.1.3 daemon writes it for a new application: one history entry, the creator's
    // CLIENT_VERSION_INIT state (the e2e's scenario 4 compares the two items).
    assert_eq!(state.history.len(), 1);
    assert_eq!(state.history[0].client_version, None);
    assert_eq!(state.history[0].modified_by, state.modified_by);
    for coordinator in [&a, &b] {
        assert_eq!(coordinator.client_version(), Some(ClientVersion::V3x));
        assert_eq!(coordinator.role(), Role::Leader);
    }
    // A later start reads it and writes nothing.
    let (c, _ec) = Coordinator::launch(store.clone(), leader("native-c"), StartOptions::default())
        .await
        .unwrap();
    assert_eq!(migration_writes(&store.0).len(), 2);
    for coordinator in [a, b, c] {
        coordinator.close().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_java_created_application_is_joined() {
    // The 3.1.3 daemon's item for a new application has a CLIENT_VERSION_INIT history entry.
    let store = Arc::new(MemoryStore::new());
    let java = MigrationState::created(ClientVersion::V3x, "java-1", 1_796_103_464_212);
    store
        .update(
            Table::CoordinatorState,
            &kcl_lease::coordinator::create_migration_state(&java),
        )
        .await
        .unwrap();
    let (c, _e) = Coordinator::launch(store.clone(), leader("native-a"), StartOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (c.role(), c.client_version()),
        (Role::Leader, Some(ClientVersion::V3x))
    );
    assert_eq!(migration_writes(&store).len(), 1, "only Java's write");
    c.close().await;
}

#[tokio::test(start_paused = true)]
async fn the_role_follows_the_table() {
    // A table with leases and no Migration3.0 item: nothing written, the configuration decides.
    let store = Arc::new(MemoryStore::new());
    seed(&store, "shardId-0", Some("someone")).await;
    let (c, _e) = Coordinator::launch(store.clone(), leader("w"), StartOptions::default())
        .await
        .unwrap();
    assert!(store.item(Table::CoordinatorState, MIGRATION_KEY).is_none());
    assert_eq!((c.role(), c.client_version()), (Role::Leader, None));
    c.close().await;
    let compatible = CoordinatorConfig {
        client_version_config: ClientVersionConfig::CompatibleWith2x,
        ..leader("w")
    };
    let (c, _e) = Coordinator::launch(store.clone(), compatible.clone(), StartOptions::default())
        .await
        .unwrap();
    assert_eq!(c.role(), Role::Taker2x);
    c.close().await;
    // A new application compatible with 2.x starts in UPGRADE_FROM_2X, as Java.
    let fresh = Arc::new(MemoryStore::new());
    let (c, _e) = Coordinator::launch(fresh.clone(), compatible, StartOptions::default())
        .await
        .unwrap();
    assert_eq!(c.client_version(), Some(ClientVersion::UpgradeFrom2x));
    assert_eq!(c.role(), Role::Taker2x);
    c.close().await;
    // A 3.x table refuses a configured taker; a 2.x table one that does not take part.
    let v3 = Arc::new(MemoryStore::new());
    v3.insert(
        Table::CoordinatorState,
        MigrationState::new(ClientVersion::V3xWithRollback, "java", 1).encode(),
    );
    let taker = CoordinatorConfig {
        role: Role::Taker2x,
        ..leader("w")
    };
    assert!(
        Coordinator::launch(v3.clone(), taker, StartOptions::default())
            .await
            .is_err()
    );
    let follower = CoordinatorConfig {
        role: Role::Follower,
        ..leader("w")
    };
    let (c, _e) = Coordinator::launch(v3.clone(), follower, StartOptions::default())
        .await
        .unwrap();
    assert_eq!(c.role(), Role::Follower);
    // The version is read again every minute (a change is logged, the role stays).
    v3.insert(
        Table::CoordinatorState,
        MigrationState::new(ClientVersion::V2x, "tool", 2).encode(),
    );
    sleep(S(61)).await;
    assert_eq!(c.client_version(), Some(ClientVersion::V2x));
    assert_eq!(c.role(), Role::Follower);
    c.close().await;
    let v2 = Arc::new(MemoryStore::new());
    v2.insert(
        Table::CoordinatorState,
        MigrationState::new(ClientVersion::V2x, "java", 1).encode(),
    );
    let refuse = CoordinatorConfig {
        take_part_in_2x: false,
        ..leader("w")
    };
    assert!(
        Coordinator::launch(v2, refuse, StartOptions::default())
            .await
            .is_err()
    );
}
