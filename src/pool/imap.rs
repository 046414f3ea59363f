//! `imap` and `imap_unordered`: lazy, bounded iterators over task results.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::chunks::{ChunkSizes, decode_chunk};
use super::dispatch::{Signal, TaskLimits};
use super::inner::lock;
use super::sink::{Ctx, Outcome, Sink};
use super::tasks::Tasks;
use super::{Pool, PoolInner};
use crate::error::{CodecRole, Error, Result};
use crate::kernel::AssertZeroSized;
use crate::task::{self, TaskFn};

/// A lazy iterator over the results of `f(x)` for each input item: the iterator
/// returned by [`Pool::imap`] and [`Pool::imap_unordered`].
///
/// It reads its input only as results are consumed, and keeps at most
/// [`Tasks::max_in_flight`] chunks submitted and unread, so an endless input works
/// and memory stays flat (Python's `imap` reads its whole input first). Each item is
/// a `Result`: a panic, death or timeout fails only the items of the chunk it hit.
/// If the input iterator panics, the results of everything taken before are still
/// yielded, then one [`Error::InputPanicked`], then the iterator ends.
///
/// When the input reports an exact length, so does this iterator
/// ([`ExactSizeIterator`]), and [`Imap::progress`] shows a bar with a total.
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
    }
}

impl Pool {
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
}

impl Tasks<'_> {
    /// See [`Pool::imap`].
    ///
    /// # Errors
    /// As for [`Pool::imap`].
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
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn imap<A, R, F, I>(self, f: F, items: I) -> Result<Imap<R, I::IntoIter>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(A) -> R + Copy,
    {
        self.make_imap(f, items, true)
    }

    /// See [`Pool::imap_unordered`].
    ///
    /// # Errors
    /// As for [`Pool::imap`].
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
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn imap_unordered<A, R, F, I>(self, f: F, items: I) -> Result<Imap<R, I::IntoIter>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(A) -> R + Copy,
    {
        self.make_imap(f, items, false)
    }

    fn make_imap<A, R, F, I>(self, f: F, items: I, ordered: bool) -> Result<Imap<R, I::IntoIter>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(A) -> R + Copy,
    {
        let () = AssertZeroSized::<F>::OK;
        let _ = f;
        let inner = self.pool.arc();
        inner.check_open()?;
        let chunksize = match self.chunksize {
            Some(0) => return Err(Error::ZeroChunkLen),
            Some(n) => n,
            None => 1,
        };
        let shared = Arc::new(Shared {
            done: Mutex::new(BTreeMap::new()),
            signal: Signal::default(),
            sizes: ChunkSizes::open_ended(chunksize),
            last: Mutex::new(None),
        });
        Ok(Imap {
            inner: Arc::clone(inner),
            input: Some(items.into_iter()),
            code: task::map_trampoline::<A, R, F>,
            chunksize,
            max_in_flight: self.in_flight.unwrap_or(4 * inner.processes),
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
        })
    }
}

impl<R, It> Imap<R, It>
where
    R: DeserializeOwned + Send + 'static,
    It: Iterator,
    It::Item: Serialize,
{
    /// Submits chunks until the in-flight bound or the end of the input.
    fn fill(&mut self) {
        while self.in_flight < self.max_in_flight {
            let Some(input) = self.input.as_mut() else {
                return;
            };
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
                return;
            }
            if let Err(e) = self.submit(&chunk) {
                self.input = None;
                self.trailing_error.get_or_insert(e);
                return;
            }
        }
    }

    fn submit(&mut self, chunk: &[It::Item]) -> Result<()> {
        let bytes = task::encode_items(chunk, CodecRole::Argument)?;
        if chunk.len() < self.chunksize {
            // Recorded before the submit, so the sink has it when the chunk completes.
            *lock(&self.shared.last) = Some((self.next_submit as u64, chunk.len()));
        }
        let tag = self.next_submit as u64;
        self.inner
            .submit_task(self.code, &bytes, &self.sink, tag, self.limits)?;
        self.next_submit += 1;
        self.in_flight += 1;
        self.in_flight_items += chunk.len();
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
        Some(items)
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
            if let Some(item) = self.current.pop_front() {
                return Some(item);
            }
            self.fill();
            if let Some(items) = self.take_ready() {
                self.in_flight -= 1;
                self.in_flight_items -= items.len();
                self.current = items.into();
                continue;
            }
            if self.in_flight == 0 {
                return self.trailing_error.take().map(Err);
            }
            let (ordered, next) = (self.ordered, self.next_yield);
            let ready = |done: &BTreeMap<usize, Vec<Result<R>>>| {
                if ordered {
                    done.contains_key(&next)
                } else {
                    !done.is_empty()
                }
            };
            self.inner
                .wait_for(&ready, &self.shared.done, &self.shared.signal, None);
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let known = self.current.len() + self.in_flight_items;
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

impl<R, It> ExactSizeIterator for Imap<R, It>
where
    R: DeserializeOwned + Send + 'static,
    It: ExactSizeIterator,
    It::Item: Serialize,
{
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
    pub fn progress(self) -> crate::progress::Progress<Self> {
        let total = match self.size_hint() {
            (lo, Some(hi)) if lo == hi => Some(lo as u64),
            _ => None,
        };
        crate::progress::Progress::new(self, total)
    }
}
