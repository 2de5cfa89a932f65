//! `kcl jars fetch|verify|path` against a Maven-layout repository served on 127.0.0.1.
//!
//! Most tests use three small fake jars and a test manifest; one uses the real 79 jars of KCL
//! 3.1.3 (from the kclpy-ext wheel) when they can be found or downloaded from PyPI.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

use common::{Response, Server, kcl, require_real_jars, run_kcl, temp_dir, text};

struct FakeSet {
    /// A Maven-layout repository folder.
    repo: PathBuf,
    /// The manifest file.
    manifest: PathBuf,
    /// (repository path, file name, content).
    jars: Vec<(String, String, Vec<u8>)>,
}

fn fake_set() -> FakeSet {
    let dir = temp_dir("fakeset");
    let repo = dir.join("repo");
    let specs = [
        ("org.example", "alpha", "1.0"),
        ("org.example.deep", "beta", "2.1.Final"),
        ("com.other", "gamma", "0.3"),
    ];
    let mut manifest = String::from("# a test manifest\n");
    let mut jars = Vec::new();
    for (group, artifact, version) in specs {
        let content: Vec<u8> = format!("PK fake jar {group}:{artifact}:{version}\n")
            .repeat(1000)
            .into_bytes();
        let file = format!("{artifact}-{version}.jar");
        let path = format!("{}/{artifact}/{version}/{file}", group.replace('.', "/"));
        std::fs::create_dir_all(repo.join(&path).parent().unwrap()).unwrap();
        std::fs::write(repo.join(&path), &content).unwrap();
        manifest.push_str(&format!(
            "{group}:{artifact}:{version} {}\n",
            common::sha256(&content)
        ));
        jars.push((path, file, content));
    }
    let manifest_path = dir.join("manifest.txt");
    std::fs::write(&manifest_path, manifest).unwrap();
    FakeSet {
        repo,
        manifest: manifest_path,
        jars,
    }
}

/// Serves files of `root` (a Maven layout) under `/maven2/`.
fn file_server(root: PathBuf) -> Server {
    Server::start(move |request| {
        let Some(path) = request.path.strip_prefix("/maven2/") else {
            return Response::status(404);
        };
        match std::fs::read(root.join(path)) {
            Ok(body) => Response::ok("application/java-archive", body),
            Err(_) => Response::status(404),
        }
    })
}

fn jar_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `kcl jars SUBCOMMAND --manifest MANIFEST ARGS...`, run in `cwd`.
fn jars(subcommand: &str, manifest: &Path, args: &[&str], cwd: &Path) -> Output {
    let mut all = vec!["jars", subcommand, "--manifest", manifest.to_str().unwrap()];
    all.extend_from_slice(args);
    run_kcl(&all, cwd)
}

/// `kcl jars fetch --manifest MANIFEST --dir DEST ARGS...`, run in `dest`.
fn fetch_into(manifest: &Path, dest: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--dir", dest.to_str().unwrap()];
    all.extend_from_slice(args);
    jars("fetch", manifest, &all, dest)
}

#[test]
fn fetch_downloads_the_maven_layout_then_keeps_valid_jars() {
    let set = fake_set();
    let server = file_server(set.repo.clone());
    let dest = temp_dir("fetch-dest");
    let repo = format!("{}/maven2", server.url);
    let args = [
        "jars",
        "fetch",
        "--manifest",
        set.manifest.to_str().unwrap(),
        "--dir",
        dest.to_str().unwrap(),
        "--repo",
        &repo,
    ];
    let output = run_kcl(&args, &dest);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), dest.to_str().unwrap());
    assert!(stderr.contains("3 fetched"), "{stderr}");
    let mut expected: Vec<String> = set.jars.iter().map(|(_, f, _)| f.clone()).collect();
    expected.sort();
    assert_eq!(jar_files(&dest), expected, "no temporary files are left");
    for (path, file, content) in &set.jars {
        assert_eq!(&std::fs::read(dest.join(file)).unwrap(), content);
        assert!(server.paths().contains(&format!("/maven2/{path}")));
    }
    let requests = server.paths().len();
    let again = run_kcl(&args, &dest);
    assert!(again.status.success());
    assert!(text(&again).1.contains("3 already there"));
    assert_eq!(
        server.paths().len(),
        requests,
        "valid jars are not downloaded again"
    );

    let verify = jars("verify", &set.manifest, &[dest.to_str().unwrap()], &dest);
    assert!(verify.status.success(), "{}", text(&verify).1);
    assert!(text(&verify).0.starts_with("ok:"));
}

#[test]
fn fetch_retries_server_errors_then_gives_up() {
    let set = fake_set();
    let root = set.repo.clone();
    let failures: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let counts = failures.clone();
    // Every jar fails twice with 503, then is served.
    let server = Server::start(move |request| {
        let mut counts = counts.lock().unwrap();
        let seen = counts.entry(request.path.clone()).or_insert(0);
        *seen += 1;
        if *seen <= 2 {
            return Response::status(503);
        }
        match std::fs::read(root.join(request.path.trim_start_matches('/'))) {
            Ok(body) => Response::ok("application/java-archive", body),
            Err(_) => Response::status(404),
        }
    });
    let fetch = |retries: &str, dest: &Path| {
        kcl()
            .args(["jars", "fetch", "--manifest"])
            .arg(&set.manifest)
            .arg("--dir")
            .arg(dest)
            .args(["--repo", &server.url, "--retries", retries])
            .env("KCL_FETCH_RETRY_DELAY_MS", "5")
            .output()
            .unwrap()
    };
    let dest = temp_dir("retry-dest");
    let output = fetch("3", &dest);
    assert!(output.status.success(), "{}", text(&output).1);
    assert!(text(&output).1.contains("HTTP 503; retrying"));
    assert!(failures.lock().unwrap().values().all(|&n| n == 3));

    failures.lock().unwrap().clear();
    let dest = temp_dir("retry-dest-2");
    let output = fetch("1", &dest);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains("3 of 3 jars could not be fetched"),
        "{stderr}"
    );
    assert!(stderr.contains("HTTP 503 (after 2 attempts)"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
    assert!(jar_files(&dest).is_empty(), "nothing half-written is left");
}

#[test]
fn fetch_refuses_a_checksum_mismatch_and_does_not_retry_it() {
    let set = fake_set();
    let (bad_path, bad_file, _) = set.jars[1].clone();
    let root = set.repo.clone();
    let bad = format!("/{bad_path}");
    let server = Server::start(move |request| {
        if request.path == bad {
            return Response::ok("application/java-archive", b"tampered".to_vec());
        }
        match std::fs::read(root.join(request.path.trim_start_matches('/'))) {
            Ok(body) => Response::ok("application/java-archive", body),
            Err(_) => Response::status(404),
        }
    });
    let dest = temp_dir("mismatch-dest");
    let output = fetch_into(&set.manifest, &dest, &["--repo", &server.url]);
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr.contains(&format!("{bad_file}: SHA-256 mismatch")),
        "{stderr}"
    );
    assert!(stderr.contains("refusing the file"), "{stderr}");
    let files = jar_files(&dest);
    assert!(
        !files.contains(&bad_file),
        "the bad file is deleted: {files:?}"
    );
    assert_eq!(
        files.len(),
        2,
        "the good jars are kept, no temp files: {files:?}"
    );
    let requests = server.paths();
    assert_eq!(
        requests.iter().filter(|p| p.ends_with(&bad_file)).count(),
        1,
        "a mismatch is final"
    );
}

#[test]
fn not_found_is_final_and_named() {
    let set = fake_set();
    let server = Server::start(|_| Response::status(404));
    let dest = temp_dir("404-dest");
    let output = fetch_into(
        &set.manifest,
        &dest,
        &["--repo", &server.url, "--retries", "5"],
    );
    let (_, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("not found at http://127.0.0.1"), "{stderr}");
    assert_eq!(server.paths().len(), 3, "one request per jar");
}

#[test]
fn offline_from_folder_file_repo_and_env_override() {
    let set = fake_set();
    let dest = temp_dir("offline-dest");
    let manifest = set.manifest.to_str().unwrap();
    let offline = fetch_into(Path::new(manifest), &dest, &["--offline"]);
    let (_, stderr) = text(&offline);
    assert_eq!(offline.status.code(), Some(1));
    assert!(stderr.contains("missing"), "{stderr}");
    assert!(stderr.contains("without --offline"), "{stderr}");

    // --from a flat folder of jars (like amazon_kclpy/jars).
    let flat = temp_dir("flat");
    for (_, file, content) in &set.jars {
        std::fs::write(flat.join(file), content).unwrap();
    }
    let from = fetch_into(
        Path::new(manifest),
        &dest,
        &["--from", flat.to_str().unwrap()],
    );
    assert!(from.status.success(), "{}", text(&from).1);
    let offline = fetch_into(Path::new(manifest), &dest, &["--offline"]);
    assert!(offline.status.success(), "{}", text(&offline).1);

    // A jar corrupted in the cache is fetched again (here from a file:// repository).
    let (_, first, _) = &set.jars[0];
    std::fs::write(dest.join(first), b"corrupt").unwrap();
    let offline = fetch_into(Path::new(manifest), &dest, &["--offline"]);
    assert!(text(&offline).1.contains("SHA-256 mismatch"));
    let repo = format!("file://{}", set.repo.display());
    let repair = kcl()
        .args(["jars", "fetch", "--manifest", manifest, "--dir"])
        .arg(&dest)
        .env("KCL_MAVEN_REPO", &repo)
        .output()
        .unwrap();
    assert!(repair.status.success(), "{}", text(&repair).1);
    assert!(text(&repair).1.contains("wrong SHA-256, fetching it again"));
    assert_eq!(std::fs::read(dest.join(first)).unwrap(), set.jars[0].2);

    // --from a folder holding a wrong file: refused.
    std::fs::write(flat.join(&set.jars[2].1), b"wrong").unwrap();
    let other = temp_dir("from-bad");
    let bad = fetch_into(
        Path::new(manifest),
        &other,
        &["--from", flat.to_str().unwrap()],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad).1.contains("SHA-256 mismatch"));
}

#[test]
fn verify_lists_missing_mismatched_and_extra_jars() {
    let set = fake_set();
    let dir = temp_dir("verify");
    std::fs::write(dir.join(&set.jars[0].1), &set.jars[0].2).unwrap();
    std::fs::write(dir.join(&set.jars[1].1), b"not the jar").unwrap();
    std::fs::write(dir.join("intruder-9.9.jar"), b"x").unwrap();
    let output = jars(
        "verify",
        &set.manifest,
        &["--dir", dir.to_str().unwrap()],
        &dir,
    );
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout.contains(&format!("missing: {}", set.jars[2].1)),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("SHA-256 mismatch: {}", set.jars[1].1)),
        "{stdout}"
    );
    assert!(
        stdout.contains("not in the list:") && stdout.contains("intruder-9.9.jar"),
        "{stdout}"
    );
    assert!(
        stderr.contains("1 missing, 1 mismatched, 1 extra"),
        "{stderr}"
    );

    let missing_dir = dir.join("nope");
    let output = run_kcl(&["jars", "verify", missing_dir.to_str().unwrap()], &dir);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).1.contains("kcl jars fetch"));
}

#[test]
fn path_prints_the_folder_and_the_classpath() {
    let set = fake_set();
    let dir = temp_dir("path");
    let manifest = set.manifest.to_str().unwrap();
    let output = kcl()
        .args(["jars", "path", "--manifest", manifest])
        .env("KCL_JARS_DIR", &dir)
        .output()
        .unwrap();
    assert_eq!(text(&output).0.trim(), dir.to_str().unwrap());
    let output = jars(
        "path",
        Path::new(manifest),
        &["--dir", dir.to_str().unwrap(), "--classpath"],
        &dir,
    );
    assert_eq!(output.status.code(), Some(1), "jars are missing");
    for (_, file, content) in &set.jars {
        std::fs::write(dir.join(file), content).unwrap();
    }
    let output = jars(
        "path",
        Path::new(manifest),
        &["--dir", dir.to_str().unwrap(), "--classpath"],
        &dir,
    );
    let classpath = text(&output).0;
    let entries: Vec<&str> = classpath.trim().split(':').collect();
    assert_eq!(entries.len(), 3);
    assert!(entries[0].ends_with("alpha-1.0.jar"));

    let default = kcl()
        .args(["jars", "path"])
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", "/home/someone")
        .output()
        .unwrap();
    assert_eq!(
        text(&default).0.trim(),
        "/home/someone/.cache/kcl/jars/3.1.3"
    );
    let unknown = run_kcl(&["jars", "path", "--release", "2.0.0"], &dir);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        text(&unknown)
            .1
            .contains("no built-in jar list for KCL 2.0.0")
    );
}

#[test]
#[ignore = "needs the KCL 3.1.3 jars (KCL_TEST_JARS_DIR, .e2e-cache or PyPI): scripts/test.sh runs it when CI or KCL_REQUIRE_PREREQUISITES is set"]
fn the_real_kcl_jars_match_the_pinned_list_and_fetch_from_a_local_mirror() {
    let jars = require_real_jars();
    let verify = run_kcl(&["jars", "verify", jars.to_str().unwrap()], &jars);
    let (stdout, stderr) = text(&verify);
    assert!(verify.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("the 79 jars of KCL 3.1.3"), "{stdout}");

    // A Maven-layout mirror of them, served over HTTP: `fetch` with the built-in list.
    let manifest = kcl_cli::jars::Manifest::builtin("3.1.3").unwrap();
    let mirror = temp_dir("mirror");
    for jar in &manifest.jars {
        let target = mirror.join(jar.repository_path());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        if std::fs::hard_link(jars.join(jar.file_name()), &target).is_err() {
            std::fs::copy(jars.join(jar.file_name()), &target).unwrap();
        }
    }
    let server = file_server(mirror);
    let dest = temp_dir("real-dest");
    let output = run_kcl(
        &[
            "jars",
            "fetch",
            "--dir",
            dest.to_str().unwrap(),
            "--repo",
            &format!("{}/maven2/", server.url),
        ],
        &dest,
    );
    assert!(output.status.success(), "{}", text(&output).1);
    assert_eq!(server.paths().len(), 79);
    assert!(server
        .paths()
        .contains(&"/maven2/software/amazon/kinesis/amazon-kinesis-client-multilang/3.1.3/amazon-kinesis-client-multilang-3.1.3.jar".to_string()));
    let verify = run_kcl(&["jars", "verify", "--dir", dest.to_str().unwrap()], &dest);
    assert!(verify.status.success(), "{}", text(&verify).0);
}

// ---------------------------------------------------------------------------------------------
// Hardening: credentials, redirects, size caps, leftovers, classpath separators.

/// The password used in the credential tests; it must never appear in kcl's output.
const PASSWORD: &str = "S3cretPassw0rd";

/// One request as [`RawServer`] saw it: the path and the headers (names lower-cased).
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A server on 127.0.0.1 whose handler writes the raw answer itself (redirects with a Location
/// header, lying Content-Length, endless bodies), which `common::Server` cannot.
struct RawServer {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl RawServer {
    fn start(
        handler: impl Fn(&Seen, u16, &mut std::net::TcpStream) + Send + Sync + 'static,
    ) -> RawServer {
        use std::io::BufRead;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let handler = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, handler) = (log.clone(), handler.clone());
                std::thread::spawn(move || {
                    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                    let mut first = String::new();
                    let _ = reader.read_line(&mut first);
                    let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
                    let mut headers = Vec::new();
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        let Some((name, value)) = line.trim_end().split_once(':') else {
                            break;
                        };
                        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
                    }
                    let request = Seen { path, headers };
                    log.lock().unwrap().push(request.clone());
                    let mut stream = stream;
                    handler(&request, port, &mut stream);
                });
            }
        });
        RawServer { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Writes a complete HTTP answer.
fn answer(stream: &mut std::net::TcpStream, status: &str, headers: &str, body: &[u8]) {
    use std::io::Write;
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(body);
}

/// `kcl jars fetch` of the fake set into `dest` from `repo` (short retry delay).
fn fetch_from(set: &FakeSet, dest: &Path, repo: &str, extra: &[&str]) -> std::process::Output {
    kcl()
        .args(["jars", "fetch", "--manifest"])
        .arg(&set.manifest)
        .arg("--dir")
        .arg(dest)
        .args(["--repo", repo])
        .args(extra)
        .env("KCL_FETCH_RETRY_DELAY_MS", "5")
        .env_remove("KCL_MAVEN_USERNAME")
        .env_remove("KCL_MAVEN_PASSWORD")
        .output()
        .unwrap()
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[test]
fn repository_passwords_never_appear_in_messages() {
    let set = fake_set();
    let server = Server::start(|request| {
        if request.path.starts_with("/flaky/") {
            Response::status(503)
        } else {
            Response::status(404)
        }
    });
    let authority = server.url.trim_start_matches("http://").to_string();
    let check = |output: &std::process::Output, what: &str| {
        let (stdout, stderr) = text(output);
        assert_eq!(output.status.code(), Some(1), "{what}: {stderr}");
        assert!(
            !stderr.contains(PASSWORD) && !stdout.contains(PASSWORD),
            "{what}: the password leaked:\n{stderr}"
        );
        stderr
    };

    // 404: in the error and in the hint.
    let dest = temp_dir("secret-404");
    let repo = format!("http://deploy:{PASSWORD}@{authority}/missing/");
    let stderr = check(&fetch_from(&set, &dest, &repo, &["--retries", "0"]), "404");
    assert!(
        stderr.contains(&format!(
            "not found at http://deploy:***@{authority}/missing/"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "check the repository (http://deploy:***@{authority}/missing/"
        )),
        "{stderr}"
    );
    // Loopback over http: the credentials were sent (that is allowed).
    let requests = server.requests.lock().unwrap().clone();
    assert!(
        requests
            .iter()
            .all(|r| r.header("authorization") == Some(basic("deploy", PASSWORD).as_str()))
    );

    // 503, retried: in the retry notes and the final error.
    let repo = format!("http://deploy:{PASSWORD}@{authority}/flaky/");
    let stderr = check(&fetch_from(&set, &dest, &repo, &["--retries", "1"]), "503");
    assert!(stderr.contains("HTTP 503; retrying"), "{stderr}");

    // Nobody listening: a connection error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let repo = format!("http://deploy:{PASSWORD}@127.0.0.1:{port}/m2/");
    let stderr = check(
        &fetch_from(&set, &dest, &repo, &["--retries", "0"]),
        "refused",
    );
    assert!(stderr.contains("deploy:***@127.0.0.1"), "{stderr}");

    // Through KCL_MAVEN_REPO, and in `--help`, which shows the variable.
    let env_repo = format!("http://deploy:{PASSWORD}@{authority}/missing/");
    let output = kcl()
        .args(["jars", "fetch", "--retries", "0", "--manifest"])
        .arg(&set.manifest)
        .arg("--dir")
        .arg(&dest)
        .env("KCL_MAVEN_REPO", &env_repo)
        .output()
        .unwrap();
    check(&output, "KCL_MAVEN_REPO");
    let help = kcl()
        .args(["jars", "fetch", "--help"])
        .env("KCL_MAVEN_REPO", &env_repo)
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(!text(&help).0.contains(PASSWORD), "{}", text(&help).0);

    // An unsupported scheme is named without its password.
    let output = fetch_from(&set, &dest, &format!("ftp://deploy:{PASSWORD}@h/"), &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output).1;
    assert!(
        !stderr.contains(PASSWORD) && stderr.contains("ftp://deploy:***@h/"),
        "{stderr}"
    );

    // KCL_MAVEN_USERNAME / KCL_MAVEN_PASSWORD: sent, and shown redacted.
    server.requests.lock().unwrap().clear();
    let output = kcl()
        .args(["jars", "fetch", "--retries", "0", "--manifest"])
        .arg(&set.manifest)
        .arg("--dir")
        .arg(&dest)
        .args(["--repo", &format!("{}/missing/", server.url)])
        .env("KCL_MAVEN_USERNAME", "ci")
        .env("KCL_MAVEN_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let stderr = check(&output, "KCL_MAVEN_PASSWORD");
    assert!(stderr.contains("http://ci:***@127.0.0.1"), "{stderr}");
    let requests = server.requests.lock().unwrap().clone();
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| r.header("authorization") == Some(basic("ci", PASSWORD).as_str()))
    );
}

#[test]
fn credentials_over_plain_http_to_another_machine_are_refused_before_connecting() {
    let set = fake_set();
    let dest = temp_dir("insecure");
    // 192.0.2.1 is TEST-NET-1: nothing answers there, and kcl must not even try.
    let started = std::time::Instant::now();
    let output = fetch_from(
        &set,
        &dest,
        &format!("http://deploy:{PASSWORD}@192.0.2.1:8081/m2/"),
        &["--timeout", "60", "--retries", "3"],
    );
    let elapsed = started.elapsed();
    let stderr = text(&output).1;
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        elapsed < std::time::Duration::from_secs(5),
        "refused before connecting, not after a timeout: {elapsed:?}"
    );
    assert!(
        stderr.contains("refusing to send the password of repository user deploy over plain http:// to 192.0.2.1"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-insecure-auth"), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");

    // The same for credentials from the environment.
    let output = kcl()
        .args(["jars", "fetch", "--manifest"])
        .arg(&set.manifest)
        .arg("--dir")
        .arg(&dest)
        .args(["--repo", "http://192.0.2.1:8081/m2/"])
        .env("KCL_MAVEN_USERNAME", "ci")
        .env("KCL_MAVEN_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).1.contains("plain http://"),
        "{}",
        text(&output).1
    );
}

#[test]
fn redirects_carry_the_credentials_only_to_the_same_host() {
    let set = fake_set();
    let root = set.repo.clone();
    // /cross/... → http://localhost:PORT/good/... (another host name, same machine);
    // /same/... → /good/... on the same host; /good/... serves the jar.
    let server = RawServer::start(move |request, port, stream| {
        if let Some(rest) = request.path.strip_prefix("/cross/") {
            let location = format!("Location: http://localhost:{port}/good/{rest}\r\n");
            answer(stream, "302 Found", &location, b"");
        } else if let Some(rest) = request.path.strip_prefix("/same/") {
            answer(
                stream,
                "301 Moved",
                &format!("Location: /good/{rest}\r\n"),
                b"",
            );
        } else if let Some(rest) = request.path.strip_prefix("/good/") {
            match std::fs::read(root.join(rest)) {
                Ok(body) => answer(stream, "200 OK", "", &body),
                Err(_) => answer(stream, "404 Not Found", "", b""),
            }
        } else {
            answer(stream, "404 Not Found", "", b"");
        }
    });
    let authority = format!("deploy:{PASSWORD}@127.0.0.1:{}", server.port);
    let expected = basic("deploy", PASSWORD);

    let dest = temp_dir("redirect-cross");
    let output = fetch_from(&set, &dest, &format!("http://{authority}/cross/"), &[]);
    assert!(output.status.success(), "{}", text(&output).1);
    let seen = server.seen();
    let first: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.path.starts_with("/cross/"))
        .collect();
    let second: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.path.starts_with("/good/"))
        .collect();
    assert_eq!((first.len(), second.len()), (3, 3), "{seen:?}");
    assert!(
        first
            .iter()
            .all(|s| s.header("authorization") == Some(&expected))
    );
    assert!(second.iter().all(|s| {
        s.header("host")
            .is_some_and(|h| h.starts_with("localhost:"))
    }));
    assert!(
        second.iter().all(|s| s.header("authorization").is_none()),
        "no credentials after a redirect to another host: {second:?}"
    );

    // A redirect on the same host and port keeps them.
    server.seen.lock().unwrap().clear();
    let dest = temp_dir("redirect-same");
    let output = fetch_from(&set, &dest, &format!("http://{authority}/same/"), &[]);
    assert!(output.status.success(), "{}", text(&output).1);
    let seen = server.seen();
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert!(
        seen.iter()
            .all(|s| s.header("authorization") == Some(&expected))
    );
}

#[test]
fn downloads_stop_at_the_size_cap_without_retrying() {
    let set = fake_set();
    // /endless/...: no Content-Length, zeros until the client hangs up.
    // /huge/...: announces 10 GiB. /m2/...: the real files.
    let root = set.repo.clone();
    let server = RawServer::start(move |request, _, stream| {
        use std::io::Write;
        if request.path.starts_with("/endless/") {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            let zeros = vec![0u8; 64 * 1024];
            while stream.write_all(&zeros).is_ok() {}
        } else if request.path.starts_with("/huge/") {
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 10737418240\r\nConnection: close\r\n\r\n",
            );
            let zeros = vec![0u8; 64 * 1024];
            while stream.write_all(&zeros).is_ok() {}
        } else if let Some(rest) = request.path.strip_prefix("/m2/") {
            match std::fs::read(root.join(rest)) {
                Ok(body) => answer(stream, "200 OK", "", &body),
                Err(_) => answer(stream, "404 Not Found", "", b""),
            }
        }
    });

    let dest = temp_dir("cap-endless");
    let started = std::time::Instant::now();
    let output = fetch_from(
        &set,
        &dest,
        &format!("{}/endless/", server.url()),
        &["--max-jar-size", "1M", "--timeout", "60", "--retries", "3"],
    );
    let elapsed = started.elapsed();
    let stderr = text(&output).1;
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        elapsed < std::time::Duration::from_secs(20),
        "stopped at the cap, not at the timeout: {elapsed:?}"
    );
    assert!(
        stderr.contains("larger than the size cap of 1048576 bytes (--max-jar-size"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("retrying"),
        "a jar over the cap is not retried: {stderr}"
    );
    assert_eq!(server.seen().len(), 3, "one request per jar");
    assert!(
        jar_files(&dest).is_empty(),
        "no temporary file is left: {:?}",
        jar_files(&dest)
    );

    let dest = temp_dir("cap-huge");
    let output = fetch_from(&set, &dest, &format!("{}/huge/", server.url()), &[]);
    let stderr = text(&output).1;
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "announces 10737418240 bytes (Content-Length), more than the size cap of 67108864 bytes"
        ),
        "{stderr}"
    );
    assert!(jar_files(&dest).is_empty(), "{:?}", jar_files(&dest));

    // A size pinned in the manifest is the cap of that jar.
    let pinned = temp_dir("cap-pinned").join("manifest.txt");
    let text_of = std::fs::read_to_string(&set.manifest).unwrap();
    let alpha = text_of.lines().find(|l| l.contains(":alpha:")).unwrap();
    std::fs::write(&pinned, format!("{alpha} 100\n")).unwrap();
    let dest = temp_dir("cap-pinned-dest");
    let output = kcl()
        .args(["jars", "fetch", "--manifest"])
        .arg(&pinned)
        .arg("--dir")
        .arg(&dest)
        .args(["--repo", &format!("{}/m2/", server.url())])
        .output()
        .unwrap();
    let stderr = text(&output).1;
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("more than the 100 bytes the manifest pins for it"),
        "{stderr}"
    );
}

#[test]
fn path_classpath_checks_the_hashes_unless_no_verify() {
    let set = fake_set();
    let dir = temp_dir("path-tamper");
    for (_, file, content) in &set.jars {
        std::fs::write(dir.join(file), content).unwrap();
    }
    let path = |extra: &[&str]| {
        let mut args = vec![
            "jars",
            "path",
            "--manifest",
            set.manifest.to_str().unwrap(),
            "--dir",
            dir.to_str().unwrap(),
            "--classpath",
        ];
        args.extend_from_slice(extra);
        run_kcl(&args, &dir)
    };
    assert!(path(&[]).status.success());
    let mut tampered = set.jars[1].2.clone();
    tampered.push(b'X');
    std::fs::write(dir.join(&set.jars[1].1), tampered).unwrap();
    let output = path(&[]);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.is_empty(), "no classpath is printed: {stdout}");
    assert!(
        stderr.contains(&format!("SHA-256 mismatch: {}", set.jars[1].1)),
        "{stderr}"
    );
    assert!(stderr.contains("kcl jars fetch"), "{stderr}");
    let output = path(&["--no-verify"]);
    assert!(output.status.success(), "{}", text(&output).1);
    assert_eq!(text(&output).0.trim().split(':').count(), 3);
}

#[test]
#[cfg(unix)]
fn a_folder_with_the_classpath_separator_is_refused() {
    let set = fake_set();
    let dir = temp_dir("colon").join("a:b");
    std::fs::create_dir_all(&dir).unwrap();
    for (_, file, content) in &set.jars {
        std::fs::write(dir.join(file), content).unwrap();
    }
    let output = jars(
        "path",
        &set.manifest,
        &["--dir", dir.to_str().unwrap(), "--classpath"],
        &dir,
    );
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("a:b/alpha-1.0.jar contains `:`, Java's classpath separator"),
        "{stderr}"
    );
    assert!(stderr.contains("rename or move that folder"), "{stderr}");
}

#[test]
fn verify_reports_upper_case_jars_and_interrupted_downloads() {
    let set = fake_set();
    let dir = temp_dir("verify-case");
    for (_, file, content) in &set.jars {
        std::fs::write(dir.join(file), content).unwrap();
    }
    std::fs::write(dir.join("Evil.JAR"), b"PK").unwrap();
    std::fs::write(dir.join(".thing-1.0.jar.part-999"), b"PK half").unwrap();
    let output = jars("verify", &set.manifest, &[dir.to_str().unwrap()], &dir);
    let (stdout, stderr) = text(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "not in the list: {}",
            dir.join("Evil.JAR").display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "interrupted download: {}",
            dir.join(".thing-1.0.jar.part-999").display()
        )),
        "{stdout}"
    );
    assert!(
        stderr.contains("1 extra, 1 interrupted downloads"),
        "{stderr}"
    );
}

#[test]
fn fetch_removes_stale_leftovers_and_warns_about_extra_jars() {
    let set = fake_set();
    let dir = temp_dir("leftovers");
    // Left by a run long ago (an hour untouched: stale whoever has pid 999 now).
    let old = dir.join(".thing-1.0.jar.part-999");
    std::fs::write(&old, b"PK half").unwrap();
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    // Left just now by a process that is gone.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = child.id();
    child.wait().unwrap();
    let dead = dir.join(format!(".alpha-1.0.jar.part-{gone}"));
    std::fs::write(&dead, b"PK half").unwrap();
    // Being written by a live process (this test): left alone.
    let live = dir.join(format!(".beta-2.1.Final.jar.part-{}", std::process::id()));
    std::fs::write(&live, b"PK half").unwrap();
    std::fs::write(dir.join("Evil.JAR"), b"PK").unwrap();

    let output = fetch_from(&set, &dir, &format!("file://{}", set.repo.display()), &[]);
    let stderr = text(&output).1;
    assert!(output.status.success(), "{stderr}");
    assert!(!old.exists() && !dead.exists(), "{:?}", jar_files(&dir));
    assert!(live.exists(), "a download that may be running is kept");
    assert!(
        stderr.contains(&format!(
            "removed {}, left by an interrupted download",
            old.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "leaving {}: process {}",
            live.display(),
            std::process::id()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: 1 jar(s) in") && stderr.contains("Evil.JAR"),
        "{stderr}"
    );
}

#[test]
fn manifest_groups_with_empty_parts_are_refused() {
    let dir = temp_dir("bad-group");
    let sha = "0".repeat(64);
    for group in [".tmp", "org.", "org..x"] {
        let manifest = dir.join("m.txt");
        std::fs::write(&manifest, format!("{group}:art:1 {sha}\n")).unwrap();
        let output = jars("verify", &manifest, &[dir.to_str().unwrap()], &dir);
        let stderr = text(&output).1;
        assert_eq!(output.status.code(), Some(2), "{group}: {stderr}");
        assert!(
            stderr.contains("m.txt, line 1: invalid"),
            "{group}: {stderr}"
        );
    }
}
