//! numpy's `np.sqrt` over a big float64 array, scaled out over MPI ranks, each rank
//! running its own shmpool pool.
//!
//! ```text
//! cargo build --release --features mpi --example mpi_sqrt
//! mpirun -n 2 target/release/examples/mpi_sqrt            # 2^25 elements, 9 runs
//! mpirun -n 2 target/release/examples/mpi_sqrt 1000000 5  # any length and run count
//! mpirun -n 2 --bind-to none target/release/examples/mpi_sqrt
//! ```
//!
//! Runs sqrt over the same global array three ways and prints the median of each,
//! per rank and for the job:
//!
//! * **distributed**: each rank makes its own block (a `DistArray`) and maps it in
//!   place with its local pool (`map_dist_into`); no data moves between ranks;
//! * **from rank 0**: rank 0 holds the whole array; `map_into` scatters blocks to the
//!   ranks (scatterv), each maps its block, and the results are gathered back
//!   (gatherv); the scatter and the gather are also timed alone;
//! * **one rank alone**: rank 0's pool maps the whole array, no MPI involved.
//!
//! Every result is checked bit for bit against a sequential loop; the program
//! fails if any element differs on any rank.

use std::time::{Duration, Instant};

use shmpool::mpi::collective::SystemOperation;
use shmpool::mpi::traits::{Communicator, CommunicatorCollectives, Root};
use shmpool::{Cluster, DistArray, SharedArray};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let len: usize = match args.next() {
        Some(arg) => arg.parse().map_err(|e| format!("length {arg:?}: {e}"))?,
        None => 1 << 25,
    };
    let runs: usize = match args.next() {
        Some(arg) => arg.parse().map_err(|e| format!("run count {arg:?}: {e}"))?,
        None => 9,
    };
    let runs = runs.max(1);
    let cluster = Cluster::init()?;
    let input = |i: usize| i as f64 * 0.5;

    // Distributed: every rank makes, maps and checks only its own block.
    let xs = DistArray::from_fn(&cluster, len, input)?;
    let mut ys = DistArray::<f64>::zeroed(&cluster, len)?;
    ys.local_mut().fill(0.0); // first-touch page faults are not what this compares
    let local = median(&cluster, runs, || {
        cluster
            .pool()
            .map_into(xs.local(), ys.local_mut(), |v: f64| v.sqrt())
    })?;
    let distributed = median(&cluster, runs, || {
        cluster.map_dist_into(&xs, &mut ys, |v: f64| v.sqrt())
    })?;
    let start = ys.local_range().start;
    let mut wrong = count_wrong(&ys.local()[..], start, input);

    // From rank 0: the whole array lives on rank 0 and travels.
    let whole = if cluster.is_root() { len } else { 0 };
    let x0 = SharedArray::try_from_iter((0..whole).map(input))?;
    let mut y0 = SharedArray::<f64>::filled(whole, 0.0)?;
    let scattered = median(&cluster, runs, || {
        cluster.map_into(&x0, &mut y0, |v: f64| v.sqrt())
    })?;
    wrong += count_wrong(&y0[..], 0, input);
    // The two transfers alone, into memory that is already mapped.
    let mut xs_copy = DistArray::<f64>::zeroed(&cluster, len)?;
    let scatter_only = median(&cluster, runs, || xs_copy.copy_from_root(&cluster, &x0))?;
    let gather_only = median(&cluster, runs, || ys.gather_to_root_into(&cluster, &mut y0))?;
    wrong += count_wrong(&y0[..], 0, input);

    // One rank alone: rank 0's pool over the whole array.
    let mut alone = Duration::ZERO;
    if cluster.is_root() {
        y0.fill(0.0);
        alone = median_here(runs, || {
            cluster.pool().map_into(&x0, &mut y0, |v: f64| v.sqrt())
        })?;
        wrong += count_wrong(&y0[..], 0, input);
    }
    cluster.barrier()?;

    // Rank 0 prints what every rank saw.
    let mine = [
        cluster.pool().processes() as f64,
        xs.local().len() as f64,
        local.as_secs_f64(),
    ];
    let root = cluster.world().process_at_rank(0);
    let mut table = vec![0.0f64; 3 * cluster.size()];
    if cluster.is_root() {
        root.gather_into_root(&mine[..], &mut table[..]);
    } else {
        root.gather_into(&mine[..]);
    }
    let mut wrong_total = 0u64;
    cluster
        .world()
        .all_reduce_into(&wrong, &mut wrong_total, SystemOperation::sum());
    if cluster.is_root() {
        let host = shmpool::mpi::environment::processor_name().unwrap_or_default();
        let bytes = (2 * len * size_of::<f64>()) as f64;
        let gbs = |t: Duration| bytes / t.as_secs_f64() / 1e9;
        println!(
            "mpi_sqrt over {len} f64 ({:.0} MiB in, the same out) on {} ranks; median of {runs}\n",
            (len * 8) as f64 / (1 << 20) as f64,
            cluster.size()
        );
        println!(
            "{:<6}{:>9}{:>13}{:>14}{:>10}",
            "rank", "workers", "block", "local map", "GB/s"
        );
        for (r, row) in table.chunks(3).enumerate() {
            let t = Duration::from_secs_f64(row[2]);
            println!(
                "{r:<6}{:>9}{:>13}{:>14}{:>10.2}",
                row[0],
                row[1],
                ms(t),
                (2.0 * row[1] * 8.0) / row[2] / 1e9
            );
        }
        // The compute paths are rated by the array's traffic (input read plus
        // output written); the transfers by the bytes MPI moved between ranks.
        let moved = ((len - xs.blocks().range(0).len()) * size_of::<f64>()) as f64;
        let heading = format!("path (host {host})");
        println!(
            "\n{heading:<46}{:>12}{:>9}{:>14}",
            "median", "GB/s", "vs one rank"
        );
        for (name, t, rate) in [
            ("distributed: map_dist_into", distributed, gbs(distributed)),
            (
                "from rank 0: map_into (scatter, map, gather)",
                scattered,
                gbs(scattered),
            ),
            (
                "  scatter alone (copy_from_root; bytes moved)",
                scatter_only,
                moved / scatter_only.as_secs_f64() / 1e9,
            ),
            (
                "  gather alone (gather_to_root_into; moved)",
                gather_only,
                moved / gather_only.as_secs_f64() / 1e9,
            ),
            ("one rank alone: rank 0's pool, no MPI", alone, gbs(alone)),
        ] {
            println!(
                "{name:<46}{:>12}{:>9.2}{:>13.2}x",
                ms(t),
                rate,
                alone.as_secs_f64() / t.as_secs_f64()
            );
        }
        if wrong_total > 0 {
            return Err(format!("{wrong_total} results differ from a sequential sqrt").into());
        }
        println!("\nall results agree bit for bit with a sequential sqrt, on every rank");
    } else if wrong_total > 0 {
        return Err("some results differ from a sequential sqrt".into());
    }
    Ok(())
}

/// Elements of `ys` (global indices from `start`) that are not bit for bit
/// `input(i).sqrt()`.
fn count_wrong(ys: &[f64], start: usize, input: impl Fn(usize) -> f64) -> u64 {
    ys.iter()
        .enumerate()
        .filter(|&(k, y)| y.to_bits() != input(start + k).sqrt().to_bits())
        .count() as u64
}

/// The median time of a collective step over `runs` runs after one warm-up, as
/// rank 0 sees it; every run starts together on every rank.
fn median(
    cluster: &Cluster,
    runs: usize,
    step: impl FnMut() -> shmpool::Result<()>,
) -> shmpool::Result<Duration> {
    median_after(runs, || cluster.barrier(), step)
}

/// The median time of `step` over `runs` runs after one warm-up, on this rank.
fn median_here(
    runs: usize,
    step: impl FnMut() -> shmpool::Result<()>,
) -> shmpool::Result<Duration> {
    median_after(runs, || Ok(()), step)
}

/// The median time of `step` over `runs` runs after one warm-up, each run timed
/// from the end of `before` (a barrier, or nothing).
fn median_after(
    runs: usize,
    mut before: impl FnMut() -> shmpool::Result<()>,
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
