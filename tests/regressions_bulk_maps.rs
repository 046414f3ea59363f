//! Regression tests for the bugs of issue 10 in bulk maps in which workers die: bug 3
//! (two deaths in one map) and bug 6 (maps after a death in a bulk map), one section
//! each. The other bugs are tested by the other `regressions_*.rs` files, one per
//! family (`bugN_` names throughout).
//!
//! Each fails on code that has its bug (except `bug3_retries_rerun_two_lost_chunks`,
//! a guard for the fix), and none can hang: every test body runs
//! under a time limit (`common::within`) and every result is waited for with
//! `get_timeout` (`common::get`).

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::{
    die, failed_ranges, first_time, first_wrong, fork_server_of, marker_path, ok, pool_of,
    remove_markers, within,
};
use shmpool::{DeathCause, Error, Pool, SharedArray, StartMethod, Work};

/// The time limit of one test's body.
const LIMIT: Duration = Duration::from_secs(90);

per_start_method!(bug6_maps_after_a_death_in_a_bulk_map_return_right_values);

// ---------------------------------------------------------------------------------
// Bug 3: a bulk map in which two workers die reports only one lost chunk.
// ---------------------------------------------------------------------------------

/// The markers `die_at_1500_and_7500` leaves, named after the pool's fork server.
const TWO_DEATHS: &str = "regressions-two-deaths";

/// Kills its worker at 1500 and at 7500, but each only once the other element has been
/// reached: a death stops the map (its other workers claim nothing more once the pool
/// has seen it), so for the map to lose two chunks both workers must be inside their
/// chunks before either dies. Each marks its arrival and waits up to 20 s for the
/// other's mark.
fn die_at_1500_and_7500(v: f64) -> f64 {
    if v == 1500.0 || v == 7500.0 {
        // SAFETY: getppid has no preconditions.
        let server = unsafe { libc::getppid() };
        let (me, other) = if v == 1500.0 {
            (1500, 7500)
        } else {
            (7500, 1500)
        };
        let _ = std::fs::write(marker_path(TWO_DEATHS, server, me), b"");
        let other = marker_path(TWO_DEATHS, server, other);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !other.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        die();
    }
    v * 2.0 + 1.0
}

fn die_once_at_1500_and_7500(v: f64) -> f64 {
    if (v == 1500.0 || v == 7500.0) && first_time("regressions-once", v as u64) {
        die();
    }
    v * 2.0 + 1.0
}

fn expected_f(i: usize) -> u64 {
    (i as f64 * 2.0 + 1.0).to_bits()
}

/// A map over 0..10000 in chunks of 1000 on two workers whose kernel kills both, at
/// 1500 and at 7500 (together): the input, the output, and the map's error. The
/// deaths stop the map, so chunks 8 and 9, not yet claimed, are skipped.
fn map_with_two_deaths(pool: &Pool) -> (SharedArray<f64>, SharedArray<f64>, Error) {
    let server = fork_server_of(pool);
    remove_markers(TWO_DEATHS, server, [1500, 7500]);
    let xs = ok(
        SharedArray::try_from_iter((0..10_000).map(|i| i as f64)),
        "xs",
    );
    let mut ys = ok(SharedArray::<f64>::zeroed(10_000), "ys");
    let r = pool
        .bulk()
        .chunk_len(1000)
        .map_into(&xs, &mut ys, die_at_1500_and_7500);
    remove_markers(TWO_DEATHS, server, [1500, 7500]);
    let err = r.expect_err("two workers died, yet the map succeeded");
    (xs, ys, err)
}

/// The ranges `map_with_two_deaths` cannot compute: the two dead chunks, and the two
/// chunks skipped after the map stopped.
const NOT_COMPUTED: [std::ops::Range<usize>; 3] = [1000..2000, 7000..8000, 8000..10_000];

#[test]
fn bug3_a_map_with_two_deaths_names_both_chunks() {
    within(LIMIT, "bug3", || {
        let pool = ok(Pool::new(2), "Pool::new(2)");
        let (xs, mut ys, err) = map_with_two_deaths(&pool);
        let mut ranges = failed_ranges(&err)
            .unwrap_or_else(|| panic!("the error names no chunk: {err} ({err:?})"));
        ranges.sort_by_key(|r| r.start);
        assert_eq!(ranges, NOT_COMPUTED, "the error: {err}");
        let bits: Vec<u64> = ys.iter().map(|y| y.to_bits()).collect();
        if let Some(i) = first_wrong(&bits, &ranges, expected_f) {
            panic!("ys[{i}] = {} outside the lost chunks", ys[i]);
        }
        // The pool carries on.
        ok(
            pool.map_into(&xs, &mut ys, |v: f64| v * 2.0 + 1.0),
            "a later map",
        );
        assert_eq!(
            first_wrong(
                &ys.iter().map(|y| y.to_bits()).collect::<Vec<_>>(),
                &[],
                expected_f
            ),
            None
        );
    });
}

/// The shape of the error itself: `ChunksLost` with one `WorkerDied` per dead chunk,
/// and the rest skipped after one of them (the death the pool saw first).
#[test]
fn bug3_two_deaths_are_reported_as_chunks_lost() {
    within(LIMIT, "bug3 ChunksLost", || {
        let pool = ok(Pool::new(2), "Pool::new(2)");
        let (_, _, err) = map_with_two_deaths(&pool);
        let Error::ChunksLost { errors } = &err else {
            panic!("expected ChunksLost, got {err:?}");
        };
        let mut died = Vec::new();
        let mut skipped = Vec::new();
        for e in errors {
            match e {
                Error::WorkerDied {
                    cause: DeathCause::Signal(libc::SIGKILL),
                    work: Work::Chunk(r),
                    ..
                } => died.push(r.clone()),
                Error::ChunkSkipped { chunk, after } => {
                    skipped.push((chunk.clone(), after.clone()))
                }
                other => panic!("an element of ChunksLost: {other:?}"),
            }
        }
        died.sort_by_key(|r| r.start);
        assert_eq!(died, [1000..2000, 7000..8000], "{err}");
        assert_eq!(skipped.len(), 1, "{err}");
        let (chunk, after) = &skipped[0];
        assert_eq!(*chunk, 8000..10_000, "{err}");
        assert!(died.contains(after), "skipped after {after:?}: {err}");
        let mut named = err.failed_ranges();
        named.sort_by_key(|r| r.start);
        assert_eq!(named, NOT_COMPUTED);
    });
}

/// Retries of two lost chunks give a complete, bit-exact map. (This one passes on
/// the current code: it guards retries while failed maps learn to name every lost
/// chunk.)
#[test]
fn bug3_retries_rerun_two_lost_chunks() {
    within(LIMIT, "bug3 retries", || {
        let pool = ok(Pool::new(2), "Pool::new(2)");
        let server = fork_server_of(&pool);
        let keys = [1500, 7500];
        remove_markers("regressions-once", server, keys);
        let xs = ok(
            SharedArray::try_from_iter((0..10_000).map(|i| i as f64)),
            "xs",
        );
        let mut ys = ok(SharedArray::<f64>::zeroed(10_000), "ys");
        let r = pool.bulk().chunk_len(1000).retries(2).map_into(
            &xs,
            &mut ys,
            die_once_at_1500_and_7500,
        );
        remove_markers("regressions-once", server, keys);
        ok(r, "a map whose two deaths were retried");
        let bits: Vec<u64> = ys.iter().map(|y| y.to_bits()).collect();
        assert_eq!(first_wrong(&bits, &[], expected_f), None);
        assert!(pool.stats().respawns >= 2, "{:?}", pool.stats());
    });
}

// ---------------------------------------------------------------------------------
// Bug 6: after a worker dies in a bulk map, the next maps can return wrong values.
// ---------------------------------------------------------------------------------

fn abort_at_9999(v: u64) -> u64 {
    if v == 9999 {
        std::process::abort();
    }
    v + 1
}

/// One death in a bulk map, then two bulk maps and a task map, all checked.
fn a_death_then_maps(pool: &Pool, what: &str) {
    let xs = ok(SharedArray::try_from_iter(0..10_000u64), what);
    let mut ys = ok(SharedArray::<u64>::zeroed(10_000), what);
    match pool.map_into(&xs, &mut ys, abort_at_9999) {
        Err(Error::WorkerDied {
            cause: DeathCause::Signal(libc::SIGABRT),
            work: Work::Chunk(r),
            ..
        }) => assert!(r.contains(&9999), "{what}: the lost chunk is {r:?}"),
        other => panic!("{what}: expected WorkerDied, got {other:?}"),
    }
    ok(pool.map_into(&xs, &mut ys, |v: u64| v * 3 + 1), what);
    assert_eq!(first_wrong(&ys, &[], |i| i as u64 * 3 + 1), None, "{what}");
    ok(pool.map_into(&xs, &mut ys, |v: u64| v ^ 0xABCD), what);
    assert_eq!(first_wrong(&ys, &[], |i| i as u64 ^ 0xABCD), None, "{what}");
    let sevens = ok(pool.map(|i: u64| i * 7, 0..1500u64), what);
    assert_eq!(sevens.len(), 1500, "{what}");
    assert_eq!(first_wrong(&sevens, &[], |i| i as u64 * 7), None, "{what}");
}

/// The failure depends on timing, and is likeliest in the first repetitions of a
/// pool: so 15 pools of 3 repetitions each.
fn bug6_maps_after_a_death_in_a_bulk_map_return_right_values(method: StartMethod) {
    within(LIMIT, "bug6", move || {
        for round in 0..15 {
            let pool = pool_of(2, method);
            for rep in 0..3 {
                a_death_then_maps(
                    &pool,
                    &format!("{method:?}, pool {round}, repetition {rep}"),
                );
            }
        }
    });
}
