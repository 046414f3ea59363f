//! sqrt against the machine's memory bandwidth: every row of issue 14's table in
//! one criterion run.
//!
//! ```text
//! cargo bench --bench bandwidth
//! cargo bench --bench bandwidth -- bandwidth/memcpy   # one row
//! ```
//!
//! `bandwidth/<row>/2^20` and `2^24`: `y[i] = x[i].sqrt()` over 2^20 f64 (8 MiB
//! each way) and 2^24 f64 (128 MiB each way); throughput counts the bytes read plus
//! the bytes written, 16 per element, for every row.
//!
//! | row | what |
//! |---|---|
//! | `memcpy` | `y.copy_from_slice(x)` in two halves on a 2-thread rayon pool: the limit |
//! | `seq` | a plain sqrt loop on this thread, default target flags |
//! | `rayon` | `par_iter_mut().zip(par_iter())` on the 2-thread pool, default flags |
//! | `rayon_avx2` | the 2-thread pool over a `#[target_feature(enable = "avx2,fma")]` loop; skipped where the CPU lacks AVX2 or FMA |
//! | `map_into` | shmpool `map_into` on `Pool::new(2)` (the CPU's best SIMD level) |
//! | `map_into/<level>` | the same on a pool forced to `baseline`, `avx2` or `avx512` (`PoolBuilder::simd`); skipped where the CPU lacks the level |
//!
//! Every row reads the same input and writes the same output (`SharedArray`s, so
//! page size and placement are identical), written once before timing so that no
//! first-touch fault is timed. Each row's output is checked bit for bit (for
//! `memcpy`: against the input) before it is timed.
//!
//! A row is one entry of [`rows`]: a name, a check, and a closure. Adding one (for
//! example shmpool at a forced SIMD level) is one line there.

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use rayon::prelude::*;
use shmpool::{Pool, SharedArray, Simd};

/// Worker processes for shmpool, threads for rayon.
const WORKERS: usize = 2;

/// What a row's output must equal.
#[derive(Clone, Copy)]
enum Expect {
    Sqrt,
    Copy,
}

/// Everything a row may use.
struct Ctx {
    /// The pool at the CPU's best SIMD level (the default).
    pool: Pool,
    /// Pools forced to each level the CPU supports.
    levels: Vec<(Simd, Pool)>,
    threads: rayon::ThreadPool,
}

type Run = Box<dyn Fn(&Ctx, &SharedArray<f64>, &mut SharedArray<f64>)>;

/// One row of the group.
struct Row {
    name: &'static str,
    expect: Expect,
    run: Run,
}

fn row(
    name: &'static str,
    expect: Expect,
    run: impl Fn(&Ctx, &SharedArray<f64>, &mut SharedArray<f64>) + 'static,
) -> Option<Row> {
    Some(Row {
        name,
        expect,
        run: Box::new(run),
    })
}

/// The rows, in the order they run. `None` is a row this machine cannot run.
fn rows() -> Vec<Option<Row>> {
    vec![
        row("memcpy", Expect::Copy, |c, xs, ys| {
            let half = xs.len().div_ceil(WORKERS);
            c.threads.install(|| {
                ys.par_chunks_mut(half)
                    .zip(xs.par_chunks(half))
                    .for_each(|(y, x)| y.copy_from_slice(x))
            })
        }),
        row("seq", Expect::Sqrt, |_, xs, ys| {
            for (y, x) in ys.iter_mut().zip(xs.iter()) {
                *y = x.sqrt();
            }
        }),
        row("rayon", Expect::Sqrt, |c, xs, ys| {
            c.threads.install(|| {
                ys.par_iter_mut()
                    .zip(xs.par_iter())
                    .for_each(|(y, x)| *y = x.sqrt())
            })
        }),
        avx2::row(),
        row("map_into", Expect::Sqrt, |c, xs, ys| {
            c.pool
                .map_into(xs, ys, |v: f64| v.sqrt())
                .expect("map_into")
        }),
        level_row("map_into/baseline", Simd::Baseline),
        level_row("map_into/avx2", Simd::Avx2),
        level_row("map_into/avx512", Simd::Avx512),
    ]
}

/// shmpool `map_into` on a pool forced to `level`, where the CPU has it.
fn level_row(name: &'static str, level: Simd) -> Option<Row> {
    if !level.is_supported() {
        eprintln!("bandwidth: no {level} on this CPU, skipping {name}");
        return None;
    }
    row(name, Expect::Sqrt, move |c, xs, ys| {
        let (_, pool) = c
            .levels
            .iter()
            .find(|(l, _)| *l == level)
            .expect("a pool per supported level");
        pool.map_into(xs, ys, |v: f64| v.sqrt()).expect("map_into")
    })
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;

    /// The sqrt loop compiled for AVX2 and FMA.
    ///
    /// # Safety
    /// The CPU must have AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sqrt_avx2(x: &[f64], y: &mut [f64]) {
        for (y, x) in y.iter_mut().zip(x) {
            *y = x.sqrt();
        }
    }

    /// rayon over [`sqrt_avx2`], in blocks of 16 Ki elements, when the CPU has it.
    pub(super) fn row() -> Option<Row> {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            eprintln!("bandwidth: no AVX2+FMA on this CPU, skipping rayon_avx2");
            return None;
        }
        super::row("rayon_avx2", Expect::Sqrt, |c, xs, ys| {
            c.threads.install(|| {
                ys.par_chunks_mut(1 << 14)
                    .zip(xs.par_chunks(1 << 14))
                    // SAFETY: AVX2 and FMA were detected above.
                    .for_each(|(y, x)| unsafe { sqrt_avx2(x, y) })
            })
        })
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    pub(super) fn row() -> Option<super::Row> {
        None
    }
}

fn bandwidth(c: &mut Criterion) {
    // The pool first: its fork server is forked before the rayon threads exist.
    let ctx = Ctx {
        pool: Pool::new(WORKERS).expect("start the pool"),
        levels: [Simd::Baseline, Simd::Avx2, Simd::Avx512]
            .into_iter()
            .filter(|l| l.is_supported())
            .map(|l| {
                let pool = Pool::builder()
                    .processes(WORKERS)
                    .simd(l)
                    .build()
                    .expect("start a pool at a forced level");
                (l, pool)
            })
            .collect(),
        threads: rayon::ThreadPoolBuilder::new()
            .num_threads(WORKERS)
            .build()
            .expect("start the rayon pool"),
    };
    let rows: Vec<Row> = rows().into_iter().flatten().collect();
    let mut group = c.benchmark_group("bandwidth");
    for log2 in [20u32, 24] {
        let len = 1usize << log2;
        let xs = SharedArray::try_from_iter((0..len).map(|i| i as f64 * 0.5)).expect("input");
        let sqrt: Vec<u64> = xs.iter().map(|x| x.sqrt().to_bits()).collect();
        // Written in full here, so no first-touch fault is ever timed.
        let mut ys = SharedArray::filled(len, f64::NAN).expect("output");
        group.throughput(Throughput::Bytes((2 * len * size_of::<f64>()) as u64));
        group.sampling_mode(if log2 >= 24 {
            SamplingMode::Flat
        } else {
            SamplingMode::Auto
        });
        for row in &rows {
            ys.fill(f64::NAN);
            (row.run)(&ctx, &xs, &mut ys);
            let right = match row.expect {
                Expect::Sqrt => ys.iter().map(|y| y.to_bits()).eq(sqrt.iter().copied()),
                Expect::Copy => ys.as_slice() == xs.as_slice(),
            };
            assert!(right, "{} computed a wrong result", row.name);
            group.bench_function(BenchmarkId::new(row.name, format!("2^{log2}")), |b| {
                b.iter(|| (row.run)(&ctx, black_box(&xs), black_box(&mut ys)))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bandwidth
}
criterion_main!(benches);
