//! The flags of `kcl run`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

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
pub enum InputFormat {
    /// One record per line (terminator removed; bytes kept as they are).
    Lines,
    /// One JSON object per line: {"data": ..., "partitionKey": ...} (see `kcl run --help`).
    Jsonl,
    /// Raw bytes, cut into records of --record-size bytes.
    Raw,
}

/// What the driver sends after the last batch of a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EndAction {
    /// `shutdownRequested` then `leaseLost`: a graceful worker shutdown (KCL 3).
    ShutdownRequested,
    /// `shardEnded`: the shard was closed (resharding); the child must checkpoint it.
    ShardEnded,
    /// `leaseLost`: another worker took the lease; no checkpoint possible.
    LeaseLost,
}

/// When to print progress lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Progress {
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
pub struct RunArgs {
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
