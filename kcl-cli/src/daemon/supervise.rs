//! Runs the daemon JVM under `kcl` and ties its life to `kcl`'s:
//!
//! * the JVM gets its own process group, so a terminal's Ctrl-C reaches only `kcl`, which
//!   forwards it once (the daemon then shuts its children down gracefully instead of them being
//!   interrupted too);
//! * SIGTERM, SIGINT, SIGHUP and SIGQUIT are caught *before* the spawn and forwarded to the JVM,
//!   so no signal in between ends `kcl` by its default action and orphans the JVM;
//! * SIGTSTP (Ctrl-Z) stops the JVM's process group, then `kcl`; SIGCONT (`fg`, `bg`) continues
//!   it;
//! * on Linux the JVM gets SIGTERM when `kcl` dies, even by SIGKILL (`PR_SET_PDEATHSIG`); other
//!   systems have no such signal, so there a `kill -9` of `kcl` leaves the JVM running;
//! * as PID 1 (a container without an init) `kcl` reaps every process reparented to it (the
//!   orphans of the daemon's tree), so none stays a zombie: it waits for any child until the
//!   JVM itself ends. The kernel delivers to PID 1 only the signals it has a handler for, and
//!   `kcl` has one for each signal it forwards.
//!
//! Between `wait()` and closing the forwarder a signal could reach a new process that reused
//! the JVM's pid; that window is a few instructions long and is left as it is.

use std::process::{Command, ExitCode};

use crate::error::{Error, Result};

/// Spawns `words` (program, then arguments) and returns its exit code (128 + signal if a
/// signal ended it). `kcl`'s own failures are [`Error::Launcher`]s.
///
/// Call it from the main thread: the parent-death signal fires when the *thread* that spawned
/// the child ends, and the main thread lives as long as `kcl`.
pub(crate) fn run(words: &[String]) -> Result<ExitCode> {
    let mut command = Command::new(&words[0]);
    command.args(&words[1..]);
    #[cfg(unix)]
    let signals = unix::prepare(&mut command).map_err(Error::launcher)?;
    let mut child = command
        .spawn()
        .map_err(|e| Error::io(format!("cannot start {}", words[0]), e).launcher())?;
    #[cfg(unix)]
    let forwarder = unix::forward(signals, child.id());
    #[cfg(unix)]
    let status = if std::process::id() == 1 {
        unix::wait_reaping(child.id())
    } else {
        child.wait()
    };
    #[cfg(not(unix))]
    let status = child.wait();
    #[cfg(unix)]
    forwarder.close();
    let status =
        status.map_err(|e| Error::io(format!("waiting for {} failed", words[0]), e).launcher())?;
    if let Some(code) = status.code() {
        return Ok(ExitCode::from(code.clamp(0, 255) as u8));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return Ok(ExitCode::from((128 + signal).clamp(0, 255) as u8));
        }
    }
    Ok(ExitCode::FAILURE)
}

#[cfg(unix)]
mod unix {
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    use signal_hook::consts::{SIGCONT, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTSTP};
    use signal_hook::iterator::{Handle, Signals};

    use crate::error::{Error, Result};

    /// Catches the forwarded signals (those arriving before [`forward`] wait for it), puts the
    /// child in its own process group and, on Linux, arranges its parent-death signal.
    pub(super) fn prepare(command: &mut Command) -> Result<Signals> {
        let signals = Signals::new([SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGTSTP, SIGCONT])
            .map_err(|e| Error::io("cannot catch signals to forward them to the daemon", e))?;
        command.process_group(0);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let parent = std::process::id();
            // SAFETY: the closure runs between fork and exec; it only calls the
            // async-signal-safe prctl(2) and getppid(2) and allocates nothing.
            unsafe {
                command.pre_exec(move || die_with_parent(parent));
            }
        }
        Ok(signals)
    }

    /// In the child before exec: SIGTERM when the parent dies; fails (the child exits without
    /// running the program) if the parent already died, since then no signal would come.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn die_with_parent(parent: u32) -> std::io::Result<()> {
        // SAFETY: prctl(2) with PR_SET_PDEATHSIG and a valid signal number.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: getppid(2) cannot fail.
        if unsafe { libc::getppid() } as u32 != parent {
            return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(())
    }

    /// Forwards the caught signals to the child `pid` (the leader of its process group) on a
    /// thread of its own, until the returned handle is closed.
    pub(super) fn forward(mut signals: Signals, pid: u32) -> Handle {
        let handle = signals.handle();
        let pid = pid as libc::pid_t;
        std::thread::spawn(move || {
            for signal in signals.forever() {
                match signal {
                    SIGTSTP => {
                        send(-pid, SIGTSTP);
                        // Then stop `kcl` itself, as SIGTSTP would have without a handler.
                        let _ = signal_hook::low_level::emulate_default_handler(SIGTSTP);
                    }
                    SIGCONT => send(-pid, SIGCONT),
                    other => send(pid, other),
                }
            }
        });
        handle
    }

    /// Waits for any child until `pid` ends, reaping the others (orphans reparented to PID 1);
    /// `pid`'s status.
    pub(super) fn wait_reaping(pid: u32) -> std::io::Result<std::process::ExitStatus> {
        use std::os::unix::process::ExitStatusExt;
        loop {
            let mut status: libc::c_int = 0;
            // SAFETY: waitpid(2) for any child, with a valid pointer to an int.
            let ended = unsafe { libc::waitpid(-1, &mut status, 0) };
            if ended == pid as libc::pid_t {
                return Ok(std::process::ExitStatus::from_raw(status));
            }
            if ended == -1 {
                let error = std::io::Error::last_os_error();
                if error.kind() != std::io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }

    /// kill(2); a negative `pid` means its process group.
    fn send(pid: libc::pid_t, signal: libc::c_int) {
        // SAFETY: kill(2) on our own child (or its process group) with a valid signal number.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}
