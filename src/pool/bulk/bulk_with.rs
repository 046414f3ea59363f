//! [`BulkWith`]: bulk operations whose kernels take parameters (`&P`) or an
//! [`Env`](crate::Env) with context arrays first, and the engine calls every form
//! comes down to.

use std::marker::PhantomData;
use std::ops::Range;
use std::time::Duration;

use bytemuck::Pod;

use super::Pool;
use super::bulk_future::{self, BulkFuture};
use super::engine::{self, OperandSpec, Operation, Options, Plan, Role};
use crate::array::SharedArray;
use crate::error::{Error, Result};
use crate::kernel::{
    ArrayArg, AssertZeroSized, ChunkMutBody, ChunksBody, ForEachBody, Grid, GridBody, GridMut,
    IndexedBody, Inputs, KernelEnv, Kernels, MapBody, Outputs, Params, ParamsAndArrays, RowsBody,
    StreamMapBody, kernels, type_tag,
};
use crate::layout::{JobKind, MAX_OPERANDS, PARAMS_ALIGN, PARAMS_BYTES};

/// A bulk operation whose kernels take `&E::Arg` first: the parameters given to
/// [`BulkMap::with`](crate::BulkMap::with) (`&P`), or an [`Env`](crate::Env) once
/// [`BulkMap::context`](crate::BulkMap::context) added arrays. It has every form
/// [`BulkMap`](crate::BulkMap) has, plus the reductions.
///
/// # Examples
///
/// ```
/// use shmpool::{Pool, SharedArray};
///
/// let pool = Pool::new(2)?;
/// let x = SharedArray::try_from_iter((0..8).map(f64::from))?;
/// let mut y = SharedArray::zeroed(8)?;
/// let scale = 3.0; // a run-time value
/// pool.bulk().with(scale).map_into(&x, &mut y, |s: &f64, v: f64| v * s)?;
/// assert_eq!(y[7], 21.0);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[must_use = "a BulkWith does nothing until one of its map methods runs"]
pub struct BulkWith<'p, 'c, E: KernelEnv> {
    pool: &'p Pool,
    options: Options<'p>,
    /// The parameters' bytes, copied into the job entry at each run.
    params: E::Params,
    contexts: Vec<(ArrayArg<'c>, u64)>,
    _env: PhantomData<E>,
}

impl<E: KernelEnv> std::fmt::Debug for BulkWith<'_, '_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkWith")
            .field("options", &self.options)
            .field("params_bytes", &size_of::<E::Params>())
            .field("context_arrays", &self.contexts.len())
            .finish()
    }
}

/// Compile-time checks of a parameter type.
struct ParamsFit<P>(PhantomData<P>);

impl<P> ParamsFit<P> {
    const OK: () = {
        assert!(
            size_of::<P>() <= PARAMS_BYTES,
            "shmpool kernel parameters must fit in 4 KiB: put bigger data in a SharedArray \
             and pass it with `context`"
        );
        assert!(
            align_of::<P>() <= PARAMS_ALIGN,
            "shmpool kernel parameters may be aligned to at most 64 bytes"
        );
    };
}

impl<'p, P: Pod> BulkWith<'p, 'static, Params<P>> {
    pub(super) fn new(pool: &'p Pool, options: Options<'p>, params: P) -> Self {
        let () = ParamsFit::<P>::OK;
        BulkWith {
            pool,
            options,
            params,
            contexts: Vec::new(),
            _env: PhantomData,
        }
    }

    /// Adds a context array (see [`BulkMap::context`](crate::BulkMap::context)); the
    /// kernels then take an
    /// [`Env`](crate::Env), which dereferences to the parameters.
    pub fn context<'c, T: Pod>(
        self,
        array: &'c SharedArray<T>,
    ) -> BulkWith<'p, 'c, ParamsAndArrays<P>> {
        BulkWith {
            pool: self.pool,
            options: self.options,
            params: self.params,
            contexts: vec![(ArrayArg::of(array), type_tag::<T>())],
            _env: PhantomData,
        }
    }
}

impl<'p, 'c, P: Pod> BulkWith<'p, 'c, ParamsAndArrays<P>> {
    /// Adds another context array: `env.array::<T>(k)` is the `k`-th added.
    pub fn context<T: Pod>(mut self, array: &'c SharedArray<T>) -> Self {
        self.contexts.push((ArrayArg::of(array), type_tag::<T>()));
        self
    }
}

impl<'p, 'c, E: KernelEnv> BulkWith<'p, 'c, E> {
    /// See [`BulkMap::chunk_len`](crate::BulkMap::chunk_len).
    pub fn chunk_len(mut self, n: usize) -> Self {
        self.options.chunk_len = Some(n);
        self
    }

    /// See [`BulkMap::chunk_timeout`](crate::BulkMap::chunk_timeout).
    pub fn chunk_timeout(mut self, d: Duration) -> Self {
        self.options.chunk_timeout = Some(d);
        self
    }

    /// See [`BulkMap::retries`](crate::BulkMap::retries).
    pub fn retries(mut self, n: u32) -> Self {
        self.options.retries = n;
        self
    }

    /// See [`BulkMap::range`](crate::BulkMap::range); for row operations the range
    /// counts rows.
    pub fn range(mut self, range: Range<usize>) -> Self {
        self.options.range = Some((range.start, range.end));
        self
    }

    /// See [`BulkMap::cancel_token`](crate::BulkMap::cancel_token).
    pub fn cancel_token(mut self, token: &'p crate::CancelToken) -> Self {
        self.options.cancel = Some(token);
        self
    }

    /// `y[i] = f(p, x[i])` for every element.
    ///
    /// # Errors
    /// As for [`crate::Pool::map_into`].
    pub fn map_into<T, U, F>(self, x: &SharedArray<T>, y: &mut SharedArray<U>, f: F) -> Result<()>
    where
        T: Pod,
        U: Pod,
        F: Fn(&E::Arg, T) -> U + Copy,
    {
        self.zip_map_into(x, y, f)
    }

    /// Like [`BulkWith::map_into`], as a future: the map starts at once, and the
    /// future resolves to the arrays, given back, and the map's result. Nothing
    /// waits on a thread for it; dropping the future before it is done cancels the
    /// map (as the pool's cancel mode says) and waits until no worker is inside it.
    /// Chunks are not retried, and the future is its own cancel: the map resolves
    /// to [`Error::InvalidArgument`], running nothing, when [`BulkWith::retries`]
    /// or [`BulkWith::cancel_token`] was set.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{Pool, SharedArray};
    ///
    /// let pool = Pool::new(2)?;
    /// let x = SharedArray::try_from_iter((0..1000).map(f64::from))?;
    /// let y = SharedArray::zeroed(1000)?;
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
        F: Fn(&E::Arg, T) -> U + Copy,
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
                };
                let ops = vec![spec(xa, Role::Chunked), spec(ya, Role::Chunked)];
                let op =
                    self.operation(JobKind::Map, k, ops, len, xa.elem_size + ya.elem_size, true)?;
                let inner = self.pool.arc();
                bulk_future::start(
                    inner,
                    &op,
                    crate::kernel::bulk_offset(k.at(inner.settings.simd)),
                )
            })
        };
        match started {
            Ok(Some(job)) => BulkFuture::running(x, y, job),
            Ok(None) => BulkFuture::ready(x, y, Ok(())),
            Err(e) => BulkFuture::ready(x, y, Err(e)),
        }
    }

    /// `outputs[i] = f(p, inputs[i])` for every element; see
    /// [`crate::Pool::zip_map_into`] for the forms `inputs` and `outputs` take.
    ///
    /// # Errors
    /// As for [`crate::Pool::zip_map_into`], plus [`Error::TooManyArrays`] if the
    /// operation names more arrays than a job holds.
    pub fn zip_map_into<I, O, F>(self, inputs: I, outputs: O, f: F) -> Result<()>
    where
        I: Inputs,
        O: Outputs,
        F: Fn(&E::Arg, I::Item) -> O::Item + Copy,
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
        };
        self.run(JobKind::Map, k, ops, len, traffic(&ins, &outs), true)
    }

    /// Like [`BulkWith::map_into`] with one input, allocating the output array (of
    /// the input's shape).
    ///
    /// # Errors
    /// As for [`crate::Pool::map_array`].
    pub fn map_array<T, U, F>(self, x: &SharedArray<T>, f: F) -> Result<SharedArray<U>>
    where
        T: Pod,
        U: Pod,
        F: Fn(&E::Arg, T) -> U + Copy,
    {
        let mut y = SharedArray::zeroed(x.len())?.reshape(x.shape())?;
        self.map_into(x, &mut y, f)?;
        Ok(y)
    }

    /// `f(p, &x[chunk], &mut y[chunk])` for each chunk.
    ///
    /// # Errors
    /// As for [`crate::Pool::map_into`].
    pub fn map_chunks_into<T, U, F>(
        self,
        x: &SharedArray<T>,
        y: &mut SharedArray<U>,
        f: F,
    ) -> Result<()>
    where
        T: Pod,
        U: Pod,
        F: Fn(&E::Arg, &[T], &mut [U]) + Copy,
    {
        self.zip_map_chunks_into(x, y, f)
    }

    /// `f(p, inputs[chunk], outputs[chunk])` for each chunk: slices of every array.
    ///
    /// # Errors
    /// As for [`BulkWith::zip_map_into`].
    pub fn zip_map_chunks_into<I, O, F>(self, inputs: I, outputs: O, f: F) -> Result<()>
    where
        I: Inputs,
        O: Outputs,
        F: for<'a> Fn(&E::Arg, I::Slices<'a>, O::Slices<'a>) + Copy,
    {
        let () = AssertZeroSized::<F>::OK;
        let _ = f; // only its type travels: the worker conjures the value
        let (ins, outs) = (inputs.arrays(), outputs.arrays());
        let len = check_lengths(&ins, &outs)?;
        let ops = chunked(&ins).chain(chunked(&outs)).collect();
        let k = kernels::<ChunksBody<E, I, O, F>>();
        self.run(JobKind::Chunks, k, ops, len, traffic(&ins, &outs), true)
    }

    /// `f(p, &mut x[i])` for every element, in place.
    ///
    /// # Errors
    /// As for [`BulkWith::map_into`].
    pub fn for_each_mut<T, F>(self, x: &mut SharedArray<T>, f: F) -> Result<()>
    where
        T: Pod,
        F: Fn(&E::Arg, &mut T) + Copy,
    {
        let () = AssertZeroSized::<F>::OK;
        let _ = f; // only its type travels: the worker conjures the value
        self.in_place(x, kernels::<ForEachBody<E, T, F>>())
    }

    /// `f(p, &mut x[chunk])` for each chunk, in place.
    ///
    /// # Errors
    /// As for [`BulkWith::map_into`].
    pub fn for_each_chunk_mut<T, F>(self, x: &mut SharedArray<T>, f: F) -> Result<()>
    where
        T: Pod,
        F: Fn(&E::Arg, &mut [T]) + Copy,
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

    /// `f(p, range, whole_inputs, outputs[range])` for each chunk: the kernel
    /// learns its chunk's global index range, reads any element of its inputs, and
    /// writes its own range of the outputs. Gathers, scans of a neighbourhood and
    /// 1-D stencils are written this way.
    ///
    /// # Errors
    /// As for [`BulkWith::map_into`].
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
    /// pool.bulk().chunk_len(16).with(()).map_indexed_into(
    ///     &x,
    ///     &mut lap,
    ///     |_: &(), r: Range<usize>, x: &[f64], out: &mut [f64]| {
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
        F: for<'a> Fn(&E::Arg, Range<usize>, I::Slices<'a>, O::Slices<'a>) + Copy,
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

    /// `f(p, &x_row, &mut y_row)` for each row of 2-D arrays (a few rows per
    /// chunk). The rows may differ in length between `x` and `y`; the row counts
    /// must match.
    ///
    /// # Errors
    /// [`Error::Dimensionality`] if an array is not 2-D, [`Error::OperandLength`] if
    /// the row counts differ, and as for [`BulkWith::map_into`]; chunk ranges in
    /// errors count rows.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::try_from_iter((0..12).map(f64::from))?.reshape(&[3, 4])?;
    /// let mut y = shmpool::SharedArray::zeroed(12)?.reshape(&[3, 4])?;
    /// // Normalise each row to sum to one.
    /// pool.bulk().with(()).map_rows_into(&x, &mut y, |_: &(), row: &[f64], out: &mut [f64]| {
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
        F: Fn(&E::Arg, &[T], &mut [U]) + Copy,
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

    /// `f(p, rows, x, y_rows)` for each chunk of rows of 2-D arrays: the kernel
    /// reads any row of the whole input `x` (its neighbours' rows are its halo) and
    /// writes the rows `rows` of `y`. A 5-point stencil is written this way.
    ///
    /// # Errors
    /// As for [`BulkWith::map_rows_into`].
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
    /// pool.bulk().chunk_len(2).with(()).stencil_rows_into(
    ///     &x,
    ///     &mut y,
    ///     |_: &(), rows: Range<usize>, x: Grid<f64>, mut y: GridMut<f64>| {
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
        F: for<'a> Fn(&E::Arg, Range<usize>, Grid<'a, T>, GridMut<'a, U>) + Copy,
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

    /// Plans an operation (context arrays appended, parameters attached) without
    /// running it.
    pub(super) fn operation<'s>(
        &'s self,
        kind: JobKind,
        kernels: Kernels,
        mut operands: Vec<OperandSpec<'s>>,
        len: usize,
        bytes_per_elem: usize,
        balance_chunks: bool,
    ) -> Result<Operation<'s>> {
        operands.extend(self.contexts.iter().map(|&(a, tag)| OperandSpec {
            type_tag: tag,
            ..spec(a, Role::Whole { extent: a.len })
        }));
        if operands.len() > MAX_OPERANDS {
            return Err(Error::TooManyArrays {
                count: operands.len(),
                max: MAX_OPERANDS,
            });
        }
        Ok(Operation {
            kind,
            kernels,
            operands,
            context_count: self.contexts.len(),
            params: bytemuck::bytes_of(&self.params),
            len,
            bytes_per_elem,
            options: self.options,
            balance_chunks,
        })
    }

    pub(super) fn pool(&self) -> &'p Pool {
        self.pool
    }

    pub(super) fn plan_and_run(&self, op: &Operation<'_>) -> Result<Plan> {
        let inner = self.pool.arc();
        let plan = engine::plan(inner, op)?;
        engine::run(inner, op, &plan)?;
        Ok(plan)
    }

    fn run(
        self,
        kind: JobKind,
        kernels: Kernels,
        operands: Vec<OperandSpec<'_>>,
        len: usize,
        bytes_per_elem: usize,
        balance_chunks: bool,
    ) -> Result<()> {
        let op = self.operation(kind, kernels, operands, len, bytes_per_elem, balance_chunks)?;
        self.plan_and_run(&op).map(drop)
    }
}

/// Outputs of at least this many bytes are written with streaming stores by
/// `map_into` (`kernel/stream.rs`): well beyond the last-level cache, where a
/// result is not read back soon.
const STREAM_OUTPUT_BYTES: usize = 64 << 20;

/// An operand of `role` for array `a`.
pub(super) fn spec(a: ArrayArg<'_>, role: Role) -> OperandSpec<'_> {
    OperandSpec {
        segment: a.segment,
        elem_size: a.elem_size,
        role,
        type_tag: 0,
    }
}

/// Chunked operands for `arrays`.
pub(super) fn chunked<'s>(arrays: &'s [ArrayArg<'s>]) -> impl Iterator<Item = OperandSpec<'s>> {
    arrays.iter().map(|&a| spec(a, Role::Chunked))
}

/// Bytes per element over every chunked array, for the default chunk length.
pub(super) fn traffic(ins: &[ArrayArg<'_>], outs: &[ArrayArg<'_>]) -> usize {
    ins.iter().chain(outs).map(|a| a.elem_size).sum()
}

/// Checks that every array has the first input's length, and returns it.
pub(super) fn check_lengths(ins: &[ArrayArg<'_>], outs: &[ArrayArg<'_>]) -> Result<usize> {
    let len = ins[0].len;
    if let Some(out) = outs.first()
        && out.len != len
    {
        return Err(Error::LengthMismatch {
            input: len,
            output: out.len,
        });
    }
    let named = ins
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, a)| (format!("input {i}"), a))
        .chain(
            outs.iter()
                .enumerate()
                .skip(1)
                .map(|(i, a)| (format!("output {i}"), a)),
        );
    for (what, a) in named {
        if a.len != len {
            return Err(Error::OperandLength {
                what,
                len: a.len,
                expected: len,
            });
        }
    }
    Ok(len)
}

/// `x` and `y` as arrays of rows: an element is a row, `len` counts rows.
fn rows_of<'a, T: Pod, U: Pod>(
    x: &'a SharedArray<T>,
    y: &'a SharedArray<U>,
) -> Result<(ArrayArg<'a>, ArrayArg<'a>)> {
    let as_rows = |a: ArrayArg<'a>, elem: usize| -> Result<ArrayArg<'a>> {
        match *a.shape {
            [rows, cols] => Ok(ArrayArg {
                len: rows,
                elem_size: cols * elem,
                ..a
            }),
            _ => Err(Error::Dimensionality {
                shape: a.shape.to_vec(),
                axes: 2,
            }),
        }
    };
    let xr = as_rows(ArrayArg::of(x), size_of::<T>())?;
    let yr = as_rows(ArrayArg::of(y), size_of::<U>())?;
    if xr.len != yr.len {
        return Err(Error::OperandLength {
            what: "the output's rows".into(),
            len: yr.len,
            expected: xr.len,
        });
    }
    Ok((xr, yr))
}
