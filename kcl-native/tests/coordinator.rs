//! The follower's lease coordinator against the in-memory lease table, on tokio's paused
//! clock: renewals and their period, independence from the shard worker's thread, fencing by
//! local self-expiry, lost leases, spurious failures, graceful handoff in both roles,
//! discovery, the worker-metrics row, eviction, and the blocking checkpoint driver.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use kcl_core::engine::{Driver, Event, Handled};
use kcl_core::{Initialize, Position, Record, Runtime, StartingPosition, from_fn};
use kcl_lease::{
    Action, AttributeValue as V, Condition, Decoded, Delete, Item, Lease, LeaseStore, LoggedWrite,
    MemoryStore, Outcome, Request, StoreError, Table, Update, UpdateError, Write, decode, ops,
};
use kcl_native::coordinator::{
    Coordinator, CoordinatorConfig, LeaseDriver, LeaseEvent, LeaseHandle, LeaseStatus, Role,
    StartError,
};
use kcl_protocol::{DaemonError, ExtendedSequenceNumber as E};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Instant, sleep, sleep_until};

const KEY: &str = "shardId-000000000000";
const ME: &str = "native-1";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The configuration of a follower (the default role is the leader).
fn follower(worker_id: &str) -> CoordinatorConfig {
    CoordinatorConfig {
        role: Role::Follower,
        ..CoordinatorConfig::new(worker_id)
    }
}

/// A lease table item read as a lease.
fn lease_in(store: &MemoryStore, key: &str) -> Lease {
    match decode(&store.item(Table::Lease, key).expect("the lease exists")).unwrap() {
        Decoded::Lease(lease) => lease,
        Decoded::NotALease { .. } => panic!("not a lease"),
    }
}

/// Creates a lease and has a leader assign it to `owner`.
async fn seed(store: &MemoryStore, key: &str, owner: &str) {
    let lease = Lease::new(key, E::trim_horizon());
    assert!(store.create_if_not_exists(&lease).await.unwrap());
    store
        .update(Table::Lease, &ops::assign(&lease, owner))
        .await
        .unwrap();
}

/// Starts the coordinator of `ME` and waits for the one lease it is assigned.
async fn acquire<S: LeaseStore + Send + Sync + 'static>(
    store: Arc<S>,
) -> (Coordinator, UnboundedReceiver<LeaseEvent>, LeaseHandle) {
    let (coordinator, mut events) = Coordinator::start(store, follower(ME)).unwrap();
    let Some(LeaseEvent::Acquired(handle)) = events.recv().await else {
        panic!("no lease acquired")
    };
    (coordinator, events, handle)
}

/// The lease-table writes logged from `from` on, for `key`.
fn writes_to(store: &MemoryStore, key: &str, from: usize) -> Vec<LoggedWrite> {
    store.writes()[from..]
        .iter()
        .filter(|w| w.table == Table::Lease && w.key == key)
        .cloned()
        .collect()
}

fn is_renewal(write: &LoggedWrite) -> bool {
    let Request::Update {
        update: Update::Actions(actions),
        ..
    } = &write.request
    else {
        return false;
    };
    matches!(actions.first(), Some(Action::Put(name, _)) if name == "leaseCounter")
        && !actions
            .iter()
            .any(|a| matches!(a, Action::Put(name, _) if name == "checkpoint"))
}

fn condition_of(write: &LoggedWrite) -> &Condition {
    match &write.request {
        Request::Update { condition, .. } | Request::Delete { condition } => condition,
    }
}

/// Waits for a result from a shard worker's OS thread without letting the paused clock jump:
/// the runtime cannot see that thread's work, and would otherwise auto-advance time (past the
/// failover time) while the thread holds the lease's write lock for a few real microseconds.
async fn from_thread<T>(mut result: tokio::sync::oneshot::Receiver<T>) -> T {
    loop {
        match result.try_recv() {
            Ok(value) => return value,
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => tokio::task::yield_now().await,
            Err(closed) => panic!("the thread ended without a result: {closed}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn renews_at_the_period_with_the_counter_plus_one() {
    let store = Arc::new(MemoryStore::new());
    seed(&store, KEY, ME).await;
    let (_coordinator, _events, handle) = acquire(store.clone()).await;
    let start = Instant::now();
    assert_eq!(lease_in(&store, KEY).lease_counter, 1);
    let period = ms(3_308);
    for n in 1..=5u32 {
        sleep_until(start + period * n - ms(1)).await;
        assert_eq!(
            lease_in(&store, KEY).lease_counter,
            u64::from(n),
            "before renewal {n}"
        );
        sleep_until(start + period * n + ms(1)).await;
        assert_eq!(
            lease_in(&store, KEY).lease_counter,
            u64::from(n) + 1,
            "after renewal {n}"
        );
    }
    let renewals = writes_to(&store, KEY, 0);
    let renewals: Vec<_> = renewals.iter().filter(|w| is_renewal(w)).collect();
    assert_eq!(renewals.len(), 5);
    for (known, write) in (1u64..).zip(&renewals) {
        assert_eq!(write.outcome, Outcome::Landed);
        assert_eq!(
            *condition_of(write),
            Condition::default()
                .equals("leaseCounter", V::n(known))
                .absent("checkpointOwner")
        );
        assert_eq!(
            write.after.as_ref().unwrap()["leaseCounter"],
            V::n(known + 1)
        );
        assert!(!write.after.as_ref().unwrap().contains_key("throughputKBps"));
    }
    assert_eq!(handle.status(), LeaseStatus::Held);
}

#[tokio::test(start_paused = true)]
async fn renewals_go_on_while_the_shard_worker_blocks_its_thread() {
    let store = Arc::new(MemoryStore::new());
    seed(&store, KEY, ME).await;
    let (_coordinator, _events, handle) = acquire(store.clone()).await;
    let runtime = tokio::runtime::Handle::current();

    // The shard worker: the user's processor blocks inside `processRecords` until released,
    // then checkpoints everything delivered.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (entered_tx, mut entered) = tokio::sync::mpsc::unbounded_channel();
    let (done_tx, done) = tokio::sync::oneshot::channel();
    let worker_handle = handle.clone();
    std::thread::spawn(move || {
        let processor = from_fn(move |_batch, checkpointer| {
            entered_tx.send(()).unwrap();
            released.recv().unwrap();
            Ok(checkpointer.checkpoint()?)
        });
        let mut engine = Runtime::new(processor).shard_engine();
        let mut driver = LeaseDriver::new(worker_handle, runtime);
        let init = Initialize {
            shard_id: KEY.into(),
            starting_position: StartingPosition::TrimHorizon,
        };
        assert_eq!(
            driver.deliver(&mut engine, Event::Initialize(init)),
            Handled::Done
        );
        let records = vec![Record::new("abcd", "k", Position::new("49590", 0))];
        let batch = Event::Records {
            records,
            millis_behind_latest: Some(0),
        };
        let handled = driver.deliver(&mut engine, batch);
        done_tx
            .send((handled, driver.last_checkpoint().clone()))
            .unwrap();
    });

    entered.recv().await.unwrap();
    let blocked_at = Instant::now();
    let counter = lease_in(&store, KEY).lease_counter;
    // Three failover times with the worker's thread blocked.
    sleep(ms(30_000)).await;
    let renewed = lease_in(&store, KEY).lease_counter - counter;
    assert!(renewed >= 9, "only {renewed} renewals in 30 s");
    assert_eq!(handle.status(), LeaseStatus::Held);
    assert!(Instant::now() >= blocked_at + ms(30_000));

    release.send(()).unwrap();
    let (handled, last) = from_thread(done).await;
    assert_eq!(handled, Handled::Done);
    assert_eq!(last, E::new("49590", 0));
    assert_eq!(lease_in(&store, KEY).checkpoint, E::new("49590", 0));
    // The batch's bytes went into the next renewal's throughput.
    sleep(ms(3_400)).await;
    assert!(lease_in(&store, KEY).throughput_kbps.is_some());
}

/// The in-memory table behind switches: every call fails while `down` (the table is
/// unreachable), and the next `throttle_checkpoints` checkpoint writes are throttled (without
/// touching other calls that may run meanwhile).
#[derive(Default)]
struct Switched {
    table: MemoryStore,
    down: AtomicBool,
    throttle_checkpoints: AtomicUsize,
}

impl Switched {
    fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("partitioned".into()))
        } else {
            Ok(())
        }
    }
}

fn is_checkpoint(update: &Update) -> bool {
    matches!(update, Update::Actions(actions)
        if actions.iter().any(|a| matches!(a, Action::Put(name, _) if name == "checkpoint")))
}

impl LeaseStore for Switched {
    async fn get(
        &self,
        table: Table,
        key: &str,
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
        self.check()?;
        self.table.get(table, key, consistent).await
    }

    async fn scan(&self, table: Table) -> Result<Vec<Item>, StoreError> {
        self.check()?;
        self.table.scan(table).await
    }

    async fn query_owner(&self, owner: &str) -> Result<Vec<String>, StoreError> {
        self.check()?;
        self.table.query_owner(owner).await
    }

    async fn update(&self, table: Table, write: &Write) -> Result<Item, UpdateError> {
        self.check()?;
        if is_checkpoint(&write.update)
            && self
                .throttle_checkpoints
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(StoreError::Throttled("injected".into()).into());
        }
        self.table.update(table, write).await
    }

    async fn delete(&self, table: Table, delete: &Delete) -> Result<Option<Item>, UpdateError> {
        self.check()?;
        self.table.delete(table, delete).await
    }
}

/// How many checkpoint writes the table saw.
fn checkpoint_writes(store: &MemoryStore) -> usize {
    store
        .writes()
        .iter()
        .filter(|w| matches!(&w.request, Request::Update { update, .. } if is_checkpoint(update)))
        .count()
}

#[tokio::test(start_paused = true)]
async fn a_store_down_for_longer_than_failover_fences_the_lease() {
    let store = Arc::new(Switched::default());
    seed(&store.table, KEY, ME).await;
    let (_coordinator, _events, handle) = acquire(store.clone()).await;
    handle.checkpoint(E::new("100", 0)).await.unwrap();

    store.down.store(true, Ordering::SeqCst);
    let down_at = Instant::now();
    // Throttled-or-failed renewals within the failover time: still held.
    sleep(ms(9_000)).await;
    assert_eq!(handle.status(), LeaseStatus::Held);
    assert_eq!(
        handle.checkpoint(E::new("150", 0)).await,
        Err(DaemonError::Dependency)
    );
    // Lost just after the failover time since the last renewal (here: the acquisition), at
    // once, not at the renewer's next period.
    handle.lost().await;
    assert_eq!(Instant::now(), down_at + ms(10_001));

    // Meanwhile a leader saw the lease expire and gave it to another worker.
    let mut known = lease_in(&store.table, KEY);
    known.lease_owner = Some(ME.into());
    store
        .table
        .update(Table::Lease, &ops::assign(&known, "java-1"))
        .await
        .unwrap();
    let after_take = store.table.write_count();

    store.down.store(false, Ordering::SeqCst);
    assert_eq!(handle.status(), LeaseStatus::Lost);
    assert_eq!(
        handle.checkpoint(E::new("200", 0)).await,
        Err(DaemonError::Shutdown)
    );
    assert_eq!(
        handle.handoff_done().await,
        Err(kcl_native::coordinator::LeaseWriteError::Lost)
    );
    sleep(ms(60_000)).await;
    assert!(
        writes_to(&store.table, KEY, after_take).is_empty(),
        "a write for the fenced lease reached the table"
    );
    assert_eq!(lease_in(&store.table, KEY).checkpoint, E::new("100", 0));
}

#[tokio::test(start_paused = true)]
async fn a_stopped_and_continued_worker_reports_lost_and_writes_nothing() {
    let store = Arc::new(MemoryStore::new());
    seed(&store, KEY, ME).await;
    let (_coordinator, _events, handle) = acquire(store.clone()).await;
    sleep(ms(5_000)).await;
    handle.checkpoint(E::new("100", 0)).await.unwrap();

    // SIGSTOP: nothing of this process runs for 15 s, while a leader sees the lease expire and
    // assigns it to a Java worker.
    let mut known = lease_in(&store, KEY);
    known.lease_owner = Some(ME.into());
    store
        .update(Table::Lease, &ops::assign(&known, "java-1"))
        .await
        .unwrap();
    let after_take = store.write_count();
    tokio::time::advance(ms(15_000)).await;

    // SIGCONT: the shard worker's late checkpoint and the renewer's late renewal are both
    // fenced before any write.
    assert_eq!(handle.status(), LeaseStatus::Lost);
    assert_eq!(
        handle.checkpoint(E::new("200", 0)).await,
        Err(DaemonError::Shutdown)
    );
    sleep(ms(30_000)).await;
    assert!(writes_to(&store, KEY, after_take).is_empty());
    assert_eq!(lease_in(&store, KEY).checkpoint, E::new("100", 0));
}

#[tokio::test(start_paused = true)]
async fn a_lease_taken_by_another_writer_is_lost_and_refuses_checkpoints() {
    let store = Arc::new(MemoryStore::new());
    seed(&store, KEY, ME).await;
    let (coordinator, _events, handle) = acquire(store.clone()).await;
    handle.checkpoint(E::new("100", 0)).await.unwrap();

    // A leader reassigns the lease to another worker.
    let mut known = lease_in(&store, KEY);
    known.lease_owner = Some(ME.into());
    store
        .update(Table::Lease, &ops::assign(&known, "java-1"))
        .await
        .unwrap();
    let after_take = store.write_count();

    // Before the next renewal the worker does not know yet, but the checkpoint's counter
    // condition fences it all the same.
    assert_eq!(handle.status(), LeaseStatus::Held);
    assert_eq!(
        handle.checkpoint(E::new("150", 0)).await,
        Err(DaemonError::Shutdown)
    );
    assert_eq!(handle.status(), LeaseStatus::Lost);
    handle.lost().await;
    assert_eq!(
        handle.checkpoint(E::new("200", 0)).await,
        Err(DaemonError::Shutdown)
    );
    sleep(ms(20_000)).await;

    let ours = writes_to(&store, KEY, after_take);
    assert!(ours.iter().all(|w| !w.landed()), "{ours:#?}");
    // One checkpoint attempt refused by its condition; the renewer never tried again.
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].outcome, Outcome::ConditionFailed);
    let lease = lease_in(&store, KEY);
    assert_eq!(lease.lease_owner.as_deref(), Some("java-1"));
    assert_eq!(lease.checkpoint, E::new("100", 0));
    assert!(coordinator.held().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_next_renewal_finds_a_taken_lease_lost() {
    let store = Arc::new(MemoryStore::new());
    seed(&store, KEY, ME).await;
    let (_coordinator, _events, handle) = acquire(store.clone()).await;
    let mut known = lease_in(&store, KEY);
    known.lease_owner = Some(ME.into());
    store
        .update(Table::Lease, &ops::assign(&known, "java-1"))
        .await
        .unwrap();
    let after_take = store.write_count();
    handle.lost().await;
    let ours = writes_to(&store, KEY, after_take);
    assert_eq!(ours.len(), 1);
    assert!(is_renewal(&ours[0]));
    assert_eq!(ours[0].outcome, Outcome::ConditionFailed);
    assert_eq!(
        handle.checkpoint(E::new("1", 0)).await,
        Err(DaemonError::Shutdown)
    );
    assert_eq!(store.write_count(), after_take + 1);
}

#[tokio::test(start_paused = true)]
async fn a_renewal_that_landed_but_reported_failure_is_spurious() {
    let store = Arc::new(MemoryStore::new());
    seed(&store, KEY, ME).await;
    let (_coordinator, _events, handle) = acquire(store.clone()).await;
    let start = Instant::now();
    let from = store.write_count();
    store.land_but_fail_next(1);
    sleep_until(start + ms(3_308 * 3 + 10)).await;
    let renewals: Vec<Outcome> = writes_to(&store, KEY, from)
        .into_iter()
        .map(|w| w.outcome)
        .collect();
    assert_eq!(
        renewals,
        [
            Outcome::LandedButReportedFailure, // counter 1 → 2, reported failed
            Outcome::ConditionFailed,          // known 1: spurious, adopt 2
            Outcome::Landed,                   // 2 → 3
        ]
    );
    assert_eq!(lease_in(&store, KEY).lease_counter, 3);
    assert_eq!(handle.status(), LeaseStatus::Held);
}

#[tokio::test(start_paused = true)]
async fn a_checkpoint_after_a_spurious_renewal_lands() {
    let store = Arc::new(MemoryStore::new());
    seed(&store, KEY, ME).await;
    let (_coordinator, _events, handle) = acquire(store.clone()).await;
    let start = Instant::now();
    store.land_but_fail_next(1);
    sleep_until(start + ms(3_400)).await; // the renewal landed (counter 2), reported failed
    handle.checkpoint(E::new("100", 0)).await.unwrap();
    let lease = lease_in(&store, KEY);
    assert_eq!(
        (lease.lease_counter, lease.checkpoint),
        (3, E::new("100", 0))
    );
    sleep(ms(3_308)).await;
    assert_eq!(lease_in(&store, KEY).lease_counter, 4);
    assert_eq!(handle.status(), LeaseStatus::Held);
}

/// The leader's `initiateGracefulLeaseHandoff` of `key` (owned by `from`) to `to`.
async fn initiate_handoff(store: &MemoryStore, key: &str, to: &str) {
    let write = ops::initiate_graceful_handoff(&lease_in(store, key), to).unwrap();
    store.update(Table::Lease, &write).await.unwrap();
}

/// The transfer Java's old owner writes: conditioned on `leaseOwner = new`, `checkpointOwner =
/// old`; `checkpointOwner` removed, counter + 1.
fn expected_transfer(key: &str, new: &str, old: &str) -> Request {
    let mut known = Lease::new(key, E::trim_horizon());
    known.lease_owner = Some(new.into());
    known.checkpoint_owner = Some(old.into());
    let write = ops::assign(&known, new);
    assert_eq!(
        write.condition,
        Condition::default()
            .equals("leaseOwner", V::s(new))
            .equals("checkpointOwner", V::s(old))
            .equals("leaseKey", V::s(key))
    );
    Request::Update {
        condition: write.condition,
        update: write.update,
    }
}

#[tokio::test(start_paused = true)]
async fn graceful_handoff_to_another_worker() {
    let store = Arc::new(MemoryStore::new());
    seed(&store, KEY, ME).await;
    let (coordinator, _events, handle) = acquire(store.clone()).await;
    let from = store.write_count();
    initiate_handoff(&store, KEY, "java-1").await;

    assert_eq!(
        handle.shutdown_requested().await,
        LeaseStatus::ShutdownRequested
    );
    assert!(handle.is_shutdown_requested());
    // The plain renewal failed, the one with the counter condition only landed.
    let writes = writes_to(&store, KEY, from + 1);
    assert_eq!(writes.len(), 2);
    assert_eq!(writes[0].outcome, Outcome::ConditionFailed);
    assert_eq!(writes[1].outcome, Outcome::Landed);
    assert_eq!(
        *condition_of(&writes[1]),
        Condition::default().equals("leaseCounter", V::n(1))
    );
    // Still renewed for as long as the processor takes (less than the handoff timeout).
    sleep(ms(20_000)).await;
    let lease = lease_in(&store, KEY);
    assert!(lease.lease_counter >= 8, "counter {}", lease.lease_counter);
    assert_eq!(lease.checkpoint_owner.as_deref(), Some(ME));
    assert_eq!(handle.status(), LeaseStatus::ShutdownRequested);
    // The processor's last checkpoint lands (fenced by the counter only).
    handle.checkpoint(E::new("300", 0)).await.unwrap();
    assert_eq!(lease_in(&store, KEY).checkpoint, E::new("300", 0));

    let before = lease_in(&store, KEY).lease_counter;
    handle.handoff_done().await.unwrap();
    let transfer = store.writes().last().unwrap().clone();
    assert_eq!(transfer.request, expected_transfer(KEY, "java-1", ME));
    assert_eq!(transfer.outcome, Outcome::Landed);
    let lease = lease_in(&store, KEY);
    assert_eq!(lease.lease_owner.as_deref(), Some("java-1"));
    assert_eq!(lease.checkpoint_owner, None);
    assert_eq!(lease.lease_counter, before + 1);
    assert_eq!(handle.status(), LeaseStatus::Lost);
    assert_eq!(
        handle.checkpoint(E::new("301", 0)).await,
        Err(DaemonError::Shutdown)
    );

    // No write for the lease after the transfer, and nothing left for the forced transfer.
    let after = store.write_count();
    sleep(ms(60_000)).await;
    assert!(writes_to(&store, KEY, after).is_empty());
    assert!(coordinator.held().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_handoff_the_worker_never_finishes_is_forced_after_the_timeout() {
    let store = Arc::new(MemoryStore::new());
    seed(&store, KEY, ME).await;
    let (_coordinator, _events, handle) = acquire(store.clone()).await;
    initiate_handoff(&store, KEY, "java-1").await;
    handle.shutdown_requested().await;
    let requested = Instant::now();

    sleep_until(requested + ms(29_999)).await;
    assert_eq!(lease_in(&store, KEY).checkpoint_owner.as_deref(), Some(ME));
    assert_eq!(handle.status(), LeaseStatus::ShutdownRequested);
    sleep_until(requested + ms(30_001)).await;
    let lease = lease_in(&store, KEY);
    assert_eq!(lease.lease_owner.as_deref(), Some("java-1"));
    assert_eq!(lease.checkpoint_owner, None);
    let transfer = store
        .writes()
        .into_iter()
        .rev()
        .find(|w| w.key == KEY)
        .unwrap();
    assert_eq!(transfer.request, expected_transfer(KEY, "java-1", ME));
    assert_eq!(handle.status(), LeaseStatus::Lost);
    // The processor, still in `shutdownRequested`, can no longer checkpoint.
    assert_eq!(
        handle.checkpoint(E::new("300", 0)).await,
        Err(DaemonError::Shutdown)
    );
    assert_eq!(
        handle.handoff_done().await,
        Err(kcl_native::coordinator::LeaseWriteError::Lost)
    );
}

#[tokio::test(start_paused = true)]
async fn discovery_acquires_each_assigned_lease_once_and_waits_for_transfers() {
    let store = Arc::new(MemoryStore::new());
    seed(&store, "shardId-a", ME).await;
    // shardId-b is being handed from java-1 to us.
    seed(&store, "shardId-b", "java-1").await;
    initiate_handoff(&store, "shardId-b", ME).await;
    seed(&store, "shardId-c", "java-1").await;

    let (_coordinator, mut events) = Coordinator::start(store.clone(), follower(ME)).unwrap();
    let Some(LeaseEvent::Acquired(a)) = events.recv().await else {
        panic!()
    };
    assert_eq!(a.lease_key(), "shardId-a");
    assert_eq!(a.lease().lease_owner.as_deref(), Some(ME));
    // Several discovery periods: nothing else (b is not transferred yet, c is not ours).
    sleep(ms(9_975 * 3 + 10)).await;
    assert!(events.try_recv().is_err());

    // java-1 transfers b.
    let mut known = lease_in(&store, "shardId-b");
    assert_eq!(known.checkpoint_owner.as_deref(), Some("java-1"));
    known.lease_owner = Some(ME.into());
    store
        .update(Table::Lease, &ops::assign(&known, ME))
        .await
        .unwrap();
    let transferred = Instant::now();
    let Some(LeaseEvent::Acquired(b)) = events.recv().await else {
        panic!()
    };
    assert!(Instant::now() <= transferred + ms(9_975));
    assert_eq!(b.lease_key(), "shardId-b");
    assert_eq!(b.lease().checkpoint_owner, None);
    sleep(ms(30_000)).await;
    assert!(events.try_recv().is_err());
    assert_eq!(b.status(), LeaseStatus::Held);
}

#[tokio::test(start_paused = true)]
async fn the_metrics_row_is_written_every_period_with_the_clock() {
    let store = Arc::new(MemoryStore::new());
    let origin = Instant::now();
    let clock = Arc::new(move || {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000) + (Instant::now() - origin)
    });
    let (_coordinator, _events) =
        Coordinator::start_with_clock(store.clone(), follower(ME), clock).unwrap();
    let rows = |store: &MemoryStore| -> Vec<Item> {
        store
            .writes()
            .into_iter()
            .filter(|w| w.table == Table::WorkerMetrics)
            .map(|w| {
                assert_eq!(w.key, ME);
                assert_eq!(w.outcome, Outcome::Landed);
                w.after.unwrap()
            })
            .collect()
    };
    sleep(ms(1)).await;
    assert_eq!(rows(&store).len(), 1);
    sleep_until(origin + ms(29_999)).await;
    assert_eq!(rows(&store).len(), 1);
    sleep_until(origin + ms(30_001)).await;
    sleep_until(origin + ms(60_001)).await;
    let rows = rows(&store);
    let luts: Vec<&V> = rows.iter().map(|row| &row["lut"]).collect();
    assert_eq!(
        luts,
        [
            &V::n(1_700_000_000u64),
            &V::n(1_700_000_030u64),
            &V::n(1_700_000_060u64)
        ]
    );
    let row = kcl_lease::WorkerMetricStats::decode(&rows[2]).unwrap();
    assert!(row.is_using_default_metric());
    assert!(row.is_active(1_700_000_060_000 + 60_000, 30_000));
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_discovery_and_the_row_then_evicts() {
    let store = Arc::new(MemoryStore::new());
    seed(&store, KEY, ME).await;
    let (mut coordinator, mut events, handle) = acquire(store.clone()).await;
    assert_eq!(store.items(Table::WorkerMetrics).len(), 1);
    coordinator.shutdown().await;
    // The row is deleted: a leader assigns nothing more to this worker (not the leases it is
    // about to evict either), and it is not written again.
    let rows = store.items(Table::WorkerMetrics).len();
    assert_eq!(rows, 0);
    let metrics_writes = || {
        store
            .writes()
            .iter()
            .filter(|w| w.table == Table::WorkerMetrics)
            .count()
    };
    let written = metrics_writes();
    seed(&store, "shardId-late", ME).await;
    sleep(ms(60_000)).await;
    assert_eq!(metrics_writes(), written);
    assert!(events.try_recv().is_err(), "discovery still ran");
    // Renewals go on while the shard worker finishes.
    assert_eq!(handle.status(), LeaseStatus::Held);
    handle.checkpoint(E::new("500", 0)).await.unwrap();

    let before = lease_in(&store, KEY);
    coordinator.evict(&handle).await.unwrap();
    let eviction = store.writes().last().unwrap().clone();
    assert_eq!(
        eviction.request,
        Request::Update {
            condition: Condition::default()
                .equals("leaseOwner", V::s(ME))
                .absent("checkpointOwner")
                .equals("leaseKey", V::s(KEY)),
            update: Update::Actions(vec![
                Action::Remove("leaseOwner".into()),
                Action::Remove("checkpointOwner".into()),
                Action::Add("leaseCounter".into(), 1),
            ]),
        }
    );
    let after = lease_in(&store, KEY);
    assert_eq!(after.lease_owner, None);
    assert_eq!(after.lease_counter, before.lease_counter + 1);
    assert_eq!(after.checkpoint, E::new("500", 0));
    assert_eq!(handle.status(), LeaseStatus::Lost);
    assert!(coordinator.held().is_empty());
    let count = store.write_count();
    coordinator.close().await;
    sleep(ms(20_000)).await;
    // One write only: the eviction of the lease assigned after discovery stopped.
    assert_eq!(store.write_count(), count + 1);
    assert_eq!(lease_in(&store, "shardId-late").lease_owner, None);
}

#[tokio::test(start_paused = true)]
async fn close_evicts_what_is_still_held() {
    let store = Arc::new(MemoryStore::new());
    seed(&store, "shardId-a", ME).await;
    seed(&store, "shardId-b", ME).await;
    let (coordinator, mut events) = Coordinator::start(store.clone(), follower(ME)).unwrap();
    events.recv().await.unwrap();
    events.recv().await.unwrap();
    coordinator.close().await;
    assert!(
        store
            .items(Table::Lease)
            .values()
            .all(|item| !item.contains_key("leaseOwner"))
    );
}

#[tokio::test(start_paused = true)]
async fn the_driver_judges_before_it_writes() {
    let store = Arc::new(MemoryStore::new());
    seed(&store, KEY, ME).await;
    let (_coordinator, _events, handle) = acquire(store.clone()).await;
    let runtime = tokio::runtime::Handle::current();
    let (done_tx, done) = tokio::sync::oneshot::channel();
    let probe = store.clone();
    std::thread::spawn(move || {
        let mut driver = LeaseDriver::new(handle, runtime);
        driver.sending(&Event::Initialize(Initialize {
            shard_id: KEY.into(),
            starting_position: StartingPosition::TrimHorizon,
        }));
        let during_initialize = driver.checkpoint(None);
        driver.sending(&Event::Records {
            records: vec![
                Record::new("a", "k", Position::new("100", 0)),
                Record::new("b", "k", Position::new("200", 0)),
            ],
            millis_behind_latest: None,
        });
        // (Renewals and the metrics row may be written meanwhile: count checkpoints.)
        let writes = checkpoint_writes(&probe);
        let beyond = driver.checkpoint(Some(Position::new("201", 0)));
        let no_write = checkpoint_writes(&probe) == writes;
        let good = driver.checkpoint(Some(Position::new("100", 0)));
        let unchanged = driver.checkpoint(Some(Position::new("100", 0)));
        let one_write = checkpoint_writes(&probe) == writes + 1;
        let below = driver.checkpoint(Some(Position::new("50", 0)));
        done_tx
            .send((
                during_initialize,
                beyond,
                no_write,
                good,
                unchanged,
                one_write,
                below,
            ))
            .unwrap();
    });
    let (during_initialize, beyond, no_write, good, unchanged, one_write, below) =
        from_thread(done).await;
    assert_eq!(during_initialize, Err(DaemonError::InvalidState));
    assert_eq!(beyond, Err(DaemonError::IllegalArgument));
    assert!(no_write, "a refused checkpoint was written");
    assert_eq!(good, Ok(()));
    assert_eq!(unchanged, Ok(()));
    assert!(one_write, "an unchanged checkpoint was written again");
    assert_eq!(below, Err(DaemonError::IllegalArgument));
    assert_eq!(lease_in(&store, KEY).checkpoint, E::new("100", 0));
}

#[tokio::test(start_paused = true)]
async fn a_failed_write_leaves_the_judge_as_it_was() {
    let store = Arc::new(Switched::default());
    seed(&store.table, KEY, ME).await;
    let (_coordinator, _events, handle) = acquire(store.clone()).await;
    let runtime = tokio::runtime::Handle::current();
    let (done_tx, done) = tokio::sync::oneshot::channel();
    let probe = store.clone();
    std::thread::spawn(move || {
        let mut driver = LeaseDriver::new(handle, runtime);
        driver.sending(&Event::Records {
            records: vec![Record::new("a", "k", Position::new("100", 0))],
            millis_behind_latest: None,
        });
        probe.throttle_checkpoints.store(1, Ordering::SeqCst);
        let first = driver.checkpoint(None);
        // The engine retries: judged again as new, written.
        let retry = driver.checkpoint(None);
        done_tx
            .send((first, retry, driver.last_checkpoint().clone()))
            .unwrap();
    });
    let (first, retry, last) = from_thread(done).await;
    assert_eq!(first, Err(DaemonError::Throttling));
    assert_eq!(retry, Ok(()));
    assert_eq!(last, E::new("100", 0));
    assert_eq!(lease_in(&store.table, KEY).checkpoint, E::new("100", 0));
    assert_eq!(checkpoint_writes(&store.table), 1);
}

#[tokio::test(start_paused = true)]
async fn every_role_starts_and_a_bad_configuration_does_not() {
    let store = Arc::new(MemoryStore::new());
    for role in [Role::Follower, Role::Leader, Role::Taker2x] {
        let config = CoordinatorConfig {
            role,
            ..CoordinatorConfig::new(ME)
        };
        let (coordinator, _events) = Coordinator::start(store.clone(), config).unwrap();
        assert_eq!(coordinator.role(), role);
        coordinator.close().await;
    }
    assert!(matches!(
        Coordinator::start(store.clone(), CoordinatorConfig::new("")),
        Err(StartError::Config(_))
    ));
    let slow_heartbeat = CoordinatorConfig {
        leader_heartbeat_period: Duration::from_secs(120),
        ..CoordinatorConfig::new(ME)
    };
    assert!(Coordinator::start(store, slow_heartbeat).is_err());
}

/// A lease a leader assigns to this worker after its discovery stopped (during the shutdown)
/// is evicted by `close` with the held ones: it is not left owned by a stopped worker until
/// it expires. A lease owned by another worker is not touched.
#[tokio::test(start_paused = true)]
async fn close_evicts_a_lease_assigned_during_the_shutdown() {
    let store = Arc::new(MemoryStore::new());
    seed(&store, KEY, ME).await;
    let (mut coordinator, _events, handle) = acquire(store.clone()).await;
    coordinator.shutdown().await;
    seed(&store, "shardId-late", ME).await; // a leader's assignment, never discovered
    seed(&store, "shardId-other", "native-2").await;
    sleep(ms(60_000)).await;
    assert_eq!(handle.status(), LeaseStatus::Held);
    coordinator.close().await;
    assert_eq!(lease_in(&store, KEY).lease_owner, None);
    let late = lease_in(&store, "shardId-late");
    assert_eq!(late.lease_owner, None, "left owned by the stopped worker");
    assert_eq!(late.lease_counter, 2, "assigned (1), then evicted (2)");
    assert_eq!(
        lease_in(&store, "shardId-other").lease_owner.as_deref(),
        Some("native-2")
    );
}

/// A store whose lease renewals stall (DynamoDB, or moto on a loaded machine, answering late):
/// the first stalled renewal lands and then hangs, the later ones hang before landing.
#[derive(Default)]
struct Stalling {
    table: MemoryStore,
    /// 0: normal; 1: the next renewal lands, then hangs; 2: renewals hang.
    mode: AtomicUsize,
}

impl LeaseStore for Stalling {
    async fn get(
        &self,
        table: Table,
        key: &str,
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
        self.table.get(table, key, consistent).await
    }

    async fn scan(&self, table: Table) -> Result<Vec<Item>, StoreError> {
        self.table.scan(table).await
    }

    async fn query_owner(&self, owner: &str) -> Result<Vec<String>, StoreError> {
        self.table.query_owner(owner).await
    }

    async fn update(&self, table: Table, write: &Write) -> Result<Item, UpdateError> {
        if table == Table::Lease && !is_checkpoint(&write.update) {
            match self.mode.load(Ordering::SeqCst) {
                1 => {
                    self.mode.store(2, Ordering::SeqCst);
                    let _landed = self.table.update(table, write).await;
                    std::future::pending::<()>().await;
                }
                2 => std::future::pending::<()>().await,
                _ => {}
            }
        }
        self.table.update(table, write).await
    }

    async fn delete(&self, table: Table, delete: &Delete) -> Result<Option<Item>, UpdateError> {
        self.table.delete(table, delete).await
    }
}

/// A renewal abandoned after its period may have landed: a checkpoint refused by its condition
/// right after (the next renewal hung too) finds the counter moved by our own hand and adopts
/// it, instead of taking the lease for lost (which gave `leaseLost` and duplicates under a
/// slow moto in e2e scenario 2).
#[tokio::test(start_paused = true)]
async fn a_checkpoint_after_an_abandoned_renewal_that_landed_is_not_lost() {
    let store = Arc::new(Stalling::default());
    seed(&store.table, KEY, ME).await;
    let config = CoordinatorConfig {
        failover_time: Duration::from_secs(30),
        ..follower(ME)
    };
    let (_coordinator, mut events) = Coordinator::start(store.clone(), config).unwrap();
    let Some(LeaseEvent::Acquired(handle)) = events.recv().await else {
        panic!("no lease acquired")
    };
    handle.checkpoint(E::new("100", 0)).await.unwrap();
    let counter = lease_in(&store.table, KEY).lease_counter;
    store.mode.store(1, Ordering::SeqCst);
    // The next renewal lands and hangs; abandoned after its period, the one after hangs.
    while lease_in(&store.table, KEY).lease_counter == counter {
        sleep(ms(100)).await;
    }
    sleep(ms(10_500)).await;
    // The checkpoint waits for the hung renewal to be abandoned, then writes on the counter
    // it knows, which the landed renewal moved.
    let checkpointing = handle.checkpoint(E::new("200", 0));
    let result = checkpointing.await;
    store.mode.store(0, Ordering::SeqCst);
    assert_eq!(result, Ok(()));
    assert_eq!(handle.status(), LeaseStatus::Held);
    assert_eq!(lease_in(&store.table, KEY).checkpoint, E::new("200", 0));
}
