//! numpy's reductions over distributed arrays: each rank's pool reduces its block
//! ([`Bulk::sum`] and the others), and the ranks' partials are combined in rank
//! order (see `src/cluster/dist_bulk.rs`).

use super::collective::{CallKind, Entry, digest};
use super::dist_array::DistArray;
use super::dist_bulk::DistBulk;
use super::dist_maps::same_blocks;
use crate::array::SharedArray;
use crate::error::{Error, Result};
use crate::pool::{BinValue, Bins, Bulk, Histogram, Number, Weighted};

/// The most bins a histogram has, as for [`Bulk::histogram`].
const MAX_BINS: usize = 1 << 20;

/// Whether `a` should replace `b` as the minimum: smaller, or a NaN over a number
/// (the rule of [`Bulk::min`]).
fn less<T: Number>(a: T, b: T) -> bool {
    a < b || (a.is_nan() && !b.is_nan())
}

/// Whether `a` should replace `b` as the maximum.
fn greater<T: Number>(a: T, b: T) -> bool {
    a > b || (a.is_nan() && !b.is_nan())
}

/// A value of at most 8 bytes (every [`Number`]) in a `u64`'s low bytes, so that a
/// value and an index travel in one partial of two words.
fn to_word<T: Number>(v: T) -> u64 {
    let mut word = 0u64;
    bytemuck::bytes_of_mut(&mut word)[..size_of::<T>()].copy_from_slice(bytemuck::bytes_of(&v));
    word
}

/// The inverse of [`to_word`] (on the same machine: every rank runs the same
/// binary on the same architecture).
fn from_word<T: Number>(word: u64) -> T {
    bytemuck::pod_read_unaligned(&bytemuck::bytes_of(&word)[..size_of::<T>()])
}

impl DistBulk<'_> {
    /// The sum of every element of a distributed array (`np.sum`): each rank's
    /// [`Bulk::sum`] of its block, the partials added in rank order. 0 for an
    /// empty array, wrapping for integers.
    ///
    /// Bit-identical for a given split and chunk length (see [`DistBulk`]), and
    /// the same on every rank.
    ///
    /// # Errors
    /// On every rank: [`Error::RanksDisagree`] when the ranks are in different
    /// calls or pass arrays of different lengths or splits; when a rank's local
    /// reduction fails (a kernel panic, a worker's death), its error there and
    /// [`Error::RankFailed`] on the others.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let x = DistArray::from_fn(&cluster, 1000, |i| i as f32 * 0.1)?;
    /// let a = cluster.bulk().sum(&x)?;
    /// let b = cluster.bulk().sum(&x)?;
    /// assert_eq!(a.to_bits(), b.to_bits()); // the same bits, run after run
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn sum<T: Number>(self, x: &DistArray<T>) -> Result<T> {
        let local = x.local();
        let total = self.reduce(
            Entry::call(CallKind::DistSum),
            x.blocks(),
            Ok(()),
            1,
            |bulk| Ok(vec![bulk.sum(local)?]),
            |l, r| l[0] = l[0].add(r[0]),
        )?;
        Ok(total.map_or(T::ZERO, |t| t[0]))
    }

    /// The dot product `Σ a[i] * b[i]` of two distributed arrays split alike,
    /// deterministic as [`DistBulk::sum`] is.
    ///
    /// # Errors
    /// As for [`DistBulk::sum`]; when this rank's `a` and `b` are split
    /// differently, [`Error::OperandLength`] (naming `b`) or [`Error::Mpi`] here
    /// and [`Error::RankFailed`] on the others.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let a = DistArray::from_fn(&cluster, 100, |i| i as f64)?;
    /// let b = DistArray::from_fn(&cluster, 100, |_| 2.0f64)?;
    /// assert_eq!(cluster.bulk().dot(&a, &b)?, 9900.0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn dot<T: Number>(self, a: &DistArray<T>, b: &DistArray<T>) -> Result<T> {
        let (la, lb) = (a.local(), b.local());
        let total = self.reduce(
            Entry::call(CallKind::DistDot),
            a.blocks(),
            // `dot` has two inputs and no output: name `b`, as the local `dot` does.
            same_blocks(a.blocks(), b.blocks()).map_err(|e| match e {
                Error::LengthMismatch { input, output } => Error::OperandLength {
                    what: "b, the second vector of the dot product,".into(),
                    len: output,
                    expected: input,
                },
                other => other,
            }),
            1,
            |bulk| Ok(vec![bulk.dot(la, lb)?]),
            |l, r| l[0] = l[0].add(r[0]),
        )?;
        Ok(total.map_or(T::ZERO, |t| t[0]))
    }

    /// The smallest element (`np.min`), NaN if any element is NaN, `None` for an
    /// empty array. The same on every rank.
    ///
    /// # Errors
    /// As for [`DistBulk::sum`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let x = DistArray::from_fn(&cluster, 100, |i| (i as i64 - 30).abs())?;
    /// assert_eq!(cluster.bulk().min(&x)?, Some(0));
    /// assert_eq!(cluster.bulk().max(&x)?, Some(69));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn min<T: Number>(self, x: &DistArray<T>) -> Result<Option<T>> {
        self.extreme(CallKind::DistMin, x, |b, x| b.min(x), less)
    }

    /// The largest element (`np.max`), NaN if any element is NaN, `None` for an
    /// empty array. The same on every rank.
    ///
    /// # Errors
    /// As for [`DistBulk::sum`].
    pub fn max<T: Number>(self, x: &DistArray<T>) -> Result<Option<T>> {
        self.extreme(CallKind::DistMax, x, |b, x| b.max(x), greater)
    }

    fn extreme<T: Number>(
        self,
        kind: CallKind,
        x: &DistArray<T>,
        by_pool: fn(Bulk<'_>, &SharedArray<T>) -> Result<Option<T>>,
        better: fn(T, T) -> bool,
    ) -> Result<Option<T>> {
        let local = x.local();
        let best = self.reduce(
            Entry::call(kind),
            x.blocks(),
            Ok(()),
            1,
            // A non-empty block always has an extreme.
            |bulk| Ok(vec![by_pool(bulk, local)?.unwrap_or(T::ZERO)]),
            |l, r| {
                if better(r[0], l[0]) {
                    l[0] = r[0];
                }
            },
        )?;
        Ok(best.map(|b| b[0]))
    }

    /// The global index of the first smallest element (`np.argmin`), or of the
    /// first NaN if there is one; `None` for an empty array. Ties go to the lower
    /// rank, as to the lower index within a rank: the first occurrence wins.
    ///
    /// # Errors
    /// As for [`DistBulk::sum`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let x = DistArray::from_fn(&cluster, 100, |i| ((i as f64) - 70.0).abs())?;
    /// assert_eq!(cluster.bulk().argmin(&x)?, Some(70)); // a global index
    /// assert_eq!(cluster.bulk().argmax(&x)?, Some(0));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn argmin<T: Number>(self, x: &DistArray<T>) -> Result<Option<usize>> {
        self.arg_extreme(CallKind::DistArgmin, x, |b, x| b.argmin(x), less)
    }

    /// The global index of the first largest element (`np.argmax`), or of the
    /// first NaN if there is one; `None` for an empty array.
    ///
    /// # Errors
    /// As for [`DistBulk::sum`].
    pub fn argmax<T: Number>(self, x: &DistArray<T>) -> Result<Option<usize>> {
        self.arg_extreme(CallKind::DistArgmax, x, |b, x| b.argmax(x), greater)
    }

    fn arg_extreme<T: Number>(
        self,
        kind: CallKind,
        x: &DistArray<T>,
        by_pool: fn(Bulk<'_>, &SharedArray<T>) -> Result<Option<usize>>,
        better: fn(T, T) -> bool,
    ) -> Result<Option<usize>> {
        let (local, start) = (x.local(), x.local_range().start);
        // Each partial: the value (in a word), then its global index.
        let best = self.reduce(
            Entry::call(kind),
            x.blocks(),
            Ok(()),
            2,
            |bulk| {
                let i = by_pool(bulk, local)?.unwrap_or(0);
                Ok(vec![to_word(local[i]), (start + i) as u64])
            },
            // Strictly better only: a tie keeps the lower rank's index.
            |l, r| {
                if better(from_word(r[0]), from_word::<T>(l[0])) {
                    l.copy_from_slice(r);
                }
            },
        )?;
        Ok(best.map(|b| b[1] as usize))
    }

    /// numpy's `np.histogram` over the whole distributed array, as
    /// [`Bulk::histogram`] computes it: [`Bins`] count the elements, and
    /// [`Weighted`] bins (`bins.weights(&w)`, `w` a [`DistArray`] split like
    /// `x`) add up their weights. Each rank's pool computes its block's
    /// histogram, and the ranks' bins are added in rank order: counts are exact,
    /// sums of weights bit-identical for a given split and chunk length, and the
    /// same on every rank.
    ///
    /// # Errors
    /// On every rank: [`Error::InvalidArgument`] for the bins
    /// [`Bulk::histogram`] refuses; [`Error::RanksDisagree`] when the ranks pass
    /// different bins, or weights to some and not to others; as for
    /// [`DistBulk::sum`]. Weights split unlike the data: [`Error::LengthMismatch`]
    /// or [`Error::Mpi`] where they are, [`Error::RankFailed`] elsewhere.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use shmpool::{Bins, Cluster, DistArray};
    ///
    /// let cluster = Cluster::init()?;
    /// let x = DistArray::from_fn(&cluster, 1000, |i| (i % 10) as f64)?;
    /// let bins = Bins::Uniform { count: 5, range: (0.0, 10.0) };
    /// let h = cluster.bulk().histogram(&x, bins)?;
    /// assert_eq!(h.counts, vec![200; 5]);
    /// let w = DistArray::from_fn(&cluster, 1000, |_| 0.5f64)?;
    /// let h = cluster.bulk().histogram(&x, bins.weights(&w))?;
    /// assert_eq!(h.counts, vec![100.0; 5]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn histogram<T: Number, S: DistHistogramSpec>(
        self,
        x: &DistArray<T>,
        bins: S,
    ) -> Result<Histogram<S::Value>> {
        bins.dist_histogram_of(self, x)
    }

    /// The histogram of `x` in `bins`, each rank's block counted by `local`,
    /// `weights` describing the weights (`[]` without): every rank must pass the
    /// same bins and weights, split alike (`split`, the weights' local check).
    fn histogram_in<T: Number, C: BinValue>(
        self,
        x: &DistArray<T>,
        bins: Bins<'_>,
        weights: &[u64],
        split: Result<()>,
        local: impl FnOnce(Bulk<'_>) -> Result<Vec<C>>,
    ) -> Result<Histogram<C>> {
        let empty = Bulk::empty_histogram::<T, C>(bins);
        let mut args = match bins {
            Bins::Uniform { count, range } => {
                vec![0, count as u64, range.0.to_bits(), range.1.to_bits()]
            }
            Bins::Edges(e) => {
                let edges: Vec<u64> = e.iter().map(|v| v.to_bits()).collect();
                vec![1, e.len() as u64, digest(&edges)]
            }
        };
        args.extend_from_slice(weights);
        let check = empty.as_ref().map(drop).map_err(Clone::clone).and(split);
        let width = empty
            .as_ref()
            .map_or(1, |h| h.counts.len().clamp(1, MAX_BINS));
        let counts = self.reduce(
            Entry::call(CallKind::DistHistogram).args(digest(&args)),
            x.blocks(),
            check,
            // A valid width on every rank once the vote passed; 1 keeps a refused
            // call from allocating what it was asked for, and stands in for no
            // bins at all (fewer than two edges), whose partials are dropped.
            width,
            |bulk| {
                let counts = local(bulk)?;
                Ok(if counts.is_empty() {
                    vec![C::default()]
                } else {
                    counts
                })
            },
            |l, r| l.iter_mut().zip(r).for_each(|(a, &b)| *a += b),
        )?;
        // The vote passed, so this rank's bins were valid.
        let mut h = empty?;
        if let Some(counts) = counts {
            let n = h.counts.len();
            h.counts.copy_from_slice(&counts[..n]);
        }
        Ok(h)
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Bins<'_> {}
    impl<W: super::Number> Sealed for super::Weighted<'_, super::DistArray<W>> {}
}

/// What [`DistBulk::histogram`] computes: [`Bins`] count the elements in each
/// bin; [`Weighted`] bins (`bins.weights(&w)`, `w` a [`DistArray`] of any
/// [`Number`], split like the data) add up their weights.
pub trait DistHistogramSpec: sealed::Sealed {
    /// What a bin holds: `u64` for counts, `f64` for sums of weights.
    type Value: BinValue;

    /// Runs the histogram of `x` on `bulk`'s cluster.
    #[doc(hidden)]
    fn dist_histogram_of<T: Number>(
        self,
        bulk: DistBulk<'_>,
        x: &DistArray<T>,
    ) -> Result<Histogram<Self::Value>>;
}

impl DistHistogramSpec for Bins<'_> {
    type Value = u64;

    fn dist_histogram_of<T: Number>(
        self,
        bulk: DistBulk<'_>,
        x: &DistArray<T>,
    ) -> Result<Histogram<u64>> {
        let local = x.local();
        bulk.histogram_in(x, self, &[], Ok(()), |b| {
            Ok(b.histogram(local, self)?.counts)
        })
    }
}

impl<W: Number> DistHistogramSpec for Weighted<'_, DistArray<W>> {
    type Value = f64;

    fn dist_histogram_of<T: Number>(
        self,
        bulk: DistBulk<'_>,
        x: &DistArray<T>,
    ) -> Result<Histogram<f64>> {
        let (local, w) = (x.local(), self.weights);
        let weights = [1, size_of::<W>() as u64];
        let split = same_blocks(x.blocks(), w.blocks());
        let bins = self.bins;
        bulk.histogram_in(x, bins, &weights, split, |b| {
            Ok(b.histogram(local, bins.weights(w.local()))?.counts)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{from_word, greater, less, to_word};

    #[test]
    fn values_round_trip_through_words() {
        assert_eq!(from_word::<f64>(to_word(-1.5f64)), -1.5);
        assert_eq!(
            from_word::<f32>(to_word(f32::MIN_POSITIVE)),
            f32::MIN_POSITIVE
        );
        assert_eq!(from_word::<i8>(to_word(-3i8)), -3);
        assert!(from_word::<f64>(to_word(f64::NAN)).is_nan());
    }

    #[test]
    fn nans_win_and_ties_keep_the_first() {
        assert!(less(f64::NAN, 1.0) && !less(1.0, f64::NAN) && !less(f64::NAN, f64::NAN));
        assert!(greater(f64::NAN, 1.0) && !greater(2.0, 2.0));
    }
}
