//! One child process and the daemon's side of the protocol with it, exactly the Java
//! MultiLangDaemon's rhythm: one action at a time; while an action is outstanding, checkpoint
//! requests are answered at once and the first status ends the wait; the status must name the
//! action; lines the daemon cannot parse are skipped (they do not reset `timeoutInSeconds`);
//! valid messages of another kind are read and ignored; stderr is drained all along, line by
//! line, to the log. Lines go to the child's stdin on a writer thread, as the daemon's
//! `MessageWriter` writes them: a child that stops reading its stdin blocks that thread, not
//! the wait for its status, so `timeoutInSeconds` still ends it.

use std::io::{BufReader, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use kcl_protocol::daemon::{CheckpointRequest, ChildLine, LineReader, parse_child_line};

/// Lines read from the child's stdout by its reader thread, and the writer thread's failures.
enum Read {
    Line(Vec<u8>),
    End(Option<String>),
    /// Writing to the child's stdin failed (the reason); the writer thread has ended.
    WriteFailed(String),
}

/// Why an action failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The Java daemon would `System.exit(1)` after closing the child (its stdin closed, its
    /// output drained, its exit awaited).
    Exit(String),
    /// `timeoutInSeconds` passed without a message: the Java daemon would `Runtime.halt(1)`.
    Timeout(String),
}

impl Failure {
    pub(crate) fn reason(&self) -> &str {
        match self {
            Failure::Exit(reason) | Failure::Timeout(reason) => reason,
        }
    }
}

/// A running child of one shard.
pub(crate) struct ChildProcess {
    shard: String,
    child: Child,
    /// To the writer thread: what is written (for the error) and the framed line. Dropped to
    /// close the child's stdin (after the lines queued before).
    writer: Option<Sender<(String, Vec<u8>)>>,
    lines: Receiver<Read>,
    /// The reader thread reported the end of the child's stdout.
    stdout_ended: bool,
    stderr_done: Receiver<()>,
    timeout: Option<Duration>,
    skipped: u64,
}

/// Skipped stdout lines logged one by one; later ones are only counted.
const SKIPPED_SHOWN: u64 = 20;

/// How often a wait for a status without `timeoutInSeconds` is logged (doubling).
const FIRST_NOTICE: Duration = Duration::from_secs(60);

impl ChildProcess {
    /// Starts `command` (program and arguments) for `shard`, with piped stdin, stdout and
    /// stderr, in a process group of its own (a Ctrl-C at a terminal reaches the engine, which
    /// then shuts the children down gracefully, not the children themselves).
    pub(crate) fn spawn(
        shard: &str,
        command: &[String],
        timeout: Option<Duration>,
    ) -> std::io::Result<Self> {
        let (program, args) = command.split_first().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "no program to start")
        })?;
        let mut builder = Command::new(program);
        builder
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            builder.process_group(0);
        }
        let mut child = builder.spawn()?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let pid = child.id();

        let (lines_tx, lines) = mpsc::channel();
        let (writer, queued) = mpsc::channel::<(String, Vec<u8>)>();
        let failures = lines_tx.clone();
        std::thread::Builder::new()
            .name(format!("kcl-{shard}-stdin"))
            .spawn(move || {
                for (what, framed) in queued {
                    if let Err(error) = stdin.write_all(&framed).and_then(|()| stdin.flush()) {
                        let _ = failures.send(Read::WriteFailed(format!(
                            "writing {what} to the child's stdin failed ({error}): the child is gone"
                        )));
                        return;
                    }
                }
            })?;
        std::thread::Builder::new()
            .name(format!("kcl-{shard}-stdout"))
            .spawn(move || {
                let mut reader = LineReader::new(BufReader::with_capacity(1 << 16, stdout));
                loop {
                    let read = match reader.next_line() {
                        Ok(Some(line)) => Read::Line(line),
                        Ok(None) => Read::End(None),
                        Err(error) => Read::End(Some(error.to_string())),
                    };
                    let end = matches!(read, Read::End(_));
                    if lines_tx.send(read).is_err() || end {
                        return;
                    }
                }
            })?;
        let (done_tx, stderr_done) = mpsc::channel();
        let owner = shard.to_owned();
        std::thread::Builder::new()
            .name(format!("kcl-{shard}-stderr"))
            .spawn(move || {
                let mut reader = LineReader::new(BufReader::new(stderr));
                while let Ok(Some(line)) = reader.next_line() {
                    tracing::info!(target: "kcl_native::child", shard = %owner, pid, "{}", String::from_utf8_lossy(&line));
                }
                let _ = done_tx.send(());
            })?;
        tracing::info!(shard, pid, command = %command.join(" "), "child process started");
        Ok(ChildProcess {
            shard: shard.to_owned(),
            child,
            writer: Some(writer),
            lines,
            stdout_ended: false,
            stderr_done,
            timeout,
            skipped: 0,
        })
    }

    /// Sends the message `line` of `action` and reads the child's lines until its status,
    /// answering each checkpoint request with `checkpoint`'s verdict (`Some(name)`: the Java
    /// exception's simple name in the reply's `error`).
    pub(crate) fn exchange(
        &mut self,
        action: &str,
        line: &str,
        checkpoint: &mut dyn FnMut(&CheckpointRequest) -> Option<String>,
    ) -> Result<(), Failure> {
        self.send(line, action)?;
        self.await_status(action, checkpoint)
    }

    /// Queues `line` for the writer thread (a failed write is read as [`Read::WriteFailed`]).
    fn send(&mut self, line: &str, what: &str) -> Result<(), Failure> {
        let mut framed = Vec::with_capacity(line.len() + 1);
        framed.extend_from_slice(line.as_bytes());
        framed.push(b'\n');
        let queued = self
            .writer
            .as_ref()
            .is_some_and(|writer| writer.send((what.to_owned(), framed)).is_ok());
        if queued {
            Ok(())
        } else {
            Err(Failure::Exit(format!(
                "cannot send {what}: the child's stdin is closed"
            )))
        }
    }

    fn await_status(
        &mut self,
        action: &str,
        checkpoint: &mut dyn FnMut(&CheckpointRequest) -> Option<String>,
    ) -> Result<(), Failure> {
        let started = Instant::now();
        let mut last_message = Instant::now();
        let mut next_notice = FIRST_NOTICE;
        if self.stdout_ended {
            return Err(Failure::Exit(format!(
                "the child's stdout ended before {action} was sent"
            )));
        }
        loop {
            let wait = match self.timeout {
                Some(timeout) => timeout.saturating_sub(last_message.elapsed()),
                None => next_notice.saturating_sub(started.elapsed()),
            };
            let line = match self.lines.recv_timeout(wait) {
                Ok(Read::Line(line)) => line,
                Ok(Read::WriteFailed(why)) => {
                    return Err(Failure::Exit(format!(
                        "{why} while {action} was outstanding"
                    )));
                }
                Ok(Read::End(error)) => {
                    self.stdout_ended = true;
                    let why = match error {
                        Some(error) => format!("reading the child's stdout failed ({error})"),
                        None => "the child closed its stdout (it exited?)".to_owned(),
                    };
                    return Err(Failure::Exit(format!(
                        "{why} while {action} was outstanding"
                    )));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(Failure::Exit(format!(
                        "the child's stdout ended while {action} was outstanding"
                    )));
                }
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(timeout) = self.timeout {
                        if last_message.elapsed() >= timeout {
                            return Err(Failure::Timeout(format!(
                                "no message from the child for {} s (timeoutInSeconds) while {action} was outstanding",
                                timeout.as_secs()
                            )));
                        }
                    } else if started.elapsed() >= next_notice {
                        tracing::warn!(
                            shard = %self.shard,
                            waited_s = started.elapsed().as_secs(),
                            "still waiting for the child's status for {action} (no timeoutInSeconds: the wait has no end)"
                        );
                        next_notice *= 2;
                    }
                    continue;
                }
            };
            match parse_child_line(&line) {
                ChildLine::Blank => {}
                ChildLine::Skipped { reason } => {
                    self.skipped += 1;
                    if self.skipped <= SKIPPED_SHOWN {
                        tracing::info!(
                            shard = %self.shard,
                            %reason,
                            line = %shorten(&line),
                            "skipping a line on the child's stdout that is not a message{}",
                            if self.skipped == SKIPPED_SHOWN {
                                " (later ones are only counted)"
                            } else {
                                ""
                            }
                        );
                    }
                }
                ChildLine::OtherMessage { action: other } => {
                    last_message = Instant::now();
                    tracing::info!(shard = %self.shard, "the child wrote a {other} message: read and ignored");
                }
                ChildLine::Checkpoint(request) => {
                    let error = checkpoint(&request);
                    let reply = request.reply_json(error.as_deref());
                    self.send(&reply, "a checkpoint reply")?;
                    // The daemon's timer runs while it reads the next message: the time the
                    // checkpoint took to judge and write is not the child's.
                    last_message = Instant::now();
                }
                ChildLine::Status { response_for } => {
                    if response_for.as_deref() == Some(action) {
                        return Ok(());
                    }
                    return Err(Failure::Exit(format!(
                        "the child answered {action} with a status for {}",
                        match response_for {
                            Some(other) => format!("{other:?}"),
                            None => "nothing (responseFor missing or null)".to_owned(),
                        }
                    )));
                }
            }
        }
    }

    /// The daemon's end of a child: its stdin closed, what it still writes on stdout drained to
    /// the log, its exit awaited for `wait` (the Java daemon waits without end; a child still
    /// running then is killed), and logged.
    pub(crate) fn finish(mut self, wait: Duration) -> Option<ExitStatus> {
        drop(self.writer.take());
        let deadline = Instant::now() + wait;
        let mut drained = self.stdout_ended;
        while !drained {
            match self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(Read::Line(line)) => {
                    if !matches!(parse_child_line(&line), ChildLine::Blank) {
                        tracing::info!(shard = %self.shard, line = %shorten(&line), "drained a line of the child's stdout after its end");
                    }
                }
                Ok(Read::WriteFailed(_)) => {}
                Ok(Read::End(_)) | Err(_) => drained = true,
            }
        }
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(None) | Err(_) => break None,
            }
        };
        let pid = self.child.id();
        match status {
            Some(status) if status.success() => {
                tracing::info!(shard = %self.shard, pid, "child process exited (code 0)");
            }
            Some(status) => {
                tracing::warn!(shard = %self.shard, pid, %status, "child process exited with a failure");
            }
            None => {
                tracing::error!(
                    shard = %self.shard,
                    pid,
                    "the child did not exit within {} s of its stdin closing: killed",
                    wait.as_secs()
                );
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        let _ = self.stderr_done.recv_timeout(Duration::from_secs(1));
        status
    }

    /// Ends the child at once (`timeoutInSeconds`, where the Java daemon halts).
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        tracing::warn!(shard = %self.shard, pid = self.child.id(), "child process killed");
    }
}

/// A line for the log: lossy UTF-8, at most 200 characters.
fn shorten(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.into_owned(),
    }
}
