//! [`CancelToken`]: cancelling a bulk operation from another thread.
//!
//! A token is handed to a bulk operation with [`Bulk::cancel_token`]; while the
//! operation runs, the token knows its job. [`CancelToken::cancel`] stops the job
//! as a kernel panic would (no chunk is claimed any more; the chunks not started are
//! skipped), and in [`CancelMode::Kill`] asks the collector to kill the workers
//! still inside it, which the pool replaces. The operation then returns
//! [`Error::MapCancelled`](crate::Error::MapCancelled), naming the element ranges
//! whose chunks ran to their end.
//!
//! [`Bulk::cancel_token`]: crate::Bulk::cancel_token

use std::sync::{Arc, Mutex, MutexGuard};

use crate::job::protocol;
use crate::pool::inner::PoolInner;
use crate::task::cancel::{CancelMode, CancelOutcome};

/// Cancels a bulk operation from another thread (or from a progress callback, a
/// signal handler's thread, a timer).
///
/// Clone it to keep a handle: every clone cancels the same operation. A cancel
/// applies to the operation running with the token, or, if none has started yet, to
/// the first one that does; once that operation has returned, cancelling does
/// nothing and says so ([`CancelOutcome::AlreadyDone`]). Handing the token to another
/// operation starts it afresh.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use shmpool::{CancelToken, Error, Pool, SharedArray};
///
/// let pool = Pool::new(2)?;
/// let mut xs = SharedArray::<u64>::zeroed(64)?;
/// let token = CancelToken::new();
/// let canceller = token.clone();
/// std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(100));
///     canceller.cancel(); // kills the workers of the chunks still running
/// });
/// let r = pool.bulk().chunk_len(1).cancel_token(&token).for_each_mut(&mut xs, |v: &mut u64| {
///     std::thread::sleep(Duration::from_millis(20));
///     *v = 1;
/// });
/// let Err(Error::MapCancelled { completed, .. }) = r else { panic!("{r:?}") };
/// // Every element of a completed range was written.
/// assert!(completed.iter().flat_map(|r| r.clone()).all(|i| xs[i] == 1));
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    state: Arc<Mutex<TokenState>>,
}

#[derive(Debug, Default)]
struct TokenState {
    /// A cancel asked for the running (or first) operation.
    requested: Option<CancelMode>,
    /// The operation the token was given to has returned.
    ended: bool,
    /// The job the running operation runs now, if one is published.
    job: Option<RunningJob>,
}

#[derive(Debug)]
struct RunningJob {
    inner: Arc<PoolInner>,
    index: u32,
    generation: u32,
}

impl CancelToken {
    /// A token that has not been cancelled.
    pub fn new() -> Self {
        CancelToken::default()
    }

    /// Cancels the operation, killing the workers of its running chunks
    /// ([`CancelMode::Kill`]).
    pub fn cancel(&self) -> CancelOutcome {
        self.cancel_with(CancelMode::Kill)
    }

    /// Cancels the operation; with [`CancelMode::LetFinish`] the running chunks run
    /// to their end (their output is written) and nothing else starts.
    ///
    /// Returns [`CancelOutcome::AlreadyDone`] if the operation it applied to has
    /// returned, or an earlier cancel is pending.
    pub fn cancel_with(&self, mode: CancelMode) -> CancelOutcome {
        let mut state = self.lock();
        if state.ended || state.requested.is_some() {
            return CancelOutcome::AlreadyDone;
        }
        state.requested = Some(mode);
        if let Some(job) = &state.job {
            stop(job, mode);
        }
        CancelOutcome::Cancelled
    }

    /// Whether the running (or first) operation is cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.lock().requested.is_some()
    }

    fn lock(&self) -> MutexGuard<'_, TokenState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An operation starts with this token (a cancel already asked for applies to
    /// it: see [`Active::cancelled`]).
    pub(crate) fn begin(&self) -> Active<'_> {
        let mut state = self.lock();
        if state.ended {
            *state = TokenState::default(); // a new operation: start afresh
        }
        Active { token: self }
    }
}

/// A running operation's hold on its token; ending it (drop) marks the token's
/// operation as returned.
pub(crate) struct Active<'t> {
    token: &'t CancelToken,
}

impl Active<'_> {
    /// Whether the operation was cancelled.
    pub(crate) fn cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The operation published job `index`/`generation`: a cancel from now on stops
    /// it, and one that came before stops it at once.
    pub(crate) fn running(&self, inner: &Arc<PoolInner>, index: u32, generation: u32) {
        let mut state = self.token.lock();
        let job = RunningJob {
            inner: Arc::clone(inner),
            index,
            generation,
        };
        if let Some(mode) = state.requested {
            stop(&job, mode);
        }
        state.job = Some(job);
    }

    /// The job finished: nothing is left to stop.
    pub(crate) fn finished(&self) {
        self.token.lock().job = None;
    }
}

impl Active<'_> {
    /// Ends the operation; returns whether a cancel came before the end. One step
    /// under the token's lock, so a cancel either came before (it returned
    /// `Cancelled`, and the operation must return `MapCancelled`) or after (it
    /// returns `AlreadyDone`).
    pub(crate) fn end(self) -> bool {
        let cancelled = self.mark_ended();
        // Ended once: the drop must not end it again (by then the token may have
        // begun another operation). `Active` holds only a borrow: nothing leaks.
        std::mem::forget(self);
        cancelled
    }

    fn mark_ended(&self) -> bool {
        let mut state = self.token.lock();
        let cancelled = state.requested.is_some();
        *state = TokenState {
            ended: true,
            ..TokenState::default()
        };
        cancelled
    }
}

impl Drop for Active<'_> {
    /// An operation that ends without `end` (an early return, a panic) still ends.
    fn drop(&mut self) {
        self.mark_ended();
    }
}

/// Stops a running job: no more claims, the unclaimed chunks skipped, and in `Kill`
/// mode the workers inside it killed by the collector.
fn stop(job: &RunningJob, mode: CancelMode) {
    let entry = job.inner.ctrl.job(job.index);
    protocol::stop_by_parent(entry, job.generation);
    if mode == CancelMode::Kill {
        job.inner.request_chunk_kills(job.index, job.generation);
    }
}
