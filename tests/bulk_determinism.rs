//! The determinism promise for the reductions numpy users reach for (issue 25):
//! `mean`, `var`, `std` (and `dtype=`), the NaN-aware forms, and every reduction
//! along an axis of a 2-D array give the same bits for 1 to 4 workers, under each
//! start method and at every SIMD level the CPU has, given the chunk length.
//!
//! Each start method is compared with one reference: a fork pool of 1 worker at
//! the baseline SIMD level. The data make the order of the additions show in the
//! bits (checked below), so equal bits are not an accident of easy data.

use shmpool::{Pool, SharedArray, Simd, StartMethod};

#[macro_use]
mod common;

use common::{Rng, pool_of};

fn seed() -> u64 {
    std::env::var("DETERMINISM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0025_0003)
}

/// A value of magnitude 10⁻³ to 10⁶ around an offset of 10³, either sign: sums of
/// such values round differently in every order.
fn wide(rng: &mut Rng) -> f64 {
    let unit = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
    1e3 + unit * 10f64.powi(rng.range(0..10) as i32 - 3)
}

/// The arrays the fingerprint reduces.
struct Data {
    /// 1-D, f64 and f32.
    x: SharedArray<f64>,
    x32: SharedArray<f32>,
    /// 1-D with NaNs (one in 50), f64 and f32.
    nans: SharedArray<f64>,
    nans32: SharedArray<f32>,
    /// 1-D integers.
    ints: SharedArray<i32>,
    /// 2-D, 601 × 67 (no chunk length divides the rows), f64 and f32, with a NaN
    /// in a few columns and rows and an infinity in one.
    grid: SharedArray<f64>,
    grid32: SharedArray<f32>,
}

const ROWS: usize = 601;
const COLS: usize = 67;

impl Data {
    fn new(rng: &mut Rng) -> Data {
        let n = 200_003;
        let xs: Vec<f64> = (0..n).map(|_| wide(rng)).collect();
        let nans: Vec<f64> = xs
            .iter()
            .map(|&v| if rng.chance(2) { f64::NAN } else { v })
            .collect();
        let mut grid: Vec<f64> = (0..ROWS * COLS).map(|_| wide(rng)).collect();
        for (r, c) in [(5, 3), (400, 3), (77, 60), (600, 66)] {
            grid[r * COLS + c] = f64::NAN;
        }
        grid[300 * COLS + 10] = f64::NEG_INFINITY;
        let narrow = |v: &[f64]| SharedArray::try_from_iter(v.iter().map(|&v| v as f32));
        Data {
            x32: narrow(&xs).unwrap(),
            x: SharedArray::from_slice(&xs).unwrap(),
            nans32: narrow(&nans).unwrap(),
            nans: SharedArray::from_slice(&nans).unwrap(),
            ints: SharedArray::try_from_iter(xs.iter().map(|&v| (v * 1e3) as i32)).unwrap(),
            grid32: narrow(&grid).unwrap().reshape(&[ROWS, COLS]).unwrap(),
            grid: SharedArray::from_slice_shaped(&grid, &[ROWS, COLS]).unwrap(),
        }
    }
}

/// Bits of f64s, f32s or indices, as u64s.
trait Bits {
    fn bits(self) -> u64;
}
impl Bits for f64 {
    fn bits(self) -> u64 {
        self.to_bits()
    }
}
impl Bits for f32 {
    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
}
impl Bits for u64 {
    fn bits(self) -> u64 {
        self
    }
}
impl<T: Bits> Bits for Option<T> {
    fn bits(self) -> u64 {
        self.map_or(u64::MAX, Bits::bits)
    }
}
impl Bits for usize {
    fn bits(self) -> u64 {
        self as u64
    }
}

/// One named result, as bits.
type Print = Vec<(String, Vec<u64>)>;

/// Every result under test, by name, with the default chunk length and with the
/// fixed ones (1000 elements; 7 rows, so that the axis-0 partials are many).
fn fingerprint(pool: &Pool, d: &Data) -> Print {
    let mut out: Print = Vec::new();
    let mut one = |name: String, v: u64| out.push((name, vec![v]));
    for chunk in [None, Some(1000)] {
        let b = || chunk.map_or(pool.bulk(), |n| pool.bulk().chunk_len(n));
        let at = |what: &str| format!("{what}, chunk {chunk:?}");
        one(at("mean f64"), b().mean(&d.x).unwrap().bits());
        one(at("mean f32"), b().mean(&d.x32).unwrap().bits());
        one(
            at("mean f32 in f64"),
            b().dtype::<f64>().mean(&d.x32).unwrap().bits(),
        );
        one(at("mean i32"), b().mean(&d.ints).unwrap().bits());
        for ddof in [0, 1] {
            one(
                at(&format!("var f64 ddof {ddof}")),
                b().var(&d.x, ddof).unwrap().bits(),
            );
            one(
                at(&format!("var f32 ddof {ddof}")),
                b().var(&d.x32, ddof).unwrap().bits(),
            );
            one(
                at(&format!("std f64 ddof {ddof}")),
                b().std(&d.x, ddof).unwrap().bits(),
            );
            one(
                at(&format!("std f32 ddof {ddof}")),
                b().std(&d.x32, ddof).unwrap().bits(),
            );
        }
        one(
            at("var f32 in f64"),
            b().dtype::<f64>().var(&d.x32, 0).unwrap().bits(),
        );
        one(at("var i32"), b().var(&d.ints, 1).unwrap().bits());
        one(at("nansum f64"), b().nansum(&d.nans).unwrap().bits());
        one(at("nansum f32"), b().nansum(&d.nans32).unwrap().bits());
        one(
            at("nansum f32 in f64"),
            b().dtype::<f64>().nansum(&d.nans32).unwrap().bits(),
        );
        one(at("nanmean f64"), b().nanmean(&d.nans).unwrap().bits());
        one(at("nanmean f32"), b().nanmean(&d.nans32).unwrap().bits());
        one(at("nanmin f64"), b().nanmin(&d.nans).unwrap().bits());
        one(at("nanmax f32"), b().nanmax(&d.nans32).unwrap().bits());
        one(at("nanargmin f64"), b().nanargmin(&d.nans).unwrap().bits());
        one(
            at("nanargmax f32"),
            b().nanargmax(&d.nans32).unwrap().bits(),
        );
        one(at("nanargmax f64"), b().nanargmax(&d.nans).unwrap().bits());
    }
    for chunk in [None, Some(7)] {
        let b = || chunk.map_or(pool.bulk(), |n| pool.bulk().chunk_len(n));
        for axis in [0, 1] {
            axis_prints(
                &mut out,
                &b,
                &d.grid,
                axis,
                &format!("f64 axis {axis}, chunk {chunk:?}"),
            );
            axis_prints(
                &mut out,
                &b,
                &d.grid32,
                axis,
                &format!("f32 axis {axis}, chunk {chunk:?}"),
            );
            let len = if axis == 0 { COLS } else { ROWS };
            let mut wide = SharedArray::<f64>::zeroed(len).unwrap();
            b().dtype::<f64>()
                .var_axis(&d.grid32, axis, 1, &mut wide)
                .unwrap();
            out.push((
                format!("f32 in f64 var axis {axis}, chunk {chunk:?}"),
                wide.iter().map(|v| v.bits()).collect(),
            ));
        }
    }
    out
}

/// Every axis reduction of `x` along `axis`, by name.
fn axis_prints<'p, T>(
    out: &mut Print,
    b: &dyn Fn() -> shmpool::Bulk<'p>,
    x: &SharedArray<T>,
    axis: usize,
    what: &str,
) where
    T: shmpool::Number + Bits,
    shmpool::DefaultDtype: shmpool::SumIn<T, Acc = T> + shmpool::MeanIn<T, Acc = T>,
{
    let len = x.shape()[1 - axis];
    let mut v = SharedArray::<T>::zeroed(len).unwrap();
    let mut at = SharedArray::<u64>::zeroed(len).unwrap();
    let mut push = |name: &str, v: &SharedArray<T>| {
        out.push((
            format!("{name} {what}"),
            v.iter().map(|&v| v.bits()).collect(),
        ));
    };
    b().sum_axis(x, axis, &mut v).unwrap();
    push("sum", &v);
    b().mean_axis(x, axis, &mut v).unwrap();
    push("mean", &v);
    for ddof in [0, 1] {
        b().var_axis(x, axis, ddof, &mut v).unwrap();
        push(&format!("var ddof {ddof}"), &v);
        b().std_axis(x, axis, ddof, &mut v).unwrap();
        push(&format!("std ddof {ddof}"), &v);
    }
    b().min_axis(x, axis, &mut v).unwrap();
    push("min", &v);
    b().max_axis(x, axis, &mut v).unwrap();
    push("max", &v);
    b().argmin_axis(x, axis, &mut at).unwrap();
    out.push((format!("argmin {what}"), at.to_vec()));
    b().argmax_axis(x, axis, &mut at).unwrap();
    out.push((format!("argmax {what}"), at.to_vec()));
}

/// The first result of `got` that differs from `want`'s, by name.
fn first_difference(got: &Print, want: &Print) -> Option<String> {
    assert_eq!(got.len(), want.len(), "the fingerprints' lengths");
    got.iter().zip(want).find_map(|((name, g), (_, w))| {
        let k = g.iter().zip(w).position(|(g, w)| g != w)?;
        Some(format!(
            "{name}: element {k} is {:#x}, the reference's {:#x}",
            g[k], w[k]
        ))
    })
}

/// The data are such that the order of the additions shows in the bits: other
/// chunk lengths give other bits for the 1-D and axis-0 reductions.
fn assert_order_sensitive(pool: &Pool, d: &Data) {
    let s = seed();
    let mean = |c| pool.bulk().chunk_len(c).mean(&d.x).unwrap();
    assert_ne!(mean(1000).to_bits(), mean(999).to_bits(), "mean (seed {s})");
    // The variance is far more precise than a sum (its error bound is in ulps):
    // some chunk lengths round it alike, not all.
    let lens = [16, 37, 999, 1000, 4096, 65_536];
    let var = lens.map(|c| pool.bulk().chunk_len(c).var(&d.x, 0).unwrap().to_bits());
    assert!(var.iter().any(|&v| v != var[0]), "var (seed {s})");
    let var32 = lens.map(|c| pool.bulk().chunk_len(c).var(&d.x32, 0).unwrap().to_bits());
    assert!(var32.iter().any(|&v| v != var32[0]), "var f32 (seed {s})");
    let nansum = |c| pool.bulk().chunk_len(c).nansum(&d.nans).unwrap();
    assert_ne!(
        nansum(1000).to_bits(),
        nansum(999).to_bits(),
        "nansum (seed {s})"
    );
    let columns = |c| {
        let mut v = SharedArray::<f64>::zeroed(COLS).unwrap();
        pool.bulk()
            .chunk_len(c)
            .sum_axis(&d.grid, 0, &mut v)
            .unwrap();
        v.to_vec()
    };
    let (a, b) = (columns(7), columns(8));
    assert!(
        a.iter().zip(&b).any(|(a, b)| a.to_bits() != b.to_bits()),
        "column sums (seed {s})"
    );
}

/// The new reductions have the same bits for 1 to 4 workers and at every SIMD
/// level, under start method `m`, as a fork pool of 1 worker at the baseline.
fn new_reductions_are_bit_identical_across_workers_methods_and_simd(m: StartMethod) {
    let d = Data::new(&mut Rng::new(seed()));
    let reference = {
        let pool = Pool::builder()
            .processes(1)
            .start_method(StartMethod::Fork)
            .simd(Simd::Baseline)
            .build()
            .unwrap();
        assert_order_sensitive(&pool, &d);
        fingerprint(&pool, &d)
    };
    let mut configs: Vec<(usize, Simd)> = (1..=4).map(|w| (w, Simd::Auto)).collect();
    configs.push((2, Simd::Baseline));
    for level in [Simd::Avx2, Simd::Avx512] {
        if level.is_supported() {
            configs.push((3, level));
        }
    }
    for (workers, simd) in configs {
        let pool = if simd == Simd::Auto {
            pool_of(workers, m)
        } else {
            Pool::builder()
                .processes(workers)
                .start_method(m)
                .simd(simd)
                .build()
                .unwrap()
        };
        let got = fingerprint(&pool, &d);
        if let Some(diff) = first_difference(&got, &reference) {
            panic!(
                "{workers} workers, {m:?}, simd {simd} differ from the reference: {diff} (seed {})",
                seed()
            );
        }
    }
}

per_start_method!(new_reductions_are_bit_identical_across_workers_methods_and_simd);
