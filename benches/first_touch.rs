//! First touch: `map_into` into a new output (cold, or on reused memory) against
//! the same map into an output written before (warm), per page kind.
//!
//! ```text
//! cargo bench --bench first_touch
//! cargo bench --bench first_touch -- first_touch/cold   # one row
//! ```
//!
//! * `first_touch/<row>/<pages>/2^24` and `2^27`: `y[i] = x[i].sqrt()` over
//!   2^24 f64 (128 MiB each way) and 2^27 f64 (1 GiB each way), 2 worker processes.
//!   - `warm`: the same output every time, its pages mapped in the workers already.
//!   - `cold`: every timed call writes a fresh `SharedArray::zeroed_with_pages`
//!     output with the array cache off, so its memory is new from the system and
//!     the workers fault its pages in (and the kernel zeroes them) as they write
//!     their chunks. Creating the array, and dropping it afterwards, are not timed;
//!     after each drop the bench waits until the workers have let go of the old
//!     array's memory, so that freeing it does not run inside the next call.
//!   - `reused`: the same, with the array cache on: each new output takes over the
//!     memory of the one dropped just before (asserted), already mapped in the
//!     workers. Creating it (which zeroes it) is not timed.
//!   - `reused_with_zeroing`: the same, timing the creation too.
//!   - `reused_for_overwrite`: `SharedArray::for_overwrite` and the call, both
//!     timed: reused memory is not zeroed. Only for the kind `Pages::Auto` gives.
//! * `sparse_loop/zeroed_1GiB_64KiB_used`: each timed step makes a 1 GiB
//!   `SharedArray::zeroed` output (the array cache on, as by default) and writes
//!   only its first 64 KiB with a ranged map; creation and map are timed.
//!   After the steps, the most memory the output's file held (its `st_blocks`) is
//!   printed to stderr: an output that stays lazy holds a few pages, not the GiB.
//! * `<pages>` is each kind of page the machine offers now: `base` always,
//!   `transparent_huge` when shmem THP is `advise`, `within_size` or `always`,
//!   `hugetlb` when enough hugetlbfs pages are free (2^27 needs 1,026 pages of
//!   2 MiB: reserve them with `echo 1100 > /proc/sys/vm/nr_hugepages`). Kinds the
//!   machine does not offer are skipped with a message. Input and output use the
//!   same kind.
//!
//! Each output is checked bit for bit against `sqrt` before anything is timed.

use std::time::{Duration, Instant};

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use shmpool::{PageKind, Pages, Pool, SharedArray, array_cache};

#[path = "../tests/common/array_memory.rs"]
mod array_memory;

/// Worker processes.
const WORKERS: usize = 2;

/// Every page kind, and its name in the benchmark id.
const KINDS: [(Pages, &str); 3] = [
    (Pages::Base, "base"),
    (Pages::TransparentHuge, "transparent_huge"),
    (Pages::HugeTlb, "hugetlb"),
];

fn sqrt_map(pool: &Pool, xs: &SharedArray<f64>, ys: &mut SharedArray<f64>) {
    pool.map_into(xs, ys, |v: f64| v.sqrt()).expect("map_into");
}

fn check(xs: &SharedArray<f64>, ys: &SharedArray<f64>) {
    assert!(
        xs.iter()
            .zip(ys.iter())
            .all(|(x, y)| x.sqrt().to_bits() == y.to_bits()),
        "wrong sqrt"
    );
}

/// A fresh output of `len` elements on `pages`. A huge-page array just dropped
/// returns its pages when the workers unmap it, a moment later: wait for them
/// rather than fall back.
fn fresh(len: usize, pages: Pages) -> shmpool::Result<SharedArray<f64>> {
    let mut tries = 0;
    loop {
        match SharedArray::zeroed_with_pages(len, pages) {
            Err(shmpool::Error::HugePagesUnavailable {
                kind: PageKind::HugeTlb,
                ..
            }) if tries < 200 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// Lets the workers unmap a dropped array (they are woken to, and do it at once)
/// so that freeing its memory does not overlap the next timed call.
fn settle(len: usize) {
    std::thread::sleep(Duration::from_millis(20 + (len >> 20) as u64 / 4));
}

fn first_touch(c: &mut Criterion) {
    let pool = Pool::new(WORKERS).expect("start the pool");
    let mut group = c.benchmark_group("first_touch");
    group.sampling_mode(SamplingMode::Flat); // tens to hundreds of milliseconds a run
    for log2 in [24u32, 27] {
        let len = 1usize << log2;
        group.throughput(Throughput::Bytes((2 * len * size_of::<f64>()) as u64));
        for (pages, name) in KINDS {
            let mut xs = match fresh(len, pages) {
                Ok(xs) => xs,
                Err(e) => {
                    eprintln!("first_touch: skipping {name} pages at 2^{log2}: {e}");
                    continue;
                }
            };
            for (i, x) in xs.iter_mut().enumerate() {
                *x = i as f64;
            }
            let id = format!("{name}/2^{log2}");

            let mut warm = fresh(len, pages).expect("warm output");
            sqrt_map(&pool, &xs, &mut warm);
            check(&xs, &warm);
            group.bench_function(BenchmarkId::new("warm", &id), |b| {
                b.iter(|| sqrt_map(&pool, &xs, &mut warm))
            });
            drop(warm);
            settle(len);

            // Cold: memory the system has just handed out (the array cache off).
            let limit = array_cache::limit();
            array_cache::set_limit(0);
            let mut ys = fresh(len, pages).expect("cold output");
            sqrt_map(&pool, &xs, &mut ys);
            check(&xs, &ys);
            drop(ys);
            settle(len);
            group.bench_function(BenchmarkId::new("cold", &id), |b| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    for _ in 0..iters {
                        let mut ys = fresh(len, pages).expect("cold output");
                        let start = Instant::now();
                        sqrt_map(&pool, &xs, &mut ys);
                        timed += start.elapsed();
                        drop(ys);
                        settle(len);
                    }
                    timed
                })
            });

            // Reused: the output is a fresh `zeroed` array again, whose memory is
            // the array dropped just before (the array cache on).
            array_cache::set_limit(limit.max(2 * len as u64 * 8));
            let mut ys = fresh(len, pages).expect("output");
            sqrt_map(&pool, &xs, &mut ys);
            drop(ys);
            // `Some(pages)`: a `zeroed_with_pages` output; `None`: `for_overwrite`.
            let (pool, xs) = (&pool, &xs);
            let reused = |make: Option<Pages>, timed_creation: bool| {
                move |b: &mut criterion::Bencher<'_>| {
                    b.iter_custom(|iters| {
                        let before = array_cache::stats().reused;
                        let mut timed = Duration::ZERO;
                        for _ in 0..iters {
                            let start = Instant::now();
                            let mut ys = match make {
                                Some(pages) => fresh(len, pages).expect("output"),
                                None => SharedArray::for_overwrite(len).expect("output"),
                            };
                            let call = Instant::now();
                            sqrt_map(pool, xs, &mut ys);
                            timed += if timed_creation { start } else { call }.elapsed();
                        }
                        let reused = array_cache::stats().reused - before;
                        assert_eq!(reused, iters, "an output did not reuse memory");
                        timed
                    })
                }
            };
            group.bench_function(BenchmarkId::new("reused", &id), reused(Some(pages), false));
            group.bench_function(
                BenchmarkId::new("reused_with_zeroing", &id),
                reused(Some(pages), true),
            );
            // `for_overwrite` asks for `Pages::Auto`: measured where that is this kind.
            let auto = SharedArray::<f64>::for_overwrite(len).expect("output");
            if auto.page_kind() == xs.page_kind() {
                drop(auto);
                group.bench_function(
                    BenchmarkId::new("reused_for_overwrite", &id),
                    reused(None, true),
                );
            }
            array_cache::set_limit(limit);
            array_cache::trim();
            settle(len);
        }
    }
    group.finish();
}

/// The sparse loop of issue 24: 1 GiB outputs of which 64 KiB are used.
fn sparse_loop(c: &mut Criterion) {
    const GIB: usize = 1 << 30;
    const USED: usize = 64 << 10;
    let pool = Pool::new(WORKERS).expect("start the pool");
    let limit = array_cache::limit();
    // The loop starts from fresh memory: a segment the cache kept from the rows
    // above holds the pages its arrays wrote, and would keep them.
    array_cache::trim();
    array_cache::set_limit(limit.max(2 * GIB as u64));
    let before = array_cache::stats();
    let mut held = 0u64;
    let mut steps = 0u64;
    let mut group = c.benchmark_group("sparse_loop");
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("zeroed_1GiB_64KiB_used", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let mut ys = SharedArray::<u8>::zeroed(GIB).expect("output");
                pool.bulk()
                    .range(0..USED)
                    .for_each_mut(&mut ys, |v: &mut u8| *v = 7)
                    .expect("ranged map");
                timed += start.elapsed();
                assert_eq!((ys[0], ys[USED]), (7, 0), "a wrong output");
                held = held.max(array_memory::file_bytes(&ys));
                steps += 1;
            }
            timed
        })
    });
    group.finish();
    let reused = array_cache::stats().reused - before.reused;
    eprintln!(
        "sparse_loop: over {steps} steps ({reused} on reused memory) the output's file \
         held at most {held} bytes ({:.1} MiB)",
        held as f64 / (1 << 20) as f64
    );
    array_cache::set_limit(limit);
    array_cache::trim();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = first_touch, sparse_loop
}
criterion_main!(benches);
