//! What every scenario needs beyond the pieces (scripts/e2e/context.py): unique names, waits
//! on the sinks (every record handled, every shard initialized), and how the record processors
//! ended.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::ledger::{Ledger, Tally};
use crate::poll::poll;
use crate::settings::Settings;
use crate::sink::{Event, Sink, tally};

/// A stream and an application name unique to this run and scenario:
/// `e2e-rs-<run>-s<scenario>` and the same with `-app`.
pub fn names(settings: &Settings, scenario: &str) -> (String, String) {
    let run = settings
        .run_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("run")
        .to_owned();
    let base = format!("e2e-rs-{run}-s{scenario}");
    let app = format!("{base}-app");
    (base, app)
}

/// Polls until every record of the ledger is in the sinks (or, with `dead_letters`, in their
/// dead-letter files), or `deadline` passes; the last tally.
pub fn wait_handled(
    ledger: &Ledger,
    sinks: &[&Sink],
    deadline: Duration,
    dead_letters: bool,
) -> Tally {
    poll(
        deadline,
        Duration::from_millis(500),
        || tally(ledger, sinks, dead_letters),
        |t| t.lost == 0,
    )
}

/// Polls until each shard of `shards` has an `initialize` event at or after `since_ms`, or
/// `deadline` passes; the first such event of each shard found.
pub fn wait_initialized(
    sink: &Sink,
    shards: &BTreeSet<String>,
    since_ms: u64,
    deadline: Duration,
) -> BTreeMap<String, Event> {
    let found = || {
        let mut first: BTreeMap<String, Event> = BTreeMap::new();
        for event in sink.events() {
            if event.kind() == "initialize" && event.ms >= since_ms && shards.contains(&event.shard)
            {
                first.entry(event.shard.clone()).or_insert(event);
            }
        }
        first
    };
    poll(deadline, Duration::from_millis(250), found, |first| {
        shards.iter().all(|s| first.contains_key(s))
    })
}

/// The PIDs among `pids` that wrote an `exit 0` event at or after `since_ms` (they ended
/// cleanly, after their runtime returned).
pub fn exited_zero(sink: &Sink, pids: &[u32], since_ms: u64) -> BTreeSet<u32> {
    sink.events()
        .into_iter()
        .filter(|e| e.what == "exit 0" && e.ms >= since_ms && pids.contains(&e.pid))
        .map(|e| e.pid)
        .collect()
}

/// The lifecycle events (first word; `exit 0` whole) of each of `pids` at or after
/// `since_ms`, in order: e.g. `shutdownRequested > leaseLost > exit 0`.
pub fn lifecycles(sink: &Sink, pids: &[u32], since_ms: u64) -> BTreeMap<u32, Vec<String>> {
    let mut found: BTreeMap<u32, Vec<String>> = pids.iter().map(|&p| (p, Vec::new())).collect();
    for event in sink.events() {
        if event.ms < since_ms {
            continue;
        }
        if let Some(list) = found.get_mut(&event.pid) {
            list.push(if event.kind() == "exit" {
                event.what.clone()
            } else {
                event.kind().to_owned()
            });
        }
    }
    found
}
