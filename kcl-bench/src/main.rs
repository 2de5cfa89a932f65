//! `kcl-bench`: a compiled stand-in for the daemon that measures a MultiLangDaemon child.
//!
//! ```text
//! kcl-bench --batches 200 --records 1000 --payload 200 --runs 5 -- CHILD [ARGS...]
//! kcl-bench --batches 200 --records 1000 --payload 200 --pipe      # `cat`: the pipe's ceiling
//! kcl-bench --batches 200 --records 1000 --payload 200 --write-session FILE   # record once
//! kcl-bench --batches 200 --records 1000 --payload 200 --from-file FILE -- CHILD [ARGS...]
//! kcl-bench --batches 2000 --records 1000 --payload 20 --soak-error-percent 2 \
//!     --kill-every 3000 --steady-batches 1000 --sink-file OUT/records-shardId-000000000000.tsv \
//!     -- CHILD  # soak (see soak.rs)
//! ```
//!
//! It pre-builds the workload's lines (Jackson-shaped, 56-digit sequence numbers), spawns the
//! child, sends `initialize`, every batch, then `leaseLost`, answering each checkpoint request at
//! once and checking each status like the daemon. Per run it prints one JSON object: records/s,
//! MB/s of protocol written, child peak RSS (VmHWM, read before EOF), start-up to the first
//! status, child CPU per record. It fails if the child did not checkpoint at the last record of
//! every batch or answered a wrong status.
//!
//! `--from-file` runs the child on a recorded session instead (see `session.rs`): no pipe and no
//! driver, so its CPU per record does not depend on the host's scheduling.

mod child;
// `sysconf(3)` for the clock tick and page size.
#[allow(unsafe_code)]
mod proc_stats;
// `wait4(2)` for a child's CPU and peak memory.
#[allow(unsafe_code)]
mod session;
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
    kill_every: u64,
    steady_batches: Option<usize>,
    retry_attempts: u32,
    sink_file: Option<std::path::PathBuf>,
    /// Write the workload's recorded session here and exit.
    write_session: Option<std::path::PathBuf>,
    /// Run the child on this recorded session instead of through a pipe.
    from_file: Option<std::path::PathBuf>,
    command: Vec<String>,
}

/// The retry budget of a child built with this SDK's default `RetryPolicy` (what the soak's judge
/// expects unless `--retry-attempts` says otherwise). The bench plays the daemon and does not
/// link the child runtime; a test holds this equal to `kcl_core::RetryPolicy::default()`.
const SDK_RETRY_ATTEMPTS: u32 = 6;

fn parse_args() -> Result<Args, String> {
    let mut workload = Workload {
        batches: 200,
        records: 1000,
        payload_bytes: 200,
    };
    let (mut runs, mut pipe, mut command) = (1, false, Vec::new());
    let (mut soak, mut seed) = (None, 1u64);
    let (mut kill_every, mut steady_batches, mut sink_file) = (0u64, None, None);
    let mut retry_attempts = SDK_RETRY_ATTEMPTS;
    let (mut write_session, mut from_file) = (None, None);
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
            "--kill-every" => kill_every = number("--kill-every")? as u64,
            "--steady-batches" => steady_batches = Some(number("--steady-batches")?),
            "--child-retry-attempts" => retry_attempts = number("--child-retry-attempts")? as u32,
            "--sink-file" => {
                sink_file = Some(args.next().ok_or("--sink-file needs a path")?.into());
            }
            "--write-session" => {
                write_session = Some(args.next().ok_or("--write-session needs a path")?.into());
            }
            "--from-file" => {
                from_file = Some(args.next().ok_or("--from-file needs a path")?.into());
            }
            "--" => command.extend(args.by_ref()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !pipe && write_session.is_none() && command.is_empty() {
        return Err("give the child after `--`, or --pipe".into());
    }
    Ok(Args {
        workload,
        runs,
        pipe,
        soak,
        seed,
        kill_every,
        steady_batches,
        retry_attempts,
        sink_file,
        write_session,
        from_file,
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
        let config = soak::SoakConfig {
            workload: args.workload,
            error_percent: percent,
            seed: args.seed,
            kill_every: args.kill_every,
            steady_batches: args.steady_batches.unwrap_or(args.workload.batches),
            retry_attempts: args.retry_attempts,
            sink_file: args.sink_file,
        };
        return match soak::run(&args.command, &config) {
            Ok(report) => {
                match serde_json::to_string(&report) {
                    Ok(json) => println!("{json}"),
                    Err(error) => {
                        eprintln!("kcl-bench: soak: {error}");
                        return ExitCode::FAILURE;
                    }
                }
                // The report says what went wrong; the exit status says that something did.
                if report.violations_total() > 0 {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(error) => {
                eprintln!("kcl-bench: soak: {error}");
                ExitCode::from(2)
            }
        };
    }
    if let Some(path) = &args.write_session {
        return match session::write(path, args.workload) {
            Ok(bytes) => {
                eprintln!("kcl-bench: wrote {bytes} bytes to {}", path.display());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("kcl-bench: writing {}: {error}", path.display());
                ExitCode::FAILURE
            }
        };
    }
    if let Some(path) = &args.from_file {
        return from_file(&args, path);
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
            "child_context_switches": m.child_switches,
            "driver_cpu_ns_per_record": m.driver.map(|d| d.cpu.as_nanos() as f64 / m.records as f64),
            "driver_context_switches": m.driver.map(|d| d.switches),
        });
        println!("{report}");
    }
    ExitCode::SUCCESS
}

/// `--from-file`: the child on a recorded session, `--runs` times; one JSON object per run.
fn from_file(args: &Args, path: &std::path::Path) -> ExitCode {
    if args.command.is_empty() {
        eprintln!("kcl-bench: give the child after `--`");
        return ExitCode::from(2);
    }
    let records = (args.workload.batches * args.workload.records) as u64;
    for run in 0..args.runs {
        let m = match session::run(&args.command, path, args.workload) {
            Ok(m) => m,
            Err(error) => {
                eprintln!("kcl-bench: run {run} from {}: {error}", path.display());
                return ExitCode::FAILURE;
            }
        };
        // The fixed cost (start-up, an interpreter) measured on the empty session is taken out.
        let net = m.full.cpu.saturating_sub(m.empty.cpu);
        let report = serde_json::json!({
            "mode": "file",
            "run": run,
            "batches": args.workload.batches,
            "records_per_batch": args.workload.records,
            "payload_bytes": args.workload.payload_bytes,
            "records": records,
            "checkpoints": m.checkpoints,
            "session_bytes": std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0),
            "seconds": m.full.wall.as_secs_f64(),
            "cpu_ns_per_record": net.as_nanos() as f64 / records.max(1) as f64,
            "cpu_ms": m.full.cpu.as_secs_f64() * 1e3,
            "cpu_fixed_ms": m.empty.cpu.as_secs_f64() * 1e3,
            "peak_rss_kib": m.full.max_rss_kib,
            "peak_rss_fixed_kib": m.empty.max_rss_kib,
            "child_context_switches": m.full.voluntary_switches + m.full.involuntary_switches,
        });
        println!("{report}");
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soak_expects_the_sdks_default_retry_budget() {
        assert_eq!(
            super::SDK_RETRY_ATTEMPTS,
            kcl_core::RetryPolicy::default().max_attempts
        );
    }
}
