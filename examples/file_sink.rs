//! Appends every record to a file per shard, then checkpoints: a minimal sink that loses nothing.
//!
//! Usage: `file_sink OUT_DIR` (or `KCL_SINK_DIR=OUT_DIR file_sink`). For each shard it appends to
//! `OUT_DIR/records-<shard>.tsv` one line per record — shard, sequence number, sub-sequence number,
//! partition key, payload (tabs, newlines and backslashes escaped) — and writes each batch out
//! before checkpointing at its last record, so a crash at any point redelivers, never skips.
//! Lifecycle events (`initialize`, `leaseLost`, `shardEnded`, `shutdownRequested`) go to
//! `OUT_DIR/events.tsv` with the process id. The end-to-end suite reads both files.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use kcl::{Batch, Checkpointer, Initialize, RecordProcessor, Result};

/// Writes records of one shard to a file.
pub struct FileSink {
    dir: PathBuf,
    shard_id: String,
    out: Option<BufWriter<File>>,
}

impl FileSink {
    /// A sink writing under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileSink {
            dir: dir.into(),
            shard_id: String::new(),
            out: None,
        }
    }

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

impl RecordProcessor for FileSink {
    fn initialize(&mut self, shard: &Initialize) -> Result<()> {
        self.shard_id = shard.shard_id.clone();
        std::fs::create_dir_all(&self.dir)?;
        let file = append(&self.dir.join(format!("records-{}.tsv", self.shard_id)))?;
        self.out = Some(BufWriter::new(file));
        self.event(&format!("initialize {:?}", shard.starting_position))
    }

    fn process_records(
        &mut self,
        batch: &Batch,
        checkpointer: &mut Checkpointer<'_>,
    ) -> Result<()> {
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
        out.flush()?; // written before the checkpoint: a crash after it cannot lose the batch
        if let Some(last) = batch.last() {
            if let Err(error) = checkpointer.checkpoint_at(last) {
                tracing::warn!("checkpoint at {} failed: {error}", last.position());
            }
        }
        Ok(())
    }

    fn lease_lost(&mut self) -> Result<()> {
        self.event("leaseLost")
    }

    fn shard_ended(&mut self, checkpointer: &mut Checkpointer<'_>) -> Result<()> {
        checkpointer.checkpoint()?;
        self.event("shardEnded")
    }

    fn shutdown_requested(&mut self, checkpointer: &mut Checkpointer<'_>) -> Result<()> {
        checkpointer.checkpoint_handled()?;
        self.event("shutdownRequested")
    }
}

#[allow(dead_code)]
fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .or_else(|| std::env::var_os("KCL_SINK_DIR"))
        .map(PathBuf::from)
        .ok_or_else(|| std::io::Error::other("usage: file_sink OUT_DIR (or set KCL_SINK_DIR)"))?;
    let result = kcl::run(FileSink::new(&dir));
    // The last event: the runtime returned because stdin closed (or the channel failed).
    let ending = FileSink {
        dir,
        shard_id: String::new(),
        out: None,
    };
    let _ = ending.event(if result.is_ok() {
        "exit 0"
    } else {
        "exit error"
    });
    result
}
