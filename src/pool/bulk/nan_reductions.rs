//! numpy's NaN-ignoring reductions: `nansum`, `nanmean`, `nanmin`, `nanmax`,
//! `nanargmin` and `nanargmax`, with numpy's answers for data that are all NaN,
//! deterministic like every reduction. For integers, which hold no NaN, each is
//! its plain form.

use super::accumulate::{Averaged, Dtype, Float, MeanIn, SumIn, Summed, Widen, divide_by_count};
use super::bulk_builder::Bulk;
use super::lanes::{chunk_sum, first_best, greater_number, lane_extreme, less_number};
use super::moments::{covered, tree_sum};
use super::number::Number;
use super::reduce::fold_kernels;
use crate::array::SharedArray;
use crate::error::{Error, Result};
use crate::kernel::ArrayArg;
use crate::layout::JobKind;

impl<'p, D: Dtype> Bulk<'p, (), D> {
    /// The sum of the elements that are not NaN (`np.nansum(x)`, `dtype=` from
    /// [`Bulk::dtype`]): 0 for an empty array or one of NaNs only, as numpy. An
    /// infinity is a number and counts. Deterministic as [`Bulk::sum`].
    ///
    /// # Errors
    /// As for [`crate::Pool::map_into`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::from_slice(&[1.0f64, f64::NAN, 2.5])?;
    /// assert_eq!(pool.bulk().nansum(&x)?, 3.5);
    /// assert!(pool.bulk().sum(&x)?.is_nan());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn nansum<T: Number>(self, x: &SharedArray<T>) -> Result<<D as SumIn<T>>::Acc>
    where
        D: SumIn<T>,
    {
        let k = fold_kernels::<(), &SharedArray<T>, <D as SumIn<T>>::Acc, _>(
            #[inline(always)]
            |_: usize, acc: &mut [<D as SumIn<T>>::Acc], xs: &[T]| {
                acc[0] = chunk_sum(xs, numbers::<T, Summed<D>>);
            },
        );
        let zero = <D as SumIn<T>>::Acc::ZERO;
        let mut slots =
            self.plain()
                .reduce_slots(JobKind::Reduce, k, &[ArrayArg::of(x)], &[zero])?;
        Ok(tree_sum(&mut slots))
    }

    /// The mean of the elements that are not NaN (`np.nanmean(x)`): [`Bulk::nansum`]
    /// in the mean's accumulator (see [`Bulk::mean`]) over their count, divided as
    /// numpy divides. NaN for an empty array or one of NaNs only (numpy warns and
    /// returns NaN). Exact where the sum is, as [`Bulk::mean`]; deterministic as
    /// [`Bulk::sum`].
    ///
    /// # Errors
    /// As for [`crate::Pool::map_into`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::from_slice(&[1.0f32, f32::NAN, 2.0, f32::NAN])?;
    /// assert_eq!(pool.bulk().nanmean(&x)?, 1.5f32);
    /// let nans = shmpool::SharedArray::from_slice(&[f64::NAN; 3])?;
    /// assert!(pool.bulk().nanmean(&nans)?.is_nan());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn nanmean<T: Number>(self, x: &SharedArray<T>) -> Result<<D as MeanIn<T>>::Acc>
    where
        D: MeanIn<T>,
    {
        // Each chunk: the sum of its numbers (an `f64` word, exact for an `f32`
        // accumulator's value) and their count.
        let k = fold_kernels::<(), &SharedArray<T>, f64, _>(
            #[inline(always)]
            |_: usize, acc: &mut [f64], xs: &[T]| {
                acc[0] = chunk_sum(xs, numbers::<T, Averaged<D>>).to_f64();
                acc[1] = chunk_sum(xs, |v| u64::from(!v.is_nan())) as f64;
            },
        );
        let slots = self
            .plain()
            .reduce_slots(JobKind::Reduce, k, &[ArrayArg::of(x)], &[0.0; 2])?;
        let mut sums: Vec<<D as MeanIn<T>>::Acc> = slots
            .chunks_exact(2)
            .map(|w| <D as MeanIn<T>>::Acc::from_f64(w[0]))
            .collect();
        let count: u64 = slots.chunks_exact(2).map(|w| w[1] as u64).sum();
        Ok(divide_by_count(tree_sum(&mut sums), count as usize))
    }
}

/// An element widened by `W`, or 0 for a NaN: what numpy's `nansum` adds.
#[inline(always)]
fn numbers<T: Number, W: Widen<T>>(v: T) -> W::Acc {
    if v.is_nan() {
        W::Acc::ZERO
    } else {
        W::widen(v)
    }
}

/// Whether `a` should replace `b` as numpy's `nanargmin` compares them: a NaN
/// counts as +inf (numpy fills NaNs with +inf, then takes `argmin`).
#[inline(always)]
fn less_filled<T: Number>(a: T, b: T) -> bool {
    let fill = |v: T| if v.is_nan() { T::MIN_IDENTITY } else { v };
    fill(a) < fill(b)
}

/// Whether `a` should replace `b` as numpy's `nanargmax` compares them: a NaN
/// counts as −inf.
#[inline(always)]
fn greater_filled<T: Number>(a: T, b: T) -> bool {
    let fill = |v: T| if v.is_nan() { T::MAX_IDENTITY } else { v };
    fill(a) > fill(b)
}

impl Bulk<'_> {
    /// The smallest element that is not NaN (`np.nanmin(x)`, numpy's `fmin`
    /// reduction): `None` for an empty array or range (numpy raises), `Some(NaN)`
    /// when every element is NaN (numpy warns and returns NaN). The same as
    /// [`Bulk::min`] for integers. Deterministic.
    ///
    /// # Errors
    /// As for [`crate::Pool::map_into`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::from_slice(&[f64::NAN, 3.0, -2.0, f64::NAN])?;
    /// assert_eq!(pool.bulk().nanmin(&x)?, Some(-2.0));
    /// assert_eq!(pool.bulk().nanmax(&x)?, Some(3.0));
    /// assert!(pool.bulk().min(&x)?.unwrap().is_nan()); // min propagates NaN
    /// let nans = shmpool::SharedArray::from_slice(&[f32::NAN; 2])?;
    /// assert!(pool.bulk().nanmin(&nans)?.unwrap().is_nan());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn nanmin<T: Number>(self, x: &SharedArray<T>) -> Result<Option<T>> {
        let k = fold_kernels::<(), &SharedArray<T>, T, _>(
            #[inline(always)]
            |_: usize, acc: &mut [T], xs: &[T]| {
                acc[0] = lane_extreme::<T, true>(xs, T::MIN_IDENTITY, less_number);
            },
        );
        self.extreme(x, k, T::MIN_IDENTITY, less_number)
    }

    /// The largest element that is not NaN (`np.nanmax(x)`), as [`Bulk::nanmin`].
    ///
    /// # Errors
    /// As for [`crate::Pool::map_into`].
    pub fn nanmax<T: Number>(self, x: &SharedArray<T>) -> Result<Option<T>> {
        let k = fold_kernels::<(), &SharedArray<T>, T, _>(
            #[inline(always)]
            |_: usize, acc: &mut [T], xs: &[T]| {
                acc[0] = lane_extreme::<T, true>(xs, T::MAX_IDENTITY, greater_number);
            },
        );
        self.extreme(x, k, T::MAX_IDENTITY, greater_number)
    }

    /// The index of the first smallest element that is not NaN (`np.nanargmin(x)`):
    /// numpy's rule exactly, a NaN counting as +inf, so that where the numbers are
    /// all +inf the first NaN or +inf wins. `None` for an empty array or range. The
    /// same as [`Bulk::argmin`] for integers. Deterministic.
    ///
    /// # Errors
    /// [`Error::AllNan`] when every element is NaN (numpy raises `ValueError`); as
    /// for [`crate::Pool::map_into`] otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::from_slice(&[f64::NAN, 3.0, -2.0, -2.0])?;
    /// assert_eq!(pool.bulk().nanargmin(&x)?, Some(2));
    /// assert_eq!(pool.bulk().nanargmax(&x)?, Some(1));
    /// assert_eq!(pool.bulk().argmin(&x)?, Some(0)); // argmin points at the NaN
    /// let nans = shmpool::SharedArray::from_slice(&[f64::NAN; 2])?;
    /// assert!(matches!(pool.bulk().nanargmin(&nans), Err(shmpool::Error::AllNan { len: 2 })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn nanargmin<T: Number>(self, x: &SharedArray<T>) -> Result<Option<usize>> {
        let k = fold_kernels::<(), &SharedArray<T>, u64, _>(
            #[inline(always)]
            |start: usize, acc: &mut [u64], xs: &[T]| {
                acc[0] = (start + first_best(xs, less_filled)) as u64;
            },
        );
        let best = self.arg_extreme(x, k, less_filled)?;
        self.unless_all_nan(x, best)
    }

    /// The index of the first largest element that is not NaN (`np.nanargmax(x)`),
    /// a NaN counting as −inf, as [`Bulk::nanargmin`].
    ///
    /// # Errors
    /// As for [`Bulk::nanargmin`].
    pub fn nanargmax<T: Number>(self, x: &SharedArray<T>) -> Result<Option<usize>> {
        let k = fold_kernels::<(), &SharedArray<T>, u64, _>(
            #[inline(always)]
            |start: usize, acc: &mut [u64], xs: &[T]| {
                acc[0] = (start + first_best(xs, greater_filled)) as u64;
            },
        );
        let best = self.arg_extreme(x, k, greater_filled)?;
        self.unless_all_nan(x, best)
    }

    /// `best`, unless it points at a NaN and every element is one. A NaN can win
    /// only where no number beats the fill (all are NaN or that infinity), so the
    /// second pass runs only then.
    fn unless_all_nan<T: Number>(
        self,
        x: &SharedArray<T>,
        best: Option<usize>,
    ) -> Result<Option<usize>> {
        match best {
            Some(i) if x[i].is_nan() => match self.nanmin(x)? {
                Some(m) if m.is_nan() => Err(Error::AllNan {
                    len: covered(&self, x.len()),
                }),
                _ => Ok(best),
            },
            _ => Ok(best),
        }
    }
}
