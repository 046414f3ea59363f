//! The pool from async code: a tokio program streams numbers through `imap` as a
//! `Stream`, gives up on a slow task after a timeout, and cancels an endless stream
//! part way.
//!
//! ```text
//! cargo run --release --example async_pipeline            # 1..=200000
//! cargo run --release --example async_pipeline -- 5000    # any count
//! ```
//!
//! 1. **Stream**: the Collatz chain length of each number in `1..=n`, computed in the
//!    workers, arrives in input order as the stream is polled; a progress line is
//!    printed every quarter. No thread waits on the results: the pool's collector
//!    wakes the task when a chunk arrives.
//! 2. **Timeout**: `tokio::time::timeout` on a task that would run for a minute.
//!    Dropping its future cancels the task: its worker is killed and replaced.
//! 3. **Cancel**: an endless stream is cancelled after ten items; what it had in
//!    flight comes back as `Error::Cancelled`, and no more input is read.
//!
//! **Where the pool is built.** The default start method, `Fork`, makes the workers
//! copies of the process at `build()`. A tokio runtime has threads of its own, and
//! a lock one of them holds at that instant (the stdout lock of a `println!`, an
//! application mutex, a logger's) stays held in every worker: a task that takes it
//! never returns (`tests/pool_in_async.rs` shows it). So this example builds its pool
//! in a plain `fn main`, before the runtime and its threads exist, and then runs the
//! async code; that is safe, and the quickest start (about 2 ms for 2 workers).
//! Where the pool must be built inside async code (under `#[tokio::main]`), choose
//! `StartMethod::ForkServer` (or `Spawn`): the workers come from a fresh execution
//! of the binary and inherit no lock. Build it with `tokio::task::spawn_blocking`,
//! since `build()` waits for the workers to start (a few milliseconds). `Fork`
//! inside a runtime is safe only when no task takes a lock another thread of the
//! process may hold.
//!
//! Checks every result and exits non-zero if one is wrong.

use std::time::{Duration, Instant};

use futures::StreamExt;
use shmpool::{Error, Pool, StartMethod};

/// The number of steps the Collatz map takes from `n` down to 1.
fn collatz_steps(mut n: u64) -> u32 {
    let mut steps = 0;
    while n != 1 {
        n = if n % 2 == 0 { n / 2 } else { 3 * n + 1 };
        steps += 1;
    }
    steps
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 200_000,
    };
    // Before the runtime: no other thread exists, so forking copies no held lock.
    let pool = Pool::builder()
        .processes(2)
        .start_method(StartMethod::Fork)
        .build()?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(pipeline(&pool, n))?;

    // Inside async code, a fork server: its workers inherit nothing of the
    // runtime's threads. build() waits for them, so it runs off the executor.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(async {
            let pool = tokio::task::spawn_blocking(|| {
                Pool::builder()
                    .processes(2)
                    .start_method(StartMethod::ForkServer)
                    .build()
            })
            .await??;
            let answer = pool.apply_async(|a: u32, b: u32| a + b, (40, 2))?.await?;
            println!("a fork-server pool built inside the runtime answers 40 + 2 = {answer}");
            if answer != 42 {
                return Err::<(), Box<dyn std::error::Error>>("wrong answer".into());
            }
            Ok(())
        })?;
    println!("all results checked");
    Ok(())
}

/// Streams, times out and cancels, on `pool`, from async code.
async fn pipeline(pool: &Pool, n: u64) -> Result<(), Box<dyn std::error::Error>> {
    // 1. Stream results into async code, in input order, with a progress line.
    let started = Instant::now();
    let mut stream = pool
        .tasks()
        .chunksize(256)
        .imap(|x: u64| (x, collatz_steps(x)), 1..=n)?
        .into_stream();
    let (mut seen, mut best) = (0u64, (1u64, 0u32));
    while let Some(item) = stream.next().await {
        let (x, steps) = item?;
        seen += 1;
        if x != seen || steps != collatz_steps(x) {
            return Err(format!("item {seen} came back as ({x}, {steps})").into());
        }
        if steps > best.1 {
            best = (x, steps);
        }
        if seen % (n / 4).max(1) == 0 || seen == n {
            println!(
                "progress: {seen}/{n} items ({:.0}%) after {} ms",
                100.0 * seen as f64 / n as f64,
                started.elapsed().as_millis()
            );
        }
    }
    println!(
        "stream: all {n} results arrived in input order; the longest chain from 1..={n} \
         starts at {}: {} steps",
        best.0, best.1
    );

    // 2. A timeout: give up on a task that would run for a minute. The future is
    //    dropped, which cancels the task and replaces its worker.
    let slow = pool.apply_async(
        || {
            std::thread::sleep(Duration::from_secs(60));
            0u32
        },
        (),
    )?;
    match tokio::time::timeout(Duration::from_millis(200), slow).await {
        Err(_) => println!(
            "timeout: gave up on the slow task after 200 ms; dropping its future cancelled it"
        ),
        Ok(r) => return Err(format!("the one-minute task returned early: {r:?}").into()),
    }

    // 3. Cancel an endless stream part way.
    let mut endless = pool
        .tasks()
        .max_in_flight(8)
        .imap(
            |x: u64| {
                if x >= 10 {
                    std::thread::sleep(Duration::from_millis(50)); // still busy at the cancel
                }
                x * x
            },
            0u64..,
        )?
        .into_stream();
    for want in 0..10u64 {
        let got = endless.next().await.ok_or("the endless stream ended")??;
        if got != want * want {
            return Err(format!("item {want} came back as {got}").into());
        }
    }
    let outcome = endless.cancel();
    let (mut arrived, mut cancelled) = (0, 0);
    while let Some(item) = endless.next().await {
        match item {
            Ok(_) => arrived += 1,
            Err(Error::Cancelled { .. }) => cancelled += 1,
            Err(e) => return Err(e.into()),
        }
    }
    println!(
        "cancel: stopped an endless stream after 10 items ({outcome:?}): {arrived} more \
         had arrived, {cancelled} in flight came back Cancelled, then it ended"
    );

    let answer = pool.apply_async(|a: u32, b: u32| a * b, (6, 7))?.await?;
    println!("the pool still answers: 6 * 7 = {answer}");
    if answer != 42 {
        return Err("wrong answer".into());
    }
    Ok(())
}
