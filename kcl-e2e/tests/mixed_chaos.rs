//! Issue 16's mixed-fleet scenario: one real KCL 3.1.3 daemon (file_sink children) and two
//! native workers (native_file_sink) on ONE application for five minutes, a producer putting
//! records throughout, a split in the middle, and kill -9 of each kind of worker in turn.
//!
//! **mc1** (`full_mixed_fleet_kill_each_kind_and_split`, about 6 minutes):
//!
//! 1. The daemon starts, then the two native workers: the leases spread over all three.
//! 2. SplitShard of shard 0 while running (the children start after their parent ends).
//! 3. kill -9 of a native worker: the other two hold every lease; it restarts.
//! 4. kill -9 of the daemon and its children: the native workers hold every lease; it
//!    restarts.
//! 5. kill -9 of the other native worker: the others hold every lease; it restarts.
//! 6. The run goes on to five minutes; the producer stops; every record is handled.
//!
//! Judged by data: the ledger (lost 0; duplicates reported: each kill -9 may leave a batch
//! handled and not checkpointed), a checkpoint audit sampling the lease table every second (no
//! stored checkpoint ever passes a record that is in no sink), and after each kill the lease
//! table (every lease of an open shard held by a live worker). Named `full_*`: CI's reduced set
//! skips it (`bash scripts/e2e.sh rust --skip full_`); `bash scripts/e2e.sh rust` runs it.
//!
//! ```text
//! bash scripts/e2e.sh install && cargo build -p kcl-cli && cargo build --example file_sink
//! cargo build --example native_file_sink --features native
//! cargo test -p kcl-e2e --test mixed_chaos -- --ignored --nocapture
//! ```

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kcl_e2e::audit::CheckpointAudit;
use kcl_e2e::poll::poll;
use kcl_e2e::producer::Producer;
use kcl_e2e::scenario::names;
use kcl_e2e::{
    LeaseTable, Ledger, Processor, Report, Signal, Sink, Stream, Worker, WorkerSpec, tally,
};

const REQUIRES: &str = "needs the e2e cache (bash scripts/e2e.sh install), java and node, and \
                        `cargo build -p kcl-cli && cargo build --example file_sink && cargo build \
                        --example native_file_sink --features native`; run with --ignored";

const SHARDS: i32 = 4;

/// How long the whole run lasts, from the first start to the producer's stop.
const RUN: Duration = Duration::from_secs(300);

/// How long the survivors may take to hold a killed worker's leases: the failover time (3 s),
/// assignment runs, and, when the leader was killed, the lock's 120 s lease.
const TAKEOVER: Duration = Duration::from_secs(200);

/// The owners of the leases of shards still open, or finished with records not yet all
/// handled: `{lease: owner}`.
fn live_owners(table: &LeaseTable, stream: &Stream) -> BTreeMap<String, Option<String>> {
    let open: BTreeSet<String> = stream
        .open_shards()
        .map(|shards| shards.into_keys().collect())
        .unwrap_or_default();
    table
        .leases()
        .unwrap_or_default()
        .into_iter()
        .filter(|(key, lease)| open.contains(key) && !lease.checkpoint.is_shard_end())
        .map(|(key, lease)| (key, lease.lease_owner))
        .collect()
}

/// Whether every live lease is held by one of `alive`.
fn held_by(owners: &BTreeMap<String, Option<String>>, alive: &[&str]) -> bool {
    !owners.is_empty()
        && owners
            .values()
            .all(|owner| owner.as_deref().is_some_and(|o| alive.contains(&o)))
}

fn describe(owners: &BTreeMap<String, Option<String>>) -> String {
    owners
        .iter()
        .map(|(k, v)| {
            format!(
                "{}@{}",
                kcl_e2e::leases::short_shard(k),
                v.as_deref().unwrap_or("-")
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// mc1: see the module documentation.
#[test]
#[ignore = "about 6 minutes; needs the e2e cache (bash scripts/e2e.sh install), java, node, the built file_sink, native_file_sink and kcl"]
fn full_mixed_fleet_kill_each_kind_and_split() {
    let mut report = Report::begin(
        "mc1",
        "1 daemon + 2 native workers, 5 min: split, kill -9 of each kind",
    );
    let (settings, emulators) = common::setup(&mut report);
    let (stream_name, app) = names(&settings, "mc1");
    let stream = Stream::create(&emulators, &stream_name, SHARDS).unwrap_or_else(|e| panic!("{e}"));
    let ledger = Ledger::new();
    let processor = Processor::file_sink(&settings).unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let spec = |id: &str| WorkerSpec {
        application: app.clone(),
        stream: stream_name.clone(),
        worker_id: id.to_owned(),
        folder: format!("mc1/{id}").into(),
        processor: processor.clone(),
        extra_properties: Vec::new(),
    };
    let ids = ["mc1-java", "mc1-native-a", "mc1-native-b"];
    let mut workers: Vec<Worker> = vec![
        Worker::daemon(&settings, &emulators, spec(ids[0])),
        Worker::native(&settings, &emulators, spec(ids[1])),
        Worker::native(&settings, &emulators, spec(ids[2])),
    ]
    .into_iter()
    .map(|w| w.unwrap_or_else(|e| panic!("{e} ({REQUIRES})")))
    .collect();
    let sinks: Vec<Sink> = workers.iter().map(Worker::sink).collect();
    let sink_refs: Vec<&Sink> = sinks.iter().collect();
    let table = LeaseTable::new(&emulators, &app);
    let started = Instant::now();
    let producer = Producer::start(
        &stream,
        &ledger,
        "mc1",
        0,
        10,
        Duration::from_millis(500),
        false,
    );
    let audit = CheckpointAudit::start(&table, &ledger, &sink_refs);

    // 1. The daemon, then the native workers: the leases spread over all three.
    for worker in &mut workers {
        worker.start().unwrap_or_else(|e| panic!("{e}"));
    }
    let owners = poll(
        Duration::from_secs(150),
        Duration::from_secs(1),
        || live_owners(&table, &stream),
        |owners| {
            ids.iter()
                .all(|id| owners.values().any(|o| o.as_deref() == Some(*id)))
        },
    );
    report.check(
        "mc1-leases-spread-over-the-daemon-and-both-native-workers",
        ids.iter()
            .all(|id| owners.values().any(|o| o.as_deref() == Some(*id))),
        format!(
            "{} after {:.0}s",
            describe(&owners),
            started.elapsed().as_secs_f64()
        ),
    );

    // 2. A split while running.
    let split = stream.split_in_half("shardId-000000000000");
    report.check(
        "mc1-split-shard-0-while-running",
        split.is_ok(),
        format!("{split:?} at {:.0}s", started.elapsed().as_secs_f64()),
    );

    // 3-5. kill -9 of each kind in turn; the others take its leases; it restarts.
    for (victim, tag) in [(1, "native-a"), (0, "daemon"), (2, "native-b")] {
        std::thread::sleep(Duration::from_secs(20));
        let children = workers[victim].kill();
        let killed_at = Instant::now();
        let alive: Vec<&str> = (0..ids.len())
            .filter(|&i| i != victim)
            .map(|i| ids[i])
            .collect();
        let owners = poll(
            TAKEOVER,
            Duration::from_secs(1),
            || live_owners(&table, &stream),
            |owners| held_by(owners, &alive),
        );
        report.check(
            &format!("mc1-kill-9-{tag}-others-hold-every-lease"),
            held_by(&owners, &alive),
            format!(
                "{} {:.0}s after the kill ({} children killed with it)",
                describe(&owners),
                killed_at.elapsed().as_secs_f64(),
                children.len()
            ),
        );
        workers[victim]
            .start()
            .unwrap_or_else(|e| panic!("restarting {}: {e}", ids[victim]));
    }

    // 6. On to five minutes, then every record.
    if let Some(left) = RUN.checked_sub(started.elapsed()) {
        std::thread::sleep(left);
    }
    let produced = producer.stop();
    report.check(
        "mc1-producer-put-throughout",
        produced.is_ok(),
        format!(
            "{produced:?}; ledger {} over {:.0}s",
            ledger.len(),
            started.elapsed().as_secs_f64()
        ),
    );
    let result = poll(
        Duration::from_secs(240),
        Duration::from_secs(1),
        || tally(&ledger, &sink_refs, false),
        |t| t.lost == 0,
    );
    report.check(
        "mc1-every-record-handled",
        result.lost == 0 && result.unknown == 0,
        result.line(),
    );
    report.note(format!(
        "duplicates: {} (three kill -9: each may leave a batch handled and not checkpointed)",
        result.duplicated
    ));
    let audited = audit.stop();
    audited.check(&mut report, "mc1-checkpoints-never-pass-unwritten-records");
    for line in table.describe().unwrap_or_default() {
        report.note(line);
    }
    for (i, worker) in workers.iter_mut().enumerate() {
        let grace = worker.grace();
        let stopped = worker.stop(Signal::Term, grace + Duration::from_secs(20));
        report.note(format!("{}: SIGTERM: {stopped:?}", ids[i]));
    }
    let result = tally(&ledger, &sink_refs, false);
    report.check("mc1-ledger-lost-0", result.lost == 0, result.line());
    if report.failing() {
        for worker in &workers {
            worker.print_log_tail(40);
        }
    }
    report
        .finish(result, "mixed fleet: split and kill -9 of each kind")
        .assert_passed();
}
