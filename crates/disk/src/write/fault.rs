//! Fault injection for the crash and race tests: the writers call [`step`] after each durable
//! step. Two environment variables act on step N (counted from 1 over the whole process):
//!
//! - `VHDPREP_FAULT_KILL_AFTER_STEP=N`: the process sends itself SIGKILL right after step N,
//!   so the test suite can kill a real process at every point of a write and check what is
//!   left on disk.
//! - `VHDPREP_FAULT_STOP_AFTER_STEP=N`: the process stops itself (SIGSTOP) right after step N
//!   and carries on when it receives SIGCONT, so a test can change the source or remove the
//!   destination's folder at an exact point of a write instead of racing it.
//!
//! Unset, a step costs one atomic add.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static STEPS: AtomicU64 = AtomicU64::new(0);

/// The step number in environment variable `name`, read once per process.
fn env_step(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn kill_after() -> Option<u64> {
    static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
    *LIMIT.get_or_init(|| env_step("VHDPREP_FAULT_KILL_AFTER_STEP"))
}

fn stop_after() -> Option<u64> {
    static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
    *LIMIT.get_or_init(|| env_step("VHDPREP_FAULT_STOP_AFTER_STEP"))
}

/// Marks the end of one durable write step (`name` is for debugging).
pub fn step(name: &str) {
    use rustix::process::{getpid, kill_process, Signal};
    let n = STEPS.fetch_add(1, Ordering::SeqCst) + 1;
    if kill_after() == Some(n) {
        eprintln!("vhdprep: fault injection: killed after step {n} ({name})");
        let _ = kill_process(getpid(), Signal::KILL);
        // SIGKILL cannot be caught; if it somehow failed, stop anyway without cleanup.
        std::process::abort();
    }
    if stop_after() == Some(n) {
        // Returns once the test sends SIGCONT.
        let _ = kill_process(getpid(), Signal::STOP);
    }
}
