//! What the Java KCL 3.1.3 delivers to a record processor for a Kinesis record, followed line by
//! line from `software.amazon.kinesis.retrieval.AggregatorUtil.deaggregate(List, BigInteger,
//! BigInteger)` and `software.amazon.kinesis.lifecycle.ProcessTask.deaggregateAnyKplRecords`,
//! and checked against the jar (kcl-cli's `kpl_vs_kcl` test).

use thiserror::Error;

use crate::frame::{self, NotAggregated};
use crate::hash::{HashKeyRange, md5_number};
use crate::java::{JavaNumber, java_big_integer, java_utf8_lossy};
use crate::parse::AggregatedMessage;

/// One record as the KCL hands it to the record processor (`KinesisClientRecord`; the
/// MultiLangDaemon forwards all but the explicit hash key and the `aggregated` flag). It shares
/// the Kinesis record's sequence number and arrival time.
///
/// ```
/// let view = kcl_kpl::kcl_view(b"plain", "pk", kcl_kpl::HashKeyRange::ALL);
/// let record = &view.records[0];
/// assert_eq!((record.data.as_slice(), record.partition_key.as_str()), (&b"plain"[..], "pk"));
/// assert_eq!((record.sub_sequence_number, record.aggregated), (0, false));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Delivered {
    /// The partition key: the user record's (bytes that are not UTF-8 replaced as Java
    /// replaces them, see [`java_utf8_lossy`]), or the Kinesis record's when passed through.
    pub partition_key: String,
    /// The user record's explicit hash key text, as Java read it; `None` when passed through.
    pub explicit_hash_key: Option<String>,
    /// The payload.
    pub data: Vec<u8>,
    /// The user record's position in the aggregate (0 when passed through).
    pub sub_sequence_number: u64,
    /// Whether the record came out of an aggregate.
    pub aggregated: bool,
}

/// What the KCL made of one Kinesis record.
///
/// ```
/// use kcl_kpl::{kcl_view, HashKeyRange, NotAggregated, Outcome};
/// let view = kcl_view(b"plain", "pk", HashKeyRange::ALL);
/// assert_eq!(view.outcome, Outcome::PassedThrough(NotAggregated::NoMagic));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Not an aggregate to the KCL: delivered as it is, one record.
    PassedThrough(NotAggregated),
    /// An aggregate: every user record delivered, sub-sequence numbers 0, 1, …
    Deaggregated,
    /// An aggregate with a user record (the first one at position `record`) whose hash key is
    /// outside the shard's range: the KCL removes the user records it had collected and skips
    /// the rest. Nothing of the aggregate is delivered, and nothing is logged.
    Dropped {
        /// The position of the first user record outside the range.
        record: usize,
    },
    /// An exception inside the KCL's loop over the user records (at position `record`). The
    /// KCL's handler for it builds a log message with `javax.xml.bind.DatatypeConverter`,
    /// which neither Java 11+ nor the KCL 3.1.3 jars have: a `NoClassDefFoundError` leaves
    /// `deaggregate`, `ProcessTask.call` does not catch it (it catches `RuntimeException`),
    /// and `ShardConsumerSubscriber.onNext` logs "Caught exception from handleInput" and asks
    /// for the next batch. The record processor gets nothing of the whole GetRecords batch
    /// this Kinesis record came in (not just of this record), and is not told. (Under the
    /// MultiLangDaemon the batch can also run on the daemon's executor thread: there the error
    /// reaches `MultiLangDaemon` — "Exception occurred while dispatching incoming data", then
    /// "Caught throwable while processing data" — and the whole daemon shuts down; seen once
    /// in kcl-e2e's parity scenario, skips in the other runs.) On Java 8 (or
    /// with JAXB on the class path) the handler would log an error and keep the `record` user
    /// records collected before the exception instead.
    BatchSkipped {
        /// The position of the user record that made the exception.
        record: usize,
        /// What Java threw.
        cause: LoopError,
    },
}

/// The exceptions the KCL's loop over user records can meet.
///
/// ```
/// let error = kcl_kpl::LoopError::PartitionKeyIndex(3);
/// assert_eq!(error.to_string(), "partition key index 3 is outside the table (IndexOutOfBoundsException)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Error)]
pub enum LoopError {
    /// `pks.get((int) mr.getPartitionKeyIndex())` is out of bounds. The index is cast to a Java
    /// `int` first: only its low 32 bits count, read as signed (2^32 + 1 reads as 1).
    #[error("partition key index {0} is outside the table (IndexOutOfBoundsException)")]
    PartitionKeyIndex(u64),
    /// `ehks.get((int) mr.getExplicitHashKeyIndex())` is out of bounds (same cast).
    #[error("explicit hash key index {0} is outside the table (IndexOutOfBoundsException)")]
    ExplicitHashKeyIndex(u64),
    /// `new BigInteger(explicitHashKey)` fails: the text is not a decimal number
    /// (`NumberFormatException`).
    #[error("the explicit hash key is not a number (NumberFormatException)")]
    ExplicitHashKeyNotANumber,
}

/// The KCL's view of one Kinesis record: what it delivers, and why.
///
/// ```
/// use kcl_kpl::{AggregateBuilder, HashKeyRange, Outcome, kcl_view};
/// let mut builder = AggregateBuilder::default();
/// builder.push("a", None, b"1").unwrap();
/// builder.push("b", None, b"2").unwrap();
/// let aggregate = builder.finish().unwrap();
/// let view = kcl_view(&aggregate.data, &aggregate.partition_key, HashKeyRange::ALL);
/// assert_eq!(view.outcome, Outcome::Deaggregated);
/// assert_eq!(view.records[1].sub_sequence_number, 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KclView {
    /// What the KCL did with the record.
    pub outcome: Outcome,
    /// What the record processor gets for it, in order.
    pub records: Vec<Delivered>,
}

/// Predicts exactly what the Java KCL 3.1.3 delivers to a record processor for one Kinesis
/// record with `data` and `partition_key`, read from a shard whose hash keys are `shard`.
///
/// `ProcessTask.deaggregateAnyKplRecords` passes the shard's range from `ShardDetector`; when
/// it has no shard (`skipShardSyncAtWorkerInitializationIfLeasesExist`), the KCL checks
/// against every hash key ([`HashKeyRange::ALL`]), which still drops explicit hash keys below 0
/// or above 2^128 − 1. Then, in `AggregatorUtil.deaggregate`:
///
/// 1. Not an aggregate ([`NotAggregated`]: no magic, at most 16 bytes after it, digest
///    mismatch, or `Messages.AggregatedRecord.parseFrom` throws) → the record, unchanged.
/// 2. For each user record in order: partition key `pks.get((int) index)`, explicit hash key
///    `ehks.get((int) index)` if the record has an index (strings decoded from UTF-8 the Java
///    way), effective hash key `new BigInteger(explicitHashKey)` or the MD5 of the partition
///    key; an exception here is [`Outcome::BatchSkipped`].
/// 3. A hash key outside the range → [`Outcome::Dropped`], nothing delivered.
/// 4. Otherwise the user record, sub-sequence number = its position.
///
/// An aggregate with no user record (a valid message holding only tables, or only unknown
/// fields) delivers nothing.
///
/// Afterwards `ProcessTask.filterAndGetMaxExtendedSequenceNumber` removes every record at or
/// before the lease's checkpoint (sequence number, then sub-sequence number): a worker that
/// resumes from a checkpoint inside an aggregate gets only its later user records. That
/// depends on the checkpoint, not on the record, and is left to the caller.
///
/// ```
/// use kcl_kpl::{AggregateBuilder, ExplicitHashKey, HashKeyRange, Outcome, kcl_view};
/// let lower_half = HashKeyRange::new(0, u128::MAX / 2);
/// let mut builder = AggregateBuilder::default();
/// builder.push("a", Some(&ExplicitHashKey::new(1)), b"in the shard").unwrap();
/// builder.push("b", Some(&ExplicitHashKey::new(u128::MAX)), b"in another shard").unwrap();
/// let aggregate = builder.finish().unwrap();
/// let view = kcl_view(&aggregate.data, &aggregate.partition_key, lower_half);
/// assert_eq!(view.outcome, Outcome::Dropped { record: 1 });
/// assert!(view.records.is_empty()); // the first one is lost too
/// ```
pub fn kcl_view(data: &[u8], partition_key: &str, shard: HashKeyRange) -> KclView {
    match frame::read(data) {
        Err(reason) => KclView {
            outcome: Outcome::PassedThrough(reason),
            records: vec![Delivered {
                partition_key: partition_key.to_owned(),
                explicit_hash_key: None,
                data: data.to_vec(),
                sub_sequence_number: 0,
                aggregated: false,
            }],
        },
        Ok(message) => deaggregate(&message, shard),
    }
}

/// The loop of `AggregatorUtil.deaggregate` over the user records of one aggregate.
fn deaggregate(message: &AggregatedMessage<'_>, shard: HashKeyRange) -> KclView {
    // `(int) index` keeps the low 32 bits, signed; `List.get` rejects negative and too large.
    fn lookup<'a>(table: &[&'a [u8]], index: u64) -> Option<&'a [u8]> {
        usize::try_from(index as u32 as i32)
            .ok()
            .and_then(|i| table.get(i).copied())
    }
    let mut records = Vec::with_capacity(message.records.len());
    for (position, record) in message.records.iter().enumerate() {
        let skipped = |cause| KclView {
            outcome: Outcome::BatchSkipped {
                record: position,
                cause,
            },
            records: Vec::new(),
        };
        let Some(key) = lookup(&message.partition_key_table, record.partition_key_index) else {
            return skipped(LoopError::PartitionKeyIndex(record.partition_key_index));
        };
        let partition_key = java_utf8_lossy(key).into_owned();
        let explicit_hash_key = match record.explicit_hash_key_index {
            None => None,
            Some(index) => match lookup(&message.explicit_hash_key_table, index) {
                Some(text) => Some(java_utf8_lossy(text).into_owned()),
                None => return skipped(LoopError::ExplicitHashKeyIndex(index)),
            },
        };
        let in_shard = match &explicit_hash_key {
            // `new BigInteger(1, md5(partitionKey.getBytes("UTF-8")))`
            None => shard.contains(md5_number(partition_key.as_bytes())),
            Some(text) => match java_big_integer(text) {
                None => return skipped(LoopError::ExplicitHashKeyNotANumber),
                Some(JavaNumber::HashKey(value)) => shard.contains(value),
                Some(JavaNumber::Negative | JavaNumber::TooLarge) => false,
            },
        };
        if !in_shard {
            return KclView {
                outcome: Outcome::Dropped { record: position },
                records: Vec::new(),
            };
        }
        records.push(Delivered {
            partition_key,
            explicit_hash_key,
            data: record.data.to_vec(),
            sub_sequence_number: position as u64,
            aggregated: true,
        });
    }
    KclView {
        outcome: Outcome::Deaggregated,
        records,
    }
}

/// A GetRecords batch the KCL skipped whole: the record processor gets none of its records
/// (see [`Outcome::BatchSkipped`]).
///
/// ```
/// let skipped = kcl_kpl::BatchSkipped { kinesis_record: 1, user_record: 0, cause: kcl_kpl::LoopError::PartitionKeyIndex(5) };
/// assert_eq!(skipped.to_string(), "Kinesis record 1, user record 0: partition key index 5 is outside the table (IndexOutOfBoundsException)");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Error)]
#[error("Kinesis record {kinesis_record}, user record {user_record}: {cause}")]
pub struct BatchSkipped {
    /// The position in the batch of the Kinesis record that made the KCL skip it.
    pub kinesis_record: usize,
    /// The position of the user record in that aggregate.
    pub user_record: usize,
    /// What Java threw.
    pub cause: LoopError,
}

/// What the record processor gets for one GetRecords batch: `ProcessTask` de-aggregates the
/// whole batch in one `AggregatorUtil.deaggregate` call, so one [`Outcome::BatchSkipped`]
/// record takes every record of the batch with it. Each delivered record comes with the
/// position of its Kinesis record in `batch`.
///
/// ```
/// use kcl_kpl::{kcl_batch_view, HashKeyRange};
/// let batch = [(&b"one"[..], "a"), (&b"two"[..], "b")];
/// let delivered = kcl_batch_view(batch, HashKeyRange::ALL).unwrap();
/// assert_eq!(delivered.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 1]);
/// ```
pub fn kcl_batch_view<'a>(
    batch: impl IntoIterator<Item = (&'a [u8], &'a str)>,
    shard: HashKeyRange,
) -> Result<Vec<(usize, Delivered)>, BatchSkipped> {
    let mut delivered = Vec::new();
    for (position, (data, partition_key)) in batch.into_iter().enumerate() {
        let view = kcl_view(data, partition_key, shard);
        if let Outcome::BatchSkipped { record, cause } = view.outcome {
            return Err(BatchSkipped {
                kinesis_record: position,
                user_record: record,
                cause,
            });
        }
        delivered.extend(view.records.into_iter().map(|record| (position, record)));
    }
    Ok(delivered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AggregateBuilder, ExplicitHashKey};

    /// An aggregate with one key table entry and these record bodies, written by hand.
    fn aggregate(key: &[u8], ehks: &[&[u8]], records: &[Vec<u8>]) -> Vec<u8> {
        use crate::proto::put_bytes_field;
        let mut message = Vec::new();
        put_bytes_field(&mut message, 1, key);
        for ehk in ehks {
            put_bytes_field(&mut message, 2, ehk);
        }
        for record in records {
            put_bytes_field(&mut message, 3, record);
        }
        let mut data = Vec::new();
        frame::frame_into(&mut data, &message);
        data
    }

    fn record(index: u64, ehk: Option<u64>, data: &[u8]) -> Vec<u8> {
        use crate::proto::{put_bytes_field, put_varint_field};
        let mut body = Vec::new();
        put_varint_field(&mut body, 1, index);
        if let Some(ehk) = ehk {
            put_varint_field(&mut body, 2, ehk);
        }
        put_bytes_field(&mut body, 3, data);
        body
    }

    #[test]
    fn indexes_are_cast_to_a_java_int() {
        let wrapped = aggregate(b"k", &[], &[record(1 << 32, None, b"a")]);
        let view = kcl_view(&wrapped, "pk", HashKeyRange::ALL);
        assert_eq!(view.outcome, Outcome::Deaggregated);
        assert_eq!(view.records[0].partition_key, "k");
        let negative = aggregate(
            b"k",
            &[],
            &[record(0, None, b"a"), record(1 << 31, None, b"b")],
        );
        assert_eq!(
            kcl_view(&negative, "pk", HashKeyRange::ALL).outcome,
            Outcome::BatchSkipped {
                record: 1,
                cause: LoopError::PartitionKeyIndex(1 << 31)
            }
        );
    }

    #[test]
    fn explicit_hash_keys_as_java_reads_them() {
        let with = |text: &[u8]| {
            kcl_view(
                &aggregate(b"k", &[text], &[record(0, Some(0), b"a")]),
                "pk",
                HashKeyRange::new(0, 100),
            )
            .outcome
        };
        assert_eq!(with(b"+0100"), Outcome::Deaggregated);
        assert_eq!(with(b"101"), Outcome::Dropped { record: 0 });
        assert_eq!(with(b"-1"), Outcome::Dropped { record: 0 });
        assert_eq!(
            with(b"1 "),
            Outcome::BatchSkipped {
                record: 0,
                cause: LoopError::ExplicitHashKeyNotANumber
            }
        );
        assert_eq!(
            kcl_view(
                &aggregate(b"k", &[], &[record(0, Some(0), b"a")]),
                "pk",
                HashKeyRange::ALL
            )
            .outcome,
            Outcome::BatchSkipped {
                record: 0,
                cause: LoopError::ExplicitHashKeyIndex(0)
            }
        );
    }

    #[test]
    fn a_dropped_aggregate_takes_the_records_before_the_stray_one() {
        let mut builder = AggregateBuilder::default();
        builder
            .push("a", Some(&ExplicitHashKey::new(10)), b"in")
            .unwrap();
        builder
            .push("b", Some(&ExplicitHashKey::new(11)), b"in")
            .unwrap();
        builder
            .push("c", Some(&ExplicitHashKey::new(500)), b"out")
            .unwrap();
        let data = builder.finish().unwrap().data;
        let view = kcl_view(&data, "a", HashKeyRange::new(0, 100));
        assert_eq!(
            (view.outcome, view.records.len()),
            (Outcome::Dropped { record: 2 }, 0)
        );
        let all = kcl_view(&data, "a", HashKeyRange::ALL);
        let subs: Vec<u64> = all.records.iter().map(|r| r.sub_sequence_number).collect();
        assert_eq!(subs, [0, 1, 2]);
        assert_eq!(all.records[2].explicit_hash_key.as_deref(), Some("500"));
    }

    #[test]
    fn an_aggregate_without_records_delivers_nothing() {
        let view = kcl_view(&aggregate(b"k", &[], &[]), "pk", HashKeyRange::ALL);
        assert_eq!(
            (view.outcome, view.records.len()),
            (Outcome::Deaggregated, 0)
        );
    }

    #[test]
    fn one_bad_aggregate_skips_the_batch() {
        let good = aggregate(b"k", &[], &[record(0, None, b"a")]);
        let bad = aggregate(b"k", &[], &[record(0, None, b"a"), record(3, None, b"b")]);
        let batch = [(&b"plain"[..], "p"), (&good[..], "k"), (&bad[..], "k")];
        assert_eq!(
            kcl_batch_view(batch, HashKeyRange::ALL),
            Err(BatchSkipped {
                kinesis_record: 2,
                user_record: 1,
                cause: LoopError::PartitionKeyIndex(3)
            })
        );
        let delivered = kcl_batch_view(batch[..2].iter().copied(), HashKeyRange::ALL).unwrap();
        assert_eq!(delivered.len(), 2);
        assert_eq!((delivered[1].0, delivered[1].1.aggregated), (1, true));
    }
}
