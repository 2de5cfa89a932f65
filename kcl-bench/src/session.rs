//! A recorded session: the daemon's side of a whole workload written once to a file, with each
//! checkpoint reply in place after its batch, so that a child can read it from the file with no
//! pipe, no driver and no scheduler between them. What the child uses of the CPU then depends on
//! the child alone, not on the hour (the pipe figures swing with the host).
//!
//! The file holds `initialize`, then each `processRecords` line followed by the reply to a
//! checkpoint at that batch's last record (every bench child checkpoints there, once per batch),
//! then `leaseLost`, then end of file. The child's output goes to a file that is judged after it
//! exits: one checkpoint per batch at its last record, one status per action, in order.
//!
//! The child's fixed cost (start-up, the interpreter of a Python or Node child) is measured on
//! an empty session (`initialize` and `leaseLost` only) in the same run and subtracted, so that
//! the figure is CPU per record.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kcl_protocol::daemon::{CheckpointRequest, ChildLine, parse_child_line};

use crate::proc_stats;
use crate::workload::{Workload, batch_line, initialize_line, sequence};

const LEASE_LOST: &[u8] = b"{\"action\":\"leaseLost\"}\n";

/// The daemon's reply to a checkpoint at `sequence_number` (subsequence 0), with its newline.
fn reply_line(sequence_number: String) -> Vec<u8> {
    let request = CheckpointRequest {
        sequence_number: Some(sequence_number),
        sub_sequence_number: Some(0),
        error: None,
    };
    let mut line = request.reply_json(None).into_bytes();
    line.push(b'\n');
    line
}

/// The empty session next to `path`: `initialize` and `leaseLost` only.
fn empty_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".empty");
    PathBuf::from(name)
}

/// Writes the workload's session to `path` (and the empty session next to it). Returns the
/// bytes written.
pub fn write(path: &Path, workload: Workload) -> io::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut bytes = 0u64;
    let mut put = |out: &mut BufWriter<File>, line: &[u8]| -> io::Result<()> {
        bytes += line.len() as u64;
        out.write_all(line)
    };
    put(&mut out, &initialize_line())?;
    let mut n = 0u64;
    for batch in 0..workload.batches {
        let line = batch_line(workload, &mut n, batch);
        put(&mut out, &line)?;
        if workload.records > 0 {
            put(&mut out, &reply_line(sequence(n)))?;
        }
    }
    put(&mut out, LEASE_LOST)?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    let mut empty = initialize_line();
    empty.extend_from_slice(LEASE_LOST);
    std::fs::write(empty_path(path), empty)?;
    Ok(bytes)
}

/// What a child used to read a session from a file.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// User + system CPU of the child, from `wait4` (the kernel's accounting, not clock ticks).
    pub cpu: Duration,
    /// Peak resident set (`ru_maxrss`), KiB.
    pub max_rss_kib: u64,
    /// From spawn to exit.
    pub wall: Duration,
    /// Context switches the child made: voluntary (it waited) and involuntary (preempted).
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
}

/// Runs `command` with `input` as its stdin and `output` as its stdout, and waits for it.
fn run_once(command: &[String], input: &Path, output: &Path) -> io::Result<Usage> {
    let started = Instant::now();
    let child = Command::new(&command[0])
        .args(&command[1..])
        .stdin(File::open(input)?)
        .stdout(File::create(output)?)
        .stderr(Stdio::null())
        .spawn()?;
    let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
    // SAFETY: an all-zero `rusage` is a valid value; `wait4` writes it and reaps our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut status = 0;
    // SAFETY: `pid` is a child of this process that nothing else waits for (the `Child` handle
    // is dropped without waiting); the pointers are to live locals.
    let reaped = loop {
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        break reaped;
    };
    let wall = started.elapsed();
    drop(child);
    if reaped != pid {
        return Err(io::Error::last_os_error());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(io::Error::other(format!(
            "{} exited with wait status {status} reading {}",
            command.join(" "),
            input.display()
        )));
    }
    Ok(Usage {
        cpu: proc_stats::duration(usage.ru_utime) + proc_stats::duration(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss as u64,
        wall,
        voluntary_switches: usage.ru_nvcsw as u64,
        involuntary_switches: usage.ru_nivcsw as u64,
    })
}

/// Checks what the child wrote while reading the session: a checkpoint at the last record of
/// every batch, in order, and one status for each of the session's actions.
fn judge(output: &Path, workload: Workload) -> io::Result<u64> {
    let text = std::fs::read(output)?;
    let (mut checkpoints, mut statuses) = (Vec::new(), 0usize);
    for line in text.split(|&b| b == b'\n') {
        match parse_child_line(line) {
            ChildLine::Checkpoint(request) => checkpoints.push(request.sequence_number),
            ChildLine::Status { .. } => statuses += 1,
            _ => {}
        }
    }
    let expected: Vec<Option<String>> = if workload.records == 0 {
        Vec::new()
    } else {
        (1..=workload.batches as u64)
            .map(|batch| Some(sequence(batch * workload.records as u64)))
            .collect()
    };
    if checkpoints != expected {
        let at = checkpoints
            .iter()
            .zip(&expected)
            .position(|(got, want)| got != want)
            .unwrap_or(checkpoints.len().min(expected.len()));
        return Err(io::Error::other(format!(
            "the child checkpointed {} times for {} batches; first difference at batch {at}: {:?} for {:?}",
            checkpoints.len(),
            expected.len(),
            checkpoints.get(at),
            expected.get(at)
        )));
    }
    let actions = workload.batches + 2;
    if statuses != actions {
        return Err(io::Error::other(format!(
            "the child answered {statuses} statuses for {actions} actions"
        )));
    }
    Ok(checkpoints.len() as u64)
}

/// One run of a child on a recorded session.
#[derive(Debug, Clone, Copy)]
pub struct FileMeasurement {
    /// The whole session.
    pub full: Usage,
    /// The empty session: the child's fixed cost.
    pub empty: Usage,
    pub checkpoints: u64,
}

/// Runs `command` on the empty session, then on the session at `path`, and judges its output.
pub fn run(command: &[String], path: &Path, workload: Workload) -> io::Result<FileMeasurement> {
    let output = {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".out-{}", std::process::id()));
        PathBuf::from(name)
    };
    let empty = run_once(command, &empty_path(path), &output)?;
    let full = run_once(command, path, &output)?;
    let checkpoints = judge(&output, workload);
    let _ = std::fs::remove_file(&output);
    Ok(FileMeasurement {
        full,
        empty,
        checkpoints: checkpoints?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload() -> Workload {
        Workload {
            batches: 3,
            records: 4,
            payload_bytes: 10,
        }
    }

    #[test]
    fn a_session_holds_each_batch_then_its_reply() {
        let dir = std::env::temp_dir().join(format!("kcl-bench-session-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("session.jsonl");
        let bytes = write(&path, workload()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len() as u64, bytes);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + 3 * 2 + 1);
        assert!(lines[0].contains("\"initialize\""));
        for batch in 0..3 {
            assert!(lines[1 + 2 * batch].starts_with("{\"action\":\"processRecords\""));
            let reply = lines[2 + 2 * batch];
            let last = sequence((batch as u64 + 1) * 4);
            assert!(
                reply.contains("\"action\":\"checkpoint\"") && reply.contains(&last),
                "{reply}"
            );
        }
        assert_eq!(lines[7], "{\"action\":\"leaseLost\"}");
        let empty = std::fs::read_to_string(empty_path(&path)).unwrap();
        assert_eq!(empty.lines().count(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The judge refuses output that misses a checkpoint or a status, so a child that reads
    /// nothing cannot pass.
    #[test]
    fn the_judge_refuses_a_missing_checkpoint_or_status() {
        let dir = std::env::temp_dir().join(format!("kcl-bench-judge-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let output = dir.join("out");
        let status =
            |action: &str| format!("{{\"action\":\"status\",\"responseFor\":\"{action}\"}}\n");
        let checkpoint = |n: u64| {
            format!(
                "{{\"action\":\"checkpoint\",\"sequenceNumber\":\"{}\",\"subSequenceNumber\":0}}\n",
                sequence(n)
            )
        };
        let mut good = status("initialize");
        for batch in 1..=3 {
            good.push_str(&checkpoint(batch * 4));
            good.push_str(&status("processRecords"));
        }
        good.push_str(&status("leaseLost"));
        std::fs::write(&output, &good).unwrap();
        assert_eq!(judge(&output, workload()).unwrap(), 3);

        let missing_checkpoint = good.replacen(&checkpoint(8), "", 1);
        std::fs::write(&output, missing_checkpoint).unwrap();
        assert!(judge(&output, workload()).is_err());

        let missing_status = good.replacen(&status("leaseLost"), "", 1);
        std::fs::write(&output, missing_status).unwrap();
        assert!(judge(&output, workload()).is_err());

        let wrong_place = good.replacen(&checkpoint(12), &checkpoint(11), 1);
        std::fs::write(&output, wrong_place).unwrap();
        assert!(judge(&output, workload()).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
