//! T15e (docs/protocol.md §7) and the other failures: a handler, an extractor, the payload's
//! encoding or the daemon's message fails, and the shard stalls at the last handled record.

use super::*;

#[test]
fn t15e_panicking_handler_is_answered_and_the_shard_stalls() {
    let calls = log::<Vec<String>>();
    let handler_calls = calls.clone();
    let processor = kcl::from_fn(move |batch, _cp| {
        let payloads = texts(batch);
        handler_calls.borrow_mut().push(payloads.clone());
        if payloads.iter().any(|p| p == "boom") {
            panic!("handler exploded on purpose");
        }
        Ok(())
    });
    check(
        processor,
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            // seq(0), seq(1): handled (this handler never checkpoints by itself).
            r#"D> {"action":"processRecords","records":[{"data":"YQ==","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"},{"data":"Yg==","partitionKey":"pk-2","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000001,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            C_PROCESSED,
            // seq(2) "boom": the handler panics; only the status is written.
            r#"D> {"action":"processRecords","records":[{"data":"Ym9vbQ==","partitionKey":"pk-3","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000000002,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            C_PROCESSED,
            // seq(3): the shard is stalled; the handler is not called.
            r#"D> {"action":"processRecords","records":[{"data":"Yw==","partitionKey":"pk-4","sequenceNumber":"49590338271490256608559692538361571095921575989136588901","approximateArrivalTimestamp":1700000000003,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            C_PROCESSED,
            // The default shutdown_requested checkpoints the last handled record, seq(1), not past it.
            D_SHUTDOWN_REQUESTED,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","subSequenceNumber":0,"error":null}"#,
            C_SHUTDOWN_REQUESTED,
            D_LEASE_LOST,
            C_LEASE_LOST,
        ],
    );
    // The panicking batch is tried 3 times (the default failure policy), then the shard stalls.
    assert_eq!(
        *calls.borrow(),
        [vec!["a", "b"], vec!["boom"], vec!["boom"], vec!["boom"]]
    );
}

#[test]
fn t15e_after_a_failure_nothing_past_the_last_handled_record_can_be_checkpointed() {
    /// Panics on "boom"; at shutdown tries to checkpoint too far, then what is allowed.
    struct Greedy {
        outcomes: Log<String>,
    }
    impl RecordProcessor for Greedy {
        fn process_records(&mut self, batch: &Batch, _: &mut Checkpointer<'_>) -> kcl::Result<()> {
            if texts(batch).iter().any(|p| p == "boom") {
                panic!("handler exploded on purpose");
            }
            Ok(())
        }
        fn shutdown_requested(&mut self, cp: &mut Checkpointer<'_>) -> kcl::Result<()> {
            let mut outcomes = self.outcomes.borrow_mut();
            let describe = |result: Result<(), CheckpointError>| match result {
                Ok(()) => "ok".to_owned(),
                Err(CheckpointError::PastFailure { .. }) => "refused: past failure".to_owned(),
                Err(other) => format!("{other:?}"),
            };
            outcomes.push(describe(cp.checkpoint()));
            outcomes.push(describe(cp.checkpoint_position(&Position::new(seq(2), 0))));
            outcomes.push(describe(cp.checkpoint_raw(&seq(3), None)));
            outcomes.push(format!("last_handled={:?}", cp.last_handled()));
            outcomes.push(describe(cp.checkpoint_handled()));
            Ok(())
        }
    }
    let outcomes = log::<String>();
    check(
        Greedy {
            outcomes: outcomes.clone(),
        },
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            r#"D> {"action":"processRecords","records":[{"data":"YQ==","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"},{"data":"Yg==","partitionKey":"pk-2","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000001,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            C_PROCESSED,
            r#"D> {"action":"processRecords","records":[{"data":"Ym9vbQ==","partitionKey":"pk-3","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000000002,"subSequenceNumber":0,"action":"record"},{"data":"Yw==","partitionKey":"pk-4","sequenceNumber":"49590338271490256608559692538361571095921575989136588901","approximateArrivalTimestamp":1700000000003,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            C_PROCESSED,
            D_SHUTDOWN_REQUESTED,
            // Only the allowed checkpoint reaches the daemon; the refused ones write nothing.
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","subSequenceNumber":0,"error":null}"#,
            C_SHUTDOWN_REQUESTED,
        ],
    );
    assert_eq!(
        *outcomes.borrow(),
        [
            "refused: past failure".to_owned(),
            "refused: past failure".to_owned(),
            "refused: past failure".to_owned(),
            format!("last_handled={:?}", Some(Position::new(seq(1), 0))),
            "ok".to_owned(),
        ]
    );
}

#[test]
fn handler_error_is_answered_and_the_shard_stalls() {
    let calls = log::<Vec<String>>();
    let handler_calls = calls.clone();
    let processor = kcl::from_fn(move |batch, _cp| {
        let payloads = texts(batch);
        handler_calls.borrow_mut().push(payloads.clone());
        if payloads.iter().any(|p| p == "fail") {
            return Err(kcl::Error::msg("downstream unavailable"));
        }
        Ok(())
    });
    check(
        processor,
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            D_A,
            C_PROCESSED,
            r#"D> {"action":"processRecords","records":[{"data":"ZmFpbA==","partitionKey":"pk-2","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000001,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            C_PROCESSED,
            r#"D> {"action":"processRecords","records":[{"data":"Yw==","partitionKey":"pk-3","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000000002,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            C_PROCESSED,
            D_SHUTDOWN_REQUESTED,
            C_CHECKPOINT_SEQ0,
            D_SEQ0_OK,
            C_SHUTDOWN_REQUESTED,
        ],
    );
    // The failing batch is tried 3 times (the default failure policy), then the shard stalls.
    assert_eq!(
        *calls.borrow(),
        [vec!["a"], vec!["fail"], vec!["fail"], vec!["fail"]]
    );
}

#[test]
fn strict_json_extraction_failure_is_answered_and_the_shard_stalls() {
    #[derive(serde::Deserialize)]
    struct Order {
        id: u64,
    }
    let ids = log::<u64>();
    let handler_ids = ids.clone();
    let calls = Rc::new(RefCell::new(0));
    let handler_calls = calls.clone();
    let processor = kcl::from_fn(move |batch, cp| {
        *handler_calls.borrow_mut() += 1;
        for kcl::Json(order) in batch.extract::<kcl::Json<Order>>()? {
            handler_ids.borrow_mut().push(order.id);
        }
        if let Some(last) = batch.last() {
            cp.checkpoint_at(last)?;
        }
        Ok(())
    });
    check(
        processor,
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            // {"id":1}
            r#"D> {"action":"processRecords","records":[{"data":"eyJpZCI6MX0=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            C_CHECKPOINT_SEQ0,
            D_SEQ0_OK,
            C_PROCESSED,
            // {"id":2}, then "not json": extract fails before any checkpoint.
            r#"D> {"action":"processRecords","records":[{"data":"eyJpZCI6Mn0=","partitionKey":"pk-2","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000001,"subSequenceNumber":0,"action":"record"},{"data":"bm90IGpzb24=","partitionKey":"pk-3","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000000002,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            C_PROCESSED,
            // {"id":3}: stalled, handler not called.
            r#"D> {"action":"processRecords","records":[{"data":"eyJpZCI6M30=","partitionKey":"pk-4","sequenceNumber":"49590338271490256608559692538361571095921575989136588901","approximateArrivalTimestamp":1700000000003,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            C_PROCESSED,
            // seq(0) is already checkpointed and nothing past it may be: nothing to send.
            D_SHUTDOWN_REQUESTED,
            C_SHUTDOWN_REQUESTED,
        ],
    );
    assert_eq!(*ids.borrow(), [1]);
    // The first batch, then 3 attempts of the undecodable one (the default failure policy).
    assert_eq!(*calls.borrow(), 4);
}

#[test]
fn invalid_base64_is_answered_without_calling_the_handler_and_the_shard_stalls() {
    let calls = log::<Vec<String>>();
    let handler_calls = calls.clone();
    let processor = kcl::from_fn(move |batch, _cp| {
        handler_calls.borrow_mut().push(texts(batch));
        Ok(())
    });
    check(
        processor,
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            D_A,
            C_PROCESSED,
            r#"D> {"action":"processRecords","records":[{"data":"Yg==","partitionKey":"pk-2","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000001,"subSequenceNumber":0,"action":"record"},{"data":"%%%%","partitionKey":"pk-3","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000000002,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            C_PROCESSED,
            r#"D> {"action":"processRecords","records":[{"data":"Yw==","partitionKey":"pk-4","sequenceNumber":"49590338271490256608559692538361571095921575989136588901","approximateArrivalTimestamp":1700000000003,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            C_PROCESSED,
            D_SHUTDOWN_REQUESTED,
            C_CHECKPOINT_SEQ0,
            D_SEQ0_OK,
            C_SHUTDOWN_REQUESTED,
            D_LEASE_LOST,
            C_LEASE_LOST,
        ],
    );
    assert_eq!(*calls.borrow(), [vec!["a"]]);
}

#[test]
fn malformed_initialize_is_answered_and_the_shard_stalls() {
    // No shardId: the initialize hook cannot be called, so no batch may be handled either.
    let (processor, seen) = record_keeper();
    let input = concat!(
        r#"{"action":"initialize","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
        "\n",
        r#"{"action":"processRecords","records":[{"data":"YQ==","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
        "\n",
        r#"{"action":"shutdownRequested"}"#,
        "\n",
        r#"{"action":"leaseLost"}"#,
        "\n",
    );
    let out = run_input(processor, RetryPolicy::immediate(3), input.as_bytes());
    assert_lines(
        &out,
        &expect(&[
            r#"{"action":"status","responseFor":"initialize"}"#,
            r#"{"action":"status","responseFor":"processRecords"}"#,
            r#"{"action":"status","responseFor":"shutdownRequested"}"#,
            r#"{"action":"status","responseFor":"leaseLost"}"#,
        ]),
    );
    assert!(seen.borrow().is_empty(), "the handler must not be called");
}

#[test]
fn malformed_process_records_is_answered_and_the_shard_stalls() {
    // `records` is not an array: the batch's records are unknown, so they count as not handled.
    let (processor, seen) = record_keeper();
    check(
        processor,
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            D_A,
            C_PROCESSED,
            r#"D> {"action":"processRecords","records":"nope","millisBehindLatest":0}"#,
            C_PROCESSED,
            r#"D> {"action":"processRecords","records":[{"data":"Yw==","partitionKey":"pk-3","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000000002,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            C_PROCESSED,
            // Only the record handled before the malformed batch may be checkpointed.
            D_SHUTDOWN_REQUESTED,
            C_CHECKPOINT_SEQ0,
            D_SEQ0_OK,
            C_SHUTDOWN_REQUESTED,
        ],
    );
    assert_eq!(
        seen.borrow().len(),
        1,
        "only the first batch reached the handler"
    );
}

#[test]
fn initialize_hook_failure_stalls_the_shard() {
    struct FailsToStart {
        batches: Rc<RefCell<u32>>,
    }
    impl RecordProcessor for FailsToStart {
        fn initialize(&mut self, _: &Initialize) -> kcl::Result<()> {
            Err(kcl::Error::msg("cannot connect to the database"))
        }
        fn process_records(&mut self, _: &Batch, _: &mut Checkpointer<'_>) -> kcl::Result<()> {
            *self.batches.borrow_mut() += 1;
            Ok(())
        }
    }
    let batches = Rc::new(RefCell::new(0));
    check(
        FailsToStart {
            batches: batches.clone(),
        },
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            D_A,
            C_PROCESSED,
            // Nothing was handled: neither the default shard_ended nor the runtime checkpoints.
            D_SHARD_ENDED,
            C_SHARD_ENDED,
        ],
    );
    assert_eq!(*batches.borrow(), 0);
}
