//! `kcl produce`: a steady stream of records into a Kinesis stream through the batching
//! producer. Generated records carry a run id and their number (`produce-<run>-<n>`), so a
//! consumer can check that none is missing; `--stdin` sends lines instead. It runs at a rate
//! until a count, a duration, the end of the input or SIGINT/SIGTERM, then shuts the producer
//! down within a deadline and reports every record it took: delivered, failed, unsent or in
//! doubt. Progress and the report go to stderr; nothing goes to stdout but `--ledger -`.
//! `--aggregate` packs records sharing a partition key into KPL aggregates; `--ledger FILE`
//! writes one JSON line per record as its answer comes (what it was, and where it was stored or
//! why it failed), so that a consumer's output can be reconciled with what the producer
//! reported, record by record.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use clap::Args;
use kcl_producer::api::{Distribution, StreamRef};
use kcl_producer::limits::StreamLimits;
use kcl_producer::{
    Aggregation, Delivery, FailReason, Failed, KinesisApi, Producer, Record, SendError, Ticket,
    TrySendError,
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
  kcl produce --stream s --count 5000 --keys 20 --aggregate --ledger put.jsonl

Generated record n (from 0) is `produce-<run>-<n>` (a run id of 8 hex digits, n in 12 digits),
padded with dots to --size bytes, with the partition key `key-<n mod K>`. Nothing but the ledger
of --ledger - is written to stdout. Stderr gets a progress line every --progress seconds and, at
the end, the report:
  kcl produce: report: accepted=10000 delivered=10000 failed=0 unsent=0 in_doubt=0 invalid=0 ...
Exit code 0 if every record taken was delivered, 1 otherwise. A second SIGINT or SIGTERM ends
the command at once (exit 130), without the report.

--ledger FILE (`-`: stdout) gets one JSON line per record taken, written when its answer comes:
  {\"status\":\"delivered\",\"record\":17,\"partition_key\":\"key-17\",\"data\":\"produce-...\",
   \"shard_id\":\"shardId-000000000001\",\"sequence_number\":\"4959...\",\"sub_sequence_number\":3,
   \"attempts\":1,\"maybe_duplicated\":false}
  {\"status\":\"unsent\",\"record\":18,...,\"reason\":\"...\",\"attempts\":0,\"maybe_stored\":false}
status is delivered, failed, unsent or in_doubt; `record` is the generated record's number
(`line`, the line number, with --stdin); `data` is the record's data as text (`data_base64`
instead when it is not UTF-8); sub_sequence_number is the record's index in the KPL aggregate
that carried it (--aggregate), null when it went alone.";

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

    /// Pack records into KPL aggregates: many records per Kinesis record, each seen by a KCL
    /// consumer with the aggregate's sequence number and its own sub-sequence number.
    /// `same-key` (the default) packs records sharing a partition key; `shard-map` packs
    /// records bound for the same shard whatever their keys (from ListShards; each stored
    /// aggregate is checked against its shard, and sent again after a split made the map
    /// stale). Refused on a stream with the AUTO record distribution, which ignores partition
    /// keys.
    #[arg(
        long,
        value_name = "HOW",
        value_enum,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "same-key"
    )]
    pub aggregate: Option<AggregateMode>,

    /// Store the records of each partition key in the order they were taken, whatever fails and
    /// is sent again (each key then has one entry out at a time). Not with
    /// --aggregate=shard-map.
    #[arg(long)]
    pub ordered: bool,

    /// Keep every record taken in a disk spool in DIR (fsynced before it counts as taken) until
    /// it is delivered: after a crash or `kill -9`, or records still undelivered at the
    /// shutdown deadline, the next `kcl produce --spool DIR` sends them first (and says how
    /// many). One producer at a time per DIR.
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,

    /// Write one JSON line per record taken to FILE (`-`: stdout), when its answer comes: its
    /// number (or stdin line), partition key and data, and the shard, sequence number and
    /// sub-sequence number it was stored at, or why it failed (see below).
    #[arg(long, value_name = "FILE")]
    pub ledger: Option<PathBuf>,

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
    // Opened first: a ledger that cannot be written stops the run before anything is sent.
    let ledger = args.ledger.as_deref().map(Ledger::create).transpose()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))?;
    runtime.block_on(produce(&args, &plan, ledger.map(Arc::new)))
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
    /// Delivered inside a KPL aggregate (with a sub-sequence number).
    aggregated: u64,
    /// Failed before the shutdown's deadline (refused, out of attempts).
    failed: u64,
    unsent: u64,
    in_doubt: u64,
    /// Undelivered at the deadline and kept in the spool (`--spool`) for the next run.
    spooled: u64,
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
                self.aggregated += u64::from(delivery.sub_sequence_number.is_some());
                return;
            }
            Err(failed) => failed,
        };
        self.maybe_stored += u64::from(failed.maybe_stored);
        match failed.reason {
            FailReason::Unsent => self.unsent += 1,
            FailReason::InDoubt => self.in_doubt += 1,
            FailReason::Spooled => self.spooled += 1,
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

/// Counts `ticket`'s answer when it comes, after writing its ledger line (`ledger`: the ledger
/// and a copy of the record, cheap: the data is shared).
fn watch(
    ticket: Ticket,
    label: Label,
    tally: &Arc<Mutex<Tally>>,
    ledger: Option<(Arc<Ledger>, Record)>,
) {
    let tally = Arc::clone(tally);
    tokio::spawn(async move {
        let answer = ticket.await;
        if let Some((ledger, record)) = ledger {
            ledger.write(label, &record, &answer);
        }
        lock(&tally).count(label, answer);
    });
}

/// One line of the ledger, its fields in this order (absent ones left out; a delivered
/// record's `sub_sequence_number` is null when it went alone).
#[derive(serde::Serialize)]
struct LedgerLine<'a> {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    partition_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    explicit_hash_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shard_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sequence_number: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub_sequence_number: Option<Option<u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    maybe_duplicated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maybe_stored: Option<bool>,
}

/// `--ledger FILE`: one JSON line per record taken, written when its answer comes.
struct Ledger {
    /// What `--ledger` named (`-`: stdout).
    name: String,
    state: Mutex<LedgerState>,
}

struct LedgerState {
    out: Box<dyn Write + Send>,
    lines: u64,
    /// The first write that failed (later lines are not written).
    error: Option<std::io::Error>,
}

impl Ledger {
    /// Creates (or truncates) `path`; `-` is stdout.
    fn create(path: &Path) -> Result<Ledger> {
        let out: Box<dyn Write + Send> = if path == Path::new("-") {
            Box::new(std::io::BufWriter::new(std::io::stdout()))
        } else {
            let file = std::fs::File::create(path)
                .map_err(|e| Error::file("create the --ledger file", path, e))?;
            Box::new(std::io::BufWriter::new(file))
        };
        Ok(Ledger {
            name: path.display().to_string(),
            state: Mutex::new(LedgerState {
                out,
                lines: 0,
                error: None,
            }),
        })
    }

    /// The ledger line of `record`'s answer.
    fn line<'a>(
        label: Label,
        record: &'a Record,
        answer: &'a std::result::Result<Delivery, Failed>,
    ) -> LedgerLine<'a> {
        let (record_number, line_number) = match label {
            Label::Record(n) => (Some(n), None),
            Label::Line(n) => (None, Some(n)),
        };
        let (data, data_base64) = match std::str::from_utf8(&record.data) {
            Ok(text) => (Some(text), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(&record.data)),
            ),
        };
        let mut line = LedgerLine {
            status: "delivered",
            record: record_number,
            line: line_number,
            partition_key: &record.partition_key,
            explicit_hash_key: record.explicit_hash_key.as_deref(),
            data,
            data_base64,
            shard_id: None,
            sequence_number: None,
            sub_sequence_number: None,
            attempts: 0,
            maybe_duplicated: None,
            reason: None,
            maybe_stored: None,
        };
        match answer {
            Ok(delivery) => {
                line.shard_id = Some(&delivery.shard_id);
                line.sequence_number = Some(&delivery.sequence_number);
                line.sub_sequence_number = Some(delivery.sub_sequence_number);
                line.attempts = delivery.attempts;
                line.maybe_duplicated = Some(delivery.maybe_duplicated);
            }
            Err(failed) => {
                line.status = match failed.reason {
                    FailReason::Unsent => "unsent",
                    FailReason::InDoubt => "in_doubt",
                    FailReason::Spooled => "spooled",
                    _ => "failed",
                };
                line.reason = Some(failed.reason.to_string());
                line.attempts = failed.attempts;
                line.maybe_stored = Some(failed.maybe_stored);
            }
        }
        line
    }

    fn write(&self, label: Label, record: &Record, answer: &std::result::Result<Delivery, Failed>) {
        let mut text = serde_json::to_string(&Self::line(label, record, answer))
            .expect("a ledger line serializes");
        text.push('\n');
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.error.is_some() {
            return;
        }
        match state.out.write_all(text.as_bytes()) {
            Ok(()) => state.lines += 1,
            Err(error) => state.error = Some(error),
        }
    }

    /// Flushes the ledger: the lines written, or the first error.
    fn finish(&self) -> Result<u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.error.is_none()
            && let Err(error) = state.out.flush()
        {
            state.error = Some(error);
        }
        match state.error.take() {
            None => Ok(state.lines),
            Some(error) => Err(Error::io(
                format!(
                    "cannot write the --ledger {} (it holds the first {} only)",
                    self.name,
                    count(state.lines, "line")
                ),
                error,
            )),
        }
    }
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
    ledger: Option<&Arc<Ledger>>,
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
        let kept = ledger.map(|ledger| (Arc::clone(ledger), record.clone()));
        taken += 1;
        let refused = match producer.try_send(record) {
            Ok(ticket) => {
                watch(ticket, label, tally, kept);
                continue;
            }
            Err(TrySendError::Full(record)) => match stopper.unless(producer.send(record)).await {
                // The record was not taken: it is not counted anywhere.
                Err(stop) => break Fed::from(stop),
                Ok(Ok(ticket)) => {
                    watch(ticket, label, tally, kept);
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

/// With `--aggregate`: reads the stream's description once, refuses a stream with the AUTO
/// distribution in `--aggregate`'s words, and returns its limits for the producer (which then
/// does not read the description again). `None`: the description may not be read (denied), the
/// producer's builder goes on as without `--aggregate` (and says so).
async fn limits_for_aggregation(
    client: &kcl_producer::aws::SdkKinesis,
    args: &ProduceArgs,
    hint: &str,
) -> Result<Option<StreamLimits>> {
    let stream = &args.target.stream;
    match client
        .describe_stream_summary(&StreamRef::name(stream))
        .await
    {
        Ok(summary) if summary.distribution == Distribution::Auto => Err(Error::usage_hint(
            format!(
                "--aggregate: stream {stream} spreads its records with the AUTO distribution (RecordDistributionStrategy AUTO), which ignores partition keys: an aggregate could land on a shard its records do not hash to, and a KCL consumer drops such an aggregate whole\n  nothing was sent"
            ),
            "run without --aggregate on this stream (each record then goes alone)",
        )),
        Ok(summary) => Ok(Some(StreamLimits::of(&summary))),
        Err(error) if kinesis::is_access_denied(&error) => {
            eprintln!(
                "kcl produce: --aggregate: cannot read how stream {stream} spreads its records ({error}); aggregating all the same: on a stream with the AUTO distribution a KCL consumer would drop aggregates"
            );
            Ok(None)
        }
        Err(error) => Err(Error::failed_hint(
            format!(
                "cannot read stream {stream} (DescribeStreamSummary): {error}\n  nothing was sent"
            ),
            hint,
        )),
    }
}

/// How `--aggregate` packs records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum AggregateMode {
    /// Records sharing a partition key.
    SameKey,
    /// Records bound for the same shard.
    ShardMap,
}

impl AggregateMode {
    fn aggregation(self) -> Aggregation {
        match self {
            AggregateMode::SameKey => Aggregation::same_key(),
            AggregateMode::ShardMap => Aggregation::shard_map(),
        }
    }
}

async fn produce(args: &ProduceArgs, plan: &Plan, ledger: Option<Arc<Ledger>>) -> Result<()> {
    let client = kinesis::sdk_client(&args.target, &args.access, "kcl-produce", 3).await?;
    let hint = args.target.hint();
    let known_limits = if args.aggregate.is_some() {
        limits_for_aggregation(&client, args, &hint).await?
    } else {
        None
    };
    let producer = kinesis::producer(client, &args.target.stream, "kcl produce", |builder| {
        let mut builder = builder.backoff(Duration::from_millis(100), Duration::from_secs(10));
        if let Some(mode) = args.aggregate {
            builder = builder.aggregation(mode.aggregation());
        }
        builder = builder.ordered(args.ordered);
        if let Some(dir) = &args.spool {
            builder = builder.spool(kcl_producer::SpoolConfig::new(dir));
        }
        if let Some(limits) = known_limits {
            builder = builder.limits(limits);
        }
        builder
    })
    .await
    .map_err(|message| {
        Error::failed_hint(format!("{message}\n  nothing was sent"), hint.clone())
    })?;
    if let Some(dir) = &args.spool {
        let recovered = producer.recovered();
        if recovered > 0 {
            eprintln!(
                "kcl produce: {} left undelivered in the spool {} by an earlier run, sent first",
                count(recovered, "record"),
                dir.display()
            );
        }
    }
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
        "kcl produce: run {run}: {what} into stream {}, {rate}, over {}{}; SIGINT or SIGTERM stops it",
        args.target.stream,
        count(args.keys, "partition key"),
        match args.aggregate {
            Some(AggregateMode::SameKey) => ", aggregated by partition key",
            Some(AggregateMode::ShardMap) => ", aggregated by shard",
            None => "",
        },
    );
    let tally = Arc::new(Mutex::new(Tally::default()));
    let fed = tokio::select! {
        fed = feed(&producer, args, plan, source, &stopper, &tally, ledger.as_ref()) => fed,
        never = progress(&producer, plan.progress, start) => match never {},
    };
    let taking = start.elapsed();
    // Records replayed from the spool have no ticket here: they are counted apart.
    let recovered = producer.recovered();
    let accepted = producer.stats().accepted - recovered;
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
    // The producer's count of deliveries includes the records replayed from the spool.
    let recovered_delivered = report.delivered.saturating_sub(tally.delivered);
    eprintln!(
        "kcl produce: report: accepted={accepted} delivered={} failed={} unsent={} in_doubt={} spooled={} invalid={} maybe_stored={} maybe_duplicated={} aggregated={} recovered={recovered} recovered_delivered={recovered_delivered} seconds={seconds:.2} delivered_per_second={:.0}",
        tally.delivered,
        tally.failed,
        tally.unsent,
        tally.in_doubt,
        tally.spooled,
        fed.invalid,
        tally.maybe_stored,
        tally.maybe_duplicated,
        tally.aggregated,
        tally.delivered as f64 / seconds.max(1e-3),
    );
    let ledger = ledger.map(|ledger| ledger.finish()).transpose();
    let accounted = tally.delivered + tally.failed + tally.unsent + tally.in_doubt + tally.spooled;
    if accounted != accepted
        || report.delivered < tally.delivered
        || recovered_delivered > recovered
        || report.unsent.len() as u64 != tally.unsent
        || report.in_doubt.len() as u64 != tally.in_doubt
        || report.spooled < tally.spooled
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
    ledger?;
    if accounted == accepted
        && tally.delivered == accepted
        && fed.invalid == 0
        && recovered_delivered == recovered
    {
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
    if recovered_delivered < recovered {
        message.push_str(&format!(
            "; {} of the {} replayed from the spool not delivered",
            recovered - recovered_delivered,
            count(recovered, "record")
        ));
    }
    if tally.spooled > 0 {
        message.push_str(&format!(
            "; the {} spooled stay in {} for the next `kcl produce --spool`",
            count(tally.spooled, "record"),
            args.spool
                .as_deref()
                .unwrap_or(std::path::Path::new("?"))
                .display()
        ));
    }
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

    #[test]
    fn ledger_lines_keep_their_order_and_leave_out_what_does_not_apply() {
        let text = |label, record: &Record, answer| {
            serde_json::to_string(&Ledger::line(label, record, &answer)).unwrap()
        };
        let record = Record::new("key-1", "produce-x");
        let delivery = |sub_sequence_number| Delivery {
            shard_id: "shardId-000000000001".into(),
            sequence_number: "4959".into(),
            sub_sequence_number,
            attempts: 1,
            maybe_duplicated: false,
        };
        assert_eq!(
            text(Label::Record(7), &record, Ok(delivery(Some(3)))),
            r#"{"status":"delivered","record":7,"partition_key":"key-1","data":"produce-x","shard_id":"shardId-000000000001","sequence_number":"4959","sub_sequence_number":3,"attempts":1,"maybe_duplicated":false}"#
        );
        assert_eq!(
            text(Label::Record(7), &record, Ok(delivery(None))),
            r#"{"status":"delivered","record":7,"partition_key":"key-1","data":"produce-x","shard_id":"shardId-000000000001","sequence_number":"4959","sub_sequence_number":null,"attempts":1,"maybe_duplicated":false}"#,
            "sent alone: null"
        );
        let binary = Record::new("k", vec![0xff]).explicit_hash_key("5");
        let in_doubt = Failed {
            record: binary.clone(),
            reason: FailReason::InDoubt,
            attempts: 2,
            maybe_stored: true,
        };
        assert_eq!(
            text(Label::Line(3), &binary, Err(in_doubt)),
            r#"{"status":"in_doubt","line":3,"partition_key":"k","explicit_hash_key":"5","data_base64":"/w==","reason":"a call carrying it was unanswered at the producer's shutdown deadline","attempts":2,"maybe_stored":true}"#
        );
        let refused = Failed {
            record: record.clone(),
            reason: FailReason::Attempts {
                attempts: 1,
                last_error: "InternalFailure: x".into(),
            },
            attempts: 1,
            maybe_stored: false,
        };
        assert!(
            text(Label::Record(0), &record, Err(refused))
                .starts_with(r#"{"status":"failed","record":0,"#)
        );
    }
}
