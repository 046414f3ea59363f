//! A round of the storm: one pool with random settings, one killer, a few random
//! operations. The operations themselves are in `ops.rs` (tasks) and `bulk.rs`
//! (bulk maps and reductions).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use shmpool::{Pool, StartMethod};

use super::jobs::{Job, payload_len};
use super::killer::{KillerPlan, killer};
use super::{Cx, Totals};
use crate::common::{RaiseOnDrop, Rng, fork_server_of, get, ok, wait_until};

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
}

impl Op {
    const ALL: [Op; 9] = [
        Op::Apply,
        Op::Map,
        Op::Starmap,
        Op::Imap,
        Op::ImapUnordered,
        Op::Bulk,
        Op::Reduce,
        Op::Cancel,
        Op::Nested,
    ];
    const NAMES: [&'static str; 9] = [
        "apply",
        "map",
        "starmap",
        "imap",
        "imap_unordered",
        "bulk",
        "reduce",
        "cancel",
        "nested",
    ];

    fn name(self) -> &'static str {
        Op::NAMES[self as usize]
    }
}

pub(super) struct Round<'a> {
    round: usize,
    pub(super) rng: &'a mut Rng,
    skip: &'a HashSet<String>,
    pub(super) pool: Arc<Pool>,
    pub(super) server: i32,
    /// The pool's task timeout, if it has one (bulk maps get it as chunk timeout).
    pub(super) timeout: Option<Duration>,
    /// The next job seed: unique across the storm's rounds.
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
        let processes = rng.range(1..4) as usize;
        let max_tasks = rng.pick(&[0u32, 1, 3, 10]);
        let timeout = rng
            .chance(30)
            .then(|| Duration::from_millis(rng.range(500..2000)));
        let mut builder = Pool::builder()
            .processes(processes)
            .start_method(method)
            .max_tasks_per_child(max_tasks);
        if let Some(t) = timeout {
            builder = builder.task_timeout(t);
        }
        let cx = Cx {
            round,
            op: Cx::NO_OP,
            name: "build",
        };
        let what = format!(
            "{cx}: {processes} workers, max_tasks_per_child {max_tasks}, timeout {timeout:?}"
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
            timeout,
            next_seed: (round as u64) << 40,
            cx,
        }
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

        let ops = self.rng.range(6..20) as usize;
        let stop = AtomicBool::new(false);
        let pool = Arc::clone(&self.pool);
        let server = self.server;
        let (kills, stops) = std::thread::scope(|s| {
            let killer = s.spawn(|| killer(&pool, server, &stop, killer_rng, plan));
            let stop_killer = RaiseOnDrop(&stop);
            for op in 0..ops {
                if Instant::now() >= deadline && op > 0 {
                    break;
                }
                self.one_op(op, totals);
            }
            drop(stop_killer);
            killer.join().expect("the killer thread")
        });
        totals.kills += kills;
        totals.stops += stops;
        drop(pool);
        self.finish();
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

    fn one_op(&mut self, op: usize, totals: &mut Totals) {
        let allowed: Vec<Op> = Op::ALL
            .into_iter()
            .filter(|o| !self.skip.contains(o.name()))
            .collect();
        if allowed.is_empty() {
            return;
        }
        let kind = self.rng.pick(&allowed);
        self.cx = Cx {
            round: self.round,
            op,
            name: kind.name(),
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
        }
    }
}
