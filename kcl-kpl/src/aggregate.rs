//! Building aggregates: user records in, one Kinesis record's data out, its size known exactly
//! before every push.

use std::collections::HashMap;

use thiserror::Error;

use crate::decode::{Tag, UserRecord};
use crate::frame::{FRAME_LEN, frame_into};
use crate::hash::{ExplicitHashKey, hash_key};
use crate::proto::{
    bytes_field_len, put_bytes_field, put_length_prefix, put_varint_field, varint_field_len,
};

/// The largest Kinesis record by default: 1 MiB of data and partition key together (a stream
/// may raise it with `MaxRecordSizeInKiB`).
///
/// ```
/// assert_eq!(kcl_kpl::KINESIS_MAX_RECORD_BYTES, 1_048_576);
/// ```
pub const KINESIS_MAX_RECORD_BYTES: usize = 1 << 20;

/// Why [`AggregateBuilder::push`] did not take a record. The builder is unchanged and the
/// record is still the caller's (`push` only borrows it): finish the aggregate and push the
/// record into the next one, unless it is [`Full::RecordTooLarge`].
///
/// ```
/// use kcl_kpl::{AggregateBuilder, Full};
/// let mut builder = AggregateBuilder::new(1000, 1);
/// builder.push("k", None, b"first").unwrap();
/// assert_eq!(builder.push("k", None, b"second"), Err(Full::TooManyRecords));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Error)]
pub enum Full {
    /// The aggregate already holds the most records allowed.
    #[error("the aggregate holds the most records allowed")]
    TooManyRecords,
    /// The record would take the aggregate past its byte limit.
    #[error("the record does not fit in the bytes left in the aggregate")]
    TooManyBytes,
    /// The record is too large even for an empty aggregate.
    #[error("the record alone is larger than an aggregate may be")]
    RecordTooLarge,
}

/// A finished aggregate: the data of one Kinesis record and the keys to put it with.
///
/// ```
/// use kcl_kpl::AggregateBuilder;
/// let mut builder = AggregateBuilder::default();
/// builder.push("first", None, b"1").unwrap();
/// builder.push("second", None, b"2").unwrap();
/// let aggregate = builder.finish().unwrap();
/// assert_eq!((aggregate.partition_key.as_str(), aggregate.records), ("first", 2));
/// assert_eq!(aggregate.kinesis_size(), aggregate.data.len() + "first".len());
/// assert_eq!(aggregate.hash_key(), kcl_kpl::hash_key("first"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Aggregate {
    /// The Kinesis record's data: magic, protobuf message, MD5 digest.
    pub data: Vec<u8>,
    /// The Kinesis record's partition key: the first user record's, as `aws_kinesis_agg` does.
    /// (The KPL puts its aggregates with partition key `"a"` and the first user record's hash
    /// key as explicit hash key: the same shard, one byte.)
    pub partition_key: String,
    /// The Kinesis record's explicit hash key: the first user record's, if it had one (send
    /// it as `value.to_string()`, the plain decimal the Kinesis API requires).
    pub explicit_hash_key: Option<u128>,
    /// How many user records it holds.
    pub records: usize,
}

impl Aggregate {
    /// What Kinesis counts against its record size limit: data plus partition key (UTF-8).
    ///
    /// ```
    /// let mut builder = kcl_kpl::AggregateBuilder::default();
    /// builder.push("key", None, b"").unwrap();
    /// let size = builder.kinesis_size();
    /// assert_eq!(builder.finish().unwrap().kinesis_size(), size);
    /// ```
    pub fn kinesis_size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }

    /// The hash key that places the Kinesis record, so the shard it lands on: the explicit hash
    /// key, else the MD5 of the partition key. The KCL drops the whole aggregate if a user
    /// record's own hash key is outside that shard (see [`kcl_view`](crate::kcl_view)).
    ///
    /// ```
    /// let mut builder = kcl_kpl::AggregateBuilder::default();
    /// builder.push("a", Some(&kcl_kpl::ExplicitHashKey::new(9)), b"").unwrap();
    /// assert_eq!(builder.finish().unwrap().hash_key(), 9);
    /// ```
    pub fn hash_key(&self) -> u128 {
        self.explicit_hash_key
            .unwrap_or_else(|| hash_key(&self.partition_key))
    }
}

/// The keys of one table (partition keys or explicit hash keys), each stored once, with their
/// encoded table fields.
#[derive(Clone, Debug, Default)]
struct KeyTable {
    index: HashMap<String, u64>,
    /// The table's fields as they will be written (tag, length, text for each entry).
    encoded: Vec<u8>,
}

impl KeyTable {
    /// The index `key` has or would get, and the bytes a new entry would add.
    fn lookup(&self, key: &str) -> (u64, usize) {
        match self.index.get(key) {
            Some(&index) => (index, 0),
            None => (self.index.len() as u64, bytes_field_len(key.len())),
        }
    }

    fn insert(&mut self, field: u32, key: &str) -> u64 {
        if let Some(&index) = self.index.get(key) {
            return index;
        }
        let index = self.index.len() as u64;
        self.index.insert(key.to_owned(), index);
        put_bytes_field(&mut self.encoded, field, key.as_bytes());
        index
    }

    fn clear(&mut self) {
        self.index.clear();
        self.encoded.clear();
    }
}

/// Collects user records into one aggregate, within a byte limit and a record limit, with the
/// exact size known at every step.
///
/// The output is what Python's protobuf (and `aws_kinesis_agg` 1.2.3) writes for the same
/// records: the partition key table, the explicit hash key table (each key once, in order of
/// first use), then the records; in each record `partition_key_index` (always, also when 0),
/// `explicit_hash_key_index` (if any), `data` (always, also when empty), then tags. Writing the
/// required fields always matters: without them the KCL's parser fails and the KCL delivers
/// the whole aggregate as one opaque record.
///
/// The byte limit applies to [`kinesis_size`](Self::kinesis_size), what Kinesis counts: the
/// aggregate's bytes plus the partition key it is put with (the first record's).
///
/// ```
/// use kcl_kpl::{AggregateBuilder, ExplicitHashKey, Full, decode};
/// let mut builder = AggregateBuilder::new(200, 1000);
/// assert_eq!(builder.encoded_len(), 20); // magic + digest
/// builder.push("user-1", None, b"hello").unwrap();
/// builder.push("user-1", Some(&ExplicitHashKey::new(7)), b"").unwrap();
/// assert_eq!(builder.push("user-2", None, &[0; 200]), Err(Full::TooManyBytes));
/// let expected = builder.encoded_len();
/// let aggregate = builder.finish().unwrap();
/// assert_eq!(aggregate.data.len(), expected);
/// assert_eq!(decode(&aggregate.data).unwrap().len(), 2);
/// assert!(builder.is_empty()); // ready for the next aggregate
/// ```
#[derive(Clone, Debug)]
pub struct AggregateBuilder {
    max_bytes: usize,
    max_records: usize,
    partition_keys: KeyTable,
    explicit_hash_keys: KeyTable,
    /// The `records` fields as they will be written.
    records: Vec<u8>,
    count: usize,
    /// The first record's partition key and explicit hash key: the aggregate's own.
    first: Option<(String, Option<u128>)>,
}

impl Default for AggregateBuilder {
    /// A builder for the default Kinesis record limit ([`KINESIS_MAX_RECORD_BYTES`]) and no
    /// limit on the number of records.
    ///
    /// ```
    /// let builder = kcl_kpl::AggregateBuilder::default();
    /// assert_eq!(builder.max_bytes(), kcl_kpl::KINESIS_MAX_RECORD_BYTES);
    /// ```
    fn default() -> Self {
        AggregateBuilder::new(KINESIS_MAX_RECORD_BYTES, usize::MAX)
    }
}

impl AggregateBuilder {
    /// An empty builder whose aggregates stay within `max_bytes` as Kinesis counts them
    /// ([`kinesis_size`](Self::kinesis_size)) and hold at most `max_records` user records.
    ///
    /// ```
    /// let builder = kcl_kpl::AggregateBuilder::new(51_200, 500);
    /// assert_eq!((builder.max_bytes(), builder.max_records()), (51_200, 500));
    /// ```
    pub fn new(max_bytes: usize, max_records: usize) -> Self {
        AggregateBuilder {
            max_bytes,
            max_records,
            partition_keys: KeyTable::default(),
            explicit_hash_keys: KeyTable::default(),
            records: Vec::new(),
            count: 0,
            first: None,
        }
    }

    /// The byte limit.
    ///
    /// ```
    /// assert_eq!(kcl_kpl::AggregateBuilder::new(100, 1).max_bytes(), 100);
    /// ```
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The record limit.
    ///
    /// ```
    /// assert_eq!(kcl_kpl::AggregateBuilder::new(100, 1).max_records(), 1);
    /// ```
    pub fn max_records(&self) -> usize {
        self.max_records
    }

    /// The number of user records pushed since the last [`finish`](Self::finish).
    ///
    /// ```
    /// let mut builder = kcl_kpl::AggregateBuilder::default();
    /// builder.push("k", None, b"").unwrap();
    /// assert_eq!(builder.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no user record was pushed since the last [`finish`](Self::finish).
    ///
    /// ```
    /// assert!(kcl_kpl::AggregateBuilder::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The exact length of the aggregate [`finish`](Self::finish) would return now: 4 magic
    /// bytes, the protobuf message, 16 digest bytes (20 when empty).
    ///
    /// ```
    /// let mut builder = kcl_kpl::AggregateBuilder::default();
    /// builder.push("k", None, b"data").unwrap();
    /// // magic 4 + key table 3 + record (2 + index 2 + data 6) + digest 16
    /// assert_eq!(builder.encoded_len(), 33);
    /// ```
    pub fn encoded_len(&self) -> usize {
        FRAME_LEN
            + self.partition_keys.encoded.len()
            + self.explicit_hash_keys.encoded.len()
            + self.records.len()
    }

    /// What Kinesis would count for the aggregate now: [`encoded_len`](Self::encoded_len) plus
    /// the UTF-8 length of the aggregate's partition key (the first record's; 0 when empty).
    ///
    /// ```
    /// let mut builder = kcl_kpl::AggregateBuilder::default();
    /// builder.push("key", None, b"data").unwrap();
    /// assert_eq!(builder.kinesis_size(), builder.encoded_len() + 3);
    /// ```
    pub fn kinesis_size(&self) -> usize {
        self.encoded_len() + self.first.as_ref().map_or(0, |(key, _)| key.len())
    }

    /// Adds a user record, or says why it does not fit ([`Full`]; the builder is then
    /// unchanged).
    ///
    /// ```
    /// use kcl_kpl::{AggregateBuilder, Full};
    /// let mut builder = AggregateBuilder::new(40, 10);
    /// assert_eq!(builder.push("k", None, &[0; 40]), Err(Full::RecordTooLarge));
    /// builder.push("k", None, b"small").unwrap();
    /// ```
    pub fn push(
        &mut self,
        partition_key: &str,
        explicit_hash_key: Option<&ExplicitHashKey>,
        data: &[u8],
    ) -> Result<(), Full> {
        self.push_parts(partition_key, explicit_hash_key, data, &[])
    }

    /// Adds a user record with its tags, or says why it does not fit.
    ///
    /// ```
    /// use kcl_kpl::{AggregateBuilder, Tag, UserRecord, decode};
    /// let mut record = UserRecord::new("k", b"v".to_vec());
    /// record.tags.push(Tag { key: "origin".into(), value: None });
    /// let mut builder = AggregateBuilder::default();
    /// builder.push_record(&record).unwrap();
    /// assert_eq!(decode(&builder.finish().unwrap().data).unwrap(), [record]);
    /// ```
    pub fn push_record(&mut self, record: &UserRecord) -> Result<(), Full> {
        self.push_parts(
            &record.partition_key,
            record.explicit_hash_key.as_ref(),
            &record.data,
            &record.tags,
        )
    }

    fn push_parts(
        &mut self,
        partition_key: &str,
        explicit_hash_key: Option<&ExplicitHashKey>,
        data: &[u8],
        tags: &[Tag],
    ) -> Result<(), Full> {
        if self.count >= self.max_records {
            return Err(Full::TooManyRecords);
        }
        let (key_index, key_bytes) = self.partition_keys.lookup(partition_key);
        let (hash_index, hash_bytes) = explicit_hash_key.map_or((None, 0), |key| {
            let (index, bytes) = self.explicit_hash_keys.lookup(key.as_str());
            (Some(index), bytes)
        });
        let body = record_len(key_index, hash_index, data.len(), tags);
        let aggregate_key = self
            .first
            .as_ref()
            .map_or(partition_key.len(), |(key, _)| key.len());
        let size =
            self.encoded_len() + key_bytes + hash_bytes + bytes_field_len(body) + aggregate_key;
        if size > self.max_bytes {
            return Err(if self.count == 0 {
                Full::RecordTooLarge
            } else {
                Full::TooManyBytes
            });
        }
        let key_index = self.partition_keys.insert(1, partition_key);
        let hash_index =
            explicit_hash_key.map(|key| self.explicit_hash_keys.insert(2, key.as_str()));
        let start = self.records.len();
        encode_record(&mut self.records, body, key_index, hash_index, data, tags);
        debug_assert_eq!(self.records.len() - start, bytes_field_len(body));
        if self.first.is_none() {
            self.first = Some((
                partition_key.to_owned(),
                explicit_hash_key.map(ExplicitHashKey::value),
            ));
        }
        self.count += 1;
        Ok(())
    }

    /// The aggregate of the records pushed so far, or `None` if there are none (the KCL would
    /// not read an empty aggregate as one: it has no message bytes). The builder is emptied
    /// and keeps its limits and allocations.
    ///
    /// ```
    /// let mut builder = kcl_kpl::AggregateBuilder::default();
    /// assert!(builder.finish().is_none());
    /// builder.push("k", None, b"").unwrap();
    /// assert_eq!(builder.finish().unwrap().records, 1);
    /// assert!(builder.is_empty());
    /// ```
    pub fn finish(&mut self) -> Option<Aggregate> {
        let (partition_key, explicit_hash_key) = self.first.take()?;
        let mut message = Vec::with_capacity(self.encoded_len() - FRAME_LEN);
        message.extend_from_slice(&self.partition_keys.encoded);
        message.extend_from_slice(&self.explicit_hash_keys.encoded);
        message.extend_from_slice(&self.records);
        let mut data = Vec::with_capacity(message.len() + FRAME_LEN);
        frame_into(&mut data, &message);
        debug_assert_eq!(data.len(), self.encoded_len());
        let records = self.count;
        self.partition_keys.clear();
        self.explicit_hash_keys.clear();
        self.records.clear();
        self.count = 0;
        Some(Aggregate {
            data,
            partition_key,
            explicit_hash_key,
            records,
        })
    }
}

/// The length of an encoded `Tag` message.
fn tag_len(tag: &Tag) -> usize {
    bytes_field_len(tag.key.len()) + tag.value.as_ref().map_or(0, |v| bytes_field_len(v.len()))
}

/// The length of an encoded `Record` message.
fn record_len(key_index: u64, hash_index: Option<u64>, data_len: usize, tags: &[Tag]) -> usize {
    varint_field_len(key_index)
        + hash_index.map_or(0, varint_field_len)
        + bytes_field_len(data_len)
        + tags
            .iter()
            .map(|tag| bytes_field_len(tag_len(tag)))
            .sum::<usize>()
}

/// Appends one `records` field (field 3) whose message is `body` bytes long.
fn encode_record(
    out: &mut Vec<u8>,
    body: usize,
    key_index: u64,
    hash_index: Option<u64>,
    data: &[u8],
    tags: &[Tag],
) {
    put_length_prefix(out, 3, body);
    put_varint_field(out, 1, key_index);
    if let Some(index) = hash_index {
        put_varint_field(out, 2, index);
    }
    put_bytes_field(out, 3, data);
    for tag in tags {
        put_length_prefix(out, 4, tag_len(tag));
        put_bytes_field(out, 1, tag.key.as_bytes());
        if let Some(value) = &tag.value {
            put_bytes_field(out, 2, value.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode;

    #[test]
    fn the_bytes_of_a_small_aggregate() {
        let mut builder = AggregateBuilder::default();
        builder.push("k", None, b"").unwrap();
        builder
            .push("k", Some(&ExplicitHashKey::new(5)), b"ab")
            .unwrap();
        let aggregate = builder.finish().unwrap();
        let message: &[u8] = &[
            0x0A, 0x01, b'k', // partition_key_table: "k"
            0x12, 0x01, b'5', // explicit_hash_key_table: "5"
            0x1A, 0x04, 0x08, 0x00, 0x1A, 0x00, // record: index 0, data "" (both written)
            0x1A, 0x08, 0x08, 0x00, 0x10, 0x00, 0x1A, 0x02, b'a',
            b'b', // index 0, ehk 0, "ab"
        ];
        assert_eq!(&aggregate.data[..4], &crate::MAGIC);
        assert_eq!(&aggregate.data[4..aggregate.data.len() - 16], message);
        assert_eq!(
            &aggregate.data[aggregate.data.len() - 16..],
            &crate::hash::md5(message)
        );
        assert_eq!(aggregate.records, 2);
        assert_eq!(
            aggregate.explicit_hash_key, None,
            "the first record has none"
        );
    }

    #[test]
    fn keys_are_stored_once_in_order_of_first_use() {
        let mut builder = AggregateBuilder::default();
        let seven = ExplicitHashKey::parse("007").unwrap();
        for (key, hash) in [
            ("b", None),
            ("a", Some(&seven)),
            ("b", Some(&seven)),
            ("c", None),
        ] {
            builder.push(key, hash, b"x").unwrap();
        }
        let aggregate = builder.finish().unwrap();
        let message = crate::frame::read(&aggregate.data).unwrap();
        assert_eq!(message.partition_key_table, [&b"b"[..], b"a", b"c"]);
        assert_eq!(message.explicit_hash_key_table, [&b"007"[..]]);
        let indexes: Vec<_> = message
            .records
            .iter()
            .map(|r| (r.partition_key_index, r.explicit_hash_key_index))
            .collect();
        assert_eq!(indexes, [(0, None), (1, Some(0)), (0, Some(0)), (2, None)]);
        assert_eq!(
            (aggregate.partition_key.as_str(), aggregate.records),
            ("b", 4)
        );
    }

    #[test]
    fn a_full_builder_is_unchanged_and_the_limits_are_exact() {
        let mut builder = AggregateBuilder::new(usize::MAX, usize::MAX);
        builder.push("key", None, b"first").unwrap();
        builder.push("other", None, b"second").unwrap();
        let exact = builder.kinesis_size();
        // The same records under a limit of exactly that size fit; one byte less does not.
        let mut fits = AggregateBuilder::new(exact, 2);
        fits.push("key", None, b"first").unwrap();
        fits.push("other", None, b"second").unwrap();
        assert_eq!(fits.kinesis_size(), exact);
        let mut tight = AggregateBuilder::new(exact - 1, 2);
        tight.push("key", None, b"first").unwrap();
        let before = (tight.encoded_len(), tight.len());
        assert_eq!(
            tight.push("other", None, b"second"),
            Err(Full::TooManyBytes)
        );
        assert_eq!((tight.encoded_len(), tight.len()), before);
        assert_eq!(fits.push("x", None, b""), Err(Full::TooManyRecords));
        let mut none = AggregateBuilder::new(exact, 0);
        assert_eq!(none.push("x", None, b""), Err(Full::TooManyRecords));
    }

    #[test]
    fn the_aggregate_partition_key_counts() {
        // 20 frame + 3 key table entry + 6 record + key: "kk" costs 2 more than "k" twice.
        let mut one = AggregateBuilder::new(31, 10);
        one.push("k", None, b"x").unwrap();
        assert_eq!(one.kinesis_size(), 31);
        let mut two = AggregateBuilder::new(31, 10);
        assert_eq!(two.push("kk", None, b"x"), Err(Full::RecordTooLarge));
    }

    #[test]
    fn finish_resets_for_the_next_aggregate() {
        let mut builder = AggregateBuilder::new(1000, 10);
        builder
            .push("a", Some(&ExplicitHashKey::new(1)), b"1")
            .unwrap();
        let first = builder.finish().unwrap();
        assert_eq!(
            (builder.encoded_len(), builder.kinesis_size(), builder.len()),
            (20, 20, 0)
        );
        builder.push("b", None, b"2").unwrap();
        let second = builder.finish().unwrap();
        assert_eq!(first.explicit_hash_key, Some(1));
        assert_eq!(
            (second.partition_key.as_str(), second.explicit_hash_key),
            ("b", None)
        );
        assert_eq!(
            decode(&second.data).unwrap(),
            [UserRecord::new("b", b"2".to_vec())]
        );
    }
}
