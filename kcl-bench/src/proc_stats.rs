//! What /proc says about a child: peak resident memory and CPU time used so far.

use std::time::Duration;

/// `VmHWM` of a live process, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `VmRSS` (resident now) of a live process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Context switches of a live process so far: voluntary (it waited, e.g. on a pipe) plus
/// involuntary (preempted).
pub fn context_switches(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let count = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some(count("voluntary_ctxt_switches:")? + count("nonvoluntary_ctxt_switches:")?)
}

/// CPU and context switches of this process (the driver), from `getrusage`.
#[derive(Debug, Clone, Copy)]
pub struct SelfUsage {
    pub cpu: Duration,
    pub switches: u64,
}

impl SelfUsage {
    /// What was used between `before` (if known) and `self`.
    pub fn since(self, before: Option<SelfUsage>) -> SelfUsage {
        match before {
            Some(before) => SelfUsage {
                cpu: self.cpu.saturating_sub(before.cpu),
                switches: self.switches.saturating_sub(before.switches),
            },
            None => self,
        }
    }
}

/// A `timeval` of `getrusage`/`wait4` as a duration.
pub fn duration(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// This process's usage so far.
pub fn self_usage() -> Option<SelfUsage> {
    // SAFETY: an all-zero `rusage` is valid; `getrusage` writes it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is to a live local.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    Some(SelfUsage {
        cpu: duration(usage.ru_utime) + duration(usage.ru_stime),
        switches: (usage.ru_nvcsw + usage.ru_nivcsw) as u64,
    })
}

/// User + system CPU time of a live process: the scheduler's nanosecond count
/// (`/proc/PID/schedstat`), or clock ticks (`/proc/PID/stat`, 10 ms) where that is missing.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    if let Some(nanos) = std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
    {
        return Some(Duration::from_nanos(nanos));
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    Some(Duration::from_secs_f64(
        (utime + stime) as f64 / ticks as f64,
    ))
}

/// Resident KiB per mapping kind (binary, heap, stack, libraries, anonymous), from smaps.
pub fn resident_by_mapping(pid: u32) -> Vec<(String, u64)> {
    let Ok(smaps) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return Vec::new();
    };
    let mut totals: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    let mut current = String::new();
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields
            .first()
            .is_some_and(|f| f.contains('-') && !f.ends_with(':'))
        {
            current = match fields.get(5) {
                Some(path) if path.starts_with('[') => (*path).to_owned(),
                Some(path) => path.rsplit('/').next().unwrap_or(path).to_owned(),
                None => "[anonymous]".to_owned(),
            };
        } else if fields.first() == Some(&"Rss:") {
            *totals.entry(current.clone()).or_default() +=
                fields.get(1).and_then(|v| v.parse().ok()).unwrap_or(0);
        }
    }
    let mut list: Vec<_> = totals.into_iter().filter(|(_, kib)| *kib > 0).collect();
    list.sort_by_key(|entry| std::cmp::Reverse(entry.1));
    list
}
