//! An optional deadline for each hook call: the daemon waits for every status with no timeout
//! of its own (unless `timeoutInSeconds` is set, which halts the whole JVM), so a handler stuck
//! in a loop or a hung call silently stalls its shard. The watchdog says so, loudly, and can end
//! the process so the worker restarts from the last checkpoint.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the watchdog does when a hook runs past its deadline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeadlineAction {
    /// Log an error naming the shard, the hook and the batch, once per late call.
    #[default]
    Log,
    /// Log, then end the process with exit code 70: the daemon sees the child die and exits,
    /// and the restarted worker resumes from the last checkpoint.
    Exit,
}

/// The deadline of each hook call.
///
/// ```
/// use std::time::Duration;
/// use kcl_core::{DeadlineAction, HookDeadline};
/// let deadline = HookDeadline { after: Duration::from_secs(60), then: DeadlineAction::Exit };
/// assert_eq!(deadline.then, DeadlineAction::Exit);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HookDeadline {
    /// How long a hook may run.
    pub after: Duration,
    /// What happens then.
    pub then: DeadlineAction,
}

/// Exit code used by [`DeadlineAction::Exit`].
pub const DEADLINE_EXIT_CODE: i32 = 70;

#[derive(Default)]
struct Running {
    /// What is running and since when (moved forward by pauses); `None` between hooks.
    call: Option<(String, Instant)>,
    /// Since when the clock is paused (the runtime waits for the daemon).
    paused: Option<Instant>,
    /// The current call was already reported.
    reported: bool,
}

/// Watches hook calls from a background thread.
pub(crate) struct Watchdog {
    running: Arc<Mutex<Running>>,
}

impl Watchdog {
    pub(crate) fn start(deadline: HookDeadline) -> Watchdog {
        let running = Arc::new(Mutex::new(Running::default()));
        let watched = Arc::clone(&running);
        let tick = (deadline.after / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        std::thread::Builder::new()
            .name("kcl-hook-deadline".into())
            .spawn(move || loop {
                std::thread::sleep(tick);
                if Arc::strong_count(&watched) == 1 {
                    return; // the runtime is gone
                }
                let mut state = watched.lock().unwrap_or_else(|e| e.into_inner());
                let late = match &state.call {
                    Some((what, since))
                        if !state.reported
                            && state.paused.is_none()
                            && since.elapsed() > deadline.after =>
                    {
                        Some((what.clone(), since.elapsed()))
                    }
                    _ => None,
                };
                let Some((what, elapsed)) = late else { continue };
                state.reported = true;
                drop(state);
                tracing::error!(
                    "{what} has been running for {elapsed:.1?}, past its deadline of {:?}; the daemon waits for its status, so this shard is stalled",
                    deadline.after
                );
                if deadline.then == DeadlineAction::Exit {
                    tracing::error!(
                        "exiting (code {DEADLINE_EXIT_CODE}) as the deadline policy says: the worker restarts from the last checkpoint"
                    );
                    std::process::exit(DEADLINE_EXIT_CODE);
                }
            })
            .expect("the watchdog thread starts");
        Watchdog { running }
    }

    /// Marks the start of a hook call described by `what` (shard, hook, batch).
    pub(crate) fn arm(&self, what: String) {
        let mut state = self.running.lock().unwrap_or_else(|e| e.into_inner());
        state.call = Some((what, Instant::now()));
        state.paused = None;
        state.reported = false;
    }

    /// Stops the clock: the runtime waits for the daemon (a checkpoint reply and its retries),
    /// which is not the hook's time.
    pub(crate) fn pause(&self) {
        let mut state = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if state.call.is_some() && state.paused.is_none() {
            state.paused = Some(Instant::now());
        }
    }

    /// Starts the clock again where it stopped.
    pub(crate) fn resume(&self) {
        let mut state = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(paused) = state.paused.take() {
            if let Some((_, since)) = &mut state.call {
                *since += paused.elapsed();
            }
        }
    }

    /// Marks its end.
    pub(crate) fn disarm(&self) {
        let mut state = self.running.lock().unwrap_or_else(|e| e.into_inner());
        state.call = None;
        state.paused = None;
    }
}
