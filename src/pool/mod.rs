//! The face and the runtime: [`Pool`], every method of it (the lifecycle,
//! Python's vocabulary, `map_into`, and the two builders `tasks()` and `bulk()`),
//! and the parent's side of a running pool.
//!
//! * the face: this file ([`Pool`], and `PoolBuilder::build`), [`pool_builder`]
//!   (the settings), [`stats`];
//! * the vocabularies: [`tasks`] (Python's: `apply`, `map`, `imap`, ...) and
//!   [`bulk`] (numpy's, over shared arrays);
//! * the runtime: [`inner`] (the owners of the parent's state, together), [`life`],
//!   [`fork_server`], [`shipping`], [`kill`], [`collector`] (deaths, timeouts, the
//!   pool kept topped up), [`oom`], and [`task_rings`] (generic tasks through the
//!   rings: submitted, drained, delivered).

mod bulk;
mod collector;
mod fork_server;
mod inner;
mod kill;
mod life;
mod oom;
mod pool_builder;
#[cfg(feature = "progress")]
mod progress_bar;
mod shipping;
mod stats;
mod task_rings;
mod tasks;

use std::sync::Arc;
use std::thread::JoinHandle;

pub use bulk::{
    BinValue, Bins, Bulk, BulkFuture, CancelToken, DefaultDtype, Dtype, Float, Histogram,
    HistogramSpec, MeanIn, Number, SumIn, Weighted,
};
pub(crate) use inner::PoolInner;
pub use pool_builder::{PoolBuilder, StartMethod};
pub use stats::{ArrayPages, Stats, WorkerStats};
#[cfg(feature = "progress")]
pub use tasks::Progress;
#[cfg(feature = "mpi")]
pub(crate) use tasks::collect_input;
pub use tasks::{Imap, ImapStream, Tasks};

use bytemuck::Pod;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::array::SharedArray;
use crate::error::{Error, Result};
use crate::task::async_result::AsyncResult;
use crate::task::star_fn::StarFn;

impl PoolBuilder {
    /// Starts the pool: the fork server and every worker, and waits until each worker
    /// is ready to take work.
    ///
    /// # Errors
    /// [`Error::ZeroProcesses`] for `processes(0)`; [`Error::TooManyProcesses`]
    /// beyond the most a pool can have (4096); [`Error::Start`] when workers
    /// cannot be started; [`Error::Io`] when shared memory cannot be created.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{Error, Pool};
    ///
    /// let pool = Pool::builder().processes(2).build()?;
    /// assert_eq!(pool.processes(), 2);
    /// assert!(matches!(Pool::builder().processes(0).build(), Err(Error::ZeroProcesses)));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn build(self) -> Result<Pool> {
        let processes = match self.processes {
            Some(0) => return Err(Error::ZeroProcesses),
            Some(n) => n,
            None => crate::sys::cpus_allowed(),
        };
        let started = std::time::Instant::now();
        let _span =
            tracing::info_span!("shmpool.pool.start", processes, method = ?self.start_method)
                .entered();
        // Before any fork: workers must not take the panic hook's lock themselves.
        crate::unwind::install_hook();
        let inner = Arc::new(PoolInner::new(processes, &self)?);
        let collector = collector::start(Arc::clone(&inner), self.start_method)?;
        let pool = Pool {
            inner,
            collector: std::sync::Mutex::new(Some(collector)),
        };
        if let Err(e) = pool.inner.wait_until_ready() {
            tracing::error!(error = %e, "workers could not start");
            return Err(e);
        }
        crate::shm::registry::add(&pool.inner);
        tracing::info!(
            elapsed_us = started.elapsed().as_micros() as u64,
            "pool started"
        );
        Ok(pool)
    }
}

/// A pool of prespawned worker processes.
///
/// Work goes to the workers through lock-free rings in shared memory; array maps
/// hand them chunk ranges of [`crate::SharedArray`]s, which they read and write in
/// place. A `Pool` is `Send + Sync`: share it between threads by reference or `Arc`.
///
/// # Lifecycle
/// [`Pool::close`] stops new work; [`Pool::join`] then waits for the workers to
/// finish and exit. [`Pool::terminate`] kills the workers at once. **Dropping** a
/// pool terminates it (as Python's `with Pool() as p:` does on exit): workers are
/// killed, pending work fails with [`Error::PoolTerminated`], and every process is
/// reaped before `drop` returns. Drop never hangs and never leaks a process or shared
/// memory.
///
/// # Examples
///
/// ```
/// use shmpool::{Pool, SharedArray};
///
/// let pool = Pool::new(2)?;
/// let xs = SharedArray::try_from_iter((0..10_000).map(|i| i as f64))?;
/// let mut ys = SharedArray::zeroed(xs.len())?;
/// pool.map_into(&xs, &mut ys, |v: f64| v.sqrt())?;
/// assert_eq!(ys[9], 3.0);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug)]
pub struct Pool {
    inner: Arc<PoolInner>,
    collector: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Pool {
    /// A pool of `processes` workers with default settings.
    ///
    /// # Errors
    /// As for [`PoolBuilder::build`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// assert_eq!(pool.apply(|x: i32| -x, (5,))?, -5);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new(processes: usize) -> Result<Pool> {
        Pool::builder().processes(processes).build()
    }

    /// A builder for a pool with non-default settings.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::builder()
    ///     .processes(1)
    ///     .max_tasks_per_child(100)
    ///     .build()?;
    /// assert_eq!(pool.processes(), 1);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// The number of worker processes.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// assert_eq!(pool.processes(), 2);
    /// assert_eq!(pool.stats().workers.len(), 2);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn processes(&self) -> usize {
        self.inner.settings.processes
    }

    /// Stops the pool from taking new work. Work already submitted runs to the end;
    /// then the workers exit. Calls after `close` fail with [`Error::PoolClosed`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(1)?;
    /// let r = pool.apply_async(|| 6 * 7, ())?;
    /// pool.close();
    /// assert_eq!(r.get()?, 42); // submitted before `close`: it still runs
    /// assert!(matches!(pool.apply(|| 0, ()), Err(shmpool::Error::PoolClosed)));
    /// pool.join()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn close(&self) {
        self.inner.close();
    }

    /// Kills the workers now. Pending work fails with [`Error::PoolTerminated`].
    /// Returns once every worker process is gone. Idempotent.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = shmpool::Pool::new(1)?;
    /// let r = pool.apply_async(|| std::thread::sleep(Duration::from_secs(60)), ())?;
    /// pool.terminate(); // does not wait for the task
    /// assert!(matches!(r.get(), Err(shmpool::Error::PoolTerminated)));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn terminate(&self) {
        self.inner.terminate();
        self.join_collector();
    }

    /// Waits for the workers to exit after [`Pool::close`] or [`Pool::terminate`].
    ///
    /// # Errors
    /// [`Error::JoinBeforeClose`] when the pool is still open.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(1)?;
    /// assert!(matches!(pool.join(), Err(shmpool::Error::JoinBeforeClose)));
    /// pool.close();
    /// pool.join()?; // every worker has exited
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn join(&self) -> Result<()> {
        if !self.inner.life.is_closed() {
            return Err(Error::JoinBeforeClose);
        }
        self.join_collector();
        Ok(())
    }

    fn join_collector(&self) {
        let handle = self
            .collector
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    /// A snapshot of the pool's counters: work done per worker, respawns, and the
    /// bytes that went through the rings versus the bytes shared by mapping.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let xs = shmpool::SharedArray::<f64>::zeroed(1 << 16)?;
    /// let mut ys = shmpool::SharedArray::<f64>::zeroed(1 << 16)?;
    /// pool.bulk().chunk_len(4096).map_into(&xs, &mut ys, |v: f64| v + 1.0)?;
    /// let stats = pool.stats();
    /// assert!(stats.bytes_submitted < 1024); // a few records, not 1 MiB of data
    /// assert_eq!(stats.workers.iter().map(|w| w.chunks_done).sum::<u64>(), 16);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn stats(&self) -> Stats {
        use std::sync::atomic::Ordering::Relaxed;
        let inner = &self.inner;
        let c = &inner.counters;
        let workers = (0..inner.ctrl.dims().slots as usize)
            .filter_map(|i| {
                let s = inner.ctrl.slot(i);
                let phase = s.phase();
                (phase.generation > 0).then(|| {
                    let pid = s.pid().filter(|_| phase.state.is_live());
                    let resident = pid.and_then(crate::sys::resident_of);
                    WorkerStats {
                        slot: i,
                        pid,
                        tasks_done: s.tasks_done(),
                        chunks_done: s.chunks_done(),
                        resident_private: resident.map(|r| r.private),
                        resident_shared: resident.map(|r| r.shared),
                    }
                })
            })
            .collect();
        let (shared_memory_bytes, array_pages) = inner.shared_memory();
        Stats {
            workers,
            respawns: c.respawns.load(Relaxed),
            tasks_retried: c.tasks_retried.load(Relaxed),
            records_submitted: c.records_submitted.load(Relaxed),
            bytes_submitted: c.bytes_submitted.load(Relaxed),
            records_completed: c.records_completed.load(Relaxed),
            bytes_completed: c.bytes_completed.load(Relaxed),
            segments_shipped: c.segments_shipped.load(Relaxed),
            bytes_mapped: c.bytes_mapped.load(Relaxed),
            workers_retired_for_memory: inner.ctrl.header().retired_for_memory.load(Relaxed),
            shared_memory_bytes,
            simd: inner.settings.simd.level,
            array_pages,
            large_array_pages: crate::shm::segment::auto_page_kind(crate::shm::HUGE_PAGE_THRESHOLD),
        }
    }

    /// Python's vocabulary for one call, with options: chunk size, a time limit,
    /// retries, the in-flight bound of an `imap`, a progress bar, and a task context
    /// (`with`, `functools.partial`); and every form: `try_` (never waits for room
    /// under [`max_queued`](PoolBuilder::max_queued)), `_async_with` (callbacks).
    /// See [`Tasks`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let evens = pool.tasks().chunksize(4).map(|x: u32| x % 2 == 0, 0..8u32)?;
    /// assert_eq!(evens, [true, false, true, false, true, false, true, false]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn tasks(&self) -> Tasks<'_> {
        Tasks::new(&self.inner)
    }

    /// Runs `f(*args)` in a worker and returns its result: Python's `apply`.
    ///
    /// `args` is a tuple, unpacked into `f`'s parameters (see [`crate::StarFn`]):
    /// `(x,)` for one argument, `()` for none. `f` must be a non-capturing closure
    /// or a `fn` item.
    ///
    /// # Errors
    /// [`Error::TaskPanicked`] if `f` panics, [`Error::WorkerDied`] if its worker
    /// dies, [`Error::Timeout`] past a time limit, [`Error::PoolClosed`] after
    /// `close`, [`Error::Codec`] if arguments or result cannot be serialized.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(1)?;
    /// let pid = pool.apply(|| std::process::id(), ())?;
    /// assert_ne!(pid, std::process::id()); // it ran in a worker process
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    ///
    /// A closure that captures anything does not compile: the worker could not see
    /// what it captured. Pass the value as an argument instead.
    ///
    /// ```compile_fail
    /// let pool = shmpool::Pool::new(1)?;
    /// let offset = 10u64;
    /// let r = pool.apply(move |x: u64| x + offset, (1,))?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn apply<Args, F>(&self, f: F, args: Args) -> Result<F::Output>
    where
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.tasks().apply(f, args)
    }

    /// Submits `f(*args)` and returns at once: Python's `apply_async`.
    ///
    /// # Errors
    /// [`Error::PoolClosed`] after `close`; [`Error::Codec`] if the arguments cannot
    /// be serialized. The task's own outcome comes from [`AsyncResult::get`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(1)?;
    /// let r = pool.apply_async(|a: u64, b: u64| a * b, (6, 7))?;
    /// // ... other work here, while the task runs ...
    /// assert_eq!(r.get()?, 42);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn apply_async<Args, F>(&self, f: F, args: Args) -> Result<AsyncResult<F::Output>>
    where
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.tasks().apply_async(f, args)
    }

    /// `f(x)` for every item, in input order: Python's `map`.
    ///
    /// Items are sent in chunks of `ceil(len / (4 × processes))`, Python's rule
    /// (see [`Tasks::chunksize`]).
    ///
    /// # Errors
    /// The first error of any item (as for [`Pool::apply`]);
    /// [`Error::InputPanicked`] if the input iterator panics.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let words = pool.map(|s: String| s.to_uppercase(), ["a", "b", "c"].map(String::from))?;
    /// assert_eq!(words, ["A", "B", "C"]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map<A, R, F, I>(&self, f: F, items: I) -> Result<Vec<R>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(A) -> R + Copy,
    {
        self.tasks().map(f, items)
    }

    /// Submits a `map` and returns at once: Python's `map_async`.
    ///
    /// # Errors
    /// As for [`Pool::apply_async`], plus [`Error::InputPanicked`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let r = pool.map_async(|x: u32| x + 1, vec![1, 2, 3])?;
    /// assert_eq!(r.get()?, [2, 3, 4]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_async<A, R, F, I>(&self, f: F, items: I) -> Result<AsyncResult<Vec<R>>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(A) -> R + Copy,
    {
        self.tasks().map_async(f, items)
    }

    /// `f(*args)` for every argument tuple, in input order: Python's `starmap`.
    ///
    /// # Errors
    /// As for [`Pool::map`].
    ///
    /// # Examples
    ///
    /// ```
    /// fn divide(x: f64, y: f64) -> f64 {
    ///     x / y
    /// }
    /// let pool = shmpool::Pool::new(2)?;
    /// assert_eq!(pool.starmap(divide, [(1.0, 2.0), (9.0, 3.0)])?, [0.5, 3.0]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn starmap<Args, F, I>(&self, f: F, items: I) -> Result<Vec<F::Output>>
    where
        I: IntoIterator<Item = Args>,
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.tasks().starmap(f, items)
    }

    /// Submits a `starmap` and returns at once: Python's `starmap_async`.
    ///
    /// # Errors
    /// As for [`Pool::map_async`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let r = pool.starmap_async(|a: i32, b: i32| a - b, [(5, 3), (1, 4)])?;
    /// assert_eq!(r.get()?, [2, -3]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn starmap_async<Args, F, I>(&self, f: F, items: I) -> Result<AsyncResult<Vec<F::Output>>>
    where
        I: IntoIterator<Item = Args>,
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.tasks().starmap_async(f, items)
    }

    /// A lazy iterator over `f(x)` for each item, in input order: Python's `imap`.
    ///
    /// Items go to workers one at a time by default ([`Tasks::chunksize`] groups
    /// them), at most [`Tasks::max_in_flight`] chunks ahead of the consumer.
    ///
    /// # Errors
    /// [`Error::PoolClosed`] after `close`. Each item is a `Result` of its own.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// // An endless input: only what is consumed is ever computed.
    /// let firsts: Vec<u64> = pool
    ///     .imap(|x: u64| x * x, 0u64..)?
    ///     .take(5)
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(firsts, [0, 1, 4, 9, 16]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn imap<A, R, F, I>(&self, f: F, items: I) -> Result<Imap<R, I::IntoIter>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(A) -> R + Copy,
    {
        self.tasks().imap(f, items)
    }

    /// Like [`Pool::imap`], yielding results as they complete: Python's
    /// `imap_unordered`. Each item is yielded exactly once.
    ///
    /// # Errors
    /// As for [`Pool::imap`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let mut squares = pool
    ///     .imap_unordered(|x: u64| x * x, 0..5u64)?
    ///     .collect::<Result<Vec<_>, _>>()?;
    /// squares.sort(); // they come in completion order
    /// assert_eq!(squares, [0, 1, 4, 9, 16]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn imap_unordered<A, R, F, I>(&self, f: F, items: I) -> Result<Imap<R, I::IntoIter>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(A) -> R + Copy,
    {
        self.tasks().imap_unordered(f, items)
    }

    /// numpy's vocabulary over [`SharedArray`]s, for one operation: maps with
    /// several arrays in and out, parameters (`with`) and context arrays
    /// (`context`), index-aware, row and stencil kernels, deterministic reductions
    /// (`sum`, `dot`, `min`, `argmax`, `histogram`, `map_reduce`, ...), and the
    /// operation's options (chunk length, time limit, retries, range, cancel token).
    /// See [`Bulk`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let mut xs = shmpool::SharedArray::<u32>::filled(10_000, 1)?;
    /// pool.bulk().chunk_len(1000).for_each_mut(&mut xs, |v: &mut u32| *v += 1)?;
    /// assert!(xs.iter().all(|&v| v == 2));
    /// assert_eq!(pool.bulk().sum(&xs)?, 20_000);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn bulk(&self) -> Bulk<'_> {
        Bulk::new(&self.inner)
    }

    /// `y[i] = f(x[i])` for every element, run by the workers in place: numpy's
    /// ufunc with `out=`. Every other array operation is reached through
    /// [`Pool::bulk`]: several arrays in and out ([`Bulk::zip_map_into`]), kernels
    /// with parameters and context arrays ([`Bulk::with`], [`Bulk::context`]),
    /// reductions, and the options.
    ///
    /// `f` must be a non-capturing closure or a `fn` item: it runs in other
    /// processes, which cannot see captured values. The workers claim chunks of the
    /// arrays dynamically and run `f` over each in a tight loop that the compiler
    /// vectorizes; no element is copied or serialized.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] if the lengths differ; [`Error::KernelPanicked`]
    /// naming the chunk if `f` panics (the pool stays usable); [`Error::WorkerDied`]
    /// if a worker dies in a chunk; [`Error::PoolClosed`] after `close`. An empty
    /// array is a no-op.
    ///
    /// A panic or a death stops the map: the other workers finish the chunks they
    /// are running and claim no more, and the call returns within about a
    /// millisecond of the failure (plus the time those chunks take). Chunks not
    /// computed then are named too, as [`Error::ChunkSkipped`], in an
    /// [`Error::ChunksLost`]; [`Error::failed_ranges`] lists every range not
    /// computed. (With [`Bulk::retries`], a death does not stop the map while a retry
    /// is left.)
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
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.terminate();
    }
}
