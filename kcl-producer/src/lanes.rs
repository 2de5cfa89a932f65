//! Per-key ordering (opt-in): the records of one partition key are stored in the order they were
//! taken, whatever fails and is sent again.
//!
//! Kinesis stores the entries of one `PutRecords` call independently: a throttled entry sent
//! again lands after a later entry of the same key that succeeded. So each key has at most one
//! entry out at a time (ready to go, in flight, or waiting for its backoff), and the records
//! behind it queue in its lane. One entry is one record, or with same-key aggregation one
//! aggregate of up to its size: a hot key moves one entry per round trip.
//!
//! Invariants, per key: the records in `ready` are the oldest of the key not yet answered; none
//! of them is there while another of the key is in flight or waiting; the lane's queue holds
//! only newer records.

use std::collections::{HashMap, VecDeque};

use crate::dispatch::Pending;

/// How much of one key may be out at once: one entry's worth.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Unit {
    pub(crate) records: usize,
    pub(crate) bytes: usize,
}

#[derive(Default)]
struct Lane {
    /// Records of the key in `ready`, and their bytes.
    in_ready: usize,
    ready_bytes: usize,
    /// Records of the key in flight or waiting for their backoff.
    in_transit: usize,
    /// Newer records, in the order taken.
    queue: VecDeque<Pending>,
}

impl Lane {
    fn idle(&self) -> bool {
        self.in_ready == 0 && self.in_transit == 0 && self.queue.is_empty()
    }

    fn has_room(&self, unit: Unit, bytes: usize) -> bool {
        self.in_transit == 0
            && self.in_ready < unit.records
            && (self.in_ready == 0 || self.ready_bytes + bytes <= unit.bytes)
    }
}

/// Every key's lane.
pub(crate) struct Lanes {
    unit: Unit,
    lanes: HashMap<String, Lane>,
}

impl Lanes {
    pub(crate) fn new(unit: Unit) -> Self {
        Lanes {
            unit,
            lanes: HashMap::new(),
        }
    }

    /// A record taken: handed back to go to `ready` when its key has room, else queued.
    pub(crate) fn admit(&mut self, pending: Pending) -> Option<Pending> {
        let lane = self
            .lanes
            .entry(pending.record_ref().partition_key.clone())
            .or_default();
        if lane.queue.is_empty() && lane.has_room(self.unit, pending.bytes) {
            lane.in_ready += 1;
            lane.ready_bytes += pending.bytes;
            Some(pending)
        } else {
            lane.queue.push_back(pending);
            None
        }
    }

    /// Whether `key` has a record in flight or waiting for its backoff.
    pub(crate) fn busy(&self, key: &str) -> bool {
        self.lanes.get(key).is_some_and(|lane| lane.in_transit > 0)
    }

    /// A record of `key` left `ready` in a call.
    pub(crate) fn sent(&mut self, key: &str, bytes: usize) {
        let lane = self.lane(key);
        lane.in_ready -= 1;
        lane.ready_bytes -= bytes;
        lane.in_transit += 1;
    }

    /// Records taken out of `ready` that the call had no room for (a key has one entry per
    /// call, none while it is busy): back into their lanes, where the queue stays in the order
    /// records were taken (with a rate limit, a key's records may come back one call at a time).
    pub(crate) fn put_back(&mut self, pendings: Vec<Pending>) {
        for pending in pendings {
            let lane = self.lane(&pending.record_ref().partition_key);
            lane.in_ready -= 1;
            lane.ready_bytes -= pending.bytes;
            let at = lane
                .queue
                .partition_point(|queued| queued.id() < pending.id());
            lane.queue.insert(at, pending);
        }
    }

    /// A record of `key` came back from its backoff into `ready`.
    pub(crate) fn released(&mut self, key: &str, bytes: usize) {
        let lane = self.lane(key);
        lane.in_transit -= 1;
        lane.in_ready += 1;
        lane.ready_bytes += bytes;
    }

    /// A record of `key` has its final answer.
    pub(crate) fn answered(&mut self, key: &str) {
        self.lane(key).in_transit -= 1;
    }

    /// The records of `key` that may go to `ready` now (none while one is in transit).
    pub(crate) fn refill(&mut self, key: &str) -> Vec<Pending> {
        let unit = self.unit;
        let Some(lane) = self.lanes.get_mut(key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while let Some(next) = lane.queue.front() {
            if !lane.has_room(unit, next.bytes) {
                break;
            }
            let pending = lane.queue.pop_front().expect("the front exists");
            lane.in_ready += 1;
            lane.ready_bytes += pending.bytes;
            out.push(pending);
        }
        if lane.idle() {
            self.lanes.remove(key);
        }
        out
    }

    /// Every queued record (at the end).
    pub(crate) fn drain(&mut self) -> Vec<Pending> {
        self.lanes
            .drain()
            .flat_map(|(_, lane)| lane.queue)
            .collect()
    }

    fn lane(&mut self, key: &str) -> &mut Lane {
        self.lanes
            .get_mut(key)
            .expect("a record out of its lane has a lane")
    }
}
