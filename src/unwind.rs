//! Catching panics in worker processes and reporting them with their location.
//!
//! One panic hook, installed once per process before the first fork, serves both
//! roles: in the parent it forwards to whatever hook was there before; in a worker
//! it records the message and `file:line:column` in a thread-local instead of
//! printing, and [`catch`] returns that report. The parent turns it into
//! `Error::TaskPanicked` or `Error::KernelPanicked`.
//!
//! Why not set the hook in the worker? A forked child may only take locks that no
//! other thread of the parent could hold at the instant of the fork, and
//! `std::panic::set_hook` takes the hook's lock, which a parent thread that happens
//! to be panicking holds. A forked worker therefore only flips [`WORKER`], an atomic.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

/// What a panic said and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PanicReport {
    /// The panic message.
    pub message: String,
    /// `file:line:column`, when known.
    pub location: Option<String>,
}

impl std::fmt::Display for PanicReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Some(l) => write!(f, "{} (at {l})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

thread_local! {
    static LAST: RefCell<Option<PanicReport>> = const { RefCell::new(None) };
}

/// Set in worker processes: panics are recorded, not printed.
static WORKER: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

/// Installs the hook, once per process. Call before the first fork (the pool does,
/// in `build`), never in a forked child. Set `SHMPOOL_WORKER_PANICS=print` to have
/// workers print panics too, for debugging.
pub(crate) fn install_hook() {
    INSTALL.call_once(|| {
        let print = std::env::var_os("SHMPOOL_WORKER_PANICS").is_some_and(|v| v == "print");
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !WORKER.load(Ordering::Relaxed) {
                return previous(info);
            }
            let message = payload_message(info.payload());
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            LAST.with(|last| *last.borrow_mut() = Some(PanicReport { message, location }));
            if print {
                previous(info);
            }
        }));
    });
}

/// Switches this (worker) process to recording panics. Takes no lock.
pub(crate) fn enter_worker_mode() {
    WORKER.store(true, Ordering::Relaxed);
}

/// The text of a panic payload (`&str` or `String`; anything else is named).
pub(crate) fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

/// Runs `f`, turning a panic into its report.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, PanicReport> {
    LAST.with(|last| last.borrow_mut().take());
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        LAST.with(|last| last.borrow_mut().take())
            .unwrap_or_else(|| PanicReport {
                message: payload_message(&*payload),
                location: None,
            })
    })
}
