//! The native engine against the KCL 3.1.3 MultiLangDaemon on one local stream (issue 15's
//! performance comparison), run by `scripts/bench_native.sh`.
//!
//! Starts kinesis-local and moto_server once, creates a stream (8 shards by default) and puts N
//! records with a ledger, then runs, one after the other, each engine as its own application
//! (its own lease table, so each reads the whole stream from TRIM_HORIZON) with the same
//! properties file and the same record processor: the daemon (a JVM, one examples/file_sink
//! child per shard) and the native engine (examples/native_file_sink, one process). For each:
//!
//! - resident memory of the whole process tree (the JVM and its children; the native process),
//!   sampled every 250 ms from `/proc`: the sum of PSS (shared pages divided among the
//!   processes mapping them) and of RSS (shared pages in full in each), peak and steady (the
//!   median while records flow);
//! - CPU time (user + system) of the tree, from start to the last record handled and from the
//!   first record handled to the last;
//! - time from spawning the engine to its first `initialize` (the sink's event clock) and to the
//!   first record in the sink (polled every 20 ms);
//! - records/s from the first record handled to the last (all N in the sink, judged by the
//!   ledger: lost 0);
//! - the ledger: put, handled, duplicated, lost. Lost must be 0 for both, else it exits 1.
//!
//! An engine may name its children: `daemon:kclpy` and `native-daemon:kclpy` run
//! scripts/e2e/kclpy_sink.py (written with amazon_kclpy) instead of file_sink (`:rust`, the
//! default, or `--child`'s); `native-daemon` is `kcl daemon --native` (the MultiLangDaemon
//! without Java, the same children, one per shard). The native engine's in-process processor
//! (`native`) exists only in Rust. All engines read the one stream, put once.
//!
//! Prints one JSON line per engine on stdout (scripts/bench_native.py writes the BENCHMARKS.md
//! section from them) and its progress on stderr.
//!
//! ```text
//! bench_native [--records N] [--shards S] [--set KEY=VALUE]...
//!              [--engines daemon,native,native-daemon:kclpy,...] [--child rust|kclpy]
//!              [--deadline SECONDS]
//! ```
//!
//! It needs what the harness's scenarios need (see the crate documentation); with
//! `KCL_E2E_PROFILE=release` the examples are the release builds.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use kcl_e2e::meter::{Meter, Sample, median_between, peak};
use kcl_e2e::poll::now_ms;
use kcl_e2e::scenario::names;
use kcl_e2e::{Emulators, Ledger, Processor, Settings, Signal, Sink, Stream, Worker, WorkerSpec};

/// What the command line asks for.
struct Options {
    records: u64,
    shards: i32,
    extra: Vec<(String, String)>,
    engines: Vec<String>,
    child: String,
    deadline: Duration,
}

/// The properties both engines get beyond the harness's (daemon.rs `BASE_PROPERTIES`, whose
/// `maxRecords = 100` would make the run measure that cap): the KCL's default `maxRecords`.
const BENCH_PROPERTIES: [(&str, &str); 1] = [("maxRecords", "10000")];

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        records: 40_000,
        shards: 8,
        extra: BENCH_PROPERTIES
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        engines: vec!["daemon".to_owned(), "native".to_owned()],
        child: "rust".to_owned(),
        deadline: Duration::from_secs(600),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--records" => {
                options.records = value()?.parse().map_err(|e| format!("--records: {e}"))?;
            }
            "--shards" => {
                options.shards = value()?.parse().map_err(|e| format!("--shards: {e}"))?;
            }
            "--set" => {
                let pair = value()?;
                let (key, val) = pair
                    .split_once('=')
                    .ok_or(format!("--set {pair}: KEY=VALUE"))?;
                options.extra.retain(|(k, _)| k != key);
                options.extra.push((key.to_owned(), val.to_owned()));
            }
            "--engines" => {
                options.engines = value()?.split(',').map(str::to_owned).collect();
                let known = |e: &String| {
                    let (engine, child) = e.split_once(':').unwrap_or((e, "rust"));
                    ["daemon", "native", "native-daemon"].contains(&engine)
                        && ["rust", "kclpy"].contains(&child)
                };
                if !options.engines.iter().all(known) {
                    return Err(
                        "--engines: daemon, native, native-daemon, each optionally :rust or :kclpy (comma-separated)"
                            .to_owned(),
                    );
                }
            }
            "--child" => {
                options.child = value()?;
                if options.child != "rust" && options.child != "kclpy" {
                    return Err("--child: rust or kclpy".to_owned());
                }
            }
            "--deadline" => {
                options.deadline =
                    Duration::from_secs(value()?.parse().map_err(|e| format!("--deadline: {e}"))?);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    // `--child` is the default child of the engines named without one.
    for engine in &mut options.engines {
        if !engine.contains(':') {
            *engine = format!("{engine}:{}", options.child);
        }
    }
    if options.engines.iter().any(|e| e == "native:kclpy") {
        return Err("native:kclpy: the native engine's in-process processor is Rust (native-daemon runs kclpy children)".to_owned());
    }
    if options.records == 0 || options.shards < 1 {
        return Err("--records and --shards must be at least 1".to_owned());
    }
    Ok(options)
}

/// Counts the lines of a sink's record files as they grow, reading only what was appended.
struct LineCounter {
    sink: Sink,
    offsets: BTreeMap<PathBuf, u64>,
    lines: u64,
}

impl LineCounter {
    fn new(sink: Sink) -> Self {
        LineCounter {
            sink,
            offsets: BTreeMap::new(),
            lines: 0,
        }
    }

    /// The record lines written so far.
    fn count(&mut self) -> u64 {
        let Ok(entries) = std::fs::read_dir(self.sink.dir()) else {
            return self.lines;
        };
        let mut buffer = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let record_file = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("records-") && n.ends_with(".tsv"));
            if !record_file {
                continue;
            }
            let offset = self.offsets.entry(path.clone()).or_insert(0);
            let Ok(mut file) = std::fs::File::open(&path) else {
                continue;
            };
            if file.seek(SeekFrom::Start(*offset)).is_err() {
                continue;
            }
            buffer.clear();
            if file.read_to_end(&mut buffer).is_err() {
                continue;
            }
            // Only whole lines: a line being written is counted once it ends.
            if let Some(end) = buffer.iter().rposition(|&b| b == b'\n') {
                self.lines += buffer[..=end].iter().filter(|&&b| b == b'\n').count() as u64;
                *offset += end as u64 + 1;
            }
        }
        self.lines
    }
}

/// One engine's run, as a JSON line's fields.
struct Measured {
    engine: String,
    child: String,
    processes: u64,
    first_initialize_ms: Option<u64>,
    first_record_ms: u64,
    last_record_ms: u64,
    cpu_to_last: Duration,
    cpu_first_to_last: Duration,
    /// The engine process alone (the JVM, or the native process), without its children.
    engine_cpu_to_last: Duration,
    engine_cpu_first_to_last: Duration,
    rss_peak: u64,
    rss_steady: u64,
    pss_peak: u64,
    pss_steady: u64,
    samples: usize,
    put: usize,
    handled: usize,
    duplicated: usize,
    lost: usize,
    stop_secs: f64,
    stop_code: Option<i32>,
    load_before: String,
    load_after: String,
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn run_engine(
    spec_text: &str,
    settings: &Settings,
    emulators: &Emulators,
    stream: &Stream,
    ledger: &Ledger,
    options: &Options,
) -> Result<Measured, String> {
    let (engine, child) = spec_text.split_once(':').unwrap_or((spec_text, "rust"));
    let processor = match child {
        "kclpy" => Processor::kclpy_sink(settings),
        _ => Processor::file_sink(settings),
    }
    .map_err(|e| e.to_string())?;
    let (_, base_app) = names(settings, "bench");
    let name = format!("{engine}-{child}");
    let spec = WorkerSpec {
        application: format!("{base_app}-{name}"),
        stream: stream.name().to_owned(),
        worker_id: format!("bench-{name}-1"),
        folder: format!("bench/{name}").into(),
        processor,
        extra_properties: options.extra.clone(),
    };
    let mut worker = match engine {
        "daemon" => Worker::daemon(settings, emulators, spec),
        "native-daemon" => Worker::native_daemon(settings, emulators, spec),
        _ => Worker::native(settings, emulators, spec),
    }
    .map_err(|e| e.to_string())?;
    for (key, value) in Processor::env(settings).map_err(|e| e.to_string())? {
        worker.set_env(&key, &value);
    }
    let sink = worker.sink();
    let mut counter = LineCounter::new(sink.clone());
    let load_before = loadavg();
    let started = now_ms();
    worker.start().map_err(|e| e.to_string())?;
    let pid = match &worker {
        Worker::Daemon(daemon) => daemon.pid(),
        Worker::Native(native) => native.pid(),
    }
    .ok_or("no PID after start")?;
    let meter = Meter::start(pid, Duration::from_millis(250));
    let wanted = options.records;
    let deadline = Instant::now() + options.deadline;
    let mut first: Option<(u64, Sample)> = None;
    let mut last: Option<(u64, Sample)> = None;
    let mut tallied_at = 0;
    eprintln!("[bench] {engine}: started (PID {pid}), waiting for {wanted} records");
    while last.is_none() {
        if Instant::now() > deadline {
            worker.print_log_tail(40);
            return Err(format!(
                "{engine}: {} record lines of {wanted} after {} s; the ledger: {}",
                counter.lines,
                options.deadline.as_secs(),
                kcl_e2e::tally(ledger, &[&sink], false).line()
            ));
        }
        if !worker.running() {
            worker.print_log_tail(40);
            return Err(format!(
                "{engine}: the worker ended before handling everything"
            ));
        }
        let lines = counter.count();
        if lines > 0 && first.is_none() {
            first = Some((now_ms(), meter.sample()));
            eprintln!(
                "[bench] {engine}: first record after {:.2} s",
                (now_ms() - started) as f64 / 1000.0
            );
        }
        // Every record in the sink (duplicates could reach the count first: the ledger says).
        if lines >= wanted && lines != tallied_at {
            let seen_ms = now_ms();
            let sample = meter.sample();
            tallied_at = lines;
            if kcl_e2e::tally(ledger, &[&sink], false).lost == 0 {
                last = Some((seen_ms, sample));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (first_ms, first_sample) = first.expect("the first record came before the last");
    let (last_ms, last_sample) = last.expect("loop ended on the last record");
    eprintln!(
        "[bench] {engine}: all {wanted} handled after {:.2} s",
        (last_ms - started) as f64 / 1000.0
    );
    let samples = meter.finish();
    let load_after = loadavg();
    let grace = worker.grace();
    let stopped = worker
        .stop(Signal::Term, grace + Duration::from_secs(30))
        .map_err(|e| e.to_string())?;
    let result = kcl_e2e::tally(ledger, &[&sink], false);
    let first_initialize_ms = sink
        .events()
        .iter()
        .filter(|e| e.kind() == "initialize" && e.ms >= started)
        .map(|e| e.ms)
        .min();
    let rss = |s: &Sample| s.rss_kib;
    let pss = |s: &Sample| s.pss_kib;
    Ok(Measured {
        engine: engine.to_owned(),
        child: child.to_owned(),
        processes: peak(&samples, |s| s.processes as u64),
        first_initialize_ms: first_initialize_ms.map(|ms| ms - started),
        first_record_ms: first_ms - started,
        last_record_ms: last_ms - started,
        cpu_to_last: last_sample.cpu,
        cpu_first_to_last: last_sample.cpu.saturating_sub(first_sample.cpu),
        engine_cpu_to_last: last_sample.root_cpu,
        engine_cpu_first_to_last: last_sample.root_cpu.saturating_sub(first_sample.root_cpu),
        rss_peak: peak(&samples, rss),
        rss_steady: median_between(&samples, first_ms, last_ms, rss),
        pss_peak: peak(&samples, pss),
        pss_steady: median_between(&samples, first_ms, last_ms, pss),
        samples: samples.len(),
        put: result.put,
        handled: result.handled,
        duplicated: result.duplicated,
        lost: result.lost,
        stop_secs: stopped.took.as_secs_f64(),
        stop_code: stopped.code,
        load_before,
        load_after,
    })
}

fn json_line(m: &Measured, options: &Options, settings: &Settings) -> String {
    let secs = |ms: u64| ms as f64 / 1000.0;
    let per_record_us = |d: Duration| d.as_secs_f64() * 1e6 / options.records as f64;
    let span = m.last_record_ms.saturating_sub(m.first_record_ms).max(1);
    let properties: Vec<String> = options
        .extra
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "{{\"engine\":{},\"child\":{},\"records\":{},\"shards\":{},\"processes\":{},\
         \"first_initialize_s\":{},\"first_record_s\":{:.3},\"last_record_s\":{:.3},\
         \"records_per_s\":{:.1},\"cpu_to_last_s\":{:.2},\"cpu_first_to_last_s\":{:.2},\
         \"cpu_us_per_record\":{:.1},\"cpu_us_per_record_flowing\":{:.1},\
         \"engine_cpu_to_last_s\":{:.3},\"engine_cpu_first_to_last_s\":{:.3},\
         \"rss_peak_kib\":{},\"rss_steady_kib\":{},\"pss_peak_kib\":{},\"pss_steady_kib\":{},\
         \"samples\":{},\"put\":{},\"handled\":{},\"duplicated\":{},\"lost\":{},\
         \"sigterm_to_exit_s\":{:.2},\"exit_code\":{},\"load_before\":{},\"load_after\":{},\
         \"profile\":{},\"java_opts\":{},\"properties\":{}}}",
        json_string(&m.engine),
        json_string(&m.child),
        options.records,
        options.shards,
        m.processes,
        m.first_initialize_ms
            .map(|ms| format!("{:.3}", secs(ms)))
            .unwrap_or_else(|| "null".to_owned()),
        secs(m.first_record_ms),
        secs(m.last_record_ms),
        options.records as f64 / secs(span),
        m.cpu_to_last.as_secs_f64(),
        m.cpu_first_to_last.as_secs_f64(),
        per_record_us(m.cpu_to_last),
        per_record_us(m.cpu_first_to_last),
        m.engine_cpu_to_last.as_secs_f64(),
        m.engine_cpu_first_to_last.as_secs_f64(),
        m.rss_peak,
        m.rss_steady,
        m.pss_peak,
        m.pss_steady,
        m.samples,
        m.put,
        m.handled,
        m.duplicated,
        m.lost,
        m.stop_secs,
        m.stop_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "null".to_owned()),
        json_string(&m.load_before),
        json_string(&m.load_after),
        json_string(&settings.profile),
        json_string(&settings.java_opts.join(" ")),
        json_string(&properties.join(" ")),
    )
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("bench_native: {error}");
            return ExitCode::from(2);
        }
    };
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("bench_native: {error}");
            return ExitCode::from(2);
        }
    };
    eprintln!(
        "[bench] run folder {} (examples: {} build)",
        settings.run_dir.display(),
        settings.profile
    );
    let emulators = match Emulators::start(&settings) {
        Ok(emulators) => emulators,
        Err(error) => {
            eprintln!("bench_native: {error}");
            return ExitCode::FAILURE;
        }
    };
    let (stream_name, _) = names(&settings, "bench");
    let ledger = Ledger::new();
    let put_started = Instant::now();
    let stream = match Stream::create(&emulators, &stream_name, options.shards)
        .and_then(|s| s.put_records(&ledger, "b", 0, options.records).map(|_| s))
    {
        Ok(stream) => stream,
        Err(error) => {
            eprintln!("bench_native: {error}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "[bench] put {} records into {} shards in {:.1} s",
        ledger.len(),
        ledger.shards().len(),
        put_started.elapsed().as_secs_f64()
    );
    let mut failed = false;
    for engine in &options.engines {
        match run_engine(engine, &settings, &emulators, &stream, &ledger, &options) {
            Ok(measured) => {
                println!("{}", json_line(&measured, &options, &settings));
                eprintln!(
                    "[bench] {engine}: put={} handled={} duplicated={} lost={}",
                    measured.put, measured.handled, measured.duplicated, measured.lost
                );
                if measured.lost != 0 || measured.handled != options.records as usize {
                    eprintln!("bench_native: {engine} lost records");
                    failed = true;
                }
            }
            Err(error) => {
                eprintln!("bench_native: {error}");
                emulators.print_logs(20);
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
