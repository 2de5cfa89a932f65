//! The producer for code that does not run async: the same [`Producer`](crate::Producer) on a
//! thread and tokio runtime of its own, with calls that block the caller instead of returning
//! futures.
//!
//! Every call works from any thread, including a thread that runs some other tokio runtime (a
//! synchronous hook of a processor built with `kcl`'s `tokio` feature, say): waiting uses the
//! thread's own park and unpark, never `block_on` of a runtime, so it cannot panic with "cannot
//! start a runtime from within a runtime". It does block that thread while it waits.
//!
//! ```
//! use kcl_producer::{Producer, Record};
//! use kcl_producer::api::StreamRef;
//! use kcl_producer::testing::FakeKinesis;
//! use std::time::Duration;
//!
//! let kinesis = FakeKinesis::new("orders", 2);
//! let producer = Producer::builder(kinesis.clone(), StreamRef::name("orders"))
//!     .build_blocking()
//!     .unwrap();
//! let ticket = producer.send(Record::new("user-1", "hello")).unwrap();
//! let delivery = ticket.wait().unwrap();
//! assert_eq!(kinesis.records(&delivery.shard_id).len(), 1);
//! let report = producer.shutdown(Duration::from_secs(5));
//! assert!(report.is_complete());
//! ```

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::api::Record;
use crate::dispatch::StatsSnapshot;
use crate::outcome::{Delivery, Failed, SendError, ShutdownReport, TrySendError};
use crate::producer::{BuildError, Builder};
use crate::{KinesisApi, Ticket as AsyncTicket};

/// How long dropping a [`Producer`] (instead of calling [`Producer::shutdown`]) lets the
/// buffered records go out.
pub const DROP_DEADLINE: Duration = Duration::from_secs(30);

/// A [`Producer`](crate::Producer) that blocks instead of returning futures, running on a thread
/// of its own (named `kcl-producer`). Built by [`Builder::build_blocking`].
///
/// Dropping it is [`shutdown`](Producer::shutdown) with [`DROP_DEADLINE`], the report written
/// to `tracing` when it is not complete; every ticket still resolves.
pub struct Producer {
    inner: Option<crate::Producer>,
    runtime: Handle,
    /// Stops the runtime's thread, and the thread to join.
    stop: Option<(oneshot::Sender<()>, thread::JoinHandle<()>)>,
}

/// The outcome of one record, to wait for (the blocking form of [`crate::Ticket`]).
#[must_use = "a ticket is the only way to learn whether the record was delivered"]
#[derive(Debug)]
pub struct Ticket {
    inner: AsyncTicket,
}

impl Ticket {
    /// Waits until the record is delivered or has failed (the record handed back).
    // The error hands the record back whole, by design.
    #[allow(clippy::result_large_err)]
    pub fn wait(self) -> Result<Delivery, Failed> {
        wait_for(self.inner)
    }

    /// The blocking ticket's future, for code that can await after all.
    pub fn into_future(self) -> AsyncTicket {
        self.inner
    }
}

impl<K: KinesisApi> Builder<K> {
    /// Builds a [`blocking::Producer`](Producer): starts a thread with a tokio runtime of its
    /// own, reads the stream's limits there (as [`build`](Builder::build) does) and starts the
    /// producer's task on it.
    pub fn build_blocking(self) -> Result<Producer, BuildError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("kcl-producer")
            .build()
            .map_err(|error| {
                BuildError::Settings(format!("cannot start the producer's runtime: {error}"))
            })?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = thread::Builder::new()
            .name("kcl-producer".to_owned())
            .spawn(move || {
                // Runs the producer's tasks until the handle stops it (or is gone).
                let _ = runtime.block_on(stopped);
            })
            .map_err(|error| {
                BuildError::Settings(format!("cannot start the producer's thread: {error}"))
            })?;
        let built = wait_for(handle.spawn(self.build()));
        let mut producer = Producer {
            inner: None,
            runtime: handle,
            stop: Some((stop, thread)),
        };
        match built {
            Ok(Ok(inner)) => {
                producer.inner = Some(inner);
                Ok(producer)
            }
            Ok(Err(error)) => Err(error),
            Err(join) => Err(BuildError::Settings(format!(
                "the producer's start failed: {join}"
            ))),
        }
    }
}

impl Producer {
    fn inner(&self) -> &crate::Producer {
        self.inner
            .as_ref()
            .expect("the producer is present until shutdown")
    }

    /// Takes `record`, blocking while the buffer is full; an invalid record is handed back at
    /// once (see [`crate::Producer::send`]).
    pub fn send(&self, record: Record) -> Result<Ticket, SendError> {
        let inner = self.inner();
        // The fast path takes no detour through the waker when there is room.
        let ticket = match inner.try_send(record) {
            Ok(ticket) => Ok(ticket),
            Err(TrySendError::Full(record)) => {
                let _context = self.runtime.enter();
                wait_for(inner.send(record))
            }
            Err(TrySendError::Invalid(record, invalid)) => Err(SendError::Invalid(record, invalid)),
            Err(TrySendError::Closed(record)) => Err(SendError::Closed(record)),
            Err(TrySendError::Spool(record, error)) => Err(SendError::Spool(record, error)),
        };
        ticket.map(|inner| Ticket { inner })
    }

    /// Takes `record` if the buffer has room now; hands it back otherwise (see
    /// [`crate::Producer::try_send`]).
    pub fn try_send(&self, record: Record) -> Result<Ticket, TrySendError> {
        self.inner().try_send(record).map(|inner| Ticket { inner })
    }

    /// Blocks until every record taken before this call is delivered or failed.
    pub fn flush(&self) {
        let _context = self.runtime.enter();
        wait_for(self.inner().flush());
    }

    /// Counters since the producer started.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner().stats()
    }

    /// Records an earlier producer left in the spool, sent by this one first (see
    /// [`crate::Producer::recovered`]).
    ///
    /// ```
    /// use kcl_producer::Producer;
    /// use kcl_producer::api::StreamRef;
    /// use kcl_producer::testing::FakeKinesis;
    ///
    /// let producer = Producer::builder(FakeKinesis::new("s", 1), StreamRef::name("s"))
    ///     .build_blocking()
    ///     .unwrap();
    /// assert_eq!(producer.recovered(), 0, "no spool");
    /// ```
    pub fn recovered(&self) -> u64 {
        self.inner().recovered()
    }

    /// Stops taking records, sends what is buffered, waits for the answers until `deadline`
    /// has passed, then stops the producer's thread and reports what was not delivered (see
    /// [`crate::Producer::shutdown`]).
    pub fn shutdown(mut self, deadline: Duration) -> ShutdownReport {
        self.stop(deadline)
    }

    fn stop(&mut self, deadline: Duration) -> ShutdownReport {
        let report = match self.inner.take() {
            Some(inner) => {
                let _context = self.runtime.enter();
                wait_for(self.runtime.spawn(inner.shutdown(deadline))).unwrap_or_default()
            }
            None => ShutdownReport::default(),
        };
        if let Some((stop, thread)) = self.stop.take() {
            let _ = stop.send(());
            // The runtime's thread ends when its `block_on` returns; it never panics there, and
            // a panic would already have been reported by the thread itself.
            let _ = thread.join();
        }
        report
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        if self.inner.is_none() {
            return;
        }
        let report = self.stop(DROP_DEADLINE);
        if !report.is_complete() {
            tracing::warn!(
                failed = report.failed.len(),
                unsent = report.unsent.len(),
                in_doubt = report.in_doubt.len(),
                spooled = report.spooled,
                "the blocking producer was dropped before every record was delivered; call shutdown to read the report"
            );
        }
    }
}

/// Wakes the thread that waits.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` on this thread until it is ready, parking between polls. Works outside and
/// inside any async runtime: the futures waited for here need no runtime of this thread (the
/// producer's own runtime drives its timers and its task).
fn wait_for<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        thread::park();
    }
}
