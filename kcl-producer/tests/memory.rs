//! Memory is bounded by the configured buffer (producer.md T4), in a process of its own (this
//! file holds one test): with every `PutRecords` call stalled, 1 KiB records offered as fast as
//! `try_send` takes them fill a 16 MiB buffer and no more; the resident set grows by at most
//! 16 MiB x 1.25 + 15 MiB; `try_send` answers `Full` at once; `send` resumes when the stall
//! ends, and every record is delivered.

use std::time::{Duration, Instant};

use kcl_producer::api::StreamRef;
use kcl_producer::testing::{FakeKinesis, Faults};
use kcl_producer::{Producer, Record, TrySendError};

/// The process's peak resident set (VmHWM), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/self/status");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a number of kB");
    kib * 1024
}

#[test]
fn a_stalled_stream_fills_the_buffer_and_no_more() {
    const MIB: u64 = 1024 * 1024;
    const BUFFER: usize = 16 * 1024 * 1024;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let kinesis = FakeKinesis::new("s", 4).with_faults(Faults {
            latency: Duration::from_secs(3),
            ..Faults::default()
        });
        let producer = Producer::builder(kinesis.clone(), StreamRef::name("s"))
            .max_buffered_bytes(BUFFER)
            .build()
            .await
            .unwrap();
        let before = peak_rss();
        // Each record has its own 1 KiB, as an application's would.
        let data = || vec![b'x'; 1024];
        let mut tickets = Vec::new();
        let (mut taken, mut bytes_taken) = (0u64, 0u64);
        // Offer records as fast as they are taken, until the buffer says Full.
        let full_after = loop {
            let record = Record::new(format!("key-{}", taken % 1_000), data());
            let size = (record.data.len() + record.partition_key.len()) as u64;
            let started = Instant::now();
            match producer.try_send(record) {
                Ok(ticket) => {
                    tickets.push(ticket);
                    taken += 1;
                    bytes_taken += size;
                    assert!(bytes_taken <= BUFFER as u64, "taken past the buffer");
                    if taken % 1_000 == 0 {
                        // Let the producer's task take them and start its calls.
                        tokio::task::yield_now().await;
                    }
                }
                Err(TrySendError::Full(_)) => break started.elapsed(),
                Err(other) => panic!("{other}"),
            }
        };
        // Keep offering for a while: nothing more is taken while the calls are stalled.
        for n in 0..100_000u64 {
            let record = Record::new(format!("key-{n}"), data());
            assert!(matches!(
                producer.try_send(record),
                Err(TrySendError::Full(_))
            ));
        }
        let grown = peak_rss().saturating_sub(before);
        eprintln!(
            "taken {taken} records of 1 KiB, Full answered in {full_after:?}, resident set grew {:.1} MiB",
            grown as f64 / MIB as f64
        );
        assert!(bytes_taken <= BUFFER as u64, "{bytes_taken} bytes taken");
        assert!(bytes_taken > BUFFER as u64 * 9 / 10, "{bytes_taken} bytes taken");
        assert!(full_after < Duration::from_millis(1), "{full_after:?}");
        assert!(
            grown <= 16 * MIB * 5 / 4 + 15 * MIB,
            "the resident set grew {grown} bytes"
        );
        // `send` waits for room, and goes on once the stalled calls answer.
        let started = Instant::now();
        let ticket = producer
            .send(Record::new("late", data()))
            .await
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(500));
        tickets.push(ticket);
        for ticket in tickets {
            ticket.await.expect("delivered after the stall");
        }
        assert!(producer.shutdown(Duration::from_secs(30)).await.is_complete());
        assert_eq!(kinesis.all_records().len() as u64, taken + 1);
    });
}
