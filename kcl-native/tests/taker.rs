//! The 2.x lease taker against the in-memory tables, on tokio's paused clock: native takers on
//! a table in a 2.x client version split the leases evenly, stop stealing once balanced, keep
//! renewing what they hold, and never write a worker-metrics row.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kcl_lease::coordinator::MIGRATION_KEY;
use kcl_lease::{
    ClientVersion, Decoded, Lease, LeaseStore, MemoryStore, MigrationState, Table, decode,
};
use kcl_native::config::InitialPosition;
use kcl_native::coordinator::{
    Coordinator, CoordinatorConfig, LeaseEvent, Role, ShardSync, StartOptions,
};
use kcl_native::testing::MemoryKinesis;
use kcl_producer::api::StreamRef;
use kcl_protocol::ExtendedSequenceNumber as E;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Instant, sleep};

const S: fn(u64) -> Duration = Duration::from_secs;

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

/// Landed lease writes that changed the owner.
fn owner_changes(store: &MemoryStore) -> usize {
    store
        .writes()
        .iter()
        .filter(|w| w.table == Table::Lease && w.landed())
        .filter(|w| {
            let owner = |item: &Option<kcl_lease::Item>| {
                item.as_ref()
                    .and_then(|i| i.get("leaseOwner"))
                    .and_then(|v| v.as_s())
                    .map(str::to_owned)
            };
            w.before.is_some() && owner(&w.before) != owner(&w.after)
        })
        .count()
}

fn table_2x(version: ClientVersion) -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    store.insert(
        Table::CoordinatorState,
        MigrationState::new(version, "java-1", 1).encode(),
    );
    store
}

/// Drains the acquired leases (a shard worker per lease that does nothing).
fn drain(mut events: UnboundedReceiver<LeaseEvent>) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut acquired = 0;
        while let Some(LeaseEvent::Acquired(_)) = events.recv().await {
            acquired += 1;
        }
        acquired
    })
}

#[tokio::test(start_paused = true)]
async fn native_takers_split_a_2x_table_evenly_and_stop_stealing() {
    let store = table_2x(ClientVersion::UpgradeFrom2x);
    for n in 0..12 {
        let lease = Lease::new(format!("shardId-{n:02}"), E::new("100", 0));
        store.create_if_not_exists(&lease).await.unwrap();
    }
    let mut takers = Vec::new();
    for id in ["native-a", "native-b", "native-c"] {
        let (coordinator, events) = Coordinator::launch(
            store.clone(),
            CoordinatorConfig::new(id),
            StartOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(coordinator.role(), Role::Taker2x);
        assert_eq!(
            coordinator.client_version(),
            Some(ClientVersion::UpgradeFrom2x)
        );
        takers.push((coordinator, drain(events)));
        sleep(S(1)).await;
    }
    // The first taker takes every never-renewed lease; the others steal one per round each.
    let start = Instant::now();
    while owners(&store).values().any(|n| *n != 4) || owners(&store).len() != 3 {
        assert!(
            start.elapsed() < S(600),
            "not balanced: {:?}",
            owners(&store)
        );
        sleep(S(1)).await;
    }
    let balanced_after = start.elapsed();
    let changes = owner_changes(&store);
    sleep(S(600)).await;
    assert_eq!(
        owner_changes(&store),
        changes,
        "stealing went on after {balanced_after:?}"
    );
    assert_eq!(
        owners(&store),
        BTreeMap::from([
            ("native-a".to_string(), 4),
            ("native-b".to_string(), 4),
            ("native-c".to_string(), 4)
        ])
    );
    for (coordinator, _) in &takers {
        assert_eq!(coordinator.held().len(), 4);
    }
    // No worker-metrics row: the fleet cannot flip to 3.x while the takers take part.
    assert!(store.items(Table::WorkerMetrics).is_empty());
    assert!(store.item(Table::CoordinatorState, "Leader").is_none());
    let migration = store.item(Table::CoordinatorState, MIGRATION_KEY).unwrap();
    assert_eq!(
        migration["cv"].as_s(),
        Some("CLIENT_VERSION_UPGRADE_FROM_2X")
    );
    for (coordinator, acquired) in takers {
        coordinator.close().await;
        assert!(acquired.await.unwrap() >= 4);
    }
    // Closing evicted every lease.
    assert_eq!(owners(&store).get(""), Some(&12));
}

#[tokio::test(start_paused = true)]
async fn a_taker_renews_and_takes_expired_leases_of_a_dead_worker() {
    let store = table_2x(ClientVersion::V2x);
    for n in 0..4 {
        let lease = Lease::new(format!("shardId-{n}"), E::new("100", 0));
        store.create_if_not_exists(&lease).await.unwrap();
    }
    let (a, ea) = Coordinator::launch(
        store.clone(),
        CoordinatorConfig::new("native-a"),
        StartOptions::default(),
    )
    .await
    .unwrap();
    let _a = drain(ea);
    sleep(S(1)).await;
    assert_eq!(owners(&store)["native-a"], 4);
    let (b, eb) = Coordinator::launch(
        store.clone(),
        CoordinatorConfig::new("native-b"),
        StartOptions::default(),
    )
    .await
    .unwrap();
    let _b = drain(eb);
    sleep(S(120)).await;
    assert_eq!(owners(&store)["native-a"], 2);
    assert_eq!(owners(&store)["native-b"], 2);
    // native-a dies: its leases stop moving; native-b takes them once expired (as observed).
    drop(a);
    let died = Instant::now();
    while owners(&store).get("native-b") != Some(&4) {
        assert!(died.elapsed() < S(120));
        sleep(S(1)).await;
    }
    assert!(died.elapsed() > S(10), "taken before the failover time");
    assert_eq!(b.held().len(), 4);
    b.close().await;
}

#[tokio::test(start_paused = true)]
async fn a_taker_creates_the_leases_of_a_new_2x_application() {
    let store = table_2x(ClientVersion::UpgradeFrom2x);
    let kinesis = MemoryKinesis::new("orders", 3);
    let options = StartOptions::default().shard_sync(ShardSync::new(
        kinesis,
        StreamRef::name("orders"),
        InitialPosition::TrimHorizon,
    ));
    let (taker, events) =
        Coordinator::launch(store.clone(), CoordinatorConfig::new("native-a"), options)
            .await
            .unwrap();
    let _a = drain(events);
    sleep(S(1)).await;
    assert_eq!(owners(&store).get(""), Some(&3));
    sleep(S(21)).await;
    assert_eq!(owners(&store).get("native-a"), Some(&3));
    taker.close().await;
}
