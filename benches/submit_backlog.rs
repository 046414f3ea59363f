//! Submission never stalls (issue 22, defect 4): the latency of every single
//! `apply_async` and `map_async` call while a million tasks wait in the backlog.
//!
//! ```text
//! cargo bench --bench submit_backlog
//! cargo bench --bench submit_backlog -- --quick      # a short smoke run
//! ```
//!
//! The pool has one worker, kept busy by a first task that sleeps for the whole
//! run, so every later task stays queued: in the submission ring while it has
//! room, then in the parent's backlog. Nothing drains, and each call finds the
//! backlog as deep as all the calls before it left it.
//!
//! * `fill` (printed, not a criterion entry): the first 1,000,000 `apply_async`
//!   calls, each timed, from an empty pool to 10^6 queued. Every growth of the
//!   pending table and the backlog on the way is in these samples; with a
//!   `HashMap` that doubles, one call paid the rehash of ~900,000 entries
//!   (240-410 ms in the issue).
//! * `submit_at_1e6/<how>`, criterion's entries, each call timed alone
//!   (`iter_custom`) with at least 10^6 tasks queued before it:
//!   - `shmpool_apply_async`: one task, `x + 1`;
//!   - `shmpool_map_async_8`: eight items, one task each (`chunksize(1)`);
//!   - `rayon_spawn`: `ThreadPool::spawn` of a closure on a one-thread rayon pool
//!     whose thread is blocked, so its queue holds 10^6 jobs too: a thread pool's
//!     submission with the same backlog;
//!   - `mpsc_send`: `std::sync::mpsc::Sender::send` into an unbounded channel
//!     holding 10^6 messages: the floor, a queue push and nothing else.
//!
//!   Criterion reports mean and median; the bench then prints p50, p90, p99,
//!   p99.9 and the maximum of every call of each entry (warm-up included) to
//!   standard error, twice: wall clock, and the calling thread's CPU time over the
//!   same call. A call descheduled by a busy machine shows in the first only; work
//!   the call does itself (a rehash, its page faults) in both.
//!
//! The goal (issue 22): no single call over 1 ms, whatever the backlog.

use std::hint::black_box;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use shmpool::{AsyncResult, Pool};

#[path = "support/latencies.rs"]
mod latencies;
use latencies::Latencies;

/// Tasks queued before the measured calls.
const QUEUED: usize = 1_000_000;

/// Items of one measured `map_async` call.
const MAP_ITEMS: u64 = 8;

/// The calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`).
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `ts` is.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// One entry's per-call latencies: wall-clock, and the calling thread's CPU time
/// over the same call. On a machine shared with other jobs a call can be
/// descheduled for milliseconds; that shows in the wall-clock tail and not in the
/// CPU time, while work the call itself does (a rehash, page faults) shows in both.
struct Calls {
    wall: Latencies,
    cpu: Latencies,
}

impl Calls {
    fn new(name: &'static str) -> Self {
        Calls {
            wall: Latencies::new(name),
            cpu: Latencies::new(name),
        }
    }

    fn report(self, group: &str, what: &str) {
        self.wall.report(group, &format!("{what}, wall clock"));
        self.cpu.report(group, &format!("{what}, on CPU"));
    }
}

/// Times each of `iters` calls of `call(i)` alone into `calls`, keeping what it
/// returns in `keep` (outside the clock reads), and returns the total wall time.
fn time_calls<T>(
    calls: &mut Calls,
    keep: &mut Vec<T>,
    iters: u64,
    mut call: impl FnMut(u64) -> T,
) -> Duration {
    // No allocation between the clock reads.
    calls.wall.reserve(iters as usize);
    calls.cpu.reserve(iters as usize);
    keep.reserve(iters as usize);
    let mut total = Duration::ZERO;
    for i in 0..iters {
        let cpu = thread_cpu_time();
        let t = Instant::now();
        let kept = call(i);
        let took = t.elapsed();
        let on_cpu = thread_cpu_time().saturating_sub(cpu);
        total += took;
        calls.wall.record(took);
        calls.cpu.record(on_cpu);
        keep.push(kept);
    }
    total
}

fn submit_at_1e6(c: &mut Criterion) {
    let pool = Pool::new(1).expect("start the pool");
    // Keeps the one worker busy for the whole run: nothing queued after it runs.
    let blocker = pool
        .apply_async(|| std::thread::sleep(Duration::from_secs(3600)), ())
        .expect("submit the blocking task");

    let mut applied: Vec<AsyncResult<u64>> = Vec::with_capacity(4 * QUEUED);
    let mut fill = Calls::new("fill");
    time_calls(&mut fill, &mut applied, QUEUED as u64, |i| {
        pool.apply_async(|x: u64| x + 1, (black_box(i),))
            .expect("apply_async")
    });
    fill.report("submit_backlog", "calls from 0 to 10^6 queued");

    let threads = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("start the rayon pool");
    let (release, blocked) = mpsc::channel::<()>();
    threads.spawn(move || {
        let _ = blocked.recv();
    });
    for _ in 0..QUEUED {
        threads.spawn(|| {
            black_box(0u64);
        });
    }
    let (tx, rx) = mpsc::channel::<u64>();
    for i in 0..QUEUED as u64 {
        tx.send(i).expect("send");
    }

    let mut apply = Calls::new("shmpool_apply_async");
    let mut map = Calls::new("shmpool_map_async_8");
    let mut spawn = Calls::new("rayon_spawn");
    let mut send = Calls::new("mpsc_send");
    let mut mapped: Vec<AsyncResult<Vec<u64>>> = Vec::new();
    let mut units: Vec<()> = Vec::new();
    let mut group = c.benchmark_group("submit_at_1e6");
    group.bench_function(apply.wall.name, |b| {
        b.iter_custom(|iters| {
            time_calls(&mut apply, &mut applied, iters, |i| {
                pool.apply_async(|x: u64| x + 1, (black_box(i),))
                    .expect("apply_async")
            })
        })
    });
    group.bench_function(map.wall.name, |b| {
        b.iter_custom(|iters| {
            time_calls(&mut map, &mut mapped, iters, |i| {
                pool.tasks()
                    .chunksize(1)
                    .map_async(|x: u64| x + 1, black_box(i..i + MAP_ITEMS))
                    .expect("map_async")
            })
        })
    });
    group.bench_function(spawn.wall.name, |b| {
        b.iter_custom(|iters| {
            time_calls(&mut spawn, &mut units, iters, |i| {
                threads.spawn(move || {
                    black_box(i);
                })
            })
        })
    });
    group.bench_function(send.wall.name, |b| {
        b.iter_custom(|iters| {
            time_calls(&mut send, &mut units, iters, |i| {
                tx.send(black_box(i)).expect("send")
            })
        })
    });
    group.finish();

    let queued = applied.len() + mapped.len() * MAP_ITEMS as usize;
    for latencies in [apply, map, spawn, send] {
        latencies.report("submit_at_1e6", "calls");
    }
    eprintln!("submit_backlog: {queued} shmpool tasks queued at the end");

    // Nothing ran: the worker is still in the blocking task.
    assert!(applied.iter().take(1000).all(|r| !r.ready()));
    pool.terminate();
    assert!(blocker.get().is_err(), "the blocking task was terminated");
    drop(release);
    drop(rx);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1))
        .sample_size(10);
    targets = submit_at_1e6
}
criterion_main!(benches);
