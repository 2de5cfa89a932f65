//! Killing a worker the hard way and judging what its record processors did
//! (scripts/e2e/daemon.py's `kill9` and `incarnation_children`, context.py's
//! `children_exit_cleanly`): `kill -9` of the daemon JVM alone leaves its children running with
//! their stdin still open until the kernel closes it; each must then see EOF, write `exit 0` and
//! end by itself.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::poll::poll;
use crate::report::Report;
use crate::shutdown::wait_gone;
use crate::signal::{Signal, send};
use crate::sink::Sink;
use crate::worker::Worker;

/// SIGKILL to the daemon's PID only (not its group: its record processors are left to notice
/// EOF), then waits up to 10 s for it to be gone; the children it had just before. For a native
/// worker (no children) it kills the engine.
pub fn kill_daemon_only(worker: &mut Worker) -> Vec<u32> {
    let children = worker.children();
    match worker {
        Worker::Daemon(daemon) => {
            if let Some(pid) = daemon.pid() {
                let _ = send(pid, Signal::Kill);
            }
            poll(
                Duration::from_secs(10),
                Duration::from_millis(50),
                || daemon.running(),
                |running| !running,
            );
        }
        Worker::Native(_) => {
            worker.kill();
        }
    }
    children
}

/// The PIDs of every record processor that wrote an `initialize` event into `sink` at or after
/// `since_ms` (also those started while a daemon was shutting down or dying).
pub fn incarnation_children(sink: &Sink, since_ms: u64) -> Vec<u32> {
    let pids: BTreeSet<u32> = sink
        .events()
        .into_iter()
        .filter(|e| e.kind() == "initialize" && e.ms >= since_ms)
        .map(|e| e.pid)
        .collect();
    pids.into_iter().collect()
}

/// After its daemon died: did each of `pids` end by itself within `deadline`, having written
/// `exit 0` (at or after `since_ms`) and no `exit error`? (ok, detail). Kills whatever is left.
/// The exit statuses themselves are not seen here: the orphans are reaped by init.
pub fn children_exit_cleanly(
    sink: &Sink,
    pids: &[u32],
    since_ms: u64,
    deadline: Duration,
) -> (bool, String) {
    let left = wait_gone(pids, deadline);
    let events = sink.events();
    let zero: BTreeSet<u32> = events
        .iter()
        .filter(|e| e.what == "exit 0" && e.ms >= since_ms)
        .map(|e| e.pid)
        .collect();
    let errors: BTreeSet<u32> = events
        .iter()
        .filter(|e| e.what == "exit error" && e.ms >= since_ms && pids.contains(&e.pid))
        .map(|e| e.pid)
        .collect();
    for pid in &left {
        let _ = send(*pid, Signal::Kill);
    }
    let exited = pids.iter().filter(|p| zero.contains(p)).count();
    let ok = left.is_empty() && errors.is_empty() && exited == pids.len() && !pids.is_empty();
    let mut detail = format!("children={} exit-0-events={exited}", pids.len());
    if !errors.is_empty() {
        detail.push_str(&format!(" 'exit error'-events={errors:?}"));
    }
    if !left.is_empty() {
        detail.push_str(&format!(" still-running={left:?}"));
    }
    (ok, detail)
}

/// The check `name` from [`children_exit_cleanly`], prefixed with the worker's id.
pub fn check_children_exit(
    report: &mut Report,
    name: &str,
    worker: &Worker,
    pids: &[u32],
    since_ms: u64,
) -> bool {
    let (ok, detail) =
        children_exit_cleanly(&worker.sink(), pids, since_ms, Duration::from_secs(15));
    report.check(name, ok, format!("{}: {detail}", worker.worker_id()))
}
