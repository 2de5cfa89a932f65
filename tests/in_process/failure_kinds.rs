//! What a failed handler call means, under every failure policy: a checkpoint error returned by
//! the handler is not a failure of records (a lost lease or a gone daemon is answered with a
//! status and nothing else; throttling past the retry budget never dead-letters or exits), a batch
//! extractor's payload error names its record without counting the records before it as handled,
//! an empty batch has no records to fail, and user code never escapes `catch_unwind`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use kcl::testing::{StoredCheckpoint, TestDaemon};
use kcl::{
    Batch, CheckpointError, CheckpointStrategy, Checkpointer, Error, Failure, FailureAction,
    FailurePolicy, RecordProcessor, Result, RetryPolicy, Runtime,
};
use serde_json::json;

use crate::support::protocol_lines as lines;

const POLICIES: [FailureAction; 3] = [
    FailureAction::Stop,
    FailureAction::Skip,
    FailureAction::Exit,
];

fn policy(action: FailureAction) -> FailurePolicy {
    let policy = match action {
        FailureAction::Stop => FailurePolicy::stop(),
        FailureAction::Skip => FailurePolicy::skip(),
        FailureAction::Exit => FailurePolicy::exit(),
    };
    policy.backoff(Duration::ZERO, Duration::ZERO)
}

/// Handles every batch (counting calls and payloads), then does what `checkpoint` says with the
/// checkpointer and returns its error with `?`; dead-lettered records are collected.
struct Checkpointing {
    checkpoint: fn(&Batch, &mut Checkpointer<'_>) -> std::result::Result<(), CheckpointError>,
    /// Whether to checkpoint before handling (then an error means nothing was handled).
    first: bool,
    calls: Rc<RefCell<Vec<Vec<String>>>>,
    handled: Rc<RefCell<Vec<String>>>,
    dead: Rc<RefCell<Vec<String>>>,
}

impl Checkpointing {
    fn new(
        first: bool,
        checkpoint: fn(&Batch, &mut Checkpointer<'_>) -> std::result::Result<(), CheckpointError>,
    ) -> Self {
        Checkpointing {
            checkpoint,
            first,
            calls: Rc::default(),
            handled: Rc::default(),
            dead: Rc::default(),
        }
    }
}

fn texts(records: &[kcl::Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(r.data()).into_owned())
        .collect()
}

impl RecordProcessor for Checkpointing {
    fn process_records(&mut self, batch: &Batch, cp: &mut Checkpointer<'_>) -> Result<()> {
        self.calls.borrow_mut().push(texts(batch.records()));
        if self.first {
            (self.checkpoint)(batch, cp)?;
        }
        self.handled.borrow_mut().extend(texts(batch.records()));
        if !self.first {
            (self.checkpoint)(batch, cp)?;
        }
        Ok(())
    }

    fn on_failure(&mut self, failure: &Failure<'_>) -> Result<()> {
        self.dead.borrow_mut().extend(texts(failure.records));
        Ok(())
    }
}

fn checkpoint_all(
    _: &Batch,
    cp: &mut Checkpointer<'_>,
) -> std::result::Result<(), CheckpointError> {
    cp.checkpoint()
}

fn checkpoint_last(
    b: &Batch,
    cp: &mut Checkpointer<'_>,
) -> std::result::Result<(), CheckpointError> {
    cp.checkpoint_at(b.last().expect("records"))
}

#[test]
fn a_lost_lease_in_a_handlers_checkpoint_is_answered_under_every_policy() {
    // The checkpoint after the records (they count as handled) and before them (nothing handled:
    // still no retry, since nothing more can be checkpointed).
    for action in POLICIES {
        for (first, checkpoint) in [
            (
                false,
                checkpoint_all as fn(&Batch, &mut Checkpointer<'_>) -> _,
            ),
            (false, checkpoint_last),
            (true, checkpoint_all),
        ] {
            let processor = Checkpointing::new(first, checkpoint);
            let (calls, dead) = (processor.calls.clone(), processor.dead.clone());
            let mut daemon = TestDaemon::with_failure_policy(processor, policy(action));
            daemon.initialize("shardId-000000000001");
            daemon.fail_next_checkpoints(["ShutdownException"]);
            let step = daemon.process_payloads(["a", "b"]);
            assert_eq!(step.status.as_deref(), Some("processRecords"), "{action:?}");
            assert_eq!(
                daemon.exit_reason(),
                None,
                "{action:?}: a lost lease never exits"
            );
            assert_eq!(calls.borrow().len(), 1, "{action:?}: no retry");
            assert!(dead.borrow().is_empty(), "{action:?}: no on_failure");
            assert_eq!(
                step.checkpoints.len(),
                1,
                "{action:?}: nothing more is asked"
            );
            let step = daemon.lease_lost();
            assert_eq!(step.status.as_deref(), Some("leaseLost"));
        }
    }
}

/// The audit's transcript, through the real loop: `exit` used to end the process without the
/// status, which makes the daemon exit with every shard of the worker.
#[test]
fn a_lost_lease_under_exit_still_answers_process_records_through_the_loop() {
    let input = concat!(
        r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        "\n",
        r#"{"action":"processRecords","records":[{"data":"YQ==","partitionKey":"k","sequenceNumber":"101","approximateArrivalTimestamp":1,"subSequenceNumber":0,"action":"record"},{"data":"Yg==","partitionKey":"k","sequenceNumber":"102","approximateArrivalTimestamp":1,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
        "\n",
        r#"{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":"ShutdownException"}"#,
        "\n",
        r#"{"action":"leaseLost"}"#,
        "\n",
    );
    for action in POLICIES {
        let mut output = Vec::new();
        Runtime::new(Checkpointing::new(false, checkpoint_all))
            .failure_policy(policy(action))
            .run_on(input.as_bytes(), &mut output)
            .unwrap_or_else(|e| panic!("{action:?}: {e}"));
        assert_eq!(
            lines(&output),
            [
                json!({"action":"status","responseFor":"initialize"}),
                json!({"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}),
                json!({"action":"status","responseFor":"processRecords"}),
                json!({"action":"status","responseFor":"leaseLost"}),
            ],
            "{action:?}"
        );
    }
}

/// The daemon dies while the handler waits for a checkpoint reply: not a failure of records.
#[test]
fn the_daemon_gone_during_a_handlers_checkpoint_is_not_a_record_failure() {
    let input = concat!(
        r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        "\n",
        r#"{"action":"processRecords","records":[{"data":"YQ==","partitionKey":"k","sequenceNumber":"101","approximateArrivalTimestamp":1,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
        "\n",
    );
    for action in POLICIES {
        let processor = Checkpointing::new(false, checkpoint_all);
        let (calls, dead) = (processor.calls.clone(), processor.dead.clone());
        let mut output = Vec::new();
        let result = Runtime::new(processor)
            .failure_policy(policy(action).attempts(3))
            .run_on(input.as_bytes(), &mut output);
        assert!(result.is_ok(), "{action:?}: {result:?}");
        assert_eq!(calls.borrow().len(), 1, "{action:?}: no retry");
        assert!(dead.borrow().is_empty(), "{action:?}: no on_failure");
    }
}

#[test]
fn throttling_past_the_retry_budget_at_the_end_of_a_handler_neither_stalls_nor_skips_nor_exits() {
    for action in POLICIES {
        let processor = Checkpointing::new(false, checkpoint_all);
        let (calls, dead) = (processor.calls.clone(), processor.dead.clone());
        let runtime = Runtime::new(processor)
            .failure_policy(policy(action))
            .checkpoint_retry(RetryPolicy::immediate(2));
        let mut daemon = TestDaemon::from_runtime(runtime);
        daemon.initialize("shardId-000000000001");
        daemon.fail_next_checkpoints(["ThrottlingException", "ThrottlingException"]);
        let step = daemon.process_payloads(["a", "b"]);
        assert_eq!(step.status.as_deref(), Some("processRecords"), "{action:?}");
        assert_eq!(daemon.exit_reason(), None, "{action:?}");
        assert_eq!(
            calls.borrow().len(),
            1,
            "{action:?}: the records were handled once"
        );
        assert!(
            dead.borrow().is_empty(),
            "{action:?}: nothing dead-lettered"
        );
        // The shard goes on: the next batch is handled and its checkpoint covers both.
        let step = daemon.process_payloads(["c"]);
        assert_eq!(calls.borrow().len(), 2, "{action:?}: not refused");
        assert!(step.checkpoints.iter().all(|c| c.error.is_none()));
        assert_eq!(
            daemon.stored_checkpoint(),
            Some(StoredCheckpoint::At(daemon.delivered().unwrap().clone())),
            "{action:?}"
        );
    }
}

/// A checkpoint refused before the handler handled anything: the records are retried like a
/// failure under `stop`, then the shard stops; never dead-lettered, never an exit.
#[test]
fn a_checkpoint_error_before_the_records_were_handled_stops_the_shard_under_every_policy() {
    fn previous(_: &Batch, cp: &mut Checkpointer<'_>) -> std::result::Result<(), CheckpointError> {
        // Past everything delivered: IllegalArgumentException.
        cp.checkpoint_raw(&"9".repeat(60), None)
    }
    for action in POLICIES {
        let processor = Checkpointing::new(true, previous);
        let (calls, handled, dead) = (
            processor.calls.clone(),
            processor.handled.clone(),
            processor.dead.clone(),
        );
        let mut daemon = TestDaemon::with_failure_policy(processor, policy(action).attempts(2));
        daemon.initialize("shardId-000000000001");
        let step = daemon.process_payloads(["a", "b"]);
        assert_eq!(step.status.as_deref(), Some("processRecords"), "{action:?}");
        assert_eq!(daemon.exit_reason(), None, "{action:?}: never an exit");
        assert!(dead.borrow().is_empty(), "{action:?}: never dead-lettered");
        assert_eq!(calls.borrow().len(), 2, "{action:?}: retried");
        assert!(handled.borrow().is_empty());
        assert_eq!(
            daemon.stored_checkpoint(),
            None,
            "{action:?}: nothing passed"
        );
        daemon.process_payloads(["c"]);
        assert_eq!(calls.borrow().len(), 2, "{action:?}: the shard stopped");
    }
}

#[derive(serde::Deserialize)]
struct Click {
    user: String,
}

/// The audit's processor: a batch extractor of JSON, with a dead-letter hook.
#[derive(Default)]
struct Clicks {
    calls: Vec<Vec<String>>,
    dead: Vec<String>,
}

#[kcl::processor]
impl Clicks {
    #[kcl::on_records]
    fn handle(&mut self, clicks: Vec<kcl::Json<Click>>) {
        self.calls
            .push(clicks.into_iter().map(|kcl::Json(c)| c.user).collect());
    }

    #[kcl::on_failure]
    fn dead_letter(&mut self, failure: &Failure<'_>) {
        self.dead.extend(texts(failure.records));
    }
}

#[test]
fn skip_with_a_batch_extractor_dead_letters_only_the_bad_record_and_handles_the_others() {
    let mut daemon =
        TestDaemon::with_failure_policy(Clicks::default(), policy(FailureAction::Skip).attempts(1));
    daemon.initialize("shardId-000000000001");
    daemon.process_payloads([r#"{"user":"alice"}"#, "garbage", r#"{"user":"carol"}"#]);
    let clicks = daemon.processor();
    assert_eq!(clicks.calls, [vec!["alice", "carol"]]);
    assert_eq!(clicks.dead, ["garbage"]);
    assert_eq!(
        daemon.stored_checkpoint(),
        Some(StoredCheckpoint::At(daemon.delivered().unwrap().clone()))
    );
}

#[test]
fn skip_with_a_batch_extractor_handles_every_good_record_around_several_bad_ones() {
    let mut daemon =
        TestDaemon::with_failure_policy(Clicks::default(), policy(FailureAction::Skip).attempts(2));
    daemon.initialize("shardId-000000000001");
    daemon.process_payloads([
        "bad-1",
        r#"{"user":"alice"}"#,
        "bad-2",
        r#"{"user":"bob"}"#,
        "bad-3",
    ]);
    let clicks = daemon.processor();
    assert_eq!(clicks.calls, [vec!["alice", "bob"]]);
    assert_eq!(clicks.dead, ["bad-1", "bad-2", "bad-3"]);
    assert_eq!(
        daemon.stored_checkpoint(),
        Some(StoredCheckpoint::At(daemon.delivered().unwrap().clone())),
        "the last record was skipped: the whole batch is done"
    );
}

/// `Vec<String>` through the plain API, under `stop`: the records before the bad one were never
/// handled, so they are retried with it and nothing of the batch is checkpointed.
#[test]
fn stop_with_a_batch_extractor_never_counts_the_records_before_the_bad_one_as_handled() {
    let calls = Rc::new(RefCell::new(0));
    let count = calls.clone();
    let processor = kcl::from_fn(move |batch, _| {
        *count.borrow_mut() += 1;
        let _texts: Vec<String> = batch.extract()?;
        Ok(())
    });
    let mut daemon =
        TestDaemon::with_failure_policy(processor, policy(FailureAction::Stop).attempts(3));
    daemon.initialize("shardId-000000000001");
    daemon.process_payloads(["ok"]);
    let before = daemon.delivered().unwrap().clone();
    let good = daemon.next_record("good");
    let bad = daemon.next_record(b"\xff\xfe");
    daemon.process_records(vec![good.clone(), bad], None);
    assert_eq!(*calls.borrow(), 4, "1 + 3 attempts");
    assert_eq!(
        daemon.stored_checkpoint(),
        Some(StoredCheckpoint::At(before))
    );
    let step = daemon.shutdown_requested();
    assert!(
        step.checkpoints.is_empty(),
        "nothing past {} may be stored: `good` was never handled",
        good.position()
    );
}

#[test]
fn a_failing_handler_on_an_empty_batch_never_calls_on_failure_nor_exits() {
    for action in POLICIES {
        let dead = Rc::new(RefCell::new(0));
        struct Empty(Rc<RefCell<u32>>);
        impl RecordProcessor for Empty {
            fn process_records(&mut self, _: &Batch, _: &mut Checkpointer<'_>) -> Result<()> {
                Err(Error::msg("nothing to do"))
            }
            fn on_failure(&mut self, _: &Failure<'_>) -> Result<()> {
                *self.0.borrow_mut() += 1;
                Ok(())
            }
        }
        let mut daemon = TestDaemon::with_failure_policy(Empty(dead.clone()), policy(action));
        daemon.initialize("shardId-000000000001");
        let step = daemon.process_records(Vec::new(), None);
        assert_eq!(step.status.as_deref(), Some("processRecords"), "{action:?}");
        assert_eq!(daemon.exit_reason(), None, "{action:?}");
        assert_eq!(*dead.borrow(), 0, "{action:?}");
    }
}

/// An error whose `Display` panics, and a panic whose payload panics when dropped: the runtime
/// still answers every action (the audit saw exit 101 and no status).
#[test]
fn user_code_in_an_errors_display_or_a_panic_payloads_drop_never_escapes() {
    #[derive(Debug)]
    struct Weird;
    impl std::fmt::Display for Weird {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            panic!("Display of the user's error panicked")
        }
    }
    impl std::error::Error for Weird {}
    struct Bomb;
    impl Drop for Bomb {
        fn drop(&mut self) {
            panic!("Drop of a panic payload panicked")
        }
    }
    struct Treacherous;
    impl RecordProcessor for Treacherous {
        fn initialize(&mut self, _: &kcl::Initialize) -> Result<()> {
            Err(Weird.into())
        }
        fn process_records(&mut self, batch: &Batch, _: &mut Checkpointer<'_>) -> Result<()> {
            match batch.records()[0].data() {
                b"display" => Err(Weird.into()),
                _ => std::panic::panic_any(Bomb),
            }
        }
        fn lease_lost(&mut self) -> Result<()> {
            Err(Weird.into())
        }
    }
    let record = |data: &str, seq: &str| {
        format!(
            r#"{{"action":"processRecords","records":[{{"data":"{data}","partitionKey":"k","sequenceNumber":"{seq}","approximateArrivalTimestamp":1,"subSequenceNumber":0,"action":"record"}}],"millisBehindLatest":0}}"#
        )
    };
    let input = [
        r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#.to_owned(),
        record("ZGlzcGxheQ==", "101"), // "display"
        record("Ym9tYg==", "102"),     // "bomb"
        r#"{"action":"leaseLost"}"#.to_owned(),
    ]
    .join("\n");
    for action in [FailureAction::Stop, FailureAction::Skip] {
        let mut output = Vec::new();
        Runtime::new(Treacherous)
            .failure_policy(policy(action).attempts(2))
            .run_on(input.as_bytes(), &mut output)
            .unwrap();
        assert_eq!(
            lines(&output),
            [
                json!({"action":"status","responseFor":"initialize"}),
                json!({"action":"status","responseFor":"processRecords"}),
                json!({"action":"status","responseFor":"processRecords"}),
                json!({"action":"status","responseFor":"leaseLost"}),
            ],
            "{action:?}"
        );
    }
}

#[test]
fn a_sub_sequence_number_the_daemon_cannot_read_is_refused_without_a_line() {
    let refused = Rc::new(RefCell::new(Vec::new()));
    let seen = refused.clone();
    let processor = kcl::from_fn(move |batch, cp| {
        let sequence = batch.records()[0].sequence_number().to_string();
        seen.borrow_mut()
            .push(cp.checkpoint_raw(&sequence, Some(u64::MAX)));
        seen.borrow_mut()
            .push(cp.checkpoint_raw(&sequence, Some(1 << 63)));
        seen.borrow_mut().push(
            cp.checkpoint_position(&kcl::Position::new(sequence.as_str(), i64::MAX as u64 + 1)),
        );
        Ok(())
    });
    let mut daemon = TestDaemon::with_strategy(processor, CheckpointStrategy::Manual);
    daemon.initialize("shardId-000000000001");
    let step = daemon.process_payloads(["a"]);
    assert!(step.checkpoints.is_empty(), "{:?}", step.checkpoints);
    let refused = refused.borrow();
    assert_eq!(refused.len(), 3);
    assert!(
        refused
            .iter()
            .all(|r| *r == Err(CheckpointError::IllegalArgument)),
        "{refused:?}"
    );
}

#[test]
fn a_checkpoint_requested_in_shutdown_requested_or_shard_ended_is_made() {
    struct Asks;
    impl RecordProcessor for Asks {
        fn process_records(&mut self, _: &Batch, _: &mut Checkpointer<'_>) -> Result<()> {
            Ok(())
        }
        fn shutdown_requested(&mut self, cp: &mut Checkpointer<'_>) -> Result<()> {
            cp.request_checkpoint();
            Ok(())
        }
        fn shard_ended(&mut self, cp: &mut Checkpointer<'_>) -> Result<()> {
            cp.request_checkpoint();
            Ok(())
        }
    }
    let mut daemon = TestDaemon::with_strategy(Asks, CheckpointStrategy::Manual);
    daemon.initialize("shardId-000000000001");
    daemon.process_payloads(["a"]);
    assert_eq!(daemon.stored_checkpoint(), None);
    let step = daemon.shutdown_requested();
    assert_eq!(step.checkpoints.len(), 1);
    assert_eq!(
        daemon.stored_checkpoint(),
        Some(StoredCheckpoint::At(daemon.delivered().unwrap().clone()))
    );
    daemon.process_payloads(["b"]);
    let step = daemon.shard_ended();
    assert_eq!(
        step.checkpoints.len(),
        1,
        "one checkpoint, asked by the hook"
    );
    assert_eq!(daemon.stored_checkpoint(), Some(StoredCheckpoint::ShardEnd));
}

/// The macro hooks with a checkpointer honour `Checkpoint::Now` too.
#[derive(Default)]
struct Committer;

#[kcl::processor]
impl Committer {
    #[kcl::on_records]
    fn handle(&mut self, _records: &[kcl::Record]) {}

    #[kcl::on_shutdown_requested]
    fn bye(&mut self, _cp: &mut Checkpointer<'_>) -> kcl::Checkpoint {
        kcl::Checkpoint::Now
    }
}

#[test]
fn checkpoint_now_from_a_macro_shutdown_hook_is_made() {
    let mut daemon = TestDaemon::with_strategy(Committer, CheckpointStrategy::Manual);
    daemon.initialize("shardId-000000000001");
    daemon.process_payloads(["a"]);
    assert_eq!(daemon.stored_checkpoint(), None);
    let step = daemon.shutdown_requested();
    assert_eq!(step.checkpoints.len(), 1);
    assert_eq!(
        daemon.stored_checkpoint(),
        Some(StoredCheckpoint::At(daemon.delivered().unwrap().clone()))
    );
}

/// A final checkpoint error the handler returns by itself (kept from earlier, or made by hand)
/// is classified by what it says, even when no checkpoint of this call failed.
#[test]
fn a_final_checkpoint_error_returned_by_hand_is_answered_without_retry_or_dead_letter() {
    for error in [
        CheckpointError::Shutdown,
        CheckpointError::ChannelClosed,
        CheckpointError::Io("Broken pipe".into()),
    ] {
        for action in POLICIES {
            let calls = Rc::new(RefCell::new(0));
            let dead = Rc::new(RefCell::new(0));
            struct Gone {
                error: CheckpointError,
                calls: Rc<RefCell<u32>>,
                dead: Rc<RefCell<u32>>,
            }
            impl RecordProcessor for Gone {
                fn process_records(&mut self, _: &Batch, _: &mut Checkpointer<'_>) -> Result<()> {
                    *self.calls.borrow_mut() += 1;
                    Err(self.error.clone().into())
                }
                fn on_failure(&mut self, _: &Failure<'_>) -> Result<()> {
                    *self.dead.borrow_mut() += 1;
                    Ok(())
                }
            }
            let processor = Gone {
                error: error.clone(),
                calls: calls.clone(),
                dead: dead.clone(),
            };
            let mut daemon = TestDaemon::with_failure_policy(processor, policy(action));
            daemon.initialize("shardId-000000000001");
            let step = daemon.process_payloads(["a"]);
            assert_eq!(
                step.status.as_deref(),
                Some("processRecords"),
                "{error:?} {action:?}"
            );
            assert_eq!(daemon.exit_reason(), None, "{error:?} {action:?}");
            assert_eq!(*calls.borrow(), 1, "{error:?} {action:?}: no retry");
            assert_eq!(*dead.borrow(), 0, "{error:?} {action:?}: no on_failure");
        }
    }
}

#[test]
fn the_checkpointers_view_of_the_lease_delivered_and_lost() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = seen.clone();
    let processor = kcl::from_fn(move |batch, cp| {
        let before = cp.is_lease_lost();
        let delivered = cp.last_delivered() == batch.last().map(|r| r.position());
        let _ = cp.checkpoint();
        log.borrow_mut()
            .push((before, delivered, cp.is_lease_lost()));
        Ok(())
    });
    let mut daemon = TestDaemon::with_strategy(processor, CheckpointStrategy::Manual);
    daemon.initialize("shardId-000000000001");
    daemon.process_payloads(["a", "b"]);
    daemon.fail_next_checkpoints(["ShutdownException"]);
    daemon.process_payloads(["c"]);
    assert_eq!(*seen.borrow(), [(false, true, false), (false, true, true)]);
}

/// The log says where the handler goes on after a skipped record, and why a checkpoint error is
/// not dead-lettered.
#[test]
fn skipping_and_checkpoint_errors_are_explained_in_the_log() {
    let input = crate::support::input(&[
        r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        // alice, garbage, carol
        r#"{"action":"processRecords","records":[{"data":"eyJ1c2VyIjoiYWxpY2UifQ==","partitionKey":"k","sequenceNumber":"101","approximateArrivalTimestamp":1,"subSequenceNumber":0,"action":"record"},{"data":"Z2FyYmFnZQ==","partitionKey":"k","sequenceNumber":"102","approximateArrivalTimestamp":1,"subSequenceNumber":0,"action":"record"},{"data":"eyJ1c2VyIjoiY2Fyb2wifQ==","partitionKey":"k","sequenceNumber":"103","approximateArrivalTimestamp":1,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
    ]);
    let runtime = Runtime::new(Clicks::default())
        .checkpoint_strategy(CheckpointStrategy::Manual)
        .failure_policy(policy(FailureAction::Skip).attempts(1));
    let run = crate::support::run_capturing(runtime, &input);
    run.logged(&["going on with the records not yet handled (2 records, 101/0 ..= 103/0)"]);
    run.logged(&["batch (3 records, 101/0 ..= 103/0)"]);

    fn past_everything(
        _: &Batch,
        cp: &mut Checkpointer<'_>,
    ) -> std::result::Result<(), CheckpointError> {
        cp.checkpoint_raw(&"9".repeat(60), None)
    }
    let input = crate::support::input(&[
        r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        r#"{"action":"processRecords","records":[{"data":"YQ==","partitionKey":"k","sequenceNumber":"101","approximateArrivalTimestamp":1,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
        r#"{"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":"IllegalArgumentException"}"#,
    ]);
    for (action, explained) in [
        (FailureAction::Skip, true),
        (FailureAction::Exit, true),
        (FailureAction::Stop, false),
    ] {
        let runtime = Runtime::new(Checkpointing::new(true, past_everything))
            .failure_policy(policy(action).attempts(1));
        let run = crate::support::run_capturing(runtime, &input);
        let why = format!(
            "a checkpoint error is not a failure of records, so the `{action:?}` policy does not apply to it"
        );
        assert_eq!(run.log.contains(&why), explained, "{action:?}: {}", run.log);
        run.logged(&["The shard stalls: record 101/0 was not handled"]);
    }
}

/// Fails each poisoned record on its first attempt only.
struct FailsOnce {
    poison: Vec<&'static str>,
    failed: Vec<String>,
    handled: Vec<String>,
    dead: Vec<String>,
}

impl RecordProcessor for FailsOnce {
    fn process_records(&mut self, batch: &Batch, _: &mut Checkpointer<'_>) -> Result<()> {
        for record in batch {
            let text = String::from_utf8_lossy(record.data()).into_owned();
            if self.poison.contains(&text.as_str()) && !self.failed.contains(&text) {
                self.failed.push(text);
                return Err(Error::msg("once").at_record(record.position().clone()));
            }
            self.handled.push(text);
        }
        Ok(())
    }

    fn on_failure(&mut self, failure: &Failure<'_>) -> Result<()> {
        self.dead.extend(texts(failure.records));
        Ok(())
    }
}

/// Attempts count per record that fails: a retry that gets past the failed record starts the
/// count afresh for the next one, so three records that each fail once are all handled with two
/// attempts, under every policy.
#[test]
fn attempts_count_afresh_once_a_retry_gets_past_the_failed_record() {
    for action in POLICIES {
        let processor = FailsOnce {
            poison: vec!["a", "b", "c"],
            failed: Vec::new(),
            handled: Vec::new(),
            dead: Vec::new(),
        };
        let mut daemon = TestDaemon::with_failure_policy(processor, policy(action).attempts(2));
        daemon.initialize("shardId-000000000001");
        let step = daemon.process_payloads(["a", "b", "c"]);
        assert_eq!(step.status.as_deref(), Some("processRecords"), "{action:?}");
        assert_eq!(daemon.exit_reason(), None, "{action:?}");
        assert_eq!(daemon.processor().handled, ["a", "b", "c"], "{action:?}");
        assert!(daemon.processor().dead.is_empty(), "{action:?}");
        assert_eq!(
            daemon.stored_checkpoint(),
            Some(StoredCheckpoint::At(daemon.delivered().unwrap().clone())),
            "{action:?}"
        );
    }
}

/// Skipped records count toward `every(records = N)` like handled ones.
#[test]
fn dead_lettered_records_count_toward_the_record_strategy() {
    let mut daemon = TestDaemon::from_runtime(
        Runtime::new(Clicks::default())
            .checkpoint_strategy(CheckpointStrategy::every_records(3))
            .failure_policy(policy(FailureAction::Skip).attempts(1)),
    );
    daemon.initialize("shardId-000000000001");
    daemon.process_payloads(["bad-1", "bad-2", "bad-3"]);
    assert_eq!(daemon.processor().dead, ["bad-1", "bad-2", "bad-3"]);
    assert_eq!(
        daemon.stored_checkpoint(),
        Some(StoredCheckpoint::At(daemon.delivered().unwrap().clone())),
        "three records were finished: the strategy's count is reached"
    );
}

/// A handler that panics after the lease was lost (or the daemon went away) is answered like a
/// lost lease: nothing more can be checkpointed, so no retry and no `on_failure`. (It checkpoints
/// the previous batch, so no record of this one is claimed handled.)
#[test]
fn a_panic_after_the_lease_was_lost_is_answered_without_retry_or_dead_letter() {
    for action in POLICIES {
        let calls = Rc::new(RefCell::new(0));
        let count = calls.clone();
        let processor = kcl::from_fn(move |batch, cp| {
            if batch.records()[0].data() == b"a" {
                return Ok(());
            }
            *count.borrow_mut() += 1;
            let _ = cp.checkpoint_handled(); // ShutdownException: the lease moved
            panic!("after the lease was lost");
        });
        let runtime = Runtime::new(processor)
            .checkpoint_strategy(CheckpointStrategy::Manual)
            .failure_policy(policy(action));
        let mut daemon = TestDaemon::from_runtime(runtime);
        daemon.initialize("shardId-000000000001");
        daemon.process_payloads(["a"]);
        daemon.fail_next_checkpoints(["ShutdownException"]);
        let step = daemon.process_payloads(["b"]);
        assert_eq!(step.checkpoints.len(), 1, "{action:?}");
        assert_eq!(step.status.as_deref(), Some("processRecords"), "{action:?}");
        assert_eq!(daemon.exit_reason(), None, "{action:?}");
        assert_eq!(*calls.borrow(), 1, "{action:?}: no retry");
    }
}

/// The handler ignores the checkpoint error and fails with its own error afterwards: once the
/// lease is lost (or the daemon is gone) during the call, nothing more can be checkpointed, so
/// the failure is answered like a lost lease whatever the error says. (The handler checkpoints
/// the previous batch, so no record of this one is claimed handled.)
#[test]
fn any_error_after_the_lease_or_the_daemon_was_lost_in_the_call_is_answered_only() {
    fn handler(calls: Rc<RefCell<u32>>) -> impl FnMut(&Batch, &mut Checkpointer<'_>) -> Result<()> {
        move |batch, cp| {
            if batch.records()[0].data() == b"a" {
                return Ok(());
            }
            *calls.borrow_mut() += 1;
            let _ = cp.checkpoint_handled(); // the previous batch
            Err(Error::msg("my own error, after the checkpoint failed"))
        }
    }
    for action in POLICIES {
        // The lease moved.
        let calls = Rc::new(RefCell::new(0));
        let runtime = Runtime::new(kcl::from_fn(handler(calls.clone())))
            .checkpoint_strategy(CheckpointStrategy::Manual)
            .failure_policy(policy(action));
        let mut daemon = TestDaemon::from_runtime(runtime);
        daemon.initialize("shardId-000000000001");
        daemon.process_payloads(["a"]);
        daemon.fail_next_checkpoints(["ShutdownException"]);
        let step = daemon.process_payloads(["b"]);
        assert_eq!(step.checkpoints.len(), 1, "{action:?}");
        assert_eq!(step.status.as_deref(), Some("processRecords"), "{action:?}");
        assert_eq!(daemon.exit_reason(), None, "{action:?}");
        assert_eq!(*calls.borrow(), 1, "{action:?}: no retry");

        // The daemon is gone: stdin ends while the reply is awaited.
        let input = crate::support::input(&[
            r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"{"action":"processRecords","records":[{"data":"YQ==","partitionKey":"k","sequenceNumber":"101","approximateArrivalTimestamp":1,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"{"action":"processRecords","records":[{"data":"Yg==","partitionKey":"k","sequenceNumber":"102","approximateArrivalTimestamp":1,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
        ]);
        let calls = Rc::new(RefCell::new(0));
        let runtime = Runtime::new(kcl::from_fn(handler(calls.clone())))
            .checkpoint_strategy(CheckpointStrategy::Manual)
            .failure_policy(policy(action));
        let run = crate::support::run_capturing(runtime, &input);
        assert!(run.result.is_ok(), "{action:?}: {:?}", run.result);
        assert_eq!(*calls.borrow(), 1, "{action:?}: no retry");
    }
}

/// After the lease is lost, the runtime does not try its own checkpoint (and so does not log a
/// failed one as if a later checkpoint could cover the records).
#[test]
fn after_a_lost_lease_the_runtime_does_not_try_its_own_checkpoint() {
    let input = crate::support::input(&[
        r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        r#"{"action":"processRecords","records":[{"data":"YQ==","partitionKey":"k","sequenceNumber":"101","approximateArrivalTimestamp":1,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
        r#"{"action":"checkpoint","sequenceNumber":"100","subSequenceNumber":0,"error":"ShutdownException"}"#,
    ]);
    // The handler checkpoints the record before it (its own choice), which fails: the lease
    // moved. The batch itself succeeds, so the strategy would checkpoint 101 next.
    let processor = kcl::from_fn(|batch, cp| {
        let _ = cp.checkpoint_raw("100", Some(0));
        let _ = batch;
        Ok(())
    });
    let run = crate::support::run_capturing(Runtime::new(processor), &input);
    assert!(
        !run.log.contains("the next one covers these records"),
        "{}",
        run.log
    );
    assert_eq!(
        run.lines,
        [
            crate::support::status("initialize"),
            json!({"action":"checkpoint","sequenceNumber":"100","subSequenceNumber":0}),
            crate::support::status("processRecords"),
        ]
    );
}
