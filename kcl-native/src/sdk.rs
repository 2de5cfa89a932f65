//! [`SdkKinesis`]: the AWS SDK's Kinesis client as a [`KinesisReader`] (feature `aws`, on by
//! default).
//!
//! `GetRecords` is sent with the SDK's retries turned off: the fetcher paces and retries it
//! itself (a throttled shard must be waited for, and an expired iterator replaced, not asked
//! again). `ListShards` and `GetShardIterator` keep the client's retry settings. Every error
//! becomes one [`ReadError`] in [`classify`]:
//!
//! | what happened | kind |
//! |---|---|
//! | `ProvisionedThroughputExceededException`, KMS throttling, `LimitExceededException`, other throttling codes | `Throttled` |
//! | `ExpiredIteratorException`, `ExpiredNextTokenException` | `ExpiredIterator` |
//! | `ResourceNotFoundException` | `ResourceNotFound` |
//! | `ResourceInUseException` (the stream is being updated), `InternalFailure`, another error answered with a 5xx status | `Transient` |
//! | a timeout, a connection lost, an answer that cannot be read | `Transient` |
//! | another error answered with a 4xx status (invalid argument, access denied, KMS), a request that could not be built, a connector refusing the user's settings | `Fatal` |
//!
//! ```no_run
//! use kcl_native::kinesis::{KinesisReader, ShardFilter};
//! use kcl_native::sdk::SdkKinesis;
//! use kcl_producer::api::StreamRef;
//!
//! # async fn list() -> Result<(), Box<dyn std::error::Error>> {
//! let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let kinesis = SdkKinesis::new(aws_sdk_kinesis::Client::new(&config));
//! let open = kinesis.list_shards(&StreamRef::name("orders"), Some(ShardFilter::AtLatest)).await?;
//! # Ok(()) }
//! ```

use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::{self as sdk, ShardFilterType, ShardIteratorType};
use bytes::Bytes;
use kcl_kpl::HashKeyRange;
use kcl_producer::api::StreamRef;
use kcl_protocol::SequenceNumber;

use crate::kinesis::{
    ChildShard, IteratorStart, KinesisReader, KinesisRecord, ListShardsPage, ReadError,
    RecordsPage, ShardDescription, ShardFilter, ShardIterator, ShardsPage,
};

/// The AWS SDK's Kinesis client, as the fetcher reads with it.
#[derive(Clone, Debug)]
pub struct SdkKinesis {
    client: aws_sdk_kinesis::Client,
    page_size: Option<i32>,
}

impl SdkKinesis {
    /// Wraps `client` (its region, credentials, endpoint and timeouts are used as they are).
    pub fn new(client: aws_sdk_kinesis::Client) -> Self {
        SdkKinesis {
            client,
            page_size: None,
        }
    }

    /// Asks `ListShards` for at most `shards` shards per page (`MaxResults`, 1 to 10,000;
    /// Kinesis's default is 1,000).
    pub fn with_list_page_size(mut self, shards: u32) -> Self {
        self.page_size = Some(i32::try_from(shards.clamp(1, 10_000)).unwrap_or(10_000));
        self
    }
}

const THROTTLING_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "KMSThrottlingException",
    "KmsThrottlingException",
    "LimitExceededException",
    "ThrottlingException",
    "Throttling",
    "RequestLimitExceeded",
    "TooManyRequestsException",
];

const EXPIRED_CODES: &[&str] = &["ExpiredIteratorException", "ExpiredNextTokenException"];

const TRANSIENT_CODES: &[&str] = &[
    "ResourceInUseException",
    "InternalFailure",
    "InternalFailureException",
    "ServiceUnavailable",
];

/// The one place an SDK error becomes a [`ReadError`] (the table in the module's doc).
pub fn classify<E>(error: SdkError<E>) -> ReadError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let described = DisplayErrorContext(&error).to_string();
    match &error {
        SdkError::ServiceError(context) => {
            let code = context.err().code().unwrap_or("unknown").to_owned();
            let message = context.err().message().unwrap_or_default().to_owned();
            let code_is = |codes: &[&str]| codes.contains(&code.as_str());
            if code_is(THROTTLING_CODES) {
                ReadError::Throttled { code, message }
            } else if code_is(EXPIRED_CODES) {
                ReadError::ExpiredIterator { message }
            } else if code == "ResourceNotFoundException" {
                ReadError::ResourceNotFound { message }
            } else if code_is(TRANSIENT_CODES) || context.raw().status().is_server_error() {
                ReadError::Transient {
                    cause: format!("{code}: {message}"),
                }
            } else {
                ReadError::Fatal { code, message }
            }
        }
        SdkError::DispatchFailure(failure) if failure.is_user() => ReadError::Fatal {
            code: "ClientConfiguration".to_owned(),
            message: described,
        },
        SdkError::ConstructionFailure(_) => ReadError::Fatal {
            code: "RequestNotBuilt".to_owned(),
            message: described,
        },
        _ => ReadError::Transient { cause: described },
    }
}

/// An answer Kinesis should not give (a missing required field): worth asking again.
fn malformed(what: String) -> ReadError {
    ReadError::Transient { cause: what }
}

fn hash_range(
    range: Option<&sdk::HashKeyRange>,
    shard_id: &str,
) -> Result<HashKeyRange, ReadError> {
    let parse = |text: Option<&str>| text.and_then(|t| t.parse::<u128>().ok());
    match (
        parse(range.map(|r| r.starting_hash_key())),
        parse(range.map(|r| r.ending_hash_key())),
    ) {
        (Some(start), Some(end)) => Ok(HashKeyRange::new(start, end)),
        _ => Err(malformed(format!(
            "shard {shard_id} has no readable hash key range"
        ))),
    }
}

fn filter_of(filter: ShardFilter) -> Result<sdk::ShardFilter, ReadError> {
    let builder = sdk::ShardFilter::builder();
    let builder = match filter {
        ShardFilter::AtTrimHorizon => builder.r#type(ShardFilterType::AtTrimHorizon),
        ShardFilter::AtLatest => builder.r#type(ShardFilterType::AtLatest),
        ShardFilter::AtTimestamp(millis) => builder
            .r#type(ShardFilterType::AtTimestamp)
            .timestamp(DateTime::from_millis(millis)),
    };
    builder.build().map_err(|error| ReadError::Fatal {
        code: "RequestNotBuilt".to_owned(),
        message: error.to_string(),
    })
}

impl KinesisReader for SdkKinesis {
    async fn list_shards_page(&self, page: &ListShardsPage) -> Result<ShardsPage, ReadError> {
        let request = self.client.list_shards().set_max_results(self.page_size);
        let request = match page {
            ListShardsPage::First { stream, filter } => {
                let (name, arn) = stream.name_and_arn();
                request
                    .set_stream_name(name)
                    .set_stream_arn(arn)
                    .set_shard_filter(filter.map(filter_of).transpose()?)
            }
            // A later page names only its token.
            ListShardsPage::Next { token } => request.next_token(token),
        };
        let answer = request.send().await.map_err(classify)?;
        let shards = answer
            .shards()
            .iter()
            .map(|shard| {
                Ok(ShardDescription {
                    shard_id: shard.shard_id().to_owned(),
                    parent_shard_id: shard.parent_shard_id().map(str::to_owned),
                    adjacent_parent_shard_id: shard.adjacent_parent_shard_id().map(str::to_owned),
                    hash_range: hash_range(shard.hash_key_range(), shard.shard_id())?,
                    ending_sequence_number: shard
                        .sequence_number_range()
                        .and_then(|range| range.ending_sequence_number())
                        .map(SequenceNumber::from_text),
                })
            })
            .collect::<Result<_, ReadError>>()?;
        Ok(ShardsPage {
            shards,
            next_token: answer
                .next_token()
                .filter(|token| !token.is_empty())
                .map(str::to_owned),
        })
    }

    async fn get_shard_iterator(
        &self,
        stream: &StreamRef,
        shard_id: &str,
        start: &IteratorStart,
    ) -> Result<ShardIterator, ReadError> {
        let (name, arn) = stream.name_and_arn();
        let request = self
            .client
            .get_shard_iterator()
            .set_stream_name(name)
            .set_stream_arn(arn)
            .shard_id(shard_id);
        let request = match start {
            IteratorStart::TrimHorizon => {
                request.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
            IteratorStart::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
            IteratorStart::AtTimestamp(millis) => request
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(DateTime::from_millis(*millis)),
            IteratorStart::AtSequenceNumber(sequence) => request
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .starting_sequence_number(sequence.as_str()),
            IteratorStart::AfterSequenceNumber(sequence) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(sequence.as_str()),
        };
        let answer = request.send().await.map_err(classify)?;
        answer
            .shard_iterator()
            .map(ShardIterator::new)
            .ok_or_else(|| {
                malformed(format!(
                    "GetShardIterator for {shard_id} answered no iterator"
                ))
            })
    }

    async fn get_records(
        &self,
        iterator: &ShardIterator,
        limit: u32,
    ) -> Result<RecordsPage, ReadError> {
        let answer = self
            .client
            .get_records()
            .shard_iterator(iterator.as_str())
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .customize()
            .config_override(
                aws_sdk_kinesis::config::Builder::default().retry_config(RetryConfig::disabled()),
            )
            .send()
            .await
            .map_err(classify)?;
        let records = answer
            .records
            .into_iter()
            .map(|record| KinesisRecord {
                arrival_millis: record
                    .approximate_arrival_timestamp
                    .and_then(|at| at.to_millis().ok()),
                partition_key: record.partition_key.unwrap_or_default(),
                data: Bytes::from(record.data.into_inner()),
                sequence_number: SequenceNumber::new(record.sequence_number),
            })
            .collect();
        let child_shards = answer
            .child_shards
            .unwrap_or_default()
            .iter()
            .map(|child| {
                Ok(ChildShard {
                    shard_id: child.shard_id().to_owned(),
                    parent_shards: child.parent_shards().to_vec(),
                    hash_range: hash_range(child.hash_key_range(), child.shard_id())?,
                })
            })
            .collect::<Result<_, ReadError>>()?;
        Ok(RecordsPage {
            records,
            next_iterator: answer.next_shard_iterator.map(ShardIterator::new),
            millis_behind_latest: answer
                .millis_behind_latest
                .and_then(|millis| u64::try_from(millis).ok()),
            child_shards,
        })
    }
}
