//! The collector thread: the pool's one background thread.
//!
//! It starts the fork server (from this long-lived thread, because the kernel ties
//! `PR_SET_PDEATHSIG` to the thread that created a child), then watches the
//! workers: it handles each exit the fork server reports, attributes what a dead
//! worker was running, respawns, kills workers that run past their deadline or
//! whose task was cancelled, feeds the backlog of tasks into the submission ring,
//! and finishes bulk jobs abandoned by dead workers. On `close` it lets the workers
//! drain and exit; on `terminate` it makes sure every process is gone.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::StartMethod;
use super::inner::PoolInner;
use super::kill::{Order, Orders, Reason, Target};
use super::life::PoolState;
use crate::error::{DeathCause, Error, PoolKill, Result, Work};
use crate::job::ledger::Death;
use crate::layout::RecordKind;
use crate::slot::{DeadProcess, Released, SlotState};
use crate::sys::{self, ExitStatus};
use crate::worker::entry;
use crate::worker::exit_code;
use crate::worker::role::StartKind;

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
                (0..inner.settings.processes)
                    .try_for_each(|slot| inner.start_worker(slot).map(drop))
            });
            let ok = started.is_ok();
            let _ = tx.send(started);
            if ok {
                Collector::new(Arc::clone(&inner)).run();
            } else {
                inner.terminate();
                inner.server.shut_down();
            }
            // Everything above (pending tasks failed, jobs finished, server shut down)
            // happens-before the flag (SYNC C5).
            inner.life.mark_collector_exited();
            inner.jobs.wake_finished(inner.ctrl, true);
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
    let live = inner.shipping.liveness().fd();
    let arena = inner
        .delivery
        .arena_fd()
        .map_err(Error::io("sharing the task arena"))?;
    let arena = arena.as_fd();
    let ctrl = inner.ctrl_fd();
    let pid = match method {
        // SAFETY: called on the collector thread, which holds no lock here; the child
        // runs only the server loop (see `fork_server`).
        StartMethod::Fork => unsafe {
            entry::fork_server(ctrl, live, arena, &server_end, StartKind::Fork)
        },
        StartMethod::ForkServer => {
            entry::exec_server(ctrl, live, arena, &server_end, StartKind::Fork)
        }
        StartMethod::Spawn => entry::exec_server(ctrl, live, arena, &server_end, StartKind::Exec),
    }
    .map_err(Error::io("starting the fork server"))?;
    drop(server_end);
    inner.server.connect(parent_end, pid);
    Ok(())
}

struct Collector {
    inner: Arc<PoolInner>,
    /// The kills this collector ordered, per slot (`src/pool/kill.rs`).
    orders: Orders,
    /// Consecutive deaths of workers that never became ready.
    early_deaths: u32,
    /// After workers died while starting: no new worker starts before this.
    start_not_before: Option<Instant>,
    /// When `terminate` was first noticed.
    terminating_since: Option<Instant>,
    /// The kernel's count of OOM kills, to tell them from other SIGKILLs.
    oom: super::oom::OomWatch,
}

impl Collector {
    fn new(inner: Arc<PoolInner>) -> Self {
        let slots = inner.ctrl.dims().slots as usize;
        let orders = Orders::new(slots, inner.settings.kill_decision_delay);
        Collector {
            inner,
            orders,
            early_deaths: 0,
            start_not_before: None,
            terminating_since: None,
            oom: super::oom::OomWatch::new(),
        }
    }

    fn slots(&self) -> usize {
        self.inner.ctrl.dims().slots as usize
    }

    fn run(mut self) {
        loop {
            // What the pass below sees of the pool's state: a change after this is a
            // wake-up source (`has_work`).
            let state = self.inner.life.state();
            let mut progress = self.inner.drain() > 0;
            self.orders.notice_deaths(self.inner.ctrl);
            self.oom.tick();
            let inner = Arc::clone(&self.inner);
            for slot in 0..self.slots() {
                if let Some(dead) = inner.ctrl.slot(slot).exited() {
                    self.on_exit(slot, dead);
                    progress = true;
                }
            }
            self.inner.feed();
            self.kill_cancelled();
            self.inner.jobs.wake_finished(self.inner.ctrl, false);
            let next_start = self.top_up();
            let next_deadline = match (self.enforce_deadlines(), next_start) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let suspects = self.resolve_suspects() | self.orders.any();
            if self.inner.server.has_died() {
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
                self.sleep(tick, state);
            }
        }
        self.finish_everything();
        self.inner.server.shut_down();
    }

    /// Sleeps on `completions` for at most `tick`, unless a wake-up source has
    /// something: registered first, then every source re-checked (`has_work`), so a
    /// notify that came before the registration is not lost.
    fn sleep(&self, tick: Duration, state: PoolState) {
        let ev = &self.inner.ctrl.header().completions;
        let wake_at = sys::monotonic_ns().saturating_add(tick.as_nanos() as u64);
        let ticket = ev.prepare();
        if !self.has_work(state, wake_at) {
            ev.sleep(&ticket, Some(tick));
        }
        ev.finish(ticket);
    }

    /// The one list of what can wake the collector, each published before its
    /// notifier notifies `completions` (SYNC E1/E3): whether any has something now
    /// that the pass that began in pool state `state` did not handle, or a deadline
    /// falls before `wake_at`.
    ///
    /// | source | notified by |
    /// |---|---|
    /// | a completion in a ring | the worker that pushed it, unless a caller polls |
    /// | a slot `Exited` | the fork server (or the collector itself) |
    /// | a worker missing, its start due | a retiring worker; a death |
    /// | a kill request (a cancel in `Kill` mode) | the canceller |
    /// | the pool's state (`close`, `terminate`) | `close`, `terminate` |
    /// | an awaited bulk job finished | the job's finishing worker (`wake_collector`) |
    /// | a new task or chunk deadline | the worker that started it |
    ///
    /// The fork server's death and the OOM count are noticed on the tick.
    fn has_work(&self, state: PoolState, wake_at: u64) -> bool {
        let inner = &*self.inner;
        let ctrl = inner.ctrl;
        // The phase loads (SYNC G2) only decide whether to sleep; `run` re-reads.
        (0..self.slots()).any(|i| {
            let s = ctrl.slot(i);
            let phase = s.phase();
            phase.state == SlotState::Exited
                || ctrl.completion_ring(i).has_records()
                || (phase.state.is_live()
                    && !self.orders.is_ordered(i)
                    && s.assignment_hint()
                        .clock
                        .is_some_and(|c| c.deadline_ns < wake_at))
        }) || self.can_start_now()
            || inner.kill_requests.any()
            || inner.life.state() != state
            || inner.jobs.any_finished_waiter(ctrl)
    }

    /// Handles the end of a process of `slot` (the slot is `Exited`), then empties
    /// the slot. Everything a death means is decided here, once: the dead process's
    /// record is compared with the kill the pool ordered, if any (`src/pool/kill.rs`), so the
    /// work a kill targeted gets its own outcome and nothing else is blamed.
    fn on_exit(&mut self, slot: usize, dead: DeadProcess<'_>) {
        let inner = Arc::clone(&self.inner);
        let inner = &*inner;
        let order = self.orders.take(slot, dead.generation);
        let stopped = inner.life.state() == PoolState::Terminated;
        let cause = self.cause_of(&dead, order.as_ref(), stopped);
        // A pid the slot never got reads as 0 in errors, as the kernel would print it.
        let pid = dead.pid.unwrap_or(0);
        // Everything done about this exit (delivery, requeue, failed tasks, the
        // replacement's scheduling) happens inside this span.
        let _span = tracing::info_span!("shmpool.worker.exit", worker = slot, pid, cause = %cause)
            .entered();
        let busy = dead.ran.task.is_some() || dead.ran.job.is_some();
        if order.is_some() || stopped || !(busy || dead.status != ExitStatus::Code(0)) {
            // Killed by the pool's own order, or as it stops, or a clean exit.
            tracing::debug!(worker = slot, pid, cause = %cause, busy, "worker exited");
        } else {
            tracing::warn!(worker = slot, pid, cause = %cause, busy, "worker died");
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
        // The task it was running, if it did not report it (a reported one is no
        // longer pending: the drain above delivered it).
        if let Some(task) = dead.ran.task.filter(|t| !requeued.contains(t)) {
            let work = Work::Task(task);
            let error = match &order {
                _ if stopped => Some(inner.broken_or_terminated()),
                Some(o) if o.target.names_task(task) => Some(match o.reason {
                    Reason::Timeout(limit) => Error::Timeout {
                        worker: slot,
                        pid,
                        limit,
                        work,
                    },
                    // Answered `Cancelled` by the cancel already: discarded.
                    Reason::Cancelled => Error::Cancelled { work },
                }),
                // Killed for other work: the kill hold keeps a worker on the work its
                // kill was decided for, so this does not happen; were it to, the task
                // was not at fault and runs again.
                Some(o) => {
                    tracing::error!(task, worker = slot, target = ?o.target, "a kill landed on work it did not target; requeueing the task");
                    None
                }
                None => Some(Error::WorkerDied {
                    worker: slot,
                    pid,
                    cause,
                    work,
                }),
            };
            match error {
                Some(error) => inner.task_died(task, error),
                None => inner.requeue_task(task),
            }
        }

        if let Some(job) = dead.ran.job {
            let timeout = match &order {
                Some(o) if o.target.names_job(job) => match o.reason {
                    Reason::Timeout(limit) => Some(limit),
                    Reason::Cancelled => None,
                },
                Some(o) => {
                    tracing::error!(worker = slot, target = ?o.target, job, "a kill landed in a bulk job it did not target");
                    None
                }
                None => None,
            };
            let death = Death {
                chunk: dead.ran.chunk,
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
        if dead.asleep {
            inner.ctrl.header().submit_ready.forget_dead_sleeper();
        }
        inner.forget_worker(slot);
        let (generation, was_ready, status) = (dead.generation, dead.was_ready, dead.status);
        // Exited → Empty, the per-process words reset. Only this thread releases or
        // starts a slot, so it cannot have moved.
        let released = dead.release();
        debug_assert_eq!(
            released,
            Released::Empty,
            "slot {slot} moved while its death was handled"
        );
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

    /// What a worker's exit status means. A SIGKILL the pool ordered (a kill order
    /// of `src/pool/kill.rs`, or the kill of every worker when the pool stops) is
    /// `KilledByPool`; a SIGABRT after an allocation failed under
    /// `worker_memory_limit` is `MemoryLimit`; any other SIGKILL is `OutOfMemory` when
    /// the kernel counted an OOM kill for it.
    fn cause_of(
        &mut self,
        dead: &DeadProcess<'_>,
        order: Option<&Order>,
        stopped: bool,
    ) -> DeathCause {
        let limit = self.inner.ctrl.header().worker_memory_limit;
        match dead.status {
            ExitStatus::Signal(libc::SIGKILL) if order.is_some() => {
                DeathCause::KilledByPool(order.map_or(PoolKill::Stopped, |o| o.reason.cause()))
            }
            ExitStatus::Signal(libc::SIGKILL) if stopped => {
                DeathCause::KilledByPool(PoolKill::Stopped)
            }
            ExitStatus::Code(c) => DeathCause::Exit(c),
            ExitStatus::Signal(libc::SIGABRT) if limit != 0 && dead.memory_limit_hit => {
                DeathCause::MemoryLimit { limit }
            }
            ExitStatus::Signal(libc::SIGKILL) if self.oom.explains_a_kill() => {
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
            .filter(|&i| ctrl.slot(i).phase().state.is_serving())
            .count();
        let wanted = match self.inner.life.state() {
            PoolState::Running => self.inner.settings.processes,
            PoolState::Closed if self.work_remains() => self.inner.settings.processes,
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
            if inner.ctrl.slot(slot).phase().state != SlotState::Empty {
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
        if !ctrl.submit_ring().is_empty_hint() || !self.inner.delivery.pending().is_empty() {
            return true;
        }
        self.inner.jobs.any_running(ctrl)
    }

    /// Kills workers whose task or chunk is past its deadline; returns the time to
    /// the nearest deadline.
    ///
    /// The collector kills through a pidfd of its own (`src/pool/kill.rs`), not through the
    /// fork server, so a stopped or busy server cannot delay a timeout, and it
    /// watches the pidfd for the death. The deadline is checked again under the kill
    /// hold: a task or chunk that ended meanwhile is not killed, nor is the work its
    /// worker moved on to.
    fn enforce_deadlines(&mut self) -> Option<Duration> {
        let now = sys::monotonic_ns();
        let ctrl = self.inner.ctrl;
        let mut nearest: Option<u64> = None;
        for slot in 0..self.slots() {
            let s = ctrl.slot(slot);
            if self.orders.is_ordered(slot) || !s.phase().state.is_live() {
                continue;
            }
            let Some(clock) = s.assignment_hint().clock else {
                continue;
            };
            if now < clock.deadline_ns {
                let left = clock.deadline_ns - now;
                nearest = Some(nearest.map_or(left, |n| n.min(left)));
                continue;
            }
            self.orders.order(ctrl, slot, |hold| {
                let ran = hold.record();
                let clock = ran.clock.filter(|c| sys::monotonic_ns() >= c.deadline_ns)?;
                let limit =
                    Duration::from_nanos(clock.deadline_ns.saturating_sub(clock.started_ns));
                let target = match (ran.job, ran.chunk, ran.task) {
                    (Some(job), Some(chunk), _) => Target::Chunk { job, chunk },
                    (None, _, Some(id)) => Target::Task { id, pos: None },
                    _ => return None,
                };
                Some((target, Reason::Timeout(limit)))
            });
        }
        nearest.map(|ns| {
            Duration::from_nanos(ns).clamp(Duration::from_micros(200), Duration::from_millis(250))
        })
    }

    /// Kills the workers of cancelled work (`CancelMode::Kill`): of a cancelled
    /// running task, the worker that claimed its ring record (while the claim holds)
    /// or whose record names it (the worker records it before it releases the claim,
    /// SYNC W3, and the release is seen through SYNC M9); of a cancelled bulk job,
    /// the workers that hold one of its chunks. Each is checked again under the kill
    /// hold (`src/pool/kill.rs`): work that ended meanwhile is left alone, and so is whatever
    /// its worker moved on to.
    fn kill_cancelled(&mut self) {
        let requests = self.inner.kill_requests.take();
        let ctrl = self.inner.ctrl;
        let ring = ctrl.submit_ring();
        for target in requests {
            for slot in 0..self.slots() {
                let s = ctrl.slot(slot);
                let owner = slot as u16 + 1;
                let claimed = |pos: u64| ring.claimant(pos) == Some(owner);
                if !s.phase().state.is_live() || !target.is_run_by(claimed, || s.assignment_hint())
                {
                    continue;
                }
                self.orders.order(ctrl, slot, |hold| {
                    target
                        .is_run_by(claimed, || hold.record())
                        .then_some((target, Reason::Cancelled))
                });
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
        // The quiescence check (see `Ledger::resolve_abandoned`).
        let inside = |job: u64| (0..slots).any(|i| ctrl.slot(i).runs_job(job));
        let invite = |job: u64| {
            if inner.life.state() == PoolState::Terminated {
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

    /// The fork server died: its workers were killed with it (PDEATHSIG). Report them
    /// dead and stop the pool: no safe way remains to start workers.
    fn on_server_death(&mut self) {
        self.inner.server.forget();
        for slot in 0..self.slots() {
            let s = self.inner.ctrl.slot(slot);
            let phase = s.phase();
            if phase.state.is_live() {
                if let Some(pid) = s.pid() {
                    let _ = sys::kill(pid, libc::SIGKILL);
                }
                // SYNC(F2): on behalf of the dead fork server; the transition (SYNC G1)
                // publishes the status. Unlike F1 the worker was only sent SIGKILL,
                // not reaped, so F1's "every store it made" does not hold here.
                let _ = s.report_exit(phase.generation, ExitStatus::Signal(libc::SIGKILL));
            }
        }
        if !self.inner.life.is_terminated() {
            self.inner.mark_broken("the fork server died".into());
        }
    }

    fn should_stop(&mut self) -> bool {
        let inner = &*self.inner;
        let slots = self.slots();
        let all_empty = || (0..slots).all(|i| inner.ctrl.slot(i).phase().state == SlotState::Empty);
        match inner.life.state() {
            PoolState::Running => false,
            PoolState::Closed => all_empty() && !self.work_remains(),
            PoolState::Terminated => {
                let since = *self.terminating_since.get_or_insert_with(Instant::now);
                if inner.server.is_gone() || all_empty() {
                    return true;
                }
                // The server should have killed everyone by now; make sure.
                if since.elapsed() > Duration::from_secs(2) {
                    inner.server.kill();
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
        // A submitter that inserts after the sweep below fails its own task.
        inner.delivery.seal();
        inner.fail_all_pending(|| inner.broken_or_terminated());
        // The callback thread runs what is queued and exits; callbacks of later
        // deliveries run on the delivering thread.
        inner.delivery.callbacks().close();
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
