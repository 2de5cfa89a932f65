//! Issue 15's scenarios 3 and 4: the native engine and the real KCL 3.1.3 MultiLangDaemon on
//! one application. Scenario 3 migrates an application daemon → native → daemon, with the
//! checkpoints inside KPL aggregates; scenario 4 has the daemon join an application the native
//! engine created, and compares the tables and the `Migration3.0` item with those the daemon
//! creates itself. Both capture the daemon's own items and check they survive kcl-lease's codec
//! (decode, then encode) unchanged. `#[ignore]`d: they need the installed cache, java, node and
//! the built examples and tool; CI runs them (scripts/e2e.sh), and a missing prerequisite fails
//! them with what to run:
//!
//! ```text
//! bash scripts/e2e.sh install && cargo build -p kcl-cli && cargo build --example file_sink
//! cargo build --example native_file_sink --features native
//! cargo test -p kcl-e2e --test migration -- --ignored --nocapture
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use kcl_e2e::leases::{checkpoint_detail, short_shard};
use kcl_e2e::poll::{now_ms, poll};
use kcl_e2e::scenario::{names, wait_handled, wait_initialized};
use kcl_e2e::sink::Event;
use kcl_e2e::{
    Emulators, LeaseTable, Ledger, Processor, Report, Settings, Signal, Sink, Stream, Worker,
    WorkerSpec, tally,
};
use kcl_lease::{
    AttributeValue, Decoded, Item, LockItem, MigrationState, WorkerMetricStats, decode, encode,
    item_to_json,
};
use kcl_protocol::{ExtendedSequenceNumber, Position};

const REQUIRES: &str = "needs the e2e cache (bash scripts/e2e.sh install), java and node, and \
                        `cargo build -p kcl-cli && cargo build --example file_sink && cargo build \
                        --example native_file_sink --features native`; run with --ignored";

/// The scenarios of this file run one at a time (each starts one or two JVMs and a native
/// engine: together they would slow each other on a small machine).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Waits for the other scenario of this file to end (a failed one leaves the lock poisoned).
fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

/// file_sink's setting that checkpoints each batch one record before its last and not on
/// `shutdownRequested`: with aggregates last in each shard, the stored checkpoint lies inside
/// the last aggregate.
const LAG: &str = "KCL_SINK_CHECKPOINT_LAG";

/// Seconds with a tenth, from `from` to `to` (epoch milliseconds).
fn secs(from: u64, to: u64) -> String {
    format!("{:.1}s", to.saturating_sub(from) as f64 / 1000.0)
}

fn spec(app: &str, stream: &str, id: &str, processor: &Processor) -> WorkerSpec {
    WorkerSpec {
        application: app.to_owned(),
        stream: stream.to_owned(),
        worker_id: id.to_owned(),
        folder: id.into(),
        processor: processor.clone(),
        extra_properties: Vec::new(),
    }
}

/// The second-to-last position put into each shard: where a lag-1 file_sink's checkpoint ends
/// once it handled everything.
fn second_to_last(ledger: &Ledger) -> BTreeMap<String, Position> {
    let mut by_shard: BTreeMap<String, Vec<Position>> = BTreeMap::new();
    for put in ledger.snapshot().into_values() {
        by_shard.entry(put.shard).or_default().push(put.position);
    }
    by_shard
        .into_iter()
        .filter_map(|(shard, mut positions)| {
            positions.sort();
            let n = positions.len();
            (n >= 2).then(|| (shard, positions[n - 2].clone()))
        })
        .collect()
}

/// Whether `position` is inside an aggregate of the ledger with a later user record (the same
/// sequence number, a greater sub-sequence number).
fn inside_aggregate(ledger: &Ledger, shard: &str, position: &Position) -> bool {
    ledger.snapshot().values().any(|p| {
        p.shard == shard
            && p.position.sequence_number() == position.sequence_number()
            && p.position.sub_sequence_number() > position.sub_sequence_number()
    })
}

/// The records of the ledger after `from` and up to `to` in each shard (what the next engine
/// handles again after a lagged checkpoint).
fn between(
    ledger: &Ledger,
    from: &BTreeMap<String, ExtendedSequenceNumber>,
    to: &BTreeMap<String, Position>,
) -> usize {
    ledger
        .snapshot()
        .values()
        .filter(|p| {
            let after = from
                .get(&p.shard)
                .and_then(ExtendedSequenceNumber::position)
                .is_some_and(|c| p.position > c);
            after && to.get(&p.shard).is_some_and(|end| p.position <= *end)
        })
        .count()
}

/// Each shard's first `initialize` at or after `since` compared with the stored checkpoint:
/// `(all equal, detail)`.
fn initialized_at(
    inits: &BTreeMap<String, Event>,
    stored: &BTreeMap<String, ExtendedSequenceNumber>,
) -> (bool, String) {
    let ok = !stored.is_empty()
        && stored.iter().all(|(shard, checkpoint)| {
            inits
                .get(shard)
                .and_then(Event::initialize_position)
                .is_some_and(|p| checkpoint.position() == Some(p))
        });
    let detail = stored
        .iter()
        .map(|(shard, checkpoint)| {
            format!(
                "{}: stored {checkpoint}, initialize {}",
                short_shard(shard),
                inits
                    .get(shard)
                    .map_or("none".to_owned(), |e| e.what.clone())
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    (ok, detail)
}

/// Deliveries of `sink` written after `mark` at or before the stored checkpoint of their shard
/// (records the previous engine had checkpointed, handled again): their payloads.
fn handled_again(
    sink: &Sink,
    mark: &BTreeMap<String, usize>,
    stored: &BTreeMap<String, ExtendedSequenceNumber>,
) -> (usize, Vec<String>) {
    let deliveries = sink.deliveries_since(mark);
    let again = deliveries
        .iter()
        .filter(|d| {
            stored
                .get(&d.shard)
                .and_then(ExtendedSequenceNumber::position)
                .is_none_or(|c| d.position <= c)
        })
        .map(|d| d.payload.clone())
        .collect();
    (deliveries.len(), again)
}

/// The first `n` sub-sequence-bearing or plain records of a shard handled by `sink` after
/// `mark`: the first delivery of each shard (to show where the engine resumed).
fn first_deliveries(sink: &Sink, mark: &BTreeMap<String, usize>) -> BTreeMap<String, Position> {
    let mut first = BTreeMap::new();
    for d in sink.deliveries_since(mark) {
        first.entry(d.shard.clone()).or_insert(d.position.clone());
    }
    first
}

/// Captures every item of the application's lease, CoordinatorState and WorkerMetricStats
/// tables into `dir` (DynamoDB JSON, one file per item) and checks each survives kcl-lease's
/// codec: decode, then encode, gives the same JSON. `(items, mismatches)`.
fn capture_and_round_trip(emulators: &Emulators, app: &str, dir: &Path) -> (usize, Vec<String>) {
    let _ = std::fs::create_dir_all(dir);
    let mut count = 0;
    let mut mismatches = Vec::new();
    let tables = [
        ("lease", app.to_owned()),
        ("coordinator", format!("{app}-CoordinatorState")),
        ("worker_metrics", format!("{app}-WorkerMetricStats")),
    ];
    for (kind, name) in tables {
        let items = LeaseTable::new(emulators, &name)
            .items()
            .unwrap_or_default();
        for item in items {
            count += 1;
            let text = item_to_json(&item);
            let label = item_label(kind, &item);
            let _ = std::fs::write(dir.join(format!("{label}.json")), &text);
            let again: Result<Item, String> = match kind {
                "lease" => match decode(&item) {
                    Ok(Decoded::Lease(lease)) => Ok(encode(&lease)),
                    Ok(Decoded::NotALease { entity_type }) => {
                        Err(format!("not a lease: {entity_type}"))
                    }
                    Err(e) => Err(e.to_string()),
                },
                "coordinator" => {
                    if item.get("key").and_then(AttributeValue::as_s) == Some("Migration3.0") {
                        MigrationState::decode(&item)
                            .map(|m| m.encode())
                            .map_err(|e| e.to_string())
                    } else {
                        LockItem::decode(&item)
                            .map(|l| l.encode())
                            .map_err(|e| e.to_string())
                    }
                }
                _ => WorkerMetricStats::decode(&item)
                    .map(|w| w.encode())
                    .map_err(|e| e.to_string()),
            };
            match again {
                Ok(again)
                    if item_to_json(&canonical(&again)) == item_to_json(&canonical(&item)) => {}
                Ok(again) => mismatches.push(format!(
                    "{label}: read {text} written {}",
                    item_to_json(&again)
                )),
                Err(error) => mismatches.push(format!("{label}: {error}")),
            }
        }
    }
    (count, mismatches)
}

/// `item` with every number as DynamoDB stores it (moto keeps the text it was sent: Java
/// writes `throughputKBps` as `0.0`, which DynamoDB returns as `0`).
fn canonical(item: &Item) -> Item {
    item.iter()
        .map(|(name, value)| (name.clone(), canonical_value(value)))
        .collect()
}

fn canonical_value(value: &AttributeValue) -> AttributeValue {
    match value {
        AttributeValue::N(text) => AttributeValue::N(canonical_number(text)),
        AttributeValue::Ns(texts) => {
            AttributeValue::Ns(texts.iter().map(|t| canonical_number(t)).collect())
        }
        AttributeValue::L(values) => {
            AttributeValue::L(values.iter().map(canonical_value).collect())
        }
        AttributeValue::M(map) => AttributeValue::M(canonical(map)),
        other => other.clone(),
    }
}

/// A decimal number's text as DynamoDB returns it: plain notation, no leading zeros, no
/// fraction's trailing zeros (`0.0` → `0`, `12.50` → `12.5`, Java's `1.0E-6` → `0.000001`).
fn canonical_number(text: &str) -> String {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => match e.parse::<i64>() {
            Ok(e) => (m, e),
            Err(_) => return text.to_owned(),
        },
        None => (unsigned, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if !(int.chars().chain(frac.chars())).all(|c| c.is_ascii_digit()) {
        return text.to_owned();
    }
    // All digits, and where the decimal point falls among them.
    let digits = format!("{int}{frac}");
    let point = int.len() as i64 + exponent;
    let (whole, fraction) = if point <= 0 {
        (
            String::new(),
            format!("{}{digits}", "0".repeat((-point) as usize)),
        )
    } else if point as usize >= digits.len() {
        (
            format!("{digits}{}", "0".repeat(point as usize - digits.len())),
            String::new(),
        )
    } else {
        (
            digits[..point as usize].to_owned(),
            digits[point as usize..].to_owned(),
        )
    };
    let whole = whole.trim_start_matches('0');
    let fraction = fraction.trim_end_matches('0');
    let body = match (whole.is_empty(), fraction.is_empty()) {
        (true, true) => return "0".to_owned(),
        (true, false) => format!("0.{fraction}"),
        (false, true) => whole.to_owned(),
        (false, false) => format!("{whole}.{fraction}"),
    };
    if negative { format!("-{body}") } else { body }
}

#[test]
fn numbers_are_compared_as_dynamodb_stores_them() {
    for (text, canonical) in [
        ("0.0", "0"),
        ("-0.0", "0"),
        ("12.50", "12.5"),
        ("1.0E-6", "0.000001"),
        ("1.5E3", "1500"),
        ("2.5e1", "25"),
        ("007", "7"),
        ("56", "56"),
        ("-3.25E-2", "-0.0325"),
    ] {
        assert_eq!(canonical_number(text), canonical, "{text}");
    }
}

fn item_label(kind: &str, item: &Item) -> String {
    let key = ["leaseKey", "key", "wid"]
        .iter()
        .find_map(|k| item.get(*k).and_then(AttributeValue::as_s))
        .unwrap_or("unknown");
    format!(
        "{kind}-{}",
        key.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
    )
}

/// The log of a daemon worker (its current run).
fn daemon_log(worker: &Worker) -> String {
    match worker {
        Worker::Daemon(daemon) => daemon
            .log_path()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default(),
        Worker::Native(native) => native
            .log_path()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default(),
    }
}

/// Issue 15's scenario 3 (C4, C5, C15): a 2-shard stream migrated daemon → native → daemon.
/// Each phase puts plain records then KPL aggregates, so each shard's last records are user
/// records of an aggregate. The first daemon and the native engine run file_sink with a
/// checkpoint lag of one record (and no checkpoint at shutdown), so each hands over a
/// checkpoint inside an aggregate (sub-sequence number below the aggregate's last). Checks:
/// each engine's first `initialize` per shard carries exactly the stored checkpoint (sequence
/// and sub-sequence number); nothing at or before it is handled again by the next engine; the
/// records after it (the lagged ones) are; the final checkpoints are at the last records; the
/// stored checkpoints never pass an unwritten record; ledger lost 0, duplicates exactly the
/// lagged records. Notes the time the native engine needed to get the daemon's leases (the
/// 3.1.3 daemon does not evict them on SIGTERM: they must expire first), and checks the items
/// the daemon wrote round-trip through kcl-lease's codec.
#[test]
#[ignore = "needs the e2e cache (bash scripts/e2e.sh install), java, node, the built file_sink, native_file_sink and kcl"]
fn migration_daemon_to_native_to_daemon_inside_aggregates() {
    let _serial = one_at_a_time();
    let settings = Settings::from_env().unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let processor = Processor::file_sink(&settings).unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    println!(
        "kcl end-to-end harness (Rust), migration: run folder {}",
        settings.run_dir.display()
    );
    let emulators = Emulators::start(&settings).unwrap_or_else(|e| panic!("{e}"));
    let mut report = Report::begin("3m", "migration daemon -> native -> daemon, in aggregates");
    match emulators.loopback_only() {
        Ok(detail) => report.check("setup-emulators-on-loopback-only", true, detail),
        Err(error) => report.check("setup-emulators-on-loopback-only", false, error.message()),
    };
    let (stream_name, app) = names(&settings, "m3");
    let stream = Stream::create(&emulators, &stream_name, 2).unwrap_or_else(|e| panic!("{e}"));
    let ledger = Ledger::new();
    let table = LeaseTable::new(&emulators, &app);
    let mut violations = Vec::new();
    let mut audit = |table: &LeaseTable, sinks: &[&Sink]| {
        if let Ok(found) = table.audit(&ledger, sinks) {
            violations.extend(found);
        }
    };

    // Phase 1: the daemon alone, on a new application, lag 1.
    let put = |prefix: &str, plain: u64, aggregates: u64| {
        stream
            .put_records(&ledger, prefix, 0, plain)
            .unwrap_or_else(|e| panic!("{e}"));
        stream
            .put_aggregates(&ledger, &format!("{prefix}a"), 0, aggregates)
            .unwrap_or_else(|e| panic!("{e}"));
    };
    put("m3p1", 200, 30);
    report.check(
        "m3-phase1-records-put",
        ledger.shards().len() == 2,
        format!("{} records (plain, then aggregates)", ledger.len()),
    );
    let mut daemon = Worker::daemon(
        &settings,
        &emulators,
        spec(&app, &stream_name, "m3-daemon", &processor),
    )
    .unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    daemon.set_env(LAG, "1");
    let d_out = daemon.sink();
    let mut native = Worker::native(
        &settings,
        &emulators,
        spec(&app, &stream_name, "m3-native", &processor),
    )
    .unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    native.set_env(LAG, "1");
    let n_out = native.sink();
    let shards = ledger.shards();
    let d1_started = now_ms();
    daemon.start().unwrap_or_else(|e| panic!("{e}"));
    let inits = wait_initialized(&d_out, &shards, d1_started, Duration::from_secs(180));
    report.check(
        "m3-daemon-initializes-at-trim-horizon",
        inits.len() == 2
            && inits
                .values()
                .all(|e| e.initialize_sentinel() == Some("TrimHorizon")),
        format!(
            "{} shards, first {} after start",
            inits.len(),
            secs(
                d1_started,
                inits.values().map(|e| e.ms).min().unwrap_or(d1_started)
            )
        ),
    );
    let t = wait_handled(&ledger, &[&d_out], Duration::from_secs(120), false);
    report.check("m3-daemon-handles-phase1", t.lost == 0, t.line());
    let lagged1 = second_to_last(&ledger);
    let (at, seen) = table.wait_checkpoints(&lagged1, Duration::from_secs(30));
    audit(&table, &[&d_out, &n_out]);
    report.check(
        "m3-daemon-checkpoint-inside-last-aggregate",
        at && lagged1
            .iter()
            .all(|(s, p)| inside_aggregate(&ledger, s, p) && p.sub_sequence_number() > 0),
        checkpoint_detail(&lagged1, &seen),
    );
    let grace = daemon.grace();
    let d1_stop = daemon
        .stop(Signal::Term, grace + Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let d1_stopped = now_ms();
    let stored1 = table.checkpoints().unwrap_or_default();
    let owners1 = table.owners().unwrap_or_default();
    report.check(
        "m3-daemon-sigterm-keeps-the-lagged-checkpoint",
        d1_stop.ended
            && stored1
                == lagged1
                    .iter()
                    .map(|(s, p)| (s.clone(), ExtendedSequenceNumber::from(p)))
                    .collect(),
        format!(
            "exit={:?} after {:.1}s; stored {:?}; owners {owners1:?}",
            d1_stop.code,
            d1_stop.took.as_secs_f64(),
            stored1
                .iter()
                .map(|(s, c)| format!("{}={c}", short_shard(s)))
                .collect::<Vec<_>>()
        ),
    );
    let captured = settings.run_dir.join("m3-captured-daemon");
    let (items, mismatches) = capture_and_round_trip(&emulators, &app, &captured);
    report.check(
        "m3-daemon-items-round-trip-through-the-codec",
        items >= 4 && mismatches.is_empty(),
        format!(
            "{items} items captured into {} after the daemon's SIGTERM; {}",
            captured.display(),
            mismatches
                .first()
                .map_or("all equal".to_owned(), Clone::clone)
        ),
    );
    let owned_at_stop = owners1.values().filter(|o| o.is_some()).count();
    report.note(format!(
        "after the daemon's SIGTERM: {owned_at_stop} of {} leases still owned (3.1.3 does not evict)",
        owners1.len()
    ));

    // Phase 2: the native engine resumes at the daemon's checkpoints, lag 1.
    let end1 = ledger.last_by_shard();
    put("m3p2", 200, 30);
    let n_started = now_ms();
    native.start().unwrap_or_else(|e| panic!("{e}"));
    let n_inits = wait_initialized(&n_out, &shards, n_started, Duration::from_secs(240));
    let (ok, detail) = initialized_at(&n_inits, &stored1);
    report.check(
        "m3-native-initializes-at-the-daemon-checkpoints",
        ok,
        detail,
    );
    let first_take = n_inits.values().map(|e| e.ms).min().unwrap_or(n_started);
    let last_take = n_inits.values().map(|e| e.ms).max().unwrap_or(n_started);
    report.note(format!(
        "native start to first initialize {} (last {}), {} after the daemon exited \
         (failoverTimeMillis 3000, leaseAssignmentIntervalMillis 1000; the daemon left its leases owned)",
        secs(n_started, first_take),
        secs(n_started, last_take),
        secs(d1_stopped, first_take)
    ));
    let t = wait_handled(&ledger, &[&d_out, &n_out], Duration::from_secs(120), false);
    report.check("m3-native-handles-phase2", t.lost == 0, t.line());
    let (n_count, again) = handled_again(&n_out, &BTreeMap::new(), &stored1);
    let firsts = first_deliveries(&n_out, &BTreeMap::new());
    report.check(
        "m3-native-handles-nothing-the-daemon-checkpointed",
        n_count > 0 && again.is_empty(),
        format!(
            "{n_count} handled by the native engine, {} at or before the daemon's checkpoints {:?}; \
             first handled: {}",
            again.len(),
            again.iter().take(3).collect::<Vec<_>>(),
            firsts
                .iter()
                .map(|(s, p)| format!("{}={p:?}", short_shard(s)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    );
    let resumed_inside = stored1.iter().all(|(s, c)| {
        let c = c.position().expect("a position");
        firsts.get(s).is_some_and(|p| {
            p.sequence_number() == c.sequence_number()
                && p.sub_sequence_number() == c.sub_sequence_number() + 1
        })
    });
    report.check(
        "m3-native-resumes-at-subseq-plus-1",
        resumed_inside,
        "each shard's first record handled by the native engine is the daemon's checkpoint's \
         aggregate at sub-sequence number + 1",
    );
    let lagged2 = second_to_last(&ledger);
    let (at, seen) = table.wait_checkpoints(&lagged2, Duration::from_secs(30));
    audit(&table, &[&d_out, &n_out]);
    report.check(
        "m3-native-checkpoint-inside-last-aggregate",
        at && lagged2
            .iter()
            .all(|(s, p)| inside_aggregate(&ledger, s, p) && p.sub_sequence_number() > 0),
        checkpoint_detail(&lagged2, &seen),
    );
    let n_stop = native
        .stop(Signal::Term, native.grace() + Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    let stored2 = table.checkpoints().unwrap_or_default();
    report.check(
        "m3-native-sigterm-keeps-the-lagged-checkpoint-and-evicts",
        n_stop.ended
            && n_stop.code == Some(0)
            && table.unowned().unwrap_or_default().len() == 2
            && stored2
                == lagged2
                    .iter()
                    .map(|(s, p)| (s.clone(), ExtendedSequenceNumber::from(p)))
                    .collect(),
        format!(
            "exit={:?} after {:.1}s; stored {}; unowned {:?}",
            n_stop.code,
            n_stop.took.as_secs_f64(),
            checkpoint_detail(&lagged2, &stored2),
            table.unowned().unwrap_or_default()
        ),
    );

    // Phase 3: the daemon again, resuming at the native checkpoints, lag 0.
    let end2 = ledger.last_by_shard();
    put("m3p3", 150, 20);
    let mark = d_out.line_counts();
    daemon.set_env(LAG, "0");
    let d2_started = now_ms();
    daemon.start().unwrap_or_else(|e| panic!("{e}"));
    let d2_inits = wait_initialized(&d_out, &shards, d2_started, Duration::from_secs(240));
    let (ok, detail) = initialized_at(&d2_inits, &stored2);
    report.check(
        "m3-daemon-initializes-at-the-native-checkpoints",
        ok,
        detail,
    );
    report.note(format!(
        "daemon restart to first initialize {} (the native engine evicted its leases)",
        secs(
            d2_started,
            d2_inits.values().map(|e| e.ms).min().unwrap_or(d2_started)
        )
    ));
    let t = wait_handled(&ledger, &[&d_out, &n_out], Duration::from_secs(120), false);
    report.check("m3-daemon-handles-phase3", t.lost == 0, t.line());
    let (d2_count, again) = handled_again(&d_out, &mark, &stored2);
    let firsts = first_deliveries(&d_out, &mark);
    report.check(
        "m3-daemon-handles-nothing-the-native-engine-checkpointed",
        d2_count > 0 && again.is_empty(),
        format!(
            "{d2_count} handled by the restarted daemon, {} at or before the native checkpoints \
             {:?}; first handled: {}",
            again.len(),
            again.iter().take(3).collect::<Vec<_>>(),
            firsts
                .iter()
                .map(|(s, p)| format!("{}={p:?}", short_shard(s)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    );
    let resumed_inside = stored2.iter().all(|(s, c)| {
        let c = c.position().expect("a position");
        firsts.get(s).is_some_and(|p| {
            p.sequence_number() == c.sequence_number()
                && p.sub_sequence_number() == c.sub_sequence_number() + 1
        })
    });
    report.check(
        "m3-daemon-resumes-at-subseq-plus-1",
        resumed_inside,
        "each shard's first record handled by the restarted daemon is the native checkpoint's \
         aggregate at sub-sequence number + 1",
    );
    let last = ledger.last_by_shard();
    let (at, seen) = table.wait_checkpoints(&last, Duration::from_secs(30));
    audit(&table, &[&d_out, &n_out]);
    report.check(
        "m3-daemon-checkpoint-at-the-last-records",
        at,
        checkpoint_detail(&last, &seen),
    );
    let (items, mismatches) = capture_and_round_trip(
        &emulators,
        &app,
        &settings.run_dir.join("m3-captured-after-migration"),
    );
    report.check(
        "m3-daemon-items-round-trip-through-the-codec-after-migration",
        items >= 4 && mismatches.is_empty(),
        format!(
            "{items} items; {}",
            mismatches
                .first()
                .map_or("all equal".to_owned(), Clone::clone)
        ),
    );
    let d2_stop = daemon
        .stop(Signal::Term, grace + Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    report.note(format!(
        "daemon exit={:?} after {:.1}s",
        d2_stop.code,
        d2_stop.took.as_secs_f64()
    ));
    report.check(
        "m3-checkpoints-never-pass-unwritten-records",
        violations.is_empty(),
        format!(
            "{} violations{}",
            violations.len(),
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
    let result = tally(&ledger, &[&d_out, &n_out], false);
    let expected_dups = between(&ledger, &stored1, &end1) + between(&ledger, &stored2, &end2);
    report.check(
        "m3-duplicates-are-exactly-the-lagged-records",
        result.duplicated == expected_dups,
        format!(
            "duplicated={} expected={expected_dups} (records after each handed-over checkpoint \
             that the previous engine had handled)",
            result.duplicated
        ),
    );
    report.check("m3-ledger-lost-0", result.lost == 0, result.line());
    if report.failing() {
        daemon.print_log_tail(60);
        native.print_log_tail(60);
        emulators.print_logs(20);
    }
    report.finish(result, "").assert_passed();
}

/// What two applications' tables must share: key schema, attribute definitions, each global
/// secondary index's name, keys and projection, billing mode.
fn table_shape(emulators: &Emulators, table: &str) -> Result<String, String> {
    let client = emulators.dynamodb_client();
    let out = emulators
        .runtime()
        .block_on(client.describe_table().table_name(table).send())
        .map_err(|e| format!("DescribeTable {table}: {e:?}"))?;
    let t = out
        .table()
        .ok_or_else(|| format!("{table}: no description"))?;
    let keys = |schema: &[aws_sdk_dynamodb::types::KeySchemaElement]| {
        schema
            .iter()
            .map(|k| format!("{}:{}", k.attribute_name(), k.key_type().as_str()))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut attributes: Vec<String> = t
        .attribute_definitions()
        .iter()
        .map(|a| format!("{}:{}", a.attribute_name(), a.attribute_type().as_str()))
        .collect();
    attributes.sort();
    let mut indexes: Vec<String> = t
        .global_secondary_indexes()
        .iter()
        .map(|g| {
            format!(
                "{}[{}] projection={}",
                g.index_name().unwrap_or("-"),
                keys(g.key_schema()),
                g.projection()
                    .and_then(|p| p.projection_type())
                    .map_or("-", |p| p.as_str())
            )
        })
        .collect();
    indexes.sort();
    let billing = t
        .billing_mode_summary()
        .and_then(|b| b.billing_mode())
        .map_or("-".to_owned(), |b| b.as_str().to_owned());
    Ok(format!(
        "keys [{}] attributes [{}] indexes [{}] billing {billing}",
        keys(t.key_schema()),
        attributes.join(","),
        indexes.join("; ")
    ))
}

/// The `Migration3.0` item's attribute names with their types, and its `cv`; `mb` separately.
fn migration_shape(emulators: &Emulators, app: &str) -> (String, Option<String>) {
    let item = LeaseTable::coordinator_state(emulators, app)
        .coordinator_item("Migration3.0")
        .unwrap_or_default();
    match item {
        None => ("absent".to_owned(), None),
        Some(item) => {
            let shape = item
                .iter()
                .map(|(name, value)| match (name.as_str(), value) {
                    ("cv" | "key", _) => {
                        format!("{name}:{}={:?}", value.type_name(), value.as_s())
                    }
                    // The history: each entry's attributes, types and `cv`.
                    ("h", AttributeValue::L(entries)) => format!(
                        "h:L[{}]",
                        entries
                            .iter()
                            .map(|entry| match entry {
                                AttributeValue::M(map) => map
                                    .iter()
                                    .map(|(k, v)| match k.as_str() {
                                        "cv" => format!("cv:{}={:?}", v.type_name(), v.as_s()),
                                        _ => format!("{k}:{}", v.type_name()),
                                    })
                                    .collect::<Vec<_>>()
                                    .join(" "),
                                other => other.type_name().to_owned(),
                            })
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                    _ => format!("{name}:{}", value.type_name()),
                })
                .collect::<Vec<_>>()
                .join(",");
            let by = item
                .get("mb")
                .and_then(AttributeValue::as_s)
                .map(str::to_owned);
            (shape, by)
        }
    }
}

/// The lines of a daemon log that report an error: an `ERROR` level line, an exception or
/// `Unable to determine initial state`.
fn error_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            l.contains(" ERROR ")
                || l.contains("Exception")
                || l.contains("Unable to determine initial state")
        })
        .map(|l| l.chars().take(300).collect())
        .collect()
}

/// Issue 15's scenario 4 (C12): the native engine creates a new application (tables, owner
/// index, `Migration3.0`), then a real 3.1.3 daemon joins it as a second worker. Checks: the
/// daemon's log has no error line (no `ERROR`, no exception, no "Unable to determine initial
/// state"); it gets leases (assigned by the native leader, or it leads) and handles records;
/// both workers handle records; ledger lost 0. Meanwhile a daemon alone creates another
/// application on the same stream; the lease, CoordinatorState and WorkerMetricStats tables of
/// both (key schema, attribute definitions, indexes with keys and projection, billing mode)
/// and their `Migration3.0` items (attributes, types, `cv`; `mb` the creating worker) must be
/// the same. The daemon's items round-trip through kcl-lease's codec.
#[test]
#[ignore = "needs the e2e cache (bash scripts/e2e.sh install), java, node, the built file_sink, native_file_sink and kcl"]
fn migration_native_created_application_joined_by_the_daemon() {
    let _serial = one_at_a_time();
    let settings = Settings::from_env().unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let processor = Processor::file_sink(&settings).unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    println!(
        "kcl end-to-end harness (Rust), native app joined by the daemon: run folder {}",
        settings.run_dir.display()
    );
    let emulators = Emulators::start(&settings).unwrap_or_else(|e| panic!("{e}"));
    let mut report = Report::begin("4m", "native-created application joined by the daemon");
    match emulators.loopback_only() {
        Ok(detail) => report.check("setup-emulators-on-loopback-only", true, detail),
        Err(error) => report.check("setup-emulators-on-loopback-only", false, error.message()),
    };
    let (stream_name, app) = names(&settings, "m4");
    let java_app = format!("{app}-java");
    let stream = Stream::create(&emulators, &stream_name, 4).unwrap_or_else(|e| panic!("{e}"));
    let ledger = Ledger::new();
    stream
        .put_records(&ledger, "m4p1", 0, 1000)
        .unwrap_or_else(|e| panic!("{e}"));
    let shards = ledger.shards();

    // The native engine creates the application; a daemon alone creates another one.
    let mut native = Worker::native(
        &settings,
        &emulators,
        spec(&app, &stream_name, "m4-native", &processor),
    )
    .unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let mut alone = Worker::daemon(
        &settings,
        &emulators,
        spec(&java_app, &stream_name, "m4-java-alone", &processor),
    )
    .unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let n_out = native.sink();
    let alone_out = alone.sink();
    let started = now_ms();
    native.start().unwrap_or_else(|e| panic!("{e}"));
    alone.start().unwrap_or_else(|e| panic!("{e}"));
    let inits = wait_initialized(&n_out, &shards, started, Duration::from_secs(120));
    report.check(
        "m4-native-creates-the-application-and-takes-every-shard",
        inits.len() == shards.len(),
        format!(
            "{} of {} shards initialized by the native engine",
            inits.len(),
            shards.len()
        ),
    );
    let (native_migration, native_by) = migration_shape(&emulators, &app);

    // The daemon joins.
    let mut daemon = Worker::daemon(
        &settings,
        &emulators,
        spec(&app, &stream_name, "m4-daemon", &processor),
    )
    .unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    let d_out = daemon.sink();
    let joined = now_ms();
    daemon.start().unwrap_or_else(|e| panic!("{e}"));
    let table = LeaseTable::new(&emulators, &app);
    let got = poll(
        Duration::from_secs(300),
        Duration::from_millis(500),
        || {
            let initialized: BTreeSet<String> = d_out
                .events()
                .into_iter()
                .filter(|e| e.kind() == "initialize")
                .map(|e| e.shard)
                .collect();
            let owned = table.owned_by(daemon.worker_id()).unwrap_or_default();
            (initialized, owned, now_ms())
        },
        |(initialized, owned, _)| !initialized.is_empty() && !owned.is_empty(),
    );
    report.check(
        "m4-daemon-gets-leases",
        !got.0.is_empty() && !got.1.is_empty(),
        format!(
            "{} after joining: initialized {:?}, owns {:?}",
            secs(joined, got.2),
            got.0.iter().map(|s| short_shard(s)).collect::<Vec<_>>(),
            got.1.iter().map(|s| short_shard(s)).collect::<Vec<_>>()
        ),
    );
    // More records once both run: each handles its shards' share.
    stream
        .put_records(&ledger, "m4p2", 0, 1000)
        .unwrap_or_else(|e| panic!("{e}"));
    let t = wait_handled(&ledger, &[&n_out, &d_out], Duration::from_secs(180), false);
    let (d_deliveries, _) = d_out.deliveries();
    let (n_deliveries, _) = n_out.deliveries();
    report.check(
        "m4-records-handled-by-both-workers",
        t.lost == 0 && !d_deliveries.is_empty() && !n_deliveries.is_empty(),
        format!(
            "{}; native {} deliveries, daemon {}",
            t.line(),
            n_deliveries.len(),
            d_deliveries.len()
        ),
    );
    let last = ledger.last_by_shard();
    let (at, seen) = table.wait_checkpoints(&last, Duration::from_secs(30));
    report.check(
        "m4-checkpoints-at-the-last-records",
        at,
        checkpoint_detail(&last, &seen),
    );
    let errors = error_lines(&daemon_log(&daemon));
    report.check(
        "m4-daemon-log-has-no-error",
        errors.is_empty(),
        format!(
            "{} error lines{}",
            errors.len(),
            errors
                .first()
                .map(|l| format!("; first: {l}"))
                .unwrap_or_default()
        ),
    );
    for line in table.describe().unwrap_or_default() {
        report.note(line);
    }
    let leader = LeaseTable::coordinator_state(&emulators, &app)
        .coordinator_item("Leader")
        .unwrap_or_default()
        .and_then(|item| {
            item.get("ownerName")
                .and_then(AttributeValue::as_s)
                .map(str::to_owned)
        });
    report.note(format!("the Leader lock is held by {leader:?}"));

    // The tables and Migration3.0 of both applications.
    let alone_inits = wait_initialized(&alone_out, &shards, started, Duration::from_secs(120));
    report.note(format!(
        "the lone daemon initialized {} shards",
        alone_inits.len()
    ));
    for suffix in ["", "-CoordinatorState", "-WorkerMetricStats"] {
        let native_shape = table_shape(&emulators, &format!("{app}{suffix}"));
        let java_shape = table_shape(&emulators, &format!("{java_app}{suffix}"));
        let name = format!(
            "m4-table{}-as-java-creates-it",
            if suffix.is_empty() { "-lease" } else { suffix }
        )
        .to_lowercase();
        report.check(
            &name,
            native_shape.is_ok() && native_shape == java_shape,
            format!("native {native_shape:?}; java {java_shape:?}"),
        );
    }
    let (java_migration, java_by) = migration_shape(&emulators, &java_app);
    report.check(
        "m4-migration-item-as-java-creates-it",
        native_migration == java_migration
            && native_by.as_deref() == Some("m4-native")
            && java_by.as_deref() == Some("m4-java-alone"),
        format!("native {native_migration} mb={native_by:?}; java {java_migration} mb={java_by:?}"),
    );
    let captured = settings.run_dir.join("m4-captured-daemon");
    let (items, mismatches) = capture_and_round_trip(&emulators, &java_app, &captured);
    report.check(
        "m4-daemon-items-round-trip-through-the-codec",
        items >= 6 && mismatches.is_empty(),
        format!(
            "{items} items of the lone daemon's application captured into {}; {}",
            captured.display(),
            mismatches
                .first()
                .map_or("all equal".to_owned(), Clone::clone)
        ),
    );
    let (items, mismatches) = capture_and_round_trip(
        &emulators,
        &app,
        &settings.run_dir.join("m4-captured-mixed"),
    );
    report.check(
        "m4-mixed-items-round-trip-through-the-codec",
        items >= 6 && mismatches.is_empty(),
        format!(
            "{items} items of the mixed application; {}",
            mismatches
                .first()
                .map_or("all equal".to_owned(), Clone::clone)
        ),
    );

    let grace = daemon.grace();
    let d_stop = daemon
        .stop(Signal::Term, grace + Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    let n_stop = native
        .stop(Signal::Term, grace + Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = alone.stop(Signal::Term, grace + Duration::from_secs(30));
    report.check(
        "m4-both-stop",
        d_stop.ended && n_stop.ended && n_stop.code == Some(0),
        format!(
            "daemon exit={:?} after {:.1}s, native exit={:?} after {:.1}s",
            d_stop.code,
            d_stop.took.as_secs_f64(),
            n_stop.code,
            n_stop.took.as_secs_f64()
        ),
    );
    let result = tally(&ledger, &[&n_out, &d_out], false);
    report.note(format!(
        "duplicates: {} (leases moved from the native engine to the daemon)",
        result.duplicated
    ));
    report.check("m4-ledger-lost-0", result.lost == 0, result.line());
    if report.failing() {
        daemon.print_log_tail(60);
        native.print_log_tail(60);
        emulators.print_logs(20);
    }
    report.finish(result, "").assert_passed();
}
