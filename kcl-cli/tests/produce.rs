//! `kcl produce` against the fake Kinesis of `common::kinesis` (which keeps every record it
//! stored): counted runs, the rate and the duration, SIGTERM while producing fast, an outage
//! at shutdown, stdin, argument errors, `--aggregate` (checked by decoding the aggregates the
//! stub stored) and `--ledger` (a JSON line per record, reconciled with what the stub stored).
#![cfg(unix)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::kinesis::{Kinesis, error};
use common::{kcl, kcl_without_aws, temp_dir, text};
use serde_json::Value;

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
        r["delivered"] + r["failed"] + r["unsent"] + r["in_doubt"] + r["spooled"],
        "every record taken is delivered, failed, unsent, in doubt or spooled:\n{stderr}"
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
fn a_spool_keeps_what_an_outage_left_and_the_next_run_sends_it_first() {
    let dir = temp_dir("produce-spool");
    let spool = dir.join("spool");
    let down = Kinesis::builder(2)
        .intercept(|request| {
            (request.header("x-amz-target") == Some("Kinesis_20131202.PutRecords"))
                .then(|| error(500, "InternalFailure", "down"))
        })
        .start();
    let output = produce(&down)
        .args(["--count", "300", "--rate", "0", "--shutdown-timeout", "1"])
        .arg("--spool")
        .arg(&spool)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let r = accounted(&stderr);
    assert_eq!((r["accepted"], r["spooled"]), (300.0, 300.0), "{stderr}");
    assert_eq!(
        r["unsent"] + r["in_doubt"] + r["delivered"],
        0.0,
        "{stderr}"
    );
    assert!(stderr.contains("spooled stay in"), "{stderr}");
    assert!(down.stored().is_empty());

    // The next run, with the stream back, sends the 300 first, then its own 5.
    let up = Kinesis::start(2);
    let output = produce(&up)
        .args(["--count", "5", "--rate", "0"])
        .arg("--spool")
        .arg(&spool)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("300 records left undelivered in the spool"),
        "{stderr}"
    );
    let r = accounted(&stderr);
    assert_eq!(
        (
            r["accepted"],
            r["delivered"],
            r["recovered"],
            r["recovered_delivered"]
        ),
        (5.0, 5.0, 300.0, 300.0),
        "{stderr}"
    );
    let mut records: Vec<(String, u64)> = up.stored().iter().map(|s| generated(&s.data)).collect();
    records.sort();
    records.dedup();
    assert_eq!(records.len(), 305, "each record of both runs once");
    let runs: std::collections::HashSet<&String> = records.iter().map(|(run, _)| run).collect();
    assert_eq!(runs.len(), 2);
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

/// The JSON lines of a ledger.
fn ledger_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}")))
        .collect()
}

#[test]
fn aggregate_packs_each_key_and_the_ledger_gives_every_record_its_place_in_its_aggregate() {
    let kinesis = Kinesis::start(4);
    let dir = temp_dir("produce-aggregate");
    let ledger = dir.join("ledger.jsonl");
    let output = produce(&kinesis)
        .args([
            "--count",
            "1000",
            "--rate",
            "0",
            "--keys",
            "5",
            "--size",
            "40",
            "--aggregate",
        ])
        .arg("--ledger")
        .arg(&ledger)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout, "", "nothing on stdout");
    assert!(stderr.contains("aggregated by partition key"), "{stderr}");
    let r = accounted(&stderr);
    assert_eq!((r["accepted"], r["delivered"]), (1000.0, 1000.0));

    // Far fewer Kinesis records than records: the stub stored aggregates.
    let stored = kinesis.stored();
    let entries: usize = kinesis.calls().iter().map(Vec::len).sum();
    assert!(stored.len() < 100, "{} Kinesis records", stored.len());
    assert_eq!(
        entries,
        stored.len(),
        "every entry stored once, none retried"
    );

    // One ledger line per record, each number once, all delivered.
    let lines = ledger_lines(&std::fs::read_to_string(&ledger).unwrap());
    assert_eq!(lines.len(), 1000);
    let mut numbers: Vec<u64> = lines
        .iter()
        .map(|l| l["record"].as_u64().unwrap())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (0..1000).collect::<Vec<_>>(), "each record once");
    let aggregated = lines
        .iter()
        .filter(|l| !l["sub_sequence_number"].is_null())
        .count();
    assert_eq!(r["aggregated"], aggregated as f64, "{stderr}");
    assert!(aggregated > 900, "{aggregated} of 1000 in aggregates");

    // Grouped by the Kinesis record they went in: sub-sequence numbers 0..n, and the stored
    // aggregate holds exactly those records, in that order, under their partition key.
    let mut by_record: HashMap<(String, String), Vec<&Value>> = HashMap::new();
    for line in &lines {
        assert_eq!(line["status"], "delivered", "{line}");
        assert_eq!(line["maybe_duplicated"], false, "{line}");
        assert_eq!(line["attempts"], 1, "{line}");
        let n = line["record"].as_u64().unwrap();
        assert_eq!(line["partition_key"], format!("key-{}", n % 5), "{line}");
        let (_, number) = generated(line["data"].as_str().unwrap().as_bytes());
        assert_eq!(number, n, "{line}");
        let place = (
            line["shard_id"].as_str().unwrap().to_owned(),
            line["sequence_number"].as_str().unwrap().to_owned(),
        );
        by_record.entry(place).or_default().push(line);
    }
    assert_eq!(
        by_record.len(),
        stored.len(),
        "the ledger names every Kinesis record"
    );
    for record in &stored {
        let place = (record.shard_id.clone(), record.sequence_number.clone());
        let mut members = by_record
            .remove(&place)
            .expect("a stored record in the ledger");
        members.sort_by_key(|l| l["sub_sequence_number"].as_u64());
        if members.len() == 1 && members[0]["sub_sequence_number"].is_null() {
            // A record that went alone (a key's last record in a call), as it is.
            assert_eq!(record.data, members[0]["data"].as_str().unwrap().as_bytes());
            continue;
        }
        let subs: Vec<u64> = members
            .iter()
            .map(|l| {
                l["sub_sequence_number"]
                    .as_u64()
                    .expect("an aggregate's record")
            })
            .collect();
        assert_eq!(
            subs,
            (0..members.len() as u64).collect::<Vec<_>>(),
            "{place:?}"
        );
        let users = kcl_kpl::decode(&record.data).expect("a KPL aggregate");
        assert_eq!(users.len(), members.len(), "{place:?}");
        for (user, line) in users.iter().zip(&members) {
            assert_eq!(user.data, line["data"].as_str().unwrap().as_bytes());
            assert_eq!(user.partition_key, record.partition_key);
            assert_eq!(line["partition_key"], record.partition_key.as_str());
        }
    }
}

#[test]
fn aggregate_shard_map_packs_many_keys_per_shard_and_the_ledger_places_every_record() {
    let kinesis = Kinesis::start(4);
    let dir = temp_dir("produce-shard-map");
    let ledger = dir.join("ledger.jsonl");
    let output = produce(&kinesis)
        .args([
            "--count", "1000", "--rate", "0", "--keys", "200", "--size", "40",
        ])
        .arg("--aggregate=shard-map")
        .arg("--ledger")
        .arg(&ledger)
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("aggregated by shard"), "{stderr}");
    let r = accounted(&stderr);
    assert_eq!((r["accepted"], r["delivered"]), (1000.0, 1000.0));
    // 200 keys: same-key aggregation could not go below 200 Kinesis records per call.
    let stored = kinesis.stored();
    assert!(stored.len() < 40, "{} Kinesis records", stored.len());
    let by_place: HashMap<(String, String), &_> = stored
        .iter()
        .map(|record| {
            (
                (record.shard_id.clone(), record.sequence_number.clone()),
                record,
            )
        })
        .collect();
    let lines = ledger_lines(&std::fs::read_to_string(&ledger).unwrap());
    assert_eq!(lines.len(), 1000);
    for line in &lines {
        let place = (
            line["shard_id"].as_str().unwrap().to_owned(),
            line["sequence_number"].as_str().unwrap().to_owned(),
        );
        let record = by_place
            .get(&place)
            .expect("the ledger names a stored record");
        let data = line["data"].as_str().unwrap().as_bytes();
        match line["sub_sequence_number"].as_u64() {
            None => assert_eq!(record.data, data),
            Some(sub) => {
                let users = kcl_kpl::decode(&record.data).expect("a KPL aggregate");
                let user = &users[sub as usize];
                assert_eq!(user.data, data, "{line}");
                assert_eq!(user.partition_key, line["partition_key"].as_str().unwrap());
            }
        }
    }

    // Ordering needs one entry per key at a time, which shard-map aggregates cannot give.
    let output = produce(&kinesis)
        .args(["--count", "5", "--aggregate=shard-map", "--ordered"])
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(stderr.contains("per-key ordering"), "{stderr}");
}

#[test]
fn the_ledger_on_stdout_is_all_stdout_has_and_names_what_it_cannot_show_as_text() {
    let kinesis = Kinesis::start(2);
    let mut child = produce(&kinesis)
        .args(["--stdin", "--rate", "0", "--keys", "2", "--ledger", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"alpha\n\xff\xfe binary\ngamma\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let mut lines = ledger_lines(&stdout);
    assert_eq!(lines.len(), 3, "{stdout}");
    lines.sort_by_key(|l| l["line"].as_u64());
    assert_eq!(lines[0]["data"], "alpha");
    assert_eq!(lines[1]["data_base64"], "//4gYmluYXJ5", "not UTF-8: base64");
    assert!(lines[1].get("data").is_none());
    assert_eq!(lines[2]["data"], "gamma");
    let stored = kinesis.stored();
    for line in &lines {
        assert_eq!(line["status"], "delivered");
        assert!(line["sub_sequence_number"].is_null(), "sent alone: {line}");
        let twin = stored
            .iter()
            .find(|s| line["sequence_number"] == s.sequence_number.as_str())
            .expect("the sequence number the stub gave");
        assert_eq!(line["shard_id"], twin.shard_id.as_str());
        assert_eq!(line["partition_key"], twin.partition_key.as_str());
    }
}

#[test]
fn the_ledger_names_every_record_not_delivered_and_why() {
    let kinesis = Kinesis::builder(2)
        .intercept(|request| {
            (request.header("x-amz-target") == Some("Kinesis_20131202.PutRecords"))
                .then(|| error(500, "InternalFailure", "down"))
        })
        .start();
    let dir = temp_dir("produce-ledger-outage");
    let ledger = dir.join("ledger.jsonl");
    let output = produce(&kinesis)
        .args([
            "--count",
            "50",
            "--rate",
            "0",
            "--shutdown-timeout",
            "1",
            "--aggregate",
        ])
        .arg("--ledger")
        .arg(&ledger)
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let r = accounted(&stderr);
    let lines = ledger_lines(&std::fs::read_to_string(&ledger).unwrap());
    assert_eq!(lines.len(), 50, "every record taken has its line");
    let status = |s: &str| lines.iter().filter(|l| l["status"] == s).count() as f64;
    assert_eq!(status("unsent"), r["unsent"], "{stderr}");
    assert_eq!(status("in_doubt"), r["in_doubt"], "{stderr}");
    assert_eq!(status("unsent") + status("in_doubt"), 50.0);
    for line in &lines {
        assert!(
            line["reason"].as_str().unwrap().contains("shutdown"),
            "{line}"
        );
        assert!(line.get("sequence_number").is_none(), "{line}");
        assert_eq!(
            line["maybe_stored"], true,
            "a 500 is an unknown outcome: {line}"
        );
    }
}

#[test]
fn aggregate_is_refused_on_a_stream_with_the_auto_distribution() {
    let auto = || {
        Kinesis::builder(2)
            .intercept(|request| {
                (request.header("x-amz-target") == Some("Kinesis_20131202.DescribeStreamSummary"))
                    .then(|| {
                        common::Response::ok(
                            "application/x-amz-json-1.1",
                            r#"{"StreamDescriptionSummary":{"StreamName":"s","StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s","StreamStatus":"ACTIVE","StreamModeDetails":{"StreamMode":"ON_DEMAND"},"RetentionPeriodHours":24,"StreamCreationTimestamp":1.7E9,"EnhancedMonitoring":[{"ShardLevelMetrics":[]}],"EncryptionType":"NONE","OpenShardCount":2,"RecordDistributionStrategy":"AUTO"}}"#,
                        )
                    })
            })
            .start()
    };
    let kinesis = auto();
    let output = produce(&kinesis)
        .args(["--count", "5", "--aggregate"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains(
            "--aggregate: stream s spreads its records with the AUTO distribution (RecordDistributionStrategy AUTO), which ignores partition keys"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was sent"), "{stderr}");
    assert!(stderr.contains("run without --aggregate"), "{stderr}");
    assert_eq!(kinesis.operations(), ["DescribeStreamSummary"]);

    // Without --aggregate the same stream takes the records.
    let kinesis = auto();
    let output = produce(&kinesis).args(["--count", "5"]).output().unwrap();
    assert!(output.status.success(), "{}", text(&output).1);
    assert_eq!(kinesis.stored().len(), 5);
}

#[test]
fn a_ledger_that_cannot_be_created_stops_the_run_before_anything_is_sent() {
    let kinesis = Kinesis::start(1);
    let dir = temp_dir("produce-ledger-missing");
    let output = produce(&kinesis)
        .args(["--count", "5", "--ledger"])
        .arg(dir.join("no such folder").join("ledger.jsonl"))
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot create the --ledger file"),
        "{stderr}"
    );
    assert!(kinesis.operations().is_empty(), "nothing was asked");
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
