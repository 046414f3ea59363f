//! The bulk job's claim, quiescence and death protocol (`docs/PROTOCOL.md` §7) under
//! loom: two workers run the chunk loop of `src/worker/bulk_exec.rs` on one job entry
//! while the collector stops the job, closes its cursor and checks it for quiescence
//! as `Ledger::resolve_abandoned` does, with the real protocol functions
//! (`src/job/protocol.rs`) and slot words (`src/slot/record.rs`) throughout.
//!
//! The kernel's output is one loom cell per chunk. A worker writes its chunk's cell
//! between its claim and its done-bit; the collector, once it concludes that the job
//! is quiescent (or finished), reads every cell, as the caller then reads the output
//! array. loom reports any of those reads that is not ordered after the write, and any
//! write made after a read it is not ordered behind: a worker still inside a chunk the
//! collector took for done or lost. The models also check, once every thread is
//! joined, that what the collector concluded was exact.

use std::time::Duration;

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;

use crate::job::protocol::{self, Descriptor, Operand};
use crate::layout::{JobEntry, JobKind, MAX_OPERANDS};
use crate::slot::WorkerSlot;
use crate::sync::{AtomicU64, Ordering};
use crate::wake::{Backoff, EventCount};

/// Chunks of the job: enough for one worker to complete a chunk while the other holds
/// one, with one left for the stop to skip.
const CHUNKS: usize = 3;
/// The job's entry index and generation.
const INDEX: u32 = 0;
const GENERATION: u32 = 1;

/// What shared memory holds for the models: a job entry with its done-bitmap, the
/// collector's event count, two worker slots (with the generation of their process),
/// and the job's output array.
struct Shared {
    job: JobEntry,
    bitmap: [AtomicU64; 1],
    completions: EventCount,
    workers: [(WorkerSlot, u32); 2],
    /// Chunk `c`'s output range: how many times a kernel ran on it.
    out: [UnsafeCell<u32>; CHUNKS],
}

impl Shared {
    /// The job published (SYNC B1) with two ready workers, before any thread starts.
    fn published() -> Arc<Shared> {
        let shared = Shared {
            job: JobEntry::new(),
            bitmap: [AtomicU64::new(0)],
            completions: EventCount::new(),
            workers: [WorkerSlot::new_ready(), WorkerSlot::new_ready()],
            out: std::array::from_fn(|_| UnsafeCell::new(0)),
        };
        let desc = Descriptor {
            kind: JobKind::Map,
            kernel: 0,
            len: CHUNKS as u64,
            chunk_len: 1,
            chunks: CHUNKS as u64,
            chunk_timeout_ns: 0,
            origin: 0,
            operands: [Operand::default(); MAX_OPERANDS],
            operand_count: 0,
            context_count: 0,
            params_len: 0,
            wake_collector: false,
        };
        protocol::publish(&shared.job, &shared.bitmap, GENERATION, &desc, &[]);
        Arc::new(shared)
    }

    /// The job as a slot's `bulk_job` names it.
    fn packed() -> u64 {
        protocol::pack_job(INDEX, GENERATION)
    }

    /// What the caller finds: the done-bits (`lost_chunks`, as `Ledger::outcome`
    /// reads them) and the output array, every chunk's cell, which must be ordered
    /// after any kernel's write to it (loom checks).
    fn outcome(&self) -> Outcome {
        Outcome {
            lost: protocol::lost_chunks(&self.bitmap, CHUNKS as u64),
            // SAFETY: loom's cell checks the claim this read makes, that no kernel
            // writes the output any more; a violation fails the model.
            output: std::array::from_fn(|c| self.out[c].with(|v| unsafe { *v })),
        }
    }
}

/// Where a worker stops for good: a death at that point of the chunk loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// Runs to the end: leaves the job when no chunk is left.
    Never,
    /// Dies inside the job before its first claim (`bulk_chunk` names none).
    BeforeClaim,
    /// Dies holding its first chunk, whose kernel wrote the output: the chunk is
    /// neither done nor claimable.
    Holding,
    /// Dies after its first chunk is done (its bit set), before recording that it
    /// holds none: `bulk_chunk` still names the chunk.
    AfterComplete,
    /// Dies between chunks: after leaving its first, before its next claim.
    BetweenChunks,
}

/// What a worker did.
#[derive(Debug, Default)]
struct Ran {
    /// The chunks whose claim it won.
    claimed: Vec<u64>,
    /// The chunks it marked done.
    completed: Vec<u64>,
}

impl Ran {
    /// The chunk it held when it stopped: claimed and not done.
    fn held(&self) -> Option<u64> {
        self.claimed
            .iter()
            .copied()
            .find(|c| !self.completed.contains(c))
    }
}

/// Worker `w`'s part, as `Worker::run_bulk` and `bulk_exec::run` make it: enter the
/// job, join it, then claim, run, complete and leave chunks until no claim succeeds,
/// and leave the job; or stop for good at `stop`.
fn work(shared: &Shared, w: usize, stop: Stop) -> Ran {
    let slot = &shared.workers[w].0;
    let mut ran = Ran::default();
    slot.enter_job(Shared::packed());
    if stop == Stop::BeforeClaim {
        return ran;
    }
    let joined = protocol::join(&shared.job, &shared.bitmap, GENERATION, &shared.completions)
        .expect("the job is published");
    let mut next = joined.claim(slot);
    while let Some(chunk) = next {
        ran.claimed.push(chunk.index);
        // The kernel writes the chunk's range.
        // SAFETY: loom's cell checks the claim this write makes, that nobody else
        // touches the range; a violation fails the model.
        shared.out[chunk.index as usize].with_mut(|v| unsafe { *v += 1 });
        if stop == Stop::Holding {
            return ran;
        }
        joined.complete(chunk);
        ran.completed.push(chunk.index);
        if stop == Stop::AfterComplete {
            return ran;
        }
        slot.leave_chunk();
        if stop == Stop::BetweenChunks {
            return ran;
        }
        next = joined.claim(slot);
    }
    slot.leave_job();
    ran
}

/// What the collector concluded about the job.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Not quiescent yet: chunks are claimable, or a live worker is inside.
    Watching,
    /// Its workers finished it (`done` reached the chunk count, SYNC B4/B5).
    Finished(Outcome),
    /// Quiescent: the collector finished it.
    Quiescent(Outcome),
}

/// What the job's caller finds once the collector concluded.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// The chunks whose done-bits are unset (`Ledger::outcome`).
    lost: Vec<u64>,
    /// The output array: how often a kernel ran on each chunk.
    output: [u32; CHUNKS],
}

/// The collector's look at the job, step for step as `Ledger::resolve_abandoned`
/// makes it for a suspect job: the cursor (SYNC B9); a stopped job's cursor closed
/// (SYNC B3) and read again; then `runs_job` (SYNC G2, W2) for every slot; quiescent
/// when the cursor is closed and nobody is inside, and then finished
/// (`finish_abandoned`). The done-bits and the output are read at the verdict, before
/// the finish: quiescence alone must make them final (`docs/PROTOCOL.md` §7), not the
/// wake-up that the finish makes (its SeqCst fence, SYNC E3, would hide a missing
/// Acquire in the check).
fn look(shared: &Shared) -> Verdict {
    let job = &shared.job;
    let (generation, mut next) = protocol::cursor_state(job);
    assert_eq!(generation, GENERATION);
    if protocol::is_finished(job) {
        return Verdict::Finished(shared.outcome());
    }
    let chunks = job.chunks.load(Ordering::Relaxed);
    if next < chunks && protocol::is_stopped(job) {
        protocol::close_stopped(job, generation);
        next = protocol::cursor_state(job).1;
    }
    let inside = |packed: u64| shared.workers.iter().any(|(s, _)| s.runs_job(packed));
    if next < chunks || inside(Shared::packed()) {
        return Verdict::Watching;
    }
    let seen = shared.outcome();
    protocol::finish_abandoned(job);
    Verdict::Quiescent(seen)
}

/// The collector learns that worker `w` died (its thread was joined: the death, seen
/// through the reaping, SYNC F1), marks its slot `Exited` as the fork server's report
/// does, reads what it ran (`WorkerSlot::exited`), and reports the death as
/// `Ledger::record_death` does for a job that a death stops. Returns the chunk of
/// the death that stopped the job, if it did.
fn record_death(shared: &Shared, w: usize) -> Option<u64> {
    let (slot, generation) = &shared.workers[w];
    assert!(slot.exit_for_model(*generation));
    let ran = slot.assignment_hint();
    if ran.job != Some(Shared::packed()) {
        return None;
    }
    let chunk = ran.chunk?;
    (protocol::may_have_held(&shared.job, &shared.bitmap, chunk)
        && protocol::stop_after_death(&shared.job))
    .then_some(chunk)
}

/// After every thread is joined: what the collector concluded (`verdict`, its first
/// verdict that was not `Watching`) must be exact. The chunks it names lost are
/// exactly those no worker completed (so every chunk completed was seen done, and
/// none was completed after the verdict); the output it read is what the kernels
/// wrote in the end (none ran after the verdict); and no chunk was claimed twice.
fn check_verdict(verdict: &Verdict, ran: &[Ran]) {
    let mut claimed: Vec<u64> = ran.iter().flat_map(|r| r.claimed.clone()).collect();
    claimed.sort_unstable();
    let before = claimed.len();
    claimed.dedup();
    assert_eq!(claimed.len(), before, "a chunk was claimed twice: {ran:?}");
    let completed: Vec<u64> = ran.iter().flat_map(|r| r.completed.clone()).collect();
    let not_completed: Vec<u64> = (0..CHUNKS as u64)
        .filter(|c| !completed.contains(c))
        .collect();
    let seen = match verdict {
        Verdict::Finished(seen) | Verdict::Quiescent(seen) => seen,
        Verdict::Watching => panic!("the job never became quiescent: {ran:?}"),
    };
    assert_eq!(
        seen.lost, not_completed,
        "the collector's lost chunks are not the chunks left undone: {verdict:?}, {ran:?}"
    );
    for (c, &runs) in seen.output.iter().enumerate() {
        let ran_on = u32::from(claimed.contains(&(c as u64)));
        assert_eq!(runs, ran_on, "chunk {c}: output read at the verdict");
    }
}

/// Two workers run a job while the collector stops it, as a death does
/// (`stop_after_death`, SYNC B13), and looks at it once for quiescence while they
/// run, then again after they are gone. Whenever it concludes "quiescent", every
/// chunk whose claim succeeded has been completed and is seen done, no worker is
/// inside a chunk it counts as lost, and the chunks it counts as lost are exactly the
/// ones skipped; no chunk is claimed twice; and once the workers left, the job is
/// quiescent (or finished).
#[test]
fn bulk_job_stopped_is_quiescent_only_when_no_worker_runs_a_chunk() {
    loom::model(|| {
        let shared = Shared::published();
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let shared = Arc::clone(&shared);
                thread::spawn(move || work(&shared, w, Stop::Never))
            })
            .collect();
        protocol::stop_after_death(&shared.job);
        let mut verdict = look(&shared);
        let ran: Vec<Ran> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        if verdict == Verdict::Watching {
            verdict = look(&shared);
        }
        check_verdict(&verdict, &ran);
    });
}

/// One worker dies at `stop` while the other runs on; the collector sees the death,
/// reports it as `record_death` does (stopping the job if the death may have lost its
/// chunk), looks for quiescence while the live worker runs, then again after it left.
fn death_model(stop: Stop) {
    loom::model(move || {
        let shared = Shared::published();
        let dying = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || work(&shared, 0, stop))
        };
        let live = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || work(&shared, 1, Stop::Never))
        };
        let dead = dying.join().unwrap();
        let stopped_by = record_death(&shared, 0);
        // The death accounting: the job is stopped, naming the dead worker's chunk,
        // exactly when that worker died holding it.
        assert_eq!(stopped_by, dead.held(), "{stop:?}: {dead:?}");
        let mut verdict = look(&shared);
        let ran = [dead, live.join().unwrap()];
        if verdict == Verdict::Watching {
            verdict = look(&shared);
        }
        check_verdict(&verdict, &ran);
        if let Some(held) = ran[0].held() {
            assert!(
                matches!(&verdict, Verdict::Quiescent(seen) if seen.lost.contains(&held)),
                "{stop:?}: the dead worker's chunk {held} is not reported lost: {verdict:?}"
            );
        }
    });
}

/// A worker dies holding a chunk: `may_have_held` names it, the death stops the job,
/// and at quiescence that chunk and the skipped ones, and only those, are lost.
#[test]
fn bulk_job_death_holding_a_chunk_loses_exactly_that_chunk() {
    death_model(Stop::Holding);
}

/// A worker dies where it holds no chunk (before its first claim, after its chunk's
/// done-bit, between chunks): the death stops nothing, and the job finishes with
/// every chunk done by the live worker or the dead one.
#[test]
fn bulk_job_death_holding_no_chunk_loses_nothing() {
    for stop in [Stop::BeforeClaim, Stop::AfterComplete, Stop::BetweenChunks] {
        death_model(stop);
    }
}

/// The caller cancels the job while two workers run it, as a bulk `CancelToken` does
/// (`stop_by_parent`: `cancel`, SYNC B13, then the closing claim CAS, SYNC B3, counting
/// the chunks it skipped as done, SYNC B4), then waits for the job to finish as
/// `map_into` does (`wait_finished`, SYNC B5) and reads the done-bits and the output.
/// The job finishes once, when the chunks running at the cancel have ended: a chunk
/// counted twice or not at all would leave `done` past or short of the chunk count,
/// and the caller asleep forever, which loom reports as a deadlock. The chunks it
/// reads as lost are exactly those no worker completed.
#[test]
fn bulk_job_cancelled_by_its_caller_finishes_when_its_running_chunks_end() {
    loom::model(|| {
        let shared = Shared::published();
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let shared = Arc::clone(&shared);
                thread::spawn(move || work(&shared, w, Stop::Never))
            })
            .collect();
        protocol::stop_by_parent(&shared.job, GENERATION);
        let no_spin = Backoff {
            spins: 0,
            budget: Duration::ZERO,
        };
        let tick = Duration::from_millis(1);
        protocol::wait_finished(&shared.job, no_spin, tick, || None::<()>);
        let seen = shared.outcome();
        let ran: Vec<Ran> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        check_verdict(&Verdict::Finished(seen), &ran);
    });
}
