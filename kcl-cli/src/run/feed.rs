//! The input thread that feeds the shards ([`Feeder`]) and the thread that redraws the progress
//! line on a terminal ([`Ticker`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::console::{Console, Totals};
use super::input::{InputReader, sequence_number, shard_index};
use super::shard::{ShardRecord, now_millis};
use crate::error::{Error, Result};

/// The input thread: reads records and sends each to its shard's channel, until the input
/// ends, `stop` is set, or no shard takes records any more.
pub(super) struct Feeder {
    done: mpsc::Receiver<Result<()>>,
    read: Arc<AtomicU64>,
    undelivered: Arc<Vec<AtomicU64>>,
}

/// What the input thread did.
pub(super) struct Fed {
    /// Records read from the input.
    pub(super) read: u64,
    /// Records per shard that could not be handed to it (its child had stopped).
    pub(super) undelivered: Vec<u64>,
    /// The error that stopped the reading, if any.
    pub(super) error: Option<String>,
}

impl Feeder {
    /// Starts the thread; `senders` has one channel per shard, in shard order.
    pub(super) fn start(
        input: InputReader,
        senders: Vec<mpsc::SyncSender<ShardRecord>>,
        stop: Arc<AtomicBool>,
    ) -> Result<Feeder> {
        let shards = senders.len() as u32;
        let undelivered: Arc<Vec<AtomicU64>> =
            Arc::new((0..shards).map(|_| AtomicU64::new(0)).collect());
        let read = Arc::new(AtomicU64::new(0));
        let (done_tx, done) = mpsc::channel();
        {
            let undelivered = undelivered.clone();
            let read = read.clone();
            thread::Builder::new()
                .name("input".into())
                .spawn(move || {
                    let result = feed(input, senders, shards, &undelivered, &read, &stop);
                    let _ = done_tx.send(result);
                })
                .map_err(|e| Error::io("cannot start a thread", e))?;
        }
        Ok(Feeder {
            done,
            read,
            undelivered,
        })
    }

    /// What was fed, once every shard is done. The thread may still wait for a line of a slow
    /// (or interrupted) stdin that no shard would take any more: this does not wait for it
    /// long.
    pub(super) fn finish(self) -> Fed {
        let error = match self.done.recv_timeout(Duration::from_secs(2)) {
            Ok(Err(error)) => Some(error.to_string()),
            _ => None,
        };
        Fed {
            read: self.read.load(Ordering::Relaxed),
            undelivered: self
                .undelivered
                .iter()
                .map(|n| n.load(Ordering::Relaxed))
                .collect(),
            error,
        }
    }
}

/// Reads the input and hands each record to its shard.
fn feed(
    mut input: InputReader,
    senders: Vec<mpsc::SyncSender<ShardRecord>>,
    shards: u32,
    undelivered: &[AtomicU64],
    read: &AtomicU64,
    stop: &AtomicBool,
) -> Result<()> {
    let mut alive = vec![true; senders.len()];
    let mut index = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Some(record) = input.next_record()? else {
            break;
        };
        read.fetch_add(1, Ordering::Relaxed);
        let shard = shard_index(&record.partition_key, record.explicit_hash_key, shards) as usize;
        let item = ShardRecord {
            sequence_number: sequence_number(index),
            data: record.data,
            partition_key: record.partition_key,
            arrival: record.arrival.unwrap_or_else(now_millis),
        };
        index += 1;
        if !alive[shard] || senders[shard].send(item).is_err() {
            alive[shard] = false;
            undelivered[shard].fetch_add(1, Ordering::Relaxed);
            if !alive.contains(&true) {
                break;
            }
        }
    }
    Ok(())
}

/// Redraws the progress line every 250 ms while stderr is a live terminal.
pub(super) struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Ticker {
    /// Starts the thread if the console shows live progress.
    pub(super) fn start(console: &Arc<Console>, totals: &Arc<Totals>) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        if console.live() {
            let console = console.clone();
            let totals = totals.clone();
            let stop = stop.clone();
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    thread::sleep(Duration::from_millis(250));
                    console.tick(&totals);
                }
            });
        }
        Ticker { stop }
    }

    /// Stops the thread (it ends within 250 ms, without another tick after the next sleep).
    pub(super) fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
