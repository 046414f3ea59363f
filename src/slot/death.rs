//! The start and the end of a slot's process: one transition at each, and a token
//! for the dead process that the collector consumes once (as iceoryx2's
//! `DeadNodeView` is consumed by `remove_stale_resources`).

use super::lifecycle::SlotState;
use super::record::Assignment;
use super::worker_slot::WorkerSlot;
use crate::sync::Ordering;
use crate::sys::ExitStatus;

/// A process of the slot that has ended (`Exited`), as the collector takes it: its
/// exit status and what it ran when it died. [`DeadProcess::release`] empties the
/// slot; until then no new process can start in it.
#[derive(Debug)]
#[must_use = "a dead process's slot stays Exited until its death is handled and released"]
pub(crate) struct DeadProcess<'s> {
    slot: &'s WorkerSlot,
    /// The dead process's generation.
    pub generation: u32,
    /// Whether it ever became ready (false: it died while starting).
    pub was_ready: bool,
    /// How it ended.
    pub status: ExitStatus,
    /// Its process id, if it got one.
    pub pid: Option<i32>,
    /// What it ran when it died.
    pub ran: Assignment,
    /// It died registered as a sleeper on `submit_ready`.
    pub asleep: bool,
    /// Its SIGABRT handler saw an allocation fail under `worker_memory_limit`.
    pub memory_limit_hit: bool,
}

/// What [`DeadProcess::release`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub(crate) enum Released {
    /// `Exited` → `Empty`: a new process may start in the slot.
    Empty,
    /// The slot had moved on already (only the collector releases, so this means a
    /// broken invariant).
    Moved,
}

impl WorkerSlot {
    /// `Empty(g)` → `Starting(g + 1)`, by the collector: claims the slot for a new
    /// process, resets every per-process word for it, and returns its generation;
    /// `None` if the slot is not empty. Nothing runs in the slot until the fork server
    /// receives the start request, sent after this.
    pub(crate) fn begin_start(&self) -> Option<u32> {
        let generation = self.lifecycle.begin_start()?;
        self.reset_process_words();
        // Relaxed: the worker and the fork server store their own; published to the
        // worker by the start request.
        self.pid.store(0, Ordering::Relaxed);
        self.exit_status.store(0, Ordering::Relaxed);
        Some(generation)
    }

    /// The fork server records the pid of the process it forked for the slot.
    pub(crate) fn record_forked_pid(&self, pid: i32) {
        // Relaxed: as in `record_pid`.
        self.pid.store(pid as u32, Ordering::Relaxed);
    }

    /// Reports that process `generation` ended with `status`: `Starting | Ready |
    /// Retiring (g)` → `Exited(g)`. By the fork server after reaping it, by the
    /// collector for a process it killed and saw die through its pidfd, whose fork
    /// server died, or whose start request could not be sent. Returns false (and
    /// changes nothing visible) when `generation` is no longer the slot's live
    /// process: its end was reported already.
    pub(crate) fn report_exit(&self, generation: u32, status: ExitStatus) -> bool {
        // Relaxed: published by the transition (SYNC G1). If the transition fails, a
        // later process's `begin_start` resets it before its own `Exited`.
        self.exit_status.store(status.encode(), Ordering::Relaxed);
        self.lifecycle.mark_exited(generation)
    }

    /// The slot's process, if it has ended and its death is not handled yet. Only the
    /// collector takes it (it alone releases slots), once per death.
    pub(crate) fn exited(&self) -> Option<DeadProcess<'_>> {
        // The phase load (SYNC G2) pairs with the `Exited` transition (SYNC G1):
        // `exit_status` and, through the process's death, every store it made (SYNC
        // F1; for a process only killed and not reaped, SYNC F2) are visible below.
        let phase = self.lifecycle.load();
        if phase.state != SlotState::Exited {
            return None;
        }
        Some(DeadProcess {
            slot: self,
            generation: phase.generation,
            was_ready: phase.was_ready,
            // Relaxed: published by the transition (above).
            status: ExitStatus::decode(self.exit_status.load(Ordering::Relaxed)),
            pid: self.pid(),
            ran: self.read_assignment(),
            // SYNC(W10): SeqCst — pairs with the dead worker's SeqCst stores of `asleep`,
            // visible through SYNC F1: set means its registration (SYNC E1) is still counted.
            asleep: self.asleep.load(Ordering::SeqCst) == 1,
            // SYNC(W13): Acquire — pairs with the Release store of the worker's SIGABRT
            // handler (`sys::memory`); the death, seen through SYNC F1/G2, orders it
            // already.
            memory_limit_hit: self.memory_limit_hit.load(Ordering::Acquire) != 0,
        })
    }
}

impl DeadProcess<'_> {
    /// The death is handled: resets the per-process words, and `Exited` → `Empty`,
    /// whose Release (SYNC G1) publishes the reset. Consumes the token: a death is
    /// released once.
    pub(crate) fn release(self) -> Released {
        // Leaves any bulk job for the dead worker, as its own `leave_job` would have;
        // the quiescence check skips the slot until it is live again (SYNC G2).
        self.slot.reset_process_words();
        if self.slot.lifecycle.release(self.generation) {
            Released::Empty
        } else {
            Released::Moved
        }
    }
}
