//! `kcl daemon` and signals: the JVM must not outlive `kcl` (not even a `kill -9` of `kcl`, on
//! Linux), a SIGTERM right as `kcl` starts must not leave an orphan, and Ctrl-Z stops the JVM
//! too. A fake `java` (a shell script) records its pid and the signals it gets.
#![cfg(target_os = "linux")]
// kill(2) on the processes the tests start.
#![allow(unsafe_code)]

mod common;
mod daemon_support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use daemon_support::{
    KillOnDrop, daemon, pids, process_state, running, send, setup, wait_ready, wait_until,
};

#[test]
fn kill_9_of_kcl_stops_the_daemon() {
    let setup = setup("daemon-kill9");
    let mut kcl = daemon(&setup)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let java = wait_ready(&setup.java_log);
    let _cleanup = KillOnDrop(java);
    kcl.kill().unwrap(); // SIGKILL: kcl cannot forward anything
    kcl.wait().unwrap();
    let gone = wait_until(Duration::from_secs(5), || !running(java));
    let log = std::fs::read_to_string(&setup.java_log).unwrap();
    assert!(
        gone && log.contains("got-term"),
        "java {java} outlived kcl (state {:?}): {log}",
        process_state(java)
    );
}

#[test]
fn sigterm_as_kcl_starts_leaves_no_orphan() {
    let setup = setup("daemon-early-term");
    // How long kcl takes until java runs, to aim the signals at the moment of the spawn.
    let log = |i: usize| setup.dir.join(format!("java-{i}.log"));
    let started = Instant::now();
    let mut kcl = daemon(&setup)
        .env("KCL_FAKE_JAVA_LOG", log(0))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(&log(0));
    let to_spawn = started.elapsed();
    send(libc::SIGTERM, kcl.id());
    assert_eq!(kcl.wait().unwrap().code(), Some(42), "TERM was forwarded");

    const TRIES: usize = 120;
    for i in 1..=TRIES {
        let mut kcl = daemon(&setup)
            .env("KCL_FAKE_JAVA_LOG", log(i))
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // From half the time to spawn up to 1.5 times it, then SIGTERM every 100 µs.
        std::thread::sleep(to_spawn.mul_f64(0.5 + i as f64 / TRIES as f64));
        while kcl.try_wait().unwrap().is_none() {
            // SAFETY: kill(2) on our own unreaped child.
            unsafe { libc::kill(kcl.id() as libc::pid_t, libc::SIGTERM) };
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    let started: Vec<u32> = (1..=TRIES).flat_map(|i| pids(&log(i))).collect();
    let _cleanup: Vec<KillOnDrop> = started.iter().map(|&pid| KillOnDrop(pid)).collect();
    let orphans: Vec<u32> = started
        .iter()
        .copied()
        .filter(|&pid| !wait_until(Duration::from_secs(5), || !running(pid)))
        .collect();
    assert!(
        orphans.is_empty(),
        "{} of {} javas outlived kcl: {orphans:?}",
        orphans.len(),
        started.len()
    );
}

#[test]
fn ctrl_z_stops_and_fg_continues_the_daemon() {
    let setup = setup("daemon-tstp");
    let mut kcl = daemon(&setup)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let java = wait_ready(&setup.java_log);
    let _cleanup = (KillOnDrop(kcl.id()), KillOnDrop(java));
    let stopped = |pid| process_state(pid) == Some('T');
    send(libc::SIGTSTP, kcl.id());
    assert!(
        wait_until(Duration::from_secs(5), || stopped(java)
            && stopped(kcl.id())),
        "after SIGTSTP: kcl {:?}, java {:?}",
        process_state(kcl.id()),
        process_state(java)
    );
    send(libc::SIGCONT, kcl.id());
    assert!(
        wait_until(Duration::from_secs(5), || running(java)
            && !stopped(java)
            && !stopped(kcl.id())),
        "after SIGCONT: kcl {:?}, java {:?}",
        process_state(kcl.id()),
        process_state(java)
    );
    send(libc::SIGTERM, kcl.id());
    assert_eq!(kcl.wait().unwrap().code(), Some(42), "the daemon still ran");
}
