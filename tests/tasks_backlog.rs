//! Submission never blocks: tasks that do not fit in the shared submission ring (1,024
//! records) wait in the parent's memory and are fed in as the ring drains. And the
//! opt-in bound, `max_queued`, with its `try_` forms.
//!
//! Tasks that must stay busy wait on a gate (a file the test creates), so the tests
//! control when they end instead of sleeping for long.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{RESULT_WAIT, get, ok, pool_of, within};
use shmpool::{Error, Pool, StartMethod, Work};

/// A gate: tasks given its path wait until the test opens it.
struct Gate(PathBuf);

impl Gate {
    fn new(tag: &str) -> Gate {
        let path = std::env::temp_dir().join(format!(
            "shmpool-gate-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let _ = std::fs::remove_file(&path);
        Gate(path)
    }

    fn path(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }

    fn open(&self) {
        std::fs::write(&self.0, b"open").expect("open the gate");
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Waits (in a worker) until the gate at `path` is open, for at most a minute.
fn wait_at(path: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !Path::new(path).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The case: three busy workers and 1,028 tasks. `map_async` used to block
/// until a worker finished (60 s in the issue); it must return at once.
#[test]
fn map_async_returns_at_once_with_more_tasks_than_the_ring_holds() {
    let pool = pool_of(3, StartMethod::Fork);
    let gate = Gate::new("1028");
    let items: Vec<(String, u64)> = (0..1028u64).map(|i| (gate.path(), i)).collect();
    let started = Instant::now();
    let r = ok(
        pool.tasks().chunksize(1).starmap_async(
            |gate: String, i: u64| {
                wait_at(&gate);
                i * 2
            },
            items,
        ),
        "starmap_async of 1028 gated tasks",
    );
    let took = started.elapsed();
    eprintln!("map_async of 1028 tasks behind 3 busy workers returned in {took:?}");
    assert!(
        took < Duration::from_secs(1),
        "map_async blocked for {took:?}"
    );
    assert!(!r.ready());
    gate.open();
    let values = ok(get(r, "the 1028 results"), "the 1028 results");
    assert_eq!(values, (0..1028u64).map(|i| i * 2).collect::<Vec<_>>());
}

/// 10^6 tiny tasks in one `map_async`: it returns at once, and every result is right.
#[test]
fn a_million_queued_tasks_are_each_answered_with_their_own_value() {
    let pool = pool_of(2, StartMethod::Fork);
    let n = 1_000_000u64;
    let started = Instant::now();
    let r = ok(
        pool.tasks()
            .chunksize(1)
            .map_async(|x: u64| x.wrapping_mul(3) + 1, 0..n),
        "map_async of 10^6 tasks",
    );
    let submitted = started.elapsed();
    let values = within(Duration::from_secs(300), "10^6 results", move || {
        r.get().map_err(|e| e.to_string())
    })
    .expect("every task succeeds");
    let done = started.elapsed();
    eprintln!(
        "10^6 tasks: map_async returned in {submitted:?} (all queued), all answered in {done:?}"
    );
    assert_eq!(values.len(), n as usize);
    for (i, v) in values.iter().enumerate() {
        assert_eq!(*v, (i as u64).wrapping_mul(3) + 1, "task {i}");
    }
}

/// `apply_async` behind a busy worker: 3,000 handles come back at once, then each
/// gets its own value.
#[test]
fn apply_async_never_waits_for_the_ring() {
    let pool = pool_of(1, StartMethod::Fork);
    let gate = Gate::new("apply");
    let started = Instant::now();
    let handles: Vec<_> = (0..3000u64)
        .map(|i| {
            ok(
                pool.apply_async(
                    |gate: String, i: u64| {
                        wait_at(&gate);
                        i + 7
                    },
                    (gate.path(), i),
                ),
                "apply_async",
            )
        })
        .collect();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "3000 apply_async took {took:?}"
    );
    gate.open();
    for (i, h) in handles.iter().enumerate() {
        assert_eq!(ok(h.get_timeout(RESULT_WAIT), "result"), i as u64 + 7);
    }
}

/// `close` then `join`: every queued task still runs, the backlog included.
#[test]
fn close_and_join_run_every_queued_task() {
    let pool = pool_of(2, StartMethod::Fork);
    let gate = Gate::new("close");
    let items: Vec<(String, u64)> = (0..2500u64).map(|i| (gate.path(), i)).collect();
    let r = ok(
        pool.tasks().chunksize(1).starmap_async(
            |gate: String, i: u64| {
                wait_at(&gate);
                i
            },
            items,
        ),
        "starmap_async",
    );
    pool.close();
    gate.open();
    within(Duration::from_secs(120), "join after close", move || {
        pool.join().expect("join");
        let values = r.get().expect("every queued task ran");
        assert_eq!(values, (0..2500u64).collect::<Vec<_>>());
    });
}

/// `terminate` fails queued tasks (in the ring and in the backlog) with the
/// terminated error, and returns at once.
#[test]
fn terminate_fails_every_queued_task() {
    let pool = pool_of(2, StartMethod::Fork);
    let gate = Gate::new("terminate");
    let handles: Vec<_> = (0..2000u64)
        .map(|i| {
            ok(
                pool.apply_async(
                    |gate: String, i: u64| {
                        wait_at(&gate);
                        i
                    },
                    (gate.path(), i),
                ),
                "apply_async",
            )
        })
        .collect();
    let started = Instant::now();
    pool.terminate();
    assert!(started.elapsed() < Duration::from_secs(5));
    for (i, h) in handles.iter().enumerate() {
        match h.get_timeout(RESULT_WAIT) {
            Err(Error::PoolTerminated) => {}
            other => panic!("task {i}: expected PoolTerminated, got {other:?}"),
        }
    }
}

/// `max_queued`: `try_` forms refuse with `QueueFull`, plain forms wait for room.
#[test]
fn max_queued_makes_plain_forms_wait_and_try_forms_refuse() {
    let pool = ok(
        Pool::builder().processes(1).max_queued(4).build(),
        "a pool with max_queued(4)",
    );
    let gate = Gate::new("bound");
    let gated = |gate: String, i: u64| {
        wait_at(&gate);
        i
    };
    let first: Vec<_> = (0..4u64)
        .map(|i| ok(pool.apply_async(gated, (gate.path(), i)), "apply_async"))
        .collect();
    match pool.tasks().try_apply_async(gated, (gate.path(), 4)) {
        Err(Error::QueueFull {
            limit: 4,
            queued: 4,
            requested: 1,
        }) => {}
        other => panic!("expected QueueFull, got {other:?}"),
    }
    assert!(matches!(
        pool.tasks().try_map_async(|x: u64| x, [1u64, 2]), // two chunks of one item
        Err(Error::QueueFull { requested: 2, .. })
    ));
    assert!(matches!(
        pool.tasks()
            .chunksize(1)
            .try_starmap_async(|a: u64, b: u64| a + b, [(1u64, 2u64), (3, 4)]),
        Err(Error::QueueFull { requested: 2, .. })
    ));
    // A plain submission waits for room: it has not returned while the gate is shut.
    std::thread::scope(|s| {
        let waiting = s.spawn(|| {
            let r = pool.apply_async(|x: u64| x * 100, (5,))?;
            r.get()
        });
        std::thread::sleep(Duration::from_millis(200));
        assert!(!waiting.is_finished(), "apply_async did not wait for room");
        gate.open();
        assert_eq!(waiting.join().expect("no panic").expect("its value"), 500);
    });
    for (i, h) in first.iter().enumerate() {
        assert_eq!(ok(h.get_timeout(RESULT_WAIT), "result"), i as u64);
    }
    // Room again: a try_ form goes through.
    let r = ok(
        pool.tasks().try_apply_async(|x: u64| x + 1, (1,)),
        "try_apply_async",
    );
    assert_eq!(ok(get(r, "try_apply_async"), "its value"), 2);
}

/// Retries, `max_tasks_per_child` and timeouts keep working for tasks that waited
/// in the backlog: every task is answered once, with its own value or its own
/// error.
#[test]
fn retries_retirements_and_timeouts_work_for_backlogged_tasks() {
    let pool = ok(
        Pool::builder()
            .processes(2)
            .max_tasks_per_child(50)
            .task_retries(1)
            .build(),
        "pool",
    );
    let tag = format!("backlog-retry-{}", std::process::id());
    // Items 100, 1500 and 2900 die the first time they run (their marker is new).
    let items: Vec<(String, u64)> = (0..3000u64).map(|i| (tag.clone(), i)).collect();
    let results: Vec<_> = ok(
        pool.tasks()
            .chunksize(1)
            .timeout(Duration::from_secs(2))
            .max_in_flight(3000)
            .imap(
                |(tag, i): (String, u64)| {
                    if i % 1400 == 100 {
                        let marker = std::env::temp_dir().join(format!("{tag}-{i}"));
                        if std::fs::File::create_new(&marker).is_ok() {
                            std::process::abort();
                        }
                    }
                    if i == 2000 {
                        std::thread::sleep(Duration::from_secs(60)); // times out
                    }
                    i * 2
                },
                items,
            ),
        "imap",
    )
    .collect();
    for i in [100u64, 1500, 2900] {
        let _ = std::fs::remove_file(std::env::temp_dir().join(format!("{tag}-{i}")));
    }
    assert_eq!(results.len(), 3000);
    for (i, r) in results.iter().enumerate() {
        match (i, r) {
            (2000, Err(Error::Timeout { work, .. })) => assert_eq!(*work, Work::Items(2000..2001)),
            (2000, other) => panic!("item 2000 should time out, got {other:?}"),
            (_, Ok(v)) => assert_eq!(*v, i as u64 * 2, "item {i}"),
            (_, Err(e)) => panic!("item {i}: {e}"),
        }
    }
    let stats = pool.stats();
    assert_eq!(stats.tasks_retried, 3);
    assert!(
        stats.respawns >= 3000 / 50,
        "retirements: {}",
        stats.respawns
    );
}
