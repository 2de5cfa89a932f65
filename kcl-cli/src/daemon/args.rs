//! The flags of `kcl daemon`.

use std::path::PathBuf;

use clap::Args;

use crate::jars::JarSet;

/// Shown at the end of `--help`.
const EXAMPLES: &str = "\
Examples:
  kcl jars fetch && kcl daemon --properties app.properties
  kcl daemon --properties app.properties --jars venv/lib/python3.11/site-packages/amazon_kclpy/jars
  kcl daemon --properties app.properties --print-command
  kcl daemon --native --properties app.properties

--native runs the MultiLangDaemon without Java: the same properties file, one child per lease
(executableName, in any language: amazon_kclpy, aws-kcl, kcl), the same lease table (a Java
daemon resumes where it stopped, and the reverse). SIGINT or SIGTERM stops it gracefully
(shutdownRequested to every child, then the leases released); a second signal stops at once.
It exits 1 when a child fails (exits, or answers with a wrong status), as the Java daemon does.

Before it starts anything, kcl finds the credentials of Kinesis, DynamoDB and CloudWatch as the
AWS SDK would (AwsCredentialsProvider*, read with the daemon's grammar; the SDK's chain:
environment variables, profile, web identity token file, ECS/container endpoint, EC2 instance
metadata) and prints one line per service, e.g.
  kcl daemon: credentials for Kinesis: environment variables (AKIA…, does not expire)
An endpoint on this machine gets dummy credentials (nothing is looked up). None found for
Kinesis or DynamoDB: exit 125, with what was tried, within seconds (at most 10 s).
--no-credentials-check skips the check; --print-command does not run it.

Exit codes:
  125    kcl did not start the daemon (bad properties, no credentials, unverified jars, no usable
         Java, ...)
  2      the command line is wrong (an unknown flag, a missing value)
  other  the daemon's own exit code (128 + N if signal N ended it); with --native: 0 after a
         graceful stop, 1 when the run failed (a child failed, the tables or stream unusable)";

/// `kcl daemon`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct DaemonArgs {
    /// The daemon's properties file.
    #[arg(long, short, value_name = "FILE")]
    pub properties: PathBuf,

    /// Run the daemon without Java, on kcl's native engine (same file, same children, same
    /// lease table).
    #[arg(long, conflicts_with_all = ["jars", "java", "log_configuration", "classpath", "java_opt", "print_command", "no_verify"])]
    pub native: bool,

    /// Jar list and folder (`--jars` is the folder).
    #[command(flatten)]
    pub set: JarSet,

    /// The jar folder (same as --dir).
    #[arg(long, value_name = "DIR")]
    pub jars: Option<PathBuf>,

    /// The java executable [default: $JAVA_HOME/bin/java, else java on PATH].
    #[arg(long, value_name = "PATH")]
    pub java: Option<PathBuf>,

    /// A logback configuration file for the daemon [default: the one kcl ships, written to the
    /// jar folder as kcl-logback.xml: the daemon's own, without the ERROR-level copy of every
    /// stderr line of a child].
    #[arg(long, value_name = "FILE")]
    pub log_configuration: Option<PathBuf>,

    /// Extra classpath entries, before the jars (repeatable).
    #[arg(long, short = 'c', value_name = "PATH")]
    pub classpath: Vec<PathBuf>,

    /// A JVM option, e.g. -Xmx256m (repeatable).
    #[arg(long, value_name = "OPTION", allow_hyphen_values = true)]
    pub java_opt: Vec<String>,

    /// Print the command (shell-quoted) instead of running it. No credentials are needed: the
    /// credentials check is skipped.
    #[arg(long)]
    pub print_command: bool,

    /// Do not check the credentials before starting (for a JVM that has its own, e.g. system
    /// properties through --java-opt, or a machine that cannot reach the sources). With
    /// --native the engine still needs credentials, and fails at start without them.
    #[arg(long)]
    pub no_credentials_check: bool,

    /// Only check that the jars are present, not their SHA-256.
    #[arg(long)]
    pub no_verify: bool,
}
