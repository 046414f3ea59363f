//! A kill that the pool orders (a cancel, a timeout) lands only on the work it
//! targets: work running beside it on the same pool, on other threads, is never hit,
//! even when the targeted work ends just as the kill is decided (issue 22, defects 1
//! and 2).
//!
//! Each test runs bystanders (bulk maps and small tasks whose every value is
//! checked) while another thread cancels work over and over. A bystander that fails,
//! or returns a wrong value, fails the test.

#[path = "common/mod.rs"]
#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use shmpool::{CancelMode, CancelToken, Pool, SharedArray, StartMethod};

/// Runs `map_into` (x -> 2x + 1 over 2^16 f64, chunks of 1024) until `stop`, checking
/// every element; returns how many maps ran.
fn bystander_maps(
    pool: &Pool,
    stop: &AtomicBool,
    failures: &AtomicUsize,
    runs_done: &AtomicUsize,
) -> usize {
    let n = 1 << 16;
    let x = SharedArray::try_from_iter((0..n).map(|i| i as f64)).expect("input");
    let mut y = SharedArray::<f64>::zeroed(n).expect("output");
    let mut runs = 0;
    while !stop.load(Ordering::Relaxed) {
        y.fill(-1.0);
        match pool
            .bulk()
            .chunk_len(1024)
            .map_into(&x, &mut y, |v: f64| 2.0 * v + 1.0)
        {
            Ok(()) => {
                if let Some(i) = (0..n).find(|&i| y[i] != 2.0 * i as f64 + 1.0) {
                    eprintln!("bystander map {runs}: element {i} is {}", y[i]);
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                eprintln!("bystander map {runs} failed: {e}");
                failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        runs += 1;
        runs_done.store(runs, Ordering::Relaxed);
    }
    runs
}

/// Runs small `apply` tasks until `stop`, checking each value.
fn bystander_tasks(pool: &Pool, stop: &AtomicBool, failures: &AtomicUsize) -> usize {
    let mut runs = 0u64;
    while !stop.load(Ordering::Relaxed) {
        match pool.apply(|a: u64| a * 3 + 1, (runs,)) {
            Ok(v) if v == runs * 3 + 1 => {}
            other => {
                eprintln!("bystander task {runs}: {other:?}");
                failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        runs += 1;
    }
    runs as usize
}

/// Defect 1: a bulk cancel (`Kill`) never kills a worker that has left the
/// cancelled job. 300 slow maps are cancelled a few milliseconds after they start,
/// while bulk maps and tasks run beside them.
fn bulk_cancels_hit_only_their_own_job(method: StartMethod) {
    common::within(Duration::from_secs(240), "bulk cancels", move || {
        let pool = Arc::new(common::pool_of(2, method));
        let stop = Arc::new(AtomicBool::new(false));
        let failures = Arc::new(AtomicUsize::new(0));
        let maps = {
            let (pool, stop, failures) = (pool.clone(), stop.clone(), failures.clone());
            std::thread::spawn(move || {
                bystander_maps(&pool, &stop, &failures, &AtomicUsize::new(0))
            })
        };
        let tasks = {
            let (pool, stop, failures) = (pool.clone(), stop.clone(), failures.clone());
            std::thread::spawn(move || bystander_tasks(&pool, &stop, &failures))
        };
        let mut xs = SharedArray::<u64>::zeroed(64).expect("array");
        let mut cancelled = 0;
        for round in 0..300u64 {
            let token = CancelToken::new();
            let canceller = token.clone();
            let pause = Duration::from_micros(500 + (round * 7919) % 4000);
            let t = std::thread::spawn(move || {
                std::thread::sleep(pause);
                canceller.cancel()
            });
            let r = pool.bulk().chunk_len(1).cancel_token(&token).for_each_mut(
                &mut xs,
                |v: &mut u64| {
                    std::thread::sleep(Duration::from_micros(300));
                    *v += 1;
                },
            );
            t.join().expect("canceller");
            match r {
                Ok(()) => {}
                Err(shmpool::Error::MapCancelled { .. }) => cancelled += 1,
                Err(e) => panic!("round {round}: the cancelled map failed with {e}"),
            }
        }
        stop.store(true, Ordering::Relaxed);
        let (m, t) = (maps.join().expect("maps"), tasks.join().expect("tasks"));
        let failed = failures.load(Ordering::Relaxed);
        eprintln!("{cancelled} maps cancelled; bystanders: {m} maps, {t} tasks, {failed} failed");
        assert!(cancelled > 100, "only {cancelled} of 300 cancels landed");
        assert_eq!(failed, 0, "bystanders hit by another job's cancel");
    })
}

/// Defect 2: a task cancel (`Kill`) that races the task's end never kills the
/// worker in the bulk job it moved on to. One worker, so every cancel's worker is
/// the bystanders' worker.
fn task_cancels_hit_only_their_own_task(method: StartMethod) {
    common::within(Duration::from_secs(240), "task cancels", move || {
        let pool = Arc::new(common::pool_of(1, method));
        let stop = Arc::new(AtomicBool::new(false));
        let failures = Arc::new(AtomicUsize::new(0));
        let maps_done = Arc::new(AtomicUsize::new(0));
        let maps = {
            let (pool, stop, failures) = (pool.clone(), stop.clone(), failures.clone());
            let done = maps_done.clone();
            std::thread::spawn(move || bystander_maps(&pool, &stop, &failures, &done))
        };
        // The cancels start once the maps run.
        assert!(common::wait_until(Duration::from_secs(30), || maps_done
            .load(Ordering::Relaxed)
            > 0));
        let spin = |us: u64| {
            let end = std::time::Instant::now() + Duration::from_micros(us);
            while std::time::Instant::now() < end {
                std::hint::spin_loop();
            }
            us
        };
        for round in 0..3000u64 {
            let r = pool.apply_async(spin, (50,)).expect("submit");
            // Cancel at a moment that moves across the task's run and its end.
            spin(round % 80);
            let _ = r.cancel_with(CancelMode::Kill);
            match r.get() {
                Ok(50) | Err(shmpool::Error::Cancelled { .. }) => {}
                other => panic!("round {round}: the cancelled task gave {other:?}"),
            }
        }
        stop.store(true, Ordering::Relaxed);
        let m = maps.join().expect("maps");
        let failed = failures.load(Ordering::Relaxed);
        eprintln!("bystanders: {m} maps, {failed} failed");
        assert_eq!(failed, 0, "bystander maps hit by a task's cancel");
    })
}

per_start_method!(
    bulk_cancels_hit_only_their_own_job,
    task_cancels_hit_only_their_own_task
);

/// A marker file for a task to create once it runs.
fn marker(name: &str) -> String {
    let path = std::env::temp_dir().join(format!(
        "shmpool-kill-targets-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path.to_string_lossy().into_owned()
}

/// A task that says it runs (creates the file `path`), then sleeps `ms`.
fn announce_then_sleep(path: String, ms: u64) -> u64 {
    std::fs::write(&path, b"running").expect("write the marker");
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

/// A bulk map that takes about `chunks` × 2 ms on one worker; returns its result,
/// every element checked.
fn slow_bystander(pool: &Pool, chunks: usize) -> Result<(), String> {
    let mut xs = SharedArray::<u64>::zeroed(chunks).map_err(|e| e.to_string())?;
    pool.bulk()
        .chunk_len(1)
        .for_each_mut(&mut xs, |v: &mut u64| {
            std::thread::sleep(Duration::from_millis(2));
            *v = 7;
        })
        .map_err(|e| format!("the bystander map failed: {e}"))?;
    match xs.iter().position(|&v| v != 7) {
        Some(i) => Err(format!("bystander element {i} is {}", xs[i])),
        None => Ok(()),
    }
}

/// A pool of one worker whose collector, between finding a worker to kill and
/// deciding the kill, waits until the worker runs the next work (at most 10 s): the
/// window in which the worker moves on, forced open at any load. (A fixed 40 ms
/// pause let a loaded machine decide before the task ended, and kill it rightly.)
fn slow_deciding_pool(method: StartMethod) -> Arc<Pool> {
    Arc::new(common::ok(
        Pool::builder()
            .processes(1)
            .start_method(method)
            .kill_decision_delay(Duration::from_secs(10))
            .build(),
        "build a pool that decides kills slowly",
    ))
}

/// Defect 2, forced: a task is cancelled (`Kill`) while it runs; by the time the
/// kill is decided it has ended and its worker runs another thread's bulk map. The
/// map must not be hit, and the cancelled task is answered `Cancelled`.
fn a_late_task_cancel_spares_the_next_work(method: StartMethod) {
    common::within(Duration::from_secs(60), "a late task cancel", move || {
        let pool = slow_deciding_pool(method);
        let path = marker(&format!("task-{method:?}"));
        let task = pool
            .apply_async(announce_then_sleep, (path.clone(), 10))
            .expect("submit");
        assert!(common::wait_until(Duration::from_secs(10), || {
            std::path::Path::new(&path).exists()
        }));
        // Queued behind the task: the worker runs it as soon as the task ends.
        let bystander = {
            let pool = pool.clone();
            std::thread::spawn(move || slow_bystander(&pool, 60))
        };
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(task.cancel(), shmpool::CancelOutcome::Cancelled);
        assert!(matches!(task.get(), Err(shmpool::Error::Cancelled { .. })));
        bystander
            .join()
            .expect("bystander")
            .expect("the bystander map");
        let _ = std::fs::remove_file(&path);
        assert_eq!(pool.stats().respawns, 0, "a worker was killed");
    })
}

/// Defect 1, forced: a bulk map is cancelled (`Kill`) while its worker runs a chunk;
/// by the time the kill is decided the chunk has ended and the worker runs another
/// thread's bulk map. That map must not be hit.
fn a_late_bulk_cancel_spares_the_next_job(method: StartMethod) {
    common::within(Duration::from_secs(60), "a late bulk cancel", move || {
        let pool = slow_deciding_pool(method);
        let token = CancelToken::new();
        let cancelled = {
            let (pool, token) = (pool.clone(), token.clone());
            std::thread::spawn(move || {
                let mut xs = SharedArray::<u64>::zeroed(40).expect("array");
                pool.bulk().chunk_len(1).cancel_token(&token).for_each_mut(
                    &mut xs,
                    |v: &mut u64| {
                        std::thread::sleep(Duration::from_millis(5));
                        *v = 1;
                    },
                )
            })
        };
        std::thread::sleep(Duration::from_millis(30));
        // Its join record waits behind the running job.
        let bystander = {
            let pool = pool.clone();
            std::thread::spawn(move || slow_bystander(&pool, 60))
        };
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(token.cancel(), shmpool::CancelOutcome::Cancelled);
        let r = cancelled.join().expect("cancelled map");
        assert!(
            matches!(r, Err(shmpool::Error::MapCancelled { .. })),
            "the cancelled map gave {r:?}"
        );
        bystander
            .join()
            .expect("bystander")
            .expect("the bystander map");
        assert_eq!(pool.stats().respawns, 0, "a worker was killed");
    })
}

/// A timeout decided late: the task ran past its limit but ended before the kill
/// was decided; its worker already runs another thread's map, which must not be hit.
fn a_late_timeout_spares_the_next_work(method: StartMethod) {
    common::within(Duration::from_secs(60), "a late timeout", move || {
        let pool = slow_deciding_pool(method);
        let path = marker(&format!("timeout-{method:?}"));
        let task = pool
            .tasks()
            .timeout(Duration::from_millis(5))
            .apply_async(announce_then_sleep, (path.clone(), 15))
            .expect("submit");
        assert!(common::wait_until(Duration::from_secs(10), || {
            std::path::Path::new(&path).exists()
        }));
        let bystander = {
            let pool = pool.clone();
            std::thread::spawn(move || slow_bystander(&pool, 60))
        };
        // It ended (late) before any kill could be decided: its own result.
        assert_eq!(task.get().expect("the late task's result"), 15);
        bystander
            .join()
            .expect("bystander")
            .expect("the bystander map");
        let _ = std::fs::remove_file(&path);
        assert_eq!(pool.stats().respawns, 0, "a worker was killed");
    })
}

per_start_method!(
    a_late_task_cancel_spares_the_next_work,
    a_late_bulk_cancel_spares_the_next_job,
    a_late_timeout_spares_the_next_work
);
