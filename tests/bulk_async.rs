//! Bulk maps as futures (`map_into_async`): awaited under tokio and `block_on`,
//! many at once, with errors that give the arrays back, and dropped mid-flight
//! (the map is cancelled, the pool stays whole).

#[macro_use]
mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{ok, pool, wait_until};
use shmpool::{Error, SharedArray, StartMethod};

per_start_method!(
    awaited_maps_compute_and_give_the_arrays_back,
    a_dropped_future_cancels_its_map
);

fn awaited_maps_compute_and_give_the_arrays_back(m: StartMethod) {
    let pool = pool(m);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // Several maps in flight at once, each over its own arrays.
        let futures: Vec<_> = (0..12u64)
            .map(|k| {
                let x = ok(
                    SharedArray::try_from_iter((0..50_000u64).map(|i| i + k)),
                    "x",
                );
                let y = ok(SharedArray::<u64>::zeroed(50_000), "y");
                pool.bulk()
                    .chunk_len(4096)
                    .with(k)
                    .map_into_async(x, y, |k: &u64, v: u64| v * 3 + k)
            })
            .collect();
        for (k, f) in futures.into_iter().enumerate() {
            let (x, y, done) = f.await;
            ok(done, "awaited map");
            let k = k as u64;
            assert!(
                x.iter().zip(y.iter()).all(|(&v, &w)| w == v * 3 + k),
                "map {k}"
            );
        }
    });
    // block_on, an empty map, and a length mismatch that gives the arrays back.
    let empty = futures::executor::block_on(pool.bulk().map_into_async(
        ok(SharedArray::<u8>::zeroed(0), "x"),
        ok(SharedArray::<u8>::zeroed(0), "y"),
        |v: u8| v,
    ));
    ok(empty.2, "empty map");
    let (x, y, done) = futures::executor::block_on(pool.bulk().map_into_async(
        ok(SharedArray::<u8>::zeroed(3), "x"),
        ok(SharedArray::<u8>::zeroed(4), "y"),
        |v: u8| v,
    ));
    assert!(
        matches!(
            done,
            Err(Error::LengthMismatch {
                input: 3,
                output: 4
            })
        ),
        "{done:?}"
    );
    assert_eq!((x.len(), y.len()), (3, 4));
    // A kernel panic is the map's error, named by chunk.
    let (_, _, done) = futures::executor::block_on(pool.bulk().chunk_len(10).map_into_async(
        ok(SharedArray::try_from_iter(0..100u32), "x"),
        ok(SharedArray::<u32>::zeroed(100), "y"),
        |v: u32| {
            assert!(v != 55, "boom at 55");
            v
        },
    ));
    let err = done.expect_err("a panicking kernel");
    assert!(
        err.failed_ranges().iter().any(|r| r.contains(&55)),
        "{err:?}"
    );
    // Options an awaited map cannot honour are refused, not ignored; nothing runs,
    // and the arrays come back.
    let token = shmpool::CancelToken::new();
    for (name, map) in [
        ("retries", pool.bulk().retries(1)),
        ("cancel_token", pool.bulk().cancel_token(&token)),
    ] {
        let (x, y, done) = futures::executor::block_on(map.map_into_async(
            ok(SharedArray::from_slice(&[1u8, 2]), "x"),
            ok(SharedArray::<u8>::zeroed(2), "y"),
            |v: u8| v + 1,
        ));
        assert!(
            matches!(&done, Err(Error::InvalidArgument { name: n, .. }) if *n == name),
            "{name}: {done:?}"
        );
        assert_eq!((&x[..], &y[..]), (&[1u8, 2][..], &[0u8, 0][..]), "{name}");
    }
}

fn a_dropped_future_cancels_its_map(m: StartMethod) {
    let pool = pool(m);
    let before: HashSet<i32> = pool.stats().workers.iter().filter_map(|w| w.pid).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = std::time::Instant::now();
    let timed_out = rt.block_on(async {
        let x = ok(SharedArray::<u32>::zeroed(40), "x");
        let y = ok(SharedArray::<u32>::zeroed(40), "y");
        let slow = pool.bulk().chunk_len(1).map_into_async(x, y, |v: u32| {
            std::thread::sleep(Duration::from_millis(200));
            v + 1
        });
        tokio::time::timeout(Duration::from_millis(300), slow)
            .await
            .is_err()
    });
    assert!(timed_out, "the slow map finished within the timeout");
    // 40 chunks of 200 ms on 2 workers: 4 s if it ran on; dropped, it stops at once.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    // Its running chunks' workers were killed (the default cancel mode) and replaced.
    assert!(
        wait_until(Duration::from_secs(10), || {
            let now: HashSet<i32> = pool.stats().workers.iter().filter_map(|w| w.pid).collect();
            now.len() == 2 && now.is_disjoint(&before)
        }),
        "the workers were not replaced"
    );
    let x = ok(SharedArray::try_from_iter(0..1000u32), "x");
    let mut y = ok(SharedArray::<u32>::zeroed(1000), "y");
    ok(pool.map_into(&x, &mut y, |v: u32| v * 2), "map after");
    assert!(y.iter().enumerate().all(|(i, &v)| v == 2 * i as u32));
}
