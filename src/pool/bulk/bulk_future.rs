//! [`BulkFuture`]: a bulk map that can be awaited.
//!
//! `Bulk::map_into_async` publishes the job at once and returns a future that
//! owns the arrays. No thread waits for it: the worker that finishes an awaited job
//! also wakes the collector (the job's `wake_collector` flag), which wakes the
//! future's waker. Dropping the future before it is done cancels the job as the
//! pool's cancel mode says, and waits (briefly: the running chunks end or their
//! workers are killed) until no worker is inside it, so the arrays it gives back,
//! or drops, are no longer in use.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytemuck::Pod;

use super::engine::{self, Published, Round};
use crate::array::SharedArray;
use crate::error::{Error, Result};
use crate::job::ledger::{Outcome, failure_error};
use crate::job::protocol;
use crate::pool::inner::PoolInner;
use crate::task::cancel::CancelMode;

/// A bulk map in flight, from [`Bulk::map_into_async`](crate::Bulk::map_into_async).
///
/// It resolves to the input and output arrays, given back, and the map's result.
/// Dropping it before then cancels the map.
#[must_use = "a BulkFuture runs its map whether awaited or not; dropping it cancels the map"]
pub struct BulkFuture<T: Pod, U: Pod> {
    state: State,
    arrays: Option<(SharedArray<T>, SharedArray<U>)>,
}

enum State {
    /// The map could not start, or had nothing to do.
    Ready(Result<()>),
    Running(Published),
    Taken,
}

// No field is pinned: the future only moves the arrays out when it completes.
impl<T: Pod, U: Pod> Unpin for BulkFuture<T, U> {}

impl<T: Pod, U: Pod> std::fmt::Debug for BulkFuture<T, U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Ready(_) => "ready",
            State::Running(_) => "running",
            State::Taken => "taken",
        };
        f.debug_struct("BulkFuture").field("state", &state).finish()
    }
}

impl<T: Pod, U: Pod> BulkFuture<T, U> {
    pub(super) fn ready(x: SharedArray<T>, y: SharedArray<U>, result: Result<()>) -> Self {
        BulkFuture {
            state: State::Ready(result),
            arrays: Some((x, y)),
        }
    }

    pub(super) fn running(x: SharedArray<T>, y: SharedArray<U>, job: Published) -> Self {
        BulkFuture {
            state: State::Running(job),
            arrays: Some((x, y)),
        }
    }
}

/// The round of an awaited job.
pub(super) fn round(range: std::ops::Range<usize>, chunk_len: usize, kernel: i64) -> Round {
    Round {
        first: range.start,
        range,
        chunk_len,
        kernel,
        stop_on_death: true,
        awaited: true,
    }
}

/// What a finished job means for its map.
fn result_of(inner: &PoolInner, outcome: Outcome) -> Result<()> {
    match outcome {
        Outcome::Done => Ok(()),
        Outcome::Terminated => Err(inner.broken_or_terminated()),
        Outcome::Failed { mut lost, .. } => {
            lost.sort_by_key(|(r, _)| r.start);
            Err(failure_error(lost))
        }
    }
}

fn collector_gone(inner: &PoolInner) -> bool {
    // SYNC(C6): Acquire — pairs with SYNC C5, as in the blocking wait.
    inner.life.collector_exited()
}

impl<T: Pod, U: Pod> Future for BulkFuture<T, U> {
    type Output = (SharedArray<T>, SharedArray<U>, Result<()>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let finished = match &this.state {
            State::Running(job) => {
                let inner = Arc::clone(job.inner());
                let settled = |job: &Published| job.is_finished() || collector_gone(&inner);
                if !settled(job) {
                    inner.jobs.await_job(job.index, job.generation, cx.waker());
                    // Checked again after registering: a finish in between woke no one.
                    if !settled(job) {
                        return Poll::Pending;
                    }
                }
                inner.jobs.forget_waiter(job.index, job.generation);
                Some(job.is_finished())
            }
            _ => None,
        };
        let result = match std::mem::replace(&mut this.state, State::Taken) {
            State::Ready(result) => result,
            State::Running(job) => {
                let outcome = job.conclude(finished.unwrap_or(false));
                result_of(job.inner(), outcome)
            }
            State::Taken => panic!("BulkFuture polled after it completed"),
        };
        let (x, y) = this.arrays.take().expect("the arrays until completion");
        Poll::Ready((x, y, result))
    }
}

impl<T: Pod, U: Pod> Drop for BulkFuture<T, U> {
    fn drop(&mut self) {
        if let State::Running(job) = std::mem::replace(&mut self.state, State::Taken) {
            let inner = Arc::clone(job.inner());
            inner.jobs.forget_waiter(job.index, job.generation);
            if !job.is_finished() {
                protocol::stop_by_parent(inner.ctrl.job(job.index), job.generation);
                if inner.settings.cancel_mode == CancelMode::Kill {
                    inner.request_chunk_kills(job.index, job.generation);
                }
                // No worker may be inside the job when the arrays go.
                job.wait();
            }
            tracing::debug!(
                index = job.index,
                "an awaited bulk map was dropped: cancelled"
            );
            drop(job);
        }
    }
}

/// Plans an awaited map and publishes its job; `None` if it has nothing to do.
pub(super) fn start(
    inner: &Arc<PoolInner>,
    op: &engine::Operation<'_>,
    kernel: i64,
) -> Result<Option<Published>> {
    if op.options.retries > 0 {
        return Err(Error::InvalidArgument {
            name: "retries",
            reason: "map_into_async does not retry chunks; use map_into on a thread".into(),
        });
    }
    if op.options.cancel.is_some() {
        return Err(Error::InvalidArgument {
            name: "cancel_token",
            reason: "map_into_async is cancelled by dropping its future; a cancel token \
                     applies to the blocking operations"
                .into(),
        });
    }
    let plan = engine::plan(inner, op)?;
    inner.check_open()?;
    if plan.range.is_empty() {
        return Ok(None);
    }
    engine::publish(inner, op, &round(plan.range, plan.chunk_len, kernel)).map(Some)
}
