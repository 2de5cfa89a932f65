//! What a scenario put into a stream, record by record, and its reconciliation with what the
//! processors handled: put, handled, duplicates, lost, exactly as the Python suite's `Ledger`
//! and `tally` (scripts/e2e/stream.py and sink.py).
//!
//! Every record put has a unique payload (e.g. `s1-000123`), so a sink's lines reconcile
//! exactly; the shard and sequence number Kinesis returned for each put are kept too, which
//! gives the expected last checkpoint of each shard.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use kcl_protocol::Position;

/// One record as Kinesis accepted it (for a KPL user record: its place in the aggregate).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Put {
    /// The payload (unique within a ledger).
    pub payload: String,
    /// The partition key (of the Kinesis record: an aggregate's for its user records).
    pub partition_key: String,
    /// The shard Kinesis put it into.
    pub shard: String,
    /// Its sequence number and sub-sequence number (the index in its aggregate, else 0).
    pub position: Position,
}

/// Everything put into one stream by a scenario; cheap to clone and shared between threads.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    records: Arc<Mutex<BTreeMap<String, Put>>>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Put>> {
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps the first accepted put of a payload (a retry after a lost answer could put it
    /// twice; the sink then shows it as a duplicate delivery).
    pub fn add(&self, put: Put) {
        self.lock().entry(put.payload.clone()).or_insert(put);
    }

    /// Every put, by payload.
    pub fn snapshot(&self) -> BTreeMap<String, Put> {
        self.lock().clone()
    }

    /// How many records were put.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing was put.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The position of the last record put into each shard: where each lease's checkpoint
    /// must end when everything was handled.
    pub fn last_by_shard(&self) -> BTreeMap<String, Position> {
        let mut last: BTreeMap<String, Position> = BTreeMap::new();
        for put in self.lock().values() {
            match last.get(&put.shard) {
                Some(seen) if *seen >= put.position => {}
                _ => {
                    last.insert(put.shard.clone(), put.position.clone());
                }
            }
        }
        last
    }

    /// How many records went into each shard.
    pub fn per_shard(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for put in self.lock().values() {
            *counts.entry(put.shard.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// The shards that received records.
    pub fn shards(&self) -> BTreeSet<String> {
        self.lock().values().map(|put| put.shard.clone()).collect()
    }
}

/// The reconciliation of a ledger with what the sinks wrote (the Python suite's `Tally`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Records put.
    pub put: usize,
    /// Distinct records put that were written at least once.
    pub handled: usize,
    /// Deliveries beyond the first of records put.
    pub duplicated: usize,
    /// Records put that were never written (nor dead-lettered, when dead letters count).
    pub lost: usize,
    /// Written records that were never put (must stay 0).
    pub unknown: usize,
    /// Torn lines (a process killed mid-write), never taken for a record.
    pub torn: usize,
    /// Up to five lost payloads, sorted.
    pub missing_sample: Vec<String>,
    /// Distinct records put that are only in a dead-letter file (when dead letters count).
    pub dead: usize,
}

impl Tally {
    /// `put=N handled=N duplicated=N lost=N` (then dead letters, unknown and torn lines when
    /// there are any), as the Python suite prints it.
    pub fn line(&self) -> String {
        let mut text = format!(
            "put={} handled={} duplicated={} lost={}",
            self.put, self.handled, self.duplicated, self.lost
        );
        if self.dead > 0 {
            text.push_str(&format!(" dead-lettered={}", self.dead));
        }
        if self.unknown > 0 {
            text.push_str(&format!(" unknown={}", self.unknown));
        }
        if self.torn > 0 {
            text.push_str(&format!(" torn-lines={}", self.torn));
        }
        if !self.missing_sample.is_empty() {
            text.push_str(&format!(" missing e.g. {}", self.missing_sample.join(",")));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(payload: &str, shard: &str, seq: &str, sub: u64) -> Put {
        Put {
            payload: payload.into(),
            partition_key: format!("pk-{payload}"),
            shard: shard.into(),
            position: Position::new(seq, sub),
        }
    }

    #[test]
    fn the_first_put_of_a_payload_is_kept_and_the_last_per_shard_is_numeric() {
        let ledger = Ledger::new();
        ledger.add(put("a", "s0", "9", 0));
        ledger.add(put("a", "s1", "1", 0));
        ledger.add(put("b", "s0", "10", 0));
        ledger.add(put("c", "s0", "10", 2));
        ledger.add(put(
            "d",
            "s1",
            "49590338271490256608559692538361571095921575989136588898",
            0,
        ));
        assert_eq!(ledger.len(), 4);
        assert_eq!(ledger.snapshot()["a"].shard, "s0");
        let last = ledger.last_by_shard();
        assert_eq!(last["s0"], Position::new("10", 2));
        assert_eq!(last["s1"].sequence_number().as_str().len(), 56);
        assert_eq!(ledger.per_shard()["s0"], 3);
    }

    #[test]
    fn the_line_names_what_is_not_zero() {
        let tally = Tally {
            put: 3,
            handled: 2,
            duplicated: 1,
            lost: 1,
            missing_sample: vec!["x".into()],
            ..Tally::default()
        };
        assert_eq!(
            tally.line(),
            "put=3 handled=2 duplicated=1 lost=1 missing e.g. x"
        );
    }
}
