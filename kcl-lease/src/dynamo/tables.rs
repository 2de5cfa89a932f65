//! The three tables created as the Java KCL 3.1.3 creates them, each only if missing:
//!
//! - the lease table: hash key `leaseKey` (S), `PAY_PER_REQUEST`; once it is `ACTIVE`, the
//!   global secondary index `LeaseOwnerToLeaseKeyIndex` (hash `leaseOwner` S, range `leaseKey`
//!   S, `KEYS_ONLY`) is added by `UpdateTable` (`DynamoDBLeaseRefresher`), and an existing table
//!   without it gets it;
//! - `<app>-CoordinatorState`: hash key `key` (S), `PAY_PER_REQUEST`;
//! - `<app>-WorkerMetricStats`: hash key `wid` (S), `PAY_PER_REQUEST`.
//!
//! Each step waits, polling `DescribeTable` ([`WaitPolicy`]: every 10 s for up to 600 s, as
//! Java), until the table or the index is `ACTIVE`. The `Migration3.0` item is not written
//! here: [`create_migration_state_3x`] writes it when the caller decides to.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::AsyncSleep;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::operation::update_table::UpdateTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndexUpdate,
    IndexStatus, KeySchemaElement, KeyType, Projection, ProjectionType, ProvisionedThroughput,
    ScalarAttributeType, TableDescription, TableStatus,
};

use super::TableNames;
use super::error::classify;
use crate::attr;
use crate::coordinator::{
    COORDINATOR_KEY, ClientVersion, MigrationState, WORKER_ID, create_migration_state,
};
use crate::store::{LeaseStore, StoreError, Table, UpdateError};

/// How long to wait for a table or index to become `ACTIVE`, and how often to look.
///
/// ```
/// use std::time::Duration;
/// use kcl_lease::dynamo::tables::WaitPolicy;
/// let java = WaitPolicy::default();
/// assert_eq!((java.interval, java.timeout), (Duration::from_secs(10), Duration::from_secs(600)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitPolicy {
    /// Between two `DescribeTable` calls.
    pub interval: Duration,
    /// In all, before giving up with [`StoreError::Unavailable`].
    pub timeout: Duration,
}

impl Default for WaitPolicy {
    /// Java's: every 10 s, up to 600 s.
    fn default() -> Self {
        WaitPolicy {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(600),
        }
    }
}

fn invalid(error: BuildError) -> StoreError {
    StoreError::Invalid(error.to_string())
}

fn key_schema(name: &str, key_type: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(invalid)
}

fn string_attribute(name: &str) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(invalid)
}

/// `DescribeTable`; `None` when there is no such table.
async fn describe(client: &Client, table: &str) -> Result<Option<TableDescription>, StoreError> {
    match client.describe_table().table_name(table).send().await {
        Ok(output) => Ok(output.table),
        Err(error) => match error.as_service_error() {
            Some(DescribeTableError::ResourceNotFoundException(_)) => Ok(None),
            _ => Err(classify(&error)),
        },
    }
}

/// Polls `DescribeTable` until `ready` holds.
async fn wait_for(
    client: &Client,
    table: &str,
    what: &str,
    wait: WaitPolicy,
    ready: impl Fn(&TableDescription) -> bool,
) -> Result<TableDescription, StoreError> {
    // The client's own sleep when it was given one, else tokio's (the SDK's default runtime).
    let sleep = client.config().sleep_impl();
    let start = Instant::now();
    loop {
        if let Some(description) = describe(client, table).await?
            && ready(&description)
        {
            return Ok(description);
        }
        if start.elapsed() >= wait.timeout {
            return Err(StoreError::Unavailable(format!(
                "{what} not ACTIVE after {} s",
                wait.timeout.as_secs()
            )));
        }
        match &sleep {
            Some(sleep) => sleep.sleep(wait.interval).await,
            None => tokio::time::sleep(wait.interval).await,
        }
    }
}

fn table_active(description: &TableDescription) -> bool {
    description.table_status() == Some(&TableStatus::Active)
}

/// Creates `table` with a string hash key `key`, `PAY_PER_REQUEST`, unless it exists; then
/// waits until it is `ACTIVE`.
async fn create_table(
    client: &Client,
    table: &str,
    key: &str,
    wait: WaitPolicy,
) -> Result<TableDescription, StoreError> {
    if describe(client, table).await?.is_none() {
        let created = client
            .create_table()
            .table_name(table)
            .attribute_definitions(string_attribute(key)?)
            .key_schema(key_schema(key, KeyType::Hash)?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        if let Err(error) = created {
            // Created meanwhile by another worker: fine.
            if !matches!(
                error.as_service_error(),
                Some(CreateTableError::ResourceInUseException(_))
            ) {
                return Err(classify(&error));
            }
        }
    }
    wait_for(client, table, &format!("table {table}"), wait, table_active).await
}

fn owner_index_status(description: &TableDescription) -> Option<Option<&IndexStatus>> {
    description
        .global_secondary_indexes()
        .iter()
        .find(|index| index.index_name() == Some(attr::LEASE_OWNER_INDEX))
        .map(|index| index.index_status())
}

/// The index's throughput on a provisioned table: the table's own (Java copies the base
/// table's read and write capacity); `None` on an on-demand table.
fn index_throughput(
    description: &TableDescription,
) -> Result<Option<ProvisionedThroughput>, StoreError> {
    let on_demand = description
        .billing_mode_summary()
        .and_then(|summary| summary.billing_mode())
        == Some(&BillingMode::PayPerRequest);
    let provisioned = description.provisioned_throughput();
    let units = provisioned
        .and_then(|p| p.read_capacity_units().zip(p.write_capacity_units()))
        .filter(|(read, write)| *read > 0 && *write > 0);
    match (on_demand, units) {
        (false, Some((read, write))) => ProvisionedThroughput::builder()
            .read_capacity_units(read)
            .write_capacity_units(write)
            .build()
            .map(Some)
            .map_err(invalid),
        _ => Ok(None),
    }
}

/// Adds `LeaseOwnerToLeaseKeyIndex` to the (`ACTIVE`) lease table unless it has it, then waits
/// until the index is `ACTIVE`.
async fn create_owner_index(
    client: &Client,
    table: &str,
    description: &TableDescription,
    wait: WaitPolicy,
) -> Result<(), StoreError> {
    if owner_index_status(description).is_none() {
        let index = CreateGlobalSecondaryIndexAction::builder()
            .index_name(attr::LEASE_OWNER_INDEX)
            .key_schema(key_schema(attr::LEASE_OWNER, KeyType::Hash)?)
            .key_schema(key_schema(attr::LEASE_KEY, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::KeysOnly)
                    .build(),
            )
            .set_provisioned_throughput(index_throughput(description)?)
            .build()
            .map_err(invalid)?;
        let updated = client
            .update_table()
            .table_name(table)
            .attribute_definitions(string_attribute(attr::LEASE_OWNER)?)
            .attribute_definitions(string_attribute(attr::LEASE_KEY)?)
            .global_secondary_index_updates(
                GlobalSecondaryIndexUpdate::builder().create(index).build(),
            )
            .send()
            .await;
        if let Err(error) = updated {
            // Another worker is adding it (the table is being updated, or the index exists):
            // wait for it like for ours.
            let racing = matches!(
                error.as_service_error(),
                Some(UpdateTableError::ResourceInUseException(_))
            ) || describe(client, table)
                .await?
                .is_some_and(|now| owner_index_status(&now).is_some());
            if !racing {
                return Err(classify(&error));
            }
        }
    }
    wait_for(
        client,
        table,
        &format!("index {} of {table}", attr::LEASE_OWNER_INDEX),
        wait,
        |description| {
            table_active(description)
                && owner_index_status(description).flatten() == Some(&IndexStatus::Active)
        },
    )
    .await
    .map(drop)
}

/// Creates the lease table with its owner index (or adds the index to an existing table),
/// waiting for both.
pub async fn create_lease_table(
    client: &Client,
    table: &str,
    wait: WaitPolicy,
) -> Result<(), StoreError> {
    let description = create_table(client, table, attr::LEASE_KEY, wait).await?;
    create_owner_index(client, table, &description, wait).await
}

/// Creates the CoordinatorState table (hash key `key`) if missing, waiting until it is active.
pub async fn create_coordinator_state_table(
    client: &Client,
    table: &str,
    wait: WaitPolicy,
) -> Result<(), StoreError> {
    create_table(client, table, COORDINATOR_KEY, wait)
        .await
        .map(drop)
}

/// Creates the WorkerMetricStats table (hash key `wid`) if missing, waiting until it is active.
pub async fn create_worker_metrics_table(
    client: &Client,
    table: &str,
    wait: WaitPolicy,
) -> Result<(), StoreError> {
    create_table(client, table, WORKER_ID, wait).await.map(drop)
}

/// Creates whatever is missing of the three tables (lease table and index, CoordinatorState,
/// WorkerMetricStats), one after the other; existing ones are left as they are.
pub async fn create_tables(
    client: &Client,
    names: &TableNames,
    wait: WaitPolicy,
) -> Result<(), StoreError> {
    create_lease_table(client, names.name(Table::Lease), wait).await?;
    create_coordinator_state_table(client, names.name(Table::CoordinatorState), wait).await?;
    create_worker_metrics_table(client, names.name(Table::WorkerMetrics), wait).await
}

/// Writes the `Migration3.0` item of a new KCL 3.x application (`cv = CLIENT_VERSION_3X`,
/// written by `modified_by` at `now_ms`, epoch milliseconds) unless there is one: `true` if
/// this call wrote it, `false` if an item was already there (left as it is).
///
/// ```
/// use kcl_lease::dynamo::tables::create_migration_state_3x;
/// use kcl_lease::{ClientVersion, MemoryStore, MigrationState, Table, block_on};
/// let store = MemoryStore::new();
/// assert!(block_on(create_migration_state_3x(&store, "worker-a", 1_700_000_000_000)).unwrap());
/// assert!(!block_on(create_migration_state_3x(&store, "worker-b", 1_700_000_000_001)).unwrap());
/// let item = store.item(Table::CoordinatorState, "Migration3.0").unwrap();
/// let state = MigrationState::decode(&item).unwrap();
/// assert_eq!((state.client_version, state.modified_by.as_str()), (ClientVersion::V3x, "worker-a"));
/// ```
pub async fn create_migration_state_3x<S: LeaseStore>(
    store: &S,
    modified_by: &str,
    now_ms: u64,
) -> Result<bool, StoreError> {
    let state = MigrationState::new(ClientVersion::V3x, modified_by, now_ms);
    match store
        .update(Table::CoordinatorState, &create_migration_state(&state))
        .await
    {
        Ok(_) => Ok(true),
        Err(UpdateError::ConditionFailed(_)) => Ok(false),
        Err(UpdateError::Store(error)) => Err(error),
    }
}
