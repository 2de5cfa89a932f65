//! The lease table in moto_server (table name = applicationName), scanned with the AWS SDK and
//! decoded with `kcl_lease::decode_leases`, and the audits the scenarios make of it: each
//! lease's checkpoint at its shard's last record, who owns what, and that a stored checkpoint
//! never passes a record missing from the sinks.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue as Sdk;
use kcl_lease::coordinator::COORDINATOR_KEY;
use kcl_lease::{AttributeValue, Item, Lease, decode_leases};
use kcl_protocol::{ExtendedSequenceNumber, Position};
use tokio::runtime::Runtime;

use crate::emulators::Emulators;
use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::sink::{Sink, written};

/// The lease table of one application.
#[derive(Clone, Debug)]
pub struct LeaseTable {
    table: String,
    client: Client,
    runtime: Arc<Runtime>,
}

impl LeaseTable {
    /// The lease table named `table` (the application name).
    pub fn new(emulators: &Emulators, table: &str) -> Self {
        LeaseTable {
            table: table.to_owned(),
            client: emulators.dynamodb_client(),
            runtime: emulators.runtime().clone(),
        }
    }

    /// The CoordinatorState table of application `app` (`<app>-CoordinatorState`, the KCL 3.x
    /// default): the `Leader` lock and the `Migration3.0` client version. Read it with
    /// [`LeaseTable::coordinator_item`].
    pub fn coordinator_state(emulators: &Emulators, app: &str) -> Self {
        LeaseTable::new(emulators, &format!("{app}-CoordinatorState"))
    }

    /// The CoordinatorState item whose hash key `key` is `key` (e.g. `Leader`, `Migration3.0`).
    pub fn coordinator_item(&self, key: &str) -> Result<Option<Item>> {
        Ok(self
            .items()?
            .into_iter()
            .find(|item| item.get(COORDINATOR_KEY).and_then(AttributeValue::as_s) == Some(key)))
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.table
    }

    /// Every item of the table (empty while the table does not exist).
    pub fn items(&self) -> Result<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<HashMap<String, Sdk>> = None;
        loop {
            let page = self.runtime.block_on(
                self.client
                    .scan()
                    .table_name(&self.table)
                    .consistent_read(true)
                    .set_exclusive_start_key(start.take())
                    .send(),
            );
            let page = match page {
                Ok(page) => page,
                Err(error)
                    if error
                        .as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
                {
                    return Ok(Vec::new());
                }
                Err(error) => return Err(Error::sdk(format!("Scan {}", self.table), &error)),
            };
            for row in page.items() {
                items.push(item(row).map_err(|attribute| {
                    Error::msg(format!(
                        "{}: attribute {attribute} of an unknown type",
                        self.table
                    ))
                })?);
            }
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(items),
            }
        }
    }

    /// Every lease, by lease key; rows that are not leases are left out, a lease row that does
    /// not decode is an error.
    pub fn leases(&self) -> Result<BTreeMap<String, Lease>> {
        let (leases, errors) = decode_leases(&self.items()?);
        if let Some(error) = errors.first() {
            return Err(Error::msg(format!(
                "{}: {} lease rows do not decode, the first: {error}",
                self.table,
                errors.len()
            )));
        }
        Ok(leases
            .into_iter()
            .map(|l| (l.lease_key.clone(), l))
            .collect())
    }

    /// `{shard: checkpoint}`.
    pub fn checkpoints(&self) -> Result<BTreeMap<String, ExtendedSequenceNumber>> {
        Ok(self
            .leases()?
            .into_iter()
            .map(|(key, lease)| (key, lease.checkpoint))
            .collect())
    }

    /// `{shard: owner}` (`None`: unowned).
    pub fn owners(&self) -> Result<BTreeMap<String, Option<String>>> {
        Ok(self
            .leases()?
            .into_iter()
            .map(|(key, lease)| (key, lease.lease_owner))
            .collect())
    }

    /// The lease keys `worker` owns.
    pub fn owned_by(&self, worker: &str) -> Result<Vec<String>> {
        Ok(self
            .owners()?
            .into_iter()
            .filter(|(_, owner)| owner.as_deref() == Some(worker))
            .map(|(key, _)| key)
            .collect())
    }

    /// The lease keys nobody owns. (After a clean SIGTERM the KCL 3.1.3 daemon leaves its
    /// leases owned: they expire after `failoverTimeMillis`; the scenarios note it.)
    pub fn unowned(&self) -> Result<Vec<String>> {
        Ok(self
            .owners()?
            .into_iter()
            .filter(|(_, owner)| owner.is_none())
            .map(|(key, _)| key)
            .collect())
    }

    /// Polls until the checkpoint of every shard in `expected` equals its position (sequence
    /// and sub-sequence number), or `deadline` passes: whether they did, and the last
    /// checkpoints seen.
    pub fn wait_checkpoints(
        &self,
        expected: &BTreeMap<String, Position>,
        deadline: Duration,
    ) -> (bool, BTreeMap<String, ExtendedSequenceNumber>) {
        let end = Instant::now() + deadline;
        loop {
            let seen = self.checkpoints().unwrap_or_default();
            if checkpoints_at(expected, &seen) || Instant::now() >= end {
                return (checkpoints_at(expected, &seen), seen);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// One line per lease, for logs: checkpoint, owner, counter, parents, children.
    pub fn describe(&self) -> Result<Vec<String>> {
        Ok(self
            .leases()?
            .values()
            .map(|l| {
                let mut line = format!(
                    "{}: checkpoint={} owner={} counter={}",
                    l.lease_key,
                    l.checkpoint,
                    l.lease_owner.as_deref().unwrap_or("-"),
                    l.lease_counter
                );
                if !l.parent_shard_ids.is_empty() {
                    line.push_str(&format!(" parents={:?}", l.parent_shard_ids));
                }
                if !l.child_shard_ids.is_empty() {
                    line.push_str(&format!(" children={:?}", l.child_shard_ids));
                }
                line
            })
            .collect())
    }

    /// One sample of the checkpoint audit: reads the table first, then the sinks, and returns
    /// every (shard, checkpoint, missing payloads) where a stored checkpoint passes records of
    /// the ledger that no sink wrote (nor dead-lettered). `SHARD_END` covers the whole shard;
    /// other sentinels pass nothing.
    pub fn audit(&self, ledger: &Ledger, sinks: &[&Sink]) -> Result<Vec<Violation>> {
        let checkpoints = self.checkpoints()?;
        let written = written(sinks);
        let mut violations = Vec::new();
        for (shard, checkpoint) in checkpoints {
            let covered = |position: &Position| {
                if checkpoint.is_shard_end() {
                    return true;
                }
                checkpoint
                    .position()
                    .is_some_and(|limit| *position <= limit)
            };
            let missing: Vec<String> = ledger
                .snapshot()
                .into_values()
                .filter(|p| {
                    p.shard == shard && covered(&p.position) && !written.contains(&p.payload)
                })
                .map(|p| p.payload)
                .collect();
            if !missing.is_empty() {
                violations.push(Violation {
                    shard,
                    checkpoint,
                    missing,
                });
            }
        }
        Ok(violations)
    }
}

/// A stored checkpoint that passes records no sink wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The lease key.
    pub shard: String,
    /// The checkpoint stored.
    pub checkpoint: ExtendedSequenceNumber,
    /// The payloads at or before it that are missing.
    pub missing: Vec<String>,
}

/// Whether every shard of `expected` has exactly that checkpoint in `seen` (sequence number
/// text and sub-sequence number).
pub fn checkpoints_at(
    expected: &BTreeMap<String, Position>,
    seen: &BTreeMap<String, ExtendedSequenceNumber>,
) -> bool {
    expected
        .iter()
        .all(|(shard, position)| seen.get(shard) == Some(&ExtendedSequenceNumber::from(position)))
}

/// `shardId-000000000003: ...898/0 = ...` per shard: what was expected and what is stored.
pub fn checkpoint_detail(
    expected: &BTreeMap<String, Position>,
    seen: &BTreeMap<String, ExtendedSequenceNumber>,
) -> String {
    expected
        .iter()
        .map(|(shard, position)| {
            let stored = seen.get(shard);
            let seq = position.sequence_number().as_str();
            let short = &seq[seq.len().saturating_sub(6)..];
            let mark = if stored == Some(&ExtendedSequenceNumber::from(position)) {
                "=".to_owned()
            } else {
                format!(
                    " != stored {}",
                    stored.map_or("none".to_owned(), ToString::to_string)
                )
            };
            format!(
                "{}:...{short}/{}{mark}",
                short_shard(shard),
                position.sub_sequence_number()
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `shardId-000000000003` → `s3` (for compact details).
pub fn short_shard(shard: &str) -> String {
    shard
        .strip_prefix("shardId-")
        .and_then(|n| n.parse::<u64>().ok())
        .map_or_else(|| shard.to_owned(), |n| format!("s{n}"))
}

/// An item from the SDK's form; `Err` names an attribute of a type this crate does not know.
fn item(row: &HashMap<String, Sdk>) -> Result<Item, String> {
    row.iter()
        .map(|(name, value)| {
            value_of(value)
                .map(|v| (name.clone(), v))
                .ok_or_else(|| name.clone())
        })
        .collect()
}

fn value_of(value: &Sdk) -> Option<AttributeValue> {
    Some(match value {
        Sdk::S(text) => AttributeValue::S(text.clone()),
        Sdk::N(text) => AttributeValue::N(text.clone()),
        Sdk::B(blob) => AttributeValue::B(blob.as_ref().to_vec()),
        Sdk::Ss(texts) => AttributeValue::Ss(texts.clone()),
        Sdk::Ns(texts) => AttributeValue::Ns(texts.clone()),
        Sdk::Bs(blobs) => AttributeValue::Bs(blobs.iter().map(|b| b.as_ref().to_vec()).collect()),
        Sdk::L(values) => AttributeValue::L(values.iter().map(value_of).collect::<Option<_>>()?),
        Sdk::M(values) => AttributeValue::M(
            values
                .iter()
                .map(|(k, v)| Some((k.clone(), value_of(v)?)))
                .collect::<Option<_>>()?,
        ),
        Sdk::Bool(flag) => AttributeValue::Bool(*flag),
        Sdk::Null(_) => AttributeValue::Null,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sdk_lease_row_decodes() {
        let row = HashMap::from([
            ("leaseKey".to_owned(), Sdk::S("shardId-000000000001".into())),
            ("leaseOwner".to_owned(), Sdk::S("w1".into())),
            ("leaseCounter".to_owned(), Sdk::N("7".into())),
            ("checkpoint".to_owned(), Sdk::S("4959".into())),
            ("checkpointSubSequenceNumber".to_owned(), Sdk::N("2".into())),
            (
                "ownerSwitchesSinceCheckpoint".to_owned(),
                Sdk::N("0".into()),
            ),
            (
                "parentShardId".to_owned(),
                Sdk::Ss(vec!["shardId-000000000000".into()]),
            ),
        ]);
        let (leases, errors) = decode_leases(&[item(&row).unwrap()]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(leases[0].checkpoint, ExtendedSequenceNumber::new("4959", 2));
        let expected =
            BTreeMap::from([("shardId-000000000001".to_owned(), Position::new("4959", 2))]);
        let seen = BTreeMap::from([(leases[0].lease_key.clone(), leases[0].checkpoint.clone())]);
        assert!(checkpoints_at(&expected, &seen));
        assert_eq!(checkpoint_detail(&expected, &seen), "s1:...4959/2=");
        assert!(!checkpoints_at(&expected, &BTreeMap::new()));
    }
}
