//! The worker's metrics under the Java KCL's names and dimensions, through the sink trait: a
//! `Supervisor` over a `MemoryStore` and a `MemoryKinesis` with a sink that keeps every sample.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kcl_lease::{Lease, LeaseStore, MemoryStore, Table, ops};
use kcl_native::config::{InitialPosition, NativeConfig};
use kcl_native::coordinator::Role;
use kcl_native::metrics::{MetricsSink, Sample};
use kcl_native::testing::MemoryKinesis;
use kcl_native::{ShardInfo, Supervisor, coordinator_config, processors};
use kcl_producer::api::{KinesisApi, Record, StreamRef};
use kcl_protocol::ExtendedSequenceNumber as E;

const STREAM: &str = "words";

/// One sample as the sink saw it: (name, unit, operation, shard, value).
type Seen = (String, String, Option<String>, Option<String>, f64);

#[derive(Clone, Default)]
struct Keep(Arc<Mutex<Vec<Seen>>>);

impl MetricsSink for Keep {
    fn record(&self, sample: &Sample<'_>) {
        assert_eq!(sample.stream, STREAM);
        self.0.lock().unwrap().push((
            sample.metric.name().to_owned(),
            sample.metric.unit().name().to_owned(),
            sample.operation.map(str::to_owned),
            sample.shard_id.map(str::to_owned),
            sample.value,
        ));
    }
}

impl Keep {
    fn named(&self, name: &str) -> Vec<Seen> {
        let all = self.0.lock().unwrap();
        all.iter().filter(|s| s.0 == name).cloned().collect()
    }

    /// The sum of `name` per shard.
    fn per_shard(&self, name: &str) -> BTreeMap<String, f64> {
        let mut sums = BTreeMap::new();
        for (_, _, _, shard, value) in self.named(name) {
            *sums.entry(shard.expect("a shard dimension")).or_default() += value;
        }
        sums
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_task_and_renewal_metrics_carry_the_kcl_names_and_dimensions() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing::Level::INFO)
        .try_init();
    let kinesis = MemoryKinesis::new(STREAM, 2);
    let store = Arc::new(MemoryStore::new());
    let records: Vec<Record> = (0..120)
        .map(|i| Record::new(format!("key-{i}"), format!("record-{i:03}")))
        .collect();
    kinesis
        .fake()
        .put_records(&StreamRef::name(STREAM), &records)
        .await
        .unwrap();
    for shard in kinesis.fake().shards() {
        let mut lease = Lease::new(&shard.shard_id, E::trim_horizon());
        lease.hash_key_range = Some((shard.starting_hash_key, shard.ending_hash_key));
        store.create_if_not_exists(&lease).await.unwrap();
        store
            .update(Table::Lease, &ops::assign(&lease, "native-1"))
            .await
            .unwrap();
    }
    let config = NativeConfig::builder("words-app", STREAM)
        .worker_id("native-1")
        .failover_time(Duration::from_secs(3))
        .idle_time_between_reads(Duration::from_millis(200))
        .shutdown_grace(Duration::from_secs(5))
        .initial_position(InitialPosition::TrimHorizon)
        .build()
        .unwrap();
    let mut coordinator = coordinator_config(&config);
    coordinator.role = Role::Follower;
    let handled = Arc::new(Mutex::new(0usize));
    let count = handled.clone();
    let factory = processors(move |_: &ShardInfo| {
        let count = count.clone();
        kcl_core::from_fn(move |batch, _| {
            *count.lock().unwrap() += batch.len();
            Ok(())
        })
    });
    let sink = Keep::default();
    let supervisor = Supervisor::new(store.clone(), kinesis.clone(), config, factory)
        .coordinator_settings(coordinator)
        .metrics(sink.clone());
    let stopper = supervisor.stopper();
    let run = tokio::spawn(supervisor.run());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while *handled.lock().unwrap() < 120 || sink.named("CurrentLeases").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A renewal round after every record was handled.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    stopper.stop();
    run.await.unwrap().unwrap();

    // RecordsProcessed and DataBytesProcessed add up, per shard, to what each shard holds.
    let mut expected_records = BTreeMap::new();
    let mut expected_bytes = BTreeMap::new();
    for shard in kinesis.fake().shards() {
        let stored = kinesis.fake().records(&shard.shard_id);
        expected_records.insert(shard.shard_id.clone(), stored.len() as f64);
        let bytes: usize = stored.iter().map(|r| r.data.len()).sum();
        expected_bytes.insert(shard.shard_id.clone(), bytes as f64);
    }
    assert_eq!(sink.per_shard("RecordsProcessed"), expected_records);
    assert_eq!(sink.per_shard("DataBytesProcessed"), expected_bytes);
    for name in [
        "RecordsProcessed",
        "DataBytesProcessed",
        "MillisBehindLatest",
        "RecordProcessor.processRecords.Time",
        "Time",
        "Success",
    ] {
        let samples = sink.named(name);
        assert!(!samples.is_empty(), "no {name}");
        for (_, unit, operation, shard, _) in &samples {
            assert_eq!(operation.as_deref(), Some("ProcessTask"), "{name}");
            assert!(shard.is_some(), "{name} without ShardId");
            let wanted = match name {
                "DataBytesProcessed" => "Bytes",
                "RecordsProcessed" | "Success" => "Count",
                _ => "Milliseconds",
            };
            assert_eq!(unit, wanted, "{name}");
        }
    }
    assert!(sink.named("Success").iter().all(|s| s.4 == 1.0));
    // Every shard caught up: its last lag sample is 0.
    for shard in expected_records.keys() {
        let last = sink
            .named("MillisBehindLatest")
            .into_iter()
            .rfind(|s| s.3.as_deref() == Some(shard))
            .expect("a lag sample");
        assert_eq!(last.4, 0.0, "{shard}");
    }
    let current = sink.named("CurrentLeases");
    assert!(
        current
            .iter()
            .all(|s| s.2.as_deref() == Some("RenewAllLeases") && s.3.is_none())
    );
    assert_eq!(current.iter().map(|s| s.4).fold(0.0, f64::max), 2.0);
    assert!(sink.named("LostLeases").iter().all(|s| s.4 == 0.0));
}
