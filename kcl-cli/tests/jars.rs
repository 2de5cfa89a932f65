//! `kcl jars fetch|verify|path` against a Maven-layout repository served on 127.0.0.1.
//!
//! Most tests use three small fake jars and a test manifest; one uses the real 79 jars of KCL
//! 3.1.3 (from the kclpy-ext wheel) when they can be found or downloaded from PyPI.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::{kcl, require_real_jars, run_kcl, temp_dir, text, Response, Server};

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

    let verify = run_kcl(
        &[
            "jars",
            "verify",
            "--manifest",
            set.manifest.to_str().unwrap(),
            dest.to_str().unwrap(),
        ],
        &dest,
    );
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
    let output = run_kcl(
        &[
            "jars",
            "fetch",
            "--manifest",
            set.manifest.to_str().unwrap(),
            "--dir",
            dest.to_str().unwrap(),
            "--repo",
            &server.url,
        ],
        &dest,
    );
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
    let output = run_kcl(
        &[
            "jars",
            "fetch",
            "--manifest",
            set.manifest.to_str().unwrap(),
            "--dir",
            dest.to_str().unwrap(),
            "--repo",
            &server.url,
            "--retries",
            "5",
        ],
        &dest,
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
    let offline = run_kcl(
        &[
            "jars",
            "fetch",
            "--manifest",
            manifest,
            "--dir",
            dest.to_str().unwrap(),
            "--offline",
        ],
        &dest,
    );
    let (_, stderr) = text(&offline);
    assert_eq!(offline.status.code(), Some(1));
    assert!(stderr.contains("missing"), "{stderr}");
    assert!(stderr.contains("without --offline"), "{stderr}");

    // --from a flat folder of jars (like amazon_kclpy/jars).
    let flat = temp_dir("flat");
    for (_, file, content) in &set.jars {
        std::fs::write(flat.join(file), content).unwrap();
    }
    let from = run_kcl(
        &[
            "jars",
            "fetch",
            "--manifest",
            manifest,
            "--dir",
            dest.to_str().unwrap(),
            "--from",
            flat.to_str().unwrap(),
        ],
        &dest,
    );
    assert!(from.status.success(), "{}", text(&from).1);
    let offline = run_kcl(
        &[
            "jars",
            "fetch",
            "--manifest",
            manifest,
            "--dir",
            dest.to_str().unwrap(),
            "--offline",
        ],
        &dest,
    );
    assert!(offline.status.success(), "{}", text(&offline).1);

    // A jar corrupted in the cache is fetched again (here from a file:// repository).
    let (_, first, _) = &set.jars[0];
    std::fs::write(dest.join(first), b"corrupt").unwrap();
    let offline = run_kcl(
        &[
            "jars",
            "fetch",
            "--manifest",
            manifest,
            "--dir",
            dest.to_str().unwrap(),
            "--offline",
        ],
        &dest,
    );
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
    let bad = run_kcl(
        &[
            "jars",
            "fetch",
            "--manifest",
            manifest,
            "--dir",
            other.to_str().unwrap(),
            "--from",
            flat.to_str().unwrap(),
        ],
        &other,
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
    let output = run_kcl(
        &[
            "jars",
            "verify",
            "--manifest",
            set.manifest.to_str().unwrap(),
            "--dir",
            dir.to_str().unwrap(),
        ],
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
    let output = run_kcl(
        &[
            "jars",
            "path",
            "--manifest",
            manifest,
            "--dir",
            dir.to_str().unwrap(),
            "--classpath",
        ],
        &dir,
    );
    assert_eq!(output.status.code(), Some(1), "jars are missing");
    for (_, file, content) in &set.jars {
        std::fs::write(dir.join(file), content).unwrap();
    }
    let output = run_kcl(
        &[
            "jars",
            "path",
            "--manifest",
            manifest,
            "--dir",
            dir.to_str().unwrap(),
            "--classpath",
        ],
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
    assert!(text(&unknown)
        .1
        .contains("no built-in jar list for KCL 2.0.0"));
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
