//! The blocking producer, on real time (its runtime is its own): every record delivered from
//! plain threads, from inside another tokio runtime, with a full buffer, and when dropped.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use kcl_producer::api::{Distribution, StreamRef};
use kcl_producer::testing::{FakeKinesis, Faults};
use kcl_producer::{Aggregation, BuildError, Producer, Record, SendError, TrySendError};

fn record(n: u64) -> Record {
    Record::new(format!("key-{}", n % 100), format!("record {n:08}"))
}

fn payloads(kinesis: &FakeKinesis) -> Vec<Vec<u8>> {
    kinesis
        .all_records()
        .into_iter()
        .map(|stored| stored.data.to_vec())
        .collect()
}

fn quick(kinesis: &FakeKinesis) -> kcl_producer::Builder<FakeKinesis> {
    Producer::builder(kinesis.clone(), StreamRef::name("s"))
        .linger(Duration::from_millis(5))
        .backoff(Duration::from_millis(1), Duration::from_millis(20))
}

#[test]
fn four_threads_send_under_faults_and_every_record_is_stored() {
    let faults = Faults {
        throttled_entries: 0.1,
        server_errors: 0.05,
        ..Faults::default()
    };
    let kinesis = FakeKinesis::new("s", 2).with_faults(faults).with_seed(5);
    let producer = quick(&kinesis).build_blocking().unwrap();
    std::thread::scope(|scope| {
        for thread in 0..4u64 {
            let producer = &producer;
            scope.spawn(move || {
                let tickets: Vec<_> = (0..500)
                    .map(|n| producer.send(record(thread * 1_000 + n)).unwrap())
                    .collect();
                for ticket in tickets {
                    ticket.wait().expect("no limit on attempts: delivered");
                }
            });
        }
    });
    assert_eq!(producer.stats().delivered, 2_000);
    let report = producer.shutdown(Duration::from_secs(5));
    assert!(report.is_complete(), "{report:?}");
    let stored: HashSet<Vec<u8>> = payloads(&kinesis).into_iter().collect();
    for thread in 0..4u64 {
        for n in 0..500 {
            let data = format!("record {:08}", thread * 1_000 + n).into_bytes();
            assert!(stored.contains(&data), "record {thread}/{n} missing");
        }
    }
}

#[test]
fn it_works_from_a_thread_that_runs_another_tokio_runtime() {
    let kinesis = FakeKinesis::new("s", 1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A synchronous hook inside an async runtime: no "runtime within a runtime" panic.
    let report = runtime.block_on(async {
        let producer = quick(&kinesis).build_blocking().unwrap();
        let ticket = producer.send(record(1)).unwrap();
        producer.flush();
        let delivery = ticket.wait().unwrap();
        assert_eq!(delivery.shard_id, "shardId-000000000000");
        producer.shutdown(Duration::from_secs(5))
    });
    assert!(report.is_complete());
    assert_eq!(report.delivered, 1);
}

#[test]
fn send_blocks_while_the_buffer_is_full_and_try_send_hands_the_record_back() {
    let faults = Faults {
        latency: Duration::from_millis(200),
        ..Faults::default()
    };
    let kinesis = FakeKinesis::new("s", 1).with_faults(faults);
    let producer = quick(&kinesis)
        .max_buffered_records(2)
        .build_blocking()
        .unwrap();
    let first = producer.send(record(1)).unwrap();
    let second = producer.send(record(2)).unwrap();
    match producer.try_send(record(3)) {
        Err(TrySendError::Full(back)) => assert_eq!(back.data, record(3).data),
        other => panic!("expected Full, got {other:?}"),
    }
    let started = Instant::now();
    let third = producer.send(record(3)).unwrap();
    // The third waited for the first two to be answered (one call of at least 200 ms).
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    for ticket in [first, second, third] {
        ticket.wait().unwrap();
    }
    assert!(producer.shutdown(Duration::from_secs(5)).is_complete());
    assert_eq!(kinesis.all_records().len(), 3);
}

#[test]
fn a_dropped_producer_still_delivers_what_it_took() {
    let kinesis = FakeKinesis::new("s", 2);
    let producer = quick(&kinesis)
        .linger(Duration::from_secs(3_600))
        .build_blocking()
        .unwrap();
    let tickets: Vec<_> = (0..10).map(|n| producer.send(record(n)).unwrap()).collect();
    drop(producer);
    for ticket in tickets {
        ticket.wait().expect("the drop sends what was taken");
    }
    assert_eq!(kinesis.all_records().len(), 10);
}

#[test]
fn records_after_shutdown_or_invalid_ones_are_handed_back_and_settings_errors_surface() {
    let kinesis = FakeKinesis::new("s", 1);
    let producer = quick(&kinesis).build_blocking().unwrap();
    match producer.send(Record::new("", "no key")) {
        Err(SendError::Invalid(back, _)) => assert_eq!(&back.data[..], b"no key"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(producer.shutdown(Duration::from_secs(1)).is_complete());

    let auto = FakeKinesis::new("s", 1).with_distribution(Distribution::Auto);
    match quick(&auto)
        .aggregation(Aggregation::same_key())
        .build_blocking()
    {
        Err(BuildError::AggregationOnAuto { .. }) => {}
        Err(other) => panic!("expected a settings error, got {other}"),
        Ok(_) => panic!("aggregation on AUTO must be refused"),
    }
}
