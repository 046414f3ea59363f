//! The `try_` forms of the asynchronous submissions: under
//! [`PoolBuilder::max_queued`](crate::PoolBuilder::max_queued) they never wait for
//! room, and return [`Error::QueueFull`](crate::Error::QueueFull) instead. Without a bound they are the plain
//! forms.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Pool;
use super::dispatch::Admission;
use super::tasks::Tasks;
use crate::error::Result;
use crate::kernel::AssertZeroSized;
use crate::result::{AsyncResult, Callbacks};
use crate::task::{self, StarFn};

impl Pool {
    /// [`Pool::apply_async`] that never waits for room under
    /// [`max_queued`](crate::PoolBuilder::max_queued).
    ///
    /// # Errors
    /// [`Error::QueueFull`](crate::Error::QueueFull) when the pool already holds `max_queued` unanswered
    /// tasks (nothing was submitted); otherwise as for [`Pool::apply_async`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{Error, Pool};
    ///
    /// let pool = Pool::builder().processes(1).max_queued(1).build()?;
    /// let nap = || std::thread::sleep(std::time::Duration::from_millis(200));
    /// let first = pool.try_apply_async(nap, ())?;
    /// assert!(matches!(pool.try_apply_async(nap, ()), Err(Error::QueueFull { .. })));
    /// first.get()?;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn try_apply_async<Args, F>(&self, f: F, args: Args) -> Result<AsyncResult<F::Output>>
    where
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.tasks().try_apply_async(f, args)
    }

    /// [`Pool::map_async`] that never waits for room under
    /// [`max_queued`](crate::PoolBuilder::max_queued): all of its chunks are
    /// submitted, or none.
    ///
    /// # Errors
    /// [`Error::QueueFull`](crate::Error::QueueFull) when its chunks do not all fit (a map with more chunks
    /// than `max_queued` never does: give it a larger chunk size); otherwise as for
    /// [`Pool::map_async`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{Error, Pool};
    ///
    /// let pool = Pool::builder().processes(1).max_queued(2).build()?;
    /// let r = pool.tasks().chunksize(5).try_map_async(|x: u32| x + 1, 0..10u32)?; // 2 chunks
    /// assert_eq!(r.get()?[9], 10);
    /// let too_many = pool.tasks().chunksize(1).try_map_async(|x: u32| x, 0..3u32);
    /// assert!(matches!(too_many, Err(Error::QueueFull { requested: 3, .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn try_map_async<A, R, F, I>(&self, f: F, items: I) -> Result<AsyncResult<Vec<R>>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(A) -> R + Copy,
    {
        self.tasks().try_map_async(f, items)
    }

    /// [`Pool::starmap_async`] that never waits for room under
    /// [`max_queued`](crate::PoolBuilder::max_queued): all of its chunks are
    /// submitted, or none.
    ///
    /// # Errors
    /// As for [`Pool::try_map_async`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::builder().processes(1).max_queued(8).build()?;
    /// let r = pool.try_starmap_async(|a: u32, b: u32| a * b, [(2, 3), (4, 5)])?;
    /// assert_eq!(r.get()?, [6, 20]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn try_starmap_async<Args, F, I>(
        &self,
        f: F,
        items: I,
    ) -> Result<AsyncResult<Vec<F::Output>>>
    where
        I: IntoIterator<Item = Args>,
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        self.tasks().try_starmap_async(f, items)
    }
}

impl Tasks<'_> {
    /// See [`Pool::try_apply_async`].
    ///
    /// # Errors
    /// As for [`Pool::try_apply_async`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::builder().processes(1).max_queued(4).build()?;
    /// let r = pool.tasks().retries(1).try_apply_async(|x: u8| x * 2, (21,))?;
    /// assert_eq!(r.get()?, 42);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn try_apply_async<Args, F>(self, f: F, args: Args) -> Result<AsyncResult<F::Output>>
    where
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        let () = AssertZeroSized::<F>::OK;
        let _ = f;
        self.submit_apply::<Args, F>(args, Callbacks::new(), Admission::NoWait)
    }

    /// See [`Pool::try_map_async`].
    ///
    /// # Errors
    /// As for [`Pool::try_map_async`].
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
        F: Fn(A) -> R + Copy,
    {
        let () = AssertZeroSized::<F>::OK;
        let _ = f;
        self.submit_chunks(
            task::map_trampoline::<A, R, F>,
            items,
            Callbacks::new(),
            Admission::NoWait,
        )
    }

    /// See [`Pool::try_starmap_async`].
    ///
    /// # Errors
    /// As for [`Pool::try_map_async`].
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
        F: StarFn<Args>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        let () = AssertZeroSized::<F>::OK;
        let _ = f;
        self.submit_chunks(
            task::starmap_trampoline::<Args, F>,
            items,
            Callbacks::new(),
            Admission::NoWait,
        )
    }
}
