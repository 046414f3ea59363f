//! Neighbourhood kernels: `map_indexed_into` (1-D stencils, gathers),
//! `stencil_rows_into` (a 5-point Laplacian) and `map_rows_into` (row maps), with
//! ranges of rows and the shape errors.

use std::ops::Range;

use shmpool::{Error, Grid, GridMut, SharedArray, StartMethod};

use super::{assert_same, bits, laplacian, laplacian_kernel, length_error, randoms, rng, unit};
use crate::common::pool_of;

/// `map_indexed_into`: a 1-D 3-point stencil and a gather through an index array,
/// whole and over a range.
fn indexed_stencil_and_gather(m: StartMethod) {
    let pool = pool_of(2, m);
    let mut rng = rng();
    let n = 30_011;
    let x = randoms(&mut rng, n);
    let three_point = |x: &[f64], i: usize| {
        if i > 0 && i + 1 < x.len() {
            x[i - 1] - 2.0 * x[i] + x[i + 1]
        } else {
            x[i]
        }
    };
    let want: Vec<f64> = (0..n).map(|i| three_point(&x, i)).collect();
    fn stencil(r: Range<usize>, x: &[f64], out: &mut [f64]) {
        assert_eq!(r.len(), out.len());
        for (o, i) in out.iter_mut().zip(r) {
            *o = if i > 0 && i + 1 < x.len() {
                x[i - 1] - 2.0 * x[i] + x[i + 1]
            } else {
                x[i]
            };
        }
    }
    for chunk in [None, Some(97), Some(1)] {
        let mut y = SharedArray::zeroed(n).unwrap();
        let bulk = match chunk {
            Some(c) => pool.bulk().chunk_len(c),
            None => pool.bulk(),
        };
        bulk.map_indexed_into(&x, &mut y, stencil).unwrap();
        assert_same(
            &bits(&y),
            &bits(&want),
            &format!("3-point stencil, chunk {chunk:?}"),
        );
    }

    // Over a range: only those elements are written, and the kernel sees global indices.
    let mut y = SharedArray::filled(n, f64::NAN).unwrap();
    pool.bulk()
        .chunk_len(100)
        .range(1000..2500)
        .map_indexed_into(&x, &mut y, stencil)
        .unwrap();
    for i in 0..n {
        if (1000..2500).contains(&i) {
            assert_eq!(y[i].to_bits(), want[i].to_bits(), "range: element {i}");
        } else {
            assert!(
                y[i].is_nan(),
                "range: element {i} outside 1000..2500 was written"
            );
        }
    }

    // A gather: out[i] = x[perm[i]] with a random permutation, two inputs.
    let mut perm: Vec<u32> = (0..n as u32).collect();
    for i in (1..n).rev() {
        perm.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let perm = SharedArray::from_vec(perm).unwrap();
    let mut g = SharedArray::zeroed(n).unwrap();
    pool.bulk()
        .chunk_len(513)
        .map_indexed_into(
            (&x, &perm),
            &mut g,
            |r: Range<usize>, (x, perm): (&[f64], &[u32]), out: &mut [f64]| {
                for (o, i) in out.iter_mut().zip(r) {
                    *o = x[perm[i] as usize];
                }
            },
        )
        .unwrap();
    let want: Vec<f64> = perm.iter().map(|&p| x[p as usize]).collect();
    assert_same(&bits(&g), &bits(&want), "gather");
}

/// `stencil_rows_into`: a 5-point Laplacian on a 257 × 129 grid, whole and over a
/// range of rows.
fn stencil_rows_laplacian(m: StartMethod) {
    let pool = pool_of(2, m);
    let mut rng = rng();
    let (rows, cols) = (257, 129);
    let x = randoms(&mut rng, rows * cols)
        .reshape(&[rows, cols])
        .unwrap();
    let h2inv = 0.25;
    let want = laplacian(&x, rows, cols, h2inv, -7.0);
    for chunk in [None, Some(1), Some(7)] {
        let mut y = SharedArray::filled(rows * cols, -7.0)
            .unwrap()
            .reshape(&[rows, cols])
            .unwrap();
        let bulk = match chunk {
            Some(c) => pool.bulk().chunk_len(c),
            None => pool.bulk(),
        };
        bulk.with(h2inv)
            .stencil_rows_into(&x, &mut y, laplacian_kernel)
            .unwrap();
        assert_same(
            &bits(&y),
            &bits(&want),
            &format!("Laplacian, chunk {chunk:?}"),
        );
    }

    // Rows 50..60 only; the kernel gets global row numbers.
    let mut y = SharedArray::filled(rows * cols, -7.0)
        .unwrap()
        .reshape(&[rows, cols])
        .unwrap();
    pool.bulk()
        .chunk_len(3)
        .range(50..60)
        .with(h2inv)
        .stencil_rows_into(&x, &mut y, laplacian_kernel)
        .unwrap();
    for i in 0..rows * cols {
        let expected = if (50..60).contains(&(i / cols)) {
            want[i]
        } else {
            -7.0
        };
        assert_eq!(
            y[i].to_bits(),
            expected.to_bits(),
            "rows 50..60: element {i}"
        );
    }

    // Without parameters, into another element type.
    let mut y32 = SharedArray::<f32>::zeroed(rows * cols)
        .unwrap()
        .reshape(&[rows, cols])
        .unwrap();
    pool.bulk()
        .stencil_rows_into(
            &x,
            &mut y32,
            |rows: Range<usize>, x: Grid<f64>, mut y: GridMut<f32>| {
                for r in rows {
                    let row = x.row(r);
                    for (o, v) in y.row_mut(r).iter_mut().zip(row) {
                        *o = *v as f32;
                    }
                }
            },
        )
        .unwrap();
    let want32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    assert_same(&y32, &want32, "stencil into f32");
}

/// `map_rows_into`: normalising each row, rows of a different width out, a range of
/// rows, and the shape errors.
fn row_maps(m: StartMethod) {
    let pool = pool_of(2, m);
    let mut rng = rng();
    let (rows, cols) = (301, 17);
    let x = SharedArray::try_from_iter((0..rows * cols).map(|_| unit(&mut rng) as f32 + 2.0))
        .unwrap()
        .reshape(&[rows, cols])
        .unwrap();
    let normalise = |row: &[f32], out: &mut [f32]| {
        let total: f32 = row.iter().sum();
        for (o, v) in out.iter_mut().zip(row) {
            *o = v / total;
        }
    };
    let mut want = vec![0.0f32; rows * cols];
    for r in 0..rows {
        normalise(
            &x[r * cols..(r + 1) * cols],
            &mut want[r * cols..(r + 1) * cols],
        );
    }
    let mut y = SharedArray::<f32>::zeroed(rows * cols)
        .unwrap()
        .reshape(&[rows, cols])
        .unwrap();
    pool.bulk().map_rows_into(&x, &mut y, normalise).unwrap();
    assert_same(&y, &want, "normalised rows");

    // (rows, 17) f32 into (rows, 3) f64: each row's mean, min and max.
    let summary = |row: &[f32]| {
        let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / row.len() as f64;
        let lo = row.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        [mean, f64::from(lo), f64::from(hi)]
    };
    let want: Vec<f64> = (0..rows)
        .flat_map(|r| summary(&x[r * cols..(r + 1) * cols]))
        .collect();
    let mut s = SharedArray::<f64>::filled(rows * 3, -1.0)
        .unwrap()
        .reshape(&[rows, 3])
        .unwrap();
    pool.bulk()
        .chunk_len(5)
        .map_rows_into(&x, &mut s, |row: &[f32], out: &mut [f64]| {
            assert_eq!((row.len(), out.len()), (17, 3));
            let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / row.len() as f64;
            let lo = row.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            out.copy_from_slice(&[mean, f64::from(lo), f64::from(hi)]);
        })
        .unwrap();
    assert_same(&bits(&s), &bits(&want), "row summaries");

    // Rows 100..110 only.
    let mut s2 = SharedArray::<f64>::filled(rows * 3, -1.0)
        .unwrap()
        .reshape(&[rows, 3])
        .unwrap();
    pool.bulk()
        .range(100..110)
        .with(2.0f64)
        .map_rows_into(&x, &mut s2, |k: &f64, row: &[f32], out: &mut [f64]| {
            out.fill(k * f64::from(row[0]));
        })
        .unwrap();
    for r in 0..rows {
        let expected = if (100..110).contains(&r) {
            2.0 * f64::from(x[r * cols])
        } else {
            -1.0
        };
        assert!(
            s2[r * 3..r * 3 + 3].iter().all(|&v| v == expected),
            "range: row {r}"
        );
    }

    // Shapes: not 2-D, and row counts that differ.
    let flat = SharedArray::<f32>::zeroed(rows * cols).unwrap();
    let cube = SharedArray::<f32>::zeroed(24)
        .unwrap()
        .reshape(&[2, 3, 4])
        .unwrap();
    let mut fewer = SharedArray::<f64>::zeroed(300 * 3)
        .unwrap()
        .reshape(&[300, 3])
        .unwrap();
    let keep = |_: &[f32], _: &mut [f64]| {};
    for (input, shape) in [(&flat, vec![rows * cols]), (&cube, vec![2, 3, 4])] {
        match pool.bulk().map_rows_into(input, &mut s, keep) {
            Err(Error::Dimensionality {
                shape: got,
                axes: 2,
            }) => assert_eq!(got, shape),
            other => panic!("map_rows_into over {shape:?}: {other:?}"),
        }
        let r = pool.bulk().stencil_rows_into(
            input,
            &mut s,
            |_: Range<usize>, _: Grid<f32>, _: GridMut<f64>| {},
        );
        assert!(
            matches!(r, Err(Error::Dimensionality { axes: 2, .. })),
            "stencil over {shape:?}: {r:?}"
        );
    }
    let mut flat_out = SharedArray::<f64>::zeroed(rows * 3).unwrap();
    let r = pool.bulk().map_rows_into(&x, &mut flat_out, keep);
    assert!(
        matches!(r, Err(Error::Dimensionality { axes: 2, .. })),
        "{r:?}"
    );
    let r = pool.bulk().map_rows_into(&x, &mut fewer, keep);
    assert_eq!(
        length_error(r),
        (
            "OperandLength".into(),
            "the output's rows".into(),
            300,
            rows
        )
    );
    let r = pool.bulk().stencil_rows_into(
        &x,
        &mut fewer,
        |_: Range<usize>, _: Grid<f32>, _: GridMut<f64>| {},
    );
    assert_eq!(
        length_error(r),
        (
            "OperandLength".into(),
            "the output's rows".into(),
            300,
            rows
        )
    );
    // A row range past the rows.
    let r = pool.bulk().range(290..302).map_rows_into(&x, &mut s, keep);
    assert!(
        matches!(r, Err(Error::RangeOutOfBounds { len: 301, .. })),
        "{r:?}"
    );
}

per_start_method!(indexed_stencil_and_gather, stencil_rows_laplacian, row_maps,);
