//! [`Bulk::histogram`]: one form for every histogram numpy computes, the bins and
//! the weights chosen by its second argument ([`HistogramSpec`]).
//!
//! Why one form with a typed argument, rather than numpy's keyword arguments as
//! builder methods or a family of `histogram_*` siblings: what the bins hold
//! changes with the weights (`u64` counts, `f64` sums), and the argument's type
//! says which at compile time, so `histogram` returns a `Histogram<u64>` or a
//! `Histogram<f64>` and never a value to convert. The bins (`Bins::Uniform`,
//! `Bins::Edges`) are values, matched once here; `density` needs nothing of the
//! workers (numpy computes it from the counts and edges too), so it is a method
//! of the result. And every `Bulk` form stays one call that returns a `Result`.
//!
//! Each histogram is a fold (`src/pool/bulk/reduce.rs`) whose accumulator is a
//! chunk's bins, tallied by `tally.rs`: uniform bins travel as parameters
//! (`HistParams`), explicit edges as a context array every chunk reads whole.

use super::super::bulk_builder::Bulk;
use super::super::number::Number;
use super::super::reduce::{fold_kernels, tree_combine};
use super::edges::{self, Edges};
use super::spec::{BinValue, Bins, Histogram, Weighted};
use super::tally::{Ones, Weights, tally};
use super::uniform::{HistParams, tally_uniform};
use crate::array::SharedArray;
use crate::error::{Error, Result};
use crate::kernel::{ArrayArg, Env, KernelEnv, Kernels, Params};
use crate::layout::JobKind;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Bins<'_> {}
    impl<W: super::Number> Sealed for super::Weighted<'_, super::SharedArray<W>> {}
}

/// What [`Bulk::histogram`] computes: [`Bins`] count the elements in each bin;
/// [`Weighted`] bins (`bins.weights(&w)`, `w` a [`SharedArray`] of any
/// [`Number`]) add up their weights.
pub trait HistogramSpec: sealed::Sealed {
    /// What a bin holds: `u64` for counts, `f64` for sums of weights.
    type Value: BinValue;

    /// Runs the histogram of `x` on `bulk`'s pool.
    #[doc(hidden)]
    fn histogram_of<T: Number>(
        self,
        bulk: Bulk<'_>,
        x: &SharedArray<T>,
    ) -> Result<Histogram<Self::Value>>;
}

impl HistogramSpec for Bins<'_> {
    type Value = u64;

    fn histogram_of<T: Number>(self, bulk: Bulk<'_>, x: &SharedArray<T>) -> Result<Histogram<u64>> {
        let ins = [ArrayArg::of(x)];
        match Checked::new::<T>(self)? {
            Checked::Uniform(h) => {
                let k = fold_kernels::<Params<HistParams>, &SharedArray<T>, u64, _>(
                    #[inline(always)]
                    |h: &HistParams, _: usize, acc: &mut [u64], xs: &[T]| {
                        tally_uniform(acc, h, xs, Ones)
                    },
                );
                let counts = summed(bulk.with(h), k, &ins, h.bins())?;
                Ok(uniform_histogram::<T, _>(counts, &h))
            }
            Checked::Edges(e) if e.len() < 2 => Ok(no_bins(e)),
            Checked::Edges(e) => {
                let k = fold_kernels::<_, &SharedArray<T>, u64, _>(
                    #[inline(always)]
                    |env: &Env<()>, _: usize, acc: &mut [u64], xs: &[T]| {
                        tally(acc, &Edges(env.array::<f64>(0)), xs, Ones)
                    },
                );
                let table = SharedArray::from_slice(e)?;
                let counts = summed(bulk.context(&table), k, &ins, e.len() - 1)?;
                Ok(edges_histogram(counts, e))
            }
        }
    }
}

impl<W: Number> HistogramSpec for Weighted<'_, SharedArray<W>> {
    type Value = f64;

    fn histogram_of<T: Number>(self, bulk: Bulk<'_>, x: &SharedArray<T>) -> Result<Histogram<f64>> {
        let w = self.weights;
        if w.len() != x.len() {
            return Err(Error::OperandLength {
                what: "the array of weights".into(),
                len: w.len(),
                expected: x.len(),
            });
        }
        let ins = [ArrayArg::of(x), ArrayArg::of(w)];
        match Checked::new::<T>(self.bins)? {
            Checked::Uniform(h) => {
                let k =
                    fold_kernels::<Params<HistParams>, (&SharedArray<T>, &SharedArray<W>), f64, _>(
                        #[inline(always)]
                        |h: &HistParams, _: usize, acc: &mut [f64], (xs, ws): (&[T], &[W])| {
                            tally_uniform(acc, h, xs, Weights(ws))
                        },
                    );
                let sums = summed(bulk.with(h), k, &ins, h.bins())?;
                Ok(uniform_histogram::<T, _>(sums, &h))
            }
            Checked::Edges(e) if e.len() < 2 => Ok(no_bins(e)),
            Checked::Edges(e) => {
                let k = fold_kernels::<_, (&SharedArray<T>, &SharedArray<W>), f64, _>(
                    #[inline(always)]
                    |env: &Env<()>, _: usize, acc: &mut [f64], (xs, ws): (&[T], &[W])| {
                        tally(acc, &Edges(env.array::<f64>(0)), xs, Weights(ws))
                    },
                );
                let table = SharedArray::from_slice(e)?;
                let sums = summed(bulk.context(&table), k, &ins, e.len() - 1)?;
                Ok(edges_histogram(sums, e))
            }
        }
    }
}

/// Bins whose arguments were checked.
enum Checked<'a> {
    Uniform(HistParams),
    Edges(&'a [f64]),
}

impl<'a> Checked<'a> {
    /// Checks `bins` for data of type `T`, as numpy does (see [`Bulk::histogram`]).
    fn new<T: Number>(bins: Bins<'a>) -> Result<Self> {
        match bins {
            Bins::Uniform { count, range } => HistParams::new::<T>(count, range).map(Self::Uniform),
            Bins::Edges(e) => edges::check(e).map(|()| Self::Edges(e)),
        }
    }
}

/// The histogram of uniform bins `h`, for data of type `T`.
fn uniform_histogram<T: Number, C>(counts: Vec<C>, h: &HistParams) -> Histogram<C> {
    Histogram {
        counts,
        edges: h.edges::<T>(),
        single: T::SINGLE,
    }
}

/// The histogram of explicit edges.
fn edges_histogram<C>(counts: Vec<C>, edges: &[f64]) -> Histogram<C> {
    Histogram {
        counts,
        edges: edges.to_vec(),
        single: false,
    }
}

/// The histogram of fewer than two edges: no bins, as in numpy.
fn no_bins<C>(edges: &[f64]) -> Histogram<C> {
    edges_histogram(Vec::new(), edges)
}

/// Runs the fold `kernels` of `bins` accumulators (starting from zero) over
/// `ins`, and adds the chunks' partials in the reductions' fixed tree.
fn summed<E: KernelEnv, A: BinValue>(
    bulk: Bulk<'_, E>,
    kernels: Kernels,
    ins: &[ArrayArg<'_>],
    bins: usize,
) -> Result<Vec<A>> {
    let mut slots = bulk.reduce_slots(JobKind::Reduce, kernels, ins, &vec![A::default(); bins])?;
    let total = tree_combine(&mut slots, bins, |l, r| {
        for (a, &b) in l.iter_mut().zip(r) {
            *a += b;
        }
    });
    Ok(total.map_or_else(|| vec![A::default(); bins], <[A]>::to_vec))
}

impl Bulk<'_> {
    /// numpy's `np.histogram`: what each bin of `bins` holds of `x` (its count,
    /// or with [`Bins::weights`] the sum of its weights), and the bins' edges.
    ///
    /// | numpy | shmpool |
    /// |---|---|
    /// | `np.histogram(x, n, range=(lo, hi))` | `histogram(&x, Bins::Uniform { count: n, range: (lo, hi) })` |
    /// | `np.histogram(x, bins=edges)` | `histogram(&x, Bins::Edges(&edges))` |
    /// | `np.histogram(x, ..., weights=w)` | `histogram(&x, bins.weights(&w))` |
    /// | `np.histogram(x, ..., density=True)` | `histogram(&x, bins)?.density()` |
    ///
    /// Bin `b` holds the values `v` with `edges[b] <= v < edges[b + 1]`, and the
    /// last bin also its upper edge; values outside every bin, and NaNs, are not
    /// counted. Counts are exactly numpy's, to the last value on an edge:
    ///
    /// - **Uniform bins** have numpy's edges: edge `i` is `lo + i·step`, with
    ///   `step = (hi − lo) / count`, the product and the sum each rounded (as
    ///   `np.linspace` computes them), and the last edge is `hi`; for `f32` data
    ///   they are rounded to `f32`, as numpy makes `float32` edges for `float32`
    ///   data. So a value on an edge counts in the bin above it, whatever `(v −
    ///   lo) / step` rounds to (`0.3` is in bin 2 of 10 bins over `(0, 1)`, since
    ///   the edge `3 · 0.1` is `0.30000000000000004`).
    /// - **Explicit edges** are compared with the values in `f64` (integers beyond
    ///   2^53 rounded, as numpy rounds them to compare).
    ///
    /// Deterministic: counts are integers, and sums of weights are added in an
    /// order the chunk length alone fixes (see [`Weighted`]), the same for any
    /// worker count, start method and SIMD level.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] where numpy raises, or would bin wrongly: a
    /// `count` of 0 or above 2^20; a range that is not finite with `lo < hi`
    /// (numpy widens `lo == hi` by ±0.5, shmpool refuses it); a width `hi − lo`,
    /// or an end, that overflows the data's precision (`(-1e308, 1e308)`); two
    /// uniform edges that do not increase (too many bins for a range a few units
    /// in the last place wide); explicit edges that decrease, or a NaN edge, or
    /// more than 2^20 bins. [`Error::OperandLength`] if the weights are not as
    /// many as the data. As for [`crate::Pool::map_into`] otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{Bins, Pool, SharedArray};
    ///
    /// let pool = Pool::new(2)?;
    /// let x = SharedArray::from_slice(&[0.1f64, 0.4, 0.5, 0.9, 1.0, 7.0])?;
    /// let h = pool.bulk().histogram(&x, Bins::Uniform { count: 2, range: (0.0, 1.0) })?;
    /// assert_eq!((h.counts, h.edges), (vec![2, 3], vec![0.0, 0.5, 1.0]));
    /// // On an edge: numpy's edge 3 of 10 over (0, 1) is 0.30000000000000004.
    /// let x = SharedArray::from_slice(&[0.3f64])?;
    /// let h = pool.bulk().histogram(&x, Bins::Uniform { count: 10, range: (0.0, 1.0) })?;
    /// assert_eq!(h.counts[2], 1);
    /// // Weights, over bins of any widths, and the density.
    /// let x = SharedArray::from_slice(&[1.0f32, 2.0, 2.5, 8.0])?;
    /// let w = SharedArray::from_slice(&[0.5f64, 1.0, 1.0, 2.0])?;
    /// let h = pool.bulk().histogram(&x, Bins::Edges(&[0.0, 2.0, 10.0]).weights(&w))?;
    /// assert_eq!(h.counts, [0.5, 4.0]);
    /// assert_eq!(h.density(), [0.5 / 2.0 / 4.5, 4.0 / 8.0 / 4.5]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn histogram<T: Number, S: HistogramSpec>(
        self,
        x: &SharedArray<T>,
        bins: S,
    ) -> Result<Histogram<S::Value>> {
        bins.histogram_of(self, x)
    }

    /// The histogram of nothing in `bins`, for data of type `T`: every bin 0,
    /// and the edges; the errors of [`Bulk::histogram`] for bins it refuses.
    #[cfg(feature = "mpi")]
    pub(crate) fn empty_histogram<T: Number, C: BinValue>(bins: Bins<'_>) -> Result<Histogram<C>> {
        Ok(match Checked::new::<T>(bins)? {
            Checked::Uniform(h) => uniform_histogram::<T, _>(vec![C::default(); h.bins()], &h),
            Checked::Edges(e) => edges_histogram(vec![C::default(); e.len().saturating_sub(1)], e),
        })
    }
}
