//! Generic tasks: `apply`, `map`, `starmap` and their `_async` forms, over any
//! serializable arguments and results.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Pool;
use super::inner::lock;
use crate::error::{Error, Result};
use crate::kernel::AssertZeroSized;
use crate::result::{
    ApplySink, AsyncResult, Callbacks, Ctx, Outcome, ResultSlot, Sink, chunk_tag, untag_chunk,
};
use crate::task::{self, ChunkResult, StarFn, TaskFn};

/// Options for generic tasks: the chunk size, a time limit per task, the number of
/// chunks `imap` keeps in flight, and a progress bar. Made by [`Pool::tasks`]; the
/// `Pool` methods of the same names use the defaults.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let pool = shmpool::Pool::new(2)?;
/// let squares = pool
///     .tasks()
///     .chunksize(10)
///     .timeout(Duration::from_secs(30))
///     .map(|x: u64| x * x, 0..100u64)?;
/// assert_eq!(squares[9], 81);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
#[must_use = "Tasks does nothing until one of its methods runs"]
pub struct Tasks<'p> {
    pub(super) pool: &'p Pool,
    pub(super) chunksize: Option<usize>,
    pub(super) timeout: Option<Duration>,
    pub(super) in_flight: Option<usize>,
    #[cfg_attr(not(feature = "progress"), allow(dead_code))]
    pub(super) progress: bool,
}

impl Pool {
    /// Options for generic tasks (chunk size, time limit, in-flight bound, progress).
    pub fn tasks(&self) -> Tasks<'_> {
        Tasks {
            pool: self,
            chunksize: None,
            timeout: None,
            in_flight: None,
            progress: false,
        }
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
    pub fn apply_async<Args, F>(&self, f: F, args: Args) -> Result<AsyncResult<F::Output>>
    where
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.tasks().apply_async(f, args)
    }

    /// [`Pool::apply_async`] with a `callback` and an `error_callback`.
    ///
    /// # Errors
    /// As for [`Pool::apply_async`].
    pub fn apply_async_with<Args, F>(
        &self,
        f: F,
        args: Args,
        callbacks: Callbacks<F::Output>,
    ) -> Result<AsyncResult<F::Output>>
    where
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.tasks().apply_async_with(f, args, callbacks)
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
    pub fn map_async<A, R, F, I>(&self, f: F, items: I) -> Result<AsyncResult<Vec<R>>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(A) -> R + Copy,
    {
        self.tasks().map_async(f, items)
    }

    /// [`Pool::map_async`] with callbacks, which receive the whole result list.
    ///
    /// # Errors
    /// As for [`Pool::map_async`].
    pub fn map_async_with<A, R, F, I>(
        &self,
        f: F,
        items: I,
        callbacks: Callbacks<Vec<R>>,
    ) -> Result<AsyncResult<Vec<R>>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(A) -> R + Copy,
    {
        self.tasks().map_async_with(f, items, callbacks)
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
    pub fn starmap_async<Args, F, I>(&self, f: F, items: I) -> Result<AsyncResult<Vec<F::Output>>>
    where
        I: IntoIterator<Item = Args>,
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.tasks().starmap_async(f, items)
    }

    /// [`Pool::starmap_async`] with callbacks.
    ///
    /// # Errors
    /// As for [`Pool::map_async`].
    pub fn starmap_async_with<Args, F, I>(
        &self,
        f: F,
        items: I,
        callbacks: Callbacks<Vec<F::Output>>,
    ) -> Result<AsyncResult<Vec<F::Output>>>
    where
        I: IntoIterator<Item = Args>,
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.tasks().starmap_async_with(f, items, callbacks)
    }
}

impl<'p> Tasks<'p> {
    /// Items per task for `map`, `starmap` and the `imap`s (Python's `chunksize`).
    /// Default: `ceil(len / (4 × processes))` for `map` and `starmap`, 1 for the
    /// `imap`s. Zero is refused with [`Error::ZeroChunkLen`].
    pub fn chunksize(mut self, n: usize) -> Self {
        self.chunksize = Some(n);
        self
    }

    /// Kill a worker whose task (chunk) runs longer than `d`, and fail that task
    /// with [`Error::Timeout`]. Overrides the pool's default
    /// ([`crate::PoolBuilder::task_timeout`]).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// The most chunks an `imap` keeps submitted and unread (default 4 × processes).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.in_flight = Some(n.max(1));
        self
    }

    /// Show a progress bar on standard error for `map` and `starmap` (the `imap`s
    /// have [`crate::Imap::progress`]).
    #[cfg(feature = "progress")]
    pub fn progress(mut self, show: bool) -> Self {
        self.progress = show;
        self
    }

    /// See [`Pool::apply`].
    ///
    /// # Errors
    /// As for [`Pool::apply`].
    pub fn apply<Args, F>(self, f: F, args: Args) -> Result<F::Output>
    where
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.apply_async(f, args)?.get()
    }

    /// See [`Pool::apply_async`].
    ///
    /// # Errors
    /// As for [`Pool::apply_async`].
    pub fn apply_async<Args, F>(self, f: F, args: Args) -> Result<AsyncResult<F::Output>>
    where
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.apply_async_with(f, args, Callbacks::new())
    }

    /// See [`Pool::apply_async_with`].
    ///
    /// # Errors
    /// As for [`Pool::apply_async`].
    pub fn apply_async_with<Args, F>(
        self,
        f: F,
        args: Args,
        callbacks: Callbacks<F::Output>,
    ) -> Result<AsyncResult<F::Output>>
    where
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        let () = AssertZeroSized::<F>::OK;
        let _ = f;
        let inner = self.pool.arc();
        let bytes = task::encode(&args).map_err(Error::Codec)?;
        let slot = ResultSlot::new(callbacks);
        let code: TaskFn = task::apply_trampoline::<Args, F>;
        let sink: Arc<dyn Sink> = Arc::new(ApplySink {
            slot: Arc::clone(&slot),
        });
        inner.submit_task(code, &bytes, &sink, 0, self.timeout)?;
        Ok(AsyncResult::new(slot, Arc::clone(inner)))
    }

    /// See [`Pool::map`].
    ///
    /// # Errors
    /// As for [`Pool::map`].
    pub fn map<A, R, F, I>(self, f: F, items: I) -> Result<Vec<R>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(A) -> R + Copy,
    {
        self.map_async(f, items)?.get()
    }

    /// See [`Pool::map_async`].
    ///
    /// # Errors
    /// As for [`Pool::map_async`].
    pub fn map_async<A, R, F, I>(self, f: F, items: I) -> Result<AsyncResult<Vec<R>>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(A) -> R + Copy,
    {
        self.map_async_with(f, items, Callbacks::new())
    }

    /// See [`Pool::map_async_with`].
    ///
    /// # Errors
    /// As for [`Pool::map_async`].
    pub fn map_async_with<A, R, F, I>(
        self,
        f: F,
        items: I,
        callbacks: Callbacks<Vec<R>>,
    ) -> Result<AsyncResult<Vec<R>>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(A) -> R + Copy,
    {
        let () = AssertZeroSized::<F>::OK;
        let _ = f;
        self.submit_chunks(task::map_trampoline::<A, R, F>, items, callbacks)
    }

    /// See [`Pool::starmap`].
    ///
    /// # Errors
    /// As for [`Pool::map`].
    pub fn starmap<Args, F, I>(self, f: F, items: I) -> Result<Vec<F::Output>>
    where
        I: IntoIterator<Item = Args>,
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.starmap_async(f, items)?.get()
    }

    /// See [`Pool::starmap_async`].
    ///
    /// # Errors
    /// As for [`Pool::map_async`].
    pub fn starmap_async<Args, F, I>(self, f: F, items: I) -> Result<AsyncResult<Vec<F::Output>>>
    where
        I: IntoIterator<Item = Args>,
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.starmap_async_with(f, items, Callbacks::new())
    }

    /// See [`Pool::starmap_async_with`].
    ///
    /// # Errors
    /// As for [`Pool::map_async`].
    pub fn starmap_async_with<Args, F, I>(
        self,
        f: F,
        items: I,
        callbacks: Callbacks<Vec<F::Output>>,
    ) -> Result<AsyncResult<Vec<F::Output>>>
    where
        I: IntoIterator<Item = Args>,
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        let () = AssertZeroSized::<F>::OK;
        let _ = f;
        self.submit_chunks(task::starmap_trampoline::<Args, F>, items, callbacks)
    }

    /// Collects the input, splits it into chunks, and submits one task per chunk,
    /// all feeding one aggregate result.
    fn submit_chunks<A, R, I>(
        self,
        code: TaskFn,
        items: I,
        callbacks: Callbacks<Vec<R>>,
    ) -> Result<AsyncResult<Vec<R>>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let inner = self.pool.arc();
        inner.check_open()?;
        let items = collect_input(items)?;
        let chunksize = match self.chunksize {
            Some(0) => return Err(Error::ZeroChunkLen),
            Some(n) => n,
            None => items.len().div_ceil(4 * inner.processes).max(1),
        };
        let slot = ResultSlot::new(callbacks);
        let chunks = items.len().div_ceil(chunksize);
        let aggregate = Arc::new(Aggregate {
            state: Mutex::new(AggregateState {
                parts: (0..chunks).map(|_| None).collect(),
                remaining: chunks,
                done: false,
            }),
            slot: Arc::clone(&slot),
            progress: self.progress_bar(items.len()),
        });
        if chunks == 0 {
            aggregate.finish_empty(inner);
        }
        let sink: Arc<dyn Sink> = aggregate;
        for (index, chunk) in items.chunks(chunksize).enumerate() {
            let bytes = task::encode_items(chunk).map_err(Error::Codec)?;
            let tag = chunk_tag(index, chunk.len());
            inner.submit_task(code, &bytes, &sink, tag, self.timeout)?;
        }
        Ok(AsyncResult::new(slot, Arc::clone(inner)))
    }

    #[cfg(feature = "progress")]
    fn progress_bar(&self, len: usize) -> Option<indicatif::ProgressBar> {
        self.progress
            .then(|| crate::progress::bar(Some(len as u64)))
    }

    #[cfg(not(feature = "progress"))]
    fn progress_bar(&self, _len: usize) -> Option<()> {
        None
    }
}

/// Drains an input iterator, turning a panic inside it into an error.
pub(crate) fn collect_input<I: IntoIterator>(items: I) -> Result<Vec<I::Item>> {
    let mut iter = items.into_iter();
    let mut out = Vec::with_capacity(iter.size_hint().0);
    loop {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| iter.next())) {
            Ok(Some(item)) => out.push(item),
            Ok(None) => return Ok(out),
            Err(payload) => {
                return Err(Error::InputPanicked {
                    message: crate::unwind::payload_message(&*payload),
                });
            }
        }
    }
}

#[cfg(feature = "progress")]
type Bar = indicatif::ProgressBar;
#[cfg(not(feature = "progress"))]
type Bar = ();

struct AggregateState<R> {
    parts: Vec<Option<Vec<R>>>,
    remaining: usize,
    done: bool,
}

/// Collects the chunk results of one `map` into the list its `AsyncResult` gets.
struct Aggregate<R> {
    state: Mutex<AggregateState<R>>,
    slot: Arc<ResultSlot<Vec<R>>>,
    #[cfg_attr(not(feature = "progress"), allow(dead_code))]
    progress: Option<Bar>,
}

impl<R: Send + 'static> Aggregate<R> {
    fn finish_empty(&self, inner: &super::PoolInner) {
        lock(&self.state).done = true;
        self.slot.deliver(Ok(Vec::new()), &inner.ctx());
    }
}

/// Each chunk of a `map` or `starmap` completes into the map's aggregate; the tag
/// says which chunk, and how many items it holds.
impl<R: DeserializeOwned + Send + 'static> Sink for Aggregate<R> {
    fn complete(&self, tag: u64, outcome: Outcome<'_>, ctx: &Ctx<'_>) {
        let (index, len) = untag_chunk(tag);
        // The first failed item fails the whole map, as in Python.
        let result = decode_values::<R>(outcome, len);
        let agg = self;
        #[cfg(feature = "progress")]
        if let Some(bar) = &agg.progress {
            bar.inc(len as u64);
        }
        let mut state = lock(&agg.state);
        if state.done {
            return;
        }
        match result {
            Err(e) => {
                state.done = true;
                drop(state);
                agg.slot.deliver(Err(e), ctx);
            }
            Ok(values) => {
                state.parts[index] = Some(values);
                state.remaining -= 1;
                if state.remaining == 0 {
                    state.done = true;
                    let parts = std::mem::take(&mut state.parts);
                    drop(state);
                    let total = parts.iter().flatten().map(Vec::len).sum();
                    let mut all: Vec<R> = Vec::with_capacity(total);
                    for part in parts.into_iter().flatten() {
                        all.extend(part);
                    }
                    #[cfg(feature = "progress")]
                    if let Some(bar) = &agg.progress {
                        bar.finish();
                    }
                    agg.slot.deliver(Ok(all), ctx);
                }
            }
        }
    }
}

/// Turns a chunk's outcome into its values, or the error of its first failed item.
fn decode_values<R: DeserializeOwned>(outcome: Outcome<'_>, len: usize) -> Result<Vec<R>> {
    match outcome {
        Outcome::Ok(bytes) => {
            let mut chunk: ChunkResult<R> =
                task::decode(bytes, "the chunk's results").map_err(Error::Codec)?;
            if let Some((_, report)) = chunk.panics.drain(..).next() {
                return Err(report.into());
            }
            if chunk.values.len() != len {
                return Err(Error::Codec(format!(
                    "decode the chunk's results: {} results for {len} items",
                    chunk.values.len()
                )));
            }
            Ok(chunk.values)
        }
        Outcome::Panicked(report) => Err(report.into()),
        Outcome::Failed(e) => Err(e),
    }
}

/// Turns a chunk's outcome into one result per item.
pub(crate) fn decode_chunk<R: DeserializeOwned>(
    outcome: Outcome<'_>,
    len: usize,
) -> Result<Vec<Result<R>>> {
    match outcome {
        Outcome::Ok(bytes) => {
            let chunk: ChunkResult<R> =
                task::decode(bytes, "the chunk's results").map_err(Error::Codec)?;
            if chunk.values.len() + chunk.panics.len() != len {
                return Err(Error::Codec(format!(
                    "decode the chunk's results: {} results for {len} items",
                    chunk.values.len() + chunk.panics.len()
                )));
            }
            let mut panics = chunk.panics.into_iter().peekable();
            let mut values = chunk.values.into_iter();
            let mut out = Vec::with_capacity(len);
            for i in 0..len {
                if panics.peek().is_some_and(|(at, _)| *at as usize == i) {
                    let (_, report) = panics.next().expect("peeked");
                    out.push(Err(report.into()));
                } else {
                    out.push(Ok(values.next().expect("counted")));
                }
            }
            Ok(out)
        }
        Outcome::Panicked(report) => Err(report.into()),
        Outcome::Failed(e) => Err(e),
    }
}
