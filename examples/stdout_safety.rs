//! Shows that nothing but protocol lines reaches the daemon: this processor prints with
//! `println!`, writes to `std::io::stdout()`, and starts a program that writes to its stdout;
//! all of it lands on stderr. A record whose payload is `panic` makes the handler panic: the
//! runtime catches it, logs it with the shard id, and still answers the daemon. A record whose
//! payload is `hang` makes the handler loop forever: after the 2-second hook deadline the
//! watchdog logs it and ends the process (exit code 70), so a real worker would restart from
//! the last checkpoint instead of stalling silently.
//!
//! Stdin belongs to the daemon too: a record whose payload is `stdin` makes the handler start a
//! shell that reads a line from its stdin and read a line itself; both get end of file at once
//! (descriptor 0 is `/dev/null`), and the daemon's next line, the checkpoint reply, still
//! reaches the runtime. Code that builds the processor runs after the pipes are moved, so its
//! prints land on stderr too. A record whose payload is `sleep` makes the handler take a second
//! (for the signal tests: SIGINT during a hook never ends the process before its status).

use std::io::Write;

use kcl::{Batch, Checkpointer, Initialize, RecordProcessor, Result};

/// A processor that misbehaves on purpose.
#[derive(Debug, Default)]
pub struct Noisy;

impl RecordProcessor for Noisy {
    fn initialize(&mut self, shard: &Initialize) -> Result<()> {
        println!("println from initialize on {}", shard.shard_id);
        Ok(())
    }

    fn process_records(
        &mut self,
        batch: &Batch,
        checkpointer: &mut Checkpointer<'_>,
    ) -> Result<()> {
        for record in batch {
            let text = String::from_utf8_lossy(record.data());
            if text == "panic" {
                panic!("asked to panic by record {}", record.position());
            }
            if text == "stdin" {
                read_stdin()?;
            }
            if text == "sleep" {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
            if text == "hang" {
                loop {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            }
            println!("println of record {text}");
            std::io::stdout().write_all(b"raw write to stdout\n")?;
        }
        #[cfg(unix)]
        std::process::Command::new("echo")
            .arg("a child program writing to its stdout")
            .status()?;
        checkpointer.checkpoint()?;
        Ok(())
    }
}

/// Reads stdin from a program the handler starts, then from the handler itself.
fn read_stdin() -> Result<()> {
    #[cfg(unix)]
    std::process::Command::new("sh")
        .args([
            "-c",
            "read line; echo \"a child program read from stdin: [$line]\" >&2",
        ])
        .status()?;
    let mut line = String::new();
    let read = std::io::stdin().read_line(&mut line)?;
    eprintln!(
        "the handler read {read} bytes from stdin: [{}]",
        line.trim_end()
    );
    Ok(())
}

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    kcl::run_main_with(|| {
        println!("println while the processor is built");
        kcl::Runtime::new(Noisy)
            .hook_deadline(std::time::Duration::from_secs(2), kcl::DeadlineAction::Exit)
    })
}
