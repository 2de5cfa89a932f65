//! Strict decoding: the user records of an aggregate that follows the format to the letter.

use thiserror::Error;

use crate::frame::{self, NotAggregated};
use crate::hash::{ExplicitHashKey, hash_key};

/// One user record of an aggregate.
///
/// ```
/// use kcl_kpl::{ExplicitHashKey, UserRecord};
/// let record = UserRecord::new("user-7", b"{}".to_vec());
/// assert_eq!(record.hash_key(), kcl_kpl::hash_key("user-7"));
/// let routed = UserRecord { explicit_hash_key: Some(ExplicitHashKey::new(5)), ..record };
/// assert_eq!(routed.hash_key(), 5);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserRecord {
    /// The record's partition key.
    pub partition_key: String,
    /// The record's explicit hash key, if it has one.
    pub explicit_hash_key: Option<ExplicitHashKey>,
    /// The payload.
    pub data: Vec<u8>,
    /// Tags (in the format since the start, used by neither the KPL nor the KCL).
    pub tags: Vec<Tag>,
}

impl UserRecord {
    /// A record with a partition key and data, no explicit hash key, no tags.
    ///
    /// ```
    /// let record = kcl_kpl::UserRecord::new("k", vec![1, 2]);
    /// assert_eq!((record.partition_key.as_str(), record.data.as_slice()), ("k", &[1, 2][..]));
    /// ```
    pub fn new(partition_key: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        UserRecord {
            partition_key: partition_key.into(),
            explicit_hash_key: None,
            data: data.into(),
            tags: Vec::new(),
        }
    }

    /// The hash key that places the record: its explicit hash key, else the MD5 of its
    /// partition key ([`hash_key`]); `AggregatorUtil.effectiveHashKey` in the KCL.
    ///
    /// ```
    /// let record = kcl_kpl::UserRecord::new("0", vec![]);
    /// assert_eq!(record.hash_key(), 0xcfcd208495d565ef66e7dff9f98764da);
    /// ```
    pub fn hash_key(&self) -> u128 {
        self.explicit_hash_key
            .as_ref()
            .map_or_else(|| hash_key(&self.partition_key), ExplicitHashKey::value)
    }
}

/// A user record's tag (`message Tag { required string key; optional string value; }`).
///
/// ```
/// let tag = kcl_kpl::Tag { key: "source".into(), value: Some("web".into()) };
/// assert_eq!(tag.value.as_deref(), Some("web"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tag {
    /// The key.
    pub key: String,
    /// The value, if any.
    pub value: Option<String>,
}

/// Why [`decode`] gives no records.
///
/// ```
/// use kcl_kpl::{decode, DecodeError, NotAggregated};
/// let error = decode(&[0xF3, 0x89, 0x9A, 0xC2]).unwrap_err();
/// assert_eq!(error, DecodeError::NotAggregated(NotAggregated::TooShort));
/// assert!(error.kcl_passes_it_through());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// Not an aggregate to the KCL either: it delivers the Kinesis record as it is.
    #[error(transparent)]
    NotAggregated(#[from] NotAggregated),
    /// An aggregate to the KCL, but one that breaks the format; what the KCL makes of it
    /// ([`kcl_view`](crate::kcl_view)) is not its records.
    #[error(transparent)]
    Malformed(#[from] Malformed),
}

impl DecodeError {
    /// Whether the KCL delivers this Kinesis record unchanged, as one record
    /// ([`DecodeError::NotAggregated`]).
    ///
    /// ```
    /// assert!(kcl_kpl::decode(b"").unwrap_err().kcl_passes_it_through());
    /// ```
    pub fn kcl_passes_it_through(&self) -> bool {
        matches!(self, DecodeError::NotAggregated(_))
    }
}

/// How a well-framed aggregate breaks the format.
///
/// ```
/// use kcl_kpl::Malformed;
/// let error = Malformed::PartitionKeyIndex { record: 2, index: 9 };
/// assert_eq!(error.to_string(), "record 2: partition key index 9 is past the table");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum Malformed {
    /// A record's `partition_key_index` is past the partition key table.
    #[error("record {record}: partition key index {index} is past the table")]
    PartitionKeyIndex {
        /// The record's position (0-based).
        record: usize,
        /// The index it holds.
        index: u64,
    },
    /// A record's `explicit_hash_key_index` is past the explicit hash key table.
    #[error("record {record}: explicit hash key index {index} is past the table")]
    ExplicitHashKeyIndex {
        /// The record's position (0-based).
        record: usize,
        /// The index it holds.
        index: u64,
    },
    /// An entry of the partition key table is not UTF-8.
    #[error("partition key table entry {entry} is not UTF-8")]
    PartitionKeyNotUtf8 {
        /// The entry's position (0-based).
        entry: usize,
    },
    /// An entry of the explicit hash key table is not UTF-8 or not a hash key
    /// ([`ExplicitHashKey::parse`]).
    #[error("explicit hash key table entry {entry} is not a hash key")]
    ExplicitHashKey {
        /// The entry's position (0-based).
        entry: usize,
    },
    /// A tag's key or value is not UTF-8.
    #[error("record {record}: tag {tag} is not UTF-8")]
    TagNotUtf8 {
        /// The record's position (0-based).
        record: usize,
        /// The tag's position in the record (0-based).
        tag: usize,
    },
}

/// The user records of an aggregated Kinesis record, in order, if it follows the format to the
/// letter.
///
/// Framing and protobuf follow the KCL exactly: whatever the KCL 3.1.3 does not take for an
/// aggregate is [`DecodeError::NotAggregated`] here, for the same reason. Beyond that, `decode`
/// is stricter than the KCL, which reads on where the format is broken
/// ([`DecodeError::Malformed`]): indexes must be inside their tables (the KCL truncates them to
/// a Java `int`), every string must be UTF-8 (the KCL replaces bad bytes with U+FFFD) and every
/// explicit hash key a hash key. So when `decode` returns records, the KCL delivers exactly
/// these (as long as every one belongs to the shard, see [`kcl_view`](crate::kcl_view)). An
/// aggregate may hold no record at all; the KCL then delivers nothing for it.
///
/// ```
/// use kcl_kpl::{AggregateBuilder, UserRecord, decode};
/// let mut builder = AggregateBuilder::default();
/// builder.push("a", None, b"one").unwrap();
/// builder.push("b", None, b"two").unwrap();
/// let aggregate = builder.finish().unwrap();
/// assert_eq!(
///     decode(&aggregate.data).unwrap(),
///     [UserRecord::new("a", b"one".to_vec()), UserRecord::new("b", b"two".to_vec())]
/// );
/// ```
pub fn decode(data: &[u8]) -> Result<Vec<UserRecord>, DecodeError> {
    let message = frame::read(data)?;
    let partition_keys = message
        .partition_key_table
        .iter()
        .enumerate()
        .map(|(entry, bytes)| {
            std::str::from_utf8(bytes).map_err(|_| Malformed::PartitionKeyNotUtf8 { entry })
        })
        .collect::<Result<Vec<&str>, _>>()?;
    let explicit_hash_keys = message
        .explicit_hash_key_table
        .iter()
        .enumerate()
        .map(|(entry, bytes)| {
            std::str::from_utf8(bytes)
                .ok()
                .and_then(|text| ExplicitHashKey::parse(text).ok())
                .ok_or(Malformed::ExplicitHashKey { entry })
        })
        .collect::<Result<Vec<ExplicitHashKey>, _>>()?;
    let text = |bytes: &[u8], record: usize, tag: usize| {
        String::from_utf8(bytes.to_vec()).map_err(|_| Malformed::TagNotUtf8 { record, tag })
    };
    let mut records = Vec::with_capacity(message.records.len());
    for (position, record) in message.records.iter().enumerate() {
        let partition_key = usize::try_from(record.partition_key_index)
            .ok()
            .and_then(|index| partition_keys.get(index))
            .ok_or(Malformed::PartitionKeyIndex {
                record: position,
                index: record.partition_key_index,
            })?;
        let explicit_hash_key = match record.explicit_hash_key_index {
            None => None,
            Some(index) => Some(
                usize::try_from(index)
                    .ok()
                    .and_then(|i| explicit_hash_keys.get(i))
                    .ok_or(Malformed::ExplicitHashKeyIndex {
                        record: position,
                        index,
                    })?
                    .clone(),
            ),
        };
        let tags = record
            .tags
            .iter()
            .enumerate()
            .map(|(number, tag)| {
                Ok(Tag {
                    key: text(tag.key, position, number)?,
                    value: tag
                        .value
                        .map(|value| text(value, position, number))
                        .transpose()?,
                })
            })
            .collect::<Result<_, Malformed>>()?;
        records.push(UserRecord {
            partition_key: (*partition_key).to_owned(),
            explicit_hash_key,
            data: record.data.to_vec(),
            tags,
        });
    }
    Ok(records)
}
