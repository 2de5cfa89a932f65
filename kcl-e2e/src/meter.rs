//! Metering a process tree while it runs (the benchmark of the native engine against the
//! daemon): a thread samples the summed resident memory (RSS and PSS) and CPU time of a root
//! process and all its live descendants every interval, and the caller can take a sample of its
//! own at a moment that matters (the first record handled, the last).
//!
//! CPU time is cumulative per process, so the tree's CPU is the sum over every PID ever seen of
//! the largest time read for it: a descendant that ended still counts with its last reading
//! (what it used after that reading is missed, at most one interval's worth).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::poll::now_ms;
use crate::procfs;

/// One reading of a process tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    /// When, in milliseconds since the epoch (the sinks' clock).
    pub ms: u64,
    /// How many live processes the tree had.
    pub processes: usize,
    /// Summed resident set size, KiB (shared pages counted once per process).
    pub rss_kib: u64,
    /// Summed proportional set size, KiB (shared pages divided among the processes).
    pub pss_kib: u64,
    /// CPU time (user + system) of the tree since it started, as described in the module
    /// documentation.
    pub cpu: Duration,
    /// CPU time of the root process alone (the engine: the JVM, or the native process).
    pub root_cpu: Duration,
}

#[derive(Debug, Default)]
struct State {
    cpu_by_pid: BTreeMap<u32, Duration>,
    samples: Vec<Sample>,
}

/// A sampler of one process tree, running on its own thread until [`Meter::finish`].
#[derive(Debug)]
pub struct Meter {
    root: u32,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Meter {
    /// Starts sampling `root` and its descendants every `interval`.
    pub fn start(root: u32, interval: Duration) -> Meter {
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    take(root, &state);
                    std::thread::sleep(interval);
                }
            })
        };
        Meter {
            root,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// Takes a sample now (kept with the others) and returns it.
    pub fn sample(&self) -> Sample {
        take(self.root, &self.state)
    }

    /// Stops the thread; every sample taken, in time order.
    pub fn finish(mut self) -> Vec<Sample> {
        self.halt();
        let mut samples = std::mem::take(&mut lock(&self.state).samples);
        samples.sort_by_key(|s| s.ms);
        samples
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.halt();
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn take(root: u32, state: &Mutex<State>) -> Sample {
    // One sample at a time (the thread's and the caller's), so that samples in time order
    // also have their CPU in order.
    let mut state = lock(state);
    let ms = now_ms();
    let readings: Vec<(u32, procfs::Usage)> = procfs::tree(root)
        .into_iter()
        .filter_map(|pid| Some((pid, procfs::usage(pid)?)))
        .collect();
    for (pid, usage) in &readings {
        let seen = state.cpu_by_pid.entry(*pid).or_default();
        *seen = (*seen).max(usage.cpu);
    }
    let sample = Sample {
        ms,
        processes: readings.len(),
        rss_kib: readings.iter().map(|(_, u)| u.rss_kib).sum(),
        pss_kib: readings.iter().map(|(_, u)| u.pss_kib).sum(),
        cpu: state.cpu_by_pid.values().sum(),
        root_cpu: state.cpu_by_pid.get(&root).copied().unwrap_or_default(),
    };
    state.samples.push(sample);
    sample
}

/// The largest value of `field` over `samples` (0 if none).
pub fn peak(samples: &[Sample], field: impl Fn(&Sample) -> u64) -> u64 {
    samples.iter().map(field).max().unwrap_or(0)
}

/// The median of `field` over the samples taken from `from_ms` to `to_ms` (both included;
/// 0 if none): the steady value while records flow.
pub fn median_between(
    samples: &[Sample],
    from_ms: u64,
    to_ms: u64,
    field: impl Fn(&Sample) -> u64,
) -> u64 {
    let mut values: Vec<u64> = samples
        .iter()
        .filter(|s| s.ms >= from_ms && s.ms <= to_ms)
        .map(field)
        .collect();
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_tree_is_metered_children_included() {
        // A shell with two busy children: three processes, CPU growing.
        let mut child = Command::new("sh")
            .args([
                "-c",
                "(while :; do :; done) & (while :; do :; done) & sleep 30",
            ])
            .spawn()
            .unwrap();
        let meter = Meter::start(child.id(), Duration::from_millis(50));
        let end = std::time::Instant::now() + Duration::from_secs(20);
        let mut last = meter.sample();
        while (last.processes < 3 || last.cpu < Duration::from_millis(300))
            && std::time::Instant::now() < end
        {
            std::thread::sleep(Duration::from_millis(50));
            last = meter.sample();
        }
        // Kill the busy loops (they are the shell's children) before asserting.
        for pid in procfs::tree(child.id()) {
            let _ = crate::signal::send(pid, crate::signal::Signal::Kill);
        }
        let _ = child.wait();
        let samples = meter.finish();
        assert!(last.processes >= 3, "{last:?}");
        assert!(last.cpu >= Duration::from_millis(300), "{last:?}");
        assert!(last.root_cpu <= last.cpu, "{last:?}");
        assert!(last.rss_kib > 0 && last.pss_kib > 0 && last.pss_kib <= last.rss_kib);
        assert!(samples.len() >= 2);
        assert!(
            samples
                .windows(2)
                .all(|w| w[0].ms <= w[1].ms && w[0].cpu <= w[1].cpu)
        );
        assert!(peak(&samples, |s| s.processes as u64) >= 3);
    }

    #[test]
    fn peak_and_median() {
        let at = |ms, rss_kib| Sample {
            ms,
            rss_kib,
            ..Sample::default()
        };
        let samples = [at(1, 10), at(2, 50), at(3, 20), at(4, 30), at(5, 90)];
        assert_eq!(peak(&samples, |s| s.rss_kib), 90);
        assert_eq!(median_between(&samples, 2, 4, |s| s.rss_kib), 30);
        assert_eq!(median_between(&samples, 6, 9, |s| s.rss_kib), 0);
    }
}
