//! Failure policies: retries with backoff from the failed record, then stop, skip (to the
//! `on_failure` hook) or exit — each checked on what reaches the daemon and what is stored.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use kcl::testing::{StoredCheckpoint, TestDaemon};
use kcl::{Batch, Checkpointer, Error, Failure, FailurePolicy, RecordProcessor, Result};

/// Fails on records whose payload is in `poison` (naming the record), each for `times` calls
/// (`u32::MAX` = always); logs the payloads of every call and every dead-lettered record.
#[derive(Default)]
struct Flaky {
    poison: Vec<&'static str>,
    times: u32,
    failures: u32,
    calls: Rc<RefCell<Vec<Vec<String>>>>,
    dead: Rc<RefCell<Vec<String>>>,
    dead_letter_fails: bool,
}

impl RecordProcessor for Flaky {
    fn process_records(&mut self, batch: &Batch, _: &mut Checkpointer<'_>) -> Result<()> {
        let texts: Vec<String> = batch.extract()?;
        self.calls.borrow_mut().push(texts.clone());
        for (record, text) in batch.iter().zip(&texts) {
            if self.poison.contains(&text.as_str()) && self.failures < self.times {
                self.failures += 1;
                return Err(
                    Error::msg(format!("cannot store {text}")).at_record(record.position().clone())
                );
            }
        }
        Ok(())
    }

    fn on_failure(&mut self, failure: &Failure<'_>) -> Result<()> {
        if self.dead_letter_fails {
            return Err(Error::msg("dead-letter queue unavailable"));
        }
        for record in failure.records {
            self.dead
                .borrow_mut()
                .push(String::from_utf8_lossy(record.data()).into_owned());
        }
        Ok(())
    }
}

fn quick(policy: FailurePolicy) -> FailurePolicy {
    policy.backoff(Duration::ZERO, Duration::ZERO)
}

#[test]
fn a_transient_failure_is_retried_from_the_failed_record_and_nothing_stalls() {
    let calls = Rc::new(RefCell::new(Vec::new()));
    let processor = Flaky {
        poison: vec!["b"],
        times: 1,
        calls: calls.clone(),
        ..Flaky::default()
    };
    let mut daemon = TestDaemon::with_failure_policy(processor, quick(FailurePolicy::stop()));
    daemon.initialize("shardId-000000000000");
    let step = daemon.process_payloads(["a", "b", "c"]);
    assert_eq!(
        *calls.borrow(),
        [vec!["a", "b", "c"], vec!["b", "c"]],
        "the retry starts at `b`"
    );
    assert_eq!(step.checkpoints.len(), 1);
    assert_eq!(
        daemon.stored_checkpoint(),
        Some(StoredCheckpoint::At(daemon.delivered().unwrap().clone()))
    );
    let step = daemon.process_payloads(["d"]);
    assert_eq!(step.checkpoints.len(), 1, "the shard goes on");
}

#[test]
fn stop_after_the_last_attempt_keeps_the_checkpoint_before_the_failed_record() {
    let calls = Rc::new(RefCell::new(Vec::new()));
    let processor = Flaky {
        poison: vec!["b"],
        times: u32::MAX,
        calls: calls.clone(),
        ..Flaky::default()
    };
    let mut daemon =
        TestDaemon::with_failure_policy(processor, quick(FailurePolicy::stop().attempts(4)));
    daemon.initialize("shardId-000000000000");
    let a = daemon.next_record("a");
    let (b, c) = (daemon.next_record("b"), daemon.next_record("c"));
    daemon.process_records(vec![a.clone(), b, c], None);
    assert_eq!(calls.borrow().len(), 4, "4 attempts");
    assert_eq!(
        daemon.stored_checkpoint(),
        Some(StoredCheckpoint::At(a.position().clone()))
    );
    let step = daemon.process_payloads(["d"]);
    assert!(step.checkpoints.is_empty());
    assert_eq!(calls.borrow().len(), 4, "later batches are refused");
    assert_eq!(
        step.status.as_deref(),
        Some("processRecords"),
        "but answered"
    );
}

#[test]
fn skip_sends_only_the_poison_record_to_the_dead_letter_hook_and_goes_on() {
    let (calls, dead) = (
        Rc::new(RefCell::new(Vec::new())),
        Rc::new(RefCell::new(Vec::new())),
    );
    let processor = Flaky {
        poison: vec!["b"],
        times: u32::MAX,
        calls: calls.clone(),
        dead: dead.clone(),
        ..Flaky::default()
    };
    let mut daemon =
        TestDaemon::with_failure_policy(processor, quick(FailurePolicy::skip().attempts(2)));
    daemon.initialize("shardId-000000000000");
    let step = daemon.process_payloads(["a", "b", "c"]);
    assert_eq!(
        *calls.borrow(),
        [vec!["a", "b", "c"], vec!["b", "c"], vec!["c"]]
    );
    assert_eq!(*dead.borrow(), ["b"]);
    assert_eq!(step.checkpoints.len(), 1);
    assert_eq!(
        daemon.stored_checkpoint(),
        Some(StoredCheckpoint::At(daemon.delivered().unwrap().clone())),
        "after skipping, the whole batch is checkpointed"
    );
}

#[test]
fn skip_without_a_named_record_dead_letters_the_rest_of_the_batch() {
    let dead = Rc::new(RefCell::new(Vec::new()));
    struct Broken(Rc<RefCell<Vec<String>>>);
    impl RecordProcessor for Broken {
        fn process_records(&mut self, _: &Batch, _: &mut Checkpointer<'_>) -> Result<()> {
            panic!("sink client crashed");
        }
        fn on_failure(&mut self, failure: &Failure<'_>) -> Result<()> {
            self.0
                .borrow_mut()
                .extend(failure.records.iter().map(|r| r.partition_key().to_owned()));
            assert_eq!(failure.attempts, 2);
            assert!(failure.error.to_string().contains("sink client crashed"));
            Ok(())
        }
    }
    let mut daemon = TestDaemon::with_failure_policy(
        Broken(dead.clone()),
        quick(FailurePolicy::skip().attempts(2)),
    );
    daemon.initialize("shardId-000000000000");
    daemon.process_payloads(["a", "b"]);
    assert_eq!(*dead.borrow(), ["pk-1", "pk-2"]);
    assert_eq!(
        daemon.stored_checkpoint(),
        Some(StoredCheckpoint::At(daemon.delivered().unwrap().clone()))
    );
}

#[test]
fn a_failing_dead_letter_hook_stops_the_shard_instead_of_losing_records() {
    let dead = Rc::new(RefCell::new(Vec::new()));
    let processor = Flaky {
        poison: vec!["b"],
        times: u32::MAX,
        dead: dead.clone(),
        dead_letter_fails: true,
        ..Flaky::default()
    };
    let mut daemon = TestDaemon::with_failure_policy(processor, quick(FailurePolicy::skip()));
    daemon.initialize("shardId-000000000000");
    let a = daemon.next_record("a");
    let (b, c) = (daemon.next_record("b"), daemon.next_record("c"));
    daemon.process_records(vec![a.clone(), b, c], None);
    assert!(dead.borrow().is_empty());
    assert_eq!(
        daemon.stored_checkpoint(),
        Some(StoredCheckpoint::At(a.position().clone()))
    );
    assert!(
        daemon.process_payloads(["d"]).checkpoints.is_empty(),
        "stalled"
    );
}

#[test]
fn exit_ends_the_run_without_a_status_and_with_an_error() {
    let processor = Flaky {
        poison: vec!["b"],
        times: u32::MAX,
        ..Flaky::default()
    };
    let policy = quick(FailurePolicy::exit().attempts(2));
    let mut daemon = TestDaemon::with_failure_policy(processor, policy.clone());
    daemon.initialize("shardId-000000000000");
    let a = daemon.next_record("a");
    let b = daemon.next_record("b");
    let step = daemon.process_records(vec![a.clone(), b], None);
    assert_eq!(step.status, None);
    assert!(daemon.exit_reason().unwrap().contains("cannot store b"));
    // What was handled before the failure is stored; the failed record is not.
    assert_eq!(
        daemon.stored_checkpoint(),
        Some(StoredCheckpoint::At(a.position().clone()))
    );

    // Through the runtime loop: `run_on` returns the error (so `run_main` exits non-zero) and
    // writes no status for the failed action.
    let processor = Flaky {
        poison: vec!["b"],
        times: u32::MAX,
        ..Flaky::default()
    };
    let input = concat!(
        r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        "\n",
        r#"{"action":"processRecords","records":[{"data":"Yg==","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
        "\n",
        r#"{"action":"leaseLost"}"#,
        "\n",
    );
    let mut output = Vec::new();
    let result = kcl::Runtime::new(processor)
        .failure_policy(policy)
        .run_on(input.as_bytes(), &mut output);
    let error = result.unwrap_err();
    assert!(
        error.to_string().contains("failure policy is `exit`"),
        "{error}"
    );
    let exit = kcl::PolicyExit::of(&error).expect("a typed PolicyExit, not only a message");
    assert_eq!(exit.reason(), error.to_string());
    let lines: Vec<&str> = std::str::from_utf8(&output)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines, [r#"{"action":"status","responseFor":"initialize"}"#]);
}

/// The same with the macros: a per-record handler and an `#[kcl::on_failure]` hook.
#[derive(Default)]
struct Sink {
    stored: Vec<String>,
    dead: Vec<String>,
}

#[kcl::processor]
impl Sink {
    #[kcl::on_records]
    fn store(&mut self, text: String) -> kcl::Result<()> {
        if text.starts_with("poison") {
            return Err(Error::msg("refused by the sink"));
        }
        self.stored.push(text);
        Ok(())
    }

    #[kcl::on_failure]
    fn dead_letter(&mut self, failure: &Failure<'_>) {
        let texts = failure
            .records
            .iter()
            .map(|r| String::from_utf8_lossy(r.data()).into_owned());
        self.dead.extend(texts);
    }
}

#[test]
fn macro_processor_dead_letters_poison_records_under_skip() {
    let mut daemon = TestDaemon::with_failure_policy(Sink::default(), quick(FailurePolicy::skip()));
    daemon.initialize("shardId-000000000000");
    daemon.process_payloads(["a", "poison-1", "b", "poison-2", "c"]);
    assert_eq!(daemon.processor().stored, ["a", "b", "c"]);
    assert_eq!(daemon.processor().dead, ["poison-1", "poison-2"]);
    assert_eq!(
        daemon.stored_checkpoint(),
        Some(StoredCheckpoint::At(daemon.delivered().unwrap().clone()))
    );
}
