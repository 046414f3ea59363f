//! Reductions along an axis of a 2-D array (`sum_axis`, `mean_axis`, `var_axis`,
//! `std_axis`, `min_axis`, `max_axis`, `argmin_axis`, `argmax_axis`) against numpy's
//! `axis=0` and `axis=1`, and the row fold (`fold_rows`) that replaces a
//! `fold_reduce` over rows, which is now refused.
//!
//! Shapes: one element, one row, one column, narrow (`1000 × 3`) and wide
//! (`3 × 1000`), odd sizes that are not a multiple of any chunk, empty axes; data:
//! uniform, integer-valued with exact means (numpy's answer is exact, so shmpool's
//! must equal it), a large mean over a small spread, NaN and ±inf in some columns,
//! ties; `f64`, `f32` and integers; chunk lengths (in rows) default, 1, 7, 100.
//! Extremes and indices equal numpy's; integer sums equal numpy's; the rest lies
//! within the bounds of `tests/common/moments.rs` (numpy sums down axis 0 row
//! after row, so its depth there is the row count).

use shmpool::npy::NpyElement;
use shmpool::{Bulk, DefaultDtype, Error, MeanIn, Number, SharedArray, StartMethod, SumIn};

#[macro_use]
mod common;
#[path = "common/moments.rs"]
mod moments;

use common::numpy::{Numpy, assert_sum_close, same_value};
use common::{Rng, pool_of};
use moments::{
    Moments, mean_tolerance, numpy_pairwise_depth, ours_relative, same_special, std_tolerance,
    var_tolerance,
};

fn seed() -> u64 {
    std::env::var("AXIS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0025_0002)
}

fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

const EPS64: f64 = f64::EPSILON / 2.0;

/// numpy's answers along each axis of each array, one file per (array, axis,
/// operation); an `x` file of 1 where numpy raised.
const SCRIPT: &str = "
import warnings
warnings.simplefilter('ignore')
for i in range(int(load('count')[0])):
    x = load('x%d' % i)
    for a in (0, 1):
        out = {
            'sum': np.sum(x, axis=a) if x.dtype.kind == 'f' else np.sum(x, axis=a, dtype=x.dtype),
            'sum64': np.sum(x, axis=a, dtype=np.float64),
            'mean': np.mean(x, axis=a), 'mean64': np.mean(x, axis=a, dtype=np.float64),
            'var0': np.var(x, axis=a), 'var1': np.var(x, axis=a, ddof=1),
            'std0': np.std(x, axis=a), 'std1': np.std(x, axis=a, ddof=1),
            'var0_64': np.var(x, axis=a, dtype=np.float64),
        }
        for name, fn in (('min', np.min), ('max', np.max), ('argmin', np.argmin), ('argmax', np.argmax)):
            try:
                out[name] = fn(x, axis=a)
                save('x%d_%d_%s' % (i, a, name), [0])
            except ValueError:
                out[name] = np.zeros(0)
                save('x%d_%d_%s' % (i, a, name), [1])
        for name, v in out.items():
            v = np.asarray(v)
            ints = name == 'sum' and x.dtype.kind in 'iu'
            save('r%d_%d_%s' % (i, a, name), v.astype(np.int64 if ints else np.float64))
";

/// An element type under test.
trait Elem: Number + NpyElement + std::fmt::Debug {
    /// Unit roundoff of numpy's default mean accumulator for this type.
    const EPS: f64;
    const INTEGER: bool;
}
impl Elem for f64 {
    const EPS: f64 = EPS64;
    const INTEGER: bool = false;
}
impl Elem for f32 {
    const EPS: f64 = f32::EPSILON as f64 / 2.0;
    const INTEGER: bool = false;
}
impl Elem for i32 {
    const EPS: f64 = EPS64;
    const INTEGER: bool = true;
}

/// One 2-D array of a test, and whether numpy's means and variances of it are
/// exact.
struct Case<T> {
    name: &'static str,
    rows: usize,
    cols: usize,
    values: Vec<T>,
    exact: bool,
}

/// The values along `axis` at output `i`: column `i` (axis 0) or row `i`.
fn along<T: Copy>(values: &[T], rows: usize, cols: usize, axis: usize, i: usize) -> Vec<T> {
    if axis == 0 {
        (0..rows).map(|r| values[r * cols + i]).collect()
    } else {
        values[i * cols..(i + 1) * cols].to_vec()
    }
}

fn check<T: Elem>(test: &str, cases: &[Case<T>])
where
    DefaultDtype: SumIn<T> + MeanIn<T>,
    f64: SumIn<T, Acc = f64> + MeanIn<T, Acc = f64>,
{
    let Some(np) = Numpy::get(test) else { return };
    np.save("count", &[cases.len() as u64]);
    for (i, c) in cases.iter().enumerate() {
        np.save_shaped(&format!("x{i}"), &c.values, &[c.rows, c.cols]);
    }
    np.run(SCRIPT);
    let pool = pool_of(2, StartMethod::Fork);
    for (i, c) in cases.iter().enumerate() {
        let x = SharedArray::from_slice_shaped(&c.values, &[c.rows, c.cols]).expect("x");
        for axis in [0, 1] {
            for chunk in [None, Some(1), Some(7), Some(100)] {
                let bulk = match chunk {
                    Some(n) => pool.bulk().chunk_len(n),
                    None => pool.bulk(),
                };
                let what = format!(
                    "{test}: {} ({} × {}, axis {axis}, chunk {chunk:?}, seed {})",
                    c.name,
                    c.rows,
                    c.cols,
                    seed()
                );
                check_one(&np, bulk, &x, c, i, axis, chunk, &what);
            }
        }
    }
}

/// numpy's result `name` along `axis` of array `i`, as floats.
fn numpys(np: &Numpy, i: usize, axis: usize, name: &str) -> Vec<f64> {
    np.load(&format!("r{i}_{axis}_{name}"))
}

#[allow(clippy::too_many_arguments)]
fn check_one<T: Elem>(
    np: &Numpy,
    bulk: Bulk<'_>,
    x: &SharedArray<T>,
    c: &Case<T>,
    i: usize,
    axis: usize,
    chunk: Option<usize>,
    what: &str,
) where
    DefaultDtype: SumIn<T> + MeanIn<T>,
    f64: SumIn<T, Acc = f64> + MeanIn<T, Acc = f64>,
{
    let outputs = if axis == 0 { c.cols } else { c.rows };
    let reduced = if axis == 0 { c.rows } else { c.cols };
    let wide = bulk.dtype::<f64>();
    let mut out64 = SharedArray::<f64>::zeroed(outputs).expect("out");
    let mut mean_out =
        SharedArray::<<DefaultDtype as MeanIn<T>>::Acc>::zeroed(outputs).expect("out");
    let floats = |a: &SharedArray<<DefaultDtype as MeanIn<T>>::Acc>| -> Vec<f64> {
        a.iter().map(|v| v.to_f64()).collect()
    };

    // Sums: exact for integers (wrapping, as numpy's dtype=x.dtype), else bounded.
    let mut sums = SharedArray::<<DefaultDtype as SumIn<T>>::Acc>::zeroed(outputs).expect("out");
    bulk.sum_axis(x, axis, &mut sums).expect("sum_axis");
    wide.sum_axis(x, axis, &mut out64).expect("sum_axis in f64");
    if T::INTEGER {
        let want: Vec<i64> = np.load(&format!("r{i}_{axis}_sum"));
        let got: Vec<i64> = sums.iter().map(|v| v.to_f64() as i64).collect();
        assert_eq!(got, want, "{what}: sum");
    } else {
        let got: Vec<f64> = sums.iter().map(|v| v.to_f64()).collect();
        compare_sums(
            &got,
            &numpys(np, i, axis, "sum"),
            c,
            axis,
            T::EPS,
            &format!("{what}: sum"),
        );
    }
    compare_sums(
        &out64[..],
        &numpys(np, i, axis, "sum64"),
        c,
        axis,
        EPS64,
        &format!("{what}: sum (dtype f64)"),
    );

    // Means, variances, standard deviations.
    bulk.mean_axis(x, axis, &mut mean_out).expect("mean_axis");
    compare_spread(
        &floats(&mean_out),
        &numpys(np, i, axis, "mean"),
        c,
        axis,
        chunk,
        None,
        false,
        T::EPS,
        &format!("{what}: mean"),
    );
    wide.mean_axis(x, axis, &mut out64)
        .expect("mean_axis in f64");
    compare_spread(
        &out64[..],
        &numpys(np, i, axis, "mean64"),
        c,
        axis,
        chunk,
        None,
        false,
        EPS64,
        &format!("{what}: mean (dtype f64)"),
    );
    for ddof in [0, 1] {
        bulk.var_axis(x, axis, ddof, &mut mean_out)
            .expect("var_axis");
        let var = floats(&mean_out);
        let want_var = numpys(np, i, axis, &format!("var{ddof}"));
        compare_spread(
            &var,
            &want_var,
            c,
            axis,
            chunk,
            Some(ddof),
            false,
            T::EPS,
            &format!("{what}: var ddof {ddof}"),
        );
        bulk.std_axis(x, axis, ddof, &mut mean_out)
            .expect("std_axis");
        let std = floats(&mean_out);
        compare_spread(
            &std,
            &numpys(np, i, axis, &format!("std{ddof}")),
            c,
            axis,
            chunk,
            Some(ddof),
            true,
            T::EPS,
            &format!("{what}: std ddof {ddof}"),
        );
    }
    wide.var_axis(x, axis, 0, &mut out64)
        .expect("var_axis in f64");
    compare_spread(
        &out64[..],
        &numpys(np, i, axis, "var0_64"),
        c,
        axis,
        chunk,
        Some(0),
        false,
        EPS64,
        &format!("{what}: var (dtype f64)"),
    );

    // Extremes and indices: numpy's exactly, or an error where numpy raises.
    let mut ext = SharedArray::<T>::zeroed(outputs).expect("out");
    let mut at = SharedArray::<u64>::zeroed(outputs).expect("out");
    for name in ["min", "max", "argmin", "argmax"] {
        let raised: Vec<i64> = np.load(&format!("x{i}_{axis}_{name}"));
        let ran = match name {
            "min" => bulk.min_axis(x, axis, &mut ext),
            "max" => bulk.max_axis(x, axis, &mut ext),
            "argmin" => bulk.argmin_axis(x, axis, &mut at),
            _ => bulk.argmax_axis(x, axis, &mut at),
        };
        if raised[0] == 1 {
            assert!(
                reduced == 0 && outputs > 0,
                "{what}: numpy raised for {name} of a nonempty axis"
            );
            assert!(
                matches!(ran, Err(Error::InvalidArgument { .. })),
                "{what}: {name}: {ran:?}"
            );
            continue;
        }
        ran.unwrap_or_else(|e| panic!("{what}: {name}: {e}"));
        let want = numpys(np, i, axis, name);
        if name.starts_with("arg") {
            let got: Vec<f64> = at.iter().map(|&v| v as f64).collect();
            assert_eq!(got, want, "{what}: {name}");
        } else {
            for (k, (g, w)) in ext.iter().zip(&want).enumerate() {
                assert!(
                    same_value(g.to_f64(), *w),
                    "{what}: {name}[{k}] is {g:?}, numpy's {w}"
                );
            }
        }
    }
}

/// Sums along the axis within the bound of two sums of `n` terms.
fn compare_sums<T: Elem>(
    got: &[f64],
    want: &[f64],
    c: &Case<T>,
    axis: usize,
    eps: f64,
    what: &str,
) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        let xs: Vec<f64> = along(&c.values, c.rows, c.cols, axis, k)
            .iter()
            .map(|v| v.to_f64())
            .collect();
        let ctx = format!("{what}[{k}]");
        if !w.is_finite() {
            assert!(same_special(g, w), "{ctx}: {g} vs numpy's {w}");
        } else {
            let mag: f64 = xs.iter().map(|v| v.abs()).sum();
            assert_sum_close(g, w, xs.len(), mag, eps, &ctx);
        }
    }
}

/// Means, variances or standard deviations along the axis, within the bounds of
/// `tests/common/moments.rs`, and equal to numpy's where its answer is exact.
#[allow(clippy::too_many_arguments)]
fn compare_spread<T: Elem>(
    got: &[f64],
    want: &[f64],
    c: &Case<T>,
    axis: usize,
    chunk: Option<usize>,
    ddof: Option<usize>,
    std: bool,
    eps: f64,
    what: &str,
) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        let xs: Vec<f64> = along(&c.values, c.rows, c.cols, axis, k)
            .iter()
            .map(|v| v.to_f64())
            .collect();
        let n = xs.len();
        let ctx = format!("{what}[{k}]: shmpool {g:e}, numpy {w:e}");
        if !w.is_finite() || n == 0 || ddof.is_some_and(|d| d >= n) {
            assert!(same_special(g, w), "{ctx}");
            continue;
        }
        if c.exact {
            assert_eq!(
                g, w,
                "{ctx}: numpy's answer is exact, shmpool's must be too"
            );
        }
        let m = Moments::of(&xs);
        let Some(d) = ddof else {
            let tol = mean_tolerance(&m, eps);
            assert!((g - w).abs() <= tol, "{ctx}: off by more than {tol:e}");
            continue;
        };
        // Along axis 0: a column's rows in a chunk added in sequence (at most the
        // chunk's rows), numpy's sums down the column; along axis 1: a row's lanes,
        // numpy's pairwise sums.
        let (ours, depth) = if axis == 0 {
            let r = chunk.unwrap_or(n).min(n);
            (ours_relative(r, n.div_ceil(r), eps), n as f64 + 8.0)
        } else {
            (
                ours_relative(n.div_ceil(16), 1, eps),
                numpy_pairwise_depth(n),
            )
        };
        let var_tol = var_tolerance(&m, d, ours, depth, eps);
        let tol = if std {
            std_tolerance(g, w, var_tol, eps)
        } else {
            var_tol
        };
        assert!((g - w).abs() <= tol, "{ctx}: off by more than {tol:e}");
    }
}

/// The arrays every type is tested on.
fn cases(rng: &mut Rng) -> Vec<Case<f64>> {
    let mut v = Vec::new();
    let mut add =
        |name, rows: usize, cols: usize, f: &mut dyn FnMut(usize, usize) -> f64, exact| {
            let values = (0..rows * cols)
                .map(|i| f(i / cols.max(1), i % cols.max(1)))
                .collect();
            v.push(Case {
                name,
                rows,
                cols,
                values,
                exact,
            });
        };
    let mut r1 = Rng::new(rng.next_u64());
    add("one element", 1, 1, &mut |_, _| 2.5, true);
    add("one row", 1, 37, &mut |_, c| c as f64 * 0.25, true);
    add("one column", 37, 1, &mut |r, _| r as f64 - 18.0, true);
    add("no rows", 0, 5, &mut |_, _| 0.0, true);
    add("no columns", 4, 0, &mut |_, _| 0.0, true);
    add("uniform", 257, 129, &mut |_, _| unit(&mut r1), false);
    add("narrow", 1000, 3, &mut |_, _| 10.0 * unit(&mut r1), false);
    add("wide", 3, 1000, &mut |_, _| unit(&mut r1) - 5.0, false);
    // Column c, row r: 1000 + (r − 50)·(c + 1): every mean exact, every square too.
    add(
        "exact means",
        101,
        9,
        &mut |r, c| 1000.0 + (r as f64 - 50.0) * (c + 1) as f64,
        true,
    );
    add(
        "1e9 + noise",
        300,
        11,
        &mut |_, _| 1e9 + unit(&mut r1),
        false,
    );
    add("ties", 20, 6, &mut |r, c| ((r + c) % 3) as f64, false);
    add(
        "NaN and infinities in some columns",
        50,
        5,
        &mut |r, c| match (r, c) {
            (7, 1) | (30, 1) => f64::NAN,
            (3, 2) => f64::INFINITY,
            (40, 3) => f64::NEG_INFINITY,
            (9, 4) => f64::NAN,
            (12, 4) => f64::NEG_INFINITY,
            _ => (r * 7 % 13) as f64 - 6.0,
        },
        false,
    );
    // Column 0: +0 and −0 in turn; 1: −0 alone; 2: +inf and −inf (a NaN sum);
    // 3: NaN alone; 4: +inf alone (an infinite mean, a NaN variance); 5: ties of
    // −1, −0 and +0, the first −1 at row 4.
    add(
        "signed zeros, infinities, all-NaN",
        33,
        6,
        &mut |r, c| match c {
            0 if r % 2 == 0 => 0.0,
            0 | 1 => -0.0,
            2 if r % 3 == 0 => f64::INFINITY,
            2 => f64::NEG_INFINITY,
            3 => f64::NAN,
            4 => f64::INFINITY,
            _ if r % 4 == 0 && r > 0 => -1.0,
            _ if r % 2 == 0 => -0.0,
            _ => 0.0,
        },
        false,
    );
    v
}

#[test]
fn f64_axis_reductions_match_numpy() {
    check(
        "f64_axis_reductions_match_numpy",
        &cases(&mut Rng::new(seed())),
    );
}

#[test]
fn f32_axis_reductions_match_numpy() {
    let cases: Vec<Case<f32>> = cases(&mut Rng::new(seed()))
        .into_iter()
        .filter(|c| c.name != "1e9 + noise") // not a number f32 holds apart
        .map(|c| Case {
            name: c.name,
            rows: c.rows,
            cols: c.cols,
            values: c.values.iter().map(|&v| v as f32).collect(),
            exact: c.exact,
        })
        .collect();
    check("f32_axis_reductions_match_numpy", &cases);
}

#[test]
fn integer_axis_reductions_match_numpy() {
    let cases: Vec<Case<i32>> = cases(&mut Rng::new(seed()))
        .into_iter()
        .filter(|c| c.values.iter().all(|v| v.is_finite() && v.abs() < 1e8))
        .map(|c| Case {
            name: c.name,
            rows: c.rows,
            cols: c.cols,
            // Quarters to integers: the exact cases stay exact.
            values: c.values.iter().map(|&v| (v * 4.0).round() as i32).collect(),
            exact: c.exact,
        })
        .collect();
    assert!(cases.len() >= 6, "the integer cases");
    check("integer_axis_reductions_match_numpy", &cases);
}

/// `.range(a..b)` counts rows: along axis 0 the columns of `x[a:b]`, along axis 1
/// `out[a:b]` alone.
#[test]
fn a_range_counts_rows() {
    let pool = pool_of(2, StartMethod::Fork);
    let (rows, cols) = (40, 6);
    let xs: Vec<f64> = (0..rows * cols).map(|i| (i * 37 % 101) as f64).collect();
    let x = SharedArray::from_slice_shaped(&xs, &[rows, cols]).expect("x");
    let mut by_column = SharedArray::zeroed(cols).expect("out");
    pool.bulk()
        .range(5..17)
        .sum_axis(&x, 0, &mut by_column)
        .expect("axis 0");
    for c in 0..cols {
        let want: f64 = (5..17).map(|r| xs[r * cols + c]).sum();
        assert_eq!(by_column[c], want, "column {c} of rows 5..17");
    }
    let mut at = SharedArray::zeroed(cols).expect("out");
    pool.bulk()
        .range(5..17)
        .argmax_axis(&x, 0, &mut at)
        .expect("argmax");
    assert!(
        at.iter().all(|&r| (5..17).contains(&(r as usize))),
        "indices into the whole array"
    );
    let mut by_row = SharedArray::filled(rows, -1.0).expect("out");
    pool.bulk()
        .range(5..17)
        .mean_axis(&x, 1, &mut by_row)
        .expect("axis 1");
    for r in 0..rows {
        let want = if (5..17).contains(&r) {
            xs[r * cols..(r + 1) * cols].iter().sum::<f64>() / cols as f64
        } else {
            -1.0
        };
        assert_eq!(by_row[r], want, "row {r}");
    }
    let e = pool
        .bulk()
        .range(5..41)
        .var_axis(&x, 0, 0, &mut by_column)
        .unwrap_err();
    assert!(matches!(e, Error::RangeOutOfBounds { .. }), "{e}");
    let e = pool
        .bulk()
        .range(9..9)
        .min_axis(&x, 0, &mut by_column)
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
}

/// What an axis form refuses, and how.
#[test]
fn bad_axes_and_outputs_are_typed_errors() {
    let pool = pool_of(2, StartMethod::Fork);
    let x = SharedArray::from_slice_shaped(&[1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]).expect("x");
    let mut three = SharedArray::zeroed(3).expect("out");
    let mut two = SharedArray::zeroed(2).expect("out");
    let e = pool.bulk().sum_axis(&x, 2, &mut three).unwrap_err();
    assert!(
        matches!(e, Error::InvalidArgument { name: "axis", .. }),
        "{e}"
    );
    let e = pool.bulk().sum_axis(&x, 0, &mut two).unwrap_err();
    assert!(
        matches!(e, Error::InvalidArgument { name: "out", .. }),
        "{e}"
    );
    assert!(e.to_string().contains("2 × 3"), "{e}");
    let flat = SharedArray::from_slice(&[1.0f64, 2.0]).expect("1-D");
    let e = pool.bulk().mean_axis(&flat, 0, &mut two).unwrap_err();
    assert!(matches!(e, Error::Dimensionality { axes: 2, .. }), "{e}");
    pool.bulk()
        .var_axis(&x, 1, 0, &mut two)
        .expect("var along rows");
    assert_eq!(&two[..], &[2.0 / 3.0, 2.0 / 3.0]);
    let empty = SharedArray::<f64>::zeroed(0)
        .expect("empty")
        .reshape(&[0, 3])
        .expect("0 × 3");
    let e = pool.bulk().max_axis(&empty, 0, &mut three).unwrap_err();
    assert!(e.to_string().contains("no identity"), "{e}");
    pool.bulk()
        .sum_axis(&empty, 0, &mut three)
        .expect("a sum of nothing");
    assert_eq!(&three[..], &[0.0; 3]);
    pool.bulk()
        .mean_axis(&empty, 0, &mut three)
        .expect("a mean of nothing");
    assert!(three.iter().all(|v| v.is_nan()));
}

/// The pipeline: column sums of a 6144 × 512 array of ones, folded over
/// rows with a `[f64; 512]` accumulator. As `fold_reduce`, with a kernel that took
/// its slice for a row, the default chunk length (64 rows) gave 96: each chunk
/// added its first row alone. That call is now refused; `fold_rows` and
/// `sum_axis` give 6144 at every chunk length.
#[test]
fn column_sums_through_a_fold_are_right_or_refused() {
    const COLS: usize = 512;
    let pool = pool_of(2, StartMethod::Fork);
    let x = SharedArray::<f64>::filled(6144 * COLS, 1.0)
        .expect("x")
        .reshape(&[6144, COLS])
        .expect("2-D");
    let add = |mut a: [f64; COLS], b: [f64; COLS]| {
        a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
        a
    };
    let row_kernel = |acc: &mut [f64; COLS], row: &[f64]| {
        for (a, v) in acc.iter_mut().zip(row) {
            *a += v;
        }
    };
    for bulk in [pool.bulk(), pool.bulk().chunk_len(COLS)] {
        let e = bulk
            .fold_reduce(&x, [0.0; COLS], row_kernel, add)
            .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument { .. }), "{e}");
        assert!(e.to_string().contains("fold_rows"), "{e}");
    }
    for chunk in [None, Some(1), Some(7), Some(64), Some(6144)] {
        let bulk = chunk.map_or(pool.bulk(), |n| pool.bulk().chunk_len(n));
        let sums = bulk
            .fold_rows(&x, [0.0; COLS], row_kernel, add)
            .expect("fold_rows");
        assert!(
            sums.iter().all(|&s| s == 6144.0),
            "fold_rows, chunk {chunk:?}: {}",
            sums[0]
        );
        let mut out = SharedArray::zeroed(COLS).expect("out");
        bulk.sum_axis(&x, 0, &mut out).expect("sum_axis");
        assert!(
            out.iter().all(|&s| s == 6144.0),
            "sum_axis, chunk {chunk:?}"
        );
    }
    // A 1-D array still folds, in chunks of elements.
    let flat = SharedArray::<f64>::filled(1000, 1.0).expect("flat");
    let n = pool
        .bulk()
        .fold_reduce(
            &flat,
            0.0,
            |acc: &mut f64, xs: &[f64]| *acc += xs.len() as f64,
            |a, b| a + b,
        )
        .expect("1-D fold");
    assert_eq!(n, 1000.0);
}

/// `fold_rows` with the kernel `sum_axis` uses gives its bits at the same chunk
/// length: each chunk adds its rows in order, the partials in the fixed tree.
#[test]
fn fold_rows_folds_in_the_documented_order() {
    let pool = pool_of(3, StartMethod::Spawn);
    let mut rng = Rng::new(seed());
    let (rows, cols) = (1001, 4);
    let xs: Vec<f64> = (0..rows * cols).map(|_| 1e3 * unit(&mut rng)).collect();
    let x = SharedArray::from_slice_shaped(&xs, &[rows, cols]).expect("x");
    for chunk in [1, 10, 333] {
        let folded = pool
            .bulk()
            .chunk_len(chunk)
            .fold_rows(
                &x,
                [0.0; 4],
                |acc: &mut [f64; 4], row: &[f64]| {
                    for (a, v) in acc.iter_mut().zip(row) {
                        *a += v;
                    }
                },
                |mut a, b| {
                    a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                    a
                },
            )
            .expect("fold_rows");
        let mut out = SharedArray::zeroed(cols).expect("out");
        pool.bulk()
            .chunk_len(chunk)
            .sum_axis(&x, 0, &mut out)
            .expect("sum_axis");
        let bits = |v: &[f64]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&folded), bits(&out), "chunk {chunk} (seed {})", seed());
        // The documented order, computed here: chunks in sequence, the tree.
        let mut partials: Vec<[f64; 4]> = xs
            .chunks(chunk * cols)
            .map(|c| {
                let mut acc = [0.0; 4];
                for row in c.chunks(cols) {
                    for (a, v) in acc.iter_mut().zip(row) {
                        *a += v;
                    }
                }
                acc
            })
            .collect();
        let mut step = 1;
        while step < partials.len() {
            let mut i = 0;
            while i + step < partials.len() {
                let r = partials[i + step];
                partials[i].iter_mut().zip(r).for_each(|(a, b)| *a += b);
                i += 2 * step;
            }
            step *= 2;
        }
        assert_eq!(
            bits(&folded),
            bits(&partials[0]),
            "chunk {chunk}: the documented order"
        );
    }
    // A kernel of parameters.
    let big_rows = pool
        .bulk()
        .with(0.0f64)
        .fold_rows(
            &x,
            0u64,
            |t: &f64, n: &mut u64, row: &[f64]| *n += u64::from(row[0] > *t),
            |a, b| a + b,
        )
        .expect("with parameters");
    assert_eq!(
        big_rows,
        (0..rows).filter(|r| xs[r * cols] > 0.0).count() as u64
    );
    let e = pool
        .bulk()
        .fold_rows(
            &SharedArray::<f64>::zeroed(3).expect("1-D"),
            0u64,
            |n: &mut u64, _: &[f64]| *n += 1,
            |a, b| a + b,
        )
        .unwrap_err();
    assert!(matches!(e, Error::Dimensionality { axes: 2, .. }), "{e}");
}
