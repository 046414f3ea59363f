//! Submitting generic tasks and delivering their completions.
//!
//! Completions are drained by whichever parent thread holds `drain_lock`: usually
//! the collector thread, but a caller waiting for a result first tries to take the
//! lock and poll the rings itself for a short while, which saves two thread
//! hand-offs on the round trip. While it polls, it sets `parent_polling`, and
//! workers skip waking the collector; when it stops, it clears the flag and drains
//! once more, so a completion pushed while the flag was set is never stranded
//! (`docs/PROTOCOL.md`, "Caller polling"). Callbacks never run on a delivering
//! thread: they go to the pool's callback thread (`src/task/callback_thread.rs`).

use std::ops::Range;
use std::sync::Arc;
use std::time::Instant;

use super::inner::PoolInner;
use super::kill::Target;
use super::life::StartError;
use super::stats::Counters;
use crate::error::{Error, Result};
use crate::layout::{CompletionRecord, INLINE_BYTES, OutcomeCode, Payload, RecordKind, TaskRecord};
use crate::sync::{Ordering, fence};
use crate::task::cancel::CancelMode;
use crate::task::codec;
use crate::task::delivery::{Draining, ProcessReader, TaskDelivery};
use crate::task::host::TaskHost;
use crate::task::pending::{AfterDeath, Pending, TaskCancel};
use crate::task::sink::{Ctx, Outcome, Sink};
use crate::task::submission::{Admission, TaskLimits};
use crate::task::trampolines::{self, TaskFn};
use crate::wake::{Backoff, spin_then_yield};

impl PoolInner {
    /// Admits `n` tasks against `max_queued` (see [`Admission`]).
    pub(crate) fn admit(&self, n: usize, how: Admission) -> Result<()> {
        match how {
            Admission::Admitted => Ok(()),
            Admission::Wait | Admission::NoWait => {
                self.delivery
                    .pending()
                    .admit(n, how == Admission::Wait, &|| self.check_open())
            }
        }
    }

    /// Submits task `id`: `code` run on `args` in a worker, the outcome to `sink`.
    /// Never waits for the ring: a task that does not fit waits in the backlog
    /// (`src/task/pending.rs`). Under `max_queued`, `how` says whether to wait for room.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn submit_task(
        &self,
        id: u64,
        code: TaskFn,
        args: &[u8],
        sink: &Arc<dyn Sink>,
        tag: u64,
        limits: TaskLimits,
        how: Admission,
    ) -> Result<()> {
        if let Err(e) = self.check_open() {
            if how == Admission::Admitted {
                self.delivery.pending().unadmit(1);
            }
            return Err(e);
        }
        self.admit(1, how)?;
        let _span = tracing::trace_span!("shmpool.task.submit", task = id).entered();
        let timeout = limits.timeout.or(self.settings.task_timeout);
        let (payload, block) = if args.len() <= INLINE_BYTES {
            (Payload::inline(args), None)
        } else {
            let stored = self.delivery.store_args(args);
            let block = match stored {
                Ok(b) => b,
                Err(e) => {
                    self.delivery.pending().unadmit(1);
                    return Err(Error::io("storing task arguments")(e));
                }
            };
            Counters::add(&self.counters.bytes_submitted, args.len() as u64);
            (Payload::in_arena_at(args.len(), block.off), Some(block))
        };
        let record = TaskRecord {
            kind: RecordKind::Task as u32,
            flags: 0,
            id,
            code: trampolines::task_offset(code),
            timeout_ns: timeout.map_or(0, |d| d.as_nanos().clamp(1, u64::MAX as u128) as u64),
            payload,
        };
        let retries = limits.retries.unwrap_or(self.settings.task_retries);
        let task = Pending::new(Arc::clone(sink), tag, block, record, retries);
        let fed = self
            .delivery
            .pending()
            .insert(id, task, self.ctrl.submit_ring());
        self.after_feed(fed);
        tracing::trace!(task = id, bytes = args.len(), "task submitted");
        // The collector may have made its last sweep of the table while we inserted:
        // then no worker and no collector will ever answer this task.
        if self.delivery.is_sealed() {
            self.fail_task(id, self.broken_or_terminated());
        }
        Ok(())
    }

    /// The worker running task `id` died with `error`. If the task is still pending
    /// and has a retry left (and `error` is a death, not a timeout: a task that ran
    /// too long would only run too long again), counts one and puts it back at the
    /// front of the backlog, to run again on a fresh worker; its argument block stays
    /// allocated. Else delivers `error`. Either way the task is answered exactly once:
    /// only the table (`src/task/pending.rs`) removes it, in one place per outcome.
    pub(crate) fn task_died(&self, id: u64, error: Error) {
        let retry = matches!(error, Error::WorkerDied { .. });
        match self.delivery.pending().died(id, retry) {
            AfterDeath::Retried => {
                tracing::info!(task = id, error = %error, "retrying a task whose worker died");
                Counters::add(&self.counters.tasks_retried, 1);
                self.feed();
            }
            AfterDeath::Fail(p) => self.answer(p, Outcome::Failed(error)),
            AfterDeath::Discard(p) => self.delivery.free_block(p.block),
            AfterDeath::Unknown => {}
        }
    }

    /// A task whose worker stopped before it finished, through no fault of its own
    /// (a claim recovered from a dead worker, or a worker killed to cancel another
    /// task), runs again; no retry is counted.
    pub(crate) fn requeue_task(&self, id: u64) {
        match self.delivery.pending().requeue(id) {
            Some(cancelled) => self.delivery.free_block(cancelled.block),
            None => self.feed(),
        }
    }

    /// Cancels the tasks `ids` that are still pending (see `PendingTasks::cancel`),
    /// answering each with `Cancelled`; returns how many were.
    pub(crate) fn cancel_tasks(&self, ids: impl Iterator<Item = u64>, mode: CancelMode) -> usize {
        let cancelled = self.delivery.pending().cancel(ids, self.ctrl.submit_ring());
        let mut kills = false;
        for (id, what) in &cancelled {
            let error = Error::Cancelled {
                work: crate::error::Work::Task(*id),
            };
            match what {
                TaskCancel::Withdrawn(_) => {}
                TaskCancel::Running { sink, tag, pos } => {
                    tracing::debug!(task = id, mode = ?mode, "cancelled a running task");
                    if mode == CancelMode::Kill {
                        kills = true;
                        self.kill_requests.push(Target::Task {
                            id: *id,
                            pos: Some(*pos),
                        });
                    }
                    sink.complete(*tag, Outcome::Failed(error), &self.ctx());
                }
            }
        }
        let n = cancelled.len();
        for (id, what) in cancelled {
            if let TaskCancel::Withdrawn(p) = what {
                tracing::debug!(task = id, "cancelled a queued task");
                let error = Error::Cancelled {
                    work: crate::error::Work::Task(id),
                };
                self.answer(p, Outcome::Failed(error));
            }
        }
        if kills {
            self.ctrl.header().completions.notify_always(1);
        }
        if n > 0 {
            // Room in the ring, perhaps: let the backlog in.
            self.feed();
        }
        n
    }

    /// Frees a removed task's block, then delivers its outcome.
    fn answer(&self, p: Pending, outcome: Outcome<'_>) {
        self.delivery.free_block(p.block);
        p.sink.complete(p.tag, outcome, &self.ctx());
    }

    /// Delivers `error` to task `id`, if it is still pending.
    pub(crate) fn fail_task(&self, id: u64, error: Error) {
        match self.delivery.pending().died(id, false) {
            AfterDeath::Fail(p) => self.answer(p, Outcome::Failed(error)),
            AfterDeath::Discard(p) => self.delivery.free_block(p.block),
            AfterDeath::Retried | AfterDeath::Unknown => {}
        }
    }

    /// Delivers `error` to every pending task (queued ones included).
    pub(crate) fn fail_all_pending(&self, error: impl Fn() -> Error) {
        for (p, cancelled) in self.delivery.pending().remove_all() {
            if cancelled {
                self.delivery.free_block(p.block);
            } else {
                self.answer(p, Outcome::Failed(error()));
            }
        }
    }

    /// The delivery context of the calling thread.
    pub(crate) fn ctx(&self) -> Ctx<'_> {
        self.delivery.ctx()
    }

    /// Drains every completion ring, holding the drain lock.
    pub(crate) fn drain_locked(&self, draining: &Draining<'_>) -> usize {
        let mut n = 0;
        let ctx = self.ctx();
        for slot in 0..self.ctrl.dims().slots as usize {
            let ring = self.ctrl.completion_ring(slot);
            if !ring.has_records() {
                continue;
            }
            let reader = draining.reader(slot);
            while let Some(record) = ring.pop() {
                self.dispatch(slot, &record, reader.as_ref(), &ctx);
                n += 1;
            }
        }
        if n > 0 {
            // Workers took records to produce these: let the backlog in.
            self.feed();
        }
        n
    }

    /// Drains every completion ring, waiting for the lock.
    pub(crate) fn drain(&self) -> usize {
        self.drain_locked(&self.delivery.drain_lock())
    }

    /// Drains the completion ring of one slot (the collector, after a death).
    pub(crate) fn drain_slot(&self, slot: usize) {
        let draining = self.delivery.drain_lock();
        let ring = self.ctrl.completion_ring(slot);
        let reader = draining.reader(slot);
        let ctx = self.ctx();
        while let Some(record) = ring.pop() {
            self.dispatch(slot, &record, reader.as_ref(), &ctx);
        }
    }

    fn dispatch(
        &self,
        slot: usize,
        record: &CompletionRecord,
        reader: Option<&ProcessReader>,
        ctx: &Ctx<'_>,
    ) {
        // A record is read only with its own process's arena. The collector drains a
        // slot before its next process can start (`on_exit`, then `Exited → Empty`),
        // drops the dead process's reader after that drain, and installs a new one
        // only at that start, so a missing or mismatched reader means a broken
        // invariant: refuse the payload rather than read another process's memory.
        let reader = reader
            .filter(|(generation, _)| *generation == record.generation)
            .map(|(_, r)| &**r);
        Counters::add(&self.counters.records_completed, 1);
        Counters::add(
            &self.counters.bytes_completed,
            std::mem::size_of::<CompletionRecord>() as u64,
        );
        let p = &record.payload;
        let len = p.len;
        let bytes: std::result::Result<&[u8], String> = if !p.in_arena() {
            Ok(p.inline_bytes())
        } else {
            Counters::add(&self.counters.bytes_completed, len);
            match reader {
                Some(r) => {
                    // SAFETY: the record was published by the worker's Release push and
                    // popped here with Acquire; the worker does not reuse the range
                    // until we release it below.
                    let read = unsafe { r.read(p.arena_off, len) };
                    read.map_err(|e| format!("read a result: {e}"))
                }
                None => Err(format!(
                    "read a result: refused a record of worker process {} of slot {slot}, \
                     whose result arena is not the slot's current one",
                    record.generation
                )),
            }
        };
        let code = OutcomeCode::decode(record.outcome);
        if code == Some(OutcomeCode::InitFailed) {
            let report = bytes
                .ok()
                .and_then(|b| codec::decode_report(b).ok())
                .map_or_else(|| "unknown".to_string(), |r| r.to_string());
            self.life.set_start_error(StartError::Initializer(report));
        } else {
            let pending = match self.delivery.pending().complete(record.id) {
                Some((p, true)) => {
                    // Cancelled while it ran: answered already, its result discarded.
                    self.delivery.free_block(p.block);
                    None
                }
                Some((p, false)) => Some(p),
                None => None,
            };
            if let Some(pending) = pending {
                self.delivery.free_block(pending.block);
                let outcome = match (code, bytes) {
                    (_, Err(reason)) => Outcome::Failed(Error::Transfer { reason }),
                    (Some(OutcomeCode::Ok), Ok(b)) => Outcome::Ok(b),
                    (Some(OutcomeCode::Panicked), Ok(b)) => match codec::decode_report(b) {
                        Ok(report) => Outcome::Panicked(report),
                        Err(f) => Outcome::Failed(f.into()),
                    },
                    // A codec failure's payload says what failed. A code of no known
                    // kind (`InitFailed` was handled above) is read the same way.
                    (Some(OutcomeCode::Codec | OutcomeCode::InitFailed) | None, Ok(b)) => {
                        Outcome::Failed(codec::worker_failure(b))
                    }
                };
                // Delivery (decoding, callbacks on the result thread) runs in the span.
                let _span = tracing::trace_span!(
                    "shmpool.task.complete",
                    task = record.id,
                    worker = slot,
                    outcome = record.outcome
                )
                .entered();
                tracing::trace!("task completed");
                pending.sink.complete(pending.tag, outcome, ctx);
            }
        }
        if let (true, Some(r)) = (p.in_arena(), reader) {
            // Our reads of the block are done (the sink copied or decoded it).
            r.release(len);
        }
    }
}

impl TaskHost for PoolInner {
    /// Spins, then yields, for the configured budget, draining completions itself
    /// when no other thread is draining them.
    fn poll(&self, ready: &dyn Fn() -> bool, deadline: Option<Instant>) -> bool {
        let Backoff { spins, mut budget } = self.settings.backoff;
        if let Some(d) = deadline {
            budget = budget.min(d.saturating_duration_since(Instant::now()));
        }
        let Some(draining) = self.delivery.try_drain_lock() else {
            return spin_then_yield(spins, budget, || ready().then_some(())).is_some();
        };
        let header = self.ctrl.header();
        // SYNC(P1): SeqCst — workers read the flag after their push (SYNC P2);
        // while it is set they may skip waking the collector, because we drain.
        header.parent_polling.store(1, Ordering::SeqCst);
        // Draining empty rings costs a couple of loads per slot, so drain at every
        // check: a result waiting in a ring stalls whoever waits for it.
        let got = spin_then_yield(spins, budget, || {
            self.drain_locked(&draining);
            ready().then_some(())
        })
        .is_some();
        // SYNC(P1): SeqCst — lowers the flag raised above. With the fence P3 below it pairs
        // with the worker's fence (SYNC P2): either the worker's flag load sees 0 and it wakes
        // the collector, or its push is visible to the final drain.
        header.parent_polling.store(0, Ordering::SeqCst);
        // SYNC(P3): SeqCst fence — a push whose worker saw the flag set is visible to
        // this final drain; a later push sees the flag clear and wakes the collector.
        fence(Ordering::SeqCst);
        self.drain_locked(&draining);
        drop(draining);
        got || ready()
    }

    fn delivery(&self) -> &TaskDelivery {
        &self.delivery
    }

    fn cancel_tasks(&self, ids: Range<u64>, mode: CancelMode) -> usize {
        PoolInner::cancel_tasks(self, ids, mode)
    }

    fn cancel_mode(&self) -> CancelMode {
        self.settings.cancel_mode
    }
}
