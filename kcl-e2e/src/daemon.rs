//! The real Java MultiLangDaemon (KCL 3.1.3) as one worker of an application, run as
//! scripts/e2e/daemon.py runs it.
//!
//! A worker owns a folder holding its properties file `kcl.properties`, a symlink `child` to
//! the record-processor binary and the sink folder `out/`. The daemon runs with that folder as
//! its working directory, so `executableName = ./child out` needs no absolute path (the daemon
//! splits executableName on spaces).
//!
//! The properties file is written by the kcl tool, `kcl properties --output FILE --force`: the
//! keys it has a flag for through that flag, every other one as `--set KEY=VALUE`. A non-zero
//! exit or a warning of the tool is an error with the tool's own words; the file is then read
//! back and must hold exactly the wanted keys and values. The classpath is the cache's jars
//! checked by `kcl jars verify` (every SHA-256 of the KCL 3.1.3 list) and listed by `kcl jars
//! path --classpath`; java comes from `PATH` (or `KCL_E2E_JAVA`).
//!
//! Property choices (the Python suite's, verified against the emulators): POLLING (fan-out
//! would need SubscribeToShard over HTTP/2 event streams), a stable workerId, short failover,
//! assignment, shard-sync and parent-poll intervals, `metricsLevel = NONE`, and a 20 s
//! `shutdownGraceMillis` for the SIGTERM hook.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::emulators::Emulators;
use crate::error::{Error, Result};
use crate::process::Proc;
use crate::procfs;
use crate::settings::{REGION, Settings};
use crate::signal::Signal;
use crate::worker::{Stopped, WorkerSpec};

/// The daemon's main class.
pub const MAIN_CLASS: &str = "software.amazon.kinesis.multilang.MultiLangDaemon";

/// The properties every worker gets (before the per-worker ones and the scenario's extras).
pub const BASE_PROPERTIES: [(&str, &str); 12] = [
    ("regionName", REGION),
    ("AwsCredentialsProvider", "DefaultCredentialsProvider"),
    ("initialPositionInStream", "TRIM_HORIZON"),
    ("retrievalMode", "POLLING"),
    ("idleTimeBetweenReadsInMillis", "250"),
    ("maxRecords", "100"),
    ("failoverTimeMillis", "3000"),
    ("leaseAssignmentIntervalMillis", "1000"),
    ("shardSyncIntervalMillis", "2000"),
    ("parentShardPollIntervalMillis", "1000"),
    ("metricsLevel", "NONE"),
    ("shutdownGraceMillis", "20000"),
];

/// The keys `kcl properties` has a flag for, with the flag and whether its value is spelled
/// as a flag choice (`TRIM_HORIZON` → `trim-horizon`). Every other key goes through `--set`.
const FLAGS: [(&str, &str, bool); 13] = [
    ("streamName", "--stream", false),
    ("applicationName", "--application", false),
    ("executableName", "--executable", false),
    ("regionName", "--region", false),
    ("kinesisEndpoint", "--kinesis-endpoint", false),
    ("dynamoDBEndpoint", "--dynamodb-endpoint", false),
    ("initialPositionInStream", "--initial-position", true),
    ("initialPositionInStreamExtended", "--at-timestamp", false),
    ("retrievalMode", "--retrieval-mode", true),
    ("metricsLevel", "--metrics", true),
    ("AwsCredentialsProvider", "--credentials-provider", false),
    ("workerId", "--worker-id", false),
    ("shutdownGraceMillis", "--shutdown-grace-millis", false),
];

/// The `kcl properties` arguments (after the program) that write `wanted` to `path`.
pub fn properties_args(path: &Path, wanted: &BTreeMap<String, String>) -> Vec<String> {
    let mut args = vec![
        "properties".to_owned(),
        "--output".to_owned(),
        path.display().to_string(),
        "--force".to_owned(),
    ];
    if wanted.contains_key("initialPositionInStreamExtended") {
        // The tool writes the timestamp (and no initialPositionInStream) for this choice.
        args.extend(["--initial-position".to_owned(), "at-timestamp".to_owned()]);
    }
    for (key, value) in wanted {
        match FLAGS.iter().find(|(k, _, _)| k == key) {
            Some((_, flag, choice)) => {
                args.push((*flag).to_owned());
                args.push(if *choice {
                    value.to_lowercase().replace('_', "-")
                } else {
                    value.clone()
                });
            }
            None => {
                args.push("--set".to_owned());
                args.push(format!("{key}={value}"));
            }
        }
    }
    args
}

/// The `key = value` lines of a plain properties file (ISO-8859-1; blank lines and `#` / `!`
/// comments skipped). A line without `=`, or with a `\` escape or continuation, is an error:
/// enough for the files `kcl properties` writes here.
pub fn read_properties(path: &Path) -> Result<BTreeMap<String, String>> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    let text: String = bytes.iter().map(|&b| char::from(b)).collect();
    let mut props = BTreeMap::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        match line.split_once('=') {
            Some((key, value)) if !line.contains('\\') => {
                props.insert(key.trim().to_owned(), value.trim().to_owned());
            }
            _ => {
                return Err(Error::msg(format!(
                    "{}:{}: not a plain `key = value` line: {line:?}",
                    path.display(),
                    number + 1
                )));
            }
        }
    }
    Ok(props)
}

/// The daemon's classpath: the cache's jars checked by `kcl jars verify` against the KCL 3.1.3
/// list pinned in kcl-cli (a missing, extra or changed jar fails), then exactly the jars of that
/// list (`kcl jars path --classpath`), never `JARS/*`. Returns (classpath, verify's words).
pub fn classpath(settings: &Settings) -> Result<(String, String)> {
    let kcl = settings.kcl()?;
    let jars = settings.jars()?;
    let verify = Command::new(&kcl)
        .arg("jars")
        .arg("verify")
        .arg(&jars)
        .output()
        .map_err(|e| Error::io(format!("running {} jars verify", kcl.display()), e))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    if !verify.status.success() {
        return Err(Error::msg(format!(
            "kcl jars verify {}: {}: {}",
            jars.display(),
            verify.status,
            said.trim()
        )));
    }
    let path = Command::new(&kcl)
        .args(["jars", "path", "--classpath", "--dir"])
        .arg(&jars)
        .output()
        .map_err(|e| Error::io(format!("running {} jars path", kcl.display()), e))?;
    let classpath = String::from_utf8_lossy(&path.stdout).trim().to_owned();
    if !path.status.success() || classpath.is_empty() {
        return Err(Error::msg(format!(
            "kcl jars path --classpath: {}: {}",
            path.status,
            String::from_utf8_lossy(&path.stderr).trim()
        )));
    }
    Ok((classpath, said.trim().to_owned()))
}

/// One workerId of an application on the real MultiLangDaemon; startable several times (same
/// folder, workerId and sink). Dropping it kills a daemon still running, with its children.
#[derive(Debug)]
pub struct Daemon {
    spec: WorkerSpec,
    /// `kcl daemon --native` (the kcl tool's path) instead of the Java daemon.
    native: Option<PathBuf>,
    folder: PathBuf,
    properties: BTreeMap<String, String>,
    java: String,
    java_opts: Vec<String>,
    classpath: String,
    env: Vec<(String, String)>,
    proc: Option<Proc>,
    starts: u32,
}

impl Daemon {
    /// Prepares the worker's folder `<run>/<spec.folder>`: the `child` symlink, `out/`, and
    /// `kcl.properties` written by `kcl properties` (read back and compared), with the
    /// emulators' endpoints. Checks the jars (`kcl jars verify`). Starts nothing.
    pub fn new(settings: &Settings, emulators: &Emulators, spec: WorkerSpec) -> Result<Daemon> {
        let (folder, properties) = prepare_folder(settings, emulators, &spec)?;
        let (classpath, _) = classpath(settings)?;
        Ok(Daemon {
            spec,
            native: None,
            folder,
            properties,
            java: settings.java.clone(),
            java_opts: settings.java_opts.clone(),
            classpath,
            env: settings.process_env(),
            proc: None,
            starts: 0,
        })
    }

    /// The same worker on `kcl daemon --native` (the MultiLangDaemon without Java: the same
    /// folder, properties file and children), run as `kcl daemon --native --properties
    /// <folder>/kcl.properties` in its folder; its log is `<folder>/daemon-<n>.log` too.
    pub fn new_native(
        settings: &Settings,
        emulators: &Emulators,
        spec: WorkerSpec,
    ) -> Result<Daemon> {
        let (folder, properties) = prepare_folder(settings, emulators, &spec)?;
        Ok(Daemon {
            spec,
            native: Some(settings.kcl_engine()?),
            folder,
            properties,
            java: settings.java.clone(),
            java_opts: Vec::new(),
            classpath: String::new(),
            env: settings.process_env(),
            proc: None,
            starts: 0,
        })
    }

    /// Whether it runs `kcl daemon --native` rather than the Java daemon.
    pub fn is_native(&self) -> bool {
        self.native.is_some()
    }

    /// What it was made from.
    pub fn spec(&self) -> &WorkerSpec {
        &self.spec
    }

    /// The worker's folder.
    pub fn folder(&self) -> &Path {
        &self.folder
    }

    /// The sink folder its children write (`<folder>/out`, given to them as `out`).
    pub fn out_dir(&self) -> PathBuf {
        self.folder.join("out")
    }

    /// The properties file's keys and values, as read back.
    pub fn properties(&self) -> &BTreeMap<String, String> {
        &self.properties
    }

    /// `shutdownGraceMillis`: how long the SIGTERM hook waits for the graceful shutdown.
    pub fn grace(&self) -> Duration {
        grace_of(&self.properties)
    }

    /// Sets `key=value` in its environment (from the next start on; the daemon's children
    /// inherit it), e.g. `KCL_SINK_CHECKPOINT_LAG` for file_sink.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Starts the daemon JVM (one at a time); its log is `<folder>/daemon-<n>.log`.
    pub fn start(&mut self) -> Result<()> {
        if self.running() {
            return Err(Error::msg(format!(
                "{} is already running",
                self.spec.worker_id
            )));
        }
        self.starts += 1;
        if let Some(kcl) = &self.native {
            let mut command = Command::new(kcl);
            command
                .args(["daemon", "--native", "--properties"])
                .arg(self.folder.join("kcl.properties"))
                .current_dir(&self.folder)
                .env_clear()
                .envs(self.env.iter().map(|(k, v)| (k, v)));
            let log = self.folder.join(format!("daemon-{}.log", self.starts));
            let name = format!("native-daemon-{}-{}", self.spec.worker_id, self.starts);
            self.proc = Some(Proc::spawn(&name, &mut command, &log)?);
            return Ok(());
        }
        let mut java = Command::new(&self.java);
        java.args(&self.java_opts)
            .arg("-cp")
            .arg(&self.classpath)
            .arg(MAIN_CLASS)
            .arg("--properties-file")
            // Absolute: the daemon tries a classpath resource first.
            .arg(self.folder.join("kcl.properties"))
            .current_dir(&self.folder)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        let log = self.folder.join(format!("daemon-{}.log", self.starts));
        let name = format!("daemon-{}-{}", self.spec.worker_id, self.starts);
        self.proc = Some(Proc::spawn(&name, &mut java, &log).map_err(|e| {
            Error::missing(
                e,
                "java (17+) must be on PATH or KCL_E2E_JAVA (scripts/e2e.sh installs it)",
            )
        })?);
        Ok(())
    }

    /// Whether the daemon runs.
    pub fn running(&mut self) -> bool {
        self.proc.as_mut().is_some_and(Proc::running)
    }

    /// The daemon's PID, once started.
    pub fn pid(&self) -> Option<u32> {
        self.proc.as_ref().map(Proc::pid)
    }

    /// The live record processors (direct children of the running daemon).
    pub fn children(&mut self) -> Vec<u32> {
        match self.proc.as_mut() {
            Some(proc) => {
                if proc.running() {
                    procfs::children_of(proc.pid())
                } else {
                    Vec::new()
                }
            }
            None => Vec::new(),
        }
    }

    /// Sends `signal` to the daemon (its PID only: the JVM's shutdown hook stops the children)
    /// and waits up to `deadline` for it to end. Its children are not touched: a scenario
    /// checks they ended by themselves (whatever is left is killed when the worker is dropped).
    pub fn stop(&mut self, signal: Signal, deadline: Duration) -> Result<Stopped> {
        let proc = self
            .proc
            .as_mut()
            .ok_or_else(|| Error::msg(format!("{} was never started", self.spec.worker_id)))?;
        let children = if proc.running() {
            procfs::children_of(proc.pid())
        } else {
            Vec::new()
        };
        let t0 = Instant::now();
        proc.signal(signal)?;
        let status = proc.wait_timeout(deadline);
        Ok(Stopped {
            code: status.and_then(|s| s.code()),
            ended: status.is_some(),
            took: t0.elapsed(),
            children,
        })
    }

    /// Waits up to `deadline` for the daemon to end by itself (e.g. after one of its children
    /// was killed): its exit status, or `None` if it still runs (or was never started).
    pub fn wait(&mut self, deadline: Duration) -> Option<std::process::ExitStatus> {
        self.proc
            .as_mut()
            .and_then(|proc| proc.wait_timeout(deadline))
    }

    /// Sends `signal` to the daemon's whole process group (the JVM and every record processor
    /// in it, as a terminal's Ctrl-C does) and waits up to `deadline` for the daemon to end.
    pub fn signal_group(&mut self, signal: Signal, deadline: Duration) -> Result<Stopped> {
        let proc = self
            .proc
            .as_mut()
            .ok_or_else(|| Error::msg(format!("{} was never started", self.spec.worker_id)))?;
        let children = if proc.running() {
            procfs::children_of(proc.pid())
        } else {
            Vec::new()
        };
        let t0 = Instant::now();
        if proc.running() {
            crate::signal::send_to_group(proc.pid(), signal)
                .map_err(|e| Error::io(format!("{signal:?} to the group of {}", proc.name()), e))?;
        }
        let status = proc.wait_timeout(deadline);
        Ok(Stopped {
            code: status.and_then(|s| s.code()),
            ended: status.is_some(),
            took: t0.elapsed(),
            children,
        })
    }

    /// SIGKILL to the daemon and its process group (children included); the PIDs of the
    /// children it had just before.
    pub fn kill(&mut self) -> Vec<u32> {
        let children = self.children();
        if let Some(proc) = self.proc.as_mut() {
            proc.kill();
        }
        if self.native.is_some() {
            // `kcl daemon --native` starts each child in a process group of its own.
            for &child in &children {
                let _ = crate::signal::send(child, Signal::Kill);
            }
        }
        children
    }

    /// The current (or last) daemon's log file.
    pub fn log_path(&self) -> Option<&Path> {
        self.proc.as_ref().map(Proc::log_path)
    }

    /// Prints the end of the current (or last) daemon's log.
    pub fn print_log_tail(&self, lines: usize) {
        if let Some(proc) = &self.proc {
            proc.print_log_tail(lines);
        }
    }
}

/// Prepares a worker's folder `<run>/<spec.folder>` as either engine runs in it: the `child`
/// symlink to the processor binary, `out/`, and `kcl.properties` written by `kcl properties`
/// (read back and compared) from [`BASE_PROPERTIES`], the worker's names, the emulators'
/// endpoints and the spec's extras (an `initialPositionInStreamExtended` among them drops the
/// base `initialPositionInStream`). The folder and the properties as read back.
pub fn prepare_folder(
    settings: &Settings,
    emulators: &Emulators,
    spec: &WorkerSpec,
) -> Result<(PathBuf, BTreeMap<String, String>)> {
    let folder = settings.run_dir.join(&spec.folder);
    std::fs::create_dir_all(folder.join("out"))
        .map_err(|e| Error::io(format!("creating {}", folder.display()), e))?;
    let link = folder.join("child");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&spec.processor.binary, &link)
        .map_err(|e| Error::io(format!("linking {}", link.display()), e))?;
    let mut wanted: BTreeMap<String, String> = BASE_PROPERTIES
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut executable = vec!["./child".to_owned()];
    executable.extend(spec.processor.args.iter().cloned());
    for (key, value) in [
        ("executableName", executable.join(" ")),
        ("streamName", spec.stream.clone()),
        ("applicationName", spec.application.clone()),
        ("workerId", spec.worker_id.clone()),
        ("kinesisEndpoint", emulators.kinesis_endpoint()),
        ("dynamoDBEndpoint", emulators.dynamodb_endpoint()),
    ] {
        wanted.insert(key.to_owned(), value);
    }
    wanted.extend(spec.extra_properties.clone());
    // Both keys set one field (the daemon applies them in no order the file decides, and the
    // native engine refuses the pair): an initial timestamp replaces the base position.
    let named = |key: &str| spec.extra_properties.iter().any(|(k, _)| k == key);
    if named("initialPositionInStreamExtended") && !named("initialPositionInStream") {
        wanted.remove("initialPositionInStream");
    }
    let properties = write_properties(&settings.kcl()?, &folder, &wanted)?;
    Ok((folder, properties))
}

/// The `shutdownGraceMillis` of a properties file (0 when absent).
pub fn grace_of(properties: &BTreeMap<String, String>) -> Duration {
    let millis = properties
        .get("shutdownGraceMillis")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Duration::from_millis(millis)
}

/// Writes `<folder>/kcl.properties` with `kcl properties` (run in `folder`, the daemon's
/// working directory, so the tool checks that the relative executableName exists there) and
/// returns what the file holds; an error with the tool's stderr when it exits non-zero, warns,
/// or wrote other keys or values.
pub fn write_properties(
    kcl: &Path,
    folder: &Path,
    wanted: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let path = folder.join("kcl.properties");
    let done = Command::new(kcl)
        .args(properties_args(&path, wanted))
        .current_dir(folder)
        .output()
        .map_err(|e| Error::io(format!("running {} properties", kcl.display()), e))?;
    let stderr = String::from_utf8_lossy(&done.stderr).trim().to_owned();
    if !done.status.success() || stderr.contains("warning:") {
        return Err(Error::msg(format!(
            "kcl properties for {}: {}: {stderr}",
            folder.display(),
            done.status
        )));
    }
    let written = read_properties(&path)?;
    if written != *wanted {
        let mut wrong = Vec::new();
        for key in wanted.keys().chain(written.keys()) {
            if wanted.get(key) != written.get(key)
                && !wrong
                    .iter()
                    .any(|w: &String| w.starts_with(&format!("{key}:")))
            {
                wrong.push(format!(
                    "{key}: wanted {:?}, written {:?}",
                    wanted.get(key),
                    written.get(key)
                ));
            }
        }
        return Err(Error::msg(format!(
            "kcl properties wrote {} with other values: {}",
            path.display(),
            wrong.join("; ")
        )));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_for_known_keys_and_set_for_the_others() {
        let wanted = BTreeMap::from([
            (
                "initialPositionInStream".to_owned(),
                "TRIM_HORIZON".to_owned(),
            ),
            ("maxRecords".to_owned(), "100".to_owned()),
            ("streamName".to_owned(), "s".to_owned()),
        ]);
        let args = properties_args(Path::new("/x/kcl.properties"), &wanted);
        assert_eq!(
            args,
            [
                "properties",
                "--output",
                "/x/kcl.properties",
                "--force",
                "--initial-position",
                "trim-horizon",
                "--set",
                "maxRecords=100",
                "--stream",
                "s"
            ]
        );
    }

    #[test]
    fn an_initial_timestamp_is_the_tools_at_timestamp_choice() {
        let wanted = BTreeMap::from([(
            "initialPositionInStreamExtended".to_owned(),
            "1700000000".to_owned(),
        )]);
        let args = properties_args(Path::new("/x/kcl.properties"), &wanted);
        assert_eq!(
            args[4..],
            [
                "--initial-position",
                "at-timestamp",
                "--at-timestamp",
                "1700000000"
            ]
        );
    }

    #[test]
    fn plain_properties_read_back() {
        let path =
            std::env::temp_dir().join(format!("kcl-e2e-props-{}.properties", std::process::id()));
        std::fs::write(&path, "# comment\n\nstreamName = s\nmaxRecords=100\n").unwrap();
        let props = read_properties(&path).unwrap();
        assert_eq!(props["streamName"], "s");
        assert_eq!(props["maxRecords"], "100");
        std::fs::write(&path, "a = b\\\n").unwrap();
        assert!(read_properties(&path).is_err());
        let _ = std::fs::remove_file(path);
    }
}
