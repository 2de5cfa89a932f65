//! A background producer (scripts/e2e/stream.py's `Producer`): puts `per_put` records every
//! `interval` into a stream and its ledger until stopped, so that a scenario's shutdown, reshard
//! or kill happens while records flow.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::stream::Stream;
use crate::taint;

/// A running producer thread; [`Producer::stop`] ends it (dropping it ends it too).
#[derive(Debug)]
pub struct Producer {
    halt: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<u64>>>,
}

impl Producer {
    /// Starts putting records `start, start + 1, ...` ([`taint::payload`]`(prefix, n,
    /// tainted)`), `per_put` every `interval`.
    pub fn start(
        stream: &Stream,
        ledger: &Ledger,
        prefix: &str,
        start: u64,
        per_put: u64,
        interval: Duration,
        tainted: bool,
    ) -> Producer {
        let halt = Arc::new(AtomicBool::new(false));
        let (stream, ledger, prefix) = (stream.clone(), ledger.clone(), prefix.to_owned());
        let stop = halt.clone();
        let thread = std::thread::spawn(move || {
            let mut next = start;
            while !stop.load(Ordering::SeqCst) {
                next = taint::put_records(&stream, &ledger, &prefix, next, per_put, tainted)?;
                let until = Instant::now() + interval;
                while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            Ok(next)
        });
        Producer {
            halt,
            thread: Some(thread),
        }
    }

    /// Stops it; the number of the next record (to continue the numbering), or the error
    /// that ended it.
    pub fn stop(mut self) -> Result<u64> {
        self.halt.store(true, Ordering::SeqCst);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result.map_err(|e| Error::msg(format!("producer failed: {e}"))),
            Some(Err(_)) => Err(Error::msg("the producer thread panicked")),
            None => Err(Error::msg("the producer was already stopped")),
        }
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.halt.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
