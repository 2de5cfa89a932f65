//! The AWS side of [`run`](crate::run): the SDK clients from the configuration, and the tables
//! a KCL 3.x application needs.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use kcl_lease::dynamo::tables::{WaitPolicy, create_tables};
use kcl_lease::dynamo::{DynamoStore, TableNames};
use kcl_properties::endpoint::{is_loopback_url, plain_http_to_other_host};

use crate::config::NativeConfig;
use crate::sdk::SdkKinesis;
use crate::supervisor::RunError;

/// The credentials an emulator on this machine gets: it accepts any, and nobody's real ones
/// should reach it by default (the rule of `kcl put`).
fn dummy_credentials() -> aws_sdk_kinesis::config::Credentials {
    aws_sdk_kinesis::config::Credentials::new("kcl-local", "kcl-local", None, None, "kcl-native")
}

/// The shared SDK configuration: the region (`regionName`, else the SDK's chain, else
/// `us-east-1`).
async fn shared(config: &NativeConfig) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = config.region() {
        loader = loader.region(Region::new(region.to_owned()));
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

/// Says what an endpoint means for the credentials: dummy ones on this machine's loopback; a
/// warning for plain HTTP to another host (the requests, signed with real credentials, cross
/// the network in clear).
fn endpoint_uses_dummy(key: &str, endpoint: &str) -> bool {
    if is_loopback_url(endpoint) {
        tracing::info!(%key, %endpoint, "an endpoint on this machine: dummy credentials");
        return true;
    }
    if let Some(host) = plain_http_to_other_host(endpoint) {
        tracing::warn!(%key, %endpoint, %host, "plain HTTP to another host: signed requests cross the network in clear");
    }
    false
}

/// The Kinesis reader and the DynamoDB lease store of `config`, with the tables created if
/// missing.
pub(super) async fn prepare(config: &NativeConfig) -> Result<(DynamoStore, SdkKinesis), RunError> {
    let shared = shared(config).await;

    let mut kinesis = aws_sdk_kinesis::config::Builder::from(&shared);
    if let Some(endpoint) = config.kinesis_endpoint() {
        kinesis = kinesis.endpoint_url(endpoint);
        if endpoint_uses_dummy("kinesisEndpoint", endpoint) {
            kinesis = kinesis.credentials_provider(dummy_credentials());
        }
    }
    let reader = SdkKinesis::new(aws_sdk_kinesis::Client::from_conf(kinesis.build()));

    let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(&shared);
    if let Some(endpoint) = config.dynamodb_endpoint() {
        dynamodb = dynamodb.endpoint_url(endpoint);
        if endpoint_uses_dummy("dynamoDBEndpoint", endpoint) {
            dynamodb = dynamodb.credentials_provider(dummy_credentials());
        }
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
