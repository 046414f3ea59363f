//! A pool's own life: running, closed or terminated; why it broke, if it did; and
//! whether its collector thread has exited. One owner, [`PoolLife`], whose fields are
//! private: the state changes only through its transitions.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use crate::error::{Error, Result};
use crate::sync::lock;

/// The state of a pool, held in [`PoolLife`] as a `u32`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PoolState {
    /// Taking work.
    Running = 0,
    /// `close` was called.
    Closed = 1,
    /// `terminate` was called (or the pool broke).
    Terminated = 2,
}

impl PoolState {
    /// Decodes the state word; `None` for a value that is no state.
    fn decode(word: u32) -> Option<PoolState> {
        match word {
            0 => Some(PoolState::Running),
            1 => Some(PoolState::Closed),
            2 => Some(PoolState::Terminated),
            _ => None,
        }
    }
}

/// Why a pool cannot keep workers running.
#[derive(Debug, Clone)]
pub(crate) enum StartError {
    /// Workers cannot be started or kept (message for `Error::Start`).
    Message(String),
    /// The initializer panicked (message for `Error::InitializerFailed`).
    Initializer(String),
}

impl StartError {
    /// The public error.
    pub(crate) fn to_error(&self) -> Error {
        match self {
            StartError::Message(m) => Error::Start(m.clone()),
            StartError::Initializer(m) => Error::InitializerFailed { message: m.clone() },
        }
    }
}

/// The pool's state, the reason it broke, and its collector's exit.
#[derive(Debug)]
pub(crate) struct PoolLife {
    state: AtomicU32,
    /// Why workers could not start or be kept, if they could not. Taken alone: no
    /// other lock is held while it is.
    start_error: Mutex<Option<StartError>>,
    /// Set by the collector thread as it exits.
    collector_exited: AtomicBool,
}

impl Default for PoolLife {
    fn default() -> Self {
        PoolLife {
            state: AtomicU32::new(PoolState::Running as u32),
            start_error: Mutex::new(None),
            collector_exited: AtomicBool::new(false),
        }
    }
}

impl PoolLife {
    /// The pool state.
    pub(crate) fn state(&self) -> PoolState {
        // SYNC(C2): Acquire — pairs with the Release of the transitions (SYNC C1): what was
        // done before them, such as `start_error` set by `mark_broken`, is visible to a caller
        // that sees the new state.
        let word = self.state.load(Ordering::Acquire);
        // Only the transitions below store the word, always a PoolState; anything else
        // would read as stopped, the state that lets nothing new start.
        PoolState::decode(word).unwrap_or(PoolState::Terminated)
    }

    /// Whether `close` or `terminate` was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.state() != PoolState::Running
    }

    /// Whether the pool is terminated (or broke).
    pub(crate) fn is_terminated(&self) -> bool {
        self.state() == PoolState::Terminated
    }

    /// Fails unless the pool takes work.
    pub(crate) fn check_open(&self) -> Result<()> {
        match self.state() {
            PoolState::Running => Ok(()),
            PoolState::Closed => Err(Error::PoolClosed),
            PoolState::Terminated => Err(self.broken_or_terminated()),
        }
    }

    /// The error for work that cannot run because the pool stopped.
    pub(crate) fn broken_or_terminated(&self) -> Error {
        match lock(&self.start_error).as_ref() {
            Some(e) => e.to_error(),
            None => Error::PoolTerminated,
        }
    }

    /// `Running` → `Closed`; nothing if the pool is closed or terminated already.
    pub(crate) fn close(&self) {
        // SYNC(C1): AcqRel — RUNNING → CLOSED, released to readers of `state` (SYNC C2). The
        // Acquire halves (success and failure) publish nothing we read; Release would do.
        let _ = self.state.compare_exchange(
            PoolState::Running as u32,
            PoolState::Closed as u32,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// → `Terminated`, from any state; returns whether this call made the change.
    pub(crate) fn terminate(&self) -> bool {
        // SYNC(C1): AcqRel — the TERMINATED state; its Release makes `start_error` (set by
        // `mark_broken` before this) visible to readers of `state` (SYNC C2). The Acquire half
        // reads nothing.
        self.state
            .swap(PoolState::Terminated as u32, Ordering::AcqRel)
            != PoolState::Terminated as u32
    }

    /// Records why the pool cannot run workers (the first reason stays).
    pub(crate) fn set_start_error(&self, e: StartError) {
        let mut slot = lock(&self.start_error);
        if slot.is_none() {
            *slot = Some(e);
        }
    }

    /// Why the pool cannot run workers, if it cannot.
    pub(crate) fn start_error(&self) -> Option<Error> {
        lock(&self.start_error).as_ref().map(StartError::to_error)
    }

    /// The collector thread is exiting: everything it did (pending tasks failed, jobs
    /// finished, server shut down) is done.
    pub(crate) fn mark_collector_exited(&self) {
        // SYNC(C5): Release — everything the collector did happens-before; pairs with the
        // Acquire loads of `collector_exited` (SYNC C6) in `wait_until_ready` and the bulk
        // waits.
        self.collector_exited.store(true, Ordering::Release);
    }

    /// Whether the collector thread has exited (and with it the pool's workers).
    pub(crate) fn collector_exited(&self) -> bool {
        // SYNC(C6): Acquire — pairs with SYNC C5: what the collector did before it exited
        // (every job finished or marked terminated) is visible to the checks that follow.
        self.collector_exited.load(Ordering::Acquire)
    }
}
