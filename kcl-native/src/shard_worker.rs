//! The shard worker: one per held lease, the native counterpart of the MultiLangDaemon's
//! `ShardConsumer` and child process. It drives the user's processor (on its own OS thread,
//! `thread`) through the lease's life in the order the daemon would:
//!
//! 1. **Parents** (`parents`): while a parent lease is not at `SHARD_END`, wait, looking again
//!    every `parentShardPollIntervalMillis` (Java's `BlockOnParentShardTask`). A lease lost or
//!    handed over meanwhile ends the worker before any processor is built (Java skips the
//!    processor too).
//! 2. **Initialize** with the lease's checkpoint, as the daemon's `initialize` carries it.
//! 3. **Records**: a fetcher task reads the shard with [`ShardFetcher`] from the checkpoint and
//!    sends its batches over a bounded channel (a few batches of prefetch: a slow processor
//!    holds the reads back); each batch goes through [`LeaseDriver::deliver`] as
//!    `Event::Records`. Empty batches are skipped unless
//!    `callProcessRecordsEvenForEmptyRecordList`.
//! 4. The lease's end, whichever comes first:
//!    - **lease lost** (taken, expired, evicted): `leaseLost`, reading stops;
//!    - **graceful handoff** (a leader moved the lease): `shutdownRequested` (the processor may
//!      checkpoint), then the transfer ([`LeaseHandle::handoff_done`]), then `leaseLost`, as
//!      the daemon's child sees it;
//!    - **worker shutdown**: `shutdownRequested`; the supervisor evicts the lease afterwards
//!      and delivers `leaseLost`;
//!    - **shard end** (`shard_end`): the child leases are created (`plan::shards::shard_end`),
//!      then `shardEnded`, which must checkpoint `SHARD_END`; if the processor did not, the
//!      worker logs an error and delivers `shardEnded` again after a pause, as Java retries its
//!      shutdown task, until it does (or the lease is lost, or the worker stops). A lease
//!      acquired at `SHARD_END` already gets no `shardEnded` (Java's
//!      `attemptShardEndCheckpointing` skips it). Either way the lease then goes to the
//!      cleanup of finished leases (`crate::cleanup`).
//! 5. The failure policy `exit` (`Handled::Exit`) ends the shard worker with the reason; the
//!    supervisor evicts the lease and ends the run with an error naming the shard.
//!
//! Progress goes to the log (`progress`): one INFO line per shard every period with the
//! records handled and `millisBehindLatest`.

mod parents;
mod progress;
mod shard_end;
mod thread;

use std::sync::Arc;
use std::time::Duration;

use kcl_core::engine::{Event, Handled};
use kcl_core::{Initialize, StartingPosition};
use kcl_kpl::HashKeyRange;
use kcl_lease::LeaseStore;
use kcl_producer::api::StreamRef;
use kcl_protocol::ExtendedSequenceNumber;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::coordinator::{LeaseHandle, LeaseStatus};
use crate::factory::{ShardHandlers, ShardInfo};
use crate::fetcher::{FetchError, Fetched, FetcherConfig, ShardFetcher};
use crate::kinesis::KinesisReader;

pub(crate) use thread::ProcessorThread;

use progress::Progress;

/// Batches read ahead of the processor (Java's polling prefetches up to 3 by default,
/// `maxPendingProcessRecordsInput`).
const PREFETCH: usize = 3;

/// What a shard worker needs besides its lease.
#[derive(Clone, Debug)]
pub(crate) struct ShardSettings {
    /// The stream read.
    pub(crate) stream: StreamRef,
    /// How the shard is read.
    pub(crate) fetcher: FetcherConfig,
    /// `callProcessRecordsEvenForEmptyRecordList`.
    pub(crate) call_even_for_empty: bool,
    /// `parentShardPollIntervalMillis`.
    pub(crate) parent_poll: Duration,
    /// The pause before a shard-end step is tried again (Java's `taskBackoffTimeMillis`,
    /// 500 ms).
    pub(crate) retry_pause: Duration,
    /// How often a progress line is logged.
    pub(crate) progress_every: Duration,
}

/// What every shard worker of a supervisor shares.
pub(crate) struct ShardContext<S, K, F> {
    pub(crate) store: Arc<S>,
    pub(crate) reader: K,
    pub(crate) factory: Arc<F>,
    pub(crate) settings: ShardSettings,
    /// The runtime the lease writes run on (the shard threads block on it).
    pub(crate) runtime: Handle,
    /// Where the `ProcessTask` metrics go.
    pub(crate) metrics: crate::metrics::Metrics,
}

/// How a shard worker ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Done with the lease: lost or handed over.
    Ended,
    /// The shard is finished (`SHARD_END` checkpointed): the lease, as acquired, for the
    /// cleanup of finished leases (Java's `ShutdownTask` enqueues it for `LeaseCleanupManager`).
    Finished(Box<kcl_lease::Lease>),
    /// Stopped by the worker's shutdown, after `shutdownRequested` when a processor ran: its
    /// thread, waiting for the `leaseLost` that follows the eviction.
    Stopped(Option<ProcessorThread>),
    /// The failure policy `exit` fired; the engine's reason.
    Exit(String),
    /// A failure that ends the run (the shard cannot be read, the processor thread died).
    Failed(String),
}

/// Aborts a task when dropped (the fetcher stops with its shard worker).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The starting position of `initialize`, from the lease's checkpoint, as the daemon writes
/// it (`sequenceNumber` and `subSequenceNumber` of the checkpoint).
pub(crate) fn starting_position(checkpoint: &ExtendedSequenceNumber) -> StartingPosition {
    StartingPosition::from_wire(
        Some(checkpoint.sequence_number()),
        Some(u64::try_from(checkpoint.sub_sequence_number()).unwrap_or(0)),
    )
}

/// Whether the worker's shutdown began (a dropped sender counts as one).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}

impl<S, K, F> ShardContext<S, K, F>
where
    S: LeaseStore + Send + Sync + 'static,
    K: KinesisReader + Clone,
    F: ShardHandlers,
{
    /// Runs the shard worker of `handle` to its end.
    pub(crate) async fn run(
        self: Arc<Self>,
        handle: LeaseHandle,
        mut stop: watch::Receiver<bool>,
    ) -> Outcome {
        let shard = handle.lease_key().to_owned();
        match self.wait_for_parents(&handle, &mut stop).await {
            parents::Waited::Ready => {}
            parents::Waited::Lost => return Outcome::Ended,
            parents::Waited::HandedOver => {
                if let Err(error) = handle.handoff_done().await {
                    tracing::info!(%shard, %error, "handoff before processing: no transfer written");
                }
                return Outcome::Ended;
            }
            parents::Waited::Stopped => return Outcome::Stopped(None),
        }

        let thread = ProcessorThread::spawn(
            self.factory.clone(),
            ShardInfo::of(handle.lease()),
            handle.clone(),
            self.runtime.clone(),
        );
        let mut thread = match thread {
            Ok(thread) => thread,
            Err(error) => {
                return Outcome::Failed(format!("cannot start the processor thread: {error}"));
            }
        };
        let checkpoint = handle.initial_checkpoint().clone();
        tracing::info!(%shard, %checkpoint, "shard worker started");
        let initialize = Event::Initialize(Initialize {
            shard_id: shard.clone(),
            starting_position: starting_position(&checkpoint),
        });
        if let Err(outcome) = deliver(&mut thread, initialize).await {
            return outcome;
        }

        let fetcher = match self.fetcher(&handle) {
            Ok(fetcher) => fetcher,
            Err(error) => return Outcome::Failed(error),
        };
        let (batches, mut inbox) = mpsc::channel(PREFETCH);
        let _fetching = AbortOnDrop(tokio::spawn(fetch(fetcher, batches)));
        let mut progress = Progress::new(&shard, checkpoint, self.settings.progress_every);

        loop {
            tokio::select! {
                biased;
                status = handle.shutdown_requested() => {
                    return end_of_lease(&handle, &mut thread, status).await;
                }
                () = stopping(&mut stop) => {
                    progress.log("shutdown requested");
                    return match deliver(&mut thread, Event::ShutdownRequested).await {
                        Ok(_) => Outcome::Stopped(Some(thread)),
                        Err(outcome) => outcome,
                    };
                }
                () = progress.due() => progress.log("progress"),
                fetched = inbox.recv() => match fetched {
                    Some(Ok(Fetched::Records(batch))) => {
                        let records = batch.records.len();
                        let bytes: usize = batch.records.iter().map(|r| r.data().len()).sum();
                        let lag = batch.millis_behind_latest;
                        if records == 0 && !self.settings.call_even_for_empty {
                            self.process_task_metrics(&shard, 0, 0, lag, None);
                            progress.empty(lag);
                            continue;
                        }
                        let started = tokio::time::Instant::now();
                        match deliver(&mut thread, batch.into_event()).await {
                            Ok(reply) => {
                                self.process_task_metrics(&shard, records, bytes, lag, Some(started.elapsed()));
                                progress.handled(records, lag, reply.checkpoint);
                            }
                            Err(outcome) => return outcome,
                        }
                    }
                    Some(Ok(Fetched::ShardEnd { children })) => {
                        progress.log("end of the shard reached");
                        return self.shard_end(&handle, thread, &children, &mut stop).await;
                    }
                    Some(Err(error)) => return Outcome::Failed(error.to_string()),
                    None => return Outcome::Failed("the shard's fetcher task ended".into()),
                },
            }
        }
    }

    /// The `ProcessTask` metrics of one batch (`ProcessTask.call`): records and bytes, the
    /// lag, and for a batch delivered the time in `processRecords` and the task's `Time` and
    /// `Success`.
    fn process_task_metrics(
        &self,
        shard: &str,
        records: usize,
        bytes: usize,
        lag: Option<u64>,
        delivered: Option<Duration>,
    ) {
        use crate::metrics::{Metric, PROCESS_TASK};
        let metrics = &self.metrics;
        let shard = Some(shard);
        metrics.record(
            Metric::RecordsProcessed,
            records as f64,
            PROCESS_TASK,
            shard,
        );
        metrics.record(
            Metric::DataBytesProcessed,
            bytes as f64,
            PROCESS_TASK,
            shard,
        );
        if let Some(lag) = lag {
            metrics.record(Metric::MillisBehindLatest, lag as f64, PROCESS_TASK, shard);
        }
        if let Some(took) = delivered {
            let millis = took.as_secs_f64() * 1000.0;
            metrics.record(
                Metric::RecordProcessorProcessRecordsTime,
                millis,
                PROCESS_TASK,
                shard,
            );
            metrics.record(Metric::Time, millis, PROCESS_TASK, shard);
            metrics.record(Metric::Success, 1.0, PROCESS_TASK, shard);
        }
    }

    /// The fetcher of the lease's shard, from its checkpoint.
    fn fetcher(&self, handle: &LeaseHandle) -> Result<ShardFetcher<K>, String> {
        let lease = handle.lease();
        let range = lease
            .hash_key_range
            .map_or(HashKeyRange::ALL, |(start, end)| {
                HashKeyRange::new(start, end)
            });
        ShardFetcher::new(
            self.reader.clone(),
            self.settings.stream.clone(),
            &lease.lease_key,
            range,
            handle.initial_checkpoint(),
            self.settings.fetcher.clone(),
        )
        .map_err(|error| format!("cannot read the shard: {error}"))
    }
}

/// Reads the shard into `out` until its end, a failure, or the receiver is gone.
async fn fetch<K: KinesisReader>(
    mut fetcher: ShardFetcher<K>,
    out: mpsc::Sender<Result<Fetched, FetchError>>,
) {
    loop {
        let fetched = fetcher.next().await;
        let last = !matches!(fetched, Ok(Fetched::Records(_)));
        if out.send(fetched).await.is_err() || last {
            return;
        }
    }
}

/// Hands `event` to the processor: its reply, or how the shard worker ends (the failure policy
/// `exit`, or the thread gone).
async fn deliver(thread: &mut ProcessorThread, event: Event) -> Result<thread::Reply, Outcome> {
    match thread.deliver(event).await {
        None => Err(Outcome::Failed(
            "the processor's thread ended (a panic outside the hooks, or in the factory)".into(),
        )),
        Some(thread::Reply {
            handled: Handled::Exit(reason),
            ..
        }) => Err(Outcome::Exit(reason)),
        Some(reply) => Ok(reply),
    }
}

/// The lease was lost, or a leader handed it to another worker (`status`): `leaseLost`, or
/// `shutdownRequested`, the transfer, then `leaseLost`.
async fn end_of_lease(
    handle: &LeaseHandle,
    thread: &mut ProcessorThread,
    status: LeaseStatus,
) -> Outcome {
    let shard = handle.lease_key();
    if status == LeaseStatus::ShutdownRequested {
        tracing::info!(%shard, "graceful handoff: shutdownRequested, then the transfer");
        if let Err(outcome) = deliver(thread, Event::ShutdownRequested).await {
            return outcome;
        }
        match handle.handoff_done().await {
            Ok(()) => {}
            Err(error) => tracing::info!(%shard, %error, "handoff: transfer not written"),
        }
    } else {
        tracing::info!(%shard, "lease lost: leaseLost to the processor, reading stops");
    }
    match deliver(thread, Event::LeaseLost).await {
        Ok(_) => Outcome::Ended,
        Err(outcome) => outcome,
    }
}
