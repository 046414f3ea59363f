//! Faults: workers that die in every way a process can, hung workers, retries,
//! a parent that is killed, and the spawn start method under hostile threads.

#[macro_use]
mod common;

use common::pool;
use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use shmpool::{DeathCause, Error, Pool, SharedArray, StartMethod, Work};

fn die_by_sigkill() -> u32 {
    // SAFETY: raise has no memory-safety preconditions.
    unsafe { libc::raise(libc::SIGKILL) };
    unreachable!()
}

fn die_by_segfault() -> u32 {
    // SAFETY: deliberately not safe: this writes to address 0 to crash the worker.
    unsafe { std::ptr::null_mut::<u32>().write_volatile(1) };
    unreachable!()
}

fn die_by_abort() -> u32 {
    std::process::abort()
}

fn die_by_exit() -> u32 {
    std::process::exit(3)
}

#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let pad = [depth; 64];
    std::hint::black_box(&pad);
    recurse(depth + 1) + pad[1]
}

fn die_by_stack_overflow() -> u32 {
    recurse(0) as u32
}

/// Each kind of death fails only its own task, names the process and how it
/// died, and the pool replaces the worker and carries on.
fn every_kind_of_death_fails_only_its_task(m: StartMethod) {
    let pool = pool(m);
    // (Kernels must be zero-sized fn items, so each case is its own call below.)
    let cases = ["SIGKILL", "SIGSEGV", "SIGABRT", "exit 3", "stack overflow"];
    for (i, what) in cases.into_iter().enumerate() {
        // Other work in flight around the death.
        let before: Vec<_> = (0..20u64)
            .map(|x| pool.apply_async(|x: u64| x * 2, (x,)).unwrap())
            .collect();
        let doomed = match i {
            0 => pool.apply_async(die_by_sigkill, ()),
            1 => pool.apply_async(die_by_segfault, ()),
            2 => pool.apply_async(die_by_abort, ()),
            3 => pool.apply_async(die_by_exit, ()),
            _ => pool.apply_async(die_by_stack_overflow, ()),
        }
        .unwrap();
        let after: Vec<_> = (0..20u64)
            .map(|x| pool.apply_async(|x: u64| x + 1, (x,)).unwrap())
            .collect();
        match doomed.get() {
            Err(Error::WorkerDied {
                pid,
                cause,
                work: Work::Task(_),
                ..
            }) => {
                assert!(pid > 0);
                match (what, cause) {
                    ("SIGKILL", DeathCause::Signal(s)) => assert_eq!(s, libc::SIGKILL),
                    ("SIGSEGV", DeathCause::Signal(s)) => assert_eq!(s, libc::SIGSEGV),
                    ("SIGABRT", DeathCause::Signal(s)) => assert_eq!(s, libc::SIGABRT),
                    ("exit 3", DeathCause::Exit(c)) => assert_eq!(c, 3),
                    // Rust's handler reports an overflow and aborts; without it
                    // (a re-executed worker before main) the kernel's SIGSEGV stands.
                    ("stack overflow", DeathCause::Signal(s)) => {
                        assert!(s == libc::SIGABRT || s == libc::SIGSEGV, "signal {s}")
                    }
                    (what, cause) => panic!("{what}: unexpected cause {cause:?}"),
                }
            }
            other => panic!("{what}: expected WorkerDied, got {other:?}"),
        }
        for (x, r) in before.into_iter().enumerate() {
            assert_eq!(
                r.get().unwrap(),
                x as u64 * 2,
                "{what}: an earlier task was lost"
            );
        }
        for (x, r) in after.into_iter().enumerate() {
            assert_eq!(
                r.get().unwrap(),
                x as u64 + 1,
                "{what}: a later task was lost"
            );
        }
    }
    // The error is delivered as soon as the death is seen; the replacement starts
    // right after.
    let deadline = Instant::now() + Duration::from_secs(10);
    while pool.stats().respawns < 5 {
        assert!(Instant::now() < deadline, "{:?}", pool.stats());
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(pool.apply(|| 1, ()).unwrap(), 1);
}

fn kill_on(v: f64) -> f64 {
    if v == 4321.0 {
        // SAFETY: raise has no memory-safety preconditions.
        unsafe { libc::raise(libc::SIGKILL) };
    }
    v * 2.0
}

/// The errors of a failed bulk map: the error itself, or those of `ChunksLost`.
fn errors_of(err: &Error) -> &[Error] {
    match err {
        Error::ChunksLost { errors } => errors,
        one => std::slice::from_ref(one),
    }
}

/// Checks that every error of `err` other than the one `dead` accepts (which must be
/// there exactly once) is a range skipped after `dead_chunk`: a death stops the map,
/// and chunks not claimed by then are skipped (how many depends on how soon the
/// pool sees the death).
fn assert_stopped_after(
    err: &Error,
    dead_chunk: std::ops::Range<usize>,
    dead: impl Fn(&Error) -> bool,
) {
    let mut deaths = 0;
    for e in errors_of(err) {
        match e {
            Error::ChunkSkipped { after, .. } => assert_eq!(*after, dead_chunk, "{err}"),
            e if dead(e) => deaths += 1,
            other => panic!("unexpected {other:?} in {err}"),
        }
    }
    assert_eq!(deaths, 1, "the dead chunk is not named once: {err}");
}

/// A worker dying inside a bulk map fails the map, naming the chunk range.
fn a_death_in_a_bulk_map_names_the_chunk(m: StartMethod) {
    let pool = pool(m);
    let xs = SharedArray::try_from_iter((0..10_000).map(|i| i as f64)).unwrap();
    let mut ys = SharedArray::zeroed(10_000).unwrap();
    let err = pool
        .bulk()
        .chunk_len(1000)
        .map_into(&xs, &mut ys, kill_on)
        .unwrap_err();
    assert_stopped_after(&err, 4000..5000, |e| {
        matches!(
            e,
            Error::WorkerDied {
                cause: DeathCause::Signal(libc::SIGKILL),
                work: Work::Chunk(range),
                ..
            } if *range == (4000..5000)
        )
    });
    assert!(err.to_string().contains("chunk 4000..5000"), "{err}");
    // Every chunk not named was computed.
    let failed = err.failed_ranges();
    assert!(
        ys.iter()
            .enumerate()
            .all(|(i, y)| failed.iter().any(|r| r.contains(&i)) || *y == 2.0 * i as f64),
        "{err}"
    );
    // The pool carries on.
    pool.map_into(&xs, &mut ys, |v: f64| v + 1.0).unwrap();
    assert_eq!(ys[4321], 4322.0);
}

/// Dies the first time it sees 777 in a given pool, and succeeds afterwards: a
/// marker file named after the fork server (the workers' parent) remembers.
fn die_once_on(v: u64) -> u64 {
    if v == 777 {
        // SAFETY: getppid has no preconditions.
        let marker =
            std::env::temp_dir().join(format!("shmpool-die-once-{}", unsafe { libc::getppid() }));
        if std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
            .is_ok()
        {
            // SAFETY: raise has no memory-safety preconditions.
            unsafe { libc::raise(libc::SIGKILL) };
        }
    }
    v + 1
}

/// `retries(n)` re-runs a chunk whose worker died, on another worker.
fn retries_rerun_a_lost_chunk(m: StartMethod) {
    let pool = pool(m);
    let xs = SharedArray::try_from_iter(0..5000u64).unwrap();
    let mut ys = SharedArray::zeroed(5000).unwrap();
    pool.bulk()
        .chunk_len(100)
        .retries(1)
        .map_into(&xs, &mut ys, die_once_on)
        .unwrap();
    assert!(ys.iter().enumerate().all(|(i, y)| *y == i as u64 + 1));
    assert!(pool.stats().respawns >= 1);
    drop(pool);
    // Remove the markers of fork servers that are gone (ours is, now; a pool of a
    // test running in parallel keeps its own).
    for entry in std::fs::read_dir(std::env::temp_dir()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("shmpool-die-once-") {
            if pid.parse().is_ok_and(|pid: i32| !alive(pid)) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

fn hang_on(v: u32) -> u32 {
    if v == 50 {
        std::thread::sleep(Duration::from_secs(60));
    }
    v
}

/// A chunk that runs past its time limit: the worker is killed and replaced.
fn a_hung_chunk_times_out(m: StartMethod) {
    let pool = pool(m);
    let xs = SharedArray::try_from_iter(0..1000u32).unwrap();
    let mut ys = SharedArray::zeroed(1000).unwrap();
    let t = Instant::now();
    let err = pool
        .bulk()
        .chunk_len(10)
        .chunk_timeout(Duration::from_millis(200))
        .map_into(&xs, &mut ys, hang_on)
        .unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    // The other chunks are quick and almost always done before the limit passes;
    // any not yet claimed when the pool saw the kill is skipped.
    assert_stopped_after(&err, 50..60, |e| {
        matches!(
            e,
            Error::Timeout { limit, work: Work::Chunk(range), .. }
                if *limit == Duration::from_millis(200) && *range == (50..60)
        )
    });
    let failed = err.failed_ranges();
    assert!(
        ys.iter()
            .enumerate()
            .all(|(i, &y)| failed.iter().any(|r| r.contains(&i)) || y == i as u32),
        "{err}"
    );
    assert_eq!(pool.apply(|| 5, ()).unwrap(), 5);
}

/// A pool default time limit applies to every task.
fn the_pool_default_task_timeout_applies(m: StartMethod) {
    let pool = Pool::builder()
        .processes(1)
        .start_method(m)
        .task_timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let slow = pool
        .apply_async(|| std::thread::sleep(Duration::from_secs(30)), ())
        .unwrap();
    let fast = pool.apply_async(|| 3, ()).unwrap();
    assert!(matches!(slow.get(), Err(Error::Timeout { .. })));
    assert_eq!(fast.get().unwrap(), 3);
}

for_each_start_method!(
    every_kind_of_death_fails_only_its_task,
    a_death_in_a_bulk_map_names_the_chunk,
    retries_rerun_a_lost_chunk,
    a_hung_chunk_times_out,
    the_pool_default_task_timeout_applies,
);

static HELD: Mutex<u32> = Mutex::new(0);

/// Re-executed workers start clean even when, at spawn time, another thread of
/// the parent holds the stdout lock and a mutex the tasks use. (With `Fork`, the
/// fork server would inherit both locks held, and such tasks would deadlock.)
#[test]
fn spawn_works_while_another_thread_holds_stdout_and_a_mutex() {
    for method in [StartMethod::Spawn, StartMethod::ForkServer] {
        let (locked_tx, locked_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            let out = std::io::stdout().lock();
            let guard = HELD.lock().unwrap();
            locked_tx.send(()).unwrap();
            let _ = release_rx.recv_timeout(Duration::from_secs(30));
            drop(guard);
            drop(out);
        });
        locked_rx.recv().unwrap();
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .build()
            .unwrap();
        let r = pool
            .apply_async(
                || {
                    println!("a worker prints while the parent's stdout is locked");
                    let mut g = HELD.lock().unwrap();
                    *g += 1;
                    *g
                },
                (),
            )
            .unwrap();
        assert_eq!(
            r.get_timeout(Duration::from_secs(20)).unwrap(),
            1,
            "{method:?}"
        );
        release_tx.send(()).unwrap();
        holder.join().unwrap();
    }
}

/// Processes and pids in /proc whose parent is `pid`.
fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // Fields after the command name (which may contain spaces) end with ')'.
        let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
        let ppid: i32 = rest
            .split(' ')
            .nth(1)
            .and_then(|f| f.parse().ok())
            .unwrap_or(0);
        if ppid == pid {
            out.push(p);
        }
    }
    out
}

fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat[stat.rfind(')').map_or(0, |i| i + 2)..].starts_with('Z'),
        Err(_) => false,
    }
}

fn dev_shm() -> HashSet<String> {
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// When the parent is SIGKILLed, every worker and the fork server exit within a
/// second, and nothing is left in /dev/shm: once per start method.
#[test]
fn a_killed_parent_leaves_nothing_behind_fork() {
    killed_parent(
        "a_killed_parent_leaves_nothing_behind_fork",
        StartMethod::Fork,
    );
}

#[test]
fn a_killed_parent_leaves_nothing_behind_fork_server() {
    killed_parent(
        "a_killed_parent_leaves_nothing_behind_fork_server",
        StartMethod::ForkServer,
    );
}

#[test]
fn a_killed_parent_leaves_nothing_behind_spawn() {
    killed_parent(
        "a_killed_parent_leaves_nothing_behind_spawn",
        StartMethod::Spawn,
    );
}

/// Runs this test binary as a child (test `name`) that builds a pool with `method`,
/// kills it, and checks that its fork server and workers go too.
fn killed_parent(name: &str, method: StartMethod) {
    if std::env::var_os("SHMPOOL_ORPHAN_CHILD").is_some() {
        // The child: a pool with arrays and tasks in use, then wait to be killed.
        let pool = Pool::builder()
            .processes(2)
            .start_method(method)
            .build()
            .unwrap();
        let xs = SharedArray::filled(1 << 16, 1.0f64).unwrap();
        let mut ys = SharedArray::zeroed(1 << 16).unwrap();
        pool.map_into(&xs, &mut ys, |v: f64| v + 1.0).unwrap();
        let _ = pool.apply(|n: usize| vec![0u8; n], (1 << 20,)).unwrap();
        let _busy = pool
            .apply_async(|| std::thread::sleep(Duration::from_secs(60)), ())
            .unwrap();
        println!("READY");
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let shm_before = dev_shm();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env("SHMPOOL_ORPHAN_CHILD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    let mut reader = std::io::BufReader::new(stdout);
    while !line.contains("READY") {
        line.clear();
        assert!(
            std::io::BufRead::read_line(&mut reader, &mut line).unwrap() > 0,
            "child ended early"
        );
    }
    let parent = child.id() as i32;
    let servers = children_of(parent);
    assert_eq!(
        servers.len(),
        1,
        "expected one fork server, found {servers:?}"
    );
    let workers = children_of(servers[0]);
    assert_eq!(workers.len(), 2, "expected two workers, found {workers:?}");

    // SAFETY: kill has no memory-safety preconditions; the pid is our child.
    unsafe { libc::kill(parent, libc::SIGKILL) };
    child.wait().unwrap();
    let killed = Instant::now();
    let everyone: Vec<i32> = servers.iter().chain(&workers).copied().collect();
    while everyone.iter().any(|&p| alive(p)) {
        assert!(
            killed.elapsed() < Duration::from_secs(1),
            "still alive after 1 s: {:?}",
            everyone.iter().filter(|&&p| alive(p)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(dev_shm(), shm_before, "/dev/shm changed");
}

/// Fork-method pools build and run while other threads of the parent are in the
/// middle of panicking (holding the panic machinery's locks at the instant of a
/// fork): forked workers must not need those locks.
#[test]
fn fork_pools_start_while_other_threads_panic() {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = std::panic::catch_unwind(|| panic!("noise"));
                }
            });
        }
        for round in 0..20 {
            let pool = Pool::builder()
                .processes(2)
                .start_method(StartMethod::Fork)
                .build()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            let r = pool.apply(|| -> u32 { panic!("in a worker") }, ());
            assert!(
                matches!(r, Err(Error::TaskPanicked { .. })),
                "round {round}: {r:?}"
            );
            assert_eq!(pool.apply(|x: u32| x + 1, (round,)).unwrap(), round + 1);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}

fn segfault_on_start() {
    // SAFETY: deliberately not safe: crashes the worker while it starts.
    unsafe { std::ptr::null_mut::<u32>().write_volatile(1) };
}

/// Workers that crash while starting make `build` fail with a reason, instead of
/// being respawned forever (Python's Pool loops).
#[test]
fn workers_that_crash_while_starting_fail_build() {
    let t = Instant::now();
    let err = Pool::builder()
        .processes(2)
        .initializer(segfault_on_start, ())
        .build()
        .unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t.elapsed()
    );
    match err {
        Error::Start(why) => assert!(why.contains("died three times while starting"), "{why}"),
        other => panic!("expected Start, got {other:?}"),
    }
}

/// If the fork server is killed, its workers die with it; pending work fails with
/// a reason and the pool takes no more work.
#[test]
fn a_killed_fork_server_fails_pending_work_and_stops_the_pool() {
    let pool = pool(StartMethod::Fork);
    let pending = pool
        .apply_async(|| std::thread::sleep(Duration::from_secs(30)), ())
        .unwrap();
    let workers: Vec<i32> = pool.stats().workers.iter().filter_map(|w| w.pid).collect();
    assert_eq!(workers.len(), 2);
    let worker = workers[0];
    let server = {
        let stat = std::fs::read_to_string(format!("/proc/{worker}/stat")).unwrap();
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        rest.split(' ').nth(1).unwrap().parse::<i32>().unwrap()
    };
    assert_ne!(server, std::process::id() as i32);
    // SAFETY: kill has no memory-safety preconditions; the pid is our pool's server.
    unsafe { libc::kill(server, libc::SIGKILL) };
    match pending.get() {
        Err(Error::Start(why)) => assert!(why.contains("fork server died"), "{why}"),
        other => panic!("expected Start, got {other:?}"),
    }
    assert!(matches!(pool.apply(|| 1, ()), Err(Error::Start(_))));
    // Its workers died with it (PR_SET_PDEATHSIG), within a second.
    let killed = Instant::now();
    while workers.iter().any(|&p| alive(p)) {
        assert!(
            killed.elapsed() < Duration::from_secs(1),
            "workers {workers:?} outlived their fork server"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A worker that dies in a `map` or an `imap` fails the items of its chunk, and the
/// error names them by input index, the short last chunk of an `imap` included.
#[test]
fn a_death_in_a_map_or_imap_names_the_items_of_its_chunk() {
    let pool = pool(StartMethod::Fork);
    let die_at = |x: u32| {
        if x == 13 || x == 33 {
            std::process::abort()
        } else {
            x
        }
    };
    match pool.tasks().chunksize(10).map(die_at, 0..20u32) {
        Err(Error::WorkerDied { work, .. }) => assert_eq!(work, Work::Items(10..20)),
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    let results: Vec<_> = pool
        .tasks()
        .chunksize(10)
        .imap(die_at, 0..35u32)
        .unwrap()
        .collect();
    assert_eq!(results.len(), 35);
    for (i, r) in results.into_iter().enumerate() {
        let dead_chunk = match i {
            10..20 => Some(10..20),
            30..35 => Some(30..35),
            _ => None,
        };
        match (r, dead_chunk) {
            (Ok(v), None) => assert_eq!(v, i as u32),
            (Err(Error::WorkerDied { work, .. }), Some(items)) => {
                assert_eq!(work, Work::Items(items), "item {i}")
            }
            (other, _) => panic!("item {i}: {other:?}"),
        }
    }
}
