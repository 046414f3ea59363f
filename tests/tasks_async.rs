//! The pool from async code: `AsyncResult` is `IntoFuture`, `Imap` a `Stream`, on
//! tokio (multi-threaded and current-thread) and on `futures::executor::block_on`;
//! many outstanding futures; futures dropped while their result arrives; dropping a
//! future cancels its work, under every start method.

#[macro_use]
mod common;

use std::future::IntoFuture;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{RESULT_WAIT, alive, ok, pool_of, wait_until, within, worker_pids};
use futures::StreamExt;
use shmpool::{CancelMode, Pool, StartMethod};

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// apply, map and starmap results awaited, and an imap consumed as a stream.
async fn everything_awaits(pool: &Pool) -> shmpool::Result<()> {
    let one = pool.apply_async(|a: u64, b: u64| a * b, (6, 7))?.await?;
    assert_eq!(one, 42);
    let squares = pool.map_async(|x: u64| x * x, 0..100u64)?.await?;
    assert_eq!(squares, (0..100u64).map(|x| x * x).collect::<Vec<_>>());
    let sums = pool
        .starmap_async(|a: u32, b: u32| a + b, (0..10u32).map(|i| (i, i)))?
        .await?;
    assert_eq!(sums, (0..10u32).map(|i| 2 * i).collect::<Vec<_>>());
    let streamed: Vec<u64> = pool
        .imap(|x: u64| x + 1, 0..500u64)?
        .into_stream()
        .map(|r| r.expect("an item"))
        .collect()
        .await;
    assert_eq!(streamed, (1..=500u64).collect::<Vec<_>>());
    let mut unordered: Vec<u64> = pool
        .imap_unordered(|x: u64| x * 2, 0..200u64)?
        .into_stream()
        .map(|r| r.expect("an item"))
        .collect()
        .await;
    unordered.sort_unstable();
    assert_eq!(unordered, (0..200u64).map(|x| x * 2).collect::<Vec<_>>());
    Ok(())
}

#[test]
fn futures_and_streams_work_on_tokios_multi_threaded_runtime() {
    let pool = pool_of(2, StartMethod::Fork);
    within(RESULT_WAIT, "multi-threaded runtime", move || {
        multi_thread()
            .block_on(everything_awaits(&pool))
            .expect("all results")
    });
}

#[test]
fn futures_and_streams_work_on_tokios_current_thread_runtime() {
    let pool = pool_of(2, StartMethod::Fork);
    within(RESULT_WAIT, "current-thread runtime", move || {
        current_thread()
            .block_on(everything_awaits(&pool))
            .expect("all results")
    });
}

#[test]
fn futures_and_streams_work_on_futures_block_on() {
    let pool = pool_of(2, StartMethod::Fork);
    within(RESULT_WAIT, "block_on", move || {
        futures::executor::block_on(everything_awaits(&pool)).expect("all results")
    });
}

/// 10,000 futures outstanding at once, awaited together: each gets its own value.
#[test]
fn ten_thousand_outstanding_futures() {
    let pool = pool_of(2, StartMethod::Fork);
    within(Duration::from_secs(120), "10,000 futures", move || {
        let futures: Vec<_> = (0..10_000u64)
            .map(|i| ok(pool.apply_async(|x: u64| x * 3 + 1, (i,)), "apply_async"))
            .map(IntoFuture::into_future)
            .collect();
        let results = multi_thread().block_on(futures::future::join_all(futures));
        for (i, r) in results.into_iter().enumerate() {
            assert_eq!(ok(r, "a future"), i as u64 * 3 + 1, "future {i}");
        }
    });
}

/// A future dropped by `select` while its result arrives: many rounds, with the
/// result racing the other branch. Nothing hangs, the pool keeps answering, and a map
/// running alongside gets every value right.
#[test]
fn select_and_drop_races_leave_other_results_correct() {
    let pool = ok(
        Pool::builder()
            .processes(2)
            .cancel_mode(CancelMode::LetFinish)
            .build(),
        "pool",
    );
    within(
        Duration::from_secs(120),
        "select-and-drop races",
        move || {
            let rt = multi_thread();
            let alongside = ok(
                pool.tasks()
                    .chunksize(1)
                    .map_async(|x: u64| x + 5, 0..2000u64),
                "map_async",
            );
            let (mut won, mut lost) = (0, 0);
            for round in 0..400u64 {
                // 0 to 2.9 ms of work against a timer of about a millisecond: some results
                // win, some futures are dropped, and some arrive as they are dropped.
                let spin_us = (round % 30) * 100;
                let fut = ok(
                    pool.apply_async(
                        |us: u64, round: u64| {
                            let end = Instant::now() + Duration::from_micros(us);
                            while Instant::now() < end {}
                            round
                        },
                        (spin_us, round),
                    ),
                    "apply_async",
                )
                .into_future();
                rt.block_on(async {
                    tokio::select! {
                        r = fut => {
                            assert_eq!(ok(r, "the raced future"), round);
                            won += 1;
                        }
                        () = tokio::time::sleep(Duration::from_millis(1)) => {
                            lost += 1; // `fut` is dropped here: its task is cancelled
                        }
                    }
                });
            }
            eprintln!("select-and-drop: {won} futures won the race, {lost} were dropped");
            assert_eq!(won + lost, 400);
            assert!(lost > 0, "no future was dropped: the race was not run");
            let values = ok(alongside.get_timeout(RESULT_WAIT), "the map alongside");
            assert_eq!(values, (5..2005u64).collect::<Vec<_>>());
            assert_eq!(ok(pool.apply(|| 9, ()), "the pool answers"), 9);
            assert_eq!(pool.stats().respawns, 0, "LetFinish kills nobody");
        },
    );
}

/// The same race in the default mode (running tasks are killed): every killed
/// worker is replaced and the pool keeps its size.
#[test]
fn select_and_drop_races_in_kill_mode_keep_the_pool_whole() {
    let pool = pool_of(2, StartMethod::Fork);
    within(
        Duration::from_secs(120),
        "select-and-drop races (kill)",
        move || {
            let rt = current_thread();
            let mut dropped = 0;
            for round in 0..60u64 {
                let fut = ok(
                    pool.apply_async(
                        |ms: u64| {
                            std::thread::sleep(Duration::from_millis(ms));
                            ms
                        },
                        (round % 3,),
                    ),
                    "apply_async",
                )
                .into_future();
                rt.block_on(async {
                    tokio::select! {
                        r = fut => assert_eq!(ok(r, "the raced future"), round % 3),
                        () = tokio::time::sleep(Duration::from_millis(1)) => dropped += 1,
                    }
                });
            }
            eprintln!("select-and-drop (kill): {dropped} of 60 futures dropped");
            assert!(dropped > 0, "no future was dropped: the race was not run");
            let values = ok(pool.map(|x: u64| x * 7, 0..100u64), "a map after the races");
            assert_eq!(values, (0..100u64).map(|x| x * 7).collect::<Vec<_>>());
            assert!(wait_until(RESULT_WAIT, || worker_pids(&pool).len() == 2));
        },
    );
}

/// A future dropped while its task runs (here by a tokio timeout) kills the task's
/// worker, which is replaced: its pid disappears and the pool answers at full size.
fn dropping_a_future_cancels_its_running_task(m: StartMethod) {
    let pool = pool_of(2, m);
    let marker = std::env::temp_dir().join(format!(
        "shmpool-async-drop-{:?}-{}-{}",
        m,
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let path = marker.to_string_lossy().into_owned();
    let fut = ok(
        pool.apply_async(
            |path: String| {
                let tmp = format!("{path}.tmp");
                std::fs::write(&tmp, std::process::id().to_string()).expect("write");
                std::fs::rename(&tmp, &path).expect("rename");
                std::thread::sleep(Duration::from_secs(60));
                0u32
            },
            (path,),
        ),
        "apply_async",
    )
    .into_future();
    let waited = multi_thread()
        .block_on(async { tokio::time::timeout(Duration::from_millis(300), fut).await });
    assert!(waited.is_err(), "the 60 s task cannot have finished");
    assert!(marker.exists(), "the task never started");
    let pid: i32 = std::fs::read_to_string(&marker)
        .expect("read the pid")
        .trim()
        .parse()
        .expect("a pid");
    let _ = std::fs::remove_file(&marker);
    assert!(
        wait_until(RESULT_WAIT, || !alive(pid)),
        "worker {pid} of the dropped future still exists"
    );
    assert!(
        wait_until(RESULT_WAIT, || {
            let pids = worker_pids(&pool);
            pids.len() == 2 && !pids.contains(&pid)
        }),
        "no replacement: {:?}",
        worker_pids(&pool)
    );
    let back = multi_thread().block_on(async { pool.apply_async(|| 11, ())?.await });
    assert_eq!(ok(back, "the pool answers"), 11);
}

per_start_method!(dropping_a_future_cancels_its_running_task);

/// Dropping a stream part way cancels the chunks it had in flight: none past its
/// window ever runs.
#[test]
fn dropping_a_stream_part_way_cancels_its_work() {
    let pool = pool_of(2, StartMethod::Fork);
    let dir = std::env::temp_dir().join(format!(
        "shmpool-async-stream-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).expect("a directory");
    let d = dir.to_string_lossy().into_owned();
    let items: Vec<(String, u64)> = (0..1000u64).map(|i| (d.clone(), i)).collect();
    let first: Vec<u64> = current_thread().block_on(async {
        let stream = ok(
            pool.tasks().max_in_flight(20).imap(
                |(dir, i): (String, u64)| {
                    let _ = std::fs::write(Path::new(&dir).join(format!("ran-{i}")), b"");
                    std::thread::sleep(Duration::from_millis(10));
                    i
                },
                items,
            ),
            "imap",
        )
        .into_stream();
        stream.take(3).map(|r| r.expect("an item")).collect().await
    });
    assert_eq!(first, [0, 1, 2]);
    std::thread::sleep(Duration::from_millis(300));
    let ran: Vec<u64> = std::fs::read_dir(&dir)
        .expect("read the directory")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("ran-")?.parse().ok())
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("stream dropped after 3 items: {} of 1000 ran", ran.len());
    // At most the window (20 chunks in flight past what was consumed) ever started.
    assert!(
        ran.iter().all(|&i| i < 3 + 20),
        "ran past the window: {ran:?}"
    );
    assert!(ran.len() < 3 + 20, "{} items ran", ran.len());
    assert_eq!(ok(pool.apply(|| 1, ()), "the pool answers"), 1);
}
