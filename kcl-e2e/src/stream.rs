//! The Kinesis side: create a stream and wait until it is ACTIVE, put records (plain, or KPL
//! aggregates built with `kcl_kpl`) keeping a [`Ledger`], list shards, split and merge, as
//! scripts/e2e/stream.py does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::Client;
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use kcl_kpl::AggregateBuilder;
use kcl_protocol::Position;
use tokio::runtime::Runtime;

use crate::emulators::Emulators;
use crate::error::{Error, Result};
use crate::ledger::{Ledger, Put};

/// Error codes after which a put is simply tried again (e.g. while a reshard is going on).
const RETRYABLE: [&str; 3] = [
    "ResourceInUseException",
    "LimitExceededException",
    "ProvisionedThroughputExceededException",
];

/// How many times a refused put (or refused entries of one) is tried again.
const PUT_ATTEMPTS: u32 = 50;

/// `<prefix>-<n:06>`: the payload of record `n` (unique per prefix).
pub fn payload(prefix: &str, n: u64) -> String {
    format!("{prefix}-{n:06}")
}

/// One record to put: data and partition key, and what it means to the ledger.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The Kinesis record's data.
    pub data: Vec<u8>,
    /// The Kinesis record's partition key.
    pub partition_key: String,
    /// The payloads it carries: one for a plain record, one per user record (in order) for an
    /// aggregate.
    pub payloads: Vec<String>,
}

impl Entry {
    /// A plain record whose data is its payload.
    pub fn plain(payload: String, partition_key: String) -> Self {
        Entry {
            data: payload.clone().into_bytes(),
            partition_key,
            payloads: vec![payload],
        }
    }

    /// A KPL aggregate of `payloads`, every user record under `partition_key` (the Kinesis
    /// record's own: the KCL drops user records whose hash key falls outside the shard).
    pub fn aggregate(partition_key: &str, payloads: Vec<String>) -> Result<Self> {
        let mut builder = AggregateBuilder::default();
        for p in &payloads {
            builder
                .push(partition_key, None, p.as_bytes())
                .map_err(|e| Error::msg(format!("aggregating {p}: {e:?}")))?;
        }
        let aggregate = builder
            .finish()
            .ok_or_else(|| Error::msg("an aggregate of no record"))?;
        Ok(Entry {
            data: aggregate.data,
            partition_key: aggregate.partition_key,
            payloads,
        })
    }
}

/// A shard as ListShards describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    /// `shardId-...`.
    pub id: String,
    /// The parent (after a split or a merge).
    pub parent: Option<String>,
    /// The other parent (after a merge).
    pub adjacent_parent: Option<String>,
    /// The hash key range, inclusive.
    pub hash_range: (u128, u128),
    /// Whether it is closed (it has an ending sequence number).
    pub closed: bool,
}

/// One stream of kinesis-local.
#[derive(Clone, Debug)]
pub struct Stream {
    name: String,
    client: Client,
    runtime: Arc<Runtime>,
}

impl Stream {
    /// Creates the stream with `shards` shards and waits until it is ACTIVE.
    pub fn create(emulators: &Emulators, name: &str, shards: i32) -> Result<Stream> {
        let stream = Stream {
            name: name.to_owned(),
            client: emulators.kinesis_client(),
            runtime: emulators.runtime().clone(),
        };
        stream
            .runtime
            .block_on(
                stream
                    .client
                    .create_stream()
                    .stream_name(name)
                    .shard_count(shards)
                    .send(),
            )
            .map_err(|e| Error::sdk(format!("CreateStream {name}"), &e))?;
        stream.wait_active(Duration::from_secs(30))?;
        Ok(stream)
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client (for anything the helpers do not cover).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Polls DescribeStreamSummary until the stream is ACTIVE.
    pub fn wait_active(&self, deadline: Duration) -> Result<()> {
        let end = Instant::now() + deadline;
        loop {
            let summary = self
                .runtime
                .block_on(
                    self.client
                        .describe_stream_summary()
                        .stream_name(&self.name)
                        .send(),
                )
                .map_err(|e| Error::sdk(format!("DescribeStreamSummary {}", self.name), &e))?;
            let status = summary
                .stream_description_summary()
                .map(|s| s.stream_status().as_str().to_owned())
                .unwrap_or_default();
            if status == "ACTIVE" {
                return Ok(());
            }
            if Instant::now() > end {
                return Err(Error::msg(format!(
                    "stream {} still {status} after {} s",
                    self.name,
                    deadline.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// PutRecords of `entries`, retrying refused entries (and retryable errors) up to 50 times;
    /// each accepted entry's payloads go into `ledger` with the shard and sequence number
    /// Kinesis returned (sub-sequence number = index in the entry).
    pub fn put_entries(&self, entries: &[Entry], ledger: &Ledger) -> Result<()> {
        let mut pending: Vec<&Entry> = entries.iter().collect();
        let mut attempts = 0;
        while !pending.is_empty() {
            attempts += 1;
            let request = pending.iter().map(|e| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(e.data.clone()))
                    .partition_key(&e.partition_key)
                    .build()
                    .expect("data and partition key are set")
            });
            let answer = self.runtime.block_on(
                self.client
                    .put_records()
                    .stream_name(&self.name)
                    .set_records(Some(request.collect()))
                    .send(),
            );
            let answer = match answer {
                Ok(answer) => answer,
                Err(error) => {
                    let code = error
                        .as_service_error()
                        .and_then(|e| aws_sdk_kinesis::error::ProvideErrorMetadata::code(e))
                        .unwrap_or_default();
                    if !RETRYABLE.contains(&code) || attempts > PUT_ATTEMPTS {
                        return Err(Error::sdk(format!("PutRecords into {}", self.name), &error));
                    }
                    backoff(attempts);
                    continue;
                }
            };
            let mut retry = Vec::new();
            for (entry, result) in pending.iter().zip(answer.records()) {
                match (result.shard_id(), result.sequence_number()) {
                    (Some(shard), Some(seq)) if result.error_code().is_none() => {
                        for (index, payload) in entry.payloads.iter().enumerate() {
                            ledger.add(Put {
                                payload: payload.clone(),
                                partition_key: entry.partition_key.clone(),
                                shard: shard.to_owned(),
                                position: Position::new(seq, index as u64),
                            });
                        }
                    }
                    _ => retry.push(*entry),
                }
            }
            if !retry.is_empty() && attempts > PUT_ATTEMPTS {
                return Err(Error::msg(format!(
                    "{} records still refused after {PUT_ATTEMPTS} attempts",
                    retry.len()
                )));
            }
            if !retry.is_empty() {
                backoff(attempts);
            }
            pending = retry;
        }
        Ok(())
    }

    /// Puts `count` plain records, payloads [`payload`]`(prefix, n)` and partition keys
    /// `pk-<prefix>-<n>` for n in `start..start + count`, 100 per PutRecords; returns the next
    /// number (to continue the numbering).
    pub fn put_records(
        &self,
        ledger: &Ledger,
        prefix: &str,
        start: u64,
        count: u64,
    ) -> Result<u64> {
        let end = start + count;
        let mut first = start;
        while first < end {
            let last = end.min(first + 100);
            let entries: Vec<Entry> = (first..last)
                .map(|n| Entry::plain(payload(prefix, n), format!("pk-{prefix}-{n}")))
                .collect();
            self.put_entries(&entries, ledger)?;
            first = last;
        }
        Ok(end)
    }

    /// Puts `aggregates` KPL aggregates numbered from `start`, aggregate `i` holding
    /// `2 + i % 9` user records with payloads `<prefix>-<i:04>-<j:02>` under partition key
    /// `pk-<prefix>-agg-<i>` (the shapes of the Python suite's scenario 7), 20 per PutRecords;
    /// returns the next aggregate number.
    pub fn put_aggregates(
        &self,
        ledger: &Ledger,
        prefix: &str,
        start: u64,
        aggregates: u64,
    ) -> Result<u64> {
        let entries: Vec<Entry> = (start..start + aggregates)
            .map(|i| {
                let payloads = (0..2 + i % 9)
                    .map(|j| format!("{prefix}-{i:04}-{j:02}"))
                    .collect();
                Entry::aggregate(&format!("pk-{prefix}-agg-{i}"), payloads)
            })
            .collect::<Result<_>>()?;
        for chunk in entries.chunks(20) {
            self.put_entries(chunk, ledger)?;
        }
        Ok(start + aggregates)
    }

    /// Every shard, open and closed, by id.
    pub fn shards(&self) -> Result<BTreeMap<String, Shard>> {
        let mut found = BTreeMap::new();
        let mut token: Option<String> = None;
        loop {
            let request = match &token {
                Some(token) => self.client.list_shards().next_token(token),
                None => self.client.list_shards().stream_name(&self.name),
            };
            let page = self
                .runtime
                .block_on(request.send())
                .map_err(|e| Error::sdk(format!("ListShards {}", self.name), &e))?;
            for s in page.shards() {
                let range = s.hash_key_range();
                let parse =
                    |text: Option<&str>| text.and_then(|t| t.parse::<u128>().ok()).unwrap_or(0);
                found.insert(
                    s.shard_id().to_owned(),
                    Shard {
                        id: s.shard_id().to_owned(),
                        parent: s.parent_shard_id().map(str::to_owned),
                        adjacent_parent: s.adjacent_parent_shard_id().map(str::to_owned),
                        hash_range: (
                            parse(range.map(|r| r.starting_hash_key())),
                            parse(range.map(|r| r.ending_hash_key())),
                        ),
                        closed: s
                            .sequence_number_range()
                            .and_then(|r| r.ending_sequence_number())
                            .is_some(),
                    },
                );
            }
            match page.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => return Ok(found),
            }
        }
    }

    /// The open shards, by id.
    pub fn open_shards(&self) -> Result<BTreeMap<String, Shard>> {
        let mut shards = self.shards()?;
        shards.retain(|_, s| !s.closed);
        Ok(shards)
    }

    /// SplitShard at the middle of the shard's hash range; waits until the stream is ACTIVE.
    pub fn split_in_half(&self, shard_id: &str) -> Result<()> {
        let shards = self.shards()?;
        let shard = shards
            .get(shard_id)
            .ok_or_else(|| Error::msg(format!("no shard {shard_id} in {}", self.name)))?;
        let (low, high) = shard.hash_range;
        let middle = low / 2 + high / 2 + (low % 2 + high % 2).div_ceil(2);
        self.runtime
            .block_on(
                self.client
                    .split_shard()
                    .stream_name(&self.name)
                    .shard_to_split(shard_id)
                    .new_starting_hash_key(middle.to_string())
                    .send(),
            )
            .map_err(|e| Error::sdk(format!("SplitShard {shard_id}"), &e))?;
        self.wait_active(Duration::from_secs(30))
    }

    /// MergeShards of two adjacent open shards; waits until the stream is ACTIVE.
    pub fn merge(&self, shard_id: &str, adjacent_id: &str) -> Result<()> {
        self.runtime
            .block_on(
                self.client
                    .merge_shards()
                    .stream_name(&self.name)
                    .shard_to_merge(shard_id)
                    .adjacent_shard_to_merge(adjacent_id)
                    .send(),
            )
            .map_err(|e| Error::sdk(format!("MergeShards {shard_id} {adjacent_id}"), &e))?;
        self.wait_active(Duration::from_secs(30))
    }

    /// The shards whose parent (or adjacent parent) is `parent_id`, sorted.
    pub fn children_of(&self, parent_id: &str) -> Result<Vec<String>> {
        Ok(self
            .shards()?
            .into_values()
            .filter(|s| {
                s.parent.as_deref() == Some(parent_id)
                    || s.adjacent_parent.as_deref() == Some(parent_id)
            })
            .map(|s| s.id)
            .collect())
    }
}

fn backoff(attempts: u32) {
    std::thread::sleep(Duration::from_millis(u64::from(attempts * 50).min(1000)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_and_aggregates() {
        assert_eq!(payload("s1", 17), "s1-000017");
        let entry = Entry::aggregate("pk", vec!["a".into(), "b".into()]).unwrap();
        assert_eq!(entry.partition_key, "pk");
        let users = kcl_kpl::decode(&entry.data).unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users[1].data, b"b");
    }
}
