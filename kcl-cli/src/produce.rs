//! `kcl produce`: a steady stream of records into a Kinesis stream through the batching
//! producer. Generated records carry a run id and their number (`produce-<run>-<n>`), so a
//! consumer can check that none is missing; `--stdin` sends lines instead. It runs at a rate
//! until a count, a duration, the end of the input or SIGINT/SIGTERM, then shuts the producer
//! down within a deadline and reports every record it took: delivered, failed, unsent or in
//! doubt. Nothing goes to stdout; progress and the report go to stderr.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io::BufRead;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use clap::Args;
use kcl_producer::{
    Delivery, FailReason, Failed, Producer, Record, SendError, Ticket, TrySendError,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::kinesis::{self, CredentialArgs, StreamArgs, count};

/// Shown at the end of `--help`.
const EXAMPLES: &str = "\
Examples:
  kcl produce --stream words --endpoint http://127.0.0.1:4567 --count 10000 --rate 1000
  kcl produce --stream load --rate 0 --duration 60 --keys 1000 --size 512
  tail -F app.log | kcl produce --stream logs --stdin --rate 0

Generated record n (from 0) is `produce-<run>-<n>` (a run id of 8 hex digits, n in 12 digits),
padded with dots to --size bytes, with the partition key `key-<n mod K>`. Nothing is written to
stdout. Stderr gets a progress line every --progress seconds and, at the end, the report:
  kcl produce: report: accepted=10000 delivered=10000 failed=0 unsent=0 in_doubt=0 invalid=0 ...
Exit code 0 if every record taken was delivered, 1 otherwise. A second SIGINT or SIGTERM ends
the command at once (exit 130), without the report.";

/// `kcl produce`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct ProduceArgs {
    #[command(flatten)]
    pub target: StreamArgs,

    /// Records per second; 0: as fast as the producer takes them (its buffer, 64 MiB, fills up
    /// whenever Kinesis is slower).
    #[arg(long, value_name = "RECORDS_PER_SECOND", default_value_t = 100.0)]
    pub rate: f64,

    /// Stop taking records after SECONDS.
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,

    /// Stop after N records (lines with --stdin).
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,

    /// Spread the records over K partition keys: record n gets `key-<n mod K>`.
    #[arg(long, value_name = "K", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    pub keys: u64,

    /// Bytes of data per generated record: `produce-<run>-<n>` padded with dots (at least 29).
    #[arg(
        long,
        value_name = "BYTES",
        default_value_t = 100,
        conflicts_with = "stdin"
    )]
    pub size: usize,

    /// Send each line of stdin (without its line break; empty lines skipped) as one record,
    /// instead of generated ones. The end of stdin ends the run.
    #[arg(long)]
    pub stdin: bool,

    /// How long the records still buffered at the end may take to be delivered; what is not
    /// answered by then is reported as unsent or in doubt.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub shutdown_timeout: f64,

    /// A progress line on stderr every SECONDS (0: none).
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub progress: f64,

    #[command(flatten)]
    pub access: CredentialArgs,
}

/// The settings, checked.
struct Plan {
    /// Time between two records; `None`: no pause.
    interval: Option<Duration>,
    duration: Option<Duration>,
    shutdown_timeout: Duration,
    progress: Option<Duration>,
}

/// Runs `kcl produce`.
pub(crate) fn command(args: ProduceArgs) -> Result<()> {
    if !(args.rate.is_finite() && args.rate >= 0.0) {
        return Err(Error::usage(format!(
            "--rate {}: expected a number of records per second (0: no limit)",
            args.rate
        )));
    }
    let plan = Plan {
        interval: (args.rate > 0.0)
            .then(|| kinesis::seconds("--rate", 1.0 / args.rate))
            .transpose()?,
        duration: args
            .duration
            .map(|s| kinesis::seconds("--duration", s))
            .transpose()?,
        shutdown_timeout: kinesis::seconds("--shutdown-timeout", args.shutdown_timeout)?,
        progress: Some(kinesis::seconds("--progress", args.progress)?).filter(|d| !d.is_zero()),
    };
    if args.count == Some(0) {
        return Err(Error::usage("--count must be at least 1"));
    }
    let header = generated("00000000", 0, 0).len();
    if !args.stdin && args.size < header {
        return Err(Error::usage(format!(
            "--size {}: a generated record needs at least {header} bytes (produce-<run>-<n>)",
            args.size
        )));
    }
    args.target.check_endpoint()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))?;
    runtime.block_on(produce(&args, &plan))
}

/// The data of generated record `n` of run `run`: `produce-<run>-<n>`, padded with dots to
/// `size` bytes.
fn generated(run: &str, n: u64, size: usize) -> Vec<u8> {
    let mut data = format!("produce-{run}-{n:012}").into_bytes();
    if data.len() < size {
        data.resize(size, b'.');
    }
    data
}

/// A run id: 8 hex digits, different in each run.
fn run_id() -> String {
    use std::hash::BuildHasher;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let hash = std::collections::hash_map::RandomState::new().hash_one((now, std::process::id()));
    format!("{:08x}", hash as u32)
}

/// Which record: a generated one by its number, or a line of stdin by its line number.
#[derive(Clone, Copy, Debug)]
enum Label {
    Record(u64),
    Line(u64),
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::Record(n) => write!(f, "record {n}"),
            Label::Line(n) => write!(f, "line {n}"),
        }
    }
}

/// Why the run stopped taking records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Count,
    Duration,
    EndOfInput,
    Signal(&'static str),
    /// An error (stdin unreadable, a record the stream refuses).
    Failed,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Count => f.write_str("--count reached"),
            Stop::Duration => f.write_str("--duration reached"),
            Stop::EndOfInput => f.write_str("end of stdin"),
            Stop::Signal(name) => write!(f, "{name} received"),
            Stop::Failed => f.write_str("stopped by an error"),
        }
    }
}

/// SIGINT/SIGTERM and the end of `--duration`: what stops the taking of records.
struct Stopper {
    signalled: Arc<AtomicBool>,
    which: Arc<AtomicUsize>,
    end: Option<Instant>,
}

impl Stopper {
    /// Watches SIGINT and SIGTERM: the first sets the flag, a second one exits at once (130).
    fn new(end: Option<Instant>) -> Self {
        let stopper = Stopper {
            signalled: Arc::new(AtomicBool::new(false)),
            which: Arc::new(AtomicUsize::new(0)),
            end,
        };
        #[cfg(unix)]
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            let flag = &stopper.signalled;
            let _ = signal_hook::flag::register_conditional_shutdown(signal, 130, flag.clone());
            let _ =
                signal_hook::flag::register_usize(signal, stopper.which.clone(), signal as usize);
            let _ = signal_hook::flag::register(signal, flag.clone());
        }
        stopper
    }

    /// Why to stop now, if so.
    fn check(&self) -> Option<Stop> {
        if self.signalled.load(Ordering::SeqCst) {
            #[cfg(unix)]
            let name = match self.which.load(Ordering::SeqCst) as i32 {
                signal_hook::consts::SIGINT => "SIGINT",
                _ => "SIGTERM",
            };
            #[cfg(not(unix))]
            let name = "a signal";
            return Some(Stop::Signal(name));
        }
        match self.end {
            Some(end) if Instant::now() >= end => Some(Stop::Duration),
            _ => None,
        }
    }

    /// Resolves when it is time to stop.
    async fn wait(&self) -> Stop {
        loop {
            if let Some(stop) = self.check() {
                return stop;
            }
            let mut pause = Duration::from_millis(50);
            if let Some(end) = self.end {
                pause = pause.min(end.saturating_duration_since(Instant::now()));
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// `future`'s output, unless it is time to stop first.
    async fn unless<F: Future>(&self, future: F) -> std::result::Result<F::Output, Stop> {
        tokio::select! {
            biased;
            stop = self.wait() => Err(stop),
            output = future => Ok(output),
        }
    }
}

/// What the tickets said, counted as they resolve.
#[derive(Default)]
struct Tally {
    answered: u64,
    delivered: u64,
    /// Delivered after an attempt whose outcome is unknown: maybe stored twice.
    maybe_duplicated: u64,
    /// Failed before the shutdown's deadline (refused, out of attempts).
    failed: u64,
    unsent: u64,
    in_doubt: u64,
    /// Failed or unsent after an attempt whose outcome is unknown: maybe in the stream all the
    /// same.
    maybe_stored: u64,
    /// Failures printed so far (the first few are).
    shown: u64,
}

/// Failures printed one by one before the rest are only counted.
const SHOWN: u64 = 10;

impl Tally {
    fn count(&mut self, label: Label, answer: std::result::Result<Delivery, Failed>) {
        self.answered += 1;
        let failed = match answer {
            Ok(delivery) => {
                self.delivered += 1;
                self.maybe_duplicated += u64::from(delivery.maybe_duplicated);
                return;
            }
            Err(failed) => failed,
        };
        self.maybe_stored += u64::from(failed.maybe_stored);
        match failed.reason {
            FailReason::Unsent => self.unsent += 1,
            FailReason::InDoubt => self.in_doubt += 1,
            _ => {
                self.failed += 1;
                self.shown += 1;
                if self.shown <= SHOWN {
                    let mut text = format!(
                        "kcl produce: {label} (partition key {}) failed after {}: {}",
                        failed.record.partition_key,
                        count(u64::from(failed.attempts), "attempt"),
                        failed.reason
                    );
                    if failed.maybe_stored {
                        text.push_str(
                            " (an attempt had an unknown outcome: it may be in the stream)",
                        );
                    }
                    if self.shown == SHOWN {
                        text.push_str("\nkcl produce: further failures are counted, not shown");
                    }
                    eprintln!("{text}");
                }
            }
        }
    }
}

fn lock(tally: &Mutex<Tally>) -> MutexGuard<'_, Tally> {
    tally.lock().unwrap_or_else(|p| p.into_inner())
}

/// Counts `ticket`'s answer when it comes.
fn watch(ticket: Ticket, label: Label, tally: &Arc<Mutex<Tally>>) {
    let tally = Arc::clone(tally);
    tokio::spawn(async move {
        let answer = ticket.await;
        lock(&tally).count(label, answer);
    });
}

/// Where records come from.
enum Source {
    Generated {
        run: String,
        size: usize,
    },
    /// Lines (number, bytes) read by a thread.
    Stdin(mpsc::Receiver<std::io::Result<(u64, Vec<u8>)>>),
}

/// Reads stdin's non-empty lines on a thread (a blocking read must not stop the runtime).
fn read_stdin() -> mpsc::Receiver<std::io::Result<(u64, Vec<u8>)>> {
    let (lines, receiver) = mpsc::channel(1024);
    std::thread::spawn(move || {
        let mut input = std::io::stdin().lock();
        let mut number = 0;
        loop {
            let mut line = Vec::new();
            match input.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
                    number += 1;
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    if !line.is_empty() && lines.blocking_send(Ok((number, line))).is_err() {
                        return;
                    }
                }
                Err(error) => {
                    let _ = lines.blocking_send(Err(error));
                    return;
                }
            }
        }
    });
    receiver
}

/// What the loop that takes records ended with.
struct Fed {
    stop: Stop,
    /// Records refused before they were taken (over the stream's limits).
    invalid: u64,
    /// Why it stopped early, to report after the shutdown (records were taken before it).
    error: Option<Error>,
}

impl From<Stop> for Fed {
    fn from(stop: Stop) -> Self {
        Fed {
            stop,
            invalid: 0,
            error: None,
        }
    }
}

/// Takes records into `producer` until it is time to stop.
async fn feed(
    producer: &Producer,
    args: &ProduceArgs,
    plan: &Plan,
    mut source: Source,
    stopper: &Stopper,
    tally: &Arc<Mutex<Tally>>,
) -> Fed {
    let mut taken = 0u64;
    let mut invalid = 0u64;
    let mut due = Instant::now();
    let stop = loop {
        if let Some(stop) = stopper.check() {
            break Fed::from(stop);
        }
        if args.count.is_some_and(|most| taken >= most) {
            break Fed::from(Stop::Count);
        }
        match plan.interval {
            Some(interval) => {
                let now = Instant::now();
                // Behind by more than a second (the producer was full): start afresh rather
                // than burst to catch up.
                if now > due + Duration::from_secs(1) {
                    due = now;
                }
                if due > now
                    && let Err(stop) = stopper.unless(tokio::time::sleep_until(due)).await
                {
                    break Fed::from(stop);
                }
                due += interval;
            }
            // Let the producer's task and the answers run now and then.
            None => tokio::task::coop::consume_budget().await,
        }
        let (label, data) = match &mut source {
            Source::Generated { run, size } => (Label::Record(taken), generated(run, taken, *size)),
            Source::Stdin(lines) => match stopper.unless(lines.recv()).await {
                Err(stop) => break Fed::from(stop),
                Ok(None) => break Fed::from(Stop::EndOfInput),
                Ok(Some(Err(error))) => {
                    break Fed {
                        error: Some(Error::io("cannot read stdin", error)),
                        ..Fed::from(Stop::Failed)
                    };
                }
                Ok(Some(Ok((number, line)))) => (Label::Line(number), line),
            },
        };
        let record = Record::new(format!("key-{}", taken % args.keys), data);
        taken += 1;
        let refused = match producer.try_send(record) {
            Ok(ticket) => {
                watch(ticket, label, tally);
                continue;
            }
            Err(TrySendError::Full(record)) => match stopper.unless(producer.send(record)).await {
                // The record was not taken: it is not counted anywhere.
                Err(stop) => break Fed::from(stop),
                Ok(Ok(ticket)) => {
                    watch(ticket, label, tally);
                    continue;
                }
                Ok(Err(SendError::Invalid(_, why))) => why,
                // `kcl produce` has no spool: a spool error cannot happen.
                Ok(Err(SendError::Closed(_) | SendError::Spool(..))) => {
                    break Fed::from(Stop::Failed);
                }
            },
            Err(TrySendError::Invalid(_, why)) => why,
            Err(TrySendError::Closed(_) | TrySendError::Spool(..)) => {
                break Fed::from(Stop::Failed);
            }
        };
        if let Label::Record(_) = label {
            break Fed {
                error: Some(Error::usage(format!("--size {}: {refused}", args.size))),
                ..Fed::from(Stop::Failed)
            };
        }
        invalid += 1;
        if invalid <= SHOWN {
            eprintln!("kcl produce: {label} not sent: {refused}");
        }
    };
    Fed { invalid, ..stop }
}

/// Prints a progress line every `every` (never ends).
async fn progress(producer: &Producer, every: Option<Duration>, start: Instant) -> Infallible {
    let Some(every) = every else {
        return std::future::pending().await;
    };
    let (mut then, mut delivered_then) = (start, 0);
    loop {
        tokio::time::sleep(every).await;
        let stats = producer.stats();
        let now = Instant::now();
        let rate = (stats.delivered - delivered_then) as f64
            / now.duration_since(then).as_secs_f64().max(1e-3);
        eprintln!(
            "kcl produce: {:.0} s: accepted {}, delivered {}, failed {}, retried {}, throttled {}, buffered {} ({} bytes); {rate:.0} records/s delivered",
            now.duration_since(start).as_secs_f64(),
            stats.accepted,
            stats.delivered,
            stats.failed,
            stats.entries_retried,
            stats.entries_throttled,
            stats.accepted - stats.delivered - stats.failed,
            stats.buffered_bytes,
        );
        (then, delivered_then) = (now, stats.delivered);
    }
}

async fn produce(args: &ProduceArgs, plan: &Plan) -> Result<()> {
    let client = kinesis::sdk_client(&args.target, &args.access, "kcl-produce", 3).await?;
    let hint = args.target.hint();
    let producer = kinesis::producer(client, &args.target.stream, "kcl produce", |builder| {
        builder.backoff(Duration::from_millis(100), Duration::from_secs(10))
    })
    .await
    .map_err(|message| {
        Error::failed_hint(format!("{message}\n  nothing was sent"), hint.clone())
    })?;
    let start = Instant::now();
    let stopper = Stopper::new(plan.duration.map(|d| start + d));
    let run = run_id();
    let source = if args.stdin {
        Source::Stdin(read_stdin())
    } else {
        Source::Generated {
            run: run.clone(),
            size: args.size,
        }
    };
    let rate = if args.rate > 0.0 {
        format!("{} records/s", args.rate)
    } else {
        "as fast as it goes".to_string()
    };
    let what = if args.stdin {
        "lines of stdin".to_string()
    } else {
        format!("{}-byte records", args.size)
    };
    eprintln!(
        "kcl produce: run {run}: {what} into stream {}, {rate}, over {}; SIGINT or SIGTERM stops it",
        args.target.stream,
        count(args.keys, "partition key"),
    );
    let tally = Arc::new(Mutex::new(Tally::default()));
    let fed = tokio::select! {
        fed = feed(&producer, args, plan, source, &stopper, &tally) => fed,
        never = progress(&producer, plan.progress, start) => match never {},
    };
    let taking = start.elapsed();
    let accepted = producer.stats().accepted;
    let waiting = accepted.saturating_sub(lock(&tally).answered);
    eprintln!(
        "kcl produce: {} after {:.1} s; shutting down: {} not yet answered, up to {:.1} s",
        fed.stop,
        taking.as_secs_f64(),
        count(waiting, "record"),
        plan.shutdown_timeout.as_secs_f64(),
    );
    let report = producer.shutdown(plan.shutdown_timeout).await;
    // Every ticket is answered now; let their watchers count the answers.
    let patience = Instant::now() + Duration::from_secs(1);
    while lock(&tally).answered < accepted && Instant::now() < patience {
        tokio::task::yield_now().await;
    }
    let tally = lock(&tally);
    let seconds = start.elapsed().as_secs_f64();
    eprintln!(
        "kcl produce: report: accepted={accepted} delivered={} failed={} unsent={} in_doubt={} invalid={} maybe_stored={} maybe_duplicated={} seconds={seconds:.2} delivered_per_second={:.0}",
        tally.delivered,
        tally.failed,
        tally.unsent,
        tally.in_doubt,
        fed.invalid,
        tally.maybe_stored,
        tally.maybe_duplicated,
        tally.delivered as f64 / seconds.max(1e-3),
    );
    let accounted = tally.delivered + tally.failed + tally.unsent + tally.in_doubt;
    if accounted != accepted
        || report.delivered != tally.delivered
        || report.unsent.len() as u64 != tally.unsent
        || report.in_doubt.len() as u64 != tally.in_doubt
    {
        eprintln!(
            "kcl produce: warning: the count does not add up (a bug): {accounted} of {accepted} records answered; the producer reports delivered={} unsent={} in_doubt={}",
            report.delivered,
            report.unsent.len(),
            report.in_doubt.len()
        );
    }
    if let Some(error) = fed.error {
        return Err(error);
    }
    if accounted == accepted && tally.delivered == accepted && fed.invalid == 0 {
        return Ok(());
    }
    let mut message = format!(
        "{} of {} taken {} not delivered: {} failed, {} unsent, {} in doubt",
        accepted - tally.delivered.min(accepted),
        count(accepted, "record"),
        if accepted - tally.delivered.min(accepted) == 1 {
            "was"
        } else {
            "were"
        },
        tally.failed,
        tally.unsent,
        tally.in_doubt,
    );
    if tally.maybe_stored > 0 {
        message.push_str(&format!(
            " ({} of them may be in the stream all the same: a call that carried them had an unknown outcome)",
            tally.maybe_stored
        ));
    }
    if fed.invalid > 0 {
        message.push_str(&format!(
            "; {} not sent (over the stream's limits)",
            count(fed.invalid, "line")
        ));
    }
    let hint = if tally.delivered == 0 && accepted > 0 {
        hint
    } else {
        "unsent records were never stored and in-doubt ones may have been; a longer --shutdown-timeout gives the last calls more time, a lower --rate keeps less buffered".to_string()
    };
    Err(Error::failed_hint(message, hint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_records_carry_the_run_and_their_number() {
        assert_eq!(
            generated("0a1b2c3d", 42, 40),
            b"produce-0a1b2c3d-000000000042...........".to_vec()
        );
        assert_eq!(generated("0a1b2c3d", 7, 0).len(), 29);
        let run = run_id();
        assert_eq!(run.len(), 8);
        assert!(run.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn failures_are_counted_by_kind() {
        let mut tally = Tally::default();
        let failed = |reason, maybe_stored| Failed {
            record: Record::new("key-1", "x"),
            reason,
            attempts: 2,
            maybe_stored,
        };
        tally.count(
            Label::Record(0),
            Ok(Delivery {
                shard_id: "shardId-000000000000".into(),
                sequence_number: "1".into(),
                sub_sequence_number: None,
                attempts: 2,
                maybe_duplicated: true,
            }),
        );
        tally.count(Label::Record(1), Err(failed(FailReason::Unsent, true)));
        tally.count(Label::Record(2), Err(failed(FailReason::InDoubt, false)));
        let attempts = FailReason::Attempts {
            attempts: 2,
            last_error: "InternalFailure: x".into(),
        };
        tally.count(Label::Line(3), Err(failed(attempts, false)));
        assert_eq!(
            (
                tally.answered,
                tally.delivered,
                tally.maybe_duplicated,
                tally.unsent,
                tally.in_doubt,
                tally.failed,
                tally.maybe_stored
            ),
            (4, 1, 1, 1, 1, 1, 1)
        );
        assert_eq!(Label::Line(3).to_string(), "line 3");
        assert_eq!(Stop::Signal("SIGTERM").to_string(), "SIGTERM received");
    }
}
