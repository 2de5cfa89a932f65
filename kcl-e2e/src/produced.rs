//! The SDK's producer feeding a scenario (scenario 10, formerly scripts/e2e/producer.py):
//! `kcl produce --aggregate --ledger FILE` started in the background ([`produce`]), its ledger
//! files followed as they grow into a [`Ledger`] ([`Follower`], [`Produced`]), its closing
//! `report:` line read ([`report_of`]), and the lease table sampled for the greatest numeric
//! checkpoint of each shard ([`CheckpointSampler`]).
//!
//! A ledger line is one JSON object per record taken: `data`, `partition_key`, `status`
//! (`delivered`, `failed`, `unsent`, `in_doubt`), and for a delivered record `shard_id`,
//! `sequence_number`, `sub_sequence_number` (its index in an aggregate, `null` when it went
//! alone: 0 for the KCL) and `maybe_duplicated`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use kcl_protocol::Position;

use crate::emulators::Emulators;
use crate::error::{Error, Result};
use crate::leases::LeaseTable;
use crate::ledger::{Ledger, Put};
use crate::process::Proc;
use crate::settings::{REGION, Settings};

/// One `kcl produce` run: its name (in file names), records per second, partition keys and
/// seconds.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// `dense`, `sparse`: in the ledger and log file names.
    pub name: &'static str,
    /// `--rate`.
    pub rate: u32,
    /// `--keys`.
    pub keys: u32,
    /// `--duration` (seconds).
    pub duration: u64,
    /// `--size` (bytes per record).
    pub size: u32,
}

/// Starts `kcl produce --aggregate --ledger <folder>/ledger-<name>.jsonl` as `plan` says, in
/// `folder`, without credentials in its environment (the tool's dummy ones for an endpoint):
/// (the process, the ledger file, its log).
pub fn produce(
    settings: &Settings,
    emulators: &Emulators,
    stream: &str,
    folder: &Path,
    plan: Plan,
) -> Result<(Proc, PathBuf, PathBuf)> {
    let ledger = folder.join(format!("ledger-{}.jsonl", plan.name));
    let log = folder.join(format!("kcl-produce-{}.log", plan.name));
    let mut command = Command::new(settings.kcl()?);
    command
        .args(["produce", "--stream", stream, "--endpoint"])
        .arg(emulators.kinesis_endpoint())
        .args(["--region", REGION, "--aggregate", "--ledger"])
        .arg(&ledger)
        .args(["--rate", &plan.rate.to_string()])
        .args(["--keys", &plan.keys.to_string()])
        .args(["--size", &plan.size.to_string()])
        .args(["--duration", &plan.duration.to_string()])
        .args(["--progress", "2", "--shutdown-timeout", "20"])
        .current_dir(folder)
        .env_clear()
        .envs(
            settings
                .process_env()
                .into_iter()
                .filter(|(k, _)| k != "AWS_ACCESS_KEY_ID" && k != "AWS_SECRET_ACCESS_KEY"),
        );
    let proc = Proc::spawn(&format!("kcl-produce-{}", plan.name), &mut command, &log)?;
    Ok((proc, ledger, log))
}

/// The numbers of the `kcl produce: report: key=value ...` line of a log (empty if none).
pub fn report_of(log: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix("kcl produce: report: "))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// What the ledger files said so far: the delivered records in [`Produced::ledger`] (a record
/// that went alone has sub-sequence number 0, as the KCL gives it), the others by status.
#[derive(Debug, Default)]
pub struct Produced {
    /// The delivered records.
    pub ledger: Ledger,
    /// payload → ledger line, for the records not delivered (failed, unsent, in doubt).
    pub undelivered: BTreeMap<String, serde_json::Value>,
    /// Payloads the producer said may be stored twice.
    pub maybe_duplicated: BTreeSet<String>,
    /// Payloads delivered inside an aggregate.
    pub in_aggregate: BTreeSet<String>,
    /// Lines that were not a ledger line.
    pub bad_lines: Vec<String>,
    offsets: BTreeMap<PathBuf, u64>,
}

impl Produced {
    /// Follows `paths` (they may not exist yet), filling `ledger`.
    pub fn new(paths: &[PathBuf], ledger: Ledger) -> Produced {
        Produced {
            ledger,
            offsets: paths.iter().map(|p| (p.clone(), 0)).collect(),
            ..Produced::default()
        }
    }

    /// Reads the whole lines added to the files since the last call.
    pub fn refresh(&mut self) {
        let paths: Vec<(PathBuf, u64)> =
            self.offsets.iter().map(|(p, o)| (p.clone(), *o)).collect();
        for (path, offset) in paths {
            let Ok(mut file) = std::fs::File::open(&path) else {
                continue;
            };
            let mut chunk = Vec::new();
            if file.seek(SeekFrom::Start(offset)).is_err() || file.read_to_end(&mut chunk).is_err()
            {
                continue;
            }
            let end = chunk.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            self.offsets.insert(path, offset + end as u64);
            for raw in chunk[..end].split(|&b| b == b'\n') {
                if !raw.is_empty() {
                    self.take(&String::from_utf8_lossy(raw));
                }
            }
        }
    }

    fn take(&mut self, text: &str) {
        let line: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) => {
                self.bad_lines.push(text.to_owned());
                return;
            }
        };
        let (Some(payload), Some(status)) = (line["data"].as_str(), line["status"].as_str()) else {
            self.bad_lines.push(text.to_owned());
            return;
        };
        let payload = payload.to_owned();
        if status != "delivered" {
            self.undelivered.insert(payload, line);
            return;
        }
        let sub = line["sub_sequence_number"].as_u64();
        let (Some(shard), Some(sequence), Some(key)) = (
            line["shard_id"].as_str(),
            line["sequence_number"].as_str(),
            line["partition_key"].as_str(),
        ) else {
            self.bad_lines.push(text.to_owned());
            return;
        };
        if sub.is_some() {
            self.in_aggregate.insert(payload.clone());
        }
        if line["maybe_duplicated"].as_bool() == Some(true) {
            self.maybe_duplicated.insert(payload.clone());
        }
        self.ledger.add(Put {
            payload,
            partition_key: key.to_owned(),
            shard: shard.to_owned(),
            position: Position::new(sequence, sub.unwrap_or(0)),
        });
    }
}

/// A thread refreshing a [`Produced`] every 200 ms, so that waits and the checkpoint audit see
/// the records as the producers report them.
#[derive(Debug)]
pub struct Follower {
    produced: Arc<Mutex<Produced>>,
    halt: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Follower {
    /// Starts following `paths` into a new ledger.
    pub fn start(paths: &[PathBuf]) -> Follower {
        let produced = Arc::new(Mutex::new(Produced::new(paths, Ledger::new())));
        let halt = Arc::new(AtomicBool::new(false));
        let (shared, stop) = (produced.clone(), halt.clone());
        let thread = std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                shared.lock().unwrap_or_else(|p| p.into_inner()).refresh();
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Follower {
            produced,
            halt,
            thread: Some(thread),
        }
    }

    /// The ledger it fills (shared).
    pub fn ledger(&self) -> Ledger {
        self.lock().ledger.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Produced> {
        self.produced.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops following after a last read; what the files said.
    pub fn stop(mut self) -> Result<Produced> {
        self.halt.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .map_err(|_| Error::msg("the ledger follower panicked"))?;
        }
        let mut produced = std::mem::take(&mut *self.lock());
        produced.refresh();
        Ok(produced)
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.halt.store(true, Ordering::SeqCst);
    }
}

/// Samples the lease table every 300 ms: the greatest numeric checkpoint seen for each shard
/// (to show a parent's last one before `SHARD_END`, when a sample caught it).
#[derive(Debug)]
pub struct CheckpointSampler {
    seen: Arc<Mutex<BTreeMap<String, Position>>>,
    halt: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CheckpointSampler {
    /// Starts sampling `table`.
    pub fn start(table: &LeaseTable) -> CheckpointSampler {
        let table = table.clone();
        let seen: Arc<Mutex<BTreeMap<String, Position>>> = Arc::default();
        let halt = Arc::new(AtomicBool::new(false));
        let (shared, stop) = (seen.clone(), halt.clone());
        let thread = std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if let Ok(checkpoints) = table.checkpoints() {
                    let mut seen = shared.lock().unwrap_or_else(|p| p.into_inner());
                    for (shard, cp) in checkpoints {
                        if let Some(position) = cp.position()
                            && seen.get(&shard).is_none_or(|p| position > *p)
                        {
                            seen.insert(shard, position);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        CheckpointSampler {
            seen,
            halt,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the greatest numeric checkpoint seen per shard.
    pub fn stop(mut self) -> BTreeMap<String, Position> {
        self.halt.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Drop for CheckpointSampler {
    fn drop(&mut self) {
        self.halt.store(true, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_whole_lines_by_status() {
        let dir = std::env::temp_dir().join(format!("kcl-e2e-produced-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ledger.jsonl");
        let lines = [
            r#"{"status":"delivered","record":1,"partition_key":"key-1","data":"a","shard_id":"shardId-000000000001","sequence_number":"4959","sub_sequence_number":3,"attempts":1,"maybe_duplicated":false}"#,
            r#"{"status":"delivered","record":2,"partition_key":"key-2","data":"b","shard_id":"shardId-000000000000","sequence_number":"4960","sub_sequence_number":null,"attempts":2,"maybe_duplicated":true}"#,
            r#"{"status":"unsent","record":3,"partition_key":"key-3","data":"c","reason":"shutdown","attempts":0}"#,
            "not json",
        ];
        // The last line is not finished yet: it is read on the next refresh only.
        std::fs::write(&path, format!("{}\n{}\n{}", lines[0], lines[1], lines[2])).unwrap();
        let mut produced = Produced::new(std::slice::from_ref(&path), Ledger::new());
        produced.refresh();
        assert_eq!(produced.ledger.len(), 2);
        assert!(produced.undelivered.is_empty());
        let a = &produced.ledger.snapshot()["a"];
        assert_eq!(a.position, Position::new("4959", 3));
        assert_eq!(
            produced.ledger.snapshot()["b"].position,
            Position::new("4960", 0)
        );
        assert_eq!(produced.in_aggregate, BTreeSet::from(["a".to_owned()]));
        assert_eq!(produced.maybe_duplicated, BTreeSet::from(["b".to_owned()]));
        std::fs::write(
            &path,
            format!("{}\n{}\n{}\n{}\n", lines[0], lines[1], lines[2], lines[3]),
        )
        .unwrap();
        produced.refresh();
        assert_eq!(produced.ledger.len(), 2);
        assert_eq!(produced.undelivered.keys().collect::<Vec<_>>(), ["c"]);
        assert_eq!(produced.bad_lines, ["not json"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn report_line() {
        let dir = std::env::temp_dir().join(format!("kcl-e2e-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("produce.log");
        std::fs::write(
            &log,
            "progress\nkcl produce: report: accepted=5 delivered=4 aggregated=2\n",
        )
        .unwrap();
        let report = report_of(&log);
        assert_eq!(report.get("delivered").map(String::as_str), Some("4"));
        assert_eq!(report.len(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
