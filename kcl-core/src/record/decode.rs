//! Base64 payloads, decoded by one rule on every path: the SIMD engine first, for speed; what
//! it refuses (unpadded text, invalid text, padding inside a piece) goes to the lenient scalar
//! engine, whose bytes or error are the answer. So the bytes a record gets, and the error a bad
//! payload gives, never depend on the path: [`decode_append`] (the general parser's records,
//! into the batch's buffer) and [`decode_range`] (the fast path's, in place inside the line).

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};

/// Standard alphabet, padding optional (the daemon always pads; hand-written input may not).
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes `text` onto the end of `out`; on an error `out` is as it was.
pub(crate) fn decode_append(text: &[u8], out: &mut Vec<u8>) -> Result<(), base64::DecodeError> {
    let start = out.len();
    if base64_simd::STANDARD.decode_append(text, out).is_err() {
        out.truncate(start);
        if let Err(error) = LENIENT_BASE64.decode_vec(text, out) {
            out.truncate(start);
            return Err(error);
        }
    }
    Ok(())
}

/// Base64 text decoded per SIMD call: a multiple of 4.
const PIECE: usize = 4096;
/// The scratch space [`decode_range`] needs: the most bytes one piece decodes to.
pub(crate) const SCRATCH: usize = PIECE / 4 * 3;

/// Decodes `buffer[start..end]` into its own beginning; the decoded length, or the error the
/// lenient engine gives for the text (the serde path's error, to the byte).
///
/// The SIMD decoder writes as it goes, also when the text turns out to be invalid, so the text
/// is decoded in pieces, each written only where no text that is still needed lies: a piece
/// whose output would overlap its own text goes through a small scratch array first (the
/// first `3 * PIECE` bytes of text, so every usual payload), later ones are written straight to
/// their place, which lies before their text. When a piece fails, the pieces before it were
/// valid and are encoded back, and the text from the failing piece on is untouched: the
/// original text is rebuilt and the lenient engine gives its error (or, should it accept what
/// the SIMD engine refused, the payload).
pub(crate) fn decode_range(
    buffer: &mut [u8],
    start: usize,
    end: usize,
    scratch: &mut [u8; SCRATCH],
) -> Result<usize, base64::DecodeError> {
    if (end - start) % 4 != 0 {
        // Unpadded: the SIMD engine refuses it; the lenient scalar engine reads the text, which
        // nothing has touched yet.
        let decoded = LENIENT_BASE64.decode(&buffer[start..end])?;
        return Ok(place(buffer, start, &decoded));
    }
    let (mut read, mut written) = (start, start);
    while read < end {
        let piece_end = end.min(read + PIECE);
        // Padding ends only the last piece (the engine would take it at a piece's end).
        let padded_early = piece_end < end && buffer[piece_end - 1] == b'=';
        let decoded = if padded_early {
            None
        } else if written + SCRATCH <= read {
            let (head, tail) = buffer.split_at_mut(read);
            base64_simd::STANDARD
                .decode(
                    &tail[..piece_end - read],
                    base64_simd::Out::from_slice(&mut head[written..written + SCRATCH]),
                )
                .ok()
                .map(|decoded| decoded.len())
        } else {
            match base64_simd::STANDARD.decode(
                &buffer[read..piece_end],
                base64_simd::Out::from_slice(&mut scratch[..]),
            ) {
                Ok(decoded) => {
                    let len = decoded.len();
                    buffer[written..written + len].copy_from_slice(&scratch[..len]);
                    Some(len)
                }
                Err(_) => None,
            }
        };
        match decoded {
            Some(len) => {
                written += len;
                read = piece_end;
            }
            None => {
                // Cold path: rebuild the text (valid pieces encoded back, the rest untouched).
                let mut text: Vec<u8> = base64_simd::STANDARD.encode_type(&buffer[start..written]);
                text.extend_from_slice(&buffer[read..end]);
                debug_assert_eq!(text.len(), end - start);
                let decoded = LENIENT_BASE64.decode(&text)?;
                return Ok(place(buffer, start, &decoded));
            }
        }
    }
    Ok(written - start)
}

/// Writes `decoded` at `start` (never longer than the text it came from); its length.
fn place(buffer: &mut [u8], start: usize, decoded: &[u8]) -> usize {
    buffer[start..start + decoded.len()].copy_from_slice(decoded);
    decoded.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both entry points on `text`: the bytes or the error of each.
    fn both(text: &[u8]) -> [Result<Vec<u8>, base64::DecodeError>; 2] {
        let mut appended = b"before".to_vec();
        let appended = decode_append(text, &mut appended).map(|()| appended[6..].to_vec());
        let mut buffer = [b"[".as_slice(), text, b"]"].concat();
        let in_place = decode_range(&mut buffer, 1, 1 + text.len(), &mut [0u8; SCRATCH])
            .map(|len| buffer[1..1 + len].to_vec());
        [appended, in_place]
    }

    #[test]
    fn both_paths_give_the_same_bytes_and_the_same_errors() {
        let long = base64::engine::general_purpose::STANDARD.encode(vec![0xA5u8; 3 * PIECE + 7]);
        let mut bad_late = long.clone().into_bytes();
        bad_late[2 * PIECE + 5] = b'!';
        let mut padded_early = long.clone().into_bytes();
        padded_early[PIECE - 1] = b'=';
        // (text, the decoded bytes; `None`: an error)
        let cases: Vec<(&[u8], Option<Vec<u8>>)> = vec![
            (b"aGVsbG8=", Some(b"hello".to_vec())),
            (b"aGVsbG8", Some(b"hello".to_vec())), // unpadded: the lenient engine
            (b"", Some(vec![])),
            (b"!!!!", None),
            (b"aGVsbG8==", None),
            (long.as_bytes(), Some(vec![0xA5u8; 3 * PIECE + 7])),
            (&bad_late, None),
            (&padded_early, None),
        ];
        for (text, expected) in cases {
            let [appended, in_place] = both(text);
            assert_eq!(appended, in_place, "{}", String::from_utf8_lossy(text));
            assert_eq!(appended.ok(), expected);
        }
    }

    #[test]
    fn a_failed_append_leaves_the_buffer_as_it_was() {
        let mut out = b"kept".to_vec();
        assert!(decode_append(b"a!==", &mut out).is_err());
        assert_eq!(out, b"kept");
    }
}
