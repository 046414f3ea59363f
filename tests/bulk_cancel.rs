//! Cancelling bulk operations through a `CancelToken`: queued chunks never run,
//! running ones are killed (their workers replaced) or let finish, the result names
//! the ranges computed, and nothing else is touched.

#[macro_use]
mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{ok, pool, wait_until};
use shmpool::{CancelMode, CancelOutcome, CancelToken, Error, SharedArray, StartMethod};

per_start_method!(
    a_kill_cancel_stops_the_map_and_replaces_the_workers_inside_it,
    a_let_finish_cancel_keeps_the_workers_and_completes_running_chunks,
    a_cancel_racing_the_end_agrees_with_the_result,
);

const SLOW_MS: u64 = 150;

fn worker_pids(pool: &shmpool::Pool) -> HashSet<i32> {
    pool.stats().workers.iter().filter_map(|w| w.pid).collect()
}

/// Runs a slow map (each chunk marks its elements with 1 after sleeping) with
/// `token`, cancelled with `mode` after `after`; returns the error and the array.
fn cancelled_map(
    pool: &shmpool::Pool,
    mode: CancelMode,
    after: Duration,
) -> (Error, SharedArray<u32>, CancelOutcome) {
    let mut xs = ok(SharedArray::<u32>::zeroed(40), "array");
    let token = CancelToken::new();
    let outcome = std::thread::scope(|s| {
        let canceller = s.spawn(|| {
            std::thread::sleep(after);
            token.cancel_with(mode)
        });
        let r = pool
            .bulk()
            .chunk_len(2)
            .cancel_token(&token)
            .for_each_chunk_mut(&mut xs, |c: &mut [u32]| {
                std::thread::sleep(Duration::from_millis(SLOW_MS));
                c.fill(1);
            });
        let outcome = canceller.join().expect("canceller");
        (r, outcome)
    });
    let (r, outcome) = outcome;
    (r.expect_err("a cancelled map must fail"), xs, outcome)
}

/// Checks a `MapCancelled` against the array: completed ranges hold 1s, and the
/// map did not complete.
fn check_completed(err: &Error, xs: &SharedArray<u32>) -> Vec<std::ops::Range<usize>> {
    let Error::MapCancelled { completed, range } = err else {
        panic!("expected MapCancelled, got {err:?}");
    };
    assert_eq!(*range, 0..xs.len());
    for r in completed {
        assert!(
            xs[r.clone()].iter().all(|&v| v == 1),
            "completed {r:?} not written"
        );
    }
    let done: usize = completed.iter().map(|r| r.len()).sum();
    assert!(done < xs.len(), "the whole map completed: {completed:?}");
    // The failed ranges are exactly the rest.
    let failed: usize = err.failed_ranges().iter().map(|r| r.len()).sum();
    assert_eq!(done + failed, xs.len());
    completed.clone()
}

fn a_kill_cancel_stops_the_map_and_replaces_the_workers_inside_it(m: StartMethod) {
    let pool = pool(m);
    let before = worker_pids(&pool);
    let started = Instant::now();
    let (err, xs, outcome) = cancelled_map(&pool, CancelMode::Kill, Duration::from_millis(400));
    let took = started.elapsed();
    assert_eq!(outcome, CancelOutcome::Cancelled);
    let completed = check_completed(&err, &xs);
    // 20 chunks of 150 ms on 2 workers take 1.5 s; a kill returns within a chunk.
    assert!(
        took < Duration::from_millis(1000),
        "the cancel took {took:?}"
    );
    assert!(
        !completed.is_empty(),
        "the first chunks finished before the cancel"
    );
    // Both workers held a chunk at the cancel: both were killed and replaced.
    assert!(
        wait_until(Duration::from_secs(10), || {
            let now = worker_pids(&pool);
            now.len() == 2 && now.is_disjoint(&before)
        }),
        "workers {before:?} were not replaced: {:?}",
        worker_pids(&pool)
    );
    for pid in &before {
        assert!(
            wait_until(Duration::from_secs(5), || !std::path::Path::new(&format!(
                "/proc/{pid}"
            ))
            .exists()),
            "worker {pid} still exists"
        );
    }
    // The pool still computes right.
    let x = ok(SharedArray::try_from_iter(0..1000u64), "x");
    assert_eq!(ok(pool.bulk().sum(&x), "sum after"), 499_500);
}

fn a_let_finish_cancel_keeps_the_workers_and_completes_running_chunks(m: StartMethod) {
    let pool = pool(m);
    let before = worker_pids(&pool);
    let (err, xs, outcome) =
        cancelled_map(&pool, CancelMode::LetFinish, Duration::from_millis(400));
    assert_eq!(outcome, CancelOutcome::Cancelled);
    let completed = check_completed(&err, &xs);
    // The chunks running at the cancel ran to their end: every element is either
    // in a completed range (1) or untouched (0), never partly written.
    let done: HashSet<usize> = completed.iter().flat_map(|r| r.clone()).collect();
    for (i, &v) in xs.iter().enumerate() {
        assert_eq!(v == 1, done.contains(&i), "element {i}");
    }
    assert_eq!(worker_pids(&pool), before, "LetFinish killed a worker");
    assert_eq!(pool.stats().respawns, 0);
}

#[test]
fn a_cancel_before_the_map_starts_runs_nothing() {
    let pool = pool(StartMethod::Fork);
    let token = CancelToken::new();
    assert_eq!(token.cancel(), CancelOutcome::Cancelled);
    assert_eq!(
        token.cancel(),
        CancelOutcome::AlreadyDone,
        "a second cancel"
    );
    let mut xs = ok(SharedArray::<u32>::zeroed(100), "array");
    let err = pool
        .bulk()
        .cancel_token(&token)
        .for_each_mut(&mut xs, |v: &mut u32| *v = 7)
        .unwrap_err();
    assert!(
        matches!(&err, Error::MapCancelled { completed, .. } if completed.is_empty()),
        "{err:?}"
    );
    assert!(xs.iter().all(|&v| v == 0), "a cancelled map wrote");
    // The cancel was used up: the same token runs the next map.
    ok(
        pool.bulk()
            .cancel_token(&token)
            .for_each_mut(&mut xs, |v: &mut u32| *v = 7),
        "next",
    );
    assert!(xs.iter().all(|&v| v == 7));
    assert!(!token.is_cancelled());
}

#[test]
fn cancelling_after_the_map_returned_does_nothing_and_says_so() {
    let pool = pool(StartMethod::Fork);
    let token = CancelToken::new();
    let x = ok(SharedArray::try_from_iter(0..10_000u64), "x");
    let s = ok(pool.bulk().cancel_token(&token).sum(&x), "sum");
    assert_eq!(s, 49_995_000);
    // The sum is over: the cancel changes nothing, and says so.
    assert_eq!(token.cancel(), CancelOutcome::AlreadyDone);
    assert!(!token.is_cancelled());
    // Given to another operation, the token starts afresh.
    assert_eq!(
        ok(pool.bulk().cancel_token(&token).sum(&x), "again"),
        49_995_000
    );
}

#[test]
fn a_cancelled_reduction_fails_and_other_work_is_untouched() {
    let pool = pool(StartMethod::ForkServer);
    let x = ok(SharedArray::try_from_iter((0..64).map(f64::from)), "x");
    let other_x = ok(SharedArray::try_from_iter(0..200_000u32), "other x");
    let mut other_y = ok(SharedArray::<u64>::zeroed(200_000), "other y");
    let token = CancelToken::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(120));
            assert_eq!(
                token.cancel_with(CancelMode::LetFinish),
                CancelOutcome::Cancelled
            );
        });
        // Other work on the same pool, from another thread, meanwhile.
        let other = s.spawn(|| {
            let y = &mut other_y;
            for _ in 0..5 {
                pool.map_into(&other_x, y, |v: u32| u64::from(v) * 3)
                    .expect("the other map");
            }
        });
        let r = pool.bulk().chunk_len(4).cancel_token(&token).map_reduce(
            &x,
            0.0,
            |v: f64| {
                std::thread::sleep(Duration::from_millis(25));
                v
            },
            |a: f64, b: f64| a + b,
        );
        assert!(matches!(r, Err(Error::MapCancelled { .. })), "{r:?}");
        other.join().expect("other");
    });
    assert!(other_y.iter().enumerate().all(|(i, &v)| v == i as u64 * 3));
}

/// A cancel racing with the end of the map: its outcome and the map's result always
/// agree. `Cancelled` means the map returned `MapCancelled` (naming nothing as not
/// computed if every chunk had run); `AlreadyDone` means the map's own result.
fn a_cancel_racing_the_end_agrees_with_the_result(m: StartMethod) {
    let pool = pool(m);
    let xs = SharedArray::from_slice(&(0..4096u32).collect::<Vec<_>>()).unwrap();
    let mut ys = SharedArray::<u32>::zeroed(4096).unwrap();
    let (mut cancelled, mut late) = (0, 0);
    for round in 0..300u32 {
        let token = CancelToken::new();
        let canceller = token.clone();
        let mode = if round % 2 == 0 {
            CancelMode::Kill
        } else {
            CancelMode::LetFinish
        };
        // Spread the cancels over the map's whole life, its end included.
        let spin = (round as u64 * 7919) % 400;
        let (r, outcome) = std::thread::scope(|s| {
            let cancelling = s.spawn(move || {
                let until = Instant::now() + Duration::from_micros(spin);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                canceller.cancel_with(mode)
            });
            let r = pool
                .bulk()
                .chunk_len(512)
                .cancel_token(&token)
                .with(round)
                .map_into(&xs, &mut ys, |r: &u32, v: u32| v ^ r);
            (r, cancelling.join().unwrap())
        });
        match (outcome, r) {
            (CancelOutcome::Cancelled, Err(Error::MapCancelled { completed, range })) => {
                assert_eq!(range, 0..4096);
                for i in completed.into_iter().flatten() {
                    assert_eq!(ys[i], xs[i] ^ round, "round {round}: element {i}");
                }
                cancelled += 1;
            }
            (CancelOutcome::AlreadyDone, Ok(())) => {
                assert!((0..4096).all(|i| ys[i] == xs[i] ^ round), "round {round}");
                late += 1;
            }
            (outcome, r) => panic!(
                "round {round}, {mode:?}: the cancel said {outcome:?}, the map returned {r:?}"
            ),
        }
    }
    eprintln!("{m:?}: {cancelled} cancelled, {late} too late");
}
