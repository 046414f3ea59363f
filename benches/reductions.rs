//! The reductions numpy users reach for, against rayon and a sequential loop in
//! one run: `mean` and `var` over 2^24 f64, and the sums along axis 0 (a value per
//! column) and axis 1 (a value per row) of a 4096 × 4096 f64 array.
//!
//! ```text
//! cargo bench --bench reductions
//! cargo bench --bench reductions -- sum_axis0     # one group
//! ```
//!
//! Rows of each group:
//! - `seq`: a plain loop on this thread (for `var`, numpy's two passes: the mean,
//!   then `Σ(x − mean)²`; for axis 0, each row added into a vector of column sums);
//! - `rayon`: the idiomatic rayon code on a 2-thread pool, built with this crate's
//!   flags: `par_iter().sum()` (and a second `map(..).sum()` pass for `var`),
//!   `par_chunks(4096).fold(..).reduce(..)` into column sums for axis 0, and
//!   `par_chunks(4096).zip(out.par_iter_mut())` for axis 1;
//! - `rayon_blocks` (axis 0): rayon over blocks of 64 rows, each folded into
//!   column sums by a loop, the blocks' sums added in a reduce: the row-blocked
//!   form a careful rayon user writes;
//! - `shmpool/<level>`: `pool.bulk().mean(&x)`, `.var(&x, 0)`, `.sum_axis(&x, 0,
//!   &mut out)` and `.sum_axis(&x, 1, &mut out)` on a 2-process pool forced to
//!   each SIMD level the CPU supports (`baseline`, `avx2`, `avx512`).
//!
//! Every row's result is checked against the sequential one before it is timed,
//! within a relative 1e-9 (the orders of the additions differ between methods).

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main, measurement::WallTime,
};
use rayon::prelude::*;
use shmpool::{SharedArray, Simd};

#[path = "support/pools.rs"]
mod pools;
use pools::Setup;

const WORKERS: usize = 2;
const LEN: usize = 1 << 24;
const SIDE: usize = 4096;
/// Rows per block of the `rayon_blocks` row.
const BLOCK_ROWS: usize = 64;

/// The pools at each level, and rayon: `support/pools.rs`.
fn setup() -> Setup {
    pools::setup(&[Simd::Baseline, Simd::Avx2, Simd::Avx512], WORKERS)
}

/// `len` values in `[offset, offset + 1)`, from a seeded generator.
fn data(len: usize, seed: u64, offset: f64) -> SharedArray<f64> {
    let mut s = seed;
    SharedArray::try_from_iter((0..len).map(|_| {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        offset + (s >> 11) as f64 / (1u64 << 53) as f64
    }))
    .expect("input")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

fn all_close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(&a, &b)| close(a, b))
}

fn config(group: &mut BenchmarkGroup<'_, WallTime>, bytes: usize) {
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sampling_mode(SamplingMode::Flat);
}

/// `np.mean(x)` and `np.var(x)` over 2^24 f64 (mean 1000.5: a variance that a
/// one-pass formula without a shift would get wrong).
fn mean_and_var(c: &mut Criterion) {
    let s = setup();
    let x = data(LEN, 1, 1000.0);
    let seq_mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    let seq_var = |x: &[f64]| {
        let m = seq_mean(x);
        x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / x.len() as f64
    };
    let rayon_mean = |x: &[f64]| x.par_iter().sum::<f64>() / x.len() as f64;
    let rayon_var = |x: &[f64]| {
        let m = rayon_mean(x);
        x.par_iter().map(|v| (v - m) * (v - m)).sum::<f64>() / x.len() as f64
    };
    let (mean, var) = (seq_mean(&x), seq_var(&x));
    assert!((var - 1.0 / 12.0).abs() < 1e-3, "the data's variance");

    let mut group = c.benchmark_group("mean");
    config(&mut group, LEN * 8);
    group.bench_function(BenchmarkId::new("seq", "2^24"), |b| {
        b.iter(|| seq_mean(black_box(&x)))
    });
    assert!(
        close(s.threads.install(|| rayon_mean(&x)), mean),
        "rayon mean"
    );
    group.bench_function(BenchmarkId::new("rayon", "2^24"), |b| {
        b.iter(|| s.threads.install(|| rayon_mean(black_box(&x))))
    });
    for (level, pool) in &s.pools {
        let got = pool.bulk().mean(&x).expect("mean");
        assert!(close(got, mean), "shmpool mean at {level}: {got} vs {mean}");
        group.bench_function(BenchmarkId::new(format!("shmpool/{level}"), "2^24"), |b| {
            b.iter(|| pool.bulk().mean(black_box(&x)).expect("mean"))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("var");
    config(&mut group, LEN * 8);
    group.bench_function(BenchmarkId::new("seq", "2^24"), |b| {
        b.iter(|| seq_var(black_box(&x)))
    });
    assert!(close(s.threads.install(|| rayon_var(&x)), var), "rayon var");
    group.bench_function(BenchmarkId::new("rayon", "2^24"), |b| {
        b.iter(|| s.threads.install(|| rayon_var(black_box(&x))))
    });
    for (level, pool) in &s.pools {
        let got = pool.bulk().var(&x, 0).expect("var");
        assert!(close(got, var), "shmpool var at {level}: {got} vs {var}");
        group.bench_function(BenchmarkId::new(format!("shmpool/{level}"), "2^24"), |b| {
            b.iter(|| pool.bulk().var(black_box(&x), 0).expect("var"))
        });
    }
    group.finish();
}

/// `acc += row`, element by element.
fn add_row(acc: &mut [f64], row: &[f64]) {
    for (a, v) in acc.iter_mut().zip(row) {
        *a += v;
    }
}

/// Two vectors of column sums added.
fn add_sums(mut a: Vec<f64>, b: Vec<f64>) -> Vec<f64> {
    add_row(&mut a, &b);
    a
}

/// `np.sum(x, axis=0)` and `np.sum(x, axis=1)` over a 4096 × 4096 f64 array.
fn sum_axes(c: &mut Criterion) {
    let s = setup();
    let x = data(SIDE * SIDE, 2, 0.0)
        .reshape(&[SIDE, SIDE])
        .expect("4096 × 4096");
    let seq_columns = |x: &[f64]| {
        let mut acc = vec![0.0; SIDE];
        for row in x.chunks_exact(SIDE) {
            add_row(&mut acc, row);
        }
        acc
    };
    let columns = seq_columns(&x);
    let mut out = SharedArray::filled(SIDE, 0.0f64).expect("output");

    let mut group = c.benchmark_group("sum_axis0");
    config(&mut group, SIDE * SIDE * 8);
    group.bench_function(BenchmarkId::new("seq", "4096^2"), |b| {
        b.iter(|| seq_columns(black_box(&x)))
    });
    let rayon_columns = |x: &[f64]| {
        s.threads.install(|| {
            x.par_chunks(SIDE)
                .fold(
                    || vec![0.0; SIDE],
                    |mut acc, row| {
                        add_row(&mut acc, row);
                        acc
                    },
                )
                .reduce(|| vec![0.0; SIDE], add_sums)
        })
    };
    assert!(all_close(&rayon_columns(&x), &columns), "rayon axis 0");
    group.bench_function(BenchmarkId::new("rayon", "4096^2"), |b| {
        b.iter(|| rayon_columns(black_box(&x)))
    });
    let rayon_blocks = |x: &[f64]| {
        s.threads.install(|| {
            x.par_chunks(SIDE * BLOCK_ROWS)
                .map(seq_columns)
                .reduce(|| vec![0.0; SIDE], add_sums)
        })
    };
    assert!(
        all_close(&rayon_blocks(&x), &columns),
        "rayon axis 0 blocks"
    );
    group.bench_function(BenchmarkId::new("rayon_blocks", "4096^2"), |b| {
        b.iter(|| rayon_blocks(black_box(&x)))
    });
    for (level, pool) in &s.pools {
        out.fill(0.0);
        pool.bulk().sum_axis(&x, 0, &mut out).expect("axis 0");
        assert!(all_close(&out, &columns), "shmpool axis 0 at {level}");
        group.bench_function(
            BenchmarkId::new(format!("shmpool/{level}"), "4096^2"),
            |b| b.iter(|| pool.bulk().sum_axis(black_box(&x), 0, &mut out)),
        );
    }
    group.finish();

    let row_sums: Vec<f64> = x.chunks_exact(SIDE).map(|r| r.iter().sum()).collect();
    let mut group = c.benchmark_group("sum_axis1");
    config(&mut group, SIDE * SIDE * 8);
    let mut rows = vec![0.0; SIDE];
    group.bench_function(BenchmarkId::new("seq", "4096^2"), |b| {
        b.iter(|| {
            for (o, row) in rows.iter_mut().zip(black_box(&x).chunks_exact(SIDE)) {
                *o = row.iter().sum();
            }
        })
    });
    let rayon_rows = |out: &mut [f64]| {
        s.threads.install(|| {
            x.par_chunks(SIDE)
                .zip(out.par_iter_mut())
                .for_each(|(row, o)| *o = row.iter().sum())
        })
    };
    rayon_rows(&mut rows);
    assert!(all_close(&rows, &row_sums), "rayon axis 1");
    group.bench_function(BenchmarkId::new("rayon", "4096^2"), |b| {
        b.iter(|| rayon_rows(&mut rows))
    });
    for (level, pool) in &s.pools {
        out.fill(0.0);
        pool.bulk().sum_axis(&x, 1, &mut out).expect("axis 1");
        assert!(all_close(&out, &row_sums), "shmpool axis 1 at {level}");
        group.bench_function(
            BenchmarkId::new(format!("shmpool/{level}"), "4096^2"),
            |b| b.iter(|| pool.bulk().sum_axis(black_box(&x), 1, &mut out)),
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(15)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = mean_and_var, sum_axes
}
criterion_main!(benches);
