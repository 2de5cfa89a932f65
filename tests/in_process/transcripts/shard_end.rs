//! T7 (docs/protocol.md §7): the end of a shard, checkpointed by the handler or by the runtime.

use super::*;

#[test]
fn t7_shard_ended_checkpoints_null() {
    check(
        WordCount::default(),
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            D_HELLO,
            C_CHECKPOINT_SEQ0,
            D_SEQ0_OK,
            C_PROCESSED,
            D_SHARD_ENDED,
            C_CHECKPOINT_NULL,
            D_NULL_OK,
            C_SHARD_ENDED,
        ],
    );
}

#[test]
fn t7_shard_ended_shutdown_exception_is_not_retried() {
    check(
        WordCount::default(),
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            D_SHARD_ENDED,
            C_CHECKPOINT_NULL,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":"ShutdownException"}"#,
            C_SHARD_ENDED,
        ],
    );
}

#[test]
fn t7_runtime_checkpoints_the_shard_end_when_the_handler_forgot() {
    check(
        ForgetfulShardEnd,
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            D_HELLO,
            C_PROCESSED,
            D_SHARD_ENDED,
            C_CHECKPOINT_NULL,
            D_NULL_OK,
            C_SHARD_ENDED,
        ],
    );
    // The runtime's own checkpoint is not retried on ShutdownException either.
    check(
        ForgetfulShardEnd,
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            D_SHARD_ENDED,
            C_CHECKPOINT_NULL,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":"ShutdownException"}"#,
            C_SHARD_ENDED,
        ],
    );
}

#[test]
fn t15e_shard_end_is_not_checkpointed_after_a_failure() {
    // After a failed batch the default shard_ended checkpoints only what was handled, and the
    // runtime does not checkpoint the end of the shard (that would lose the failed records).
    let processor = kcl::from_fn(|batch, _cp| {
        if texts(batch).iter().any(|p| p == "boom") {
            return Err(kcl::Error::msg("cannot handle boom"));
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
            r#"D> {"action":"processRecords","records":[{"data":"Ym9vbQ==","partitionKey":"pk-2","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000001,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            C_PROCESSED,
            // The default shard_ended checkpoints what was handled (seq(0)), never SHARD_END.
            D_SHARD_ENDED,
            C_CHECKPOINT_SEQ0,
            D_SEQ0_OK,
            C_SHARD_ENDED,
        ],
    );
}

#[test]
fn t7_explicit_checkpoint_at_the_last_record_completes_the_shard() {
    // Checkpointing exactly the last delivered record during shardEnded is stored as SHARD_END by
    // the daemon, so the runtime adds no null checkpoint of its own.
    struct EndsAtLastRecord {
        last: Option<kcl::Record>,
    }
    impl RecordProcessor for EndsAtLastRecord {
        fn process_records(&mut self, batch: &Batch, _: &mut Checkpointer<'_>) -> kcl::Result<()> {
            self.last = batch.last().cloned();
            Ok(())
        }
        fn shard_ended(&mut self, cp: &mut Checkpointer<'_>) -> kcl::Result<()> {
            cp.checkpoint_at(self.last.as_ref().expect("a record was delivered"))?;
            Ok(())
        }
    }
    check(
        EndsAtLastRecord { last: None },
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            r#"D> {"action":"processRecords","records":[{"data":"ZXZ0LTA=","partitionKey":"u-a","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"},{"data":"ZXZ0LTE=","partitionKey":"u-b","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":1,"action":"record"}],"millisBehindLatest":0}"#,
            C_PROCESSED,
            D_SHARD_ENDED,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":1}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":1,"error":null}"#,
            C_SHARD_ENDED,
        ],
    );
}

#[test]
fn t7_runtime_shard_end_checkpoint_is_retried_when_throttled() {
    check(
        ForgetfulShardEnd,
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            D_SHARD_ENDED,
            C_CHECKPOINT_NULL,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":"ThrottlingException"}"#,
            C_CHECKPOINT_NULL,
            D_NULL_OK,
            C_SHARD_ENDED,
        ],
    );
}
