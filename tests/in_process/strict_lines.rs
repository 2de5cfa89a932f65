//! Lines that are not quite what Jackson writes, through the whole runtime
//! (`kcl::Runtime::run_on`): the fast path and the serde path give the same answer, and a line
//! that names a known daemon action is answered with a status or, when it cannot be, logged
//! as an error that says why (audit findings 7 and 8).

use std::sync::{Arc, Mutex};

use kcl::{CheckpointStrategy, RecordProcessor, Runtime};
use serde_json::{Value, json};

const INIT: &str = r#"{"action":"initialize","shardId":"shardId-000000000007","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#;
/// A `processRecords` line in the daemon's form, with the record's `partitionKey` and
/// `approximateArrivalTimestamp` given as raw JSON text.
fn batch(key: &str, arrival: &str) -> String {
    one_record_batch("aGVsbG8=", key, arrival)
}

/// The same line as the serde path sees it (a space after the brace leaves the fast path).
fn spaced(line: &str) -> String {
    line.replacen('{', "{ ", 1)
}

use crate::support::wire::one_record_batch;
use crate::support::{input, logged, run_capturing, status};

struct Run {
    lines: Vec<Value>,
    log: String,
    /// What the handler saw: (partition key, payload) per record.
    seen: Vec<(String, Vec<u8>)>,
}

impl Run {
    /// The captured log line containing every one of `needles`.
    #[track_caller]
    fn logged(&self, needles: &[&str]) -> &str {
        logged(&self.log, needles)
    }
}

/// Runs a recording processor on `lines` (each followed by `\n`).
fn run(lines: &[&str]) -> Run {
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
    let (lines, log) = run_on(processor, &input(lines));
    let seen = seen.lock().unwrap().clone();
    Run { lines, log, seen }
}

fn run_on<P: RecordProcessor>(processor: P, input: &[u8]) -> (Vec<Value>, String) {
    let runtime = Runtime::new(processor).checkpoint_strategy(CheckpointStrategy::Manual);
    let captures = run_capturing(runtime, input);
    captures.result.expect("run_on");
    (captures.lines, captures.log)
}

/// Finding 7: a leading zero, a raw control byte or a form feed after the object is not JSON.
/// Whichever path reads such a line, it is answered (as malformed: the handler is not called)
/// and logged as an error naming the cause, never dropped while the daemon waits.
#[test]
fn a_known_action_that_is_not_json_is_answered_on_both_paths() {
    let leading_zero = batch(r#""pk-1""#, "01700000000000");
    let raw_tab = batch("\"pk\t1\"", "1700000000000");
    let form_feed = format!("{}\u{c}", batch(r#""pk-1""#, "1700000000000"));
    for (line, cause) in [
        (leading_zero, "invalid number"),
        (raw_tab, "control character"),
        (form_feed, "trailing characters"),
    ] {
        for line in [line.clone(), spaced(&line)] {
            let run = run(&[INIT, &line, r#"{"action":"leaseLost"}"#]);
            assert_eq!(
                run.lines,
                [
                    status("initialize"),
                    status("processRecords"),
                    status("leaseLost")
                ],
                "{line:?}"
            );
            assert!(run.seen.is_empty(), "the handler saw {:?}", run.seen);
            let logged = run.logged(&["ERROR", r#"malformed "processRecords""#, cause]);
            assert!(logged.contains("shardId-000000000007"), "{logged}");
        }
    }
    // Other actions too: a status, no hook.
    let run = run(&[
        INIT,
        "{\"action\":\"shutdownRequested\"}\u{c}",
        r#"{"action":"shardEnded",}"#,
    ]);
    assert_eq!(
        run.lines,
        [
            status("initialize"),
            status("shutdownRequested"),
            status("shardEnded")
        ]
    );
}

/// A line cut short cannot be answered (what it asks is unknown, and a dying daemon leaves
/// such a line behind): it is skipped, but as an error naming the action and the reason.
#[test]
fn a_known_action_cut_short_is_logged_as_an_error() {
    let full = batch(r#""pk-1""#, "1700000000000");
    let cut = &full[..full.len() / 2];
    let run = run(&[INIT, cut, r#"{"action":"leaseLost"}"#]);
    assert_eq!(run.lines, [status("initialize"), status("leaseLost")]);
    let logged = run.logged(&["ERROR", "not a protocol message", r#""processRecords""#]);
    assert!(logged.contains("cut short"), "{logged}");
    assert!(
        logged.contains(r#"{\"action\":\"processRecords\""#),
        "{logged}"
    );
}

/// A broken line that names a known action only after other keys (the daemon writes `action`
/// first, and the text could come from a partition key): skipped, logged as an error.
#[test]
fn a_known_action_that_is_not_the_first_key_is_logged_as_an_error() {
    let later = run(&[INIT, r#"{"records":[],"action":"leaseLost",]"#]);
    assert_eq!(later.lines, [status("initialize")]);
    let logged = later.logged(&["ERROR", "not a protocol message", r#""leaseLost""#]);
    assert!(logged.contains("first key"), "{logged}");
    // Junk that names no known action stays a warning.
    let other = run(&[INIT, r#"{"action":"wave",]"#, "DEBUG hello"]);
    assert_eq!(other.lines, [status("initialize")]);
    assert!(
        other
            .logged(&["not a protocol message", "wave"])
            .contains("WARN")
    );
    assert!(!other.log.contains("ERROR"), "{}", other.log);
}

/// Finding 8: the Java field is a nullable `String` and Jackson writes nulls, so
/// `"partitionKey":null` is read as an empty key and the record is delivered, on both paths.
#[test]
fn a_null_partition_key_is_an_empty_key_on_both_paths() {
    let line = batch("null", "1700000000000");
    for line in [line.clone(), spaced(&line)] {
        let run = run(&[INIT, &line]);
        assert_eq!(
            run.lines,
            [status("initialize"), status("processRecords")],
            "{line}"
        );
        assert_eq!(run.seen, [(String::new(), b"hello".to_vec())], "{line}");
        assert!(!run.log.contains("ERROR"), "{}", run.log);
    }
    assert_eq!(
        kcl_core::__not_api::check(line.as_bytes()),
        Ok(true),
        "the fast path takes the daemon's form and agrees with the serde path"
    );
}

/// A checkpoint reply the child cannot read is the answer to its request (the checkpoint fails
/// with the cause), not a stray line to ignore later; the action is answered once.
#[test]
fn a_malformed_reply_to_a_checkpoint_request_fails_that_checkpoint() {
    let errors = Arc::new(Mutex::new(Vec::new()));
    let seen = errors.clone();
    let processor = kcl::from_fn(move |_, cp| {
        if let Err(error) = cp.checkpoint() {
            seen.lock().unwrap().push(error.to_string());
        }
        Ok(())
    });
    let input: Vec<u8> = [
        INIT,
        &batch(r#""pk-1""#, "1700000000000"),
        r#"{"action":"checkpoint","sequenceNumber":{"not":"a sequence number"},"subSequenceNumber":0,"error":null}"#,
        r#"{"action":"leaseLost"}"#,
    ]
    .iter()
    .flat_map(|l| format!("{l}\n").into_bytes())
    .collect();
    let (lines, log) = run_on(processor, &input);
    assert_eq!(
        lines,
        [
            status("initialize"),
            json!({"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}),
            status("processRecords"),
            status("leaseLost"),
        ]
    );
    let errors = errors.lock().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("a checkpoint reply that cannot be read"),
        "{errors:?}"
    );
    assert!(!log.contains("answers no request"), "{log}");
}
