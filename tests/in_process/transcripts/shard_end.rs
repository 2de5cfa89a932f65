//! T7 (docs/protocol.md §7): the end of a shard, checkpointed by the handler or by the runtime.

use super::*;

#[test]
fn t7_shard_ended_checkpoints_null() {
    check(
        WordCount::default(),
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"shardEnded"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#,
            r#"C< {"action":"status","responseFor":"shardEnded"}"#,
        ],
    );
}

#[test]
fn t7_shard_ended_shutdown_exception_is_not_retried() {
    check(
        WordCount::default(),
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"shardEnded"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":"ShutdownException"}"#,
            r#"C< {"action":"status","responseFor":"shardEnded"}"#,
        ],
    );
}

#[test]
fn t7_runtime_checkpoints_the_shard_end_when_the_handler_forgot() {
    check(
        ForgetfulShardEnd,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"aGVsbG8=","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"shardEnded"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#,
            r#"C< {"action":"status","responseFor":"shardEnded"}"#,
        ],
    );
    // The runtime's own checkpoint is not retried on ShutdownException either.
    check(
        ForgetfulShardEnd,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"shardEnded"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":"ShutdownException"}"#,
            r#"C< {"action":"status","responseFor":"shardEnded"}"#,
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
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"YQ==","partitionKey":"pk-1","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000000000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"Ym9vbQ==","partitionKey":"pk-2","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000000001,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            // The default shard_ended checkpoints what was handled (seq(0)), never SHARD_END.
            r#"D> {"action":"shardEnded"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"shardEnded"}"#,
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
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"ZXZ0LTA=","partitionKey":"u-a","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"},{"data":"ZXZ0LTE=","partitionKey":"u-b","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":1,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"shardEnded"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":1}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":1,"error":null}"#,
            r#"C< {"action":"status","responseFor":"shardEnded"}"#,
        ],
    );
}

#[test]
fn t7_runtime_shard_end_checkpoint_is_retried_when_throttled() {
    check(
        ForgetfulShardEnd,
        &[
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"shardEnded"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":"ThrottlingException"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#,
            r#"C< {"action":"status","responseFor":"shardEnded"}"#,
        ],
    );
}
