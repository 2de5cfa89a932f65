//! A MultiLangDaemon child as a competent Rust engineer writes it in an hour with serde_json and
//! base64, the baseline the SDK's child is compared with: typed messages with borrowed strings
//! (`#[serde(borrow)]`, so no allocation per record unless a key holds escapes), payloads
//! decoded into one reused buffer, one reused line buffer, output buffered and flushed per
//! message. It counts records and bytes and checkpoints at the last record of each batch.
//! Like the naive child, it does not isolate stdout, retry checkpoints or handle errors beyond
//! what the benchmark needs.

use std::borrow::Cow;
use std::io::{self, BufRead, Write};

use base64::Engine as _;
use serde::Deserialize;

/// Any daemon message: the action, and the records when it is `processRecords` (one struct,
/// one pass; a tagged enum would buffer the whole message first).
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(default, borrow)]
    records: Vec<Record<'a>>,
}

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    data: Cow<'a, str>,
    #[serde(rename = "partitionKey", borrow)]
    _partition_key: Option<Cow<'a, str>>,
    #[serde(rename = "sequenceNumber", borrow)]
    sequence_number: Cow<'a, str>,
    #[serde(rename = "subSequenceNumber", default)]
    sub_sequence_number: u64,
}

#[derive(serde::Serialize)]
#[serde(tag = "action")]
enum Outgoing<'a> {
    #[serde(rename = "checkpoint")]
    Checkpoint {
        #[serde(rename = "sequenceNumber")]
        sequence_number: &'a str,
        #[serde(rename = "subSequenceNumber")]
        sub_sequence_number: u64,
    },
    #[serde(rename = "status")]
    Status {
        #[serde(rename = "responseFor")]
        response_for: &'a str,
    },
}

fn send(out: &mut impl Write, message: &Outgoing<'_>) -> io::Result<()> {
    serde_json::to_writer(&mut *out, message)?;
    out.write_all(b"\n")?;
    out.flush()
}

fn main() -> io::Result<()> {
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let mut out = io::BufWriter::new(io::stdout().lock());
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut line = String::new();
    let mut reply = String::new();
    let mut payload = Vec::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        // A line that is not a message is skipped, as the daemon's children do.
        let Ok(message) = serde_json::from_str::<Incoming<'_>>(&line) else {
            continue;
        };
        if message.action == "processRecords" {
            for record in &message.records {
                payload.clear();
                base64::engine::general_purpose::STANDARD
                    .decode_vec(record.data.as_bytes(), &mut payload)
                    .map_err(io::Error::other)?;
                records += 1;
                bytes += payload.len() as u64;
            }
            if let Some(last) = message.records.last() {
                send(
                    &mut out,
                    &Outgoing::Checkpoint {
                        sequence_number: &last.sequence_number,
                        sub_sequence_number: last.sub_sequence_number,
                    },
                )?;
                reply.clear();
                input.read_line(&mut reply)?;
            }
        }
        send(
            &mut out,
            &Outgoing::Status {
                response_for: &message.action,
            },
        )?;
    }
    eprintln!("serde-child: {records} records, {bytes} bytes");
    Ok(())
}
