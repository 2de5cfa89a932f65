//! The Java-free MultiLangDaemon (`kcl_native::multilang::ChildProcesses`) end to end, in
//! process: a `Supervisor` over a `MemoryStore` lease table and a `MemoryKinesis` stream whose
//! shard workers start real child processes, a small scripted Python child (below) that follows
//! a JSON plan and writes down every line it reads and writes.
//!
//! Judged: what the children received (their logs), the checkpoints in the lease table, and the
//! run's result; against the rules of `docs/protocol.md` sections 2 and 3 (the Java KCL 3.1.3
//! MultiLangDaemon).

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use kcl_lease::{Decoded, Lease, LeaseStore, MemoryStore, Table, decode, ops};
use kcl_native::config::{InitialPosition, NativeConfig};
use kcl_native::multilang::ChildProcesses;
use kcl_native::testing::MemoryKinesis;
use kcl_native::{RunError, Stopper, Supervisor};
use kcl_producer::api::{KinesisApi, Record, StreamRef};
use kcl_protocol::ExtendedSequenceNumber as E;
use proptest::prelude::*;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

const ME: &str = "native-1";
const STREAM: &str = "words";
const SHARD0: &str = "shardId-000000000000";
const SHARD1: &str = "shardId-000000000001";

/// The scripted child. `child.py PLAN LOGDIR`: for each action it reads, it runs the steps of
/// the most specific entry of the plan: `"<shard>/<action>#<n>"` (the n-th time that action
/// arrives), `"<shard>/<action>"`, `"<action>#<n>"`, `"<action>"` (by default no step, except a
/// null checkpoint at `shardEnded`), then answers with a status for the
/// action unless a step already wrote a status or exited. Every line read from stdin and
/// written to stdout goes to `LOGDIR/<pid>.log` (`[time, kind, text]`, kind `in`, `out`, `raw`
/// (a `raw` step), `eof` (stdin closed), `exit`).
/// Steps: `["checkpoint", [seq, sub]]` (a request, then its reply is read), `["raw", text]`
/// (a line written to stdout as is), `["stderr", text]`, `["status", action]`,
/// `["status_ending", terminator]` (the status for the action, ended by `terminator` instead
/// of `\n`), `["sleep", s]`, `["exit", code]`.
const CHILD: &str = r#"
import json, os, sys, time
plan = json.load(open(sys.argv[1]))
log = open(os.path.join(sys.argv[2], "%d.log" % os.getpid()), "a")
def note(kind, text):
    log.write(json.dumps([time.time(), kind, text]) + "\n"); log.flush()
def read():
    line = sys.stdin.readline()
    if not line:
        note("eof", ""); sys.exit(0)
    line = line.rstrip("\n"); note("in", line); return line
def send(text, kind="out"):
    sys.stdout.write(text + "\n"); sys.stdout.flush(); note(kind, text)
seen, shard = {}, ""
while True:
    message = json.loads(read())
    action = message["action"]
    shard = message.get("shardId", shard)
    seen[action] = n = seen.get(action, 0) + 1
    steps = [["checkpoint", [None, None]]] if action == "shardEnded" else []
    for key in [action, "%s#%d" % (action, n), shard + "/" + action, "%s/%s#%d" % (shard, action, n)]:
        steps = plan.get(key, steps)
    answered = False
    for kind, arg in steps:
        if kind == "checkpoint":
            send(json.dumps({"action": "checkpoint", "sequenceNumber": arg[0], "subSequenceNumber": arg[1]}))
            read()
        elif kind == "raw":
            send(arg, "raw")
        elif kind == "stderr":
            sys.stderr.write(arg + "\n"); sys.stderr.flush()
        elif kind == "status":
            send(json.dumps({"action": "status", "responseFor": arg})); answered = True
        elif kind == "status_ending":
            sys.stdout.write(json.dumps({"action": "status", "responseFor": action}) + arg)
            sys.stdout.flush(); note("out", "status ended by %r" % arg); answered = True
        elif kind == "sleep":
            time.sleep(arg)
        elif kind == "exit":
            note("exit", str(arg)); sys.exit(arg)
    if not answered:
        send(json.dumps({"action": "status", "responseFor": action}))
"#;

/// One line of a child's log.
#[derive(Clone, Debug)]
struct Entry {
    time: f64,
    kind: String,
    text: String,
}

impl Entry {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    /// The action of a line the child read (a daemon message).
    fn action(&self) -> Option<String> {
        if self.kind != "in" {
            return None;
        }
        self.json()["action"].as_str().map(str::to_owned)
    }
}

/// One child process's log.
#[derive(Clone, Debug)]
struct Session {
    pid: u32,
    entries: Vec<Entry>,
}

impl Session {
    /// The shard of its `initialize` (its first line).
    fn shard(&self) -> Option<String> {
        let first = self.entries.first()?;
        Some(first.json()["shardId"].as_str()?.to_owned())
    }

    /// The actions it received, in order (checkpoint replies left out).
    fn actions(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter_map(Entry::action)
            .filter(|action| action != "checkpoint")
            .collect()
    }

    /// The daemon messages it read whose action is `action`.
    fn received(&self, action: &str) -> Vec<Value> {
        self.entries
            .iter()
            .filter(|entry| entry.action().as_deref() == Some(action))
            .map(Entry::json)
            .collect()
    }

    /// Each checkpoint request it wrote with the reply it read next.
    fn checkpoints(&self) -> Vec<(Value, Value)> {
        let mut pairs = Vec::new();
        for (index, entry) in self.entries.iter().enumerate() {
            if entry.kind == "out" && entry.text.contains("\"checkpoint\"") {
                let request = entry.json();
                if request["action"] == "checkpoint" {
                    let reply = self.entries[index + 1..]
                        .iter()
                        .find(|e| e.kind == "in")
                        .map(Entry::json)
                        .unwrap_or(Value::Null);
                    pairs.push((request, reply));
                }
            }
        }
        pairs
    }

    /// The records of every `processRecords` it read.
    fn records(&self) -> Vec<Value> {
        self.received("processRecords")
            .into_iter()
            .flat_map(|batch| batch["records"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    fn saw_eof(&self) -> bool {
        self.entries.iter().any(|e| e.kind == "eof")
    }

    /// Whether the child answered `processRecords` as many times as it received it.
    fn idle(&self) -> bool {
        let received = self.received("processRecords").len();
        let answered = self
            .entries
            .iter()
            .filter(|e| e.kind == "out" && e.text.contains("\"responseFor\": \"processRecords\""))
            .count();
        received == answered
    }
}

/// Whether process `pid` is gone (reaped).
fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// A test's directory: the child script, its plan, the children's logs. Removed unless the
/// test failed.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("kcl-multilang-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("logs")).unwrap();
        std::fs::write(dir.join("child.py"), CHILD).unwrap();
        Scratch { dir }
    }

    /// Children that follow `plan`.
    fn children(&self, plan: Value) -> ChildProcesses {
        let path = self.dir.join("plan.json");
        std::fs::write(&path, plan.to_string()).unwrap();
        ChildProcesses::new([
            "python3".to_owned(),
            self.dir.join("child.py").display().to_string(),
            path.display().to_string(),
            self.dir.join("logs").display().to_string(),
        ])
        .exit_wait(Duration::from_secs(5))
    }

    /// Every child's log so far, in the order the children started.
    fn sessions(&self) -> Vec<Session> {
        let mut sessions = Vec::new();
        for file in std::fs::read_dir(self.dir.join("logs")).unwrap() {
            let path = file.unwrap().path();
            let pid = path.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            let entries: Vec<Entry> = text
                .lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .map(|v| Entry {
                    time: v[0].as_f64().unwrap(),
                    kind: v[1].as_str().unwrap().to_owned(),
                    text: v[2].as_str().unwrap().to_owned(),
                })
                .collect();
            sessions.push(Session { pid, entries });
        }
        sessions.sort_by(|a, b| {
            let start = |s: &Session| s.entries.first().map_or(f64::MAX, |e| e.time);
            start(a).total_cmp(&start(b))
        });
        sessions
    }

    /// The children of `shard`, in the order they started.
    fn sessions_of(&self, shard: &str) -> Vec<Session> {
        self.sessions()
            .into_iter()
            .filter(|s| s.shard().as_deref() == Some(shard))
            .collect()
    }

    /// The only child of `shard`.
    fn session(&self, shard: &str) -> Session {
        let mut all = self.sessions_of(shard);
        assert_eq!(all.len(), 1, "{shard}: one child: {all:?}");
        all.remove(0)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Fast timings (as the other kcl-native tests): reads every 100 ms, at most `max_records`
/// records a batch.
fn config(max_records: u32) -> NativeConfig {
    NativeConfig::builder("words-app", STREAM)
        .worker_id(ME)
        .failover_time(Duration::from_secs(3))
        .lease_assignment_interval(Duration::from_millis(400))
        .idle_time_between_reads(Duration::from_millis(100))
        .parent_shard_poll_interval(Duration::from_millis(100))
        .shutdown_grace(Duration::from_secs(5))
        .max_records(max_records)
        .initial_position(InitialPosition::TrimHorizon)
        .build()
        .unwrap()
}

struct World {
    kinesis: MemoryKinesis,
    store: Arc<MemoryStore>,
    scratch: Scratch,
}

impl World {
    fn new(name: &str, shards: u32) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_max_level(tracing::Level::INFO)
            .try_init();
        World {
            kinesis: MemoryKinesis::new(STREAM, shards),
            store: Arc::new(MemoryStore::new()),
            scratch: Scratch::new(name),
        }
    }

    /// Puts one record a payload into `shard` (binary payloads: `[0xff, 0, i, ...text]`, the
    /// partition key from the text's first 20 characters).
    async fn put(&self, shard: &str, texts: impl IntoIterator<Item = String>) {
        let hash = self
            .kinesis
            .fake()
            .shards()
            .into_iter()
            .find(|s| s.shard_id == shard)
            .expect("the shard")
            .starting_hash_key
            .to_string();
        let records: Vec<Record> = texts
            .into_iter()
            .enumerate()
            .map(|(i, text)| {
                let mut data = vec![0xff, 0, i as u8];
                data.extend_from_slice(text.as_bytes());
                let key: String = text.chars().take(20).collect();
                Record::new(format!("key-{key}-é"), data).explicit_hash_key(hash.clone())
            })
            .collect();
        self.kinesis
            .fake()
            .put_records(&StreamRef::name(STREAM), &records)
            .await
            .unwrap();
    }

    /// A lease at `checkpoint` for each open shard, assigned to this worker.
    async fn assign_open_shards(&self, checkpoint: impl Fn(&str) -> E) {
        for shard in self.kinesis.fake().shards().into_iter().filter(|s| s.open) {
            let mut lease = Lease::new(&shard.shard_id, checkpoint(&shard.shard_id));
            lease.hash_key_range = Some((shard.starting_hash_key, shard.ending_hash_key));
            self.store.create_if_not_exists(&lease).await.unwrap();
            self.assign(&shard.shard_id, ME).await;
        }
    }

    async fn assign(&self, key: &str, owner: &str) {
        let lease = self.lease(key);
        self.store
            .update(Table::Lease, &ops::assign(&lease, owner))
            .await
            .unwrap();
    }

    fn lease(&self, key: &str) -> Lease {
        let item = self.store.item(Table::Lease, key).expect("a lease");
        match decode(&item).unwrap() {
            Decoded::Lease(lease) => lease,
            Decoded::NotALease { .. } => panic!("not a lease"),
        }
    }

    fn checkpoint(&self, key: &str) -> E {
        self.lease(key).checkpoint
    }

    /// Every checkpoint value the lease `key` took in the table, in order (repeats removed).
    fn checkpoint_history(&self, key: &str) -> Vec<E> {
        let mut history: Vec<E> = Vec::new();
        for write in self.store.writes() {
            if write.table != Table::Lease || write.key != key || !write.landed() {
                continue;
            }
            let Some(Ok(Decoded::Lease(lease))) = write.after.as_ref().map(decode) else {
                continue;
            };
            if history.last() != Some(&lease.checkpoint) {
                history.push(lease.checkpoint);
            }
        }
        history
    }

    fn sequences(&self, shard: &str) -> Vec<String> {
        let records = self.kinesis.fake().records(shard);
        records.into_iter().map(|r| r.sequence_number).collect()
    }

    fn start(
        &self,
        children: ChildProcesses,
        max_records: u32,
    ) -> (Stopper, JoinHandle<Result<(), RunError>>) {
        let supervisor = Supervisor::new(
            self.store.clone(),
            self.kinesis.clone(),
            config(max_records),
            children,
        )
        .progress_interval(Duration::from_millis(500));
        let stopper = supervisor.stopper();
        (stopper, tokio::spawn(supervisor.run()))
    }
}

/// Waits until `ready` holds (at most 20 s).
async fn eventually(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The run's end (at most 20 s).
async fn ended(run: JoinHandle<Result<(), RunError>>) -> Result<(), RunError> {
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the run ends")
        .expect("the run does not panic")
}

/// A `ProcessorExit` naming `shard`: its reason.
fn processor_exit(result: Result<(), RunError>, shard: &str) -> String {
    let said = result.as_ref().err().map(ToString::to_string);
    match result {
        Err(RunError::ProcessorExit {
            shard: failed,
            reason,
        }) => {
            assert_eq!(failed, shard, "{reason}");
            let said = said.unwrap_or_default();
            assert!(
                said.contains(shard) && said.contains(&reason),
                "the error names the shard and the reason: {said}"
            );
            reason
        }
        other => panic!("expected a ProcessorExit of {shard}, got {other:?}"),
    }
}

fn reply(sequence: Value, sub: Value, error: Value) -> Value {
    json!({"action": "checkpoint", "sequenceNumber": sequence, "subSequenceNumber": sub, "error": error})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_lives_through_initialize_records_and_a_graceful_stop() {
    let world = World::new("lifecycle", 2);
    world.put(SHARD0, (0..30).map(|i| format!("a{i}"))).await;
    world.put(SHARD1, (0..30).map(|i| format!("b{i}"))).await;
    // Shard 1 resumes after its 10th record, at sub-sequence 2 (as an aggregate's sub-record).
    let resume = world.sequences(SHARD1)[9].clone();
    let resumed = resume.clone();
    world
        .assign_open_shards(move |shard| {
            if shard == SHARD1 {
                E::new(resumed.clone(), 2)
            } else {
                E::trim_horizon()
            }
        })
        .await;
    let plan = json!({"processRecords": [["checkpoint", [null, null]]]});
    let (stopper, run) = world.start(world.scratch.children(plan), 7);

    let last = |shard| world.sequences(shard).last().unwrap().clone();
    eventually("both checkpoints at the last record", || {
        [SHARD0, SHARD1]
            .iter()
            .all(|shard| world.checkpoint(shard) == E::new(last(shard), 0))
    })
    .await;
    stopper.stop();
    ended(run).await.expect("a graceful stop");

    for (shard, skipped, initial) in [
        (SHARD0, 0, json!(["TRIM_HORIZON", 0])),
        (SHARD1, 10, json!([resume, 2])),
    ] {
        let session = world.scratch.session(shard);
        let init = &session.received("initialize")[0];
        assert_eq!(
            init,
            &json!({"action": "initialize", "shardId": shard, "sequenceNumber": initial[0], "subSequenceNumber": initial[1]}),
            "{shard}: initialize carries the lease's checkpoint"
        );
        // Every record after the checkpoint once, in order, as the daemon writes it.
        let stored = world.kinesis.fake().records(shard);
        let expected: Vec<Value> = stored[skipped..]
            .iter()
            .map(|r| {
                json!({
                    "data": base64::engine::general_purpose::STANDARD.encode(&r.data),
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.sequence_number,
                    "subSequenceNumber": 0,
                })
            })
            .collect();
        let received: Vec<Value> = session
            .records()
            .into_iter()
            .map(|mut r| {
                assert_eq!(r["action"], "record");
                assert!(r["approximateArrivalTimestamp"].is_number(), "{r}");
                let object = r.as_object_mut().unwrap();
                object.remove("action");
                object.remove("approximateArrivalTimestamp");
                r
            })
            .collect();
        assert_eq!(received, expected, "{shard}: each record once, in order");
        // Each null checkpoint stored the batch's last record, answered without an error.
        for (request, answer) in session.checkpoints() {
            assert_eq!(
                answer,
                reply(Value::Null, Value::Null, Value::Null),
                "{request}"
            );
        }
        assert_eq!(world.checkpoint(shard), E::new(last(shard), 0));
        // The stop: shutdownRequested, leaseLost, then stdin closed; the child exits.
        let actions = session.actions();
        let tail = &actions[actions.len() - 2..];
        assert_eq!(tail, ["shutdownRequested", "leaseLost"], "{actions:?}");
        assert_eq!(actions[0], "initialize");
        assert!(
            actions[1..actions.len() - 2]
                .iter()
                .all(|a| a == "processRecords")
        );
        assert!(session.saw_eof(), "{shard}: stdin closed after leaseLost");
        eventually("the child exited", || gone(session.pid)).await;
        assert_eq!(world.lease(shard).lease_owner, None, "{shard}: evicted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_requests_are_judged_and_answered_on_the_wire() {
    let world = World::new("judged", 1);
    world.put(SHARD0, (0..5).map(|i| format!("r{i}"))).await;
    world.assign_open_shards(|_| E::trim_horizon()).await;
    let seqs = world.sequences(SHARD0);
    let past = kcl_protocol::SequenceNumber::synthetic(1 << 40)
        .as_str()
        .to_owned();
    let plan = json!({
        "initialize": [["checkpoint", [null, null]], ["checkpoint", [seqs[0], 0]]],
        "processRecords#1": [
            ["checkpoint", [past, null]],
            ["checkpoint", [seqs[1], -1]],
            ["checkpoint", ["not-a-number", null]],
            ["checkpoint", [seqs[2], null]],
            ["checkpoint", [seqs[1], null]],
            ["checkpoint", [seqs[2], 0]],
        ],
        "leaseLost": [["checkpoint", [null, null]]],
    });
    let (stopper, run) = world.start(world.scratch.children(plan), 100);
    eventually("the first batch answered", || {
        world
            .scratch
            .sessions()
            .first()
            .is_some_and(|s| s.idle() && !s.records().is_empty())
    })
    .await;
    stopper.stop();
    ended(run).await.expect("a graceful stop");

    let session = world.scratch.session(SHARD0);
    assert_eq!(session.records().len(), 5, "one batch of every record");
    let illegal = json!("IllegalArgumentException");
    let invalid = json!("InvalidStateException");
    let expected = vec![
        reply(Value::Null, Value::Null, invalid.clone()),
        reply(json!(seqs[0]), json!(0), invalid.clone()),
        reply(json!(past), Value::Null, illegal.clone()),
        reply(json!(seqs[1]), json!(-1), illegal.clone()),
        reply(json!("not-a-number"), Value::Null, illegal.clone()),
        reply(json!(seqs[2]), Value::Null, Value::Null),
        // Below the last checkpoint.
        reply(json!(seqs[1]), Value::Null, illegal.clone()),
        // Equal to it: accepted, nothing written.
        reply(json!(seqs[2]), json!(0), Value::Null),
        reply(Value::Null, Value::Null, invalid),
    ];
    let replies: Vec<Value> = session.checkpoints().into_iter().map(|(_, r)| r).collect();
    assert_eq!(replies, expected);
    assert_eq!(
        world.checkpoint_history(SHARD0),
        [E::trim_horizon(), E::new(seqs[2].clone(), 0)],
        "the refused requests wrote nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_on_stdout_and_anything_on_stderr_leave_the_protocol_alone() {
    let world = World::new("junk", 1);
    world.put(SHARD0, (0..5).map(|i| format!("r{i}"))).await;
    world.assign_open_shards(|_| E::trim_horizon()).await;
    let junk = json!([
        ["raw", "hello, not JSON"],
        ["raw", ""],
        ["raw", "   "],
        ["raw", "{\"unknown\": true}"],
        // Known messages with an extra key: skipped, so the wrong action is no failure and the
        // checkpoint gets no reply.
        [
            "raw",
            "{\"action\":\"status\",\"responseFor\":\"leaseLost\",\"extra\":1}"
        ],
        [
            "raw",
            "{\"action\":\"checkpoint\",\"sequenceNumber\":null,\"subSequenceNumber\":null,\"extra\":1}"
        ],
        // A valid message of another kind: read and ignored.
        [
            "raw",
            "{\"action\":\"initialize\",\"shardId\":\"x\",\"sequenceNumber\":\"TRIM_HORIZON\",\"subSequenceNumber\":0}"
        ],
        [
            "stderr",
            "{\"action\":\"status\",\"responseFor\":\"leaseLost\"}"
        ],
        ["stderr", "a log line"],
    ]);
    let mut with_checkpoint = junk.as_array().unwrap().clone();
    with_checkpoint.push(json!(["checkpoint", [null, null]]));
    with_checkpoint.extend(junk.as_array().unwrap().iter().cloned());
    let plan = json!({
        "initialize": junk,
        "processRecords": with_checkpoint,
        // Java's readLine ends a line at "\r\n" and at a lone "\r" too (at once: the child
        // then waits for the next action).
        "shutdownRequested": junk.as_array().unwrap().iter().cloned().chain([json!(["status_ending", "\r"])]).collect::<Vec<_>>(),
        "leaseLost": junk.as_array().unwrap().iter().cloned().chain([json!(["status_ending", "\r\n"])]).collect::<Vec<_>>(),
    });
    let (stopper, run) = world.start(world.scratch.children(plan), 100);
    let last = world.sequences(SHARD0).last().unwrap().clone();
    eventually("the checkpoint", || {
        world.checkpoint(SHARD0) == E::new(last.clone(), 0)
    })
    .await;
    stopper.stop();
    ended(run).await.expect("a graceful stop");

    let session = world.scratch.session(SHARD0);
    let actions = session.actions();
    assert_eq!(
        actions,
        [
            "initialize",
            "processRecords",
            "shutdownRequested",
            "leaseLost"
        ],
        "nothing but the actions (no reply to the junk checkpoint)"
    );
    let replies: Vec<Value> = session.checkpoints().into_iter().map(|(_, r)| r).collect();
    assert_eq!(replies, [reply(Value::Null, Value::Null, Value::Null)]);
    assert!(session.saw_eof());
}

/// Two shards whose children follow `plan` (whose entries for shard 1 fail it): the run must
/// end with a `ProcessorExit` of shard 1 (the Java daemon exits 1), after shard 0's child was
/// shut down gracefully, with both leases evicted. Returns the reason.
async fn a_failing_child(world: &World, children: ChildProcesses) -> String {
    world.put(SHARD0, (0..5).map(|i| format!("a{i}"))).await;
    world.put(SHARD1, (0..5).map(|i| format!("b{i}"))).await;
    world.assign_open_shards(|_| E::trim_horizon()).await;
    let (_stopper, run) = world.start(children, 100);
    let reason = processor_exit(ended(run).await, SHARD1);
    for shard in [SHARD0, SHARD1] {
        assert_eq!(world.lease(shard).lease_owner, None, "{shard}: evicted");
    }
    let healthy = world.scratch.session(SHARD0);
    let actions = healthy.actions();
    assert_eq!(actions.first().map(String::as_str), Some("initialize"));
    assert!(healthy.saw_eof(), "shard 0's child was closed: {actions:?}");
    eventually("shard 0's child exited", || gone(healthy.pid)).await;
    reason
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_exits_during_process_records_ends_the_run() {
    let world = World::new("exits", 2);
    let plan = json!({ format!("{SHARD1}/processRecords"): [["exit", 3]] });
    let reason = a_failing_child(&world, world.scratch.children(plan)).await;
    assert!(reason.contains("processRecords"), "{reason}");
    assert!(reason.contains("closed its stdout"), "{reason}");
    let failed = world.scratch.session(SHARD1);
    assert_eq!(failed.actions(), ["initialize", "processRecords"]);
    eventually("the failed child reaped", || gone(failed.pid)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_for_another_action_ends_the_run() {
    let world = World::new("wrong-status", 2);
    let plan = json!({ format!("{SHARD1}/processRecords"): [["status", "initialize"]] });
    let reason = a_failing_child(&world, world.scratch.children(plan)).await;
    assert!(
        reason.contains("answered processRecords with a status for \"initialize\""),
        "{reason}"
    );
    let failed = world.scratch.session(SHARD1);
    assert_eq!(failed.actions(), ["initialize", "processRecords"]);
    // Closed as the daemon closes it: stdin closed, then it exits on its own.
    assert!(failed.saw_eof(), "{:?}", failed.entries);
    eventually("the failed child reaped", || gone(failed.pid)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_that_does_not_exist_ends_the_run() {
    let world = World::new("no-program", 1);
    world.put(SHARD0, (0..5).map(|i| format!("a{i}"))).await;
    world.assign_open_shards(|_| E::trim_horizon()).await;
    let missing = world.scratch.dir.join("no-such-program");
    let children = ChildProcesses::new([missing.display().to_string()]);
    let (_stopper, run) = world.start(children, 100);
    let reason = processor_exit(ended(run).await, SHARD0);
    assert!(reason.contains("cannot start the child"), "{reason}");
    assert!(reason.contains("no-such-program"), "{reason}");
    assert_eq!(world.lease(SHARD0).lease_owner, None, "evicted");
    assert_eq!(world.checkpoint(SHARD0), E::trim_horizon());
}

/// A stop: the child of shard 1 exits on `shutdownRequested`; the run still ends as the stop
/// asked (see the `multilang` module documentation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_exits_on_shutdown_requested_at_a_stop() {
    let world = World::new("failed-shutdown", 2);
    world.put(SHARD0, (0..5).map(|i| format!("a{i}"))).await;
    world.put(SHARD1, (0..5).map(|i| format!("b{i}"))).await;
    world.assign_open_shards(|_| E::trim_horizon()).await;
    let plan = json!({
        "processRecords": [["checkpoint", [null, null]]],
        format!("{SHARD1}/shutdownRequested"): [["exit", 0]],
    });
    let (stopper, run) = world.start(world.scratch.children(plan), 100);
    eventually("both checkpoints", || {
        [SHARD0, SHARD1]
            .iter()
            .all(|s| world.checkpoint(s).sequence_number() == world.sequences(s)[4])
    })
    .await;
    stopper.stop();
    // The stop's result: Ok. The failed shutdownRequested is logged; the leaseLost after it
    // fails (the child is gone) and is logged too, but a stop ends the run anyway (the Java
    // daemon is then in its shutdown hook: its System.exit(1) cannot change the exit status).
    let result = ended(run).await;
    let failed = world.scratch.session(SHARD1);
    assert_eq!(
        failed.actions(),
        ["initialize", "processRecords", "shutdownRequested"]
    );
    eventually("the child reaped", || gone(failed.pid)).await;
    for shard in [SHARD0, SHARD1] {
        assert_eq!(world.lease(shard).lease_owner, None, "{shard}: evicted");
    }
    result.expect("a stop ends Ok");
}

/// A graceful handoff (no stop): the child exits on `shutdownRequested` (logged), then the
/// `leaseLost` that follows fails, and the run ends with a `ProcessorExit` (the daemon exits 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_exits_on_shutdown_requested_at_a_handoff_fails_lease_lost() {
    let world = World::new("failed-handoff", 1);
    world.put(SHARD0, (0..5).map(|i| format!("a{i}"))).await;
    world.assign_open_shards(|_| E::trim_horizon()).await;
    let plan = json!({
        "processRecords": [["checkpoint", [null, null]]],
        "shutdownRequested": [["exit", 0]],
    });
    let (_stopper, run) = world.start(world.scratch.children(plan), 100);
    let last = world.sequences(SHARD0)[4].clone();
    eventually("the checkpoint", || {
        world.checkpoint(SHARD0) == E::new(last.clone(), 0)
    })
    .await;
    let handoff = ops::initiate_graceful_handoff(&world.lease(SHARD0), "java-worker").unwrap();
    world.store.update(Table::Lease, &handoff).await.unwrap();
    let reason = processor_exit(ended(run).await, SHARD0);
    assert!(reason.contains("leaseLost"), "{reason}");
    let failed = world.scratch.session(SHARD0);
    assert_eq!(
        failed.actions(),
        ["initialize", "processRecords", "shutdownRequested"]
    );
    eventually("the child reaped", || gone(failed.pid)).await;
    assert_eq!(
        world.checkpoint(SHARD0),
        E::new(last, 0),
        "the checkpoint kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_silent_past_timeout_in_seconds_is_killed_and_ends_the_run() {
    let world = World::new("timeout", 2);
    // Junk lines are no messages: they do not restart the timer.
    let plan = json!({
        format!("{SHARD1}/processRecords"):
            std::iter::repeat_n([json!(["raw", "still busy"]), json!(["sleep", 0.3])], 10).flatten().collect::<Vec<_>>(),
    });
    let children = world
        .scratch
        .children(plan)
        .with_timeout(Some(Duration::from_secs(1)));
    let started = Instant::now();
    let reason = a_failing_child(&world, children).await;
    assert!(reason.contains("timeoutInSeconds"), "{reason}");
    assert!(reason.contains("processRecords"), "{reason}");
    let killed = world.scratch.session(SHARD1);
    assert!(
        !killed.saw_eof(),
        "killed, not closed: {:?}",
        killed.entries
    );
    assert!(gone(killed.pid), "killed and reaped");
    let processing = killed.received("processRecords");
    assert_eq!(processing.len(), 1);
    // Killed a second after processRecords, well before its 3 s of junk end.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let junk = killed.entries.iter().filter(|e| e.kind == "raw").count();
    assert!(junk < 8, "killed while still writing junk ({junk} lines)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_requests_restart_the_timeout() {
    let world = World::new("keepalive", 1);
    world.put(SHARD0, (0..5).map(|i| format!("a{i}"))).await;
    world.assign_open_shards(|_| E::trim_horizon()).await;
    // 3 s of work, a checkpoint request every 0.5 s: each restarts the 1 s timer.
    let plan = json!({
        "processRecords#1":
            std::iter::repeat_n([json!(["checkpoint", [null, null]]), json!(["sleep", 0.5])], 6).flatten().collect::<Vec<_>>(),
    });
    let children = world
        .scratch
        .children(plan)
        .with_timeout(Some(Duration::from_secs(1)));
    let (stopper, run) = world.start(children, 100);
    eventually("the batch answered", || {
        world
            .scratch
            .sessions()
            .first()
            .is_some_and(|s| s.idle() && !s.records().is_empty())
    })
    .await;
    stopper.stop();
    ended(run).await.expect("not killed: a graceful stop");
    let session = world.scratch.session(SHARD0);
    assert_eq!(
        session.actions(),
        [
            "initialize",
            "processRecords",
            "shutdownRequested",
            "leaseLost"
        ]
    );
    assert_eq!(session.checkpoints().len(), 6);
    let span = session.entries.last().unwrap().time - session.entries.first().unwrap().time;
    assert!(span > 2.5, "the batch took {span} s");
    assert!(session.saw_eof());
    assert_eq!(
        world.checkpoint(SHARD0).sequence_number(),
        world.sequences(SHARD0)[4]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_a_shard_end_the_child_checkpoints_shard_end_and_the_children_start() {
    let world = World::new("shard-end", 1);
    world.put(SHARD0, (0..10).map(|i| format!("p{i}"))).await;
    world.assign_open_shards(|_| E::trim_horizon()).await;
    let plan = json!({"processRecords": [["checkpoint", [null, null]]]});
    let (stopper, run) = world.start(world.scratch.children(plan), 100);
    let last = world.sequences(SHARD0)[9].clone();
    eventually("the parent's checkpoint", || {
        world.checkpoint(SHARD0) == E::new(last.clone(), 0)
    })
    .await;

    let children = world.kinesis.fake().split(SHARD0);
    for child in &children {
        world
            .put(child, (0..5).map(|i| format!("{child}-{i}")))
            .await;
    }
    eventually("both child leases", || {
        children
            .iter()
            .all(|child| world.store.item(Table::Lease, child).is_some())
    })
    .await;
    for child in &children {
        world.assign(child, ME).await;
    }
    eventually("the children's checkpoints", || {
        children
            .iter()
            .all(|child| world.checkpoint(child).sequence_number() == world.sequences(child)[4])
    })
    .await;
    stopper.stop();
    ended(run).await.expect("a graceful stop");

    assert!(world.checkpoint(SHARD0).is_shard_end());
    let parent = world.scratch.session(SHARD0);
    let actions = parent.actions();
    assert_eq!(
        actions.last().map(String::as_str),
        Some("shardEnded"),
        "{actions:?}"
    );
    assert!(parent.saw_eof(), "stdin closed after shardEnded");
    let (request, answer) = parent.checkpoints().pop().unwrap();
    assert_eq!(request["sequenceNumber"], Value::Null);
    assert_eq!(answer, reply(Value::Null, Value::Null, Value::Null));
    let parent_ended = parent
        .entries
        .iter()
        .find(|e| e.kind == "eof")
        .unwrap()
        .time;
    for child in &children {
        let session = world.scratch.session(child);
        assert_eq!(
            session.received("initialize")[0]["sequenceNumber"],
            "TRIM_HORIZON"
        );
        assert!(
            session.entries[0].time > parent_ended,
            "{child} started before its parent's child ended"
        );
        let data: Vec<Value> = session
            .records()
            .iter()
            .map(|r| r["sequenceNumber"].clone())
            .collect();
        assert_eq!(
            data,
            world
                .sequences(child)
                .iter()
                .map(|s| json!(s))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            session.actions().last().map(String::as_str),
            Some("leaseLost"),
            "{child}: stopped gracefully"
        );
    }
}

/// A checkpoint request of the property test, before it is given the shard's sequence numbers.
#[derive(Clone, Debug)]
enum Request {
    /// `sequenceNumber` null (a sub-sequence number with it is ignored).
    Null(Option<i64>),
    /// The `index`-th record of the shard (delivered or not yet), with a sub-sequence number.
    Record(usize, Option<i64>),
    /// A sequence number after every record.
    Past(u64),
    /// A sequence number before every record (after `TRIM_HORIZON`).
    Low,
    /// Not a number.
    Text,
}

const RECORDS: usize = 12;

fn request() -> impl Strategy<Value = Request> {
    let sub = prop_oneof![
        Just(None),
        Just(Some(0)),
        Just(Some(1)),
        Just(Some(-1)),
        Just(Some(-7))
    ];
    prop_oneof![
        1 => sub.clone().prop_map(Request::Null),
        4 => (0..RECORDS, sub).prop_map(|(i, s)| Request::Record(i, s)),
        1 => (1u64..1000).prop_map(Request::Past),
        1 => Just(Request::Low),
        1 => Just(Request::Text),
    ]
}

impl Request {
    fn wire(&self, sequences: &[String]) -> Value {
        let sub = |s: &Option<i64>| s.map_or(Value::Null, |n| json!(n));
        match self {
            Request::Null(s) => json!([null, sub(s)]),
            Request::Record(i, s) => json!([sequences[*i], sub(s)]),
            Request::Past(n) => {
                let last = kcl_protocol::SequenceNumber::new(sequences[RECORDS - 1].clone());
                let index = last.synthetic_index().expect("the fake's sequence numbers");
                json!([
                    kcl_protocol::SequenceNumber::synthetic(index + n).as_str(),
                    null
                ])
            }
            Request::Low => json!(["17", null]),
            Request::Text => json!(["12abc", 0]),
        }
    }
}

/// Compares two sequence numbers given as digits without leading zeros.
fn numeric(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// A (sequence, sub-sequence) position; the model's `None` is `TRIM_HORIZON`, below all.
type Pos = (String, u64);

fn compare(a: &Pos, b: &Pos) -> Ordering {
    numeric(&a.0, &b.0).then(a.1.cmp(&b.1))
}

/// An independent model of the daemon's checkpointer (docs/protocol.md 2.4), written from the rule
/// text rather than from `kcl_protocol::Lease`.
#[derive(Default)]
struct Model {
    last: Option<Pos>,
    delivered: Option<Pos>,
    granted: bool,
    stored: Vec<Pos>,
}

impl Model {
    /// The `error` of the reply to a request.
    fn judge(&mut self, sequence: Option<&str>, sub: Option<i64>) -> Option<&'static str> {
        const ILLEGAL: Option<&str> = Some("IllegalArgumentException");
        if !self.granted {
            return Some("InvalidStateException");
        }
        let target = match sequence {
            None => self.delivered.clone(),
            Some(text) => {
                let sub = sub.unwrap_or(0);
                if sub < 0 || text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                    return ILLEGAL;
                }
                let target = (text.to_owned(), sub as u64);
                let below_last = self
                    .last
                    .as_ref()
                    .is_some_and(|last| compare(&target, last) == Ordering::Less);
                let above_delivered = self
                    .delivered
                    .as_ref()
                    .is_none_or(|delivered| compare(&target, delivered) == Ordering::Greater);
                if below_last || above_delivered {
                    return ILLEGAL;
                }
                Some(target)
            }
        };
        if target != self.last {
            let target = target.expect("something delivered");
            self.stored.push(target.clone());
            self.last = Some(target);
        }
        None
    }
}

/// One case: a child on a shard of 12 records (batches of at most 4) makes `plan`'s requests
/// during the first three batches and `shutdownRequested`.
async fn checkpoint_replies_case(case: u32, plan: Vec<Vec<Request>>) {
    let world = World::new(&format!("property-{case}"), 1);
    world
        .put(SHARD0, (0..RECORDS).map(|i| format!("r{i}")))
        .await;
    world.assign_open_shards(|_| E::trim_horizon()).await;
    let sequences = world.sequences(SHARD0);
    let steps = |requests: &Vec<Request>| -> Value {
        requests
            .iter()
            .map(|r| json!(["checkpoint", r.wire(&sequences)]))
            .collect()
    };
    let wire = json!({
        "processRecords#1": steps(&plan[0]),
        "processRecords#2": steps(&plan[1]),
        "processRecords#3": steps(&plan[2]),
        "shutdownRequested": steps(&plan[3]),
    });
    let (stopper, run) = world.start(world.scratch.children(wire), 4);
    eventually("every record answered", || {
        world
            .scratch
            .sessions()
            .first()
            .is_some_and(|s| s.idle() && s.records().len() == RECORDS)
    })
    .await;
    stopper.stop();
    ended(run).await.expect("a graceful stop");

    // Replay the child's log through the model.
    let session = world.scratch.session(SHARD0);
    let mut model = Model::default();
    let mut pending: Option<Value> = None;
    let mut requests = 0;
    for entry in &session.entries {
        match entry.kind.as_str() {
            "in" => {
                let message = entry.json();
                match message["action"].as_str().unwrap() {
                    "checkpoint" => {
                        let expected = pending.take().expect("a reply to a request");
                        assert_eq!(message, expected, "{plan:?}");
                    }
                    "processRecords" => {
                        for record in message["records"].as_array().unwrap() {
                            let position = (
                                record["sequenceNumber"].as_str().unwrap().to_owned(),
                                record["subSequenceNumber"].as_u64().unwrap(),
                            );
                            if model
                                .delivered
                                .as_ref()
                                .is_none_or(|d| compare(&position, d).is_gt())
                            {
                                model.delivered = Some(position);
                            }
                        }
                        model.granted = true;
                    }
                    "shutdownRequested" => model.granted = true,
                    _ => model.granted = false,
                }
            }
            "out" => {
                let request = entry.json();
                if request["action"] == "checkpoint" {
                    requests += 1;
                    let sequence = request["sequenceNumber"].as_str();
                    let sub = request["subSequenceNumber"].as_i64();
                    let error = model.judge(sequence, sub);
                    pending = Some(reply(
                        request["sequenceNumber"].clone(),
                        request["subSequenceNumber"].clone(),
                        error.map_or(Value::Null, |e| json!(e)),
                    ));
                }
            }
            _ => {}
        }
    }
    assert_eq!(
        requests,
        plan.iter().map(Vec::len).sum::<usize>(),
        "every request made"
    );
    // The table took exactly the model's stored values, never backwards, never past the last
    // record delivered.
    let history = world.checkpoint_history(SHARD0);
    assert_eq!(history[0], E::trim_horizon());
    let stored: Vec<Pos> = history[1..]
        .iter()
        .map(|e| {
            (
                e.sequence_number().to_owned(),
                e.sub_sequence_number() as u64,
            )
        })
        .collect();
    assert_eq!(stored, model.stored, "{plan:?}");
    let largest = (sequences[RECORDS - 1].clone(), 0);
    for pair in stored.windows(2) {
        assert!(compare(&pair[0], &pair[1]).is_lt(), "backwards: {stored:?}");
    }
    for value in &stored {
        assert!(
            compare(value, &largest).is_le(),
            "past the delivered: {value:?}"
        );
    }
}

static CASES: AtomicU32 = AtomicU32::new(0);

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, max_shrink_iters: 20, ..ProptestConfig::default() })]

    /// Random checkpoint requests (before the last checkpoint, inside the batch, past it, null,
    /// negative sub-sequence numbers, not numbers) get exactly the replies of an independent
    /// model of the daemon's checkpointer, and the lease table follows it.
    #[test]
    fn checkpoint_replies_follow_the_daemons_rules(
        plan in proptest::collection::vec(proptest::collection::vec(request(), 0..6), 4),
    ) {
        let case = CASES.fetch_add(1, AtomicOrdering::SeqCst);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(checkpoint_replies_case(case, plan));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_stops_reading_its_stdin_is_killed_at_the_timeout() {
    let world = World::new("not-reading", 1);
    // Batches of 4 records of 30 000 bytes: a processRecords line of about 160 KB, more than
    // a pipe holds.
    world
        .put(
            SHARD0,
            (0..12).map(|i| format!("{i}{}", "x".repeat(30_000))),
        )
        .await;
    world.assign_open_shards(|_| E::trim_horizon()).await;
    // The first batch answered, the child hangs without reading the next.
    let plan = json!({"processRecords#1": [["status", "processRecords"], ["sleep", 60]]});
    let children = world
        .scratch
        .children(plan)
        .with_timeout(Some(Duration::from_secs(1)));
    let (_stopper, run) = world.start(children, 4);
    eventually("the first batch answered", || {
        world
            .scratch
            .sessions()
            .first()
            .is_some_and(|s| s.idle() && !s.records().is_empty())
    })
    .await;
    let answered = Instant::now();
    let reason = processor_exit(ended(run).await, SHARD0);
    assert!(reason.contains("timeoutInSeconds"), "{reason}");
    assert!(
        answered.elapsed() < Duration::from_secs(5),
        "{:?}",
        answered.elapsed()
    );
    let session = world.scratch.session(SHARD0);
    eventually("the child killed", || gone(session.pid)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_does_not_exit_when_its_stdin_closes_is_killed_after_the_exit_wait() {
    let world = World::new("no-exit", 1);
    world.put(SHARD0, (0..5).map(|i| format!("a{i}"))).await;
    world.assign_open_shards(|_| E::trim_horizon()).await;
    // After its leaseLost status the child sleeps instead of reading its stdin to the end.
    let plan = json!({"leaseLost": [["status", "leaseLost"], ["sleep", 60]]});
    let children = world
        .scratch
        .children(plan)
        .exit_wait(Duration::from_millis(1500));
    let (stopper, run) = world.start(children, 100);
    eventually("the batch answered", || {
        world
            .scratch
            .sessions()
            .first()
            .is_some_and(|s| s.idle() && !s.records().is_empty())
    })
    .await;
    let stopped = Instant::now();
    stopper.stop();
    ended(run).await.expect("a graceful stop");
    let session = world.scratch.session(SHARD0);
    eventually("the child killed", || gone(session.pid)).await;
    let took = stopped.elapsed();
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(6),
        "killed after the exit wait: {took:?}"
    );
    assert!(!session.saw_eof(), "it never read its stdin's end");
    assert_eq!(
        session.actions().last().map(String::as_str),
        Some("leaseLost")
    );
}

/// docs/protocol.md 2.4: a child that does not checkpoint at `shardEnded` leaves the shard
/// unfinished: its checkpoint stays, the children's leases never start a process (the Java
/// daemon's retry only logs "already shutdown"); the stop still ends the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_end_without_a_checkpoint_never_starts_the_children() {
    let world = World::new("no-shard-end", 1);
    world.put(SHARD0, (0..5).map(|i| format!("p{i}"))).await;
    world.assign_open_shards(|_| E::trim_horizon()).await;
    let plan = json!({"processRecords": [["checkpoint", [null, null]]], "shardEnded": []});
    let (stopper, run) = world.start(world.scratch.children(plan), 100);
    let last = E::new(world.sequences(SHARD0)[4].clone(), 0);
    eventually("the parent's checkpoint", || {
        world.checkpoint(SHARD0) == last
    })
    .await;
    let children = world.kinesis.fake().split(SHARD0);
    eventually("both child leases", || {
        children
            .iter()
            .all(|child| world.store.item(Table::Lease, child).is_some())
    })
    .await;
    for child in &children {
        world.assign(child, ME).await;
    }
    eventually("shardEnded answered", || {
        world.scratch.session(SHARD0).saw_eof()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stopper.stop();
    ended(run).await.expect("a graceful stop");
    assert_eq!(world.checkpoint(SHARD0), last, "no SHARD_END");
    let parent = world.scratch.session(SHARD0);
    assert_eq!(
        parent.actions().last().map(String::as_str),
        Some("shardEnded")
    );
    let at_shard_end: Vec<&Entry> = parent
        .entries
        .iter()
        .skip_while(|e| e.action().as_deref() != Some("shardEnded"))
        .filter(|e| e.kind == "out" && e.text.contains("checkpoint"))
        .collect();
    assert!(at_shard_end.is_empty(), "{at_shard_end:?}");
    for child in &children {
        assert!(
            world.scratch.sessions_of(child).is_empty(),
            "{child} started"
        );
        assert_eq!(world.checkpoint(child), E::trim_horizon());
    }
}

/// A lease table whose checkpoint writes take `delay` (a slow DynamoDB) and fail with
/// `failures` first, one each.
struct SlowCheckpoints {
    inner: Arc<MemoryStore>,
    delay: Duration,
    failures: std::sync::Mutex<Vec<kcl_lease::StoreError>>,
}

impl LeaseStore for SlowCheckpoints {
    async fn get(
        &self,
        table: Table,
        key: &str,
        consistent: bool,
    ) -> Result<Option<kcl_lease::Item>, kcl_lease::StoreError> {
        self.inner.get(table, key, consistent).await
    }

    async fn scan(&self, table: Table) -> Result<Vec<kcl_lease::Item>, kcl_lease::StoreError> {
        self.inner.scan(table).await
    }

    async fn query_owner(&self, owner: &str) -> Result<Vec<String>, kcl_lease::StoreError> {
        self.inner.query_owner(owner).await
    }

    async fn update(
        &self,
        table: Table,
        write: &kcl_lease::ops::Write,
    ) -> Result<kcl_lease::Item, kcl_lease::UpdateError> {
        if table == Table::Lease && write.update.touched().contains(&"checkpoint") {
            tokio::time::sleep(self.delay).await;
            let failure = {
                let mut failures = self.failures.lock().unwrap();
                (!failures.is_empty()).then(|| failures.remove(0))
            };
            if let Some(error) = failure {
                return Err(kcl_lease::UpdateError::Store(error));
            }
        }
        self.inner.update(table, write).await
    }

    async fn delete(
        &self,
        table: Table,
        delete: &kcl_lease::ops::Delete,
    ) -> Result<Option<kcl_lease::Item>, kcl_lease::UpdateError> {
        self.inner.delete(table, delete).await
    }
}

/// The daemon restarts the timer when it starts reading the next message, after the
/// checkpoint was written and answered: a slow checkpoint write is not the child's silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_checkpoint_write_does_not_count_against_the_timeout() {
    let world = World::new("slow-checkpoint", 1);
    world.put(SHARD0, (0..5).map(|i| format!("a{i}"))).await;
    world.assign_open_shards(|_| E::trim_horizon()).await;
    let store = Arc::new(SlowCheckpoints {
        inner: world.store.clone(),
        delay: Duration::from_millis(1500),
        failures: Default::default(),
    });
    let plan = json!({"processRecords": [["checkpoint", [null, null]]]});
    let children = world
        .scratch
        .children(plan)
        .with_timeout(Some(Duration::from_secs(1)));
    let supervisor = Supervisor::new(store, world.kinesis.clone(), config(100), children);
    let stopper = supervisor.stopper();
    let run = tokio::spawn(supervisor.run());
    let last = E::new(world.sequences(SHARD0)[4].clone(), 0);
    eventually("the checkpoint", || world.checkpoint(SHARD0) == last).await;
    eventually("the batch answered", || {
        assert!(!run.is_finished(), "the run ended");
        world.scratch.session(SHARD0).idle()
    })
    .await;
    stopper.stop();
    ended(run).await.expect("not killed: a graceful stop");
    let session = world.scratch.session(SHARD0);
    assert_eq!(
        session.checkpoints()[0].1,
        reply(Value::Null, Value::Null, Value::Null)
    );
    assert!(session.saw_eof());
}

/// KPL aggregates: each user record arrives with the Kinesis record's sequence number and its
/// own sub-sequence number; a checkpoint inside the aggregate is stored with it, and a restart
/// from there begins in the middle of the aggregate (docs/protocol.md 2.7), `initialize` carrying
/// the sub-sequence number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregate_is_delivered_by_sub_record_and_resumed_in_its_middle() {
    let world = World::new("aggregate", 1);
    world.put(SHARD0, ["before".to_owned()]).await;
    let mut builder = kcl_kpl::AggregateBuilder::default();
    for i in 0..4 {
        builder
            .push(&format!("user-{i}"), None, format!("sub-{i}").as_bytes())
            .unwrap();
    }
    let aggregate = builder.finish().unwrap();
    world
        .kinesis
        .fake()
        .put_records(
            &StreamRef::name(STREAM),
            &[Record::new(aggregate.partition_key, aggregate.data)],
        )
        .await
        .unwrap();
    world.put(SHARD0, ["after".to_owned()]).await;
    world.assign_open_shards(|_| E::trim_horizon()).await;
    let sequences = world.sequences(SHARD0);
    let (before, aggregated, after) = (&sequences[0], &sequences[1], &sequences[2]);
    let wire = |r: &Value| {
        (
            r["sequenceNumber"].as_str().unwrap().to_owned(),
            r["subSequenceNumber"].as_u64().unwrap(),
            r["partitionKey"].as_str().unwrap().to_owned(),
            base64::engine::general_purpose::STANDARD
                .decode(r["data"].as_str().unwrap())
                .unwrap(),
        )
    };

    let plan = json!({"processRecords#1": [["checkpoint", [aggregated, 2]]]});
    let (stopper, run) = world.start(world.scratch.children(plan.clone()), 100);
    eventually("the batch answered", || {
        world
            .scratch
            .sessions()
            .first()
            .is_some_and(|s| s.idle() && !s.records().is_empty())
    })
    .await;
    stopper.stop();
    ended(run).await.expect("a graceful stop");
    let first = world.scratch.session(SHARD0);
    let mut expected = vec![(
        before.clone(),
        0,
        "key-before-é".to_owned(),
        b"\xff\x00\x00before".to_vec(),
    )];
    for i in 0..4 {
        expected.push((
            aggregated.clone(),
            i,
            format!("user-{i}"),
            format!("sub-{i}").into_bytes(),
        ));
    }
    expected.push((
        after.clone(),
        0,
        "key-after-é".to_owned(),
        b"\xff\x00\x00after".to_vec(),
    ));
    let received: Vec<_> = first.records().iter().map(wire).collect();
    assert_eq!(received, expected);
    assert_eq!(
        first.checkpoints()[0].1,
        reply(json!(aggregated), json!(2), Value::Null)
    );
    assert_eq!(world.checkpoint(SHARD0), E::new(aggregated.clone(), 2));

    // A second worker run, from the checkpoint inside the aggregate.
    world.assign(SHARD0, ME).await;
    let (stopper, run) = world.start(world.scratch.children(json!({})), 100);
    eventually("the second child's batch answered", || {
        let all = world.scratch.sessions_of(SHARD0);
        all.len() == 2 && all[1].idle() && !all[1].records().is_empty()
    })
    .await;
    stopper.stop();
    ended(run).await.expect("a graceful stop");
    let second = world.scratch.sessions_of(SHARD0).remove(1);
    assert_eq!(
        second.received("initialize")[0],
        json!({"action": "initialize", "shardId": SHARD0, "sequenceNumber": aggregated, "subSequenceNumber": 2})
    );
    let received: Vec<_> = second.records().iter().map(wire).collect();
    assert_eq!(
        received,
        expected[4..],
        "from the aggregate's sub-record 3 on"
    );
}

/// A failed checkpoint write is answered with the Java exception's name and judged again when
/// the child retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_checkpoint_writes_are_answered_with_their_exception() {
    let world = World::new("store-failures", 1);
    world.put(SHARD0, (0..5).map(|i| format!("a{i}"))).await;
    world.assign_open_shards(|_| E::trim_horizon()).await;
    let store = Arc::new(SlowCheckpoints {
        inner: world.store.clone(),
        delay: Duration::ZERO,
        failures: std::sync::Mutex::new(vec![
            kcl_lease::StoreError::Throttled("slow down".into()),
            kcl_lease::StoreError::Unavailable("503".into()),
        ]),
    });
    let attempt = json!(["checkpoint", [null, null]]);
    let plan = json!({"processRecords#1": [attempt.clone(), attempt.clone(), attempt]});
    let children = world.scratch.children(plan);
    let supervisor = Supervisor::new(store, world.kinesis.clone(), config(100), children);
    let stopper = supervisor.stopper();
    let run = tokio::spawn(supervisor.run());
    eventually("the batch answered", || {
        world
            .scratch
            .sessions()
            .first()
            .is_some_and(|s| s.idle() && !s.records().is_empty())
    })
    .await;
    stopper.stop();
    ended(run).await.expect("a graceful stop");
    let replies: Vec<Value> = world
        .scratch
        .session(SHARD0)
        .checkpoints()
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    assert_eq!(
        replies,
        [
            reply(Value::Null, Value::Null, json!("ThrottlingException")),
            reply(
                Value::Null,
                Value::Null,
                json!("KinesisClientLibDependencyException")
            ),
            reply(Value::Null, Value::Null, Value::Null),
        ]
    );
    assert_eq!(
        world.checkpoint_history(SHARD0),
        [
            E::trim_horizon(),
            E::new(world.sequences(SHARD0)[4].clone(), 0)
        ]
    );
}

/// A lease taken by another worker while the child works: its checkpoint gets
/// `ShutdownException` and nothing is written; then `leaseLost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_after_the_lease_was_taken_gets_shutdown_exception() {
    let world = World::new("taken", 1);
    world.put(SHARD0, (0..5).map(|i| format!("a{i}"))).await;
    world.assign_open_shards(|_| E::trim_horizon()).await;
    let plan = json!({
        "processRecords#1": [["sleep", 1.0], ["checkpoint", [null, null]]],
        "leaseLost": [["checkpoint", [null, null]]],
    });
    let (stopper, run) = world.start(world.scratch.children(plan), 100);
    eventually("the batch received", || {
        world
            .scratch
            .sessions()
            .first()
            .is_some_and(|s| !s.records().is_empty())
    })
    .await;
    world.assign(SHARD0, "java-worker").await;
    let taken_at = world.store.write_count();
    eventually("leaseLost", || {
        world
            .scratch
            .session(SHARD0)
            .actions()
            .last()
            .map(String::as_str)
            == Some("leaseLost")
    })
    .await;
    stopper.stop();
    ended(run).await.expect("a graceful stop");
    let session = world.scratch.session(SHARD0);
    let replies: Vec<Value> = session.checkpoints().into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        replies,
        [
            reply(Value::Null, Value::Null, json!("ShutdownException")),
            reply(Value::Null, Value::Null, json!("InvalidStateException")),
        ]
    );
    assert_eq!(
        session.actions(),
        ["initialize", "processRecords", "leaseLost"]
    );
    assert!(session.saw_eof());
    let late: Vec<_> = world.store.writes()[taken_at..]
        .iter()
        .filter(|w| w.key == SHARD0 && w.landed())
        .cloned()
        .collect();
    assert!(late.is_empty(), "{late:?}");
    assert_eq!(world.checkpoint(SHARD0), E::trim_horizon());
    assert_eq!(
        world.lease(SHARD0).lease_owner.as_deref(),
        Some("java-worker")
    );
}

/// A status for another action answering `shutdownRequested` fails only that action (logged, as
/// the daemon does): at a graceful handoff the transfer and `leaseLost` follow, and the worker
/// goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_status_for_shutdown_requested_is_only_logged() {
    let world = World::new("wrong-shutdown-status", 1);
    world.put(SHARD0, (0..5).map(|i| format!("a{i}"))).await;
    world.assign_open_shards(|_| E::trim_horizon()).await;
    let plan = json!({
        "processRecords": [["checkpoint", [null, null]]],
        "shutdownRequested": [["status", "processRecords"]],
    });
    let (stopper, run) = world.start(world.scratch.children(plan), 100);
    let last = E::new(world.sequences(SHARD0)[4].clone(), 0);
    eventually("the checkpoint", || world.checkpoint(SHARD0) == last).await;
    let handoff = ops::initiate_graceful_handoff(&world.lease(SHARD0), "java-worker").unwrap();
    world.store.update(Table::Lease, &handoff).await.unwrap();
    eventually("the child closed", || {
        world.scratch.session(SHARD0).saw_eof()
    })
    .await;
    assert!(!run.is_finished(), "the worker goes on");
    let session = world.scratch.session(SHARD0);
    assert_eq!(
        session.actions(),
        [
            "initialize",
            "processRecords",
            "shutdownRequested",
            "leaseLost"
        ]
    );
    let lease = world.lease(SHARD0);
    assert_eq!(lease.lease_owner.as_deref(), Some("java-worker"));
    assert_eq!(lease.checkpoint_owner, None, "transferred");
    stopper.stop();
    ended(run).await.expect("a graceful stop");
}
