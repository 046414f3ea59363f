//! A worker slot: one typed state machine, one generation per process, and the one
//! module that writes the slot's per-process words.
//!
//! Every worker process lives in a slot of the control segment. A slot holds:
//!
//! * its **lifecycle** ([`Lifecycle`], `lifecycle.rs`): the state and the generation of
//!   its process in one atomic word, changed only by typed transitions;
//! * the **record of what the process runs** (`record.rs`): the task it runs, the bulk
//!   job it is inside and the chunk it holds there, and the clock of the current
//!   task or chunk. Only the worker writes it, through the methods of this module;
//! * the **kill hold** (`record.rs`): the collector raises it while it decides whether
//!   to kill the process, and the worker does not leave the work it runs while it is
//!   raised. So what the collector reads under the hold stays true until it kills or
//!   lets go: a kill can land only on the work it was decided for (`docs/PROTOCOL.md`
//!   §5c);
//! * the **end of the process** (`death.rs`): the fork server (or the collector, for a
//!   process it killed) reports the exit status, and the collector takes the dead
//!   process's record once, as a [`DeadProcess`] token whose `release` empties the
//!   slot.
//!
//! Nothing outside this module writes a slot's words: every field is private, and a
//! new process starts from words reset in one step ([`WorkerSlot::begin_start`]), so
//! a replacement cannot inherit what its predecessor left.
//!
//! ```text
//!            begin_start (collector)           become_ready (worker)
//!   Empty(g) ───────────────────► Starting(g+1) ──────────────► Ready(g+1)
//!      ▲       (resets the words)      │                          │ begin_retiring
//!      │ DeadProcess::release          │ report_exit              ▼ (worker, last task)
//!      │ (collector, after handling    │ (fork server after    Retiring(g+1)
//!      │  the death; resets them)      │  reaping; collector       │
//!   Exited(g+1) ◄──────────────────────┴───────────────────────────┘
//!                  report_exit: from Starting, Ready or Retiring of the same generation
//! ```
//!
//! The generation is the process's identity in shared memory. A worker learns its own
//! generation with its start request, stamps it on every completion record it pushes
//! (the parent refuses a record whose generation is not that of the result arena it
//! holds for the slot), and the fork server names it when it reports an exit, so a
//! report about an old process can never move a slot that a newer one owns.
//!
//! A "respawn pending" slot is not a state here: a replacement is not tied to the
//! slot of the process it replaces. The collector keeps the pool topped up to its
//! size from whatever slots are `Empty` (`pool/collector.rs`, `top_up`), after a
//! back-off when workers keep dying while starting; that is where "respawn pending"
//! lives.

#[cfg(not(loom))]
mod death;
mod lifecycle;
mod record;

#[cfg(not(loom))]
pub(crate) use death::{DeadProcess, Released};
pub(crate) use lifecycle::{Lifecycle, Phase, SlotState};
pub(crate) use record::{Assignment, KillHold};

use crate::sync::{AtomicU32, AtomicU64};

/// `bulk_job` when the worker is not inside a bulk job.
const NO_JOB: u64 = u64::MAX;

/// `bulk_chunk` when the worker holds no chunk (between chunks, or outside a job).
const NO_CHUNK: u64 = u64::MAX;

/// Per-worker state shared by the worker, the parent and the fork server. Every
/// field is private to this module; the methods say who may call them.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct WorkerSlot {
    /// The slot's state and the generation of its process: written only through
    /// the transitions of [`Lifecycle`].
    lifecycle: Lifecycle,
    /// The process id (written by the fork server at fork, and by the worker).
    pid: AtomicU32,
    /// How the process ended (`sys::ExitStatus::encode`), once `Exited`.
    exit_status: AtomicU32,
    /// The task id being run, or 0.
    current_task: AtomicU64,
    /// The bulk job (index << 32 | generation) the worker is inside, or [`NO_JOB`].
    bulk_job: AtomicU64,
    /// The chunk index the worker is claiming or running in `bulk_job`, or
    /// [`NO_CHUNK`] when it holds none.
    bulk_chunk: AtomicU64,
    /// When the current task or chunk started (`CLOCK_MONOTONIC` ns), or 0.
    started_ns: AtomicU64,
    /// When the current task or chunk must be finished, or 0 for never.
    deadline_ns: AtomicU64,
    /// Tasks completed by this slot's processes (all generations).
    tasks_done: AtomicU64,
    /// Chunks completed by this slot's processes (all generations).
    chunks_done: AtomicU64,
    /// 1 while the worker is registered as a sleeper on `submit_ready`.
    asleep: AtomicU32,
    /// The liveness table's retirement epoch through which the worker has let go of
    /// every dropped array: unmapped it, and closed any descriptor of it still in its
    /// channel (`SegmentCache::housekeep`). Written only by the slot's worker, after
    /// each housekeeping; read by the parent when it waits for dropped arrays' memory
    /// (`registry::settle`). Never reset: a predecessor's value is older than any
    /// retirement of an array shipped to its successor, so it never says too much.
    unmapped_through: AtomicU64,
    /// Set to 1 by the worker's SIGABRT handler when the process aborts with `errno`
    /// at `ENOMEM`: an allocation failed under `worker_memory_limit`.
    memory_limit_hit: AtomicU32,
    /// 1 while the collector decides whether to kill the process (the kill hold);
    /// stays 1 once it decided to. A futex word: the worker waits on it.
    kill_hold: AtomicU32,
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
