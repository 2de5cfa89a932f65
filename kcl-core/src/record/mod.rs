//! Records as user code sees them: decoded payload bytes plus their place in the shard.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::message::WireRecord;
use kcl_protocol::{Position, SequenceNumber};

pub(crate) mod decode;
mod payload_error;

pub use payload_error::{PayloadError, PayloadErrorKind};

/// One Kinesis record, payload already decoded from base64.
///
/// The records of a batch share one buffer holding their payloads and partition keys, so a
/// batch costs a handful of allocations, not several per record; cloning a record is cheap.
///
/// ```
/// use kcl_core::Record;
/// let record = Record::new("hello", "pk-1", kcl_core::Position::new("495903382714902566081", 0));
/// assert_eq!(record.data(), b"hello");
/// assert_eq!(record.partition_key(), "pk-1");
/// assert_eq!(record.sequence_number().as_str(), "495903382714902566081");
/// ```
#[derive(Clone)]
pub struct Record {
    /// Payloads and partition keys of this record's batch.
    bytes: Arc<Vec<u8>>,
    /// Where the payload lies in `bytes`.
    data: Span,
    /// Where the partition key lies in `bytes`: always valid UTF-8 (see [`Record::partition_key`]).
    key: Span,
    position: Position,
    arrival_millis: Option<i64>,
}

impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        self.data() == other.data()
            && self.partition_key() == other.partition_key()
            && self.position == other.position
            && self.arrival_millis == other.arrival_millis
    }
}

impl Eq for Record {}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("data", &String::from_utf8_lossy(self.data()))
            .field("partition_key", &self.partition_key())
            .field("position", &self.position)
            .field("arrival_millis", &self.arrival_millis)
            .finish()
    }
}

/// Builds the records of one batch into one shared buffer.
pub(crate) struct RecordsBuilder {
    bytes: Vec<u8>,
    parts: Vec<Parts>,
}

struct Parts {
    data: Span,
    key: Span,
    position: Position,
    arrival_millis: Option<i64>,
}

/// A range of a batch's buffer: full `usize` offsets, so a buffer of any size is addressed
/// exactly (offsets narrowed to `u32` wrapped past 4 GiB, and the key's range could then fall
/// inside a payload, which `partition_key` would have read as UTF-8 unchecked).
type Span = (usize, usize);

/// The span `start..end`; `start <= end` always holds for the spans a record keeps.
fn span(start: usize, end: usize) -> Span {
    assert!(start <= end, "span {start}..{end} is reversed");
    (start, end)
}

impl RecordsBuilder {
    /// Room for `records` records and `bytes` bytes of payloads and keys; `bytes` may be a
    /// recycled buffer (it is cleared).
    pub(crate) fn new(mut buffer: Vec<u8>, records: usize) -> Self {
        buffer.clear();
        RecordsBuilder {
            bytes: buffer,
            parts: Vec::with_capacity(records),
        }
    }

    /// Decodes a record's base64 payload into the batch's buffer.
    pub(crate) fn push_base64(
        &mut self,
        base64: &[u8],
        key: &str,
        position: Position,
        arrival_millis: Option<i64>,
    ) -> Result<(), PayloadError> {
        let start = self.bytes.len();
        if let Err(error) = decode::decode_append(base64, &mut self.bytes) {
            return Err(PayloadError::invalid_base64(&position, key, error));
        }
        self.push_decoded_end(start, key, position, arrival_millis);
        Ok(())
    }

    /// Adds a record whose payload is `data`.
    pub(crate) fn push_bytes(
        &mut self,
        data: &[u8],
        key: &str,
        position: Position,
        arrival_millis: Option<i64>,
    ) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        self.push_decoded_end(start, key, position, arrival_millis);
    }

    fn push_decoded_end(
        &mut self,
        start: usize,
        key: &str,
        position: Position,
        arrival_millis: Option<i64>,
    ) {
        let data_end = self.bytes.len();
        self.bytes.extend_from_slice(key.as_bytes());
        self.parts.push(Parts {
            data: span(start, data_end),
            key: span(data_end, self.bytes.len()),
            position,
            arrival_millis,
        });
    }

    /// The records, sharing one buffer.
    pub(crate) fn finish(self) -> Vec<Record> {
        let bytes = Arc::new(self.bytes);
        self.parts
            .into_iter()
            .map(|parts| Record {
                bytes: Arc::clone(&bytes),
                data: parts.data,
                key: parts.key,
                position: parts.position,
                arrival_millis: parts.arrival_millis,
            })
            .collect()
    }
}

impl Record {
    /// A record whose payload and key lie in `bytes` (shared with its batch).
    ///
    /// # Safety
    ///
    /// `bytes[key.0..key.1]` must be valid UTF-8: [`Record::partition_key`] reads it without
    /// checking again. (`scan::layout` checks every key before the scanner calls this.)
    pub(crate) unsafe fn in_buffer(
        bytes: Arc<Vec<u8>>,
        data: (usize, usize),
        key: (usize, usize),
        position: Position,
        arrival_millis: Option<i64>,
    ) -> Self {
        debug_assert!(
            bytes
                .get(key.0..key.1)
                .is_some_and(|key| std::str::from_utf8(key).is_ok())
        );
        Record {
            bytes,
            data: span(data.0, data.1),
            key: span(key.0, key.1),
            position,
            arrival_millis,
        }
    }

    /// A record with the given payload, partition key and position, and no arrival time.
    ///
    /// ```
    /// let r = kcl_core::Record::new(vec![0u8, 255], "k", kcl_core::Position::new("1", 0));
    /// assert_eq!(r.data(), &[0, 255]);
    /// ```
    pub fn new(data: impl AsRef<[u8]>, partition_key: impl AsRef<str>, position: Position) -> Self {
        let mut builder = RecordsBuilder::new(Vec::new(), 1);
        builder.push_bytes(data.as_ref(), partition_key.as_ref(), position, None);
        builder.finish().pop().expect("one record")
    }

    /// The same record with an approximate arrival time (epoch milliseconds).
    ///
    /// ```
    /// let r = kcl_core::Record::new("x", "k", kcl_core::Position::new("1", 0))
    ///     .with_arrival_millis(1_700_000_000_000);
    /// assert_eq!(r.approximate_arrival_millis(), Some(1_700_000_000_000));
    /// ```
    pub fn with_arrival_millis(mut self, epoch_millis: i64) -> Self {
        self.arrival_millis = Some(epoch_millis);
        self
    }

    /// Decodes the wire records of a batch; fails on the first `data` that is not base64.
    pub(crate) fn batch_from_wire(wire: Vec<WireRecord>) -> Result<Vec<Record>, PayloadError> {
        let capacity = wire
            .iter()
            .map(|r| r.data.as_ref().map_or(0, String::len) + r.partition_key.len())
            .sum();
        let mut builder = RecordsBuilder::new(Vec::with_capacity(capacity), wire.len());
        for record in wire {
            let position = record.position();
            let arrival = record.approximate_arrival_timestamp;
            match record.data.as_deref() {
                None | Some("") => {
                    builder.push_bytes(&[], &record.partition_key, position, arrival)
                }
                Some(text) => builder.push_base64(
                    text.as_bytes(),
                    &record.partition_key,
                    position,
                    arrival,
                )?,
            }
        }
        Ok(builder.finish())
    }

    /// The decoded payload.
    ///
    /// ```
    /// let r = kcl_core::Record::new(vec![0x00, 0x0a, 0xff], "k", kcl_core::Position::new("1", 0));
    /// assert_eq!(r.data(), [0x00, 0x0a, 0xff]);
    /// assert_eq!(r.data().len(), 3);
    /// ```
    pub fn data(&self) -> &[u8] {
        &self.bytes[self.data.0..self.data.1]
    }

    /// The payload as an owned vector (a copy: records share their batch's buffer).
    ///
    /// ```
    /// let r = kcl_core::Record::new("abc", "k", kcl_core::Position::new("1", 0));
    /// assert_eq!(r.into_data(), b"abc".to_vec());
    /// ```
    pub fn into_data(self) -> Vec<u8> {
        self.data().to_vec()
    }

    /// The partition key (for de-aggregated KPL records, the user record's key).
    ///
    /// ```
    /// let r = kcl_core::Record::new("x", "customer-42", kcl_core::Position::new("1", 0));
    /// assert_eq!(r.partition_key(), "customer-42");
    /// ```
    pub fn partition_key(&self) -> &str {
        let bytes = &self.bytes[self.key.0..self.key.1];
        // SAFETY: `key` is the exact range (no narrowing cast anywhere) where the key was put:
        // copied from a `&str` (`RecordsBuilder`), or promised valid UTF-8 by the caller of the
        // `unsafe fn Record::in_buffer`; the buffer is never written after the records are made
        // (it is behind an `Arc`).
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    /// The sequence number (shared by all user records of one KPL aggregate).
    ///
    /// ```
    /// use kcl_core::{Position, Record};
    /// let a = Record::new("a", "k", Position::new("4959", 0));
    /// let b = Record::new("b", "k", Position::new("4959", 1));
    /// assert_eq!(a.sequence_number(), b.sequence_number());
    /// assert_eq!(a.sequence_number().as_str(), "4959");
    /// ```
    pub fn sequence_number(&self) -> &SequenceNumber {
        self.position.sequence_number()
    }

    /// The index inside a KPL aggregate (0 for ordinary records).
    ///
    /// ```
    /// let r = kcl_core::Record::new("x", "k", kcl_core::Position::new("4959", 2));
    /// assert_eq!(r.sub_sequence_number(), 2);
    /// ```
    pub fn sub_sequence_number(&self) -> u64 {
        self.position.sub_sequence_number()
    }

    /// Sequence number and sub-sequence number together: what a checkpoint stores.
    ///
    /// ```
    /// use kcl_core::{Position, Record};
    /// let r = Record::new("x", "k", Position::new("4959", 2));
    /// assert_eq!(r.position(), &Position::new("4959", 2));
    /// assert!(r.position() > &Position::new("4959", 1));
    /// ```
    pub fn position(&self) -> &Position {
        &self.position
    }

    /// When Kinesis accepted the record, if the daemon said.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// let r = kcl_core::Record::new("x", "k", kcl_core::Position::new("1", 0)).with_arrival_millis(1500);
    /// assert_eq!(r.approximate_arrival(), Some(UNIX_EPOCH + Duration::from_millis(1500)));
    /// ```
    pub fn approximate_arrival(&self) -> Option<SystemTime> {
        let millis = self.arrival_millis?;
        if millis >= 0 {
            UNIX_EPOCH.checked_add(Duration::from_millis(millis as u64))
        } else {
            UNIX_EPOCH.checked_sub(Duration::from_millis(millis.unsigned_abs()))
        }
    }

    /// The arrival time as the daemon sent it, in epoch milliseconds.
    ///
    /// ```
    /// use kcl_core::{Position, Record};
    /// let r = Record::new("x", "k", Position::new("1", 0));
    /// assert_eq!(r.approximate_arrival_millis(), None);
    /// assert_eq!(r.with_arrival_millis(-5).approximate_arrival_millis(), Some(-5));
    /// ```
    pub fn approximate_arrival_millis(&self) -> Option<i64> {
        self.arrival_millis
    }
}

/// One `processRecords` delivery: the records, the lag, and the shard they came from.
///
/// ```
/// use kcl_core::{Batch, Json, Position, Record};
/// #[derive(serde::Deserialize)]
/// struct Order { id: u32 }
/// let batch = Batch::new("shardId-0", vec![Record::new(r#"{"id":7}"#, "k", Position::new("1", 0))], Some(0));
/// let orders: Vec<Json<Order>> = batch.extract().unwrap();
/// assert_eq!(orders[0].0.id, 7);
/// assert_eq!(batch.last().unwrap().sequence_number().as_str(), "1");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    shard_id: Arc<str>,
    records: Vec<Record>,
    millis_behind_latest: Option<u64>,
}

impl Batch {
    /// A batch of records from `shard_id`.
    ///
    /// ```
    /// use kcl_core::{Batch, Position, Record};
    /// let batch = Batch::new("shardId-000000000002", vec![Record::new("x", "k", Position::new("1", 0))], Some(30));
    /// assert_eq!((batch.shard_id(), batch.len(), batch.millis_behind_latest()), ("shardId-000000000002", 1, Some(30)));
    /// ```
    pub fn new(
        shard_id: impl Into<Arc<str>>,
        records: Vec<Record>,
        millis_behind_latest: Option<u64>,
    ) -> Self {
        Batch {
            shard_id: shard_id.into(),
            records,
            millis_behind_latest,
        }
    }

    /// The records, in shard order.
    ///
    /// ```
    /// use kcl_core::{Batch, Position, Record};
    /// let batch = Batch::new("s", vec![
    ///     Record::new("a", "k", Position::new("1", 0)),
    ///     Record::new("b", "k", Position::new("2", 0)),
    /// ], None);
    /// assert_eq!(batch.records()[1].data(), b"b");
    /// ```
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Iterates over the records.
    ///
    /// ```
    /// use kcl_core::{Batch, Position, Record};
    /// let batch = Batch::new("s", vec![
    ///     Record::new("a", "k1", Position::new("1", 0)),
    ///     Record::new("b", "k2", Position::new("2", 0)),
    /// ], None);
    /// let keys: Vec<&str> = batch.iter().map(|r| r.partition_key()).collect();
    /// assert_eq!(keys, ["k1", "k2"]);
    /// ```
    pub fn iter(&self) -> std::slice::Iter<'_, Record> {
        self.records.iter()
    }

    /// The records, taking ownership.
    ///
    /// ```
    /// use kcl_core::{Batch, Position, Record};
    /// let batch = Batch::new("s", vec![Record::new("a", "k", Position::new("1", 0))], None);
    /// let payloads: Vec<Vec<u8>> = batch.into_records().into_iter().map(Record::into_data).collect();
    /// assert_eq!(payloads, [b"a".to_vec()]);
    /// ```
    pub fn into_records(self) -> Vec<Record> {
        self.records
    }

    /// Number of records.
    ///
    /// ```
    /// use kcl_core::{Batch, Position, Record};
    /// let records = (1..=3).map(|n| Record::new("x", "k", Position::new(n.to_string(), 0))).collect();
    /// assert_eq!(Batch::new("s", records, None).len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the batch has no records (sent only with `callProcessRecordsEvenForEmptyRecordList`).
    ///
    /// ```
    /// let batch = kcl_core::Batch::new("s", Vec::new(), Some(0));
    /// assert!(batch.is_empty());
    /// assert!(batch.last().is_none());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The last record, whose position covers the whole batch in a checkpoint.
    ///
    /// ```
    /// use kcl_core::{Batch, Position, Record};
    /// let batch = Batch::new("s", vec![
    ///     Record::new("a", "k", Position::new("7", 0)),
    ///     Record::new("b", "k", Position::new("7", 1)),
    /// ], None);
    /// assert_eq!(batch.last().unwrap().position(), &Position::new("7", 1));
    /// ```
    pub fn last(&self) -> Option<&Record> {
        self.records.last()
    }

    /// Milliseconds between the last record of the batch and the tip of the stream, if known.
    ///
    /// ```
    /// use kcl_core::Batch;
    /// assert_eq!(Batch::new("s", Vec::new(), Some(1_200)).millis_behind_latest(), Some(1_200));
    /// assert_eq!(Batch::new("s", Vec::new(), None).millis_behind_latest(), None);
    /// ```
    pub fn millis_behind_latest(&self) -> Option<u64> {
        self.millis_behind_latest
    }

    /// The shard these records came from.
    ///
    /// In a handler it is the id from `initialize`:
    ///
    /// ```
    /// use std::{cell::RefCell, rc::Rc};
    /// let shard = Rc::new(RefCell::new(String::new()));
    /// let seen = shard.clone();
    /// let mut daemon = kcl_core::testing::TestDaemon::new(kcl_core::from_fn(move |batch, _| {
    ///     *seen.borrow_mut() = batch.shard_id().to_owned();
    ///     Ok(())
    /// }));
    /// daemon.initialize("shardId-000000000009");
    /// daemon.process_payloads(["x"]);
    /// assert_eq!(*shard.borrow(), "shardId-000000000009");
    /// ```
    pub fn shard_id(&self) -> &str {
        &self.shard_id
    }

    pub(crate) fn shard_id_arc(&self) -> Arc<str> {
        self.shard_id.clone()
    }
}

impl<'a> IntoIterator for &'a Batch {
    type Item = &'a Record;
    type IntoIter = std::slice::Iter<'a, Record>;

    fn into_iter(self) -> Self::IntoIter {
        self.records.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(data: Option<&str>) -> WireRecord {
        WireRecord {
            data: data.map(str::to_owned),
            partition_key: "pk".into(),
            sequence_number: "495903382714902566081".into(),
            approximate_arrival_timestamp: Some(1_700_000_000_000),
            sub_sequence_number: Some(0),
        }
    }

    fn one(data: Option<&str>) -> Result<Record, PayloadError> {
        Record::batch_from_wire(vec![wire(data)]).map(|mut records| records.remove(0))
    }

    #[test]
    fn records_of_a_batch_share_one_buffer() {
        let records =
            Record::batch_from_wire(vec![wire(Some("aGk=")), wire(Some("AP8="))]).unwrap();
        assert!(Arc::ptr_eq(&records[0].bytes, &records[1].bytes));
        assert_eq!(
            (records[0].data(), records[1].data()),
            (&b"hi"[..], &[0u8, 255][..])
        );
        assert_eq!(records[1].partition_key(), "pk");
    }

    #[test]
    fn decodes_binary_and_empty_payloads() {
        assert_eq!(
            one(Some("AP8KDQAi")).unwrap().data(),
            &[0x00, 0xff, 0x0a, 0x0d, 0x00, 0x22]
        );
        assert!(one(Some("")).unwrap().data().is_empty());
        assert!(one(None).unwrap().data().is_empty());
        assert_eq!(one(Some("aGk")).unwrap().data(), b"hi");
    }

    /// Finding 9: offsets past 4 GiB are kept exactly (as `u32` they wrapped to 0, 7).
    #[test]
    fn spans_hold_offsets_past_4_gib() {
        let start = u32::MAX as usize + 1;
        assert_eq!(span(start, start + 7), (start, start + 7));
        assert_eq!(span(usize::MAX, usize::MAX), (usize::MAX, usize::MAX));
        assert_eq!(span(0, 0), (0, 0));
    }

    #[test]
    #[should_panic(expected = "reversed")]
    fn a_reversed_span_is_refused() {
        span(8, 7);
    }

    #[test]
    fn invalid_base64_names_the_record() {
        let error = one(Some("!!!")).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("495903382714902566081"), "{text}");
        assert!(text.contains("base64"), "{text}");
    }
}
