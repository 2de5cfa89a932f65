//! [`Stopper`]: how a worker is told to stop — gracefully (final checkpoints, then eviction) or
//! at once — and the signals that tell [`run`](crate::run) so: SIGINT or SIGTERM for a
//! graceful stop, a second one to stop at once.

use std::sync::Arc;

use tokio::sync::watch;

/// How far a stop has gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum StopLevel {
    /// Not asked to stop.
    Running,
    /// Stop gracefully.
    Graceful,
    /// Stop at once.
    Now,
}

/// Tells a [`Supervisor`](super::Supervisor) to stop. Cheap to clone; every clone tells the
/// same supervisor.
///
/// ```
/// use kcl_native::Stopper;
/// let stopper = Stopper::new();
/// assert!(!stopper.is_stopping());
/// stopper.stop();
/// assert!(stopper.is_stopping());
/// ```
#[derive(Clone, Debug)]
pub struct Stopper {
    level: Arc<watch::Sender<StopLevel>>,
}

impl Default for Stopper {
    fn default() -> Self {
        Stopper::new()
    }
}

impl Stopper {
    /// A stopper that has not been used.
    pub fn new() -> Self {
        Stopper {
            level: Arc::new(watch::Sender::new(StopLevel::Running)),
        }
    }

    /// A graceful stop: no new leases, `shutdownRequested` to every shard (final checkpoints),
    /// a wait bounded by `shutdownGraceMillis`, then every lease evicted and `leaseLost` to the
    /// processors.
    pub fn stop(&self) {
        self.raise(StopLevel::Graceful);
    }

    /// A stop at once, even during a graceful one: nothing more is delivered or written; the
    /// leases are left to expire.
    pub fn stop_now(&self) {
        self.raise(StopLevel::Now);
    }

    /// Whether a stop was asked for.
    pub fn is_stopping(&self) -> bool {
        *self.level.borrow() != StopLevel::Running
    }

    fn raise(&self, to: StopLevel) {
        self.level.send_if_modified(|level| {
            let raised = *level < to;
            if raised {
                *level = to;
            }
            raised
        });
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<StopLevel> {
        self.level.subscribe()
    }

    /// Stops on SIGINT or SIGTERM (gracefully), then at once on the second: a task on the
    /// current runtime, until the stop is complete.
    pub(crate) fn on_signals(&self) {
        let stopper = self.clone();
        tokio::spawn(async move {
            let mut signals = match Signals::new() {
                Ok(signals) => signals,
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGINT and SIGTERM");
                    return;
                }
            };
            let first = signals.next().await;
            tracing::info!(
                signal = first,
                "stopping gracefully: final checkpoints, then the leases are evicted (signal again to stop at once)"
            );
            stopper.stop();
            let second = signals.next().await;
            tracing::warn!(
                signal = second,
                "stopping at once: no final checkpoints; the leases will expire"
            );
            stopper.stop_now();
        });
    }
}

/// SIGINT and SIGTERM (SIGINT only off Unix).
struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Signals {
            #[cfg(unix)]
            terminate: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
        })
    }

    /// The next signal's name.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}
