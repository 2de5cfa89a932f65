//! ShardFetcher against MemoryKinesis: every record once and in order through throttling,
//! failures and expired iterators; the back-off on throttling (growing, reset by a success,
//! the same iterator); resuming inside an aggregate; LATEST and AT_TIMESTAMP; the KCL's drops
//! and skips; shard end.

use std::time::Duration;

use kcl_kpl::{AggregateBuilder, ExplicitHashKey, HashKeyRange, MAGIC, kcl_view};
use kcl_native::kinesis::IteratorStart;
use kcl_native::testing::{IteratorExpiry, MemoryKinesis, ReadFault};
use kcl_native::{Fetched, FetchedBatch, FetcherConfig, ShardFetcher};
use kcl_producer::api::{KinesisApi, Record, StreamRef};
use kcl_protocol::{ExtendedSequenceNumber, SequenceNumber};
use md5::{Digest, Md5};
use tokio::time::Instant;

const SHARD: &str = "shardId-000000000000";

fn stream() -> StreamRef {
    StreamRef::name("s")
}

/// (sequence number, sub-sequence number, data) of a delivered record.
type Seen = (String, u64, Vec<u8>);

fn seen(batch: &FetchedBatch) -> Vec<Seen> {
    batch
        .records
        .iter()
        .map(|r| {
            (
                r.sequence_number().as_str().to_owned(),
                r.sub_sequence_number(),
                r.data().to_vec(),
            )
        })
        .collect()
}

/// What the Java KCL delivers for the whole shard, record by record.
fn expected(kinesis: &MemoryKinesis, shard: &str, range: HashKeyRange) -> Vec<Seen> {
    kinesis
        .fake()
        .records(shard)
        .iter()
        .flat_map(|stored| {
            kcl_view(&stored.data, &stored.partition_key, range)
                .records
                .into_iter()
                .map(|user| {
                    (
                        stored.sequence_number.clone(),
                        user.sub_sequence_number,
                        user.data,
                    )
                })
        })
        .collect()
}

async fn put_plain(kinesis: &MemoryKinesis, from: usize, n: usize) {
    let entries: Vec<Record> = (from..from + n)
        .map(|i| Record::new(format!("key-{i}"), format!("plain-{i}")))
        .collect();
    kinesis
        .fake()
        .put_records(&stream(), &entries)
        .await
        .unwrap();
}

async fn put_aggregate(kinesis: &MemoryKinesis, name: &str, records: usize) -> SequenceNumber {
    let mut builder = AggregateBuilder::default();
    for i in 0..records {
        builder
            .push(
                &format!("{name}-{i}"),
                None,
                format!("{name}-{i}").as_bytes(),
            )
            .unwrap();
    }
    let aggregate = builder.finish().unwrap();
    let outcome = kinesis
        .fake()
        .put_records(
            &stream(),
            &[Record::new(aggregate.partition_key, aggregate.data)],
        )
        .await
        .unwrap();
    let kcl_producer::api::EntryOutcome::Stored {
        sequence_number, ..
    } = &outcome[0]
    else {
        panic!("{outcome:?}")
    };
    SequenceNumber::new(sequence_number.clone())
}

fn fetcher_of(
    kinesis: &MemoryKinesis,
    shard: &str,
    checkpoint: ExtendedSequenceNumber,
    max_records: u32,
) -> ShardFetcher<MemoryKinesis> {
    ShardFetcher::new(
        kinesis.clone(),
        stream(),
        shard,
        HashKeyRange::ALL,
        &checkpoint,
        FetcherConfig {
            max_records,
            ..FetcherConfig::default()
        },
    )
    .unwrap()
}

/// Reads batches until one comes back empty and caught up; returns what was delivered.
async fn drain(fetcher: &mut ShardFetcher<MemoryKinesis>) -> Vec<Seen> {
    let mut all = Vec::new();
    loop {
        match fetcher.next().await.unwrap() {
            Fetched::Records(batch) => {
                if batch.kinesis_records == 0 && batch.millis_behind_latest == Some(0) {
                    return all;
                }
                all.extend(seen(&batch));
            }
            Fetched::ShardEnd { .. } => return all,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn every_record_once_and_in_order_through_throttling_failures_and_expiry() {
    let kinesis = MemoryKinesis::new("s", 1);
    put_plain(&kinesis, 0, 20).await;
    put_aggregate(&kinesis, "agg-a", 5).await;
    put_plain(&kinesis, 20, 20).await;
    put_aggregate(&kinesis, "agg-b", 3).await;
    put_plain(&kinesis, 40, 10).await;
    let mut fetcher = fetcher_of(&kinesis, SHARD, ExtendedSequenceNumber::trim_horizon(), 7);
    let faults = [
        vec![
            ReadFault::Throttled,
            ReadFault::Throttled,
            ReadFault::Throttled,
        ],
        vec![],
        vec![ReadFault::ExpiredIterator],
        vec![ReadFault::Transient, ReadFault::Throttled],
        vec![],
        vec![ReadFault::ExpiredIterator, ReadFault::Throttled],
    ];
    let mut delivered = Vec::new();
    let mut batches = 0;
    let mut restarted_after = Vec::new();
    let mut last_return: Option<Instant> = None;
    loop {
        if let Some(faults) = faults.get(batches) {
            kinesis.inject(faults.iter().cloned());
            if faults.contains(&ReadFault::ExpiredIterator) {
                restarted_after.push(fetcher.last_sequence_number().cloned().unwrap());
            }
        }
        let Fetched::Records(batch) = fetcher.next().await.unwrap() else {
            panic!("the shard is open")
        };
        if let Some(last) = last_return {
            assert!(
                last.elapsed() >= Duration::from_millis(1500),
                "calls are paced"
            );
        }
        last_return = Some(Instant::now());
        batches += 1;
        if batch.kinesis_records == 0 {
            break;
        }
        assert!(batch.kinesis_records <= 7);
        delivered.extend(seen(&batch));
        if batches == 4 {
            // Records written while the shard is read are read too.
            put_plain(&kinesis, 50, 5).await;
        }
    }
    assert_eq!(delivered, expected(&kinesis, SHARD, HashKeyRange::ALL));
    assert_eq!(delivered.len(), 55 + 5 + 3);
    let stats = fetcher.stats();
    assert_eq!((stats.throttled, stats.transient, stats.expired), (5, 1, 2));
    assert_eq!(stats.iterators, 3);
    let restarts: Vec<IteratorStart> = kinesis
        .iterator_requests()
        .into_iter()
        .map(|(_, start)| start)
        .collect();
    let mut wanted = vec![IteratorStart::TrimHorizon];
    wanted.extend(
        restarted_after
            .into_iter()
            .map(IteratorStart::AfterSequenceNumber),
    );
    assert_eq!(restarts, wanted);
}

#[tokio::test(start_paused = true)]
async fn a_throttle_longer_than_the_iterator_lives_gets_a_new_one_after_the_last_record() {
    let kinesis = MemoryKinesis::new("s", 1).with_expiry(IteratorExpiry {
        age: Duration::from_secs(4),
        uses: None,
    });
    put_plain(&kinesis, 0, 10).await;
    let mut fetcher = fetcher_of(&kinesis, SHARD, ExtendedSequenceNumber::trim_horizon(), 4);
    let Fetched::Records(first) = fetcher.next().await.unwrap() else {
        panic!()
    };
    // Each retry waits at least the idle time (1.5 s): the third call meets a 4.5 s old iterator.
    kinesis.inject([ReadFault::Throttled, ReadFault::Throttled]);
    let mut delivered = seen(&first);
    delivered.extend(drain(&mut fetcher).await);
    assert_eq!(delivered, expected(&kinesis, SHARD, HashKeyRange::ALL));
    assert_eq!(fetcher.stats().expired, 1);
    let after = SequenceNumber::new(first.records[3].sequence_number().as_str());
    assert_eq!(
        kinesis.iterator_requests().last().unwrap().1,
        IteratorStart::AfterSequenceNumber(after)
    );
}

#[tokio::test(start_paused = true)]
async fn a_checkpoint_inside_an_aggregate_resumes_at_the_next_user_record() {
    let kinesis = MemoryKinesis::new("s", 1);
    put_plain(&kinesis, 0, 2).await;
    let aggregate = put_aggregate(&kinesis, "agg", 5).await;
    put_plain(&kinesis, 2, 2).await;
    let mut fetcher = fetcher_of(
        &kinesis,
        SHARD,
        ExtendedSequenceNumber::new(aggregate.as_str(), 2),
        10_000,
    );
    let delivered = drain(&mut fetcher).await;
    let subs: Vec<(bool, u64)> = delivered
        .iter()
        .map(|(seq, sub, _)| (*seq == aggregate.as_str(), *sub))
        .collect();
    assert_eq!(
        subs,
        [(true, 3), (true, 4), (false, 0), (false, 0)],
        "{delivered:?}"
    );
    assert_eq!(
        kinesis.iterator_requests()[0].1,
        IteratorStart::AtSequenceNumber(aggregate)
    );
}

#[tokio::test(start_paused = true)]
async fn a_checkpoint_at_a_plain_record_resumes_after_it() {
    let kinesis = MemoryKinesis::new("s", 1);
    put_plain(&kinesis, 0, 5).await;
    let records = kinesis.fake().records(SHARD);
    let mut fetcher = fetcher_of(
        &kinesis,
        SHARD,
        ExtendedSequenceNumber::new(records[1].sequence_number.clone(), 0),
        10_000,
    );
    let delivered = drain(&mut fetcher).await;
    let data: Vec<&[u8]> = delivered.iter().map(|(_, _, d)| &d[..]).collect();
    assert_eq!(data, [&b"plain-2"[..], b"plain-3", b"plain-4"]);
}

#[tokio::test(start_paused = true)]
async fn an_iterator_expired_before_any_record_restarts_at_the_checkpoint_again() {
    let kinesis = MemoryKinesis::new("s", 1);
    let aggregate = put_aggregate(&kinesis, "agg", 5).await;
    let mut fetcher = fetcher_of(
        &kinesis,
        SHARD,
        ExtendedSequenceNumber::new(aggregate.as_str(), 2),
        10_000,
    );
    kinesis.inject([ReadFault::ExpiredIterator]);
    let delivered = drain(&mut fetcher).await;
    let subs: Vec<u64> = delivered.iter().map(|(_, sub, _)| *sub).collect();
    assert_eq!(subs, [3, 4], "AFTER_SEQUENCE_NUMBER would have lost them");
    let starts: Vec<IteratorStart> = kinesis
        .iterator_requests()
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    assert_eq!(
        starts,
        [
            IteratorStart::AtSequenceNumber(aggregate.clone()),
            IteratorStart::AtSequenceNumber(aggregate)
        ]
    );
}

/// An aggregate whose one user record names partition key index 3 of a one-entry table: the
/// KCL's loop throws and the whole batch is skipped.
fn bad_aggregate() -> Vec<u8> {
    let message = [0x0A, 0x01, b'k', 0x1A, 0x05, 0x08, 0x03, 0x1A, 0x01, b'x'];
    let mut data = MAGIC.to_vec();
    data.extend_from_slice(&message);
    data.extend_from_slice(&Md5::digest(message));
    data
}

#[tokio::test(start_paused = true)]
async fn the_kcl_drops_a_straying_aggregate_and_skips_a_batch_with_a_broken_one() {
    let kinesis = MemoryKinesis::new("s", 2);
    let shard = kinesis.fake().shards()[0].clone();
    let range = HashKeyRange::new(shard.starting_hash_key, shard.ending_hash_key);
    let in_shard = ExplicitHashKey::new(1);
    let elsewhere = ExplicitHashKey::new(u128::MAX);
    let mut straying = AggregateBuilder::default();
    straying.push("a", Some(&in_shard), b"in").unwrap();
    straying.push("b", Some(&elsewhere), b"out").unwrap();
    let straying = straying.finish().unwrap();
    let to_shard = |key: &str, data: Vec<u8>| Record::new(key, data).explicit_hash_key("1");
    let entries = [
        to_shard("p", b"before".to_vec()),
        to_shard("s", straying.data.clone()),
        to_shard("p", b"after".to_vec()),
        // The next GetRecords answer (max_records 3): a broken aggregate between two plain
        // records, all three lost.
        to_shard("p", b"skipped with its batch".to_vec()),
        to_shard("k", bad_aggregate()),
        to_shard("p", b"skipped too".to_vec()),
        to_shard("p", b"last".to_vec()),
    ];
    kinesis
        .fake()
        .put_records(&stream(), &entries)
        .await
        .unwrap();
    let mut fetcher = ShardFetcher::new(
        kinesis.clone(),
        stream(),
        &shard.shard_id,
        range,
        &ExtendedSequenceNumber::trim_horizon(),
        FetcherConfig {
            max_records: 3,
            ..FetcherConfig::default()
        },
    )
    .unwrap();
    let mut batches = Vec::new();
    for _ in 0..3 {
        let Fetched::Records(batch) = fetcher.next().await.unwrap() else {
            panic!()
        };
        batches.push(batch);
    }
    let data = |batch: &FetchedBatch| -> Vec<Vec<u8>> {
        batch.records.iter().map(|r| r.data().to_vec()).collect()
    };
    assert_eq!(data(&batches[0]), [b"before".to_vec(), b"after".to_vec()]);
    assert_eq!(batches[0].skipped, None);
    assert!(batches[1].records.is_empty());
    let skipped = batches[1].skipped.unwrap();
    assert_eq!((skipped.kinesis_record, skipped.user_record), (1, 0));
    assert_eq!(data(&batches[2]), [b"last".to_vec()]);
}

#[tokio::test(start_paused = true)]
async fn a_closed_shard_ends_with_its_children_after_its_last_records() {
    let kinesis = MemoryKinesis::new("s", 1);
    put_plain(&kinesis, 0, 5).await;
    let children = kinesis.fake().split(SHARD);
    put_plain(&kinesis, 5, 5).await;
    let mut fetcher = fetcher_of(&kinesis, SHARD, ExtendedSequenceNumber::trim_horizon(), 3);
    let mut delivered = Vec::new();
    let ended = loop {
        match fetcher.next().await.unwrap() {
            Fetched::Records(batch) => delivered.extend(seen(&batch)),
            Fetched::ShardEnd { children } => break children,
        }
    };
    assert_eq!(delivered, expected(&kinesis, SHARD, HashKeyRange::ALL));
    assert_eq!(delivered.len(), 5);
    let ids: Vec<String> = ended.iter().map(|c| c.shard_id.clone()).collect();
    assert_eq!(ids, children);
    assert!(ended.iter().all(|c| c.parent_shards == [SHARD]));
    let calls = kinesis.stats().get_records_calls;
    assert!(
        matches!(fetcher.next().await.unwrap(), Fetched::ShardEnd { children } if children.len() == 2)
    );
    assert_eq!(
        kinesis.stats().get_records_calls,
        calls,
        "an ended shard is not read again"
    );

    // The children hold the records written after the split.
    let mut child_records = Vec::new();
    for child in &children {
        let mut reader = fetcher_of(&kinesis, child, ExtendedSequenceNumber::trim_horizon(), 100);
        child_records.extend(drain(&mut reader).await);
    }
    assert_eq!(child_records.len(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_missing_shard_or_a_shard_end_checkpoint_is_a_shard_end_without_children() {
    let kinesis = MemoryKinesis::new("s", 1);
    let mut missing = fetcher_of(
        &kinesis,
        "shardId-000000000042",
        ExtendedSequenceNumber::trim_horizon(),
        100,
    );
    assert_eq!(
        missing.next().await.unwrap(),
        Fetched::ShardEnd { children: vec![] }
    );
    let mut done = fetcher_of(&kinesis, SHARD, ExtendedSequenceNumber::shard_end(), 100);
    assert_eq!(
        done.next().await.unwrap(),
        Fetched::ShardEnd { children: vec![] }
    );
    assert_eq!(
        kinesis.iterator_requests().len(),
        1,
        "only the missing shard asked"
    );
}

#[tokio::test(start_paused = true)]
async fn latest_and_at_timestamp_read_only_later_records() {
    let kinesis = MemoryKinesis::new("s", 1);
    put_plain(&kinesis, 0, 3).await;
    let mut latest = fetcher_of(
        &kinesis,
        SHARD,
        ExtendedSequenceNumber::new("LATEST", 0),
        100,
    );
    let Fetched::Records(empty) = latest.next().await.unwrap() else {
        panic!()
    };
    assert!(empty.records.is_empty());
    put_plain(&kinesis, 3, 2).await;
    let Fetched::Records(batch) = latest.next().await.unwrap() else {
        panic!()
    };
    assert_eq!(batch.records.len(), 2);
    assert!(
        batch
            .records
            .iter()
            .all(|r| r.approximate_arrival_millis().is_some())
    );

    let future = FetcherConfig {
        initial_timestamp_millis: Some(i64::MAX),
        ..FetcherConfig::default()
    };
    let mut at = ShardFetcher::new(
        kinesis.clone(),
        stream(),
        SHARD,
        HashKeyRange::ALL,
        &ExtendedSequenceNumber::new("AT_TIMESTAMP", 0),
        future,
    )
    .unwrap();
    let Fetched::Records(none) = at.next().await.unwrap() else {
        panic!()
    };
    assert_eq!(none.kinesis_records, 0);
    assert!(matches!(
        kinesis.iterator_requests().last().unwrap().1,
        IteratorStart::AtTimestamp(i64::MAX)
    ));
}

#[tokio::test(start_paused = true)]
async fn throttles_in_a_row_back_off_longer_each_time_on_the_same_iterator_and_a_success_resets_it()
{
    let kinesis = MemoryKinesis::new("s", 1);
    put_plain(&kinesis, 0, 6).await;
    // A short idle time, so that the pauses are the back-off's (500 ms doubling, each in the
    // upper half of its ceiling).
    let mut fetcher = ShardFetcher::new(
        kinesis.clone(),
        stream(),
        SHARD,
        HashKeyRange::ALL,
        &ExtendedSequenceNumber::trim_horizon(),
        FetcherConfig {
            max_records: 3,
            idle_time_between_reads: Duration::from_millis(100),
            ..FetcherConfig::default()
        },
    )
    .unwrap();
    kinesis.inject(std::iter::repeat_n(ReadFault::Throttled, 5));
    let t0 = Instant::now();
    let Fetched::Records(first) = fetcher.next().await.unwrap() else {
        panic!("the shard is open")
    };
    // 250–500, 500–1000, 1000–2000, 2000–4000, 4000–8000 ms.
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(7750) && waited <= Duration::from_millis(15_500),
        "five throttles in a row waited {waited:?}"
    );
    assert_eq!(first.records.len(), 3, "then the batch");

    // After a success the next throttle waits as the first one did.
    kinesis.inject([ReadFault::Throttled]);
    let t1 = Instant::now();
    let Fetched::Records(second) = fetcher.next().await.unwrap() else {
        panic!("the shard is open")
    };
    let waited = t1.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited <= Duration::from_millis(600),
        "one throttle after a success waited {waited:?}"
    );
    assert_eq!(second.records.len(), 3);
    let stats = fetcher.stats();
    assert_eq!(
        (stats.throttled, stats.iterators),
        (6, 1),
        "the same iterator retried"
    );
    assert_eq!(kinesis.iterator_requests().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn at_timestamp_starts_at_the_first_record_that_arrived_at_or_after_the_configured_time() {
    let kinesis = MemoryKinesis::new("s", 1);
    // Arrival times are the wall clock's milliseconds: two groups a few milliseconds apart.
    put_plain(&kinesis, 0, 3).await;
    std::thread::sleep(std::time::Duration::from_millis(5));
    put_plain(&kinesis, 3, 4).await;
    let all = drain(&mut fetcher_of(
        &kinesis,
        SHARD,
        ExtendedSequenceNumber::trim_horizon(),
        100,
    ))
    .await;
    assert_eq!(all.len(), 7);
    let Fetched::Records(batch) =
        fetcher_of(&kinesis, SHARD, ExtendedSequenceNumber::trim_horizon(), 100)
            .next()
            .await
            .unwrap()
    else {
        panic!()
    };
    let arrivals: Vec<i64> = batch
        .records
        .iter()
        .map(|r| r.approximate_arrival_millis().unwrap())
        .collect();
    assert!(arrivals[2] < arrivals[3], "{arrivals:?}");
    // The lease says AT_TIMESTAMP; the time comes from the configuration.
    let mut at = ShardFetcher::new(
        kinesis.clone(),
        stream(),
        SHARD,
        HashKeyRange::ALL,
        &ExtendedSequenceNumber::new("AT_TIMESTAMP", 0),
        FetcherConfig {
            initial_timestamp_millis: Some(arrivals[3]),
            ..FetcherConfig::default()
        },
    )
    .unwrap();
    assert_eq!(drain(&mut at).await, all[3..]);
}
