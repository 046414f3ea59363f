//! Python Pool parity: every call, ordering, AsyncResult, callbacks, lifecycle.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use shmpool::{Callbacks, Error, Pool, StartMethod};

fn pool(m: StartMethod) -> Pool {
    Pool::builder()
        .processes(2)
        .start_method(m)
        .build()
        .expect("pool")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Sample {
    name: String,
    values: Vec<f64>,
    tag: Option<u32>,
}

fn describe(s: Sample) -> (String, f64) {
    (s.name.to_uppercase(), s.values.iter().sum())
}

fn divide(x: f64, y: f64) -> Result<f64, String> {
    if y == 0.0 {
        Err(format!("cannot divide {x} by zero"))
    } else {
        Ok(x / y)
    }
}

fn apply_unpacks_argument_tuples_of_any_serializable_types(m: StartMethod) {
    let pool = pool(m);
    assert_eq!(pool.apply(|a: u64, b: u64| a + b, (2, 3)).unwrap(), 5);
    assert_eq!(pool.apply(|| 42u8, ()).unwrap(), 42);
    assert_eq!(
        pool.apply(|s: String| s.len(), ("hello".to_string(),))
            .unwrap(),
        5
    );
    let sample = Sample {
        name: "abc".into(),
        values: vec![1.5, 2.5],
        tag: Some(7),
    };
    assert_eq!(
        pool.apply(describe, (sample,)).unwrap(),
        ("ABC".to_string(), 4.0)
    );
    assert_eq!(
        pool.apply(
            |v: Vec<f64>, k: f64| v.into_iter().map(|x| x * k).collect::<Vec<_>>(),
            (vec![1.0, 2.0], 3.0)
        )
        .unwrap(),
        vec![3.0, 6.0]
    );
    // It ran in another process.
    assert_ne!(
        pool.apply(std::process::id, ()).unwrap(),
        std::process::id()
    );
}

fn apply_async_get_wait_ready_successful_and_timeouts(m: StartMethod) {
    let pool = pool(m);
    let mut r = pool
        .apply_async(
            |ms: u64| {
                std::thread::sleep(Duration::from_millis(ms));
                ms * 2
            },
            (300,),
        )
        .unwrap();
    assert!(!r.ready());
    assert!(matches!(r.successful(), Err(Error::NotReady)));
    let t = Instant::now();
    match r.get_timeout(Duration::from_millis(30)) {
        Err(Error::WaitTimeout(d)) => assert_eq!(d, Duration::from_millis(30)),
        other => panic!("expected WaitTimeout, got {other:?}"),
    }
    assert!(
        t.elapsed() < Duration::from_millis(250),
        "get_timeout waited {:?}",
        t.elapsed()
    );
    assert!(!r.wait_timeout(Duration::from_millis(10)));
    // The task kept running: a later wait sees it finish.
    r.wait();
    assert!(r.ready());
    assert!(r.successful().unwrap());
    assert_eq!(r.get_timeout(Duration::from_secs(5)).unwrap(), 600);
    assert!(matches!(
        r.get_timeout(Duration::from_secs(1)),
        Err(Error::AlreadyTaken)
    ));

    let failing = pool.apply_async(|| -> u32 { panic!("nope") }, ()).unwrap();
    failing.wait();
    assert!(!failing.successful().unwrap());
    match failing.get() {
        Err(Error::TaskPanicked { message, location }) => {
            assert_eq!(message, "nope");
            assert!(location.unwrap().contains("api.rs"));
        }
        other => panic!("expected TaskPanicked, got {other:?}"),
    }
}

fn callbacks_run_on_the_result_thread_before_get_returns(m: StartMethod) {
    let pool = pool(m);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let r = pool
        .apply_async_with(
            |x: u64| x * x,
            (12,),
            Callbacks::new().on_success(move |v: &u64| {
                let name = std::thread::current().name().map(str::to_string);
                log.lock().unwrap().push((*v, name));
            }),
        )
        .unwrap();
    assert_eq!(r.get().unwrap(), 144);
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        &[(144, Some("shmpool-callbacks".to_string()))]
    );

    let errors = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&errors);
    let r = pool
        .apply_async_with(
            |x: u64| -> u64 { panic!("bad {x}") },
            (1,),
            Callbacks::new()
                .on_success(|_: &u64| panic!("must not run"))
                .on_error(move |e: &Error| log.lock().unwrap().push(e.to_string())),
        )
        .unwrap();
    assert!(matches!(r.get(), Err(Error::TaskPanicked { .. })));
    assert_eq!(errors.lock().unwrap().len(), 1);
    assert!(errors.lock().unwrap()[0].contains("bad 1"));

    // map_async's callback gets the whole list.
    let lists = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&lists);
    let r = pool
        .map_async_with(
            |x: u32| x + 1,
            0..10u32,
            Callbacks::new().on_success(move |v: &Vec<u32>| log.lock().unwrap().push(v.clone())),
        )
        .unwrap();
    assert_eq!(r.get().unwrap(), (1..11).collect::<Vec<u32>>());
    assert_eq!(
        lists.lock().unwrap().as_slice(),
        &[(1..11).collect::<Vec<u32>>()]
    );
}

fn a_panicking_callback_does_not_kill_the_result_thread(m: StartMethod) {
    let pool = pool(m);
    let r = pool
        .apply_async_with(
            |x: u64| x,
            (1,),
            Callbacks::new().on_success(|_: &u64| panic!("callback bug")),
        )
        .unwrap();
    match r.get() {
        Err(Error::CallbackPanicked { message }) => assert!(message.contains("callback bug")),
        other => panic!("expected CallbackPanicked, got {other:?}"),
    }
    // Later callbacks still run, results still arrive.
    let count = Arc::new(AtomicUsize::new(0));
    let results: Vec<_> = (0..20u64)
        .map(|i| {
            let c = Arc::clone(&count);
            pool.apply_async_with(
                |x: u64| x * 3,
                (i,),
                Callbacks::new().on_success(move |_: &u64| {
                    c.fetch_add(1, Ordering::SeqCst);
                }),
            )
            .unwrap()
        })
        .collect();
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.get().unwrap(), i as u64 * 3);
    }
    assert_eq!(count.load(Ordering::SeqCst), 20);
}

fn map_keeps_input_order_with_the_python_chunksize_rule(m: StartMethod) {
    let pool = pool(m);
    let before = pool.stats().records_submitted;
    let out = pool.map(|x: u64| x * 2, 0..1000u64).unwrap();
    assert_eq!(out, (0..1000).map(|x| x * 2).collect::<Vec<_>>());
    // ceil(1000 / (4 * 2)) = 125 items per chunk: 8 tasks.
    assert_eq!(pool.stats().records_submitted - before, 8);

    let before = pool.stats().records_submitted;
    let out = pool
        .tasks()
        .chunksize(7)
        .map(|s: String| s + "!", (0..50).map(|i| i.to_string()))
        .unwrap();
    assert_eq!(out[49], "49!");
    assert_eq!(pool.stats().records_submitted - before, 8); // ceil(50 / 7)

    assert_eq!(
        pool.map(|x: u8| x, Vec::<u8>::new()).unwrap(),
        Vec::<u8>::new()
    );
    let r = pool.map_async(|x: i32| -x, vec![1, 2, 3]).unwrap();
    assert_eq!(r.get().unwrap(), vec![-1, -2, -3]);
}

fn starmap_divides_and_handles_a_zero_divisor(m: StartMethod) {
    let pool = pool(m);
    let out = pool
        .starmap(divide, vec![(1.0, 2.0), (9.0, 3.0), (1.0, 0.0)])
        .unwrap();
    assert_eq!(out[0], Ok(0.5));
    assert_eq!(out[1], Ok(3.0));
    assert_eq!(out[2], Err("cannot divide 1 by zero".to_string()));
    let r = pool
        .starmap_async(
            |a: u32, b: u32, c: u32| a * b + c,
            vec![(2, 3, 4), (1, 1, 1)],
        )
        .unwrap();
    assert_eq!(r.get().unwrap(), vec![10, 2]);
}

fn one_panicking_task_among_many_fails_alone(m: StartMethod) {
    let pool = pool(m);
    let pids_before = worker_pids(&pool);
    let results: Vec<_> = (0..200u64)
        .map(|i| {
            pool.apply_async(
                |x: u64| {
                    if x == 77 {
                        panic!("task {x} failed");
                    }
                    x + 1
                },
                (i,),
            )
            .unwrap()
        })
        .collect();
    for (i, r) in results.into_iter().enumerate() {
        match r.get() {
            Ok(v) => assert_eq!(v, i as u64 + 1),
            Err(Error::TaskPanicked { message, location }) => {
                assert_eq!(i, 77);
                assert_eq!(message, "task 77 failed");
                let location = location.expect("a panic location");
                assert!(location.starts_with("tests/api.rs:"), "{location}");
            }
            Err(e) => panic!("task {i}: {e}"),
        }
    }
    // The panic was caught in the worker: the same processes carry on.
    assert_eq!(worker_pids(&pool), pids_before);
    assert_eq!(pool.stats().respawns, 0);
    // In a map, the failure fails the map, naming the item's panic.
    let err = pool
        .map(
            |x: u32| if x == 500 { panic!("item {x}") } else { x },
            0..1000u32,
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::TaskPanicked { message, .. } if message == "item 500"),
        "{err:?}"
    );
    // In an imap, only that item fails.
    let items: Vec<_> = pool
        .imap(|x: u32| if x == 5 { panic!("five") } else { x }, 0..10u32)
        .unwrap()
        .collect();
    assert_eq!(items.iter().filter(|r| r.is_err()).count(), 1);
    assert!(items[5].is_err());
    assert_eq!(*items[9].as_ref().unwrap(), 9);
}

fn imap_is_ordered_and_imap_unordered_yields_each_item_once(m: StartMethod) {
    let pool = pool(m);
    let ordered: Vec<u64> = pool
        .imap(
            |x: u64| {
                // Later items finish first.
                std::thread::sleep(Duration::from_micros(200 * (20 - x % 20)));
                x * x
            },
            0..100u64,
        )
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ordered, (0..100).map(|x| x * x).collect::<Vec<_>>());

    let mut unordered: Vec<u64> = pool
        .tasks()
        .chunksize(3)
        .imap_unordered(|x: u64| x + 1000, 0..500u64)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(unordered.len(), 500);
    let distinct: HashSet<u64> = unordered.iter().copied().collect();
    assert_eq!(distinct.len(), 500);
    unordered.sort_unstable();
    assert_eq!(unordered, (1000..1500).collect::<Vec<_>>());
}

fn imap_reads_an_endless_input_lazily_with_a_bounded_window(m: StartMethod) {
    let pool = pool(m);
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let input = (0u64..).inspect(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let mut it = pool
        .tasks()
        .chunksize(4)
        .max_in_flight(3)
        .imap(|x: u64| x * 2, input)
        .unwrap();
    let first: Vec<u64> = it.by_ref().take(10).map(Result::unwrap).collect();
    assert_eq!(first, (0..10).map(|x| x * 2).collect::<Vec<_>>());
    // At most the consumed items, plus the chunk being read, plus 3 chunks ahead.
    let n = pulled.load(Ordering::SeqCst);
    assert!(n <= 10 + 4 + 3 * 4, "pulled {n} items for 10 results");
    // Keeps going from where it was, memory stays bounded.
    let later: Vec<u64> = it
        .by_ref()
        .skip(10_000)
        .take(3)
        .map(Result::unwrap)
        .collect();
    assert_eq!(later, vec![20_020, 20_022, 20_024]);
    let n = pulled.load(Ordering::SeqCst);
    assert!(n <= 10_013 + 4 + 3 * 4, "pulled {n}");
}

fn imap_reports_its_exact_length_when_the_input_does(m: StartMethod) {
    let pool = pool(m);
    let it = pool.imap(|x: u32| x, vec![1u32, 2, 3, 4, 5]).unwrap();
    assert_eq!(it.len(), 5);
    let mut it = it.skip(2);
    assert_eq!(it.len(), 3);
    assert_eq!(it.next().unwrap().unwrap(), 3);
    assert_eq!(it.len(), 2);
}

fn a_panicking_input_iterator_in_imap_loses_nothing_submitted(m: StartMethod) {
    let pool = pool(m);
    let input = (0..100u32).inspect(|&i| {
        if i == 37 {
            panic!("input broke at {i}");
        }
    });
    let items: Vec<_> = pool
        .tasks()
        .chunksize(5)
        .imap(|x: u32| x * 10, input)
        .unwrap()
        .collect();
    let (ok, err): (Vec<_>, Vec<_>) = items.into_iter().partition(Result::is_ok);
    assert_eq!(
        ok.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
        (0..37).map(|x| x * 10).collect::<Vec<_>>()
    );
    assert_eq!(err.len(), 1);
    assert!(
        matches!(&err[0], Err(Error::InputPanicked { message }) if message == "input broke at 37")
    );

    let broken = (0..10u32).map(|i| if i == 3 { panic!("map input") } else { i });
    assert!(matches!(
        pool.map(|x: u32| x, broken),
        Err(Error::InputPanicked { .. })
    ));
}

fn large_arguments_and_results_go_through_the_arenas(m: StartMethod) {
    let pool = pool(m);
    // One result of 256 MiB.
    let big = pool.apply(|n: usize| "x".repeat(n), (256 << 20,)).unwrap();
    assert_eq!(big.len(), 256 << 20);
    assert!(big.bytes().all(|b| b == b'x'));
    drop(big);
    // Many medium payloads both ways, concurrently, each checked.
    let results: Vec<_> = (0..64u64)
        .map(|i| {
            let data: Vec<u64> = (0..20_000).map(|j| i * 1_000_000 + j).collect();
            pool.apply_async(
                |v: Vec<u64>| v.into_iter().map(|x| x + 1).collect::<Vec<_>>(),
                (data,),
            )
            .unwrap()
        })
        .collect();
    for (i, r) in results.into_iter().enumerate() {
        let v = r.get().unwrap();
        assert_eq!(v.len(), 20_000);
        assert!(
            v.iter()
                .enumerate()
                .all(|(j, x)| *x == i as u64 * 1_000_000 + j as u64 + 1)
        );
    }
}

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

/// The pids of the pool's live workers, in slot order.
fn worker_pids(pool: &Pool) -> Vec<i32> {
    pool.stats().workers.iter().filter_map(|w| w.pid).collect()
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

fn starmap_async_with_and_progress_bars_give_the_same_results(m: StartMethod) {
    let pool = pool(m);
    let seen = Arc::new(Mutex::new(None));
    let sink = Arc::clone(&seen);
    let r = pool
        .starmap_async_with(
            |a: u32, b: u32| a * b,
            (0..100u32).map(|i| (i, 3)),
            Callbacks::new().on_success(move |v: &Vec<u32>| *sink.lock().unwrap() = Some(v.len())),
        )
        .unwrap();
    let v = r.get().unwrap();
    assert_eq!(v, (0..100u32).map(|i| i * 3).collect::<Vec<_>>());
    assert_eq!(*seen.lock().unwrap(), Some(100));
    // With a progress bar (drawn only on a terminal): the same results.
    #[cfg(feature = "progress")]
    with_progress_bars(&pool);
}

#[cfg(feature = "progress")]
fn with_progress_bars(pool: &Pool) {
    let squares = pool
        .tasks()
        .progress(true)
        .map(|x: u64| x * x, 0..1000u64)
        .unwrap();
    assert_eq!(squares[999], 999 * 999);
    let imapped: Vec<u64> = pool
        .imap(|x: u64| x + 1, 0..500u64)
        .unwrap()
        .progress()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(imapped, (1..=500u64).collect::<Vec<_>>());
}

fn one_pool_used_from_several_threads_at_once(m: StartMethod) {
    let pool = pool(m);
    std::thread::scope(|s| {
        for t in 0..6u64 {
            let pool = &pool;
            s.spawn(move || {
                for i in 0..100u64 {
                    assert_eq!(
                        pool.apply(|a: u64, b: u64| a * 1000 + b, (t, i)).unwrap(),
                        t * 1000 + i
                    );
                }
                let v = pool
                    .starmap(|x: u64, t: u64| x + t, (0..500u64).map(|x| (x, t)))
                    .unwrap();
                assert_eq!(v[499], 499 + t);
            });
        }
    });
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

#[test]
fn errors_are_values_that_clone() {
    fn is_clone<T: Clone + Send + Sync + 'static>() {}
    is_clone::<Error>();
    let pool = pool(StartMethod::Fork);
    // One worker's death fails every item of its chunk, each with the same error.
    let die = |x: u32| if x == 5 { std::process::exit(7) } else { x };
    let items: Vec<_> = pool
        .tasks()
        .chunksize(4)
        .imap(die, 0..12u32)
        .unwrap()
        .collect();
    assert!(items[..4].iter().chain(&items[8..]).all(Result::is_ok));
    let first = items[4].as_ref().unwrap_err();
    match first {
        Error::WorkerDied { cause, work, .. } => {
            assert_eq!(*cause, shmpool::DeathCause::Exit(7));
            assert_eq!(*work, shmpool::Work::Items(4..8));
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    for r in &items[4..8] {
        assert_eq!(r.as_ref().unwrap_err().to_string(), first.to_string());
    }
    let copy = first.clone();
    assert_eq!(copy.to_string(), first.to_string());
    assert_eq!(format!("{copy:?}"), format!("{first:?}"));
    // An error with an I/O source clones too, source and all.
    let array = shmpool::SharedArray::<f64>::zeroed(1).unwrap();
    let io = array.save_npy("/nonexistent/shmpool.npy").unwrap_err();
    assert!(matches!(io, Error::Io { .. }), "{io:?}");
    let copy = io.clone();
    assert_eq!(copy.to_string(), io.to_string());
    assert_eq!(
        std::error::Error::source(&copy).map(ToString::to_string),
        std::error::Error::source(&io).map(ToString::to_string)
    );
}

/// Every test above, once per start method: both must pass the same suite.
macro_rules! for_each_start_method {
    ($($name:ident),* $(,)?) => {
        mod fork {
            $(#[test] fn $name() { super::$name(shmpool::StartMethod::Fork) })*
        }
        mod spawn {
            $(#[test] fn $name() { super::$name(shmpool::StartMethod::Spawn) })*
        }
        mod fork_server {
            $(#[test] fn $name() { super::$name(shmpool::StartMethod::ForkServer) })*
        }
    };
}

for_each_start_method!(
    apply_unpacks_argument_tuples_of_any_serializable_types,
    apply_async_get_wait_ready_successful_and_timeouts,
    callbacks_run_on_the_result_thread_before_get_returns,
    a_panicking_callback_does_not_kill_the_result_thread,
    map_keeps_input_order_with_the_python_chunksize_rule,
    starmap_divides_and_handles_a_zero_divisor,
    one_panicking_task_among_many_fails_alone,
    imap_is_ordered_and_imap_unordered_yields_each_item_once,
    imap_reads_an_endless_input_lazily_with_a_bounded_window,
    imap_reports_its_exact_length_when_the_input_does,
    a_panicking_input_iterator_in_imap_loses_nothing_submitted,
    large_arguments_and_results_go_through_the_arenas,
    close_join_and_submitting_after_close,
    terminate_returns_promptly_with_tasks_stuck_in_endless_loops,
    dropping_a_pool_with_pending_work_never_hangs,
    the_initializer_runs_once_in_each_worker_before_its_first_task,
    an_initializer_that_panics_fails_build,
    max_tasks_per_child_replaces_workers_after_n_tasks,
    max_tasks_per_child_starts_the_replacement_before_the_old_worker_retires,
    starmap_async_with_and_progress_bars_give_the_same_results,
    one_pool_used_from_several_threads_at_once,
    a_per_task_timeout_kills_the_worker_and_the_pool_carries_on,
);

/// Issue 10, bug 4: callbacks run on their own thread, so one may call the pool and
/// wait for the answer, even for a result with callbacks of its own.
#[test]
fn a_callback_can_call_apply_and_map() {
    use std::sync::mpsc;
    let pool = Arc::new(Pool::new(2).unwrap());
    let (tx, rx) = mpsc::channel();
    let (p, t) = (Arc::clone(&pool), tx.clone());
    let r = pool
        .apply_async_with(
            |x: u64| x + 1,
            (41,),
            Callbacks::new().on_success(move |v: &u64| {
                let nested = p.apply(|a: u64, b: u64| a * b, (*v, 2));
                let inner_seen = Arc::new(Mutex::new(None));
                let seen = Arc::clone(&inner_seen);
                let with_callback = p
                    .apply_async_with(
                        |x: u64| x * 3,
                        (5,),
                        Callbacks::new()
                            .on_success(move |v: &u64| *seen.lock().unwrap() = Some(*v)),
                    )
                    .and_then(|r| r.get());
                let _ = t.send((nested, with_callback, *inner_seen.lock().unwrap()));
            }),
        )
        .unwrap();
    assert_eq!(r.get().unwrap(), 42);
    let (nested, with_callback, inner) =
        rx.recv_timeout(Duration::from_secs(20)).expect("deadlock");
    assert_eq!(nested.unwrap(), 84);
    assert_eq!(with_callback.unwrap(), 15);
    assert_eq!(inner, Some(15));

    drop(tx);
    let (tx, rx) = mpsc::channel();
    let p = Arc::clone(&pool);
    let r = pool
        .apply_async_with(
            |x: u64| -> u64 { panic!("no {x}") },
            (7,),
            Callbacks::new().on_error(move |_: &Error| {
                let _ = tx.send(p.map(|x: u64| x * x, 0..100u64));
            }),
        )
        .unwrap();
    assert!(matches!(r.get(), Err(Error::TaskPanicked { .. })));
    let mapped = rx.recv_timeout(Duration::from_secs(20)).expect("deadlock");
    assert_eq!(
        mapped.unwrap(),
        (0..100u64).map(|x| x * x).collect::<Vec<_>>()
    );
}
