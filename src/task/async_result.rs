//! [`AsyncResult`]: the handle of work submitted with `apply_async`, `map_async` or
//! `starmap_async`, its shared slot, and the sink of one `apply` task. Awaiting it is
//! in `src/task/result_future.rs`.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::Duration;

use super::cancel::{CancelMode, CancelOutcome};
use super::host::{TaskHost, wait_for};
use super::signal::Signal;
use super::sink::{Ctx, Outcome, Sink};
use crate::error::{Error, Result, Work};
use crate::sync::lock;
use crate::unwind::{self, PanicReport};

/// Functions run on the pool's result thread when a result arrives, as Python's
/// `callback` and `error_callback`.
///
/// Both run before the result becomes visible to `get`, one at a time, on the
/// pool's callback thread: never on the thread that delivers results, so unlike in
/// Python a callback may call the pool and wait for the answer (`apply`, `map`,
/// another `get`). A callback that panics does not harm the pool: the panic is
/// caught and `get` returns
/// [`Error::CallbackPanicked`].
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use shmpool::{Callbacks, Pool};
///
/// let pool = Pool::new(2)?;
/// let total = Arc::new(AtomicU64::new(0));
/// let seen = Arc::clone(&total);
/// let r = pool.tasks().apply_async_with(
///     |x: u64| x * x,
///     (12,),
///     Callbacks::new()
///         .on_success(move |v: &u64| {
///             seen.fetch_add(*v, Ordering::Relaxed);
///         })
///         .on_error(|e| eprintln!("failed: {e}")),
/// )?;
/// assert_eq!(r.get()?, 144);
/// assert_eq!(total.load(Ordering::Relaxed), 144); // ran before get returned
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct Callbacks<R> {
    on_success: Option<OnSuccess<R>>,
    on_error: Option<OnError>,
    /// Something the work needs until it is answered (a task context's shipment):
    /// dropped on the callback thread once the result is decided, never under a
    /// pool lock.
    keep_alive: Option<KeepAlive>,
}

/// What [`Callbacks::keep_alive`] holds.
pub(crate) type KeepAlive = Box<dyn std::any::Any + Send>;

type OnSuccess<R> = Box<dyn FnOnce(&R) + Send>;
type OnError = Box<dyn FnOnce(&Error) + Send>;

impl<R> Default for Callbacks<R> {
    fn default() -> Self {
        Callbacks {
            on_success: None,
            on_error: None,
            keep_alive: None,
        }
    }
}

impl<R> fmt::Debug for Callbacks<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callbacks")
            .field("on_success", &self.on_success.is_some())
            .field("on_error", &self.on_error.is_some())
            .finish()
    }
}

impl<R> Callbacks<R> {
    /// No callbacks.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::{Callbacks, Pool};
    ///
    /// let pool = Pool::new(1)?;
    /// // No callbacks: the same as `apply_async`.
    /// let r = pool.tasks().apply_async_with(|| 5, (), Callbacks::new())?;
    /// assert_eq!(r.get()?, 5);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` with the result when the work succeeds (Python's `callback`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use shmpool::{Callbacks, Pool};
    ///
    /// let pool = Pool::new(2)?;
    /// let (tx, rx) = mpsc::channel();
    /// let r = pool.tasks().map_async_with(
    ///     |x: u32| x * 2,
    ///     [1, 2],
    ///     Callbacks::new().on_success(move |v: &Vec<u32>| tx.send(v.clone()).unwrap()),
    /// )?;
    /// r.wait();
    /// assert_eq!(rx.try_recv().unwrap(), [2, 4]); // it ran before the result was ready
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn on_success(mut self, f: impl FnOnce(&R) + Send + 'static) -> Self {
        self.on_success = Some(Box::new(f));
        self
    }

    /// Runs `f` with the error when the work fails (Python's `error_callback`).
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
    ///     || -> u32 { panic!("bad input") },
    ///     (),
    ///     Callbacks::new().on_error(move |e| tx.send(e.to_string()).unwrap()),
    /// )?;
    /// assert!(r.get().is_err());
    /// assert!(rx.recv().unwrap().contains("bad input"));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn on_error(mut self, f: impl FnOnce(&Error) + Send + 'static) -> Self {
        self.on_error = Some(Box::new(f));
        self
    }

    /// Keeps `value` alive until the result is decided, then drops it on the
    /// callback thread (before the result is made visible).
    pub(crate) fn keep_alive(mut self, value: KeepAlive) -> Self {
        self.keep_alive = Some(value);
        self
    }

    fn is_empty(&self) -> bool {
        self.on_success.is_none() && self.on_error.is_none() && self.keep_alive.is_none()
    }

    /// Runs the callback that applies; a panic becomes the result.
    fn run(self, result: Result<R>) -> Result<R> {
        let panicked = match &result {
            Ok(v) => self.on_success.and_then(|cb| unwind::catch(|| cb(v)).err()),
            Err(e) => self.on_error.and_then(|cb| unwind::catch(|| cb(e)).err()),
        };
        match panicked {
            Some(report) => Err(Error::CallbackPanicked {
                message: report.to_string(),
            }),
            None => result,
        }
    }
}

enum State<R> {
    Pending,
    Done(Result<R>),
    Taken,
}

/// The shared slot behind an [`AsyncResult`].
///
/// Its result is decided once: the first [`ResultSlot::deliver`] wins (a task's
/// outcome, or a cancel's `Cancelled`), and every later one is ignored. A waiting
/// thread sleeps on `signal`; a waiting future leaves its waker, woken by whichever
/// thread makes the result visible (the collector, a polling caller, or the callback
/// thread): no thread per future and no polling loop.
pub(crate) struct ResultSlot<R> {
    state: Mutex<State<R>>,
    signal: Signal,
    /// Set by the first delivery; later ones are ignored.
    decided: AtomicBool,
    ready: AtomicBool,
    succeeded: AtomicBool,
    callbacks: Mutex<Option<Callbacks<R>>>,
    waker: Mutex<Option<Waker>>,
}

impl<R: Send + 'static> ResultSlot<R> {
    /// An empty slot with these callbacks.
    pub(crate) fn new(callbacks: Callbacks<R>) -> Arc<Self> {
        Arc::new(ResultSlot {
            state: Mutex::new(State::Pending),
            signal: Signal::default(),
            decided: AtomicBool::new(false),
            ready: AtomicBool::new(false),
            succeeded: AtomicBool::new(false),
            callbacks: Mutex::new((!callbacks.is_empty()).then_some(callbacks)),
            waker: Mutex::new(None),
        })
    }

    /// Delivers the result, if no delivery came first; returns whether this one
    /// decided it. Hands the callbacks to the pool's callback thread, which runs
    /// them and then makes the result visible; without callbacks, makes it visible
    /// now.
    pub(crate) fn deliver(self: &Arc<Self>, result: Result<R>, ctx: &Ctx<'_>) -> bool {
        // Relaxed would do for the election itself (the result travels under the state
        // mutex); AcqRel keeps the winner's view of what came before it.
        if self.decided.swap(true, Ordering::AcqRel) {
            return false;
        }
        let callbacks = lock(&self.callbacks).take();
        match callbacks {
            None => self.finish(result),
            Some(cbs) => {
                let me = Arc::clone(self);
                ctx.defer(Box::new(move || me.finish(cbs.run(result))));
            }
        }
        true
    }

    fn finish(&self, result: Result<R>) {
        let mut state = lock(&self.state);
        if matches!(*state, State::Pending) {
            self.succeeded.store(result.is_ok(), Ordering::Relaxed);
            *state = State::Done(result);
            // SYNC(R1): Release — publishes `succeeded`; pairs with the Acquire in
            // `is_ready` (SYNC R2). The state itself is read under the mutex.
            self.ready.store(true, Ordering::Release);
            self.signal.notify();
            drop(state);
            // A future registered before `ready` was set is woken here; one that
            // registers after takes the waker mutex after this take, and its re-check
            // of `ready` (SYNC R2) sees the store above.
            let waker = lock(&self.waker).take();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    /// Whether the result has arrived.
    pub(crate) fn is_ready(&self) -> bool {
        // SYNC(R2): Acquire — pairs with SYNC R1 in `finish`: `succeeded` is then visible; the
        // result itself is read under the state mutex.
        self.ready.load(Ordering::Acquire)
    }

    /// Leaves `waker` to be woken when the result is ready; returns whether it is
    /// ready already (then nothing is left).
    pub(crate) fn register(&self, waker: &Waker) -> bool {
        if self.is_ready() {
            return true;
        }
        {
            let mut slot = lock(&self.waker);
            match slot.as_mut() {
                Some(w) if w.will_wake(waker) => {}
                _ => *slot = Some(waker.clone()),
            }
        }
        // Re-check after registering: `finish` sets `ready` before it takes the waker.
        self.is_ready()
    }

    /// Waits up to `timeout` (forever for `None`) for the result.
    pub(crate) fn wait(&self, pool: &dyn TaskHost, timeout: Option<Duration>) -> bool {
        self.is_ready()
            || wait_for(
                pool,
                &|s| !matches!(s, State::Pending),
                &self.state,
                &self.signal,
                timeout,
            )
    }

    /// Takes the result out.
    fn take(&self) -> Result<R> {
        let mut state = lock(&self.state);
        match std::mem::replace(&mut *state, State::Taken) {
            State::Done(r) => r,
            State::Pending => {
                *state = State::Pending;
                Err(Error::NotReady)
            }
            State::Taken => Err(Error::AlreadyTaken),
        }
    }
}

/// The handle of work submitted asynchronously: Python's `AsyncResult`.
///
/// # Taking the result
/// `get`, `get_timeout` and `try_get` (as crossbeam's `recv`, `recv_timeout` and
/// `try_recv`) all take `&self` and hand the result over once: the first call that
/// finds it ready takes it, and every later call returns [`Error::AlreadyTaken`].
/// `wait`, `ready` and `successful` never take it. So a loop over borrowed handles
/// works:
///
/// ```
/// let pool = shmpool::Pool::new(2)?;
/// let handles = (0..4u64)
///     .map(|i| pool.apply_async(|x: u64| x * 10, (i,)))
///     .collect::<Result<Vec<_>, _>>()?;
/// let mut total = 0;
/// for r in &handles {
///     total += r.get()?;
/// }
/// assert_eq!(total, 60);
/// # Ok::<(), shmpool::Error>(())
/// ```
///
/// # Cancelling, and async code
/// [`AsyncResult::cancel`] stops the work (see [`CancelMode`]). `.await` on a handle
/// (it is [`IntoFuture`](std::future::IntoFuture)) gives a [`ResultFuture`](crate::ResultFuture), which works on any executor;
/// dropping that future before it is ready cancels the work. Dropping the handle
/// itself does not: the work runs on, as in Python.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let pool = shmpool::Pool::new(2)?;
/// let r = pool.apply_async(|ms: u64| { std::thread::sleep(Duration::from_millis(ms)); ms }, (50,))?;
/// assert!(!r.ready());
/// assert!(matches!(r.successful(), Err(shmpool::Error::NotReady)));
/// r.wait();
/// assert!(r.ready() && r.successful()?);
/// assert_eq!(r.get()?, 50);
/// # Ok::<(), shmpool::Error>(())
/// ```
pub struct AsyncResult<R> {
    slot: Arc<ResultSlot<R>>,
    pool: Arc<dyn TaskHost>,
    /// The ids of the work's tasks (one for `apply`, one per chunk for a map).
    tasks: Range<u64>,
    /// What a cancel names.
    work: Work,
}

impl<R> fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.slot.ready.load(Ordering::Relaxed))
            .field("work", &self.work)
            .finish()
    }
}

impl<R: Send + 'static> AsyncResult<R> {
    /// The handle of the work of tasks `tasks`, named `work` by a cancel.
    pub(crate) fn new(
        slot: Arc<ResultSlot<R>>,
        pool: Arc<dyn TaskHost>,
        tasks: Range<u64>,
        work: Work,
    ) -> Self {
        AsyncResult {
            slot,
            pool,
            tasks,
            work,
        }
    }

    /// Waits for the result and takes it.
    ///
    /// # Errors
    /// The error of the work: [`Error::TaskPanicked`], [`Error::WorkerDied`],
    /// [`Error::Timeout`], [`Error::Cancelled`], [`Error::PoolTerminated`],
    /// [`Error::Codec`], [`Error::Transfer`], or [`Error::CallbackPanicked`];
    /// [`Error::AlreadyTaken`] once the result has been taken.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(1)?;
    /// let r = pool.apply_async(|| "done".to_string(), ())?;
    /// assert_eq!(r.get()?, "done");
    /// assert!(matches!(r.get(), Err(shmpool::Error::AlreadyTaken)));
    /// let r = pool.apply_async(|| -> u32 { panic!("boom") }, ())?;
    /// assert!(matches!(r.get(), Err(shmpool::Error::TaskPanicked { .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get(&self) -> Result<R> {
        self.slot.wait(&*self.pool, None);
        self.slot.take()
    }

    /// Waits up to `timeout` for the result, and takes it.
    ///
    /// # Errors
    /// [`Error::WaitTimeout`] if the result is not ready in time: the work keeps
    /// running and the result can be waited for again, as in Python. Otherwise as
    /// for [`AsyncResult::get`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmpool::Error;
    ///
    /// let pool = shmpool::Pool::new(1)?;
    /// let r = pool.apply_async(|| { std::thread::sleep(Duration::from_millis(200)); 1 }, ())?;
    /// assert!(matches!(r.get_timeout(Duration::from_millis(1)), Err(Error::WaitTimeout(_))));
    /// assert_eq!(r.get_timeout(Duration::from_secs(30))?, 1); // it kept running
    /// assert!(matches!(r.get_timeout(Duration::from_secs(1)), Err(Error::AlreadyTaken)));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> Result<R> {
        if self.slot.wait(&*self.pool, Some(timeout)) {
            self.slot.take()
        } else {
            Err(Error::WaitTimeout(timeout))
        }
    }

    /// Takes the result if it is ready, without waiting.
    ///
    /// # Errors
    /// [`Error::NotReady`] if it is not ready yet (the handle stays usable);
    /// otherwise as for [`AsyncResult::get`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmpool::Error;
    ///
    /// let pool = shmpool::Pool::new(1)?;
    /// let r = pool.apply_async(|| { std::thread::sleep(Duration::from_millis(100)); 5 }, ())?;
    /// assert!(matches!(r.try_get(), Err(Error::NotReady)));
    /// r.wait();
    /// assert_eq!(r.try_get()?, 5);
    /// assert!(matches!(r.try_get(), Err(Error::AlreadyTaken)));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn try_get(&self) -> Result<R> {
        self.slot.take()
    }

    /// Leaves `waker` to be woken when the result is ready; returns whether it is
    /// ready already.
    pub(crate) fn register(&self, waker: &Waker) -> bool {
        self.slot.register(waker)
    }

    /// Cancels the work, treating a running task as the pool's
    /// [`cancel_mode`](crate::PoolBuilder::cancel_mode) says (by default: its worker is
    /// killed and replaced). See [`AsyncResult::cancel_with`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmpool::{CancelOutcome, Error, Pool};
    ///
    /// let pool = Pool::new(1)?;
    /// let hung = pool.apply_async(|| std::thread::sleep(Duration::from_secs(60)), ())?;
    /// let queued = pool.apply_async(|| 1, ())?; // waits behind it
    /// assert_eq!(queued.cancel(), CancelOutcome::Cancelled); // removed, never runs
    /// assert_eq!(hung.cancel(), CancelOutcome::Cancelled); // its worker is killed
    /// assert!(matches!(hung.get(), Err(Error::Cancelled { .. })));
    /// assert_eq!(pool.apply(|| 2, ())?, 2); // a replacement took over
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn cancel(&self) -> CancelOutcome {
        self.cancel_with(self.pool.cancel_mode())
    }

    /// Cancels the work: its tasks that have not started are removed without
    /// running; a running one's worker is killed and replaced
    /// ([`CancelMode::Kill`]), or left to finish with its result discarded
    /// ([`CancelMode::LetFinish`]). The result becomes [`Error::Cancelled`] naming the
    /// task (for a map, its items), and any callbacks run with that error. Other work
    /// is not affected: a task that its killed worker had started meanwhile runs
    /// again.
    ///
    /// Returns [`CancelOutcome::AlreadyDone`] and changes nothing if the result was
    /// already there, even if not yet taken (a map that has failed still has its
    /// remaining chunks removed). A result that arrives while the cancel runs is
    /// decided by whichever comes first; the return value says which.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmpool::{CancelMode, Error, Pool};
    ///
    /// let pool = Pool::new(2)?;
    /// let r = pool.tasks().chunksize(1).map_async(
    ///     |ms: u64| { std::thread::sleep(Duration::from_millis(ms)); ms },
    ///     [1, 2, 200, 300],
    /// )?;
    /// assert!(r.cancel_with(CancelMode::LetFinish).was_cancelled());
    /// assert!(matches!(r.get(), Err(Error::Cancelled { .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn cancel_with(&self, mode: CancelMode) -> CancelOutcome {
        let error = Error::Cancelled {
            work: self.work.clone(),
        };
        let decided = self.slot.deliver(Err(error), &self.pool.delivery().ctx());
        self.pool.cancel_tasks(self.tasks.clone(), mode);
        if decided {
            CancelOutcome::Cancelled
        } else {
            CancelOutcome::AlreadyDone
        }
    }

    /// Waits until the result is ready.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(1)?;
    /// let r = pool.apply_async(|x: u64| x + 1, (1,))?;
    /// r.wait();
    /// assert!(r.ready());
    /// assert_eq!(r.get()?, 2);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait(&self) {
        self.slot.wait(&*self.pool, None);
    }

    /// Waits up to `timeout`; returns whether the result is ready.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = shmpool::Pool::new(1)?;
    /// let r = pool.apply_async(|| std::thread::sleep(Duration::from_millis(200)), ())?;
    /// assert!(!r.wait_timeout(Duration::from_millis(1)));
    /// assert!(r.wait_timeout(Duration::from_secs(30)));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.slot.wait(&*self.pool, Some(timeout))
    }

    /// Whether the result is ready (without waiting).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(1)?;
    /// let r = pool.apply_async(|| 3, ())?;
    /// while !r.ready() {
    ///     std::thread::sleep(std::time::Duration::from_millis(1)); // or do other work
    /// }
    /// assert_eq!(r.get()?, 3);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn ready(&self) -> bool {
        self.slot.is_ready()
    }

    /// Whether the work succeeded.
    ///
    /// # Errors
    /// [`Error::NotReady`] when the result is not ready yet (Python raises
    /// `ValueError`).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(1)?;
    /// let ok = pool.apply_async(|| 1, ())?;
    /// let bad = pool.apply_async(|| -> i32 { panic!("no") }, ())?;
    /// ok.wait();
    /// bad.wait();
    /// assert!(ok.successful()?);
    /// assert!(!bad.successful()?);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn successful(&self) -> Result<bool> {
        if self.slot.is_ready() {
            Ok(self.slot.succeeded.load(Ordering::Relaxed))
        } else {
            Err(Error::NotReady)
        }
    }
}

/// The sink of one `apply` task.
pub(crate) struct ApplySink<R> {
    pub slot: Arc<ResultSlot<R>>,
}

impl<R: serde::de::DeserializeOwned + Send + 'static> Sink for ApplySink<R> {
    fn complete(&self, _tag: u64, outcome: Outcome<'_>, ctx: &Ctx<'_>) {
        let result = match outcome {
            Outcome::Ok(bytes) => super::codec::decode::<R>(bytes, crate::error::CodecRole::Result)
                .map_err(Error::from),
            Outcome::Panicked(report) => Err(report.into()),
            Outcome::Failed(e) => Err(e),
        };
        self.slot.deliver(result, ctx);
    }
}

impl From<PanicReport> for Error {
    fn from(r: PanicReport) -> Self {
        Error::TaskPanicked {
            message: r.message,
            location: r.location,
        }
    }
}
