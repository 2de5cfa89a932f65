//! Which credentials each AWS service of a worker will be signed with, found before anything
//! starts: `kcl daemon` checks them before it starts a JVM that takes 40 s to fail on bad
//! credentials, and the native engine ([`run`](crate::run)) signs with exactly the source the
//! check found.
//!
//! The properties say where each service is (`kinesisEndpoint`, `dynamoDBEndpoint`; CloudWatch
//! has no endpoint key) and which credentials to use (`AwsCredentialsProvider`, and
//! `AwsCredentialsProviderDynamoDB` / `AwsCredentialsProviderCloudWatch`, which fall back to
//! it). One rule for dummy credentials ([`uses_dummy_credentials`]): an endpoint on this
//! machine's loopback is an emulator, which accepts any credentials; nothing is looked up for
//! it. Otherwise the credentials are resolved as the AWS SDK for Rust resolves them
//! (aws-config's default chain, link by link: environment variables, the profile, the web
//! identity token file, the ECS/container endpoint, EC2 instance metadata), each link's
//! failure kept for the error, the whole check bounded by a timeout ([`DEFAULT_TIMEOUT`]).
//!
//! For the Java daemon ([`CredentialsCheck::java_daemon`]) the value of
//! `AwsCredentialsProvider` is read with the daemon's grammar: a comma-separated chain of
//! classes, each `Class|arg|...`. `DefaultCredentialsProvider` is checked with the Rust chain
//! (and the report says where Java's order would pick another source),
//! `EnvironmentVariableCredentialsProvider`, `ProfileCredentialsProvider|NAME`,
//! `WebIdentityTokenFileCredentialsProvider`, `ContainerCredentialsProvider` and
//! `InstanceProfileCredentialsProvider` with their one link, `KclStsAssumeRoleCredentialsProvider`
//! with the base chain (the role is assumed by the daemon, not checked);
//! `SystemPropertyCredentialsProvider` and unknown classes cannot be checked from outside the
//! JVM; an AWS SDK for Java v1 class is an error (KCL 3.x builds an empty chain from it).
//!
//! ```no_run
//! use kcl_native::run::credentials::CredentialsCheck;
//!
//! let properties = kcl_properties::Properties::load("app.properties")?;
//! match CredentialsCheck::java_daemon(&properties).run_blocking() {
//!     Ok(report) => {
//!         for service in report.services() {
//!             eprintln!("credentials for {}: {}", service.service(), service.outcome());
//!         }
//!     }
//!     Err(error) => eprintln!("error: {error}\nhint: {}", error.hint()),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aws_config::Region;
use aws_config::ecs::EcsCredentialsProvider;
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::imds::credentials::ImdsCredentialsProvider;
use aws_config::meta::region::ProvideRegion;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::web_identity_token::WebIdentityTokenCredentialsProvider;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_kinesis::config::{Credentials, ProvideCredentials, SharedCredentialsProvider};
use kcl_properties::Properties;
use kcl_properties::endpoint::is_loopback_url;
use tokio::time::Instant;

use crate::config::NativeConfig;

/// How long a whole check may take: every link of the chain, for every service. Off EC2 the
/// instance-metadata link gives up after its own retries (about 5 s); a network that swallows
/// the packets is cut here.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The access key of the dummy credentials an emulator on this machine gets (its secret is the
/// same word).
pub const DUMMY_ACCESS_KEY: &str = "kcl-local";

/// Whether requests to `endpoint` are signed with dummy credentials: the endpoint is on this
/// machine's loopback (an emulator accepts any credentials, and nobody's real ones should reach
/// it by default; the rule of `kcl put`). The one rule of the native engine's clients and of
/// the check.
///
/// ```
/// use kcl_native::run::credentials::uses_dummy_credentials;
/// assert!(uses_dummy_credentials("http://localhost:4567"));
/// assert!(uses_dummy_credentials("http://127.0.0.1:8000"));
/// assert!(!uses_dummy_credentials("https://kinesis.eu-west-1.amazonaws.com"));
/// ```
pub fn uses_dummy_credentials(endpoint: &str) -> bool {
    is_loopback_url(endpoint)
}

/// The dummy credentials (see [`uses_dummy_credentials`]), as a provider for an SDK client.
///
/// ```
/// let provider = kcl_native::run::credentials::dummy_credentials();
/// # let _ = provider;
/// ```
pub fn dummy_credentials() -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(Credentials::new(
        DUMMY_ACCESS_KEY,
        DUMMY_ACCESS_KEY,
        None,
        None,
        "kcl-native",
    ))
}

/// An AWS service a worker calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// The stream's reads.
    Kinesis,
    /// The lease, coordinator-state and worker-metrics tables.
    DynamoDB,
    /// The metrics the Java daemon publishes.
    CloudWatch,
}

impl Service {
    /// The three services, in the order of the report.
    pub const ALL: [Service; 3] = [Service::Kinesis, Service::DynamoDB, Service::CloudWatch];

    /// The properties key naming this service's credentials.
    ///
    /// ```
    /// use kcl_native::run::credentials::Service;
    /// assert_eq!(Service::DynamoDB.provider_key(), "AwsCredentialsProviderDynamoDB");
    /// ```
    pub fn provider_key(self) -> &'static str {
        match self {
            Service::Kinesis => "AwsCredentialsProvider",
            Service::DynamoDB => "AwsCredentialsProviderDynamoDB",
            Service::CloudWatch => "AwsCredentialsProviderCloudWatch",
        }
    }

    /// The properties key of this service's endpoint, if it has one.
    fn endpoint_key(self) -> Option<&'static str> {
        match self {
            Service::Kinesis => Some("kinesisEndpoint"),
            Service::DynamoDB => Some("dynamoDBEndpoint"),
            Service::CloudWatch => None,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Kinesis => "Kinesis",
            Service::DynamoDB => "DynamoDB",
            Service::CloudWatch => "CloudWatch",
        })
    }
}

/// Which program will sign the requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    /// The Java MultiLangDaemon: `AwsCredentialsProvider*` in its grammar, CloudWatch metrics.
    JavaDaemon,
    /// The native engine: the AWS SDK for Rust's default chain, no CloudWatch.
    Native,
}

/// What to check: the endpoints, the region and the credentials settings of a properties file,
/// for the program that will use them. Build it with [`java_daemon`](Self::java_daemon) or
/// [`native`](Self::native), then [`run`](Self::run) it.
///
/// ```
/// use kcl_native::run::credentials::{CredentialsCheck, Service};
///
/// let properties = kcl_properties::Properties::parse(
///     b"kinesisEndpoint = http://localhost:4567\ndynamoDBEndpoint = http://localhost:8000\n\
///       AwsCredentialsProvider = DefaultCredentialsProvider\nmetricsLevel = NONE\n",
/// );
/// // Both endpoints on this machine: dummy credentials, nothing looked up.
/// let report = CredentialsCheck::java_daemon(&properties).run_blocking().unwrap();
/// let kinesis = report.service(Service::Kinesis);
/// assert!(kinesis.outcome().to_string().starts_with("dummy credentials: endpoint http://localhost:4567"));
/// assert_eq!(report.service(Service::CloudWatch).outcome().to_string(), "not used: metricsLevel = NONE");
/// ```
#[derive(Clone, Debug)]
pub struct CredentialsCheck {
    engine: Engine,
    region: Option<String>,
    /// Kinesis, DynamoDB.
    endpoints: [Option<String>; 2],
    /// `AwsCredentialsProvider`, `...DynamoDB`, `...CloudWatch`, as the file holds them.
    providers: [Option<String>; 3],
    metrics_level: Option<String>,
    timeout: Duration,
}

impl CredentialsCheck {
    /// The check for the Java MultiLangDaemon: its `AwsCredentialsProvider*` values read with
    /// the daemon's grammar, and CloudWatch unless `metricsLevel = NONE`.
    pub fn java_daemon(properties: &Properties) -> CredentialsCheck {
        let text = |key: &str| {
            properties
                .entry(key)
                .map(|e| e.value.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        CredentialsCheck {
            engine: Engine::JavaDaemon,
            region: text("regionName"),
            endpoints: [text("kinesisEndpoint"), text("dynamoDBEndpoint")],
            providers: Service::ALL.map(|s| text(s.provider_key())),
            metrics_level: text("metricsLevel").map(|v| v.to_ascii_uppercase()),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The check for the native engine: the AWS SDK for Rust's default chain for Kinesis and
    /// DynamoDB (the engine does not read `AwsCredentialsProvider`), no CloudWatch (it
    /// publishes no metrics).
    ///
    /// ```
    /// use kcl_native::config::NativeConfig;
    /// use kcl_native::run::credentials::{CredentialsCheck, Service};
    ///
    /// let config = NativeConfig::builder("app", "stream")
    ///     .kinesis_endpoint("http://127.0.0.1:4567")
    ///     .dynamodb_endpoint("http://127.0.0.1:8000")
    ///     .build()
    ///     .unwrap();
    /// let report = CredentialsCheck::native(&config).run_blocking().unwrap();
    /// assert!(report.service(Service::DynamoDB).is_dummy());
    /// assert!(report.service(Service::CloudWatch).outcome().to_string().starts_with("not used"));
    /// ```
    pub fn native(config: &NativeConfig) -> CredentialsCheck {
        CredentialsCheck {
            engine: Engine::Native,
            region: config.region().map(str::to_owned),
            endpoints: [
                config.kinesis_endpoint().map(str::to_owned),
                config.dynamodb_endpoint().map(str::to_owned),
            ],
            providers: [None, None, None],
            metrics_level: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// How long the whole check may take (default [`DEFAULT_TIMEOUT`]).
    ///
    /// ```
    /// # use kcl_native::run::credentials::CredentialsCheck;
    /// let check = CredentialsCheck::java_daemon(&kcl_properties::Properties::default())
    ///     .timeout(std::time::Duration::from_secs(3));
    /// # let _ = check;
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> CredentialsCheck {
        self.timeout = timeout;
        self
    }

    /// [`run`](Self::run) on a tokio runtime of its own (call it outside any runtime).
    pub fn run_blocking(&self) -> Result<CredentialsReport, CredentialsCheckError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CredentialsCheckError {
                services: Service::ALL.to_vec(),
                setting: String::new(),
                problem: Problem::Runtime(e.to_string()),
            })?;
        let result = runtime.block_on(self.run());
        // An IMDS or container request still in flight past the deadline must not hold the
        // caller.
        runtime.shutdown_background();
        result
    }

    /// Finds each service's credentials: dummy ones for an endpoint on this machine, else the
    /// first source of the configured chain that gives credentials. Fails when Kinesis or
    /// DynamoDB has none (the error lists what was tried), when a source is misconfigured (the
    /// SDK stops there too), or on an SDK for Java v1 class name; CloudWatch without
    /// credentials is only a warning in the report (the daemon runs without its metrics).
    pub async fn run(&self) -> Result<CredentialsReport, CredentialsCheckError> {
        let deadline = Instant::now() + self.timeout;
        let mut conf: Option<ProviderConfig> = None;
        let mut resolved: Vec<(String, Result<Resolution, Problem>)> = Vec::new();
        let mut services = Vec::new();
        let mut errors: Vec<CredentialsCheckError> = Vec::new();
        for service in Service::ALL {
            if let Some(outcome) = self.without_lookup(service) {
                services.push(ServiceCredentials {
                    service,
                    outcome,
                    notes: Vec::new(),
                    provider: None,
                });
                continue;
            }
            let setting = self.setting(service);
            let result = match resolved.iter().find(|(s, _)| *s == setting) {
                Some((_, result)) => result.clone(),
                None => {
                    if conf.is_none() {
                        conf = Some(self.provider_config(deadline).await);
                    }
                    let config = conf.as_ref().expect("just set");
                    let result = self.resolve(&setting, config, deadline).await;
                    resolved.push((setting.clone(), result.clone()));
                    result
                }
            };
            match result {
                Ok(resolution) => services.push(resolution.for_service(service)),
                Err(Problem::NotChecked(why)) => services.push(ServiceCredentials {
                    service,
                    outcome: Outcome::NotChecked(why),
                    notes: Vec::new(),
                    provider: None,
                }),
                Err(problem) if service == Service::CloudWatch => services.push(ServiceCredentials {
                    service,
                    outcome: Outcome::Missing(format!(
                        "{}; the daemon runs, but cannot publish its metrics (set metricsLevel = NONE to turn them off)",
                        CredentialsCheckError {
                            services: vec![service],
                            setting,
                            problem,
                        }
                        .summary()
                    )),
                    notes: Vec::new(),
                    provider: None,
                }),
                Err(problem) => match errors
                    .iter_mut()
                    .find(|e| e.setting == setting && e.problem == problem)
                {
                    Some(error) => error.services.push(service),
                    None => errors.push(CredentialsCheckError {
                        services: vec![service],
                        setting,
                        problem,
                    }),
                },
            }
        }
        match errors.into_iter().next() {
            Some(error) => Err(error),
            None => Ok(CredentialsReport { services }),
        }
    }

    /// The outcome of a service that needs no lookup: dummy credentials, or not used.
    fn without_lookup(&self, service: Service) -> Option<Outcome> {
        if let Some(key) = service.endpoint_key() {
            let endpoint = self.endpoints[service.index()].as_deref()?;
            return uses_dummy_credentials(endpoint).then(|| Outcome::Dummy {
                key,
                endpoint: endpoint.to_owned(),
                java: self.engine == Engine::JavaDaemon,
            });
        }
        // CloudWatch.
        if self.engine == Engine::Native {
            return Some(Outcome::NotUsed(
                "the native engine publishes no CloudWatch metrics".into(),
            ));
        }
        if self.metrics_level.as_deref() == Some("NONE") {
            return Some(Outcome::NotUsed("metricsLevel = NONE".into()));
        }
        let local = |i: usize| {
            self.endpoints[i]
                .as_deref()
                .is_some_and(uses_dummy_credentials)
        };
        if local(0) && local(1) {
            return Some(Outcome::NotChecked(
                "the daemon publishes its metrics to CloudWatch on AWS (no endpoint key), not to the emulator; set metricsLevel = NONE".into(),
            ));
        }
        None
    }

    /// The credentials setting that applies to `service`: its key, else
    /// `AwsCredentialsProvider`; for the native engine, its chain.
    fn setting(&self, service: Service) -> String {
        if self.engine == Engine::Native {
            return String::new();
        }
        let own = self.providers[service.index()].as_deref();
        let value = own.or(self.providers[0].as_deref());
        let key = if own.is_some() {
            service.provider_key()
        } else {
            "AwsCredentialsProvider"
        };
        match value {
            Some(value) => format!("{key} = {value}"),
            None => String::new(),
        }
    }

    /// The configuration the SDK's providers read: the process's environment and files, the
    /// region (`regionName`, else the SDK's region chain, as its default chain does).
    async fn provider_config(&self, deadline: Instant) -> ProviderConfig {
        let region = match &self.region {
            Some(region) => Some(Region::new(region.clone())),
            None => tokio::time::timeout_at(
                deadline,
                aws_config::default_provider::region::default_provider().region(),
            )
            .await
            .ok()
            .flatten(),
        };
        ProviderConfig::without_region().with_region(region)
    }

    /// Resolves one setting (`KEY = VALUE`, or empty for the SDK's default chain).
    async fn resolve(
        &self,
        setting: &str,
        conf: &ProviderConfig,
        deadline: Instant,
    ) -> Result<Resolution, Problem> {
        let value = setting.split_once(" = ").map_or("", |(_, value)| value);
        let elements = if self.engine == Engine::Native || value.is_empty() {
            vec![Element::Default]
        } else {
            parse_value(value)
        };
        if elements.is_empty() {
            return Err(Problem::Empty);
        }
        if let Some(Element::V1 { class, replacement }) =
            elements.iter().find(|e| matches!(e, Element::V1 { .. }))
        {
            return Err(Problem::V1 {
                class: class.clone(),
                replacement,
            });
        }
        let mut tried = Vec::new();
        let mut skipped: Vec<String> = Vec::new();
        for element in &elements {
            let (links, profile) = match element {
                Element::Default | Element::AssumeRole { .. } => (DEFAULT_CHAIN, None),
                Element::Environment => (&[Link::Environment][..], None),
                Element::Profile(name) => (&[Link::Profile][..], name.clone()),
                Element::WebIdentity => (&[Link::WebIdentity][..], None),
                Element::Container => (&[Link::Container][..], None),
                Element::InstanceProfile => (&[Link::InstanceMetadata][..], None),
                Element::SystemProperty => {
                    skipped.push("SystemPropertyCredentialsProvider reads the JVM's system properties (-Daws.accessKeyId=... -Daws.secretAccessKey=..., e.g. through --java-opt), which cannot be checked from outside the JVM".into());
                    continue;
                }
                Element::Unknown(class) => {
                    skipped.push(format!(
                        "{class} is not a class kcl knows; the daemon may find it on its classpath, not checked"
                    ));
                    continue;
                }
                Element::V1 { .. } => unreachable!("refused above"),
            };
            match resolve_links(links, profile.as_deref(), conf, deadline, &mut tried).await? {
                Some((link, credentials, provider)) => {
                    let mut notes: Vec<String> = skipped
                        .iter()
                        .map(|s| format!("the daemon tries this first: {s}"))
                        .collect();
                    if self.engine == Engine::JavaDaemon {
                        notes.extend(java_notes(element, link));
                    }
                    return Ok(Resolution {
                        found: Found::new(link, profile.as_deref(), &credentials),
                        provider,
                        notes,
                    });
                }
                None => continue,
            }
        }
        if !skipped.is_empty() {
            return Err(Problem::NotChecked(skipped.join("; ")));
        }
        Err(Problem::NotFound { tried })
    }
}

/// The links of the AWS SDK for Rust's default chain, in its order (aws-config 1.x,
/// `default_provider::credentials::Builder::build`).
const DEFAULT_CHAIN: &[Link] = &[
    Link::Environment,
    Link::Profile,
    Link::WebIdentity,
    Link::Container,
    Link::InstanceMetadata,
];

/// Tries `links` in order as the SDK's chain does: the first that gives credentials wins, one
/// that has none (`CredentialsNotLoaded`) passes on to the next, any other error stops the
/// chain. Each link that had none adds a line to `tried`.
async fn resolve_links(
    links: &[Link],
    profile: Option<&str>,
    conf: &ProviderConfig,
    deadline: Instant,
    tried: &mut Vec<String>,
) -> Result<Option<(Link, Credentials, SharedCredentialsProvider)>, Problem> {
    for &link in links {
        let what = link.describe(profile);
        // Already tried by an earlier element of the value: the same answer.
        if tried.iter().any(|t| t.starts_with(&what)) {
            continue;
        }
        let provider = link.provider(profile, conf);
        match tokio::time::timeout_at(deadline, provider.provide_credentials()).await {
            Err(_) => {
                tried.push(format!("{what}: no answer before the check's time ran out"));
                return Err(Problem::TimedOut {
                    tried: std::mem::take(tried),
                });
            }
            Ok(Ok(credentials)) => return Ok(Some((link, credentials, provider))),
            Ok(Err(error @ CredentialsError::CredentialsNotLoaded(_))) => {
                let mut why = reason(&error);
                if link == Link::Profile && why == error.to_string() {
                    why = profile_absence(profile);
                }
                tried.push(format!("{what}: {why}"));
            }
            Ok(Err(error)) => {
                tried.push(format!("{what}: failed: {}", reason(&error)));
                return Err(Problem::SourceFailed {
                    tried: std::mem::take(tried),
                    // Off EC2, the instance metadata endpoint may answer with an error rather
                    // than not at all: nothing more was configured.
                    last: link == Link::InstanceMetadata,
                });
            }
        }
    }
    Ok(None)
}

/// The SDK's reason for an error: the messages of its sources (the top one only says which
/// kind of error it is).
fn reason(error: &CredentialsError) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        let text = inner.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = inner.source();
    }
    if parts.is_empty() {
        error.to_string()
    } else {
        parts.join(": ")
    }
}

/// What a Java `DefaultCredentialsProvider` (or an STS provider over it) would do differently
/// from the Rust chain that found `link`.
fn java_notes(element: &Element, link: Link) -> Vec<String> {
    let mut notes = Vec::new();
    if matches!(element, Element::Default | Element::AssumeRole { .. })
        && link == Link::Profile
        && env_set("AWS_WEB_IDENTITY_TOKEN_FILE")
        && env_set("AWS_ROLE_ARN")
    {
        notes.push(
            "the Java daemon may sign with another source: Java's DefaultCredentialsProvider tries the web identity token file (AWS_WEB_IDENTITY_TOKEN_FILE, set here) before the profile (Java: system properties, environment, web identity, profile, container, instance metadata; Rust: environment, profile, web identity, container, instance metadata)".into(),
        );
    }
    if let Element::AssumeRole { class, role } = element {
        notes.push(format!(
            "{class}: the daemon assumes role {} through STS with these credentials; the role itself is not checked",
            role.as_deref().unwrap_or("(no role ARN given)")
        ));
    }
    notes
}

/// Whether environment variable `name` is set and not empty.
fn env_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

/// One link of the SDK's chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Link {
    Environment,
    Profile,
    WebIdentity,
    Container,
    InstanceMetadata,
}

impl Link {
    /// The SDK's provider of this link, configured as the default chain configures it.
    fn provider(self, profile: Option<&str>, conf: &ProviderConfig) -> SharedCredentialsProvider {
        match self {
            Link::Environment => {
                SharedCredentialsProvider::new(EnvironmentVariableCredentialsProvider::new())
            }
            Link::Profile => {
                let mut builder = ProfileFileCredentialsProvider::builder().configure(conf);
                if let Some(name) = profile {
                    builder = builder.profile_name(name);
                }
                SharedCredentialsProvider::new(builder.build())
            }
            Link::WebIdentity => SharedCredentialsProvider::new(
                WebIdentityTokenCredentialsProvider::builder()
                    .configure(conf)
                    .build(),
            ),
            Link::Container => SharedCredentialsProvider::new(
                EcsCredentialsProvider::builder().configure(conf).build(),
            ),
            Link::InstanceMetadata => SharedCredentialsProvider::new(
                ImdsCredentialsProvider::builder().configure(conf).build(),
            ),
        }
    }

    /// What this link looks at, in plain words with the names that configure it.
    fn describe(self, profile: Option<&str>) -> String {
        match self {
            Link::Environment => {
                "environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into()
            }
            Link::Profile => {
                let (credentials, config) = profile_files();
                let from = if profile.is_some() {
                    "from AwsCredentialsProvider"
                } else if env_set("AWS_PROFILE") {
                    "from AWS_PROFILE"
                } else {
                    "AWS_PROFILE unset"
                };
                format!(
                    "profile {} ({from}) in {} and {} (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE)",
                    profile_name(profile),
                    credentials.display(),
                    config.display()
                )
            }
            Link::WebIdentity => {
                "web identity token file (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN)".into()
            }
            Link::Container => {
                "ECS/container endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or AWS_CONTAINER_CREDENTIALS_FULL_URI)".into()
            }
            Link::InstanceMetadata => {
                "EC2 instance metadata (http://169.254.169.254, or AWS_EC2_METADATA_SERVICE_ENDPOINT; off with AWS_EC2_METADATA_DISABLED=true)".into()
            }
        }
    }
}

/// Why the profile link had nothing, when the SDK only says it had nothing.
fn profile_absence(explicit: Option<&str>) -> String {
    let (credentials, config) = profile_files();
    let name = profile_name(explicit);
    if !credentials.exists() && !config.exists() {
        return "neither file exists".into();
    }
    if file_defining(&name).is_none() {
        return format!("no profile {name} in them");
    }
    format!("profile {name} has no credentials")
}

/// The profile the SDK reads: the one named, else `AWS_PROFILE`, else `default`.
fn profile_name(explicit: Option<&str>) -> String {
    explicit
        .map(str::to_owned)
        .or_else(|| std::env::var("AWS_PROFILE").ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "default".into())
}

/// The shared credentials file and the config file the SDK reads.
fn profile_files() -> (PathBuf, PathBuf) {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let file = |variable: &str, default: &str| match std::env::var_os(variable) {
        Some(value) if !value.is_empty() => {
            let value = PathBuf::from(value);
            match value.strip_prefix("~") {
                Ok(rest) => home.join(rest),
                Err(_) => value,
            }
        }
        _ => home.join(".aws").join(default),
    };
    (
        file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        file("AWS_CONFIG_FILE", "config"),
    )
}

/// The file that defines profile `name`: the credentials file (`[name]`), else the config file
/// (`[profile name]`, or `[default]`).
fn file_defining(name: &str) -> Option<PathBuf> {
    let (credentials, config) = profile_files();
    let defines = |path: &PathBuf, headers: &[String]| {
        std::fs::read_to_string(path).is_ok_and(|text| {
            text.lines().any(|line| {
                let line = line.trim();
                line.strip_prefix('[')
                    .and_then(|l| l.strip_suffix(']'))
                    .is_some_and(|inner| {
                        let inner = inner.split_whitespace().collect::<Vec<_>>().join(" ");
                        headers.contains(&inner)
                    })
            })
        })
    };
    if defines(&credentials, &[name.to_owned()]) {
        return Some(credentials);
    }
    let mut headers = vec![format!("profile {name}")];
    if name == "default" {
        headers.push("default".into());
    }
    defines(&config, &headers).then_some(config)
}

/// Where credentials came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    Environment,
    /// A profile of the shared files.
    Profile {
        /// The profile's name.
        name: String,
        /// The file that defines it, if kcl found it.
        file: Option<PathBuf>,
        /// How the profile gives credentials when not static keys (a role assumed through
        /// STS, `credential_process`, SSO, ...).
        via: Option<String>,
    },
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` with `AWS_ROLE_ARN` (e.g. EKS).
    WebIdentityToken {
        /// The token file.
        file: String,
    },
    /// The ECS/container endpoint.
    Container,
    /// EC2 instance metadata (an instance profile).
    InstanceMetadata,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Environment => f.write_str("environment variables"),
            Source::Profile { name, file, via } => {
                write!(f, "profile {name}")?;
                if let Some(file) = file {
                    write!(f, " in {}", file.display())?;
                }
                if let Some(via) = via {
                    write!(f, " ({via})")?;
                }
                Ok(())
            }
            Source::WebIdentityToken { file } => write!(f, "web identity token file {file}"),
            Source::Container => f.write_str("ECS/container endpoint"),
            Source::InstanceMetadata => f.write_str("EC2 instance metadata"),
        }
    }
}

/// aws-config's `Credentials::provider_name()` in plain words (the names in aws-config 1.x's
/// sources).
///
/// ```
/// use kcl_native::run::credentials::plain_provider_name;
/// assert_eq!(plain_provider_name("EnvironmentVariable"), "environment variables");
/// assert_eq!(plain_provider_name("IMDSv2"), "EC2 instance metadata");
/// assert_eq!(plain_provider_name("SomethingNew"), "SomethingNew");
/// ```
pub fn plain_provider_name(name: &str) -> &str {
    match name {
        "EnvironmentVariable" | "Environment" => "environment variables",
        "ProfileFile" | "Profile" => "profile file",
        "WebIdentityToken" => "web identity token file",
        "EcsContainer" => "ECS/container endpoint",
        "IMDSv2" | "Ec2InstanceMetadata" => "EC2 instance metadata",
        "AssumeRoleProvider" => "role assumed through STS",
        "CredentialProcess" => "credential_process",
        "SSO" => "IAM Identity Center (SSO)",
        "Login" => "aws login session",
        other => other,
    }
}

/// Credentials a source gave: where from, the access key id's first 4 characters, and when
/// they expire. Never the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    source: Source,
    key_prefix: String,
    expires: Option<SystemTime>,
}

impl Found {
    fn new(link: Link, profile: Option<&str>, credentials: &Credentials) -> Found {
        let source = match link {
            Link::Environment => Source::Environment,
            Link::Profile => {
                let name = profile_name(profile);
                let provider = credentials_provider_name(credentials);
                Source::Profile {
                    file: file_defining(&name),
                    name,
                    via: (provider != "ProfileFile")
                        .then(|| plain_provider_name(&provider).to_owned()),
                }
            }
            Link::WebIdentity => Source::WebIdentityToken {
                file: std::env::var("AWS_WEB_IDENTITY_TOKEN_FILE").unwrap_or_default(),
            },
            Link::Container => Source::Container,
            Link::InstanceMetadata => Source::InstanceMetadata,
        };
        Found {
            source,
            key_prefix: credentials.access_key_id().chars().take(4).collect(),
            expires: credentials.expiry(),
        }
    }

    /// Where the credentials came from.
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The first 4 characters of the access key id (`AKIA`: a long-term key, `ASIA`: a
    /// temporary one).
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    /// When the credentials expire (temporary ones are renewed by the SDK), if they do.
    pub fn expires(&self) -> Option<SystemTime> {
        self.expires
    }
}

/// The name the SDK gave the credentials' provider.
fn credentials_provider_name(credentials: &Credentials) -> String {
    // `Credentials` keeps the name private; its Debug output shows it.
    let debug = format!("{credentials:?}");
    debug
        .split("provider_name: \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned()
}

/// "expires in 42 min", "does not expire", ...
fn expiry_text(expires: Option<SystemTime>, now: SystemTime) -> String {
    let Some(expires) = expires else {
        return "does not expire".into();
    };
    match expires.duration_since(now) {
        Err(_) => "expired".into(),
        Ok(left) if left < Duration::from_secs(120) => format!("expires in {} s", left.as_secs()),
        Ok(left) if left < Duration::from_secs(2 * 3600) => {
            format!("expires in {} min, renewed by the SDK", left.as_secs() / 60)
        }
        Ok(left) => format!("expires in {} h, renewed by the SDK", left.as_secs() / 3600),
    }
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}…, {})",
            self.source,
            self.key_prefix,
            expiry_text(self.expires, SystemTime::now())
        )
    }
}

/// What the check found for one service.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The endpoint is on this machine: dummy credentials, nothing looked up.
    Dummy {
        /// `kinesisEndpoint` or `dynamoDBEndpoint`.
        key: &'static str,
        /// The endpoint.
        endpoint: String,
        /// For the Java daemon, which signs with what its own chain finds (any value does).
        java: bool,
    },
    /// Credentials a source gave.
    Found(Found),
    /// The service is not called (CloudWatch with `metricsLevel = NONE`, or by the native
    /// engine).
    NotUsed(String),
    /// The credentials cannot be checked from here (a JVM system property, a class kcl does not
    /// know); a warning.
    NotChecked(String),
    /// None found for a service the daemon can run without (CloudWatch); a warning.
    Missing(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Dummy {
                key,
                endpoint,
                java,
            } => {
                write!(
                    f,
                    "dummy credentials: endpoint {endpoint} ({key}) is on this machine, nothing looked up"
                )?;
                if *java {
                    write!(
                        f,
                        " (the Java daemon signs with what AwsCredentialsProvider finds; the emulator accepts any, e.g. AWS_ACCESS_KEY_ID={DUMMY_ACCESS_KEY} AWS_SECRET_ACCESS_KEY={DUMMY_ACCESS_KEY})"
                    )?;
                }
                Ok(())
            }
            Outcome::Found(found) => found.fmt(f),
            Outcome::NotUsed(why) => write!(f, "not used: {why}"),
            Outcome::NotChecked(why) => write!(f, "not checked: {why}"),
            Outcome::Missing(why) => write!(f, "none found: {why}"),
        }
    }
}

/// One service's line of the report.
#[derive(Clone, Debug)]
pub struct ServiceCredentials {
    service: Service,
    outcome: Outcome,
    notes: Vec<String>,
    provider: Option<SharedCredentialsProvider>,
}

impl ServiceCredentials {
    /// The service.
    pub fn service(&self) -> Service {
        self.service
    }

    /// What was found.
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// What else to know: where the Java daemon's chain could differ from the one checked, an
    /// assumed role that was not checked, a source tried first that could not be checked.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Whether the line is a warning (not checked, or none found for CloudWatch).
    pub fn is_warning(&self) -> bool {
        matches!(self.outcome, Outcome::NotChecked(_) | Outcome::Missing(_))
    }

    /// Whether requests are signed with the dummy credentials.
    pub fn is_dummy(&self) -> bool {
        matches!(self.outcome, Outcome::Dummy { .. })
    }

    /// The provider to sign this service's requests with: the dummy credentials, or the very
    /// source the check found (the SDK's provider of that link, which renews temporary
    /// credentials); `None` when nothing was found or the service is not used.
    pub fn provider(&self) -> Option<SharedCredentialsProvider> {
        match &self.outcome {
            Outcome::Dummy { .. } => Some(dummy_credentials()),
            _ => self.provider.clone(),
        }
    }
}

/// The report of a check: one line per service, in the order of [`Service::ALL`].
#[derive(Clone, Debug)]
pub struct CredentialsReport {
    services: Vec<ServiceCredentials>,
}

impl CredentialsReport {
    /// Every service's line.
    pub fn services(&self) -> &[ServiceCredentials] {
        &self.services
    }

    /// The line of `service`.
    pub fn service(&self, service: Service) -> &ServiceCredentials {
        &self.services[service.index()]
    }
}

/// A resolved setting, shared by the services that use it.
#[derive(Clone, Debug)]
struct Resolution {
    found: Found,
    provider: SharedCredentialsProvider,
    notes: Vec<String>,
}

impl Resolution {
    fn for_service(self, service: Service) -> ServiceCredentials {
        ServiceCredentials {
            service,
            outcome: Outcome::Found(self.found),
            notes: self.notes,
            provider: Some(self.provider),
        }
    }
}

/// Why a setting gave no credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Problem {
    /// Every source was tried; none had credentials.
    NotFound { tried: Vec<String> },
    /// The check's time ran out.
    TimedOut { tried: Vec<String> },
    /// A source is configured but failed (the SDK's chain stops there); `tried` ends with it.
    SourceFailed { tried: Vec<String>, last: bool },
    /// Only sources that cannot be checked from here.
    NotChecked(String),
    /// An AWS SDK for Java v1 class.
    V1 {
        class: String,
        replacement: &'static str,
    },
    /// The value names no class.
    Empty,
    /// No async runtime.
    Runtime(String),
}

/// Why the check failed: no credentials for Kinesis or DynamoDB (with what was tried), a
/// source that failed, or a setting the daemon cannot use. [`hint`](Self::hint) says how to fix
/// it.
///
/// ```
/// use kcl_native::run::credentials::CredentialsCheck;
///
/// let properties = kcl_properties::Properties::parse(
///     b"AwsCredentialsProvider = DefaultAWSCredentialsProviderChain\n",
/// );
/// let error = CredentialsCheck::java_daemon(&properties).run_blocking().unwrap_err();
/// assert!(error.to_string().contains("AWS SDK for Java v1"));
/// assert!(error.hint().contains("DefaultCredentialsProvider"));
/// ```
#[derive(Clone, Debug, thiserror::Error)]
#[error("{}", self.message())]
pub struct CredentialsCheckError {
    services: Vec<Service>,
    /// `KEY = VALUE`, or empty for the SDK's default chain.
    setting: String,
    problem: Problem,
}

impl CredentialsCheckError {
    /// The services without credentials.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// What was tried, one line per source, in order (empty when nothing was tried).
    pub fn tried(&self) -> &[String] {
        match &self.problem {
            Problem::NotFound { tried }
            | Problem::TimedOut { tried }
            | Problem::SourceFailed { tried, .. } => tried,
            _ => &[],
        }
    }

    /// "Kinesis and DynamoDB".
    fn service_names(&self) -> String {
        let names: Vec<String> = self.services.iter().map(Service::to_string).collect();
        match names.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        }
    }

    /// `(AwsCredentialsProvider = X)`, or the chain checked.
    fn setting_text(&self) -> String {
        if self.setting.is_empty() {
            "(the AWS SDK's default chain)".into()
        } else {
            format!("({})", self.setting)
        }
    }

    /// The first line of the message.
    fn summary(&self) -> String {
        let services = self.service_names();
        let setting = self.setting_text();
        match &self.problem {
            Problem::NotFound { .. } => format!("no credentials for {services} {setting}"),
            Problem::TimedOut { .. } => {
                format!("no credentials for {services} {setting} before the check's time ran out")
            }
            Problem::SourceFailed { last: true, .. } => {
                format!("no credentials for {services} {setting}")
            }
            Problem::SourceFailed { .. } => format!(
                "no credentials for {services} {setting}: a source is configured but failed (the AWS SDK tries no other after it)"
            ),
            Problem::NotChecked(why) => format!("credentials for {services}: not checked: {why}"),
            Problem::V1 { class, .. } => format!(
                "credentials for {services} {setting}: {class} is an AWS SDK for Java v1 class; KCL 3.x no longer knows SDK v1 classes, and the daemon would build an empty chain (its first AWS call fails)"
            ),
            Problem::Empty => format!("credentials for {services} {setting}: no class named"),
            Problem::Runtime(error) => format!("cannot start the credentials check: {error}"),
        }
    }

    fn message(&self) -> String {
        let mut message = self.summary();
        let tried = self.tried();
        if !tried.is_empty() {
            message.push_str("; tried, in order:");
            for line in tried {
                message.push_str("\n  ");
                message.push_str(line);
            }
        }
        message
    }

    /// How to fix it.
    pub fn hint(&self) -> String {
        match &self.problem {
            Problem::NotFound { .. }
            | Problem::TimedOut { .. }
            | Problem::NotChecked(_)
            | Problem::SourceFailed { last: true, .. } => {
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with a profile in ~/.aws/credentials (`aws configure`), or run where a role is attached (EC2 instance profile, ECS task role, EKS web identity); for an emulator on this machine, set kinesisEndpoint and dynamoDBEndpoint to it (e.g. http://localhost:4566)".into()
            }
            Problem::SourceFailed { .. } => {
                "fix the source that failed (the last line above), or unset what configures it".into()
            }
            Problem::V1 { class, replacement } => format!(
                "replace {class} with {replacement} (the AWS SDK for Java v2 class) in the properties file"
            ),
            Problem::Empty => "name a provider, e.g. AwsCredentialsProvider = DefaultCredentialsProvider".into(),
            Problem::Runtime(_) => "retry; check the process's limits (threads, files)".into(),
        }
    }
}

/// One element of an `AwsCredentialsProvider` value (`Class|arg|...`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Element {
    Default,
    Environment,
    Profile(Option<String>),
    SystemProperty,
    WebIdentity,
    Container,
    InstanceProfile,
    AssumeRole {
        class: String,
        role: Option<String>,
    },
    V1 {
        class: String,
        replacement: &'static str,
    },
    Unknown(String),
}

/// The packages the daemon tries a short class name in
/// (`AwsCredentialsProviderPropertyValueDecoder`), and the STS one.
const V2_PACKAGES: [&str; 3] = [
    "software.amazon.kinesis.multilang.auth.",
    "software.amazon.awssdk.auth.credentials.",
    "software.amazon.awssdk.services.sts.auth.",
];

/// The elements of a value: comma-separated, the daemon's chain.
fn parse_value(value: &str) -> Vec<Element> {
    value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(parse_element)
        .collect()
}

fn parse_element(text: &str) -> Element {
    let mut parts = text.split('|').map(str::trim);
    let class = parts.next().unwrap_or_default();
    let args: Vec<&str> = parts.collect();
    let positional = |i: usize| {
        args.iter()
            .filter(|a| !a.contains('='))
            .nth(i)
            .filter(|a| !a.is_empty())
            .map(|a| (*a).to_owned())
    };
    // SDK v1 names (`com.amazonaws.…`, or a short name v2 does not have): one rule, shared with
    // `kcl properties --check` (kcl_properties::removed).
    if let Some(replacement) = kcl_properties::sdk_v1_provider(class) {
        return Element::V1 {
            class: class.to_owned(),
            replacement,
        };
    }
    let short = V2_PACKAGES
        .iter()
        .find_map(|p| class.strip_prefix(p))
        .unwrap_or(class);
    match short {
        "DefaultCredentialsProvider" => Element::Default,
        "EnvironmentVariableCredentialsProvider" => Element::Environment,
        "ProfileCredentialsProvider" => Element::Profile(positional(0)),
        "SystemPropertyCredentialsProvider" => Element::SystemProperty,
        "WebIdentityTokenFileCredentialsProvider" => Element::WebIdentity,
        "ContainerCredentialsProvider" => Element::Container,
        "InstanceProfileCredentialsProvider" => Element::InstanceProfile,
        "KclStsAssumeRoleCredentialsProvider" | "StsAssumeRoleCredentialsProvider" => {
            Element::AssumeRole {
                class: short.to_owned(),
                role: positional(0),
            }
        }
        _ => Element::Unknown(class.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn java(text: &str) -> CredentialsCheck {
        CredentialsCheck::java_daemon(&Properties::parse(text.as_bytes()))
    }

    #[test]
    fn the_daemon_grammar() {
        assert_eq!(
            parse_value("DefaultCredentialsProvider"),
            [Element::Default]
        );
        assert_eq!(
            parse_value("software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider"),
            [Element::Default]
        );
        assert_eq!(
            parse_value(" ProfileCredentialsProvider|dev , EnvironmentVariableCredentialsProvider"),
            [Element::Profile(Some("dev".into())), Element::Environment]
        );
        assert_eq!(
            parse_value("ProfileCredentialsProvider"),
            [Element::Profile(None)]
        );
        assert_eq!(
            parse_value(
                "KclStsAssumeRoleCredentialsProvider|arn:aws:iam::1:role/r|s|endpointRegion=us-east-1"
            ),
            [Element::AssumeRole {
                class: "KclStsAssumeRoleCredentialsProvider".into(),
                role: Some("arn:aws:iam::1:role/r".into())
            }]
        );
        assert_eq!(
            parse_value("SystemPropertyCredentialsProvider"),
            [Element::SystemProperty]
        );
        assert_eq!(
            parse_value("com.example.MyProvider"),
            [Element::Unknown("com.example.MyProvider".into())]
        );
        assert_eq!(
            parse_value("DefaultAWSCredentialsProviderChain"),
            [Element::V1 {
                class: "DefaultAWSCredentialsProviderChain".into(),
                replacement: "DefaultCredentialsProvider"
            }]
        );
        assert_eq!(
            parse_value("com.amazonaws.auth.profile.ProfileCredentialsProvider|dev"),
            [Element::V1 {
                class: "com.amazonaws.auth.profile.ProfileCredentialsProvider".into(),
                replacement: "ProfileCredentialsProvider"
            }]
        );
        assert_eq!(
            parse_value("com.amazonaws.auth.SystemPropertiesCredentialsProvider"),
            [Element::V1 {
                class: "com.amazonaws.auth.SystemPropertiesCredentialsProvider".into(),
                replacement: "SystemPropertyCredentialsProvider"
            }]
        );
        assert!(parse_value(" , ").is_empty());
    }

    #[test]
    fn loopback_endpoints_get_dummy_credentials_without_a_lookup() {
        // A v1 class would be an error if anything were looked up.
        let check = java(
            "kinesisEndpoint = http://localhost:4567\ndynamoDBEndpoint = http://[::1]:8000\n\
             AwsCredentialsProvider = DefaultAWSCredentialsProviderChain\n",
        );
        let report = check.run_blocking().unwrap();
        let kinesis = report.service(Service::Kinesis);
        assert!(kinesis.is_dummy());
        assert_eq!(
            kinesis.outcome(),
            &Outcome::Dummy {
                key: "kinesisEndpoint",
                endpoint: "http://localhost:4567".into(),
                java: true
            }
        );
        assert!(report.service(Service::DynamoDB).is_dummy());
        assert!(kinesis.provider().is_some());
        // CloudWatch goes to AWS, not to the emulator: said, not looked up.
        let cloudwatch = report.service(Service::CloudWatch);
        assert!(cloudwatch.is_warning());
        assert!(
            cloudwatch
                .outcome()
                .to_string()
                .contains("set metricsLevel = NONE")
        );
    }

    #[test]
    fn the_dummy_provider_gives_the_dummy_key() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let credentials = runtime
            .block_on(dummy_credentials().provide_credentials())
            .unwrap();
        assert_eq!(credentials.access_key_id(), DUMMY_ACCESS_KEY);
        assert!(uses_dummy_credentials("http://localhost:4567"));
        assert!(!uses_dummy_credentials("http://0.0.0.0:4567"));
    }

    #[test]
    fn a_v1_class_is_an_error_naming_its_replacement() {
        let error = java("AwsCredentialsProvider = DefaultAWSCredentialsProviderChain\n")
            .run_blocking()
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("DefaultAWSCredentialsProviderChain is an AWS SDK for Java v1 class"),
            "{message}"
        );
        assert!(message.contains("empty chain"), "{message}");
        assert!(error.hint().contains("DefaultCredentialsProvider"));
        // Kinesis, DynamoDB (falling back to AwsCredentialsProvider) in one error; CloudWatch is
        // only a warning.
        assert_eq!(error.services(), [Service::Kinesis, Service::DynamoDB]);
        assert!(message.starts_with("credentials for Kinesis and DynamoDB"));
    }

    #[test]
    fn each_service_falls_back_to_aws_credentials_provider() {
        let check = java(
            "AwsCredentialsProvider = DefaultCredentialsProvider\n\
             awscredentialsproviderdynamodb = ProfileCredentialsProvider|dev\n",
        );
        assert_eq!(
            check.setting(Service::Kinesis),
            "AwsCredentialsProvider = DefaultCredentialsProvider"
        );
        assert_eq!(
            check.setting(Service::DynamoDB),
            "AwsCredentialsProviderDynamoDB = ProfileCredentialsProvider|dev"
        );
        assert_eq!(
            check.setting(Service::CloudWatch),
            "AwsCredentialsProvider = DefaultCredentialsProvider"
        );
        let native = CredentialsCheck::native(
            &NativeConfig::builder("a", "s")
                .kinesis_endpoint("https://kinesis.example")
                .build()
                .unwrap(),
        );
        assert_eq!(native.setting(Service::Kinesis), "");
    }

    #[test]
    fn cloudwatch_is_checked_only_when_the_daemon_publishes_metrics() {
        let none =
            java("metricsLevel = none\nAwsCredentialsProvider = DefaultCredentialsProvider\n");
        assert_eq!(
            none.without_lookup(Service::CloudWatch),
            Some(Outcome::NotUsed("metricsLevel = NONE".into()))
        );
        let detailed = java("AwsCredentialsProvider = DefaultCredentialsProvider\n");
        assert_eq!(detailed.without_lookup(Service::CloudWatch), None);
        assert_eq!(detailed.without_lookup(Service::Kinesis), None);
        let native = CredentialsCheck::native(&NativeConfig::builder("a", "s").build().unwrap());
        assert!(matches!(
            native.without_lookup(Service::CloudWatch),
            Some(Outcome::NotUsed(_))
        ));
    }

    #[test]
    fn only_unchecked_sources_are_a_warning_not_an_error() {
        for (value, says) in [
            (
                "SystemPropertyCredentialsProvider",
                "cannot be checked from outside the JVM",
            ),
            (
                "com.example.MyProvider",
                "com.example.MyProvider is not a class kcl knows",
            ),
        ] {
            let report = java(&format!(
                "AwsCredentialsProvider = {value}\nmetricsLevel = NONE\n"
            ))
            .run_blocking()
            .unwrap();
            let kinesis = report.service(Service::Kinesis);
            assert!(kinesis.is_warning(), "{value}");
            assert!(kinesis.provider().is_none());
            let line = kinesis.outcome().to_string();
            assert!(line.starts_with("not checked: "), "{line}");
            assert!(line.contains(says), "{line}");
        }
    }

    #[test]
    fn found_credentials_say_the_source_the_key_prefix_and_the_expiry() {
        let found = Found {
            source: Source::Profile {
                name: "dev".into(),
                file: Some(PathBuf::from("/tmp/credentials")),
                via: None,
            },
            key_prefix: "AKIA".into(),
            expires: None,
        };
        assert_eq!(
            found.to_string(),
            "profile dev in /tmp/credentials (AKIA…, does not expire)"
        );
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            expiry_text(Some(now + Duration::from_secs(3000)), now),
            "expires in 50 min, renewed by the SDK"
        );
        assert_eq!(
            expiry_text(Some(now - Duration::from_secs(1)), now),
            "expired"
        );
        assert_eq!(
            Source::WebIdentityToken {
                file: "/var/run/token".into()
            }
            .to_string(),
            "web identity token file /var/run/token"
        );
        let credentials = Credentials::new("AKIAEXAMPLE", "secret", None, None, "ProfileFile");
        assert_eq!(credentials_provider_name(&credentials), "ProfileFile");
        let found = Found::new(Link::Environment, None, &credentials);
        assert_eq!(found.key_prefix(), "AKIA");
        assert!(!format!("{found} {found:?}").contains("secret"));
    }

    #[test]
    fn the_error_lists_what_was_tried_and_how_to_fix_it() {
        let error = CredentialsCheckError {
            services: vec![Service::Kinesis, Service::DynamoDB],
            setting: "AwsCredentialsProvider = DefaultCredentialsProvider".into(),
            problem: Problem::NotFound {
                tried: DEFAULT_CHAIN
                    .iter()
                    .map(|l| format!("{}: not set", l.describe(None)))
                    .collect(),
            },
        };
        let message = error.to_string();
        assert!(message.starts_with(
            "no credentials for Kinesis and DynamoDB (AwsCredentialsProvider = DefaultCredentialsProvider); tried, in order:\n  environment variables AWS_ACCESS_KEY_ID"
        ), "{message}");
        for what in [
            "profile ",
            "web identity token file",
            "ECS/container endpoint",
            "EC2 instance metadata",
        ] {
            assert!(message.contains(what), "{what}: {message}");
        }
        assert!(error.hint().contains("AWS_PROFILE"));
    }

    #[test]
    fn java_notes_for_an_assumed_role() {
        let notes = java_notes(
            &Element::AssumeRole {
                class: "KclStsAssumeRoleCredentialsProvider".into(),
                role: Some("arn:aws:iam::1:role/r".into()),
            },
            Link::Environment,
        );
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("assumes role arn:aws:iam::1:role/r"));
        assert!(notes[0].contains("not checked"));
    }
}
