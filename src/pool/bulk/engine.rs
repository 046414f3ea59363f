//! Running one bulk operation: checking its range and chunking, publishing it as a
//! job (or several, when chunks lost to deaths are retried), and deciding what the
//! finished job means. Every bulk operation of the public vocabulary
//! (`src/pool/bulk/maps.rs`, `src/pool/bulk/reduce.rs`, `src/pool/bulk/reductions.rs`)
//! comes through here.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use super::cancel_token::{Active, CancelToken};
use super::chunk_progress::ChunkProgress;
use super::chunking::{CHUNKS_PER_WORKER, ChunkBasis, REDUCTION_CHUNKS, default_chunk_len};
use crate::error::{Error, Result, gaps};
use crate::job::ledger::{Outcome, Span, failure_error};
use crate::job::protocol::{self, Descriptor, Operand};
use crate::kernel::{self, Kernels};
use crate::layout::{JobKind, MAX_OPERANDS, RecordKind, TaskRecord};
use crate::pool::inner::PoolInner;
use crate::pool::life::PoolState;
use crate::shm::Segment;

/// How a job addresses one of its arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Chunk `c` touches elements `c`'s range (inputs and outputs of maps).
    Chunked,
    /// Every chunk reads the whole array, `extent` elements from element 0.
    Whole { extent: usize },
    /// Chunk `c` writes element `c` (a reduction's partials; an element is a slot),
    /// the slots starting `base` bytes into the segment.
    PerChunk { base: usize },
}

/// One array of an operation.
#[derive(Clone, Copy)]
pub(crate) struct OperandSpec<'a> {
    pub segment: &'a Arc<Segment>,
    pub elem_size: usize,
    pub role: Role,
    pub type_tag: u64,
}

/// The options a caller set on a bulk operation.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options<'t> {
    pub chunk_len: Option<usize>,
    pub chunk_timeout: Option<Duration>,
    pub retries: u32,
    /// `start..end` of the elements to run; `None` runs them all.
    pub range: Option<(usize, usize)>,
    /// The token that may cancel the operation.
    pub cancel: Option<&'t CancelToken>,
    /// Show a bar of the chunks run while the caller waits (feature `progress`).
    pub progress: bool,
}

/// A bulk operation, ready to run.
pub(crate) struct Operation<'a> {
    pub kind: JobKind,
    pub kernels: Kernels,
    /// In the order the kernel body expects them; context arrays last.
    pub operands: Vec<OperandSpec<'a>>,
    pub context_count: usize,
    /// The kernel's parameters, at most `PARAMS_BYTES`.
    pub params: &'a [u8],
    /// Elements (rows, for row operations).
    pub len: usize,
    /// Bytes of chunked traffic per element, for the default chunk length.
    pub bytes_per_elem: usize,
    pub options: Options<'a>,
    /// Whether the default chunk length may depend on the worker count. Reductions
    /// say no: their result depends on the chunk length, and must not depend on the
    /// pool's size (`src/pool/bulk/chunking.rs`).
    pub balance_chunks: bool,
}

/// How an operation was chunked, as `plan` decided.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub range: Range<usize>,
    pub chunk_len: usize,
}

/// Checks the range and picks the chunk length.
pub(crate) fn plan(inner: &PoolInner, op: &Operation<'_>) -> Result<Plan> {
    let len = op.len;
    let range = match op.options.range {
        None => 0..len,
        Some((start, end)) if start <= end && end <= len => start..end,
        Some((start, end)) => {
            return Err(Error::RangeOutOfBounds {
                range: start..end,
                len,
            });
        }
    };
    let max = u64::from(inner.ctrl.dims().max_chunks);
    let chunk_len = match op.options.chunk_len {
        Some(0) => return Err(Error::ZeroChunkLen),
        Some(n) => n,
        None => {
            let chunks = if op.balance_chunks {
                inner.settings.processes * CHUNKS_PER_WORKER
            } else {
                REDUCTION_CHUNKS
            };
            let chunked = op.operands.iter().filter(|o| o.role == Role::Chunked);
            let basis = ChunkBasis::new(op.bytes_per_elem, chunked.map(|o| o.elem_size), chunks);
            default_chunk_len(range.len(), basis, max as usize)
        }
    };
    let chunks = range.len().div_ceil(chunk_len) as u64;
    if chunks > max {
        return Err(Error::TooManyChunks { chunks, max });
    }
    Ok(Plan { range, chunk_len })
}

/// Runs `op` as planned: every chunk, retrying what deaths lost as `retries` allows.
///
/// With a cancel token, the operation's end and the cancel's verdict are one step
/// (`Active::end`): a cancel that returned [`CancelOutcome::Cancelled`] made the
/// operation return `MapCancelled` (naming no range as not computed when every
/// chunk had run), unless it failed with an error that names no range; one that
/// came later returned `AlreadyDone` and changed nothing.
///
/// [`CancelOutcome::Cancelled`]: crate::CancelOutcome::Cancelled
pub(crate) fn run(inner: &Arc<PoolInner>, op: &Operation<'_>, plan: &Plan) -> Result<()> {
    assert!(op.operands.len() <= MAX_OPERANDS && op.context_count <= op.operands.len());
    inner.check_open()?;
    let Some(active) = op.options.cancel.map(CancelToken::begin) else {
        return run_rounds(inner, op, plan, None);
    };
    let result = run_rounds(inner, op, plan, Some(&active));
    if !active.end() {
        return result;
    }
    match result {
        Ok(()) => Err(cancelled_error(&plan.range, Vec::new())),
        Err(e) => {
            let not_done = e.failed_ranges();
            // An error that names no range (the pool ended, an I/O error) says more
            // than the cancel could: what it did not compute is unknown.
            if not_done.is_empty() || matches!(e, Error::MapCancelled { .. }) {
                Err(e)
            } else {
                Err(cancelled_error(&plan.range, not_done))
            }
        }
    }
}

fn run_rounds(
    inner: &Arc<PoolInner>,
    op: &Operation<'_>,
    plan: &Plan,
    active: Option<&Active<'_>>,
) -> Result<()> {
    let cancelled = |not_done: Vec<Range<usize>>| cancelled_error(&plan.range, not_done);
    if active.is_some_and(|a| a.cancelled()) {
        return Err(cancelled(vec![plan.range.clone()]));
    }
    if plan.range.is_empty() {
        return Ok(());
    }
    let chunks = plan.range.len().div_ceil(plan.chunk_len) as u64;
    let mut progress = ChunkProgress::new(op.options.progress, chunks);
    let job = Job {
        inner,
        op,
        chunk_len: plan.chunk_len,
        first: plan.range.start,
        kernel: kernel::bulk_offset(op.kernels.for_pool(inner.settings.simd)),
        active,
    };
    // Each range still to compute, with the error that lost it last time.
    let mut pending: Vec<(Range<usize>, Option<Error>)> = vec![(plan.range.clone(), None)];
    let mut retries_left = op.options.retries;
    loop {
        let mut lost = Vec::new();
        let mut ranges = pending.into_iter();
        // With no retry left, a death stops the job it happens in, as a panic does:
        // nothing it loses will be re-run, so the caller is told at once.
        let stop_on_death = retries_left == 0;
        while let Some((range, _)) = ranges.next() {
            let outcome = job.execute(range, stop_on_death, &mut progress)?;
            if active.is_some_and(|a| a.cancelled()) && !matches!(outcome, Outcome::Terminated) {
                let mut not_done: Vec<Range<usize>> = lost.into_iter().map(|(r, _)| r).collect();
                if let Outcome::Failed { lost: l, .. } = outcome {
                    not_done.extend(l.into_iter().map(|(r, _)| r));
                }
                not_done.extend(ranges.map(|(r, _)| r));
                return Err(cancelled(not_done));
            }
            match outcome {
                Outcome::Done => {}
                Outcome::Terminated => return Err(inner.broken_or_terminated()),
                Outcome::Failed { stopped, lost: l } => {
                    lost.extend(l);
                    if stopped {
                        // `terminate` kills the workers, and their deaths stop the
                        // job like any other: the map ends because the pool did.
                        if inner.life.state() == PoolState::Terminated {
                            return Err(inner.broken_or_terminated());
                        }
                        // A panic, or a death with no retry left, stops the map:
                        // what was not run again stays lost.
                        lost.extend(ranges.filter_map(|(r, e)| e.map(|e| (r, e))));
                        lost.sort_by_key(|(r, _)| r.start);
                        return Err(failure_error(lost));
                    }
                }
            }
        }
        if lost.is_empty() {
            progress.finish();
            return Ok(());
        }
        if inner.life.state() == PoolState::Terminated {
            return Err(inner.broken_or_terminated());
        }
        if retries_left == 0 {
            return Err(failure_error(lost));
        }
        if active.is_some_and(|a| a.cancelled()) {
            return Err(cancelled(lost.into_iter().map(|(r, _)| r).collect()));
        }
        retries_left -= 1;
        tracing::debug!(lost = lost.len(), retries_left, "retrying lost chunks");
        pending = lost.into_iter().map(|(r, e)| (r, Some(e))).collect();
    }
}

/// `MapCancelled` for an operation over `range` whose ranges `not_done` were not
/// computed.
fn cancelled_error(range: &Range<usize>, mut not_done: Vec<Range<usize>>) -> Error {
    not_done.sort_by_key(|r| r.start);
    Error::MapCancelled {
        completed: gaps(range, &not_done),
        range: range.clone(),
    }
}

/// One bulk operation, possibly executed as several jobs (retries).
struct Job<'a> {
    inner: &'a Arc<PoolInner>,
    op: &'a Operation<'a>,
    chunk_len: usize,
    /// The operation's first element: chunk slots count from its chunk.
    first: usize,
    kernel: i64,
    /// The operation's hold on its cancel token, if it has one.
    active: Option<&'a Active<'a>>,
}

/// A published job: it holds the entry and the shipped segments, and releases both
/// when dropped (after the job finished).
pub(crate) struct Published {
    inner: Arc<PoolInner>,
    pub index: u32,
    pub generation: u32,
    segments: Vec<Arc<Segment>>,
    span: Span,
}

impl Drop for Published {
    fn drop(&mut self) {
        let segments: Vec<&Arc<Segment>> = self.segments.iter().collect();
        self.inner.shipping.unship_after_job(&segments);
        self.inner.jobs.release(self.index);
    }
}

impl Published {
    /// The pool the job runs in.
    pub(crate) fn inner(&self) -> &Arc<PoolInner> {
        &self.inner
    }

    /// Whether the job has finished (every chunk done, or finished by the collector).
    pub(crate) fn is_finished(&self) -> bool {
        protocol::is_finished(self.inner.ctrl.job(self.index))
    }

    /// Waits until the job finishes, or the collector is gone; says which.
    pub(crate) fn wait(&self) -> bool {
        self.wait_showing(&ChunkProgress::new(false, 0))
    }

    /// [`Published::wait`], showing the chunks run on `progress` each time the
    /// wait wakes (at least every 50 ms).
    fn wait_showing(&self, progress: &ChunkProgress) -> bool {
        let inner = &self.inner;
        let job = inner.ctrl.job(self.index);
        protocol::wait_finished(
            job,
            inner.settings.backoff,
            Duration::from_millis(50),
            || {
                if progress.shown() {
                    progress.running(self.chunks_run());
                }
                // The collector's `finish_everything` (which finishes or marks terminated
                // every job) is visible to the checks that follow (SYNC C6).
                inner.life.collector_exited().then_some(())
            },
        )
        .is_none()
    }

    /// The chunks of this job run so far.
    fn chunks_run(&self) -> u64 {
        let chunks = self.span.len.div_ceil(self.span.chunk_len);
        protocol::chunks_run(self.inner.ctrl.bitmap(self.index), chunks)
    }

    /// What became of the finished job (`finished`: it did finish; else the
    /// collector is gone and the pool with it).
    pub(crate) fn conclude(&self, finished: bool) -> Outcome {
        let inner = &self.inner;
        let outcome = inner
            .jobs
            .outcome(inner.ctrl, self.index, self.span, !finished);
        tracing::debug!(?outcome, "bulk job complete");
        outcome
    }
}

impl Job<'_> {
    /// Runs the elements `range` as one job; says what became of it. With
    /// `stop_on_death`, a worker's death stops the job (see `Ledger::reserve`).
    fn execute(
        &self,
        range: Range<usize>,
        stop_on_death: bool,
        progress: &mut ChunkProgress,
    ) -> Result<Outcome> {
        let published = publish(
            self.inner,
            self.op,
            &self.round(range, stop_on_death, false),
        )?;
        if let Some(a) = self.active {
            a.running(self.inner, published.index, published.generation);
        }
        let finished = published.wait_showing(progress);
        if let Some(a) = self.active {
            a.finished();
        }
        if progress.shown() {
            progress.job_ended(published.chunks_run());
        }
        Ok(published.conclude(finished))
    }

    fn round(&self, range: Range<usize>, stop_on_death: bool, awaited: bool) -> Round {
        Round {
            range,
            chunk_len: self.chunk_len,
            first: self.first,
            kernel: self.kernel,
            stop_on_death,
            awaited,
        }
    }
}

/// One job of an operation: which elements, how chunked.
pub(crate) struct Round {
    pub range: Range<usize>,
    pub chunk_len: usize,
    /// The operation's first element: chunk slots count from its chunk.
    pub first: usize,
    /// The kernel's code offset.
    pub kernel: i64,
    /// A worker's death stops the job (see `Ledger::reserve`).
    pub stop_on_death: bool,
    /// The caller awaits the job: its finisher wakes the collector too.
    pub awaited: bool,
}

/// Publishes one job of `op` and invites the workers.
pub(crate) fn publish(
    inner: &Arc<PoolInner>,
    op: &Operation<'_>,
    round: &Round,
) -> Result<Published> {
    let range = round.range.clone();
    let _span = tracing::debug_span!(
        "shmpool.bulk",
        kind = op.kind as u32,
        start = range.start,
        len = range.len(),
        chunk_len = round.chunk_len
    )
    .entered();
    inner.check_open()?;
    let (index, generation) = inner.jobs.reserve(round.stop_on_death);
    let mut segments: Vec<Arc<Segment>> = Vec::with_capacity(op.operands.len());
    for spec in &op.operands {
        if !segments.iter().any(|s| s.id() == spec.segment.id()) {
            segments.push(Arc::clone(spec.segment));
        }
    }
    let len = range.len() as u64;
    let chunk_len = round.chunk_len as u64;
    let chunks = len.div_ceil(chunk_len);
    let published = Published {
        inner: Arc::clone(inner),
        index,
        generation,
        segments,
        span: Span {
            start: range.start,
            len,
            chunk_len,
        },
    };
    let shipped: Vec<&Arc<Segment>> = published.segments.iter().collect();
    inner.shipping.ship_for_job(&shipped, &inner.counters)?;

    // Retried ranges start on chunk boundaries of the whole operation.
    let first_chunk = (range.start - round.first) / round.chunk_len;
    let mut operands = [Operand::default(); MAX_OPERANDS];
    for (slot, spec) in operands.iter_mut().zip(&op.operands) {
        let info = spec
            .segment
            .ship_info()
            .map_err(Error::io("registering an array"))?;
        let (byte_off, extent) = match spec.role {
            Role::Chunked => (range.start * spec.elem_size, len),
            Role::Whole { extent } => (0, extent as u64),
            Role::PerChunk { base } => (base + first_chunk * spec.elem_size, chunks),
        };
        *slot = Operand {
            id: info.id,
            live: info.live,
            byte_off: byte_off as u64,
            elem_size: spec.elem_size as u64,
            extent,
            type_tag: spec.type_tag,
        };
    }
    let desc = Descriptor {
        kind: op.kind,
        kernel: round.kernel,
        len,
        chunk_len,
        chunks,
        chunk_timeout_ns: op
            .options
            .chunk_timeout
            .map_or(0, |d| d.as_nanos().clamp(1, u64::MAX as u128) as u64),
        origin: range.start as u64,
        operands,
        operand_count: op.operands.len() as u32,
        context_count: op.context_count as u32,
        params_len: op.params.len() as u32,
        wake_collector: round.awaited,
    };
    let job = inner.ctrl.job(index);
    protocol::publish(job, inner.ctrl.bitmap(index), generation, &desc, op.params);

    let invitations = (inner.live_workers() as u64).clamp(1, chunks);
    let record = TaskRecord {
        kind: RecordKind::JoinBulk as u32,
        id: protocol::pack_job(index, generation),
        ..Default::default()
    };
    for _ in 0..invitations {
        inner.push_record(record)?;
    }
    inner.ctrl.header().submit_ready.notify(invitations as u32);
    tracing::debug!(chunks, invitations, "bulk job submitted");
    Ok(published)
}
