//! The disk spool against `FakeKinesis`: a producer that dies without a shutdown (its runtime
//! dropped mid-call, as a kill leaves things) is followed by one on the same directory that
//! sends what the first had not delivered; the lock, the shutdown report, the disk budget.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kcl_producer::api::StreamRef;
use kcl_producer::limits::StreamLimits;
use kcl_producer::testing::{FakeKinesis, Faults};
use kcl_producer::{BuildError, FailReason, Fsync, Producer, Record, SpoolConfig, TrySendError};

/// A directory removed at the end of the test.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "kcl-spool-test-{name}-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn record(n: u64) -> Record {
    Record::new(format!("key-{}", n % 10), format!("record {n:08}"))
}

fn number(data: &[u8]) -> u64 {
    std::str::from_utf8(&data[7..]).unwrap().parse().unwrap()
}

/// Calls that never come back (within a test).
fn stalled() -> Faults {
    Faults {
        latency: Duration::from_secs(3600),
        ..Faults::default()
    }
}

async fn spooled_producer(kinesis: &FakeKinesis, dir: &Path) -> Producer {
    Producer::builder(kinesis.clone(), StreamRef::name("s"))
        .linger(Duration::from_millis(1))
        .spool(SpoolConfig::new(dir))
        .build()
        .await
        .unwrap()
}

/// How many times each record number is in the stream.
fn copies(kinesis: &FakeKinesis) -> HashMap<u64, u64> {
    let mut copies = HashMap::new();
    for stored in kinesis.all_records() {
        *copies.entry(number(&stored.data)).or_default() += 1;
    }
    copies
}

#[test]
fn a_producer_that_dies_mid_call_leaves_its_records_for_the_next_one_on_the_same_spool() {
    let dir = TempDir::new("crash");
    let kinesis = FakeKinesis::new("s", 2);
    let (delivered, stuck) = (100u64, 400u64);

    // The first life: 100 records delivered, then 400 in calls that never come back, and the
    // process gone (its runtime dropped with the task and the calls in it; no shutdown).
    let first = runtime();
    first.block_on(async {
        let producer = spooled_producer(&kinesis, &dir.0).await;
        assert_eq!(producer.recovered(), 0);
        let mut tickets = Vec::new();
        for n in 0..delivered {
            tickets.push(producer.send(record(n)).await.unwrap());
        }
        for ticket in tickets {
            ticket.await.unwrap();
        }
        kinesis.set_faults(stalled());
        for n in delivered..delivered + stuck {
            drop(producer.send(record(n)).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(producer);
    });
    drop(first);
    assert_eq!(kinesis.all_records().len() as u64, delivered);

    // The next life, on the same directory: the 400 go first, and nothing else.
    kinesis.set_faults(Faults::default());
    let second = runtime();
    second.block_on(async {
        let producer = spooled_producer(&kinesis, &dir.0).await;
        assert_eq!(
            producer.recovered(),
            stuck,
            "exactly the unanswered records"
        );
        producer.flush().await;
        let stats = producer.stats();
        assert_eq!(
            (stats.recovered_delivered, stats.recovered_failed),
            (stuck, 0)
        );
        let report = producer.shutdown(Duration::from_secs(10)).await;
        assert!(report.is_complete(), "{report:?}");
    });
    let copies = copies(&kinesis);
    for n in 0..delivered + stuck {
        assert_eq!(copies.get(&n), Some(&1), "record {n} stored once");
    }

    // Everything answered: the spool is empty, and a third producer has nothing to send.
    second.block_on(async {
        let producer = spooled_producer(&kinesis, &dir.0).await;
        assert_eq!(producer.recovered(), 0);
        producer.shutdown(Duration::from_secs(1)).await;
    });
}

#[test]
fn a_second_producer_on_a_spool_in_use_is_refused_at_build() {
    let dir = TempDir::new("lock");
    let kinesis = FakeKinesis::new("s", 1);
    runtime().block_on(async {
        let first = spooled_producer(&kinesis, &dir.0).await;
        let second = Producer::builder(kinesis.clone(), StreamRef::name("s"))
            .spool(SpoolConfig::new(&dir.0))
            .build()
            .await;
        match second {
            Err(error @ BuildError::SpoolLocked { .. }) => {
                assert!(
                    error.to_string().contains("in use by another producer"),
                    "{error}"
                )
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        first.shutdown(Duration::from_secs(1)).await;
        let third = spooled_producer(&kinesis, &dir.0).await;
        third.shutdown(Duration::from_secs(1)).await;
    });
}

#[test]
fn records_undelivered_at_the_shutdown_deadline_stay_in_the_spool_and_go_with_the_next_producer() {
    let dir = TempDir::new("shutdown");
    let kinesis = FakeKinesis::new("s", 2).with_faults(stalled());
    let rt = runtime();
    rt.block_on(async {
        let producer = spooled_producer(&kinesis, &dir.0).await;
        let mut tickets = Vec::new();
        for n in 0..50 {
            tickets.push(producer.send(record(n)).await.unwrap());
        }
        let report = producer.shutdown(Duration::from_millis(100)).await;
        assert_eq!(report.spooled, 50, "{report:?}");
        assert!(report.unsent.is_empty() && report.in_doubt.is_empty());
        assert!(!report.is_complete());
        for ticket in tickets {
            let failed = ticket.await.unwrap_err();
            assert_eq!(failed.reason, FailReason::Spooled);
        }
    });
    kinesis.set_faults(Faults::default());
    rt.block_on(async {
        let producer = spooled_producer(&kinesis, &dir.0).await;
        assert_eq!(producer.recovered(), 50);
        let report = producer.shutdown(Duration::from_secs(10)).await;
        assert!(report.is_complete(), "{report:?}");
    });
    assert_eq!(copies(&kinesis).len(), 50);
}

#[test]
fn a_full_disk_budget_refuses_try_send_and_holds_send_until_segments_are_deleted() {
    let dir = TempDir::new("budget");
    // Every call throttled: the records stay held, sent again and again.
    let kinesis = FakeKinesis::new("s", 1).with_faults(Faults {
        throttled_calls: 1.0,
        ..Faults::default()
    });
    let mut limits = StreamLimits::default();
    limits.max_record_bytes = 1000;
    let rt = runtime();
    rt.block_on(async {
        let producer = Producer::builder(kinesis.clone(), StreamRef::name("s"))
            .linger(Duration::from_millis(1))
            .backoff(Duration::from_millis(1), Duration::from_millis(5))
            .limits(limits)
            .spool(
                SpoolConfig::new(&dir.0)
                    .fsync(Fsync::Never)
                    .max_bytes(64 * 1024)
                    .segment_bytes(4096),
            )
            .build()
            .await
            .unwrap();
        let mut taken = 0u64;
        let full = loop {
            let data = vec![b'x'; 900];
            match producer.try_send(Record::new("k", data)) {
                Ok(ticket) => {
                    drop(ticket);
                    taken += 1;
                }
                Err(TrySendError::Full(record)) => break record,
                Err(other) => panic!("{other:?}"),
            }
            assert!(taken < 1000, "the disk budget never filled");
        };
        // 64 KiB of frames of 921 bytes (8 of header, 8 of id, 2 + 1 of key, 2 of no hash
        // key, 900 of data), far below the memory budget.
        assert_eq!(taken, 64 * 1024 / 921);
        let waiting = tokio::time::timeout(Duration::from_millis(50), producer.send(full)).await;
        assert!(waiting.is_err(), "send waits while the disk is full");
        kinesis.set_faults(Faults::default());
        producer.flush().await;
        assert!(
            producer.try_send(record(0)).is_ok(),
            "room again once delivered"
        );
        let report = producer.shutdown(Duration::from_secs(10)).await;
        assert!(report.is_complete(), "{report:?}");
    });
}

#[test]
fn a_record_taken_with_try_send_is_on_disk_when_its_ticket_is_returned() {
    let dir = TempDir::new("try-send");
    let kinesis = FakeKinesis::new("s", 1).with_faults(stalled());
    let rt = runtime();
    rt.block_on(async {
        let producer = spooled_producer(&kinesis, &dir.0).await;
        drop(producer.try_send(record(7)).unwrap());
        let segments: Vec<_> = std::fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "seg"))
            .collect();
        let bytes = std::fs::read(&segments[0]).unwrap();
        assert!(
            bytes.windows(15).any(|w| w == b"record 00000007"),
            "the frame is in the segment"
        );
        producer.shutdown(Duration::from_millis(10)).await;
    });
}
