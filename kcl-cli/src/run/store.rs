//! The local checkpoint file of `kcl run`: what a lease table would hold, one checkpoint per
//! shard, rewritten atomically after every stored checkpoint. One run at a time uses a file:
//! the store holds an exclusive lock on `FILE.lock` (a lock on the file itself would be lost
//! when a rewrite renames a new file over it).
//!
//! ```json
//! {
//!   "version": 1,
//!   "shards": 2,
//!   "checkpoints": {
//!     "shardId-000000000000": { "sequenceNumber": "4966…0042", "subSequenceNumber": 0 },
//!     "shardId-000000000001": { "sequenceNumber": "SHARD_END", "subSequenceNumber": 0 }
//!   }
//! }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kcl_protocol::{ExtendedSequenceNumber, SENTINELS};
use serde::{Deserialize, Serialize};

use super::shard_id;
use crate::error::{Error, Result};
use crate::fsutil::{FileLock, LockError, with_suffix, write_atomically};

/// What to do about a checkpoint file that cannot be read back.
const DAMAGED_HINT: &str =
    "pass --fresh to start over (the file is replaced), or --checkpoints OTHER_FILE";

#[derive(Debug, Default, Serialize, Deserialize)]
struct FileContent {
    version: u32,
    shards: u32,
    checkpoints: BTreeMap<String, Stored>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Stored {
    sequence_number: String,
    sub_sequence_number: i64,
}

/// Shard checkpoints kept in a JSON file, locked for as long as the store lives.
pub(super) struct CheckpointStore {
    path: PathBuf,
    content: Mutex<FileContent>,
    _lock: FileLock,
}

impl CheckpointStore {
    /// Opens (or starts) the file for a run with `shards` shards; `fresh` forgets what it holds.
    /// Refused (exit 2) while another run holds the file's lock, or if the file is damaged.
    pub(super) fn open(path: &Path, shards: u32, fresh: bool) -> Result<CheckpointStore> {
        let lock = lock(path)?;
        let mut content = FileContent {
            version: 1,
            shards,
            checkpoints: BTreeMap::new(),
        };
        if !fresh && path.exists() {
            let bytes = std::fs::read(path).map_err(|e| Error::file("read", path, e))?;
            let stored: FileContent = serde_json::from_slice(&bytes).map_err(|e| {
                Error::usage_hint(
                    format!("{} is not a kcl run checkpoint file: {e}", path.display()),
                    DAMAGED_HINT,
                )
            })?;
            if stored.version != 1 {
                return Err(Error::usage_hint(
                    format!(
                        "{} has version {}; this kcl reads version 1",
                        path.display(),
                        stored.version
                    ),
                    "pass --fresh to start over",
                ));
            }
            if stored.shards != shards {
                return Err(Error::usage_hint(
                    format!(
                        "{} holds checkpoints of a {}-shard run, not {shards}",
                        path.display(),
                        stored.shards
                    ),
                    format!(
                        "pass --shards {} to resume it, or --fresh to start over",
                        stored.shards
                    ),
                ));
            }
            for (shard, value) in &stored.checkpoints {
                check_stored(path, shards, shard, value)?;
            }
            content.checkpoints = stored.checkpoints;
        }
        let store = CheckpointStore {
            path: path.to_path_buf(),
            content: Mutex::new(content),
            _lock: lock,
        };
        if fresh {
            store.save()?;
        }
        Ok(store)
    }

    /// The file.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The stored checkpoint of `shard_id`.
    pub(super) fn get(&self, shard_id: &str) -> Option<ExtendedSequenceNumber> {
        let content = self.content.lock().unwrap_or_else(|e| e.into_inner());
        content
            .checkpoints
            .get(shard_id)
            .map(|s| ExtendedSequenceNumber::new(s.sequence_number.clone(), s.sub_sequence_number))
    }

    /// Stores a checkpoint of `shard_id` and rewrites the file.
    pub(super) fn set(&self, shard_id: &str, value: &ExtendedSequenceNumber) -> Result<()> {
        let mut content = self.content.lock().unwrap_or_else(|e| e.into_inner());
        content.checkpoints.insert(
            shard_id.to_string(),
            Stored {
                sequence_number: value.sequence_number().to_string(),
                sub_sequence_number: value.sub_sequence_number(),
            },
        );
        write(&self.path, &content)
    }

    fn save(&self) -> Result<()> {
        let content = self.content.lock().unwrap_or_else(|e| e.into_inner());
        write(&self.path, &content)
    }
}

/// Takes the exclusive lock of the checkpoint file `path` for this run.
fn lock(path: &Path) -> Result<FileLock> {
    let lock_path = with_suffix(path, ".lock");
    FileLock::try_acquire(&lock_path).map_err(|e| match e {
        LockError::Held(pid) => Error::usage_hint(
            format!(
                "another kcl run is using {} (lock {} held by {})",
                path.display(),
                lock_path.display(),
                pid.map_or("another process".to_string(), |pid| format!("pid {pid}")),
            ),
            "wait for that run to end, or give this one its own --checkpoints FILE",
        ),
        LockError::Io(e) => Error::usage_hint(
            format!(
                "cannot lock {} with {}: {e}",
                path.display(),
                lock_path.display()
            ),
            format!(
                "the lock file must be a regular file (not a symbolic link) in a folder you can write; remove {} if it is not, or pass --checkpoints OTHER_FILE",
                lock_path.display()
            ),
        ),
    })
}

/// Refuses a stored checkpoint that no run writes: a shard the run does not have, a sequence
/// number that is neither decimal digits nor a sentinel, a negative sub-sequence number (the
/// rules by which the KCL refuses a checkpoint request).
fn check_stored(path: &Path, shards: u32, shard: &str, value: &Stored) -> Result<()> {
    let damaged = |what: String| {
        Error::usage_hint(
            format!("{} is damaged: {what}", path.display()),
            DAMAGED_HINT,
        )
    };
    if !(0..shards).any(|index| shard_id(index) == shard) {
        return Err(damaged(format!(
            "it holds a checkpoint of {shard:?}, which is not one of the {shards} shards \
             (shardId-000000000000 on)"
        )));
    }
    let stored =
        ExtendedSequenceNumber::new(value.sequence_number.clone(), value.sub_sequence_number);
    // kcl-core's rule for checkpoint requests, defined once there: comparing a value fails
    // when its text is neither decimal digits nor a sentinel.
    if stored.compare(&stored).is_err() {
        return Err(damaged(format!(
            "shard {shard} has sequenceNumber {:?}, which is neither decimal digits nor one of {}",
            value.sequence_number,
            SENTINELS.join(", ")
        )));
    }
    if value.sub_sequence_number < 0 {
        return Err(damaged(format!(
            "shard {shard} has subSequenceNumber {}; it must be 0 or more",
            value.sub_sequence_number
        )));
    }
    Ok(())
}

fn write(path: &Path, content: &FileContent) -> Result<()> {
    let mut text = serde_json::to_string_pretty(content).expect("checkpoints serialize");
    text.push('\n');
    write_atomically(path, text.as_bytes()).map_err(|e| Error::file("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_survive_a_reopen_and_shard_counts_must_match() {
        let dir = std::env::temp_dir().join(format!("kcl-store-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cp.json");
        let _ = std::fs::remove_file(&path);
        let store = CheckpointStore::open(&path, 2, false).unwrap();
        assert_eq!(store.get("shardId-000000000000"), None);
        let value = ExtendedSequenceNumber::new("42", 3);
        store.set("shardId-000000000000", &value).unwrap();
        let busy = CheckpointStore::open(&path, 2, false).err().unwrap();
        assert!(
            busy.to_string().contains("another kcl run is using"),
            "{busy}"
        );
        drop(store);
        let again = CheckpointStore::open(&path, 2, false).unwrap();
        assert_eq!(again.get("shardId-000000000000"), Some(value));
        drop(again);
        let error = CheckpointStore::open(&path, 3, false).err().unwrap();
        assert!(error.to_string().contains("2-shard run"), "{error}");
        let fresh = CheckpointStore::open(&path, 3, true).unwrap();
        assert_eq!(fresh.get("shardId-000000000000"), None);
        drop(fresh);
        std::fs::write(&path, "junk").unwrap();
        assert!(CheckpointStore::open(&path, 3, false).is_err());
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
