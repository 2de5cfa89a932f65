//! `kcl put` against a fake Kinesis endpoint on 127.0.0.1 (the JSON 1.1 protocol), plus its
//! argument errors. The end-to-end suite puts into a real emulator.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use common::{Response, Server, kcl, temp_dir, text};

/// Answers PutRecord with shard 0 and an increasing sequence number.
fn fake_kinesis() -> Server {
    let counter = Arc::new(AtomicU64::new(0));
    Server::start(move |request| {
        if request.header("x-amz-target") != Some("Kinesis_20131202.PutRecord") {
            return Response::status(400);
        }
        let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
        Response::ok(
            "application/x-amz-json-1.1",
            format!(
                r#"{{"ShardId":"shardId-000000000000","SequenceNumber":"4959000000000000000000000000000000000000000000000000{n:04}"}}"#
            ),
        )
    })
}

/// `kcl put ...` with no AWS settings from the environment.
fn put() -> std::process::Command {
    let mut command = kcl();
    command.arg("put");
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_KINESIS",
    ] {
        command.env_remove(name);
    }
    command
}

fn bodies(server: &Server) -> Vec<serde_json::Value> {
    server
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("a JSON body"))
        .collect()
}

#[test]
fn puts_each_word_with_itself_as_partition_key() {
    let server = fake_kinesis();
    let output = put()
        .args(["--stream", "words", "--endpoint", &server.url])
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
    let bodies = bodies(&server);
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["StreamName"], "words");
    assert_eq!(bodies[0]["PartitionKey"], "hello");
    assert_eq!(bodies[0]["Data"], "aGVsbG8=");
    assert_eq!(bodies[1]["PartitionKey"], "wörld");
    let requests = server.requests.lock().unwrap();
    let authorization = requests[0].header("authorization").unwrap_or_default();
    assert!(
        authorization.contains("Credential=kcl-local/")
            && authorization.contains("/us-east-1/kinesis/"),
        "dummy credentials and the default region sign the request: {authorization}"
    );
}

#[test]
fn puts_the_lines_of_a_file_in_rounds() {
    let server = fake_kinesis();
    let dir = temp_dir("put-file");
    let file = dir.join("words.txt");
    std::fs::write(&file, "alpha\n\nbeta\r\n").unwrap();
    let output = put()
        .args(["--stream", "s", "--endpoint", &server.url, "--file"])
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
    let bodies = bodies(&server);
    let data: Vec<&str> = bodies.iter().map(|b| b["Data"].as_str().unwrap()).collect();
    assert_eq!(data, ["YWxwaGE=", "YmV0YQ==", "YWxwaGE=", "YmV0YQ=="]);
    assert!(bodies.iter().all(|b| b["PartitionKey"] == "same"));
    let requests = server.requests.lock().unwrap();
    assert!(
        requests[0]
            .header("authorization")
            .is_some_and(|a| a.contains("Credential=x/") && a.contains("/eu-west-1/"))
    );
}

#[test]
fn service_errors_and_unreachable_endpoints_are_reported() {
    let server = Server::start(|_| {
        Response {
        status: 400,
        content_type: "application/x-amz-json-1.1",
        body: br#"{"__type":"ResourceNotFoundException","message":"Stream nope under account 000000000000 not found."}"#.to_vec(),
    }
    });
    let output = put()
        .args(["--stream", "nope", "--endpoint", &server.url, "--word", "a"])
        .output()
        .unwrap();
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("PutRecord of \"a\" to stream nope failed"),
        "{stderr}"
    );
    assert!(stderr.contains("ResourceNotFoundException"), "{stderr}");
    assert!(
        stderr.contains("hint: is the emulator running at"),
        "{stderr}"
    );

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
    assert!(
        text(&output)
            .1
            .contains("PutRecord of \"a\" to stream s failed")
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

/// A Kinesis stub: `answer(partition key, how many times it was asked for that key before)`.
fn kinesis_stub(
    answer: impl Fn(&str, usize) -> Option<Response> + Send + Sync + 'static,
) -> Server {
    let asked = Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
        String,
        usize,
    >::new()));
    let ok = Arc::new(AtomicU64::new(0));
    Server::start(move |request| {
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let key = body["PartitionKey"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let before = {
            let mut asked = asked.lock().unwrap();
            let count = asked.entry(key.clone()).or_default();
            *count += 1;
            *count - 1
        };
        answer(&key, before).unwrap_or_else(|| {
            let n = ok.fetch_add(1, Ordering::Relaxed) + 1;
            Response::ok(
                "application/x-amz-json-1.1",
                format!(r#"{{"ShardId":"shardId-000000000000","SequenceNumber":"{n}"}}"#),
            )
        })
    })
}

fn error_response(status: u16, kind: &str) -> Response {
    Response {
        status,
        content_type: "application/x-amz-json-1.1",
        body: format!(r#"{{"__type":"{kind}","message":"stub says no"}}"#).into_bytes(),
    }
}

/// The partition keys the stub was asked for, in order.
fn keys(server: &Server) -> Vec<String> {
    bodies(server)
        .iter()
        .map(|b| b["PartitionKey"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn loopback_endpoints_get_dummy_credentials_even_with_aws_ones_in_the_environment() {
    let server = fake_kinesis();
    let real = |command: &mut std::process::Command| {
        command
            .env("AWS_ACCESS_KEY_ID", "AKIAREALLOOKINGKEY01")
            .env("AWS_SECRET_ACCESS_KEY", "real-secret")
            .env("AWS_SESSION_TOKEN", "SESSIONTOKEN-NOT-FOR-EMULATORS");
    };
    let mut command = put();
    command.args(["--stream", "s", "--endpoint", &server.url, "--word", "a"]);
    real(&mut command);
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", text(&output).1);
    {
        let requests = server.requests.lock().unwrap();
        let authorization = requests[0].header("authorization").unwrap_or_default();
        assert!(
            authorization.contains("Credential=kcl-local/"),
            "{authorization}"
        );
        assert_eq!(requests[0].header("x-amz-security-token"), None);
    }

    let mut command = put();
    command.args(["--stream", "s", "--endpoint", &server.url, "--word", "b"]);
    command.args(["--credentials", "aws"]);
    real(&mut command);
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", text(&output).1);
    let requests = server.requests.lock().unwrap();
    let authorization = requests[1].header("authorization").unwrap_or_default();
    assert!(
        authorization.contains("Credential=AKIAREALLOOKINGKEY01/"),
        "{authorization}"
    );
    assert_eq!(
        requests[1].header("x-amz-security-token"),
        Some("SESSIONTOKEN-NOT-FOR-EMULATORS")
    );
}

#[test]
fn plain_http_to_another_host_is_refused_while_aws_credentials_would_sign() {
    // 0.0.0.0 is not a loopback address, but connecting to it reaches this machine: without the
    // refusal, the stub would see the real credentials.
    let server = fake_kinesis();
    let port = server.url.rsplit(':').next().unwrap();
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
        server.requests.lock().unwrap().is_empty(),
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
    let requests = server.requests.lock().unwrap();
    assert!(
        requests[0]
            .header("authorization")
            .is_some_and(|a| a.contains("Credential=AKIAREALLOOKINGKEY01/"))
    );
}

#[test]
fn throttling_is_retried_until_it_passes() {
    let server = kinesis_stub(|_, before| {
        (before < 3).then(|| error_response(400, "ProvisionedThroughputExceededException"))
    });
    let output = put()
        .args(["--stream", "s", "--endpoint", &server.url, "--word", "w1"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout, "shardId-000000000000\t1\tw1\n");
    assert_eq!(
        keys(&server),
        ["w1", "w1", "w1", "w1"],
        "3 throttled, then OK"
    );
}

#[test]
fn a_failed_put_names_the_word_and_the_words_not_sent() {
    let server =
        kinesis_stub(|key, _| (key == "w2").then(|| error_response(500, "InternalFailure")));
    let output = put()
        .args([
            "--stream",
            "s",
            "--endpoint",
            &server.url,
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
    assert_eq!(stdout, "shardId-000000000000\t1\tw1\n", "only w1 was put");
    assert!(
        stderr.contains(
            "PutRecord of \"w2\" (word 2 of 4, round 1) to stream s failed (up to 2 attempts)"
        ) && stderr.contains("InternalFailure"),
        "{stderr}"
    );
    assert!(
        stderr.contains("3 of the 4 words of round 1 were not put: \"w2\", \"w3\", \"w4\"; 2 more rounds were not started"),
        "{stderr}"
    );
    assert!(stderr.contains("--keep-going"), "{stderr}");
    assert_eq!(keys(&server), ["w1", "w2", "w2"]);
}

#[test]
fn keep_going_reports_a_failed_put_and_continues_the_loop() {
    let server =
        kinesis_stub(|key, _| (key == "w2").then(|| error_response(500, "InternalFailure")));
    let output = put()
        .args([
            "--stream",
            "s",
            "--endpoint",
            &server.url,
            "--max-attempts",
            "1",
        ])
        .args(["--word", "w1", "--word", "w2", "--word", "w3"])
        .args(["--count", "2", "--period", "0.01", "--keep-going"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let words: Vec<&str> = stdout
        .lines()
        .map(|l| l.rsplit('\t').next().unwrap())
        .collect();
    assert_eq!(words, ["w1", "w3", "w1", "w3"], "{stdout}");
    for round in [1, 2] {
        assert!(
            stderr.contains(&format!(
                "PutRecord of \"w2\" (word 2 of 3, round {round}) to stream s failed (up to 1 attempt)"
            )),
            "{stderr}"
        );
    }
    assert!(stderr.contains("2 of 6 puts failed"), "{stderr}");
    assert_eq!(keys(&server), ["w1", "w2", "w3", "w1", "w2", "w3"]);
}
