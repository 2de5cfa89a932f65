//! The MultiLangDaemon scenarios on the Rust harness (the Python suite's, moved here one by
//! one). `#[ignore]`d: they need the installed cache, java, node and the built sinks and tool;
//! CI runs them (scripts/e2e.sh), and a missing prerequisite fails them with what to run:
//!
//! ```text
//! bash scripts/e2e.sh install && cargo build -p kcl-cli && cargo build --example file_sink
//! cargo test -p kcl-e2e --test daemon -- --ignored --nocapture
//! ```

use std::collections::BTreeSet;
use std::time::Duration;

use kcl_e2e::leases::{checkpoint_detail, short_shard};
use kcl_e2e::poll::{now_ms, poll};
use kcl_e2e::scenario::{exited_zero, lifecycles, names, wait_initialized};
use kcl_e2e::{
    Emulators, LeaseTable, Ledger, Processor, Report, Settings, Signal, Stream, Worker, WorkerSpec,
    procfs, tally,
};

const REQUIRES: &str = "needs the e2e cache (bash scripts/e2e.sh install), java and node, and \
                        `cargo build -p kcl-cli && cargo build --example file_sink`; run with --ignored";

/// How many records scenario 1 puts (as basic.py).
const FIRST_BATCH: u64 = 1000;

/// The Python suite's scenario 1 (scripts/e2e/basic.py), ended as its scenario 2 ends a worker:
/// 1000 records across a 2-shard stream, the daemon with a file_sink child per shard; every
/// record handled once, each lease's checkpoint at its shard's last record and owned by the
/// worker, no checkpoint ever past an unwritten record; then SIGTERM: the daemon exits 143
/// within its grace period, each child gets `shutdownRequested` then `leaseLost` and exits 0,
/// nothing is left running, the checkpoints stay at the last records, and the ledger loses
/// nothing.
#[test]
#[ignore = "needs the e2e cache (bash scripts/e2e.sh install), java, node, the built file_sink and kcl"]
fn records_across_two_shards_handled_and_checkpointed_then_sigterm() {
    let settings = Settings::from_env().unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let processor = Processor::file_sink(&settings).unwrap_or_else(|e| panic!("{e}"));
    println!(
        "kcl end-to-end harness (Rust): run folder {}",
        settings.run_dir.display()
    );
    let emulators = Emulators::start(&settings).unwrap_or_else(|e| panic!("{e}"));
    let mut report = Report::begin("1", "records across 2 shards, checkpoints, SIGTERM");
    match emulators.loopback_only() {
        Ok(detail) => report.check("setup-emulators-on-loopback-only", true, detail),
        Err(error) => report.check("setup-emulators-on-loopback-only", false, error.message()),
    };

    let (stream_name, app) = names(&settings, "1");
    let stream = Stream::create(&emulators, &stream_name, 2).unwrap_or_else(|e| panic!("{e}"));
    let ledger = Ledger::new();
    stream
        .put_records(&ledger, "s1", 0, FIRST_BATCH)
        .unwrap_or_else(|e| panic!("{e}"));
    let per_shard: Vec<String> = ledger
        .per_shard()
        .iter()
        .map(|(shard, n)| format!("{}={n}", short_shard(shard)))
        .collect();
    report.check(
        "s1-records-put",
        ledger.len() == FIRST_BATCH as usize && ledger.shards().len() == 2,
        format!("{} records into {}", ledger.len(), per_shard.join(", ")),
    );

    let spec = WorkerSpec {
        application: app.clone(),
        stream: stream_name.clone(),
        worker_id: "s1-worker-1".to_owned(),
        folder: "s1/s1-worker-1".into(),
        processor,
        extra_properties: Vec::new(),
    };
    let mut worker = Worker::daemon(&settings, &emulators, spec).unwrap_or_else(|e| panic!("{e}"));
    let out = worker.sink();
    let table = LeaseTable::new(&emulators, &app);
    let started = now_ms();
    worker.start().unwrap_or_else(|e| panic!("{e}"));

    // A new application waits a random 1-30 s before its first lease assignment.
    let shards = ledger.shards();
    let inits = wait_initialized(&out, &shards, started, Duration::from_secs(150));
    let first = inits.values().map(|e| e.ms).min().unwrap_or(started);
    report.check(
        "s1-initialize-at-trim-horizon",
        inits.len() == 2
            && inits
                .values()
                .all(|e| e.initialize_sentinel() == Some("TrimHorizon")),
        format!(
            "{} children, first initialize {:.1}s after start",
            inits.len(),
            (first.saturating_sub(started)) as f64 / 1000.0
        ),
    );
    // The checkpoint audit samples the table while the records are handled.
    let mut samples = 0;
    let mut violations = Vec::new();
    let result = poll(
        Duration::from_secs(90),
        Duration::from_millis(500),
        || {
            samples += 1;
            if let Ok(found) = table.audit(&ledger, &[&out]) {
                violations.extend(found);
            }
            tally(&ledger, &[&out], false)
        },
        |t| t.lost == 0,
    );
    report.check(
        "s1-every-record-handled",
        result.lost == 0 && result.unknown == 0,
        result.line(),
    );
    report.check(
        "s1-no-duplicates",
        result.duplicated == 0,
        format!("duplicated={}", result.duplicated),
    );
    let expected = ledger.last_by_shard();
    let (at_last, seen) = table.wait_checkpoints(&expected, Duration::from_secs(20));
    let owners = table.owners().unwrap_or_default();
    let owned = expected
        .keys()
        .all(|s| owners.get(s).and_then(|o| o.as_deref()) == Some(worker.worker_id()));
    let owner_names: BTreeSet<String> = owners
        .values()
        .map(|o| o.clone().unwrap_or_else(|| "-".into()))
        .collect();
    report.check(
        "s1-checkpoint-is-last-sequence-number",
        at_last && owned,
        format!(
            "{} owners={owner_names:?}",
            checkpoint_detail(&expected, &seen)
        ),
    );

    // SIGTERM: the graceful shutdown (the Python suite's scenario 2 and sigterm_clean).
    poll(
        Duration::from_secs(30),
        Duration::from_millis(250),
        || worker.children().len(),
        |&n| n >= 2,
    );
    let sent = now_ms();
    let grace = worker.grace();
    let stopped = worker
        .stop(Signal::Term, grace + Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    let kids = stopped.children.clone();
    let left = poll(
        Duration::from_secs(15),
        Duration::from_millis(100),
        || {
            kids.iter()
                .copied()
                .filter(|&p| procfs::alive(p))
                .collect::<Vec<u32>>()
        },
        Vec::is_empty,
    );
    let sequences = lifecycles(&out, &kids, sent);
    let expected_sequence = ["shutdownRequested", "leaseLost", "exit 0"];
    report.check(
        "s1-sigterm-shutdownRequested-then-leaseLost-then-exit-0",
        kids.len() == 2 && sequences.values().all(|s| *s == expected_sequence),
        sequences
            .iter()
            .map(|(pid, s)| format!("{pid}:{}", s.join(">")))
            .collect::<Vec<_>>()
            .join(" "),
    );
    let exits = exited_zero(&out, &kids, sent);
    report.check(
        "s1-sigterm-daemon-exits-143-within-grace",
        stopped.ended && stopped.code == Some(Signal::Term.exit_code()) && stopped.took < grace,
        format!(
            "exit={:?} after {:.1}s (grace {:.0}s) children={} exited-0={}{}",
            stopped.code,
            stopped.took.as_secs_f64(),
            grace.as_secs_f64(),
            kids.len(),
            exits.len(),
            if left.is_empty() {
                String::new()
            } else {
                format!(" still-running={left:?}")
            }
        ),
    );
    report.check(
        "s1-sigterm-no-child-left-running",
        left.is_empty() && exits.len() == kids.len(),
        format!("children={kids:?}"),
    );
    let (still_at_last, seen) = table.wait_checkpoints(&expected, Duration::from_secs(10));
    report.check(
        "s1-checkpoints-stored-after-sigterm",
        still_at_last,
        checkpoint_detail(&expected, &seen),
    );
    if let Ok(found) = table.audit(&ledger, &[&out]) {
        violations.extend(found);
    }
    report.check(
        "s1-checkpoints-never-pass-unwritten-records",
        violations.is_empty(),
        format!(
            "{} lease-table samples{}",
            samples + 1,
            violations
                .first()
                .map(|v| format!(
                    "; first: {} at {} misses {:?}",
                    v.shard, v.checkpoint, v.missing
                ))
                .unwrap_or_default()
        ),
    );
    report.note(format!(
        "after SIGTERM: owned by {}: {:?}, unowned: {:?} (KCL 3.1.3 does not release leases on shutdown)",
        worker.worker_id(),
        table.owned_by(worker.worker_id()).unwrap_or_default(),
        table.unowned().unwrap_or_default()
    ));
    for line in table.describe().unwrap_or_default() {
        report.note(line);
    }

    let result = tally(&ledger, &[&out], false);
    report.check("s1-ledger-lost-0", result.lost == 0, result.line());
    if report.failing() {
        worker.print_log_tail(40);
        emulators.print_logs(20);
    }
    report.finish(result, "").assert_passed();
}
