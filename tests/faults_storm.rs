//! A seeded, randomized fault storm, once per start method.
//!
//! For a time budget, rounds of: a pool with random settings (workers, maxtasksperchild,
//! a cancel mode, a task timeout), and on it, all at once:
//!
//! * random work (apply_async, map, starmap with and without a task context, imap,
//!   imap_unordered, cancelled maps, bulk maps and reductions whose kernels kill their
//!   own worker, bulk maps cancelled through their token, callbacks that submit work,
//!   and the canceller's operations) with payloads on both sides of the inline limit,
//!   up to a few MiB;
//! * a canceller thread whose work the pool kills, racing the end of that work: tasks
//!   cancelled from another thread and short bulk maps cancelled through their token
//!   (both modes), imaps cancelled or dropped partway, dropped futures of tasks, maps
//!   and bulk maps, and task and chunk timeouts about as long as the work;
//! * two bystander threads that run their own tasks, maps, imaps and bulk maps
//!   (`map_into`, `zip_map_into`, reductions), every value checked: a bystander
//!   failure fails the storm.
//!
//! Half of the rounds (drawn from the seed) add a killer thread that SIGKILLs and
//! SIGSTOPs workers at random; there the bystanders retry until they have their
//! values. In the other half every kill is the pool's own (cancels, timeouts, the
//! kernels' planted deaths, retirements): the bystanders run without retries and
//! must never fail, and no task operation may see a worker's death.
//!
//! Every payload is derived from its task's seed, so every result is checked: each
//! task is answered exactly once, with exactly its own value or with a death, timeout
//! or cancel that names it; a reduction's result is bit-identical to its fixed-tree
//! reference. Each round prints what its canceller and bystanders did.
//!
//! * `SHMPOOL_STORM_SEED=<u64, decimal or 0x-hex>`: replay a storm (the operations
//!   replay exactly; the killer's timing cannot). Default: from the clock.
//! * `SHMPOOL_STORM_SECS=<n>`: the budget per start method. Default: 15.
//! * `SHMPOOL_STORM_SKIP=bulk,nested,...`: leave out kinds of operation (names as in
//!   `Op::NAMES`, in `tests/storm/round.rs`), to tell failures apart.
//!
//! Every failure message starts with the start method and the seed.
//!
//! The storm's machinery (configuration, jobs and their checks, the killer, the
//! rounds and their operations) is the module `storm`, in `tests/storm/`; this file
//! holds the tests.

mod common;
mod storm;

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use common::{
    Deliveries, RaiseOnDrop, Rng, die, first_time, fork_server_of, get, ok, remove_markers,
    wait_until, within,
};
use shmpool::{Error, Pool, StartMethod, Work};
use storm::jobs::failed_task;
use storm::killer::{KillerPlan, killer};

#[test]
fn storm_fork() {
    storm::storm(StartMethod::Fork);
}

#[test]
fn storm_fork_server() {
    storm::storm(StartMethod::ForkServer);
}

#[test]
fn storm_spawn() {
    storm::storm(StartMethod::Spawn);
}

// ---------------------------------------------------------------------------------
// Task retries (`Tasks::retries`, `PoolBuilder::task_retries`)
// ---------------------------------------------------------------------------------

fn die_once_task(key: u64) -> u64 {
    if first_time("storm-task-once", key) {
        die();
    }
    key * 3
}

fn die_always_task() -> u64 {
    die()
}

/// A task whose worker dies is rerun up to n times: delivered exactly once, and
/// `WorkerDied` only after n + 1 deaths.
#[test]
fn task_retries_rerun_tasks_whose_worker_died() {
    within(Duration::from_secs(120), "task retries", || {
        for method in [
            StartMethod::Fork,
            StartMethod::ForkServer,
            StartMethod::Spawn,
        ] {
            task_retries(method);
        }
    });
}

fn task_retries(method: StartMethod) {
    let what = format!("{method:?}");
    // Deterministic: dies once, retried once: Ok, delivered once.
    let pool = ok(
        Pool::builder().processes(2).start_method(method).build(),
        &what,
    );
    let server = fork_server_of(&pool);
    let keys: Vec<u64> = (0..20).collect();
    remove_markers("storm-task-once", server, keys.iter().copied());
    let deliveries = Deliveries::new(keys.len());
    let results: Vec<_> = keys
        .iter()
        .map(|&k| {
            ok(
                pool.tasks().retries(1).apply_async_with(
                    die_once_task,
                    (k,),
                    deliveries.callbacks(k as usize),
                ),
                &what,
            )
        })
        .collect();
    for (k, r) in keys.iter().zip(results) {
        assert_eq!(ok(get(r, &what), &what), k * 3, "{what}: key {k}");
    }
    assert_eq!(deliveries.first_not_once(), None, "{what}");
    remove_markers("storm-task-once", server, keys.iter().copied());

    // Always dies, retried twice: WorkerDied after exactly three deaths.
    let before = pool.stats().respawns;
    match get(
        ok(
            pool.tasks().retries(2).apply_async(die_always_task, ()),
            &what,
        ),
        &what,
    ) {
        Err(Error::WorkerDied {
            work: Work::Task(_),
            ..
        }) => {}
        other => panic!("{what}: expected WorkerDied, got {other:?}"),
    }
    let three = wait_until(Duration::from_secs(10), || {
        pool.stats().respawns >= before + 3
    });
    assert!(
        three,
        "{what}: {:?}, {before} respawns before",
        pool.stats()
    );
    assert_eq!(
        pool.stats().respawns,
        before + 3,
        "{what}: reran more than twice"
    );
    drop(pool);

    // Under kills, with the pool's default retries: each task answered exactly once,
    // with its value or WorkerDied.
    let pool = ok(
        Pool::builder()
            .processes(2)
            .start_method(method)
            .task_retries(3)
            .build(),
        &what,
    );
    let server = fork_server_of(&pool);
    let stop = AtomicBool::new(false);
    let plan = KillerPlan {
        every: 5..20,
        stop_percent: 0,
        stop_ms: 0..1,
    };
    const TASKS: usize = 2000;
    let deliveries = Deliveries::new(TASKS);
    std::thread::scope(|s| {
        let killer = s.spawn(|| killer(&pool, server, &stop, Rng::new(7), plan));
        let _stop = RaiseOnDrop(&stop);
        let results: Vec<_> = (0..TASKS)
            .map(|i| {
                ok(
                    pool.tasks().apply_async_with(
                        |x: u64| x * 5,
                        (i as u64,),
                        deliveries.callbacks(i),
                    ),
                    &what,
                )
            })
            .collect();
        for (i, r) in results.into_iter().enumerate() {
            match get(r, &what) {
                Ok(v) => assert_eq!(v, i as u64 * 5, "{what}: task {i}"),
                Err(e) => assert!(failed_task(&e).is_some(), "{what}: task {i}: {e:?}"),
            }
        }
        drop(_stop);
        killer.join().unwrap();
    });
    assert_eq!(deliveries.first_not_once(), None, "{what}");
}
