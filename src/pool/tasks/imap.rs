//! `imap` and `imap_unordered`: lazy, bounded iterators over task results.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures_core::Stream;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::chunks::{ChunkSizes, decode_chunk};
use super::shipment::Shipment;
use super::tasks_builder::Tasks;
use crate::error::{CodecRole, Error, Result};
use crate::kernel::AssertZeroSized;
use crate::pool::inner::PoolInner;
use crate::sync::lock;
use crate::task::cancel::{CancelMode, CancelOutcome};
use crate::task::codec;
use crate::task::host::wait_for;
use crate::task::signal::Signal;
use crate::task::sink::{Ctx, Outcome, Sink};
use crate::task::star_fn::{StarFn, TaskEnv};
use crate::task::submission::{Admission, TaskLimits};
use crate::task::trampolines::{self, TaskFn};

/// A lazy iterator over the results of `f(x)` for each input item: the iterator
/// returned by [`Pool::imap`](crate::Pool::imap) and
/// [`Pool::imap_unordered`](crate::Pool::imap_unordered).
///
/// It reads its input only as results are consumed, and keeps at most
/// [`Tasks::max_in_flight`] chunks submitted and unread, so an endless input works
/// and memory stays flat (Python's `imap` reads its whole input first). Each item is
/// a `Result`: a panic, death or timeout fails only the items of the chunk it hit.
/// If the input iterator panics, the results of everything taken before are still
/// yielded, then one [`Error::InputPanicked`], then the iterator ends.
///
/// When the input reports an exact length, so does this iterator:
/// [`Imap::remaining`] for any input whose `size_hint` is exact (`u64` ranges
/// included), `len()` too where the input is an [`ExactSizeIterator`]; and
/// [`Imap::progress`] shows a bar with a total.
///
/// It is also a [`Stream`](futures_core::Stream) of the same items, for async code
/// (on any executor: a pending stream leaves its waker for the thread that delivers
/// the next result). Because it is an `Iterator` too, a method such as `next` is
/// ambiguous when `StreamExt` is in scope: [`Imap::into_stream`] gives a wrapper that
/// is only a `Stream`.
///
/// # Cancelling
/// [`Imap::cancel`] stops it: no more input is read, the chunks in flight are
/// cancelled ([`crate::AsyncResult::cancel_with`] says how), and each of their items
/// not received yet comes out as [`Error::Cancelled`]. **Dropping** an `Imap` (or the
/// stream) before its end cancels what it still has in flight the same way, with
/// the pool's [`cancel_mode`](crate::PoolBuilder::cancel_mode): chunks not started
/// never run.
///
/// # Examples
///
/// ```
/// let pool = shmpool::Pool::new(2)?;
/// let mut results = pool.imap(|x: u32| 12 / x, [6, 0, 4])?;
/// assert_eq!(results.len(), 3); // the input's length is known
/// assert_eq!(results.next().transpose()?, Some(2));
/// // Dividing by zero panics in the worker: only that item fails.
/// assert!(matches!(results.next(), Some(Err(shmpool::Error::TaskPanicked { .. }))));
/// assert_eq!(results.next().transpose()?, Some(3));
/// assert!(results.next().is_none());
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct Imap<R, It> {
    inner: Arc<PoolInner>,
    input: Option<It>,
    code: TaskFn,
    chunksize: usize,
    max_in_flight: usize,
    limits: TaskLimits,
    ordered: bool,
    shared: Arc<Shared<R>>,
    /// `shared`, as the sink every chunk completes into.
    sink: Arc<dyn Sink>,
    next_submit: usize,
    next_yield: usize,
    in_flight: usize,
    in_flight_items: usize,
    current: VecDeque<Result<R>>,
    trailing_error: Option<Error>,
    /// The task id of each chunk in flight, by chunk index.
    ids: BTreeMap<u64, u64>,
    /// An encoded chunk (and its length) read from the input that did not fit under
    /// `max_queued` yet.
    held: Option<(Vec<u8>, usize)>,
    /// What each chunk's payload starts with: the context's reference, or nothing.
    prefix: Vec<u8>,
    /// The call's context, shipped until the `Imap` is dropped. A field, so it is
    /// dropped after `Drop::drop` cancels what is in flight.
    _context: Option<Arc<Shipment>>,
}

impl<R, It> fmt::Debug for Imap<R, It> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imap")
            .field("ordered", &self.ordered)
            .field("chunksize", &self.chunksize)
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

struct Shared<R> {
    done: Mutex<BTreeMap<usize, Vec<Result<R>>>>,
    signal: Signal,
    /// The waker of a stream waiting for a chunk.
    waker: Mutex<Option<Waker>>,
    sizes: ChunkSizes,
    /// The index and length of the final, short chunk, once it is submitted.
    last: Mutex<Option<(u64, usize)>>,
}

/// Each chunk of an imap completes into its shared state; the tag is the chunk's
/// index.
impl<R: DeserializeOwned + Send + 'static> Sink for Shared<R> {
    fn complete(&self, tag: u64, outcome: Outcome<'_>, _ctx: &Ctx<'_>) {
        let range = self.sizes.items(tag, *lock(&self.last));
        let (index, len) = (tag as usize, range.len());
        let items = match decode_chunk::<R>(outcome, len) {
            Ok(items) => items,
            Err(e) => {
                let e = e.for_items(range);
                let mut items = Vec::with_capacity(len);
                for _ in 1..len {
                    items.push(Err(e.clone()));
                }
                items.push(Err(e));
                items
            }
        };
        let mut done = lock(&self.done);
        done.insert(index, items);
        self.signal.notify();
        drop(done);
        // A stream that registered before this insert is woken; one that registers
        // after re-checks `done` under its mutex and finds the chunk.
        let waker = lock(&self.waker).take();
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<E: TaskEnv> Tasks<'_, E> {
    /// A lazy iterator over `f(x)` (with a context, `f(&context, x)`) for each item,
    /// in input order: Python's `imap`. See [`Pool::imap`](crate::Pool::imap). A
    /// context stays shipped until the [`Imap`] is dropped.
    ///
    /// # Errors
    /// As for [`Pool::imap`](crate::Pool::imap), plus [`Error::Codec`] if the context
    /// cannot be serialized.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let lens = pool
    ///     .tasks()
    ///     .chunksize(3)
    ///     .imap(|s: String| s.len(), ["a", "bb", "ccc", "dddd"].map(String::from))?
    ///     .collect::<Result<Vec<_>, _>>()?;
    /// assert_eq!(lens, [1, 2, 3, 4]);
    /// let offsets = vec![100u64, 200];
    /// let mut it = pool
    ///     .tasks()
    ///     .with(&offsets)
    ///     .imap(|o: &Vec<u64>, x: u64| o[(x % 2) as usize] + x, 0..4u64)?;
    /// assert_eq!(it.next().transpose()?, Some(100));
    /// assert_eq!(it.next().transpose()?, Some(201));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn imap<A, R, F, I>(self, f: F, items: I) -> Result<Imap<R, I::IntoIter>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: StarFn<(A,), E, Output = R>,
    {
        self.make_imap(f, items, true)
    }

    /// Like [`Tasks::imap`], yielding results as they complete: Python's
    /// `imap_unordered`. Each item is yielded exactly once.
    ///
    /// # Errors
    /// As for [`Tasks::imap`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let total: u64 = pool
    ///     .tasks()
    ///     .chunksize(10)
    ///     .max_in_flight(2)
    ///     .imap_unordered(|x: u64| x + 1, 0..100u64)?
    ///     .sum::<Result<u64, _>>()?;
    /// assert_eq!(total, 5050);
    /// let step = 2u64;
    /// let mut evens = pool
    ///     .tasks()
    ///     .with(&step)
    ///     .imap_unordered(|s: &u64, x: u64| s * x, 0..4u64)?
    ///     .collect::<Result<Vec<_>, _>>()?;
    /// evens.sort();
    /// assert_eq!(evens, [0, 2, 4, 6]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn imap_unordered<A, R, F, I>(self, f: F, items: I) -> Result<Imap<R, I::IntoIter>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: StarFn<(A,), E, Output = R>,
    {
        self.make_imap(f, items, false)
    }

    fn make_imap<A, R, F, I>(self, f: F, items: I, ordered: bool) -> Result<Imap<R, I::IntoIter>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: StarFn<(A,), E, Output = R>,
    {
        let () = AssertZeroSized::<F>::OK;
        let _ = f; // only its type travels: the worker conjures the value
        let context = self.ship()?;
        let inner = self.inner;
        inner.check_open()?;
        let chunksize = match self.options.chunksize {
            Some(0) => return Err(Error::ZeroChunkLen),
            Some(n) => n,
            None => 1,
        };
        let shared = Arc::new(Shared {
            done: Mutex::new(BTreeMap::new()),
            signal: Signal::default(),
            waker: Mutex::new(None),
            sizes: ChunkSizes::open_ended(chunksize),
            last: Mutex::new(None),
        });
        Ok(Imap {
            inner: Arc::clone(inner),
            input: Some(items.into_iter()),
            code: trampolines::map_trampoline::<E, A, R, F>,
            prefix: context
                .as_deref()
                .map_or(Vec::new(), |s| s.prefix().to_vec()),
            chunksize,
            max_in_flight: self
                .options
                .in_flight
                .unwrap_or(4 * inner.settings.processes),
            limits: self.limits(),
            ordered,
            shared: Arc::clone(&shared),
            sink: shared,
            next_submit: 0,
            next_yield: 0,
            in_flight: 0,
            in_flight_items: 0,
            current: VecDeque::new(),
            trailing_error: None,
            ids: BTreeMap::new(),
            held: None,
            _context: context,
        })
    }
}

impl<R, It> Imap<R, It>
where
    R: DeserializeOwned + Send + 'static,
    It: Iterator,
    It::Item: Serialize,
{
    /// Submits chunks until the in-flight bound or the end of the input. With
    /// `nonblocking` (a stream's poll), a chunk that does not fit under `max_queued`
    /// while others are in flight is held for the next call instead of waited for.
    fn fill(&mut self, nonblocking: bool) {
        while self.in_flight < self.max_in_flight {
            let (bytes, len) = match self.held.take() {
                Some(held) => held,
                None => match self.read_chunk() {
                    Some(chunk) => chunk,
                    None => return,
                },
            };
            let how = if nonblocking && self.in_flight > 0 {
                Admission::NoWait
            } else {
                Admission::Wait
            };
            match self.submit(&bytes, len, how) {
                Ok(()) => {}
                Err(Error::QueueFull { .. }) => {
                    self.held = Some((bytes, len));
                    return;
                }
                Err(e) => {
                    self.input = None;
                    self.trailing_error.get_or_insert(e);
                    return;
                }
            }
        }
    }

    /// Reads and encodes the next chunk of the input; `None` at its end (or after a
    /// failure, recorded as the trailing error).
    fn read_chunk(&mut self) -> Option<(Vec<u8>, usize)> {
        let input = self.input.as_mut()?;
        let mut chunk = Vec::with_capacity(self.chunksize);
        let mut panicked = None;
        while chunk.len() < self.chunksize {
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| input.next())) {
                Ok(Some(item)) => chunk.push(item),
                Ok(None) => break,
                Err(payload) => {
                    panicked = Some(Error::InputPanicked {
                        message: crate::unwind::payload_message(&*payload),
                    });
                    break;
                }
            }
        }
        if chunk.len() < self.chunksize {
            self.input = None; // exhausted (or broken): stop reading
        }
        if let Some(e) = panicked {
            self.trailing_error = Some(e);
        }
        if chunk.is_empty() {
            return None;
        }
        match codec::encode_items_after(&self.prefix, &chunk, CodecRole::Argument) {
            Ok(bytes) => Some((bytes, chunk.len())),
            Err(e) => {
                self.input = None;
                self.trailing_error.get_or_insert(e.into());
                None
            }
        }
    }

    fn submit(&mut self, bytes: &[u8], len: usize, how: Admission) -> Result<()> {
        if len < self.chunksize {
            // Recorded before the submit, so the sink has it when the chunk completes.
            *lock(&self.shared.last) = Some((self.next_submit as u64, len));
        }
        let tag = self.next_submit as u64;
        let id = self.inner.delivery.new_task_ids(1).start;
        self.inner
            .submit_task(id, self.code, bytes, &self.sink, tag, self.limits, how)?;
        self.ids.insert(tag, id);
        self.next_submit += 1;
        self.in_flight += 1;
        self.in_flight_items += len;
        Ok(())
    }

    /// Takes the next finished chunk this iterator may yield, if any.
    fn take_ready(&mut self) -> Option<Vec<Result<R>>> {
        let mut done = lock(&self.shared.done);
        let key = if self.ordered {
            self.next_yield
        } else {
            *done.keys().next()?
        };
        let items = done.remove(&key)?;
        self.next_yield += 1;
        self.ids.remove(&(key as u64));
        Some(items)
    }

    /// One step of `next` and `poll_next`: an item, the end, or (`Err`) nothing
    /// ready yet.
    fn step(&mut self, nonblocking: bool) -> std::result::Result<Option<Result<R>>, ()> {
        loop {
            if let Some(item) = self.current.pop_front() {
                return Ok(Some(item));
            }
            self.fill(nonblocking);
            if let Some(items) = self.take_ready() {
                self.in_flight -= 1;
                self.in_flight_items -= items.len();
                self.current = items.into();
                continue;
            }
            if self.in_flight == 0 {
                return Ok(self.trailing_error.take().map(Err));
            }
            return Err(());
        }
    }

    /// Whether the chunk this iterator yields next has arrived.
    fn has_ready(&self, done: &BTreeMap<usize, Vec<Result<R>>>) -> bool {
        if self.ordered {
            done.contains_key(&self.next_yield)
        } else {
            !done.is_empty()
        }
    }
}

impl<R, It> Imap<R, It> {
    /// Stops this imap: reads no more input, and cancels the chunks in flight as the
    /// pool's [`cancel_mode`](crate::PoolBuilder::cancel_mode) says. The items of the
    /// chunks cancelled come out as [`Error::Cancelled`]; results that arrived before
    /// still come out as they are. Returns [`CancelOutcome::AlreadyDone`] when nothing
    /// was left to cancel: no chunk in flight, and the input read to its end.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{CancelOutcome, Error};
    ///
    /// let pool = shmpool::Pool::new(1)?;
    /// let mut squares = pool.tasks().max_in_flight(4).imap(|x: u64| x * x, 0u64..)?;
    /// assert_eq!(squares.next().transpose()?, Some(0));
    /// assert_eq!(squares.cancel(), CancelOutcome::Cancelled);
    /// // What was in flight either arrived before the cancel or is `Cancelled`; then
    /// // the (endless) input is read no more.
    /// let rest: Vec<_> = squares.collect();
    /// assert!(rest.len() <= 4);
    /// assert!(rest.iter().all(|r| matches!(r, Ok(_) | Err(Error::Cancelled { .. }))));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn cancel(&mut self) -> CancelOutcome {
        self.cancel_with(self.inner.settings.cancel_mode)
    }

    /// [`Imap::cancel`], treating running chunks as `mode` says.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::CancelMode;
    ///
    /// let pool = shmpool::Pool::new(1)?;
    /// let mut doubled = pool.imap(|x: u64| 2 * x, 0..3u64)?;
    /// let all: Vec<u64> = doubled.by_ref().collect::<Result<_, _>>()?;
    /// assert_eq!(all, [0, 2, 4]);
    /// assert!(!doubled.cancel_with(CancelMode::LetFinish).was_cancelled()); // all done
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn cancel_with(&mut self, mode: CancelMode) -> CancelOutcome {
        // Input not yet read to its end is work the cancel takes away too (an
        // endless input, say, whose chunks in flight all finished already).
        let unread = self.input.take().is_some() | self.held.take().is_some();
        let ids = std::mem::take(&mut self.ids);
        if self.inner.cancel_tasks(ids.into_values(), mode) > 0 || unread {
            CancelOutcome::Cancelled
        } else {
            CancelOutcome::AlreadyDone
        }
    }
}

impl<R, It> Drop for Imap<R, It> {
    fn drop(&mut self) {
        if !self.ids.is_empty() {
            self.cancel();
        }
    }
}

impl<R, It> Iterator for Imap<R, It>
where
    R: DeserializeOwned + Send + 'static,
    It: Iterator,
    It::Item: Serialize,
{
    type Item = Result<R>;

    fn next(&mut self) -> Option<Result<R>> {
        loop {
            if let Ok(item) = self.step(false) {
                return item;
            }
            let (ordered, next) = (self.ordered, self.next_yield);
            let ready = |done: &BTreeMap<usize, Vec<Result<R>>>| {
                if ordered {
                    done.contains_key(&next)
                } else {
                    !done.is_empty()
                }
            };
            wait_for(
                &*self.inner,
                &ready,
                &self.shared.done,
                &self.shared.signal,
                None,
            );
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let held = self.held.as_ref().map_or(0, |(_, len)| *len);
        let known = self.current.len() + self.in_flight_items + held;
        match &self.input {
            None => (known, Some(known)),
            Some(input) => {
                let (lo, hi) = input.size_hint();
                (
                    known.saturating_add(lo),
                    hi.and_then(|h| known.checked_add(h)),
                )
            }
        }
    }
}

/// An [`Imap`] that is only a [`Stream`] (not an `Iterator`), so `StreamExt`'s
/// methods apply without ambiguity: made by [`Imap::into_stream`]. Dropping it
/// before its end cancels what it has in flight, as dropping the `Imap` does.
///
/// # Examples
///
/// ```
/// use futures::StreamExt;
///
/// let pool = shmpool::Pool::new(2)?;
/// let mut squares = pool.imap(|x: u64| x * x, 0..4u64)?.into_stream();
/// let got = futures::executor::block_on(async {
///     let mut got = Vec::new();
///     while let Some(item) = squares.next().await {
///         got.push(item?);
///     }
///     Ok::<_, shmpool::Error>(got)
/// })?;
/// assert_eq!(got, [0, 1, 4, 9]);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct ImapStream<R, It>(Imap<R, It>);

impl<R, It> fmt::Debug for ImapStream<R, It> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ImapStream").field(&self.0).finish()
    }
}

impl<R, It> Imap<R, It> {
    /// This imap as a [`Stream`] only (see [`ImapStream`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use futures::StreamExt;
    ///
    /// let pool = shmpool::Pool::new(2)?;
    /// let stream = pool.imap_unordered(|x: u32| x + 1, 0..3u32)?.into_stream();
    /// let mut got: Vec<u32> = futures::executor::block_on(stream.map(|r| r.unwrap()).collect());
    /// got.sort();
    /// assert_eq!(got, [1, 2, 3]);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn into_stream(self) -> ImapStream<R, It> {
        ImapStream(self)
    }
}

impl<R, It> ImapStream<R, It> {
    /// See [`Imap::cancel`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(1)?;
    /// let mut stream = pool.imap(|x: u64| x, 0u64..)?.into_stream();
    /// stream.cancel(); // nothing was submitted yet: the input will never be read
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn cancel(&mut self) -> CancelOutcome {
        self.0.cancel()
    }

    /// See [`Imap::cancel_with`].
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::CancelMode;
    ///
    /// let pool = shmpool::Pool::new(1)?;
    /// let mut stream = pool.imap(|x: u64| x, 0..3u64)?.into_stream();
    /// // Nothing ran yet, but the three items will not: that is a cancel.
    /// assert!(stream.cancel_with(CancelMode::LetFinish).was_cancelled());
    /// // A second cancel finds nothing left.
    /// assert!(!stream.cancel_with(CancelMode::LetFinish).was_cancelled());
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn cancel_with(&mut self, mode: CancelMode) -> CancelOutcome {
        self.0.cancel_with(mode)
    }
}

impl<R, It> Stream for ImapStream<R, It>
where
    R: DeserializeOwned + Send + 'static,
    It: Iterator,
    It::Item: Serialize,
{
    type Item = Result<R>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<R>>> {
        Pin::new(&mut self.get_mut().0).poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        Iterator::size_hint(&self.0)
    }
}

/// An `Imap` is never pinned in place: it holds its state behind `Arc`s and moves
/// freely, so it is `Unpin` whatever `R` and `It` are.
impl<R, It> Unpin for Imap<R, It> {}

impl<R, It> Stream for Imap<R, It>
where
    R: DeserializeOwned + Send + 'static,
    It: Iterator,
    It::Item: Serialize,
{
    type Item = Result<R>;

    /// Yields what [`Iterator::next`] would, without blocking on results: while the
    /// next one has not arrived, leaves the task's waker for the thread that
    /// delivers it. Reading the input (to submit more chunks) still calls the input
    /// iterator, which should not block.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<R>>> {
        let this = self.get_mut();
        loop {
            if let Ok(item) = this.step(true) {
                return Poll::Ready(item);
            }
            *lock(&this.shared.waker) = Some(cx.waker().clone());
            // Re-check after registering: a chunk delivered before the registration
            // found no waker to wake.
            let arrived = this.has_ready(&lock(&this.shared.done));
            if !arrived {
                return Poll::Pending;
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        Iterator::size_hint(self)
    }
}

impl<R, It> ExactSizeIterator for Imap<R, It>
where
    R: DeserializeOwned + Send + 'static,
    It: ExactSizeIterator,
    It::Item: Serialize,
{
}

impl<R, It> Imap<R, It>
where
    R: DeserializeOwned + Send + 'static,
    It: Iterator,
    It::Item: Serialize,
{
    /// How many results are still to come, when the input tells exactly how many
    /// items it has left (its `size_hint`); `None` for an input of unknown length.
    ///
    /// This is [`ExactSizeIterator::len`] for every input whose length is known,
    /// including `u64` and `i64` ranges, which Rust does not count as
    /// `ExactSizeIterator`s (their length may not fit a `usize` on every
    /// target), so `len()` is missing there.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let mut squares = pool.imap(|x: u64| x * x, 0..1_000u64)?; // no len() here
    /// assert_eq!(squares.remaining(), Some(1_000));
    /// squares.next();
    /// assert_eq!(squares.remaining(), Some(999));
    /// let endless = pool.imap(|x: u64| x, 0u64..)?;
    /// assert_eq!(endless.remaining(), None);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn remaining(&self) -> Option<usize> {
        match Iterator::size_hint(self) {
            (lo, Some(hi)) if lo == hi => Some(lo),
            _ => None,
        }
    }
}

#[cfg(feature = "progress")]
impl<R, It> Imap<R, It>
where
    R: DeserializeOwned + Send + 'static,
    It: Iterator,
    It::Item: Serialize,
{
    /// Shows a progress bar on standard error as results are consumed: with a total
    /// when the input length is known, a spinner otherwise. Hidden when standard
    /// error is not a terminal.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(2)?;
    /// let total: u64 = pool
    ///     .imap(|x: u64| x * x, 0..100u64)?
    ///     .progress() // a bar of 100 steps
    ///     .sum::<Result<u64, _>>()?;
    /// assert_eq!(total, 328_350);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn progress(self) -> super::progress::Progress<Self> {
        let total = self.remaining().map(|n| n as u64);
        super::progress::Progress::new(self, total)
    }
}
