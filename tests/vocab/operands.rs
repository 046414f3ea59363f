//! Several inputs and outputs: numpy's binary ufuncs with `out=`, `where`, axpy and
//! `divmod`, with arrays of different types; every length mismatch is a typed error.

use std::ops::Range;

use shmpool::{SharedArray, StartMethod};

use super::{assert_same, bits, length_error, randoms, rng, seed, unit};
use crate::common::pool_of;

/// numpy's `add(a, b, out=)`, `where`, axpy and `divmod`, with 2 and 3 inputs of
/// different types into 1 and 2 outputs, elementwise and by chunk.
fn several_inputs_and_outputs(m: StartMethod) {
    let pool = pool_of(2, m);
    let mut rng = rng();
    let n = 40_000;
    let a = SharedArray::try_from_iter((0..n).map(|_| unit(&mut rng) as f32)).unwrap();
    let b = SharedArray::try_from_iter((0..n).map(|_| rng.below(2000) as i16 - 1000)).unwrap();
    let c = randoms(&mut rng, n);
    let cond = SharedArray::try_from_iter((0..n).map(|_| rng.below(2) as u8)).unwrap();

    // np.add(a, b, out=s), f32 + i16 into f64.
    let mut s = SharedArray::<f64>::zeroed(n).unwrap();
    pool.bulk()
        .zip_map_into((&a, &b), &mut s, |(a, b): (f32, i16)| {
            f64::from(a) + f64::from(b)
        })
        .unwrap();
    let want: Vec<f64> = (0..n).map(|i| f64::from(a[i]) + f64::from(b[i])).collect();
    assert_same(&bits(&s), &bits(&want), "np.add");

    // np.where(cond, a, c), u8, f32, f64 into f64.
    let mut w = SharedArray::<f64>::zeroed(n).unwrap();
    pool.bulk()
        .zip_map_into((&cond, &a, &c), &mut w, |(k, a, c): (u8, f32, f64)| {
            if k != 0 { f64::from(a) } else { c }
        })
        .unwrap();
    let want: Vec<f64> = (0..n)
        .map(|i| if cond[i] != 0 { f64::from(a[i]) } else { c[i] })
        .collect();
    assert_same(&bits(&w), &bits(&want), "np.where");

    // divmod(p, q, out=(quot, rem)), i64 by i32, floored as in Python.
    let p = SharedArray::try_from_iter((0..n).map(|_| rng.next_u64() as i64 >> 20)).unwrap();
    let q = SharedArray::try_from_iter((0..n).map(|_| {
        let v = rng.below(2000) as i32 - 1000;
        if v == 0 { 7 } else { v }
    }))
    .unwrap();
    let (mut quot, mut rem) = (
        SharedArray::<i64>::zeroed(n).unwrap(),
        SharedArray::<i32>::zeroed(n).unwrap(),
    );
    fn divmod((p, q): (i64, i32)) -> (i64, i32) {
        let q = i64::from(q);
        let (d, r) = (p.div_euclid(q), p.rem_euclid(q));
        // Python floors: the remainder takes the divisor's sign.
        if r != 0 && q < 0 {
            (d - 1, (r + q) as i32)
        } else {
            (d, r as i32)
        }
    }
    pool.bulk()
        .zip_map_into((&p, &q), (&mut quot, &mut rem), divmod)
        .unwrap();
    for i in 0..n {
        let (d, r) = divmod((p[i], q[i]));
        assert_eq!((quot[i], rem[i]), (d, r), "divmod at {i} (seed {})", seed());
        assert_eq!(d * i64::from(q[i]) + i64::from(r), p[i]);
    }

    // Three inputs into two outputs, by chunk: (a·b + c, a − c) with a parameter.
    let (mut u, mut v) = (
        SharedArray::<f64>::zeroed(n).unwrap(),
        SharedArray::<f32>::zeroed(n).unwrap(),
    );
    let k = 3.0f64;
    pool.bulk()
        .chunk_len(1234)
        .with(k)
        .zip_map_chunks_into(
            (&a, &b, &c),
            (&mut u, &mut v),
            |k: &f64, (a, b, c): (&[f32], &[i16], &[f64]), (u, v): (&mut [f64], &mut [f32])| {
                for i in 0..a.len() {
                    u[i] = k * f64::from(a[i]) * f64::from(b[i]) + c[i];
                    v[i] = a[i] - c[i] as f32;
                }
            },
        )
        .unwrap();
    for i in 0..n {
        let want_u = k * f64::from(a[i]) * f64::from(b[i]) + c[i];
        let want_v = a[i] - c[i] as f32;
        assert_eq!(
            (u[i].to_bits(), v[i].to_bits()),
            (want_u.to_bits(), want_v.to_bits()),
            "3 in, 2 out at {i} (seed {})",
            seed()
        );
    }

    // The same elementwise, without parameters.
    pool.bulk()
        .zip_map_into(
            (&a, &b, &c),
            (&mut u, &mut v),
            |(a, b, c): (f32, i16, f64)| (f64::from(a) * f64::from(b) + c, a - c as f32),
        )
        .unwrap();
    for i in 0..n {
        let want_u = f64::from(a[i]) * f64::from(b[i]) + c[i];
        assert_eq!(u[i].to_bits(), want_u.to_bits(), "at {i} (seed {})", seed());
        assert_eq!(v[i].to_bits(), (a[i] - c[i] as f32).to_bits());
    }
}

/// Every length mismatch is a typed error, and nothing is written.
fn length_mismatches_are_typed_errors(m: StartMethod) {
    let pool = pool_of(2, m);
    let a = SharedArray::<f64>::filled(10, 1.0).unwrap();
    let b = SharedArray::<f32>::filled(10, 2.0).unwrap();
    let short = SharedArray::<u8>::filled(9, 3).unwrap();
    let mut y = SharedArray::<f64>::filled(10, -1.0).unwrap();
    let mut y9 = SharedArray::<f64>::filled(9, -1.0).unwrap();
    let mut z = SharedArray::<f64>::filled(10, -1.0).unwrap();
    let mut z9 = SharedArray::<i32>::filled(9, -1).unwrap();
    let mismatch = |len, expected| ("LengthMismatch".to_string(), String::new(), len, expected);
    let operand =
        |what: &str, len, expected| ("OperandLength".to_string(), what.to_string(), len, expected);

    let r = pool.map_into(&a, &mut y9, |v: f64| v);
    assert_eq!(length_error(r), mismatch(9, 10));
    let r = pool
        .bulk()
        .zip_map_into((&a, &b), &mut y9, |(a, _): (f64, f32)| a);
    assert_eq!(length_error(r), mismatch(9, 10));
    let r = pool
        .bulk()
        .zip_map_into((&a, &short), &mut y, |(a, _): (f64, u8)| a);
    assert_eq!(length_error(r), operand("input 1", 9, 10));
    let r = pool
        .bulk()
        .zip_map_into((&a, &b, &short), &mut y, |(a, _, _): (f64, f32, u8)| a);
    assert_eq!(length_error(r), operand("input 2", 9, 10));
    let r = pool
        .bulk()
        .zip_map_into(&a, (&mut y, &mut z9), |v: f64| (v, 0i32));
    assert_eq!(length_error(r), operand("output 1", 9, 10));
    let r = pool.bulk().with(1.0f64).zip_map_chunks_into(
        (&a, &short),
        (&mut y, &mut z),
        |_: &f64, _: (&[f64], &[u8]), _: (&mut [f64], &mut [f64])| {},
    );
    assert_eq!(length_error(r), operand("input 1", 9, 10));
    let r = pool.bulk().map_indexed_into(
        (&a, &b),
        &mut y9,
        |_: Range<usize>, _: (&[f64], &[f32]), _: &mut [f64]| {},
    );
    assert_eq!(length_error(r), mismatch(9, 10));
    let r = pool.bulk().map_reduce(
        (&a, &short),
        0.0,
        |(a, _): (f64, u8)| a,
        |x: f64, y: f64| x + y,
    );
    assert_eq!(length_error(r), operand("input 1", 9, 10));
    let r = pool.bulk().fold_reduce(
        (&a, &b, &short),
        0u8,
        |_: &mut u8, _: (&[f64], &[f32], &[u8])| {},
        |x, _| x,
    );
    assert_eq!(length_error(r), operand("input 2", 9, 10));
    let b64 = SharedArray::<f64>::filled(9, 1.0).unwrap();
    // `dot` has two inputs and no output: the error names `b`.
    let r = pool.bulk().dot(&a, &b64);
    let message = r.as_ref().unwrap_err().to_string();
    assert_eq!(
        length_error(r),
        operand("b, the second vector of the dot product,", 9, 10)
    );
    assert!(!message.contains("output"), "{message}");

    assert!(
        y.iter()
            .chain(z.iter())
            .chain(y9.iter())
            .all(|&v| v == -1.0)
    );
    assert!(z9.iter().all(|&v| v == -1));
}

per_start_method!(
    several_inputs_and_outputs,
    length_mismatches_are_typed_errors,
);
