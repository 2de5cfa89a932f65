//! [`StubServer`]: a [`FakeKinesis`] served over HTTP on 127.0.0.1, in the JSON 1.1 protocol
//! the AWS SDKs speak (`PutRecords`, `PutRecord`, `DescribeStreamSummary`, `ListShards`), so
//! that a real SDK client, another process or another language can be tested and measured
//! against it (feature `serve`).
//!
//! Every answer leaves in one write on a socket with `TCP_NODELAY`: an answer split in two
//! writes waits for the peer's delayed acknowledgement (about 40 ms a call on Linux), and every
//! latency figure measured against the stub would be that stall. A lost acknowledgement is
//! served as the real thing: the records are stored and the connection is closed unanswered.
//!
//! ```
//! use kcl_producer::aws::SdkKinesis;
//! use kcl_producer::testing::{FakeKinesis, StubServer};
//! use kcl_producer::{api::StreamRef, Producer, Record};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let fake = FakeKinesis::new("orders", 2);
//! let server = StubServer::start(fake.clone()).await.unwrap();
//! let config = aws_sdk_kinesis::Config::builder()
//!     .behavior_version_latest()
//!     .region(aws_sdk_kinesis::config::Region::new("us-east-1"))
//!     .credentials_provider(aws_sdk_kinesis::config::Credentials::new("a", "b", None, None, "stub"))
//!     .endpoint_url(server.endpoint())
//!     .build();
//! let client = SdkKinesis::new(aws_sdk_kinesis::Client::from_conf(config));
//! let producer = Producer::builder(client, StreamRef::name("orders")).build().await.unwrap();
//! producer.send(Record::new("k", "over HTTP")).await.unwrap().await.unwrap();
//! assert_eq!(fake.all_records().len(), 1);
//! # });
//! ```

use std::io;
use std::net::SocketAddr;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{Answer, FakeKinesis};
use crate::api::{CallError, EntryOutcome, INTERNAL_FAILURE, Record, StreamRef, THROTTLED};

/// A [`FakeKinesis`] listening on 127.0.0.1; stops when dropped.
pub struct StubServer {
    address: SocketAddr,
    task: JoinHandle<()>,
}

impl StubServer {
    /// Serves `fake` on a free port of 127.0.0.1, on the current tokio runtime.
    pub async fn start(fake: FakeKinesis) -> io::Result<StubServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let _ = socket.set_nodelay(true);
                let fake = fake.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| handle(fake.clone(), request));
                    // A connection cut by a lost acknowledgement ends here, as intended.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        Ok(StubServer { address, task })
    }

    /// The endpoint URL for an SDK client: `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for StubServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why a connection is closed without an answer.
#[derive(Debug)]
struct AnswerLost;

impl std::fmt::Display for AnswerLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the stub drops this answer (an injected lost acknowledgement)")
    }
}

impl std::error::Error for AnswerLost {}

type Reply = Result<Response<Full<Bytes>>, AnswerLost>;

async fn handle(fake: FakeKinesis, request: Request<Incoming>) -> Reply {
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Err(AnswerLost),
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return Ok(error(400, "SerializationException", "the body is not JSON"));
    };
    let operation = target.rsplit('.').next().unwrap_or_default();
    let stream = match (body["StreamARN"].as_str(), body["StreamName"].as_str()) {
        (Some(arn), _) => StreamRef::Arn(arn.to_owned()),
        (None, Some(name)) => StreamRef::name(name),
        (None, None) => StreamRef::name(""),
    };
    match operation {
        "PutRecords" => {
            let records = match body["Records"]
                .as_array()
                .map(|r| r.iter().map(record).collect())
            {
                Some(Ok(records)) => records,
                Some(Err(message)) => return Ok(error(400, "SerializationException", &message)),
                None => return Ok(error(400, "SerializationException", "no Records")),
            };
            put_records(&fake, &stream, records).await
        }
        "PutRecord" => match record(&body) {
            Ok(record) => put_record(&fake, &stream, record).await,
            Err(message) => Ok(error(400, "SerializationException", &message)),
        },
        "DescribeStreamSummary" => Ok(match fake.summary_of(&stream) {
            Ok(summary) => ok(json!({"StreamDescriptionSummary": {
                "StreamName": stream.to_string(),
                "StreamARN": summary.stream_arn,
                "StreamStatus": "ACTIVE",
                "RetentionPeriodHours": 24,
                "StreamCreationTimestamp": 1_700_000_000,
                "EnhancedMonitoring": [],
                "OpenShardCount": summary.open_shard_count,
                "MaxRecordSizeInKiB": summary.max_record_size_kib,
                "RecordDistributionStrategy": match summary.distribution {
                    crate::api::Distribution::Auto => "AUTO".to_owned(),
                    crate::api::Distribution::PartitionKey => "USER_PARTITION_KEY".to_owned(),
                    crate::api::Distribution::Other(other) => other,
                },
            }})),
            Err(call) => call_error(call),
        }),
        "ListShards" => Ok(match fake.summary_of(&stream) {
            Ok(_) => {
                let shards: Vec<Value> = fake
                    .shards()
                    .into_iter()
                    .map(|shard| {
                        let mut range = json!({"StartingSequenceNumber": "1"});
                        if !shard.open {
                            range["EndingSequenceNumber"] = json!("2");
                        }
                        json!({
                            "ShardId": shard.shard_id,
                            "HashKeyRange": {
                                "StartingHashKey": shard.starting_hash_key.to_string(),
                                "EndingHashKey": shard.ending_hash_key.to_string(),
                            },
                            "SequenceNumberRange": range,
                        })
                    })
                    .collect();
                ok(json!({ "Shards": shards }))
            }
            Err(call) => call_error(call),
        }),
        _ => Ok(error(400, "UnknownOperationException", &target)),
    }
}

/// A record of a request body (`Data` in base64).
fn record(value: &Value) -> Result<Record, String> {
    let data = value["Data"].as_str().ok_or("a record without Data")?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| format!("Data is not base64: {e}"))?;
    let key = value["PartitionKey"]
        .as_str()
        .ok_or("a record without PartitionKey")?;
    let mut record = Record::new(key, data);
    if let Some(hash_key) = value["ExplicitHashKey"].as_str() {
        record = record.explicit_hash_key(hash_key);
    }
    Ok(record)
}

async fn put_records(fake: &FakeKinesis, stream: &StreamRef, records: Vec<Record>) -> Reply {
    match fake.answer_put_records(stream, &records).await {
        Answer::Lost => Err(AnswerLost),
        Answer::Answered(Err(call)) => Ok(call_error(call)),
        Answer::Answered(Ok(outcomes)) => {
            let failed = outcomes
                .iter()
                .filter(|o| matches!(o, EntryOutcome::Failed { .. }))
                .count();
            let records: Vec<Value> = outcomes
                .into_iter()
                .map(|outcome| match outcome {
                    EntryOutcome::Stored {
                        shard_id,
                        sequence_number,
                    } => json!({"ShardId": shard_id, "SequenceNumber": sequence_number}),
                    EntryOutcome::Failed { code, message } => {
                        json!({"ErrorCode": code, "ErrorMessage": message})
                    }
                })
                .collect();
            Ok(ok(json!({"FailedRecordCount": failed, "Records": records})))
        }
    }
}

/// `PutRecord`: one record; a refused entry is the call's error, as Kinesis answers it.
async fn put_record(fake: &FakeKinesis, stream: &StreamRef, record: Record) -> Reply {
    match fake.answer_put_records(stream, &[record]).await {
        Answer::Lost => Err(AnswerLost),
        Answer::Answered(Err(call)) => Ok(call_error(call)),
        Answer::Answered(Ok(mut outcomes)) => Ok(match outcomes.pop() {
            Some(EntryOutcome::Stored {
                shard_id,
                sequence_number,
            }) => ok(json!({"ShardId": shard_id, "SequenceNumber": sequence_number})),
            Some(EntryOutcome::Failed { code, message }) if code == THROTTLED => {
                error(400, &code, &message)
            }
            Some(EntryOutcome::Failed { message, .. }) => {
                error(500, "InternalFailureException", &message)
            }
            None => error(500, INTERNAL_FAILURE, "no outcome"),
        }),
    }
}

/// The HTTP answer Kinesis gives for a failed call of this kind.
fn call_error(call: CallError) -> Response<Full<Bytes>> {
    match call {
        CallError::Refused { code, message } => error(400, &code, &message),
        CallError::Throttled { code, message } => error(400, &code, &message),
        CallError::Ambiguous { cause } | CallError::NotSent { cause } => {
            error(500, "InternalFailureException", &cause)
        }
    }
}

fn ok(body: Value) -> Response<Full<Bytes>> {
    respond(StatusCode::OK, body)
}

fn error(status: u16, code: &str, message: &str) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    respond(status, json!({"__type": code, "message": message}))
}

fn respond(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    response
}
