//! The two record processors of the MultiLangDaemon scenarios and the checks only data can
//! settle about examples/declared_sink (scripts/e2e/declared.py).
//!
//! Scenarios run with [`Flavor::FileSink`] (examples/file_sink: checkpoints by hand after every
//! batch, never fails) or, as `1d`, `2d`, with [`Flavor::Declared`] (examples/declared_sink: the
//! SDK's declared API, a per-record handler, the `every 50 records` checkpoint strategy, the
//! `skip` failure policy with an `on_failure` hook writing dead letters, the default
//! `shutdown_requested` / `shard_ended` hooks), with tainted payloads in the stream
//! ([`crate::taint`]).
//!
//! - [`taint_checks`]: every poison record dead-lettered after [`ATTEMPTS`] attempts and never
//!   in the sink, nothing else dead-lettered, every flaky record in the sink;
//! - [`checkpoint_lag`]: at rest, each shard's checkpoint is one of its records' positions and
//!   fewer than [`EVERY_RECORDS`] of its records come after it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kcl_protocol::Position;

use crate::error::Result;
use crate::leases::{LeaseTable, short_shard};
use crate::ledger::Ledger;
use crate::poll::poll;
use crate::report::Report;
use crate::settings::Settings;
use crate::sink::Sink;
use crate::taint::{FLAKY, POISON};
use crate::worker::Processor;

/// declared_sink's `CheckpointStrategy::every_records(50)`.
pub const EVERY_RECORDS: usize = 50;
/// declared_sink's `FailurePolicy::skip()` attempts.
pub const ATTEMPTS: u32 = 3;

/// Which record processor a scenario runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// examples/file_sink (`out`).
    FileSink,
    /// examples/declared_sink (`out skip`), with poison and flaky records in the stream.
    Declared,
}

impl Flavor {
    /// Appended to scenario ids, check names, folders and streams: `""` or `"d"`.
    pub fn suffix(self) -> &'static str {
        match self {
            Flavor::FileSink => "",
            Flavor::Declared => "d",
        }
    }

    /// Whether the stream gets poison and flaky payloads (and dead letters count as handled).
    pub fn declared(self) -> bool {
        self == Flavor::Declared
    }

    /// The processor (built example and its arguments).
    pub fn processor(self, settings: &Settings) -> Result<Processor> {
        match self {
            Flavor::FileSink => Processor::file_sink(settings),
            Flavor::Declared => Ok(Processor {
                binary: settings.example("declared_sink")?,
                args: vec!["out".to_owned(), "skip".to_owned()],
            }),
        }
    }
}

fn within(position: &Position, shard: &str, upto: Option<&BTreeMap<String, Position>>) -> bool {
    match upto {
        None => true,
        Some(limits) => limits.get(shard).is_some_and(|limit| position <= limit),
    }
}

/// The checks `<prefix>-poison-dead-lettered` and `<prefix>-flaky-retried-and-handled`. With
/// `upto` (`{shard: position}`) only the records at or before those positions are required.
/// Returns (poison, flaky) records counted.
pub fn taint_checks(
    report: &mut Report,
    prefix: &str,
    ledger: &Ledger,
    sinks: &[&Sink],
    upto: Option<&BTreeMap<String, Position>>,
) -> (usize, usize) {
    let mut sunk = BTreeSet::new();
    let mut letters = Vec::new();
    for sink in sinks {
        sunk.extend(sink.deliveries().0.into_iter().map(|d| d.payload));
        letters.extend(sink.dead_letters().0);
    }
    let dead: BTreeSet<&str> = letters.iter().map(|d| d.payload.as_str()).collect();
    let puts: Vec<String> = ledger
        .snapshot()
        .into_values()
        .filter(|p| within(&p.position, &p.shard, upto))
        .map(|p| p.payload)
        .collect();
    let poison: Vec<&String> = puts.iter().filter(|p| p.starts_with(POISON)).collect();
    let flaky: Vec<&String> = puts.iter().filter(|p| p.starts_with(FLAKY)).collect();
    let not_dead: Vec<&&String> = poison
        .iter()
        .filter(|p| !dead.contains(p.as_str()))
        .collect();
    let poison_sunk = poison.iter().filter(|p| sunk.contains(**p)).count();
    let others_dead: BTreeSet<&str> = letters
        .iter()
        .filter(|d| !d.payload.starts_with(POISON))
        .map(|d| d.payload.as_str())
        .collect();
    let early: BTreeSet<String> = letters
        .iter()
        .filter(|d| d.attempts != ATTEMPTS)
        .map(|d| format!("{}:{}", d.payload, d.attempts))
        .collect();
    let scope = if upto.is_some() {
        " (at or before the checkpoints)"
    } else {
        ""
    };
    let mut detail = format!(
        "{} poison records{scope}: {} in the dead-letter files, {poison_sunk} in the sink; {} \
         records other than poison dead-lettered; {}/{} dead letters after {ATTEMPTS} attempts",
        poison.len(),
        poison.len() - not_dead.len(),
        others_dead.len(),
        letters.len() - early.len(),
        letters.len()
    );
    if !not_dead.is_empty() {
        detail.push_str(&format!(
            "; not dead-lettered e.g. {:?}",
            &not_dead[..not_dead.len().min(3)]
        ));
    }
    if !others_dead.is_empty() {
        let some: Vec<&&str> = others_dead.iter().take(3).collect();
        detail.push_str(&format!("; dead-lettered e.g. {some:?}"));
    }
    if !early.is_empty() {
        let some: Vec<&String> = early.iter().take(3).collect();
        detail.push_str(&format!("; after other attempt counts e.g. {some:?}"));
    }
    report.check(
        &format!("{prefix}-poison-dead-lettered"),
        !poison.is_empty()
            && not_dead.is_empty()
            && poison_sunk == 0
            && others_dead.is_empty()
            && early.is_empty(),
        detail,
    );
    let flaky_sunk = flaky.iter().filter(|p| sunk.contains(**p)).count();
    let flaky_dead = flaky.iter().filter(|p| dead.contains(p.as_str())).count();
    let missing: Vec<&&String> = flaky.iter().filter(|p| !sunk.contains(**p)).collect();
    let mut detail = format!(
        "{} flaky records{scope}: {flaky_sunk} in the sink after a retry, {flaky_dead} \
         dead-lettered",
        flaky.len()
    );
    if !missing.is_empty() {
        detail.push_str(&format!(
            "; not in the sink e.g. {:?}",
            &missing[..missing.len().min(3)]
        ));
    }
    report.check(
        &format!("{prefix}-flaky-retried-and-handled"),
        flaky_sunk > 0 && missing.is_empty() && flaky_dead == 0,
        detail,
    );
    (poison.len(), flaky.len())
}

/// The check `name` on the `every 50 records` strategy at rest (polled up to `deadline`): each
/// shard's checkpoint is the position of one of its records, and fewer than [`EVERY_RECORDS`]
/// of its records come after it (a runtime that never checkpoints by its strategy leaves
/// `TRIM_HORIZON`).
pub fn checkpoint_lag(
    report: &mut Report,
    name: &str,
    table: &LeaseTable,
    ledger: &Ledger,
    deadline: Duration,
) -> bool {
    // {shard: (checkpoint text, records after it if it is a record's position)}
    let settled = || {
        let checkpoints = table.checkpoints().unwrap_or_default();
        let mut by_shard: BTreeMap<String, Vec<Position>> = BTreeMap::new();
        for put in ledger.snapshot().into_values() {
            by_shard.entry(put.shard).or_default().push(put.position);
        }
        let mut seen: BTreeMap<String, (String, Option<usize>)> = BTreeMap::new();
        for (shard, puts) in by_shard {
            let stored = checkpoints.get(&shard);
            let text = stored.map_or("none".to_owned(), |c| c.sequence_number().to_owned());
            let after = stored
                .and_then(|c| c.position())
                .filter(|at| puts.contains(at))
                .map(|at| puts.iter().filter(|p| **p > at).count());
            seen.insert(shard, (text, after));
        }
        seen
    };
    let seen = poll(deadline, Duration::from_millis(500), settled, |seen| {
        !seen.is_empty()
            && seen
                .values()
                .all(|(_, after)| after.is_some_and(|n| n < EVERY_RECORDS))
    });
    let ok = !seen.is_empty()
        && seen
            .values()
            .all(|(_, after)| after.is_some_and(|n| n < EVERY_RECORDS));
    let detail: Vec<String> = seen
        .iter()
        .map(|(shard, (cp, after))| match after {
            Some(n) => format!(
                "{}:...{}, {n} handled after it",
                short_shard(shard),
                &cp[cp.len().saturating_sub(6)..]
            ),
            None => format!("{}:{cp} (not a record's position)", short_shard(shard)),
        })
        .collect();
    report.check(
        name,
        ok,
        format!(
            "{} (strategy: every {EVERY_RECORDS} records)",
            detail.join(" ")
        ),
    )
}
