//! SdkKinesis and ShardFetcher against kinesis-local (the emulator the end-to-end suite runs):
//! ListShards paging and filters, every iterator type, KPL aggregates, resuming inside one, and
//! a split read to its end with its children.
//!
//! Start kinesis-local as `scripts/e2e/emulators.py` does, then:
//! `KCL_NATIVE_KINESIS_ENDPOINT=http://127.0.0.1:4567 cargo test -p kcl-native --test kinesis_local -- --ignored`

use std::time::Duration;

use aws_sdk_kinesis::config::{Credentials, Region};
use aws_sdk_kinesis::primitives::Blob;
use kcl_kpl::AggregateBuilder;
use kcl_native::kinesis::{
    IteratorStart, KinesisReader, ListShardsPage, ReadError, ShardFilter, ShardIterator,
};
use kcl_native::sdk::SdkKinesis;
use kcl_native::{Fetched, FetcherConfig, ShardFetcher};
use kcl_producer::api::StreamRef;
use kcl_protocol::{ExtendedSequenceNumber, SequenceNumber};

fn client() -> aws_sdk_kinesis::Client {
    let endpoint = std::env::var("KCL_NATIVE_KINESIS_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:4567".to_owned());
    let config = aws_sdk_kinesis::Config::builder()
        .behavior_version_latest()
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "kcl-local",
            "kcl-local",
            None,
            None,
            "test",
        ))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_kinesis::Client::from_conf(config)
}

async fn wait_active(client: &aws_sdk_kinesis::Client, stream: &str) {
    for _ in 0..100 {
        let summary = client
            .describe_stream_summary()
            .stream_name(stream)
            .send()
            .await
            .unwrap();
        let status = summary
            .stream_description_summary()
            .unwrap()
            .stream_status();
        if status.as_str() == "ACTIVE" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{stream} did not become ACTIVE");
}

/// Puts `data` with `key` on the shard that holds hash key 0; returns its sequence number.
async fn put(client: &aws_sdk_kinesis::Client, stream: &str, key: &str, data: Vec<u8>) -> String {
    client
        .put_record()
        .stream_name(stream)
        .partition_key(key)
        .explicit_hash_key("0")
        .data(Blob::new(data))
        .send()
        .await
        .unwrap()
        .sequence_number()
        .to_owned()
}

fn config() -> FetcherConfig {
    FetcherConfig {
        max_records: 4,
        idle_time_between_reads: Duration::from_millis(50),
        ..FetcherConfig::default()
    }
}

/// Every (sequence number, sub-sequence number, data) until the shard ends or a read comes
/// back empty and caught up.
async fn read_all(
    fetcher: &mut ShardFetcher<SdkKinesis>,
) -> (Vec<(String, u64, Vec<u8>)>, Option<Vec<String>>) {
    let mut seen = Vec::new();
    loop {
        match fetcher.next().await.unwrap() {
            Fetched::Records(batch) => {
                if batch.kinesis_records == 0 && batch.millis_behind_latest == Some(0) {
                    return (seen, None);
                }
                seen.extend(batch.records.iter().map(|r| {
                    (
                        r.sequence_number().as_str().to_owned(),
                        r.sub_sequence_number(),
                        r.data().to_vec(),
                    )
                }));
            }
            Fetched::ShardEnd { children } => {
                return (
                    seen,
                    Some(children.into_iter().map(|c| c.shard_id).collect()),
                );
            }
        }
    }
}

#[tokio::test]
#[ignore = "needs kinesis-local on 127.0.0.1:4567 (scripts/e2e.sh install)"]
async fn the_sdk_reader_against_kinesis_local() {
    let client = client();
    let name = format!("kcl-native-{}", std::process::id());
    client
        .create_stream()
        .stream_name(&name)
        .shard_count(3)
        .send()
        .await
        .unwrap();
    wait_active(&client, &name).await;
    let stream = StreamRef::name(&name);
    let kinesis = SdkKinesis::new(client.clone()).with_list_page_size(2);

    // ListShards: three shards over two pages (the second sent with NextToken only).
    let shards = kinesis
        .list_shards(&stream, Some(ShardFilter::AtLatest))
        .await
        .unwrap();
    assert_eq!(shards.len(), 3, "{shards:?}");
    let page = kinesis
        .list_shards_page(&ListShardsPage::First {
            stream: stream.clone(),
            filter: Some(ShardFilter::AtLatest),
        })
        .await
        .unwrap();
    assert_eq!(page.shards.len(), 2);
    assert!(page.next_token.is_some());
    let first = shards
        .iter()
        .find(|s| s.hash_range.contains(0))
        .unwrap()
        .clone();
    assert!(first.is_open() && first.parent_shard_id.is_none());

    // Plain records around a five-record KPL aggregate, all on the first shard.
    let mut expected = Vec::new();
    for i in 0..6 {
        let data = format!("plain-{i}").into_bytes();
        expected.push((put(&client, &name, "k", data.clone()).await, 0, data));
    }
    let mut builder = AggregateBuilder::default();
    for i in 0..5 {
        // Hash key 0: in the first shard's range like the aggregate itself.
        builder
            .push(
                &format!("user-{i}"),
                Some(&kcl_kpl::ExplicitHashKey::new(0)),
                format!("sub-{i}").as_bytes(),
            )
            .unwrap();
    }
    let aggregate = builder.finish().unwrap();
    let aggregate_sequence = put(
        &client,
        &name,
        &aggregate.partition_key,
        aggregate.data.clone(),
    )
    .await;
    for i in 0..5 {
        expected.push((
            aggregate_sequence.clone(),
            i,
            format!("sub-{i}").into_bytes(),
        ));
    }
    for i in 6..9 {
        let data = format!("plain-{i}").into_bytes();
        expected.push((put(&client, &name, "k", data.clone()).await, 0, data));
    }

    // Every iterator type answers.
    let at = |start: IteratorStart| {
        let (kinesis, stream, shard) = (kinesis.clone(), stream.clone(), first.shard_id.clone());
        async move {
            let iterator = kinesis
                .get_shard_iterator(&stream, &shard, &start)
                .await
                .unwrap();
            kinesis.get_records(&iterator, 100).await.unwrap().records
        }
    };
    assert_eq!(at(IteratorStart::TrimHorizon).await.len(), 10);
    assert!(at(IteratorStart::Latest).await.is_empty());
    assert_eq!(at(IteratorStart::AtTimestamp(0)).await.len(), 10);
    let third = SequenceNumber::new(expected[2].0.clone());
    assert_eq!(
        at(IteratorStart::AtSequenceNumber(third.clone()))
            .await
            .len(),
        8
    );
    assert_eq!(at(IteratorStart::AfterSequenceNumber(third)).await.len(), 7);
    let arrival = at(IteratorStart::TrimHorizon).await[0].arrival_millis;
    assert!(
        arrival.is_some_and(|ms| ms > 1_600_000_000_000),
        "{arrival:?}"
    );

    // An unknown shard is not found. (A garbage iterator, InvalidArgumentException on AWS, is
    // an empty HTTP 500 from kinesis-local 0.6.2: classified Transient, as any 5xx.)
    let garbage = kinesis
        .get_records(&ShardIterator::new("not-an-iterator"), 10)
        .await;
    assert!(garbage.is_err(), "{garbage:?}");
    let unknown = kinesis
        .get_shard_iterator(&stream, "shardId-000000000099", &IteratorStart::TrimHorizon)
        .await;
    assert!(
        matches!(unknown, Err(ReadError::ResourceNotFound { .. })),
        "{unknown:?}"
    );

    // The fetcher: everything once, in order, de-aggregated.
    let fetcher = |checkpoint: ExtendedSequenceNumber| {
        ShardFetcher::new(
            kinesis.clone(),
            stream.clone(),
            &first.shard_id,
            first.hash_range,
            &checkpoint,
            config(),
        )
        .unwrap()
    };
    let (seen, ended) = read_all(&mut fetcher(ExtendedSequenceNumber::trim_horizon())).await;
    assert_eq!(seen, expected);
    assert_eq!(ended, None);

    // Resuming at (aggregate, 2): sub-records 3 and 4, then the plain records after it.
    let (seen, _) = read_all(&mut fetcher(ExtendedSequenceNumber::new(
        aggregate_sequence.as_str(),
        2,
    )))
    .await;
    assert_eq!(seen, expected[9..]);

    // Split the shard: the parent reads to its end and names both children.
    let middle = first.hash_range.start + (first.hash_range.end - first.hash_range.start) / 2;
    client
        .split_shard()
        .stream_name(&name)
        .shard_to_split(&first.shard_id)
        .new_starting_hash_key(middle.to_string())
        .send()
        .await
        .unwrap();
    wait_active(&client, &name).await;
    let (seen, ended) = read_all(&mut fetcher(ExtendedSequenceNumber::trim_horizon())).await;
    assert_eq!(seen, expected);
    let children = ended.expect("the closed parent ends");
    assert_eq!(children.len(), 2, "{children:?}");
    let listed = kinesis.list_shards(&stream, None).await.unwrap();
    for child in &children {
        let shard = listed.iter().find(|s| &s.shard_id == child).unwrap();
        assert_eq!(
            shard.parent_shard_id.as_deref(),
            Some(first.shard_id.as_str())
        );
    }
    let latest = kinesis
        .list_shards(&stream, Some(ShardFilter::AtLatest))
        .await
        .unwrap();
    assert!(latest.iter().all(|s| s.shard_id != first.shard_id));

    client
        .delete_stream()
        .stream_name(&name)
        .send()
        .await
        .unwrap();
}
