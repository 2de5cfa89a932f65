//! The command line (clap derive): every subcommand and flag, with its help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run, configure and launch Amazon KCL MultiLangDaemon record processors.
///
/// The Java KCL MultiLangDaemon starts one child process per shard and talks JSON lines with it.
/// `kcl run` plays that daemon locally (no AWS, no Java); the other commands set up and start the
/// real one.
#[derive(Debug, Parser)]
#[command(name = "kcl", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Play the daemon locally: feed records from a file or stdin to a processor, one child per
    /// shard, with the daemon's exact protocol rules; checkpoints persist in a local file.
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Write a daemon properties file from flags (warning about keys the daemon silently
    /// ignores), or check an existing one with --check.
    #[command(after_help = PROPERTIES_EXAMPLES)]
    Properties(PropertiesArgs),
    /// Download, verify or locate the pinned MultiLangDaemon jars (KCL 3.x).
    Jars(JarsArgs),
    /// Check Java and the jars, then run the real MultiLangDaemon (or print its command).
    #[command(after_help = DAEMON_EXAMPLES)]
    Daemon(DaemonArgs),
    /// Put words or lines into a Kinesis stream (AWS, or a local emulator with --endpoint).
    #[command(after_help = PUT_EXAMPLES)]
    Put(PutArgs),
}

const RUN_EXAMPLES: &str = "\
Examples:
  kcl run --input words.txt -- target/debug/examples/word_count
  seq 1 100000 | kcl run --shards 4 --batch-size 500 -- python3 processor.py
  kcl run --input events.jsonl --format jsonl --end shard-ended -- ./my-processor
  kcl run --input words.txt --checkpoint-error 1=ThrottlingException -- ./my-processor
  kcl run --properties app.properties --input words.txt   (runs its executableName)";

const PROPERTIES_EXAMPLES: &str = "\
Examples:
  kcl properties --stream orders --application orders-app \\
      --executable 'target/release/orders-processor' --region eu-west-1 -o app.properties
  kcl properties --stream s --application a --executable ./p \\
      --endpoint http://127.0.0.1:4566 --metrics none --set shutdownGraceMillis=30000
  kcl properties --check app.properties";

const DAEMON_EXAMPLES: &str = "\
Examples:
  kcl jars fetch && kcl daemon --properties app.properties
  kcl daemon --properties app.properties --jars venv/lib/python3.11/site-packages/amazon_kclpy/jars
  kcl daemon --properties app.properties --print-command

Exit codes:
  125    kcl did not start the daemon (bad properties, unverified jars, no usable Java, ...)
  2      the command line is wrong (an unknown flag, a missing value)
  other  the daemon's own exit code (128 + N if signal N ended it)";

const PUT_EXAMPLES: &str = "\
Examples:
  kcl put --stream words --endpoint http://127.0.0.1:4567 --word hello --word world --count 1
  kcl put --stream words --file words.txt --period 2";

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

/// Retrieval modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RetrievalMode {
    /// GetRecords polling (works with emulators; the usual choice).
    Polling,
    /// Enhanced fan-out (SubscribeToShard over HTTP/2; extra AWS cost).
    Fanout,
    /// The daemon's DEFAULT: fan-out unless a polling key is set.
    Default,
}

/// Initial positions of a new lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InitialPosition {
    /// The oldest record kept by the stream.
    TrimHorizon,
    /// Only records put after the application starts.
    Latest,
    /// Records from --at-timestamp on.
    AtTimestamp,
}

/// CloudWatch metrics levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MetricsLevel {
    /// No metrics (no CloudWatch calls at all).
    None,
    /// Summary metrics.
    Summary,
    /// Detailed metrics (the daemon's default).
    Detailed,
}

/// `kcl properties`.
#[derive(Debug, Args)]
pub struct PropertiesArgs {
    /// Check this existing properties file for traps instead of writing one.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["stream", "stream_arn", "application", "executable", "output"])]
    pub check: Option<PathBuf>,

    /// Where to write the file (default: stdout).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Overwrite --output if it exists.
    #[arg(long)]
    pub force: bool,

    /// streamName: the one stream the daemon reads.
    #[arg(long, value_name = "NAME")]
    pub stream: Option<String>,

    /// streamArn (wins over streamName when both are set).
    #[arg(long, value_name = "ARN")]
    pub stream_arn: Option<String>,

    /// applicationName: also the lease table's name.
    #[arg(long, value_name = "NAME")]
    pub application: Option<String>,

    /// executableName: the child command, split on spaces (no shell, no quotes), looked up on
    /// the daemon's PATH, relative paths from the daemon's working directory.
    #[arg(long, value_name = "COMMAND")]
    pub executable: Option<String>,

    /// regionName.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// Both kinesisEndpoint and dynamoDBEndpoint (one emulator serving both).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,

    /// kinesisEndpoint.
    #[arg(long, value_name = "URL")]
    pub kinesis_endpoint: Option<String>,

    /// dynamoDBEndpoint.
    #[arg(long, value_name = "URL")]
    pub dynamodb_endpoint: Option<String>,

    /// initialPositionInStream of new leases.
    #[arg(long, value_enum, default_value_t = InitialPosition::TrimHorizon)]
    pub initial_position: InitialPosition,

    /// initialPositionInStreamExtended, in epoch seconds (with --initial-position at-timestamp).
    #[arg(long, value_name = "EPOCH_SECONDS")]
    pub at_timestamp: Option<u64>,

    /// retrievalMode. Always written, since the daemon's DEFAULT means enhanced fan-out.
    #[arg(long, value_enum, default_value_t = RetrievalMode::Polling)]
    pub retrieval_mode: RetrievalMode,

    /// metricsLevel.
    #[arg(long, value_enum, default_value_t = MetricsLevel::None)]
    pub metrics: MetricsLevel,

    /// AwsCredentialsProvider: an AWS SDK v2 provider class name, `|`-separated arguments.
    #[arg(
        long,
        value_name = "PROVIDER",
        default_value = "DefaultCredentialsProvider"
    )]
    pub credentials_provider: String,

    /// workerId. Set a stable one: with a random id a restarted worker fights its old self for
    /// leases (KCL 3).
    #[arg(long, value_name = "ID")]
    pub worker_id: Option<String>,

    /// shutdownGraceMillis: how long SIGTERM waits for a graceful shutdown (the daemon's
    /// default 0 means no wait at all).
    #[arg(long, value_name = "MILLIS", default_value_t = 30_000)]
    pub shutdown_grace_millis: u64,

    /// Any other key, as KEY=VALUE (repeatable). Keys are checked against the daemon's.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// Write --set keys the daemon does not know (it ignores them silently).
    #[arg(long)]
    pub allow_unknown: bool,
}

/// `kcl jars`.
#[derive(Debug, Args)]
pub struct JarsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: JarsCommand,
}

/// Where the jar list comes from and where the jars live.
#[derive(Debug, Args, Clone)]
pub struct JarSet {
    /// The KCL release whose pinned jar list to use.
    #[arg(long, value_name = "VERSION", default_value = crate::jars::DEFAULT_RELEASE)]
    pub release: String,

    /// Use this manifest file instead (lines `group:artifact:version sha256`).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    /// The jar folder [default: $KCL_JARS_DIR, else ~/.cache/kcl/jars/<release>].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `kcl jars` subcommands.
#[derive(Debug, Subcommand)]
pub enum JarsCommand {
    /// Download the jars (Maven repository layout), or copy them from a folder, checking each
    /// SHA-256; jars already present and valid are kept.
    Fetch(FetchArgs),
    /// Check a jar folder against the pinned list: missing, extra and mismatched jars.
    Verify(VerifyArgs),
    /// Print the jar folder, or the classpath.
    Path(PathArgs),
}

/// `kcl jars fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Jar list and folder.
    #[command(flatten)]
    pub set: JarSet,

    /// Maven repository base URL; `https://user:password@host/...` or KCL_MAVEN_USERNAME /
    /// KCL_MAVEN_PASSWORD for a private one (the password is never printed).
    #[arg(long, value_name = "URL", env = "KCL_MAVEN_REPO", hide_env_values = true, default_value = crate::jars::DEFAULT_REPO)]
    pub repo: String,

    /// Send the repository password over plain http:// to another machine than this one
    /// (refused by default: anyone on the network path could read it).
    #[arg(long)]
    pub allow_insecure_auth: bool,

    /// The largest jar accepted when the manifest pins no size (bytes, or with K, M, G).
    #[arg(long, value_name = "BYTES", default_value = "64M", value_parser = crate::jars::parse_size)]
    pub max_jar_size: u64,

    /// Copy the jars from this folder (e.g. amazon_kclpy/jars of an installed kclpy) instead of
    /// downloading.
    #[arg(long, value_name = "DIR", conflicts_with = "offline")]
    pub from: Option<PathBuf>,

    /// Do not download: only check what is in the folder.
    #[arg(long)]
    pub offline: bool,

    /// Attempts per jar after the first, on network errors and 5xx answers.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub retries: u32,

    /// Seconds before a download attempt gives up.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub timeout: u64,

    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `kcl jars verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Jar list and folder.
    #[command(flatten)]
    pub set: JarSet,

    /// The folder to check (same as --dir).
    #[arg(value_name = "DIR")]
    pub folder: Option<PathBuf>,
}

/// `kcl jars path`.
#[derive(Debug, Args)]
pub struct PathArgs {
    /// Jar list and folder.
    #[command(flatten)]
    pub set: JarSet,

    /// Print the classpath (the jars of the list, `:`-separated) instead of the folder, once
    /// every jar has its pinned SHA-256.
    #[arg(long)]
    pub classpath: bool,

    /// With --classpath: check only that the jars are there, not their SHA-256.
    #[arg(long, requires = "classpath")]
    pub no_verify: bool,
}

/// `kcl daemon`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// The daemon's properties file.
    #[arg(long, short, value_name = "FILE")]
    pub properties: PathBuf,

    /// Jar list and folder (`--jars` is the folder).
    #[command(flatten)]
    pub set: JarSet,

    /// The jar folder (same as --dir).
    #[arg(long, value_name = "DIR")]
    pub jars: Option<PathBuf>,

    /// The java executable [default: $JAVA_HOME/bin/java, else java on PATH].
    #[arg(long, value_name = "PATH")]
    pub java: Option<PathBuf>,

    /// A logback configuration file replacing the daemon's bundled one.
    #[arg(long, value_name = "FILE")]
    pub log_configuration: Option<PathBuf>,

    /// Extra classpath entries, before the jars (repeatable).
    #[arg(long, short = 'c', value_name = "PATH")]
    pub classpath: Vec<PathBuf>,

    /// A JVM option, e.g. -Xmx256m (repeatable).
    #[arg(long, value_name = "OPTION", allow_hyphen_values = true)]
    pub java_opt: Vec<String>,

    /// Print the command (shell-quoted) instead of running it.
    #[arg(long)]
    pub print_command: bool,

    /// Only check that the jars are present, not their SHA-256.
    #[arg(long)]
    pub no_verify: bool,
}

/// `kcl put`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["word", "file"]))]
pub struct PutArgs {
    /// The stream.
    #[arg(long, value_name = "NAME")]
    pub stream: String,

    /// Endpoint URL of Kinesis (e.g. a local emulator). Without it, AWS.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,

    /// The region [default: $AWS_REGION, else us-east-1].
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// A word to put (repeatable); each is one record, its own partition key.
    #[arg(long, value_name = "WORD")]
    pub word: Vec<String>,

    /// Put each line of this file (`-` for stdin) as one record.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Partition key of every record [default: the record's text].
    #[arg(long, value_name = "KEY")]
    pub partition_key: Option<String>,

    /// Put everything again every SECONDS, until interrupted (or --count rounds).
    #[arg(long, value_name = "SECONDS")]
    pub period: Option<f64>,

    /// Number of rounds [default: 1, or unlimited with --period].
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,

    /// When a put fails (after its retries), report it and go on with the next word and round
    /// instead of stopping; exit 1 at the end if any failed. Meant for --period loops.
    #[arg(long)]
    pub keep_going: bool,

    /// Attempts per record, the first included: throttling, server errors, timeouts and
    /// connection errors are retried with exponential backoff (at most 10 s between attempts).
    #[arg(long, value_name = "N", default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,

    /// Which credentials sign the requests [default: dummy for an --endpoint on this machine
    /// (127.0.0.1, ::1, localhost); aws otherwise, except dummy for another --endpoint when
    /// none of AWS_ACCESS_KEY_ID, AWS_SESSION_TOKEN, AWS_PROFILE is set].
    #[arg(long, value_enum, value_name = "WHICH")]
    pub credentials: Option<PutCredentials>,

    /// Allow AWS credentials to sign requests to a plain http:// --endpoint that is not on this
    /// machine (the requests, and any session token, cross the network in clear).
    #[arg(long)]
    pub allow_plain_http: bool,
}

/// The credentials `kcl put` signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PutCredentials {
    /// The fixed key `kcl-local` (emulators accept any credentials).
    Dummy,
    /// The AWS credential chain: environment, profile, SSO, instance role, ...
    Aws,
}
