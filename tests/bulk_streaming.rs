//! `map_into` writes outputs of 64 MiB and more with streaming stores: the results
//! must be those of the plain kernel, bit for bit, at every SIMD level, for ranges
//! that start and end off any alignment.

use shmpool::{Pool, SharedArray, Simd};

/// A pool of two workers at each SIMD level this CPU supports.
fn pools_at_every_level() -> Vec<(Simd, Pool)> {
    [Simd::Baseline, Simd::Avx2, Simd::Avx512]
        .into_iter()
        .filter(|level| level.is_supported())
        .map(|level| {
            let pool = Pool::builder()
                .processes(2)
                .simd(level)
                .build()
                .expect("pool");
            (level, pool)
        })
        .collect()
}

#[test]
fn streamed_outputs_equal_plain_ones_at_every_level() {
    // 67 MiB of f64 output: above the streaming threshold.
    let n = (67usize << 20) / 8 + 37;
    let x = SharedArray::try_from_iter((0..n).map(|i| (i as f64).mul_add(0.37, -5.0))).expect("x");
    let want: Vec<u64> = x.iter().map(|v| (v.abs().sqrt() * 1.5).to_bits()).collect();
    for (level, pool) in pools_at_every_level() {
        let mut y = SharedArray::filled(n, f64::NAN).expect("y");
        pool.map_into(&x, &mut y, |v: f64| v.abs().sqrt() * 1.5)
            .expect("map_into");
        let wrong = y.iter().zip(&want).position(|(y, w)| y.to_bits() != *w);
        assert_eq!(wrong, None, "{level}: first wrong element");
        // A range whose first element is not 16-byte aligned, and an odd chunking.
        y.fill(-1.0);
        pool.bulk()
            .range(3..n - 5)
            .chunk_len(100_003)
            .map_into(&x, &mut y, |v: f64| v.abs().sqrt() * 1.5)
            .expect("range map");
        assert!(
            y[..3].iter().chain(&y[n - 5..]).all(|&v| v == -1.0),
            "{level}: outside the range"
        );
        let wrong = (3..n - 5).find(|&i| y[i].to_bits() != want[i]);
        assert_eq!(wrong, None, "{level}: first wrong element of the range");
        // Two inputs into one output (axpy), streamed too.
        pool.bulk()
            .with(2.5f64)
            .zip_map_into((&x, &x), &mut y, |a: &f64, (u, v): (f64, f64)| a * u + v)
            .expect("axpy");
        let wrong = (0..n).find(|&i| y[i].to_bits() != (2.5 * x[i] + x[i]).to_bits());
        assert_eq!(wrong, None, "{level}: first wrong axpy element");
    }
}

/// Two-byte elements, streamed 16 or 32 bytes at a time after a plain prefix that
/// reaches the store width's alignment from an odd element.
#[test]
fn streamed_narrow_elements_equal_plain_ones_at_every_level() {
    let n = (65usize << 20) / 2 + 11;
    let x = SharedArray::try_from_iter((0..n).map(|i| (i % 65_521) as u16)).expect("x");
    for (level, pool) in pools_at_every_level() {
        let mut y = SharedArray::filled(n, u16::MAX).expect("y");
        pool.bulk()
            .range(7..n - 3)
            .chunk_len(77_777)
            .map_into(&x, &mut y, |v: u16| v.wrapping_mul(3) ^ 0x5a5a)
            .expect("range map");
        let wrong = (0..n).find(|&i| {
            let want = if (7..n - 3).contains(&i) {
                x[i].wrapping_mul(3) ^ 0x5a5a
            } else {
                u16::MAX
            };
            y[i] != want
        });
        assert_eq!(wrong, None, "{level}: first wrong element");
    }
}
