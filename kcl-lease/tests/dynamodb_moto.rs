//! `DynamoStore` against moto_server (the DynamoDB the end-to-end suite runs the real KCL on):
//! table creation as Java does it, every lease operation fenced by its counter or owners (C3),
//! and a differential test — the same random writes to `DynamoStore` and `MemoryStore`, the
//! results and the tables compared after every step.
//!
//! Each test starts its own moto_server on a free 127.0.0.1 port: `KCL_MOTO_SERVER`, else
//! `$KCL_E2E_CACHE/venv/bin/moto_server`, else `<repo>/.e2e-cache/venv/bin/moto_server`
//! (`bash scripts/e2e.sh install` puts it there). Without it the tests fail, they never pass
//! unrun. `KCL_DIFF_SEED=n` replays one sequence of the differential test,
//! `KCL_DIFF_SEQUENCES=n` runs n of them (12 by default, 80 steps each).
//!
//! `cargo test -p kcl-lease --features dynamodb --test dynamodb_moto -- --ignored`

use std::collections::BTreeSet;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{
    BillingMode, IndexStatus, KeyType, ProjectionType, ScalarAttributeType, TableStatus,
};
use kcl_lease::coordinator::{self, LEADER_KEY};
use kcl_lease::dynamo::tables::{self, WaitPolicy};
use kcl_lease::dynamo::{DynamoStore, TableNames};
use kcl_lease::ops::{self, Meta};
use kcl_lease::{
    AttributeValue as V, ClientVersion, Condition, Decoded, Delete, Item, Lease, LeaseStore,
    LockItem, MemoryStore, MigrationState, StoreError, Table, UpdateError, WorkerMetricStats,
    Write, block_on, decode,
};
use kcl_protocol::ExtendedSequenceNumber as E;

/// A moto_server child on 127.0.0.1, killed when dropped (its log printed if the test failed).
struct Moto {
    child: Child,
    endpoint: String,
    log: PathBuf,
}

fn moto_server() -> PathBuf {
    if let Some(path) = std::env::var_os("KCL_MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("KCL_E2E_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.e2e-cache"));
    let path = cache.join("venv/bin/moto_server");
    if !path.is_file() {
        panic!(
            "prerequisite missing: moto_server: {} does not exist; run `bash scripts/e2e.sh install` \
             (or set KCL_E2E_CACHE to its cache, or KCL_MOTO_SERVER to the program) \
             (this test cannot pass without running)",
            path.display()
        );
    }
    path
}

impl Moto {
    fn start() -> Moto {
        let program = moto_server();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let log = std::env::temp_dir().join(format!("kcl-lease-moto-{port}.log"));
        let file = std::fs::File::create(&log).expect("a log file for moto_server");
        let mut child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("the log file twice"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("{} did not start: {e}", program.display()));
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{} exited at start: {status}", program.display());
            }
            assert!(
                Instant::now() < deadline,
                "moto_server not listening on {port} after 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    fn client(&self) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                "kcl-local",
                "kcl-local",
                None,
                None,
                "test",
            ))
            .endpoint_url(&self.endpoint)
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!("--- the end of moto_server's log ({}):", self.log.display());
            for line in &lines[lines.len().saturating_sub(40)..] {
                eprintln!("{line}");
            }
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// moto makes tables ACTIVE at once: look often, give up soon.
const QUICK: WaitPolicy = WaitPolicy {
    interval: Duration::from_millis(20),
    timeout: Duration::from_secs(30),
};

async fn store(moto: &Moto, application: &str) -> DynamoStore {
    let store = DynamoStore::new(moto.client(), TableNames::for_application(application));
    tables::create_tables(store.client(), store.names(), QUICK)
        .await
        .unwrap();
    store
}

/// Items equal as DynamoDB compares values (numbers by value, sets in any order).
fn same_item(a: &Item, b: &Item) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka == kb && va.same_value(vb))
}

fn same_items(a: Option<&Item>, b: Option<&Item>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same_item(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// How a write ended, the same way for both stores.
#[derive(Debug)]
enum Ended {
    Landed(Option<Item>),
    ConditionFailed(Option<Item>),
    Invalid,
}

fn ended<T>(result: Result<T, UpdateError>, item: impl FnOnce(T) -> Option<Item>) -> Ended {
    match result {
        Ok(value) => Ended::Landed(item(value)),
        Err(UpdateError::ConditionFailed(failed)) => Ended::ConditionFailed(failed.current),
        Err(UpdateError::Store(StoreError::Invalid(_))) => Ended::Invalid,
        Err(other) => panic!("the store failed: {other}"),
    }
}

fn same_ending(a: &Ended, b: &Ended) -> bool {
    match (a, b) {
        (Ended::Landed(a), Ended::Landed(b))
        | (Ended::ConditionFailed(a), Ended::ConditionFailed(b)) => {
            same_items(a.as_ref(), b.as_ref())
        }
        (Ended::Invalid, Ended::Invalid) => true,
        _ => false,
    }
}

/// The same writes to DynamoDB and to memory; every result and every table compared.
struct Pair {
    dynamo: DynamoStore,
    memory: MemoryStore,
    /// Named in failure messages.
    label: String,
}

/// What happened to a write, for the fencing assertions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Landed,
    ConditionFailed,
    Invalid,
}

impl Ended {
    fn kind(&self) -> Kind {
        match self {
            Ended::Landed(_) => Kind::Landed,
            Ended::ConditionFailed(_) => Kind::ConditionFailed,
            Ended::Invalid => Kind::Invalid,
        }
    }
}

impl Pair {
    async fn update(&self, table: Table, write: &Write) -> Kind {
        let dynamo = ended(self.dynamo.update(table, write).await, Some);
        let memory = ended(block_on(self.memory.update(table, write)), Some);
        self.judge(table, &format!("{write:?}"), &dynamo, &memory)
            .await
    }

    async fn delete(&self, table: Table, delete: &Delete) -> Kind {
        let dynamo = ended(self.dynamo.delete(table, delete).await, |old| old);
        let memory = ended(block_on(self.memory.delete(table, delete)), |old| old);
        self.judge(table, &format!("{delete:?}"), &dynamo, &memory)
            .await
    }

    async fn judge(&self, table: Table, request: &str, dynamo: &Ended, memory: &Ended) -> Kind {
        assert!(
            same_ending(dynamo, memory),
            "{}: {table:?} {request}\n  DynamoDB: {dynamo:?}\n  memory:   {memory:?}",
            self.label
        );
        self.same_tables(table, request).await;
        memory.kind()
    }

    /// The table as both stores hold it (the lease table as scanned, without foreign rows).
    async fn same_tables(&self, table: Table, after: &str) {
        let mut dynamo = self.dynamo.scan(table).await.unwrap();
        let key = table.key_attribute();
        dynamo.sort_by(|a, b| a[key].as_s().cmp(&b[key].as_s()));
        let memory = block_on(self.memory.scan(table)).unwrap();
        assert!(
            dynamo.len() == memory.len()
                && dynamo.iter().zip(&memory).all(|(a, b)| same_item(a, b)),
            "{}: {table:?} differs after {after}\n  DynamoDB: {dynamo:?}\n  memory:   {memory:?}",
            self.label
        );
    }

    fn lease(&self, key: &str) -> Option<Lease> {
        let item = self.memory.item(Table::Lease, key)?;
        // Raw writes can leave a row that is not a readable lease: write as if it were new.
        match decode(&item) {
            Ok(Decoded::Lease(lease)) => Some(lease),
            _ => None,
        }
    }
}

async fn pair(moto: &Moto, application: &str) -> Pair {
    Pair {
        dynamo: store(moto, application).await,
        memory: MemoryStore::new(),
        label: application.to_owned(),
    }
}

#[tokio::test]
#[ignore = "needs moto_server (scripts/e2e.sh install); run with --ignored"]
async fn tables_are_created_as_java_creates_them() {
    let moto = Moto::start();
    let client = moto.client();
    let names = TableNames::for_application("app");
    tables::create_tables(&client, &names, QUICK).await.unwrap();
    // Idempotent: a second run finds everything in place.
    tables::create_tables(&client, &names, QUICK).await.unwrap();

    let listed = client.list_tables().send().await.unwrap();
    let listed: BTreeSet<&str> = listed.table_names().iter().map(String::as_str).collect();
    assert_eq!(
        listed,
        BTreeSet::from(["app", "app-CoordinatorState", "app-WorkerMetricStats"])
    );
    for (name, key) in [
        ("app", "leaseKey"),
        ("app-CoordinatorState", "key"),
        ("app-WorkerMetricStats", "wid"),
    ] {
        let table = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .unwrap()
            .table
            .unwrap();
        assert_eq!(table.table_status(), Some(&TableStatus::Active), "{name}");
        let schema = table.key_schema();
        assert_eq!(schema.len(), 1, "{name}");
        assert_eq!(schema[0].attribute_name(), key);
        assert_eq!(schema[0].key_type(), &KeyType::Hash);
        assert!(table.attribute_definitions().iter().any(|d| d.attribute_name() == key
            && d.attribute_type() == &ScalarAttributeType::S));
        assert_eq!(
            table.billing_mode_summary().and_then(|b| b.billing_mode()),
            Some(&BillingMode::PayPerRequest),
            "{name}"
        );
        let indexes = table.global_secondary_indexes();
        if name == "app" {
            assert_eq!(indexes.len(), 1);
            let index = &indexes[0];
            assert_eq!(index.index_name(), Some("LeaseOwnerToLeaseKeyIndex"));
            let keys: Vec<(&str, &KeyType)> = index
                .key_schema()
                .iter()
                .map(|k| (k.attribute_name(), k.key_type()))
                .collect();
            assert_eq!(
                keys,
                [
                    ("leaseOwner", &KeyType::Hash),
                    ("leaseKey", &KeyType::Range)
                ]
            );
            assert_eq!(
                index.projection().and_then(|p| p.projection_type()),
                Some(&ProjectionType::KeysOnly)
            );
            assert_eq!(index.index_status(), Some(&IndexStatus::Active));
        } else {
            assert!(indexes.is_empty(), "{name}");
        }
    }

    // A lease table without the index (made by hand here) gets it, and keeps its rows.
    client
        .create_table()
        .table_name("bare")
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("leaseKey")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("leaseKey")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
    let bare = DynamoStore::new(
        client.clone(),
        TableNames::for_application("x").with_lease_table("bare"),
    );
    let mut lease = Lease::new("shardId-0", E::trim_horizon());
    assert!(bare.create_if_not_exists(&lease).await.unwrap());
    tables::create_lease_table(&client, "bare", QUICK)
        .await
        .unwrap();
    let table = client
        .describe_table()
        .table_name("bare")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert_eq!(
        table.global_secondary_indexes()[0].index_name(),
        Some("LeaseOwnerToLeaseKeyIndex")
    );
    bare.update(Table::Lease, &ops::take(&lease, "w"))
        .await
        .unwrap();
    lease.lease_counter = 1;
    assert_eq!(bare.query_owner("w").await.unwrap(), ["shardId-0"]);

    // The migration state: written once, conditioned on absence, with Java's codec.
    let app = DynamoStore::new(client, names);
    assert!(
        tables::create_migration_state_3x(&app, "worker-a", 1_700_000_000_000)
            .await
            .unwrap()
    );
    assert!(
        !tables::create_migration_state_3x(&app, "worker-b", 1_700_000_000_001)
            .await
            .unwrap()
    );
    let item = app
        .get(Table::CoordinatorState, "Migration3.0", true)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        MigrationState::decode(&item).unwrap(),
        MigrationState::new(ClientVersion::V3x, "worker-a", 1_700_000_000_000)
    );
}

fn owned(key: &str, owner: Option<&str>, counter: u64) -> Lease {
    let mut lease = Lease::new(key, E::new("100", 0));
    lease.lease_owner = owner.map(str::to_owned);
    lease.lease_counter = counter;
    lease
}

/// C3: every lease operation of `ops`, first with a stale view (refused, the current item
/// returned), then with the right one (landed); both stores agree at every step.
#[tokio::test]
#[ignore = "needs moto_server (scripts/e2e.sh install); run with --ignored"]
async fn every_lease_operation_is_fenced() {
    use Kind::*;
    let moto = Moto::start();
    let both = pair(&moto, "fenced").await;
    let key = "shardId-000000000000";
    let fresh = || both.lease(key).unwrap();

    assert_eq!(
        both.update(
            Table::Lease,
            &ops::create_if_not_exists(&owned(key, None, 0))
        )
        .await,
        Landed
    );
    assert_eq!(
        both.update(
            Table::Lease,
            &ops::create_if_not_exists(&owned(key, Some("x"), 9))
        )
        .await,
        ConditionFailed
    );
    // take: fenced by the counter.
    assert_eq!(
        both.update(Table::Lease, &ops::take(&owned(key, None, 1), "a"))
            .await,
        ConditionFailed
    );
    assert_eq!(
        both.update(Table::Lease, &ops::take(&fresh(), "a")).await,
        Landed
    );
    // renew: the counter, and no pending handoff.
    assert_eq!(
        both.update(Table::Lease, &ops::renew(&owned(key, Some("a"), 0)))
            .await,
        ConditionFailed
    );
    let mut renewing = fresh();
    renewing.throughput_kbps = Some(12.5);
    assert_eq!(
        both.update(Table::Lease, &ops::renew(&renewing)).await,
        Landed
    );
    // checkpoint: the counter only.
    let checkpoint = E::new(
        "49590338271490256608559692538361571095921575989136588898",
        3,
    );
    assert_eq!(
        both.update(
            Table::Lease,
            &ops::checkpoint(&owned(key, Some("a"), 1), &checkpoint)
        )
        .await,
        ConditionFailed
    );
    assert_eq!(
        both.update(Table::Lease, &ops::checkpoint(&fresh(), &checkpoint))
            .await,
        Landed
    );
    assert_eq!(fresh().checkpoint, checkpoint);
    // assign: the owners.
    assert_eq!(
        both.update(Table::Lease, &ops::assign(&owned(key, Some("x"), 3), "b"))
            .await,
        ConditionFailed
    );
    assert_eq!(
        both.update(Table::Lease, &ops::assign(&fresh(), "b")).await,
        Landed
    );
    // Graceful handoff: owner b, no checkpoint owner; a second one is refused.
    let handoff = ops::initiate_graceful_handoff(&owned(key, Some("a"), 4), "c").unwrap();
    assert_eq!(both.update(Table::Lease, &handoff).await, ConditionFailed);
    let handing = fresh();
    let handoff = ops::initiate_graceful_handoff(&handing, "c").unwrap();
    assert_eq!(both.update(Table::Lease, &handoff).await, Landed);
    assert_eq!(both.update(Table::Lease, &handoff).await, ConditionFailed);
    // b's plain renewal fails during the handoff, one that knows of it lands.
    assert_eq!(
        both.update(Table::Lease, &ops::renew(&handing)).await,
        ConditionFailed
    );
    assert_eq!(
        both.update(Table::Lease, &ops::renew(&fresh())).await,
        Landed
    );
    // The transfer (assign by the old owner), then an eviction.
    assert_eq!(
        both.update(Table::Lease, &ops::assign(&fresh(), "c")).await,
        Landed
    );
    assert_eq!(fresh().checkpoint_owner, None);
    assert_eq!(
        both.update(Table::Lease, &ops::evict(&owned(key, Some("b"), 0)))
            .await,
        ConditionFailed
    );
    assert_eq!(
        both.update(Table::Lease, &ops::evict(&fresh())).await,
        Landed
    );
    assert_eq!(fresh().lease_owner, None);
    // Meta updates need the lease; a delete does not.
    let mut meta = fresh();
    meta.child_shard_ids = [
        "shardId-000000000001".to_string(),
        "shardId-000000000002".to_string(),
    ]
    .into();
    meta.hash_key_range = Some((0, u128::MAX));
    assert_eq!(
        both.update(
            Table::Lease,
            &ops::update_meta(&meta, Meta::ChildShards).unwrap()
        )
        .await,
        Landed
    );
    assert_eq!(
        both.update(
            Table::Lease,
            &ops::update_meta(&meta, Meta::HashKeyRange).unwrap()
        )
        .await,
        Landed
    );
    assert_eq!(fresh().hash_key_range, Some((0, u128::MAX)));
    assert_eq!(fresh().lease_counter, 7, "{:?}", fresh());
    assert_eq!(both.delete(Table::Lease, &ops::delete(&meta)).await, Landed);
    let gone = owned(key, None, 0);
    assert_eq!(
        both.update(
            Table::Lease,
            &ops::update_meta(&meta, Meta::ChildShards).unwrap()
        )
        .await,
        ConditionFailed
    );
    assert_eq!(
        both.update(Table::Lease, &ops::evict(&gone)).await,
        ConditionFailed
    );
    assert_eq!(both.delete(Table::Lease, &ops::delete(&gone)).await, Landed);
    // Invalid for both: an update of the key.
    let bad = Write {
        key: key.into(),
        condition: Condition::default(),
        update: kcl_lease::Update::Actions(vec![kcl_lease::Action::Put(
            "leaseKey".into(),
            V::s("y"),
        )]),
    };
    assert_eq!(both.update(Table::Lease, &bad).await, Invalid);
}

#[tokio::test]
#[ignore = "needs moto_server (scripts/e2e.sh install); run with --ignored"]
async fn owners_through_the_index_and_scans_without_foreign_rows() {
    let moto = Moto::start();
    let store = store(&moto, "index").await;
    for i in 0..30 {
        let lease = Lease::new(format!("shardId-{i:012}"), E::trim_horizon());
        assert!(store.create_if_not_exists(&lease).await.unwrap());
        let owner = ["a", "b", "c"][i % 3];
        if i % 5 != 4 {
            store
                .update(Table::Lease, &ops::take(&lease, owner))
                .await
                .unwrap();
        }
    }
    let a = store.query_owner("a").await.unwrap();
    let expected: Vec<String> = (0..30)
        .filter(|i| i % 3 == 0 && i % 5 != 4)
        .map(|i| format!("shardId-{i:012}"))
        .collect();
    assert_eq!(a, expected);
    assert!(store.query_owner("nobody").await.unwrap().is_empty());

    // KCL 3.5 single-table rows: an entityType other than LEASE is not a lease.
    for (key, entity) in [("leader", "LEADER"), ("metrics-w1", "WORKER_METRIC_STATS")] {
        let write = Write {
            key: key.into(),
            condition: Condition::default(),
            update: kcl_lease::Update::PutItem(Item::from([
                ("entityType".to_string(), V::s(entity)),
                ("leaseOwner".to_string(), V::s("a")),
            ])),
        };
        store.update(Table::Lease, &write).await.unwrap();
    }
    let mut labelled = kcl_lease::encode(&Lease::new("shardId-labelled", E::trim_horizon()));
    labelled.insert("entityType".into(), V::s("LEASE"));
    store
        .update(
            Table::Lease,
            &Write {
                key: "shardId-labelled".into(),
                condition: Condition::default(),
                update: kcl_lease::Update::PutItem(labelled),
            },
        )
        .await
        .unwrap();
    let scanned = store.scan(Table::Lease).await.unwrap();
    assert_eq!(scanned.len(), 31);
    assert!(scanned.iter().all(|item| {
        item.get("entityType")
            .is_none_or(|e| e.as_s() == Some("LEASE"))
    }));
    // The index itself holds every row with an owner; query_owner reports them (callers re-read
    // and decode each lease).
    assert_eq!(
        store.query_owner("a").await.unwrap().len(),
        expected.len() + 2
    );
    assert!(
        store
            .get(Table::Lease, "leader", false)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
#[ignore = "needs moto_server (scripts/e2e.sh install); run with --ignored"]
async fn the_lock_item_and_worker_metrics() {
    let moto = Moto::start();
    let both = pair(&moto, "coordinator").await;
    use Kind::*;
    let a = LockItem::new(LEADER_KEY, "worker-a", "rvn-1", 120_000);
    let b = LockItem::new(LEADER_KEY, "worker-b", "rvn-2", 120_000);
    let table = Table::CoordinatorState;
    assert_eq!(
        both.update(table, &coordinator::acquire_unheld(&a)).await,
        Landed
    );
    assert_eq!(
        both.update(table, &coordinator::acquire_unheld(&b)).await,
        ConditionFailed
    );
    assert_eq!(
        both.update(table, &coordinator::heartbeat(&b, "rvn-x"))
            .await,
        ConditionFailed
    );
    assert_eq!(
        both.update(table, &coordinator::heartbeat(&a, "rvn-3"))
            .await,
        Landed
    );
    let mut held = a.clone();
    held.record_version_number = "rvn-3".into();
    // b saw rvn-1 for a whole lease duration: too late, the heartbeat moved it.
    assert_eq!(
        both.update(table, &coordinator::steal_expired(&a, &b))
            .await,
        ConditionFailed
    );
    assert_eq!(
        both.update(table, &coordinator::acquire_released(&held, &b))
            .await,
        ConditionFailed
    );
    assert_eq!(
        both.update(table, &coordinator::mark_released(&held)).await,
        Landed
    );
    let mut released = held.clone();
    released.is_released = true;
    assert_eq!(
        both.update(table, &coordinator::acquire_released(&released, &b))
            .await,
        Landed
    );
    assert_eq!(
        both.delete(table, &coordinator::release(&held)).await,
        ConditionFailed
    );
    assert_eq!(both.delete(table, &coordinator::release(&b)).await, Landed);
    assert_eq!(
        both.update(table, &coordinator::steal_expired(&b, &a))
            .await,
        ConditionFailed
    );

    let table = Table::WorkerMetrics;
    let mut row = WorkerMetricStats::default_metric("w1", 1_700_000_000);
    assert_eq!(both.update(table, &coordinator::report(&row)).await, Landed);
    row.metric_stats = Some([("CPU".to_string(), vec![12.5, -1.0, 40.0])].into());
    row.operating_range = Some([("CPU".to_string(), vec![100])].into());
    row.last_update_time_s += 30;
    assert_eq!(both.update(table, &coordinator::report(&row)).await, Landed);
    let stored = both.dynamo.get(table, "w1", true).await.unwrap().unwrap();
    assert_eq!(WorkerMetricStats::decode(&stored).unwrap(), row);
    let mut stale = row.clone();
    stale.last_update_time_s -= 30;
    assert_eq!(
        both.delete(table, &coordinator::delete_stale(&stale)).await,
        ConditionFailed
    );
    assert_eq!(
        both.delete(table, &coordinator::delete_stale(&row)).await,
        Landed
    );
    assert_eq!(
        both.delete(table, &coordinator::delete_stale(&row)).await,
        ConditionFailed
    );
}

/// splitmix64: a seeded, reproducible sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const KEYS: [&str; 3] = ["shardId-0", "shardId-1", "shardId-2"];
const WORKERS: [&str; 3] = ["w0", "w1", "w2"];

fn maybe_worker(rng: &mut Rng) -> Option<String> {
    rng.chance(70).then(|| rng.pick(&WORKERS).to_string())
}

fn shard_set(rng: &mut Rng) -> std::collections::BTreeSet<String> {
    (0..rng.below(3))
        .map(|i| format!("shardId-{}", 10 + i + rng.below(5)))
        .collect()
}

/// The writer's view of a lease: what memory holds (or a new lease), often made stale.
fn view(rng: &mut Rng, both: &Pair) -> Lease {
    let key = *rng.pick(&KEYS);
    let mut lease = both
        .lease(key)
        .unwrap_or_else(|| Lease::new(key, E::trim_horizon()));
    if rng.chance(30) {
        lease.lease_counter = lease
            .lease_counter
            .saturating_add(rng.below(3))
            .saturating_sub(rng.below(3));
    }
    if rng.chance(25) {
        lease.lease_owner = maybe_worker(rng);
    }
    if rng.chance(20) {
        lease.checkpoint_owner = maybe_worker(rng).filter(|_| rng.chance(50));
    }
    lease.throughput_kbps = rng.chance(50).then(|| rng.below(1000) as f64 / 4.0);
    if rng.chance(30) {
        lease.child_shard_ids = shard_set(rng);
    }
    if rng.chance(20) {
        let start = u128::from(rng.next());
        lease.hash_key_range = Some((start, start + u128::from(rng.next())));
    }
    lease
}

fn lock_view(rng: &mut Rng, both: &Pair) -> LockItem {
    let mut lock = both
        .memory
        .item(Table::CoordinatorState, LEADER_KEY)
        .and_then(|item| LockItem::decode(&item).ok())
        .unwrap_or_else(|| LockItem::new(LEADER_KEY, "w0", "rvn-0", 120_000));
    if rng.chance(30) {
        lock.record_version_number = format!("rvn-{}", rng.below(4));
    }
    if rng.chance(30) {
        lock.owner_name = rng.pick(&WORKERS).to_string();
    }
    lock
}

fn checkpoint(rng: &mut Rng) -> E {
    match rng.below(5) {
        0 => E::trim_horizon(),
        1 => E::shard_end(),
        _ => E::new(format!("4959{}", rng.next()), rng.below(3) as i64),
    }
}

/// A small value of any kind, sometimes one DynamoDB refuses (an empty set).
fn raw_value(rng: &mut Rng) -> V {
    match rng.below(9) {
        0 | 1 => V::s(rng.pick(&WORKERS).to_string()),
        2 | 3 => V::n(rng.below(10)),
        4 => V::Ss(vec!["a".into(), "b".into()]),
        5 => V::Ns(vec!["1".into(), "20".into()]),
        6 => V::L(vec![V::n(1), V::Bool(true), V::Null]),
        7 => V::M([("x".to_string(), V::B(vec![1, 2]))].into()),
        _ => V::Ss(Vec::new()),
    }
}

/// Any condition and any actions on lease-table attributes (the key among them, rarely):
/// writes the lease operations never make, to compare the rule book on. Each attribute keeps
/// its type (strings, numbers, anything for `extra`), except in a write whose only action adds
/// to a string: moto 5.2.5 applies an update's earlier actions when a later `ADD` fails (DynamoDB
/// changes nothing), so a failing `ADD` comes alone.
fn raw_write(rng: &mut Rng) -> Write {
    const STRINGS: [&str; 3] = ["leaseOwner", "checkpointOwner", "checkpoint"];
    const NUMBERS: [&str; 2] = ["leaseCounter", "ownerSwitchesSinceCheckpoint"];
    let key = rng.pick(&KEYS).to_string();
    let string = |rng: &mut Rng| {
        if rng.chance(10) {
            V::s("")
        } else {
            V::s(rng.pick(&WORKERS).to_string())
        }
    };
    let mut condition = Condition::default();
    for _ in 0..rng.below(3) {
        let (name, value) = match rng.below(3) {
            0 => (rng.pick(&STRINGS).to_string(), string(rng)),
            1 => (rng.pick(&NUMBERS).to_string(), V::n(rng.below(10))),
            _ => ("extra".to_string(), raw_value(rng)),
        };
        condition = match rng.below(3) {
            0 => condition.equals(&name, value),
            1 => condition.absent(&name),
            _ => condition.exists(&name),
        };
    }
    if rng.chance(10) {
        let name = rng.pick(&STRINGS).to_string();
        return Write {
            key,
            condition,
            update: kcl_lease::Update::Actions(vec![kcl_lease::Action::Add(name, 1)]),
        };
    }
    let actions = (0..1 + rng.below(3))
        .map(|_| {
            use kcl_lease::Action::*;
            match rng.below(7) {
                0 if rng.chance(10) => Put("leaseOwner".to_string(), V::n(rng.below(10))),
                0 => Put(rng.pick(&STRINGS).to_string(), string(rng)),
                1 => Put(rng.pick(&NUMBERS).to_string(), V::n(rng.below(10))),
                2 => Put("extra".to_string(), raw_value(rng)),
                3 => Add(rng.pick(&NUMBERS).to_string(), rng.below(5) as i64 - 2),
                4 if rng.chance(10) => Remove("leaseKey".to_string()),
                4 => Remove("extra".to_string()),
                _ => Remove(rng.pick(&STRINGS).to_string()),
            }
        })
        .collect();
    Write {
        key,
        condition,
        update: kcl_lease::Update::Actions(actions),
    }
}

/// One random step against both stores.
async fn step(rng: &mut Rng, both: &Pair) -> Kind {
    let lease = view(rng, both);
    let worker = rng.pick(&WORKERS).to_string();
    match rng.below(18) {
        16 | 17 => {
            let write = raw_write(rng);
            both.update(Table::Lease, &write).await
        }
        0 | 1 => {
            let mut new = Lease::new(&lease.lease_key, checkpoint(rng));
            new.parent_shard_ids = shard_set(rng);
            new.hash_key_range = lease.hash_key_range;
            both.update(Table::Lease, &ops::create_if_not_exists(&new))
                .await
        }
        2 | 3 => both.update(Table::Lease, &ops::renew(&lease)).await,
        4 => both.update(Table::Lease, &ops::take(&lease, &worker)).await,
        5 | 6 => {
            both.update(Table::Lease, &ops::assign(&lease, &worker))
                .await
        }
        7 => match ops::initiate_graceful_handoff(&lease, &worker) {
            Some(write) => both.update(Table::Lease, &write).await,
            None => both.update(Table::Lease, &ops::evict(&lease)).await,
        },
        8 => both.update(Table::Lease, &ops::evict(&lease)).await,
        9 | 10 => {
            let value = checkpoint(rng);
            both.update(Table::Lease, &ops::checkpoint(&lease, &value))
                .await
        }
        11 => {
            let field = if rng.chance(50) {
                Meta::ChildShards
            } else {
                Meta::HashKeyRange
            };
            // With nothing to write there is no write (moto 5.2.5 fails an UpdateItem
            // without an UpdateExpression): a renewal instead.
            match ops::update_meta(&lease, field) {
                Some(write) => both.update(Table::Lease, &write).await,
                None => both.update(Table::Lease, &ops::renew(&lease)).await,
            }
        }
        12 => both.delete(Table::Lease, &ops::delete(&lease)).await,
        13 => {
            let observed = lock_view(rng, both);
            let mut next =
                LockItem::new(LEADER_KEY, worker, format!("rvn-{}", rng.below(4)), 120_000);
            next.data = rng.chance(30).then(|| vec![rng.below(256) as u8; 3]);
            let table = Table::CoordinatorState;
            match rng.below(6) {
                0 => {
                    both.update(table, &coordinator::acquire_unheld(&next))
                        .await
                }
                1 => {
                    both.update(table, &coordinator::acquire_released(&observed, &next))
                        .await
                }
                2 => {
                    both.update(table, &coordinator::steal_expired(&observed, &next))
                        .await
                }
                3 => {
                    let rvn = format!("rvn-{}", rng.below(4));
                    both.update(table, &coordinator::heartbeat(&observed, &rvn))
                        .await
                }
                4 => {
                    both.update(table, &coordinator::mark_released(&observed))
                        .await
                }
                _ => both.delete(table, &coordinator::release(&observed)).await,
            }
        }
        14 => {
            let state = MigrationState::new(
                ClientVersion::V3x,
                worker,
                1_700_000_000_000 + rng.below(1000),
            );
            both.update(
                Table::CoordinatorState,
                &coordinator::create_migration_state(&state),
            )
            .await
        }
        _ => {
            let mut row = WorkerMetricStats::default_metric(worker, 1_700_000_000 + rng.below(3));
            if rng.chance(50) {
                row.metric_stats =
                    Some([("CPU".to_string(), vec![rng.below(100) as f64, -1.0])].into());
                row.operating_range = Some([("CPU".to_string(), vec![100])].into());
            }
            if rng.chance(30) {
                both.delete(Table::WorkerMetrics, &coordinator::delete_stale(&row))
                    .await
            } else {
                both.update(Table::WorkerMetrics, &coordinator::report(&row))
                    .await
            }
        }
    }
}

/// Sequences and steps of the differential test.
const SEQUENCES: u64 = 12;
const STEPS: usize = 80;

/// The key test: random sequences of every write in `ops` and `coordinator` (with views that
/// are often stale) to DynamoDB and to memory; after every step the results (the item after,
/// or the item a failed condition saw) and the whole table must be the same.
#[tokio::test]
#[ignore = "needs moto_server (scripts/e2e.sh install); run with --ignored"]
async fn dynamo_and_memory_agree_on_random_writes() {
    let moto = Moto::start();
    let seeds: Vec<u64> = match std::env::var("KCL_DIFF_SEED") {
        Ok(seed) => vec![seed.parse().expect("KCL_DIFF_SEED is a number")],
        Err(_) => {
            let sequences = std::env::var("KCL_DIFF_SEQUENCES")
                .map(|n| n.parse().expect("KCL_DIFF_SEQUENCES is a number"))
                .unwrap_or(SEQUENCES);
            (1..=sequences).collect()
        }
    };
    let mut counts = [0usize; 3];
    for seed in seeds {
        let mut both = pair(&moto, &format!("diff-{seed}")).await;
        let mut rng = Rng(seed);
        for index in 0..STEPS {
            both.label = format!("KCL_DIFF_SEED={seed}, step {index}");
            let kind = step(&mut rng, &both).await;
            counts[kind as usize] += 1;
        }
        for key in KEYS {
            let dynamo = both.dynamo.get(Table::Lease, key, true).await.unwrap();
            assert!(same_items(
                dynamo.as_ref(),
                both.memory.item(Table::Lease, key).as_ref()
            ));
        }
        for owner in WORKERS {
            let memory = block_on(both.memory.query_owner(owner)).unwrap();
            assert_eq!(
                both.dynamo.query_owner(owner).await.unwrap(),
                memory,
                "seed {seed}"
            );
        }
    }
    let [landed, refused, invalid] = counts;
    println!(
        "differential: {landed} landed, {refused} refused by their condition, {invalid} invalid"
    );
    // The generator must exercise both outcomes a lot, or the comparison proves little.
    let total = landed + refused + invalid;
    assert!(landed * 4 >= total && refused * 4 >= total, "{counts:?}");
}
