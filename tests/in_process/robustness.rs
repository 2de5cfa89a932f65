//! The catalogue of bad inputs and misbehaving user code (docs/robustness.md): one test per
//! row, asserting the outcome on the protocol and the error message a user sees on stderr
//! (captured from `tracing`), which names the shard, the sequence number and the cause.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kcl::{
    Batch, CheckpointError, CheckpointStrategy, Checkpointer, FailurePolicy, Json, RecordProcessor,
    Result, RetryPolicy, Runtime,
};
use serde_json::json;

const INIT: &str = r#"{"action":"initialize","shardId":"shardId-000000000042","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#;

/// A `processRecords` line with one record (key `pk-1`, sequence number [`SEQ`]) carrying `data`.
fn batch(data: &str) -> String {
    one_record_batch(data, r#""pk-1""#, "1700000000000")
}

use crate::support::wire::{SEQ_BASE as SEQ, one_record_batch};
use crate::support::{Captures, input, run_capturing, status};

/// Runs `processor` with quick retries and the default failure policy.
fn run<P: RecordProcessor>(processor: P, input: &[u8]) -> Captures {
    run_with(Runtime::new(processor), input)
}

fn run_with<P: RecordProcessor>(runtime: Runtime<P>, input: &[u8]) -> Captures {
    let runtime = runtime
        .checkpoint_retry(RetryPolicy::immediate(3))
        .failure_policy(FailurePolicy::stop().backoff(Duration::ZERO, Duration::ZERO));
    run_capturing(runtime, input)
}

fn quiet() -> impl RecordProcessor {
    kcl::from_fn(|_, _| Ok(()))
}

#[test]
fn malformed_json_is_skipped_with_an_excerpt() {
    let run = run(
        quiet(),
        &input(&[
            INIT,
            r#"{"action":"processRecords","records":[{"#,
            r#"{"action":"leaseLost"}"#,
        ]),
    );
    assert!(run.result.is_ok());
    assert_eq!(run.lines, [status("initialize"), status("leaseLost")]);
    let logged = run.logged(&["not a protocol message"]);
    assert!(
        logged.contains(r#"{\"action\":\"processRecords\""#),
        "{logged}"
    );
}

#[test]
fn truncated_last_line_at_eof_mid_batch_is_skipped_and_the_process_ends() {
    let full = batch("aGVsbG8=");
    let cut = &full[..full.len() / 2];
    let mut bytes = input(&[INIT]);
    bytes.extend_from_slice(cut.as_bytes()); // no newline: the daemon died mid-write
    let run = run(quiet(), &bytes);
    assert!(run.result.is_ok());
    assert_eq!(run.lines, [status("initialize")]);
    run.logged(&["not a protocol message"]);
}

#[test]
fn an_enormous_line_is_handled_in_full() {
    // 20,000 records of 1,000 bytes: a 27 MB line.
    let record = "A".repeat(1334) + "=="; // 1,000 bytes
    let mut line = String::from(r#"{"action":"processRecords","records":["#);
    for i in 0..20_000u64 {
        if i > 0 {
            line.push(',');
        }
        line.push_str(&format!(
            r#"{{"data":"{record}","partitionKey":"k","sequenceNumber":"{}","approximateArrivalTimestamp":1,"subSequenceNumber":0,"action":"record"}}"#,
            100_000 + i
        ));
    }
    line.push_str(r#"],"millisBehindLatest":0}"#);
    assert!(line.len() > 27_000_000);
    let bytes = Arc::new(Mutex::new(0usize));
    let total = bytes.clone();
    let counter = kcl::from_fn(move |batch, _| {
        *total.lock().unwrap() += batch.iter().map(|r| r.data().len()).sum::<usize>();
        Ok(())
    });
    let run = run_with(
        Runtime::new(counter).checkpoint_strategy(CheckpointStrategy::Manual),
        &input(&[INIT, &line]),
    );
    assert!(run.result.is_ok());
    assert_eq!(run.lines, [status("initialize"), status("processRecords")]);
    assert_eq!(*bytes.lock().unwrap(), 20_000 * 1000);
}

#[test]
fn crlf_line_ends_are_accepted() {
    let bytes = format!(
        "{INIT}\r\n{}\r\n{{\"action\":\"leaseLost\"}}\r\n",
        batch("aGVsbG8=")
    );
    let run = run_with(
        Runtime::new(quiet()).checkpoint_strategy(CheckpointStrategy::Manual),
        bytes.as_bytes(),
    );
    assert_eq!(
        run.lines,
        [
            status("initialize"),
            status("processRecords"),
            status("leaseLost")
        ]
    );
}

#[test]
fn raw_nul_bytes_make_a_line_junk() {
    let mut bytes = input(&[INIT]);
    bytes.extend_from_slice(b"{\"action\":\"lease\0Lost\"}\n\0\0\0\n");
    let run = run(quiet(), &bytes);
    assert_eq!(run.lines, [status("initialize")]);
    run.logged(&["not a protocol message"]);
}

#[test]
fn escaped_nul_in_a_payload_is_just_data() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let processor = kcl::from_fn(move |batch, _| {
        sink.lock().unwrap().extend(
            batch
                .iter()
                .map(|r| (r.partition_key().to_owned(), r.data().to_vec())),
        );
        Ok(())
    });
    let line = batch("AAEA").replace("pk-1", "pk\\u0000nul");
    let run = run_with(
        Runtime::new(processor).checkpoint_strategy(CheckpointStrategy::Manual),
        &input(&[INIT, &line]),
    );
    assert_eq!(run.lines, [status("initialize"), status("processRecords")]);
    assert_eq!(
        *seen.lock().unwrap(),
        [("pk\0nul".to_owned(), vec![0, 1, 0])]
    );
}

#[test]
fn invalid_utf8_in_a_json_key_or_value_is_replaced_not_fatal() {
    let mut line = batch("aGVsbG8=").into_bytes();
    let at = line.windows(4).position(|w| w == b"pk-1").unwrap();
    line[at + 2] = 0xff; // partition key "pk\xff1"
    let mut bytes = input(&[INIT]);
    bytes.extend_from_slice(&line);
    bytes.extend_from_slice(b"\n{\"act\xffion\":\"leaseLost\"}\n");
    let keys = Arc::new(Mutex::new(Vec::new()));
    let sink = keys.clone();
    let processor = kcl::from_fn(move |batch, _| {
        sink.lock()
            .unwrap()
            .extend(batch.iter().map(|r| r.partition_key().to_owned()));
        Ok(())
    });
    let run = run_with(
        Runtime::new(processor).checkpoint_strategy(CheckpointStrategy::Manual),
        &bytes,
    );
    assert_eq!(
        run.lines,
        [status("initialize"), status("processRecords")],
        "a key name with bad bytes is junk"
    );
    assert_eq!(*keys.lock().unwrap(), ["pk\u{fffd}1"]);
}

#[test]
fn invalid_base64_names_shard_sequence_and_cause_and_stalls() {
    let run = run(
        quiet(),
        &input(&[
            INIT,
            &batch("!!!notbase64"),
            r#"{"action":"shutdownRequested"}"#,
        ]),
    );
    assert_eq!(
        run.lines,
        [
            status("initialize"),
            status("processRecords"),
            status("shutdownRequested")
        ]
    );
    let logged = run.logged(&["not valid base64"]);
    for part in ["shardId-000000000042", SEQ, "pk-1", "The shard stalls"] {
        assert!(logged.contains(part), "{part:?} missing: {logged}");
    }
}

#[test]
fn missing_fields_and_wrong_types_are_answered_and_logged() {
    let run = run(
        quiet(),
        &input(&[
            INIT,
            r#"{"action":"processRecords","records":[{"data":"aGk=","partitionKey":"k"}]}"#,
            r#"{"action":"processRecords","records":"not a list","millisBehindLatest":0}"#,
            r#"{"action":"shardEnded"}"#,
        ]),
    );
    assert_eq!(
        run.lines,
        [
            status("initialize"),
            status("processRecords"),
            status("processRecords"),
            status("shardEnded")
        ]
    );
    let logged = run.logged(&["malformed \"processRecords\""]);
    assert!(logged.contains("shardId-000000000042"), "{logged}");
    assert!(
        logged.contains("sequenceNumber"),
        "the cause names the missing field: {logged}"
    );
    run.logged(&["the batch's records are unknown, so they count as not handled"]);
}

#[test]
fn an_unknown_action_is_acknowledged() {
    let run = run(
        quiet(),
        &input(&[INIT, r#"{"action":"rebalance","shardId":"x"}"#]),
    );
    assert_eq!(run.lines, [status("initialize"), status("rebalance")]);
    let logged = run.logged(&["unknown action \"rebalance\""]);
    assert!(logged.contains("shardId-000000000042"), "{logged}");
}

#[test]
fn a_checkpoint_reply_nobody_asked_for_is_ignored() {
    let run = run(
        quiet(),
        &input(&[
            INIT,
            r#"{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#,
        ]),
    );
    assert_eq!(run.lines, [status("initialize")]);
    run.logged(&["ignoring a checkpoint reply that answers no request"]);
}

#[test]
fn no_reply_before_eof_ends_the_process_cleanly() {
    let run = run(
        kcl::from_fn(|_, cp| Ok(cp.checkpoint()?)),
        &input(&[INIT, &batch("aGk=")]),
    );
    assert!(run.result.is_ok());
    assert_eq!(
        run.lines[..2],
        [
            status("initialize"),
            json!({"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null})
        ]
    );
    assert_eq!(
        run.lines
            .iter()
            .filter(|l| l["action"] == "checkpoint")
            .count(),
        1,
        "nothing is sent after EOF"
    );
    run.logged(&["the daemon closed stdin before answering"]);
}

#[test]
fn an_unknown_checkpoint_error_is_typed_other_and_not_retried() {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let sink = errors.clone();
    let processor = kcl::from_fn(move |_, cp: &mut Checkpointer<'_>| {
        sink.lock().unwrap().push(cp.checkpoint());
        Ok(())
    });
    let run = run_with(
        Runtime::new(processor).checkpoint_strategy(CheckpointStrategy::Manual),
        &input(&[
            INIT,
            &batch("aGk="),
            r#"{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":"NullPointerException"}"#,
        ]),
    );
    assert_eq!(
        *errors.lock().unwrap(),
        [Err(CheckpointError::Other("NullPointerException".into()))]
    );
    assert_eq!(
        run.lines
            .iter()
            .filter(|l| l["action"] == "checkpoint")
            .count(),
        1
    );
    assert_eq!(run.lines.last(), Some(&status("processRecords")));
}

#[test]
fn a_panicking_handler_is_retried_then_stalls_with_a_clear_message() {
    let processor =
        kcl::from_fn(|_, _| -> Result<()> { panic!("index out of bounds in my parser") });
    let run = run(processor, &input(&[INIT, &batch("aGk=")]));
    assert_eq!(run.lines, [status("initialize"), status("processRecords")]);
    run.logged(&["attempt 1/3 failed: handler panicked: index out of bounds in my parser"]);
    let logged = run.logged(&["The shard stalls"]);
    for part in [
        "shardId-000000000042",
        SEQ,
        "index out of bounds in my parser",
    ] {
        assert!(logged.contains(part), "{part:?} missing: {logged}");
    }
}

// A handler that prints is tested through a real process only
// (child_process::prints_from_user_code_never_reach_the_protocol_stdout): in-process, `println!`
// goes to the test harness's capture and could never reach `run_on`'s writer, so such a test
// could not fail.

#[test]
fn a_payload_that_exhausts_the_json_decoder_is_a_payload_error_not_a_crash() {
    // 100,000 nested arrays: serde_json's recursion limit answers, the stack survives.
    let nested = "[".repeat(100_000) + &"]".repeat(100_000);
    let mut encoded = String::new();
    let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in nested.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                encoded.push(table[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                encoded.push('=');
            }
        }
    }
    struct Strict;
    impl RecordProcessor for Strict {
        fn process_records(&mut self, batch: &Batch, _: &mut Checkpointer<'_>) -> Result<()> {
            let _values: Vec<Json<serde_json::Value>> = batch.extract()?;
            Ok(())
        }
    }
    let run = run(Strict, &input(&[INIT, &batch(&encoded)]));
    assert_eq!(run.lines, [status("initialize"), status("processRecords")]);
    let logged = run.logged(&["recursion limit exceeded"]);
    for part in [
        "shardId-000000000042",
        SEQ,
        "payload is not the expected JSON",
    ] {
        assert!(logged.contains(part), "{part:?} missing: {logged}");
    }
}
