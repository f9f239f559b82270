//! Fault injection for the crash tests: the writers call [`step`] after each durable step;
//! when the environment variable `VHDPREP_FAULT_KILL_AFTER_STEP=N` is set, the process sends
//! itself SIGKILL right after step N completes. This lets the test suite kill a real process
//! at every point of a write and check what is left on disk. Unset, it costs one atomic add.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static STEPS: AtomicU64 = AtomicU64::new(0);

fn kill_after() -> Option<u64> {
    static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::env::var("VHDPREP_FAULT_KILL_AFTER_STEP")
            .ok()
            .and_then(|v| v.parse().ok())
    })
}

/// Marks the end of one durable write step (`name` is for debugging).
pub fn step(name: &str) {
    let n = STEPS.fetch_add(1, Ordering::SeqCst) + 1;
    if kill_after() == Some(n) {
        eprintln!("vhdprep: fault injection: killed after step {n} ({name})");
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        // SIGKILL cannot be caught; if it somehow failed, stop anyway without cleanup.
        std::process::abort();
    }
}
