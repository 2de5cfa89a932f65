//! `kcl put`: the sample word putter of the official clients, for Kinesis (AWS or a local
//! emulator). Each word (or line) is one record whose partition key is the word itself.

use std::io::BufRead;
use std::time::Duration;

use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::config::timeout::TimeoutConfig;
use aws_sdk_kinesis::config::{Credentials, Region};
use aws_sdk_kinesis::error::DisplayErrorContext;
use aws_sdk_kinesis::primitives::Blob;

use crate::cli::PutArgs;
use crate::error::{Error, Result};

/// The words to put, from `--word` or the lines of `--file` (empty lines skipped).
fn words(args: &PutArgs) -> Result<Vec<String>> {
    let words = match &args.file {
        None => args.word.clone(),
        Some(path) => {
            let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                let file = std::fs::File::open(path).map_err(|e| Error::file("open", path, e))?;
                Box::new(std::io::BufReader::new(file))
            };
            let mut lines = Vec::new();
            for line in reader.lines() {
                let line = line.map_err(|e| Error::file("read", path, e))?;
                let line = line.trim_end_matches('\r');
                if !line.is_empty() {
                    lines.push(line.to_string());
                }
            }
            lines
        }
    };
    if words.is_empty() {
        return Err(Error::usage(
            "nothing to put: no words (or only empty lines)",
        ));
    }
    if let Some(word) = words
        .iter()
        .find(|w| args.partition_key.is_none() && w.chars().count() > 256)
    {
        return Err(Error::usage_hint(
            format!(
                "{:?}… is longer than 256 characters, the limit of a partition key",
                word.chars().take(20).collect::<String>()
            ),
            "pass --partition-key KEY",
        ));
    }
    Ok(words)
}

/// Runs `kcl put`.
pub fn command(args: PutArgs) -> Result<()> {
    let words = words(&args)?;
    let period =
        match args.period {
            None => None,
            Some(seconds) => Some(Duration::try_from_secs_f64(seconds).map_err(|_| {
                Error::usage(format!("--period {seconds}: not a number of seconds"))
            })?),
        };
    let rounds = args
        .count
        .unwrap_or(if period.is_some() { u64::MAX } else { 1 });
    if rounds == 0 {
        return Err(Error::usage("--count must be at least 1"));
    }
    if let Some(endpoint) = &args.endpoint {
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(Error::usage(format!(
                "--endpoint {endpoint}: expected an http:// or https:// URL"
            )));
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))?;
    runtime.block_on(put_all(&args, &words, period, rounds))
}

async fn put_all(
    args: &PutArgs,
    words: &[String],
    period: Option<Duration>,
    rounds: u64,
) -> Result<()> {
    let region = args
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
        .unwrap_or_else(|| "us-east-1".to_string());
    let mut loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).region(Region::new(region));
    if let Some(endpoint) = &args.endpoint {
        loader = loader.endpoint_url(endpoint);
        if std::env::var_os("AWS_ACCESS_KEY_ID").is_none()
            && std::env::var_os("AWS_PROFILE").is_none()
        {
            // Emulators accept any credentials; spare the user from inventing some.
            loader = loader.credentials_provider(Credentials::new(
                "kcl-local",
                "kcl-local",
                None,
                None,
                "kcl-put",
            ));
        }
    }
    let shared = loader.load().await;
    let config = aws_sdk_kinesis::config::Builder::from(&shared)
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(15))
                .build(),
        )
        .build();
    let client = aws_sdk_kinesis::Client::from_conf(config);
    let mut round = 0;
    loop {
        round += 1;
        for word in words {
            let key = args.partition_key.as_deref().unwrap_or(word);
            let output = client
                .put_record()
                .stream_name(&args.stream)
                .partition_key(key)
                .data(Blob::new(word.as_bytes()))
                .send()
                .await
                .map_err(|e| {
                    Error::failed_hint(
                        format!(
                            "PutRecord to stream {} failed: {}",
                            args.stream,
                            DisplayErrorContext(&e)
                        ),
                        match &args.endpoint {
                            Some(endpoint) => format!("is the emulator running at {endpoint}, and does the stream exist there?"),
                            None => "check the stream name, the region (--region / AWS_REGION) and your AWS credentials".to_string(),
                        },
                    )
                })?;
            let line = format!(
                "{}\t{}\t{word}\n",
                output.shard_id(),
                output.sequence_number()
            );
            if !crate::fsutil::print_stdout(&line) {
                return Ok(()); // whoever read the output is gone
            }
        }
        if round >= rounds {
            return Ok(());
        }
        if let Some(period) = period {
            tokio::time::sleep(period).await;
        }
    }
}
