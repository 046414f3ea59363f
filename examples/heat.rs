//! The heat equation on an N × N plate, by Jacobi iterations of a 5-point stencil,
//! double-buffered in shared memory without copying.
//!
//! ```text
//! cargo run --release --example heat                 # 4096 × 4096, 1000 steps, report every 100
//! cargo run --release --example heat -- 256 200 20   # N, steps, report every k steps
//! ```
//!
//! The top edge is held at 1, the other edges at 0. Each step computes
//! `v = u + α (u[up] + u[down] + u[left] + u[right] − 4u)` over the interior with
//! `stencil_rows_into`: every worker reads any row of `u` (its halo rows included)
//! and writes its own rows of `v`. Then the two arrays swap roles (`std::mem::swap`
//! moves two handles, not the grid). Every k steps a deterministic reduction gives
//! the residual, the largest change of the step. For N up to 512 the example also
//! runs the same steps sequentially and checks that the pool's grid matches bit for
//! bit.

use std::ops::Range;
use std::time::Instant;

use shmpool::{Grid, GridMut, Pool, SharedArray};

/// α = 1/4: the largest stable step, and Jacobi's iteration for Laplace's equation.
const ALPHA: f64 = 0.25;

/// The new value of an interior point at column `c` of row `mid`.
#[inline(always)]
fn update(alpha: f64, up: &[f64], mid: &[f64], down: &[f64], c: usize) -> f64 {
    mid[c] + alpha * (up[c] + down[c] + mid[c - 1] + mid[c + 1] - 4.0 * mid[c])
}

/// One step over the rows `rows` of `v`, from the whole of `u`. Boundary rows and
/// columns are not written: they keep their fixed values.
fn step(alpha: &f64, rows: Range<usize>, u: Grid<f64>, mut v: GridMut<f64>) {
    for r in rows.filter(|&r| r > 0 && r + 1 < u.rows()) {
        let (up, mid, down) = (u.row(r - 1), u.row(r), u.row(r + 1));
        let last = u.cols() - 1;
        for (c, out) in v.row_mut(r).iter_mut().enumerate().take(last).skip(1) {
            *out = update(*alpha, up, mid, down, c);
        }
    }
}

fn arg(i: usize, default: usize) -> Result<usize, String> {
    match std::env::args().nth(i) {
        Some(a) => a.parse().map_err(|e| format!("argument {i} ({a:?}): {e}")),
        None => Ok(default),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = arg(1, 4096)?;
    let steps = arg(2, 1000)?;
    let every = arg(3, 100)?.max(1);
    if n < 3 {
        return Err("the grid needs at least 3 × 3 points".into());
    }
    let pool = Pool::builder().build()?;
    println!("heat {n}×{n}, {steps} steps, {} workers", pool.processes());

    // Both buffers carry the boundary: the top row hot, the rest cold.
    let mut u = SharedArray::<f64>::zeroed(n * n)?.reshape(&[n, n])?;
    u[..n].fill(1.0);
    let mut v = u.try_clone()?;

    let start = Instant::now();
    let (mut first, mut last) = (None, 0.0);
    for s in 1..=steps {
        pool.bulk()
            .with(ALPHA)
            .stencil_rows_into(&u, &mut v, step)?;
        std::mem::swap(&mut u, &mut v); // u is the new state; v the old one, to overwrite
        if s % every == 0 || s == steps {
            // The largest change of this step: max |u - v|.
            let residual = pool.bulk().map_reduce(
                (&u, &v),
                0.0,
                |(new, old): (f64, f64)| (new - old).abs(),
                |a: f64, b: f64| a.max(b),
            )?;
            let heat = pool.bulk().sum(&u)?;
            println!("step {s}: max |Δ| = {residual:.3e}, total heat {heat:.6}");
            first.get_or_insert(residual);
            last = residual;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{steps} steps in {secs:.2} s ({:.0} Mpoints/s)",
        (n * n * steps) as f64 / secs.max(1e-9) / 1e6
    );
    if let Some(first) = first
        && steps >= 2 * every
    {
        if last >= first {
            return Err(format!("the residual did not fall: {first:.3e} -> {last:.3e}").into());
        }
        println!("residual fell from {first:.3e} to {last:.3e}");
    }

    if n <= 512 {
        let mut a = vec![0.0f64; n * n];
        a[..n].fill(1.0);
        let mut b = a.clone();
        for _ in 0..steps {
            for r in 1..n - 1 {
                let row = |k: usize| &a[k * n..(k + 1) * n];
                for c in 1..n - 1 {
                    b[r * n + c] = update(ALPHA, row(r - 1), row(r), row(r + 1), c);
                }
            }
            std::mem::swap(&mut a, &mut b);
        }
        if let Some(i) = (0..n * n).find(|&i| a[i].to_bits() != u[i].to_bits()) {
            return Err(format!("point {i}: pool {} vs sequential {}", u[i], a[i]).into());
        }
        println!("matches a sequential run bit for bit");
    }
    Ok(())
}
