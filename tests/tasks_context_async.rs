//! Task contexts with the async forms (`Tasks::{apply_async, map_async,
//! starmap_async}` and their `_with` variants) and with `imap` as a `Stream`: every
//! task sees its call's context, the context stays in shared memory exactly until
//! the call is answered (even when the handle is dropped first), and a cancel
//! releases it.

#[macro_use]
mod common;

use std::future::IntoFuture;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{ok, pool};
use futures::StreamExt;
use shmpool::{Callbacks, CancelOutcome, Error, Pool, StartMethod};

per_start_method!(
    async_forms_see_their_own_context,
    a_dropped_handle_keeps_the_context_until_answered,
    a_cancelled_call_releases_its_context,
    imap_with_a_context_is_a_stream,
);

/// The shared memory `pool` holds now (its own segments and the arrays shipped).
fn held(pool: &Pool) -> u64 {
    pool.stats().shared_memory_bytes
}

/// Waits up to 10 s for `pool` to hold at most `limit` bytes of shared memory.
fn wait_until_held_at_most(pool: &Pool, limit: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = held(pool);
        if now <= limit {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the pool still holds {now} bytes of shared memory, more than {limit}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn async_forms_see_their_own_context(m: StartMethod) {
    let pool = pool(m);
    // Two calls in flight at once, each with its own context, so a mix-up shows.
    let a: Vec<u64> = (0..500).map(|i| i * 3 + 1).collect();
    let b: Vec<u64> = (0..500).map(|i| i * 7 + 2).collect();
    let pick = |t: &Vec<u64>, i: usize| t[i];
    let items: Vec<usize> = (0..500).rev().collect();
    let ra = ok(
        pool.tasks()
            .chunksize(9)
            .with(&a)
            .map_async(pick, items.clone()),
        "map_async a",
    );
    let rb = ok(
        pool.tasks()
            .chunksize(4)
            .with(&b)
            .map_async(pick, items.clone()),
        "map_async b",
    );
    let one = ok(
        pool.tasks().with(&a).apply_async(pick, (250usize,)),
        "apply_async",
    );
    let pairs: Vec<(usize, usize)> = (0..100).map(|i| (i, 499 - i)).collect();
    let sums = ok(
        pool.tasks().with(&b).starmap_async(
            |t: &Vec<u64>, x: usize, y: usize| t[x] + t[y],
            pairs.clone(),
        ),
        "starmap_async",
    );
    let want = |t: &Vec<u64>| items.iter().map(|&i| t[i]).collect::<Vec<_>>();
    let (got_b, got_one) =
        futures::executor::block_on(async { (rb.into_future().await, one.into_future().await) });
    assert_eq!(ok(got_b, "map_async b awaited"), want(&b));
    assert_eq!(ok(got_one, "apply_async awaited"), a[250]);
    assert_eq!(ok(ra.get(), "map_async a"), want(&a));
    let want_sums: Vec<u64> = pairs.iter().map(|&(x, y)| b[x] + b[y]).collect();
    assert_eq!(ok(sums.get(), "starmap_async"), want_sums);
}

/// Python semantics: dropping the handle does not stop the work. The tasks queued
/// behind the drop still find their context, and the context is released once the
/// call is answered.
fn a_dropped_handle_keeps_the_context_until_answered(m: StartMethod) {
    let pool = pool(m);
    let before = held(&pool);
    // 16 MiB (a byte encodes as a byte), so the pool's count shows it plainly.
    let context: Vec<u8> = (0..16 << 20).map(|i| (i % 251) as u8).collect();
    let (tx, rx) = mpsc::channel();
    let handle = ok(
        pool.tasks().chunksize(1).with(&context).map_async_with(
            |c: &Vec<u8>, i: usize| {
                std::thread::sleep(Duration::from_millis(20));
                c[i * 1000]
            },
            0..16usize,
            Callbacks::new().on_success(move |v: &Vec<u8>| tx.send(v.clone()).unwrap()),
        ),
        "map_async_with",
    );
    assert!(
        held(&pool) >= before + (16 << 20),
        "the context is not counted as shipped while the call runs"
    );
    drop(handle); // the 16 tasks are still queued or running
    let got = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the call was not answered after its handle was dropped");
    let want: Vec<u8> = (0..16).map(|i| context[i * 1000]).collect();
    assert_eq!(got, want);
    wait_until_held_at_most(&pool, before + (1 << 20), "after the answer");
}

/// A cancelled call is answered `Cancelled`, releases its context, and leaves the
/// pool serving the next call (with another context) correctly.
fn a_cancelled_call_releases_its_context(m: StartMethod) {
    let pool = pool(m);
    let before = held(&pool);
    let context = vec![5u8; 4 << 20];
    let r = ok(
        pool.tasks().chunksize(1).with(&context).map_async(
            |c: &Vec<u8>, ms: u64| {
                std::thread::sleep(Duration::from_millis(ms));
                c[0]
            },
            [5_000u64; 8],
        ),
        "map_async",
    );
    std::thread::sleep(Duration::from_millis(100)); // two tasks running, six queued
    assert_eq!(r.cancel(), CancelOutcome::Cancelled);
    let err = r.get().unwrap_err();
    assert!(matches!(err, Error::Cancelled { .. }), "{err:?}");
    wait_until_held_at_most(&pool, before + (1 << 20), "after the cancel");
    let other = vec![9u64; 10];
    let got = ok(
        pool.tasks()
            .with(&other)
            .map(|c: &Vec<u64>, i: usize| c[i] + i as u64, 0..10usize),
        "the next call",
    );
    assert_eq!(got, (0..10).map(|i| 9 + i).collect::<Vec<_>>());
}

/// `imap` with a context is a `Stream` too, ordered or not, and holds the context
/// while it is alive.
fn imap_with_a_context_is_a_stream(m: StartMethod) {
    let pool = pool(m);
    let table: Vec<u32> = (0..300).map(|i| i * i).collect();
    let stream = ok(
        pool.tasks()
            .chunksize(5)
            .with(&table)
            .imap(|t: &Vec<u32>, i: usize| t[i] + 1, (0..300usize).rev()),
        "imap",
    )
    .into_stream();
    let got: Vec<u32> = futures::executor::block_on(stream.map(|r| ok(r, "item")).collect());
    let want: Vec<u32> = (0..300usize).rev().map(|i| table[i] + 1).collect();
    assert_eq!(got, want);
    let unordered = ok(
        pool.tasks()
            .with(&table)
            .imap_unordered(|t: &Vec<u32>, i: usize| t[i], 0..300usize),
        "imap_unordered",
    );
    let mut got: Vec<u32> =
        futures::executor::block_on(unordered.into_stream().map(|r| ok(r, "item")).collect());
    got.sort_unstable();
    assert_eq!(got, table);
}
