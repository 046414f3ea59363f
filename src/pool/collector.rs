//! The collector thread: the pool's one background thread.
//!
//! It starts the fork server (from this long-lived thread, because the kernel ties
//! `PR_SET_PDEATHSIG` to the thread that created a child), then watches the
//! workers: it handles each exit the fork server reports, attributes what a dead
//! worker was running, respawns, kills workers that run past their deadline or
//! whose task was cancelled, feeds the backlog of tasks into the submission ring,
//! and finishes bulk jobs abandoned by dead workers. On `close` it lets the workers
//! drain and exit; on `terminate` it makes sure every process is gone.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering as StdOrdering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::StartMethod;
use super::inner::{PoolInner, PoolState, ServerLink, lock};
use super::pending::KillRequest;
use crate::error::{DeathCause, Error, Result};
use crate::job::ledger::Death;
use crate::job::protocol;
use crate::layout::{NO_JOB, RecordKind};
use crate::slot::{Phase, SlotState};
use crate::sync::Ordering;
use crate::sys::{self, ExitStatus};
use crate::worker::entry;
use crate::worker::exit_code;
use crate::worker::role::StartKind;
use crate::worker::server::Request;

/// Starts the collector thread, which starts the fork server and the workers.
pub(super) fn start(inner: Arc<PoolInner>, method: StartMethod) -> Result<JoinHandle<()>> {
    let (tx, rx) = std::sync::mpsc::channel::<Result<()>>();
    let thread_inner = Arc::clone(&inner);
    let handle = std::thread::Builder::new()
        .name("shmpool-collector".into())
        // Forked workers run on a copy of this thread's stack: give it the size of a
        // main thread's, so tasks can recurse as deeply as they could in `main`.
        .stack_size(8 << 20)
        .spawn(move || {
            let inner = thread_inner;
            let started = start_server(&inner, method).and_then(|()| {
                (0..inner.processes).try_for_each(|slot| inner.start_worker(slot).map(drop))
            });
            let ok = started.is_ok();
            let _ = tx.send(started);
            if ok {
                Collector::new(Arc::clone(&inner)).run();
            } else {
                inner.terminate();
                shutdown_server(&inner);
            }
            // SYNC(C5): Release — everything above (pending tasks failed, jobs finished, server
            // shut down) happens-before; pairs with the Acquire loads of `collector_exited`
            // (SYNC C6) in `wait_until_ready` and the bulk wait.
            inner.collector_exited.store(true, StdOrdering::Release);
            inner.wake_bulk_futures(true);
        })
        .map_err(Error::io("starting the collector thread"))?;
    match rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => {
            let _ = handle.join();
            Err(e)
        }
        Err(_) => {
            let _ = handle.join();
            Err(Error::Start("the collector thread failed to start".into()))
        }
    }
}

fn start_server(inner: &PoolInner, method: StartMethod) -> Result<()> {
    let (parent_end, server_end) =
        sys::seqpacket_pair().map_err(Error::io("creating the fork server socket"))?;
    let live = inner.live.fd();
    let arena = lock(&inner.task_arena)
        .fd()
        .try_clone_to_owned()
        .map_err(Error::io("sharing the task arena"))?;
    let arena = arena.as_fd();
    let pid = match method {
        // SAFETY: called on the collector thread, which holds no lock here; the child
        // runs only the server loop (see `fork_server`).
        StartMethod::Fork => unsafe {
            entry::fork_server(&inner.ctrl_fd, live, arena, &server_end, StartKind::Fork)
        },
        StartMethod::ForkServer => {
            entry::exec_server(&inner.ctrl_fd, live, arena, &server_end, StartKind::Fork)
        }
        StartMethod::Spawn => {
            entry::exec_server(&inner.ctrl_fd, live, arena, &server_end, StartKind::Exec)
        }
    }
    .map_err(Error::io("starting the fork server"))?;
    drop(server_end);
    *lock(&inner.server) = Some(ServerLink {
        sock: parent_end,
        pid,
    });
    Ok(())
}

/// Asks the fork server to exit and reaps it, killing it if it does not go quickly.
fn shutdown_server(inner: &PoolInner) {
    let link = lock(&inner.server).take();
    let Some(link) = link else { return };
    let _ = sys::send_msg(
        std::os::fd::AsFd::as_fd(&link.sock),
        &Request::Shutdown.to_bytes(),
        &[],
    );
    drop(link.sock);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match sys::try_reap(link.pid) {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) if Instant::now() > deadline => {
                let _ = sys::kill(link.pid, libc::SIGKILL);
                let _ = sys::reap(link.pid);
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

struct Collector {
    inner: Arc<PoolInner>,
    /// Per slot: the process the collector killed for running past its limit.
    killed: Vec<Option<Killed>>,
    /// Consecutive deaths of workers that never became ready.
    early_deaths: u32,
    /// After workers died while starting: no new worker starts before this.
    start_not_before: Option<Instant>,
    /// Cancelled running tasks whose workers are still to be killed.
    cancel_kills: Vec<KillRequest>,
    /// When `terminate` was first noticed.
    terminating_since: Option<Instant>,
    /// The kernel's count of OOM kills, to tell them from other SIGKILLs.
    oom: super::oom::OomWatch,
}

/// Why the collector killed a worker.
#[derive(Clone, Copy, Debug)]
enum KillReason {
    /// Its task ran past this time limit.
    Timeout(Duration),
    /// It was running (or had claimed) this task, which was cancelled.
    Cancelled(u64),
    /// It held a chunk of a bulk job that was cancelled.
    ChunkCancelled,
}

/// A process the collector killed: for running past its time limit, or for a
/// cancelled task.
struct Killed {
    /// Its generation in the slot.
    generation: u32,
    /// Why.
    reason: KillReason,
    /// Its pidfd: readable once it is dead, even while the fork server (which reaps
    /// it) is stopped.
    pidfd: OwnedFd,
}

impl Collector {
    fn new(inner: Arc<PoolInner>) -> Self {
        let slots = inner.ctrl.dims().slots as usize;
        Collector {
            inner,
            killed: (0..slots).map(|_| None).collect(),
            early_deaths: 0,
            start_not_before: None,
            cancel_kills: Vec::new(),
            terminating_since: None,
            oom: super::oom::OomWatch::new(),
        }
    }

    fn slots(&self) -> usize {
        self.killed.len()
    }

    fn run(mut self) {
        loop {
            let mut progress = self.inner.drain() > 0;
            self.notice_killed_deaths();
            self.oom.tick();
            for slot in 0..self.slots() {
                let phase = self.inner.ctrl.slot(slot).lifecycle.load();
                if phase.state == SlotState::Exited {
                    self.on_exit(slot, phase);
                    progress = true;
                }
            }
            self.inner.feed();
            let cancels = self.kill_cancelled();
            self.kill_cancelled_chunks();
            self.inner.wake_bulk_futures(false);
            let next_start = self.top_up();
            let next_deadline = match (self.enforce_deadlines(), next_start) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let suspects =
                self.resolve_suspects() | cancels | self.killed.iter().any(Option::is_some);
            if self.server_is_gone() {
                self.on_server_death();
                progress = true;
            }
            if self.should_stop() {
                break;
            }
            if !progress {
                let tick = if suspects {
                    Duration::from_millis(1)
                } else {
                    next_deadline.unwrap_or(Duration::from_millis(250))
                };
                self.sleep(tick);
            }
        }
        self.finish_everything();
        shutdown_server(&self.inner);
    }

    fn sleep(&self, tick: Duration) {
        let inner = &*self.inner;
        let ctrl = inner.ctrl;
        let ev = &ctrl.header().completions;
        let pending = || {
            // The phase loads (SYNC G2) only decide whether to sleep; `run` re-reads.
            (0..self.slots()).any(|i| {
                ctrl.slot(i).lifecycle.load().state == SlotState::Exited
                    || ctrl.completion_ring(i).has_records()
            }) || self.can_start_now()
        };
        let ticket = ev.prepare();
        if !pending() {
            ev.sleep(&ticket, Some(tick));
        }
        ev.finish(ticket);
    }

    /// Handles the end of process `generation` in `slot` (the slot is `Exited`), then
    /// empties the slot. Everything a death means is decided here, once.
    fn on_exit(&mut self, slot: usize, phase: Phase) {
        let generation = phase.generation;
        let was_ready = phase.was_ready;
        let inner = Arc::clone(&self.inner);
        let inner = &*inner;
        let s = inner.ctrl.slot(slot);
        let status = ExitStatus::decode(s.exit_status.load(Ordering::Relaxed));
        let pid = s.pid.load(Ordering::Relaxed) as i32;
        let killed = match self.killed[slot].take() {
            Some(k) if k.generation == generation => Some(k.reason),
            other => {
                self.killed[slot] = other;
                None
            }
        };
        let timeout = match killed {
            Some(KillReason::Timeout(limit)) => Some(limit),
            _ => None,
        };
        let cancelled = match killed {
            Some(KillReason::Cancelled(task)) => Some(task),
            _ => None,
        };
        let cause = self.cause_of(slot, status, killed.is_some());
        // Everything done about this exit (delivery, requeue, failed tasks, the
        // replacement's scheduling) happens inside this span.
        let _span = tracing::info_span!("shmpool.worker.exit", worker = slot, pid, cause = %cause)
            .entered();
        // SYNC(W11): SeqCst — the dead worker's last `current_task` (SYNC W3/W9) and `bulk_job`
        // (SYNC W2) stores are visible through SYNC F1 (read in `run`, after the reap); SeqCst
        // is more than needed. Here only for the log line.
        let busy = s.current_task.load(Ordering::SeqCst) != 0
            || s.bulk_job.load(Ordering::SeqCst) != NO_JOB;
        if busy || status != ExitStatus::Code(0) {
            tracing::warn!(worker = slot, pid, cause = %cause, timed_out = timeout.is_some(), cancelled, busy, "worker died");
        } else {
            tracing::debug!(worker = slot, pid, "worker exited");
        }

        // Everything the worker reported before it died is delivered first.
        inner.drain_slot(slot);
        // Records it had claimed but not started: their tasks go back to the front of
        // the backlog (a cancelled one leaves instead). Bulk join records carry no work
        // of their own.
        let owner = slot as u16 + 1;
        let mut requeued = Vec::new();
        for record in inner.ctrl.submit_ring().recover(owner) {
            match RecordKind::decode(record.kind) {
                Some(RecordKind::Task) => {
                    requeued.push(record.id);
                    inner.requeue_task(record.id);
                }
                // A join carries no work; nor does a record of no known kind, which
                // its worker would have dropped.
                Some(RecordKind::JoinBulk) | None => {}
            }
        }
        // The task it was running, if it did not report it.
        // SYNC(W11): SeqCst — as above; read after the drain, so a task the worker reported
        // is no longer pending and `fail_task` ignores it.
        let task = s.current_task.load(Ordering::SeqCst);
        if task != 0 && cancelled.is_some_and(|c| c != task) && !requeued.contains(&task) {
            // Killed to cancel a task it had finished by the time the signal landed:
            // the task it was running then is not at fault, and runs again.
            tracing::info!(
                task,
                worker = slot,
                "requeueing a task hit by another's cancel"
            );
            inner.requeue_task(task);
        } else if task != 0 && !requeued.contains(&task) {
            let work = crate::error::Work::Task(task);
            let error = if inner.state() == PoolState::Terminated {
                inner.broken_or_terminated()
            } else {
                match timeout {
                    Some(limit) => Error::Timeout {
                        worker: slot,
                        pid,
                        limit,
                        work,
                    },
                    None => Error::WorkerDied {
                        worker: slot,
                        pid,
                        cause,
                        work,
                    },
                }
            };
            inner.task_died(task, error);
        }

        // SYNC(W11): SeqCst — as above (the worker's SYNC W2 store, seen through SYNC F1).
        let job = s.bulk_job.load(Ordering::SeqCst);
        if job != NO_JOB {
            let death = Death {
                chunk: s.bulk_chunk.load(Ordering::Relaxed),
                worker: slot,
                pid,
                cause,
                timeout,
            };
            // Unless the job's losses are retried, this stops it: its other workers
            // claim nothing more, and `resolve_suspects` below finishes it once they
            // are out, so the caller hears of the death within about a millisecond.
            inner.jobs.record_death(inner.ctrl, job, death);
        }
        // The worker died registered as a sleeper: remove the registration.
        // SYNC(W10): SeqCst — pairs with the dead worker's SeqCst stores of `asleep`, visible
        // through SYNC F1: set means its registration (SYNC E1) is still counted.
        if s.asleep.load(Ordering::SeqCst) == 1 {
            inner.ctrl.header().submit_ready.forget_dead_sleeper();
        }
        // SYNC(W12): SeqCst — leaves the job for the dead worker, as its own clearing store
        // (SYNC W2) would have; the quiescence check skips this slot until it is live again
        // (SYNC G2), so Relaxed would do.
        s.bulk_job.store(NO_JOB, Ordering::SeqCst);
        s.current_task.store(0, Ordering::Relaxed);
        s.deadline_ns.store(0, Ordering::Relaxed);
        inner.forget_worker(slot);
        // Exited → Empty: the transition's Release (SYNC G1) publishes the reset above.
        // Only this thread releases or starts a slot, so it cannot fail.
        let released = s.lifecycle.release(generation);
        debug_assert!(released, "slot {slot} changed while its death was handled");
        tracing::debug!(worker = slot, generation, "slot empty");

        if was_ready {
            self.early_deaths = 0;
            return;
        }
        self.early_deaths += 1;
        match status {
            ExitStatus::Code(code) if start_failure(code).is_some() => {
                inner.mark_broken(start_failure(code).unwrap_or_default().into());
            }
            // Killed from outside (a test's killer, the OOM killer): not the worker's
            // fault. Keep replacing it, backing off if it keeps happening.
            ExitStatus::Signal(libc::SIGKILL) => {
                let n = self.early_deaths.min(8);
                let delay = Duration::from_millis(1 << n).min(Duration::from_millis(200));
                self.start_not_before = Some(Instant::now() + delay);
            }
            _ if self.early_deaths >= 3 => {
                inner.mark_broken(format!(
                    "workers died three times while starting, in a row (the last: worker {slot} {cause})"
                ));
            }
            _ => {}
        }
    }

    /// What a worker's exit status means. A SIGABRT after an allocation failed under
    /// `worker_memory_limit` is `MemoryLimit`; a SIGKILL the collector did not send
    /// (for a timeout, or on `terminate` and the fork server's death, when the pool
    /// is terminated) is `OutOfMemory` when the kernel counted an OOM kill for it.
    fn cause_of(&mut self, slot: usize, status: ExitStatus, timed_out: bool) -> DeathCause {
        let limit = self.inner.ctrl.header().worker_memory_limit;
        let s = self.inner.ctrl.slot(slot);
        match status {
            ExitStatus::Code(c) => DeathCause::Exit(c),
            // SYNC(W13): Acquire — pairs with the Release store of the worker's SIGABRT
            // handler (`sys::memory`); the death, seen through SYNC F1/G2, orders it
            // already. Reset when the slot gets its next process (`start_worker`).
            ExitStatus::Signal(libc::SIGABRT)
                if limit != 0 && s.memory_limit_hit.load(Ordering::Acquire) != 0 =>
            {
                DeathCause::MemoryLimit { limit }
            }
            ExitStatus::Signal(libc::SIGKILL)
                if !timed_out
                    && self.inner.state() != PoolState::Terminated
                    && self.oom.explains_a_kill() =>
            {
                DeathCause::OutOfMemory
            }
            ExitStatus::Signal(sig) => DeathCause::Signal(sig),
        }
    }

    /// How many more workers the pool needs now: its size less the slots that serve
    /// (`Starting` or `Ready`; a `Retiring` worker already has its replacement
    /// counted). Zero once the pool stops taking work, or (after `close`) when no
    /// work is left.
    fn shortfall(&self) -> usize {
        let ctrl = self.inner.ctrl;
        // The phase loads (SYNC G2) only count.
        let serving = (0..self.slots())
            .filter(|&i| ctrl.slot(i).lifecycle.load().state.is_serving())
            .count();
        let wanted = match self.inner.state() {
            PoolState::Running => self.inner.processes,
            PoolState::Closed if self.work_remains() => self.inner.processes,
            PoolState::Closed | PoolState::Terminated => 0,
        };
        wanted.saturating_sub(serving)
    }

    /// Whether a worker is missing and may start now (no back-off pending).
    fn can_start_now(&self) -> bool {
        self.start_not_before.is_none_or(|at| Instant::now() >= at) && self.shortfall() > 0
    }

    /// Keeps the pool at its size: starts a worker in an empty slot for each one
    /// missing, whichever slot its predecessor had. This is the only place that
    /// starts replacements (after deaths, timeouts and retirements alike), and a
    /// slot is claimed with its `Empty → Starting` transition, so no slot is ever
    /// given two processes and the pool never holds more serving workers than its
    /// size. Returns the time until a backed-off start is due.
    fn top_up(&mut self) -> Option<Duration> {
        let mut missing = self.shortfall();
        if missing == 0 {
            return None;
        }
        if let Some(at) = self.start_not_before {
            let now = Instant::now();
            if now < at {
                return Some(at - now);
            }
            self.start_not_before = None;
        }
        let inner = &*self.inner;
        for slot in 0..self.slots() {
            if missing == 0 {
                break;
            }
            if inner.ctrl.slot(slot).lifecycle.load().state != SlotState::Empty {
                continue;
            }
            let _span = tracing::info_span!("shmpool.worker.respawn", worker = slot).entered();
            match inner.start_worker(slot) {
                Ok(true) => {
                    tracing::info!(worker = slot, "starting a replacement worker");
                    super::stats::Counters::add(&inner.counters.respawns, 1);
                    missing -= 1;
                }
                Ok(false) => {}
                Err(e) => {
                    inner.mark_broken(format!("could not start a replacement worker: {e}"));
                    return None;
                }
            }
        }
        None
    }

    /// Whether submitted work is still waiting for a worker.
    fn work_remains(&self) -> bool {
        let ctrl = self.inner.ctrl;
        if !ctrl.submit_ring().is_empty_hint() || !self.inner.tasks.is_empty() {
            return true;
        }
        self.inner.jobs.any_running(ctrl)
    }

    /// Kills workers past their deadline; returns the time to the nearest deadline.
    ///
    /// The collector kills through a pidfd of its own, not through the fork server,
    /// so a stopped or busy server cannot delay a timeout, and it watches the pidfd
    /// for the death (`notice_killed_deaths`).
    fn enforce_deadlines(&mut self) -> Option<Duration> {
        let now = sys::monotonic_ns();
        let mut nearest: Option<u64> = None;
        for slot in 0..self.slots() {
            let s = self.inner.ctrl.slot(slot);
            let deadline = s.deadline_ns.load(Ordering::Relaxed);
            if deadline == 0 || self.killed[slot].is_some() {
                continue;
            }
            let phase = s.lifecycle.load();
            if !phase.state.is_live() {
                continue;
            }
            if now < deadline {
                nearest = Some(nearest.map_or(deadline - now, |n: u64| n.min(deadline - now)));
                continue;
            }
            let started = s.started_ns.load(Ordering::Relaxed);
            let limit = Duration::from_nanos(deadline.saturating_sub(started));
            self.kill(slot, phase, KillReason::Timeout(limit));
        }
        nearest.map(|ns| {
            Duration::from_nanos(ns).clamp(Duration::from_micros(200), Duration::from_millis(250))
        })
    }

    /// Kills the process of `phase` in `slot` through a pidfd of our own, and
    /// remembers why, for `on_exit`. Does nothing if that process is gone already
    /// (its exit is on its way).
    fn kill(&mut self, slot: usize, phase: Phase, reason: KillReason) {
        let s = self.inner.ctrl.slot(slot);
        let pid = s.pid.load(Ordering::Relaxed) as i32;
        let Ok(pidfd) = sys::pidfd_open(pid) else {
            return;
        };
        // The fork server reaps a worker before it reports it `Exited`, so a
        // process still live in the same generation after the open was not
        // reaped before it, and the pidfd is that worker's (only a pid reused
        // within the server's reap-and-report window could escape this check).
        if s.lifecycle.load() != phase {
            return;
        }
        match reason {
            KillReason::Timeout(limit) => {
                tracing::warn!(worker = slot, pid, limit = ?limit, "killing a worker past its time limit");
            }
            KillReason::ChunkCancelled => {
                tracing::info!(
                    worker = slot,
                    pid,
                    "killing a worker inside a cancelled bulk job"
                );
            }
            KillReason::Cancelled(task) => {
                tracing::info!(
                    worker = slot,
                    pid,
                    task,
                    "killing the worker of a cancelled task"
                );
            }
        }
        let _ = sys::pidfd_kill(pidfd.as_fd());
        self.killed[slot] = Some(Killed {
            generation: phase.generation,
            reason,
            pidfd,
        });
    }

    /// Kills the workers of cancelled running tasks (`CancelMode::Kill`). A task's
    /// worker is the consumer that claimed its ring record, while the claim holds;
    /// once the record is released, the worker whose `current_task` names it (the
    /// worker stores it before it releases the claim, SYNC W3, and the release is
    /// seen through SYNC M9). No such worker: the task finished (or its worker died)
    /// meanwhile, and there is nothing to kill. Returns whether requests wait for a
    /// worker already being killed.
    fn kill_cancelled(&mut self) -> bool {
        self.cancel_kills.extend(self.inner.tasks.take_kills());
        if self.cancel_kills.is_empty() {
            return false;
        }
        let requests = std::mem::take(&mut self.cancel_kills);
        let inner = Arc::clone(&self.inner);
        let ring = inner.ctrl.submit_ring();
        for request in requests {
            let holder = match ring.claimant(request.pos) {
                Some(owner) => Some(usize::from(owner) - 1),
                None => (0..self.slots()).find(|&i| {
                    let s = self.inner.ctrl.slot(i);
                    // SYNC(W11): SeqCst — the worker's SYNC W3 store, visible after the
                    // release of its claim (SYNC M9 above); a worker that has moved on
                    // to another task no longer names this one.
                    s.lifecycle.load().state.is_live()
                        && s.current_task.load(Ordering::SeqCst) == request.task
                }),
            };
            let Some(slot) = holder.filter(|&i| i < self.slots()) else {
                continue; // finished or died meanwhile
            };
            if self.killed[slot].is_some() {
                // Being killed already (a timeout, another cancel): its death
                // handles this task too. Keep the request until then.
                self.cancel_kills.push(request);
                continue;
            }
            let phase = self.inner.ctrl.slot(slot).lifecycle.load();
            if phase.state.is_live() {
                self.kill(slot, phase, KillReason::Cancelled(request.task));
            }
        }
        !self.cancel_kills.is_empty()
    }

    /// Kills the workers that hold a chunk of a cancelled bulk job: live, inside the
    /// job (`bulk_job`), with a chunk claimed and not done (the test `record_death`
    /// uses). A worker between chunks is left alone: the job's cursor is closed, so
    /// it claims nothing more.
    fn kill_cancelled_chunks(&mut self) {
        for packed in self.inner.take_chunk_kills() {
            let (index, _) = protocol::unpack_job(packed);
            let ctrl = self.inner.ctrl;
            for slot in 0..self.slots() {
                let s = ctrl.slot(slot);
                let phase = s.lifecycle.load();
                // SYNC(W11): SeqCst — the worker's `bulk_job` (SYNC W2), as the
                // ledger reads it: a worker holding a chunk of the job names it.
                if !phase.state.is_live() || s.bulk_job.load(Ordering::SeqCst) != packed {
                    continue;
                }
                let chunk = s.bulk_chunk.load(Ordering::Relaxed);
                if protocol::may_have_held(ctrl.job(index), ctrl.bitmap(index), chunk) {
                    self.kill(slot, phase, KillReason::ChunkCancelled);
                }
            }
        }
    }

    /// Reports `Exited` for killed workers whose pidfd shows them dead, without
    /// waiting for the fork server to reap them (it may be stopped). If the server
    /// reports first, or later, the generation check makes the other report a no-op.
    fn notice_killed_deaths(&mut self) {
        for slot in 0..self.slots() {
            let Some(k) = &self.killed[slot] else {
                continue;
            };
            let s = self.inner.ctrl.slot(slot);
            let phase = s.lifecycle.load();
            if phase.generation != k.generation || !phase.state.is_live() {
                continue; // Reported already; `on_exit` takes it.
            }
            if sys::pidfd_exited(k.pidfd.as_fd()) {
                s.exit_status.store(
                    ExitStatus::Signal(libc::SIGKILL).encode(),
                    Ordering::Relaxed,
                );
                // The transition (SYNC G1) publishes `exit_status`. The process is
                // dead, so it makes no more stores: what it wrote is visible to us
                // after its death, which the pidfd's readiness reported (the kernel's
                // exit path and poll wake-up order them).
                s.lifecycle.mark_exited(k.generation);
            }
        }
    }

    /// Finishes bulk jobs whose dead workers left chunks unfinished (closing the
    /// cursor of those a death or panic stopped), inviting live workers to those with
    /// chunks left. Returns whether any job is still watched.
    fn resolve_suspects(&self) -> bool {
        let inner = &*self.inner;
        let ctrl = inner.ctrl;
        let slots = self.slots();
        let inside = |job: u64| {
            (0..slots).any(|i| {
                let s = ctrl.slot(i);
                // SYNC(W2): SeqCst — the quiescence read of `bulk_job` (see
                // `Ledger::resolve_abandoned`), after the phase load (SYNC G2).
                s.lifecycle.load().state.is_live() && s.bulk_job.load(Ordering::SeqCst) == job
            })
        };
        let invite = |job: u64| {
            if inner.state() == PoolState::Terminated {
                return;
            }
            for _ in 0..inner.live_workers().max(1) {
                let record = crate::layout::TaskRecord {
                    kind: RecordKind::JoinBulk as u32,
                    id: job,
                    ..Default::default()
                };
                if ctrl.submit_ring().push(record).is_err() {
                    break;
                }
            }
            ctrl.header().submit_ready.notify(u32::MAX);
        };
        inner.jobs.resolve_abandoned(ctrl, inside, invite)
    }

    fn server_is_gone(&self) -> bool {
        let guard = lock(&self.inner.server);
        match guard.as_ref() {
            Some(link) => !matches!(sys::try_reap(link.pid), Ok(None)),
            None => false,
        }
    }

    /// The fork server died: its workers were killed with it (PDEATHSIG). Report them
    /// dead and stop the pool: no safe way remains to start workers.
    fn on_server_death(&mut self) {
        lock(&self.inner.server).take();
        for slot in 0..self.slots() {
            let s = self.inner.ctrl.slot(slot);
            let phase = s.lifecycle.load();
            if phase.state.is_live() {
                let pid = s.pid.load(Ordering::Relaxed) as i32;
                if pid > 0 {
                    let _ = sys::kill(pid, libc::SIGKILL);
                }
                s.exit_status.store(
                    ExitStatus::Signal(libc::SIGKILL).encode(),
                    Ordering::Relaxed,
                );
                // SYNC(F2): on behalf of the dead fork server; the transition (SYNC G1)
                // publishes `exit_status`. Unlike F1 the worker was only sent SIGKILL,
                // not reaped, so F1's "every store it made" does not hold here.
                s.lifecycle.mark_exited(phase.generation);
            }
        }
        if self.inner.state() != PoolState::Terminated {
            self.inner.mark_broken("the fork server died".into());
        }
    }

    fn should_stop(&mut self) -> bool {
        let inner = &*self.inner;
        let slots = self.slots();
        let all_empty =
            || (0..slots).all(|i| inner.ctrl.slot(i).lifecycle.load().state == SlotState::Empty);
        match inner.state() {
            PoolState::Running => false,
            PoolState::Closed => all_empty() && !self.work_remains(),
            PoolState::Terminated => {
                let since = *self.terminating_since.get_or_insert_with(Instant::now);
                if lock(&inner.server).is_none() {
                    return true;
                }
                if all_empty() {
                    return true;
                }
                // The server should have killed everyone by now; make sure.
                if since.elapsed() > Duration::from_secs(2) {
                    if let Some(link) = lock(&inner.server).take() {
                        let _ = sys::kill(link.pid, libc::SIGKILL);
                        let _ = sys::reap(link.pid);
                    }
                    return true;
                }
                false
            }
        }
    }

    /// On the way out: every job still in flight finishes as terminated.
    fn finish_everything(&mut self) {
        let inner = &*self.inner;
        inner.drain();
        // Relaxed: ordered by the `pending` mutex. A submitter that inserts after
        // the sweep below takes that mutex after it, so it then reads `true` and
        // fails its own task; one that inserts before is failed by the sweep.
        inner.pending_sealed.store(true, StdOrdering::Relaxed);
        inner.fail_all_pending(|| inner.broken_or_terminated());
        // The callback thread runs what is queued and exits; callbacks of later
        // deliveries run on the delivering thread.
        inner.callbacks.close();
        inner.jobs.terminate_all(inner.ctrl);
    }
}

/// The meaning of a worker's start-up exit code, when it means "do not retry".
fn start_failure(code: i32) -> Option<&'static str> {
    match code {
        exit_code::BAD_SEGMENT => Some("a worker could not map the pool's shared memory"),
        exit_code::BINARY_MISMATCH => {
            Some("a re-executed worker is a different binary than the parent (was it rebuilt?)")
        }
        exit_code::INIT_FAILED => Some("the worker initializer failed"),
        exit_code::SPAWN_FAILED => Some("the fork server could not start a worker process"),
        exit_code::MEMORY_CONTROLS => Some(
            "a worker could not set up its memory controls (RLIMIT_DATA, /proc/self/status, \
             /proc/self/statm)",
        ),
        _ => None,
    }
}
