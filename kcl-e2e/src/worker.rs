//! A worker of either engine, as a scenario sees it: made from a [`WorkerSpec`], started,
//! stopped with a signal, killed. [`Worker::Daemon`] runs the real MultiLangDaemon with a
//! child process per shard; [`Worker::Native`] runs the native engine
//! (examples/native_file_sink), every shard a thread of its one process, from the same
//! properties file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::daemon::Daemon;
use crate::emulators::Emulators;
use crate::error::Result;
pub use crate::native::NativeWorker;
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

    /// scripts/e2e/node/kcl_sink.js on `node`: a child written with aws-kcl (the daemon's Node
    /// client, installed in the cache), writing file_sink's sink into `out/`. Its worker needs
    /// [`Processor::NODE_PATH`] in its environment ([`Processor::env`]).
    pub fn node_sink(settings: &Settings) -> Result<Processor> {
        Ok(Processor {
            binary: settings.node()?,
            args: vec![
                settings
                    .repo
                    .join("scripts/e2e/node/kcl_sink.js")
                    .display()
                    .to_string(),
                "out".to_owned(),
            ],
        })
    }

    /// amazon_kclpy's own sample processor (`sample_kclpy_app.py` of the kclpy-ext wheel in
    /// the cache) on the cache's Python; it writes no sink (it logs each record to stderr and
    /// checkpoints every 30 s and at shutdown). Its worker needs `PYTHONPATH`
    /// ([`Processor::env`]): the `child` symlink to the interpreter is outside the venv.
    pub fn kclpy_sample(settings: &Settings) -> Result<Processor> {
        let python = settings.cache.join("venv/bin/python");
        let sample = settings.cache.join("venv/bin/sample_kclpy_app.py");
        for path in [&python, &sample] {
            if !path.exists() {
                return Err(crate::error::Error::missing(
                    format!("{} is missing", path.display()),
                    "run `bash scripts/e2e.sh install`",
                ));
            }
        }
        Ok(Processor {
            binary: python,
            args: vec![sample.display().to_string()],
        })
    }

    /// scripts/e2e/kclpy_sink.py on the cache's Python: a child written with amazon_kclpy,
    /// writing file_sink's sink into `out/`. Its worker needs `PYTHONPATH` ([`Processor::env`]).
    pub fn kclpy_sink(settings: &Settings) -> Result<Processor> {
        let sample = Processor::kclpy_sample(settings)?;
        Ok(Processor {
            binary: sample.binary,
            args: vec![
                settings
                    .repo
                    .join("scripts/e2e/kclpy_sink.py")
                    .display()
                    .to_string(),
                "out".to_owned(),
            ],
        })
    }

    /// The environment the processors of [`Processor::node_sink`],
    /// [`Processor::kclpy_sample`] and [`Processor::kclpy_sink`] need (where their client library is).
    pub fn env(settings: &Settings) -> Result<Vec<(String, String)>> {
        let site = settings.jars()?;
        let site_packages = site
            .parent()
            .and_then(Path::parent)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        Ok(vec![
            (
                "NODE_PATH".to_owned(),
                settings
                    .cache
                    .join("node/node_modules")
                    .display()
                    .to_string(),
            ),
            ("PYTHONPATH".to_owned(), site_packages),
        ])
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

/// A worker of either engine.
#[derive(Debug)]
pub enum Worker {
    /// The real Java MultiLangDaemon with a Rust child per shard.
    Daemon(Box<Daemon>),
    /// The native (Java-free) engine: examples/native_file_sink, one process.
    Native(Box<NativeWorker>),
}

impl Worker {
    /// A MultiLangDaemon worker (prepared, not started).
    pub fn daemon(settings: &Settings, emulators: &Emulators, spec: WorkerSpec) -> Result<Worker> {
        Ok(Worker::Daemon(Box::new(Daemon::new(
            settings, emulators, spec,
        )?)))
    }

    /// A `kcl daemon --native` worker (prepared, not started): the MultiLangDaemon without
    /// Java, running `spec.processor` as its child per lease, like [`Worker::daemon`].
    pub fn native_daemon(
        settings: &Settings,
        emulators: &Emulators,
        spec: WorkerSpec,
    ) -> Result<Worker> {
        Ok(Worker::Daemon(Box::new(Daemon::new_native(
            settings, emulators, spec,
        )?)))
    }

    /// A native-engine worker (prepared, not started): examples/native_file_sink with the
    /// properties file the daemon would get. `spec.processor` is what the file's
    /// `executableName` names (the daemon's child); the native engine runs file_sink's processor
    /// in-process whatever it says.
    pub fn native(settings: &Settings, emulators: &Emulators, spec: WorkerSpec) -> Result<Worker> {
        Ok(Worker::Native(Box::new(NativeWorker::new(
            settings, emulators, spec,
        )?)))
    }

    /// What it was made from.
    pub fn spec(&self) -> &WorkerSpec {
        match self {
            Worker::Daemon(daemon) => daemon.spec(),
            Worker::Native(native) => native.spec(),
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
            Worker::Native(native) => native.folder(),
        }
    }

    /// The sink its processors write.
    pub fn sink(&self) -> Sink {
        match self {
            Worker::Daemon(daemon) => Sink::new(daemon.out_dir()),
            Worker::Native(native) => Sink::new(native.out_dir()),
        }
    }

    /// How long a graceful shutdown may take (`shutdownGraceMillis`).
    pub fn grace(&self) -> Duration {
        match self {
            Worker::Daemon(daemon) => daemon.grace(),
            Worker::Native(native) => native.grace(),
        }
    }

    /// Sets `key=value` in its environment from the next start on (the daemon's children
    /// inherit it; the native engine's processors are in its process).
    pub fn set_env(&mut self, key: &str, value: &str) {
        match self {
            Worker::Daemon(daemon) => daemon.set_env(key, value),
            Worker::Native(native) => native.set_env(key, value),
        }
    }

    /// Starts it.
    pub fn start(&mut self) -> Result<()> {
        match self {
            Worker::Daemon(daemon) => daemon.start(),
            Worker::Native(native) => native.start(),
        }
    }

    /// Whether it runs.
    pub fn running(&mut self) -> bool {
        match self {
            Worker::Daemon(daemon) => daemon.running(),
            Worker::Native(native) => native.running(),
        }
    }

    /// The PIDs of its live record processors (none on the native engine: its shards are
    /// threads of its one process).
    pub fn children(&mut self) -> Vec<u32> {
        match self {
            Worker::Daemon(daemon) => daemon.children(),
            Worker::Native(_) => Vec::new(),
        }
    }

    /// Sends `signal` and waits up to `deadline` for it to end.
    pub fn stop(&mut self, signal: Signal, deadline: Duration) -> Result<Stopped> {
        match self {
            Worker::Daemon(daemon) => daemon.stop(signal, deadline),
            Worker::Native(native) => native.stop(signal, deadline),
        }
    }

    /// Kills it and everything it started (SIGKILL); the record processors it had.
    pub fn kill(&mut self) -> Vec<u32> {
        match self {
            Worker::Daemon(daemon) => daemon.kill(),
            Worker::Native(native) => {
                native.kill();
                Vec::new()
            }
        }
    }

    /// Prints the end of its log (on a failure).
    pub fn print_log_tail(&self, lines: usize) {
        match self {
            Worker::Daemon(daemon) => daemon.print_log_tail(lines),
            Worker::Native(native) => native.print_log_tail(lines),
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
