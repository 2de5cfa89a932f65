//! Batch extractors: values taken from a whole batch once per `processRecords` (`Vec<T>` of
//! payloads, the batch itself, its records, the shard id, the lag).

use std::sync::Arc;

use super::FromRecord;
use crate::record::{Batch, PayloadError, Record};

/// A value taken from a whole batch, once per `processRecords`.
///
/// Implemented for `Vec<T>` where `T: FromRecord` (every record decoded as `T`; the first
/// failure fails the batch unless `T` is `Result<_, PayloadError>`), `&Batch`, `&[Record]`,
/// [`ShardId`] and [`MillisBehindLatest`].
///
/// ```
/// use kcl_core::{Batch, FromBatch, Json, MillisBehindLatest, Position, Record, ShardId};
/// let batch = Batch::new("shardId-7", vec![Record::new("[1,2]", "k", Position::new("1", 0))], Some(40));
/// let values: Vec<Json<Vec<u8>>> = FromBatch::from_batch(&batch).unwrap();
/// assert_eq!(values[0].0, [1, 2]);
/// assert_eq!(ShardId::from_batch(&batch).unwrap().as_str(), "shardId-7");
/// assert_eq!(MillisBehindLatest::from_batch(&batch).unwrap(), MillisBehindLatest(Some(40)));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be taken from a batch of Kinesis records",
    label = "not a batch extractor",
    note = "batch arguments are `Vec<T>` with T one of `kcl::Json<U>`, `String`, `Vec<u8>`, `kcl::Record`, `Result<T, kcl::PayloadError>`, a pair `(kcl::Record, T)`; or `&kcl::Batch`, `&[kcl::Record]`, `kcl::ShardId`, `kcl::MillisBehindLatest`"
)]
pub trait FromBatch<'a>: Sized {
    /// Extracts the value from `batch`.
    fn from_batch(batch: &'a Batch) -> Result<Self, PayloadError>;
}

impl<'a, T: FromRecord> FromBatch<'a> for Vec<T> {
    fn from_batch(batch: &'a Batch) -> Result<Self, PayloadError> {
        batch.extract()
    }
}

impl<'a> FromBatch<'a> for &'a Batch {
    fn from_batch(batch: &'a Batch) -> Result<Self, PayloadError> {
        Ok(batch)
    }
}

impl<'a> FromBatch<'a> for &'a [Record] {
    fn from_batch(batch: &'a Batch) -> Result<Self, PayloadError> {
        Ok(batch.records())
    }
}

/// The id of the shard a batch came from, as a handler argument.
///
/// ```
/// let id = kcl_core::ShardId::from("shardId-000000000003");
/// assert_eq!(id.as_str(), "shardId-000000000003");
/// assert_eq!(id.to_string(), "shardId-000000000003");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ShardId(Arc<str>);

impl ShardId {
    /// The shard id.
    ///
    /// ```
    /// assert_eq!(kcl_core::ShardId::from("s").as_str(), "s");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ShardId {
    fn from(id: &str) -> Self {
        ShardId(Arc::from(id))
    }
}

impl std::fmt::Display for ShardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'a> FromBatch<'a> for ShardId {
    fn from_batch(batch: &'a Batch) -> Result<Self, PayloadError> {
        Ok(ShardId(batch.shard_id_arc()))
    }
}

/// How far behind the tip of the stream a batch is (milliseconds), if the daemon knows.
///
/// ```
/// use kcl_core::{Batch, FromBatch, MillisBehindLatest};
/// let lag = MillisBehindLatest::from_batch(&Batch::new("s", vec![], None)).unwrap();
/// assert_eq!(lag, MillisBehindLatest(None));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MillisBehindLatest(pub Option<u64>);

impl<'a> FromBatch<'a> for MillisBehindLatest {
    fn from_batch(batch: &'a Batch) -> Result<Self, PayloadError> {
        Ok(MillisBehindLatest(batch.millis_behind_latest()))
    }
}

impl Batch {
    /// Extracts every record's payload as `T`; the first record that does not decode fails it all.
    ///
    /// Use `Result<T, PayloadError>` as `T` to get one result per record instead.
    ///
    /// ```
    /// use kcl_core::{Batch, PayloadError, Position, Record};
    /// let batch = Batch::new("s", vec![
    ///     Record::new("ok", "k", Position::new("1", 0)),
    ///     Record::new(vec![0xff], "k", Position::new("2", 0)),
    /// ], None);
    /// assert!(batch.extract::<String>().is_err());
    /// let lenient: Vec<Result<String, PayloadError>> = batch.extract().unwrap();
    /// assert_eq!(lenient[0].as_deref().unwrap(), "ok");
    /// assert!(lenient[1].is_err());
    /// ```
    pub fn extract<T: FromRecord>(&self) -> Result<Vec<T>, PayloadError> {
        self.records().iter().map(T::from_record).collect()
    }
}
