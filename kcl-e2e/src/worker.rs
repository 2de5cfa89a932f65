//! A worker of either engine, as a scenario sees it: made from a [`WorkerSpec`], started,
//! stopped with a signal, killed. The MultiLangDaemon runs now ([`Worker::Daemon`]); the native
//! engine's variant waits for `kcl_native::run` and cannot be constructed until then, so no
//! scenario can pass on it without running it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::daemon::Daemon;
use crate::emulators::Emulators;
use crate::error::Result;
use crate::settings::Settings;
use crate::signal::Signal;
use crate::sink::Sink;

/// The record-processor program a worker runs for each shard (the daemon's child).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Processor {
    /// The binary (e.g. [`Settings::example`]`("file_sink")`).
    pub binary: PathBuf,
    /// Its arguments; for the sinks, the output folder `out`, relative to the worker's folder.
    pub args: Vec<String>,
}

impl Processor {
    /// examples/file_sink writing into the worker's `out/` (it must be built:
    /// `cargo build --example file_sink`).
    pub fn file_sink(settings: &Settings) -> Result<Processor> {
        Ok(Processor {
            binary: settings.example("file_sink")?,
            args: vec!["out".to_owned()],
        })
    }
}

/// What a worker is, whichever engine runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerSpec {
    /// The application (and lease table) name.
    pub application: String,
    /// The stream.
    pub stream: String,
    /// The stable workerId.
    pub worker_id: String,
    /// Its folder, relative to the run folder (e.g. `s1/s1-worker-1`).
    pub folder: PathBuf,
    /// The record processor.
    pub processor: Processor,
    /// Properties beyond the defaults (they override them).
    pub extra_properties: Vec<(String, String)>,
}

/// How a stop went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stopped {
    /// The exit code (`None`: killed by a signal, or still running).
    pub code: Option<i32>,
    /// Whether it ended within the deadline.
    pub ended: bool,
    /// From the signal to its end (or to the deadline).
    pub took: Duration,
    /// The record processors it had when the signal was sent.
    pub children: Vec<u32>,
}

/// The native engine's worker: not there yet.
///
/// TODO(issue 15): run the worker through `kcl_native::run` (in-process on its own thread, or
/// as a child binary) once it lands, with the same [`WorkerSpec`] and the same properties file
/// the daemon gets, and add the native scenarios beside the daemon's. Until then this type has
/// no value, so `Worker::Native` cannot be built and no native scenario can pass unrun.
#[derive(Debug)]
pub enum NativeWorker {}

/// A worker of either engine.
#[derive(Debug)]
pub enum Worker {
    /// The real Java MultiLangDaemon with a Rust child per shard (boxed: the native variant
    /// will be small).
    Daemon(Box<Daemon>),
    /// The native (Java-free) engine: see [`NativeWorker`] (not constructible yet).
    Native(NativeWorker),
}

impl Worker {
    /// A MultiLangDaemon worker (prepared, not started).
    pub fn daemon(settings: &Settings, emulators: &Emulators, spec: WorkerSpec) -> Result<Worker> {
        Ok(Worker::Daemon(Box::new(Daemon::new(
            settings, emulators, spec,
        )?)))
    }

    /// What it was made from.
    pub fn spec(&self) -> &WorkerSpec {
        match self {
            Worker::Daemon(daemon) => daemon.spec(),
            Worker::Native(never) => match *never {},
        }
    }

    /// Its workerId.
    pub fn worker_id(&self) -> &str {
        &self.spec().worker_id
    }

    /// Its folder.
    pub fn folder(&self) -> &Path {
        match self {
            Worker::Daemon(daemon) => daemon.folder(),
            Worker::Native(never) => match *never {},
        }
    }

    /// The sink its processors write.
    pub fn sink(&self) -> Sink {
        match self {
            Worker::Daemon(daemon) => Sink::new(daemon.out_dir()),
            Worker::Native(never) => match *never {},
        }
    }

    /// How long a graceful shutdown may take (`shutdownGraceMillis`).
    pub fn grace(&self) -> Duration {
        match self {
            Worker::Daemon(daemon) => daemon.grace(),
            Worker::Native(never) => match *never {},
        }
    }

    /// Starts it.
    pub fn start(&mut self) -> Result<()> {
        match self {
            Worker::Daemon(daemon) => daemon.start(),
            Worker::Native(never) => match *never {},
        }
    }

    /// Whether it runs.
    pub fn running(&mut self) -> bool {
        match self {
            Worker::Daemon(daemon) => daemon.running(),
            Worker::Native(never) => match *never {},
        }
    }

    /// The PIDs of its live record processors.
    pub fn children(&mut self) -> Vec<u32> {
        match self {
            Worker::Daemon(daemon) => daemon.children(),
            Worker::Native(never) => match *never {},
        }
    }

    /// Sends `signal` and waits up to `deadline` for it to end.
    pub fn stop(&mut self, signal: Signal, deadline: Duration) -> Result<Stopped> {
        match self {
            Worker::Daemon(daemon) => daemon.stop(signal, deadline),
            Worker::Native(never) => match *never {},
        }
    }

    /// Kills it and everything it started (SIGKILL); the record processors it had.
    pub fn kill(&mut self) -> Vec<u32> {
        match self {
            Worker::Daemon(daemon) => daemon.kill(),
            Worker::Native(never) => match *never {},
        }
    }

    /// Prints the end of its log (on a failure).
    pub fn print_log_tail(&self, lines: usize) {
        match self {
            Worker::Daemon(daemon) => daemon.print_log_tail(lines),
            Worker::Native(never) => match *never {},
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_log_tail(40);
        }
    }
}
