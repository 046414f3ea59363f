//! numpy's `np.sum` and `np.dot` over a big float64 array, scaled out over MPI
//! ranks: each rank reduces its own block with its pool, and the ranks' partials are
//! added in rank order, so every rank gets the same bits, run after run.
//!
//! ```text
//! cargo build --release --features mpi --example mpi_sum
//! mpirun -n 2 target/release/examples/mpi_sum            # 2^24 elements, 9 runs
//! mpirun -n 2 target/release/examples/mpi_sum 1000000 5  # any length and run count
//! ```
//!
//! Prints the median time of the distributed `sum` and `dot` (`cluster.bulk()`)
//! and of rank 0's pool alone over the whole array (no MPI), and checks the sums:
//! the elements are multiples of 0.5 below 2^52, so every partial sum is exact and
//! the result must equal the closed form, on every rank.

use std::time::{Duration, Instant};

use shmpool::mpi::collective::SystemOperation;
use shmpool::mpi::traits::CommunicatorCollectives;
use shmpool::{Cluster, DistArray, SharedArray};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let len: usize = match args.next() {
        Some(arg) => arg.parse().map_err(|e| format!("length {arg:?}: {e}"))?,
        None => 1 << 24,
    };
    let runs: usize = match args.next() {
        Some(arg) => arg.parse().map_err(|e| format!("run count {arg:?}: {e}"))?,
        None => 9,
    };
    let runs = runs.max(1);
    let cluster = Cluster::init()?;
    let input = |i: usize| (i % 1024) as f64 * 0.5;
    let ones = |_: usize| 1.0f64;

    let x = DistArray::from_fn(&cluster, len, input)?;
    let w = DistArray::from_fn(&cluster, len, ones)?;
    let mut sum = 0.0;
    let mut dot = 0.0;
    // Every run starts together on every rank (a barrier, not timed).
    let together = || cluster.barrier();
    // Each rank's pool over its own block, without MPI: the slower rank's median.
    let local = timed(runs, together, || {
        cluster.pool().bulk().sum(x.local()).map(drop)
    })?;
    let mut slowest_local = 0u64;
    cluster.world().all_reduce_into(
        &(local.as_nanos() as u64),
        &mut slowest_local,
        SystemOperation::max(),
    );
    let local = Duration::from_nanos(slowest_local);
    let distributed_sum = timed(runs, together, || {
        sum = cluster.bulk().sum(&x)?;
        Ok(())
    })?;
    let distributed_dot = timed(runs, together, || {
        dot = cluster.bulk().dot(&x, &w)?;
        Ok(())
    })?;

    // Every rank must hold the same bits, and the exact value.
    let exact = (0..len).map(input).sum::<f64>(); // exact: every partial is too
    let mut wrong = u64::from(sum != exact) + u64::from(dot != exact);
    for bits in [sum.to_bits(), dot.to_bits()] {
        let (mut low, mut high) = (0u64, 0u64);
        let world = cluster.world();
        world.all_reduce_into(&bits, &mut low, SystemOperation::min());
        world.all_reduce_into(&bits, &mut high, SystemOperation::max());
        wrong += u64::from(low != high);
    }
    let mut wrong_total = 0u64;
    cluster
        .world()
        .all_reduce_into(&wrong, &mut wrong_total, SystemOperation::sum());

    // Rank 0's pool alone over the whole array.
    if cluster.is_root() {
        let whole = SharedArray::try_from_iter((0..len).map(input))?;
        let mut alone_sum = 0.0;
        let alone = timed(
            runs,
            || Ok(()),
            || {
                alone_sum = cluster.pool().bulk().sum(&whole)?;
                Ok(())
            },
        )?;
        let bytes = (len * size_of::<f64>()) as f64;
        let gbs = |t: Duration| bytes / t.as_secs_f64() / 1e9;
        println!(
            "mpi_sum over {len} f64 ({:.0} MiB) on {} ranks, {} workers on rank 0; median of {runs}\n",
            bytes / (1 << 20) as f64,
            cluster.size(),
            cluster.pool().processes()
        );
        println!("{:<44}{:>12}{:>9}", "path", "median", "GB/s");
        for (name, t, traffic) in [
            ("each rank's pool over its block, no MPI", local, 1.0),
            ("distributed: cluster.bulk().sum", distributed_sum, 1.0),
            ("distributed: cluster.bulk().dot", distributed_dot, 2.0),
            ("one rank alone: rank 0's pool.bulk().sum", alone, 1.0),
        ] {
            println!("{name:<44}{:>12}{:>9.2}", ms(t), traffic * gbs(t));
        }
        if alone_sum != exact || wrong_total > 0 {
            return Err("a sum differs from the exact value or between ranks".into());
        }
        println!("\nthe sums are exact and bit-identical on every rank");
    } else if wrong_total > 0 {
        return Err("a sum differs from the exact value or between ranks".into());
    }
    Ok(())
}

/// The median time of `step` over `runs` runs after one warm-up, each run timed
/// from the end of `before`.
fn timed(
    runs: usize,
    before: impl Fn() -> shmpool::Result<()>,
    mut step: impl FnMut() -> shmpool::Result<()>,
) -> shmpool::Result<Duration> {
    step()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        before()?;
        let t = Instant::now();
        step()?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times[runs / 2])
}

fn ms(t: Duration) -> String {
    format!("{:.3} ms", t.as_secs_f64() * 1e3)
}
