//! [`FakeKinesis`]: an in-process Kinesis stream to test producers against.
//!
//! It keeps what the real service keeps (shards with hash-key ranges, records with sequence
//! numbers, closed parents after a split) and refuses what it refuses (a call over 500 entries
//! or 5 MiB, a record over the stream's limit, a bad key: the whole call, as AWS does). Unlike
//! the local emulators it also does what production does to a producer, deterministically under
//! a seed: per-shard write limits (1 MiB/s and 1,000 records/s with a one-second burst, on
//! tokio's clock, so `tokio::time::pause` makes them virtual), throttled and failed entries,
//! throttled and failed calls, lost acknowledgements (stored, then answered as unknown), and
//! latency.
//!
//! ```
//! use kcl_producer::api::{CallError, Record, KinesisApi, StreamRef};
//! use kcl_producer::testing::{FakeKinesis, Faults};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let kinesis = FakeKinesis::new("orders", 1).with_faults(Faults { lost_acks: 1.0, ..Faults::default() });
//! let stream = StreamRef::name("orders");
//! let answer = kinesis.put_records(&stream, &[Record::new("k", "stored, but nobody hears it")]).await;
//! assert!(matches!(answer, Err(CallError::Ambiguous { .. })));
//! assert_eq!(kinesis.all_records().len(), 1);
//! # });
//! ```

#[cfg(feature = "serve")]
mod serve;
#[cfg(feature = "serve")]
pub use serve::StubServer;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use md5::{Digest, Md5};
use tokio::time::Instant;

use crate::api::{
    CallError, Distribution, EntryOutcome, INTERNAL_FAILURE, KinesisApi, Record, Shard, StreamRef,
    StreamSummary, THROTTLED,
};
use crate::limits::{StreamLimits, parse_hash_key};

/// A fake Kinesis holding one stream. Clones share the stream.
#[derive(Clone)]
pub struct FakeKinesis {
    state: Arc<Mutex<State>>,
}

/// A per-shard write limit, refilled continuously, with one second of burst.
///
/// ```
/// let limits = kcl_producer::testing::ShardLimits::default();
/// assert_eq!((limits.records_per_second, limits.bytes_per_second), (1000, 1024 * 1024));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardLimits {
    /// Records per second per shard.
    pub records_per_second: u32,
    /// Bytes (data and partition keys) per second per shard.
    pub bytes_per_second: u64,
}

impl Default for ShardLimits {
    /// Kinesis's own: 1,000 records and 1 MiB per second per shard.
    fn default() -> Self {
        ShardLimits {
            records_per_second: 1000,
            bytes_per_second: 1024 * 1024,
        }
    }
}

/// Faults to inject, each a probability from 0.0 to 1.0 drawn per call or per entry.
///
/// ```
/// let faults = kcl_producer::testing::Faults { throttled_entries: 0.1, ..Default::default() };
/// assert_eq!(faults.lost_acks, 0.0);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Faults {
    /// Per entry: refused with `ProvisionedThroughputExceededException`.
    pub throttled_entries: f64,
    /// Per entry: refused with `InternalFailure`.
    pub failed_entries: f64,
    /// Per call: the whole call throttled (nothing stored).
    pub throttled_calls: f64,
    /// Per call: a 500 answer with nothing stored (the producer cannot know that).
    pub server_errors: f64,
    /// Per call: every entry handled as usual, then the answer lost.
    pub lost_acks: f64,
    /// Added to every call.
    pub latency: Duration,
}

/// A record the fake stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRecord {
    /// The shard that holds it.
    pub shard_id: String,
    /// Its sequence number (increasing in the order records were stored).
    pub sequence_number: String,
    /// The partition key it was put with.
    pub partition_key: String,
    /// The explicit hash key it was put with.
    pub explicit_hash_key: Option<String>,
    /// The payload.
    pub data: Bytes,
    /// When the fake stored it (epoch milliseconds, wall clock): what `GetRecords` answers as
    /// `ApproximateArrivalTimestamp`.
    pub arrival_millis: i64,
}

/// Where a shard comes from and when it took writes: what a reader needs to follow a
/// stream through splits (`ParentShardId`, `ChildShards`, the `AT_TIMESTAMP` shard filter).
///
/// ```
/// use kcl_producer::testing::FakeKinesis;
/// let kinesis = FakeKinesis::new("s", 1);
/// let [low, _] = kinesis.split("shardId-000000000000");
/// let child = kinesis.lineage(&low).unwrap();
/// assert_eq!(child.parents, ["shardId-000000000000"]);
/// let parent = kinesis.lineage("shardId-000000000000").unwrap();
/// assert!(parent.parents.is_empty() && parent.closed_millis.is_some());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lineage {
    /// The shards this one was split or merged from (none for a shard the stream was created
    /// with).
    pub parents: Vec<String>,
    /// When the shard opened (epoch milliseconds, wall clock).
    pub opened_millis: i64,
    /// When the shard closed, if it did.
    pub closed_millis: Option<i64>,
}

/// Counts of what the fake was asked and answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FakeStats {
    /// `PutRecords` calls received.
    pub put_records_calls: u64,
    /// Entries in those calls.
    pub entries_received: u64,
    /// Entries stored (also those whose answer was lost).
    pub entries_stored: u64,
    /// Entries refused by a shard's write limit or an injected throttle.
    pub entries_throttled: u64,
    /// Calls answered with an error (refused, throttled, 500 or lost answer).
    pub failed_calls: u64,
}

struct FakeShard {
    shard: Shard,
    records: Vec<StoredRecord>,
    bucket: Option<Bucket>,
    lineage: Lineage,
}

struct State {
    name: String,
    arn: String,
    shards: Vec<FakeShard>,
    next_sequence: u64,
    limits: Option<ShardLimits>,
    faults: Faults,
    random: fastrand::Rng,
    max_record_size_kib: u32,
    distribution: Distribution,
    stats: FakeStats,
}

/// Tokens for records and bytes, refilled at the limit's rate, holding at most one second's.
struct Bucket {
    records: f64,
    bytes: f64,
    at: Instant,
}

impl Bucket {
    fn full(limits: ShardLimits) -> Self {
        Bucket {
            records: f64::from(limits.records_per_second),
            bytes: limits.bytes_per_second as f64,
            at: Instant::now(),
        }
    }

    /// Takes one record of `bytes` if the shard has room for it now.
    fn take(&mut self, limits: ShardLimits, bytes: usize) -> bool {
        let now = Instant::now();
        let seconds = now.duration_since(self.at).as_secs_f64();
        self.at = now;
        let (record_rate, byte_rate) = (
            f64::from(limits.records_per_second),
            limits.bytes_per_second as f64,
        );
        self.records = (self.records + seconds * record_rate).min(record_rate);
        self.bytes = (self.bytes + seconds * byte_rate).min(byte_rate);
        if self.records >= 1.0 && self.bytes >= bytes as f64 {
            self.records -= 1.0;
            self.bytes -= bytes as f64;
            true
        } else {
            false
        }
    }
}

/// The fake's account, in ARNs and throttling messages.
const ACCOUNT: &str = "123456789012";

impl FakeKinesis {
    /// A stream `name` with `shards` open shards splitting the hash-key space evenly, no write
    /// limits, no faults, seed 0.
    ///
    /// ```
    /// use kcl_producer::testing::FakeKinesis;
    /// let kinesis = FakeKinesis::new("orders", 4);
    /// let shards = kinesis.shards();
    /// assert_eq!(shards.len(), 4);
    /// assert_eq!((shards[0].starting_hash_key, shards[3].ending_hash_key), (0, u128::MAX));
    /// ```
    pub fn new(name: &str, shards: u32) -> Self {
        assert!(shards > 0, "a stream has at least one shard");
        let width = u128::MAX / u128::from(shards);
        let shards = (0..shards)
            .map(|index| {
                let start = width * u128::from(index);
                let end = if index + 1 == shards {
                    u128::MAX
                } else {
                    start + width - 1
                };
                FakeShard::new(shard_name(index), start, end)
            })
            .collect();
        FakeKinesis {
            state: Arc::new(Mutex::new(State {
                name: name.to_owned(),
                arn: format!("arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/{name}"),
                shards,
                next_sequence: 1,
                limits: None,
                faults: Faults::default(),
                random: fastrand::Rng::with_seed(0),
                max_record_size_kib: 1024,
                distribution: Distribution::PartitionKey,
                stats: FakeStats::default(),
            })),
        }
    }

    /// Enforces `limits` on every shard (each starts with a full second of burst).
    pub fn with_limits(self, limits: ShardLimits) -> Self {
        {
            let mut state = self.lock();
            state.limits = Some(limits);
            for shard in &mut state.shards {
                shard.bucket = Some(Bucket::full(limits));
            }
        }
        self
    }

    /// Injects `faults` from now on.
    pub fn with_faults(self, faults: Faults) -> Self {
        self.lock().faults = faults;
        self
    }

    /// Draws the faults from a generator seeded with `seed` (the same seed, the same faults for
    /// the same calls).
    pub fn with_seed(self, seed: u64) -> Self {
        self.lock().random = fastrand::Rng::with_seed(seed);
        self
    }

    /// The stream's record limit in KiB (1024 to 10240 on AWS).
    pub fn with_max_record_size_kib(self, kib: u32) -> Self {
        self.lock().max_record_size_kib = kib;
        self
    }

    /// How the stream spreads records: with [`Distribution::Auto`] every record lands on a
    /// random open shard, whatever its keys.
    pub fn with_distribution(self, distribution: Distribution) -> Self {
        self.lock().distribution = distribution;
        self
    }

    /// Changes the faults of a running fake (for example, an outage that ends).
    ///
    /// ```
    /// use kcl_producer::testing::{FakeKinesis, Faults};
    /// let kinesis = FakeKinesis::new("s", 1).with_faults(Faults { server_errors: 1.0, ..Default::default() });
    /// kinesis.set_faults(Faults::default());
    /// ```
    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// Splits the open shard `shard_id` in the middle of its range: it closes, and two children
    /// take its writes. Returns the children's ids.
    ///
    /// ```
    /// use kcl_producer::testing::FakeKinesis;
    /// let kinesis = FakeKinesis::new("s", 1);
    /// let [low, high] = kinesis.split("shardId-000000000000");
    /// assert_eq!((low.as_str(), high.as_str()), ("shardId-000000000001", "shardId-000000000002"));
    /// assert_eq!(kinesis.shards().iter().filter(|s| s.open).count(), 2);
    /// ```
    pub fn split(&self, shard_id: &str) -> [String; 2] {
        let mut state = self.lock();
        let limits = state.limits;
        let next = state.shards.len() as u32;
        let parent = state
            .shards
            .iter_mut()
            .find(|s| s.shard.shard_id == shard_id && s.shard.open)
            .unwrap_or_else(|| panic!("no open shard {shard_id} to split"));
        parent.shard.open = false;
        parent.lineage.closed_millis = Some(now_millis());
        let (start, end) = (parent.shard.starting_hash_key, parent.shard.ending_hash_key);
        let middle = start + (end - start) / 2;
        let children = [
            FakeShard::new(shard_name(next), start, middle),
            FakeShard::new(shard_name(next + 1), middle + 1, end),
        ];
        let ids = children.each_ref().map(|c| c.shard.shard_id.clone());
        for mut child in children {
            child.bucket = limits.map(Bucket::full);
            child.lineage.parents = vec![shard_id.to_owned()];
            state.shards.push(child);
        }
        ids
    }

    /// Every shard, open and closed, in creation order.
    pub fn shards(&self) -> Vec<Shard> {
        self.lock().shards.iter().map(|s| s.shard.clone()).collect()
    }

    /// The records stored in `shard_id`, in sequence order.
    pub fn records(&self, shard_id: &str) -> Vec<StoredRecord> {
        self.lock()
            .shards
            .iter()
            .find(|s| s.shard.shard_id == shard_id)
            .map(|s| s.records.clone())
            .unwrap_or_default()
    }

    /// Where `shard_id` comes from and when it was open (`None` for an unknown shard).
    pub fn lineage(&self, shard_id: &str) -> Option<Lineage> {
        self.lock()
            .shards
            .iter()
            .find(|s| s.shard.shard_id == shard_id)
            .map(|s| s.lineage.clone())
    }

    /// Every stored record, shard by shard.
    pub fn all_records(&self) -> Vec<StoredRecord> {
        self.lock()
            .shards
            .iter()
            .flat_map(|s| s.records.iter().cloned())
            .collect()
    }

    /// What the fake was asked and answered so far.
    pub fn stats(&self) -> FakeStats {
        self.lock().stats
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock leaves consistent data (every change is
        // made whole under the lock), so later checks may still read it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The wall clock in epoch milliseconds (arrival times and shard lineage are wall-clock
/// values in Kinesis, unlike the write limits, which run on tokio's clock).
fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// Kinesis's shard id for shard number `index`.
fn shard_name(index: u32) -> String {
    format!("shardId-{index:012}")
}

impl FakeShard {
    fn new(shard_id: String, starting_hash_key: u128, ending_hash_key: u128) -> Self {
        FakeShard {
            shard: Shard {
                shard_id,
                starting_hash_key,
                ending_hash_key,
                open: true,
            },
            records: Vec::new(),
            bucket: None,
            lineage: Lineage {
                parents: Vec::new(),
                opened_millis: now_millis(),
                closed_millis: None,
            },
        }
    }
}

/// The hash key that routes `entry`: its explicit hash key, or the MD5 of its partition key
/// read as a big-endian number.
fn hash_key(entry: &Record) -> u128 {
    match entry.explicit_hash_key.as_deref().and_then(parse_hash_key) {
        Some(hash_key) => hash_key,
        None => u128::from_be_bytes(Md5::digest(entry.partition_key.as_bytes()).into()),
    }
}

impl State {
    fn refuse(&mut self, code: &str, message: String) -> CallError {
        self.stats.failed_calls += 1;
        CallError::Refused {
            code: code.to_owned(),
            message,
        }
    }

    fn check_stream(&mut self, stream: &StreamRef) -> Result<(), CallError> {
        let known = match stream {
            StreamRef::Name(name) => *name == self.name,
            StreamRef::Arn(arn) => *arn == self.arn,
        };
        if known {
            Ok(())
        } else {
            Err(self.refuse(
                "ResourceNotFoundException",
                format!("Stream {stream} under account {ACCOUNT} not found."),
            ))
        }
    }

    /// The whole-call checks AWS makes before storing anything.
    fn validate(&mut self, entries: &[Record]) -> Result<(), CallError> {
        let limits = StreamLimits::of(&self.summary());
        if entries.is_empty() || entries.len() > limits.max_entries {
            return Err(self.refuse(
                "InvalidArgumentException",
                format!("{} records: a call carries 1 to 500", entries.len()),
            ));
        }
        let mut total = 0;
        for (index, entry) in entries.iter().enumerate() {
            match limits.check(entry) {
                Ok(bytes) => total += bytes,
                Err(invalid) => {
                    return Err(self.refuse(
                        "InvalidArgumentException",
                        format!("record {index}: {invalid}"),
                    ));
                }
            }
        }
        if total > limits.max_request_bytes {
            return Err(self.refuse(
                "InvalidArgumentException",
                format!(
                    "{total} bytes in one call: at most {}",
                    limits.max_request_bytes
                ),
            ));
        }
        Ok(())
    }

    fn summary(&self) -> StreamSummary {
        StreamSummary {
            stream_arn: self.arn.clone(),
            open_shard_count: self.shards.iter().filter(|s| s.shard.open).count() as u32,
            max_record_size_kib: self.max_record_size_kib,
            distribution: self.distribution.clone(),
        }
    }

    /// Stores or refuses one entry.
    fn put(&mut self, entry: &Record) -> EntryOutcome {
        let open: Vec<usize> = (0..self.shards.len())
            .filter(|&i| self.shards[i].shard.open)
            .collect();
        let index = match self.distribution {
            Distribution::Auto => open[self.random.usize(..open.len())],
            _ => {
                let hash = hash_key(entry);
                *open
                    .iter()
                    .find(|&&i| self.shards[i].shard.contains(hash))
                    .expect("the open shards cover the hash-key space")
            }
        };
        let bytes = entry.data.len() + entry.partition_key.len();
        let throttled_by_fault = self.draw(self.faults.throttled_entries);
        let failed_by_fault = self.draw(self.faults.failed_entries);
        let limits = self.limits;
        let stream = self.name.clone();
        let shard = &mut self.shards[index];
        let over_limit = match (limits, shard.bucket.as_mut()) {
            (Some(limits), Some(bucket)) => !throttled_by_fault && !bucket.take(limits, bytes),
            _ => false,
        };
        if throttled_by_fault || over_limit {
            self.stats.entries_throttled += 1;
            return EntryOutcome::Failed {
                code: THROTTLED.to_owned(),
                message: format!(
                    "Rate exceeded for shard {} in stream {} under account {ACCOUNT}.",
                    shard.shard.shard_id, stream
                ),
            };
        }
        if failed_by_fault {
            return EntryOutcome::Failed {
                code: INTERNAL_FAILURE.to_owned(),
                message: "Internal service failure.".to_owned(),
            };
        }
        let sequence_number = kcl_protocol::SequenceNumber::synthetic(self.next_sequence)
            .as_str()
            .to_owned();
        self.next_sequence += 1;
        self.stats.entries_stored += 1;
        shard.records.push(StoredRecord {
            shard_id: shard.shard.shard_id.clone(),
            sequence_number: sequence_number.clone(),
            partition_key: entry.partition_key.clone(),
            explicit_hash_key: entry.explicit_hash_key.clone(),
            data: entry.data.clone(),
            arrival_millis: now_millis(),
        });
        EntryOutcome::Stored {
            shard_id: shard.shard.shard_id.clone(),
            sequence_number,
        }
    }

    fn draw(&mut self, probability: f64) -> bool {
        probability > 0.0 && self.random.f64() < probability
    }

    /// A `PutRecords` call: its answer, or the outcomes of an answer that is lost on the way.
    fn put_records(&mut self, stream: &StreamRef, entries: &[Record]) -> Answer {
        match self.put_records_answered(stream, entries) {
            Err(error) => Answer::Answered(Err(error)),
            Ok((outcomes, false)) => Answer::Answered(Ok(outcomes)),
            Ok((_, true)) => Answer::Lost,
        }
    }

    fn put_records_answered(
        &mut self,
        stream: &StreamRef,
        entries: &[Record],
    ) -> Result<(Vec<EntryOutcome>, bool), CallError> {
        self.stats.put_records_calls += 1;
        self.stats.entries_received += entries.len() as u64;
        self.check_stream(stream)?;
        self.validate(entries)?;
        if self.draw(self.faults.throttled_calls) {
            self.stats.failed_calls += 1;
            return Err(CallError::Throttled {
                code: THROTTLED.to_owned(),
                message: format!(
                    "Rate exceeded for stream {} under account {ACCOUNT}.",
                    self.name
                ),
            });
        }
        if self.draw(self.faults.server_errors) {
            self.stats.failed_calls += 1;
            return Err(CallError::Ambiguous {
                cause: "HTTP 500 InternalFailure".to_owned(),
            });
        }
        let lost = self.draw(self.faults.lost_acks);
        let outcomes = entries.iter().map(|entry| self.put(entry)).collect();
        if lost {
            self.stats.failed_calls += 1;
        }
        Ok((outcomes, lost))
    }
}

/// What the caller of a `PutRecords` gets.
pub(crate) enum Answer {
    /// The answer Kinesis gave.
    Answered(Result<Vec<EntryOutcome>, CallError>),
    /// The call was handled, and its answer lost on the way (a cut connection).
    Lost,
}

impl FakeKinesis {
    /// A `PutRecords` call, after the injected latency.
    pub(crate) async fn answer_put_records(
        &self,
        stream: &StreamRef,
        entries: &[Record],
    ) -> Answer {
        let latency = self.lock().faults.latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        self.lock().put_records(stream, entries)
    }

    /// The stream's summary, or why it cannot be given.
    pub(crate) fn summary_of(&self, stream: &StreamRef) -> Result<StreamSummary, CallError> {
        let mut state = self.lock();
        state.check_stream(stream)?;
        Ok(state.summary())
    }
}

impl KinesisApi for FakeKinesis {
    async fn put_records(
        &self,
        stream: &StreamRef,
        entries: &[Record],
    ) -> Result<Vec<EntryOutcome>, CallError> {
        match self.answer_put_records(stream, entries).await {
            Answer::Answered(answer) => answer,
            Answer::Lost => Err(CallError::Ambiguous {
                cause: "the connection closed before the answer arrived".to_owned(),
            }),
        }
    }

    async fn describe_stream_summary(
        &self,
        stream: &StreamRef,
    ) -> Result<StreamSummary, CallError> {
        self.summary_of(stream)
    }

    async fn list_shards(&self, stream: &StreamRef) -> Result<Vec<Shard>, CallError> {
        let mut state = self.lock();
        state.check_stream(stream)?;
        Ok(state.shards.iter().map(|s| s.shard.clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> StreamRef {
        StreamRef::name("s")
    }

    fn entries(n: usize, bytes: usize) -> Vec<Record> {
        (0..n)
            .map(|i| Record::new(format!("key-{i}"), vec![b'x'; bytes]))
            .collect()
    }

    #[tokio::test]
    async fn records_land_on_the_shard_their_hash_key_names() {
        let kinesis = FakeKinesis::new("s", 4);
        let shards = kinesis.shards();
        let mut put = entries(200, 10);
        put.push(Record::new("k", "top").explicit_hash_key(u128::MAX.to_string()));
        let outcomes = kinesis.put_records(&stream(), &put).await.unwrap();
        assert_eq!(outcomes.len(), put.len());
        for (entry, outcome) in put.iter().zip(&outcomes) {
            let EntryOutcome::Stored { shard_id, .. } = outcome else {
                panic!("{outcome:?}")
            };
            let shard = shards.iter().find(|s| &s.shard_id == shard_id).unwrap();
            assert!(shard.contains(hash_key(entry)), "{entry:?} on {shard_id}");
        }
        assert_eq!(
            kinesis.records("shardId-000000000003").last().unwrap().data,
            "top"
        );
        let used = shards
            .iter()
            .filter(|s| !kinesis.records(&s.shard_id).is_empty())
            .count();
        assert_eq!(used, 4, "200 keys spread over every shard");
    }

    #[tokio::test]
    async fn invalid_calls_are_refused_whole_and_store_nothing() {
        let kinesis = FakeKinesis::new("s", 1);
        let mut bad = entries(3, 1);
        bad[1].partition_key.clear();
        let too_big = entries(6, 1024 * 1024 - 10);
        for call in [bad, entries(501, 1), too_big, vec![]] {
            let answer = kinesis.put_records(&stream(), &call).await;
            assert!(
                matches!(&answer, Err(CallError::Refused { code, .. }) if code == "InvalidArgumentException"),
                "{answer:?}"
            );
        }
        let unknown = kinesis
            .put_records(&StreamRef::name("other"), &entries(1, 1))
            .await;
        assert!(
            matches!(unknown, Err(CallError::Refused { code, .. }) if code == "ResourceNotFoundException")
        );
        assert!(kinesis.all_records().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn shard_limits_throttle_past_the_burst_and_refill_with_time() {
        let kinesis = FakeKinesis::new("s", 1).with_limits(ShardLimits {
            records_per_second: 100,
            bytes_per_second: 1 << 30,
        });
        let outcomes = kinesis
            .put_records(&stream(), &entries(150, 1))
            .await
            .unwrap();
        let throttled = outcomes.iter().filter(|o| o.is_throttled()).count();
        assert_eq!(
            throttled, 50,
            "a burst of one second's records, then throttled"
        );
        tokio::time::advance(Duration::from_millis(500)).await;
        let outcomes = kinesis
            .put_records(&stream(), &entries(60, 1))
            .await
            .unwrap();
        assert_eq!(outcomes.iter().filter(|o| o.is_throttled()).count(), 10);
        assert_eq!(kinesis.stats().entries_stored, 150);
    }

    #[tokio::test(start_paused = true)]
    async fn byte_limits_count_keys_and_data() {
        let kinesis = FakeKinesis::new("s", 1).with_limits(ShardLimits {
            records_per_second: 1000,
            bytes_per_second: 1000,
        });
        // "key-N" is 5 bytes: 95 + 5 = 100 bytes each, ten fit in the burst.
        let outcomes = kinesis
            .put_records(&stream(), &entries(10, 95))
            .await
            .unwrap();
        assert!(outcomes.iter().all(|o| !o.is_throttled()));
        let outcomes = kinesis
            .put_records(&stream(), &entries(1, 95))
            .await
            .unwrap();
        assert!(outcomes[0].is_throttled());
    }

    #[tokio::test]
    async fn faults_are_drawn_per_entry_and_per_call_and_repeat_under_a_seed() {
        let run = |seed| async move {
            let kinesis = FakeKinesis::new("s", 2)
                .with_seed(seed)
                .with_faults(Faults {
                    throttled_entries: 0.1,
                    failed_entries: 0.05,
                    throttled_calls: 0.05,
                    server_errors: 0.05,
                    lost_acks: 0.05,
                    latency: Duration::ZERO,
                });
            let mut answers = Vec::new();
            for _ in 0..200 {
                answers.push(kinesis.put_records(&stream(), &entries(20, 1)).await);
            }
            (answers, kinesis.stats())
        };
        let (answers, stats) = run(7).await;
        assert_eq!(run(7).await.0, answers, "the same seed, the same faults");
        let count = |f: fn(&Result<Vec<EntryOutcome>, CallError>) -> bool| {
            answers.iter().filter(|a| f(a)).count()
        };
        let throttled_calls = count(|a| matches!(a, Err(CallError::Throttled { .. })));
        let ambiguous = count(|a| matches!(a, Err(CallError::Ambiguous { .. })));
        assert!((2..=25).contains(&throttled_calls), "{throttled_calls}");
        assert!((5..=40).contains(&ambiguous), "{ambiguous}");
        let entries_answered: Vec<&EntryOutcome> = answers.iter().flatten().flatten().collect();
        let throttled = entries_answered.iter().filter(|o| o.is_throttled()).count();
        let failed = entries_answered
            .iter()
            .filter(|o| matches!(o, EntryOutcome::Failed { code, .. } if code == INTERNAL_FAILURE))
            .count();
        let share = |n: usize| n as f64 / entries_answered.len() as f64;
        assert!((0.06..0.14).contains(&share(throttled)), "{throttled}");
        assert!((0.02..0.08).contains(&share(failed)), "{failed}");
        // Lost answers stored their entries: more stored than answered as stored.
        let answered_stored = entries_answered
            .iter()
            .filter(|o| matches!(o, EntryOutcome::Stored { .. }))
            .count() as u64;
        assert!(stats.entries_stored > answered_stored);
        assert_eq!(stats.put_records_calls, 200);
    }

    #[tokio::test]
    async fn a_split_closes_the_parent_and_routes_to_the_children() {
        let kinesis = FakeKinesis::new("s", 1);
        kinesis
            .put_records(&stream(), &entries(10, 1))
            .await
            .unwrap();
        let children = kinesis.split("shardId-000000000000");
        let outcomes = kinesis
            .put_records(&stream(), &entries(100, 1))
            .await
            .unwrap();
        for outcome in &outcomes {
            let EntryOutcome::Stored { shard_id, .. } = outcome else {
                panic!("{outcome:?}")
            };
            assert!(children.contains(shard_id), "{shard_id}");
        }
        assert_eq!(kinesis.records("shardId-000000000000").len(), 10);
        let listed = kinesis.list_shards(&stream()).await.unwrap();
        assert_eq!(listed.iter().filter(|s| s.open).count(), 2);
        let summary = kinesis.describe_stream_summary(&stream()).await.unwrap();
        assert_eq!(summary.open_shard_count, 2);
    }

    #[tokio::test]
    async fn auto_distribution_ignores_the_keys() {
        let kinesis = FakeKinesis::new("s", 4).with_distribution(Distribution::Auto);
        let same_key: Vec<Record> = (0..100).map(|_| Record::new("one-key", "x")).collect();
        kinesis.put_records(&stream(), &same_key).await.unwrap();
        let used = kinesis
            .shards()
            .iter()
            .filter(|s| !kinesis.records(&s.shard_id).is_empty())
            .count();
        assert!(used > 1, "one key on {used} shard(s)");
    }

    #[tokio::test]
    async fn sequence_numbers_increase_within_a_shard() {
        let kinesis = FakeKinesis::new("s", 1);
        kinesis
            .put_records(&stream(), &entries(50, 1))
            .await
            .unwrap();
        let records = kinesis.records("shardId-000000000000");
        let numbers: Vec<kcl_protocol::SequenceNumber> = records
            .iter()
            .map(|r| kcl_protocol::SequenceNumber::new(r.sequence_number.clone()))
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]));
    }
}
