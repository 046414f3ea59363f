//! The determinism promise of issue 13: f64 and f32 `sum`, `dot` and `map_reduce`
//! give the same bits for any number of workers, start method and SIMD level,
//! given the chunk length.

use shmpool::{Pool, SharedArray, Simd, StartMethod};

use super::{close, neumaier, seed, wide};
use crate::common::Rng;

/// The deterministic results, as bits: f64 and f32 `sum`, `dot` and `map_reduce`,
/// with the default chunk length and with `chunk_len(1000)`.
fn fingerprint(
    pool: &Pool,
    x: &SharedArray<f64>,
    y: &SharedArray<f64>,
    x32: &SharedArray<f32>,
    y32: &SharedArray<f32>,
) -> Vec<u64> {
    let mut out = Vec::new();
    for fixed in [None, Some(1000)] {
        let bulk = || match fixed {
            Some(c) => pool.bulk().chunk_len(c),
            None => pool.bulk(),
        };
        out.push(bulk().sum(x).unwrap().to_bits());
        out.push(u64::from(bulk().sum(x32).unwrap().to_bits()));
        out.push(bulk().dot(x, y).unwrap().to_bits());
        out.push(u64::from(bulk().dot(x32, y32).unwrap().to_bits()));
        let ss = bulk()
            .with(0.125f64)
            .map_reduce(
                x,
                0.0,
                |s: &f64, v: f64| (v - s) * (v - s),
                |a: f64, b: f64| a + b,
            )
            .unwrap();
        out.push(ss.to_bits());
        let shifted = bulk()
            .with(0.125f64)
            .map_reduce(x, 0.0, |s: &f64, v: f64| v - s, |a: f64, b: f64| a + b)
            .unwrap();
        out.push(shifted.to_bits());
        let p32 = bulk()
            .map_reduce(
                (x32, y32),
                0.0f32,
                |(a, b): (f32, f32)| a * b - 0.5,
                |a: f32, b: f32| a + b,
            )
            .unwrap();
        out.push(u64::from(p32.to_bits()));
    }
    out
}

/// `map_reduce` as documented, sequentially: each chunk folded in order from the
/// identity, the partials combined pairwise in a fixed tree, in chunk order.
fn map_reduce_seq(xs: &[f64], chunk: usize, map: impl Fn(f64) -> f64) -> f64 {
    let mut partials: Vec<f64> = xs
        .chunks(chunk)
        .map(|c| c.iter().fold(0.0, |acc, &v| acc + map(v)))
        .collect();
    let mut step = 1;
    while step < partials.len() {
        let mut i = 0;
        while i + step < partials.len() {
            partials[i] += partials[i + step];
            i += 2 * step;
        }
        step *= 2;
    }
    partials.first().copied().unwrap_or(0.0)
}

/// The f64 and f32 sums, dot products and map_reduces are bit-identical with 1 to
/// 4 workers, under every start method (each compared with one reference: a fork
/// pool of 1 worker at the baseline SIMD level), and at every SIMD level.
fn reductions_are_bit_identical_across_workers_methods_and_simd(m: StartMethod) {
    let mut rng = Rng::new(seed());
    let n = 200_003;
    let x: SharedArray<f64> = (0..n).map(|_| wide(&mut rng)).collect();
    let y: SharedArray<f64> = (0..n).map(|_| wide(&mut rng)).collect();
    let x32: SharedArray<f32> = x.iter().map(|&v| v as f32).collect();
    let y32: SharedArray<f32> = y.iter().map(|&v| (v * 1e-3) as f32).collect();
    // The data are such that the order of the additions shows in the bits.
    let forward = x.iter().fold(0.0, |a, &v| a + v);
    let backward = x.iter().rev().fold(0.0, |a, &v| a + v);
    assert_ne!(
        forward.to_bits(),
        backward.to_bits(),
        "data not order-sensitive (seed {})",
        seed()
    );

    let reference = {
        let pool = Pool::builder()
            .processes(1)
            .start_method(StartMethod::Fork)
            .simd(Simd::Baseline)
            .build()
            .unwrap();
        fingerprint(&pool, &x, &y, &x32, &y32)
    };
    // The documented combination order, computed here (with chunk_len(1000): the
    // second half of the fingerprint).
    let shift = 0.125;
    let half = reference.len() / 2;
    // The data tell combination orders apart: the same partials folded in a line
    // give other bits than the tree.
    let partials: Vec<f64> = x
        .chunks(1000)
        .map(|c| c.iter().fold(0.0, |a, &v| a + (v - shift)))
        .collect();
    let in_line = partials[1..].iter().fold(partials[0], |a, &p| a + p);
    assert_ne!(
        in_line.to_bits(),
        map_reduce_seq(&x, 1000, |v| v - shift).to_bits(),
        "data not sensitive to the combination order (seed {})",
        seed()
    );
    assert_eq!(
        reference[half + 4],
        map_reduce_seq(&x, 1000, |v| (v - shift) * (v - shift)).to_bits(),
        "map_reduce of squares with chunk_len(1000) vs the documented order (seed {})",
        seed()
    );
    assert_eq!(
        reference[half + 5],
        map_reduce_seq(&x, 1000, |v| v - shift).to_bits(),
        "map_reduce with chunk_len(1000) vs the documented order (seed {})",
        seed()
    );
    close(
        f64::from_bits(reference[0]),
        neumaier(x.iter().copied()),
        x.iter().map(|v| v.abs()).sum(),
        1e-13,
        "sum vs sequential",
    );

    let mut configs: Vec<(usize, Simd)> = (1..=4).map(|w| (w, Simd::Auto)).collect();
    configs.push((2, Simd::Baseline));
    if Simd::Avx2.is_supported() {
        configs.push((3, Simd::Avx2));
    }
    if Simd::Avx512.is_supported() {
        configs.push((2, Simd::Avx512));
    }
    for (workers, simd) in configs {
        let pool = Pool::builder()
            .processes(workers)
            .start_method(m)
            .simd(simd)
            .build()
            .unwrap();
        for round in 0..2 {
            let got = fingerprint(&pool, &x, &y, &x32, &y32);
            assert_eq!(
                got,
                reference,
                "{workers} workers, {m:?}, simd {simd} (round {round}) differ from the reference (seed {})",
                seed()
            );
        }
    }
}

per_start_method!(reductions_are_bit_identical_across_workers_methods_and_simd,);
