//! Context arrays: `context(&array)` lends read-only arrays that every chunk reads
//! whole, through `Env::array`; a wrong type or index is a kernel panic.

use shmpool::{Env, SharedArray, StartMethod};

use super::{assert_same, bits, kernel_panic_of, randoms, rng, seed, unit};
use crate::common::pool_of;

/// A lookup-table gather, and a kernel that reads two tables of different types
/// plus parameters, through maps, row maps and reductions.
fn context_arrays_gather_and_mix_types(m: StartMethod) {
    let pool = pool_of(2, m);
    let mut rng = rng();
    let n = 30_000;
    let table = randoms(&mut rng, 1000);
    let idx = SharedArray::try_from_iter((0..n).map(|_| rng.below(1000) as u32)).unwrap();

    // out[i] = table[idx[i]]
    let mut out = SharedArray::zeroed(n).unwrap();
    pool.bulk()
        .context(&table)
        .map_into(&idx, &mut out, |env: &Env<()>, i: u32| {
            env.array::<f64>(0)[i as usize]
        })
        .unwrap();
    let want: Vec<f64> = idx.iter().map(|&i| table[i as usize]).collect();
    assert_same(&bits(&out), &bits(&want), "gather");

    // Two tables, f32 and u16, and a scale: out[i] = t32[i % 97] + scale * t16[i % 61].
    let t32 = SharedArray::try_from_iter((0..97).map(|_| unit(&mut rng) as f32)).unwrap();
    let t16 = SharedArray::try_from_iter((0..61).map(|_| rng.below(60_000) as u16)).unwrap();
    let scale = 0.5f32;
    let at = SharedArray::try_from_iter(0..n as u32).unwrap();
    let mix = |i: u32| t32[i as usize % 97] + scale * f32::from(t16[i as usize % 61]);
    let want: Vec<f32> = (0..n as u32).map(mix).collect();
    let mut out = SharedArray::<f32>::zeroed(n).unwrap();
    pool.bulk()
        .with(scale)
        .context(&t32)
        .context(&t16)
        .map_into(&at, &mut out, |env: &Env<f32>, i: u32| {
            assert_eq!(env.arrays(), 2);
            let (t32, t16) = (env.array::<f32>(0), env.array::<u16>(1));
            t32[i as usize % t32.len()] + **env * f32::from(t16[i as usize % t16.len()])
        })
        .unwrap();
    assert_same(&out, &want, "two context arrays");

    // The same through for_each_mut and map_reduce.
    let mut inplace = SharedArray::try_from_iter((0..n).map(|i| i as f32)).unwrap();
    pool.bulk()
        .with(scale)
        .context(&t32)
        .context(&t16)
        .for_each_mut(&mut inplace, |env: &Env<f32>, v: &mut f32| {
            let i = *v as usize;
            *v =
                env.array::<f32>(0)[i % 97] + env.params() * f32::from(env.array::<u16>(1)[i % 61]);
        })
        .unwrap();
    assert_same(&inplace, &want, "context in for_each_mut");
    let hits = pool
        .bulk()
        .context(&t16)
        .map_reduce(
            &at,
            0u64,
            |env: &Env<()>, i: u32| u64::from(env.array::<u16>(0)[i as usize % 61] > 30_000),
            |a: u64, b: u64| a + b,
        )
        .unwrap();
    let want_hits = (0..n).filter(|i| t16[i % 61] > 30_000).count() as u64;
    assert_eq!(hits, want_hits, "context in map_reduce (seed {})", seed());

    // Row maps: each row of 10 picks its scale from a per-row table.
    let row_scale = randoms(&mut rng, 3000);
    let g = SharedArray::try_from_iter((0..n).map(|i| i as f64))
        .unwrap()
        .reshape(&[3000, 10])
        .unwrap();
    let mut y = SharedArray::zeroed(n)
        .unwrap()
        .reshape(&[3000, 10])
        .unwrap();
    pool.bulk()
        .context(&row_scale)
        .map_rows_into(&g, &mut y, |env: &Env<()>, row: &[f64], out: &mut [f64]| {
            let r = row[0] as usize / 10;
            for (o, v) in out.iter_mut().zip(row) {
                *o = v * env.array::<f64>(0)[r];
            }
        })
        .unwrap();
    let want: Vec<f64> = (0..n).map(|i| i as f64 * row_scale[i / 10]).collect();
    assert_same(&bits(&y), &bits(&want), "context in map_rows_into");
}

/// `Env::array` with the wrong type or index panics in the kernel: the operation
/// fails with `KernelPanicked` naming the chunk, and the pool carries on.
fn a_wrong_context_type_or_index_is_a_kernel_panic(m: StartMethod) {
    let pool = pool_of(2, m);
    let table = SharedArray::from_slice(&[1.0f64, 2.0, 3.0]).unwrap();
    let x = SharedArray::try_from_iter(0..10_000u32).unwrap();
    let mut y = SharedArray::<u32>::zeroed(10_000).unwrap();

    let err = pool
        .bulk()
        .chunk_len(1000)
        .context(&table)
        .map_into(&x, &mut y, |env: &Env<()>, i: u32| {
            if i == 4321 {
                return env.array::<u32>(0)[0]; // the table holds f64
            }
            i
        })
        .unwrap_err();
    let (chunk, message) = kernel_panic_of(&err);
    assert_eq!(chunk, 4000..5000, "{err}");
    assert!(message.contains("does not hold u32"), "{message}");

    let err = pool
        .bulk()
        .chunk_len(1000)
        .context(&table)
        .map_into(&x, &mut y, |env: &Env<()>, i: u32| {
            if i == 7777 {
                return env.array::<f64>(1)[0] as u32; // there is one array
            }
            i
        })
        .unwrap_err();
    let (chunk, message) = kernel_panic_of(&err);
    assert_eq!(chunk, 7000..8000, "{err}");
    assert!(message.contains("context array 1"), "{message}");

    // Also in a reduction.
    let err = pool
        .bulk()
        .chunk_len(1000)
        .context(&table)
        .map_reduce(
            &x,
            0u64,
            |env: &Env<()>, i: u32| {
                if i == 123 {
                    u64::from(env.array::<u8>(0)[0])
                } else {
                    1
                }
            },
            |a: u64, b: u64| a + b,
        )
        .unwrap_err();
    let (chunk, message) = kernel_panic_of(&err);
    assert_eq!(chunk, 0..1000, "{err}");
    assert!(message.contains("does not hold u8"), "{message}");

    // The pool is intact.
    pool.bulk()
        .context(&table)
        .map_into(&x, &mut y, |env: &Env<()>, i: u32| {
            i + env.array::<f64>(0)[2] as u32
        })
        .unwrap();
    assert!(y.iter().enumerate().all(|(i, &v)| v == i as u32 + 3));
}

per_start_method!(
    context_arrays_gather_and_mix_types,
    a_wrong_context_type_or_index_is_a_kernel_panic,
);
