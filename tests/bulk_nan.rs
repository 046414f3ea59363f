//! The NaN-aware reductions (`nansum`, `nanmean`, `nanmin`, `nanmax`,
//! `nanargmin`, `nanargmax`) and what `min`, `max`, `argmin` and `argmax` do
//! with NaNs, against numpy itself (`tests/common/numpy.rs`): NaNs first, last,
//! in every lane, on chunk boundaries, everywhere; NaNs with infinities (numpy's
//! `nanargmin([nan, inf])` is 0: it fills NaNs with +inf); ±0, ties; empty arrays;
//! `f64`, `f32` and integers; at the default chunk length and at 1, 7 and 1000.
//!
//! Extremes and indices must equal numpy's (a NaN equals a NaN; the sign of a
//! zero extreme is not compared, see `same_value`); where numpy raises, shmpool
//! must return `None` (an empty array) or `Error::AllNan` (`nanargmin` of NaNs
//! only); where numpy warns and returns NaN, shmpool returns NaN. Sums and means
//! must lie within the bounds of `tests/common/moments.rs`.

use shmpool::npy::NpyElement;
use shmpool::{Bulk, DefaultDtype, Error, MeanIn, Number, SharedArray, StartMethod, SumIn};

#[macro_use]
mod common;
#[path = "common/moments.rs"]
mod moments;

use common::numpy::{Numpy, assert_sum_close, same_value};
use common::{Rng, pool_of};
use moments::{Moments, mean_tolerance};

fn seed() -> u64 {
    std::env::var("NAN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0025_0001)
}

/// numpy's answers for every array: `f` the sums, means and extremes, `e` the
/// indices (-1 where numpy raised), `r` whether each extreme or index raised.
const SCRIPT: &str = "
import warnings
warnings.simplefilter('ignore')
for i in range(int(load('count')[0])):
    x = load('x%d' % i)
    f = [np.nansum(x), np.nansum(x, dtype=np.float64), np.nanmean(x),
         np.nanmean(x, dtype=np.float64)]
    e, r = [], []
    for fn in (np.nanmin, np.nanmax, np.min, np.max):
        try:
            f.append(fn(x)); r.append(0)
        except ValueError:
            f.append(0.0); r.append(1)
    for fn in (np.nanargmin, np.nanargmax, np.argmin, np.argmax):
        try:
            e.append(int(fn(x))); r.append(0)
        except ValueError:
            e.append(-1); r.append(1)
    save('f%d' % i, np.array([float(v) for v in f]))
    save('e%d' % i, np.array(e, dtype=np.int64))
    save('r%d' % i, np.array(r, dtype=np.int64))
";

/// An element type under test.
trait Elem: Number + NpyElement + std::fmt::Debug {
    /// Unit roundoff of its own sums (integers: exact, within `f64`'s).
    const EPS: f64;
}
impl Elem for f64 {
    const EPS: f64 = f64::EPSILON / 2.0;
}
impl Elem for f32 {
    const EPS: f64 = f32::EPSILON as f64 / 2.0;
}
impl Elem for i32 {
    const EPS: f64 = 0.0;
}

fn check<T: Elem>(test: &str, cases: &[(&str, Vec<T>)])
where
    DefaultDtype: SumIn<T> + MeanIn<T>,
    f64: SumIn<T, Acc = f64> + MeanIn<T, Acc = f64>,
{
    let Some(np) = Numpy::get(test) else { return };
    np.save("count", &[cases.len() as u64]);
    for (i, (_, xs)) in cases.iter().enumerate() {
        np.save(&format!("x{i}"), xs);
    }
    np.run(SCRIPT);
    let pool = pool_of(2, StartMethod::ForkServer);
    for (i, (name, xs)) in cases.iter().enumerate() {
        let f: Vec<f64> = np.load(&format!("f{i}"));
        let e: Vec<i64> = np.load(&format!("e{i}"));
        let raised: Vec<i64> = np.load(&format!("r{i}"));
        let x = SharedArray::from_slice(xs).expect("array");
        let numbers: Vec<f64> = xs
            .iter()
            .map(|v| v.to_f64())
            .filter(|v| !v.is_nan())
            .collect();
        for chunk in [None, Some(1), Some(7), Some(1000)] {
            let bulk = match chunk {
                Some(n) => pool.bulk().chunk_len(n),
                None => pool.bulk(),
            };
            let what = format!(
                "{test}: {name} (n = {}, chunk {chunk:?}, seed {})",
                xs.len(),
                seed()
            );
            check_sums(bulk, &x, &numbers, &f, &what);
            let extremes = [
                bulk.nanmin(&x).expect("nanmin"),
                bulk.nanmax(&x).expect("nanmax"),
                bulk.min(&x).expect("min"),
                bulk.max(&x).expect("max"),
            ];
            for (k, (got, name)) in extremes
                .iter()
                .zip(["nanmin", "nanmax", "min", "max"])
                .enumerate()
            {
                match got {
                    None => assert!(
                        raised[k] == 1,
                        "{what}: {name} is None, numpy gives {}",
                        f[4 + k]
                    ),
                    Some(v) => {
                        assert!(raised[k] == 0, "{what}: {name} is {v:?}, numpy raised");
                        assert!(
                            same_value(v.to_f64(), f[4 + k]),
                            "{what}: {name} is {v:?}, numpy's {}",
                            f[4 + k]
                        );
                    }
                }
            }
            let indices = [
                bulk.nanargmin(&x),
                bulk.nanargmax(&x),
                bulk.argmin(&x),
                bulk.argmax(&x),
            ];
            for (k, (got, name)) in indices
                .into_iter()
                .zip(["nanargmin", "nanargmax", "argmin", "argmax"])
                .enumerate()
            {
                match got {
                    Ok(Some(at)) => assert_eq!(
                        (at as i64, raised[4 + k]),
                        (e[k], 0),
                        "{what}: {name} [index, numpy raised]"
                    ),
                    // An empty array: numpy raises, shmpool has no index.
                    Ok(None) => assert!(
                        xs.is_empty() && raised[4 + k] == 1,
                        "{what}: {name} is None"
                    ),
                    Err(Error::AllNan { len }) => assert!(
                        k < 2 && raised[4 + k] == 1 && len == xs.len() && numbers.is_empty(),
                        "{what}: {name} said all {len} elements are NaN"
                    ),
                    Err(other) => panic!("{what}: {name}: {other}"),
                }
            }
        }
    }
}

/// `nansum` and `nanmean`, native and in `f64`, against numpy's `f[0..4]`.
fn check_sums<T: Elem>(bulk: Bulk<'_>, x: &SharedArray<T>, numbers: &[f64], f: &[f64], what: &str)
where
    DefaultDtype: SumIn<T> + MeanIn<T>,
    f64: SumIn<T, Acc = f64> + MeanIn<T, Acc = f64>,
{
    let got = [
        bulk.nansum(x).expect("nansum").to_f64(),
        bulk.dtype::<f64>().nansum(x).expect("nansum in f64"),
        bulk.nanmean(x).expect("nanmean").to_f64(),
        bulk.dtype::<f64>().nanmean(x).expect("nanmean in f64"),
    ];
    let eps64 = f64::EPSILON / 2.0;
    for (k, name) in [
        "nansum",
        "nansum (dtype f64)",
        "nanmean",
        "nanmean (dtype f64)",
    ]
    .into_iter()
    .enumerate()
    {
        let (g, w) = (got[k], f[k]);
        let ctx = format!("{what}: {name}: shmpool {g:e}, numpy {w:e}");
        if !w.is_finite() || numbers.is_empty() || numbers.iter().any(|v| !v.is_finite()) {
            assert!(same_value(g, w), "{ctx}");
            continue;
        }
        let eps = if k % 2 == 1 || T::EPS == 0.0 {
            eps64
        } else {
            T::EPS
        };
        let m = Moments::of(numbers);
        if k < 2 {
            assert_sum_close(g, w, numbers.len(), m.abs_sum, eps, &ctx);
        } else {
            let tol = mean_tolerance(&m, eps);
            assert!((g - w).abs() <= tol, "{ctx}: off by more than {tol:e}");
        }
    }
}

/// `f64` arrays with NaNs in every position that matters, and `f32` copies.
fn nan_cases(rng: &mut Rng) -> Vec<(&'static str, Vec<f64>)> {
    let nan = f64::NAN;
    let (inf, ninf) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut sprinkled: Vec<f64> = (0..100_003)
        .map(|_| (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 200.0 - 100.0)
        .collect();
    for _ in 0..1000 {
        let i = rng.below(sprinkled.len() as u64) as usize;
        sprinkled[i] = nan;
    }
    // The extremes appear once each, after some NaNs, in a late chunk.
    sprinkled[77_777] = -1e6;
    sprinkled[88_888] = 1e6;
    let mut boundary: Vec<f64> = (0..30).map(f64::from).collect();
    for i in [6, 7, 13, 14, 20] {
        boundary[i] = nan;
    }
    let mut lanes = vec![nan; 40];
    lanes[33] = 5.0;
    lanes[17] = -5.0;
    vec![
        ("empty", vec![]),
        ("one NaN", vec![nan]),
        ("all NaN", vec![nan; 40]),
        ("NaN first", vec![nan, 3.0, -2.0, 8.0, -2.0]),
        (
            "NaN last, in the tail",
            (0..35)
                .map(|i| if i == 34 { nan } else { f64::from(i % 5) })
                .collect(),
        ),
        ("NaNs on chunk boundaries", boundary),
        ("numbers in two lanes of NaNs", lanes),
        ("NaN and +inf", vec![nan, inf]),
        ("NaN and -inf", vec![nan, ninf]),
        ("+inf and NaN", vec![inf, nan, inf]),
        ("infinities and NaN", vec![ninf, nan, inf, 0.0]),
        ("all +inf", vec![inf; 9]),
        ("signed zeros and NaN", vec![0.0, nan, -0.0, 0.0, -0.0]),
        ("ties after NaNs", vec![nan, nan, 1.0, 0.5, 0.5, 1.0, nan]),
        ("sprinkled", sprinkled),
    ]
}

#[test]
fn f64_nan_reductions_match_numpy() {
    let cases = nan_cases(&mut Rng::new(seed()));
    check("f64_nan_reductions_match_numpy", &cases);
}

#[test]
fn f32_nan_reductions_match_numpy() {
    let cases: Vec<(&str, Vec<f32>)> = nan_cases(&mut Rng::new(seed()))
        .into_iter()
        .map(|(name, xs)| (name, xs.into_iter().map(|v| v as f32).collect()))
        .collect();
    check("f32_nan_reductions_match_numpy", &cases);
}

/// Integers hold no NaN: every NaN form is its plain form.
#[test]
fn integer_nan_reductions_are_the_plain_ones() {
    let mut rng = Rng::new(seed());
    let cases = vec![
        ("empty", vec![]),
        ("one", vec![-4]),
        ("ties", vec![3, -1, 7, -1, 7]),
        (
            "uniform",
            (0..50_001)
                .map(|_| rng.below(1 << 20) as i32 - (1 << 19))
                .collect(),
        ),
    ];
    check("integer_nan_reductions_are_the_plain_ones", &cases);
}

/// numpy's quirk, kept: `nanargmin` fills NaNs with +inf, so where every number is
/// +inf the first NaN or +inf is the answer, and only NaNs alone are an error.
#[test]
fn nanargmin_fills_nans_as_numpy_does() {
    let pool = pool_of(2, StartMethod::Fork);
    let x = SharedArray::from_slice(&[f64::NAN, f64::INFINITY, f64::NAN]).expect("x");
    assert_eq!(pool.bulk().nanargmin(&x).expect("nanargmin"), Some(0));
    assert_eq!(pool.bulk().nanargmax(&x).expect("nanargmax"), Some(1));
    assert_eq!(pool.bulk().nanmin(&x).expect("nanmin"), Some(f64::INFINITY));
    let nans = SharedArray::from_slice(&[f32::NAN; 100]).expect("nans");
    for chunk in [1, 3, 64] {
        let e = pool.bulk().chunk_len(chunk).nanargmax(&nans).unwrap_err();
        assert!(matches!(e, Error::AllNan { len: 100 }), "{e}");
        assert!(e.to_string().contains("100 elements are NaN"), "{e}");
    }
    // A range of NaNs alone is all-NaN, though the array is not.
    let mixed = SharedArray::from_slice(&[1.0f64, f64::NAN, f64::NAN, 2.0]).expect("mixed");
    assert!(matches!(
        pool.bulk().range(1..3).nanargmin(&mixed),
        Err(Error::AllNan { len: 2 })
    ));
    assert_eq!(
        pool.bulk().range(1..4).nanargmin(&mixed).expect("range"),
        Some(3)
    );
}
