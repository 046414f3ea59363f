//! A round of the storm: one pool with random settings, its kills, and three kinds
//! of thread that use the pool at once:
//!
//! * the main lane: a few random operations of every kind (`Op`);
//! * the canceller: operations whose work the pool kills (cancels in both modes,
//!   dropped futures, timeouts), one after another until the main lane is done;
//! * bystanders (`bystanders.rs`): work of their own, every value checked.
//!
//! The operations themselves are in `ops.rs` (tasks), `bulk.rs` (bulk maps and
//! reductions), `orders.rs` (cancels and dropped futures) and `timeouts.rs`.
//!
//! A round's kills (`Kills`, drawn from the seed) are of one of two kinds:
//!
//! * `Kills::Outside`: a killer thread SIGKILLs and SIGSTOPs random workers. Such a
//!   kill fails whatever its worker ran, so every operation may fail with a death
//!   that names its own work; the bystanders retry (tasks and bulk maps alike) until
//!   they have their values.
//! * `Kills::PoolOnly`: no killer. The only kills are the pool's own: cancels (both
//!   modes; tasks, maps, imaps and bulk maps; from another thread, or by dropping a
//!   future), task and chunk timeouts, and the deaths that bulk kernels plant in
//!   their own chunks; workers also retire (`max_tasks_per_child`). A kill lands only
//!   on the work it targets, so the bystanders run without retries and every one of
//!   them must succeed with its right value; no task operation may see a death.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use shmpool::{CancelMode, Pool, StartMethod};

use super::bystanders::{Bystander, Tally};
use super::jobs::{Job, payload_len};
use super::killer::{KillerPlan, killer};
use super::{Cx, Lane, Totals};
use crate::common::{RaiseOnDrop, Rng, fork_server_of, get, ok, wait_until};

/// Who kills workers in a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kills {
    /// The killer thread, from outside the pool, and the pool's own kills.
    Outside,
    /// Only the pool: cancels, timeouts, and kernels that kill their own worker.
    PoolOnly,
}

/// Percent of rounds whose only kills are the pool's own.
const POOL_ONLY_PERCENT: u64 = 50;

/// Bystander threads per round: one runs only bulk maps, the others every kind of
/// work.
const BYSTANDERS: usize = 2;

/// The kinds of operation.
#[derive(Clone, Copy, Debug)]
pub(super) enum Op {
    Apply,
    Map,
    Starmap,
    Imap,
    ImapUnordered,
    Bulk,
    Reduce,
    Cancel,
    Nested,
    CancelTasks,
    CancelImap,
    DropFutures,
    DropBulkFuture,
    Timeouts,
    ChunkTimeouts,
    CancelBulk,
}

impl Op {
    const ALL: [Op; 16] = [
        Op::Apply,
        Op::Map,
        Op::Starmap,
        Op::Imap,
        Op::ImapUnordered,
        Op::Bulk,
        Op::Reduce,
        Op::Cancel,
        Op::Nested,
        Op::CancelTasks,
        Op::CancelImap,
        Op::DropFutures,
        Op::DropBulkFuture,
        Op::Timeouts,
        Op::ChunkTimeouts,
        Op::CancelBulk,
    ];
    const NAMES: [&'static str; 16] = [
        "apply",
        "map",
        "starmap",
        "imap",
        "imap_unordered",
        "bulk",
        "reduce",
        "cancel",
        "nested",
        "cancel_tasks",
        "cancel_imap",
        "drop_futures",
        "drop_bulk_future",
        "timeouts",
        "chunk_timeouts",
        "cancel_bulk",
    ];

    fn name(self) -> &'static str {
        Op::NAMES[self as usize]
    }

    /// The operations whose work the pool kills: cancels (in `Kill` mode) and
    /// timeouts. The canceller draws from these.
    const POOL_KILLS: [Op; 9] = [
        Op::Bulk,
        Op::Cancel,
        Op::CancelTasks,
        Op::CancelImap,
        Op::DropFutures,
        Op::DropBulkFuture,
        Op::Timeouts,
        Op::ChunkTimeouts,
        Op::CancelBulk,
    ];
    /// The two races of issue 22 (a bulk cancel, a task cancel, each landing as
    /// its worker moves on), which the canceller draws most of the time: each
    /// makes many kill decisions, and a wrong one needs a narrow window.
    const RACES: [Op; 2] = [Op::CancelBulk, Op::CancelTasks];
}

/// Percent of the canceller's operations drawn among `Op::RACES` (the rest among
/// `Op::POOL_KILLS`).
const RACES_PERCENT: u64 = 60;

pub(super) struct Round<'a> {
    round: usize,
    pub(super) rng: &'a mut Rng,
    skip: &'a HashSet<String>,
    pub(super) pool: Arc<Pool>,
    pub(super) server: i32,
    pub(super) kills: Kills,
    /// The pool's task timeout, if it has one (bulk maps get it as chunk timeout).
    /// Only in rounds with the killer: a bystander without retries has no timeout.
    pub(super) timeout: Option<Duration>,
    /// The next job seed: unique across the storm's rounds and the round's lanes.
    next_seed: u64,
    pub(super) cx: Cx,
}

impl<'a> Round<'a> {
    pub(super) fn new(
        method: StartMethod,
        round: usize,
        rng: &'a mut Rng,
        skip: &'a HashSet<String>,
    ) -> Round<'a> {
        let kills = if rng.chance(POOL_ONLY_PERCENT) {
            Kills::PoolOnly
        } else {
            Kills::Outside
        };
        let processes = rng.range(1..4) as usize;
        let max_tasks = rng.pick(&[0u32, 1, 3, 10]);
        let timeout = (kills == Kills::Outside && rng.chance(30))
            .then(|| Duration::from_millis(rng.range(500..2000)));
        let cancel_mode = rng.pick(&[CancelMode::Kill, CancelMode::LetFinish]);
        let mut builder = Pool::builder()
            .processes(processes)
            .start_method(method)
            .max_tasks_per_child(max_tasks)
            .cancel_mode(cancel_mode);
        if let Some(t) = timeout {
            builder = builder.task_timeout(t);
        }
        let cx = Cx {
            round,
            lane: Lane::Main,
            op: Cx::NO_OP,
            name: "build",
        };
        let what = format!(
            "{cx}: kills {kills:?}, {processes} workers, max_tasks_per_child {max_tasks}, \
             timeout {timeout:?}, cancel mode {cancel_mode:?}"
        );
        eprintln!("{what}");
        let pool = Arc::new(ok(builder.build(), &what));
        let server = fork_server_of(&pool);
        Round {
            round,
            rng,
            skip,
            pool,
            server,
            kills,
            timeout,
            next_seed: (round as u64) << 40,
            cx,
        }
    }

    /// Another lane of this round, on the same pool, drawing from `rng`. Its job
    /// seeds are apart from every other lane's: `seeds` (1, 2, ...) times 2^36 above
    /// the round's, where the main lane's stay below 2^36 above them.
    fn lane<'b>(&self, lane: Lane, seeds: u64, rng: &'b mut Rng) -> Round<'b>
    where
        'a: 'b,
    {
        Round {
            round: self.round,
            rng,
            skip: self.skip,
            pool: Arc::clone(&self.pool),
            server: self.server,
            kills: self.kills,
            timeout: self.timeout,
            next_seed: self.next_seed | (seeds << 36),
            cx: Cx { lane, ..self.cx },
        }
    }

    /// Whether a worker may die under work it was not planted in: only with the
    /// killer. In a round of the pool's own kills, a task operation that sees a death
    /// has been hit by a kill meant for other work.
    pub(super) fn outside_kills(&self) -> bool {
        self.kills == Kills::Outside
    }

    pub(super) fn job(&mut self) -> Job {
        self.next_seed += 1;
        Job {
            seed: self.next_seed,
            arg_len: payload_len(self.rng),
            out_len: payload_len(self.rng),
            work_us: if self.rng.chance(50) {
                self.rng.range(100..3000)
            } else {
                0
            },
        }
    }

    pub(super) fn jobs(&mut self, n: usize) -> Vec<Job> {
        (0..n).map(|_| self.job()).collect()
    }

    pub(super) fn run(mut self, deadline: Instant, totals: &mut Totals) {
        let plan = KillerPlan {
            every: match self.rng.below(3) {
                0 => 3..15,
                1 => 10..60,
                _ => 50..200,
            },
            stop_percent: self.rng.pick(&[0, 10, 25]),
            stop_ms: match self.timeout {
                Some(t) => t.as_millis() as u64..3000,
                None => 20..300,
            },
        };
        let killer_rng = Rng::new(self.rng.next_u64());
        let mut canceller_rng = Rng::new(self.rng.next_u64());
        let canceller = self.lane(Lane::Canceller, 1, &mut canceller_rng);
        let bystanders: Vec<Bystander> = (0..BYSTANDERS)
            .map(|b| {
                let cx = Cx {
                    lane: Lane::Bystander(b),
                    ..self.cx
                };
                let seeds = self.next_seed | ((b as u64 + 2) << 36);
                let rng = Rng::new(self.rng.next_u64());
                let bulk_only = b == 0;
                Bystander::new(
                    Arc::clone(&self.pool),
                    self.kills,
                    bulk_only,
                    cx,
                    rng,
                    seeds,
                )
            })
            .collect();

        let ops = self.rng.range(6..20) as usize;
        let stop_killer = AtomicBool::new(false);
        let stop_lanes = AtomicBool::new(false);
        let pool = Arc::clone(&self.pool);
        let server = self.server;
        let kills = self.kills;
        let (ops_run, (blows, stops), cancels, tallies) = std::thread::scope(|s| {
            let killer = (kills == Kills::Outside)
                .then(|| s.spawn(|| killer(&pool, server, &stop_killer, killer_rng, plan)));
            let canceller = s.spawn(|| canceller.run_lane(&stop_lanes));
            let bystanders: Vec<_> = bystanders
                .into_iter()
                .map(|b| s.spawn(|| b.run(&stop_lanes)))
                .collect();
            let stopping = (RaiseOnDrop(&stop_killer), RaiseOnDrop(&stop_lanes));
            let mut ops_run = 0;
            let allowed = self.allowed(&Op::ALL);
            for op in 0..ops {
                if allowed.is_empty() || (Instant::now() >= deadline && op > 0) {
                    break;
                }
                let kind = self.rng.pick(&allowed);
                self.one_op(op, kind, totals);
                ops_run += 1;
            }
            drop(stopping);
            let blows = killer.map_or((0, 0), |k| joined(k.join()));
            let cancels = joined(canceller.join());
            let tallies: Vec<Tally> = bystanders.into_iter().map(|b| joined(b.join())).collect();
            (ops_run, blows, cancels, tallies)
        });
        totals.add_lane(&cancels);
        totals.kills += blows;
        totals.stops += stops;
        match kills {
            Kills::Outside => totals.rounds_killer += 1,
            Kills::PoolOnly => totals.rounds_pool_kills += 1,
        }
        let respawns = pool.stats().respawns;
        totals.respawns += respawns;
        drop(pool);
        let mut tally = Tally::default();
        tallies.iter().for_each(|t| tally.add(t));
        eprintln!(
            "round {}: kills {kills:?}, {ops_run} ops, {} by the canceller ({} tasks and {} \
             bulk maps cancelled, {} futures dropped, {} tasks and {} chunks timed out), \
             {blows} outside kills and {stops} stops, {respawns} respawns; bystanders: {tally}",
            self.round,
            cancels.ops,
            cancels.tasks_cancelled,
            cancels.bulk_cancelled,
            cancels.futures_dropped,
            cancels.tasks_timed_out,
            cancels.chunk_timeouts,
        );
        totals.bystanders.add(&tally);
        let cx = Cx {
            op: Cx::NO_OP,
            name: "bystanders",
            ..self.cx
        };
        check!(
            cx,
            tally.failed == 0,
            "{} of {} bystander operations failed (kills {kills:?}); the first: {}",
            tally.failed,
            tally.ops,
            tally.failures.join(" | ")
        );
        self.finish();
    }

    /// The canceller's loop: operations whose work the pool kills, until `stop` (at
    /// least one). Returns what they did.
    fn run_lane(mut self, stop: &AtomicBool) -> Totals {
        let mut totals = Totals::default();
        let (races, kills) = (self.allowed(&Op::RACES), self.allowed(&Op::POOL_KILLS));
        if kills.is_empty() {
            return totals; // all skipped
        }
        let mut op = 0;
        loop {
            let of = match races.is_empty() || !self.rng.chance(RACES_PERCENT) {
                true => &kills,
                false => &races,
            };
            let kind = self.rng.pick(of);
            self.one_op(op, kind, &mut totals);
            op += 1;
            if stop.load(Ordering::Relaxed) {
                return totals;
            }
        }
    }

    /// After the storm: the pool still works and gives right values, and it drops
    /// promptly.
    fn finish(self) {
        let cx = Cx {
            op: Cx::NO_OP,
            name: "final map",
            ..self.cx
        };
        let squares = ok(
            get(ok(self.pool.map_async(|x: u64| x * x, 0..2000u64), cx), cx),
            cx,
        );
        let wrong = (0..2000u64).find(|&i| squares[i as usize] != i * i);
        check!(cx, wrong.is_none(), "value {wrong:?} is wrong");
        // Callbacks that held the pool have all run: ours is the last reference.
        let last = wait_until(Duration::from_secs(10), || {
            Arc::strong_count(&self.pool) == 1
        });
        check!(cx, last, "a callback still holds the pool");
        let t = Instant::now();
        drop(self.pool);
        check!(
            cx,
            t.elapsed() < Duration::from_secs(10),
            "drop took {:?}",
            t.elapsed()
        );
    }

    /// The operations of `of` not skipped (`SHMPOOL_STORM_SKIP`).
    fn allowed(&self, of: &[Op]) -> Vec<Op> {
        of.iter()
            .copied()
            .filter(|o| !self.skip.contains(o.name()))
            .collect()
    }

    /// Runs operation number `op`, of kind `kind`.
    fn one_op(&mut self, op: usize, kind: Op, totals: &mut Totals) {
        self.cx = Cx {
            op,
            name: kind.name(),
            ..self.cx
        };
        totals.ops += 1;
        match kind {
            Op::Apply => self.apply(totals),
            Op::Map | Op::Starmap => self.map(kind, totals),
            Op::Imap | Op::ImapUnordered => self.imap(kind, totals),
            Op::Bulk => self.bulk(totals),
            Op::Reduce => self.reduce(totals),
            Op::Cancel => self.cancel(totals),
            Op::Nested => self.nested(totals),
            Op::CancelTasks => self.cancel_tasks(totals),
            Op::CancelImap => self.cancel_imap(totals),
            Op::DropFutures => self.drop_futures(totals),
            Op::DropBulkFuture => self.drop_bulk_future(totals),
            Op::Timeouts => self.timeouts(totals),
            Op::ChunkTimeouts => self.chunk_timeouts(totals),
            Op::CancelBulk => self.cancel_bulk(totals),
        }
    }
}

/// What a lane's thread returned; its panic (a failed check) fails the round with
/// the check's own message.
fn joined<T>(r: std::thread::Result<T>) -> T {
    r.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}
