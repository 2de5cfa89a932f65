//! A MultiLangDaemon child for the `kcl run` tests, well- or ill-behaved on purpose.
//!
//! Usage: `scripted_child MODE [LOG]`
//!
//! It answers every action with a status and checkpoints (null) after each batch, at
//! `shutdownRequested` and at `shardEnded`, except where MODE says otherwise. With LOG, it appends
//! one line per event: `init <shardId> <sequenceNumber>`, `record <shardId> <data>`,
//! `reply <sequenceNumber> <error>`, `action <name>` (a missing or null value is written `None`),
//! and `eof` when its stdin ends.
//!
//! Modes: good, noise, wrong-status, exit-mid, silent, extra-key, beyond, repeat-at-end, no-exit,
//! exit-nonzero, retry, stderr, backwards (from the second batch on, first checkpoints the shard's
//! first record again: below the last checkpoint), checkpoint-in-initialize (a null checkpoint
//! before the status for initialize), checkpoint-in-leaseLost (no checkpoint after the batches; a
//! null checkpoint before the status for leaseLost).
//!
//! A line it cannot read as JSON (or the end of input while it waits for a checkpoint reply) ends
//! it with exit code 1 and the reason on stderr.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::process::exit;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

/// The event log (LOG), if one was named.
struct Log(Option<File>);

impl Log {
    fn write(&mut self, words: &[&str]) {
        if let Some(file) = &mut self.0 {
            writeln!(file, "{}", words.join(" ")).expect("the log is writable");
            file.flush().expect("the log is writable");
        }
    }
}

/// A value as the log shows it: text as is, a missing or null value as `None`.
fn shown(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "None".to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Bool(true)) => "True".to_owned(),
        Some(Value::Bool(false)) => "False".to_owned(),
        Some(other) => other.to_string(),
    }
}

/// One JSON text (a string or null).
fn json(value: Option<&str>) -> String {
    serde_json::to_string(&value).expect("strings serialize")
}

/// The decimal text of `digits` plus one.
fn plus_one(digits: &str) -> String {
    let mut bytes = digits.as_bytes().to_vec();
    for byte in bytes.iter_mut().rev() {
        if *byte == b'9' {
            *byte = b'0';
        } else {
            *byte += 1;
            return String::from_utf8(bytes).expect("digits");
        }
    }
    format!("1{}", String::from_utf8(bytes).expect("digits"))
}

/// The child: its mode, its log and its stdin.
struct Child {
    mode: String,
    log: Log,
    input: io::StdinLock<'static>,
}

impl Child {
    /// Writes `\n{text}\n` on stdout.
    fn send(&self, text: &str) {
        let mut out = io::stdout().lock();
        write!(out, "\n{text}\n").expect("stdout is writable");
        out.flush().expect("stdout is writable");
    }

    fn status(&self, action: &str) {
        self.send(&format!(
            r#"{{"action":"status","responseFor":{}}}"#,
            json(Some(action))
        ));
    }

    /// Asks for a checkpoint, reads the reply and returns its `error`.
    fn checkpoint(&mut self, sequence: Option<&str>, sub: Option<u64>) -> Option<String> {
        let sub = sub.map_or("null".to_owned(), |n| n.to_string());
        self.send(&format!(
            r#"{{"action":"checkpoint","sequenceNumber":{},"subSequenceNumber":{sub}}}"#,
            json(sequence)
        ));
        let Some(reply) = self.next_message() else {
            eprintln!("scripted_child: the input ended before the checkpoint reply");
            exit(1);
        };
        let error = reply.get("error");
        self.log
            .write(&["reply", &shown(reply.get("sequenceNumber")), &shown(error)]);
        error.and_then(Value::as_str).map(str::to_owned)
    }

    /// The next line of input as JSON, or `None` at the end of input.
    fn next_message(&mut self) -> Option<Value> {
        let mut line = String::new();
        if self.input.read_line(&mut line).expect("stdin is readable") == 0 {
            return None;
        }
        match serde_json::from_str(&line) {
            Ok(value) => Some(value),
            Err(error) => {
                eprintln!("scripted_child: not JSON ({error}): {line:?}");
                exit(1);
            }
        }
    }

    fn run(&mut self) {
        let mode = self.mode.clone();
        let mode = mode.as_str();
        let mut shard = "?".to_owned();
        let mut last_sequence: Option<String> = None;
        let mut first_sequence: Option<String> = None;
        let mut batches = 0u64;
        while let Some(message) = self.next_message() {
            let action = message["action"].as_str().unwrap_or_else(|| {
                eprintln!("scripted_child: no action in {message}");
                exit(1)
            });
            let action = action.to_owned();
            self.log.write(&["action", &action]);
            match action.as_str() {
                "initialize" => {
                    shard = shown(message.get("shardId"));
                    self.log
                        .write(&["init", &shard, &shown(message.get("sequenceNumber"))]);
                    if mode == "wrong-status" {
                        self.status("processRecords");
                        continue;
                    }
                    if mode == "checkpoint-in-initialize" {
                        self.checkpoint(None, None);
                    }
                    if mode == "stderr" {
                        eprintln!("hello from the child");
                    }
                    self.status("initialize");
                }
                "processRecords" => {
                    for record in message["records"].as_array().into_iter().flatten() {
                        let data = base64::engine::general_purpose::STANDARD
                            .decode(record["data"].as_str().unwrap_or_default())
                            .expect("record data is base64");
                        self.log
                            .write(&["record", &shard, &String::from_utf8_lossy(&data)]);
                        let sequence = shown(record.get("sequenceNumber"));
                        first_sequence.get_or_insert_with(|| sequence.clone());
                        last_sequence = Some(sequence);
                    }
                    batches += 1;
                    match mode {
                        "exit-mid" => exit(3),
                        "silent" => continue,
                        "noise" => {
                            let mut out = io::stdout().lock();
                            out.write_all(b"\nDEBUG hello\n{\"foo\":1}\n{\"action\":\"initialize\",\"shardId\":\"x\"}\n")
                                .expect("stdout is writable");
                            out.flush().expect("stdout is writable");
                            eprintln!("noise on stderr");
                        }
                        "extra-key" => {
                            self.send(
                                r#"{"action":"status","responseFor":"processRecords","ok":true}"#,
                            );
                            continue;
                        }
                        _ => {}
                    }
                    let last = last_sequence.clone().unwrap_or_default();
                    if mode == "beyond" {
                        self.checkpoint(Some(&plus_one(&last)), Some(0));
                    }
                    if mode == "backwards" && batches > 1 {
                        let first = first_sequence.clone();
                        self.checkpoint(first.as_deref(), Some(0));
                    }
                    match mode {
                        "checkpoint-in-leaseLost" => {}
                        "retry" => {
                            for _ in 0..4 {
                                if self.checkpoint(None, None).as_deref()
                                    != Some("ThrottlingException")
                                {
                                    break;
                                }
                            }
                        }
                        "repeat-at-end" => {
                            self.checkpoint(Some(&last), Some(0));
                        }
                        _ => {
                            self.checkpoint(None, None);
                        }
                    }
                    if mode == "noise" {
                        // Python's json.dumps with its default separators: a space after each.
                        self.send(r#"{"action": "status", "responseFor": "processRecords"}"#);
                    } else {
                        self.status("processRecords");
                    }
                }
                "shardEnded" | "shutdownRequested" => {
                    if mode == "repeat-at-end" && action == "shardEnded" {
                        let last = last_sequence.clone();
                        self.checkpoint(last.as_deref(), Some(0));
                    } else {
                        self.checkpoint(None, None);
                    }
                    self.status(&action);
                }
                _ => {
                    if mode == "checkpoint-in-leaseLost" && action == "leaseLost" {
                        self.checkpoint(None, None);
                    }
                    self.status(&action);
                }
            }
        }
        self.log.write(&["eof"]);
        match mode {
            "no-exit" => std::thread::sleep(Duration::from_secs(60)),
            "exit-nonzero" => exit(5),
            _ => {}
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(mode) = args.next() else {
        eprintln!("usage: scripted_child MODE [LOG]");
        exit(2);
    };
    let log = args.next().map(|path| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|error| panic!("cannot open the log {path}: {error}"))
    });
    Child {
        mode,
        log: Log(log),
        input: io::stdin().lock(),
    }
    .run();
}
