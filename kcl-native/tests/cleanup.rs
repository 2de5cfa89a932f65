//! The cleanup of finished leases (Java's `LeaseCleanupManager`) in a running worker: a
//! `Supervisor` over a `MemoryStore` and a `MemoryKinesis`, as a follower whose leases are
//! assigned by hand (so the test decides when each child starts), with short cleanup
//! intervals. A sampler reads the lease table every few milliseconds to catch a parent
//! deleted too early.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kcl_lease::{Decoded, Lease, LeaseStore, MemoryStore, Table, decode, ops};
use kcl_native::config::{InitialPosition, NativeConfig};
use kcl_native::coordinator::Role;
use kcl_native::testing::MemoryKinesis;
use kcl_native::{RunError, ShardInfo, Stopper, Supervisor, coordinator_config, processors};
use kcl_producer::api::{KinesisApi, Record, StreamRef};
use kcl_protocol::ExtendedSequenceNumber as E;
use tokio::task::JoinHandle;

const ME: &str = "native-1";
const STREAM: &str = "words";
const PARENT: &str = "shardId-000000000000";

/// Cleanup looked at every 100 ms, completed leases checked 300 ms after the last delete,
/// garbage leases `garbage` after.
fn config(garbage: Duration) -> NativeConfig {
    NativeConfig::builder("words-app", STREAM)
        .worker_id(ME)
        .failover_time(Duration::from_secs(3))
        .idle_time_between_reads(Duration::from_millis(200))
        .parent_shard_poll_interval(Duration::from_millis(100))
        .shutdown_grace(Duration::from_secs(5))
        .initial_position(InitialPosition::TrimHorizon)
        .lease_cleanup_intervals(
            Duration::from_millis(100),
            Duration::from_millis(300),
            garbage,
        )
        .build()
        .unwrap()
}

struct World {
    kinesis: MemoryKinesis,
    store: Arc<MemoryStore>,
    handled: Arc<Mutex<Vec<(String, String)>>>,
}

impl World {
    fn new() -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_max_level(tracing::Level::INFO)
            .try_init();
        World {
            kinesis: MemoryKinesis::new(STREAM, 1),
            store: Arc::new(MemoryStore::new()),
            handled: Arc::default(),
        }
    }

    async fn put(&self, prefix: &str, n: usize) {
        let records: Vec<Record> = (0..n)
            .map(|i| Record::new(format!("key-{prefix}-{i}"), format!("{prefix}-{i}")))
            .collect();
        self.kinesis
            .fake()
            .put_records(&StreamRef::name(STREAM), &records)
            .await
            .unwrap();
    }

    async fn create_and_assign(&self, key: &str, range: Option<(u128, u128)>) {
        let mut lease = Lease::new(key, E::trim_horizon());
        lease.hash_key_range = range;
        self.store.create_if_not_exists(&lease).await.unwrap();
        self.assign(key).await;
    }

    async fn assign(&self, key: &str) {
        let lease = self.lease(key).expect("a lease");
        self.store
            .update(Table::Lease, &ops::assign(&lease, ME))
            .await
            .unwrap();
    }

    fn lease(&self, key: &str) -> Option<Lease> {
        let item = self.store.item(Table::Lease, key)?;
        match decode(&item).unwrap() {
            Decoded::Lease(lease) => Some(lease),
            Decoded::NotALease { .. } => None,
        }
    }

    fn handled(&self, prefix: &str) -> usize {
        let handled = self.handled.lock().unwrap();
        handled
            .iter()
            .filter(|(_, d)| d.starts_with(prefix))
            .count()
    }

    /// A follower worker (nobody but the test assigns leases).
    fn start(&self, garbage: Duration) -> (Stopper, JoinHandle<Result<(), RunError>>) {
        let config = config(garbage);
        let mut coordinator = coordinator_config(&config);
        coordinator.role = Role::Follower;
        let handled = self.handled.clone();
        let factory = processors(move |shard: &ShardInfo| {
            let handled = handled.clone();
            let shard = shard.shard_id.clone();
            kcl_core::from_fn(move |batch, _| {
                for record in batch {
                    let data = String::from_utf8_lossy(record.data()).into_owned();
                    handled.lock().unwrap().push((shard.clone(), data));
                }
                Ok(())
            })
        });
        let supervisor = Supervisor::new(self.store.clone(), self.kinesis.clone(), config, factory)
            .coordinator_settings(coordinator);
        let stopper = supervisor.stopper();
        (stopper, tokio::spawn(supervisor.run()))
    }
}

async fn eventually(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn started(lease: &Lease) -> bool {
    !matches!(
        lease.checkpoint.sequence_number(),
        "TRIM_HORIZON" | "AT_TIMESTAMP"
    )
}

/// The parent of a split goes only once both children have checkpoints past `TRIM_HORIZON`:
/// with one child started and the other not yet assigned, it stays for many cleanup
/// intervals; a sampler checks at every read that the parent is never gone while a child has
/// not started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_parent_is_deleted_only_after_both_children_checkpointed_past_trim_horizon() {
    let world = World::new();
    world.put("before", 30).await;
    let shard = world.kinesis.fake().shards()[0].clone();
    world
        .create_and_assign(
            PARENT,
            Some((shard.starting_hash_key, shard.ending_hash_key)),
        )
        .await;
    let (stopper, run) = world.start(Duration::from_secs(3600));
    eventually("the parent's records", || world.handled("before") == 30).await;
    let children = world.kinesis.fake().split(PARENT);
    world.put("after", 200).await;
    eventually("both child leases and SHARD_END on the parent", || {
        children.iter().all(|c| world.lease(c).is_some())
            && world
                .lease(PARENT)
                .is_some_and(|p| p.checkpoint.is_shard_end())
    })
    .await;

    // The sampler: whenever the parent is gone, both children have started.
    let sampler = {
        let store = world.store.clone();
        let children = children.clone();
        tokio::spawn(async move {
            let lease = |key: &str| match store.item(Table::Lease, key).map(|i| decode(&i)) {
                Some(Ok(Decoded::Lease(lease))) => Some(lease),
                _ => None,
            };
            loop {
                let kids: Vec<Option<Lease>> = children.iter().map(|c| lease(c)).collect();
                if lease(PARENT).is_none() {
                    for (child, lease) in children.iter().zip(kids) {
                        let lease = lease.unwrap_or_else(|| panic!("{child}: no lease"));
                        assert!(
                            started(&lease),
                            "the parent was deleted while {child} is at {}",
                            lease.checkpoint
                        );
                    }
                    return;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };

    // One child only: it starts, the parent stays (well past the 300 ms completed interval).
    world.assign(&children[0]).await;
    eventually("the first child started", || {
        world.lease(&children[0]).is_some_and(|l| started(&l))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        world.lease(PARENT).is_some(),
        "the parent was deleted with {} still at TRIM_HORIZON",
        children[1]
    );
    assert!(!started(&world.lease(&children[1]).unwrap()));

    // The second child: once it checkpoints, the parent goes.
    world.assign(&children[1]).await;
    eventually("the parent deleted", || world.lease(PARENT).is_none()).await;
    sampler.await.expect("the sampler's checks");
    eventually("every record", || world.handled("after") == 200).await;
    assert!(children.iter().all(|c| world.lease(c).is_some()));
    stopper.stop();
    run.await.unwrap().unwrap();
    assert!(world.lease(PARENT).is_none(), "the parent came back");
}

/// Another worker (a Java worker's cleanup, C17) deletes the finished parent before this
/// worker's cleanup would: the worker keeps going (the children are processed, the run ends
/// cleanly) and never writes the parent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_deleted_by_another_worker_mid_run_is_tolerated() {
    let world = World::new();
    world.put("before", 30).await;
    let shard = world.kinesis.fake().shards()[0].clone();
    world
        .create_and_assign(
            PARENT,
            Some((shard.starting_hash_key, shard.ending_hash_key)),
        )
        .await;
    let (stopper, run) = world.start(Duration::from_secs(3600));
    eventually("the parent's records", || world.handled("before") == 30).await;
    let children = world.kinesis.fake().split(PARENT);
    world.put("after", 200).await;
    eventually("SHARD_END on the parent", || {
        children.iter().all(|c| world.lease(c).is_some())
            && world
                .lease(PARENT)
                .is_some_and(|p| p.checkpoint.is_shard_end())
    })
    .await;
    let parent = world.lease(PARENT).unwrap();
    world
        .store
        .delete(Table::Lease, &ops::delete(&parent))
        .await
        .unwrap();
    let writes_before = world.store.write_count();
    for child in &children {
        world.assign(child).await;
    }
    eventually("every record of the children", || {
        world.handled("after") == 200
    })
    .await;
    // Several renewal periods (1 s) and cleanup looks pass with the parent gone.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        world.store.write_count() > writes_before,
        "the worker kept writing"
    );
    assert!(!run.is_finished(), "the run ended: {:?}", run.await);
    stopper.stop();
    run.await.unwrap().unwrap();
    assert!(
        world.lease(PARENT).is_none(),
        "the parent was written again"
    );
    let parent_writes = world
        .store
        .writes()
        .into_iter()
        .skip(writes_before)
        .filter(|w| w.table == Table::Lease && w.key == PARENT && w.landed())
        .count();
    assert_eq!(parent_writes, 0, "a write landed on the deleted parent");
}

/// A lease whose shard Kinesis does not know (the stream lost it): reading it ends the shard
/// without children; after `shardEnded` the garbage check deletes the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_of_a_shard_not_in_the_stream_is_deleted_by_the_garbage_check() {
    let world = World::new();
    let ghost = "shardId-000000000042";
    world.create_and_assign(ghost, None).await;
    let (stopper, run) = world.start(Duration::from_millis(500));
    eventually("SHARD_END on the ghost lease", || {
        world
            .lease(ghost)
            .is_some_and(|l| l.checkpoint.is_shard_end())
    })
    .await;
    eventually("the ghost lease deleted", || world.lease(ghost).is_none()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!run.is_finished(), "the run ended: {:?}", run.await);
    stopper.stop();
    run.await.unwrap().unwrap();
    assert!(world.lease(ghost).is_none());
}
