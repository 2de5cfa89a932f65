//! Reading what the example processors wrote (examples/file_sink.rs and the sinks that share its
//! writers), and reconciling it with a [`Ledger`], as scripts/e2e/sink.py does:
//!
//! - `OUT/records-<shardId>.tsv`: shard, sequence number, sub-sequence number, partition key,
//!   payload (tab, newline, CR and backslash escaped), one line per record handled, flushed
//!   before each checkpoint;
//! - `OUT/dead-letters-<shardId>.tsv` (declared_sink): the same five fields, then the attempts
//!   made and the last error;
//! - `OUT/events.tsv`: `epoch_ms<TAB>pid<TAB>shard<TAB>event`: `initialize <position>`,
//!   `shutdownRequested`, `leaseLost`, `shardEnded`, and `exit 0` / `exit error` when the
//!   process ends.
//!
//! A process killed with SIGKILL can leave a torn last line: such lines are counted apart and
//! never taken for a record.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kcl_protocol::Position;

use crate::ledger::{Ledger, Tally};

/// One line of a record (or dead-letter) file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The shard it was read from.
    pub shard: String,
    /// Its sequence and sub-sequence number.
    pub position: Position,
    /// The partition key.
    pub partition_key: String,
    /// The payload, unescaped.
    pub payload: String,
    /// 0-based line number in its file (file order is delivery order for one shard).
    pub line: usize,
    /// Dead letters only: the attempts made before `on_failure` got the record.
    pub attempts: u32,
}

/// One line of `events.tsv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// When, in milliseconds since the epoch.
    pub ms: u64,
    /// The record processor's PID.
    pub pid: u32,
    /// The shard (empty for `exit` events).
    pub shard: String,
    /// What happened: `initialize TrimHorizon`, `leaseLost`, `exit 0`, ...
    pub what: String,
}

impl Event {
    /// The first word of [`Event::what`]: `initialize`, `leaseLost`, `exit`, ...
    pub fn kind(&self) -> &str {
        self.what.split(' ').next().unwrap_or("")
    }

    /// For an `initialize` event: the position it resumed at (`Some`), or `None` for a
    /// sentinel (see [`Event::initialize_sentinel`]).
    pub fn initialize_position(&self) -> Option<Position> {
        // `initialize Checkpoint(Position(SEQ/SUB))`
        let rest = self.what.split("Position(").nth(1)?;
        let inner = rest.split(')').next()?;
        let (seq, sub) = inner.split_once('/')?;
        Some(Position::new(seq, sub.parse().ok()?))
    }

    /// For an `initialize` event at a sentinel: its word (`TrimHorizon`, `Latest`, ...).
    pub fn initialize_sentinel(&self) -> Option<&str> {
        let word = self.what.strip_prefix("initialize ")?;
        (!word.contains('(')).then_some(word)
    }
}

/// The output folder of one worker's sink.
#[derive(Clone, Debug)]
pub struct Sink {
    dir: PathBuf,
}

impl Sink {
    /// The sink writing into `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Sink { dir: dir.into() }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn files(&self, prefix: &str) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with(prefix) && n.ends_with(".tsv"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        found
    }

    /// Every delivery of every shard file, and the number of torn lines.
    pub fn deliveries(&self) -> (Vec<Delivery>, usize) {
        read(&self.files("records-"), false)
    }

    /// Every dead letter (declared_sink's `on_failure`), and the number of torn lines.
    pub fn dead_letters(&self) -> (Vec<Delivery>, usize) {
        read(&self.files("dead-letters-"), true)
    }

    /// `{file name: line count}`: a mark to tell later deliveries from earlier ones.
    pub fn line_counts(&self) -> BTreeMap<String, usize> {
        self.files("records-")
            .into_iter()
            .filter_map(|path| {
                let bytes = std::fs::read(&path).ok()?;
                let name = path.file_name()?.to_str()?.to_owned();
                Some((name, bytes.iter().filter(|&&b| b == b'\n').count()))
            })
            .collect()
    }

    /// Deliveries written after `mark` (a [`Sink::line_counts`] result).
    pub fn deliveries_since(&self, mark: &BTreeMap<String, usize>) -> Vec<Delivery> {
        self.deliveries()
            .0
            .into_iter()
            .filter(|d| {
                d.line
                    >= mark
                        .get(&format!("records-{}.tsv", d.shard))
                        .copied()
                        .unwrap_or(0)
            })
            .collect()
    }

    /// Every well-formed line of `events.tsv`, in file order.
    pub fn events(&self) -> Vec<Event> {
        let bytes = std::fs::read(self.dir.join("events.tsv")).unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|line| {
                let mut parts = line.splitn(4, '\t');
                let ms = parts.next()?.parse().ok()?;
                let pid = parts.next()?.parse().ok()?;
                let shard = parts.next()?.to_owned();
                let what = parts.next()?.to_owned();
                Some(Event {
                    ms,
                    pid,
                    shard,
                    what,
                })
            })
            .collect()
    }

    /// The events of each PID, in file order.
    pub fn events_by_pid(&self) -> BTreeMap<u32, Vec<Event>> {
        let mut grouped: BTreeMap<u32, Vec<Event>> = BTreeMap::new();
        for event in self.events() {
            grouped.entry(event.pid).or_default().push(event);
        }
        grouped
    }
}

fn read(paths: &[PathBuf], dead: bool) -> (Vec<Delivery>, usize) {
    let mut found = Vec::new();
    let mut torn = 0;
    for path in paths {
        let bytes = std::fs::read(path).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for (number, line) in text.split_inclusive('\n').enumerate() {
            match parse_line(line, dead, number) {
                Some(delivery) => found.push(delivery),
                None => torn += 1,
            }
        }
    }
    (found, torn)
}

fn parse_line(line: &str, dead: bool, number: usize) -> Option<Delivery> {
    let body = line.strip_suffix('\n')?;
    let fields: Vec<&str> = body.split('\t').collect();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if fields.len() != if dead { 7 } else { 5 } || !digits(fields[1]) || !digits(fields[2]) {
        return None;
    }
    let attempts = if dead {
        if !digits(fields[5]) {
            return None;
        }
        fields[5].parse().ok()?
    } else {
        0
    };
    Some(Delivery {
        shard: fields[0].to_owned(),
        position: Position::new(fields[1], fields[2].parse().ok()?),
        partition_key: unescape(fields[3]),
        payload: unescape(fields[4]),
        line: number,
        attempts,
    })
}

/// Undoes file_sink's `escape`: `\\`, `\t`, `\n`, `\r` (any other escaped character stands for
/// itself).
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Compares the ledger with the deliveries of all `sinks`, as the Python suite's `tally`: with
/// `dead_letters`, a record in a dead-letter file is accounted for too (not lost; `dead` counts
/// those not also handled), while `handled` and `duplicated` stay about the record files.
pub fn tally(ledger: &Ledger, sinks: &[&Sink], dead_letters: bool) -> Tally {
    let puts = ledger.snapshot();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let (mut unknown, mut torn) = (0, 0);
    for sink in sinks {
        let (deliveries, torn_here) = sink.deliveries();
        torn += torn_here;
        for d in deliveries {
            if puts.contains_key(&d.payload) {
                *seen.entry(d.payload).or_insert(0) += 1;
            } else {
                unknown += 1;
            }
        }
    }
    let mut dead = BTreeSet::new();
    if dead_letters {
        for sink in sinks {
            let (letters, torn_here) = sink.dead_letters();
            torn += torn_here;
            for d in letters {
                if !puts.contains_key(&d.payload) {
                    unknown += 1;
                } else if !seen.contains_key(&d.payload) {
                    dead.insert(d.payload);
                }
            }
        }
    }
    let missing: Vec<String> = puts
        .keys()
        .filter(|p| !seen.contains_key(*p) && !dead.contains(*p))
        .cloned()
        .collect();
    Tally {
        put: puts.len(),
        handled: seen.len(),
        duplicated: seen.values().sum::<usize>() - seen.len(),
        lost: missing.len(),
        unknown,
        torn,
        missing_sample: missing.into_iter().take(5).collect(),
        dead: dead.len(),
    }
}

/// The greatest position written for each shard (in a record file, or with `dead_letters`
/// also in a dead-letter file): where a processor that checkpoints what it handled left off.
pub fn last_handled_by_shard(sinks: &[&Sink], dead_letters: bool) -> BTreeMap<String, Position> {
    let mut last: BTreeMap<String, Position> = BTreeMap::new();
    for sink in sinks {
        let mut written = sink.deliveries().0;
        if dead_letters {
            written.extend(sink.dead_letters().0);
        }
        for d in written {
            match last.get(&d.shard) {
                Some(seen) if *seen >= d.position => {}
                _ => {
                    last.insert(d.shard.clone(), d.position);
                }
            }
        }
    }
    last
}

/// The payloads written (record files and dead letters) by all `sinks`.
pub fn written(sinks: &[&Sink]) -> BTreeSet<String> {
    let mut payloads = BTreeSet::new();
    for sink in sinks {
        payloads.extend(sink.deliveries().0.into_iter().map(|d| d.payload));
        payloads.extend(sink.dead_letters().0.into_iter().map(|d| d.payload));
    }
    payloads
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Put;

    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kcl-e2e-sink-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn put(ledger: &Ledger, payload: &str, seq: &str) {
        ledger.add(Put {
            payload: payload.into(),
            partition_key: "k".into(),
            shard: "shardId-000000000000".into(),
            position: Position::new(seq, 0),
        });
    }

    #[test]
    fn tally_counts_handled_duplicates_lost_unknown_and_torn_lines() {
        let dir = folder("tally");
        std::fs::write(
            dir.join("records-shardId-000000000000.tsv"),
            "shardId-000000000000\t1\t0\tk\ta\n\
             shardId-000000000000\t2\t0\tk\tb\n\
             shardId-000000000000\t2\t0\tk\tb\n\
             shardId-000000000000\t3\t0\tk\tnever-put\n\
             shardId-000000000000\t4\t0\tk\tto",
        )
        .unwrap();
        let ledger = Ledger::new();
        for (payload, seq) in [("a", "1"), ("b", "2"), ("c", "5")] {
            put(&ledger, payload, seq);
        }
        let sink = Sink::new(&dir);
        let tally = tally(&ledger, &[&sink], false);
        assert_eq!(
            (
                tally.put,
                tally.handled,
                tally.duplicated,
                tally.lost,
                tally.unknown,
                tally.torn
            ),
            (3, 2, 1, 1, 1, 1)
        );
        assert_eq!(tally.missing_sample, ["c"]);
        assert_eq!(
            last_handled_by_shard(&[&sink], false)["shardId-000000000000"],
            Position::new("3", 0)
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn dead_letters_count_as_accounted_for() {
        let dir = folder("dead");
        std::fs::write(
            dir.join("dead-letters-shardId-000000000000.tsv"),
            "shardId-000000000000\t5\t0\tk\tc\t3\tboom\n",
        )
        .unwrap();
        let ledger = Ledger::new();
        put(&ledger, "c", "5");
        let sink = Sink::new(&dir);
        assert_eq!(tally(&ledger, &[&sink], false).lost, 1);
        let with = tally(&ledger, &[&sink], true);
        assert_eq!((with.lost, with.dead, with.handled), (0, 1, 0));
        assert_eq!(sink.dead_letters().0[0].attempts, 3);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn escapes_and_events_read_back() {
        assert_eq!(unescape(r"a\tb\\c\nd\re"), "a\tb\\c\nd\re");
        let dir = folder("events");
        std::fs::write(
            dir.join("events.tsv"),
            "1700000000000\t42\tshardId-1\tinitialize TrimHorizon\n\
             1700000000001\t43\tshardId-2\tinitialize Checkpoint(Position(4959/2))\n\
             1700000000002\t42\t\texit 0\n\
             garbage\n",
        )
        .unwrap();
        let events = Sink::new(&dir).events();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].initialize_sentinel(), Some("TrimHorizon"));
        assert_eq!(
            events[1].initialize_position(),
            Some(Position::new("4959", 2))
        );
        assert_eq!(
            (events[2].kind(), events[2].what.as_str()),
            ("exit", "exit 0")
        );
        assert_eq!(Sink::new(&dir).events_by_pid()[&42].len(), 2);
        let _ = std::fs::remove_dir_all(dir);
    }
}
