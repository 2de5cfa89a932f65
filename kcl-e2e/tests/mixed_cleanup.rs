//! Issue 16, compatibility behaviour C17 of the native-engine research: the native engine never
//! deletes or rewrites what a Java worker owns, and keeps working while the Java daemon's
//! `LeaseCleanupManager` deletes finished parent leases.
//!
//! **mx1** (`full_mixed_fleet_survives_the_cleanup_of_finished_parents`, about 7 minutes): the
//! daemon and a native worker on one application, a producer throughout. Shard 0 is split
//! once both hold leases; the parent's lease ends at `SHARD_END` and both children are
//! processed. The run goes on past the cleanup interval (5 min at 3.1.3, which no multilang key
//! shortens; the native engine's own cleanup runs as often): the finished parent lease is
//! deleted, by one of them, once both children checkpointed past `TRIM_HORIZON`. Judged by the
//! lease table (the parent's lease is gone; every lease row left decodes; no lease of an open
//! shard was ever deleted: sampled every second) and the ledger (lost 0). Named `full_*`: CI's
//! reduced set skips it.
//!
//! ```text
//! bash scripts/e2e.sh install && cargo build -p kcl-cli && cargo build --example file_sink
//! cargo build --example native_file_sink --features native
//! cargo test -p kcl-e2e --test mixed_cleanup -- --ignored --nocapture
//! ```

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kcl_e2e::poll::poll;
use kcl_e2e::producer::Producer;
use kcl_e2e::scenario::names;
use kcl_e2e::{
    LeaseTable, Ledger, Processor, Report, Signal, Sink, Stream, Worker, WorkerSpec, tally,
};

const REQUIRES: &str = "needs the e2e cache (bash scripts/e2e.sh install), java and node, and \
                        `cargo build -p kcl-cli && cargo build --example file_sink && cargo build \
                        --example native_file_sink --features native`; run with --ignored";

const SHARDS: i32 = 2;
const PARENT: &str = "shardId-000000000000";

/// mx1: see the module documentation.
#[test]
#[ignore = "about 7 minutes; needs the e2e cache (bash scripts/e2e.sh install), java, node, the built file_sink, native_file_sink and kcl"]
fn full_mixed_fleet_survives_the_cleanup_of_finished_parents() {
    let mut report = Report::begin(
        "mx1",
        "daemon + native: finished parents cleaned up, nothing else deleted",
    );
    let (settings, emulators) = common::setup(&mut report);
    let (stream_name, app) = names(&settings, "mx1");
    let stream = Stream::create(&emulators, &stream_name, SHARDS).unwrap_or_else(|e| panic!("{e}"));
    let ledger = Ledger::new();
    let processor = Processor::file_sink(&settings).unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let spec = |id: &str| WorkerSpec {
        application: app.clone(),
        stream: stream_name.clone(),
        worker_id: id.to_owned(),
        folder: format!("mx1/{id}").into(),
        processor: processor.clone(),
        extra_properties: Vec::new(),
    };
    let mut java = Worker::daemon(&settings, &emulators, spec("mx1-java"))
        .unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let mut native = Worker::native(&settings, &emulators, spec("mx1-native"))
        .unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let sinks: Vec<Sink> = vec![java.sink(), native.sink()];
    let sink_refs: Vec<&Sink> = sinks.iter().collect();
    let table = LeaseTable::new(&emulators, &app);
    let producer = Producer::start(
        &stream,
        &ledger,
        "mx1",
        0,
        10,
        Duration::from_millis(500),
        false,
    );
    java.start().unwrap_or_else(|e| panic!("{e}"));
    native.start().unwrap_or_else(|e| panic!("{e}"));
    let owners = poll(
        Duration::from_secs(120),
        Duration::from_secs(1),
        || table.owners().unwrap_or_default(),
        |owners| {
            ["mx1-java", "mx1-native"]
                .iter()
                .all(|id| owners.values().any(|o| o.as_deref() == Some(*id)))
        },
    );
    report.check(
        "mx1-both-hold-leases",
        ["mx1-java", "mx1-native"]
            .iter()
            .all(|id| owners.values().any(|o| o.as_deref() == Some(*id))),
        format!("{owners:?}"),
    );
    let split = stream.split_in_half(PARENT);
    let split_at = Instant::now();
    report.check("mx1-split-shard-0", split.is_ok(), format!("{split:?}"));
    let children: BTreeSet<String> = stream
        .children_of(PARENT)
        .unwrap_or_default()
        .into_iter()
        .collect();

    // Sample the table every second until the parent's lease is gone: which leases were ever
    // seen, and whether a lease of a shard still open ever disappeared.
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut vanished_open: BTreeSet<String> = BTreeSet::new();
    let mut parent_end_seen = false;
    let mut undecodable = 0;
    let deadline = Instant::now() + Duration::from_secs(480);
    let mut parent_gone_after = None;
    while Instant::now() < deadline {
        match table.leases() {
            Ok(leases) => {
                let keys: BTreeSet<String> = leases.keys().cloned().collect();
                for key in seen.difference(&keys) {
                    if key != PARENT {
                        vanished_open.insert(key.clone());
                    }
                }
                if leases
                    .get(PARENT)
                    .is_some_and(|l| l.checkpoint.is_shard_end())
                {
                    parent_end_seen = true;
                }
                if parent_end_seen && !keys.contains(PARENT) {
                    parent_gone_after = Some(split_at.elapsed());
                    break;
                }
                seen.extend(keys);
            }
            Err(_) => undecodable += 1,
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    report.check(
        "mx1-parent-finished-then-deleted-once-its-children-started",
        parent_end_seen && parent_gone_after.is_some(),
        format!(
            "parent at SHARD_END seen: {parent_end_seen}; deleted {:?} after the split; children {children:?}",
            parent_gone_after.map(|d| format!("{:.0}s", d.as_secs_f64()))
        ),
    );
    report.check(
        "mx1-no-other-lease-ever-deleted-and-every-row-decodes",
        vanished_open.is_empty() && undecodable == 0,
        format!("vanished: {vanished_open:?}; unreadable samples: {undecodable}"),
    );

    let produced = producer.stop();
    report.check(
        "mx1-producer-put-throughout",
        produced.is_ok(),
        format!("{produced:?}; ledger {}", ledger.len()),
    );
    let result = poll(
        Duration::from_secs(120),
        Duration::from_secs(1),
        || tally(&ledger, &sink_refs, false),
        |t| t.lost == 0,
    );
    report.check(
        "mx1-every-record-handled-after-the-cleanup",
        result.lost == 0 && result.unknown == 0,
        result.line(),
    );
    for line in table.describe().unwrap_or_default() {
        report.note(line);
    }
    let _ = native.stop(Signal::Term, native.grace() + Duration::from_secs(20));
    let _ = java.stop(Signal::Term, java.grace() + Duration::from_secs(20));
    let result = tally(&ledger, &sink_refs, false);
    report.check("mx1-ledger-lost-0", result.lost == 0, result.line());
    if report.failing() {
        java.print_log_tail(40);
        native.print_log_tail(40);
    }
    report
        .finish(result, "finished parents cleaned up in a mixed fleet")
        .assert_passed();
}
