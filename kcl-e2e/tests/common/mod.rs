//! What the MultiLangDaemon scenario files (`daemon.rs`, `daemon_more.rs`) share: the setup
//! with its loopback check, a daemon worker of a scenario, and how a scenario ends.
#![allow(dead_code)] // each test file uses its own part of it

use kcl_e2e::declared::Flavor;
use kcl_e2e::{Emulators, Processor, Report, Row, Settings, Worker, WorkerSpec};

/// What a scenario needs, said when one is missing.
pub const REQUIRES: &str = "needs the e2e cache (bash scripts/e2e.sh install), java and node, and \
                            `cargo build -p kcl-cli && cargo build --example file_sink --example \
                            declared_sink --example checkpoint_on_shutdown`; run with --ignored";

/// The settings and emulators of one test, with the loopback check as the first scenario's
/// first check (`setup-emulators-on-loopback-only`).
pub fn setup(report: &mut Report) -> (Settings, Emulators) {
    let settings = Settings::from_env().unwrap_or_else(|e| panic!("{e} ({REQUIRES})"));
    println!(
        "kcl end-to-end harness (Rust): run folder {}",
        settings.run_dir.display()
    );
    let emulators = Emulators::start(&settings).unwrap_or_else(|e| panic!("{e}"));
    match emulators.loopback_only() {
        Ok(detail) => report.check("setup-emulators-on-loopback-only", true, detail),
        Err(error) => report.check("setup-emulators-on-loopback-only", false, error.message()),
    };
    (settings, emulators)
}

/// A worker of `app` reading `stream`, in the folder named after its id, with no extra
/// properties.
pub fn spec(app: &str, stream: &str, worker_id: &str, processor: Processor) -> WorkerSpec {
    WorkerSpec {
        application: app.to_owned(),
        stream: stream.to_owned(),
        worker_id: worker_id.to_owned(),
        folder: worker_id.into(),
        processor,
        extra_properties: Vec::new(),
    }
}

/// A daemon worker `<prefix>-worker-<n>` of `app` in `<prefix>/<worker id>`.
pub fn daemon(
    settings: &Settings,
    emulators: &Emulators,
    flavor: Flavor,
    prefix: &str,
    n: u32,
    (stream, app): (&str, &str),
    extra: &[(&str, &str)],
) -> Worker {
    let worker_id = format!("{prefix}-worker-{n}");
    let spec = WorkerSpec {
        application: app.to_owned(),
        stream: stream.to_owned(),
        folder: format!("{prefix}/{worker_id}").into(),
        worker_id,
        processor: flavor
            .processor(settings)
            .unwrap_or_else(|e| panic!("{e} ({REQUIRES})")),
        extra_properties: extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    };
    Worker::daemon(settings, emulators, spec).unwrap_or_else(|e| panic!("{e}"))
}

/// Ends a scenario: the logs' ends on a failure, then the row.
pub fn finish(report: Report, workers: &[&Worker], tally: kcl_e2e::Tally, remark: &str) -> Row {
    if report.failing() {
        for worker in workers {
            worker.print_log_tail(40);
        }
    }
    report.finish(tally, remark)
}

/// Every row's checks passed (the test fails naming the failed checks otherwise).
pub fn assert_all(rows: &[Row]) {
    println!("\n{}", Row::header());
    for row in rows {
        println!("{}", row.line());
    }
    for row in rows {
        row.assert_passed();
    }
}
