//! `kcl put` against a fake Kinesis endpoint on 127.0.0.1 (`common::kinesis`: the JSON 1.1
//! calls DescribeStreamSummary and PutRecords), plus its argument errors. The end-to-end suite
//! puts into a real emulator.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use common::kinesis::{Kinesis, error};
use common::{kcl, kcl_without_aws, temp_dir, text};

/// `kcl put ...` with no AWS settings from the environment.
fn put() -> std::process::Command {
    kcl_without_aws("put")
}

/// The JSON bodies of the PutRecords requests, in order.
fn put_bodies(kinesis: &Kinesis) -> Vec<serde_json::Value> {
    kinesis
        .server
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.header("x-amz-target") == Some("Kinesis_20131202.PutRecords"))
        .map(|r| serde_json::from_slice(&r.body).expect("a JSON body"))
        .collect()
}

/// The sequence number the stub gives its `n`-th stored record.
fn sequence(n: u64) -> String {
    format!("4959{n:052}")
}

/// The words of stdout's lines, in order.
fn printed_words(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .map(|l| l.rsplit('\t').next().unwrap())
        .collect()
}

#[test]
fn puts_each_word_with_itself_as_partition_key() {
    let kinesis = Kinesis::start(1);
    let output = put()
        .args(["--stream", "words", "--endpoint", kinesis.url()])
        .args(["--word", "hello", "--word", "wörld"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        stdout,
        "shardId-000000000000\t49590000000000000000000000000000000000000000000000000001\thello\n\
         shardId-000000000000\t49590000000000000000000000000000000000000000000000000002\twörld\n"
    );
    assert_eq!(
        kinesis.operations(),
        ["DescribeStreamSummary", "PutRecords"],
        "the limits first, then both words in one call"
    );
    let bodies = put_bodies(&kinesis);
    assert_eq!(bodies[0]["StreamName"], "words");
    assert_eq!(bodies[0]["Records"][0]["PartitionKey"], "hello");
    assert_eq!(bodies[0]["Records"][0]["Data"], "aGVsbG8=");
    assert_eq!(bodies[0]["Records"][1]["PartitionKey"], "wörld");
    let requests = kinesis.server.requests.lock().unwrap();
    for request in requests.iter() {
        let authorization = request.header("authorization").unwrap_or_default();
        assert!(
            authorization.contains("Credential=kcl-local/")
                && authorization.contains("/us-east-1/kinesis/"),
            "dummy credentials and the default region sign the request: {authorization}"
        );
    }
}

#[test]
fn puts_the_lines_of_a_file_in_rounds() {
    let kinesis = Kinesis::start(2);
    let dir = temp_dir("put-file");
    let file = dir.join("words.txt");
    std::fs::write(&file, "alpha\n\nbeta\r\n").unwrap();
    let output = put()
        .args(["--stream", "s", "--endpoint", kinesis.url(), "--file"])
        .arg(&file)
        .args([
            "--period",
            "0.05",
            "--count",
            "2",
            "--partition-key",
            "same",
            "--region",
            "eu-west-1",
            "--credentials",
            "aws",
        ])
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "x")
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
    assert_eq!(printed_words(&stdout), ["alpha", "beta", "alpha", "beta"]);
    let calls = kinesis.calls();
    assert_eq!(calls.len(), 2, "one call per round");
    let data: Vec<&[u8]> = calls.iter().flatten().map(|e| &e.data[..]).collect();
    assert_eq!(data, [&b"alpha"[..], b"beta", b"alpha", b"beta"]);
    assert!(calls.iter().flatten().all(|e| e.partition_key == "same"));
    let bodies = put_bodies(&kinesis);
    assert_eq!(bodies[0]["Records"][0]["Data"], "YWxwaGE=");
    let requests = kinesis.server.requests.lock().unwrap();
    assert!(requests.iter().all(|r| {
        r.header("authorization")
            .is_some_and(|a| a.contains("Credential=x/") && a.contains("/eu-west-1/"))
    }));
}

#[test]
fn service_errors_and_unreachable_endpoints_are_reported() {
    // The stream does not exist: the first call (reading its limits) says so.
    let kinesis = Kinesis::builder(1)
        .intercept(|_| {
            Some(error(
                400,
                "ResourceNotFoundException",
                "Stream nope under account 000000000000 not found.",
            ))
        })
        .start();
    let output = put()
        .args([
            "--stream",
            "nope",
            "--endpoint",
            kinesis.url(),
            "--word",
            "a",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("cannot read stream nope (DescribeStreamSummary)"),
        "{stderr}"
    );
    assert!(stderr.contains("ResourceNotFoundException"), "{stderr}");
    assert!(
        stderr.contains("the word of round 1 was not put: \"a\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: is the emulator running at"),
        "{stderr}"
    );
    assert_eq!(kinesis.operations(), ["DescribeStreamSummary"]);

    // The stream is gone by the time the records are sent: refused, not retried.
    let kinesis = Kinesis::builder(1)
        .intercept(|request| {
            (request.header("x-amz-target") == Some("Kinesis_20131202.PutRecords")).then(|| {
                error(
                    400,
                    "ResourceNotFoundException",
                    "Stream nope under account 000000000000 not found.",
                )
            })
        })
        .start();
    let output = put()
        .args(["--stream", "nope", "--endpoint", kinesis.url()])
        .args(["--word", "a", "--word", "b"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout, "");
    assert!(
        stderr.contains(
            "put of \"a\" (word 1 of 2) to stream nope failed (refused, not retried): ResourceNotFoundException"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 of the 2 words of round 1 were not put: \"a\", \"b\""),
        "{stderr}"
    );
    assert!(stderr.contains("hint: is the emulator running"), "{stderr}");
    assert_eq!(kinesis.keys_per_call(), [["a", "b"]]);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = put()
        .args([
            "--stream",
            "s",
            "--word",
            "a",
            "--max-attempts",
            "1",
            "--endpoint",
        ])
        .arg(format!("http://127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let (_, stderr) = text(&output);
    assert!(
        stderr.contains("cannot read stream s (DescribeStreamSummary)")
            && stderr.contains("the word of round 1 was not put: \"a\""),
        "{stderr}"
    );
}

#[test]
fn a_stream_whose_limits_cannot_be_read_gets_the_default_ones() {
    // A writer's policy may allow PutRecords and not DescribeStreamSummary.
    let kinesis = Kinesis::builder(1)
        .intercept(|request| {
            (request.header("x-amz-target") == Some("Kinesis_20131202.DescribeStreamSummary"))
                .then(|| error(400, "AccessDeniedException", "not for you"))
        })
        .start();
    let output = put()
        .args(["--stream", "s", "--endpoint", kinesis.url(), "--word", "a"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        stdout,
        format!("shardId-000000000000\t{}\ta\n", sequence(1))
    );
    assert!(
        stderr.contains("cannot read the limits of stream s (AccessDeniedException: not for you); assuming 1 MiB per record"),
        "{stderr}"
    );
}

#[test]
fn argument_errors() {
    for (args, expected) in [
        (&["put", "--stream", "s"][..], "required"),
        (&["put", "--word", "a"][..], "--stream"),
        (
            &["put", "--stream", "s", "--word", "a", "--file", "f"][..],
            "cannot be used with",
        ),
        (
            &["put", "--stream", "s", "--word", "a", "--count", "0"][..],
            "--count must be at least 1",
        ),
        (
            &["put", "--stream", "s", "--word", "a", "--period=-1"][..],
            "not a number of seconds",
        ),
        (
            &[
                "put",
                "--stream",
                "s",
                "--word",
                "a",
                "--endpoint",
                "localhost:4567",
            ][..],
            "expected an http",
        ),
    ] {
        let output = kcl().args(args).output().unwrap();
        let (_, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let output = put()
        .args(["--stream", "s", "--file", "/no/such/words.txt"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).1.contains("cannot open /no/such/words.txt"));
}

#[test]
fn loopback_endpoints_get_dummy_credentials_even_with_aws_ones_in_the_environment() {
    let kinesis = Kinesis::start(1);
    let real = |command: &mut std::process::Command| {
        command
            .env("AWS_ACCESS_KEY_ID", "AKIAREALLOOKINGKEY01")
            .env("AWS_SECRET_ACCESS_KEY", "real-secret")
            .env("AWS_SESSION_TOKEN", "SESSIONTOKEN-NOT-FOR-EMULATORS");
    };
    let mut command = put();
    command.args(["--stream", "s", "--endpoint", kinesis.url(), "--word", "a"]);
    real(&mut command);
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", text(&output).1);
    let first_run = {
        let requests = kinesis.server.requests.lock().unwrap();
        assert_eq!(requests.len(), 2, "DescribeStreamSummary and PutRecords");
        for request in requests.iter() {
            let authorization = request.header("authorization").unwrap_or_default();
            assert!(
                authorization.contains("Credential=kcl-local/"),
                "{authorization}"
            );
            assert_eq!(request.header("x-amz-security-token"), None);
        }
        requests.len()
    };

    let mut command = put();
    command.args(["--stream", "s", "--endpoint", kinesis.url(), "--word", "b"]);
    command.args(["--credentials", "aws"]);
    real(&mut command);
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", text(&output).1);
    let requests = kinesis.server.requests.lock().unwrap();
    assert_eq!(requests.len(), first_run + 2);
    for request in &requests[first_run..] {
        let authorization = request.header("authorization").unwrap_or_default();
        assert!(
            authorization.contains("Credential=AKIAREALLOOKINGKEY01/"),
            "{authorization}"
        );
        assert_eq!(
            request.header("x-amz-security-token"),
            Some("SESSIONTOKEN-NOT-FOR-EMULATORS")
        );
    }
}

#[test]
fn plain_http_to_another_host_is_refused_while_aws_credentials_would_sign() {
    // 0.0.0.0 is not a loopback address, but connecting to it reaches this machine: without the
    // refusal, the stub would see the real credentials.
    let kinesis = Kinesis::start(1);
    let port = kinesis.url().rsplit(':').next().unwrap();
    let endpoint = format!("http://0.0.0.0:{port}");
    for (env, flags, named) in [
        (
            &[
                ("AWS_ACCESS_KEY_ID", "AKIAREALLOOKINGKEY01"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
            ][..],
            &[][..],
            "AWS_ACCESS_KEY_ID",
        ),
        (&[("AWS_PROFILE", "work")][..], &[][..], "AWS_PROFILE"),
        (&[][..], &["--credentials", "aws"][..], "--credentials aws"),
    ] {
        let mut command = put();
        command.args(["--stream", "s", "--word", "a", "--endpoint", &endpoint]);
        command.args(flags);
        for (name, value) in env {
            command.env(name, value);
        }
        let output = command.output().unwrap();
        let (_, stderr) = text(&output);
        assert_eq!(output.status.code(), Some(2), "{named}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "--endpoint {endpoint} is plain HTTP to 0.0.0.0, which is not this machine's loopback"
            )) && stderr.contains(named),
            "{stderr}"
        );
        for way in ["https://", "--credentials dummy", "--allow-plain-http"] {
            assert!(stderr.contains(way), "{way}: {stderr}");
        }
    }
    assert!(
        kinesis.server.requests.lock().unwrap().is_empty(),
        "nothing was sent"
    );

    let output = put()
        .args(["--stream", "s", "--word", "a", "--endpoint", &endpoint])
        .args(["--allow-plain-http"])
        .env("AWS_ACCESS_KEY_ID", "AKIAREALLOOKINGKEY01")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output).1);
    let requests = kinesis.server.requests.lock().unwrap();
    assert!(requests.iter().all(|r| {
        r.header("authorization")
            .is_some_and(|a| a.contains("Credential=AKIAREALLOOKINGKEY01/"))
    }));
}

#[test]
fn throttling_is_retried_until_it_passes() {
    // The whole call is throttled three times, then stored.
    let throttled = Arc::new(AtomicUsize::new(0));
    let kinesis = Kinesis::builder(1)
        .intercept(move |request| {
            (request.header("x-amz-target") == Some("Kinesis_20131202.PutRecords")
                && throttled.fetch_add(1, Ordering::Relaxed) < 3)
                .then(|| error(400, "ProvisionedThroughputExceededException", "slow down"))
        })
        .start();
    let output = put()
        .args(["--stream", "s", "--endpoint", kinesis.url(), "--word", "w1"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        stdout,
        format!("shardId-000000000000\t{}\tw1\n", sequence(1))
    );
    assert_eq!(
        kinesis.keys_per_call(),
        [["w1"], ["w1"], ["w1"], ["w1"]],
        "3 throttled, then OK"
    );
}

#[test]
fn a_throttled_entry_is_retried_alone_and_every_word_is_printed_once() {
    // In the first call, w2's entry is throttled and the others are stored.
    let kinesis = Kinesis::builder(1)
        .entry_fault(|key, before| {
            (key == "w2" && before == 0).then_some((
                "ProvisionedThroughputExceededException",
                "Rate exceeded for shard shardId-000000000000 in stream s",
            ))
        })
        .start();
    let output = put()
        .args(["--stream", "s", "--endpoint", kinesis.url()])
        .args([
            "--word", "w1", "--word", "w2", "--word", "w3", "--word", "w4",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        kinesis.keys_per_call(),
        [vec!["w1", "w2", "w3", "w4"], vec!["w2"]]
    );
    // Input order on stdout; w2 was stored last.
    let expected: String = [("w1", 1), ("w2", 4), ("w3", 2), ("w4", 3)]
        .iter()
        .map(|(word, n)| format!("shardId-000000000000\t{}\t{word}\n", sequence(*n)))
        .collect();
    assert_eq!(stdout, expected);
    assert_eq!(kinesis.stored().len(), 4, "each word stored once");
}

#[test]
fn a_round_of_1200_lines_goes_out_in_3_calls() {
    let kinesis = Kinesis::start(4);
    let dir = temp_dir("put-1200");
    let file = dir.join("lines.txt");
    let lines: Vec<String> = (1..=1200).map(|n| format!("line-{n:04}")).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let started = Instant::now();
    let output = put()
        .args(["--stream", "s", "--endpoint", kinesis.url(), "--file"])
        .arg(&file)
        .output()
        .unwrap();
    let took = started.elapsed();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    // The three calls are in flight together, so they may reach the stub in any order.
    let mut sizes: Vec<usize> = kinesis.calls().iter().map(Vec::len).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [200, 500, 500], "{took:?}");
    let mut calls = kinesis.keys_per_call();
    calls.sort();
    let sent: Vec<String> = calls.into_iter().flatten().collect();
    assert_eq!(sent, lines, "each call carries consecutive lines in order");
    assert_eq!(printed_words(&stdout), lines, "stdout in input order");
    // Each line names the shard and sequence number the stub gave that line.
    let stored: std::collections::HashMap<String, (String, String)> = kinesis
        .stored()
        .into_iter()
        .map(|s| (s.partition_key, (s.shard_id, s.sequence_number)))
        .collect();
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let (shard, sequence) = &stored[fields[2]];
        assert_eq!((fields[0], fields[1]), (shard.as_str(), sequence.as_str()));
    }
    eprintln!("1200 lines put in {took:?}");
}

#[test]
fn a_failed_put_names_the_word_and_the_words_not_sent() {
    let kinesis = Kinesis::builder(1)
        .entry_fault(|key, _| {
            (key == "w2").then_some(("InternalFailure", "Internal Service Failure"))
        })
        .start();
    let output = put()
        .args([
            "--stream",
            "s",
            "--endpoint",
            kinesis.url(),
            "--max-attempts",
            "2",
        ])
        .args([
            "--word", "w1", "--word", "w2", "--word", "w3", "--word", "w4",
        ])
        .args(["--count", "3", "--period", "0.01"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        printed_words(&stdout),
        ["w1", "w3", "w4"],
        "the rest of the round was put: {stdout}"
    );
    assert!(
        stderr.contains(
            "put of \"w2\" (word 2 of 4, round 1) to stream s failed (up to 2 attempts): InternalFailure"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "1 of the 4 words of round 1 was not put: \"w2\"; 2 more rounds were not started"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("--keep-going"), "{stderr}");
    assert_eq!(
        kinesis.keys_per_call(),
        [vec!["w1", "w2", "w3", "w4"], vec!["w2"]],
        "only w2 was sent again, and no other round started"
    );
}

#[test]
fn keep_going_reports_a_failed_put_and_continues_the_loop() {
    let kinesis = Kinesis::builder(1)
        .entry_fault(|key, _| {
            (key == "w2").then_some(("InternalFailure", "Internal Service Failure"))
        })
        .start();
    let output = put()
        .args([
            "--stream",
            "s",
            "--endpoint",
            kinesis.url(),
            "--max-attempts",
            "1",
        ])
        .args(["--word", "w1", "--word", "w2", "--word", "w3"])
        .args(["--count", "2", "--period", "0.01", "--keep-going"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(printed_words(&stdout), ["w1", "w3", "w1", "w3"], "{stdout}");
    for round in [1, 2] {
        assert!(
            stderr.contains(&format!(
                "put of \"w2\" (word 2 of 3, round {round}) to stream s failed (up to 1 attempt): InternalFailure: Internal Service Failure; going on (--keep-going)"
            )),
            "{stderr}"
        );
    }
    assert!(stderr.contains("2 of 6 puts failed"), "{stderr}");
    assert_eq!(
        kinesis.keys_per_call(),
        [["w1", "w2", "w3"], ["w1", "w2", "w3"]]
    );
}

#[test]
fn a_record_over_the_limit_is_reported_and_the_others_are_put() {
    let kinesis = Kinesis::start(1);
    let dir = temp_dir("put-large");
    let file = dir.join("lines.txt");
    let large = "x".repeat(1024 * 1024);
    std::fs::write(&file, format!("small\n{large}\nlast\n")).unwrap();
    let output = put()
        .args(["--stream", "s", "--endpoint", kinesis.url(), "--file"])
        .arg(&file)
        .args(["--partition-key", "k"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(printed_words(&stdout), ["small", "last"]);
    assert!(
        stderr.contains(&format!(
            "put of \"{}\"… (word 2 of 3) to stream s failed (not sent): the record has 1048577 bytes",
            "x".repeat(40)
        )),
        "{stderr}"
    );
    assert!(stderr.len() < 2000, "the word is not printed whole");
    assert_eq!(kinesis.keys_per_call(), [["k", "k"]]);
}

/// The time of `kcl put` of 1,000 words, one round, against the stub (which answers the
/// PutRecord calls of the `kcl put` of before the producer too). `KCL_PUT_BASELINE=/path/to/kcl`
/// times that binary as well. Run with `--ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn time_of_1000_words() {
    let mut binaries = vec![("this kcl".to_string(), None)];
    if let Some(baseline) = std::env::var_os("KCL_PUT_BASELINE") {
        binaries.push((format!("{}", baseline.to_string_lossy()), Some(baseline)));
    }
    let dir = temp_dir("put-timing");
    let file = dir.join("words.txt");
    let words: Vec<String> = (1..=1000).map(|n| format!("word-{n:04}")).collect();
    std::fs::write(&file, words.join("\n")).unwrap();
    for (name, program) in binaries {
        for run in 1..=3 {
            let kinesis = Kinesis::start(2);
            let mut command = match &program {
                Some(program) => {
                    let mut command = std::process::Command::new(program);
                    command.arg("put");
                    command
                }
                None => put(),
            };
            let started = Instant::now();
            let output = command
                .args(["--stream", "s", "--endpoint", kinesis.url(), "--file"])
                .arg(&file)
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_PROFILE")
                .output()
                .unwrap();
            let took = started.elapsed();
            let (stdout, stderr) = text(&output);
            assert!(output.status.success(), "{stderr}");
            assert_eq!(stdout.lines().count(), 1000);
            println!(
                "{name}, run {run}: 1000 words in {:.3} s ({:.0} records/s), {} calls",
                took.as_secs_f64(),
                1000.0 / took.as_secs_f64(),
                kinesis.calls().len()
            );
        }
    }
}
