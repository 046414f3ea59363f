//! The array cache (`shmpool::array_cache`): the memory of a dropped array is reused
//! by the next array of the same byte length, under every start method and across
//! pools, with the values each call must give; `zeroed` reads zeros on reused
//! memory; the cache keeps within its limits, releases on `trim` (and the workers
//! then unmap), and is never used by a forked child.
//!
//! The cache is one per process, so the tests that change its limit hold the
//! write side of [`SERIAL`]; the others hold the read side and use array lengths
//! no other test uses.

#[macro_use]
mod common;
#[path = "common/array_memory.rs"]
mod array_memory;

use std::sync::RwLock;
use std::time::Duration;

use shmpool::{Pool, SharedArray, StartMethod, array_cache};

static SERIAL: RwLock<()> = RwLock::new(());

fn shared() -> std::sync::RwLockReadGuard<'static, ()> {
    SERIAL.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> std::sync::RwLockWriteGuard<'static, ()> {
    SERIAL.write().unwrap_or_else(|e| e.into_inner())
}

/// A length of f64 array that only one test and method uses.
fn unique_len(test: usize, m: StartMethod) -> usize {
    let method = match m {
        StartMethod::Fork => 0,
        StartMethod::ForkServer => 1,
        _ => 2,
    };
    200_000 + 1000 * test + method
}

/// Six rounds over two pools, each round making its input and output anew: from
/// the second round on both take the segments the round before dropped. Every
/// output is checked whole, including the part a ranged map must leave at zero.
fn reused_arrays_give_each_call_its_own_values(m: StartMethod) {
    let _serial = shared();
    let n = unique_len(1, m);
    let pools = [common::pool(m), common::pool(m)];
    let before = array_cache::stats();
    for round in 0..6usize {
        let pool = &pools[round % 2];
        let xs = SharedArray::try_from_iter((0..n).map(|i| (i * (round + 1)) as f64)).unwrap();
        let zeroed = round % 2 == 1;
        let mut ys = if zeroed {
            SharedArray::zeroed(n).unwrap()
        } else {
            SharedArray::for_overwrite(n).unwrap()
        };
        if zeroed {
            // The segment held the last round's output: it must read as zeros now.
            assert!(
                ys.iter().all(|&y| y == 0.0),
                "round {round}: a reused zeroed array is not zero"
            );
            let range = n / 3..2 * n / 3;
            pool.bulk()
                .chunk_len(4096)
                .range(range.clone())
                .map_into(&xs, &mut ys, |x: f64| 2.0 * x + 1.0)
                .unwrap();
            for (i, &y) in ys.iter().enumerate() {
                let want = if range.contains(&i) {
                    2.0 * (i * (round + 1)) as f64 + 1.0
                } else {
                    0.0
                };
                assert_eq!(y, want, "round {round}, element {i}");
            }
        } else {
            pool.bulk()
                .chunk_len(4096)
                .map_into(&xs, &mut ys, |x: f64| 2.0 * x + 1.0)
                .unwrap();
            for (i, &y) in ys.iter().enumerate() {
                assert_eq!(
                    y,
                    2.0 * (i * (round + 1)) as f64 + 1.0,
                    "round {round}, element {i}"
                );
            }
        }
    }
    let after = array_cache::stats();
    // Rounds 1 to 5 each reuse the two segments of the round before.
    assert!(
        after.reused - before.reused >= 10,
        "{} reuses: {after:?}",
        after.reused - before.reused
    );
}

/// A worker forked from a parent whose cache holds a segment: its own arrays of
/// that length are new memory (the parent's mapping does not exist in the child),
/// zeroed, and what it drops stays in its own process.
fn a_worker_never_takes_the_parents_cached_segments(m: StartMethod) {
    let _serial = shared();
    let n = unique_len(2, m);
    let before = array_cache::stats();
    drop(SharedArray::filled(n, 5.0f64).unwrap());
    assert!(
        array_cache::stats().kept > before.kept,
        "the parent kept it"
    );
    let pool = common::pool(m);
    let sums = pool
        .map(
            |n: usize| {
                let mut total = 0.0;
                for _ in 0..3 {
                    let mut a = SharedArray::<f64>::zeroed(n).unwrap();
                    total += a.iter().sum::<f64>();
                    a.fill(3.0);
                }
                total
            },
            vec![n; 4],
        )
        .unwrap();
    assert_eq!(sums, vec![0.0; 4]);
    // The parent's segment is still there for it.
    let ys = SharedArray::<f64>::zeroed(n).unwrap();
    assert!(ys.iter().all(|&y| y == 0.0));
}

per_start_method!(
    reused_arrays_give_each_call_its_own_values,
    a_worker_never_takes_the_parents_cached_segments,
);

#[test]
fn the_cache_keeps_within_its_limits_and_off_means_off() {
    let _serial = exclusive();
    let limit = array_cache::limit();
    const MIB: usize = 1 << 20;
    array_cache::trim();
    array_cache::set_limit(3 * MIB as u64);
    // Five arrays of 1 MiB dropped together: three fit.
    let arrays: Vec<_> = (0..5)
        .map(|_| SharedArray::<u8>::filled(MIB, 1).unwrap())
        .collect();
    drop(arrays);
    let s = array_cache::stats();
    assert_eq!((s.segments, s.bytes), (3, 3 * MIB as u64), "{s:?}");
    // One larger than the limit is released at once.
    drop(SharedArray::<u8>::filled(4 * MIB, 1).unwrap());
    assert_eq!(array_cache::stats().kept, s.kept, "kept past the limit");
    // At most MAX_SEGMENTS, however small.
    array_cache::set_limit(1 << 30);
    let small: Vec<_> = (0..2 * array_cache::MAX_SEGMENTS)
        .map(|i| SharedArray::<u8>::filled(100 + i, 1).unwrap())
        .collect();
    drop(small);
    assert_eq!(array_cache::stats().segments, array_cache::MAX_SEGMENTS);
    // A different length does not match; the same bytes on the same kind of page
    // do, whatever the element type or how the pages were asked for (1 MiB is
    // under the huge-page threshold: `Auto` gives base pages).
    drop(SharedArray::<u8>::filled(MIB, 1).unwrap());
    let reused = array_cache::stats().reused;
    drop(SharedArray::<u8>::zeroed(MIB + 64).unwrap());
    assert_eq!(array_cache::stats().reused, reused, "another length");
    let base = SharedArray::<u8>::zeroed_with_pages(MIB, shmpool::Pages::Base).unwrap();
    assert!(base.iter().all(|&b| b == 0));
    drop(base);
    assert_eq!(array_cache::stats().reused, reused + 1, "Pages::Base");
    let words = SharedArray::<u16>::zeroed(MIB / 2).unwrap();
    assert!(words.iter().all(|&w| w == 0));
    drop(words);
    assert_eq!(
        array_cache::stats().reused,
        reused + 2,
        "same bytes, other type"
    );
    array_cache::trim();
    let s = array_cache::stats();
    assert_eq!((s.segments, s.bytes), (0, 0), "{s:?}");
    // Off: nothing is kept, nothing reused.
    array_cache::set_limit(0);
    drop(SharedArray::<u8>::filled(MIB, 1).unwrap());
    drop(SharedArray::<u8>::filled(MIB, 1).unwrap());
    let off = array_cache::stats();
    assert_eq!((off.segments, off.kept, off.reused), (0, s.kept, s.reused));
    array_cache::set_limit(limit);
}

#[test]
fn workers_keep_a_cached_array_mapped_and_unmap_it_once_trimmed() {
    let _serial = exclusive();
    let pool = Pool::new(2).unwrap();
    let count_mappings = |pid: i32| -> usize {
        std::fs::read_to_string(format!("/proc/{pid}/maps"))
            .map(|m| m.lines().filter(|l| l.contains("shmpool-array")).count())
            .unwrap_or(0)
    };
    let pids = common::worker_pids(&pool);
    let mapped = || -> usize { pids.iter().map(|&p| count_mappings(p)).sum() };
    array_cache::trim();
    assert!(common::wait_until(Duration::from_secs(5), || mapped() == 0));
    {
        let xs = SharedArray::filled(1 << 20, 1.0f64).unwrap();
        let mut ys = SharedArray::<f64>::zeroed(1 << 20).unwrap();
        pool.map_into(&xs, &mut ys, |v: f64| v).unwrap();
    }
    let kept = mapped();
    assert!(kept >= 2, "the workers mapped the arrays: {kept}");
    // Dropped into the cache: still alive, so still mapped, with its pages.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(mapped(), kept);
    array_cache::trim();
    assert!(
        common::wait_until(Duration::from_secs(5), || mapped() == 0),
        "workers still map {} arrays after the trim",
        mapped()
    );
}

/// Issue 24, defect 1: a loop that makes a 1 GiB `zeroed` output each step and
/// writes only its first 64 KiB allocates a few pages on every step, as the first
/// step does (`np.zeros`). Before, from the second step on, zeroing the reused
/// segment allocated the whole GiB (`MADV_POPULATE_READ` over the mapping, then a
/// write over all of it): `step 1: the file holds 1073741824 bytes`.
#[test]
fn a_sparse_loop_of_zeroed_outputs_stays_lazy_on_every_step() {
    const GIB: usize = 1 << 30;
    const USED: usize = 64 << 10;
    let _serial = exclusive();
    let limit = array_cache::limit();
    array_cache::set_limit(2 * GIB as u64);
    let pool = Pool::new(2).unwrap();
    let before = array_cache::stats();
    for step in 0..4u8 {
        let mut ys = SharedArray::<u8>::zeroed(GIB).unwrap();
        if ys.page_kind() == shmpool::PageKind::HugeTlb {
            // Every hugetlbfs page is reserved when the array is made: there is
            // nothing lazy to keep.
            println!("SKIPPED: a GiB gets hugetlbfs pages on this machine");
            break;
        }
        // What the step before wrote is gone.
        assert!(
            ys[..USED].iter().all(|&v| v == 0),
            "step {step}: not zeroed"
        );
        let started = std::time::Instant::now();
        pool.bulk()
            .range(0..USED)
            .for_each_mut(&mut ys, |v: &mut u8| *v = 7)
            .unwrap();
        assert!(ys[..USED].iter().all(|&v| v == 7), "step {step}");
        // The rest reads as zeros (each read allocates the page it reads).
        for i in [USED, USED + 5000, GIB / 3, GIB / 2, GIB - 1] {
            assert_eq!(ys[i], 0, "step {step}, element {i}");
        }
        let held = array_memory::file_bytes(&ys);
        // 64 KiB, the header's page and the pages read above, in pages of up to
        // 2 MiB: well under 16 MiB whatever the page kind.
        assert!(
            held < 16 << 20,
            "step {step}: the file holds {held} bytes ({:?} pages)",
            ys.page_kind()
        );
        assert!(started.elapsed() < Duration::from_secs(20));
    }
    let after = array_cache::stats();
    array_cache::set_limit(limit);
    assert!(
        after.reused - before.reused >= 3,
        "the loop did not reuse memory: {after:?}"
    );
}
