//! The command line (clap derive): the subcommands. Each subcommand's flags, help text and
//! examples live in its own module (`run/args.rs`, `properties/args.rs`, `jars/args.rs`,
//! `daemon/args.rs`, `iam/args.rs`, `native.rs`, `put.rs`, `produce.rs`; the Kinesis flags `put` and `produce`
//! share in `kinesis.rs`).

use clap::{Parser, Subcommand};

use crate::daemon::DaemonArgs;
use crate::iam::IamPolicyArgs;
use crate::jars::JarsArgs;
use crate::native::NativeArgs;
use crate::produce::ProduceArgs;
use crate::properties::PropertiesArgs;
use crate::put::PutArgs;
use crate::run::RunArgs;

/// Run, configure and launch Amazon KCL MultiLangDaemon record processors.
///
/// The Java KCL MultiLangDaemon starts one child process per shard and talks JSON lines with it.
/// `kcl run` plays that daemon locally (no AWS, no Java); the other commands set up and start the
/// real one.
#[derive(Debug, Parser)]
#[command(name = "kcl", version, propagate_version = true, max_term_width = 100)]
pub(crate) struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Play the daemon locally: feed records from a file or stdin to a processor, one child per
    /// shard, with the daemon's exact protocol rules; checkpoints persist in a local file.
    Run(RunArgs),
    /// Write a daemon properties file from flags (warning about keys the daemon silently
    /// ignores), or check an existing one with --check.
    Properties(PropertiesArgs),
    /// Download, verify or locate the pinned MultiLangDaemon jars (KCL 3.x).
    Jars(JarsArgs),
    /// Check Java and the jars, then run the real MultiLangDaemon (or print its command).
    Daemon(DaemonArgs),
    /// Print the least-privilege IAM policy of an application from its properties file.
    IamPolicy(IamPolicyArgs),
    /// Check a properties file for the native (Java-free) engine, then run the application's
    /// binary (executableName) with `native FILE`, forwarding SIGINT and SIGTERM.
    Native(NativeArgs),
    /// Put words or lines into a Kinesis stream (AWS, or a local emulator with --endpoint), in
    /// batches, printing each record's shard and sequence number.
    Put(PutArgs),
    /// Write a steady stream of generated records (or stdin's lines) into a Kinesis stream at a
    /// rate, until --count, --duration, the end of stdin or SIGTERM; report what was delivered.
    Produce(ProduceArgs),
}
