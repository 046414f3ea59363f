//! [`TasksWith`]: `apply`, `map`, `starmap` and `imap` whose function receives a
//! context by reference first — Python's `functools.partial(f, context)`. The
//! context goes to each worker once per call (see `task_context.rs`).

use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::inner::PoolInner;
use super::{Imap, Tasks};
use crate::array::SharedArray;
use crate::error::{CodecRole, Result};
use crate::kernel::AssertZeroSized;
use crate::task_context::{self, ContextRef};

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
        self.inner.unship_after_job(&[self.bytes.segment()]);
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

fn ship<C: Serialize>(inner: &Arc<PoolInner>, context: &C) -> Result<Shipment> {
    inner.check_open()?;
    let encoded = crate::task::encode(context, CodecRole::Argument)?;
    // A segment is never empty: a zero-sized context still gets one byte.
    let mut bytes = SharedArray::<u8>::zeroed(encoded.len().max(1))?;
    bytes[..encoded.len()].copy_from_slice(&encoded);
    inner.ship_for_job(&[bytes.segment()])?;
    let reference = ContextRef {
        id: bytes.segment().id(),
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
        let out = self.tasks.apply(
            move |(cr, a): (ContextRef, A)| task_context::with(cr, |c: &C| f(c, a)),
            ((r, arg),),
        );
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
        let out = self.tasks.map(
            move |(cr, a): (ContextRef, A)| task_context::with(cr, |c: &C| f(c, a)),
            items.into_iter().map(move |a| (r, a)),
        );
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

    /// `f(&context, x)` for each item, lazily and in order: Python's
    /// `imap(partial(f, context), items)`. The context stays shipped until the
    /// iterator is dropped.
    ///
    /// # Errors
    /// As for [`crate::Pool::imap`], plus [`Error::Codec`](crate::Error::Codec) if the context cannot be
    /// serialized.
    pub fn imap<A, R, F, I>(
        self,
        f: F,
        items: I,
    ) -> Result<ImapWith<R, impl Iterator<Item = (ContextRef, A)>>>
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
    ) -> Result<ImapWith<R, impl Iterator<Item = (ContextRef, A)>>>
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
    ) -> Result<ImapWith<R, impl Iterator<Item = (ContextRef, A)>>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(&C, A) -> R + Copy,
    {
        let () = AssertZeroSized::<F>::OK;
        let ship = self.shipment()?;
        let r = ship.reference;
        let g = move |(cr, a): (ContextRef, A)| task_context::with(cr, |c: &C| f(c, a));
        let items = items.into_iter().map(move |a| (r, a));
        let imap = if ordered {
            self.tasks.imap(g, items)?
        } else {
            self.tasks.imap_unordered(g, items)?
        };
        Ok(ImapWith {
            imap,
            _shipment: ship,
        })
    }
}

/// An [`Imap`] whose tasks use a context: it keeps the context shipped until it is
/// dropped.
#[derive(Debug)]
pub struct ImapWith<R, It> {
    imap: Imap<R, It>,
    _shipment: Arc<Shipment>,
}

impl<R, It> Iterator for ImapWith<R, It>
where
    Imap<R, It>: Iterator<Item = Result<R>>,
{
    type Item = Result<R>;
    fn next(&mut self) -> Option<Result<R>> {
        self.imap.next()
    }
}
