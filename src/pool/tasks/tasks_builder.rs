//! [`Tasks`]: the options of one call of Python's vocabulary, and what its
//! function receives first (nothing, or a task context).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::shipment::{self, Shipment};
#[allow(unused_imports)] // named by the docs' links
use crate::error::Error;
use crate::error::Result;
use crate::pool::inner::PoolInner;
use crate::task::star_fn::{Context, TaskEnv};
use crate::task::submission::TaskLimits;

/// The options of one call of Python's vocabulary (`apply`, `map`, `starmap`,
/// `imap`, each in its blocking, `try_`, `_async` and `_async_with` forms), made
/// by [`Pool::tasks`](crate::Pool::tasks): the chunk size, a time limit per task,
/// retries, how many chunks an `imap` keeps in flight, a progress bar; and what the
/// function receives before its arguments, `E`:
///
/// | `E` | made by | the function |
/// |---|---|---|
/// | `()` | `pool.tasks()` | takes its arguments alone: `\|x: u64\| x * x` |
/// | [`Context<C>`] | `.with(&context)` | takes `&C` first: `\|c: &C, x: u64\| ...` |
///
/// Every form exists for both. Arguments follow Python's: `apply`'s are a tuple,
/// spread into the function's parameters (`(x,)` for one, `()` for none), as are
/// each of `starmap`'s items; `map`'s and `imap`'s items are passed whole.
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
/// let offset = 1000u64;
/// let shifted = pool.tasks().with(&offset).map(|o: &u64, x: u64| o + x, 0..3u64)?;
/// assert_eq!(shifted, [1000, 1001, 1002]);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[must_use = "Tasks does nothing until one of its methods runs"]
pub struct Tasks<'p, E: TaskEnv = ()> {
    pub(super) inner: &'p Arc<PoolInner>,
    pub(super) options: TaskOptions,
    /// The context (for `Context<C>`), shipped when the call runs.
    context: E::Borrowed<'p>,
}

/// The options a caller set on a call.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TaskOptions {
    pub chunksize: Option<usize>,
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub in_flight: Option<usize>,
    #[cfg_attr(not(feature = "progress"), allow(dead_code))]
    pub progress: bool,
}

// `Copy`, as `Bulk` is: one set of options can run several calls.
impl<E: TaskEnv> Clone for Tasks<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E: TaskEnv> Copy for Tasks<'_, E> {}

impl<E: TaskEnv> std::fmt::Debug for Tasks<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tasks")
            .field("options", &self.options)
            .field("context", &std::any::type_name::<E::Value>())
            .finish()
    }
}

impl<'p> Tasks<'p> {
    /// Options for generic tasks on the pool `inner`, with the defaults.
    pub(crate) fn new(inner: &'p Arc<PoolInner>) -> Self {
        Tasks {
            inner,
            options: TaskOptions::default(),
            context: (),
        }
    }

    /// Hands `context` to every task of the call by reference: the function then
    /// takes `&C` first, as `functools.partial(f, context)` does in Python.
    ///
    /// The context is serialized once per call, into shared memory, and each worker
    /// decodes it once, the first time one of the call's tasks reaches it: a 100 MB
    /// lookup table costs one decode per worker, not one transfer per task or chunk.
    /// A worker keeps the two most recent contexts it decoded. It stays shipped
    /// until the call is answered: a blocking call holds it, an [`Imap`](crate::Imap)
    /// keeps it until it is dropped, and an `_async` call's result keeps it until the
    /// result is decided, even if the handle is dropped first.
    ///
    /// # Errors
    /// The call fails with [`Error::Codec`] if the context cannot be serialized, and
    /// its tasks with [`Error::Codec`] if a worker cannot deserialize it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::collections::HashMap;
    ///
    /// let pool = shmpool::Pool::new(2)?;
    /// let table: HashMap<u64, String> = (0..100).map(|i| (i, format!("#{i}"))).collect();
    /// let names = pool
    ///     .tasks()
    ///     .with(&table)
    ///     .map(|t: &HashMap<u64, String>, k: u64| t[&k].clone(), [3, 14, 15])?;
    /// assert_eq!(names, ["#3", "#14", "#15"]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn with<'a, C>(self, context: &'a C) -> Tasks<'a, Context<C>>
    where
        'p: 'a,
        C: Serialize + DeserializeOwned + 'static,
    {
        Tasks {
            inner: self.inner,
            options: self.options,
            context,
        }
    }
}

impl<E: TaskEnv> Tasks<'_, E> {
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
        self.options.chunksize = Some(n);
        self
    }

    /// Kill a worker whose task (chunk) runs longer than `d`, and fail that task
    /// with [`Error::Timeout`]. Overrides the pool's default
    /// ([`PoolBuilder::task_timeout`](crate::PoolBuilder::task_timeout)).
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
        self.options.timeout = Some(d);
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
        self.options.retries = Some(n);
        self
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
        self.options.in_flight = Some(n.max(1));
        self
    }

    /// Show a progress bar on standard error for `map` and `starmap` (the `imap`s
    /// have [`Imap::progress`](crate::Imap::progress)).
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
        self.options.progress = show;
        self
    }

    /// The per-task limits these options give.
    pub(super) fn limits(&self) -> TaskLimits {
        TaskLimits {
            timeout: self.options.timeout,
            retries: self.options.retries,
        }
    }

    /// Ships the context, if the call has one, for as long as the returned
    /// shipment lives; `None` for tasks without a context.
    pub(super) fn ship(&self) -> Result<Option<Arc<Shipment>>> {
        match E::encode(self.context) {
            None => Ok(None),
            Some(encoded) => {
                self.inner.check_open()?;
                shipment::ship(self.inner, &encoded?).map(|s| Some(Arc::new(s)))
            }
        }
    }
}
