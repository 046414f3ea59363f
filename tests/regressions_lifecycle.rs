//! Regression tests for the bugs of issue 10 in the lives of workers and pools: bug 2
//! (`max_tasks_per_child` with killed workers), bug 5 (a task timeout while the fork
//! server is stopped) and bug 7 (one EMFILE while creating a pool), one section each.
//! The other bugs are tested by the other `regressions_*.rs` files, one per family
//! (`bugN_` names throughout).
//!
//! Each fails on code that has its bug, and none can hang: every test body runs
//! under a time limit (`common::within`) and every result is waited for with
//! `get_timeout` (`common::get`).

#[macro_use]
mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{
    Deliveries, RaiseOnDrop, Stopped, first_wrong, fork_server_of, get, live_children_of, ok,
    rerun_self, signal_worker, wait_until, within, worker_pids,
};
use shmpool::{DeathCause, Error, Pool, StartMethod, Work};

/// The time limit of one test's body.
const LIMIT: Duration = Duration::from_secs(90);

per_start_method!(bug5_a_task_timeout_is_enforced_while_the_fork_server_is_stopped);

// ---------------------------------------------------------------------------------
// Bug 2: max_tasks_per_child together with killed workers: exit-0 deaths, Start
// errors, and extra workers left running.
// ---------------------------------------------------------------------------------

fn scramble(x: u64) -> u64 {
    x.wrapping_mul(2_654_435_761) ^ 0x5555
}

/// Until `stop`, SIGKILLs every second new worker pid that `stats()` shows.
/// Returns the number of kills.
fn kill_every_second_new_worker(pool: &Pool, server: i32, stop: &AtomicBool) -> usize {
    let mut seen = HashSet::new();
    let mut kills = 0;
    while !stop.load(Ordering::Acquire) {
        for pid in worker_pids(pool) {
            if seen.insert(pid) && seen.len() % 2 == 0 && signal_worker(pid, server, libc::SIGKILL)
            {
                kills += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    kills
}

/// The number of live workers, by `stats()` and by the fork server's live children.
fn live_workers(pool: &Pool, server: i32) -> (usize, usize) {
    (worker_pids(pool).len(), live_children_of(server).len())
}

/// Waits up to `limit` for exactly `n` live workers, by both counts.
fn assert_live_workers_settle_at(what: &str, pool: &Pool, server: i32, n: usize, limit: Duration) {
    let settled = wait_until(limit, || live_workers(pool, server) == (n, n));
    assert!(
        settled,
        "{what}: after {limit:?}, (stats, /proc) count {:?} live workers, expected {n}: \
         stats pids {:?}, children of the fork server {:?}",
        live_workers(pool, server),
        worker_pids(pool),
        live_children_of(server)
    );
}

/// Checks the outcome of task `i` (`scramble(i)`) under kills: the right value, or
/// a death or timeout naming a task no other error named; never the normal exit of
/// a retiring worker, never `Start`.
fn check_scrambled(what: &str, i: usize, r: shmpool::Result<u64>, failed_tasks: &mut HashSet<u64>) {
    match r {
        Ok(v) => assert_eq!(v, scramble(i as u64), "{what}: wrong value"),
        Err(
            ref e @ (Error::WorkerDied {
                work: Work::Task(id),
                ..
            }
            | Error::Timeout {
                work: Work::Task(id),
                ..
            }),
        ) => {
            if let Error::WorkerDied { cause, .. } = e {
                assert_ne!(
                    *cause,
                    DeathCause::Exit(0),
                    "{what}: a retiring worker's normal exit failed it: {e}"
                );
            }
            assert!(failed_tasks.insert(id), "{what}: {e} names a task twice");
        }
        Err(e) => panic!("{what}: unexpected error: {e} ({e:?})"),
    }
}

/// One pool of 2 workers retiring every 2 tasks, 3000 tasks, and every second
/// new worker killed.
fn retirements_and_kills(round: usize) {
    const TASKS: usize = 3000;
    let pool = ok(
        Pool::builder().processes(2).max_tasks_per_child(2).build(),
        "build",
    );
    let server = fork_server_of(&pool);
    let deliveries = Deliveries::new(TASKS);
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let (died, kills) = std::thread::scope(|s| {
        let killer = s.spawn(|| kill_every_second_new_worker(&pool, server, &stop));
        let stop_killer = RaiseOnDrop(&stop);
        let results: Vec<_> = (0..TASKS)
            .map(|i| {
                let r =
                    pool.tasks()
                        .apply_async_with(scramble, (i as u64,), deliveries.callbacks(i));
                ok(r, format!("round {round}: submit"))
            })
            .collect();
        let mut failed_tasks = HashSet::new();
        for (i, r) in results.into_iter().enumerate() {
            let what = format!("round {round}, task {i}");
            check_scrambled(&what, i, get(r, &what), &mut failed_tasks);
        }
        drop(stop_killer);
        (failed_tasks.len(), killer.join().unwrap())
    });
    eprintln!(
        "round {round}: {TASKS} tasks in {:?}: {died} died, {kills} kills, {} respawns",
        started.elapsed(),
        pool.stats().respawns
    );
    if let Some((i, n)) = deliveries.first_not_once() {
        panic!("round {round}: task {i} was delivered {n} times");
    }
    assert!(kills > 0, "round {round}: the killer never struck");
    assert!(
        died <= kills,
        "round {round}: {died} tasks died with {kills} kills"
    );
    assert_live_workers_settle_at(
        &format!("round {round}"),
        &pool,
        server,
        2,
        Duration::from_secs(5),
    );
    let last = ok(pool.map(scramble, 0..100u64), "a final map");
    assert_eq!(
        first_wrong(&last, &[], |i| scramble(i as u64)),
        None,
        "round {round}: a final map: wrong value"
    );
}

/// Retirements and kills together. (Each failure is a race, seen in about every
/// second pool: four pools make one all but certain.)
#[test]
fn bug2_max_tasks_per_child_with_killed_workers() {
    within(LIMIT, "bug2", || (0..4).for_each(retirements_and_kills));
}

/// Without kills: after every retirement exactly one replacement starts, so once
/// the work is done exactly `processes` workers live. (A race makes it fail only
/// now and then: 20 fresh pools make it all but certain.)
#[test]
fn bug2_retired_workers_exit_and_respawns_match_retirements() {
    const PER_CHILD: u64 = 10;
    within(LIMIT, "bug2 retirements", || {
        for round in 0..20 {
            let pool = ok(
                Pool::builder()
                    .processes(3)
                    .start_method(StartMethod::ForkServer)
                    .max_tasks_per_child(PER_CHILD as u32)
                    .build(),
                "build",
            );
            let server = fork_server_of(&pool);
            let results: Vec<_> = (0..100u64)
                .map(|i| ok(pool.apply_async(scramble, (i,)), "submit"))
                .collect();
            for (i, r) in results.into_iter().enumerate() {
                assert_eq!(
                    ok(get(r, i), i),
                    scramble(i as u64),
                    "round {round}, task {i}"
                );
            }
            // Every result is in, so every task is counted (a worker counts a task
            // before it publishes the result) and the counts are final.
            let stats = pool.stats();
            let done: u64 = stats.workers.iter().map(|w| w.tasks_done).sum();
            assert_eq!(done, 100, "round {round}: {stats:?}");
            // Every process that ran in a slot retired after exactly PER_CHILD tasks,
            // except the one running there now: so a slot's retirements are its
            // tasks_done / PER_CHILD. (Stats has no retirement counter of its own.)
            let retirements: u64 = stats.workers.iter().map(|w| w.tasks_done / PER_CHILD).sum();
            // The last retirement may still be under way when its result arrives:
            // wait for its replacement. A missing or an extra respawn never settles.
            // Generous for a loaded 2-core CI machine: the retiring workers' exits go
            // through the fork server's reap and the collector.
            let settle = Duration::from_secs(10);
            let replaced = wait_until(settle, || pool.stats().respawns == retirements);
            assert!(
                replaced,
                "round {round}: after {settle:?}, respawns != {retirements} retirements: {:?}",
                pool.stats()
            );
            assert_live_workers_settle_at(&format!("round {round}"), &pool, server, 3, settle);
        }
    });
}

// ---------------------------------------------------------------------------------
// Bug 5: a task timeout is not enforced while the fork server is stopped.
// ---------------------------------------------------------------------------------

fn bug5_a_task_timeout_is_enforced_while_the_fork_server_is_stopped(method: StartMethod) {
    within(LIMIT, "bug5", move || {
        let limit = Duration::from_millis(200);
        let pool = ok(
            Pool::builder()
                .processes(1)
                .start_method(method)
                .task_timeout(limit)
                .build(),
            "build",
        );
        assert_eq!(ok(pool.apply(|x: u32| x + 1, (1,)), "warm-up"), 2);
        let server = fork_server_of(&pool);
        let stopped = Stopped::new(server);
        let slow = ok(
            pool.apply_async(|| std::thread::sleep(Duration::from_secs(10)), ()),
            "submit",
        );
        let t = Instant::now();
        match slow.get_timeout(Duration::from_secs(3)) {
            Err(Error::Timeout {
                limit: l,
                work: Work::Task(_),
                ..
            }) => assert_eq!(l, limit),
            other => panic!(
                "{method:?}: expected Timeout while the fork server is stopped, got {other:?} \
                 after {:?}",
                t.elapsed()
            ),
        }
        drop(stopped);
        assert_eq!(ok(pool.apply(|x: u32| x + 1, (41,)), "after SIGCONT"), 42);
    });
}

// ---------------------------------------------------------------------------------
// Bug 7: one EMFILE while creating a pool breaks pool creation for the rest of the
// process (the liveness table is process-global, so the test runs in a child).
// ---------------------------------------------------------------------------------

const EMFILE_CHILD: &str = "SHMPOOL_REGRESSIONS_EMFILE_CHILD";

#[test]
fn bug7_one_emfile_does_not_break_later_pools() {
    if std::env::var_os(EMFILE_CHILD).is_some() {
        emfile_child();
        return;
    }
    let out = rerun_self(
        "bug7_one_emfile_does_not_break_later_pools",
        EMFILE_CHILD,
        Duration::from_secs(60),
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains("EMFILE CHILD DONE"),
        "the child failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}

fn nofile_limit() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through a valid pointer.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    assert_eq!(rc, 0, "getrlimit");
    limit
}

fn set_nofile_limit(limit: libc::rlimit) {
    // SAFETY: setrlimit reads one rlimit through a valid pointer.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    assert_eq!(rc, 0, "setrlimit");
}

/// In the child: build pools under small descriptor limits (which must fail with an
/// error, not a panic, when they are too small), and after each, with the limit
/// restored, a pool must build and work.
fn emfile_child() {
    let original = nofile_limit();
    for soft in [5, 6, 8, 10, 12, 16, 24, 32] {
        set_nofile_limit(libc::rlimit {
            rlim_cur: soft,
            ..original
        });
        let attempt = std::panic::catch_unwind(|| Pool::new(1));
        set_nofile_limit(original);
        match attempt {
            Err(_) => panic!("Pool::new(1) panicked under RLIMIT_NOFILE = {soft}"),
            Ok(Err(e)) => eprintln!("RLIMIT_NOFILE = {soft}: Pool::new(1) failed: {e}"),
            Ok(Ok(pool)) => {
                assert!(soft > 5, "Pool::new(1) succeeded with only 5 descriptors");
                eprintln!("RLIMIT_NOFILE = {soft}: Pool::new(1) succeeded");
                drop(pool);
            }
        }
        let pool = ok(
            Pool::new(1),
            format!("Pool::new(1) after an attempt under RLIMIT_NOFILE = {soft}"),
        );
        assert_eq!(ok(pool.apply(|x: u32| x * 2, (21,)), "apply"), 42);
    }
    println!("EMFILE CHILD DONE");
}
