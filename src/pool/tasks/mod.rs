//! Generic tasks: `apply`, `map`, `starmap` and their `_async` forms, over any
//! serializable arguments and results.

mod chunks;
mod imap;
#[cfg(feature = "progress")]
pub(crate) mod progress;
mod submit;
mod with_context;

#[cfg(feature = "mpi")]
pub(crate) use chunks::collect_input;
pub use imap::{Imap, ImapStream};
#[cfg(feature = "progress")]
pub use progress::Progress;
pub use with_context::TasksWith;

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Pool;
#[allow(unused_imports)] // named by the docs' links
use crate::error::Error;
use crate::error::Result;
use crate::kernel::AssertZeroSized;
use crate::task::async_result::{AsyncResult, Callbacks};
use crate::task::star_fn::StarFn;
use crate::task::submission::{Admission, TaskLimits};
use crate::task::trampolines;

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
    pub(super) retries: Option<u32>,
    pub(super) in_flight: Option<usize>,
    #[cfg_attr(not(feature = "progress"), allow(dead_code))]
    pub(super) progress: bool,
}

impl Pool {
    /// Options for generic tasks (chunk size, time limit, in-flight bound, progress).
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
        Tasks {
            pool: self,
            chunksize: None,
            timeout: None,
            retries: None,
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

    /// [`Pool::apply_async`] with a `callback` and an `error_callback`.
    ///
    /// # Errors
    /// As for [`Pool::apply_async`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use shmpool::{Callbacks, Pool};
    ///
    /// let pool = Pool::new(1)?;
    /// let (tx, rx) = mpsc::channel();
    /// let r = pool.apply_async_with(
    ///     |s: String| s.len(),
    ///     ("four".to_string(),),
    ///     Callbacks::new().on_success(move |n: &usize| tx.send(*n).unwrap()),
    /// )?;
    /// assert_eq!(r.get()?, 4);
    /// assert_eq!(rx.recv().unwrap(), 4);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
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

    /// [`Pool::map_async`] with callbacks, which receive the whole result list.
    ///
    /// # Errors
    /// As for [`Pool::map_async`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use shmpool::{Callbacks, Pool};
    ///
    /// let pool = Pool::new(2)?;
    /// let (tx, rx) = mpsc::channel::<u32>();
    /// let r = pool.map_async_with(
    ///     |x: u32| x * 10,
    ///     1..=3u32,
    ///     Callbacks::new().on_success(move |v: &Vec<u32>| tx.send(v.iter().sum()).unwrap()),
    /// )?;
    /// assert_eq!(r.get()?, [10, 20, 30]);
    /// assert_eq!(rx.recv().unwrap(), 60);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
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

    /// [`Pool::starmap_async`] with callbacks.
    ///
    /// # Errors
    /// As for [`Pool::map_async`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use shmpool::{Callbacks, Pool};
    ///
    /// let pool = Pool::new(2)?;
    /// let (tx, rx) = mpsc::channel();
    /// let r = pool.starmap_async_with(
    ///     |a: u8, b: u8| a.max(b),
    ///     [(1, 2), (4, 3)],
    ///     Callbacks::new().on_success(move |v: &Vec<u8>| tx.send(v.len()).unwrap()),
    /// )?;
    /// assert_eq!(r.get()?, [2, 4]);
    /// assert_eq!(rx.recv().unwrap(), 2);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{Error, Pool};
    ///
    /// let pool = Pool::new(2)?;
    /// // 100 items sent as 10 tasks of 10 items each.
    /// let doubled = pool.tasks().chunksize(10).map(|x: u32| 2 * x, 0..100u32)?;
    /// assert_eq!(doubled[99], 198);
    /// let zero = pool.tasks().chunksize(0).map(|x: u32| x, 0..1u32);
    /// assert!(matches!(zero, Err(Error::ZeroChunkLen)));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn chunksize(mut self, n: usize) -> Self {
        self.chunksize = Some(n);
        self
    }

    /// Kill a worker whose task (chunk) runs longer than `d`, and fail that task
    /// with [`Error::Timeout`]. Overrides the pool's default
    /// ([`crate::PoolBuilder::task_timeout`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = shmpool::Pool::new(1)?;
    /// let hung = pool
    ///     .tasks()
    ///     .timeout(Duration::from_millis(100))
    ///     .apply(|| std::thread::sleep(Duration::from_secs(60)), ());
    /// assert!(matches!(hung, Err(shmpool::Error::Timeout { .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// Run a task whose worker died (a crash, a kill, `exit`) again on a fresh
    /// worker, up to `n` times; the default is the pool's
    /// [`PoolBuilder::task_retries`](crate::PoolBuilder::task_retries), itself 0.
    /// For `map`, `starmap` and `imap` the unit run again is a chunk of items.
    ///
    /// The result is delivered exactly once, and [`Error::WorkerDied`] comes only
    /// after `n + 1` deaths. A timeout is not retried (the task would only run too
    /// long again), nor a panic (the worker survives it). A retried task's side
    /// effects outside its result (files, counters in shared memory) may happen more
    /// than once: retry only tasks that are safe to repeat.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(1)?;
    /// // Dies the first time it runs in a worker (the marker file is new), then works.
    /// let marker = std::env::temp_dir().join(format!("shmpool-doc-retry-{}", std::process::id()));
    /// let path = marker.to_string_lossy().into_owned();
    /// let v = pool.tasks().retries(1).apply(
    ///     |p: String| {
    ///         if std::fs::File::create_new(&p).is_ok() {
    ///             std::process::abort();
    ///         }
    ///         7
    ///     },
    ///     (path,),
    /// )?;
    /// assert_eq!(v, 7);
    /// assert_eq!(pool.stats().tasks_retried, 1);
    /// # std::fs::remove_file(marker).ok();
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = Some(n);
        self
    }

    /// The per-task limits these options give.
    pub(super) fn limits(&self) -> TaskLimits {
        TaskLimits {
            timeout: self.timeout,
            retries: self.retries,
        }
    }

    /// The most chunks an `imap` keeps submitted and unread (default 4 × processes).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// // At most two chunks are ever submitted ahead of this loop.
    /// let squares = pool
    ///     .tasks()
    ///     .max_in_flight(2)
    ///     .imap(|x: u64| x * x, 0..10u64)?
    ///     .collect::<Result<Vec<_>, _>>()?;
    /// assert_eq!(squares[3], 9);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.in_flight = Some(n.max(1));
        self
    }

    /// Show a progress bar on standard error for `map` and `starmap` (the `imap`s
    /// have [`crate::Imap::progress`]).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let ys = pool.tasks().progress(true).map(|x: u32| x + 1, 0..1000u32)?;
    /// assert_eq!(ys[999], 1000);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    #[cfg(feature = "progress")]
    pub fn progress(mut self, show: bool) -> Self {
        self.progress = show;
        self
    }

    /// See [`Pool::apply`].
    ///
    /// # Errors
    /// As for [`Pool::apply`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = shmpool::Pool::new(1)?;
    /// let n = pool
    ///     .tasks()
    ///     .timeout(Duration::from_secs(30))
    ///     .apply(|s: String| s.len(), ("hello".to_string(),))?;
    /// assert_eq!(n, 5);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = shmpool::Pool::new(1)?;
    /// let r = pool
    ///     .tasks()
    ///     .timeout(Duration::from_secs(30))
    ///     .apply_async(|a: u32, b: u32| a + b, (2, 3))?;
    /// assert_eq!(r.get()?, 5);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use std::time::Duration;
    /// use shmpool::{Callbacks, Pool};
    ///
    /// let pool = Pool::new(1)?;
    /// let (tx, rx) = mpsc::channel();
    /// let r = pool.tasks().timeout(Duration::from_secs(30)).apply_async_with(
    ///     || -> u32 { panic!("bad input") },
    ///     (),
    ///     Callbacks::new().on_error(move |e| tx.send(e.to_string()).unwrap()),
    /// )?;
    /// assert!(r.get().is_err());
    /// assert!(rx.recv().unwrap().contains("bad input"));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
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
        self.submit_apply::<Args, F>(args, callbacks, Admission::Wait)
    }

    /// See [`Pool::map`].
    ///
    /// # Errors
    /// As for [`Pool::map`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let abs = pool.tasks().chunksize(2).map(|x: i64| x.abs(), [-1, 2, -3])?;
    /// assert_eq!(abs, [1, 2, 3]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let r = pool.tasks().chunksize(50).map_async(|x: u64| x % 7, 0..100u64)?;
    /// assert_eq!(r.get()?[10], 3);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use shmpool::{Callbacks, Pool};
    ///
    /// let pool = Pool::new(2)?;
    /// let (tx, rx) = mpsc::channel();
    /// let r = pool.tasks().chunksize(2).map_async_with(
    ///     |s: String| s.len(),
    ///     ["a", "bb", "ccc"].map(String::from),
    ///     Callbacks::new().on_success(move |lens: &Vec<usize>| tx.send(lens.clone()).unwrap()),
    /// )?;
    /// assert_eq!(r.get()?, [1, 2, 3]);
    /// assert_eq!(rx.recv().unwrap(), [1, 2, 3]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
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
        self.submit_chunks(
            trampolines::map_trampoline::<A, R, F>,
            items,
            callbacks,
            Admission::Wait,
        )
    }

    /// See [`Pool::starmap`].
    ///
    /// # Errors
    /// As for [`Pool::map`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let pairs = (0..10u32).map(|i| (i, 10 - i));
    /// let sums = pool.tasks().chunksize(5).starmap(|a: u32, b: u32| a + b, pairs)?;
    /// assert!(sums.iter().all(|&s| s == 10));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let r = pool
    ///     .tasks()
    ///     .chunksize(1)
    ///     .starmap_async(|s: String, n: usize| s.repeat(n), [("ab".to_string(), 2)])?;
    /// assert_eq!(r.get()?, ["abab"]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
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
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use shmpool::{Callbacks, Pool};
    ///
    /// let pool = Pool::new(2)?;
    /// let (tx, rx) = mpsc::channel();
    /// let r = pool.tasks().chunksize(1).starmap_async_with(
    ///     |a: u32, b: u32| a / b,
    ///     [(6, 3), (1, 0)], // the second divides by zero
    ///     Callbacks::new().on_error(move |e| tx.send(e.to_string()).unwrap()),
    /// )?;
    /// assert!(matches!(r.get(), Err(shmpool::Error::TaskPanicked { .. })));
    /// assert!(rx.recv().unwrap().contains("divide by zero"));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
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
        self.submit_chunks(
            trampolines::starmap_trampoline::<Args, F>,
            items,
            callbacks,
            Admission::Wait,
        )
    }
}
