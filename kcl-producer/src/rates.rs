//! Per-shard rate limiting (opt-in): records wait in the producer, parked by the shard they go
//! to, instead of being sent to be throttled.
//!
//! Each open shard of the shard map has a token bucket at its write limit ([`ShardRate`]: by
//! default Kinesis's 1,000 records and 1 MiB per second, one second of burst). A record whose
//! shard has no tokens waits, in order, until the bucket has refilled; other shards' records go
//! on. When a shard throttles anyway (other writers share it), its rate drops to 70 % (down to
//! 10 % of the limit) and climbs back by 10 % of the limit per second without throttling
//! (additive increase, multiplicative decrease). With aggregation only bytes are counted: an
//! aggregate is one Kinesis record for many of ours.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use crate::dispatch::Pending;
use crate::pack::record_hash_key;
use crate::shard_map::ShardMap;

/// The write limit of one shard, which [`Builder::rate_limit`](crate::Builder::rate_limit)
/// paces each shard to.
///
/// ```
/// use kcl_producer::ShardRate;
/// let rate = ShardRate::kinesis().percent(80);
/// assert_eq!((rate.records_per_second, rate.bytes_per_second), (800, 838_860));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShardRate {
    /// Records per second.
    pub records_per_second: u32,
    /// Bytes (data and partition keys) per second.
    pub bytes_per_second: u64,
}

impl ShardRate {
    /// Kinesis's limit for a provisioned shard: 1,000 records and 1 MiB per second.
    pub fn kinesis() -> Self {
        ShardRate {
            records_per_second: 1_000,
            bytes_per_second: 1024 * 1024,
        }
    }

    /// A limit of `records_per_second` and `bytes_per_second`.
    ///
    /// ```
    /// let rate = kcl_producer::ShardRate::new(100, 10_000);
    /// assert_eq!(rate.records_per_second, 100);
    /// ```
    pub fn new(records_per_second: u32, bytes_per_second: u64) -> Self {
        ShardRate {
            records_per_second,
            bytes_per_second,
        }
    }

    /// `percent` of this limit (the KPL's `RateLimit` setting is such a percentage).
    pub fn percent(self, percent: u32) -> Self {
        let scale = |value: u64| value * u64::from(percent) / 100;
        ShardRate {
            records_per_second: u32::try_from(scale(u64::from(self.records_per_second)))
                .unwrap_or(u32::MAX),
            bytes_per_second: scale(self.bytes_per_second),
        }
    }
}

/// The lowest share of the limit a throttled shard is paced to.
const FLOOR: f64 = 0.1;

struct Bucket {
    records: f64,
    bytes: f64,
    at: Instant,
    /// The share of the limit the shard is paced to now.
    share: f64,
    last_throttled: Option<Instant>,
}

/// Every shard's bucket, and the records parked for each.
pub(crate) struct Rates {
    rate: ShardRate,
    count_records: bool,
    map: ShardMap,
    buckets: HashMap<String, Bucket>,
    parked: HashMap<String, VecDeque<Pending>>,
    /// With per-key ordering (records left in place, not parked): when the first record the
    /// last scan left behind may go.
    left_behind: Option<Instant>,
}

impl Rates {
    pub(crate) fn new(rate: ShardRate, count_records: bool, map: ShardMap) -> Self {
        Rates {
            rate,
            count_records,
            map,
            buckets: HashMap::new(),
            parked: HashMap::new(),
            left_behind: None,
        }
    }

    /// The open shard `pending` goes to, by the map.
    pub(crate) fn shard_of(&self, pending: &Pending) -> Option<String> {
        self.shard_of_entry(pending.record_ref())
    }

    /// The open shard an entry goes to, by the map.
    pub(crate) fn shard_of_entry(&self, entry: &crate::api::Record) -> Option<String> {
        self.map
            .predict_id(record_hash_key(entry))
            .map(str::to_owned)
    }

    /// Whether the map knows `shard_id` (an entry stored elsewhere means the map is stale).
    pub(crate) fn knows(&self, shard_id: &str) -> bool {
        self.map.knows(shard_id)
    }

    /// `pending` back if it may go now (its tokens taken), else parked behind its shard's.
    pub(crate) fn admit(&mut self, mut pending: Pending, now: Instant) -> Option<Pending> {
        if pending.paid {
            pending.paid = false;
            return Some(pending);
        }
        let Some(shard) = self.shard_of(&pending) else {
            return Some(pending);
        };
        if let Some(queue) = self.parked.get_mut(&shard) {
            park(queue, pending);
            return None;
        }
        let (rate, count_records) = (self.rate, self.count_records);
        let bucket = self
            .buckets
            .entry(shard.clone())
            .or_insert_with(|| Bucket::full(rate, now));
        if bucket.take(rate, count_records, pending.bytes, now) {
            Some(pending)
        } else {
            park(self.parked.entry(shard).or_default(), pending);
            None
        }
    }

    /// A scan of `ready` begins (per-key ordering: records stay in place).
    pub(crate) fn begin_scan(&mut self) {
        self.left_behind = None;
    }

    /// Takes the tokens of `pending`, bound for `shard` (unknown: it goes), if its shard has
    /// them; otherwise notes when they will be there.
    pub(crate) fn try_take(
        &mut self,
        shard: Option<&str>,
        pending: &Pending,
        now: Instant,
    ) -> bool {
        let Some(shard) = shard else {
            return true;
        };
        let (rate, count_records) = (self.rate, self.count_records);
        let bucket = self
            .buckets
            .entry(shard.to_owned())
            .or_insert_with(|| Bucket::full(rate, now));
        if bucket.take(rate, count_records, pending.bytes, now) {
            return true;
        }
        let at = bucket.ready_at(rate, count_records, pending.bytes);
        self.left_behind = Some(self.left_behind.map_or(at, |earlier| earlier.min(at)));
        false
    }

    /// Gives back the tokens of a record admitted but not sent.
    pub(crate) fn refund(&mut self, pending: &Pending) {
        if let Some(bucket) = self
            .shard_of(pending)
            .and_then(|shard| self.buckets.get_mut(&shard))
        {
            bucket.bytes += pending.bytes as f64;
            if self.count_records {
                bucket.records += 1.0;
            }
        }
    }

    /// The parked records whose shard has tokens for them now, oldest first per shard.
    pub(crate) fn release(&mut self, now: Instant) -> Vec<Pending> {
        let (rate, count_records) = (self.rate, self.count_records);
        let mut out = Vec::new();
        self.parked.retain(|shard, queue| {
            let bucket = self
                .buckets
                .entry(shard.clone())
                .or_insert_with(|| Bucket::full(rate, now));
            while let Some(front) = queue.front() {
                if !bucket.take(rate, count_records, front.bytes, now) {
                    break;
                }
                let mut pending = queue.pop_front().expect("the front exists");
                pending.paid = true;
                out.push(pending);
            }
            !queue.is_empty()
        });
        out
    }

    /// When the first parked (or left behind) record may go.
    pub(crate) fn next_release(&self) -> Option<Instant> {
        let parked = self
            .parked
            .iter()
            .filter_map(|(shard, queue)| {
                let front = queue.front()?;
                let bucket = self.buckets.get(shard)?;
                Some(bucket.ready_at(self.rate, self.count_records, front.bytes))
            })
            .min();
        // A time already passed was for a scan that has not run again (the calls in flight are
        // at their most): the next answer wakes the producer, not this.
        let left_behind = self.left_behind.filter(|at| *at > Instant::now());
        [parked, left_behind].into_iter().flatten().min()
    }

    /// A shard refused an entry for its rate: pace it slower, from now.
    pub(crate) fn throttled(&mut self, shard: &str, now: Instant) {
        if let Some(bucket) = self.buckets.get_mut(shard) {
            bucket.refill(self.rate, now);
            bucket.share = (bucket.share * 0.7).max(FLOOR);
            bucket.records = bucket.records.min(0.0);
            bucket.bytes = bucket.bytes.min(0.0);
            bucket.last_throttled = Some(now);
        }
    }

    /// A new shard map; the parked records come back to be placed again.
    pub(crate) fn refresh(&mut self, map: ShardMap) -> Vec<Pending> {
        self.map = map;
        self.drain()
    }

    /// Every parked record.
    pub(crate) fn drain(&mut self) -> Vec<Pending> {
        self.parked.drain().flat_map(|(_, queue)| queue).collect()
    }
}

/// Parks `pending` in its shard's queue, which stays in the order records were taken: a record
/// sent again (after a throttle) goes before the later records of its shard, so that with
/// per-key ordering a key's retry never waits behind its key's next record.
fn park(queue: &mut VecDeque<Pending>, pending: Pending) {
    let at = queue.partition_point(|parked| parked.id() < pending.id());
    queue.insert(at, pending);
}

impl Bucket {
    fn full(rate: ShardRate, now: Instant) -> Self {
        Bucket {
            records: f64::from(rate.records_per_second),
            bytes: rate.bytes_per_second as f64,
            at: now,
            share: 1.0,
            last_throttled: None,
        }
    }

    fn refill(&mut self, rate: ShardRate, now: Instant) {
        let seconds = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        let calm = self
            .last_throttled
            .is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(1));
        if calm {
            self.share = (self.share + 0.1 * seconds).min(1.0);
        }
        let (records, bytes) = (
            f64::from(rate.records_per_second) * self.share,
            rate.bytes_per_second as f64 * self.share,
        );
        self.records = (self.records + seconds * records).min(records);
        self.bytes = (self.bytes + seconds * bytes).min(bytes);
    }

    /// Takes a record of `bytes` if the bucket has room (a record larger than a second's worth
    /// goes when the bucket is full).
    fn take(&mut self, rate: ShardRate, count_records: bool, bytes: usize, now: Instant) -> bool {
        self.refill(rate, now);
        let capacity = rate.bytes_per_second as f64 * self.share;
        let bytes = (bytes as f64).min(capacity);
        let records_ok = !count_records || self.records >= 1.0;
        if records_ok && self.bytes >= bytes {
            if count_records {
                self.records -= 1.0;
            }
            self.bytes -= bytes;
            true
        } else {
            false
        }
    }

    /// When a record of `bytes` will fit, at the current share.
    fn ready_at(&self, rate: ShardRate, count_records: bool, bytes: usize) -> Instant {
        let records_rate = f64::from(rate.records_per_second) * self.share;
        let bytes_rate = rate.bytes_per_second as f64 * self.share;
        let bytes = (bytes as f64).min(bytes_rate);
        let wait_records = if count_records && self.records < 1.0 {
            (1.0 - self.records) / records_rate.max(f64::MIN_POSITIVE)
        } else {
            0.0
        };
        let wait_bytes = if self.bytes < bytes {
            (bytes - self.bytes) / bytes_rate.max(f64::MIN_POSITIVE)
        } else {
            0.0
        };
        // A millisecond more, so the refill at that moment covers the record.
        self.at + Duration::from_secs_f64(wait_records.max(wait_bytes).min(60.0) + 0.001)
    }
}
