//! Submitting generic tasks: one `apply` task, or the chunks of a `map` into one
//! aggregate result, admitted under
//! [`PoolBuilder::max_queued`](crate::PoolBuilder::max_queued) as the caller asks.
//! The `try_` forms, here too, never wait for room and return
//! [`Error::QueueFull`](crate::Error::QueueFull) instead; without a bound they are
//! the plain forms.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Pool;
use super::Tasks;
use super::chunks::{Aggregate, ChunkSizes, collect_input};
use crate::error::{CodecRole, Error, Result};
use crate::kernel::AssertZeroSized;
use crate::task::async_result::{ApplySink, AsyncResult, Callbacks, ResultSlot};
use crate::task::codec;
use crate::task::sink::Sink;
use crate::task::star_fn::StarFn;
use crate::task::submission::Admission;
use crate::task::trampolines::{self, TaskFn};

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
            trampolines::map_trampoline::<A, R, F>,
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
            trampolines::starmap_trampoline::<Args, F>,
            items,
            Callbacks::new(),
            Admission::NoWait,
        )
    }
}

impl Tasks<'_> {
    /// Submits one `apply` task, admitted as `how` says.
    pub(super) fn submit_apply<Args, F>(
        self,
        args: Args,
        callbacks: Callbacks<F::Output>,
        how: Admission,
    ) -> Result<AsyncResult<F::Output>>
    where
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        let inner = self.pool.arc();
        let bytes = codec::encode(&args, CodecRole::Argument)?;
        let slot = ResultSlot::new(callbacks);
        let code: TaskFn = trampolines::apply_trampoline::<Args, F>;
        let sink: Arc<dyn Sink> = Arc::new(ApplySink {
            slot: Arc::clone(&slot),
        });
        let ids = inner.delivery.new_task_ids(1);
        let id = ids.start;
        inner.submit_task(id, code, &bytes, &sink, 0, self.limits(), how)?;
        Ok(AsyncResult::new(
            slot,
            inner.clone(),
            ids,
            crate::error::Work::Task(id),
        ))
    }

    /// Collects the input, splits it into chunks, and submits one task per chunk,
    /// all feeding one aggregate result. With [`Admission::NoWait`] all chunks are
    /// admitted at once, or none.
    pub(super) fn submit_chunks<A, R, I>(
        self,
        code: TaskFn,
        items: I,
        callbacks: Callbacks<Vec<R>>,
        how: Admission,
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
            None => items.len().div_ceil(4 * inner.settings.processes).max(1),
        };
        let slot = ResultSlot::new(callbacks);
        let aggregate = Arc::new(Aggregate::new(
            ChunkSizes::new(chunksize, items.len()),
            Arc::clone(&slot),
            self.progress_bar(items.len()),
        ));
        if items.is_empty() {
            aggregate.finish_empty(inner);
        }
        let sink: Arc<dyn Sink> = aggregate;
        let chunks = items.len().div_ceil(chunksize);
        let how = match how {
            Admission::NoWait => {
                inner.admit(chunks, how)?;
                Admission::Admitted
            }
            other => other,
        };
        let ids = inner.delivery.new_task_ids(chunks);
        let handle = AsyncResult::new(
            slot,
            inner.clone(),
            ids.clone(),
            crate::error::Work::Items(0..items.len()),
        );
        for ((index, chunk), id) in items.chunks(chunksize).enumerate().zip(ids.clone()) {
            // Admissions not used when a chunk fails: its own (when it never reached
            // `submit_task`, which uses or gives back its own) and the later chunks'.
            let unused = |own: u64| {
                if how == Admission::Admitted {
                    inner
                        .delivery
                        .pending()
                        .unadmit((ids.end - id - 1 + own) as usize);
                }
            };
            let bytes = match codec::encode_items(chunk, CodecRole::Argument) {
                Ok(bytes) => bytes,
                Err(e) => {
                    unused(1);
                    // Chunks submitted before this one would run for nobody.
                    handle.cancel();
                    return Err(e.into());
                }
            };
            // The tag is the chunk's index; the sink knows every chunk's items.
            let limits = self.limits();
            if let Err(e) = inner.submit_task(id, code, &bytes, &sink, index as u64, limits, how) {
                unused(0);
                handle.cancel();
                return Err(e);
            }
        }
        Ok(handle)
    }

    #[cfg(feature = "progress")]
    fn progress_bar(&self, len: usize) -> Option<super::progress::Bar> {
        self.progress
            .then(|| super::progress::Bar::new(Some(len as u64)))
    }

    #[cfg(not(feature = "progress"))]
    fn progress_bar(&self, _len: usize) -> Option<()> {
        None
    }
}
