//! Shows that nothing but protocol lines reaches the daemon: this processor prints with
//! `println!`, writes to `std::io::stdout()`, and starts a program that writes to its stdout;
//! all of it lands on stderr. A record whose payload is `panic` makes the handler panic: the
//! runtime catches it, logs it with the shard id, and still answers the daemon. A record whose
//! payload is `hang` makes the handler loop forever: after the 2-second hook deadline the
//! watchdog logs it and ends the process (exit code 70), so a real worker would restart from
//! the last checkpoint instead of stalling silently.

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

#[allow(dead_code)]
fn main() -> std::process::ExitCode {
    kcl::Runtime::new(Noisy)
        .hook_deadline(std::time::Duration::from_secs(2), kcl::DeadlineAction::Exit)
        .run_main()
}
