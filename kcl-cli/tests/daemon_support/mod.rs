//! The stand-ins shared by the `kcl daemon` tests: a jar set of two tiny pinned files, a
//! properties file, and a fake `java` that records its arguments, its pid and the signals it gets.
#![allow(dead_code)]
// kill(2) on the processes the tests start.
#![allow(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{kcl, temp_dir};

/// A properties file that passes `kcl properties --check`.
pub const PROPERTIES: &str = "executableName = sh\nstreamName = s\napplicationName = a\n\
AwsCredentialsProvider = DefaultCredentialsProvider\nretrievalMode = POLLING\nmetricsLevel = NONE\n\
shutdownGraceMillis = 30000\nworkerId = w\nregionName = us-east-1\ninitialPositionInStream = TRIM_HORIZON\n";

/// A scratch folder with a manifest, its jars, a properties file and a fake java.
pub struct Setup {
    /// The scratch folder (the current folder of `kcl`).
    pub dir: PathBuf,
    /// The one-line-per-jar manifest.
    pub manifest: PathBuf,
    /// The jar folder.
    pub jars: PathBuf,
    /// `<dir>/my props/app.properties`.
    pub properties: PathBuf,
    /// The fake java (Java 17).
    pub java: PathBuf,
    /// Where the fake java logs its arguments and the signals it gets.
    pub java_log: PathBuf,
}

/// A fake `java`: answers `-version` with `version`; otherwise appends its pid to
/// `$KCL_FAKE_JAVA_LOG.pid`, logs its arguments and waits for a signal (TERM → exit 42,
/// INT → exit 43).
pub fn fake_java(dir: &Path, version: &str) -> PathBuf {
    let path = dir.join(format!("java-{}", version.replace(['.', '"', ' '], "_")));
    let script = format!(
        "#!/bin/sh\n\
         if [ \"$1\" = \"-version\" ]; then echo '{version}' >&2; exit 0; fi\n\
         log=\"$KCL_FAKE_JAVA_LOG\"\n\
         echo $$ >> \"$log.pid\"\n\
         trap 'echo got-term >> \"$log\"; exit 42' TERM\n\
         trap 'echo got-int >> \"$log\"; exit 43' INT\n\
         for a in \"$@\"; do printf '%s\\n' \"$a\" >> \"$log\"; done\n\
         echo ready >> \"$log\"\n\
         while true; do sleep 0.05; done\n"
    );
    std::fs::write(&path, script).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

/// Writes `files` (name, content) into `jars` and returns the manifest pinning them.
pub fn pin_jars(jars: &Path, files: &[(&str, &[u8])]) -> String {
    std::fs::create_dir_all(jars).unwrap();
    let mut manifest = String::new();
    for (artifact, content) in files {
        std::fs::write(jars.join(format!("{artifact}-1.0.jar")), content).unwrap();
        manifest.push_str(&format!(
            "org.example:{artifact}:1.0 {}\n",
            crate::common::sha256(content)
        ));
    }
    manifest
}

/// A new scratch folder with everything `kcl daemon` needs.
pub fn setup(name: &str) -> Setup {
    let dir = temp_dir(name);
    let jars = dir.join("jars");
    let manifest = pin_jars(&jars, &[("alpha", b"a"), ("beta", b"b")]);
    let manifest_path = dir.join("manifest.txt");
    std::fs::write(&manifest_path, manifest).unwrap();
    let props_dir = dir.join("my props");
    std::fs::create_dir_all(&props_dir).unwrap();
    let properties = props_dir.join("app.properties");
    std::fs::write(&properties, PROPERTIES).unwrap();
    let java = fake_java(&dir, "openjdk version \"17.0.9\" 2023-10-17");
    Setup {
        java_log: dir.join("java.log"),
        dir,
        manifest: manifest_path,
        jars,
        properties,
        java,
    }
}

/// `kcl daemon` over the setup, with its fake java.
pub fn daemon(setup: &Setup) -> Command {
    daemon_with(setup, &setup.java)
}

/// `kcl daemon` over the setup, with this java.
pub fn daemon_with(setup: &Setup, java: &Path) -> Command {
    let mut command = daemon_without_paths(setup, java);
    command
        .arg("--properties")
        .arg(&setup.properties)
        .arg("--jars")
        .arg(&setup.jars);
    command
}

/// `kcl daemon` with the setup's manifest and this java, but no --properties and no --jars.
pub fn daemon_without_paths(setup: &Setup, java: &Path) -> Command {
    let mut command = kcl();
    command
        .arg("daemon")
        .arg("--manifest")
        .arg(&setup.manifest)
        .arg("--java")
        .arg(java)
        .env("KCL_FAKE_JAVA_LOG", &setup.java_log)
        // The credentials check before start finds these (the fake java needs none).
        .env("AWS_ACCESS_KEY_ID", "AKIDKCLTEST")
        .env("AWS_SECRET_ACCESS_KEY", "kcl-test")
        .current_dir(&setup.dir);
    command
}

/// Waits up to `limit` for `done`; whether it came true.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if done() {
            return true;
        }
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the fake java logged `ready`, and returns its pid.
pub fn wait_ready(log: &Path) -> u32 {
    assert!(
        wait_until(Duration::from_secs(20), || std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains("ready")),
        "java did not start"
    );
    pids(log)[0]
}

/// The pids the fake java logging to `log` recorded.
pub fn pids(log: &Path) -> Vec<u32> {
    let mut file = log.as_os_str().to_owned();
    file.push(".pid");
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}

/// A process's state letter from /proc (`R`, `S`, `T`, `Z`, ...); `None` once it is gone.
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // pid (comm) STATE ...: comm may hold spaces and parentheses, so look after the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Whether a process still runs (a zombie no longer does).
pub fn running(pid: u32) -> bool {
    process_state(pid).is_some_and(|state| state != 'Z')
}

/// SIGKILLs a process when dropped, so that a failing test leaves no stand-in running.
pub struct KillOnDrop(pub u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if running(self.0) {
            // SAFETY: kill(2) with a plain pid and a valid signal number.
            unsafe {
                libc::kill(self.0 as libc::pid_t, libc::SIGKILL);
            }
        }
    }
}

/// Sends `signal` to `pid`.
pub fn send(signal: libc::c_int, pid: u32) {
    // SAFETY: kill(2) with a plain pid and a valid signal number.
    let sent = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(sent, 0, "kill({pid}, {signal})");
}
