//! The producer against `FakeKinesis`, on tokio's paused clock: every record accounted for under
//! every kind of fault, calls within the limits, backpressure, flush and shutdown.

use std::collections::HashMap;
use std::time::Duration;

use kcl_producer::api::{CallError, EntryOutcome, KinesisApi, Shard, StreamRef, StreamSummary};
use kcl_producer::limits::StreamLimits;
use kcl_producer::testing::{FakeKinesis, Faults};
use kcl_producer::{Aggregation, FailReason, Producer, Record, SendError, TrySendError};

fn stream() -> StreamRef {
    StreamRef::name("s")
}

fn record(n: u64) -> Record {
    Record::new(format!("key-{}", n % 1000), format!("record {n:08}"))
}

/// The record number in a payload written by [`record`].
fn number(data: &[u8]) -> u64 {
    std::str::from_utf8(&data[7..]).unwrap().parse().unwrap()
}

async fn producer(kinesis: &FakeKinesis) -> Producer {
    builder(kinesis).build().await.unwrap()
}

fn builder(kinesis: &FakeKinesis) -> kcl_producer::Builder<FakeKinesis> {
    Producer::builder(kinesis.clone(), stream())
}

#[tokio::test(start_paused = true)]
async fn every_record_is_delivered_under_every_fault_and_duplicates_come_only_from_unknown_outcomes()
 {
    let faults = Faults {
        throttled_entries: 0.10,
        failed_entries: 0.05,
        throttled_calls: 0.05,
        server_errors: 0.05,
        lost_acks: 0.10,
        latency: Duration::from_millis(20),
    };
    let kinesis = FakeKinesis::new("s", 4).with_faults(faults).with_seed(3);
    let producer = producer(&kinesis).await;
    let total = 20_000u64;
    let mut tickets = Vec::new();
    for n in 0..total {
        tickets.push(producer.send(record(n)).await.unwrap());
    }
    let mut maybe_duplicated = 0;
    for ticket in tickets {
        let delivery = ticket.await.expect("no TTL: every record is delivered");
        maybe_duplicated += u64::from(delivery.maybe_duplicated);
    }
    let report = producer.shutdown(Duration::from_secs(60)).await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.delivered, total);

    let mut copies: HashMap<u64, u64> = HashMap::new();
    for stored in kinesis.all_records() {
        *copies.entry(number(&stored.data)).or_default() += 1;
    }
    assert_eq!(copies.len() as u64, total, "every record is in the stream");
    let extra: u64 = copies.values().map(|c| c - 1).sum();
    assert!(extra > 0, "lost acknowledgements were injected");
    assert!(
        extra <= maybe_duplicated,
        "{extra} duplicates, {maybe_duplicated} flagged"
    );
}

#[tokio::test(start_paused = true)]
async fn calls_stay_within_the_entry_and_byte_limits_and_fill_up() {
    let kinesis = FakeKinesis::new("s", 2);
    let producer = producer(&kinesis).await;
    let mut tickets = Vec::new();
    for n in 0..1_200 {
        tickets.push(producer.send(record(n)).await.unwrap());
    }
    producer.flush().await;
    assert_eq!(kinesis.stats().put_records_calls, 3, "500 + 500 + 200");
    // 100 KiB records: 51 fit in 5 MiB (keys counted).
    for n in 0..102 {
        let data = vec![b'x'; 100 * 1024];
        tickets.push(
            producer
                .send(Record::new(format!("k{n}"), data))
                .await
                .unwrap(),
        );
    }
    producer.flush().await;
    let stats = kinesis.stats();
    assert_eq!(stats.put_records_calls, 5, "{stats:?}");
    assert_eq!(stats.failed_calls, 0, "no call over the limits");
    for ticket in tickets {
        assert_eq!(ticket.await.unwrap().attempts, 1);
    }
}

#[tokio::test(start_paused = true)]
async fn records_taken_faster_than_the_task_runs_still_fill_calls() {
    // With no linger every record is due at once: a task that decided after each record it
    // took would send 1,000 calls of one.
    let kinesis = FakeKinesis::new("s", 1);
    let producer = builder(&kinesis)
        .linger(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let tickets: Vec<_> = (0..1_000)
        .map(|n| producer.try_send(record(n)).unwrap())
        .collect();
    producer.flush().await;
    assert_eq!(kinesis.stats().put_records_calls, 2);
    for ticket in tickets {
        ticket.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn records_that_queued_past_their_linger_still_leave_in_full_calls() {
    let kinesis = FakeKinesis::new("s", 2);
    let producer = producer(&kinesis).await;
    // `try_send` never yields: the producer's task sees none of these records before the clock
    // has moved past their linger, as when a fast sender keeps the task waiting.
    let tickets: Vec<_> = (0..2_000)
        .map(|n| producer.try_send(record(n)).unwrap())
        .collect();
    tokio::time::advance(Duration::from_millis(200)).await;
    for ticket in tickets {
        ticket.await.unwrap();
    }
    let stats = kinesis.stats();
    assert_eq!(stats.put_records_calls, 4, "4 calls of 500: {stats:?}");
}

#[tokio::test(start_paused = true)]
async fn a_lone_record_leaves_after_the_linger() {
    let kinesis = FakeKinesis::new("s", 1);
    let producer = builder(&kinesis)
        .linger(Duration::from_millis(250))
        .build()
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let ticket = producer.send(record(1)).await.unwrap();
    ticket.await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_millis(250));
}

#[tokio::test(start_paused = true)]
async fn invalid_records_are_handed_back_at_send_and_never_reach_a_call() {
    let kinesis = FakeKinesis::new("s", 1);
    let producer = producer(&kinesis).await;
    let bad = [
        Record::new("", "x"),
        Record::new("k".repeat(257), "x"),
        Record::new("k", vec![0u8; 1024 * 1024]),
        Record::new("k", "x").explicit_hash_key("-1"),
    ];
    for record in bad {
        let copy = record.clone();
        match producer.send(record).await {
            Err(SendError::Invalid(back, _)) => assert_eq!(back, copy),
            other => panic!("{other:?}"),
        }
    }
    let good = producer.send(record(1)).await.unwrap();
    good.await.unwrap();
    assert_eq!(kinesis.stats().failed_calls, 0);
}

#[tokio::test(start_paused = true)]
async fn a_full_buffer_refuses_try_send_and_makes_send_wait() {
    let kinesis = FakeKinesis::new("s", 1).with_faults(Faults {
        latency: Duration::from_secs(5),
        ..Faults::default()
    });
    let producer = builder(&kinesis)
        .max_buffered_records(3)
        .build()
        .await
        .unwrap();
    let first: Vec<_> = (0..3)
        .map(|n| producer.try_send(record(n)).unwrap())
        .collect();
    match producer.try_send(record(3)) {
        Err(TrySendError::Full(back)) => assert_eq!(back, record(3)),
        other => panic!("{other:?}"),
    }
    let started = tokio::time::Instant::now();
    let fourth = producer.send(record(3)).await.unwrap();
    // Room came back when the first call (linger, then 5 s of latency) was answered.
    assert!(started.elapsed() >= Duration::from_secs(5));
    for ticket in first {
        ticket.await.unwrap();
    }
    fourth.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_refused_call_fails_its_records_and_hands_them_back() {
    let kinesis = FakeKinesis::new("other-stream", 1);
    let producer = Producer::builder(kinesis, stream())
        .limits(StreamLimits::default())
        .build()
        .await
        .unwrap();
    let ticket = producer.send(record(7)).await.unwrap();
    let failed = ticket.await.unwrap_err();
    assert_eq!(failed.record, record(7));
    assert!(matches!(
        failed.reason,
        FailReason::Refused(CallError::Refused { .. })
    ));
    assert_eq!(failed.attempts, 1);
}

#[tokio::test(start_paused = true)]
async fn a_record_past_its_time_to_live_fails_with_its_last_error() {
    let kinesis = FakeKinesis::new("s", 1).with_faults(Faults {
        throttled_entries: 1.0,
        ..Faults::default()
    });
    let producer = builder(&kinesis)
        .record_ttl(Duration::from_secs(2))
        .build()
        .await
        .unwrap();
    let failed = producer.send(record(1)).await.unwrap().await.unwrap_err();
    match &failed.reason {
        FailReason::Expired { last_error } => {
            assert!(
                last_error.contains("ProvisionedThroughputExceededException"),
                "{last_error}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(
        failed.attempts > 3,
        "retried until the TTL: {}",
        failed.attempts
    );
}

#[tokio::test(start_paused = true)]
async fn a_record_fails_after_the_most_attempts_allowed() {
    let kinesis = FakeKinesis::new("s", 1).with_faults(Faults {
        failed_entries: 1.0,
        ..Faults::default()
    });
    let producer = builder(&kinesis).max_attempts(3).build().await.unwrap();
    let failed = producer.send(record(1)).await.unwrap().await.unwrap_err();
    assert_eq!(failed.attempts, 3);
    match &failed.reason {
        FailReason::Attempts {
            attempts: 3,
            last_error,
        } => {
            assert!(last_error.starts_with("InternalFailure"), "{last_error}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(kinesis.stats().entries_received, 3);
}

#[tokio::test(start_paused = true)]
async fn shutdown_under_an_outage_keeps_its_deadline_and_reports_every_record() {
    let kinesis = FakeKinesis::new("s", 2).with_faults(Faults {
        server_errors: 1.0,
        ..Faults::default()
    });
    let producer = producer(&kinesis).await;
    let tickets: Vec<_> = (0..1_000)
        .map(|n| producer.try_send(record(n)).unwrap())
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = tokio::time::Instant::now();
    let report = producer.shutdown(Duration::from_secs(2)).await;
    assert!(started.elapsed() <= Duration::from_secs(2));
    assert_eq!(report.delivered, 0);
    assert_eq!(
        report.unsent.len() + report.in_doubt.len(),
        1_000,
        "{report:?}"
    );
    for ticket in tickets {
        let failed = ticket.await.unwrap_err();
        assert!(matches!(
            failed.reason,
            FailReason::Unsent | FailReason::InDoubt
        ));
        assert!(failed.maybe_stored, "every call had an unknown outcome");
    }
}

#[tokio::test(start_paused = true)]
async fn a_call_unanswered_at_the_deadline_leaves_its_records_in_doubt() {
    let kinesis = FakeKinesis::new("s", 1).with_faults(Faults {
        latency: Duration::from_secs(30),
        ..Faults::default()
    });
    let producer = producer(&kinesis).await;
    let ticket = producer.send(record(1)).await.unwrap();
    let report = producer.shutdown(Duration::from_secs(1)).await;
    assert_eq!(report.in_doubt, vec![record(1)]);
    assert!(matches!(
        ticket.await.unwrap_err().reason,
        FailReason::InDoubt
    ));
}

#[tokio::test(start_paused = true)]
async fn a_dropped_producer_still_delivers_what_it_took() {
    let kinesis = FakeKinesis::new("s", 1);
    let producer = producer(&kinesis).await;
    let tickets: Vec<_> = (0..10)
        .map(|n| producer.try_send(record(n)).unwrap())
        .collect();
    drop(producer);
    for ticket in tickets {
        ticket.await.unwrap();
    }
    assert_eq!(kinesis.all_records().len(), 10);
}

#[tokio::test(start_paused = true)]
async fn flush_waits_for_earlier_records_only() {
    let kinesis = FakeKinesis::new("s", 1).with_faults(Faults {
        throttled_entries: 0.5,
        ..Faults::default()
    });
    let producer = producer(&kinesis).await;
    let tickets: Vec<_> = (0..100)
        .map(|n| producer.try_send(record(n)).unwrap())
        .collect();
    producer.flush().await;
    assert_eq!(kinesis.all_records().len(), 100);
    for ticket in tickets {
        ticket.await.unwrap();
    }
}

/// Answers every call with one outcome too few: the answer cannot be matched to the entries.
struct ShortAnswers(FakeKinesis);

impl KinesisApi for ShortAnswers {
    async fn put_records(
        &self,
        stream: &StreamRef,
        entries: &[Record],
    ) -> Result<Vec<EntryOutcome>, CallError> {
        let mut outcomes = self.0.put_records(stream, entries).await?;
        if self.0.stats().put_records_calls == 1 {
            outcomes.pop();
        }
        Ok(outcomes)
    }

    async fn describe_stream_summary(
        &self,
        stream: &StreamRef,
    ) -> Result<StreamSummary, CallError> {
        self.0.describe_stream_summary(stream).await
    }

    async fn list_shards(&self, stream: &StreamRef) -> Result<Vec<Shard>, CallError> {
        self.0.list_shards(stream).await
    }
}

#[tokio::test(start_paused = true)]
async fn an_answer_with_the_wrong_count_is_an_unknown_outcome_and_is_retried() {
    let kinesis = FakeKinesis::new("s", 1);
    let producer = Producer::builder(ShortAnswers(kinesis.clone()), stream())
        .build()
        .await
        .unwrap();
    let tickets: Vec<_> = (0..3)
        .map(|n| producer.try_send(record(n)).unwrap())
        .collect();
    for ticket in tickets {
        let delivery = ticket.await.unwrap();
        assert!(delivery.maybe_duplicated);
        assert_eq!(delivery.attempts, 2);
    }
    assert_eq!(
        kinesis.all_records().len(),
        6,
        "stored twice: the first answer was unusable"
    );
}

#[tokio::test(start_paused = true)]
async fn same_key_aggregates_reach_a_kcl_consumer_as_the_records_with_their_sub_sequence_numbers() {
    let kinesis = FakeKinesis::new("s", 4).with_seed(5).with_faults(Faults {
        throttled_entries: 0.1,
        lost_acks: 0.05,
        ..Faults::default()
    });
    let producer = builder(&kinesis)
        .aggregation(Aggregation::SameKey {
            max_bytes: 2_000,
            max_records: 50,
        })
        .build()
        .await
        .unwrap();
    // 10 keys, 3,000 records: aggregates of at most 50 records or 2,000 bytes.
    let records: Vec<Record> = (0..3_000u64)
        .map(|n| Record::new(format!("key-{}", n % 10), format!("record {n:08}")))
        .collect();
    let mut tickets = Vec::new();
    for record in &records {
        tickets.push(producer.send(record.clone()).await.unwrap());
    }
    let mut deliveries = Vec::new();
    for ticket in tickets {
        deliveries.push(ticket.await.unwrap());
    }
    producer.shutdown(Duration::from_secs(10)).await;

    // What a KCL consumer reads from each shard, with kcl_kpl predicting the KCL exactly.
    let shards = kinesis.shards();
    let mut seen: HashMap<(String, String, u64), Vec<u8>> = HashMap::new();
    for stored in kinesis.all_records() {
        let shard = shards
            .iter()
            .find(|s| s.shard_id == stored.shard_id)
            .unwrap();
        let range = kcl_kpl::HashKeyRange::new(shard.starting_hash_key, shard.ending_hash_key);
        let view = kcl_kpl::kcl_view(&stored.data, &stored.partition_key, range);
        assert!(
            matches!(
                view.outcome,
                kcl_kpl::Outcome::Deaggregated | kcl_kpl::Outcome::PassedThrough(_)
            ),
            "{:?}",
            view.outcome
        );
        for delivered in view.records {
            let key = (
                stored.shard_id.clone(),
                stored.sequence_number.clone(),
                delivered.sub_sequence_number,
            );
            seen.insert(key, delivered.data.clone());
        }
    }
    let mut aggregated = 0;
    for (record, delivery) in records.iter().zip(&deliveries) {
        let sub = delivery.sub_sequence_number.map_or(0, u64::from);
        aggregated += usize::from(delivery.sub_sequence_number.is_some());
        let key = (
            delivery.shard_id.clone(),
            delivery.sequence_number.clone(),
            sub,
        );
        assert_eq!(seen.get(&key), Some(&record.data.to_vec()), "{delivery:?}");
    }
    assert!(
        aggregated > 2_900,
        "nearly every record went in an aggregate: {aggregated}"
    );
    let calls = kinesis.stats().put_records_calls;
    assert!(
        calls < 20,
        "3,000 records in aggregates of 50 need few calls: {calls}"
    );
}

#[tokio::test(start_paused = true)]
async fn aggregation_is_refused_on_a_stream_that_ignores_partition_keys() {
    let kinesis = FakeKinesis::new("s", 2).with_distribution(kcl_producer::api::Distribution::Auto);
    let refused = builder(&kinesis)
        .aggregation(Aggregation::same_key())
        .build()
        .await;
    assert!(
        matches!(
            &refused,
            Err(kcl_producer::BuildError::AggregationOnAuto { .. })
        ),
        "{:?}",
        refused.err()
    );
    assert!(
        builder(&kinesis).build().await.is_ok(),
        "without aggregation it works"
    );
}

/// Panics in its first call, after storing nothing; a correct client afterwards.
struct PanicsOnce(FakeKinesis, std::sync::atomic::AtomicBool);

impl KinesisApi for PanicsOnce {
    async fn put_records(
        &self,
        stream: &StreamRef,
        entries: &[Record],
    ) -> Result<Vec<EntryOutcome>, CallError> {
        if !self.1.swap(true, std::sync::atomic::Ordering::SeqCst) {
            panic!("a client bug");
        }
        self.0.put_records(stream, entries).await
    }

    async fn describe_stream_summary(
        &self,
        stream: &StreamRef,
    ) -> Result<StreamSummary, CallError> {
        self.0.describe_stream_summary(stream).await
    }

    async fn list_shards(&self, stream: &StreamRef) -> Result<Vec<Shard>, CallError> {
        self.0.list_shards(stream).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_that_panics_in_a_call_costs_a_retry_not_the_records() {
    let kinesis = FakeKinesis::new("s", 1);
    let client = PanicsOnce(kinesis.clone(), std::sync::atomic::AtomicBool::new(false));
    let producer = Producer::builder(client, stream()).build().await.unwrap();
    let tickets: Vec<_> = (0..3)
        .map(|n| producer.try_send(record(n)).unwrap())
        .collect();
    for ticket in tickets {
        let delivery = ticket.await.unwrap();
        assert_eq!(delivery.attempts, 2);
        assert!(
            delivery.maybe_duplicated,
            "the panicked call's outcome is unknown"
        );
    }
    assert_eq!(kinesis.all_records().len(), 3);
}

/// producer.md T3 at its full size: 200,000 records with unique ids under the fault mix of the
/// test plan (10 % of entries throttled, 5 % `InternalFailure`, 2 % of calls answered 500, 1 %
/// of acknowledgements lost): every record stored, every ticket resolved, duplicates only where
/// flagged and never more than the entries of calls whose answer was lost.
#[tokio::test(start_paused = true)]
async fn two_hundred_thousand_records_under_the_test_plans_faults_lose_nothing() {
    let faults = Faults {
        throttled_entries: 0.10,
        failed_entries: 0.05,
        server_errors: 0.02,
        lost_acks: 0.01,
        ..Faults::default()
    };
    let kinesis = FakeKinesis::new("s", 4).with_faults(faults).with_seed(8);
    let producer = producer(&kinesis).await;
    let total = 200_000u64;
    let mut tickets = Vec::with_capacity(total as usize);
    for n in 0..total {
        tickets.push(producer.send(record(n)).await.unwrap());
    }
    let mut flagged = 0;
    for ticket in tickets {
        flagged += u64::from(ticket.await.expect("no limit: delivered").maybe_duplicated);
    }
    let stats = producer.stats();
    let report = producer.shutdown(Duration::from_secs(60)).await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.delivered, total);
    let mut copies: HashMap<u64, u64> = HashMap::new();
    for stored in kinesis.all_records() {
        *copies.entry(number(&stored.data)).or_default() += 1;
    }
    assert_eq!(
        copies.len() as u64,
        total,
        "lost: {}",
        total - copies.len() as u64
    );
    let duplicates: u64 = copies.values().map(|c| c - 1).sum();
    assert!(duplicates > 0, "lost acknowledgements were injected");
    assert!(
        duplicates <= flagged,
        "{duplicates} duplicates, {flagged} flagged"
    );
    assert!(
        stats.calls_ambiguous > 0 && stats.entries_throttled > 0,
        "{stats:?}"
    );
}

/// producer.md T1b and T14 at light load (100 records/s for 10 s, linger 100 ms, on the paused
/// clock): one call per linger at most (plus one), and every record delivered within the
/// linger and the call's 20 ms.
#[tokio::test(start_paused = true)]
async fn at_light_load_calls_leave_once_per_linger_and_records_wait_no_longer() {
    let kinesis = FakeKinesis::new("s", 4).with_faults(Faults {
        latency: Duration::from_millis(20),
        ..Faults::default()
    });
    let producer = producer(&kinesis).await;
    let mut waiters = Vec::new();
    for n in 0..1_000u64 {
        let sent = tokio::time::Instant::now();
        let ticket = producer.send(record(n)).await.unwrap();
        // Each record's wait, from `send` to its delivery.
        waiters.push(tokio::spawn(async move {
            ticket.await.unwrap();
            sent.elapsed()
        }));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut longest = Duration::ZERO;
    for waiter in waiters {
        longest = longest.max(waiter.await.unwrap());
    }
    // 10 s of records: at most one call per 100 ms linger, plus one.
    let calls = kinesis.stats().put_records_calls;
    assert!(calls <= 101, "{calls} calls");
    assert!(
        calls >= 90,
        "{calls} calls: records are not held back longer than the linger"
    );
    assert!(
        producer
            .shutdown(Duration::from_secs(1))
            .await
            .is_complete()
    );
    assert!(
        longest <= Duration::from_millis(100 + 20 + 1),
        "a record waited {longest:?}"
    );
}
