//! The two emulators, on 127.0.0.1 only, on free ports the harness picks (so a run can coexist
//! with the Python suite and with other runs), started as `scripts/e2e/emulators.py` starts
//! them:
//!
//! - Kinesis: kinesis-local (npm), under node with the `scripts/e2e/loopback.js` preload that
//!   rewrites every listen() to 127.0.0.1 (it has no bind-address option); plain HTTP/1.1 and
//!   h2c on one port, TLS on another, its certificate through `KINESIS_MOCK_CERT_PATH`.
//! - DynamoDB: moto_server (PyPI moto), `-H 127.0.0.1`.
//!
//! Ready means each answered a real request (ListStreams, ListTables), not just an open port.
//! [`Emulators::loopback_only`] checks every listening socket of their process trees. Both are
//! killed (with their process groups) when [`Emulators`] is dropped; while a test panics their
//! logs' ends are printed first.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::{Credentials, Region};
use tokio::runtime::Runtime;

use crate::error::{Error, Result};
use crate::process::Proc;
use crate::procfs;
use crate::settings::{FAKE_KEY, REGION, Settings};

/// How long the emulators may take to answer (kinesis-local under node takes a few seconds).
const START_DEADLINE: Duration = Duration::from_secs(60);

/// The ports of one pair of emulators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    /// kinesis-local's plain HTTP/1.1 and h2c port (the one clients and the daemon use).
    pub kinesis: u16,
    /// kinesis-local's TLS port.
    pub kinesis_tls: u16,
    /// moto_server's port.
    pub dynamodb: u16,
}

impl Ports {
    /// Three distinct free ports on 127.0.0.1 (bound, read, released: the emulators bind them
    /// a moment later).
    pub fn free() -> Result<Ports> {
        let mut held = Vec::new();
        for _ in 0..3 {
            let listener = TcpListener::bind("127.0.0.1:0")
                .map_err(|e| Error::io("binding a free port on 127.0.0.1", e))?;
            held.push(listener);
        }
        let port = |i: usize| held[i].local_addr().map(|a| a.port());
        let ports = (port(0), port(1), port(2));
        match ports {
            (Ok(kinesis), Ok(kinesis_tls), Ok(dynamodb)) => Ok(Ports {
                kinesis,
                kinesis_tls,
                dynamodb,
            }),
            _ => Err(Error::msg("reading a bound port")),
        }
    }

    /// The three, in one list.
    pub fn all(&self) -> [u16; 3] {
        [self.kinesis, self.kinesis_tls, self.dynamodb]
    }
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(500),
    )
    .is_ok()
}

/// kinesis-local and moto_server, running; stopped on drop.
pub struct Emulators {
    kinesis: Proc,
    dynamodb: Proc,
    ports: Ports,
    runtime: Arc<Runtime>,
    started_in: Duration,
}

impl Emulators {
    /// Starts both from the cache of `settings` on free ports, and waits until each answers.
    /// Their logs go to `<run>/logs/`.
    pub fn start(settings: &Settings) -> Result<Emulators> {
        Self::start_with(settings, false)
    }

    /// [`Emulators::start`], with every request recorded (`recording = true`): kinesis-local
    /// logs at TRACE (a line with each request's headers, `Logging input headers`) and
    /// moto_server writes each request (headers and body) as a JSON line to
    /// [`Emulators::dynamodb_recording`]. See [`crate::iam`].
    pub fn start_recording(settings: &Settings) -> Result<Emulators> {
        Self::start_with(settings, true)
    }

    /// The file moto_server records requests to under [`Emulators::start_recording`].
    pub fn dynamodb_recording(settings: &Settings) -> PathBuf {
        settings.run_dir.join("logs").join("moto_recording.jsonl")
    }

    fn start_with(settings: &Settings, recording: bool) -> Result<Emulators> {
        let t0 = Instant::now();
        let ports = Ports::free()?;
        let runtime = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .map_err(|e| Error::io("building the SDK clients' runtime", e))?,
        );
        let logs = settings.run_dir.join("logs");
        let env = settings.process_env();
        let package = settings.node_package();
        let mut node = Command::new("node");
        node.arg("-r")
            .arg(settings.loopback_preload())
            .arg(package.join("main.js"))
            .current_dir(&settings.run_dir)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("KINESIS_MOCK_PLAIN_PORT", ports.kinesis.to_string())
            .env("KINESIS_MOCK_TLS_PORT", ports.kinesis_tls.to_string())
            .env("KINESIS_MOCK_CERT_PATH", package.join("server.json"))
            .env(
                "LOG_LEVEL",
                if recording {
                    "TRACE".to_owned()
                } else {
                    std::env::var("KCL_E2E_KINESIS_LOG_LEVEL").unwrap_or_else(|_| "WARN".to_owned())
                },
            )
            .env("SHOULD_PERSIST_DATA", "false");
        let kinesis = Proc::spawn("kinesis-local", &mut node, &logs.join("kinesis-local.log"))
            .map_err(|e| {
                Error::missing(
                    e,
                    "node must be on PATH (scripts/e2e.sh installs it with apt-get)",
                )
            })?;
        let mut moto = Command::new(settings.moto_server());
        moto.args(["-H", "127.0.0.1", "-p", &ports.dynamodb.to_string()])
            .current_dir(&settings.run_dir)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)));
        if recording {
            moto.env("MOTO_ENABLE_RECORDING", "True")
                .env("MOTO_RECORDER_FILEPATH", Self::dynamodb_recording(settings));
        }
        let dynamodb = Proc::spawn("moto_server", &mut moto, &logs.join("moto_server.log"))?;
        let mut emulators = Emulators {
            kinesis,
            dynamodb,
            ports,
            runtime,
            started_in: Duration::ZERO,
        };
        if let Err(error) = emulators.wait_ready(t0 + START_DEADLINE) {
            emulators.kinesis.print_log_tail(40);
            emulators.dynamodb.print_log_tail(40);
            return Err(error);
        }
        emulators.started_in = t0.elapsed();
        Ok(emulators)
    }

    fn wait_ready(&mut self, end: Instant) -> Result<()> {
        for (proc, port) in [
            (&mut self.kinesis, self.ports.kinesis),
            (&mut self.dynamodb, self.ports.dynamodb),
        ] {
            while !port_open(port) {
                if let Some(status) = proc.try_status() {
                    return Err(Error::msg(format!(
                        "{} exited at start-up ({status}); its log: {}",
                        proc.name(),
                        proc.log_path().display()
                    )));
                }
                if Instant::now() > end {
                    return Err(Error::msg(format!(
                        "{} did not open 127.0.0.1:{port} in {} s",
                        proc.name(),
                        START_DEADLINE.as_secs()
                    )));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        // An open port is not quite ready: wait for a real answer from each.
        let (kinesis, dynamodb) = (self.kinesis_client(), self.dynamodb_client());
        loop {
            let answered = self.runtime.block_on(async {
                let streams = kinesis.list_streams().send().await;
                let tables = dynamodb.list_tables().send().await;
                match (streams, tables) {
                    (Ok(_), Ok(_)) => Ok(()),
                    (Err(e), _) => Err(Error::sdk("kinesis-local ListStreams", &e)),
                    (_, Err(e)) => Err(Error::sdk("moto_server ListTables", &e)),
                }
            });
            match answered {
                Ok(()) => return Ok(()),
                Err(error) if Instant::now() > end => return Err(error),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// The ports in use.
    pub fn ports(&self) -> Ports {
        self.ports
    }

    /// How long the start took (until both answered).
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// `http://127.0.0.1:<port>` of kinesis-local (plain HTTP and h2c).
    pub fn kinesis_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.kinesis)
    }

    /// `http://127.0.0.1:<port>` of moto_server.
    pub fn dynamodb_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.dynamodb)
    }

    /// The runtime that drives the SDK clients (the harness is synchronous: it `block_on`s).
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// A Kinesis client for kinesis-local: region [`REGION`], dummy credentials.
    pub fn kinesis_client(&self) -> aws_sdk_kinesis::Client {
        let config = aws_sdk_kinesis::Config::builder()
            .behavior_version_latest()
            .region(Region::new(REGION))
            .credentials_provider(credentials())
            .endpoint_url(self.kinesis_endpoint())
            .build();
        aws_sdk_kinesis::Client::from_conf(config)
    }

    /// A DynamoDB client for moto_server: region [`REGION`], dummy credentials.
    pub fn dynamodb_client(&self) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version_latest()
            .region(Region::new(REGION))
            .credentials_provider(credentials())
            .endpoint_url(self.dynamodb_endpoint())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    /// The loopback check of the Python suite: each of the three ports is listened on by
    /// 127.0.0.1 only, and every socket the emulators' process trees listen on (whatever its
    /// port) is a loopback address. `Ok` with what was seen, or `Err` saying what is not.
    pub fn loopback_only(&self) -> Result<String> {
        let mut detail = Vec::new();
        let mut bad = Vec::new();
        for port in self.ports.all() {
            let addresses = procfs::listening_addresses(port);
            if addresses.len() != 1 || !addresses.contains("127.0.0.1") {
                bad.push(format!("port {port} listened on by {addresses:?}"));
            }
        }
        for proc in [&self.kinesis, &self.dynamodb] {
            let listeners = procfs::listeners_of(proc.pid());
            if listeners.is_empty() {
                bad.push(format!("{} listens on nothing", proc.name()));
            }
            for l in &listeners {
                if !procfs::is_loopback(&l.address) {
                    bad.push(format!("{} listens on {l}", proc.name()));
                }
            }
            let list: Vec<String> = listeners.iter().map(ToString::to_string).collect();
            detail.push(format!("{} {}", proc.name(), list.join(" ")));
        }
        let detail = format!(
            "kinesis-local :{} (tls :{}), moto_server :{}, up in {:.1}s; every listening socket of theirs: {}",
            self.ports.kinesis,
            self.ports.kinesis_tls,
            self.ports.dynamodb,
            self.started_in.as_secs_f64(),
            detail.join("; ")
        );
        if bad.is_empty() {
            Ok(detail)
        } else {
            Err(Error::msg(format!("{}; {detail}", bad.join(", "))))
        }
    }

    /// The two log files.
    pub fn logs(&self) -> [PathBuf; 2] {
        [
            self.kinesis.log_path().to_path_buf(),
            self.dynamodb.log_path().to_path_buf(),
        ]
    }

    /// Prints the end of both logs (on a failure).
    pub fn print_logs(&self, lines: usize) {
        self.kinesis.print_log_tail(lines);
        self.dynamodb.print_log_tail(lines);
    }
}

fn credentials() -> Credentials {
    Credentials::new(FAKE_KEY, FAKE_KEY, None, None, "kcl-e2e")
}

impl Drop for Emulators {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_logs(30);
        }
        // The Procs kill their process groups when dropped (fields drop after this).
    }
}
