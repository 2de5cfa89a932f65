//! The stream's shards as the producer last read them (`ListShards`): which open shard a hash
//! key goes to (for shard-map aggregation), and the range of any shard it knows (to verify a
//! stored aggregate against the shard Kinesis put it on).

use std::collections::HashMap;

use crate::api::Shard;

/// The shards, open ones sorted by their first hash key.
#[derive(Clone, Debug, Default)]
pub(crate) struct ShardMap {
    open: Vec<Shard>,
    by_id: HashMap<String, Shard>,
}

impl ShardMap {
    pub(crate) fn new(shards: Vec<Shard>) -> Self {
        let mut open: Vec<Shard> = shards.iter().filter(|s| s.open).cloned().collect();
        open.sort_by_key(|s| s.starting_hash_key);
        let by_id = shards
            .into_iter()
            .map(|shard| (shard.shard_id.clone(), shard))
            .collect();
        ShardMap { open, by_id }
    }

    /// The open shard `hash_key` goes to, as an index stable for this map (`None` when no open
    /// shard covers it, as in the middle of a reshard).
    pub(crate) fn predict(&self, hash_key: u128) -> Option<usize> {
        let after = self
            .open
            .partition_point(|shard| shard.starting_hash_key <= hash_key);
        let index = after.checked_sub(1)?;
        self.open[index].contains(hash_key).then_some(index)
    }

    /// The id of the open shard `hash_key` goes to.
    pub(crate) fn predict_id(&self, hash_key: u128) -> Option<&str> {
        self.predict(hash_key)
            .map(|index| self.open[index].shard_id.as_str())
    }

    /// Whether the map holds the shard `shard_id` (open or closed).
    pub(crate) fn knows(&self, shard_id: &str) -> bool {
        self.by_id.contains_key(shard_id)
    }

    /// Whether every hash key of `hash_keys` falls in the range of the shard `shard_id`; `None`
    /// when the map does not know that shard.
    pub(crate) fn holds_all(
        &self,
        shard_id: &str,
        mut hash_keys: impl Iterator<Item = u128>,
    ) -> Option<bool> {
        let shard = self.by_id.get(shard_id)?;
        Some(hash_keys.all(|hash_key| shard.contains(hash_key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, start: u128, end: u128, open: bool) -> Shard {
        Shard {
            shard_id: id.to_owned(),
            starting_hash_key: start,
            ending_hash_key: end,
            open,
        }
    }

    #[test]
    fn open_shards_are_predicted_and_every_known_shard_verifies() {
        let map = ShardMap::new(vec![
            shard("b", 100, 199, true),
            shard("parent", 0, 99, false),
            shard("a0", 0, 49, true),
            shard("a1", 50, 99, true),
        ]);
        assert_eq!(map.predict(0), Some(0));
        assert_eq!(map.predict(49), Some(0));
        assert_eq!(map.predict(50), Some(1));
        assert_eq!(map.predict(150), Some(2));
        assert_eq!(map.predict(200), None);
        assert_eq!(map.holds_all("parent", [0, 99].into_iter()), Some(true));
        assert_eq!(map.holds_all("a0", [0, 50].into_iter()), Some(false));
        assert_eq!(map.holds_all("gone", [0].into_iter()), None);
    }
}
