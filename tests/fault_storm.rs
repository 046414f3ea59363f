//! A seeded, randomized fault storm, once per start method.
//!
//! For a time budget, rounds of: a pool with random settings (workers, maxtasksperchild,
//! a task timeout), a killer thread that SIGKILLs and SIGSTOPs its workers at random,
//! and random work (apply_async, map, starmap, imap, imap_unordered, bulk maps whose
//! kernels kill their own worker, callbacks that submit work) with payloads on both
//! sides of the inline limit, up to a few MiB. Every payload is derived from its
//! task's seed, so every result is checked: each task is answered exactly once, with
//! exactly its own value or with a death or timeout that names it.
//!
//! * `SHMPOOL_STORM_SEED=<u64, decimal or 0x-hex>`: replay a storm (the operations
//!   replay exactly; the killer's timing cannot). Default: from the clock.
//! * `SHMPOOL_STORM_SECS=<n>`: the budget per start method. Default: 15.
//! * `SHMPOOL_STORM_SKIP=bulk,nested,...`: leave out kinds of operation (names as in
//!   `Op::NAMES`), to tell failures apart.
//!
//! Every failure message starts with the start method and the seed.

mod common;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use common::{
    Deliveries, RESULT_WAIT, RaiseOnDrop, Rng, die, failed_ranges, first_time, fork_server_of, get,
    ok, pattern, pattern_mismatch, remove_markers, signal_worker, wait_until, within, worker_pids,
};
use shmpool::{Callbacks, Error, Pool, SharedArray, StartMethod, Work};

#[test]
fn storm_fork() {
    storm(StartMethod::Fork);
}

#[test]
fn storm_fork_server() {
    storm(StartMethod::ForkServer);
}

#[test]
fn storm_spawn() {
    storm(StartMethod::Spawn);
}

// ---------------------------------------------------------------------------------
// Configuration and failure context
// ---------------------------------------------------------------------------------

const DEFAULT_SECS: u64 = 15;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

fn storm_seed(method: StartMethod) -> u64 {
    env_u64("SHMPOOL_STORM_SEED").unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let salt = match method {
            StartMethod::Fork => 1u64,
            StartMethod::ForkServer => 2,
            _ => 3,
        };
        (now.as_nanos() as u64) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    })
}

fn skipped() -> HashSet<String> {
    std::env::var("SHMPOOL_STORM_SKIP")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Where in the storm we are, for failure messages.
#[derive(Clone, Copy, Debug)]
struct Cx {
    round: usize,
    op: usize,
    name: &'static str,
}

impl Cx {
    /// `op` outside the random operations (building the pool, the final check).
    const NO_OP: usize = usize::MAX;
}

impl fmt::Display for Cx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.op {
            Cx::NO_OP => write!(f, "round {}, {}", self.round, self.name),
            op => write!(f, "round {}, op {op} ({})", self.round, self.name),
        }
    }
}

/// `assert!` with the storm's position in front of the message. (The method and the
/// seed are put in front of every failure by `storm`.)
macro_rules! check {
    ($cx:expr, $cond:expr, $($fmt:tt)+) => {
        assert!($cond, "{}: {}", $cx, format_args!($($fmt)+))
    };
}

/// Runs the storm of one start method under a time limit, and fails with the
/// method and the seed in front of whatever went wrong.
fn storm(method: StartMethod) {
    let seed = storm_seed(method);
    let budget = Duration::from_secs(env_u64("SHMPOOL_STORM_SECS").unwrap_or(DEFAULT_SECS));
    let header = format!("fault storm, {method:?}, SHMPOOL_STORM_SEED={seed:#x}");
    eprintln!("{header}: budget {budget:?}");
    let limit = budget + Duration::from_secs(120);
    let result = std::panic::catch_unwind(|| {
        within(limit, "fault storm", move || {
            run_storm(method, seed, budget)
        })
    });
    match result {
        Ok(summary) => eprintln!("{header}: {summary}"),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            panic!("{header}: {message}");
        }
    }
}

fn run_storm(method: StartMethod, seed: u64, budget: Duration) -> String {
    let mut rng = Rng::new(seed);
    let skip = skipped();
    let deadline = Instant::now() + budget;
    let mut totals = Totals::default();
    let mut round = 0;
    while round == 0 || Instant::now() < deadline {
        Round::new(method, round, &mut rng, &skip).run(deadline, &mut totals);
        round += 1;
    }
    format!("{round} rounds; {totals:?}")
}

/// What the storm did, for the summary line.
#[derive(Debug, Default)]
struct Totals {
    ops: usize,
    tasks_ok: usize,
    tasks_failed: usize,
    bulk_ok: usize,
    bulk_failed: usize,
    kills: usize,
    stops: usize,
}

// ---------------------------------------------------------------------------------
// Jobs: a task's arguments and result, both derived from its seed
// ---------------------------------------------------------------------------------

/// Salt of a result's pattern, so that it differs from its argument's.
const RESULT_SALT: u64 = 0xA5A5_5A5A_0FF0_F00F;

/// The arguments of `run_job`: seed, argument length, argument, result length, and
/// how long the task works (µs).
type JobArgs = (u64, usize, Vec<u8>, usize, u64);

/// In a worker: checks the argument against its pattern (a corrupted one fails the
/// task with a panic, which the storm reports), works a while (so that the killer
/// hits busy workers too), and returns the seed and the result.
fn run_job(
    seed: u64,
    arg_len: usize,
    arg: Vec<u8>,
    out_len: usize,
    work_us: u64,
) -> (u64, Vec<u8>) {
    if let Some(wrong) = pattern_mismatch(seed, arg_len, &arg) {
        panic!("job {seed}: the worker got a corrupted argument: {wrong}");
    }
    std::thread::sleep(Duration::from_micros(work_us));
    (seed, pattern(seed ^ RESULT_SALT, out_len))
}

/// `run_job` over one tuple, for `map` and `imap`.
fn run_job_item(args: JobArgs) -> (u64, Vec<u8>) {
    run_job(args.0, args.1, args.2, args.3, args.4)
}

#[derive(Clone, Copy, Debug)]
struct Job {
    seed: u64,
    arg_len: usize,
    out_len: usize,
    work_us: u64,
}

impl Job {
    fn args(&self) -> JobArgs {
        (
            self.seed,
            self.arg_len,
            pattern(self.seed, self.arg_len),
            self.out_len,
            self.work_us,
        )
    }

    /// Fails unless `out` is exactly this job's result.
    fn check(&self, cx: Cx, out: &(u64, Vec<u8>)) {
        check!(
            cx,
            out.0 == self.seed,
            "job {} got the result of job {}",
            self.seed,
            out.0
        );
        if let Some(wrong) = pattern_mismatch(self.seed ^ RESULT_SALT, self.out_len, &out.1) {
            panic!("{cx}: job {} ({self:?}): wrong result: {wrong}", self.seed);
        }
    }
}

/// A payload length: mostly around the 72-byte inline limit and a page, sometimes
/// up to 256 KiB, rarely up to 3 MiB.
fn payload_len(rng: &mut Rng) -> usize {
    let n = match rng.below(100) {
        0..40 => rng.range(0..100),
        40..70 => rng.range(100..8193),
        70..92 => rng.range(8193..(256 << 10)),
        92..98 => rng.range((256 << 10)..(1 << 20) + 4097),
        _ => rng.range((1 << 20)..(3 << 20)),
    };
    n as usize
}

/// The task a death or timeout names, for `apply`: `Work::Task(id)`.
fn failed_task(e: &Error) -> Option<u64> {
    match e {
        Error::WorkerDied {
            work: Work::Task(id),
            ..
        }
        | Error::Timeout {
            work: Work::Task(id),
            ..
        } => Some(*id),
        _ => None,
    }
}

/// The items a death or timeout names, for `map`, `starmap` and `imap`.
fn failed_items(e: &Error) -> Option<Range<usize>> {
    match e {
        Error::WorkerDied {
            work: Work::Items(r),
            ..
        }
        | Error::Timeout {
            work: Work::Items(r),
            ..
        } => Some(r.clone()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------
// The killer
// ---------------------------------------------------------------------------------

/// How the killer behaves in one round.
#[derive(Clone, Debug)]
struct KillerPlan {
    /// Pause between two blows.
    every: Range<u64>,
    /// Percent of blows that SIGSTOP instead of SIGKILL.
    stop_percent: u64,
    /// How long a stopped worker stays stopped (ms). Longer than the round's task
    /// timeout when it has one: then the timeout must kill it.
    stop_ms: Range<u64>,
}

/// Until `stop`: SIGKILLs random workers of `pool`, or SIGSTOPs one (at most one at
/// a time) and SIGCONTs it later. Continues every stopped worker before it returns.
/// Returns (kills, stops).
fn killer(
    pool: &Pool,
    server: i32,
    stop: &AtomicBool,
    mut rng: Rng,
    plan: KillerPlan,
) -> (usize, usize) {
    let (mut kills, mut stops) = (0, 0);
    let mut stopped: Option<(i32, Instant)> = None;
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(rng.range(plan.every.clone())));
        if let Some((pid, until)) = stopped {
            if Instant::now() >= until {
                signal_worker(pid, server, libc::SIGCONT);
                stopped = None;
            }
        }
        let pids = worker_pids(pool);
        if pids.is_empty() {
            continue;
        }
        let pid = rng.pick(&pids);
        if stopped.is_none() && rng.chance(plan.stop_percent) {
            if signal_worker(pid, server, libc::SIGSTOP) {
                let ms = rng.range(plan.stop_ms.clone());
                stopped = Some((pid, Instant::now() + Duration::from_millis(ms)));
                stops += 1;
            }
        } else if signal_worker(pid, server, libc::SIGKILL) {
            kills += 1;
        }
    }
    if let Some((pid, _)) = stopped {
        signal_worker(pid, server, libc::SIGCONT);
    }
    (kills, stops)
}

// ---------------------------------------------------------------------------------
// A round: one pool, one killer, a few random operations
// ---------------------------------------------------------------------------------

/// The kinds of operation.
#[derive(Clone, Copy, Debug)]
enum Op {
    Apply,
    Map,
    Starmap,
    Imap,
    ImapUnordered,
    Bulk,
    Nested,
}

impl Op {
    const ALL: [Op; 7] = [
        Op::Apply,
        Op::Map,
        Op::Starmap,
        Op::Imap,
        Op::ImapUnordered,
        Op::Bulk,
        Op::Nested,
    ];
    const NAMES: [&'static str; 7] = [
        "apply",
        "map",
        "starmap",
        "imap",
        "imap_unordered",
        "bulk",
        "nested",
    ];

    fn name(self) -> &'static str {
        Op::NAMES[self as usize]
    }
}

struct Round<'a> {
    round: usize,
    rng: &'a mut Rng,
    skip: &'a HashSet<String>,
    pool: Arc<Pool>,
    server: i32,
    /// The pool's task timeout, if it has one (bulk maps get it as chunk timeout).
    timeout: Option<Duration>,
    /// The next job seed: unique across the storm's rounds.
    next_seed: u64,
    cx: Cx,
}

impl<'a> Round<'a> {
    fn new(
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

    fn job(&mut self) -> Job {
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

    fn jobs(&mut self, n: usize) -> Vec<Job> {
        (0..n).map(|_| self.job()).collect()
    }

    fn run(mut self, deadline: Instant, totals: &mut Totals) {
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
            Op::Nested => self.nested(totals),
        }
    }

    /// A batch of apply_async, some with a time limit of their own; each task's
    /// callbacks count its deliveries.
    fn apply(&mut self, totals: &mut Totals) {
        let cx = self.cx;
        let n = self.rng.range(1..30) as usize;
        let jobs = self.jobs(n);
        let deliveries = Deliveries::new(n);
        let results: Vec<_> = jobs
            .iter()
            .enumerate()
            .map(|(i, job)| {
                let mut tasks = self.pool.tasks();
                if self.rng.chance(20) {
                    tasks = tasks.timeout(Duration::from_millis(self.rng.range(300..2000)));
                }
                if self.rng.chance(30) {
                    tasks = tasks.retries(self.rng.pick(&[1u32, 2, 5]));
                }
                ok(
                    tasks.apply_async_with(run_job, job.args(), deliveries.callbacks(i)),
                    cx,
                )
            })
            .collect();
        let mut named = HashSet::new();
        for (job, r) in jobs.iter().zip(results) {
            match get(r, format!("{cx}: job {}", job.seed)) {
                Ok(out) => {
                    job.check(cx, &out);
                    totals.tasks_ok += 1;
                }
                Err(e) => {
                    let id = failed_task(&e);
                    check!(
                        cx,
                        id.is_some(),
                        "job {}: unexpected error {e} ({e:?})",
                        job.seed
                    );
                    check!(
                        cx,
                        named.insert(id),
                        "job {}: {e} names a task twice",
                        job.seed
                    );
                    totals.tasks_failed += 1;
                }
            }
        }
        if let Some((i, times)) = deliveries.first_not_once() {
            panic!("{cx}: job {} was delivered {times} times", jobs[i].seed);
        }
    }

    /// One `map` or `starmap` (async, waited for with a limit): all right values,
    /// or the error of a chunk that names items of this call.
    fn map(&mut self, kind: Op, totals: &mut Totals) {
        let cx = self.cx;
        let n = self.rng.range(1..60) as usize;
        let chunksize = self.rng.range(1..9) as usize;
        let jobs = self.jobs(n);
        let args: Vec<JobArgs> = jobs.iter().map(Job::args).collect();
        let retries = self.rng.pick(&[0u32, 0, 1, 3]);
        let tasks = self.pool.tasks().chunksize(chunksize).retries(retries);
        let pending = match kind {
            Op::Map => tasks.map_async(run_job_item, args),
            _ => tasks.starmap_async(run_job, args),
        };
        match get(ok(pending, cx), cx) {
            Ok(outs) => {
                check!(cx, outs.len() == n, "{} results for {n} items", outs.len());
                for (job, out) in jobs.iter().zip(&outs) {
                    job.check(cx, out);
                }
                totals.tasks_ok += n;
            }
            Err(e) => {
                let items = failed_items(&e);
                check!(
                    cx,
                    items
                        .as_ref()
                        .is_some_and(|r| !r.is_empty() && r.end <= n && r.len() <= chunksize),
                    "{n} items in chunks of {chunksize}: unexpected error {e} ({e:?})"
                );
                totals.tasks_failed += n;
            }
        }
    }

    /// One `imap` or `imap_unordered`: every item answered exactly once, with its
    /// own value or an error naming its chunk.
    fn imap(&mut self, kind: Op, totals: &mut Totals) {
        let cx = self.cx;
        let n = self.rng.range(1..60) as usize;
        let chunksize = self.rng.range(1..9) as usize;
        let jobs = self.jobs(n);
        let first_seed = jobs[0].seed;
        let args: Vec<JobArgs> = jobs.iter().map(Job::args).collect();
        let in_flight = self.rng.range(1..6) as usize;
        let pool = Arc::clone(&self.pool);
        // The iterator blocks: consume it under a time limit of its own.
        let results = within(RESULT_WAIT * 2, &format!("{cx}"), move || {
            let tasks = pool.tasks().chunksize(chunksize).max_in_flight(in_flight);
            let results: Vec<_> = match kind {
                Op::Imap => ok(tasks.imap(run_job_item, args), cx).collect(),
                _ => ok(tasks.imap_unordered(run_job_item, args), cx).collect(),
            };
            results
        });
        check!(
            cx,
            results.len() == n,
            "{} results for {n} items",
            results.len()
        );
        let mut answers = vec![0u32; n];
        let mut errors_per_chunk: HashMap<Range<usize>, usize> = HashMap::new();
        for (pos, r) in results.into_iter().enumerate() {
            match r {
                Ok(out) => {
                    // In order, position `pos` is item `pos`; unordered, the seed says.
                    let i = match kind {
                        Op::Imap => pos,
                        _ => out.0.wrapping_sub(first_seed) as usize,
                    };
                    check!(cx, i < n, "a result of job {} is not of this call", out.0);
                    jobs[i].check(cx, &out);
                    answers[i] += 1;
                    totals.tasks_ok += 1;
                }
                Err(e) => {
                    let items = failed_items(&e);
                    let fits =
                        |r: &Range<usize>| !r.is_empty() && r.end <= n && r.len() <= chunksize;
                    check!(
                        cx,
                        items.as_ref().is_some_and(fits),
                        "item at {pos}: unexpected error {e} ({e:?})"
                    );
                    let items = items.unwrap();
                    if matches!(kind, Op::Imap) {
                        check!(cx, items.contains(&pos), "item {pos}: {e} names {items:?}");
                    }
                    *errors_per_chunk.entry(items).or_default() += 1;
                    totals.tasks_failed += 1;
                }
            }
        }
        // A failed chunk fails each of its items once.
        for (items, count) in errors_per_chunk {
            check!(
                cx,
                count == items.len(),
                "{count} errors for the {} items {items:?}",
                items.len()
            );
            items.for_each(|i| answers[i] += 1);
        }
        let wrong = answers.iter().position(|&a| a != 1);
        check!(
            cx,
            wrong.is_none(),
            "item {wrong:?} was answered {:?} times",
            wrong.map(|i| answers[i])
        );
    }

    /// `apply_async` whose success callback makes a blocking `apply` on the same pool.
    fn nested(&mut self, totals: &mut Totals) {
        let cx = self.cx;
        let (outer, inner) = (self.job(), self.job());
        let (tx, rx) = mpsc::channel();
        let pool = Arc::clone(&self.pool);
        let callbacks = Callbacks::new().on_success(move |_: &(u64, Vec<u8>)| {
            let _ = tx.send(pool.apply(run_job, inner.args()));
        });
        let r = ok(
            self.pool.apply_async_with(run_job, outer.args(), callbacks),
            cx,
        );
        // The callback runs only if the outer task succeeds; otherwise it is dropped,
        // and with it the sender.
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Ok(out)) => {
                inner.check(cx, &out);
                totals.tasks_ok += 1;
            }
            Ok(Err(e)) => {
                check!(
                    cx,
                    failed_task(&e).is_some(),
                    "nested apply: unexpected error {e} ({e:?})"
                );
                totals.tasks_failed += 1;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("{cx}: an apply inside a success callback did not return in 30 s (deadlock)")
            }
        }
        match get(r, cx) {
            Ok(out) => outer.check(cx, &out),
            Err(e) => check!(
                cx,
                failed_task(&e).is_some(),
                "outer task: unexpected error {e} ({e:?})"
            ),
        }
    }

    /// A bulk map whose kernel kills its worker at chosen elements: always at some,
    /// only the first time at others (so that retries can succeed). On error, every
    /// element outside the ranges the error names is right, and every element that
    /// always kills is inside them.
    fn bulk(&mut self, totals: &mut Totals) {
        let cx = self.cx;
        let len = self.rng.range(1000..100_000) as usize;
        let chunk_len = self.rng.range(100..5000) as usize;
        let retries = self.rng.pick(&[0u32, 0, 1, 2]);
        let nonce = self.rng.below(1 << 29);
        let deaths = self.rng.below(4) as usize;
        let mut xs = ok(
            SharedArray::try_from_iter((0..len as u64).map(|i| i | (nonce << 32))),
            cx,
        );
        let mut always = Vec::new();
        let mut once = Vec::new();
        for _ in 0..deaths {
            let at = self.rng.below(len as u64) as usize;
            if retries > 0 && self.rng.chance(60) {
                xs[at] |= DIE_ONCE;
                once.push(xs[at] & KEY);
            } else {
                xs[at] |= DIE_ALWAYS;
                always.push(at);
            }
        }
        let mut ys = ok(SharedArray::<u64>::filled(len, UNSET), cx);
        let mut map = self.pool.bulk().chunk_len(chunk_len).retries(retries);
        if let Some(t) = self.timeout {
            map = map.chunk_timeout(t);
        }
        let r = map.map_into(&xs, &mut ys, storm_kernel);
        remove_markers("storm-once", self.server, once);
        let what = format!(
            "{len} elements in chunks of {chunk_len}, retries {retries}, always dying at \
             {always:?}"
        );
        let failed = match r {
            Ok(()) => {
                check!(cx, always.is_empty(), "{what}: the map succeeded");
                totals.bulk_ok += 1;
                Vec::new()
            }
            Err(e) => {
                let ranges = match &e {
                    Error::KernelPanicked { .. } => None,
                    e => failed_ranges(e),
                };
                check!(cx, ranges.is_some(), "{what}: unexpected error {e} ({e:?})");
                let ranges = ranges.unwrap();
                let unnamed = always
                    .iter()
                    .find(|&&at| !ranges.iter().any(|r| r.contains(&at)));
                check!(
                    cx,
                    unnamed.is_none(),
                    "{what}: {e} does not name element {unnamed:?}"
                );
                totals.bulk_failed += 1;
                ranges
            }
        };
        let wrong =
            (0..len).find(|&i| !failed.iter().any(|r| r.contains(&i)) && ys[i] != mix(xs[i] & KEY));
        check!(
            cx,
            wrong.is_none(),
            "{what}: element {wrong:?} is wrong outside the failed ranges {failed:?}"
        );
    }
}

// ---------------------------------------------------------------------------------
// The bulk kernel
// ---------------------------------------------------------------------------------

/// Input flag: the kernel kills its worker at this element, every time.
const DIE_ALWAYS: u64 = 1 << 63;
/// Input flag: the kernel kills its worker at this element the first time only.
const DIE_ONCE: u64 = 1 << 62;
/// The element's key: its index and the map's nonce, without the flags.
const KEY: u64 = DIE_ONCE - 1;
/// What an output element holds before the map writes it.
const UNSET: u64 = u64::MAX;

fn mix(v: u64) -> u64 {
    (v ^ (v >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ 0x1234
}

fn storm_kernel(v: u64) -> u64 {
    if v & DIE_ALWAYS != 0 || (v & DIE_ONCE != 0 && first_time("storm-once", v & KEY)) {
        die();
    }
    mix(v & KEY)
}

// ---------------------------------------------------------------------------------
// Task retries (`Tasks::retries`, `PoolBuilder::task_retries`)
// ---------------------------------------------------------------------------------

fn die_once_task(key: u64) -> u64 {
    if first_time("storm-task-once", key) {
        die();
    }
    key * 3
}

fn die_always_task() -> u64 {
    die()
}

/// A task whose worker dies is rerun up to n times: delivered exactly once, and
/// `WorkerDied` only after n + 1 deaths.
#[test]
fn task_retries_rerun_tasks_whose_worker_died() {
    within(Duration::from_secs(120), "task retries", || {
        for method in [
            StartMethod::Fork,
            StartMethod::ForkServer,
            StartMethod::Spawn,
        ] {
            task_retries(method);
        }
    });
}

fn task_retries(method: StartMethod) {
    let what = format!("{method:?}");
    // Deterministic: dies once, retried once: Ok, delivered once.
    let pool = ok(
        Pool::builder().processes(2).start_method(method).build(),
        &what,
    );
    let server = fork_server_of(&pool);
    let keys: Vec<u64> = (0..20).collect();
    remove_markers("storm-task-once", server, keys.iter().copied());
    let deliveries = Deliveries::new(keys.len());
    let results: Vec<_> = keys
        .iter()
        .map(|&k| {
            ok(
                pool.tasks().retries(1).apply_async_with(
                    die_once_task,
                    (k,),
                    deliveries.callbacks(k as usize),
                ),
                &what,
            )
        })
        .collect();
    for (k, r) in keys.iter().zip(results) {
        assert_eq!(ok(get(r, &what), &what), k * 3, "{what}: key {k}");
    }
    assert_eq!(deliveries.first_not_once(), None, "{what}");
    remove_markers("storm-task-once", server, keys.iter().copied());

    // Always dies, retried twice: WorkerDied after exactly three deaths.
    let before = pool.stats().respawns;
    match get(
        ok(
            pool.tasks().retries(2).apply_async(die_always_task, ()),
            &what,
        ),
        &what,
    ) {
        Err(Error::WorkerDied {
            work: Work::Task(_),
            ..
        }) => {}
        other => panic!("{what}: expected WorkerDied, got {other:?}"),
    }
    let three = wait_until(Duration::from_secs(10), || {
        pool.stats().respawns >= before + 3
    });
    assert!(
        three,
        "{what}: {:?}, {before} respawns before",
        pool.stats()
    );
    assert_eq!(
        pool.stats().respawns,
        before + 3,
        "{what}: reran more than twice"
    );
    drop(pool);

    // Under kills, with the pool's default retries: each task answered exactly once,
    // with its value or WorkerDied.
    let pool = ok(
        Pool::builder()
            .processes(2)
            .start_method(method)
            .task_retries(3)
            .build(),
        &what,
    );
    let server = fork_server_of(&pool);
    let stop = AtomicBool::new(false);
    let plan = KillerPlan {
        every: 5..20,
        stop_percent: 0,
        stop_ms: 0..1,
    };
    const TASKS: usize = 2000;
    let deliveries = Deliveries::new(TASKS);
    std::thread::scope(|s| {
        let killer = s.spawn(|| killer(&pool, server, &stop, Rng::new(7), plan));
        let _stop = RaiseOnDrop(&stop);
        let results: Vec<_> = (0..TASKS)
            .map(|i| {
                ok(
                    pool.apply_async_with(|x: u64| x * 5, (i as u64,), deliveries.callbacks(i)),
                    &what,
                )
            })
            .collect();
        for (i, r) in results.into_iter().enumerate() {
            match get(r, &what) {
                Ok(v) => assert_eq!(v, i as u64 * 5, "{what}: task {i}"),
                Err(e) => assert!(failed_task(&e).is_some(), "{what}: task {i}: {e:?}"),
            }
        }
        drop(_stop);
        killer.join().unwrap();
    });
    assert_eq!(deliveries.first_not_once(), None, "{what}");
}
