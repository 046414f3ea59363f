//! Python Pool parity, what a call gives back: AsyncResult (get, wait, ready,
//! successful, timeouts), callbacks and the thread they run on (one may call the
//! pool: issue 10's bug 4), a task's panic, and errors as values. The rest of the
//! API is in `tasks_calls.rs` and `pool_lifecycle.rs`.

#[macro_use]
mod common;

use common::pool;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::{get, ok, within, worker_pids};
use shmpool::{Callbacks, Error, Pool, StartMethod};

fn apply_async_get_wait_ready_successful_and_timeouts(m: StartMethod) {
    let pool = pool(m);
    let r = pool
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
            assert!(location.unwrap().contains("tasks_results.rs"));
        }
        other => panic!("expected TaskPanicked, got {other:?}"),
    }
}

fn callbacks_run_on_the_result_thread_before_get_returns(m: StartMethod) {
    let pool = pool(m);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let r = pool
        .tasks()
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
        .tasks()
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
        .tasks()
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
        .tasks()
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
            pool.tasks()
                .apply_async_with(
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
                assert!(
                    location.starts_with("tests/tasks_results.rs:"),
                    "{location}"
                );
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

fn starmap_async_with_and_progress_bars_give_the_same_results(m: StartMethod) {
    let pool = pool(m);
    let seen = Arc::new(Mutex::new(None));
    let sink = Arc::clone(&seen);
    let r = pool
        .tasks()
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
    assert!(matches!(io, Error::File { .. }), "{io:?}");
    assert!(io.to_string().contains("/nonexistent/shmpool.npy"), "{io}");
    let copy = io.clone();
    assert_eq!(copy.to_string(), io.to_string());
    assert_eq!(
        std::error::Error::source(&copy).map(ToString::to_string),
        std::error::Error::source(&io).map(ToString::to_string)
    );
}

for_each_start_method!(
    apply_async_get_wait_ready_successful_and_timeouts,
    callbacks_run_on_the_result_thread_before_get_returns,
    a_panicking_callback_does_not_kill_the_result_thread,
    one_panicking_task_among_many_fails_alone,
    starmap_async_with_and_progress_bars_give_the_same_results,
);

/// Issue 10, bug 4: callbacks run on their own thread, so one may call the pool and
/// wait for the answer, even for a result with callbacks of its own.
#[test]
fn a_callback_can_call_apply_and_map() {
    let pool = Arc::new(Pool::new(2).unwrap());
    let (tx, rx) = mpsc::channel();
    let (p, t) = (Arc::clone(&pool), tx.clone());
    let r = pool
        .tasks()
        .apply_async_with(
            |x: u64| x + 1,
            (41,),
            Callbacks::new().on_success(move |v: &u64| {
                let nested = p.apply(|a: u64, b: u64| a * b, (*v, 2));
                let inner_seen = Arc::new(Mutex::new(None));
                let seen = Arc::clone(&inner_seen);
                let with_callback = p
                    .tasks()
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
        .tasks()
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

// ---------------------------------------------------------------------------------
// Issue 10, bug 4: a blocking call inside a callback deadlocked (callbacks ran on
// the result thread, which the blocking call waits for). These tests failed on code
// with the bug; none can hang: the body runs under a time limit (`common::within`)
// and the outer result is waited for with `get_timeout` (`common::get`).
// ---------------------------------------------------------------------------------

/// The time limit of one bug-4 test's body.
const LIMIT: Duration = Duration::from_secs(90);

/// How long the test waits for the nested call's answer.
const NESTED_WAIT: Duration = Duration::from_secs(20);

#[test]
fn bug4_apply_inside_on_success_returns() {
    within(LIMIT, "bug4 apply", || {
        let pool = Arc::new(ok(Pool::new(2), "Pool::new(2)"));
        let (tx, rx) = mpsc::channel();
        let nested = Arc::clone(&pool);
        let outer = pool.tasks().apply_async_with(
            |x: u64| x + 1,
            (1,),
            Callbacks::new().on_success(move |v: &u64| {
                let r = nested.apply(|x: u64| x * 10, (*v,));
                let _ = tx.send(r.map_err(|e| e.to_string()));
            }),
        );
        let outer = ok(outer, "submit");
        let answer = rx
            .recv_timeout(NESTED_WAIT)
            .expect("pool.apply inside on_success did not return (deadlock)");
        assert_eq!(answer, Ok(20));
        // (The callback, and its Arc of the pool, are gone once the result is ready.)
        assert_eq!(ok(get(outer, "outer"), "outer"), 2);
    });
}

#[test]
fn bug4_map_inside_on_error_returns() {
    within(LIMIT, "bug4 map", || {
        let pool = Arc::new(ok(Pool::new(2), "Pool::new(2)"));
        let (tx, rx) = mpsc::channel();
        let nested = Arc::clone(&pool);
        let outer = pool.tasks().apply_async_with(
            || -> u64 { panic!("boom") },
            (),
            Callbacks::new().on_error(move |e: &Error| {
                let r = nested.map(|x: u64| x * 7, 0..100u64);
                let _ = tx.send((e.to_string(), r.map_err(|e| e.to_string())));
            }),
        );
        let outer = ok(outer, "submit");
        let (error, answer) = rx
            .recv_timeout(NESTED_WAIT)
            .expect("pool.map inside on_error did not return (deadlock)");
        assert!(error.contains("boom"), "{error}");
        assert_eq!(answer, Ok((0..100).map(|x| x * 7).collect()));
        assert!(matches!(
            get(outer, "outer"),
            Err(Error::TaskPanicked { .. })
        ));
    });
}
