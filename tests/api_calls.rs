//! Python Pool parity, the calls: apply with argument tuples, map and starmap (input
//! order, Python's chunksize rule), imap and imap_unordered (order, laziness, length,
//! a failing input), payloads of any size, and one pool shared by several threads.
//! The rest of the API is in `api_results.rs` and `api_lifecycle.rs`.

#[macro_use]
mod common;

use common::pool;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shmpool::{Error, StartMethod};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Sample {
    name: String,
    values: Vec<f64>,
    tag: Option<u32>,
}

fn describe(s: Sample) -> (String, f64) {
    (s.name.to_uppercase(), s.values.iter().sum())
}

fn divide(x: f64, y: f64) -> Result<f64, String> {
    if y == 0.0 {
        Err(format!("cannot divide {x} by zero"))
    } else {
        Ok(x / y)
    }
}

fn apply_unpacks_argument_tuples_of_any_serializable_types(m: StartMethod) {
    let pool = pool(m);
    assert_eq!(pool.apply(|a: u64, b: u64| a + b, (2, 3)).unwrap(), 5);
    assert_eq!(pool.apply(|| 42u8, ()).unwrap(), 42);
    assert_eq!(
        pool.apply(|s: String| s.len(), ("hello".to_string(),))
            .unwrap(),
        5
    );
    let sample = Sample {
        name: "abc".into(),
        values: vec![1.5, 2.5],
        tag: Some(7),
    };
    assert_eq!(
        pool.apply(describe, (sample,)).unwrap(),
        ("ABC".to_string(), 4.0)
    );
    assert_eq!(
        pool.apply(
            |v: Vec<f64>, k: f64| v.into_iter().map(|x| x * k).collect::<Vec<_>>(),
            (vec![1.0, 2.0], 3.0)
        )
        .unwrap(),
        vec![3.0, 6.0]
    );
    // It ran in another process.
    assert_ne!(
        pool.apply(std::process::id, ()).unwrap(),
        std::process::id()
    );
}

fn map_keeps_input_order_with_the_python_chunksize_rule(m: StartMethod) {
    let pool = pool(m);
    let before = pool.stats().records_submitted;
    let out = pool.map(|x: u64| x * 2, 0..1000u64).unwrap();
    assert_eq!(out, (0..1000).map(|x| x * 2).collect::<Vec<_>>());
    // ceil(1000 / (4 * 2)) = 125 items per chunk: 8 tasks.
    assert_eq!(pool.stats().records_submitted - before, 8);

    let before = pool.stats().records_submitted;
    let out = pool
        .tasks()
        .chunksize(7)
        .map(|s: String| s + "!", (0..50).map(|i| i.to_string()))
        .unwrap();
    assert_eq!(out[49], "49!");
    assert_eq!(pool.stats().records_submitted - before, 8); // ceil(50 / 7)

    assert_eq!(
        pool.map(|x: u8| x, Vec::<u8>::new()).unwrap(),
        Vec::<u8>::new()
    );
    let r = pool.map_async(|x: i32| -x, vec![1, 2, 3]).unwrap();
    assert_eq!(r.get().unwrap(), vec![-1, -2, -3]);
}

fn starmap_divides_and_handles_a_zero_divisor(m: StartMethod) {
    let pool = pool(m);
    let out = pool
        .starmap(divide, vec![(1.0, 2.0), (9.0, 3.0), (1.0, 0.0)])
        .unwrap();
    assert_eq!(out[0], Ok(0.5));
    assert_eq!(out[1], Ok(3.0));
    assert_eq!(out[2], Err("cannot divide 1 by zero".to_string()));
    let r = pool
        .starmap_async(
            |a: u32, b: u32, c: u32| a * b + c,
            vec![(2, 3, 4), (1, 1, 1)],
        )
        .unwrap();
    assert_eq!(r.get().unwrap(), vec![10, 2]);
}

fn imap_is_ordered_and_imap_unordered_yields_each_item_once(m: StartMethod) {
    let pool = pool(m);
    let ordered: Vec<u64> = pool
        .imap(
            |x: u64| {
                // Later items finish first.
                std::thread::sleep(Duration::from_micros(200 * (20 - x % 20)));
                x * x
            },
            0..100u64,
        )
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(ordered, (0..100).map(|x| x * x).collect::<Vec<_>>());

    let mut unordered: Vec<u64> = pool
        .tasks()
        .chunksize(3)
        .imap_unordered(|x: u64| x + 1000, 0..500u64)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(unordered.len(), 500);
    let distinct: HashSet<u64> = unordered.iter().copied().collect();
    assert_eq!(distinct.len(), 500);
    unordered.sort_unstable();
    assert_eq!(unordered, (1000..1500).collect::<Vec<_>>());
}

fn imap_reads_an_endless_input_lazily_with_a_bounded_window(m: StartMethod) {
    let pool = pool(m);
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&pulled);
    let input = (0u64..).inspect(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let mut it = pool
        .tasks()
        .chunksize(4)
        .max_in_flight(3)
        .imap(|x: u64| x * 2, input)
        .unwrap();
    let first: Vec<u64> = it.by_ref().take(10).map(Result::unwrap).collect();
    assert_eq!(first, (0..10).map(|x| x * 2).collect::<Vec<_>>());
    // At most the consumed items, plus the chunk being read, plus 3 chunks ahead.
    let n = pulled.load(Ordering::SeqCst);
    assert!(n <= 10 + 4 + 3 * 4, "pulled {n} items for 10 results");
    // Keeps going from where it was, memory stays bounded.
    let later: Vec<u64> = it
        .by_ref()
        .skip(10_000)
        .take(3)
        .map(Result::unwrap)
        .collect();
    assert_eq!(later, vec![20_020, 20_022, 20_024]);
    let n = pulled.load(Ordering::SeqCst);
    assert!(n <= 10_013 + 4 + 3 * 4, "pulled {n}");
}

fn imap_reports_its_exact_length_when_the_input_does(m: StartMethod) {
    let pool = pool(m);
    let it = pool.imap(|x: u32| x, vec![1u32, 2, 3, 4, 5]).unwrap();
    assert_eq!(it.len(), 5);
    let mut it = it.skip(2);
    assert_eq!(it.len(), 3);
    assert_eq!(it.next().unwrap().unwrap(), 3);
    assert_eq!(it.len(), 2);
}

fn a_panicking_input_iterator_in_imap_loses_nothing_submitted(m: StartMethod) {
    let pool = pool(m);
    let input = (0..100u32).inspect(|&i| {
        if i == 37 {
            panic!("input broke at {i}");
        }
    });
    let items: Vec<_> = pool
        .tasks()
        .chunksize(5)
        .imap(|x: u32| x * 10, input)
        .unwrap()
        .collect();
    let (ok, err): (Vec<_>, Vec<_>) = items.into_iter().partition(Result::is_ok);
    assert_eq!(
        ok.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
        (0..37).map(|x| x * 10).collect::<Vec<_>>()
    );
    assert_eq!(err.len(), 1);
    assert!(
        matches!(&err[0], Err(Error::InputPanicked { message }) if message == "input broke at 37")
    );

    let broken = (0..10u32).map(|i| if i == 3 { panic!("map input") } else { i });
    assert!(matches!(
        pool.map(|x: u32| x, broken),
        Err(Error::InputPanicked { .. })
    ));
}

fn large_arguments_and_results_go_through_the_arenas(m: StartMethod) {
    let pool = pool(m);
    // One result of 256 MiB.
    let big = pool.apply(|n: usize| "x".repeat(n), (256 << 20,)).unwrap();
    assert_eq!(big.len(), 256 << 20);
    assert!(big.bytes().all(|b| b == b'x'));
    drop(big);
    // Many medium payloads both ways, concurrently, each checked.
    let results: Vec<_> = (0..64u64)
        .map(|i| {
            let data: Vec<u64> = (0..20_000).map(|j| i * 1_000_000 + j).collect();
            pool.apply_async(
                |v: Vec<u64>| v.into_iter().map(|x| x + 1).collect::<Vec<_>>(),
                (data,),
            )
            .unwrap()
        })
        .collect();
    for (i, r) in results.into_iter().enumerate() {
        let v = r.get().unwrap();
        assert_eq!(v.len(), 20_000);
        assert!(
            v.iter()
                .enumerate()
                .all(|(j, x)| *x == i as u64 * 1_000_000 + j as u64 + 1)
        );
    }
}

fn one_pool_used_from_several_threads_at_once(m: StartMethod) {
    let pool = pool(m);
    std::thread::scope(|s| {
        for t in 0..6u64 {
            let pool = &pool;
            s.spawn(move || {
                for i in 0..100u64 {
                    assert_eq!(
                        pool.apply(|a: u64, b: u64| a * 1000 + b, (t, i)).unwrap(),
                        t * 1000 + i
                    );
                }
                let v = pool
                    .starmap(|x: u64, t: u64| x + t, (0..500u64).map(|x| (x, t)))
                    .unwrap();
                assert_eq!(v[499], 499 + t);
            });
        }
    });
}

for_each_start_method!(
    apply_unpacks_argument_tuples_of_any_serializable_types,
    map_keeps_input_order_with_the_python_chunksize_rule,
    starmap_divides_and_handles_a_zero_divisor,
    imap_is_ordered_and_imap_unordered_yields_each_item_once,
    imap_reads_an_endless_input_lazily_with_a_bounded_window,
    imap_reports_its_exact_length_when_the_input_does,
    a_panicking_input_iterator_in_imap_loses_nothing_submitted,
    large_arguments_and_results_go_through_the_arenas,
    one_pool_used_from_several_threads_at_once,
);
