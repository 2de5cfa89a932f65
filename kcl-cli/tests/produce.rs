//! `kcl produce` against the fake Kinesis of `common::kinesis` (which keeps every record it
//! stored): counted runs, the rate and the duration, SIGTERM while producing fast, an outage
//! at shutdown, stdin, and argument errors.
#![cfg(unix)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::kinesis::{Kinesis, error};
use common::{kcl, kcl_without_aws, text};

/// `kcl produce --stream s --endpoint URL ...` with no AWS settings from the environment.
fn produce(kinesis: &Kinesis) -> Command {
    let mut command = kcl_without_aws("produce");
    command.args(["--stream", "s", "--endpoint", kinesis.url()]);
    command
}

/// The numbers of the final report line (`kcl produce: report: accepted=N ...`).
fn report(stderr: &str) -> HashMap<String, f64> {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("kcl produce: report: "))
        .unwrap_or_else(|| panic!("no report in:\n{stderr}"));
    line.split_whitespace()
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap();
            (key.to_owned(), value.parse().unwrap())
        })
        .collect()
}

/// The run id and number of a generated record: `produce-<run>-<n>` and dots.
fn generated(data: &[u8]) -> (String, u64) {
    let text = std::str::from_utf8(data).unwrap().trim_end_matches('.');
    let mut parts = text.splitn(3, '-');
    assert_eq!(parts.next(), Some("produce"), "{text}");
    let run = parts.next().unwrap().to_owned();
    let n = parts.next().unwrap();
    assert_eq!(n.len(), 12, "{text}");
    (run, n.parse().unwrap())
}

/// Asserts that the report accounts for every record taken, and returns it.
fn accounted(stderr: &str) -> HashMap<String, f64> {
    let r = report(stderr);
    assert_eq!(
        r["accepted"],
        r["delivered"] + r["failed"] + r["unsent"] + r["in_doubt"],
        "every record taken is delivered, failed, unsent or in doubt:\n{stderr}"
    );
    assert!(
        !stderr.contains("does not add up"),
        "the tickets agree with the shutdown report:\n{stderr}"
    );
    r
}

#[test]
fn a_counted_run_delivers_exactly_that_many_records_spread_over_the_keys() {
    let kinesis = Kinesis::start(4);
    let output = produce(&kinesis)
        .args([
            "--count", "1000", "--rate", "0", "--keys", "10", "--size", "64",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout, "", "nothing on stdout");
    let r = accounted(&stderr);
    assert_eq!(
        (r["accepted"], r["delivered"]),
        (1000.0, 1000.0),
        "{stderr}"
    );
    assert!(stderr.contains("--count reached"), "{stderr}");

    let stored = kinesis.stored();
    assert_eq!(stored.len(), 1000);
    let mut runs = HashSet::new();
    let mut numbers = Vec::new();
    let mut per_key = BTreeMap::<String, usize>::new();
    for record in &stored {
        assert_eq!(record.data.len(), 64);
        let (run, n) = generated(&record.data);
        assert_eq!(record.partition_key, format!("key-{}", n % 10));
        runs.insert(run);
        numbers.push(n);
        *per_key.entry(record.partition_key.clone()).or_default() += 1;
    }
    assert_eq!(runs.len(), 1, "one run id");
    numbers.sort_unstable();
    assert_eq!(numbers, (0..1000).collect::<Vec<_>>(), "each number once");
    assert_eq!(per_key.len(), 10);
    assert!(per_key.values().all(|&n| n == 100), "{per_key:?}");
    let shards: HashSet<&str> = stored.iter().map(|s| s.shard_id.as_str()).collect();
    assert!(
        shards.len() > 1,
        "the keys reach several shards: {shards:?}"
    );
    let calls = kinesis.calls();
    assert!(calls.iter().all(|c| c.len() <= 500));
    assert!(calls.len() <= 4, "batched: {} calls", calls.len());
}

#[test]
fn the_rate_and_the_duration_are_kept() {
    let kinesis = Kinesis::start(1);
    let started = Instant::now();
    let output = produce(&kinesis)
        .args(["--rate", "50", "--duration", "1", "--size", "30"])
        .output()
        .unwrap();
    let took = started.elapsed();
    let (_, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("--duration reached"), "{stderr}");
    let r = accounted(&stderr);
    let delivered = r["delivered"];
    assert!(
        (40.0..=52.0).contains(&delivered),
        "about 50 records in 1 s at 50/s: {delivered}"
    );
    assert_eq!(kinesis.stored().len() as f64, delivered);
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(4),
        "{took:?}"
    );
}

#[test]
fn sigterm_while_producing_fast_stops_within_the_deadline_and_accounts_for_every_record() {
    let kinesis = Kinesis::start(2);
    let mut child = produce(&kinesis)
        .args([
            "--rate",
            "50000",
            "--keys",
            "100",
            "--shutdown-timeout",
            "5",
        ])
        .args(["--progress", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let reader = {
        let stderr = Arc::clone(&stderr);
        let mut pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buffer = [0; 4096];
            while let Ok(n) = pipe.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                stderr
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        })
    };
    // Producing for a while: at least one progress line, and records stored.
    let started = Instant::now();
    while !(stderr.lock().unwrap().contains(" s: accepted ") && kinesis.stored().len() > 1000) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no progress: {}",
            stderr.lock().unwrap()
        );
        if let Some(status) = child.try_wait().unwrap() {
            std::thread::sleep(Duration::from_millis(100));
            panic!("exited early ({status}): {}", stderr.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let signalled = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = signalled.elapsed();
    reader.join().unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let stderr = stderr.lock().unwrap().clone();
    assert_eq!(stdout, "");
    assert!(
        took < Duration::from_secs(6),
        "exit {took:?} after SIGTERM, within the 5 s shutdown timeout (and a margin)"
    );
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
    let r = accounted(&stderr);
    eprintln!("SIGTERM: exit {code:?} {took:?} after the signal; {r:?}");
    // The stub holds every delivered record, once, and nothing else but maybe in-doubt ones.
    let stored = kinesis.stored();
    let numbers: HashSet<u64> = stored.iter().map(|s| generated(&s.data).1).collect();
    assert_eq!(numbers.len(), stored.len(), "no record stored twice");
    assert!(stored.len() as f64 >= r["delivered"]);
    assert!(stored.len() as f64 <= r["delivered"] + r["in_doubt"]);
    assert!(numbers.iter().all(|&n| (n as f64) < r["accepted"]));
    let all_delivered = r["delivered"] == r["accepted"];
    assert_eq!(code, Some(if all_delivered { 0 } else { 1 }), "{stderr}");
}

#[test]
fn an_outage_at_shutdown_reports_every_record_unsent_or_in_doubt_by_the_deadline() {
    // The stream exists, but every PutRecords call fails with a 500.
    let kinesis = Kinesis::builder(2)
        .intercept(|request| {
            (request.header("x-amz-target") == Some("Kinesis_20131202.PutRecords"))
                .then(|| error(500, "InternalFailure", "down"))
        })
        .start();
    let started = Instant::now();
    let output = produce(&kinesis)
        .args(["--count", "2000", "--rate", "0", "--shutdown-timeout", "2"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let took = started.elapsed();
    let (stdout, stderr) = text(&output);
    eprintln!("outage: {took:?}\n{stderr}");
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stdout, "");
    assert!(
        took < Duration::from_millis(2500),
        "{took:?}: the 2 s deadline, and not much more"
    );
    let r = accounted(&stderr);
    assert_eq!(r["accepted"], 2000.0);
    assert_eq!((r["delivered"], r["failed"]), (0.0, 0.0), "{stderr}");
    assert_eq!(r["unsent"] + r["in_doubt"], 2000.0, "{stderr}");
    assert!(kinesis.stored().is_empty());
    assert!(kinesis.calls().len() > 4, "the calls were retried");
    assert!(
        stderr.contains("error: 2000 of 2000 records taken were not delivered"),
        "{stderr}"
    );
}

#[test]
fn stdin_lines_are_the_records() {
    let kinesis = Kinesis::start(1);
    let mut child = produce(&kinesis)
        .args(["--stdin", "--rate", "0", "--keys", "3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"alpha\n\nbeta\r\ngamma\ndelta")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout, "");
    assert!(stderr.contains("end of stdin"), "{stderr}");
    let r = accounted(&stderr);
    assert_eq!(r["delivered"], 4.0);
    let stored: Vec<(String, String)> = kinesis
        .stored()
        .into_iter()
        .map(|s| (s.partition_key, String::from_utf8(s.data).unwrap()))
        .collect();
    let expected = [
        ("key-0", "alpha"),
        ("key-1", "beta"),
        ("key-2", "gamma"),
        ("key-0", "delta"),
    ];
    assert_eq!(
        stored,
        expected.map(|(k, d)| (k.to_owned(), d.to_owned())),
        "empty lines skipped, line breaks removed"
    );

    // --count stops after that many lines.
    let kinesis = Kinesis::start(1);
    let mut child = produce(&kinesis)
        .args(["--stdin", "--rate", "0", "--count", "2"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let _ = input.write_all(b"one\ntwo\nthree\nfour\n");
    drop(input);
    let output = child.wait_with_output().unwrap();
    let (_, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let data: Vec<Vec<u8>> = kinesis.stored().into_iter().map(|s| s.data).collect();
    assert_eq!(data, [b"one".to_vec(), b"two".to_vec()]);
}

#[test]
fn argument_errors() {
    let kinesis = Kinesis::start(1);
    for (args, expected) in [
        (
            &["--size", "10"][..],
            "--size 10: a generated record needs at least 29 bytes",
        ),
        (&["--stdin", "--size", "100"][..], "cannot be used with"),
        (
            &["--rate=-1"][..],
            "--rate -1: expected a number of records per second",
        ),
        (&["--count", "0"][..], "--count must be at least 1"),
        (&["--keys", "0"][..], "--keys"),
        (
            &["--duration=-2"][..],
            "--duration -2: not a number of seconds",
        ),
        (
            &["--size", "2000000", "--count", "1"][..],
            "--size 2000000: the record has 2000005 bytes",
        ),
    ] {
        let output = produce(&kinesis).args(args).output().unwrap();
        let (stdout, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(stdout, "");
    }
    assert!(kinesis.calls().is_empty(), "nothing was sent");

    let output = kcl().args(["produce", "--count", "1"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).1.contains("--stream"));
}

#[test]
fn a_missing_stream_is_reported_before_anything_is_sent() {
    let kinesis = Kinesis::builder(1)
        .intercept(|_| {
            Some(error(
                400,
                "ResourceNotFoundException",
                "Stream s under account 000000000000 not found.",
            ))
        })
        .start();
    let output = produce(&kinesis).args(["--count", "5"]).output().unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot read stream s (DescribeStreamSummary): ResourceNotFoundException"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: is the emulator running at"),
        "{stderr}"
    );
    assert!(kinesis.calls().is_empty());
}

/// Records per second of `kcl produce --rate 0` into the stub (100,000 records of 100 bytes on
/// 4 shards), and the sizes of its calls. Run with `--ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn throughput_against_the_stub() {
    let kinesis = Kinesis::start(4);
    let started = Instant::now();
    let output = produce(&kinesis)
        .args(["--rate", "0", "--count", "100000", "--progress", "1"])
        .output()
        .unwrap();
    let took = started.elapsed();
    let (_, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let r = accounted(&stderr);
    let sizes: Vec<usize> = kinesis.calls().iter().map(Vec::len).collect();
    println!(
        "100000 records in {:.2} s ({:.0} records/s), {} calls, {:.0} entries per call on average",
        took.as_secs_f64(),
        r["delivered"] / took.as_secs_f64(),
        sizes.len(),
        sizes.iter().sum::<usize>() as f64 / sizes.len() as f64
    );
}
