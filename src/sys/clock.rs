//! The clock every process shares, and yielding the CPU.

/// Nanoseconds on `CLOCK_MONOTONIC`, a clock every process on the machine shares.
pub(crate) fn monotonic_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Gives up the CPU to another runnable thread.
pub(crate) fn yield_now() {
    rustix::thread::sched_yield();
}
