//! Reads Kinesis refuses (`AccessDeniedException`, a KMS key not usable: errors asking again
//! should not cure) never give a shard up: the fetcher logs and tries again with backoff, as
//! the KCL's `PrefetchRecordsPublisher` polls on after an `SdkException`, and the worker keeps
//! running. Faults are injected into `MemoryKinesis`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kcl_lease::{Lease, LeaseStore, MemoryStore, Table, ops};
use kcl_native::config::{InitialPosition, NativeConfig};
use kcl_native::coordinator::Role;
use kcl_native::testing::{MemoryKinesis, ReadFault};
use kcl_native::{
    Fetched, FetcherConfig, ShardFetcher, ShardInfo, Supervisor, coordinator_config, processors,
};
use kcl_producer::api::{KinesisApi, Record, StreamRef};
use kcl_protocol::ExtendedSequenceNumber as E;

const STREAM: &str = "words";

async fn put(kinesis: &MemoryKinesis, prefix: &str, n: usize) {
    let records: Vec<Record> = (0..n)
        .map(|i| Record::new(format!("k{i}"), format!("{prefix}-{i}")))
        .collect();
    kinesis
        .fake()
        .put_records(&StreamRef::name(STREAM), &records)
        .await
        .unwrap();
}

fn refused(n: usize) -> Vec<ReadFault> {
    vec![ReadFault::Refused("AccessDeniedException".into()); n]
}

/// Twelve refusals in a row between two batches: every record still arrives, once, in order.
#[tokio::test(start_paused = true)]
async fn refused_reads_are_tried_again_and_every_record_arrives_once_in_order() {
    let kinesis = MemoryKinesis::new(STREAM, 1);
    put(&kinesis, "a", 5).await;
    let shard = kinesis.fake().shards()[0].clone();
    let config = FetcherConfig {
        max_records: 3,
        idle_time_between_reads: Duration::from_millis(200),
        ..FetcherConfig::default()
    };
    let mut fetcher = ShardFetcher::new(
        kinesis.clone(),
        StreamRef::name(STREAM),
        &shard.shard_id,
        kcl_kpl::HashKeyRange::new(shard.starting_hash_key, shard.ending_hash_key),
        &E::trim_horizon(),
        config,
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut take = |fetched: Fetched| match fetched {
        Fetched::Records(batch) => {
            for record in batch.records {
                seen.push(String::from_utf8(record.data().to_vec()).unwrap());
            }
        }
        Fetched::ShardEnd { .. } => panic!("the shard is open"),
    };
    take(fetcher.next().await.expect("first batch"));
    kinesis.inject(refused(12));
    take(fetcher.next().await.expect("a refusal is tried again"));
    take(fetcher.next().await.expect("then the rest"));
    let expected: Vec<String> = (0..5).map(|i| format!("a-{i}")).collect();
    assert_eq!(seen, expected);
    assert!(fetcher.stats().transient >= 12, "{:?}", fetcher.stats());
}

/// A worker whose shard is refused for a while keeps running, then handles every record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_keeps_running_through_refused_reads_of_a_shard() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_max_level(tracing::Level::INFO)
        .try_init();
    let kinesis = MemoryKinesis::new(STREAM, 1);
    let store = Arc::new(MemoryStore::new());
    let shard = kinesis.fake().shards()[0].clone();
    let mut lease = Lease::new(&shard.shard_id, E::trim_horizon());
    lease.hash_key_range = Some((shard.starting_hash_key, shard.ending_hash_key));
    store.create_if_not_exists(&lease).await.unwrap();
    store
        .update(Table::Lease, &ops::assign(&lease, "native-1"))
        .await
        .unwrap();
    // Refused from the first read on.
    kinesis.inject(refused(4));
    put(&kinesis, "a", 20).await;

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
    let handled = Arc::new(Mutex::new(Vec::new()));
    let sink = handled.clone();
    let factory = processors(move |_: &ShardInfo| {
        let sink = sink.clone();
        kcl_core::from_fn(move |batch, _| {
            for record in batch {
                sink.lock().unwrap().push(record.data().to_vec());
            }
            Ok(())
        })
    });
    let supervisor = Supervisor::new(store.clone(), kinesis.clone(), config, factory)
        .coordinator_settings(coordinator);
    let stopper = supervisor.stopper();
    let run = tokio::spawn(supervisor.run());

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while handled.lock().unwrap().len() < 20 {
        assert!(!run.is_finished(), "the run ended: {:?}", run.await);
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out; handled {}",
            handled.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        kinesis.stats().get_records_calls >= 5,
        "the refusals were met: {:?}",
        kinesis.stats()
    );
    // Refused again mid-run: still running afterwards.
    kinesis.inject(refused(3));
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(!run.is_finished(), "the run ended: {:?}", run.await);
    put(&kinesis, "b", 5).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while handled.lock().unwrap().len() < 25 {
        assert!(!run.is_finished(), "the run ended: {:?}", run.await);
        assert!(tokio::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stopper.stop();
    run.await.unwrap().unwrap();
    assert_eq!(handled.lock().unwrap().len(), 25, "every record once");
}
