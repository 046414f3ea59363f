//! What a histogram is asked for and what it returns: [`Bins`] (numpy's `bins`
//! and `range`), [`Weighted`] (numpy's `weights`), and [`Histogram`], the values
//! and the edges numpy returns, with numpy's `density`.

/// The bins of a histogram: numpy's `bins` and `range` arguments.
///
/// | numpy | shmpool |
/// |---|---|
/// | `np.histogram(x, 10, range=(0, 1))` | `Bins::Uniform { count: 10, range: (0.0, 1.0) }` |
/// | `np.histogram(x, bins=edges)` | `Bins::Edges(&edges)` |
/// | `np.histogram(x, ..., weights=w)` | `bins.weights(&w)` (see [`Weighted`]) |
/// | `np.histogram(x, ..., density=True)` | [`Histogram::density`] of the result |
///
/// Either way bin `b` holds the values `v` with `edges[b] <= v < edges[b + 1]`,
/// and the last bin also its upper edge; values outside every bin, and NaNs, are
/// not counted.
///
/// # Examples
///
/// ```
/// use shmpool::{Bins, Pool, SharedArray};
///
/// let pool = Pool::new(2)?;
/// let x = SharedArray::from_slice(&[0.5f64, 1.0, 1.5, 2.0, 9.0])?;
/// let h = pool.bulk().histogram(&x, Bins::Uniform { count: 2, range: (0.0, 2.0) })?;
/// assert_eq!(h.counts, [1, 3]);
/// assert_eq!(h.edges, [0.0, 1.0, 2.0]);
/// // Bins of any widths: [0, 1), [1, 1.5), [1.5, 10].
/// let h = pool.bulk().histogram(&x, Bins::Edges(&[0.0, 1.0, 1.5, 10.0]))?;
/// assert_eq!(h.counts, [1, 1, 3]);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bins<'a> {
    /// `count` bins of equal width over `range`, `(lo, hi)`: numpy's edges
    /// (`np.linspace(lo, hi, count + 1)`, in `float32` for `f32` data).
    Uniform {
        /// How many bins: 1 to 2^20.
        count: usize,
        /// The lowest and the highest edge, finite, `lo < hi`.
        range: (f64, f64),
    },
    /// The edges, in `float64`: `edges.len() - 1` bins (none for fewer than two
    /// edges, as in numpy), whose edges must increase monotonically (two equal
    /// neighbours make a bin that holds nothing, or only its edge if it is the
    /// last). Infinite edges are allowed.
    Edges(&'a [f64]),
}

impl<'a> Bins<'a> {
    /// These bins, each adding up the weights of its elements rather than
    /// counting them: `weights` has one element per element of the data (numpy's
    /// `weights=`). `weights` is a [`SharedArray`](crate::SharedArray) for
    /// [`Bulk::histogram`](crate::Bulk::histogram) (a `DistArray` split like the
    /// data, for `DistBulk::histogram`).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{Bins, Pool, SharedArray};
    ///
    /// let pool = Pool::new(2)?;
    /// let x = SharedArray::from_slice(&[0.5f64, 1.0, 1.5, 2.0])?;
    /// let w = SharedArray::from_slice(&[10.0f64, 0.5, -2.0, 0.25])?;
    /// let bins = Bins::Uniform { count: 2, range: (0.0, 2.0) };
    /// let h = pool.bulk().histogram(&x, bins.weights(&w))?;
    /// assert_eq!(h.counts, [10.0, -1.25]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn weights<A: ?Sized>(self, weights: &'a A) -> Weighted<'a, A> {
        Weighted {
            bins: self,
            weights,
        }
    }
}

/// Bins that add up weights (numpy's `weights=`), made by [`Bins::weights`].
///
/// The sums are `f64` whatever the weights' type (numpy keeps the weights' type:
/// integer weights give integer sums there), added in an order fixed by the
/// chunk length alone, so they are bit-identical for any number of workers, start
/// method and SIMD level, as every reduction is. They are not always numpy's bits:
/// numpy adds the weights of a bin in another order, so the two agree within
/// rounding: each is within `(n − 1)·ε/2 · Σ|w|` of the exact sum of a bin's `n`
/// weights `w`.
/// A NaN weight makes its bin NaN (numpy's explicit-edge form spreads it to every
/// bin after it, since it finds the sums as differences of a running total).
#[derive(Clone, Copy, Debug)]
pub struct Weighted<'a, A: ?Sized> {
    /// The bins.
    pub bins: Bins<'a>,
    /// The weights, one per element of the data.
    pub weights: &'a A,
}

/// A histogram: what each bin holds, and the bins' edges, as `np.histogram`
/// returns them. `C` is `u64` for counts, `f64` for sums of weights.
///
/// # Examples
///
/// ```
/// use shmpool::{Bins, Histogram, Pool, SharedArray};
///
/// let pool = Pool::new(2)?;
/// let x = SharedArray::from_slice(&[1u8, 2, 2, 3, 3, 3])?;
/// let Histogram { counts, edges, .. } =
///     pool.bulk().histogram(&x, Bins::Uniform { count: 3, range: (0.5, 3.5) })?;
/// assert_eq!(counts, [1, 2, 3]);
/// assert_eq!(edges, [0.5, 1.5, 2.5, 3.5]);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram<C> {
    /// Each bin's count, or sum of weights.
    pub counts: Vec<C>,
    /// The edges, one more than the bins (none if the bins were given as fewer
    /// than two edges): bin `b` spans `edges[b]..edges[b + 1]`. numpy's edges,
    /// `float32` values for `f32` data over uniform bins, or the edges given.
    pub edges: Vec<f64>,
    /// Whether the edges are `float32` values, whose differences numpy takes in
    /// `float32` too.
    pub(super) single: bool,
}

impl<C: BinValue> Histogram<C> {
    /// numpy's `density=True`: each bin's value divided by the bin's width and by
    /// the total of every bin, `counts[b] / (edges[b + 1] − edges[b]) / total`,
    /// in that order, as numpy computes it (with the widths in `float32` where the
    /// edges are `float32` values), so that the density integrates to 1 over the
    /// bins. A histogram with nothing in it has a density of NaNs, as in numpy.
    ///
    /// For counts the result has numpy's bits; for sums of weights, the total is
    /// summed pairwise, as numpy sums it, and agrees within rounding.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{Bins, Pool, SharedArray};
    ///
    /// let pool = Pool::new(2)?;
    /// let x = SharedArray::from_slice(&[0.1f64, 0.2, 0.3, 3.0])?;
    /// let h = pool.bulk().histogram(&x, Bins::Edges(&[0.0, 1.0, 5.0]))?;
    /// assert_eq!(h.density(), [0.75, 0.0625]); // 3/1/4 and 1/4/4
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn density(&self) -> Vec<f64> {
        let total = C::total(&self.counts);
        self.counts
            .iter()
            .zip(self.edges.windows(2))
            .map(|(&c, e)| {
                let width = if self.single {
                    f64::from(e[1] as f32 - e[0] as f32)
                } else {
                    e[1] - e[0]
                };
                c.to_f64() / width / total
            })
            .collect()
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u64 {}
    impl Sealed for f64 {}
}

/// What a histogram's bin holds: `u64` (a count) or `f64` (a sum of weights).
pub trait BinValue: bytemuck::Pod + Default + std::ops::AddAssign + sealed::Sealed {
    /// The value as an `f64`.
    fn to_f64(self) -> f64;
    /// The total of every bin, as numpy's `n.sum()` finds it: exact for counts,
    /// pairwise for sums.
    fn total(values: &[Self]) -> f64;
}

impl BinValue for u64 {
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn total(values: &[u64]) -> f64 {
        values.iter().sum::<u64>() as f64
    }
}

impl BinValue for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn total(values: &[f64]) -> f64 {
        pairwise(values)
    }
}

/// A pairwise sum: halves summed apart, down to runs of 8 summed in order.
fn pairwise(v: &[f64]) -> f64 {
    if v.len() <= 8 {
        v.iter().fold(0.0, |s, &x| s + x)
    } else {
        let (l, r) = v.split_at(v.len() / 2);
        pairwise(l) + pairwise(r)
    }
}

#[cfg(test)]
mod tests {
    use super::Histogram;

    #[test]
    fn density_divides_by_the_width_then_the_total() {
        let h = Histogram {
            counts: vec![1u64, 2, 1],
            edges: vec![0.0, 0.5, 1.0, 3.0],
            single: false,
        };
        assert_eq!(h.density(), [0.5, 1.0, 0.125]);
        let empty = Histogram {
            counts: vec![0u64; 2],
            edges: vec![0.0, 1.0, 2.0],
            single: false,
        };
        assert!(empty.density().iter().all(|d| d.is_nan()));
        let none = Histogram::<f64> {
            counts: vec![],
            edges: vec![],
            single: false,
        };
        assert!(none.density().is_empty());
    }

    /// numpy 2.4: `np.histogram(np.float32([1, 2, 3, 4]), 3, range=(0, 4),
    /// density=True)[0]` is `[0.18749999, 0.18749999, 0.37500002]`: the widths of
    /// float32 edges, taken in float32.
    #[test]
    fn float32_edges_have_float32_widths() {
        let edges: Vec<f64> = [0.0f32, 1.333_333_4, 2.666_666_7, 4.0]
            .map(f64::from)
            .to_vec();
        let h = Histogram {
            counts: vec![1u64, 1, 2],
            edges,
            single: true,
        };
        let d = h.density();
        let want = [1.0 / f64::from(1.333_333_4f32) / 4.0, 0.0, 0.0];
        assert_eq!(d[0], want[0]);
        assert!((d[0] - 0.187_499_99).abs() < 1e-8 && (d[2] - 0.375_000_02).abs() < 1e-8);
    }
}
