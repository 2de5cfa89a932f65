//! Processes the harness starts: each in its own process group, its output in a log file,
//! signalled and stopped by PID, and killed with its whole group when dropped (also while a
//! test panics), so nothing it started outlives the test.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::procfs;
use crate::signal::{Signal, send};

/// A started process (the leader of its own process group).
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Starts `command` with stdin from `/dev/null` and stdout and stderr appended to `log`, as
    /// the leader of a new process group (a Ctrl-C in the terminal reaches the test only; the
    /// harness stops everything by PID).
    pub fn spawn(name: &str, command: &mut Command, log: &Path) -> Result<Proc> {
        if let Some(folder) = log.parent() {
            std::fs::create_dir_all(folder)
                .map_err(|e| Error::io(format!("creating {}", folder.display()), e))?;
        }
        let file = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| Error::io(format!("opening {}", log.display()), e))?;
        let err = file
            .try_clone()
            .map_err(|e| Error::io(format!("opening {}", log.display()), e))?;
        use std::os::unix::process::CommandExt;
        let child = command
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| Error::io(format!("{name}: starting {:?}", command.get_program()), e))?;
        Ok(Proc {
            name: name.to_owned(),
            child,
            log: log.to_path_buf(),
            status: None,
        })
    }

    /// The name given at start.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The PID (also the process group's id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log file (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read(&self.log).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Prints the end of the log to stderr, framed with its path.
    pub fn print_log_tail(&self, lines: usize) {
        eprintln!(
            "  ---- last {lines} lines of {} ({})",
            self.log.display(),
            self.name
        );
        for line in self.log_tail(lines).lines() {
            eprintln!("  | {}", line.chars().take(400).collect::<String>());
        }
        eprintln!("  ----");
    }

    /// The exit status, once it ended (reaped here).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// Sends `signal` to this process (its PID, not its group); nothing if it ended.
    pub fn signal(&mut self, signal: Signal) -> Result<()> {
        if self.running() {
            send(self.pid(), signal)
                .map_err(|e| Error::io(format!("{signal:?} to {}", self.name), e))?;
        }
        Ok(())
    }

    /// Waits up to `timeout` for it to end; its status, or `None` if it still runs.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal`, waits up to `timeout`, then kills the whole group; the exit status.
    pub fn stop(&mut self, signal: Signal, timeout: Duration) -> ExitStatus {
        let _ = self.signal(signal);
        match self.wait_timeout(timeout) {
            Some(status) => {
                self.kill_group();
                status
            }
            None => self.kill(),
        }
    }

    /// SIGKILL to the whole process group (the process and whatever it started that stayed in
    /// its group), then waits for the process; its exit status.
    pub fn kill(&mut self) -> ExitStatus {
        self.kill_group();
        match self.status {
            Some(status) => status,
            None => {
                let status = self.child.wait().expect("waiting for a killed child");
                self.status = Some(status);
                self.kill_group(); // anything it started in its last moment
                status
            }
        }
    }

    /// SIGKILL to the group while the leader is unreaped; once it is reaped, to each member
    /// found in `/proc` by PID (a process whose PID is the group id would be a new leader that
    /// reused the number, never ours).
    fn kill_group(&mut self) {
        let group = self.pid();
        if self.status.is_none() {
            let _ = send(group, Signal::KillGroup);
            return;
        }
        for pid in procfs::group_members(group) {
            if pid != group {
                let _ = send(pid, Signal::Kill);
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("kcl-e2e-proc-{name}-{}.log", std::process::id()))
    }

    #[test]
    fn dropping_kills_the_group_even_while_panicking() {
        let path = log("drop");
        // A shell with a grandchild in its group: both must be gone after the panic.
        let mut command = Command::new("sh");
        command.args(["-c", "sleep 300 & echo $!; wait"]);
        let proc = Proc::spawn("sleeper", &mut command, &path).unwrap();
        let leader = proc.pid();
        let grandchild = poll_pid(&path);
        assert!(procfs::alive(leader) && procfs::alive(grandchild));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _held = proc;
            panic!("a failing scenario");
        }));
        assert!(outcome.is_err());
        let end = Instant::now() + Duration::from_secs(10);
        while procfs::alive(grandchild) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!procfs::alive(leader), "the leader {leader} survived");
        assert!(
            !procfs::alive(grandchild),
            "the grandchild {grandchild} survived"
        );
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_signal_stops_it_and_the_status_is_kept() {
        let path = log("term");
        let mut command = Command::new("sleep");
        command.arg("300");
        let mut proc = Proc::spawn("sleep", &mut command, &path).unwrap();
        assert!(proc.running());
        let status = proc.stop(Signal::Term, Duration::from_secs(10));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGTERM));
        assert!(!proc.running());
        assert_eq!(proc.try_status(), Some(status));
        let _ = std::fs::remove_file(path);
    }

    /// The PID the shell printed into its log.
    fn poll_pid(path: &Path) -> u32 {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if let Some(pid) = text.lines().next().and_then(|l| l.trim().parse().ok()) {
                return pid;
            }
            assert!(Instant::now() < end, "the shell printed no PID");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
