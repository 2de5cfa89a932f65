//! `kcl run`: play the MultiLangDaemon locally.
//!
//! The flags are checked into a plan (`args`). Records come from a file or stdin (`input`),
//! go to shards by the hash of their partition key (`feed`), and each shard's child is driven
//! with the daemon's exact protocol rules (`shard`); checkpoints persist in a JSON file
//! (`store`) so that the next run resumes after them; a table sums up what happened
//! (`summary`).

mod args;
mod console;
mod feed;
mod input;
// `shard.rs` is being rebuilt over the shared lease rules; its items keep their `pub` until then.
#[allow(unreachable_pub)]
mod shard;
mod store;
mod summary;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

pub(crate) use args::{EndAction, InputFormat, Progress, RunArgs};
pub use input::{record_index, sequence_number, shard_id, shard_index};

use input::InputReader;
use shard::ShardReport;
use store::CheckpointStore;

use crate::error::{Error, Result};
use console::{Console, Totals};
use feed::{Feeder, Ticker};
use shard::{Settings, ShardDriver, ShardRecord};
use summary::Summary;

/// Runs `kcl run`.
pub(crate) fn command(args: RunArgs) -> Result<()> {
    let plan = args.plan()?;
    let input = InputReader::new(
        input::open(&plan.input)?,
        plan.format,
        plan.partition_key,
        plan.record_size,
    );
    let store = Arc::new(CheckpointStore::open(
        &plan.checkpoints,
        plan.shards,
        plan.fresh,
    )?);
    let console = Arc::new(Console::new(plan.progress, plan.progress_every));
    let totals = Arc::new(Totals::default());
    let stop = Arc::new(AtomicBool::new(false));
    install_signal_handlers(&stop);

    let started = Instant::now();
    let Shards { senders, threads } = Shards::start(
        plan.shards,
        Arc::new(plan.settings),
        &store,
        &console,
        &totals,
        &stop,
    )?;
    let feeder = Feeder::start(input, senders, stop.clone())?;
    let ticker = Ticker::start(&console, &totals);
    let reports: Vec<ShardReport> = threads
        .into_iter()
        .map(|thread| thread.join().expect("shard threads do not panic"))
        .collect();
    ticker.stop();
    console.clear();
    let fed = feeder.finish();
    let summary = Summary {
        shards: &reports,
        read: fed.read,
        undelivered: &fed.undelivered,
        elapsed: started.elapsed(),
        checkpoint_file: store.path().display().to_string(),
        input_error: fed.error,
    };
    crate::fsutil::print_stdout(&summary.render());
    summary.outcome(stop.load(Ordering::Relaxed))
}

/// The shard threads and the channels that feed them, in shard order.
struct Shards {
    senders: Vec<mpsc::SyncSender<ShardRecord>>,
    threads: Vec<JoinHandle<ShardReport>>,
}

impl Shards {
    /// Starts one thread per shard, each driving its child from the records of its channel.
    fn start(
        shards: u32,
        settings: Arc<Settings>,
        store: &Arc<CheckpointStore>,
        console: &Arc<Console>,
        totals: &Arc<Totals>,
        stop: &Arc<AtomicBool>,
    ) -> Result<Shards> {
        let mut senders = Vec::new();
        let mut threads = Vec::new();
        for index in 0..shards {
            let (tx, rx) = mpsc::sync_channel::<ShardRecord>(settings.batch_size.clamp(16, 4096));
            senders.push(tx);
            let driver = ShardDriver::new(
                index,
                settings.clone(),
                store.clone(),
                console.clone(),
                totals.clone(),
                stop.clone(),
            );
            threads.push(
                std::thread::Builder::new()
                    .name(format!("shard-{index}"))
                    .spawn(move || driver.run(rx))
                    .map_err(|e| Error::io("cannot start a thread", e))?,
            );
        }
        Ok(Shards { senders, threads })
    }
}

/// SIGINT/SIGTERM: stop feeding and end every shard like a daemon shutdown; a second one exits.
fn install_signal_handlers(stop: &Arc<AtomicBool>) {
    #[cfg(unix)]
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register_conditional_shutdown(signal, 130, stop.clone());
        let _ = signal_hook::flag::register(signal, stop.clone());
    }
    #[cfg(not(unix))]
    let _ = stop;
}
