//! Task contexts (`Tasks::with`, Python's `functools.partial`): every task of a call
//! receives the context by reference, and each worker decodes it once per call.

#[macro_use]
mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use common::{ok, pool};
use shmpool::{Error, StartMethod};

per_start_method!(
    map_apply_starmap_and_imap_see_the_context,
    a_big_context_is_decoded_once_per_worker,
    a_context_survives_worker_deaths_and_retries,
    contexts_of_successive_calls_do_not_mix,
);

fn map_apply_starmap_and_imap_see_the_context(m: StartMethod) {
    let pool = pool(m);
    let table: HashMap<u64, u64> = (0..1000).map(|i| (i, i * i + 7)).collect();
    let lookup = |t: &HashMap<u64, u64>, k: u64| t[&k];
    let keys: Vec<u64> = (0..1000).rev().collect();
    let want: Vec<u64> = keys.iter().map(|k| table[k]).collect();

    let got = ok(
        pool.tasks()
            .chunksize(7)
            .with(&table)
            .map(lookup, keys.clone()),
        "map",
    );
    assert_eq!(got, want);
    assert_eq!(
        ok(pool.tasks().with(&table).apply(lookup, (12,)), "apply"),
        151
    );
    let pairs: Vec<(u64, u64)> = (0..100).map(|i| (i, 999 - i)).collect();
    let sums = ok(
        pool.tasks().with(&table).starmap(
            |t: &HashMap<u64, u64>, a: u64, b: u64| t[&a] + t[&b],
            pairs.clone(),
        ),
        "starmap",
    );
    let want_sums: Vec<u64> = pairs.iter().map(|(a, b)| table[a] + table[b]).collect();
    assert_eq!(sums, want_sums);
    let lazy: Vec<u64> = ok(
        pool.tasks()
            .chunksize(3)
            .with(&table)
            .imap(lookup, keys.clone()),
        "imap",
    )
    .map(|r| ok(r, "imap item"))
    .collect();
    assert_eq!(lazy, want);
    let mut unordered: Vec<u64> = ok(
        pool.tasks()
            .with(&table)
            .imap_unordered(lookup, keys.clone()),
        "imap_unordered",
    )
    .map(|r| ok(r, "imap_unordered item"))
    .collect();
    unordered.sort_unstable();
    let mut sorted = want.clone();
    sorted.sort_unstable();
    assert_eq!(unordered, sorted);
}

/// The measurement: a 100 MB context over 10,000 tasks costs one decode
/// per worker. Each task reports its worker's pid and the address of the decoded
/// context it saw: one address per pid means one decode per worker.
fn a_big_context_is_decoded_once_per_worker(m: StartMethod) {
    let pool = pool(m);
    let context: Vec<u64> = (0..(100 << 20) / 8).map(|i| i as u64 ^ 0x5a5a).collect();
    let started = Instant::now();
    let seen = ok(
        pool.tasks().chunksize(25).with(&context).map(
            |c: &Vec<u64>, i: usize| (std::process::id(), c.as_ptr() as usize, c[i * 1000]),
            0..10_000usize,
        ),
        "map over a 100 MB context",
    );
    let elapsed = started.elapsed();
    let mut addresses: BTreeMap<u32, HashSet<usize>> = BTreeMap::new();
    for (i, &(pid, addr, v)) in seen.iter().enumerate() {
        assert_eq!(v, context[i * 1000], "task {i} read a wrong value");
        addresses.entry(pid).or_default().insert(addr);
    }
    assert!(
        addresses.len() <= 2,
        "more workers than the pool has: {addresses:?}"
    );
    for (pid, addrs) in &addresses {
        assert_eq!(
            addrs.len(),
            1,
            "worker {pid} decoded the context {} times",
            addrs.len()
        );
    }
    eprintln!(
        "{m:?}: 100 MB context, 10,000 tasks, {} workers: {elapsed:?}",
        addresses.len()
    );
    // One transfer per task would be 1 TB: minutes at the very least.
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
}

/// A worker that dies is replaced, and the replacement decodes the context itself;
/// retried tasks get the right values.
fn a_context_survives_worker_deaths_and_retries(m: StartMethod) {
    let pool = pool(m);
    let offsets: Vec<i64> = vec![1000, -5];
    let dir = tempfile_dir();
    let marker = dir.join("died-once");
    let marker_str = marker.to_string_lossy().into_owned();
    let got = ok(
        pool.tasks()
            .chunksize(1)
            .retries(2)
            .with(&(offsets.clone(), marker_str))
            .map(
                |(o, marker): &(Vec<i64>, String), x: i64| {
                    if x == 17 && std::fs::File::create_new(marker).is_ok() {
                        std::process::exit(3); // the first try of task 17 kills its worker
                    }
                    x + o[0] + o[1]
                },
                0..40i64,
            ),
        "map with a death and a retry",
    );
    assert_eq!(got, (0..40).map(|x| x + 995).collect::<Vec<_>>());
    assert!(marker.exists(), "the death was not injected");
    // Without retries, the death is named, and the other tasks are intact.
    let err = pool
        .tasks()
        .chunksize(1)
        .with(&offsets)
        .apply(
            |o: &Vec<i64>, x: i64| -> i64 {
                if x == 1 {
                    std::process::abort();
                }
                o[0]
            },
            (1,),
        )
        .unwrap_err();
    assert!(matches!(err, Error::WorkerDied { .. }), "{err:?}");
    assert_eq!(
        ok(
            pool.tasks()
                .with(&offsets)
                .apply(|o: &Vec<i64>, x: i64| o[0] * x, (3,)),
            "after"
        ),
        3000
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Calls one after another, each with its own context, get their own.
fn contexts_of_successive_calls_do_not_mix(m: StartMethod) {
    let pool = pool(m);
    for round in 0..6u64 {
        let ctx = vec![round; 64];
        let got = ok(
            pool.tasks()
                .chunksize(2)
                .with(&ctx)
                .map(|c: &Vec<u64>, i: usize| c[i], 0..64usize),
            "map",
        );
        assert!(got.iter().all(|&v| v == round), "round {round} saw {got:?}");
    }
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "shmpool-task-context-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
