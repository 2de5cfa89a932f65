//! Checkpoint strategies: the runtime checkpoints by itself.

use super::*;

#[test]
fn default_strategy_checkpoints_the_last_record_of_every_batch() {
    // A processor that never touches the checkpointer; the runtime's default strategy
    // checkpoints the last handled record (sequence + sub-sequence) after each batch.
    let processor = kcl::from_fn(|_, _| Ok(()));
    check_strategy(
        processor,
        CheckpointStrategy::default(),
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            r#"D> {"action":"processRecords","records":[{"data":"ZXZ0LTA=","partitionKey":"u-a","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"},{"data":"ZXZ0LTE=","partitionKey":"u-b","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":1,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":1}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":1,"error":null}"#,
            C_PROCESSED,
            D_EMPTY_BATCH,
            C_PROCESSED,
            D_SHUTDOWN_REQUESTED,
            C_CHECKPOINT_NULL,
            D_NULL_OK,
            C_SHUTDOWN_REQUESTED,
        ],
    );
}

#[test]
fn default_strategy_stops_just_before_the_record_that_failed() {
    // The handler fails at the second record and says so (`Error::at_record`): the first record
    // counts as handled and is checkpointed; the failed one and everything after it never are.
    let processor = kcl::from_fn(|batch, _| {
        for record in batch {
            if record.data() == b"bad" {
                return Err(kcl::Error::msg("sink refused it").at_record(record.position().clone()));
            }
        }
        Ok(())
    });
    check_strategy(
        processor,
        CheckpointStrategy::default(),
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            r#"D> {"action":"processRecords","records":[{"data":"b2s=","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"},{"data":"YmFk","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"},{"data":"b2s=","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            C_CHECKPOINT_SEQ0,
            D_SEQ0_OK,
            C_PROCESSED,
            D_SHARD_ENDED,
            C_SHARD_ENDED,
        ],
    );
}

#[test]
fn every_n_records_strategy_waits_for_enough_handled_records() {
    let processor = kcl::from_fn(|_, _| Ok(()));
    check_strategy(
        processor,
        CheckpointStrategy::every_records(3),
        &[
            D_INITIALIZE,
            C_INITIALIZED,
            r#"D> {"action":"processRecords","records":[{"data":"YQ==","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"},{"data":"Yg==","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            C_PROCESSED,
            r#"D> {"action":"processRecords","records":[{"data":"Yw==","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","subSequenceNumber":0,"error":null}"#,
            C_PROCESSED,
        ],
    );
}
