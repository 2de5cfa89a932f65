//! The flags of `kcl run`, and their check into a [`Plan`]: every flag error is reported here,
//! before any input, checkpoint file or child is touched.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use kcl_protocol::DaemonError;

use super::shard::{Injection, Settings};
use crate::error::{Error, Result};

/// Shown at the end of `--help`.
const EXAMPLES: &str = "\
Examples:
  kcl run --input words.txt -- target/debug/examples/word_count
  seq 1 100000 | kcl run --shards 4 --batch-size 500 -- python3 processor.py
  kcl run --input events.jsonl --format jsonl --end shard-ended -- ./my-processor
  kcl run --input words.txt --checkpoint-error 1=ThrottlingException -- ./my-processor
  kcl run --properties app.properties --input words.txt   (runs its executableName)";

/// Input formats of `kcl run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum InputFormat {
    /// One record per line (terminator removed; bytes kept as they are).
    Lines,
    /// One JSON object per line: {"data": ..., "partitionKey": ...} (see `kcl run --help`).
    Jsonl,
    /// Raw bytes, cut into records of --record-size bytes.
    Raw,
}

/// What the driver sends after the last batch of a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum EndAction {
    /// `shutdownRequested` then `leaseLost`: a graceful worker shutdown (KCL 3).
    ShutdownRequested,
    /// `shardEnded`: the shard was closed (resharding); the child must checkpoint it.
    ShardEnded,
    /// `leaseLost`: another worker took the lease; no checkpoint possible.
    LeaseLost,
}

/// When to print progress lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Progress {
    /// Every second on a terminal, otherwise every --progress-every batches.
    Auto,
    /// Every --progress-every batches, as plain lines.
    Always,
    /// Never.
    Never,
}

/// `kcl run`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct RunArgs {
    /// Where records come from: a file, or `-` for stdin.
    #[arg(long, short, value_name = "FILE|-", default_value = "-")]
    pub input: String,

    /// How the input is cut into records.
    #[arg(long, short, value_enum, default_value_t = InputFormat::Lines)]
    pub format: InputFormat,

    /// Records per processRecords batch (the daemon's maxRecords).
    #[arg(long, short, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,

    /// Number of shards; records go to shards by the MD5 hash of their partition key, as in
    /// Kinesis. Each shard gets its own child process.
    #[arg(long, short, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub shards: u32,

    /// Partition key of every record (lines and raw formats); by default the record's line
    /// (or chunk) number.
    #[arg(long, value_name = "KEY")]
    pub partition_key: Option<String>,

    /// Size of each record in the raw format.
    #[arg(long, value_name = "BYTES", default_value_t = 1_048_576, value_parser = clap::value_parser!(u32).range(1..=10_485_760))]
    pub record_size: u32,

    /// The checkpoint file: shard checkpoints are kept there (written atomically), so the next
    /// run resumes after them.
    #[arg(long, value_name = "FILE", default_value = "kcl-checkpoints.json")]
    pub checkpoints: PathBuf,

    /// Start from the beginning (TRIM_HORIZON), replacing the checkpoint file's contents.
    #[arg(long)]
    pub fresh: bool,

    /// What follows the last batch of each shard.
    #[arg(long, value_enum, default_value_t = EndAction::ShutdownRequested)]
    pub end: EndAction,

    /// Answer a checkpoint request with this error instead of judging it: `N=NAME` for the N-th
    /// request of every shard, `SHARD:N=NAME` for one shard (index or shard id). NAME is a Java
    /// exception name: ThrottlingException, ShutdownException, InvalidStateException,
    /// KinesisClientLibDependencyException, IllegalArgumentException. Repeatable.
    #[arg(long, value_name = "[SHARD:]N=NAME")]
    pub checkpoint_error: Vec<String>,

    /// Like the daemon's timeoutInSeconds: a child that writes no message for this long fails
    /// the run ("the real daemon would halt"). Default: wait forever, like the daemon.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,

    /// How long to wait for a child to exit once its stdin is closed, before killing it.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub exit_timeout: f64,

    /// Stop each shard after this many batches (then send the --end action): the next run
    /// resumes from the stored checkpoints.
    #[arg(long, value_name = "N")]
    pub max_batches: Option<u64>,

    /// Wait this long for more records before sending a partial batch (for slow stdin).
    #[arg(long, value_name = "MILLIS", default_value_t = 200)]
    pub linger_ms: u64,

    /// Print every protocol line (D> to the child, C< from it) to stderr.
    #[arg(long)]
    pub trace: bool,

    /// When to print progress to stderr.
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    pub progress: Progress,

    /// Batches between progress lines when stderr is not a terminal.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub progress_every: u64,

    /// Take the child command from this properties file's executableName (split on spaces as
    /// the daemon does), and --timeout from its timeoutInSeconds.
    #[arg(long, value_name = "FILE")]
    pub properties: Option<PathBuf>,

    /// The child command as one string, split on spaces exactly as the daemon splits
    /// executableName (no shell, no quotes).
    #[arg(long, value_name = "COMMAND", conflicts_with = "properties")]
    pub executable_name: Option<String>,

    /// The processor command and its arguments (after `--`).
    #[arg(last = true, value_name = "PROCESSOR [ARGS]")]
    pub command: Vec<String>,
}

/// What `kcl run` does, once its flags are checked.
#[derive(Debug)]
pub(super) struct Plan {
    /// Where records come from: a file, or `-` for stdin.
    pub(super) input: String,
    /// How the input is cut into records.
    pub(super) format: InputFormat,
    /// The partition key of every record, if given.
    pub(super) partition_key: Option<String>,
    /// The record size of the raw format.
    pub(super) record_size: usize,
    /// The number of shards.
    pub(super) shards: u32,
    /// The checkpoint file.
    pub(super) checkpoints: PathBuf,
    /// Whether to start over, replacing the checkpoint file's contents.
    pub(super) fresh: bool,
    /// When to print progress.
    pub(super) progress: Progress,
    /// Batches between progress lines when stderr is not a terminal.
    pub(super) progress_every: u64,
    /// What every shard driver does.
    pub(super) settings: Settings,
}

impl RunArgs {
    /// Checks the flags (reading --properties if given) and warns about checkpoint errors the
    /// KCL never sends.
    pub(super) fn plan(self) -> Result<Plan> {
        let (command, properties_timeout) = child_command(&self)?;
        let timeout = match self.timeout {
            Some(value) => Some(seconds(value, "--timeout")?),
            None => properties_timeout,
        };
        let injections = self
            .checkpoint_error
            .iter()
            .map(|text| parse_injection(text))
            .collect::<Result<Vec<_>>>()?;
        for injection in &injections {
            if let Some(shard) = injection.shard
                && shard >= self.shards
            {
                return Err(Error::usage(format!(
                    "--checkpoint-error: there is no shard {shard} with --shards {}",
                    self.shards
                )));
            }
            if DaemonError::from_java_name(&injection.error).is_none() {
                let known: Vec<&str> = DaemonError::ALL.iter().map(|e| e.java_name()).collect();
                eprintln!(
                    "warning: {} is not an error the KCL sends ({}); sending it anyway",
                    injection.error,
                    known.join(", ")
                );
            }
        }
        let settings = Settings {
            command,
            batch_size: self.batch_size as usize,
            end: self.end,
            timeout,
            exit_timeout: seconds(self.exit_timeout, "--exit-timeout")?,
            max_batches: self.max_batches,
            linger: Duration::from_millis(self.linger_ms),
            trace: self.trace,
            injections,
        };
        Ok(Plan {
            input: self.input,
            format: self.format,
            partition_key: self.partition_key,
            record_size: self.record_size as usize,
            shards: self.shards,
            checkpoints: self.checkpoints,
            fresh: self.fresh,
            progress: self.progress,
            progress_every: self.progress_every,
            settings,
        })
    }
}

/// Parses `--checkpoint-error [SHARD:]N=NAME`; SHARD is an index or a shard id.
fn parse_injection(text: &str) -> Result<Injection> {
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

/// `value` seconds of `flag`, refused when negative, not a number or too large.
fn seconds(value: f64, flag: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| Error::usage(format!("{flag}: {value} is not a number of seconds")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_error_flags() {
        assert_eq!(
            parse_injection("shardId-000000000002:3=ShutdownException").unwrap(),
            Injection {
                shard: Some(2),
                nth: 3,
                error: "ShutdownException".into()
            },
        );
        assert_eq!(
            parse_injection("1=ThrottlingException").unwrap().shard,
            None
        );
        assert!(parse_injection("0=ThrottlingException").is_err());
    }
}
