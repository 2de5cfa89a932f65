//! Helpers shared by the `kcl` integration tests: running the binary, temporary folders, the
//! workspace's examples, a tiny HTTP server on 127.0.0.1, and a fake Kinesis on it
//! ([`kinesis`]).
#![allow(dead_code)]

pub mod kinesis;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `kcl` binary under test.
pub fn kcl() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kcl"));
    command
        .env_remove("KCL_MAVEN_REPO")
        .env_remove("KCL_JARS_DIR");
    command
}

/// Runs `kcl` with `args` (stdin closed) and returns what it printed.
pub fn run_kcl(args: &[&str], dir: &Path) -> Output {
    kcl()
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("kcl runs")
}

/// Stdout and stderr as text.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A new empty folder under the target folder's tmp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "kcl-cli-{name}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A cache folder kept between test runs (downloads from PyPI live there).
pub fn cache_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kcl-cli-cache");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A file of `kcl-cli/tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Builds an example of the `kcl` package (once per name per test binary) and returns its path.
pub fn example(name: &str) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _lock = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let manifest = workspace().join("Cargo.toml");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", name, "--manifest-path"])
        .arg(&manifest)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building example {name} failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    target.join("debug").join("examples").join(name)
}

/// Whether `python3` runs here.
pub fn python3() -> bool {
    Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes `venv` anew (removing what was there) and installs `requirements` into it with
/// `--require-hashes --no-deps` (every package pinned by hash in the file); its python.
pub fn fresh_venv(venv: &Path, requirements: &Path) -> Result<PathBuf, String> {
    let python = venv.join("bin/python");
    let _ = std::fs::remove_dir_all(venv);
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(venv)
        .status()
        .map_err(|e| format!("python3 -m venv did not run: {e}"))?;
    if !status.success() {
        return Err("python3 -m venv failed".into());
    }
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--require-hashes",
            "--no-deps",
            "-r",
        ])
        .arg(requirements)
        .status()
        .map_err(|e| format!("pip did not run: {e}"))?;
    if !status.success() {
        return Err(format!(
            "pip install -r {} failed (is PyPI reachable?)",
            requirements.display()
        ));
    }
    Ok(python)
}

/// One HTTP request as the test server saw it.
#[derive(Clone, Debug)]
pub struct Request {
    /// GET, POST, ...
    pub method: String,
    /// The request target.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The test server's answer.
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Content-Type.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

impl Response {
    /// 200 with a body.
    pub fn ok(content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status: 200,
            content_type,
            body: body.into(),
        }
    }

    /// An empty answer with this status.
    pub fn status(status: u16) -> Response {
        Response {
            status,
            content_type: "text/plain",
            body: Vec::new(),
        }
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1 (one thread per connection, `Connection: close`). It
/// lives as long as the test process.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Every request so far.
    pub requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    /// Starts a server answering with `handler`.
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler = Arc::new(handler);
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let handler = handler.clone();
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &*handler, &seen);
                });
            }
        });
        Server { url, requests }
    }

    /// The requested paths, in order.
    pub fn paths(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.path.clone())
            .collect()
    }
}

fn serve(
    stream: TcpStream,
    handler: &(dyn Fn(&Request) -> Response + Send + Sync),
    seen: &Mutex<Vec<Request>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v): &(String, String)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    let request = Request {
        method,
        path,
        headers,
        body,
    };
    let response = handler(&request);
    seen.lock().unwrap().push(request);
    // One write of the whole answer, without Nagle's delay: an answer split into small writes
    // can wait for the client's delayed ACK (~40 ms a call), and every timing would show it.
    let mut answer = format!(
        "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&response.body);
    let mut stream = stream;
    stream.set_nodelay(true)?;
    stream.write_all(&answer)?;
    stream.flush()
}

/// Lower-case hex SHA-256 of bytes (computed by `sha256sum`-compatible code in the binary's
/// library).
pub fn sha256(bytes: &[u8]) -> String {
    let dir = temp_dir("sha");
    let path = dir.join("f");
    std::fs::write(&path, bytes).unwrap();
    kcl_cli::jars::sha256_file(&path).unwrap()
}

/// The folder of the real KCL 3.1.3 jars, or a test failure saying why there is none (a test
/// that needs them never passes without them).
pub fn require_real_jars() -> PathBuf {
    real_jars().unwrap_or_else(|why| {
        missing(
            "the KCL 3.1.3 jars",
            &format!("{why}; set KCL_TEST_JARS_DIR to a folder holding them, or make PyPI reachable for `pip download kclpy-ext==3.1.3.post4`"),
        )
    })
}

/// Fails the test: a prerequisite is missing. Tests that need something this machine may lack
/// are `#[ignore]`d by default; once asked for, they fail without it instead of passing.
pub fn missing(what: &str, how: &str) -> ! {
    panic!("prerequisite missing: {what}: {how} (this test cannot pass without running)")
}

/// Fails the test unless `program arg` runs (e.g. `java -version`).
pub fn require_program(program: &str, arg: &str) {
    let runs = Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !runs {
        missing(
            program,
            &format!("`{program} {arg}` does not run here; install it and put it on PATH"),
        );
    }
}

/// The folder of the real KCL 3.1.3 jars: $KCL_TEST_JARS_DIR, the end-to-end suite's venv, or
/// the kclpy-ext wheel downloaded from PyPI into the test cache; `Err` says why there is none.
pub fn real_jars() -> Result<PathBuf, String> {
    let manifest = kcl_cli::jars::Manifest::builtin("3.1.3").unwrap();
    let complete = |dir: &Path| {
        manifest
            .jars
            .iter()
            .all(|jar| dir.join(jar.file_name()).is_file())
    };
    if let Some(dir) = std::env::var_os("KCL_TEST_JARS_DIR").map(PathBuf::from) {
        return if complete(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "KCL_TEST_JARS_DIR={} does not hold the 79 jars of KCL 3.1.3",
                dir.display()
            ))
        };
    }
    let venv_lib = workspace().join(".e2e-cache/venv/lib");
    if let Ok(entries) = std::fs::read_dir(&venv_lib) {
        for entry in entries.flatten() {
            let dir = entry.path().join("site-packages/amazon_kclpy/jars");
            if complete(&dir) {
                return Ok(dir);
            }
        }
    }
    let unpacked = cache_dir().join("kclpy-ext-3.1.3.post4");
    let jars = unpacked.join("amazon_kclpy/jars");
    if complete(&jars) {
        return Ok(jars);
    }
    if !python3() {
        return Err("python3 (needed to download the kclpy-ext wheel) does not run".into());
    }
    let download = cache_dir().join("wheels");
    let status = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "kclpy-ext==3.1.3.post4",
            "-d",
        ])
        .arg(&download)
        .status()
        .map_err(|e| format!("pip did not run: {e}"))?;
    if !status.success() {
        return Err("`pip download kclpy-ext==3.1.3.post4` failed (is PyPI reachable?)".into());
    }
    let wheel = std::fs::read_dir(&download)
        .map_err(|e| format!("{}: {e}", download.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().contains("kclpy_ext-3.1.3.post4"))
        .ok_or("pip downloaded no kclpy_ext-3.1.3.post4 wheel")?;
    let status = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])",
        ])
        .arg(&wheel)
        .arg(&unpacked)
        .status()
        .map_err(|e| format!("python3 did not run: {e}"))?;
    if status.success() && complete(&jars) {
        Ok(jars)
    } else {
        Err(format!(
            "{} does not hold the 79 jars of KCL 3.1.3",
            wheel.display()
        ))
    }
}

/// The `scripted_child` program (test-support/src/bin/scripted_child.rs), built once per run.
///
/// It is another package's binary, so Cargo gives no `CARGO_BIN_EXE_` for it here: the test builds
/// it with the Cargo running the tests, into the same target folder and profile, and finds it next
/// to this test's own executable (`<target>/<profile>/deps/run-…` → `<target>/<profile>/`).
pub fn scripted_child() -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    let _lock = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let exe = std::env::current_exe().expect("the test knows its executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from <target>/<profile>/deps");
    let mut build = Command::new(env!("CARGO"));
    build
        .args([
            "build",
            "--quiet",
            "-p",
            "test-support",
            "--bin",
            "scripted_child",
        ])
        .arg("--manifest-path")
        .arg(workspace().join("Cargo.toml"))
        .arg("--target-dir")
        .arg(profile_dir.parent().expect("a target folder"));
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        build.arg("--release");
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "building scripted_child failed");
    let program = profile_dir.join(format!("scripted_child{}", std::env::consts::EXE_SUFFIX));
    assert!(program.is_file(), "no {}", program.display());
    program
}

/// SplitMix64: a seeded generator for generated test cases, so a failure is reproducible with
/// the seed the test prints.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with this probability.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One of `items`.
    pub fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }

    /// 128 random bits.
    pub fn u128(&mut self) -> u128 {
        (u128::from(self.next()) << 64) | u128::from(self.next())
    }

    /// Up to `max` random bytes.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        (0..self.below(max + 1))
            .map(|_| self.next() as u8)
            .collect()
    }
}

/// A small Java program compiled against the real KCL jars, which reads cases on stdin and
/// writes one answer line per case to the file named by its argument (the KCL logs through
/// logback, which may write to stdout; a logback.xml beside it turns that off).
pub struct JavaProbe {
    dir: PathBuf,
    classpath: String,
    class: String,
}

impl JavaProbe {
    /// Writes `source` as `CLASS.java` into a new folder and compiles it with javac against
    /// the jars in `jars`.
    pub fn compile(class: &str, source: &str, jars: &Path) -> JavaProbe {
        let dir = temp_dir(&format!("probe-{class}"));
        std::fs::write(dir.join(format!("{class}.java")), source).unwrap();
        std::fs::write(
            dir.join("logback.xml"),
            r#"<configuration><root level="OFF"/></configuration>"#,
        )
        .unwrap();
        let classpath = format!("{}/*", jars.display());
        let compiled = Command::new("javac")
            .args(["-nowarn", "-cp", &classpath])
            .arg(format!("{class}.java"))
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(compiled.status.success(), "{}", text(&compiled).1);
        JavaProbe {
            dir,
            classpath,
            class: class.to_owned(),
        }
    }

    /// Runs the probe once with `input` on its stdin (fed from a thread, so a large input
    /// cannot dead-lock against the probe's output) and returns its answers file.
    pub fn run(&self, input: String) -> String {
        use std::io::Write as _;
        let answers = self.dir.join("answers.txt");
        let mut java = Command::new("java")
            .arg(format!(
                "-Dlogback.configurationFile={}",
                self.dir.join("logback.xml").display()
            ))
            .args([
                "-cp",
                &format!("{}:{}", self.classpath, self.dir.display()),
                &self.class,
            ])
            .arg(&answers)
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = java.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let finished = java.wait_with_output().unwrap();
        feeder.join().unwrap().unwrap();
        assert!(finished.status.success(), "{}", text(&finished).1);
        std::fs::read_to_string(&answers).unwrap()
    }
}

/// `kcl SUBCOMMAND` with no AWS settings from the environment (no credentials, region,
/// profile or endpoint of whoever runs the tests).
pub fn kcl_without_aws(subcommand: &str) -> Command {
    let mut command = kcl();
    command.arg(subcommand);
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
