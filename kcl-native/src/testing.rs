//! [`MemoryKinesis`]: the read side of the project's fake Kinesis
//! ([`kcl_producer::testing::FakeKinesis`]), as a [`KinesisReader`].
//!
//! Records written through the fake (by a [`kcl_producer::Producer`] or by hand) are read
//! back with shard iterators that behave as Kinesis's do where a consumer can tell: each answer
//! brings a new iterator, an iterator may be used again until it expires (after a configurable
//! age, five minutes by default, on tokio's clock, and optionally after a number of uses), a
//! closed shard read to its end answers no next iterator and its children, and an unknown
//! shard is `ResourceNotFoundException`. Faults are queued per `GetRecords` call
//! ([`MemoryKinesis::inject`]). Nothing is ever trimmed: `AT_TRIM_HORIZON` lists the shards the
//! stream was created with.
//!
//! ```
//! use kcl_native::kinesis::{IteratorStart, KinesisReader, ReadError};
//! use kcl_native::testing::{MemoryKinesis, ReadFault};
//! use kcl_producer::api::{KinesisApi, Record, StreamRef};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let kinesis = MemoryKinesis::new("orders", 1);
//! let stream = StreamRef::name("orders");
//! kinesis.fake().put_records(&stream, &[Record::new("k", "hello")]).await.unwrap();
//! let shard = kinesis.list_shards(&stream, None).await.unwrap().remove(0);
//! let iterator = kinesis.get_shard_iterator(&stream, &shard.shard_id, &IteratorStart::TrimHorizon).await.unwrap();
//! kinesis.inject([ReadFault::Throttled]);
//! assert!(matches!(kinesis.get_records(&iterator, 10).await, Err(ReadError::Throttled { .. })));
//! let page = kinesis.get_records(&iterator, 10).await.unwrap();
//! assert_eq!(&page.records[0].data[..], b"hello");
//! assert!(page.next_iterator.is_some()); // the shard is open
//! # });
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kcl_kpl::HashKeyRange;
use kcl_producer::api::{CallError, KinesisApi, Shard, StreamRef};
use kcl_producer::testing::{FakeKinesis, StoredRecord};
use kcl_protocol::SequenceNumber;
use tokio::time::Instant;

use crate::kinesis::{
    ChildShard, IteratorStart, KinesisReader, KinesisRecord, ListShardsPage, ReadError,
    RecordsPage, ShardDescription, ShardFilter, ShardIterator, ShardsPage,
};

/// A fault for the next `GetRecords` call to answer instead of reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadFault {
    /// `ProvisionedThroughputExceededException`.
    Throttled,
    /// `ExpiredIteratorException` (the iterator stays expired).
    ExpiredIterator,
    /// A 500 answer.
    Transient,
    /// A refusal asking again does not cure (`AccessDeniedException`, a KMS key not usable):
    /// [`ReadError::Fatal`] with this error code.
    Refused(String),
}

/// When iterators expire.
///
/// ```
/// let expiry = kcl_native::testing::IteratorExpiry::default();
/// assert_eq!((expiry.age, expiry.uses), (std::time::Duration::from_secs(300), None));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IteratorExpiry {
    /// Age after which an iterator is refused (Kinesis: five minutes), on tokio's clock.
    pub age: Duration,
    /// Uses after which an iterator is refused (`None`: any number).
    pub uses: Option<u32>,
}

impl Default for IteratorExpiry {
    fn default() -> Self {
        IteratorExpiry {
            age: Duration::from_secs(300),
            uses: None,
        }
    }
}

/// Counts of what the reader was asked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// `ListShards` pages answered.
    pub list_shards_pages: u64,
    /// `GetRecords` calls (also those that failed).
    pub get_records_calls: u64,
    /// `GetRecords` calls answered with an expired iterator.
    pub expired: u64,
    /// `GetRecords` calls throttled.
    pub throttled: u64,
}

/// The read side of a [`FakeKinesis`]. Clones share the stream and the iterators.
#[derive(Clone)]
pub struct MemoryKinesis {
    fake: FakeKinesis,
    state: Arc<Mutex<ReadState>>,
}

struct Cursor {
    shard_id: String,
    /// The index of the next record in the shard.
    next: usize,
    issued: Instant,
    uses: u32,
    /// Set once the iterator was answered as expired: it stays so.
    expired: bool,
}

struct ReadState {
    cursors: HashMap<String, Cursor>,
    listings: HashMap<String, Vec<ShardDescription>>,
    issued: u64,
    expiry: IteratorExpiry,
    faults: VecDeque<ReadFault>,
    page_size: usize,
    iterator_requests: Vec<(String, IteratorStart)>,
    stats: ReadStats,
}

impl MemoryKinesis {
    /// A new fake stream `name` with `shards` open shards, read through this reader.
    pub fn new(name: &str, shards: u32) -> Self {
        Self::over(FakeKinesis::new(name, shards))
    }

    /// Reads `fake` (and what is written to it later).
    pub fn over(fake: FakeKinesis) -> Self {
        MemoryKinesis {
            fake,
            state: Arc::new(Mutex::new(ReadState {
                cursors: HashMap::new(),
                listings: HashMap::new(),
                issued: 0,
                expiry: IteratorExpiry::default(),
                faults: VecDeque::new(),
                page_size: 100,
                iterator_requests: Vec::new(),
                stats: ReadStats::default(),
            })),
        }
    }

    /// The fake Kinesis read (to write records, split shards).
    pub fn fake(&self) -> &FakeKinesis {
        &self.fake
    }

    /// Iterators expire as `expiry` says from now on.
    pub fn with_expiry(self, expiry: IteratorExpiry) -> Self {
        self.lock().expiry = expiry;
        self
    }

    /// `ListShards` answers at most `shards` shards per page (100 unless set).
    pub fn with_page_size(self, shards: usize) -> Self {
        self.lock().page_size = shards.max(1);
        self
    }

    /// Queues `faults`: each of the next `GetRecords` calls answers the next fault instead of
    /// reading.
    pub fn inject(&self, faults: impl IntoIterator<Item = ReadFault>) {
        self.lock().faults.extend(faults);
    }

    /// Every `GetShardIterator` request answered or refused, in order: (shard, start).
    pub fn iterator_requests(&self) -> Vec<(String, IteratorStart)> {
        self.lock().iterator_requests.clone()
    }

    /// What the reader was asked so far.
    pub fn stats(&self) -> ReadStats {
        self.lock().stats
    }

    fn lock(&self) -> MutexGuard<'_, ReadState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn check_stream(&self, stream: &StreamRef) -> Result<Vec<Shard>, ReadError> {
        self.fake
            .list_shards(stream)
            .await
            .map_err(|error| match error {
                CallError::Refused { code, message } if code == "ResourceNotFoundException" => {
                    ReadError::ResourceNotFound { message }
                }
                other => ReadError::Fatal {
                    code: other.code().to_owned(),
                    message: other.to_string(),
                },
            })
    }

    fn describe(&self, shard: &Shard) -> ShardDescription {
        let lineage = self.fake.lineage(&shard.shard_id);
        let mut parents = lineage.map(|l| l.parents).unwrap_or_default().into_iter();
        let ending_sequence_number = (!shard.open).then(|| {
            self.fake
                .records(&shard.shard_id)
                .last()
                .map_or_else(|| SequenceNumber::synthetic(0), sequence_of)
        });
        ShardDescription {
            shard_id: shard.shard_id.clone(),
            parent_shard_id: parents.next(),
            adjacent_parent_shard_id: parents.next(),
            hash_range: HashKeyRange::new(shard.starting_hash_key, shard.ending_hash_key),
            ending_sequence_number,
        }
    }

    /// Whether `shard` passes `filter` (nothing is trimmed: the trim horizon is the stream's
    /// creation).
    fn passes(&self, shard: &Shard, filter: Option<ShardFilter>) -> bool {
        let Some(lineage) = self.fake.lineage(&shard.shard_id) else {
            return false;
        };
        let original = lineage.parents.is_empty();
        match filter {
            None => true,
            Some(ShardFilter::AtLatest) => shard.open,
            Some(ShardFilter::AtTrimHorizon) => original,
            Some(ShardFilter::AtTimestamp(at)) => {
                (original || lineage.opened_millis <= at)
                    && lineage.closed_millis.is_none_or(|closed| closed > at)
            }
        }
    }

    fn children_of(&self, shard_id: &str) -> Vec<ChildShard> {
        self.fake
            .shards()
            .iter()
            .filter_map(|shard| {
                let lineage = self.fake.lineage(&shard.shard_id)?;
                lineage
                    .parents
                    .iter()
                    .any(|parent| parent == shard_id)
                    .then(|| ChildShard {
                        shard_id: shard.shard_id.clone(),
                        parent_shards: lineage.parents.clone(),
                        hash_range: HashKeyRange::new(
                            shard.starting_hash_key,
                            shard.ending_hash_key,
                        ),
                    })
            })
            .collect()
    }
}

fn sequence_of(record: &StoredRecord) -> SequenceNumber {
    SequenceNumber::new(record.sequence_number.clone())
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

impl ReadState {
    fn issue(&mut self, shard_id: &str, next: usize) -> ShardIterator {
        self.issued += 1;
        let token = format!("iterator-{}-{shard_id}", self.issued);
        self.cursors.insert(
            token.clone(),
            Cursor {
                shard_id: shard_id.to_owned(),
                next,
                issued: Instant::now(),
                uses: 0,
                expired: false,
            },
        );
        ShardIterator::new(token)
    }

    fn page(&mut self, mut shards: Vec<ShardDescription>) -> ShardsPage {
        self.stats.list_shards_pages += 1;
        if shards.len() <= self.page_size {
            return ShardsPage {
                shards,
                next_token: None,
            };
        }
        let rest = shards.split_off(self.page_size);
        self.issued += 1;
        let token = format!("page-{}", self.issued);
        self.listings.insert(token.clone(), rest);
        ShardsPage {
            shards,
            next_token: Some(token),
        }
    }
}

impl KinesisReader for MemoryKinesis {
    async fn list_shards_page(&self, page: &ListShardsPage) -> Result<ShardsPage, ReadError> {
        match page {
            ListShardsPage::First { stream, filter } => {
                let shards = self.check_stream(stream).await?;
                let listed = shards
                    .iter()
                    .filter(|shard| self.passes(shard, *filter))
                    .map(|shard| self.describe(shard))
                    .collect();
                Ok(self.lock().page(listed))
            }
            ListShardsPage::Next { token } => {
                let mut state = self.lock();
                let rest = state
                    .listings
                    .remove(token)
                    .ok_or_else(|| ReadError::Fatal {
                        code: "InvalidArgumentException".to_owned(),
                        message: format!("NextToken {token} is not valid"),
                    })?;
                Ok(state.page(rest))
            }
        }
    }

    async fn get_shard_iterator(
        &self,
        stream: &StreamRef,
        shard_id: &str,
        start: &IteratorStart,
    ) -> Result<ShardIterator, ReadError> {
        self.lock()
            .iterator_requests
            .push((shard_id.to_owned(), start.clone()));
        let shards = self.check_stream(stream).await?;
        if !shards.iter().any(|shard| shard.shard_id == shard_id) {
            return Err(ReadError::ResourceNotFound {
                message: format!("Shard {shard_id} in stream {stream} does not exist"),
            });
        }
        let records = self.fake.records(shard_id);
        let first = |keep: &dyn Fn(&StoredRecord) -> bool| {
            records.iter().position(keep).unwrap_or(records.len())
        };
        let next = match start {
            IteratorStart::TrimHorizon => 0,
            IteratorStart::Latest => records.len(),
            IteratorStart::AtTimestamp(at) => first(&|r| r.arrival_millis >= *at),
            IteratorStart::AtSequenceNumber(sequence) => first(&|r| sequence_of(r) >= *sequence),
            IteratorStart::AfterSequenceNumber(sequence) => first(&|r| sequence_of(r) > *sequence),
        };
        Ok(self.lock().issue(shard_id, next))
    }

    async fn get_records(
        &self,
        iterator: &ShardIterator,
        limit: u32,
    ) -> Result<RecordsPage, ReadError> {
        let (shard_id, next) = {
            let mut state = self.lock();
            state.stats.get_records_calls += 1;
            let expiry = state.expiry;
            let fault = state.faults.pop_front();
            let Some(cursor) = state.cursors.get_mut(iterator.as_str()) else {
                return Err(ReadError::Fatal {
                    code: "InvalidArgumentException".to_owned(),
                    message: format!("Invalid ShardIterator {iterator:?}"),
                });
            };
            cursor.uses += 1;
            let too_old = cursor.issued.elapsed() > expiry.age;
            let worn = expiry.uses.is_some_and(|uses| cursor.uses > uses);
            cursor.expired |= too_old || worn || fault == Some(ReadFault::ExpiredIterator);
            let (expired, shard_id, next) = (cursor.expired, cursor.shard_id.clone(), cursor.next);
            if expired {
                state.stats.expired += 1;
                return Err(ReadError::ExpiredIterator {
                    message: format!("Iterator {iterator:?} has expired"),
                });
            }
            match fault {
                Some(ReadFault::Throttled) => {
                    state.stats.throttled += 1;
                    return Err(ReadError::Throttled {
                        code: "ProvisionedThroughputExceededException".to_owned(),
                        message: format!("Rate exceeded for shard {shard_id}"),
                    });
                }
                Some(ReadFault::Transient) => {
                    return Err(ReadError::Transient {
                        cause: "HTTP 500 InternalFailure".to_owned(),
                    });
                }
                Some(ReadFault::Refused(code)) => {
                    return Err(ReadError::Fatal {
                        message: format!("refused for shard {shard_id} (injected)"),
                        code,
                    });
                }
                _ => {}
            }
            (shard_id, next)
        };
        let stored = self.fake.records(&shard_id);
        let open = self
            .fake
            .shards()
            .iter()
            .any(|shard| shard.shard_id == shard_id && shard.open);
        let end = next.saturating_add(limit as usize).min(stored.len());
        let records: Vec<KinesisRecord> = stored[next.min(end)..end]
            .iter()
            .map(|r| KinesisRecord {
                partition_key: r.partition_key.clone(),
                data: r.data.clone(),
                sequence_number: sequence_of(r),
                arrival_millis: Some(r.arrival_millis),
            })
            .collect();
        let millis_behind_latest = if end == stored.len() {
            0
        } else {
            records
                .last()
                .and_then(|r| r.arrival_millis)
                .map_or(0, |arrival| {
                    u64::try_from(now_millis().saturating_sub(arrival)).unwrap_or(0)
                })
        };
        let at_end = !open && end == stored.len();
        let child_shards = if at_end {
            self.children_of(&shard_id)
        } else {
            Vec::new()
        };
        let next_iterator = (!at_end).then(|| self.lock().issue(&shard_id, end));
        Ok(RecordsPage {
            records,
            next_iterator,
            millis_behind_latest: Some(millis_behind_latest),
            child_shards,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcl_producer::api::Record;

    fn stream() -> StreamRef {
        StreamRef::name("s")
    }

    async fn put(kinesis: &MemoryKinesis, n: usize) {
        let entries: Vec<Record> = (0..n)
            .map(|i| Record::new(format!("key-{i}"), format!("r{i}")))
            .collect();
        kinesis
            .fake()
            .put_records(&stream(), &entries)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn listing_pages_with_a_token_and_filters_by_lineage() {
        let kinesis = MemoryKinesis::new("s", 3).with_page_size(2);
        kinesis.fake().split("shardId-000000000001");
        let ids = |shards: Vec<ShardDescription>| -> Vec<String> {
            shards.into_iter().map(|s| s.shard_id).collect()
        };
        let all = kinesis.list_shards(&stream(), None).await.unwrap();
        assert_eq!(all.len(), 5);
        assert_eq!(kinesis.stats().list_shards_pages, 3);
        let child = all
            .iter()
            .find(|s| s.shard_id == "shardId-000000000003")
            .unwrap();
        assert_eq!(
            child.parent_shard_id.as_deref(),
            Some("shardId-000000000001")
        );
        assert!(!all[1].is_open());
        let latest = kinesis
            .list_shards(&stream(), Some(ShardFilter::AtLatest))
            .await
            .unwrap();
        assert_eq!(
            ids(latest),
            [
                "shardId-000000000000",
                "shardId-000000000002",
                "shardId-000000000003",
                "shardId-000000000004"
            ]
        );
        let horizon = kinesis
            .list_shards(&stream(), Some(ShardFilter::AtTrimHorizon))
            .await
            .unwrap();
        assert_eq!(ids(horizon).len(), 3);
        let unknown = kinesis.list_shards(&StreamRef::name("other"), None).await;
        assert!(matches!(unknown, Err(ReadError::ResourceNotFound { .. })));
    }

    #[tokio::test]
    async fn iterators_start_where_asked() {
        let kinesis = MemoryKinesis::new("s", 1);
        put(&kinesis, 5).await;
        let records = kinesis.fake().records("shardId-000000000000");
        let third = SequenceNumber::new(records[2].sequence_number.clone());
        let read = |start: IteratorStart| {
            let kinesis = kinesis.clone();
            async move {
                let iterator = kinesis
                    .get_shard_iterator(&stream(), "shardId-000000000000", &start)
                    .await
                    .unwrap();
                let page = kinesis.get_records(&iterator, 100).await.unwrap();
                page.records
                    .iter()
                    .map(|r| String::from_utf8(r.data.to_vec()).unwrap())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(read(IteratorStart::TrimHorizon).await.len(), 5);
        assert!(read(IteratorStart::Latest).await.is_empty());
        assert_eq!(
            read(IteratorStart::AtSequenceNumber(third.clone())).await,
            ["r2", "r3", "r4"]
        );
        assert_eq!(
            read(IteratorStart::AfterSequenceNumber(third)).await,
            ["r3", "r4"]
        );
        assert_eq!(read(IteratorStart::AtTimestamp(0)).await.len(), 5);
        assert!(read(IteratorStart::AtTimestamp(i64::MAX)).await.is_empty());
        let missing = kinesis
            .get_shard_iterator(
                &stream(),
                "shardId-000000000009",
                &IteratorStart::TrimHorizon,
            )
            .await;
        assert!(matches!(missing, Err(ReadError::ResourceNotFound { .. })));
    }

    #[tokio::test(start_paused = true)]
    async fn iterators_expire_with_age_and_uses() {
        let kinesis = MemoryKinesis::new("s", 1).with_expiry(IteratorExpiry {
            age: Duration::from_secs(10),
            uses: Some(2),
        });
        let iterator = kinesis
            .get_shard_iterator(
                &stream(),
                "shardId-000000000000",
                &IteratorStart::TrimHorizon,
            )
            .await
            .unwrap();
        assert!(kinesis.get_records(&iterator, 1).await.is_ok());
        assert!(kinesis.get_records(&iterator, 1).await.is_ok());
        assert!(matches!(
            kinesis.get_records(&iterator, 1).await,
            Err(ReadError::ExpiredIterator { .. })
        ));
        let fresh = kinesis
            .get_shard_iterator(
                &stream(),
                "shardId-000000000000",
                &IteratorStart::TrimHorizon,
            )
            .await
            .unwrap();
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(matches!(
            kinesis.get_records(&fresh, 1).await,
            Err(ReadError::ExpiredIterator { .. })
        ));
    }

    #[tokio::test]
    async fn a_closed_shard_ends_with_its_children() {
        let kinesis = MemoryKinesis::new("s", 1);
        put(&kinesis, 3).await;
        let children = kinesis.fake().split("shardId-000000000000");
        let iterator = kinesis
            .get_shard_iterator(
                &stream(),
                "shardId-000000000000",
                &IteratorStart::TrimHorizon,
            )
            .await
            .unwrap();
        let page = kinesis.get_records(&iterator, 2).await.unwrap();
        assert_eq!(page.records.len(), 2);
        let page = kinesis
            .get_records(&page.next_iterator.unwrap(), 2)
            .await
            .unwrap();
        assert_eq!(page.records.len(), 1);
        assert!(page.next_iterator.is_none());
        let ids: Vec<&str> = page
            .child_shards
            .iter()
            .map(|c| c.shard_id.as_str())
            .collect();
        assert_eq!(ids, children.each_ref().map(String::as_str));
        assert_eq!(page.child_shards[0].parent_shards, ["shardId-000000000000"]);
    }
}
