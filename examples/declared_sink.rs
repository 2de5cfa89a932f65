//! The sink of `file_sink`, written with the declared API only: a per-record handler, the
//! runtime's checkpoint strategy and failure policy, and the default `shutdown_requested` and
//! `shard_ended` hooks. It never checkpoints by hand. The end-to-end suite runs it next to
//! `file_sink` (scenarios 1d, 2d, 4d, 5d).
//!
//! Usage: `declared_sink OUT_DIR [skip|stop]` (default `skip`). It writes, with `file_sink`'s
//! writers (so `scripts/e2e/sink.py` reads both):
//! - each record its handler finished to `OUT_DIR/records-<shard>.tsv`, one line per record
//!   (shard, sequence number, sub-sequence number, partition key, payload), written before the
//!   handler returns, so before the runtime may checkpoint it;
//! - each record its `on_failure` hook receives (the `skip` policy's dead letters) to
//!   `OUT_DIR/dead-letters-<shard>.tsv`, in the same format plus two fields: the attempts made
//!   (they count per batch: see `kcl::FailurePolicy`) and the last error;
//! - `initialize`, `leaseLost` and `exit 0`/`exit error` events to `OUT_DIR/events.tsv`
//!   (`shutdownRequested` and `shardEnded` are left to the SDK's default hooks, which write
//!   nothing: they only checkpoint).
//!
//! Chosen payloads fail: one starting with `poison-` fails on every attempt (under `skip` it is
//! dead-lettered after 3 attempts and the shard goes on; under `stop` the shard stalls); one
//! starting with `flaky-` fails on its first attempt in this process only, so the retry handles it.
//! The runtime checkpoints every 50 handled records, only up to the last record the handler
//! finished or the `on_failure` hook took.

#[allow(dead_code)]
#[path = "file_sink.rs"]
mod file_sink;

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use kcl::{CheckpointStrategy, FailurePolicy, Initialize, Record, Runtime, ShardId};

/// Writes the records of one shard that it handled, and those it could not.
struct DeclaredSink {
    dir: PathBuf,
    shard_id: String,
    records: Option<File>,
    /// `flaky-` records (by position) that already failed once.
    failed_once: HashSet<String>,
}

impl DeclaredSink {
    fn new(dir: PathBuf) -> Self {
        DeclaredSink {
            dir,
            shard_id: String::new(),
            records: None,
            failed_once: HashSet::new(),
        }
    }
}

#[kcl::processor]
impl DeclaredSink {
    #[kcl::on_initialize]
    fn ready(&mut self, shard: &Initialize) -> kcl::Result<()> {
        self.shard_id = shard.shard_id.clone();
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!("records-{}.tsv", self.shard_id));
        self.records = Some(file_sink::append(&path)?);
        let what = format!("initialize {:?}", shard.starting_position);
        Ok(file_sink::write_event(&self.dir, &self.shard_id, &what)?)
    }

    /// Once per record. The line goes out in one write, unbuffered: once this returns `Ok`
    /// the record is in the file, whatever happens to the process next.
    #[kcl::on_records]
    fn store(&mut self, record: Record, shard: ShardId) -> kcl::Result<()> {
        let data = record.data();
        if data.starts_with(b"poison-") {
            return Err(kcl::Error::msg("a poison record fails on every attempt"));
        }
        if data.starts_with(b"flaky-") && self.failed_once.insert(record.position().to_string()) {
            return Err(kcl::Error::msg("a flaky record fails on its first attempt"));
        }
        let mut line = Vec::with_capacity(96 + data.len());
        file_sink::write_record(&mut line, shard.as_str(), &record)?;
        let out = self
            .records
            .as_mut()
            .ok_or_else(|| kcl::Error::msg("not initialized"))?;
        out.write_all(&line)?;
        Ok(())
    }

    /// The dead letters of the `skip` policy, written before the records count as handled.
    #[kcl::on_failure]
    fn dead_letter(&mut self, failure: &kcl::Failure<'_>) -> kcl::Result<()> {
        let error = file_sink::escape(failure.error.to_string().as_bytes());
        let mut lines = Vec::new();
        for record in failure.records {
            file_sink::write_record(&mut lines, failure.shard_id, record)?;
            lines.pop(); // the newline: attempts and error follow
            writeln!(lines, "\t{}\t{error}", failure.attempts)?;
        }
        let path = self
            .dir
            .join(format!("dead-letters-{}.tsv", failure.shard_id));
        file_sink::append(&path)?.write_all(&lines)?;
        Ok(())
    }

    #[kcl::on_lease_lost]
    fn lost(&mut self) -> kcl::Result<()> {
        Ok(file_sink::write_event(
            &self.dir,
            &self.shard_id,
            "leaseLost",
        )?)
    }
}

fn main() -> ExitCode {
    const USAGE: &str = "usage: declared_sink OUT_DIR [skip|stop]";
    let mut args = std::env::args().skip(1);
    let (Some(dir), policy) = (args.next().map(PathBuf::from), args.next()) else {
        eprintln!("{USAGE}");
        return ExitCode::FAILURE;
    };
    let policy = match policy.as_deref() {
        None | Some("skip") => FailurePolicy::skip(),
        Some("stop") => FailurePolicy::stop(),
        Some(other) => {
            eprintln!("unknown failure policy {other:?}; {USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let code = Runtime::new(DeclaredSink::new(dir.clone()))
        .checkpoint_strategy(CheckpointStrategy::every_records(50))
        .failure_policy(policy)
        .run_main();
    file_sink::exit_event(&dir, code == ExitCode::SUCCESS);
    code
}
