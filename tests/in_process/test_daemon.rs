//! The in-process test daemon (`kcl::testing`), and the examples' processors driven by it.

use std::cell::RefCell;
use std::rc::Rc;

use kcl::testing::{StoredCheckpoint, TestDaemon, sequence_number};
use kcl::{
    Batch, CheckpointError, CheckpointStrategy, Checkpointer, Position, RecordProcessor,
    StartingPosition, from_fn,
};

#[cfg(feature = "tokio")]
use crate::async_enrich;
use crate::{clicks, orders, word_count};

#[test]
fn readme_example_revenue_with_a_throttled_checkpoint() {
    let mut daemon = TestDaemon::new(orders::Revenue::default());
    daemon.initialize("shardId-000000000000");
    daemon.fail_next_checkpoints(["ThrottlingException"]);
    let step = daemon.process_payloads([r#"{"id":"a","customer":"c","amount_cents":250}"#]);
    assert_eq!(step.status.as_deref(), Some("processRecords"));
    assert_eq!(step.checkpoints.len(), 2);
    assert_eq!(
        step.checkpoints[0].error.as_deref(),
        Some("ThrottlingException")
    );
    assert_eq!(step.checkpoints[1].error, None);
    assert_eq!(daemon.processor().cents, 250);
    daemon.shard_ended();
    assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::ShardEnd));
}

#[test]
fn orders_counts_invalid_records_without_failing_the_batch() {
    let mut daemon = TestDaemon::new(orders::Revenue::default());
    daemon.initialize("shardId-000000000000");
    let step = daemon.process_payloads([
        r#"{"id":"a","customer":"c","amount_cents":100}"#,
        r#"{"id":"b"}"#,
        "not json",
        r#"{"id":"c","customer":"d","amount_cents":5}"#,
    ]);
    let revenue = daemon.processor();
    assert_eq!(
        (revenue.orders, revenue.cents, revenue.invalid),
        (2, 105, 2)
    );
    let last = daemon.delivered().unwrap().clone();
    assert_eq!(step.checkpoints.len(), 1);
    assert_eq!(
        step.checkpoints[0].sequence_number.as_deref(),
        Some(last.sequence_number().as_str())
    );
    assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::At(last)));
}

#[test]
fn word_count_counts_words_and_skips_non_utf8() {
    let mut daemon = TestDaemon::new(word_count::WordCount::default());
    daemon.initialize("shardId-000000000000");
    daemon.process_payloads(["one two three".as_bytes(), b"\xff\xfe", "four".as_bytes()]);
    daemon.process_payloads(["five six"]);
    let counts = daemon.processor();
    assert_eq!(counts.total_words, 6);
    assert_eq!(counts.skipped, 1);
    assert_eq!((counts.records, counts.batches), (3, 2));
    let step = daemon.shutdown_requested();
    assert_eq!(step.checkpoints.len(), 1);
    assert_eq!(
        step.checkpoints[0].sequence_number, None,
        "all handled: null checkpoint"
    );
}

// Assertions inside a handler would be caught by the runtime's panic guard, so handlers only
// record what happened and the test asserts afterwards.
type Seen<T> = Rc<RefCell<Vec<T>>>;

#[test]
fn fake_daemon_refuses_positions_outside_the_delivered_range() {
    let results: Seen<Result<(), CheckpointError>> = Rc::default();
    let sink = results.clone();
    let beyond = Position::new(sequence_number(99), 0);
    let processor = from_fn(move |_batch: &Batch, cp: &mut Checkpointer<'_>| {
        sink.borrow_mut().push(cp.checkpoint_position(&beyond));
        sink.borrow_mut().push(cp.checkpoint_raw("abc", None));
        Ok(())
    });
    let mut daemon = TestDaemon::with_strategy(processor, CheckpointStrategy::Manual);
    daemon.initialize("shardId-000000000000");
    let step = daemon.process_payloads(["x"]);
    assert_eq!(
        *results.borrow(),
        [
            Err(CheckpointError::IllegalArgument),
            Err(CheckpointError::IllegalArgument)
        ]
    );
    assert_eq!(
        step.checkpoints.len(),
        2,
        "IllegalArgumentException is not retried"
    );
    assert_eq!(daemon.stored_checkpoint(), None);
}

#[test]
fn resumed_lease_exposes_its_position_and_refuses_going_backwards() {
    struct Resume(Seen<String>);
    impl RecordProcessor for Resume {
        fn initialize(&mut self, shard: &kcl::Initialize) -> kcl::Result<()> {
            self.0
                .borrow_mut()
                .push(format!("{:?}", shard.starting_position));
            Ok(())
        }
        fn process_records(
            &mut self,
            _batch: &Batch,
            cp: &mut Checkpointer<'_>,
        ) -> kcl::Result<()> {
            let earlier = Position::new(sequence_number(10), 2);
            self.0
                .borrow_mut()
                .push(format!("{:?}", cp.checkpoint_position(&earlier)));
            self.0
                .borrow_mut()
                .push(format!("{:?}", cp.last_checkpoint()));
            Ok(())
        }
    }
    let resumed = Position::new(sequence_number(10), 3);
    let seen: Seen<String> = Rc::default();
    let mut daemon = TestDaemon::new(Resume(seen.clone()));
    daemon.initialize_at(
        "shardId-000000000001",
        StartingPosition::Checkpoint(resumed.clone()),
    );
    daemon.process_payloads(["after the checkpoint"]);
    assert_eq!(
        *seen.borrow(),
        [
            format!("{:?}", StartingPosition::Checkpoint(resumed.clone())),
            format!("{:?}", Err::<(), _>(CheckpointError::IllegalArgument)),
            format!("{:?}", Some(&resumed)),
        ]
    );
}

#[test]
fn default_hooks_checkpoint_on_shutdown_requested_and_shard_end() {
    let processor = from_fn(|_: &Batch, _: &mut Checkpointer<'_>| Ok(()));
    let mut daemon = TestDaemon::with_strategy(processor, CheckpointStrategy::Manual);
    daemon.initialize("shardId-000000000000");
    daemon.process_payloads(["a", "b"]);
    assert_eq!(
        daemon.stored_checkpoint(),
        None,
        "nothing checkpoints by itself with the manual strategy"
    );
    let step = daemon.shutdown_requested();
    assert_eq!(step.checkpoints.len(), 1);
    assert_eq!(
        daemon.stored_checkpoint(),
        Some(StoredCheckpoint::At(daemon.delivered().unwrap().clone()))
    );
    daemon.shard_ended();
    assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::ShardEnd));
}

#[test]
fn shard_end_is_checkpointed_even_when_an_override_forgets() {
    struct Forgetful;
    impl RecordProcessor for Forgetful {
        fn process_records(&mut self, _: &Batch, _: &mut Checkpointer<'_>) -> kcl::Result<()> {
            Ok(())
        }
        fn shard_ended(&mut self, _: &mut Checkpointer<'_>) -> kcl::Result<()> {
            Ok(())
        }
    }
    let mut daemon = TestDaemon::new(Forgetful);
    daemon.initialize("shardId-000000000000");
    daemon.process_payloads(["a"]);
    let step = daemon.shard_ended();
    assert_eq!(step.checkpoints.len(), 1);
    assert_eq!(step.checkpoints[0].sequence_number, None);
    assert_eq!(step.status.as_deref(), Some("shardEnded"));
    assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::ShardEnd));
}

#[test]
fn a_failed_batch_stalls_the_shard_and_nothing_past_it_is_checkpointed() {
    let calls = Rc::new(RefCell::new(0));
    let counter = calls.clone();
    let processor = from_fn(move |batch: &Batch, _: &mut Checkpointer<'_>| {
        *counter.borrow_mut() += 1;
        if batch.iter().any(|r| r.data() == b"bad") {
            return Err(kcl::Error::msg("sink unavailable"));
        }
        Ok(())
    });
    let mut daemon = TestDaemon::with_strategy(processor, CheckpointStrategy::Manual);
    daemon.initialize("shardId-000000000000");
    daemon.process_payloads(["good-1", "good-2"]);
    let handled = daemon.delivered().unwrap().clone();
    let failed = daemon.process_payloads(["good-3", "bad"]);
    assert_eq!(failed.status.as_deref(), Some("processRecords"));
    let refused = daemon.process_payloads(["good-4"]);
    assert_eq!(refused.status.as_deref(), Some("processRecords"));
    assert_eq!(
        *calls.borrow(),
        4,
        "the good batch, 3 attempts of the failing one; the batch after it is refused"
    );

    let step = daemon.shutdown_requested();
    assert_eq!(step.checkpoints.len(), 1);
    assert_eq!(
        step.checkpoints[0].sequence_number.as_deref(),
        Some(handled.sequence_number().as_str())
    );
    assert_eq!(
        daemon.stored_checkpoint(),
        Some(StoredCheckpoint::At(handled.clone()))
    );

    let step = daemon.shard_ended();
    assert!(
        step.checkpoints.is_empty(),
        "the end of the shard would skip unhandled records"
    );
    assert_eq!(
        daemon.stored_checkpoint(),
        Some(StoredCheckpoint::At(handled))
    );
}

#[test]
fn checkpointer_refuses_to_pass_a_failure_with_a_typed_error() {
    let errors: Seen<CheckpointError> = Rc::default();
    let sink = errors.clone();
    struct Probe(Rc<RefCell<Vec<CheckpointError>>>);
    impl RecordProcessor for Probe {
        fn process_records(&mut self, batch: &Batch, _: &mut Checkpointer<'_>) -> kcl::Result<()> {
            if batch.iter().any(|r| r.data() == b"boom") {
                panic!("boom");
            }
            Ok(())
        }
        fn shutdown_requested(&mut self, cp: &mut Checkpointer<'_>) -> kcl::Result<()> {
            self.0.borrow_mut().extend(cp.checkpoint().err());
            Ok(())
        }
    }
    let mut daemon = TestDaemon::new(Probe(sink));
    daemon.initialize("shardId-000000000000");
    daemon.process_payloads(["boom"]);
    let step = daemon.shutdown_requested();
    assert!(step.checkpoints.is_empty());
    let errors = errors.borrow();
    assert!(
        matches!(&errors[..], [CheckpointError::PastFailure { stall, .. }] if stall.failed_at.is_some()),
        "{errors:?}"
    );
}

#[test]
fn shutdown_exception_marks_the_lease_lost_for_later_checkpoints() {
    let seen: Seen<(Result<(), CheckpointError>, bool)> = Rc::default();
    let sink = seen.clone();
    let mut daemon = TestDaemon::new(from_fn(move |batch: &Batch, cp: &mut Checkpointer<'_>| {
        let first = cp.checkpoint_at(batch.last().unwrap());
        sink.borrow_mut().push((first, cp.is_lease_lost()));
        let second = cp.checkpoint();
        sink.borrow_mut().push((second, cp.is_lease_lost()));
        Ok(())
    }));
    daemon.initialize("shardId-000000000000");
    daemon.fail_next_checkpoints(["ShutdownException"]);
    let step = daemon.process_payloads(["x"]);
    assert_eq!(
        *seen.borrow(),
        [
            (Err(CheckpointError::Shutdown), true),
            (Err(CheckpointError::Shutdown), true)
        ]
    );
    assert_eq!(
        step.checkpoints.len(),
        1,
        "the second call never reaches the daemon"
    );
    assert_eq!(daemon.child_lines().len(), 3, "status, checkpoint, status");
}

#[test]
fn default_strategy_checkpoints_after_every_batch_and_stops_before_a_failed_record() {
    let processor = from_fn(|batch: &Batch, _: &mut Checkpointer<'_>| {
        for record in batch {
            if record.data() == b"bad" {
                return Err(kcl::Error::msg("sink refused it").at_record(record.position().clone()));
            }
        }
        Ok(())
    });
    let mut daemon = TestDaemon::new(processor);
    daemon.initialize("shardId-000000000000");
    let step = daemon.process_payloads(["a", "b"]);
    let end_of_first = daemon.delivered().unwrap().clone();
    assert_eq!(step.checkpoints.len(), 1);
    assert_eq!(
        daemon.stored_checkpoint(),
        Some(StoredCheckpoint::At(end_of_first))
    );

    let (c, bad, d) = (
        daemon.next_record("c"),
        daemon.next_record("bad"),
        daemon.next_record("d"),
    );
    let step = daemon.process_records(vec![c.clone(), bad, d], None);
    assert_eq!(step.checkpoints.len(), 1, "partial success is checkpointed");
    assert_eq!(
        daemon.stored_checkpoint(),
        Some(StoredCheckpoint::At(c.position().clone()))
    );

    let step = daemon.process_payloads(["e"]);
    assert!(
        step.checkpoints.is_empty(),
        "the stalled shard checkpoints nothing more"
    );
    assert_eq!(
        daemon.stored_checkpoint(),
        Some(StoredCheckpoint::At(c.position().clone()))
    );
}

#[test]
fn every_n_records_strategy_counts_handled_records() {
    let processor = from_fn(|_: &Batch, _: &mut Checkpointer<'_>| Ok(()));
    let mut daemon = TestDaemon::with_strategy(processor, CheckpointStrategy::every_records(5));
    daemon.initialize("shardId-000000000000");
    assert!(
        daemon
            .process_payloads(["1", "2", "3"])
            .checkpoints
            .is_empty()
    );
    assert_eq!(daemon.process_payloads(["4", "5"]).checkpoints.len(), 1);
    assert!(daemon.process_payloads(["6"]).checkpoints.is_empty());
    assert!(
        daemon
            .process_payloads(Vec::<&str>::new())
            .checkpoints
            .is_empty()
    );
}

#[test]
fn interval_strategy_fires_on_an_empty_batch() {
    let processor = from_fn(|_: &Batch, _: &mut Checkpointer<'_>| Ok(()));
    let interval = std::time::Duration::from_millis(50);
    let mut daemon =
        TestDaemon::with_strategy(processor, CheckpointStrategy::every_interval(interval));
    daemon.initialize("shardId-000000000000");
    assert!(daemon.process_payloads(["1"]).checkpoints.is_empty());
    std::thread::sleep(interval * 2);
    let step = daemon.process_payloads(Vec::<&str>::new());
    assert_eq!(
        step.checkpoints.len(),
        1,
        "an empty batch after the interval checkpoints"
    );
    assert_eq!(
        daemon.stored_checkpoint(),
        Some(StoredCheckpoint::At(daemon.delivered().unwrap().clone()))
    );
}

#[test]
fn clicks_handler_is_called_per_record_and_stops_at_a_bad_click() {
    let mut daemon = TestDaemon::new(clicks::Handle);
    daemon.initialize("shardId-000000000000");
    let ok = daemon.next_record(r#"{"user":"ana","url":"/a"}"#);
    let no_url = daemon.next_record(r#"{"user":"bo","url":""}"#);
    let after = daemon.next_record(r#"{"user":"cy","url":"/c"}"#);
    let step = daemon.process_records(vec![ok.clone(), no_url, after], None);
    assert_eq!(step.status.as_deref(), Some("processRecords"));
    assert_eq!(
        daemon.stored_checkpoint(),
        Some(StoredCheckpoint::At(ok.position().clone()))
    );
    // The function itself stays an ordinary function.
    let direct = clicks::handle(
        kcl::Json(clicks::Click {
            user: "di".into(),
            url: "/d".into(),
        }),
        kcl::ShardId::from("shardId-000000000000"),
    );
    assert!(direct.is_ok());
}

#[cfg(feature = "tokio")]
#[test]
fn async_enrich_awaits_every_record_before_the_checkpoint() {
    let mut daemon = TestDaemon::new(async_enrich::Enricher::default());
    daemon.initialize("shardId-000000000000");
    let step = daemon.process_payloads(["a", "b", "c"]);
    assert_eq!(daemon.processor().enriched, 3);
    assert_eq!(step.checkpoints.len(), 1);
    let step = daemon.shutdown_requested();
    assert_eq!(
        step.checkpoints.len(),
        1,
        "the async shutdown hook checkpoints"
    );
    assert_eq!(step.checkpoints[0].sequence_number, None);
}

#[test]
fn shard_end_completes_even_when_the_last_record_was_already_checkpointed() {
    // The KCL stores SHARD_END for a checkpoint at the last delivered record only when that is
    // a new value; re-checkpointing the stored position is "unchanged". The runtime then sends
    // the null checkpoint itself, or the shard would never complete.
    struct Explicit;
    impl RecordProcessor for Explicit {
        fn process_records(&mut self, _: &Batch, _: &mut Checkpointer<'_>) -> kcl::Result<()> {
            Ok(()) // the default strategy checkpoints the last record
        }
        fn shard_ended(&mut self, cp: &mut Checkpointer<'_>) -> kcl::Result<()> {
            let last = cp.last_handled().cloned().expect("records were handled");
            cp.checkpoint_position(&last)?;
            Ok(())
        }
    }
    let mut daemon = TestDaemon::new(Explicit);
    daemon.initialize("shardId-000000000000");
    daemon.process_payloads(["a", "b"]);
    let last = daemon.delivered().unwrap().clone();
    assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::At(last)));
    let step = daemon.shard_ended();
    assert_eq!(step.checkpoints.len(), 2, "{:?}", step.checkpoints);
    assert_eq!(
        step.checkpoints[1].sequence_number, None,
        "the runtime's null checkpoint"
    );
    assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::ShardEnd));
}
