//! [`ShardFetcher`]: polls one shard with `GetRecords` and hands out what the Java KCL would
//! deliver to the record processor, batch by batch.
//!
//! What it does, each as the Java KCL 3.1.3 does it (`retrieval/polling/KinesisDataFetcher.java`,
//! `PrefetchRecordsPublisher.java`, `lifecycle/ProcessTask.java`):
//!
//! - **Start**: from the lease's checkpoint, see [`start_of`]: a sentinel starts at its iterator,
//!   a sequence number at `AT_SEQUENCE_NUMBER`, and every record at or before the checkpoint is
//!   dropped after de-aggregation (resuming inside a KPL aggregate).
//! - **De-aggregation**: [`kcl_kpl::kcl_batch_view`] against the shard's hash range: a corrupt
//!   aggregate passes through as one record, an aggregate with a user record outside the range
//!   is dropped whole, and a batch the KCL would skip whole is delivered empty (with
//!   [`FetchedBatch::skipped`] saying why).
//! - **Pace**: at least `idle_time_between_reads` between the end of one successful `GetRecords`
//!   and the next call (the KCL's `idleTimeBetweenReadsInMillis`, applied before every call, not
//!   only after empty ones), at most `max_records` per call.
//! - **Throttling and transient failures**: the same iterator again, after a pause of at least
//!   `idle_time_between_reads` that grows with each failure in a row ([`Backoff`]).
//! - **Refusals** (`AccessDeniedException`, a KMS key not usable, any other error asking again
//!   should not cure): logged and tried again with the same backoff, for as long as the lease
//!   is held, as the KCL's `PrefetchRecordsPublisher` logs an `SdkException` and polls on; a
//!   shard is never given up for a read error. The log stays bounded: an ERROR for the first
//!   refusal in a row, then at most one a minute (with the count), and an INFO when reads
//!   succeed again.
//! - **Expired iterator** (or `InvalidArgumentException`, as the KCL): a new iterator
//!   `AFTER_SEQUENCE_NUMBER` of the last Kinesis record received; before any record, the first
//!   iterator again. (The KCL asks `AFTER_SEQUENCE_NUMBER` of the checkpoint then, which would
//!   skip the rest of an aggregate it resumed inside.)
//! - **Shard end**: no next iterator → [`Fetched::ShardEnd`] with the child shards, after the
//!   records of that last answer; `ResourceNotFoundException` → shard end with no children.
//!
//! ```
//! use kcl_native::{FetcherConfig, Fetched, ShardFetcher};
//! use kcl_native::testing::MemoryKinesis;
//! use kcl_producer::api::{KinesisApi, Record, StreamRef};
//! use kcl_protocol::ExtendedSequenceNumber;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! let kinesis = MemoryKinesis::new("orders", 1);
//! let stream = StreamRef::name("orders");
//! kinesis.fake().put_records(&stream, &[Record::new("k", "a"), Record::new("k", "b")]).await.unwrap();
//! let shard = kinesis.fake().shards()[0].clone();
//! let mut fetcher = ShardFetcher::new(
//!     kinesis.clone(), stream, &shard.shard_id,
//!     kcl_kpl::HashKeyRange::new(shard.starting_hash_key, shard.ending_hash_key),
//!     &ExtendedSequenceNumber::trim_horizon(), FetcherConfig::default(),
//! ).unwrap();
//! let Fetched::Records(batch) = fetcher.next().await.unwrap() else { panic!() };
//! assert_eq!(batch.records.len(), 2);
//! assert_eq!(batch.records[1].data(), b"b");
//! # });
//! ```

use std::time::Duration;

use kcl_core::Record;
use kcl_core::engine::Event;
use kcl_kpl::{BatchSkipped, HashKeyRange, kcl_batch_view};
use kcl_producer::api::StreamRef;
use kcl_protocol::{ExtendedSequenceNumber, Position, SequenceNumber};
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::kinesis::{
    ChildShard, IteratorStart, KinesisReader, ReadError, RecordsPage, ShardIterator,
};
use crate::start::{Checkpointed, Start, StartError, start_of};

/// How a [`ShardFetcher`] reads (the KCL's `PollingConfig` defaults).
///
/// ```
/// let config = kcl_native::FetcherConfig::default();
/// assert_eq!(config.max_records, 10_000);
/// assert_eq!(config.idle_time_between_reads, std::time::Duration::from_millis(1500));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetcherConfig {
    /// At most this many Kinesis records per `GetRecords` call (`maxRecords`, 1 to 10,000).
    pub max_records: u32,
    /// The least time between the end of a successful `GetRecords` call and the next call
    /// (`idleTimeBetweenReadsInMillis`).
    pub idle_time_between_reads: Duration,
    /// The pauses after throttled or failed calls (never shorter than the idle time).
    pub backoff: Backoff,
    /// The initial timestamp (epoch milliseconds) an `AT_TIMESTAMP` checkpoint starts at
    /// (`initialPositionInStreamExtended`; the lease does not store it).
    pub initial_timestamp_millis: Option<i64>,
}

impl Default for FetcherConfig {
    fn default() -> Self {
        FetcherConfig {
            max_records: 10_000,
            idle_time_between_reads: Duration::from_millis(1500),
            backoff: Backoff::default(),
            initial_timestamp_millis: None,
        }
    }
}

/// What one [`ShardFetcher::next`] call got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// The records of one `GetRecords` answer, as the record processor gets them (possibly
    /// none: an empty answer, or every record filtered or dropped).
    Records(FetchedBatch),
    /// The shard was read to its end (every later call answers the same).
    ShardEnd {
        /// The shards that took over its hash keys (none when the shard was not found, or
        /// when the checkpoint was `SHARD_END` already).
        children: Vec<ChildShard>,
    },
}

/// The records of one `GetRecords` answer, de-aggregated and filtered.
///
/// ```
/// use kcl_core::engine::Event;
/// let batch = kcl_native::FetchedBatch { records: vec![], millis_behind_latest: Some(0), kinesis_records: 0, skipped: None };
/// assert!(matches!(batch.into_event(), Event::Records { millis_behind_latest: Some(0), .. }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchedBatch {
    /// The records for the record processor, in shard order, each with its sub-sequence number
    /// and arrival time.
    pub records: Vec<Record>,
    /// `MillisBehindLatest` of the answer.
    pub millis_behind_latest: Option<u64>,
    /// How many Kinesis records the answer held (before de-aggregation and filtering).
    pub kinesis_records: usize,
    /// Set when the KCL would have skipped the whole batch (see [`kcl_kpl::Outcome::BatchSkipped`]):
    /// `records` is then empty.
    pub skipped: Option<BatchSkipped>,
}

impl FetchedBatch {
    /// The batch as the engine's [`Event::Records`].
    pub fn into_event(self) -> Event {
        Event::Records {
            records: self.records,
            millis_behind_latest: self.millis_behind_latest,
        }
    }
}

/// Why a fetcher stopped (no read error stops one today: every one is tried again).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// Kinesis refused a call for good (access denied, a KMS key not usable, ...).
    #[error("reading the shard failed: {0}")]
    Read(#[from] ReadError),
}

/// Why a fetcher could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The checkpoint gives no place to start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// `max_records` is not between 1 and 10,000.
    #[error("max_records is {0}: GetRecords takes 1 to 10000")]
    MaxRecords(u32),
}

/// Counts of what a fetcher asked and met.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FetcherStats {
    /// `GetRecords` calls made.
    pub get_records_calls: u64,
    /// `GetShardIterator` calls that answered an iterator.
    pub iterators: u64,
    /// Throttled calls.
    pub throttled: u64,
    /// Calls that failed for a while (5xx, timeouts, lost connections).
    pub transient: u64,
    /// Iterators found expired (or refused as invalid) and replaced.
    pub expired: u64,
    /// Kinesis records received.
    pub kinesis_records: u64,
    /// Records handed out.
    pub records: u64,
}

/// Reads one shard from a checkpoint to its end: call [`next`](ShardFetcher::next) for each
/// batch.
///
/// ```
/// use kcl_native::{Fetched, FetcherConfig, ShardFetcher};
/// use kcl_native::testing::MemoryKinesis;
/// use kcl_producer::api::StreamRef;
/// use kcl_protocol::ExtendedSequenceNumber;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let kinesis = MemoryKinesis::new("orders", 1);
/// // A lease checkpointed at SHARD_END has nothing left to read: no call is made.
/// let mut fetcher = ShardFetcher::new(
///     kinesis.clone(), StreamRef::name("orders"), "shardId-000000000000",
///     kcl_kpl::HashKeyRange::ALL, &ExtendedSequenceNumber::shard_end(), FetcherConfig::default(),
/// ).unwrap();
/// assert_eq!(fetcher.next().await.unwrap(), Fetched::ShardEnd { children: vec![] });
/// assert!(kinesis.iterator_requests().is_empty());
/// # });
/// ```
pub struct ShardFetcher<K> {
    reader: K,
    stream: StreamRef,
    shard_id: String,
    hash_range: HashKeyRange,
    config: FetcherConfig,
    /// The first iterator (and where a restart goes before any record was received).
    first: IteratorStart,
    /// The checkpoint the records are compared with.
    after: Option<Checkpointed>,
    iterator: Option<ShardIterator>,
    /// The sequence number of the last Kinesis record received.
    last_sequence: Option<SequenceNumber>,
    /// When the last successful `GetRecords` answered.
    last_read: Option<Instant>,
    /// When a refusal was last logged at ERROR, and how many came since.
    refusals: Refusals,
    /// Failed calls in a row.
    failures: u32,
    /// Set once the shard was read to its end.
    ended: Option<Vec<ChildShard>>,
    random: fastrand::Rng,
    stats: FetcherStats,
}

impl<K: KinesisReader> ShardFetcher<K> {
    /// A fetcher for `shard_id` of `stream` (whose hash keys are `hash_range`), starting after
    /// `checkpoint`, the lease's checkpoint. Nothing is called before the first `next`.
    pub fn new(
        reader: K,
        stream: StreamRef,
        shard_id: &str,
        hash_range: HashKeyRange,
        checkpoint: &ExtendedSequenceNumber,
        config: FetcherConfig,
    ) -> Result<Self, ConfigError> {
        if !(1..=10_000).contains(&config.max_records) {
            return Err(ConfigError::MaxRecords(config.max_records));
        }
        let (first, after, ended) = match start_of(checkpoint, config.initial_timestamp_millis)? {
            Start::Read { iterator, after } => (iterator, after, None),
            Start::ShardEnded => (IteratorStart::TrimHorizon, None, Some(Vec::new())),
        };
        Ok(ShardFetcher {
            reader,
            stream,
            shard_id: shard_id.to_owned(),
            hash_range,
            config,
            first,
            after,
            iterator: None,
            last_sequence: None,
            last_read: None,
            failures: 0,
            refusals: Refusals::default(),
            ended,
            random: fastrand::Rng::new(),
            stats: FetcherStats::default(),
        })
    }

    /// The shard read.
    pub fn shard_id(&self) -> &str {
        &self.shard_id
    }

    /// What the fetcher asked and met so far.
    pub fn stats(&self) -> FetcherStats {
        self.stats
    }

    /// The sequence number of the last Kinesis record received (where a new iterator would
    /// start after).
    pub fn last_sequence_number(&self) -> Option<&SequenceNumber> {
        self.last_sequence.as_ref()
    }

    /// The next batch, or the end of the shard. Waits as long as the pacing, throttling and
    /// failures need. Every read error is tried again (refusals too, see the module
    /// documentation), so this does not return `Err` today; [`FetchError`] stays for a
    /// caller's match.
    pub async fn next(&mut self) -> Result<Fetched, FetchError> {
        loop {
            if let Some(children) = &self.ended {
                return Ok(Fetched::ShardEnd {
                    children: children.clone(),
                });
            }
            let iterator = match self.iterator.clone() {
                Some(iterator) => iterator,
                None => {
                    self.renew_iterator().await?;
                    continue;
                }
            };
            if let Some(last) = self.last_read {
                tokio::time::sleep_until(last + self.config.idle_time_between_reads).await;
            }
            self.stats.get_records_calls += 1;
            match self
                .reader
                .get_records(&iterator, self.config.max_records)
                .await
            {
                Ok(page) => {
                    self.failures = 0;
                    self.refusals.recovered(&self.shard_id);
                    self.last_read = Some(Instant::now());
                    if let Some(fetched) = self.take(page) {
                        return Ok(fetched);
                    }
                }
                Err(error) => self.on_read_error(error).await?,
            }
        }
    }

    /// Gets a new iterator: after the last record received, else the first one.
    async fn renew_iterator(&mut self) -> Result<(), FetchError> {
        let start = match &self.last_sequence {
            Some(sequence) => IteratorStart::AfterSequenceNumber(sequence.clone()),
            None => self.first.clone(),
        };
        loop {
            match self
                .reader
                .get_shard_iterator(&self.stream, &self.shard_id, &start)
                .await
            {
                Ok(iterator) => {
                    self.stats.iterators += 1;
                    self.iterator = Some(iterator);
                    return Ok(());
                }
                Err(ReadError::ResourceNotFound { message }) => {
                    tracing::info!(shard = %self.shard_id, %message, "shard not found: shard end");
                    self.ended = Some(Vec::new());
                    return Ok(());
                }
                Err(error) if error.is_retryable() => self.pause_after(&error).await,
                Err(error) => {
                    self.refusals
                        .refused(&self.shard_id, "GetShardIterator", &error);
                    self.pause_after(&error).await;
                }
            }
        }
    }

    async fn on_read_error(&mut self, error: ReadError) -> Result<(), FetchError> {
        match error {
            ReadError::Throttled { .. } | ReadError::Transient { .. } => {
                self.pause_after(&error).await;
            }
            ReadError::ExpiredIterator { .. } => {
                self.restart(&error);
            }
            ReadError::Fatal { ref code, .. } if code == "InvalidArgumentException" => {
                self.restart(&error);
                self.pause_after(&error).await;
            }
            ReadError::ResourceNotFound { message } => {
                tracing::info!(shard = %self.shard_id, %message, "shard not found: shard end");
                self.ended = Some(Vec::new());
            }
            ReadError::Fatal { .. } => {
                self.refusals.refused(&self.shard_id, "GetRecords", &error);
                self.pause_after(&error).await;
            }
        }
        Ok(())
    }

    fn restart(&mut self, error: &ReadError) {
        self.stats.expired += 1;
        tracing::info!(
            shard = %self.shard_id,
            after = ?self.last_sequence,
            %error,
            "shard iterator refused: a new one after the last record received"
        );
        self.iterator = None;
    }

    /// Waits after a throttled or failed call: the idle time at least, longer with each
    /// failure in a row.
    async fn pause_after(&mut self, error: &ReadError) {
        match error {
            ReadError::Throttled { .. } => self.stats.throttled += 1,
            _ => self.stats.transient += 1,
        }
        self.failures = self.failures.saturating_add(1);
        let pause = self
            .config
            .backoff
            .pause(self.failures, &mut self.random)
            .max(self.config.idle_time_between_reads);
        tracing::debug!(shard = %self.shard_id, %error, ?pause, failures = self.failures, "GetRecords failed: waiting");
        tokio::time::sleep(pause).await;
    }

    /// Takes in one answer: the batch to hand out (`None` for the empty last answer of a
    /// closed shard: the shard end is handed out instead).
    fn take(&mut self, page: RecordsPage) -> Option<Fetched> {
        let RecordsPage {
            records: kinesis,
            next_iterator,
            millis_behind_latest,
            child_shards,
        } = page;
        if let Some(last) = kinesis.last() {
            self.last_sequence = Some(last.sequence_number.clone());
        }
        self.iterator = next_iterator;
        if self.iterator.is_none() {
            self.ended = Some(child_shards);
            if kinesis.is_empty() {
                return None;
            }
        }
        self.stats.kinesis_records += kinesis.len() as u64;
        let view = kcl_batch_view(
            kinesis
                .iter()
                .map(|record| (&record.data[..], record.partition_key.as_str())),
            self.hash_range,
        );
        let (records, skipped) = match view {
            Ok(delivered) => {
                let records: Vec<Record> = delivered
                    .into_iter()
                    .filter_map(|(index, user)| {
                        let source = &kinesis[index];
                        let position =
                            Position::new(source.sequence_number.clone(), user.sub_sequence_number);
                        if self
                            .after
                            .as_ref()
                            .is_some_and(|after| !after.keeps(&position))
                        {
                            return None;
                        }
                        let record = Record::new(user.data, user.partition_key, position);
                        Some(match source.arrival_millis {
                            Some(millis) => record.with_arrival_millis(millis),
                            None => record,
                        })
                    })
                    .collect();
                (records, None)
            }
            Err(skipped) => {
                tracing::warn!(shard = %self.shard_id, %skipped, "the Java KCL skips this whole batch: delivering none of it");
                (Vec::new(), Some(skipped))
            }
        };
        self.stats.records += records.len() as u64;
        Some(Fetched::Records(FetchedBatch {
            records,
            millis_behind_latest,
            kinesis_records: kinesis.len(),
            skipped,
        }))
    }
}

/// The bounded log of refused reads: an ERROR for the first refusal in a row, then at most one
/// a minute.
#[derive(Debug, Default)]
struct Refusals {
    /// Refusals in a row.
    in_a_row: u64,
    /// Refusals since the last ERROR line.
    unlogged: u64,
    /// When the last ERROR line was written.
    logged_at: Option<Instant>,
}

/// The least time between two ERROR lines about refused reads of one shard.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

impl Refusals {
    fn refused(&mut self, shard: &str, call: &str, error: &ReadError) {
        self.in_a_row += 1;
        let due = self
            .logged_at
            .is_none_or(|at| at.elapsed() >= REFUSAL_LOG_EVERY);
        if due {
            tracing::error!(
                %shard,
                call,
                %error,
                refusals_in_a_row = self.in_a_row,
                since_last_logged = self.unlogged,
                "Kinesis refused a read of the shard; trying again with backoff (the Java KCL \
                 logs and polls on likewise); check the permissions, the KMS key and the stream"
            );
            self.logged_at = Some(Instant::now());
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
            tracing::debug!(%shard, call, %error, "read refused again");
        }
    }

    fn recovered(&mut self, shard: &str) {
        if self.in_a_row > 0 {
            tracing::info!(%shard, refusals = self.in_a_row, "reads succeed again");
        }
        *self = Refusals::default();
    }
}
