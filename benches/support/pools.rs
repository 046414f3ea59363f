//! The pools a bench compares at each SIMD level, beside a rayon pool of as many
//! threads. Shared by the benches that `#[path]`-include it.

use shmpool::{Pool, Simd};

/// One pool per level the CPU supports, and the rayon pool.
pub struct Setup {
    pub pools: Vec<(Simd, Pool)>,
    pub threads: rayon::ThreadPool,
}

/// A pool of `workers` processes at each of `levels` the CPU supports, and a rayon
/// pool of `workers` threads.
pub fn setup(levels: &[Simd], workers: usize) -> Setup {
    // The pools first: their fork servers are forked before the rayon threads exist.
    let pools = levels
        .iter()
        .copied()
        .filter(|s| s.is_supported())
        .map(|s| {
            let pool = Pool::builder()
                .processes(workers)
                .simd(s)
                .build()
                .expect("start a pool");
            (s, pool)
        })
        .collect();
    let threads = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .expect("start the rayon pool");
    Setup { pools, threads }
}
