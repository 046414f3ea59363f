//! Generic tasks against threads: the round trip of one `apply`, a `map` over a
//! million items, and an `imap` that sends items one at a time.
//!
//! ```text
//! cargo bench --bench tasks
//! cargo bench --bench tasks -- --quick             # a short smoke run
//! cargo bench --bench tasks -- apply_round_trip    # one group
//! ```
//!
//! * `apply_round_trip/<how>`: one trivial call, `x + 1`, sent to another thread of
//!   control and its answer awaited, one call at a time:
//!   - `shmpool_apply`: `pool.apply(|x: u64| x + 1, (i,))` on a 2-process pool:
//!     encode, push to the shared-memory ring, a worker runs it, the pool's
//!     collector thread decodes the answer and wakes the caller;
//!   - `rayon_install`: `threads.install(|| i + 1)` on a 2-thread rayon pool from
//!     outside it: inject a job, a rayon thread runs it, the caller waits on a latch.
//!     This is what a thread pool's round trip costs;
//!   - `mpsc_thread`: one thread answering requests from a `std::sync::mpsc`
//!     channel on a second channel: the bare cost of handing a value to another
//!     thread and back, the floor under any pool of threads.
//!
//!   No sequential entry: a direct call of `x + 1` costs nothing to compare with.
//!   Each round trip is timed on its own (`iter_custom`), which adds two
//!   `Instant::now()` calls (tens of ns) to every entry alike. Criterion reports
//!   the mean and median; the bench then prints the p50, p90, p99, p99.9 and the
//!   maximum of every round trip criterion timed for each entry (warm-up included)
//!   to standard error. These come from the same runs as criterion's numbers, so
//!   they need no extra time and obey the same filters and `--quick`.
//! * `map_1e6/<how>`: `x + 1` for 0..1_000_000 u64 collected into a `Vec`:
//!   `pool.map` with the default chunk size (Python's rule: 8 chunks of 125 000
//!   here), rayon's `into_par_iter().map().collect()`, and a sequential loop.
//! * `imap_1e5/<how>`: `x + 1` for 0..100_000 u64, consumed in full by this
//!   thread: shmpool's `imap` with `chunksize(1)` (one task per item, in order,
//!   lazily reading its input), rayon's `par_bridge()` (rayon's way to spread a
//!   sequential iterator over its threads, also one item at a time; unordered, so
//!   its results are summed), and a sequential loop.
//!
//! Each entry's output is checked before it is timed.

use std::hint::black_box;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;
use shmpool::Pool;

#[path = "support/latencies.rs"]
mod latencies;
use latencies::Latencies;

/// Worker processes for shmpool, threads for rayon.
const WORKERS: usize = 2;

/// The pools a group compares: shmpool's first, so that its fork server is forked
/// before this group starts threads of its own.
fn pools() -> (Pool, rayon::ThreadPool) {
    let pool = Pool::new(WORKERS).expect("start the pool");
    let threads = rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .expect("start the rayon pool");
    (pool, threads)
}

fn apply_round_trip(c: &mut Criterion) {
    let (pool, threads) = pools();
    let (requests, inbox) = mpsc::channel::<u64>();
    let (outbox, replies) = mpsc::channel::<u64>();
    let echo = std::thread::spawn(move || {
        for x in inbox {
            if outbox.send(x + 1).is_err() {
                break;
            }
        }
    });

    let mut shm = Latencies::new("shmpool_apply");
    let mut ray = Latencies::new("rayon_install");
    let mut chan = Latencies::new("mpsc_thread");
    let mut group = c.benchmark_group("apply_round_trip");
    group.bench_function(shm.name, |b| {
        b.iter_custom(|iters| {
            time_round_trips(&mut shm, iters, |i| {
                pool.apply(|x: u64| x + 1, (i,)).expect("apply")
            })
        })
    });
    group.bench_function(ray.name, |b| {
        b.iter_custom(|iters| {
            time_round_trips(&mut ray, iters, |i| threads.install(|| black_box(i) + 1))
        })
    });
    group.bench_function(chan.name, |b| {
        b.iter_custom(|iters| {
            time_round_trips(&mut chan, iters, |i| {
                requests.send(i).expect("send a request");
                replies.recv().expect("receive the reply")
            })
        })
    });
    group.finish();
    drop(requests);
    echo.join().expect("the echo thread");

    for latencies in [shm, ray, chan] {
        latencies.report("apply_round_trip", "round trips");
    }
}

fn map_1e6(c: &mut Criterion) {
    const N: u64 = 1_000_000;
    let (pool, threads) = pools();
    let expected: Vec<u64> = (1..=N).collect();
    let shm = || pool.map(|x: u64| x + 1, black_box(0..N)).expect("map");
    let ray = || threads.install(|| black_box(0..N).into_par_iter().map(|x| x + 1).collect());
    let seq = || black_box(0..N).map(|x| x + 1).collect();
    let entries: [(&str, &dyn Fn() -> Vec<u64>); 3] = [
        ("shmpool_map", &shm),
        ("rayon_collect", &ray),
        ("seq", &seq),
    ];

    let mut group = c.benchmark_group("map_1e6");
    group.throughput(Throughput::Elements(N));
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    for (name, run) in entries {
        assert!(run() == expected, "{name}: wrong results");
        group.bench_function(name, |b| b.iter(run));
    }
    group.finish();
}

fn imap_1e5(c: &mut Criterion) {
    const N: u64 = 100_000;
    let (pool, threads) = pools();
    let expected_sum: u64 = (1..=N).sum();

    let mut group = c.benchmark_group("imap_1e5");
    group.throughput(Throughput::Elements(N));
    group.sample_size(10).sampling_mode(SamplingMode::Flat);

    let imap = || {
        pool.tasks()
            .chunksize(1)
            .imap(|x: u64| x + 1, black_box(0..N))
            .expect("imap")
    };
    assert!(
        imap().map(|r| r.expect("item")).eq(1..=N),
        "shmpool_imap: wrong results"
    );
    group.bench_function("shmpool_imap", |b| {
        b.iter(|| imap().map(|r| r.expect("item")).sum::<u64>())
    });

    let bridge = || threads.install(|| black_box(0..N).par_bridge().map(|x| x + 1).sum::<u64>());
    assert_eq!(bridge(), expected_sum, "rayon_par_bridge: wrong sum");
    group.bench_function("rayon_par_bridge", |b| b.iter(bridge));

    // black_box on each item: otherwise the sum folds to a closed form.
    let seq = || (0..N).map(|x| black_box(x) + 1).sum::<u64>();
    assert_eq!(seq(), expected_sum, "seq: wrong sum");
    group.bench_function("seq", |b| b.iter(seq));
    group.finish();
}

/// Runs `round_trip(i)` for `i` in `0..iters`, each timed alone into `latencies`,
/// checks that each answers `i + 1`, and returns the total time for criterion.
fn time_round_trips(
    latencies: &mut Latencies,
    iters: u64,
    mut round_trip: impl FnMut(u64) -> u64,
) -> Duration {
    latencies.reserve(iters as usize); // no allocation between the clock reads
    let mut total = Duration::ZERO;
    for i in 0..iters {
        let t = Instant::now();
        let answer = round_trip(i);
        let took = t.elapsed();
        assert_eq!(answer, i + 1, "{}: wrong answer", latencies.name);
        total += took;
        latencies.record(took);
    }
    total
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = apply_round_trip, map_1e6, imap_1e5
}
criterion_main!(benches);
