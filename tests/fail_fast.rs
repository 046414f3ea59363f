//! A bulk map stops, and reports, as soon as one of its workers dies: a worker
//! SIGKILLed in a long map, or killed for running past its chunk timeout, fails the
//! map within milliseconds instead of after every other chunk ran. The error names
//! the dead chunk (`WorkerDied` / `Timeout`) and every other range not computed
//! (`ChunkSkipped { after: <the dead chunk> }`); everything else is computed.
//!
//! The maps below take about 2 s of work (chunks of 10 elements, 1 ms of sleep per
//! element, on 2 workers). One chosen element *parks* its worker inside its chunk:
//! it records its pid in a marker file and sleeps. The test then kills it (or lets
//! the chunk timeout do it), so the death is always inside a chunk, about 200 ms
//! into the map. Sleeping kernels leave the CPU to the rest of the test run.

#[macro_use]
mod common;

use std::ops::Range;
use std::time::{Duration, Instant};

use common::{fork_server_of, marker_path, ok, pool_of, signal_worker, wait_until, within};
use shmpool::{DeathCause, Error, Pool, SharedArray, StartMethod, Work};

/// Elements in each map.
const LEN: usize = 4000;
/// Elements per chunk.
const CHUNK: usize = 10;
/// The element that parks its worker: chunk 40 of 400, reached about 200 ms into
/// the map (two workers, about 10 ms per chunk).
const PARK_AT: u64 = 405;
/// The chunk that holds it.
const PARKED_CHUNK: Range<usize> = 400..410;
/// What an output element holds before the map writes it.
const UNSET: u64 = u64::MAX;
/// The time limit of one test's body.
const LIMIT: Duration = Duration::from_secs(90);
/// How long the map may take to return after its worker died: generous for a loaded
/// 2-core machine, and still far below the ~1.8 s of work left at the death.
const PROMPT: Duration = Duration::from_secs(1);

per_start_method!(
    a_killed_worker_stops_a_long_map_into,
    a_killed_worker_stops_a_long_map_on_a_pool_of_one,
    a_chunk_timeout_stops_a_long_map_chunks_into,
);

/// The value every element should get.
fn expected(v: u64) -> u64 {
    v * v + 1
}

/// Called in a worker: writes this process's pid into the park marker of its pool
/// (named after the fork server, the worker's parent) and sleeps until killed.
fn park() -> ! {
    // SAFETY: getppid and getpid have no preconditions.
    let (server, pid) = unsafe { (libc::getppid(), libc::getpid()) };
    let path = marker_path("fail-fast-park", server, 0);
    let tmp = path.with_extension("tmp");
    // Written whole, then renamed: the test never reads half a pid.
    if std::fs::write(&tmp, pid.to_string()).is_ok() {
        let _ = std::fs::rename(&tmp, &path);
    }
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

/// The map_into kernel: 1 ms per element; parks its worker at `PARK_AT`.
fn slow_or_park(v: u64) -> u64 {
    if v == PARK_AT {
        park();
    }
    std::thread::sleep(Duration::from_millis(1));
    expected(v)
}

/// The map_chunks_into kernel: the same, a chunk at a time.
fn slow_chunk_or_park(xs: &[u64], ys: &mut [u64]) {
    if xs.contains(&PARK_AT) {
        park();
    }
    std::thread::sleep(Duration::from_millis(xs.len() as u64));
    for (y, &x) in ys.iter_mut().zip(xs) {
        *y = expected(x);
    }
}

/// Waits (up to 30 s) until a worker of the pool of fork server `server` parks; returns
/// its pid and when the test saw it park.
fn parked_worker(server: i32) -> (i32, Instant) {
    let path = marker_path("fail-fast-park", server, 0);
    let mut pid = None;
    let parked = wait_until(Duration::from_secs(30), || {
        pid = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.parse().ok());
        pid.is_some()
    });
    assert!(parked, "no worker parked at element {PARK_AT}");
    (pid.unwrap(), Instant::now())
}

fn remove_park_marker(server: i32) {
    let path = marker_path("fail-fast-park", server, 0);
    let _ = std::fs::remove_file(path.with_extension("tmp"));
    let _ = std::fs::remove_file(path);
}

/// Checks a failed map's error and output: `dead` is the error of the parked chunk
/// (which it checks), and every other range named must be skipped after it. Every
/// element is either inside exactly one named range or holds its value; a skipped
/// range was never run, so it still holds `UNSET`; the chunks skipped are the run
/// from where the map stopped to its end, named as one range. Returns the elements
/// not computed.
fn check_stopped_map(
    what: &str,
    err: &Error,
    ys: &SharedArray<u64>,
    dead: impl Fn(&Error) -> bool,
) -> usize {
    let errors = match err {
        Error::ChunksLost { errors } => errors.as_slice(),
        one => std::slice::from_ref(one),
    };
    let (mut deaths, mut skipped) = (0, 0);
    for e in errors {
        match e {
            Error::ChunkSkipped { chunk, after } => {
                skipped += 1;
                assert_eq!(
                    *after, PARKED_CHUNK,
                    "{what}: skipped after {after:?}: {err}"
                );
                assert!(!chunk.is_empty(), "{what}: an empty range in {err}");
                let run = chunk.clone().find(|&i| ys[i] != UNSET);
                assert_eq!(
                    run, None,
                    "{what}: element of skipped range {chunk:?} was written: {err}"
                );
            }
            e if dead(e) => deaths += 1,
            other => panic!("{what}: unexpected {other} in {err}"),
        }
    }
    assert_eq!(deaths, 1, "{what}: the dead chunk is not named once: {err}");
    assert_eq!(
        skipped, 1,
        "{what}: the skipped chunks are not one range: {err}"
    );
    // failed_ranges lists exactly the ranges of the errors, in order, and they are
    // whole chunks that do not overlap.
    let failed = err.failed_ranges();
    assert_eq!(failed.len(), errors.len(), "{what}: {err}");
    for (i, r) in failed.iter().enumerate() {
        assert!(
            r.start % CHUNK == 0 && (r.end % CHUNK == 0 || r.end == LEN) && r.end <= LEN,
            "{what}: {r:?} is not a run of whole chunks"
        );
        if i > 0 {
            assert!(
                failed[i - 1].end <= r.start,
                "{what}: ranges out of order or overlapping: {failed:?}"
            );
        }
    }
    // Exactly once: each element is named by one range, or holds its value.
    let mut not_computed = 0;
    for i in 0..LEN {
        match failed.iter().filter(|r| r.contains(&i)).count() {
            0 => assert_eq!(
                ys[i],
                expected(i as u64),
                "{what}: element {i} outside the failed ranges {failed:?}"
            ),
            1 => not_computed += 1,
            n => panic!("{what}: element {i} is named {n} times: {failed:?}"),
        }
    }
    not_computed
}

/// After a stopped map, the pool runs the next one in full.
fn next_map_is_complete(what: &str, pool: &Pool, xs: &SharedArray<u64>, ys: &mut SharedArray<u64>) {
    ok(
        pool.map_into(xs, ys, expected),
        format!("{what}: the next map"),
    );
    let wrong = (0..LEN).find(|&i| ys[i] != expected(i as u64));
    assert_eq!(wrong, None, "{what}: the next map left a wrong element");
}

/// A worker SIGKILLed about 200 ms into a 2 s `map_into` fails the map within a
/// second of the kill (milliseconds, measured), naming its chunk and every range
/// skipped after it.
fn killed_worker_stops_a_map(processes: usize, method: StartMethod) {
    let what = format!("{method:?}, {processes} worker(s)");
    within(LIMIT, &what.clone(), move || {
        let pool = pool_of(processes, method);
        let server = fork_server_of(&pool);
        remove_park_marker(server);
        let xs = ok(SharedArray::try_from_iter(0..LEN as u64), &what);
        let mut ys = ok(SharedArray::<u64>::filled(LEN, UNSET), &what);
        let (r, started, killed) = std::thread::scope(|s| {
            let killer = s.spawn(|| {
                let (pid, parked) = parked_worker(server);
                assert!(signal_worker(pid, server, libc::SIGKILL), "kill {pid}");
                (Instant::now(), parked)
            });
            let started = Instant::now();
            let r = pool
                .bulk()
                .chunk_len(CHUNK)
                .map_into(&xs, &mut ys, slow_or_park);
            (r, started, killer.join().expect("the killer thread"))
        });
        let returned = Instant::now();
        remove_park_marker(server);
        let (killed, parked) = killed;
        let latency = returned.saturating_duration_since(killed);
        eprintln!(
            "{what}: parked {:?} into the map, killed {:?} later; the map returned {:?} \
             after the kill ({:?} in all)",
            parked - started,
            killed - parked,
            latency,
            returned - started
        );
        let err = r.expect_err("a worker was killed, yet the map succeeded");
        let not_computed = check_stopped_map(&what, &err, &ys, |e| {
            matches!(
                e,
                Error::WorkerDied {
                    cause: DeathCause::Signal(libc::SIGKILL),
                    work: Work::Chunk(r),
                    ..
                } if *r == PARKED_CHUNK
            )
        });
        assert!(
            latency < PROMPT,
            "{what}: the map returned {latency:?} after the kill: {err}"
        );
        // The map stopped early: most of it was not computed.
        assert!(
            not_computed > LEN / 2,
            "{what}: only {not_computed} of {LEN} elements were not computed: {err}"
        );
        next_map_is_complete(&what, &pool, &xs, &mut ys);
    });
}

fn a_killed_worker_stops_a_long_map_into(method: StartMethod) {
    killed_worker_stops_a_map(2, method);
}

/// With one worker, nobody else is inside the job to make the claim that skips the
/// rest: the collector closes it, and the map still returns at once.
fn a_killed_worker_stops_a_long_map_on_a_pool_of_one(method: StartMethod) {
    killed_worker_stops_a_map(1, method);
}

/// A chunk that runs past `chunk_timeout` in a 2 s `map_chunks_into`: its worker is
/// killed when the limit passes, and the map returns then, naming the chunk with
/// `Timeout` and every range skipped after it.
fn a_chunk_timeout_stops_a_long_map_chunks_into(method: StartMethod) {
    let what = format!("{method:?}, chunk timeout");
    within(LIMIT, &what.clone(), move || {
        let limit = Duration::from_millis(300);
        let pool = pool_of(2, method);
        let server = fork_server_of(&pool);
        remove_park_marker(server);
        let xs = ok(SharedArray::try_from_iter(0..LEN as u64), &what);
        let mut ys = ok(SharedArray::<u64>::filled(LEN, UNSET), &what);
        let (r, started, parked) = std::thread::scope(|s| {
            let watcher = s.spawn(|| parked_worker(server).1);
            let started = Instant::now();
            let r = pool
                .bulk()
                .chunk_len(CHUNK)
                .chunk_timeout(limit)
                .map_chunks_into(&xs, &mut ys, slow_chunk_or_park);
            (r, started, watcher.join().expect("the watcher thread"))
        });
        let returned = Instant::now();
        remove_park_marker(server);
        // The chunk started a little before the test saw it park.
        let after_limit = returned
            .saturating_duration_since(parked)
            .saturating_sub(limit);
        eprintln!(
            "{what}: parked {:?} into the map; the map returned {after_limit:?} after the \
             limit passed ({:?} in all)",
            parked - started,
            returned - started
        );
        let err = r.expect_err("a chunk hung, yet the map succeeded");
        let not_computed = check_stopped_map(&what, &err, &ys, |e| {
            matches!(
                e,
                Error::Timeout { limit: l, work: Work::Chunk(r), .. }
                    if *l == limit && *r == PARKED_CHUNK
            )
        });
        assert!(
            after_limit < PROMPT,
            "{what}: the map returned {after_limit:?} after the limit passed: {err}"
        );
        assert!(
            not_computed > LEN / 4,
            "{what}: only {not_computed} of {LEN} elements were not computed: {err}"
        );
        next_map_is_complete(&what, &pool, &xs, &mut ys);
    });
}
