//! Memory controls: a memory limit per worker (`worker_memory_limit`, enforced with
//! `RLIMIT_DATA`), the retirement of workers whose resident memory grew
//! (`max_worker_rss`), a worker killed by the kernel's OOM killer reported as such,
//! and the memory `Pool::stats` shows. Every test runs once per start method, as
//! `<test>::fork`, `<test>::fork_server` and `<test>::spawn`.
//!
//! Two tests play their part in a child process (this binary again, filtered to the
//! test, with `SHMPOOL_MEMORY_CHILD` set): one to set `RUST_BACKTRACE` for the whole
//! process, one to run in a memory cgroup of its own.

#[macro_use]
mod common;

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use common::{get, ok, pattern, rerun_self_with, wait_until, within, worker_pids};
use shmpool::{DeathCause, Error, Pool, SharedArray, StartMethod, Work};

const MIB: usize = 1 << 20;
/// The memory limit of the tests' limited pools: private memory a worker may add.
const LIMIT: u64 = 64 << 20;
/// The time limit of one test's body.
const BODY: Duration = Duration::from_secs(120);
/// Set in a child process of this binary: the child plays the test's part.
const CHILD: &str = "SHMPOOL_MEMORY_CHILD";

per_start_method!(
    a_task_past_the_memory_limit_fails_alone,
    work_within_the_memory_limit_runs_as_usual,
    memory_limit_deaths_are_recognized_with_rust_backtrace_set,
    leaking_workers_retire_and_are_replaced,
    stats_show_each_workers_memory_and_the_pools_shared_memory,
    an_oom_killed_worker_is_reported_as_out_of_memory,
);

/// The name `per_start_method!` gives the test of `body` for `method`.
fn test_name(body: &str, method: StartMethod) -> String {
    let suffix = match method {
        StartMethod::Fork => "fork",
        StartMethod::ForkServer => "fork_server",
        _ => "spawn",
    };
    format!("{body}::{suffix}")
}

fn pool_of(builder: shmpool::PoolBuilder, method: StartMethod) -> Pool {
    ok(
        builder.processes(2).start_method(method).build(),
        format!("build a pool ({method:?})"),
    )
}

fn limited_pool(method: StartMethod) -> Pool {
    pool_of(Pool::builder().worker_memory_limit(LIMIT), method)
}

/// The item that makes one allocation four times the limit.
const BIG_AT: u64 = 7;
/// The item that allocates 4 MiB at a time, touching each, until one fails.
const CREEP_AT: u64 = 15;

/// `i²`, after a few milliseconds, so that two workers run items side by side;
/// the two items above go past the limit instead.
fn square_or_grab(i: u64) -> u64 {
    match i {
        BIG_AT => black_box(vec![1u8; 4 * LIMIT as usize]).len() as u64,
        CREEP_AT => {
            let mut held = Vec::new();
            loop {
                held.push(black_box(vec![1u8; 4 * MIB]));
                black_box(&held);
            }
        }
        _ => {
            std::thread::sleep(Duration::from_millis(3));
            i * i
        }
    }
}

/// Checks that `r` is a memory-limit death while running `expected`.
fn assert_memory_limit_death(r: shmpool::Result<u64>, expected: Work) {
    match r {
        Err(Error::WorkerDied { cause, work, .. }) => {
            assert_eq!(cause, DeathCause::MemoryLimit { limit: LIMIT }, "{work}");
            assert_eq!(work, expected);
        }
        other => panic!("{expected}: expected a memory-limit death, got {other:?}"),
    }
}

fn a_task_past_the_memory_limit_fails_alone(method: StartMethod) {
    within(BODY, "a task past the memory limit", move || {
        let pool = limited_pool(method);
        // Runs beside the items below, on one worker while the other dies.
        let beside = ok(
            pool.apply_async(
                || {
                    std::thread::sleep(Duration::from_millis(300));
                    42u64
                },
                (),
            ),
            "apply_async",
        );
        let results: Vec<_> = ok(
            pool.tasks().chunksize(1).imap(square_or_grab, 0..24u64),
            "imap",
        )
        .collect();
        assert_eq!(results.len(), 24);
        for (i, r) in (0u64..).zip(results) {
            match i {
                BIG_AT | CREEP_AT => {
                    assert_memory_limit_death(r, Work::Items(i as usize..i as usize + 1))
                }
                _ => assert_eq!(ok(r, format!("item {i}")), i * i),
            }
        }
        assert_eq!(ok(get(beside, "the task beside"), "the task beside"), 42);
        // Both workers were replaced, and the pool carries on.
        let after = ok(pool.map(|x: u64| x + 1, 0..100u64), "map after");
        assert_eq!(after, (1..101).collect::<Vec<u64>>());
        assert!(pool.stats().respawns >= 2);
        // The message says what happened.
        let e = pool.apply(square_or_grab, (BIG_AT,)).unwrap_err();
        assert!(
            e.to_string()
                .contains("exceeded its memory limit of 67108864 bytes (64.0 MiB)"),
            "{e}"
        );
    });
}

fn work_within_the_memory_limit_runs_as_usual(method: StartMethod) {
    within(BODY, "work within the memory limit", move || {
        let pool = limited_pool(method);
        // 16 MiB touched and freed, many times over: the limit is on what a worker
        // holds, not on what it ever allocated.
        let sums = ok(
            pool.tasks().chunksize(1).map(
                |i: u64| {
                    let v = vec![(i % 250) as u8 + 1; 16 * MIB];
                    v.iter().map(|&b| u64::from(b)).sum::<u64>()
                },
                0..20u64,
            ),
            "16 MiB tasks",
        );
        for (i, sum) in (0u64..).zip(sums) {
            assert_eq!(sum, ((i % 250) + 1) * 16 * MIB as u64, "task {i}");
        }
        // Arguments and results above the inline limit go through the arenas, which
        // are shared memory: 8 MiB each way.
        for seed in 0..3 {
            let arg = pattern(seed, 8 * MIB);
            let back = ok(
                pool.apply(
                    |v: Vec<u8>| v.into_iter().rev().collect::<Vec<u8>>(),
                    (arg.clone(),),
                ),
                "an 8 MiB round trip",
            );
            assert_eq!(back.len(), arg.len());
            assert!(back.iter().rev().eq(arg.iter()), "seed {seed}");
        }
        // A bulk map over arrays three times the limit: arrays are shared memory.
        let len = 3 * LIMIT as usize;
        let xs = ok(SharedArray::<u8>::filled(len, 3), "a 192 MiB array");
        let mut ys = ok(SharedArray::<u8>::zeroed(len), "another");
        ok(pool.map_into(&xs, &mut ys, |v: u8| v + 1), "map_into");
        assert!(ys.iter().all(|&y| y == 4));
        assert_eq!(pool.stats().respawns, 0, "no worker died");
    });
}

fn memory_limit_deaths_are_recognized_with_rust_backtrace_set(method: StartMethod) {
    if std::env::var_os(CHILD).is_some() {
        // std prints a backtrace of a failed allocation when RUST_BACKTRACE asks for
        // one, and symbolizing it overwrites errno; workers under a limit turn it
        // off. Both kinds of failure: one that leaves room for a backtrace, and one
        // that does not.
        let pool = limited_pool(method);
        let results: Vec<_> = ok(
            pool.tasks()
                .chunksize(1)
                .imap(square_or_grab, [BIG_AT, CREEP_AT, 3]),
            "imap",
        )
        .collect();
        let mut results = results.into_iter();
        assert_memory_limit_death(results.next().unwrap(), Work::Items(0..1));
        assert_memory_limit_death(results.next().unwrap(), Work::Items(1..2));
        assert_eq!(ok(results.next().unwrap(), "item 3"), 9);
        // Tasks still find the setting where std::backtrace::Backtrace reads it
        // first, unless it was set already.
        let seen = ok(
            pool.apply(
                || {
                    let var = |name| std::env::var(name).ok();
                    (var("RUST_BACKTRACE"), var("RUST_LIB_BACKTRACE"))
                },
                (),
            ),
            "read the environment",
        );
        let lib = std::env::var("RUST_LIB_BACKTRACE").or(std::env::var("RUST_BACKTRACE"));
        assert_eq!(seen, (None, lib.ok()));
        return;
    }
    let name = test_name(
        "memory_limit_deaths_are_recognized_with_rust_backtrace_set",
        method,
    );
    for style in ["1", "full"] {
        let out = rerun_self_with(&name, &[(CHILD, "1"), ("RUST_BACKTRACE", style)], BODY);
        assert!(
            out.status.success(),
            "RUST_BACKTRACE={style}: the child failed ({:?}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Leaks `kib` KiB, touched, and answers with its item and its process.
fn leak(i: u64, kib: usize) -> (u64, u32) {
    Box::leak(vec![1u8; kib << 10].into_boxed_slice());
    (i, std::process::id())
}

fn leaking_workers_retire_and_are_replaced(method: StartMethod) {
    within(BODY, "leaking workers", move || {
        let pool = pool_of(Pool::builder().max_worker_rss(24 << 20), method);
        let first: HashSet<i32> = worker_pids(&pool).into_iter().collect();
        // Each task leaks 8 MiB and runs 1 ms or longer, so its worker reads its
        // memory after every task: a worker holds 24 MiB more after its third and
        // retires after its third or fourth.
        let answers = ok(
            pool.tasks().chunksize(1).map(
                |i: u64| {
                    std::thread::sleep(Duration::from_millis(1));
                    leak(i, 8 << 10)
                },
                0..24u64,
            ),
            "leaking tasks",
        );
        let mut per_process: HashMap<u32, usize> = HashMap::new();
        for (i, &(item, pid)) in (0u64..).zip(&answers) {
            assert_eq!(item, i, "every task answered with its own value");
            *per_process.entry(pid).or_default() += 1;
        }
        assert!(
            per_process.values().all(|&n| n <= 4),
            "a process ran more than 4 leaking tasks: {per_process:?}"
        );
        assert!(per_process.len() >= 6, "{per_process:?}");
        assert!(pool.stats().workers_retired_for_memory >= 4);
        // The pool keeps its size, with other processes.
        let settled = wait_until(Duration::from_secs(10), || worker_pids(&pool).len() == 2);
        assert!(settled, "workers: {:?}", pool.stats().workers);
        let now: HashSet<i32> = worker_pids(&pool).into_iter().collect();
        assert_ne!(now, first);
        assert_eq!(
            ok(pool.map(|x: u64| 2 * x, 0..50u64), "map after"),
            (0..50).map(|x| 2 * x).collect::<Vec<u64>>()
        );

        // Short tasks that leak a little each: reads are rate-limited (at most one
        // per millisecond), and the workers still retire.
        let before = pool.stats().workers_retired_for_memory;
        let answers = ok(
            pool.tasks()
                .chunksize(1)
                .map(|i: u64| leak(i, 64).0, 0..2000u64),
            "short leaking tasks",
        );
        assert_eq!(answers, (0..2000).collect::<Vec<u64>>());
        let retired = wait_until(Duration::from_secs(10), || {
            pool.stats().workers_retired_for_memory >= before + 2
        });
        assert!(retired, "{:?}", pool.stats());
    });
}

fn stats_show_each_workers_memory_and_the_pools_shared_memory(method: StartMethod) {
    within(BODY, "memory in stats", move || {
        let pool = pool_of(Pool::builder(), method);
        let stats = pool.stats();
        assert_eq!(stats.workers.len(), 2);
        for w in &stats.workers {
            assert!(w.pid.is_some());
            assert!(w.resident_private.is_some_and(|b| b > 0), "{w:?}");
            assert!(w.resident_shared.is_some_and(|b| b > 0), "{w:?}");
        }
        // A worker that holds 32 MiB shows it.
        let pid = ok(
            pool.apply(
                || {
                    Box::leak(vec![1u8; 32 * MIB].into_boxed_slice());
                    std::process::id() as i32
                },
                (),
            ),
            "hold 32 MiB",
        );
        let holder = pool
            .stats()
            .workers
            .into_iter()
            .find(|w| w.pid == Some(pid));
        let private = holder.and_then(|w| w.resident_private).unwrap_or(0);
        assert!(private >= 32 << 20, "{private} bytes");

        // The pool's shared memory: at least the control segment; then the arrays
        // shipped to its workers while they live.
        let base = pool.stats().shared_memory_bytes;
        assert!(base >= 4 << 20, "{base}");
        let xs = ok(SharedArray::<u8>::filled(32 * MIB, 1), "xs");
        let mut ys = ok(SharedArray::<u8>::zeroed(32 * MIB), "ys");
        ok(pool.map_into(&xs, &mut ys, |v: u8| v + 1), "map_into");
        let with = pool.stats().shared_memory_bytes;
        assert!(with >= base + (64 << 20), "{base} → {with}");
        drop((xs, ys));
        // The array cache keeps a dropped array's memory, still shipped, until it
        // lets it go.
        shmpool::array_cache::trim();
        let after = pool.stats().shared_memory_bytes;
        assert!(
            after + (64 << 20) <= with,
            "{with} → {after} after the drop"
        );

        // Slots whose process is gone report no memory.
        pool.close();
        ok(pool.join(), "join");
        let workers = pool.stats().workers;
        assert_eq!(workers.len(), 2);
        for w in workers {
            assert_eq!(
                (w.pid, w.resident_private, w.resident_shared),
                (None, None, None)
            );
        }
    });
}

/// A memory cgroup of our own, removed when dropped.
struct MemoryCgroup {
    dir: PathBuf,
}

impl MemoryCgroup {
    /// A new memory cgroup inside this process's, limited to `bytes`; `Err` says
    /// why it could not be made.
    fn create(name: &str, bytes: u64) -> Result<MemoryCgroup, String> {
        let cgroups = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
        // cgroup v1: the memory controller's own hierarchy.
        if let Some(path) = cgroups.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers
                .split(',')
                .any(|c| c == "memory")
                .then_some(path)
        }) {
            let parent = PathBuf::from("/sys/fs/cgroup/memory").join(path.trim_start_matches('/'));
            return Self::make(parent.join(name), "memory.limit_in_bytes", bytes);
        }
        // cgroup v2: our cgroup must let its children have the memory controller.
        let path = cgroups
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .ok_or("no memory cgroup (neither v1 nor v2)")?;
        let parent = PathBuf::from("/sys/fs/cgroup").join(path.trim_start_matches('/'));
        let _ = std::fs::write(parent.join("cgroup.subtree_control"), "+memory");
        Self::make(parent.join(name), "memory.max", bytes)
    }

    fn make(dir: PathBuf, limit_file: &str, bytes: u64) -> Result<MemoryCgroup, String> {
        std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let cgroup = MemoryCgroup { dir };
        std::fs::write(cgroup.dir.join(limit_file), bytes.to_string())
            .map_err(|e| format!("{limit_file} in {}: {e}", cgroup.dir.display()))?;
        Ok(cgroup)
    }
}

impl Drop for MemoryCgroup {
    fn drop(&mut self) {
        // Empty once the child's workers are gone (they die with it).
        let removed = wait_until(Duration::from_secs(10), || {
            std::fs::remove_dir(&self.dir).is_ok()
        });
        if !removed {
            eprintln!("could not remove the cgroup {}", self.dir.display());
        }
    }
}

fn an_oom_killed_worker_is_reported_as_out_of_memory(method: StartMethod) {
    if let Some(procs) = std::env::var_os(CHILD) {
        // In the child: move into the cgroup (256 MiB), then build the pool, whose
        // workers start inside it.
        std::fs::write(&procs, std::process::id().to_string()).expect("join the cgroup");
        let pool = pool_of(Pool::builder(), method);
        let results: Vec<_> = ok(
            pool.tasks().chunksize(1).imap(
                |i: u64| match i {
                    5 => black_box(vec![1u8; 1 << 30]).len() as u64,
                    _ => {
                        std::thread::sleep(Duration::from_millis(3));
                        i * i
                    }
                },
                0..12u64,
            ),
            "imap",
        )
        .collect();
        for (i, r) in (0u64..).zip(results) {
            match (i, r) {
                (5, Err(Error::WorkerDied { cause, work, .. })) => {
                    assert_eq!(cause, DeathCause::OutOfMemory);
                    assert_eq!(work, Work::Items(5..6));
                }
                (5, other) => panic!("item 5: expected an OOM kill, got {other:?}"),
                (i, r) => assert_eq!(ok(r, format!("item {i}")), i * i),
            }
        }
        assert_eq!(ok(pool.apply(|| 7u8, ()), "a task after"), 7);
        return;
    }
    run_child_in_cgroup(
        &format!("shmpool-oom-{}-{method:?}", std::process::id()),
        256 << 20,
        &test_name("an_oom_killed_worker_is_reported_as_out_of_memory", method),
    );
}

/// Runs this binary's test `name` in a child process placed in a new memory
/// cgroup of `bytes` (the child joins it through the path in [`CHILD`]), and checks
/// that the child passed. Skips (says so) where no cgroup can be made, except as
/// root in CI, where it must be possible.
fn run_child_in_cgroup(cgroup_name: &str, bytes: u64, name: &str) {
    let cgroup = match MemoryCgroup::create(cgroup_name, bytes) {
        Ok(c) => c,
        // SAFETY: geteuid has no preconditions.
        Err(why) if std::env::var_os("CI").is_some() && unsafe { libc::geteuid() } == 0 => {
            panic!("CI, as root: a memory cgroup must be possible: {why}")
        }
        Err(why) => {
            println!("skipped: cannot create a memory cgroup: {why}");
            return;
        }
    };
    let procs = cgroup.dir.join("cgroup.procs");
    let out = rerun_self_with(
        name,
        &[(CHILD, procs.to_str().unwrap()), ("RUST_BACKTRACE", "0")],
        BODY,
    );
    drop(cgroup);
    assert!(
        out.status.success(),
        "the child failed ({:?}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// In a memory cgroup of 512 MiB, the array cache keeps at most an eighth of it by
/// default (not an eighth of the machine's memory): a dropped array larger than
/// that is released, a smaller one kept.
#[test]
fn in_a_memory_cgroup_the_array_cache_keeps_an_eighth_of_its_limit() {
    const LIMIT: u64 = 512 << 20;
    if let Some(procs) = std::env::var_os(CHILD) {
        // In the child, which has not used the cache yet: join the cgroup first.
        std::fs::write(&procs, std::process::id().to_string()).expect("join the cgroup");
        assert_eq!(shmpool::array_cache::limit(), LIMIT / 8);
        let before = shmpool::array_cache::stats();
        drop(ok(SharedArray::<u8>::filled(100 << 20, 1), "100 MiB"));
        assert_eq!(
            shmpool::array_cache::stats().kept,
            before.kept,
            "kept 100 MiB"
        );
        drop(ok(SharedArray::<u8>::filled(32 << 20, 1), "32 MiB"));
        assert_eq!(shmpool::array_cache::stats().kept, before.kept + 1);
        return;
    }
    run_child_in_cgroup(
        &format!("shmpool-cache-{}", std::process::id()),
        LIMIT,
        "in_a_memory_cgroup_the_array_cache_keeps_an_eighth_of_its_limit",
    );
}

/// A worker's result arena goes with the worker: one that retired after returning
/// 32 MiB (its arena grew to hold it) leaves nothing behind, though its replacement
/// started in another slot while it was still exiting.
#[test]
fn a_dead_workers_result_arena_is_released_with_it() {
    let pool = ok(
        Pool::builder().processes(1).max_tasks_per_child(1).build(),
        "pool",
    );
    let base = pool.stats().shared_memory_bytes;
    let big = ok(pool.apply(|| vec![7u8; 32 << 20], ()), "a 32 MiB result");
    assert!(big.len() == 32 << 20 && big.iter().all(|&b| b == 7));
    let settled = wait_until(Duration::from_secs(10), || {
        pool.stats().shared_memory_bytes <= base + MIB as u64
    });
    assert!(
        settled,
        "the pool holds {} bytes of shared memory, {} at the start",
        pool.stats().shared_memory_bytes,
        base
    );
    assert_eq!(ok(pool.apply(|| 5u8, ()), "the replacement answers"), 5);
}
