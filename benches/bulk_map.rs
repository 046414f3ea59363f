//! Bulk array maps against rayon and a sequential loop, and the cost of starting a
//! pool.
//!
//! ```text
//! cargo bench --bench bulk_map
//! cargo bench --bench bulk_map -- --quick     # a short smoke run
//! cargo bench --bench bulk_map -- sqrt/rayon  # one group, or one function
//! ```
//!
//! * `sqrt/<method>/2^20` and `2^24`: `y[i] = x[i].sqrt()` over 2^20 f64 (8 MiB in,
//!   8 MiB out: a job of about a millisecond, where dispatch costs still show) and
//!   2^24 f64 (128 MiB each way: bound by memory bandwidth). Throughput is the bytes
//!   read plus the bytes written, so criterion reports GiB/s.
//!   - `seq`: a plain loop on this thread;
//!   - `rayon`: `par_iter_mut().zip(par_iter())` on a 2-thread rayon pool, entered
//!     with `install`;
//!   - `map_into`: shmpool's element kernel on a 2-process pool;
//!   - `map_chunks_into`: shmpool's slice kernel, on the same pool.
//! * `startup/build/<method>`: `Pool::builder().processes(2).start_method(m).build()`
//!   for each start method: from the call until both workers are ready. The drop
//!   that follows each build is outside the timed region (`iter_custom`).
//! * `startup/drop/<method>`: dropping such an idle pool (terminate: kill and reap
//!   the workers and the fork server), timed alone. A build-and-drop cycle costs
//!   the sum of the two.
//!
//! Every sqrt method reads the same input array and writes the same output array,
//! shared memory in both cases, so page size and placement are the same for all and
//! only the way the work is split and dispatched differs. Each method's output is
//! checked bit for bit against a sequential reference before it is timed.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use rayon::prelude::*;
use shmpool::{Pool, SharedArray, StartMethod};

/// Worker processes for shmpool, threads for rayon.
const WORKERS: usize = 2;

/// The ways `sqrt` is computed.
#[derive(Debug, Clone, Copy)]
enum Method {
    Seq,
    Rayon,
    MapInto,
    MapChunksInto,
}

impl Method {
    const ALL: [Method; 4] = [
        Method::Seq,
        Method::Rayon,
        Method::MapInto,
        Method::MapChunksInto,
    ];

    fn name(self) -> &'static str {
        match self {
            Method::Seq => "seq",
            Method::Rayon => "rayon",
            Method::MapInto => "map_into",
            Method::MapChunksInto => "map_chunks_into",
        }
    }

    /// `ys[i] = xs[i].sqrt()`, this method's way.
    fn run(
        self,
        pool: &Pool,
        threads: &rayon::ThreadPool,
        xs: &SharedArray<f64>,
        ys: &mut SharedArray<f64>,
    ) -> shmpool::Result<()> {
        match self {
            Method::Seq => {
                for (y, x) in ys.iter_mut().zip(xs.iter()) {
                    *y = x.sqrt();
                }
                Ok(())
            }
            Method::Rayon => {
                threads.install(|| {
                    ys.par_iter_mut()
                        .zip(xs.par_iter())
                        .for_each(|(y, x)| *y = x.sqrt())
                });
                Ok(())
            }
            Method::MapInto => pool.map_into(xs, ys, |x: f64| x.sqrt()),
            Method::MapChunksInto => {
                pool.bulk()
                    .map_chunks_into(xs, ys, |xs: &[f64], ys: &mut [f64]| {
                        for (y, x) in ys.iter_mut().zip(xs) {
                            *y = x.sqrt();
                        }
                    })
            }
        }
    }
}

fn sqrt(c: &mut Criterion) {
    // The pool first: its fork server is forked before the rayon threads exist.
    let pool = Pool::new(WORKERS).expect("start the pool");
    let threads = rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .expect("start the rayon pool");
    let mut group = c.benchmark_group("sqrt");
    for log2 in [20, 24] {
        let len = 1usize << log2;
        let xs = SharedArray::try_from_iter((0..len).map(|i| i as f64 * 0.5)).expect("input");
        let expected: Vec<u64> = xs.iter().map(|x| x.sqrt().to_bits()).collect();
        // Written in full here, so first-touch page faults are paid now and never in
        // a timed run; each check below rewrites every element too.
        let mut ys = SharedArray::filled(len, f64::NAN).expect("output");

        group.throughput(Throughput::Bytes((2 * len * size_of::<f64>()) as u64));
        group.sampling_mode(if log2 >= 24 {
            SamplingMode::Flat // tens of milliseconds per run
        } else {
            SamplingMode::Auto
        });
        for method in Method::ALL {
            ys.fill(f64::NAN);
            method
                .run(&pool, &threads, &xs, &mut ys)
                .unwrap_or_else(|e| panic!("{}: {e}", method.name()));
            assert!(
                ys.iter().map(|y| y.to_bits()).eq(expected.iter().copied()),
                "{} computed a wrong sqrt",
                method.name()
            );
            group.bench_function(BenchmarkId::new(method.name(), format!("2^{log2}")), |b| {
                b.iter(|| {
                    method
                        .run(&pool, &threads, black_box(&xs), black_box(&mut ys))
                        .expect("sqrt");
                })
            });
        }
    }
    group.finish();
}

fn startup(c: &mut Criterion) {
    let mut group = c.benchmark_group("startup");
    group.sampling_mode(SamplingMode::Flat); // milliseconds per build
    let build = |method: StartMethod| {
        Pool::builder()
            .processes(WORKERS)
            .start_method(method)
            .build()
            .expect("build the pool")
    };
    for method in [
        StartMethod::Fork,
        StartMethod::ForkServer,
        StartMethod::Spawn,
    ] {
        let name = format!("{method:?}");
        let pool = build(method);
        assert_eq!(pool.apply(|x: u32| x + 1, (1,)).expect("apply"), 2);
        drop(pool);

        group.bench_function(BenchmarkId::new("build", &name), |b| {
            b.iter_custom(|iters| {
                let mut built = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    let pool = build(method);
                    built += t.elapsed();
                    drop(pool); // not timed
                }
                built
            })
        });
        group.bench_function(BenchmarkId::new("drop", &name), |b| {
            b.iter_custom(|iters| {
                let mut dropped = Duration::ZERO;
                for _ in 0..iters {
                    let pool = build(method); // not timed
                    let t = Instant::now();
                    drop(pool);
                    dropped += t.elapsed();
                }
                dropped
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = startup, sqrt
}
criterion_main!(benches);
