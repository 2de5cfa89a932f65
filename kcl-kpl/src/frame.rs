//! The frame around the protobuf message: 4 magic bytes before it, its MD5 digest after it, and
//! the KCL's test of whether a Kinesis record is an aggregate at all
//! (`AggregatorUtil.deaggregate(List, BigInteger, BigInteger)`, KCL 3.1.3).

use thiserror::Error;

use crate::hash::md5;
use crate::parse::{AggregatedMessage, parse};
use crate::proto::ProtobufError;

/// The first 4 bytes of every aggregated record (`AggregatorUtil.AGGREGATED_RECORD_MAGIC`).
///
/// ```
/// assert_eq!(kcl_kpl::MAGIC, [0xF3, 0x89, 0x9A, 0xC2]);
/// ```
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

/// The MD5 digest after the protobuf message.
pub(crate) const DIGEST_LEN: usize = 16;

/// The bytes an aggregate adds around its protobuf message: the magic and the digest.
pub(crate) const FRAME_LEN: usize = MAGIC.len() + DIGEST_LEN;

/// Why the KCL does not take a Kinesis record for an aggregate, and passes it on unchanged (one
/// record, sub-sequence number 0). In the order `AggregatorUtil.deaggregate` tests them.
///
/// ```
/// use kcl_kpl::{decode, DecodeError, NotAggregated};
/// assert_eq!(decode(b"plain"), Err(DecodeError::NotAggregated(NotAggregated::NoMagic)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Error)]
pub enum NotAggregated {
    /// Shorter than 4 bytes, or the first 4 bytes are not [`MAGIC`].
    #[error("no aggregate magic bytes")]
    NoMagic,
    /// The magic, then 16 bytes or fewer: no room for a digest and a message of at least one
    /// byte (so an aggregate of an empty message is not one either).
    #[error("too short for an aggregate: at most 16 bytes after the magic")]
    TooShort,
    /// The last 16 bytes are not the MD5 digest of the bytes between the magic and them.
    #[error("the MD5 digest does not match")]
    ChecksumMismatch,
    /// The bytes between magic and digest are not an `AggregatedRecord` to Java's protobuf
    /// parser (`InvalidProtocolBufferException`), a missing required field included.
    #[error("not an AggregatedRecord message: {0}")]
    Protobuf(#[from] ProtobufError),
}

/// The protobuf bytes of `data` if its frame is right: magic, more than 16 bytes after it, a
/// matching digest.
pub(crate) fn message_bytes(data: &[u8]) -> Result<&[u8], NotAggregated> {
    // `bb.remaining() >= magic.length`, then `Arrays.equals(MAGIC, magic)`.
    let Some(rest) = data.strip_prefix(&MAGIC[..]) else {
        return Err(NotAggregated::NoMagic);
    };
    // `bb.remaining() <= DIGEST_SIZE` is not an aggregate.
    if rest.len() <= DIGEST_LEN {
        return Err(NotAggregated::TooShort);
    }
    let (message, digest) = rest.split_at(rest.len() - DIGEST_LEN);
    if md5(message) != digest {
        return Err(NotAggregated::ChecksumMismatch);
    }
    Ok(message)
}

/// The message of an aggregate, read as the KCL reads it.
pub(crate) fn read(data: &[u8]) -> Result<AggregatedMessage<'_>, NotAggregated> {
    Ok(parse(message_bytes(data)?)?)
}

/// Frames `message`: magic, message, digest.
pub(crate) fn frame_into(out: &mut Vec<u8>, message: &[u8]) {
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(message);
    out.extend_from_slice(&md5(message));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_tests_in_the_kcl_order() {
        let framed = |message: &[u8]| {
            let mut out = Vec::new();
            frame_into(&mut out, message);
            out
        };
        assert_eq!(message_bytes(b""), Err(NotAggregated::NoMagic));
        assert_eq!(message_bytes(&MAGIC[..3]), Err(NotAggregated::NoMagic));
        assert_eq!(message_bytes(&framed(b"")), Err(NotAggregated::TooShort));
        assert_eq!(message_bytes(&framed(b"\x0a")), Ok(&b"\x0a"[..]));
        let mut corrupt = framed(b"\x0a\x00");
        *corrupt.last_mut().unwrap() ^= 1;
        assert_eq!(
            message_bytes(&corrupt),
            Err(NotAggregated::ChecksumMismatch)
        );
        // The magic alone with 17 bytes: a one-byte message whose digest does not match.
        let mut seventeen = MAGIC.to_vec();
        seventeen.extend_from_slice(&[0; 17]);
        assert_eq!(
            message_bytes(&seventeen),
            Err(NotAggregated::ChecksumMismatch)
        );
    }
}
