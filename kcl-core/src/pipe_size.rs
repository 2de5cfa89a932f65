//! The capacity of the pipe the daemon writes into. Linux gives a pipe 64 KiB; the daemon writes
//! `processRecords` lines of half a megabyte and more, so a line crosses the pipe in many
//! pieces, each a wake-up of the reader and of the writer. The child may enlarge the pipe it
//! reads (`F_SETPIPE_SZ`, up to `/proc/sys/fs/pipe-max-size`, 1 MiB by default, without
//! privileges); where that is refused (not a pipe, not Linux, the user's pipe quota
//! `pipe-user-pages-soft` used up), the pipe stays as it is, silently.
//!
//! `KCL_PIPE_SIZE` sets the capacity in bytes (the kernel rounds it up to a power of two pages);
//! `0` leaves the pipe alone. BENCHMARKS.md gives the measurements behind the default.
//!
//! Why 256 KiB and not the 1 MiB an unprivileged process may ask for: the kernel counts every
//! pipe's capacity against its user's quota (`/proc/sys/fs/pipe-user-pages-soft`, 64 MiB by
//! default), and once a user is over it, each new pipe of that user gets 8 KiB. The daemon gives
//! each child three pipes of 64 KiB; with the child's input at 256 KiB that is 384 KiB per
//! child, so a worker reaches the quota at about 170 children (at 1 MiB it would at about 57,
//! and the daemon's pipes for later children would be 8 KiB). Measured on 1,000 x 200 B
//! batches, 256 KiB already cuts the context switches per batch from 9 to 3 (1 MiB: 2).

/// The environment variable that sets the capacity.
pub(crate) const ENV: &str = "KCL_PIPE_SIZE";

/// The capacity asked for when `KCL_PIPE_SIZE` is not set.
pub(crate) const DEFAULT_BYTES: usize = 256 * 1024;

/// The capacity `KCL_PIPE_SIZE` asks for: `None` to leave the pipe alone. A value that is not a
/// number of bytes is reported and the default is used.
pub(crate) fn requested(value: Option<&str>) -> Option<usize> {
    let Some(value) = value else {
        return Some(DEFAULT_BYTES);
    };
    match value.trim().parse::<usize>() {
        Ok(0) => None,
        Ok(bytes) => Some(bytes),
        Err(_) => {
            tracing::warn!(
                "{ENV}={value:?} is not a number of bytes; using {DEFAULT_BYTES} (0 leaves the pipe as it is)"
            );
            Some(DEFAULT_BYTES)
        }
    }
}

/// Asks for `bytes` of capacity on the pipe behind `fd`; the capacity it has afterwards, or
/// `None` where the request was refused (then nothing changed).
#[cfg(target_os = "linux")]
pub(crate) fn enlarge(fd: std::os::fd::BorrowedFd<'_>, bytes: usize) -> Option<usize> {
    use std::os::fd::AsRawFd;
    let bytes = libc::c_int::try_from(bytes).ok()?;
    // SAFETY: `F_SETPIPE_SZ` takes an int and changes only the pipe's capacity; on anything but
    // a pipe it fails with EBADF and changes nothing.
    let size = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, bytes) };
    usize::try_from(size).ok()
}

/// Other systems have no such request.
#[cfg(not(target_os = "linux"))]
pub(crate) fn enlarge(_fd: std::os::fd::BorrowedFd<'_>, _bytes: usize) -> Option<usize> {
    None
}

/// Enlarges the daemon's pipe behind `input` as `KCL_PIPE_SIZE` says.
pub(crate) fn apply(input: std::os::fd::BorrowedFd<'_>) {
    let Some(bytes) = requested(std::env::var(ENV).ok().as_deref()) else {
        return;
    };
    match enlarge(input, bytes) {
        Some(size) => tracing::debug!("the daemon's pipe holds {size} bytes ({ENV})"),
        None => tracing::debug!("the daemon's pipe keeps its capacity (not a pipe, or refused)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_sets_or_disables_the_capacity() {
        assert_eq!(requested(None), Some(DEFAULT_BYTES));
        assert_eq!(requested(Some("0")), None);
        assert_eq!(requested(Some("262144")), Some(262_144));
        assert_eq!(requested(Some(" 65536 ")), Some(65_536));
        assert_eq!(requested(Some("1M")), Some(DEFAULT_BYTES));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_pipe_is_enlarged_and_a_file_is_left_alone() {
        use std::os::fd::{AsFd, FromRawFd, OwnedFd};
        let mut fds = [0; 2];
        // SAFETY: `pipe` writes two new descriptors, each owned by one `OwnedFd` below.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let (read, _write) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: reads the capacity of a pipe this test owns.
        let before = unsafe { libc::fcntl(fds[0], libc::F_GETPIPE_SZ) };
        let after = enlarge(read.as_fd(), 256 * 1024)
            .expect("an unprivileged user may ask up to pipe-max-size");
        assert!(
            after >= 256 * 1024 && after as libc::c_int > before,
            "{before} -> {after}"
        );
        let file = std::fs::File::open("/proc/self/status").unwrap();
        assert_eq!(enlarge(file.as_fd(), 256 * 1024), None);
    }
}
