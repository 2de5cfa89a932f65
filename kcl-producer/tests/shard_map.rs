//! Shard-map aggregation, on tokio's paused clock: aggregates of many keys, and after splits
//! (a stale map) no record is reported delivered inside an aggregate the KCL would drop.

use std::collections::HashMap;
use std::time::Duration;

use kcl_producer::api::{Distribution, StreamRef};
use kcl_producer::metrics::{MemorySink, Metric};
use kcl_producer::testing::{FakeKinesis, Faults};
use kcl_producer::{Aggregation, BuildError, Delivery, Producer, Record};

fn record(n: u64) -> Record {
    // 1,000 keys spread over every shard.
    Record::new(format!("user-{}", n * 7919 % 1_000), format!("{n:08}"))
}

/// What a KCL consumer reads from every shard, by (shard, sequence number, sub-sequence
/// number), as `kcl_kpl::kcl_view` predicts the KCL 3.1.3 exactly.
fn kcl_reads(kinesis: &FakeKinesis) -> HashMap<(String, String, u64), Vec<u8>> {
    let mut seen = HashMap::new();
    for shard in kinesis.shards() {
        let range = kcl_kpl::HashKeyRange::new(shard.starting_hash_key, shard.ending_hash_key);
        for stored in kinesis.records(&shard.shard_id) {
            let view = kcl_kpl::kcl_view(&stored.data, &stored.partition_key, range);
            for user in view.records {
                seen.insert(
                    (
                        stored.shard_id.clone(),
                        stored.sequence_number.clone(),
                        user.sub_sequence_number,
                    ),
                    user.data.clone(),
                );
            }
        }
    }
    seen
}

fn assert_read_where_delivered(kinesis: &FakeKinesis, delivered: &[(Record, Delivery)]) {
    let seen = kcl_reads(kinesis);
    let missing: Vec<&Delivery> = delivered
        .iter()
        .filter(|(record, delivery)| {
            let key = (
                delivery.shard_id.clone(),
                delivery.sequence_number.clone(),
                delivery.sub_sequence_number.map_or(0, u64::from),
            );
            seen.get(&key) != Some(&record.data.to_vec())
        })
        .map(|(_, delivery)| delivery)
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} deliveries a KCL consumer never reads, e.g. {:?}",
        missing.len(),
        delivered.len(),
        missing.first()
    );
}

async fn send_all(producer: &Producer, numbers: std::ops::Range<u64>) -> Vec<(Record, Delivery)> {
    let mut tickets = Vec::new();
    for n in numbers {
        let record = record(n);
        tickets.push((record.clone(), producer.send(record).await.unwrap()));
    }
    let mut delivered = Vec::new();
    for (record, ticket) in tickets {
        delivered.push((record, ticket.await.expect("delivered")));
    }
    delivered
}

#[tokio::test(start_paused = true)]
async fn aggregates_of_many_keys_are_read_by_the_kcl_where_the_producer_says() {
    let kinesis = FakeKinesis::new("s", 4).with_seed(2).with_faults(Faults {
        throttled_entries: 0.1,
        lost_acks: 0.05,
        ..Faults::default()
    });
    let producer = Producer::builder(kinesis.clone(), StreamRef::name("s"))
        .aggregation(Aggregation::shard_map())
        .build()
        .await
        .unwrap();
    let delivered = send_all(&producer, 0..20_000).await;
    let stats = producer.stats();
    assert!(
        producer
            .shutdown(Duration::from_secs(5))
            .await
            .is_complete()
    );
    assert_read_where_delivered(&kinesis, &delivered);
    let aggregated = delivered
        .iter()
        .filter(|(_, d)| d.sub_sequence_number.is_some())
        .count();
    assert!(aggregated > 19_000, "{aggregated} aggregated");
    // 1,000 keys: same-key aggregation could not pack more than 20 records per entry here.
    assert!(
        stats.entries_sent < 400,
        "{} entries for 20,000 records",
        stats.entries_sent
    );
}

#[tokio::test(start_paused = true)]
async fn after_splits_misplaced_aggregates_are_sent_again_and_every_delivery_is_read() {
    let kinesis = FakeKinesis::new("s", 2).with_seed(4);
    let sink = MemorySink::default();
    let producer = Producer::builder(kinesis.clone(), StreamRef::name("s"))
        .aggregation(Aggregation::shard_map())
        .metrics(sink.clone())
        .build()
        .await
        .unwrap();
    let mut delivered = send_all(&producer, 0..5_000).await;
    // The producer's map still names the two parents.
    for shard in ["shardId-000000000000", "shardId-000000000001"] {
        kinesis.split(shard);
    }
    delivered.extend(send_all(&producer, 5_000..10_000).await);
    let child = kinesis.shards()[2].shard_id.clone();
    kinesis.split(&child);
    delivered.extend(send_all(&producer, 10_000..15_000).await);
    assert!(
        producer
            .shutdown(Duration::from_secs(5))
            .await
            .is_complete()
    );

    assert_read_where_delivered(&kinesis, &delivered);
    let misplaced = sink.sum_by_code(Metric::ErrorsByCode, "AggregateOutsideShard");
    assert!(
        misplaced > 0.0,
        "the stale map never misplaced an aggregate"
    );
    // Records sent again after a misplaced aggregate say they may be stored twice.
    assert!(delivered.iter().any(|(_, d)| d.maybe_duplicated));
    // The map was read again: records after the splits go to the children.
    let late: Vec<&Delivery> = delivered[12_000..].iter().map(|(_, d)| d).collect();
    assert!(
        late.iter()
            .all(|d| !d.shard_id.ends_with("00000000000") && !d.shard_id.ends_with("00000000001"))
    );
}

#[tokio::test(start_paused = true)]
async fn shard_map_aggregation_is_refused_with_ordering_and_on_auto() {
    let kinesis = FakeKinesis::new("s", 2);
    let refused = Producer::builder(kinesis, StreamRef::name("s"))
        .aggregation(Aggregation::shard_map())
        .ordered(true)
        .build()
        .await;
    assert!(
        matches!(&refused, Err(BuildError::Settings(why)) if why.contains("ordering")),
        "{:?}",
        refused.err()
    );
    let auto = FakeKinesis::new("s", 2).with_distribution(Distribution::Auto);
    let refused = Producer::builder(auto, StreamRef::name("s"))
        .aggregation(Aggregation::shard_map())
        .build()
        .await;
    assert!(
        matches!(&refused, Err(BuildError::AggregationOnAuto { .. })),
        "{:?}",
        refused.err()
    );
}
