//! [`ShardFactory`]: how the native engine gets one processor per shard lease, and
//! [`ShardInfo`], what it knows of the shard when it asks.
//!
//! The MultiLangDaemon starts one child process per lease, and the child's `main` builds the
//! processor and its [`Runtime`]. The native engine calls a factory instead, once per lease it
//! starts processing, **on the shard's own OS thread**: the processor is built, used and
//! dropped there, so it needs to be neither `Send` nor `Sync`. Any
//! `Fn(&ShardInfo) -> Runtime<P> + Send + Sync + 'static` is a factory (the runtime carries the
//! checkpoint strategy, failure policy and hook deadline, exactly as under the daemon);
//! [`processors`] makes one from a function that returns only the processor (default
//! settings: a checkpoint after every batch).
//!
//! ```
//! use kcl_core::{Runtime, from_fn, FailurePolicy};
//! use kcl_native::{ShardFactory, ShardInfo, processors};
//! use kcl_protocol::ExtendedSequenceNumber;
//!
//! let with_settings = |shard: &ShardInfo| {
//!     tracing::info!(shard = %shard.shard_id, "building a processor");
//!     Runtime::new(from_fn(|_, _| Ok(()))).failure_policy(FailurePolicy::exit())
//! };
//! let plain = processors(|_: &ShardInfo| from_fn(|_, _| Ok(())));
//!
//! let shard = ShardInfo::new("shardId-000000000000", ExtendedSequenceNumber::trim_horizon());
//! let _engine = with_settings.runtime(&shard).shard_engine();
//! let _engine = plain.runtime(&shard).shard_engine();
//! ```

use std::collections::BTreeSet;

use kcl_core::engine::{Event, Handled, ShardEngine};
use kcl_core::{RecordProcessor, Runtime};
use kcl_protocol::ExtendedSequenceNumber;

use crate::coordinator::LeaseDriver;

/// What the engine knows of a shard when it builds its processor.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShardInfo {
    /// The shard (and lease key).
    pub shard_id: String,
    /// The lease's checkpoint: where processing resumes.
    pub checkpoint: ExtendedSequenceNumber,
    /// The shard's parents (after a split or a merge).
    pub parent_shard_ids: BTreeSet<String>,
}

impl ShardInfo {
    /// A shard without parents.
    pub fn new(shard_id: impl Into<String>, checkpoint: ExtendedSequenceNumber) -> Self {
        ShardInfo {
            shard_id: shard_id.into(),
            checkpoint,
            parent_shard_ids: BTreeSet::new(),
        }
    }

    /// The shard of a lease.
    pub(crate) fn of(lease: &kcl_lease::Lease) -> Self {
        ShardInfo {
            shard_id: lease.lease_key.clone(),
            checkpoint: lease.checkpoint.clone(),
            parent_shard_ids: lease.parent_shard_ids.clone(),
        }
    }
}

/// Builds the processor of each shard, with its runtime settings (see the
/// [module](self) documentation). Called on the shard's own thread.
pub trait ShardFactory: Send + Sync + 'static {
    /// The processor built.
    type Processor: RecordProcessor;

    /// The processor for `shard`, with its checkpoint strategy, failure policy and hook
    /// deadline.
    fn runtime(&self, shard: &ShardInfo) -> Runtime<Self::Processor>;
}

impl<F, P> ShardFactory for F
where
    F: Fn(&ShardInfo) -> Runtime<P> + Send + Sync + 'static,
    P: RecordProcessor,
{
    type Processor = P;

    fn runtime(&self, shard: &ShardInfo) -> Runtime<P> {
        self(shard)
    }
}

/// A factory from a function that builds only the processor: each shard gets
/// `Runtime::new(build(shard))`, the default settings (a checkpoint after every batch, failed
/// batches retried three times then the shard's checkpoints stopped).
///
/// ```
/// use kcl_native::{ShardFactory, ShardInfo, processors};
/// use kcl_protocol::ExtendedSequenceNumber;
/// let factory = processors(|shard: &ShardInfo| kcl_core::from_fn(|_, _| Ok(())));
/// let shard = ShardInfo::new("shardId-1", ExtendedSequenceNumber::trim_horizon());
/// let _runtime = factory.runtime(&shard);
/// ```
pub fn processors<P, B>(build: B) -> impl ShardFactory<Processor = P>
where
    P: RecordProcessor,
    B: Fn(&ShardInfo) -> P + Send + Sync + 'static,
{
    move |shard: &ShardInfo| Runtime::new(build(shard))
}

/// What handles one lease's events on the shard's own thread, one at a time, storing
/// checkpoints through the lease's [`LeaseDriver`]: the user's processor in a
/// [`ShardEngine`], or a MultiLangDaemon child process
/// ([`ChildShard`](crate::multilang::ChildShard)).
///
/// ```
/// use kcl_core::engine::{Event, Handled};
/// use kcl_native::{ShardHandler, coordinator::LeaseDriver};
///
/// /// Handles every event by doing nothing (and so never checkpoints).
/// struct Idle;
/// impl ShardHandler for Idle {
///     fn handle(&mut self, _event: Event, _driver: &mut LeaseDriver) -> Handled {
///         Handled::Done
///     }
/// }
/// ```
pub trait ShardHandler {
    /// Handles `event` (telling `driver` first, with [`LeaseDriver::sending`], so that its
    /// judge knows what was delivered); [`Handled::Exit`] ends the worker's run.
    fn handle(&mut self, event: Event, driver: &mut LeaseDriver) -> Handled;
}

impl<P: RecordProcessor> ShardHandler for ShardEngine<P> {
    fn handle(&mut self, event: Event, driver: &mut LeaseDriver) -> Handled {
        driver.deliver(self, event)
    }
}

/// Builds the [`ShardHandler`] of each lease the worker starts processing, on the shard's own
/// thread. Every [`ShardFactory`] is one (its processor in a [`ShardEngine`]);
/// [`ChildProcesses`](crate::multilang::ChildProcesses) is the other kind: a MultiLangDaemon
/// child process per lease.
///
/// ```
/// use kcl_native::{ShardHandlers, ShardInfo, processors};
/// use kcl_protocol::ExtendedSequenceNumber;
///
/// fn handlers_of(factory: impl ShardHandlers) -> impl ShardHandlers { factory }
/// let factory = handlers_of(processors(|_: &ShardInfo| kcl_core::from_fn(|_, _| Ok(()))));
/// let _handler = factory.handler(&ShardInfo::new("shardId-1", ExtendedSequenceNumber::trim_horizon()));
/// ```
pub trait ShardHandlers: Send + Sync + 'static {
    /// The handler built.
    type Handler: ShardHandler;

    /// The handler of `shard`.
    fn handler(&self, shard: &ShardInfo) -> Self::Handler;
}

impl<F: ShardFactory> ShardHandlers for F {
    type Handler = ShardEngine<F::Processor>;

    fn handler(&self, shard: &ShardInfo) -> Self::Handler {
        self.runtime(shard).shard_engine()
    }
}
