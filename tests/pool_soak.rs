//! A soak test: for a bounded time, a busy pool with a memory limit per worker
//! makes and drops arrays, maps them, and runs memory-hungry tasks, some of which
//! break the limit. Every task must be answered with its own value (or, for the
//! ones over the limit, `MemoryLimit` naming it), and memory must stay flat: the
//! parent's resident memory, each worker's private and shared resident memory,
//! and the pool's shared-memory total, sampled throughout, stay within stated
//! bounds of what they were after a warm-up.
//!
//! `SHMPOOL_SOAK_SECS` makes it run longer (default 6 s).

mod common;

use std::time::{Duration, Instant};

use shmpool::{DeathCause, Error, Pool, SharedArray, StartMethod};

const MIB: u64 = 1 << 20;
/// Private memory a worker may add beyond what it starts with.
const LIMIT: u64 = 64 * MIB;
/// The arrays made and dropped each round.
const ARRAY: usize = 8 << 20;

/// A number from /proc/<pid>/status (`VmRSS:` etc.), in bytes.
fn status_field(pid: i32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// One sample of what the soak watches.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    parent_rss: u64,
    worst_worker_private: u64,
    worst_worker_shared: u64,
    pool_shared: u64,
}

fn sample(pool: &Pool) -> Sample {
    let stats = pool.stats();
    let workers = stats.workers.iter().filter(|w| w.pid.is_some());
    let (mut private, mut shared) = (0, 0);
    for w in workers {
        private = private.max(w.resident_private.unwrap_or(0));
        shared = shared.max(w.resident_shared.unwrap_or(0));
    }
    Sample {
        parent_rss: status_field(std::process::id() as i32, "VmRSS:").unwrap_or(0),
        worst_worker_private: private,
        worst_worker_shared: shared,
        pool_shared: stats.shared_memory_bytes,
    }
}

/// One round: arrays made, mapped, checked and dropped; tasks that allocate within
/// the limit and one that breaks it, each checked against its own value.
fn round(pool: &Pool, r: u64) {
    let xs = SharedArray::try_from_iter((0..ARRAY as u64 / 8).map(|i| i ^ r)).unwrap();
    let mut ys = SharedArray::<u64>::zeroed(ARRAY / 8).unwrap();
    pool.map_into(&xs, &mut ys, |v: u64| v.rotate_left(7))
        .unwrap();
    let wrong = (0..ys.len()).find(|&i| ys[i] != (i as u64 ^ r).rotate_left(7));
    assert_eq!(wrong, None, "round {r}: map_into wrong at {wrong:?}");
    drop((xs, ys));

    // Tasks that each touch 8-24 MiB of private memory and free it, and one that
    // asks for more than the limit.
    let hungry = pool
        .map_async(
            |(r, k): (u64, u64)| {
                let bytes = ((8 + k % 3 * 8) << 20) as usize;
                let mut v = vec![0u8; bytes];
                for p in (0..bytes).step_by(4096) {
                    v[p] = (r + k) as u8;
                }
                let sum: u64 = v.iter().step_by(4096).map(|&b| u64::from(b)).sum();
                (r, k, sum)
            },
            (0..6).map(|k| (r, k)),
        )
        .unwrap();
    let greedy = pool
        .apply_async(
            |n: usize| {
                let v = vec![1u8; n];
                std::hint::black_box(&v);
                v.len()
            },
            ((LIMIT as usize) * 2,),
        )
        .unwrap();
    for (k, (rr, kk, sum)) in hungry.get().unwrap().into_iter().enumerate() {
        let pages = ((8 + k as u64 % 3 * 8) << 20) / 4096;
        assert_eq!(
            (rr, kk, sum),
            (r, k as u64, pages * ((r + k as u64) as u8) as u64),
            "round {r}: task {k} answered with another task's value"
        );
    }
    match greedy.get() {
        Err(Error::WorkerDied {
            cause: DeathCause::MemoryLimit { .. },
            ..
        }) => {}
        other => panic!("round {r}: the task over the limit gave {other:?}"),
    }
}

#[test]
fn memory_stays_flat_under_churn_on_a_busy_limited_pool() {
    let secs: u64 = std::env::var("SHMPOOL_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6);
    for method in [
        StartMethod::Fork,
        StartMethod::ForkServer,
        StartMethod::Spawn,
    ] {
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .worker_memory_limit(LIMIT)
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(secs) / 3;
        // Warm up: the first rounds grow arenas and caches to their working size.
        for r in 0..3 {
            round(&pool, r);
        }
        // Every round kills a worker (the task over the limit), and a slot between
        // its worker's death and its replacement has no result arena (a page, at
        // least): sample the baseline with every worker serving, or the end looks a
        // page larger. (Seen in CI off by exactly 4096 bytes, when a dead worker's
        // arena also stayed until its slot was reused, so the count of arenas grew
        // as replacements took new slots.)
        assert!(
            common::wait_until(Duration::from_secs(5), || {
                pool.stats().workers.iter().all(|w| w.pid.is_some())
            }),
            "{method:?}: the pool did not get back to full strength"
        );
        let baseline = sample(&pool);
        let mut worst = baseline;
        let mut r = 3;
        while Instant::now() < deadline {
            round(&pool, r);
            let s = sample(&pool);
            worst.parent_rss = worst.parent_rss.max(s.parent_rss);
            worst.worst_worker_private = worst.worst_worker_private.max(s.worst_worker_private);
            worst.worst_worker_shared = worst.worst_worker_shared.max(s.worst_worker_shared);
            worst.pool_shared = worst.pool_shared.max(s.pool_shared);
            r += 1;
        }
        let grew = |now: u64, then: u64| now.saturating_sub(then) / MIB;
        let context = format!("{method:?}, {r} rounds: baseline {baseline:?}, worst {worst:?}");
        // The parent: arrays are dropped each round, results are small.
        assert!(
            grew(worst.parent_rss, baseline.parent_rss) < 32,
            "the parent grew: {context}"
        );
        // A worker frees its tasks' memory (within the limit, by construction) and
        // unmaps dropped arrays: never more than a round's worth.
        assert!(
            worst.worst_worker_private < LIMIT + 64 * MIB,
            "a worker's private memory grew: {context}"
        );
        assert!(
            worst.worst_worker_shared < 6 * ARRAY as u64 + 64 * MIB,
            "a worker kept dropped arrays mapped: {context}"
        );
        // The pool's shared memory: at most the round's two arrays above the baseline.
        assert!(
            grew(worst.pool_shared, baseline.pool_shared) <= 2 * ARRAY as u64 / MIB + 1,
            "the pool's shared memory grew: {context}"
        );
        // And once the work stops, it comes back to the baseline.
        let came_back = common::wait_until(Duration::from_secs(5), || {
            pool.stats().shared_memory_bytes <= baseline.pool_shared
        });
        let stats = pool.stats();
        assert!(
            came_back,
            "shared memory did not come back: {context}; now {} bytes, arrays {:?}, cache {:?}",
            stats.shared_memory_bytes,
            stats.array_pages,
            shmpool::array_cache::stats()
        );
        println!("{context}");
    }
}
