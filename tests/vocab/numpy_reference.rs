//! The built-in reductions against numpy itself, through the harness in
//! `tests/common/numpy.rs`, on adversarial data.
//!
//! - `np.histogram`: values on every edge of numpy's bins and one unit in the
//!   last place either side, the ends of the range and just past them, ±0, ±inf,
//!   NaN, for f64, f32 (numpy's float32 edges) and integers, on the ≤ 256-bin path
//!   and the general one, with ranges whose edges are not multiples of anything,
//!   and ranges numpy refuses, at every SIMD level and for 1 to 3 workers. Counts
//!   must be equal; where numpy raises, shmpool must return a typed error.
//! - `np.sum`, `np.dot`, `np.min`, `np.max`, `np.argmin`, `np.argmax`: ±0, ±inf,
//!   NaN, ties, empty and one-element arrays, lengths that are not a multiple of
//!   the chunk. Extremes and indices must be equal (a NaN equals a NaN; the sign
//!   of a zero extreme is not compared, see `same_value`); integer sums and dot
//!   products equal (they wrap); floating-point sums and dot products within
//!   `assert_sum_close`'s bound.

use std::fmt::Debug;

use shmpool::npy::NpyElement;
use shmpool::{Bins, Error, Number, Pod, SharedArray, Simd, StartMethod};

use super::{HistCase, numpy_histograms, seed, unit};
use crate::common::numpy::{Numpy, assert_sum_close, same_value};
use crate::common::{Rng, pool_of};

/// The next float up (toward +inf), as `f64::next_up` (Rust 1.86) does.
fn next_up(x: f64) -> f64 {
    if x.is_nan() || x == f64::INFINITY {
        x
    } else if x == 0.0 {
        f64::from_bits(1)
    } else if x > 0.0 {
        f64::from_bits(x.to_bits() + 1)
    } else {
        f64::from_bits(x.to_bits() - 1)
    }
}

fn next_down(x: f64) -> f64 {
    -next_up(-x)
}

fn next_up32(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        x
    } else if x == 0.0 {
        f32::from_bits(1)
    } else if x > 0.0 {
        f32::from_bits(x.to_bits() + 1)
    } else {
        f32::from_bits(x.to_bits() - 1)
    }
}

/// The histograms asked of every element type: `(bins, (lo, hi))`. Bins of 1 to
/// 2^20, on both sides of the 256-bin fast path; edges like `3 · 0.1`, which is
/// not `0.3`; edges a few units in the last place apart (`1e15` counts in eighths,
/// `1e4` in f32 in 1024ths), where shmpool takes numpy's own guess; subnormal and
/// huge ranges.
const CASES: &[(usize, (f64, f64))] = &[
    (10, (0.0, 1.0)),
    (2, (-1.0, 1.0)),
    (1000, (0.0, 1.0)),
    (5, (-2.0, 3.0)),
    (7, (-10.0, 35.5)),
    (256, (-100.0, 100.0)),
    (255, (-1.0, 1.0)),
    (257, (-1.0, 1.0)),
    (3000, (0.1, 0.7)),
    (3, (1e-300, 3e-300)),
    (100, (-1e10, 1e-10)),
    (13, (0.1, 0.300_000_000_000_000_04)),
    (1, (0.0, 8.0)),
    (64, (1e15, 1e15 + 12.8)),
    (49, (-7.3, -7.299_999)),
    (1 << 20, (0.0, 1.0)),
    (6, (0.0, 1e-320)),
    (6, (0.0, 1e-300)),
    (6, (0.0, 1e-40)),
    (500, (1e4, 1e4 + 1.0)),
    (11, (-3.4e38, 3.4e38)),
    // Refused by numpy (the width overflows, or the edges do not all differ), in
    // both precisions or in f32 alone.
    (4, (-1e308, 1e308)),
    (10, (1.0, 1.000_000_000_000_001)),
    (3, (0.0, 1e-323)),
    (10, (1.0, 1.0 + 1e-9)),
    (300, (1e7, 1e7 + 1.0)),
];

/// Values on, and one unit in the last place either side of, the edges of `bins`
/// bins over `(lo, hi)` as several formulas compute them (numpy's among them), the
/// ends and beyond, the specials, and random values over and around the range.
fn edge_values(rng: &mut Rng, bins: usize, (lo, hi): (f64, f64)) -> Vec<f64> {
    let width = hi - lo;
    let step = width / bins as f64;
    let mut v = vec![
        lo,
        hi,
        next_down(lo),
        next_up(lo),
        next_down(hi),
        next_up(hi),
        0.0,
        -0.0,
        1e-17,
        -1e-17,
        f64::MIN_POSITIVE,
        -f64::from_bits(1),
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        f64::MAX,
        f64::MIN,
    ];
    // Every edge for a few hundred bins, a sample of them beyond.
    let edges: Vec<usize> = if bins <= 400 {
        (0..=bins).collect()
    } else {
        (0..300)
            .map(|_| rng.below(bins as u64 + 1) as usize)
            .chain([0, 1, 2, bins - 2, bins - 1, bins])
            .collect()
    };
    for i in edges {
        let f = i as f64;
        for e in [
            f * step + lo,
            lo + width * f / bins as f64,
            f / bins as f64 * width + lo,
            lo + f * (width / bins as f64),
        ] {
            v.extend([e, next_up(e), next_down(e)]);
        }
    }
    let spread = if width.is_finite() { width } else { 1.0 };
    v.extend((0..200).map(|_| lo + (unit(rng) * 0.6 + 0.5) * spread));
    v
}

/// The same values as f32, each rounded to f32 and with its f32 neighbours (the
/// edges of numpy's float32 bins are the rounded f64 edges).
fn as_f32(values: &[f64]) -> Vec<f32> {
    values
        .iter()
        .flat_map(|&v| {
            let r = v as f32;
            [r, next_up32(r), -next_up32(-r)]
        })
        .collect()
}

/// Integers next to the values (floor and ceiling, ±1), clamped to `T`.
fn as_ints<T: TryFrom<i128> + Copy>(values: &[f64], min: i128, max: i128) -> Vec<T> {
    values
        .iter()
        .filter(|v| v.is_finite())
        .flat_map(|&v| {
            let f = v.floor().clamp(min as f64, max as f64) as i128;
            [f - 1, f, f + 1, f + 2]
        })
        .map(|i| i.clamp(min, max))
        .filter_map(|i| T::try_from(i).ok())
        .collect()
}

/// Our histogram of every case against numpy's, under several chunkings; an error
/// where numpy raised. `None` from numpy (not installed, not CI) skips.
fn check_histograms<T: Number + NpyElement + Pod + Debug>(
    pools: &[(String, shmpool::Pool)],
    what: &str,
    data: &[(Vec<T>, usize, (f64, f64))],
) {
    let cases: Vec<HistCase<'_, T>> = data.iter().map(|(x, b, r)| (&x[..], *b, *r)).collect();
    let Some(numpy) = numpy_histograms(&format!("histograms_match_numpy {what}"), &cases) else {
        return;
    };
    for ((x, bins, range), want) in data.iter().zip(numpy) {
        let x = SharedArray::from_slice(x).unwrap();
        for (k, (pool_name, pool)) in pools.iter().enumerate() {
            // Every chunking on the first pool; the default on the others.
            let mut bulks = vec![("default chunks", pool.bulk())];
            if k == 0 {
                bulks.push(("chunk_len(333)", pool.bulk().chunk_len(333)));
                if *bins <= 300 {
                    bulks.push(("chunk_len(7)", pool.bulk().chunk_len(7)));
                }
            }
            for (chunks, bulk) in bulks {
                let case = format!(
                    "{what}: {bins} bins over {range:?}, {} values, {pool_name}, {chunks} \
                     (seed {})",
                    x.len(),
                    seed()
                );
                match (
                    bulk.histogram(
                        &x,
                        Bins::Uniform {
                            count: *bins,
                            range: *range,
                        },
                    )
                    .map(|h| h.counts),
                    &want,
                ) {
                    (Ok(got), Ok(want)) => {
                        if let Some(b) = (0..*bins).find(|&b| got[b] != want[b]) {
                            panic!("{case}: bin {b} counts {}, numpy's {}", got[b], want[b]);
                        }
                    }
                    (Err(Error::InvalidArgument { .. }), Err(_)) => {}
                    (got, want) => panic!("{case}: shmpool {got:?}, numpy {want:?}"),
                }
            }
        }
    }
}

/// The pools the histograms run on: 2 workers at the best SIMD level (every
/// chunking), then each level the CPU supports, and 1 and 3 workers.
fn histogram_pools(m: StartMethod) -> Vec<(String, shmpool::Pool)> {
    let build = |processes, simd| {
        shmpool::Pool::builder()
            .processes(processes)
            .start_method(m)
            .simd(simd)
            .build()
            .unwrap()
    };
    let mut pools = vec![("2 workers".to_string(), pool_of(2, m))];
    for level in [Simd::Baseline, Simd::Avx2, Simd::Avx512] {
        if level.is_supported() {
            pools.push((format!("2 workers at {level}"), build(2, level)));
        }
    }
    pools.push(("1 worker".into(), build(1, Simd::Auto)));
    pools.push(("3 workers".into(), build(3, Simd::Auto)));
    pools
}

/// `np.histogram` and shmpool agree on values on and next to every edge, for f64,
/// f32 and integers, and refuse the same ranges, at every SIMD level and for 1 to 3
/// workers.
fn histograms_match_numpy(m: StartMethod) {
    let pools = histogram_pools(m);
    let mut rng = Rng::new(seed());
    let mut f64s = Vec::new();
    let mut f32s = Vec::new();
    for &(bins, range) in CASES {
        let v = edge_values(&mut rng, bins, range);
        f32s.push((as_f32(&v), bins, range));
        f64s.push((v, bins, range));
    }
    // Random ranges and bin counts, near the edges of each.
    for _ in 0..20 {
        let lo = unit(&mut rng) * 10f64.powi(rng.below(12) as i32 - 6);
        let hi = lo + (unit(&mut rng) + 1.01) * 10f64.powi(rng.below(12) as i32 - 6);
        let bins = 1 + rng.below(2000) as usize;
        let v = edge_values(&mut rng, bins, (lo, hi));
        f32s.push((as_f32(&v), bins, (lo, hi)));
        f64s.push((v, bins, (lo, hi)));
    }
    // Empty and one-element arrays.
    for x in [vec![], vec![0.3], vec![1.0], vec![f64::NAN]] {
        f32s.push((x.iter().map(|&v| v as f32).collect(), 10, (0.0, 1.0)));
        f64s.push((x, 10, (0.0, 1.0)));
    }
    check_histograms(&pools, "f64", &f64s);
    check_histograms(&pools, "f32", &f32s);

    // Integers: ranges whose edges fall between integers, and at the ends of i64,
    // where numpy compares in float64 as shmpool does.
    let int_cases: &[(usize, (f64, f64))] = &[
        (7, (-128.0, 127.0)),
        (10, (-3.5, 40.25)),
        (256, (0.0, 256.0)),
        (3, (0.0, 1.0)),
        (1000, (-1e6, 1e6)),
        (3, (9_007_199_254_740_992.0, 9_007_199_254_741_004.0)),
        (5, (-9.223_372_036_854_776e18, 9.223_372_036_854_776e18)),
    ];
    let mut i32s = Vec::new();
    let mut u8s = Vec::new();
    let mut i64s = Vec::new();
    for &(bins, range) in int_cases {
        let v = edge_values(&mut rng, bins, range);
        i32s.push((
            as_ints::<i32>(&v, i32::MIN.into(), i32::MAX.into()),
            bins,
            range,
        ));
        u8s.push((as_ints::<u8>(&v, 0, 255), bins, range));
        let mut big = as_ints::<i64>(&v, i64::MIN.into(), i64::MAX.into());
        big.extend([
            i64::MIN,
            i64::MAX,
            (1 << 53) + 1,
            (1 << 53) + 3,
            -(1 << 53) - 1,
        ]);
        i64s.push((big, bins, range));
    }
    check_histograms(&pools, "i32", &i32s);
    check_histograms(&pools, "u8", &u8s);
    check_histograms(&pools, "i64", &i64s);
}

/// Ranges shmpool refuses where numpy returns garbage or raises only for some
/// data (an IndexError from a NaN index): the width or an end overflows the data's
/// precision. Documented on `Bulk::histogram`.
fn ranges_numpy_cannot_bin_are_refused(m: StartMethod) {
    let pool = pool_of(1, m);
    let x = SharedArray::from_slice(&[0.0f64, 1.0, 5.0]).unwrap();
    let x32 = SharedArray::from_slice(&[0.0f32, 1.0, 3e38]).unwrap();
    for bins in [1, 2, 4, 300] {
        match pool.bulk().histogram(
            &x,
            Bins::Uniform {
                count: bins,
                range: (-1e308, 1e308),
            },
        ) {
            Err(Error::InvalidArgument {
                name: "range",
                reason,
            }) => assert!(reason.contains("overflows f64"), "{reason}"),
            other => panic!("{bins} bins over (-1e308, 1e308): {other:?}"),
        }
        for range in [(-3e38, 3e38), (0.0, 1e39)] {
            match pool
                .bulk()
                .histogram(&x32, Bins::Uniform { count: bins, range })
            {
                Err(Error::InvalidArgument {
                    name: "range",
                    reason,
                }) => assert!(reason.contains("overflows f32"), "{reason}"),
                other => panic!("{bins} bins over {range:?}, f32: {other:?}"),
            }
        }
    }
    // The f64 range is fine for f64 data.
    assert_eq!(
        pool.bulk()
            .histogram(
                &x,
                Bins::Uniform {
                    count: 2,
                    range: (-3e38, 3e38)
                }
            )
            .unwrap()
            .counts,
        vec![0, 3]
    );
}

/// An element type of the reductions, with numpy's name for it and the data to
/// test it on.
trait Elem: Number + NpyElement + Pod + Debug + PartialEq {
    /// Unit roundoff of sums (floats), or `None` for exact integer sums.
    const EPS: Option<f64>;
    fn random(rng: &mut Rng) -> Self;
    /// Values that make reductions hard: ±0, ±inf, NaN, the extremes (for floats,
    /// large values whose sums and products of thousands still do not overflow,
    /// so that a finite sum is finite in every order).
    fn specials() -> Vec<Self>;
    /// A few small values, so that extremes tie.
    fn small(rng: &mut Rng) -> Self;
}

impl Elem for f64 {
    const EPS: Option<f64> = Some(f64::EPSILON / 2.0);
    fn random(rng: &mut Rng) -> Self {
        unit(rng) * 10f64.powi(rng.below(17) as i32 - 8)
    }
    fn specials() -> Vec<Self> {
        vec![
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            1e150,
            -1e150,
        ]
    }
    fn small(rng: &mut Rng) -> Self {
        [-1.0, -0.0, 0.0, 1.0][rng.below(4) as usize]
    }
}

impl Elem for f32 {
    const EPS: Option<f64> = Some(f32::EPSILON as f64 / 2.0);
    fn random(rng: &mut Rng) -> Self {
        (unit(rng) * 10f64.powi(rng.below(9) as i32 - 4)) as f32
    }
    fn specials() -> Vec<Self> {
        vec![
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            1e20,
            -1e20,
        ]
    }
    fn small(rng: &mut Rng) -> Self {
        [-1.0, -0.0, 0.0, 1.0][rng.below(4) as usize]
    }
}

macro_rules! int_elem {
    ($($t:ty),*) => {$(
        impl Elem for $t {
            const EPS: Option<f64> = None;
            fn random(rng: &mut Rng) -> Self {
                rng.next_u64() as $t
            }
            fn specials() -> Vec<Self> {
                vec![0, <$t>::MIN, <$t>::MAX, 1]
            }
            fn small(rng: &mut Rng) -> Self {
                (rng.below(3) as $t).wrapping_add(<$t>::MAX / 2)
            }
        }
    )*};
}

int_elem!(i8, i32, i64, u8, u64);

/// The data sets of one element type: random, ties, specials sprinkled in random
/// data, and only specials, at lengths from 0 to past several chunks.
fn data_sets<T: Elem>(rng: &mut Rng) -> Vec<(String, Vec<T>, Vec<T>)> {
    let mut sets = Vec::new();
    for len in [0usize, 1, 2, 17, 1000, 4099, 100_003] {
        let random: Vec<T> = (0..len).map(|_| T::random(rng)).collect();
        let ties: Vec<T> = (0..len).map(|_| T::small(rng)).collect();
        let specials = T::specials();
        let mut sprinkled = random.clone();
        for _ in 0..len.min(12) {
            let i = rng.below(len as u64) as usize;
            sprinkled[i] = specials[rng.below(specials.len() as u64) as usize];
        }
        let only: Vec<T> = (0..len)
            .map(|_| specials[rng.below(specials.len() as u64) as usize])
            .collect();
        let other: Vec<T> = (0..len).map(|_| T::random(rng)).collect();
        for (name, x) in [
            ("random", random),
            ("ties", ties),
            ("specials sprinkled", sprinkled),
            ("specials only", only),
        ] {
            sets.push((format!("{name}, {len} elements"), x, other.clone()));
        }
    }
    sets
}

/// sum, dot, min, max, argmin and argmax of every data set of `T` against numpy's.
fn check_reductions<T: Elem>(pool: &shmpool::Pool, rng: &mut Rng, type_name: &str) {
    let Some(np) = Numpy::get(&format!("reductions_match_numpy {type_name}")) else {
        return;
    };
    let sets = data_sets::<T>(rng);
    for (k, (_, x, y)) in sets.iter().enumerate() {
        np.save(&format!("x{k}"), x);
        np.save(&format!("y{k}"), y);
    }
    np.run(&format!(
        r#"
import warnings
warnings.simplefilter('ignore')
for k in range({}):
    x, y = load(f'x{{k}}'), load(f'y{{k}}')
    save(f'sum{{k}}', np.sum(x, dtype=x.dtype))
    save(f'dot{{k}}', np.dot(x, y).astype(x.dtype))
    if x.size:
        save(f'min{{k}}', np.min(x))
        save(f'max{{k}}', np.max(x))
        save(f'argmin{{k}}', np.int64(np.argmin(x)))
        save(f'argmax{{k}}', np.int64(np.argmax(x)))
"#,
        sets.len()
    ));
    for (k, (name, x, y)) in sets.iter().enumerate() {
        let one = |what: &str| -> T { np.load::<T>(&format!("{what}{k}"))[0] };
        let index = |what: &str| -> Option<usize> {
            (!x.is_empty()).then(|| np.load::<i64>(&format!("{what}{k}"))[0] as usize)
        };
        let extreme = |what: &str| -> Option<T> { (!x.is_empty()).then(|| one(what)) };
        let (want_sum, want_dot) = (one("sum"), one("dot"));
        let (want_min, want_max) = (extreme("min"), extreme("max"));
        let (want_argmin, want_argmax) = (index("argmin"), index("argmax"));
        let xs = SharedArray::from_slice(x).unwrap();
        let ys = SharedArray::from_slice(y).unwrap();
        let mut bulks = vec![
            ("default chunks", pool.bulk()),
            ("chunk_len(333)", pool.bulk().chunk_len(333)),
            ("chunk_len(7)", pool.bulk().chunk_len(7)),
        ];
        if x.len() <= 1000 {
            bulks.push(("chunk_len(1)", pool.bulk().chunk_len(1)));
        }
        for (chunks, bulk) in bulks {
            let what = format!("{type_name}, {name}, {chunks} (seed {})", seed());
            let (sum, dot) = (bulk.sum(&xs).unwrap(), bulk.dot(&xs, &ys).unwrap());
            match T::EPS {
                Some(eps) => {
                    let magnitude: f64 = x.iter().map(|v| v.to_f64().abs()).sum();
                    let products: f64 = x
                        .iter()
                        .zip(y)
                        .map(|(a, b)| (a.to_f64() * b.to_f64()).abs())
                        .sum();
                    let n = x.len();
                    let (got, want) = (sum.to_f64(), want_sum.to_f64());
                    assert_sum_close(got, want, n, magnitude, eps, &format!("sum, {what}"));
                    let (got, want) = (dot.to_f64(), want_dot.to_f64());
                    assert_sum_close(got, want, n + 1, products, eps, &format!("dot, {what}"));
                }
                None => {
                    assert_eq!(sum, want_sum, "sum, {what}");
                    assert_eq!(dot, want_dot, "dot, {what}");
                }
            }
            let same = |got: Option<T>, want: Option<T>| match (got, want) {
                (Some(g), Some(w)) if T::EPS.is_some() => same_value(g.to_f64(), w.to_f64()),
                (g, w) => g == w,
            };
            let (min, max) = (bulk.min(&xs).unwrap(), bulk.max(&xs).unwrap());
            assert!(
                same(min, want_min),
                "min, {what}: {min:?}, numpy's {want_min:?}"
            );
            assert!(
                same(max, want_max),
                "max, {what}: {max:?}, numpy's {want_max:?}"
            );
            assert_eq!(bulk.argmin(&xs).unwrap(), want_argmin, "argmin, {what}");
            assert_eq!(bulk.argmax(&xs).unwrap(), want_argmax, "argmax, {what}");
        }
    }
}

/// sum, dot, min, max, argmin and argmax against numpy, for floats and integers.
fn reductions_match_numpy(m: StartMethod) {
    let pool = pool_of(2, m);
    let mut rng = Rng::new(seed());
    check_reductions::<f64>(&pool, &mut rng, "f64");
    check_reductions::<f32>(&pool, &mut rng, "f32");
    check_reductions::<i8>(&pool, &mut rng, "i8");
    check_reductions::<i32>(&pool, &mut rng, "i32");
    check_reductions::<i64>(&pool, &mut rng, "i64");
    check_reductions::<u8>(&pool, &mut rng, "u8");
    check_reductions::<u64>(&pool, &mut rng, "u64");
}

per_start_method!(
    histograms_match_numpy,
    ranges_numpy_cannot_bin_are_refused,
    reductions_match_numpy,
);
