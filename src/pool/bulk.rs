//! Zero-copy bulk maps over [`SharedArray`]s, written in place.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering as StdOrdering;
use std::time::Duration;

use bytemuck::Pod;

use super::Pool;
use super::inner::{PoolInner, PoolState};
use crate::array::SharedArray;
use crate::error::{Error, Result};
use crate::job::ledger::{Outcome, Span, failure_error};
use crate::job::protocol::{self, Descriptor, Operand};
use crate::kernel::{self, AssertZeroSized, BulkKernel};
use crate::layout::{JobKind, RecordKind, TaskRecord};
use crate::shm::Segment;

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
    chunk_len: Option<usize>,
    chunk_timeout: Option<Duration>,
    retries: u32,
    /// `start..end` of the elements to map; `None` maps them all. (A pair, not a
    /// `Range`, so that `BulkMap` stays `Copy`.)
    range: Option<(usize, usize)>,
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
            chunk_len: None,
            chunk_timeout: None,
            retries: 0,
            range: None,
        }
    }

    /// `y[i] = f(x[i])` for every element, run by the workers in place.
    ///
    /// `f` must be a non-capturing closure or a `fn` item: it runs in other
    /// processes, which cannot see captured values. The workers claim chunks of the
    /// arrays dynamically and run `f` over each in a tight loop that the compiler
    /// vectorizes; no element is copied or serialized.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] if the lengths differ; [`Error::KernelPanicked`]
    /// naming the chunk if `f` panics (the pool stays usable);
    /// [`Error::WorkerDied`] if a worker dies in a chunk; [`Error::PoolClosed`] after
    /// `close`. An empty array is a no-op.
    ///
    /// A panic or a death stops the map: the other workers finish the chunks they
    /// are running and claim no more, and the call returns within about a
    /// millisecond of the failure (plus the time those chunks take). Chunks not
    /// computed then are named too, as [`Error::ChunkSkipped`], in an
    /// [`Error::ChunksLost`]; [`Error::failed_ranges`] lists every range not
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

    /// Like [`Pool::map_into`], allocating the output array.
    ///
    /// # Errors
    /// As for [`Pool::map_into`], plus [`Error::Io`] if the output cannot be
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

impl BulkMap<'_> {
    /// Elements per chunk. Default: about 256 KiB of input and output per chunk,
    /// and at least eight chunks per worker when the array is large enough.
    /// Zero is refused with [`Error::ZeroChunkLen`].
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
        self.chunk_len = Some(n);
        self
    }

    /// Kill a worker whose chunk runs longer than `d`; the chunk fails with
    /// [`Error::Timeout`] (or is retried, see [`BulkMap::retries`]). Like any death,
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
        self.chunk_timeout = Some(d);
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
        self.retries = n;
        self
    }

    /// Map only the elements `range` of the arrays: `x[range]` into `y[range]`, or
    /// `x[range]` in place; every other element is left as it is. Chunks start at
    /// `range.start`; the chunk ranges in errors are indices into the whole array.
    /// Default: every element.
    ///
    /// # Errors
    /// The map refuses a range that ends past the array, or starts after it ends,
    /// with [`Error::RangeOutOfBounds`].
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
        self.range = Some((range.start, range.end));
        self
    }

    /// See [`Pool::map_into`].
    ///
    /// # Errors
    /// As for [`Pool::map_into`], plus [`Error::RangeOutOfBounds`] (see
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
        let _ = f; // only its type travels: the worker conjures the value
        let kernel: BulkKernel = kernel::map_kernel::<T, U, F>;
        self.two_arrays(JobKind::Map, kernel, x, y)
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
        let mut y = SharedArray::zeroed(x.len())?.reshape(x.shape())?;
        self.map_into(x, &mut y, f)?;
        Ok(y)
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
        let () = AssertZeroSized::<F>::OK;
        let _ = f; // only its type travels: the worker conjures the value
        let kernel: BulkKernel = kernel::chunk_kernel::<T, U, F>;
        self.two_arrays(JobKind::Chunks, kernel, x, y)
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
        let _ = f; // only its type travels: the worker conjures the value
        let kernel: BulkKernel = kernel::for_each_kernel::<T, F>;
        self.one_array(kernel, x)
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
        let _ = f; // only its type travels: the worker conjures the value
        let kernel: BulkKernel = kernel::chunk_mut_kernel::<T, F>;
        self.one_array(kernel, x)
    }

    fn two_arrays<T: Pod, U: Pod>(
        self,
        kind: JobKind,
        kernel: BulkKernel,
        x: &SharedArray<T>,
        y: &mut SharedArray<U>,
    ) -> Result<()> {
        if x.len() != y.len() {
            return Err(Error::LengthMismatch {
                input: x.len(),
                output: y.len(),
            });
        }
        let input = Array {
            segment: x.segment(),
            elem_size: std::mem::size_of::<T>(),
        };
        let output = Array {
            segment: y.segment(),
            elem_size: std::mem::size_of::<U>(),
        };
        self.run(kind, kernel, input, output, x.len())
    }

    fn one_array<T: Pod>(self, kernel: BulkKernel, x: &mut SharedArray<T>) -> Result<()> {
        let array = Array {
            segment: x.segment(),
            elem_size: std::mem::size_of::<T>(),
        };
        self.run(JobKind::InPlace, kernel, array, array, x.len())
    }

    fn run(
        self,
        kind: JobKind,
        kernel: BulkKernel,
        input: Array<'_>,
        output: Array<'_>,
        len: usize,
    ) -> Result<()> {
        let inner = self.pool.inner();
        let range = match self.range {
            None => 0..len,
            Some((start, end)) if start <= end && end <= len => start..end,
            Some((start, end)) => {
                return Err(Error::RangeOutOfBounds {
                    range: start..end,
                    len,
                });
            }
        };
        let chunk_len = match self.chunk_len {
            Some(0) => return Err(Error::ZeroChunkLen),
            Some(n) => n,
            None => default_chunk_len(
                range.len(),
                input.elem_size + output.elem_size,
                inner.processes,
            ),
        };
        inner.check_open()?;
        if range.is_empty() {
            return Ok(());
        }
        let max = u64::from(inner.ctrl.dims().max_chunks);
        let chunks = range.len().div_ceil(chunk_len) as u64;
        if chunks > max {
            return Err(Error::TooManyChunks { chunks, max });
        }
        let job = Job {
            inner,
            kind,
            kernel,
            input,
            output,
            chunk_len,
            chunk_timeout: self.chunk_timeout,
        };
        // Each range still to compute, with the error that lost it last time.
        let mut pending: Vec<(Range<usize>, Option<Error>)> = vec![(range, None)];
        let mut retries_left = self.retries;
        loop {
            let mut lost = Vec::new();
            let mut ranges = pending.into_iter();
            // With no retry left, a death stops the job it happens in, as a panic
            // does: nothing it loses will be re-run, so the caller is told at once.
            let stop_on_death = retries_left == 0;
            while let Some((range, _)) = ranges.next() {
                match job.execute(range, stop_on_death)? {
                    Outcome::Done => {}
                    Outcome::Terminated => return Err(inner.broken_or_terminated()),
                    Outcome::Failed { stopped, lost: l } => {
                        lost.extend(l);
                        if stopped {
                            // `terminate` kills the workers, and their deaths stop the
                            // job like any other: the map ends because the pool did.
                            if inner.state() == PoolState::Terminated {
                                return Err(inner.broken_or_terminated());
                            }
                            // A panic, or a death with no retry left, stops the map:
                            // what was not run again stays lost.
                            lost.extend(ranges.filter_map(|(r, e)| e.map(|e| (r, e))));
                            lost.sort_by_key(|(r, _)| r.start);
                            return Err(failure_error(lost));
                        }
                    }
                }
            }
            if lost.is_empty() {
                return Ok(());
            }
            if inner.state() == PoolState::Terminated {
                return Err(inner.broken_or_terminated());
            }
            if retries_left == 0 {
                return Err(failure_error(lost));
            }
            retries_left -= 1;
            tracing::debug!(lost = lost.len(), retries_left, "retrying lost chunks");
            pending = lost.into_iter().map(|(r, e)| (r, Some(e))).collect();
        }
    }
}

#[derive(Clone, Copy)]
struct Array<'a> {
    segment: &'a Arc<Segment>,
    elem_size: usize,
}

/// One bulk operation, possibly executed as several jobs (retries).
struct Job<'a> {
    inner: &'a PoolInner,
    kind: JobKind,
    kernel: BulkKernel,
    input: Array<'a>,
    output: Array<'a>,
    chunk_len: usize,
    chunk_timeout: Option<Duration>,
}

/// Releases a job entry and the shipped segments whatever happens.
struct EntryGuard<'a> {
    inner: &'a PoolInner,
    index: u32,
    segments: Vec<&'a Arc<Segment>>,
}

impl Drop for EntryGuard<'_> {
    fn drop(&mut self) {
        self.inner.unship_after_job(&self.segments);
        self.inner.jobs.release(self.index);
    }
}

impl<'a> Job<'a> {
    /// Runs the elements `range` as one job; says what became of it. With
    /// `stop_on_death`, a worker's death stops the job (see `Ledger::reserve`).
    fn execute(&self, range: Range<usize>, stop_on_death: bool) -> Result<Outcome> {
        let inner = self.inner;
        let _span = tracing::debug_span!(
            "shmpool.bulk",
            kind = self.kind as u32,
            start = range.start,
            len = range.len(),
            chunk_len = self.chunk_len
        )
        .entered();
        inner.check_open()?;
        let (index, generation) = inner.jobs.reserve(stop_on_death);
        let mut segments = vec![self.output.segment];
        if self.kind != JobKind::InPlace {
            segments.push(self.input.segment);
        }
        let guard = EntryGuard {
            inner,
            index,
            segments,
        };
        inner.ship_for_job(&guard.segments)?;

        let len = range.len() as u64;
        let chunk_len = self.chunk_len as u64;
        let chunks = len.div_ceil(chunk_len);
        let operand = |a: Array<'_>| -> Result<Operand> {
            let info = a
                .segment
                .ship_info()
                .map_err(Error::io("registering an array"))?;
            Ok(Operand {
                id: info.id,
                live: info.live,
                byte_off: (range.start * a.elem_size) as u64,
                elem_size: a.elem_size as u64,
            })
        };
        let desc = Descriptor {
            kind: self.kind,
            kernel: kernel::bulk_offset(self.kernel),
            len,
            chunk_len,
            chunks,
            chunk_timeout_ns: self
                .chunk_timeout
                .map_or(0, |d| d.as_nanos().clamp(1, u64::MAX as u128) as u64),
            input: operand(self.input)?,
            output: operand(self.output)?,
        };
        let job = inner.ctrl.job(index);
        protocol::publish(job, inner.ctrl.bitmap(index), generation, &desc);

        let invitations = (inner.live_workers() as u64).clamp(1, chunks);
        let record = TaskRecord {
            kind: RecordKind::JoinBulk as u32,
            id: protocol::pack_job(index, generation),
            ..Default::default()
        };
        for _ in 0..invitations {
            inner.push_record(record)?;
        }
        inner.ctrl.header().submit_ready.notify(invitations as u32);
        tracing::debug!(chunks, invitations, "bulk job submitted");

        let abandoned =
            protocol::wait_finished(job, inner.backoff, Duration::from_millis(50), || {
                // SYNC(C6): Acquire — pairs with SYNC C5: the collector's
                // `finish_everything` (which finishes or marks terminated every job) is
                // visible to the checks below.
                inner
                    .collector_exited
                    .load(StdOrdering::Acquire)
                    .then_some(())
            });
        let span = Span {
            start: range.start,
            len,
            chunk_len,
        };
        let outcome = inner
            .jobs
            .outcome(inner.ctrl, index, span, abandoned.is_some());
        tracing::debug!(?outcome, "bulk job complete");
        Ok(outcome)
    }
}

/// The default chunk length: about 256 KiB of traffic per chunk, at least eight
/// chunks per worker when the array allows, never below 16 KiB of traffic.
fn default_chunk_len(len: usize, bytes_per_elem: usize, workers: usize) -> usize {
    const TARGET: usize = 256 << 10;
    const FLOOR: usize = 16 << 10;
    let bytes_per_elem = bytes_per_elem.max(1);
    let by_bytes = (TARGET / bytes_per_elem).max(1);
    let balanced = len.div_ceil(workers.max(1) * 8).max(1);
    let floor = (FLOOR / bytes_per_elem).max(1);
    by_bytes.min(balanced).max(floor).max(len.div_ceil(1 << 20))
}

#[cfg(test)]
mod tests {
    use super::default_chunk_len;

    #[test]
    fn default_chunks_are_a_few_hundred_kib() {
        // 2^24 f64 in and out: 16 bytes per element, 256 KiB per chunk.
        assert_eq!(default_chunk_len(1 << 24, 16, 2), 16384);
        // Small arrays are not split below 16 KiB of traffic.
        assert_eq!(default_chunk_len(1000, 16, 2), 1024);
        assert_eq!(default_chunk_len(0, 16, 2), 1024);
    }
}
