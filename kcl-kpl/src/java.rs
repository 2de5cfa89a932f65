//! Two pieces of the Java platform the KCL leans on when it reads an aggregate, reproduced:
//! how `new String(bytes, UTF_8)` (JDK 17) replaces malformed UTF-8, and how
//! `new BigInteger(String)` reads a decimal number.

use std::borrow::Cow;

/// U+FFFD, Java's replacement character.
const REPLACEMENT: char = '\u{FFFD}';

/// The text Java makes of `bytes` with `new String(bytes, StandardCharsets.UTF_8)` (which
/// protobuf's `ByteString.toStringUtf8()` calls when the KCL reads a table entry): valid UTF-8
/// unchanged, every malformed piece replaced by U+FFFD.
///
/// Java's pieces are not always Rust's ([`String::from_utf8_lossy`] replaces each "maximal
/// subpart"): JDK 17 (`String.decodeUTF8_UTF16`) replaces an encoded surrogate (`ED A0 80`)
/// with one U+FFFD where Rust writes three, and takes `ED A0..BF` as the start of a sequence.
///
/// ```
/// use kcl_kpl::java_utf8_lossy;
/// assert_eq!(java_utf8_lossy(b"k\xED\xA0\x80!"), "k\u{FFFD}!");
/// assert_eq!(String::from_utf8_lossy(b"k\xED\xA0\x80!"), "k\u{FFFD}\u{FFFD}\u{FFFD}!");
/// assert_eq!(java_utf8_lossy("key-é".as_bytes()), "key-é");
/// ```
pub fn java_utf8_lossy(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    let mut at = 0;
    let continuation = |b: u8| b & 0xC0 == 0x80;
    while at < bytes.len() {
        let first = bytes[at];
        let rest = &bytes[at + 1..];
        // Each arm pushes one character and says how many bytes it used.
        let used = match first {
            0x00..=0x7F => {
                out.push(char::from(first));
                1
            }
            0xC2..=0xDF => match rest.first() {
                Some(&second) if continuation(second) => {
                    let code = (u32::from(first & 0x1F) << 6) | u32::from(second & 0x3F);
                    out.push(char::from_u32(code).unwrap_or(REPLACEMENT));
                    2
                }
                // A non-continuation byte is read again; at the end, one replacement.
                _ => {
                    out.push(REPLACEMENT);
                    1
                }
            },
            0xE0..=0xEF => {
                // Java rejects only E0 followed by 80..9F as the start of a 3-byte sequence
                // (overlong); ED A0..BF (a surrogate) is a complete sequence replaced whole.
                let bad_second =
                    |second: u8| (first == 0xE0 && second & 0xE0 == 0x80) || !continuation(second);
                if rest.len() >= 2 {
                    let (second, third) = (rest[0], rest[1]);
                    if bad_second(second) {
                        out.push(REPLACEMENT);
                        1
                    } else if !continuation(third) {
                        out.push(REPLACEMENT);
                        2
                    } else {
                        let code = (u32::from(first & 0x0F) << 12)
                            | (u32::from(second & 0x3F) << 6)
                            | u32::from(third & 0x3F);
                        // A surrogate (D800..DFFF) is not a char: one replacement for all three.
                        out.push(char::from_u32(code).unwrap_or(REPLACEMENT));
                        3
                    }
                } else if rest.first().is_some_and(|&second| bad_second(second)) {
                    out.push(REPLACEMENT);
                    1
                } else {
                    // One or two bytes of a sequence cut by the end: one replacement for all.
                    out.push(REPLACEMENT);
                    bytes.len() - at
                }
            }
            0xF0..=0xF7 => {
                // The second byte's range for F0 and F4 (shortest form, at most U+10FFFF).
                let bad_second = |second: u8| {
                    first > 0xF4
                        || (first == 0xF0 && !(0x90..=0xBF).contains(&second))
                        || (first == 0xF4 && second & 0xF0 != 0x80)
                        || !continuation(second)
                };
                if rest.len() >= 3 {
                    let (second, third, fourth) = (rest[0], rest[1], rest[2]);
                    if bad_second(second) {
                        out.push(REPLACEMENT);
                        1
                    } else if !continuation(third) {
                        out.push(REPLACEMENT);
                        2
                    } else if !continuation(fourth) {
                        out.push(REPLACEMENT);
                        3
                    } else {
                        let code = (u32::from(first & 0x07) << 18)
                            | (u32::from(second & 0x3F) << 12)
                            | (u32::from(third & 0x3F) << 6)
                            | u32::from(fourth & 0x3F);
                        out.push(char::from_u32(code).unwrap_or(REPLACEMENT));
                        4
                    }
                } else if first > 0xF4 || rest.first().is_some_and(|&second| bad_second(second)) {
                    out.push(REPLACEMENT);
                    1
                } else {
                    // Cut by the end: the first two bytes are one replacement; a third byte
                    // that is no continuation is read again, one that is belongs to it.
                    out.push(REPLACEMENT);
                    match rest.get(1) {
                        Some(&third) if !continuation(third) => 2,
                        _ => bytes.len() - at,
                    }
                }
            }
            // 80..BF (a lone continuation), C0, C1 (overlong), F8..FF.
            _ => {
                out.push(REPLACEMENT);
                1
            }
        };
        at += used;
    }
    Cow::Owned(out)
}

/// A number as `new BigInteger(text)` reads it, placed against the 128-bit hash key space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum JavaNumber {
    /// Below zero.
    Negative,
    /// 0 to 2^128 − 1.
    HashKey(u128),
    /// 2^128 or more.
    TooLarge,
}

/// `new BigInteger(text)` (radix 10), or `None` where Java throws `NumberFormatException`:
/// an optional single sign (`-` or `+`) first and nowhere else, then at least one decimal digit
/// of any script of the BMP, nothing else (no spaces).
pub(crate) fn java_big_integer(text: &str) -> Option<JavaNumber> {
    // `BigInteger(String, int)`: the last '-' and the last '+' may only be the first character,
    // and not both.
    let minus = text.rfind('-');
    let plus = text.rfind('+');
    let (negative, digits) = match (minus, plus) {
        (Some(0), None) => (true, &text[1..]),
        (None, Some(0)) => (false, &text[1..]),
        (None, None) => (false, text),
        _ => return None,
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: u128 = 0;
    let mut too_large = false;
    for c in digits.chars() {
        let digit = kcl_protocol::java_digit(c)?;
        if !too_large {
            match value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u128::from(digit)))
            {
                Some(next) => value = next,
                None => too_large = true,
            }
        }
    }
    Some(if negative && (too_large || value != 0) {
        JavaNumber::Negative
    } else if too_large {
        JavaNumber::TooLarge
    } else {
        JavaNumber::HashKey(value) // "-0" is zero
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_integer_syntax() {
        use JavaNumber::*;
        assert_eq!(java_big_integer("0"), Some(HashKey(0)));
        assert_eq!(java_big_integer("-0"), Some(HashKey(0)));
        assert_eq!(java_big_integer("+007"), Some(HashKey(7)));
        assert_eq!(java_big_integer("-5"), Some(Negative));
        assert_eq!(java_big_integer("١٢"), Some(HashKey(12)));
        assert_eq!(
            java_big_integer(&u128::MAX.to_string()),
            Some(HashKey(u128::MAX))
        );
        assert_eq!(
            java_big_integer("340282366920938463463374607431768211456"),
            Some(TooLarge)
        );
        assert_eq!(
            java_big_integer("-340282366920938463463374607431768211456"),
            Some(Negative)
        );
        for bad in [
            "",
            "-",
            "+",
            "+-1",
            "1-",
            "--1",
            " 1",
            "1 ",
            "1e3",
            "0x1",
            "1_0",
            "\u{1D7CE}",
        ] {
            assert_eq!(java_big_integer(bad), None, "{bad:?}");
        }
        // A bad character after an overflow is still an error.
        assert_eq!(java_big_integer(&format!("{}9x", u128::MAX)), None);
    }

    #[test]
    fn lossy_utf8_like_jdk17() {
        let r = '\u{FFFD}';
        let cases: &[(&[u8], String)] = &[
            (b"\xED\xA0\x80", r.to_string()),
            (b"\xED\xA0", r.to_string()),
            (b"\xED\xA0A", format!("{r}A")),
            (b"\xE0\x80\x80", format!("{r}{r}{r}")),
            (b"\xE2\x82", r.to_string()),
            (b"\xE2\x82A", format!("{r}A")),
            (b"\xF0\x90\x80", r.to_string()),
            (b"\xF0\x90A", format!("{r}A")),
            (b"\xF0\x90\x80A", format!("{r}A")),
            (b"\xF4\x90\x80\x80", format!("{r}{r}{r}{r}")),
            (b"\xC0\x80", format!("{r}{r}")),
            (b"\xC3", r.to_string()),
            (b"\xC3A", format!("{r}A")),
            (b"\xFF\xF8", format!("{r}{r}")),
            (b"\xF0\x9F\x98\x80", "\u{1F600}".to_string()),
        ];
        for (bytes, expected) in cases {
            assert_eq!(java_utf8_lossy(bytes), expected.as_str(), "{bytes:x?}");
        }
    }
}
