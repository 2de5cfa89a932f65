//! The calls a producer makes to Kinesis, with typed outcomes.
//!
//! [`KinesisApi`] is what the producer needs from Kinesis: `PutRecords`,
//! `DescribeStreamSummary` and `ListShards`. The AWS SDK client implements it, and so does
//! [`FakeKinesis`](crate::testing::FakeKinesis). Every way a call can fail is one of the four
//! [`CallError`] kinds, decided where the answer is read and nowhere else, because what the
//! producer may do next depends only on that: refused and throttled calls wrote nothing, an
//! ambiguous call may have written every entry, and a call that was never sent wrote nothing.
//!
//! ```
//! use kcl_producer::api::{CallError, EntryOutcome};
//! let throttled = EntryOutcome::Failed {
//!     code: "ProvisionedThroughputExceededException".into(),
//!     message: "Rate exceeded for shard shardId-000000000001 in stream orders".into(),
//! };
//! assert!(throttled.is_throttled());
//! assert!(!CallError::Ambiguous { cause: "timed out".into() }.wrote_nothing());
//! ```

use std::future::Future;

use bytes::Bytes;

/// The stream a call is about: its name, or its ARN (needed across accounts).
///
/// ```
/// use kcl_producer::api::StreamRef;
/// assert_eq!(StreamRef::name("orders").to_string(), "orders");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StreamRef {
    /// The stream's name, in the client's account and region.
    Name(String),
    /// The stream's ARN.
    Arn(String),
}

impl StreamRef {
    /// A stream by name.
    ///
    /// ```
    /// let stream = kcl_producer::api::StreamRef::name("orders");
    /// assert_eq!(stream, kcl_producer::api::StreamRef::Name("orders".into()));
    /// ```
    pub fn name(name: impl Into<String>) -> Self {
        StreamRef::Name(name.into())
    }

    /// The `StreamName` and `StreamARN` fields of a Kinesis request: exactly one is set.
    ///
    /// ```
    /// use kcl_producer::api::StreamRef;
    /// assert_eq!(StreamRef::name("orders").name_and_arn(), (Some("orders".into()), None));
    /// ```
    pub fn name_and_arn(&self) -> (Option<String>, Option<String>) {
        match self {
            StreamRef::Name(name) => (Some(name.clone()), None),
            StreamRef::Arn(arn) => (None, Some(arn.clone())),
        }
    }
}

impl std::fmt::Display for StreamRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamRef::Name(name) => f.write_str(name),
            StreamRef::Arn(arn) => f.write_str(arn),
        }
    }
}

/// A record to write: its partition key, an optional explicit hash key, and its data (one entry
/// of a `PutRecords` call).
///
/// ```
/// let entry = kcl_producer::api::Record::new("user-1", "payload").explicit_hash_key("0");
/// assert_eq!(entry.partition_key, "user-1");
/// assert_eq!(&entry.data[..], b"payload");
/// assert_eq!(entry.explicit_hash_key.as_deref(), Some("0"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The partition key (1 to 256 characters); its MD5 picks the shard unless an explicit hash
    /// key is given.
    pub partition_key: String,
    /// A 128-bit hash key in decimal that picks the shard instead of the partition key's hash.
    pub explicit_hash_key: Option<String>,
    /// The payload.
    pub data: Bytes,
}

impl Record {
    /// An entry routed by its partition key.
    ///
    /// ```
    /// let entry = kcl_producer::api::Record::new("k", vec![1u8, 2, 3]);
    /// assert_eq!(entry.data.len(), 3);
    /// ```
    pub fn new(partition_key: impl Into<String>, data: impl Into<Bytes>) -> Self {
        Record {
            partition_key: partition_key.into(),
            explicit_hash_key: None,
            data: data.into(),
        }
    }

    /// The same entry routed by an explicit hash key (decimal text of a 128-bit number).
    ///
    /// ```
    /// let entry = kcl_producer::api::Record::new("k", "x").explicit_hash_key("42");
    /// assert_eq!(entry.explicit_hash_key.as_deref(), Some("42"));
    /// ```
    pub fn explicit_hash_key(mut self, hash_key: impl Into<String>) -> Self {
        self.explicit_hash_key = Some(hash_key.into());
        self
    }
}

/// What became of one entry of a `PutRecords` call that Kinesis answered (the answer holds one
/// outcome per entry, in the request's order, even when the call "succeeded").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryOutcome {
    /// Stored in this shard at this sequence number.
    Stored {
        /// The shard that holds the record.
        shard_id: String,
        /// The record's sequence number.
        sequence_number: String,
    },
    /// Not stored. The codes Kinesis documents are `ProvisionedThroughputExceededException`
    /// (the shard's write limit) and `InternalFailure`; both may be retried.
    Failed {
        /// The error code.
        code: String,
        /// The error message (for throttling it names the shard).
        message: String,
    },
}

impl EntryOutcome {
    /// Whether the entry was refused because its shard's write limit was exceeded.
    ///
    /// ```
    /// use kcl_producer::api::EntryOutcome;
    /// let failure = EntryOutcome::Failed { code: "InternalFailure".into(), message: String::new() };
    /// assert!(!failure.is_throttled());
    /// ```
    pub fn is_throttled(&self) -> bool {
        matches!(self, EntryOutcome::Failed { code, .. } if code == THROTTLED)
    }
}

/// The error code of a write over a shard's limit, per entry or for a whole call.
pub const THROTTLED: &str = "ProvisionedThroughputExceededException";
/// The per-entry error code of a failure inside Kinesis.
pub const INTERNAL_FAILURE: &str = "InternalFailure";

/// Why a whole call failed, by what it means for the records in it.
///
/// ```
/// use kcl_producer::api::CallError;
/// let refused = CallError::Refused { code: "AccessDeniedException".into(), message: "no".into() };
/// assert!(refused.wrote_nothing() && !refused.is_retryable());
/// let lost = CallError::Ambiguous { cause: "connection reset after the request was sent".into() };
/// assert!(lost.is_retryable() && !lost.wrote_nothing());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Kinesis refused the call and wrote nothing; asking again will not help (invalid request,
    /// access denied, stream not found, a KMS key not usable).
    #[error("{code}: {message}")]
    Refused {
        /// The error code.
        code: String,
        /// The error message.
        message: String,
    },
    /// Kinesis refused the call for now and wrote nothing (a throttled call, KMS throttling,
    /// a control-plane rate limit): ask again after a pause.
    #[error("{code}: {message} (throttled, retried after a pause)")]
    Throttled {
        /// The error code.
        code: String,
        /// The error message.
        message: String,
    },
    /// The outcome is unknown: a 5xx answer, a timeout, or a connection lost after the request
    /// went out. Any entry may be stored: a retry may store it twice.
    #[error("outcome unknown: {cause}")]
    Ambiguous {
        /// What happened.
        cause: String,
    },
    /// The request never reached Kinesis (no connection, no credentials): nothing was written.
    #[error("not sent: {cause}")]
    NotSent {
        /// What happened.
        cause: String,
    },
}

impl CallError {
    /// The error code (for the `Ambiguous` and `NotSent` kinds, which have none from Kinesis,
    /// the kind's name).
    ///
    /// ```
    /// use kcl_producer::api::CallError;
    /// assert_eq!(CallError::Ambiguous { cause: "timeout".into() }.code(), "Ambiguous");
    /// ```
    pub fn code(&self) -> &str {
        match self {
            CallError::Refused { code, .. } | CallError::Throttled { code, .. } => code,
            CallError::Ambiguous { .. } => "Ambiguous",
            CallError::NotSent { .. } => "NotSent",
        }
    }

    /// Whether asking again may succeed.
    ///
    /// ```
    /// use kcl_producer::api::CallError;
    /// assert!(CallError::NotSent { cause: "connection refused".into() }.is_retryable());
    /// ```
    pub fn is_retryable(&self) -> bool {
        !matches!(self, CallError::Refused { .. })
    }

    /// Whether the call certainly stored none of its entries.
    ///
    /// ```
    /// use kcl_producer::api::CallError;
    /// assert!(CallError::Throttled { code: "LimitExceededException".into(), message: String::new() }.wrote_nothing());
    /// ```
    pub fn wrote_nothing(&self) -> bool {
        !matches!(self, CallError::Ambiguous { .. })
    }
}

/// How the stream spreads records over its shards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Distribution {
    /// By the partition key's hash, or the explicit hash key (the default).
    PartitionKey,
    /// `AUTO` (on-demand streams): Kinesis ignores partition keys and explicit hash keys, so an
    /// aggregate may land on a shard none of its records hashes to, and the KCL drops it.
    Auto,
    /// A strategy this library does not know.
    Other(String),
}

/// What the producer reads about a stream before it sends anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSummary {
    /// The stream's ARN.
    pub stream_arn: String,
    /// Open shards.
    pub open_shard_count: u32,
    /// The largest record (data and partition key) the stream takes, in KiB (1024 unless raised).
    pub max_record_size_kib: u32,
    /// How records are spread over shards.
    pub distribution: Distribution,
}

/// One shard, as `ListShards` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    /// The shard's id.
    pub shard_id: String,
    /// The lowest hash key the shard takes.
    pub starting_hash_key: u128,
    /// The highest hash key the shard takes.
    pub ending_hash_key: u128,
    /// Whether the shard takes writes (a split or merged shard is closed).
    pub open: bool,
}

impl Shard {
    /// Whether `hash_key` falls in the shard's range.
    ///
    /// ```
    /// let shard = kcl_producer::api::Shard {
    ///     shard_id: "shardId-000000000000".into(), starting_hash_key: 10, ending_hash_key: 20, open: true,
    /// };
    /// assert!(shard.contains(10) && shard.contains(20) && !shard.contains(21));
    /// ```
    pub fn contains(&self, hash_key: u128) -> bool {
        (self.starting_hash_key..=self.ending_hash_key).contains(&hash_key)
    }
}

/// The calls a producer makes to Kinesis.
///
/// Implementations classify every failure of a call into one [`CallError`] and report each
/// entry's outcome of a call Kinesis answered; they do not retry `PutRecords` themselves (the
/// producer retries per entry, knowing which entries failed).
pub trait KinesisApi: Send + Sync + 'static {
    /// `PutRecords`: stores `entries` (at most the stream's entry and byte limits), answering one
    /// outcome per entry in order.
    fn put_records(
        &self,
        stream: &StreamRef,
        entries: &[Record],
    ) -> impl Future<Output = Result<Vec<EntryOutcome>, CallError>> + Send;

    /// `DescribeStreamSummary`: the stream's limits and distribution.
    fn describe_stream_summary(
        &self,
        stream: &StreamRef,
    ) -> impl Future<Output = Result<StreamSummary, CallError>> + Send;

    /// `ListShards`: every shard of the stream, open and closed.
    fn list_shards(
        &self,
        stream: &StreamRef,
    ) -> impl Future<Output = Result<Vec<Shard>, CallError>> + Send;
}
