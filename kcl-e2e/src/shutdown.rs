//! How a worker ends, judged as scripts/e2e/context.py's `sigterm_clean` and
//! `children_exit_cleanly` judge it: a SIGTERM'd daemon exits 143 within its grace period and
//! every record processor it had writes `exit 0` and ends; after a daemon's end no record
//! processor of its folder is left (also none started during the shutdown).

use std::path::Path;
use std::time::Duration;

use crate::poll::{now_ms, poll};
use crate::procfs;
use crate::report::Report;
use crate::scenario::exited_zero;
use crate::signal::Signal;
use crate::worker::Worker;

/// Polls until none of `pids` runs or `deadline` passes; those still running.
pub fn wait_gone(pids: &[u32], deadline: Duration) -> Vec<u32> {
    poll(
        deadline,
        Duration::from_millis(100),
        || {
            pids.iter()
                .copied()
                .filter(|&p| procfs::alive(p))
                .collect::<Vec<u32>>()
        },
        Vec::is_empty,
    )
}

/// The live processes running `binary` (the file a symlink names, resolved) with `folder` as
/// their working directory: the record processors of that worker, whoever their parent is now.
pub fn processes_of(binary: &Path, folder: &Path) -> Vec<u32> {
    let (Ok(binary), Ok(folder)) = (binary.canonicalize(), folder.canonicalize()) else {
        return Vec::new();
    };
    let mut found: Vec<u32> = std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| {
                    let base = Path::new("/proc").join(pid.to_string());
                    std::fs::read_link(base.join("exe")).is_ok_and(|exe| exe == binary)
                        && std::fs::read_link(base.join("cwd")).is_ok_and(|cwd| cwd == folder)
                        && procfs::alive(*pid)
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort_unstable();
    found
}

/// The record processors of `worker` still running other than `allowed` (after its daemon is
/// gone there must be none).
pub fn strays(worker: &Worker, allowed: &[u32]) -> Vec<u32> {
    processes_of(&worker.spec().processor.binary, worker.folder())
        .into_iter()
        .filter(|p| !allowed.contains(p))
        .collect()
}

/// SIGTERM to a daemon worker, and the check `name`: it exits 143 (the JVM's status after its
/// shutdown hook ran) within its grace period + 20 s, with at least `expect_children` record
/// processors running when it was sent (waited for up to 30 s), each of which wrote `exit 0`
/// and ended, and no record processor of its folder left (also none started during the
/// shutdown). Kills whatever is left, whatever the check said.
pub fn sigterm_clean(
    report: &mut Report,
    name: &str,
    worker: &mut Worker,
    expect_children: usize,
) -> bool {
    poll(
        Duration::from_secs(30),
        Duration::from_millis(250),
        || worker.children().len(),
        |&n| n >= expect_children,
    );
    let sent = now_ms();
    let grace = worker.grace();
    let stopped = worker.stop(Signal::Term, grace + Duration::from_secs(20));
    let (code, took, kids) = match &stopped {
        Ok(s) => (s.code, s.took, s.children.clone()),
        Err(_) => (None, Duration::ZERO, Vec::new()),
    };
    let left = wait_gone(&kids, Duration::from_secs(15));
    let strays = poll(
        Duration::from_secs(10),
        Duration::from_millis(250),
        || strays(worker, &[]),
        Vec::is_empty,
    );
    let exits = exited_zero(&worker.sink(), &kids, sent);
    let ok = code == Some(Signal::Term.exit_code())
        && left.is_empty()
        && strays.is_empty()
        && kids.len() >= expect_children
        && kids.iter().all(|k| exits.contains(k));
    let mut detail = format!(
        "exit={} after {:.1}s children={} (expected {expect_children}+) exited-0={}",
        code.map_or("none".to_owned(), |c| c.to_string()),
        took.as_secs_f64(),
        kids.len(),
        exits.len()
    );
    if let Err(error) = &stopped {
        detail.push_str(&format!(" stop failed: {error}"));
    }
    if !left.is_empty() {
        detail.push_str(&format!(" still-running={left:?}"));
    }
    if !strays.is_empty() {
        detail.push_str(&format!(" orphans={strays:?}"));
    }
    if worker.running() || !left.is_empty() || !strays.is_empty() {
        worker.kill();
        for pid in left.iter().chain(&strays) {
            let _ = crate::signal::send(*pid, Signal::Kill);
        }
    }
    report.check(name, ok, detail)
}
