//! The native (Java-free) engine as one worker of an application: examples/native_file_sink
//! (file_sink's processor through `kcl::app::run`, the entry point of every `#[kcl::main]`
//! binary), built with `cargo build --example native_file_sink --features native`, run as a
//! process of its own with the arguments `native <properties file>`.
//!
//! Its folder is prepared exactly as the daemon's ([`prepare_folder`]): `kcl.properties`
//! written by `kcl properties` from the same keys (the `child` symlink and `executableName`
//! included, which the native engine reads and ignores), so one file serves both engines. The
//! keys the native engine needs are among them: `initialPositionInStream = TRIM_HORIZON`,
//! `retrievalMode = POLLING`, both endpoints, `workerId` and `shutdownGraceMillis`. It runs as
//! `KCL_SINK_DIR=out <binary> native <folder>/kcl.properties` in its folder, so its shards write
//! the same sink (`<folder>/out`, every event with the one PID of the engine).
//!
//! On SIGTERM or SIGINT it asks every shard's processor to shut down (final checkpoints within
//! `shutdownGraceMillis`), releases its leases and the `Leader` lock, and exits 0.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::daemon::{grace_of, prepare_folder};
use crate::emulators::Emulators;
use crate::error::{Error, Result};
use crate::process::Proc;
use crate::settings::Settings;
use crate::signal::Signal;
use crate::worker::{Stopped, WorkerSpec};

/// The example the native worker runs (it must be built with the feature `native`).
pub const NATIVE_FILE_SINK: &str = "native_file_sink";

/// One workerId of an application on the native engine; startable several times (same folder,
/// workerId and sink). Dropping it kills an engine still running, with its process group.
#[derive(Debug)]
pub struct NativeWorker {
    spec: WorkerSpec,
    folder: PathBuf,
    properties: BTreeMap<String, String>,
    binary: PathBuf,
    env: Vec<(String, String)>,
    proc: Option<Proc>,
    starts: u32,
}

impl NativeWorker {
    /// Prepares the worker's folder `<run>/<spec.folder>` as the daemon's (see the module
    /// documentation) and finds the built `native_file_sink`. Starts nothing.
    pub fn new(settings: &Settings, emulators: &Emulators, spec: WorkerSpec) -> Result<Self> {
        let binary = settings.native_example(NATIVE_FILE_SINK)?;
        let (folder, properties) = prepare_folder(settings, emulators, &spec)?;
        Ok(NativeWorker {
            spec,
            folder,
            properties,
            binary,
            env: settings.process_env(),
            proc: None,
            starts: 0,
        })
    }

    /// What it was made from.
    pub fn spec(&self) -> &WorkerSpec {
        &self.spec
    }

    /// The worker's folder.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// The sink folder its processors write (`<folder>/out`).
    pub fn out_dir(&self) -> PathBuf {
        self.folder.join("out")
    }

    /// The properties file's keys and values, as read back.
    pub fn properties(&self) -> &BTreeMap<String, String> {
        &self.properties
    }

    /// `shutdownGraceMillis`: how long the shards may take to checkpoint at SIGTERM.
    pub fn grace(&self) -> Duration {
        grace_of(&self.properties)
    }

    /// Sets `key=value` in its environment (from the next start on; the daemon's children
    /// inherit it), e.g. `KCL_SINK_CHECKPOINT_LAG` for file_sink.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Starts the engine (one at a time); its log is `<folder>/native-<n>.log`.
    pub fn start(&mut self) -> Result<()> {
        if self.running() {
            return Err(Error::msg(format!(
                "{} is already running",
                self.spec.worker_id
            )));
        }
        self.starts += 1;
        let mut command = Command::new(&self.binary);
        command
            .arg("native")
            .arg(self.folder.join("kcl.properties"))
            .current_dir(&self.folder)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("KCL_SINK_DIR", "out");
        let log = self.folder.join(format!("native-{}.log", self.starts));
        let name = format!("native-{}-{}", self.spec.worker_id, self.starts);
        self.proc = Some(Proc::spawn(&name, &mut command, &log)?);
        Ok(())
    }

    /// Whether the engine runs.
    pub fn running(&mut self) -> bool {
        self.proc.as_mut().is_some_and(Proc::running)
    }

    /// The engine's PID, once started (every shard's events carry it).
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(Proc::pid)
    }

    /// Sends `signal` to the engine and waits up to `deadline` for it to end. [`Stopped`]'s
    /// `children` is empty: the shards are threads of the one process.
    pub fn stop(&mut self, signal: Signal, deadline: Duration) -> Result<Stopped> {
        let proc = self
            .proc
            .as_mut()
            .ok_or_else(|| Error::msg(format!("{} was never started", self.spec.worker_id)))?;
        let t0 = Instant::now();
        proc.signal(signal)?;
        let status = proc.wait_timeout(deadline);
        Ok(Stopped {
            code: status.and_then(|s| s.code()),
            ended: status.is_some(),
            took: t0.elapsed(),
            children: Vec::new(),
        })
    }

    /// SIGKILL to the engine and its process group.
    pub fn kill(&mut self) {
        if let Some(proc) = self.proc.as_mut() {
            proc.kill();
        }
    }

    /// The current (or last) engine's log file.
    pub fn log_path(&self) -> Option<&Path> {
        self.proc.as_ref().map(Proc::log_path)
    }

    /// Prints the end of the current (or last) engine's log.
    pub fn print_log_tail(&self, lines: usize) {
        if let Some(proc) = &self.proc {
            proc.print_log_tail(lines);
        }
    }
}
