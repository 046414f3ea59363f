//! How shmpool scales with its worker count, against rayon with as many threads:
//! `map_into` (numpy's `np.sqrt(x, out=y)`), `sum`, and `apply` round trips, at 1, 2,
//! 4, … workers up to the machine's cores. `scripts/scaling` runs it with the full
//! sizes (2^26 f64, one worker count per power of two up to `nproc`); on a machine
//! with more cores than ours, that is the one command to run (`docs/BENCHMARKS.md`).
//!
//! ```text
//! cargo run --release --example scaling -- [log2 of the length, default 26] [max workers, default nproc]
//! ```
//!
//! Each figure is the median of several timed runs after warm-up runs; each result is
//! checked against a sequential reference before it is timed. The ratio is rayon's
//! time over shmpool's: above 1, shmpool is faster.

use std::time::{Duration, Instant};

use rayon::prelude::*;
use shmpool::{Pool, SharedArray};

/// Timed runs per figure (the median is reported).
const RUNS: usize = 7;
/// Untimed runs first.
const WARMUP: usize = 2;
/// `apply` round trips per figure.
const ROUND_TRIPS: usize = 2000;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The median time of `f` over [`RUNS`] runs, after [`WARMUP`] untimed ones.
fn time(mut f: impl FnMut()) -> Duration {
    for _ in 0..WARMUP {
        f();
    }
    median(
        (0..RUNS)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}

/// 1, 2, 4, … up to `max`, and `max` itself.
fn worker_counts(max: usize) -> Vec<usize> {
    let mut counts: Vec<usize> = std::iter::successors(Some(1usize), |n| n.checked_mul(2))
        .take_while(|&n| n <= max)
        .collect();
    if counts.last() != Some(&max) {
        counts.push(max);
    }
    counts
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.2} µs")
    }
}

/// One row: the operation, the worker count, shmpool's and rayon's times.
fn row(what: &str, n: usize, ours: Duration, rayon: Duration) {
    let ratio = rayon.as_secs_f64() / ours.as_secs_f64();
    println!(
        "{what:<22} {n:>4} {:>12} {:>12} {ratio:>8.2}x",
        fmt(ours),
        fmt(rayon)
    );
}

fn main() -> shmpool::Result<()> {
    let mut args = std::env::args().skip(1);
    let log2: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(26);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let max: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(cores);
    let len = 1usize << log2;

    let x = SharedArray::try_from_iter((0..len).map(|i| i as f64 + 0.5))?;
    let mut y = SharedArray::<f64>::zeroed(len)?;
    // rayon's arrays: plain Vecs, written once so no first touch is timed.
    let rx: Vec<f64> = x.to_vec();
    let mut ry = vec![0.0f64; len];
    let expected_sqrt: Vec<f64> = rx.iter().map(|v| v.sqrt()).collect();
    // An integer-valued input, so the sum is exact whatever the order.
    let ints = SharedArray::try_from_iter((0..len).map(|i| (i % 1024) as f64))?;
    let rints: Vec<f64> = ints.to_vec();
    let expected_sum: f64 = rints.iter().sum();

    println!(
        "scaling over 2^{log2} f64 ({} MiB per array), up to {max} workers on {cores} cores",
        (len * 8) >> 20
    );
    println!(
        "{:<22} {:>4} {:>12} {:>12} {:>9}",
        "operation", "n", "shmpool", "rayon", "ratio"
    );
    for n in worker_counts(max) {
        let pool = Pool::new(n)?;
        let threads = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .expect("a rayon pool");

        // map_into: y = sqrt(x).
        pool.map_into(&x, &mut y, |v: f64| v.sqrt())?;
        assert!(
            y.iter()
                .zip(&expected_sqrt)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        let ours = time(|| {
            pool.map_into(&x, &mut y, |v: f64| v.sqrt())
                .expect("map_into")
        });
        threads.install(|| {
            ry.par_iter_mut()
                .zip(rx.par_iter())
                .for_each(|(o, v)| *o = v.sqrt());
        });
        assert!(
            ry.iter()
                .zip(&expected_sqrt)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        let theirs = time(|| {
            threads.install(|| {
                ry.par_iter_mut()
                    .zip(rx.par_iter())
                    .for_each(|(o, v)| *o = v.sqrt());
            })
        });
        row("map_into (sqrt)", n, ours, theirs);

        // sum.
        assert_eq!(pool.bulk().sum(&ints)?, expected_sum);
        let ours = time(|| {
            std::hint::black_box(pool.bulk().sum(&ints).expect("sum"));
        });
        assert_eq!(
            threads.install(|| rints.par_iter().sum::<f64>()),
            expected_sum
        );
        let theirs = time(|| {
            std::hint::black_box(threads.install(|| rints.par_iter().sum::<f64>()));
        });
        row("sum", n, ours, theirs);

        // apply round trips: one small task at a time, submitted and awaited.
        assert_eq!(pool.apply(|a: u64| a + 1, (41,))?, 42);
        let ours = median(
            (0..ROUND_TRIPS)
                .map(|i| {
                    let start = Instant::now();
                    let r = pool.apply(|a: u64| a + 1, (i as u64,)).expect("apply");
                    let took = start.elapsed();
                    assert_eq!(r, i as u64 + 1);
                    took
                })
                .collect(),
        );
        let theirs = median(
            (0..ROUND_TRIPS)
                .map(|i| {
                    let start = Instant::now();
                    let (tx, rx) = std::sync::mpsc::channel();
                    threads.spawn(move || {
                        let _ = tx.send(std::hint::black_box(i as u64) + 1);
                    });
                    let r = rx.recv().expect("rayon's answer");
                    let took = start.elapsed();
                    assert_eq!(r, i as u64 + 1);
                    took
                })
                .collect(),
        );
        row("apply round trip", n, ours, theirs);
    }
    println!("all results checked");
    Ok(())
}
