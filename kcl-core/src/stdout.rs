//! Keeps the protocol channel private: the real stdout moves to a new descriptor and descriptor 1
//! becomes a copy of stderr, so stray prints from any code in the process land on stderr.

use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static TAKEN: AtomicBool = AtomicBool::new(false);

/// Takes the real stdout for the protocol, once per process.
///
/// After this call, `println!`, `std::io::stdout()` and C code writing to descriptor 1 all write
/// to stderr; only the returned handle reaches the daemon. The new descriptor is close-on-exec, so
/// programs the processor starts cannot write to the daemon either.
#[cfg(unix)]
pub(crate) fn take_protocol_stdout() -> io::Result<File> {
    use std::os::fd::FromRawFd;

    if TAKEN.swap(true, Ordering::SeqCst) {
        return Err(io::Error::other(
            "the protocol stdout was already taken: run the processor once per process",
        ));
    }
    io::stdout().flush()?;
    // SAFETY: plain descriptor syscalls on descriptors this process owns; the new descriptor is
    // owned by the returned File from here on.
    unsafe {
        let private = libc::fcntl(libc::STDOUT_FILENO, libc::F_DUPFD_CLOEXEC, 3);
        if private < 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) < 0 {
            let error = io::Error::last_os_error();
            libc::close(private);
            return Err(error);
        }
        Ok(File::from_raw_fd(private))
    }
}

/// On platforms without file descriptors the real stdout is used as it is; user code must then
/// not print to stdout.
#[cfg(not(unix))]
pub(crate) fn take_protocol_stdout() -> io::Result<impl Write> {
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Err(io::Error::other(
            "the protocol stdout was already taken: run the processor once per process",
        ));
    }
    tracing::warn!("stdout isolation is not available on this platform; do not print to stdout");
    Ok(io::stdout())
}
