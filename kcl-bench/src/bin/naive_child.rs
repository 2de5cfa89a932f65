//! A MultiLangDaemon child written the obvious way with serde_json and base64, for comparison:
//! parse each line into a `serde_json::Value`, decode every payload, count, checkpoint at the last
//! record of each batch, answer with a status. Not an example of good practice: it does not
//! isolate stdout, retry checkpoints or handle errors beyond what the benchmark needs.

use std::io::{self, BufRead, Write};

use base64::Engine as _;
use serde_json::{Value, json};

fn send(out: &mut impl Write, message: &Value) -> io::Result<()> {
    writeln!(out)?;
    serde_json::to_writer(&mut *out, message)?;
    writeln!(out)?;
    out.flush()
}

fn main() -> io::Result<()> {
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let mut out = io::BufWriter::new(io::stdout().lock());
    let (mut records, mut bytes) = (0u64, 0u64);
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            break;
        }
        let Ok(message) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let action = message["action"].as_str().unwrap_or_default().to_owned();
        if action == "processRecords" {
            let batch = message["records"].as_array().cloned().unwrap_or_default();
            for record in &batch {
                let data = record["data"].as_str().unwrap_or_default();
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .unwrap_or_default();
                records += 1;
                bytes += decoded.len() as u64;
            }
            if let Some(last) = batch.last() {
                send(
                    &mut out,
                    &json!({"action":"checkpoint","sequenceNumber":last["sequenceNumber"],"subSequenceNumber":last["subSequenceNumber"]}),
                )?;
                line.clear();
                input.read_line(&mut line)?; // the reply
            }
        }
        send(&mut out, &json!({"action":"status","responseFor":action}))?;
    }
    eprintln!("naive-child: {records} records, {bytes} bytes");
    Ok(())
}
