//! Issue 16, compatibility behaviour C11 of the native-engine research: leadership in a mixed
//! fleet. A native worker leads (the `Leader` lock of the CoordinatorState table) and its lease
//! assignment serves a Java follower; then leadership fails over in both directions.
//!
//! **ml1** (`full_mixed_leader_failover_both_ways`, about 8 minutes: each failover waits the
//! lock's 120 s lease): a producer puts records throughout.
//!
//! 1. The native worker starts alone on a new application: it takes the lock, creates the
//!    leases and holds all four.
//! 2. The real daemon (KCL 3.1.3) joins as a follower: the native leader's assignment gives it
//!    leases (graceful handoffs from the native worker), two each.
//! 3. kill -9 of the native worker (the leader): the daemon steals the lock once its lease ran
//!    out and takes every lease.
//! 4. The native worker restarts and follows the Java leader: it is given leases again.
//! 5. kill -9 of the daemon (now the leader): the native worker steals the lock and takes every
//!    lease.
//!
//! Judged by the lease table (the lock's owner, each lease's owner) and the ledger: lost 0,
//! duplicates reported (each kill -9 may have a batch handled again). Named `full_*`: CI's
//! reduced set skips it (`bash scripts/e2e.sh rust --skip full_`); `bash scripts/e2e.sh rust`
//! runs everything.
//!
//! ```text
//! bash scripts/e2e.sh install && cargo build -p kcl-cli && cargo build --example file_sink
//! cargo build --example native_file_sink --features native
//! cargo test -p kcl-e2e --test mixed_leader -- --ignored --nocapture
//! ```

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kcl_e2e::poll::poll;
use kcl_e2e::producer::Producer;
use kcl_e2e::scenario::names;
use kcl_e2e::{LeaseTable, Ledger, Processor, Report, Signal, Stream, Worker, WorkerSpec, tally};

const REQUIRES: &str = "needs the e2e cache (bash scripts/e2e.sh install), java and node, and \
                        `cargo build -p kcl-cli && cargo build --example file_sink && cargo build \
                        --example native_file_sink --features native`; run with --ignored";

const SHARDS: i32 = 4;

/// The lock's lease (120 s, no property sets it), a heartbeat period and margin.
const LOCK_STEAL: Duration = Duration::from_secs(300);

fn count_by_owner(table: &LeaseTable) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for owner in table.owners().unwrap_or_default().into_values().flatten() {
        *counts.entry(owner).or_insert(0) += 1;
    }
    counts
}

fn leader(state: &LeaseTable) -> Option<String> {
    state
        .coordinator_item("Leader")
        .ok()
        .flatten()
        .and_then(|item| {
            item.get("ownerName")
                .and_then(|v| v.as_s())
                .map(str::to_owned)
        })
}

/// Waits until `wanted` holds of the (leader, lease counts); what was seen last and when.
fn wait_for(
    table: &LeaseTable,
    state: &LeaseTable,
    deadline: Duration,
    wanted: impl Fn(&Option<String>, &BTreeMap<String, usize>) -> bool,
) -> (Option<String>, BTreeMap<String, usize>, Duration) {
    let started = Instant::now();
    let (leader, counts) = poll(
        deadline,
        Duration::from_secs(1),
        || (leader(state), count_by_owner(table)),
        |(l, c)| wanted(l, c),
    );
    (leader, counts, started.elapsed())
}

/// ml1: see the module documentation.
#[test]
#[ignore = "about 8 minutes; needs the e2e cache (bash scripts/e2e.sh install), java, node, the built file_sink, native_file_sink and kcl"]
fn full_mixed_leader_failover_both_ways() {
    let mut report = Report::begin(
        "ml1",
        "native leader serves a Java follower; failover both ways",
    );
    let (settings, emulators) = common::setup(&mut report);
    let (stream_name, app) = names(&settings, "ml1");
    let stream = Stream::create(&emulators, &stream_name, SHARDS).unwrap_or_else(|e| panic!("{e}"));
    let ledger = Ledger::new();
    let processor = Processor::file_sink(&settings).unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let spec = |id: &str| WorkerSpec {
        application: app.clone(),
        stream: stream_name.clone(),
        worker_id: id.to_owned(),
        folder: format!("ml1/{id}").into(),
        processor: processor.clone(),
        extra_properties: Vec::new(),
    };
    let (n_id, j_id) = ("ml1-native", "ml1-java");
    let mut native = Worker::native(&settings, &emulators, spec(n_id))
        .unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let mut java = Worker::daemon(&settings, &emulators, spec(j_id))
        .unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let sinks = [native.sink(), java.sink()];
    let sink_refs: Vec<&kcl_e2e::Sink> = sinks.iter().collect();
    let table = LeaseTable::new(&emulators, &app);
    let state = LeaseTable::coordinator_state(&emulators, &app);
    let producer = Producer::start(
        &stream,
        &ledger,
        "ml1",
        0,
        10,
        Duration::from_millis(500),
        false,
    );
    let all = SHARDS as usize;
    let describe = |l: &Option<String>, c: &BTreeMap<String, usize>, t: Duration| {
        format!("Leader {l:?}, leases {c:?}, after {:.0}s", t.as_secs_f64())
    };

    // 1. The native worker alone: the lock and every lease.
    native.start().unwrap_or_else(|e| panic!("{e}"));
    let (l, c, t) = wait_for(&table, &state, Duration::from_secs(90), |l, c| {
        l.as_deref() == Some(n_id) && c.get(n_id) == Some(&all)
    });
    report.check(
        "ml1-native-leads-and-holds-every-lease",
        l.as_deref() == Some(n_id) && c.get(n_id) == Some(&all),
        describe(&l, &c, t),
    );

    // 2. The daemon joins: the native leader assigns it leases.
    java.start().unwrap_or_else(|e| panic!("{e}"));
    let (l, c, t) = wait_for(&table, &state, Duration::from_secs(150), |l, c| {
        l.as_deref() == Some(n_id) && c.get(j_id) == Some(&2) && c.get(n_id) == Some(&2)
    });
    report.check(
        "ml1-native-leader-assigns-the-java-follower-half",
        l.as_deref() == Some(n_id) && c.get(j_id) == Some(&2) && c.get(n_id) == Some(&2),
        describe(&l, &c, t),
    );

    // 3. kill -9 of the native leader: the daemon steals the lock and takes everything.
    native.kill();
    let (l, c, t) = wait_for(&table, &state, LOCK_STEAL, |l, c| {
        l.as_deref() == Some(j_id) && c.get(j_id) == Some(&all)
    });
    report.check(
        "ml1-java-steals-the-lock-from-a-killed-native-leader-and-takes-every-lease",
        l.as_deref() == Some(j_id) && c.get(j_id) == Some(&all),
        describe(&l, &c, t),
    );

    // 4. The native worker restarts and follows the Java leader.
    native.start().unwrap_or_else(|e| panic!("{e}"));
    let (l, c, t) = wait_for(&table, &state, Duration::from_secs(150), |l, c| {
        l.as_deref() == Some(j_id) && c.get(n_id).is_some_and(|&n| n >= 1)
    });
    report.check(
        "ml1-java-leader-assigns-the-restarted-native-follower",
        l.as_deref() == Some(j_id) && c.get(n_id).is_some_and(|&n| n >= 1),
        describe(&l, &c, t),
    );

    // 5. kill -9 of the Java leader: the native worker steals the lock and takes everything.
    java.kill();
    let (l, c, t) = wait_for(&table, &state, LOCK_STEAL, |l, c| {
        l.as_deref() == Some(n_id) && c.get(n_id) == Some(&all)
    });
    report.check(
        "ml1-native-steals-the-lock-from-a-killed-java-leader-and-takes-every-lease",
        l.as_deref() == Some(n_id) && c.get(n_id) == Some(&all),
        describe(&l, &c, t),
    );

    let produced = producer.stop();
    report.check(
        "ml1-producer-put-throughout",
        produced.is_ok(),
        format!("{produced:?}; ledger {}", ledger.len()),
    );
    let result = poll(
        Duration::from_secs(120),
        Duration::from_millis(500),
        || tally(&ledger, &sink_refs, false),
        |t| t.lost == 0,
    );
    report.check(
        "ml1-every-record-handled",
        result.lost == 0 && result.unknown == 0,
        result.line(),
    );
    report.note(format!(
        "duplicates: {} (each kill -9 may leave a batch handled and not checkpointed)",
        result.duplicated
    ));
    let grace = native.grace();
    let stopped = native
        .stop(Signal::Term, grace + Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    report.check(
        "ml1-native-sigterm-exits-0-and-releases-the-lock",
        stopped.ended && stopped.code == Some(0) && leader(&state).is_none(),
        format!(
            "exit={:?} after {:.1}s; Leader {:?}",
            stopped.code,
            stopped.took.as_secs_f64(),
            leader(&state)
        ),
    );
    for line in table.describe().unwrap_or_default() {
        report.note(line);
    }
    let result = tally(&ledger, &sink_refs, false);
    report.check("ml1-ledger-lost-0", result.lost == 0, result.line());
    if report.failing() {
        native.print_log_tail(40);
        java.print_log_tail(40);
    }
    report
        .finish(result, "leadership both ways in a mixed fleet")
        .assert_passed();
}
