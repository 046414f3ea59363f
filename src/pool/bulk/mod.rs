//! Zero-copy bulk maps over [`SharedArray`]s, written in place: [`BulkMap`], the
//! options of one bulk operation, and the forms whose kernels take no parameters.
//! The forms with parameters and context arrays are [`BulkWith`]'s.

mod bulk_future;
pub(crate) mod bulk_with;
mod cancel_token;
mod engine;
mod reduce;

pub use bulk_future::BulkFuture;
pub use bulk_with::BulkWith;
pub use cancel_token::CancelToken;
pub use reduce::Number;

use std::ops::Range;
use std::time::Duration;

use bytemuck::Pod;

use crate::array::SharedArray;
use crate::error::Result;
use crate::kernel::{AssertZeroSized, Grid, GridMut, Inputs, Outputs, Params, ParamsAndArrays};
use crate::pool::Pool;
use engine::Options;

/// Options for a bulk array map: the chunk length, a per-chunk time limit, and
/// retries. Made by [`Pool::bulk`]; the `Pool` methods of the same names use the
/// defaults.
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
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
#[must_use = "a BulkMap does nothing until one of its map methods runs"]
pub struct BulkMap<'p> {
    pool: &'p Pool,
    options: Options<'p>,
}

impl Pool {
    /// Options for a bulk map (chunk length, time limit, retries).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let mut xs = shmpool::SharedArray::<u32>::filled(10_000, 1)?;
    /// pool.bulk().chunk_len(1000).for_each_mut(&mut xs, |v: &mut u32| *v += 1)?;
    /// assert!(xs.iter().all(|&v| v == 2));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn bulk(&self) -> BulkMap<'_> {
        BulkMap {
            pool: self,
            options: Options::default(),
        }
    }

    /// `y[i] = f(x[i])` for every element, run by the workers in place.
    /// Several arrays in and out: [`Pool::zip_map_into`]. Kernels with parameters
    /// and context arrays: [`BulkMap::with`] and [`BulkMap::context`].
    ///
    /// `f` must be a non-capturing closure or a `fn` item: it runs in other
    /// processes, which cannot see captured values. The workers claim chunks of the
    /// arrays dynamically and run `f` over each in a tight loop that the compiler
    /// vectorizes; no element is copied or serialized.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`](crate::Error::LengthMismatch) if the lengths differ; [`Error::KernelPanicked`](crate::Error::KernelPanicked)
    /// naming the chunk if `f` panics (the pool stays usable);
    /// [`Error::WorkerDied`](crate::Error::WorkerDied) if a worker dies in a chunk; [`Error::PoolClosed`](crate::Error::PoolClosed) after
    /// `close`. An empty array is a no-op.
    ///
    /// A panic or a death stops the map: the other workers finish the chunks they
    /// are running and claim no more, and the call returns within about a
    /// millisecond of the failure (plus the time those chunks take). Chunks not
    /// computed then are named too, as [`Error::ChunkSkipped`](crate::Error::ChunkSkipped), in an
    /// [`Error::ChunksLost`](crate::Error::ChunksLost); [`Error::failed_ranges`](crate::Error::failed_ranges) lists every range not
    /// computed. (With [`BulkMap::retries`], a death does not stop the map while a
    /// retry is left.)
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let xs = shmpool::SharedArray::from_slice(&[1.0f64, 4.0, 9.0])?;
    /// let mut ys = shmpool::SharedArray::zeroed(3)?;
    /// pool.map_into(&xs, &mut ys, |v: f64| v.sqrt())?;
    /// assert_eq!(&ys[..], &[1.0, 2.0, 3.0]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    ///
    /// A closure that captures anything does not compile:
    ///
    /// ```compile_fail
    /// let pool = shmpool::Pool::new(1)?;
    /// let xs = shmpool::SharedArray::from_slice(&[1.0f64])?;
    /// let mut ys = shmpool::SharedArray::zeroed(1)?;
    /// let scale = 2.0;
    /// pool.map_into(&xs, &mut ys, move |v: f64| v * scale)?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_into<T, U, F>(&self, x: &SharedArray<T>, y: &mut SharedArray<U>, f: F) -> Result<()>
    where
        T: Pod,
        U: Pod,
        F: Fn(T) -> U + Copy,
    {
        self.bulk().map_into(x, y, f)
    }

    /// Elementwise maps over several arrays: `outputs[i] = f(inputs[i])`.
    ///
    /// `inputs` is one array `&x` or a tuple of two or three, `(&a, &b)`, of
    /// possibly different element types; `f` then receives a tuple `(a[i], b[i])`.
    /// `outputs` is one array `&mut y`, or two, `(&mut q, &mut r)`, for which `f`
    /// returns a pair. numpy's binary ufuncs with `out=`, `np.where` and `divmod`
    /// are written this way. Kernels with parameters and context arrays are
    /// [`BulkMap::with`] and [`BulkMap::context`].
    ///
    /// # Errors
    /// [`Error::LengthMismatch`](crate::Error::LengthMismatch) if the first output's
    /// length differs from the first input's,
    /// [`Error::OperandLength`](crate::Error::OperandLength) if another array's does;
    /// otherwise as for [`Pool::map_into`].
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
    /// pool.zip_map_into((&a, &b), &mut c, |(a, b): (u32, u32)| a + b)?;
    /// assert_eq!(&c[..], &[9, 13, 15]);
    /// // np.where(cond, a, b)
    /// let cond = SharedArray::from_slice(&[1u8, 0, 1])?;
    /// pool.zip_map_into((&cond, &a, &b), &mut c, |(k, a, b): (u8, u32, u32)| if k != 0 { a } else { b })?;
    /// assert_eq!(&c[..], &[7, 4, 10]);
    /// // divmod(a, b, out=(q, r)): two outputs
    /// let (mut q, mut r) = (SharedArray::zeroed(3)?, SharedArray::zeroed(3)?);
    /// pool.zip_map_into((&a, &b), (&mut q, &mut r), |(a, b): (u32, u32)| (a / b, a % b))?;
    /// assert_eq!((&q[..], &r[..]), (&[3, 2, 2][..], &[1, 1, 0][..]));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn zip_map_into<I, O, F>(&self, inputs: I, outputs: O, f: F) -> Result<()>
    where
        I: Inputs,
        O: Outputs,
        F: Fn(I::Item) -> O::Item + Copy,
    {
        self.bulk().zip_map_into(inputs, outputs, f)
    }

    /// Like [`Pool::map_into`], allocating the output array.
    ///
    /// # Errors
    /// As for [`Pool::map_into`], plus [`Error::Io`](crate::Error::Io) if the output cannot be
    /// allocated.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let xs = shmpool::SharedArray::try_from_iter(0..6u32)?.reshape(&[2, 3])?;
    /// let ys = pool.map_array(&xs, |v: u32| v as f64 / 2.0)?;
    /// assert_eq!(ys.shape(), &[2, 3]); // the input's shape
    /// assert_eq!(&ys[..], &[0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_array<T, U, F>(&self, x: &SharedArray<T>, f: F) -> Result<SharedArray<U>>
    where
        T: Pod,
        U: Pod,
        F: Fn(T) -> U + Copy,
    {
        self.bulk().map_array(x, f)
    }

    /// `f(&x[chunk], &mut y[chunk])` for each chunk: for kernels that want a whole
    /// slice at a time.
    ///
    /// # Errors
    /// As for [`Pool::map_into`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let xs = shmpool::SharedArray::try_from_iter((0..1000).map(|i| i as f64))?;
    /// let mut ys = shmpool::SharedArray::zeroed(1000)?;
    /// pool.map_chunks_into(&xs, &mut ys, |xs: &[f64], ys: &mut [f64]| {
    ///     for (y, x) in ys.iter_mut().zip(xs) {
    ///         *y = x * x;
    ///     }
    /// })?;
    /// assert_eq!(ys[30], 900.0);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_chunks_into<T, U, F>(
        &self,
        x: &SharedArray<T>,
        y: &mut SharedArray<U>,
        f: F,
    ) -> Result<()>
    where
        T: Pod,
        U: Pod,
        F: Fn(&[T], &mut [U]) + Copy,
    {
        self.bulk().map_chunks_into(x, y, f)
    }

    /// `f(&mut x[i])` for every element, in place.
    ///
    /// # Errors
    /// As for [`Pool::map_into`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let mut xs = shmpool::SharedArray::from_slice(&[1u64, 2, 3])?;
    /// pool.for_each_mut(&mut xs, |v: &mut u64| *v *= 10)?;
    /// assert_eq!(&xs[..], &[10, 20, 30]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn for_each_mut<T, F>(&self, x: &mut SharedArray<T>, f: F) -> Result<()>
    where
        T: Pod,
        F: Fn(&mut T) + Copy,
    {
        self.bulk().for_each_mut(x, f)
    }

    /// `f(&mut x[chunk])` for each chunk, in place.
    ///
    /// # Errors
    /// As for [`Pool::map_into`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let mut xs = shmpool::SharedArray::from_slice(&[-3.0f32, 1.0, -2.0])?;
    /// pool.for_each_chunk_mut(&mut xs, |chunk: &mut [f32]| {
    ///     for v in chunk {
    ///         *v = v.abs();
    ///     }
    /// })?;
    /// assert_eq!(&xs[..], &[3.0, 1.0, 2.0]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn for_each_chunk_mut<T, F>(&self, x: &mut SharedArray<T>, f: F) -> Result<()>
    where
        T: Pod,
        F: Fn(&mut [T]) + Copy,
    {
        self.bulk().for_each_chunk_mut(x, f)
    }
}

impl<'p> BulkMap<'p> {
    /// Elements per chunk. Default: about 256 KiB of input and output per chunk,
    /// and at least eight chunks per worker when the array is large enough.
    /// Zero is refused with [`Error::ZeroChunkLen`](crate::Error::ZeroChunkLen).
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
    /// [`Error::Timeout`](crate::Error::Timeout) (or is retried, see [`BulkMap::retries`]). Like any death,
    /// a timeout with no retry left stops the map (see [`Pool::map_into`]).
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
    /// While a retry is left, a death does not stop the map: the other chunks run
    /// on, and what the deaths lost is run again afterwards, as a new round. In the
    /// last round a death stops the map, as without retries.
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

    /// Map only the elements `range` of the arrays: `x[range]` into `y[range]`, or
    /// `x[range]` in place; every other element is left as it is. Chunks start at
    /// `range.start`; the chunk ranges in errors are indices into the whole array.
    /// Default: every element.
    ///
    /// # Errors
    /// The map refuses a range that ends past the array, or starts after it ends,
    /// with [`Error::RangeOutOfBounds`](crate::Error::RangeOutOfBounds).
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

    /// Lets `token` cancel the operation from another thread (see
    /// [`CancelToken`](crate::CancelToken)): the map then returns
    /// [`Error::MapCancelled`](crate::Error::MapCancelled), naming the ranges it
    /// computed. Works for every bulk operation, reductions included.
    pub fn cancel_token(mut self, token: &'p crate::CancelToken) -> Self {
        self.options.cancel = Some(token);
        self
    }

    /// Hands `params` to every kernel call by reference: the kernels of the
    /// returned [`BulkWith`] take `&P` first. The parameters are copied into the
    /// job's entry in shared memory once per call, not per chunk: up to 4 KiB, of
    /// any `Pod` type aligned to at most 64 bytes (checked when the program is
    /// compiled). Put anything bigger in a [`SharedArray`] and pass it with
    /// [`BulkMap::context`].
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
    pub fn with<P: Pod>(self, params: P) -> BulkWith<'p, 'static, Params<P>> {
        BulkWith::new(self.pool, self.options, params)
    }

    /// Adds a read-only array that every chunk reads whole: a lookup table,
    /// coefficients, the other operand of a gather. The kernels of the returned
    /// [`BulkWith`] take an [`Env`](crate::Env) first; `env.array::<T>(k)` is the
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
    pub fn context<'c, T: Pod>(
        self,
        array: &'c SharedArray<T>,
    ) -> BulkWith<'p, 'c, ParamsAndArrays<()>> {
        BulkWith::new(self.pool, self.options, ()).context(array)
    }

    /// See [`Pool::map_into`].
    ///
    /// # Errors
    /// As for [`Pool::map_into`], plus [`Error::RangeOutOfBounds`](crate::Error::RangeOutOfBounds) (see
    /// [`BulkMap::range`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let xs = shmpool::SharedArray::from_slice(&[1u8, 2, 3, 4])?;
    /// let mut ys = shmpool::SharedArray::<u16>::zeroed(4)?;
    /// pool.bulk().range(2..4).map_into(&xs, &mut ys, |v: u8| u16::from(v) * 100)?;
    /// assert_eq!(&ys[..], &[0, 0, 300, 400]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_into<T, U, F>(self, x: &SharedArray<T>, y: &mut SharedArray<U>, f: F) -> Result<()>
    where
        T: Pod,
        U: Pod,
        F: Fn(T) -> U + Copy,
    {
        let () = AssertZeroSized::<F>::OK;
        self.with(()).map_into(
            x,
            y,
            #[inline(always)]
            move |_: &(), v: T| f(v),
        )
    }

    /// See [`Pool::zip_map_into`].
    ///
    /// # Errors
    /// As for [`Pool::zip_map_into`].
    pub fn zip_map_into<I, O, F>(self, inputs: I, outputs: O, f: F) -> Result<()>
    where
        I: Inputs,
        O: Outputs,
        F: Fn(I::Item) -> O::Item + Copy,
    {
        let () = AssertZeroSized::<F>::OK;
        self.with(()).zip_map_into(
            inputs,
            outputs,
            #[inline(always)]
            move |_: &(), v| f(v),
        )
    }

    /// See [`Pool::map_array`].
    ///
    /// # Errors
    /// As for [`Pool::map_array`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let xs = shmpool::SharedArray::try_from_iter(0..1000i32)?;
    /// let ys = pool.bulk().chunk_len(100).map_array(&xs, |v: i32| i64::from(v) * i64::from(v))?;
    /// assert_eq!(ys[999], 998_001);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_array<T, U, F>(self, x: &SharedArray<T>, f: F) -> Result<SharedArray<U>>
    where
        T: Pod,
        U: Pod,
        F: Fn(T) -> U + Copy,
    {
        let () = AssertZeroSized::<F>::OK;
        self.with(()).map_array(
            x,
            #[inline(always)]
            move |_: &(), v: T| f(v),
        )
    }

    /// See [`Pool::map_chunks_into`].
    ///
    /// # Errors
    /// As for [`Pool::map_into`].
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
        F: Fn(&[T], &mut [U]) + Copy,
    {
        self.zip_map_chunks_into(x, y, f)
    }

    /// `f(inputs[chunk], outputs[chunk])` for each chunk, with the forms of
    /// [`Pool::zip_map_into`]: a kernel sees a tuple of slices for several arrays.
    ///
    /// # Errors
    /// As for [`Pool::zip_map_into`].
    pub fn zip_map_chunks_into<I, O, F>(self, inputs: I, outputs: O, f: F) -> Result<()>
    where
        I: Inputs,
        O: Outputs,
        F: for<'a> Fn(I::Slices<'a>, O::Slices<'a>) + Copy,
    {
        let () = AssertZeroSized::<F>::OK;
        self.with(()).zip_map_chunks_into(
            inputs,
            outputs,
            #[inline(always)]
            move |_: &(), xs, ys| f(xs, ys),
        )
    }

    /// See [`Pool::for_each_mut`].
    ///
    /// # Errors
    /// As for [`Pool::map_into`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let mut xs = shmpool::SharedArray::filled(10, 1.5f64)?;
    /// pool.bulk().chunk_len(3).for_each_mut(&mut xs, |v: &mut f64| *v *= 2.0)?;
    /// assert!(xs.iter().all(|&v| v == 3.0));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn for_each_mut<T, F>(self, x: &mut SharedArray<T>, f: F) -> Result<()>
    where
        T: Pod,
        F: Fn(&mut T) + Copy,
    {
        let () = AssertZeroSized::<F>::OK;
        self.with(()).for_each_mut(
            x,
            #[inline(always)]
            move |_: &(), v: &mut T| f(v),
        )
    }

    /// See [`Pool::for_each_chunk_mut`].
    ///
    /// # Errors
    /// As for [`Pool::map_into`].
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
        F: Fn(&mut [T]) + Copy,
    {
        let () = AssertZeroSized::<F>::OK;
        self.with(()).for_each_chunk_mut(
            x,
            #[inline(always)]
            move |_: &(), c: &mut [T]| f(c),
        )
    }

    /// See [`BulkWith::map_indexed_into`], with a kernel that takes no parameters:
    /// `f(range, whole_inputs, outputs[range])`.
    ///
    /// # Errors
    /// As for [`BulkWith::map_indexed_into`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::ops::Range;
    ///
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::try_from_iter(0..10u32)?;
    /// let mut rev = shmpool::SharedArray::zeroed(10)?;
    /// // A gather from the other end: rev[i] = x[n - 1 - i].
    /// pool.bulk().chunk_len(3).map_indexed_into(&x, &mut rev, |r: Range<usize>, x: &[u32], out: &mut [u32]| {
    ///     for (o, i) in out.iter_mut().zip(r) {
    ///         *o = x[x.len() - 1 - i];
    ///     }
    /// })?;
    /// assert_eq!(&rev[..], &[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_indexed_into<I, O, F>(self, inputs: I, outputs: O, f: F) -> Result<()>
    where
        I: Inputs,
        O: Outputs,
        F: for<'a> Fn(Range<usize>, I::Slices<'a>, O::Slices<'a>) + Copy,
    {
        let () = AssertZeroSized::<F>::OK;
        self.with(()).map_indexed_into(
            inputs,
            outputs,
            #[inline(always)]
            move |_: &(), r, xs, ys| f(r, xs, ys),
        )
    }

    /// See [`BulkWith::map_rows_into`], with a kernel that takes no parameters:
    /// `f(&x_row, &mut y_row)` for each row of 2-D arrays.
    ///
    /// # Errors
    /// As for [`BulkWith::map_rows_into`].
    pub fn map_rows_into<T, U, F>(
        self,
        x: &SharedArray<T>,
        y: &mut SharedArray<U>,
        f: F,
    ) -> Result<()>
    where
        T: Pod,
        U: Pod,
        F: Fn(&[T], &mut [U]) + Copy,
    {
        let () = AssertZeroSized::<F>::OK;
        self.with(()).map_rows_into(
            x,
            y,
            #[inline(always)]
            move |_: &(), row: &[T], out: &mut [U]| f(row, out),
        )
    }

    /// See [`BulkWith::stencil_rows_into`], with a kernel that takes no parameters:
    /// `f(rows, x, y_rows)`.
    ///
    /// # Errors
    /// As for [`BulkWith::map_rows_into`].
    pub fn stencil_rows_into<T, U, F>(
        self,
        x: &SharedArray<T>,
        y: &mut SharedArray<U>,
        f: F,
    ) -> Result<()>
    where
        T: Pod,
        U: Pod,
        F: for<'a> Fn(Range<usize>, Grid<'a, T>, GridMut<'a, U>) + Copy,
    {
        let () = AssertZeroSized::<F>::OK;
        self.with(()).stencil_rows_into(
            x,
            y,
            #[inline(always)]
            move |_: &(), rows, xg, yg| f(rows, xg, yg),
        )
    }

    /// See [`BulkWith::map_into_async`], with a kernel that takes no parameters:
    /// a bulk map as a future that owns its arrays.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let x = shmpool::SharedArray::from_slice(&[1.0f64, 4.0, 9.0])?;
    /// let y = shmpool::SharedArray::zeroed(3)?;
    /// let (_, y, done) =
    ///     futures::executor::block_on(pool.bulk().map_into_async(x, y, |v: f64| v.sqrt()));
    /// done?;
    /// assert_eq!(&y[..], &[1.0, 2.0, 3.0]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_into_async<T, U, F>(
        self,
        x: SharedArray<T>,
        y: SharedArray<U>,
        f: F,
    ) -> crate::BulkFuture<T, U>
    where
        T: Pod,
        U: Pod,
        F: Fn(T) -> U + Copy,
    {
        let () = AssertZeroSized::<F>::OK;
        self.with(()).map_into_async(
            x,
            y,
            #[inline(always)]
            move |_: &(), v: T| f(v),
        )
    }
}
