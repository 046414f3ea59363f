//! async/await: an [`AsyncResult`] is [`IntoFuture`], and its future is a
//! [`ResultFuture`].
//!
//! A pending future leaves its waker in the result's slot; whichever thread makes
//! the result visible (usually the collector, which drains the completion rings
//! anyway) wakes it. So there is no thread per future and no polling loop, and the
//! future works on any executor.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::async_result::AsyncResult;
use crate::error::Result;

/// The future of an [`AsyncResult`]: what `.await` on one waits on.
///
/// It resolves to the result (taken from the handle, as
/// [`get`](AsyncResult::get) would). Dropped before it resolves, it cancels the
/// work ([`AsyncResult::cancel`]): queued tasks are removed, and running ones are
/// treated as the pool's [`cancel_mode`](crate::PoolBuilder::cancel_mode) says.
///
/// # Examples
///
/// ```
/// let pool = shmpool::Pool::new(2)?;
/// let squares = pool.map_async(|x: u64| x * x, 0..4u64)?;
/// let one = pool.apply_async(|| 1u64, ())?;
/// let (squares, one) = futures::executor::block_on(async { (squares.await, one.await) });
/// assert_eq!(squares?, [0, 1, 4, 9]);
/// assert_eq!(one?, 1);
/// # Ok::<(), shmpool::Error>(())
/// ```
#[must_use = "a future does nothing unless awaited, and dropping it cancels the work"]
pub struct ResultFuture<R: Send + 'static> {
    handle: AsyncResult<R>,
    resolved: bool,
}

impl<R: Send + 'static> fmt::Debug for ResultFuture<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResultFuture")
            .field("handle", &self.handle)
            .field("resolved", &self.resolved)
            .finish()
    }
}

impl<R: Send + 'static> IntoFuture for AsyncResult<R> {
    type Output = Result<R>;
    type IntoFuture = ResultFuture<R>;

    fn into_future(self) -> ResultFuture<R> {
        ResultFuture {
            handle: self,
            resolved: false,
        }
    }
}

impl<R: Send + 'static> ResultFuture<R> {
    /// The handle this future waits on: to cancel with another mode, or to check
    /// [`ready`](AsyncResult::ready).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::IntoFuture;
    /// use shmpool::CancelMode;
    ///
    /// let pool = shmpool::Pool::new(1)?;
    /// let fut = pool.apply_async(|| 3, ())?.into_future();
    /// fut.handle().wait();
    /// assert!(!fut.handle().cancel_with(CancelMode::LetFinish).was_cancelled());
    /// assert_eq!(futures::executor::block_on(fut)?, 3);
    /// # Ok::<(), shmpool::Error>(())
    /// ```
    pub fn handle(&self) -> &AsyncResult<R> {
        &self.handle
    }
}

impl<R: Send + 'static> Future for ResultFuture<R> {
    type Output = Result<R>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<R>> {
        if !self.handle.register(cx.waker()) {
            return Poll::Pending;
        }
        self.resolved = true;
        Poll::Ready(self.handle.try_get())
    }
}

impl<R: Send + 'static> Drop for ResultFuture<R> {
    fn drop(&mut self) {
        if !self.resolved {
            self.handle.cancel();
        }
    }
}
