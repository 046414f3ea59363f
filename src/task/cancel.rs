//! Cancelling work: [`CancelMode`], what a cancel does to running tasks, and
//! [`CancelOutcome`], what it did.
//!
//! The machinery is in the pool: the table of pending tasks decides where a task is
//! and removes it (`src/task/pending.rs`), and the collector kills the workers of
//! cancelled running tasks (`src/pool/collector.rs`).

/// How a cancel treats a task that is already running.
///
/// Queued tasks (waiting in the parent or in the ring) are always removed without
/// running. Set the pool's default with
/// [`PoolBuilder::cancel_mode`](crate::PoolBuilder::cancel_mode); it also applies
/// when a future or an [`Imap`](crate::Imap) is dropped before it is done.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use shmpool::{CancelMode, Error, Pool};
///
/// let pool = Pool::new(1)?;
/// let r = pool.apply_async(|| { std::thread::sleep(Duration::from_millis(300)); 1 }, ())?;
/// std::thread::sleep(Duration::from_millis(50)); // let it start
/// // The worker runs it to the end; its result is thrown away.
/// assert!(r.cancel_with(CancelMode::LetFinish).was_cancelled());
/// assert!(matches!(r.get(), Err(Error::Cancelled { .. })));
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CancelMode {
    /// Kill the worker running the task (it is replaced, as after a timeout).
    #[default]
    Kill,
    /// Let the worker finish the task, and discard its result.
    LetFinish,
}

/// What a cancel did.
///
/// # Examples
///
/// ```
/// use shmpool::{CancelOutcome, Pool};
///
/// let pool = Pool::new(1)?;
/// let r = pool.apply_async(|| 7, ())?;
/// assert_eq!(r.get()?, 7);
/// assert_eq!(r.cancel(), CancelOutcome::AlreadyDone);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelOutcome {
    /// The work was cancelled: its result is [`Error::Cancelled`](crate::Error::Cancelled)
    /// (for an imap: each item not yet received is).
    Cancelled,
    /// The result was already there (or an earlier cancel made it): nothing changed.
    AlreadyDone,
}

impl CancelOutcome {
    /// Whether this cancel changed the result.
    ///
    /// # Examples
    ///
    /// ```
    /// use shmpool::CancelOutcome;
    ///
    /// assert!(CancelOutcome::Cancelled.was_cancelled());
    /// assert!(!CancelOutcome::AlreadyDone.was_cancelled());
    /// ```
    pub fn was_cancelled(self) -> bool {
        self == CancelOutcome::Cancelled
    }
}
