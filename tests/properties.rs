//! Properties of checkpointing under random batches, failures, checkpoint replies, strategies
//! and failure policies (proptest), and a replay with kills and restarts.
//!
//! Invariants, checked after every action the daemon sends:
//! - the stored checkpoint never passes a record that user code did not finish (handled, or
//!   handed to the `on_failure` hook under `skip`);
//! - the stored checkpoint never goes backwards;
//! - every action is answered with a status, except under the `exit` policy after a failure of
//!   records (never after a checkpoint error the handler returned, nor a lost lease);
//! - `on_failure` never receives records because of a checkpoint error.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use kcl::testing::{sequence_number, StoredCheckpoint, TestDaemon};
use kcl::{
    Batch, CheckpointError, CheckpointStrategy, Checkpointer, Error, Failure, FailurePolicy,
    Position, Record, RecordProcessor, Result, StartingPosition,
};
use proptest::prelude::*;

/// How a poisoned record fails.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// `Err` naming the record (partial success before it).
    ErrAtRecord,
    /// `Err` naming nothing (the whole call failed).
    Err,
    /// A panic.
    Panic,
}

/// Shared between the processor and the test (and across restarts).
#[derive(Default)]
struct Ledger {
    /// Times each record was finished (handled or dead-lettered).
    finished: BTreeMap<Position, u32>,
    /// Failures left per poisoned record (`u32::MAX`: forever).
    faults_left: BTreeMap<Position, (Fault, u32)>,
    /// Ask for a checkpoint now after batches with this many records (handler-directed).
    request_every: Option<usize>,
    /// How the handler checkpoints by itself, propagating errors with `?`.
    own_checkpoint: OwnCheckpoint,
    /// Dead-lettered because of a checkpoint error (must stay empty).
    dead_lettered_checkpoint_errors: Vec<String>,
}

/// A handler's own checkpoint, its error returned with `?`.
#[derive(Clone, Copy, Debug, Default)]
enum OwnCheckpoint {
    /// None.
    #[default]
    None,
    /// `checkpoint()?` after handling the batch.
    AllAtEnd,
    /// `checkpoint_at(last)?` after handling the batch.
    LastAtEnd,
    /// `checkpoint_handled()?` before handling the batch (the previous batches).
    HandledFirst,
}

/// Handles records in order; at a poisoned record with faults left it fails as told. What it
/// got through is written to the ledger: with `ErrAtRecord` the records before the poisoned one,
/// with `Err` and `Panic` nothing of the call.
struct Processor(Rc<RefCell<Ledger>>);

impl RecordProcessor for Processor {
    fn process_records(
        &mut self,
        batch: &Batch,
        checkpointer: &mut Checkpointer<'_>,
    ) -> Result<()> {
        let own = self.0.borrow().own_checkpoint;
        if let OwnCheckpoint::HandledFirst = own {
            checkpointer.checkpoint_handled()?;
        }
        let mut ledger = self.0.borrow_mut();
        for (index, record) in batch.iter().enumerate() {
            let Some((fault, left)) = ledger.faults_left.get_mut(record.position()) else {
                continue;
            };
            if *left == 0 {
                continue;
            }
            *left = left.saturating_sub(1);
            let fault = *fault;
            match fault {
                Fault::ErrAtRecord => {
                    for done in &batch.records()[..index] {
                        *ledger.finished.entry(done.position().clone()).or_default() += 1;
                    }
                    return Err(Error::msg("poisoned").at_record(record.position().clone()));
                }
                Fault::Err => return Err(Error::msg("poisoned")),
                Fault::Panic => {
                    drop(ledger);
                    panic!("poisoned");
                }
            }
        }
        for record in batch {
            *ledger
                .finished
                .entry(record.position().clone())
                .or_default() += 1;
        }
        if ledger.request_every.is_some_and(|n| batch.len() >= n) {
            checkpointer.request_checkpoint();
        }
        drop(ledger);
        match own {
            OwnCheckpoint::AllAtEnd => checkpointer.checkpoint()?,
            OwnCheckpoint::LastAtEnd => {
                if let Some(last) = batch.last() {
                    checkpointer.checkpoint_at(last)?;
                }
            }
            OwnCheckpoint::None | OwnCheckpoint::HandledFirst => {}
        }
        Ok(())
    }

    fn on_failure(&mut self, failure: &Failure<'_>) -> Result<()> {
        let mut ledger = self.0.borrow_mut();
        if let Some(error) = failure.error.downcast_ref::<CheckpointError>() {
            ledger
                .dead_lettered_checkpoint_errors
                .push(error.to_string());
        }
        for record in failure.records {
            *ledger
                .finished
                .entry(record.position().clone())
                .or_default() += 1;
        }
        Ok(())
    }
}

fn records(count: usize, aggregated_every: usize) -> Vec<Record> {
    // Every `aggregated_every`-th Kinesis record is a KPL aggregate of 3 user records.
    let mut out = Vec::new();
    let mut n = 0u64;
    while out.len() < count {
        n += 1;
        let subs = if aggregated_every > 0 && n % aggregated_every as u64 == 0 {
            3
        } else {
            1
        };
        for sub in 0..subs {
            if out.len() < count {
                out.push(Record::new(
                    format!("r{n}/{sub}"),
                    format!("pk-{n}"),
                    Position::new(sequence_number(n), sub),
                ));
            }
        }
    }
    out
}

fn strategy_from(choice: u8, every: u64) -> CheckpointStrategy {
    match choice % 4 {
        0 => CheckpointStrategy::EveryBatch,
        1 => CheckpointStrategy::every_records(every.max(1)),
        2 => CheckpointStrategy::Manual,
        _ => CheckpointStrategy::every_interval(Duration::ZERO),
    }
}

/// Checks both invariants against the ledger; `last` is the previous stored checkpoint.
fn check_invariants(
    daemon_stored: Option<StoredCheckpoint>,
    all: &[Record],
    ledger: &Ledger,
    last: &mut Option<StoredCheckpoint>,
) -> std::result::Result<(), TestCaseError> {
    let limit = match &daemon_stored {
        None => None,
        Some(StoredCheckpoint::At(p)) => Some(p.clone()),
        Some(StoredCheckpoint::ShardEnd) => all.last().map(|r| r.position().clone()),
    };
    if let Some(limit) = &limit {
        for record in all.iter().filter(|r| r.position() <= limit) {
            prop_assert!(
                ledger.finished.get(record.position()).copied().unwrap_or(0) > 0,
                "checkpoint {daemon_stored:?} passes unfinished record {}",
                record.position()
            );
        }
    }
    let rank = |s: &Option<StoredCheckpoint>| match s {
        None => (0, None),
        Some(StoredCheckpoint::At(p)) => (1, Some(p.clone())),
        Some(StoredCheckpoint::ShardEnd) => (2, None),
    };
    prop_assert!(
        rank(&daemon_stored) >= rank(last),
        "checkpoint went backwards: {last:?} -> {daemon_stored:?}"
    );
    *last = daemon_stored;
    Ok(())
}

fn reply_name(choice: u8) -> &'static str {
    match choice % 6 {
        0 => "ThrottlingException",
        1 => "KinesisClientLibDependencyException",
        2 => "ShutdownException",
        3 => "IllegalArgumentException",
        _ => "",
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn checkpoints_never_pass_an_unhandled_record_nor_go_backwards(
        count in 1usize..60,
        aggregated_every in 0usize..4,
        batch_sizes in proptest::collection::vec(1usize..12, 1..30),
        poison in proptest::collection::vec((0usize..60, 0u8..3, 1u32..5), 0..4),
        replies in proptest::collection::vec(0u8..12, 0..20),
        strategy in 0u8..4,
        every in 1u64..10,
        then in 0u8..3,
        attempts in 1u32..4,
        request_every in proptest::option::of(1usize..6),
        own_checkpoint in 0u8..4,
        end_with_shard_end in any::<bool>(),
    ) {
        let all = records(count, aggregated_every);
        let own_checkpoint = [
            OwnCheckpoint::None,
            OwnCheckpoint::AllAtEnd,
            OwnCheckpoint::LastAtEnd,
            OwnCheckpoint::HandledFirst,
        ][own_checkpoint as usize];
        let ledger = Rc::new(RefCell::new(Ledger { request_every, own_checkpoint, ..Ledger::default() }));
        for (index, fault, times) in poison {
            if let Some(record) = all.get(index % all.len()) {
                let fault = [Fault::ErrAtRecord, Fault::Err, Fault::Panic][fault as usize];
                let times = if times == 4 { u32::MAX } else { times };
                ledger.borrow_mut().faults_left.insert(record.position().clone(), (fault, times));
            }
        }
        let policy = [FailurePolicy::stop, FailurePolicy::skip, FailurePolicy::exit][then as usize]()
            .attempts(attempts)
            .backoff(Duration::ZERO, Duration::ZERO);
        let runtime = kcl::Runtime::new(Processor(ledger.clone()))
            .checkpoint_strategy(strategy_from(strategy, every))
            .failure_policy(policy)
            .checkpoint_retry(kcl::RetryPolicy::immediate(3));
        let mut daemon = TestDaemon::from_runtime(runtime);
        let scripted: Vec<std::result::Result<(), &str>> = replies
            .iter()
            .map(|&c| match reply_name(c) { "" => Ok(()), name => Err(name) })
            .filter(|r| r.is_err())
            .collect();
        daemon.reply_next_checkpoints(scripted);
        daemon.initialize("shardId-000000000000");
        let mut last = None;
        let mut offset = 0;
        for size in batch_sizes {
            if offset >= all.len() {
                break;
            }
            let end = (offset + size).min(all.len());
            let step = daemon.process_records(all[offset..end].to_vec(), Some(0));
            offset = end;
            check_invariants(daemon.stored_checkpoint(), &all, &ledger.borrow(), &mut last)?;
            prop_assert!(ledger.borrow().dead_lettered_checkpoint_errors.is_empty());
            if let Some(reason) = daemon.exit_reason() {
                // Only a failure of records may end the process, and only under `exit`.
                prop_assert_eq!(then, 2);
                prop_assert!(reason.contains("poisoned"), "exit for {}", reason);
                prop_assert!(step.status.is_none());
                return Ok(()); // the process is gone
            }
            prop_assert_eq!(step.status.as_deref(), Some("processRecords"));
        }
        let step = if end_with_shard_end && offset >= all.len() {
            daemon.shard_ended()
        } else {
            daemon.shutdown_requested()
        };
        prop_assert!(step.status.is_some());
        check_invariants(daemon.stored_checkpoint(), &all, &ledger.borrow(), &mut last)?;
    }
}

/// A worker's life with kills and restarts: each "process" resumes from the stored checkpoint,
/// gets the records after it in batches, fails on poisoned records for a while (the default
/// failure policy stops the shard), and is killed at some point. In the end every record was
/// handled at least once.
#[test]
fn replay_with_kills_and_restarts_handles_every_record_at_least_once() {
    let total = 400;
    let all = records(total, 5);
    let ledger = Rc::new(RefCell::new(Ledger::default()));
    // Transient poison: each fails a few times across restarts, then works.
    for (i, record) in all.iter().enumerate().filter(|(i, _)| i % 37 == 11) {
        let fault = [Fault::ErrAtRecord, Fault::Err, Fault::Panic][i % 3];
        ledger
            .borrow_mut()
            .faults_left
            .insert(record.position().clone(), (fault, 1 + (i % 4) as u32));
    }
    let mut stored: Option<StoredCheckpoint> = None;
    let mut last = None;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |bound: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % bound
    };
    let mut restarts = 0;
    loop {
        restarts += 1;
        assert!(restarts < 500, "no progress");
        // Checkpoints every 30 records: a kill between them redelivers (duplicates, never losses).
        let runtime = kcl::Runtime::new(Processor(ledger.clone()))
            .checkpoint_strategy(CheckpointStrategy::every_records(30))
            .failure_policy(
                FailurePolicy::stop()
                    .attempts(2)
                    .backoff(Duration::ZERO, Duration::ZERO),
            );
        let mut daemon = TestDaemon::from_runtime(runtime);
        let start = match &stored {
            None => StartingPosition::TrimHorizon,
            Some(StoredCheckpoint::At(p)) => StartingPosition::Checkpoint(p.clone()),
            Some(StoredCheckpoint::ShardEnd) => break,
        };
        let resume_after = start.checkpoint().cloned();
        daemon.initialize_at("shardId-000000000000", start);
        // Records after the checkpoint, as the daemon redelivers them.
        let pending: Vec<Record> = all
            .iter()
            .filter(|r| resume_after.as_ref().is_none_or(|p| r.position() > p))
            .cloned()
            .collect();
        let kill_after = 1 + next(8) as usize; // batches before this process is killed
        let mut offset = 0;
        let mut batches = 0;
        let mut killed = false;
        while offset < pending.len() {
            let end = (offset + 1 + next(25) as usize).min(pending.len());
            daemon.process_records(pending[offset..end].to_vec(), Some(0));
            offset = end;
            batches += 1;
            check_invariants(
                daemon.stored_checkpoint(),
                &all,
                &ledger.borrow(),
                &mut last,
            )
            .unwrap();
            if batches >= kill_after && next(3) == 0 {
                killed = true; // kill -9: no shutdown, the stored checkpoint is what survives
                break;
            }
        }
        if !killed {
            daemon.shard_ended();
            check_invariants(
                daemon.stored_checkpoint(),
                &all,
                &ledger.borrow(),
                &mut last,
            )
            .unwrap();
        }
        stored = daemon.stored_checkpoint();
    }
    let ledger = ledger.borrow();
    let unhandled: Vec<_> = all
        .iter()
        .filter(|r| !ledger.finished.contains_key(r.position()))
        .collect();
    assert!(unhandled.is_empty(), "never handled: {unhandled:?}");
    let duplicates: u32 = ledger.finished.values().map(|n| n.saturating_sub(1)).sum();
    let handled: BTreeSet<_> = ledger.finished.keys().collect();
    assert_eq!(handled.len(), total);
    assert!(
        duplicates > 0,
        "kills between checkpoints redeliver records"
    );
    eprintln!(
        "replay: {total} records, {restarts} processes, {duplicates} duplicate deliveries, 0 lost"
    );
}
