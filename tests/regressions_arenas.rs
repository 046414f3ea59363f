//! Regression tests for the bugs of issue 10 in arguments and results, which go
//! through the task and result arenas: bug 0 (payloads of 1 MiB and more) and bug 1
//! (results after a worker is replaced), one section each. The other bugs are tested
//! by the other `regressions_*.rs` files, one per family (`bugN_` names throughout).
//!
//! Each fails on code that has its bug, and none can hang: every test body runs
//! under a time limit (`common::within`) and every result is waited for with
//! `get_timeout` (`common::get`).

mod common;

use std::time::Duration;

use common::{
    fork_server_of, get, ok, pattern, pattern_mismatch, signal_worker, wait_until, within,
    worker_pids,
};
use shmpool::{AsyncResult, Callbacks, Pool};

/// The time limit of one test's body.
const LIMIT: Duration = Duration::from_secs(90);

// ---------------------------------------------------------------------------------
// Bug 0: arguments (and results) of 1 MiB and more are corrupted with no fault: the
// task arena frees big blocks with MADV_REMOVE over a length rounded up to a page,
// zeroing the start of the next block.
// ---------------------------------------------------------------------------------

/// The length of `v` and how many of its bytes are 7, after sleeping `ms`
/// milliseconds.
fn count_sevens(ms: u64, v: Vec<u8>) -> (usize, usize) {
    std::thread::sleep(Duration::from_millis(ms));
    (v.len(), v.iter().filter(|&&b| b == 7).count())
}

const MIB: usize = 1 << 20;

/// Two 1 MiB arguments, both in the arena at once (the first task takes 50 ms),
/// with a 50 ms task between them: the first block is freed (at its task's
/// completion) while the second is allocated and before the worker reads it.
#[test]
fn bug0_two_1mib_arguments_arrive_intact() {
    within(LIMIT, "bug0", || {
        let pool = ok(Pool::new(1), "Pool::new(1)");
        for round in 0..30 {
            let a = ok(pool.apply_async(count_sevens, (50, vec![7u8; MIB])), "a");
            let pause = ok(pool.apply_async(count_sevens, (50, vec![])), "pause");
            let b = ok(pool.apply_async(count_sevens, (0, vec![7u8; MIB])), "b");
            let (a, b) = (ok(get(a, "a"), "a"), ok(get(b, "b"), "b"));
            assert_eq!((a, b), ((MIB, MIB), (MIB, MIB)), "round {round}");
            assert_eq!(ok(get(pause, "pause"), "pause"), (0, 0));
        }
    });
}

#[test]
fn bug0_a_map_over_1mib_items_succeeds() {
    within(LIMIT, "bug0 map", || {
        let pool = ok(Pool::new(1), "Pool::new(1)");
        for round in 0..30 {
            // The reported case: two items (timing-dependent).
            let counts = ok(
                pool.map(|v: Vec<u8>| count_sevens(0, v), vec![vec![7u8; MIB]; 2]),
                format!("round {round}, two items"),
            );
            assert_eq!(counts, [(MIB, MIB); 2], "round {round}");
            // Deterministic, as above: one item per chunk, the first big item takes
            // 50 ms, and a 50 ms item comes between the two big ones.
            let items = [(50, vec![7u8; MIB]), (50, vec![]), (0, vec![7u8; MIB])];
            let counts = ok(
                pool.tasks().chunksize(1).starmap(count_sevens, items),
                format!("round {round}, a pause between"),
            );
            assert_eq!(counts, [(MIB, MIB), (0, 0), (MIB, MIB)], "round {round}");
        }
    });
}

/// Salt of a result's pattern, so that it differs from its argument's.
const RESULT_SALT: u64 = 0x5EED_0F0F_5EED_0F0F;

/// What a worker saw of an `echo` task's arguments: the seed, the lengths, and
/// where the argument's bytes first differ from their pattern.
type Seen = (u64, usize, usize, Option<String>);

/// Returns what it was given (`Seen`) and `out_len` bytes of the result pattern.
fn echo(seed: u64, arg_len: usize, arg: Vec<u8>, out_len: usize) -> (Seen, Vec<u8>) {
    let wrong = pattern_mismatch(seed, arg_len, &arg);
    (
        (seed, arg_len, out_len, wrong),
        pattern(seed ^ RESULT_SALT, out_len),
    )
}

/// One `echo` task in flight and what it must return.
struct Echo {
    seed: u64,
    arg_len: usize,
    out_len: usize,
    result: AsyncResult<(Seen, Vec<u8>)>,
}

impl Echo {
    fn submit(pool: &Pool, seed: u64, arg_len: usize, out_len: usize) -> Echo {
        let args = (seed, arg_len, pattern(seed, arg_len), out_len);
        Echo {
            seed,
            arg_len,
            out_len,
            result: ok(pool.apply_async(echo, args), "submit an echo"),
        }
    }

    fn check(self) {
        let what = format!(
            "task {} (argument {} bytes, result {} bytes)",
            self.seed, self.arg_len, self.out_len
        );
        let (seen, bytes) = ok(get(self.result, &what), &what);
        assert_eq!(
            seen,
            (self.seed, self.arg_len, self.out_len, None),
            "{what}: the worker got corrupted arguments (seed, argument length, result \
             length, first wrong argument byte)"
        );
        if let Some(wrong) = pattern_mismatch(self.seed ^ RESULT_SALT, self.out_len, &bytes) {
            panic!("{what}: the result is corrupted: {wrong}");
        }
    }
}

/// Sizes around the inline limit (72 bytes), a page, and the 1 MiB arena threshold.
const BOUNDARY_SIZES: [usize; 14] = [
    0,
    1,
    71,
    72,
    73,
    4095,
    4096,
    4097,
    MIB - 1,
    MIB,
    MIB + 1,
    MIB + 4095,
    3 * MIB,
    16 * MIB + 7,
];

#[test]
fn bug0_payloads_at_page_and_arena_boundaries_arrive_intact() {
    within(LIMIT, "bug0 sizes", || {
        let pool = ok(Pool::new(1), "Pool::new(1)");
        for round in 0..3u64 {
            // Every size as argument, as result, and as both, all in flight at once
            // so that their arena blocks lie next to each other.
            let mut seed = round << 32;
            let mut tasks = Vec::new();
            for &size in &BOUNDARY_SIZES {
                for (arg_len, out_len) in [(size, 16), (16, size), (size, size)] {
                    seed += 1;
                    tasks.push(Echo::submit(&pool, seed, arg_len, out_len));
                }
            }
            tasks.into_iter().for_each(Echo::check);
        }
    });
}

// ---------------------------------------------------------------------------------
// Bug 1: wrong Ok values after a worker is replaced.
// ---------------------------------------------------------------------------------

/// 100 bytes of `t`: over the 72-byte inline limit, so the result goes through the
/// worker's result arena.
fn hundred(t: u8) -> Vec<u8> {
    vec![t; 100]
}

fn patterned(seed: u64, len: usize) -> Vec<u8> {
    pattern(seed, len)
}

/// SIGKILLs every worker of `pool` and waits until `stats()` shows a new pid in
/// place of each.
fn kill_workers_and_wait_for_replacements(pool: &Pool, server: i32) {
    let old = worker_pids(pool);
    for &pid in &old {
        assert!(
            signal_worker(pid, server, libc::SIGKILL),
            "could not kill {pid}"
        );
    }
    let replaced = wait_until(Duration::from_secs(10), || {
        let now = worker_pids(pool);
        now.len() == old.len() && now.iter().all(|p| !old.contains(p))
    });
    assert!(replaced, "workers {old:?} not replaced: {:?}", pool.stats());
}

/// A trivial task whose callback keeps the pool's result thread busy for 300 ms.
fn occupy_the_result_thread(pool: &Pool) -> AsyncResult<u8> {
    ok(
        pool.tasks().apply_async_with(
            || 0u8,
            (),
            Callbacks::new().on_success(|_| std::thread::sleep(Duration::from_millis(300))),
        ),
        "submit the busy task",
    )
}

#[test]
fn bug1_results_after_a_worker_replacement_are_the_right_ones() {
    within(LIMIT, "bug1", || {
        let pool = ok(Pool::new(1), "Pool::new(1)");
        let server = fork_server_of(&pool);
        assert_eq!(ok(pool.apply(hundred, (9,)), "warm-up"), vec![9; 100]);
        for round in 0..5 {
            kill_workers_and_wait_for_replacements(&pool, server);
            let busy = occupy_the_result_thread(&pool);
            let a = ok(pool.apply_async(hundred, (1,)), "submit a");
            let b = ok(pool.apply_async(hundred, (2,)), "submit b");
            assert_eq!(ok(get(a, "a"), "a"), vec![1; 100], "round {round}: a");
            assert_eq!(ok(get(b, "b"), "b"), vec![2; 100], "round {round}: b");
            assert_eq!(ok(get(busy, "busy"), "busy"), 0);
        }
    });
}

/// A `patterned` result in flight.
struct Patterned {
    seed: u64,
    len: usize,
    result: AsyncResult<Vec<u8>>,
}

impl Patterned {
    /// Submits `patterned(seed, len)`, run after a pause of `pause_ms` in the
    /// worker; with `busy`, its callback occupies the result thread for 150 ms.
    fn submit(pool: &Pool, seed: u64, len: usize, pause_ms: u64, busy: bool) -> Patterned {
        let callbacks = if busy {
            Callbacks::new().on_success(|_: &Vec<u8>| {
                std::thread::sleep(Duration::from_millis(150));
            })
        } else {
            Callbacks::new()
        };
        let result = pool.tasks().apply_async_with(
            |seed: u64, len: usize, pause_ms: u64| {
                std::thread::sleep(Duration::from_millis(pause_ms));
                patterned(seed, len)
            },
            (seed, len, pause_ms),
            callbacks,
        );
        Patterned {
            seed,
            len,
            result: ok(result, "submit"),
        }
    }

    fn check(self) {
        let what = format!("task {} ({} bytes)", self.seed, self.len);
        let v = ok(get(self.result, &what), &what);
        if let Some(wrong) = pattern_mismatch(self.seed, self.len, &v) {
            panic!("{what}: wrong result: {wrong}");
        }
    }
}

const KIB_256: usize = 256 << 10;

/// The results of a replacement worker are read back from where the parent
/// thinks they are: the replacement must not start over its result arena while
/// earlier results are unread. `k` results of the first worker make the parent's
/// count of bytes read (per slot, kept across the replacement) equal to the
/// replacement's k first results: so its (k+1)-th overwrites its first.
#[test]
fn bug1_many_big_results_after_a_replacement_are_the_right_ones() {
    within(LIMIT, "bug1 many", || {
        for k in 1..=3u64 {
            let pool = ok(Pool::new(1), "Pool::new(1)");
            let server = fork_server_of(&pool);
            (0..k)
                .map(|i| Patterned::submit(&pool, i, KIB_256, 0, false))
                .for_each(Patterned::check);
            kill_workers_and_wait_for_replacements(&pool, server);
            let busy = occupy_the_result_thread(&pool);
            let results: Vec<_> = (0..200)
                .map(|i| Patterned::submit(&pool, (k << 32) + i, KIB_256, 0, false))
                .collect();
            results.into_iter().for_each(Patterned::check);
            ok(get(busy, "busy"), "busy");
        }
    });
}

/// Retirements: one worker, replaced every 3 tasks, alternating between two slots.
/// The processes run [big, small, small], then [big, big, big] twice: the third
/// takes over the first one's slot, whose count of bytes read equals its first
/// result, so its second result must not overwrite its first. The last task of a
/// process runs 100 ms (its replacement is up by then), then its callback occupies
/// the result thread for 150 ms; the replacement's first task runs 150 ms, so that
/// its results are stored while the result thread is busy.
#[test]
fn bug1_big_results_across_max_tasks_per_child_retirements_are_the_right_ones() {
    within(LIMIT, "bug1 retirements", || {
        for round in 0..4u64 {
            let pool = ok(
                Pool::builder().processes(1).max_tasks_per_child(3).build(),
                "build",
            );
            let results: Vec<_> = (0..9u64)
                .map(|i| {
                    let (process, pos) = (i / 3, (i % 3) as usize);
                    let len = if process == 0 && pos != 0 {
                        16
                    } else {
                        KIB_256
                    };
                    let pause_ms = [150, 0, 100][pos];
                    Patterned::submit(&pool, (round << 32) + i, len, pause_ms, pos == 2)
                })
                .collect();
            results.into_iter().for_each(Patterned::check);
            assert!(pool.stats().respawns >= 2, "{:?}", pool.stats());
        }
    });
}
