//! Bystanders: threads that run their own work on the round's pool, beside the
//! round's operations (whose work is cancelled, timed out and killed), and check
//! every value: tasks with payloads below and above the 72-byte inline limit
//! (checked byte by byte, each delivered exactly once), maps, imaps, and bulk maps
//! (`map_into`, a two-input two-output `zip_map_into`, a deterministic reduction)
//! with every element checked. One bystander runs only bulk maps, on arrays it keeps
//! for the round (each map a random range of them; the rest must stay untouched), so
//! that a job of its own is open nearly all the time: a worker that leaves a
//! cancelled job finds a bystander's chunk to claim next. The other runs every kind,
//! on new arrays each time.
//!
//! A bystander never fails. In a round of the pool's own kills it runs with no
//! retries: a kill the pool orders lands only on the work it targets. In a round with
//! the killer, whose kills fail whatever their worker ran, it retries (tasks and
//! chunks) enough to absorb them, and gives its tasks a time limit far above any
//! SIGSTOP, in place of the pool's. Either way it must end with exactly its own
//! values. A failure (an error, a wrong value, a hang) is recorded with its context,
//! and fails the round.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use shmpool::{Bulk, Pool, SharedArray, Tasks};

use super::bulk::{mix, reduce_combine, reduce_map, reference_reduction};
use super::jobs::{Job, JobArgs, run_job, run_job_item};
use super::round::Kills;
use super::{Cx, panic_message};
use crate::common::{Deliveries, RESULT_WAIT, Rng, get, ok, within};

/// Retries of a bystander's tasks and chunks in a round with the killer.
const RETRIES: u32 = 100;
/// A bystander task's time limit in a round with the killer, in place of the pool's
/// (which a SIGSTOP longer than it would trip): far above the longest stop.
const TASK_LIMIT: Duration = Duration::from_secs(120);
/// How many failure messages a tally keeps.
const KEPT_FAILURES: usize = 3;
/// The length of a bulk bystander's arrays, kept for the round.
const KEPT_LEN: usize = 1 << 16;
/// What an output element holds before a map writes it.
const UNSET: u64 = u64::MAX;

/// What the bystanders did.
#[derive(Clone, Debug, Default)]
pub(super) struct Tally {
    pub(super) ops: usize,
    /// `apply` and `apply_async` tasks.
    tasks: usize,
    /// Items of `map`, `starmap`, `imap` and `imap_unordered`.
    items: usize,
    maps: usize,
    imaps: usize,
    bulk_maps: usize,
    zip_maps: usize,
    reductions: usize,
    /// Array elements checked.
    elements: usize,
    pub(super) failed: usize,
    /// The first few failures' messages.
    pub(super) failures: Vec<String>,
}

impl Tally {
    pub(super) fn add(&mut self, other: &Tally) {
        self.ops += other.ops;
        self.tasks += other.tasks;
        self.items += other.items;
        self.maps += other.maps;
        self.imaps += other.imaps;
        self.bulk_maps += other.bulk_maps;
        self.zip_maps += other.zip_maps;
        self.reductions += other.reductions;
        self.elements += other.elements;
        self.failed += other.failed;
        let room = KEPT_FAILURES.saturating_sub(self.failures.len());
        self.failures
            .extend(other.failures.iter().take(room).cloned());
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ops ({} tasks; {} maps and {} imaps of {} items; {} bulk maps, {} zip maps, \
             {} reductions of {} elements), {} failed",
            self.ops,
            self.tasks,
            self.maps,
            self.imaps,
            self.items,
            self.bulk_maps,
            self.zip_maps,
            self.reductions,
            self.elements,
            self.failed
        )
    }
}

/// A bystander's kinds of operation.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Apply,
    ApplyAsync,
    Map,
    Imap,
    BulkMap,
    ZipMap,
    Reduce,
}

impl Kind {
    /// What a mixed bystander draws from: every kind.
    const MIXED: [Kind; 7] = [
        Kind::Apply,
        Kind::ApplyAsync,
        Kind::Map,
        Kind::Imap,
        Kind::BulkMap,
        Kind::ZipMap,
        Kind::Reduce,
    ];
    /// What a bulk bystander draws from: it keeps a bulk job open almost all the
    /// time, so that a worker that leaves a cancelled job finds a bystander's chunk
    /// to claim next.
    const BULK: [Kind; 3] = [Kind::BulkMap, Kind::ZipMap, Kind::Reduce];

    fn name(self) -> &'static str {
        match self {
            Kind::Apply => "apply",
            Kind::ApplyAsync => "apply_async",
            Kind::Map => "map",
            Kind::Imap => "imap",
            Kind::BulkMap => "map_into",
            Kind::ZipMap => "zip_map_into",
            Kind::Reduce => "map_reduce",
        }
    }
}

/// One bystander thread of a round.
pub(super) struct Bystander {
    pool: Arc<Pool>,
    kills: Kills,
    /// Whether it runs only bulk maps (`Kind::BULK`), or every kind.
    bulk_only: bool,
    /// A bulk bystander's arrays, kept from one operation to the next.
    kept: Option<Operands>,
    cx: Cx,
    rng: Rng,
    /// The next job seed: apart from the round's and the other bystanders'.
    next_seed: u64,
    tally: Tally,
}

/// A payload length for a bystander's task: below the 72-byte inline limit, at it,
/// above it within a page or two, and now and then up to 64 KiB.
fn payload_len(rng: &mut Rng) -> usize {
    let n = match rng.below(100) {
        0..40 => rng.range(0..72),
        40..50 => rng.range(72..74),
        50..90 => rng.range(74..8193),
        _ => rng.range(8193..(64 << 10)),
    };
    n as usize
}

/// The bystanders' bulk kernel.
fn kernel(v: u64) -> u64 {
    mix(v)
}

/// The bystanders' two-input, two-output kernel.
fn zip_kernel((a, b): (u64, u32)) -> (u64, u32) {
    (mix(a) ^ u64::from(b), (a as u32).wrapping_mul(b | 1))
}

impl Bystander {
    /// A bystander of every kind of work (`bulk_only`: of bulk maps only).
    pub(super) fn new(
        pool: Arc<Pool>,
        kills: Kills,
        bulk_only: bool,
        cx: Cx,
        rng: Rng,
        seeds: u64,
    ) -> Bystander {
        Bystander {
            pool,
            kills,
            bulk_only,
            kept: None,
            cx,
            rng,
            next_seed: seeds,
            tally: Tally::default(),
        }
    }

    /// Runs random operations until `stop` (at least one), and returns the tally.
    /// A failing operation is recorded, and the bystander goes on.
    pub(super) fn run(mut self, stop: &AtomicBool) -> Tally {
        let mut op = 0;
        loop {
            let kind = self.rng.pick(match self.bulk_only {
                true => &Kind::BULK,
                false => &Kind::MIXED,
            });
            self.cx.op = op;
            self.cx.name = kind.name();
            let cx = self.cx;
            let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.one(kind);
            }));
            self.tally.ops += 1;
            if let Err(panic) = done {
                self.tally.failed += 1;
                if self.tally.failures.len() < KEPT_FAILURES {
                    // The checks name the context already; other panics do not.
                    let (message, cx) = (panic_message(&*panic), cx.to_string());
                    self.tally.failures.push(match message.starts_with(&cx) {
                        true => message.to_string(),
                        false => format!("{cx}: {message}"),
                    });
                }
            }
            op += 1;
            if stop.load(Ordering::Relaxed) {
                return self.tally;
            }
        }
    }

    fn one(&mut self, kind: Kind) {
        match kind {
            Kind::Apply => self.apply(),
            Kind::ApplyAsync => self.apply_async(),
            Kind::Map => self.map(),
            Kind::Imap => self.imap(),
            Kind::BulkMap => self.bulk_map(),
            Kind::ZipMap => self.zip_map(),
            Kind::Reduce => self.reduce(),
        }
    }

    fn job(&mut self) -> Job {
        self.next_seed += 1;
        Job {
            seed: self.next_seed,
            arg_len: payload_len(&mut self.rng),
            out_len: payload_len(&mut self.rng),
            work_us: if self.rng.chance(30) {
                self.rng.range(20..500)
            } else {
                0
            },
        }
    }

    /// The options of a bystander's tasks: none in a round of the pool's own kills
    /// (no retries, no time limit), retries and a long limit with the killer.
    fn tasks(&self) -> Tasks<'_> {
        match self.kills {
            Kills::PoolOnly => self.pool.tasks(),
            Kills::Outside => self.pool.tasks().retries(RETRIES).timeout(TASK_LIMIT),
        }
    }

    /// The options of a bystander's bulk maps: chunks of `chunk_len`, retried only
    /// with the killer.
    fn bulk(&self, chunk_len: usize) -> Bulk<'_> {
        let map = self.pool.bulk().chunk_len(chunk_len);
        match self.kills {
            Kills::PoolOnly => map,
            Kills::Outside => map.retries(RETRIES),
        }
    }

    /// One blocking `apply`.
    fn apply(&mut self) {
        let cx = self.cx;
        let job = self.job();
        let out = ok(self.tasks().apply(run_job, job.args()), cx);
        job.check(cx, &out);
        self.tally.tasks += 1;
    }

    /// A batch of `apply_async`, each delivered exactly once to its callbacks.
    fn apply_async(&mut self) {
        let cx = self.cx;
        let n = self.rng.range(1..20) as usize;
        let jobs: Vec<Job> = (0..n).map(|_| self.job()).collect();
        let deliveries = Deliveries::new(n);
        let results: Vec<_> = jobs
            .iter()
            .enumerate()
            .map(|(i, job)| {
                ok(
                    self.tasks()
                        .apply_async_with(run_job, job.args(), deliveries.callbacks(i)),
                    cx,
                )
            })
            .collect();
        for (job, r) in jobs.iter().zip(results) {
            let out = ok(get(r, format!("{cx}: job {}", job.seed)), cx);
            job.check(cx, &out);
        }
        if let Some((i, times)) = deliveries.first_not_once() {
            panic!("{cx}: job {} was delivered {times} times", jobs[i].seed);
        }
        self.tally.tasks += n;
    }

    /// A `map_async` or `starmap_async`: every item its own value.
    fn map(&mut self) {
        let cx = self.cx;
        let n = self.rng.range(1..40) as usize;
        let chunksize = self.rng.range(1..6) as usize;
        let jobs: Vec<Job> = (0..n).map(|_| self.job()).collect();
        let args: Vec<JobArgs> = jobs.iter().map(Job::args).collect();
        let star = self.rng.chance(50);
        let tasks = self.tasks().chunksize(chunksize);
        let pending = if !star {
            tasks.map_async(run_job_item, args)
        } else {
            tasks.starmap_async(run_job, args)
        };
        let outs = ok(get(ok(pending, cx), cx), cx);
        check!(cx, outs.len() == n, "{} results for {n} items", outs.len());
        for (job, out) in jobs.iter().zip(&outs) {
            job.check(cx, out);
        }
        self.tally.maps += 1;
        self.tally.items += n;
    }

    /// An `imap` or `imap_unordered`, consumed to its end: every item exactly once,
    /// with its own value.
    fn imap(&mut self) {
        let cx = self.cx;
        let n = self.rng.range(1..40) as usize;
        let chunksize = self.rng.range(1..5) as usize;
        let in_flight = self.rng.range(1..6) as usize;
        let ordered = self.rng.chance(50);
        let jobs: Vec<Job> = (0..n).map(|_| self.job()).collect();
        let first_seed = jobs[0].seed;
        let args: Vec<JobArgs> = jobs.iter().map(Job::args).collect();
        let (pool, kills) = (Arc::clone(&self.pool), self.kills);
        // The iterator blocks: consume it under a time limit of its own.
        let results = within(RESULT_WAIT * 2, &format!("{cx}"), move || {
            let tasks = pool.tasks().chunksize(chunksize).max_in_flight(in_flight);
            let tasks = match kills {
                Kills::PoolOnly => tasks,
                Kills::Outside => tasks.retries(RETRIES).timeout(TASK_LIMIT),
            };
            let results: Vec<_> = if ordered {
                ok(tasks.imap(run_job_item, args), cx).collect()
            } else {
                ok(tasks.imap_unordered(run_job_item, args), cx).collect()
            };
            results
        });
        check!(
            cx,
            results.len() == n,
            "{} results for {n} items",
            results.len()
        );
        let mut answered = vec![false; n];
        for (pos, r) in results.into_iter().enumerate() {
            let out = ok(r, format!("{cx}: item at {pos}"));
            let i = if ordered {
                pos
            } else {
                out.0.wrapping_sub(first_seed) as usize
            };
            check!(cx, i < n, "a result of job {} is not of this call", out.0);
            check!(cx, !answered[i], "item {i} was answered twice");
            answered[i] = true;
            jobs[i].check(cx, &out);
        }
        self.tally.imaps += 1;
        self.tally.items += n;
    }

    /// The arrays of a bulk operation and the range it maps, with a chunk length
    /// that makes from a few to a few hundred chunks. A mixed bystander makes new
    /// arrays each time (memory the array cache hands back, perhaps), and maps all of
    /// them. A bulk bystander keeps one set for the round and maps a random range of
    /// it, so that its next job is published as soon as the last one returned.
    fn operands(&mut self) -> (Operands, Range<usize>, usize) {
        let cx = self.cx;
        let chunk_len = self.rng.range(64..4096) as usize;
        if !self.bulk_only {
            let len = self.rng.range(1000..70_000) as usize;
            let operands = Operands::new(len, &mut self.rng, cx);
            return (operands, 0..len, chunk_len);
        }
        let operands = match self.kept.take() {
            Some(kept) => kept,
            None => Operands::new(KEPT_LEN, &mut self.rng, cx),
        };
        let start = self.rng.below(KEPT_LEN as u64 / 2) as usize;
        let end = self.rng.range(start as u64 + 1..KEPT_LEN as u64 + 1) as usize;
        (operands, start..end, chunk_len)
    }

    /// Keeps a bulk bystander's arrays for its next operation.
    fn keep(&mut self, operands: Operands) {
        if self.bulk_only {
            self.kept = Some(operands);
        }
    }

    /// A `map_into` of a range: every element of it computed from its own key, and
    /// none outside it touched.
    fn bulk_map(&mut self) {
        let cx = self.cx;
        let (mut o, range, chunk_len) = self.operands();
        o.ys.fill(UNSET);
        let map = self.bulk(chunk_len).range(range.clone());
        ok(map.map_into(&o.xs, &mut o.ys, kernel), cx);
        let wrong = (0..o.xs.len()).find(|&i| match range.contains(&i) {
            true => o.ys[i] != mix(o.xs[i]),
            false => o.ys[i] != UNSET,
        });
        check!(
            cx,
            wrong.is_none(),
            "{range:?} of {} elements in chunks of {chunk_len}: element {wrong:?} is wrong",
            o.xs.len()
        );
        self.tally.bulk_maps += 1;
        self.tally.elements += range.len();
        self.keep(o);
    }

    /// A `zip_map_into` of two inputs into two outputs over a range: every element
    /// of both outputs in it, and none outside it touched.
    fn zip_map(&mut self) {
        let cx = self.cx;
        let (mut o, range, chunk_len) = self.operands();
        o.ys.fill(UNSET);
        o.rs.fill(u32::MAX);
        let map = self.bulk(chunk_len).range(range.clone());
        ok(
            map.zip_map_into((&o.xs, &o.bs), (&mut o.ys, &mut o.rs), zip_kernel),
            cx,
        );
        let wrong = (0..o.xs.len()).find(|&i| match range.contains(&i) {
            true => (o.ys[i], o.rs[i]) != zip_kernel((o.xs[i], o.bs[i])),
            false => (o.ys[i], o.rs[i]) != (UNSET, u32::MAX),
        });
        check!(
            cx,
            wrong.is_none(),
            "{range:?} of {} elements in chunks of {chunk_len}: element {wrong:?} is wrong",
            o.xs.len()
        );
        self.tally.zip_maps += 1;
        self.tally.elements += range.len();
        self.keep(o);
    }

    /// A deterministic reduction of a range, bit-identical to the fixed-tree
    /// reference (its chunks start at the range's start).
    fn reduce(&mut self) {
        let cx = self.cx;
        let (o, range, chunk_len) = self.operands();
        let map = self.bulk(chunk_len).range(range.clone());
        let got = ok(
            map.map_reduce(&o.xs, [0, 0f64.to_bits()], reduce_map, reduce_combine),
            cx,
        );
        let want = reference_reduction(&o.xs[range.clone()], chunk_len);
        check!(
            cx,
            got == want,
            "{range:?} of {} elements in chunks of {chunk_len}: reduced to {got:?}, the \
             fixed tree gives {want:?}",
            o.xs.len()
        );
        self.tally.reductions += 1;
        self.tally.elements += range.len();
        self.keep(o);
    }
}

/// The arrays of a bystander's bulk operations: keys (the element's index and a
/// nonce) and a salted second input; one output for a map, two for a zip map.
struct Operands {
    xs: SharedArray<u64>,
    bs: SharedArray<u32>,
    ys: SharedArray<u64>,
    rs: SharedArray<u32>,
}

impl Operands {
    fn new(len: usize, rng: &mut Rng, cx: Cx) -> Operands {
        let nonce = rng.below(1 << 29);
        let salt = rng.next_u64() as u32;
        let bs = (0..len as u32).map(|i| i.wrapping_mul(0x9E37_79B9) ^ salt);
        Operands {
            xs: ok(
                SharedArray::try_from_iter((0..len as u64).map(|i| i | (nonce << 32))),
                cx,
            ),
            bs: ok(SharedArray::try_from_iter(bs), cx),
            ys: ok(SharedArray::filled(len, UNSET), cx),
            rs: ok(SharedArray::filled(len, u32::MAX), cx),
        }
    }
}
