//! A fake Kinesis stream over HTTP on 127.0.0.1 for the `kcl put` and `kcl produce` tests: the
//! JSON 1.1 calls the AWS SDK makes (`DescribeStreamSummary`, `ListShards`, `PutRecords` with one outcome per
//! entry, and `PutRecord`, which the `kcl put` of before the producer used), with faults to
//! inject per entry or per call. It keeps every record it stored, and every call's entries.
//!
//! Records go to shards as in Kinesis: the MD5 of the partition key (or the explicit hash key)
//! as a 128-bit number, the shards splitting the hash space evenly. Sequence numbers are
//! `4959` and a counter over the whole stream (56 digits), from 1.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine;
use md5::{Digest, Md5};

use super::{Request, Response, Server};

/// A record the stub stored.
#[derive(Clone, Debug)]
pub struct Stored {
    pub shard_id: String,
    pub sequence_number: String,
    pub partition_key: String,
    pub data: Vec<u8>,
}

/// One entry of a put call, as sent.
#[derive(Clone, Debug)]
pub struct Entry {
    pub partition_key: String,
    pub data: Vec<u8>,
}

/// Answers `(partition key, times that key was sent before)` with an entry's error code and
/// message, or `None` to store it.
type EntryFault = dyn Fn(&str, usize) -> Option<(&'static str, &'static str)> + Send + Sync;
/// Answers a whole request instead of the stub (`None`: the stub answers).
type Intercept = dyn Fn(&Request) -> Option<Response> + Send + Sync;

#[derive(Default)]
struct State {
    stored: Vec<Stored>,
    /// Each put call's entries, in the order the calls came.
    calls: Vec<Vec<Entry>>,
    asked: HashMap<String, usize>,
    sequence: u64,
}

/// The fake stream and its server.
pub struct Kinesis {
    pub server: Server,
    state: Arc<Mutex<State>>,
}

/// Sets up a [`Kinesis`].
pub struct Builder {
    stream: String,
    shards: u32,
    entry_fault: Option<Box<EntryFault>>,
    intercept: Option<Box<Intercept>>,
}

impl Builder {
    /// The stream's name, as DescribeStreamSummary tells it (default `s`).
    pub fn stream(mut self, name: &str) -> Self {
        self.stream = name.to_owned();
        self
    }

    /// Fails entries: `fault(key, times the key was sent before)` gives the error code and
    /// message of an entry that is not stored (a PutRecord answers that code as a 400, or a 500
    /// for `InternalFailure`).
    pub fn entry_fault(
        mut self,
        fault: impl Fn(&str, usize) -> Option<(&'static str, &'static str)> + Send + Sync + 'static,
    ) -> Self {
        self.entry_fault = Some(Box::new(fault));
        self
    }

    /// Answers whole requests: `intercept(request)` is asked first (the entries of a put call
    /// it answers are recorded as sent, not stored).
    pub fn intercept(
        mut self,
        intercept: impl Fn(&Request) -> Option<Response> + Send + Sync + 'static,
    ) -> Self {
        self.intercept = Some(Box::new(intercept));
        self
    }

    pub fn start(self) -> Kinesis {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let server = Server::start(move |request| self.answer(request, &shared));
        Kinesis { server, state }
    }

    fn answer(&self, request: &Request, state: &Mutex<State>) -> Response {
        let target = request
            .header("x-amz-target")
            .and_then(|t| t.strip_prefix("Kinesis_20131202."))
            .unwrap_or_default()
            .to_owned();
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let entries: Vec<(Entry, Option<String>)> = match target.as_str() {
            "PutRecords" => body["Records"]
                .as_array()
                .map(|records| records.iter().map(entry).collect())
                .unwrap_or_default(),
            "PutRecord" => vec![entry(&body)],
            _ => Vec::new(),
        };
        let before: Vec<usize> = {
            let mut state = state.lock().unwrap();
            let before = entries
                .iter()
                .map(|(e, _)| {
                    let asked = state.asked.entry(e.partition_key.clone()).or_default();
                    *asked += 1;
                    *asked - 1
                })
                .collect();
            if !entries.is_empty() {
                state
                    .calls
                    .push(entries.iter().map(|(e, _)| e.clone()).collect());
            }
            before
        };
        if let Some(answer) = self.intercept.as_ref().and_then(|i| i(request)) {
            return answer;
        }
        match target.as_str() {
            "DescribeStreamSummary" => json(format!(
                r#"{{"StreamDescriptionSummary":{{"StreamName":"{0}","StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/{0}","StreamStatus":"ACTIVE","RetentionPeriodHours":24,"StreamCreationTimestamp":1.7E9,"EnhancedMonitoring":[{{"ShardLevelMetrics":[]}}],"EncryptionType":"NONE","OpenShardCount":{1}}}}}"#,
                self.stream, self.shards
            )),
            // The shards `store` places records on: shard i holds the hashes whose top 64 bits
            // times the shard count, shifted down 64 bits, give i.
            "ListShards" => {
                let n = u128::from(self.shards);
                let top = |i: u128| (i * (1u128 << 64)).div_ceil(n);
                let shards: Vec<serde_json::Value> = (0..n)
                    .map(|i| {
                        let end = if i + 1 == n {
                            u128::MAX
                        } else {
                            (top(i + 1) << 64) - 1
                        };
                        serde_json::json!({
                            "ShardId": format!("shardId-{i:012}"),
                            "HashKeyRange": {
                                "StartingHashKey": (top(i) << 64).to_string(),
                                "EndingHashKey": end.to_string(),
                            },
                            "SequenceNumberRange": {"StartingSequenceNumber": "0"},
                        })
                    })
                    .collect();
                json(serde_json::json!({ "Shards": shards }).to_string())
            }
            "PutRecords" => {
                let mut failed = 0;
                let mut results = Vec::new();
                for ((entry, hash_key), before) in entries.into_iter().zip(before) {
                    match self.fault(&entry.partition_key, before) {
                        Some((code, message)) => {
                            failed += 1;
                            results.push(
                                serde_json::json!({"ErrorCode": code, "ErrorMessage": message}),
                            );
                        }
                        None => {
                            let stored = self.store(state, entry, hash_key);
                            results.push(serde_json::json!({
                                "SequenceNumber": stored.sequence_number,
                                "ShardId": stored.shard_id,
                            }));
                        }
                    }
                }
                json(
                    serde_json::json!({"FailedRecordCount": failed, "Records": results})
                        .to_string(),
                )
            }
            "PutRecord" => {
                let Some(((entry, hash_key), before)) = entries.into_iter().zip(before).next()
                else {
                    return error(400, "InvalidArgumentException", "no record");
                };
                match self.fault(&entry.partition_key, before) {
                    Some((code, message)) => {
                        let status = if code == "InternalFailure" { 500 } else { 400 };
                        error(status, code, message)
                    }
                    None => {
                        let stored = self.store(state, entry, hash_key);
                        json(
                            serde_json::json!({
                                "SequenceNumber": stored.sequence_number,
                                "ShardId": stored.shard_id,
                            })
                            .to_string(),
                        )
                    }
                }
            }
            other => error(400, "UnknownOperationException", other),
        }
    }

    fn fault(&self, key: &str, before: usize) -> Option<(&'static str, &'static str)> {
        self.entry_fault.as_ref().and_then(|f| f(key, before))
    }

    fn store(&self, state: &Mutex<State>, entry: Entry, hash_key: Option<String>) -> Stored {
        let hash = hash_key
            .and_then(|k| k.parse::<u128>().ok())
            .unwrap_or_else(|| {
                u128::from_be_bytes(Md5::digest(entry.partition_key.as_bytes()).into())
            });
        // The shard whose even share of the hash space holds `hash` (by its top 64 bits).
        let shard = (((hash >> 64) * u128::from(self.shards)) >> 64) as u32;
        let mut state = state.lock().unwrap();
        state.sequence += 1;
        let stored = Stored {
            shard_id: format!("shardId-{:012}", shard.min(self.shards - 1)),
            sequence_number: format!("4959{:052}", state.sequence),
            partition_key: entry.partition_key,
            data: entry.data,
        };
        state.stored.push(stored.clone());
        stored
    }
}

/// An entry of a request body, and its explicit hash key.
fn entry(value: &serde_json::Value) -> (Entry, Option<String>) {
    let data = value["Data"].as_str().unwrap_or_default();
    (
        Entry {
            partition_key: value["PartitionKey"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            data: base64::engine::general_purpose::STANDARD
                .decode(data)
                .expect("Data is base64"),
        },
        value["ExplicitHashKey"].as_str().map(str::to_owned),
    )
}

fn json(body: String) -> Response {
    Response::ok("application/x-amz-json-1.1", body)
}

/// An AWS JSON error answer.
pub fn error(status: u16, code: &str, message: &str) -> Response {
    Response {
        status,
        content_type: "application/x-amz-json-1.1",
        body: serde_json::json!({"__type": code, "message": message})
            .to_string()
            .into_bytes(),
    }
}

impl Kinesis {
    /// A stub stream of `shards` shards named `s`, to set up further.
    pub fn builder(shards: u32) -> Builder {
        Builder {
            stream: "s".to_owned(),
            shards: shards.max(1),
            entry_fault: None,
            intercept: None,
        }
    }

    /// A healthy stream of `shards` shards.
    pub fn start(shards: u32) -> Kinesis {
        Kinesis::builder(shards).start()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.server.url
    }

    /// Every record stored, in the order it was stored.
    pub fn stored(&self) -> Vec<Stored> {
        self.state.lock().unwrap().stored.clone()
    }

    /// The entries of every put call (PutRecords, or PutRecord as a call of one), in order.
    pub fn calls(&self) -> Vec<Vec<Entry>> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The partition keys of every put call.
    pub fn keys_per_call(&self) -> Vec<Vec<String>> {
        self.calls()
            .iter()
            .map(|call| call.iter().map(|e| e.partition_key.clone()).collect())
            .collect()
    }

    /// The `X-Amz-Target` operation of every request (`PutRecords`, ...), in order.
    pub fn operations(&self) -> Vec<String> {
        self.server
            .requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| {
                r.header("x-amz-target")
                    .and_then(|t| t.strip_prefix("Kinesis_20131202."))
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }
}
