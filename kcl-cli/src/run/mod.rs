//! `kcl run`: play the MultiLangDaemon locally.
//!
//! Records come from a file or stdin ([`input`]), go to shards by the hash of their partition
//! key, and each shard's child is driven with the daemon's exact protocol rules ([`shard`]);
//! checkpoints persist in a JSON file ([`store`]) so that the next run resumes after them; a
//! table sums up what happened ([`summary`]).

mod args;
mod console;
mod input;
mod shard;
mod store;
mod summary;

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use args::{EndAction, InputFormat, Progress, RunArgs};
pub use input::{record_index, sequence_number, shard_id, shard_index, InputReader, InputRecord};
pub use shard::{Injection, ShardReport};
pub use store::CheckpointStore;

use crate::error::{Error, Result};
use console::{Console, Totals};
use shard::{Settings, ShardDriver, ShardRecord};
use summary::Summary;

/// Java exception names a checkpoint reply can carry (others are accepted with a warning).
const KNOWN_ERRORS: [&str; 5] = [
    "ThrottlingException",
    "ShutdownException",
    "InvalidStateException",
    "KinesisClientLibDependencyException",
    "IllegalArgumentException",
];

/// Parses `--checkpoint-error [SHARD:]N=NAME`; SHARD is an index or a shard id.
///
/// ```
/// use kcl_cli::run::{parse_injection, Injection};
/// assert_eq!(
///     parse_injection("shardId-000000000002:3=ShutdownException").unwrap(),
///     Injection { shard: Some(2), nth: 3, error: "ShutdownException".into() },
/// );
/// assert_eq!(parse_injection("1=ThrottlingException").unwrap().shard, None);
/// assert!(parse_injection("0=ThrottlingException").is_err());
/// ```
pub fn parse_injection(text: &str) -> Result<Injection> {
    let bad = |what: &str| {
        Error::usage_hint(
            format!("--checkpoint-error {text:?}: {what}"),
            "expected [SHARD:]N=NAME, e.g. 2=ThrottlingException or 1:1=ShutdownException",
        )
    };
    let (target, error) = text.split_once('=').ok_or_else(|| bad("no `=`"))?;
    let (shard, nth) = match target.rsplit_once(':') {
        Some((shard, nth)) => (Some(shard), nth),
        None => (None, target),
    };
    let nth: u64 = nth
        .trim()
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| bad("N must be a request number from 1"))?;
    let shard = match shard {
        None => None,
        Some(shard) => {
            let shard = shard.trim();
            let index = shard.strip_prefix("shardId-").unwrap_or(shard);
            Some(
                index
                    .parse::<u32>()
                    .map_err(|_| bad("SHARD must be a shard index or a shard id"))?,
            )
        }
    };
    let error = error.trim();
    if error.is_empty()
        || !error
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    {
        return Err(bad("NAME must be a Java exception class name"));
    }
    Ok(Injection {
        shard,
        nth,
        error: error.to_string(),
    })
}

/// The child command: after `--`, from --executable-name, or from --properties.
fn child_command(args: &RunArgs) -> Result<(Vec<String>, Option<Duration>)> {
    let split = |text: &str| -> Vec<String> {
        // The daemon splits executableName on runs of spaces; a leading space gives an empty
        // program name, which cannot start.
        let mut parts: Vec<String> = text.split(' ').map(str::to_string).collect();
        if parts.first().is_some_and(|p| !p.is_empty()) {
            parts.retain(|p| !p.is_empty());
        }
        parts
    };
    let mut timeout = None;
    let command = if let Some(path) = &args.properties {
        let entries = crate::properties::read_file(path)?;
        let Some(name) = crate::properties::value(&entries, "executableName") else {
            return Err(Error::usage(format!(
                "{} has no executableName",
                path.display()
            )));
        };
        if let Some(seconds) = crate::properties::value(&entries, "timeoutInSeconds") {
            match seconds.trim().parse::<u32>() {
                Ok(seconds) if seconds > 0 => timeout = Some(Duration::from_secs(seconds.into())),
                _ => {}
            }
        }
        split(name)
    } else if let Some(name) = &args.executable_name {
        split(name)
    } else {
        args.command.clone()
    };
    if !args.command.is_empty() && (args.properties.is_some() || args.executable_name.is_some()) {
        return Err(Error::usage(
            "give the processor either after `--` or with --properties/--executable-name, not both",
        ));
    }
    match command.first() {
        None => Err(Error::usage_hint(
            "no processor to run",
            "kcl run [OPTIONS] -- PROCESSOR [ARGS]   (or --properties FILE)",
        )),
        Some(program) if program.is_empty() => Err(Error::usage(
            "the command starts with a space: the daemon would split off an empty program name and fail to start the child",
        )),
        Some(_) => Ok((command, timeout)),
    }
}

fn seconds(value: f64, flag: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| Error::usage(format!("{flag}: {value} is not a number of seconds")))
}

/// Runs `kcl run`.
pub fn command(args: RunArgs) -> Result<()> {
    let (command, properties_timeout) = child_command(&args)?;
    let timeout = match args.timeout {
        Some(value) => Some(seconds(value, "--timeout")?),
        None => properties_timeout,
    };
    let injections = args
        .checkpoint_error
        .iter()
        .map(|text| parse_injection(text))
        .collect::<Result<Vec<_>>>()?;
    for injection in &injections {
        if let Some(shard) = injection.shard {
            if shard >= args.shards {
                return Err(Error::usage(format!(
                    "--checkpoint-error: there is no shard {shard} with --shards {}",
                    args.shards
                )));
            }
        }
        if !KNOWN_ERRORS.contains(&injection.error.as_str()) {
            eprintln!(
                "warning: {} is not an error the KCL sends ({}); sending it anyway",
                injection.error,
                KNOWN_ERRORS.join(", ")
            );
        }
    }
    let reader: Box<dyn BufRead + Send> = if args.input == "-" {
        if std::io::stdin().is_terminal() {
            eprintln!("kcl run: reading records from the terminal, one per line; end with Ctrl-D (or pass --input FILE)");
        }
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        let file = File::open(&args.input)
            .map_err(|e| Error::file("open the input", std::path::Path::new(&args.input), e))?;
        Box::new(BufReader::with_capacity(1 << 16, file))
    };
    let input = InputReader::new(
        reader,
        args.format,
        args.partition_key.clone(),
        args.record_size as usize,
    );
    let store = Arc::new(CheckpointStore::open(
        &args.checkpoints,
        args.shards,
        args.fresh,
    )?);
    let settings = Arc::new(Settings {
        command,
        batch_size: args.batch_size as usize,
        end: args.end,
        timeout,
        exit_timeout: seconds(args.exit_timeout, "--exit-timeout")?,
        max_batches: args.max_batches,
        linger: Duration::from_millis(args.linger_ms),
        trace: args.trace,
        injections,
    });
    let console = Arc::new(Console::new(args.progress, args.progress_every));
    let totals = Arc::new(Totals::default());
    let stop = Arc::new(AtomicBool::new(false));
    install_signal_handlers(&stop);

    let started = Instant::now();
    let mut senders = Vec::new();
    let mut shard_threads = Vec::new();
    for index in 0..args.shards {
        let (tx, rx) = mpsc::sync_channel::<ShardRecord>(settings.batch_size.clamp(16, 4096));
        senders.push(tx);
        let driver = ShardDriver::new(
            index,
            settings.clone(),
            store.clone(),
            console.clone(),
            totals.clone(),
            stop.clone(),
        );
        shard_threads.push(
            std::thread::Builder::new()
                .name(format!("shard-{index}"))
                .spawn(move || driver.run(rx))
                .map_err(|e| Error::io("cannot start a thread", e))?,
        );
    }
    let undelivered: Arc<Vec<AtomicU64>> =
        Arc::new((0..args.shards).map(|_| AtomicU64::new(0)).collect());
    let read = Arc::new(AtomicU64::new(0));
    let (input_done_tx, input_done_rx) = mpsc::channel();
    {
        let undelivered = undelivered.clone();
        let read = read.clone();
        let stop = stop.clone();
        let shards = args.shards;
        std::thread::Builder::new()
            .name("input".into())
            .spawn(move || {
                let result = feed(input, senders, shards, &undelivered, &read, &stop);
                let _ = input_done_tx.send(result);
            })
            .map_err(|e| Error::io("cannot start a thread", e))?;
    }
    let ticker_stop = Arc::new(AtomicBool::new(false));
    if console.live() {
        let console = console.clone();
        let totals = totals.clone();
        let ticker_stop = ticker_stop.clone();
        std::thread::spawn(move || {
            while !ticker_stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(250));
                console.tick(&totals);
            }
        });
    }
    let reports: Vec<ShardReport> = shard_threads
        .into_iter()
        .map(|thread| thread.join().expect("shard threads do not panic"))
        .collect();
    ticker_stop.store(true, Ordering::Relaxed);
    console.clear();
    // Every shard is done; the input thread may still wait for a line of a slow (or
    // interrupted) stdin that no shard would take any more: do not wait for it long.
    let input_error = match input_done_rx.recv_timeout(Duration::from_secs(2)) {
        Ok(Err(error)) => Some(error.to_string()),
        _ => None,
    };
    let undelivered: Vec<u64> = undelivered
        .iter()
        .map(|n| n.load(Ordering::Relaxed))
        .collect();
    let summary = Summary {
        shards: &reports,
        read: read.load(Ordering::Relaxed),
        undelivered: &undelivered,
        elapsed: started.elapsed(),
        checkpoint_file: store.path().display().to_string(),
        input_error,
    };
    crate::fsutil::print_stdout(&summary.render());
    if stop.load(Ordering::Relaxed) && !summary.failed() {
        return Err(Error::Interrupted);
    }
    if summary.failed() {
        let failed = reports.iter().filter(|r| !r.problems.is_empty()).count();
        return Err(Error::failed(format!(
            "{failed} of {} shards failed{} (details above)",
            reports.len(),
            if summary.input_error.is_some() {
                ", and the input had an error"
            } else {
                ""
            }
        )));
    }
    Ok(())
}

/// Reads the input and hands each record to its shard.
fn feed(
    mut input: InputReader,
    senders: Vec<mpsc::SyncSender<ShardRecord>>,
    shards: u32,
    undelivered: &[AtomicU64],
    read: &AtomicU64,
    stop: &AtomicBool,
) -> Result<()> {
    let mut alive = vec![true; senders.len()];
    let mut index = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Some(record) = input.next_record()? else {
            break;
        };
        read.fetch_add(1, Ordering::Relaxed);
        let shard = shard_index(&record.partition_key, record.explicit_hash_key, shards) as usize;
        let item = ShardRecord {
            sequence_number: sequence_number(index),
            data: record.data,
            partition_key: record.partition_key,
            arrival: record.arrival.unwrap_or_else(now_millis),
        };
        index += 1;
        if !alive[shard] || senders[shard].send(item).is_err() {
            alive[shard] = false;
            undelivered[shard].fetch_add(1, Ordering::Relaxed);
            if !alive.contains(&true) {
                break;
            }
        }
    }
    Ok(())
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// SIGINT/SIGTERM: stop feeding and end every shard like a daemon shutdown; a second one exits.
fn install_signal_handlers(stop: &Arc<AtomicBool>) {
    #[cfg(unix)]
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register_conditional_shutdown(signal, 130, stop.clone());
        let _ = signal_hook::flag::register(signal, stop.clone());
    }
    #[cfg(not(unix))]
    let _ = stop;
}
