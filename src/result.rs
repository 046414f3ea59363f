//! [`AsyncResult`]: the handle of work submitted with `apply_async`, `map_async` or
//! `starmap_async`, its shared slot, and the sink of one `apply` task.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::pool::{Ctx, Outcome, PoolInner, Signal, Sink};
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
/// let r = pool.apply_async_with(
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
}

type OnSuccess<R> = Box<dyn FnOnce(&R) + Send>;
type OnError = Box<dyn FnOnce(&Error) + Send>;

impl<R> Default for Callbacks<R> {
    fn default() -> Self {
        Callbacks {
            on_success: None,
            on_error: None,
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
    /// let r = pool.apply_async_with(|| 5, (), Callbacks::new())?;
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
    /// let r = pool.map_async_with(
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
    /// let r = pool.apply_async_with(
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

    fn is_empty(&self) -> bool {
        self.on_success.is_none() && self.on_error.is_none()
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
pub(crate) struct ResultSlot<R> {
    state: Mutex<State<R>>,
    signal: Signal,
    ready: AtomicBool,
    succeeded: AtomicBool,
    callbacks: Mutex<Option<Callbacks<R>>>,
}

impl<R: Send + 'static> ResultSlot<R> {
    /// An empty slot with these callbacks.
    pub(crate) fn new(callbacks: Callbacks<R>) -> Arc<Self> {
        Arc::new(ResultSlot {
            state: Mutex::new(State::Pending),
            signal: Signal::default(),
            ready: AtomicBool::new(false),
            succeeded: AtomicBool::new(false),
            callbacks: Mutex::new((!callbacks.is_empty()).then_some(callbacks)),
        })
    }

    /// Delivers the result: hands the callbacks to the pool's callback thread, which
    /// runs them and then makes the result visible; without callbacks, makes it
    /// visible now. Later deliveries are ignored.
    pub(crate) fn deliver(self: &Arc<Self>, result: Result<R>, ctx: &Ctx<'_>) {
        let callbacks = self
            .callbacks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        match callbacks {
            None => self.finish(result),
            Some(cbs) => {
                let me = Arc::clone(self);
                ctx.defer(Box::new(move || me.finish(cbs.run(result))));
            }
        }
    }

    fn finish(&self, result: Result<R>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*state, State::Pending) {
            self.succeeded.store(result.is_ok(), Ordering::Relaxed);
            *state = State::Done(result);
            // SYNC(R1): Release — publishes `succeeded`; pairs with the Acquire in
            // `is_ready` (SYNC R2). The state itself is read under the mutex.
            self.ready.store(true, Ordering::Release);
            self.signal.notify();
        }
    }

    /// Whether the result has arrived.
    pub(crate) fn is_ready(&self) -> bool {
        // SYNC(R2): Acquire — pairs with SYNC R1 in `finish`: `succeeded` is then visible; the
        // result itself is read under the state mutex.
        self.ready.load(Ordering::Acquire)
    }

    /// Waits up to `timeout` (forever for `None`) for the result.
    pub(crate) fn wait(&self, pool: &PoolInner, timeout: Option<Duration>) -> bool {
        self.is_ready()
            || pool.wait_for(
                &|s| !matches!(s, State::Pending),
                &self.state,
                &self.signal,
                timeout,
            )
    }

    /// Takes the result out.
    fn take(&self) -> Result<R> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
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
    pool: Arc<PoolInner>,
}

impl<R> fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.slot.ready.load(Ordering::Relaxed))
            .finish()
    }
}

impl<R: Send + 'static> AsyncResult<R> {
    pub(crate) fn new(slot: Arc<ResultSlot<R>>, pool: Arc<PoolInner>) -> Self {
        AsyncResult { slot, pool }
    }

    /// Waits for the result and returns it.
    ///
    /// # Errors
    /// The error of the work: [`Error::TaskPanicked`], [`Error::WorkerDied`],
    /// [`Error::Timeout`], [`Error::PoolTerminated`], [`Error::Codec`],
    /// [`Error::Transfer`], or [`Error::CallbackPanicked`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = shmpool::Pool::new(1)?;
    /// let r = pool.apply_async(|| "done".to_string(), ())?;
    /// assert_eq!(r.get()?, "done");
    /// let r = pool.apply_async(|| -> u32 { panic!("boom") }, ())?;
    /// assert!(matches!(r.get(), Err(shmpool::Error::TaskPanicked { .. })));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get(self) -> Result<R> {
        self.slot.wait(&self.pool, None);
        self.slot.take()
    }

    /// Waits up to `timeout` for the result.
    ///
    /// # Errors
    /// [`Error::WaitTimeout`] if the result is not ready in time: the work keeps
    /// running and the result can be waited for again, as in Python. Otherwise as
    /// for [`AsyncResult::get`]; once the result has been taken,
    /// [`Error::AlreadyTaken`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use shmpool::Error;
    ///
    /// let pool = shmpool::Pool::new(1)?;
    /// let mut r = pool.apply_async(|| { std::thread::sleep(Duration::from_millis(200)); 1 }, ())?;
    /// assert!(matches!(r.get_timeout(Duration::from_millis(1)), Err(Error::WaitTimeout(_))));
    /// assert_eq!(r.get_timeout(Duration::from_secs(30))?, 1); // it kept running
    /// assert!(matches!(r.get_timeout(Duration::from_secs(1)), Err(Error::AlreadyTaken)));
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn get_timeout(&mut self, timeout: Duration) -> Result<R> {
        if self.slot.wait(&self.pool, Some(timeout)) {
            self.slot.take()
        } else {
            Err(Error::WaitTimeout(timeout))
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
        self.slot.wait(&self.pool, None);
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
        self.slot.wait(&self.pool, Some(timeout))
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
            Outcome::Ok(bytes) => {
                crate::task::decode::<R>(bytes, crate::CodecRole::Result).map_err(Error::from)
            }
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
