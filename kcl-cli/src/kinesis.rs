//! What `kcl put` and `kcl produce` share: the stream, endpoint and region flags, the choice of
//! credentials (never someone's real ones to an emulator by default, never over plain HTTP to
//! another host), the AWS SDK client, and the producer built on it
//! (`kcl_producer::Producer` over `kcl_producer::aws::SdkKinesis`).

use std::time::Duration;

use aws_sdk_kinesis::config::retry::RetryConfig;
use aws_sdk_kinesis::config::timeout::TimeoutConfig;
use aws_sdk_kinesis::config::{Credentials, Region};
use clap::{Args, ValueEnum};
use kcl_producer::api::{CallError, StreamRef};
use kcl_producer::aws::SdkKinesis;
use kcl_producer::limits::StreamLimits;
use kcl_producer::{BuildError, Builder, Producer};

use crate::error::{Error, Result};
use crate::properties::endpoint;

/// The stream and where it is (flattened into each command's flags, first).
#[derive(Debug, Args)]
pub(crate) struct StreamArgs {
    /// The stream.
    #[arg(long, value_name = "NAME")]
    pub stream: String,

    /// Endpoint URL of Kinesis (e.g. a local emulator). Without it, AWS.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,

    /// The region [default: $AWS_REGION, else us-east-1].
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
}

/// Which credentials sign the requests (flattened into each command's flags, last).
#[derive(Debug, Args)]
pub(crate) struct CredentialArgs {
    /// Which credentials sign the requests [default: dummy for an --endpoint on this machine
    /// (127.0.0.1, ::1, localhost); aws otherwise, except dummy for another --endpoint when
    /// none of AWS_ACCESS_KEY_ID, AWS_SESSION_TOKEN, AWS_PROFILE is set].
    #[arg(long, value_enum, value_name = "WHICH")]
    pub credentials: Option<WhichCredentials>,

    /// Allow AWS credentials to sign requests to a plain http:// --endpoint that is not on this
    /// machine (the requests, and any session token, cross the network in clear).
    #[arg(long)]
    pub allow_plain_http: bool,
}

/// The credentials the requests are signed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum WhichCredentials {
    /// The fixed key `kcl-local` (emulators accept any credentials).
    Dummy,
    /// The AWS credential chain: environment, profile, SSO, instance role, ...
    Aws,
}

impl StreamArgs {
    /// Refuses an `--endpoint` that is not an http:// or https:// URL (a usage error).
    pub(crate) fn check_endpoint(&self) -> Result<()> {
        match &self.endpoint {
            Some(endpoint)
                if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) =>
            {
                Err(Error::usage(format!(
                    "--endpoint {endpoint}: expected an http:// or https:// URL"
                )))
            }
            _ => Ok(()),
        }
    }

    /// What to check when a call to the stream fails.
    pub(crate) fn hint(&self) -> String {
        match &self.endpoint {
            Some(endpoint) => {
                format!("is the emulator running at {endpoint}, and does the stream exist there?")
            }
            None => {
                "check the stream name, the region (--region / AWS_REGION) and your AWS credentials"
                    .to_string()
            }
        }
    }
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
    explicit: Option<WhichCredentials>,
    allow_plain_http: bool,
    in_environment: &[&str],
) -> Result<WhichCredentials> {
    let Some(endpoint) = endpoint else {
        return Ok(explicit.unwrap_or(WhichCredentials::Aws));
    };
    let chosen = explicit.unwrap_or(
        if endpoint::is_loopback_url(endpoint) || in_environment.is_empty() {
            WhichCredentials::Dummy
        } else {
            WhichCredentials::Aws
        },
    );
    if chosen == WhichCredentials::Aws
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

/// The SDK client for `target`, signed as `access` chooses (`tool` names the dummy
/// credentials' provider). Calls other than PutRecords (DescribeStreamSummary) get up to
/// `attempts` attempts with the SDK's backoff (at most 10 s); PutRecords is never retried by
/// the SDK (`SdkKinesis` turns that off: the producer retries per entry). Every attempt has
/// 15 s, a connection 5 s.
pub(crate) async fn sdk_client(
    target: &StreamArgs,
    access: &CredentialArgs,
    tool: &'static str,
    attempts: u32,
) -> Result<SdkKinesis> {
    let credentials = choose_credentials(
        target.endpoint.as_deref(),
        access.credentials,
        access.allow_plain_http,
        &credentials_in_environment(),
    )?;
    let region = target
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty()))
        .unwrap_or_else(|| "us-east-1".to_string());
    let mut loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).region(Region::new(region));
    if let Some(endpoint) = &target.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    if credentials == WhichCredentials::Dummy {
        // Emulators accept any credentials; never hand them real ones by default.
        loader = loader.credentials_provider(Credentials::new(
            "kcl-local",
            "kcl-local",
            None,
            None,
            tool,
        ));
    }
    let shared = loader.load().await;
    let config = aws_sdk_kinesis::config::Builder::from(&shared)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(attempts.max(1))
                .with_max_backoff(Duration::from_secs(10)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(15))
                .build(),
        )
        .build();
    Ok(SdkKinesis::new(aws_sdk_kinesis::Client::from_conf(config)))
}

/// Builds the producer for `stream` (`settings` adds each command's own), which reads the
/// stream's limits with DescribeStreamSummary first. When that call is denied (a writer's
/// policy may allow PutRecords alone), it says so on stderr and assumes the limits of a stream
/// nobody changed (1 MiB per record). Any other failure is the message returned, naming the
/// stream and the call.
pub(crate) async fn producer(
    client: SdkKinesis,
    stream: &str,
    tool: &str,
    settings: impl Fn(Builder<SdkKinesis>) -> Builder<SdkKinesis>,
) -> std::result::Result<Producer, String> {
    let stream_ref = StreamRef::name(stream);
    let built = settings(Producer::builder(client.clone(), stream_ref.clone()))
        .build()
        .await;
    let error = match built {
        Ok(producer) => return Ok(producer),
        Err(BuildError::Describe {
            error: error @ CallError::Refused { .. },
            ..
        }) if is_access_denied(&error) => error,
        Err(BuildError::Describe { error, .. }) => {
            return Err(format!(
                "cannot read stream {stream} (DescribeStreamSummary): {error}"
            ));
        }
        Err(BuildError::ListShards { error, .. }) => {
            return Err(format!(
                "cannot read the shards of stream {stream} (ListShards): {error}"
            ));
        }
        Err(other) => return Err(other.to_string()),
    };
    eprintln!(
        "{tool}: cannot read the limits of stream {stream} ({error}); assuming 1 MiB per record"
    );
    settings(Producer::builder(client, stream_ref))
        .limits(StreamLimits::default())
        .build()
        .await
        .map_err(|error| error.to_string())
}

/// Whether a call was denied by the caller's policy (`AccessDeniedException`).
pub(crate) fn is_access_denied(error: &CallError) -> bool {
    matches!(error, CallError::Refused { code, .. } if code == "AccessDeniedException")
}

/// `n thing` or `n things`.
pub(crate) fn count(n: u64, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// `Duration` from `--flag SECONDS`, or a usage error naming the flag.
pub(crate) fn seconds(flag: &str, seconds: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| Error::usage(format!("{flag} {seconds}: not a number of seconds")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_by_endpoint() {
        use WhichCredentials::{Aws, Dummy};
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
    fn durations_and_counts() {
        assert_eq!(
            seconds("--period", 0.5).unwrap(),
            Duration::from_millis(500)
        );
        let refused = seconds("--period", -1.0).unwrap_err().to_string();
        assert_eq!(refused, "--period -1: not a number of seconds");
        assert!(seconds("--rate", f64::NAN).is_err());
        assert_eq!(count(1, "attempt"), "1 attempt");
        assert_eq!(count(6, "attempt"), "6 attempts");
    }
}
