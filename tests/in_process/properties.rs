//! Properties of checkpointing under random batches, failures, checkpoint replies, strategies,
//! failure policies and handler forms (proptest), and a replay with kills and restarts.
//!
//! Invariants, checked after every action the daemon sends:
//! - no checkpoint the SDK *asks for* passes a record that user code did not finish (handled, or
//!   handed to the `on_failure` hook under `skip`), whatever the daemon answers; and so neither
//!   does the stored checkpoint;
//! - the SDK never asks for a position below the stored checkpoint (the judge would refuse it, so
//!   the stored value cannot show it; the requests do);
//! - every action is answered with a status, except under the `exit` policy after a failure of
//!   records (never after a checkpoint error the handler returned, nor a lost lease);
//! - `on_failure` never receives records because of a checkpoint error.
//!
//! The generator ranges over every policy (stop, skip, exit; a failing `on_failure`), every
//! strategy (every batch, every N records, every T seconds, both, manual, handler-directed),
//! faults (an error naming the record, an error naming none, a panic, a checkpoint then an error,
//! a payload the extractor cannot decode), handler forms (a batch handler with a batch extractor,
//! a per-record handler through `for_each_record`), handler-made checkpoints propagated with `?`,
//! and replies interleaving successes with every error name the daemon sends. The distribution
//! of what the cases exercised is printed and checked.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use kcl::handler::for_each_record;
use kcl::testing::{Step, StoredCheckpoint, TestDaemon, sequence_number};
use kcl::{
    Batch, Checkpoint, CheckpointError, CheckpointStrategy, Checkpointer, Error, Failure,
    FailurePolicy, Position, Record, RecordProcessor, Result, StartingPosition,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// How a poisoned record fails.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// `Err` naming the record (partial success before it).
    ErrAtRecord,
    /// `Err` naming nothing (the whole call failed).
    Err,
    /// A panic.
    Panic,
    /// A checkpoint of what came before it, then `Err` naming the record.
    CheckpointThenErr,
    /// A payload that is not UTF-8: the extractor fails, every time.
    BadPayload,
}

const FAULTS: [Fault; 5] = [
    Fault::ErrAtRecord,
    Fault::Err,
    Fault::Panic,
    Fault::CheckpointThenErr,
    Fault::BadPayload,
];

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
    /// A checkpoint at every third record (`checkpoint_at(record)?`, or `Checkpoint::Now` in a
    /// per-record handler).
    EveryThird,
}

const OWN_CHECKPOINTS: [OwnCheckpoint; 5] = [
    OwnCheckpoint::None,
    OwnCheckpoint::AllAtEnd,
    OwnCheckpoint::LastAtEnd,
    OwnCheckpoint::HandledFirst,
    OwnCheckpoint::EveryThird,
];

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
    /// The handler is per record (`for_each_record`) rather than per batch.
    per_record: bool,
    /// `on_failure` fails.
    dead_letter_fails: bool,
    /// `shutdown_requested` and `shard_ended` checkpoint everything delivered, blindly (the SDK
    /// must refuse it past a record that failed), then what was handled.
    greedy_hooks: bool,
    /// Records dead-lettered.
    dead_lettered: usize,
    /// Dead-lettered because of a checkpoint error (must stay empty).
    dead_lettered_checkpoint_errors: Vec<String>,
}

impl Ledger {
    fn finish(&mut self, record: &Record) {
        *self.finished.entry(record.position().clone()).or_default() += 1;
    }

    /// The fault to raise at `record` now, if any (counting it).
    fn fault_at(&mut self, record: &Record) -> Option<Fault> {
        let (fault, left) = self.faults_left.get_mut(record.position())?;
        if *left == 0 {
            return None;
        }
        *left = left.saturating_sub(1);
        Some(*fault)
    }
}

/// Handles records in order; at a poisoned record with faults left it fails as told. What it got
/// through is written to the ledger.
struct Processor(Rc<RefCell<Ledger>>);

impl Processor {
    fn batch_form(&mut self, batch: &Batch, checkpointer: &mut Checkpointer<'_>) -> Result<()> {
        // A batch extractor: a payload that does not decode fails the call before any record.
        let _texts: Vec<String> = batch.extract()?;
        let own = self.0.borrow().own_checkpoint;
        for (index, record) in batch.iter().enumerate() {
            let fault = self.0.borrow_mut().fault_at(record);
            match fault {
                None | Some(Fault::BadPayload) => {}
                Some(Fault::ErrAtRecord) => {
                    return Err(Error::msg("poisoned").at_record(record.position().clone()));
                }
                Some(Fault::Err) => return Err(Error::msg("poisoned")),
                Some(Fault::Panic) => panic!("poisoned"),
                Some(Fault::CheckpointThenErr) => {
                    if index > 0 {
                        let _ = checkpointer.checkpoint_at(&batch.records()[index - 1]);
                    }
                    return Err(Error::msg("poisoned").at_record(record.position().clone()));
                }
            }
            self.0.borrow_mut().finish(record);
            if let OwnCheckpoint::EveryThird = own {
                if index % 3 == 2 {
                    checkpointer.checkpoint_at(record)?;
                }
            }
        }
        Ok(())
    }

    fn per_record_form(
        &mut self,
        batch: &Batch,
        checkpointer: &mut Checkpointer<'_>,
    ) -> Result<()> {
        let ledger = self.0.clone();
        let own = ledger.borrow().own_checkpoint;
        let mut index = 0;
        for_each_record(
            batch,
            checkpointer,
            |(record, _text): (Record, String), cp| {
                index += 1;
                let fault = ledger.borrow_mut().fault_at(&record);
                match fault {
                    None | Some(Fault::BadPayload) => {}
                    Some(Fault::ErrAtRecord | Fault::Err) => return Err(Error::msg("poisoned")),
                    Some(Fault::Panic) => panic!("poisoned"),
                    Some(Fault::CheckpointThenErr) => {
                        let _ = cp.checkpoint_handled();
                        return Err(Error::msg("poisoned"));
                    }
                }
                ledger.borrow_mut().finish(&record);
                Ok(match own {
                    OwnCheckpoint::EveryThird if index % 3 == 0 => Checkpoint::Now,
                    _ => Checkpoint::Later,
                })
            },
        )
    }
}

impl RecordProcessor for Processor {
    fn process_records(
        &mut self,
        batch: &Batch,
        checkpointer: &mut Checkpointer<'_>,
    ) -> Result<()> {
        let (own, per_record) = {
            let ledger = self.0.borrow();
            (ledger.own_checkpoint, ledger.per_record)
        };
        if let OwnCheckpoint::HandledFirst = own {
            checkpointer.checkpoint_handled()?;
        }
        if per_record {
            self.per_record_form(batch, checkpointer)?;
        } else {
            self.batch_form(batch, checkpointer)?;
        }
        if self
            .0
            .borrow()
            .request_every
            .is_some_and(|n| batch.len() >= n)
        {
            checkpointer.request_checkpoint();
        }
        match own {
            OwnCheckpoint::AllAtEnd => checkpointer.checkpoint()?,
            OwnCheckpoint::LastAtEnd => {
                if let Some(last) = batch.last() {
                    checkpointer.checkpoint_at(last)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn shutdown_requested(&mut self, checkpointer: &mut Checkpointer<'_>) -> Result<()> {
        if self.0.borrow().greedy_hooks {
            greedy_checkpoint(checkpointer);
        }
        checkpointer.checkpoint_handled()?;
        Ok(())
    }

    fn shard_ended(&mut self, checkpointer: &mut Checkpointer<'_>) -> Result<()> {
        if self.0.borrow().greedy_hooks {
            greedy_checkpoint(checkpointer);
        }
        checkpointer.checkpoint_handled()?;
        Ok(())
    }

    fn on_failure(&mut self, failure: &Failure<'_>) -> Result<()> {
        let mut ledger = self.0.borrow_mut();
        if let Some(error) = failure.error.downcast_ref::<CheckpointError>() {
            ledger
                .dead_lettered_checkpoint_errors
                .push(error.to_string());
        }
        if ledger.dead_letter_fails {
            return Err(Error::msg("dead-letter queue unavailable"));
        }
        for record in failure.records {
            ledger.finish(record);
            ledger.dead_lettered += 1;
        }
        Ok(())
    }
}

/// Checkpoints the last delivered record, whatever was handled: refused by the SDK
/// (`PastFailure`) when a record at or before it failed.
fn greedy_checkpoint(checkpointer: &mut Checkpointer<'_>) {
    if let Some(delivered) = checkpointer.last_delivered().cloned() {
        let _ = checkpointer.checkpoint_position(&delivered);
    }
}

/// `count` records; every `aggregated_every`-th Kinesis record is a KPL aggregate of 3 user
/// records; the records at `bad` carry a payload that is not UTF-8.
fn records(count: usize, aggregated_every: usize) -> Vec<Record> {
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
    let hour = Duration::from_secs(3600);
    match choice % 6 {
        0 => CheckpointStrategy::EveryBatch,
        1 => CheckpointStrategy::every_records(every.max(1)),
        2 => CheckpointStrategy::Manual,
        3 => CheckpointStrategy::every_interval(Duration::ZERO),
        4 => CheckpointStrategy::every_interval(hour),
        _ => CheckpointStrategy::every(every.max(1), hour),
    }
}

/// The stored checkpoint as a position (`SHARD_END`: past every record).
fn stored_position(stored: &Option<StoredCheckpoint>, all: &[Record]) -> Option<Position> {
    match stored {
        None => None,
        Some(StoredCheckpoint::At(p)) => Some(p.clone()),
        Some(StoredCheckpoint::ShardEnd) => all.last().map(|r| r.position().clone()),
    }
}

/// Every record at or below `limit` was finished.
fn nothing_unfinished_up_to(
    limit: &Position,
    what: &str,
    all: &[Record],
    ledger: &Ledger,
) -> std::result::Result<(), TestCaseError> {
    for record in all.iter().filter(|r| r.position() <= limit) {
        prop_assert!(
            ledger.finished.get(record.position()).copied().unwrap_or(0) > 0,
            "{what} {limit} passes unfinished record {}",
            record.position()
        );
    }
    Ok(())
}

/// Checks the invariants after one action: `before` is the checkpoint stored before it.
fn check_step(
    step: &Step,
    daemon: &TestDaemon<Processor>,
    before: &Option<StoredCheckpoint>,
    all: &[Record],
    ledger: &Ledger,
) -> std::result::Result<(), TestCaseError> {
    let before_position = stored_position(before, all);
    for call in &step.checkpoints {
        let asked = match &call.sequence_number {
            // Null: everything delivered.
            None => daemon.delivered().cloned(),
            Some(sequence) => Some(Position::new(
                sequence.as_str(),
                call.sub_sequence_number.unwrap_or(0),
            )),
        };
        let Some(asked) = asked else { continue };
        nothing_unfinished_up_to(&asked, "the SDK asked for checkpoint", all, ledger)?;
        if let (Some(before), Some(_)) = (&before_position, &call.sequence_number) {
            prop_assert!(
                asked >= *before,
                "the SDK asked for {asked}, below the stored checkpoint {before}"
            );
        }
    }
    let stored = daemon.stored_checkpoint();
    if let Some(limit) = stored_position(&stored, all) {
        nothing_unfinished_up_to(&limit, "the stored checkpoint", all, ledger)?;
    }
    prop_assert!(ledger.dead_lettered_checkpoint_errors.is_empty());
    Ok(())
}

fn reply_from(choice: u8) -> std::result::Result<(), &'static str> {
    match choice {
        0..=4 => Ok(()),
        5 => Err("ThrottlingException"),
        6 => Err("KinesisClientLibDependencyException"),
        7 => Err("InvalidStateException"),
        8 => Err("IllegalArgumentException"),
        9 => Err("NullPointerException"),
        _ => Err("ShutdownException"),
    }
}

/// One generated case.
#[derive(Debug, Clone)]
struct Case {
    count: usize,
    aggregated_every: usize,
    batch_sizes: Vec<usize>,
    poison: Vec<(usize, u8, u32)>,
    /// Scripted replies, successes and errors interleaved; 10 = ShutdownException (rare).
    replies: Vec<u8>,
    strategy: u8,
    every: u64,
    then: u8,
    attempts: u32,
    request_every: Option<usize>,
    own_checkpoint: u8,
    per_record: bool,
    dead_letter_fails: bool,
    greedy_hooks: bool,
    end_with_shard_end: bool,
}

fn cases() -> impl Strategy<Value = Case> {
    (
        (
            1usize..60,
            0usize..4,
            proptest::collection::vec(1usize..12, 1..30),
        ),
        proptest::collection::vec((0usize..60, 0u8..5, 1u32..5), 0..4),
        proptest::collection::vec(prop_oneof![60 => 0u8..10, 1 => Just(10u8)], 0..20),
        (0u8..6, 1u64..10, 0u8..3, 1u32..4),
        (
            proptest::option::of(1usize..6),
            0u8..5,
            any::<bool>(),
            proptest::bool::weighted(0.15),
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (count, aggregated_every, batch_sizes),
                poison,
                replies,
                (strategy, every, then, attempts),
                (
                    request_every,
                    own_checkpoint,
                    per_record,
                    dead_letter_fails,
                    greedy_hooks,
                    end_with_shard_end,
                ),
            )| Case {
                count,
                aggregated_every,
                batch_sizes,
                poison,
                replies,
                strategy,
                every,
                then,
                attempts,
                request_every,
                own_checkpoint,
                per_record,
                dead_letter_fails,
                greedy_hooks,
                end_with_shard_end,
            },
        )
}

/// What one case exercised.
#[derive(Default, Debug)]
struct Seen {
    stored_something: bool,
    unfinished_and_stored: bool,
    lease_lost: bool,
    exited: bool,
    dead_lettered: bool,
    stalled: bool,
    checkpoint_error_in_handler: bool,
}

fn run_case(case: &Case) -> std::result::Result<Seen, TestCaseError> {
    let mut all = records(case.count, case.aggregated_every);
    let ledger = Rc::new(RefCell::new(Ledger {
        request_every: case.request_every,
        own_checkpoint: OWN_CHECKPOINTS[case.own_checkpoint as usize],
        per_record: case.per_record,
        dead_letter_fails: case.dead_letter_fails,
        greedy_hooks: case.greedy_hooks,
        ..Ledger::default()
    }));
    for &(index, fault, times) in &case.poison {
        let index = index % all.len();
        let fault = FAULTS[fault as usize];
        let times = if times == 4 { u32::MAX } else { times };
        if let Fault::BadPayload = fault {
            let record = &all[index];
            all[index] = Record::new(
                b"\xff\xfe bad",
                record.partition_key(),
                record.position().clone(),
            );
        }
        let position = all[index].position().clone();
        ledger
            .borrow_mut()
            .faults_left
            .insert(position, (fault, times));
    }
    let policy = [
        FailurePolicy::stop,
        FailurePolicy::skip,
        FailurePolicy::exit,
    ][case.then as usize]()
    .attempts(case.attempts)
    .backoff(Duration::ZERO, Duration::ZERO);
    let runtime = kcl::Runtime::new(Processor(ledger.clone()))
        .checkpoint_strategy(strategy_from(case.strategy, case.every))
        .failure_policy(policy)
        .checkpoint_retry(kcl::RetryPolicy::immediate(3));
    let mut daemon = TestDaemon::from_runtime(runtime);
    daemon.reply_next_checkpoints(case.replies.iter().map(|&c| reply_from(c)));
    daemon.initialize("shardId-000000000000");
    let mut seen = Seen {
        lease_lost: case.replies.contains(&10),
        ..Seen::default()
    };
    let mut offset = 0;
    for &size in &case.batch_sizes {
        if offset >= all.len() {
            break;
        }
        let end = (offset + size).min(all.len());
        let before = daemon.stored_checkpoint();
        let step = daemon.process_records(all[offset..end].to_vec(), Some(0));
        offset = end;
        check_step(&step, &daemon, &before, &all, &ledger.borrow())?;
        seen.checkpoint_error_in_handler |= step.checkpoints.iter().any(|c| c.error.is_some());
        if let Some(reason) = daemon.exit_reason() {
            // Only a failure of records may end the process, and only under `exit`.
            prop_assert_eq!(case.then, 2);
            prop_assert!(
                reason.contains("poisoned")
                    || reason.contains("not valid UTF-8")
                    || reason.contains("UTF-8"),
                "exit for {}",
                reason
            );
            prop_assert!(step.status.is_none());
            seen.exited = true;
            break; // the process is gone
        }
        prop_assert_eq!(step.status.as_deref(), Some("processRecords"));
    }
    if !seen.exited {
        let before = daemon.stored_checkpoint();
        let step = if case.end_with_shard_end && offset >= all.len() {
            daemon.shard_ended()
        } else {
            daemon.shutdown_requested()
        };
        prop_assert!(step.status.is_some());
        check_step(&step, &daemon, &before, &all, &ledger.borrow())?;
    }
    let ledger = ledger.borrow();
    let stored = stored_position(&daemon.stored_checkpoint(), &all);
    seen.stored_something = stored.is_some();
    seen.unfinished_and_stored = stored.is_some()
        && all[..offset]
            .iter()
            .any(|r| !ledger.finished.contains_key(r.position()));
    seen.dead_lettered = ledger.dead_lettered > 0;
    seen.stalled = all[..offset]
        .iter()
        .any(|r| !ledger.finished.contains_key(r.position()));
    Ok(seen)
}

#[test]
fn checkpoints_never_pass_an_unfinished_record_and_every_action_is_answered() {
    // Fewer cases for quick runs, e.g. under cargo-mutants: KCL_PROPTEST_CASES=128.
    let count = std::env::var("KCL_PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(512);
    let mut runner = TestRunner::new(Config {
        cases: count,
        failure_persistence: None,
        ..Config::default()
    });
    let seen = RefCell::new(Vec::new());
    let result = runner.run(&cases(), |case| {
        let outcome = run_case(&case)?;
        seen.borrow_mut().push(outcome);
        Ok(())
    });
    if let Err(error) = result {
        panic!("{error}");
    }
    let seen = seen.into_inner();
    let share = |f: fn(&Seen) -> bool| {
        100.0 * seen.iter().filter(|s| f(s)).count() as f64 / seen.len() as f64
    };
    let stored = share(|s| s.stored_something);
    let biting = share(|s| s.unfinished_and_stored);
    eprintln!(
        "{} cases: something stored {stored:.1}%, an unfinished record and a stored checkpoint {biting:.1}%, lease lost {:.1}%, exit {:.1}%, dead-lettered {:.1}%, records left unfinished {:.1}%, a checkpoint error reached user code {:.1}%",
        seen.len(),
        share(|s| s.lease_lost),
        share(|s| s.exited),
        share(|s| s.dead_lettered),
        share(|s| s.stalled),
        share(|s| s.checkpoint_error_in_handler),
    );
    // The invariants only bite where something is stored, and hardest where something is
    // stored while a record is unfinished: the generator must produce plenty of both.
    assert!(
        stored >= 50.0,
        "only {stored:.1}% of cases stored a checkpoint"
    );
    assert!(
        biting >= 10.0,
        "only {biting:.1}% of cases can catch a checkpoint past an unfinished record"
    );
}

/// The stored checkpoint passes no unfinished record and never goes backwards (across processes).
fn check_stored(
    stored: &Option<StoredCheckpoint>,
    all: &[Record],
    ledger: &Ledger,
    last: &mut Option<Position>,
) {
    let Some(limit) = stored_position(stored, all) else {
        return;
    };
    nothing_unfinished_up_to(&limit, "the stored checkpoint", all, ledger).unwrap();
    assert!(
        last.as_ref() <= Some(&limit),
        "went backwards: {last:?} -> {limit}"
    );
    *last = Some(limit);
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
            check_stored(
                &daemon.stored_checkpoint(),
                &all,
                &ledger.borrow(),
                &mut last,
            );
            if batches >= kill_after && next(3) == 0 {
                killed = true; // kill -9: no shutdown, the stored checkpoint is what survives
                break;
            }
        }
        if !killed {
            daemon.shard_ended();
            check_stored(
                &daemon.stored_checkpoint(),
                &all,
                &ledger.borrow(),
                &mut last,
            );
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
