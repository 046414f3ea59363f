//! numpy's reductions along an axis of a 2-D array, into an output array:
//! `sum_axis`, `mean_axis`, `var_axis`, `std_axis` (in the builder's accumulator),
//! `min_axis`, `max_axis`, `argmin_axis` and `argmax_axis`.
//!
//! Along axis 1 (a value per row) each row is reduced by one worker, whole, with
//! the same code as a whole array's chunk: a row kernel (`RowsBody`), a few rows
//! per chunk, each writing its rows' outputs, so the result does not even depend
//! on the chunk length. Along axis 0 (a value per column) each chunk of rows
//! folds into a partial per column, combined in the fixed tree
//! (`src/pool/bulk/columns.rs`). Both are deterministic.

use super::accumulate::{Averaged, Dtype, Float, MeanIn, SumIn, Summed, divide_by_count};
use super::bulk_builder::{Bulk, spec};
use super::columns::{column_arg_extremes, column_extremes, column_squares, column_sums};
use super::engine::Role;
use super::lanes::{chunk_sum, first_best, greater, lane_extreme, less};
use super::moments::row_squares;
use super::number::Number;
use super::reduce::rows_of;
use crate::array::SharedArray;
use crate::error::{Error, Result};
use crate::kernel::{ArrayArg, AssertZeroSized, KernelEnv, KernelFn, RowsBody, kernels};
use crate::layout::JobKind;

/// A checked reduction of a `rows × cols` array along `axis`.
#[derive(Debug, Clone, Copy)]
struct Along {
    axis: usize,
    rows: usize,
    cols: usize,
}

impl Along {
    /// Checks a reduction of `x` along `axis` into an output of `out_len` elements
    /// (`what` names it in errors).
    fn check<T: Number>(
        x: &SharedArray<T>,
        axis: usize,
        out_len: usize,
        what: &str,
    ) -> Result<Along> {
        let [rows, cols] = *x.shape() else {
            return Err(Error::Dimensionality {
                shape: x.shape().to_vec(),
                axes: 2,
            });
        };
        let want = match axis {
            0 => cols,
            1 => rows,
            _ => {
                return Err(Error::InvalidArgument {
                    name: "axis",
                    reason: format!("axis {axis} is out of bounds for a 2-D array: 0 or 1"),
                });
            }
        };
        if out_len != want {
            return Err(Error::InvalidArgument {
                name: "out",
                reason: format!(
                    "the {what} along axis {axis} of a {rows} × {cols} array has {want} \
                     elements, the output {out_len}"
                ),
            });
        }
        Ok(Along { axis, rows, cols })
    }

    /// Checks that every output of an extreme has an element to pick from: numpy
    /// raises for a reduction with no identity over an empty axis.
    fn check_not_empty<E: KernelEnv, D>(self, bulk: &Bulk<'_, E, D>, what: &str) -> Result<Self> {
        let reduced = match self.axis {
            // The rows the range covers; a range the engine will refuse passes here.
            0 => match bulk.options.range {
                Some((start, end)) if start <= end && end <= self.rows => end - start,
                Some(_) => 1,
                None => self.rows,
            },
            _ => self.cols,
        };
        let outputs = if self.axis == 0 { self.cols } else { self.rows };
        if reduced == 0 && outputs > 0 {
            return Err(Error::InvalidArgument {
                name: "x",
                reason: format!(
                    "the {what} along axis {} of a {} × {} array is over no element: it has \
                     no identity (numpy raises)",
                    self.axis, self.rows, self.cols
                ),
            });
        }
        Ok(self)
    }

    /// Whether there is no element to write (nothing to run).
    fn no_output(self) -> bool {
        (if self.axis == 0 { self.cols } else { self.rows }) == 0
    }
}

/// Runs the row kernel `f(row, out_row)` over the rows of `x` the operation
/// covers, `out` holding one element per row of `x`.
fn along_rows<E, T, U, F>(
    bulk: Bulk<'_, E>,
    x: &SharedArray<T>,
    out: &mut SharedArray<U>,
    f: F,
) -> Result<()>
where
    E: KernelEnv,
    T: Number,
    U: bytemuck::Pod,
    F: for<'a> KernelFn<E, (&'a [T], &'a mut [U]), Output = ()>,
{
    let () = AssertZeroSized::<F>::OK;
    let _ = f; // only its type travels: the worker conjures the value
    let xr = rows_of(x)?;
    let yr = ArrayArg {
        elem_size: size_of::<U>(),
        ..ArrayArg::of(out)
    };
    let ops = vec![spec(xr, Role::Chunked), spec(yr, Role::Chunked)];
    let k = kernels::<RowsBody<E, T, U, F>>();
    bulk.run(
        JobKind::Rows,
        k,
        ops,
        xr.len,
        xr.elem_size + yr.elem_size,
        true,
    )
}

/// Rows of no column: `value` into the outputs of the rows the operation covers,
/// after checking its range as the engine would.
fn fill_rows<E: KernelEnv, D, U: bytemuck::Pod>(
    bulk: &Bulk<'_, E, D>,
    out: &mut SharedArray<U>,
    value: U,
) -> Result<()> {
    let len = out.len();
    let (start, end) = bulk.options.range.unwrap_or((0, len));
    if start > end || end > len {
        return Err(Error::RangeOutOfBounds {
            range: start..end,
            len,
        });
    }
    out[start..end].fill(value);
    Ok(())
}

impl<'p, D: Dtype> Bulk<'p, (), D> {
    /// The sums along an axis of a 2-D array, into `out` (`np.sum(x, axis=axis,
    /// out=out)`, `dtype=` from [`Bulk::dtype`]): axis 0 sums each column (`out`
    /// has an element per column), axis 1 each row (an element per row). In the
    /// accumulator of [`Bulk::sum`]; 0 for an empty axis.
    ///
    /// `.range(a..b)` counts rows: along axis 0 it sums `x[a..b]`'s columns, along
    /// axis 1 it writes `out[a..b]` and leaves the rest. Along axis 1 each row is
    /// summed as [`Bulk::sum`] sums a chunk, by one worker, whatever the chunk
    /// length; along axis 0 each chunk of rows adds its rows in order into a
    /// partial per column, and the partials are added in the fixed tree: the same
    /// bits for any number of workers, start method and SIMD level, given the
    /// chunk length.
    ///
    /// # Errors
    /// [`Error::Dimensionality`] if `x` is not 2-D; [`Error::InvalidArgument`] for
    /// an axis other than 0 and 1, or an `out` of another length; as for
    /// [`crate::Pool::map_into`] otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::try_from_iter((0..6).map(f64::from))?.reshape(&[2, 3])?;
    /// let mut columns = shmpool::SharedArray::zeroed(3)?;
    /// pool.bulk().sum_axis(&x, 0, &mut columns)?;
    /// assert_eq!(&columns[..], &[3.0, 5.0, 7.0]);
    /// let mut rows = shmpool::SharedArray::zeroed(2)?;
    /// pool.bulk().sum_axis(&x, 1, &mut rows)?;
    /// assert_eq!(&rows[..], &[3.0, 12.0]);
    /// // Small integers summed in i64 (numpy's default for them).
    /// let b = shmpool::SharedArray::<u8>::filled(1000 * 2, 255)?.reshape(&[1000, 2])?;
    /// let mut wide = shmpool::SharedArray::<i64>::zeroed(2)?;
    /// pool.bulk().dtype::<i64>().sum_axis(&b, 0, &mut wide)?;
    /// assert_eq!(&wide[..], &[255_000, 255_000]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn sum_axis<T: Number>(
        self,
        x: &SharedArray<T>,
        axis: usize,
        out: &mut SharedArray<<D as SumIn<T>>::Acc>,
    ) -> Result<()>
    where
        D: SumIn<T>,
    {
        let along = Along::check(x, axis, out.len(), "sum")?;
        let zero = <D as SumIn<T>>::Acc::ZERO;
        if along.no_output() {
            return Ok(());
        }
        match axis {
            0 => {
                let sums = column_sums::<T, Summed<D>>(self.plain(), x, along.cols)?;
                out.copy_from_slice(&sums);
                Ok(())
            }
            _ if along.cols == 0 => fill_rows(&self, out, zero),
            _ => along_rows(
                self.plain(),
                x,
                out,
                #[inline(always)]
                |row: &[T], o: &mut [<D as SumIn<T>>::Acc]| {
                    o[0] = chunk_sum(row, <D as SumIn<T>>::widen);
                },
            ),
        }
    }

    /// The means along an axis of a 2-D array, into `out` (`np.mean(x, axis=axis,
    /// out=out)`): [`Bulk::sum_axis`] in the mean's accumulator (see
    /// [`Bulk::mean`]), divided by the count as numpy divides. NaN for an empty
    /// axis. Exact where the sums are; deterministic as [`Bulk::sum_axis`].
    ///
    /// # Errors
    /// As for [`Bulk::sum_axis`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::from_slice_shaped(&[1i32, 2, 3, 4, 5, 6], &[3, 2])?;
    /// let mut means = shmpool::SharedArray::<f64>::zeroed(2)?;
    /// pool.bulk().mean_axis(&x, 0, &mut means)?;
    /// assert_eq!(&means[..], &[3.0, 4.0]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn mean_axis<T: Number>(
        self,
        x: &SharedArray<T>,
        axis: usize,
        out: &mut SharedArray<<D as MeanIn<T>>::Acc>,
    ) -> Result<()>
    where
        D: MeanIn<T>,
    {
        let along = Along::check(x, axis, out.len(), "mean")?;
        if along.no_output() {
            return Ok(());
        }
        match axis {
            0 => {
                let sums = column_sums::<T, Averaged<D>>(self.plain(), x, along.cols)?;
                let n = super::moments::covered(&self, along.rows);
                for (o, s) in out.iter_mut().zip(sums) {
                    *o = divide_by_count(s, n);
                }
                Ok(())
            }
            _ if along.cols == 0 => fill_rows(&self, out, <D as MeanIn<T>>::Acc::NAN),
            _ => along_rows(
                self.plain(),
                x,
                out,
                #[inline(always)]
                |row: &[T], o: &mut [<D as MeanIn<T>>::Acc]| {
                    o[0] = divide_by_count(chunk_sum(row, <D as MeanIn<T>>::widen), row.len());
                },
            ),
        }
    }

    /// The variances along an axis of a 2-D array, into `out` (`np.var(x,
    /// axis=axis, ddof=ddof, out=out)`), in the mean's accumulator, with the cases
    /// of [`Bulk::var`]. Along axis 1 each row is reduced whole by numpy's two
    /// passes (its mean, then `Σ(x − mean)²`, corrected by `(Σ(x − mean))²/n`);
    /// along axis 0 each column by the one-pass method of [`Bulk::var`]. Both are
    /// exact where numpy's answer is, and within the bound of [`Bulk::var`] of the
    /// exact one. Deterministic as [`Bulk::sum_axis`].
    ///
    /// # Errors
    /// As for [`Bulk::sum_axis`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::from_slice_shaped(&[1.0f64, 10.0, 2.0, 20.0, 3.0, 30.0], &[3, 2])?;
    /// let mut v = shmpool::SharedArray::zeroed(2)?;
    /// pool.bulk().var_axis(&x, 0, 1, &mut v)?;
    /// assert_eq!(&v[..], &[1.0, 100.0]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn var_axis<T: Number>(
        self,
        x: &SharedArray<T>,
        axis: usize,
        ddof: usize,
        out: &mut SharedArray<<D as MeanIn<T>>::Acc>,
    ) -> Result<()>
    where
        D: MeanIn<T>,
    {
        self.spread_axis::<T, false>(x, axis, ddof, out)
    }

    /// The standard deviations along an axis of a 2-D array, into `out`
    /// (`np.std(x, axis=axis, ddof=ddof, out=out)`): the square roots of
    /// [`Bulk::var_axis`].
    ///
    /// # Errors
    /// As for [`Bulk::sum_axis`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::from_slice_shaped(&[2.0f32, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0], &[1, 8])?;
    /// let mut s = shmpool::SharedArray::zeroed(1)?;
    /// pool.bulk().std_axis(&x, 1, 0, &mut s)?;
    /// assert_eq!(s[0], 2.0f32);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn std_axis<T: Number>(
        self,
        x: &SharedArray<T>,
        axis: usize,
        ddof: usize,
        out: &mut SharedArray<<D as MeanIn<T>>::Acc>,
    ) -> Result<()>
    where
        D: MeanIn<T>,
    {
        self.spread_axis::<T, true>(x, axis, ddof, out)
    }

    /// [`Bulk::var_axis`], or its square roots (`SQRT`).
    fn spread_axis<T: Number, const SQRT: bool>(
        self,
        x: &SharedArray<T>,
        axis: usize,
        ddof: usize,
        out: &mut SharedArray<<D as MeanIn<T>>::Acc>,
    ) -> Result<()>
    where
        D: MeanIn<T>,
    {
        let along = Along::check(x, axis, out.len(), if SQRT { "std" } else { "var" })?;
        if along.no_output() {
            return Ok(());
        }
        let finish = |m2: <D as MeanIn<T>>::Acc, n: usize| {
            let v = divide_by_count(m2, n.saturating_sub(ddof));
            if SQRT { v.sqrt() } else { v }
        };
        match axis {
            0 => {
                let (n, squares) = column_squares::<T, Averaged<D>>(self.plain(), x, along.cols)?;
                for (o, m2) in out.iter_mut().zip(squares) {
                    *o = finish(m2, n);
                }
                Ok(())
            }
            _ if along.cols == 0 => fill_rows(&self, out, <D as MeanIn<T>>::Acc::NAN),
            _ => along_rows(
                self.plain().with(ddof as u64),
                x,
                out,
                #[inline(always)]
                |ddof: &u64, row: &[T], o: &mut [<D as MeanIn<T>>::Acc]| {
                    let m2 = row_squares(row, <D as MeanIn<T>>::widen);
                    let v = divide_by_count(m2, row.len().saturating_sub(*ddof as usize));
                    o[0] = if SQRT { v.sqrt() } else { v };
                },
            ),
        }
    }
}

impl Bulk<'_> {
    /// The smallest elements along an axis of a 2-D array, into `out`
    /// (`np.min(x, axis=axis, out=out)`): NaN where the column (axis 0) or row
    /// (axis 1) holds a NaN, as numpy. Deterministic.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the axis reduced is empty (0 rows along axis
    /// 0, or an empty range of rows; 0 columns along axis 1) and the output is not
    /// (numpy raises: a minimum has no identity); as for [`Bulk::sum_axis`]
    /// otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::from_slice_shaped(&[3i16, -1, 4, 1, -5, 9], &[2, 3])?;
    /// let mut m = shmpool::SharedArray::zeroed(3)?;
    /// pool.bulk().min_axis(&x, 0, &mut m)?;
    /// assert_eq!(&m[..], &[1, -5, 4]);
    /// let mut r = shmpool::SharedArray::zeroed(2)?;
    /// pool.bulk().max_axis(&x, 1, &mut r)?;
    /// assert_eq!(&r[..], &[4, 9]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn min_axis<T: Number>(
        self,
        x: &SharedArray<T>,
        axis: usize,
        out: &mut SharedArray<T>,
    ) -> Result<()> {
        self.extreme_axis::<T, false>(x, axis, out)
    }

    /// The largest elements along an axis of a 2-D array, into `out`
    /// (`np.max(x, axis=axis, out=out)`), as [`Bulk::min_axis`].
    ///
    /// # Errors
    /// As for [`Bulk::min_axis`].
    pub fn max_axis<T: Number>(
        self,
        x: &SharedArray<T>,
        axis: usize,
        out: &mut SharedArray<T>,
    ) -> Result<()> {
        self.extreme_axis::<T, true>(x, axis, out)
    }

    fn extreme_axis<T: Number, const MAX: bool>(
        self,
        x: &SharedArray<T>,
        axis: usize,
        out: &mut SharedArray<T>,
    ) -> Result<()> {
        let what = if MAX { "maximum" } else { "minimum" };
        let along = Along::check(x, axis, out.len(), what)?.check_not_empty(&self, what)?;
        if along.no_output() {
            return Ok(());
        }
        match axis {
            0 => {
                let best = column_extremes::<T, MAX>(self, x, along.cols)?;
                out.copy_from_slice(&best);
                Ok(())
            }
            _ => along_rows(
                self,
                x,
                out,
                #[inline(always)]
                |row: &[T], o: &mut [T]| {
                    o[0] = if MAX {
                        lane_extreme::<T, false>(row, T::MAX_IDENTITY, greater)
                    } else {
                        lane_extreme::<T, false>(row, T::MIN_IDENTITY, less)
                    };
                },
            ),
        }
    }

    /// The indices of the first smallest elements along an axis of a 2-D array,
    /// into `out` (`np.argmin(x, axis=axis, out=out)`): along axis 0 a row index
    /// per column (into the whole array, whatever `.range`), along axis 1 a column
    /// index per row; the first NaN's where there is one, as numpy.
    /// Deterministic.
    ///
    /// # Errors
    /// As for [`Bulk::min_axis`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::from_slice_shaped(&[3.0f64, -1.0, 4.0, 1.0, -5.0, 4.0], &[2, 3])?;
    /// let mut at = shmpool::SharedArray::zeroed(3)?;
    /// pool.bulk().argmin_axis(&x, 0, &mut at)?;
    /// assert_eq!(&at[..], &[1, 1, 0]); // ties keep the first row
    /// let mut per_row = shmpool::SharedArray::zeroed(2)?;
    /// pool.bulk().argmax_axis(&x, 1, &mut per_row)?;
    /// assert_eq!(&per_row[..], &[2, 2]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn argmin_axis<T: Number>(
        self,
        x: &SharedArray<T>,
        axis: usize,
        out: &mut SharedArray<u64>,
    ) -> Result<()> {
        self.arg_extreme_axis::<T, false>(x, axis, out)
    }

    /// The indices of the first largest elements along an axis of a 2-D array,
    /// into `out` (`np.argmax(x, axis=axis, out=out)`), as [`Bulk::argmin_axis`].
    ///
    /// # Errors
    /// As for [`Bulk::min_axis`].
    pub fn argmax_axis<T: Number>(
        self,
        x: &SharedArray<T>,
        axis: usize,
        out: &mut SharedArray<u64>,
    ) -> Result<()> {
        self.arg_extreme_axis::<T, true>(x, axis, out)
    }

    fn arg_extreme_axis<T: Number, const MAX: bool>(
        self,
        x: &SharedArray<T>,
        axis: usize,
        out: &mut SharedArray<u64>,
    ) -> Result<()> {
        let what = if MAX { "argmax" } else { "argmin" };
        let along = Along::check(x, axis, out.len(), what)?.check_not_empty(&self, what)?;
        if along.no_output() {
            return Ok(());
        }
        match axis {
            0 => {
                let best = column_arg_extremes::<T, MAX>(self, x, along.cols)?;
                out.copy_from_slice(&best);
                Ok(())
            }
            _ => along_rows(
                self,
                x,
                out,
                #[inline(always)]
                |row: &[T], o: &mut [u64]| {
                    o[0] = if MAX {
                        first_best(row, greater)
                    } else {
                        first_best(row, less)
                    } as u64;
                },
            ),
        }
    }
}
