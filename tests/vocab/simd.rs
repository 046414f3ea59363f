//! SIMD levels: `PoolBuilder::simd` and `SHMPOOL_SIMD` choose the level kernels
//! run at; every level computes the same bits.

use std::time::Duration;

use shmpool::{Bins, Error, Pool, SharedArray, Simd, StartMethod};

use super::{assert_same, bits, laplacian, laplacian_kernel, randoms, rng};
use crate::common::rerun_self_with;

const LEVELS: [Simd; 3] = [Simd::Baseline, Simd::Avx2, Simd::Avx512];

/// What the SIMD tests compute: a map with `mul_add` and `sqrt`, a 3-input zip, a
/// chunk kernel and a stencil, each a vector of bits.
fn simd_outputs(
    pool: &Pool,
    x: &SharedArray<f64>,
    y: &SharedArray<f64>,
    g: &SharedArray<f64>,
) -> Vec<Vec<u64>> {
    let n = x.len();
    let mut a = SharedArray::zeroed(n).unwrap();
    pool.map_into(x, &mut a, |v: f64| v.mul_add(1.5, 0.25).abs().sqrt())
        .unwrap();
    let mut b = SharedArray::zeroed(n).unwrap();
    pool.bulk()
        .zip_map_into((x, y, &a), &mut b, |(x, y, a): (f64, f64, f64)| {
            x * y - a / 3.0
        })
        .unwrap();
    let mut c = SharedArray::<f32>::zeroed(n).unwrap();
    pool.bulk()
        .map_chunks_into(x, &mut c, |xs: &[f64], cs: &mut [f32]| {
            for (c, x) in cs.iter_mut().zip(xs) {
                *c = (*x as f32) * 0.1 + 1.0;
            }
        })
        .unwrap();
    let (rows, cols) = (g.shape()[0], g.shape()[1]);
    let mut l = SharedArray::zeroed(rows * cols)
        .unwrap()
        .reshape(&[rows, cols])
        .unwrap();
    pool.bulk()
        .with(1.0 / 16.0)
        .stencil_rows_into(g, &mut l, laplacian_kernel)
        .unwrap();
    vec![
        bits(&a),
        bits(&b),
        c.iter().map(|v| u64::from(v.to_bits())).collect(),
        bits(&l),
    ]
}

/// `PoolBuilder::simd`: the level shows in the stats, every supported level
/// computes the same bits as a sequential loop, and an unsupported one is refused.
fn simd_levels(m: StartMethod) {
    let mut rng = rng();
    let n = 20_000;
    let x = randoms(&mut rng, n);
    let y = randoms(&mut rng, n);
    let (rows, cols) = (65, 33);
    let g = randoms(&mut rng, rows * cols)
        .reshape(&[rows, cols])
        .unwrap();
    let a: Vec<f64> = x
        .iter()
        .map(|v| v.mul_add(1.5, 0.25).abs().sqrt())
        .collect();
    let want = vec![
        bits(&a),
        (0..n)
            .map(|i| (x[i] * y[i] - a[i] / 3.0).to_bits())
            .collect(),
        x.iter()
            .map(|&v| u64::from(((v as f32) * 0.1 + 1.0).to_bits()))
            .collect(),
        bits(&laplacian(&g, rows, cols, 1.0 / 16.0, 0.0)),
    ];
    let auto = Pool::builder()
        .processes(1)
        .start_method(m)
        .simd(Simd::Auto)
        .build()
        .unwrap();
    assert_eq!(auto.stats().simd, Simd::detected());
    drop(auto);
    let mut ran = Vec::new();
    for level in LEVELS {
        let built = Pool::builder()
            .processes(2)
            .start_method(m)
            .simd(level)
            .build();
        if !level.is_supported() {
            match built {
                Err(Error::SimdUnsupported {
                    requested,
                    detected,
                }) => {
                    assert_eq!((requested, detected), (level, Simd::detected()));
                }
                other => panic!("simd({level}) on a CPU without it: {other:?}"),
            }
            continue;
        }
        let pool = built.unwrap_or_else(|e| panic!("simd({level}): {e}"));
        assert_eq!(pool.stats().simd, level);
        let got = simd_outputs(&pool, &x, &y, &g);
        for (k, (got, want)) in got.iter().zip(&want).enumerate() {
            assert_same(got, want, &format!("output {k} at simd {level}"));
        }
        ran.push(level);
    }
    assert!(
        ran.contains(&Simd::Baseline) && ran.contains(&Simd::detected()),
        "{ran:?}"
    );
}

/// `SHMPOOL_SIMD` chooses the level when the builder does not: a bogus value is an
/// `InvalidArgument`, an unsupported one `SimdUnsupported`. Each value is set in a
/// child process running this test alone.
fn simd_from_the_environment(m: StartMethod) {
    if let Ok(value) = std::env::var("SHMPOOL_SIMD") {
        if std::env::var("VOCAB_SIMD_CHILD").is_err() {
            return; // SHMPOOL_SIMD set for the whole run: nothing to check here
        }
        let built = Pool::builder().processes(1).start_method(m).build();
        match (Simd::parse(&value), built) {
            (None, Err(Error::InvalidArgument { name, reason })) => {
                assert_eq!(name, "SHMPOOL_SIMD");
                assert!(reason.contains(&value), "{reason}");
            }
            (Some(level), Err(Error::SimdUnsupported { requested, .. })) => {
                assert!(!level.is_supported());
                assert_eq!(requested, level);
            }
            (Some(level), Ok(pool)) => {
                assert!(level.is_supported());
                assert_eq!(pool.stats().simd, level);
                let x = SharedArray::from_slice(&[4.0f64, 9.0]).unwrap();
                let mut y = SharedArray::zeroed(2).unwrap();
                pool.map_into(&x, &mut y, |v: f64| v.sqrt()).unwrap();
                assert_eq!(&y[..], &[2.0, 3.0]);
            }
            (parsed, other) => panic!("SHMPOOL_SIMD={value:?} ({parsed:?}): {other:?}"),
        }
        println!("VOCAB_SIMD_CHILD checked {value}");
        return;
    }
    let method = match m {
        StartMethod::Fork => "fork",
        StartMethod::ForkServer => "fork_server",
        StartMethod::Spawn => "spawn",
        other => panic!("unknown start method {other:?}"),
    };
    // The test's name within this binary: the module path without the crate.
    let module = module_path!().split_once("::").expect("a module path").1;
    let name = format!("{module}::simd_from_the_environment::{method}");
    for value in ["bogus", "baseline", "avx2", "avx512"] {
        let out = rerun_self_with(
            &name,
            &[
                ("VOCAB_SIMD_CHILD", "1"),
                ("SHMPOOL_SIMD", value),
                ("RUST_BACKTRACE", "0"),
            ],
            Duration::from_secs(60),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(&format!("VOCAB_SIMD_CHILD checked {value}")),
            "SHMPOOL_SIMD={value}: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The benches' other kernels (axpy, a 256-bin histogram, a row normalisation)
/// give the same bits, or counts, at every level the CPU supports.
fn bench_kernels_agree_at_every_level(m: StartMethod) {
    let mut r = rng();
    let n = 100_003;
    let x = SharedArray::try_from_iter((0..n).map(|_| super::unit(&mut r))).expect("x");
    let y = SharedArray::try_from_iter((0..n).map(|_| super::unit(&mut r))).expect("y");
    let g = SharedArray::try_from_iter((0..64 * 97).map(|_| super::unit(&mut r).abs() + 0.5))
        .expect("grid")
        .reshape(&[64, 97])
        .expect("2-D");
    let mut seen: Option<(Vec<u64>, Vec<u64>, Vec<u64>)> = None;
    for level in LEVELS.into_iter().filter(|l| l.is_supported()) {
        let pool = Pool::builder()
            .processes(2)
            .start_method(m)
            .simd(level)
            .build()
            .expect("pool");
        let mut out = SharedArray::<f64>::zeroed(n).expect("out");
        pool.bulk()
            .with(2.5f64)
            .zip_map_into((&x, &y), &mut out, |a: &f64, (u, v): (f64, f64)| a * u + v)
            .expect("axpy");
        let axpy = bits(&out);
        let hist = pool
            .bulk()
            .histogram(
                &x,
                Bins::Uniform {
                    count: 256,
                    range: (-1.0, 1.0),
                },
            )
            .expect("histogram")
            .counts;
        let mut rows = SharedArray::<f64>::zeroed(64 * 97)
            .expect("rows")
            .reshape(&[64, 97])
            .expect("2-D");
        pool.bulk()
            .map_rows_into(&g, &mut rows, |row: &[f64], o: &mut [f64]| {
                let inv = 1.0 / row.iter().sum::<f64>();
                for (o, v) in o.iter_mut().zip(row) {
                    *o = v * inv;
                }
            })
            .expect("rows");
        let now = (axpy, hist, bits(&rows));
        match &seen {
            None => seen = Some(now),
            Some(first) => assert!(*first == now, "{level} differs from the first level"),
        }
    }
}

per_start_method!(
    simd_levels,
    simd_from_the_environment,
    bench_kernels_agree_at_every_level,
);
