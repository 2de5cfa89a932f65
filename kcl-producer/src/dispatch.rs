//! The producer's task: records in, `PutRecords` calls out, every answer judged per entry.
//!
//! - A record waits in `ready` (in the order it was taken) until a call has room for it: a call
//!   leaves when it is full (entries or bytes), when its oldest record has lingered long
//!   enough, or at once when a flush or the shutdown asks for it.
//! - A stored entry resolves its ticket. A throttled or failed entry, or every entry of a call
//!   that failed in a retryable way, goes to `waiting` until its jittered backoff has passed,
//!   then back to `ready`. A refused call, or a record past its time to live, fails the record.
//! - A record is answered exactly once: `Pending` resolves its ticket in `Drop` if nothing else
//!   did, so no path (not even a panic) leaves a ticket hanging.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::KinesisApi;
use crate::api::{CallError, EntryOutcome, Record, Shard, StreamRef};
use crate::config::Config;
use crate::lanes::{Lanes, Unit};
use crate::limits::StreamLimits;
use crate::metrics::{Metric, MetricsSink, Sample};
use crate::outcome::{Delivery, FailReason, Failed, ShutdownReport};
use crate::pack::{self, Aggregation, Group};
use crate::producer::Shared;
use crate::rates::Rates;
use crate::shard_map::ShardMap;
use crate::spool::Spool;

/// The error code of an aggregate stored on a shard some of its records do not hash to.
const MISPLACED: &str = "AggregateOutsideShard";

/// With per-key ordering and a rate limit: the most ready records looked at for one call.
const SCAN_LIMIT: usize = 20_000;

/// The most commands taken in one go before calls are sent (a few full calls' worth).
const BACKLOG: usize = 4096;

/// What the handle asks of the task.
pub(crate) enum Command {
    Record(Pending),
    /// Resolve `reply` once every record with an id below `upto` is answered.
    Flush {
        upto: u64,
        reply: oneshot::Sender<()>,
    },
    Shutdown {
        deadline: Instant,
        reply: oneshot::Sender<ShutdownReport>,
    },
}

/// A record the producer holds, with its ticket and its share of the memory budget.
pub(crate) struct Pending {
    id: u64,
    record: Option<Record>,
    pub(crate) bytes: usize,
    attempts: u32,
    maybe_stored: bool,
    taken_at: Instant,
    /// When it joined `ready` (for the linger).
    ready_since: Instant,
    /// With a rate limit: its shard's tokens are taken (released from parking), so it goes in
    /// the next call without asking again.
    pub(crate) paid: bool,
    answer: Option<oneshot::Sender<Result<Delivery, Failed>>>,
    /// Spool: replayed from an earlier producer's spool (its ticket is gone).
    recovered: bool,
    _permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
}

impl Pending {
    pub(crate) fn new(
        id: u64,
        record: Record,
        bytes: usize,
        permits: (OwnedSemaphorePermit, OwnedSemaphorePermit),
        answer: oneshot::Sender<Result<Delivery, Failed>>,
    ) -> Self {
        let now = Instant::now();
        Pending {
            id,
            record: Some(record),
            bytes,
            attempts: 0,
            maybe_stored: false,
            taken_at: now,
            ready_since: now,
            paid: false,
            answer: Some(answer),
            recovered: false,
            _permits: permits,
        }
    }

    /// Its number, in the order records were taken.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Spool: marks it as replayed from an earlier producer's spool.
    pub(crate) fn mark_recovered(&mut self) {
        self.recovered = true;
    }

    /// The record back, unanswered (it was never taken).
    pub(crate) fn into_record(mut self) -> Record {
        self.answer = None;
        self.record
            .take()
            .expect("a pending record holds its record")
    }

    /// The record (while it is not lent to a call).
    pub(crate) fn record_ref(&self) -> &Record {
        self.record
            .as_ref()
            .expect("a pending record holds its record")
    }

    /// The record, lent to a call (cheap: the data is shared); [`Pending::return_record`] puts
    /// it back when the call answers.
    pub(crate) fn lend_record(&mut self) -> Record {
        self.record
            .take()
            .expect("a pending record holds its record")
    }

    fn return_record(&mut self, record: Record) {
        self.record = Some(record);
    }

    fn deliver(
        mut self,
        shard_id: String,
        sequence_number: String,
        sub_sequence_number: Option<u32>,
    ) {
        if let Some(answer) = self.answer.take() {
            let _ = answer.send(Ok(Delivery {
                shard_id,
                sequence_number,
                sub_sequence_number,
                attempts: self.attempts,
                maybe_duplicated: self.maybe_stored,
            }));
        }
    }

    /// Fails the record; the failure's record is a copy when `keep` wants one (the report).
    fn fail(mut self, reason: FailReason) -> Failed {
        let record = self
            .record
            .take()
            .expect("a pending record holds its record");
        let failed = Failed {
            record: record.clone(),
            reason,
            attempts: self.attempts,
            maybe_stored: self.maybe_stored,
        };
        if let Some(answer) = self.answer.take() {
            let _ = answer.send(Err(Failed {
                record,
                reason: failed.reason.clone(),
                attempts: failed.attempts,
                maybe_stored: failed.maybe_stored,
            }));
        }
        failed
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let (Some(answer), Some(record)) = (self.answer.take(), self.record.take()) {
            let _ = answer.send(Err(Failed {
                record,
                reason: FailReason::Abandoned,
                attempts: self.attempts,
                maybe_stored: self.maybe_stored,
            }));
        }
    }
}

/// Counters the handle reads.
#[derive(Default)]
pub(crate) struct Stats {
    accepted: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    calls: AtomicU64,
    entries_sent: AtomicU64,
    entries_retried: AtomicU64,
    entries_throttled: AtomicU64,
    calls_failed: AtomicU64,
    calls_ambiguous: AtomicU64,
    recovered_delivered: AtomicU64,
    recovered_failed: AtomicU64,
}

/// A snapshot of the producer's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Records taken by `send` or `try_send`.
    pub accepted: u64,
    /// Records delivered.
    pub delivered: u64,
    /// Records failed (handed back through their tickets).
    pub failed: u64,
    /// `PutRecords` calls made.
    pub calls: u64,
    /// Entries in those calls (a record sent twice counts twice).
    pub entries_sent: u64,
    /// Entries sent again after a failure.
    pub entries_retried: u64,
    /// Entries refused by a shard's write limit.
    pub entries_throttled: u64,
    /// Calls that failed as a whole.
    pub calls_failed: u64,
    /// Calls whose outcome was unknown (their records may be stored twice).
    pub calls_ambiguous: u64,
    /// Bytes buffered now (taken and not yet answered).
    pub buffered_bytes: u64,
    /// Records replayed from the spool (see [`Producer::recovered`](crate::Producer::recovered))
    /// that were delivered.
    pub recovered_delivered: u64,
    /// Records replayed from the spool that failed (logged at ERROR level).
    pub recovered_failed: u64,
}

impl Stats {
    pub(crate) fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, shared: &Shared) -> StatsSnapshot {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let capacity = shared.capacity_bytes;
        StatsSnapshot {
            accepted: read(&self.accepted),
            delivered: read(&self.delivered),
            failed: read(&self.failed),
            calls: read(&self.calls),
            entries_sent: read(&self.entries_sent),
            entries_retried: read(&self.entries_retried),
            entries_throttled: read(&self.entries_throttled),
            calls_failed: read(&self.calls_failed),
            calls_ambiguous: read(&self.calls_ambiguous),
            buffered_bytes: capacity.saturating_sub(shared.bytes.available_permits()) as u64,
            recovered_delivered: read(&self.recovered_delivered),
            recovered_failed: read(&self.recovered_failed),
        }
    }
}

/// A flush waiting for the records taken before it.
struct Flush {
    /// Records with a smaller id count.
    upto: u64,
    /// How many of them are not answered yet.
    remaining: usize,
    reply: oneshot::Sender<()>,
}

/// A call in flight: its records' tickets and budgets, and the records it carries (shared with
/// the call's task, and taken back when it answers).
struct InFlight {
    groups: Vec<Group>,
    records: Arc<Vec<Record>>,
    sent_at: Instant,
}

type CallAnswer = (u64, Result<Vec<EntryOutcome>, CallError>);

/// The task's state.
pub(crate) struct Dispatcher<K> {
    client: Arc<K>,
    stream: Arc<StreamRef>,
    /// The stream, as the metrics name it.
    stream_label: String,
    metrics: Arc<dyn MetricsSink>,
    config: Config,
    limits: StreamLimits,
    stats: Arc<Stats>,
    random: fastrand::Rng,
    /// Records to send, in the order they became ready, and their bytes.
    ready: VecDeque<Pending>,
    ready_bytes: usize,
    /// Records waiting for their backoff, by the time it ends.
    waiting: BinaryHeap<Reverse<(Instant, u64)>>,
    waiting_records: HashMap<u64, Pending>,
    /// Records in calls not yet answered, by call.
    in_flight: HashMap<u64, InFlight>,
    calls: JoinSet<CallAnswer>,
    /// Which call each task carries (a task that panics returns no answer to read it from).
    call_tasks: HashMap<tokio::task::Id, u64>,
    next_call: u64,
    /// Records held: ready, waiting, in flight, or queued in their key's lane.
    held: usize,
    /// With per-key ordering: each key's lane.
    lanes: Option<Lanes>,
    /// With shard-map aggregation: the shards as last read, and the reading under way.
    shard_map: Option<ShardMap>,
    /// With a rate limit: each shard's bucket, and the records parked until it refills.
    rates: Option<Rates>,
    refreshes: JoinSet<Result<Vec<Shard>, CallError>>,
    flushes: Vec<Flush>,
    /// Every handle is gone: nothing lingers any more.
    closing: bool,
    shutdown: Option<(Instant, Option<oneshot::Sender<ShutdownReport>>)>,
    report: ShutdownReport,
    /// Spool: where answered records are marked, and the ids answered since the last mark.
    spool: Option<Arc<Spool>>,
    acks: Vec<u64>,
}

impl<K: KinesisApi> Dispatcher<K> {
    pub(crate) fn new(
        client: Arc<K>,
        stream: StreamRef,
        config: Config,
        limits: StreamLimits,
        stats: Arc<Stats>,
        metrics: Arc<dyn MetricsSink>,
        shard_map: Option<ShardMap>,
    ) -> Self {
        let random = fastrand::Rng::with_seed(config.seed);
        let lanes = config.ordered.then(|| {
            Lanes::new(match config.aggregation {
                Aggregation::Off => Unit {
                    records: 1,
                    bytes: usize::MAX,
                },
                // (Shard-map aggregation is refused with ordering at build time.)
                Aggregation::SameKey {
                    max_bytes,
                    max_records,
                }
                | Aggregation::ShardMap {
                    max_bytes,
                    max_records,
                } => Unit {
                    records: max_records,
                    bytes: max_bytes,
                },
            })
        });
        let rates = config.rate_limit.zip(shard_map.clone()).map(|(rate, map)| {
            // With aggregation, an entry carries many records: only bytes are counted.
            let count_records = config.aggregation == Aggregation::Off;
            Rates::new(rate, count_records, map)
        });
        let shard_map =
            shard_map.filter(|_| matches!(config.aggregation, Aggregation::ShardMap { .. }));
        Dispatcher {
            lanes,
            shard_map,
            rates,
            refreshes: JoinSet::new(),
            client,
            stream_label: stream.to_string(),
            metrics,
            stream: Arc::new(stream),
            config,
            limits,
            stats,
            random,
            ready: VecDeque::new(),
            ready_bytes: 0,
            waiting: BinaryHeap::new(),
            waiting_records: HashMap::new(),
            in_flight: HashMap::new(),
            calls: JoinSet::new(),
            call_tasks: HashMap::new(),
            next_call: 0,
            held: 0,
            flushes: Vec::new(),
            closing: false,
            shutdown: None,
            report: ShutdownReport::default(),
            spool: None,
            acks: Vec::new(),
        }
    }

    /// Spool: marks answered records in `spool`.
    pub(crate) fn with_spool(mut self, spool: Option<Arc<Spool>>) -> Self {
        self.spool = spool;
        self
    }

    /// Spool: writes the marks of the records answered since the last call.
    fn write_acks(&mut self) {
        if let Some(spool) = &self.spool {
            spool.ack(&self.acks);
            self.acks.clear();
        }
    }

    /// Runs until the handle is gone (or shut down) and every record is answered.
    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            self.write_acks(); // spool
            self.release_waiting(Instant::now());
            self.release_parked(Instant::now());
            self.send_calls(Instant::now());
            if self.closing && self.held == 0 {
                break;
            }
            if let Some((deadline, _)) = &self.shutdown {
                if Instant::now() >= *deadline {
                    commands.close();
                    while let Ok(command) = commands.try_recv() {
                        self.take(command);
                    }
                    break;
                }
            }
            let wake = self.next_wake();
            tokio::select! {
                command = commands.recv(), if !self.closing => match command {
                    Some(command) => {
                        self.take(command);
                        // Take the backlog before deciding on calls: a task that lags behind
                        // its senders would otherwise send each lingered record alone.
                        for _ in 0..BACKLOG {
                            match commands.try_recv() {
                                Ok(command) => self.take(command),
                                Err(_) => break,
                            }
                        }
                    }
                    // Every handle is gone: send what is held, then stop.
                    None => self.closing = true,
                },
                Some(done) = self.calls.join_next_with_id(), if !self.calls.is_empty() => {
                    match done {
                        Ok((task, (call, answer))) => {
                            self.call_tasks.remove(&task);
                            self.judge(call, answer);
                        }
                        // The client panicked (or was cancelled) during the call: nobody knows
                        // what it sent, so its records go again, flagged as maybe stored.
                        Err(error) => {
                            let call = self
                                .call_tasks
                                .remove(&error.id())
                                .expect("every call task is known");
                            let cause = format!("the PutRecords call failed in the client: {error}");
                            self.judge(call, Err(CallError::Ambiguous { cause }));
                        }
                    }
                }
                Some(read) = self.refreshes.join_next(), if !self.refreshes.is_empty() => {
                    match read {
                        Ok(Ok(shards)) => self.new_shard_map(ShardMap::new(shards)),
                        // The old map stays; the next misplaced aggregate asks again.
                        Ok(Err(error)) => tracing::warn!(
                            stream = %self.stream_label,
                            %error,
                            "cannot read the stream's shards again; aggregating on the old shard map"
                        ),
                        Err(error) => tracing::warn!(
                            stream = %self.stream_label,
                            %error,
                            "the ListShards call failed in the client"
                        ),
                    }
                }
                () = sleep_until(wake) => {}
            }
        }
        self.finish();
    }

    fn take(&mut self, command: Command) {
        match command {
            Command::Record(pending) => {
                self.held += 1;
                self.metric(Metric::UserRecordsReceived, 1.0, None, None);
                let admitted = match &mut self.lanes {
                    Some(lanes) => lanes.admit(pending),
                    None => Some(pending),
                };
                if let Some(pending) = admitted {
                    self.make_ready(pending);
                }
            }
            Command::Flush { upto, reply } => {
                // Every record with a smaller id came through the channel before this flush,
                // so the records held now are exactly the ones it waits for.
                if self.held == 0 {
                    let _ = reply.send(());
                } else {
                    self.flushes.push(Flush {
                        upto,
                        remaining: self.held,
                        reply,
                    });
                }
            }
            Command::Shutdown { deadline, reply } => {
                self.shutdown = Some((deadline, Some(reply)));
            }
        }
    }

    /// Whether records go out without lingering: a flush waits, or the producer is closing.
    fn hurry(&self) -> bool {
        !self.flushes.is_empty() || self.closing || self.shutdown.is_some()
    }

    /// The earliest moment something is due: a backoff ends, a record has lingered enough, or
    /// the shutdown deadline.
    fn next_wake(&self) -> Option<Instant> {
        let backoff = self.waiting.peek().map(|Reverse((at, _))| *at);
        // A linger already over is no reason to wake: `send_calls` just ran, and what it did
        // not send waits for an answer, a backoff or its shard's tokens (each a wake of its own).
        let now = Instant::now();
        let linger = self
            .ready
            .front()
            .filter(|_| self.calls.len() < self.config.max_in_flight)
            .map(|oldest| oldest.ready_since + self.config.linger)
            .filter(|at| *at > now);
        let deadline = self.shutdown.as_ref().map(|(deadline, _)| *deadline);
        let parked = self.rates.as_ref().and_then(Rates::next_release);
        [backoff, linger, deadline, parked]
            .into_iter()
            .flatten()
            .min()
    }

    fn release_waiting(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.waiting.peek().copied() {
            if at > now {
                break;
            }
            self.waiting.pop();
            if let Some(mut pending) = self.waiting_records.remove(&id) {
                pending.ready_since = now;
                let key = self.lanes.as_mut().map(|lanes| {
                    let key = pending.record_ref().partition_key.clone();
                    lanes.released(&key, pending.bytes);
                    key
                });
                self.make_ready(pending);
                if let Some(key) = key {
                    self.refill(&key);
                }
            }
        }
    }

    /// Sends as many calls as are due and allowed.
    fn send_calls(&mut self, now: Instant) {
        while self.calls.len() < self.config.max_in_flight {
            let Some(oldest) = self.ready.front() else {
                return;
            };
            let due = self.hurry()
                || oldest.ready_since + self.config.linger <= now
                || self.fills_a_call();
            if !due || !self.send_one_call() {
                return;
            }
        }
    }

    /// With a rate limit: the parked records whose shards have refilled go first.
    fn release_parked(&mut self, now: Instant) {
        let Some(rates) = &mut self.rates else {
            return;
        };
        let released = rates.release(now);
        self.put_in_front(released);
    }

    /// Puts records back at the front of `ready`, in their order.
    fn put_in_front(&mut self, pendings: Vec<Pending>) {
        for pending in pendings.into_iter().rev() {
            self.ready_bytes += pending.bytes;
            self.ready.push_front(pending);
        }
    }

    /// The shards as read again: the aggregation map (with shard-map aggregation) and the rate
    /// limit's map, whose parked records are placed again.
    fn new_shard_map(&mut self, map: ShardMap) {
        if self.shard_map.is_some() {
            self.shard_map = Some(map.clone());
        }
        if let Some(rates) = &mut self.rates {
            let parked = rates.refresh(map);
            self.put_in_front(parked);
        }
    }

    /// With a rate limit: a throttled entry slows its shard; an entry stored on a shard the map
    /// does not hold means the map is stale (a reshard), so it is read again.
    fn pace(&mut self, outcome: &EntryOutcome, bound_for: Option<&str>, now: Instant) {
        let Some(rates) = &mut self.rates else {
            return;
        };
        match outcome {
            EntryOutcome::Stored { shard_id, .. } if !rates.knows(shard_id) => {
                self.read_shards_again();
            }
            EntryOutcome::Failed { code, .. } if code == crate::api::THROTTLED => {
                if let Some(shard) = bound_for {
                    rates.throttled(shard, now);
                }
            }
            _ => {}
        }
    }

    /// Asks for the shard map again, unless a reading is under way.
    fn read_shards_again(&mut self) {
        if self.refreshes.is_empty() {
            let (client, stream) = (Arc::clone(&self.client), Arc::clone(&self.stream));
            self.refreshes
                .spawn(async move { client.list_shards(&stream).await });
        }
    }

    /// With a rate limit: takes from the front of `ready` what the shards' buckets allow, about
    /// one call's worth; the rest of what it looked at is parked by shard.
    fn admitted(&mut self, rates_now: Instant) -> VecDeque<Pending> {
        let mut admitted = VecDeque::new();
        let Some(rates) = &mut self.rates else {
            return admitted;
        };
        let most_entries = match self.config.aggregation {
            Aggregation::Off => self.limits.max_entries,
            _ => usize::MAX,
        };
        let mut bytes = 0;
        if self.lanes.is_some() {
            // With per-key ordering nothing leaves `ready` to be parked: a record whose shard
            // has no tokens stays in its place (and so do the later records of that shard), so
            // each key's records keep the order the lanes gave them.
            let mut skipped = VecDeque::new();
            let mut exhausted = std::collections::HashSet::new();
            rates.begin_scan();
            let mut scanned = 0;
            while admitted.len() < most_entries
                && bytes < self.limits.max_request_bytes
                && scanned < SCAN_LIMIT
            {
                let Some(pending) = self.ready.pop_front() else {
                    break;
                };
                scanned += 1;
                let shard = rates.shard_of(&pending);
                let blocked = shard
                    .as_ref()
                    .is_some_and(|shard| exhausted.contains(shard));
                if !blocked && rates.try_take(shard.as_deref(), &pending, rates_now) {
                    bytes += pending.bytes;
                    self.ready_bytes -= pending.bytes;
                    admitted.push_back(pending);
                } else {
                    if let Some(shard) = shard {
                        exhausted.insert(shard);
                    }
                    skipped.push_back(pending);
                }
            }
            for pending in skipped.into_iter().rev() {
                self.ready.push_front(pending);
            }
            return admitted;
        }
        while admitted.len() < most_entries && bytes < self.limits.max_request_bytes {
            let Some(pending) = self.ready.pop_front() else {
                break;
            };
            self.ready_bytes -= pending.bytes;
            if let Some(pending) = rates.admit(pending, rates_now) {
                bytes += pending.bytes;
                admitted.push_back(pending);
            }
        }
        admitted
    }

    fn make_ready(&mut self, pending: Pending) {
        self.ready_bytes += pending.bytes;
        self.ready.push_back(pending);
    }

    /// Whether `ready` holds a full call's worth.
    fn fills_a_call(&self) -> bool {
        self.ready.len() >= self.limits.max_entries
            || self.ready_bytes >= self.limits.max_request_bytes
    }

    /// With per-key ordering: moves the records of `key` that may go now into `ready`.
    fn refill(&mut self, key: &str) {
        let Some(lanes) = &mut self.lanes else {
            return;
        };
        for pending in lanes.refill(key) {
            self.ready_bytes += pending.bytes;
            self.ready.push_back(pending);
        }
    }

    /// Sends one call of what is ready; `false` when nothing could go (every ready record was
    /// parked by the rate limit, or waits behind its key).
    fn send_one_call(&mut self) -> bool {
        if self.rates.is_some() {
            let mut admitted = self.admitted(Instant::now());
            if admitted.is_empty() {
                return false;
            }
            // Pack from the admitted records; what the call has no room for goes back.
            std::mem::swap(&mut self.ready, &mut admitted);
            let ready_bytes = std::mem::replace(
                &mut self.ready_bytes,
                self.ready.iter().map(|p| p.bytes).sum(),
            );
            let sent = self.pack_and_send();
            std::mem::swap(&mut self.ready, &mut admitted);
            let rest: Vec<Pending> = admitted.into_iter().collect();
            if let Some(rates) = &mut self.rates {
                for pending in &rest {
                    rates.refund(pending);
                }
            }
            self.ready_bytes = ready_bytes;
            self.put_in_front(rest);
            return sent;
        }
        self.pack_and_send()
    }

    fn pack_and_send(&mut self) -> bool {
        let packed = match &self.lanes {
            Some(lanes) => {
                let busy = |key: &str| lanes.busy(key);
                pack::pack(
                    &mut self.ready,
                    self.config.aggregation,
                    &self.limits,
                    Some(&busy),
                    None,
                )
            }
            None => pack::pack(
                &mut self.ready,
                self.config.aggregation,
                &self.limits,
                None,
                self.shard_map.as_ref(),
            ),
        };
        let pack::Packed {
            mut groups,
            entries: records,
            bytes,
            left_over,
        } = packed;
        self.ready_bytes -= bytes;
        if let Some(lanes) = &mut self.lanes {
            // An entry's key is its records' (an aggregate holds one key's records).
            for (group, entry) in groups.iter_mut().zip(&records) {
                for pending in group.pendings_mut() {
                    lanes.sent(&entry.partition_key, pending.bytes);
                }
            }
            lanes.put_back(left_over);
        }
        if groups.is_empty() {
            // Every ready record was of a busy key: they wait in their lanes.
            return false;
        }
        for pending in groups.iter_mut().flat_map(Group::pendings_mut) {
            if pending.attempts > 0 {
                self.stats.entries_retried.fetch_add(1, Ordering::Relaxed);
            }
            pending.attempts += 1;
        }
        let call = self.next_call;
        self.next_call += 1;
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        self.stats
            .entries_sent
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        let user_records: usize = groups.iter_mut().map(|g| g.pendings_mut().len()).sum();
        self.metric(Metric::UserRecordsPending, self.held as f64, None, None);
        self.metric(
            Metric::KinesisRecordsPerPutRecordsRequest,
            records.len() as f64,
            None,
            None,
        );
        self.metric(
            Metric::UserRecordsPerPutRecordsRequest,
            user_records as f64,
            None,
            None,
        );
        let records = Arc::new(records);
        let carried = Arc::clone(&records);
        self.in_flight.insert(
            call,
            InFlight {
                groups,
                records,
                sent_at: Instant::now(),
            },
        );
        let (client, stream) = (Arc::clone(&self.client), Arc::clone(&self.stream));
        let task = self.calls.spawn(async move {
            let answer = client.put_records(&stream, &carried).await;
            (call, answer)
        });
        self.call_tasks.insert(task.id(), call);
        true
    }

    /// The call's groups, their lent records back in place.
    fn land(call: InFlight) -> Vec<Group> {
        let InFlight {
            mut groups,
            records,
            ..
        } = call;
        // The call's task has ended, and with it its share of the records.
        let records = Arc::try_unwrap(records).unwrap_or_else(|shared| (*shared).clone());
        for (group, record) in groups.iter_mut().zip(records) {
            if let Group::Plain(pending) = group {
                pending.return_record(record);
            }
        }
        groups
    }

    /// Handles the answer to call `call`.
    fn judge(&mut self, call: u64, answer: Result<Vec<EntryOutcome>, CallError>) {
        let call = self
            .in_flight
            .remove(&call)
            .expect("every answered call is in flight");
        let sent_at = call.sent_at;
        let now = Instant::now();
        self.metric(
            Metric::RequestTime,
            millis(now.duration_since(sent_at)),
            None,
            None,
        );
        // Each entry's size as Kinesis counts it, data and partition key.
        let entry_bytes: Vec<usize> = call
            .records
            .iter()
            .map(|entry| entry.data.len() + entry.partition_key.len())
            .collect();
        // With a rate limit: the shard each entry was bound for, by the map.
        let entry_shards: Vec<Option<String>> = match &self.rates {
            Some(rates) => call
                .records
                .iter()
                .map(|entry| rates.shard_of_entry(entry))
                .collect(),
            None => Vec::new(),
        };
        let groups = Self::land(call);
        let answer = match answer {
            Ok(outcomes) if outcomes.len() != groups.len() => Err(CallError::Ambiguous {
                cause: format!(
                    "the answer has {} outcomes for {} entries",
                    outcomes.len(),
                    groups.len()
                ),
            }),
            other => other,
        };
        match answer {
            Ok(outcomes) => {
                for (index, ((group, outcome), bytes)) in groups
                    .into_iter()
                    .zip(outcomes)
                    .zip(entry_bytes)
                    .enumerate()
                {
                    self.pace(
                        &outcome,
                        entry_shards.get(index).and_then(Option::as_deref),
                        now,
                    );
                    match outcome {
                        EntryOutcome::Stored {
                            shard_id,
                            sequence_number,
                        } => match group {
                            Group::Plain(pending) => {
                                self.entry_stored(&shard_id, bytes, 1);
                                self.delivered(pending, &shard_id, &sequence_number, None, sent_at)
                            }
                            Group::Aggregate(pendings)
                                if !self.placed_well(&shard_id, &pendings) =>
                            {
                                // The KCL drops this aggregate whole: its records go again.
                                self.error(MISPLACED);
                                let at = Instant::now();
                                let why = format!(
                                    "{MISPLACED}: the aggregate landed on {shard_id}, which some of its records do not hash to (the shard map was stale); the KCL drops such an aggregate whole"
                                );
                                for pending in pendings {
                                    self.retry(pending, why.clone(), true, at);
                                }
                            }
                            Group::Aggregate(pendings) => {
                                self.entry_stored(&shard_id, bytes, pendings.len());
                                for (index, pending) in pendings.into_iter().enumerate() {
                                    let sub = u32::try_from(index).ok();
                                    self.delivered(
                                        pending,
                                        &shard_id,
                                        &sequence_number,
                                        sub,
                                        sent_at,
                                    );
                                }
                            }
                        },
                        EntryOutcome::Failed { code, message } => {
                            self.error(&code);
                            if code == crate::api::THROTTLED {
                                self.stats.entries_throttled.fetch_add(1, Ordering::Relaxed);
                            }
                            let at = self.backoff_until(&group);
                            for pending in group.into_pendings() {
                                self.retry(pending, format!("{code}: {message}"), false, at);
                            }
                        }
                    }
                }
            }
            Err(error) => {
                self.error(error.code());
                self.stats.calls_failed.fetch_add(1, Ordering::Relaxed);
                let ambiguous = !error.wrote_nothing();
                if ambiguous {
                    self.stats.calls_ambiguous.fetch_add(1, Ordering::Relaxed);
                }
                for group in groups {
                    let at = self.backoff_until(&group);
                    for pending in group.into_pendings() {
                        if error.is_retryable() {
                            self.retry(pending, error.to_string(), ambiguous, at);
                        } else {
                            self.fail(pending, FailReason::Refused(error.clone()));
                        }
                    }
                }
            }
        }
    }

    /// Whether a KCL consumer reads every record of an aggregate stored on `shard_id`: each
    /// record hashes into that shard's range. Same-key aggregates always do; with a shard map,
    /// an aggregate on a shard the map does not hold, or holding a record outside its range,
    /// does not (and the map is read again).
    fn placed_well(&mut self, shard_id: &str, pendings: &[Pending]) -> bool {
        let Some(map) = &self.shard_map else {
            return true;
        };
        let hash_keys = pendings
            .iter()
            .map(|pending| pack::record_hash_key(pending.record_ref()));
        if map.holds_all(shard_id, hash_keys) == Some(true) {
            return true;
        }
        self.read_shards_again();
        false
    }

    fn metric(&self, metric: Metric, value: f64, shard_id: Option<&str>, code: Option<&str>) {
        let mut sample = Sample::new(metric, value, &self.stream_label);
        sample.shard_id = shard_id;
        sample.error_code = code;
        self.metrics.record(&sample);
    }

    fn error(&self, code: &str) {
        self.metric(Metric::ErrorsByCode, 1.0, None, Some(code));
        self.metric(Metric::AllErrors, 1.0, None, None);
    }

    fn entry_stored(&self, shard_id: &str, bytes: usize, records: usize) {
        self.metric(Metric::KinesisRecordsPut, 1.0, Some(shard_id), None);
        self.metric(
            Metric::KinesisRecordsDataPut,
            bytes as f64,
            Some(shard_id),
            None,
        );
        self.metric(
            Metric::UserRecordsPerKinesisRecord,
            records as f64,
            Some(shard_id),
            None,
        );
    }

    fn delivered(
        &mut self,
        pending: Pending,
        shard_id: &str,
        sequence_number: &str,
        sub_sequence_number: Option<u32>,
        sent_at: Instant,
    ) {
        let shard = Some(shard_id);
        self.metric(Metric::UserRecordsPut, 1.0, shard, None);
        let data = pending.record_ref().data.len() as f64;
        self.metric(Metric::UserRecordsDataPut, data, shard, None);
        let retries = f64::from(pending.attempts.saturating_sub(1));
        self.metric(Metric::RetriesPerRecord, retries, shard, None);
        let buffered = millis(sent_at.saturating_duration_since(pending.taken_at));
        self.metric(Metric::BufferingTime, buffered, shard, None);
        self.stats.delivered.fetch_add(1, Ordering::Relaxed);
        self.report.delivered += 1;
        if pending.recovered {
            // Spool: a replayed record has no ticket.
            self.stats
                .recovered_delivered
                .fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                shard_id,
                sequence_number,
                "a record replayed from the spool was delivered"
            );
        }
        self.answered(&pending);
        pending.deliver(
            shard_id.to_owned(),
            sequence_number.to_owned(),
            sub_sequence_number,
        );
    }

    /// When the records of a failed entry go again: one jittered backoff for the whole entry, so
    /// that they come back together, in order (per-key ordering relies on it).
    fn backoff_until(&mut self, group: &Group) -> Instant {
        let attempts = match group {
            Group::Plain(pending) => pending.attempts,
            Group::Aggregate(pendings) => pendings.iter().map(|p| p.attempts).max().unwrap_or(1),
        };
        Instant::now() + self.config.backoff(attempts, &mut self.random)
    }

    fn retry(&mut self, mut pending: Pending, error: String, ambiguous: bool, at: Instant) {
        pending.maybe_stored |= ambiguous;
        let now = Instant::now();
        if let Some(ttl) = self.config.record_ttl {
            if now.duration_since(pending.taken_at) >= ttl {
                self.metric(Metric::UserRecordExpired, 1.0, None, None);
                self.fail(pending, FailReason::Expired { last_error: error });
                return;
            }
        }
        if self
            .config
            .max_attempts
            .is_some_and(|most| pending.attempts >= most)
        {
            let attempts = pending.attempts;
            self.fail(
                pending,
                FailReason::Attempts {
                    attempts,
                    last_error: error,
                },
            );
            return;
        }
        self.waiting.push(Reverse((at, pending.id)));
        self.waiting_records.insert(pending.id, pending);
    }

    fn fail(&mut self, pending: Pending, reason: FailReason) {
        self.stats.failed.fetch_add(1, Ordering::Relaxed);
        if pending.recovered {
            // Spool: a replayed record has no ticket to hand it back through.
            self.stats.recovered_failed.fetch_add(1, Ordering::Relaxed);
            let record = pending.record_ref();
            tracing::error!(
                partition_key = %record.partition_key,
                bytes = record.data.len(),
                %reason,
                "a record replayed from the spool failed; it is dropped from the spool"
            );
        }
        self.answered(&pending);
        let failed = pending.fail(reason);
        if self.shutdown.is_some() {
            self.report.failed.push(failed);
        }
    }

    /// `pending` has its answer: it no longer counts as held, nor for the flushes, and the
    /// next records of its key may go.
    fn answered(&mut self, pending: &Pending) {
        let id = pending.id;
        if let Some(lanes) = &mut self.lanes {
            let key = &pending.record_ref().partition_key;
            lanes.answered(key);
            let key = key.clone();
            self.refill(&key);
        }
        self.held -= 1;
        if self.spool.is_some() {
            self.acks.push(id);
        }
        if self.flushes.is_empty() {
            return;
        }
        for flush in &mut self.flushes {
            if id < flush.upto {
                flush.remaining -= 1;
            }
        }
        let (done, waiting): (Vec<Flush>, Vec<Flush>) = std::mem::take(&mut self.flushes)
            .into_iter()
            .partition(|flush| flush.remaining == 0);
        self.flushes = waiting;
        for flush in done {
            let _ = flush.reply.send(());
        }
    }

    /// Reports what is left, answers every ticket, and answers the shutdown.
    fn finish(mut self) {
        self.calls.abort_all();
        self.write_acks(); // spool
        let spooled = self.spool.is_some();
        for (_, call) in std::mem::take(&mut self.in_flight) {
            for pending in Self::land(call).into_iter().flat_map(Group::into_pendings) {
                if spooled {
                    // Spool: it stays there, unmarked, for the next producer.
                    pending.fail(FailReason::Spooled);
                    self.report.spooled += 1;
                    continue;
                }
                let failed = pending.fail(FailReason::InDoubt);
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                self.report.in_doubt.push(failed.record);
            }
        }
        self.ready_bytes = 0;
        let mut queued = self.lanes.as_mut().map(Lanes::drain).unwrap_or_default();
        queued.extend(self.rates.as_mut().map(Rates::drain).unwrap_or_default());
        let unsent: Vec<Pending> = std::mem::take(&mut self.ready)
            .into_iter()
            .chain(std::mem::take(&mut self.waiting_records).into_values())
            .chain(queued)
            .collect();
        for pending in unsent {
            if spooled {
                // Spool: it stays there, unmarked, for the next producer.
                pending.fail(FailReason::Spooled);
                self.report.spooled += 1;
                continue;
            }
            let failed = pending.fail(FailReason::Unsent);
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            self.report.unsent.push(failed.record);
        }
        for flush in std::mem::take(&mut self.flushes) {
            let _ = flush.reply.send(());
        }
        if let Some((_, Some(reply))) = self.shutdown.take() {
            let _ = reply.send(std::mem::take(&mut self.report));
        }
    }
}

fn millis(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Group {
    fn pendings_mut(&mut self) -> &mut [Pending] {
        match self {
            Group::Plain(pending) => std::slice::from_mut(pending),
            Group::Aggregate(pendings) => pendings,
        }
    }

    fn into_pendings(self) -> Vec<Pending> {
        match self {
            Group::Plain(pending) => vec![pending],
            Group::Aggregate(pendings) => pendings,
        }
    }
}
