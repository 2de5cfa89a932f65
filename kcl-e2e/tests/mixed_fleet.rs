//! Issue 16: a *mixed fleet*, native workers (examples/native_file_sink) beside the real Java
//! KCL 3.1.3 MultiLangDaemon (running examples/file_sink as its child) on ONE application, a
//! 4-shard stream and a producer putting records throughout. The daemon starts first and
//! leads (holds the `Leader` lock: a KCL 3.x leader assigns every lease); the native worker
//! joins as a follower. Each test has its own emulators and application:
//!
//! - **C6** (`mixed_fleet_c6_sigstop_fencing`, `workerMetricsReporterFreqInMillis = 2000` so
//!   that the leader sees a frozen worker inactive): once the native worker holds leases it is
//!   frozen with SIGSTOP for 15 s (five failover times, `failoverTimeMillis = 3000`); the Java
//!   leader sees its leases expire and the daemon takes them; then SIGCONT. The native worker
//!   must deliver `leaseLost` for each of them first (its sink shows it), and none of its
//!   writes may land after Java took a lease: the lease table, sampled every 100–250 ms from
//!   the SIGSTOP on, never shows a lease's counter or checkpoint going back (every holder
//!   resumes at the stored checkpoint and checkpoints forward: a late checkpoint of the frozen
//!   worker would put it back at its old position); Java's `initialize` of each taken shard
//!   resumes exactly at the checkpoint the native worker had stored when it was frozen.
//! - **C7 + C8** (`mixed_fleet_c7_c8_follower_and_handoffs`): the native worker joins a
//!   running daemon; it must receive leases by graceful handoff (the leader's
//!   `initiateGracefulLeaseHandoff`: `checkpointOwner` = the daemon while `leaseOwner` = the
//!   native worker). Over 60 s of balancing: no shard processed by two processes at once (sink
//!   events: from a process's `initialize` of a shard to its `shutdownRequested`, `leaseLost`
//!   or `shardEnded` of it, no other process initializes it); transfers in both directions,
//!   java → native and native → java, seen in the lease table; before every transfer the
//!   losing side's `shutdownRequested` of the shard ran (its sink's event precedes the gaining
//!   side's `initialize`), so, file_sink checkpointing on `shutdownRequested`, a record is
//!   handled twice only on a shard whose lease was lost without a handoff. Large records
//!   into one of the native worker's two leases make the leader hand a lease back to the
//!   daemon (with small even traffic a 2 + 2 split may settle with no handoff back).
//! - **C8 forced transfer** (`mixed_fleet_c8_forced_transfer_after_handoff_timeout`): the
//!   native worker's processor blocks 40 s in `shutdownRequested`; the transfer to the daemon
//!   still happens after the 30 s handoff timeout, and the hook's late checkpoint is refused.
//! - **kill -9** (`full_mixed_fleet_kill_native_then_daemon`, skipped by CI's reduced set: it
//!   waits the lock's 120 s): kill -9 of the native worker (the
//!   daemon takes its leases after they expire), it restarts and gets leases again, then kill
//!   -9 of the daemon (the native worker steals the `Leader` lock after the lock client's
//!   lease duration, 120 s, and takes every lease).
//!
//! Every test judges data: the ledger (lost 0; duplicates reported), each lease's final
//! checkpoint at its shard's last record, and samples of the lease table (no checkpoint past a
//! record no sink wrote).
//!
//! `#[ignore]`d: they need the installed cache, java, node and the built examples and tool
//! (`bash scripts/e2e.sh rust mixed_fleet` runs them):
//!
//! ```text
//! bash scripts/e2e.sh install && cargo build -p kcl-cli && cargo build --example file_sink
//! cargo build --example native_file_sink --features native
//! cargo test -p kcl-e2e --test mixed_fleet -- --ignored --nocapture --test-threads=1
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use kcl_e2e::leases::{Violation, checkpoint_detail, short_shard};
use kcl_e2e::poll::now_ms;
use kcl_e2e::producer::Producer;
use kcl_e2e::scenario::names;
use kcl_e2e::signal::send;
use kcl_e2e::sink::Event;
use kcl_e2e::stream::Entry;
use kcl_e2e::{
    Emulators, LeaseTable, Ledger, Processor, Report, Settings, Signal, Sink, Stream, Tally,
    Worker, WorkerSpec, tally,
};
use kcl_protocol::ExtendedSequenceNumber;

const REQUIRES: &str = "needs the e2e cache (bash scripts/e2e.sh install), java and node, and \
                        `cargo build -p kcl-cli && cargo build --example file_sink && cargo build \
                        --example native_file_sink --features native`; run with --ignored";

/// Shards of the stream.
const SHARDS: i32 = 4;

/// Records per put of the producer, and the pause between two puts.
const PER_PUT: u64 = 10;
const PUT_EVERY: Duration = Duration::from_millis(400);

/// How long C6 keeps the native worker frozen: five failover times (3 s each).
const FROZEN: Duration = Duration::from_secs(15);

/// C6's `workerMetricsReporterFreqInMillis` (default 30 000): a worker counts as active for
/// the leader while its WorkerMetricStats row is younger than two report periods. With the
/// default a Java 3.1.3 leader gives the expired leases of a frozen worker back to that very
/// worker (its row still looks fresh for up to 60 s; seen here: the lease stayed with the
/// frozen worker for the whole 15 s, its counter moved by the leader's assignments); with
/// 2 s the frozen worker is inactive after 4 s and the daemon takes its leases.
const METRICS_EVERY: (&str, &str) = ("workerMetricsReporterFreqInMillis", "2000");

/// The tests of this file run one at a time (each starts a JVM, a native engine and the
/// emulators).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One lease as a sample saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    owner: Option<String>,
    checkpoint_owner: Option<String>,
    counter: u64,
    checkpoint: ExtendedSequenceNumber,
}

/// One read of the lease table: when (epoch ms, taken before the read), and each lease.
#[derive(Clone, Debug)]
struct Sample {
    ms: u64,
    leases: BTreeMap<String, Seen>,
}

/// The daemon, the native worker, their sinks, and what the test saw of the lease table.
struct Mixed {
    emulators: Emulators,
    report: Report,
    stream: Stream,
    ledger: Ledger,
    java: Worker,
    native: Worker,
    sinks: Vec<Sink>,
    table: LeaseTable,
    state: LeaseTable,
    samples: Vec<Sample>,
    violations: Vec<Violation>,
    /// When each PID was killed with SIGKILL (its spans of the events end there).
    killed_at: BTreeMap<u32, u64>,
}

impl Mixed {
    /// The emulators, the stream and both workers (not started), `extra` in both properties
    /// files.
    fn set_up(tag: &str, title: &str, extra: &[(&str, &str)]) -> Mixed {
        let settings = Settings::from_env().unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
        println!(
            "kcl end-to-end harness (Rust), mixed fleet: run folder {}",
            settings.run_dir.display()
        );
        let emulators = Emulators::start(&settings).unwrap_or_else(|e| panic!("{e}"));
        let mut report = Report::begin(tag, title);
        match emulators.loopback_only() {
            Ok(detail) => report.check("setup-emulators-on-loopback-only", true, detail),
            Err(error) => report.check("setup-emulators-on-loopback-only", false, error.message()),
        };
        let (stream_name, app) = names(&settings, tag);
        let stream =
            Stream::create(&emulators, &stream_name, SHARDS).unwrap_or_else(|e| panic!("{e}"));
        let processor =
            Processor::file_sink(&settings).unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
        let spec = |id: &str| WorkerSpec {
            application: app.clone(),
            stream: stream_name.clone(),
            worker_id: id.to_owned(),
            folder: format!("{tag}/{id}").into(),
            processor: processor.clone(),
            extra_properties: extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        let java = Worker::daemon(&settings, &emulators, spec(&format!("{tag}-java")))
            .unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
        let native = Worker::native(&settings, &emulators, spec(&format!("{tag}-native")))
            .unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
        let sinks = vec![java.sink(), native.sink()];
        Mixed {
            table: LeaseTable::new(&emulators, &app),
            state: LeaseTable::coordinator_state(&emulators, &app),
            emulators,
            report,
            stream,
            ledger: Ledger::new(),
            java,
            native,
            sinks,
            samples: Vec::new(),
            violations: Vec::new(),
            killed_at: BTreeMap::new(),
        }
    }

    fn java_id(&self) -> String {
        self.java.worker_id().to_owned()
    }

    fn native_id(&self) -> String {
        self.native.worker_id().to_owned()
    }

    fn native_pid(&self) -> u32 {
        match &self.native {
            Worker::Native(native) => native.pid().unwrap_or(0),
            Worker::Daemon(_) => unreachable!("the native worker"),
        }
    }

    fn java_pid(&self) -> u32 {
        match &self.java {
            Worker::Daemon(daemon) => daemon.pid().unwrap_or(0),
            Worker::Native(_) => unreachable!("the daemon"),
        }
    }

    fn sinks(&self) -> Vec<&Sink> {
        self.sinks.iter().collect()
    }

    fn producer(&self, prefix: &str) -> Producer {
        Producer::start(
            &self.stream,
            &self.ledger,
            prefix,
            0,
            PER_PUT,
            PUT_EVERY,
            false,
        )
    }

    /// The `Leader` lock's owner.
    fn leader(&self) -> Option<String> {
        self.state
            .coordinator_item("Leader")
            .ok()
            .flatten()
            .and_then(|item| {
                item.get("ownerName")
                    .and_then(|v| v.as_s())
                    .map(str::to_owned)
            })
    }

    /// One sample: the lease table (kept), then the checkpoint audit against the sinks.
    fn sample(&mut self) -> Option<&Sample> {
        let ms = now_ms();
        let leases = self.table.leases().ok()?;
        let leases = leases
            .into_values()
            .map(|l| {
                (
                    l.lease_key,
                    Seen {
                        owner: l.lease_owner,
                        checkpoint_owner: l.checkpoint_owner,
                        counter: l.lease_counter,
                        checkpoint: l.checkpoint,
                    },
                )
            })
            .collect::<BTreeMap<_, _>>();
        // The audit: a checkpoint of this read must not pass a record no sink has written.
        let sinks: Vec<&Sink> = self.sinks.iter().collect();
        let written = kcl_e2e::sink::written(&sinks);
        for (shard, seen) in &leases {
            let missing: Vec<String> = self
                .ledger
                .snapshot()
                .into_values()
                .filter(|p| {
                    p.shard == *shard
                        && (seen.checkpoint.is_shard_end()
                            || seen.checkpoint.position().is_some_and(|c| p.position <= c))
                        && !written.contains(&p.payload)
                })
                .map(|p| p.payload)
                .collect();
            if !missing.is_empty() {
                self.violations.push(Violation {
                    shard: shard.clone(),
                    checkpoint: seen.checkpoint.clone(),
                    missing,
                });
            }
        }
        self.samples.push(Sample { ms, leases });
        self.samples.last()
    }

    /// Samples every `every` until `done` or `deadline`; whether done, and how long it took.
    fn wait(
        &mut self,
        deadline: Duration,
        every: Duration,
        mut done: impl FnMut(&mut Mixed) -> bool,
    ) -> (bool, Duration) {
        let t0 = Instant::now();
        loop {
            self.sample();
            if done(self) {
                return (true, t0.elapsed());
            }
            if t0.elapsed() >= deadline {
                return (false, t0.elapsed());
            }
            std::thread::sleep(every);
        }
    }

    /// The live leases `worker` owns with no handoff under way, in the last sample.
    fn settled_owned_by(&self, worker: &str) -> BTreeSet<String> {
        self.samples
            .last()
            .map(|s| {
                s.leases
                    .iter()
                    .filter(|(_, l)| {
                        l.owner.as_deref() == Some(worker)
                            && l.checkpoint_owner.is_none()
                            && !l.checkpoint.is_shard_end()
                    })
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The shards `sink`'s process `pid` initialized at or after `since`.
    fn initialized(&self, sink: usize, pid: Option<u32>, since: u64) -> BTreeSet<String> {
        self.sinks[sink]
            .events()
            .into_iter()
            .filter(|e| e.kind() == "initialize" && e.ms >= since && pid.is_none_or(|p| p == e.pid))
            .map(|e| e.shard)
            .collect()
    }

    fn load(&self) -> String {
        let (j, n) = (self.java_id(), self.native_id());
        let last = self.samples.last();
        let line = |who: &str| {
            last.map(|s| {
                s.leases
                    .iter()
                    .filter(|(_, l)| l.owner.as_deref() == Some(who))
                    .map(|(k, l)| {
                        format!(
                            "{}{}",
                            short_shard(k),
                            if l.checkpoint_owner.is_some() {
                                "*"
                            } else {
                                ""
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
        };
        format!("java [{}] native [{}]", line(&j), line(&n))
    }

    /// Every shard processed by one process at a time: from each `initialize` to the same
    /// PID's `shutdownRequested`, `leaseLost` or `shardEnded` of it (or its `exit`, or its
    /// kill -9), no other PID's `initialize` of the shard. `frozen` = (PID, SIGSTOP time,
    /// shards): a frozen process processes nothing, so its spans of those shards that began
    /// before the SIGSTOP end there (C6 checks apart that after SIGCONT its first event of
    /// each is `leaseLost`). The overlaps found.
    fn overlaps(&self, frozen: Option<(u32, u64, &BTreeSet<String>)>) -> Vec<String> {
        let mut events: Vec<Event> = self.sinks.iter().flat_map(Sink::events).collect();
        events.sort_by_key(|e| e.ms);
        let mut open: BTreeMap<(String, u32), u64> = BTreeMap::new();
        let mut spans: BTreeMap<String, Vec<(u64, u64, u32)>> = BTreeMap::new();
        for event in &events {
            let key = (event.shard.clone(), event.pid);
            match event.kind() {
                "initialize" => {
                    if let Some(start) = open.insert(key, event.ms) {
                        spans
                            .entry(event.shard.clone())
                            .or_default()
                            .push((start, event.ms, event.pid));
                    }
                }
                "shutdownRequested" | "leaseLost" | "shardEnded" => {
                    if let Some(start) = open.remove(&key) {
                        spans
                            .entry(event.shard.clone())
                            .or_default()
                            .push((start, event.ms, event.pid));
                    }
                }
                "exit" => {
                    let ended: Vec<(String, u32)> = open
                        .keys()
                        .filter(|(_, pid)| *pid == event.pid)
                        .cloned()
                        .collect();
                    for key in ended {
                        let start = open.remove(&key).unwrap_or(event.ms);
                        spans
                            .entry(key.0)
                            .or_default()
                            .push((start, event.ms, event.pid));
                    }
                }
                _ => {}
            }
        }
        for ((shard, pid), start) in open {
            let end = self.killed_at.get(&pid).copied().unwrap_or(u64::MAX);
            spans.entry(shard).or_default().push((start, end, pid));
        }
        let mut found = Vec::new();
        for (shard, mut list) in spans {
            if let Some((pid, stopped_at, cut)) = frozen {
                for span in &mut list {
                    if span.2 == pid && cut.contains(&shard) && span.0 < stopped_at {
                        span.1 = span.1.min(stopped_at);
                    }
                }
            }
            list.sort();
            for (i, &(_, end, a)) in list.iter().enumerate() {
                for &(start, _, b) in &list[i + 1..] {
                    if start < end && a != b {
                        found.push(format!(
                            "{}: PID {b} initialized at {start} while PID {a} held it until {end}",
                            short_shard(&shard)
                        ));
                    }
                }
            }
        }
        found
    }

    /// Owner changes of each lease between consecutive samples, `(shard, from, to, ms of the
    /// first sample showing `to` with no handoff pending, handoff seen)`; `None` owners are
    /// skipped (an eviction then an assignment is one change).
    fn transfers(&self) -> Vec<(String, String, String, u64, bool)> {
        let mut last: BTreeMap<String, (String, bool)> = BTreeMap::new();
        let mut found = Vec::new();
        for sample in &self.samples {
            for (shard, seen) in &sample.leases {
                // The actual owner: the old one while a handoff is pending.
                let (actual, pending) = match (&seen.checkpoint_owner, &seen.owner) {
                    (Some(old), _) => (Some(old.clone()), true),
                    (None, owner) => (owner.clone(), false),
                };
                let Some(actual) = actual else { continue };
                match last.get_mut(shard) {
                    Some((prev, handoff)) if *prev != actual => {
                        found.push((
                            shard.clone(),
                            prev.clone(),
                            actual.clone(),
                            sample.ms,
                            *handoff,
                        ));
                        *prev = actual;
                        *handoff = pending;
                    }
                    Some((_, handoff)) => *handoff |= pending,
                    None => {
                        last.insert(shard.clone(), (actual, pending));
                    }
                }
            }
        }
        found
    }

    /// The shards whose lease a live process lost (a `leaseLost` not after a
    /// `shutdownRequested` of the same PID).
    fn lost_leases(&self) -> BTreeMap<String, Vec<u64>> {
        let mut events: Vec<Event> = self.sinks.iter().flat_map(Sink::events).collect();
        events.sort_by_key(|e| e.ms);
        let mut last: BTreeMap<(String, u32), String> = BTreeMap::new();
        let mut lost: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for event in events.iter().filter(|e| !e.shard.is_empty()) {
            let key = (event.shard.clone(), event.pid);
            if event.kind() == "leaseLost"
                && last.get(&key).map(String::as_str) != Some("shutdownRequested")
            {
                lost.entry(event.shard.clone()).or_default().push(event.ms);
            }
            last.insert(key, event.kind().to_owned());
        }
        lost
    }

    /// The shards of the records handled more than once, with how many.
    fn duplicated_by_shard(&self) -> BTreeMap<String, usize> {
        let mut seen: BTreeMap<String, (String, usize)> = BTreeMap::new();
        for sink in &self.sinks {
            for delivery in sink.deliveries().0 {
                seen.entry(delivery.payload)
                    .or_insert((delivery.shard, 0))
                    .1 += 1;
            }
        }
        let mut found = BTreeMap::new();
        for (shard, n) in seen.into_values() {
            if n > 1 {
                *found.entry(shard).or_insert(0) += n - 1;
            }
        }
        found
    }

    /// Neither the lease counter nor the checkpoint ever goes down between two samples (C3: a
    /// write that lowered or reset the counter would make a live lease look unchanged to an
    /// observer; every holder resumes at the stored checkpoint and checkpoints forward, so a
    /// checkpoint going back is a stale holder's late write).
    fn counter_regressions(&self) -> Vec<String> {
        let mut found = Vec::new();
        for pair in self.samples.windows(2) {
            for (shard, now) in &pair[1].leases {
                if let Some(before) = pair[0].leases.get(shard)
                    && (now.counter < before.counter
                        || now.checkpoint.compare(&before.checkpoint)
                            == Ok(std::cmp::Ordering::Less))
                {
                    found.push(format!(
                        "{}: counter {} -> {}, checkpoint {} -> {} at {}",
                        short_shard(shard),
                        before.counter,
                        now.counter,
                        before.checkpoint,
                        now.checkpoint,
                        pair[1].ms
                    ));
                }
            }
        }
        found
    }

    /// Every sample of `shard` at or after `from`, with its time.
    fn history(&self, shard: &str, from: u64) -> Vec<(u64, Seen)> {
        self.samples
            .iter()
            .filter(|s| s.ms >= from)
            .filter_map(|s| s.leases.get(shard).map(|l| (s.ms, l.clone())))
            .collect()
    }

    /// Stops the producer, waits for every record, checks the final checkpoints, the audit
    /// and the event overlaps; SIGTERM to the running workers (the native one first: it
    /// evicts its leases, which the Java leader gives to the daemon). The last tally.
    fn finish(
        &mut self,
        tag: &str,
        producer: Producer,
        frozen: Option<(u32, u64, &BTreeSet<String>)>,
    ) -> Tally {
        let produced = producer.stop();
        self.report.check(
            &format!("{tag}-producer-put-throughout"),
            produced.is_ok(),
            format!("{produced:?}; ledger {}", self.ledger.len()),
        );
        let ledger = self.ledger.clone();
        let (all, took) = self.wait(Duration::from_secs(120), Duration::from_millis(500), |m| {
            tally(&ledger, &m.sinks(), false).lost == 0
        });
        let result = tally(&ledger, &self.sinks(), false);
        self.report.check(
            &format!("{tag}-every-record-handled"),
            all && result.lost == 0 && result.unknown == 0,
            format!(
                "{} ({:.1}s after the producer stopped)",
                result.line(),
                took.as_secs_f64()
            ),
        );
        let last = ledger.last_by_shard();
        let (at, seen) = self.table.wait_checkpoints(&last, Duration::from_secs(30));
        self.report.check(
            &format!("{tag}-checkpoints-at-the-last-records"),
            at,
            checkpoint_detail(&last, &seen),
        );
        let mut stops = Vec::new();
        let mut ended = true;
        let native_id = self.native_id();
        for worker in [&mut self.native, &mut self.java] {
            if !worker.running() {
                continue;
            }
            let grace = worker.grace();
            let id = worker.worker_id().to_owned();
            match worker.stop(Signal::Term, grace + Duration::from_secs(30)) {
                Ok(stopped) => {
                    ended &= stopped.ended;
                    stops.push(format!(
                        "{id}: exit={:?} after {:.1}s",
                        stopped.code,
                        stopped.took.as_secs_f64()
                    ));
                }
                Err(error) => {
                    ended = false;
                    stops.push(format!("{id}: {error}"));
                }
            }
            if id == native_id {
                // The leader gives the evicted leases to the daemon before it stops.
                std::thread::sleep(Duration::from_secs(3));
            }
        }
        self.report
            .check(&format!("{tag}-sigterm-both-end"), ended, stops.join("; "));
        self.sample();
        let first = self.violations.first().map(|v| {
            format!(
                "; first: {} at {} misses {} records, e.g. {:?}",
                short_shard(&v.shard),
                v.checkpoint,
                v.missing.len(),
                v.missing.first()
            )
        });
        self.report.check(
            &format!("{tag}-checkpoints-never-pass-unwritten-records"),
            self.violations.is_empty(),
            format!(
                "{} lease-table samples{}",
                self.samples.len(),
                first.unwrap_or_default()
            ),
        );
        let regressions = self.counter_regressions();
        self.report.check(
            &format!("{tag}-counters-and-checkpoints-never-go-back"),
            regressions.is_empty(),
            format!("{} samples; {regressions:?}", self.samples.len()),
        );
        let overlaps = self.overlaps(frozen);
        self.report.check(
            &format!("{tag}-no-shard-processed-by-two-processes-at-once"),
            overlaps.is_empty(),
            if overlaps.is_empty() {
                format!(
                    "{} events from {} PIDs",
                    self.sinks.iter().map(|k| k.events().len()).sum::<usize>(),
                    self.sinks
                        .iter()
                        .flat_map(|k| k.events_by_pid().into_keys())
                        .collect::<BTreeSet<_>>()
                        .len()
                )
            } else {
                overlaps.join("; ")
            },
        );
        for line in self.table.describe().unwrap_or_default() {
            self.report.note(line);
        }
        let result = tally(&ledger, &self.sinks(), false);
        let duplicated = self.duplicated_by_shard();
        self.report.note(format!(
            "duplicates by shard: {:?}",
            duplicated
                .iter()
                .map(|(k, n)| format!("{}={n}", short_shard(k)))
                .collect::<Vec<_>>()
        ));
        self.report.check(
            &format!("{tag}-ledger-lost-0"),
            result.lost == 0,
            result.line(),
        );
        result
    }

    /// Waits (up to 60 s) until the native worker holds two leases, and picks one of them:
    /// large records into that one make the native worker carry most of the throughput with
    /// a light lease to spare, which the leader's variance balancing then hands to the daemon
    /// (with all the traffic in a worker's only lease, nothing moves).
    fn heavy_shard_of_two(&mut self, tag: &str) -> BTreeSet<String> {
        let native = self.native_id();
        let (ok, took) = self.wait(Duration::from_secs(60), Duration::from_millis(500), |m| {
            m.settled_owned_by(&native).len() >= 2
        });
        self.report.note(format!(
            "{tag}: the native worker holds two leases: {ok} after {:.1}s ({})",
            took.as_secs_f64(),
            self.load()
        ));
        self.settled_owned_by(&native).into_iter().take(1).collect()
    }

    fn print_logs(&self) {
        self.java.print_log_tail(60);
        self.native.print_log_tail(60);
        self.emulators.print_logs(20);
    }

    /// Starts the daemon, waits until it leads and owns every lease (it has handled records
    /// of each shard), then starts the native worker and waits until it holds leases that
    /// the daemon had (no handoff pending). The check names start with `tag`.
    fn daemon_then_native(&mut self, tag: &str) {
        let started = now_ms();
        self.java.start().unwrap_or_else(|e| panic!("{e}"));
        let java = self.java_id();
        let (ok, took) = self.wait(Duration::from_secs(150), Duration::from_millis(500), |m| {
            m.settled_owned_by(&java).len() == SHARDS as usize
                && m.leader().as_deref() == Some(java.as_str())
                && m.initialized(0, None, started).len() == SHARDS as usize
        });
        self.report.check(
            &format!("{tag}-daemon-leads-and-owns-every-lease"),
            ok,
            format!(
                "after {:.1}s: {}; Leader {:?}",
                took.as_secs_f64(),
                self.load(),
                self.leader()
            ),
        );
        let joined = now_ms();
        self.native.start().unwrap_or_else(|e| panic!("{e}"));
        let native = self.native_id();
        let pid = self.native_pid();
        let (ok, took) = self.wait(Duration::from_secs(90), Duration::from_millis(250), |m| {
            let owned = m.settled_owned_by(&native);
            let inits = m.initialized(1, Some(pid), joined);
            !owned.is_empty() && owned.iter().all(|s| inits.contains(s))
        });
        self.report.check(
            &format!("{tag}-native-worker-receives-leases"),
            ok,
            format!(
                "after {:.1}s: {}; Leader {:?}",
                took.as_secs_f64(),
                self.load(),
                self.leader()
            ),
        );
    }
}

/// Puts large records (2 KB each) into chosen shards only, until stopped: a worker holding
/// those shards then carries most of the application's throughput, which the leader's
/// variance balancing moves to the other worker by graceful handoff (small, even traffic
/// lets a 2 + 2 split settle with no handoff at all).
struct HeavyProducer {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<u64, String>>,
}

impl HeavyProducer {
    fn start(stream: &Stream, ledger: &Ledger, prefix: &str, shards: &BTreeSet<String>) -> Self {
        let ranges: Vec<(u128, u128)> = stream
            .open_shards()
            .unwrap_or_else(|e| panic!("{e}"))
            .into_values()
            .filter(|s| shards.contains(&s.id))
            .map(|s| s.hash_range)
            .collect();
        // Partition keys whose hash key falls into one of the chosen shards.
        let keys: Vec<String> = (0u64..100_000)
            .map(|i| format!("heavy-{i}"))
            .filter(|k| {
                let h = kcl_kpl::hash_key(k);
                ranges.iter().any(|&(lo, hi)| lo <= h && h <= hi)
            })
            .take(16)
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let (stream, ledger, prefix, flag) = (
            stream.clone(),
            ledger.clone(),
            prefix.to_owned(),
            stop.clone(),
        );
        let padding = "x".repeat(2048);
        let thread = std::thread::spawn(move || {
            let mut n = 0u64;
            while !flag.load(Ordering::SeqCst) && !keys.is_empty() {
                let entries: Vec<Entry> = keys
                    .iter()
                    .map(|key| {
                        n += 1;
                        Entry::plain(format!("{prefix}-{n:06}-{padding}"), key.clone())
                    })
                    .collect();
                stream
                    .put_entries(&entries, &ledger)
                    .map_err(|e| e.to_string())?;
                std::thread::sleep(Duration::from_millis(250));
            }
            Ok(n)
        });
        HeavyProducer { stop, thread }
    }

    fn stop(self) -> Result<u64, String> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .join()
            .unwrap_or_else(|_| Err("the heavy producer panicked".to_owned()))
    }
}

fn short_list(shards: &BTreeSet<String>) -> String {
    shards
        .iter()
        .map(|s| short_shard(s))
        .collect::<Vec<_>>()
        .join(",")
}

/// C6: SIGSTOP of the native worker beside the daemon (see the module documentation). Takes
/// about 2.5 minutes.
#[test]
#[ignore = "needs the e2e cache (bash scripts/e2e.sh install), java, node, the built file_sink, native_file_sink and kcl"]
fn mixed_fleet_c6_sigstop_fencing() {
    let _serial = one_at_a_time();
    let tag = "x6";
    let mut m = Mixed::set_up(
        tag,
        "mixed: SIGSTOP of the native worker (C6 fencing)",
        &[(METRICS_EVERY.0, METRICS_EVERY.1)],
    );
    let producer = m.producer(tag);
    m.daemon_then_native(tag);
    let (java, native) = (m.java_id(), m.native_id());
    let pid = m.native_pid();
    // Let it process a little (checkpoints of its own in the table).
    m.wait(Duration::from_secs(5), Duration::from_millis(500), |_| {
        false
    });
    m.sample();
    let frozen_leases = m.settled_owned_by(&native);

    // Freeze it.
    let stopped_at = now_ms();
    send(pid, Signal::Stop).unwrap_or_else(|e| panic!("SIGSTOP {pid}: {e}"));
    // Its stored checkpoints as it froze (a write it had sent lands within this pause).
    std::thread::sleep(Duration::from_millis(300));
    let at_stop: BTreeMap<String, Seen> = m
        .sample()
        .map(|s| {
            s.leases
                .iter()
                .filter(|(k, _)| frozen_leases.contains(*k))
                .map(|(k, l)| (k.clone(), l.clone()))
                .collect()
        })
        .unwrap_or_default();
    let frozen_until = Instant::now() + FROZEN;
    let mut taken = BTreeSet::new();
    let mut taken_after = None;
    // Leases the leader gave the frozen worker meanwhile (its metrics row still counts it
    // active for two report periods, 60 s by default): a Java 3.1.3 leader does that.
    let mut given_to_frozen = BTreeSet::new();
    while Instant::now() < frozen_until {
        if let Some(sample) = m.sample() {
            for (shard, seen) in &sample.leases {
                if seen.owner.as_deref() == Some(native.as_str()) && !frozen_leases.contains(shard)
                {
                    given_to_frozen.insert(shard.clone());
                }
            }
        }
        taken.extend(
            frozen_leases
                .intersection(&m.settled_owned_by(&java))
                .cloned(),
        );
        if taken_after.is_none() && taken == frozen_leases {
            taken_after = Some(now_ms() - stopped_at);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    m.sample();
    m.report.check(
        &format!("{tag}-daemon-takes-the-frozen-workers-leases"),
        !frozen_leases.is_empty() && taken == frozen_leases,
        format!(
            "native held [{}] when frozen; the daemon held each of them during the {:.0}s \
             (all after {:?} ms); at the end: {}",
            short_list(&frozen_leases),
            FROZEN.as_secs_f64(),
            taken_after,
            m.load(),
        ),
    );
    m.report.note(format!(
        "leases the Java leader assigned to the frozen worker while it was frozen (not its own \
         when frozen): [{}]",
        short_list(&given_to_frozen)
    ));
    let java_pids: BTreeSet<u32> = m.sinks[0]
        .events()
        .into_iter()
        .filter(|e| e.ms >= stopped_at)
        .map(|e| e.pid)
        .collect();

    // Thaw it: sample densely while its late writes would land.
    let lines_at_cont = m.sinks[1].line_counts();
    let cont_at = now_ms();
    send(pid, Signal::Cont).unwrap_or_else(|e| panic!("SIGCONT {pid}: {e}"));
    let dense_until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < dense_until {
        m.sample();
        std::thread::sleep(Duration::from_millis(100));
    }
    // Each lease it held when frozen: its first event after SIGCONT is `leaseLost` (local
    // self-expiry fences it before anything else happens to it; a lease the leader gave it
    // back meanwhile is initialized afresh after that).
    let first_after = |m: &Mixed| -> BTreeMap<String, String> {
        let mut first = BTreeMap::new();
        for e in m.sinks[1].events() {
            if e.pid == pid && e.ms >= cont_at && !e.shard.is_empty() {
                first.entry(e.shard.clone()).or_insert(e.kind().to_owned());
            }
        }
        first
    };
    let (ok, took) = m.wait(Duration::from_secs(30), Duration::from_millis(500), |m| {
        let first = first_after(m);
        frozen_leases.iter().all(|s| first.contains_key(s))
    });
    let first = first_after(&m);
    let all_lost_first = frozen_leases
        .iter()
        .all(|s| first.get(s).map(String::as_str) == Some("leaseLost"));
    let native_events_after: Vec<String> = m.sinks[1]
        .events()
        .into_iter()
        .filter(|e| e.pid == pid && e.ms >= cont_at)
        .map(|e| format!("+{}ms {} {}", e.ms - cont_at, short_shard(&e.shard), e.what))
        .collect();
    m.report.check(
        &format!("{tag}-native-delivers-leaseLost-first-for-every-frozen-lease"),
        ok && all_lost_first && !frozen_leases.is_empty(),
        format!(
            "{:.1}s after SIGCONT; its events since: {native_events_after:?}",
            took.as_secs_f64()
        ),
    );

    // No native write landed after the daemon took a lease: from the SIGSTOP on, each taken
    // lease's checkpoint and counter never go back (every holder resumes at the stored
    // checkpoint and checkpoints forward; a late checkpoint of the frozen worker would put
    // it back at its old position, and its renewal would have to reuse an old counter).
    let mut late_writes = Vec::new();
    let mut histories = Vec::new();
    for shard in &taken {
        let history = m.history(shard, stopped_at);
        let Some(first) = history
            .iter()
            .position(|(_, l)| l.owner.as_deref() == Some(java.as_str()))
        else {
            continue;
        };
        let took_ms = history[first].0;
        for pair in history.windows(2) {
            let ((_, before), (ms, seen)) = (&pair[0], &pair[1]);
            if seen.checkpoint.compare(&before.checkpoint) == Ok(std::cmp::Ordering::Less)
                || seen.counter < before.counter
            {
                late_writes.push(format!(
                    "{} at {ms}: checkpoint {} counter {} owner {:?} after checkpoint {} \
                     counter {} owner {:?}",
                    short_shard(shard),
                    seen.checkpoint,
                    seen.counter,
                    seen.owner,
                    before.checkpoint,
                    before.counter,
                    before.owner
                ));
            }
        }
        let after_cont = history.iter().filter(|(ms, _)| *ms >= cont_at).count();
        let owners: Vec<String> = history
            .iter()
            .map(|(_, l)| {
                if l.owner.as_deref() == Some(java.as_str()) {
                    "J"
                } else if l.owner.as_deref() == Some(native.as_str()) {
                    "N"
                } else {
                    "-"
                }
            })
            .fold(Vec::new(), |mut acc, o| {
                if acc.last().map(String::as_str) != Some(o) {
                    acc.push(o.to_owned());
                }
                acc
            });
        histories.push(format!(
            "{}: the daemon's at +{}ms, owners since the SIGSTOP {}, {} samples, {after_cont} \
             after SIGCONT",
            short_shard(shard),
            took_ms - stopped_at,
            owners.join(">"),
            history.len()
        ));
    }
    m.report.check(
        &format!("{tag}-no-write-of-the-frozen-worker-lands-after-the-daemon-took-the-lease"),
        late_writes.is_empty() && histories.len() == taken.len() && !taken.is_empty(),
        format!("{}; {late_writes:?}", histories.join("; ")),
    );

    // The daemon resumed each taken shard exactly where the native worker had checkpointed.
    let mut resumed = Vec::new();
    let mut all_at = !taken.is_empty();
    for shard in &taken {
        let init = m.sinks[0]
            .events()
            .into_iter()
            .filter(|e| e.shard == *shard && e.kind() == "initialize" && e.ms >= stopped_at)
            .min_by_key(|e| e.ms);
        let stored = at_stop.get(shard).map(|l| l.checkpoint.clone());
        let good = match (&init, &stored) {
            (Some(init), Some(stored)) => match init.initialize_position() {
                Some(position) => stored.position() == Some(position),
                None => init.initialize_sentinel().is_some() && stored.position().is_none(),
            },
            _ => false,
        };
        all_at &= good;
        resumed.push(format!(
            "{}: stored {} / daemon {}",
            short_shard(shard),
            stored.map_or("none".to_owned(), |c| c.to_string()),
            init.map_or("no initialize".to_owned(), |e| e.what)
        ));
    }
    m.report.check(
        &format!("{tag}-daemon-resumes-at-the-frozen-workers-checkpoints"),
        all_at,
        resumed.join("; "),
    );

    // What the native worker handled after SIGCONT on the leases it had lost meanwhile (a
    // batch already fetched may reach the processor before the renewer fences the lease).
    let since = m.sinks[1].deliveries_since(&lines_at_cont);
    let late: BTreeMap<String, usize> =
        since
            .iter()
            .filter(|d| taken.contains(&d.shard))
            .fold(BTreeMap::new(), |mut acc, d| {
                *acc.entry(short_shard(&d.shard)).or_insert(0) += 1;
                acc
            });
    m.report.note(format!(
        "records the native worker handled after SIGCONT on the shards taken from it: {late:?}; \
         daemon PIDs since the SIGSTOP: {java_pids:?}"
    ));
    // Keep running a little, both workers alive, then end.
    m.wait(Duration::from_secs(10), Duration::from_millis(500), |_| {
        false
    });
    let result = m.finish(tag, producer, Some((pid, stopped_at, &frozen_leases)));
    m.report.note(format!(
        "duplicates: {} (the frozen worker's batches after its last checkpoint)",
        result.duplicated
    ));
    if m.report.failing() {
        m.print_logs();
    }
    let Mixed { report, .. } = m;
    report.finish(result, "").assert_passed();
}

/// C7 and C8: the native worker as a follower of the Java leader, and graceful handoffs both
/// ways (see the module documentation). Takes about 2.5 minutes.
#[test]
#[ignore = "needs the e2e cache (bash scripts/e2e.sh install), java, node, the built file_sink, native_file_sink and kcl"]
fn mixed_fleet_c7_c8_follower_and_handoffs() {
    let _serial = one_at_a_time();
    let tag = "x7";
    let mut m = Mixed::set_up(
        tag,
        "mixed: native follower of a Java leader, handoffs (C7, C8)",
        &[],
    );
    let producer = m.producer(tag);
    let joined = now_ms();
    m.daemon_then_native(tag);
    let (java, native) = (m.java_id(), m.native_id());
    let pid = m.native_pid();

    // C7: the native worker received its leases by graceful handoff from the leader.
    let handed: BTreeSet<String> = m
        .samples
        .iter()
        .flat_map(|s| s.leases.iter())
        .filter(|(_, l)| {
            l.owner.as_deref() == Some(native.as_str())
                && l.checkpoint_owner.as_deref() == Some(java.as_str())
        })
        .map(|(k, _)| k.clone())
        .collect();
    let first_owned = m.settled_owned_by(&native);
    m.report.check(
        &format!("{tag}-c7-native-receives-leases-by-graceful-handoff"),
        !first_owned.is_empty() && first_owned.iter().all(|s| handed.contains(s)),
        format!(
            "native holds [{}]; seen with leaseOwner=native checkpointOwner=java: [{}]",
            short_list(&first_owned),
            short_list(&handed)
        ),
    );

    // 60 s of balancing with records flowing, most of them (large) into the native
    // worker's shards: the leader moves some of them back to the daemon.
    let heavy_shard = m.heavy_shard_of_two(tag);
    let heavy = HeavyProducer::start(&m.stream, &m.ledger, &format!("{tag}h"), &heavy_shard);
    m.wait(Duration::from_secs(60), Duration::from_millis(500), |_| {
        false
    });
    let put = heavy.stop();
    m.report.check(
        &format!("{tag}-heavy-producer-put-into-a-native-shard"),
        put.as_ref().is_ok_and(|&n| n > 0),
        format!(
            "{put:?} records of 2 KB into [{}]",
            short_list(&heavy_shard)
        ),
    );
    let transfers = m.transfers();
    let described: Vec<String> = transfers
        .iter()
        .map(|(shard, from, to, ms, handoff)| {
            format!(
                "{} {}->{} at +{:.1}s{}",
                short_shard(shard),
                if *from == java { "java" } else { "native" },
                if *to == java { "java" } else { "native" },
                ms.saturating_sub(joined) as f64 / 1000.0,
                if *handoff { " (handoff)" } else { "" }
            )
        })
        .collect();
    // C8: before each transfer the losing side's shutdownRequested ran: every initialize of a
    // shard that another process held comes after that process's shutdownRequested of it.
    let mut events: Vec<Event> = m.sinks.iter().flat_map(Sink::events).collect();
    events.sort_by_key(|e| e.ms);
    let side = |p: u32| if p == pid { "native" } else { "java" };
    let mut holder: BTreeMap<String, (u32, Vec<String>)> = BTreeMap::new();
    let mut handoffs = Vec::new();
    let mut not_graceful = Vec::new();
    for event in events.iter().filter(|e| !e.shard.is_empty()) {
        match event.kind() {
            "initialize" => {
                if let Some((previous, kinds)) = holder.get(&event.shard)
                    && *previous != event.pid
                {
                    let line = format!(
                        "{} {}->{}: {}",
                        short_shard(&event.shard),
                        side(*previous),
                        side(event.pid),
                        kinds.join(">")
                    );
                    if kinds.first().map(String::as_str) == Some("shutdownRequested") {
                        handoffs.push(line);
                    } else {
                        not_graceful.push(line);
                    }
                }
                holder.insert(event.shard.clone(), (event.pid, Vec::new()));
            }
            kind => {
                if let Some((holder_pid, kinds)) = holder.get_mut(&event.shard)
                    && *holder_pid == event.pid
                {
                    kinds.push(kind.to_owned());
                }
            }
        }
    }
    // A handoff each way: seen in a lease-table sample (checkpointOwner set while the lease
    // changes hands), or, when the losing side acknowledged between two samples (the native
    // engine does it within milliseconds), by the sinks: the losing side's shutdownRequested
    // before the winner's initialize.
    let to_native = transfers
        .iter()
        .any(|t| t.1 == java && t.2 == native && t.4)
        || handoffs.iter().any(|line| line.contains(" java->native: "));
    let to_java = transfers
        .iter()
        .any(|t| t.1 == native && t.2 == java && t.4)
        || handoffs.iter().any(|line| line.contains(" native->java: "));
    m.report.check(
        &format!("{tag}-c8-handoffs-java-to-native-and-native-to-java"),
        to_native && to_java,
        format!(
            "{} transfers: {described:?}; after shutdownRequested: {handoffs:?}",
            transfers.len()
        ),
    );
    let lost = m.lost_leases();
    m.report.check(
        &format!("{tag}-c8-losing-side-shutdownRequested-before-each-transfer"),
        !handoffs.is_empty() && not_graceful.is_empty(),
        format!(
            "{} transfers after shutdownRequested ({handoffs:?}); others: {not_graceful:?}; \
             leases lost without a handoff: {:?}",
            handoffs.len(),
            lost.keys().map(|k| short_shard(k)).collect::<Vec<_>>()
        ),
    );

    let result = m.finish(tag, producer, None);
    // file_sink checkpoints on shutdownRequested: a handoff hands over exactly where the
    // losing side stopped, so a record is handled twice only where a lease was lost.
    let lost = m.lost_leases();
    let duplicated = m.duplicated_by_shard();
    let unexplained: Vec<String> = duplicated
        .iter()
        .filter(|(shard, _)| !lost.contains_key(*shard))
        .map(|(shard, n)| format!("{}={n}", short_shard(shard)))
        .collect();
    m.report.check(
        &format!("{tag}-duplicates-only-after-a-lost-lease"),
        unexplained.is_empty(),
        format!(
            "{} duplicates; unexplained: {unexplained:?}; leases lost: {:?}",
            result.duplicated,
            lost.keys().map(|k| short_shard(k)).collect::<Vec<_>>()
        ),
    );
    if m.report.failing() {
        m.print_logs();
    }
    let Mixed { report, .. } = m;
    report.finish(result, "").assert_passed();
}

/// kill -9 of the native worker, then of the daemon (see the module documentation). Takes
/// about 4 minutes: the `Leader` lock's steal alone waits the lock's 120 s.
#[test]
#[ignore = "needs the e2e cache (bash scripts/e2e.sh install), java, node, the built file_sink, native_file_sink and kcl"]
fn full_mixed_fleet_kill_native_then_daemon() {
    let _serial = one_at_a_time();
    let tag = "x9";
    let mut m = Mixed::set_up(
        tag,
        "mixed: kill -9 of the native worker, then of the daemon",
        &[],
    );
    let producer = m.producer(tag);
    m.daemon_then_native(tag);
    let (java, native) = (m.java_id(), m.native_id());

    // kill -9 of the native worker: the daemon takes its leases after they expire.
    m.sample();
    let held = m.settled_owned_by(&native);
    let pid = m.native_pid();
    m.native.kill();
    m.killed_at.insert(pid, now_ms());
    let (ok, took) = m.wait(Duration::from_secs(60), Duration::from_millis(500), |m| {
        m.settled_owned_by(&java).len() == SHARDS as usize
    });
    m.report.check(
        &format!("{tag}-kill-9-native-daemon-takes-every-lease"),
        ok && !held.is_empty(),
        format!(
            "native held [{}]; after {:.1}s: {}",
            short_list(&held),
            took.as_secs_f64(),
            m.load()
        ),
    );

    // It restarts and receives leases again.
    let restarted = now_ms();
    m.native.start().unwrap_or_else(|e| panic!("{e}"));
    let pid = m.native_pid();
    let (ok, took) = m.wait(Duration::from_secs(90), Duration::from_millis(500), |m| {
        let owned = m.settled_owned_by(&native);
        let inits = m.initialized(1, Some(pid), restarted);
        !owned.is_empty() && owned.iter().all(|s| inits.contains(s))
    });
    m.report.check(
        &format!("{tag}-restarted-native-receives-leases"),
        ok,
        format!("after {:.1}s: {}", took.as_secs_f64(), m.load()),
    );

    // kill -9 of the daemon (and its children): the native worker steals the Leader lock
    // after the lock's lease duration and takes every lease.
    let java_pid = m.java_pid();
    let children = m.java.kill();
    let killed = now_ms();
    m.killed_at.insert(java_pid, killed);
    for child in children {
        m.killed_at.insert(child, killed);
    }
    // The daemon's children of the sink not listed (ended meanwhile) are dead too.
    for event in m.sinks[0].events() {
        m.killed_at.entry(event.pid).or_insert(killed);
    }
    let (ok, took) = m.wait(Duration::from_secs(240), Duration::from_secs(1), |m| {
        m.leader().as_deref() == Some(native.as_str())
            && m.settled_owned_by(&native).len() == SHARDS as usize
    });
    m.report.check(
        &format!("{tag}-kill-9-daemon-native-takes-the-lock-and-every-lease"),
        ok,
        format!(
            "after {:.1}s: Leader {:?}, {}",
            took.as_secs_f64(),
            m.leader(),
            m.load()
        ),
    );
    let result = m.finish(tag, producer, None);
    m.report.note(format!(
        "duplicates: {} (each killed worker's batches after its last checkpoint)",
        result.duplicated
    ));
    if m.report.failing() {
        m.print_logs();
    }
    let Mixed { report, .. } = m;
    report.finish(result, "").assert_passed();
}

/// The native worker's `gracefulLeaseHandoffTimeoutMillis` (Java's default, which the
/// properties of these tests keep).
const HANDOFF_TIMEOUT: Duration = Duration::from_secs(30);

/// C8's forced transfer: the native worker's processor blocks 40 s in `shutdownRequested`
/// (file_sink's `KCL_SINK_SHUTDOWN_DELAY_MS`), longer than the 30 s handoff timeout. When
/// the Java leader hands one of its leases to the daemon, the transfer must still happen, 30 s
/// after the handoff began (the lease table shows the daemon's ownership then, not before,
/// not after the hook returned), and the checkpoint the processor writes when its hook
/// returns, 10 s after the transfer, must be refused (its `shutdownCheckpoint refused` event;
/// the lease's checkpoint never goes back). The native worker's file_sink checkpoints each
/// batch one record before its end (`KCL_SINK_CHECKPOINT_LAG=1`), so that checkpoint is a
/// real write. Ledger: lost 0, duplicates reported (the lagged records). The native
/// worker ends with kill -9 (a SIGTERM would block in the same slow hook). Takes about 3
/// minutes.
#[test]
#[ignore = "needs the e2e cache (bash scripts/e2e.sh install), java, node, the built file_sink, native_file_sink and kcl"]
fn mixed_fleet_c8_forced_transfer_after_handoff_timeout() {
    let _serial = one_at_a_time();
    let tag = "x8";
    let mut m = Mixed::set_up(
        tag,
        "mixed: a native processor slower than the handoff timeout (C8 forced transfer)",
        &[(METRICS_EVERY.0, METRICS_EVERY.1)],
    );
    let slow = HANDOFF_TIMEOUT + Duration::from_secs(10);
    m.native
        .set_env("KCL_SINK_SHUTDOWN_DELAY_MS", &slow.as_millis().to_string());
    // Each batch checkpointed one record before its end, so that the slow hook's checkpoint
    // (at the last record handled) is a write: one equal to the stored checkpoint is no
    // write at all and succeeds, as Java's checkpointer skips a value already stored.
    m.native.set_env("KCL_SINK_CHECKPOINT_LAG", "1");
    let producer = m.producer(tag);
    m.daemon_then_native(tag);
    let (java, pid) = (m.java_id(), m.native_pid());

    // The leader's balancing hands a lease of the native worker to the daemon (most of the
    // traffic goes into the native worker's shards).
    let heavy_shard = m.heavy_shard_of_two(tag);
    let heavy = HeavyProducer::start(&m.stream, &m.ledger, &format!("{tag}h"), &heavy_shard);
    let slow_event = |m: &Mixed| {
        m.sinks[1]
            .events()
            .into_iter()
            .find(|e| e.pid == pid && e.what.starts_with("shutdownRequested slow"))
    };
    let (ok, _) = m.wait(Duration::from_secs(120), Duration::from_millis(250), |m| {
        slow_event(m).is_some()
    });
    let Some(begun) = slow_event(&m).filter(|_| ok) else {
        m.report.check(
            &format!("{tag}-leader-hands-a-native-lease-to-the-daemon"),
            false,
            format!("no shutdownRequested in 120 s: {}", m.load()),
        );
        m.print_logs();
        panic!("no handoff from the native worker");
    };
    let shard = begun.shard.clone();
    // The transfer: the lease the daemon's with no handoff pending.
    let (ok, _) = m.wait(Duration::from_secs(60), Duration::from_millis(250), |m| {
        m.settled_owned_by(&java).contains(&shard)
    });
    let transferred = m
        .samples
        .iter()
        .find(|s| {
            s.ms >= begun.ms
                && s.leases.get(&shard).is_some_and(|l| {
                    l.owner.as_deref() == Some(java.as_str()) && l.checkpoint_owner.is_none()
                })
        })
        .map(|s| s.ms);
    let after = transferred.map(|t| t.saturating_sub(begun.ms));
    let in_window = after.is_some_and(|a| {
        a + 500 >= HANDOFF_TIMEOUT.as_millis() as u64 && a < slow.as_millis() as u64
    });
    m.report.check(
        &format!("{tag}-transfer-forced-after-the-handoff-timeout"),
        ok && in_window,
        format!(
            "{}: shutdownRequested at {}, the daemon's (no handoff pending) {after:?} ms later \
             (timeout {} ms, hook {} ms)",
            short_shard(&shard),
            begun.ms,
            HANDOFF_TIMEOUT.as_millis(),
            slow.as_millis()
        ),
    );

    // The hook returns 10 s after the transfer: its checkpoint must be refused.
    let outcome = |m: &Mixed| {
        m.sinks[1]
            .events()
            .into_iter()
            .find(|e| {
                e.pid == pid
                    && e.shard == shard
                    && e.ms >= begun.ms
                    && e.kind() == "shutdownCheckpoint"
            })
            .map(|e| e.what)
    };
    let (ok, _) = m.wait(
        slow + Duration::from_secs(20),
        Duration::from_millis(500),
        |m| outcome(m).is_some(),
    );
    let what = outcome(&m);
    m.report.check(
        &format!("{tag}-late-checkpoint-of-the-slow-hook-refused"),
        ok && what
            .as_deref()
            .is_some_and(|w| w.starts_with("shutdownCheckpoint refused")),
        format!("{}: {what:?}", short_shard(&shard)),
    );
    let lost_after: Vec<String> = m.sinks[1]
        .events()
        .into_iter()
        .filter(|e| e.pid == pid && e.shard == shard && e.ms >= begun.ms)
        .map(|e| e.what)
        .collect();
    m.report.note(format!(
        "the native worker's events of {shard} since: {lost_after:?}"
    ));

    let put = heavy.stop();
    m.report.check(
        &format!("{tag}-heavy-producer-put-into-the-native-shards"),
        put.as_ref().is_ok_and(|&n| n > 0),
        format!("{put:?} records of 2 KB"),
    );
    // kill -9 of the native worker (a SIGTERM would wait in the slow hook of each shard).
    m.native.kill();
    m.killed_at.insert(pid, now_ms());
    let result = m.finish(tag, producer, None);
    m.report.note(format!(
        "duplicates: {} (the killed native worker's batches after its last checkpoint)",
        result.duplicated
    ));
    if m.report.failing() {
        m.print_logs();
    }
    let Mixed { report, .. } = m;
    report.finish(result, "").assert_passed();
}
