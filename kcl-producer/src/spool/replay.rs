//! What an earlier producer left in the spool: the records of its segments without an ack.
//!
//! A torn tail (the process was killed during an append) ends a segment's reading at the last
//! whole frame; what follows is logged and skipped. A file that is not a segment at all is
//! renamed `*.corrupt` and logged, never read as records nor deleted.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use super::segment;
use crate::api::Record;

/// The records to send again, oldest first, and the files they came from (deleted once the
/// records are in the new segment).
#[derive(Debug, Default)]
pub(crate) struct Recovered {
    pub(crate) records: Vec<Record>,
    pub(crate) files: Vec<PathBuf>,
    /// The number of the next segment.
    pub(crate) next_no: u64,
}

/// Reads every segment of `dir`.
pub(crate) fn scan(dir: &Path) -> io::Result<Recovered> {
    let mut segments = Vec::new();
    let mut highest = None::<u64>;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some((stem, ext)) = name.split_once('.') else {
            continue;
        };
        let Ok(no) = stem.parse::<u64>() else {
            continue;
        };
        // Numbers of corrupt files too, so that no new segment takes their name.
        highest = highest.max(Some(no));
        if ext == "seg" {
            segments.push(no);
        } else if ext == "ack" && !Path::new(&dir.join(format!("{stem}.seg"))).exists() {
            // An ack file whose segment was deleted (killed between the two deletions).
            let _ = std::fs::remove_file(&path);
        }
    }
    segments.sort_unstable();
    let mut recovered = Recovered {
        next_no: highest.map_or(0, |h| h + 1),
        ..Recovered::default()
    };
    for no in segments {
        let seg = dir.join(format!("{no:016}.seg"));
        let ack = dir.join(format!("{no:016}.ack"));
        let bytes = std::fs::read(&seg)?;
        let magic = segment::MAGIC.len();
        if bytes.len() < magic && segment::MAGIC.starts_with(&bytes) {
            // Killed while the segment was being created: nothing in it.
        } else if !bytes.starts_with(segment::MAGIC) {
            let corrupt = seg.with_extension("seg.corrupt");
            tracing::error!(segment = %seg.display(), renamed = %corrupt.display(), "not a spool segment: left aside, not replayed");
            std::fs::rename(&seg, &corrupt)?;
            continue;
        } else {
            let (frames, torn) = segment::decode(&bytes[magic..]);
            if let Some(torn) = torn {
                tracing::warn!(
                    segment = %seg.display(),
                    offset = torn.offset + magic,
                    skipped_bytes = torn.skipped,
                    reason = torn.reason,
                    "spool segment ends in a torn record (the process died during an append): replaying the {} whole records before it",
                    frames.len()
                );
            }
            let acks = match std::fs::read(&ack) {
                Ok(bytes) => {
                    let (ids, torn) = segment::decode_acks(&bytes);
                    if let Some(torn) = torn {
                        tracing::warn!(acks = %ack.display(), offset = torn.offset, reason = torn.reason, "spool ack file ends in a torn entry");
                    }
                    ids.into_iter().collect()
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => HashSet::new(),
                Err(error) => return Err(error),
            };
            recovered.records.extend(
                frames
                    .into_iter()
                    .filter(|(id, _)| !acks.contains(id))
                    .map(|(_, record)| record),
            );
        }
        recovered.files.push(seg);
        recovered.files.push(ack);
    }
    Ok(recovered)
}

/// Deletes the replayed files (their records are in the new segment now).
pub(crate) fn remove(files: &[PathBuf]) {
    for path in files {
        if let Err(error) = std::fs::remove_file(path) {
            if error.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), %error, "cannot delete a replayed spool file: its records may be sent again");
            }
        }
    }
}
