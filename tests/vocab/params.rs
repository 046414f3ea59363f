//! Kernel parameters: `with(p)` hands `&P` to every kernel call, from a run-time
//! `f64` to a 4 KiB struct, through every bulk operation.

use std::ops::Range;

use shmpool::{Grid, GridMut, SharedArray, StartMethod};
// The derives come through shmpool's re-exports, not from bytemuck by name.
use shmpool::{Pod, Zeroable};

use super::{assert_same, bits, randoms, rng, seed, unit};
use crate::common::{Rng, pool_of};

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct Axpy {
    a: f64,
}

/// `y = a * x + y` with an `a` known only at run time, as a plain `f64` and as a
/// struct, through `map_into`, `zip_map_into` and `for_each_mut`.
fn axpy_with_a_runtime_scale(m: StartMethod) {
    let pool = pool_of(2, m);
    let mut rng = rng();
    let n = 50_001;
    let a = unit(&mut rng) * 10.0; // a run-time value
    let x = randoms(&mut rng, n);
    let y = randoms(&mut rng, n);
    let want: Vec<f64> = (0..n).map(|i| a * x[i] + y[i]).collect();

    let mut out = SharedArray::zeroed(n).unwrap();
    pool.bulk()
        .with(a)
        .zip_map_into((&x, &y), &mut out, |a: &f64, (x, y): (f64, f64)| a * x + y)
        .unwrap();
    assert_same(&bits(&out), &bits(&want), "axpy with(f64)");

    let mut out = SharedArray::zeroed(n).unwrap();
    pool.bulk()
        .chunk_len(777)
        .with(Axpy { a })
        .zip_map_into((&x, &y), &mut out, |p: &Axpy, (x, y): (f64, f64)| {
            p.a * x + y
        })
        .unwrap();
    assert_same(&bits(&out), &bits(&want), "axpy with(Axpy)");

    // Scale alone, then in place: y += a * x done as two passes.
    let mut ax = SharedArray::zeroed(n).unwrap();
    pool.bulk()
        .with(a)
        .map_into(&x, &mut ax, |a: &f64, v: f64| a * v)
        .unwrap();
    let want_ax: Vec<f64> = x.iter().map(|v| a * v).collect();
    assert_same(&bits(&ax), &bits(&want_ax), "scale with(f64)");
    let mut z = y.try_clone().unwrap();
    pool.bulk()
        .with(-a)
        .for_each_mut(&mut z, |a: &f64, v: &mut f64| *v *= a)
        .unwrap();
    let want_z: Vec<f64> = y.iter().map(|v| v * -a).collect();
    assert_same(&bits(&z), &bits(&want_z), "for_each_mut with(f64)");
}

/// Parameters of exactly 4 KiB: 510 weights, a scale and a bias.
#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct Big {
    w: [f64; 510],
    scale: f64,
    bias: f64,
}

const W: usize = 510;

impl Big {
    /// Small integers, so every sum below is exact in any order.
    fn new(rng: &mut Rng) -> Big {
        let mut w = [0.0; W];
        for v in &mut w {
            *v = rng.range(0..16) as f64 - 8.0;
        }
        Big {
            w,
            scale: rng.range(1..5) as f64,
            bias: rng.range(0..100) as f64,
        }
    }

    fn f(&self, i: f64) -> f64 {
        i * self.w[i as usize % W] * self.scale + self.bias
    }
}

/// 0 for a negative weight, 1 for zero, 2 for a positive one.
fn sign_bin(w: f64) -> usize {
    if w < 0.0 {
        0
    } else if w == 0.0 {
        1
    } else {
        2
    }
}

/// A 4 KiB parameter block reaches every bulk operation intact.
fn params_of_four_kib_reach_every_operation(m: StartMethod) {
    assert_eq!(size_of::<Big>(), 4096);
    let pool = pool_of(2, m);
    let mut rng = rng();
    let p = Big::new(&mut rng);
    let n = 20_000;
    // x[i] = i: each kernel can tell where it is from the value.
    let x = SharedArray::try_from_iter((0..n).map(|i| i as f64)).unwrap();
    let want: Vec<f64> = (0..n).map(|i| p.f(i as f64)).collect();
    let bulk = || pool.bulk().chunk_len(999).with(p);

    let mut y = SharedArray::zeroed(n).unwrap();
    bulk()
        .map_into(&x, &mut y, |p: &Big, v: f64| p.f(v))
        .unwrap();
    assert_same(&y, &want, "map_into");

    let y = bulk().map_array(&x, |p: &Big, v: f64| p.f(v)).unwrap();
    assert_same(&y, &want, "map_array");

    let mut y = SharedArray::zeroed(n).unwrap();
    bulk()
        .map_chunks_into(&x, &mut y, |p: &Big, xs: &[f64], ys: &mut [f64]| {
            for (y, &v) in ys.iter_mut().zip(xs) {
                *y = p.f(v);
            }
        })
        .unwrap();
    assert_same(&y, &want, "map_chunks_into");

    let ones = SharedArray::filled(n, 1.0f64).unwrap();
    let mut y = SharedArray::zeroed(n).unwrap();
    bulk()
        .zip_map_into((&x, &ones), &mut y, |p: &Big, (v, one): (f64, f64)| {
            p.f(v) * one
        })
        .unwrap();
    assert_same(&y, &want, "zip_map_into");

    let mut y = SharedArray::zeroed(n).unwrap();
    bulk()
        .zip_map_chunks_into(
            (&x, &ones),
            &mut y,
            |p: &Big, (xs, os): (&[f64], &[f64]), ys: &mut [f64]| {
                for i in 0..ys.len() {
                    ys[i] = p.f(xs[i]) * os[i];
                }
            },
        )
        .unwrap();
    assert_same(&y, &want, "zip_map_chunks_into");

    let mut y = x.try_clone().unwrap();
    bulk()
        .for_each_mut(&mut y, |p: &Big, v: &mut f64| *v = p.f(*v))
        .unwrap();
    assert_same(&y, &want, "for_each_mut");

    let mut y = x.try_clone().unwrap();
    bulk()
        .for_each_chunk_mut(&mut y, |p: &Big, c: &mut [f64]| {
            for v in c {
                *v = p.f(*v);
            }
        })
        .unwrap();
    assert_same(&y, &want, "for_each_chunk_mut");

    // Index-aware: out[i] = f(i) read from the other end of x, w[i % 510] by index.
    let mut y = SharedArray::zeroed(n).unwrap();
    bulk()
        .map_indexed_into(
            &x,
            &mut y,
            |p: &Big, r: Range<usize>, x: &[f64], out: &mut [f64]| {
                for (o, i) in out.iter_mut().zip(r) {
                    *o = p.f(x[x.len() - 1 - i]);
                }
            },
        )
        .unwrap();
    let reversed: Vec<f64> = (0..n).map(|i| p.f((n - 1 - i) as f64)).collect();
    assert_same(&y, &reversed, "map_indexed_into");

    // Rows of 40 columns: out[r][c] = row[c] * w[c] * scale + bias.
    let (rows, cols) = (500, 40);
    let g = x.try_clone().unwrap().reshape(&[rows, cols]).unwrap();
    let mut y = SharedArray::zeroed(n)
        .unwrap()
        .reshape(&[rows, cols])
        .unwrap();
    pool.bulk()
        .chunk_len(7)
        .with(p)
        .map_rows_into(&g, &mut y, |p: &Big, row: &[f64], out: &mut [f64]| {
            for c in 0..row.len() {
                out[c] = row[c] * p.w[c] * p.scale + p.bias;
            }
        })
        .unwrap();
    let want_rows: Vec<f64> = (0..n)
        .map(|i| i as f64 * p.w[i % cols] * p.scale + p.bias)
        .collect();
    assert_same(&y, &want_rows, "map_rows_into");

    // A weighted 3-row stencil: y[r][c] = w[0] x[r-1][c] + w[1] x[r][c] + w[2] x[r+1][c].
    let mut y = SharedArray::zeroed(n)
        .unwrap()
        .reshape(&[rows, cols])
        .unwrap();
    pool.bulk()
        .chunk_len(7)
        .with(p)
        .stencil_rows_into(
            &g,
            &mut y,
            |p: &Big, rows: Range<usize>, x: Grid<f64>, mut y: GridMut<f64>| {
                for r in rows.filter(|&r| r > 0 && r + 1 < x.rows()) {
                    let out = y.row_mut(r);
                    for (c, o) in out.iter_mut().enumerate() {
                        *o = p.w[0] * x.get(r - 1, c)
                            + p.w[1] * x.get(r, c)
                            + p.w[2] * x.get(r + 1, c);
                    }
                }
            },
        )
        .unwrap();
    let at = |r: usize, c: usize| (r * cols + c) as f64;
    let want_stencil: Vec<f64> = (0..n)
        .map(|i| {
            let (r, c) = (i / cols, i % cols);
            if r == 0 || r + 1 == rows {
                0.0
            } else {
                p.w[0] * at(r - 1, c) + p.w[1] * at(r, c) + p.w[2] * at(r + 1, c)
            }
        })
        .collect();
    assert_same(&y, &want_stencil, "stencil_rows_into");

    // Reductions: Σ f(x[i]) and a count of the weights' signs by element.
    let total = bulk()
        .map_reduce(&x, 0.0, |p: &Big, v: f64| p.f(v), |a: f64, b: f64| a + b)
        .unwrap();
    assert_eq!(
        total,
        want.iter().sum::<f64>(),
        "map_reduce (seed {})",
        seed()
    );
    let signs = bulk()
        .fold_reduce(
            &x,
            [0u64; 3],
            |p: &Big, acc: &mut [u64; 3], xs: &[f64]| {
                for &v in xs {
                    acc[sign_bin(p.w[v as usize % W])] += 1;
                }
            },
            |a, b| [a[0] + b[0], a[1] + b[1], a[2] + b[2]],
        )
        .unwrap();
    let mut want_signs = [0u64; 3];
    for i in 0..n {
        want_signs[sign_bin(p.w[i % W])] += 1;
    }
    assert_eq!(signs, want_signs, "fold_reduce (seed {})", seed());
}

per_start_method!(
    axpy_with_a_runtime_scale,
    params_of_four_kib_reach_every_operation,
);
