//! Per-key ordering, on tokio's paused clock: under every fault, with and without aggregation,
//! what a KCL consumer reads of each partition key comes in the order the records were taken;
//! without the option the same faults do reorder (so the check can fail).

use std::collections::HashMap;
use std::time::Duration;

use kcl_producer::api::StreamRef;
use kcl_producer::limits::StreamLimits;
use kcl_producer::testing::{FakeKinesis, Faults};
use kcl_producer::{Aggregation, Producer, Record, ShardRate};

const KEYS: u64 = 12;

fn every_fault() -> Faults {
    Faults {
        throttled_entries: 0.15,
        failed_entries: 0.05,
        throttled_calls: 0.05,
        server_errors: 0.05,
        lost_acks: 0.10,
        latency: Duration::from_millis(20),
    }
}

/// Record `n`: key `n % KEYS`, its number in the data.
fn record(n: u64) -> Record {
    Record::new(format!("key-{}", n % KEYS), format!("{n:08}"))
}

struct Run {
    /// Per key, the record numbers in the order a KCL consumer reads them (copies included).
    read: HashMap<String, Vec<u64>>,
    /// Per key, the (sequence number, sub-sequence number) of each record's delivery, in the
    /// order the records were taken.
    /// Sequence numbers compare as numbers: by length, then digits.
    delivered: HashMap<String, Vec<(usize, String, u32)>>,
    calls: u64,
}

async fn run(aggregation: Aggregation, ordered: bool, total: u64) -> Run {
    run_with(aggregation, ordered, total, StreamLimits::default(), None).await
}

async fn run_with(
    aggregation: Aggregation,
    ordered: bool,
    total: u64,
    limits: StreamLimits,
    rate: Option<ShardRate>,
) -> Run {
    let kinesis = FakeKinesis::new("s", 3)
        .with_faults(every_fault())
        .with_seed(11);
    let mut builder = Producer::builder(kinesis.clone(), StreamRef::name("s"))
        .aggregation(aggregation)
        .ordered(ordered)
        .limits(limits)
        .seed(7);
    if let Some(rate) = rate {
        builder = builder.rate_limit(rate);
    }
    let producer = builder.build().await.unwrap();
    let mut tickets = Vec::new();
    for n in 0..total {
        tickets.push((n, producer.send(record(n)).await.unwrap()));
        if n % 500 == 499 {
            // Let time pass between bursts, so records of one key meet each other's retries.
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
    let mut delivered: HashMap<String, Vec<(usize, String, u32)>> = HashMap::new();
    for (n, ticket) in tickets {
        let delivery = ticket.await.expect("no limit on attempts: delivered");
        delivered
            .entry(format!("key-{}", n % KEYS))
            .or_default()
            .push((
                delivery.sequence_number.len(),
                delivery.sequence_number,
                delivery.sub_sequence_number.unwrap_or(0),
            ));
    }
    let calls = producer.stats().calls;
    let report = producer.shutdown(Duration::from_secs(60)).await;
    assert!(report.is_complete(), "{report:?}");

    let mut read: HashMap<String, Vec<u64>> = HashMap::new();
    for shard in kinesis.shards() {
        let range = kcl_kpl::HashKeyRange::new(shard.starting_hash_key, shard.ending_hash_key);
        for stored in kinesis.records(&shard.shard_id) {
            let view = kcl_kpl::kcl_view(&stored.data, &stored.partition_key, range);
            for user in view.records {
                let number = std::str::from_utf8(&user.data).unwrap().parse().unwrap();
                read.entry(user.partition_key.clone())
                    .or_default()
                    .push(number);
            }
        }
    }
    Run {
        read,
        delivered,
        calls,
    }
}

/// The keys whose records a consumer reads out of order: a record read for the first time
/// after a newer one. (A call with an unknown outcome, sent again, stores copies: a consumer
/// then reads the same records again, which is no reordering.)
fn reordered(run: &Run) -> Vec<String> {
    let out_of_order = |numbers: &Vec<u64>| {
        let mut newest = None;
        let mut seen = std::collections::HashSet::new();
        numbers.iter().any(|&number| {
            if !seen.insert(number) {
                return false;
            }
            let before = newest.is_some_and(|newest| number < newest);
            newest = newest.max(Some(number));
            before
        })
    };
    let mut keys: Vec<String> = run
        .read
        .iter()
        .filter(|(_, numbers)| out_of_order(numbers))
        .map(|(key, _)| key.clone())
        .collect();
    keys.sort();
    keys
}

fn assert_in_order(run: &Run, total: u64) {
    assert_eq!(reordered(run), Vec::<String>::new());
    let read: usize = run.read.values().map(Vec::len).sum();
    assert!(read >= total as usize, "{read} read of {total}");
    for (key, positions) in &run.delivered {
        assert!(
            positions.windows(2).all(|pair| pair[0] < pair[1]),
            "{key}: deliveries out of order: {positions:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn ordered_plain_records_of_each_key_are_read_in_the_order_taken_under_every_fault() {
    let run = run(Aggregation::Off, true, 3_000).await;
    assert_in_order(&run, 3_000);
}

#[tokio::test(start_paused = true)]
async fn ordered_aggregates_of_each_key_are_read_in_the_order_taken_under_every_fault() {
    let small = Aggregation::SameKey {
        max_bytes: 400,
        max_records: 20,
    };
    let run = run(small, true, 6_000).await;
    assert_in_order(&run, 6_000);
    // Aggregation still packs: far fewer calls than records.
    assert!(run.calls < 1_500, "{} calls", run.calls);
}

#[tokio::test(start_paused = true)]
async fn ordered_aggregates_stay_in_order_when_calls_fill_up_in_the_middle_of_a_key() {
    // Calls of about three aggregates: a call fills while a key's records are half packed, and
    // the rest of that key must wait for the call's answer.
    let mut limits = StreamLimits::default();
    limits.max_request_bytes = 1_000;
    let small = Aggregation::SameKey {
        max_bytes: 400,
        max_records: 20,
    };
    let run = run_with(small, true, 4_000, limits, None).await;
    assert_in_order(&run, 4_000);
}

#[tokio::test(start_paused = true)]
async fn ordered_records_held_back_by_the_rate_limit_keep_their_order() {
    // 100 records/s per shard: most records wait for their shard's tokens, under every fault.
    let slow = Some(ShardRate::new(100, 1_000_000));
    let plain = run_with(Aggregation::Off, true, 3_000, StreamLimits::default(), slow).await;
    assert_in_order(&plain, 3_000);
    let small = Aggregation::SameKey {
        max_bytes: 400,
        max_records: 20,
    };
    let aggregated = run_with(small, true, 3_000, StreamLimits::default(), slow).await;
    assert_in_order(&aggregated, 3_000);
}

#[tokio::test(start_paused = true)]
async fn without_the_option_the_same_faults_reorder_records_of_a_key() {
    let plain = run(Aggregation::Off, false, 3_000).await;
    assert!(!reordered(&plain).is_empty(), "the faults never reordered");
    let aggregated = run(
        Aggregation::SameKey {
            max_bytes: 400,
            max_records: 20,
        },
        false,
        6_000,
    )
    .await;
    assert!(
        !reordered(&aggregated).is_empty(),
        "the faults never reordered"
    );
}

#[tokio::test(start_paused = true)]
async fn ordered_records_queued_behind_an_outage_are_reported_unsent_at_shutdown() {
    let kinesis = FakeKinesis::new("s", 1).with_faults(Faults {
        server_errors: 1.0,
        ..Faults::default()
    });
    let producer = Producer::builder(kinesis.clone(), StreamRef::name("s"))
        .ordered(true)
        .build()
        .await
        .unwrap();
    let mut tickets = Vec::new();
    for n in 0..50 {
        tickets.push(
            producer
                .send(Record::new("one-key", format!("{n}")))
                .await
                .unwrap(),
        );
    }
    let report = producer.shutdown(Duration::from_secs(2)).await;
    // One record of the key was out at a time; the 49 behind it never left their lane.
    assert_eq!(report.delivered, 0);
    assert_eq!(
        report.unsent.len() + report.in_doubt.len(),
        50,
        "{report:?}"
    );
    for ticket in tickets {
        assert!(ticket.await.is_err());
    }
    assert!(
        kinesis.stats().put_records_calls <= 20,
        "{:?}",
        kinesis.stats()
    );
}
