//! Issue 16's `kcl daemon --native`: the MultiLangDaemon without Java, running children this
//! project did not write, and sharing its lease table with the real KCL 3.1.3 daemon.
//!
//! - **dn1** (`native_daemon_runs_children_in_any_language`): three applications read one
//!   4-shard stream, each under its own `kcl daemon --native`: examples/file_sink (this SDK),
//!   scripts/e2e/node/kcl_sink.js (written with aws-kcl, the daemon's Node client; it writes
//!   file_sink's sink format), amazon_kclpy's own sample processor (`sample_kclpy_app.py`,
//!   unchanged) and the README's examples/word_count. The two sinks are judged by the ledger
//!   (lost 0), the sample and word_count by their checkpoints (they write no sink: each lease's
//!   checkpoint reaches its shard's last record, which they checkpoint only after handling every
//!   record before it, and stays there after SIGTERM). Each child is a process of its
//!   own (one PID per shard); SIGTERM: `shutdownRequested` to every child, exit 0 within the
//!   grace, every lease released, no child left running.
//! - **dn2** (`native_daemon_and_java_daemon_resume_each_other`): one application, file_sink
//!   children: the Java daemon handles a first wave and stops (SIGTERM); `kcl daemon --native`
//!   resumes it (each `initialize` at the Java checkpoint), handles a second wave and stops; the
//!   Java daemon resumes that (each `initialize` at the native checkpoint) and handles a third.
//!   Lost 0; duplicates reported (none expected: every stop is graceful).
//!
//! `#[ignore]`d: they need the installed cache (emulators, jars, aws-kcl), java, node and the
//! built example and tool (`bash scripts/e2e.sh rust native_daemon` runs them):
//!
//! ```text
//! bash scripts/e2e.sh install && cargo build -p kcl-cli && cargo build --example file_sink
//! cargo test -p kcl-e2e --test daemon_native -- --ignored --nocapture
//! ```

mod common;

use common::spec;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kcl_e2e::leases::{checkpoint_detail, short_shard};
use kcl_e2e::poll::{now_ms, poll};
use kcl_e2e::scenario::{names, wait_initialized};
use kcl_e2e::{LeaseTable, Ledger, Processor, Report, Signal, Sink, Stream, Worker, tally};

const REQUIRES: &str = "needs the e2e cache (bash scripts/e2e.sh install), java and node, and \
                        `cargo build -p kcl-cli && cargo build --example file_sink`; run with \
                        --ignored";

/// The stream's shards.
const SHARDS: i32 = 4;

/// SIGTERM, then the checks every graceful stop must pass: `shutdownRequested` before the
/// exit (when the child writes a sink), no child left; `kcl daemon --native` exits 0 within
/// the grace and releases every lease, the Java daemon exits 143 (the JVM's answer to SIGTERM)
/// and leaves its leases to expire.
fn stop_and_check(
    report: &mut Report,
    tag: &str,
    worker: &mut Worker,
    table: &LeaseTable,
    sink: Option<&Sink>,
    shards: &BTreeSet<String>,
) {
    let native = matches!(worker, Worker::Daemon(daemon) if daemon.is_native());
    let before = worker.children();
    let sent = now_ms();
    let grace = worker.grace();
    let stopped = worker
        .stop(Signal::Term, grace + Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    report.check(
        &format!("{tag}-sigterm-exits-within-grace"),
        stopped.ended
            && stopped.code == Some(if native { 0 } else { Signal::Term.exit_code() })
            && stopped.took < grace,
        format!(
            "exit={:?} after {:.1}s (grace {:.0}s), {} children before",
            stopped.code,
            stopped.took.as_secs_f64(),
            grace.as_secs_f64(),
            before.len()
        ),
    );
    let left: Vec<u32> = poll(
        Duration::from_secs(10),
        Duration::from_millis(200),
        || {
            before
                .iter()
                .copied()
                .filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
                .collect::<Vec<u32>>()
        },
        Vec::is_empty,
    );
    report.check(
        &format!("{tag}-no-child-left-running"),
        left.is_empty() && before.len() == shards.len(),
        format!(
            "{} children (one per shard) before SIGTERM, still running after: {left:?}",
            before.len()
        ),
    );
    if let Some(sink) = sink {
        let requested: BTreeSet<String> = sink
            .events()
            .into_iter()
            .filter(|e| e.ms >= sent && e.kind() == "shutdownRequested")
            .map(|e| e.shard)
            .collect();
        report.check(
            &format!("{tag}-shutdownRequested-to-every-child"),
            shards.iter().all(|s| requested.contains(s)),
            format!("{} of {} shards", requested.len(), shards.len()),
        );
    }
    if native {
        let leases = table.leases().unwrap_or_default();
        report.check(
            &format!("{tag}-every-lease-released"),
            leases.len() == shards.len() && leases.values().all(|l| l.lease_owner.is_none()),
            format!("unowned: {:?}", table.unowned().unwrap_or_default()),
        );
    }
}

/// Whether the child of `kind` writes file_sink's sink (the others are judged by their
/// checkpoints).
fn writes_sink(kind: &str) -> bool {
    kind == "rust" || kind == "node"
}

/// dn1: see the module documentation.
#[test]
#[ignore = "needs the e2e cache (bash scripts/e2e.sh install), java, node, the built file_sink and kcl"]
fn native_daemon_runs_children_in_any_language() {
    let mut report = Report::begin(
        "dn1",
        "kcl daemon --native: file_sink, aws-kcl, amazon_kclpy and word_count children",
    );
    let (settings, emulators) = common::setup(&mut report);
    let (stream_name, app) = names(&settings, "dn1");
    let stream = Stream::create(&emulators, &stream_name, SHARDS).unwrap_or_else(|e| panic!("{e}"));
    let ledger = Ledger::new();
    stream
        .put_records(&ledger, "dn1", 0, 2_000)
        .unwrap_or_else(|e| panic!("{e}"));
    let shards = ledger.shards();
    let env = Processor::env(&settings).unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let kinds = [
        (
            "rust",
            Processor::file_sink(&settings).unwrap_or_else(|e| panic!("{e} ({REQUIRES})")),
        ),
        (
            "node",
            Processor::node_sink(&settings).unwrap_or_else(|e| panic!("{e} ({REQUIRES})")),
        ),
        (
            "kclpy",
            Processor::kclpy_sample(&settings).unwrap_or_else(|e| panic!("{e} ({REQUIRES})")),
        ),
        (
            "word_count",
            Processor {
                binary: settings
                    .example("word_count")
                    .unwrap_or_else(|e| panic!("{e} ({REQUIRES})")),
                args: Vec::new(),
            },
        ),
    ];
    let mut workers = Vec::new();
    for (kind, processor) in kinds {
        let app = format!("{app}-{kind}");
        let mut spec = spec(&app, &stream_name, &format!("dn1-{kind}"), processor);
        if kind == "kclpy" {
            // The sample checkpoints from processRecords at most every 30 s: empty batches
            // keep it called once the records are read.
            spec.extra_properties.push((
                "callProcessRecordsEvenForEmptyRecordList".to_owned(),
                "true".to_owned(),
            ));
        }
        let mut worker = Worker::native_daemon(&settings, &emulators, spec)
            .unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
        for (key, value) in &env {
            worker.set_env(key, value);
        }
        worker.start().unwrap_or_else(|e| panic!("{e}"));
        let table = LeaseTable::new(&emulators, &app);
        workers.push((kind, worker, table));
    }

    let started = now_ms();
    for (kind, worker, _) in &workers {
        if !writes_sink(kind) {
            continue;
        }
        let sink = worker.sink();
        let inits = wait_initialized(&sink, &shards, started - 60_000, Duration::from_secs(90));
        let pids: BTreeSet<u32> = inits.values().map(|e| e.pid).collect();
        report.check(
            &format!("dn1-{kind}-one-child-process-per-shard-at-trim-horizon"),
            inits.len() == shards.len()
                && pids.len() == shards.len()
                && inits
                    .values()
                    .all(|e| e.initialize_sentinel() == Some("TrimHorizon")),
            format!(
                "{} shards initialized, {} distinct PIDs: {}",
                inits.len(),
                pids.len(),
                inits
                    .iter()
                    .map(|(s, e)| format!("{}:{}", short_shard(s), e.what))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        );
        let result = poll(
            Duration::from_secs(120),
            Duration::from_millis(500),
            || tally(&ledger, &[&sink], false),
            |t| t.lost == 0,
        );
        report.check(
            &format!("dn1-{kind}-every-record-handled"),
            result.lost == 0 && result.unknown == 0,
            result.line(),
        );
        report.note(format!("dn1-{kind}: duplicates {}", result.duplicated));
    }
    let expected = ledger.last_by_shard();
    for (kind, worker, table) in &mut workers {
        {
            let wait = if *kind == "kclpy" { 120 } else { 30 };
            let (at_last, seen) = table.wait_checkpoints(&expected, Duration::from_secs(wait));
            report.check(
                &format!("dn1-{kind}-checkpoint-at-last-record"),
                at_last,
                checkpoint_detail(&expected, &seen),
            );
        }
        let sink = worker.sink();
        let sink = writes_sink(kind).then_some(&sink);
        stop_and_check(
            &mut report,
            &format!("dn1-{kind}"),
            worker,
            table,
            sink,
            &shards,
        );
        if !writes_sink(kind) {
            // Both checkpoint what they handled at shutdownRequested.
            let (at_last, seen) = table.wait_checkpoints(&expected, Duration::from_secs(5));
            report.check(
                &format!("dn1-{kind}-checkpoints-every-shard-at-its-last-record-after-sigterm"),
                at_last,
                checkpoint_detail(&expected, &seen),
            );
        }
    }
    let sinks: Vec<Sink> = workers
        .iter()
        .filter(|(kind, _, _)| writes_sink(kind))
        .map(|(_, w, _)| w.sink())
        .collect();
    let result = tally(&ledger, &[&sinks[0]], false);
    if report.failing() {
        for (_, worker, _) in &workers {
            worker.print_log_tail(40);
        }
    }
    report
        .finish(result, "four kinds of children under kcl daemon --native")
        .assert_passed();
}

/// dn2: see the module documentation.
#[test]
#[ignore = "needs the e2e cache (bash scripts/e2e.sh install), java, node, the built file_sink and kcl"]
fn native_daemon_and_java_daemon_resume_each_other() {
    let mut report = Report::begin("dn2", "Java daemon → kcl daemon --native → Java daemon");
    let (settings, emulators) = common::setup(&mut report);
    let (stream_name, app) = names(&settings, "dn2");
    let stream = Stream::create(&emulators, &stream_name, SHARDS).unwrap_or_else(|e| panic!("{e}"));
    let ledger = Ledger::new();
    let table = LeaseTable::new(&emulators, &app);
    let processor = Processor::file_sink(&settings).unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let java = || {
        Worker::daemon(
            &settings,
            &emulators,
            spec(&app, &stream_name, "dn2-java", processor.clone()),
        )
        .unwrap_or_else(|e| panic!("{e} ({REQUIRES})"))
    };
    let mut first_java = java();
    let mut native = Worker::native_daemon(
        &settings,
        &emulators,
        spec(&app, &stream_name, "dn2-native", processor.clone()),
    )
    .unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let java_sink = first_java.sink();
    let native_sink = native.sink();
    let sinks = [&java_sink, &native_sink];

    let mut wave = |tag: &str, worker: &mut Worker, start: u64| {
        let before: BTreeMap<String, kcl_protocol::ExtendedSequenceNumber> =
            table.checkpoints().unwrap_or_default();
        stream
            .put_records(&ledger, "dn2", start, 500)
            .unwrap_or_else(|e| panic!("{e}"));
        let shards = ledger.shards();
        let sink = worker.sink();
        let since = now_ms();
        worker.start().unwrap_or_else(|e| panic!("{e}"));
        let inits = wait_initialized(&sink, &shards, since, Duration::from_secs(120));
        // Each initialize carries the checkpoint the other engine stored (none at first).
        let resumed = inits.iter().all(|(shard, event)| match before.get(shard) {
            None => event.initialize_sentinel() == Some("TrimHorizon"),
            Some(checkpoint) => event.initialize_position().is_some_and(|p| {
                p.sequence_number().as_str() == checkpoint.sequence_number()
                    && i64::try_from(p.sub_sequence_number()).ok()
                        == Some(checkpoint.sub_sequence_number())
            }),
        });
        report.check(
            &format!("dn2-{tag}-initialize-at-the-stored-checkpoints"),
            inits.len() == shards.len() && resumed,
            inits
                .iter()
                .map(|(s, e)| format!("{}:{}", short_shard(s), e.what))
                .collect::<Vec<_>>()
                .join(" "),
        );
        let result = poll(
            Duration::from_secs(120),
            Duration::from_millis(500),
            || tally(&ledger, &sinks, false),
            |t| t.lost == 0,
        );
        report.check(
            &format!("dn2-{tag}-every-record-so-far-handled"),
            result.lost == 0,
            result.line(),
        );
        let expected = ledger.last_by_shard();
        let (at_last, seen) = table.wait_checkpoints(&expected, Duration::from_secs(30));
        report.check(
            &format!("dn2-{tag}-checkpoint-at-last-record"),
            at_last,
            checkpoint_detail(&expected, &seen),
        );
        stop_and_check(
            &mut report,
            &format!("dn2-{tag}"),
            worker,
            &table,
            Some(&sink),
            &shards,
        );
    };
    wave("java", &mut first_java, 0);
    wave("native", &mut native, 500);
    let mut second_java = java();
    wave("java-again", &mut second_java, 1_000);
    if report.failing() {
        first_java.print_log_tail(40);
        native.print_log_tail(40);
        second_java.print_log_tail(40);
    }
    let result = tally(&ledger, &[&java_sink, &native_sink], false);
    report.check("dn2-ledger-lost-0", result.lost == 0, result.line());
    report.note(format!(
        "duplicates: {} (every stop was graceful: none expected)",
        result.duplicated
    ));
    report
        .finish(result, "Java ⇄ native daemon on one lease table")
        .assert_passed();
}
