//! The Java `.properties` format as the daemon reads it (`java.util.Properties.load(InputStream)`):
//! [`parse`] (with its escapes and continuations), and [`escape_value`] / [`is_plain_key`] for
//! writing lines it reads back unchanged.

use std::fmt::Write as _;

/// One `key = value` of a properties file.
///
/// ```
/// let entries = kcl_properties::parse(b"# a comment\nstreamName = orders\n");
/// assert_eq!(entries[0].key, "streamName");
/// assert_eq!(entries[0].value, "orders");
/// assert_eq!(entries[0].line, 2);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// The value (escapes resolved).
    pub value: String,
    /// The 1-based line where the entry starts (0 for entries not read from a file).
    pub line: usize,
}

/// Reads a Java `.properties` text (ISO-8859-1, as `Properties.load(InputStream)` does):
/// `#`/`!` comments, `=`, `:` or whitespace separators, `\` continuations and escapes. Lines
/// end at `\n`, `\r\n` or a lone `\r`, as Java's `LineReader` has them.
///
/// Every entry is kept, in file order, duplicates included (the daemon's `Properties` keeps the
/// last value of a key). A value keeps its trailing spaces, as Java's does.
///
/// ```
/// let entries = kcl_properties::parse(b"streamName = a\\\n   b\nkey:v\\u00e9 \n");
/// assert_eq!(entries[0].value, "ab");
/// assert_eq!((entries[1].key.as_str(), entries[1].value.as_str()), ("key", "v\u{e9} "));
/// ```
pub fn parse(bytes: &[u8]) -> Vec<Entry> {
    let text: String = bytes.iter().map(|&b| char::from(b)).collect();
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let physical: Vec<&str> = text.split('\n').collect();
    let mut entries = Vec::new();
    let mut index = 0;
    while index < physical.len() {
        let start = index;
        let first = physical[index];
        index += 1;
        let trimmed = first.trim_start_matches([' ', '\t', '\u{c}']);
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            continue;
        }
        let mut logical = String::from(trimmed);
        while ends_with_odd_backslashes(&logical) && index < physical.len() {
            logical.pop();
            let next = physical[index];
            index += 1;
            logical.push_str(next.trim_start_matches([' ', '\t', '\u{c}']));
        }
        if ends_with_odd_backslashes(&logical) {
            logical.pop();
        }
        let (key, value) = split_entry(&logical);
        entries.push(Entry {
            key,
            value,
            line: start + 1,
        });
    }
    entries
}

fn ends_with_odd_backslashes(text: &str) -> bool {
    text.chars().rev().take_while(|c| *c == '\\').count() % 2 == 1
}

fn split_entry(logical: &str) -> (String, String) {
    let chars: Vec<char> = logical.chars().collect();
    let mut at = 0;
    let mut key_end = chars.len();
    while at < chars.len() {
        match chars[at] {
            '\\' => at += 2,
            '=' | ':' | ' ' | '\t' | '\u{c}' => {
                key_end = at;
                break;
            }
            _ => at += 1,
        }
    }
    let key_end = key_end.min(chars.len());
    let mut value_start = key_end;
    while value_start < chars.len() && matches!(chars[value_start], ' ' | '\t' | '\u{c}') {
        value_start += 1;
    }
    if value_start < chars.len() && matches!(chars[value_start], '=' | ':') {
        value_start += 1;
        while value_start < chars.len() && matches!(chars[value_start], ' ' | '\t' | '\u{c}') {
            value_start += 1;
        }
    }
    let key: String = chars[..key_end].iter().collect();
    let value: String = chars[value_start.min(chars.len())..].iter().collect();
    (unescape(&key), unescape(&value))
}

fn unescape(text: &str) -> String {
    // Java strings are UTF-16: `\uD83D\uDD11` is one character.
    let mut units: Vec<u16> = Vec::new();
    let push = |c: char, units: &mut Vec<u16>| {
        let mut buffer = [0u16; 2];
        units.extend_from_slice(c.encode_utf16(&mut buffer));
    };
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            push(c, &mut units);
            continue;
        }
        match chars.next() {
            Some('t') => push('\t', &mut units),
            Some('n') => push('\n', &mut units),
            Some('r') => push('\r', &mut units),
            Some('f') => push('\u{c}', &mut units),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                match u16::from_str_radix(&hex, 16) {
                    Ok(unit) if hex.len() == 4 => units.push(unit),
                    _ => push('\u{fffd}', &mut units),
                }
            }
            Some(other) => push(other, &mut units),
            None => {}
        }
    }
    String::from_utf16_lossy(&units)
}

/// Whether `key` can be written as it is: letters, digits, `.`, `_` and `-` only, so that no
/// separator, comment mark, escape or line break changes how the daemon reads the line.
///
/// ```
/// assert!(kcl_properties::is_plain_key("maxRecords"));
/// assert!(!kcl_properties::is_plain_key("a key"));
/// ```
pub fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Escapes a value for a properties file: ASCII only (the daemon reads ISO-8859-1), so that
/// [`parse`] reads the same value back.
///
/// ```
/// use kcl_properties::{escape_value, parse};
/// let line = format!("k = {}\n", escape_value(" caf\u{e9}\n"));
/// assert_eq!(line, "k = \\ caf\\u00e9\\n\n");
/// assert_eq!(parse(line.as_bytes())[0].value, " caf\u{e9}\n");
/// ```
pub fn escape_value(value: &str) -> String {
    let mut out = String::new();
    for (index, c) in value.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' ' if index == 0 => out.push_str("\\ "),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Vec<Entry> {
        parse(text.as_bytes())
    }

    #[test]
    fn java_properties_syntax() {
        let parsed = entries(
            "# comment\n! also\n  key1=a\nkey2 : b c \nkey3 d\nkey4\\ x = y\nkey5 = one \\\n     two\r\nkey6=\\u00e9\\t\n",
        );
        let pairs: Vec<(&str, &str)> = parsed
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("key1", "a"),
                ("key2", "b c "),
                ("key3", "d"),
                ("key4 x", "y"),
                ("key5", "one two"),
                ("key6", "é\t")
            ]
        );
        assert_eq!(parsed[4].line, 7);
        // Bytes are ISO-8859-1: UTF-8 "é" reads as two characters.
        assert_eq!(parse("k=é".as_bytes())[0].value, "Ã©");
    }

    #[test]
    fn escaping_round_trips() {
        for value in [
            " lead",
            "back\\slash\\",
            "é ключ 🔑",
            "tab\tnew\nline\r\n",
            "a=b:c#d!e",
            "#hash",
            "!bang",
            "=eq",
            ":colon",
            "x\nexecutableName = /opt/evil",
        ] {
            let text = format!("k = {}\n", escape_value(value));
            assert!(text.is_ascii());
            let parsed = parse(text.as_bytes());
            assert_eq!(parsed.len(), 1, "{text}");
            assert_eq!(parsed[0].value, value);
        }
    }

    #[test]
    fn plain_keys() {
        for key in ["maxRecords", "my.custom_key-1", "AwsCredentialsProvider"] {
            assert!(is_plain_key(key), "{key}");
        }
        for key in ["", "a b", "a:b", "a=b", "#a", "!a", "a\\b", "a\nb", "é"] {
            assert!(!is_plain_key(key), "{key:?}");
        }
    }

    #[test]
    fn lone_carriage_returns_end_lines() {
        let parsed = parse(b"a=1\rb=2\r\nc=3\\\r  4\n");
        let pairs: Vec<(&str, &str, usize)> = parsed
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect();
        assert_eq!(pairs, [("a", "1", 1), ("b", "2", 2), ("c", "34", 3)]);
    }

    #[test]
    fn parse_example() {
        let entries = parse(b"# c\nstreamName = a\\\n   b\nkey:v\\u00e9\n");
        assert_eq!(entries[0].value, "ab");
        assert_eq!(
            (entries[1].key.as_str(), entries[1].value.as_str()),
            ("key", "vé")
        );
    }
}
