//! The AWS side of [`run`](crate::run): the SDK clients from the configuration, and the tables
//! a KCL 3.x application needs.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_kinesis::config::SharedCredentialsProvider;
use kcl_lease::dynamo::tables::{WaitPolicy, create_tables};
use kcl_lease::dynamo::{DynamoStore, TableNames};
use kcl_properties::endpoint::plain_http_to_other_host;

use super::credentials::{CredentialsCheck, CredentialsReport, Service};
use crate::config::NativeConfig;
use crate::sdk::SdkKinesis;
use crate::supervisor::RunError;

/// The shared SDK configuration: the region (`regionName`, else the SDK's chain, else
/// `us-east-1`), and the credentials the check found (so that no other default chain is built).
async fn shared(
    config: &NativeConfig,
    credentials: Option<SharedCredentialsProvider>,
) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = config.region() {
        loader = loader.region(Region::new(region.to_owned()));
    }
    if let Some(credentials) = credentials {
        loader = loader.credentials_provider(credentials);
    }
    let shared = loader.load().await;
    if shared.region().is_some() {
        return shared;
    }
    shared
        .into_builder()
        .region(Region::new("us-east-1"))
        .build()
}

/// Warns about plain HTTP to another host (the requests, signed with real credentials, cross
/// the network in clear). Which credentials an endpoint gets is the check's rule
/// ([`uses_dummy_credentials`](super::credentials::uses_dummy_credentials)).
fn warn_plain_http(key: &str, endpoint: &str) {
    if let Some(host) = plain_http_to_other_host(endpoint) {
        tracing::warn!(%key, %endpoint, %host, "plain HTTP to another host: signed requests cross the network in clear");
    }
}

/// The credentials of each service, found as `kcl daemon` reports them
/// ([`CredentialsCheck::native`]): dummy ones for an endpoint on this machine, else the very
/// source of the SDK's default chain that gave credentials. Each is logged.
async fn credentials(config: &NativeConfig) -> Result<CredentialsReport, RunError> {
    let report = CredentialsCheck::native(config)
        .run()
        .await
        .map_err(|error| {
            RunError::Config(format!("credentials: {error}\nhint: {}", error.hint()))
        })?;
    for line in report.services() {
        if line.service() != Service::CloudWatch {
            tracing::info!(service = %line.service(), "credentials: {}", line.outcome());
        }
    }
    Ok(report)
}

/// The Kinesis reader and the DynamoDB lease store of `config`, with the tables created if
/// missing.
pub(super) async fn prepare(config: &NativeConfig) -> Result<(DynamoStore, SdkKinesis), RunError> {
    let report = credentials(config).await?;
    let provider = |service| report.service(service).provider();
    let found = [Service::Kinesis, Service::DynamoDB]
        .into_iter()
        .find(|s| !report.service(*s).is_dummy())
        .and_then(provider);
    let shared = shared(config, found).await;

    let mut kinesis = aws_sdk_kinesis::config::Builder::from(&shared);
    if let Some(endpoint) = config.kinesis_endpoint() {
        kinesis = kinesis.endpoint_url(endpoint);
        warn_plain_http("kinesisEndpoint", endpoint);
    }
    if let Some(credentials) = provider(Service::Kinesis) {
        kinesis = kinesis.credentials_provider(credentials);
    }
    let reader = SdkKinesis::new(aws_sdk_kinesis::Client::from_conf(kinesis.build()));

    let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(&shared);
    if let Some(endpoint) = config.dynamodb_endpoint() {
        dynamodb = dynamodb.endpoint_url(endpoint);
        warn_plain_http("dynamoDBEndpoint", endpoint);
    }
    if let Some(credentials) = provider(Service::DynamoDB) {
        dynamodb = dynamodb.credentials_provider(credentials);
    }
    let names = TableNames::for_application(config.application_name())
        .with_lease_table(config.table_name())
        .with_coordinator_state_table(config.coordinator_state_table_name())
        .with_worker_metrics_table(config.worker_metrics_table_name());
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(dynamodb.build()), names);

    create_tables(store.client(), store.names(), WaitPolicy::default())
        .await
        .map_err(|e| RunError::Tables(format!("creating the tables: {e}")))?;
    // `Migration3.0` of a new application is written by `Coordinator::launch` (only on an empty
    // lease table, so a 2.x table is never flipped to 3.x).
    Ok((store, reader))
}
