//! `sum`, `mean`, `var` and `std` of whole arrays, in numpy's default accumulator
//! and with `dtype=` (`pool.bulk().dtype::<A>()`), against numpy itself
//! (`tests/common/numpy.rs`), on adversarial data: empty and one-element arrays,
//! ±0, ±inf, NaN, ties, lengths that are not a multiple of the chunk, a large mean
//! over a small spread (`1e9 + noise`, catastrophic cancellation for a one-pass
//! formula), tiny and huge magnitudes (squares that underflow, or overflow to
//! numpy's infinity), `f64`, `f32` and integers (wrapping sums, `i64` and `f64`
//! accumulators), at the default chunk length and at 1, 7 and 1000.
//!
//! Integer results (sums of integers) must equal numpy's; non-finite results must
//! be numpy's (the same infinity, or NaN); means, variances and standard
//! deviations must lie within the bounds stated in `tests/common/moments.rs`, and
//! equal numpy's to the bit where numpy's answer is exact (integer-valued data
//! with a representable mean). The variance is also checked against a compensated
//! reference within shmpool's own, tighter bound.

use shmpool::npy::NpyElement;
use shmpool::{Bulk, DefaultDtype, MeanIn, Number, Pool, SharedArray, StartMethod, SumIn};

#[macro_use]
mod common;
#[path = "common/moments.rs"]
mod moments;

use common::numpy::{Numpy, assert_sum_close};
use common::{Rng, pool_of};
use moments::{
    Moments, mean_tolerance, numpy_pairwise_depth, ours_relative, same_special, std_tolerance,
    var_tolerance,
};

/// This run's seed: `STATS_SEED`, or a fixed one. Printed in every failure.
fn seed() -> u64 {
    std::env::var("STATS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0025)
}

/// Uniform in [-1, 1).
fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// `values` in an order of `rng`'s.
fn shuffled<T>(rng: &mut Rng, mut values: Vec<T>) -> Vec<T> {
    for i in (1..values.len()).rev() {
        values.swap(i, rng.below(i as u64 + 1) as usize);
    }
    values
}

/// An element type under test, and its unit roundoff where it is its own
/// accumulator (floats).
trait Elem: Number + NpyElement + std::fmt::Debug
where
    DefaultDtype: SumIn<Self> + MeanIn<Self>,
    f64: SumIn<Self, Acc = f64> + MeanIn<Self, Acc = f64>,
{
    /// The unit roundoff of numpy's default mean accumulator for this type.
    const EPS: f64;
    /// Whether it is an integer type.
    const INTEGER: bool;
}
impl Elem for f64 {
    const EPS: f64 = f64::EPSILON / 2.0;
    const INTEGER: bool = false;
}
impl Elem for f32 {
    const EPS: f64 = f32::EPSILON as f64 / 2.0;
    const INTEGER: bool = false;
}
macro_rules! integer_elem {
    ($($t:ty),*) => {$(
        impl Elem for $t {
            const EPS: f64 = f64::EPSILON / 2.0;
            const INTEGER: bool = true;
        }
    )*};
}
integer_elem!(i8, i32, i64, u8);

const EPS64: f64 = f64::EPSILON / 2.0;

/// One array of a test, and whether numpy's mean and variance of it are exact.
struct Case<T> {
    name: &'static str,
    values: Vec<T>,
    exact: bool,
}

fn case<T>(name: &'static str, values: Vec<T>, exact: bool) -> Case<T> {
    Case {
        name,
        values,
        exact,
    }
}

/// numpy's answers for every case, in the order of [`ours`]: floats, then the
/// integer sums.
const SCRIPT: &str = "
import warnings
warnings.simplefilter('ignore')
for i in range(int(load('count')[0])):
    x = load('x%d' % i)
    f = [np.mean(x), np.mean(x, dtype=np.float64)]
    for d in (0, 1):
        f += [np.var(x, ddof=d), np.std(x, ddof=d),
              np.var(x, ddof=d, dtype=np.float64), np.std(x, ddof=d, dtype=np.float64)]
    f += [np.sum(x) if x.dtype.kind == 'f' else 0.0, np.sum(x, dtype=np.float64)]
    save('f%d' % i, np.array([float(v) for v in f]))
    if x.dtype.kind in 'iu':
        wide = np.int64 if x.dtype.kind == 'i' else np.uint64
        ints = [int(np.sum(x, dtype=x.dtype)), int(np.sum(x, dtype=wide))]
    else:
        ints = [0, 0]
    save('i%d' % i, np.array(ints, dtype=np.int64))
";

/// What numpy's float results are: `(name, which accumulator's ε, ddof)`.
const FLOATS: [(&str, bool, Option<usize>); 12] = [
    ("mean", false, None),
    ("mean (dtype f64)", true, None),
    ("var ddof 0", false, Some(0)),
    ("std ddof 0", false, Some(0)),
    ("var ddof 0 (dtype f64)", true, Some(0)),
    ("std ddof 0 (dtype f64)", true, Some(0)),
    ("var ddof 1", false, Some(1)),
    ("std ddof 1", false, Some(1)),
    ("var ddof 1 (dtype f64)", true, Some(1)),
    ("std ddof 1 (dtype f64)", true, Some(1)),
    ("sum", false, None),
    ("sum (dtype f64)", true, None),
];

/// shmpool's float answers, in the order of [`SCRIPT`]'s.
fn ours<T: Elem>(bulk: Bulk<'_>, x: &SharedArray<T>) -> Vec<f64>
where
    DefaultDtype: SumIn<T> + MeanIn<T>,
    f64: SumIn<T, Acc = f64> + MeanIn<T, Acc = f64>,
{
    let f = |r: shmpool::Result<f64>| r.expect("reduction");
    let wide = bulk.dtype::<f64>();
    let mut floats = vec![f(bulk.mean(x).map(Number::to_f64)), f(wide.mean(x))];
    for ddof in [0, 1] {
        floats.extend([
            f(bulk.var(x, ddof).map(Number::to_f64)),
            f(bulk.std(x, ddof).map(Number::to_f64)),
            f(wide.var(x, ddof)),
            f(wide.std(x, ddof)),
        ]);
    }
    let native = bulk.sum(x).expect("sum").to_f64();
    floats.push(if T::INTEGER { 0.0 } else { native });
    floats.push(f(wide.sum(x)));
    floats
}

/// Checks shmpool's float answers for `values` against numpy's `want`, at a
/// chunk length of `chunk` (`None`: the default, bounded by the array's length).
fn check_floats<T: Elem>(
    values: &[T],
    got: &[f64],
    want: &[f64],
    chunk: Option<usize>,
    exact: bool,
    what: &str,
) where
    DefaultDtype: SumIn<T> + MeanIn<T>,
    f64: SumIn<T, Acc = f64> + MeanIn<T, Acc = f64>,
{
    let xs: Vec<f64> = values.iter().map(|v| v.to_f64()).collect();
    let n = xs.len();
    let finite = xs.iter().all(|v| v.is_finite());
    let m = (n > 0 && finite).then(|| Moments::of(&xs));
    // The longest run of sequential additions: a chunk's lane.
    let chunk_len = chunk.unwrap_or(n).clamp(1, n.max(1));
    let lane = chunk_len.div_ceil(16);
    let partials = n.div_ceil(chunk_len);
    for (k, &(name, wide, ddof)) in FLOATS.iter().enumerate() {
        if T::INTEGER && k == 10 {
            continue; // integer sums are compared exactly, below
        }
        let (g, w) = (got[k], want[k]);
        let ctx = format!(
            "{what}: {name}: shmpool {g:e}, numpy {w:e} (seed {})",
            seed()
        );
        if !w.is_finite() || m.is_none() || ddof.is_some_and(|d| d >= n) {
            assert!(same_special(g, w), "{ctx}");
            continue;
        }
        let m = m.expect("moments");
        let eps = if wide { EPS64 } else { T::EPS };
        if exact && k < 10 {
            assert_eq!(
                g, w,
                "{ctx}: numpy's answer is exact, shmpool's must be too"
            );
        }
        match (name.starts_with("sum"), ddof) {
            (true, _) => assert_sum_close(g, w, n, m.abs_sum, eps, &ctx),
            (false, None) => {
                let tol = mean_tolerance(&m, eps);
                assert!((g - w).abs() <= tol, "{ctx}: off by more than {tol:e}");
            }
            (false, Some(d)) => {
                let ours = ours_relative(lane, partials, eps);
                let depth = numpy_pairwise_depth(n);
                let var_tol = var_tolerance(&m, d, ours, depth, eps);
                if name.starts_with("var") {
                    assert!(
                        (g - w).abs() <= var_tol,
                        "{ctx}: off by more than {var_tol:e}"
                    );
                    // Against the compensated reference, shmpool's own bound.
                    let exact_var = m.var(d);
                    let own = ours * m.m2 / (n - d) as f64 + 8.0 * eps * exact_var;
                    assert!(
                        (g - exact_var).abs() <= own,
                        "{ctx}: {:e} from the reference {exact_var:e}, beyond shmpool's bound {own:e}",
                        (g - exact_var).abs()
                    );
                } else {
                    let tol = std_tolerance(g, w, var_tol, eps);
                    assert!((g - w).abs() <= tol, "{ctx}: off by more than {tol:e}");
                }
            }
        }
    }
}

/// Runs every case through numpy once, and through shmpool at each chunk length.
fn compare<T: Elem>(
    pool: &Pool,
    test: &str,
    cases: &[Case<T>],
    int_sums: impl Fn(Bulk<'_>, &SharedArray<T>) -> [i64; 2],
) where
    DefaultDtype: SumIn<T> + MeanIn<T>,
    f64: SumIn<T, Acc = f64> + MeanIn<T, Acc = f64>,
{
    let Some(np) = Numpy::get(test) else { return };
    np.save("count", &[cases.len() as u64]);
    for (i, c) in cases.iter().enumerate() {
        np.save(&format!("x{i}"), &c.values);
    }
    np.run(SCRIPT);
    for (i, c) in cases.iter().enumerate() {
        let want: Vec<f64> = np.load(&format!("f{i}"));
        let want_ints: Vec<i64> = np.load(&format!("i{i}"));
        let x = SharedArray::from_slice(&c.values).expect("array");
        for chunk in [None, Some(1), Some(7), Some(1000)] {
            if chunk == Some(1) && c.values.len() > 200_000 {
                continue;
            }
            let bulk = match chunk {
                Some(len) => pool.bulk().chunk_len(len),
                None => pool.bulk(),
            };
            let what = format!(
                "{test}: {} (n = {}, chunk {chunk:?})",
                c.name,
                c.values.len()
            );
            let got = ours(bulk, &x);
            check_floats(&c.values, &got, &want, chunk, c.exact, &what);
            if T::INTEGER {
                assert_eq!(
                    int_sums(bulk, &x),
                    [want_ints[0], want_ints[1]],
                    "{what}: integer sums [in the element type, widened] (seed {})",
                    seed()
                );
            }
        }
    }
}

/// Cases of `f64` data (scaled for `f32` by [`f32_cases`]).
fn f64_cases(rng: &mut Rng) -> Vec<Case<f64>> {
    let random = |rng: &mut Rng, n: usize, scale: f64, offset: f64| -> Vec<f64> {
        (0..n).map(|_| offset + scale * unit(rng)).collect()
    };
    let symmetric: Vec<f64> = (-50_000..=50_000).map(|v| 1e6 + f64::from(v)).collect();
    let halves: Vec<f64> = (0..50_000).map(f64::from).collect();
    let mut signed_zeros = vec![0.0, -0.0];
    signed_zeros.extend([-0.0; 15]);
    vec![
        case("empty", vec![], true),
        case("one element", vec![3.5], true),
        case("two elements", vec![-1.0, 2.0], true),
        case("signed zeros", signed_zeros, true),
        case("ties", vec![2.25; 17], true),
        case("sixteen", random(rng, 16, 1.0, 0.0), false),
        case("thirty-three", random(rng, 33, 1.0, 0.0), false),
        case("uniform", random(rng, 100_003, 1.0, 0.0), false),
        case("1e9 + noise", random(rng, 65_537, 1.0, 1e9), false),
        case("1e9 + tiny noise", random(rng, 4099, 1e-3, 1e9), false),
        case(
            "1e15 + integers",
            (0..3001).map(|i| 1e15 + f64::from(i % 17)).collect(),
            false,
        ),
        case("integers around 1e6", shuffled(rng, symmetric), true),
        case("half-integer mean", shuffled(rng, halves), true),
        case("tiny", random(rng, 1000, 1e-150, 0.0), false),
        case(
            "subnormal",
            (0..999)
                .map(|i| f64::from_bits(1 + (i % 5) as u64 * 1000))
                .collect(),
            false,
        ),
        case(
            "huge, squares overflow",
            random(rng, 1000, 1e200, 0.0),
            false,
        ),
        case("huge, squares do not", random(rng, 1000, 1e150, 0.0), false),
        case("sum overflows", vec![1e308, 1e308, 1e308], false),
        case("a NaN", vec![1.0, f64::NAN, 3.0], false),
        case("+inf", vec![1.0, f64::INFINITY, 3.0], false),
        case("±inf", vec![f64::NEG_INFINITY, 2.0, f64::INFINITY], false),
        case("many", random(rng, (1 << 20) + 3, 10.0, -3.0), false),
    ]
}

/// `f64` cases in `f32`, rescaled so that they keep their point.
fn f32_cases(rng: &mut Rng) -> Vec<Case<f32>> {
    let random = |rng: &mut Rng, n: usize, scale: f64, offset: f64| -> Vec<f32> {
        (0..n)
            .map(|_| (offset + scale * unit(rng)) as f32)
            .collect()
    };
    let symmetric: Vec<f32> = (-60..=60).map(|v| 1000.0 + v as f32).collect();
    vec![
        case("empty", vec![], true),
        case("one element", vec![-0.75], true),
        case("signed zeros", vec![-0.0, 0.0, -0.0], true),
        case("ties", vec![0.5; 40], true),
        case("uniform", random(rng, 100_003, 1.0, 0.0), false),
        case("1e4 + noise", random(rng, 70_001, 1.0, 1e4), false),
        case("integers around 1000", shuffled(rng, symmetric), true),
        case("tiny", random(rng, 500, 1e-18, 0.0), false),
        case("huge, squares overflow", random(rng, 500, 1e30, 0.0), false),
        case("a NaN", vec![f32::NAN, 1.0], false),
        case("-inf", vec![1.0, f32::NEG_INFINITY], false),
        case("many", random(rng, (1 << 20) + 5, 3.0, 1.0), false),
    ]
}

#[test]
fn f64_statistics_match_numpy() {
    let pool = pool_of(2, StartMethod::Fork);
    let cases = f64_cases(&mut Rng::new(seed()));
    compare(&pool, "f64_statistics_match_numpy", &cases, |_, _| [0, 0]);
}

#[test]
fn f32_statistics_match_numpy() {
    let pool = pool_of(2, StartMethod::Fork);
    let cases = f32_cases(&mut Rng::new(seed()));
    compare(&pool, "f32_statistics_match_numpy", &cases, |_, _| [0, 0]);
}

#[test]
fn integer_statistics_match_numpy() {
    let pool = pool_of(2, StartMethod::Fork);
    let mut rng = Rng::new(seed());
    let symmetric: Vec<i32> = (-30_000..=30_000).map(|v| v * 3 + 7).collect();
    let i32s = vec![
        case("empty", vec![], true),
        case("one element", vec![-9], true),
        case(
            "uniform",
            (0..100_003)
                .map(|_| rng.below(2001) as i32 - 1000)
                .collect(),
            false,
        ),
        case("symmetric around 7", shuffled(&mut rng, symmetric), true),
        case("extremes", vec![i32::MAX, i32::MIN, i32::MAX, 5], false),
    ];
    compare(
        &pool,
        "integer_statistics_match_numpy (i32)",
        &i32s,
        |b, x| {
            [
                i64::from(b.sum(x).expect("sum")),
                b.dtype::<i64>().sum(x).expect("i64 sum"),
            ]
        },
    );
    let u8s = vec![
        case(
            "wrapping",
            (0..70_001).map(|_| rng.below(256) as u8).collect(),
            false,
        ),
        case("ties", vec![255u8; 1000], true),
    ];
    compare(
        &pool,
        "integer_statistics_match_numpy (u8)",
        &u8s,
        |b, x| {
            [
                i64::from(b.sum(x).expect("sum")),
                b.dtype::<u64>().sum(x).expect("u64 sum") as i64,
            ]
        },
    );
    let i8s = vec![case(
        "wrapping",
        (0..10_007).map(|_| rng.below(256) as u8 as i8).collect(),
        false,
    )];
    compare(
        &pool,
        "integer_statistics_match_numpy (i8)",
        &i8s,
        |b, x| {
            [
                i64::from(b.sum(x).expect("sum")),
                b.dtype::<i64>().sum(x).expect("i64 sum"),
            ]
        },
    );
    // Beyond 2^53: numpy and shmpool round each element to f64 alike.
    let i64s = vec![case(
        "beyond f64's mantissa",
        (0..5003)
            .map(|_| (1i64 << 60) + rng.below(1 << 20) as i64 - (1 << 19))
            .collect(),
        false,
    )];
    compare(
        &pool,
        "integer_statistics_match_numpy (i64)",
        &i64s,
        |b, x| {
            [
                b.sum(x).expect("sum"),
                b.dtype::<i64>().sum(x).expect("i64 sum"),
            ]
        },
    );
}

/// `.range(a..b)` reduces the slice `x[a..b]`, as numpy's `x[a:b]`.
#[test]
fn a_range_reduces_the_slice() {
    let Some(np) = Numpy::get("a_range_reduces_the_slice") else {
        return;
    };
    let pool = pool_of(3, StartMethod::Fork);
    let mut rng = Rng::new(seed());
    let xs: Vec<f64> = (0..50_000).map(|_| 1e6 + unit(&mut rng)).collect();
    np.save("x", &xs);
    np.run(
        "x = load('x')\n\
         save('r', np.array([np.mean(x[123:45678]), np.var(x[123:45678], ddof=1), np.sum(x[0:0])]))",
    );
    let want: Vec<f64> = np.load("r");
    let x = SharedArray::from_slice(&xs).expect("x");
    let bulk = pool.bulk().range(123..45_678);
    let m = Moments::of(&xs[123..45_678]);
    let n = m.n;
    let mean = bulk.mean(&x).expect("mean");
    assert!(
        (mean - want[0]).abs() <= mean_tolerance(&m, EPS64),
        "mean of a range: {mean} vs {}",
        want[0]
    );
    let var = bulk.var(&x, 1).expect("var");
    let tol = var_tolerance(
        &m,
        1,
        ours_relative(n.div_ceil(16), n, EPS64),
        numpy_pairwise_depth(n),
        EPS64,
    );
    assert!(
        (var - want[1]).abs() <= tol,
        "var of a range: {var} vs {}",
        want[1]
    );
    assert_eq!(
        pool.bulk().range(7..7).sum(&x).expect("empty range"),
        want[2]
    );
    assert!(
        pool.bulk()
            .range(7..7)
            .mean(&x)
            .expect("empty range")
            .is_nan()
    );
    assert!(matches!(
        pool.bulk().range(10..60_000).var(&x, 0),
        Err(shmpool::Error::RangeOutOfBounds { .. })
    ));
}

/// A one-pass formula over a large mean (`Σx² − (Σx)²/n`) loses every digit; a
/// plain two-pass one in `f32` loses most. shmpool's variance of `1e9 + k` for
/// `k` in a small set is exact (the data and mean are on a grid), and of `1e9 +
/// noise` within its bound of a compensated reference, whatever the chunks.
#[test]
fn a_large_mean_costs_no_digits() {
    let pool = pool_of(2, StartMethod::Fork);
    let xs: Vec<f64> = (0..1_000_000).map(|i| 1e9 + f64::from(i % 4)).collect();
    let x = SharedArray::from_slice(&xs).expect("x");
    // Mean 1e9 + 1.5, deviations ±0.5 and ±1.5: variance 1.25 exactly.
    for chunk in [3, 1000, 65_536] {
        assert_eq!(
            pool.bulk().chunk_len(chunk).var(&x, 0).expect("var"),
            1.25,
            "chunk {chunk}"
        );
    }
    assert_eq!(pool.bulk().var(&x, 0).expect("var"), 1.25);
    let mut rng = Rng::new(seed());
    let ys: Vec<f64> = (0..300_001).map(|_| 1e9 + 1e-3 * unit(&mut rng)).collect();
    let y = SharedArray::from_slice(&ys).expect("y");
    let m = Moments::of(&ys);
    let got = pool.bulk().var(&y, 0).expect("var");
    let bound =
        ours_relative(ys.len().div_ceil(16), ys.len(), EPS64) * m.var(0) + 8.0 * EPS64 * m.var(0);
    assert!(
        (got - m.var(0)).abs() <= bound,
        "var of 1e9 + noise: {got:e}, reference {:e} (seed {})",
        m.var(0),
        seed()
    );
    // The naive formula on the same data is off by orders of magnitude more.
    let (s, s2) = ys.iter().fold((0.0, 0.0), |(s, s2), v| (s + v, s2 + v * v));
    let naive = (s2 - s * s / ys.len() as f64) / ys.len() as f64;
    assert!(
        (naive - m.var(0)).abs() > 1e6 * bound,
        "the data must defeat the naive formula"
    );
}

/// `ddof >= n` gives what numpy's division by `max(n − ddof, 0)` gives.
#[test]
fn ddof_at_or_beyond_the_count() {
    let pool = pool_of(2, StartMethod::Fork);
    let x = SharedArray::from_slice(&[1.0f64, 2.0, 4.0]).expect("x");
    assert_eq!(pool.bulk().var(&x, 3).expect("var"), f64::INFINITY);
    assert_eq!(pool.bulk().var(&x, 7).expect("var"), f64::INFINITY);
    let one = SharedArray::from_slice(&[5.0f32]).expect("one");
    assert!(pool.bulk().var(&one, 1).expect("var").is_nan()); // 0 / 0
    assert_eq!(pool.bulk().var(&one, 0).expect("var"), 0.0);
    let empty = SharedArray::<i16>::zeroed(0).expect("empty");
    assert!(pool.bulk().std(&empty, 0).expect("std").is_nan());
    assert_eq!(pool.bulk().sum(&empty).expect("sum"), 0);
}

/// numpy's `dtype=` names the accumulator and the result's type, and it changes
/// the answer where the element type cannot hold the sum.
#[test]
fn the_accumulator_is_the_result_type() {
    let pool = pool_of(2, StartMethod::Fork);
    let x = SharedArray::from_slice(&[100u8, 100, 100]).expect("x");
    let native: u8 = pool.bulk().sum(&x).expect("u8");
    let wide: u64 = pool.bulk().dtype::<u64>().sum(&x).expect("u64");
    let signed: i64 = pool.bulk().dtype::<i64>().sum(&x).expect("i64");
    let float: f64 = pool.bulk().dtype::<f64>().sum(&x).expect("f64");
    assert_eq!((native, wide, signed, float), (44, 300, 300, 300.0));
    // 2^24 + 2 ones: in f64 every order of the additions is exact.
    let y = SharedArray::try_from_iter((0..(1 << 24) + 2).map(|_| 1.0f32)).expect("y");
    assert_eq!(
        pool.bulk().dtype::<f64>().sum(&y).expect("f64"),
        16_777_218.0
    );
    assert_eq!(pool.bulk().dtype::<f64>().mean(&y).expect("f64"), 1.0);
    let z: f32 = pool.bulk().dtype::<f32>().mean(&x).expect("mean in f32");
    assert_eq!(z, 100.0);
}

/// Every bulk reduction's result, with `.chunk_len(n)` and without, stays a
/// [`Bulk`]'s (the type parameter carries the accumulator through the options).
#[test]
fn options_carry_the_accumulator() {
    let pool = pool_of(2, StartMethod::Fork);
    let x = SharedArray::try_from_iter((0..10_000).map(|i| (i % 251) as u8)).expect("x");
    let b = pool.bulk().dtype::<u64>().chunk_len(77).range(10..9_990);
    let want: u64 = (10..9_990u64).map(|i| i % 251).sum();
    assert_eq!(b.sum(&x).expect("sum"), want);
    assert_eq!(b.nansum(&x).expect("nansum"), want);
}
