//! `SdkKinesis` against canned HTTP answers on 127.0.0.1: the real SDK client's requests and
//! errors, and how each answer is classified (and that the SDK itself never retries a call).
#![cfg(feature = "aws")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;

use aws_sdk_kinesis::config::{Credentials, Region};
use kcl_producer::api::{CallError, Distribution, EntryOutcome, KinesisApi, Record, StreamRef};
use kcl_producer::aws::SdkKinesis;

/// One request as the server read it: the `X-Amz-Target` header and the body.
#[derive(Debug)]
struct Seen {
    target: String,
    body: String,
}

/// Answers one connection per canned answer, in order, then stops listening.
fn serve(answers: Vec<(u16, String)>) -> (String, JoinHandle<Vec<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for (status, body) in answers {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let (mut target, mut length) = (String::new(), 0usize);
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(value) = lower.strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
                if lower.starts_with("x-amz-target:") {
                    target = line["x-amz-target:".len()..].trim().to_owned();
                }
            }
            let mut request = vec![0u8; length];
            reader.read_exact(&mut request).unwrap();
            seen.push(Seen {
                target,
                body: String::from_utf8(request).unwrap(),
            });
            let answer = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let mut stream = reader.into_inner();
            stream.write_all(answer.as_bytes()).unwrap();
        }
        seen
    });
    (endpoint, handle)
}

fn client(endpoint: &str) -> SdkKinesis {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(endpoint)
        .build();
    SdkKinesis::new(aws_sdk_kinesis::Client::from_conf(config))
}

fn error(code: &str) -> String {
    format!(r#"{{"__type":"{code}","message":"canned {code}"}}"#)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_partly_failed_call_gives_one_outcome_per_entry() {
    let answer = r#"{"FailedRecordCount":1,"Records":[{"SequenceNumber":"49590338271490256608559692538361571095921575989136588898","ShardId":"shardId-000000000000"},{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded for shard shardId-000000000001"}]}"#;
    let (endpoint, server) = serve(vec![(200, answer.to_owned())]);
    let records = [
        Record::new("a", "hello"),
        Record::new("b", "world").explicit_hash_key("42"),
    ];
    let outcomes = runtime()
        .block_on(client(&endpoint).put_records(&StreamRef::name("s"), &records))
        .unwrap();
    assert_eq!(
        outcomes[0],
        EntryOutcome::Stored {
            shard_id: "shardId-000000000000".into(),
            sequence_number: "49590338271490256608559692538361571095921575989136588898".into(),
        }
    );
    assert!(outcomes[1].is_throttled());
    let seen = server.join().unwrap();
    assert_eq!(seen[0].target, "Kinesis_20131202.PutRecords");
    let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(body["StreamName"], "s");
    assert_eq!(body["Records"][0]["Data"], "aGVsbG8=");
    assert_eq!(body["Records"][1]["ExplicitHashKey"], "42");
}

/// An answer's status and body, and what it must be classified as.
type Case = (u16, String, fn(&CallError) -> bool);

#[test]
fn each_failed_call_is_classified_and_never_retried_by_the_sdk() {
    let cases: Vec<Case> = vec![
        (400, error("ProvisionedThroughputExceededException"), |e| {
            matches!(e, CallError::Throttled { .. })
        }),
        (400, error("KMSThrottlingException"), |e| {
            matches!(e, CallError::Throttled { .. })
        }),
        // A stream not ACTIVE yet (being created): nothing written, ask again later.
        (400, error("ResourceInUseException"), |e| {
            matches!(e, CallError::Throttled { .. })
        }),
        (500, error("InternalFailure"), |e| {
            matches!(e, CallError::Ambiguous { .. })
        }),
        (503, error("ServiceUnavailable"), |e| {
            matches!(e, CallError::Ambiguous { .. })
        }),
        (
            400,
            error("AccessDeniedException"),
            |e| matches!(e, CallError::Refused { code, .. } if code == "AccessDeniedException"),
        ),
        (400, error("ResourceNotFoundException"), |e| {
            matches!(e, CallError::Refused { .. })
        }),
        (200, "not json".to_owned(), |e| {
            matches!(e, CallError::Ambiguous { .. })
        }),
    ];
    for (status, body, expected) in cases {
        // One answer only: a retry by the SDK would find nobody listening and fail otherwise.
        let (endpoint, server) = serve(vec![(status, body.clone())]);
        let answer = runtime().block_on(
            client(&endpoint).put_records(&StreamRef::name("s"), &[Record::new("k", "x")]),
        );
        let error = answer.unwrap_err();
        assert!(expected(&error), "{status} {body}: {error:?}");
        assert_eq!(server.join().unwrap().len(), 1);
    }
}

#[test]
fn nobody_listening_is_an_unknown_outcome() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let answer = runtime().block_on(
        client(&format!("http://127.0.0.1:{port}"))
            .put_records(&StreamRef::name("s"), &[Record::new("k", "x")]),
    );
    assert!(
        matches!(answer, Err(CallError::Ambiguous { .. })),
        "{answer:?}"
    );
}

#[test]
fn the_stream_summary_gives_the_limits_and_the_distribution() {
    let summary = r#"{"StreamDescriptionSummary":{"StreamName":"s","StreamARN":"arn:aws:kinesis:us-east-1:123456789012:stream/s","StreamStatus":"ACTIVE","RetentionPeriodHours":24,"StreamCreationTimestamp":1700000000,"EnhancedMonitoring":[],"OpenShardCount":3,"MaxRecordSizeInKiB":10240,"RecordDistributionStrategy":"AUTO"}}"#;
    let (endpoint, server) = serve(vec![(200, summary.to_owned())]);
    let summary = runtime()
        .block_on(client(&endpoint).describe_stream_summary(&StreamRef::name("s")))
        .unwrap();
    assert_eq!(summary.open_shard_count, 3);
    assert_eq!(summary.max_record_size_kib, 10240);
    assert_eq!(summary.distribution, Distribution::Auto);
    assert_eq!(
        server.join().unwrap()[0].target,
        "Kinesis_20131202.DescribeStreamSummary"
    );
}

#[test]
fn list_shards_follows_pages_and_tells_open_from_closed() {
    let page1 = r#"{"Shards":[{"ShardId":"shardId-000000000000","HashKeyRange":{"StartingHashKey":"0","EndingHashKey":"340282366920938463463374607431768211455"},"SequenceNumberRange":{"StartingSequenceNumber":"1","EndingSequenceNumber":"9"}}],"NextToken":"page-2"}"#;
    let page2 = r#"{"Shards":[{"ShardId":"shardId-000000000001","ParentShardId":"shardId-000000000000","HashKeyRange":{"StartingHashKey":"0","EndingHashKey":"170141183460469231731687303715884105727"},"SequenceNumberRange":{"StartingSequenceNumber":"10"}}]}"#;
    let (endpoint, server) = serve(vec![(200, page1.to_owned()), (200, page2.to_owned())]);
    let shards = runtime()
        .block_on(client(&endpoint).list_shards(&StreamRef::name("s")))
        .unwrap();
    assert_eq!(shards.len(), 2);
    assert!(!shards[0].open && shards[1].open);
    assert_eq!(shards[0].ending_hash_key, u128::MAX);
    let seen = server.join().unwrap();
    let second: serde_json::Value = serde_json::from_str(&seen[1].body).unwrap();
    assert_eq!(second["NextToken"], "page-2");
    assert!(
        second.get("StreamName").is_none(),
        "a later page names only its token"
    );
}
