//! The one harness of the facade's integration tests: running a runtime in-process on given
//! input while capturing its `tracing` log ([`run_capturing`]), transcripts of daemon and child
//! lines ([`transcript`]), the daemon's side of the wire as test data ([`wire`]) and the
//! daemon's own reading of a child's line ([`child_line`]).
#![allow(dead_code)] // each test binary uses a part

pub mod child_line;
pub mod transcript;
pub mod wire;

use std::io::Write;
use std::sync::{Arc, Mutex};

use kcl::{RecordProcessor, Runtime};
use serde_json::{Value, json};

/// Log lines captured from `tracing`.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What a run wrote and logged.
pub struct Captures {
    pub result: std::io::Result<()>,
    /// The protocol lines, as JSON values.
    pub lines: Vec<Value>,
    /// Everything logged at DEBUG and above, without colours.
    pub log: String,
}

impl Captures {
    /// The captured log line containing every one of `needles`.
    #[track_caller]
    pub fn logged(&self, needles: &[&str]) -> &str {
        logged(&self.log, needles)
    }
}

/// The line of `log` containing every one of `needles`; panics showing the log if none does.
#[track_caller]
pub fn logged<'a>(log: &'a str, needles: &[&str]) -> &'a str {
    log.lines()
        .find(|l| needles.iter().all(|n| l.contains(n)))
        .unwrap_or_else(|| panic!("no log line contains {needles:?}; log:\n{log}"))
}

std::thread_local! {
    /// Where the log of this thread's capturing run goes, while one runs.
    static CAPTURING: std::cell::RefCell<Option<Captured>> = const { std::cell::RefCell::new(None) };
}

/// Writes to the capture of the thread that logs, if it is capturing.
struct ThisThreadsCapture;

impl Write for ThisThreadsCapture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        CAPTURING.with(|capture| {
            if let Some(captured) = capture.borrow_mut().as_mut() {
                captured.write_all(bytes)?;
            }
            Ok(bytes.len())
        })
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One process-wide subscriber, installed once, that logs only on threads running
/// [`run_capturing`].
///
/// Not a scoped subscriber per test (`with_default`): `tracing` caches each call site's
/// interest for the whole process, computed by the first thread that reaches it. A test running
/// the same code on another thread without a subscriber cached "never", and a capturing test
/// then lost lines (seen once under parallel tests). Here every call site is asked again on
/// every event (the filter depends on the thread), so no cache can hide a line.
fn install_the_capturing_subscriber() {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        // A dynamic filter: its call-site interest is "sometimes", so it is asked on every
        // event (`filter_fn` would cache its first answer per call site).
        let only_capturing_threads =
            tracing_subscriber::filter::dynamic_filter_fn(|metadata, _| {
                *metadata.level() <= tracing::Level::DEBUG
                    && CAPTURING.with(|capture| capture.borrow().is_some())
            });
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(|| ThisThreadsCapture)
            .with_ansi(false)
            .with_filter(only_capturing_threads);
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("no other global subscriber in a test binary using run_capturing");
    });
}

/// Runs `runtime` on `input` while capturing what it logs on this thread (DEBUG and above).
pub fn run_capturing<P: RecordProcessor>(runtime: Runtime<P>, input: &[u8]) -> Captures {
    install_the_capturing_subscriber();
    // A thread that reached a call site while the subscriber was being installed may have
    // cached "never" for it; asking every call site again costs microseconds.
    tracing::callsite::rebuild_interest_cache();
    let captured = Captured::default();
    CAPTURING.with(|capture| *capture.borrow_mut() = Some(captured.clone()));
    let mut output = Vec::new();
    let result = runtime.run_on(input, &mut output);
    CAPTURING.with(|capture| *capture.borrow_mut() = None);
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    Captures {
        result,
        lines: protocol_lines(&output),
        log,
    }
}

/// The non-empty lines a runtime wrote, each parsed as JSON.
pub fn protocol_lines(output: &[u8]) -> Vec<Value> {
    std::str::from_utf8(output)
        .unwrap()
        .split('\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `{"action":"status","responseFor":action}`.
pub fn status(action: &str) -> Value {
    json!({"action":"status","responseFor":action})
}

/// Lines joined with `\n` after each.
pub fn input(lines: &[&str]) -> Vec<u8> {
    lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect()
}
