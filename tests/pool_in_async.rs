//! Pools built inside async code, where the runtime has threads of its own: what the
//! guide's "Async code" section and `examples/async_pipeline.rs` say, checked.
//!
//! - With `StartMethod::Fork`, workers are copies of the process at `build()`. A
//!   lock another thread holds at that instant stays held in every worker, and a
//!   task that takes it never returns (here: its time limit fires).
//! - With `ForkServer` (and `Spawn`), workers come from a fresh execution of the
//!   binary: the same task, the same lock held during the build, runs.
//! - A pool built before the runtime starts, or in a runtime whose other threads
//!   hold nothing the tasks take, works with `Fork`.

use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use shmpool::{Error, Pool, StartMethod};

/// An application lock that both a runtime thread and the tasks take.
static SHARED: Mutex<u64> = Mutex::new(0);

/// Builds a pool of `method` on a tokio worker thread while another runtime
/// thread holds [`SHARED`], releases it, and runs a task that takes it (with a
/// time limit); returns the task's result.
fn build_while_a_runtime_thread_holds_a_lock(method: StartMethod) -> shmpool::Result<u64> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let (held_tx, held_rx) = mpsc::channel();
        let (built_tx, built_rx) = mpsc::channel::<()>();
        // A runtime thread takes the lock and keeps it until the pool is built.
        let holder = tokio::task::spawn_blocking(move || {
            let mut guard = SHARED.lock().unwrap();
            *guard += 1;
            held_tx.send(()).unwrap();
            built_rx.recv().unwrap();
            drop(guard);
        });
        held_rx.recv().unwrap();
        // `build` waits for the workers: off the executor's threads.
        let started = Instant::now();
        let pool = tokio::task::spawn_blocking(move || {
            Pool::builder().processes(1).start_method(method).build()
        })
        .await
        .unwrap()?;
        eprintln!("{method:?} pool of 1 built in {:?}", started.elapsed());
        built_tx.send(()).unwrap();
        holder.await.unwrap();
        // The lock is free in this process now; the task takes it in a worker.
        let result = pool
            .tasks()
            .timeout(Duration::from_secs(3))
            .apply_async(|| *SHARED.lock().unwrap(), ())?
            .await;
        drop(pool);
        result
    })
}

#[test]
fn fork_inside_a_runtime_inherits_a_lock_another_thread_held() {
    match build_while_a_runtime_thread_holds_a_lock(StartMethod::Fork) {
        Err(Error::Timeout { .. }) => {}
        other => panic!("the worker should have found the lock held forever: {other:?}"),
    }
}

#[test]
fn fork_server_and_spawn_inside_a_runtime_inherit_no_lock() {
    for method in [StartMethod::ForkServer, StartMethod::Spawn] {
        // A fresh execution of the binary: the static starts at 0, unlocked.
        let got = build_while_a_runtime_thread_holds_a_lock(method);
        assert_eq!(got.unwrap(), 0, "{method:?}");
    }
}

#[test]
fn fork_before_the_runtime_starts_is_safe_and_quick() {
    // Built first, in a plain `fn main`, before any runtime thread exists.
    let started = Instant::now();
    let pool = Pool::builder()
        .processes(2)
        .start_method(StartMethod::Fork)
        .build()
        .unwrap();
    let build = started.elapsed();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sum = runtime.block_on(async {
        let squares = pool.map_async(|x: u64| x * x, 0..100u64).unwrap().await;
        squares.unwrap().iter().sum::<u64>()
    });
    assert_eq!(sum, 328_350);
    eprintln!("Fork pool of 2 built in {build:?}");
}
