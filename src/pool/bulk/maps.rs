//! The maps of [`Bulk`], each written once for every kernel environment: each
//! form builds its operands, picks its kernel body (`src/kernel/bodies.rs`), and
//! hands both to the engine.

use std::ops::Range;

use bytemuck::Pod;

use super::bulk_builder::{Bulk, check_lengths, chunked, spec, traffic};
use super::bulk_future::{self, BulkFuture};
use super::engine::Role;
use super::reduce;
use crate::array::SharedArray;
use crate::error::{Error, Result};
use crate::kernel::{
    ArrayArg, AssertZeroSized, ChunkMutBody, ChunksBody, ForEachBody, Grid, GridBody, GridMut,
    IndexedBody, Inputs, KernelEnv, KernelFn, Kernels, MapBody, Outputs, RowsBody, StreamMapBody,
    kernels,
};
use crate::layout::JobKind;

/// Outputs of at least this many bytes are written with streaming stores by
/// `map_into` (`src/kernel/stream.rs`): well beyond the last-level cache, where a
/// result is not read back soon.
const STREAM_OUTPUT_BYTES: usize = 64 << 20;

impl<E: KernelEnv> Bulk<'_, E> {
    /// `y[i] = f(x[i])` for every element, run by the workers in place (with
    /// parameters, `f(p, x[i])`). See [`Pool::map_into`](crate::Pool::map_into) for
    /// the kernel's rules and the errors.
    ///
    /// # Errors
    /// As for [`Pool::map_into`](crate::Pool::map_into), plus
    /// [`Error::RangeOutOfBounds`] (see [`Bulk::range`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let xs = shmpool::SharedArray::from_slice(&[1u8, 2, 3, 4])?;
    /// let mut ys = shmpool::SharedArray::<u16>::zeroed(4)?;
    /// pool.bulk().range(2..4).map_into(&xs, &mut ys, |v: u8| u16::from(v) * 100)?;
    /// assert_eq!(&ys[..], &[0, 0, 300, 400]);
    /// // With a parameter known at run time: the kernel takes `&P` first.
    /// pool.bulk().with(7u16).map_into(&xs, &mut ys, |k: &u16, v: u8| k * u16::from(v))?;
    /// assert_eq!(&ys[..], &[7, 14, 21, 28]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_into<T, U, F>(self, x: &SharedArray<T>, y: &mut SharedArray<U>, f: F) -> Result<()>
    where
        T: Pod,
        U: Pod,
        F: KernelFn<E, (T,), Output = U>,
    {
        self.zip_map_into(x, y, f)
    }

    /// Elementwise maps over several arrays: `outputs[i] = f(inputs[i])`.
    ///
    /// `inputs` is one array `&x` or a tuple of two or three, `(&a, &b)`, of
    /// possibly different element types; `f` then receives a tuple `(a[i], b[i])`.
    /// `outputs` is one array `&mut y`, or two, `(&mut q, &mut r)`, for which `f`
    /// returns a pair. numpy's binary ufuncs with `out=`, `np.where` and `divmod`
    /// are written this way.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] if the first output's length differs from the
    /// first input's, [`Error::OperandLength`] if another array's does,
    /// [`Error::TooManyArrays`] if the operation names more arrays than a job
    /// holds; otherwise as for [`Pool::map_into`](crate::Pool::map_into).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{Pool, SharedArray};
    ///
    /// let pool = Pool::new(2)?;
    /// let a = SharedArray::from_slice(&[7u32, 9, 10])?;
    /// let b = SharedArray::from_slice(&[2u32, 4, 5])?;
    /// // np.add(a, b, out=c)
    /// let mut c = SharedArray::zeroed(3)?;
    /// pool.bulk().zip_map_into((&a, &b), &mut c, |(a, b): (u32, u32)| a + b)?;
    /// assert_eq!(&c[..], &[9, 13, 15]);
    /// // np.where(cond, a, b)
    /// let cond = SharedArray::from_slice(&[1u8, 0, 1])?;
    /// pool.bulk().zip_map_into((&cond, &a, &b), &mut c, |(k, a, b): (u8, u32, u32)| if k != 0 { a } else { b })?;
    /// assert_eq!(&c[..], &[7, 4, 10]);
    /// // divmod(a, b, out=(q, r)): two outputs
    /// let (mut q, mut r) = (SharedArray::zeroed(3)?, SharedArray::zeroed(3)?);
    /// pool.bulk().zip_map_into((&a, &b), (&mut q, &mut r), |(a, b): (u32, u32)| (a / b, a % b))?;
    /// assert_eq!((&q[..], &r[..]), (&[3, 2, 2][..], &[1, 1, 0][..]));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn zip_map_into<I, O, F>(self, inputs: I, outputs: O, f: F) -> Result<()>
    where
        I: Inputs,
        O: Outputs,
        F: KernelFn<E, (I::Item,), Output = O::Item>,
    {
        let () = AssertZeroSized::<F>::OK;
        let _ = f; // only its type travels: the worker conjures the value
        let (ins, outs) = (inputs.arrays(), outputs.arrays());
        let len = check_lengths(&ins, &outs)?;
        let ops = chunked(&ins).chain(chunked(&outs)).collect();
        // One output far larger than the caches is written with streaming stores.
        let stream = O::COUNT == 1 && len.saturating_mul(outs[0].elem_size) >= STREAM_OUTPUT_BYTES;
        let k = if stream {
            kernels::<StreamMapBody<E, I, O, F>>()
        } else {
            kernels::<MapBody<E, I, O, F>>()
        }
        .memory_bound();
        self.run(JobKind::Map, k, ops, len, traffic(&ins, &outs), true)
    }

    /// Like [`Bulk::map_into`], allocating the output array (of the input's shape).
    ///
    /// # Errors
    /// As for [`Pool::map_into`](crate::Pool::map_into), plus [`Error::Io`] if the
    /// output cannot be allocated.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let xs = shmpool::SharedArray::try_from_iter(0..6u32)?.reshape(&[2, 3])?;
    /// let ys = pool.bulk().map_array(&xs, |v: u32| v as f64 / 2.0)?;
    /// assert_eq!(ys.shape(), &[2, 3]); // the input's shape
    /// assert_eq!(&ys[..], &[0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_array<T, U, F>(self, x: &SharedArray<T>, f: F) -> Result<SharedArray<U>>
    where
        T: Pod,
        U: Pod,
        F: KernelFn<E, (T,), Output = U>,
    {
        let mut y = SharedArray::zeroed(x.len())?.reshape(x.shape())?;
        self.map_into(x, &mut y, f)?;
        Ok(y)
    }

    /// `f(&x[chunk], &mut y[chunk])` for each chunk: for kernels that want a whole
    /// slice at a time.
    ///
    /// # Errors
    /// As for [`Pool::map_into`](crate::Pool::map_into).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let xs = shmpool::SharedArray::try_from_iter(0..8u32)?;
    /// let mut ys = shmpool::SharedArray::zeroed(8)?;
    /// // Every output element gets the first input of its chunk.
    /// pool.bulk()
    ///     .chunk_len(4)
    ///     .map_chunks_into(&xs, &mut ys, |xs: &[u32], ys: &mut [u32]| ys.fill(xs[0]))?;
    /// assert_eq!(&ys[..], &[0, 0, 0, 0, 4, 4, 4, 4]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_chunks_into<T, U, F>(
        self,
        x: &SharedArray<T>,
        y: &mut SharedArray<U>,
        f: F,
    ) -> Result<()>
    where
        T: Pod,
        U: Pod,
        F: for<'a> KernelFn<E, (&'a [T], &'a mut [U]), Output = ()>,
    {
        self.zip_map_chunks_into(x, y, f)
    }

    /// `f(inputs[chunk], outputs[chunk])` for each chunk, with the forms of
    /// [`Bulk::zip_map_into`]: a kernel sees a tuple of slices for several arrays.
    ///
    /// # Errors
    /// As for [`Bulk::zip_map_into`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let a = shmpool::SharedArray::from_slice(&[1.0f64, 2.0, 3.0])?;
    /// let b = shmpool::SharedArray::from_slice(&[4.0f64, 5.0, 6.0])?;
    /// let mut c = shmpool::SharedArray::zeroed(3)?;
    /// pool.bulk().zip_map_chunks_into(
    ///     (&a, &b),
    ///     &mut c,
    ///     |(a, b): (&[f64], &[f64]), c: &mut [f64]| {
    ///         for ((c, a), b) in c.iter_mut().zip(a).zip(b) {
    ///             *c = a.max(*b) - a.min(*b);
    ///         }
    ///     },
    /// )?;
    /// assert_eq!(&c[..], &[3.0, 3.0, 3.0]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn zip_map_chunks_into<I, O, F>(self, inputs: I, outputs: O, f: F) -> Result<()>
    where
        I: Inputs,
        O: Outputs,
        F: for<'a> KernelFn<E, (I::Slices<'a>, O::Slices<'a>), Output = ()>,
    {
        let () = AssertZeroSized::<F>::OK;
        let _ = f; // only its type travels: the worker conjures the value
        let (ins, outs) = (inputs.arrays(), outputs.arrays());
        let len = check_lengths(&ins, &outs)?;
        let ops = chunked(&ins).chain(chunked(&outs)).collect();
        let k = kernels::<ChunksBody<E, I, O, F>>();
        self.run(JobKind::Chunks, k, ops, len, traffic(&ins, &outs), true)
    }

    /// `f(&mut x[i])` for every element, in place.
    ///
    /// # Errors
    /// As for [`Pool::map_into`](crate::Pool::map_into).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let mut xs = shmpool::SharedArray::from_slice(&[1u64, 2, 3])?;
    /// pool.bulk().for_each_mut(&mut xs, |v: &mut u64| *v *= 10)?;
    /// assert_eq!(&xs[..], &[10, 20, 30]);
    /// pool.bulk().with(5u64).for_each_mut(&mut xs, |k: &u64, v: &mut u64| *v += k)?;
    /// assert_eq!(&xs[..], &[15, 25, 35]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn for_each_mut<T, F>(self, x: &mut SharedArray<T>, f: F) -> Result<()>
    where
        T: Pod,
        F: for<'a> KernelFn<E, (&'a mut T,), Output = ()>,
    {
        let () = AssertZeroSized::<F>::OK;
        let _ = f; // only its type travels: the worker conjures the value
        self.in_place(x, kernels::<ForEachBody<E, T, F>>().memory_bound())
    }

    /// `f(&mut x[chunk])` for each chunk, in place.
    ///
    /// # Errors
    /// As for [`Pool::map_into`](crate::Pool::map_into).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let mut xs = shmpool::SharedArray::from_slice(&[4u32, 3, 2, 1, 8, 7, 6, 5])?;
    /// // Sorts each chunk of four on its own.
    /// pool.bulk()
    ///     .chunk_len(4)
    ///     .for_each_chunk_mut(&mut xs, |c: &mut [u32]| c.sort_unstable())?;
    /// assert_eq!(&xs[..], &[1, 2, 3, 4, 5, 6, 7, 8]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn for_each_chunk_mut<T, F>(self, x: &mut SharedArray<T>, f: F) -> Result<()>
    where
        T: Pod,
        F: for<'a> KernelFn<E, (&'a mut [T],), Output = ()>,
    {
        let () = AssertZeroSized::<F>::OK;
        let _ = f; // only its type travels: the worker conjures the value
        self.in_place(x, kernels::<ChunkMutBody<E, T, F>>())
    }

    /// Runs the in-place kernels `k` over the chunks of `x`.
    fn in_place<T: Pod>(self, x: &mut SharedArray<T>, k: Kernels) -> Result<()> {
        let a = ArrayArg::of(x);
        self.run(
            JobKind::InPlace,
            k,
            vec![spec(a, Role::Chunked)],
            a.len,
            a.elem_size,
            true,
        )
    }

    /// `f(range, whole_inputs, outputs[range])` for each chunk: the kernel learns
    /// its chunk's global index range, reads any element of its inputs, and writes
    /// its own range of the outputs. Gathers, scans of a neighbourhood and 1-D
    /// stencils are written this way.
    ///
    /// # Errors
    /// As for [`Bulk::zip_map_into`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::ops::Range;
    ///
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::try_from_iter((0..100).map(|i| (i * i) as f64))?;
    /// let mut lap = shmpool::SharedArray::zeroed(100)?;
    /// // A 3-point stencil: each chunk reads one element past each of its ends.
    /// pool.bulk().chunk_len(16).map_indexed_into(
    ///     &x,
    ///     &mut lap,
    ///     |r: Range<usize>, x: &[f64], out: &mut [f64]| {
    ///         for (o, i) in out.iter_mut().zip(r) {
    ///             if i > 0 && i + 1 < x.len() {
    ///                 *o = x[i - 1] - 2.0 * x[i] + x[i + 1];
    ///             }
    ///         }
    ///     },
    /// )?;
    /// assert!(lap[1..99].iter().all(|&v| v == 2.0));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_indexed_into<I, O, F>(self, inputs: I, outputs: O, f: F) -> Result<()>
    where
        I: Inputs,
        O: Outputs,
        F: for<'a> KernelFn<E, (Range<usize>, I::Slices<'a>, O::Slices<'a>), Output = ()>,
    {
        let () = AssertZeroSized::<F>::OK;
        let _ = f; // only its type travels: the worker conjures the value
        let (ins, outs) = (inputs.arrays(), outputs.arrays());
        let len = check_lengths(&ins, &outs)?;
        let ops = ins
            .iter()
            .map(|&a| spec(a, Role::Whole { extent: a.len }))
            .chain(chunked(&outs))
            .collect();
        let k = kernels::<IndexedBody<E, I, O, F>>();
        let out_bytes = outs.iter().map(|a| a.elem_size).sum();
        self.run(JobKind::Indexed, k, ops, len, out_bytes, true)
    }

    /// `f(&x_row, &mut y_row)` for each row of 2-D arrays (a few rows per chunk). The
    /// rows may differ in length between `x` and `y`; the row counts must match.
    ///
    /// # Errors
    /// [`Error::Dimensionality`] if an array is not 2-D, [`Error::OperandLength`] if
    /// the row counts differ, and as for [`Bulk::map_into`]; chunk ranges in errors
    /// count rows.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::try_from_iter((0..12).map(f64::from))?.reshape(&[3, 4])?;
    /// let mut y = shmpool::SharedArray::zeroed(12)?.reshape(&[3, 4])?;
    /// // Normalise each row to sum to one.
    /// pool.bulk().map_rows_into(&x, &mut y, |row: &[f64], out: &mut [f64]| {
    ///     let total: f64 = row.iter().sum();
    ///     for (o, v) in out.iter_mut().zip(row) {
    ///         *o = v / total;
    ///     }
    /// })?;
    /// assert_eq!(y[4..8].iter().sum::<f64>(), 1.0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_rows_into<T, U, F>(
        self,
        x: &SharedArray<T>,
        y: &mut SharedArray<U>,
        f: F,
    ) -> Result<()>
    where
        T: Pod,
        U: Pod,
        F: for<'a> KernelFn<E, (&'a [T], &'a mut [U]), Output = ()>,
    {
        let () = AssertZeroSized::<F>::OK;
        let _ = f; // only its type travels: the worker conjures the value
        let (xr, yr) = rows_of(x, y)?;
        let ops = vec![spec(xr, Role::Chunked), spec(yr, Role::Chunked)];
        let k = kernels::<RowsBody<E, T, U, F>>();
        self.run(
            JobKind::Rows,
            k,
            ops,
            xr.len,
            xr.elem_size + yr.elem_size,
            true,
        )
    }

    /// `f(rows, x, y_rows)` for each chunk of rows of 2-D arrays: the kernel reads
    /// any row of the whole input `x` (its neighbours' rows are its halo) and writes
    /// the rows `rows` of `y`. A 5-point stencil is written this way.
    ///
    /// # Errors
    /// As for [`Bulk::map_rows_into`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::ops::Range;
    /// use shmpool::{Grid, GridMut};
    ///
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::<f64>::filled(36, 1.0)?.reshape(&[6, 6])?;
    /// let mut y = shmpool::SharedArray::zeroed(36)?.reshape(&[6, 6])?;
    /// // The 5-point Laplacian of the interior; the boundary stays 0.
    /// pool.bulk().chunk_len(2).stencil_rows_into(
    ///     &x,
    ///     &mut y,
    ///     |rows: Range<usize>, x: Grid<f64>, mut y: GridMut<f64>| {
    ///         for r in rows.filter(|&r| r > 0 && r + 1 < x.rows()) {
    ///             let (up, mid, down) = (x.row(r - 1), x.row(r), x.row(r + 1));
    ///             let out = y.row_mut(r);
    ///             for c in 1..x.cols() - 1 {
    ///                 out[c] = up[c] + down[c] + mid[c - 1] + mid[c + 1] - 4.0 * mid[c];
    ///             }
    ///         }
    ///     },
    /// )?;
    /// assert!(y.iter().all(|&v| v == 0.0));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn stencil_rows_into<T, U, F>(
        self,
        x: &SharedArray<T>,
        y: &mut SharedArray<U>,
        f: F,
    ) -> Result<()>
    where
        T: Pod,
        U: Pod,
        F: for<'a> KernelFn<E, (Range<usize>, Grid<'a, T>, GridMut<'a, U>), Output = ()>,
    {
        let () = AssertZeroSized::<F>::OK;
        let _ = f; // only its type travels: the worker conjures the value
        let (xr, yr) = rows_of(x, y)?;
        let ops = vec![
            spec(xr, Role::Whole { extent: xr.len }),
            spec(yr, Role::Chunked),
        ];
        let k = kernels::<GridBody<E, T, U, F>>();
        self.run(
            JobKind::Rows,
            k,
            ops,
            xr.len,
            xr.elem_size + yr.elem_size,
            true,
        )
    }

    /// Like [`Bulk::map_into`], as a future: the map starts at once, and the future
    /// resolves to the arrays, given back, and the map's result. Nothing waits on a
    /// thread for it; dropping the future before it is done cancels the map (as the
    /// pool's cancel mode says) and waits until no worker is inside it. Chunks are
    /// not retried, and the future is its own cancel: the map resolves to
    /// [`Error::InvalidArgument`], running nothing, when [`Bulk::retries`] or
    /// [`Bulk::cancel_token`] was set.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{Pool, SharedArray};
    ///
    /// let pool = Pool::new(2)?;
    /// let x = SharedArray::try_from_iter((0..1000).map(f64::from))?;
    /// let y = SharedArray::zeroed(1000)?;
    /// let (x, y, done) =
    ///     futures::executor::block_on(pool.bulk().map_into_async(x, y, |v: f64| v.sqrt()));
    /// done?;
    /// assert_eq!(y[144], 12.0);
    /// let (x, y, done) = futures::executor::block_on(
    ///     pool.bulk().with(2.0).map_into_async(x, y, |k: &f64, v: f64| k * v),
    /// );
    /// done?;
    /// assert_eq!((x[999], y[999]), (999.0, 1998.0));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_into_async<T, U, F>(
        self,
        x: SharedArray<T>,
        y: SharedArray<U>,
        f: F,
    ) -> BulkFuture<T, U>
    where
        T: Pod,
        U: Pod,
        F: KernelFn<E, (T,), Output = U>,
    {
        let () = AssertZeroSized::<F>::OK;
        let _ = f; // only its type travels: the worker conjures the value
        let started = {
            let (xa, ya) = (ArrayArg::of(&x), ArrayArg::of(&y));
            check_lengths(&[xa], &[ya]).and_then(|len| {
                let k = if len.saturating_mul(size_of::<U>()) >= STREAM_OUTPUT_BYTES {
                    kernels::<
                        StreamMapBody<E, &'static SharedArray<T>, &'static mut SharedArray<U>, F>,
                    >()
                } else {
                    kernels::<MapBody<E, &'static SharedArray<T>, &'static mut SharedArray<U>, F>>()
                }
                .memory_bound();
                let ops = vec![spec(xa, Role::Chunked), spec(ya, Role::Chunked)];
                let op =
                    self.operation(JobKind::Map, k, ops, len, xa.elem_size + ya.elem_size, true)?;
                let inner = self.inner();
                let kernel = crate::kernel::bulk_offset(k.for_pool(inner.settings.simd));
                bulk_future::start(inner, &op, kernel)
            })
        };
        match started {
            Ok(Some(job)) => BulkFuture::running(x, y, job),
            Ok(None) => BulkFuture::ready(x, y, Ok(())),
            Err(e) => BulkFuture::ready(x, y, Err(e)),
        }
    }
}

/// `x` and `y` as arrays of rows: an element is a row, `len` counts rows.
fn rows_of<'a, T: Pod, U: Pod>(
    x: &'a SharedArray<T>,
    y: &'a SharedArray<U>,
) -> Result<(ArrayArg<'a>, ArrayArg<'a>)> {
    let (xr, yr) = (reduce::rows_of(x)?, reduce::rows_of(y)?);
    if xr.len != yr.len {
        return Err(Error::OperandLength {
            what: "the output's rows".into(),
            len: yr.len,
            expected: xr.len,
        });
    }
    Ok((xr, yr))
}
