//! Appends every record to a file per shard, then checkpoints: a minimal sink that loses nothing.
//!
//! Usage: `file_sink OUT_DIR` (or `KCL_SINK_DIR=OUT_DIR file_sink`). For each shard it appends to
//! `OUT_DIR/records-<shard>.tsv` one line per record — shard, sequence number, sub-sequence number,
//! partition key, payload (tabs, newlines and backslashes escaped) — and writes each batch out
//! before checkpointing at its last record, so a crash at any point redelivers, never skips.
//! Lifecycle events (`initialize`, `leaseLost`, `shardEnded`, `shutdownRequested`) go to
//! `OUT_DIR/events.tsv` with the process id. The end-to-end suite reads both files.
//!
//! `KCL_SINK_CHECKPOINT_LAG=N` (N > 0, end-to-end migration scenario): each batch is checkpointed
//! at its N-th record from the end instead of its last (none if the batch is shorter), the
//! runtime's own every-batch checkpoint is off ([`runtime`]), and `shutdownRequested` does not
//! checkpoint, so the stored checkpoint lies N records before the
//! last one handled, e.g. inside a KPL aggregate: the next worker must resume right after it.
//!
//! `KCL_SINK_SHUTDOWN_DELAY_MS=N` (end-to-end handoff-timeout scenario): `shutdownRequested`
//! writes the event `shutdownRequested slow Nms` first, then waits N ms, then checkpoints at
//! the last record handled and writes `shutdownCheckpoint stored` or `shutdownCheckpoint
//! refused <error>` (a graceful handoff forced through meanwhile must refuse it).
//!
//! The other sinks of the end-to-end suite (`declared_sink`, `checkpoint_on_shutdown`) include
//! this file (`#[path = "file_sink.rs"] mod file_sink;`) for its writers: [`write_record`],
//! [`write_event`], [`append`], so all of them write the same format.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use kcl::{Batch, Checkpointer, Initialize, Record, RecordProcessor, Result};

/// Writes records of one shard to a file.
pub struct FileSink {
    dir: PathBuf,
    shard_id: String,
    out: Option<BufWriter<File>>,
    lag: usize,
}

impl FileSink {
    /// A sink writing under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileSink {
            dir: dir.into(),
            shard_id: String::new(),
            out: None,
            lag: checkpoint_lag(),
        }
    }

    fn event(&self, what: &str) -> Result<()> {
        Ok(write_event(&self.dir, &self.shard_id, what)?)
    }
}

/// Appends `epoch_ms<TAB>pid<TAB>shard<TAB>what` to `dir/events.tsv`.
pub fn write_event(dir: &Path, shard_id: &str, what: &str) -> std::io::Result<()> {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let line = format!("{millis}\t{}\t{shard_id}\t{what}\n", std::process::id());
    append(&dir.join("events.tsv"))?.write_all(line.as_bytes())
}

/// `KCL_SINK_CHECKPOINT_LAG` (0 when unset or not a number).
pub fn checkpoint_lag() -> usize {
    std::env::var("KCL_SINK_CHECKPOINT_LAG")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// `KCL_SINK_SHUTDOWN_DELAY_MS` (0 when unset or not a number): how long `shutdownRequested`
/// waits before its checkpoint.
pub fn shutdown_delay() -> std::time::Duration {
    std::time::Duration::from_millis(
        std::env::var("KCL_SINK_SHUTDOWN_DELAY_MS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
    )
}

/// The runtime of a sink writing under `dir`: every batch checkpointed (by the processor and by
/// the runtime's default strategy), or with `KCL_SINK_CHECKPOINT_LAG` only where the processor
/// checkpoints (manual strategy).
pub fn runtime(dir: &Path) -> kcl::Runtime<FileSink> {
    let runtime = kcl::Runtime::new(FileSink::new(dir));
    if checkpoint_lag() > 0 {
        runtime.checkpoint_strategy(kcl::CheckpointStrategy::Manual)
    } else {
        runtime
    }
}

/// Opens `path` for appending, creating it if needed.
pub fn append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Writes the sink line of one record: shard, sequence number, sub-sequence number, partition
/// key, payload, separated by tabs, ending with a newline.
pub fn write_record(out: &mut impl Write, shard_id: &str, record: &Record) -> std::io::Result<()> {
    writeln!(
        out,
        "{shard_id}\t{}\t{}\t{}\t{}",
        record.sequence_number(),
        record.sub_sequence_number(),
        escape(record.partition_key().as_bytes()),
        escape(record.data()),
    )
}

/// Backslash, tab, newline and CR escaped (invalid UTF-8 replaced).
pub fn escape(bytes: &[u8]) -> String {
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

/// The output folder: the first argument, else `KCL_SINK_DIR`.
pub fn out_dir(usage: &str) -> std::io::Result<PathBuf> {
    std::env::args_os()
        .nth(1)
        .or_else(|| std::env::var_os("KCL_SINK_DIR"))
        .map(PathBuf::from)
        .ok_or_else(|| std::io::Error::other(format!("usage: {usage}")))
}

/// The last event of a process, after the runtime returned (stdin closed, or the channel to the
/// daemon failed): `exit 0` or `exit error`.
pub fn exit_event(dir: &Path, ok: bool) {
    let _ = write_event(dir, "", if ok { "exit 0" } else { "exit error" });
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
            write_record(out, batch.shard_id(), record)?;
        }
        out.flush()?; // written before the checkpoint: a crash after it cannot lose the batch
        let records = batch.records();
        let at = records.len().checked_sub(1 + self.lag).map(|i| &records[i]);
        if let Some(last) = at {
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
        let delay = shutdown_delay();
        if !delay.is_zero() {
            // Slow on purpose (end-to-end handoff-timeout scenario): the event first, then the
            // wait, then the checkpoint, whose outcome is an event of its own (refused once the
            // lease was transferred meanwhile).
            self.event(&format!("shutdownRequested slow {}ms", delay.as_millis()))?;
            std::thread::sleep(delay);
            let outcome = match checkpointer.checkpoint_handled() {
                Ok(()) => "stored".to_owned(),
                Err(error) => format!("refused {error}").replace(['\t', '\n'], " "),
            };
            return self.event(&format!("shutdownCheckpoint {outcome}"));
        }
        if self.lag == 0 {
            checkpointer.checkpoint_handled()?;
        }
        self.event("shutdownRequested")
    }
}

#[allow(dead_code)]
fn main() -> std::io::Result<()> {
    let dir = out_dir("file_sink OUT_DIR (or set KCL_SINK_DIR)")?;
    let result = runtime(&dir).run();
    exit_event(&dir, result.is_ok());
    result
}
