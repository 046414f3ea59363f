//! The compute vocabulary against rayon and a sequential loop, all in one run:
//! axpy with a run-time scale, `sum`, `dot` and a 256-bin histogram, counted and
//! weighted, over 2^24 f64, and one 5-point stencil step and a row normalisation
//! over a 4096 × 4096 grid.
//!
//! ```text
//! cargo bench --bench vocabulary
//! cargo bench --bench vocabulary -- axpy      # one group
//! ```
//!
//! Rows of each group:
//! - `seq`: a plain loop on this thread;
//! - `rayon`: the idiomatic rayon code (`par_iter().sum()`, `fold`/`reduce`,
//!   `par_chunks_mut`) on a 2-thread pool, built with this crate's flags;
//! - `rayon_avx2` (axpy, sum, dot, stencil): the same rayon code over blocks, each
//!   run by a loop compiled with `#[target_feature(enable = "avx2,fma")]`; skipped
//!   where the CPU lacks them;
//! - `limit` (axpy, sum, dot, stencil): the same loads and stores on the 2-thread
//!   pool with integer work only (a wrapping sum or an exclusive or of the bits,
//!   a copy for the stencil), compiled for AVX2: what memory allows;
//! - `shmpool/auto`: shmpool on a 2-process pool as `Pool::new` makes it, choosing
//!   its SIMD levels itself (the highest the CPU has, and AVX2 at most for
//!   memory-bound kernels: `Simd`'s docs);
//! - `shmpool/<level>`: the same, forced to each level the CPU supports
//!   (`baseline`, `avx2`, `avx512`) for every kernel.
//!
//! Every row's result is checked against the sequential one before it is timed
//! (exactly for maps and counts, within a relative 1e-9 for floating-point sums,
//! whose order differs between methods).

use std::hint::black_box;
use std::ops::Range;
use std::time::Duration;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use rayon::prelude::*;
use shmpool::{Bins, Grid, GridMut, SharedArray, Simd};

#[path = "support/pools.rs"]
mod pools;
use pools::Setup;

const WORKERS: usize = 2;
const LEN: usize = 1 << 24;
const SIDE: usize = 4096;
const BINS: usize = 256;
/// Elements per block of the `rayon_avx2` and `limit` rows.
const BLOCK: usize = 1 << 14;

/// Loops compiled for AVX2 and FMA, for the `rayon_avx2` and `limit` rows.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    /// Whether this CPU can run them.
    pub fn available() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }

    /// # Safety
    /// The CPU has AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn axpy(a: f64, x: &[f64], y: &[f64], out: &mut [f64]) {
        for ((o, x), y) in out.iter_mut().zip(x).zip(y) {
            *o = a * x + y;
        }
    }

    /// # Safety
    /// As for [`axpy`].
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn sum(x: &[f64]) -> f64 {
        x.iter().sum()
    }

    /// # Safety
    /// As for [`axpy`].
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot(x: &[f64], y: &[f64]) -> f64 {
        x.iter().zip(y).map(|(a, b)| a * b).sum()
    }

    /// # Safety
    /// As for [`axpy`].
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn laplace_row(up: &[f64], mid: &[f64], down: &[f64], out: &mut [f64]) {
        super::laplace_row(up, mid, down, out)
    }

    /// The bits of `x`, summed with wrapping: a read at memory's pace.
    ///
    /// # Safety
    /// As for [`axpy`].
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn read(x: &[u64]) -> u64 {
        x.iter().fold(0u64, |s, v| s.wrapping_add(*v))
    }

    /// The bits of `x` and `y` combined: two reads at memory's pace.
    ///
    /// # Safety
    /// As for [`axpy`].
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn read2(x: &[u64], y: &[u64]) -> u64 {
        x.iter()
            .zip(y)
            .fold(0u64, |s, (a, b)| s.wrapping_add(a ^ b))
    }

    /// `out = x ^ y` on the bits: two reads and a write at memory's pace.
    ///
    /// # Safety
    /// As for [`axpy`].
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn xor(x: &[u64], y: &[u64], out: &mut [u64]) {
        for ((o, a), b) in out.iter_mut().zip(x).zip(y) {
            *o = a ^ b;
        }
    }

    /// `out = x`: a read and a write at memory's pace.
    ///
    /// # Safety
    /// As for [`axpy`].
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn copy(x: &[u64], out: &mut [u64]) {
        out.copy_from_slice(x)
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    pub fn available() -> bool {
        false
    }
}

/// `f64`s as their bits.
fn bits(x: &[f64]) -> &[u64] {
    shmpool::bytemuck::cast_slice(x)
}

/// `f64`s as their bits, writable.
fn bits_mut(x: &mut [f64]) -> &mut [u64] {
    shmpool::bytemuck::cast_slice_mut(x)
}

/// The pools at each level, and rayon: `support/pools.rs`.
fn setup() -> Setup {
    pools::setup(
        &[Simd::Auto, Simd::Baseline, Simd::Avx2, Simd::Avx512],
        WORKERS,
    )
}

fn data(len: usize, seed: u64) -> SharedArray<f64> {
    let mut s = seed;
    SharedArray::try_from_iter((0..len).map(|_| {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    }))
    .expect("input")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

fn config(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    bytes: usize,
) {
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sampling_mode(SamplingMode::Flat);
}

fn axpy(c: &mut Criterion) {
    let s = setup();
    let (x, y) = (data(LEN, 1), data(LEN, 2));
    let mut out = SharedArray::filled(LEN, 0.0f64).expect("output");
    let a = black_box(2.5f64);
    let reference: Vec<f64> = x.iter().zip(y.iter()).map(|(x, y)| a * x + y).collect();
    let mut group = c.benchmark_group("axpy");
    config(&mut group, 3 * LEN * 8);
    group.bench_function(BenchmarkId::new("seq", "2^24"), |b| {
        b.iter(|| {
            for ((o, x), y) in out.iter_mut().zip(x.iter()).zip(y.iter()) {
                *o = a * x + y;
            }
        })
    });
    out.fill(0.0);
    s.threads.install(|| {
        out.par_iter_mut()
            .zip(x.par_iter().zip(y.par_iter()))
            .for_each(|(o, (x, y))| *o = a * x + y)
    });
    assert!(out[..] == reference[..], "rayon axpy");
    group.bench_function(BenchmarkId::new("rayon", "2^24"), |b| {
        b.iter(|| {
            s.threads.install(|| {
                out.par_iter_mut()
                    .zip(x.par_iter().zip(y.par_iter()))
                    .for_each(|(o, (x, y))| *o = a * x + y)
            })
        })
    });
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        let rayon_avx2 = |out: &mut SharedArray<f64>| {
            s.threads.install(|| {
                out.par_chunks_mut(BLOCK)
                    .zip(x.par_chunks(BLOCK).zip(y.par_chunks(BLOCK)))
                    // SAFETY: AVX2 and FMA were detected.
                    .for_each(|(o, (x, y))| unsafe { avx2::axpy(a, x, y, o) })
            })
        };
        out.fill(0.0);
        rayon_avx2(&mut out);
        assert!(out[..] == reference[..], "rayon axpy over AVX2");
        group.bench_function(BenchmarkId::new("rayon_avx2", "2^24"), |b| {
            b.iter(|| rayon_avx2(&mut out))
        });
        let limit = |out: &mut SharedArray<f64>| {
            s.threads.install(|| {
                bits_mut(out)
                    .par_chunks_mut(BLOCK)
                    .zip(bits(&x).par_chunks(BLOCK).zip(bits(&y).par_chunks(BLOCK)))
                    // SAFETY: AVX2 and FMA were detected.
                    .for_each(|(o, (x, y))| unsafe { avx2::xor(x, y, o) })
            })
        };
        limit(&mut out);
        assert!(
            (0..LEN).all(|i| out[i].to_bits() == x[i].to_bits() ^ y[i].to_bits()),
            "limit axpy"
        );
        group.bench_function(BenchmarkId::new("limit", "2^24"), |b| {
            b.iter(|| limit(&mut out))
        });
    }
    for (level, pool) in &s.pools {
        let run = |out: &mut SharedArray<f64>| {
            pool.bulk()
                .with(a)
                .zip_map_into((&x, &y), out, |a: &f64, (x, y): (f64, f64)| a * x + y)
                .expect("axpy")
        };
        out.fill(0.0);
        run(&mut out);
        assert!(out[..] == reference[..], "shmpool axpy at {level}");
        group.bench_function(BenchmarkId::new(format!("shmpool/{level}"), "2^24"), |b| {
            b.iter(|| run(&mut out))
        });
    }
    group.finish();
}

fn sum_and_dot(c: &mut Criterion) {
    let s = setup();
    let (x, y) = (data(LEN, 3), data(LEN, 4));
    let sum_ref: f64 = x.iter().sum();
    let dot_ref: f64 = x.iter().zip(y.iter()).map(|(a, b)| a * b).sum();

    let mut group = c.benchmark_group("sum");
    config(&mut group, LEN * 8);
    group.bench_function(BenchmarkId::new("seq", "2^24"), |b| {
        b.iter(|| black_box(x.iter().sum::<f64>()))
    });
    assert!(close(
        s.threads.install(|| x.par_iter().sum::<f64>()),
        sum_ref
    ));
    group.bench_function(BenchmarkId::new("rayon", "2^24"), |b| {
        b.iter(|| black_box(s.threads.install(|| x.par_iter().sum::<f64>())))
    });
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        let rayon_avx2 = || {
            s.threads.install(|| {
                x.par_chunks(BLOCK)
                    // SAFETY: AVX2 and FMA were detected.
                    .map(|c| unsafe { avx2::sum(c) })
                    .sum::<f64>()
            })
        };
        assert!(close(rayon_avx2(), sum_ref), "rayon sum over AVX2");
        group.bench_function(BenchmarkId::new("rayon_avx2", "2^24"), |b| {
            b.iter(|| black_box(rayon_avx2()))
        });
        let limit = || {
            s.threads.install(|| {
                bits(&x)
                    .par_chunks(BLOCK)
                    // SAFETY: AVX2 and FMA were detected.
                    .map(|c| unsafe { avx2::read(c) })
                    .reduce(|| 0, u64::wrapping_add)
            })
        };
        let want = bits(&x).iter().fold(0u64, |s, v| s.wrapping_add(*v));
        assert_eq!(limit(), want, "limit sum");
        group.bench_function(BenchmarkId::new("limit", "2^24"), |b| {
            b.iter(|| black_box(limit()))
        });
    }
    for (level, pool) in &s.pools {
        assert!(
            close(pool.bulk().sum(&x).expect("sum"), sum_ref),
            "sum at {level}"
        );
        group.bench_function(BenchmarkId::new(format!("shmpool/{level}"), "2^24"), |b| {
            b.iter(|| black_box(pool.bulk().sum(&x).expect("sum")))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("dot");
    config(&mut group, 2 * LEN * 8);
    group.bench_function(BenchmarkId::new("seq", "2^24"), |b| {
        b.iter(|| black_box(x.iter().zip(y.iter()).map(|(a, b)| a * b).sum::<f64>()))
    });
    let rayon_dot = || {
        s.threads.install(|| {
            x.par_iter()
                .zip(y.par_iter())
                .map(|(a, b)| a * b)
                .sum::<f64>()
        })
    };
    assert!(close(rayon_dot(), dot_ref));
    group.bench_function(BenchmarkId::new("rayon", "2^24"), |b| {
        b.iter(|| black_box(rayon_dot()))
    });
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        let rayon_avx2 = || {
            s.threads.install(|| {
                x.par_chunks(BLOCK)
                    .zip(y.par_chunks(BLOCK))
                    // SAFETY: AVX2 and FMA were detected.
                    .map(|(a, b)| unsafe { avx2::dot(a, b) })
                    .sum::<f64>()
            })
        };
        assert!(close(rayon_avx2(), dot_ref), "rayon dot over AVX2");
        group.bench_function(BenchmarkId::new("rayon_avx2", "2^24"), |b| {
            b.iter(|| black_box(rayon_avx2()))
        });
        let limit = || {
            s.threads.install(|| {
                bits(&x)
                    .par_chunks(BLOCK)
                    .zip(bits(&y).par_chunks(BLOCK))
                    // SAFETY: AVX2 and FMA were detected.
                    .map(|(a, b)| unsafe { avx2::read2(a, b) })
                    .reduce(|| 0, u64::wrapping_add)
            })
        };
        let want = bits(&x)
            .iter()
            .zip(bits(&y))
            .fold(0u64, |s, (a, b)| s.wrapping_add(a ^ b));
        assert_eq!(limit(), want, "limit dot");
        group.bench_function(BenchmarkId::new("limit", "2^24"), |b| {
            b.iter(|| black_box(limit()))
        });
    }
    for (level, pool) in &s.pools {
        assert!(
            close(pool.bulk().dot(&x, &y).expect("dot"), dot_ref),
            "dot at {level}"
        );
        group.bench_function(BenchmarkId::new(format!("shmpool/{level}"), "2^24"), |b| {
            b.iter(|| black_box(pool.bulk().dot(&x, &y).expect("dot")))
        });
    }
    group.finish();
}

fn count(acc: &mut [u64; BINS], xs: &[f64]) {
    for &v in xs {
        if (0.0..=1.0).contains(&v) {
            acc[((v * BINS as f64) as usize).min(BINS - 1)] += 1;
        }
    }
}

fn histogram(c: &mut Criterion) {
    let s = setup();
    let x = data(LEN, 5);
    let mut reference = [0u64; BINS];
    count(&mut reference, &x);
    let rayon_hist = || {
        s.threads.install(|| {
            x.par_chunks(1 << 15)
                .fold(
                    || [0u64; BINS],
                    |mut acc, xs| {
                        count(&mut acc, xs);
                        acc
                    },
                )
                .reduce(
                    || [0u64; BINS],
                    |mut a, b| {
                        a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                        a
                    },
                )
        })
    };
    let mut group = c.benchmark_group("histogram256");
    config(&mut group, LEN * 8);
    group.bench_function(BenchmarkId::new("seq", "2^24"), |b| {
        b.iter(|| {
            let mut acc = [0u64; BINS];
            count(&mut acc, &x);
            black_box(acc)
        })
    });
    assert_eq!(rayon_hist(), reference);
    group.bench_function(BenchmarkId::new("rayon", "2^24"), |b| {
        b.iter(|| black_box(rayon_hist()))
    });
    for (level, pool) in &s.pools {
        let counts = pool
            .bulk()
            .histogram(
                &x,
                Bins::Uniform {
                    count: BINS,
                    range: (0.0, 1.0),
                },
            )
            .expect("histogram")
            .counts;
        assert_eq!(counts[..], reference[..], "histogram at {level}");
        group.bench_function(BenchmarkId::new(format!("shmpool/{level}"), "2^24"), |b| {
            b.iter(|| {
                black_box(
                    pool.bulk()
                        .histogram(
                            &x,
                            Bins::Uniform {
                                count: BINS,
                                range: (0.0, 1.0),
                            },
                        )
                        .expect("histogram")
                        .counts,
                )
            })
        });
    }
    group.finish();
}

fn weigh(acc: &mut [f64; BINS], xs: &[f64], ws: &[f64]) {
    for (&v, &w) in xs.iter().zip(ws) {
        if (0.0..=1.0).contains(&v) {
            acc[((v * BINS as f64) as usize).min(BINS - 1)] += w;
        }
    }
}

/// numpy's `np.histogram(x, 256, range=(0, 1), weights=w)`: the weights of each
/// bin added up, rather than its elements counted.
fn weighted_histogram(c: &mut Criterion) {
    let s = setup();
    let (x, w) = (data(LEN, 5), data(LEN, 7));
    let mut reference = [0.0f64; BINS];
    weigh(&mut reference, &x, &w);
    let same = |got: &[f64]| got.iter().zip(&reference).all(|(&g, &r)| close(g, r));
    let rayon_hist = || {
        s.threads.install(|| {
            x.par_chunks(1 << 15)
                .zip(w.par_chunks(1 << 15))
                .fold(
                    || [0.0f64; BINS],
                    |mut acc, (xs, ws)| {
                        weigh(&mut acc, xs, ws);
                        acc
                    },
                )
                .reduce(
                    || [0.0f64; BINS],
                    |mut a, b| {
                        a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                        a
                    },
                )
        })
    };
    let bins = Bins::Uniform {
        count: BINS,
        range: (0.0, 1.0),
    };
    let mut group = c.benchmark_group("histogram256_weighted");
    config(&mut group, 2 * LEN * 8);
    group.bench_function(BenchmarkId::new("seq", "2^24"), |b| {
        b.iter(|| {
            let mut acc = [0.0f64; BINS];
            weigh(&mut acc, &x, &w);
            black_box(acc)
        })
    });
    assert!(same(&rayon_hist()), "rayon weighted histogram");
    group.bench_function(BenchmarkId::new("rayon", "2^24"), |b| {
        b.iter(|| black_box(rayon_hist()))
    });
    for (level, pool) in &s.pools {
        let run = || {
            pool.bulk()
                .histogram(&x, bins.weights(&w))
                .expect("weighted histogram")
                .counts
        };
        assert!(same(&run()), "weighted histogram at {level}");
        group.bench_function(BenchmarkId::new(format!("shmpool/{level}"), "2^24"), |b| {
            b.iter(|| black_box(run()))
        });
    }
    group.finish();
}

/// One 5-point Laplacian step for row `r` (an interior row).
#[inline(always)]
fn laplace_row(up: &[f64], mid: &[f64], down: &[f64], out: &mut [f64]) {
    let n = mid.len();
    for c in 1..n - 1 {
        out[c] = 0.25 * (up[c] + down[c] + mid[c - 1] + mid[c + 1]);
    }
}

fn stencil_and_rows(c: &mut Criterion) {
    let s = setup();
    let n = SIDE * SIDE;
    let x = data(n, 6).reshape(&[SIDE, SIDE]).expect("grid");
    let mut y = SharedArray::filled(n, 0.0f64)
        .expect("grid")
        .reshape(&[SIDE, SIDE])
        .expect("grid");
    let mut reference = vec![0.0f64; n];
    for r in 1..SIDE - 1 {
        let (head, tail) = reference.split_at_mut(r * SIDE);
        let _ = head;
        laplace_row(
            &x[(r - 1) * SIDE..r * SIDE],
            &x[r * SIDE..(r + 1) * SIDE],
            &x[(r + 1) * SIDE..(r + 2) * SIDE],
            &mut tail[..SIDE],
        );
    }
    let mut group = c.benchmark_group("stencil5");
    config(&mut group, 2 * n * 8);
    group.bench_function(BenchmarkId::new("seq", "4096^2"), |b| {
        b.iter(|| {
            for r in 1..SIDE - 1 {
                laplace_row(
                    &x[(r - 1) * SIDE..r * SIDE],
                    &x[r * SIDE..(r + 1) * SIDE],
                    &x[(r + 1) * SIDE..(r + 2) * SIDE],
                    &mut y[r * SIDE..(r + 1) * SIDE],
                );
            }
        })
    });
    let rayon_step = |y: &mut SharedArray<f64>| {
        s.threads.install(|| {
            y.par_chunks_mut(SIDE).enumerate().for_each(|(r, out)| {
                if r > 0 && r + 1 < SIDE {
                    laplace_row(
                        &x[(r - 1) * SIDE..r * SIDE],
                        &x[r * SIDE..(r + 1) * SIDE],
                        &x[(r + 1) * SIDE..(r + 2) * SIDE],
                        out,
                    );
                }
            })
        })
    };
    y.fill(0.0);
    rayon_step(&mut y);
    assert!(y[..] == reference[..], "rayon stencil");
    group.bench_function(BenchmarkId::new("rayon", "4096^2"), |b| {
        b.iter(|| rayon_step(&mut y))
    });
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
        let rayon_avx2 = |y: &mut SharedArray<f64>| {
            s.threads.install(|| {
                y.par_chunks_mut(SIDE).enumerate().for_each(|(r, out)| {
                    if r > 0 && r + 1 < SIDE {
                        // SAFETY: AVX2 and FMA were detected.
                        unsafe {
                            avx2::laplace_row(
                                &x[(r - 1) * SIDE..r * SIDE],
                                &x[r * SIDE..(r + 1) * SIDE],
                                &x[(r + 1) * SIDE..(r + 2) * SIDE],
                                out,
                            )
                        }
                    }
                })
            })
        };
        y.fill(0.0);
        rayon_avx2(&mut y);
        assert!(y[..] == reference[..], "rayon stencil over AVX2");
        group.bench_function(BenchmarkId::new("rayon_avx2", "4096^2"), |b| {
            b.iter(|| rayon_avx2(&mut y))
        });
        let limit = |y: &mut SharedArray<f64>| {
            s.threads.install(|| {
                bits_mut(y)
                    .par_chunks_mut(BLOCK)
                    .zip(bits(&x).par_chunks(BLOCK))
                    // SAFETY: AVX2 and FMA were detected.
                    .for_each(|(o, x)| unsafe { avx2::copy(x, o) })
            })
        };
        limit(&mut y);
        assert!(y[..] == x[..], "limit stencil");
        group.bench_function(BenchmarkId::new("limit", "4096^2"), |b| {
            b.iter(|| limit(&mut y))
        });
    }
    for (level, pool) in &s.pools {
        let step = |y: &mut SharedArray<f64>| {
            pool.bulk()
                .stencil_rows_into(
                    &x,
                    y,
                    // A kernel with loops of its own: inlined into each level's entry
                    // point only when asked to (docs/USER_GUIDE.md, "SIMD levels").
                    #[inline(always)]
                    |rows: Range<usize>, x: Grid<f64>, mut y: GridMut<f64>| {
                        for r in rows.filter(|&r| r > 0 && r + 1 < x.rows()) {
                            laplace_row(x.row(r - 1), x.row(r), x.row(r + 1), y.row_mut(r));
                        }
                    },
                )
                .expect("stencil")
        };
        y.fill(0.0);
        step(&mut y);
        assert!(y[..] == reference[..], "shmpool stencil at {level}");
        group.bench_function(
            BenchmarkId::new(format!("shmpool/{level}"), "4096^2"),
            |b| b.iter(|| step(&mut y)),
        );
    }
    group.finish();

    // Normalise each row to unit sum.
    let normalise = |row: &[f64], out: &mut [f64]| {
        let total: f64 = row.iter().sum();
        let inv = 1.0 / total;
        for (o, v) in out.iter_mut().zip(row) {
            *o = v * inv;
        }
    };
    let mut reference = vec![0.0f64; n];
    for (row, out) in x.chunks(SIDE).zip(reference.chunks_mut(SIDE)) {
        normalise(row, out);
    }
    let mut group = c.benchmark_group("normalize_rows");
    config(&mut group, 2 * n * 8);
    group.bench_function(BenchmarkId::new("seq", "4096^2"), |b| {
        b.iter(|| {
            for (row, out) in x.chunks(SIDE).zip(y.chunks_mut(SIDE)) {
                normalise(row, out);
            }
        })
    });
    let rayon_rows = |y: &mut SharedArray<f64>| {
        s.threads.install(|| {
            x.par_chunks(SIDE)
                .zip(y.par_chunks_mut(SIDE))
                .for_each(|(row, out)| normalise(row, out))
        })
    };
    rayon_rows(&mut y);
    assert!(y[..] == reference[..], "rayon rows");
    group.bench_function(BenchmarkId::new("rayon", "4096^2"), |b| {
        b.iter(|| rayon_rows(&mut y))
    });
    for (level, pool) in &s.pools {
        let run = |y: &mut SharedArray<f64>| {
            pool.bulk()
                .map_rows_into(&x, y, |row: &[f64], out: &mut [f64]| {
                    let total: f64 = row.iter().sum();
                    let inv = 1.0 / total;
                    for (o, v) in out.iter_mut().zip(row) {
                        *o = v * inv;
                    }
                })
                .expect("rows")
        };
        y.fill(0.0);
        run(&mut y);
        assert!(y[..] == reference[..], "shmpool rows at {level}");
        group.bench_function(
            BenchmarkId::new(format!("shmpool/{level}"), "4096^2"),
            |b| b.iter(|| run(&mut y)),
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
    targets = axpy, sum_and_dot, histogram, weighted_histogram, stencil_and_rows
}
criterion_main!(benches);
