//! A worker's memory controls: the limit it runs under
//! (`PoolBuilder::worker_memory_limit`) and the check of its resident memory after
//! tasks (`PoolBuilder::max_worker_rss`). Both count from what the worker holds when
//! it starts, before its initializer: under `StartMethod::Fork` a worker begins with
//! a copy of the parent's address space, so absolute numbers would depend on the
//! parent, not on the tasks.

use std::io;

use crate::slot::WorkerSlot;
use crate::sys;

/// Puts the worker under its memory limit: `RLIMIT_DATA`'s soft limit becomes
/// `VmData` now plus `bytes` (clamped to the hard limit), so the worker may add
/// `bytes` of private writable mappings beyond what it holds now. Shared mappings
/// (the control segment, arenas, arrays: all `MAP_SHARED`) do not count. A
/// SIGABRT handler records an abort that follows a failed allocation in the slot's
/// `memory_limit_hit`, for the collector to report `DeathCause::MemoryLimit`.
pub(super) fn apply_limit(slot: &WorkerSlot, bytes: u64) -> io::Result<()> {
    keep_backtraces_off_allocation_failures();
    // SAFETY: the slot is in the control segment, which the worker keeps mapped
    // until its `Drop` has called `stop_recording_aborts`.
    unsafe { sys::record_allocation_failures(slot.memory_limit_flag())? };
    let start = sys::vm_data()?;
    let mut soft = start.saturating_add(bytes);
    if let Some(hard) = sys::data_hard_limit() {
        soft = soft.min(hard);
    }
    sys::set_data_soft_limit(soft)
}

/// When an allocation fails, std prints "memory allocation of N bytes failed" and,
/// if `RUST_BACKTRACE` asks for it, a backtrace. Symbolizing that backtrace looks
/// for debug files that usually do not exist, and the failed `open`s leave `errno`
/// at `ENOENT`: the abort that follows no longer says `ENOMEM` (measured: a 128 MiB
/// allocation over a 64 MiB limit aborted with `errno` 2 under `RUST_BACKTRACE=1`,
/// and with `ENOMEM` without it). So a worker under a limit moves `RUST_BACKTRACE`
/// to `RUST_LIB_BACKTRACE` (or drops it, if that is set), before anything has read
/// it: panics in workers are recorded, not printed, and `std::backtrace::Backtrace`
/// reads `RUST_LIB_BACKTRACE` first, so backtraces that tasks capture are unchanged.
///
/// std reads the variable once per process and keeps the answer. A `Fork` worker
/// inherits that answer from the parent if the parent printed a panic before
/// `build()`; then a backtrace is still printed, and a failed allocation that left
/// room for it reads as `Signal(SIGABRT)` (`docs/FAULTS.md`).
fn keep_backtraces_off_allocation_failures() {
    if sys::getenv_early(c"RUST_BACKTRACE").is_some_and(|v| v != "0") {
        // SAFETY: a worker is single-threaded while it starts: forked from the
        // single-threaded fork server, or executed afresh and not yet in `main`.
        unsafe { sys::rename_env(c"RUST_BACKTRACE", c"RUST_LIB_BACKTRACE") };
    }
}

/// Reads between tasks at most this often: the rate limit of the check.
pub(super) const CHECK_EVERY_NS: u64 = 1_000_000;

/// The check of a worker's resident private memory after its tasks.
///
/// Private resident memory is `resident − shared` from `/proc/self/statm`, which is
/// exactly the process's anonymous resident pages (`RssAnon`): heap, stacks,
/// private mappings. Shared memory (arrays, arenas, the control segment) and the
/// binary's pages are in `shared` and do not count. `statm` is seven numbers, read
/// with one `pread` on a descriptor kept open; `/proc/self/status` would give the
/// same number from some fifty formatted lines.
#[derive(Debug)]
pub(super) struct RssWatch {
    statm: sys::Statm,
    /// Private resident bytes when the worker started.
    baseline: u64,
    /// The worker retires once it holds more than `baseline + allowance`.
    allowance: u64,
    /// When it was last read (`CLOCK_MONOTONIC` ns).
    last_check_ns: u64,
    /// A task ran since the last read.
    owed: bool,
}

impl RssWatch {
    /// Starts watching: reads the baseline now.
    pub(super) fn start(allowance: u64) -> io::Result<RssWatch> {
        let statm = sys::Statm::open_self()?;
        let baseline = statm.read()?.private;
        Ok(RssWatch {
            statm,
            baseline,
            allowance,
            last_check_ns: sys::monotonic_ns(),
            owed: false,
        })
    }

    /// After a task that ended at `now`: whether the worker should retire. It reads
    /// only when at least [`CHECK_EVERY_NS`] passed since the last read, which is
    /// always so after a task that itself ran that long (reads happen only between
    /// tasks). A skipped read is owed to [`RssWatch::before_sleep`].
    pub(super) fn after_task(&mut self, now: u64) -> bool {
        self.owed = true;
        if now.saturating_sub(self.last_check_ns) < CHECK_EVERY_NS {
            return false;
        }
        self.check(now)
    }

    /// Before the worker sleeps: the read a task's end skipped, if any, so no
    /// worker stays idle above the threshold.
    pub(super) fn before_sleep(&mut self) -> bool {
        self.owed && self.check(sys::monotonic_ns())
    }

    fn check(&mut self, now: u64) -> bool {
        self.owed = false;
        self.last_check_ns = now;
        // An unreadable statm (it does not happen while /proc is mounted) retires
        // nobody.
        self.statm
            .read()
            .is_ok_and(|r| r.private > self.baseline.saturating_add(self.allowance))
    }
}
