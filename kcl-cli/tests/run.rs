//! `kcl run` against the workspace's examples and against scripted children that break the
//! protocol on purpose (the `scripted_child` program of the `test-support` crate).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use common::{example, kcl, scripted_child, temp_dir, text};

/// Runs `kcl run ARGS -- CHILD...` in `dir`.
fn run(dir: &Path, args: &[&str], child: &[&str]) -> Output {
    kcl()
        .arg("run")
        .args(args)
        .arg("--")
        .args(child)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("kcl runs")
}

/// Runs `kcl run --input INPUT ARGS -- CHILD` in `dir`.
fn run_on(dir: &Path, input: &Path, args: &[&str], child: &Path) -> Output {
    let mut all = vec!["--input", input.to_str().unwrap()];
    all.extend_from_slice(args);
    run(dir, &all, &[child.to_str().unwrap()])
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

fn scripted(mode: &str, log: &Path) -> Vec<String> {
    vec![
        scripted_child().display().to_string(),
        mode.into(),
        log.display().to_string(),
    ]
}

/// Runs `kcl run ARGS -- scripted_child MODE LOG` in `dir`.
fn run_scripted(dir: &Path, args: &[&str], mode: &str, log: &Path) -> Output {
    let child = scripted(mode, log);
    run(
        dir,
        args,
        &child.iter().map(String::as_str).collect::<Vec<_>>(),
    )
}

fn lines_file(dir: &Path, name: &str, count: usize) -> PathBuf {
    let path = dir.join(name);
    let mut text = String::new();
    for i in 1..=count {
        text.push_str(&format!("line {i}\n"));
    }
    std::fs::write(&path, text).unwrap();
    path
}

fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn word_count_runs_to_the_end_of_two_shards() {
    let word_count = example("word_count");
    let dir = temp_dir("run-wc");
    let input = lines_file(&dir, "words.txt", 50);
    let output = run_on(
        &dir,
        &input,
        &["--shards", "2", "--batch-size", "7", "--end", "shard-ended"],
        &word_count,
    );
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let expected: Vec<u64> = (0..2)
        .map(|shard| {
            (1..=50)
                .filter(|i| kcl_cli::run::shard_index(&i.to_string(), None, 2) == shard)
                .count() as u64
        })
        .collect();
    for shard in 0..2u32 {
        let cells = row(&stdout, &kcl_cli::run::shard_id(shard));
        assert_eq!(cells[1], expected[shard as usize].to_string(), "{stdout}");
        assert_eq!(cells[7], "SHARD_END", "{stdout}");
        assert_eq!(cells[8], "0");
        assert_eq!(cells[9], "ok");
    }
    assert!(stdout.contains("50 records read, 50 delivered"), "{stdout}");
    // The child's stderr passes through, prefixed with its shard.
    assert!(stderr.contains("[shardId-000000000000] "), "{stderr}");
    let file = std::fs::read_to_string(dir.join("kcl-checkpoints.json")).unwrap();
    assert_eq!(file.matches("SHARD_END").count(), 2, "{file}");

    // A finished shard is not processed again.
    let again = run_on(&dir, &input, &["--shards", "2"], &word_count);
    let (stdout, _) = text(&again);
    assert!(again.status.success(), "{stdout}");
    assert!(stdout.contains("no child was started"), "{stdout}");
}

#[test]
fn file_sink_gets_every_record_once_across_a_resumed_run() {
    let sink = example("file_sink");
    let dir = temp_dir("run-sink");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let input = lines_file(&dir, "input.txt", 300);
    let common_args = [
        "--input",
        input.to_str().unwrap(),
        "--shards",
        "3",
        "--batch-size",
        "7",
    ];
    let mut first_args = common_args.to_vec();
    first_args.extend(["--max-batches", "4", "--end", "lease-lost"]);
    let first = run(
        &dir,
        &first_args,
        &[sink.to_str().unwrap(), out.to_str().unwrap()],
    );
    let (stdout, stderr) = text(&first);
    assert!(first.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("stopped after 4 batches"), "{stdout}");
    assert!(
        stdout.contains("not sent"),
        "records left for the next run: {stdout}"
    );

    let second = run(
        &dir,
        &common_args,
        &[sink.to_str().unwrap(), out.to_str().unwrap()],
    );
    let (stdout, stderr) = text(&second);
    assert!(second.status.success(), "{stdout}\n{stderr}");
    let resumed: u64 = (0..3)
        .map(|s| {
            row(&stdout, &kcl_cli::run::shard_id(s))[2]
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(
        resumed,
        3 * 4 * 7,
        "the first run's 4 batches per shard are skipped: {stdout}"
    );

    let mut seen: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("records-")
        {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            // shard, sequence number, sub-sequence number, partition key, payload
            let index = kcl_cli::run::record_index(fields[1]).unwrap();
            assert_eq!(fields[4], format!("line {}", index + 1));
            assert_eq!(fields[3], (index + 1).to_string());
            seen.push(fields[4].to_string());
        }
    }
    seen.sort();
    let mut expected: Vec<String> = (1..=300).map(|i| format!("line {i}")).collect();
    expected.sort();
    assert_eq!(seen, expected, "every record exactly once");
}

#[test]
fn byte_count_takes_raw_and_jsonl_input_from_stdin() {
    let byte_count = example("byte_count");
    let dir = temp_dir("run-bytes");
    let mut child = kcl()
        .args([
            "run",
            "--format",
            "raw",
            "--record-size",
            "1000",
            "--fresh",
            "--",
        ])
        .arg(&byte_count)
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let payload: Vec<u8> = (0..2_500_000u32).map(|i| (i % 251) as u8).collect();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&payload));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("2500 records read, 2500 delivered"),
        "{stdout}"
    );
    assert!(
        stderr.contains("bytes=2500000"),
        "byte_count saw every byte: {stderr}"
    );

    let jsonl = dir.join("records.jsonl");
    std::fs::write(
        &jsonl,
        "{\"dataBase64\":\"AP8KDQAi\",\"partitionKey\":\"k\"}\n\n{\"data\":{\"nested\":true}}\n",
    )
    .unwrap();
    let run_jsonl = || {
        run(
            &dir,
            &[
                "--input",
                jsonl.to_str().unwrap(),
                "--format",
                "jsonl",
                "--fresh",
            ],
            &[byte_count.to_str().unwrap()],
        )
    };
    let output = run_jsonl();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("records=2 bytes=21"), "{stderr}");

    std::fs::write(&jsonl, "{\"data\":\"a\",\"partitonKey\":\"typo\"}\n").unwrap();
    let output = run_jsonl();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout.contains("input line 1: unknown key \"partitonKey\""),
        "{stdout}"
    );
    assert!(stderr.contains("the input had an error"), "{stderr}");
}

/// One `kcl run` of a scripted child: its output and the output's text.
struct Scripted {
    output: Output,
    stdout: String,
    stderr: String,
}

impl Scripted {
    /// The summary row of the first shard.
    fn cells(&self) -> Vec<String> {
        row(&self.stdout, "shardId-000000000000")
    }

    /// Asserts that `kcl run` succeeded.
    #[track_caller]
    fn succeeded(self) -> Self {
        assert!(
            self.output.status.success(),
            "{}\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs `kcl run --input INPUT ARGS -- scripted_child MODE LOG` in `dir`.
fn run_scripted_on(dir: &Path, input: &Path, args: &[&str], mode: &str, log: &Path) -> Scripted {
    let mut all = vec!["--input", input.to_str().unwrap()];
    all.extend_from_slice(args);
    let output = run_scripted(dir, &all, mode, log);
    let (stdout, stderr) = text(&output);
    Scripted {
        output,
        stdout,
        stderr,
    }
}

/// The checkpoint replies (`reply SEQUENCE ERROR`) a scripted child logged.
fn replies(log: &Path) -> Vec<String> {
    log_lines(log)
        .into_iter()
        .filter(|l| l.starts_with("reply"))
        .collect()
}

#[test]
fn noise_on_stdout_is_skipped_like_the_daemon_does() {
    let dir = temp_dir("run-noise");
    let input = lines_file(&dir, "in.txt", 5);
    let ran = run_scripted_on(
        &dir,
        &input,
        &["--batch-size", "5"],
        "noise",
        &dir.join("log"),
    )
    .succeeded();
    let (stdout, stderr) = (&ran.stdout, &ran.stderr);
    assert_eq!(
        ran.cells()[6],
        "2",
        "DEBUG hello and {{\"foo\":1}} are junk: {stdout}"
    );
    for wanted in [
        "stdout line skipped by the daemon",
        "wrote a initialize message",
        "[shardId-000000000000] noise on stderr",
    ] {
        assert!(stderr.contains(wanted), "{wanted:?} in {stderr}");
    }
}

#[test]
fn a_wrong_status_or_a_dead_child_is_a_protocol_failure() {
    let dir = temp_dir("run-violations");
    let input = lines_file(&dir, "in.txt", 3);
    let log = dir.join("log");
    // Each MODE: kcl run exits 1 and says what the child did wrong.
    let failed = |mode: &str, args: &[&str], says: &str| {
        let ran = run_scripted_on(&dir, &input, args, mode, &log);
        let (stdout, stderr) = (&ran.stdout, &ran.stderr);
        assert_eq!(
            ran.output.status.code(),
            Some(1),
            "{mode}: {stdout}\n{stderr}"
        );
        assert!(stdout.contains(says), "{mode}: {says:?} in {stdout}");
        ran
    };

    let ran = failed(
        "wrong-status",
        &[],
        "answered initialize with a status for \"processRecords\"",
    );
    assert!(
        ran.stdout.contains("the real daemon would exit 1"),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stderr.contains("error: 1 of 1 shards failed"),
        "{}",
        ran.stderr
    );
    assert!(
        log_lines(&log).contains(&"eof".to_string()),
        "stdin was closed"
    );

    let ran = failed(
        "exit-mid",
        &["--fresh"],
        "closed its stdout (it exited?) while processRecords was outstanding",
    );
    assert_eq!(ran.cells()[8], "3", "exit code shown: {}", ran.stdout);

    failed("exit-nonzero", &["--fresh"], "the child exited with code 5");

    let output = run(
        &dir,
        &["--input", input.to_str().unwrap(), "--fresh"],
        &["/no/such/processor"],
    );
    let (stdout, _) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout.contains("cannot start the child"), "{stdout}");
}

#[test]
fn silence_and_malformed_statuses_hit_the_timeout() {
    let dir = temp_dir("run-timeout");
    let input = lines_file(&dir, "in.txt", 3);
    for mode in ["silent", "extra-key"] {
        let log = dir.join(format!("{mode}.log"));
        let started = std::time::Instant::now();
        let ran = run_scripted_on(&dir, &input, &["--fresh", "--timeout", "1"], mode, &log);
        let (stdout, stderr) = (&ran.stdout, &ran.stderr);
        assert_eq!(
            ran.output.status.code(),
            Some(1),
            "{mode}: {stdout}\n{stderr}"
        );
        assert!(
            stdout.contains("the real daemon would halt"),
            "{mode}: {stdout}"
        );
        assert!(started.elapsed().as_secs() < 10);
        if mode == "extra-key" {
            assert!(
                stderr.contains("unrecognized property \\\"ok\\\"")
                    || stderr.contains("unrecognized property \"ok\""),
                "{stderr}"
            );
        }
    }
}

#[test]
fn checkpoints_are_judged_like_the_kcl() {
    let dir = temp_dir("run-judge");
    let input = lines_file(&dir, "in.txt", 4);
    let log = dir.join("beyond.log");
    let ran = run_scripted_on(&dir, &input, &["--batch-size", "2"], "beyond", &log).succeeded();
    let replies = replies(&log);
    let beyond = kcl_cli::run::sequence_number(2);
    assert_eq!(
        replies[0],
        format!("reply {beyond} IllegalArgumentException")
    );
    assert_eq!(replies[1], "reply None None");
    assert!(
        ran.stderr.contains("refused (IllegalArgumentException)"),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.cells()[5], "2", "{}", ran.stdout);

    // Checkpointing the last record again at shardEnded stores nothing: the shard never ends.
    let log = dir.join("repeat.log");
    let ran = run_scripted_on(
        &dir,
        &input,
        &["--fresh", "--end", "shard-ended"],
        "repeat-at-end",
        &log,
    );
    let stdout = &ran.stdout;
    assert_eq!(ran.output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("without checkpointing the end of the shard"),
        "{stdout}"
    );
    assert_eq!(ran.cells()[7..9], ["record", "4"], "{stdout}");
}

#[test]
fn a_checkpoint_below_the_last_checkpoint_is_refused_like_the_kcl() {
    let dir = temp_dir("run-backwards");
    let input = lines_file(&dir, "in.txt", 6);
    let log = dir.join("backwards.log");
    let ran = run_scripted_on(&dir, &input, &["--batch-size", "2"], "backwards", &log).succeeded();
    // Batch 1 checkpoints (null); batches 2 and 3 first ask for record 1 again, below the last
    // checkpoint: the KCL's ShardRecordProcessorCheckpointer throws IllegalArgumentException.
    let first = kcl_cli::run::sequence_number(0);
    let refused = format!("reply {first} IllegalArgumentException");
    assert_eq!(
        replies(&log),
        [
            "reply None None",
            &refused,
            "reply None None",
            &refused,
            "reply None None",
            "reply None None", // shutdownRequested
        ],
        "{}",
        ran.stderr
    );
    let cells = ran.cells();
    assert_eq!(cells[5], "2", "two refused: {}", ran.stdout);
    assert_eq!(
        cells[7..9],
        ["record", "6"],
        "never moved back: {}",
        ran.stdout
    );
}

/// A scripted child that checkpoints where the daemon passes no checkpointer.
struct NoCheckpointer {
    /// What the case shows (also the name of the child's log).
    name: &'static str,
    mode: &'static str,
    args: &'static [&'static str],
    /// The checkpoint replies the child logged.
    replies: &'static [&'static str],
    /// (cell, value) of the shard's summary row.
    cells: &'static [(usize, &'static str)],
}

const NO_CHECKPOINTER: [NoCheckpointer; 3] = [
    // The daemon passes no checkpointer while it waits for the status of initialize: it answers
    // every checkpoint there with InvalidStateException, and the shard goes on normally.
    NoCheckpointer {
        name: "initialize",
        mode: "checkpoint-in-initialize",
        args: &["--batch-size", "2"],
        replies: &[
            "reply None InvalidStateException",
            "reply None None",
            "reply None None",
            "reply None None", // shutdownRequested
        ],
        cells: &[(5, "1"), (7, "record"), (8, "4")],
    },
    // Likewise during leaseLost (the lease is gone): nothing is stored (TRIM_HORIZON), even
    // though the child never checkpointed the records it was given.
    NoCheckpointer {
        name: "lease-lost",
        mode: "checkpoint-in-leaseLost",
        args: &["--batch-size", "2", "--fresh", "--end", "lease-lost"],
        replies: &["reply None InvalidStateException"],
        cells: &[(1, "4"), (5, "1"), (7, "TRIM_HORIZON")],
    },
    // The leaseLost that follows shutdownRequested (the default end) has no checkpointer either.
    NoCheckpointer {
        name: "shutdown-lease-lost",
        mode: "checkpoint-in-leaseLost",
        args: &["--batch-size", "2", "--fresh"],
        replies: &[
            "reply None None", // shutdownRequested
            "reply None InvalidStateException",
        ],
        cells: &[],
    },
];

#[test]
fn checkpoints_during_initialize_and_lease_lost_get_invalid_state_like_the_daemon() {
    let dir = temp_dir("run-no-checkpointer");
    let input = lines_file(&dir, "in.txt", 4);
    for case in &NO_CHECKPOINTER {
        let log = dir.join(format!("{}.log", case.name));
        let ran = run_scripted_on(&dir, &input, case.args, case.mode, &log);
        let (name, stdout, stderr) = (case.name, &ran.stdout, &ran.stderr);
        assert!(ran.output.status.success(), "{name}: {stdout}\n{stderr}");
        assert_eq!(replies(&log), case.replies, "{name}: {stderr}");
        let cells = ran.cells();
        for &(cell, value) in case.cells {
            assert_eq!(cells[cell], value, "{name}: cell {cell}: {stdout}");
        }
    }
}

#[test]
fn injected_checkpoint_errors_reach_the_child() {
    let dir = temp_dir("run-inject");
    let input = lines_file(&dir, "in.txt", 6);
    let log = dir.join("retry.log");
    let ran = run_scripted_on(
        &dir,
        &input,
        &[
            "--batch-size",
            "3",
            "--checkpoint-error",
            "1=ThrottlingException",
            "--checkpoint-error",
            "shardId-000000000000:2=ThrottlingException",
            "--checkpoint-error",
            "0:4=ShutdownException",
        ],
        "retry",
        &log,
    )
    .succeeded();
    let errors: Vec<String> = replies(&log)
        .iter()
        .map(|r| r.split(' ').nth(2).unwrap().to_string())
        .collect();
    assert_eq!(
        errors,
        [
            "ThrottlingException",
            "ThrottlingException",
            "None",
            "ShutdownException",
            "None"
        ],
        "batch 1: two throttles then ok; batch 2: shutdown (no retry); shutdownRequested: ok"
    );
    assert!(
        ran.stderr
            .contains("checkpoint request 4 answered with ShutdownException"),
        "{}",
        ran.stderr
    );

    for bad in [
        "0=ThrottlingException",
        "x=Y",
        "1=",
        "7:1=ThrottlingException",
    ] {
        let output = run(
            &dir,
            &[
                "--input",
                input.to_str().unwrap(),
                "--checkpoint-error",
                bad,
            ],
            &["true"],
        );
        assert_eq!(output.status.code(), Some(2), "{bad}: {}", text(&output).1);
    }
}

#[test]
fn a_child_that_ignores_eof_is_killed_after_the_exit_timeout() {
    let dir = temp_dir("run-noexit");
    let input = lines_file(&dir, "in.txt", 2);
    let log = dir.join("log");
    let started = std::time::Instant::now();
    let output = run_scripted(
        &dir,
        &["--input", input.to_str().unwrap(), "--exit-timeout", "0.5"],
        "no-exit",
        &log,
    );
    let (stdout, _) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout.contains("did not exit within 0.5 s"), "{stdout}");
    assert!(
        stdout.contains("the real daemon would wait forever"),
        "{stdout}"
    );
    assert!(started.elapsed().as_secs() < 20);
}

#[test]
fn the_child_can_come_from_a_properties_file_or_an_executable_name() {
    let dir = temp_dir("run-props");
    let input = lines_file(&dir, "in.txt", 3);
    let log = dir.join("log");
    let properties = dir.join("app.properties");
    std::fs::write(
        &properties,
        format!(
            "executableName = {} silent {}\ntimeoutInSeconds = 1\n",
            scripted_child().display(),
            log.display()
        ),
    )
    .unwrap();
    let output = kcl()
        .args(["run", "--input"])
        .arg(&input)
        .arg("--properties")
        .arg(&properties)
        .current_dir(&dir)
        .output()
        .unwrap();
    let (stdout, _) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout.contains("would halt"),
        "timeoutInSeconds applies: {stdout}"
    );

    let name = format!("{}  good {}", scripted_child().display(), log.display());
    let output = kcl()
        .args(["run", "--fresh", "--input"])
        .arg(&input)
        .args(["--executable-name", &name])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output).0);

    let output = kcl()
        .args(["run", "--input"])
        .arg(&input)
        .args(["--executable-name", " python3 x"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).1.contains("starts with a space"));
}

#[test]
fn usage_errors_are_explained() {
    let dir = temp_dir("run-usage");
    let output = kcl().args(["run"]).current_dir(&dir).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let (_, stderr) = text(&output);
    assert!(stderr.starts_with("error: no processor to run"), "{stderr}");
    assert!(
        stderr.contains("hint: kcl run [OPTIONS] -- PROCESSOR"),
        "{stderr}"
    );

    let output = kcl()
        .args(["run", "--input", "/no/such/file", "--", "true"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output)
            .1
            .contains("cannot open the input /no/such/file")
    );

    let input = lines_file(&dir, "in.txt", 1);
    let ok = run_on(
        &dir,
        &input,
        &["--shards", "2", "--end", "lease-lost"],
        &example("byte_count"),
    );
    assert!(ok.status.success(), "{}", text(&ok).0);
    let output = run(
        &dir,
        &["--input", input.to_str().unwrap(), "--shards", "3"],
        &["true"],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output)
            .1
            .contains("pass --shards 2 to resume it, or --fresh")
    );
}

#[test]
fn progress_lines_appear_when_stderr_is_not_a_terminal() {
    let byte_count = example("byte_count");
    let dir = temp_dir("run-progress");
    let input = lines_file(&dir, "in.txt", 40);
    let output = run_on(
        &dir,
        &input,
        &["--batch-size", "5", "--progress-every", "2"],
        &byte_count,
    );
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}");
    let progress: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("[kcl run]"))
        .collect();
    assert_eq!(progress.len(), 4, "{stderr}");
    assert!(progress[3].contains("40 records, 8 batches"), "{stderr}");
}

#[test]
fn trace_shows_both_directions() {
    let word_count = example("word_count");
    let dir = temp_dir("run-trace");
    let input = lines_file(&dir, "in.txt", 2);
    let output = run_on(&dir, &input, &["--trace"], &word_count);
    let (_, stderr) = text(&output);
    assert!(output.status.success());
    assert!(stderr.contains(r#"D> {"action":"initialize","shardId":"shardId-000000000000","sequenceNumber":"TRIM_HORIZON","subSequenceNumber":0}"#), "{stderr}");
    assert!(
        stderr.contains(r#"C< {"action":"status","responseFor":"initialize"}"#),
        "{stderr}"
    );
    assert!(
        stderr.contains(r#"D> {"action":"shutdownRequested"}"#),
        "{stderr}"
    );
    assert!(stderr.contains(r#"D> {"action":"leaseLost"}"#), "{stderr}");
}

#[test]
fn an_interrupt_ends_every_shard_like_a_daemon_shutdown() {
    let dir = temp_dir("run-interrupt");
    let log = dir.join("log");
    let mut child = kcl()
        .args(["run", "--shards", "2", "--batch-size", "1", "--"])
        .args(scripted("good", &log))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"one\ntwo\nthree\n").unwrap();
    stdin.flush().unwrap();
    let started = std::time::Instant::now();
    while log_lines(&log)
        .iter()
        .filter(|l| l.starts_with("record"))
        .count()
        < 3
    {
        assert!(started.elapsed().as_secs() < 20, "records did not arrive");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    drop(stdin);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("interrupted: ended like a daemon shutdown"),
        "{stdout}"
    );
    let actions: Vec<String> = log_lines(&log)
        .into_iter()
        .filter(|l| l.starts_with("action shutdownRequested") || l.starts_with("action leaseLost"))
        .collect();
    assert_eq!(
        actions.len(),
        4,
        "both shards got shutdownRequested then leaseLost: {actions:?}"
    );
    assert_eq!(log_lines(&log).iter().filter(|l| *l == "eof").count(), 2);
}
