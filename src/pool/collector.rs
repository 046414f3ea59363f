//! The collector thread: the pool's one background thread.
//!
//! It starts the fork server (from this long-lived thread, because the kernel ties
//! `PR_SET_PDEATHSIG` to the thread that created a child), then watches the
//! workers: it handles each exit the fork server reports, attributes what a dead
//! worker was running, respawns, kills workers that run past their deadline, and
//! finishes bulk jobs abandoned by dead workers. On `close` it lets the workers
//! drain and exit; on `terminate` it makes sure every process is gone.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::Ordering as StdOrdering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::StartMethod;
use super::inner::{Death, PoolInner, ServerLink, lock, pool_state};
use crate::bulk;
use crate::error::{DeathCause, Error, Result};
use crate::layout::{NO_JOB, kind, slot_state};
use crate::sync::Ordering;
use crate::sys::{self, ExitStatus};
use crate::worker::entry::{self, StartKind};
use crate::worker::exit_code;
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
            let started = start_server(&inner, method)
                .and_then(|()| (0..inner.processes).try_for_each(|slot| inner.spawn_worker(slot)));
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
    /// Per slot: the limit it was killed for exceeding, if the collector killed it.
    killed_for: Vec<Option<Duration>>,
    /// Per slot: consecutive deaths before becoming ready.
    early_deaths: Vec<u32>,
    /// Per slot: a replacement was started for this retiring worker.
    replaced: Vec<bool>,
    /// Per slot: when a backed-off replacement is due.
    respawn_at: Vec<Option<Instant>>,
    /// Tasks of dead workers waiting for room in the submission ring.
    requeue: std::collections::VecDeque<crate::layout::TaskRecord>,
    /// When `terminate` was first noticed.
    terminating_since: Option<Instant>,
}

impl Collector {
    fn new(inner: Arc<PoolInner>) -> Self {
        let slots = inner.ctrl.dims().slots as usize;
        Collector {
            inner,
            killed_for: vec![None; slots],
            early_deaths: vec![0; slots],
            replaced: vec![false; slots],
            respawn_at: vec![None; slots],
            requeue: std::collections::VecDeque::new(),
            terminating_since: None,
        }
    }

    fn run(mut self) {
        super::dispatch::mark_collector_thread();
        loop {
            let mut progress = self.inner.drain() > 0;
            progress |= self.inner.run_deferred() > 0;
            for slot in 0..self.killed_for.len() {
                // SYNC(F1): Acquire — pairs with the fork server's Release store.
                match self.inner.ctrl.slot(slot).state.load(Ordering::Acquire) {
                    slot_state::EXITED => {
                        self.on_exit(slot);
                        progress = true;
                    }
                    slot_state::RETIRING if !self.replaced[slot] => {
                        self.replaced[slot] = true;
                        self.replace_retiring();
                        progress = true;
                    }
                    _ => {}
                }
            }
            let next_respawn = self.due_respawns();
            let next_deadline = match (self.enforce_deadlines(), next_respawn) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let suspects = self.resolve_suspects() | self.push_requeued();
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
            (0..self.killed_for.len()).any(|i| {
                // SYNC(W8): Acquire — pairs with SYNC F1 (EXITED) and SYNC W6 (RETIRING). Only
                // decides whether to sleep; `run` re-reads (SYNC F1) before acting.
                let state = ctrl.slot(i).state.load(Ordering::Acquire);
                state == slot_state::EXITED
                    || (state == slot_state::RETIRING && !self.replaced[i])
                    || ctrl.completion_ring(i).has_records()
            }) || !lock(&inner.deferred.0).jobs.is_empty()
        };
        let ticket = ev.prepare();
        if !pending() {
            ev.sleep(&ticket, Some(tick));
        }
        ev.finish(ticket);
    }

    /// Handles the exit of the process in `slot`.
    fn on_exit(&mut self, slot: usize) {
        let inner = Arc::clone(&self.inner);
        let inner = &*inner;
        let s = inner.ctrl.slot(slot);
        let status = ExitStatus::decode(s.exit_status.load(Ordering::Relaxed));
        let pid = s.pid.load(Ordering::Relaxed) as i32;
        // SYNC(W1): Acquire — pairs with the worker's Release store of `ready`; after the
        // death (SYNC F1) it would be visible anyway.
        let was_ready = s.ready.load(Ordering::Acquire) == 1;
        let cause = match status {
            ExitStatus::Code(c) => DeathCause::Exit(c),
            ExitStatus::Signal(sig) => DeathCause::Signal(sig),
        };
        let timeout = self.killed_for[slot].take();
        self.replaced[slot] = false;
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
            tracing::warn!(worker = slot, pid, cause = %cause, timed_out = timeout.is_some(), busy, "worker died");
        } else {
            tracing::debug!(worker = slot, pid, "worker exited");
        }

        // Everything the worker reported before it died is delivered first.
        inner.drain_slot(slot);
        // Records it had claimed but not started: put tasks back in the ring. (Bulk
        // join records carry no work of their own.)
        let owner = slot as u16 + 1;
        let mut requeued = Vec::new();
        for record in inner.ctrl.submit_ring().recover(owner) {
            if record.kind == kind::TASK {
                requeued.push(record.id);
                self.requeue.push_back(record);
            }
        }
        self.push_requeued();
        // The task it was running, if it did not report it.
        // SYNC(W11): SeqCst — as above; read after the drain, so a task the worker reported
        // is no longer pending and `fail_task` ignores it.
        let task = s.current_task.load(Ordering::SeqCst);
        if task != 0 && !requeued.contains(&task) {
            let work = crate::error::Work::Task(task);
            let error = if inner.state() == pool_state::TERMINATED {
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
            inner.fail_task(task, error);
        }

        // SYNC(W11): SeqCst — as above (the worker's SYNC W2 store, seen through SYNC F1).
        let job = s.bulk_job.load(Ordering::SeqCst);
        if job != NO_JOB {
            let (index, generation) = bulk::unpack_job(job);
            let mut table = lock(&inner.bulk);
            if let Some(side) = table.sides.get_mut(index as usize) {
                if side.in_use && side.generation == generation {
                    side.deaths.push(Death {
                        chunk: s.bulk_chunk.load(Ordering::Relaxed),
                        worker: slot,
                        pid,
                        cause,
                        timeout,
                    });
                    side.suspect = true;
                }
            }
        }
        // The worker died registered as a sleeper: remove the registration.
        // SYNC(W10): SeqCst — pairs with the dead worker's SeqCst stores of `asleep`, visible
        // through SYNC F1: set means its registration (SYNC E1) is still counted.
        if s.asleep.load(Ordering::SeqCst) == 1 {
            inner.ctrl.header().submit_ready.forget_dead_sleeper();
        }
        // SYNC(W12): SeqCst — leaves the job for the dead worker, as its own clearing store
        // (SYNC W2) would have; the quiescence check skips this slot until it is live again
        // (SYNC W4), so Relaxed would do.
        s.bulk_job.store(NO_JOB, Ordering::SeqCst);
        s.current_task.store(0, Ordering::Relaxed);
        s.deadline_ns.store(0, Ordering::Relaxed);
        // SYNC(W7): Release — publishes the reset above with EMPTY; pairs with the Acquire
        // loads of `state` (SYNC W8). Only the collector reuses an EMPTY slot, so program order
        // already covers it; Release is for other parent threads.
        s.state.store(slot_state::EMPTY, Ordering::Release);
        inner.drop_channel(slot);

        let mut delay = Duration::ZERO;
        if !was_ready {
            self.early_deaths[slot] += 1;
            match status {
                ExitStatus::Code(code) if start_failure(code).is_some() => {
                    inner.mark_broken(start_failure(code).unwrap_or_default().into());
                    return;
                }
                // Killed from outside (a test's killer, the OOM killer): not the
                // worker's fault. Keep replacing it, backing off if it keeps happening.
                ExitStatus::Signal(libc::SIGKILL) => {
                    let n = self.early_deaths[slot].min(8);
                    delay = Duration::from_millis(1 << n).min(Duration::from_millis(200));
                }
                _ if self.early_deaths[slot] >= 3 => {
                    inner.mark_broken(format!(
                        "worker {slot} died three times while starting (last: it {cause})"
                    ));
                    return;
                }
                _ => {}
            }
        } else {
            self.early_deaths[slot] = 0;
        }
        if self.should_respawn() {
            if delay.is_zero() {
                self.respawn(slot);
            } else {
                self.respawn_at[slot] = Some(Instant::now() + delay);
            }
        }
    }

    /// Puts requeued tasks back in the submission ring as space allows (the ring
    /// may be full of newer work; these are never dropped). Returns whether any
    /// remain.
    fn push_requeued(&mut self) -> bool {
        let ring = self.inner.ctrl.submit_ring();
        let mut pushed = false;
        while let Some(record) = self.requeue.front() {
            if ring.push(*record).is_err() {
                break;
            }
            self.requeue.pop_front();
            pushed = true;
        }
        if pushed {
            self.inner.ctrl.header().submit_ready.notify(u32::MAX);
        }
        !self.requeue.is_empty()
    }

    fn respawn(&mut self, slot: usize) {
        self.respawn_at[slot] = None;
        let inner = &*self.inner;
        let _span = tracing::info_span!("shmpool.worker.respawn", worker = slot).entered();
        tracing::info!(worker = slot, "starting a replacement worker");
        super::stats::Counters::add(&inner.counters.respawns, 1);
        if let Err(e) = inner.spawn_worker(slot) {
            inner.mark_broken(format!("could not start a replacement worker: {e}"));
        }
    }

    /// Starts the replacements whose back-off has passed; returns the time to the
    /// next one.
    fn due_respawns(&mut self) -> Option<Duration> {
        let now = Instant::now();
        let mut next: Option<Duration> = None;
        for slot in 0..self.respawn_at.len() {
            let Some(at) = self.respawn_at[slot] else {
                continue;
            };
            if at <= now {
                if self.should_respawn() {
                    self.respawn(slot);
                } else {
                    self.respawn_at[slot] = None;
                }
            } else {
                next = Some(next.map_or(at - now, |n| n.min(at - now)));
            }
        }
        next
    }

    /// A worker is about to retire (maxtasksperchild): start its replacement now, in
    /// a free slot, so the pool never runs short.
    fn replace_retiring(&mut self) {
        let inner = &*self.inner;
        if inner.state() != pool_state::RUNNING {
            return;
        }
        // SYNC(W8): Acquire — pairs with SYNC W7 (EMPTY): the slot's reset is complete.
        let free = (0..self.killed_for.len())
            .find(|&i| inner.ctrl.slot(i).state.load(Ordering::Acquire) == slot_state::EMPTY);
        if let Some(i) = free {
            super::stats::Counters::add(&inner.counters.respawns, 1);
            if let Err(e) = inner.spawn_worker(i) {
                inner.mark_broken(format!("could not start a replacement worker: {e}"));
            }
        }
    }

    fn should_respawn(&self) -> bool {
        // Retiring workers already have their replacement: count only the others.
        let ctrl = self.inner.ctrl;
        // SYNC(W8): Acquire — pairs with SYNC W4 (SPAWNING) and W5 (RUNNING); only counts.
        let serving = (0..self.killed_for.len())
            .filter(|&i| {
                matches!(
                    ctrl.slot(i).state.load(Ordering::Acquire),
                    slot_state::SPAWNING | slot_state::RUNNING
                )
            })
            .count();
        if serving >= self.inner.processes {
            return false;
        }
        match self.inner.state() {
            pool_state::RUNNING => true,
            pool_state::CLOSED => self.work_remains(),
            _ => false,
        }
    }

    /// Whether submitted work is still waiting for a worker.
    fn work_remains(&self) -> bool {
        let ctrl = self.inner.ctrl;
        if !ctrl.submit_ring().is_empty_hint() || !lock(&self.inner.pending).is_empty() {
            return true;
        }
        let table = lock(&self.inner.bulk);
        table
            .sides
            .iter()
            .enumerate()
            .any(|(i, side)| side.in_use && !bulk::is_finished(ctrl.job(i as u32)))
    }

    /// Kills workers past their deadline; returns the time to the nearest deadline.
    fn enforce_deadlines(&mut self) -> Option<Duration> {
        let now = sys::monotonic_ns();
        let mut nearest: Option<u64> = None;
        for slot in 0..self.killed_for.len() {
            let s = self.inner.ctrl.slot(slot);
            let deadline = s.deadline_ns.load(Ordering::Relaxed);
            if deadline == 0 || self.killed_for[slot].is_some() {
                continue;
            }
            // SYNC(W8): Acquire — pairs with SYNC W4/W5/W6/F1; only decides whether to kill.
            if !PoolInner::is_live_state(s.state.load(Ordering::Acquire)) {
                continue;
            }
            if now >= deadline {
                let started = s.started_ns.load(Ordering::Relaxed);
                let limit = Duration::from_nanos(deadline.saturating_sub(started));
                tracing::warn!(worker = slot, limit = ?limit, "killing a worker past its time limit");
                self.killed_for[slot] = Some(limit);
                let _ = self.inner.send_server(
                    Request::Kill {
                        slot: slot as u32,
                        signal: libc::SIGKILL,
                    },
                    &[],
                );
            } else {
                nearest = Some(nearest.map_or(deadline - now, |n: u64| n.min(deadline - now)));
            }
        }
        nearest.map(|ns| {
            Duration::from_nanos(ns).clamp(Duration::from_micros(200), Duration::from_millis(250))
        })
    }

    /// Finishes bulk jobs whose dead workers left chunks unfinished. Returns whether
    /// any job is still being watched.
    fn resolve_suspects(&self) -> bool {
        let inner = &*self.inner;
        let ctrl = inner.ctrl;
        let mut table = lock(&inner.bulk);
        let mut watching = false;
        for (index, side) in table.sides.iter_mut().enumerate() {
            if !side.in_use || !side.suspect {
                continue;
            }
            let job = ctrl.job(index as u32);
            let (generation, next) = bulk::cursor_state(job);
            if generation != side.generation || bulk::is_finished(job) {
                side.suspect = false;
                continue;
            }
            let chunks = job.chunks.load(Ordering::Relaxed);
            let packed = bulk::pack_job(index as u32, generation);
            // SYNC(W8), then SYNC(W2): `state` (Acquire, pairs with SYNC F1/W4-W6) and `bulk_job`
            // (SeqCst, the quiescence read of SYNC W2), after the cursor load (SYNC B9). A worker
            // that claimed a chunk released its `bulk_job` with the claim (SYNC B3), so it is seen
            // inside; one seen outside cleared it after its last chunk, so its done-bits (read by
            // `lost_chunks`, SYNC B11) are visible. A dead worker's: through SYNC F1.
            let inside = (0..ctrl.dims().slots as usize).any(|i| {
                let s = ctrl.slot(i);
                PoolInner::is_live_state(s.state.load(Ordering::Acquire))
                    && s.bulk_job.load(Ordering::SeqCst) == packed
            });
            if next < chunks {
                if !inside && inner.state() != pool_state::TERMINATED {
                    // Nobody is working on it: invite the live workers.
                    for _ in 0..inner.live_workers().max(1) {
                        let record = crate::layout::TaskRecord {
                            kind: kind::JOIN_BULK,
                            id: packed,
                            ..Default::default()
                        };
                        if inner.ctrl.submit_ring().push(record).is_err() {
                            break;
                        }
                    }
                    ctrl.header().submit_ready.notify(u32::MAX);
                }
                watching = true;
            } else if inside {
                watching = true;
            } else {
                // Quiescent: nobody can claim, nobody is running a chunk.
                // SYNC(B8): Acquire — pairs with SYNC B7 in `Joined::fail`.
                let lost = if job.cancel.load(Ordering::Acquire) != 0 {
                    Vec::new()
                } else {
                    bulk::lost_chunks(ctrl.bitmap(index as u32), chunks)
                };
                side.lost = Some(lost);
                side.suspect = false;
                bulk::finish_abandoned(job);
            }
        }
        watching
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
        for slot in 0..self.killed_for.len() {
            let s = self.inner.ctrl.slot(slot);
            // SYNC(W8): Acquire — pairs with SYNC W4/W5/W6; makes `pid` (SYNC W5) visible.
            if PoolInner::is_live_state(s.state.load(Ordering::Acquire)) {
                let pid = s.pid.load(Ordering::Relaxed) as i32;
                if pid > 0 {
                    let _ = sys::kill(pid, libc::SIGKILL);
                }
                s.exit_status.store(
                    ExitStatus::Signal(libc::SIGKILL).encode(),
                    Ordering::Relaxed,
                );
                // SYNC(F2): Release — as SYNC F1, on behalf of the dead fork server:
                // publishes `exit_status`; the collector's own load in `run` reads it. Unlike
                // F1 the worker was only sent SIGKILL, not reaped, so F1's "every store it
                // made" does not hold here.
                s.state.store(slot_state::EXITED, Ordering::Release);
            }
        }
        if self.inner.state() != pool_state::TERMINATED {
            self.inner.mark_broken("the fork server died".into());
        }
    }

    fn should_stop(&mut self) -> bool {
        let inner = &*self.inner;
        let all_empty = || {
            // SYNC(W8): Acquire — pairs with SYNC W7 (EMPTY).
            (0..self.killed_for.len())
                .all(|i| inner.ctrl.slot(i).state.load(Ordering::Acquire) == slot_state::EMPTY)
        };
        match inner.state() {
            pool_state::RUNNING => false,
            pool_state::CLOSED => all_empty() && !self.work_remains(),
            _ => {
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
        // Callbacks deferred from now on run on their own thread (`defer`).
        inner.seal_deferred();
        inner.run_deferred();
        let mut table = lock(&inner.bulk);
        for (index, side) in table.sides.iter_mut().enumerate() {
            let job = inner.ctrl.job(index as u32);
            if side.in_use && !bulk::is_finished(job) {
                side.terminated = true;
                bulk::finish_abandoned(job);
            }
        }
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
        _ => None,
    }
}
