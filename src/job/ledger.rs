//! The parent's ledger of bulk jobs: which entries are in use, which workers died
//! inside which job, when an abandoned job is finished on their behalf, and what a
//! finished job's done-bits mean for its caller.
//!
//! The collector only *reports* here: a worker died inside job `j` while on chunk
//! `c` ([`Ledger::record_death`]), and "look at the jobs that lost a worker"
//! ([`Ledger::resolve_abandoned`]). What that means for the caller is decided once,
//! by [`Ledger::outcome`], from the job's done-bitmap after it finished: every
//! chunk whose bit is unset was not computed, and each is named, with the death
//! that lost it, the panic that stopped the job, or (when no record explains it)
//! as lost to an unknown worker.

use std::ops::Range;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::protocol::{self, pack_job, unpack_job};
use crate::error::{DeathCause, Error, Work};
use crate::layout::ControlView;
use crate::sync::Ordering;

/// How a worker died inside a bulk job.
#[derive(Debug, Clone)]
pub(crate) struct Death {
    /// The chunk it was claiming or running.
    pub chunk: u64,
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
    deaths: Vec<Death>,
    /// A worker died inside the job: the collector watches it for quiescence.
    suspect: bool,
    /// The pool stopped while the job ran.
    terminated: bool,
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
        /// A kernel panic, which stops the whole map (no retry can help).
        panicked: bool,
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
    pub(crate) fn reserve(&self) -> (u32, u32) {
        let mut table = self.lock();
        loop {
            if let Some(index) = table.free.pop() {
                let entry = &mut table.entries[index as usize];
                entry.generation = entry.generation.wrapping_add(1).max(1);
                entry.in_use = true;
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
        entry.deaths.clear();
        entry.suspect = false;
        entry.terminated = false;
        table.free.push(index);
        drop(table);
        self.freed.notify_one();
    }

    /// Reports that a worker died inside job `job` (a packed index and generation,
    /// as in its slot's `bulk_job`). A death in a job that already moved on is
    /// ignored.
    pub(crate) fn record_death(&self, job: u64, death: Death) {
        let (index, generation) = unpack_job(job);
        let mut table = self.lock();
        if let Some(entry) = table.entries.get_mut(index as usize) {
            if entry.in_use && entry.generation == generation {
                entry.deaths.push(death);
                entry.suspect = true;
            }
        }
    }

    /// Watches the jobs that lost a worker. One whose chunks are all claimed and
    /// that no live worker is inside (`inside(job)`) is *quiescent*: nobody can
    /// claim or run a chunk of it any more, so it is finished on the dead workers'
    /// behalf, and its unset done-bits are exactly the chunks lost. One with chunks
    /// left and nobody inside is offered to live workers with `invite(job)`.
    /// Returns whether any job is still being watched.
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
            let (generation, next) = protocol::cursor_state(job);
            if generation != entry.generation || protocol::is_finished(job) {
                entry.suspect = false;
                continue;
            }
            let chunks = job.chunks.load(Ordering::Relaxed);
            let packed = pack_job(index as u32, generation);
            // The cursor load (SYNC B9) comes before `inside`'s loads of the phase (SYNC
            // L2) and `bulk_job` (SYNC W2): a worker that claimed a chunk released its
            // `bulk_job` with the claim (SYNC B3), so it is seen inside; one seen
            // outside cleared it after its last chunk, so its done-bits (read by
            // `outcome`, SYNC B11) are visible. A dead worker's: through its death.
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
    /// death of the worker that held it; failing that, as skipped after a kernel
    /// panic (which stops the job); failing that, as lost to an unknown worker.
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
        let mut lost: Vec<(Range<usize>, Error)> = Vec::new();
        for chunk in protocol::lost_chunks(ctrl.bitmap(index), chunks) {
            let range = span.chunk(chunk);
            // The last death recorded on the chunk is the worker that held it (an
            // earlier one could only have died claiming it).
            let death = entry.deaths.iter().rev().find(|d| d.chunk == chunk);
            let error = match (death, &panic) {
                (Some(d), _) => d.error(range.clone()),
                (None, Some((after, _))) => Error::ChunkSkipped {
                    chunk: range.clone(),
                    after: after.clone(),
                },
                (None, None) => Error::ChunkLost {
                    chunk: range.clone(),
                },
            };
            lost.push((range, error));
        }
        let panicked = panic.is_some();
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
                panicked,
                lost: merge_skipped(lost),
            }
        }
    }
}

/// Joins neighbouring skipped ranges into one, so a panic early in a large map is
/// reported as one range rather than thousands.
fn merge_skipped(lost: Vec<(Range<usize>, Error)>) -> Vec<(Range<usize>, Error)> {
    let mut out: Vec<(Range<usize>, Error)> = Vec::with_capacity(lost.len());
    for (range, error) in lost {
        if let (
            Some((prev_range, Error::ChunkSkipped { chunk: prev, .. })),
            Error::ChunkSkipped { .. },
        ) = (out.last_mut(), &error)
        {
            if prev.end == range.start {
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
