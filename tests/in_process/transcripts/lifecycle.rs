//! T1, T5, T6, T8 - T11 (docs/protocol.md §7) and the run's own lifecycle: initialize, lease lost,
//! shutdown requests, the legacy shutdown, empty batches, unknown actions, the end of input.

use super::*;

#[test]
fn t1_normal_lifecycle() {
    let seen = log::<String>();
    let handler_log = seen.clone();
    let processor = kcl::from_fn(move |batch, cp| {
        handler_log.borrow_mut().extend(texts(batch));
        cp.checkpoint()?;
        Ok(())
    });
    check(
        processor,
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"},{"data":"d29ybGQ=","partitionKey":"pk-2","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000500,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            C_CHECKPOINT_NULL,
            D_NULL_OK,
            C_PROCESSED,
            D_LEASE_LOST,
            C_LEASE_LOST,
        ],
    );
    assert_eq!(*seen.borrow(), ["hello", "world"]);
}

/// Records what `initialize` announced and what the checkpointer reports later.
#[derive(Default)]
struct InitProbe {
    initialized: Log<(String, StartingPosition)>,
    last_checkpoint_seen: Log<Option<Position>>,
}

impl RecordProcessor for InitProbe {
    fn initialize(&mut self, shard: &Initialize) -> kcl::Result<()> {
        self.initialized
            .borrow_mut()
            .push((shard.shard_id.clone(), shard.starting_position.clone()));
        Ok(())
    }
    fn process_records(&mut self, _batch: &Batch, cp: &mut Checkpointer<'_>) -> kcl::Result<()> {
        self.last_checkpoint_seen
            .borrow_mut()
            .push(cp.last_checkpoint().cloned());
        Ok(())
    }
}

#[test]
fn t5_initialize_has_no_checkpointer_and_exposes_the_resumed_position() {
    // This SDK hands `initialize` no checkpointer, so the checkpoint attempt of docs/protocol.md
    // T5 is unrepresentable: the only output is the status.
    let probe = InitProbe::default();
    let (initialized, seen) = (
        probe.initialized.clone(),
        probe.last_checkpoint_seen.clone(),
    );
    check(
        probe,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000002","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            C_INITIALIZED,
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            C_PROCESSED,
        ],
    );
    let resumed = Position::new(seq(0), 0);
    assert_eq!(
        *initialized.borrow(),
        [(
            "shardId-000000000002".to_owned(),
            StartingPosition::Checkpoint(resumed.clone())
        )]
    );
    assert_eq!(*seen.borrow(), [Some(resumed)]);
}

#[test]
fn t5_initialize_positions_inside_an_aggregate_and_sentinels() {
    let probe = InitProbe::default();
    let initialized = probe.initialized.clone();
    check(
        probe,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000003","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":3}"#,
            C_INITIALIZED,
        ],
    );
    assert_eq!(
        initialized.borrow()[0].1,
        StartingPosition::Checkpoint(Position::new(seq(0), 3))
    );

    for (sentinel, expected) in [
        ("TRIM_HORIZON", StartingPosition::TrimHorizon),
        ("LATEST", StartingPosition::Latest),
        ("AT_TIMESTAMP", StartingPosition::AtTimestamp),
    ] {
        let probe = InitProbe::default();
        let initialized = probe.initialized.clone();
        let line = format!(
            r#"{{"action":"initialize","shardId":"shardId-000000000004","sequenceNumber":"{sentinel}","subSequenceNumber":0}}"#
        );
        let out = transcript(probe, &[&line]);
        assert_lines(
            &out,
            &expect(&[r#"{"action":"status","responseFor":"initialize"}"#]),
        );
        assert_eq!(initialized.borrow()[0].1, expected);
    }
}

#[test]
fn t6_lease_lost_is_answered_with_a_status_only() {
    let lease_lost_calls = Rc::new(RefCell::new(0));
    struct Probe(Rc<RefCell<u32>>);
    impl RecordProcessor for Probe {
        fn process_records(&mut self, _: &Batch, _: &mut Checkpointer<'_>) -> kcl::Result<()> {
            Ok(())
        }
        fn lease_lost(&mut self) -> kcl::Result<()> {
            *self.0.borrow_mut() += 1;
            Ok(())
        }
    }
    check(
        Probe(lease_lost_calls.clone()),
        &[D_INITIALIZE, C_INITIALIZED, D_LEASE_LOST, C_LEASE_LOST],
    );
    assert_eq!(*lease_lost_calls.borrow(), 1);

    // EOF right after the leaseLost status: run_on returns Ok and nothing follows the status.
    let input = concat!(
        r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        "\n",
        r#"{"action":"leaseLost"}"#,
        "\n",
    );
    let mut output = Vec::new();
    let result = Runtime::new(WordCount::default())
        .checkpoint_retry(RetryPolicy::immediate(3))
        .run_on(input.as_bytes(), &mut output);
    assert!(result.is_ok(), "run_on at EOF: {result:?}");
    assert_eq!(
        String::from_utf8(output).unwrap(),
        "\n{\"action\":\"status\",\"responseFor\":\"initialize\"}\n\n{\"action\":\"status\",\"responseFor\":\"leaseLost\"}\n"
    );
}

#[test]
fn t8_shutdown_requested_then_process_records_then_lease_lost() {
    let (processor, state) = shared(WordCount::default());
    check(
        processor,
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            // Everything delivered (nothing yet) was handled: checkpoint_handled() sends a null checkpoint.
            D_SHUTDOWN_REQUESTED,
            C_CHECKPOINT_NULL,
            D_NULL_OK,
            C_SHUTDOWN_REQUESTED,
            // The child keeps running: a batch between shutdownRequested and leaseLost is handled.
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8gd29ybGQ=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            C_CHECKPOINT_SEQ0,
            D_SEQ0_OK,
            C_PROCESSED,
            D_LEASE_LOST,
            C_LEASE_LOST,
        ],
    );
    assert_eq!(state.borrow().total_words, 2);
}

#[test]
fn t9_legacy_shutdown_terminate_checkpoints_like_shard_ended() {
    check(
        WordCount::default(),
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            r#"D> {"action":"shutdown","reason":"TERMINATE"}"#,
            C_CHECKPOINT_NULL,
            D_NULL_OK,
            r#"C< {"action":"status","responseFor":"shutdown"}"#,
        ],
    );
}

#[test]
fn t10_legacy_shutdown_zombie_is_a_lost_lease() {
    check(
        WordCount::default(),
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            D_HELLO,
            C_CHECKPOINT_SEQ0,
            D_SEQ0_OK,
            C_PROCESSED,
            r#"D> {"action":"shutdown","reason":"ZOMBIE"}"#,
            r#"C< {"action":"status","responseFor":"shutdown"}"#,
        ],
    );
}

#[test]
fn t11_empty_batches_and_null_lag() {
    let (processor, state) = shared(WordCount::default());
    check(
        processor,
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            D_EMPTY_BATCH,
            C_PROCESSED,
            r#"D> {"action":"processRecords","records":[],"millisBehindLatest":null}"#,
            C_PROCESSED,
        ],
    );
    assert_eq!(
        state.borrow().batches,
        2,
        "the handler saw both empty batches"
    );
}

#[test]
fn unknown_action_is_answered_with_a_status() {
    check(
        WordCount::default(),
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            r#"D> {"action":"wave"}"#,
            r#"C< {"action":"status","responseFor":"wave"}"#,
            D_LEASE_LOST,
            C_LEASE_LOST,
        ],
    );
}

#[test]
fn eof_while_waiting_for_a_checkpoint_reply_ends_promptly() {
    // The daemon closes stdin after the checkpoint request. The checkpoint fails with
    // CheckpointError::ChannelClosed (not retryable, so no backoff even with the default policy);
    // word_count logs it and returns Ok, and the runtime, as always, answers the action with its
    // status before the main loop sees EOF and returns Ok. So the output ends with the request
    // followed by the status (which a real daemon, gone already, never reads).
    let input = concat!(
        r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        "\n",
        r#"{"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
        "\n",
    );
    let expected = expect(&[
        r#"{"action":"status","responseFor":"initialize"}"#,
        r#"{"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
        r#"{"action":"status","responseFor":"processRecords"}"#,
    ]);

    let started = Instant::now();
    let mut output = Vec::new();
    let result = Runtime::new(WordCount::default())
        .checkpoint_retry(RetryPolicy::default())
        .run_on(input.as_bytes(), &mut output);
    assert!(result.is_ok(), "run_on: {result:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_lines(&child_messages(&output), &expected);

    // A handler that propagates the error with `?` fails its batch; the status is still written.
    let errors = log::<String>();
    let handler_errors = errors.clone();
    let processor = kcl::from_fn(move |batch, cp| {
        let result = cp.checkpoint_at(batch.last().expect("one record"));
        handler_errors.borrow_mut().push(format!("{result:?}"));
        result?;
        Ok(())
    });
    let started = Instant::now();
    let mut output = Vec::new();
    let result = Runtime::new(processor)
        .checkpoint_retry(RetryPolicy::default())
        .run_on(input.as_bytes(), &mut output);
    assert!(result.is_ok(), "run_on: {result:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_lines(&child_messages(&output), &expected);
    assert_eq!(*errors.borrow(), ["Err(ChannelClosed)"]);
}

#[test]
fn process_records_without_initialize_and_missing_optional_fields() {
    // Tolerant parsing: unknown keys ignored; a record without `action`, `subSequenceNumber` or
    // arrival time still works. (Not the Jackson shape, so fed as raw input.)
    let (processor, seen) = record_keeper();
    let input = concat!(
        r#"{"action":"processRecords","extra":true,"records":[{"data":"aGk=","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588898"}],"millisBehindLatest":null}"#,
        "\n",
    );
    let out = run_input(processor, RetryPolicy::immediate(3), input.as_bytes());
    assert_lines(
        &out,
        &expect(&[r#"{"action":"status","responseFor":"processRecords"}"#]),
    );
    assert_eq!(
        *seen.borrow(),
        [SeenRecord {
            data: b"hi".to_vec(),
            key: "k".into(),
            position: Position::new(seq(0), 0),
            arrival: None,
        }]
    );
}

#[test]
fn kcl_1x_record_shape_and_missing_final_newline_are_tolerated() {
    // KCL-Java 1.x could write `"subSequenceNumber":null`; the last line has no terminator.
    let (processor, seen) = record_keeper();
    let input = concat!(
        r#"{"action":"processRecords","records":[{"data":"aGk=","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":null,"subSequenceNumber":null,"action":"record"}],"millisBehindLatest":null}"#,
        "\n",
        r#"{"action":"shutdown","reason":"ZOMBIE"}"#,
    );
    let out = run_input(processor, RetryPolicy::immediate(3), input.as_bytes());
    assert_lines(
        &out,
        &expect(&[
            r#"{"action":"status","responseFor":"processRecords"}"#,
            r#"{"action":"status","responseFor":"shutdown"}"#,
        ]),
    );
    assert_eq!(seen.borrow()[0].position, Position::new(seq(0), 0));
    assert_eq!(seen.borrow()[0].arrival, None);
}

#[test]
fn a_failing_output_channel_ends_run_on() {
    // The output fails: run_on ends instead of looping or panicking. A broken pipe means the
    // daemon is gone (nobody is left to answer, whether or not this process has read the end of
    // its input yet): a normal end. Any other output error is reported.
    struct Failing(std::io::ErrorKind);
    impl std::io::Write for Failing {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(self.0.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let input = concat!(
        r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        "\n",
        r#"{"action":"leaseLost"}"#,
        "\n",
    );
    let run = |kind| {
        Runtime::new(WordCount::default())
            .checkpoint_retry(RetryPolicy::immediate(3))
            .run_on(input.as_bytes(), Failing(kind))
            .map_err(|error| error.kind())
    };
    assert_eq!(run(std::io::ErrorKind::BrokenPipe), Ok(()));
    assert_eq!(
        run(std::io::ErrorKind::StorageFull),
        Err(std::io::ErrorKind::StorageFull)
    );
}

#[test]
fn a_daemon_that_dies_while_a_checkpoint_reply_is_awaited_ends_the_run_normally() {
    // kill -9 of the daemon: the child's checkpoint request gets EOF instead of a reply, and
    // the status that follows hits a closed pipe. stdin has ended, so this is a normal end.
    struct ClosedAfter(usize);
    impl std::io::Write for ClosedAfter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            self.0 -= 1;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let input = concat!(
        r#"{"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        "\n",
        r#"{"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
        "\n",
    );
    // Two writes succeed (the initialize status, the checkpoint request); the status after the
    // failed checkpoint meets the closed pipe.
    let result = Runtime::new(WordCount::default())
        .checkpoint_retry(RetryPolicy::immediate(3))
        .run_on(input.as_bytes(), ClosedAfter(2));
    assert!(result.is_ok(), "{result:?}");
}
