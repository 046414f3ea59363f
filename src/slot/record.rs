//! The record of what a worker runs, written by the worker alone, and the kill hold
//! that keeps it true while the collector decides a kill (`docs/PROTOCOL.md` §5c).
//!
//! A worker *enters* work (claims a task's record, joins a job, claims a chunk)
//! without asking anyone, and records it. It *leaves* work (a task ended, a chunk
//! done, the job left) with one of the `leave_*` methods, which record the change and
//! then pass the hold: if the collector has raised it, the worker waits until the
//! collector lets go, or dies there. The collector raises the hold, then reads the
//! record ([`WorkerSlot::hold`]); the two sides are a Dekker handshake over SeqCst
//! fences (SYNC K1 and K2):
//!
//! * if the worker's check came first, its leaving is visible to the collector's read;
//! * otherwise the worker sees the hold and does not move on.
//!
//! So the work the collector reads under the hold is still the work the worker runs,
//! up to the moment the collector kills it (the hold stays raised then) or lets go.
//! A kill decided from that read cannot land on work the worker moved on to.

use super::worker_slot::{NO_CHUNK, NO_JOB, WorkerSlot};
use crate::sync::{AtomicU32, Ordering, fence, futex_wait, futex_wake};

/// What a worker runs, as its slot records it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Assignment {
    /// The task it runs (its ring record claimed, or running).
    pub task: Option<u64>,
    /// The bulk job (packed index and generation) it is inside.
    pub job: Option<u64>,
    /// The chunk it claims or holds in `job`.
    pub chunk: Option<u64>,
    /// The clock of the current task or chunk, when it has a time limit.
    pub clock: Option<Clock>,
}

/// When the current task or chunk started, and when it must end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Clock {
    /// `CLOCK_MONOTONIC` ns.
    pub started_ns: u64,
    /// `CLOCK_MONOTONIC` ns; never 0.
    pub deadline_ns: u64,
}

impl WorkerSlot {
    // ───────────────── the worker process of the slot ─────────────────

    /// The worker records its process id (the fork server records it too, at fork).
    pub(crate) fn record_pid(&self, pid: u32) {
        // Relaxed: published with `Ready` (SYNC W5/G1), or read after the death
        // (SYNC F1).
        self.pid.store(pid, Ordering::Relaxed);
    }

    /// `Starting(g)` → `Ready(g)`, by the worker of generation `g` once it is up.
    pub(crate) fn become_ready(&self, generation: u32) -> bool {
        self.lifecycle.become_ready(generation)
    }

    /// `Ready(g)` → `Retiring(g)`, by the worker of generation `g` as it starts its
    /// last task.
    pub(crate) fn begin_retiring(&self, generation: u32) -> bool {
        self.lifecycle.begin_retiring(generation)
    }

    /// The worker claimed task `id`'s ring record and runs it.
    pub(crate) fn take_task(&self, id: u64) {
        // SYNC(W3): SeqCst — the task is recorded as ours before the ring slot is
        // released, so after a death the collector finds it in one place or the other
        // (the claimed slot, or `current_task`); pairs with the collector's Acquire read
        // of the slot's claim (SYNC M9) followed by its read of this word.
        self.current_task.store(id, Ordering::SeqCst);
    }

    /// The worker is done with its task (its completion is pushed): records it, then
    /// passes the kill hold.
    pub(crate) fn leave_task(&self) {
        // SYNC(W9): Relaxed — ordered before the hold check by the SeqCst fence of
        // `pass_hold` (SYNC K2); read by the collector after that fence of its own
        // (SYNC K1), or after the death (SYNC F1).
        self.current_task.store(0, Ordering::Relaxed);
        self.pass_hold();
    }

    /// The worker enters bulk job `job`, holding no chunk yet.
    pub(crate) fn enter_job(&self, job: u64) {
        // Relaxed: ordered before the `bulk_job` store below, and before the claim
        // CAS (SYNC B3), which publishes both.
        self.bulk_chunk.store(NO_CHUNK, Ordering::Relaxed);
        // SYNC(W2): Relaxed — published by the worker's claim CAS (SYNC B3, Release),
        // which comes after it: the collector's quiescence check, whose cursor load
        // (SYNC B9, Acquire) reads that claim or a later value, then sees this store
        // (or the clear in `leave_job`) in `runs_job`. A worker that claims nothing
        // holds nothing, so missing it costs nothing. Checked by the loom models of
        // `src/loom_tests/bulk_job.rs`, which fail if the store is removed
        // (`docs/PROTOCOL.md` §7, §10).
        self.bulk_job.store(job, Ordering::Relaxed);
    }

    /// The worker is about to try to claim chunk `index` of its job: records the
    /// intent before the claim CAS (SYNC B3), which publishes it.
    pub(crate) fn claiming_chunk(&self, index: u64) {
        self.bulk_chunk.store(index, Ordering::Relaxed);
    }

    /// The worker completed its chunk (its done-bit is set): records that it holds
    /// none, then passes the kill hold.
    pub(crate) fn leave_chunk(&self) {
        // Relaxed: as in `leave_task` (SYNC K2 orders it before the hold check).
        self.bulk_chunk.store(NO_CHUNK, Ordering::Relaxed);
        self.pass_hold();
    }

    /// The worker leaves its bulk job: records it, then passes the kill hold.
    pub(crate) fn leave_job(&self) {
        self.bulk_chunk.store(NO_CHUNK, Ordering::Relaxed);
        // SYNC(W2): Release — pairs with the Acquire load in `runs_job`: a quiescence
        // check that reads this clear sees the done-bits (and the chunks' output) the
        // worker set before it, after its last chunk's `complete`. (The SeqCst fence
        // of the `leave_chunk` before it, SYNC K2, publishes them as well.)
        self.bulk_job.store(NO_JOB, Ordering::Release);
        self.pass_hold();
    }

    /// Starts the clock of a task or chunk with a time limit of `timeout_ns` (0: none).
    pub(crate) fn start_clock(&self, now_ns: u64, timeout_ns: u64) {
        // Relaxed: the collector compares the deadline with the time now; a stale 0
        // only postpones a kill to its next pass, and the kill itself is decided
        // under the hold (SYNC K1).
        self.started_ns.store(now_ns, Ordering::Relaxed);
        let deadline = if timeout_ns == 0 {
            0
        } else {
            now_ns.saturating_add(timeout_ns).max(1)
        };
        self.deadline_ns.store(deadline, Ordering::Relaxed);
    }

    /// Stops the clock: the task or chunk returned.
    pub(crate) fn stop_clock(&self) {
        // Relaxed: as in `start_clock`; ordered before the leaving that follows.
        self.deadline_ns.store(0, Ordering::Relaxed);
        self.started_ns.store(0, Ordering::Relaxed);
    }

    /// Counts a completed task, before its completion is pushed (whose Release, SYNC
    /// S2, publishes the count with the result).
    pub(crate) fn count_task(&self) {
        self.tasks_done.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a completed chunk, before it is marked done.
    pub(crate) fn count_chunk(&self) {
        self.chunks_done.fetch_add(1, Ordering::Relaxed);
    }

    /// Raised after the worker registers as a sleeper, lowered before it withdraws;
    /// so a collector that finds it raised after the worker's death knows the
    /// registration is there to remove (`src/wake.rs`, `forget_dead_sleeper`).
    pub(crate) fn set_asleep(&self, asleep: bool) {
        // SYNC(W10): SeqCst — read only by the collector after the death (SYNC F1 makes
        // it and the registration, SYNC E1, visible), by its load in `exited`.
        // Program order and F1 suffice; SeqCst is margin.
        self.asleep.store(u32::from(asleep), Ordering::SeqCst);
    }

    /// The worker has let go of every array retired through liveness epoch `epoch`.
    pub(crate) fn record_unmapped_through(&self, epoch: u64) {
        // SYNC(L7): Release — pairs with the parent's Acquire load in
        // `unmapped_through` (SYNC L8): the unmaps are done by then.
        self.unmapped_through.store(epoch, Ordering::Release);
    }

    /// The word the worker's SIGABRT handler sets when an allocation fails under
    /// `worker_memory_limit` (`sys::memory`).
    pub(crate) fn memory_limit_flag(&self) -> &AtomicU32 {
        &self.memory_limit_hit
    }

    /// Waits while the collector holds the slot to decide a kill. Called after the
    /// worker recorded that it left some work, before it takes any other.
    fn pass_hold(&self) {
        // SYNC(K2): SeqCst fence — the worker's half of the handshake: the record's
        // change above is ordered before the hold's load below; pairs with the
        // collector's fence (SYNC K1) between its raising of the hold and its read of
        // the record. Either this load sees the hold, or that read sees the change.
        fence(Ordering::SeqCst);
        // SYNC(K3): Acquire — pairs with the Release of `KillHold::release`; nothing
        // is read on its strength beyond the hold itself.
        while self.kill_hold.load(Ordering::Acquire) != 0 {
            // The collector lets go within microseconds, or kills us here.
            futex_wait(
                &self.kill_hold,
                1,
                Some(std::time::Duration::from_millis(1)),
            );
        }
    }

    // ───────────────── the parent (collector) ─────────────────

    /// Raises the kill hold on process `generation` and reads what it runs. `None`
    /// (and nothing held) when that process is no longer live in the slot.
    ///
    /// While the [`KillHold`] lives, the worker does not leave the work it runs: its
    /// next `leave_*` records the leaving and then waits, so what
    /// [`KillHold::record`] reads is the work the worker runs or has just ended, never
    /// work it took after. Kill it
    /// and say so with [`KillHold::killed`], or let go with [`KillHold::release`] (or
    /// by dropping the hold).
    pub(crate) fn hold(&self, generation: u32) -> Option<KillHold<'_>> {
        // Relaxed: ordered before the reads below by the fence (SYNC K1).
        self.kill_hold.store(1, Ordering::Relaxed);
        // SYNC(K1): SeqCst fence — the collector's half of the handshake; pairs with
        // the worker's fence (SYNC K2): either the worker sees the hold at its next
        // leaving, or the record read below shows that it left.
        fence(Ordering::SeqCst);
        let phase = self.lifecycle.load();
        let hold = KillHold {
            slot: self,
            killed: false,
        };
        if phase.generation != generation || !phase.state.is_live() {
            hold.release();
            return None;
        }
        Some(hold)
    }

    /// What the worker runs, as far as the parent can see now (no hold): a hint for
    /// deciding whether to take the hold, never a basis for a kill.
    pub(crate) fn assignment_hint(&self) -> Assignment {
        self.read_assignment()
    }

    /// Whether the slot's live process is inside bulk job `job`: the quiescence
    /// check of `job::ledger`. The caller loaded the job's cursor first (SYNC B9).
    pub(crate) fn runs_job(&self, job: u64) -> bool {
        // SYNC(W2): Acquire — the quiescence read of `bulk_job`, after the phase load
        // (SYNC G2); pairs with the Release clear in `leave_job`: a worker seen outside
        // after it was inside has its done-bits visible. A worker whose claim the
        // cursor load (SYNC B9) read is seen inside, or seen to have left. See
        // `Ledger::resolve_abandoned`.
        self.lifecycle.load().state.is_live() && self.bulk_job.load(Ordering::Acquire) == job
    }

    /// The process id the slot records, if any.
    pub(crate) fn pid(&self) -> Option<i32> {
        // Relaxed: published with `Ready` (SYNC G1/G2), or after the death (SYNC F1).
        let pid = self.pid.load(Ordering::Relaxed) as i32;
        (pid > 0).then_some(pid)
    }

    /// The liveness epoch through which the slot's worker has let go of every
    /// dropped array (see `record_unmapped_through`).
    pub(crate) fn unmapped_through(&self) -> u64 {
        // SYNC(L8): Acquire — pairs with SYNC L7.
        self.unmapped_through.load(Ordering::Acquire)
    }

    /// Tasks completed by this slot's processes (all generations).
    pub(crate) fn tasks_done(&self) -> u64 {
        self.tasks_done.load(Ordering::Relaxed)
    }

    /// Chunks completed by this slot's processes (all generations).
    pub(crate) fn chunks_done(&self) -> u64 {
        self.chunks_done.load(Ordering::Relaxed)
    }

    pub(super) fn read_assignment(&self) -> Assignment {
        // SYNC(W11): SeqCst — these loads come after SYNC K1 under a hold, or after the
        // death (SYNC F1), which make the worker's stores visible; SeqCst is margin
        // for the hints read without a hold.
        let task = self.current_task.load(Ordering::SeqCst);
        let job = self.bulk_job.load(Ordering::SeqCst);
        let chunk = self.bulk_chunk.load(Ordering::SeqCst);
        // Relaxed: see `start_clock`.
        let deadline_ns = self.deadline_ns.load(Ordering::Relaxed);
        let started_ns = self.started_ns.load(Ordering::Relaxed);
        Assignment {
            task: (task != 0).then_some(task),
            job: (job != NO_JOB).then_some(job),
            chunk: (job != NO_JOB && chunk != NO_CHUNK).then_some(chunk),
            clock: (deadline_ns != 0).then_some(Clock {
                started_ns,
                deadline_ns,
            }),
        }
    }

    /// Resets every per-process word, for a process about to start in the slot or
    /// after one's death was handled. Only the collector calls it, while no process
    /// runs in the slot (`Starting` before the request is sent, or `Exited`).
    pub(super) fn reset_process_words(&self) {
        // Relaxed: published by the lifecycle transition that follows (SYNC G1), and
        // to the new worker by its start request.
        self.current_task.store(0, Ordering::Relaxed);
        self.bulk_job.store(NO_JOB, Ordering::Relaxed);
        self.bulk_chunk.store(NO_CHUNK, Ordering::Relaxed);
        self.started_ns.store(0, Ordering::Relaxed);
        self.deadline_ns.store(0, Ordering::Relaxed);
        self.asleep.store(0, Ordering::Relaxed);
        self.memory_limit_hit.store(0, Ordering::Relaxed);
        self.kill_hold.store(0, Ordering::Relaxed);
    }
}

/// The collector's hold on a slot while it decides whether to kill its process; see
/// [`WorkerSlot::hold`].
#[derive(Debug)]
#[must_use = "a hold keeps the worker from leaving its work until it is released or the process killed"]
pub(crate) struct KillHold<'s> {
    slot: &'s WorkerSlot,
    killed: bool,
}

impl KillHold<'_> {
    /// What the process runs: work it cannot leave while the hold lives. (It may
    /// enter more: claim a task's record, join a job, claim a chunk.)
    pub(crate) fn record(&self) -> Assignment {
        // After SYNC K1 (in `hold`): see `read_assignment`.
        self.slot.read_assignment()
    }

    /// The kill was sent: the hold stays raised, so the worker never leaves the work
    /// read under it. The slot's next process starts with it lowered.
    pub(crate) fn killed(mut self) {
        self.killed = true;
    }

    /// Lets the worker go on: no kill.
    pub(crate) fn release(self) {}
}

impl Drop for KillHold<'_> {
    fn drop(&mut self) {
        if !self.killed {
            // SYNC(K3): Release — pairs with the worker's Acquire load in `pass_hold`.
            self.slot.kill_hold.store(0, Ordering::Release);
            futex_wake(&self.slot.kill_hold, u32::MAX);
        }
    }
}
