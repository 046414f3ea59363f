//! What the task engine's handles need of the pool that runs their tasks:
//! [`TaskHost`], implemented by the pool (`src/pool/task_rings.rs`). An
//! [`AsyncResult`](super::async_result::AsyncResult) holds its pool as a
//! `dyn TaskHost`, so nothing in `task/` names the pool, and imports point down.

use std::fmt;
use std::ops::Range;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::callback_thread::CallbackRunner;
use super::cancel::CancelMode;
use super::delivery::TaskDelivery;
use super::signal::Signal;
use crate::sync::lock;

/// The pool, as the handles of its tasks see it.
pub(crate) trait TaskHost: Send + Sync + fmt::Debug {
    /// Spins, then yields, for the pool's polling budget (ending at `deadline`, if
    /// any), draining the completion rings itself when no other thread is draining
    /// them; returns whether `ready` held.
    fn poll(&self, ready: &dyn Fn() -> bool, deadline: Option<Instant>) -> bool;

    /// The pool's generic-task state: its callback thread, its delivery context.
    fn delivery(&self) -> &TaskDelivery;

    /// Cancels the tasks `ids` as `mode` says; returns how many were still pending.
    fn cancel_tasks(&self, ids: Range<u64>, mode: CancelMode) -> usize;

    /// What `cancel()` does to a running task by default.
    fn cancel_mode(&self) -> CancelMode;
}

/// Waits until `ready(state)` holds or `timeout` passes; returns whether it holds.
///
/// First spins, polling the completion rings itself when no other thread is
/// draining them; then sleeps on `signal`, which deliveries notify while holding
/// `state`'s lock. `ready` always sees the state locked.
pub(crate) fn wait_for<S>(
    host: &dyn TaskHost,
    ready: &dyn Fn(&S) -> bool,
    state: &Mutex<S>,
    signal: &Signal,
    timeout: Option<Duration>,
) -> bool {
    let check = || state.try_lock().is_ok_and(|s| ready(&s));
    if check() {
        return true;
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    if host.poll(&check, deadline) {
        return true;
    }
    let mut guard = lock(state);
    loop {
        if ready(&guard) {
            return true;
        }
        // A callback waiting for a result runs the callbacks queued behind it,
        // which may be what it waits for (and which lock `state` to finish it, so
        // not while we hold it).
        if CallbackRunner::on_callback_thread() {
            drop(guard);
            let helped = host.delivery().callbacks().help();
            guard = lock(state);
            if helped {
                continue;
            }
        }
        let mut wait = if CallbackRunner::on_callback_thread() {
            Duration::from_millis(1)
        } else {
            Duration::from_millis(20)
        };
        if let Some(d) = deadline {
            let now = Instant::now();
            if now >= d {
                return false;
            }
            wait = wait.min(d - now);
        }
        guard = signal.wait_timeout(guard, wait);
    }
}
