//! `kcl put` against a fake Kinesis endpoint on 127.0.0.1 (the JSON 1.1 protocol), plus its
//! argument errors. The end-to-end suite puts into a real emulator.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::{kcl, temp_dir, text, Response, Server};

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
    assert!(requests[0]
        .header("authorization")
        .is_some_and(|a| a.contains("Credential=x/") && a.contains("/eu-west-1/")));
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
        stderr.contains("PutRecord to stream nope failed"),
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
        .args(["--stream", "s", "--word", "a", "--endpoint"])
        .arg(format!("http://127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).1.contains("PutRecord to stream s failed"));
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
