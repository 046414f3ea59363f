//! numpy's reductions over `SharedArray`s: `sum`, `dot`, `min`, `max`, `argmin`
//! and `argmax` (`histogram` has a folder of its own, `src/pool/bulk/histogram/`),
//! deterministic like every reduction (see `src/pool/bulk/reduce.rs`).
//!
//! Within a chunk, sums and dot products keep 16 running partial sums, element
//! `i` going to lane `i % 16`, and add the lanes pairwise at the end. The compiler
//! vectorizes that at every SIMD level, and since the lane count is fixed, the
//! result does not depend on the level. These reductions are memory-bound: under
//! `Simd::Auto` they run at AVX2 at most (`crate::simd::Levels`).

use super::bulk_builder::Bulk;
use super::number::Number;
use super::reduce::{fold_kernels, tree_combine};
use crate::array::SharedArray;
use crate::error::{Error, Result};
use crate::kernel::ArrayArg;
use crate::layout::JobKind;

/// Lanes of the in-chunk sums.
const LANES: usize = 16;

/// `Σ term(xs[i], ys[i])` over the elements of `xs` in `LANES` lanes, element `i`
/// going to lane `i % LANES`, the lanes then added pairwise. `ys` holds at least as
/// many elements as `xs`. The lanes are walked in whole blocks of `LANES`, with no
/// index to check, so the loop vectorizes at every SIMD level.
#[inline(always)]
fn lane_sum<T: Number>(xs: &[T], ys: &[T], term: impl Fn(T, T) -> T) -> T {
    let ys = &ys[..xs.len()];
    let (x_blocks, y_blocks) = (xs.chunks_exact(LANES), ys.chunks_exact(LANES));
    let (x_tail, y_tail) = (x_blocks.remainder(), y_blocks.remainder());
    let mut lanes = [T::ZERO; LANES];
    for (x, y) in x_blocks.zip(y_blocks) {
        for ((lane, &x), &y) in lanes.iter_mut().zip(x).zip(y) {
            *lane = lane.add(term(x, y));
        }
    }
    for ((lane, &x), &y) in lanes.iter_mut().zip(x_tail).zip(y_tail) {
        *lane = lane.add(term(x, y));
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for j in 0..width {
            lanes[j] = lanes[j].add(lanes[j + width]);
        }
    }
    lanes[0]
}

/// The extreme of `xs` by `better` (strictly), or NaN if any element is one.
#[inline(always)]
fn lane_extreme<T: Number>(xs: &[T], start: T, better: impl Fn(T, T) -> bool) -> T {
    let mut lanes = [start; LANES];
    let mut nan = [false; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks.remainder();
    for c in chunks {
        for j in 0..LANES {
            let v = c[j];
            lanes[j] = if better(v, lanes[j]) { v } else { lanes[j] };
            nan[j] |= v.is_nan();
        }
    }
    for (j, &v) in tail.iter().enumerate() {
        lanes[j] = if better(v, lanes[j]) { v } else { lanes[j] };
        nan[j] |= v.is_nan();
    }
    if nan.iter().any(|&n| n)
        && let Some(first_nan) = xs.iter().copied().find(|v| v.is_nan())
    {
        return first_nan;
    }
    lanes
        .into_iter()
        .fold(start, |acc, v| if better(v, acc) { v } else { acc })
}

/// Whether `a` should replace `b` as the minimum: smaller, or a NaN over a number.
#[inline(always)]
fn less<T: Number>(a: T, b: T) -> bool {
    a < b || (a.is_nan() && !b.is_nan())
}

/// Whether `a` should replace `b` as the maximum.
#[inline(always)]
fn greater<T: Number>(a: T, b: T) -> bool {
    a > b || (a.is_nan() && !b.is_nan())
}

impl Bulk<'_> {
    /// The sum of the elements (`np.sum(x)`): 0 for an empty array, wrapping for
    /// integers. Deterministic: bit-identical for any number of workers, start
    /// method and SIMD level, given the chunk length.
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
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn sum<T: Number>(self, x: &SharedArray<T>) -> Result<T> {
        let k = fold_kernels::<(), &SharedArray<T>, T, _>(
            #[inline(always)]
            |_: usize, acc: &mut [T], xs: &[T]| {
                acc[0] = acc[0].add(lane_sum(xs, xs, |x, _| x));
            },
        )
        .memory_bound();
        let mut slots = self.reduce_slots(JobKind::Reduce, k, &[ArrayArg::of(x)], &[T::ZERO])?;
        Ok(tree_combine(&mut slots, 1, |l, r| l[0] = l[0].add(r[0])).map_or(T::ZERO, |s| s[0]))
    }

    /// The dot product `Σ a[i] * b[i]` (`np.dot` of two vectors), deterministic as
    /// [`Bulk::sum`] is. Products and sums are separate roundings: no FMA.
    ///
    /// # Errors
    /// [`Error::OperandLength`], naming `b`, if the lengths differ; as for
    /// [`crate::Pool::map_into`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let a = shmpool::SharedArray::from_slice(&[1.0f64, 2.0, 3.0])?;
    /// let b = shmpool::SharedArray::from_slice(&[4.0f64, -5.0, 6.0])?;
    /// assert_eq!(pool.bulk().dot(&a, &b)?, 12.0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn dot<T: Number>(self, a: &SharedArray<T>, b: &SharedArray<T>) -> Result<T> {
        if a.len() != b.len() {
            return Err(dot_lengths(a.len(), b.len()));
        }
        let k = fold_kernels::<(), (&SharedArray<T>, &SharedArray<T>), T, _>(
            #[inline(always)]
            |_: usize, acc: &mut [T], (xs, ys): (&[T], &[T])| {
                acc[0] = acc[0].add(lane_sum(xs, ys, |x, y| x.mul(y)));
            },
        )
        .memory_bound();
        let ins = [ArrayArg::of(a), ArrayArg::of(b)];
        let mut slots = self.reduce_slots(JobKind::Reduce, k, &ins, &[T::ZERO])?;
        Ok(tree_combine(&mut slots, 1, |l, r| l[0] = l[0].add(r[0])).map_or(T::ZERO, |s| s[0]))
    }

    /// The smallest element (`np.min`), NaN if any element is NaN, `None` for an
    /// empty array or range.
    ///
    /// # Errors
    /// As for [`crate::Pool::map_into`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::from_slice(&[3i32, -7, 5])?;
    /// assert_eq!(pool.bulk().min(&x)?, Some(-7));
    /// assert_eq!(pool.bulk().max(&x)?, Some(5));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn min<T: Number>(self, x: &SharedArray<T>) -> Result<Option<T>> {
        let k = fold_kernels::<(), &SharedArray<T>, T, _>(
            #[inline(always)]
            |_: usize, acc: &mut [T], xs: &[T]| {
                let m = lane_extreme(xs, T::MIN_IDENTITY, less);
                if less(m, acc[0]) {
                    acc[0] = m;
                }
            },
        )
        .memory_bound();
        self.extreme(x, k, T::MIN_IDENTITY, less)
    }

    /// The largest element (`np.max`), NaN if any element is NaN, `None` for an
    /// empty array or range.
    ///
    /// # Errors
    /// As for [`crate::Pool::map_into`].
    pub fn max<T: Number>(self, x: &SharedArray<T>) -> Result<Option<T>> {
        let k = fold_kernels::<(), &SharedArray<T>, T, _>(
            #[inline(always)]
            |_: usize, acc: &mut [T], xs: &[T]| {
                let m = lane_extreme(xs, T::MAX_IDENTITY, greater);
                if greater(m, acc[0]) {
                    acc[0] = m;
                }
            },
        )
        .memory_bound();
        self.extreme(x, k, T::MAX_IDENTITY, greater)
    }

    fn extreme<T: Number>(
        self,
        x: &SharedArray<T>,
        k: crate::kernel::Kernels,
        identity: T,
        better: fn(T, T) -> bool,
    ) -> Result<Option<T>> {
        let mut slots = self.reduce_slots(JobKind::Reduce, k, &[ArrayArg::of(x)], &[identity])?;
        let best = tree_combine(&mut slots, 1, |l, r| {
            if better(r[0], l[0]) {
                l[0] = r[0];
            }
        })
        .map(|s| s[0]);
        Ok(best)
    }

    /// The index of the first smallest element (`np.argmin`), or of the first NaN
    /// if there is one; `None` for an empty array or range.
    ///
    /// # Errors
    /// As for [`crate::Pool::map_into`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::from_slice(&[3.0f64, -1.0, 8.0, -1.0, 8.0])?;
    /// assert_eq!(pool.bulk().argmin(&x)?, Some(1));
    /// assert_eq!(pool.bulk().argmax(&x)?, Some(2));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn argmin<T: Number>(self, x: &SharedArray<T>) -> Result<Option<usize>> {
        let k = fold_kernels::<(), &SharedArray<T>, u64, _>(
            #[inline(always)]
            |start: usize, acc: &mut [u64], xs: &[T]| {
                acc[0] = (start + first_best(xs, less)) as u64;
            },
        )
        .memory_bound();
        self.arg_extreme(x, k, less)
    }

    /// The index of the first largest element (`np.argmax`), or of the first NaN
    /// if there is one; `None` for an empty array or range.
    ///
    /// # Errors
    /// As for [`crate::Pool::map_into`].
    pub fn argmax<T: Number>(self, x: &SharedArray<T>) -> Result<Option<usize>> {
        let k = fold_kernels::<(), &SharedArray<T>, u64, _>(
            #[inline(always)]
            |start: usize, acc: &mut [u64], xs: &[T]| {
                acc[0] = (start + first_best(xs, greater)) as u64;
            },
        )
        .memory_bound();
        self.arg_extreme(x, k, greater)
    }

    fn arg_extreme<T: Number>(
        self,
        x: &SharedArray<T>,
        k: crate::kernel::Kernels,
        better: fn(T, T) -> bool,
    ) -> Result<Option<usize>> {
        let mut slots = self.reduce_slots(JobKind::Reduce, k, &[ArrayArg::of(x)], &[u64::MAX])?;
        // Ties keep the left (earlier) index: the first occurrence wins.
        let best = tree_combine(&mut slots, 1, |l, r| {
            if better(x[r[0] as usize], x[l[0] as usize]) {
                l[0] = r[0];
            }
        });
        Ok(best.map(|s| s[0] as usize))
    }
}

/// The error of a dot product whose vectors differ in length: it names `b`, since
/// `dot` has two inputs and no output.
pub(crate) fn dot_lengths(a: usize, b: usize) -> Error {
    Error::OperandLength {
        what: "b, the second vector of the dot product,".into(),
        len: b,
        expected: a,
    }
}

/// The index of the first element of `xs` that nothing after it beats.
#[inline(always)]
fn first_best<T: Number>(xs: &[T], better: fn(T, T) -> bool) -> usize {
    let mut best = 0;
    for (i, &v) in xs.iter().enumerate().skip(1) {
        if better(v, xs[best]) {
            best = i;
        }
    }
    best
}
