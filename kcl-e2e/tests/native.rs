//! The native (Java-free) engine's scenarios on the Rust harness (issue 15): the same streams,
//! ledger, sink and lease-table audits as the daemon's scenarios, with the worker run by
//! examples/native_file_sink from the properties file the daemon would get. `#[ignore]`d: they
//! need the installed cache, node and the built example and tool; CI runs them
//! (scripts/e2e.sh), and a missing prerequisite fails them with what to run:
//!
//! ```text
//! bash scripts/e2e.sh install && cargo build -p kcl-cli && cargo build --example file_sink
//! cargo build --example native_file_sink --features native
//! cargo test -p kcl-e2e --test native -- --ignored --nocapture
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kcl_e2e::leases::{checkpoint_detail, short_shard};
use kcl_e2e::poll::{now_ms, poll};
use kcl_e2e::scenario::{names, wait_initialized};
use kcl_e2e::{
    Emulators, LeaseTable, Ledger, Processor, Report, Settings, Signal, Stream, Worker, WorkerSpec,
    tally,
};

const REQUIRES: &str = "needs the e2e cache (bash scripts/e2e.sh install) and node, and \
                        `cargo build -p kcl-cli && cargo build --example file_sink && cargo build \
                        --example native_file_sink --features native`; run with --ignored";

/// How many records scenario 1 of issue 15 puts.
const RECORDS: u64 = 10_000;

/// How many shards its stream has.
const SHARDS: i32 = 4;

/// Seconds with a tenth, from `from` to `to` (epoch milliseconds).
fn secs(from: u64, to: u64) -> String {
    format!("{:.1}s", to.saturating_sub(from) as f64 / 1000.0)
}

/// Issue 15's scenario 1: one native worker, 10,000 records across a 4-shard stream. The lone
/// worker leads (the `Leader` lock), creates the leases at TRIM_HORIZON, assigns them to itself
/// and handles every record (ledger: lost 0; duplicates reported), each lease's checkpoint at
/// its shard's last record and owned by the worker, no checkpoint ever past an unwritten
/// record. Then SIGTERM: every shard gets `shutdownRequested`, the engine exits 0 within its
/// grace, the checkpoints stay at the last records, every lease is released (no owner, counter
/// raised), the `Leader` lock item is gone and `Migration3.0` says `CLIENT_VERSION_3X`. Prints
/// the times from start to the first initialize, the first record and the last record handled.
#[test]
#[ignore = "needs the e2e cache (bash scripts/e2e.sh install), node, the built native_file_sink and kcl"]
fn native_worker_handles_four_shards_then_sigterm_releases_everything() {
    let settings = Settings::from_env().unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    // What the properties file's executableName names (the daemon's child): the file is the
    // daemon's; the native engine ignores that key.
    let processor = Processor::file_sink(&settings).unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    println!(
        "kcl end-to-end harness (Rust), native engine: run folder {}",
        settings.run_dir.display()
    );
    let emulators = Emulators::start(&settings).unwrap_or_else(|e| panic!("{e}"));
    let mut report = Report::begin("1n", "native: 10k records, 4 shards, SIGTERM");
    match emulators.loopback_only() {
        Ok(detail) => report.check("setup-emulators-on-loopback-only", true, detail),
        Err(error) => report.check("setup-emulators-on-loopback-only", false, error.message()),
    };

    let (stream_name, app) = names(&settings, "n1");
    let stream = Stream::create(&emulators, &stream_name, SHARDS).unwrap_or_else(|e| panic!("{e}"));
    let ledger = Ledger::new();
    let put_started = Instant::now();
    stream
        .put_records(&ledger, "n1", 0, RECORDS)
        .unwrap_or_else(|e| panic!("{e}"));
    let per_shard: Vec<String> = ledger
        .per_shard()
        .iter()
        .map(|(shard, n)| format!("{}={n}", short_shard(shard)))
        .collect();
    report.check(
        "n1-records-put",
        ledger.len() == RECORDS as usize && ledger.shards().len() == SHARDS as usize,
        format!(
            "{} records into {} in {:.1}s",
            ledger.len(),
            per_shard.join(", "),
            put_started.elapsed().as_secs_f64()
        ),
    );

    let spec = WorkerSpec {
        application: app.clone(),
        stream: stream_name.clone(),
        worker_id: "n1-worker-1".to_owned(),
        folder: "n1/n1-worker-1".into(),
        processor,
        extra_properties: Vec::new(),
    };
    let mut worker =
        Worker::native(&settings, &emulators, spec).unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let out = worker.sink();
    let table = LeaseTable::new(&emulators, &app);
    let state = LeaseTable::coordinator_state(&emulators, &app);
    let started = now_ms();
    worker.start().unwrap_or_else(|e| panic!("{e}"));
    let pid = match &worker {
        Worker::Native(native) => native.pid().unwrap_or(0),
        Worker::Daemon(_) => unreachable!("a native worker"),
    };

    // The first record handled: polled finely, for the performance table.
    let first_record = poll(
        Duration::from_secs(120),
        Duration::from_millis(25),
        || {
            let n: usize = out.line_counts().values().sum();
            (n, now_ms())
        },
        |&(n, _)| n > 0,
    );
    let shards = ledger.shards();
    let inits = wait_initialized(&out, &shards, started, Duration::from_secs(60));
    let first_init = inits.values().map(|e| e.ms).min().unwrap_or(started);
    report.check(
        "n1-initialize-at-trim-horizon-in-one-process",
        inits.len() == SHARDS as usize
            && inits
                .values()
                .all(|e| e.initialize_sentinel() == Some("TrimHorizon") && e.pid == pid),
        format!(
            "{} shards initialized by PID {pid}, first {} after start",
            inits.len(),
            secs(started, first_init)
        ),
    );

    // The checkpoint audit samples the table while the records are handled.
    let mut samples = 0;
    let mut violations = Vec::new();
    let result = poll(
        Duration::from_secs(180),
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
    let all_handled = now_ms();
    report.check(
        "n1-every-record-handled",
        result.lost == 0 && result.unknown == 0,
        result.line(),
    );
    report.note(format!(
        "duplicates: {} (a lone worker that never restarts should have none)",
        result.duplicated
    ));
    let expected = ledger.last_by_shard();
    let (at_last, seen) = table.wait_checkpoints(&expected, Duration::from_secs(20));
    let owned = table.owned_by(worker.worker_id()).unwrap_or_default();
    report.check(
        "n1-checkpoint-is-last-sequence-number-owned-by-the-worker",
        at_last && expected.keys().all(|s| owned.contains(s)),
        format!(
            "{} owned by {}: {}",
            checkpoint_detail(&expected, &seen),
            worker.worker_id(),
            owned.len()
        ),
    );
    let leader = state.coordinator_item("Leader").unwrap_or_default();
    report.check(
        "n1-worker-holds-the-leader-lock",
        leader
            .as_ref()
            .and_then(|item| item.get("ownerName"))
            .and_then(|v| v.as_s())
            == Some(worker.worker_id()),
        format!(
            "Leader ownerName={:?}",
            leader
                .as_ref()
                .and_then(|item| item.get("ownerName"))
                .and_then(|v| v.as_s())
        ),
    );
    let counters_before: BTreeMap<String, u64> = table
        .leases()
        .unwrap_or_default()
        .into_iter()
        .map(|(key, lease)| (key, lease.lease_counter))
        .collect();

    // SIGTERM: shutdownRequested to every shard (final checkpoints), the leases and the lock
    // released, exit 0.
    let sent = now_ms();
    let grace = worker.grace();
    let stopped = worker
        .stop(Signal::Term, grace + Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    report.check(
        "n1-sigterm-exits-0-within-grace",
        stopped.ended && stopped.code == Some(0) && stopped.took < grace,
        format!(
            "exit={:?} after {:.1}s (grace {:.0}s)",
            stopped.code,
            stopped.took.as_secs_f64(),
            grace.as_secs_f64()
        ),
    );
    let events: Vec<_> = out
        .events()
        .into_iter()
        .filter(|e| e.ms >= sent && e.pid == pid)
        .collect();
    let requested: Vec<&str> = events
        .iter()
        .filter(|e| e.kind() == "shutdownRequested")
        .map(|e| e.shard.as_str())
        .collect();
    let exit_last = events.last().is_some_and(|e| e.what == "exit 0");
    report.check(
        "n1-sigterm-shutdownRequested-on-every-shard-then-exit-0",
        shards.iter().all(|s| requested.contains(&s.as_str())) && exit_last,
        events
            .iter()
            .map(|e| {
                if e.shard.is_empty() {
                    e.what.clone()
                } else {
                    format!("{}:{}", short_shard(&e.shard), e.kind())
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
    );
    let (still_at_last, seen) = table.wait_checkpoints(&expected, Duration::from_secs(10));
    report.check(
        "n1-checkpoints-stored-after-sigterm",
        still_at_last,
        checkpoint_detail(&expected, &seen),
    );
    let leases = table.leases().unwrap_or_default();
    let released = leases.len() == SHARDS as usize
        && leases.values().all(|l| {
            l.lease_owner.is_none()
                && counters_before
                    .get(&l.lease_key)
                    .is_some_and(|&before| l.lease_counter > before)
        });
    report.check(
        "n1-sigterm-every-lease-released",
        released,
        format!(
            "unowned: {:?}; owned by {}: {:?}",
            table.unowned().unwrap_or_default(),
            worker.worker_id(),
            table.owned_by(worker.worker_id()).unwrap_or_default()
        ),
    );
    let leader_after = state.coordinator_item("Leader").unwrap_or_default();
    report.check(
        "n1-sigterm-leader-lock-released",
        leader_after.is_none(),
        format!("Leader item: {leader_after:?}"),
    );
    let migration = state.coordinator_item("Migration3.0").unwrap_or_default();
    let cv = migration
        .as_ref()
        .and_then(|item| item.get("cv"))
        .and_then(|v| v.as_s())
        .map(str::to_owned);
    report.check(
        "n1-migration-is-client-version-3x",
        cv.as_deref() == Some("CLIENT_VERSION_3X"),
        format!("Migration3.0 cv={cv:?}"),
    );
    if let Ok(found) = table.audit(&ledger, &[&out]) {
        violations.extend(found);
    }
    report.check(
        "n1-checkpoints-never-pass-unwritten-records",
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
    for line in table.describe().unwrap_or_default() {
        report.note(line);
    }
    report.note(format!(
        "times from start: first initialize {}, first record handled {}, all {RECORDS} handled {}; \
         SIGTERM to exit {:.1}s",
        secs(started, first_init),
        secs(started, first_record.1),
        secs(started, all_handled),
        stopped.took.as_secs_f64()
    ));

    let result = tally(&ledger, &[&out], false);
    report.check("n1-ledger-lost-0", result.lost == 0, result.line());
    if report.failing() {
        worker.print_log_tail(60);
        emulators.print_logs(20);
    }
    report
        .finish(
            result,
            &format!("first record {}", secs(started, first_record.1)),
        )
        .assert_passed();
}
