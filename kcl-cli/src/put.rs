//! `kcl put`: the sample word putter of the official clients, for Kinesis (AWS or a local
//! emulator). Each word (or line) is one record whose partition key is the word itself.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::config::timeout::TimeoutConfig;
use aws_sdk_kinesis::config::{Credentials, Region};
use aws_sdk_kinesis::error::DisplayErrorContext;
use aws_sdk_kinesis::primitives::Blob;
use clap::{Args, ValueEnum};

use crate::error::{Error, Result};
use crate::properties::endpoint;

/// Shown at the end of `--help`.
const EXAMPLES: &str = "\
Examples:
  kcl put --stream words --endpoint http://127.0.0.1:4567 --word hello --word world --count 1
  kcl put --stream words --file words.txt --period 2";

/// `kcl put`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["word", "file"]))]
pub(crate) struct PutArgs {
    /// The stream.
    #[arg(long, value_name = "NAME")]
    pub stream: String,

    /// Endpoint URL of Kinesis (e.g. a local emulator). Without it, AWS.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,

    /// The region [default: $AWS_REGION, else us-east-1].
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,

    /// A word to put (repeatable); each is one record, its own partition key.
    #[arg(long, value_name = "WORD")]
    pub word: Vec<String>,

    /// Put each line of this file (`-` for stdin) as one record.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Partition key of every record [default: the record's text].
    #[arg(long, value_name = "KEY")]
    pub partition_key: Option<String>,

    /// Put everything again every SECONDS, until interrupted (or --count rounds).
    #[arg(long, value_name = "SECONDS")]
    pub period: Option<f64>,

    /// Number of rounds [default: 1, or unlimited with --period].
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,

    /// When a put fails (after its retries), report it and go on with the next word and round
    /// instead of stopping; exit 1 at the end if any failed. Meant for --period loops.
    #[arg(long)]
    pub keep_going: bool,

    /// Attempts per record, the first included: throttling, server errors, timeouts and
    /// connection errors are retried with exponential backoff (at most 10 s between attempts).
    #[arg(long, value_name = "N", default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,

    /// Which credentials sign the requests [default: dummy for an --endpoint on this machine
    /// (127.0.0.1, ::1, localhost); aws otherwise, except dummy for another --endpoint when
    /// none of AWS_ACCESS_KEY_ID, AWS_SESSION_TOKEN, AWS_PROFILE is set].
    #[arg(long, value_enum, value_name = "WHICH")]
    pub credentials: Option<PutCredentials>,

    /// Allow AWS credentials to sign requests to a plain http:// --endpoint that is not on this
    /// machine (the requests, and any session token, cross the network in clear).
    #[arg(long)]
    pub allow_plain_http: bool,
}

/// The credentials `kcl put` signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum PutCredentials {
    /// The fixed key `kcl-local` (emulators accept any credentials).
    Dummy,
    /// The AWS credential chain: environment, profile, SSO, instance role, ...
    Aws,
}

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
pub(crate) fn command(args: PutArgs) -> Result<()> {
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
    if let Some(endpoint) = &args.endpoint
        && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
    {
        return Err(Error::usage(format!(
            "--endpoint {endpoint}: expected an http:// or https:// URL"
        )));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("cannot start the async runtime", e))?;
    runtime.block_on(put_all(&args, &words, period, rounds))
}

/// The names of the environment variables that make the AWS chain use someone's real
/// credentials.
fn credentials_in_environment() -> Vec<&'static str> {
    ["AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "AWS_PROFILE"]
        .into_iter()
        .filter(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
        .collect()
}

/// Which credentials sign the requests (see `--credentials`); refuses AWS credentials over plain
/// HTTP to another host unless `allow_plain_http`.
fn choose_credentials(
    endpoint: Option<&str>,
    explicit: Option<PutCredentials>,
    allow_plain_http: bool,
    in_environment: &[&str],
) -> Result<PutCredentials> {
    let Some(endpoint) = endpoint else {
        return Ok(explicit.unwrap_or(PutCredentials::Aws));
    };
    let chosen = explicit.unwrap_or(
        if endpoint::is_loopback_url(endpoint) || in_environment.is_empty() {
            PutCredentials::Dummy
        } else {
            PutCredentials::Aws
        },
    );
    if chosen == PutCredentials::Aws
        && !allow_plain_http
        && let Some(host) = endpoint::plain_http_to_other_host(endpoint)
    {
        let why = if explicit.is_some() {
            "--credentials aws".to_string()
        } else {
            format!("{} set", in_environment.join(", "))
        };
        return Err(Error::usage_hint(
            format!(
                "--endpoint {endpoint} {}: your AWS credentials ({why}) would sign every request, and a session token would cross the network in clear",
                endpoint::plain_http_words(host)
            ),
            "use https://, or --credentials dummy for an emulator (it accepts any key), or --allow-plain-http if you trust that network",
        ));
    }
    Ok(chosen)
}

/// `n thing` or `n things`.
fn count(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// Where word `index` of `words` stands in round `round` of `rounds`, when there is more than
/// one: " (word 2 of 4, round 1)".
fn position(index: usize, words: usize, round: u64, rounds: u64) -> String {
    let mut parts = Vec::new();
    if words > 1 {
        parts.push(format!("word {} of {words}", index + 1));
    }
    if rounds > 1 {
        parts.push(format!("round {round}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

/// What was not put when word `index` of round `round` failed and the command stops.
fn not_put(words: &[String], index: usize, round: u64, rounds: u64) -> String {
    const LISTED: usize = 10;
    let left = &words[index..];
    let mut listed: Vec<String> = left.iter().take(LISTED).map(|w| format!("{w:?}")).collect();
    if left.len() > LISTED {
        listed.push(format!("... ({} more)", left.len() - LISTED));
    }
    let mut text = match (words.len(), left.len()) {
        (1, _) => format!("the word of round {round} was not put: {}", listed[0]),
        (all, 1) => format!(
            "1 of the {all} words of round {round} was not put: {}",
            listed[0]
        ),
        (all, left) => format!(
            "{left} of the {all} words of round {round} were not put: {}",
            listed.join(", ")
        ),
    };
    if rounds != u64::MAX && rounds > round {
        let more = rounds - round;
        let (rounds, were) = if more == 1 {
            ("round", "was")
        } else {
            ("rounds", "were")
        };
        text.push_str(&format!("; {more} more {rounds} {were} not started"));
    }
    text
}

async fn put_all(
    args: &PutArgs,
    words: &[String],
    period: Option<Duration>,
    rounds: u64,
) -> Result<()> {
    let credentials = choose_credentials(
        args.endpoint.as_deref(),
        args.credentials,
        args.allow_plain_http,
        &credentials_in_environment(),
    )?;
    let region = args
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
        .unwrap_or_else(|| "us-east-1".to_string());
    let mut loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).region(Region::new(region));
    if let Some(endpoint) = &args.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    if credentials == PutCredentials::Dummy {
        // Emulators accept any credentials; never hand them real ones by default.
        loader = loader.credentials_provider(Credentials::new(
            "kcl-local",
            "kcl-local",
            None,
            None,
            "kcl-put",
        ));
    }
    let shared = loader.load().await;
    let config = aws_sdk_kinesis::config::Builder::from(&shared)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(args.max_attempts)
                .with_max_backoff(Duration::from_secs(10)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(15))
                .build(),
        )
        .build();
    let client = aws_sdk_kinesis::Client::from_conf(config);
    let mut hint = match &args.endpoint {
        Some(endpoint) => {
            format!("is the emulator running at {endpoint}, and does the stream exist there?")
        }
        None => {
            "check the stream name, the region (--region / AWS_REGION) and your AWS credentials"
                .to_string()
        }
    };
    if rounds > 1 && !args.keep_going {
        hint.push_str("; --keep-going reports a failed put and goes on");
    }
    let attempts = count(args.max_attempts as usize, "attempt");
    let (mut tried, mut failed) = (0u64, 0u64);
    let mut round = 0;
    loop {
        round += 1;
        for (index, word) in words.iter().enumerate() {
            tried += 1;
            let key = args.partition_key.as_deref().unwrap_or(word);
            let sent = client
                .put_record()
                .stream_name(&args.stream)
                .partition_key(key)
                .data(Blob::new(word.as_bytes()))
                .send()
                .await;
            let output = match sent {
                Ok(output) => output,
                Err(error) => {
                    let what = format!(
                        "PutRecord of {word:?}{} to stream {} failed (up to {attempts}): {}",
                        position(index, words.len(), round, rounds),
                        args.stream,
                        DisplayErrorContext(&error)
                    );
                    if !args.keep_going {
                        return Err(Error::failed_hint(
                            format!("{what}\n  {}", not_put(words, index, round, rounds)),
                            hint,
                        ));
                    }
                    eprintln!("kcl put: {what}; going on (--keep-going)");
                    failed += 1;
                    continue;
                }
            };
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
            break;
        }
        if let Some(period) = period {
            tokio::time::sleep(period).await;
        }
    }
    if failed > 0 {
        return Err(Error::failed_hint(
            format!("{failed} of {tried} puts failed (each is reported above)"),
            hint,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_by_endpoint() {
        use PutCredentials::{Aws, Dummy};
        let env: &[&str] = &["AWS_ACCESS_KEY_ID"];
        let choose = |endpoint, explicit, allow, env| {
            choose_credentials(endpoint, explicit, allow, env).map_err(|e| e.to_string())
        };
        assert_eq!(choose(None, None, false, env), Ok(Aws));
        for loopback in [
            "http://127.0.0.1:4567",
            "http://localhost:1",
            "https://[::1]:2",
        ] {
            assert_eq!(choose(Some(loopback), None, false, env), Ok(Dummy));
            assert_eq!(choose(Some(loopback), Some(Aws), false, env), Ok(Aws));
        }
        assert_eq!(
            choose(Some("https://kinesis.internal"), None, false, env),
            Ok(Aws)
        );
        assert_eq!(
            choose(Some("https://kinesis.internal"), None, false, &[]),
            Ok(Dummy)
        );
        assert_eq!(
            choose(Some("http://kinesis.internal"), None, false, &[]),
            Ok(Dummy)
        );
        let refused = choose(Some("http://kinesis.internal"), None, false, env).unwrap_err();
        assert!(
            refused.contains("plain HTTP to kinesis.internal"),
            "{refused}"
        );
        assert!(refused.contains("AWS_ACCESS_KEY_ID set"), "{refused}");
        assert!(choose(Some("http://10.0.0.1"), Some(Aws), false, &[]).is_err());
        assert_eq!(
            choose(Some("http://10.0.0.1"), Some(Aws), true, &[]),
            Ok(Aws)
        );
        assert_eq!(
            choose(Some("http://10.0.0.1"), Some(Dummy), false, env),
            Ok(Dummy)
        );
    }

    #[test]
    fn positions() {
        assert_eq!(position(0, 1, 1, 1), "");
        assert_eq!(position(1, 4, 1, 3), " (word 2 of 4, round 1)");
        assert_eq!(position(0, 1, 7, u64::MAX), " (round 7)");
    }

    #[test]
    fn what_was_not_put() {
        let words: Vec<String> = (1..=13).map(|n| format!("w{n}")).collect();
        assert_eq!(
            not_put(&words[..1], 0, 2, 2),
            "the word of round 2 was not put: \"w1\""
        );
        assert_eq!(
            not_put(&words[..3], 2, 1, 1),
            "1 of the 3 words of round 1 was not put: \"w3\""
        );
        assert_eq!(
            not_put(&words[..3], 0, 4, 5),
            "3 of the 3 words of round 4 were not put: \"w1\", \"w2\", \"w3\"; 1 more round was not started"
        );
        let long = not_put(&words, 1, 1, u64::MAX);
        assert!(
            long.starts_with("12 of the 13 words of round 1 were not put: \"w2\""),
            "{long}"
        );
        assert!(long.ends_with("\"w11\", ... (2 more)"), "{long}");
    }
}
