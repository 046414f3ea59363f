//! numpy's reductions over `SharedArray`s: `dot`, `min`, `max`, `argmin` and
//! `argmax`, deterministic like every reduction (see `src/pool/bulk/reduce.rs`).
//! `histogram` has a folder of its own (`src/pool/bulk/histogram/`); `sum` and the
//! statistics (`mean`, `var`, ...) are in `src/pool/bulk/moments.rs`, the NaN-aware
//! forms in `src/pool/bulk/nan_reductions.rs`, the forms along an axis in
//! `src/pool/bulk/axis.rs`.
//!
//! Within a chunk, dot products keep 16 running partial sums and extremes 16
//! running extremes (`src/pool/bulk/lanes.rs`): the compiler vectorizes them at
//! every SIMD level, and since the lane count is fixed, the result does not depend
//! on the level. These reductions are memory-bound: under `Simd::Auto` they run at
//! AVX2 at most (`crate::simd::Levels`).

use super::bulk_builder::Bulk;
use super::lanes::{first_best, greater, lane_extreme, lane_sum, less};
use super::number::Number;
use super::reduce::{fold_kernels, tree_combine};
use crate::array::SharedArray;
use crate::error::{Error, Result};
use crate::kernel::ArrayArg;
use crate::layout::JobKind;

impl Bulk<'_> {
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
                let m = lane_extreme::<T, false>(xs, T::MIN_IDENTITY, less);
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
                let m = lane_extreme::<T, false>(xs, T::MAX_IDENTITY, greater);
                if greater(m, acc[0]) {
                    acc[0] = m;
                }
            },
        )
        .memory_bound();
        self.extreme(x, k, T::MAX_IDENTITY, greater)
    }

    pub(super) fn extreme<T: Number>(
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

    pub(super) fn arg_extreme<T: Number>(
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
