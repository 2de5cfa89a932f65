//! Protobuf wire primitives, written by hand: varints and length-delimited fields, the only
//! encodings the aggregated-record messages use, and a reader that accepts and rejects exactly
//! what Java's `CodedInputStream` (protobuf-java 4.27.5, the version the KCL 3.1.3 jars ship)
//! accepts and rejects when it reads a `byte[]`.
//!
//! Java's rules, as the reader follows them:
//!
//! - A varint has at most 10 bytes; an 11th byte with the continuation bit set is an error
//!   (`malformedVarint`). Bits beyond the 64th are dropped (`readRawVarint64`).
//! - Tags and lengths are read as 32-bit varints: the same 1 to 10 bytes, keeping the low 32 bits
//!   (`readRawVarint32`), so a 10-byte length whose low 32 bits are 5 is a length of 5.
//! - A tag whose field number is 0 is an error (`invalidTag`); the end of the input (or of the
//!   enclosing message) reads as tag 0, "no more fields".
//! - A length is a signed 32-bit number: negative is an error (`negativeSize`), longer than what
//!   is left is an error (`truncatedMessage`).

use thiserror::Error;

/// Wire type 0: a varint.
pub(crate) const VARINT: u32 = 0;
/// Wire type 1: eight bytes.
pub(crate) const FIXED64: u32 = 1;
/// Wire type 2: a length, then that many bytes.
pub(crate) const LENGTH_DELIMITED: u32 = 2;
/// Wire type 3: the start of a group.
pub(crate) const START_GROUP: u32 = 3;
/// Wire type 4: the end of a group.
pub(crate) const END_GROUP: u32 = 4;
/// Wire type 5: four bytes.
pub(crate) const FIXED32: u32 = 5;

/// Why Java's protobuf parser rejects a message (`InvalidProtocolBufferException` or, for a
/// required field, `UninitializedMessageException` turned into one by `parseFrom`).
///
/// ```
/// use kcl_kpl::ProtobufError;
/// assert_eq!(ProtobufError::Truncated.to_string(), "the message ends inside a field");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Error)]
pub enum ProtobufError {
    /// A field runs past the end of the message or of its enclosing message
    /// (`truncatedMessage`).
    #[error("the message ends inside a field")]
    Truncated,
    /// A varint of more than 10 bytes (`malformedVarint`).
    #[error("a varint longer than 10 bytes")]
    MalformedVarint,
    /// A tag with field number 0 (`invalidTag`).
    #[error("a tag with field number 0")]
    InvalidTag,
    /// Wire type 6 or 7 (`invalidWireType`).
    #[error("wire type 6 or 7")]
    InvalidWireType,
    /// A length whose low 32 bits are negative as a Java `int` (`negativeSize`).
    #[error("a negative length")]
    NegativeSize,
    /// An end-group tag where no group is open, or one that closes another field's group
    /// (`invalidEndTag`), or a group that is never closed.
    #[error("an end-group tag that does not close the open group")]
    InvalidEndTag,
    /// More than 100 nested messages and groups (`recursionLimitExceeded`).
    #[error("messages and groups nested deeper than 100")]
    RecursionLimit,
    /// A required field is absent (`Record.partition_key_index`, `Record.data` or `Tag.key`).
    #[error("required field {0} is missing")]
    MissingRequired(RequiredField),
}

/// The required fields of the aggregated-record messages (proto2 `required`).
///
/// ```
/// use kcl_kpl::RequiredField;
/// assert_eq!(RequiredField::Data.to_string(), "Record.data");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Error)]
pub enum RequiredField {
    /// `Record.partition_key_index` (field 1).
    #[error("Record.partition_key_index")]
    PartitionKeyIndex,
    /// `Record.data` (field 3).
    #[error("Record.data")]
    Data,
    /// `Tag.key` (field 1).
    #[error("Tag.key")]
    TagKey,
}

/// The number of bytes of `value` as a varint (1 to 10).
pub(crate) fn varint_len(value: u64) -> usize {
    // One byte per started group of 7 significant bits; zero takes one byte.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends `value` as a varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7F) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The tag of `field` with `wire_type`.
pub(crate) const fn tag(field: u32, wire_type: u32) -> u32 {
    (field << 3) | wire_type
}

/// Appends a varint field.
pub(crate) fn put_varint_field(out: &mut Vec<u8>, field: u32, value: u64) {
    put_varint(out, u64::from(tag(field, VARINT)));
    put_varint(out, value);
}

/// Appends the tag and length of a length-delimited field of `len` bytes (the bytes follow).
pub(crate) fn put_length_prefix(out: &mut Vec<u8>, field: u32, len: usize) {
    put_varint(out, u64::from(tag(field, LENGTH_DELIMITED)));
    put_varint(out, len as u64);
}

/// Appends a length-delimited field.
pub(crate) fn put_bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_length_prefix(out, field, bytes.len());
    out.extend_from_slice(bytes);
}

/// Bytes of a varint field with a one-byte tag (field numbers 1 to 15).
pub(crate) fn varint_field_len(value: u64) -> usize {
    1 + varint_len(value)
}

/// Bytes of a length-delimited field of `len` bytes with a one-byte tag.
pub(crate) fn bytes_field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// Java's nesting limit (`CodedInputStream.DEFAULT_RECURSION_LIMIT`).
pub(crate) const RECURSION_LIMIT: u32 = 100;

/// A cursor over one message's bytes, with Java's rules.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader of exactly `bytes` (the end of `bytes` is the end of the message).
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    fn byte(&mut self) -> Result<u8, ProtobufError> {
        let byte = *self.bytes.get(self.pos).ok_or(ProtobufError::Truncated)?;
        self.pos += 1;
        Ok(byte)
    }

    /// A varint of up to 10 bytes, modulo 2^64.
    pub(crate) fn varint64(&mut self) -> Result<u64, ProtobufError> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = self.byte()?;
            // The 10th byte adds only its lowest bit (bit 63); the others fall off the end.
            value |= u64::from(byte & 0x7F).checked_shl(shift).unwrap_or(0);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::MalformedVarint)
    }

    /// A varint read as Java's `readRawVarint32`: the low 32 bits of up to 10 bytes.
    pub(crate) fn varint32(&mut self) -> Result<u32, ProtobufError> {
        self.varint64().map(|value| value as u32)
    }

    /// The next tag, or `None` at the end of the message. Field number 0 is an error.
    pub(crate) fn tag(&mut self) -> Result<Option<u32>, ProtobufError> {
        if self.pos == self.bytes.len() {
            return Ok(None);
        }
        let tag = self.varint32()?;
        if tag >> 3 == 0 {
            return Err(ProtobufError::InvalidTag);
        }
        Ok(Some(tag))
    }

    /// A length-delimited payload: a 32-bit length (negative is an error), then the bytes.
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], ProtobufError> {
        let length = self.varint32()? as i32;
        if length < 0 {
            return Err(ProtobufError::NegativeSize);
        }
        let length = length as usize;
        if length > self.bytes.len() - self.pos {
            return Err(ProtobufError::Truncated);
        }
        let payload = &self.bytes[self.pos..self.pos + length];
        self.pos += length;
        Ok(payload)
    }

    fn skip(&mut self, count: usize) -> Result<(), ProtobufError> {
        if count > self.bytes.len() - self.pos {
            return Err(ProtobufError::Truncated);
        }
        self.pos += count;
        Ok(())
    }

    /// Skips the field whose tag (`field`) was just read, as Java keeps an unknown field
    /// (`UnknownFieldSet.Builder.mergeFieldFrom`). `depth` is the nesting of the message the
    /// field is in (0 for the outermost). Returns `false` for an end-group tag, which ends the
    /// enclosing message or group.
    pub(crate) fn skip_field(&mut self, field: u32, depth: u32) -> Result<bool, ProtobufError> {
        match field & 7 {
            VARINT => self.varint64().map(|_| true),
            FIXED64 => self.skip(8).map(|()| true),
            LENGTH_DELIMITED => self.bytes().map(|_| true),
            START_GROUP => {
                // `readGroup`: check the depth, read fields until an end-group tag, which must
                // close this group's field number.
                if depth >= RECURSION_LIMIT {
                    return Err(ProtobufError::RecursionLimit);
                }
                loop {
                    match self.tag()? {
                        None => return Err(ProtobufError::InvalidEndTag),
                        Some(inner) => {
                            if !self.skip_field(inner, depth + 1)? {
                                return if inner == tag(field >> 3, END_GROUP) {
                                    Ok(true)
                                } else {
                                    Err(ProtobufError::InvalidEndTag)
                                };
                            }
                        }
                    }
                }
            }
            END_GROUP => Ok(false),
            FIXED32 => self.skip(4).map(|()| true),
            _ => Err(ProtobufError::InvalidWireType),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, value);
        out
    }

    #[test]
    fn varints_round_trip_and_have_the_predicted_length() {
        for value in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let bytes = varint(value);
            assert_eq!(bytes.len(), varint_len(value), "{value}");
            assert_eq!(Reader::new(&bytes).varint64(), Ok(value));
        }
        assert_eq!(varint_len(u64::MAX), 10);
    }

    #[test]
    fn java_varint_rules() {
        // Non-minimal encodings are read.
        assert_eq!(Reader::new(&[0x81, 0x80, 0x00]).varint64(), Ok(1));
        // The 10th byte keeps only its lowest bit.
        let mut ten = vec![0xFF; 9];
        ten.push(0x7F);
        assert_eq!(Reader::new(&ten).varint64(), Ok(u64::MAX));
        // An 11th byte is an error, an unfinished varint is truncated.
        assert_eq!(
            Reader::new(&[0xFF; 11]).varint64(),
            Err(ProtobufError::MalformedVarint)
        );
        assert_eq!(
            Reader::new(&[0x80, 0x80]).varint64(),
            Err(ProtobufError::Truncated)
        );
        // 32-bit reads keep the low 32 bits.
        assert_eq!(
            Reader::new(&[0x85, 0x80, 0x80, 0x80, 0x10]).varint32(),
            Ok(5)
        );
    }

    #[test]
    fn tags_and_lengths() {
        assert_eq!(Reader::new(&[]).tag(), Ok(None));
        assert_eq!(Reader::new(&[0x07]).tag(), Err(ProtobufError::InvalidTag));
        assert_eq!(Reader::new(&[0x0A]).tag(), Ok(Some(10)));
        assert_eq!(
            Reader::new(&[0x02, b'a']).bytes(),
            Err(ProtobufError::Truncated)
        );
        assert_eq!(
            Reader::new(&[0xFF, 0xFF, 0xFF, 0xFF, 0x0F]).bytes(),
            Err(ProtobufError::NegativeSize)
        );
        assert_eq!(Reader::new(&[0x01, b'a']).bytes(), Ok(&b"a"[..]));
    }

    #[test]
    fn groups_must_close_their_own_field() {
        // Field 5 group containing a varint field 1, closed by field 5's end tag.
        let good = [
            tag(5, START_GROUP) as u8,
            0x08,
            0x01,
            tag(5, END_GROUP) as u8,
        ];
        let mut reader = Reader::new(&good[1..]);
        assert_eq!(reader.skip_field(good[0].into(), 0), Ok(true));
        let wrong = [0x08, 0x01, tag(6, END_GROUP) as u8];
        assert_eq!(
            Reader::new(&wrong).skip_field(tag(5, START_GROUP), 0),
            Err(ProtobufError::InvalidEndTag)
        );
        assert_eq!(
            Reader::new(&[0x08, 0x01]).skip_field(tag(5, START_GROUP), 0),
            Err(ProtobufError::InvalidEndTag)
        );
        assert_eq!(
            Reader::new(&[]).skip_field(tag(5, START_GROUP), RECURSION_LIMIT),
            Err(ProtobufError::RecursionLimit)
        );
        assert_eq!(
            Reader::new(&[]).skip_field(tag(5, 6), 0),
            Err(ProtobufError::InvalidWireType)
        );
    }
}
