//! The state of one held lease, shared by the renewer, the lease's shard worker and the handoff
//! watchdog: the lease as last written (so each write knows the counter the previous one left),
//! the time of the last successful renewal, the status the shard worker watches, and the bytes
//! it processed (for `throughputKBps`).
//!
//! Every write for the lease (renew, checkpoint, transfer, evict) runs while holding
//! [`HeldLease::writes`], so writes for one lease are serialised; and each first asks
//! [`HeldLease::usable`], which is the fence: a lease that is lost, or that this worker has not
//! renewed for the failover time (local self-expiry), gets no write any more.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use kcl_lease::{Item, Lease, LeaseStore, Table, UpdateError, Write};
use tokio::sync::watch;
use tokio::time::Instant;

/// Where a held lease stands, as its shard worker sees it. The order is the only way it moves:
/// `Held` → `ShutdownRequested` → `Lost`, or `Held` → `Lost`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LeaseStatus {
    /// Held and renewed: process records.
    Held,
    /// A leader moved the lease to another worker by graceful handoff (this worker is its
    /// `checkpointOwner`): deliver `shutdownRequested`, then call
    /// [`LeaseHandle::handoff_done`](super::LeaseHandle::handoff_done). The lease is still
    /// renewed and checkpoints still land until the transfer.
    ShutdownRequested,
    /// Not this worker's any more (taken, transferred, evicted, or not renewed for the failover
    /// time): deliver `leaseLost`; every checkpoint is refused.
    Lost,
}

/// A boxed future (the store's futures, behind an object-safe trait).
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The one store call a held lease makes: a conditional write to the lease table. Object-safe,
/// so a [`LeaseHandle`](super::LeaseHandle) is not generic over the store.
pub(crate) trait LeaseWriter: Send + Sync {
    /// [`LeaseStore::update`] on the lease table.
    fn update<'a>(&'a self, write: &'a Write) -> BoxFuture<'a, Result<Item, UpdateError>>;
}

impl<S: LeaseStore + Send + Sync> LeaseWriter for S {
    fn update<'a>(&'a self, write: &'a Write) -> BoxFuture<'a, Result<Item, UpdateError>> {
        Box::pin(LeaseStore::update(self, Table::Lease, write))
    }
}

/// What is changed only while writing: guarded by the lease's write lock.
#[derive(Debug)]
pub(crate) struct WriteState {
    /// The lease as last written or read: its counter is the fence of the next write.
    pub(crate) lease: Lease,
    /// A write of ours reported `Unavailable` (it may have landed): a checkpoint refused by
    /// its condition then checks whether the counter moved by our own hand.
    pub(crate) unsettled: bool,
    /// The moving average of `throughputKBps` (`None` until the first sample).
    pub(crate) throughput: Option<f64>,
}

/// One held lease.
#[derive(Debug)]
pub(crate) struct HeldLease {
    /// The lease as read when acquired.
    acquired: Lease,
    failover: Duration,
    writes: tokio::sync::Mutex<WriteState>,
    /// When the last successful renewal was sent (or the lease was read at acquisition).
    renewed_at: Mutex<Instant>,
    status: watch::Sender<LeaseStatus>,
    /// Bytes processed since the last throughput sample.
    bytes: AtomicU64,
    /// Whether any bytes were ever reported (Java writes no throughput before that).
    fed: AtomicBool,
}

/// Java's `LeaseStatsRecorder` smoothing: `value = α × sample + (1 − α) × value`.
const THROUGHPUT_ALPHA: f64 = 0.5;
const BYTES_PER_KB: f64 = 1024.0;

impl HeldLease {
    /// A lease just acquired: `lease` as read (owner = this worker), counted as renewed at
    /// `read_at`.
    pub(crate) fn new(lease: Lease, failover: Duration, read_at: Instant) -> Self {
        let held = HeldLease {
            acquired: lease.clone(),
            failover,
            writes: tokio::sync::Mutex::new(WriteState {
                lease: lease.clone(),
                unsettled: false,
                throughput: None,
            }),
            renewed_at: Mutex::new(read_at),
            status: watch::Sender::new(LeaseStatus::Held),
            bytes: AtomicU64::new(0),
            fed: AtomicBool::new(false),
        };
        // As Java's renewer does when it adds a lease: the stored throughput seeds the stats
        // (as a byte count, Java's quirk).
        if let Some(kbps) = lease.throughput_kbps.filter(|k| k.is_finite() && *k >= 0.0) {
            held.record_bytes((kbps * BYTES_PER_KB).round() as u64);
        }
        held
    }

    /// The lease as read when acquired.
    pub(crate) fn acquired(&self) -> &Lease {
        &self.acquired
    }

    /// Takes the write lock (every write for the lease holds it).
    pub(crate) async fn writes(&self) -> tokio::sync::MutexGuard<'_, WriteState> {
        self.writes.lock().await
    }

    fn renewed_at(&self) -> Instant {
        *self
            .renewed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a successful renewal sent at `sent`.
    pub(crate) fn renewed(&self, sent: Instant) {
        let mut renewed_at = self
            .renewed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *renewed_at = (*renewed_at).max(sent);
    }

    /// When the lease expires locally unless renewed before.
    pub(crate) fn expires_at(&self) -> Instant {
        self.renewed_at() + self.failover
    }

    /// The fence: whether a write may be attempted at `now`. A lease not renewed for longer
    /// than the failover time is marked lost here.
    pub(crate) fn usable(&self, now: Instant) -> bool {
        if self.status() == LeaseStatus::Lost {
            return false;
        }
        if now > self.expires_at() {
            tracing::warn!(
                lease = %self.acquired.lease_key,
                failover_ms = self.failover.as_millis() as u64,
                "lease not renewed for the failover time: lost (local self-expiry)"
            );
            self.mark_lost();
            return false;
        }
        true
    }

    /// The status as last published (without checking expiry).
    pub(crate) fn status(&self) -> LeaseStatus {
        *self.status.borrow()
    }

    /// The status, with local self-expiry checked at `now`.
    pub(crate) fn status_at(&self, now: Instant) -> LeaseStatus {
        if self.status() != LeaseStatus::Lost {
            self.usable(now);
        }
        self.status()
    }

    /// A receiver of status changes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<LeaseStatus> {
        self.status.subscribe()
    }

    /// Marks the lease lost (final).
    pub(crate) fn mark_lost(&self) {
        self.status.send_if_modified(|status| {
            let changed = *status != LeaseStatus::Lost;
            *status = LeaseStatus::Lost;
            changed
        });
    }

    /// Marks a graceful handoff pending; `false` if the lease was not simply held.
    pub(crate) fn request_shutdown(&self) -> bool {
        self.status.send_if_modified(|status| {
            let held = *status == LeaseStatus::Held;
            if held {
                *status = LeaseStatus::ShutdownRequested;
            }
            held
        })
    }

    /// Adds processed bytes for `throughputKBps`.
    pub(crate) fn record_bytes(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.fed.store(true, Ordering::Relaxed);
    }

    /// Java's `getThroughputKBps` at a renewal: the bytes since the previous sample, in KB per
    /// renewal period, smoothed; `None` while no bytes were ever reported. Rounded to six
    /// decimals as Java rounds it.
    pub(crate) fn sample_throughput(
        &self,
        state: &mut WriteState,
        period: Duration,
    ) -> Option<f64> {
        if !self.fed.load(Ordering::Relaxed) {
            return None;
        }
        let bytes = self.bytes.swap(0, Ordering::Relaxed) as f64;
        let seconds = period.as_secs_f64().max(f64::MIN_POSITIVE);
        let sample = bytes / BYTES_PER_KB / seconds;
        let value = match state.throughput {
            None => sample,
            Some(previous) => THROUGHPUT_ALPHA * sample + (1.0 - THROUGHPUT_ALPHA) * previous,
        };
        state.throughput = Some(value);
        Some((value * 1e6).round() / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kcl_protocol::ExtendedSequenceNumber as E;

    fn held() -> HeldLease {
        HeldLease::new(
            Lease::new("shardId-0", E::trim_horizon()),
            Duration::from_secs(10),
            Instant::now(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn expiry_fences_and_the_status_only_moves_forward() {
        let held = held();
        let start = Instant::now();
        assert!(held.usable(start + Duration::from_secs(10)));
        held.renewed(start + Duration::from_secs(5));
        held.renewed(start); // an older success does not move the time back
        assert!(held.usable(start + Duration::from_secs(15)));
        assert!(held.request_shutdown());
        assert!(!held.request_shutdown());
        assert_eq!(held.status(), LeaseStatus::ShutdownRequested);
        assert!(!held.usable(start + Duration::from_millis(15_001)));
        assert_eq!(held.status(), LeaseStatus::Lost);
        assert!(!held.request_shutdown());
        // Lost is final, even at an earlier time.
        assert!(!held.usable(start));
    }

    #[tokio::test(start_paused = true)]
    async fn throughput_is_smoothed_per_period() {
        let held = held();
        let period = Duration::from_secs(2);
        let mut state = held.writes().await;
        assert_eq!(held.sample_throughput(&mut state, period), None);
        held.record_bytes(4096);
        assert_eq!(held.sample_throughput(&mut state, period), Some(2.0));
        held.record_bytes(0);
        assert_eq!(held.sample_throughput(&mut state, period), Some(1.0));
        drop(state);
        // A stored throughput seeds the stats as Java does (KB × 1024 bytes).
        let mut lease = Lease::new("shardId-1", E::trim_horizon());
        lease.throughput_kbps = Some(3.0);
        let seeded = HeldLease::new(lease, Duration::from_secs(10), Instant::now());
        let mut state = seeded.writes().await;
        assert_eq!(seeded.sample_throughput(&mut state, period), Some(1.5));
    }
}
