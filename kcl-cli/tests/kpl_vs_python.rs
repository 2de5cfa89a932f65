//! `kcl_kpl` against `aws_kinesis_agg` 1.2.3 (awslabs/kinesis-aggregation's Python library, from
//! PyPI, pinned with hashes in `tests/fixtures/aws_kinesis_agg/requirements.txt` and installed
//! into a venv in the test cache), both ways:
//!
//! - Python aggregates generated records → every aggregate is byte-identical to the one
//!   `AggregateBuilder` makes of the same records, with the same partition key and explicit
//!   hash key, and `decode` gives back those records. Given partition keys as bytes, Python
//!   sizes its aggregates exactly, so the builder (its limit raised by the partition key, which
//!   Python does not count; every key here has the same length) splits the records into the
//!   same aggregates. Given keys as `str`, Python looks them up in its key sets as bytes, never
//!   finds them, and counts every key as new: it splits earlier, by design of that code, so
//!   there only each aggregate is compared.
//! - `AggregateBuilder` aggregates → Python's deaggregator yields the same records, with
//!   sub-sequence numbers 0, 1, ... Explicit hash keys are compared where Python can report
//!   them: its deaggregator gives a record without one the table's first key when the table is
//!   not empty (it reads `explicit_hash_key_index` without checking that it is set), and the
//!   test expects exactly that.

mod common;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{Rng, cache_dir, fixture, fresh_venv, missing, python3, text};
use kcl_kpl::{AggregateBuilder, ExplicitHashKey, UserRecord, decode};
use serde_json::{Value, json};

const REQUIREMENTS: &str = "aws_kinesis_agg/requirements.txt";

/// A Python that imports `aws_kinesis_agg` 1.2.3: $KCL_TEST_AWS_KINESIS_AGG_PYTHON, or a venv in
/// the test cache with the pinned requirements installed (hashes required).
fn python_with_aws_kinesis_agg() -> Result<PathBuf, String> {
    if let Some(python) = std::env::var_os("KCL_TEST_AWS_KINESIS_AGG_PYTHON") {
        return Ok(PathBuf::from(python));
    }
    if !python3() {
        return Err("python3 is not available".into());
    }
    let venv = cache_dir().join("aws_kinesis_agg-1.2.3-venv");
    let python = venv.join("bin/python");
    let imports = |python: &PathBuf| {
        Command::new(python)
            .args([
                "-c",
                "import aws_kinesis_agg.aggregator, aws_kinesis_agg.deaggregator",
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if imports(&python) {
        return Ok(python);
    }
    let python = fresh_venv(&venv, &fixture(REQUIREMENTS))?;
    if imports(&python) {
        Ok(python)
    } else {
        Err("aws_kinesis_agg does not import after installing it".into())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn hex_text(value: &Value) -> Option<String> {
    value
        .as_str()
        .map(|h| String::from_utf8(unhex(h)).expect("UTF-8 from Python"))
}

/// Partition keys of 7 UTF-8 bytes each (so a limit raised by 7 is Python's limit exactly).
const KEYS: [&str; 8] = [
    "key-001", "key-002", "key-003", "é-abcd", "🔑-ab", "ю-1234", "user-01", "user-02",
];

/// One set of records and the limit to aggregate them under.
struct Set {
    max_size: usize,
    records: Vec<UserRecord>,
}

fn set(rng: &mut Rng) -> Set {
    let max_size = rng.pick(&[200, 300, 1000, 5000, 1 << 20]);
    let keys = 1 + rng.below(KEYS.len());
    let hash_keys: Vec<ExplicitHashKey> = (0..1 + rng.below(3))
        .map(|_| ExplicitHashKey::new(rng.u128() >> rng.below(128)))
        .collect();
    let with_hash_keys = rng.below(3); // none, some, all
    let records = (0..1 + rng.below(60))
        .map(|_| {
            let explicit_hash_key = match with_hash_keys {
                0 => None,
                1 if rng.chance(50) => None,
                _ => Some(rng.pick(&hash_keys)),
            };
            UserRecord {
                partition_key: KEYS[rng.below(keys)].to_string(),
                explicit_hash_key,
                // Every record fits an empty aggregate (Python loses one that does not).
                data: rng.bytes((max_size - 100).min(3000) / 2),
                tags: vec![],
            }
        })
        .collect();
    Set { max_size, records }
}

fn aggregate_request(set: &Set, keys: &str) -> Value {
    let records: Vec<Value> = set
        .records
        .iter()
        .map(|r| {
            json!([
                hex(r.partition_key.as_bytes()),
                r.explicit_hash_key
                    .as_ref()
                    .map(|k| hex(k.as_str().as_bytes())),
                hex(&r.data)
            ])
        })
        .collect();
    json!({"op": "aggregate", "max_size": set.max_size, "keys": keys, "records": records})
}

/// Python's aggregates: partition key, explicit hash key, data, number of user records.
type PythonAggregate = (String, Option<String>, Vec<u8>, usize);

fn python_aggregates(answer: &Value) -> Vec<PythonAggregate> {
    answer
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                hex_text(&a[0]).unwrap(),
                hex_text(&a[1]),
                unhex(a[2].as_str().unwrap()),
                a[3].as_u64().unwrap() as usize,
            )
        })
        .collect()
}

/// The builder's aggregate of exactly `records`.
fn build(records: &[UserRecord], max_bytes: usize) -> kcl_kpl::Aggregate {
    let mut builder = AggregateBuilder::new(max_bytes, usize::MAX);
    for record in records {
        builder.push_record(record).unwrap();
    }
    builder.finish().unwrap()
}

/// Python's aggregates against the builder's, chunk by chunk; returns a failure description.
fn compare_aggregates(set: &Set, python: &[PythonAggregate]) -> Result<(), String> {
    let mut at = 0;
    for (n, (pk, ehk, data, count)) in python.iter().enumerate() {
        let chunk = &set.records[at..at + count];
        at += count;
        let ours = build(chunk, usize::MAX);
        if &ours.data != data {
            return Err(format!(
                "aggregate {n} ({count} records) differs:\n  aws_kinesis_agg: {}\n  kcl_kpl:         {}",
                hex(data),
                hex(&ours.data)
            ));
        }
        if *pk != ours.partition_key {
            return Err(format!(
                "aggregate {n}: partition key {pk:?} vs {:?}",
                ours.partition_key
            ));
        }
        let ehk = ehk.as_deref().map(|t| t.parse::<u128>().unwrap());
        if ehk != ours.explicit_hash_key {
            return Err(format!(
                "aggregate {n}: explicit hash key {ehk:?} vs {:?}",
                ours.explicit_hash_key
            ));
        }
        match decode(data) {
            Ok(records) if records == chunk => {}
            other => return Err(format!("aggregate {n}: decode gives {other:?}")),
        }
    }
    if at != set.records.len() {
        return Err(format!(
            "Python aggregated {at} of {} records",
            set.records.len()
        ));
    }
    Ok(())
}

/// The builder's split of the records under Python's limit (raised by the 7-byte key).
fn split(set: &Set) -> Vec<kcl_kpl::Aggregate> {
    let mut builder = AggregateBuilder::new(set.max_size + 7, usize::MAX);
    let mut out = Vec::new();
    for record in &set.records {
        if builder.push_record(record).is_err() {
            out.push(builder.finish().unwrap());
            builder.push_record(record).unwrap();
        }
    }
    out.extend(builder.finish());
    out
}

/// What Python's deaggregator should yield for the builder's aggregate of `records`.
fn expected_deaggregation(records: &[UserRecord]) -> Vec<Value> {
    let first_hash_key = records.iter().find_map(|r| r.explicit_hash_key.as_ref());
    records
        .iter()
        .enumerate()
        .map(|(sub, r)| {
            // Python gives a record without a key the table's first one (index 0 by default).
            let ehk = r.explicit_hash_key.as_ref().or(first_hash_key);
            json!([
                hex(r.partition_key.as_bytes()),
                ehk.map(|k| hex(k.as_str().as_bytes())),
                hex(&r.data),
                sub,
                true
            ])
        })
        .collect()
}

#[test]
#[ignore = "needs python3 and PyPI (aws_kinesis_agg 1.2.3, or KCL_TEST_AWS_KINESIS_AGG_PYTHON): scripts/test.sh runs it when CI or KCL_REQUIRE_PREREQUISITES is set"]
fn the_builder_writes_and_reads_what_aws_kinesis_agg_does() {
    let python = python_with_aws_kinesis_agg().unwrap_or_else(|why| {
        missing(
            "aws_kinesis_agg 1.2.3",
            &format!("{why}; set KCL_TEST_AWS_KINESIS_AGG_PYTHON to a python that imports it"),
        )
    });
    let seed = std::env::var("KCL_KPL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x4147_4731_2E32);
    assert!(
        KEYS.iter().all(|k| k.len() == 7),
        "the split comparison needs equal key lengths"
    );
    let mut rng = Rng(seed);
    let sets: Vec<Set> = (0..300).map(|_| set(&mut rng)).collect();

    // Requests: per set, aggregate with bytes keys, with str keys, and deaggregate ours.
    let ours: Vec<kcl_kpl::Aggregate> =
        sets.iter().map(|s| build(&s.records, usize::MAX)).collect();
    let mut input = String::new();
    for (set, aggregate) in sets.iter().zip(&ours) {
        for request in [
            aggregate_request(set, "bytes"),
            aggregate_request(set, "str"),
            json!({"op": "deaggregate", "data": hex(&aggregate.data), "pk": hex(aggregate.partition_key.as_bytes())}),
        ] {
            input.push_str(&request.to_string());
            input.push('\n');
        }
    }
    let mut child = Command::new(&python)
        .arg(fixture("aws_kinesis_agg/driver.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(output.status.success(), "{}", text(&output).1);
    let answers: Vec<Value> = text(&output)
        .0
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), sets.len() * 3);

    let mut failures = Vec::new();
    let (mut python_aggregates_seen, mut same_split, mut str_aggregates, mut records_checked) =
        (0, 0, 0, 0);
    for (i, (set, aggregate)) in sets.iter().zip(&ours).enumerate() {
        let bytes_keys = python_aggregates(&answers[3 * i]);
        let str_keys = python_aggregates(&answers[3 * i + 1]);
        let deaggregated = &answers[3 * i + 2];
        python_aggregates_seen += bytes_keys.len() + str_keys.len();
        str_aggregates += str_keys.len();
        records_checked += set.records.len();
        for (mode, python) in [("bytes keys", &bytes_keys), ("str keys", &str_keys)] {
            if let Err(why) = compare_aggregates(set, python) {
                failures.push(format!(
                    "set {i} ({mode}, max_size {}): {why}",
                    set.max_size
                ));
            }
        }
        // Same split points as Python's exact sizing.
        let ours_split: Vec<Vec<u8>> = split(set).into_iter().map(|a| a.data).collect();
        let theirs: Vec<Vec<u8>> = bytes_keys.iter().map(|a| a.2.clone()).collect();
        if ours_split == theirs {
            same_split += 1;
        } else {
            failures.push(format!(
                "set {i} (max_size {}): the builder made {} aggregates of sizes {:?}, aws_kinesis_agg {} of sizes {:?}",
                set.max_size,
                ours_split.len(),
                ours_split.iter().map(Vec::len).collect::<Vec<_>>(),
                theirs.len(),
                theirs.iter().map(Vec::len).collect::<Vec<_>>()
            ));
        }
        // Python reads ours.
        let expected = Value::Array(expected_deaggregation(&set.records));
        if *deaggregated != expected {
            failures.push(format!(
                "set {i}: aws_kinesis_agg deaggregates the builder's {} bytes as {deaggregated}, expected {expected}",
                aggregate.data.len()
            ));
        }
    }
    let bytes_aggregates = python_aggregates_seen - str_aggregates;
    eprintln!(
        "{} record sets (seed {seed}), {records_checked} records: {python_aggregates_seen} aggregates from aws_kinesis_agg compared byte for byte ({bytes_aggregates} with bytes keys, {str_aggregates} with str keys), the same split in {same_split} sets, {} builder aggregates deaggregated by Python",
        sets.len(),
        ours.len()
    );
    assert!(
        failures.is_empty(),
        "{} differences (seed {seed}); the first ones:\n{}",
        failures.len(),
        failures[..failures.len().min(5)].join("\n")
    );
    assert!(bytes_aggregates > sets.len(), "limits must split some sets");
    assert!(str_aggregates >= bytes_aggregates);
}
