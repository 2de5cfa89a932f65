//! The two parsers of `processRecords` side by side: whenever the fast path (the scanner for
//! Jackson's exact form) takes a line, it must give exactly what the serde path gives (the same
//! records: payload bytes, partition key, sequence and sub-sequence numbers, arrival time; the
//! same lag; the same payload error, to the byte), and it must take every line in Jackson's
//! form that needs no escape.
//!
//! The first input byte picks the mode. Even: the rest is the line itself (the committed seeds
//! are real lines for libFuzzer to mutate). Odd: the rest drives a generator of Jackson-shaped
//! lines whose every field may be off in the ways that matter here (leading zeros, signs,
//! exponents, huge numbers, nulls, escapes, raw control bytes, broken or unpadded base64,
//! invalid UTF-8, bytes after the object).
#![no_main]

use base64::Engine as _;
use kcl_core::__not_api::check;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// Numbers as JSON text, clean (what Jackson writes for a `long`) or off.
fn number(u: &mut Unstructured<'_>, clean: &mut bool, unsigned: bool) -> Result<String> {
    let value: i64 = u.arbitrary()?;
    let value = if unsigned {
        value.unsigned_abs() as i128
    } else {
        value as i128
    };
    // |i64::MIN| = 2^63 is no Java `long`: Jackson never writes it, so the line is off.
    if value > i128::from(i64::MAX) {
        *clean = false;
    }
    Ok(match u.int_in_range(0..=15)? {
        0..=9 => value.to_string(),
        other => {
            *clean = false;
            match other {
                10 => format!("0{value}"),
                11 => format!("-{}", value.unsigned_abs()),
                12 => [
                    "0", "-0", "00", "-00", "-", "1e3", "1E+2", "1.0", "-0.0", "+1",
                ][u.choose_index(10)?]
                .to_owned(),
                13 => format!("{}{}", u64::MAX, u.int_in_range(0..=99u8)?),
                14 => "null".to_owned(),
                _ => format!("\"{value}\""),
            }
        }
    })
}

/// A JSON string for `text` as Jackson writes it (control characters escaped, rest raw).
fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("strings serialize")
}

fn record(u: &mut Unstructured<'_>, clean: &mut bool) -> Result<Vec<u8>> {
    let mut out = b"{\"data\":".to_vec();
    let payload: Vec<u8> = u.arbitrary()?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&payload);
    match u.int_in_range(0..=15)? {
        0..=8 => out.extend_from_slice(format!("\"{encoded}\"").as_bytes()),
        9 => {
            *clean = false;
            out.extend_from_slice(b"null");
        }
        10 => {
            // Unpadded: both paths fall back to the lenient engine (no longer Jackson's form).
            *clean = false;
            out.extend_from_slice(format!("\"{}\"", encoded.trim_end_matches('=')).as_bytes());
        }
        other => {
            // One byte replaced or inserted anywhere: broken base64, an escape, a control
            // byte, a quote, non-ASCII, padding in the middle.
            *clean = false;
            let mut text = encoded.into_bytes();
            let byte = [
                b'!', b'=', b'\\', b'\t', 0, b'"', 0xc3, 0xff, b' ', b'-', b'_', b'A',
            ][u.choose_index(12)?];
            let at = u.int_in_range(0..=text.len())?;
            if other % 2 == 0 && at < text.len() {
                text[at] = byte;
            } else {
                text.insert(at, byte);
            }
            out.push(b'"');
            out.extend_from_slice(&text);
            out.push(b'"');
        }
    }
    out.extend_from_slice(b",\"partitionKey\":");
    let key: String = u.arbitrary()?;
    match u.int_in_range(0..=9)? {
        0..=6 => {
            let text = json_string(&key);
            *clean &= !text.contains('\\');
            out.extend_from_slice(text.as_bytes());
        }
        7 => out.extend_from_slice(b"null"),
        8 => {
            // Raw bytes: control characters and invalid UTF-8 unescaped.
            *clean = false;
            let raw: Vec<u8> = u.arbitrary()?;
            out.push(b'"');
            out.extend(raw.into_iter().filter(|&b| b != b'"' && b != b'\\'));
            out.push(b'"');
        }
        _ => {
            *clean = false;
            out.extend_from_slice(number(u, clean, false)?.as_bytes());
        }
    }
    out.extend_from_slice(b",\"sequenceNumber\":");
    let digits = u.int_in_range(1..=60)?;
    let mut sequence: String = (0..digits)
        .map(|_| Ok(char::from(b'0' + u.int_in_range(0..=9)?)))
        .collect::<Result<_>>()?;
    match u.int_in_range(0..=9)? {
        0..=7 => out.extend_from_slice(format!("\"{sequence}\"").as_bytes()),
        8 => {
            *clean = false;
            sequence.truncate(18);
            out.extend_from_slice(sequence.as_bytes()); // a number, maybe with leading zeros
        }
        _ => {
            *clean = false;
            out.extend_from_slice(json_string(&u.arbitrary::<String>()?).as_bytes());
        }
    }
    out.extend_from_slice(b",\"approximateArrivalTimestamp\":");
    let arrival = if u.ratio(1, 8)? {
        "null".to_owned()
    } else {
        number(u, clean, false)?
    };
    out.extend_from_slice(arrival.as_bytes());
    out.extend_from_slice(b",\"subSequenceNumber\":");
    out.extend_from_slice(number(u, clean, true)?.as_bytes());
    out.extend_from_slice(b",\"action\":\"record\"}");
    Ok(out)
}

/// A Jackson-shaped `processRecords` line, and whether it is exactly Jackson's form with
/// nothing the fast path leaves to the serde path.
fn line(u: &mut Unstructured<'_>) -> Result<(Vec<u8>, bool)> {
    let mut clean = true;
    let mut out = b"{\"action\":\"processRecords\",\"records\":[".to_vec();
    for index in 0..u.int_in_range(0..=6)? {
        if index > 0 {
            out.push(b',');
        }
        out.extend(record(u, &mut clean)?);
    }
    out.extend_from_slice(b"],\"millisBehindLatest\":");
    let lag = if u.ratio(1, 8)? {
        "null".to_owned()
    } else {
        number(u, &mut clean, true)?
    };
    out.extend_from_slice(lag.as_bytes());
    out.push(b'}');
    if u.ratio(1, 4)? {
        let tail = [
            &b" "[..],
            b"\t",
            b"\r",
            b" \r\n",
            b"\x0c",
            b"\x0b",
            b"\0",
            b"x",
            b"}",
            b",",
        ][u.choose_index(10)?];
        clean &= tail.iter().all(|b| b" \t\r\n".contains(b));
        out.extend_from_slice(tail);
    }
    Ok((out, clean))
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        if let Err(difference) = check(rest) {
            panic!("{difference}");
        }
        return;
    }
    let Ok((line, clean)) = line(&mut Unstructured::new(rest)) else {
        return;
    };
    match check(&line) {
        Err(difference) => panic!("{difference}"),
        Ok(false) if clean => panic!(
            "the fast path left a line in Jackson's form to the serde path: {:?}",
            String::from_utf8_lossy(&line)
        ),
        Ok(_) => {}
    }
});
