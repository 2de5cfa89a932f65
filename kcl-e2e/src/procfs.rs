//! What Linux's `/proc` says about processes: parent, process group, state, children, the
//! listening TCP sockets of a process tree (to check an emulator listens on loopback only), and
//! the resident memory and CPU time of a process ([`usage`], for the benchmark).

use std::collections::BTreeSet;

/// The fields of `/proc/PID/stat` after the command name: (state, parent PID, process group).
fn stat(pid: u32) -> Option<(char, u32, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself hold spaces or parentheses.
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    let group = fields.next()?.parse().ok()?;
    Some((state, parent, group))
}

/// Every PID in `/proc`.
fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `pid` runs (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    matches!(stat(pid), Some((state, _, _)) if state != 'Z')
}

/// The process group of `pid`, if it runs.
pub fn group_of(pid: u32) -> Option<u32> {
    stat(pid).map(|(_, _, group)| group)
}

/// What `pid` does with signal number `signal`, from `/proc/PID/status`: `"ignored"`,
/// `"caught"` (a handler), `"blocked"` (in its main thread's mask) or `"default"`; `None` if it
/// is gone.
pub fn signal_disposition(pid: u32, signal: i32) -> Option<&'static str> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mask = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|value| u64::from_str_radix(value.trim(), 16).ok())
            .unwrap_or(0)
    };
    let bit = 1u64 << (signal - 1);
    for (key, name) in [
        ("SigIgn:", "ignored"),
        ("SigCgt:", "caught"),
        ("SigBlk:", "blocked"),
    ] {
        if mask(key) & bit != 0 {
            return Some(name);
        }
    }
    Some("default")
}

/// The live direct children of `pid`, sorted.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut kids: Vec<u32> = all_pids()
        .into_iter()
        .filter(|&p| matches!(stat(p), Some((state, parent, _)) if parent == pid && state != 'Z'))
        .collect();
    kids.sort_unstable();
    kids
}

/// The live members of process group `group`, sorted.
pub fn group_members(group: u32) -> Vec<u32> {
    let mut members: Vec<u32> = all_pids()
        .into_iter()
        .filter(|&p| matches!(stat(p), Some((state, _, g)) if g == group && state != 'Z'))
        .collect();
    members.sort_unstable();
    members
}

/// `pid` and its live descendants.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut found = vec![pid];
    let mut next = 0;
    while next < found.len() {
        let kids = children_of(found[next]);
        found.extend(kids);
        next += 1;
    }
    found
}

/// Clock ticks per second of `/proc/PID/stat`'s times: `USER_HZ`, 100 on every Linux
/// architecture this runs on (the kernel scales its internal tick to it for user space).
const USER_HZ: u64 = 100;

/// Memory and CPU time of one live process, from `/proc/PID/smaps_rollup` and
/// `/proc/PID/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Resident set size, KiB (`Rss:`): every resident page it maps, shared ones in full.
    pub rss_kib: u64,
    /// Proportional set size, KiB (`Pss:`): each resident page divided by the number of
    /// processes mapping it, so that summing a tree counts a shared library once.
    pub pss_kib: u64,
    /// User plus system CPU time of all its threads so far (`utime + stime`; not the time of
    /// reaped children), at 10 ms resolution.
    pub cpu: std::time::Duration,
}

/// The [`Usage`] of `pid`, or `None` when it is gone (or a zombie) or `/proc` is unreadable.
pub fn usage(pid: u32) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let cpu = cpu_of_stat(&stat)?;
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let (rss_kib, pss_kib) = memory_of_rollup(&rollup)?;
    Some(Usage {
        rss_kib,
        pss_kib,
        cpu,
    })
}

/// `utime + stime` of a `/proc/PID/stat` line (fields 14 and 15), `None` for a zombie.
fn cpu_of_stat(text: &str) -> Option<std::time::Duration> {
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    if fields.first() == Some(&"Z") {
        return None;
    }
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(std::time::Duration::from_millis(
        (utime + stime) * 1000 / USER_HZ,
    ))
}

/// The `Rss:` and `Pss:` lines (KiB) of `/proc/PID/smaps_rollup`.
fn memory_of_rollup(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    Some((field("Rss:")?, field("Pss:")?))
}

/// A listening TCP socket: its address (as text) and port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listener {
    /// `127.0.0.1`, `0.0.0.0`, `::1`, ...
    pub address: String,
    /// The port.
    pub port: u16,
    inode: u64,
}

impl std::fmt::Display for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.address, self.port)
    }
}

/// Every listening TCP socket of this network namespace (IPv4 and IPv6).
pub fn listeners() -> Vec<Listener> {
    let mut found = Vec::new();
    for (table, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || fields[3] != "0A" {
                continue; // 0A = LISTEN
            }
            let Some((address, port)) = fields[1].split_once(':') else {
                continue;
            };
            let (Ok(port), Ok(inode)) = (u16::from_str_radix(port, 16), fields[9].parse()) else {
                continue;
            };
            let Some(address) = decode_address(address, v6) else {
                continue;
            };
            found.push(Listener {
                address,
                port,
                inode,
            });
        }
    }
    found
}

/// A `/proc/net/tcp{,6}` address: 32-bit words in host (little-endian) order.
fn decode_address(hex: &str, v6: bool) -> Option<String> {
    let words: Vec<u32> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).map(u32::swap_bytes))
        .collect::<Result<_, _>>()
        .ok()?;
    if v6 {
        let mut bytes = [0u8; 16];
        for (i, word) in words.iter().enumerate().take(4) {
            bytes[i * 4..i * 4 + 4].copy_from_slice(&word.to_be_bytes());
        }
        Some(std::net::Ipv6Addr::from(bytes).to_string())
    } else {
        Some(std::net::Ipv4Addr::from(*words.first()?).to_string())
    }
}

/// The addresses listening on `port`.
pub fn listening_addresses(port: u16) -> BTreeSet<String> {
    listeners()
        .into_iter()
        .filter(|l| l.port == port)
        .map(|l| l.address)
        .collect()
}

/// Every socket `pid` or a descendant listens on, whatever the port: an emulator that opened an
/// extra listener on 0.0.0.0 shows up here even if its configured ports are on 127.0.0.1.
pub fn listeners_of(pid: u32) -> Vec<Listener> {
    let mut inodes = BTreeSet::new();
    for p in tree(pid) {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{p}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let target = target.to_string_lossy();
                if let Some(inode) = target
                    .strip_prefix("socket:[")
                    .and_then(|t| t.strip_suffix(']'))
                    .and_then(|t| t.parse::<u64>().ok())
                {
                    inodes.insert(inode);
                }
            }
        }
    }
    let mut found: Vec<Listener> = listeners()
        .into_iter()
        .filter(|l| inodes.contains(&l.inode))
        .collect();
    found.sort();
    found
}

/// Whether an address is a loopback address (`127.x.y.z`, `::1`, `::ffff:127.x.y.z`).
pub fn is_loopback(address: &str) -> bool {
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(std::net::IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_addresses_decode() {
        assert_eq!(
            decode_address("0100007F", false).as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(
            decode_address("00000000", false).as_deref(),
            Some("0.0.0.0")
        );
        assert_eq!(
            decode_address("00000000000000000000000001000000", true).as_deref(),
            Some("::1")
        );
        assert_eq!(
            decode_address("0000000000000000FFFF00000100007F", true).as_deref(),
            Some("::ffff:127.0.0.1")
        );
    }

    #[test]
    fn loopback_addresses() {
        assert!(is_loopback("127.0.0.1") && is_loopback("::1") && is_loopback("::ffff:127.0.0.1"));
        assert!(!is_loopback("0.0.0.0") && !is_loopback("::") && !is_loopback("10.0.0.1"));
    }

    #[test]
    fn a_listener_of_this_process_is_found() {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        assert_eq!(
            listening_addresses(port),
            BTreeSet::from(["127.0.0.1".to_owned()])
        );
        let mine = listeners_of(std::process::id());
        assert!(mine.iter().any(|l| l.port == port), "{mine:?}");
        assert_eq!(children_of(u32::MAX), Vec::<u32>::new());
        assert!(alive(std::process::id()));
    }

    #[test]
    fn usage_of_this_process_and_of_a_missing_one() {
        // Touch 8 MiB so that the resident size is at least that.
        let block = vec![1u8; 8 << 20];
        let mut spin = 0u64;
        let t0 = std::time::Instant::now();
        while t0.elapsed() < std::time::Duration::from_millis(60) {
            spin = spin.wrapping_add(u64::from(block[spin as usize % block.len()]));
        }
        let mine = usage(std::process::id()).expect("this process's usage");
        assert!(mine.rss_kib >= 8 * 1024, "{mine:?}");
        assert!(mine.pss_kib > 0 && mine.pss_kib <= mine.rss_kib, "{mine:?}");
        assert!(
            mine.cpu >= std::time::Duration::from_millis(10),
            "{mine:?} {spin}"
        );
        assert_eq!(usage(u32::MAX), None);
    }

    #[test]
    fn stat_and_rollup_fields() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 7 9 20 0 1 0 5 0 0";
        assert_eq!(cpu_of_stat(stat), Some(std::time::Duration::from_secs(3)));
        assert_eq!(cpu_of_stat("42 (z) Z 1 42 42 0 -1 0 0 0 0 0 250 50"), None);
        let rollup = "00400000-7ff0 ---p 00000000 00:00 0 [rollup]\nRss:  1024 kB\nPss:  512 kB\nPss_Anon: 3 kB\n";
        assert_eq!(memory_of_rollup(rollup), Some((1024, 512)));
    }
}
