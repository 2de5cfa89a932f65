//! The shard's own OS thread: it builds the shard's handler (the processor's
//! [`ShardEngine`](kcl_core::engine::ShardEngine), or a child process) with the factory, owns it
//! and the blocking [`LeaseDriver`], and handles one event at a time for the async side. The
//! user's code never runs on a runtime thread, and the processor never moves between threads.

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;

use kcl_core::engine::{Event, Handled};
use kcl_protocol::ExtendedSequenceNumber;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::coordinator::{LeaseDriver, LeaseHandle};
use crate::factory::{ShardHandler, ShardHandlers, ShardInfo};

/// The answer to one event: how the engine handled it, and the lease's checkpoint after it (as
/// judged and written).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) handled: Handled,
    pub(crate) checkpoint: ExtendedSequenceNumber,
}

/// The async side's end of a shard thread. Dropping it ends the thread after the event in
/// hand.
#[derive(Debug)]
pub(crate) struct ProcessorThread {
    events: std_mpsc::Sender<Event>,
    replies: mpsc::UnboundedReceiver<Reply>,
}

impl ProcessorThread {
    /// Starts the thread of `handle`'s shard: the processor is built there by `factory`, its
    /// checkpoints written on `runtime`.
    pub(crate) fn spawn<F: ShardHandlers>(
        factory: Arc<F>,
        info: ShardInfo,
        handle: LeaseHandle,
        runtime: Handle,
    ) -> std::io::Result<Self> {
        let (events, inbox) = std_mpsc::channel::<Event>();
        let (outbox, replies) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name(format!("kcl-{}", info.shard_id))
            .spawn(move || {
                let mut handler = factory.handler(&info);
                let mut driver = LeaseDriver::new(handle, runtime);
                while let Ok(event) = inbox.recv() {
                    let handled = handler.handle(event, &mut driver);
                    let reply = Reply {
                        handled,
                        checkpoint: driver.last_checkpoint().clone(),
                    };
                    if outbox.send(reply).is_err() {
                        break;
                    }
                }
            })?;
        Ok(ProcessorThread { events, replies })
    }

    /// Hands `event` to the processor and waits until it is handled; `None` if the thread is
    /// gone (the factory or the engine panicked).
    pub(crate) async fn deliver(&mut self, event: Event) -> Option<Reply> {
        self.events.send(event).ok()?;
        self.replies.recv().await
    }
}
