//! The KPL-named metrics add up to what the producer and the fake saw, under faults, with and
//! without aggregation.

use std::time::Duration;

use kcl_producer::api::StreamRef;
use kcl_producer::metrics::{MemorySink, Metric};
use kcl_producer::testing::{FakeKinesis, Faults};
use kcl_producer::{Aggregation, Producer, Record};

const THROTTLED: &str = "ProvisionedThroughputExceededException";

async fn run(aggregation: Aggregation) {
    let kinesis = FakeKinesis::new("s", 2).with_seed(9).with_faults(Faults {
        throttled_entries: 0.2,
        server_errors: 0.05,
        latency: Duration::from_millis(10),
        ..Faults::default()
    });
    let sink = MemorySink::default();
    let producer = Producer::builder(kinesis.clone(), StreamRef::name("s"))
        .aggregation(aggregation)
        .metrics(sink.clone())
        .build()
        .await
        .unwrap();
    let total = 2_000u64;
    let mut data_bytes = 0;
    let mut tickets = Vec::new();
    for n in 0..total {
        let record = Record::new(format!("key-{}", n % 20), "x".repeat((n % 7) as usize + 1));
        data_bytes += record.data.len();
        tickets.push(producer.send(record).await.unwrap());
    }
    for ticket in tickets {
        ticket.await.unwrap();
    }
    let stats = producer.stats();
    assert!(
        producer
            .shutdown(Duration::from_secs(5))
            .await
            .is_complete()
    );

    assert_eq!(sink.sum(Metric::UserRecordsReceived), total as f64);
    assert_eq!(sink.sum(Metric::UserRecordsPut), total as f64);
    assert_eq!(sink.sum(Metric::UserRecordsDataPut), data_bytes as f64);
    let by_shard: f64 = kinesis
        .shards()
        .iter()
        .map(|shard| sink.sum_by_shard(Metric::UserRecordsPut, &shard.shard_id))
        .sum();
    assert_eq!(by_shard, total as f64, "every delivery has its shard");
    // Every record in a stored entry: the records per entry add up to the records.
    assert_eq!(sink.sum(Metric::UserRecordsPerKinesisRecord), total as f64);
    let entries = sink.sum(Metric::KinesisRecordsPut);
    let stored = kinesis.stats().entries_stored as f64;
    // Entries stored by a call answered with a 500 are in the fake, not in the metric.
    assert!(entries <= stored && entries > 0.0, "{entries} of {stored}");
    assert_eq!(
        sink.sum_by_code(Metric::ErrorsByCode, THROTTLED),
        stats.entries_throttled as f64
    );
    assert_eq!(
        sink.sum(Metric::AllErrors),
        (stats.entries_throttled + stats.calls_failed) as f64
    );
    assert_eq!(
        sink.sum(Metric::RetriesPerRecord),
        stats.entries_retried as f64
    );
    assert_eq!(sink.total(Metric::RequestTime).count, stats.calls);
    assert!(
        sink.total(Metric::RequestTime).max >= 10.0,
        "the latency is measured"
    );
    assert_eq!(
        sink.sum(Metric::UserRecordsPerPutRecordsRequest),
        stats.entries_retried as f64 + total as f64
    );
    assert_eq!(sink.total(Metric::BufferingTime).count, total);
}

#[tokio::test(start_paused = true)]
async fn plain_records_metrics_add_up() {
    run(Aggregation::Off).await;
}

#[tokio::test(start_paused = true)]
async fn aggregated_records_metrics_add_up() {
    run(Aggregation::same_key()).await;
}
