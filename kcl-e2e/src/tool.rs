//! The `kcl` tool driving the daemon (scenario 8, formerly scripts/e2e/tool.py): records put
//! with `kcl put --word …` ([`kcl_put`]) and the daemon started as `kcl daemon --properties FILE
//! --jars JARS --java JAVA` ([`KclDaemon`]). The process tree is then test → kcl → java
//! (MultiLangDaemon, in a process group of its own) → `./child`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use kcl_protocol::Position;

use crate::daemon::{MAIN_CLASS, grace_of, prepare_folder};
use crate::emulators::Emulators;
use crate::error::{Error, Result};
use crate::ledger::{Ledger, Put};
use crate::poll::poll;
use crate::process::Proc;
use crate::procfs;
use crate::settings::{REGION, Settings};
use crate::signal::{Signal, send};
use crate::sink::Sink;
use crate::worker::WorkerSpec;

/// Runs `kcl put --stream STREAM --endpoint ENDPOINT --region REGION --count 1 --word W …` in
/// `folder` (without credentials in its environment: the tool uses its dummy ones for an
/// endpoint) and reads what it reported, one `shard<TAB>sequence<TAB>word` line per record,
/// into a ledger (payload and partition key: the word). (exit code, ledger, its log); the
/// code is `None` if it had not ended after 120 s (it is killed then).
pub fn kcl_put(
    settings: &Settings,
    emulators: &Emulators,
    stream: &str,
    words: &[String],
    folder: &Path,
) -> Result<(Option<i32>, Ledger, PathBuf)> {
    std::fs::create_dir_all(folder)
        .map_err(|e| Error::io(format!("creating {}", folder.display()), e))?;
    let mut command = Command::new(settings.kcl()?);
    command
        .args(["put", "--stream", stream, "--endpoint"])
        .arg(emulators.kinesis_endpoint())
        .args(["--region", REGION, "--count", "1"]);
    for word in words {
        command.args(["--word", word]);
    }
    command.current_dir(folder).env_clear().envs(
        settings
            .process_env()
            .into_iter()
            .filter(|(k, _)| k != "AWS_ACCESS_KEY_ID" && k != "AWS_SECRET_ACCESS_KEY"),
    );
    let log = folder.join("kcl-put.log");
    let mut proc = Proc::spawn("kcl-put", &mut command, &log)?;
    let code = proc
        .wait_timeout(Duration::from_secs(120))
        .and_then(|s| s.code());
    if proc.running() {
        proc.kill();
    }
    let ledger = Ledger::new();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        if let [shard, sequence, word] = fields[..]
            && shard.starts_with("shardId-")
            && !sequence.is_empty()
            && sequence.bytes().all(|b| b.is_ascii_digit())
        {
            ledger.add(Put {
                payload: word.to_owned(),
                partition_key: word.to_owned(),
                shard: shard.to_owned(),
                position: Position::new(sequence, 0),
            });
        }
    }
    Ok((code, ledger, log))
}

/// A daemon worker started through `kcl daemon` (prepared as [`crate::Daemon`] prepares its
/// folder, `kcl.properties` written by `kcl properties`). Dropping it kills `kcl` and the JVM
/// (with their process groups) if they still run.
#[derive(Debug)]
pub struct KclDaemon {
    spec: WorkerSpec,
    folder: PathBuf,
    grace: Duration,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    proc: Option<Proc>,
    jvm: Option<u32>,
    starts: u32,
}

impl KclDaemon {
    /// Prepares the worker's folder (starts nothing): the `kcl daemon` command line with the
    /// cache's jars, `java` resolved on `PATH` and the harness's JVM flags.
    pub fn new(settings: &Settings, emulators: &Emulators, spec: WorkerSpec) -> Result<KclDaemon> {
        let (folder, properties) = prepare_folder(settings, emulators, &spec)?;
        let java = which(&settings.java).unwrap_or_else(|| PathBuf::from(&settings.java));
        let mut argv = vec![
            settings.kcl()?.to_string_lossy().into_owned(),
            "daemon".to_owned(),
            "--properties".to_owned(),
            folder.join("kcl.properties").to_string_lossy().into_owned(),
            "--jars".to_owned(),
            settings.jars()?.to_string_lossy().into_owned(),
            "--java".to_owned(),
            java.to_string_lossy().into_owned(),
        ];
        argv.extend(settings.java_opts.iter().map(|o| format!("--java-opt={o}")));
        Ok(KclDaemon {
            grace: grace_of(&properties),
            spec,
            folder,
            argv,
            env: settings.process_env(),
            proc: None,
            jvm: None,
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

    /// The sink its children write.
    pub fn sink(&self) -> Sink {
        Sink::new(self.folder.join("out"))
    }

    /// `shutdownGraceMillis`.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// Starts `kcl daemon` (its log is `<folder>/kcl-daemon-<n>.log`).
    pub fn start(&mut self) -> Result<()> {
        if self.running() {
            return Err(Error::msg(format!(
                "{} is already running",
                self.spec.worker_id
            )));
        }
        self.starts += 1;
        self.jvm = None;
        let mut command = Command::new(&self.argv[0]);
        command
            .args(&self.argv[1..])
            .current_dir(&self.folder)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        let log = self.folder.join(format!("kcl-daemon-{}.log", self.starts));
        let name = format!("kcl-daemon-{}-{}", self.spec.worker_id, self.starts);
        self.proc = Some(Proc::spawn(&name, &mut command, &log)?);
        Ok(())
    }

    /// Whether `kcl` runs.
    pub fn running(&mut self) -> bool {
        self.proc.as_mut().is_some_and(Proc::running)
    }

    /// `kcl`'s PID, once started.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(Proc::pid)
    }

    /// The JVM `kcl` started (its child running the MultiLangDaemon), waited for up to
    /// `deadline`; remembered for [`KclDaemon::children`] and the clean-up.
    pub fn find_jvm(&mut self, deadline: Duration) -> Option<u32> {
        let kcl = self.pid()?;
        let found = poll(
            deadline,
            Duration::from_millis(100),
            || {
                procfs::children_of(kcl).into_iter().find(|pid| {
                    std::fs::read(format!("/proc/{pid}/cmdline"))
                        .is_ok_and(|c| String::from_utf8_lossy(&c).contains(MAIN_CLASS))
                })
            },
            Option::is_some,
        );
        if found.is_some() {
            self.jvm = found;
        }
        found
    }

    /// Whether the JVM found by [`KclDaemon::find_jvm`] still runs.
    pub fn jvm_alive(&self) -> bool {
        self.jvm.is_some_and(procfs::alive)
    }

    /// The live record processors (the JVM's children, `kcl`'s grandchildren).
    pub fn children(&self) -> Vec<u32> {
        match self.jvm {
            Some(jvm) if procfs::alive(jvm) => procfs::children_of(jvm),
            _ => Vec::new(),
        }
    }

    /// Sends `signal` to `kcl` only and waits up to `deadline` for it to end: its exit status
    /// (`None` if it still runs) and how long it took.
    pub fn stop(
        &mut self,
        signal: Signal,
        deadline: Duration,
    ) -> Result<(Option<ExitStatus>, Duration)> {
        let proc = self
            .proc
            .as_mut()
            .ok_or_else(|| Error::msg(format!("{} was never started", self.spec.worker_id)))?;
        let t0 = Instant::now();
        proc.signal(signal)?;
        let status = proc.wait_timeout(deadline);
        Ok((status, t0.elapsed()))
    }

    /// Kills the JVM (with its group) and `kcl` (with its group) if they still run.
    pub fn kill(&mut self) {
        if let Some(jvm) = self.jvm.filter(|&p| procfs::alive(p)) {
            let signal = if procfs::group_of(jvm) == Some(jvm) {
                Signal::KillGroup
            } else {
                Signal::Kill
            };
            let _ = send(jvm, signal);
        }
        if let Some(proc) = self.proc.as_mut() {
            proc.kill();
        }
    }

    /// Prints the end of the current (or last) `kcl daemon` log.
    pub fn print_log_tail(&self, lines: usize) {
        if let Some(proc) = &self.proc {
            proc.print_log_tail(lines);
        }
    }
}

impl Drop for KclDaemon {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_log_tail(40);
        }
        self.kill();
    }
}

/// `program` found on `PATH` (or itself, if it names a file).
fn which(program: &str) -> Option<PathBuf> {
    let direct = Path::new(program);
    if program.contains('/') {
        return direct.is_file().then(|| direct.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}
