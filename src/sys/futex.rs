//! Futexes shared between processes.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::thread::futex;

/// Sleeps while `*word == expected`, for at most `timeout`.
///
/// A *shared* futex: no `FUTEX_PRIVATE_FLAG`, so waiters and wakers may live in
/// different processes that map the same memory. Returns early on a wake-up, a
/// signal, or when the word no longer holds `expected`.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) {
    let ts = timeout.map(|d| rustix::time::Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: d.subsec_nanos() as _,
    });
    // Every outcome (woken, EAGAIN because the word changed, EINTR, ETIMEDOUT) means
    // "look again", which every caller does.
    let _ = futex::wait(word, futex::Flags::empty(), expected, ts.as_ref());
}

/// Wakes up to `n` waiters sleeping on `word`, in any process.
///
/// `n` is clamped to `i32::MAX`: the kernel reads the count as a signed int, and
/// `u32::MAX` would mean -1, which wakes only one (DESIGN.md §8).
pub(crate) fn futex_wake(word: &AtomicU32, n: u32) {
    let _ = futex::wake(word, futex::Flags::empty(), n.min(i32::MAX as u32));
}
