//! Small file and output helpers: atomic rewrites through a safely created temporary file, an
//! exclusive lock file, and stdout that tolerates a closed pipe.

use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The mode of a file the tool creates that holds state or settings (owner read/write only);
/// a file that is replaced keeps its own mode instead.
pub(crate) const PRIVATE_MODE: u32 = 0o600;

/// How many names [`TempFile::beside`] tries before it gives up.
const TEMP_NAME_TRIES: u32 = 16;

/// A new temporary file next to the file it will replace, created exclusively (`O_EXCL`, and
/// `O_NOFOLLOW` on Unix): a file or symbolic link already at its name is never opened, written
/// or removed. It is deleted when dropped unless [`TempFile::persist`] renamed it into place.
///
/// Its mode is that of the file it replaces, or `new_mode` if there is none yet.
pub(crate) struct TempFile {
    file: File,
    path: PathBuf,
    target: PathBuf,
    persisted: bool,
}

impl TempFile {
    /// Creates `.NAME.TAG-PID-N` (then, if that name is taken, `.NAME.TAG-PID-N-RANDOM`, a
    /// bounded number of times) in the folder of `target`.
    pub(crate) fn beside(target: &Path, tag: &str, new_mode: u32) -> io::Result<TempFile> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = parent_dir(target);
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        let mode = existing_mode(target).unwrap_or(new_mode);
        let pid = std::process::id();
        for attempt in 0..TEMP_NAME_TRIES {
            let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
            let file_name = if attempt == 0 {
                format!(".{name}.{tag}-{pid}-{unique}")
            } else {
                // Someone else's file holds the predictable name: make the next one unguessable.
                format!(".{name}.{tag}-{pid}-{unique}-{:016x}", random())
            };
            let path = dir.join(file_name);
            match create_new(&path, mode) {
                Ok(file) => {
                    let temp = TempFile {
                        file,
                        path,
                        target: target.to_path_buf(),
                        persisted: false,
                    };
                    // The creation mode went through the umask; a replaced file's mode is
                    // copied exactly.
                    set_mode(&temp.file, mode)?;
                    return Ok(temp);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot create {}: {e}", path.display()),
                    ));
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "cannot create a temporary file in {}: {TEMP_NAME_TRIES} names .{name}.{tag}-* were taken",
                dir.display()
            ),
        ))
    }

    /// Flushes the data to disk, renames the file over its target and flushes the folder, so
    /// that the new content survives a crash. Readers see the old content or the new one.
    pub(crate) fn persist(mut self) -> io::Result<()> {
        self.file.sync_all()?;
        fs::rename(&self.path, &self.target)?;
        self.persisted = true;
        sync_dir(parent_dir(&self.target))
    }
}

impl Write for TempFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes `bytes` to `path` atomically through a [`TempFile`]: readers see the old content or
/// the new one, never a mix. A new file gets [`PRIVATE_MODE`]; a replaced one keeps its mode.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut temp = TempFile::beside(path, "tmp", PRIVATE_MODE)?;
    temp.write_all(bytes)?;
    temp.persist()
}

/// An exclusive advisory lock (`flock`) on a lock file, held until it is dropped (or the
/// process ends). The holder's pid is written into the file, for the message of whoever
/// finds it taken. The lock file itself is left in place: removing it would let two
/// processes lock two different files of the same name.
pub(crate) struct FileLock {
    _file: File,
}

/// Why [`FileLock::try_acquire`] got no lock.
pub(crate) enum LockError {
    /// Another process holds it; its pid if the file names it.
    Held(Option<u32>),
    /// The lock file could not be opened or locked.
    Io(io::Error),
}

impl FileLock {
    /// Takes the lock on `path` (created [`PRIVATE_MODE`] if missing; a symbolic link there is
    /// refused) without waiting.
    pub(crate) fn try_acquire(path: &Path) -> Result<FileLock, LockError> {
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // No symlink to follow, and no blocking open of a FIFO planted there.
            options
                .mode(PRIVATE_MODE)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
        }
        let mut file = options.open(path).map_err(LockError::Io)?;
        let meta = file.metadata().map_err(LockError::Io)?;
        if !meta.is_file() {
            return Err(LockError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Held(text.trim().parse().ok()));
            }
            Err(TryLockError::Error(e)) => return Err(LockError::Io(e)),
        }
        let record = (|| {
            file.set_len(0)?;
            file.rewind()?;
            writeln!(file, "{}", std::process::id())
        })();
        record.map_err(LockError::Io)?;
        Ok(FileLock { _file: file })
    }
}

/// `path` with `suffix` appended to its last component (`cp.json` → `cp.json.lock`).
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut text = path.as_os_str().to_owned();
    text.push(suffix);
    PathBuf::from(text)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_EXCL already refuses a symbolic link at the name; O_NOFOLLOW says so twice.
        options.mode(mode).custom_flags(libc::O_NOFOLLOW);
    }
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)
}

/// The permission bits of the regular file at `path` (following a symbolic link), if any.
#[cfg(unix)]
fn existing_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn existing_mode(_path: &Path) -> Option<u32> {
    None
}

#[cfg(unix)]
fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_file: &File, _mode: u32) -> io::Result<()> {
    Ok(())
}

/// Flushes a folder's entries (the rename) to disk; file systems that cannot are let be.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOTSUP)) => Ok(()),
        result => result,
    }
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// 64 random bits from std's per-process random hash keys.
fn random() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish()
}

/// Writes `text` to stdout; `false` if stdout is gone (e.g. `kcl ... | head` exited), instead of
/// the panic of `print!`.
pub(crate) fn print_stdout(text: &str) -> bool {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .is_ok()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kcl-fsutil-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_are_private_and_replaced_files_keep_their_mode() {
        let dir = scratch("mode");
        let path = dir.join("f");
        write_atomically(&path, b"one").unwrap();
        assert_eq!(mode(&path), 0o600);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(mode(&path), 0o644);
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_dropped_temp_file_is_removed_and_never_replaces_the_target() {
        let dir = scratch("drop");
        let path = dir.join("f");
        fs::write(&path, b"old").unwrap();
        let mut temp = TempFile::beside(&path, "part", PRIVATE_MODE).unwrap();
        temp.write_all(b"half").unwrap();
        let names = || -> Vec<String> {
            fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        };
        let with_temp = names();
        assert_eq!(with_temp.len(), 2, "{with_temp:?}");
        assert!(
            with_temp.iter().any(|n| n.starts_with(".f.part-")),
            "{with_temp:?}"
        );
        drop(temp);
        assert_eq!(names(), ["f"]);
        assert_eq!(fs::read(&path).unwrap(), b"old");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lock_is_exclusive_names_its_holder_and_is_freed_on_drop() {
        let dir = scratch("lock");
        let path = with_suffix(&dir.join("cp.json"), ".lock");
        assert_eq!(path.file_name().unwrap(), "cp.json.lock");
        let held = FileLock::try_acquire(&path).ok().unwrap();
        match FileLock::try_acquire(&path) {
            Err(LockError::Held(pid)) => assert_eq!(pid, Some(std::process::id())),
            _ => panic!("a second lock on the same file must fail"),
        }
        drop(held);
        assert!(FileLock::try_acquire(&path).is_ok());
        let link = dir.join("link.lock");
        std::os::unix::fs::symlink(dir.join("victim"), &link).unwrap();
        assert!(matches!(
            FileLock::try_acquire(&link),
            Err(LockError::Io(_))
        ));
        assert!(
            !dir.join("victim").exists(),
            "a planted link is not followed"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
