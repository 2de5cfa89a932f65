//! [`DynamoStore`]: the [`LeaseStore`] on DynamoDB through the AWS SDK (feature `dynamodb`).
//! Each [`Write`] becomes one conditional `UpdateItem` or `PutItem` and each [`Delete`] one
//! conditional `DeleteItem` ([`translate`]), so the writes DynamoDB accepts are the ones
//! [`apply`](crate::apply) accepts. [`tables`] creates the three tables as the Java KCL 3.1.3
//! does.
//!
//! The SDK client's own retry policy applies to every request. A write it retries after a lost
//! answer can come back as a condition failure showing the write's own result (the "spurious"
//! failure [`interpret_renew_failure`](crate::interpret_renew_failure) recognises).

pub mod convert;
mod error;
pub mod tables;
pub mod translate;

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue as SdkValue, ReturnValue, ReturnValuesOnConditionCheckFailure,
};

use crate::attr;
use crate::memory::is_lease_row;
use crate::ops::{ConditionFailed, Delete, Write};
use crate::store::{LeaseStore, StoreError, Table, UpdateError, index_key_refused};
use crate::value::Item;
use convert::{item_from_sdk, item_to_sdk};
use error::classify;
use translate::{Operation, Translated, translate_delete, translate_write};

/// The names of an application's three tables, as the Java KCL 3.x names them.
///
/// ```
/// use kcl_lease::Table;
/// use kcl_lease::dynamo::TableNames;
/// let names = TableNames::for_application("orders");
/// assert_eq!(names.name(Table::Lease), "orders");
/// assert_eq!(names.name(Table::CoordinatorState), "orders-CoordinatorState");
/// assert_eq!(names.name(Table::WorkerMetrics), "orders-WorkerMetricStats");
/// // `tableName` renames the lease table only.
/// let names = TableNames::for_application("orders").with_lease_table("orders-leases");
/// assert_eq!(names.name(Table::Lease), "orders-leases");
/// assert_eq!(names.name(Table::CoordinatorState), "orders-CoordinatorState");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableNames {
    /// The lease table: `tableName`, else `applicationName`.
    pub lease: String,
    /// `<applicationName>-CoordinatorState` (`coordinatorStateTableName`).
    pub coordinator_state: String,
    /// `<applicationName>-WorkerMetricStats` (`workerMetricsTableName`).
    pub worker_metrics: String,
}

impl TableNames {
    /// The default names for `application` (the lease table named after it).
    pub fn for_application(application: &str) -> Self {
        TableNames {
            lease: application.to_owned(),
            coordinator_state: format!("{application}-CoordinatorState"),
            worker_metrics: format!("{application}-WorkerMetricStats"),
        }
    }

    /// Another lease table name (the `tableName` property).
    pub fn with_lease_table(mut self, name: impl Into<String>) -> Self {
        self.lease = name.into();
        self
    }

    /// Another coordinator-state table name.
    pub fn with_coordinator_state_table(mut self, name: impl Into<String>) -> Self {
        self.coordinator_state = name.into();
        self
    }

    /// Another worker-metrics table name.
    pub fn with_worker_metrics_table(mut self, name: impl Into<String>) -> Self {
        self.worker_metrics = name.into();
        self
    }

    /// The name of `table`.
    pub fn name(&self, table: Table) -> &str {
        match table {
            Table::Lease => &self.lease,
            Table::CoordinatorState => &self.coordinator_state,
            Table::WorkerMetrics => &self.worker_metrics,
        }
    }
}

/// The lease, coordinator-state and worker-metrics tables on DynamoDB.
///
/// - `get`: `GetItem` (`ConsistentRead` as asked).
/// - `scan`: `Scan`, every page; in the lease table the rows with an `entityType` other than
///   `LEASE` are left out.
/// - `query_owner`: `Query` on `LeaseOwnerToLeaseKeyIndex`, every page, keys sorted.
/// - `update`: `UpdateItem` (`ReturnValues = ALL_NEW`) or `PutItem`, both with
///   `ReturnValuesOnConditionCheckFailure = ALL_OLD`; when a condition fails and the service
///   returns no item, a consistent `GetItem` reads it.
/// - `delete`: `DeleteItem` (`ReturnValues = ALL_OLD`).
///
/// ```no_run
/// use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
/// use kcl_lease::dynamo::{DynamoStore, TableNames, tables};
/// use kcl_lease::{Lease, LeaseStore, Table, ops};
/// use kcl_protocol::ExtendedSequenceNumber as E;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = aws_sdk_dynamodb::Config::builder()
///     .behavior_version(BehaviorVersion::latest())
///     .region(Region::new("us-east-1"))
///     .credentials_provider(Credentials::new("local", "local", None, None, "example"))
///     .endpoint_url("http://127.0.0.1:8000")
///     .build();
/// let store = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), TableNames::for_application("orders"));
/// tables::create_tables(store.client(), store.names(), tables::WaitPolicy::default()).await?;
///
/// let lease = Lease::new("shardId-000000000000", E::trim_horizon());
/// store.create_if_not_exists(&lease).await?;
/// let taken = store.update(Table::Lease, &ops::take(&lease, "worker-a")).await?;
/// assert_eq!(taken["leaseCounter"].as_n(), Some("1"));
/// assert_eq!(store.query_owner("worker-a").await?, ["shardId-000000000000"]);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    names: TableNames,
}

/// A map for the SDK, or nothing when empty (DynamoDB refuses empty expression maps).
fn non_empty<V>(map: HashMap<String, V>) -> Option<HashMap<String, V>> {
    (!map.is_empty()).then_some(map)
}

fn unreadable(error: convert::UnknownType) -> StoreError {
    StoreError::Invalid(error.to_string())
}

impl DynamoStore {
    /// A store on `client` with these table names.
    pub fn new(client: Client, names: TableNames) -> Self {
        DynamoStore { client, names }
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table names.
    pub fn names(&self) -> &TableNames {
        &self.names
    }

    fn key(table: Table, key: &str) -> (String, SdkValue) {
        (
            table.key_attribute().to_owned(),
            SdkValue::S(key.to_owned()),
        )
    }

    async fn get_item(
        &self,
        table: Table,
        key: &str,
        consistent: bool,
    ) -> Result<Option<Item>, StoreError> {
        let (key_name, key_value) = Self::key(table, key);
        let output = self
            .client
            .get_item()
            .table_name(self.names.name(table))
            .key(key_name, key_value)
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| classify(&e))?;
        output
            .item()
            .map(item_from_sdk)
            .transpose()
            .map_err(unreadable)
    }

    async fn scan_items(&self, table: Table) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, SdkValue>> = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(self.names.name(table))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify(&e))?;
            for row in output.items() {
                let item = item_from_sdk(row).map_err(unreadable)?;
                if table != Table::Lease || is_lease_row(&item) {
                    items.push(item);
                }
            }
            match output.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(items),
            }
        }
    }

    async fn query_owner_keys(&self, owner: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut start: Option<HashMap<String, SdkValue>> = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.names.lease)
                .index_name(attr::LEASE_OWNER_INDEX)
                .key_condition_expression("#o = :o")
                .expression_attribute_names("#o", attr::LEASE_OWNER)
                .expression_attribute_values(":o", SdkValue::S(owner.to_owned()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify(&e))?;
            for row in output.items() {
                match row.get(attr::LEASE_KEY) {
                    Some(SdkValue::S(key)) => keys.push(key.clone()),
                    _ => {
                        return Err(StoreError::Invalid(format!(
                            "an index row of {owner} without a string {}",
                            attr::LEASE_KEY
                        )));
                    }
                }
            }
            match output.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// The failure of a refused condition: the item the service returned (`ALL_OLD`), or, when
    /// it returned none, the item as a consistent read finds it.
    async fn condition_failed(
        &self,
        table: Table,
        key: &str,
        returned: Option<&HashMap<String, SdkValue>>,
    ) -> UpdateError {
        let current = match returned {
            Some(item) => item_from_sdk(item).map(Some).map_err(unreadable),
            None => self.get_item(table, key, true).await,
        };
        match current {
            Ok(current) => ConditionFailed { current }.into(),
            Err(error) => error.into(),
        }
    }

    async fn write_item(&self, table: Table, write: &Write) -> Result<Item, UpdateError> {
        if let Some(why) = index_key_refused(table, write) {
            return Err(StoreError::Invalid(why).into());
        }
        let Translated {
            operation,
            condition,
            names,
            values,
        } = translate_write(table.key_attribute(), write)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let names = non_empty(names.into_iter().collect());
        let values = non_empty(item_to_sdk(&values));
        let table_name = self.names.name(table);
        match operation {
            Operation::UpdateItem { update } => {
                let (key_name, key_value) = Self::key(table, &write.key);
                let result = self
                    .client
                    .update_item()
                    .table_name(table_name)
                    .key(key_name, key_value)
                    .set_update_expression(update)
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .return_values(ReturnValue::AllNew)
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .send()
                    .await;
                match result {
                    Ok(output) => match output.attributes() {
                        Some(after) => Ok(item_from_sdk(after).map_err(unreadable)?),
                        // No attributes back: read what the write left.
                        None => self
                            .get_item(table, &write.key, true)
                            .await?
                            .ok_or_else(|| {
                                StoreError::Unavailable(format!(
                                    "{table_name}: item {} missing after an update",
                                    write.key
                                ))
                                .into()
                            }),
                    },
                    Err(error) => match error.as_service_error() {
                        Some(UpdateItemError::ConditionalCheckFailedException(failed)) => Err(self
                            .condition_failed(table, &write.key, failed.item())
                            .await),
                        _ => Err(classify(&error).into()),
                    },
                }
            }
            Operation::PutItem { item } => {
                let result = self
                    .client
                    .put_item()
                    .table_name(table_name)
                    .set_item(Some(item_to_sdk(&item)))
                    .set_condition_expression(condition)
                    .set_expression_attribute_names(names)
                    .set_expression_attribute_values(values)
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .send()
                    .await;
                match result {
                    Ok(_) => Ok(item),
                    Err(error) => match error.as_service_error() {
                        Some(PutItemError::ConditionalCheckFailedException(failed)) => Err(self
                            .condition_failed(table, &write.key, failed.item())
                            .await),
                        _ => Err(classify(&error).into()),
                    },
                }
            }
            Operation::DeleteItem => unreachable!("a write never translates to a delete"),
        }
    }

    async fn delete_item(
        &self,
        table: Table,
        delete: &Delete,
    ) -> Result<Option<Item>, UpdateError> {
        let Translated {
            condition,
            names,
            values,
            ..
        } = translate_delete(delete);
        let (key_name, key_value) = Self::key(table, &delete.key);
        let result = self
            .client
            .delete_item()
            .table_name(self.names.name(table))
            .key(key_name, key_value)
            .set_condition_expression(condition)
            .set_expression_attribute_names(non_empty(names.into_iter().collect()))
            .set_expression_attribute_values(non_empty(item_to_sdk(&values)))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => Ok(output
                .attributes()
                .filter(|old| !old.is_empty())
                .map(item_from_sdk)
                .transpose()
                .map_err(unreadable)?),
            Err(error) => match error.as_service_error() {
                Some(DeleteItemError::ConditionalCheckFailedException(failed)) => Err(self
                    .condition_failed(table, &delete.key, failed.item())
                    .await),
                _ => Err(classify(&error).into()),
            },
        }
    }
}

impl LeaseStore for DynamoStore {
    fn get(
        &self,
        table: Table,
        key: &str,
        consistent: bool,
    ) -> impl Future<Output = Result<Option<Item>, StoreError>> + Send {
        self.get_item(table, key, consistent)
    }

    fn scan(&self, table: Table) -> impl Future<Output = Result<Vec<Item>, StoreError>> + Send {
        self.scan_items(table)
    }

    fn query_owner(
        &self,
        owner: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send {
        self.query_owner_keys(owner)
    }

    fn update(
        &self,
        table: Table,
        write: &Write,
    ) -> impl Future<Output = Result<Item, UpdateError>> + Send {
        self.write_item(table, write)
    }

    fn delete(
        &self,
        table: Table,
        delete: &Delete,
    ) -> impl Future<Output = Result<Option<Item>, UpdateError>> + Send {
        self.delete_item(table, delete)
    }
}
