//! [`SdkKinesis`]: the AWS SDK's Kinesis client as a [`KinesisApi`] (feature `aws`, on by
//! default).
//!
//! The SDK does not retry `PutRecords` here: a blind retry of a whole call would send entries
//! that were already stored again, and hide from the producer which ones failed. Every error
//! becomes one [`CallError`] in [`classify`]:
//!
//! | what happened | kind |
//! |---|---|
//! | a throttling code (`ProvisionedThroughputExceededException`, `KMSThrottlingException`, `LimitExceededException`, `ThrottlingException`, ...) or `ResourceInUseException` (the stream is not ACTIVE yet) | `Throttled` |
//! | another error answered with a 5xx status | `Ambiguous` |
//! | another error answered with a 4xx status (validation, access, not found, KMS) | `Refused` |
//! | a timeout, a connection lost, an answer that cannot be read | `Ambiguous` |
//! | a request that could not be built, or a connector refusing the user's settings | `Refused` |
//!
//! ```no_run
//! use kcl_producer::aws::SdkKinesis;
//! use kcl_producer::{api::StreamRef, Producer};
//!
//! # async fn start() -> Result<(), Box<dyn std::error::Error>> {
//! let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
//! let client = SdkKinesis::new(aws_sdk_kinesis::Client::new(&config));
//! let producer = Producer::builder(client, StreamRef::name("orders")).build().await?;
//! # Ok(()) }
//! ```

use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, PutRecordsResultEntry};

use crate::api::{
    CallError, Distribution, EntryOutcome, KinesisApi, Record, Shard, StreamRef, StreamSummary,
};

/// The AWS SDK's Kinesis client, as the producer calls it.
#[derive(Clone, Debug)]
pub struct SdkKinesis {
    client: aws_sdk_kinesis::Client,
}

impl SdkKinesis {
    /// Wraps `client` (its region, credentials, endpoint and timeouts are used as they are).
    pub fn new(client: aws_sdk_kinesis::Client) -> Self {
        SdkKinesis { client }
    }
}

/// Error codes that mean "not now": nothing was written, ask again after a pause.
const THROTTLING_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "KMSThrottlingException",
    "KmsThrottlingException",
    "LimitExceededException",
    "ThrottlingException",
    "Throttling",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    // The stream is not ACTIVE (still being created, or in an update that refuses writes):
    // nothing was written, and it will take writes again.
    "ResourceInUseException",
];

/// The one place an SDK error becomes a [`CallError`] (the table in the module's doc).
pub fn classify<E>(error: SdkError<E>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let described = DisplayErrorContext(&error).to_string();
    match &error {
        SdkError::ServiceError(context) => {
            let code = context.err().code().unwrap_or("unknown").to_owned();
            let message = context.err().message().unwrap_or_default().to_owned();
            if THROTTLING_CODES.contains(&code.as_str()) {
                CallError::Throttled { code, message }
            } else if context.raw().status().is_server_error() {
                CallError::Ambiguous {
                    cause: format!("{code}: {message}"),
                }
            } else {
                CallError::Refused { code, message }
            }
        }
        SdkError::DispatchFailure(failure) if failure.is_user() => CallError::Refused {
            code: "ClientConfiguration".to_owned(),
            message: described,
        },
        SdkError::ConstructionFailure(_) => CallError::Refused {
            code: "RequestNotBuilt".to_owned(),
            message: described,
        },
        _ => CallError::Ambiguous { cause: described },
    }
}

fn outcome(entry: &PutRecordsResultEntry) -> EntryOutcome {
    match (
        entry.shard_id(),
        entry.sequence_number(),
        entry.error_code(),
    ) {
        (Some(shard_id), Some(sequence_number), None) => EntryOutcome::Stored {
            shard_id: shard_id.to_owned(),
            sequence_number: sequence_number.to_owned(),
        },
        (_, _, code) => EntryOutcome::Failed {
            code: code.unwrap_or("NoSequenceNumber").to_owned(),
            message: entry.error_message().unwrap_or_default().to_owned(),
        },
    }
}

impl KinesisApi for SdkKinesis {
    async fn put_records(
        &self,
        stream: &StreamRef,
        entries: &[Record],
    ) -> Result<Vec<EntryOutcome>, CallError> {
        let entries = entries
            .iter()
            .map(|record| {
                PutRecordsRequestEntry::builder()
                    .partition_key(&record.partition_key)
                    .set_explicit_hash_key(record.explicit_hash_key.clone())
                    .data(Blob::new(record.data.to_vec()))
                    .build()
                    .map_err(|error| CallError::Refused {
                        code: "RequestNotBuilt".to_owned(),
                        message: error.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (name, arn) = stream.name_and_arn();
        let answer = self
            .client
            .put_records()
            .set_stream_name(name)
            .set_stream_arn(arn)
            .set_records(Some(entries))
            .customize()
            .config_override(
                aws_sdk_kinesis::config::Builder::default().retry_config(RetryConfig::disabled()),
            )
            .send()
            .await
            .map_err(classify)?;
        Ok(answer.records().iter().map(outcome).collect())
    }

    async fn describe_stream_summary(
        &self,
        stream: &StreamRef,
    ) -> Result<StreamSummary, CallError> {
        let (name, arn) = stream.name_and_arn();
        let answer = self
            .client
            .describe_stream_summary()
            .set_stream_name(name)
            .set_stream_arn(arn)
            .send()
            .await
            .map_err(classify)?;
        let summary = answer.stream_description_summary();
        let Some(summary) = summary else {
            return Err(CallError::Ambiguous {
                cause: "DescribeStreamSummary answered without a summary".to_owned(),
            });
        };
        let distribution = match summary.record_distribution_strategy().map(|s| s.as_str()) {
            None | Some("USER_PARTITION_KEY") => Distribution::PartitionKey,
            Some("AUTO") => Distribution::Auto,
            Some(other) => Distribution::Other(other.to_owned()),
        };
        Ok(StreamSummary {
            stream_arn: summary.stream_arn().to_owned(),
            open_shard_count: u32::try_from(summary.open_shard_count()).unwrap_or(0),
            max_record_size_kib: summary
                .max_record_size_in_kib()
                .and_then(|kib| u32::try_from(kib).ok())
                .unwrap_or(1024),
            distribution,
        })
    }

    async fn list_shards(&self, stream: &StreamRef) -> Result<Vec<Shard>, CallError> {
        let (name, arn) = stream.name_and_arn();
        let mut shards = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let request = self.client.list_shards();
            let request = match next_token.take() {
                // A page after the first names only the token.
                Some(token) => request.next_token(token),
                None => request
                    .set_stream_name(name.clone())
                    .set_stream_arn(arn.clone()),
            };
            let page = request.send().await.map_err(classify)?;
            for shard in page.shards() {
                let range = shard.hash_key_range();
                let parse = |text: Option<&str>| text.and_then(|t| t.parse::<u128>().ok());
                let (Some(start), Some(end)) = (
                    parse(range.map(|r| r.starting_hash_key())),
                    parse(range.map(|r| r.ending_hash_key())),
                ) else {
                    return Err(CallError::Ambiguous {
                        cause: format!(
                            "ListShards: shard {} has no readable hash key range",
                            shard.shard_id()
                        ),
                    });
                };
                let open = shard
                    .sequence_number_range()
                    .is_none_or(|r| r.ending_sequence_number().is_none());
                shards.push(Shard {
                    shard_id: shard.shard_id().to_owned(),
                    starting_hash_key: start,
                    ending_hash_key: end,
                    open,
                });
            }
            match page.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => return Ok(shards),
            }
        }
    }
}
