//! The `kcl` command-line tool for Amazon KCL MultiLangDaemon record processors.
//!
//! * `kcl run` plays the daemon locally with its exact protocol rules ([`run`]);
//! * `kcl properties` writes or checks a daemon properties file (`properties`);
//! * `kcl jars` fetches and verifies the daemon's pinned jars ([`jars`]);
//! * `kcl daemon` checks Java and the jars and starts the real daemon (`daemon`);
//! * `kcl iam-policy` prints an application's least-privilege IAM policy ([`iam`]);
//! * `kcl native` checks a properties file for the native engine and runs the application's
//!   binary on it (`native`);
//! * `kcl put` puts words into a stream (`put`);
//! * `kcl produce` writes a steady stream of generated records, or of stdin's lines, into a
//!   stream (`produce`);
//!
//! both through the batching producer of `kcl-producer`, with the flags and the client they
//! share in `kinesis`.
//!
//! The binary is a thin [`main`] over these modules. The library is not an API: it exists for
//! `main.rs` and the integration tests, so it is hidden from the docs and makes public only
//! [`main`], [`Error`], and the few `run` and `jars` functions the tests compare the binary's
//! output with (sequence numbers, shard ids and indices, the pinned jar list, SHA-256).

#![doc(hidden)]
#![warn(unreachable_pub)]

mod cli;
mod daemon;
mod error;
mod fsutil;
mod host;
pub mod iam;
pub mod jars;
mod kinesis;
mod native;
mod produce;
mod properties;
mod put;
pub mod run;

use std::process::ExitCode;

use clap::Parser;

pub use error::{Error, Result};

/// Parses the command line, runs the command, prints `error: ...` (and a hint) on failure.
pub fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Run(args) => run::command(args).map(|()| ExitCode::SUCCESS),
        cli::Command::Properties(args) => properties::command(args).map(|()| ExitCode::SUCCESS),
        cli::Command::Jars(args) => jars::command(args).map(|()| ExitCode::SUCCESS),
        cli::Command::Daemon(args) => daemon::command(args),
        cli::Command::IamPolicy(args) => iam::command(args).map(|()| ExitCode::SUCCESS),
        cli::Command::Native(args) => native::command(args),
        cli::Command::Put(args) => put::command(args).map(|()| ExitCode::SUCCESS),
        cli::Command::Produce(args) => produce::command(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            if let Some(hint) = error.hint() {
                eprintln!("  hint: {hint}");
            }
            ExitCode::from(error.exit_code())
        }
    }
}
