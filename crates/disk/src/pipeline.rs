//! Threads that hand data to each other, and how they stop.
//!
//! Every pipeline of threads in vhdprep (the copy under `convert`, the checksum pass) keeps
//! two rules, so that it ends when any stage fails and reports the first error:
//!
//! 1. **A stage owns the channel ends that others wait on.** The receiver a consumer drains
//!    and the sender it gives buffers back with are moved into the consumer; when it returns,
//!    for whatever reason (an error, a panic, the end of the data), they are dropped, and a
//!    producer blocked handing over an item or waiting for a free buffer wakes up with a
//!    closed channel and returns. No sender lives in a scope wider than the stage that sends
//!    on it: one held by a caller that is itself waiting for the stage is the classic
//!    deadlock (a failed writer that kept the buffer-return channel open left the reader
//!    waiting for a buffer forever, and `convert` never returned on a full disk).
//! 2. **The first failure is kept and stops the others.** A stage records its error in the
//!    pipeline's [`Failure`] (a spawned stage runs under [`Failure::stage`], which also turns
//!    a panic into an error); the first one recorded is the one reported, and recording it
//!    raises a stop flag that the other stages look at between items, so work that is not
//!    blocked on a channel (a read in progress, a queue still full of buffers) ends too.
//!
//! Memory stays bounded because every channel that carries data is bounded (or fed from a
//! fixed pool of buffers), and time stays bounded because every blocking wait is on a channel
//! whose other end is dropped when the stage owning it ends.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The first error of a pipeline's stages, and the stop flag that recording it raises.
#[derive(Debug)]
pub struct Failure<E> {
    stopped: AtomicBool,
    first: Mutex<Option<E>>,
}

impl<E> Default for Failure<E> {
    fn default() -> Self {
        Failure {
            stopped: AtomicBool::new(false),
            first: Mutex::new(None),
        }
    }
}

impl<E> Failure<E> {
    /// No failure yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `error` unless an earlier one was recorded (that one is kept), and stops the
    /// pipeline.
    pub fn fail(&self, error: E) {
        let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(error);
        }
        self.stopped.store(true, Ordering::SeqCst);
    }

    /// True once a stage has failed: the other stages should return at their next item.
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Runs one stage: `body`'s error, or its panic made an error by `on_panic` (given the
    /// panic's message), is recorded with [`Failure::fail`]. Returns `body`'s value, or `None`
    /// when it failed. Meant for stages on threads of their own, whose panic would otherwise
    /// surface only when the thread is joined.
    pub fn stage<T>(
        &self,
        body: impl FnOnce() -> Result<T, E>,
        on_panic: impl FnOnce(String) -> E,
    ) -> Option<T> {
        match panic::catch_unwind(AssertUnwindSafe(body)) {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                self.fail(e);
                None
            }
            Err(p) => {
                self.fail(on_panic(panic_text(&*p)));
                None
            }
        }
    }

    /// Takes the first recorded error, if any (the flag stays raised).
    pub fn take(&self) -> Option<E> {
        self.first.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// `Err` with the first recorded error, `Ok` when no stage failed.
    pub fn into_result(self) -> Result<(), E> {
        match self.first.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// The message of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_error_and_stops() {
        let f = Failure::<String>::new();
        assert!(!f.stopped());
        f.fail("first".into());
        f.fail("second".into());
        assert!(f.stopped());
        assert_eq!(f.into_result(), Err("first".to_string()));
        assert_eq!(Failure::<String>::new().into_result(), Ok(()));
    }

    #[test]
    fn a_stage_that_panics_is_a_failure() {
        let f = Failure::<String>::new();
        // (The panic message the test prints is expected.)
        let got: Option<()> = f.stage(|| panic!("boom {}", 7), |m| format!("panicked: {m}"));
        assert_eq!(got, None);
        assert!(f.stopped());
        assert_eq!(f.stage(|| Ok::<_, String>(3), |m| m), Some(3));
        assert_eq!(f.take(), Some("panicked: boom 7".to_string()));
    }
}
