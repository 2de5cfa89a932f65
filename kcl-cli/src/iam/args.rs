//! The flags of `kcl iam-policy`.

use std::path::PathBuf;

use clap::Args;

use super::policy::Engine;

/// Shown at the end of `--help`.
const EXAMPLES: &str = "\
Examples:
  kcl iam-policy --properties app.properties --account 123456789012 > policy.json
  kcl iam-policy --properties app.properties --explain
  kcl iam-policy --properties app.properties --engine native --producer
  kcl iam-policy --list-calls

The policy allows exactly the calls the application makes with this file: Kinesis reads (and
enhanced fan-out when the file selects it), the lease table and its LeaseOwnerToLeaseKeyIndex,
the <app>-CoordinatorState and <app>-WorkerMetricStats tables, CloudWatch PutMetricData unless
metricsLevel = NONE (limited to the application's namespace), sts:AssumeRole for an assume-role
credentials provider, point-in-time recovery when the file turns it on. Each action comes from
one table of the calls the Java daemon's jars and kcl's own code make (--list-calls shows it,
with the classes and source files that make each call).";

/// `kcl iam-policy`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct IamPolicyArgs {
    /// The application's properties file.
    #[arg(
        long,
        short,
        value_name = "FILE",
        required_unless_present = "list_calls"
    )]
    pub properties: Option<PathBuf>,

    /// The AWS account id in the ARNs [default: the one in streamArn, else any (*)].
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,

    /// The region in the ARNs when the file has no regionName [default: any (*)].
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// Which engine runs the application: any (either, or both in one fleet), java (`kcl
    /// daemon`) or native (`kcl daemon --native`, which polls only).
    #[arg(long, value_enum, default_value = "any")]
    pub engine: Engine,

    /// Also allow writing to the stream (`kcl put`, `kcl produce`, the kcl-producer crate).
    #[arg(long)]
    pub producer: bool,

    /// The customer-managed KMS key that encrypts the stream: allows kms:Decrypt (and
    /// kms:GenerateDataKey with --producer).
    #[arg(long, value_name = "ARN")]
    pub kms_key: Option<String>,

    /// Print each action with what it acts on and why, instead of the policy.
    #[arg(long)]
    pub explain: bool,

    /// Print the whole table of calls the policy is built from (JSON), and nothing else.
    #[arg(long, conflicts_with_all = ["properties", "explain"])]
    pub list_calls: bool,

    /// Write the policy to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}
