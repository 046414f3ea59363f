//! The built-in reductions, `map_reduce` and `fold_reduce` against sequential loops:
//! floats within a tolerance, integers exactly (wrapping), over ranges, and with a
//! 256-bin accumulator.

use shmpool::{Bins, Env, Error, SharedArray, StartMethod};

use super::{arg_seq, chunkings, close, neumaier, numpy_histograms, seed, unit};
use crate::common::{Rng, pool_of};

/// Each built-in reduction over f64, f32 and integers, against a sequential loop.
fn builtins_match_sequential(m: StartMethod) {
    let pool = pool_of(2, m);
    let mut rng = Rng::new(seed());
    let n = 20_011;
    let x: SharedArray<f64> = (0..n).map(|_| unit(&mut rng) * 100.0).collect();
    let y: SharedArray<f64> = (0..n).map(|_| unit(&mut rng)).collect();
    let x32: SharedArray<f32> = x.iter().map(|&v| v as f32).collect();
    let y32: SharedArray<f32> = y.iter().map(|&v| v as f32).collect();
    let xi: SharedArray<i32> = (0..n)
        .map(|_| rng.below(2_000_001) as i32 - 1_000_000)
        .collect();
    let xu: SharedArray<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
    let abs_sum: f64 = x.iter().map(|v| v.abs()).sum();
    let abs_dot: f64 = (0..n).map(|i| (x[i] * y[i]).abs()).sum();
    let seq_sum = neumaier(x.iter().copied());
    let seq_dot = neumaier((0..n).map(|i| x[i] * y[i]));
    let seq_dot32 = neumaier((0..n).map(|i| f64::from(x32[i]) * f64::from(y32[i])));
    let seq_min = x.iter().copied().fold(f64::INFINITY, f64::min);
    let seq_max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let hist_cases = [(256, (-100.0, 100.0)), (7, (-10.0, 35.5))];
    let numpy_hist = numpy_histograms(
        "builtins_match_sequential",
        &hist_cases.map(|(bins, range)| (&x[..], bins, range)),
    );
    let numpy_hist32 = numpy_histograms(
        "builtins_match_sequential",
        &[(&x32[..], 10, (-50.0, 50.0))],
    );
    for (what, bulk) in chunkings(&pool) {
        close(
            bulk.sum(&x).unwrap(),
            seq_sum,
            abs_sum,
            1e-13,
            &format!("f64 sum, {what}"),
        );
        let s32 = f64::from(bulk.sum(&x32).unwrap());
        close(
            s32,
            neumaier(x32.iter().map(|&v| f64::from(v))),
            abs_sum,
            1e-4,
            &format!("f32 sum, {what}"),
        );
        close(
            bulk.dot(&x, &y).unwrap(),
            seq_dot,
            abs_dot,
            1e-13,
            &format!("f64 dot, {what}"),
        );
        let d32 = f64::from(bulk.dot(&x32, &y32).unwrap());
        close(d32, seq_dot32, abs_dot, 1e-4, &format!("f32 dot, {what}"));
        assert_eq!(bulk.min(&x).unwrap(), Some(seq_min), "{what}");
        assert_eq!(bulk.max(&x).unwrap(), Some(seq_max), "{what}");
        assert_eq!(bulk.argmin(&x).unwrap(), arg_seq(&x, false), "{what}");
        assert_eq!(bulk.argmax(&x).unwrap(), arg_seq(&x, true), "{what}");
        assert_eq!(bulk.argmin(&x32).unwrap(), arg_seq(&x32, false), "{what}");
        assert_eq!(bulk.argmax(&x32).unwrap(), arg_seq(&x32, true), "{what}");
        // Integers: exact.
        let want_i = xi.iter().fold(0i32, |a, &v| a.wrapping_add(v));
        assert_eq!(bulk.sum(&xi).unwrap(), want_i, "{what}");
        assert_eq!(bulk.min(&xi).unwrap(), xi.iter().copied().min(), "{what}");
        assert_eq!(bulk.max(&xi).unwrap(), xi.iter().copied().max(), "{what}");
        assert_eq!(bulk.argmin(&xi).unwrap(), arg_seq(&xi, false), "{what}");
        assert_eq!(bulk.argmax(&xi).unwrap(), arg_seq(&xi, true), "{what}");
        assert_eq!(bulk.argmax(&xu).unwrap(), arg_seq(&xu, true), "{what}");
        let dot_i = (0..n).fold(0i32, |a, i| {
            a.wrapping_add(xi[i].wrapping_mul(i32::from(xu[i])))
        });
        let xu32: SharedArray<i32> = xu.iter().map(|&v| i32::from(v)).collect();
        assert_eq!(bulk.dot(&xi, &xu32).unwrap(), dot_i, "{what}");
        // Histograms, against numpy's.
        for (k, &(bins, range)) in hist_cases.iter().enumerate() {
            let h = bulk
                .histogram(&x, Bins::Uniform { count: bins, range })
                .unwrap()
                .counts;
            if let Some(want) = &numpy_hist {
                assert_eq!(
                    Ok(&h),
                    want[k].as_ref(),
                    "{bins} bins over {range:?}, {what}"
                );
            }
            if bins == 256 {
                assert_eq!(h.iter().sum::<u64>(), n as u64);
            }
        }
        let h = bulk
            .histogram(
                &xu,
                Bins::Uniform {
                    count: 256,
                    range: (0.0, 256.0),
                },
            )
            .unwrap()
            .counts;
        let mut want = vec![0u64; 256];
        xu.iter().for_each(|&v| want[usize::from(v)] += 1);
        assert_eq!(h, want, "u8 histogram, {what}");
        let h = bulk
            .histogram(
                &x32,
                Bins::Uniform {
                    count: 10,
                    range: (-50.0, 50.0),
                },
            )
            .unwrap()
            .counts;
        if let Some(want) = &numpy_hist32 {
            assert_eq!(Ok(&h), want[0].as_ref(), "f32 histogram, {what}");
        }
    }
    // The same call twice: the same bits.
    for _ in 0..3 {
        assert_eq!(
            pool.bulk().sum(&x).unwrap().to_bits(),
            pool.bulk().sum(&x).unwrap().to_bits()
        );
        assert_eq!(
            pool.bulk().dot(&x32, &y32).unwrap().to_bits(),
            pool.bulk().dot(&x32, &y32).unwrap().to_bits()
        );
    }
}

/// Integer sums and dot products wrap, as numpy's do.
fn integer_sums_wrap(m: StartMethod) {
    let pool = pool_of(2, m);
    let mut rng = Rng::new(seed());
    let n = 30_000;
    let bytes = SharedArray::<u8>::filled(n, 200).unwrap();
    assert_eq!(
        pool.bulk().sum(&bytes).unwrap(),
        (n as u64 * 200 % 256) as u8
    );
    let big: SharedArray<i32> = (0..n).map(|_| i32::MAX - rng.below(1000) as i32).collect();
    let want = big.iter().fold(0i32, |a, &v| a.wrapping_add(v));
    let u: SharedArray<u64> = (0..n).map(|_| rng.next_u64()).collect();
    let want_u = u.iter().fold(0u64, |a, &v| a.wrapping_add(v));
    let i: SharedArray<i64> = (0..n).map(|_| rng.next_u64() as i64).collect();
    let want_dot = (0..n).fold(0i64, |a, k| a.wrapping_add(i[k].wrapping_mul(i[n - 1 - k])));
    let rev: SharedArray<i64> = (0..n).map(|k| i[n - 1 - k]).collect();
    for (what, bulk) in chunkings(&pool) {
        assert_eq!(bulk.sum(&big).unwrap(), want, "{what}");
        assert_eq!(bulk.sum(&u).unwrap(), want_u, "{what}");
        assert_eq!(bulk.dot(&i, &rev).unwrap(), want_dot, "{what}");
        let s8 = bulk.sum(&bytes).unwrap();
        assert_eq!(
            s8,
            bytes.iter().fold(0u8, |a, &v| a.wrapping_add(v)),
            "{what}"
        );
    }
}

/// `.range()` limits every reduction to its elements; argmin and argmax return
/// global indices; a range past the array is refused.
fn ranges_on_reductions(m: StartMethod) {
    let pool = pool_of(2, m);
    let mut rng = Rng::new(seed());
    let n = 10_000;
    // Small integers as f64: every sum is exact, in any order.
    let x: SharedArray<f64> = (0..n).map(|_| rng.below(1000) as f64 - 500.0).collect();
    let y: SharedArray<f64> = (0..n).map(|_| rng.below(10) as f64).collect();
    let ranges = [1234..8765, 0..1, 9999..10_000, 0..n];
    let numpy_hist = numpy_histograms(
        "ranges_on_reductions",
        &ranges.clone().map(|r| (&x[r], 10, (-500.0, 500.0))),
    );
    for (k, r) in ranges.into_iter().enumerate() {
        let s = &x[r.clone()];
        let what = format!("range {r:?}");
        for bulk in [
            pool.bulk().range(r.clone()),
            pool.bulk().chunk_len(100).range(r.clone()),
        ] {
            assert_eq!(bulk.sum(&x).unwrap(), s.iter().sum::<f64>(), "{what}");
            let dot: f64 = r.clone().map(|i| x[i] * y[i]).sum();
            assert_eq!(bulk.dot(&x, &y).unwrap(), dot, "{what}");
            assert_eq!(
                bulk.min(&x).unwrap(),
                s.iter().copied().reduce(f64::min),
                "{what}"
            );
            assert_eq!(
                bulk.max(&x).unwrap(),
                s.iter().copied().reduce(f64::max),
                "{what}"
            );
            assert_eq!(
                bulk.argmin(&x).unwrap(),
                arg_seq(s, false).map(|i| i + r.start),
                "{what}"
            );
            assert_eq!(
                bulk.argmax(&x).unwrap(),
                arg_seq(s, true).map(|i| i + r.start),
                "{what}"
            );
            let h = bulk
                .histogram(
                    &x,
                    Bins::Uniform {
                        count: 10,
                        range: (-500.0, 500.0),
                    },
                )
                .unwrap()
                .counts;
            if let Some(want) = &numpy_hist {
                assert_eq!(Ok(&h), want[k].as_ref(), "{what}");
            }
            let ss = bulk
                .with(2.0f64)
                .map_reduce(
                    (&x, &y),
                    0.0,
                    |k: &f64, (a, b): (f64, f64)| k * a - b,
                    |a: f64, b: f64| a + b,
                )
                .unwrap();
            assert_eq!(
                ss,
                r.clone().map(|i| 2.0 * x[i] - y[i]).sum::<f64>(),
                "{what}"
            );
            let count = bulk
                .fold_reduce(
                    &x,
                    0u64,
                    |acc: &mut u64, xs: &[f64]| *acc += xs.len() as u64,
                    |a, b| a + b,
                )
                .unwrap();
            assert_eq!(count, r.len() as u64, "{what}");
        }
    }
    #[allow(clippy::reversed_empty_ranges)]
    for r in [0..10_001, 10_001..10_001, 50..40] {
        match pool.bulk().range(r.clone()).sum(&x) {
            Err(Error::RangeOutOfBounds { range, len }) => assert_eq!((range, len), (r.clone(), n)),
            other => panic!("range {r:?}: {other:?}"),
        }
        let e = pool.bulk().range(r.clone()).argmin(&x);
        assert!(
            matches!(e, Err(Error::RangeOutOfBounds { .. })),
            "{r:?}: {e:?}"
        );
        let e =
            pool.bulk()
                .range(r.clone())
                .map_reduce(&x, 0.0, |v: f64| v, |a: f64, b: f64| a + b);
        assert!(
            matches!(e, Err(Error::RangeOutOfBounds { .. })),
            "{r:?}: {e:?}"
        );
    }
}

/// A 256-bin accumulator, as a fold over chunks and as a map of one-hot arrays,
/// with parameters and with a context array.
fn u64x256_accumulators(m: StartMethod) {
    let pool = pool_of(2, m);
    let mut rng = Rng::new(seed());
    let n = 50_000;
    let x: SharedArray<u8> = (0..n)
        .map(|_| (rng.below(256) as u8) & (rng.below(256) as u8))
        .collect();
    let shift = rng.below(256) as u8;
    let mut want = [0u64; 256];
    for &v in x.iter() {
        want[usize::from(v.wrapping_add(shift))] += 1;
    }
    let add = |mut a: [u64; 256], b: [u64; 256]| {
        for (a, b) in a.iter_mut().zip(b) {
            *a += b;
        }
        a
    };
    let counts = pool
        .bulk()
        .with(shift)
        .fold_reduce(
            &x,
            [0u64; 256],
            |s: &u8, acc: &mut [u64; 256], xs: &[u8]| {
                for &v in xs {
                    acc[usize::from(v.wrapping_add(*s))] += 1;
                }
            },
            add,
        )
        .unwrap();
    assert_eq!(counts, want, "fold_reduce (seed {})", seed());

    let small = SharedArray::from_slice(&x[..5000]).unwrap();
    let mut want_small = [0u64; 256];
    for &v in small.iter() {
        want_small[usize::from(v.wrapping_add(shift))] += 1;
    }
    let onehot = pool
        .bulk()
        .chunk_len(700)
        .with(shift)
        .map_reduce(
            &small,
            [0u64; 256],
            |s: &u8, v: u8| {
                let mut h = [0u64; 256];
                h[usize::from(v.wrapping_add(*s))] = 1;
                h
            },
            |mut a: [u64; 256], b: [u64; 256]| {
                for (a, b) in a.iter_mut().zip(b) {
                    *a += b;
                }
                a
            },
        )
        .unwrap();
    assert_eq!(onehot, want_small, "map_reduce (seed {})", seed());

    // A context table maps each byte to its bin.
    let table: SharedArray<u8> = (0..=255u8).map(|v| v.wrapping_add(shift)).collect();
    let counts = pool
        .bulk()
        .context(&table)
        .fold_reduce(
            &x,
            [0u64; 256],
            |env: &Env<()>, acc: &mut [u64; 256], xs: &[u8]| {
                let t = env.array::<u8>(0);
                for &v in xs {
                    acc[usize::from(t[usize::from(v)])] += 1;
                }
            },
            add,
        )
        .unwrap();
    assert_eq!(
        counts,
        want,
        "fold_reduce with a context table (seed {})",
        seed()
    );
}

per_start_method!(
    builtins_match_sequential,
    integer_sums_wrap,
    ranges_on_reductions,
    u64x256_accumulators,
);
