//! The application a properties file describes, as IAM sees it (its ARNs and which calls
//! apply), and the policy built from [`CALLS`].

use std::collections::BTreeMap;

use kcl_properties::{Properties, Retrieval};
use serde::Serialize;
use serde_json::{Value, json};

use super::calls::{By, CALLS, Call, Service, Target, When};

/// The lease table's owner index (KCL 3.x), created by the first worker.
pub const OWNER_INDEX: &str = "LeaseOwnerToLeaseKeyIndex";

/// Which engine runs the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    /// Either, or both in one fleet (the union of their calls).
    Any,
    /// The Java MultiLangDaemon (`kcl daemon`).
    Java,
    /// The native engine (`kcl daemon --native`, `kcl native`).
    Native,
}

/// What the policy is for: the properties file read into names and switches.
#[derive(Clone, Debug)]
pub struct Application {
    /// `applicationName`.
    pub name: String,
    /// The stream's ARN (`streamArn`, else built from `streamName`).
    pub stream_arn: String,
    /// The fan-out consumer's ARN pattern (`consumerArn`, else `<stream>/consumer/<name>:*`).
    pub consumer_arn: String,
    /// Whether `consumerArn` is set (then no consumer is registered).
    pub consumer_given: bool,
    /// The three tables' ARNs: lease, coordinator state, worker metrics.
    pub lease_table: String,
    /// `<lease table>/index/LeaseOwnerToLeaseKeyIndex`.
    pub lease_index: String,
    /// The coordinator state table's ARN.
    pub coordinator_table: String,
    /// The worker metrics table's ARN.
    pub metrics_table: String,
    /// Polling or fan-out, by the daemon's rule.
    pub retrieval: Retrieval,
    /// Whether metrics are published (`metricsLevel` is not `NONE`).
    pub metrics: bool,
    /// The three point-in-time recovery switches: lease, coordinator, metrics.
    pub pitr: [bool; 3],
    /// Roles named by assume-role credentials providers.
    pub roles: Vec<String>,
    /// The region in the ARNs (`*` when unknown).
    pub region: String,
    /// The account in the ARNs (`*` when unknown).
    pub account: String,
}

/// What the caller adds to the properties.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The account id (else the one in `streamArn`, else `*`).
    pub account: Option<String>,
    /// The region when `regionName` is not set.
    pub region: Option<String>,
    /// Include the producer's calls.
    pub producer: bool,
    /// A customer-managed KMS key encrypting the stream.
    pub kms_key: Option<String>,
}

impl Application {
    /// Reads `props`; fails when a name the policy needs is missing or a value the daemon
    /// refuses is set.
    pub fn from_properties(props: &Properties, options: &Options) -> Result<Self, String> {
        let text = |key: &str| -> Result<Option<String>, String> {
            props
                .text(key)
                .map(|v| {
                    v.map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                })
                .map_err(|e| format!("{key}: {e}"))
        };
        let flag = |key: &str| -> Result<bool, String> {
            Ok(props
                .boolean(key)
                .map_err(|e| format!("{key}: {e}"))?
                .unwrap_or(false))
        };
        let name = text("applicationName")?.ok_or("applicationName is missing")?;
        let stream_arn_given = text("streamArn")?;
        let parts = stream_arn_given
            .as_deref()
            .map(|arn| arn.split(':').collect::<Vec<_>>());
        let from_arn = |index: usize| {
            parts
                .as_ref()
                .and_then(|p| p.get(index).map(|s| (*s).to_owned()))
                .filter(|s| !s.is_empty())
        };
        let region = text("regionName")?
            .or_else(|| options.region.clone())
            .or_else(|| from_arn(3))
            .unwrap_or_else(|| "*".to_owned());
        let account = options
            .account
            .clone()
            .or_else(|| from_arn(4))
            .unwrap_or_else(|| "*".to_owned());
        let partition = from_arn(1).unwrap_or_else(|| partition_of(&region).to_owned());
        let stream_arn = match stream_arn_given {
            Some(arn) => arn,
            None => {
                let stream = text("streamName")?.ok_or("streamName (or streamArn) is missing")?;
                format!("arn:{partition}:kinesis:{region}:{account}:stream/{stream}")
            }
        };
        let consumer_given = text("consumerArn")?;
        let consumer_arn = match &consumer_given {
            Some(arn) => arn.clone(),
            None => {
                let consumer = text("consumerName")?.unwrap_or_else(|| name.clone());
                format!("{stream_arn}/consumer/{consumer}:*")
            }
        };
        let table = |key: &str, default: String| -> Result<String, String> {
            let table = text(key)?.unwrap_or(default);
            Ok(format!(
                "arn:{partition}:dynamodb:{region}:{account}:table/{table}"
            ))
        };
        let lease_table = table("tableName", name.clone())?;
        let retrieval = kcl_properties::retrieval(props)
            .map_err(|e| format!("retrieval: {e}"))?
            .retrieval;
        let metrics = props
            .choice("metricsLevel")
            .map_err(|e| format!("metricsLevel: {e}"))?
            != Some("NONE");
        let mut roles = Vec::new();
        for entry in props.entries() {
            if entry
                .key
                .to_ascii_lowercase()
                .starts_with("awscredentialsprovider")
            {
                roles.extend(assumed_roles(&entry.value));
            }
        }
        roles.sort();
        roles.dedup();
        Ok(Application {
            lease_index: format!("{lease_table}/index/{OWNER_INDEX}"),
            coordinator_table: table(
                "coordinatorStateTableName",
                format!("{name}-CoordinatorState"),
            )?,
            metrics_table: table(
                "workerMetricsTableName",
                format!("{name}-WorkerMetricStats"),
            )?,
            lease_table,
            stream_arn,
            consumer_given: consumer_given.is_some(),
            consumer_arn,
            retrieval,
            metrics,
            pitr: [
                flag("leaseTablePitrEnabled")?,
                flag("coordinatorStatePointInTimeRecoveryEnabled")?,
                flag("workerMetricsPointInTimeRecoveryEnabled")?,
            ],
            roles,
            region,
            account,
            name,
        })
    }

    /// Whether `call` happens in this application run by `engine` (the producer's calls only
    /// with `producer`).
    pub fn makes(&self, call: &Call, engine: Engine, producer: bool) -> bool {
        let fan_out = self.retrieval == Retrieval::FanOut;
        let by = match call.by {
            By::Producer => producer,
            By::Both => true,
            By::Java => engine != Engine::Native,
        };
        let when = match call.when {
            When::Always => true,
            When::FanOut => fan_out,
            When::FanOutRegistering => fan_out && !self.consumer_given,
            When::Metrics => self.metrics,
            When::LeaseTablePitr => self.pitr[0],
            When::CoordinatorTablePitr => self.pitr[1],
            When::MetricsTablePitr => self.pitr[2],
            When::AssumeRole => !self.roles.is_empty(),
            When::Producing => producer,
            When::Never => false,
        };
        // The native engine polls only: no fan-out calls under it.
        let engine_fits = !(engine == Engine::Native && fan_out && call.by == By::Java);
        by && when && engine_fits
    }

    /// The resources of `target`.
    fn resources(&self, target: Target) -> Vec<String> {
        match target {
            Target::Stream => vec![self.stream_arn.clone()],
            Target::Consumer => vec![self.consumer_arn.clone()],
            Target::LeaseTable => vec![self.lease_table.clone()],
            Target::LeaseIndex => vec![self.lease_index.clone()],
            Target::CoordinatorTable => vec![self.coordinator_table.clone()],
            Target::MetricsTable => vec![self.metrics_table.clone()],
            Target::Metrics => vec!["*".to_owned()],
            Target::Role => self.roles.clone(),
        }
    }
}

/// The partition of a region (`aws`, `aws-cn`, `aws-us-gov`).
fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// The role ARNs of the assume-role providers in one `AwsCredentialsProvider*` value
/// (`KclStsAssumeRoleCredentialsProvider|ARN|session|…`, comma-separated providers).
fn assumed_roles(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter_map(|provider| {
            let mut words = provider.split('|').map(str::trim);
            let class = words.next()?;
            let class = class.rsplit('.').next().unwrap_or(class);
            let assumes = matches!(
                class,
                "KclStsAssumeRoleCredentialsProvider" | "StsAssumeRoleCredentialsProvider"
            );
            let arn = words.next()?;
            (assumes && arn.starts_with("arn:")).then(|| arn.to_owned())
        })
        .collect()
}

/// The statement id of a target.
fn sid(service: Service, target: Target) -> &'static str {
    match (service, target) {
        (_, Target::Stream) => "KinesisStream",
        (_, Target::Consumer) => "KinesisFanOutConsumer",
        (_, Target::LeaseTable) => "LeaseTable",
        (_, Target::LeaseIndex) => "LeaseTableOwnerIndex",
        (_, Target::CoordinatorTable) => "CoordinatorStateTable",
        (_, Target::MetricsTable) => "WorkerMetricStatsTable",
        (_, Target::Metrics) => "CloudWatchMetrics",
        (_, Target::Role) => "AssumeRole",
    }
}

/// The calls of `app` under `engine`, in the table's order, one per (service, action, target).
pub fn calls_made(app: &Application, engine: Engine, producer: bool) -> Vec<&'static Call> {
    let mut seen = Vec::new();
    let mut made: Vec<&'static Call> = Vec::new();
    for call in CALLS.iter().filter(|c| app.makes(c, engine, producer)) {
        let key = (call.service, call.action, call.target);
        if !seen.contains(&key) {
            seen.push(key);
            made.push(call);
        }
    }
    made
}

/// An IAM policy document, its keys in the order AWS shows them.
#[derive(Debug, Serialize)]
pub struct Document {
    /// Always `2012-10-17`.
    #[serde(rename = "Version")]
    pub version: &'static str,
    /// One statement per resource.
    #[serde(rename = "Statement")]
    pub statements: Vec<Statement>,
}

/// One `Allow` statement.
#[derive(Debug, Serialize)]
pub struct Statement {
    /// What it is for (`LeaseTable`).
    #[serde(rename = "Sid")]
    pub sid: &'static str,
    /// Always `Allow`.
    #[serde(rename = "Effect")]
    pub effect: &'static str,
    /// `service:Action`s.
    #[serde(rename = "Action")]
    pub actions: Vec<String>,
    /// ARNs.
    #[serde(rename = "Resource")]
    pub resources: Vec<String>,
    /// A condition, if any.
    #[serde(rename = "Condition", skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
}

/// The least-privilege policy document of `app`.
pub fn policy(app: &Application, engine: Engine, options: &Options) -> Document {
    // One statement per target, in the order targets first appear in the table.
    let mut order: Vec<(Service, Target)> = Vec::new();
    let mut actions: BTreeMap<(Service, Target), Vec<String>> = BTreeMap::new();
    for call in calls_made(app, engine, options.producer) {
        let key = (call.service, call.target);
        if !order.contains(&key) {
            order.push(key);
        }
        let action = format!("{}:{}", call.service.prefix(), call.action);
        let list = actions.entry(key).or_default();
        if !list.contains(&action) {
            list.push(action);
        }
    }
    let mut statements: Vec<Statement> = order
        .into_iter()
        .map(|(service, target)| Statement {
            sid: sid(service, target),
            effect: "Allow",
            actions: actions.remove(&(service, target)).unwrap_or_default(),
            resources: app.resources(target),
            // KCL publishes under the application's name: ConfigsBuilder.namespace() falls back
            // to applicationName, and the multilang daemon sets no other (javap, KCL 3.1.3 jars).
            condition: (target == Target::Metrics)
                .then(|| json!({ "StringEquals": { "cloudwatch:namespace": app.name } })),
        })
        .collect();
    if let Some(key) = &options.kms_key {
        let mut kms = vec!["kms:Decrypt".to_owned()];
        if options.producer {
            kms.push("kms:GenerateDataKey".to_owned());
        }
        statements.push(Statement {
            sid: "StreamEncryptionKey",
            effect: "Allow",
            actions: kms,
            resources: vec![key.clone()],
            condition: None,
        });
    }
    Document {
        version: "2012-10-17",
        statements,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(text: &str) -> Application {
        Application::from_properties(&Properties::parse(text.as_bytes()), &Options::default())
            .unwrap()
    }

    fn document(app: &Application, engine: Engine, options: &Options) -> Value {
        serde_json::to_value(super::policy(app, engine, options)).unwrap()
    }

    fn actions(policy: &Value, sid: &str) -> Vec<String> {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
            .map(|s| {
                s["Action"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    const POLLING: &str = "applicationName = orders-app\nstreamName = orders\n\
                           regionName = eu-west-1\nretrievalMode = POLLING\nmetricsLevel = NONE\n";

    #[test]
    fn polling_without_metrics_reads_the_stream_and_the_three_tables() {
        let app = app(POLLING);
        let policy = document(&app, Engine::Any, &Options::default());
        assert_eq!(
            actions(&policy, "KinesisStream"),
            [
                "kinesis:ListShards",
                "kinesis:GetShardIterator",
                "kinesis:GetRecords"
            ]
        );
        assert!(actions(&policy, "KinesisFanOutConsumer").is_empty());
        assert!(actions(&policy, "CloudWatchMetrics").is_empty());
        assert_eq!(actions(&policy, "LeaseTableOwnerIndex"), ["dynamodb:Query"]);
        let lease = actions(&policy, "LeaseTable");
        assert!(lease.contains(&"dynamodb:UpdateTable".to_owned()));
        assert!(!lease.contains(&"dynamodb:UpdateContinuousBackups".to_owned()));
        assert!(!actions(&policy, "CoordinatorStateTable").contains(&"dynamodb:Query".to_owned()));
        let text = policy.to_string();
        assert!(text.contains("arn:aws:kinesis:eu-west-1:*:stream/orders\""));
        assert!(text.contains(
            "arn:aws:dynamodb:eu-west-1:*:table/orders-app/index/LeaseOwnerToLeaseKeyIndex"
        ));
        assert!(text.contains("table/orders-app-CoordinatorState\""));
        assert!(text.contains("table/orders-app-WorkerMetricStats\""));
    }

    #[test]
    fn fan_out_adds_the_consumer_and_registration_unless_a_consumer_arn_is_given() {
        let fan_out = app("applicationName = a\nstreamName = s\nregionName = us-east-1\n");
        let policy = document(&fan_out, Engine::Any, &Options::default());
        assert_eq!(
            actions(&policy, "KinesisFanOutConsumer"),
            ["kinesis:DescribeStreamConsumer", "kinesis:SubscribeToShard"]
        );
        assert!(
            actions(&policy, "KinesisStream")
                .contains(&"kinesis:RegisterStreamConsumer".to_owned())
        );
        assert!(policy.to_string().contains("stream/s/consumer/a:*"));
        assert!(
            !actions(&policy, "CloudWatchMetrics").is_empty(),
            "metrics are on by default"
        );
        let given = app(
            "applicationName = a\nstreamName = s\nregionName = us-east-1\n\
                         consumerArn = arn:aws:kinesis:us-east-1:1:stream/s/consumer/c:1\n",
        );
        let policy = document(&given, Engine::Any, &Options::default());
        assert!(
            !actions(&policy, "KinesisStream")
                .contains(&"kinesis:RegisterStreamConsumer".to_owned())
        );
        assert!(policy.to_string().contains("consumer/c:1"));
        // The native engine polls only.
        let native = document(&fan_out, Engine::Native, &Options::default());
        assert!(actions(&native, "KinesisFanOutConsumer").is_empty());
    }

    #[test]
    fn names_come_from_the_properties_and_the_stream_arn() {
        let app = app(
            "applicationName = a\nstreamArn = arn:aws-cn:kinesis:cn-north-1:123456789012:stream/s\n\
                       tableName = leases\ncoordinatorStateTableName = coord\nworkerMetricsTableName = wm\n\
                       retrievalMode = POLLING\nleaseTablePitrEnabled = true\n\
                       AwsCredentialsProvider = KclStsAssumeRoleCredentialsProvider|arn:aws-cn:iam::123456789012:role/r|s\n",
        );
        assert_eq!(
            app.lease_table,
            "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/leases"
        );
        assert!(app.coordinator_table.ends_with(":table/coord"));
        assert!(app.metrics_table.ends_with(":table/wm"));
        let policy = document(&app, Engine::Java, &Options::default());
        assert!(
            actions(&policy, "LeaseTable").contains(&"dynamodb:UpdateContinuousBackups".to_owned())
        );
        assert_eq!(actions(&policy, "AssumeRole"), ["sts:AssumeRole"]);
        assert!(
            policy
                .to_string()
                .contains("arn:aws-cn:iam::123456789012:role/r")
        );
        let metrics = &policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == "CloudWatchMetrics")
            .unwrap()["Condition"];
        assert_eq!(metrics["StringEquals"]["cloudwatch:namespace"], "a");
    }

    #[test]
    fn the_producer_and_a_kms_key_add_their_own() {
        let app = app(POLLING);
        let options = Options {
            producer: true,
            kms_key: Some("arn:aws:kms:eu-west-1:1:key/k".into()),
            ..Options::default()
        };
        let policy = document(&app, Engine::Any, &options);
        let stream = actions(&policy, "KinesisStream");
        assert!(stream.contains(&"kinesis:PutRecords".to_owned()));
        assert_eq!(
            stream.iter().filter(|a| *a == "kinesis:ListShards").count(),
            1
        );
        assert_eq!(
            actions(&policy, "StreamEncryptionKey"),
            ["kms:Decrypt", "kms:GenerateDataKey"]
        );
    }

    #[test]
    fn missing_names_are_errors() {
        let err = Application::from_properties(
            &Properties::parse(b"streamName = s\n"),
            &Options::default(),
        )
        .unwrap_err();
        assert!(err.contains("applicationName"), "{err}");
        let err = Application::from_properties(
            &Properties::parse(b"applicationName = a\n"),
            &Options::default(),
        )
        .unwrap_err();
        assert!(err.contains("streamName"), "{err}");
    }
}
