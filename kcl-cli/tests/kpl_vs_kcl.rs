//! `kcl_kpl::kcl_view` against the real thing: the KCL 3.1.3 jar's own de-aggregation
//! (`AggregatorUtil.deaggregate`, called as `ProcessTask.deaggregateAnyKplRecords` calls it: with
//! the shard's starting and ending hash keys as strings, or without a shard), driven by a small
//! Java probe. Both get the same batches of Kinesis records: aggregates made by
//! `AggregateBuilder`, hand-written protobuf with every rule of Java's proto2 parser in play
//! (unknown fields and groups, wrong wire types, long varints, missing required fields,
//! duplicates, truncation), indexes past the tables or past 32 bits, explicit hash keys in and
//! outside the shard or not numbers at all, strings that are not UTF-8, plain records, records
//! that only start like an aggregate. What the record processor would get must be identical,
//! record by record. One JVM runs every case.

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use common::{JavaProbe, Rng, require_program, require_real_jars};
use kcl_kpl::{
    AggregateBuilder, Delivered, ExplicitHashKey, HashKeyRange, NotAggregated, Outcome, decode,
    kcl_batch_view, kcl_view,
};
use md5::{Digest, Md5};

/// Reads one batch per line on stdin and writes one line per batch to the file named by its
/// argument (the KCL logs through logback, which may write to stdout).
///
/// Input line: `START END DATA:KEY DATA:KEY ...`, the shard's hash keys in decimal (`-` for no
/// shard: `deaggregate(List)`), then each Kinesis record's data and partition key (UTF-8), in
/// hex. Output line: `ok` and for each record delivered ` PARENT:DATA:KEY:EHK:SUB:AGG` (the
/// position of its Kinesis record, the data in hex, partition key and explicit hash key as hex
/// UTF-16 code units, `-` for none), or `threw CLASS` when `deaggregate` throws.
const PROBE: &str = r#"
import java.io.*;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import software.amazon.kinesis.retrieval.AggregatorUtil;
import software.amazon.kinesis.retrieval.KinesisClientRecord;

public class KplProbe {
  static byte[] unhex(String hex) {
    byte[] bytes = new byte[hex.length() / 2];
    for (int i = 0; i < bytes.length; i++) {
      bytes[i] = (byte) Integer.parseInt(hex.substring(2 * i, 2 * i + 2), 16);
    }
    return bytes;
  }

  static void hex(StringBuilder out, ByteBuffer data) {
    ByteBuffer copy = data.duplicate();
    while (copy.hasRemaining()) out.append(String.format("%02x", copy.get() & 0xff));
  }

  static void utf16(StringBuilder out, String text) {
    if (text == null) { out.append('-'); return; }
    out.append('u');
    for (int i = 0; i < text.length(); i++) out.append(String.format("%04x", (int) text.charAt(i)));
  }

  public static void main(String[] args) throws Exception {
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8), 1 << 20);
    Writer out = new BufferedWriter(new OutputStreamWriter(new FileOutputStream(args[0]), StandardCharsets.UTF_8), 1 << 20);
    AggregatorUtil util = new AggregatorUtil();
    for (String line; (line = in.readLine()) != null; ) {
      String[] f = line.split(" ", -1);
      List<KinesisClientRecord> batch = new ArrayList<>();
      for (int i = 2; i < f.length; i++) {
        String[] r = f[i].split(":", -1);
        batch.add(KinesisClientRecord.builder()
            .data(ByteBuffer.wrap(unhex(r[0])))
            .partitionKey(new String(unhex(r[1]), StandardCharsets.UTF_8))
            .sequenceNumber(Integer.toString(i - 2))
            .approximateArrivalTimestamp(Instant.ofEpochMilli(1700000000000L))
            .build());
      }
      StringBuilder answer = new StringBuilder();
      try {
        List<KinesisClientRecord> result = f[0].equals("-")
            ? util.deaggregate(batch)
            : util.deaggregate(batch, f[0], f[1]);
        answer.append("ok");
        for (KinesisClientRecord r : result) {
          answer.append(' ').append(r.sequenceNumber()).append(':');
          hex(answer, r.data());
          answer.append(':');
          utf16(answer, r.partitionKey());
          answer.append(':');
          utf16(answer, r.explicitHashKey());
          answer.append(':').append(r.subSequenceNumber()).append(':').append(r.aggregated() ? 1 : 0);
        }
      } catch (Throwable t) {
        answer.setLength(0);
        answer.append("threw ").append(t.getClass().getName());
      }
      out.write(answer.append('\n').toString());
    }
    out.close();
  }
}
"#;

/// What a `NoClassDefFoundError` out of `deaggregate` looks like in the probe's answer
/// (`kcl_kpl::Outcome::BatchSkipped`).
const SKIPPED: &str = "threw java.lang.NoClassDefFoundError";

/// One GetRecords batch read from one shard.
#[derive(Clone, Debug)]
struct Case {
    /// Where it comes from (for the report).
    label: &'static str,
    /// The shard's range; `None`: `ProcessTask` without a shard.
    shard: Option<HashKeyRange>,
    /// Data and partition key of each Kinesis record.
    batch: Vec<(Vec<u8>, String)>,
}

impl Case {
    fn one(label: &'static str, shard: Option<HashKeyRange>, data: Vec<u8>, key: &str) -> Case {
        Case {
            label,
            shard,
            batch: vec![(data, key.to_string())],
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

fn utf16(text: Option<&str>) -> String {
    match text {
        None => "-".into(),
        Some(text) => text
            .encode_utf16()
            .fold(String::from("u"), |mut out, unit| {
                let _ = write!(out, "{unit:04x}");
                out
            }),
    }
}

fn probe_line(case: &Case) -> String {
    let mut line = match case.shard {
        None => "- -".to_string(),
        Some(range) => format!("{} {}", range.start, range.end),
    };
    for (data, key) in &case.batch {
        let _ = write!(line, " {}:{}", hex(data), hex(key.as_bytes()));
    }
    line
}

/// What `kcl_kpl` predicts, in the probe's words.
fn predicted(case: &Case) -> String {
    let shard = case.shard.unwrap_or(HashKeyRange::ALL);
    let batch = case.batch.iter().map(|(d, k)| (d.as_slice(), k.as_str()));
    match kcl_batch_view(batch, shard) {
        Err(_) => SKIPPED.to_string(),
        Ok(delivered) => {
            let mut line = String::from("ok");
            for (parent, record) in delivered {
                let Delivered {
                    partition_key,
                    explicit_hash_key,
                    data,
                    sub_sequence_number,
                    aggregated,
                } = record;
                let _ = write!(
                    line,
                    " {parent}:{}:{}:{}:{sub_sequence_number}:{}",
                    hex(&data),
                    utf16(Some(&partition_key)),
                    utf16(explicit_hash_key.as_deref()),
                    u8::from(aggregated)
                );
            }
            line
        }
    }
}

/// The outcome `kcl_view` reports for each Kinesis record of a case, for the coverage count.
fn outcomes(case: &Case) -> Vec<String> {
    let shard = case.shard.unwrap_or(HashKeyRange::ALL);
    case.batch
        .iter()
        .map(|(data, key)| match kcl_view(data, key, shard).outcome {
            Outcome::PassedThrough(NotAggregated::Protobuf(error)) => {
                format!("passed through: protobuf: {error:?}")
            }
            Outcome::PassedThrough(reason) => format!("passed through: {reason:?}"),
            Outcome::Deaggregated => "deaggregated".into(),
            Outcome::Dropped { .. } => "dropped (hash key outside the shard)".into(),
            Outcome::BatchSkipped { cause, .. } => {
                let cause = format!("{cause:?}");
                format!("batch skipped: {}", cause.split('(').next().unwrap())
            }
        })
        .collect()
}

// --- protobuf by hand, including what a correct encoder never writes ----------------------

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// `value` as a varint of exactly `len` bytes (1 to 10; longer than needed: padded with
/// continuation groups of zero bits). With `len` 10 and `junk`, the 10th byte also carries bits
/// past the 64th, which Java drops.
fn varint_padded(out: &mut Vec<u8>, value: u64, len: usize, junk: bool) {
    for i in 0..len {
        let group = if i * 7 < 64 {
            (value >> (i * 7)) as u8 & 0x7F
        } else {
            0
        };
        let group = if i == 9 && junk { group | 0x7E } else { group };
        out.push(if i + 1 < len { group | 0x80 } else { group });
    }
}

/// A message under construction.
#[derive(Clone, Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn key(&mut self, field: u64, wire: u64) -> &mut Self {
        varint(&mut self.0, (field << 3) | wire);
        self
    }
    fn uint(&mut self, field: u64, value: u64) -> &mut Self {
        self.key(field, 0);
        varint(&mut self.0, value);
        self
    }
    fn bytes(&mut self, field: u64, bytes: &[u8]) -> &mut Self {
        self.key(field, 2);
        varint(&mut self.0, bytes.len() as u64);
        self.0.extend_from_slice(bytes);
        self
    }
    fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }
    fn done(&self) -> Vec<u8> {
        self.0.clone()
    }
}

/// A record body with `partition_key_index` and `data`.
fn record(index: u64, data: &[u8]) -> Vec<u8> {
    Msg::default().uint(1, index).bytes(3, data).done()
}

/// Magic, message, MD5 digest of the message.
fn framed(message: &[u8]) -> Vec<u8> {
    let mut out = vec![0xF3, 0x89, 0x9A, 0xC2];
    out.extend_from_slice(message);
    out.extend_from_slice(&Md5::digest(message));
    out
}

/// An aggregate with one partition key table entry and these record bodies.
fn aggregate_of(key: &[u8], records: &[Vec<u8>]) -> Vec<u8> {
    let mut msg = Msg::default();
    msg.bytes(1, key);
    for body in records {
        msg.bytes(3, body);
    }
    framed(&msg.done())
}

/// Bytes that make UTF-8 decoders disagree: ASCII, continuation bytes at the edges of their
/// ranges, lead bytes of every length, bytes never valid.
const UTF8_EDGES: [u8; 21] = [
    0x41, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xED, 0xEF, 0xF0,
    0xF1, 0xF4, 0xF5, 0xF8, 0xFF,
];

fn partition_key(rng: &mut Rng) -> String {
    match rng.below(8) {
        0 => String::new(),
        1 => "é/ü-ключ-键-🔑".into(),
        2 => "x".repeat(256),
        _ => format!("user-{}", rng.below(12)),
    }
}

/// Key table bytes: mostly UTF-8, sometimes not.
fn key_bytes(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(75) {
        partition_key(rng).into_bytes()
    } else {
        (0..1 + rng.below(6))
            .map(|_| rng.pick(&UTF8_EDGES))
            .collect()
    }
}

/// Explicit hash key texts: numbers in every spelling Java's `BigInteger` reads, out of the
/// 128-bit range, and not numbers at all.
fn hash_key_text(rng: &mut Rng) -> Vec<u8> {
    let value = rng.u128();
    let text = match rng.below(16) {
        0..=5 => value.to_string(),
        6 => format!("+{value}"),
        7 => format!("000{value}"),
        8 => "-0".into(),
        9 => rng
            .pick(&["-1", "-340282366920938463463374607431768211456"])
            .to_string(),
        10 => rng
            .pick(&[
                "340282366920938463463374607431768211456",
                "340282366920938463463374607431768211455",
                "99999999999999999999999999999999999999999999999",
            ])
            .to_string(),
        11 => "١٢٣٤٥٦٧٨٩٠".into(),
        12 => rng
            .pick(&[
                "", " 5", "5 ", "1e3", "0x10", "+", "-", "+-1", "1-1", "12a", "𝟎",
            ])
            .to_string(),
        13 => return vec![0x31, rng.pick(&UTF8_EDGES)],
        _ => (value % 1000).to_string(),
    };
    text.into_bytes()
}

/// A shard range for a case: none, everything, halves and quarters, or a narrow one around a
/// hash key of interest.
fn shard(rng: &mut Rng, around: u128) -> Option<HashKeyRange> {
    let quarter = u128::MAX / 4 + 1;
    match rng.below(10) {
        0 | 1 => None,
        2 => Some(HashKeyRange::ALL),
        3 => Some(HashKeyRange::new(0, u128::MAX / 2)),
        4 => Some(HashKeyRange::new(u128::MAX / 2 + 1, u128::MAX)),
        5 => {
            let q = rng.below(4) as u128;
            Some(HashKeyRange::new(
                q * quarter,
                if q == 3 {
                    u128::MAX
                } else {
                    (q + 1) * quarter - 1
                },
            ))
        }
        6 => Some(HashKeyRange::new(around, around)),
        7 => Some(HashKeyRange::new(
            around.saturating_sub(1000),
            around.saturating_add(1000),
        )),
        // The quarter that holds `around` (a shard of a 4-shard stream that the aggregate was put to).
        _ => {
            let q = around / quarter;
            Some(HashKeyRange::new(
                q * quarter,
                if q == 3 {
                    u128::MAX
                } else {
                    (q + 1) * quarter - 1
                },
            ))
        }
    }
}

/// An aggregate from `AggregateBuilder`: random records, sometimes with explicit hash keys,
/// sometimes all on one key. Checks the round trip through `decode` on the way.
fn built(rng: &mut Rng) -> Case {
    let mut builder = AggregateBuilder::default();
    let same_key = rng.chance(30);
    let first_key = partition_key(rng);
    let mut pushed = Vec::new();
    for _ in 0..1 + rng.below(12) {
        let key = if same_key {
            first_key.clone()
        } else {
            partition_key(rng)
        };
        let explicit = rng.chance(25).then(|| {
            ExplicitHashKey::new(if rng.chance(50) {
                rng.u128()
            } else {
                kcl_kpl::hash_key(&first_key).wrapping_add(rng.below(3) as u128)
            })
        });
        let max = if rng.chance(10) { 3000 } else { 40 };
        let data = rng.bytes(max);
        builder.push(&key, explicit.as_ref(), &data).unwrap();
        pushed.push(kcl_kpl::UserRecord {
            partition_key: key,
            explicit_hash_key: explicit,
            data,
            tags: vec![],
        });
    }
    let expected_len = builder.encoded_len();
    let aggregate = builder.finish().unwrap();
    assert_eq!(aggregate.data.len(), expected_len);
    assert_eq!(decode(&aggregate.data).unwrap(), pushed);
    let around = aggregate.hash_key();
    Case {
        label: "AggregateBuilder",
        shard: shard(rng, around),
        batch: vec![(aggregate.data, aggregate.partition_key)],
    }
}

/// A varint index: in the table, past it, past 32 bits, negative as a Java int, written long.
fn index(rng: &mut Rng, table: usize) -> Vec<u8> {
    let value: u64 = match rng.below(12) {
        0..=6 => rng.below(table.max(1)) as u64,
        7 => table as u64 + rng.below(3) as u64,
        8 => (1 << 32) + rng.below(table.max(1)) as u64,
        9 => rng.pick(&[1 << 31, (1 << 32) - 1, u64::MAX, (1 << 63) + 1]),
        _ => rng.below(table.max(1)) as u64 + rng.pick(&[0, 1 << 32, 1 << 40]),
    };
    let mut out = Vec::new();
    if rng.chance(20) {
        let len = (1..=10)
            .find(|&n| n * 7 >= 64 - value.leading_zeros() as usize)
            .unwrap_or(1);
        varint_padded(
            &mut out,
            value,
            rng.pick(&[len, len + 1, 10]).min(10),
            rng.chance(50),
        );
    } else {
        varint(&mut out, value);
    }
    out
}

/// An unknown field: any valid wire type (groups nested a little), sometimes an invalid one.
fn unknown_field(rng: &mut Rng, msg: &mut Msg, depth: usize) {
    let field = rng.pick(&[5u64, 6, 15, 16, 100, 536_870_911]);
    match rng.below(14) {
        0..=2 => {
            msg.uint(field, rng.next());
        }
        3 | 4 => {
            msg.bytes(field, &rng.bytes(6));
        }
        5 => {
            msg.key(field, 1).raw(&rng.next().to_le_bytes());
        }
        6 => {
            msg.key(field, 5).raw(&(rng.next() as u32).to_le_bytes());
        }
        7 | 8 if depth < 3 => {
            msg.key(field, 3);
            for _ in 0..rng.below(3) {
                unknown_field(rng, msg, depth + 1);
            }
            // Usually the matching end tag; sometimes another field's.
            let end = if rng.chance(85) { field } else { field + 1 };
            msg.key(end, 4);
        }
        9 => {
            msg.key(field, rng.pick(&[6, 7]));
        }
        10 => {
            msg.key(field, 4); // an end-group tag with no group open
        }
        11 => {
            msg.raw(&[rng.pick(&[0x00, 0x02, 0x07])]); // field number 0
        }
        _ => {
            // A known field number with the wrong wire type.
            match rng.below(3) {
                0 => msg.uint(rng.pick(&[1, 2, 3]), rng.below(4) as u64),
                1 => msg.key(3, 5).raw(&[1, 2, 3, 4]),
                _ => msg.bytes(rng.pick(&[1, 2]), &[1]),
            };
        }
    }
}

/// A Tag message body.
fn tag_body(rng: &mut Rng) -> Vec<u8> {
    let mut tag = Msg::default();
    if rng.chance(90) {
        tag.bytes(1, &key_bytes(rng));
    }
    if rng.chance(50) {
        tag.bytes(2, &key_bytes(rng));
    }
    if rng.chance(10) {
        unknown_field(rng, &mut tag, 0);
    }
    tag.done()
}

/// A Record message body: required fields mostly there, optional ones, tags, unknown fields,
/// duplicates.
fn record_body(rng: &mut Rng, keys: usize, hash_keys: usize) -> Vec<u8> {
    let mut body = Msg::default();
    let mut parts: Vec<u8> = Vec::new();
    if rng.chance(95) {
        parts.push(1);
    }
    if rng.chance(30) {
        parts.push(2);
    }
    if rng.chance(95) {
        parts.push(3);
    }
    for _ in 0..rng.below(3) {
        parts.push(rng.pick(&[1, 2, 3, 4, 4, 9]));
    }
    if rng.chance(50) {
        // The order of fields does not matter to the parser.
        let at = rng.below(parts.len() + 1).min(parts.len());
        parts.rotate_left(at);
    }
    for part in parts {
        match part {
            1 => {
                body.key(1, 0);
                body.raw(&index(rng, keys));
            }
            2 => {
                body.key(2, 0);
                body.raw(&index(rng, hash_keys));
            }
            3 => {
                body.bytes(3, &rng.bytes(12));
            }
            4 => {
                body.bytes(4, &tag_body(rng));
            }
            _ => unknown_field(rng, &mut body, 1),
        }
    }
    body.done()
}

/// A whole `AggregatedRecord` written by hand, then maybe damaged (and framed with a matching
/// digest, so the parser sees the damage).
fn hand_written(rng: &mut Rng) -> Case {
    let keys = rng.below(4);
    let hash_keys = rng.below(3);
    let mut msg = Msg::default();
    let mut entries: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut first_key = None;
    for _ in 0..keys {
        let key = key_bytes(rng);
        first_key.get_or_insert_with(|| key.clone());
        entries.push((1, key));
    }
    for _ in 0..hash_keys {
        entries.push((2, hash_key_text(rng)));
    }
    let records = rng.below(6);
    for _ in 0..records {
        entries.push((3, record_body(rng, keys, hash_keys)));
    }
    if rng.chance(40) {
        // Tables and records may interleave.
        let at = rng.below(entries.len() + 1).min(entries.len());
        entries.rotate_left(at);
    }
    for (field, bytes) in &entries {
        if rng.chance(3) {
            unknown_field(rng, &mut msg, 0);
        }
        if *field == 3 && rng.chance(5) {
            // A length with bits above the 32nd, which Java drops.
            msg.key(3, 2);
            varint(&mut msg.0, bytes.len() as u64 + (1 << 32));
            msg.raw(bytes);
        } else {
            msg.bytes(*field, bytes);
        }
    }
    let mut message = msg.done();
    if rng.chance(25) && !message.is_empty() {
        match rng.below(4) {
            0 => message.truncate(rng.below(message.len())),
            1 => {
                let at = rng.below(message.len());
                message[at] ^= 1 << rng.below(8);
            }
            2 => {
                let at = rng.below(message.len() + 1);
                message.insert(at, rng.next() as u8);
            }
            _ => {
                let at = rng.below(message.len());
                message.remove(at);
            }
        }
    }
    let data = framed(&message);
    let around = first_key
        .and_then(|k| String::from_utf8(k).ok())
        .map_or(0, |k| kcl_kpl::hash_key(&k));
    let pk = partition_key(rng);
    Case {
        label: "hand-written protobuf",
        shard: shard(rng, around),
        batch: vec![(data, pk)],
    }
}

/// Records that are not aggregates, or only look like one.
fn plain(rng: &mut Rng) -> Case {
    let magic = [0xF3u8, 0x89, 0x9A, 0xC2];
    let data = match rng.below(8) {
        0 => Vec::new(),
        1 => magic[..rng.below(4)].to_vec(),
        2 => {
            let mut d = magic.to_vec();
            d.extend(std::iter::repeat_n(0u8, rng.below(18)));
            d
        }
        3 => {
            // A good aggregate with one bit of its digest or body flipped.
            let mut d = aggregate_of(b"k", &[record(0, b"payload")]);
            let at = 4 + rng.below(d.len() - 4);
            d[at] ^= 1 << rng.below(8);
            d
        }
        4 => {
            let mut d = magic.to_vec();
            d.extend(rng.bytes(64));
            d
        }
        _ => rng.bytes(64),
    };
    let key = partition_key(rng);
    Case::one("plain or look-alike", shard(rng, 0), data, &key)
}

/// Several Kinesis records in one batch: an exception in one aggregate skips them all.
fn batch(rng: &mut Rng) -> Case {
    let mut case = Case {
        label: "batch of several records",
        shard: None,
        batch: Vec::new(),
    };
    for _ in 0..2 + rng.below(3) {
        let part = match rng.below(3) {
            0 => plain(rng),
            1 => built(rng),
            _ => hand_written(rng),
        };
        case.batch.extend(part.batch);
    }
    case.shard = shard(rng, kcl_kpl::hash_key(&case.batch[0].1));
    case
}

fn generated(rng: &mut Rng, count: usize) -> Vec<Case> {
    (0..count)
        .map(|_| match rng.below(10) {
            0..=2 => built(rng),
            3..=7 => hand_written(rng),
            8 => plain(rng),
            _ => batch(rng),
        })
        .collect()
}

/// The cases each rule of the format is known by, written out.
fn hand_picked() -> Vec<Case> {
    let all = Some(HashKeyRange::ALL);
    let one = |label, data: Vec<u8>| Case::one(label, all, data, "pk");
    let key_table = |msg: &mut Msg| {
        msg.bytes(1, b"k");
    };
    let mut cases = vec![
        one("empty record", vec![]),
        one("magic only", vec![0xF3, 0x89, 0x9A, 0xC2]),
        one("empty message (20 bytes)", framed(&[])),
        one("magic and 17 zero bytes", {
            let mut d = vec![0xF3, 0x89, 0x9A, 0xC2];
            d.extend([0; 17]);
            d
        }),
        one(
            "a message of one unknown varint field",
            framed(&[0x28, 0x01]),
        ),
        one(
            "only a key table: no records",
            framed(&Msg::default().bytes(1, b"k").done()),
        ),
        one(
            "index 0 and empty data written",
            aggregate_of(b"k", &[record(0, b"")]),
        ),
        one(
            "index 0 left out (a proto3-style encoder)",
            aggregate_of(b"k", &[Msg::default().bytes(3, b"data").done()]),
        ),
        one(
            "empty data left out",
            aggregate_of(b"k", &[Msg::default().uint(1, 0).done()]),
        ),
        one(
            "index past the table, after two good records",
            aggregate_of(b"k", &[record(0, b"a"), record(0, b"b"), record(1, b"c")]),
        ),
        one(
            "index 2^32: (int) makes it 0",
            aggregate_of(b"k", &[record(1 << 32, b"a")]),
        ),
        one(
            "index 2^31: (int) makes it negative",
            aggregate_of(b"k", &[record(1 << 31, b"a")]),
        ),
        one(
            "explicit hash key index without a table",
            aggregate_of(
                b"k",
                &[Msg::default().uint(1, 0).uint(2, 0).bytes(3, b"a").done()],
            ),
        ),
        one(
            "duplicate data: the last wins",
            aggregate_of(
                b"k",
                &[Msg::default()
                    .uint(1, 0)
                    .bytes(3, b"first")
                    .bytes(3, b"last")
                    .done()],
            ),
        ),
        one(
            "tag without a key",
            aggregate_of(
                b"k",
                &[Msg::default()
                    .uint(1, 0)
                    .bytes(3, b"a")
                    .bytes(4, &[0x12, 0x01, b'v'])
                    .done()],
            ),
        ),
        one(
            "tag with a key",
            aggregate_of(
                b"k",
                &[Msg::default()
                    .uint(1, 0)
                    .bytes(3, b"a")
                    .bytes(4, &[0x0A, 0x01, b't'])
                    .done()],
            ),
        ),
        one(
            "data as a varint: unknown field, data missing",
            aggregate_of(b"k", &[Msg::default().uint(1, 0).uint(3, 5).done()]),
        ),
        one(
            "index as length-delimited: unknown field, index missing",
            aggregate_of(b"k", &[Msg::default().bytes(1, &[0]).bytes(3, b"a").done()]),
        ),
        one(
            "end-group tag at the top",
            framed(&Msg::default().bytes(1, b"k").key(1, 4).done()),
        ),
        one("wire type 6", framed(&Msg::default().key(9, 6).done())),
        one("field number 0", framed(&[0x00])),
        one("10-byte varint", {
            let mut body = Msg::default();
            body.key(1, 0);
            varint_padded(&mut body.0, 0, 10, true);
            body.bytes(3, b"a");
            aggregate_of(b"k", &[body.done()])
        }),
        one("11-byte varint", {
            let mut body = Msg::default();
            body.key(1, 0).raw(&[0x80; 10]).raw(&[0x00]);
            body.bytes(3, b"a");
            aggregate_of(b"k", &[body.done()])
        }),
        one("a tag written in 10 bytes", {
            let mut msg = Msg::default();
            varint_padded(&mut msg.0, 10, 10, false);
            msg.raw(&[1, b'k']).bytes(3, &record(0, b"a"));
            framed(&msg.done())
        }),
        one(
            "a length negative as a Java int",
            framed(
                &Msg::default()
                    .key(1, 2)
                    .raw(&[0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
                    .done(),
            ),
        ),
        one("a tag with bits above the 32nd (Java keeps the low 32)", {
            let mut msg = Msg::default();
            varint(&mut msg.0, 10 | (1 << 35));
            msg.raw(&[1, b'k']).bytes(3, &record(0, b"a"));
            framed(&msg.done())
        }),
        one("a tag with bit 31 set: field 268435457, unknown", {
            let mut msg = Msg::default();
            varint(&mut msg.0, 0x8000_000A);
            msg.raw(&[1, b'x'])
                .bytes(1, b"k")
                .bytes(3, &record(0, b"a"));
            framed(&msg.done())
        }),
        one(
            "key not UTF-8",
            aggregate_of(b"\xED\xA0\x80-\xC3", &[record(0, b"a")]),
        ),
    ];
    // Explicit hash keys the KCL reads, or fails to.
    for text in [
        "0",
        "+5",
        "-0",
        "007",
        "-1",
        "١٢",
        "340282366920938463463374607431768211455",
        "340282366920938463463374607431768211456",
        "",
        " 5",
        "abc",
        "1\u{FFFD}",
    ] {
        let mut msg = Msg::default();
        key_table(&mut msg);
        msg.bytes(2, text.as_bytes());
        msg.bytes(3, &record(0, b"first"));
        msg.bytes(
            3,
            &Msg::default()
                .uint(1, 0)
                .uint(2, 0)
                .bytes(3, b"second")
                .done(),
        );
        cases.push(one("explicit hash key spellings", framed(&msg.done())));
    }
    // Groups nested to Java's limit, at the top (depth 0), in a record (1) and in a tag (2).
    for levels in [98, 99, 100, 101] {
        let group = |levels: usize| {
            let mut msg = Msg::default();
            for _ in 0..levels {
                msg.key(7, 3);
            }
            for _ in 0..levels {
                msg.key(7, 4);
            }
            msg.done()
        };
        let mut top = Msg::default();
        top.raw(&group(levels))
            .bytes(1, b"k")
            .bytes(3, &record(0, b"a"));
        cases.push(one("nested groups at the top", framed(&top.done())));
        let mut body = Msg::default();
        body.uint(1, 0).bytes(3, b"a").raw(&group(levels));
        cases.push(one(
            "nested groups in a record",
            aggregate_of(b"k", &[body.done()]),
        ));
        let mut tag = Msg::default();
        tag.bytes(1, b"t").raw(&group(levels));
        let mut body = Msg::default();
        body.uint(1, 0).bytes(3, b"a").bytes(4, &tag.done());
        cases.push(one(
            "nested groups in a tag",
            aggregate_of(b"k", &[body.done()]),
        ));
    }
    // A large aggregate (multi-byte lengths everywhere).
    let mut builder = AggregateBuilder::default();
    for i in 0..40 {
        builder
            .push(&format!("key-{i}"), None, &vec![i as u8; 25_000])
            .unwrap();
    }
    let big = builder.finish().unwrap();
    cases.push(Case::one(
        "1 MB aggregate",
        all,
        big.data,
        &big.partition_key,
    ));
    // The same aggregate read from both halves of a 2-shard stream: one shard drops it.
    let mut builder = AggregateBuilder::default();
    builder
        .push("a", Some(&ExplicitHashKey::new(1)), b"low")
        .unwrap();
    builder
        .push("b", Some(&ExplicitHashKey::new(u128::MAX)), b"high")
        .unwrap();
    let split = builder.finish().unwrap();
    for range in [
        HashKeyRange::new(0, u128::MAX / 2),
        HashKeyRange::new(u128::MAX / 2 + 1, u128::MAX),
    ] {
        cases.push(Case::one(
            "keys on two shards: both drop it",
            Some(range),
            split.data.clone(),
            "a",
        ));
    }
    // A batch where the middle record has an index past the table.
    cases.push(Case {
        label: "batch with a bad index in the middle",
        shard: None,
        batch: vec![
            (b"before".to_vec(), "a".into()),
            (
                aggregate_of(b"k", &[record(0, b"ok"), record(5, b"bad")]),
                "k".into(),
            ),
            (b"after".to_vec(), "b".into()),
        ],
    });
    cases
}

/// Every byte string of 1 to 3 bytes over the UTF-8 edge bytes as a partition key, in
/// aggregates of 500 keys each: Java's replacement of malformed UTF-8, piece by piece.
fn utf8_sweep() -> Vec<Case> {
    let mut keys: Vec<Vec<u8>> = Vec::new();
    for a in UTF8_EDGES {
        keys.push(vec![a]);
        for b in UTF8_EDGES {
            keys.push(vec![a, b]);
            for c in UTF8_EDGES {
                keys.push(vec![a, b, c]);
                keys.push(vec![a, b, c, b'z']);
            }
        }
    }
    keys.chunks(500)
        .map(|chunk| {
            let mut msg = Msg::default();
            for key in chunk {
                msg.bytes(1, key);
            }
            for i in 0..chunk.len() {
                msg.bytes(3, &record(i as u64, b""));
            }
            Case::one(
                "UTF-8 sweep",
                Some(HashKeyRange::ALL),
                framed(&msg.done()),
                "pk",
            )
        })
        .collect()
}

/// Every character of the BMP after a "1" as an explicit hash key, read from a shard holding
/// hash keys 0 to 15: Java's `BigInteger` takes it as a digit (delivered if its value is at
/// most 5, dropped above) or throws (the batch is skipped).
fn digit_sweep() -> Vec<Case> {
    (0..=0xFFFFu32)
        .filter_map(char::from_u32)
        .map(|c| {
            let mut msg = Msg::default();
            msg.bytes(1, b"k");
            msg.bytes(2, format!("1{c}").as_bytes());
            msg.bytes(
                3,
                &Msg::default().uint(1, 0).uint(2, 0).bytes(3, b"").done(),
            );
            Case::one(
                "digit sweep",
                Some(HashKeyRange::new(0, 15)),
                framed(&msg.done()),
                "pk",
            )
        })
        .collect()
}

/// Inputs of the `kpl_decode` fuzz target (a corpus folder named by `KCL_KPL_EXTRA_DIR`, none
/// by default), made into Kinesis records the way the target makes them: first byte odd, the
/// rest framed as an aggregate with its digest; even, the rest as is.
fn extra_cases() -> Vec<Case> {
    let Some(dir) = std::env::var_os("KCL_KPL_EXTRA_DIR") else {
        return Vec::new();
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("KCL_KPL_EXTRA_DIR={}: {e}", dir.to_string_lossy()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|path| {
            let input = std::fs::read(path).unwrap();
            let (&mode, rest) = input.split_first()?;
            let data = if mode & 1 == 1 {
                framed(rest)
            } else {
                rest.to_vec()
            };
            let shard = match mode & 6 {
                0 => Some(HashKeyRange::ALL),
                2 => Some(HashKeyRange::new(0, u128::MAX / 2)),
                4 => Some(HashKeyRange::new(u128::MAX / 2 + 1, u128::MAX)),
                _ => None,
            };
            Some(Case::one("fuzz corpus", shard, data, "pk"))
        })
        .collect()
}

/// The first differing record of a case, readable.
fn describe(case: &Case, ours: &str, theirs: &str) -> String {
    let first = ours
        .split(' ')
        .zip(theirs.split(' '))
        .position(|(a, b)| a != b)
        .unwrap_or(0);
    let cut = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let shown: Vec<String> = words
            .iter()
            .skip(first)
            .take(2)
            .map(|w| w.chars().take(160).collect())
            .collect();
        format!(
            "{} words, from word {first}: {}",
            words.len(),
            shown.join(" ")
        )
    };
    let records: Vec<String> = case
        .batch
        .iter()
        .map(|(data, key)| {
            let key: String = key.chars().take(40).collect();
            format!("    data {} key {key:?}", hex(&data[..data.len().min(160)]))
        })
        .collect();
    format!(
        "  {} (shard {:?}):\n{}\n    kcl_kpl:   {}\n    KCL 3.1.3: {}",
        case.label,
        case.shard,
        records.join("\n"),
        cut(ours),
        cut(theirs)
    )
}

#[test]
#[ignore = "needs java, javac and the KCL 3.1.3 jars (KCL_TEST_JARS_DIR, .e2e-cache or PyPI): scripts/test.sh runs it when CI or KCL_REQUIRE_PREREQUISITES is set"]
fn kcl_view_delivers_what_the_kcl_jar_delivers() {
    let jars = require_real_jars();
    require_program("javac", "-version");
    require_program("java", "-version");
    let probe = JavaProbe::compile("KplProbe", PROBE, &jars);

    let seed = std::env::var("KCL_KPL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x4B50_4C33_2E31);
    let mut rng = Rng(seed);
    let generated = generated(&mut rng, 3000);
    let picked = hand_picked();
    let utf8 = utf8_sweep();
    let digits = digit_sweep();
    let extra = extra_cases();
    let cases: Vec<&Case> = generated
        .iter()
        .chain(&picked)
        .chain(&utf8)
        .chain(&digits)
        .chain(&extra)
        .collect();
    let mut input = String::new();
    for case in &cases {
        input.push_str(&probe_line(case));
        input.push('\n');
    }

    let started = Instant::now();
    let answers = probe.run(input);
    let java_time = started.elapsed();
    let answers: Vec<&str> = answers.lines().collect();
    assert_eq!(answers.len(), cases.len(), "one answer per case");

    let started = Instant::now();
    let mut divergent = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut delivered_records = 0;
    for (case, theirs) in cases.iter().zip(&answers) {
        let ours = predicted(case);
        if ours != *theirs {
            divergent.push(describe(case, &ours, theirs));
        }
        delivered_records += ours.split(' ').count() - 1;
        for outcome in outcomes(case) {
            *seen
                .entry(format!("{:<24} {outcome}", case.label))
                .or_default() += 1;
        }
    }
    let report: Vec<String> = seen.iter().map(|(k, n)| format!("  {n:>6}  {k}")).collect();
    eprintln!(
        "{} batches ({} generated with seed {seed}, {} hand-picked, {} in the UTF-8 sweep, {} in the digit sweep, {} from KCL_KPL_EXTRA_DIR), {delivered_records} records delivered: the jar took {java_time:.2?} (JVM start included), kcl_kpl {:.2?}\nwhat kcl_view saw per Kinesis record:\n{}",
        cases.len(),
        generated.len(),
        picked.len(),
        utf8.len(),
        digits.len(),
        extra.len(),
        started.elapsed(),
        report.join("\n")
    );
    assert!(
        divergent.is_empty(),
        "{} of {} batches diverge from the KCL 3.1.3 jar (seed {seed}); the first ones:\n{}",
        divergent.len(),
        cases.len(),
        divergent[..divergent.len().min(6)].join("\n")
    );
    // The generator must keep reaching every outcome, or the comparison proves little.
    let count = |needle: &str| {
        seen.iter()
            .filter(|(k, _)| k.contains(needle))
            .map(|(_, n)| n)
            .sum::<usize>()
    };
    for (needle, at_least) in [
        ("deaggregated", 1000),
        ("dropped", 200),
        ("batch skipped: PartitionKeyIndex", 50),
        ("batch skipped: ExplicitHashKeyIndex", 20),
        ("batch skipped: ExplicitHashKeyNotANumber", 50),
        ("passed through: ChecksumMismatch", 50),
        ("passed through: NoMagic", 50),
        ("passed through: TooShort", 20),
        ("passed through: protobuf: MissingRequired", 50),
        ("passed through: protobuf: Truncated", 20),
        ("passed through: protobuf: InvalidEndTag", 20),
        ("passed through: protobuf: InvalidWireType", 10),
        ("passed through: protobuf: InvalidTag", 10),
        ("passed through: protobuf: RecursionLimit", 3),
        ("passed through: protobuf: MalformedVarint", 1),
        ("passed through: protobuf: NegativeSize", 1),
    ] {
        assert!(
            count(needle) >= at_least,
            "only {} Kinesis records with outcome {needle:?} (want {at_least}): the generator drifted",
            count(needle)
        );
    }
}
