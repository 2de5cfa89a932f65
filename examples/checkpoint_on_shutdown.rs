//! Checkpoints ONLY when the daemon asks it to shut down: the processor of end-to-end scenario 9
//! (Ctrl-C to the process group of the daemon and its children).
//!
//! Usage: `checkpoint_on_shutdown OUT_DIR`. It writes what `file_sink` writes, with `file_sink`'s
//! writers (so `scripts/e2e/sink.py` reads both): one line per record to
//! `OUT_DIR/records-<shard>.tsv`, lifecycle events to `OUT_DIR/events.tsv`. Unlike `file_sink` it
//! never checkpoints while records flow (`CheckpointStrategy::Manual`, no checkpoint in
//! `process_records`); only its `shutdown_requested` hook checkpoints, at the last handled record.
//! So a lease checkpoint equal to the last record written proves that the process was still alive
//! and answering when the daemon's graceful shutdown (`shutdownRequested`, then `leaseLost`)
//! reached it — e.g. after a Ctrl-C that sent SIGINT to the daemon and to every child at once.

#[allow(dead_code)]
#[path = "file_sink.rs"]
mod file_sink;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use kcl::{Batch, CheckpointStrategy, Checkpointer, Initialize, RecordProcessor, Result, Runtime};

/// Appends the records of one shard to a file; checkpoints on `shutdownRequested` only.
struct CheckpointOnShutdown {
    dir: PathBuf,
    shard_id: String,
    out: Option<BufWriter<File>>,
}

impl CheckpointOnShutdown {
    fn new(dir: PathBuf) -> Self {
        CheckpointOnShutdown {
            dir,
            shard_id: String::new(),
            out: None,
        }
    }

    fn event(&self, what: &str) -> Result<()> {
        Ok(file_sink::write_event(&self.dir, &self.shard_id, what)?)
    }
}

impl RecordProcessor for CheckpointOnShutdown {
    fn initialize(&mut self, shard: &Initialize) -> Result<()> {
        self.shard_id = shard.shard_id.clone();
        std::fs::create_dir_all(&self.dir)?;
        let file = file_sink::append(&self.dir.join(format!("records-{}.tsv", self.shard_id)))?;
        self.out = Some(BufWriter::new(file));
        self.event(&format!("initialize {:?}", shard.starting_position))
    }

    /// Writes the batch out; no checkpoint (the strategy is manual).
    fn process_records(&mut self, batch: &Batch, _: &mut Checkpointer<'_>) -> Result<()> {
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| kcl::Error::msg("not initialized"))?;
        for record in batch {
            file_sink::write_record(out, batch.shard_id(), record)?;
        }
        out.flush()?;
        Ok(())
    }

    fn lease_lost(&mut self) -> Result<()> {
        self.event("leaseLost")
    }

    fn shard_ended(&mut self, checkpointer: &mut Checkpointer<'_>) -> Result<()> {
        checkpointer.checkpoint()?;
        self.event("shardEnded")
    }

    /// The only checkpoint of a lease: everything handled so far.
    fn shutdown_requested(&mut self, checkpointer: &mut Checkpointer<'_>) -> Result<()> {
        checkpointer.checkpoint_handled()?;
        self.event("shutdownRequested")
    }
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: checkpoint_on_shutdown OUT_DIR");
        return ExitCode::FAILURE;
    };
    let code = Runtime::new(CheckpointOnShutdown::new(dir.clone()))
        .checkpoint_strategy(CheckpointStrategy::Manual)
        .run_main();
    file_sink::exit_event(&dir, code == ExitCode::SUCCESS);
    code
}
