//! `sum`, `mean`, `var` and `std` of a whole array (numpy's `np.sum`, `np.mean`,
//! `np.var`, `np.std`), in the accumulator the builder names (`dtype=`,
//! `src/pool/bulk/accumulate.rs`), deterministic like every reduction.
//!
//! **The variance in one pass.** numpy computes `var` in two passes over the
//! data: the mean `m`, then `Σ(x − m)²`. shmpool reads the array once. Each chunk
//! (a few hundred KiB, in the worker's cache) is read four times: its sum `S`, then
//! `k`, the element nearest the chunk's mean, then `L = Σ(x − k)` and `Q = Σ(x −
//! k)²`. The parent adds the chunks' sums in the fixed tree (the very sum of
//! [`Bulk::sum`], so `mean` is `sum / n`), takes `m = S / n`, and adds, again in
//! the fixed tree, each chunk's `Σ(x − m)² = Q − 2aL + n·a²` (with `a = m − k`) and
//! `Σ(x − m) = L − n·a`; the variance's numerator is `T − R²/n`, the corrected
//! two-pass formula (Björck; Chan, Golub and LeVeque), which cancels the error of
//! `m` to first order.
//!
//! Why it is sound: since `k` is a datum within the chunk's standard deviation of
//! its mean (the nearest element always is), the three terms of a chunk add up to
//! at most 7 times the chunk's share of `Σ(x − m)²`, however large the mean is
//! against the spread (`1e9 + noise`): no cancellation beyond a constant. So the
//! numerator is within `(7·(c/16 + 8) + log2(chunks) + 4)·ε` of the exact one,
//! relatively, for chunks of `c` elements and unit roundoff `ε` (below `2·10⁻¹²`
//! at the default chunk length in `f64`). numpy's own two-pass result carries in
//! addition `n·(m − μ)²`, its mean's error squared; the tests compare within the
//! sum of both bounds.
//!
//! Why it is exact where numpy's is: `k` is a datum, so for data and a mean on a
//! grid (integers, or multiples of a power of two) every `x − k`, square, `a`, and
//! sum above is exact while it fits the mantissa (about `8·n·max(x − m)²` below
//! 2^53 in `f64`, 2^24 in `f32`), and `R` is 0. numpy's result is then exact too,
//! and the two agree to the bit.
//!
//! Where the numerator overflows, or the mean is infinite, the shifted terms would
//! turn an infinity into a NaN; the variance is then taken in numpy's second pass,
//! `Σ(x − m)²`, run as another job, so that it is the infinity or NaN numpy gives.

use super::accumulate::{Averaged, Dtype, Float, MeanIn, SumIn, Summed, Widen, divide_by_count};
use super::bulk_builder::Bulk;
use super::lanes::{chunk_sum, nearest};
use super::number::Number;
use super::reduce::{fold_kernels, tree_combine};
use crate::array::SharedArray;
use crate::error::Result;
use crate::kernel::{ArrayArg, Params};
use crate::layout::JobKind;

/// Words of a chunk's moments: count, sum, shift, `Σ(x − k)`, `Σ(x − k)²`, each
/// as an `f64` (exact for an `f32` accumulator's values, and for counts).
pub(super) const MOMENT_WORDS: usize = 5;

/// One chunk's (or one column's within a chunk) moments, in the accumulator.
#[derive(Debug, Clone, Copy)]
pub(super) struct ChunkMoments<A> {
    /// Elements.
    pub n: A,
    /// Their sum.
    pub s: A,
    /// The shift: the element nearest their mean.
    pub k: A,
    /// `Σ(x − k)`.
    pub l: A,
    /// `Σ(x − k)²`.
    pub q: A,
}

impl<A: Float> ChunkMoments<A> {
    /// The moments of `xs` (not empty), each element widened by `term`: four
    /// passes over a chunk that is in cache after the first.
    #[inline(always)]
    pub(super) fn of<T: Copy>(xs: &[T], term: impl Fn(T) -> A + Copy) -> Self {
        let s = chunk_sum(xs, term);
        let k = nearest(xs, divide_by_count(s, xs.len()), term);
        ChunkMoments {
            n: A::from_f64(xs.len() as f64),
            s,
            k,
            l: chunk_sum(xs, |x| term(x) - k),
            q: chunk_sum(xs, |x| {
                let d = term(x) - k;
                d * d
            }),
        }
    }

    /// The moments as stored in a partial.
    #[inline(always)]
    pub(super) fn words(self) -> [f64; MOMENT_WORDS] {
        [self.n, self.s, self.k, self.l, self.q].map(Number::to_f64)
    }

    /// The moments a partial stored.
    pub(super) fn from_words(w: &[f64]) -> Self {
        ChunkMoments {
            n: A::from_f64(w[0]),
            s: A::from_f64(w[1]),
            k: A::from_f64(w[2]),
            l: A::from_f64(w[3]),
            q: A::from_f64(w[4]),
        }
    }
}

/// `Σ(x − m)²` of a whole row (not split into chunks), each element widened by
/// `term`: numpy's two passes, its mean `m` then the squares, corrected by
/// `(Σ(x − m))²/n` where that is finite (so an overflow stays numpy's infinity).
#[inline(always)]
pub(super) fn row_squares<T: Copy, A: Float>(row: &[T], term: impl Fn(T) -> A + Copy) -> A {
    let m = divide_by_count(chunk_sum(row, term), row.len());
    let q = chunk_sum(row, |v| {
        let d = term(v) - m;
        d * d
    });
    if !q.is_finite() {
        return q;
    }
    let r = chunk_sum(row, |v| term(v) - m);
    let m2 = q - (r / A::from_f64(row.len() as f64)) * r;
    if m2 < A::ZERO { A::ZERO } else { m2 }
}

/// What the chunks' moments say of the whole: its mean, and `Σ(x − mean)²`
/// unless that needs numpy's direct pass (`None`: it overflowed, or the mean is
/// infinite).
#[derive(Debug, Clone, Copy)]
pub(super) struct Centered<A> {
    pub mean: A,
    pub squares: Option<A>,
}

/// Combines chunks' moments, in chunk order, for `count` elements in all (see the
/// module's docs): the sums in the fixed tree, the mean, then each chunk's
/// `Σ(x − m)²` and `Σ(x − m)` in the fixed tree, corrected.
pub(super) fn centered<A: Float>(chunks: &[ChunkMoments<A>], count: usize) -> Centered<A> {
    let mut sums: Vec<A> = chunks.iter().map(|c| c.s).collect();
    let total = tree_sum(&mut sums);
    let mean = divide_by_count(total, count);
    if mean.is_nan() {
        return Centered {
            mean,
            squares: Some(mean),
        };
    }
    let mut squares = Vec::with_capacity(chunks.len());
    let mut deviations = Vec::with_capacity(chunks.len());
    for c in chunks {
        let a = mean - c.k;
        squares.push(c.q - (a + a) * c.l + c.n * a * a);
        deviations.push(c.l - c.n * a);
    }
    let t = tree_sum(&mut squares);
    let r = tree_sum(&mut deviations);
    let n = A::from_f64(count as f64);
    let m2 = t - (r / n) * r;
    // Rounding can take a spread of zero a hair below it.
    let m2 = if m2 < A::ZERO { A::ZERO } else { m2 };
    let squares = (m2.is_finite() && !mean.is_infinite()).then_some(m2);
    Centered { mean, squares }
}

/// The sum of `xs` in the fixed tree (0 for none).
pub(super) fn tree_sum<A: Number>(xs: &mut [A]) -> A {
    tree_combine(xs, 1, |l, r| l[0] = l[0].add(r[0])).map_or(A::ZERO, |s| s[0])
}

/// The elements a reduction of an array (or row count, of an axis form) of `len`
/// covers: its range, or all of it. Read after the operation ran, which checked
/// the range.
pub(super) fn covered<E: crate::kernel::KernelEnv, D>(bulk: &Bulk<'_, E, D>, len: usize) -> usize {
    bulk.options.range.map_or(len, |(start, end)| end - start)
}

impl<'p, D: Dtype> Bulk<'p, (), D> {
    /// The sum of the elements (`np.sum(x)`, with `dtype=` from [`Bulk::dtype`]): 0
    /// for an empty array. With numpy's default accumulator ([`DefaultDtype`]) the
    /// sum is in the element type, wrapping for integers; after `.dtype::<A>()`
    /// each element is widened to `A` first. Deterministic: bit-identical for any
    /// number of workers, start method and SIMD level, given the chunk length.
    ///
    /// [`DefaultDtype`]: crate::DefaultDtype
    ///
    /// # Errors
    /// As for [`crate::Pool::map_into`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::try_from_iter((0..1000).map(|i| i as f32 * 0.1))?;
    /// let a = pool.bulk().sum(&x)?;
    /// let b = shmpool::Pool::new(1)?.bulk().sum(&x)?;
    /// assert_eq!(a.to_bits(), b.to_bits()); // the same bits with 1 or 2 workers
    /// assert!((a - 49_950.0).abs() < 0.1);
    /// let wide: f64 = pool.bulk().dtype::<f64>().sum(&x)?; // np.sum(x, dtype=np.float64)
    /// assert!((wide - 49_950.0).abs() < 1e-3);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn sum<T: Number>(self, x: &SharedArray<T>) -> Result<<D as SumIn<T>>::Acc>
    where
        D: SumIn<T>,
    {
        Ok(tree_sum(&mut chunk_sums::<T, Summed<D>>(self.plain(), x)?))
    }

    /// The arithmetic mean (`np.mean(x)`): [`Bulk::sum`] in the mean's accumulator,
    /// divided by the count as numpy divides (in `f64`, then rounded to the
    /// accumulator). The accumulator is the element type for floats and `f64` for
    /// integers, or what [`Bulk::dtype`] names. NaN for an empty array (numpy warns
    /// and returns NaN).
    ///
    /// Exact, and numpy's to the bit, wherever the sum is exact (integer-valued data
    /// whose partial sums stay below 2^53, or 2^24 in `f32`); elsewhere within the
    /// bound of a sum (see `tests/bulk_stats.rs`). Deterministic as [`Bulk::sum`].
    ///
    /// # Errors
    /// As for [`crate::Pool::map_into`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::from_slice(&[1i32, 2, 3, 4])?;
    /// assert_eq!(pool.bulk().mean(&x)?, 2.5f64); // integers average in f64
    /// let y = shmpool::SharedArray::from_slice(&[0.5f32, 0.25])?;
    /// assert_eq!(pool.bulk().mean(&y)?, 0.375f32);
    /// assert_eq!(pool.bulk().dtype::<f64>().mean(&y)?, 0.375f64);
    /// let empty = shmpool::SharedArray::<f64>::zeroed(0)?;
    /// assert!(pool.bulk().mean(&empty)?.is_nan());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn mean<T: Number>(self, x: &SharedArray<T>) -> Result<<D as MeanIn<T>>::Acc>
    where
        D: MeanIn<T>,
    {
        let mut sums = chunk_sums::<T, Averaged<D>>(self.plain(), x)?;
        Ok(divide_by_count(
            tree_sum(&mut sums),
            covered(&self, x.len()),
        ))
    }

    /// The variance (`np.var(x, ddof=ddof)`): `Σ(x − mean)² / (n − ddof)`, in the
    /// mean's accumulator (see [`Bulk::mean`]), from one pass over the data (see
    /// `src/pool/bulk/moments.rs` for the method and its bound). NaN for an empty
    /// array; for `ddof >= n`, the infinity or NaN numpy's division by zero gives
    /// (numpy warns). NaN if an element is NaN; an infinity, or a sum of squares
    /// that overflows, gives what numpy gives.
    ///
    /// Within `(7·(c/16 + 8) + log2(chunks) + 4)·ε` of the exact variance,
    /// relatively, for chunks of `c` elements (below `2·10⁻¹²` in `f64` at the
    /// default chunk length), whatever the mean (`1e9 + noise` loses nothing), so
    /// within that plus numpy's own error of numpy's result; and equal to numpy's
    /// wherever numpy's is exact (integer-valued data with an exactly representable
    /// mean, within the mantissa). Deterministic as [`Bulk::sum`].
    ///
    /// # Errors
    /// As for [`crate::Pool::map_into`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::from_slice(&[1.0f64, 2.0, 3.0, 4.0])?;
    /// assert_eq!(pool.bulk().var(&x, 0)?, 1.25);
    /// assert_eq!(pool.bulk().var(&x, 1)?, 5.0 / 3.0);
    /// // A large mean costs no precision.
    /// let y = shmpool::SharedArray::try_from_iter((0..1000).map(|i| 1e9 + (i % 2) as f64))?;
    /// assert_eq!(pool.bulk().var(&y, 0)?, 0.25);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn var<T: Number>(self, x: &SharedArray<T>, ddof: usize) -> Result<<D as MeanIn<T>>::Acc>
    where
        D: MeanIn<T>,
    {
        let (n, m2) = squares::<T, Averaged<D>>(self.plain(), x)?;
        Ok(divide_by_count(m2, n.saturating_sub(ddof)))
    }

    /// The standard deviation (`np.std(x, ddof=ddof)`): the square root of
    /// [`Bulk::var`], with its bound (halved) and its cases.
    ///
    /// # Errors
    /// As for [`crate::Pool::map_into`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::from_slice(&[2u8, 4, 4, 4, 5, 5, 7, 9])?;
    /// assert_eq!(pool.bulk().std(&x, 0)?, 2.0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn std<T: Number>(self, x: &SharedArray<T>, ddof: usize) -> Result<<D as MeanIn<T>>::Acc>
    where
        D: MeanIn<T>,
    {
        Ok(self.var(x, ddof)?.sqrt())
    }
}

/// Every chunk's sum of its elements widened by `W`, in chunk order.
pub(super) fn chunk_sums<T: Number, W: Widen<T>>(
    bulk: Bulk<'_>,
    x: &SharedArray<T>,
) -> Result<Vec<W::Acc>> {
    let k = fold_kernels::<(), &SharedArray<T>, W::Acc, _>(
        #[inline(always)]
        |_: usize, acc: &mut [W::Acc], xs: &[T]| acc[0] = chunk_sum(xs, W::widen),
    )
    .memory_bound();
    bulk.reduce_slots(JobKind::Reduce, k, &[ArrayArg::of(x)], &[W::Acc::ZERO])
}

/// The count of elements of `x` and `Σ(x − mean)²`, widened by `W`: one pass, and
/// numpy's second pass only where the first overflowed.
fn squares<T: Number, W: Widen<T>>(bulk: Bulk<'_>, x: &SharedArray<T>) -> Result<(usize, W::Acc)>
where
    W::Acc: Float,
{
    let k = fold_kernels::<(), &SharedArray<T>, f64, _>(
        #[inline(always)]
        |_: usize, acc: &mut [f64], xs: &[T]| {
            acc.copy_from_slice(&ChunkMoments::of(xs, W::widen).words());
        },
    );
    let slots = bulk.reduce_slots(JobKind::Reduce, k, &[ArrayArg::of(x)], &[0.0; MOMENT_WORDS])?;
    let chunks: Vec<ChunkMoments<W::Acc>> = slots
        .chunks_exact(MOMENT_WORDS)
        .map(ChunkMoments::from_words)
        .collect();
    let n = covered(&bulk, x.len());
    let c = centered(&chunks, n);
    match c.squares {
        Some(m2) => Ok((n, m2)),
        None => Ok((n, squares_about::<T, W>(bulk, x, c.mean)?)),
    }
}

/// numpy's second pass: `Σ(x − mean)²`, with no correction, for the infinities and
/// NaNs numpy gives.
fn squares_about<T: Number, W: Widen<T>>(
    bulk: Bulk<'_>,
    x: &SharedArray<T>,
    mean: W::Acc,
) -> Result<W::Acc>
where
    W::Acc: Float,
{
    let k = fold_kernels::<Params<W::Acc>, &SharedArray<T>, W::Acc, _>(
        #[inline(always)]
        |m: &W::Acc, _: usize, acc: &mut [W::Acc], xs: &[T]| {
            acc[0] = chunk_sum(xs, |v| {
                let d = W::widen(v) - *m;
                d * d
            });
        },
    );
    let mut slots =
        bulk.with(mean)
            .reduce_slots(JobKind::Reduce, k, &[ArrayArg::of(x)], &[W::Acc::ZERO])?;
    Ok(tree_sum(&mut slots))
}

#[cfg(test)]
mod tests {
    use super::{ChunkMoments, centered};

    /// Σ(x − μ)² of `xs` split into chunks of `c`, as the parent combines them.
    fn m2(xs: &[f64], c: usize) -> (f64, Option<f64>) {
        let chunks: Vec<ChunkMoments<f64>> =
            xs.chunks(c).map(|ch| ChunkMoments::of(ch, |v| v)).collect();
        let r = centered(&chunks, xs.len());
        (r.mean, r.squares)
    }

    #[test]
    fn integer_data_give_exact_squares_whatever_the_chunks() {
        let xs: Vec<f64> = (0..1001).map(|i| f64::from((i * 37) % 101)).collect();
        let n = xs.len() as i128;
        let (s, s2) = xs.iter().fold((0i128, 0i128), |(s, s2), &v| {
            (s + v as i128, s2 + (v as i128) * (v as i128))
        });
        // n·Σ(x − μ)² = n·Σx² − (Σx)², exactly.
        let exact = (n * s2 - s * s) as f64 / n as f64;
        for c in [1, 7, 64, 1000, 5000] {
            let (mean, sq) = m2(&xs, c);
            assert_eq!(mean, s as f64 / n as f64);
            // The mean is not exact here (50050/1001 ≈ 49.99...), so allow a few ulps.
            let sq = sq.unwrap();
            assert!(
                (sq - exact).abs() <= 1e-12 * exact,
                "chunks of {c}: {sq} vs {exact}"
            );
        }
        // A mean that is exact: symmetric data around 1e6.
        let ys: Vec<f64> = (0..999).map(|i| 1e6 + f64::from(i - 499)).collect();
        let exact: f64 = ys.iter().map(|v| (v - 1e6) * (v - 1e6)).sum();
        for c in [1, 3, 16, 100, 999] {
            assert_eq!(m2(&ys, c), (1e6, Some(exact)), "chunks of {c}");
        }
    }

    #[test]
    fn a_large_mean_costs_nothing() {
        let xs: Vec<f64> = (0..10_000)
            .map(|i| 1e9 + f64::from(i % 7) * 0.001)
            .collect();
        let (mean, sq) = m2(&xs, 333);
        let want: f64 = xs.iter().map(|v| (v - mean) * (v - mean)).sum();
        let sq = sq.unwrap();
        assert!((sq - want).abs() <= 1e-6 * want, "{sq} vs {want}");
    }

    #[test]
    fn overflow_and_infinities_ask_for_the_direct_pass() {
        assert_eq!(m2(&[1e200, -1e200], 1).1, None);
        assert_eq!(m2(&[1.0, f64::INFINITY], 2).1, None);
        assert!(m2(&[1.0, f64::NAN], 2).1.unwrap().is_nan());
    }
}
