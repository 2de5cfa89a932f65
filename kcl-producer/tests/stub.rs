//! The stub server: FakeKinesis over real HTTP, driven by the real SDK client.
#![cfg(feature = "serve")]

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_kinesis::config::{Credentials, Region};
use kcl_producer::api::{CallError, KinesisApi, StreamRef};
use kcl_producer::aws::SdkKinesis;
use kcl_producer::testing::{FakeKinesis, Faults, StubServer};
use kcl_producer::{Producer, Record};

fn sdk(server: &StubServer) -> aws_sdk_kinesis::Client {
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("a", "b", None, None, "stub"))
        .endpoint_url(server.endpoint())
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
}

#[tokio::test]
async fn the_producer_over_http_stores_every_record_despite_cut_connections_and_failures() {
    let fake = FakeKinesis::new("s", 4).with_seed(11).with_faults(Faults {
        throttled_entries: 0.05,
        failed_entries: 0.02,
        throttled_calls: 0.05,
        server_errors: 0.05,
        lost_acks: 0.10,
        latency: Duration::ZERO,
    });
    let server = StubServer::start(fake.clone()).await.unwrap();
    let producer = Producer::builder(SdkKinesis::new(sdk(&server)), StreamRef::name("s"))
        .linger(Duration::from_millis(5))
        .backoff(Duration::from_millis(1), Duration::from_millis(20))
        .build()
        .await
        .unwrap();
    let mut tickets = Vec::new();
    for n in 0..5_000u32 {
        let record = Record::new(format!("k{}", n % 97), n.to_be_bytes().to_vec());
        tickets.push(producer.send(record).await.unwrap());
    }
    for ticket in tickets {
        ticket.await.unwrap();
    }
    let report = producer.shutdown(Duration::from_secs(10)).await;
    assert!(report.is_complete(), "{report:?}");
    let stored: HashSet<Vec<u8>> = fake
        .all_records()
        .into_iter()
        .map(|r| r.data.to_vec())
        .collect();
    assert_eq!(stored.len(), 5_000, "every record is in the stream");
    assert!(fake.stats().failed_calls > 0, "faults were injected");
}

#[tokio::test]
async fn put_record_answers_as_kinesis_does() {
    let fake = FakeKinesis::new("s", 1);
    let server = StubServer::start(fake.clone()).await.unwrap();
    let client = sdk(&server);
    let stored = client
        .put_record()
        .stream_name("s")
        .partition_key("k")
        .data(aws_sdk_kinesis::primitives::Blob::new("one"))
        .send()
        .await
        .unwrap();
    assert_eq!(stored.shard_id(), "shardId-000000000000");
    assert_eq!(
        fake.all_records()[0].sequence_number,
        stored.sequence_number()
    );
    fake.set_faults(Faults {
        throttled_entries: 1.0,
        ..Faults::default()
    });
    let throttled = client
        .put_record()
        .stream_name("s")
        .partition_key("k")
        .data(aws_sdk_kinesis::primitives::Blob::new("two"))
        .customize()
        .config_override(
            aws_sdk_kinesis::config::Builder::default()
                .retry_config(aws_sdk_kinesis::config::retry::RetryConfig::disabled()),
        )
        .send()
        .await
        .unwrap_err();
    assert!(
        throttled
            .as_service_error()
            .is_some_and(|e| e.is_provisioned_throughput_exceeded_exception()),
        "{throttled:?}"
    );
}

#[tokio::test]
async fn the_description_and_the_shards_over_http_are_the_fakes() {
    let fake = FakeKinesis::new("s", 2).with_max_record_size_kib(2048);
    fake.split("shardId-000000000000");
    let server = StubServer::start(fake.clone()).await.unwrap();
    let client = SdkKinesis::new(sdk(&server));
    let summary = client
        .describe_stream_summary(&StreamRef::name("s"))
        .await
        .unwrap();
    assert_eq!(
        summary,
        fake.describe_stream_summary(&StreamRef::name("s"))
            .await
            .unwrap()
    );
    let shards = client.list_shards(&StreamRef::name("s")).await.unwrap();
    assert_eq!(shards, fake.shards());
    let missing = client
        .describe_stream_summary(&StreamRef::name("nope"))
        .await;
    assert!(
        matches!(missing, Err(CallError::Refused { code, .. }) if code == "ResourceNotFoundException")
    );
}
