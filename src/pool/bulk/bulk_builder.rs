//! [`Bulk`]: one bulk operation's options, the environment its kernels take
//! (nothing, parameters, or parameters and context arrays), and the plumbing every
//! form comes down to: the operation's operands, planned and run by the engine
//! (`src/pool/bulk/engine.rs`).

use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytemuck::Pod;

use super::accumulate::DefaultDtype;
use super::cancel_token::CancelToken;
use super::engine::{self, OperandSpec, Operation, Options, Plan, Role};
use crate::array::SharedArray;
use crate::error::{Error, Result};
use crate::kernel::{ArrayArg, KernelEnv, Kernels, Params, ParamsAndArrays, type_tag};
use crate::layout::{JobKind, MAX_OPERANDS, PARAMS_ALIGN, PARAMS_BYTES};
use crate::pool::inner::PoolInner;

/// One bulk operation over [`SharedArray`]s, made by
/// [`Pool::bulk`](crate::Pool::bulk): its options (the chunk length, a per-chunk
/// time limit, retries, a range, a cancel token), and what its kernels take
/// besides their arguments, `E`:
///
/// | `E` | made by | a kernel takes first |
/// |---|---|---|
/// | `()` | `pool.bulk()` | nothing: `\|v: f64\| v.sqrt()` |
/// | [`Params<P>`] | `.with(params)` | `&P`: `\|p: &P, v: f64\| ...` |
/// | [`ParamsAndArrays<P>`] | `.context(&array)` | an [`Env<P>`](crate::Env): `\|env: &Env<P>, v: f64\| ...` |
///
/// Every form (`map_into`, `zip_map_into`, `map_reduce`, ...) exists for every
/// `E`; the reductions of numpy's names (`sum`, `dot`, `min`, `histogram`, ...)
/// take no kernel and exist for `E = ()`. `D` is what the sums, means and
/// variances among them compute in (numpy's `dtype=`): [`DefaultDtype`], numpy's
/// defaults, unless [`Bulk::dtype`] chose an accumulator. `'p` is what the
/// operation borrows: the pool, a cancel token, context arrays.
///
/// A kernel's argument types are written out, as in the examples: the compiler
/// infers those of a kernel of elements from the arrays, but not those of a kernel
/// of slices, rows or grids (whose types hold lifetimes), nor its parameters'.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use shmpool::{Pool, SharedArray};
///
/// let pool = Pool::new(2)?;
/// let xs = SharedArray::try_from_iter((0..100_000).map(|i| i as f32))?;
/// let mut ys = SharedArray::zeroed(xs.len())?;
/// pool.bulk()
///     .chunk_len(4096)
///     .chunk_timeout(Duration::from_secs(10))
///     .map_into(&xs, &mut ys, |v: f32| 2.0 * v)?;
/// assert_eq!(ys[99_999], 199_998.0);
/// let scale = 3.0f32; // a run-time value
/// pool.bulk().with(scale).map_into(&xs, &mut ys, |s: &f32, v: f32| s * v)?;
/// assert_eq!(ys[10], 30.0);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[must_use = "a Bulk does nothing until one of its operations runs"]
pub struct Bulk<'p, E: KernelEnv = (), D = DefaultDtype> {
    pub(super) inner: &'p Arc<PoolInner>,
    pub(super) options: Options<'p>,
    /// The parameters, copied into the job entry at each run.
    params: E::Params,
    /// The context arrays, in the order `context` added them.
    contexts: ContextArrays<'p>,
    _env: PhantomData<(E, D)>,
}

// A builder is `Copy`, as its options are: one can run several operations.
impl<E: KernelEnv, D> Clone for Bulk<'_, E, D> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E: KernelEnv, D> Copy for Bulk<'_, E, D> {}

/// The context arrays of an operation, with their element types' tags, held
/// inline so that a builder stays `Copy`. A job holds at most `MAX_OPERANDS`
/// arrays, one of them at least an input, so more context arrays than that can
/// never run: they are counted, so that the operation fails with
/// `Error::TooManyArrays` naming how many it was given, but not kept.
#[derive(Clone, Copy)]
struct ContextArrays<'p> {
    arrays: [Option<(ArrayArg<'p>, u64)>; MAX_OPERANDS - 1],
    count: usize,
}

impl<'p> ContextArrays<'p> {
    const NONE: Self = ContextArrays {
        arrays: [None; MAX_OPERANDS - 1],
        count: 0,
    };

    fn push(&mut self, array: ArrayArg<'p>, tag: u64) {
        if let Some(slot) = self.arrays.get_mut(self.count) {
            *slot = Some((array, tag));
        }
        self.count += 1;
    }

    fn iter(&self) -> impl Iterator<Item = (ArrayArg<'p>, u64)> + '_ {
        self.arrays.iter().flatten().copied()
    }
}

impl<E: KernelEnv, D> std::fmt::Debug for Bulk<'_, E, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bulk")
            .field("options", &self.options)
            .field("params_bytes", &size_of::<E::Params>())
            .field("context_arrays", &self.contexts.count)
            .field("dtype", &std::any::type_name::<D>())
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

impl<'p> Bulk<'p> {
    /// This operation with kernels of the environment `E`, taking `params`, and no
    /// context arrays (`src/cluster/dist_bulk.rs`, generic over the environment).
    #[cfg(feature = "mpi")]
    pub(crate) fn in_env<E: KernelEnv>(self, params: E::Params) -> Bulk<'p, E> {
        self.retyped(params)
    }

    /// This operation, its sums and means computed in `A` (see [`Bulk::dtype`]).
    pub(super) fn with_dtype<A>(self) -> Bulk<'p, (), A> {
        self.retyped(())
    }

    /// A bulk operation on the pool `inner`, with the default options.
    pub(crate) fn new(inner: &'p Arc<PoolInner>) -> Self {
        Bulk {
            inner,
            options: Options::default(),
            params: (),
            contexts: ContextArrays::NONE,
            _env: PhantomData,
        }
    }

    /// Hands `params` to every kernel call by reference: the kernels then take `&P`
    /// first. The parameters are copied into the job's entry in shared memory once
    /// per call, not per chunk: up to 4 KiB, of any `Pod` type aligned to at most 64
    /// bytes (checked when the program is compiled). Put anything bigger in a
    /// [`SharedArray`] and pass it with [`Bulk::context`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{Pod, Pool, SharedArray, Zeroable};
    ///
    /// #[derive(Clone, Copy, Pod, Zeroable)]
    /// #[repr(C)]
    /// struct Axpy {
    ///     a: f64,
    /// }
    ///
    /// let pool = Pool::new(2)?;
    /// let x = SharedArray::try_from_iter((0..1000).map(f64::from))?;
    /// let y = SharedArray::filled(1000, 1.0f64)?;
    /// let mut out = SharedArray::zeroed(1000)?;
    /// let a = 2.5; // known only at run time
    /// pool.bulk()
    ///     .with(Axpy { a })
    ///     .zip_map_into((&x, &y), &mut out, |p: &Axpy, (x, y): (f64, f64)| p.a * x + y)?;
    /// assert_eq!(out[10], 26.0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn with<P: Pod>(self, params: P) -> Bulk<'p, Params<P>> {
        let () = ParamsFit::<P>::OK;
        self.retyped(params)
    }

    /// Adds a read-only array that every chunk reads whole: a lookup table,
    /// coefficients, the other operand of a gather. The kernels then take an
    /// [`Env`](crate::Env) first, which dereferences to the parameters (none here:
    /// `Env<()>`; [`Bulk::with`] after this call adds them); `env.array::<T>(k)` is the
    /// `k`-th array added. Call it again to add more (up to the job's operand limit).
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{Env, Pool, SharedArray};
    ///
    /// let pool = Pool::new(2)?;
    /// let table = SharedArray::from_slice(&[10u64, 20, 30, 40])?;
    /// let idx = SharedArray::from_slice(&[3u32, 0, 2, 2])?;
    /// let mut out = SharedArray::zeroed(4)?;
    /// // A gather: out[i] = table[idx[i]].
    /// pool.bulk()
    ///     .context(&table)
    ///     .map_into(&idx, &mut out, |env: &Env<()>, i: u32| env.array::<u64>(0)[i as usize])?;
    /// assert_eq!(&out[..], &[40, 10, 30, 30]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn context<'a, T: Pod>(self, array: &'a SharedArray<T>) -> Bulk<'a, ParamsAndArrays<()>>
    where
        'p: 'a,
    {
        self.with(()).context(array)
    }
}

impl<'p, P: Pod> Bulk<'p, Params<P>> {
    /// Adds a context array (see [`Bulk::context`]); the kernels then take an
    /// [`Env<P>`](crate::Env), which dereferences to the parameters.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{Env, Pool, SharedArray};
    ///
    /// let pool = Pool::new(2)?;
    /// let coeffs = SharedArray::from_slice(&[1.0f64, 2.0])?;
    /// let x = SharedArray::from_slice(&[1.0f64, 2.0, 3.0])?;
    /// let mut y = SharedArray::zeroed(3)?;
    /// // y = shift + c0 + c1·x
    /// pool.bulk().with(100.0f64).context(&coeffs).map_into(&x, &mut y, |env: &Env<f64>, v: f64| {
    ///     let c = env.array::<f64>(0);
    ///     **env + c[0] + c[1] * v
    /// })?;
    /// assert_eq!(&y[..], &[103.0, 105.0, 107.0]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn context<'a, T: Pod>(self, array: &'a SharedArray<T>) -> Bulk<'a, ParamsAndArrays<P>>
    where
        'p: 'a,
    {
        let params = self.params;
        self.retyped::<ParamsAndArrays<P>, DefaultDtype>(params)
            .context(array)
    }
}

impl<'p> Bulk<'p, ParamsAndArrays<()>> {
    /// Hands `params` to every kernel call, as [`Bulk::with`] does, after context
    /// arrays were added: the kernels take an [`Env<P>`](crate::Env), which
    /// dereferences to them.
    pub fn with<P: Pod>(self, params: P) -> Bulk<'p, ParamsAndArrays<P>> {
        let () = ParamsFit::<P>::OK;
        self.retyped(params)
    }
}

impl<'p, P: Pod> Bulk<'p, ParamsAndArrays<P>> {
    /// Adds another context array: `env.array::<T>(k)` is the `k`-th added.
    pub fn context<'a, T: Pod>(self, array: &'a SharedArray<T>) -> Bulk<'a, ParamsAndArrays<P>>
    where
        'p: 'a,
    {
        let mut this: Bulk<'a, ParamsAndArrays<P>> = self;
        this.contexts.push(ArrayArg::of(array), type_tag::<T>());
        this
    }
}

impl<'p, E: KernelEnv, D> Bulk<'p, E, D> {
    /// The same operation in another environment, with `params`, and the
    /// accumulator `A`.
    fn retyped<F: KernelEnv, A>(self, params: F::Params) -> Bulk<'p, F, A> {
        Bulk {
            inner: self.inner,
            options: self.options,
            params,
            contexts: self.contexts,
            _env: PhantomData,
        }
    }

    /// The same operation with numpy's default accumulators, the `D` that the
    /// reductions' plumbing (`reduce_slots`, `run`) is written for.
    pub(super) fn plain(self) -> Bulk<'p, E> {
        let params = self.params;
        self.retyped(params)
    }

    /// Elements per chunk (rows, for row operations). Default: about 2 MiB of
    /// input and output per chunk, each chunk starting 4 KiB-aligned in every array,
    /// and at least 16 chunks per worker when the array is large enough
    /// (reductions at least 128 chunks, whatever the pool, so that their result
    /// depends on the array alone; a reduction along axis 0 of a 2-D array takes
    /// rows of at least 64 times the bytes of its partial, a value per column, so
    /// that combining the partials stays a small part of the work). Shorter chunks
    /// balance better but cost more: each chunk a worker claims restarts its streams
    /// through memory, about 1-2 µs, so below a few hundred KiB a memory-bound map
    /// slows down. Zero is refused with [`Error::ZeroChunkLen`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let mut xs = shmpool::SharedArray::<u64>::zeroed(100)?;
    /// // Each chunk writes its length into its first element.
    /// pool.bulk()
    ///     .chunk_len(10)
    ///     .for_each_chunk_mut(&mut xs, |c: &mut [u64]| c[0] = c.len() as u64)?;
    /// assert_eq!(xs.iter().filter(|&&v| v == 10).count(), 10); // ten chunks of ten
    /// assert_eq!((xs[0], xs[1], xs[10]), (10, 0, 10));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn chunk_len(mut self, n: usize) -> Self {
        self.options.chunk_len = Some(n);
        self
    }

    /// Kill a worker whose chunk runs longer than `d`; the chunk fails with
    /// [`Error::Timeout`] (or is retried, see [`Bulk::retries`]). Like any death, a
    /// timeout with no retry left stops the operation (see
    /// [`Pool::map_into`](crate::Pool::map_into)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = shmpool::Pool::new(1)?;
    /// let mut xs = shmpool::SharedArray::<u8>::zeroed(4)?;
    /// let hung = pool
    ///     .bulk()
    ///     .chunk_timeout(Duration::from_millis(100))
    ///     .for_each_mut(&mut xs, |_: &mut u8| std::thread::sleep(Duration::from_secs(60)));
    /// assert!(matches!(hung, Err(shmpool::Error::Timeout { .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn chunk_timeout(mut self, d: Duration) -> Self {
        self.options.chunk_timeout = Some(d);
        self
    }

    /// Re-run a chunk whose worker died (or timed out) up to `n` times, on another
    /// worker. Only for deterministic kernels: a re-run overwrites the chunk's output.
    /// Panics are not retried.
    ///
    /// While a retry is left, a death does not stop the operation: the other chunks
    /// run on, and what the deaths lost is run again afterwards, as a new round. In
    /// the last round a death stops it, as without retries.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let mut xs = shmpool::SharedArray::<u8>::zeroed(4)?;
    /// // The first run marks the chunk and kills its worker; the re-run finds the mark
    /// // (the array is shared memory) and completes.
    /// pool.bulk().retries(1).for_each_chunk_mut(&mut xs, |c: &mut [u8]| {
    ///     if c[0] == 0 {
    ///         c[0] = 1;
    ///         std::process::exit(1);
    ///     }
    ///     c.fill(2);
    /// })?;
    /// assert_eq!(&xs[..], &[2, 2, 2, 2]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn retries(mut self, n: u32) -> Self {
        self.options.retries = n;
        self
    }

    /// Run only the elements `range` of the arrays: `x[range]` into `y[range]`, or
    /// `x[range]` in place, or a reduction of `x[range]`; every other element is left
    /// as it is. For row operations the range counts rows. Chunks start at
    /// `range.start`; the chunk ranges in errors are indices into the whole array.
    /// Default: every element.
    ///
    /// # Errors
    /// The operation refuses a range that ends past the array, or starts after it
    /// ends, with [`Error::RangeOutOfBounds`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let mut xs = shmpool::SharedArray::from_slice(&[1u32, 2, 3, 4, 5])?;
    /// pool.bulk().range(1..4).for_each_mut(&mut xs, |v: &mut u32| *v *= 100)?;
    /// assert_eq!(&xs[..], &[1, 200, 300, 400, 5]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn range(mut self, range: Range<usize>) -> Self {
        self.options.range = Some((range.start, range.end));
        self
    }

    /// Lets `token` cancel the operation from another thread (see [`CancelToken`]):
    /// it then returns [`Error::MapCancelled`], naming the ranges it computed. Works
    /// for every bulk operation but `map_into_async`, which is cancelled by dropping
    /// its future.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{CancelToken, Error, Pool, SharedArray};
    ///
    /// let pool = Pool::new(2)?;
    /// let x = SharedArray::<f64>::filled(1 << 16, 1.0)?;
    /// let token = CancelToken::new();
    /// token.cancel(); // before the start: the operation computes nothing
    /// let r = pool.bulk().cancel_token(&token).sum(&x);
    /// assert!(matches!(r, Err(Error::MapCancelled { .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn cancel_token(mut self, token: &'p CancelToken) -> Self {
        self.options.cancel = Some(token);
        self
    }

    /// Show a progress bar of the operation's chunks on standard error while it
    /// runs, as [`Tasks::progress`](crate::Tasks::progress) does for `map` (feature
    /// `progress`, on by default). The bar counts chunks run, which the waiting
    /// caller reads from the job at each of its wake-ups (at least every 50 ms), so
    /// it costs the workers nothing; choose [`Bulk::chunk_len`] for a finer bar.
    /// When the operation succeeds the bar is drawn full; when it fails or is
    /// cancelled it stays at the chunks that ran; either way its line is ended, so what is printed next
    /// starts a line of its own. Hidden where standard error is not a terminal.
    /// For every blocking operation (maps and reductions); `map_into_async` shows
    /// none.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::<f64>::filled(1 << 20, 2.0)?;
    /// let mut y = shmpool::SharedArray::zeroed(x.len())?;
    /// // A bar of 64 chunks of 16384 elements.
    /// pool.bulk().progress(true).chunk_len(1 << 14).map_into(&x, &mut y, |v: f64| v.sqrt())?;
    /// let total = pool.bulk().progress(true).sum(&y)?;
    /// assert!((total - (1 << 20) as f64 * 2f64.sqrt()).abs() < 1e-6);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    #[cfg(feature = "progress")]
    pub fn progress(mut self, show: bool) -> Self {
        self.options.progress = show;
        self
    }

    /// The pool this operation runs on.
    pub(super) fn inner(&self) -> &'p Arc<PoolInner> {
        self.inner
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
        let count = operands.len() + self.contexts.count;
        if count > MAX_OPERANDS {
            return Err(Error::TooManyArrays {
                count,
                max: MAX_OPERANDS,
            });
        }
        operands.extend(self.contexts.iter().map(|(a, tag)| OperandSpec {
            type_tag: tag,
            ..spec(a, Role::Whole { extent: a.len })
        }));
        Ok(Operation {
            kind,
            kernels,
            operands,
            context_count: self.contexts.count,
            params: bytemuck::bytes_of(&self.params),
            len,
            bytes_per_elem,
            options: self.options,
            balance_chunks,
        })
    }

    /// Plans and runs `op`; returns how it was planned.
    pub(super) fn plan_and_run(&self, op: &Operation<'_>) -> Result<Plan> {
        let plan = engine::plan(self.inner, op)?;
        engine::run(self.inner, op, &plan)?;
        Ok(plan)
    }

    /// Plans and runs an operation of these operands.
    pub(super) fn run(
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
