//! The bulk-job protocol: one job entry per array map, chunks claimed through an
//! atomic cursor, completion through a futex, and post-mortem accounting when a
//! worker dies inside a job.
//!
//! * **Publish** (parent, entry free): write the descriptor (Relaxed), reset the
//!   cursor to `gen << 32`, the counters and the done-bitmap, then store the new
//!   generation with Release (SYNC B1).
//! * **Join** (worker, holding a `JoinBulk` record for `gen`): set its slot's
//!   `bulk_job`, load the generation with Acquire (SYNC B2) and read the descriptor.
//! * **Claim**: CAS the cursor from `(gen, i)` to `(gen, i + 1)`. The generation in
//!   the cursor makes a stale joiner's CAS fail, and a successful CAS proves the
//!   descriptor read before it belongs to this job: the entry is only rewritten after
//!   the job finished, which needs every chunk, including `i`, done.
//! * **Done**: set the chunk's bit in the bitmap, then `done += 1`; whoever brings
//!   `done` to the chunk count sets `finished` and wakes the caller.
//! * **Failure**: a panicking kernel records the first error and sets `cancel`;
//!   claimers then close the cursor (CAS to `(gen, chunks)`) and count the skipped
//!   chunks as done.
//! * **Death**: if a worker dies inside a job, the chunk it held is neither done nor
//!   claimable. Unless the job's losses are to be retried, the collector stops the job
//!   as a panic does ([`stop_after_death`]) and closes its cursor itself
//!   ([`close_stopped`]). It waits until the job is *quiescent* (cursor closed and no
//!   live worker inside) and then finishes it; the chunks whose bits are unset are the
//!   lost ones (see [`lost_chunks`]).

use std::ops::Range;

use crate::layout::{ERROR_MSG_BYTES, JobEntry, JobKind, MAX_OPERANDS, PARAMS_BYTES};
use crate::slot::WorkerSlot;
use crate::sync::{AtomicU64, Ordering};
use crate::wake::{Backoff, EventCount};

/// Packs a job index and generation into one word (records, `WorkerSlot::bulk_job`).
pub(crate) fn pack_job(index: u32, generation: u32) -> u64 {
    (u64::from(index) << 32) | u64::from(generation)
}

/// The inverse of [`pack_job`].
pub(crate) fn unpack_job(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
}

fn cursor(generation: u32, index: u64) -> u64 {
    (u64::from(generation) << 32) | index
}

/// The element range of chunk `index`.
pub(crate) fn chunk_range(index: u64, chunk_len: u64, len: u64) -> Range<usize> {
    let start = index * chunk_len;
    let end = (start + chunk_len).min(len);
    start as usize..end as usize
}

/// What the parent puts in a job entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Descriptor {
    /// The kind of kernel.
    pub kind: JobKind,
    /// The kernel's code offset.
    pub kernel: i64,
    /// Elements.
    pub len: u64,
    /// Elements per chunk.
    pub chunk_len: u64,
    /// Number of chunks.
    pub chunks: u64,
    /// Per-chunk time limit in ns (0: none).
    pub chunk_timeout_ns: u64,
    /// The global index of the job's element 0.
    pub origin: u64,
    /// The arrays, in the trampoline's order; `operand_count` of them are used.
    pub operands: [Operand; MAX_OPERANDS],
    /// How many operands the job uses.
    pub operand_count: u32,
    /// How many of them, at the end, are context arrays.
    pub context_count: u32,
    /// Bytes of kernel parameters.
    pub params_len: u32,
    /// Whether the finisher wakes the collector too (the caller awaits the job).
    pub wake_collector: bool,
}

impl Descriptor {
    /// The operands in use.
    pub(crate) fn operands(&self) -> &[Operand] {
        &self.operands[..(self.operand_count as usize).min(MAX_OPERANDS)]
    }
}

/// An array operand of a job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Operand {
    /// Segment id.
    pub id: u64,
    /// Liveness word.
    pub live: u64,
    /// Byte offset of the operand's element 0 within the segment's data.
    pub byte_off: u64,
    /// Element size in bytes.
    pub elem_size: u64,
    /// Elements the job may touch from element 0.
    pub extent: u64,
    /// Element type fingerprint (context arrays), or 0.
    pub type_tag: u64,
}

fn store_operand(r: &crate::layout::SegmentRef, o: Operand) {
    r.id.store(o.id, Ordering::Relaxed);
    r.live.store(o.live, Ordering::Relaxed);
    r.byte_off.store(o.byte_off, Ordering::Relaxed);
    r.elem_size.store(o.elem_size, Ordering::Relaxed);
    r.extent.store(o.extent, Ordering::Relaxed);
    r.type_tag.store(o.type_tag, Ordering::Relaxed);
}

fn load_operand(r: &crate::layout::SegmentRef) -> Operand {
    Operand {
        id: r.id.load(Ordering::Relaxed),
        live: r.live.load(Ordering::Relaxed),
        byte_off: r.byte_off.load(Ordering::Relaxed),
        elem_size: r.elem_size.load(Ordering::Relaxed),
        extent: r.extent.load(Ordering::Relaxed),
        type_tag: r.type_tag.load(Ordering::Relaxed),
    }
}

/// Publishes a job in a free entry, as generation `generation`, with `params` as
/// its kernel parameters (at most `PARAMS_BYTES`; the caller checked).
///
/// The caller owns the entry (it was free and is reserved in the parent's table) and
/// `bitmap` is its done-bitmap.
pub(crate) fn publish(
    job: &JobEntry,
    bitmap: &[AtomicU64],
    generation: u32,
    d: &Descriptor,
    params: &[u8],
) {
    assert!(params.len() <= PARAMS_BYTES && params.len() == d.params_len as usize);
    job.kind.store(d.kind as u32, Ordering::Relaxed);
    job.kernel.store(d.kernel as u64, Ordering::Relaxed);
    job.len.store(d.len, Ordering::Relaxed);
    job.chunk_len.store(d.chunk_len, Ordering::Relaxed);
    job.chunks.store(d.chunks, Ordering::Relaxed);
    job.chunk_timeout_ns
        .store(d.chunk_timeout_ns, Ordering::Relaxed);
    job.origin.store(d.origin, Ordering::Relaxed);
    job.operand_count.store(d.operand_count, Ordering::Relaxed);
    job.context_count.store(d.context_count, Ordering::Relaxed);
    job.params_len.store(d.params_len, Ordering::Relaxed);
    job.wake_collector
        .store(u32::from(d.wake_collector), Ordering::Relaxed);
    for (slot, op) in job.operands.iter().zip(d.operands) {
        store_operand(slot, op);
    }
    // SAFETY: the entry is free and reserved by this parent, so no worker reads the
    // block: a worker reads it only after a successful claim of this generation's
    // chunk, and the generation is published below (SYNC B1), which orders this
    // write before any such read. `params` fits (asserted above).
    unsafe {
        std::ptr::copy_nonoverlapping(params.as_ptr(), job.params.as_ptr(), params.len());
    }
    job.cursor.store(cursor(generation, 0), Ordering::Relaxed);
    job.done.store(0, Ordering::Relaxed);
    job.finished.store(0, Ordering::Relaxed);
    job.cancel.store(0, Ordering::Relaxed);
    job.error_state.store(0, Ordering::Relaxed);
    job.error_chunk.store(0, Ordering::Relaxed);
    job.error_len.store(0, Ordering::Relaxed);
    for word in &bitmap[..d.chunks.div_ceil(64) as usize] {
        word.store(0, Ordering::Relaxed);
    }
    // SYNC(B1): Release — publishes everything above; pairs with the joiner's
    // Acquire load of the generation (SYNC B2).
    job.generation.store(generation, Ordering::Release);
}

/// A worker's view of a job it joined.
#[derive(Debug)]
pub(crate) struct Joined<'a> {
    job: &'a JobEntry,
    bitmap: &'a [AtomicU64],
    generation: u32,
    /// The collector's wake-up, for jobs whose caller awaits them.
    collector: &'a EventCount,
    /// The descriptor, valid once a claim succeeds.
    pub desc: Descriptor,
}

/// A claimed chunk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chunk {
    /// Chunk index.
    pub index: u64,
}

/// Reads the descriptor of job `generation`, or `None` if the entry moved on (or
/// holds a kind no parent writes).
pub(crate) fn join<'a>(
    job: &'a JobEntry,
    bitmap: &'a [AtomicU64],
    generation: u32,
    collector: &'a EventCount,
) -> Option<Joined<'a>> {
    // SYNC(B2): Acquire — pairs with SYNC B1.
    if job.generation.load(Ordering::Acquire) != generation {
        return None;
    }
    // A kind no parent writes means a corrupt entry: join nothing rather than guess
    // which arrays to touch.
    let kind = JobKind::decode(job.kind.load(Ordering::Relaxed))?;
    let desc = Descriptor {
        kind,
        kernel: job.kernel.load(Ordering::Relaxed) as i64,
        len: job.len.load(Ordering::Relaxed),
        chunk_len: job.chunk_len.load(Ordering::Relaxed),
        chunks: job.chunks.load(Ordering::Relaxed),
        chunk_timeout_ns: job.chunk_timeout_ns.load(Ordering::Relaxed),
        origin: job.origin.load(Ordering::Relaxed),
        operands: std::array::from_fn(|i| load_operand(&job.operands[i])),
        operand_count: job.operand_count.load(Ordering::Relaxed),
        context_count: job.context_count.load(Ordering::Relaxed),
        params_len: job.params_len.load(Ordering::Relaxed),
        wake_collector: job.wake_collector.load(Ordering::Relaxed) != 0,
    };
    if desc.chunks as usize > bitmap.len() * 64
        || desc.operand_count as usize > MAX_OPERANDS
        || desc.context_count > desc.operand_count
        || desc.params_len as usize > PARAMS_BYTES
    {
        return None; // torn read of a reused entry: the claim would fail anyway
    }
    Some(Joined {
        job,
        bitmap,
        generation,
        collector,
        desc,
    })
}

impl Joined<'_> {
    /// Claims the next chunk, recording the intent in `slot` first; `None` when no
    /// chunk is left (or the job was cancelled, in which case the rest is skipped).
    pub(crate) fn claim(&self, slot: &WorkerSlot) -> Option<Chunk> {
        let chunks = self.desc.chunks;
        loop {
            // Acquire, part of the claim (SYNC B3 below): the value the CAS compares
            // against. A cursor of another generation means the entry was reused and
            // we stop. It does not itself synchronize with SYNC B1 (the cursor reset
            // is a Relaxed store made before B1); the descriptor we use was made
            // visible by SYNC B2, and a successful CAS proves it is still this job's.
            let current = self.job.cursor.load(Ordering::Acquire);
            if (current >> 32) as u32 != self.generation {
                return None;
            }
            let index = current & 0xffff_ffff;
            if index >= chunks {
                return None;
            }
            // SYNC(B8): Acquire — pairs with the Release stores of `cancel` in `fail` (SYNC B7)
            // and `stop_after_death` (SYNC B13). Nothing is read on its strength (the message
            // has its own, SYNC B6): a stale 0 only runs one more chunk, whose next claim sees
            // the flag (or the cursor the collector closed).
            if self.job.cancel.load(Ordering::Acquire) != 0 {
                self.skip_rest(current, index);
                continue;
            }
            slot.claiming_chunk(index);
            // SYNC(B3): AcqRel — the claim. Release: our `bulk_job` (SYNC W2) and descriptor reads
            // are ordered before it; pairs with the collector's cursor load (SYNC B9), so a
            // quiescence check that sees this claim sees us inside the job. Acquire: continues the
            // chain of earlier claims; the descriptor itself came through SYNC B2.
            if self
                .job
                .cursor
                .compare_exchange_weak(current, current + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Some(Chunk { index });
            }
        }
    }

    fn skip_rest(&self, current: u64, index: u64) {
        let closed = cursor(self.generation, self.desc.chunks);
        // SYNC(B3): AcqRel — the claim CAS in its closing form: takes every chunk from `index`
        // on at once; pairs as in `claim` (with the collector's SYNC B9 load).
        if self
            .job
            .cursor
            .compare_exchange(current, closed, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.add_done(self.desc.chunks - index);
        }
    }

    /// The job's kernel parameters. Read them only while holding a claimed chunk:
    /// the claim proves the entry is this job's and is not being rewritten.
    pub(crate) fn params_ptr(&self, _held: Chunk) -> *const u8 {
        self.job.params.as_ptr().cast_const()
    }

    /// The element range of a chunk.
    pub(crate) fn range(&self, c: Chunk) -> Range<usize> {
        chunk_range(c.index, self.desc.chunk_len, self.desc.len)
    }

    /// Records that chunk `c` ran (successfully or not).
    pub(crate) fn complete(&self, c: Chunk) {
        let word = &self.bitmap[(c.index / 64) as usize];
        // Relaxed: the bitmap is read by the collector only after the job is
        // quiescent, which it learns through the cursor (SYNC B9) and the worker's
        // cleared `bulk_job` (SYNC W2), or by the caller after the job finished
        // (SYNC B4/B5).
        word.fetch_or(1 << (c.index % 64), Ordering::Relaxed);
        self.add_done(1);
    }

    fn add_done(&self, n: u64) {
        // SYNC(B4): AcqRel — the finisher's view includes every other chunk's writes
        // (each released by its own increment), which it then releases to the
        // caller through `finished` (SYNC B5).
        let before = self.job.done.fetch_add(n, Ordering::AcqRel);
        if before + n == self.desc.chunks {
            finish(self.job);
            if self.desc.wake_collector {
                self.collector.notify(1);
            }
        }
    }

    /// Records a kernel panic in chunk `c` (the first one wins) and cancels the rest.
    pub(crate) fn fail(&self, c: Chunk, message: &str) {
        // SYNC(B10): AcqRel — only elects the first panicking worker as the message's writer;
        // the message is published by the store of 2 (SYNC B6), and the entry's reset came
        // through SYNC B2. Stronger than needed: Relaxed would do.
        if self
            .job
            .error_state
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            let mut buf = [0u8; ERROR_MSG_BYTES];
            let mut n = message.len().min(ERROR_MSG_BYTES);
            while !message.is_char_boundary(n) {
                n -= 1;
            }
            buf[..n].copy_from_slice(&message.as_bytes()[..n]);
            // SAFETY: winning the 0→1 CAS on error_state makes this worker the only
            // writer of the message; readers wait for state 2 (SYNC B6).
            unsafe { self.job.error_msg.write(buf) };
            self.job.error_len.store(n as u32, Ordering::Relaxed);
            self.job.error_chunk.store(c.index, Ordering::Relaxed);
            // SYNC(B6): Release — publishes the message; pairs with the Acquire load
            // in `read_error`.
            self.job.error_state.store(2, Ordering::Release);
        }
        // SYNC(B7): Release — pairs with the Acquire loads of `cancel` in `claim` and in
        // `is_stopped` (SYNC B8, the collector's `resolve_abandoned`); the error record (SYNC
        // B6) is ordered first. The collector's swap in `stop_after_death` (SYNC B13) reads this
        // store when the panic came first.
        self.job.cancel.store(1, Ordering::Release);
    }
}

/// Marks a job finished and wakes its caller.
pub(crate) fn finish(job: &JobEntry) {
    // SYNC(B5): Release — pairs with the caller's Acquire load in `wait_finished`:
    // all chunk writes (gathered by SYNC B4) are visible to the caller.
    job.finished.store(1, Ordering::Release);
    done_event(job).notify(u32::MAX);
}

fn done_event(job: &JobEntry) -> &EventCount {
    &job.done_event
}

/// Whether the job has finished (Acquire, SYNC B5).
pub(crate) fn is_finished(job: &JobEntry) -> bool {
    job.finished.load(Ordering::Acquire) != 0
}

/// Waits until the job finishes; `on_tick` runs every `tick` while waiting and may
/// end the wait early with `Some`.
pub(crate) fn wait_finished<T>(
    job: &JobEntry,
    backoff: Backoff,
    tick: std::time::Duration,
    mut on_tick: impl FnMut() -> Option<T>,
) -> Option<T> {
    backoff.wait(
        done_event(job),
        Some(tick),
        || is_finished(job).then_some(None),
        || on_tick().map(Some),
    )
}

/// The recorded kernel panic, if any: (chunk index, message).
pub(crate) fn read_error(job: &JobEntry) -> Option<(u64, String)> {
    // SYNC(B6): Acquire — see `Joined::fail`.
    match job.error_state.load(Ordering::Acquire) {
        2 => {
            let n = job.error_len.load(Ordering::Relaxed) as usize;
            // SAFETY: state 2 means the writer is done, and no one writes the message
            // again until the entry is republished by this parent.
            let buf = unsafe { job.error_msg.read() };
            let msg = String::from_utf8_lossy(&buf[..n.min(ERROR_MSG_BYTES)]).into_owned();
            Some((job.error_chunk.load(Ordering::Relaxed), msg))
        }
        1 => Some((
            job.error_chunk.load(Ordering::Relaxed),
            "a kernel panicked, and its worker died while reporting it".into(),
        )),
        _ => None,
    }
}

/// Stops a job because a worker died in it, as a kernel panic does (`Joined::fail`):
/// from now on no chunk is claimed; the remaining ones are skipped. The collector
/// calls it under the ledger's lock, for an entry that is still the dead worker's job
/// (in use, same generation), so the entry cannot be republished meanwhile.
///
/// Returns whether this call stopped the job: `false` when `cancel` was set already,
/// by a kernel panic (SYNC B7) or an earlier death.
pub(crate) fn stop_after_death(job: &JobEntry) -> bool {
    // SYNC(B13): Release — pairs with the Acquire loads of `cancel` in `claim` and
    // `is_stopped` (SYNC B8). As with SYNC B7, nothing is read on its strength: a claimer
    // that still reads 0 runs one more chunk. A swap rather than a store because, as a
    // read-modify-write, it reads the last value in `cancel`'s modification order: its
    // result says exactly whether a panic's store (SYNC B7) came first.
    job.cancel.swap(1, Ordering::Release) == 0
}

/// Whether the job was stopped: a kernel panicked (SYNC B7) or a worker died in it
/// (SYNC B13).
pub(crate) fn is_stopped(job: &JobEntry) -> bool {
    // SYNC(B8): Acquire — pairs with SYNC B7 and B13; as in `claim`, nothing is read on
    // its strength.
    job.cancel.load(Ordering::Acquire) != 0
}

/// Stops job `generation` at its caller's request (a bulk cancel): sets `cancel` as
/// a kernel panic does, so that no worker claims another chunk, then closes the
/// cursor and counts the chunks it skipped as done, as a claimer's `skip_rest`
/// would, so that the job finishes as soon as the chunks running end. The caller
/// holds the entry (its job has not been released), so the entry is this job's or
/// already finished; a closed cursor, or one of another generation, is left alone.
pub(crate) fn stop_by_parent(job: &JobEntry, generation: u32) {
    // SYNC(B13): Release — as the collector's swap in `stop_after_death`: pairs with
    // the claimers' Acquire loads of `cancel` (SYNC B8); nothing is read on its
    // strength.
    job.cancel.swap(1, Ordering::Release);
    let chunks = job.chunks.load(Ordering::Relaxed);
    let closed = cursor(generation, chunks);
    // Relaxed: only the value the CAS below compares against.
    let mut current = job.cursor.load(Ordering::Relaxed);
    while (current >> 32) as u32 == generation && current & 0xffff_ffff < chunks {
        // SYNC(B3): AcqRel — the claim CAS in its closing form, as in `skip_rest`:
        // takes every chunk left at once.
        match job
            .cursor
            .compare_exchange_weak(current, closed, Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) => {
                let skipped = chunks - (current & 0xffff_ffff);
                // SYNC(B4): AcqRel — as in `add_done`: the finisher's view includes
                // every chunk's writes, which SYNC B5 hands to the caller.
                let before = job.done.fetch_add(skipped, Ordering::AcqRel);
                if before + skipped == chunks {
                    finish(job);
                }
                return;
            }
            Err(now) => current = now,
        }
    }
}

/// Closes the cursor of a stopped job of generation `generation` on its workers'
/// behalf, as their next claim would (`skip_rest`), so that the job becomes quiescent
/// as soon as the workers inside it finish their chunks, even when no live worker is
/// inside to make another claim. The skipped chunks are not counted in `done`: a job
/// whose worker died never reaches the chunk count, and is finished by the collector
/// (`finish_abandoned`). Does nothing if the cursor is closed already or belongs to
/// another generation.
pub(crate) fn close_stopped(job: &JobEntry, generation: u32) {
    let chunks = job.chunks.load(Ordering::Relaxed);
    let closed = cursor(generation, chunks);
    // Relaxed: only the value the CAS below compares against.
    let mut current = job.cursor.load(Ordering::Relaxed);
    while (current >> 32) as u32 == generation && current & 0xffff_ffff < chunks {
        // SYNC(B3): AcqRel — the claim CAS in its closing form, made by the collector: takes
        // every chunk left at once. Acquire: reading the last claim (or any later value in
        // its release sequence) makes every earlier claimer's `bulk_job` store (SYNC W2)
        // visible, as the SYNC B9 load that follows in `resolve_abandoned` also does. Its
        // Release orders nothing a claimer needs: one that reads the closed cursor claims
        // nothing.
        match job
            .cursor
            .compare_exchange_weak(current, closed, Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) => return,
            Err(now) => current = now,
        }
    }
}

/// Whether a dead worker whose last recorded chunk (`bulk_chunk`) was `chunk` may have
/// held it when it died: the chunk was claimed and its done-bit is unset. Its own claim
/// and bit, if it made them, are visible (it is dead and reaped, SYNC F1). False means
/// the death lost nothing: it died before its claim succeeded, or after completing the
/// chunk (between chunks, or on its way out of the job).
pub(crate) fn may_have_held(job: &JobEntry, bitmap: &[AtomicU64], chunk: u64) -> bool {
    let (_, next) = cursor_state(job);
    let Some(word) = bitmap.get((chunk / 64) as usize) else {
        return false;
    };
    // Relaxed: the dead worker's bit is visible through SYNC F1; another worker's
    // bit, if it claimed the chunk instead, may not be yet, which only makes us stop a
    // job that lost nothing (`Ledger::record_death` says when that can happen).
    chunk < next && word.load(Ordering::Relaxed) & (1 << (chunk % 64)) == 0
}

/// The state of a job's cursor: (generation, next index).
pub(crate) fn cursor_state(job: &JobEntry) -> (u32, u64) {
    // SYNC(B9): Acquire — pairs with the claim CAS (SYNC B3, Release), through the release
    // sequence of every claim: in the collector's quiescence check this load precedes the
    // loads of `bulk_job` (SYNC W2), and reading a claim, or any later value of the cursor
    // (all of them written by read-modify-writes), makes every claimer's `bulk_job` store
    // before its claim visible to them. The loom models (`src/loom_tests/bulk_job.rs`) fail
    // with it Relaxed. A starting worker also uses it (`join_active_jobs`: its claim CAS
    // checks what it read), and the collector when a worker dies (`may_have_held`: the
    // dead worker's own claim is visible through SYNC F1 anyway).
    let c = job.cursor.load(Ordering::Acquire);
    ((c >> 32) as u32, c & 0xffff_ffff)
}

/// Chunks below `claimed` whose done bit is unset.
pub(crate) fn lost_chunks(bitmap: &[AtomicU64], claimed: u64) -> Vec<u64> {
    (0..claimed)
        // SYNC(B11): Relaxed — bits are set Relaxed (`complete`); they are visible because
        // the caller checked quiescence first (the Acquire load of each live worker's
        // cleared `bulk_job`, SYNC W2, or SYNC F1 for a dead one), or saw the job finished
        // (SYNC B4/B5). The loom models read the bits this way before anything else
        // orders them.
        .filter(|&i| bitmap[(i / 64) as usize].load(Ordering::Relaxed) & (1 << (i % 64)) == 0)
        .collect()
}

/// How many of the first `chunks` chunks have their done bit set: the chunks run
/// so far, for a progress bar. Relaxed: a count to show, on which nothing is read
/// (a bit set a moment ago may be missed, and counted at the next look).
pub(crate) fn chunks_run(bitmap: &[AtomicU64], chunks: u64) -> u64 {
    bitmap[..chunks.div_ceil(64) as usize]
        .iter()
        .map(|w| u64::from(w.load(Ordering::Relaxed).count_ones()))
        .sum()
}

/// Finishes a quiescent job on behalf of workers that died in it.
pub(crate) fn finish_abandoned(job: &JobEntry) {
    let chunks = job.chunks.load(Ordering::Relaxed);
    // SYNC(B12): Release — nothing reads `done` with Acquire after this: the job is
    // quiescent (or the pool is stopping), and the caller learns of the end through
    // `finished` (SYNC B5) below. Release only matches SYNC B4.
    job.done.store(chunks, Ordering::Release);
    finish(job);
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips() {
        assert_eq!(unpack_job(pack_job(7, 0xdead_beef)), (7, 0xdead_beef));
        assert_eq!(chunk_range(2, 10, 25), 20..25);
        assert_eq!(chunk_range(0, 10, 25), 0..10);
    }
}
