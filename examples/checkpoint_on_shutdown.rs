//! Checkpoints ONLY when the daemon asks it to shut down: the processor of end-to-end scenario 9
//! (Ctrl-C to the process group of the daemon and its children).
//!
//! Usage: `checkpoint_on_shutdown OUT_DIR`. It writes what `file_sink` writes, in the same format
//! (so `scripts/e2e/sink.py` reads both): one line per record to `OUT_DIR/records-<shard>.tsv`,
//! lifecycle events to `OUT_DIR/events.tsv`. Unlike `file_sink` it never checkpoints while
//! records flow (`CheckpointStrategy::Manual`, no checkpoint in `process_records`); only its
//! `shutdown_requested` hook checkpoints, at the last handled record. So a lease checkpoint equal to
//! the last record written proves that the process was still alive and answering when the daemon's
//! graceful shutdown (`shutdownRequested`, then `leaseLost`) reached it — e.g. after a Ctrl-C that
//! sent SIGINT to the daemon and to every child at once.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
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

    /// `epoch_ms<TAB>pid<TAB>shard<TAB>what` to `events.tsv` (the format of `file_sink`).
    fn event(&self, what: &str) -> Result<()> {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let line = format!(
            "{millis}\t{}\t{}\t{what}\n",
            std::process::id(),
            self.shard_id
        );
        append(&self.dir.join("events.tsv"))?.write_all(line.as_bytes())?;
        Ok(())
    }
}

fn append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Backslash, tab, newline and CR escaped, as `file_sink` does.
fn escape(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    for c in String::from_utf8_lossy(bytes).chars() {
        match c {
            '\\' => text.push_str("\\\\"),
            '\t' => text.push_str("\\t"),
            '\n' => text.push_str("\\n"),
            '\r' => text.push_str("\\r"),
            c => text.push(c),
        }
    }
    text
}

impl RecordProcessor for CheckpointOnShutdown {
    fn initialize(&mut self, shard: &Initialize) -> Result<()> {
        self.shard_id = shard.shard_id.clone();
        std::fs::create_dir_all(&self.dir)?;
        let file = append(&self.dir.join(format!("records-{}.tsv", self.shard_id)))?;
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
            writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}",
                batch.shard_id(),
                record.sequence_number(),
                record.sub_sequence_number(),
                escape(record.partition_key().as_bytes()),
                escape(record.data()),
            )?;
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
    // The last event: the runtime returned (stdin closed, or the channel to the daemon failed).
    let ending = CheckpointOnShutdown::new(dir);
    let _ = ending.event(if code == ExitCode::SUCCESS {
        "exit 0"
    } else {
        "exit error"
    });
    code
}
