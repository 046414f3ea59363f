//! numpy's classic `np.sqrt` over a big float64 array, split across a pool, in Rust.
//!
//! ```text
//! cargo run --release --example sqrt            # 2^25 elements
//! cargo run --release --example sqrt -- 1000000 # any length
//! ```
//!
//! Runs sqrt three ways over the same input (a sequential loop, rayon with as many
//! threads as the pool has processes, and a shmpool `map_into`), checks that all
//! three agree bit for bit, and prints the median time of each, the memory traffic
//! (GB/s of input read plus output written) and the ratio to rayon.

use std::time::{Duration, Instant};

use rayon::prelude::*;
use shmpool::{Pool, SharedArray};

const RUNS: usize = 9;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let len: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().map_err(|e| format!("length {arg:?}: {e}"))?,
        None => 1 << 25,
    };
    let pool = Pool::builder().build()?;
    let workers = pool.processes();
    let threads = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()?;

    println!(
        "sqrt over {len} f64 ({:.0} MiB in, the same out); {workers} worker processes, {workers} rayon threads; median of {RUNS}",
        (len * 8) as f64 / (1 << 20) as f64
    );
    let xs = SharedArray::try_from_iter((0..len).map(|i| i as f64 * 0.5))?;

    // Each output is allocated and touched once before timing: first-touch page
    // faults are not what this compares.
    let mut seq_out = vec![0.0f64; len];
    let seq = median(|| {
        for (y, x) in seq_out.iter_mut().zip(xs.iter()) {
            *y = x.sqrt();
        }
    });

    let mut rayon_out = vec![0.0f64; len];
    let ray = median(|| {
        threads.install(|| {
            rayon_out
                .par_iter_mut()
                .zip(xs.par_iter())
                .for_each(|(y, x)| *y = x.sqrt());
        })
    });

    let mut ys = SharedArray::<f64>::filled(len, 0.0)?;
    let mut result = Ok(());
    let shm = median(|| {
        if let Err(e) = pool.map_into(&xs, &mut ys, |v: f64| v.sqrt()) {
            result = Err(e);
        }
    });
    result?;

    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    if bits(&seq_out) != bits(&rayon_out) || bits(&seq_out) != bits(&ys) {
        return Err("the three results differ".into());
    }
    println!("all three agree bit for bit\n");

    let bytes = (2 * len * std::mem::size_of::<f64>()) as f64;
    println!(
        "{:<22} {:>12} {:>10} {:>10}",
        "method", "median", "GB/s", "vs rayon"
    );
    for (name, t) in [
        ("sequential loop", seq),
        (&*format!("rayon ({workers} threads)"), ray),
        (&*format!("shmpool ({workers} procs)"), shm),
    ] {
        println!(
            "{:<22} {:>12} {:>10.2} {:>9.2}x",
            name,
            format!("{:.3} ms", t.as_secs_f64() * 1e3),
            bytes / t.as_secs_f64() / 1e9,
            ray.as_secs_f64() / t.as_secs_f64()
        );
    }
    Ok(())
}

/// Runs `f` once to warm up, then `RUNS` times, and returns the median time.
fn median(mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}
