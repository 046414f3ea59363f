//! The forms of Python's vocabulary, each written once for both environments
//! (no context, and a task context): for each of `apply`, `map` and `starmap`, the
//! blocking form, `try_` (never waits for room under `max_queued`), `_async`,
//! `try_…_async`, `_async_with` (callbacks) and `try_…_async_with`. The `imap`s
//! are in `src/pool/tasks/imap.rs`.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::submit::Keep;
use super::tasks_builder::Tasks;
#[allow(unused_imports)] // named by the docs' links
use crate::error::Error;
use crate::error::Result;
use crate::task::async_result::{AsyncResult, Callbacks};
use crate::task::star_fn::{StarFn, TaskEnv};
use crate::task::submission::Admission::{NoWait, Wait};

impl<E: TaskEnv> Tasks<'_, E> {
    /// Runs `f(*args)` in a worker (with a context, `f(&context, *args)`) and
    /// returns its result: Python's `apply`. See [`Pool::apply`](crate::Pool::apply).
    ///
    /// # Errors
    /// As for [`Pool::apply`](crate::Pool::apply), plus [`Error::Codec`] if the
    /// context cannot be serialized.
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
    /// let names = vec!["zero".to_string(), "one".to_string()];
    /// let len = pool.tasks().with(&names).apply(|n: &Vec<String>, i: usize| n[i].len(), (1,))?;
    /// assert_eq!(len, 3);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn apply<Args, F>(self, f: F, args: Args) -> Result<F::Output>
    where
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args, E>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.submit_apply(f, args, Callbacks::new(), Wait, Keep::Caller)?
            .get()
    }

    /// [`Tasks::apply`] that never waits for room under
    /// [`max_queued`](crate::PoolBuilder::max_queued): it submits its task, or fails.
    ///
    /// # Errors
    /// [`Error::QueueFull`] when the pool already holds `max_queued` unanswered
    /// tasks (nothing was submitted); otherwise as for [`Tasks::apply`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{Error, Pool};
    ///
    /// let pool = Pool::builder().processes(1).max_queued(1).build()?;
    /// let nap = |ms: u64| std::thread::sleep(std::time::Duration::from_millis(ms));
    /// let busy = pool.tasks().try_apply_async(nap, (200,))?;
    /// assert!(matches!(pool.tasks().try_apply(nap, (1,)), Err(Error::QueueFull { .. })));
    /// busy.get()?;
    /// assert_eq!(pool.tasks().try_apply(|x: u8| x + 1, (1,))?, 2);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn try_apply<Args, F>(self, f: F, args: Args) -> Result<F::Output>
    where
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args, E>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.submit_apply(f, args, Callbacks::new(), NoWait, Keep::Caller)?
            .get()
    }

    /// Submits `f(*args)` and returns at once: Python's `apply_async`. A context
    /// stays shipped until the result is decided, even if the handle is dropped
    /// first.
    ///
    /// # Errors
    /// As for [`Pool::apply_async`](crate::Pool::apply_async), plus [`Error::Codec`]
    /// if the context cannot be serialized.
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
    /// let scale = 10u32;
    /// let r = pool.tasks().with(&scale).apply_async(|s: &u32, a: u32, b: u32| s * (a + b), (2, 3))?;
    /// assert_eq!(r.get()?, 50);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn apply_async<Args, F>(self, f: F, args: Args) -> Result<AsyncResult<F::Output>>
    where
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args, E>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.apply_async_with(f, args, Callbacks::new())
    }

    /// [`Tasks::apply_async`] that never waits for room under
    /// [`max_queued`](crate::PoolBuilder::max_queued).
    ///
    /// # Errors
    /// [`Error::QueueFull`] when the pool already holds `max_queued` unanswered
    /// tasks (nothing was submitted); otherwise as for [`Tasks::apply_async`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{Error, Pool};
    ///
    /// let pool = Pool::builder().processes(1).max_queued(1).build()?;
    /// let nap = || std::thread::sleep(std::time::Duration::from_millis(200));
    /// let first = pool.tasks().try_apply_async(nap, ())?;
    /// assert!(matches!(pool.tasks().try_apply_async(nap, ()), Err(Error::QueueFull { .. })));
    /// first.get()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn try_apply_async<Args, F>(self, f: F, args: Args) -> Result<AsyncResult<F::Output>>
    where
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args, E>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.try_apply_async_with(f, args, Callbacks::new())
    }

    /// [`Tasks::apply_async`] with a `callback` and an `error_callback`
    /// ([`Callbacks`]).
    ///
    /// # Errors
    /// As for [`Tasks::apply_async`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use shmpool::{Callbacks, Pool};
    ///
    /// let pool = Pool::new(1)?;
    /// let (tx, rx) = mpsc::channel();
    /// let r = pool.tasks().apply_async_with(
    ///     |s: String| s.len(),
    ///     ("four".to_string(),),
    ///     Callbacks::new().on_success(move |n: &usize| tx.send(*n).unwrap()),
    /// )?;
    /// assert_eq!(r.get()?, 4);
    /// assert_eq!(rx.recv().unwrap(), 4);
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
        F: StarFn<Args, E>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.submit_apply(f, args, callbacks, Wait, Keep::Callbacks)
            .map(|s| s.result)
    }

    /// [`Tasks::apply_async_with`] that never waits for room under
    /// [`max_queued`](crate::PoolBuilder::max_queued).
    ///
    /// # Errors
    /// As for [`Tasks::try_apply_async`]; when the task is refused, no callback
    /// runs.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use shmpool::{Callbacks, Pool};
    ///
    /// let pool = Pool::builder().processes(1).max_queued(4).build()?;
    /// let (tx, rx) = mpsc::channel();
    /// let r = pool.tasks().try_apply_async_with(
    ///     || -> u32 { panic!("bad input") },
    ///     (),
    ///     Callbacks::new().on_error(move |e| tx.send(e.to_string()).unwrap()),
    /// )?;
    /// assert!(r.get().is_err());
    /// assert!(rx.recv().unwrap().contains("bad input"));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn try_apply_async_with<Args, F>(
        self,
        f: F,
        args: Args,
        callbacks: Callbacks<F::Output>,
    ) -> Result<AsyncResult<F::Output>>
    where
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args, E>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.submit_apply(f, args, callbacks, NoWait, Keep::Callbacks)
            .map(|s| s.result)
    }

    /// `f(x)` (with a context, `f(&context, x)`) for every item, in input order:
    /// Python's `map`. See [`Pool::map`](crate::Pool::map).
    ///
    /// # Errors
    /// As for [`Pool::map`](crate::Pool::map), plus [`Error::Codec`] if the context
    /// cannot be serialized.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let abs = pool.tasks().chunksize(2).map(|x: i64| x.abs(), [-1, 2, -3])?;
    /// assert_eq!(abs, [1, 2, 3]);
    /// let weights = vec![0.5f64, 2.0];
    /// let scaled = pool.tasks().with(&weights).map(|w: &Vec<f64>, x: f64| w[1] * x, [1.0, 3.0])?;
    /// assert_eq!(scaled, [2.0, 6.0]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map<A, R, F, I>(self, f: F, items: I) -> Result<Vec<R>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: StarFn<(A,), E, Output = R>,
    {
        self.submit_map(f, items, Callbacks::new(), Wait, Keep::Caller)?
            .get()
    }

    /// [`Tasks::map`] that never waits for room under
    /// [`max_queued`](crate::PoolBuilder::max_queued): all of its chunks are
    /// submitted, or none.
    ///
    /// # Errors
    /// [`Error::QueueFull`] when its chunks do not all fit (a map with more chunks
    /// than `max_queued` never does: give it a larger chunk size); otherwise as for
    /// [`Tasks::map`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{Error, Pool};
    ///
    /// let pool = Pool::builder().processes(1).max_queued(2).build()?;
    /// let out = pool.tasks().chunksize(5).try_map(|x: u32| x + 1, 0..10u32)?; // 2 chunks
    /// assert_eq!(out[9], 10);
    /// let too_many = pool.tasks().chunksize(1).try_map(|x: u32| x, 0..3u32);
    /// assert!(matches!(too_many, Err(Error::QueueFull { requested: 3, .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn try_map<A, R, F, I>(self, f: F, items: I) -> Result<Vec<R>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: StarFn<(A,), E, Output = R>,
    {
        self.submit_map(f, items, Callbacks::new(), NoWait, Keep::Caller)?
            .get()
    }

    /// Submits a `map` and returns at once: Python's `map_async`. A context stays
    /// shipped until the result is decided (answered, failed or cancelled), even if
    /// the handle is dropped first.
    ///
    /// # Errors
    /// As for [`Pool::map_async`](crate::Pool::map_async), plus [`Error::Codec`] if
    /// the context cannot be serialized.
    ///
    /// # Examples
    ///
    /// ```
    /// # use std::future::IntoFuture;
    /// let pool = shmpool::Pool::new(2)?;
    /// let r = pool.tasks().chunksize(50).map_async(|x: u64| x % 7, 0..100u64)?;
    /// assert_eq!(r.get()?[10], 3);
    /// let scale = vec![3u64];
    /// let r = pool.tasks().with(&scale).map_async(|s: &Vec<u64>, x: u64| s[0] * x, 0..4u64)?;
    /// assert_eq!(futures::executor::block_on(r.into_future())?, [0, 3, 6, 9]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_async<A, R, F, I>(self, f: F, items: I) -> Result<AsyncResult<Vec<R>>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: StarFn<(A,), E, Output = R>,
    {
        self.map_async_with(f, items, Callbacks::new())
    }

    /// [`Tasks::map_async`] that never waits for room under
    /// [`max_queued`](crate::PoolBuilder::max_queued): all of its chunks are
    /// submitted, or none.
    ///
    /// # Errors
    /// As for [`Tasks::try_map`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::builder().processes(1).max_queued(4).build()?;
    /// let r = pool.tasks().chunksize(50).try_map_async(|x: u64| x * x, 0..100u64)?;
    /// assert_eq!(r.get()?[10], 100);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn try_map_async<A, R, F, I>(self, f: F, items: I) -> Result<AsyncResult<Vec<R>>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: StarFn<(A,), E, Output = R>,
    {
        self.try_map_async_with(f, items, Callbacks::new())
    }

    /// [`Tasks::map_async`] with callbacks, which receive the whole result list.
    ///
    /// # Errors
    /// As for [`Tasks::map_async`].
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
        F: StarFn<(A,), E, Output = R>,
    {
        self.submit_map(f, items, callbacks, Wait, Keep::Callbacks)
            .map(|s| s.result)
    }

    /// [`Tasks::map_async_with`] that never waits for room under
    /// [`max_queued`](crate::PoolBuilder::max_queued): all of its chunks are
    /// submitted, or none.
    ///
    /// # Errors
    /// As for [`Tasks::try_map`]; when the map is refused, no callback runs.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use shmpool::{Callbacks, Pool};
    ///
    /// let pool = Pool::builder().processes(1).max_queued(8).build()?;
    /// let (tx, rx) = mpsc::channel::<u32>();
    /// let r = pool.tasks().try_map_async_with(
    ///     |x: u32| x * 10,
    ///     1..=3u32,
    ///     Callbacks::new().on_success(move |v: &Vec<u32>| tx.send(v.iter().sum()).unwrap()),
    /// )?;
    /// assert_eq!(r.get()?, [10, 20, 30]);
    /// assert_eq!(rx.recv().unwrap(), 60);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn try_map_async_with<A, R, F, I>(
        self,
        f: F,
        items: I,
        callbacks: Callbacks<Vec<R>>,
    ) -> Result<AsyncResult<Vec<R>>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: StarFn<(A,), E, Output = R>,
    {
        self.submit_map(f, items, callbacks, NoWait, Keep::Callbacks)
            .map(|s| s.result)
    }

    /// `f(*args)` (with a context, `f(&context, *args)`) for every argument tuple, in
    /// input order: Python's `starmap`. See [`Pool::starmap`](crate::Pool::starmap).
    ///
    /// # Errors
    /// As for [`Tasks::map`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let pairs = (0..10u32).map(|i| (i, 10 - i));
    /// let sums = pool.tasks().chunksize(5).starmap(|a: u32, b: u32| a + b, pairs)?;
    /// assert!(sums.iter().all(|&s| s == 10));
    /// let weights = vec![0.5f64, 2.0];
    /// let out = pool
    ///     .tasks()
    ///     .with(&weights)
    ///     .starmap(|w: &Vec<f64>, a: f64, b: f64| w[0] * a + w[1] * b, [(2.0, 1.0), (4.0, 0.5)])?;
    /// assert_eq!(out, [3.0, 3.0]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn starmap<Args, F, I>(self, f: F, items: I) -> Result<Vec<F::Output>>
    where
        I: IntoIterator<Item = Args>,
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args, E>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.submit_starmap(f, items, Callbacks::new(), Wait, Keep::Caller)?
            .get()
    }

    /// [`Tasks::starmap`] that never waits for room under
    /// [`max_queued`](crate::PoolBuilder::max_queued): all of its chunks are
    /// submitted, or none.
    ///
    /// # Errors
    /// As for [`Tasks::try_map`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::builder().processes(1).max_queued(8).build()?;
    /// let products = pool.tasks().try_starmap(|a: u32, b: u32| a * b, [(2, 3), (4, 5)])?;
    /// assert_eq!(products, [6, 20]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn try_starmap<Args, F, I>(self, f: F, items: I) -> Result<Vec<F::Output>>
    where
        I: IntoIterator<Item = Args>,
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args, E>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.submit_starmap(f, items, Callbacks::new(), NoWait, Keep::Caller)?
            .get()
    }

    /// Submits a `starmap` and returns at once: Python's `starmap_async`.
    ///
    /// # Errors
    /// As for [`Tasks::map_async`].
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
        F: StarFn<Args, E>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.starmap_async_with(f, items, Callbacks::new())
    }

    /// [`Tasks::starmap_async`] that never waits for room under
    /// [`max_queued`](crate::PoolBuilder::max_queued): all of its chunks are
    /// submitted, or none.
    ///
    /// # Errors
    /// As for [`Tasks::try_map`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::builder().processes(1).max_queued(4).build()?;
    /// let r = pool.tasks().chunksize(2).try_starmap_async(|a: i32, b: i32| a - b, [(5, 3), (1, 1)])?;
    /// assert_eq!(r.get()?, [2, 0]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn try_starmap_async<Args, F, I>(
        self,
        f: F,
        items: I,
    ) -> Result<AsyncResult<Vec<F::Output>>>
    where
        I: IntoIterator<Item = Args>,
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args, E>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.try_starmap_async_with(f, items, Callbacks::new())
    }

    /// [`Tasks::starmap_async`] with callbacks.
    ///
    /// # Errors
    /// As for [`Tasks::map_async`].
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
        F: StarFn<Args, E>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.submit_starmap(f, items, callbacks, Wait, Keep::Callbacks)
            .map(|s| s.result)
    }

    /// [`Tasks::starmap_async_with`] that never waits for room under
    /// [`max_queued`](crate::PoolBuilder::max_queued): all of its chunks are
    /// submitted, or none.
    ///
    /// # Errors
    /// As for [`Tasks::try_map`]; when the starmap is refused, no callback runs.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use shmpool::{Callbacks, Pool};
    ///
    /// let pool = Pool::builder().processes(1).max_queued(8).build()?;
    /// let (tx, rx) = mpsc::channel();
    /// let base = 100u8;
    /// let r = pool.tasks().with(&base).try_starmap_async_with(
    ///     |b: &u8, x: u8, y: u8| b + x.max(y),
    ///     [(1, 2), (4, 3)],
    ///     Callbacks::new().on_success(move |v: &Vec<u8>| tx.send(v.len()).unwrap()),
    /// )?;
    /// assert_eq!(r.get()?, [102, 104]);
    /// assert_eq!(rx.recv().unwrap(), 2);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn try_starmap_async_with<Args, F, I>(
        self,
        f: F,
        items: I,
        callbacks: Callbacks<Vec<F::Output>>,
    ) -> Result<AsyncResult<Vec<F::Output>>>
    where
        I: IntoIterator<Item = Args>,
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args, E>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.submit_starmap(f, items, callbacks, NoWait, Keep::Callbacks)
            .map(|s| s.result)
    }
}
