//! The checkpoint audit running beside a scenario (scripts/e2e/declared.py's
//! `CheckpointAudit`): about once a second it reads the lease table, then the sinks, and records
//! every stored checkpoint that passes a record of the ledger that is in neither a record file
//! nor a dead-letter file. `SHARD_END` passes every record of its shard; `TRIM_HORIZON` and the
//! other sentinels pass nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::leases::{LeaseTable, short_shard};
use crate::ledger::Ledger;
use crate::report::Report;
use crate::sink::{Sink, written};

/// A stored checkpoint seen past unwritten records.
#[derive(Clone, Debug, PartialEq)]
pub struct Passed {
    /// Seconds since the audit started.
    pub at: f64,
    /// The lease key.
    pub shard: String,
    /// The checkpoint stored (its text).
    pub checkpoint: String,
    /// The payloads at or before it in neither the sink nor the dead letters.
    pub missing: Vec<String>,
}

/// What the audit saw.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Audited {
    /// Lease-table reads.
    pub samples: usize,
    /// (sample, shard) pairs with a numeric or `SHARD_END` checkpoint.
    pub checked: usize,
    /// The largest number of records at or before one checked checkpoint.
    pub passed_records: usize,
    /// Every checkpoint seen past unwritten records.
    pub violations: Vec<Passed>,
    /// Failed reads.
    pub errors: usize,
}

impl Audited {
    /// One sample: the table first, then the sinks (a record checkpointed before the read must
    /// already be written).
    pub fn sample(
        &mut self,
        table: &LeaseTable,
        ledger: &Ledger,
        sinks: &[&Sink],
        since: Instant,
    ) -> Result<()> {
        let checkpoints = table.checkpoints()?;
        let written = written(sinks);
        let mut by_shard: BTreeMap<String, Vec<_>> = BTreeMap::new();
        for put in ledger.snapshot().into_values() {
            by_shard.entry(put.shard.clone()).or_default().push(put);
        }
        self.samples += 1;
        for (shard, checkpoint) in checkpoints {
            let puts = by_shard.get(&shard).map(Vec::as_slice).unwrap_or(&[]);
            let covered: Vec<_> = if checkpoint.is_shard_end() {
                puts.iter().collect()
            } else if let Some(limit) = checkpoint.position() {
                puts.iter().filter(|p| p.position <= limit).collect()
            } else {
                continue;
            };
            self.checked += 1;
            self.passed_records = self.passed_records.max(covered.len());
            let mut missing: Vec<String> = covered
                .iter()
                .filter(|p| !written.contains(&p.payload))
                .map(|p| p.payload.clone())
                .collect();
            if !missing.is_empty() {
                missing.sort();
                self.violations.push(Passed {
                    at: since.elapsed().as_secs_f64(),
                    shard,
                    checkpoint: checkpoint.sequence_number().to_owned(),
                    missing,
                });
            }
        }
        Ok(())
    }

    /// The check `name`: at least one checkpoint checked and none past unwritten records.
    pub fn check(&self, report: &mut Report, name: &str) -> bool {
        let mut detail = format!(
            "{} lease-table samples, {} checkpoints checked (up to {} records at or before one)",
            self.samples, self.checked, self.passed_records
        );
        if self.errors > 0 {
            detail.push_str(&format!(", {} failed reads", self.errors));
        }
        if let Some(first) = self.violations.first() {
            let cp = &first.checkpoint;
            detail.push_str(&format!(
                "; {} samples with a checkpoint past unwritten records, first at +{:.1}s: {} \
                 checkpoint ...{} passes {} record(s) in neither the sink nor the dead letters, \
                 e.g. {:?}",
                self.violations.len(),
                first.at,
                short_shard(&first.shard),
                &cp[cp.len().saturating_sub(6)..],
                first.missing.len(),
                &first.missing[..first.missing.len().min(3)]
            ));
        }
        report.check(name, self.checked > 0 && self.violations.is_empty(), detail)
    }
}

/// The audit's thread; [`CheckpointAudit::stop`] ends it with one last sample.
#[derive(Debug)]
pub struct CheckpointAudit {
    halt: Arc<AtomicBool>,
    thread: Option<JoinHandle<Audited>>,
    table: LeaseTable,
    ledger: Ledger,
    sinks: Vec<Sink>,
    since: Instant,
}

impl CheckpointAudit {
    /// Starts sampling `table` against `ledger` and `sinks` every second.
    pub fn start(table: &LeaseTable, ledger: &Ledger, sinks: &[&Sink]) -> CheckpointAudit {
        let halt = Arc::new(AtomicBool::new(false));
        let since = Instant::now();
        let (stop, t, l) = (halt.clone(), table.clone(), ledger.clone());
        let s: Vec<Sink> = sinks.iter().map(|s| (*s).clone()).collect();
        let thread = std::thread::spawn(move || {
            let mut audited = Audited::default();
            let sinks: Vec<&Sink> = s.iter().collect();
            loop {
                let until = Instant::now() + Duration::from_secs(1);
                while Instant::now() < until {
                    if stop.load(Ordering::SeqCst) {
                        return audited;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                if audited.sample(&t, &l, &sinks, since).is_err() {
                    audited.errors += 1;
                }
            }
        });
        CheckpointAudit {
            halt,
            thread: Some(thread),
            table: table.clone(),
            ledger: ledger.clone(),
            sinks: sinks.iter().map(|s| (*s).clone()).collect(),
            since,
        }
    }

    /// Stops sampling and takes one last sample; what was seen.
    pub fn stop(mut self) -> Audited {
        self.halt.store(true, Ordering::SeqCst);
        let mut audited = self
            .thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        let sinks: Vec<&Sink> = self.sinks.iter().collect();
        if audited
            .sample(&self.table, &self.ledger, &sinks, self.since)
            .is_err()
        {
            audited.errors += 1;
        }
        audited
    }
}

impl Drop for CheckpointAudit {
    fn drop(&mut self) {
        self.halt.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
