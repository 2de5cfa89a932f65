//! Sending signals by PID (and to a process group by its leader's PID): the only `unsafe` of
//! the crate, one `libc::kill` call.
#![allow(unsafe_code)]

/// A signal the harness sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: the graceful shutdown of the daemon (its shutdown hook) and of the native engine.
    Term,
    /// SIGINT: Ctrl-C.
    Int,
    /// SIGKILL to one process.
    Kill,
    /// SIGKILL to the process group whose leader has this PID.
    KillGroup,
    /// SIGSTOP: the process freezes (a long GC pause, a VM stall) without knowing it.
    Stop,
    /// SIGCONT: a stopped process runs again.
    Cont,
}

impl Signal {
    /// The signal's number.
    pub fn number(self) -> i32 {
        match self {
            Signal::Term => libc::SIGTERM,
            Signal::Int => libc::SIGINT,
            Signal::Kill | Signal::KillGroup => libc::SIGKILL,
            Signal::Stop => libc::SIGSTOP,
            Signal::Cont => libc::SIGCONT,
        }
    }

    /// The exit code a shell reports for a process that ended on it (128 + number): the JVM
    /// ends with 143 after its SIGTERM shutdown hook ran.
    pub fn exit_code(self) -> i32 {
        128 + self.number()
    }
}

/// Sends `signal` to every process of the group whose leader is `leader` (what a terminal's
/// Ctrl-C does with SIGINT to its foreground group).
pub fn send_to_group(leader: u32, signal: Signal) -> std::io::Result<()> {
    kill(leader, signal, true)
}

/// Sends `signal` to `pid` (to its process group for [`Signal::KillGroup`]).
pub fn send(pid: u32, signal: Signal) -> std::io::Result<()> {
    kill(pid, signal, signal == Signal::KillGroup)
}

fn kill(pid: u32, signal: Signal, group: bool) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    if pid <= 0 {
        return Err(std::io::Error::other("not a process id"));
    }
    let target = if group { -pid } else { pid };
    // SAFETY: kill(2) takes plain integers and touches no memory of this process; `target` is a
    // positive PID or the negated PID of a group leader this crate started, never 0 or -1.
    let result = unsafe { libc::kill(target, signal.number()) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
