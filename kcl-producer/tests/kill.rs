//! T11: a producer process killed with SIGKILL mid-run. The test binary runs itself as the
//! writer (the ignored test `writer`, told what to do by environment variables): it sends
//! numbered records through the producer to the HTTP stub this test started, and prints the
//! number of every record taken (`send` returned its ticket) on stderr. The test kills it,
//! starts it again on the same spool directory (it replays, then sends a few more records and
//! shuts down), and reads the stub: with the spool, every number ever printed is stored (loss
//! 0); memory-only, the records buffered at the kill are lost.
#![cfg(all(unix, feature = "serve"))]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::config::{Credentials, Region};
use kcl_producer::api::StreamRef;
use kcl_producer::aws::SdkKinesis;
use kcl_producer::testing::{FakeKinesis, Faults, StubServer};
use kcl_producer::{Fsync, Producer, Record, SpoolConfig};

/// Senders in the writer, each its own task (the records they hand in meanwhile share a sync):
/// `KCL_SPOOL_SENDERS`, 32 by default.
fn senders() -> u64 {
    std::env::var("KCL_SPOOL_SENDERS").map_or(32, |b| b.parse().unwrap())
}
/// Records each sender hands in at once (`send_all`; 1: `send`), from `KCL_SPOOL_BATCH`.
fn batch() -> u64 {
    std::env::var("KCL_SPOOL_BATCH").map_or(1, |b| b.parse().unwrap())
}

/// The writer: `KCL_SPOOL_WRITER=<endpoint>`, `KCL_SPOOL_DIR` (absent: memory only),
/// `KCL_SPOOL_FSYNC` (`batch`, `never`), `KCL_SPOOL_FIRST`, `KCL_SPOOL_COUNT`.
#[test]
#[ignore = "run by the other tests as a child process"]
fn writer() {
    let Ok(endpoint) = std::env::var("KCL_SPOOL_WRITER") else {
        return;
    };
    let var = |name: &str| std::env::var(name).ok();
    let first: u64 = var("KCL_SPOOL_FIRST").unwrap().parse().unwrap();
    let count: u64 = var("KCL_SPOOL_COUNT").unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = aws_sdk_kinesis::Config::builder()
            .behavior_version_latest()
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("a", "b", None, None, "stub"))
            .endpoint_url(endpoint)
            .build();
        let client = SdkKinesis::new(aws_sdk_kinesis::Client::from_conf(config));
        let mut builder = Producer::builder(client, StreamRef::name("s"))
            .backoff(Duration::from_millis(5), Duration::from_millis(100));
        if let Some(dir) = var("KCL_SPOOL_DIR") {
            let fsync = match var("KCL_SPOOL_FSYNC").as_deref() {
                Some("never") => Fsync::Never,
                _ => Fsync::PerBatch,
            };
            builder = builder.spool(SpoolConfig::new(dir).fsync(fsync));
        }
        let producer = Arc::new(builder.build().await.unwrap());
        eprintln!("recovered {}", producer.recovered());
        let started = Instant::now();
        let mut senders = Vec::new();
        let all = self::senders();
        for sender in 0..all {
            let producer = Arc::clone(&producer);
            senders.push(tokio::spawn(async move {
                let mut n = first + sender;
                let batch = batch();
                while n < first + count {
                    let numbers: Vec<u64> = (0..batch)
                        .map(|k| n + k * all)
                        .filter(|m| *m < first + count)
                        .collect();
                    let records: Vec<Record> = numbers.iter().map(|m| record(*m)).collect();
                    let taken = producer.send_all(records).await;
                    for (m, ticket) in numbers.iter().zip(taken) {
                        drop(ticket.unwrap());
                        // One write per line: `eprintln!` writes its pieces separately, and a
                        // SIGKILL between them leaves "taken " without its number.
                        let line = format!("taken {m}\n");
                        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
                    }
                    n += batch * all;
                }
            }));
        }
        for sender in senders {
            sender.await.unwrap();
        }
        let taking = started.elapsed();
        let producer = Arc::into_inner(producer).unwrap();
        let report = producer.shutdown(Duration::from_secs(20)).await;
        eprintln!(
            "done took={count} seconds={:.3} delivered={} spooled={} unsent={} in_doubt={} failed={}",
            taking.as_secs_f64(),
            report.delivered,
            report.spooled,
            report.unsent.len(),
            report.in_doubt.len(),
            report.failed.len()
        );
    });
}

fn record(n: u64) -> Record {
    Record::new(format!("key-{}", n % 100), format!("rec {n:012}"))
}

fn number(data: &[u8]) -> u64 {
    std::str::from_utf8(&data[4..]).unwrap().parse().unwrap()
}

/// The stub on a runtime of its own thread, for as long as the test runs.
fn stub(fake: FakeKinesis) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let server = StubServer::start(fake).await.unwrap();
            tx.send(server.endpoint()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

/// What a writer printed: the numbers taken, and the last line.
#[derive(Default)]
struct Seen {
    taken: Vec<u64>,
    lines: Vec<String>,
}

struct Writer {
    child: Child,
    seen: Arc<Mutex<Seen>>,
    reader: std::thread::JoinHandle<()>,
}

fn start(endpoint: &str, spool: Option<(&Path, &str)>, first: u64, count: u64) -> Writer {
    start_with(endpoint, spool, first, count, &[])
}

fn start_with(
    endpoint: &str,
    spool: Option<(&Path, &str)>,
    first: u64,
    count: u64,
    env: &[(&str, &str)],
) -> Writer {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.envs(env.iter().copied());
    command
        .args([
            "writer",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("KCL_SPOOL_WRITER", endpoint)
        .env("KCL_SPOOL_FIRST", first.to_string())
        .env("KCL_SPOOL_COUNT", count.to_string())
        .env_remove("KCL_SPOOL_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some((dir, fsync)) = spool {
        command
            .env("KCL_SPOOL_DIR", dir)
            .env("KCL_SPOOL_FSYNC", fsync);
    }
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let lines = Arc::clone(&seen);
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let mut seen = lines.lock().unwrap();
            match line.strip_prefix("taken ").map(str::parse) {
                Some(Ok(n)) => seen.taken.push(n),
                // A line torn by the kill: its number never reached the test.
                Some(Err(_)) => seen.lines.push(line),
                None => seen.lines.push(line),
            }
        }
    });
    Writer {
        child,
        seen,
        reader,
    }
}

impl Writer {
    /// SIGKILL once it has taken `records`; returns what it printed.
    fn kill_after(mut self, records: usize) -> Seen {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.seen.lock().unwrap().taken.len() < records {
            assert!(Instant::now() < deadline, "the writer is too slow");
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the writer ended before the kill: {status}: {:?}",
                    self.seen.lock().unwrap().lines
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
        self.reader.join().unwrap();
        Arc::into_inner(self.seen).unwrap().into_inner().unwrap()
    }

    fn finish(mut self) -> Seen {
        let status = self.child.wait().unwrap();
        self.reader.join().unwrap();
        let seen = Arc::into_inner(self.seen).unwrap().into_inner().unwrap();
        assert!(status.success(), "{status}: {:?}", seen.lines);
        seen
    }
}

fn temp_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "kcl-kill-{name}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ))
}

/// Runs a writer, kills it, runs the second; returns (taken by the first, lost, duplicates).
fn kill_and_restart(spool: Option<&Path>) -> (usize, usize, u64, Vec<String>) {
    let fake = FakeKinesis::new("s", 4);
    // Calls take a while, as over a network: records wait in memory and in flight.
    fake.set_faults(Faults {
        latency: Duration::from_millis(30),
        ..Faults::default()
    });
    let endpoint = stub(fake.clone());
    let spool = spool.map(|dir| (dir, "batch"));
    let first = start(&endpoint, spool, 0, 10_000_000).kill_after(20_000);
    let second = start(&endpoint, spool, 100_000_000, 1_000).finish();
    let mut copies: HashMap<u64, u64> = HashMap::new();
    for stored in fake.all_records() {
        *copies.entry(number(&stored.data)).or_default() += 1;
    }
    let lost = first
        .taken
        .iter()
        .filter(|n| !copies.contains_key(n))
        .count();
    let duplicates = copies.values().map(|c| c - 1).sum();
    assert!(
        (100_000_000..100_001_000).all(|n| copies.contains_key(&n)),
        "the second writer stored its own records: {:?}",
        second.lines
    );
    (first.taken.len(), lost, duplicates, second.lines)
}

#[test]
fn with_the_spool_a_writer_killed_with_sigkill_loses_no_record_it_took() {
    let dir = temp_dir("spool");
    let (taken, lost, duplicates, lines) = kill_and_restart(Some(&dir));
    eprintln!(
        "spool: taken {taken}, lost {lost}, duplicates {duplicates}; second writer: {lines:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(lost, 0, "every record taken is stored");
    let recovered: u64 = lines[0]
        .strip_prefix("recovered ")
        .unwrap()
        .parse()
        .unwrap();
    assert!(recovered > 0, "the kill left records to replay: {lines:?}");
    // A duplicate is a replayed record that a call of the killed writer had stored: in flight
    // at the kill (its answer not marked), so among the replayed.
    assert!(
        duplicates <= recovered,
        "{duplicates} duplicates, {recovered} replayed"
    );
}

#[test]
fn memory_only_a_writer_killed_with_sigkill_loses_the_records_it_held() {
    let (taken, lost, duplicates, _) = kill_and_restart(None);
    eprintln!("memory only: taken {taken}, lost {lost}, duplicates {duplicates}");
    assert!(lost > 0, "the kill took buffered records with it");
}

/// The cost of the spool: one writer run to the end per row, against a stub without latency
/// (`cargo test --release -p kcl-producer --test kill throughput -- --ignored --nocapture`).
#[test]
#[ignore = "a measurement, not a check"]
fn throughput() {
    // (spool, senders, records per send_all, records)
    let rows = [
        ("memory", "32", "1", 200_000),
        ("batch", "32", "1", 200_000),
        ("never", "32", "1", 200_000),
        ("memory", "32", "100", 200_000),
        ("batch", "32", "100", 200_000),
        ("memory", "1", "1", 5_000),
        ("batch", "1", "1", 5_000),
    ];
    for (mode, senders, batch, count) in rows {
        let fake = FakeKinesis::new("s", 4);
        let endpoint = stub(fake.clone());
        let dir = temp_dir(mode);
        let spool = (mode != "memory").then_some((dir.as_path(), mode));
        let env = [("KCL_SPOOL_SENDERS", senders), ("KCL_SPOOL_BATCH", batch)];
        let seen = start_with(&endpoint, spool, 0, count, &env).finish();
        let done = seen.lines.iter().find(|l| l.starts_with("done")).unwrap();
        eprintln!("{mode}, {senders} senders, batches of {batch}: {done}");
        assert_eq!(fake.all_records().len() as u64, count);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
