//! The spool's files: a segment is `KCLSPL01` followed by frames, one per record taken; its ack
//! file holds the ids of the records answered.
//!
//! A frame is `len: u32 LE | crc32(body): u32 LE | body`, the body
//! `id: u64 LE | key_len: u16 LE | key | hash_len: u16 LE (u16::MAX: none) | hash key | data`.
//! An ack entry is `id: u64 LE | crc32(id): u32 LE`. Reading stops at the first frame or entry
//! that is torn (a kill during the append) or does not check out, and says where.

use bytes::Bytes;

use crate::api::Record;

/// The first bytes of every segment (the format's version is its last two characters).
pub(crate) const MAGIC: &[u8; 8] = b"KCLSPL01";
/// A frame's length and checksum.
const HEAD: usize = 8;
/// An ack entry's size.
pub(crate) const ACK: usize = 12;
/// No explicit hash key.
const NO_HASH: u16 = u16::MAX;

/// The bytes `record` takes in a segment.
pub(crate) fn frame_len(record: &Record) -> usize {
    HEAD + 8
        + 2
        + record.partition_key.len()
        + 2
        + record.explicit_hash_key.as_ref().map_or(0, String::len)
        + record.data.len()
}

/// The most bytes a valid record's frame takes, for a stream whose records (data and key) take
/// at most `max_record_bytes` (a key of 256 UTF-16 units is at most 1,024 bytes of UTF-8, a hash
/// key at most 39 digits).
pub(crate) fn max_frame_len(max_record_bytes: usize) -> usize {
    HEAD + 8 + 2 + 1024 + 2 + 39 + max_record_bytes
}

/// Appends the frame of record `id` to `out`. The record has passed the stream's limits (key
/// of at most 256 UTF-16 units, hash key of at most 39 digits, data far below 4 GiB).
pub(crate) fn encode(id: u64, record: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEAD]);
    out.extend_from_slice(&id.to_le_bytes());
    let key = record.partition_key.as_bytes();
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(key);
    match &record.explicit_hash_key {
        Some(hash) => {
            out.extend_from_slice(&(hash.len() as u16).to_le_bytes());
            out.extend_from_slice(hash.as_bytes());
        }
        None => out.extend_from_slice(&NO_HASH.to_le_bytes()),
    }
    out.extend_from_slice(&record.data);
    let body_len = (out.len() - start - HEAD) as u32;
    let crc = crc32fast::hash(&out[start + HEAD..]);
    out[start..start + 4].copy_from_slice(&body_len.to_le_bytes());
    out[start + 4..start + HEAD].copy_from_slice(&crc.to_le_bytes());
}

/// Where and why reading stopped before the end.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Torn {
    /// The offset of the first byte not read.
    pub(crate) offset: usize,
    /// The bytes left unread from there.
    pub(crate) skipped: usize,
    pub(crate) reason: &'static str,
}

/// The records of a segment's frames (`bytes` without the magic), up to the first torn one.
pub(crate) fn decode(bytes: &[u8]) -> (Vec<(u64, Record)>, Option<Torn>) {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let torn = |reason| Torn {
            offset: at,
            skipped: bytes.len() - at,
            reason,
        };
        let Some(head) = bytes.get(at..at + HEAD) else {
            return (records, Some(torn("a frame header cut short")));
        };
        let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
        let Some(body) = bytes.get(at + HEAD..at + HEAD + len) else {
            return (records, Some(torn("a frame cut short")));
        };
        if crc32fast::hash(body) != crc {
            return (records, Some(torn("a frame whose checksum does not match")));
        }
        let Some(record) = body_record(body) else {
            return (records, Some(torn("a frame whose fields do not fit")));
        };
        records.push(record);
        at += HEAD + len;
    }
    (records, None)
}

fn body_record(body: &[u8]) -> Option<(u64, Record)> {
    let id = u64::from_le_bytes(body.get(..8)?.try_into().ok()?);
    let key_len = usize::from(u16::from_le_bytes(body.get(8..10)?.try_into().ok()?));
    let key = std::str::from_utf8(body.get(10..10 + key_len)?).ok()?;
    let at = 10 + key_len;
    let hash_len = u16::from_le_bytes(body.get(at..at + 2)?.try_into().ok()?);
    let (hash, at) = if hash_len == NO_HASH {
        (None, at + 2)
    } else {
        let end = at + 2 + usize::from(hash_len);
        let hash = std::str::from_utf8(body.get(at + 2..end)?).ok()?;
        (Some(hash.to_owned()), end)
    };
    let mut record = Record::new(key, Bytes::copy_from_slice(&body[at..]));
    record.explicit_hash_key = hash;
    Some((id, record))
}

/// The ack entry of record `id`.
pub(crate) fn ack(id: u64, out: &mut Vec<u8>) {
    let id = id.to_le_bytes();
    out.extend_from_slice(&id);
    out.extend_from_slice(&crc32fast::hash(&id).to_le_bytes());
}

/// The ids of an ack file, up to the first torn entry.
pub(crate) fn decode_acks(bytes: &[u8]) -> (Vec<u64>, Option<Torn>) {
    let mut ids = Vec::with_capacity(bytes.len() / ACK);
    for (n, entry) in bytes.chunks(ACK).enumerate() {
        let torn = |reason| Torn {
            offset: n * ACK,
            skipped: bytes.len() - n * ACK,
            reason,
        };
        if entry.len() < ACK {
            return (ids, Some(torn("an ack entry cut short")));
        }
        let id: [u8; 8] = entry[..8].try_into().expect("8 bytes");
        if crc32fast::hash(&id).to_le_bytes() != entry[8..] {
            return (
                ids,
                Some(torn("an ack entry whose checksum does not match")),
            );
        }
        ids.push(u64::from_le_bytes(id));
    }
    (ids, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<(u64, Record)> {
        let mut hashed = Record::new("ключ-2", vec![0u8, 255, 7]);
        hashed.explicit_hash_key = Some("340282366920938463463374607431768211455".to_owned());
        vec![
            (0, Record::new("k", "hello")),
            (1, Record::new("k", Vec::<u8>::new())),
            (7, hashed),
            (u64::MAX, Record::new("x".repeat(256), vec![42u8; 300])),
        ]
    }

    fn encoded(records: &[(u64, Record)]) -> (Vec<u8>, Vec<usize>) {
        let mut out = Vec::new();
        let mut ends = Vec::new();
        for (id, record) in records {
            encode(*id, record, &mut out);
            assert_eq!(
                out.len() - ends.last().copied().unwrap_or(0),
                frame_len(record)
            );
            ends.push(out.len());
        }
        (out, ends)
    }

    #[test]
    fn frames_round_trip() {
        let records = sample();
        let (bytes, _) = encoded(&records);
        let (decoded, torn) = decode(&bytes);
        assert_eq!(torn, None);
        assert_eq!(decoded, records);
    }

    #[test]
    fn a_segment_cut_at_any_byte_yields_exactly_the_whole_frames_before_the_cut() {
        let records = sample();
        let (bytes, ends) = encoded(&records);
        for cut in 0..=bytes.len() {
            let (decoded, torn) = decode(&bytes[..cut]);
            let whole = ends.iter().filter(|end| **end <= cut).count();
            assert_eq!(decoded, records[..whole], "cut at {cut}");
            let at = if whole == 0 { 0 } else { ends[whole - 1] };
            match torn {
                None => assert_eq!(at, cut, "cut at {cut}"),
                Some(torn) => assert_eq!((torn.offset, torn.skipped), (at, cut - at)),
            }
        }
    }

    #[test]
    fn a_flipped_bit_stops_reading_at_its_frame() {
        let records = sample();
        let (bytes, ends) = encoded(&records);
        for byte in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[byte] ^= 0x10;
            let (decoded, torn) = decode(&bad);
            let frame = ends.iter().filter(|end| **end <= byte).count();
            assert_eq!(decoded, records[..frame], "bit flipped in byte {byte}");
            assert!(torn.is_some(), "bit flipped in byte {byte}");
        }
    }

    #[test]
    fn acks_round_trip_and_stop_at_a_torn_entry() {
        let mut bytes = Vec::new();
        for id in [3, 1, u64::MAX] {
            ack(id, &mut bytes);
        }
        assert_eq!(decode_acks(&bytes), (vec![3, 1, u64::MAX], None));
        for cut in 0..bytes.len() {
            let (ids, torn) = decode_acks(&bytes[..cut]);
            assert_eq!(ids.len(), cut / ACK);
            assert_eq!(torn.is_some(), cut % ACK != 0);
        }
        bytes[13] ^= 1;
        assert_eq!(decode_acks(&bytes).0, vec![3]);
    }
}
