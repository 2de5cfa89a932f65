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
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::KinesisApi;
use crate::api::{CallError, EntryOutcome, Record, StreamRef};
use crate::config::Config;
use crate::limits::StreamLimits;
use crate::outcome::{Delivery, FailReason, Failed, ShutdownReport};
use crate::producer::Shared;

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
    bytes: usize,
    attempts: u32,
    maybe_stored: bool,
    taken_at: Instant,
    /// When it joined `ready` (for the linger).
    ready_since: Instant,
    answer: Option<oneshot::Sender<Result<Delivery, Failed>>>,
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
            answer: Some(answer),
            _permits: permits,
        }
    }

    /// The record back, unanswered (it was never taken).
    pub(crate) fn into_record(mut self) -> Record {
        self.answer = None;
        self.record
            .take()
            .expect("a pending record holds its record")
    }

    fn record(&self) -> &Record {
        self.record
            .as_ref()
            .expect("a pending record holds its record")
    }

    fn deliver(mut self, shard_id: String, sequence_number: String) {
        if let Some(answer) = self.answer.take() {
            let _ = answer.send(Ok(Delivery {
                shard_id,
                sequence_number,
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
        }
    }
}

/// The task's state.
pub(crate) struct Dispatcher<K> {
    client: Arc<K>,
    stream: Arc<StreamRef>,
    config: Config,
    limits: StreamLimits,
    stats: Arc<Stats>,
    random: fastrand::Rng,
    /// Records to send, oldest first, and their bytes.
    ready: BTreeMap<u64, Pending>,
    ready_bytes: usize,
    /// Records waiting for their backoff, by the time it ends.
    waiting: BinaryHeap<Reverse<(Instant, u64)>>,
    waiting_records: HashMap<u64, Pending>,
    /// Records in calls not yet answered, by call.
    in_flight: HashMap<u64, Vec<Pending>>,
    calls: JoinSet<(u64, Result<Vec<EntryOutcome>, CallError>)>,
    next_call: u64,
    flushes: Vec<(u64, oneshot::Sender<()>)>,
    /// Every record with a smaller id is sent without lingering.
    hurry_below: u64,
    shutdown: Option<(Instant, Option<oneshot::Sender<ShutdownReport>>)>,
    report: ShutdownReport,
}

impl<K: KinesisApi> Dispatcher<K> {
    pub(crate) fn new(
        client: Arc<K>,
        stream: StreamRef,
        config: Config,
        limits: StreamLimits,
        stats: Arc<Stats>,
    ) -> Self {
        let random = fastrand::Rng::with_seed(config.seed);
        Dispatcher {
            client,
            stream: Arc::new(stream),
            config,
            limits,
            stats,
            random,
            ready: BTreeMap::new(),
            ready_bytes: 0,
            waiting: BinaryHeap::new(),
            waiting_records: HashMap::new(),
            in_flight: HashMap::new(),
            calls: JoinSet::new(),
            next_call: 0,
            flushes: Vec::new(),
            hurry_below: 0,
            shutdown: None,
            report: ShutdownReport::default(),
        }
    }

    /// Runs until the handle is gone (or shut down) and every record is answered.
    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut open = true;
        loop {
            self.release_waiting(Instant::now());
            // Records already waiting in the channel may fill the call: take them first.
            self.send_calls(Instant::now(), !commands.is_empty());
            self.answer_flushes();
            if !open && self.is_idle() {
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
                command = commands.recv(), if open => match command {
                    Some(command) => {
                        self.take(command);
                        // Take what else is waiting (a call's worth at most, to stay quick to
                        // judge answers) before deciding what to send.
                        for _ in 0..self.limits.max_entries {
                            match commands.try_recv() {
                                Ok(command) => self.take(command),
                                Err(_) => break,
                            }
                        }
                    }
                    None => {
                        // Every handle is gone: send what is held, then stop.
                        open = false;
                        self.hurry_below = u64::MAX;
                    }
                },
                Some(done) = self.calls.join_next(), if !self.calls.is_empty() => {
                    match done {
                        Ok((call, answer)) => self.judge(call, answer),
                        Err(error) => panic!("a PutRecords call task failed: {error}"),
                    }
                }
                () = sleep_until(wake) => {}
            }
        }
        self.finish();
    }

    fn is_idle(&self) -> bool {
        self.ready.is_empty() && self.waiting_records.is_empty() && self.in_flight.is_empty()
    }

    fn take(&mut self, command: Command) {
        match command {
            Command::Record(pending) => {
                if self.shutdown.is_some() {
                    self.hurry_below = self.hurry_below.max(pending.id + 1);
                }
                self.make_ready(pending);
            }
            Command::Flush { upto, reply } => {
                self.hurry_below = self.hurry_below.max(upto);
                self.flushes.push((upto, reply));
            }
            Command::Shutdown { deadline, reply } => {
                self.hurry_below = u64::MAX;
                self.shutdown = Some((deadline, Some(reply)));
            }
        }
    }

    /// The earliest moment something is due: a backoff ends, a record has lingered enough, or
    /// the shutdown deadline.
    fn next_wake(&self) -> Option<Instant> {
        let backoff = self.waiting.peek().map(|Reverse((at, _))| *at);
        let linger = self
            .ready
            .values()
            .next()
            .filter(|_| self.calls.len() < self.config.max_in_flight)
            .map(|oldest| oldest.ready_since + self.config.linger);
        let deadline = self.shutdown.as_ref().map(|(deadline, _)| *deadline);
        [backoff, linger, deadline].into_iter().flatten().min()
    }

    fn release_waiting(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.waiting.peek().copied() {
            if at > now {
                break;
            }
            self.waiting.pop();
            if let Some(mut pending) = self.waiting_records.remove(&id) {
                pending.ready_since = now;
                self.make_ready(pending);
            }
        }
    }

    /// Sends as many calls as are due and allowed. While `more_waiting` (commands are queued
    /// that the task has not taken yet) only full calls leave: records that queued up while
    /// the task was busy have lingered already, and would otherwise go out a few at a time.
    fn send_calls(&mut self, now: Instant, more_waiting: bool) {
        while self.calls.len() < self.config.max_in_flight {
            let Some((&oldest_id, oldest)) = self.ready.iter().next() else {
                return;
            };
            let due = self.fills_a_call()
                || (!more_waiting
                    && (oldest_id < self.hurry_below
                        || oldest.ready_since + self.config.linger <= now));
            if !due {
                return;
            }
            self.send_one_call();
        }
    }

    fn make_ready(&mut self, pending: Pending) {
        self.ready_bytes += pending.bytes;
        self.ready.insert(pending.id, pending);
    }

    /// Whether `ready` holds a full call's worth.
    fn fills_a_call(&self) -> bool {
        self.ready.len() >= self.limits.max_entries
            || self.ready_bytes >= self.limits.max_request_bytes
    }

    fn send_one_call(&mut self) {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(entry) = self.ready.first_entry() {
            let size = entry.get().bytes;
            if batch.len() == self.limits.max_entries
                || (!batch.is_empty() && bytes + size > self.limits.max_request_bytes)
            {
                break;
            }
            bytes += size;
            let mut pending = entry.remove();
            self.ready_bytes -= size;
            if pending.attempts > 0 {
                self.stats.entries_retried.fetch_add(1, Ordering::Relaxed);
            }
            pending.attempts += 1;
            batch.push(pending);
        }
        let records: Vec<Record> = batch.iter().map(|p| p.record().clone()).collect();
        let call = self.next_call;
        self.next_call += 1;
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        self.stats
            .entries_sent
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        self.in_flight.insert(call, batch);
        let (client, stream) = (Arc::clone(&self.client), Arc::clone(&self.stream));
        self.calls.spawn(async move {
            let answer = client.put_records(&stream, &records).await;
            (call, answer)
        });
    }

    /// Handles the answer to call `call`.
    fn judge(&mut self, call: u64, answer: Result<Vec<EntryOutcome>, CallError>) {
        let batch = self
            .in_flight
            .remove(&call)
            .expect("every answered call is in flight");
        let answer = match answer {
            Ok(outcomes) if outcomes.len() != batch.len() => Err(CallError::Ambiguous {
                cause: format!(
                    "the answer has {} outcomes for {} entries",
                    outcomes.len(),
                    batch.len()
                ),
            }),
            other => other,
        };
        match answer {
            Ok(outcomes) => {
                for (pending, outcome) in batch.into_iter().zip(outcomes) {
                    match outcome {
                        EntryOutcome::Stored {
                            shard_id,
                            sequence_number,
                        } => {
                            self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                            self.report.delivered += 1;
                            pending.deliver(shard_id, sequence_number);
                        }
                        EntryOutcome::Failed { code, message } => {
                            if code == crate::api::THROTTLED {
                                self.stats.entries_throttled.fetch_add(1, Ordering::Relaxed);
                            }
                            self.retry(pending, format!("{code}: {message}"), false);
                        }
                    }
                }
            }
            Err(error) => {
                self.stats.calls_failed.fetch_add(1, Ordering::Relaxed);
                let ambiguous = !error.wrote_nothing();
                if ambiguous {
                    self.stats.calls_ambiguous.fetch_add(1, Ordering::Relaxed);
                }
                for pending in batch {
                    if error.is_retryable() {
                        self.retry(pending, error.to_string(), ambiguous);
                    } else {
                        self.fail(pending, FailReason::Refused(error.clone()));
                    }
                }
            }
        }
    }

    fn retry(&mut self, mut pending: Pending, error: String, ambiguous: bool) {
        pending.maybe_stored |= ambiguous;
        let now = Instant::now();
        if let Some(ttl) = self.config.record_ttl {
            if now.duration_since(pending.taken_at) >= ttl {
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
        let at = now + self.config.backoff(pending.attempts, &mut self.random);
        self.waiting.push(Reverse((at, pending.id)));
        self.waiting_records.insert(pending.id, pending);
    }

    fn fail(&mut self, pending: Pending, reason: FailReason) {
        self.stats.failed.fetch_add(1, Ordering::Relaxed);
        let failed = pending.fail(reason);
        if self.shutdown.is_some() {
            self.report.failed.push(failed);
        }
    }

    /// Resolves the flushes whose records are all answered.
    fn answer_flushes(&mut self) {
        if self.flushes.is_empty() {
            return;
        }
        let oldest = [
            self.ready.keys().next().copied(),
            self.waiting_records.keys().min().copied(),
            self.in_flight
                .values()
                .flat_map(|batch| batch.iter().map(|p| p.id))
                .min(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(u64::MAX);
        let (done, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.flushes)
            .into_iter()
            .partition(|(upto, _)| *upto <= oldest);
        self.flushes = kept;
        for (_, reply) in done {
            let _ = reply.send(());
        }
    }

    /// Reports what is left, answers every ticket, and answers the shutdown.
    fn finish(mut self) {
        self.calls.abort_all();
        for (_, batch) in std::mem::take(&mut self.in_flight) {
            for pending in batch {
                let failed = pending.fail(FailReason::InDoubt);
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                self.report.in_doubt.push(failed.record);
            }
        }
        self.ready_bytes = 0;
        let unsent: Vec<Pending> = std::mem::take(&mut self.ready)
            .into_values()
            .chain(std::mem::take(&mut self.waiting_records).into_values())
            .collect();
        for pending in unsent {
            let failed = pending.fail(FailReason::Unsent);
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            self.report.unsent.push(failed.record);
        }
        for (_, reply) in std::mem::take(&mut self.flushes) {
            let _ = reply.send(());
        }
        if let Some((_, Some(reply))) = self.shutdown.take() {
            let _ = reply.send(std::mem::take(&mut self.report));
        }
    }
}

async fn sleep_until(wake: Option<Instant>) {
    match wake {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
