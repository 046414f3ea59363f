//! [`TasksWith`]: `apply`, `map`, `starmap` and `imap`, and their async forms, whose
//! function receives a context by reference first — Python's
//! `functools.partial(f, context)`. The context goes to each worker once per call
//! (see `src/task/context.rs`), and stays shipped until the call is answered: a
//! blocking call holds it, an `Imap` keeps it alive, and an `AsyncResult`'s
//! callbacks keep it until its result is decided.

use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Imap, Tasks};
use crate::array::SharedArray;
use crate::error::{CodecRole, Result};
use crate::kernel::AssertZeroSized;
use crate::pool::inner::PoolInner;
use crate::task::async_result::{AsyncResult, Callbacks};
use crate::task::context::{self as task_context, ContextRef};

/// The encoded context in shared memory, shipped to the workers for as long as a
/// call that uses it runs.
#[derive(Debug)]
struct Shipment {
    inner: Arc<PoolInner>,
    bytes: SharedArray<u8>,
    reference: ContextRef,
}

impl Drop for Shipment {
    fn drop(&mut self) {
        self.inner
            .shipping
            .unship_after_job(&[self.bytes.segment()]);
    }
}

/// Generic tasks whose function takes a context `&C` first. Made by
/// [`Tasks::with`]; the options of the [`Tasks`] it was made from apply.
#[derive(Debug)]
#[must_use = "TasksWith does nothing until one of its methods runs"]
pub struct TasksWith<'p, C> {
    tasks: Tasks<'p>,
    shipment: Result<Arc<Shipment>>,
    _context: PhantomData<fn(&C)>,
}

impl<'p> Tasks<'p> {
    /// Hands `context` to every task of the next call by reference: the function
    /// then takes `&C` first, as `functools.partial(f, context)` does in Python.
    ///
    /// The context is serialized once, into shared memory, and each worker decodes it
    /// once, the first time one of the call's tasks reaches it: a 100 MB lookup table
    /// costs one decode per worker, not one transfer per task or chunk. A worker keeps
    /// the two most recent contexts it decoded.
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
    pub fn with<C: Serialize + DeserializeOwned + 'static>(self, context: &C) -> TasksWith<'p, C> {
        TasksWith {
            tasks: self,
            shipment: ship(self.pool.arc(), context).map(Arc::new),
            _context: PhantomData,
        }
    }
}

/// `f` as a task function of `(ContextRef, A)`: it finds the context the reference
/// names (decoding it on the worker's first use) and calls `f(&context, a)`. As
/// zero-sized as `f` is.
fn bind<C, A, R, F>(f: F) -> impl Fn((ContextRef, A)) -> R + Copy
where
    C: DeserializeOwned + 'static,
    F: Fn(&C, A) -> R + Copy,
{
    move |(cr, a): (ContextRef, A)| task_context::with(cr, |c: &C| f(c, a))
}

fn ship<C: Serialize>(inner: &Arc<PoolInner>, context: &C) -> Result<Shipment> {
    inner.check_open()?;
    let encoded = crate::task::codec::encode(context, CodecRole::Argument)?;
    // A segment is never empty: a zero-sized context still gets one byte. Contexts
    // vary in size from call to call, so the array cache does not keep theirs.
    let mut bytes = SharedArray::<u8>::zeroed(encoded.len().max(1))?.never_kept();
    bytes[..encoded.len()].copy_from_slice(&encoded);
    inner
        .shipping
        .ship_for_job(&[bytes.segment()], &inner.counters)?;
    let reference = ContextRef {
        id: bytes.segment().id(),
        tenant: bytes.segment().tenant(),
        len: encoded.len() as u64,
    };
    Ok(Shipment {
        inner: Arc::clone(inner),
        bytes,
        reference,
    })
}

impl<C: Serialize + DeserializeOwned + 'static> TasksWith<'_, C> {
    fn shipment(&self) -> Result<Arc<Shipment>> {
        self.shipment.clone()
    }

    /// `f(&context, arg)` in a worker: Python's `apply(partial(f, context), (arg,))`.
    ///
    /// # Errors
    /// As for [`crate::Pool::apply`], plus [`Error::Codec`](crate::Error::Codec) if the context cannot be
    /// serialized.
    pub fn apply<A, R, F>(self, f: F, arg: A) -> Result<R>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(&C, A) -> R + Copy,
    {
        let () = AssertZeroSized::<F>::OK;
        let ship = self.shipment()?;
        let r = ship.reference;
        let out = self.tasks.apply(bind(f), ((r, arg),));
        drop(ship);
        out
    }

    /// `f(&context, x)` for each item: Python's `map(partial(f, context), items)`.
    ///
    /// # Errors
    /// As for [`crate::Pool::map`], plus [`Error::Codec`](crate::Error::Codec) if the context cannot be
    /// serialized.
    pub fn map<A, R, F, I>(self, f: F, items: I) -> Result<Vec<R>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(&C, A) -> R + Copy,
    {
        let () = AssertZeroSized::<F>::OK;
        let ship = self.shipment()?;
        let r = ship.reference;
        let out = self
            .tasks
            .map(bind(f), items.into_iter().map(move |a| (r, a)));
        drop(ship);
        out
    }

    /// `f(&context, args)` for each argument tuple: Python's
    /// `starmap(partial(f, context), items)`, with the tuple handed whole.
    ///
    /// # Errors
    /// As for [`TasksWith::map`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let weights = vec![0.5f64, 2.0];
    /// let out = pool
    ///     .tasks()
    ///     .with(&weights)
    ///     .starmap(|w: &Vec<f64>, (a, b): (f64, f64)| w[0] * a + w[1] * b, [(2.0, 1.0), (4.0, 0.5)])?;
    /// assert_eq!(out, [3.0, 3.0]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn starmap<Args, R, F, I>(self, f: F, items: I) -> Result<Vec<R>>
    where
        I: IntoIterator<Item = Args>,
        Args: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(&C, Args) -> R + Copy,
    {
        self.map(f, items)
    }

    /// [`TasksWith::apply`] without waiting: Python's
    /// `apply_async(partial(f, context), (arg,))`. The context stays shipped until
    /// the result is decided, even if the handle is dropped first.
    ///
    /// # Errors
    /// As for [`crate::Pool::apply_async`], plus [`Error::Codec`](crate::Error::Codec)
    /// if the context cannot be serialized.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let names = vec!["zero".to_string(), "one".to_string()];
    /// let r = pool.tasks().with(&names).apply_async(|n: &Vec<String>, i: usize| n[i].len(), 1)?;
    /// assert_eq!(r.get()?, 3);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn apply_async<A, R, F>(self, f: F, arg: A) -> Result<AsyncResult<R>>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(&C, A) -> R + Copy,
    {
        self.apply_async_with(f, arg, Callbacks::new())
    }

    /// [`TasksWith::apply_async`] with callbacks, as
    /// [`crate::Pool::apply_async_with`].
    ///
    /// # Errors
    /// As for [`TasksWith::apply_async`].
    pub fn apply_async_with<A, R, F>(
        self,
        f: F,
        arg: A,
        callbacks: Callbacks<R>,
    ) -> Result<AsyncResult<R>>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(&C, A) -> R + Copy,
    {
        let () = AssertZeroSized::<F>::OK;
        let ship = self.shipment()?;
        let r = ship.reference;
        self.tasks
            .apply_async_with(bind(f), ((r, arg),), callbacks.keep_alive(Box::new(ship)))
    }

    /// [`TasksWith::map`] without waiting: Python's
    /// `map_async(partial(f, context), items)`. The context stays shipped until the
    /// result is decided (answered, failed or cancelled), even if the handle is
    /// dropped first. The handle can be awaited and cancelled as any
    /// [`AsyncResult`].
    ///
    /// # Errors
    /// As for [`crate::Pool::map_async`], plus [`Error::Codec`](crate::Error::Codec)
    /// if the context cannot be serialized.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let scale = vec![3u64];
    /// let r = pool.tasks().with(&scale).map_async(|s: &Vec<u64>, x: u64| s[0] * x, 0..4u64)?;
    /// assert_eq!(futures::executor::block_on(r.into_future())?, [0, 3, 6, 9]);
    /// # use std::future::IntoFuture;
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn map_async<A, R, F, I>(self, f: F, items: I) -> Result<AsyncResult<Vec<R>>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(&C, A) -> R + Copy,
    {
        self.map_async_with(f, items, Callbacks::new())
    }

    /// [`TasksWith::map_async`] with callbacks, as [`crate::Pool::map_async_with`].
    ///
    /// # Errors
    /// As for [`TasksWith::map_async`].
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
        F: Fn(&C, A) -> R + Copy,
    {
        let () = AssertZeroSized::<F>::OK;
        let ship = self.shipment()?;
        let r = ship.reference;
        self.tasks.map_async_with(
            bind(f),
            items.into_iter().map(move |a| (r, a)),
            callbacks.keep_alive(Box::new(ship)),
        )
    }

    /// [`TasksWith::starmap`] without waiting: Python's
    /// `starmap_async(partial(f, context), items)`, with the tuple handed whole.
    ///
    /// # Errors
    /// As for [`TasksWith::map_async`].
    pub fn starmap_async<Args, R, F, I>(self, f: F, items: I) -> Result<AsyncResult<Vec<R>>>
    where
        I: IntoIterator<Item = Args>,
        Args: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(&C, Args) -> R + Copy,
    {
        self.map_async_with(f, items, Callbacks::new())
    }

    /// `f(&context, x)` for each item, lazily and in order: Python's
    /// `imap(partial(f, context), items)`. The context stays shipped until the
    /// [`Imap`] is dropped; it is an `Iterator` and a `Stream`, and cancels as any
    /// `Imap` does.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let offsets = vec![100u64, 200];
    /// let mut it = pool
    ///     .tasks()
    ///     .with(&offsets)
    ///     .imap(|o: &Vec<u64>, x: u64| o[(x % 2) as usize] + x, 0..4u64)?;
    /// assert_eq!(it.next().transpose()?, Some(100));
    /// assert_eq!(it.next().transpose()?, Some(201));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    ///
    /// # Errors
    /// As for [`crate::Pool::imap`], plus [`Error::Codec`](crate::Error::Codec) if the context cannot be
    /// serialized.
    pub fn imap<A, R, F, I>(
        self,
        f: F,
        items: I,
    ) -> Result<Imap<R, impl Iterator<Item = (ContextRef, A)>>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(&C, A) -> R + Copy,
    {
        self.imap_inner(f, items, true)
    }

    /// Like [`TasksWith::imap`], yielding results as they complete.
    ///
    /// # Errors
    /// As for [`TasksWith::imap`].
    pub fn imap_unordered<A, R, F, I>(
        self,
        f: F,
        items: I,
    ) -> Result<Imap<R, impl Iterator<Item = (ContextRef, A)>>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(&C, A) -> R + Copy,
    {
        self.imap_inner(f, items, false)
    }

    fn imap_inner<A, R, F, I>(
        self,
        f: F,
        items: I,
        ordered: bool,
    ) -> Result<Imap<R, impl Iterator<Item = (ContextRef, A)>>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(&C, A) -> R + Copy,
    {
        let () = AssertZeroSized::<F>::OK;
        let ship = self.shipment()?;
        let r = ship.reference;
        let g = bind(f);
        let items = items.into_iter().map(move |a| (r, a));
        let imap = if ordered {
            self.tasks.imap(g, items)?
        } else {
            self.tasks.imap_unordered(g, items)?
        };
        Ok(imap.keep_alive(ship))
    }
}
