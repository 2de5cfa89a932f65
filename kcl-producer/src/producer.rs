//! The producer's handle: validation, the memory budget, and the commands to its task.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

use crate::KinesisApi;
use crate::api::{CallError, Record, StreamRef};
use crate::config::Config;
use crate::dispatch::{Command, Dispatcher, Pending, Stats};
use crate::limits::StreamLimits;
use crate::metrics::{MetricsSink, TracingSink};
use crate::outcome::{SendError, ShutdownReport, Ticket, TrySendError};
use crate::spool::{self, OpenError, Spool, SpoolConfig};

/// A batching Kinesis producer: records go out in `PutRecords` calls within the stream's
/// limits, failed entries are sent again with jittered backoff, memory is bounded, and every
/// record accepted gets one outcome through its [`Ticket`].
///
/// It runs a task on the tokio runtime it was built on.
///
/// ```
/// use kcl_producer::{Producer, Record};
/// use kcl_producer::api::StreamRef;
/// use kcl_producer::testing::{FakeKinesis, Faults};
/// use std::time::Duration;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let faults = Faults { throttled_entries: 0.2, ..Faults::default() };
/// let kinesis = FakeKinesis::new("orders", 2).with_faults(faults);
/// let producer = Producer::builder(kinesis.clone(), StreamRef::name("orders")).build().await.unwrap();
/// let mut tickets = Vec::new();
/// for n in 0..100 {
///     tickets.push(producer.send(Record::new(format!("user-{n}"), format!("event {n}"))).await.unwrap());
/// }
/// let report = producer.shutdown(Duration::from_secs(30)).await;
/// assert!(report.is_complete());
/// assert_eq!(report.delivered, 100);
/// for ticket in tickets {
///     ticket.await.unwrap(); // delivered, some after a retry
/// }
/// assert_eq!(kinesis.all_records().len(), 100);
/// # });
/// ```
pub struct Producer {
    shared: Arc<Shared>,
    recovered: u64,
}

/// What the handle and the task share.
pub(crate) struct Shared {
    pub(crate) limits: StreamLimits,
    pub(crate) capacity_bytes: usize,
    pub(crate) bytes: Arc<Semaphore>,
    pub(crate) records: Arc<Semaphore>,
    /// The next record id, and the channel: both under one lock, so ids reach the task in order.
    pub(crate) sender: Mutex<Option<(u64, mpsc::UnboundedSender<Command>)>>,
    pub(crate) stats: Arc<Stats>,
    /// The disk spool, if any.
    pub(crate) spool: Option<Arc<Spool>>,
}

/// Builds a [`Producer`].
pub struct Builder<K> {
    client: K,
    stream: StreamRef,
    config: Config,
    limits: Option<StreamLimits>,
    metrics: Arc<dyn MetricsSink>,
    spool: Option<SpoolConfig>,
}

/// Why a producer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The stream's description could not be read.
    #[error("cannot read the stream {stream}: {error}")]
    Describe {
        /// The stream.
        stream: StreamRef,
        /// The call's failure.
        error: CallError,
    },
    /// The stream's shards could not be read (`ListShards`, for shard-map aggregation).
    #[error("cannot read the shards of the stream {stream}: {error}")]
    ListShards {
        /// The stream.
        stream: StreamRef,
        /// The call's failure.
        error: CallError,
    },
    /// The settings cannot work.
    #[error("invalid producer settings: {0}")]
    Settings(String),
    /// Aggregation was asked for on a stream with the `AUTO` distribution, which places records
    /// without their partition keys: an aggregate could land on a shard its records do not hash
    /// to, and the KCL drops such an aggregate whole. Build without aggregation.
    #[error(
        "the stream {stream} spreads records with the AUTO distribution, which ignores partition keys: an aggregate could land on a shard its records do not hash to, and the KCL drops such aggregates whole; build without aggregation"
    )]
    AggregationOnAuto {
        /// The stream.
        stream: StreamRef,
    },
    /// Another producer (in this process or another) uses the spool directory.
    #[error("the spool directory {} is in use by another producer (it holds spool.lock)", dir.display())]
    SpoolLocked {
        /// The directory.
        dir: std::path::PathBuf,
    },
    /// The spool directory could not be read or written.
    #[error("cannot open the spool directory {}: {error}", dir.display())]
    Spool {
        /// The directory.
        dir: std::path::PathBuf,
        /// The failure.
        error: std::io::Error,
    },
}

impl Producer {
    /// A builder for a producer writing to `stream` through `client`.
    pub fn builder<K: KinesisApi>(client: K, stream: StreamRef) -> Builder<K> {
        Builder {
            client,
            stream,
            config: Config::default(),
            limits: None,
            metrics: Arc::new(TracingSink),
            spool: None,
        }
    }

    /// Takes `record`, waiting while the buffer is full; its ticket resolves when it is
    /// delivered or has failed. An invalid record is handed back at once.
    ///
    /// With a [spool](Builder::spool), the record is written to it first (and with
    /// [`Fsync::PerBatch`](crate::Fsync::PerBatch) synced, together with the records other
    /// senders handed in meanwhile) before the ticket is returned; `send` also waits while the
    /// spool's disk budget is full.
    pub async fn send(&self, record: Record) -> Result<Ticket, SendError> {
        let (ticket, position) = self.admit(record, false).await?;
        if let Some(spool) = &self.shared.spool {
            // A failed sync is logged by the spool, and refuses the next records: this one is
            // held in memory and sent all the same.
            let _ = spool.durable(position).await;
        }
        Ok(ticket)
    }

    /// Takes `records` in order as [`send`](Producer::send) does, one result per record; with a
    /// [spool](Builder::spool) synced per batch, one sync covers them all (a `send` per record
    /// waits for a sync each, which bounds a single sender to about one record per sync).
    ///
    /// ```
    /// use kcl_producer::{Producer, Record};
    /// use kcl_producer::api::StreamRef;
    /// use kcl_producer::testing::FakeKinesis;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let producer = Producer::builder(FakeKinesis::new("s", 1), StreamRef::name("s")).build().await.unwrap();
    /// let records = (0..3).map(|n| Record::new("k", format!("event {n}")));
    /// for taken in producer.send_all(records).await {
    ///     taken.unwrap().await.unwrap();
    /// }
    /// # });
    /// ```
    pub async fn send_all(
        &self,
        records: impl IntoIterator<Item = Record>,
    ) -> Vec<Result<Ticket, SendError>> {
        let mut taken = Vec::new();
        let mut last = None;
        for record in records {
            taken.push(match self.admit(record, false).await {
                Ok((ticket, position)) => {
                    last = Some(position);
                    Ok(ticket)
                }
                Err(error) => Err(error),
            });
        }
        if let (Some(spool), Some(last)) = (&self.shared.spool, last) {
            // As in `send`: a failed sync is logged, and refuses the next records.
            let _ = spool.durable(last).await;
        }
        taken
    }

    /// Validates `record`, waits for its budgets, and hands it to the task; returns its ticket
    /// and its position in the spool.
    async fn admit(&self, record: Record, recovered: bool) -> Result<(Ticket, u64), SendError> {
        let bytes = match self.shared.limits.check(&record) {
            Ok(bytes) => bytes,
            Err(invalid) => return Err(SendError::Invalid(record, invalid)),
        };
        let frame = spool::segment::frame_len(&record);
        let permits = async {
            let bytes = Arc::clone(&self.shared.bytes)
                .acquire_many_owned(permits_for(bytes))
                .await
                .ok()?;
            let records = Arc::clone(&self.shared.records)
                .acquire_owned()
                .await
                .ok()?;
            let disk = match &self.shared.spool {
                Some(spool) => Some(
                    Arc::clone(&spool.disk)
                        .acquire_many_owned(permits_for(frame))
                        .await
                        .ok()?,
                ),
                None => None,
            };
            Some(((bytes, records), disk))
        };
        match permits.await {
            Some((permits, disk)) => self.enqueue(record, bytes, permits, disk, recovered),
            None => Err(SendError::Closed(record)),
        }
    }

    /// Takes `record` if the buffer (and the spool's disk budget) has room now; hands it back
    /// otherwise. With a spool synced per batch, it blocks the thread for the sync.
    pub fn try_send(&self, record: Record) -> Result<Ticket, TrySendError> {
        let bytes = match self.shared.limits.check(&record) {
            Ok(bytes) => bytes,
            Err(invalid) => return Err(TrySendError::Invalid(record, invalid)),
        };
        let bytes_permit =
            Arc::clone(&self.shared.bytes).try_acquire_many_owned(permits_for(bytes));
        let record_permit = Arc::clone(&self.shared.records).try_acquire_owned();
        let disk_permit = match &self.shared.spool {
            Some(spool) => Arc::clone(&spool.disk)
                .try_acquire_many_owned(permits_for(spool::segment::frame_len(&record)))
                .map(Some),
            None => Ok(None),
        };
        match (bytes_permit, record_permit, disk_permit) {
            (Ok(b), Ok(r), Ok(disk)) => {
                let (ticket, position) =
                    self.enqueue(record, bytes, (b, r), disk, false)
                        .map_err(|e| match e {
                            SendError::Closed(record) => TrySendError::Closed(record),
                            SendError::Invalid(record, invalid) => {
                                TrySendError::Invalid(record, invalid)
                            }
                            SendError::Spool(record, error) => TrySendError::Spool(record, error),
                        })?;
                if let Some(spool) = &self.shared.spool {
                    let _ = spool.durable_blocking(position);
                }
                Ok(ticket)
            }
            (Err(tokio::sync::TryAcquireError::Closed), _, _)
            | (_, Err(tokio::sync::TryAcquireError::Closed), _)
            | (_, _, Err(tokio::sync::TryAcquireError::Closed)) => {
                Err(TrySendError::Closed(record))
            }
            _ => Err(TrySendError::Full(record)),
        }
    }

    fn enqueue(
        &self,
        record: Record,
        bytes: usize,
        permits: (
            tokio::sync::OwnedSemaphorePermit,
            tokio::sync::OwnedSemaphorePermit,
        ),
        disk: Option<tokio::sync::OwnedSemaphorePermit>,
        recovered: bool,
    ) -> Result<(Ticket, u64), SendError> {
        let mut sender = self.shared.sender.lock().unwrap_or_else(|p| p.into_inner());
        let Some((next_id, channel)) = sender.as_mut() else {
            return Err(SendError::Closed(record));
        };
        let id = *next_id;
        // Spool: the frame is written under the lock, so ids are in order in the segment.
        let position = match &self.shared.spool {
            Some(spool) => match spool.append(id, &record) {
                // The disk budget comes back when the segment is deleted.
                Ok(position) => {
                    if let Some(disk) = disk {
                        disk.forget();
                    }
                    position
                }
                Err(error) => return Err(SendError::Spool(record, error)),
            },
            None => 0,
        };
        let (answer, receiver) = oneshot::channel();
        let mut pending = Pending::new(id, record, bytes, permits, answer);
        if recovered {
            pending.mark_recovered();
        }
        *next_id += 1;
        if let Err(mpsc::error::SendError(Command::Record(pending))) =
            channel.send(Command::Record(pending))
        {
            if let Some(spool) = &self.shared.spool {
                // Handed back: not for the next producer to send.
                spool.ack(&[id]);
            }
            return Err(SendError::Closed(pending.into_record()));
        }
        self.shared.stats.accepted();
        Ok((Ticket { receiver }, position))
    }

    /// How many records an earlier producer left unanswered in the spool, sent by this one
    /// ahead of new records (0 without a spool). Their tickets went with the earlier process:
    /// their outcomes show in [`Producer::stats`] (`recovered_delivered`, `recovered_failed`)
    /// and in `tracing` events (a failure at ERROR level, with the record's key and size).
    ///
    /// ```
    /// use kcl_producer::{Producer, SpoolConfig};
    /// use kcl_producer::api::StreamRef;
    /// use kcl_producer::testing::FakeKinesis;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let dir = std::env::temp_dir().join(format!("kcl-doc-recovered-{}", std::process::id()));
    /// let producer = Producer::builder(FakeKinesis::new("s", 1), StreamRef::name("s"))
    ///     .spool(SpoolConfig::new(&dir))
    ///     .build()
    ///     .await
    ///     .unwrap();
    /// assert_eq!(producer.recovered(), 0, "a new spool holds nothing");
    /// # producer.shutdown(std::time::Duration::from_secs(1)).await;
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # });
    /// ```
    pub fn recovered(&self) -> u64 {
        self.recovered
    }

    /// Waits until every record taken before this call is delivered or failed (records still
    /// lingering are sent at once).
    pub async fn flush(&self) {
        let receiver = {
            let sender = self.shared.sender.lock().unwrap_or_else(|p| p.into_inner());
            let Some((next_id, channel)) = sender.as_ref() else {
                return;
            };
            let (reply, receiver) = oneshot::channel();
            if channel
                .send(Command::Flush {
                    upto: *next_id,
                    reply,
                })
                .is_err()
            {
                return;
            }
            receiver
        };
        let _ = receiver.await;
    }

    /// Stops taking records, sends what is buffered, and waits for the answers until
    /// `deadline` has passed; then reports what was not delivered (nothing is dropped
    /// unreported, and every ticket resolves).
    pub async fn shutdown(self, deadline: Duration) -> ShutdownReport {
        let channel = self
            .shared
            .sender
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        // Senders waiting for room give up: the producer is closed.
        self.shared.bytes.close();
        self.shared.records.close();
        let Some((_, channel)) = channel else {
            return ShutdownReport::default();
        };
        let (reply, receiver) = oneshot::channel();
        let deadline = Instant::now() + deadline;
        if channel.send(Command::Shutdown { deadline, reply }).is_err() {
            return ShutdownReport::default();
        }
        drop(channel);
        receiver.await.unwrap_or_default()
    }

    /// Counters since the producer started.
    pub fn stats(&self) -> crate::dispatch::StatsSnapshot {
        self.shared.stats.snapshot(&self.shared)
    }
}

impl Producer {
    /// Hands the records an earlier producer left in the spool to the task, ahead of any new
    /// record, copied into this producer's segment; then deletes the earlier segments.
    async fn replay(&mut self, spool: &Spool, recovered: spool::Recovered) {
        for record in recovered.records {
            match self.admit(record, true).await {
                Ok((ticket, _)) => {
                    // Its outcome goes to the stats and to tracing.
                    drop(ticket);
                    self.recovered += 1;
                }
                Err(SendError::Invalid(record, invalid)) => tracing::error!(
                    partition_key = %record.partition_key,
                    bytes = record.data.len(),
                    %invalid,
                    "a record in the spool breaks the stream's limits now: dropped"
                ),
                Err(error) => {
                    // The copies are not all in the new segment: keep the old one.
                    tracing::error!(%error, "cannot replay the spool: its earlier segments stay for the next producer");
                    return;
                }
            }
        }
        // The copies are on disk (synced unless the policy never syncs) before the originals go.
        if spool.sync_now().is_ok() {
            spool::remove_replayed(&recovered.files);
        }
        if self.recovered > 0 {
            tracing::info!(
                records = self.recovered,
                "replaying records an earlier producer left unanswered in the spool"
            );
        }
    }
}

/// Semaphore permits for `bytes` (a record is at most 10 MiB, far below `u32::MAX`).
fn permits_for(bytes: usize) -> u32 {
    u32::try_from(bytes.max(1)).unwrap_or(u32::MAX)
}

impl<K: KinesisApi> Builder<K> {
    /// How long a record may wait for others to fill a call (default 100 ms).
    pub fn linger(mut self, linger: Duration) -> Self {
        self.config.linger = linger;
        self
    }

    /// The most bytes (data and partition keys) held at once (default 64 MiB).
    pub fn max_buffered_bytes(mut self, bytes: usize) -> Self {
        self.config.max_buffered_bytes = bytes;
        self
    }

    /// The most records held at once (default 1,000,000).
    pub fn max_buffered_records(mut self, records: usize) -> Self {
        self.config.max_buffered_records = records;
        self
    }

    /// The most `PutRecords` calls in flight at once (default 24).
    pub fn max_in_flight(mut self, calls: usize) -> Self {
        self.config.max_in_flight = calls;
        self
    }

    /// The first and the longest pause before a failed record is sent again (defaults 100 ms
    /// and 10 s; the pause doubles per attempt, with jitter).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.config.initial_backoff = initial;
        self.config.max_backoff = max;
        self
    }

    /// How long a record may stay undelivered before it fails (default: no limit; it is retried
    /// until delivered or the producer shuts down).
    pub fn record_ttl(mut self, ttl: Duration) -> Self {
        self.config.record_ttl = Some(ttl);
        self
    }

    /// How many calls may carry a record before it fails (default: no limit; at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.config.max_attempts = Some(attempts.max(1));
        self
    }

    /// Packs records into KPL aggregates ([`Aggregation::SameKey`](crate::Aggregation::SameKey):
    /// records sharing their keys; [`Aggregation::ShardMap`](crate::Aggregation::ShardMap):
    /// records bound for the same shard), refused at build time on a stream with the `AUTO`
    /// distribution ([`BuildError::AggregationOnAuto`]), where Kinesis ignores the keys and the
    /// KCL would drop aggregates that land on another shard.
    pub fn aggregation(mut self, aggregation: crate::Aggregation) -> Self {
        self.config.aggregation = aggregation;
        self
    }

    /// Stores the records of each partition key in the order they were taken, whatever fails
    /// and is sent again (default: off). Each key then has one entry out at a time (ready, in
    /// flight, or waiting for its backoff), the rest queued behind it: a key moves one record
    /// per round trip, or with [`Aggregation::same_key`](crate::Aggregation::same_key) one
    /// aggregate of up to 10,000 records. Records of different keys are not ordered.
    pub fn ordered(mut self, ordered: bool) -> Self {
        self.config.ordered = ordered;
        self
    }

    /// Paces the records bound for each shard to `rate` (see [`ShardRate`](crate::ShardRate)):
    /// a record whose shard has used its second's worth waits in the producer, parked behind
    /// that shard's earlier records, instead of being sent to be throttled; other shards'
    /// records go on. A shard that throttles anyway (other writers share it) is paced slower
    /// and recovers while it stops throttling. Reads the shard map with `ListShards` at build
    /// time, and again when a record lands on a shard the map does not hold.
    ///
    /// ```
    /// use kcl_producer::{Producer, ShardRate, api::StreamRef, testing::FakeKinesis};
    /// let builder = Producer::builder(FakeKinesis::new("s", 2), StreamRef::name("s"))
    ///     .rate_limit(ShardRate::kinesis());
    /// assert_eq!(builder.settings().rate_limit, Some(ShardRate::kinesis()));
    /// ```
    pub fn rate_limit(mut self, rate: crate::rates::ShardRate) -> Self {
        self.config.rate_limit = Some(rate);
        self
    }

    /// Where the producer's metrics go (default: [`TracingSink`], `tracing` events at TRACE
    /// level under the target `kcl_producer::metrics`). See [`crate::metrics`].
    pub fn metrics(mut self, sink: impl MetricsSink) -> Self {
        self.metrics = Arc::new(sink);
        self
    }

    /// Appends every record taken to a disk spool in `config`'s directory before `send`
    /// returns its ticket, so that records survive a `kill -9` of the process (default: none,
    /// memory only).
    ///
    /// - A record gets an "answered" mark once it is delivered, or failed and handed back;
    ///   a segment whose records are all answered is deleted.
    /// - At build, the records an earlier producer left unanswered in the directory (the
    ///   process died) are sent first, ahead of new records ([`Producer::recovered`] counts
    ///   them; `build` waits while they exceed the memory budget). Their tickets died with
    ///   the earlier process: their outcomes go to the stats and to `tracing`.
    /// - A record may be stored twice: the records in flight at the kill (sent, the answer
    ///   not yet marked) are sent again. Duplicates are at most the records in flight then.
    /// - At `shutdown`, the records not delivered by the deadline stay in the spool
    ///   ([`ShutdownReport::spooled`](crate::ShutdownReport::spooled)).
    /// - Two producers never share a directory: the second one's build fails with
    ///   [`BuildError::SpoolLocked`].
    ///
    /// ```
    /// use kcl_producer::{Fsync, Producer, Record, SpoolConfig};
    /// use kcl_producer::api::StreamRef;
    /// use kcl_producer::testing::FakeKinesis;
    /// use std::time::Duration;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let dir = std::env::temp_dir().join(format!("kcl-doc-spool-{}", std::process::id()));
    /// let kinesis = FakeKinesis::new("s", 1);
    /// let producer = Producer::builder(kinesis.clone(), StreamRef::name("s"))
    ///     .spool(SpoolConfig::new(&dir).fsync(Fsync::PerBatch))
    ///     .build()
    ///     .await
    ///     .unwrap();
    /// let ticket = producer.send(Record::new("k", "on disk before this line")).await.unwrap();
    /// ticket.await.unwrap();
    /// let report = producer.shutdown(Duration::from_secs(5)).await;
    /// assert_eq!(report.spooled, 0);
    /// assert_eq!(kinesis.all_records().len(), 1);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # });
    /// ```
    pub fn spool(mut self, config: SpoolConfig) -> Self {
        self.spool = Some(config);
        self
    }

    /// The seed of the backoff's jitter.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// The settings so far.
    pub fn settings(&self) -> &Config {
        &self.config
    }

    /// Uses these limits instead of reading the stream's description at build time. That also
    /// skips the refusal of aggregation on an `AUTO` stream
    /// ([`BuildError::AggregationOnAuto`]): check the distribution yourself.
    pub fn limits(mut self, limits: StreamLimits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Reads the stream's limits (`DescribeStreamSummary`) and starts the producer's task on
    /// the current tokio runtime.
    pub async fn build(self) -> Result<Producer, BuildError> {
        let Builder {
            client,
            stream,
            config,
            limits,
            metrics,
            spool: spool_config,
        } = self;
        let limits = match limits {
            Some(limits) => limits,
            None => match client.describe_stream_summary(&stream).await {
                Ok(summary) => {
                    if summary.distribution == crate::api::Distribution::Auto
                        && config.aggregation != crate::Aggregation::Off
                    {
                        return Err(BuildError::AggregationOnAuto { stream });
                    }
                    StreamLimits::of(&summary)
                }
                Err(error) => return Err(BuildError::Describe { stream, error }),
            },
        };
        let shard_map_aggregation =
            matches!(config.aggregation, crate::Aggregation::ShardMap { .. });
        if shard_map_aggregation && config.ordered {
            return Err(BuildError::Settings(
                "per-key ordering needs one entry per key at a time, which shard-map aggregates (many keys each) cannot give; use same-key aggregation with ordering".to_owned(),
            ));
        }
        if config
            .rate_limit
            .is_some_and(|rate| rate.records_per_second == 0 || rate.bytes_per_second == 0)
        {
            return Err(BuildError::Settings(
                "a rate limit of 0 records or 0 bytes per second would never send anything"
                    .to_owned(),
            ));
        }
        let shard_map = if shard_map_aggregation || config.rate_limit.is_some() {
            match client.list_shards(&stream).await {
                Ok(shards) => Some(crate::shard_map::ShardMap::new(shards)),
                Err(error) => return Err(BuildError::ListShards { stream, error }),
            }
        } else {
            None
        };
        if config.max_buffered_bytes < limits.max_record_bytes {
            return Err(BuildError::Settings(format!(
                "max_buffered_bytes {} is below the stream's record limit {}: the largest record could never be taken",
                config.max_buffered_bytes, limits.max_record_bytes
            )));
        }
        if config.max_buffered_records == 0 || config.max_in_flight == 0 {
            return Err(BuildError::Settings(
                "max_buffered_records and max_in_flight must be at least 1".to_owned(),
            ));
        }
        // The spool: locked, and what an earlier producer left read, before anything starts.
        let opened = match &spool_config {
            Some(config) => {
                let dir = config.settings().0.to_path_buf();
                match Spool::open(
                    config,
                    spool::segment::max_frame_len(limits.max_record_bytes),
                ) {
                    Ok(opened) => Some(opened),
                    Err(OpenError::Locked) => return Err(BuildError::SpoolLocked { dir }),
                    Err(OpenError::Io(error)) => return Err(BuildError::Spool { dir, error }),
                    Err(OpenError::Settings(message)) => return Err(BuildError::Settings(message)),
                }
            }
            None => None,
        };
        let (spool, recovered) = match opened {
            Some((spool, recovered)) => (Some(spool), Some(recovered)),
            None => (None, None),
        };
        let (channel, commands) = mpsc::unbounded_channel();
        let stats = Arc::new(Stats::default());
        let shared = Arc::new(Shared {
            limits,
            capacity_bytes: config.max_buffered_bytes,
            bytes: Arc::new(Semaphore::new(config.max_buffered_bytes)),
            records: Arc::new(Semaphore::new(config.max_buffered_records)),
            sender: Mutex::new(Some((0, channel))),
            stats: Arc::clone(&stats),
            spool: spool.clone(),
        });
        let dispatcher = Dispatcher::new(
            Arc::new(client),
            stream,
            config,
            limits,
            stats,
            metrics,
            shard_map,
        )
        .with_spool(spool.clone());
        tokio::spawn(dispatcher.run(commands));
        let mut producer = Producer {
            shared,
            recovered: 0,
        };
        if let (Some(spool), Some(recovered)) = (spool, recovered) {
            producer.replay(&spool, recovered).await;
        }
        Ok(producer)
    }
}
