//! `kcl run`'s checkpoint file: one run at a time per file (a lock), and a damaged file is
//! refused on load, naming the shard and the value.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{kcl, scripted_child, temp_dir, text};

/// `kcl run ARGS -- scripted_child good LOG` in `dir`, not started yet.
fn scripted_run(dir: &Path, args: &[&str], log: &Path) -> Command {
    let mut command = kcl();
    command
        .arg("run")
        .args(args)
        .arg("--")
        .arg(scripted_child())
        .arg("good")
        .arg(log)
        .current_dir(dir);
    command
}

fn run_to_end(dir: &Path, args: &[&str], log: &Path) -> Output {
    scripted_run(dir, args, log)
        .stdin(Stdio::null())
        .output()
        .expect("kcl runs")
}

/// `kcl run --checkpoints cp.json ARGS --input INPUT -- scripted_child good LOG` in `dir`, to its
/// end.
fn run_on_cp_json(dir: &Path, input: &Path, args: &[&str], log: &Path) -> Output {
    let mut all = vec!["--checkpoints", "cp.json"];
    all.extend_from_slice(args);
    all.extend(["--input", input.to_str().unwrap()]);
    run_to_end(dir, &all, log)
}

fn lines(range: std::ops::RangeInclusive<usize>) -> String {
    range.map(|i| format!("line {i}\n")).collect()
}

fn lines_file(dir: &Path, name: &str, count: usize) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines(1..=count)).unwrap();
    path
}

/// The summary row of a shard: the whitespace-separated cells.
fn row(stdout: &str, shard: &str) -> Vec<String> {
    stdout
        .lines()
        .find(|line| line.starts_with(shard))
        .unwrap_or_else(|| panic!("no row for {shard} in:\n{stdout}"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Waits until `path` holds `needle` (or fails the test after 30 s).
fn wait_for(path: &Path, needle: &str, child: &mut Child) {
    let start = Instant::now();
    loop {
        if std::fs::read_to_string(path).is_ok_and(|text| text.contains(needle)) {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "kcl run ended ({status}) before {} held {needle}",
                path.display()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} never held {needle}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_second_run_on_the_same_checkpoint_file_is_refused_and_the_first_keeps_its_checkpoints() {
    let dir = temp_dir("run-lock");
    let checkpoints = dir.join("cp.json");
    let log_a = dir.join("a.log");
    // Run A reads its records from stdin, so it lasts as long as the test keeps stdin open.
    let mut a = scripted_run(
        &dir,
        &[
            "--checkpoints",
            "cp.json",
            "--batch-size",
            "5",
            "--linger-ms",
            "20",
        ],
        &log_a,
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("kcl runs");
    let mut stdin = a.stdin.take().unwrap();
    stdin.write_all(lines(1..=10).as_bytes()).unwrap();
    stdin.flush().unwrap();
    wait_for(&checkpoints, &kcl_cli::run::sequence_number(9), &mut a);
    let before = std::fs::read(&checkpoints).unwrap();

    // Run B, even with --fresh, refuses at once and leaves the file alone.
    let three = lines_file(&dir, "three.txt", 3);
    let started = Instant::now();
    let b = run_on_cp_json(&dir, &three, &["--fresh"], &dir.join("b.log"));
    let (stdout, stderr) = text(&b);
    assert_eq!(b.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "another kcl run is using cp.json (lock cp.json.lock held by pid {})",
            a.id()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--checkpoints"), "a hint: {stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused at once"
    );
    assert!(
        !dir.join("b.log").exists(),
        "B started no child: {stdout}\n{stderr}"
    );
    assert_eq!(std::fs::read(&checkpoints).unwrap(), before);

    // A goes on and ends normally, with every record checkpointed.
    stdin.write_all(lines(11..=20).as_bytes()).unwrap();
    drop(stdin);
    let a = a.wait_with_output().unwrap();
    let (stdout, stderr) = text(&a);
    assert!(a.status.success(), "{stdout}\n{stderr}");
    assert_eq!(row(&stdout, "shardId-000000000000")[1], "20", "{stdout}");
    let file = std::fs::read_to_string(&checkpoints).unwrap();
    assert!(
        file.contains(&kcl_cli::run::sequence_number(19)),
        "A's last checkpoint: {file}"
    );

    // A third run over 25 lines resumes after A's 20 and delivers only the last 5.
    let input = lines_file(&dir, "all.txt", 25);
    let log_c = dir.join("c.log");
    let c = run_on_cp_json(&dir, &input, &[], &log_c);
    let (stdout, stderr) = text(&c);
    assert!(c.status.success(), "{stdout}\n{stderr}");
    let cells = row(&stdout, "shardId-000000000000");
    assert_eq!(cells[1], "5", "{stdout}");
    assert_eq!(cells[2], "20", "{stdout}");
    let records: Vec<String> = std::fs::read_to_string(&log_c)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("record shardId-000000000000 "))
        .map(str::to_string)
        .collect();
    let expected: Vec<String> = (21..=25).map(|i| format!("line {i}")).collect();
    assert_eq!(records, expected);
}

fn refused_checkpoint(stored: &str) -> (String, PathBuf) {
    let dir = temp_dir("run-damaged");
    let checkpoints = dir.join("cp.json");
    std::fs::write(
        &checkpoints,
        format!(r#"{{"version":1,"shards":1,"checkpoints":{{"shardId-000000000000":{stored}}}}}"#),
    )
    .unwrap();
    let input = lines_file(&dir, "input.txt", 3);
    let log = dir.join("child.log");
    let output = run_on_cp_json(&dir, &input, &[], &log);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(!log.exists(), "no child was started: {stdout}\n{stderr}");
    assert!(stderr.contains("cp.json"), "names the file: {stderr}");
    assert!(
        stderr.contains("shardId-000000000000"),
        "names the shard: {stderr}"
    );
    assert!(stderr.contains("--fresh"), "the hint: {stderr}");
    (stderr, checkpoints)
}

#[test]
fn a_stored_sequence_number_that_is_not_a_number_is_refused_on_load() {
    let (stderr, _) =
        refused_checkpoint(r#"{"sequenceNumber":"../../etc/passwd","subSequenceNumber":0}"#);
    assert!(stderr.contains(r#""../../etc/passwd""#), "{stderr}");
    assert!(
        stderr.contains("SHARD_END"),
        "lists the sentinels: {stderr}"
    );
}

#[test]
fn a_negative_stored_sub_sequence_number_is_refused_on_load() {
    let (stderr, _) = refused_checkpoint(r#"{"sequenceNumber":"12","subSequenceNumber":-5}"#);
    assert!(stderr.contains("subSequenceNumber -5"), "{stderr}");
}

#[test]
fn a_checkpoint_of_a_shard_the_run_does_not_have_is_refused_on_load() {
    let dir = temp_dir("run-damaged-shard");
    std::fs::write(
        dir.join("cp.json"),
        r#"{"version":1,"shards":1,"checkpoints":{"shardId-000000000007":{"sequenceNumber":"12","subSequenceNumber":0}}}"#,
    )
    .unwrap();
    let input = lines_file(&dir, "input.txt", 3);
    let output = run_on_cp_json(&dir, &input, &[], &dir.join("child.log"));
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("shardId-000000000007"), "{stderr}");
    assert!(stderr.contains("--fresh"), "{stderr}");
}

#[test]
fn sentinels_and_sequence_numbers_are_accepted_on_load() {
    let dir = temp_dir("run-sentinels");
    std::fs::write(
        dir.join("cp.json"),
        r#"{"version":1,"shards":2,"checkpoints":{
            "shardId-000000000000":{"sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0},
            "shardId-000000000001":{"sequenceNumber":"SHARD_END","subSequenceNumber":0}}}"#,
    )
    .unwrap();
    let input = lines_file(&dir, "input.txt", 6);
    let output = run_on_cp_json(&dir, &input, &["--shards", "2"], &dir.join("child.log"));
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
}
