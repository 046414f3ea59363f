//! Submitting generic tasks: one `apply` task, or the chunks of a `map` into one
//! aggregate result, admitted under
//! [`PoolBuilder::max_queued`](crate::PoolBuilder::max_queued) as the caller asks:
//! the `try_` forms never wait for room and return
//! [`Error::QueueFull`](crate::Error::QueueFull) instead (without a bound they are
//! the plain forms). A call with a context ships it first, and each task's payload
//! starts with the context's reference.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::chunks::{Aggregate, ChunkSizes, collect_input};
use super::shipment::Shipment;
use super::tasks_builder::Tasks;
use crate::error::{CodecRole, Error, Result, Work};
use crate::kernel::AssertZeroSized;
use crate::task::async_result::{ApplySink, AsyncResult, Callbacks, ResultSlot};
use crate::task::codec;
use crate::task::sink::Sink;
use crate::task::star_fn::{StarFn, TaskEnv};
use crate::task::submission::Admission;
use crate::task::trampolines::{self, TaskFn};

/// Who keeps a call's context shipped until its result is decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Keep {
    /// The caller, which waits for the result (the blocking forms).
    Caller,
    /// The result's callbacks, which drop it on the callback thread once the result
    /// is decided (the `_async` forms: the handle may be dropped first).
    Callbacks,
}

/// A submitted call: its result, and (for a blocking call with a context) the
/// context's shipment, held until the result is taken.
pub(super) struct Submitted<R> {
    pub result: AsyncResult<R>,
    _context: Option<Arc<Shipment>>,
}

impl<R: Send + 'static> Submitted<R> {
    /// Waits for the result and takes it; then the context may go.
    pub(super) fn get(self) -> Result<R> {
        self.result.get()
    }
}

impl<E: TaskEnv> Tasks<'_, E> {
    /// Submits `f(*args)` as one task.
    pub(super) fn submit_apply<Args, F>(
        self,
        f: F,
        args: Args,
        callbacks: Callbacks<F::Output>,
        how: Admission,
        keep: Keep,
    ) -> Result<Submitted<F::Output>>
    where
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args, E>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        let () = AssertZeroSized::<F>::OK;
        let _ = f; // only its type travels: the worker conjures the value
        let context = self.ship()?;
        let prefix = context.as_deref().map_or(&[][..], Shipment::prefix);
        let bytes = codec::encode_after(prefix, &args, CodecRole::Argument)?;
        let (callbacks, held) = attach(callbacks, context, keep);
        let inner = self.inner;
        let slot = ResultSlot::new(callbacks);
        let code: TaskFn = trampolines::apply_trampoline::<E, Args, F>;
        let sink: Arc<dyn Sink> = Arc::new(ApplySink {
            slot: Arc::clone(&slot),
        });
        let ids = inner.delivery.new_task_ids(1);
        let id = ids.start;
        inner.submit_task(id, code, &bytes, &sink, 0, self.limits(), how)?;
        Ok(Submitted {
            result: AsyncResult::new(slot, inner.clone(), ids, Work::Task(id)),
            _context: held,
        })
    }

    /// Submits `f(x)` for each item, in chunks.
    pub(super) fn submit_map<A, R, F, I>(
        self,
        f: F,
        items: I,
        callbacks: Callbacks<Vec<R>>,
        how: Admission,
        keep: Keep,
    ) -> Result<Submitted<Vec<R>>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned + Send + 'static,
        F: StarFn<(A,), E, Output = R>,
    {
        let () = AssertZeroSized::<F>::OK;
        let _ = f; // only its type travels: the worker conjures the value
        let code: TaskFn = trampolines::map_trampoline::<E, A, R, F>;
        self.submit_chunks(code, items, callbacks, how, keep)
    }

    /// Submits `f(*args)` for each argument tuple, in chunks.
    pub(super) fn submit_starmap<Args, F, I>(
        self,
        f: F,
        items: I,
        callbacks: Callbacks<Vec<F::Output>>,
        how: Admission,
        keep: Keep,
    ) -> Result<Submitted<Vec<F::Output>>>
    where
        I: IntoIterator<Item = Args>,
        Args: Serialize + DeserializeOwned,
        F: StarFn<Args, E>,
        F::Output: Serialize + DeserializeOwned + Send + 'static,
    {
        let () = AssertZeroSized::<F>::OK;
        let _ = f; // only its type travels: the worker conjures the value
        let code: TaskFn = trampolines::starmap_trampoline::<E, Args, F>;
        self.submit_chunks(code, items, callbacks, how, keep)
    }

    /// Collects the input, splits it into chunks, and submits one task per chunk,
    /// all feeding one aggregate result. With [`Admission::NoWait`] all chunks are
    /// admitted at once, or none.
    fn submit_chunks<A, R, I>(
        self,
        code: TaskFn,
        items: I,
        callbacks: Callbacks<Vec<R>>,
        how: Admission,
        keep: Keep,
    ) -> Result<Submitted<Vec<R>>>
    where
        I: IntoIterator<Item = A>,
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let context = self.ship()?;
        let inner = self.inner;
        inner.check_open()?;
        let items = collect_input(items)?;
        let chunksize = match self.options.chunksize {
            Some(0) => return Err(Error::ZeroChunkLen),
            Some(n) => n,
            None => items.len().div_ceil(4 * inner.settings.processes).max(1),
        };
        let prefix = context
            .as_deref()
            .map_or(&[][..], Shipment::prefix)
            .to_vec();
        let (callbacks, held) = attach(callbacks, context, keep);
        let slot = ResultSlot::new(callbacks);
        let aggregate = Arc::new(Aggregate::new(
            ChunkSizes::new(chunksize, items.len()),
            Arc::clone(&slot),
            self.progress_bar(items.len()),
        ));
        if items.is_empty() {
            aggregate.finish_empty(inner);
        }
        let sink: Arc<dyn Sink> = aggregate;
        let chunks = items.len().div_ceil(chunksize);
        let how = match how {
            Admission::NoWait => {
                inner.admit(chunks, how)?;
                Admission::Admitted
            }
            other => other,
        };
        let ids = inner.delivery.new_task_ids(chunks);
        let handle = AsyncResult::new(
            slot,
            inner.clone(),
            ids.clone(),
            Work::Items(0..items.len()),
        );
        for ((index, chunk), id) in items.chunks(chunksize).enumerate().zip(ids.clone()) {
            // Admissions not used when a chunk fails: its own (when it never reached
            // `submit_task`, which uses or gives back its own) and the later chunks'.
            let unused = |own: u64| {
                if how == Admission::Admitted {
                    inner
                        .delivery
                        .pending()
                        .unadmit((ids.end - id - 1 + own) as usize);
                }
            };
            let bytes = match codec::encode_items_after(&prefix, chunk, CodecRole::Argument) {
                Ok(bytes) => bytes,
                Err(e) => {
                    unused(1);
                    // Chunks submitted before this one would run for nobody.
                    handle.cancel();
                    return Err(e.into());
                }
            };
            // The tag is the chunk's index; the sink knows every chunk's items.
            let limits = self.limits();
            if let Err(e) = inner.submit_task(id, code, &bytes, &sink, index as u64, limits, how) {
                unused(0);
                handle.cancel();
                return Err(e);
            }
        }
        Ok(Submitted {
            result: handle,
            _context: held,
        })
    }

    #[cfg(feature = "progress")]
    fn progress_bar(&self, len: usize) -> Option<crate::pool::progress_bar::Bar> {
        self.options
            .progress
            .then(|| crate::pool::progress_bar::Bar::new(Some(len as u64)))
    }

    #[cfg(not(feature = "progress"))]
    fn progress_bar(&self, _len: usize) -> Option<()> {
        None
    }
}

/// Hands a call's context to whoever keeps it: the caller (returned) or the
/// result's callbacks.
fn attach<R>(
    callbacks: Callbacks<R>,
    context: Option<Arc<Shipment>>,
    keep: Keep,
) -> (Callbacks<R>, Option<Arc<Shipment>>) {
    match (context, keep) {
        (Some(ship), Keep::Callbacks) => (callbacks.keep_alive(Box::new(ship)), None),
        (context, _) => (callbacks, context),
    }
}
