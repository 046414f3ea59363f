//! Python Pool parity, a pool's life: close, join, terminate and drop; the
//! initializer; max_tasks_per_child; and a per-task timeout that replaces its worker.
//! The rest of the API is in `api_calls.rs` and `api_results.rs`.

#[macro_use]
mod common;

use common::pool;

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::worker_pids;
use shmpool::{Error, Pool, StartMethod};

fn close_join_and_submitting_after_close(m: StartMethod) {
    let pool = pool(m);
    let results: Vec<_> = (0..10u64)
        .map(|i| {
            pool.apply_async(
                |x: u64| {
                    std::thread::sleep(Duration::from_millis(20));
                    x
                },
                (i,),
            )
            .unwrap()
        })
        .collect();
    assert!(matches!(pool.join(), Err(Error::JoinBeforeClose)));
    pool.close();
    assert!(matches!(pool.apply(|| 1, ()), Err(Error::PoolClosed)));
    assert!(matches!(
        pool.map(|x: u8| x, vec![1u8]),
        Err(Error::PoolClosed)
    ));
    pool.join().unwrap();
    // Everything submitted before close finished.
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.get().unwrap(), i as u64);
    }
    assert!(pool.stats().workers.iter().all(|w| w.pid.is_none()));
}

fn terminate_returns_promptly_with_tasks_stuck_in_endless_loops(m: StartMethod) {
    let pool = pool(m);
    let stuck: Vec<_> = (0..4)
        .map(|_| {
            pool.apply_async(
                || {
                    #[allow(clippy::empty_loop)]
                    loop {}
                },
                (),
            )
            .unwrap()
        })
        .collect::<Vec<shmpool::AsyncResult<()>>>();
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    pool.terminate();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "terminate took {:?}",
        t.elapsed()
    );
    for r in stuck {
        assert!(matches!(r.get(), Err(Error::PoolTerminated)));
    }
    assert!(matches!(pool.apply(|| 1, ()), Err(Error::PoolTerminated)));
    pool.join().unwrap();
}

fn dropping_a_pool_with_pending_work_never_hangs(m: StartMethod) {
    let pool = pool(m);
    let pending = pool
        .apply_async(
            || {
                std::thread::sleep(Duration::from_secs(30));
                1
            },
            (),
        )
        .unwrap();
    let workers = worker_pids(&pool);
    assert_eq!(workers.len(), 2);
    let t = Instant::now();
    drop(pool);
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(matches!(pending.get(), Err(Error::PoolTerminated)));
    // Every worker is gone: killed and reaped, not left running or as a zombie.
    for pid in workers {
        let deadline = Instant::now() + Duration::from_secs(2);
        while std::path::Path::new(&format!("/proc/{pid}")).exists() {
            assert!(Instant::now() < deadline, "worker {pid} outlived the pool");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

static INIT_CALLS: AtomicUsize = AtomicUsize::new(0);
static INIT_NAME: Mutex<String> = Mutex::new(String::new());

fn init_worker(name: String, times: usize) {
    INIT_CALLS.fetch_add(times, Ordering::SeqCst);
    *INIT_NAME.lock().unwrap() = name;
}

fn the_initializer_runs_once_in_each_worker_before_its_first_task(m: StartMethod) {
    let pool = Pool::builder()
        .processes(2)
        .start_method(m)
        .initializer(init_worker, ("configured".to_string(), 1))
        .build()
        .unwrap();
    let seen: HashSet<(u32, usize, String)> = pool
        .map(
            |_: u32| {
                std::thread::sleep(Duration::from_millis(2));
                (
                    std::process::id(),
                    INIT_CALLS.load(Ordering::SeqCst),
                    INIT_NAME.lock().unwrap().clone(),
                )
            },
            0..40u32,
        )
        .unwrap()
        .into_iter()
        .collect();
    assert!(!seen.is_empty());
    for (pid, calls, name) in &seen {
        assert_ne!(*pid, std::process::id());
        assert_eq!(*calls, 1, "worker {pid} ran the initializer {calls} times");
        assert_eq!(name, "configured");
    }
    // The parent never ran it.
    assert_eq!(INIT_CALLS.load(Ordering::SeqCst), 0);
}

fn an_initializer_that_panics_fails_build(m: StartMethod) {
    let err = Pool::builder()
        .processes(2)
        .start_method(m)
        .initializer(|| panic!("no config file"), ())
        .build()
        .unwrap_err();
    match err {
        Error::InitializerFailed { message } => {
            assert!(message.contains("no config file"), "{message}")
        }
        other => panic!("expected InitializerFailed, got {other:?}"),
    }
}

fn max_tasks_per_child_replaces_workers_after_n_tasks(m: StartMethod) {
    let pool = Pool::builder()
        .processes(1)
        .start_method(m)
        .max_tasks_per_child(3)
        .build()
        .unwrap();
    let pids: Vec<u32> = (0..9)
        .map(|_| pool.apply(std::process::id, ()).unwrap())
        .collect();
    for window in pids.chunks(3) {
        assert!(window.iter().all(|p| *p == window[0]), "{pids:?}");
    }
    let distinct: HashSet<u32> = pids.iter().copied().collect();
    assert_eq!(distinct.len(), 3, "{pids:?}");
    assert!(pool.stats().respawns >= 2);
}

/// Python's maxtasksperchild, done better: the replacement starts while the old
/// worker runs its last task, so the pool never runs short of a worker.
fn max_tasks_per_child_starts_the_replacement_before_the_old_worker_retires(m: StartMethod) {
    let pool = Pool::builder()
        .processes(1)
        .start_method(m)
        .max_tasks_per_child(1)
        .build()
        .unwrap();
    let last = pool
        .apply_async(
            || {
                std::thread::sleep(Duration::from_millis(500));
                std::process::id()
            },
            (),
        )
        .unwrap();
    // While the old worker still runs its last task, a second process is up.
    let deadline = Instant::now() + Duration::from_millis(400);
    let mut seen = worker_pids(&pool);
    while seen.len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
        seen = worker_pids(&pool);
    }
    assert!(!last.ready(), "the last task ended before the check");
    assert_eq!(
        seen.len(),
        2,
        "no replacement while the old worker ran: {seen:?}"
    );
    let old = last.get().unwrap();
    assert!(
        seen.contains(&(old as i32)),
        "{seen:?} lacks the retiring {old}"
    );
    let new = pool.apply(std::process::id, ()).unwrap();
    assert_ne!(new, old);
    assert!(
        seen.contains(&(new as i32)),
        "{seen:?} lacks the replacement {new}"
    );
}

fn a_per_task_timeout_kills_the_worker_and_the_pool_carries_on(m: StartMethod) {
    let pool = pool(m);
    let t = Instant::now();
    let err = pool
        .tasks()
        .timeout(Duration::from_millis(100))
        .apply(|| std::thread::sleep(Duration::from_secs(30)), ())
        .unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    match err {
        Error::Timeout { limit, work, .. } => {
            assert_eq!(limit, Duration::from_millis(100));
            assert!(matches!(work, shmpool::Work::Task(_)));
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert_eq!(pool.apply(|x: u32| x + 1, (1,)).unwrap(), 2);
}

for_each_start_method!(
    close_join_and_submitting_after_close,
    terminate_returns_promptly_with_tasks_stuck_in_endless_loops,
    dropping_a_pool_with_pending_work_never_hangs,
    the_initializer_runs_once_in_each_worker_before_its_first_task,
    an_initializer_that_panics_fails_build,
    max_tasks_per_child_replaces_workers_after_n_tasks,
    max_tasks_per_child_starts_the_replacement_before_the_old_worker_retires,
    a_per_task_timeout_kills_the_worker_and_the_pool_carries_on,
);
