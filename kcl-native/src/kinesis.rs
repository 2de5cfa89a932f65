//! The calls a consumer makes to read Kinesis, with typed answers.
//!
//! [`KinesisReader`] is what the engine needs from Kinesis to read shards: `ListShards` (one
//! page at a time, with a [`ShardFilter`]), `GetShardIterator` (from an [`IteratorStart`]) and
//! `GetRecords`. The AWS SDK client implements it ([`SdkKinesis`](crate::sdk::SdkKinesis),
//! feature `aws`), and so does [`MemoryKinesis`](crate::testing::MemoryKinesis). Every failure
//! is one of the five [`ReadError`] kinds, decided where the answer is read, because what the
//! fetcher does next depends only on that: wait and ask again with the same iterator
//! (throttled, transient), get a new iterator (expired), end the shard (not found), or stop.
//!
//! ```
//! use kcl_native::kinesis::{IteratorStart, ReadError};
//! use kcl_protocol::SequenceNumber;
//! let start = IteratorStart::AfterSequenceNumber(SequenceNumber::new("49590338271490256608559692538361571095921575989136588898"));
//! assert_eq!(start.iterator_type(), "AFTER_SEQUENCE_NUMBER");
//! assert!(ReadError::Throttled { code: "ProvisionedThroughputExceededException".into(), message: String::new() }.is_retryable());
//! ```

use std::future::Future;

use bytes::Bytes;
use kcl_kpl::HashKeyRange;
use kcl_producer::api::StreamRef;
use kcl_protocol::SequenceNumber;

/// Which shards `ListShards` returns (its `ShardFilter`): the KCL lists with
/// [`AtTrimHorizon`](ShardFilter::AtTrimHorizon), [`AtLatest`](ShardFilter::AtLatest) or
/// [`AtTimestamp`](ShardFilter::AtTimestamp), following its initial position in the stream.
///
/// ```
/// use kcl_native::kinesis::ShardFilter;
/// assert_eq!(ShardFilter::AtTimestamp(1_700_000_000_000).filter_type(), "AT_TIMESTAMP");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ShardFilter {
    /// The shards open at the trim horizon (the oldest data still in the stream).
    AtTrimHorizon,
    /// The shards open now.
    AtLatest,
    /// The shards open at this time (epoch milliseconds).
    AtTimestamp(i64),
}

impl ShardFilter {
    /// The filter's `Type` on the wire.
    pub fn filter_type(&self) -> &'static str {
        match self {
            ShardFilter::AtTrimHorizon => "AT_TRIM_HORIZON",
            ShardFilter::AtLatest => "AT_LATEST",
            ShardFilter::AtTimestamp(_) => "AT_TIMESTAMP",
        }
    }
}

/// One `ListShards` request: the first page names the stream (and the filter), every later page
/// only the `NextToken` of the page before (Kinesis refuses a `NextToken` sent together with
/// `StreamName`).
///
/// ```
/// use kcl_native::kinesis::{ListShardsPage, ShardFilter};
/// use kcl_producer::api::StreamRef;
/// let first = ListShardsPage::First { stream: StreamRef::name("orders"), filter: Some(ShardFilter::AtLatest) };
/// let next = ListShardsPage::Next { token: "AAAA".into() };
/// assert_ne!(first, next);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListShardsPage {
    /// The first page.
    First {
        /// The stream to list.
        stream: StreamRef,
        /// Which shards to list (`None`: every shard still holding data, open or closed).
        filter: Option<ShardFilter>,
    },
    /// A later page.
    Next {
        /// The `NextToken` of the page before.
        token: String,
    },
}

/// One shard, as `ListShards` describes it.
///
/// ```
/// use kcl_native::kinesis::ShardDescription;
/// let shard = ShardDescription {
///     shard_id: "shardId-000000000002".into(),
///     parent_shard_id: Some("shardId-000000000000".into()),
///     adjacent_parent_shard_id: None,
///     hash_range: kcl_kpl::HashKeyRange::ALL,
///     ending_sequence_number: None,
/// };
/// assert!(shard.is_open());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardDescription {
    /// The shard's id.
    pub shard_id: String,
    /// The shard it was split from, or the first of the two it was merged from.
    pub parent_shard_id: Option<String>,
    /// The second parent of a merged shard.
    pub adjacent_parent_shard_id: Option<String>,
    /// The hash keys the shard takes (the range de-aggregated records are checked against).
    pub hash_range: HashKeyRange,
    /// The last sequence number of a closed shard (`None` while the shard is open).
    pub ending_sequence_number: Option<SequenceNumber>,
}

impl ShardDescription {
    /// Whether the shard still takes writes.
    pub fn is_open(&self) -> bool {
        self.ending_sequence_number.is_none()
    }

    /// The shard's parents (none, one, or two for a merge).
    ///
    /// ```
    /// let shard = kcl_native::kinesis::ShardDescription {
    ///     shard_id: "shardId-000000000003".into(),
    ///     parent_shard_id: Some("shardId-000000000001".into()),
    ///     adjacent_parent_shard_id: Some("shardId-000000000002".into()),
    ///     hash_range: kcl_kpl::HashKeyRange::ALL,
    ///     ending_sequence_number: None,
    /// };
    /// assert_eq!(shard.parents().count(), 2);
    /// ```
    pub fn parents(&self) -> impl Iterator<Item = &str> {
        self.parent_shard_id
            .iter()
            .chain(&self.adjacent_parent_shard_id)
            .map(String::as_str)
    }
}

/// One page of `ListShards`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardsPage {
    /// The shards of this page.
    pub shards: Vec<ShardDescription>,
    /// The token of the next page (`None` on the last page).
    pub next_token: Option<String>,
}

/// Where a shard iterator starts (`ShardIteratorType` and its argument).
///
/// ```
/// use kcl_native::kinesis::IteratorStart;
/// assert_eq!(IteratorStart::TrimHorizon.iterator_type(), "TRIM_HORIZON");
/// assert_eq!(IteratorStart::AtTimestamp(0).iterator_type(), "AT_TIMESTAMP");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IteratorStart {
    /// The oldest record still in the shard.
    TrimHorizon,
    /// Just after the newest record (only records written later).
    Latest,
    /// The first record that arrived at or after this time (epoch milliseconds).
    AtTimestamp(i64),
    /// The record with this sequence number.
    AtSequenceNumber(SequenceNumber),
    /// The record after the one with this sequence number.
    AfterSequenceNumber(SequenceNumber),
}

impl IteratorStart {
    /// The `ShardIteratorType` on the wire.
    pub fn iterator_type(&self) -> &'static str {
        match self {
            IteratorStart::TrimHorizon => "TRIM_HORIZON",
            IteratorStart::Latest => "LATEST",
            IteratorStart::AtTimestamp(_) => "AT_TIMESTAMP",
            IteratorStart::AtSequenceNumber(_) => "AT_SEQUENCE_NUMBER",
            IteratorStart::AfterSequenceNumber(_) => "AFTER_SEQUENCE_NUMBER",
        }
    }
}

/// A shard iterator: an opaque token that `GetRecords` reads from (Kinesis lets it expire five
/// minutes after it was issued).
///
/// ```
/// let iterator = kcl_native::kinesis::ShardIterator::new("AAAAAAAAAAF...");
/// assert_eq!(iterator.as_str(), "AAAAAAAAAAF...");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ShardIterator(String);

impl ShardIterator {
    /// Wraps the token Kinesis answered.
    pub fn new(token: impl Into<String>) -> Self {
        ShardIterator(token.into())
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ShardIterator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Real iterators are ~200 characters of base64: the tail tells them apart in logs.
        let tail = self.0.len().saturating_sub(12);
        let tail = (tail..=self.0.len())
            .find(|&i| self.0.is_char_boundary(i))
            .unwrap_or(self.0.len());
        write!(f, "ShardIterator(…{})", &self.0[tail..])
    }
}

/// One Kinesis record as `GetRecords` answers it (before KPL de-aggregation).
///
/// `GetRecords` does not return the explicit hash key a record was put with; only the user
/// records inside a KPL aggregate carry one (see [`kcl_kpl::Delivered`]).
///
/// ```
/// use kcl_native::kinesis::KinesisRecord;
/// use kcl_protocol::SequenceNumber;
/// let record = KinesisRecord::new("pk", "payload", SequenceNumber::synthetic(1));
/// assert_eq!((&record.data[..], record.arrival_millis), (&b"payload"[..], None));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KinesisRecord {
    /// The partition key.
    pub partition_key: String,
    /// The payload (a KPL aggregate is still packed).
    pub data: Bytes,
    /// The sequence number.
    pub sequence_number: SequenceNumber,
    /// `ApproximateArrivalTimestamp`, in epoch milliseconds.
    pub arrival_millis: Option<i64>,
}

impl KinesisRecord {
    /// A record with no arrival time.
    pub fn new(
        partition_key: impl Into<String>,
        data: impl Into<Bytes>,
        sequence_number: SequenceNumber,
    ) -> Self {
        KinesisRecord {
            partition_key: partition_key.into(),
            data: data.into(),
            sequence_number,
            arrival_millis: None,
        }
    }
}

/// A shard that took over (part of) a closed shard's hash keys, as `GetRecords` names it at
/// the end of the shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildShard {
    /// The child's id.
    pub shard_id: String,
    /// Its parents (the closed shard, and for a merge the other one).
    pub parent_shards: Vec<String>,
    /// The hash keys it takes.
    pub hash_range: HashKeyRange,
}

/// What one `GetRecords` call answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordsPage {
    /// The records, in sequence order (possibly none, even before the end of the shard).
    pub records: Vec<KinesisRecord>,
    /// The iterator to read on from; `None` once a closed shard has been read to its end.
    pub next_iterator: Option<ShardIterator>,
    /// How far behind the newest record of the shard this answer is (`MillisBehindLatest`).
    pub millis_behind_latest: Option<u64>,
    /// At the end of a closed shard, the shards that took over its hash keys.
    pub child_shards: Vec<ChildShard>,
}

/// Why a read failed, by what the reader should do next.
///
/// ```
/// use kcl_native::kinesis::ReadError;
/// let fatal = ReadError::Fatal { code: "AccessDeniedException".into(), message: "no".into() };
/// assert!(!fatal.is_retryable());
/// assert_eq!(fatal.to_string(), "AccessDeniedException: no");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Over a limit (`ProvisionedThroughputExceededException`, KMS throttling, a control-plane
    /// rate limit): ask again with the same arguments after a pause.
    #[error("{code}: {message} (throttled)")]
    Throttled {
        /// The error code.
        code: String,
        /// The error message.
        message: String,
    },
    /// The shard iterator expired (`ExpiredIteratorException`; for `ListShards`, an expired
    /// `NextToken`): get a new one.
    #[error("expired: {message}")]
    ExpiredIterator {
        /// The error message.
        message: String,
    },
    /// The stream or shard does not exist (`ResourceNotFoundException`); for a shard being
    /// read, the KCL takes this as the end of the shard, with no children.
    #[error("not found: {message}")]
    ResourceNotFound {
        /// The error message.
        message: String,
    },
    /// A failure that may pass: a 5xx answer, a timeout, a lost connection.
    #[error("transient: {cause}")]
    Transient {
        /// What happened.
        cause: String,
    },
    /// A refusal that asking again will not change (invalid argument, access denied, a KMS key
    /// not usable, a request that could not be built).
    #[error("{code}: {message}")]
    Fatal {
        /// The error code.
        code: String,
        /// The error message.
        message: String,
    },
}

impl ReadError {
    /// Whether the same call may succeed later ([`Throttled`](ReadError::Throttled) and
    /// [`Transient`](ReadError::Transient)).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ReadError::Throttled { .. } | ReadError::Transient { .. }
        )
    }
}

/// The calls a consumer makes to read a stream.
///
/// Implementations classify every failure into one [`ReadError`] and do not retry throttled
/// `GetRecords` calls themselves: the fetcher paces and retries them.
pub trait KinesisReader: Send + Sync + 'static {
    /// One page of `ListShards`.
    fn list_shards_page(
        &self,
        page: &ListShardsPage,
    ) -> impl Future<Output = Result<ShardsPage, ReadError>> + Send;

    /// `GetShardIterator` for `shard_id` of `stream`, starting at `start`.
    fn get_shard_iterator(
        &self,
        stream: &StreamRef,
        shard_id: &str,
        start: &IteratorStart,
    ) -> impl Future<Output = Result<ShardIterator, ReadError>> + Send;

    /// `GetRecords`: at most `limit` records (1 to 10,000) from `iterator`.
    fn get_records(
        &self,
        iterator: &ShardIterator,
        limit: u32,
    ) -> impl Future<Output = Result<RecordsPage, ReadError>> + Send;

    /// `ListShards` to the last page: the stream's shards that pass `filter`. A `NextToken`
    /// that expires on the way starts the listing over (at most three times).
    fn list_shards(
        &self,
        stream: &StreamRef,
        filter: Option<ShardFilter>,
    ) -> impl Future<Output = Result<Vec<ShardDescription>, ReadError>> + Send {
        async move {
            let first = ListShardsPage::First {
                stream: stream.clone(),
                filter,
            };
            let mut restarts = 0;
            let mut shards = Vec::new();
            let mut page = first.clone();
            loop {
                match self.list_shards_page(&page).await {
                    Ok(answer) => {
                        shards.extend(answer.shards);
                        match answer.next_token {
                            Some(token) if !token.is_empty() => {
                                page = ListShardsPage::Next { token };
                            }
                            _ => return Ok(shards),
                        }
                    }
                    Err(ReadError::ExpiredIterator { .. }) if restarts < 3 => {
                        restarts += 1;
                        shards.clear();
                        page = first.clone();
                    }
                    Err(error) => return Err(error),
                }
            }
        }
    }
}
