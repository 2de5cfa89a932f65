//! The flags of `kcl properties`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// Shown at the end of `--help`.
const EXAMPLES: &str = "\
Examples:
  kcl properties --stream orders --application orders-app \\
      --executable 'target/release/orders-processor' --region eu-west-1 -o app.properties
  kcl properties --stream s --application a --executable ./p \\
      --endpoint http://127.0.0.1:4566 --metrics none --set shutdownGraceMillis=30000
  kcl properties --check app.properties";

/// Retrieval modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum RetrievalMode {
    /// GetRecords polling (works with emulators; the usual choice).
    Polling,
    /// Enhanced fan-out (SubscribeToShard over HTTP/2; extra AWS cost).
    Fanout,
    /// The daemon's DEFAULT: fan-out unless a polling key is set.
    Default,
}

/// Initial positions of a new lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum InitialPosition {
    /// The oldest record kept by the stream.
    TrimHorizon,
    /// Only records put after the application starts.
    Latest,
    /// Records from --at-timestamp on.
    AtTimestamp,
}

/// CloudWatch metrics levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum MetricsLevel {
    /// No metrics (no CloudWatch calls at all).
    None,
    /// Summary metrics.
    Summary,
    /// Detailed metrics (the daemon's default).
    Detailed,
}

/// `kcl properties`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct PropertiesArgs {
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
