//! Drives one child through a workload like the daemon does: one action at a time, every
//! checkpoint request answered at once (success), every status awaited and checked.

use std::io::{self, BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use kcl_protocol::Action;
use kcl_protocol::daemon::{ChildLine, parse_child_line};

use crate::proc_stats;
use crate::workload::{BatchLine, initialize_line};

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub records: u64,
    pub protocol_bytes: u64,
    /// From the first batch written to the last status read.
    pub elapsed: Duration,
    /// From spawning the child to its `initialize` status.
    pub startup: Duration,
    pub peak_rss_kib: Option<u64>,
    pub cpu: Option<Duration>,
    pub checkpoints: u64,
    /// The child's context switches (voluntary and involuntary) up to the last status.
    pub child_switches: Option<u64>,
    /// What the driver itself used from the first batch to the last status.
    pub driver: Option<proc_stats::SelfUsage>,
}

pub struct Running {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    line: Vec<u8>,
}

fn protocol_error(message: String) -> io::Error {
    io::Error::other(message)
}

impl Running {
    pub fn spawn(command: &[String], stderr_to: Stdio) -> io::Result<(Running, Instant)> {
        let started = Instant::now();
        let mut child = Command::new(&command[0])
            .args(&command[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr_to)
            .spawn()?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::with_capacity(64 * 1024, child.stdout.take().expect("piped"));
        Ok((
            Running {
                child,
                stdin,
                stdout,
                line: Vec::with_capacity(256),
            },
            started,
        ))
    }

    /// Reads child lines until the status for `action`; answers checkpoint requests. Returns
    /// the checkpoint requests' sequence numbers.
    fn await_status(
        &mut self,
        action: Action,
        checkpoints: &mut Vec<Option<String>>,
    ) -> io::Result<()> {
        loop {
            self.line.clear();
            if self.stdout.read_until(b'\n', &mut self.line)? == 0 {
                return Err(protocol_error(format!(
                    "child closed stdout while {action} was pending"
                )));
            }
            match parse_child_line(&self.line) {
                ChildLine::Status { response_for } => {
                    return match response_for.as_deref() {
                        Some(r) if r == action.as_str() => Ok(()),
                        other => Err(protocol_error(format!(
                            "status for {other:?} while {action} was pending: the daemon would exit 1"
                        ))),
                    };
                }
                ChildLine::Checkpoint(request) => {
                    checkpoints.push(request.sequence_number.clone());
                    let mut reply = request.reply_json(None).into_bytes();
                    reply.push(b'\n');
                    self.stdin.write_all(&reply)?;
                    self.stdin.flush()?;
                }
                _ => {}
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn stdin_mut(&mut self) -> &mut ChildStdin {
        &mut self.stdin
    }

    pub(crate) fn stdout_mut(&mut self) -> &mut BufReader<ChildStdout> {
        &mut self.stdout
    }

    /// Kills the child with SIGKILL (no chance to flush or answer anything) and reaps it.
    pub fn kill(self) -> io::Result<std::process::ExitStatus> {
        let Running {
            mut child, stdin, ..
        } = self;
        child.kill()?;
        drop(stdin);
        child.wait()
    }

    /// Closes stdin and waits for the child to exit.
    pub fn finish(self) -> io::Result<std::process::ExitStatus> {
        let Running {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        child.wait()
    }
}

/// Runs the workload through `command`; checks that the child checkpointed at the last record
/// of every batch (so it read each batch to its end).
pub fn run(command: &[String], batches: &[BatchLine]) -> io::Result<Measurement> {
    let (mut child, spawned) = Running::spawn(command, Stdio::null())?;
    let mut checkpoints = Vec::new();
    child.stdin.write_all(&initialize_line())?;
    child.stdin.flush()?;
    child.await_status(Action::Initialize, &mut checkpoints)?;
    let startup = spawned.elapsed();

    let driver_before = proc_stats::self_usage();
    let started = Instant::now();
    let mut protocol_bytes = 0u64;
    let mut records = 0u64;
    for (index, batch) in batches.iter().enumerate() {
        child.stdin.write_all(&batch.line)?;
        child.stdin.flush()?;
        protocol_bytes += batch.line.len() as u64;
        records += batch.records as u64;
        let before = checkpoints.len();
        child.await_status(Action::ProcessRecords, &mut checkpoints)?;
        let last = checkpoints[before..].last().cloned().flatten();
        if last.as_deref() != Some(batch.last_sequence.as_str()) {
            return Err(protocol_error(format!(
                "batch {index}: expected a checkpoint at {}, got {:?}",
                batch.last_sequence,
                &checkpoints[before..]
            )));
        }
    }
    let elapsed = started.elapsed();
    let driver = proc_stats::self_usage().map(|after| after.since(driver_before));
    let pid = child.pid();
    let child_switches = proc_stats::context_switches(pid);
    let peak_rss_kib = proc_stats::peak_rss_kib(pid);
    if std::env::var_os("KCL_BENCH_SMAPS").is_some() {
        eprintln!(
            "resident KiB by mapping: {:?}",
            proc_stats::resident_by_mapping(pid)
        );
    }
    let cpu = proc_stats::cpu_time(pid);

    child.stdin.write_all(b"{\"action\":\"leaseLost\"}\n")?;
    child.stdin.flush()?;
    child.await_status(Action::LeaseLost, &mut checkpoints)?;
    let Running {
        mut child, stdin, ..
    } = child;
    drop(stdin);
    let status = child.wait()?;
    if !status.success() {
        return Err(protocol_error(format!("child exited with {status}")));
    }
    Ok(Measurement {
        records,
        protocol_bytes,
        elapsed,
        startup,
        peak_rss_kib,
        cpu,
        checkpoints: checkpoints.len() as u64,
        child_switches,
        driver,
    })
}

/// The pipe's ceiling: `cat` with its output to `/dev/null` reads every line and does nothing
/// with it, so the lines cross one pipe, as they do to a child; timed from the first byte
/// written to its exit after the end of its input.
pub fn run_pipe(batches: &[BatchLine]) -> io::Result<Measurement> {
    let started_spawn = Instant::now();
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    let startup = started_spawn.elapsed();
    let expected: u64 = batches.iter().map(|b| b.line.len() as u64).sum();
    let started = Instant::now();
    for batch in batches {
        stdin.write_all(&batch.line)?;
    }
    drop(stdin);
    let status = child.wait()?;
    let elapsed = started.elapsed();
    if !status.success() {
        return Err(protocol_error(format!("cat exited with {status}")));
    }
    Ok(Measurement {
        records: batches.iter().map(|b| b.records as u64).sum(),
        protocol_bytes: expected,
        elapsed,
        startup,
        peak_rss_kib: None,
        cpu: None,
        checkpoints: 0,
        child_switches: None,
        driver: None,
    })
}
