//! `kcl-bench`: a compiled stand-in for the daemon that measures a MultiLangDaemon child.
//!
//! ```text
//! kcl-bench --batches 200 --records 1000 --payload 200 --runs 5 -- CHILD [ARGS...]
//! kcl-bench --batches 200 --records 1000 --payload 200 --pipe      # `cat`: the pipe's ceiling
//! kcl-bench --batches 2000 --records 1000 --payload 20 --soak-error-percent 2 -- CHILD  # soak
//! ```
//!
//! It pre-builds the workload's lines (Jackson-shaped, 56-digit sequence numbers), spawns the
//! child, sends `initialize`, every batch, then `leaseLost`, answering each checkpoint request at
//! once and checking each status like the daemon. Per run it prints one JSON object: records/s,
//! MB/s of protocol written, child peak RSS (VmHWM, read before EOF), start-up to the first
//! status, child CPU per record. It fails if the child did not checkpoint at the last record of
//! every batch or answered a wrong status.

mod child;
mod proc_stats;
mod soak;
mod workload;

use std::process::ExitCode;

use workload::Workload;

struct Args {
    workload: Workload,
    runs: usize,
    pipe: bool,
    /// `Some(percent)`: a soak run with that share of checkpoint replies failing.
    soak: Option<u64>,
    seed: u64,
    command: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut workload = Workload {
        batches: 200,
        records: 1000,
        payload_bytes: 200,
    };
    let (mut runs, mut pipe, mut command) = (1, false, Vec::new());
    let (mut soak, mut seed) = (None, 1u64);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--batches" => workload.batches = number("--batches")?,
            "--records" => workload.records = number("--records")?,
            "--payload" => workload.payload_bytes = number("--payload")?,
            "--runs" => runs = number("--runs")?,
            "--pipe" => pipe = true,
            "--soak-error-percent" => soak = Some(number("--soak-error-percent")? as u64),
            "--seed" => seed = number("--seed")? as u64,
            "--" => command.extend(args.by_ref()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !pipe && command.is_empty() {
        return Err("give the child after `--`, or --pipe".into());
    }
    Ok(Args {
        workload,
        runs,
        pipe,
        soak,
        seed,
        command,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("kcl-bench: {message}");
            return ExitCode::from(2);
        }
    };
    if let Some(percent) = args.soak {
        return match soak::run(&args.command, args.workload, percent, args.seed) {
            Ok(r) => {
                println!(
                    "{}",
                    serde_json::json!({
                        "records": r.records,
                        "batches": r.batches,
                        "checkpoints": r.checkpoints,
                        "injected_checkpoint_errors": r.injected_errors,
                        "rss_after_10_batches_kib": r.rss_after_first_batches_kib,
                        "rss_at_end_kib": r.rss_at_end_kib,
                        "peak_rss_kib": r.peak_rss_kib,
                        "seconds": r.seconds,
                    })
                );
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("kcl-bench: soak: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let batches = workload::batch_lines(args.workload);
    for run in 0..args.runs {
        let result = if args.pipe {
            child::run_pipe(&batches)
        } else {
            child::run(&args.command, &batches)
        };
        let m = match result {
            Ok(m) => m,
            Err(error) => {
                eprintln!("kcl-bench: run {run}: {error}");
                return ExitCode::FAILURE;
            }
        };
        let seconds = m.elapsed.as_secs_f64();
        let report = serde_json::json!({
            "run": run,
            "batches": args.workload.batches,
            "records_per_batch": args.workload.records,
            "payload_bytes": args.workload.payload_bytes,
            "records": m.records,
            "checkpoints": m.checkpoints,
            "seconds": seconds,
            "records_per_second": m.records as f64 / seconds,
            "protocol_mb_per_second": m.protocol_bytes as f64 / seconds / 1e6,
            "largest_line_bytes": batches.iter().map(|b| b.line.len()).max().unwrap_or(0),
            "peak_rss_kib": m.peak_rss_kib,
            "startup_ms": m.startup.as_secs_f64() * 1e3,
            "cpu_ns_per_record": m.cpu.map(|c| c.as_nanos() as f64 / m.records as f64),
        });
        println!("{report}");
    }
    ExitCode::SUCCESS
}
