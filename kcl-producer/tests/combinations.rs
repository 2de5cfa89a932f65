//! Every combination of the producer's options (aggregation off, same-key or shard-map; per-key
//! ordering; a per-shard rate limit) under every kind of fault and a split in the middle of the
//! run, on tokio's paused clock. For each: every record delivered; every delivery read by a KCL
//! consumer (as `kcl_kpl::kcl_view` predicts the KCL 3.1.3) at the shard, sequence number and
//! sub-sequence number the producer reported; duplicates only where flagged; and with ordering,
//! each key read in the order its records were taken.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use kcl_producer::api::StreamRef;
use kcl_producer::testing::{FakeKinesis, Faults};
use kcl_producer::{Aggregation, Delivery, Producer, Record, ShardRate};

const RECORDS: u64 = 3_000;
const KEYS: u64 = 40;

fn record(n: u64) -> Record {
    Record::new(format!("key-{}", n % KEYS), format!("{n:08}"))
}

#[derive(Clone, Copy, Debug)]
struct Options {
    aggregation: Aggregation,
    ordered: bool,
    rate: Option<ShardRate>,
}

fn every_combination() -> Vec<Options> {
    let aggregations = [
        Aggregation::Off,
        Aggregation::SameKey {
            max_bytes: 400,
            max_records: 20,
        },
        Aggregation::ShardMap {
            max_bytes: 1_000,
            max_records: 50,
        },
    ];
    let mut all = Vec::new();
    for aggregation in aggregations {
        for ordered in [false, true] {
            if ordered && matches!(aggregation, Aggregation::ShardMap { .. }) {
                continue; // refused at build (tested in shard_map.rs)
            }
            for rate in [None, Some(ShardRate::new(200, 1_000_000))] {
                all.push(Options {
                    aggregation,
                    ordered,
                    rate,
                });
            }
        }
    }
    all
}

async fn check(options: Options, seed: u64) {
    let kinesis = FakeKinesis::new("s", 2)
        .with_seed(seed)
        .with_faults(Faults {
            throttled_entries: 0.1,
            failed_entries: 0.05,
            throttled_calls: 0.03,
            server_errors: 0.03,
            lost_acks: 0.05,
            latency: Duration::from_millis(15),
        });
    let mut builder = Producer::builder(kinesis.clone(), StreamRef::name("s"))
        .aggregation(options.aggregation)
        .ordered(options.ordered)
        .seed(seed);
    if let Some(rate) = options.rate {
        builder = builder.rate_limit(rate);
    }
    let producer = builder.build().await.unwrap();
    let mut tickets = Vec::new();
    for n in 0..RECORDS {
        tickets.push((n, producer.send(record(n)).await.unwrap()));
        if n == RECORDS / 2 {
            // The shard map (shard-map aggregation, the rate limit) goes stale.
            kinesis.split("shardId-000000000000");
        }
        if n % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut delivered: Vec<(u64, Delivery)> = Vec::new();
    for (n, ticket) in tickets {
        let delivery = ticket
            .await
            .unwrap_or_else(|failed| panic!("{options:?}: record {n} failed: {failed}"));
        delivered.push((n, delivery));
    }
    let report = producer.shutdown(Duration::from_secs(10)).await;
    assert!(report.is_complete(), "{options:?}: {report:?}");

    // What a KCL consumer reads, shard by shard in creation order (parents before children).
    let mut at: HashMap<(String, String, u64), u64> = HashMap::new();
    let mut read_by_key: HashMap<String, Vec<u64>> = HashMap::new();
    let mut copies: HashMap<u64, u64> = HashMap::new();
    for shard in kinesis.shards() {
        let range = kcl_kpl::HashKeyRange::new(shard.starting_hash_key, shard.ending_hash_key);
        for stored in kinesis.records(&shard.shard_id) {
            let view = kcl_kpl::kcl_view(&stored.data, &stored.partition_key, range);
            for user in view.records {
                let n: u64 = std::str::from_utf8(&user.data).unwrap().parse().unwrap();
                at.insert(
                    (
                        stored.shard_id.clone(),
                        stored.sequence_number.clone(),
                        user.sub_sequence_number,
                    ),
                    n,
                );
                read_by_key.entry(user.partition_key).or_default().push(n);
                *copies.entry(n).or_default() += 1;
            }
        }
    }
    let mut flagged = HashSet::new();
    for (n, delivery) in &delivered {
        let place = (
            delivery.shard_id.clone(),
            delivery.sequence_number.clone(),
            delivery.sub_sequence_number.map_or(0, u64::from),
        );
        assert_eq!(
            at.get(&place),
            Some(n),
            "{options:?}: record {n} is not read where it was delivered ({delivery:?})"
        );
        if delivery.maybe_duplicated {
            flagged.insert(*n);
        }
    }
    for (n, count) in &copies {
        assert!(
            *count == 1 || flagged.contains(n),
            "{options:?}: record {n} read {count} times, not flagged"
        );
    }
    if options.ordered {
        for (key, numbers) in &read_by_key {
            let mut seen = HashSet::new();
            let firsts: Vec<u64> = numbers
                .iter()
                .copied()
                .filter(|n| seen.insert(*n))
                .collect();
            assert!(
                firsts.windows(2).all(|pair| pair[0] < pair[1]),
                "{options:?}: {key} read out of order: {firsts:?}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn every_combination_of_options_under_faults_and_a_split() {
    for (index, options) in every_combination().into_iter().enumerate() {
        check(options, 100 + index as u64).await;
    }
}
