//! The edges of the reductions: NaNs and infinities, empty arrays and ranges, ties,
//! and the histogram's bin edges and argument checks.

use shmpool::{Bins, Error, SharedArray, StartMethod};

use super::{arg_seq, chunkings, numpy_histograms, seed, unit};
use crate::common::{Rng, pool_of};

/// NaNs propagate through min and max; argmin and argmax name the first NaN;
/// histograms skip NaNs and infinities.
fn nans_and_infinities(m: StartMethod) {
    let pool = pool_of(2, m);
    let mut rng = Rng::new(seed());
    let n = 5000;
    let base: Vec<f64> = (0..n).map(|_| unit(&mut rng)).collect();
    let mut with_inf = base.clone();
    with_inf[10] = f64::NEG_INFINITY;
    with_inf[20] = f64::INFINITY;
    let patterns = [
        vec![],
        vec![2345, 4000],
        vec![4999],
        vec![0, 1],
        (0..n).collect::<Vec<_>>(),
    ];
    let with_nans = |nans: &[usize]| {
        let mut v = with_inf.clone();
        for &i in nans {
            v[i] = f64::NAN;
        }
        v
    };
    let data: Vec<Vec<f64>> = patterns.iter().map(|p| with_nans(p)).collect();
    let numpy_hist = numpy_histograms(
        "nans_and_infinities",
        &data
            .iter()
            .map(|v| (&v[..], 4, (-1.0, 1.0)))
            .collect::<Vec<_>>(),
    );
    for (k, (nans, v)) in patterns.into_iter().zip(data).enumerate() {
        let x = SharedArray::from_vec(v.clone()).unwrap();
        let x32: SharedArray<f32> = v.iter().map(|&v| v as f32).collect();
        for (what, bulk) in chunkings(&pool) {
            let what = format!("NaNs at {:?}, {what}", &nans[..nans.len().min(3)]);
            if let Some(&first) = nans.first() {
                assert!(bulk.min(&x).unwrap().unwrap().is_nan(), "{what}");
                assert!(bulk.max(&x).unwrap().unwrap().is_nan(), "{what}");
                assert!(bulk.min(&x32).unwrap().unwrap().is_nan(), "{what}");
                assert!(bulk.max(&x32).unwrap().unwrap().is_nan(), "{what}");
                assert_eq!(bulk.argmin(&x).unwrap(), Some(first), "{what}");
                assert_eq!(bulk.argmax(&x).unwrap(), Some(first), "{what}");
                assert_eq!(bulk.argmin(&x32).unwrap(), Some(first), "{what}");
                assert_eq!(bulk.argmax(&x32).unwrap(), Some(first), "{what}");
                assert!(bulk.sum(&x).unwrap().is_nan(), "{what}");
            } else {
                assert_eq!(bulk.min(&x).unwrap(), Some(f64::NEG_INFINITY), "{what}");
                assert_eq!(bulk.max(&x).unwrap(), Some(f64::INFINITY), "{what}");
                assert_eq!(bulk.argmin(&x).unwrap(), Some(10), "{what}");
                assert_eq!(bulk.argmax(&x32).unwrap(), Some(20), "{what}");
            }
            let h = bulk
                .histogram(
                    &x,
                    Bins::Uniform {
                        count: 4,
                        range: (-1.0, 1.0),
                    },
                )
                .unwrap()
                .counts;
            if let Some(want) = &numpy_hist {
                assert_eq!(Ok(&h), want[k].as_ref(), "{what}");
            }
            assert_eq!(
                h.iter().sum::<u64>(),
                (n - 2 - nans.iter().filter(|&&i| i != 10 && i != 20).count()) as u64,
                "{what}"
            );
        }
    }
}

/// Empty arrays and empty ranges: sums are 0, extremes `None`, the other
/// reductions return their identity.
fn empty_arrays_and_ranges(m: StartMethod) {
    let pool = pool_of(2, m);
    let empty = SharedArray::<f64>::zeroed(0).unwrap();
    let some = SharedArray::<f64>::filled(100, 3.0).unwrap();
    let empty_i = SharedArray::<u32>::zeroed(0).unwrap();
    for (x, range) in [(&empty, None), (&some, Some(5..5)), (&some, Some(100..100))] {
        let bulk = || match &range {
            Some(r) => pool.bulk().range(r.clone()),
            None => pool.bulk(),
        };
        let what = format!("len {}, range {range:?}", x.len());
        assert_eq!(bulk().sum(x).unwrap().to_bits(), 0f64.to_bits(), "{what}");
        assert_eq!(bulk().dot(x, x).unwrap(), 0.0, "{what}");
        assert_eq!(bulk().min(x).unwrap(), None, "{what}");
        assert_eq!(bulk().max(x).unwrap(), None, "{what}");
        assert_eq!(bulk().argmin(x).unwrap(), None, "{what}");
        assert_eq!(bulk().argmax(x).unwrap(), None, "{what}");
        assert_eq!(
            bulk()
                .histogram(
                    x,
                    Bins::Uniform {
                        count: 3,
                        range: (0.0, 1.0)
                    }
                )
                .unwrap()
                .counts,
            vec![0, 0, 0],
            "{what}"
        );
        let r = bulk()
            .map_reduce(x, 42.5, |v: f64| v, |a: f64, b: f64| a + b)
            .unwrap();
        assert_eq!(r, 42.5, "{what}");
        let r = bulk()
            .with(1.0f64)
            .fold_reduce(
                x,
                [7u64; 4],
                |_: &f64, acc: &mut [u64; 4], xs: &[f64]| acc[0] += xs.len() as u64,
                |a, _| a,
            )
            .unwrap();
        assert_eq!(r, [7; 4], "{what}");
    }
    assert_eq!(pool.bulk().sum(&empty_i).unwrap(), 0);
    assert_eq!(pool.bulk().min(&empty_i).unwrap(), None);
}

/// argmin and argmax return the first of equal extremes, wherever the chunks fall.
fn ties_pick_the_first_occurrence(m: StartMethod) {
    let pool = pool_of(2, m);
    let mut rng = Rng::new(seed());
    let n = 10_000;
    let x: SharedArray<u16> = (0..n).map(|_| rng.below(50) as u16).collect();
    let xf: SharedArray<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let same = SharedArray::<f32>::filled(n, 2.5).unwrap();
    for (what, bulk) in chunkings(&pool)
        .into_iter()
        .chain([("chunk_len(37)".into(), pool.bulk().chunk_len(37))])
    {
        assert_eq!(bulk.argmin(&x).unwrap(), arg_seq(&x, false), "{what}");
        assert_eq!(bulk.argmax(&x).unwrap(), arg_seq(&x, true), "{what}");
        assert_eq!(bulk.argmin(&xf).unwrap(), arg_seq(&xf, false), "{what}");
        assert_eq!(bulk.argmax(&xf).unwrap(), arg_seq(&xf, true), "{what}");
        assert_eq!(bulk.argmin(&same).unwrap(), Some(0), "{what}");
        assert_eq!(bulk.argmax(&same).unwrap(), Some(0), "{what}");
        // Over a range, the first in the range, as a global index.
        let sub = bulk.range(1234..8765);
        assert_eq!(
            sub.argmin(&x).unwrap(),
            arg_seq(&x[1234..8765], false).map(|i| i + 1234),
            "{what}"
        );
        assert_eq!(sub.argmax(&same).unwrap(), Some(1234), "{what}");
    }
    // Equal minima at the last element of a late chunk and the first of an early one.
    let mut v = vec![9i64; 1000];
    v[899] = -1;
    v[100] = -1;
    v[999] = 10;
    v[300] = 10;
    let x = SharedArray::from_vec(v).unwrap();
    assert_eq!(pool.bulk().chunk_len(100).argmin(&x).unwrap(), Some(100));
    assert_eq!(pool.bulk().chunk_len(100).argmax(&x).unwrap(), Some(300));
}

/// The histogram's edges and its argument checks.
fn histogram_edges_and_bad_arguments(m: StartMethod) {
    let pool = pool_of(2, m);
    // Bins of width 1 over 0..=8: k lands in bin k, 8 in the last bin.
    let v = [
        -0.5,
        0.0,
        0.5,
        1.0,
        2.0,
        3.999,
        4.0,
        7.0,
        7.5,
        8.0,
        8.0,
        8.0001,
        100.0,
        -100.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
    ];
    let x = SharedArray::from_slice(&v).unwrap();
    for (what, bulk) in chunkings(&pool) {
        let h = bulk
            .histogram(
                &x,
                Bins::Uniform {
                    count: 8,
                    range: (0.0, 8.0),
                },
            )
            .unwrap()
            .counts;
        //                 0  1  2  3  4  5  6  7
        assert_eq!(h, vec![3, 1, 1, 1, 1, 0, 0, 4], "{what}");
        // One bin holds everything within the range, both ends included.
        assert_eq!(
            bulk.histogram(
                &x,
                Bins::Uniform {
                    count: 1,
                    range: (0.0, 8.0)
                }
            )
            .unwrap()
            .counts,
            vec![11],
            "{what}"
        );
        // A negative range.
        assert_eq!(
            bulk.histogram(
                &x,
                Bins::Uniform {
                    count: 2,
                    range: (-100.0, -0.5)
                }
            )
            .unwrap()
            .counts,
            vec![1, 1],
            "{what}"
        );
    }
    let ints = SharedArray::from_slice(&[0i8, -128, 127, 5, 5]).unwrap();
    assert_eq!(
        pool.bulk()
            .histogram(
                &ints,
                Bins::Uniform {
                    count: 2,
                    range: (-128.0, 127.0)
                }
            )
            .unwrap()
            .counts,
        vec![1, 4]
    );

    match pool.bulk().histogram(
        &x,
        Bins::Uniform {
            count: 0,
            range: (0.0, 1.0),
        },
    ) {
        Err(Error::InvalidArgument { name: "bins", .. }) => {}
        other => panic!("0 bins: {other:?}"),
    }
    match pool.bulk().histogram(
        &x,
        Bins::Uniform {
            count: (1 << 20) + 1,
            range: (0.0, 1.0),
        },
    ) {
        Err(Error::InvalidArgument { name: "bins", .. }) => {}
        other => panic!("2^20 + 1 bins: {other:?}"),
    }
    for range in [
        (1.0, 1.0),
        (2.0, 1.0),
        (f64::NAN, 1.0),
        (0.0, f64::INFINITY),
        (f64::NEG_INFINITY, 0.0),
    ] {
        match pool.bulk().histogram(&x, Bins::Uniform { count: 4, range }) {
            Err(Error::InvalidArgument {
                name: "range",
                reason,
            }) => {
                assert!(reason.contains("lo < hi"), "{reason}")
            }
            other => panic!("range {range:?}: {other:?}"),
        }
    }
}

per_start_method!(
    nans_and_infinities,
    empty_arrays_and_ranges,
    ties_pick_the_first_occurrence,
    histogram_edges_and_bad_arguments,
);
