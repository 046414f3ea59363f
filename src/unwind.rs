//! Catching panics in worker processes and reporting them with their location.
//!
//! A worker installs a panic hook that records the message and `file:line:column`
//! of each panic in a thread-local, instead of printing it; [`catch`] runs user code
//! under `catch_unwind` and returns that report on panic. The parent turns it into
//! `Error::TaskPanicked` or `Error::KernelPanicked`.

use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};

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

/// Replaces the panic hook of this (worker) process with one that records instead of
/// printing. Set `SHMPOOL_WORKER_PANICS=print` to also print, for debugging.
pub(crate) fn install_worker_hook() {
    let print = std::env::var_os("SHMPOOL_WORKER_PANICS").is_some_and(|v| v == "print");
    let default = print.then(panic::take_hook);
    panic::set_hook(Box::new(move |info| {
        let message = payload_message(info.payload());
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        LAST.with(|last| *last.borrow_mut() = Some(PanicReport { message, location }));
        if let Some(hook) = &default {
            hook(info);
        }
    }));
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
