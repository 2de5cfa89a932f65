//! T2 - T4 (docs/protocol.md §7) and checkpoint replies: positions asked for, retries of
//! throttling, errors that are not retried, replies that never come or are not replies.

use super::*;

#[test]
fn t2_checkpoint_at_sequence_and_sub_sequence() {
    let (processor, state) = shared(WordCount::default());
    check(
        processor,
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            r#"D> {"action":"processRecords","records":[{"data":"ZXZ0LTA=","partitionKey":"u-a","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"},{"data":"ZXZ0LTE=","partitionKey":"u-b","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":1,"action":"record"},{"data":"ZXZ0LTI=","partitionKey":"u-c","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":2,"action":"record"}],"millisBehindLatest":1200}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":2}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":2,"error":null}"#,
            C_PROCESSED,
            D_LEASE_LOST,
            C_LEASE_LOST,
        ],
    );
    let state = state.borrow();
    assert_eq!((state.records, state.total_words, state.skipped), (3, 3, 0));
}

#[test]
fn t3_throttling_then_success_is_retried() {
    check(
        WordCount::default(),
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            D_HELLO,
            C_CHECKPOINT_SEQ0,
            D_SEQ0_THROTTLED,
            C_CHECKPOINT_SEQ0,
            D_SEQ0_OK,
            C_PROCESSED,
            D_LEASE_LOST,
            C_LEASE_LOST,
        ],
    );
}

#[test]
fn t3_dependency_exception_is_retried_like_throttling() {
    check(
        WordCount::default(),
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            D_HELLO,
            C_CHECKPOINT_SEQ0,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":"KinesisClientLibDependencyException"}"#,
            C_CHECKPOINT_SEQ0,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":"KinesisClientLibDependencyException"}"#,
            C_CHECKPOINT_SEQ0,
            D_SEQ0_OK,
            C_PROCESSED,
        ],
    );
}

#[test]
fn t3_throttled_on_every_attempt_gives_up_and_still_sends_the_status() {
    // RetryPolicy::immediate(3): three requests, then word_count logs the error and returns Ok.
    let (processor, state) = shared(WordCount::default());
    check_with(
        processor,
        RetryPolicy::immediate(3),
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            D_HELLO,
            C_CHECKPOINT_SEQ0,
            D_SEQ0_THROTTLED,
            C_CHECKPOINT_SEQ0,
            D_SEQ0_THROTTLED,
            C_CHECKPOINT_SEQ0,
            D_SEQ0_THROTTLED,
            C_PROCESSED,
            D_LEASE_LOST,
            C_LEASE_LOST,
        ],
    );
    assert_eq!(state.borrow().records, 1, "the batch was still counted");
}

#[test]
fn t3_retry_budget_is_max_attempts_requests() {
    for attempts in [1u32, 2, 4, 6] {
        let errors = log::<String>();
        let handler_errors = errors.clone();
        let processor = kcl::from_fn(move |batch, cp| {
            if let Err(error) = cp.checkpoint_at(batch.last().expect("one record")) {
                assert!(error.is_retryable());
                handler_errors.borrow_mut().push(format!("{error:?}"));
            }
            Ok(())
        });
        let s0 = seq(0);
        let record = format!(
            r#"{{"action":"processRecords","records":[{{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"{s0}","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}}],"millisBehindLatest":0}}"#
        );
        let request =
            format!(r#"{{"action":"checkpoint","sequenceNumber":"{s0}","subSequenceNumber":0}}"#);
        let throttled = format!(
            r#"{{"action":"checkpoint","sequenceNumber":"{s0}","subSequenceNumber":0,"error":"ThrottlingException"}}"#
        );
        // One throttled reply more than the budget: the surplus one arrives unasked and is ignored.
        let mut daemon = vec![record.as_str()];
        daemon.extend(std::iter::repeat_n(
            throttled.as_str(),
            attempts as usize + 1,
        ));
        daemon.push(r#"{"action":"leaseLost"}"#);
        let actual = transcript_with(processor, RetryPolicy::immediate(attempts), &daemon);

        let mut wanted = vec![request.as_str(); attempts as usize];
        wanted.push(r#"{"action":"status","responseFor":"processRecords"}"#);
        wanted.push(r#"{"action":"status","responseFor":"leaseLost"}"#);
        assert_lines(&actual, &expect(&wanted));
        assert_eq!(*errors.borrow(), ["Throttling"], "attempts = {attempts}");
    }
}

#[test]
fn t4_shutdown_exception_is_not_retried() {
    check(
        WordCount::default(),
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            D_HELLO,
            C_CHECKPOINT_SEQ0,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":"ShutdownException"}"#,
            C_PROCESSED,
            D_LEASE_LOST,
            C_LEASE_LOST,
        ],
    );
}

#[test]
fn t4_shutdown_exception_is_typed_and_later_checkpoints_fail_locally() {
    #[derive(Default)]
    struct Recorder {
        outcomes: Log<String>,
    }
    impl RecordProcessor for Recorder {
        fn process_records(&mut self, batch: &Batch, cp: &mut Checkpointer<'_>) -> kcl::Result<()> {
            let mut outcomes = self.outcomes.borrow_mut();
            match cp.checkpoint_at(batch.last().expect("one record")) {
                Ok(()) => outcomes.push("ok".into()),
                Err(error) => outcomes.push(format!(
                    "checkpoint_at: {error:?} lease_lost={} retryable={}",
                    error.is_lease_lost(),
                    error.is_retryable()
                )),
            }
            if cp.is_lease_lost() {
                let null = cp.checkpoint().expect_err("the lease is gone");
                outcomes.push(format!("checkpoint: {null:?}"));
            }
            Ok(())
        }
        fn shutdown_requested(&mut self, cp: &mut Checkpointer<'_>) -> kcl::Result<()> {
            let error = cp.checkpoint_handled().expect_err("the lease is gone");
            self.outcomes
                .borrow_mut()
                .push(format!("shutdown_requested: {error:?}"));
            Ok(())
        }
    }
    let recorder = Recorder::default();
    let outcomes = recorder.outcomes.clone();
    check(
        recorder,
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            D_HELLO,
            C_CHECKPOINT_SEQ0,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":"ShutdownException"}"#,
            // The follow-up null checkpoint in the same handler is refused locally: no line.
            C_PROCESSED,
            // Later checkpoints on this shard write nothing either.
            r#"D> {"action":"processRecords","records":[{"data":"d29ybGQ=","partitionKey":"pk-2","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000500,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            C_PROCESSED,
            D_SHUTDOWN_REQUESTED,
            C_SHUTDOWN_REQUESTED,
            D_LEASE_LOST,
            C_LEASE_LOST,
        ],
    );
    assert_eq!(
        *outcomes.borrow(),
        [
            "checkpoint_at: Shutdown lease_lost=true retryable=false",
            "checkpoint: Shutdown",
            "checkpoint_at: Shutdown lease_lost=true retryable=false",
            "checkpoint: Shutdown",
            "shutdown_requested: Shutdown",
        ]
    );
}

#[test]
fn t4_illegal_argument_exception_is_not_retried() {
    let errors = log::<String>();
    let handler_errors = errors.clone();
    let processor = kcl::from_fn(move |batch, cp| {
        if let Err(error) = cp.checkpoint_at(batch.last().expect("one record")) {
            handler_errors.borrow_mut().push(format!(
                "{error:?} lease_lost={} retryable={}",
                error.is_lease_lost(),
                error.is_retryable()
            ));
        }
        Ok(())
    });
    check(
        processor,
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            D_HELLO,
            C_CHECKPOINT_SEQ0,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":"IllegalArgumentException"}"#,
            C_PROCESSED,
            // Unlike ShutdownException, the shard can still checkpoint afterwards.
            r#"D> {"action":"processRecords","records":[{"data":"d29ybGQ=","partitionKey":"pk-2","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000500,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","subSequenceNumber":0,"error":null}"#,
            C_PROCESSED,
        ],
    );
    assert_eq!(
        *errors.borrow(),
        ["IllegalArgument lease_lost=false retryable=false"]
    );
}

#[test]
fn t4_illegal_argument_exception_with_word_count() {
    check(
        WordCount::default(),
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            D_HELLO,
            C_CHECKPOINT_SEQ0,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":"IllegalArgumentException"}"#,
            C_PROCESSED,
        ],
    );
}

#[test]
fn t11_null_checkpoint_on_an_empty_batch_is_sent() {
    let lags = log::<(usize, Option<u64>)>();
    let handler_lags = lags.clone();
    let processor = kcl::from_fn(move |batch, cp| {
        handler_lags
            .borrow_mut()
            .push((batch.len(), batch.millis_behind_latest()));
        cp.checkpoint()?;
        Ok(())
    });
    check(
        processor,
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            D_EMPTY_BATCH,
            C_CHECKPOINT_NULL,
            D_NULL_OK,
            C_PROCESSED,
            r#"D> {"action":"processRecords","records":[],"millisBehindLatest":null}"#,
            C_CHECKPOINT_NULL,
            D_NULL_OK,
            C_PROCESSED,
        ],
    );
    assert_eq!(*lags.borrow(), [(0, Some(0)), (0, None)]);
}

#[test]
fn unsolicited_checkpoint_reply_is_ignored() {
    check(
        WordCount::default(),
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            D_NULL_OK,
            D_SEQ0_THROTTLED,
            D_HELLO,
            C_CHECKPOINT_SEQ0,
            D_SEQ0_OK,
            C_PROCESSED,
            // A duplicate reply after the status answers nothing.
            D_SEQ0_OK,
            D_LEASE_LOST,
            C_LEASE_LOST,
        ],
    );
}

#[test]
fn junk_while_waiting_for_a_checkpoint_reply_is_skipped() {
    check(
        WordCount::default(),
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            D_HELLO,
            C_CHECKPOINT_SEQ0,
            "D> DEBUG the daemon is thinking",
            "D> ",
            "D>   ",
            r#"D> {"foo":1}"#,
            "D> {not json",
            D_SEQ0_THROTTLED,
            // The throttled reply was used (one retry follows), so the junk was not taken as a reply.
            C_CHECKPOINT_SEQ0,
            "D> DEBUG still thinking",
            D_SEQ0_OK,
            C_PROCESSED,
            D_LEASE_LOST,
            C_LEASE_LOST,
        ],
    );
}

#[test]
fn another_action_instead_of_the_checkpoint_reply_fails_the_checkpoint_and_is_handled_next() {
    let errors = log::<String>();
    let handler_errors = errors.clone();
    let processor = kcl::from_fn(move |batch, cp| {
        if let Err(error) = cp.checkpoint_at(batch.last().expect("one record")) {
            handler_errors.borrow_mut().push(format!("{error:?}"));
        }
        Ok(())
    });
    check(
        processor,
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            D_HELLO,
            C_CHECKPOINT_SEQ0,
            D_LEASE_LOST,
            C_PROCESSED,
            C_LEASE_LOST,
        ],
    );
    assert_eq!(*errors.borrow(), [r#"UnexpectedReply("leaseLost")"#]);
}

#[test]
fn null_checkpoint_before_any_record_keeps_the_resumed_position() {
    // Checkpointer::last_checkpoint documents "the last position the daemon confirmed (including
    // the one `initialize` resumed from)". A null checkpoint before any record was delivered
    // re-stores the lease's checkpoint (the daemon's largest permitted value starts at it), so
    // the resumed position is still the last confirmed one. kcl-core's Checkpointer::checkpoint
    // sets `progress.checkpointed = progress.delivered.clone()`, which is None here.
    let seen = log::<(Option<Position>, Option<Position>)>();
    let handler_seen = seen.clone();
    let processor = kcl::from_fn(move |_batch, cp| {
        let before = cp.last_checkpoint().cloned();
        cp.checkpoint()?;
        let after = cp.last_checkpoint().cloned();
        handler_seen.borrow_mut().push((before, after));
        Ok(())
    });
    check(
        processor,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000002","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            C_INITIALIZED,
            D_EMPTY_BATCH,
            C_CHECKPOINT_NULL,
            D_NULL_OK,
            C_PROCESSED,
        ],
    );
    let resumed = Some(Position::new(seq(0), 0));
    assert_eq!(*seen.borrow(), [(resumed.clone(), resumed)]);
}

#[test]
fn t2_raw_checkpoint_without_sub_sequence_writes_null() {
    // checkpoint_raw(S, None) sends the sub-sequence number as null (the daemon reads (S, 0)).
    let processor = kcl::from_fn(|batch, cp| {
        let last = batch.last().expect("one record");
        cp.checkpoint_raw(last.sequence_number().as_str(), None)?;
        Ok(())
    });
    check(
        processor,
        &[
            D_HELLO,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":null,"error":null}"#,
            C_PROCESSED,
        ],
    );
}
