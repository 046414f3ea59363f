//! Where completions go: the [`Sink`] a submitted task names, the [`Outcome`] it is
//! handed, and the delivery context ([`Ctx`]) it may hand callbacks to.
//!
//! This sits below both the pool's shared state, which keeps each pending task's
//! sink, and the result handles that implement it (`crate::result`).

use super::callback_thread::CallbackRunner;
use crate::error::Error;
use crate::unwind::PanicReport;

/// What a worker (or the collector, for deaths) reports about one task.
#[derive(Debug)]
pub(crate) enum Outcome<'a> {
    /// The task returned; its encoded result.
    Ok(&'a [u8]),
    /// The task panicked.
    Panicked(PanicReport),
    /// The task could not run or report (death, timeout, codec, termination).
    Failed(Error),
}

/// What a delivery needs of its pool: where to hand callbacks.
pub(crate) struct Ctx<'a> {
    /// The pool's callback thread, which runs callbacks.
    pub callbacks: &'a CallbackRunner,
}

impl Ctx<'_> {
    /// Queues a closure for the pool's callback thread.
    pub(crate) fn defer(&self, job: Box<dyn FnOnce() + Send>) {
        self.callbacks.run_later(job);
    }
}

/// Where a task's completion goes. One sink may serve many tasks (all the chunks of
/// a `map`); each task's `tag` tells them apart.
pub(crate) trait Sink: Send + Sync {
    /// Delivers the outcome of the task submitted with `tag`; called exactly once per
    /// submitted task.
    fn complete(&self, tag: u64, outcome: Outcome<'_>, ctx: &Ctx<'_>);
}
