//! Cancelling tasks: queued ones are removed without running, running ones have
//! their worker killed and replaced (or, opted in, run to the end with their result
//! discarded), finished ones are left alone, and dropping an `Imap` part way cancels
//! what it had in flight. Tasks leave side effects in files, so the tests can tell
//! what ran.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{RESULT_WAIT, alive, ok, pool_of, wait_until, worker_pids};
use shmpool::{CancelMode, CancelOutcome, Error, Pool, StartMethod, Work};

/// A directory for the side effects of one test.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let path = std::env::temp_dir().join(format!(
            "shmpool-cancel-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the test directory");
        Dir(path)
    }

    fn path(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }

    fn has(&self, name: &str) -> bool {
        self.0.join(name).exists()
    }

    /// How many files start with `prefix`.
    fn count(&self, prefix: &str) -> usize {
        std::fs::read_dir(&self.0)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                    .count()
            })
            .unwrap_or(0)
    }

    fn open_gate(&self) {
        std::fs::write(self.0.join("gate"), b"").expect("open the gate");
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// In a worker: leaves `name` in `dir`, holding the worker's pid (written whole
/// before the name appears).
fn mark(dir: &str, name: &str) {
    let dir = Path::new(dir);
    let tmp = dir.join(format!(".tmp-{name}"));
    if std::fs::write(&tmp, std::process::id().to_string()).is_ok() {
        let _ = std::fs::rename(&tmp, dir.join(name));
    }
}

/// In a worker: waits until the gate in `dir` is open (a minute at most).
fn wait_for_gate(dir: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !Path::new(dir).join("gate").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The pid a task wrote into `dir/name`, once it has.
fn pid_in(dir: &Dir, name: &str) -> i32 {
    assert!(
        wait_until(RESULT_WAIT, || dir.has(name)),
        "the task never started"
    );
    let text = std::fs::read_to_string(dir.0.join(name)).expect("read the pid");
    text.trim().parse().expect("a pid")
}

/// A running task is cancelled: its worker is killed (its pid is gone), the pool
/// starts a replacement (its size is restored and it answers), the task's result is
/// `Cancelled` naming it, and a task running on the other worker is not affected.
fn a_cancelled_running_task_loses_its_worker_to_a_replacement(m: StartMethod) {
    let pool = pool_of(2, m);
    let dir = Dir::new("kill");
    let victim = ok(
        pool.apply_async(
            |dir: String| {
                mark(&dir, "victim-started");
                std::thread::sleep(Duration::from_secs(60));
                mark(&dir, "victim-finished");
            },
            (dir.path(),),
        ),
        "apply_async",
    );
    let bystander = ok(
        pool.apply_async(
            |dir: String| {
                mark(&dir, "bystander-started");
                wait_for_gate(&dir);
                41 + 1
            },
            (dir.path(),),
        ),
        "apply_async",
    );
    let pid = pid_in(&dir, "victim-started");
    let bystander_pid = pid_in(&dir, "bystander-started");
    assert_ne!(pid, bystander_pid);
    let started = Instant::now();
    assert_eq!(victim.cancel(), CancelOutcome::Cancelled);
    match victim.get_timeout(RESULT_WAIT) {
        Err(Error::Cancelled {
            work: Work::Task(_),
        }) => {}
        other => panic!("expected Cancelled naming the task, got {other:?}"),
    }
    assert!(
        wait_until(RESULT_WAIT, || !alive(pid)),
        "the cancelled task's worker {pid} still exists"
    );
    assert!(
        wait_until(RESULT_WAIT, || {
            let pids = worker_pids(&pool);
            pids.len() == 2 && !pids.contains(&pid)
        }),
        "no replacement: workers are {:?}",
        worker_pids(&pool)
    );
    let replaced = started.elapsed();
    eprintln!("{m:?}: cancel to replacement worker: {replaced:?}");
    assert!(!dir.has("victim-finished"));
    // The other worker's task was not touched.
    assert!(alive(bystander_pid));
    dir.open_gate();
    assert_eq!(ok(bystander.get_timeout(RESULT_WAIT), "bystander"), 42);
    assert_eq!(ok(pool.apply(|x: u32| x + 1, (1,)), "the pool answers"), 2);
    assert!(pool.stats().respawns >= 1);
    // Cancelling again changes nothing, and says so.
    assert_eq!(victim.cancel(), CancelOutcome::AlreadyDone);
}

per_start_method!(a_cancelled_running_task_loses_its_worker_to_a_replacement);

/// Queued tasks, in the ring and in the parent's backlog, are removed without
/// running; the others run and get their own values.
#[test]
fn cancelled_queued_tasks_never_run() {
    let pool = pool_of(1, StartMethod::Fork);
    let dir = Dir::new("queued");
    let blocker = ok(
        pool.apply_async(|dir: String| wait_for_gate(&dir), (dir.path(),)),
        "blocker",
    );
    // 3,000 tasks: more than the ring holds, so some wait in the backlog.
    let handles: Vec<_> = (0..3000u64)
        .map(|i| {
            ok(
                pool.apply_async(
                    |dir: String, i: u64| {
                        mark(&dir, &format!("ran-{i}"));
                        i * 10
                    },
                    (dir.path(), i),
                ),
                "apply_async",
            )
        })
        .collect();
    for (i, h) in handles.iter().enumerate() {
        if i % 2 == 1 {
            assert_eq!(h.cancel(), CancelOutcome::Cancelled, "task {i}");
        }
    }
    dir.open_gate();
    ok(blocker.get_timeout(RESULT_WAIT), "blocker");
    for (i, h) in handles.iter().enumerate() {
        match (i % 2, h.get_timeout(RESULT_WAIT)) {
            (0, Ok(v)) => assert_eq!(v, i as u64 * 10),
            (1, Err(Error::Cancelled { .. })) => {}
            (_, other) => panic!("task {i}: {other:?}"),
        }
    }
    for i in (1..3000).step_by(2) {
        assert!(!dir.has(&format!("ran-{i}")), "cancelled task {i} ran");
    }
    assert_eq!(dir.count("ran-"), 1500);
    assert_eq!(pool.stats().respawns, 0, "no worker was killed");
}

/// `CancelMode::LetFinish`: the running task runs to its end on the same worker, and
/// its result is discarded.
#[test]
fn let_finish_discards_the_result_and_keeps_the_worker() {
    let pool = pool_of(1, StartMethod::Fork);
    let dir = Dir::new("let-finish");
    let r = ok(
        pool.apply_async(
            |dir: String| {
                mark(&dir, "started");
                wait_for_gate(&dir);
                mark(&dir, "finished");
                7
            },
            (dir.path(),),
        ),
        "apply_async",
    );
    let pid = pid_in(&dir, "started");
    assert_eq!(
        r.cancel_with(CancelMode::LetFinish),
        CancelOutcome::Cancelled
    );
    assert!(matches!(
        r.get_timeout(RESULT_WAIT),
        Err(Error::Cancelled { .. })
    ));
    dir.open_gate();
    assert!(wait_until(RESULT_WAIT, || dir.has("finished")));
    assert_eq!(
        ok(pool.apply(|| std::process::id() as i32, ()), "apply"),
        pid,
        "the same worker carries on"
    );
    assert_eq!(pool.stats().respawns, 0);
}

/// Work that already finished is not changed by a cancel, which says so.
#[test]
fn cancelling_finished_work_does_nothing_and_says_so() {
    let pool = pool_of(1, StartMethod::Fork);
    let r = ok(pool.apply_async(|| 5, ()), "apply_async");
    r.wait();
    assert_eq!(r.cancel(), CancelOutcome::AlreadyDone);
    assert_eq!(ok(r.get(), "the result survives"), 5);
    let m = ok(pool.map_async(|x: u8| x + 1, [1u8, 2]), "map_async");
    m.wait();
    assert!(!m.cancel_with(CancelMode::Kill).was_cancelled());
    assert_eq!(ok(m.get(), "map"), [2, 3]);
    assert_eq!(pool.stats().respawns, 0);
}

/// Cancelling a `map_async`: its result is `Cancelled` naming its items, the chunks
/// not started never run, the running ones' workers are replaced, and a map
/// submitted after it is not affected.
#[test]
fn cancelling_a_map_cancels_every_chunk() {
    let pool = pool_of(2, StartMethod::Fork);
    let dir = Dir::new("map");
    let items: Vec<(String, u64)> = (0..200u64).map(|i| (dir.path(), i)).collect();
    let r = ok(
        pool.tasks().chunksize(1).starmap_async(
            |dir: String, i: u64| {
                mark(&dir, &format!("started-{i}"));
                wait_for_gate(&dir);
                i
            },
            items,
        ),
        "starmap_async",
    );
    assert!(wait_until(RESULT_WAIT, || dir.count("started-") == 2));
    assert_eq!(r.cancel(), CancelOutcome::Cancelled);
    match r.get_timeout(RESULT_WAIT) {
        Err(Error::Cancelled { work }) => assert_eq!(work, Work::Items(0..200)),
        other => panic!("expected Cancelled, got {other:?}"),
    }
    let after = ok(pool.map_async(|x: u64| x * x, 0..100u64), "map_async");
    assert_eq!(
        ok(after.get_timeout(RESULT_WAIT), "later map"),
        (0..100u64).map(|x| x * x).collect::<Vec<_>>()
    );
    dir.open_gate();
    std::thread::sleep(Duration::from_millis(100));
    let started: Vec<String> = std::fs::read_dir(&dir.0)
        .expect("read the directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("started-"))
        .collect();
    assert_eq!(started.len(), 2, "a cancelled chunk started: {started:?}");
    assert!(pool.stats().respawns >= 2);
}

/// Dropping an `Imap` part way cancels what it had in flight: of 1,000 items with 50
/// in flight, the ones it never yielded stop being run, and none far past the window
/// ever starts.
#[test]
fn dropping_an_imap_part_way_cancels_what_it_had_in_flight() {
    let pool = ok(
        Pool::builder()
            .processes(2)
            .cancel_mode(CancelMode::LetFinish)
            .build(),
        "pool",
    );
    let dir = Dir::new("imap-drop");
    let items: Vec<(String, u64)> = (0..1000u64).map(|i| (dir.path(), i)).collect();
    let mut results = ok(
        pool.tasks().max_in_flight(50).imap(
            |(dir, i): (String, u64)| {
                mark(&dir, &format!("started-{i}"));
                std::thread::sleep(Duration::from_millis(20));
                i
            },
            items,
        ),
        "imap",
    );
    for want in 0..5u64 {
        assert_eq!(ok(results.next().expect("an item"), "item"), want);
    }
    drop(results);
    // Running chunks finish (LetFinish); nothing else starts.
    std::thread::sleep(Duration::from_millis(100));
    let at_drop = dir.count("started-");
    std::thread::sleep(Duration::from_millis(300));
    let later = dir.count("started-");
    eprintln!("imap dropped after 5 items: {later} of 1000 started (50 were in flight)");
    assert_eq!(at_drop, later, "tasks kept starting after the drop");
    assert!(later < 5 + 10, "{later} items started");
    for i in 55..1000 {
        assert!(!dir.has(&format!("started-{i}")), "item {i} ran");
    }
    assert_eq!(ok(pool.apply(|| 1, ()), "the pool answers"), 1);
}

/// `Imap::cancel`: the items of cancelled chunks come out as `Cancelled` naming
/// them, then the imap ends without reading more input.
#[test]
fn cancelling_an_imap_ends_it_with_cancelled_items() {
    let pool = pool_of(1, StartMethod::Fork);
    let dir = Dir::new("imap-cancel");
    let gate = dir.path();
    let mut results = ok(
        pool.tasks().max_in_flight(4).imap(
            |(dir, i): (String, u64)| {
                if i > 0 {
                    wait_for_gate(&dir);
                }
                i
            },
            (0u64..).map(move |i| (gate.clone(), i)),
        ),
        "imap",
    );
    assert_eq!(ok(results.next().expect("item 0"), "item 0"), 0);
    assert_eq!(results.cancel(), CancelOutcome::Cancelled);
    let rest: Vec<_> = results.collect();
    // The chunks in flight (at most 4) come out cancelled, in order; then the end.
    assert!(!rest.is_empty() && rest.len() <= 4, "{rest:?}");
    for (k, r) in rest.iter().enumerate() {
        let i = k + 1;
        match r {
            Err(Error::Cancelled { work }) => assert_eq!(*work, Work::Items(i..i + 1)),
            other => panic!("item {i}: {other:?}"),
        }
    }
}
