//! The runtime loop on an arbitrary input stream (actions, checkpoint replies, junk, in any
//! order), with a processor whose behaviour the records choose, under every strategy and failure
//! policy. Oracles:
//! - it never panics and never hangs; everything it writes is a valid protocol line with exactly
//!   the documented keys, framed `\n{json}\n`;
//! - exactly one status per action line the daemon would wait on (every line that parses as an
//!   action other than a checkpoint reply), in input order; under `exit`, a prefix of them and
//!   an error;
//! - no checkpoint it asks for passes a delivered record that user code did not finish (handled,
//!   or given to `on_failure`), when the delivered sequence numbers increase as the daemon's do.
#![no_main]

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::Duration;

use kcl_core::message::{parse_line, DaemonMessage, ParsedLine};
use kcl_core::{
    Batch, CheckpointStrategy, Checkpointer, Error, Failure, FailurePolicy, Position,
    RecordProcessor, Result, RetryPolicy, Runtime,
};
use libfuzzer_sys::fuzz_target;

thread_local! {
    /// Records user code finished in this run.
    static FINISHED: RefCell<BTreeSet<Position>> = const { RefCell::new(BTreeSet::new()) };
}

fn finish(records: &[kcl_core::Record]) {
    FINISHED.with(|f| f.borrow_mut().extend(records.iter().map(|r| r.position().clone())));
}

/// What it does is chosen by the first byte of the batch's first payload.
struct Chaotic;

impl RecordProcessor for Chaotic {
    fn process_records(&mut self, batch: &Batch, checkpointer: &mut Checkpointer<'_>) -> Result<()> {
        let Some(first) = batch.records().first() else {
            return Ok(());
        };
        match first.data().first().copied().unwrap_or(0) % 8 {
            0 => {
                finish(batch.records());
                Ok(())
            }
            1 => {
                finish(batch.records());
                Ok(checkpointer.checkpoint()?)
            }
            2 => {
                finish(batch.records());
                Ok(checkpointer.checkpoint_at(batch.last().unwrap_or(first))?)
            }
            3 => Err(Error::msg("handler error")),
            4 => {
                let last = batch.len() - 1;
                finish(&batch.records()[..last]);
                Err(Error::msg("partial").at_record(batch.records()[last].position().clone()))
            }
            5 => {
                finish(batch.records());
                checkpointer.request_checkpoint();
                Ok(())
            }
            6 => {
                let _ = checkpointer.checkpoint_raw("not-a-number", Some(1));
                finish(batch.records());
                Ok(())
            }
            _ => {
                let _: Vec<String> = batch.extract()?;
                finish(batch.records());
                Ok(())
            }
        }
    }

    fn on_failure(&mut self, failure: &Failure<'_>) -> Result<()> {
        finish(failure.records);
        Ok(())
    }
}

/// What the daemon would expect: the `responseFor` of each action line, in order, and whether
/// the delivered records' positions increase; the delivered positions.
fn expected(input: &[u8]) -> (Vec<String>, bool, Vec<Position>) {
    let mut statuses = Vec::new();
    let mut delivered: Vec<Position> = Vec::new();
    let mut increasing = true;
    for line in input.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match parse_line(line) {
            ParsedLine::Message(DaemonMessage::CheckpointReply(_)) => {}
            ParsedLine::Message(message) => {
                if let DaemonMessage::ProcessRecords(batch) = &message {
                    for record in &batch.records {
                        let position = record.position();
                        increasing &= position.sequence_number().is_numeric()
                            && delivered.last().is_none_or(|last| *last < position);
                        delivered.push(position);
                    }
                }
                statuses.push(message.action().to_owned());
            }
            ParsedLine::UnknownAction(action) => statuses.push(action),
            ParsedLine::Malformed { action, .. } if action != "checkpoint" => {
                // A malformed batch's records are unknown: nothing may be checkpointed past them.
                increasing &= action != "processRecords";
                statuses.push(action);
            }
            ParsedLine::Malformed { .. } | ParsedLine::Blank | ParsedLine::Junk { .. } => {}
        }
    }
    (statuses, increasing, delivered)
}

fuzz_target!(|input: &[u8]| {
    FINISHED.with(|f| f.borrow_mut().clear());
    let (strategy, policy) = match input.first().copied().unwrap_or(0) % 5 {
        0 => (CheckpointStrategy::EveryBatch, FailurePolicy::stop()),
        1 => (CheckpointStrategy::Manual, FailurePolicy::skip()),
        2 => (CheckpointStrategy::every_records(3), FailurePolicy::stop().attempts(1)),
        3 => (CheckpointStrategy::every_interval(Duration::ZERO), FailurePolicy::skip().attempts(2)),
        _ => (CheckpointStrategy::EveryBatch, FailurePolicy::exit().attempts(1)),
    };
    let mut output = Vec::new();
    let result = Runtime::new(Chaotic)
        .checkpoint_strategy(strategy)
        .failure_policy(policy.clone().backoff(Duration::ZERO, Duration::ZERO))
        .checkpoint_retry(RetryPolicy::immediate(3))
        .run_on(input, &mut output);

    let text = std::str::from_utf8(&output).expect("the output is UTF-8");
    let mut statuses = Vec::new();
    let mut requests = Vec::new();
    let mut rebuilt = String::new();
    for line in text.split('\n').filter(|l| !l.is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line).expect("every line is JSON");
        let object = value.as_object().expect("every line is an object");
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        match object["action"].as_str() {
            Some("status") => {
                assert_eq!(keys, ["action", "responseFor"], "{line}");
                statuses.push(object["responseFor"].as_str().expect("a string").to_owned());
            }
            Some("checkpoint") => {
                assert_eq!(keys, ["action", "sequenceNumber", "subSequenceNumber"], "{line}");
                let sub = &object["subSequenceNumber"];
                assert!(sub.is_null() || sub.as_i64().is_some_and(|n| n >= 0), "{line}");
                match object["sequenceNumber"].as_str() {
                    Some(sequence) => requests.push(Position::new(sequence, sub.as_u64().unwrap_or(0))),
                    None => assert!(object["sequenceNumber"].is_null(), "{line}"),
                }
            }
            _ => panic!("not a child message: {line}"),
        }
        rebuilt.push('\n');
        rebuilt.push_str(line);
        rebuilt.push('\n');
    }
    assert_eq!(rebuilt, text, "framing");

    let (wanted, increasing, delivered) = expected(input);
    match &result {
        Ok(()) => assert_eq!(statuses, wanted, "one status per action, in order"),
        Err(error) => {
            assert_eq!(policy.then, kcl_core::FailureAction::Exit, "{error}");
            assert!(statuses.len() < wanted.len(), "exit leaves its action unanswered");
            assert_eq!(statuses[..], wanted[..statuses.len()], "in order");
        }
    }
    if increasing {
        FINISHED.with(|finished| {
            let finished = finished.borrow();
            for request in requests.iter().filter(|r| r.sequence_number().is_numeric()) {
                for record in delivered.iter().filter(|p| *p <= request) {
                    assert!(
                        finished.contains(record),
                        "checkpoint {request} asked past unfinished record {record}"
                    );
                }
            }
        });
    }
});
