//! The opt-in disk spool: every record taken is appended to a segment file before its ticket is
//! returned, marked answered in the segment's ack file once it has its final answer, and sent
//! again by the next producer on the same directory if the process dies first (`kill -9`).
//!
//! - Segments are `<n>.seg` (16 digits), rolled at a size; a segment whose records are all
//!   answered is deleted with its `<n>.ack`.
//! - [`Fsync::PerBatch`]: appends are written at once and synced by the spool's thread; a
//!   `send` returns its ticket after the sync that covers its record, and every append made
//!   while a sync runs is covered by the next one (group commit).
//! - `spool.lock` (an advisory `flock` on Unix) keeps a second producer out of the directory.
//! - At build, the records of earlier segments without an ack are copied into a new segment,
//!   handed to the producer ahead of new records, and the old segments deleted (see
//!   [`replay`]).

mod replay;
pub(crate) mod segment;

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};

use crate::api::Record;

pub(crate) use replay::{Recovered, remove as remove_replayed};

/// When the spool's appends are synced to the disk.
///
/// ```
/// use kcl_producer::{Fsync, SpoolConfig};
/// use std::time::Duration;
///
/// let config = SpoolConfig::new("/var/spool/orders").fsync(Fsync::Every(Duration::from_millis(50)));
/// assert_eq!(config.settings().1, Fsync::Every(Duration::from_millis(50)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// Each `send` returns after a sync covering its record; the records taken while a sync
    /// runs share the next one. Survives `kill -9` and a power loss.
    PerBatch,
    /// Appends are written at once and synced at this interval: survives `kill -9` (the
    /// written bytes are in the operating system's cache), may lose the last interval on a
    /// power loss or kernel crash.
    Every(Duration),
    /// Appends are written at once, never synced by the producer: survives `kill -9`, not a
    /// power loss.
    Never,
}

/// Where and how the producer spools records (see [`Builder::spool`](crate::Builder::spool)).
///
/// ```
/// use kcl_producer::{Fsync, SpoolConfig};
///
/// let config = SpoolConfig::new("/var/spool/orders").fsync(Fsync::PerBatch).max_bytes(1 << 30);
/// assert_eq!(config.settings().2, 1 << 30);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpoolConfig {
    dir: PathBuf,
    fsync: Fsync,
    max_bytes: u64,
    segment_bytes: u64,
}

impl SpoolConfig {
    /// A spool in `dir` (created if missing), synced per batch, of at most 1 GiB, in segments
    /// of 64 MiB.
    ///
    /// ```
    /// let config = kcl_producer::SpoolConfig::new("spool");
    /// assert_eq!(config.settings().0, std::path::Path::new("spool"));
    /// ```
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SpoolConfig {
            dir: dir.into(),
            fsync: Fsync::PerBatch,
            max_bytes: 1 << 30,
            segment_bytes: 64 << 20,
        }
    }

    /// When appends are synced (default [`Fsync::PerBatch`]).
    ///
    /// ```
    /// use kcl_producer::{Fsync, SpoolConfig};
    /// assert_eq!(SpoolConfig::new("d").fsync(Fsync::Never).settings().1, Fsync::Never);
    /// ```
    pub fn fsync(mut self, fsync: Fsync) -> Self {
        self.fsync = fsync;
        self
    }

    /// The most bytes the spool's segments may take on disk (default 1 GiB): past it, `send`
    /// waits and `try_send` hands the record back as `Full`, as with the memory budget. At
    /// least four times the stream's largest record (plus a few bytes each).
    ///
    /// ```
    /// assert_eq!(kcl_producer::SpoolConfig::new("d").max_bytes(64 << 20).settings().2, 64 << 20);
    /// ```
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The size at which a segment is closed and the next begun (default 64 MiB; at most a
    /// quarter of `max_bytes` is used, so that answered segments can always be deleted).
    ///
    /// ```
    /// assert_eq!(kcl_producer::SpoolConfig::new("d").segment_bytes(1 << 20).settings().3, 1 << 20);
    /// ```
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }

    /// The directory, the sync policy, the disk budget and the segment size.
    ///
    /// ```
    /// let config = kcl_producer::SpoolConfig::new("d");
    /// let (dir, _fsync, max_bytes, segment_bytes) = config.settings();
    /// assert_eq!((dir.to_str(), max_bytes, segment_bytes), (Some("d"), 1 << 30, 64 << 20));
    /// ```
    pub fn settings(&self) -> (&Path, Fsync, u64, u64) {
        (&self.dir, self.fsync, self.max_bytes, self.segment_bytes)
    }
}

/// Why the spool could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    Locked,
    Io(io::Error),
    Settings(String),
}

impl From<io::Error> for OpenError {
    fn from(error: io::Error) -> Self {
        OpenError::Io(error)
    }
}

/// The spool, shared by the handle (appends) and the task (acks); dropped with the last of
/// them, it stops its sync thread.
pub(crate) struct Spool {
    core: Arc<Core>,
    /// The disk budget, in bytes: taken per frame, given back when a segment is deleted.
    pub(crate) disk: Arc<Semaphore>,
    thread: Option<JoinHandle<()>>,
}

/// What the spool shares with its sync thread.
struct Core {
    state: Mutex<State>,
    /// The sync thread waits here for appends; `try_send` waits here for its sync.
    wake: Condvar,
    synced: Condvar,
    synced_tx: watch::Sender<u64>,
    fsync: Fsync,
    /// Holds the lock while the spool lives.
    _lock: File,
}

struct State {
    dir: PathBuf,
    roll_bytes: u64,
    next_no: u64,
    active: Segment,
    /// Closed segments, by their first record's id.
    sealed: BTreeMap<u64, Segment>,
    /// Frames written, and frames covered by a sync.
    written: u64,
    synced: u64,
    /// A sync failed: nothing more is durable.
    broken: Option<String>,
    closing: bool,
    frame: Vec<u8>,
}

struct Segment {
    no: u64,
    file: Arc<File>,
    bytes: u64,
    first_id: Option<u64>,
    records: u64,
    answered: u64,
    acks: Option<File>,
}

impl Segment {
    fn path(dir: &Path, no: u64, ext: &str) -> PathBuf {
        dir.join(format!("{no:016}.{ext}"))
    }

    fn create(dir: &Path, no: u64) -> io::Result<Segment> {
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(Self::path(dir, no, "seg"))?;
        file.write_all(segment::MAGIC)?;
        // The new name is durable too (once per segment): a synced frame in a file that a power
        // loss unlinks would be lost all the same.
        #[cfg(unix)]
        File::open(dir)?.sync_all()?;
        Ok(Segment {
            no,
            file: Arc::new(file),
            bytes: segment::MAGIC.len() as u64,
            first_id: None,
            records: 0,
            answered: 0,
            acks: None,
        })
    }

    fn done(&self) -> bool {
        self.answered >= self.records
    }

    /// Deletes the segment's files; returns the budget it held.
    fn delete(self, dir: &Path) -> u64 {
        drop(self.acks);
        for ext in ["seg", "ack"] {
            let path = Self::path(dir, self.no, ext);
            if let Err(error) = std::fs::remove_file(&path) {
                if error.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), %error, "cannot delete an answered spool file");
                }
            }
        }
        self.bytes - segment::MAGIC.len() as u64
    }
}

impl Spool {
    /// Locks `config.dir`, reads what earlier producers left there, and starts a new segment.
    /// `max_frame` is the largest frame a valid record can take.
    pub(crate) fn open(
        config: &SpoolConfig,
        max_frame: usize,
    ) -> Result<(Arc<Spool>, Recovered), OpenError> {
        let max_frame = max_frame as u64;
        let roll_bytes = config.segment_bytes.min(config.max_bytes / 4);
        if roll_bytes < max_frame + segment::MAGIC.len() as u64 {
            return Err(OpenError::Settings(format!(
                "the spool's max_bytes {} (a segment at most a quarter of it) and segment_bytes {} must fit the largest record's frame of {max_frame} bytes",
                config.max_bytes, config.segment_bytes
            )));
        }
        std::fs::create_dir_all(&config.dir)?;
        let lock = lock(&config.dir)?;
        let recovered = replay::scan(&config.dir)?;
        let active = Segment::create(&config.dir, recovered.next_no)?;
        let (synced_tx, _) = watch::channel(0);
        let core = Arc::new(Core {
            state: Mutex::new(State {
                dir: config.dir.clone(),
                roll_bytes,
                next_no: recovered.next_no + 1,
                active,
                sealed: BTreeMap::new(),
                written: 0,
                synced: 0,
                broken: None,
                closing: false,
                frame: Vec::new(),
            }),
            wake: Condvar::new(),
            synced: Condvar::new(),
            synced_tx,
            fsync: config.fsync,
            _lock: lock,
        });
        let thread = match config.fsync {
            Fsync::Never => None,
            _ => {
                let core = Arc::clone(&core);
                Some(
                    std::thread::Builder::new()
                        .name("kcl-spool-sync".to_owned())
                        .spawn(move || sync_loop(&core))?,
                )
            }
        };
        let disk = usize::try_from(config.max_bytes)
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        let spool = Spool {
            core,
            disk: Arc::new(Semaphore::new(disk)),
            thread,
        };
        Ok((Arc::new(spool), recovered))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.core.state()
    }

    /// Writes the frame of record `id` (ids grow by one per call); returns its position, to
    /// wait for with [`Spool::durable`].
    pub(crate) fn append(&self, id: u64, record: &Record) -> io::Result<u64> {
        let mut state = self.state();
        if let Some(broken) = &state.broken {
            return Err(io::Error::other(broken.clone()));
        }
        let mut frame = std::mem::take(&mut state.frame);
        frame.clear();
        segment::encode(id, record, &mut frame);
        let result = state.append(id, &frame, self.core.fsync);
        state.frame = frame;
        let position = match result {
            Ok(position) => position,
            Err(error) => {
                // A frame may be half written: nothing more goes into this segment.
                tracing::error!(%error, "cannot write to the spool: records can no longer be taken");
                state.broken = Some(format!("cannot write to the spool: {error}"));
                return Err(error);
            }
        };
        drop(state);
        if self.core.fsync == Fsync::PerBatch {
            self.core.wake.notify_one();
        }
        Ok(position)
    }

    /// Waits until the append at `position` is as durable as the policy asks.
    pub(crate) async fn durable(&self, position: u64) -> io::Result<()> {
        if self.core.fsync != Fsync::PerBatch {
            return Ok(());
        }
        let mut synced = self.core.synced_tx.subscribe();
        let _ = synced.wait_for(|synced| *synced >= position).await;
        match &self.state().broken {
            Some(broken) => Err(io::Error::other(broken.clone())),
            None => Ok(()),
        }
    }

    /// [`Spool::durable`], blocking the thread (for `try_send`).
    pub(crate) fn durable_blocking(&self, position: u64) -> io::Result<()> {
        if self.core.fsync != Fsync::PerBatch {
            return Ok(());
        }
        let mut state = self.state();
        while state.synced < position && state.broken.is_none() {
            state = self
                .core
                .synced
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
        match &state.broken {
            Some(broken) => Err(io::Error::other(broken.clone())),
            None => Ok(()),
        }
    }

    /// Syncs what was written (unless the policy never syncs).
    pub(crate) fn sync_now(&self) -> io::Result<()> {
        if self.core.fsync == Fsync::Never {
            return Ok(());
        }
        let file = Arc::clone(&self.state().active.file);
        file.sync_data()
    }

    /// Marks records answered; deletes the closed segments left with nothing unanswered.
    pub(crate) fn ack(&self, ids: &[u64]) {
        if ids.is_empty() {
            return;
        }
        let mut state = self.state();
        let released = state.ack(ids);
        drop(state);
        if released > 0 {
            self.disk
                .add_permits(usize::try_from(released).unwrap_or(usize::MAX));
        }
    }
}

impl Core {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    fn append(&mut self, id: u64, frame: &[u8], fsync: Fsync) -> io::Result<u64> {
        let len = frame.len() as u64;
        if self.active.records > 0 && self.active.bytes + len > self.roll_bytes {
            self.roll(fsync)?;
        }
        (&*self.active.file).write_all(frame)?;
        self.active.bytes += len;
        self.active.first_id.get_or_insert(id);
        self.active.records += 1;
        self.written += 1;
        Ok(self.written)
    }

    /// Closes the active segment (synced, unless the policy never syncs) and starts the next.
    fn roll(&mut self, fsync: Fsync) -> io::Result<()> {
        if fsync != Fsync::Never {
            self.active.file.sync_data()?;
        }
        let next = Segment::create(&self.dir, self.next_no)?;
        self.next_no += 1;
        let sealed = std::mem::replace(&mut self.active, next);
        let first = sealed
            .first_id
            .expect("a segment rolls once it holds a record");
        if sealed.done() {
            sealed.delete(&self.dir);
        } else {
            self.sealed.insert(first, sealed);
        }
        Ok(())
    }

    /// Returns the budget freed by deleted segments.
    fn ack(&mut self, ids: &[u64]) -> u64 {
        let mut entries: BTreeMap<Option<u64>, Vec<u8>> = BTreeMap::new();
        for &id in ids {
            let key = match self.active.first_id {
                Some(first) if id >= first => None,
                _ => match self.sealed.range(..=id).next_back() {
                    Some((first, _)) => Some(*first),
                    None => {
                        tracing::warn!(id, "an answered record is in no spool segment");
                        continue;
                    }
                },
            };
            segment::ack(id, entries.entry(key).or_default());
        }
        let mut released = 0;
        for (key, bytes) in entries {
            let count = (bytes.len() / segment::ACK) as u64;
            let dir = self.dir.clone();
            let segment = match key {
                None => &mut self.active,
                Some(first) => self.sealed.get_mut(&first).expect("found above"),
            };
            segment.answered += count;
            if let (Some(first), true) = (key, segment.done()) {
                let segment = self.sealed.remove(&first).expect("found");
                released += segment.delete(&dir);
                continue;
            }
            if let Err(error) = write_acks(&dir, segment, &bytes) {
                // Not fatal: the records would be sent again by the next producer (duplicates).
                tracing::warn!(segment = segment.no, %error, "cannot write to a spool ack file");
            }
        }
        released
    }
}

fn write_acks(dir: &Path, segment: &mut Segment, bytes: &[u8]) -> io::Result<()> {
    if segment.acks.is_none() {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(Segment::path(dir, segment.no, "ack"))?;
        segment.acks = Some(file);
    }
    segment.acks.as_mut().expect("opened").write_all(bytes)
}

/// The sync thread: syncs the active segment whenever appends wait for it (`PerBatch`) or at
/// the interval (`Every`), until the spool is dropped.
fn sync_loop(spool: &Core) {
    loop {
        let (file, target) = {
            let mut state = spool.state();
            match spool.fsync {
                Fsync::Every(interval) => {
                    if !state.closing {
                        state = spool
                            .wake
                            .wait_timeout(state, interval)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                }
                _ => {
                    while state.written == state.synced && !state.closing {
                        state = spool.wake.wait(state).unwrap_or_else(|p| p.into_inner());
                    }
                }
            }
            if state.closing {
                return;
            }
            if state.written == state.synced {
                // `Every`: nothing new since the last sync.
                continue;
            }
            (Arc::clone(&state.active.file), state.written)
        };
        // Frames in segments closed since were synced when they closed.
        let result = file.sync_data();
        let mut state = spool.state();
        match result {
            Ok(()) => state.synced = state.synced.max(target),
            Err(error) => {
                tracing::error!(%error, "cannot sync the spool: records can no longer be taken");
                state.broken = Some(format!("cannot sync the spool: {error}"));
            }
        }
        let synced = if state.broken.is_some() {
            u64::MAX
        } else {
            state.synced
        };
        drop(state);
        spool.synced.notify_all();
        spool.synced_tx.send_replace(synced);
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        self.state().closing = true;
        self.core.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let mut state = self.state();
        if state.active.done() {
            let next = state.next_no;
            let dir = state.dir.clone();
            // The active segment goes like a closed one: replaced by nothing.
            let placeholder = Segment {
                no: next,
                file: Arc::clone(&state.active.file),
                bytes: segment::MAGIC.len() as u64,
                first_id: None,
                records: 0,
                answered: 0,
                acks: None,
            };
            std::mem::replace(&mut state.active, placeholder).delete(&dir);
        } else if self.core.fsync != Fsync::Never {
            if let Err(error) = state.active.file.sync_data() {
                tracing::warn!(%error, "cannot sync the spool at its close");
            }
        }
    }
}

/// Takes `dir`'s lock file, or says who holds it.
fn lock(dir: &Path) -> Result<File, OpenError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("spool.lock"))?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor this function owns; no memory is shared.
        #[allow(unsafe_code)]
        let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if taken != 0 {
            let error = io::Error::last_os_error();
            return Err(if error.kind() == io::ErrorKind::WouldBlock {
                OpenError::Locked
            } else {
                OpenError::Io(error)
            });
        }
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory removed at the end of the test.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "kcl-spool-{name}-{}-{}",
                std::process::id(),
                fastrand::u64(..)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn record(n: u64) -> Record {
        Record::new(format!("key-{n}"), format!("record {n:04}"))
    }

    fn files(dir: &Path, ext: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(ext))
            .collect();
        names.sort();
        names
    }

    fn open(dir: &Path, fsync: Fsync, segment_bytes: u64) -> (Arc<Spool>, Recovered) {
        let config = SpoolConfig::new(dir)
            .fsync(fsync)
            .segment_bytes(segment_bytes);
        Spool::open(&config, 200).unwrap()
    }

    #[test]
    fn a_closed_segment_is_deleted_once_all_its_records_are_answered() {
        let dir = TempDir::new("delete");
        let (spool, recovered) = open(&dir.0, Fsync::PerBatch, 300);
        assert!(recovered.records.is_empty());
        let budget = spool.disk.available_permits();
        let frame = segment::frame_len(&record(0)) as u64;
        for id in 0..20 {
            let position = spool.append(id, &record(id)).unwrap();
            spool.durable_blocking(position).unwrap();
        }
        // Segments of 300 bytes: 8 for the magic, then whole frames.
        let per_segment = (300 - 8) / frame;
        let segments = files(&dir.0, ".seg");
        assert_eq!(
            segments.len() as u64,
            20u64.div_ceil(per_segment),
            "{segments:?}"
        );
        // The taken budget, as `send` takes it.
        let _taken = spool.disk.try_acquire_many((20 * frame) as u32).unwrap();
        _taken.forget();

        // All of the first segment but one record: it stays.
        spool.ack(&(1..per_segment).collect::<Vec<_>>());
        assert_eq!(files(&dir.0, ".seg"), segments);
        assert_eq!(files(&dir.0, ".ack").len(), 1);
        spool.ack(&[0]);
        assert_eq!(
            files(&dir.0, ".seg"),
            segments[1..],
            "the first segment is gone"
        );
        assert_eq!(files(&dir.0, ".ack"), Vec::<String>::new(), "with its acks");
        assert_eq!(
            spool.disk.available_permits() as u64,
            budget as u64 - 20 * frame + per_segment * frame,
            "its budget came back"
        );

        // The rest answered: the closed segments go at once, the active one when the spool
        // closes, which leaves nothing behind.
        spool.ack(&(per_segment..20).collect::<Vec<_>>());
        assert_eq!(files(&dir.0, ".seg").len(), 1);
        drop(spool);
        assert_eq!(files(&dir.0, ".seg"), Vec::<String>::new());
        let (_spool, recovered) = open(&dir.0, Fsync::Never, 300);
        assert!(recovered.records.is_empty());
    }

    #[test]
    fn a_second_spool_on_the_same_directory_is_refused_until_the_first_is_gone() {
        let dir = TempDir::new("lock");
        let (first, _) = open(&dir.0, Fsync::Never, 1 << 20);
        let config = SpoolConfig::new(&dir.0);
        assert!(matches!(Spool::open(&config, 200), Err(OpenError::Locked)));
        drop(first);
        let (_second, _) = open(&dir.0, Fsync::Never, 1 << 20);
    }

    #[test]
    fn unanswered_records_come_back_in_order_and_answered_ones_do_not() {
        let dir = TempDir::new("replay");
        let (spool, _) = open(&dir.0, Fsync::Every(Duration::from_millis(1)), 300);
        for id in 0..20 {
            spool.append(id, &record(id)).unwrap();
        }
        spool.ack(&[0, 3, 19]);
        drop(spool); // as a kill leaves it: the files, written
        let (spool, recovered) = open(&dir.0, Fsync::Never, 300);
        let expected: Vec<Record> = (0..20)
            .filter(|n| ![0, 3, 19].contains(n))
            .map(record)
            .collect();
        assert_eq!(recovered.records, expected);
        assert!(recovered.next_no > 0, "a new segment does not reuse a name");
        remove_replayed(&recovered.files);
        drop(spool);
        assert_eq!(files(&dir.0, ".seg"), Vec::<String>::new());
    }

    #[test]
    fn a_segment_torn_at_any_byte_replays_the_whole_records_before_the_tear_and_never_panics() {
        let source = TempDir::new("torn-source");
        let (spool, _) = open(&source.0, Fsync::Never, 1 << 20);
        let mut ends = vec![segment::MAGIC.len()];
        for id in 0..5 {
            spool.append(id, &record(id)).unwrap();
            ends.push(ends.last().unwrap() + segment::frame_len(&record(id)));
        }
        spool.ack(&[1]);
        drop(spool);
        let [seg] = &files(&source.0, ".seg")[..] else {
            panic!("one segment")
        };
        let bytes = std::fs::read(source.0.join(seg)).unwrap();
        let acks = std::fs::read(source.0.join(seg.replace(".seg", ".ack"))).unwrap();
        assert_eq!(bytes.len(), *ends.last().unwrap());
        for cut in 0..=bytes.len() {
            let dir = TempDir::new("torn");
            std::fs::write(dir.0.join(seg), &bytes[..cut]).unwrap();
            std::fs::write(dir.0.join(seg.replace(".seg", ".ack")), &acks).unwrap();
            let recovered = replay::scan(&dir.0).unwrap();
            let whole = ends[1..].iter().filter(|end| **end <= cut).count() as u64;
            let expected: Vec<Record> = (0..whole).filter(|n| *n != 1).map(record).collect();
            assert_eq!(recovered.records, expected, "cut at {cut}");
        }
        // Not a segment at all: set aside, not replayed, not deleted.
        let dir = TempDir::new("corrupt");
        std::fs::write(dir.0.join(seg), b"something else entirely").unwrap();
        let recovered = replay::scan(&dir.0).unwrap();
        assert!(recovered.records.is_empty());
        assert_eq!(files(&dir.0, ".corrupt").len(), 1);
    }
}
