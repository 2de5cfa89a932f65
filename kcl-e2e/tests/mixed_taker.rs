//! Issue 16, compatibility behaviour C13 of the native-engine research: a native worker as a
//! **KCL 2.x lease taker** beside the real KCL 3.1.3 daemon running in its 2.x-compatible mode
//! (`clientVersionConfig = CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X`), on one application.
//!
//! **mt1** (`native_taker_beside_java_in_2x_compatible_mode`): the daemon starts first on a
//! new application (it writes `Migration3.0` with `cv = CLIENT_VERSION_UPGRADE_FROM_2X` and
//! takes all four leases); a producer puts records throughout; the native worker joins, reads
//! the 2.x client version and takes part as a 2.x taker (it steals, as the Java taker does).
//! Judged: both workers end up holding leases and the split converges (two each, stable for
//! 20 s); the native worker never writes a WorkerMetricStats row (a 2.x worker has none), so
//! the daemon's migration monitor, which flips the table to 3.x only once every lease owner has
//! an active row, leaves `cv` at `CLIENT_VERSION_UPGRADE_FROM_2X` (checked at the end of the
//! run); ledger lost 0 (duplicates are reported: a 2.x steal lets the old owner finish its
//! batch before it sees the loss, Java to Java as well); SIGTERM: the native worker exits 0
//! and releases its leases.
//!
//! `#[ignore]`d: it needs the installed cache, java, node and the built examples and tool:
//!
//! ```text
//! bash scripts/e2e.sh install && cargo build -p kcl-cli && cargo build --example file_sink
//! cargo build --example native_file_sink --features native
//! cargo test -p kcl-e2e --test mixed_taker -- --ignored --nocapture
//! ```

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kcl_e2e::leases::short_shard;
use kcl_e2e::poll::poll;
use kcl_e2e::producer::Producer;
use kcl_e2e::scenario::names;
use kcl_e2e::{LeaseTable, Ledger, Processor, Report, Signal, Stream, Worker, WorkerSpec, tally};

const REQUIRES: &str = "needs the e2e cache (bash scripts/e2e.sh install), java and node, and \
                        `cargo build -p kcl-cli && cargo build --example file_sink && cargo build \
                        --example native_file_sink --features native`; run with --ignored";

const SHARDS: i32 = 4;

/// The 2.x-compatible mode, in both workers' properties.
const COMPATIBLE_WITH_2X: (&str, &str) = (
    "clientVersionConfig",
    "CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X",
);

fn count_by_owner(table: &LeaseTable) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for owner in table.owners().unwrap_or_default().into_values().flatten() {
        *counts.entry(owner).or_insert(0) += 1;
    }
    counts
}

fn client_version(state: &LeaseTable) -> Option<String> {
    state
        .coordinator_item("Migration3.0")
        .ok()
        .flatten()
        .and_then(|item| item.get("cv").and_then(|v| v.as_s()).map(str::to_owned))
}

/// mt1: see the module documentation.
#[test]
#[ignore = "needs the e2e cache (bash scripts/e2e.sh install), java, node, the built file_sink, native_file_sink and kcl"]
fn native_taker_beside_java_in_2x_compatible_mode() {
    let mut report = Report::begin(
        "mt1",
        "native 2.x taker beside the daemon in 2.x-compatible mode",
    );
    let (settings, emulators) = common::setup(&mut report);
    let (stream_name, app) = names(&settings, "mt1");
    let stream = Stream::create(&emulators, &stream_name, SHARDS).unwrap_or_else(|e| panic!("{e}"));
    let ledger = Ledger::new();
    let processor = Processor::file_sink(&settings).unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let spec = |id: &str| WorkerSpec {
        application: app.clone(),
        stream: stream_name.clone(),
        worker_id: id.to_owned(),
        folder: format!("mt1/{id}").into(),
        processor: processor.clone(),
        extra_properties: vec![(
            COMPATIBLE_WITH_2X.0.to_owned(),
            COMPATIBLE_WITH_2X.1.to_owned(),
        )],
    };
    let mut java = Worker::daemon(&settings, &emulators, spec("mt1-java"))
        .unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let mut native = Worker::native(&settings, &emulators, spec("mt1-native"))
        .unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let sinks = [java.sink(), native.sink()];
    let table = LeaseTable::new(&emulators, &app);
    let state = LeaseTable::coordinator_state(&emulators, &app);
    let metrics = LeaseTable::new(&emulators, &format!("{app}-WorkerMetricStats"));

    let producer = Producer::start(
        &stream,
        &ledger,
        "mt1",
        0,
        20,
        Duration::from_millis(500),
        false,
    );
    java.start().unwrap_or_else(|e| panic!("{e}"));
    let counts = poll(
        Duration::from_secs(120),
        Duration::from_millis(500),
        || count_by_owner(&table),
        |c| c.get("mt1-java") == Some(&(SHARDS as usize)),
    );
    let cv = client_version(&state);
    report.check(
        "mt1-daemon-alone-takes-every-lease-in-2x-compatible-mode",
        counts.get("mt1-java") == Some(&(SHARDS as usize))
            && cv.as_deref() == Some("CLIENT_VERSION_UPGRADE_FROM_2X"),
        format!("owners {counts:?}; Migration3.0 cv={cv:?}"),
    );

    native.start().unwrap_or_else(|e| panic!("{e}"));
    let joined = Instant::now();
    // Converged: two leases each, and no lease changed owner in the last 20 s.
    let mut last_owners = table.owners().unwrap_or_default();
    let mut stable_since = Instant::now();
    let mut changes = 0;
    let converged = poll(
        Duration::from_secs(150),
        Duration::from_millis(500),
        || {
            let owners = table.owners().unwrap_or_default();
            if owners != last_owners {
                changes += owners
                    .iter()
                    .filter(|(k, v)| last_owners.get(*k) != Some(*v))
                    .count();
                last_owners = owners.clone();
                stable_since = Instant::now();
            }
            let counts = count_by_owner(&table);
            (counts, stable_since.elapsed())
        },
        |(counts, stable)| {
            counts.get("mt1-java") == Some(&2)
                && counts.get("mt1-native") == Some(&2)
                && *stable >= Duration::from_secs(20)
        },
    );
    report.check(
        "mt1-leases-split-two-each-and-stable-20s",
        converged.0.get("mt1-java") == Some(&2)
            && converged.0.get("mt1-native") == Some(&2)
            && converged.1 >= Duration::from_secs(20),
        format!(
            "owners {:?}, unchanged for {:.0}s, {:.0}s after the native worker started; {changes} lease owner changes meanwhile; leases: {}",
            converged.0,
            converged.1.as_secs_f64(),
            joined.elapsed().as_secs_f64(),
            last_owners
                .iter()
                .map(|(k, v)| format!("{}@{}", short_shard(k), v.as_deref().unwrap_or("-")))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    );
    let rows: Vec<String> = metrics
        .items()
        .unwrap_or_default()
        .iter()
        .filter_map(|item| item.get("wid").and_then(|v| v.as_s()).map(str::to_owned))
        .collect();
    report.check(
        "mt1-native-taker-writes-no-worker-metrics-row",
        !rows.iter().any(|w| w == "mt1-native"),
        format!(
            "WorkerMetricStats rows: {rows:?} (the daemon's own row shows the table is written)"
        ),
    );

    let produced = producer.stop();
    report.check(
        "mt1-producer-put-throughout",
        produced.is_ok(),
        format!("{produced:?}; ledger {}", ledger.len()),
    );
    let sink_refs: Vec<&kcl_e2e::Sink> = sinks.iter().collect();
    let result = poll(
        Duration::from_secs(120),
        Duration::from_millis(500),
        || tally(&ledger, &sink_refs, false),
        |t| t.lost == 0,
    );
    report.check(
        "mt1-every-record-handled",
        result.lost == 0 && result.unknown == 0,
        result.line(),
    );
    report.note(format!(
        "duplicates: {} (a 2.x steal lets the old owner finish a batch before it sees the loss)",
        result.duplicated
    ));
    let cv = client_version(&state);
    report.check(
        "mt1-client-version-stays-2x-compatible",
        cv.as_deref() == Some("CLIENT_VERSION_UPGRADE_FROM_2X"),
        format!(
            "Migration3.0 cv={cv:?} after {:.0}s with the native taker holding leases",
            joined.elapsed().as_secs_f64()
        ),
    );

    let grace = native.grace();
    let stopped = native
        .stop(Signal::Term, grace + Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    let held = table.owned_by("mt1-native").unwrap_or_default();
    report.check(
        "mt1-native-sigterm-exits-0-and-releases-its-leases",
        stopped.ended && stopped.code == Some(0) && held.is_empty(),
        format!(
            "exit={:?} after {:.1}s; still owned by it: {held:?}",
            stopped.code,
            stopped.took.as_secs_f64()
        ),
    );
    let _ = java.stop(Signal::Term, java.grace() + Duration::from_secs(20));
    let result = tally(&ledger, &sink_refs, false);
    report.check("mt1-ledger-lost-0", result.lost == 0, result.line());
    if report.failing() {
        java.print_log_tail(40);
        native.print_log_tail(40);
    }
    report
        .finish(result, "2.x taker beside Java in 2.x-compatible mode")
        .assert_passed();
}
