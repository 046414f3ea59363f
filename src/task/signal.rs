//! [`Signal`]: the condition variable a waiter for a task's result sleeps on.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, MutexGuard};
use std::time::Duration;

/// A condition variable that knows whether anyone waits on it.
///
/// std's futex-based `Condvar::notify_all` makes a system call even when nobody
/// waits, which would cost every delivered result a `futex_wake`. Waiters register
/// under the state's mutex before they block, and notifiers check under the same
/// mutex, so skipping the call when the count is zero loses no wake-up.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    cv: Condvar,
    waiters: AtomicUsize,
}

impl Signal {
    /// Wakes every waiter, if there is one. Call with the state's mutex held.
    pub(crate) fn notify(&self) {
        if self.waiters.load(Ordering::Relaxed) != 0 {
            self.cv.notify_all();
        }
    }

    /// Blocks on the condition variable for at most `timeout`, registered as a
    /// waiter. `guard` is the state's mutex, held.
    pub(crate) fn wait_timeout<'a, S>(
        &self,
        guard: MutexGuard<'a, S>,
        timeout: Duration,
    ) -> MutexGuard<'a, S> {
        self.waiters.fetch_add(1, Ordering::Relaxed);
        let guard = self
            .cv
            .wait_timeout(guard, timeout)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        self.waiters.fetch_sub(1, Ordering::Relaxed);
        guard
    }
}
