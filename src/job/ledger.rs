//! The parent's ledger of bulk jobs: which entries are in use, which workers died
//! inside which job, when an abandoned job is finished on their behalf, and what a
//! finished job's done-bits mean for its caller.
//!
//! The collector only *reports* here: a worker died inside job `j` while on chunk
//! `c` ([`Ledger::record_death`], which also stops the job unless its losses are to
//! be retried), and "look at the jobs that lost a worker"
//! ([`Ledger::resolve_abandoned`]). What that means for the caller is decided once,
//! by [`Ledger::outcome`], from the job's done-bitmap after it finished: every
//! chunk whose bit is unset was not computed, and each is named, with the death
//! that lost it, as skipped after the panic or death that stopped the job, or (when
//! no record explains it) as lost to an unknown worker.

use std::ops::Range;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Duration;

use super::protocol::{self, pack_job, unpack_job};
use crate::error::{DeathCause, Error, Work};
use crate::layout::ControlView;
use crate::sync::Ordering;

/// How a worker died inside a bulk job.
#[derive(Debug, Clone)]
pub(crate) struct Death {
    /// The chunk it was claiming or running, if any (none: it died between chunks,
    /// or before its first claim).
    pub chunk: Option<u64>,
    /// Slot number.
    pub worker: usize,
    /// Process id.
    pub pid: i32,
    /// Signal or exit code.
    pub cause: DeathCause,
    /// Set when the collector killed it for running past this limit.
    pub timeout: Option<Duration>,
}

impl Death {
    /// The public error for the chunk `range` this death lost.
    fn error(&self, range: Range<usize>) -> Error {
        let work = Work::Chunk(range);
        match self.timeout {
            Some(limit) => Error::Timeout {
                worker: self.worker,
                pid: self.pid,
                limit,
                work,
            },
            None => Error::WorkerDied {
                worker: self.worker,
                pid: self.pid,
                cause: self.cause,
                work,
            },
        }
    }
}

/// The parent's side of one job entry.
#[derive(Debug, Default)]
struct Entry {
    in_use: bool,
    generation: u32,
    /// A death stops the job (no retry will re-run what it loses).
    stop_on_death: bool,
    /// The chunk of the death that stopped the job, if a death (not a panic) did.
    stopped_by: Option<u64>,
    deaths: Vec<Death>,
    /// A worker died inside the job: the collector watches it for quiescence.
    suspect: bool,
    /// The pool stopped while the job ran.
    terminated: bool,
    /// The waker of the future awaiting the job (`BulkFuture`), woken by the
    /// collector once the job finishes.
    waker: Option<Waker>,
}

#[derive(Debug)]
struct Table {
    free: Vec<u32>,
    entries: Vec<Entry>,
}

/// What became of a finished job.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Every chunk was computed.
    Done,
    /// The pool stopped first.
    Terminated,
    /// Chunks were not computed: a kernel panicked, or workers died.
    Failed {
        /// The job was stopped, by a kernel panic (no retry can help) or by a death
        /// in a job whose losses are not retried: the map runs nothing more.
        stopped: bool,
        /// Every element range not computed (absolute, in chunk order), each
        /// with its error.
        lost: Vec<(Range<usize>, Error)>,
    },
}

/// Where a job's elements start in the caller's arrays, and how they are chunked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    /// The first element of the job in the arrays.
    pub start: usize,
    /// Elements in the job.
    pub len: u64,
    /// Elements per chunk.
    pub chunk_len: u64,
}

impl Span {
    fn chunk(&self, index: u64) -> Range<usize> {
        let r = protocol::chunk_range(index, self.chunk_len, self.len);
        self.start + r.start..self.start + r.end
    }
}

/// The bulk job table of one pool.
#[derive(Debug)]
pub(crate) struct Ledger {
    table: Mutex<Table>,
    /// Signalled when an entry is freed.
    freed: Condvar,
}

impl Ledger {
    /// A ledger of `jobs` free entries.
    pub(crate) fn new(jobs: u32) -> Self {
        Ledger {
            table: Mutex::new(Table {
                free: (0..jobs).rev().collect(),
                entries: (0..jobs).map(|_| Entry::default()).collect(),
            }),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a free entry, waiting for one; returns its index and new generation.
    /// `stop_on_death`: a worker's death stops the job, as a kernel panic does (the
    /// map will not retry what it loses, so computing the rest would only delay the
    /// error).
    pub(crate) fn reserve(&self, stop_on_death: bool) -> (u32, u32) {
        let mut table = self.lock();
        loop {
            if let Some(index) = table.free.pop() {
                let entry = &mut table.entries[index as usize];
                entry.generation = entry.generation.wrapping_add(1).max(1);
                entry.in_use = true;
                entry.stop_on_death = stop_on_death;
                return (index, entry.generation);
            }
            table = self.freed.wait(table).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Gives an entry back, forgetting what happened in it.
    pub(crate) fn release(&self, index: u32) {
        let mut table = self.lock();
        let entry = &mut table.entries[index as usize];
        entry.in_use = false;
        entry.stop_on_death = false;
        entry.stopped_by = None;
        entry.deaths.clear();
        entry.suspect = false;
        entry.terminated = false;
        entry.waker = None;
        table.free.push(index);
        drop(table);
        self.freed.notify_one();
    }

    /// Registers the waker of the future awaiting job `index`/`generation`
    /// (replacing an older one); nothing if the entry has moved on.
    pub(crate) fn await_job(&self, index: u32, generation: u32, waker: &Waker) {
        let mut table = self.lock();
        if let Some(entry) = table.entries.get_mut(index as usize) {
            if entry.in_use && entry.generation == generation {
                match &mut entry.waker {
                    Some(w) => w.clone_from(waker),
                    None => entry.waker = Some(waker.clone()),
                }
            }
        }
    }

    /// Forgets the waker of job `index`/`generation`.
    pub(crate) fn forget_waiter(&self, index: u32, generation: u32) {
        let mut table = self.lock();
        if let Some(entry) = table.entries.get_mut(index as usize) {
            if entry.generation == generation {
                entry.waker = None;
            }
        }
    }

    /// Wakes the futures of finished jobs (of every job, with `all`: the collector is
    /// leaving, and they must see it). The wakers are woken after the table's lock is
    /// released: a waker may run code that takes it.
    pub(crate) fn wake_finished(&self, ctrl: ControlView, all: bool) {
        let wakers: Vec<Waker> = {
            let mut table = self.lock();
            table
                .entries
                .iter_mut()
                .enumerate()
                .filter(|(i, e)| {
                    e.waker.is_some() && (all || protocol::is_finished(ctrl.job(*i as u32)))
                })
                .filter_map(|(_, e)| e.waker.take())
                .collect()
        };
        for waker in wakers {
            waker.wake();
        }
    }

    /// Whether a job awaited by a future has finished, its waker not yet woken.
    pub(crate) fn any_finished_waiter(&self, ctrl: ControlView) -> bool {
        let table = self.lock();
        table
            .entries
            .iter()
            .enumerate()
            .any(|(i, e)| e.waker.is_some() && protocol::is_finished(ctrl.job(i as u32)))
    }

    /// Reports that a worker died inside job `job` (a packed index and generation,
    /// as in its slot's `bulk_job`). A death in a job that already moved on is
    /// ignored.
    ///
    /// In a job reserved with `stop_on_death`, a death that may have lost its chunk
    /// stops the job (`protocol::stop_after_death`): the workers inside finish the
    /// chunk they run and claim no more, `resolve_abandoned` closes the cursor and
    /// finishes the job once it is quiescent, and the caller wakes within about a
    /// millisecond of the collector seeing the death (plus the time the other workers
    /// need to finish their current chunks). The first death that stops the job is
    /// remembered: its chunk is the `after` of every chunk skipped. A death that lost
    /// nothing (it had completed its chunk, or died before its claim succeeded) does
    /// not stop it. One case cannot be told apart: a worker killed between a failed
    /// claim and its next attempt still names the chunk another worker won; if that
    /// chunk is not done yet, the job is stopped though the death lost nothing.
    pub(crate) fn record_death(&self, ctrl: ControlView, job: u64, death: Death) {
        let (index, generation) = unpack_job(job);
        let mut table = self.lock();
        if let Some(entry) = table.entries.get_mut(index as usize) {
            if entry.in_use && entry.generation == generation {
                // The lock proves the entry is still this job's: it is republished
                // only after `release`, which takes the lock.
                let shared = ctrl.job(index);
                if let Some(chunk) = death.chunk.filter(|&c| {
                    entry.stop_on_death
                        && entry.stopped_by.is_none()
                        && protocol::may_have_held(shared, ctrl.bitmap(index), c)
                }) {
                    if protocol::stop_after_death(shared) {
                        entry.stopped_by = Some(chunk);
                    }
                }
                entry.deaths.push(death);
                entry.suspect = true;
            }
        }
    }

    /// Watches the jobs that lost a worker. One whose chunks are all claimed and
    /// that no live worker is inside (`inside(job)`) is *quiescent*: nobody can
    /// claim or run a chunk of it any more, so it is finished on the dead workers'
    /// behalf, and its unset done-bits are exactly the chunks lost. A stopped job (a
    /// panic or a death set its `cancel`) has its cursor closed here, at once, so
    /// its remaining chunks are skipped without waiting for a worker to claim. One
    /// with chunks left and nobody inside is offered to live workers with
    /// `invite(job)`. Returns whether any job is still being watched.
    pub(crate) fn resolve_abandoned(
        &self,
        ctrl: ControlView,
        inside: impl Fn(u64) -> bool,
        mut invite: impl FnMut(u64),
    ) -> bool {
        let mut table = self.lock();
        let mut watching = false;
        for (index, entry) in table.entries.iter_mut().enumerate() {
            if !entry.in_use || !entry.suspect {
                continue;
            }
            let job = ctrl.job(index as u32);
            let (generation, mut next) = protocol::cursor_state(job);
            if generation != entry.generation || protocol::is_finished(job) {
                entry.suspect = false;
                continue;
            }
            let chunks = job.chunks.load(Ordering::Relaxed);
            if next < chunks && protocol::is_stopped(job) {
                // Nobody may claim the rest: skip it now, rather than wait for a
                // worker's next claim (there may be no worker inside to make one).
                protocol::close_stopped(job, generation);
                next = protocol::cursor_state(job).1;
            }
            let packed = pack_job(index as u32, generation);
            // The cursor load (SYNC B9, Acquire; the second one, after closing a stopped
            // job) comes before `inside`'s loads of the phase (SYNC G2) and `bulk_job`
            // (SYNC W2, Acquire): a worker that claimed a chunk released its `bulk_job`
            // with the claim (SYNC B3), so it is seen inside; one seen outside cleared it
            // (Release) after its last chunk, so its done-bits (read by `outcome`, SYNC
            // B11) are visible. A dead worker's: through its death. Model-checked in
            // `src/loom_tests/bulk_job.rs`, which makes this check step for step.
            let someone_inside = inside(packed);
            if next < chunks {
                if !someone_inside {
                    invite(packed);
                }
                watching = true;
            } else if someone_inside {
                watching = true;
            } else {
                entry.suspect = false;
                protocol::finish_abandoned(job);
            }
        }
        watching
    }

    /// On the pool's way out: every job still running finishes as terminated.
    pub(crate) fn terminate_all(&self, ctrl: ControlView) {
        let mut table = self.lock();
        for (index, entry) in table.entries.iter_mut().enumerate() {
            let job = ctrl.job(index as u32);
            if entry.in_use && !protocol::is_finished(job) {
                entry.terminated = true;
                protocol::finish_abandoned(job);
            }
        }
    }

    /// Whether any job in use has not finished.
    pub(crate) fn any_running(&self, ctrl: ControlView) -> bool {
        let table = self.lock();
        table
            .entries
            .iter()
            .enumerate()
            .any(|(i, entry)| entry.in_use && !protocol::is_finished(ctrl.job(i as u32)))
    }

    /// What became of job `index` once it finished (or its wait was abandoned
    /// because the collector is gone: `gave_up`).
    ///
    /// Every chunk with an unset done-bit was not computed. Each is named with the
    /// death of the worker that held it (`WorkerDied`, or `Timeout` if the collector
    /// killed it); failing that, as skipped (`ChunkSkipped`) after whatever stopped
    /// the job; failing that, as lost to an unknown worker (`ChunkLost`).
    ///
    /// What stopped the job is what set its `cancel` flag first: a kernel panic sets
    /// it in the worker, at once; a death when the collector records it (see
    /// `record_death`). So when both happen, `after` names the panic's chunk if the
    /// panic was recorded before the collector saw the death, and the dead worker's
    /// chunk otherwise; every skipped range of one job names the same `after`.
    pub(crate) fn outcome(
        &self,
        ctrl: ControlView,
        index: u32,
        span: Span,
        gave_up: bool,
    ) -> Outcome {
        let table = self.lock();
        let entry = &table.entries[index as usize];
        let job = ctrl.job(index);
        if entry.terminated || (gave_up && !protocol::is_finished(job)) {
            return Outcome::Terminated;
        }
        let chunks = job.chunks.load(Ordering::Relaxed);
        let panic = protocol::read_error(job).map(|(chunk, message)| {
            let range = span.chunk(chunk);
            let error = Error::KernelPanicked {
                chunk: range.clone(),
                message,
            };
            (range, error)
        });
        // A death that stopped the job did so before any panic did (its swap of
        // `cancel` read 0); otherwise a panic, if any, stopped it.
        let after = match entry.stopped_by {
            Some(chunk) => Some(span.chunk(chunk)),
            None => panic.as_ref().map(|(range, _)| range.clone()),
        };
        let mut lost: Vec<(Range<usize>, Error)> = Vec::new();
        for chunk in protocol::lost_chunks(ctrl.bitmap(index), chunks) {
            let range = span.chunk(chunk);
            // The last death recorded on the chunk is the worker that held it (an
            // earlier one could only have died claiming it).
            let death = entry.deaths.iter().rev().find(|d| d.chunk == Some(chunk));
            let error = match (death, &after) {
                (Some(d), _) => d.error(range.clone()),
                (None, Some(after)) => Error::ChunkSkipped {
                    chunk: range.clone(),
                    after: after.clone(),
                },
                (None, None) => Error::ChunkLost {
                    chunk: range.clone(),
                },
            };
            lost.push((range, error));
        }
        let stopped = after.is_some();
        // The panicking chunk's own bit is set (its kernel returned, by unwinding),
        // so it is named here, in chunk order.
        if let Some((range, error)) = panic {
            let at = lost.partition_point(|(r, _)| r.start < range.start);
            lost.insert(at, (range, error));
        }
        if lost.is_empty() {
            Outcome::Done
        } else {
            Outcome::Failed {
                stopped,
                lost: merge_skipped(lost),
            }
        }
    }
}

/// Joins neighbouring skipped ranges (skipped after the same chunk) into one, so a
/// panic or death early in a large map is reported as one range rather than
/// thousands.
fn merge_skipped(lost: Vec<(Range<usize>, Error)>) -> Vec<(Range<usize>, Error)> {
    let mut out: Vec<(Range<usize>, Error)> = Vec::with_capacity(lost.len());
    for (range, error) in lost {
        if let (
            Some((
                prev_range,
                Error::ChunkSkipped {
                    chunk: prev,
                    after: prev_after,
                },
            )),
            Error::ChunkSkipped { after, .. },
        ) = (out.last_mut(), &error)
        {
            if prev.end == range.start && prev_after == after {
                prev.end = range.end;
                prev_range.end = range.end;
                continue;
            }
        }
        out.push((range, error));
    }
    out
}

/// The one error of a failed bulk operation: the single failure itself, or
/// [`Error::ChunksLost`] naming every range that was not computed.
pub(crate) fn failure_error(mut lost: Vec<(Range<usize>, Error)>) -> Error {
    if lost.len() == 1 {
        if let Some((_, error)) = lost.pop() {
            return error;
        }
    }
    Error::ChunksLost {
        errors: lost.into_iter().map(|(_, e)| e).collect(),
    }
}
