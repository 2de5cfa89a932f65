//! Keeps the protocol channel private. The daemon's pipes move to new close-on-exec descriptors:
//! descriptor 1 becomes a copy of stderr, so stray prints from any code in the process land on
//! stderr, and descriptor 0 becomes `/dev/null`, so no code in the process (and no program it
//! starts) can read a line meant for the runtime, and `std::io::stdin()` reads end of file at once
//! instead of waiting forever.

use std::fs::File;
use std::io;
#[cfg(unix)]
use std::io::Write;
use std::sync::Mutex;

/// The daemon's channel, once moved off descriptors 0 and 1.
#[cfg(unix)]
pub(crate) struct Channel {
    /// The daemon's lines (the real stdin).
    pub(crate) input: File,
    /// Where protocol lines go (the real stdout).
    pub(crate) output: File,
}

enum State {
    /// Descriptors 0 and 1 are still the daemon's pipes.
    Untouched,
    /// Moved, not yet handed to a runtime.
    #[cfg(unix)]
    Isolated(Channel),
    /// A runtime has it.
    Taken,
}

static STATE: Mutex<State> = Mutex::new(State::Untouched);

/// Moves the daemon's pipes to private descriptors now, if not done yet. Idempotent.
pub(crate) fn isolate() -> io::Result<()> {
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    if let State::Untouched = *state {
        #[cfg(unix)]
        {
            *state = State::Isolated(move_off_standard_descriptors()?);
        }
    }
    Ok(())
}

/// Hands the daemon's channel to the runtime, once per process.
#[cfg(unix)]
pub(crate) fn take() -> io::Result<Channel> {
    isolate()?;
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    match std::mem::replace(&mut *state, State::Taken) {
        State::Isolated(channel) => Ok(channel),
        State::Untouched | State::Taken => Err(already_taken()),
    }
}

fn already_taken() -> io::Error {
    io::Error::other(
        "the daemon's stdin and stdout were already taken: run the processor once per process",
    )
}

/// On platforms without file descriptors the real stdin and stdout are used as they are; user
/// code must then neither print to stdout nor read stdin.
#[cfg(not(unix))]
pub(crate) fn take() -> io::Result<(io::Stdin, io::Stdout)> {
    let mut state = STATE.lock().unwrap_or_else(|e| e.into_inner());
    if let State::Taken = std::mem::replace(&mut *state, State::Taken) {
        return Err(already_taken());
    }
    tracing::warn!(
        "stdin/stdout isolation is not available on this platform; do not print to stdout or read stdin"
    );
    Ok((io::stdin(), io::stdout()))
}

#[cfg(unix)]
fn move_off_standard_descriptors() -> io::Result<Channel> {
    use std::os::fd::FromRawFd;

    io::stdout().flush()?;
    let dev_null = File::open("/dev/null")?;
    // SAFETY: plain descriptor syscalls on descriptors this process owns; each new descriptor is
    // owned by the File built from it from here on.
    unsafe {
        let output = libc::fcntl(libc::STDOUT_FILENO, libc::F_DUPFD_CLOEXEC, 3);
        if output < 0 {
            return Err(io::Error::last_os_error());
        }
        let output = File::from_raw_fd(output);
        let input = libc::fcntl(libc::STDIN_FILENO, libc::F_DUPFD_CLOEXEC, 3);
        if input < 0 {
            return Err(io::Error::last_os_error());
        }
        let input = File::from_raw_fd(input);
        use std::os::fd::AsRawFd;
        if libc::dup2(dev_null.as_raw_fd(), libc::STDIN_FILENO) < 0
            || libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) < 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(Channel { input, output })
    }
}
