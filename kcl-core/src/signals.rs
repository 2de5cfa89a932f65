//! SIGINT and SIGTERM: the child keeps serving the daemon.
//!
//! Ctrl-C in a terminal, and some process managers, signal the whole process group: the daemon
//! and every child at once. The daemon then shuts down gracefully (`shutdownRequested`, then
//! `leaseLost` to each child, when `shutdownGraceMillis` allows it) and needs its children alive
//! for that, or no final checkpoint is stored and records are handled again after the restart.
//! So a signal does not end the child: it logs a line and goes on answering the daemon until the
//! daemon closes stdin. Two ways out remain: a second SIGINT ends the process at once (exit code
//! 130), and when the daemon sends nothing for the grace period after the signal (it is not
//! shutting down the child, or the signal reached the child alone) the process exits cleanly
//! (code 0) between two actions, never while a hook runs or a status is owed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long the child waits for a daemon action after a signal before it exits on its own.
pub const DEFAULT_SIGNAL_GRACE: Duration = Duration::from_secs(30);

/// Overrides the grace period (milliseconds), for operators: `KCL_SIGNAL_GRACE_MS=5000`.
pub const SIGNAL_GRACE_ENV: &str = "KCL_SIGNAL_GRACE_MS";

/// Exit code after a second SIGINT (128 + SIGINT, as shells report it).
pub const SECOND_INTERRUPT_EXIT_CODE: i32 = 130;

static GRACE_MS: AtomicU64 = AtomicU64::new(DEFAULT_SIGNAL_GRACE.as_millis() as u64);
/// The runtime is between actions, waiting for the daemon's next line.
static WAITING: AtomicBool = AtomicBool::new(false);
/// When the runtime last started or finished an action (milliseconds since `epoch()`).
static LAST_ACTIVITY_MS: AtomicU64 = AtomicU64::new(0);
static SHARD: Mutex<Option<String>> = Mutex::new(None);
/// Held while the runtime leaves the waiting state, and by the watcher while it decides to exit,
/// so that the process never exits once an action has started.
static GATE: Mutex<()> = Mutex::new(());

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

/// Sets the grace period (the environment variable, when set, wins).
pub(crate) fn set_grace(grace: Duration) {
    let grace = std::env::var(SIGNAL_GRACE_ENV)
        .ok()
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map_or(grace, Duration::from_millis);
    GRACE_MS.store(grace.as_millis() as u64, Ordering::Relaxed);
}

/// The shard this process serves, for the log lines of the signal watcher.
pub(crate) fn set_shard(shard: &str) {
    *SHARD.lock().unwrap_or_else(|e| e.into_inner()) = Some(shard.to_owned());
}

/// The runtime waits for the daemon's next action: no status is owed and no unread line is
/// buffered.
pub(crate) fn waiting() {
    LAST_ACTIVITY_MS.store(now_ms(), Ordering::Relaxed);
    WAITING.store(true, Ordering::SeqCst);
}

/// An action arrived: until the next `waiting`, the process must not exit on its own.
pub(crate) fn working() {
    let _gate = GATE.lock().unwrap_or_else(|e| e.into_inner());
    WAITING.store(false, Ordering::SeqCst);
    LAST_ACTIVITY_MS.store(now_ms(), Ordering::Relaxed);
}

fn shard_prefix() -> String {
    match &*SHARD.lock().unwrap_or_else(|e| e.into_inner()) {
        Some(shard) => format!("shard {shard}: "),
        None => String::new(),
    }
}

#[cfg(unix)]
pub(crate) use unix::{install, watch_input};

/// Signals are not handled on this platform.
#[cfg(not(unix))]
pub(crate) fn install() -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
mod unix {
    use std::io;
    use std::sync::atomic::AtomicI32;
    use std::sync::atomic::AtomicU32;

    use super::*;

    /// Write end of the pipe that wakes the watcher thread (-1 until installed).
    static WAKE: AtomicI32 = AtomicI32::new(-1);
    /// The daemon's pipe, once a runtime reads it (-1 before).
    static INPUT: AtomicI32 = AtomicI32::new(-1);

    /// The descriptor the runtime reads the daemon's lines from: the watcher never exits while
    /// it holds an unread line.
    pub(crate) fn watch_input(fd: libc::c_int) {
        INPUT.store(fd, Ordering::SeqCst);
    }

    /// Whether the daemon's pipe has something to read (a line, or its end).
    fn input_pending() -> bool {
        let fd = INPUT.load(Ordering::SeqCst);
        if fd < 0 {
            return false;
        }
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll with no wait on a descriptor the runtime keeps open for the process's life.
        unsafe { libc::poll(&mut poll, 1, 0) > 0 }
    }
    static INTERRUPTS: AtomicU32 = AtomicU32::new(0);

    /// Installs the SIGINT and SIGTERM handlers and the watcher thread, once per process.
    pub(crate) fn install() -> io::Result<()> {
        static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
        INSTALLED
            .get_or_init(|| install_once().map_err(|e| e.to_string()))
            .clone()
            .map_err(io::Error::other)
    }

    fn install_once() -> io::Result<()> {
        let _ = epoch();
        let mut fds = [0; 2];
        // SAFETY: plain syscalls on descriptors this function creates and then owns.
        unsafe {
            if libc::pipe(fds.as_mut_ptr()) < 0 {
                return Err(io::Error::last_os_error());
            }
            for fd in fds {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
            // The handler must never block on a full pipe.
            let flags = libc::fcntl(fds[1], libc::F_GETFL);
            libc::fcntl(fds[1], libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        let read_end = fds[0];
        std::thread::Builder::new()
            .name("kcl-signals".into())
            .spawn(move || watch(read_end))?;
        WAKE.store(fds[1], Ordering::SeqCst);
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: the handler only touches atomics and calls async-signal-safe functions
            // (write, _exit).
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                if libc::sigaction(signal, &action, std::ptr::null_mut()) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(())
    }

    extern "C" fn on_signal(signal: libc::c_int) {
        if signal == libc::SIGINT && INTERRUPTS.fetch_add(1, Ordering::SeqCst) >= 1 {
            // SAFETY: _exit is async-signal-safe.
            unsafe { libc::_exit(SECOND_INTERRUPT_EXIT_CODE) };
        }
        let fd = WAKE.load(Ordering::SeqCst);
        if fd >= 0 {
            let byte = signal as u8;
            // SAFETY: write is async-signal-safe; errno is saved and restored around it so the
            // interrupted code never sees it change.
            unsafe {
                #[cfg(any(target_os = "linux", target_os = "android"))]
                let saved = *libc::__errno_location();
                libc::write(fd, (&byte as *const u8).cast(), 1);
                #[cfg(any(target_os = "linux", target_os = "android"))]
                {
                    *libc::__errno_location() = saved;
                }
            }
        }
    }

    fn signal_name(signal: u8) -> &'static str {
        match i32::from(signal) {
            libc::SIGINT => "SIGINT",
            libc::SIGTERM => "SIGTERM",
            _ => "a signal",
        }
    }

    /// Reads one signal number from the pipe, waiting at most `timeout` (forever: `None`).
    fn next_signal(fd: libc::c_int, timeout: Option<Duration>) -> Option<u8> {
        let millis = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll and read on the pipe's read end, which this thread owns.
        unsafe {
            if libc::poll(&mut poll, 1, millis) <= 0 {
                return None;
            }
            let mut byte = 0u8;
            (libc::read(fd, (&mut byte as *mut u8).cast(), 1) == 1).then_some(byte)
        }
    }

    fn watch(fd: libc::c_int) {
        let first = loop {
            if let Some(signal) = next_signal(fd, None) {
                break signal;
            }
        };
        let since = Instant::now();
        let grace = Duration::from_millis(GRACE_MS.load(Ordering::Relaxed));
        tracing::warn!(
            "{}received {}: still serving the daemon so that its graceful shutdown can checkpoint (shutdownRequested, then leaseLost); exiting when it closes stdin, or on its own after {grace:?} without a daemon action. A second SIGINT (Ctrl-C) exits at once",
            shard_prefix(),
            signal_name(first),
        );
        loop {
            if let Some(signal) = next_signal(fd, Some(Duration::from_millis(50))) {
                tracing::warn!(
                    "{}received {} again; still serving the daemon",
                    shard_prefix(),
                    signal_name(signal)
                );
            }
            if !WAITING.load(Ordering::SeqCst) {
                continue;
            }
            let idle_from = Duration::from_millis(LAST_ACTIVITY_MS.load(Ordering::Relaxed))
                .max(since - epoch());
            if epoch().elapsed().saturating_sub(idle_from) < grace {
                continue;
            }
            // Between two actions, no status owed, nothing unread: exiting now loses nothing.
            let _gate = GATE.lock().unwrap_or_else(|e| e.into_inner());
            if WAITING.load(Ordering::SeqCst) && !input_pending() {
                tracing::warn!(
                    "{}no daemon action within {grace:?} of {}; exiting (code 0) between actions, no status owed. The next owner of the lease resumes from its last checkpoint",
                    shard_prefix(),
                    signal_name(first),
                );
                std::process::exit(0);
            }
        }
    }
}
