//! Panics, deaths and retries in reductions behave as they do for maps.

use std::time::Duration;

use shmpool::{DeathCause, SharedArray, StartMethod};

use super::{death_of, kernel_panic_of};
use crate::common::{first_time, fork_server_of, pool_of, remove_markers, wait_until, within};

const TOTAL: u64 = 10_000 * 9_999 / 2;

/// Exits (once per pool, when `once`) in the chunk holding 4321.
fn exit_at_4321(v: u64) -> u64 {
    if v == 4321 && first_time("vocab13-reduce", 4321) {
        std::process::exit(3);
    }
    v
}

/// A panic fails a reduction with `KernelPanicked` naming the chunk; an exit with
/// `WorkerDied`; with `retries(1)` a death is retried and the value is right. The
/// pool carries on after each.
fn panics_deaths_and_retries(m: StartMethod) {
    within(
        Duration::from_secs(120),
        "panics_deaths_and_retries",
        move || {
            let pool = pool_of(2, m);
            let x = SharedArray::try_from_iter(0..10_000u64).unwrap();

            let err = pool
                .bulk()
                .chunk_len(1000)
                .map_reduce(
                    &x,
                    0u64,
                    |v: u64| if v == 4321 { panic!("bad {v}") } else { v },
                    |a: u64, b: u64| a + b,
                )
                .unwrap_err();
            let (chunk, message) = kernel_panic_of(&err);
            assert_eq!(chunk, 4000..5000, "{err}");
            assert!(message.contains("bad 4321"), "{message}");

            let err = pool
                .bulk()
                .chunk_len(1000)
                .with(8765u64)
                .fold_reduce(
                    &x,
                    0u64,
                    |bad: &u64, acc: &mut u64, xs: &[u64]| {
                        assert!(!xs.contains(bad), "chunk holds {bad}");
                        *acc += xs.iter().sum::<u64>();
                    },
                    |a, b| a + b,
                )
                .unwrap_err();
            let (chunk, message) = kernel_panic_of(&err);
            assert_eq!(chunk, 8000..9000, "{err}");
            assert!(message.contains("chunk holds 8765"), "{message}");
            assert_eq!(pool.bulk().sum(&x).unwrap(), TOTAL);

            // An exit in a chunk, every time: the worker's death names the chunk.
            let err = pool
                .bulk()
                .chunk_len(1000)
                .map_reduce(
                    &x,
                    0u64,
                    |v: u64| if v == 1234 { std::process::exit(3) } else { v },
                    |a: u64, b: u64| a + b,
                )
                .unwrap_err();
            assert_eq!(death_of(&err), (1000..2000, DeathCause::Exit(3)), "{err}");
            assert_eq!(pool.bulk().sum(&x).unwrap(), TOTAL);

            // Once, with a retry left: the right total.
            let server = fork_server_of(&pool);
            remove_markers("vocab13-reduce", server, [4321]);
            let respawns = pool.stats().respawns;
            let total = pool
                .bulk()
                .chunk_len(1000)
                .retries(1)
                .map_reduce(&x, 0u64, exit_at_4321, |a: u64, b: u64| a + b)
                .unwrap();
            assert_eq!(total, TOTAL);
            assert!(
                wait_until(Duration::from_secs(10), || pool.stats().respawns > respawns),
                "no worker died"
            );

            // The same for a fold, whose partial slot the retry must overwrite.
            remove_markers("vocab13-reduce", server, [4321]);
            let total = pool
                .bulk()
                .chunk_len(1000)
                .retries(1)
                .fold_reduce(
                    &x,
                    0u64,
                    |acc: &mut u64, xs: &[u64]| {
                        for &v in xs {
                            *acc += v;
                            exit_at_4321(v);
                        }
                    },
                    |a, b| a + b,
                )
                .unwrap();
            assert_eq!(total, TOTAL);
            remove_markers("vocab13-reduce", server, [4321]);
            assert_eq!(
                pool.bulk().dot(&x, &x).unwrap(),
                (0..10_000u64).map(|v| v * v).sum::<u64>()
            );
        },
    )
}

per_start_method!(panics_deaths_and_retries,);
