//! The atomics and the futex the shared-memory protocol is built on (and the padding
//! that keeps contended atomics apart), swapped for loom's models under `cfg(loom)`
//! so the ring and the wake-up logic can be model-checked (see `src/loom_tests.rs`
//! and `docs/PROTOCOL.md`).
//!
//! Under loom the structures live on the heap of one process and "processes" are
//! loom threads; the protocol is the same code.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// A value on its own 128-byte block (two cache lines, because adjacent-line
/// prefetching pairs them on x86-64), so writers of neighbouring fields do not
/// contend. Our own type rather than `crossbeam_utils::CachePadded`, whose alignment
/// is chosen per platform: this one's layout is fixed and documented.
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub(crate) struct Padded<T>(T);

impl<T> Padded<T> {
    /// Wraps a value.
    #[cfg(any(loom, test))]
    pub(crate) fn new(value: T) -> Self {
        Padded(value)
    }
}

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Locks one of the parent's std mutexes, taking it over if a thread panicked while
/// holding it: every state they guard is left consistent between statements (a
/// panic is a bug of ours or a user's callback, and must not wedge the pool).
#[cfg(not(loom))]
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A hint inside a spin loop. Under loom, a yield, so the model can make progress.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Interior mutability for the payload of a ring slot, checked by loom for races.
#[cfg(not(loom))]
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct Cell<T>(std::cell::UnsafeCell<T>);

// SAFETY: a Cell is only read and written through its unsafe `read`/`write`, whose
// callers guarantee exclusive access by protocol (a ring slot claimed by its
// owner, a job's message written by the winner of a CAS). Sharing references
// between threads is therefore no more dangerous than sharing them between
// processes, which is what these cells are for.
#[cfg(not(loom))]
unsafe impl<T: Send> Sync for Cell<T> {}

#[cfg(not(loom))]
impl<T> Cell<T> {
    /// A cell holding `value` (shared-memory cells are zero-initialised instead).
    #[cfg(test)]
    pub(crate) fn new(value: T) -> Self {
        Cell(std::cell::UnsafeCell::new(value))
    }

    /// Reads the value.
    ///
    /// # Safety
    /// No other thread or process may write the cell during the read.
    #[inline]
    pub(crate) unsafe fn read(&self) -> T
    where
        T: Copy,
    {
        // SAFETY: Delegated to the caller.
        unsafe { self.0.get().read_volatile() }
    }

    /// Writes the value.
    ///
    /// # Safety
    /// No other thread or process may read or write the cell during the write.
    #[inline]
    pub(crate) unsafe fn write(&self, value: T) {
        // SAFETY: Delegated to the caller.
        unsafe { self.0.get().write_volatile(value) }
    }
}

#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct Cell<T>(loom::cell::UnsafeCell<T>);

#[cfg(loom)]
impl<T> Cell<T> {
    /// A cell holding `value`.
    pub(crate) fn new(value: T) -> Self {
        Cell(loom::cell::UnsafeCell::new(value))
    }

    /// Reads the value (loom checks the caller's exclusivity claim).
    pub(crate) unsafe fn read(&self) -> T
    where
        T: Copy,
    {
        // SAFETY: Delegated to the caller; loom reports a violation.
        self.0.with(|p| unsafe { *p })
    }

    /// Writes the value (loom checks the caller's exclusivity claim).
    pub(crate) unsafe fn write(&self, value: T) {
        // SAFETY: Delegated to the caller; loom reports a violation.
        self.0.with_mut(|p| unsafe { *p = value })
    }
}

#[cfg(not(loom))]
pub(crate) use crate::sys::{futex_wait, futex_wake};

/// The futex under loom: a table of condition variables keyed by the word's address,
/// with the same contract (sleep only while the word holds the expected value; a
/// wake after the word changed is never lost).
#[cfg(loom)]
mod loom_futex {
    use super::{AtomicU32, Ordering};
    use loom::sync::{Condvar, Mutex};
    use std::time::Duration;

    loom::lazy_static! {
        static ref TABLE: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
    }

    pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, _timeout: Option<Duration>) {
        let guard = TABLE.0.lock().unwrap();
        // SYNC(E7): SeqCst — stands in for the kernel's compare of the futex word. The ordering
        // that matters is TABLE's mutex, which `futex_wake` takes after the bump (SYNC E4): a
        // wake that locked before us happens-before this load, which then sees the bump and does
        // not sleep; a later one finds us waiting. SeqCst is more than needed.
        if word.load(Ordering::SeqCst) == expected {
            // A timeout cannot be modelled; a waiter that relies on one to make progress
            // would show up as a deadlock, which is what we want loom to find.
            drop(TABLE.1.wait(guard).unwrap());
        }
    }

    pub(crate) fn futex_wake(_word: &AtomicU32, _n: u32) {
        let _guard = TABLE.0.lock().unwrap();
        TABLE.1.notify_all();
    }
}

#[cfg(loom)]
pub(crate) use loom_futex::{futex_wait, futex_wake};
