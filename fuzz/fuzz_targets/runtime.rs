//! The runtime loop on an arbitrary input stream (actions, checkpoint replies, junk, in any
//! order), with a processor whose behaviour the records choose: it never panics and never
//! hangs, and everything it writes is a valid protocol line with exactly the documented keys,
//! framed `\n{json}\n`, at most one status per input line.
#![no_main]

use std::time::Duration;

use kcl_core::{
    Batch, CheckpointStrategy, Checkpointer, Error, FailurePolicy, RecordProcessor, Result,
    RetryPolicy, Runtime,
};
use libfuzzer_sys::fuzz_target;

/// What it does is chosen by the first byte of the batch's first payload.
struct Chaotic;

impl RecordProcessor for Chaotic {
    fn process_records(&mut self, batch: &Batch, checkpointer: &mut Checkpointer<'_>) -> Result<()> {
        let Some(first) = batch.records().first() else {
            return Ok(());
        };
        match first.data().first().copied().unwrap_or(0) % 8 {
            0 => Ok(()),
            1 => Ok(checkpointer.checkpoint()?),
            2 => Ok(checkpointer.checkpoint_at(batch.last().unwrap_or(first))?),
            3 => Err(Error::msg("handler error")),
            4 => Err(Error::msg("partial").at_record(batch.last().unwrap_or(first).position().clone())),
            5 => {
                checkpointer.request_checkpoint();
                Ok(())
            }
            6 => {
                let _ = checkpointer.checkpoint_raw("not-a-number", Some(1));
                Ok(())
            }
            _ => {
                let _: Vec<String> = batch.extract()?;
                Ok(())
            }
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let (strategy, policy) = match input.first().copied().unwrap_or(0) % 4 {
        0 => (CheckpointStrategy::EveryBatch, FailurePolicy::stop()),
        1 => (CheckpointStrategy::Manual, FailurePolicy::skip()),
        2 => (CheckpointStrategy::every_records(3), FailurePolicy::stop().attempts(1)),
        _ => (CheckpointStrategy::every_interval(Duration::ZERO), FailurePolicy::skip().attempts(2)),
    };
    let mut output = Vec::new();
    let result = Runtime::new(Chaotic)
        .checkpoint_strategy(strategy)
        .failure_policy(policy.backoff(Duration::ZERO, Duration::ZERO))
        .checkpoint_retry(RetryPolicy::immediate(3))
        .run_on(input, &mut output);
    assert!(result.is_ok(), "{result:?}");

    let text = std::str::from_utf8(&output).expect("the output is UTF-8");
    let mut statuses = 0;
    let mut rebuilt = String::new();
    for line in text.split('\n').filter(|l| !l.is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line).expect("every line is JSON");
        let object = value.as_object().expect("every line is an object");
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        match object["action"].as_str() {
            Some("status") => {
                assert_eq!(keys, ["action", "responseFor"], "{line}");
                assert!(object["responseFor"].is_string(), "{line}");
                statuses += 1;
            }
            Some("checkpoint") => {
                assert_eq!(keys, ["action", "sequenceNumber", "subSequenceNumber"], "{line}");
                assert!(object["sequenceNumber"].is_null() || object["sequenceNumber"].is_string());
                assert!(object["subSequenceNumber"].is_null() || object["subSequenceNumber"].is_u64());
            }
            _ => panic!("not a child message: {line}"),
        }
        rebuilt.push('\n');
        rebuilt.push_str(line);
        rebuilt.push('\n');
    }
    assert_eq!(rebuilt, text, "framing");
    let input_lines = input.split(|&b| b == b'\n').count();
    assert!(statuses <= input_lines, "{statuses} statuses for {input_lines} lines");
});
