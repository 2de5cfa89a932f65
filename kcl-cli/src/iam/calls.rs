//! Every AWS call a KCL application can make, and who makes it: the one table `kcl iam-policy`
//! builds its policy from.
//!
//! The table is tied to the code in three ways, so it cannot drift into a hand-kept list:
//!
//! * the native engine's and the producer's entries name the source file holding the SDK call;
//!   a test (`kcl-cli/tests/iam_calls.rs`) finds every SDK operation called in kcl-native,
//!   kcl-lease and kcl-producer and requires it here with that file, and the reverse;
//! * the Java daemon's entries name the KCL 3.1.3 classes that build the request; the e2e
//!   scenario `iam_policy_covers_what_both_engines_call` reads the daemon's jars and requires
//!   every `…/model/<Action>Request` a KCL or lock-client class refers to here (as a call, or as
//!   [`When::Never`] with the reason), and each named class to refer to it;
//! * the same scenario records what the emulators receive from the real daemon and from the
//!   native engine, and requires each (action, resource) to be allowed by the policy.

use serde::Serialize;

/// The AWS service of a call (its IAM prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// `kinesis:`
    Kinesis,
    /// `dynamodb:`
    Dynamodb,
    /// `cloudwatch:`
    Cloudwatch,
    /// `sts:`
    Sts,
}

impl Service {
    /// The IAM action prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            Service::Kinesis => "kinesis",
            Service::Dynamodb => "dynamodb",
            Service::Cloudwatch => "cloudwatch",
            Service::Sts => "sts",
        }
    }
}

/// What a call acts on; `kcl iam-policy` turns each into an ARN from the properties.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// The stream (`streamName` / `streamArn`).
    Stream,
    /// The enhanced fan-out consumer (`consumerArn`, else `consumerName`, else
    /// `applicationName`).
    Consumer,
    /// The lease table (`tableName`, else `applicationName`).
    LeaseTable,
    /// The lease table's `LeaseOwnerToLeaseKeyIndex` (KCL 3.x).
    LeaseIndex,
    /// `<applicationName>-CoordinatorState` (or `coordinatorStateTableName`).
    CoordinatorTable,
    /// `<applicationName>-WorkerMetricStats` (or `workerMetricsTableName`).
    MetricsTable,
    /// CloudWatch metrics (no resource-level ARN exists: `*`, limited by namespace).
    Metrics,
    /// The role an assume-role credentials provider assumes.
    Role,
}

/// When a call happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum When {
    /// In every application.
    Always,
    /// With enhanced fan-out retrieval.
    FanOut,
    /// With enhanced fan-out and no `consumerArn`: the consumer is registered if missing.
    FanOutRegistering,
    /// Unless `metricsLevel = NONE` (nothing is then published).
    Metrics,
    /// With `leaseTablePitrEnabled = true`.
    LeaseTablePitr,
    /// With `coordinatorStatePointInTimeRecoveryEnabled = true`.
    CoordinatorTablePitr,
    /// With `workerMetricsPointInTimeRecoveryEnabled = true`.
    MetricsTablePitr,
    /// With an assume-role credentials provider (`KclStsAssumeRoleCredentialsProvider|ARN|…`).
    AssumeRole,
    /// When the application writes (`kcl iam-policy --producer`).
    Producing,
    /// Referred to in the daemon's jars but never called by a KCL application (see `why`).
    Never,
}

/// Who makes a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum By {
    /// The Java daemon and the native engine.
    Both,
    /// The Java daemon only.
    Java,
    /// The producer (`kcl put`, `kcl produce`, kcl-producer).
    Producer,
}

/// One AWS call.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Call {
    /// The service.
    pub service: Service,
    /// The action, as IAM spells it (`GetRecords`).
    pub action: &'static str,
    /// What it acts on.
    pub target: Target,
    /// When it happens.
    pub when: When,
    /// Who makes it.
    pub by: By,
    /// The KCL 3.1.3 (or lock client) classes that build its request, as the jar holds them
    /// (`software/amazon/kinesis/…/Class`); empty when the native engine alone calls it.
    pub java: &'static [&'static str],
    /// The source files of this workspace that call it (native engine, producer); empty when
    /// only the Java daemon does.
    pub rust: &'static [&'static str],
    /// Why, in a few words.
    pub why: &'static str,
}

const fn call(
    service: Service,
    action: &'static str,
    target: Target,
    when: When,
    java: &'static [&'static str],
    rust: &'static [&'static str],
    why: &'static str,
) -> Call {
    // Calls in Rust are the native engine's; the Java daemon makes them all too (those of the
    // worker metrics table through DynamoDB's enhanced client, so no class is named).
    let by = if rust.is_empty() { By::Java } else { By::Both };
    Call {
        service,
        action,
        target,
        when,
        by,
        java,
        rust,
        why,
    }
}

/// A call of the producer.
const fn produce(action: &'static str, why: &'static str) -> Call {
    Call {
        service: Service::Kinesis,
        action,
        target: Target::Stream,
        when: When::Producing,
        by: By::Producer,
        java: &[],
        rust: &[PRODUCER],
        why,
    }
}

const DETECTOR: &str = "software/amazon/kinesis/leases/KinesisShardDetector";
const FETCHER: &str = "software/amazon/kinesis/retrieval/polling/KinesisDataFetcher";
const REGISTRATION: &str = "software/amazon/kinesis/retrieval/fanout/FanOutConsumerRegistration";
const PUBLISHER: &str = "software/amazon/kinesis/retrieval/fanout/FanOutRecordsPublisher";
const REFRESHER: &str = "software/amazon/kinesis/leases/dynamodb/DynamoDBLeaseRefresher";
const COORDINATOR: &str = "software/amazon/kinesis/coordinator/CoordinatorStateDAO";
const LOCK_CLIENT: &str = "com/amazonaws/services/dynamodbv2/AmazonDynamoDBLockClient";
const METRICS_DAO: &str = "software/amazon/kinesis/worker/metricstats/WorkerMetricStatsDAO";
const DDB_UTIL: &str = "software/amazon/kinesis/utils/DdbUtil";
const CLOUDWATCH: &str = "software/amazon/kinesis/metrics/CloudWatchMetricsPublisher";
const STS: &str = "software/amazon/kinesis/multilang/auth/KclStsAssumeRoleCredentialsProvider";
const ADAPTER: &str = "software/amazon/kinesis/coordinator/DynamoDbAsyncToSyncClientAdapter";

const NATIVE_KINESIS: &str = "kcl-native/src/sdk.rs";
const NATIVE_STORE: &str = "kcl-lease/src/dynamo/mod.rs";
const NATIVE_TABLES: &str = "kcl-lease/src/dynamo/tables.rs";
const PRODUCER: &str = "kcl-producer/src/aws.rs";

use Service::{Cloudwatch, Dynamodb, Kinesis, Sts};
use Target::{
    Consumer, CoordinatorTable, LeaseIndex, LeaseTable, Metrics, MetricsTable, Role, Stream,
};

/// Every call, Java daemon (KCL 3.1.3 multilang) and native engine, consumer and producer.
#[rustfmt::skip]
pub const CALLS: &[Call] = &[
    // Kinesis, reading.
    call(Kinesis, "ListShards", Stream, When::Always, &[DETECTOR], &[NATIVE_KINESIS],
        "shard discovery and periodic shard sync"),
    call(Kinesis, "GetShardIterator", Stream, When::Always, &[FETCHER, DETECTOR], &[NATIVE_KINESIS],
        "polling; in fan-out mode too, to find the children of a finished shard before deleting its lease"),
    call(Kinesis, "GetRecords", Stream, When::Always, &[FETCHER, DETECTOR], &[NATIVE_KINESIS],
        "polling; in fan-out mode too, to find the children of a finished shard before deleting its lease"),
    call(Kinesis, "DescribeStreamSummary", Stream, When::FanOut, &[REGISTRATION], &[],
        "fan-out: the stream ARN, when streamArn is not set"),
    call(Kinesis, "RegisterStreamConsumer", Stream, When::FanOutRegistering, &[REGISTRATION], &[],
        "fan-out: registers the consumer when it does not exist"),
    call(Kinesis, "DescribeStreamConsumer", Consumer, When::FanOut, &[REGISTRATION], &[],
        "fan-out: finds the consumer and waits until it is ACTIVE"),
    call(Kinesis, "SubscribeToShard", Consumer, When::FanOut, &[PUBLISHER], &[],
        "fan-out: the record loop"),
    // The lease table.
    call(Dynamodb, "DescribeTable", LeaseTable, When::Always, &[REFRESHER], &[NATIVE_TABLES],
        "start: does the table exist, is it ACTIVE, is the owner index ready"),
    call(Dynamodb, "CreateTable", LeaseTable, When::Always, &[REFRESHER], &[NATIVE_TABLES],
        "first start of the application"),
    call(Dynamodb, "UpdateTable", LeaseTable, When::Always, &[REFRESHER], &[NATIVE_TABLES],
        "KCL 3.x: creates the LeaseOwnerToLeaseKeyIndex index when it is missing"),
    call(Dynamodb, "GetItem", LeaseTable, When::Always, &[REFRESHER], &[NATIVE_STORE],
        "reads a lease or a checkpoint"),
    call(Dynamodb, "PutItem", LeaseTable, When::Always, &[REFRESHER], &[NATIVE_STORE],
        "creates the lease of a new shard"),
    call(Dynamodb, "UpdateItem", LeaseTable, When::Always, &[REFRESHER], &[NATIVE_STORE],
        "renews, takes, assigns, hands off and checkpoints leases"),
    call(Dynamodb, "DeleteItem", LeaseTable, When::Always, &[REFRESHER], &[NATIVE_STORE],
        "deletes the lease of a finished shard once its children started"),
    call(Dynamodb, "Scan", LeaseTable, When::Always, &[REFRESHER], &[NATIVE_STORE],
        "lists the leases: assignment, taking, shard sync"),
    call(Dynamodb, "Query", LeaseIndex, When::Always, &[REFRESHER], &[NATIVE_STORE],
        "KCL 3.x: each worker finds the leases assigned to it"),
    call(Dynamodb, "UpdateContinuousBackups", LeaseTable, When::LeaseTablePitr, &[REFRESHER], &[],
        "turns on point-in-time recovery, at each start"),
    // The coordinator state table: the Leader lock and Migration3.0.
    call(Dynamodb, "DescribeTable", CoordinatorTable, When::Always, &[COORDINATOR], &[NATIVE_TABLES],
        "start: does the table exist"),
    call(Dynamodb, "CreateTable", CoordinatorTable, When::Always, &[COORDINATOR], &[NATIVE_TABLES],
        "first start of the application"),
    call(Dynamodb, "GetItem", CoordinatorTable, When::Always, &[COORDINATOR, LOCK_CLIENT], &[NATIVE_STORE],
        "reads the Leader lock and the client version"),
    call(Dynamodb, "PutItem", CoordinatorTable, When::Always, &[COORDINATOR, LOCK_CLIENT], &[NATIVE_STORE],
        "takes the Leader lock, writes the client version"),
    call(Dynamodb, "UpdateItem", CoordinatorTable, When::Always, &[COORDINATOR, LOCK_CLIENT], &[NATIVE_STORE],
        "heartbeats the Leader lock, moves the client version"),
    call(Dynamodb, "DeleteItem", CoordinatorTable, When::Always, &[LOCK_CLIENT], &[NATIVE_STORE],
        "releases the Leader lock"),
    call(Dynamodb, "Scan", CoordinatorTable, When::Always, &[COORDINATOR], &[NATIVE_STORE],
        "lists the coordinator state"),
    call(Dynamodb, "UpdateContinuousBackups", CoordinatorTable, When::CoordinatorTablePitr, &[DDB_UTIL], &[],
        "turns on point-in-time recovery, at each start"),
    // The worker metrics table (the Java daemon writes it with DynamoDB's enhanced client, whose
    // requests are not `…/model/…Request` classes of KCL: only DescribeTable shows in its jar).
    call(Dynamodb, "DescribeTable", MetricsTable, When::Always, &[METRICS_DAO], &[NATIVE_TABLES],
        "start: does the table exist"),
    call(Dynamodb, "CreateTable", MetricsTable, When::Always, &[DDB_UTIL], &[NATIVE_TABLES],
        "first start of the application"),
    call(Dynamodb, "UpdateItem", MetricsTable, When::Always, &[], &[NATIVE_STORE],
        "each worker reports its metrics (every 30 s)"),
    call(Dynamodb, "Scan", MetricsTable, When::Always, &[], &[NATIVE_STORE],
        "the leader reads every worker's metrics to balance leases"),
    call(Dynamodb, "DeleteItem", MetricsTable, When::Always, &[], &[NATIVE_STORE],
        "removes the metrics of workers gone for a day"),
    call(Dynamodb, "UpdateContinuousBackups", MetricsTable, When::MetricsTablePitr, &[DDB_UTIL], &[],
        "turns on point-in-time recovery, at each start"),
    // CloudWatch.
    call(Cloudwatch, "PutMetricData", Metrics, When::Metrics, &[CLOUDWATCH], &[],
        "the daemon's metrics (the native engine publishes none)"),
    // STS.
    call(Sts, "AssumeRole", Role, When::AssumeRole, &[STS], &[],
        "the daemon's assume-role credentials provider"),
    // The producer (`kcl put`, `kcl produce`, kcl-producer).
    produce("PutRecords", "writes records in batches"),
    produce("ListShards", "the shards' hash key ranges, to aggregate per shard"),
    produce("DescribeStreamSummary", "checks the stream before writing"),
    // In the jars, never called.
    call(Dynamodb, "BatchGetItem", CoordinatorTable, When::Never, &[ADAPTER], &[],
        "the lock client's adapter wraps every operation; KCL calls none of the batch ones"),
    call(Dynamodb, "BatchWriteItem", CoordinatorTable, When::Never, &[ADAPTER], &[],
        "the lock client's adapter wraps every operation; KCL calls none of the batch ones"),
    call(Dynamodb, "DeleteTable", CoordinatorTable, When::Never, &[ADAPTER], &[],
        "the lock client's adapter wraps every operation; KCL deletes no table"),
    call(Dynamodb, "Query", CoordinatorTable, When::Never, &[LOCK_CLIENT], &[],
        "the lock client queries only tables with a sort key; the coordinator table has none"),
];
