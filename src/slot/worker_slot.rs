//! [`WorkerSlot`]: the words of one worker slot in the control segment (see
//! `src/slot/mod.rs` for the state machine they carry).

use super::lifecycle::{Lifecycle, Phase};
use crate::sync::{AtomicU32, AtomicU64};

/// `bulk_job` when the worker is not inside a bulk job.
pub(super) const NO_JOB: u64 = u64::MAX;

/// `bulk_chunk` when the worker holds no chunk (between chunks, or outside a job).
pub(super) const NO_CHUNK: u64 = u64::MAX;

/// Per-worker state shared by the worker, the parent and the fork server. Every
/// field is private to `slot/` (its lifecycle, record and death files); the methods
/// say who may call them.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct WorkerSlot {
    /// The slot's state and the generation of its process: written only through
    /// the transitions of [`Lifecycle`].
    pub(super) lifecycle: Lifecycle,
    /// The process id (written by the fork server at fork, and by the worker).
    pub(super) pid: AtomicU32,
    /// How the process ended (`sys::ExitStatus::encode`), once `Exited`.
    pub(super) exit_status: AtomicU32,
    /// The task id being run, or 0.
    pub(super) current_task: AtomicU64,
    /// The bulk job (index << 32 | generation) the worker is inside, or [`NO_JOB`].
    pub(super) bulk_job: AtomicU64,
    /// The chunk index the worker is claiming or running in `bulk_job`, or
    /// [`NO_CHUNK`] when it holds none.
    pub(super) bulk_chunk: AtomicU64,
    /// When the current task or chunk started (`CLOCK_MONOTONIC` ns), or 0.
    pub(super) started_ns: AtomicU64,
    /// When the current task or chunk must be finished, or 0 for never.
    pub(super) deadline_ns: AtomicU64,
    /// Tasks completed by this slot's processes (all generations).
    pub(super) tasks_done: AtomicU64,
    /// Chunks completed by this slot's processes (all generations).
    pub(super) chunks_done: AtomicU64,
    /// 1 while the worker is registered as a sleeper on `submit_ready`.
    pub(super) asleep: AtomicU32,
    /// The liveness table's retirement epoch through which the worker has let go of
    /// every dropped array: unmapped it, and closed any descriptor of it still in its
    /// channel (`SegmentCache::housekeep`). Written only by the slot's worker, after
    /// each housekeeping; read by the parent when it waits for dropped arrays' memory
    /// (`registry::settle`). Never reset: a predecessor's value is older than any
    /// retirement of an array shipped to its successor, so it never says too much.
    pub(super) unmapped_through: AtomicU64,
    /// Set to 1 by the worker's SIGABRT handler when the process aborts with `errno`
    /// at `ENOMEM`: an allocation failed under `worker_memory_limit`.
    pub(super) memory_limit_hit: AtomicU32,
    /// 1 while the collector decides whether to kill the process (the kill hold);
    /// stays 1 once it decided to. A futex word: the worker waits on it.
    pub(super) kill_hold: AtomicU32,
}

impl WorkerSlot {
    /// A slot in its zero state, for loom models (the control segment's slots are
    /// zeroed memory).
    #[cfg(loom)]
    pub(crate) fn new() -> Self {
        WorkerSlot {
            lifecycle: Lifecycle::new(),
            pid: AtomicU32::new(0),
            exit_status: AtomicU32::new(0),
            current_task: AtomicU64::new(0),
            bulk_job: AtomicU64::new(NO_JOB),
            bulk_chunk: AtomicU64::new(NO_CHUNK),
            started_ns: AtomicU64::new(0),
            deadline_ns: AtomicU64::new(0),
            tasks_done: AtomicU64::new(0),
            chunks_done: AtomicU64::new(0),
            asleep: AtomicU32::new(0),
            unmapped_through: AtomicU64::new(0),
            memory_limit_hit: AtomicU32::new(0),
            kill_hold: AtomicU32::new(0),
        }
    }

    /// A slot whose process of generation 1 is `Ready`, for loom models.
    #[cfg(loom)]
    pub(crate) fn new_ready() -> (Self, u32) {
        let slot = WorkerSlot::new();
        let generation = slot.lifecycle.begin_start().expect("a fresh slot is empty");
        assert!(slot.become_ready(generation));
        (slot, generation)
    }

    /// Process `generation` has ended, for loom models: `Exited`, as the fork
    /// server's report (`report_exit`) makes it, so the slot is no longer live.
    #[cfg(loom)]
    pub(crate) fn exit_for_model(&self, generation: u32) -> bool {
        self.lifecycle.mark_exited(generation)
    }

    /// The slot's state and the generation of its process (SYNC G2).
    pub(crate) fn phase(&self) -> Phase {
        self.lifecycle.load()
    }
}
