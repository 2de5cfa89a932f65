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
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"ZXZ0LTA=","partitionKey":"u-a","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"},{"data":"ZXZ0LTE=","partitionKey":"u-b","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":1,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":1}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":1,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"processRecords","records":[],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"shutdownRequested"}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":null,"subSequenceNumber":null,"error":null}"#,
            r#"C< {"action":"status","responseFor":"shutdownRequested"}"#,
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
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"b2s=","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"},{"data":"YmFk","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"},{"data":"b2s=","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"shardEnded"}"#,
            r#"C< {"action":"status","responseFor":"shardEnded"}"#,
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
            r#"D> {"action":"initialize","shardId":"shardId-000000000001","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#,
            r#"C< {"action":"status","responseFor":"initialize"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"YQ==","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588898","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"},{"data":"Yg==","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588899","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
            r#"D> {"action":"processRecords","records":[{"data":"Yw==","partitionKey":"k","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","approximateArrivalTimestamp":1700000001000,"subSequenceNumber":0,"action":"record"}],"millisBehindLatest":0}"#,
            r#"C< {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","subSequenceNumber":0}"#,
            r#"D> {"action":"checkpoint","sequenceNumber":"49590338271490256608559692538361571095921575989136588900","subSequenceNumber":0,"error":null}"#,
            r#"C< {"action":"status","responseFor":"processRecords"}"#,
        ],
    );
}
