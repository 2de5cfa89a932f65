//! The native worker end to end, in process: a `Supervisor` over a `MemoryStore` lease table and
//! a `MemoryKinesis` stream, with the leases assigned to the worker by hand as a Java leader
//! would (`ops::assign`), driving a recording processor through the same engine the
//! MultiLangDaemon child runtime uses.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kcl_core::{
    Batch, CheckpointStrategy, Checkpointer, FailurePolicy, Initialize, RecordProcessor, Runtime,
    StartingPosition,
};
use kcl_lease::{Decoded, Lease, LeaseStore, MemoryStore, Table, decode, ops};
use kcl_native::config::{InitialPosition, NativeConfig};
use kcl_native::testing::MemoryKinesis;
use kcl_native::{RunError, ShardInfo, Stopper, Supervisor};
use kcl_producer::api::{KinesisApi, Record, StreamRef};
use kcl_protocol::ExtendedSequenceNumber as E;
use tokio::task::JoinHandle;

const ME: &str = "native-1";
const STREAM: &str = "words";

/// What the processors saw, in the order they saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Initialize(String, StartingPosition),
    Record(String, String),
    LeaseLost(String),
    /// After `shardEnded` checkpointed (or failed to).
    ShardEnded(String),
    ShutdownRequested(String),
}

#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Vec<Seen>>>);

impl Journal {
    fn push(&self, seen: Seen) {
        self.0.lock().unwrap().push(seen);
    }

    fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    fn records(&self) -> Vec<(String, String)> {
        self.all()
            .into_iter()
            .filter_map(|seen| match seen {
                Seen::Record(shard, data) => Some((shard, data)),
                _ => None,
            })
            .collect()
    }

    fn position(&self, wanted: &Seen) -> Option<usize> {
        self.all().iter().position(|seen| seen == wanted)
    }
}

/// A processor that writes down everything; fails on a record `poison`; may sleep in
/// `shardEnded` before checkpointing it, or fail it (without a checkpoint) a number of times.
struct Recorder {
    shard: String,
    journal: Journal,
    slow_shard_end: Duration,
    failed_shard_ends: Arc<AtomicU32>,
}

impl RecordProcessor for Recorder {
    fn initialize(&mut self, shard: &Initialize) -> kcl_core::Result<()> {
        self.journal.push(Seen::Initialize(
            shard.shard_id.clone(),
            shard.starting_position.clone(),
        ));
        Ok(())
    }

    fn process_records(
        &mut self,
        batch: &Batch,
        _checkpointer: &mut Checkpointer<'_>,
    ) -> kcl_core::Result<()> {
        for record in batch {
            let data = String::from_utf8_lossy(record.data()).into_owned();
            if data == "poison" {
                return Err(kcl_core::Error::msg("poison record"));
            }
            self.journal.push(Seen::Record(self.shard.clone(), data));
        }
        Ok(())
    }

    fn lease_lost(&mut self) -> kcl_core::Result<()> {
        self.journal.push(Seen::LeaseLost(self.shard.clone()));
        Ok(())
    }

    fn shard_ended(&mut self, checkpointer: &mut Checkpointer<'_>) -> kcl_core::Result<()> {
        std::thread::sleep(self.slow_shard_end);
        let fail = self
            .failed_shard_ends
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            return Err(kcl_core::Error::msg("shardEnded failed"));
        }
        let result = checkpointer.checkpoint_handled();
        self.journal.push(Seen::ShardEnded(self.shard.clone()));
        Ok(result?)
    }

    fn shutdown_requested(&mut self, checkpointer: &mut Checkpointer<'_>) -> kcl_core::Result<()> {
        self.journal
            .push(Seen::ShutdownRequested(self.shard.clone()));
        Ok(checkpointer.checkpoint_handled()?)
    }
}

/// Fast timings: renewals every 975 ms, discovery every 175 ms, reads every 200 ms; new leases
/// (made by the worker itself as leader) start at TRIM_HORIZON.
fn config() -> NativeConfig {
    NativeConfig::builder("words-app", STREAM)
        .worker_id(ME)
        .failover_time(Duration::from_secs(3))
        .lease_assignment_interval(Duration::from_millis(400))
        .idle_time_between_reads(Duration::from_millis(200))
        .parent_shard_poll_interval(Duration::from_millis(100))
        .shutdown_grace(Duration::from_secs(5))
        .initial_position(InitialPosition::TrimHorizon)
        .build()
        .unwrap()
}

struct World {
    kinesis: MemoryKinesis,
    store: Arc<MemoryStore>,
    journal: Journal,
}

impl World {
    fn new(shards: u32) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_max_level(tracing::Level::INFO)
            .try_init();
        World {
            kinesis: MemoryKinesis::new(STREAM, shards),
            store: Arc::new(MemoryStore::new()),
            journal: Journal::default(),
        }
    }

    /// Writes `texts`, each with its own partition key (spread over the shards).
    async fn put(&self, texts: impl IntoIterator<Item = String>) {
        let records: Vec<Record> = texts
            .into_iter()
            .map(|text| Record::new(format!("key-{text}"), text))
            .collect();
        for chunk in records.chunks(500) {
            self.kinesis
                .fake()
                .put_records(&StreamRef::name(STREAM), chunk)
                .await
                .unwrap();
        }
    }

    /// A lease for every open shard (trim horizon, its hash range), assigned to this worker.
    async fn assign_open_shards(&self) {
        for shard in self.kinesis.fake().shards().into_iter().filter(|s| s.open) {
            let mut lease = Lease::new(&shard.shard_id, E::trim_horizon());
            lease.hash_key_range = Some((shard.starting_hash_key, shard.ending_hash_key));
            self.store.create_if_not_exists(&lease).await.unwrap();
            self.assign(&shard.shard_id, ME).await;
        }
    }

    /// What a leader does: `assignLease` of the lease as it is now.
    async fn assign(&self, key: &str, owner: &str) {
        let lease = self.lease(key);
        self.store
            .update(Table::Lease, &ops::assign(&lease, owner))
            .await
            .unwrap();
    }

    fn lease(&self, key: &str) -> Lease {
        let item = self.store.item(Table::Lease, key).expect("a lease");
        match decode(&item).unwrap() {
            Decoded::Lease(lease) => lease,
            Decoded::NotALease { .. } => panic!("not a lease"),
        }
    }

    fn checkpoint(&self, key: &str) -> E {
        self.lease(key).checkpoint
    }

    fn last_sequence(&self, shard: &str) -> String {
        let records = self.kinesis.fake().records(shard);
        records.last().expect("records").sequence_number.to_string()
    }

    /// Starts a worker whose processors are `Recorder`s with `settings` applied.
    fn start(
        &self,
        settings: impl Fn(&ShardInfo, Runtime<Recorder>) -> Runtime<Recorder> + Send + Sync + 'static,
    ) -> (Stopper, JoinHandle<Result<(), RunError>>) {
        let journal = self.journal.clone();
        let factory = move |shard: &ShardInfo| {
            let recorder = Recorder {
                shard: shard.shard_id.clone(),
                journal: journal.clone(),
                slow_shard_end: Duration::ZERO,
                failed_shard_ends: Arc::default(),
            };
            settings(shard, Runtime::new(recorder))
        };
        let supervisor =
            Supervisor::new(self.store.clone(), self.kinesis.clone(), config(), factory)
                .progress_interval(Duration::from_millis(500));
        let stopper = supervisor.stopper();
        (stopper, tokio::spawn(supervisor.run()))
    }
}

/// Waits until `ready` holds (at most 20 s).
async fn eventually(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shards_every_record_once_checkpointed_at_each_shards_last_record() {
    let world = World::new(4);
    world.put((0..1000).map(|i| format!("record-{i}"))).await;
    world.assign_open_shards().await;
    let (stopper, run) = world.start(|_, runtime| runtime);

    let shards: Vec<String> = (0..4).map(|n| format!("shardId-00000000000{n}")).collect();
    eventually("every checkpoint at its shard's last record", || {
        shards
            .iter()
            .all(|shard| world.checkpoint(shard).sequence_number() == world.last_sequence(shard))
    })
    .await;
    stopper.stop();
    run.await.unwrap().unwrap();

    let mut seen = world.journal.records();
    assert_eq!(seen.len(), 1000, "every record once");
    for shard in &shards {
        let stored: Vec<(String, String)> = world
            .kinesis
            .fake()
            .records(shard)
            .iter()
            .map(|r| (shard.clone(), String::from_utf8_lossy(&r.data).into_owned()))
            .collect();
        assert!(!stored.is_empty(), "{shard} got records");
        let handled: Vec<(String, String)> =
            seen.iter().filter(|(s, _)| s == shard).cloned().collect();
        assert_eq!(handled, stored, "{shard}: in shard order, once");
        let initializes: Vec<Seen> = world
            .journal
            .all()
            .into_iter()
            .filter(|s| matches!(s, Seen::Initialize(id, _) if id == shard))
            .collect();
        assert_eq!(
            initializes,
            [Seen::Initialize(
                shard.clone(),
                StartingPosition::TrimHorizon
            )],
            "{shard}: initialized once, at TRIM_HORIZON"
        );
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 1000, "no record twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_creates_both_child_leases_and_the_children_wait_for_the_parents_shard_end() {
    let world = World::new(1);
    let parent = "shardId-000000000000";
    world.put((0..50).map(|i| format!("before-{i}"))).await;
    world.assign_open_shards().await;
    let journal = world.journal.clone();
    // The parent's shardEnded takes a while: the children, assigned meanwhile, must wait.
    let factory = move |shard: &ShardInfo| {
        Runtime::new(Recorder {
            shard: shard.shard_id.clone(),
            journal: journal.clone(),
            slow_shard_end: if shard.shard_id == "shardId-000000000000" {
                Duration::from_millis(1500)
            } else {
                Duration::ZERO
            },
            failed_shard_ends: Arc::default(),
        })
    };
    let supervisor = Supervisor::new(
        world.store.clone(),
        world.kinesis.clone(),
        config(),
        factory,
    );
    let stopper = supervisor.stopper();
    let run = tokio::spawn(supervisor.run());

    eventually("the parent's records", || {
        world.journal.records().len() == 50
    })
    .await;
    let children = world.kinesis.fake().split(parent);
    world.put((0..100).map(|i| format!("after-{i}"))).await;
    eventually("both child leases", || {
        children
            .iter()
            .all(|child| world.store.item(Table::Lease, child).is_some())
    })
    .await;
    // A leader assigns the children as soon as they exist.
    for child in &children {
        let lease = world.lease(child);
        assert_eq!(lease.checkpoint, E::trim_horizon());
        assert_eq!(lease.parent_shard_ids.iter().collect::<Vec<_>>(), [parent]);
        assert!(lease.hash_key_range.is_some());
        assert_eq!(lease.lease_owner, None);
        world.assign(child, ME).await;
    }
    assert_eq!(
        world.lease(parent).child_shard_ids,
        children.iter().cloned().collect(),
        "childShardIds on the parent"
    );
    eventually("the children's records", || {
        world.journal.records().len() == 150
    })
    .await;
    stopper.stop();
    run.await.unwrap().unwrap();

    assert!(world.checkpoint(parent).is_shard_end());
    let parent_ended = world
        .journal
        .position(&Seen::ShardEnded(parent.into()))
        .expect("shardEnded");
    for child in &children {
        let initialized = world
            .journal
            .all()
            .iter()
            .position(|s| matches!(s, Seen::Initialize(id, _) if id == child))
            .expect("the child was processed");
        assert!(
            initialized > parent_ended,
            "{child} started before its parent checkpointed SHARD_END: {:?}",
            world.journal.all()
        );
        assert_eq!(
            world.checkpoint(child).sequence_number(),
            world.last_sequence(child)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_requests_shutdown_lands_final_checkpoints_and_evicts_every_lease() {
    let world = World::new(4);
    world.put((0..200).map(|i| format!("record-{i}"))).await;
    world.assign_open_shards().await;
    // No checkpoint before the shutdown: the final ones come from shutdownRequested.
    let (stopper, run) =
        world.start(|_, runtime| runtime.checkpoint_strategy(CheckpointStrategy::Manual));
    eventually("every record", || world.journal.records().len() == 200).await;
    let shards: Vec<String> = (0..4).map(|n| format!("shardId-00000000000{n}")).collect();
    for shard in &shards {
        assert_eq!(
            world.checkpoint(shard),
            E::trim_horizon(),
            "no checkpoint yet"
        );
    }
    let before_stop = world.store.writes().len();
    stopper.stop();
    run.await.unwrap().unwrap();

    let seen = world.journal.all();
    for shard in &shards {
        let requested = world
            .journal
            .position(&Seen::ShutdownRequested(shard.clone()))
            .unwrap_or_else(|| panic!("{shard}: no shutdownRequested: {seen:?}"));
        let lost = world
            .journal
            .position(&Seen::LeaseLost(shard.clone()))
            .unwrap_or_else(|| panic!("{shard}: no leaseLost after the eviction"));
        assert!(requested < lost);
        assert_eq!(
            world.checkpoint(shard).sequence_number(),
            world.last_sequence(shard),
            "{shard}: the final checkpoint"
        );
        // The last write of each lease is the eviction: owner removed, counter + 1.
        let writes = world.store.writes();
        let eviction = writes[before_stop..]
            .iter()
            .rfind(|w| w.table == Table::Lease && &w.key == shard && w.landed())
            .expect("an eviction");
        let before = eviction.before.as_ref().unwrap();
        let after = eviction.after.as_ref().unwrap();
        assert_eq!(before["leaseOwner"].as_s(), Some(ME));
        assert!(!after.contains_key("leaseOwner"), "{shard}: evicted");
        let counter =
            |item: &kcl_lease::Item| item["leaseCounter"].as_n().unwrap().parse::<u64>().unwrap();
        assert_eq!(counter(after), counter(before) + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_taken_by_another_owner_gets_lease_lost_and_no_later_checkpoint() {
    let world = World::new(2);
    world.put((0..100).map(|i| format!("record-{i}"))).await;
    world.assign_open_shards().await;
    let (stopper, run) = world.start(|_, runtime| runtime);
    eventually("every record", || world.journal.records().len() == 100).await;

    let taken = "shardId-000000000001";
    eventually("the first checkpoint", || {
        world.checkpoint(taken).sequence_number() == world.last_sequence(taken)
    })
    .await;
    world.assign(taken, "java-worker").await;
    let taken_at = world.store.writes().len();
    eventually("leaseLost", || {
        world
            .journal
            .position(&Seen::LeaseLost(taken.into()))
            .is_some()
    })
    .await;
    // More records on every shard: the other shard goes on, the taken one is not read.
    world.put((100..300).map(|i| format!("record-{i}"))).await;
    let kept = "shardId-000000000000";
    eventually("the kept shard's new records checkpointed", || {
        world.checkpoint(kept).sequence_number() == world.last_sequence(kept)
    })
    .await;
    stopper.stop();
    run.await.unwrap().unwrap();

    let late: Vec<_> = world.store.writes()[taken_at..]
        .iter()
        .filter(|w| w.table == Table::Lease && w.key == taken && w.landed())
        .cloned()
        .collect();
    assert!(
        late.is_empty(),
        "a write landed after the lease was taken: {late:?}"
    );
    let lease = world.lease(taken);
    assert_eq!(lease.lease_owner.as_deref(), Some("java-worker"));
    let after_loss: Vec<_> = world
        .journal
        .all()
        .into_iter()
        .skip_while(|s| s != &Seen::LeaseLost(taken.into()))
        .filter(|s| matches!(s, Seen::Record(shard, _) | Seen::ShutdownRequested(shard) if shard == taken))
        .collect();
    assert!(after_loss.is_empty(), "{after_loss:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_handoff_requests_shutdown_then_writes_the_transfer() {
    let world = World::new(1);
    let shard = "shardId-000000000000";
    world.put((0..40).map(|i| format!("record-{i}"))).await;
    world.assign_open_shards().await;
    // Manual: the only checkpoint is shutdownRequested's.
    let (stopper, run) =
        world.start(|_, runtime| runtime.checkpoint_strategy(CheckpointStrategy::Manual));
    eventually("every record", || world.journal.records().len() == 40).await;

    // A leader hands the lease to another worker.
    let handoff = ops::initiate_graceful_handoff(&world.lease(shard), "java-worker").unwrap();
    world.store.update(Table::Lease, &handoff).await.unwrap();
    eventually("the transfer", || {
        world.lease(shard).checkpoint_owner.is_none()
            && world
                .journal
                .position(&Seen::LeaseLost(shard.into()))
                .is_some()
    })
    .await;
    let lease = world.lease(shard);
    assert_eq!(lease.lease_owner.as_deref(), Some("java-worker"));
    assert_eq!(
        lease.checkpoint.sequence_number(),
        world.last_sequence(shard),
        "the last checkpoint before the transfer"
    );
    let requested = world
        .journal
        .position(&Seen::ShutdownRequested(shard.into()))
        .unwrap();
    let lost = world
        .journal
        .position(&Seen::LeaseLost(shard.into()))
        .unwrap();
    assert!(requested < lost, "{:?}", world.journal.all());
    // The transfer is the worker's last write: checkpointOwner removed, counter + 1.
    let writes = world.store.writes();
    let transfer = writes
        .iter()
        .rfind(|w| w.key == shard && w.landed())
        .unwrap();
    let before = transfer.before.as_ref().unwrap();
    assert_eq!(before["checkpointOwner"].as_s(), Some(ME));
    assert!(
        !transfer
            .after
            .as_ref()
            .unwrap()
            .contains_key("checkpointOwner")
    );
    stopper.stop();
    run.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exit_failure_policy_ends_the_run_with_an_error_naming_the_shard() {
    let world = World::new(2);
    world.put((0..20).map(|i| format!("record-{i}"))).await;
    world.assign_open_shards().await;
    let (_stopper, run) =
        world.start(|_, runtime| runtime.failure_policy(FailurePolicy::exit().attempts(1)));
    eventually("every record", || world.journal.records().len() == 20).await;

    let poisoned = "shardId-000000000001";
    let shard = world.kinesis.fake().shards()[1].clone();
    let record =
        Record::new("poison", "poison").explicit_hash_key(shard.starting_hash_key.to_string());
    world
        .kinesis
        .fake()
        .put_records(&StreamRef::name(STREAM), &[record])
        .await
        .unwrap();
    let error = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the run ends")
        .unwrap()
        .unwrap_err();
    match &error {
        RunError::ProcessorExit { shard, reason } => {
            assert_eq!(shard, poisoned);
            assert!(reason.contains("poison"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(error.to_string().contains(poisoned), "{error}");
    let leases: BTreeMap<String, Option<String>> = ["shardId-000000000000", poisoned]
        .into_iter()
        .map(|key| (key.to_owned(), world.lease(key).lease_owner))
        .collect();
    assert!(
        leases.values().all(Option::is_none),
        "every lease evicted: {leases:?}"
    );
    // The other shard was shut down gracefully.
    assert!(
        world
            .journal
            .position(&Seen::ShutdownRequested("shardId-000000000000".into()))
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_end_without_the_shard_end_checkpoint_is_delivered_again() {
    let world = World::new(1);
    let parent = "shardId-000000000000";
    world.put((0..10).map(|i| format!("record-{i}"))).await;
    world.assign_open_shards().await;
    let journal = world.journal.clone();
    let failures = Arc::new(AtomicU32::new(2));
    let left = failures.clone();
    let factory = move |shard: &ShardInfo| {
        Runtime::new(Recorder {
            shard: shard.shard_id.clone(),
            journal: journal.clone(),
            slow_shard_end: Duration::ZERO,
            failed_shard_ends: left.clone(),
        })
    };
    let supervisor = Supervisor::new(
        world.store.clone(),
        world.kinesis.clone(),
        config(),
        factory,
    );
    let stopper = supervisor.stopper();
    let run = tokio::spawn(supervisor.run());
    eventually("the records", || world.journal.records().len() == 10).await;
    world.kinesis.fake().split(parent);
    eventually("SHARD_END checkpointed", || {
        world.checkpoint(parent).is_shard_end()
    })
    .await;
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "shardEnded was delivered three times"
    );
    let ended = Seen::ShardEnded(parent.into());
    assert!(
        world.journal.position(&ended).is_some(),
        "shardEnded returned"
    );
    stopper.stop();
    run.await.unwrap().unwrap();
}

/// A native worker on its own, on a new application: nobody assigns leases by hand. It writes
/// `Migration3.0`, takes the `Leader` lock, creates a lease per shard from the configured
/// initial position, assigns them to itself (its metrics row makes it an active worker) and
/// handles every record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_native_worker_creates_assigns_and_processes_every_lease_itself() {
    let world = World::new(4);
    world.put((0..400).map(|i| format!("record-{i}"))).await;
    let (stopper, run) = world.start(|_, runtime| runtime);

    let shards: Vec<String> = (0..4).map(|n| format!("shardId-00000000000{n}")).collect();
    eventually("every checkpoint at its shard's last record", || {
        shards.iter().all(|shard| {
            world.store.item(Table::Lease, shard).is_some()
                && world.checkpoint(shard).sequence_number() == world.last_sequence(shard)
        })
    })
    .await;
    let migration = world
        .store
        .item(Table::CoordinatorState, "Migration3.0")
        .expect("a new application's client version");
    assert_eq!(migration["cv"].as_s(), Some("CLIENT_VERSION_3X"));
    let leader = world
        .store
        .item(Table::CoordinatorState, "Leader")
        .expect("the leader lock");
    assert_eq!(leader["ownerName"].as_s(), Some(ME));
    stopper.stop();
    run.await.unwrap().unwrap();

    let mut seen = world.journal.records();
    assert_eq!(seen.len(), 400, "every record once");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 400, "no record twice");
    for shard in &shards {
        assert_eq!(
            world.lease(shard).lease_owner,
            None,
            "{shard}: evicted at the stop"
        );
    }
}
