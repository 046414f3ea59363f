//! The pool's one authority for kills: every worker process the pool kills for its
//! work (a task or chunk past its time limit, a cancelled task, the chunks of a
//! cancelled bulk job) is killed through [`Orders::order`], on the collector thread.
//!
//! An order is decided under the slot's kill hold (`src/slot/record.rs`): the collector
//! raises the hold, reads what the worker runs, and kills only if that is the work
//! the order targets. The worker cannot leave that work while the hold is raised, so
//! a kill never lands on work it did not target: not on the next task of a worker
//! whose cancelled task just ended, nor on another job's chunk (`docs/PROTOCOL.md`
//! §5c). The order is remembered with the process's generation; when the process's
//! death is handled, `src/pool/collector.rs` compares it with what the process ran and gives
//! the targeted work its own outcome (`Timeout`, `Cancelled`), and every death it
//! ordered a `DeathCause::KilledByPool` cause, so no message guesses at an outside
//! killer.
//!
//! Kills that are not for one worker's work go elsewhere by design: `terminate`
//! (and dropping a pool) asks the fork server to kill every worker, whose deaths the
//! collector then reads as `KilledByPool(Stopped)`; retirements
//! (`max_tasks_per_child`, `max_worker_rss`) are exits, not kills; a
//! `worker_memory_limit` is an allocation failure inside the worker.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;
use std::time::Duration;

use crate::error::PoolKill;
use crate::layout::ControlView;
use crate::slot::{Assignment, KillHold};
use crate::sync::lock;
use crate::sys::{self, ExitStatus};

/// The work a kill is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// A generic task, by id; `pos` is its record's position in the submission
    /// ring, where a worker that has claimed it (and not yet recorded it) holds it.
    Task { id: u64, pos: Option<u64> },
    /// Every chunk held in bulk job `job` (packed index and generation): a bulk
    /// cancel in `CancelMode::Kill`.
    JobChunks { job: u64 },
    /// One chunk of bulk job `job`: its time limit.
    Chunk { job: u64, chunk: u64 },
}

impl Target {
    /// Whether a worker runs this work: `claimed(pos)` says whether it holds the
    /// claim on ring position `pos`, `record()` reads what its slot records.
    pub(crate) fn is_run_by(
        &self,
        claimed: impl Fn(u64) -> bool,
        record: impl Fn() -> Assignment,
    ) -> bool {
        match *self {
            // The claim is read first: a worker records the task (SYNC W3) before it
            // releases the claim, so one of the two reads names it (SYNC M9).
            Target::Task { id, pos } => pos.is_some_and(claimed) || record().task == Some(id),
            Target::JobChunks { job } => {
                let ran = record();
                ran.job == Some(job) && ran.chunk.is_some()
            }
            Target::Chunk { job, chunk } => {
                let ran = record();
                ran.job == Some(job) && ran.chunk == Some(chunk)
            }
        }
    }

    /// Whether this targets task `id`.
    pub(crate) fn names_task(&self, id: u64) -> bool {
        matches!(*self, Target::Task { id: t, .. } if t == id)
    }

    /// Whether this targets work in bulk job `job`.
    pub(crate) fn names_job(&self, job: u64) -> bool {
        matches!(*self, Target::JobChunks { job: j } | Target::Chunk { job: j, .. } if j == job)
    }
}

/// Why the pool kills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// The work ran past this time limit.
    Timeout(Duration),
    /// The work was cancelled (`CancelMode::Kill`).
    Cancelled,
}

impl Reason {
    /// The death cause a kill for this reason gives its process.
    pub(crate) fn cause(self) -> PoolKill {
        match self {
            Reason::Timeout(_) => PoolKill::Timeout,
            Reason::Cancelled => PoolKill::Cancelled,
        }
    }
}

/// Kills asked for by threads other than the collector (cancels), for it to order.
#[derive(Debug, Default)]
pub(crate) struct Requests {
    targets: Mutex<Vec<Target>>,
}

impl Requests {
    /// Asks for the workers running `target` to be killed as cancelled. The caller
    /// wakes the collector.
    pub(crate) fn push(&self, target: Target) {
        lock(&self.targets).push(target);
    }

    /// Whether a request waits.
    pub(crate) fn any(&self) -> bool {
        !lock(&self.targets).is_empty()
    }

    /// Takes every request made so far.
    pub(crate) fn take(&self) -> Vec<Target> {
        std::mem::take(&mut *lock(&self.targets))
    }
}

/// A kill the pool ordered.
#[derive(Debug)]
pub(crate) struct Order {
    /// The generation of the process killed.
    pub generation: u32,
    /// The work it was killed for.
    pub target: Target,
    /// Why.
    pub reason: Reason,
    /// Its pidfd: readable once it is dead, even while the fork server (which reaps
    /// it) is stopped.
    pidfd: OwnedFd,
}

/// The kills the collector ordered, one per slot at most; owned by the collector
/// thread.
#[derive(Debug)]
pub(crate) struct Orders {
    per_slot: Vec<Option<Order>>,
    /// Tests only (`PoolBuilder::kill_decision_delay`): between the caller's look at
    /// a slot and the hold, wait (at most this long) until the worker runs other work
    /// than it did at the look, so the kill is decided in the window where it moved on.
    decision_delay: Duration,
}

impl Orders {
    /// No orders, for `slots` slots.
    pub(crate) fn new(slots: usize, decision_delay: Duration) -> Self {
        Orders {
            per_slot: (0..slots).map(|_| None).collect(),
            decision_delay,
        }
    }

    /// Whether the process in `slot` has been ordered killed (and its death is not
    /// handled yet).
    pub(crate) fn is_ordered(&self, slot: usize) -> bool {
        self.per_slot[slot].is_some()
    }

    /// Whether any kill waits for its death to be seen.
    pub(crate) fn any(&self) -> bool {
        self.per_slot.iter().any(Option::is_some)
    }

    /// Kills the process in `slot` if, under the kill hold, `decide` finds that it
    /// runs the work to kill for (and says which, and why). `decide` reads what the
    /// worker runs through the hold ([`KillHold::record`]); the worker cannot leave
    /// that work until the kill lands. The one function through which the pool kills
    /// a worker for its work. Returns whether it killed.
    pub(crate) fn order(
        &mut self,
        ctrl: ControlView,
        slot: usize,
        decide: impl FnOnce(&KillHold<'_>) -> Option<(Target, Reason)>,
    ) -> bool {
        if self.per_slot[slot].is_some() {
            return false; // Being killed already: its death answers for its work.
        }
        let s = ctrl.slot(slot);
        let phase = s.phase();
        let Some(pid) = s.pid().filter(|_| phase.state.is_live()) else {
            return false;
        };
        let Ok(pidfd) = sys::pidfd_open(pid) else {
            return false;
        };
        // The fork server reaps a worker before it reports it `Exited`, so a process
        // still live in the same generation after the open was not reaped before it,
        // and the pidfd is that worker's (only a pid reused within the server's
        // reap-and-report window could escape this check).
        if s.phase() != phase {
            return false;
        }
        if !self.decision_delay.is_zero() {
            wait_for_other_work(
                &s.assignment_hint(),
                || s.assignment_hint(),
                self.decision_delay,
            );
        }
        let Some(hold) = s.hold(phase.generation) else {
            return false;
        };
        let Some((target, reason)) = decide(&hold) else {
            hold.release();
            return false;
        };
        let order = Order {
            generation: phase.generation,
            target,
            reason,
            pidfd,
        };
        self.kill(slot, pid, hold, order)
    }

    /// Sends the kill of `order` to the process under `hold`, and records the order.
    fn kill(&mut self, slot: usize, pid: i32, hold: KillHold<'_>, order: Order) -> bool {
        match order.reason {
            Reason::Timeout(limit) => {
                tracing::warn!(worker = slot, pid, limit = ?limit, target = ?order.target, "killing a worker past its time limit");
            }
            Reason::Cancelled => {
                tracing::info!(worker = slot, pid, target = ?order.target, "killing the worker of cancelled work");
            }
        }
        match sys::pidfd_kill(order.pidfd.as_fd()) {
            Ok(()) => {
                hold.killed();
                self.per_slot[slot] = Some(order);
                true
            }
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                // It is gone already: its death, on its way, is its own.
                hold.killed();
                false
            }
            Err(e) => {
                tracing::error!(worker = slot, pid, error = %e, "could not kill a worker");
                hold.release();
                false
            }
        }
    }

    /// The order that killed process `generation` of `slot`, if the pool ordered
    /// one; taken once, when its death is handled.
    pub(crate) fn take(&mut self, slot: usize, generation: u32) -> Option<Order> {
        match self.per_slot[slot].take() {
            Some(o) if o.generation == generation => Some(o),
            other => {
                self.per_slot[slot] = other;
                None
            }
        }
    }

    /// Reports `Exited` for killed processes whose pidfd shows them dead, without
    /// waiting for the fork server to reap them (it may be stopped). If the server
    /// reports first, or later, the generation check makes the other report a no-op.
    pub(crate) fn notice_deaths(&self, ctrl: ControlView) {
        for (slot, order) in self.per_slot.iter().enumerate() {
            let Some(o) = order else { continue };
            let s = ctrl.slot(slot);
            let phase = s.phase();
            if phase.generation != o.generation || !phase.state.is_live() {
                continue; // Reported already; the collector takes it.
            }
            if sys::pidfd_exited(o.pidfd.as_fd()) {
                // The process is dead, so it makes no more stores: what it wrote is
                // visible to us after its death, which the pidfd's readiness reported
                // (the kernel's exit path and poll wake-up order them). The transition
                // (SYNC G1) publishes the status.
                let _ = s.report_exit(o.generation, ExitStatus::Signal(libc::SIGKILL));
            }
        }
    }
}

/// Waits, at most `limit`, until `now()` shows the worker running other work (a task
/// or a bulk job) than `looked` did: the forced race of `kill_decision_delay`. A
/// sleep of fixed length opened the window only when the machine kept up; waiting
/// for the move makes the race happen at any load.
fn wait_for_other_work(looked: &Assignment, now: impl Fn() -> Assignment, limit: Duration) {
    let runs_other_work = |a: &Assignment| {
        (a.task.is_some() || a.job.is_some()) && (a.task, a.job) != (looked.task, looked.job)
    };
    let deadline = std::time::Instant::now() + limit;
    while !runs_other_work(&now()) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(100));
    }
}
